// SPDX-License-Identifier: GPL-2.0
/*
 * udp_hotswap: one operator-facing place for the knobs and counters of the
 * udp-hotswap series (net.ipv4.udp_hash4, net.ipv4.udp_migrate, UdpMigrate,
 * UdpMigrateFailure), per network namespace, in /proc/net/udp_hotswap/.
 *
 * Work in progress: the knobs, their defaults for new namespaces and the
 * counters are here; the reuseport-group inspector is not written yet.
 *
 *   hash4_default=-1|0|1    net.ipv4.udp_hash4 of namespaces created after
 *   migrate_default=-1|0|1  load (and net.ipv4.udp_migrate); -1 keeps the
 *                           kernel's default
 *
 *   /proc/net/udp_hotswap/knobs     "name value  meaning" lines; write
 *                                   "name=value" to set one
 *   /proc/net/udp_hotswap/counters  "name value" lines
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
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
	*(int *)kp->arg = v;
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

/* Print @sk, a member of a reuseport group, in @seq. */
static void show_member(struct seq_file *seq, struct sock *sk, bool closed)
{
	unsigned int dgrams = skb_queue_len_lockless(&sk->sk_receive_queue);

	if (sk->sk_protocol == IPPROTO_UDP)
		dgrams += skb_queue_len_lockless(&udp_sk(sk)->reader_queue);
	seq_printf(seq,
		   "  sock ino=%lu cookie=%llu state=%d uid=%u rq_bytes=%d rq_dgrams=%u drops=%d hash4=%d closed=%d\n",
		   sock_i_ino(sk), (u64)atomic64_read(&sk->sk_cookie),
		   READ_ONCE(sk->sk_state),
		   from_kuid_munged(seq_user_ns(seq), sock_i_uid(sk)),
		   atomic_read(&sk->sk_rmem_alloc), dgrams,
		   atomic_read(&sk->sk_drops),
		   sk->sk_protocol == IPPROTO_UDP && udp_hashed4(sk), closed);
}

/* Print the group of @sk, its first member. Called under RCU. */
static void show_group(struct seq_file *seq, struct sock *sk,
		       struct sock_reuseport *reuse)
{
	u16 socks = READ_ONCE(reuse->num_socks);
	u16 closed = READ_ONCE(reuse->num_closed_socks);
	struct bpf_prog *prog = rcu_dereference(reuse->prog);
	u16 i, max = reuse->max_socks;

	seq_printf(seq, "group %s ", sk->sk_protocol == IPPROTO_UDP ?
		   "udp" : "tcp");
	if (sk->sk_family == AF_INET6)
		seq_printf(seq, "[%pI6c]", &sk->sk_v6_rcv_saddr);
	else
		seq_printf(seq, "%pI4", &sk->sk_rcv_saddr);
	seq_printf(seq,
		   ":%u dev=%d num_socks=%u num_closed_socks=%u has_conns=%d prog_id=%u attach_type=%d\n",
		   sk->sk_num, READ_ONCE(sk->sk_bound_dev_if), socks, closed,
		   reuse->has_conns, prog ? prog->aux->id : 0,
		   prog ? (int)prog->expected_attach_type : -1);
	for (i = 0; i < socks && i < max; i++)
		show_member(seq, reuse->socks[i], false);
	for (i = 0; i < closed && i < max; i++)
		show_member(seq, reuse->socks[max - 1 - i], true);
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
	if (reuse && READ_ONCE(reuse->num_socks) && reuse->socks[0] == sk)
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

/* Namespaces that exist at load keep their settings. */
static bool loading;

static int __net_init udp_hotswap_net_init(struct net *net)
{
	struct proc_dir_entry *dir;

	if (!loading) {
		if (hash4_default >= 0)
			hash4_set(net, hash4_default);
		if (migrate_default >= 0)
			migrate_set(net, migrate_default);
	}

	dir = proc_net_mkdir(net, "udp_hotswap", net->proc_net);
	if (!dir)
		return -ENOMEM;
	if (!proc_create_net_single_write("knobs", 0644, dir, knobs_show,
					  knobs_write, NULL) ||
	    !proc_create_net_single("counters", 0444, dir, counters_show,
				    NULL) ||
	    !proc_create_net("reuseport", 0444, dir, &rp_ops,
			     sizeof(struct seq_net_private))) {
		remove_proc_subtree("udp_hotswap", net->proc_net);
		return -ENOMEM;
	}
	return 0;
}

static void __net_exit udp_hotswap_net_exit(struct net *net)
{
	remove_proc_subtree("udp_hotswap", net->proc_net);
}

static struct pernet_operations udp_hotswap_net_ops = {
	.init = udp_hotswap_net_init,
	.exit = udp_hotswap_net_exit,
};

static int __init udp_hotswap_init(void)
{
	int err;

	loading = true;
	err = register_pernet_subsys(&udp_hotswap_net_ops);
	loading = false;
	return err;
}

static void __exit udp_hotswap_exit(void)
{
	unregister_pernet_subsys(&udp_hotswap_net_ops);
}

module_init(udp_hotswap_init);
module_exit(udp_hotswap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Knobs and counters of the udp-hotswap series, per network namespace");
