// SPDX-License-Identifier: GPL-2.0
/*
 * hotswapd: a reference hot-upgradable UDP server for the udp-hotswap demo
 * (make run). A master and W worker processes, each worker with its own
 * SO_REUSEPORT socket on one address and port, serving a small QUIC-like
 * protocol (hotswap_proto.h). SIGHUP starts a new generation of workers;
 * the old one stops taking new flows, serves its flows until they end or
 * a grace time passes, then exits. Two steering modes:
 *
 * In both, a reuseport BPF program (REUSEPORT_SOCKARRAY) steers what
 * reaches the group: Initials through a flow table (client ID -> worker)
 * to the newest generation, so that a handshake stays on the worker that
 * got its first Initial, and other datagrams by the server-chosen
 * connection ID to the worker that owns the flow.
 *
 *   eou  established-over-unconnected: the worker that gets a flow's first
 *        datagram gives the flow its own connected socket, with
 *        UDP_BIND_CONNECT where the kernel has it (-B: bind()+connect()
 *        always), and serves the flow on it; a draining worker closes its
 *        listener once its pending handshakes are done.
 *   cid  every datagram comes through the group, to the listener of the
 *        owning worker; a draining worker keeps its listener until its
 *        flows end.
 *
 * usage: hotswapd [-m eou|cid] [-w W[,W]...] [-a ADDR] [-p PORT]
 *                 [-g GRACE_MS] [-B] [-K KILL_MS]
 * -w with a list: generation g has the ((g - 1) % n)-th count of workers,
 * so that the group's size changes at each reload. -K: KILL_MS after each
 * reload, SIGKILL the first worker of the generation that drains, as a
 * crash would end it (for the soak: what a crash loses).
 * It prints "ready pid=N" when the first generation serves, and one line
 * per generation event; workers print their counters when they exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hotswap_proto.h"
#include "udp_bind_connect_uapi.h"


#define BANKS		4	/* generations alive at once, in the sockarray */
#define MAX_WORKERS	16
#define FLOW_BUCKETS	1024
#define HS_WAIT_MS	1000	/* eou: how long a drain waits for handshakes */

static struct {
	int mode;		/* 'e' or 'c' */
	int workers[MAX_WORKERS];	/* per generation, cycled (-w) */
	int nworkers;
	int kill_ms;		/* -K, 0: none */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int grace_ms;
	bool plain_connect;	/* -B */
} cfg = { .mode = 'e', .workers = { 2 }, .nworkers = 1, .grace_ms = 3000 };

static int sockarray_fd = -1, newest_fd = -1, flowtab_fd = -1, prog_fd = -1;

static void die(const char *what)
{
	fprintf(stderr, "hotswapd: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int workers_of(int gen)
{
	return cfg.workers[(gen - 1) % cfg.nworkers];
}

/* A generation's workers have the sockarray keys base + 0 .. W - 1. */
static uint32_t bank_base(int gen)
{
	return (gen % BANKS) * MAX_WORKERS;
}

/* ---- cid mode: the maps and the reuseport program ---- */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int map_create(int type, int key, int val, int max)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = val;
	a.max_entries = max;
	return sys_bpf(BPF_MAP_CREATE, &a);
}

static int map_update(int fd, const void *key, const void *val)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)key;
	a.value = (uintptr_t)val;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

#define I(c, d, s, o, i) ((struct bpf_insn){ c, d, s, o, i })
#define LD_MAP(reg, fd) \
	I(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd), I(0, 0, 0, 0, 0)

/*
 * r6 ctx, r7 type, r8 id (cid or client id), key at fp-4, id at fp-8.
 * DATA/CLOSE: key = cid & 0xffff. INITIAL: key = flowtab[id], or else
 * base + hash % W of the newest generation (newest[0] = base | W << 8),
 * stored in flowtab. Then select key; if that
 * fails for an Initial, fall back to the newest generation once; else
 * SK_PASS lets the kernel pick by hash.
 */
static int load_prog(void)
{
	struct bpf_insn p[] = {
		/* 0 */ I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		I(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_6,
		  offsetof(struct sk_reuseport_md, data), 0),
		I(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_3, BPF_REG_6,
		  offsetof(struct sk_reuseport_md, data_end), 0),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 8 + HDR_LEN),
		/* 5: short: let the kernel pick */
		I(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 0, 0 /* -> pass */),
		I(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_7, BPF_REG_2,
		  8 + offsetof(struct hs_hdr, type), 0),
		I(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_8, BPF_REG_2,
		  8 + offsetof(struct hs_hdr, id), 0),
		I(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_8, -8, 0),
		/* 9: not an Initial: key = id & 0xffff, select */
		I(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_7, 0, 0 /* -> initial */, T_INITIAL),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_9, BPF_REG_8, 0, 0),
		I(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_9, 0, 0, 0xffff),
		I(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_9, -4, 0),
		I(BPF_JMP | BPF_JA, 0, 0, 0 /* -> select */, 0),
		/* 14 initial: r0 = flowtab[id] */
		LD_MAP(BPF_REG_1, flowtab_fd),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		/* 19 */
		I(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 0 /* -> newest */, 0),
		I(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_9, BPF_REG_0, 0, 0),
		I(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_9, -4, 0),
		/* 22: select it; on failure, newest */
		LD_MAP(BPF_REG_2, sockarray_fd),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -4),
		I(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_select_reuseport),
		/* 29 */
		I(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 0 /* -> pass */, 0),
		/* 30 newest: r0 = newest[0] */
		I(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -12, 0),
		LD_MAP(BPF_REG_1, newest_fd),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -12),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		/* 36 */
		I(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 0 /* -> pass */, 0),
		I(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_9, BPF_REG_0, 0, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_5, BPF_REG_9, 0, 0),
		I(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_5, 0, 0, 8),
		I(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_9, 0, 0, 0xff),
		I(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_1, BPF_REG_6,
		  offsetof(struct sk_reuseport_md, hash), 0),
		/* W is never 0: start_gen() stores 1 to MAX_WORKERS. */
		I(BPF_ALU64 | BPF_MOD | BPF_X, BPF_REG_1, BPF_REG_5, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_9, BPF_REG_1, 0, 0),
		I(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_9, -4, 0),
		/* 45: flowtab[id] = key */
		LD_MAP(BPF_REG_1, flowtab_fd),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -4),
		I(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, BPF_ANY),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_update_elem),
		/* 53 select: sockarray[key] */
		LD_MAP(BPF_REG_2, sockarray_fd),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -4),
		I(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_select_reuseport),
		/* 60 pass */
		I(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, SK_PASS),
		I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[1 << 16];
	union bpf_attr a;
	int fd;

	/* Jump offsets: target - (insn + 1). */
	p[5].off = 60 - 6;
	p[9].off = 14 - 10;
	p[13].off = 53 - 14;
	p[19].off = 30 - 20;
	p[29].off = 60 - 30;
	p[36].off = 60 - 37;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	a.expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE;
	a.insns = (uintptr_t)p;
	a.insn_cnt = sizeof(p) / sizeof(p[0]);
	a.license = (uintptr_t)"GPL";
	a.log_buf = (uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0 && errno == EINVAL) {
		/* A kernel without SELECT_OR_MIGRATE for UDP takes it too;
		 * one without the attach type at all wants SELECT.
		 */
		a.expected_attach_type = BPF_SK_REUSEPORT_SELECT;
		fd = sys_bpf(BPF_PROG_LOAD, &a);
	}
	if (fd < 0)
		fprintf(stderr, "hotswapd: verifier:\n%s\n", log);
	return fd;
}

/* ---- workers ---- */

struct flow {
	struct flow *next;
	struct sockaddr_storage peer;
	int fd;			/* per-flow socket (eou), or -1 */
	uint8_t initials;	/* bitmap of Initials seen */
	bool done;		/* handshake answered */
};

static struct {
	int gen, idx, listener, ep;
	uint32_t cid;		/* bank * W + idx, with gen in the top bits */
	struct flow *flows[FLOW_BUCKETS];
	int nflows;
	volatile sig_atomic_t drain, stop;
	/* counters, printed at exit */
	long served, strays, unknown, flows_made, bc_fail, hs;
} w;

static void on_drain(int sig)
{
	(void)sig;
	w.drain = 1;
}

static void on_stop(int sig)
{
	(void)sig;
	w.stop = 1;
}

static bool same_peer(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (void *)a, *y = (void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (void *)a, *y = (void *)b;

	return x->sin6_port == y->sin6_port &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

static unsigned int bucket(const struct sockaddr_storage *p)
{
	return ntohs(((struct sockaddr_in *)p)->sin_port) % FLOW_BUCKETS;
}

static struct flow *find_flow(const struct sockaddr_storage *p)
{
	struct flow *f;

	for (f = w.flows[bucket(p)]; f; f = f->next)
		if (same_peer(&f->peer, p))
			return f;
	return NULL;
}

static socklen_t sslen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
					  sizeof(struct sockaddr_in6);
}

/* The flow's own socket: UDP_BIND_CONNECT, or bind() then connect(). */
static int flow_socket(const struct sockaddr_storage *peer)
{
	struct udp_bind_connect bc;
	int one = 1, fd = socket(cfg.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	/* Not in the listeners' group: SO_REUSEADDR only, as in seed 001. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!cfg.plain_connect) {
		memcpy(&bc.local, &cfg.addr, sizeof(cfg.addr));
		memcpy(&bc.remote, peer, sizeof(*peer));
		if (!setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)))
			return fd;
		if (errno != ENOPROTOOPT) {
			close(fd);
			return -1;
		}
	}
	if (bind(fd, (void *)&cfg.addr, cfg.addrlen) ||
	    connect(fd, (void *)peer, sslen(peer))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void drop_flow(struct flow *f)
{
	struct flow **pp = &w.flows[bucket(&f->peer)];

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	if (f->fd >= 0)
		close(f->fd);
	free(f);
	w.nflows--;
}

static void reply(int fd, const struct sockaddr_storage *to, bool connected,
		  struct hs_hdr *h, uint8_t type)
{
	if (type == T_ECHO)
		h->echoed = h->type;
	h->type = type;
	h->worker = w.cid;
	if (connected)
		send(fd, h, HDR_LEN, MSG_DONTWAIT);
	else
		sendto(fd, h, HDR_LEN, MSG_DONTWAIT, (void *)to, sslen(to));
}

/* One datagram @h from @src, received on @fd (the listener or a flow's). */
static void serve(int fd, const struct sockaddr_storage *src, struct hs_hdr *h)
{
	struct flow *f = find_flow(src);
	int out = fd;
	bool connected;

	w.served++;
	if (!f && h->type == T_INITIAL && w.listener >= 0) {
		f = calloc(1, sizeof(*f));
		f->peer = *src;
		f->fd = -1;
		if (cfg.mode == 'e') {
			f->fd = flow_socket(src);
			if (f->fd < 0)
				w.bc_fail++;
			else
				epoll_ctl(w.ep, EPOLL_CTL_ADD, f->fd,
					  &(struct epoll_event){ .events = EPOLLIN,
								 .data.fd = f->fd });
		}
		f->next = w.flows[bucket(src)];
		w.flows[bucket(src)] = f;
		w.nflows++;
		w.flows_made++;
	}
	if (!f) {
		/* Not ours: answer anyway, the client counts it. */
		w.unknown++;
		reply(fd, src, false, h, T_ECHO);
		return;
	}
	if (f->fd >= 0)
		out = f->fd;
	connected = f->fd >= 0;
	switch (h->type) {
	case T_INITIAL:
		f->initials |= 1 << (h->n_index & 7);
		reply(out, src, connected, h, T_ECHO);
		if (!f->done && f->initials == (1 << h->n_total) - 1) {
			f->done = true;
			w.hs++;
			h->id = w.cid;
			reply(out, src, connected, h, T_HANDSHAKE);
		}
		break;
	case T_CLOSE:
		reply(out, src, connected, h, T_ECHO);
		drop_flow(f);
		break;
	default:
		reply(out, src, connected, h, T_ECHO);
	}
}

/* The flow whose own socket is @fd, or NULL (the listener, or gone). */
static struct flow *flow_by_fd(int fd)
{
	struct flow *f;
	int i;

	for (i = 0; i < FLOW_BUCKETS; i++)
		for (f = w.flows[i]; f; f = f->next)
			if (f->fd == fd)
				return f;
	return NULL;
}

/* Serve what is queued on @fd, the listener or a flow's own socket. */
static void read_socket(int fd)
{
	struct flow *owner = fd == w.listener ? NULL : flow_by_fd(fd);
	struct sockaddr_storage src, peer;
	struct hs_hdr h;
	socklen_t len;
	ssize_t n;

	if (fd != w.listener && !owner)
		return;		/* an event of a flow closed meanwhile */
	if (owner)
		peer = owner->peer;
	for (;;) {
		len = sizeof(src);
		n = recvfrom(fd, &h, sizeof(h), MSG_DONTWAIT, (void *)&src, &len);
		if (n < 0)
			return;
		if (n < (ssize_t)HDR_LEN)
			continue;
		/* Queued before connect(): another flow's datagram. */
		if (owner && !same_peer(&peer, &src))
			w.strays++;
		serve(fd, &src, &h);
		/* A CLOSE freed the flow and its socket: stop here. */
		if (owner && !flow_by_fd(fd))
			return;
	}
}

static int pending_handshakes(void)
{
	struct flow *f;
	int i, n = 0;

	for (i = 0; i < FLOW_BUCKETS; i++)
		for (f = w.flows[i]; f; f = f->next)
			n += !f->done;
	return n;
}

static int listener_socket(void)
{
	int one = 1, fd = socket(cfg.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	int rcvbuf = 4 << 20;

	if (fd < 0)
		die("socket");
	/* Every new flow's datagrams and, in cid mode, all datagrams queue
	 * here: a worker that stalls for a moment must not overflow it. As
	 * QUIC servers do, ask for more than rmem_max when allowed to.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (void *)&cfg.addr, cfg.addrlen))
		die("bind");
	return fd;
}

static void worker(int gen, int idx, int ready_fd)
{
	struct epoll_event ev[64];
	long long drain_at = 0;
	int i, n;

	signal(SIGUSR1, on_drain);
	signal(SIGTERM, on_stop);
	signal(SIGHUP, SIG_IGN);
	/* No worker outlives its master. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		exit(0);
	w.gen = gen;
	w.idx = idx;
	w.cid = (uint32_t)gen << 16 | (bank_base(gen) + idx);
	w.listener = listener_socket();
	{
		uint32_t key = w.cid & 0xffff;
		uint64_t val = w.listener;

		if (map_update(sockarray_fd, &key, &val))
			die("sockarray update");
		/* Attached by every worker: the program belongs to the
		 * group, each attach replaces it with the same one.
		 */
		if (setsockopt(w.listener, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
			       &prog_fd, sizeof(prog_fd)))
			die("SO_ATTACH_REUSEPORT_EBPF");
	}
	w.ep = epoll_create1(0);
	epoll_ctl(w.ep, EPOLL_CTL_ADD, w.listener,
		  &(struct epoll_event){ .events = EPOLLIN, .data.fd = w.listener });
	if (write(ready_fd, "r", 1) != 1)
		die("ready");
	close(ready_fd);

	while (!w.stop) {
		if (w.drain && !drain_at)
			drain_at = now_ms();
		/* The program sends new flows to the newest generation.
		 * eou: leave the group once no handshake is pending here,
		 * or HS_WAIT_MS after the drain, serving what is queued
		 * first; the flows go on on their own sockets. cid: keep
		 * the socket, the flows' datagrams come to it.
		 */
		if (drain_at && cfg.mode == 'e' && w.listener >= 0 &&
		    (!pending_handshakes() || now_ms() - drain_at > HS_WAIT_MS)) {
			read_socket(w.listener);
			close(w.listener);
			w.listener = -1;
		}
		if (drain_at &&
		    (!w.nflows || now_ms() - drain_at > cfg.grace_ms))
			break;
		n = epoll_wait(w.ep, ev, 64, 20);
		for (i = 0; i < n; i++)
			read_socket(ev[i].data.fd);
	}
	fprintf(stderr, "worker gen=%d idx=%d served=%ld flows=%ld handshakes=%ld strays=%ld unknown=%ld flow_socket_failures=%ld left=%d\n",
		w.gen, w.idx, w.served, w.flows_made, w.hs, w.strays, w.unknown,
		w.bc_fail, w.nflows);
	exit(0);
}

/* ---- master ---- */

static volatile sig_atomic_t reload_req, stop_req;

static void on_hup(int sig)
{
	(void)sig;
	reload_req = 1;
}

static void on_term(int sig)
{
	(void)sig;
	stop_req = 1;
}

/* The workers of the generations in each bank; 0 once reaped. */
static pid_t pids[BANKS][MAX_WORKERS];

static void forget_worker(pid_t pid)
{
	for (int b = 0; b < BANKS; b++)
		for (int i = 0; i < MAX_WORKERS; i++)
			if (pids[b][i] == pid)
				pids[b][i] = 0;
}

/* Start generation @gen; return when all its workers serve. */
static void start_gen(int gen)
{
	int p[2], i, W = workers_of(gen);
	char c;

	if (pipe(p))
		die("pipe");
	for (i = 0; i < W; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid) {
			close(p[0]);
			worker(gen, i, p[1]);
		}
		pids[gen % BANKS][i] = pid;
	}
	close(p[1]);
	for (i = 0; i < W; i++)
		if (read(p[0], &c, 1) != 1)
			die("worker did not start");
	close(p[0]);
	{
		uint32_t key = 0, val = bank_base(gen) | W << 8;

		if (map_update(newest_fd, &key, &val))
			die("newest update");
	}
}

static int parse_addr(const char *s, int port)
{
	struct sockaddr_in *a4 = (void *)&cfg.addr;
	struct sockaddr_in6 *a6 = (void *)&cfg.addr;

	memset(&cfg.addr, 0, sizeof(cfg.addr));
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		cfg.addrlen = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		cfg.addrlen = sizeof(*a6);
		return 0;
	}
	return -1;
}

/* "2" or "2,3,1": each 1 to MAX_WORKERS, at most MAX_WORKERS of them. */
static int parse_workers(const char *s)
{
	char *end;

	cfg.nworkers = 0;
	do {
		long n = strtol(s, &end, 10);

		if (end == s || n < 1 || n > MAX_WORKERS ||
		    cfg.nworkers == MAX_WORKERS)
			return -1;
		cfg.workers[cfg.nworkers++] = n;
		s = end + 1;
	} while (*end == ',');
	return *end ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: hotswapd [-m eou|cid] [-w W[,W]...] [-a ADDR] [-p PORT] [-g GRACE_MS] [-B] [-K KILL_MS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 4433, gen = 1, opt, status;
	long long t0, kill_at = 0;
	pid_t pid, victim = 0;

	while ((opt = getopt(argc, argv, "m:w:a:p:g:BK:")) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "eou") && strcmp(optarg, "cid"))
				usage();
			cfg.mode = optarg[0];
			break;
		case 'w':
			if (parse_workers(optarg))
				usage();
			break;
		case 'K':
			cfg.kill_ms = atoi(optarg);
			if (cfg.kill_ms < 1)
				usage();
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			if (port < 1 || port > 65535)
				usage();
			break;
		case 'g':
			cfg.grace_ms = atoi(optarg);
			if (cfg.grace_ms < 0)
				usage();
			break;
		case 'B':
			cfg.plain_connect = true;
			break;
		default:
			usage();
		}
	}
	if (parse_addr(addr, port))
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	{
		sockarray_fd = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8,
					  BANKS * MAX_WORKERS);
		newest_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 1);
		flowtab_fd = map_create(BPF_MAP_TYPE_LRU_HASH, 4, 4, 65536);
		if (sockarray_fd < 0 || newest_fd < 0 || flowtab_fd < 0)
			die("bpf maps");
		prog_fd = load_prog();
		if (prog_fd < 0)
			die("bpf program");
	}
	signal(SIGHUP, on_hup);
	signal(SIGTERM, on_term);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_term);
	start_gen(gen);
	printf("ready pid=%d mode=%s workers=%d\n", getpid(),
	       cfg.mode == 'c' ? "cid" : "eou", workers_of(gen));

	while (!stop_req) {
		if (reload_req) {
			reload_req = 0;
			t0 = now_ms();
			start_gen(gen + 1);
			for (int i = 0; i < workers_of(gen); i++)
				if (pids[gen % BANKS][i])
					kill(pids[gen % BANKS][i], SIGUSR1);
			if (cfg.kill_ms) {
				victim = pids[gen % BANKS][0];
				kill_at = now_ms() + cfg.kill_ms;
			}
			gen++;
			printf("reload gen=%d workers=%d ready_ms=%lld\n", gen,
			       workers_of(gen), now_ms() - t0);
		}
		/* Not yet reaped, so the pid is still that worker's. */
		if (victim && now_ms() >= kill_at) {
			printf("kill gen=%d pid=%d %s\n", gen - 1, victim,
			       kill(victim, SIGKILL) ? "gone" : "killed");
			victim = 0;
		}
		pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			forget_worker(pid);
			if (pid == victim)
				victim = 0;
		} else {
			usleep(10000);
		}
	}
	for (int b = 0; b < BANKS; b++)
		for (int i = 0; i < MAX_WORKERS; i++)
			if (pids[b][i] > 0)
				kill(pids[b][i], SIGTERM);
	while (wait(NULL) > 0)
		;
	printf("stopped gen=%d\n", gen);
	return 0;
}
