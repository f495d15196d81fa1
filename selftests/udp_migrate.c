// SPDX-License-Identifier: GPL-2.0
/*
 * UDP reuseport migration: the datagrams queued on a closing member of a
 * SO_REUSEPORT group move to a live member (net.ipv4.udp_migrate, or a
 * BPF_SK_REUSEPORT_SELECT_OR_MIGRATE program), and the UdpMigrate and
 * UdpMigrateFailure counters of /proc/net/netstat count each outcome.
 *
 * Each test runs in its own netns and asserts exact counts: datagrams
 * read per socket, in order per flow, and the counters' deltas. quiz1 is
 * seed 002's first quiz for UDP: N datagrams on L1, L2 joins, L1 closes.
 * With udp_migrate=0 (and on kernels without it) L2 reads 0. On a kernel
 * without net.ipv4.udp_migrate the tests of migration skip. The TCP
 * baseline runs seed 002's two quizzes with tcp_migrate_req: an accept
 * queue, and a request whose final ACK was not taken.
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
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define PORT		4433
#define PEER_PORT	40000	/* flow f sends from PEER_PORT + f */
#define NR		100	/* datagrams in the quizzes */
#define FLOWS		10

/* How the sockets of a test are addressed. */
struct ctx {
	int family;	/* of the group's sockets */
	bool mapped;	/* AF_INET6 sockets, IPv4 datagrams */
};

FIXTURE(mig)
{
	struct ctx c;
};

FIXTURE_VARIANT(mig)
{
	int family;
	bool mapped;
};

FIXTURE_VARIANT_ADD(mig, v4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(mig, v6) { .family = AF_INET6 };
FIXTURE_VARIANT_ADD(mig, v4mapped) { .family = AF_INET6, .mapped = true };

/* The server's address as sockets of @family (mapped or not) see it. */
static socklen_t server_addr(int family, bool mapped, void *ss, int port)
{
	struct sockaddr_in6 *sin6 = ss;
	struct sockaddr_in *sin = ss;

	memset(ss, 0, sizeof(struct sockaddr_storage));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	inet_pton(AF_INET6, mapped ? "::ffff:127.0.0.1" : "::1",
		  &sin6->sin6_addr);
	return sizeof(*sin6);
}

static void write_file(struct __test_metadata *_metadata, const char *path,
		       const char *val)
{
	int fd = open(path, O_WRONLY);

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	ASSERT_EQ((ssize_t)strlen(val), write(fd, val, strlen(val)))
		TH_LOG("write %s to %s: %s", val, path, strerror(errno));
	close(fd);
}

static void set_migrate(struct __test_metadata *_metadata, int on)
{
	write_file(_metadata, "/proc/sys/net/ipv4/udp_migrate", on ? "1" : "0");
}

/* A counter of /proc/net/netstat or /proc/net/snmp, "Udp:RcvbufErrors". */
static long counter(const char *file, const char *name)
{
	char hdr[4096], val[4096], *h, *v, *hs, *vs;
	size_t plen = strchr(name, ':') - name + 1;
	long ret = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		if (strncmp(hdr, name, plen))
			continue;
		hdr[strcspn(hdr, "\n")] = 0;
		val[strcspn(val, "\n")] = 0;
		h = strtok_r(hdr + plen, " ", &hs);
		v = strtok_r(val + plen, " ", &vs);
		while (h && v) {
			if (!strcmp(h, name + plen))
				ret = atol(v);
			h = strtok_r(NULL, " ", &hs);
			v = strtok_r(NULL, " ", &vs);
		}
	}
	fclose(f);
	return ret;
}

static long migrated(void)
{
	return counter("/proc/net/netstat", "TcpExt:UdpMigrate");
}

static long failed(void)
{
	return counter("/proc/net/netstat", "TcpExt:UdpMigrateFailure");
}

/* A UDP counter of the MIB that the datagrams of @c are counted in: IPv4
 * (also for v4-mapped sockets) in /proc/net/snmp, IPv6 in /proc/net/snmp6.
 */
static long udp_mib(const struct ctx *c, const char *name)
{
	char line[256], key[64], want[64];
	long val, ret = -1;
	FILE *f;

	if (c->family == AF_INET || c->mapped) {
		snprintf(want, sizeof(want), "Udp:%s", name);
		return counter("/proc/net/snmp", want);
	}
	snprintf(want, sizeof(want), "Udp6%s", name);
	f = fopen("/proc/net/snmp6", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", key, &val) == 2 &&
		    !strcmp(key, want))
			ret = val;
	fclose(f);
	return ret;
}

/* Field @what (SK_MEMINFO_*) of socket @fd's SO_MEMINFO. */
static long sock_meminfo(int fd, int what)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t mlen = sizeof(mem);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &mlen))
		return -1;
	return mem[what];
}

/* The drops of socket @fd. */
static long sock_drops(int fd)
{
	return sock_meminfo(fd, SK_MEMINFO_DROPS);
}

/* A member of the group on the server's PORT, with a large rcvbuf, not
 * bound yet.
 */
static int unbound_member(const struct ctx *c)
{
	int one = 1, buf = 1 << 23, fd;

	fd = socket(c->family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	return fd;
}

/* A member on the server's address, or on the wildcard address (INADDR_ANY,
 * or in6addr_any, dual-stack, for both IPv6 variants) when @wildcard.
 */
static int member_at(const struct ctx *c, bool wildcard)
{
	struct sockaddr_storage ss;
	int fd = unbound_member(c);
	socklen_t len;

	if (fd < 0)
		return -1;
	len = server_addr(c->family, c->mapped, &ss, PORT);
	if (wildcard && c->family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = INADDR_ANY;
	else if (wildcard)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
	if (bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int member(const struct ctx *c)
{
	return member_at(c, false);
}

/* A peer of flow @flow, in the family of the datagrams. */
static int peer(const struct ctx *c, int flow)
{
	int family = c->mapped ? AF_INET : c->family;
	struct sockaddr_storage ss;
	int one = 1, fd;
	socklen_t len;

	fd = socket(family, SOCK_DGRAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	len = server_addr(family, false, &ss, PEER_PORT + flow);
	if (bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The payload: flow, sequence number in the flow, and a tag. */
struct msg {
	uint16_t flow;
	uint16_t seq;
	uint8_t tag;
};

/* Send @per datagrams on each of @flows flows, seq from @seq0; @tag is
 * the first payload byte the BPF test routes by (after flow and seq).
 */
static int send_flows(const struct ctx *c, int flow0, int flows, int per,
		      int seq0, int (*tag)(int flow, int seq))
{
	int family = c->mapped ? AF_INET : c->family;
	struct sockaddr_storage ss;
	int f, i, sent = 0;
	socklen_t len;

	len = server_addr(family, false, &ss, PORT);
	for (f = flow0; f < flow0 + flows; f++) {
		int p = peer(c, f);

		for (i = 0; i < per; i++) {
			struct msg m = { f, seq0 + i, 0 };

			if (tag)
				m.tag = tag(f, seq0 + i);

			sent += sendto(p, &m, sizeof(m), 0, (void *)&ss, len) ==
				sizeof(m);
		}
		close(p);
	}
	return sent;
}

/* Read everything queued on @fd; count it, and check that each flow's
 * sequence numbers only grow. Return the count, or -1 if out of order.
 */
static int read_all(int fd, int *last_seq, int nflows)
{
	struct msg m;
	int n = 0;
	bool order = true;

	while (recv(fd, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m)) {
		if (last_seq && m.flow < nflows) {
			if (m.seq <= last_seq[m.flow] && last_seq[m.flow] >= 0)
				order = false;
			last_seq[m.flow] = m.seq;
		}
		n++;
	}
	return order ? n : -1;
}

static void reset_order(int *last, int n)
{
	for (int i = 0; i < n; i++)
		last[i] = -1;
}

/* Every test of migration skips on a kernel without it. */
static bool has_migrate(void)
{
	return !access("/proc/sys/net/ipv4/udp_migrate", F_OK);
}

#define NO_MIGRATE "no net.ipv4.udp_migrate: a kernel without the series"

FIXTURE_SETUP(mig)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	self->c.family = variant->family;
	self->c.mapped = variant->mapped;
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	ASSERT_EQ(0, ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
}

FIXTURE_TEARDOWN(mig)
{
}

/* The set-up of quiz 1 with migration on: NR datagrams of FLOWS flows
 * queued on *@l1, then *@l2 joins the group, with the socket filter @prog
 * attached if it is not NULL.
 */
static void queue_then_join(struct __test_metadata *_metadata,
			    const struct ctx *c, int *l1, int *l2,
			    struct sock_fprog *prog)
{
	set_migrate(_metadata, 1);
	*l1 = member(c);
	ASSERT_LE(0, *l1);
	ASSERT_EQ(NR, send_flows(c, 0, FLOWS, NR / FLOWS, 0, NULL));
	*l2 = member(c);
	ASSERT_LE(0, *l2);
	if (prog)
		ASSERT_EQ(0, setsockopt(*l2, SOL_SOCKET, SO_ATTACH_FILTER,
					prog, sizeof(*prog)));
}

/* Quiz 1: NR datagrams queued on L1, L2 joins, L1 closes: L2 reads all,
 * in order per flow, and UdpMigrate counts them.
 */
TEST_F(mig, quiz1)
{
	int l1, l2, last[FLOWS];
	long m0, f0;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	queue_then_join(_metadata, &self->c, &l1, &l2, NULL);
	m0 = migrated();
	f0 = failed();
	close(l1);
	reset_order(last, FLOWS);
	EXPECT_EQ(NR, read_all(l2, last, FLOWS));
	EXPECT_EQ(NR, migrated() - m0);
	EXPECT_EQ(0, failed() - f0);
}

/* The datagrams queued on @fd, counted without taking them: with a peek
 * offset, each MSG_PEEK returns the next one.
 */
static int queued(int fd)
{
	static char buf[65536];
	int off = 0, n = 0;

	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -1;
	while (recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT) >= 0)
		n++;
	off = -1;	/* peeking as before */
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	return n;
}

/* Quiz 1 with udp_migrate=0, as on every kernel before: L1 holds all NR,
 * L2 reads 0 of them after L1 closes.
 */
TEST_F(mig, quiz1_off)
{
	int l1, l2;

	if (has_migrate())
		set_migrate(_metadata, 0);
	l1 = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	l2 = member(&self->c);
	ASSERT_LE(0, l2);
	ASSERT_EQ(NR, queued(l1));
	close(l1);
	EXPECT_EQ(0, read_all(l2, NULL, 0));
}

/* Half read before the close: reader_queue and the receive queue both
 * move, older first.
 */
TEST_F(mig, reader_queue)
{
	int l1, l2, last[FLOWS], got;
	char c;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	/* One recv() moves the whole receive queue to reader_queue. */
	ASSERT_EQ(1, recv(l1, &c, 1, MSG_DONTWAIT | MSG_TRUNC) > 0);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, NR / FLOWS,
				 NULL));
	l2 = member(&self->c);
	close(l1);
	reset_order(last, FLOWS);
	got = read_all(l2, last, FLOWS);
	EXPECT_EQ(2 * NR - 1, got);
}

/* No live member: every datagram fails, and is counted. */
TEST_F(mig, no_target)
{
	long m0, f0;
	int l1;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	m0 = migrated();
	f0 = failed();
	close(l1);
	EXPECT_EQ(0, migrated() - m0);
	EXPECT_EQ(NR, failed() - f0);
}

/* The target's rcvbuf is full: its receive path drops what does not fit and
 * counts it as it counts any datagram it drops (its drops, RcvbufErrors,
 * InErrors); every datagram was handed to it, so UdpMigrate counts all and
 * UdpMigrateFailure none. The receive path takes a datagram while the
 * queue's memory is at most the rcvbuf, so of datagrams of truesize T
 * (read from the closing socket's queue) it keeps rcvbuf / T + 1.
 */
TEST_F(mig, rcvbuf_full)
{
	int l1, l2, small = 4096, got;
	long m0, f0, r0, e0, rmem, rcvbuf;
	socklen_t olen = sizeof(int);
	int val;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	l2 = member(&self->c);
	ASSERT_EQ(0, setsockopt(l2, SOL_SOCKET, SO_RCVBUFFORCE, &small,
				sizeof(small)));
	ASSERT_EQ(0, getsockopt(l2, SOL_SOCKET, SO_RCVBUF, &val, &olen));
	rcvbuf = val;
	rmem = sock_meminfo(l1, SK_MEMINFO_RMEM_ALLOC);
	ASSERT_EQ(0, rmem % NR) TH_LOG("%ld bytes for %d datagrams", rmem, NR);
	m0 = migrated();
	f0 = failed();
	r0 = udp_mib(&self->c, "RcvbufErrors");
	e0 = udp_mib(&self->c, "InErrors");
	close(l1);
	got = read_all(l2, NULL, 0);
	EXPECT_EQ(rcvbuf / (rmem / NR) + 1, got)
		TH_LOG("rcvbuf %ld, truesize %ld", rcvbuf, rmem / NR);
	EXPECT_EQ(NR, migrated() - m0);
	EXPECT_EQ(0, failed() - f0);
	EXPECT_EQ(NR - got, udp_mib(&self->c, "RcvbufErrors") - r0);
	EXPECT_EQ(NR - got, udp_mib(&self->c, "InErrors") - e0);
	EXPECT_EQ(NR - got, sock_drops(l2));
	ksft_print_msg("rcvbuf %d: %d of %d read\n", small, got, NR);
}

/* M1: a migrated datagram meets the target's own receive path, as if the
 * lookup had chosen the target: a socket filter on L2 that keeps flows 0-4
 * only (first payload byte, after the 8-byte UDP header the filter sees)
 * lets 50 of the 100 through. The 50 others are counted as the receive
 * path counts a filtered datagram: in L2's drops and InErrors.
 */
TEST_F(mig, target_filter)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8),	/* msg.flow, low byte */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, FLOWS / 2, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = 4, .filter = code };
	long m0, f0, e0;
	int l1, l2;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	queue_then_join(_metadata, &self->c, &l1, &l2, &prog);
	m0 = migrated();
	f0 = failed();
	e0 = udp_mib(&self->c, "InErrors");
	close(l1);
	EXPECT_EQ(NR / 2, read_all(l2, NULL, 0));
	EXPECT_EQ(NR, migrated() - m0);
	EXPECT_EQ(0, failed() - f0);
	EXPECT_EQ(NR / 2, udp_mib(&self->c, "InErrors") - e0);
	EXPECT_EQ(NR / 2, sock_drops(l2));
	close(l2);
}

/* M1: the target's filter reads the datagram's input device (cBPF
 * SKF_AD_IFINDEX), which the receive queue of L1 overwrote with its own
 * scratch data: L2 keeps only what came in on lo, so all 100 must pass.
 * Without the device put back, the filter reads through a wild pointer.
 */
TEST_F(mig, target_filter_ifindex)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_IFINDEX),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),	/* patched */
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = 4, .filter = code };
	int l1, l2;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	code[1].k = if_nametoindex("lo");
	ASSERT_NE(0, code[1].k);
	queue_then_join(_metadata, &self->c, &l1, &l2, &prog);
	close(l1);
	EXPECT_EQ(NR, read_all(l2, NULL, 0));
	EXPECT_EQ(0, sock_drops(l2));
	close(l2);
}

/* Read the datagrams queued on @fd with their IP_PKTINFO/IPV6_PKTINFO and
 * count those that name @ifindex and the server's address.
 */
static int read_pktinfo(const struct ctx *c, int fd, int ifindex, int *total)
{
	char cbuf[256], data[64];
	struct iovec iov = { data, sizeof(data) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf,
	};
	struct in6_addr want6;
	struct cmsghdr *cm;
	int good = 0;

	inet_pton(AF_INET6, c->mapped ? "::ffff:127.0.0.1" : "::1", &want6);
	*total = 0;
	for (;;) {
		mh.msg_controllen = sizeof(cbuf);
		if (recvmsg(fd, &mh, MSG_DONTWAIT) < 0)
			break;
		(*total)++;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_IP &&
			    cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo *pi = (void *)CMSG_DATA(cm);

				good += pi->ipi_ifindex == ifindex &&
					pi->ipi_addr.s_addr ==
					htonl(INADDR_LOOPBACK) &&
					pi->ipi_spec_dst.s_addr ==
					htonl(INADDR_LOOPBACK);
			} else if (cm->cmsg_level == SOL_IPV6 &&
				   cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo *pi = (void *)CMSG_DATA(cm);

				good += (int)pi->ipi6_ifindex == ifindex &&
					!memcmp(&pi->ipi6_addr, &want6,
						sizeof(want6));
			}
		}
	}
	return good;
}

/* M1: only the target asks for the datagrams' packet info. L1 did not, so
 * its receive path prepared none; L2 must still read, for each of the 100,
 * the input device (lo) and the server's address.
 */
TEST_F(mig, target_pktinfo)
{
	int l1, l2, one = 1, total, ifindex = if_nametoindex("lo");
	int level = SOL_IPV6, opt = IPV6_RECVPKTINFO;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	queue_then_join(_metadata, &self->c, &l1, &l2, NULL);
	if (self->c.family == AF_INET)
		level = SOL_IP, opt = IP_PKTINFO;
	ASSERT_EQ(0, setsockopt(l2, level, opt, &one, sizeof(one)));
	close(l1);
	EXPECT_EQ(NR, read_pktinfo(&self->c, l2, ifindex, &total));
	EXPECT_EQ(NR, total);
	close(l2);
}

#define MCAST4		"239.1.1.1"

/* Join @fd, bound to the wildcard address (IPv4, or IPv6 dual-stack), to
 * the test's IPv4 multicast group on lo.
 */
static int join_group(int fd, int ifindex)
{
	struct ip_mreqn mr = { .imr_ifindex = ifindex };

	inet_pton(AF_INET, MCAST4, &mr.imr_multiaddr);
	return setsockopt(fd, SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr));
}

/* Multicast delivery gives each member of the group its own copy of a
 * group datagram, whatever the reuseport group says: L1 and L2 both hold
 * the NR datagrams when L1 closes. Moving L1's copies would give L2 each
 * datagram twice; L2 must read exactly NR, and nothing migrates.
 */
TEST_F(mig, multicast)
{
	int family = self->c.mapped ? AF_INET : self->c.family;
	int l1, l2, p, i, got, ifindex = if_nametoindex("lo");
	struct ifreq ifr = { .ifr_name = "lo" };
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct ip_mreqn mr = { .imr_ifindex = ifindex };
	long m0;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	/* lo in a netns loops no IPv6 multicast back to local sockets (no
	 * route, and lo keeps it off its multicast path): IPv4 and v4-mapped
	 * groups show the double delivery; the IPv6 variant has no way to
	 * send to its group.
	 */
	if (family == AF_INET6)
		SKIP(return, "IPv6 multicast does not loop back on lo");
	/* lo takes multicast only with IFF_MULTICAST. */
	p = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_EQ(0, ioctl(p, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_MULTICAST;
	ASSERT_EQ(0, ioctl(p, SIOCSIFFLAGS, &ifr));
	close(p);

	set_migrate(_metadata, 1);
	l1 = member_at(&self->c, true);
	l2 = member_at(&self->c, true);
	ASSERT_LE(0, l1);
	ASSERT_LE(0, l2);
	ASSERT_EQ(0, join_group(l1, ifindex));
	ASSERT_EQ(0, join_group(l2, ifindex));

	p = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_LE(0, p);
	ASSERT_EQ(0, setsockopt(p, SOL_IP, IP_MULTICAST_IF, &mr, sizeof(mr)));
	dst.sin_port = htons(PORT);
	inet_pton(AF_INET, MCAST4, &dst.sin_addr);
	for (i = 0; i < NR; i++) {
		struct msg m = { 0, i, 0 };

		ASSERT_EQ((ssize_t)sizeof(m),
			  sendto(p, &m, sizeof(m), 0, (void *)&dst,
				 sizeof(dst)));
	}
	close(p);

	m0 = migrated();
	close(l1);
	got = read_all(l2, NULL, 0);
	EXPECT_EQ(NR, got);
	EXPECT_EQ(0, migrated() - m0);
	close(l2);
}

#ifndef SOL_UDP
#define SOL_UDP		17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif
#ifndef UDP_GRO
#define UDP_GRO		104
#endif
#define GSO_SEG		100	/* bytes per segment */
#define GSO_SEGS	10	/* segments per send */

/* M1: L1 takes GRO super-packets (UDP_GRO); the peer sends GSO_SEGS
 * segments of GSO_SEG bytes per send (UDP_SEGMENT), which loopback hands
 * L1 as one datagram. L2 does not take super-packets: its receive path
 * must split each one, as it would for one from the network, so L2 reads
 * NR datagrams of GSO_SEG bytes, in order, and none bigger.
 */
TEST_F(mig, gro_split)
{
	int family = self->c.mapped ? AF_INET : self->c.family;
	int l1, l2, p, i, s, one = 1, seg = GSO_SEG, got = 0, bad = 0;
	char buf[GSO_SEG * GSO_SEGS];
	struct sockaddr_storage ss;
	socklen_t len;
	ssize_t n;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_LE(0, l1);
	ASSERT_EQ(0, setsockopt(l1, SOL_UDP, UDP_GRO, &one, sizeof(one)));
	p = peer(&self->c, 0);
	ASSERT_LE(0, p);
	ASSERT_EQ(0, setsockopt(p, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)));
	len = server_addr(family, false, &ss, PORT);
	for (s = 0; s < NR / GSO_SEGS; s++) {
		for (i = 0; i < GSO_SEGS; i++) {
			memset(buf + i * GSO_SEG, 0, GSO_SEG);
			buf[i * GSO_SEG] = s * GSO_SEGS + i;
		}
		ASSERT_EQ((ssize_t)sizeof(buf),
			  sendto(p, buf, sizeof(buf), 0, (void *)&ss, len));
	}
	close(p);
	l2 = member(&self->c);
	ASSERT_LE(0, l2);
	close(l1);
	while ((n = recv(l2, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		bad += n != GSO_SEG || buf[0] != got;
		got++;
	}
	EXPECT_EQ(NR, got);
	EXPECT_EQ(0, bad);
	close(l2);
}

/* The UDP memory in use, in pages, from /proc/net/sockstat ("UDP: ... mem"). */
static long udp_mem_pages(void)
{
	char line[256];
	long inuse, mem = -1;
	FILE *f = fopen("/proc/net/sockstat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "UDP: inuse %ld mem %ld", &inuse, &mem) == 2)
			break;
	fclose(f);
	return mem;
}

#define BIG		4000	/* datagrams queued on L1 */
#define BIG_LEN		1200	/* their payload */
#define MEM_MARGIN	768	/* pages above the use at close(): more than
				 * the per-CPU reserve (256 pages a CPU) that
				 * the global count may lag behind by
				 */

/* M2: close() near the udp_mem limit. L1 holds BIG datagrams, about 1500
 * pages; the limit is set MEM_MARGIN pages above what is in use. If L1
 * gave its memory back only after the whole queue moved, L2 could take
 * only MEM_MARGIN pages of it and the rest would fail; uncharged one
 * datagram at a time, all BIG move. net.ipv4.udp_mem is global: it is
 * written in the initial netns and put back at the end.
 */
TEST_F_TIMEOUT(mig, close_near_udp_mem, 120)
{
	int family = self->c.mapped ? AF_INET : self->c.family;
	int l1, l2, p, i, got, buf = 1 << 25, initns, ourns;
	char old[128], val[128], msgbuf[BIG_LEN];
	struct sockaddr_storage ss;
	long used, m0, f0;
	socklen_t len;
	ssize_t n;
	int fd;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_LE(0, l1);
	ASSERT_EQ(0, setsockopt(l1, SOL_SOCKET, SO_RCVBUFFORCE, &buf,
				sizeof(buf)));
	len = server_addr(family, false, &ss, PORT);
	p = peer(&self->c, 0);
	ASSERT_LE(0, p);
	memset(msgbuf, 0, sizeof(msgbuf));
	for (i = 0; i < BIG; i++)
		ASSERT_EQ(BIG_LEN, sendto(p, msgbuf, BIG_LEN, 0, (void *)&ss,
					  len));
	close(p);
	l2 = member(&self->c);
	ASSERT_LE(0, l2);
	ASSERT_EQ(0, setsockopt(l2, SOL_SOCKET, SO_RCVBUFFORCE, &buf,
				sizeof(buf)));

	/* udp_mem lives in the initial netns, which pid 1 is in. */
	initns = open("/proc/1/ns/net", O_RDONLY);
	ourns = open("/proc/self/ns/net", O_RDONLY);
	ASSERT_LE(0, initns);
	ASSERT_LE(0, ourns);
	ASSERT_EQ(0, setns(initns, CLONE_NEWNET));
	fd = open("/proc/sys/net/ipv4/udp_mem", O_RDWR);
	ASSERT_LE(0, fd);
	n = read(fd, old, sizeof(old) - 1);
	ASSERT_LT(0, n);
	old[n] = 0;
	used = udp_mem_pages();
	ASSERT_LT(BIG / 4, used) TH_LOG("only %ld pages in use", used);
	snprintf(val, sizeof(val), "%ld %ld %ld", used + MEM_MARGIN,
		 used + MEM_MARGIN, used + MEM_MARGIN);
	ASSERT_EQ((ssize_t)strlen(val), pwrite(fd, val, strlen(val), 0));
	ASSERT_EQ(0, setns(ourns, CLONE_NEWNET));

	m0 = migrated();
	f0 = failed();
	close(l1);
	got = 0;
	while ((n = recv(l2, msgbuf, sizeof(msgbuf), MSG_DONTWAIT)) > 0)
		got++;

	ASSERT_EQ(0, setns(initns, CLONE_NEWNET));
	EXPECT_EQ((ssize_t)strlen(old), pwrite(fd, old, strlen(old), 0));
	close(fd);
	ASSERT_EQ(0, setns(ourns, CLONE_NEWNET));
	close(initns);
	close(ourns);
	ksft_print_msg("%ld pages in use, limit %ld: %d of %d moved\n", used,
		       used + MEM_MARGIN, got, BIG);
	EXPECT_EQ(BIG, got);
	EXPECT_EQ(BIG, migrated() - m0);
	EXPECT_EQ(0, failed() - f0);
	close(l2);
}

/* A connected member never migrates and is never a target. */
TEST_F(mig, connected)
{
	struct sockaddr_storage ss;
	int l1, s, p, l3;
	long m0, f0;
	socklen_t len;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	/* S, a connected member, closes with datagrams queued. */
	s = member(&self->c);
	l1 = member(&self->c);
	p = peer(&self->c, 0);
	len = server_addr(self->c.family, self->c.mapped, &ss, PEER_PORT);
	ASSERT_EQ(0, connect(s, (void *)&ss, len));
	ASSERT_EQ(NR / FLOWS, send_flows(&self->c, 0, 1, NR / FLOWS, 0, NULL));
	m0 = migrated();
	f0 = failed();
	close(s);
	EXPECT_EQ(0, migrated() - m0);
	EXPECT_EQ(0, failed() - f0);
	EXPECT_EQ(0, read_all(l1, NULL, 0));

	/* L1 closes; its only other member L3 is connected: no target. */
	l3 = member(&self->c);
	ASSERT_EQ(0, connect(l3, (void *)&ss, len));
	ASSERT_EQ(NR / FLOWS, send_flows(&self->c, 0, 1, NR / FLOWS, 0, NULL));
	ASSERT_EQ(NR / FLOWS, read_all(l3, NULL, 0));
	/* The other flows reach L1 only. */
	ASSERT_EQ(NR - NR / FLOWS, send_flows(&self->c, 1, FLOWS - 1,
					      NR / FLOWS, 0, NULL));
	close(p);
	m0 = migrated();
	f0 = failed();
	close(l1);
	EXPECT_EQ(0, migrated() - m0);
	EXPECT_EQ(NR - NR / FLOWS, failed() - f0);
	EXPECT_EQ(0, read_all(l3, NULL, 0));
}

/* A socket on the same address and port in another netns is no target. */
TEST_F(mig, other_netns)
{
	int l1, sv[2], status;
	long f0;
	pid_t pid;
	char c;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct ifreq ifr = { .ifr_name = "lo" };
		int fd, s;

		close(l1);	/* the parent's close() must be the last */
		if (unshare(CLONE_NEWNET))
			_exit(2);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		ioctl(fd, SIOCGIFFLAGS, &ifr);
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
		s = member(&self->c);
		if (s < 0 || write(sv[1], "r", 1) != 1)
			_exit(3);
		if (read(sv[1], &c, 1) != 1)
			_exit(4);
		_exit(read_all(s, NULL, 0) == 0 ? 0 : 5);
	}
	ASSERT_EQ(1, read(sv[0], &c, 1));
	f0 = failed();
	close(l1);
	EXPECT_EQ(NR, failed() - f0);
	ASSERT_EQ(1, write(sv[0], "d", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the other netns got some");
}

/* shutdown() before close(): the datagrams still move at close(). */
TEST_F(mig, shutdown)
{
	int l1, l2;
	long m0;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	l1 = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	l2 = member(&self->c);
	shutdown(l1, SHUT_RDWR);
	m0 = migrated();
	close(l1);
	EXPECT_EQ(NR, read_all(l2, NULL, 0));
	EXPECT_EQ(NR, migrated() - m0);
}

/* The group grows past 10 and past its first array (128 sockets) while
 * members close and migrate: nothing is lost.
 */
#define GROW	160
TEST_F_TIMEOUT(mig, grow, 120)
{
	int fds[GROW + 1], i, total = 0, nlive = 0;
	long m0, f0;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	set_migrate(_metadata, 1);
	m0 = migrated();
	f0 = failed();
	fds[0] = member(&self->c);
	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, NULL));
	for (i = 1; i <= GROW; i++) {
		fds[i] = member(&self->c);
		ASSERT_LE(0, fds[i]) TH_LOG("member %d", i);
		/* Every 10th new member, the oldest live one closes. */
		if (i % 10 == 0) {
			close(fds[i - 10]);
			fds[i - 10] = -1;
		}
		if (i % 7 == 0)
			send_flows(&self->c, 0, FLOWS, 1, 1000 + i, NULL);
	}
	for (i = 0; i <= GROW; i++) {
		if (fds[i] < 0)
			continue;
		total += read_all(fds[i], NULL, 0);
		nlive++;
	}
	EXPECT_EQ(NR + (GROW / 7) * FLOWS, total);
	EXPECT_EQ(0, failed() - f0);
	ksft_print_msg("%d datagrams in %d live members, %ld moved\n",
		       total, nlive, migrated() - m0);
}

/* Under load: senders blast the group while a reload loop replaces its
 * members. "Sent" is what sendto() accepted: on loopback that datagram
 * reached a socket's queue or was dropped and counted there.
 */
struct blast {
	const struct ctx *c;
	int sent;
	bool done;	/* read and written atomically */
};

static void *blaster(void *arg)
{
	struct blast *b = arg;
	int r;

	for (r = 0; r < 40; r++) {
		b->sent += send_flows(b->c, 0, 4, 25, r * 25, NULL);
		usleep(1000);
	}
	__atomic_store_n(&b->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static long run_load(struct __test_metadata *_metadata, const struct ctx *c,
		     int on, long *sent_out, long *fail_out, long *ovf_out)
{
	int fds[2], i, k = 0, received = 0;
	struct blast b = { .c = c };
	long f0, o0, n0, e0;
	pthread_t th;

	set_migrate(_metadata, on);
	f0 = failed();
	o0 = counter("/proc/net/snmp", "Udp:RcvbufErrors");
	n0 = counter("/proc/net/snmp", "Udp:NoPorts");
	e0 = counter("/proc/net/snmp", "Udp:InErrors");
	fds[0] = member(c);
	fds[1] = member(c);
	pthread_create(&th, NULL, blaster, &b);
	while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE)) {
		int fresh = member(c);

		usleep(2000);
		close(fds[k % 2]);
		fds[k % 2] = fresh;
		k++;
	}
	pthread_join(th, NULL);
	for (i = 0; i < 2; i++)
		received += read_all(fds[i], NULL, 0);
	*sent_out = b.sent;
	*fail_out = failed() - f0;
	*ovf_out = counter("/proc/net/snmp", "Udp:RcvbufErrors") - o0;
	ksft_print_msg("udp_migrate=%d, %d reloads: sent %ld, received %d\n",
		       on, k, *sent_out, received);
	ksft_print_msg("UdpMigrateFailure %ld, RcvbufErrors %ld\n",
		       *fail_out, *ovf_out);
	ksft_print_msg("NoPorts %ld, InErrors %ld\n",
		       counter("/proc/net/snmp", "Udp:NoPorts") - n0,
		       counter("/proc/net/snmp", "Udp:InErrors") - e0);
	return received;
}

TEST_F_TIMEOUT(mig, load, 120)
{
	long sent, fail, ovf, got;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	got = run_load(_metadata, &self->c, 1, &sent, &fail, &ovf);
	EXPECT_EQ(0, ovf);
	EXPECT_EQ(0, fail);
	EXPECT_EQ(sent, got);
}

TEST_F_TIMEOUT(mig, load_off, 120)
{
	long sent, fail, ovf, got;

	if (access("/proc/sys/net/ipv4/udp_migrate", F_OK))
		SKIP(return, "no net.ipv4.udp_migrate");
	got = run_load(_metadata, &self->c, 0, &sent, &fail, &ovf);
	EXPECT_EQ(0, ovf);
	EXPECT_GT(sent, got) TH_LOG("closing with udp_migrate=0 lost nothing");
}

/* BPF: a SELECT_OR_MIGRATE program sends every datagram from the network
 * to socket 0 of a REUSEPORT_SOCKARRAY, and on migration to socket
 * 1 + tag % 3, or drops it when tag is 0xff.
 */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ c, d, s, o, i })

static int load_prog(int map_fd)
{
	struct bpf_insn prog[] = {
		/* r6 = ctx; key = 0 */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),
		/* r7 = ctx->migrating_sk; not migrating: select key 0 */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_7, BPF_REG_6,
		     offsetof(struct sk_reuseport_md, migrating_sk), 0),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_7, 0, 10, 0),
		/* r2 = data, r3 = data_end, tag at data + 8 + 4 */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_6,
		     offsetof(struct sk_reuseport_md, data), 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_3, BPF_REG_6,
		     offsetof(struct sk_reuseport_md, data_end), 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 13),
		INSN(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 15, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_5, BPF_REG_2, 12, 0),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_5, 0, 13, 0xff),
		INSN(BPF_ALU64 | BPF_MOD | BPF_K, BPF_REG_5, 0, 0, 3),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_5, 0, 0, 1),
		INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_5, -4, 0),
		/* bpf_sk_select_reuseport(ctx, map, &key, 0) */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD,
		     0, map_fd),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -4),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_select_reuseport),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 2, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, SK_PASS),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		/* drop */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, SK_DROP),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[65536];
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	attr.expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE;
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

static int tag_of(int flow, int seq)
{
	return seq % 10 == 9 ? 0xff : (flow + seq) & 0xff;
}

TEST_F(mig, bpf)
{
	int fds[4], map_fd, prog_fd, i, got[4], want[4] = {}, drops = 0;
	union bpf_attr attr;
	long m0, f0;

	if (!has_migrate())
		SKIP(return, NO_MIGRATE);
	/* Migration by the program alone: the sysctl stays 0. */
	if (!access("/proc/sys/net/ipv4/udp_migrate", F_OK))
		set_migrate(_metadata, 0);
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_REUSEPORT_SOCKARRAY;
	attr.key_size = 4;
	attr.value_size = 8;
	attr.max_entries = 4;
	map_fd = sys_bpf(BPF_MAP_CREATE, &attr);
	ASSERT_LE(0, map_fd) TH_LOG("map: %s", strerror(errno));
	prog_fd = load_prog(map_fd);
	ASSERT_LE(0, prog_fd) TH_LOG("prog: %s", strerror(errno));

	for (i = 0; i < 4; i++) {
		uint32_t key = i;
		uint64_t val;

		fds[i] = member(&self->c);
		ASSERT_LE(0, fds[i]);
		val = fds[i];
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = map_fd;
		attr.key = (uintptr_t)&key;
		attr.value = (uintptr_t)&val;
		ASSERT_EQ(0, sys_bpf(BPF_MAP_UPDATE_ELEM, &attr))
			TH_LOG("map update %d: %s", i, strerror(errno));
	}
	ASSERT_EQ(0, setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
				&prog_fd, sizeof(prog_fd)));

	ASSERT_EQ(NR, send_flows(&self->c, 0, FLOWS, NR / FLOWS, 0, tag_of));
	for (i = 1; i < 4; i++)
		ASSERT_EQ(0, read_all(fds[i], NULL, 0)) TH_LOG("socket %d", i);
	for (int f = 0; f < FLOWS; f++)
		for (int s = 0; s < NR / FLOWS; s++) {
			int t = tag_of(f, s);

			if (t == 0xff)
				drops++;
			else
				want[1 + t % 3]++;
		}

	m0 = migrated();
	f0 = failed();
	close(fds[0]);
	for (i = 1; i < 4; i++) {
		got[i] = read_all(fds[i], NULL, 0);
		EXPECT_EQ(want[i], got[i]) TH_LOG("socket %d", i);
	}
	EXPECT_EQ(NR - drops, migrated() - m0);
	EXPECT_EQ(drops, failed() - f0);
	ksft_print_msg("program: %d, %d, %d to sockets 1-3, %d dropped\n",
		       got[1], got[2], got[3], drops);
}

/* TCP baseline, seed 002's quiz 1: connections in L1's accept queue, L2
 * joins, L1 closes; L2 accepts them with tcp_migrate_req=1, none with 0.
 */
static int tcp_quiz1(struct __test_metadata *_metadata, const struct ctx *c,
		     int on)
{
	int l1, l2, one = 1, i, n = 0, cl[8];
	struct sockaddr_storage ss;
	socklen_t len;

	write_file(_metadata, "/proc/sys/net/ipv4/tcp_migrate_req",
		   on ? "1" : "0");
	len = server_addr(c->family, c->mapped, &ss, PORT);
	l1 = socket(c->family, SOCK_STREAM, 0);
	l2 = socket(c->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(l1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(l2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	EXPECT_EQ(0, bind(l1, (void *)&ss, len));
	EXPECT_EQ(0, listen(l1, 16));
	for (i = 0; i < 8; i++) {
		int fam = c->mapped ? AF_INET : c->family;
		struct sockaddr_storage cs;
		socklen_t clen = server_addr(fam, false, &cs, PORT);

		cl[i] = socket(fam, SOCK_STREAM, 0);
		EXPECT_EQ(0, connect(cl[i], (void *)&cs, clen));
	}
	EXPECT_EQ(0, bind(l2, (void *)&ss, len));
	EXPECT_EQ(0, listen(l2, 16));
	close(l1);
	while (accept(l2, NULL, NULL) >= 0)
		n++;
	for (i = 0; i < 8; i++)
		close(cl[i]);
	close(l2);
	return n;
}

/* TCP baseline, seed 002's quiz 2: a request whose final ACK the server
 * did not take when L1 closes. TCP_DEFER_ACCEPT drops the bare ACK, as
 * the seed's iptables rule does, and the request stays in SYN_RECV; the
 * client's data then completes it. With tcp_migrate_req=1 L2 accepts it
 * and reads the data; with 0 the request dies with L1.
 */
static int tcp_quiz2(struct __test_metadata *_metadata, const struct ctx *c,
		     int on)
{
	int l1, l2, cl, one = 1, defer = 5, n = 0, fam;
	struct sockaddr_storage ss, cs;
	struct pollfd pfd;
	socklen_t len, clen;
	char buf[32] = {};

	write_file(_metadata, "/proc/sys/net/ipv4/tcp_migrate_req",
		   on ? "1" : "0");
	len = server_addr(c->family, c->mapped, &ss, PORT);
	fam = c->mapped ? AF_INET : c->family;
	clen = server_addr(fam, false, &cs, PORT);
	l1 = socket(c->family, SOCK_STREAM, 0);
	l2 = socket(c->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(l1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(l2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(l1, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
	EXPECT_EQ(0, bind(l1, (void *)&ss, len));
	EXPECT_EQ(0, listen(l1, 16));
	cl = socket(fam, SOCK_STREAM, 0);
	EXPECT_EQ(0, connect(cl, (void *)&cs, clen));
	EXPECT_EQ(0, bind(l2, (void *)&ss, len));
	EXPECT_EQ(0, listen(l2, 16));
	close(l1);
	EXPECT_EQ(11, send(cl, "Hello World", 11, 0));

	pfd.fd = l2;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 3000) == 1) {
		int child = accept(l2, NULL, NULL);

		if (child >= 0) {
			pfd.fd = child;
			if (poll(&pfd, 1, 3000) == 1 &&
			    recv(child, buf, sizeof(buf) - 1, 0) == 11 &&
			    !strcmp(buf, "Hello World"))
				n++;
			close(child);
		}
	}
	close(cl);
	close(l2);
	return n;
}

TEST_F(mig, tcp_quiz2)
{
	EXPECT_EQ(1, tcp_quiz2(_metadata, &self->c, 1));
}

TEST_F(mig, tcp_quiz2_off)
{
	EXPECT_EQ(0, tcp_quiz2(_metadata, &self->c, 0));
}

TEST_F(mig, tcp_quiz1)
{
	EXPECT_EQ(8, tcp_quiz1(_metadata, &self->c, 1));
}

TEST_F(mig, tcp_quiz1_off)
{
	EXPECT_EQ(0, tcp_quiz1(_metadata, &self->c, 0));
}

/* Races of close() with another thread, over many rounds. In each round
 * the main thread (A) wakes a worker (B); both meet at a spin barrier and
 * act at once. One of them first spins for a delay that the rounds sweep,
 * A in odd rounds and B in even ones, so that the two calls overlap at
 * many offsets, in both orders. Between rounds B sleeps on a semaphore:
 * a spinning vCPU would slow the TCG test VM down a lot. The rounds stop
 * at a time budget too, so that a slow VM still finishes in time.
 */
struct race {
	sem_t go, done;		/* A to B: a round starts; B to A: done */
	int arrived;		/* at the barrier: two per round */
	bool stop;
	int (*act)(struct race *r);	/* B's call: 0 or -errno */
	int ret;
	int nl;			/* close_vs_destroy: NETLINK_SOCK_DIAG */
	void *req;
	int fd;			/* close_vs_bind_group: N, to bind */
	struct sockaddr_storage ss;
	socklen_t len;
};

#define RACE_SPREAD_SHIFT	12	/* delays of 0..4095 spins */
#define RACE_SECONDS		10	/* the budget of a test's rounds */

static void race_delay(int round, bool b)
{
	unsigned int d;

	if ((round & 1) != !b)
		return;
	/* Fibonacci hashing spreads consecutive rounds over the range. */
	d = ((unsigned int)(round >> 1) * 2654435761u) >>
		(32 - RACE_SPREAD_SHIFT);
	while (d--)
		asm volatile("" ::: "memory");
}

static void race_meet(struct race *r, int round)
{
	__atomic_add_fetch(&r->arrived, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&r->arrived, __ATOMIC_ACQUIRE) < 2 * round)
		;
}

static void *race_b(void *arg)
{
	struct race *r = arg;
	int round;

	for (round = 1; ; round++) {
		while (sem_wait(&r->go))
			;
		if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
			return NULL;
		race_meet(r, round);
		race_delay(round, true);
		r->ret = r->act(r);
		sem_post(&r->done);
	}
}

static int race_start(struct race *r, pthread_t *th)
{
	if (sem_init(&r->go, 0, 0) || sem_init(&r->done, 0, 0))
		return -1;
	return pthread_create(th, NULL, race_b, r);
}

/* Round @round for A: release B, close @fd with it, wait until B is done. */
static void race_close(struct race *r, int round, int fd)
{
	sem_post(&r->go);
	race_meet(r, round);
	race_delay(round, false);
	close(fd);
	while (sem_wait(&r->done))
		;
}

static void race_end(struct race *r, pthread_t th)
{
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	sem_post(&r->go);
	pthread_join(th, NULL);
}

static double race_seconds(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec - t0->tv_sec + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool race_timeout(const struct timespec *t0)
{
	return race_seconds(t0) >= RACE_SECONDS;
}

/* Send @n datagrams of one byte, @tag, from the peer @p to the group. */
static int send_tag(const struct ctx *c, int p, __u8 tag, int n)
{
	int family = c->mapped ? AF_INET : c->family;
	struct sockaddr_storage ss;
	socklen_t len = server_addr(family, false, &ss, PORT);
	int i, sent = 0;

	for (i = 0; i < n; i++)
		sent += sendto(p, &tag, 1, 0, (void *)&ss, len) == 1;
	return sent;
}

/* SOCK_DESTROY of sock_diag, for a socket named as sock_diag lists it. */
struct destroy_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
};

/* Name @fd, unconnected on the wildcard address and PORT, by its family,
 * addresses (all zero), ports and cookie. The kernel finds it by a lookup
 * in which its group picks a member by the hash of the 4-tuple: the
 * remote port @rport decides which member, and the cookie turns any other
 * member into ENOENT.
 */
static int destroy_req_of(const struct ctx *c, int fd, int rport,
			  struct destroy_req *q)
{
	socklen_t len = sizeof(__u64);
	__u64 cookie;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		return -1;
	memset(q, 0, sizeof(*q));
	q->nlh.nlmsg_len = sizeof(*q);
	q->nlh.nlmsg_type = SOCK_DESTROY;
	q->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	q->r.sdiag_family = c->family;
	q->r.sdiag_protocol = IPPROTO_UDP;
	q->r.idiag_states = ~0U;
	q->r.id.idiag_sport = htons(PORT);
	q->r.id.idiag_dport = htons(rport);
	q->r.id.idiag_cookie[0] = (__u32)cookie;
	q->r.id.idiag_cookie[1] = cookie >> 32;
	return 0;
}

/* Send @q on the NETLINK_SOCK_DIAG socket @nl and read one answer: 0 for
 * a socket (SOCK_DIAG_BY_FAMILY), or the error of an ack (0 or -errno).
 */
static int sock_diag_send(int nl, const struct destroy_req *q)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	union {
		struct nlmsghdr nlh;
		char buf[1024];
	} ack;
	struct nlmsgerr *err = NLMSG_DATA(&ack.nlh);
	ssize_t n;

	n = sendto(nl, q, sizeof(*q), 0, (void *)&kernel, sizeof(kernel));
	if (n != sizeof(*q))
		return n < 0 ? -errno : -EIO;
	n = recv(nl, &ack, sizeof(ack), 0);
	if (n < 0)
		return -errno;
	if (n < (ssize_t)sizeof(ack.nlh))
		return -EPROTO;
	if (ack.nlh.nlmsg_type == SOCK_DIAG_BY_FAMILY)
		return 0;
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(*err)) ||
	    ack.nlh.nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return err->error;
}

static int race_destroy(struct race *r)
{
	return sock_diag_send(r->nl, r->req);
}

/* close() vs SOCK_DESTROY. With migration on, udp_close() of a reuseport
 * member S sees S's group without the socket lock and then moves S to the
 * group's closed section, which reads the group again. SOCK_DESTROY runs
 * udp_abort() -> __udp_disconnect(), whose rehash of S (bound to the
 * wildcard address) takes S out of its group and clears its group
 * pointer: in between, close() would follow a NULL group (a kernel oops).
 *
 * Each round: S and M on *:PORT, a few datagrams queued on S (to move at
 * close()), then A closes S while B sends SOCK_DESTROY for S. B's
 * destroy finds S (0) or finds S gone (ENOENT); anything else fails. A
 * first, non-racing round finds the remote port by which the lookup picks
 * S, and checks that SOCK_DESTROY really aborts S (ECONNABORTED), so that
 * the rounds cannot pass with a request that names nothing.
 */
#define DESTROY_ROUNDS	3000
#define QUEUED		3	/* datagrams queued on S */

TEST_F_TIMEOUT(mig, close_vs_destroy, 120)
{
	const struct ctx *c = &self->c;
	int s, m, p, nl, rport, round, ret, found = 0, gone = 0, bad = 0;
	struct race r = { .act = race_destroy };
	socklen_t len = sizeof(int);
	struct destroy_req q;
	struct timespec t0;
	pthread_t th;

	if (!access("/proc/sys/net/ipv4/udp_migrate", F_OK))
		set_migrate(_metadata, 1);
	nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
	ASSERT_LE(0, nl) TH_LOG("NETLINK_SOCK_DIAG: %s", strerror(errno));
	p = peer(c, 0);
	ASSERT_LE(0, p);

	/* The first round, without a race: S, then M, in a new group, as in
	 * every round. Each remote port names S through one member; the
	 * cookie turns M into ENOENT, so the first 0 is S's port.
	 */
	s = member_at(c, true);
	ASSERT_LE(0, s);
	ASSERT_EQ(QUEUED, send_tag(c, p, 0, QUEUED));
	m = member_at(c, true);
	ASSERT_LE(0, m);
	/* Without udp_diag (a module on Debian's kernel, and the test VM
	 * loads none), sock_diag knows no UDP: even a query for any socket
	 * on S's address and port finds none. (This query looks the local
	 * side up in the destination fields, for historical reasons.)
	 */
	ASSERT_EQ(0, destroy_req_of(c, s, 1, &q));
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST;
	q.r.id.idiag_sport = htons(1);
	q.r.id.idiag_dport = htons(PORT);
	q.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	q.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	ret = sock_diag_send(nl, &q);
	if (ret == -ENOENT)
		SKIP(return, "no UDP in sock_diag (udp_diag)");
	ASSERT_EQ(0, ret) TH_LOG("SOCK_DIAG_BY_FAMILY: %s", strerror(-ret));
	for (rport = 1; rport <= 64; rport++) {
		ASSERT_EQ(0, destroy_req_of(c, s, rport, &q));
		ret = sock_diag_send(nl, &q);
		if (ret == -EOPNOTSUPP)
			SKIP(return, "no SOCK_DESTROY (INET_DIAG_DESTROY)");
		if (ret != -ENOENT)
			break;
	}
	ASSERT_EQ(0, ret) TH_LOG("SOCK_DESTROY, remote port %d: %s", rport,
				 strerror(-ret));
	ASSERT_EQ(0, getsockopt(s, SOL_SOCKET, SO_ERROR, &ret, &len));
	ASSERT_EQ(ECONNABORTED, ret) TH_LOG("S not aborted: SO_ERROR %d", ret);
	close(s);
	close(m);

	r.nl = nl;
	r.req = &q;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, race_start(&r, &th));
	for (round = 1; round <= DESTROY_ROUNDS && !race_timeout(&t0);
	     round++) {
		s = member_at(c, true);
		ASSERT_LE(0, s) TH_LOG("round %d: S: %s", round,
				       strerror(errno));
		ASSERT_EQ(QUEUED, send_tag(c, p, 0, QUEUED));
		m = member_at(c, true);
		ASSERT_LE(0, m) TH_LOG("round %d: M: %s", round,
				       strerror(errno));
		ASSERT_EQ(0, destroy_req_of(c, s, rport, &q));
		race_close(&r, round, s);
		close(m);
		if (r.ret == 0) {
			found++;
		} else if (r.ret == -ENOENT) {
			gone++;
		} else {
			bad++;
			ksft_print_msg("round %d: SOCK_DESTROY: %s\n", round,
				       strerror(-r.ret));
		}
		if (round % 500 == 0) {
			/* A trace in the console log if the kernel dies. */
			ksft_print_msg("%d rounds so far, %.1f s\n", round,
				       race_seconds(&t0));
			fflush(stdout);
		}
	}
	race_end(&r, th);
	ksft_print_msg("%d rounds in %.1f s, remote port %d\n", round - 1,
		       race_seconds(&t0), rport);
	ksft_print_msg("SOCK_DESTROY: S found %d, gone (ENOENT) %d, error %d\n",
		       found, gone, bad);
	EXPECT_EQ(0, bad);
	close(p);
	close(nl);
}

static int race_bind(struct race *r)
{
	return bind(r->fd, (void *)&r->ss, r->len) ? -errno : 0;
}

/* A classic BPF reuseport program: the member at the index given by the
 * first payload byte (for these programs the data starts there).
 */
static int attach_index_prog(int fd)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog fprog = { .len = ARRAY_SIZE(code), .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog,
			  sizeof(fprog));
}

/* Read @want datagrams of one byte from @fds[0..1] into @got[socket][tag]
 * (tags 0 and 1; any other counts in tag 2), waiting up to 200 ms for
 * them, then whatever else is queued.
 */
static void read_tags(const int *fds, int got[2][3], int want)
{
	struct pollfd pfd[2] = {
		{ .fd = fds[0], .events = POLLIN },
		{ .fd = fds[1], .events = POLLIN },
	};
	int i, total = 0;
	__u8 tag;

	memset(got, 0, sizeof(int[2][3]));
	while (poll(pfd, 2, total < want ? 200 : 0) > 0) {
		for (i = 0; i < 2; i++) {
			while (recv(fds[i], &tag, 1, MSG_DONTWAIT) == 1) {
				got[i][tag < 2 ? tag : 2]++;
				total++;
			}
		}
	}
}

/* close() vs bind() of a new member. With udp_migrate=0, udp_close() takes
 * S out of its group before it unhashes S, and not under the port's hash
 * slot lock. A bind() of a new member N in between could pick S, hashed
 * but groupless, as the member whose group it joins, and make a new group
 * of S and N: N then lives in a group apart from the live member M, and
 * apart from the group's program.
 *
 * Each round: S and M on the server's address, with a program that picks
 * the member at the index of the first payload byte, then A closes S
 * while B binds N. Indexes 0 and 1 must then name M and N, one each (which
 * one depends on whether N joined before S left). With N in a group of
 * its own, one of M and N gets all datagrams, the other none.
 *
 * bind() joins the group of the first matching socket of the port's
 * primary hash chain. A new socket goes to the head of that chain, an
 * IPv6 reuseport one to its tail (sk_add_node_rcu()): the rounds bind S
 * first in half of them and M first in the other half, so that S comes
 * first in the chain in either case.
 */
#define BIND_ROUNDS	3000
#define PER_TAG		2	/* datagrams per index per round */
#define MAX_REPORTS	20	/* rounds reported in full */

static void report_split(int round, bool s_first, int got[2][3])
{
	ksft_print_msg("round %d (%s bound first, delay in %s):\n", round,
		       s_first ? "S" : "M", round & 1 ? "A" : "B");
	ksft_print_msg("  M got %d of index 0, %d of 1, %d other\n",
		       got[0][0], got[0][1], got[0][2]);
	ksft_print_msg("  N got %d of index 0, %d of 1, %d other\n",
		       got[1][0], got[1][1], got[1][2]);
	fflush(stdout);
}

TEST_F_TIMEOUT(mig, close_vs_bind_group, 120)
{
	int s, m, n, p, i, round, fds[2], got[2][3], at[2] = {}, split = 0;
	const struct ctx *c = &self->c;
	struct race r = { .act = race_bind };
	struct timespec t0;
	bool s_first;
	pthread_t th;

	if (!access("/proc/sys/net/ipv4/udp_migrate", F_OK))
		set_migrate(_metadata, 0);
	p = peer(c, 0);
	ASSERT_LE(0, p);
	r.len = server_addr(c->family, c->mapped, &r.ss, PORT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, race_start(&r, &th));
	for (round = 1; round <= BIND_ROUNDS && !race_timeout(&t0); round++) {
		/* Rounds 1, 2: S first; 3, 4: M first; ... */
		s_first = !(round & 2);
		if (s_first)
			s = member(c);
		m = member(c);
		ASSERT_LE(0, m) TH_LOG("round %d: M: %s", round,
				       strerror(errno));
		if (!s_first)
			s = member(c);
		ASSERT_LE(0, s) TH_LOG("round %d: S: %s", round,
				       strerror(errno));
		ASSERT_EQ(0, attach_index_prog(m))
			TH_LOG("SO_ATTACH_REUSEPORT_CBPF: %s", strerror(errno));
		n = unbound_member(c);
		ASSERT_LE(0, n);
		r.fd = n;
		race_close(&r, round, s);
		ASSERT_EQ(0, r.ret) TH_LOG("round %d: bind N: %s", round,
					   strerror(-r.ret));

		ASSERT_EQ(PER_TAG, send_tag(c, p, 0, PER_TAG));
		ASSERT_EQ(PER_TAG, send_tag(c, p, 1, PER_TAG));
		fds[0] = m;
		fds[1] = n;
		read_tags(fds, got, 2 * PER_TAG);
		/* N's index i: N has all of i, M all of the other, and
		 * nothing else arrived.
		 */
		i = got[1][1] ? 1 : 0;
		if (got[1][i] == PER_TAG && !got[1][!i] && !got[1][2] &&
		    got[0][!i] == PER_TAG && !got[0][i] && !got[0][2]) {
			at[i]++;
		} else if (++split <= MAX_REPORTS) {
			report_split(round, s_first, got);
		}
		close(m);
		close(n);
		if (round % 500 == 0) {
			/* A trace in the console log if the kernel dies. */
			ksft_print_msg("%d rounds so far, %.1f s\n", round,
				       race_seconds(&t0));
			fflush(stdout);
		}
	}
	race_end(&r, th);
	ksft_print_msg("%d rounds in %.1f s\n", round - 1, race_seconds(&t0));
	ksft_print_msg("N at index 0 %d, at 1 %d, apart from M %d\n",
		       at[0], at[1], split);
	EXPECT_EQ(0, split) TH_LOG("%d of %d rounds put N apart from M",
				   split, round - 1);
}

TEST_HARNESS_MAIN
