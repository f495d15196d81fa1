// SPDX-License-Identifier: GPL-2.0
/*
 * UDP_BIND_CONNECT: one setsockopt() gives a UDP socket its local and its
 * remote address. Each test checks one promise of the option with exact
 * counts and errnos: no 2-tuple window, no effect on reuseport groups,
 * 4-tuple uniqueness, bind()'s ownership rules between two uids, the choice
 * of a local port, the address families, the errors, and that the result
 * is a plain bound and connected socket. The race test floods the port
 * while per-flow sockets are set up, the fuzz test feeds the option random
 * input. The LSM tests attach a BPF-LSM program to the bind() and connect()
 * hooks, the race_same_tuple tests set up one 4-tuple in two threads at once.
 * Each test runs in its own netns; variants: IPv4, IPv6, v4-mapped.
 *
 * Tests of bind()+connect() alone also run on kernels without the option,
 * where they show the window; the others skip there (ENOPROTOOPT).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/udp.h>

#include "kselftest_harness.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_BIND_CONNECT
#define UDP_BIND_CONNECT 105
struct udp_bind_connect {
	struct sockaddr_storage local;
	struct sockaddr_storage remote;
};
#endif

#define PORT		4433
#define PEER_PORT	40000	/* peers are PEER_PORT + n on peer_addr() */
#define FOREIGN_PORT	50000	/* peers that no per-flow socket expects */
#define NR_PEERS	64
#define OLD_PEER6	"2001:db8::5"	/* addr_of() of 192.0.2.5 in IPv6 */

/* How the sockets of a test are addressed. */
struct ctx {
	int family;	/* of the server sockets */
	bool mapped;	/* AF_INET6 sockets on v4-mapped addresses */
};

FIXTURE(bc)
{
	struct ctx c;
	int lsm_link;	/* the BPF link of the LSM tests, or 0 */
};

FIXTURE_VARIANT(bc)
{
	int family;
	bool mapped;
};

FIXTURE_VARIANT_ADD(bc, v4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(bc, v6) { .family = AF_INET6 };
FIXTURE_VARIANT_ADD(bc, v4mapped) { .family = AF_INET6, .mapped = true };

/* Address @v4 (IPv4 text; "::1"-like text for IPv6) as sockets of the
 * variant see it: IPv6 variants use ::1 for every IPv4 loopback address,
 * mapped ones ::ffff:@v4. Peers are told apart by their ports.
 */
static socklen_t addr_of(const struct ctx *self, void *ssp,
			 const char *v4, int port)
{
	struct sockaddr_storage *ss = ssp;
	struct sockaddr_in6 *sin6 = (void *)ss;
	struct sockaddr_in *sin = (void *)ss;
	char buf[64];

	memset(ss, 0, sizeof(*ss));
	if (self->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, v4, &sin->sin_addr);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	if (!strcmp(v4, "0.0.0.0"))
		snprintf(buf, sizeof(buf), "::");
	else if (self->mapped)
		snprintf(buf, sizeof(buf), "::ffff:%s", v4);
	else if (!strncmp(v4, "127.", 4))
		snprintf(buf, sizeof(buf), "::1");
	else
		snprintf(buf, sizeof(buf), "2001:db8::%s",
			 strrchr(v4, '.') + 1);
	inet_pton(AF_INET6, buf, &sin6->sin6_addr);
	return sizeof(*sin6);
}

static const char *server_ip = "127.0.0.1";
static const char *peer_ip = "127.0.0.2";	/* ::1 for IPv6 */

static int udp_socket(const struct ctx *self, bool reuseaddr,
		      bool reuseport)
{
	int one = 1, fd;

	fd = socket(self->family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (reuseaddr)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	return fd;
}

/* UDP_BIND_CONNECT from @lip:@lport to @rip:@rport; 0 or -errno. */
static int bind_connect(const struct ctx *self, int fd,
			const char *lip, int lport, const char *rip, int rport)
{
	struct udp_bind_connect bc;

	addr_of(self, &bc.local, lip, lport);
	addr_of(self, &bc.remote, rip, rport);
	if (setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)))
		return -errno;
	return 0;
}

/* UDP_BIND_CONNECT with a given argument; 0 or -errno. */
static int bcall(int fd, const void *bc, socklen_t len)
{
	return setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, bc, len) ? -errno : 0;
}

/* bind() then connect(); 0 or -errno of the call that failed. */
static int bind_then_connect(const struct ctx *self, int fd,
			     const char *lip, int lport,
			     const char *rip, int rport)
{
	struct sockaddr_storage ss;
	socklen_t len;

	len = addr_of(self, &ss, lip, lport);
	if (bind(fd, (void *)&ss, len))
		return -errno;
	len = addr_of(self, &ss, rip, rport);
	if (connect(fd, (void *)&ss, len))
		return -errno;
	return 0;
}

static int do_bind(const struct ctx *self, int fd, const char *ip,
		   int port)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_of(self, &ss, ip, port);

	return bind(fd, (void *)&ss, len) ? -errno : 0;
}

/* A peer socket on @ip:@port, in the family of the datagrams. */
static int peer_at(const struct ctx *self, const char *ip, int port)
{
	struct ctx p = *self;
	int fd;

	if (p.mapped) {
		p.family = AF_INET;
		p.mapped = false;
	}
	fd = udp_socket(&p, true, false);
	if (fd >= 0 && do_bind(&p, fd, ip, port)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A peer socket on peer_ip:@port. */
static int peer(const struct ctx *self, int port)
{
	return peer_at(self, peer_ip, port);
}

/* Send @n datagrams from @pfd to server_ip:@port. */
static void send_to(const struct ctx *self, int pfd, int port, int n)
{
	struct ctx p = *self;
	struct sockaddr_storage ss;
	socklen_t len;

	if (p.mapped) {
		p.family = AF_INET;
		p.mapped = false;
	}
	len = addr_of(&p, &ss, server_ip, port);
	while (n--)
		sendto(pfd, "x", 1, 0, (void *)&ss, len);
}

/* Datagrams queued on @fd, all read; loopback delivers synchronously. */
/* Read up to @max datagrams queued on @fd; how many. */
static int drain_max(int fd, int max)
{
	char buf[64];
	int n = 0;

	while (n < max && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

static int drain(int fd)
{
	return drain_max(fd, INT_MAX);
}

static int port_of(int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if ((peer ? getpeername : getsockname)(fd, (void *)&ss, &len))
		return -errno;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* The socket is as it was: unbound and unconnected, and usable. */
static void unchanged(struct __test_metadata *_metadata,
		      const struct ctx *self, int fd, int i)
{
	ASSERT_EQ(0, port_of(fd, false)) TH_LOG("case %d", i);
	ASSERT_EQ(-ENOTCONN, port_of(fd, true)) TH_LOG("case %d", i);
}

static void write_file(struct __test_metadata *_metadata, const char *path,
		       const char *val)
{
	int fd = open(path, O_WRONLY);

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	ASSERT_EQ((ssize_t)strlen(val), write(fd, val, strlen(val)));
	close(fd);
}

/* Add @addr/@plen to @ifindex with rtnetlink, without DAD. */
static int add_addr6(int ifindex, const char *addr, int plen)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		struct rtattr rta;
		struct in6_addr a;
	} req = {
		.nh.nlmsg_len = sizeof(req),
		.nh.nlmsg_type = RTM_NEWADDR,
		.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
		.ifa.ifa_family = AF_INET6,
		.ifa.ifa_prefixlen = plen,
		.ifa.ifa_flags = IFA_F_NODAD,
		.ifa.ifa_index = ifindex,
		.rta.rta_type = IFA_LOCAL,
		.rta.rta_len = RTA_LENGTH(sizeof(struct in6_addr)),
	};
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	int fd, ret = -1;

	inet_pton(AF_INET6, addr, &req.a);
	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	if (send(fd, &req, sizeof(req), 0) == sizeof(req) &&
	    recv(fd, &ack, sizeof(ack), 0) > 0 &&
	    ack.nh.nlmsg_type == NLMSG_ERROR && !ack.err.error)
		ret = 0;
	close(fd);
	return ret;
}

/* Does this kernel know the option? Without the series, ENOPROTOOPT. */
static bool has_bind_connect(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), val = 0, ret;

	/* UDP's setsockopt() wants an int before it looks at the name. */
	ret = setsockopt(fd, IPPROTO_UDP, UDP_BIND_CONNECT, &val, sizeof(val));
	ret = ret && errno == ENOPROTOOPT;
	close(fd);
	return !ret;
}

/* Every test of the option skips on a kernel without it. */
#define NO_BIND_CONNECT \
	"no UDP_BIND_CONNECT (ENOPROTOOPT): a kernel without the series"

FIXTURE_SETUP(bc)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	const char *knob = getenv("UDP_HASH4");
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
	if (knob)
		write_file(_metadata, "/proc/sys/net/ipv4/udp_hash4", knob);
}

FIXTURE_TEARDOWN(bc)
{
	/* The LSM hooks are global to the VM: detach before the next test. */
	if (self->lsm_link > 0)
		close(self->lsm_link);
}

/* 8. The socket is a bound and connected one: addresses, send(),
 * receive, and connect(AF_UNSPEC) afterwards.
 */
TEST_F(bc, equivalence)
{
	struct sockaddr_storage ss, want;
	int fd, p1, p2, n;
	socklen_t len;
	char c;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	fd = udp_socket(&self->c, false, false);
	p1 = peer(&self->c, PEER_PORT + 1);
	p2 = peer(&self->c, PEER_PORT + 2);
	ASSERT_LE(0, p2);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));

	len = sizeof(ss);
	ASSERT_EQ(0, getsockname(fd, (void *)&ss, &len));
	ASSERT_EQ(addr_of(&self->c, &want, server_ip, PORT), len);
	ASSERT_EQ(0, memcmp(&ss, &want, len));
	len = sizeof(ss);
	ASSERT_EQ(0, getpeername(fd, (void *)&ss, &len));
	ASSERT_EQ(addr_of(&self->c, &want, peer_ip, PEER_PORT + 1), len);
	ASSERT_EQ(0, memcmp(&ss, &want, len));

	/* Only its peer reaches it; send() needs no address. */
	send_to(&self->c, p1, PORT, 3);
	send_to(&self->c, p2, PORT, 5);
	ASSERT_EQ(3, drain(fd));
	ASSERT_EQ(1, send(fd, "y", 1, 0));
	len = sizeof(ss);
	ASSERT_EQ(1, recvfrom(p1, &c, 1, MSG_DONTWAIT, (void *)&ss, &len));
	ASSERT_EQ(PORT, ntohs(((struct sockaddr_in *)&ss)->sin_port));

	/* connect(AF_UNSPEC): still bound to server_ip:PORT, now open to
	 * every peer, as after bind() and connect().
	 */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	ASSERT_EQ(0, connect(fd, (void *)&ss, sizeof(ss)));
	ASSERT_EQ(-ENOTCONN, port_of(fd, true));
	ASSERT_EQ(PORT, port_of(fd, false));
	send_to(&self->c, p1, PORT, 2);
	send_to(&self->c, p2, PORT, 4);
	n = drain(fd);
	ASSERT_EQ(6, n);
	/* And it may be connected again, like any socket. */
	len = addr_of(&self->c, &ss, peer_ip, PEER_PORT + 2);
	ASSERT_EQ(0, connect(fd, (void *)&ss, len));
	send_to(&self->c, p1, PORT, 2);
	send_to(&self->c, p2, PORT, 4);
	ASSERT_EQ(4, drain(fd));
	close(fd);
	close(p1);
	close(p2);
}

/* 1, reproduced: with bind() then connect(), a datagram of another flow
 * sent between the two calls lands in the per-flow socket, which sits at
 * the head of the chain. It does on every kernel.
 */
TEST_F(bc, window_bind_then_connect)
{
	int lst, fd, foreign, p1;
	struct sockaddr_storage ss;
	socklen_t len;

	lst = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, do_bind(&self->c, lst, server_ip, PORT));
	foreign = peer(&self->c, FOREIGN_PORT);
	p1 = peer(&self->c, PEER_PORT + 1);
	ASSERT_LE(0, p1);

	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, do_bind(&self->c, fd, server_ip, PORT));
	send_to(&self->c, foreign, PORT, 1);	/* between bind and connect */
	len = addr_of(&self->c, &ss, peer_ip, PEER_PORT + 1);
	ASSERT_EQ(0, connect(fd, (void *)&ss, len));
	send_to(&self->c, p1, PORT, 1);

	EXPECT_EQ(2, drain(fd)) TH_LOG("the foreign datagram and its own");
	EXPECT_EQ(0, drain(lst));
}

/* 1: with UDP_BIND_CONNECT the same datagram goes to the listener. */
TEST_F(bc, window_setsockopt)
{
	int lst, fd, foreign, p1;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	lst = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, do_bind(&self->c, lst, server_ip, PORT));
	foreign = peer(&self->c, FOREIGN_PORT);
	p1 = peer(&self->c, PEER_PORT + 1);
	ASSERT_LE(0, p1);

	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	send_to(&self->c, foreign, PORT, 1);
	send_to(&self->c, p1, PORT, 1);

	EXPECT_EQ(1, drain(fd));
	EXPECT_EQ(1, drain(lst));
}

/* 1, against "use a reuseport program": the listeners' group has a program
 * that sends every datagram to listener 0. A per-flow socket set up with
 * bind() then connect() is not in the group (SO_REUSEADDR only), sits ahead
 * of it in the chain, and the lookup returns it before the group and its
 * program are consulted: the foreign datagram sent between the two calls
 * still lands in it, on every kernel. With UDP_BIND_CONNECT the program
 * gets the datagram and sends it to listener 0.
 */
TEST_F(bc, window_reuseport_prog)
{
	struct sock_filter code[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { .len = 1, .filter = code };
	struct sockaddr_storage ss;
	int lst[2], fd, foreign, p1, i;
	socklen_t len;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	for (i = 0; i < 2; i++) {
		lst[i] = udp_socket(&self->c, true, true);
		ASSERT_EQ(0, do_bind(&self->c, lst[i], server_ip, PORT));
	}
	ASSERT_EQ(0, setsockopt(lst[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
				&prog, sizeof(prog)));
	foreign = peer(&self->c, FOREIGN_PORT);
	p1 = peer(&self->c, PEER_PORT + 1);
	ASSERT_LE(0, foreign);
	ASSERT_LE(0, p1);

	/* The program sends a datagram of no flow to listener 0. */
	send_to(&self->c, foreign, PORT, 1);
	ASSERT_EQ(1, drain(lst[0]));
	ASSERT_EQ(0, drain(lst[1]));

	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, do_bind(&self->c, fd, server_ip, PORT));
	send_to(&self->c, foreign, PORT, 1);	/* between bind and connect */
	len = addr_of(&self->c, &ss, peer_ip, PEER_PORT + 1);
	ASSERT_EQ(0, connect(fd, (void *)&ss, len));
	EXPECT_EQ(1, drain(fd)) TH_LOG("the foreign one, past the program");
	EXPECT_EQ(0, drain(lst[0]) + drain(lst[1]));
	close(fd);

	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	send_to(&self->c, foreign, PORT, 1);
	EXPECT_EQ(0, drain(fd));
	EXPECT_EQ(1, drain(lst[0]));
	EXPECT_EQ(0, drain(lst[1]));
	close(fd);
	close(lst[0]);
	close(lst[1]);
	close(foreign);
	close(p1);
}

/* 7: a socket bound to an address alone (IP_BIND_ADDRESS_NO_PORT, port 0)
 * is bound: EINVAL, and its address stays. Earlier, the option re-bound it,
 * and a failure then reset the address it had.
 */
TEST_F(bc, bound_no_port)
{
	struct sockaddr_storage want, got;
	socklen_t wlen, glen = sizeof(got);
	int fd, one = 1;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one,
				sizeof(one)));
	ASSERT_EQ(0, do_bind(&self->c, fd, server_ip, 0));
	EXPECT_EQ(-EINVAL, bind_connect(&self->c, fd, server_ip, PORT,
					peer_ip, PEER_PORT + 1));
	wlen = addr_of(&self->c, &want, server_ip, 0);
	ASSERT_EQ(0, getsockname(fd, (void *)&got, &glen));
	ASSERT_EQ(wlen, glen);
	EXPECT_EQ(0, memcmp(&want, &got, wlen)) TH_LOG("the address changed");
	close(fd);
}

/* For each foreign peer, which of @n sockets got its one datagram. */
static void spread(const struct ctx *self, int *fds, int n,
		   int *owner)
{
	char buf[8];
	int i, j;

	for (i = 0; i < NR_PEERS; i++) {
		int p = peer(self, FOREIGN_PORT + i);

		send_to(self, p, PORT, 1);
		close(p);
		owner[i] = -1;
		for (j = 0; j < n; j++)
			if (recv(fds[j], buf, sizeof(buf), MSG_DONTWAIT) == 1)
				owner[i] = owner[i] == -1 ? j : -2;
	}
}

/* 2: the per-flow socket joins no group and changes no listener's flows,
 * and a listener bound after it joins the group of the others.
 * Without a BPF program, a group of n picks socks[(hash * n) >> 32], so
 * when it grows from n to n + 1 a flow stays at its index i or moves to
 * i + 1; and the new last member gets a flow with probability 1/(n + 1)
 * each. With NR_PEERS = 64 flows, the bounds below (5 of 64 for a third
 * member, 2 for a fourth) fail for a uniform hash with probability below
 * 3e-7.
 */
#define THIRD_MEMBER_MIN	5
#define FOURTH_MEMBER_MIN	2

TEST_F(bc, no_side_effects)
{
	int before[NR_PEERS], after[NR_PEERS], three[NR_PEERS];
	int fds[4], i, fd, p1;
	struct sockaddr_storage ss;
	int counts[4] = {};

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	fds[0] = udp_socket(&self->c, false, true);
	fds[1] = udp_socket(&self->c, false, true);
	ASSERT_EQ(0, do_bind(&self->c, fds[0], server_ip, PORT));
	ASSERT_EQ(0, do_bind(&self->c, fds[1], server_ip, PORT));
	spread(&self->c, fds, 2, before);

	fd = udp_socket(&self->c, false, true);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	spread(&self->c, fds, 2, after);
	for (i = 0; i < NR_PEERS; i++) {
		ASSERT_LE(0, before[i]);
		ASSERT_EQ(before[i], after[i]) TH_LOG("peer %d moved", i);
	}
	ASSERT_EQ(0, drain(fd));

	/* A third listener: the group of three takes every foreign flow. */
	fds[2] = udp_socket(&self->c, false, true);
	ASSERT_EQ(0, do_bind(&self->c, fds[2], server_ip, PORT));
	fds[3] = fd;
	spread(&self->c, fds, 4, three);
	for (i = 0; i < NR_PEERS; i++) {
		ASSERT_LE(0, three[i]) TH_LOG("peer %d: %d", i, three[i]);
		ASSERT_GE(three[i], before[i]) TH_LOG("peer %d: %d, was %d", i,
						      three[i], before[i]);
		ASSERT_LE(three[i], before[i] + 1)
			TH_LOG("peer %d: %d, was %d", i, three[i], before[i]);
		counts[three[i]]++;
	}
	EXPECT_EQ(0, counts[3]);
	EXPECT_LE(THIRD_MEMBER_MIN, counts[2])
		TH_LOG("the new listener got %d flows", counts[2]);
	EXPECT_EQ(NR_PEERS, counts[0] + counts[1] + counts[2]);

	/* Its own flow still reaches it. */
	p1 = peer(&self->c, PEER_PORT + 1);
	send_to(&self->c, p1, PORT, 7);
	EXPECT_EQ(7, drain(fd));
	EXPECT_EQ(0, drain(fds[0]) + drain(fds[1]) + drain(fds[2]));

	/* Disconnected, it joins the group as a bound socket would have. */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	ASSERT_EQ(0, connect(fd, (void *)&ss, sizeof(ss)));
	memset(counts, 0, sizeof(counts));
	spread(&self->c, fds, 4, after);
	for (i = 0; i < NR_PEERS; i++) {
		ASSERT_LE(0, after[i]) TH_LOG("peer %d: %d", i, after[i]);
		ASSERT_GE(after[i], three[i]) TH_LOG("peer %d: %d, was %d", i,
						     after[i], three[i]);
		ASSERT_LE(after[i], three[i] + 1) TH_LOG("peer %d: %d, was %d",
							 i, after[i], three[i]);
		counts[after[i]]++;
	}
	EXPECT_LE(FOURTH_MEMBER_MIN, counts[3])
		TH_LOG("not in the group: %d flows", counts[3]);
	EXPECT_EQ(NR_PEERS, counts[0] + counts[1] + counts[2] + counts[3]);
}

/* Stock 6.12 bug, fixed by patch 1 of the series. A group counts its
 * SO_INCOMING_CPU users by sampling sk_incoming_cpu as members join and
 * leave; a connected member writes that field with the CPU of each
 * datagram. D, bound, connected and given one datagram, leaves with a
 * count it never added: the u16 wraps, the group selects by CPU, and C, a
 * member that received while connected and was disconnected, takes every
 * flow on its CPU. The group is the same before D and after, so every
 * flow must land where it did. The test runs on one CPU. In IPv6, C's
 * peer is 2001:db8::5 on lo, so that C, which stock leaves matching its
 * old peer's address after the disconnect (see disconnect_forgets_peer),
 * takes none of the datagrams from ::1.
 */
TEST_F(bc, incoming_cpu_left_member)
{
	bool v6 = self->c.family == AF_INET6 && !self->c.mapped;
	int fds[3], before[NR_PEERS], after[NR_PEERS], i, d, p, moved = 0;
	const char *c_peer = v6 ? "192.0.2.5" : peer_ip;
	struct sockaddr_storage ss;
	cpu_set_t cpu0;
	socklen_t len;

	if (v6)
		ASSERT_EQ(0, add_addr6(if_nametoindex("lo"), OLD_PEER6, 128));
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpu0), &cpu0));
	for (i = 0; i < 3; i++) {
		fds[i] = udp_socket(&self->c, false, true);
		ASSERT_EQ(0, do_bind(&self->c, fds[i], server_ip, PORT));
	}
	/* C: connected, one datagram, disconnected; still in the group. */
	len = addr_of(&self->c, &ss, c_peer, PEER_PORT);
	ASSERT_EQ(0, connect(fds[2], (void *)&ss, len));
	p = peer_at(&self->c, c_peer, PEER_PORT);
	send_to(&self->c, p, PORT, 1);
	close(p);
	ASSERT_EQ(1, drain(fds[2]));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	ASSERT_EQ(0, connect(fds[2], (void *)&ss, sizeof(ss)));
	spread(&self->c, fds, 3, before);

	/* D: joins, connected, one datagram, closed. */
	d = udp_socket(&self->c, false, true);
	ASSERT_EQ(0, do_bind(&self->c, d, server_ip, PORT));
	len = addr_of(&self->c, &ss, peer_ip, PEER_PORT + 1);
	ASSERT_EQ(0, connect(d, (void *)&ss, len));
	p = peer(&self->c, PEER_PORT + 1);
	send_to(&self->c, p, PORT, 1);
	close(p);
	ASSERT_EQ(1, drain(d));
	close(d);

	spread(&self->c, fds, 3, after);
	for (i = 0; i < NR_PEERS; i++) {
		ASSERT_LE(0, before[i]) TH_LOG("peer %d: %d", i, before[i]);
		moved += before[i] != after[i];
	}
	ksft_print_msg("incoming_cpu: %d of %d flows moved %s\n", moved,
		       NR_PEERS, "when a connected member left");
	EXPECT_EQ(0, moved);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

/* Stock 6.12 bug, fixed by patch 2 of the series: connect(AF_UNSPEC)
 * left an IPv6 socket's peer address set, so that it took datagrams only
 * from that address. The old peer is 2001:db8::5 on lo for IPv6, and
 * 127.0.0.3 for IPv4; the new one is ::1 or 127.0.0.2.
 */
TEST_F(bc, disconnect_forgets_peer)
{
	bool v6 = self->c.family == AF_INET6 && !self->c.mapped;
	struct sockaddr_storage ss;
	int fd, p, got;
	socklen_t len;

	if (v6)
		ASSERT_EQ(0, add_addr6(if_nametoindex("lo"), OLD_PEER6, 128));
	fd = udp_socket(&self->c, false, false);
	ASSERT_EQ(0, do_bind(&self->c, fd, server_ip, PORT));
	len = addr_of(&self->c, &ss, v6 ? "192.0.2.5" : "127.0.0.3", PEER_PORT);
	ASSERT_EQ(0, connect(fd, (void *)&ss, len));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	ASSERT_EQ(0, connect(fd, (void *)&ss, sizeof(ss)));
	ASSERT_EQ(-ENOTCONN, port_of(fd, true));

	p = peer(&self->c, PEER_PORT + 1);
	send_to(&self->c, p, PORT, 5);
	close(p);
	got = drain(fd);
	ksft_print_msg("disconnected: %d of 5 from a new peer\n", got);
	EXPECT_EQ(5, got);
	close(fd);
}

/* A reuseport program attached before bind() makes the socket the seed
 * of a group; the option, whose socket must join none, refuses it.
 */
TEST_F(bc, reuseport_prog_seed)
{
	struct sock_filter code[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { .len = 1, .filter = code };
	int fd;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	fd = udp_socket(&self->c, false, true);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
				&prog, sizeof(prog)));
	ASSERT_EQ(-EINVAL, bind_connect(&self->c, fd, server_ip, PORT,
					peer_ip, PEER_PORT + 1));
	unchanged(_metadata, &self->c, fd, 0);
	close(fd);
}

/* An IPv4 group and an IPv6 (v4-mapped) group on one address and port: a
 * v4-mapped socket of the option that connect(AF_UNSPEC) makes a member
 * of the IPv6 group goes behind the IPv4 sockets of its hash2 chain, as an
 * IPv6 member bound by bind() does, and IPv4 flows stay with the IPv4
 * group: all 64, none to the IPv6 one.
 */
TEST_F(bc, dual_stack_join)
{
	struct ctx v4 = { .family = AF_INET };
	int fds[5], owner[NR_PEERS], i, fd, g4 = 0;
	struct sockaddr_storage ss;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	if (!self->c.mapped)
		SKIP(return, "a scene of v4-mapped sockets");
	for (i = 0; i < 2; i++) {
		fds[i] = udp_socket(&v4, false, true);
		ASSERT_EQ(0, do_bind(&v4, fds[i], server_ip, PORT));
	}
	for (i = 2; i < 4; i++) {
		fds[i] = udp_socket(&self->c, false, true);
		ASSERT_EQ(0, do_bind(&self->c, fds[i], server_ip, PORT));
	}
	/* Without the option's socket, every IPv4 flow to the IPv4 group. */
	spread(&self->c, fds, 4, owner);
	for (i = 0; i < NR_PEERS; i++)
		g4 += owner[i] == 0 || owner[i] == 1;
	ASSERT_EQ(NR_PEERS, g4);
	g4 = 0;

	fd = udp_socket(&self->c, false, true);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	ASSERT_EQ(0, connect(fd, (void *)&ss, sizeof(ss)));
	fds[4] = fd;
	spread(&self->c, fds, 5, owner);
	for (i = 0; i < NR_PEERS; i++)
		g4 += owner[i] == 0 || owner[i] == 1;
	ksft_print_msg("dual stack: %d of %d IPv4 flows to the IPv4 group\n",
		       g4, NR_PEERS);
	EXPECT_EQ(NR_PEERS, g4);
	for (i = 0; i < 5; i++)
		close(fds[i]);
}

/* 3: one socket per 4-tuple, whatever SO_REUSEADDR and SO_REUSEPORT say;
 * bind()+connect() keeps allowing duplicates.
 */
TEST_F(bc, unique)
{
	int a, b, c, d;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	a = udp_socket(&self->c, true, true);
	b = udp_socket(&self->c, true, true);
	ASSERT_EQ(0, bind_connect(&self->c, a, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	EXPECT_EQ(-EADDRINUSE, bind_connect(&self->c, b, server_ip, PORT,
					    peer_ip, PEER_PORT + 1));
	/* Another peer port is another 4-tuple. */
	EXPECT_EQ(0, bind_connect(&self->c, b, server_ip, PORT,
				  peer_ip, PEER_PORT + 2));

	/* A 4-tuple taken by bind()+connect() is taken too. */
	c = udp_socket(&self->c, true, true);
	d = udp_socket(&self->c, true, true);
	ASSERT_EQ(0, bind_then_connect(&self->c, c, server_ip, PORT,
				       peer_ip, PEER_PORT + 3));
	EXPECT_EQ(-EADDRINUSE, bind_connect(&self->c, d, server_ip, PORT,
					    peer_ip, PEER_PORT + 3));
	/* bind()+connect() itself is unchanged: it makes a duplicate. */
	EXPECT_EQ(0, bind_then_connect(&self->c, d, server_ip, PORT,
				       peer_ip, PEER_PORT + 3));

	/* Once the holder is gone, the 4-tuple is free. */
	close(a);
	a = udp_socket(&self->c, true, true);
	EXPECT_EQ(0, bind_connect(&self->c, a, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	/* More than 10 sockets on the port: bind() checks by address. */
	for (int i = 0; i < 12; i++) {
		int s = udp_socket(&self->c, true, false);

		ASSERT_EQ(0, bind_connect(&self->c, s, server_ip, PORT,
					  peer_ip, PEER_PORT + 10 + i));
	}
	b = udp_socket(&self->c, true, false);
	EXPECT_EQ(-EADDRINUSE, bind_connect(&self->c, b, server_ip, PORT,
					    peer_ip, PEER_PORT + 15));
}

/* Open a socket owned by @uid (its fsuid when created). */
static int socket_as(const struct ctx *self, uid_t uid, bool reuseaddr,
		     bool reuseport)
{
	int fd;

	setfsuid(uid);
	fd = udp_socket(self, reuseaddr, reuseport);
	setfsuid(0);
	return fd;
}

/* 4: the option may share a port only where bind() may, same uid rules.
 * Each case: a holder owned by uid 1000 on server_ip:PORT, then uid 1000
 * or 1001 asks; the answer must be bind()'s.
 */
TEST_F(bc, ownership)
{
	static const struct {
		bool h_addr, h_port;	/* holder's SO_REUSEADDR/PORT */
		uid_t uid;		/* who asks */
		bool addr, port;	/* and with which options */
		int want;
	} cases[] = {
		{ false, false, 1001, true, true, -EADDRINUSE },
		{ false, false, 1000, true, true, -EADDRINUSE },
		{ false, true, 1001, false, true, -EADDRINUSE },
		{ false, true, 1001, true, true, -EADDRINUSE },
		{ false, true, 1000, false, true, 0 },
		{ true, false, 1001, true, false, 0 },
		{ true, true, 1001, false, true, -EADDRINUSE },
		{ true, false, 1001, false, true, -EADDRINUSE },
	};
	unsigned int i;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int h, b, s;

		h = socket_as(&self->c, 1000, cases[i].h_addr, cases[i].h_port);
		ASSERT_EQ(0, do_bind(&self->c, h, server_ip, PORT));
		b = socket_as(&self->c, cases[i].uid, cases[i].addr,
			      cases[i].port);
		s = socket_as(&self->c, cases[i].uid, cases[i].addr,
			      cases[i].port);
		EXPECT_EQ(cases[i].want, do_bind(&self->c, b, server_ip, PORT))
			TH_LOG("case %u: bind()", i);
		EXPECT_EQ(cases[i].want,
			  bind_connect(&self->c, s, server_ip, PORT,
				       peer_ip, PEER_PORT + 1))
			TH_LOG("case %u: UDP_BIND_CONNECT", i);
		close(h);
		close(b);
		close(s);
	}
}

/* 5: local port 0 picks a port that makes the 4-tuple unique; with two
 * ports in the range, two sockets to one peer fit and a third does not,
 * while a socket to another peer reuses a port.
 */
TEST_F(bc, port_zero)
{
	int a, b, c, d, pa, pb, p1;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	write_file(_metadata, "/proc/sys/net/ipv4/ip_local_port_range",
		   "41000 41001");
	a = udp_socket(&self->c, true, false);
	b = udp_socket(&self->c, true, false);
	c = udp_socket(&self->c, true, false);
	d = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, bind_connect(&self->c, a, server_ip, 0,
				  peer_ip, PEER_PORT + 1));
	ASSERT_EQ(0, bind_connect(&self->c, b, server_ip, 0,
				  peer_ip, PEER_PORT + 1));
	pa = port_of(a, false);
	pb = port_of(b, false);
	EXPECT_NE(pa, pb);
	EXPECT_LE(41000, pa);
	EXPECT_GE(41001, pa);
	EXPECT_LE(41000, pb);
	EXPECT_GE(41001, pb);
	EXPECT_EQ(-EADDRINUSE, bind_connect(&self->c, c, server_ip, 0,
					    peer_ip, PEER_PORT + 1));
	EXPECT_EQ(0, port_of(c, false));
	EXPECT_EQ(0, bind_connect(&self->c, c, server_ip, 0,
				  peer_ip, PEER_PORT + 2));
	EXPECT_LE(41000, port_of(c, false));

	/* The wildcard address takes the route's source address. */
	EXPECT_EQ(0, bind_connect(&self->c, d, "0.0.0.0", 0,
				  peer_ip, PEER_PORT + 3));
	p1 = peer(&self->c, PEER_PORT + 1);
	send_to(&self->c, p1, pa, 2);
	send_to(&self->c, p1, pb, 3);
	EXPECT_EQ(2, drain(a));
	EXPECT_EQ(3, drain(b));
}

/* 6: link-local IPv6 addresses with scope ids (IPv6 variant only). */
TEST_F(bc, scope_id)
{
	struct pollfd pfd;
	struct sockaddr_in6 *l, *r, ss;
	struct udp_bind_connect bc;
	int lo = if_nametoindex("lo");
	int fd, p, fd2;
	socklen_t len;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	if (self->c.family != AF_INET6 || self->c.mapped)
		SKIP(return, "link-local addresses are IPv6");
	ASSERT_EQ(0, add_addr6(lo, "fe80::1", 64));

	memset(&bc, 0, sizeof(bc));
	l = (void *)&bc.local;
	r = (void *)&bc.remote;
	l->sin6_family = AF_INET6;
	r->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fe80::1", &l->sin6_addr);
	inet_pton(AF_INET6, "fe80::1", &r->sin6_addr);
	l->sin6_port = htons(PORT);
	r->sin6_port = htons(PEER_PORT + 1);

	/* No scope id and no bound device: EINVAL, as for bind(). */
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ASSERT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc)));
	/* Two different scope ids: EINVAL. */
	l->sin6_scope_id = lo;
	r->sin6_scope_id = lo + 100;
	ASSERT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc)));
	r->sin6_scope_id = lo;
	ASSERT_EQ(0, bcall(fd, &bc, sizeof(bc)));
	len = sizeof(ss);
	ASSERT_EQ(0, getsockname(fd, (void *)&ss, &len));
	EXPECT_EQ(lo, ss.sin6_scope_id);
	len = sizeof(ss);
	ASSERT_EQ(0, getpeername(fd, (void *)&ss, &len));
	EXPECT_EQ(lo, ss.sin6_scope_id);

	/* Its peer reaches it, another port on the same address does not. */
	p = socket(AF_INET6, SOCK_DGRAM, 0);
	fd2 = socket(AF_INET6, SOCK_DGRAM, 0);
	ss = *r;
	ASSERT_EQ(0, bind(p, (void *)&ss, sizeof(ss)));
	ss.sin6_port = htons(FOREIGN_PORT);
	ASSERT_EQ(0, bind(fd2, (void *)&ss, sizeof(ss)));
	ASSERT_EQ(1, sendto(p, "x", 1, 0, (void *)l, sizeof(*l)));
	ASSERT_EQ(1, sendto(fd2, "x", 1, 0, (void *)l, sizeof(*l)));
	/* Once in a full udp_hash4=0 run the datagram was not there yet
	 * when sendto() returned: wait for it, up to a second.
	 */
	pfd.fd = fd;
	pfd.events = POLLIN;
	poll(&pfd, 1, 1000);
	EXPECT_EQ(1, drain(fd));
}

/* 6: addresses of the wrong family. */
TEST_F(bc, families)
{
	struct udp_bind_connect bc;
	int fd, v6only = 1;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	fd = udp_socket(&self->c, false, false);
	addr_of(&self->c, &bc.local, server_ip, PORT);
	addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);
	bc.remote.ss_family = self->c.family == AF_INET ? AF_INET6 : AF_INET;
	EXPECT_EQ(-EAFNOSUPPORT, bcall(fd, &bc, sizeof(bc)));
	bc.remote.ss_family = AF_UNSPEC;
	EXPECT_EQ(-EAFNOSUPPORT, bcall(fd, &bc, sizeof(bc)));
	addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);
	bc.local.ss_family = AF_UNSPEC;
	EXPECT_EQ(-EAFNOSUPPORT, bcall(fd, &bc, sizeof(bc)));

	if (self->c.family == AF_INET6) {
		/* A v4-mapped address on one side only. */
		struct ctx other = self->c;

		other.mapped = !self->c.mapped;
		addr_of(&self->c, &bc.local, server_ip, PORT);
		addr_of(&other, &bc.remote, peer_ip, PEER_PORT + 1);
		EXPECT_EQ(-1, setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT,
					 &bc, sizeof(bc)));
		EXPECT_EQ(EAFNOSUPPORT, errno);
		/* v4-mapped on an IPV6_V6ONLY socket. */
		if (self->c.mapped) {
			addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);
			ASSERT_EQ(0, setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
						&v6only, sizeof(v6only)));
			EXPECT_EQ(-1, setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT,
						 &bc, sizeof(bc)));
			EXPECT_EQ(EAFNOSUPPORT, errno);
		}
	}
	EXPECT_EQ(0, port_of(fd, false));
	EXPECT_EQ(-ENOTCONN, port_of(fd, true));
}

/* 7: each error, its errno, and a socket left as it was. */
TEST_F(bc, errors)
{
	struct udp_bind_connect bc;
	int fd, one = 1, i = 0, status;
	pid_t pid;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	fd = udp_socket(&self->c, false, false);
	addr_of(&self->c, &bc.local, server_ip, PORT);
	addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);

	/* optlen other than the struct's size */
	EXPECT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc) - 1));
	unchanged(_metadata, &self->c, fd, i++);
	EXPECT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc) + 1));
	EXPECT_EQ(-EINVAL, bcall(fd, &bc, 0));
	/* a bad pointer */
	EXPECT_EQ(-EFAULT, bcall(fd, (void *)8, sizeof(bc)));
	unchanged(_metadata, &self->c, fd, i++);

	/* remote port 0, remote wildcard address */
	addr_of(&self->c, &bc.remote, peer_ip, 0);
	EXPECT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc)));
	addr_of(&self->c, &bc.remote, "0.0.0.0", PEER_PORT + 1);
	if (self->c.mapped)	/* ::ffff:0.0.0.0, not :: */
		inet_pton(AF_INET6, "::ffff:0.0.0.0",
			  &((struct sockaddr_in6 *)&bc.remote)->sin6_addr);
	EXPECT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc)));
	unchanged(_metadata, &self->c, fd, i++);

	/* a local address that is not local: EADDRNOTAVAIL, unless
	 * IP_FREEBIND; then no route to the peer: ENETUNREACH.
	 */
	addr_of(&self->c, &bc.local, "192.0.2.1", PORT);
	addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);
	EXPECT_EQ(-EADDRNOTAVAIL, bcall(fd, &bc, sizeof(bc)));
	unchanged(_metadata, &self->c, fd, i++);
	addr_of(&self->c, &bc.local, server_ip, PORT);
	addr_of(&self->c, &bc.remote, "192.0.2.2", PEER_PORT + 1);
	EXPECT_EQ(-ENETUNREACH, bcall(fd, &bc, sizeof(bc)));
	unchanged(_metadata, &self->c, fd, i++);

	/* a privileged port without CAP_NET_BIND_SERVICE: EACCES */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		addr_of(&self->c, &bc.local, server_ip, 443);
		addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);
		if (setresuid(1000, 1000, 1000))
			_exit(2);
		_exit(setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc,
				 sizeof(bc)) == -1 && errno == EACCES ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("EACCES for port 443");
	unchanged(_metadata, &self->c, fd, i++);

	/* After all that, the call works, and a second one fails: EISCONN. */
	addr_of(&self->c, &bc.local, server_ip, PORT);
	addr_of(&self->c, &bc.remote, peer_ip, PEER_PORT + 1);
	ASSERT_EQ(0, bcall(fd, &bc, sizeof(bc)));
	EXPECT_EQ(-EISCONN, bcall(fd, &bc, sizeof(bc)));
	EXPECT_EQ(PORT, port_of(fd, false));
	close(fd);

	/* A bound socket: EINVAL, as for a second bind(); it stays bound. */
	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, do_bind(&self->c, fd, server_ip, PORT + 1));
	EXPECT_EQ(-EINVAL, bcall(fd, &bc, sizeof(bc)));
	EXPECT_EQ(PORT + 1, port_of(fd, false));
	close(fd);

	/* A connected socket: EISCONN. */
	fd = udp_socket(&self->c, false, false);
	ASSERT_EQ(0, connect(fd, (void *)&bc.remote,
			     self->c.family == AF_INET ?
			     sizeof(struct sockaddr_in) :
			     sizeof(struct sockaddr_in6)));
	EXPECT_EQ(-EISCONN, bcall(fd, &bc, sizeof(bc)));
	close(fd);

	/* With IP_FREEBIND the local address passes, and the answer is the
	 * one of bind() and connect() with the same addresses.
	 */
	for (i = 0; i < 2; i++) {
		int want;

		fd = udp_socket(&self->c, false, false);
		ASSERT_EQ(0, setsockopt(fd, SOL_IP, IP_FREEBIND,
					&one, sizeof(one)));
		if (i == 0) {
			want = bind_then_connect(&self->c, fd, "192.0.2.1",
						 PORT, peer_ip, PEER_PORT + 1);
			EXPECT_NE(-EADDRNOTAVAIL, want);
		} else {
			EXPECT_EQ(want, bind_connect(&self->c, fd, "192.0.2.1",
						     PORT, peer_ip,
						     PEER_PORT + 1));
		}
		close(fd);
	}
}

/* 7, LSM: a BPF-LSM program on the bind() or connect() hook that refuses
 * one port must refuse the option with the same port, as a cgroup program
 * does. The hooks are global to the VM, so the program refuses one port
 * only, LSM_PORT (bind) or LSM_PEER_PORT (connect), and the teardown
 * detaches it.
 */
#define LSM_PORT	(PORT + 100)
#define LSM_PEER_PORT	(PEER_PORT + 100)

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* Bytes that follow a struct btf_type of @kind with @vlen entries, or -1
 * for a kind this walker does not know.
 */
static long btf_trailer(unsigned int kind, unsigned int vlen)
{
	switch (kind) {
	case BTF_KIND_INT:
		return sizeof(__u32);
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case BTF_KIND_TYPE_TAG:
		return 0;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return (long)vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return (long)vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return (long)vlen * sizeof(struct btf_param);
	case BTF_KIND_VAR:
		return sizeof(struct btf_var);
	case BTF_KIND_DATASEC:
		return (long)vlen * sizeof(struct btf_var_secinfo);
	case BTF_KIND_DECL_TAG:
		return sizeof(struct btf_decl_tag);
	case BTF_KIND_ENUM64:
		return (long)vlen * sizeof(struct btf_enum64);
	}
	return -1;
}

/* The BTF id of the FUNC @name in the kernel's BTF; -errno if there is no
 * BTF, -EINVAL if it does not parse, -ENOENT if @name is not there.
 */
static int btf_func_id(const char *name, char *why, size_t whylen)
{
	const struct btf_header *h;
	size_t len = 0, cap = 1 << 20;
	char *buf = malloc(cap), *types, *strs;
	__u32 off, id;
	ssize_t n;
	int fd, ret = -ENOENT;

	if (!buf)
		return -ENOMEM;
	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "open /sys/kernel/btf/vmlinux: %s",
			 strerror(errno));
		free(buf);
		return ret;
	}
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += n;
		if (len < cap)
			continue;
		cap *= 2;
		buf = realloc(buf, cap);
		if (!buf)
			return -ENOMEM;
	}
	close(fd);
	h = (void *)buf;
	if (n < 0 || len < sizeof(*h) || h->magic != BTF_MAGIC ||
	    h->hdr_len > len ||
	    (size_t)h->type_off + h->type_len > len - h->hdr_len ||
	    (size_t)h->str_off + h->str_len > len - h->hdr_len) {
		snprintf(why, whylen, "no valid BTF in %zu bytes", len);
		free(buf);
		return -EINVAL;
	}
	types = buf + h->hdr_len + h->type_off;
	strs = buf + h->hdr_len + h->str_off;
	/* Type ids start at 1; each type is a btf_type and its trailer. */
	for (off = 0, id = 1; off < h->type_len; id++) {
		const struct btf_type *t = (void *)(types + off);
		unsigned int kind = BTF_INFO_KIND(t->info);
		long extra = btf_trailer(kind, BTF_INFO_VLEN(t->info));

		if (h->type_len - off < sizeof(*t) || extra < 0 ||
		    h->type_len - off - sizeof(*t) < (size_t)extra) {
			snprintf(why, whylen, "bad BTF type %u (kind %u) at %u",
				 id, kind, off);
			ret = -EINVAL;
			break;
		}
		if (kind == BTF_KIND_FUNC && t->name_off < h->str_len &&
		    !strncmp(strs + t->name_off, name,
			     h->str_len - t->name_off)) {
			ret = id;
			break;
		}
		off += sizeof(*t) + extra;
	}
	if (ret == -ENOENT)
		snprintf(why, whylen, "no FUNC %s in %u types", name, id - 1);
	free(buf);
	return ret;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ c, d, s, o, i })

/* Attach to LSM hook @hook (bpf_lsm_@hook) a program that returns -EPERM
 * when the sockaddr argument is AF_INET or AF_INET6 with port @port, and 0
 * for everything else; the link fd goes to *@link. Any step that
 * fails makes the test fail: the patched kernel has BTF and the BPF LSM.
 */
static void lsm_attach(struct __test_metadata *_metadata, int *link,
		       const char *hook, int port)
{
	struct bpf_insn prog[] = {
		/* r3 = ctx[1], the sockaddr of (sock, address, addrlen) */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_3, BPF_REG_1, 8, 0),
		/* bpf_probe_read_kernel(fp - 8, 4, r3): family and port */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_1, 0, 0, -8),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 4),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_probe_read_kernel),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 7, 0),
		/* sa_family is AF_INET or AF_INET6, else allow */
		INSN(BPF_LDX | BPF_MEM | BPF_H, BPF_REG_1, BPF_REG_10, -8, 0),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_1, 0, 1, AF_INET),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 4, AF_INET6),
		/* sin_port and sin6_port, at offset 2, in network order */
		INSN(BPF_LDX | BPF_MEM | BPF_H, BPF_REG_1, BPF_REG_10, -6, 0),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 2, htons(port)),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -EPERM),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		/* allow */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[65536];
	union bpf_attr attr;
	char func[64], why[128] = "out of memory";
	int id, fd;

	snprintf(func, sizeof(func), "bpf_lsm_%s", hook);
	id = btf_func_id(func, why, sizeof(why));
	ASSERT_LT(0, id) TH_LOG("BTF id of %s: %s", func, why);

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_LSM;
	attr.expected_attach_type = BPF_LSM_MAC;
	attr.attach_btf_id = id;
	attr.insns = (uintptr_t)prog;
	attr.insn_cnt = ARRAY_SIZE(prog);
	attr.license = (uintptr_t)"GPL";
	attr.log_buf = (uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	ASSERT_LE(0, fd) TH_LOG("LSM program on %s (BTF %d): %s; %s",
				func, id, strerror(errno), log);

	memset(&attr, 0, sizeof(attr));
	attr.link_create.prog_fd = fd;
	attr.link_create.attach_type = BPF_LSM_MAC;
	*link = sys_bpf(BPF_LINK_CREATE, &attr);
	ASSERT_LE(0, *link) TH_LOG("BPF_LINK_CREATE on %s: %s", func,
				   strerror(errno));
	close(fd);	/* the link holds the program */
}

/* 7, LSM: a program on socket_bind that refuses LSM_PORT refuses bind()
 * and the option to it; the refused option leaves the socket unbound and
 * usable, and other ports pass.
 */
TEST_F(bc, lsm_bind)
{
	int fd, ctl;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	lsm_attach(_metadata, &self->lsm_link, "socket_bind", LSM_PORT);

	/* The program works: bind() to LSM_PORT fails, to PORT it passes. */
	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(-EPERM, do_bind(&self->c, fd, server_ip, LSM_PORT));
	close(fd);
	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, do_bind(&self->c, fd, server_ip, PORT));
	close(fd);
	/* The option with an allowed port passes. */
	ctl = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, bind_connect(&self->c, ctl, server_ip, PORT + 1,
				  peer_ip, PEER_PORT + 1));
	close(ctl);

	/* The option with LSM_PORT fails as bind() does. */
	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(-EPERM, bind_connect(&self->c, fd, server_ip, LSM_PORT,
				       peer_ip, PEER_PORT + 1))
		TH_LOG("UDP_BIND_CONNECT got past the LSM bind hook");
	unchanged(_metadata, &self->c, fd, 0);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT + 2,
				  peer_ip, PEER_PORT + 1));
	EXPECT_EQ(PORT + 2, port_of(fd, false));
	close(fd);
}

/* 7, LSM: a program on socket_connect that refuses LSM_PEER_PORT refuses
 * connect() and the option to it; the refused option leaves the socket
 * unbound and unconnected, and other peers pass.
 */
TEST_F(bc, lsm_connect)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ctl;

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	lsm_attach(_metadata, &self->lsm_link, "socket_connect",
		   LSM_PEER_PORT);

	/* The program works: connect() to LSM_PEER_PORT fails, to another
	 * peer port it passes.
	 */
	fd = udp_socket(&self->c, true, false);
	len = addr_of(&self->c, &ss, peer_ip, LSM_PEER_PORT);
	ASSERT_EQ(-1, connect(fd, (void *)&ss, len));
	ASSERT_EQ(EPERM, errno);
	len = addr_of(&self->c, &ss, peer_ip, PEER_PORT + 1);
	ASSERT_EQ(0, connect(fd, (void *)&ss, len));
	close(fd);
	/* The option to an allowed peer passes. */
	ctl = udp_socket(&self->c, true, false);
	ASSERT_EQ(0, bind_connect(&self->c, ctl, server_ip, PORT,
				  peer_ip, PEER_PORT + 1));
	close(ctl);

	/* The option to LSM_PEER_PORT fails as connect() does. */
	fd = udp_socket(&self->c, true, false);
	ASSERT_EQ(-EPERM, bind_connect(&self->c, fd, server_ip, PORT + 1,
				       peer_ip, LSM_PEER_PORT))
		TH_LOG("UDP_BIND_CONNECT got past the LSM connect hook");
	unchanged(_metadata, &self->c, fd, 0);
	ASSERT_EQ(0, bind_connect(&self->c, fd, server_ip, PORT + 1,
				  peer_ip, PEER_PORT + 2));
	EXPECT_EQ(PEER_PORT + 2, port_of(fd, true));
	close(fd);
}

/* The race: flooders send from foreign peers to server_ip:PORT while the
 * main thread sets up per-flow sockets to peers that never send; any
 * datagram in a per-flow socket is foreign.
 */
#define FLOOD_GAP_US	1000

struct flood {
	const struct ctx *self;
	bool stop;	/* read and written atomically */
	int port;
	long sent;
};

static void *flooder(void *arg)
{
	struct flood *f = arg;
	int p = peer(f->self, f->port);

	/* Bursts of 16 a millisecond apart: a flood that leaves the flows
	 * some CPU under a debug kernel, still thousands a second.
	 */
	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		send_to(f->self, p, PORT, 16);
		f->sent += 16;
		usleep(FLOOD_GAP_US);
	}
	close(p);
	return NULL;
}

/* Set up at least @nr per-flow sockets with @use_opt or bind()+connect(),
 * under a flood; return how many foreign datagrams they got. The flows
 * yield the CPU between the two calls, as a preempted server would. The
 * flood must really arrive while they are set up: each period of at least
 * FLOOD_EVERY flows and FLOOD_PERIOD_MS must have seen some of it, on the
 * listener (drained at the end of the period) or on the flows' sockets
 * (where, through the bind()+connect() window, the bug puts it). A period
 * has a minimum time because a fast kernel sets up FLOOD_EVERY flows in
 * less than the flooders' gap.
 */
#define FLOOD_EVERY	64
#define FLOOD_PERIOD_MS	10

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Flow @i of race(): set up, drained, closed. Return: the foreign
 * datagrams it got, or -errno of the call that failed.
 */
static long race_flow(const struct ctx *self, bool use_opt, int i)
{
	int fd = udp_socket(self, true, false);
	struct sockaddr_storage ss;
	socklen_t len;
	long ret;

	if (use_opt) {
		ret = bind_connect(self, fd, server_ip, PORT, peer_ip,
				   PEER_PORT + i % 5000);
	} else {
		ret = do_bind(self, fd, server_ip, PORT);
		sched_yield();
		len = addr_of(self, &ss, peer_ip, PEER_PORT + i % 5000);
		if (!ret && connect(fd, (void *)&ss, len))
			ret = -errno;
	}
	if (!ret)
		ret = drain(fd);
	close(fd);
	return ret;
}

static long race(struct __test_metadata *_metadata,
		 const struct ctx *self, bool use_opt, int nr)
{
	struct flood f[2] = {
		{ .self = self, .port = FOREIGN_PORT },
		{ .self = self, .port = FOREIGN_PORT + 1 },
	};
	long foreign = 0, arrived = 0, in_period, n;
	int lst, i = 0, k, period, flooded = 0;
	struct timespec t0;
	pthread_t th[2];

	lst = udp_socket(self, true, false);
	EXPECT_EQ(0, do_bind(self, lst, server_ip, PORT));
	for (k = 0; k < 2; k++)
		pthread_create(&th[k], NULL, flooder, &f[k]);
	usleep(10000);
	for (period = 0; period < nr / FLOOD_EVERY; period++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		in_period = 0;
		for (k = 0; k < FLOOD_EVERY || ms_since(&t0) < FLOOD_PERIOD_MS;
		     k++, i++) {
			n = race_flow(self, use_opt, i);
			ASSERT_LE(0, n) TH_LOG("flow %d: %s", i, strerror(-n));
			foreign += n;
			in_period += n;
		}
		/* Bounded: a flood refills it as fast as it drains. */
		n = drain_max(lst, 4096);
		arrived += n;
		flooded += in_period + n > 0;
	}
	for (k = 0; k < 2; k++) {
		__atomic_store_n(&f[k].stop, true, __ATOMIC_RELAXED);
		pthread_join(th[k], NULL);
	}
	close(lst);
	ksft_print_msg("%s: %d flows, %ld flooded, %ld listener, %ld foreign\n",
		       use_opt ? "UDP_BIND_CONNECT" : "bind()+connect()",
		       i, f[0].sent + f[1].sent, arrived, foreign);
	EXPECT_EQ(nr / FLOOD_EVERY, flooded) TH_LOG("the flood did not arrive");
	return foreign;
}

#define RACE_FLOWS	1000

TEST_F_TIMEOUT(bc, race_bind_then_connect, 120)
{
	EXPECT_LT(0, race(_metadata, &self->c, false, RACE_FLOWS));
}

TEST_F_TIMEOUT(bc, race_setsockopt, 120)
{
	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	EXPECT_EQ(0, race(_metadata, &self->c, true, RACE_FLOWS));
}

/* 3, raced: two threads set up the same 4-tuple at the same moment on two
 * SO_REUSEADDR sockets of one uid, which bind() lets share the port; one
 * must get it and the other EADDRINUSE, never both. The main thread is one
 * of the two: each round it opens the sockets, releases the other thread,
 * which spins on a round counter, makes its own call at once, and spins
 * until the other thread has answered.
 */
struct tuple_race {
	const struct ctx *self;
	int fd, lport, rport;	/* of the other thread, for this round */
	int ret;
	int go, done;		/* round numbers, accessed atomically */
};

static void *tuple_racer(void *arg)
{
	struct tuple_race *r = arg;
	int round = 0;

	for (;;) {
		round++;
		while (__atomic_load_n(&r->go, __ATOMIC_ACQUIRE) < round)
			;
		if (r->fd < 0)
			return NULL;
		r->ret = bind_connect(r->self, r->fd, server_ip, r->lport,
				      peer_ip, r->rport);
		__atomic_store_n(&r->done, round, __ATOMIC_RELEASE);
	}
}

/* Under TCG on a busy 2-core host a round takes 15-45 ms, and the kernel
 * without the fix lost 4-25% of the rounds: 300 rounds take under 15 s and
 * show it a dozen times or more.
 */
#define TUPLE_ROUNDS	300

/* @rounds rounds with local port @lport (0: the kernel picks); count the
 * rounds in which both calls succeeded, and fail at the first answer that
 * is neither success nor EADDRINUSE.
 */
static void tuple_race(struct __test_metadata *_metadata,
		       const struct ctx *self, int lport, int rounds)
{
	struct tuple_race r = { .self = self, .lport = lport };
	int i, ret, both = 0, one = 0, same = 0;
	struct timespec t0, t1;
	pthread_t th;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, pthread_create(&th, NULL, tuple_racer, &r));
	for (i = 1; i <= rounds; i++) {
		fd = udp_socket(self, true, false);
		r.fd = udp_socket(self, true, false);
		ASSERT_LE(0, fd);
		ASSERT_LE(0, r.fd);
		r.rport = PEER_PORT + i % 1000;
		__atomic_store_n(&r.go, i, __ATOMIC_RELEASE);
		ret = bind_connect(self, fd, server_ip, lport, peer_ip,
				   r.rport);
		while (__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) < i)
			;
		if (!ret && !r.ret) {
			both++;
			/* Port 0 may pick two ports, never one for both. */
			if (port_of(fd, false) == port_of(r.fd, false))
				same++;
		} else if ((!ret && r.ret == -EADDRINUSE) ||
			   (ret == -EADDRINUSE && !r.ret)) {
			one++;
		} else {
			ASSERT_TRUE(false)
				TH_LOG("round %d: %s and %s", i, strerror(-ret),
				       strerror(-r.ret));
		}
		close(fd);
		close(r.fd);
	}
	r.fd = -1;
	__atomic_store_n(&r.go, i, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ksft_print_msg("port %d: %d rounds %.1fs: both %d, same %d, one %d\n",
		       lport, rounds, t1.tv_sec - t0.tv_sec +
		       (t1.tv_nsec - t0.tv_nsec) / 1e9, both, same, one);
	if (lport) {
		EXPECT_EQ(0, both) TH_LOG("both sockets got the 4-tuple");
		EXPECT_EQ(rounds, one);
	} else {
		EXPECT_EQ(0, same) TH_LOG("both sockets got the 4-tuple");
		EXPECT_EQ(rounds, both + one);
	}
}

/* An explicit local port: one of the two, never both. */
TEST_F_TIMEOUT(bc, race_same_tuple, 120)
{
	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	tuple_race(_metadata, &self->c, PORT, TUPLE_ROUNDS);
}

/* Local port 0, one peer: the kernel may pick two ports, never one. */
TEST_F_TIMEOUT(bc, race_same_tuple_port0, 120)
{
	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	tuple_race(_metadata, &self->c, 0, TUPLE_ROUNDS);
}

/* Random input: lengths, families, addresses, ports and socket options.
 * Each input's errno is predicted and checked: first the checks that the
 * option makes before it binds, in the kernel's order (length, buffer,
 * families, the remote port and address); then, on a twin socket with the
 * same family and options, what bind() of the local address and connect()
 * to the remote one return. A success must give the asked peer.
 */
enum { FZ_REUSEADDR = 1, FZ_REUSEPORT = 2, FZ_V6ONLY = 4, FZ_FREEBIND = 8 };

static int fuzz_socket(int family, int opts)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		return fd;
	/* As for the socket under test; IPV6_V6ONLY fails on AF_INET. */
	if (opts & FZ_REUSEADDR)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4);
	if (opts & FZ_REUSEPORT)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4);
	if (opts & FZ_V6ONLY)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, 4);
	if (opts & FZ_FREEBIND)
		setsockopt(fd, SOL_IP, IP_FREEBIND, &one, 4);
	return fd;
}

/* What bind() of @bc->local and then connect() to @bc->remote return on a
 * fresh socket of @family with @opts: the first errno, or 0.
 */
static int fuzz_twin(int family, int opts, const struct udp_bind_connect *bc)
{
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) :
					    sizeof(struct sockaddr_in6);
	int fd = fuzz_socket(family, opts), err = 0;

	if (fd < 0)
		return 1;	/* no errno: the test stops */
	if (bind(fd, (void *)&bc->local, len) ||
	    connect(fd, (void *)&bc->remote, len))
		err = -errno;
	close(fd);
	return err;
}

static bool v6_mapped(const struct sockaddr_in6 *sin6)
{
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
}

/* The -errno that UDP_BIND_CONNECT must give for this input, or 0. */
static int fuzz_expect(int family, int opts, const struct udp_bind_connect *bc,
		       int len, bool null)
{
	const struct sockaddr_in6 *l6 = (void *)&bc->local;
	const struct sockaddr_in6 *r6 = (void *)&bc->remote;
	const struct sockaddr_in *l4 = (void *)&bc->local;
	const struct sockaddr_in *r4 = (void *)&bc->remote;

	if (len != sizeof(*bc))
		return -EINVAL;
	if (null)
		return -EFAULT;
	if (l4->sin_family != family || r4->sin_family != family)
		return -EAFNOSUPPORT;
	if (family == AF_INET) {
		if (!r4->sin_port || !r4->sin_addr.s_addr)
			return -EINVAL;
	} else {
		/* Both sides IPv4 or both IPv6; :: goes with either. */
		if ((!IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr) &&
		     v6_mapped(l6) != v6_mapped(r6)) ||
		    (v6_mapped(r6) && (opts & FZ_V6ONLY)))
			return -EAFNOSUPPORT;
		if (!r6->sin6_port || IN6_IS_ADDR_UNSPECIFIED(&r6->sin6_addr) ||
		    (v6_mapped(r6) && !r6->sin6_addr.s6_addr32[3]))
			return -EINVAL;
	}
	return fuzz_twin(family, opts, bc);
}

TEST_F_TIMEOUT(bc, fuzz, 120)
{
	static const char *const v4[] = {
		"127.0.0.1", "127.0.0.2", "0.0.0.0", "192.0.2.1",
		"224.0.0.1", "255.255.255.255", "127.255.255.255",
	};
	static const char *const v6[] = {
		"::1", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "fe80::1",
		"ff02::1", "2001:db8::1", "::ffff:224.0.0.1",
	};
	unsigned char buf[2 * sizeof(struct udp_bind_connect)];
	int i, j, tally[4] = {};

	if (!has_bind_connect())
		SKIP(return, NO_BIND_CONNECT);
	srand(42 + self->c.family + self->c.mapped);
	for (i = 0; i < 3000; i++) {
		struct udp_bind_connect *bc = (void *)buf;
		int family = rand() % 2 ? AF_INET : AF_INET6;
		int fd, len, err, want, k, opts = 0;
		bool null;

		if (rand() % 4 == 0)
			opts |= FZ_REUSEADDR;
		if (rand() % 4 == 0)
			opts |= FZ_REUSEPORT;
		if (family == AF_INET6 && rand() % 8 == 0)
			opts |= FZ_V6ONLY;
		if (rand() % 8 == 0)
			opts |= FZ_FREEBIND;

		for (j = 0; j < (int)sizeof(buf); j++)
			buf[j] = rand();
		for (k = 0; k < 2; k++) {
			void *ss = k ? (void *)&bc->remote : (void *)&bc->local;
			struct sockaddr_in6 *sin6 = ss;
			struct sockaddr_in *sin = ss;
			int port = rand() % 3 ? 4000 + rand() % 4 : 0;

			switch (rand() % 5) {
			case 0:
			case 1:
				sin->sin_family = AF_INET;
				inet_pton(AF_INET, v4[rand() % 7],
					  &sin->sin_addr);
				sin->sin_port = htons(port);
				break;
			case 2:
			case 3:
				sin6->sin6_family = AF_INET6;
				inet_pton(AF_INET6, v6[rand() % 8],
					  &sin6->sin6_addr);
				sin6->sin6_port = htons(port);
				if (rand() % 2)
					sin6->sin6_scope_id = rand() % 3;
				if (rand() % 2)
					sin6->sin6_flowinfo = 0;
				break;
			default:
				break;	/* random bytes */
			}
		}
		len = rand() % 6 ? (int)sizeof(*bc) : rand() % (int)sizeof(buf);
		null = rand() % 50 == 0;

		/* The twin goes first and is closed: it must not hold the
		 * 4-tuple when the option runs.
		 */
		want = fuzz_expect(family, opts, bc, len, null);
		ASSERT_GE(0, want) TH_LOG("iteration %d: no twin socket", i);
		fd = fuzz_socket(family, opts);
		ASSERT_LE(0, fd);
		err = setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT,
				 null ? NULL : buf, len) ? -errno : 0;
		ASSERT_EQ(want, err)
			TH_LOG("input %d: family %d, options %#x, length %d",
			       i, family, opts, len);
		if (!err) {
			struct sockaddr_storage peer;
			socklen_t plen = sizeof(peer);

			ASSERT_EQ(0, getpeername(fd, (void *)&peer, &plen));
			ASSERT_EQ(((struct sockaddr_in *)&bc->remote)->sin_port,
				  ((struct sockaddr_in *)&peer)->sin_port);
		}
		tally[!err ? 0 : err == -EINVAL ? 1 :
		      err == -EAFNOSUPPORT ? 2 : 3]++;
		close(fd);
	}
	ksft_print_msg("fuzz: 3000 inputs, each its errno: %d ok, %d EINVAL,",
		       tally[0], tally[1]);
	printf(" %d EAFNOSUPPORT, %d other\n", tally[2], tally[3]);
}

TEST_HARNESS_MAIN
