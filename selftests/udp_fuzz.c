// SPDX-License-Identifier: GPL-2.0
/*
 * udp_fuzz: a concurrent fuzzer of the surface of the udp-hotswap series,
 * with invariants checked while it runs.
 *
 *   udp_fuzz [-s SEED] [-d SECONDS] [-j THREADS] [-m MODULE.ko]
 *            [-C CHECKERS]
 *
 * Defaults: seed 1, 60 s, 4 threads (-j 0: no chaos), -m ./udp_hotswap.ko
 * when that file is there (-m "" for none), all five checkers (-C: a
 * comma-separated list of hash4, unique, migrate, group, destroy).
 *
 * Chaos: THREADS threads, spread over two network namespaces, draw random
 * operations on one small pool of socket slots (fixed descriptor numbers,
 * so that an operation on a slot that another thread just replaced hits
 * another socket of the pool, never a socket of a checker), on a few
 * ports and addresses, so that they collide: socket (UDP, UDP-Lite; v4,
 * v6), bind, connect (also AF_UNSPEC), UDP_BIND_CONNECT (valid, random or
 * truncated bytes, any optlen), socket options (SO_REUSEADDR,
 * SO_REUSEPORT, SO_BINDTODEVICE, UDP_GRO, UDP_SEGMENT, IP_PKTINFO,
 * IPV6_RECVPKTINFO, IPV6_V6ONLY, SO_RCVBUF), reuseport programs (cBPF,
 * eBPF select and select_or_migrate returning SK_PASS or SK_DROP, detach),
 * sendmmsg (with UDP_SEGMENT and IP_PKTINFO cmsgs), recvmmsg, shutdown,
 * close, SOCK_DESTROY over sock_diag, TCP reuseport listeners and clients
 * (tcp_migrate_req), a netns made and left while its sockets hold queued
 * datagrams, flips of udp_hash4, udp_migrate and tcp_migrate_req, reads of
 * /proc/net/{udp,udp6,udplite,udplite6,snmp,netstat} and of every file of
 * /proc/net/udp_hotswap/, bad writes to its writable files and, with -m,
 * loading and unloading the module.
 *
 * Invariants, each checked by a thread of its own in a netns of its own
 * (the chaos never flips its sysctls), in rounds that cycle through IPv4,
 * IPv6 and v4-mapped IPv6, while the chaos runs:
 *   hash4   - net.ipv4.udp_hash4=1: every datagram of a 4-tuple that a
 *             socket set with UDP_BIND_CONNECT owns lands there, in order,
 *             while another thread binds, connects, disconnects, closes
 *             and attaches programs (SK_DROP too) to reuseport groups on
 *             the same port; none lands on those sockets.
 *   unique  - three threads race UDP_BIND_CONNECT for one 4-tuple (v4 and
 *             v4-mapped sockets race each other): two never hold it at
 *             once.
 *   migrate - net.ipv4.udp_migrate=1: two senders send to a reuseport
 *             group whose members are replaced all the time (a member
 *             stops being read a few ms before it is closed, so that it
 *             closes with datagrams queued): every datagram arrives
 *             exactly once, and at the end of each round what was sent is
 *             what arrived plus the drops that /proc/net/snmp (NoPorts,
 *             InErrors) and UdpMigrateFailure counted. A run that never
 *             migrated a datagram fails: it checked nothing.
 *   group   - a member S of a group {S, M} closes while a new member N
 *             binds, with udp_migrate 0 and 1 in turn: N must join M's
 *             group, never one of its own, which a bind() that picked the
 *             dying S as the member to join would make. The group's cBPF
 *             program picks the member at the index of a datagram's first
 *             byte: of indexes 0 and 1, N must get all of one and M all
 *             of the other.
 *   destroy - a member S of a group {S, M} on the wildcard address closes
 *             while another thread destroys it over sock_diag (whose
 *             disconnect takes S out of its group), udp_migrate 0 and 1
 *             in turn: no splat, and M then gets the port's datagram.
 * group and destroy race two threads from a start line, with a random
 * delay of a few loop turns on one side or the other.
 * A checker whose feature the kernel lacks (stock) prints why and does not
 * run; the chaos runs on any kernel.
 *
 * Seeded: each thread draws from its own generator seeded by SEED and its
 * index, so a seed replays the same operations per thread (not the same
 * interleaving). Prints the operations done per kind and each checker's
 * counts. Exit status: 0 when no invariant was violated, 1 otherwise, 4
 * (skip) when not root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "udp_bind_connect_uapi.h"
#include "udp_hotswap_util.h"
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

#define POOL		24	/* chaos socket slots */
#define POOL_FD		900	/* slot i is descriptor POOL_FD + i */
#define CHAOS_NS	2
#define CHAOS_PORT	40000	/* chaos ports: CHAOS_PORT + 0..3 */
#define H4_PORT		41000	/* hash4 checker: local; peer + 1 */
#define UQ_PORT		42000	/* unique checker: local; peer + 1 */
#define MG_PORT		43000	/* migrate checker's group; senders + 1, + 2 */
#define ROUND_MS	600
#define MG_SENDERS	2
#define GP_PORT		44000	/* group checker's group; its peer + 1 */
#define DS_PORT		45000	/* destroy checker's group */

static unsigned long seed = 1;
static int duration = 60, nthreads = 4;
static const char *module_path;
static const char *checkers = "hash4,unique,migrate,group,destroy";	/* -C */
static atomic_int stopping;
static atomic_long violations;
static long start_ms;		/* the run's start, for the violations' times */
static atomic_long first_violation_ms = -1;
static int chaos_ns[CHAOS_NS], h4_ns, uq_ns, mg_ns, gp_ns, ds_ns, orig_ns;
static int progs[4] = { -1, -1, -1, -1 };	/* sel pass/drop, mig pass/drop */

#define violation(...) do {						\
	long _t = now_ms() - start_ms, _none = -1;			\
									\
	atomic_fetch_add(&violations, 1);				\
	atomic_compare_exchange_strong(&first_violation_ms, &_none, _t); \
	fprintf(stderr, "VIOLATION at %.1f s: ", _t / 1000.0);		\
	fprintf(stderr, __VA_ARGS__);					\
} while (0)

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static unsigned int pick(uint64_t *s, unsigned int n)
{
	return rnd(s) % n;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* ---- network namespaces and files --------------------------------- */

/* A new netns with lo up, as a descriptor; the caller stays where it was. */
static int make_ns(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) || lo_up())
		return -1;
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (setns(orig_ns, CLONE_NEWNET))
		return -1;
	return fd;
}

static int enter_ns(int fd)
{
	return setns(fd, CLONE_NEWNET);
}

/* ---- addresses ---------------------------------------------------- */

static const char *const variant_name[] = { "IPv4", "IPv6", "v4-mapped" };

/* The chaos's addresses: a few of each family, some that must be refused. */
static socklen_t chaos_addr(uint64_t *s, int family, void *ssp)
{
	struct sockaddr_storage *ss = ssp;
	static const char *const v4[] = {
		"127.0.0.1", "0.0.0.0", "127.0.0.2", "255.255.255.255", "224.0.0.1",
	};
	static const char *const v6[] = {
		"::1", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "fe80::1", "ff02::1",
	};
	static const int ports[] = {
		CHAOS_PORT, CHAOS_PORT + 1, CHAOS_PORT + 2, CHAOS_PORT + 3, 0,
	};
	struct sockaddr_in *sin = (void *)ss;
	struct sockaddr_in6 *sin6 = (void *)ss;
	int port = ports[pick(s, 5)];

	memset(ss, 0, sizeof(*ss));
	/* Mostly the socket's family, sometimes the other one. */
	if (pick(s, 8) == 0)
		family = family == AF_INET ? AF_INET6 : AF_INET;
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, v4[pick(s, 5)], &sin->sin_addr);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	inet_pton(AF_INET6, v6[pick(s, 6)], &sin6->sin6_addr);
	if (pick(s, 3) == 0)
		sin6->sin6_scope_id = pick(s, 3);
	return sizeof(*sin6);
}

static int fd_family(int fd)
{
	int v = AF_INET;
	socklen_t len = sizeof(v);

	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len);
	return v;
}

/* ---- reuseport programs ------------------------------------------- */

/* An eBPF reuseport program that returns @verdict (SK_PASS or SK_DROP). */
static int load_reuseport_prog(enum bpf_attach_type type, int verdict)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = verdict },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	attr.expected_attach_type = type;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = 2;
	attr.license = (uintptr_t)"GPL";
	return syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
}

static int attach_prog(uint64_t *s, int fd)
{
	struct sock_filter code[] = {
		/* A = a random index, out of range sometimes: the hash decides */
		{ BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_RANDOM },
		{ BPF_ALU | BPF_MOD | BPF_K, 0, 0, 1 + pick(s, 5) },
		{ BPF_RET | BPF_A, 0, 0, 0 },
	};
	struct sock_fprog fprog = { 3, code };
	int p;

	switch (pick(s, 3)) {
	case 0:
		return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
				  &fprog, sizeof(fprog));
	case 1:
		p = progs[pick(s, 4)];
		return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &p, sizeof(p));
	default:
		p = 0;
		return setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &p, sizeof(p));
	}
}

/* ---- SOCK_DESTROY ------------------------------------------------- */

struct destroy_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
};

static void copy_diag_addr(__be32 *dst, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		dst[0] = sin->sin_addr.s_addr;
	else if (ss->ss_family == AF_INET6)
		memcpy(dst, &sin6->sin6_addr, 16);
}

static int diag_port(const struct sockaddr_storage *ss)
{
	return ((const struct sockaddr_in *)ss)->sin_port;
}

/* The SOCK_DESTROY request for @fd: what sock_diag would list for it, with
 * a wrong cookie when @s draws one (@s NULL: never).
 */
static void destroy_prepare(uint64_t *s, int fd, struct destroy_req *q)
{
	struct sockaddr_storage local = {}, remote = {};
	socklen_t len = sizeof(local);
	__u64 cookie = 0;
	int proto = IPPROTO_UDP;

	getsockname(fd, (void *)&local, &len);
	len = sizeof(remote);
	getpeername(fd, (void *)&remote, &len);
	len = sizeof(cookie);
	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
	len = sizeof(proto);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	if (s && pick(s, 4) == 0)
		cookie = rnd(s);
	memset(q, 0, sizeof(*q));
	q->nlh.nlmsg_len = sizeof(*q);
	q->nlh.nlmsg_type = SOCK_DESTROY;
	q->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	q->r.sdiag_family = fd_family(fd);
	q->r.sdiag_protocol = proto;
	q->r.idiag_states = ~0U;
	q->r.id.idiag_sport = diag_port(&local);
	q->r.id.idiag_dport = diag_port(&remote);
	copy_diag_addr(q->r.id.idiag_src, &local);
	copy_diag_addr(q->r.id.idiag_dst, &remote);
	q->r.id.idiag_cookie[0] = (__u32)cookie;
	q->r.id.idiag_cookie[1] = cookie >> 32;
}

/* Send @q on the NETLINK_SOCK_DIAG socket @nl; the kernel's answer. */
static int destroy_send(int nl, const struct destroy_req *q)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	union {
		struct nlmsghdr nlh;
		char buf[512];
	} ack;
	ssize_t n;

	if (sendto(nl, q, sizeof(*q), 0, (void *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	/* The ack: an nlmsgerr, whose error is the answer. */
	n = recv(nl, &ack, sizeof(ack), 0);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return n < 0 ? -errno : -EPROTO;
	if (ack.nlh.nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(&ack.nlh))->error;
}

/* SOCK_DESTROY of @fd (a wrong cookie sometimes); the kernel's answer. */
static int sock_destroy(uint64_t *s, int nl, int fd)
{
	struct destroy_req q;

	destroy_prepare(s, fd, &q);
	return destroy_send(nl, &q);
}

/* ---- the chaos ---------------------------------------------------- */

#define OPS(X) X(socket) X(bind) X(connect) X(bind_connect) X(sockopt) \
	X(reuseport_prog) X(sendmmsg) X(recvmmsg) X(shutdown) X(close) \
	X(sock_destroy) X(tcp) X(netns) X(sysctl) X(proc_read) X(proc_write) \
	X(module)
#define OP_ENUM(n) OP_##n,
#define OP_NAME(n) #n,
enum op { OPS(OP_ENUM) NOPS };
static const char *const op_name[] = { OPS(OP_NAME) };
static atomic_long op_count[NOPS], op_ok[NOPS];

struct chaos {
	pthread_t thread;
	int index, ns, nl;
	uint64_t rnd;
};

static int slot_fd(uint64_t *s)
{
	return POOL_FD + pick(s, POOL);
}

/* Put @fd in a random slot (the slot's socket is closed) and drop @fd. */
static int to_slot(uint64_t *s, int fd)
{
	int ret = dup2(fd, slot_fd(s)) < 0 ? -1 : 0;

	close(fd);
	return ret;
}

static int op_socket(struct chaos *c)
{
	int family = pick(&c->rnd, 2) ? AF_INET : AF_INET6;
	int proto = pick(&c->rnd, 4) ? IPPROTO_UDP : IPPROTO_UDPLITE;
	int fd = socket(family, SOCK_DGRAM, proto);

	return fd < 0 ? -1 : to_slot(&c->rnd, fd);
}

static int op_bind(struct chaos *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = chaos_addr(&c->rnd, fd_family(fd), &ss);

	return bind(fd, (void *)&ss, len);
}

static int op_connect(struct chaos *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = chaos_addr(&c->rnd, fd_family(fd), &ss);

	if (pick(&c->rnd, 4) == 0) {
		ss.ss_family = AF_UNSPEC;
		len = sizeof(struct sockaddr);
	}
	return connect(fd, (void *)&ss, len);
}

static int op_bind_connect(struct chaos *c, int fd)
{
	struct udp_bind_connect bc;
	unsigned char *p = (void *)&bc;
	socklen_t len = sizeof(bc);
	size_t i;

	chaos_addr(&c->rnd, fd_family(fd), &bc.local);
	chaos_addr(&c->rnd, fd_family(fd), &bc.remote);
	switch (pick(&c->rnd, 6)) {
	case 0:		/* random bytes */
		for (i = 0; i < sizeof(bc); i++)
			p[i] = rnd(&c->rnd);
		break;
	case 1:		/* a few bytes flipped */
		for (i = 0; i < 4; i++)
			p[pick(&c->rnd, sizeof(bc))] ^= 1 << pick(&c->rnd, 8);
		break;
	case 2:		/* any length, truncated or long */
		len = pick(&c->rnd, sizeof(bc) + 16);
		break;
	}
	return setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, len);
}

static int op_sockopt(struct chaos *c, int fd)
{
	int v = pick(&c->rnd, 2), gso = 1 + pick(&c->rnd, 1500);
	int rcvbuf = 256 + pick(&c->rnd, 65536);

	switch (pick(&c->rnd, 9)) {
	case 0: return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v));
	case 1: return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, sizeof(v));
	case 2: return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, v ? "lo" : "", v ? 3 : 0);
	case 3: return setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof(v));
	case 4: return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof(gso));
	case 5: return setsockopt(fd, SOL_IP, IP_PKTINFO, &v, sizeof(v));
	case 6: return setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &v, sizeof(v));
	case 7: return setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &v, sizeof(v));
	default: return setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
}

static int op_sendmmsg(struct chaos *c, int fd)
{
	static char payload[3000];
	struct sockaddr_storage ss[8];
	struct mmsghdr msgs[8];
	struct iovec iov[8];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl[8];
	unsigned int i, n = 1 + pick(&c->rnd, 8);

	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < n; i++) {
		struct cmsghdr *cm;
		size_t ctl_len = 0;

		iov[i].iov_base = payload;
		iov[i].iov_len = pick(&c->rnd, 4) ? pick(&c->rnd, 200) : pick(&c->rnd, sizeof(payload));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		if (pick(&c->rnd, 3)) {
			msgs[i].msg_hdr.msg_name = &ss[i];
			msgs[i].msg_hdr.msg_namelen = chaos_addr(&c->rnd, fd_family(fd), &ss[i]);
		}
		memset(&ctl[i], 0, sizeof(ctl[i]));
		msgs[i].msg_hdr.msg_control = ctl[i].buf;
		msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
		cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr);
		if (pick(&c->rnd, 4) == 0) {
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			*(uint16_t *)CMSG_DATA(cm) = 1 + pick(&c->rnd, 1400);
			ctl_len += CMSG_SPACE(sizeof(uint16_t));
			cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm);
		}
		if (cm && pick(&c->rnd, 4) == 0) {
			struct in_pktinfo pi = {};

			pi.ipi_spec_dst.s_addr = htonl(pick(&c->rnd, 2) ?
				INADDR_LOOPBACK : INADDR_LOOPBACK + 1);
			cm->cmsg_level = SOL_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
			ctl_len += CMSG_SPACE(sizeof(pi));
		}
		msgs[i].msg_hdr.msg_controllen = ctl_len;
		if (!ctl_len)
			msgs[i].msg_hdr.msg_control = NULL;
	}
	return sendmmsg(fd, msgs, n, MSG_DONTWAIT) < 0 ? -1 : 0;
}

static int op_recvmmsg(struct chaos *c, int fd)
{
	static __thread char bufs[4][2048], ctl[4][256];
	struct mmsghdr msgs[4];
	struct iovec iov[4];
	int i, flags = MSG_DONTWAIT;

	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < 4; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_control = ctl[i];
		msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
	}
	if (pick(&c->rnd, 4) == 0)
		flags |= MSG_PEEK;
	if (pick(&c->rnd, 8) == 0)
		flags |= MSG_ERRQUEUE;
	return recvmmsg(fd, msgs, 4, flags, NULL) < 0 ? -1 : 0;
}

static int op_tcp(struct chaos *c)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(CHAOS_PORT + pick(&c->rnd, 2)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (pick(&c->rnd, 2)) {
		if (bind(fd, (void *)&sin, sizeof(sin)) || listen(fd, 8)) {
			close(fd);
			return -1;
		}
	} else {
		connect(fd, (void *)&sin, sizeof(sin));	/* EINPROGRESS */
	}
	return to_slot(&c->rnd, fd);
}

/* A netns made and left with datagrams queued on its sockets: kept alive
 * by a socket put in a slot (it dies when that slot is reused), or by
 * nothing (it dies as this thread leaves it).
 */
static int op_netns(struct chaos *c)
{
	struct sockaddr_storage ss;
	socklen_t len = loop_addr(V4, CHAOS_PORT, &ss);
	int a = -1, b = -1, i, ret = -1;

	if (unshare(CLONE_NEWNET) || lo_up())
		goto out;
	a = socket(AF_INET, SOCK_DGRAM, 0);
	b = socket(AF_INET, SOCK_DGRAM, 0);
	if (a < 0 || b < 0 || bind(a, (void *)&ss, len))
		goto out;
	if (pick(&c->rnd, 2)) {
		int one = 1;

		write_str("/proc/sys/net/ipv4/udp_migrate", "1");
		setsockopt(a, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	}
	for (i = 0; i < 8; i++)
		sendto(b, "q", 1, 0, (void *)&ss, len);
	if (pick(&c->rnd, 2)) {
		to_slot(&c->rnd, a);
		a = -1;
	}
	ret = 0;
out:
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	if (enter_ns(c->ns)) {
		fprintf(stderr, "udp_fuzz: cannot return to the chaos netns\n");
		exit(1);
	}
	return ret;
}

static int op_sysctl(struct chaos *c)
{
	static const char *const files[] = {
		"/proc/sys/net/ipv4/udp_hash4", "/proc/sys/net/ipv4/udp_migrate",
		"/proc/sys/net/ipv4/tcp_migrate_req",
	};
	static const char *const vals[] = { "0", "1", "1", "2", "-1", "x", "" };

	return write_str(files[pick(&c->rnd, 3)], vals[pick(&c->rnd, 7)]);
}

static const char *const proc_files[] = {
	"/proc/thread-self/net/udp", "/proc/thread-self/net/udp6", "/proc/thread-self/net/udplite", "/proc/thread-self/net/udplite6",
	"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat", "/proc/thread-self/net/udp_hotswap/knobs",
	"/proc/thread-self/net/udp_hotswap/counters", "/proc/thread-self/net/udp_hotswap/reuseport",
	"/proc/thread-self/net/udp_hotswap/hash4",
};

static int op_proc_read(struct chaos *c)
{
	static __thread char buf[65536];

	return read_file(proc_files[pick(&c->rnd, 10)], buf, sizeof(buf)) < 0 ? -1 : 0;
}

static int op_proc_write(struct chaos *c)
{
	static const char *const good[] = {
		"udp_hash4=1", "udp_hash4=0", "udp_migrate=1", "udp_migrate=0", " udp_hash4 = 1\n",
	};
	char buf[96];
	size_t i, len = pick(&c->rnd, sizeof(buf));
	const char *f = pick(&c->rnd, 2) ? "/proc/thread-self/net/udp_hotswap/knobs" :
			"/proc/thread-self/net/udp_hotswap/hash4";

	if (pick(&c->rnd, 2))
		return write_str(f, good[pick(&c->rnd, 5)]);
	for (i = 0; i < len; i++)
		buf[i] = pick(&c->rnd, 3) ? "hash4migrate=01 \n"[pick(&c->rnd, 17)] :
			 (char)rnd(&c->rnd);
	return write_file(f, buf, len);
}

static int op_module(struct chaos *c)
{
	static const char *const params[] = {
		"", "hash4_default=1", "hash4_default=0 migrate_default=0",
		"migrate_default=1", "bogus=1",
	};
	int fd, ret;

	if (!module_path)
		return -1;
	if (pick(&c->rnd, 2))
		return syscall(__NR_delete_module, "udp_hotswap", O_NONBLOCK);
	fd = open(module_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = syscall(__NR_finit_module, fd, params[pick(&c->rnd, 5)], 0);
	close(fd);
	return ret;
}

static int chaos_op(struct chaos *c, enum op op)
{
	int fd = slot_fd(&c->rnd);

	switch (op) {
	case OP_socket: return op_socket(c);
	case OP_bind: return op_bind(c, fd);
	case OP_connect: return op_connect(c, fd);
	case OP_bind_connect: return op_bind_connect(c, fd);
	case OP_sockopt: return op_sockopt(c, fd);
	case OP_reuseport_prog: return attach_prog(&c->rnd, fd);
	case OP_sendmmsg: return op_sendmmsg(c, fd);
	case OP_recvmmsg: return op_recvmmsg(c, fd);
	case OP_shutdown: return shutdown(fd, pick(&c->rnd, 3));
	case OP_close: return close(fd);
	case OP_sock_destroy: return sock_destroy(&c->rnd, c->nl, fd);
	case OP_tcp: return op_tcp(c);
	case OP_netns: return op_netns(c);
	case OP_sysctl: return op_sysctl(c);
	case OP_proc_read: return op_proc_read(c);
	case OP_proc_write: return op_proc_write(c);
	case OP_module: return op_module(c);
	default: return -1;
	}
}

/* How often each operation is drawn, out of the sum. */
static const unsigned int op_weight[NOPS] = {
	[OP_socket] = 12, [OP_bind] = 10, [OP_connect] = 8, [OP_bind_connect] = 10,
	[OP_sockopt] = 10, [OP_reuseport_prog] = 4, [OP_sendmmsg] = 12,
	[OP_recvmmsg] = 8, [OP_shutdown] = 2, [OP_close] = 6, [OP_sock_destroy] = 3,
	[OP_tcp] = 2, [OP_netns] = 1, [OP_sysctl] = 3, [OP_proc_read] = 4,
	[OP_proc_write] = 2, [OP_module] = 1,
};

static enum op draw_op(uint64_t *s)
{
	unsigned int sum = 0, i, r;

	for (i = 0; i < NOPS; i++)
		sum += op_weight[i];
	r = pick(s, sum);
	for (i = 0; i < NOPS; i++) {
		if (r < op_weight[i])
			return i;
		r -= op_weight[i];
	}
	return OP_socket;
}

static void *chaos_main(void *arg)
{
	struct timeval tv = { 0, 100000 };
	struct chaos *c = arg;

	if (enter_ns(c->ns)) {
		perror("setns");
		exit(1);
	}
	c->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	setsockopt(c->nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!atomic_load(&stopping)) {
		enum op op = draw_op(&c->rnd);

		atomic_fetch_add(&op_count[op], 1);
		if (chaos_op(c, op) >= 0)
			atomic_fetch_add(&op_ok[op], 1);
	}
	close(c->nl);
	return NULL;
}

/* ---- checker: hash4 delivery -------------------------------------- */

struct h4_state {
	atomic_int round_active;
	enum variant v;
	atomic_long disturbed, group_binds, misdelivered;
	long sent, landed;
};

static struct h4_state h4;

/* Reuseport sockets on the connected socket's port, bound, connected
 * elsewhere, disconnected, closed, with programs attached; any datagram of
 * the checked flow that one of them reads is misdelivered.
 */
static void *h4_disturber(void *arg)
{
	uint64_t s = seed * 7919 + 3;
	int fds[8], i, one = 1;

	(void)arg;
	for (i = 0; i < 8; i++)
		fds[i] = -1;
	if (enter_ns(h4_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		struct sockaddr_storage ss;
		socklen_t len;
		char buf[64];
		enum variant v = h4.v;

		if (!atomic_load(&h4.round_active)) {
			for (i = 0; i < 8; i++)
				if (fds[i] >= 0) {
					close(fds[i]);
					fds[i] = -1;
				}
			sleep_us(1000);
			continue;
		}
		i = pick(&s, 8);
		atomic_fetch_add(&h4.disturbed, 1);
		if (fds[i] < 0) {
			fds[i] = socket(sock_family(v), SOCK_DGRAM | SOCK_NONBLOCK, 0);
			setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
			setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			len = loop_addr(v, H4_PORT, &ss);
			if (pick(&s, 3) == 0) {		/* the wildcard address */
				if (v == V4)
					((struct sockaddr_in *)&ss)->sin_addr.s_addr = 0;
				else
					((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
			}
			if (pick(&s, 4) == 0)
				attach_prog(&s, fds[i]);
			if (!bind(fds[i], (void *)&ss, len))
				atomic_fetch_add(&h4.group_binds, 1);
			continue;
		}
		switch (pick(&s, 6)) {
		case 0:		/* connected to another peer */
			len = loop_addr(v, H4_PORT + 2 + pick(&s, 4), &ss);
			connect(fds[i], (void *)&ss, len);
			break;
		case 1:
			ss.ss_family = AF_UNSPEC;
			connect(fds[i], (void *)&ss, sizeof(struct sockaddr));
			break;
		case 2:
			attach_prog(&s, fds[i]);
			break;
		case 3:
			close(fds[i]);
			fds[i] = -1;
			break;
		default:
			while (recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
				if (!strncmp(buf, "h4", 2))
					atomic_fetch_add(&h4.misdelivered, 1);
		}
	}
	return NULL;
}

static int h4_round(int round, enum variant v, uint64_t *s)
{
	struct sockaddr_storage local, remote;
	struct udp_bind_connect bc;
	struct timeval tv = { 1, 0 };
	int c, p, one = 1, i, n = 0, next = 0, ret = 0;
	socklen_t len;
	char buf[64];

	/* The peer: IPv4 for v4-mapped. */
	p = socket(v == V6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	len = loop_addr(v == V6 ? V6 : V4, H4_PORT + 1, &remote);
	if (p < 0 || bind(p, (void *)&remote, len))
		return -1;
	c = socket(sock_family(v), SOCK_DGRAM, 0);
	setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(c, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	loop_addr(v, H4_PORT, &bc.local);
	loop_addr(v, H4_PORT + 1, &bc.remote);
	if (setsockopt(c, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc))) {
		fprintf(stderr, "hash4: UDP_BIND_CONNECT: %s\n", strerror(errno));
		close(c);
		close(p);
		return -1;
	}
	h4.v = v;
	atomic_store(&h4.round_active, 1);
	len = loop_addr(v == V6 ? V6 : V4, H4_PORT, &local);
	for (i = 0; i < 200 && !atomic_load(&stopping); i += 10) {
		int k;

		for (k = 0; k < 10; k++) {
			n = snprintf(buf, sizeof(buf), "h4 %d %d", round, i + k);
			if (sendto(p, buf, n, 0, (void *)&local, len) == n)
				h4.sent++;
		}
		for (k = 0; k < 10; k++) {
			int r, seq;

			n = recv(c, buf, sizeof(buf) - 1, 0);
			if (n < 0) {
				violation("hash4 %s round %d: datagram %d not delivered in 1 s (%s)\n",
					  variant_name[v], round, next, strerror(errno));
				ret = 1;
				goto out;
			}
			buf[n] = '\0';
			if (sscanf(buf, "h4 %d %d", &r, &seq) != 2 || r != round || seq != next) {
				violation("hash4 %s round %d: got \"%s\", expected datagram %d\n",
					  variant_name[v], round, buf, next);
				ret = 1;
				goto out;
			}
			next++;
			h4.landed++;
		}
		if (pick(s, 4) == 0)
			sleep_us(1000);
	}
out:
	atomic_store(&h4.round_active, 0);
	close(c);
	close(p);
	return ret;
}

/* ---- checker: 4-tuple uniqueness ---------------------------------- */

static struct {
	/* Per 4-tuple: [0] 127.0.0.1 (IPv4 and v4-mapped), [1] ::1. At a
	 * round's change a socket of each may hold its own.
	 */
	atomic_int holders[2], variant;
	atomic_long attempts, successes;
} uq;

static void *uq_racer(void *arg)
{
	uint64_t s = seed * 104729 + (uintptr_t)arg;

	if (enter_ns(uq_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		enum variant v = atomic_load(&uq.variant);
		struct udp_bind_connect bc;
		int fd, one = 1;

		/* IPv4 rounds race v4 and v4-mapped sockets for one tuple. */
		if (v != V6 && pick(&s, 2))
			v = v == V4 ? MAPPED : V4;
		fd = socket(sock_family(v), SOCK_DGRAM, 0);
		if (fd < 0)
			continue;
		if (pick(&s, 2))
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (pick(&s, 2))
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		loop_addr(v, UQ_PORT, &bc.local);
		loop_addr(v, UQ_PORT + 1, &bc.remote);
		atomic_fetch_add(&uq.attempts, 1);
		if (!setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc))) {
			atomic_fetch_add(&uq.successes, 1);
			/* Counted after the success and before the release, so
			 * holders never counts more sockets than hold the tuple.
			 */
			if (atomic_fetch_add(&uq.holders[v == V6], 1))
				violation("unique: two sockets hold one %s 4-tuple\n",
					  variant_name[v]);
			if (pick(&s, 2))
				sleep_us(pick(&s, 50));
			atomic_fetch_sub(&uq.holders[v == V6], 1);
			if (pick(&s, 2)) {
				struct sockaddr sa = { .sa_family = AF_UNSPEC };

				connect(fd, &sa, sizeof(sa));
			}
		}
		close(fd);
	}
	return NULL;
}

/* ---- checker: migration exactly once ------------------------------ */

#define MG_MAX_SEQ	(1 << 20)

static struct {
	atomic_int sending, variant, round;
	atomic_long sent[MG_SENDERS];
	/* Held by a sender from its look at "sending" to the end of its send:
	 * the round's end takes it, so no datagram of a round is sent after.
	 */
	pthread_mutex_t lock[MG_SENDERS];
	long received, dupes, lost, counted, migrated, closes, closed_queued;
	unsigned char *seen[MG_SENDERS];	/* per round: seq seen */
} mg;

static void *mg_sender(void *arg)
{
	int id = (uintptr_t)arg;
	int fd = -1, fd_variant = -1, seq = 0;

	if (enter_ns(mg_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		struct sockaddr_storage dst, src;
		enum variant v;
		socklen_t len;
		char buf[32];
		int n;

		pthread_mutex_lock(&mg.lock[id]);
		if (!atomic_load(&mg.sending)) {
			pthread_mutex_unlock(&mg.lock[id]);
			sleep_us(500);
			continue;
		}
		v = atomic_load(&mg.variant);
		if (fd_variant != (int)v) {
			if (fd >= 0)
				close(fd);
			fd = socket(v == V6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
			len = loop_addr(v == V6 ? V6 : V4, MG_PORT + 1 + id, &src);
			if (bind(fd, (void *)&src, len)) {
				perror("migrate sender bind");
				exit(1);
			}
			fd_variant = v;
			seq = 0;
		}
		/* A new round starts its count at 0. */
		if (atomic_load(&mg.sent[id]) == 0)
			seq = 0;
		len = loop_addr(v == V6 ? V6 : V4, MG_PORT, &dst);
		n = snprintf(buf, sizeof(buf), "mg %d %d %d", atomic_load(&mg.round), id, seq);
		if (seq < MG_MAX_SEQ && sendto(fd, buf, n, 0, (void *)&dst, len) == n) {
			seq++;
			atomic_store(&mg.sent[id], seq);
		}
		pthread_mutex_unlock(&mg.lock[id]);
		if (seq % 32 == 0)
			sleep_us(1000);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

struct member {
	int fd;
	long retire_at;		/* not read from then on; closed 5 ms later */
};

static int mg_member(enum variant v)
{
	struct sockaddr_storage ss;
	socklen_t len = loop_addr(v, MG_PORT, &ss);
	int one = 1, rcvbuf = 1 << 20;
	int fd = socket(sock_family(v), SOCK_DGRAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void mg_read(int fd, int round)
{
	char buf[64];
	int n;

	while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		int r, id, seq;

		buf[n] = '\0';
		if (sscanf(buf, "mg %d %d %d", &r, &id, &seq) != 3 || r != round ||
		    id < 0 || id >= MG_SENDERS || seq < 0 || seq >= MG_MAX_SEQ) {
			violation("migrate round %d: a stray datagram \"%s\"\n", round, buf);
			continue;
		}
		if (mg.seen[id][seq]++) {
			mg.dupes++;
			violation("migrate round %d: sender %d's datagram %d twice\n",
				  round, id, seq);
		} else {
			mg.received++;
		}
	}
}

static long mg_drops(void)
{
	return mib("/proc/thread-self/net/snmp", "Udp:", "NoPorts") +
	       mib("/proc/thread-self/net/snmp", "Udp:", "InErrors") +
	       mib("/proc/thread-self/net/netstat", "TcpExt:", "UdpMigrateFailure");
}

static int mg_round(int round, enum variant v, uint64_t *s)
{
	struct member m[4];
	long end = now_ms() + ROUND_MS, drops0, migrated0, sent = 0, got0, lost;
	int nm = 0, i, k, id;

	drops0 = mg_drops();
	migrated0 = mib("/proc/thread-self/net/netstat", "TcpExt:", "UdpMigrate");
	got0 = mg.received;
	for (id = 0; id < MG_SENDERS; id++) {
		memset(mg.seen[id], 0, MG_MAX_SEQ);
		atomic_store(&mg.sent[id], 0);
	}
	m[nm].fd = mg_member(v);
	m[nm++].retire_at = 0;
	if (m[0].fd < 0)
		return -1;
	atomic_store(&mg.variant, v);
	atomic_store(&mg.round, round);
	atomic_store(&mg.sending, 1);
	while (now_ms() < end && !atomic_load(&stopping)) {
		struct pollfd pfd[4];
		long t = now_ms();

		for (i = 0; i < nm; i++) {
			pfd[i].fd = m[i].retire_at && t >= m[i].retire_at ? -1 : m[i].fd;
			pfd[i].events = POLLIN;
		}
		poll(pfd, nm, 1);
		for (i = 0; i < nm; i++)
			if (pfd[i].fd >= 0 && (pfd[i].revents & POLLIN))
				mg_read(m[i].fd, round);
		/* Close the retired member 5 ms after it stopped being read:
		 * its queue must move to the others.
		 */
		for (i = 0; i < nm; i++) {
			if (m[i].retire_at && t >= m[i].retire_at + 5) {
				int queued = 0;

				/* The bytes of the first datagram: one is enough. */
				if (!ioctl(m[i].fd, FIONREAD, &queued) && queued)
					mg.closed_queued++;
				close(m[i].fd);
				mg.closes++;
				m[i] = m[--nm];
				i--;
			}
		}
		/* Now and then a new member, and the oldest one retires. */
		if (nm < 4 && pick(s, 20) == 0) {
			int fd = mg_member(v);

			if (fd >= 0) {
				for (i = 0; i < nm; i++)
					if (!m[i].retire_at)
						break;
				if (i < nm)
					m[i].retire_at = t;
				m[nm].fd = fd;
				m[nm++].retire_at = 0;
			}
		}
	}
	/* Quiescent: the senders stop, the members drain. */
	atomic_store(&mg.sending, 0);
	for (id = 0; id < MG_SENDERS; id++) {
		pthread_mutex_lock(&mg.lock[id]);
		pthread_mutex_unlock(&mg.lock[id]);
	}
	for (k = 0; k < 20; k++) {
		for (i = 0; i < nm; i++)
			mg_read(m[i].fd, round);
		sleep_us(5000);
	}
	for (id = 0; id < MG_SENDERS; id++)
		sent += atomic_load(&mg.sent[id]);
	lost = sent - (mg.received - got0);
	mg.migrated += mib("/proc/thread-self/net/netstat", "TcpExt:", "UdpMigrate") - migrated0;
	mg.counted += mg_drops() - drops0;
	if (lost != mg_drops() - drops0) {
		violation("migrate %s round %d: %ld sent, %ld received, %ld lost but %ld counted as dropped\n",
			  variant_name[v], round, sent, mg.received - got0, lost,
			  mg_drops() - drops0);
	}
	mg.lost += lost;
	for (i = 0; i < nm; i++)
		close(m[i].fd);
	return 0;
}

/* ---- the checkers' thread ------------------------------------------ */

/* ---- two-thread races: a checker's call against its racer's -------- */

static bool has_migrate;	/* net.ipv4.udp_migrate exists */

/* A checker arms a round, both threads meet at a start line, each waits
 * a few loop turns (the delay on one side or the other), then makes its
 * call: the checker its own, the racer act().
 */
struct racer {
	int ns;
	int (*act)(struct racer *r);	/* 0 or -errno */
	atomic_int go;		/* 2 when both sides may run */
	atomic_int armed;	/* the round's data is set */
	atomic_int spin;	/* the racer's delay, in loop turns */
	atomic_int ret;		/* act()'s */
	/* act()'s data */
	int fd;
	socklen_t len;
	struct sockaddr_storage ss;
	int nl;
	struct destroy_req q;
};

static void spin_turns(int turns)
{
	for (volatile int i = 0; i < turns; i++)
		;
}

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	if (enter_ns(r->ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		if (!atomic_load(&r->armed)) {
			sleep_us(50);
			continue;
		}
		atomic_fetch_add(&r->go, 1);
		while (atomic_load(&r->go) < 2 && !atomic_load(&stopping))
			;
		spin_turns(atomic_load(&r->spin));
		atomic_store(&r->ret, r->act(r));
		atomic_store(&r->armed, 0);
	}
	return NULL;
}

/* The checker's side: meet the racer, wait @mine turns (the racer waits
 * @theirs), make the call @fn(@arg), then wait for the racer's. Return:
 * false once the run stops (the round then checks nothing).
 */
static bool race(struct racer *r, int mine, int theirs, int (*fn)(int), int arg)
{
	atomic_store(&r->spin, theirs);
	atomic_store(&r->go, 0);
	atomic_store(&r->armed, 1);
	atomic_fetch_add(&r->go, 1);
	while (atomic_load(&r->go) < 2 && !atomic_load(&stopping))
		;
	spin_turns(mine);
	fn(arg);
	while (atomic_load(&r->armed) && !atomic_load(&stopping))
		sched_yield();
	return !atomic_load(&stopping);
}

/* A racer's wait at the start line ends when the run stops. */
static void race_end(struct racer *r)
{
	atomic_store(&r->go, 2);
}

/* ---- checker: one group through close() racing bind() ------------- */

#define GP_PER_INDEX	2	/* datagrams per index per round */

static int act_bind(struct racer *r)
{
	return bind(r->fd, (void *)&r->ss, r->len) ? -errno : 0;
}

static struct racer gp_racer = { .act = act_bind };
static struct {
	long rounds, splits, at[2];
} gp;

static int gp_member(enum variant v, bool bound)
{
	struct sockaddr_storage ss;
	socklen_t len = loop_addr(v, GP_PORT, &ss);
	int one = 1, fd = socket(sock_family(v), SOCK_DGRAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bound && bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The member at the index of the first payload byte. */
static int gp_attach(int fd)
{
	struct sock_filter code[] = {
		{ BPF_LD | BPF_B | BPF_ABS, 0, 0, 0 },
		{ BPF_RET | BPF_A, 0, 0, 0 },
	};
	struct sock_fprog fprog = { .len = 2, .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog,
			  sizeof(fprog));
}

/* Count the datagrams on @fds[0..1] by index into @got[fd][index]
 * (index 2: any other), until @want came and none for 2 ms more, or 2 s.
 */
static void gp_read(const int *fds, int got[2][3], int want)
{
	struct pollfd pfd[2] = {
		{ .fd = fds[0], .events = POLLIN },
		{ .fd = fds[1], .events = POLLIN },
	};
	int total = 0;
	uint8_t b;

	memset(got, 0, sizeof(int[2][3]));
	while (poll(pfd, 2, total < want ? 2000 : 2) > 0)
		for (int i = 0; i < 2; i++)
			while (recv(fds[i], &b, 1, MSG_DONTWAIT) == 1) {
				got[i][b < 2 ? b : 2]++;
				total++;
			}
}

static int gp_round(int round, enum variant v, uint64_t *s)
{
	int sk, m, n, p, fds[2], got[2][3], i, ret = -1;
	struct sockaddr_storage to;
	socklen_t tolen = loop_addr(v, GP_PORT, &to);
	bool s_first = pick(s, 2);
	int delay = pick(s, 2000);

	/* The chaos never writes this netns's sysctls: the checker does. */
	if (has_migrate &&
	    write_str("/proc/sys/net/ipv4/udp_migrate", round & 1 ? "1" : "0"))
		return -1;
	p = gp_member(v, false);
	if (p < 0)
		return -1;
	/* bind() joins the group of the first matching socket of the port's
	 * chain, where a new IPv4 socket goes to the head and an IPv6
	 * reuseport one to the tail: S comes first in half of the rounds.
	 */
	sk = s_first ? gp_member(v, true) : -1;
	m = gp_member(v, true);
	if (!s_first)
		sk = gp_member(v, true);
	n = gp_member(v, false);
	if (sk < 0 || m < 0 || n < 0 || gp_attach(m))
		goto out;
	gp_racer.fd = n;
	gp_racer.len = loop_addr(v, GP_PORT, &gp_racer.ss);
	/* close(S) here, bind(N) in the racer. */
	if (!race(&gp_racer, round & 2 ? 0 : delay, round & 2 ? delay : 0,
		  close, sk)) {
		sk = -1;
		ret = 0;
		goto out;
	}
	sk = -1;
	if (atomic_load(&gp_racer.ret)) {
		errno = -atomic_load(&gp_racer.ret);
		goto out;
	}
	for (i = 0; i < 2 * GP_PER_INDEX; i++) {
		uint8_t b = i & 1;

		if (sendto(p, &b, 1, 0, (void *)&to, tolen) != 1)
			goto out;
	}
	fds[0] = m;
	fds[1] = n;
	gp_read(fds, got, 2 * GP_PER_INDEX);
	/* N's index i: N has all of i, M all of the other, nothing else. */
	i = got[1][1] ? 1 : 0;
	if (got[1][i] == GP_PER_INDEX && !got[1][!i] && !got[1][2] &&
	    got[0][!i] == GP_PER_INDEX && !got[0][i] && !got[0][2]) {
		gp.at[i]++;
	} else {
		gp.splits++;
		violation("group round %d (%s, udp_migrate=%d, %s bound first): N apart from M: M got %d/%d/%d, N got %d/%d/%d of index 0/1/other\n",
			  round, variant_name[v], round & 1, s_first ? "S" : "M",
			  got[0][0], got[0][1], got[0][2],
			  got[1][0], got[1][1], got[1][2]);
	}
	ret = 0;
out:
	if (sk >= 0)
		close(sk);
	close(m);
	close(n);
	close(p);
	return ret;
}

/* ---- checker: close() racing SOCK_DESTROY of a group member ------- */

static int act_destroy(struct racer *r)
{
	return destroy_send(r->nl, &r->q);
}

static struct racer ds_racer = { .act = act_destroy };
static struct {
	long rounds, destroyed, received;
} ds;

/* A reuseport member on the wildcard address of @v's family: no bound
 * address, so that SOCK_DESTROY's disconnect rehashes it and takes it out
 * of its group.
 */
static int ds_member(enum variant v)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *sin = (void *)&ss;
	struct sockaddr_in6 *sin6 = (void *)&ss;
	int one = 1, fd = socket(sock_family(v), SOCK_DGRAM | SOCK_NONBLOCK, 0);
	socklen_t len;

	if (fd < 0)
		return -1;
	if (v == V4) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(DS_PORT);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(DS_PORT);
		if (v == MAPPED)
			inet_pton(AF_INET6, "::ffff:0.0.0.0", &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* S and M in a group on the wildcard address; close(S) here while the
 * racer destroys S over sock_diag; then M, the group's last member, must
 * get a datagram sent to the port. The kernel must not splat either way.
 */
static int ds_round(int round, enum variant v, uint64_t *s)
{
	struct sockaddr_storage to;
	socklen_t tolen = loop_addr(v, DS_PORT, &to);
	int sk, m, p, delay = pick(s, 2000), ret = -1;
	struct pollfd pfd;
	char b = 'd';

	if (has_migrate &&
	    write_str("/proc/sys/net/ipv4/udp_migrate", round & 1 ? "1" : "0"))
		return -1;
	p = socket(sock_family(v), SOCK_DGRAM, 0);
	sk = ds_member(v);
	m = ds_member(v);
	if (p < 0 || sk < 0 || m < 0)
		goto out;
	destroy_prepare(NULL, sk, &ds_racer.q);
	if (!race(&ds_racer, round & 2 ? 0 : delay, round & 2 ? delay : 0,
		  close, sk)) {
		sk = -1;
		ret = 0;
		goto out;
	}
	sk = -1;
	ds.destroyed += !atomic_load(&ds_racer.ret);
	if (sendto(p, &b, 1, 0, (void *)&to, tolen) != 1)
		goto out;
	pfd = (struct pollfd){ .fd = m, .events = POLLIN };
	if (poll(&pfd, 1, 2000) == 1 && recv(m, &b, 1, MSG_DONTWAIT) == 1)
		ds.received++;
	else
		violation("destroy round %d (%s, udp_migrate=%d): the group's last member got no datagram\n",
			  round, variant_name[v], round & 1);
	ret = 0;
out:
	if (sk >= 0)
		close(sk);
	if (m >= 0)
		close(m);
	if (p >= 0)
		close(p);
	return ret;
}

static bool has_sysctl(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/%s", name);
	return !access(path, F_OK);
}

static bool has_bind_connect(void)
{
	struct udp_bind_connect bc = {};	/* EINVAL where it exists */
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret;

	ret = setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc));
	ret = ret && errno == ENOPROTOOPT;
	close(fd);
	return !ret;
}

static bool run_h4, run_uq, run_mg, run_gp, run_ds;
static int h4_rounds, mg_rounds;

static void *h4_main(void *arg)
{
	uint64_t s = seed * 31 + 1;
	int round = 0;

	(void)arg;
	if (enter_ns(h4_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		if (h4_round(round, round % NVARIANTS, &s) < 0) {
			violation("hash4: round %d could not be set up\n", round);
			break;
		}
		round++;
	}
	h4_rounds = round;
	return NULL;
}

static void *mg_main(void *arg)
{
	uint64_t s = seed * 131 + 7;
	int round = 0;

	(void)arg;
	if (enter_ns(mg_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		if (mg_round(round, round % NVARIANTS, &s) < 0) {
			violation("migrate: round %d could not be set up\n", round);
			break;
		}
		round++;
	}
	mg_rounds = round;
	return NULL;
}

static void *gp_main(void *arg)
{
	uint64_t s = seed * 7919 + 3;
	int round = 0;

	(void)arg;
	if (enter_ns(gp_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		if (gp_round(round, round % NVARIANTS, &s) < 0) {
			violation("group: round %d could not be set up: %s\n",
				  round, strerror(errno));
			break;
		}
		round++;
	}
	gp.rounds = round;
	race_end(&gp_racer);
	return NULL;
}

static void *ds_main(void *arg)
{
	uint64_t s = seed * 6113 + 5;
	int round = 0;

	(void)arg;
	if (enter_ns(ds_ns))
		exit(1);
	while (!atomic_load(&stopping)) {
		if (ds_round(round, round % NVARIANTS, &s) < 0) {
			violation("destroy: round %d could not be set up: %s\n",
				  round, strerror(errno));
			break;
		}
		round++;
	}
	ds.rounds = round;
	race_end(&ds_racer);
	return NULL;
}

static void *uq_main(void *arg)
{
	int round = 0;

	(void)arg;
	while (!atomic_load(&stopping)) {
		atomic_store(&uq.variant, round++ % 2 ? V6 : V4);
		sleep_us(ROUND_MS * 1000);
	}
	return NULL;
}

/* ---- main ----------------------------------------------------------- */

static int sysctl_in(int ns, const char *name, const char *val)
{
	char path[128];
	int ret;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/%s", name);
	if (enter_ns(ns))
		return -1;
	ret = write_str(path, val);
	enter_ns(orig_ns);
	return ret;
}

static bool module_loaded(void)
{
	return !access("/sys/module/udp_hotswap", F_OK);
}

int main(int argc, char **argv)
{
	pthread_t h4_t, h4_d, uq_t, uq_r[3], mg_t, mg_s[MG_SENDERS], gp_t, gp_b,
		  ds_t, ds_r;
	int gro_pin[2];
	struct rlimit rl = { 4096, 4096 };
	struct chaos *chaos;
	bool was_loaded;
	long total = 0;
	int opt, i;

	while ((opt = getopt(argc, argv, "s:d:j:m:C:")) != -1) {
		switch (opt) {
		case 's': seed = strtoul(optarg, NULL, 0); break;
		case 'd': duration = atoi(optarg); break;
		case 'j': nthreads = atoi(optarg); break;
		case 'm': module_path = optarg; break;
		case 'C': checkers = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-d SECONDS] [-j THREADS] [-m MODULE.ko] [-C hash4,unique,migrate,group]\n",
				argv[0]);
			return 1;
		}
	}
	if (!module_path && !access("./udp_hotswap.ko", R_OK))
		module_path = "./udp_hotswap.ko";
	if (module_path && !*module_path)
		module_path = NULL;
	if (geteuid()) {
		printf("udp_fuzz: SKIP: needs root\n");
		return 4;
	}
	if (!seed)
		seed = 1;
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);	/* sendmmsg on a pool slot that is TCP */
	setvbuf(stdout, NULL, _IOLBF, 0);
	start_ms = now_ms();
	/* The start on the kernel's console too, to time what it prints. */
	write_str("/dev/kmsg", "udp_fuzz: started\n");
	orig_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < CHAOS_NS; i++)
		chaos_ns[i] = make_ns();
	h4_ns = make_ns();
	uq_ns = make_ns();
	mg_ns = make_ns();
	gp_ns = make_ns();
	ds_ns = make_ns();
	if (orig_ns < 0 || chaos_ns[0] < 0 || chaos_ns[1] < 0 || h4_ns < 0 ||
	    uq_ns < 0 || mg_ns < 0 || gp_ns < 0 || ds_ns < 0) {
		perror("udp_fuzz: netns");
		return 1;
	}
	was_loaded = module_loaded();
	progs[0] = load_reuseport_prog(BPF_SK_REUSEPORT_SELECT, SK_PASS);
	progs[1] = load_reuseport_prog(BPF_SK_REUSEPORT_SELECT, SK_DROP);
	progs[2] = load_reuseport_prog(BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, SK_PASS);
	progs[3] = load_reuseport_prog(BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, SK_DROP);
	printf("udp_fuzz: seed %lu, %d s, %d chaos threads in %d netns, reuseport programs %s, module %s\n",
	       seed, duration, nthreads, CHAOS_NS,
	       progs[0] >= 0 && progs[3] >= 0 ? "loaded" : "not loaded",
	       module_path ? module_path : "none");

	run_uq = has_bind_connect();
	run_h4 = run_uq && has_sysctl("udp_hash4");
	run_mg = has_migrate = has_sysctl("udp_migrate");
	run_gp = !!strstr(checkers, "group");
	run_ds = !!strstr(checkers, "destroy");
	run_uq &= !!strstr(checkers, "unique");
	run_h4 &= !!strstr(checkers, "hash4");
	run_mg &= !!strstr(checkers, "migrate");
	if (!run_uq)
		printf("udp_fuzz: no UDP_BIND_CONNECT (ENOPROTOOPT): the unique and hash4 checkers do not run\n");
	else if (!run_h4)
		printf("udp_fuzz: no net.ipv4.udp_hash4: the hash4 checker does not run\n");
	if (!run_mg)
		printf("udp_fuzz: no net.ipv4.udp_migrate: the migrate checker does not run\n");
	if ((run_h4 && sysctl_in(h4_ns, "udp_hash4", "1")) ||
	    (run_mg && sysctl_in(mg_ns, "udp_migrate", "1"))) {
		perror("udp_fuzz: checker sysctls");
		return 1;
	}
	/* UDP_GRO turns the static keys udp_encap_needed_key and
	 * udpv6_encap_needed_key on, and the last such socket's close turns
	 * them off: each flip patches the kernel's text while the other vCPU
	 * runs it. Under QEMU's TCG that ended the stock kernel in an int3
	 * Oops in udp_destroy_sock() (the cold CI run of 6e82804), as it did
	 * once at boot. Two sockets with UDP_GRO, open for the whole run,
	 * keep the keys on; the ops' own GRO sockets then flip nothing.
	 */
	for (i = 0; i < 2; i++) {
		int one = 1;

		gro_pin[i] = socket(i ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		setsockopt(gro_pin[i], SOL_UDP, UDP_GRO, &one, sizeof(one));
	}
	for (i = 0; i < MG_SENDERS; i++) {
		mg.seen[i] = calloc(1, MG_MAX_SEQ);
		pthread_mutex_init(&mg.lock[i], NULL);
	}

	chaos = calloc(nthreads, sizeof(*chaos));
	for (i = 0; i < nthreads; i++) {
		chaos[i].index = i;
		chaos[i].ns = chaos_ns[i % CHAOS_NS];
		chaos[i].rnd = seed * 1000003 + i + 1;
		pthread_create(&chaos[i].thread, NULL, chaos_main, &chaos[i]);
	}
	if (run_h4) {
		pthread_create(&h4_d, NULL, h4_disturber, NULL);
		pthread_create(&h4_t, NULL, h4_main, NULL);
	}
	if (run_uq) {
		pthread_create(&uq_t, NULL, uq_main, NULL);
		for (i = 0; i < 3; i++)
			pthread_create(&uq_r[i], NULL, uq_racer, (void *)(uintptr_t)i);
	}
	if (run_mg) {
		for (i = 0; i < MG_SENDERS; i++)
			pthread_create(&mg_s[i], NULL, mg_sender, (void *)(uintptr_t)i);
		pthread_create(&mg_t, NULL, mg_main, NULL);
	}
	if (run_gp) {
		gp_racer.ns = gp_ns;
		pthread_create(&gp_b, NULL, racer_main, &gp_racer);
		pthread_create(&gp_t, NULL, gp_main, NULL);
	}
	if (run_ds) {
		/* sock_diag answers for the netns of its netlink socket. */
		if (enter_ns(ds_ns))
			return 1;
		ds_racer.nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
				     NETLINK_SOCK_DIAG);
		enter_ns(orig_ns);
		ds_racer.ns = ds_ns;
		pthread_create(&ds_r, NULL, racer_main, &ds_racer);
		pthread_create(&ds_t, NULL, ds_main, NULL);
	}
	sleep(duration);
	atomic_store(&stopping, 1);
	for (i = 0; i < nthreads; i++)
		pthread_join(chaos[i].thread, NULL);
	if (run_h4) {
		pthread_join(h4_t, NULL);
		pthread_join(h4_d, NULL);
	}
	if (run_uq) {
		pthread_join(uq_t, NULL);
		for (i = 0; i < 3; i++)
			pthread_join(uq_r[i], NULL);
	}
	if (run_mg) {
		pthread_join(mg_t, NULL);
		for (i = 0; i < MG_SENDERS; i++)
			pthread_join(mg_s[i], NULL);
	}
	if (run_gp) {
		pthread_join(gp_t, NULL);
		pthread_join(gp_b, NULL);
	}
	if (run_ds) {
		pthread_join(ds_t, NULL);
		pthread_join(ds_r, NULL);
	}
	for (i = 0; i < POOL; i++)
		close(POOL_FD + i);
	close(gro_pin[0]);
	close(gro_pin[1]);
	/* Leave the module as it was found. */
	if (module_path) {
		for (i = 0; i < 100 && module_loaded() != was_loaded; i++) {
			if (was_loaded) {
				int fd = open(module_path, O_RDONLY | O_CLOEXEC);

				syscall(__NR_finit_module, fd, "", 0);
				close(fd);
			} else {
				syscall(__NR_delete_module, "udp_hotswap", O_NONBLOCK);
			}
			sleep_us(100000);
		}
	}

	printf("udp_fuzz: ops (done/succeeded):");
	for (i = 0; i < NOPS; i++) {
		printf(" %s=%ld/%ld", op_name[i], atomic_load(&op_count[i]),
		       atomic_load(&op_ok[i]));
		total += atomic_load(&op_count[i]);
	}
	printf("\nudp_fuzz: %ld chaos ops\n", total);
	if (run_h4) {
		printf("udp_fuzz: hash4: %d rounds, %ld sent, %ld landed on the connected socket, %ld misdelivered, %ld disturbances (%ld reuseport binds)\n",
		       h4_rounds, h4.sent, h4.landed, atomic_load(&h4.misdelivered),
		       atomic_load(&h4.disturbed), atomic_load(&h4.group_binds));
		if (atomic_load(&h4.misdelivered))
			violation("hash4: %ld datagrams landed on other sockets\n",
				  atomic_load(&h4.misdelivered));
		if (!atomic_load(&h4.group_binds) || !h4.landed)
			violation("hash4: nothing checked (no group on the port, or nothing landed)\n");
	}
	if (run_uq) {
		printf("udp_fuzz: unique: %ld attempts, %ld successes\n",
		       atomic_load(&uq.attempts), atomic_load(&uq.successes));
		if (!atomic_load(&uq.successes))
			violation("unique: no attempt succeeded: nothing checked\n");
	}
	if (run_mg) {
		printf("udp_fuzz: migrate: %d rounds, %ld received, %ld duplicated, %ld lost, %ld counted as dropped, %ld migrated, %ld members closed (%ld with datagrams queued)\n",
		       mg_rounds, mg.received, mg.dupes, mg.lost, mg.counted,
		       mg.migrated, mg.closes, mg.closed_queued);
		if (!mg.migrated)
			violation("migrate: no datagram migrated: nothing checked\n");
	}
	if (run_gp) {
		printf("udp_fuzz: group: %ld rounds, N joined at index 0 in %ld, at 1 in %ld, apart from M in %ld\n",
		       gp.rounds, gp.at[0], gp.at[1], gp.splits);
		if (!gp.at[0] && !gp.at[1])
			violation("group: no round got through: nothing checked\n");
	}
	if (run_ds) {
		printf("udp_fuzz: destroy: %ld rounds, SOCK_DESTROY came first in %ld, the last member got its datagram in %ld\n",
		       ds.rounds, ds.destroyed, ds.received);
		if (!ds.received)
			violation("destroy: no round got through: nothing checked\n");
	}
	printf("udp_fuzz: %ld invariant violations\n", atomic_load(&violations));
	if (atomic_load(&violations))
		printf("udp_fuzz: the first at %.1f s\n",
		       atomic_load(&first_violation_ms) / 1000.0);
	return atomic_load(&violations) ? 1 : 0;
}
