// SPDX-License-Identifier: GPL-2.0
/*
 * Lifecycle of connected UDP sockets in the 4-tuple hash (hash4): a
 * connected socket gets exactly the datagrams of its 4-tuple through
 * connect, reconnect, disconnect and close, with a wildcard or a specific
 * local address, and never loses them to a reuseport group bound after it.
 *
 * Each test builds its scene in its own netns on ADDR:PORT, sends a known
 * number of datagrams from known peers and asserts exactly where each one
 * landed. Variants: IPv4, IPv6 and v4-mapped IPv6 server sockets.
 *
 * With UDP_HASH4=0 or 1 in the environment, each test first writes it to
 * net.ipv4.udp_hash4 of its netns (the knob does not exist on stock
 * kernels, where the variable must not be set).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define PORT		4433
#define PEER1_PORT	40001
#define PEER2_PORT	40002
#define NR		50	/* datagrams per peer */
#define NR_MANY		1000	/* connected sockets in the "many" test */

/* How the sockets of a test are addressed. */
struct ctx {
	int family;		/* of the server sockets */
	int peer_family;
	bool mapped;		/* AF_INET6 sockets on ::ffff:127.0.0.1 */
};

FIXTURE(hash4)
{
	struct ctx c;
};

FIXTURE_VARIANT(hash4)
{
	int family;
	bool mapped;
};

FIXTURE_VARIANT_ADD(hash4, v4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(hash4, v6) { .family = AF_INET6 };
FIXTURE_VARIANT_ADD(hash4, v4mapped) { .family = AF_INET6, .mapped = true };

/* Local IPv4 address of peer @n (1, 2, ...); IPv6 peers are all ::1. */
static const char *peer_v4(int n)
{
	static const char *const a[] = {
		"127.0.0.1", "127.0.0.2", "127.0.0.3",
	};

	return a[n];
}

/* @ss = @v4 (or ::1, or :: for "0.0.0.0") as a socket of @family sees it. */
static socklen_t mkaddr(struct sockaddr_storage *ss, int family, bool mapped,
			const char *v4, int port)
{
	struct sockaddr_in6 *sin6 = (void *)ss;
	char buf[64];

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, v4, &sin->sin_addr);
		return sizeof(*sin);
	}

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	if (!strcmp(v4, "0.0.0.0"))
		snprintf(buf, sizeof(buf), "::");
	else if (mapped)
		snprintf(buf, sizeof(buf), "::ffff:%s", v4);
	else
		snprintf(buf, sizeof(buf), "::1");
	inet_pton(AF_INET6, buf, &sin6->sin6_addr);
	return sizeof(*sin6);
}

static void write_file(struct __test_metadata *_metadata, const char *path,
		       const char *val)
{
	int fd = open(path, O_WRONLY);

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	ASSERT_EQ((ssize_t)strlen(val), write(fd, val, strlen(val)));
	close(fd);
}

FIXTURE_SETUP(hash4)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	const char *knob = getenv("UDP_HASH4");
	int fd;

	self->c.family = variant->family;
	self->c.mapped = variant->mapped;
	self->c.peer_family = variant->mapped ? AF_INET : variant->family;

	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	ASSERT_EQ(0, ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
	if (knob)
		write_file(_metadata, "/proc/sys/net/ipv4/udp_hash4", knob);
}

FIXTURE_TEARDOWN(hash4)
{
}

/* A server socket on ADDR:PORT (or *:PORT when @wildcard). */
static int server(struct __test_metadata *_metadata,
		  const struct ctx *c, bool reuseport, bool wildcard)
{
	struct sockaddr_storage ss;
	int one = 1, fd;
	socklen_t len;

	fd = socket(c->family, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
				&one, sizeof(one)));
	if (reuseport)
		ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT,
					&one, sizeof(one)));
	len = mkaddr(&ss, c->family, c->mapped,
		     wildcard ? "0.0.0.0" : "127.0.0.1", PORT);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, len));
	return fd;
}

/* Connect @fd to peer @n at @port, as the server family sees it. */
static void connect_to(struct __test_metadata *_metadata,
		       const struct ctx *c, int fd, int n, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	len = mkaddr(&ss, c->family, c->mapped, peer_v4(n), port);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&ss, len));
}

static void disconnect(struct __test_metadata *_metadata, int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	ASSERT_EQ(0, connect(fd, &sa, sizeof(sa)));
}

/* The socket of peer @n, bound to its address and @port. */
static int peer(struct __test_metadata *_metadata, const struct ctx *c,
		int n, int port)
{
	struct sockaddr_storage ss;
	int fd, one = 1;
	socklen_t len;

	fd = socket(c->peer_family, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
				&one, sizeof(one)));
	len = mkaddr(&ss, c->peer_family, false, peer_v4(n), port);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, len));
	return fd;
}

/* Send @n datagrams from @fd to ADDR:PORT. */
static void send_n(struct __test_metadata *_metadata, const struct ctx *c,
		   int fd, int n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int i;

	len = mkaddr(&ss, c->peer_family, false, "127.0.0.1", PORT);
	for (i = 0; i < n; i++)
		ASSERT_EQ(4, sendto(fd, "ping", 4, 0,
				    (struct sockaddr *)&ss, len));
}

/* Read everything queued on @fds into @got; wait until @want arrived in all
 * or nothing more comes for 200 ms, then check that nothing else is queued.
 */
static void drain(struct __test_metadata *_metadata, const int *fds, int nfds,
		  int *got, int want)
{
	struct pollfd *pfd = calloc(nfds, sizeof(*pfd));
	int i, total = 0;
	char buf[16];

	ASSERT_NE(NULL, pfd);
	for (i = 0; i < nfds; i++) {
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		got[i] = 0;
	}
	for (;;) {
		int ready = poll(pfd, nfds, total < want ? 200 : 0);

		ASSERT_LE(0, ready);
		if (!ready)
			break;
		for (i = 0; i < nfds; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			while (recv(fds[i], buf, sizeof(buf),
				    MSG_DONTWAIT) > 0) {
				got[i]++;
				total++;
			}
		}
	}
	free(pfd);
}

/* Send NR datagrams from peer @n at @port and assert that socket @to of
 * @fds got all of them and no other socket got any.
 */
static void expect_all_to(struct __test_metadata *_metadata,
			  const struct ctx *c, int n, int port,
			  const int *fds, int nfds, int to, const char *what)
{
	int p = peer(_metadata, c, n, port);
	int got[8], i;

	send_n(_metadata, c, p, NR);
	drain(_metadata, fds, nfds, got, NR);
	close(p);
	for (i = 0; i < nfds; i++)
		EXPECT_EQ(i == to ? NR : 0, got[i])
			TH_LOG("%s: socket %d got %d of %d from peer %d:%d",
			       what, i, got[i], NR, n, port);
}

/* connect: S gets its peer's datagrams, a group bound after it does not;
 * other peers' datagrams go to the group.
 */
TEST_F(hash4, connect)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, false);
	int l, fds[2];

	connect_to(_metadata, c, s, 1, PEER1_PORT);
	l = server(_metadata, c, true, false);
	fds[0] = s;
	fds[1] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 2, 0, "own peer");
	expect_all_to(_metadata, c, 2, PEER2_PORT, fds, 2, 1, "other peer");
}

/* Reconnect without AF_UNSPEC: hash4 follows the new peer (the upstream
 * fixes 51a00be6a099 and 644f9108f3a5), for a specific and a wildcard
 * local address.
 */
static void reconnect(struct __test_metadata *_metadata,
		      const struct ctx *c, bool wildcard)
{
	int s = server(_metadata, c, false, wildcard);
	int l, fds[2];

	connect_to(_metadata, c, s, 1, PEER1_PORT);
	connect_to(_metadata, c, s, 2, PEER2_PORT);
	l = server(_metadata, c, true, false);
	fds[0] = s;
	fds[1] = l;
	expect_all_to(_metadata, c, 2, PEER2_PORT, fds, 2, 0, "new peer");
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 2, 1, "old peer");
}

TEST_F(hash4, reconnect)
{
	reconnect(_metadata, &self->c, false);
}

TEST_F(hash4, reconnect_wildcard)
{
	reconnect(_metadata, &self->c, true);
}

/* Disconnect: S receives as an unconnected socket again. */
TEST_F(hash4, disconnect)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, false);
	int l, fds[1];

	l = server(_metadata, c, true, false);
	connect_to(_metadata, c, s, 1, PEER1_PORT);
	disconnect(_metadata, s);
	close(l);
	fds[0] = s;
	expect_all_to(_metadata, c, 2, PEER2_PORT, fds, 1, 0, "any peer");
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 1, 0, "old peer");
}

/* A wildcard-bound socket leaves hash4 when it disconnects (the upstream
 * fix 6996a2d2d0a6): after it is closed, nothing stale is left, and a new
 * socket connected to the same 4-tuple gets the datagrams. A stale entry
 * would be a use after free, which KASAN reports on the debug kernel.
 */
TEST_F(hash4, disconnect_wildcard)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, true);
	int s2, l, fds[2];

	connect_to(_metadata, c, s, 1, PEER1_PORT);
	disconnect(_metadata, s);
	fds[0] = s;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 1, 0, "unconnected");
	close(s);

	s2 = server(_metadata, c, false, false);
	connect_to(_metadata, c, s2, 1, PEER1_PORT);
	l = server(_metadata, c, true, false);
	fds[0] = s2;
	fds[1] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 2, 0, "new socket");
}

/* Close: the 4-tuple's datagrams go to the group once S is gone. */
TEST_F(hash4, close)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, false);
	int l, fds[1];

	connect_to(_metadata, c, s, 1, PEER1_PORT);
	l = server(_metadata, c, true, false);
	close(s);
	fds[0] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 1, 0, "after close");
}

/* Bound to the wildcard address, then connected: the local address comes
 * from the route and S still wins over a group bound after it.
 */
TEST_F(hash4, wildcard_connect)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, true);
	int l, fds[2];

	connect_to(_metadata, c, s, 1, PEER1_PORT);
	l = server(_metadata, c, true, false);
	fds[0] = s;
	fds[1] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 2, 0, "own peer");
}

/* Bound to a device (SO_BINDTODEVICE) and connected: the device is part
 * of what a datagram must match, and S still wins.
 */
TEST_F(hash4, bound_device)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, false);
	int l, fds[2];

	ASSERT_EQ(0, setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3));
	connect_to(_metadata, c, s, 1, PEER1_PORT);
	l = server(_metadata, c, true, false);
	fds[0] = s;
	fds[1] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 2, 0, "bound to lo");
	expect_all_to(_metadata, c, 2, PEER2_PORT, fds, 2, 1, "other peer");
}

/* Two connected sockets on one local address, different peers. */
TEST_F(hash4, two_peers)
{
	const struct ctx *c = &self->c;
	int s1 = server(_metadata, c, false, false);
	int s2 = server(_metadata, c, false, false);
	int l, fds[3];

	connect_to(_metadata, c, s1, 1, PEER1_PORT);
	connect_to(_metadata, c, s2, 2, PEER2_PORT);
	l = server(_metadata, c, true, false);
	fds[0] = s1;
	fds[1] = s2;
	fds[2] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 3, 0, "peer 1");
	expect_all_to(_metadata, c, 2, PEER2_PORT, fds, 3, 1, "peer 2");
}

/* Connected to port 0, a socket matches any remote port and cannot be in
 * hash4; it must still not lose to a reuseport group bound after it.
 */
TEST_F(hash4, connected_port0)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, false);
	int l, fds[2];

	connect_to(_metadata, c, s, 1, 0);
	l = server(_metadata, c, true, false);
	fds[0] = s;
	fds[1] = l;
	expect_all_to(_metadata, c, 1, PEER1_PORT, fds, 2, 0, "port 0 conn");
}

/* NR_MANY connected sockets on one port, each gets only its own peer's.
 * Setting up 2000 sockets takes more than the default 30 s on the debug
 * kernel with kmemleak.
 */
TEST_F_TIMEOUT(hash4, many, 180)
{
	const struct ctx *c = &self->c;
	struct rlimit rl = { NR_MANY + 64, NR_MANY + 64 };
	int *s = calloc(NR_MANY, sizeof(int));
	int i, l, got, wrong = 0, lost = 0;
	char buf[16];

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	for (i = 0; i < NR_MANY; i++) {
		s[i] = server(_metadata, c, false, false);
		connect_to(_metadata, c, s[i], 1, PEER1_PORT + i);
	}
	l = server(_metadata, c, true, false);
	for (i = 0; i < NR_MANY; i++) {
		int p = peer(_metadata, c, 1, PEER1_PORT + i);

		send_n(_metadata, c, p, 2);
		close(p);
	}
	for (i = 0; i < NR_MANY; i++) {
		got = 0;
		while (recv(s[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			got++;
		if (got != 2)
			lost++;
	}
	while (recv(l, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		wrong++;
	EXPECT_EQ(0, lost) TH_LOG("%d of %d sockets did not get exactly 2",
				  lost, NR_MANY);
	EXPECT_EQ(0, wrong) TH_LOG("the listener got %d datagrams", wrong);
	for (i = 0; i < NR_MANY; i++)
		close(s[i]);
	free(s);
}

/* The lookup must not miss a socket whose local address changes under it
 * (the upstream fix a502ea6fa94b): a peer floods S, the only socket on the
 * port, bound to the wildcard address, while S connects to that peer and
 * disconnects again, over and over. S matches every datagram throughout,
 * so it must receive every datagram sent.
 */
/* Sum of the counter @name of UDP over IPv4 and IPv6 in this netns. */
static long udp_mib(const char *name)
{
	char hdr[1024], val[1024], key[64];
	long total = 0, v;
	FILE *f;

	f = fopen("/proc/net/snmp", "r");
	while (f && fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		char *h, *x, *hs, *xs;

		if (strncmp(hdr, "Udp: ", 5))
			continue;
		h = strtok_r(hdr + 5, " \t\n", &hs);
		x = strtok_r(val + 5, " \t\n", &xs);
		for (; h && x; h = strtok_r(NULL, " \t\n", &hs),
		     x = strtok_r(NULL, " \t\n", &xs))
			if (!strcmp(h, name))
				total += atol(x);
	}
	if (f)
		fclose(f);
	f = fopen("/proc/net/snmp6", "r");
	snprintf(key, sizeof(key), "Udp6%s", name);
	while (f && fscanf(f, "%1023s %ld", hdr, &v) == 2)
		if (!strcmp(hdr, key))
			total += v;
	if (f)
		fclose(f);
	return total;
}

struct flood {
	int fd, n;
	struct sockaddr_storage to;
	socklen_t len;
};

static void *flood_thread(void *arg)
{
	struct flood *f = arg;
	int i;

	for (i = 0; i < f->n; i++)
		if (sendto(f->fd, "race", 4, 0, (struct sockaddr *)&f->to,
			   f->len) != 4)
			return (void *)1;
	return NULL;
}

TEST_F(hash4, connect_race)
{
	const struct ctx *c = &self->c;
	int s = server(_metadata, c, false, true);
	int bufsz = 16 << 20, got = 0, cycles = 0;
	long noports = udp_mib("NoPorts"), inerrors = udp_mib("InErrors");
	struct flood f = { .n = 3000 };
	pthread_t th;
	char buf[16];
	void *ret;

	ASSERT_EQ(0, setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE,
				&bufsz, sizeof(bufsz)));
	f.fd = peer(_metadata, c, 1, PEER1_PORT);
	f.len = mkaddr(&f.to, c->peer_family, false, "127.0.0.1", PORT);
	ASSERT_EQ(0, pthread_create(&th, NULL, flood_thread, &f));
	do {
		connect_to(_metadata, c, s, 1, PEER1_PORT);
		disconnect(_metadata, s);
		cycles++;
	} while (pthread_tryjoin_np(th, &ret) == EBUSY);
	ASSERT_EQ(NULL, ret);
	while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		got++;
	EXPECT_EQ(f.n, got)
		TH_LOG("S got %d of %d, %d cycles: NoPorts +%ld InErrors +%ld",
		       got, f.n, cycles, udp_mib("NoPorts") - noports,
		       udp_mib("InErrors") - inerrors);
	close(f.fd);
}

/* A BPF_PROG_TYPE_SK_REUSEPORT program, by the raw bpf() syscall. */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ c, d, s, o, i })

static int load_odd_drop_prog(void)
{
	struct bpf_insn prog[] = {
		/* r0 = ctx->len */
		INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_0, BPF_REG_1,
		     offsetof(struct sk_reuseport_md, len), 0),
		/* r0 = (r0 & 1) ^ 1: SK_PASS if even, SK_DROP if odd */
		INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_0, 0, 0, 1),
		INSN(BPF_ALU64 | BPF_XOR | BPF_K, BPF_REG_0, 0, 0, 1),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[4096];
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	attr.expected_attach_type = BPF_SK_REUSEPORT_SELECT;
	attr.insns = (uintptr_t)prog;
	attr.insn_cnt = ARRAY_SIZE(prog);
	attr.license = (uintptr_t)"GPL";
	attr.log_buf = (uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0)
		fprintf(stderr, "# verifier: %s\n", log);
	return fd;
}

/* A reuseport program's SK_DROP drops the datagram. The lookup sees it as
 * ERR_PTR(-ECONNREFUSED) from the wildcard hash2 lookup; the primary-hash
 * fallback (udp4_lib_lookup1, udp6_lib_lookup1), there for the connect and
 * disconnect race when that lookup finds nothing, matches wildcard-bound
 * sockets since patch 5: if it also ran on the error, it would deliver the
 * dropped datagram to a member anyway.
 *
 * The program drops the datagrams of odd length (ctx->len counts the
 * 8-byte UDP header, so odd payloads) and passes the others without
 * selecting a member, which lets the hash pick one. Of NR even and NR odd
 * datagrams to the group on *:PORT, exactly the NR even ones arrive.
 */
#define EVEN_LEN	4	/* payload bytes: 12 with the UDP header */
#define ODD_LEN		5	/* 13 */

TEST_F(hash4, inany_sk_drop)
{
	const struct ctx *c = &self->c;
	int fds[2], prog, p, i, n, even[2] = {}, odd[2] = {}, other = 0;
	struct sockaddr_storage ss;
	char buf[16] = "even+";
	socklen_t len;

	/* Both members on the wildcard address: the lookup finds the group
	 * in the wildcard hash2 slot, and the fallback would find them in
	 * the primary slot. v4mapped: dual-stack sockets on ::.
	 */
	fds[0] = server(_metadata, c, true, true);
	fds[1] = server(_metadata, c, true, true);
	prog = load_odd_drop_prog();
	ASSERT_LE(0, prog) TH_LOG("BPF_PROG_LOAD: %s", strerror(errno));
	ASSERT_EQ(0, setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
				&prog, sizeof(prog)))
		TH_LOG("SO_ATTACH_REUSEPORT_EBPF: %s", strerror(errno));

	p = peer(_metadata, c, 1, PEER1_PORT);
	len = mkaddr(&ss, c->peer_family, false, "127.0.0.1", PORT);
	for (i = 0; i < 2 * NR; i++) {
		n = i % 2 ? ODD_LEN : EVEN_LEN;
		ASSERT_EQ(n, sendto(p, buf, n, 0, (struct sockaddr *)&ss, len));
	}
	/* On loopback each datagram is queued or dropped within its
	 * sendto(); the pause only covers a deferred softirq.
	 */
	usleep(100000);
	for (i = 0; i < 2; i++) {
		for (;;) {
			n = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0)
				break;
			if (n == EVEN_LEN)
				even[i]++;
			else if (n == ODD_LEN)
				odd[i]++;
			else
				other++;
		}
	}
	EXPECT_EQ(NR, even[0] + even[1] + odd[0] + odd[1])
		TH_LOG("got %d even (%d + %d), %d odd (%d + %d) of %d each",
		       even[0] + even[1], even[0], even[1],
		       odd[0] + odd[1], odd[0], odd[1], NR);
	EXPECT_EQ(0, odd[0] + odd[1])
		TH_LOG("%d datagrams the program dropped were delivered",
		       odd[0] + odd[1]);
	EXPECT_EQ(0, other);
	close(p);
	close(prog);
	close(fds[0]);
	close(fds[1]);
}

TEST_HARNESS_MAIN
