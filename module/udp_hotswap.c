// SPDX-License-Identifier: GPL-2.0
/*
 * udp_hotswap: one operator-facing place for the knobs and counters of the
 * udp-hotswap series (net.ipv4.udp_hash4, net.ipv4.udp_migrate, UdpMigrate,
 * UdpMigrateFailure) and an inspector of reuseport groups and of the UDP
 * 4-tuple hash table, per network namespace, in /proc/net/udp_hotswap/.
 *
 *   hash4_default=-1|0|1    net.ipv4.udp_hash4 of namespaces created after
 *   migrate_default=-1|0|1  load (and net.ipv4.udp_migrate); -1 keeps the
 *                           kernel's default
 *   defaulted_namespaces    (read-only) how many namespaces got a default
 *
 *   knobs      "name value  meaning" lines; write "name=value" to set one
 *   counters   "name value" lines, the SNMP counters of the series
 *   reuseport  one block per UDP or TCP reuseport group: a group line, then
 *              a line per member, live members first, then closed ones
 *   hash4      the connected UDP sockets in the 4-tuple table, one line
 *              each; write a port to list only that local port, 0 for all
 *
 * The walks take RCU and the lock of one hash slot per seq_file record,
 * as udp.c and inet_hashtables.c do, and hold nothing across records.
 * Documentation/module.md in the udp-hotswap repository has the formats.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/sock_diag.h>
#include <linux/string.h>
#include <net/ip.h>
#include <net/net_namespace.h>
#include <net/inet_hashtables.h>
#include <net/netns/generic.h>
#include <net/sock_reuseport.h>
#include <net/udp.h>
#include <linux/bpf.h>

/* A module parameter that takes -1, 0 or 1 only. */
static int param_set_tristate(const char *val, const struct kernel_param *kp)
{
	int v, err = kstrtoint(val, 0, &v);

	if (err)
		return err;
	if (v < -1 || v > 1)
		return -ERANGE;
	/* Read by udp_hotswap_net_init() without the parameters' lock: a
	 * namespace made during a write of one default may get the new
	 * value of one and the old value of the other.
	 */
	WRITE_ONCE(*(int *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops tristate_ops = {
	.set = param_set_tristate,
	.get = param_get_int,
};

static int hash4_default = -1;
module_param_cb(hash4_default, &tristate_ops, &hash4_default, 0644);
MODULE_PARM_DESC(hash4_default,
		 "net.ipv4.udp_hash4 of namespaces created after load (-1: kernel default)");

static int migrate_default = -1;
module_param_cb(migrate_default, &tristate_ops, &migrate_default, 0644);
MODULE_PARM_DESC(migrate_default,
		 "net.ipv4.udp_migrate of namespaces created after load (-1: kernel default)");

/*
 * How many namespaces got hash4_default or migrate_default when they were
 * created: the proof that the defaults took effect, which an operator (or
 * a test run with the features off) can read. A total, never decremented:
 * a namespace whose later pernet init (another subsystem's) fails stays
 * counted.
 */
static atomic_t defaulted_namespaces = ATOMIC_INIT(0);

static int param_get_defaulted(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%u\n", (unsigned int)atomic_read(&defaulted_namespaces));
}

/* Read-only, also at load: there is nothing to set. */
static int param_set_defaulted(const char *val, const struct kernel_param *kp)
{
	return -EINVAL;
}

static const struct kernel_param_ops defaulted_ops = {
	.set = param_set_defaulted,
	.get = param_get_defaulted,
};

module_param_cb(defaulted_namespaces, &defaulted_ops, NULL, 0444);
MODULE_PARM_DESC(defaulted_namespaces,
		 "namespaces created since load that got hash4_default or migrate_default");

struct knob {
	const char *name;
	const char *meaning;
	int (*get)(const struct net *net);
	void (*set)(struct net *net, int val);
};

static int hash4_get(const struct net *net)
{
	return READ_ONCE(net->ipv4.sysctl_udp_hash4);
}

static void hash4_set(struct net *net, int val)
{
	udp_hash4_set_enabled(net, val);
}

static int migrate_get(const struct net *net)
{
	return READ_ONCE(net->ipv4.sysctl_udp_migrate);
}

static void migrate_set(struct net *net, int val)
{
	WRITE_ONCE(net->ipv4.sysctl_udp_migrate, val);
}

static const struct knob knobs[] = {
	{ "udp_hash4", "connected UDP sockets get their 4-tuple's datagrams first (net.ipv4.udp_hash4)",
	  hash4_get, hash4_set },
	{ "udp_migrate", "datagrams of a closing reuseport socket move to its group (net.ipv4.udp_migrate)",
	  migrate_get, migrate_set },
};

static int knobs_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		seq_printf(seq, "%-12s %d  %s\n", knobs[i].name,
			   knobs[i].get(net), knobs[i].meaning);
	return 0;
}

/* "name=value" with value 0 or 1, one knob per write. */
static int knobs_write(struct file *file, char *buf, size_t size)
{
	struct net *net = seq_file_single_net(file->private_data);
	char *val = strchr(buf, '=');
	unsigned int i;
	int v;

	if (!val)
		return -EINVAL;
	*val++ = '\0';
	if (kstrtoint(strim(val), 10, &v) || (v != 0 && v != 1))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		if (!strcmp(strim(buf), knobs[i].name)) {
			knobs[i].set(net, v);
			return 0;
		}
	}
	return -EINVAL;
}

static int counters_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);

	seq_printf(seq, "UdpMigrate %lu\n",
		   snmp_fold_field(net->mib.net_statistics,
				   LINUX_MIB_UDPMIGRATE));
	seq_printf(seq, "UdpMigrateFailure %lu\n",
		   snmp_fold_field(net->mib.net_statistics,
				   LINUX_MIB_UDPMIGRATEFAILURE));
	return 0;
}

/* Per-netns state: the port the hash4 file lists, 0 for all. */
struct udp_hotswap_net {
	int hash4_port;
};

static unsigned int udp_hotswap_net_id;

/* The socket's cookie, as SO_COOKIE and ss -e show it; made on first use. */
static u64 cookie_of(struct sock *sk)
{
	u32 c[2];

	sock_diag_save_cookie(sk, c);
	return (u64)c[1] << 32 | c[0];
}

/* ss's names; an unconnected UDP socket is in TCP_CLOSE, "UNCONN". */
static const char *state_name(const struct sock *sk)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "ESTAB",	[TCP_SYN_SENT] = "SYN-SENT",
		[TCP_SYN_RECV] = "SYN-RECV",	[TCP_FIN_WAIT1] = "FIN-WAIT-1",
		[TCP_FIN_WAIT2] = "FIN-WAIT-2",	[TCP_TIME_WAIT] = "TIME-WAIT",
		[TCP_CLOSE] = "UNCONN",		[TCP_CLOSE_WAIT] = "CLOSE-WAIT",
		[TCP_LAST_ACK] = "LAST-ACK",	[TCP_LISTEN] = "LISTEN",
		[TCP_CLOSING] = "CLOSING",
	};
	int state = READ_ONCE(sk->sk_state);

	if (state == TCP_CLOSE && sk->sk_protocol == IPPROTO_TCP)
		return "CLOSE";
	if (state < ARRAY_SIZE(names) && names[state])
		return names[state];
	return "UNKNOWN";
}

/* "ADDR:PORT" of the local (@remote false) or remote end of @sk. */
static void show_addr(struct seq_file *seq, const struct sock *sk,
		      bool remote)
{
	if (sk->sk_family == AF_INET6)
		seq_printf(seq, "[%pI6c]:%u", remote ? &sk->sk_v6_daddr :
			   &sk->sk_v6_rcv_saddr,
			   remote ? ntohs(sk->sk_dport) : sk->sk_num);
	else
		seq_printf(seq, "%pI4:%u", remote ? &sk->sk_daddr :
			   &sk->sk_rcv_saddr,
			   remote ? ntohs(sk->sk_dport) : sk->sk_num);
}

/* Datagrams queued on @sk, both queues of UDP counted. */
static unsigned int queued(struct sock *sk)
{
	unsigned int n = skb_queue_len_lockless(&sk->sk_receive_queue);

	if (sk->sk_protocol == IPPROTO_UDP)
		n += skb_queue_len_lockless(&udp_sk(sk)->reader_queue);
	return n;
}

/* Print @sk, a member of a reuseport group, in @seq. */
static void show_member(struct seq_file *seq, struct sock *sk, bool closed)
{
	seq_printf(seq,
		   "  sock ino=%lu cookie=%llu state=%s uid=%u rq_bytes=%d rq_dgrams=%u drops=%d hash4=%d closed=%d\n",
		   sock_i_ino(sk), cookie_of(sk), state_name(sk),
		   from_kuid_munged(seq_user_ns(seq), sock_i_uid(sk)),
		   atomic_read(&sk->sk_rmem_alloc), queued(sk),
		   atomic_read(&sk->sk_drops),
		   sk->sk_protocol == IPPROTO_UDP && udp_hashed4(sk), closed);
}

/* none, cbpf (SO_ATTACH_REUSEPORT_CBPF), select or select_or_migrate. */
static const char *attach_name(const struct bpf_prog *prog)
{
	if (!prog)
		return "none";
	if (prog->type != BPF_PROG_TYPE_SK_REUSEPORT)
		return "cbpf";
	if (prog->expected_attach_type == BPF_SK_REUSEPORT_SELECT_OR_MIGRATE)
		return "select_or_migrate";
	return "select";
}

/* Print the group of @sk, its first member. Called under RCU. The counts
 * are read once; the member lines follow them, so a reader always gets
 * num_socks + num_closed_socks of them.
 */
static void show_group(struct seq_file *seq, struct sock *sk,
		       struct sock_reuseport *reuse)
{
	u16 max = READ_ONCE(reuse->max_socks);
	u16 socks = min(READ_ONCE(reuse->num_socks), max);
	u16 closed = min_t(u16, READ_ONCE(reuse->num_closed_socks),
			   max - socks);
	struct bpf_prog *prog = rcu_dereference(reuse->prog);
	struct sock *member;
	u16 i;

	seq_printf(seq, "group %s ", sk->sk_protocol == IPPROTO_UDP ?
		   "udp" : "tcp");
	show_addr(seq, sk, false);
	seq_printf(seq,
		   " dev=%d num_socks=%u num_closed_socks=%u has_conns=%d prog_id=%u attach_type=%s\n",
		   READ_ONCE(sk->sk_bound_dev_if), socks, closed,
		   reuse->has_conns,
		   prog && prog->aux ? prog->aux->id : 0, attach_name(prog));
	/* A slot emptied by a concurrent detach is printed as a gap. */
	for (i = 0; i < socks + closed; i++) {
		member = READ_ONCE(reuse->socks[i < socks ? i : max - 1 -
						(i - socks)]);
		if (member)
			show_member(seq, member, i >= socks);
		else
			seq_puts(seq, "  gap\n");
	}
}

/* The reuseport file walks the hash2 slots of the UDP table, then the
 * lhash2 buckets of TCP listeners, one slot per record, under that slot's
 * lock; a group is printed at the slot of its first member.
 */
static void *rp_start(struct seq_file *seq, loff_t *pos)
{
	struct net *net = seq_file_net(seq);
	loff_t n = (loff_t)net->ipv4.udp_table->mask + 1 +
		   net->ipv4.tcp_death_row.hashinfo->lhash2_mask + 1;

	return *pos < n ? pos : NULL;
}

static void *rp_next(struct seq_file *seq, void *v, loff_t *pos)
{
	++*pos;
	return rp_start(seq, pos);
}

static void rp_stop(struct seq_file *seq, void *v)
{
}

/* Print the group of @sk if @sk, a socket of @net, is its first member.
 * Called under RCU and the lock of the slot that holds @sk.
 */
static void show_if_first(struct seq_file *seq, struct net *net,
			  struct sock *sk)
{
	struct sock_reuseport *reuse;

	if (!net_eq(sock_net(sk), net))
		return;
	reuse = rcu_dereference(sk->sk_reuseport_cb);
	if (reuse && READ_ONCE(reuse->num_socks) &&
	    READ_ONCE(reuse->socks[0]) == sk)
		show_group(seq, sk, reuse);
}

/* Print the groups of TCP listeners whose first member is in @ilb2. */
static void rp_show_tcp(struct seq_file *seq, struct net *net,
			struct inet_listen_hashbucket *ilb2)
{
	struct hlist_nulls_node *node;
	struct sock *sk;

	rcu_read_lock();
	spin_lock_bh(&ilb2->lock);
	sk_nulls_for_each(sk, node, &ilb2->nulls_head)
		show_if_first(seq, net, sk);
	spin_unlock_bh(&ilb2->lock);
	rcu_read_unlock();
}

static int rp_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_net(seq);
	struct udp_table *table = net->ipv4.udp_table;
	loff_t pos = *(loff_t *)v;
	struct udp_hslot *hslot2;
	struct sock *sk;

	if (pos > table->mask) {
		struct inet_hashinfo *h = net->ipv4.tcp_death_row.hashinfo;

		rp_show_tcp(seq, net, &h->lhash2[pos - table->mask - 1]);
		return 0;
	}
	hslot2 = &table->hash2[pos].hslot;
	if (!READ_ONCE(hslot2->count))
		return 0;
	rcu_read_lock();
	spin_lock_bh(&hslot2->lock);
	udp_portaddr_for_each_entry(sk, &hslot2->head)
		show_if_first(seq, net, sk);
	spin_unlock_bh(&hslot2->lock);
	rcu_read_unlock();
	return 0;
}

static const struct seq_operations rp_ops = {
	.start = rp_start,
	.next = rp_next,
	.stop = rp_stop,
	.show = rp_show,
};

/* The hash4 file: one record per hash4 slot, its sockets of this netns
 * (and of the chosen port) under the slot's lock.
 */
static void *h4_start(struct seq_file *seq, loff_t *pos)
{
	struct net *net = seq_file_net(seq);

	if (!*pos)
		return SEQ_START_TOKEN;
	return *pos <= (loff_t)net->ipv4.udp_table->mask + 1 ? pos : NULL;
}

static void *h4_next(struct seq_file *seq, void *v, loff_t *pos)
{
	++*pos;
	return h4_start(seq, pos);
}

static int h4_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_net(seq);
	struct udp_hotswap_net *un = net_generic(net, udp_hotswap_net_id);
	int port = READ_ONCE(un->hash4_port);
	struct hlist_nulls_node *node;
	struct udp_hslot *hslot4;
	struct udp_sock *up;
	u32 slot;

	if (v == SEQ_START_TOKEN) {
		if (port)
			seq_printf(seq, "port %d\n", port);
		else
			seq_puts(seq, "port any\n");
		return 0;
	}
	slot = *(loff_t *)v - 1;
	hslot4 = &net->ipv4.udp_table->hash4[slot];
	if (!READ_ONCE(hslot4->count))
		return 0;
	rcu_read_lock();
	spin_lock_bh(&hslot4->lock);
	hlist_nulls_for_each_entry(up, node, &hslot4->nulls_head,
				   udp_hash4_node) {
		struct sock *sk = (struct sock *)up;

		if (!net_eq(sock_net(sk), net) || (port && sk->sk_num != port))
			continue;
		seq_printf(seq, "sock ino=%lu cookie=%llu local=", sock_i_ino(sk),
			   cookie_of(sk));
		show_addr(seq, sk, false);
		seq_puts(seq, " remote=");
		show_addr(seq, sk, true);
		seq_printf(seq, " dev=%d slot=%u uid=%u rq_dgrams=%u reuseport_group=%d\n",
			   READ_ONCE(sk->sk_bound_dev_if), slot,
			   from_kuid_munged(seq_user_ns(seq), sock_i_uid(sk)),
			   queued(sk), !!rcu_access_pointer(sk->sk_reuseport_cb));
	}
	spin_unlock_bh(&hslot4->lock);
	rcu_read_unlock();
	return 0;
}

static const struct seq_operations h4_ops = {
	.start = h4_start,
	.next = h4_next,
	.stop = rp_stop,
	.show = h4_show,
};

/* A port number, 0 to list every port. */
static int h4_write(struct file *file, char *buf, size_t size)
{
	struct net *net = seq_file_net(file->private_data);
	struct udp_hotswap_net *un = net_generic(net, udp_hotswap_net_id);
	u16 port;

	if (kstrtou16(strim(buf), 10, &port))
		return -EINVAL;
	WRITE_ONCE(un->hash4_port, port);
	return 0;
}

/*
 * Namespaces that exist at load keep their settings: register_pernet_subsys()
 * runs udp_hotswap_net_init() for each of them in the loading task, and only
 * there. "Exist" means on net_namespace_list when the registration takes
 * pernet_ops_rwsem for writing: one whose setup_net() finished first counts
 * as existing, even if it was made after the load began. Any other is set
 * up after the registration, by its own task, and gets the defaults.
 */
static struct task_struct *loader;

static int __net_init udp_hotswap_net_init(struct net *net)
{
	struct proc_dir_entry *dir;
	bool defaulted = false;

	if (READ_ONCE(loader) != current) {
		int h4 = READ_ONCE(hash4_default);
		int mig = READ_ONCE(migrate_default);

		if (h4 >= 0)
			hash4_set(net, h4);
		if (mig >= 0)
			migrate_set(net, mig);
		defaulted = h4 >= 0 || mig >= 0;
	}

	dir = proc_net_mkdir(net, "udp_hotswap", net->proc_net);
	if (!dir)
		return -ENOMEM;
	if (!proc_create_net_single_write("knobs", 0644, dir, knobs_show,
					  knobs_write, NULL) ||
	    !proc_create_net_single("counters", 0444, dir, counters_show,
				    NULL) ||
	    !proc_create_net("reuseport", 0444, dir, &rp_ops,
			     sizeof(struct seq_net_private)) ||
	    !proc_create_net_data_write("hash4", 0644, dir, &h4_ops, h4_write,
					sizeof(struct seq_net_private), NULL)) {
		remove_proc_subtree("udp_hotswap", net->proc_net);
		return -ENOMEM;
	}
	/* Counted once it cannot fail here any more. */
	if (defaulted)
		atomic_inc(&defaulted_namespaces);
	return 0;
}

static void __net_exit udp_hotswap_net_exit(struct net *net)
{
	remove_proc_subtree("udp_hotswap", net->proc_net);
}

static struct pernet_operations udp_hotswap_net_ops = {
	.init = udp_hotswap_net_init,
	.exit = udp_hotswap_net_exit,
	.id = &udp_hotswap_net_id,
	.size = sizeof(struct udp_hotswap_net),
};

static int __init udp_hotswap_init(void)
{
	int err;

	WRITE_ONCE(loader, current);
	err = register_pernet_subsys(&udp_hotswap_net_ops);
	WRITE_ONCE(loader, NULL);
	return err;
}

static void __exit udp_hotswap_exit(void)
{
	unregister_pernet_subsys(&udp_hotswap_net_ops);
}

module_init(udp_hotswap_init);
module_exit(udp_hotswap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Knobs, counters and reuseport inspector of the udp-hotswap series, per network namespace");
/* udp_hash4_set_enabled() is exported to this namespace by the series. */
MODULE_IMPORT_NS(UDP_HOTSWAP);
