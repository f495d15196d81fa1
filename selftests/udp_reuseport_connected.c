// SPDX-License-Identifier: GPL-2.0
/*
 * A connected UDP socket must receive every datagram of its 4-tuple, even
 * when a SO_REUSEPORT group on the same address and port was bound after it.
 *
 * This is the hot-upgrade scene of an established-over-unconnected server:
 *
 *   L1[n]  old listeners: SO_REUSEADDR + SO_REUSEPORT on ADDR:PORT
 *   S      per-flow socket: SO_REUSEADDR (+ SO_REUSEPORT in some variants)
 *          bound to ADDR:PORT and connected to the client C
 *   L2[n]  new listeners of the upgraded process, bound after S (or before)
 *   then   L1 closes, and C sends NR_DGRAMS datagrams to ADDR:PORT.
 *
 * Every datagram must reach S and none may reach L2. Since 4.6,
 * udp4_lib_lookup2() returns the reuseport pick of the first group member it
 * meets unless the group has has_conns, so a connected socket that is not in
 * that group and sits behind it in the hslot2 chain loses all its datagrams.
 *
 * Variants: address family (IPv4, IPv6, v4-mapped IPv6), how S is set up
 * (SO_REUSEADDR only; SO_REUSEPORT in the listeners' group; SO_REUSEPORT
 * but owned by another uid, so in a group of its own), whether L2 is bound
 * after or before S, and the group size n (1, 10, 20).
 *
 * Each test runs in its own network namespace and logs one line
 *   landed <variant>: S=<n> L2=<n> lost=<n> of <N>
 * that scripts/ parse to show where the datagrams went.
 *
 * With UDP_HASH4=0 or 1 in the environment, each test first writes it to
 * net.ipv4.udp_hash4 of its netns (the knob does not exist on stock
 * kernels, where the variable must not be set).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define NR_DGRAMS	200
#define MAX_GROUP	20
#define SERVER_PORT	4433
#define CLIENT_PORT	50000
#define OTHER_UID	1000

enum s_mode {
	S_REUSEADDR,		/* SO_REUSEADDR only: in no reuseport group */
	S_REUSEPORT,		/* joins the listeners' reuseport group */
	S_REUSEPORT_OTHER_UID,	/* SO_REUSEPORT, other owner: its own group */
};

/* One variant of the scene. */
struct params {
	int family;		/* of the server-side sockets */
	bool v4mapped;		/* AF_INET6 sockets on ::ffff:127.0.0.x */
	enum s_mode s_mode;
	bool l2_before_s;
	int n;			/* listeners in L1 and in L2 */
	const char *name;
};

/* ADDR:PORT, as the server sockets see it. */
struct server {
	struct sockaddr_storage addr;
	socklen_t len;
};

FIXTURE(reuseport_connected)
{
	int l1[MAX_GROUP];
	int l2[MAX_GROUP];
	int s;
	int c;
	struct server srv;
	struct sockaddr_storage dst;	/* ADDR:PORT as the client sees it */
	socklen_t dst_len;
};

FIXTURE_VARIANT(reuseport_connected)
{
	struct params p;
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseaddr_l2_after_s_1)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEADDR, .n = 1,
		.name = "v4_reuseaddr_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseaddr_l2_before_s_1)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEADDR,
		.l2_before_s = true, .n = 1,
		.name = "v4_reuseaddr_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseport_l2_after_s_1)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT, .n = 1,
		.name = "v4_reuseport_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseport_l2_before_s_1)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT,
		.l2_before_s = true, .n = 1,
		.name = "v4_reuseport_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_otheruid_l2_after_s_1)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT_OTHER_UID, .n = 1,
		.name = "v4_otheruid_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_otheruid_l2_before_s_1)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT_OTHER_UID,
		.l2_before_s = true, .n = 1,
		.name = "v4_otheruid_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseaddr_l2_after_s_10)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEADDR, .n = 10,
		.name = "v4_reuseaddr_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseaddr_l2_before_s_10)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEADDR,
		.l2_before_s = true, .n = 10,
		.name = "v4_reuseaddr_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseport_l2_after_s_10)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT, .n = 10,
		.name = "v4_reuseport_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseport_l2_before_s_10)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT,
		.l2_before_s = true, .n = 10,
		.name = "v4_reuseport_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_otheruid_l2_after_s_10)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT_OTHER_UID, .n = 10,
		.name = "v4_otheruid_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_otheruid_l2_before_s_10)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT_OTHER_UID,
		.l2_before_s = true, .n = 10,
		.name = "v4_otheruid_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseaddr_l2_after_s_20)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEADDR, .n = 20,
		.name = "v4_reuseaddr_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseaddr_l2_before_s_20)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEADDR,
		.l2_before_s = true, .n = 20,
		.name = "v4_reuseaddr_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseport_l2_after_s_20)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT, .n = 20,
		.name = "v4_reuseport_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_reuseport_l2_before_s_20)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT,
		.l2_before_s = true, .n = 20,
		.name = "v4_reuseport_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_otheruid_l2_after_s_20)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT_OTHER_UID, .n = 20,
		.name = "v4_otheruid_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4_otheruid_l2_before_s_20)
{
	.p = {
		.family = AF_INET, .s_mode = S_REUSEPORT_OTHER_UID,
		.l2_before_s = true, .n = 20,
		.name = "v4_otheruid_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseaddr_l2_after_s_1)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEADDR, .n = 1,
		.name = "v6_reuseaddr_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseaddr_l2_before_s_1)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEADDR,
		.l2_before_s = true, .n = 1,
		.name = "v6_reuseaddr_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseport_l2_after_s_1)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT, .n = 1,
		.name = "v6_reuseport_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseport_l2_before_s_1)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT,
		.l2_before_s = true, .n = 1,
		.name = "v6_reuseport_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_otheruid_l2_after_s_1)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT_OTHER_UID, .n = 1,
		.name = "v6_otheruid_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_otheruid_l2_before_s_1)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT_OTHER_UID,
		.l2_before_s = true, .n = 1,
		.name = "v6_otheruid_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseaddr_l2_after_s_10)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEADDR, .n = 10,
		.name = "v6_reuseaddr_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseaddr_l2_before_s_10)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEADDR,
		.l2_before_s = true, .n = 10,
		.name = "v6_reuseaddr_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseport_l2_after_s_10)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT, .n = 10,
		.name = "v6_reuseport_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseport_l2_before_s_10)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT,
		.l2_before_s = true, .n = 10,
		.name = "v6_reuseport_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_otheruid_l2_after_s_10)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT_OTHER_UID, .n = 10,
		.name = "v6_otheruid_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_otheruid_l2_before_s_10)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT_OTHER_UID,
		.l2_before_s = true, .n = 10,
		.name = "v6_otheruid_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseaddr_l2_after_s_20)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEADDR, .n = 20,
		.name = "v6_reuseaddr_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseaddr_l2_before_s_20)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEADDR,
		.l2_before_s = true, .n = 20,
		.name = "v6_reuseaddr_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseport_l2_after_s_20)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT, .n = 20,
		.name = "v6_reuseport_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_reuseport_l2_before_s_20)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT,
		.l2_before_s = true, .n = 20,
		.name = "v6_reuseport_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_otheruid_l2_after_s_20)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT_OTHER_UID, .n = 20,
		.name = "v6_otheruid_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v6_otheruid_l2_before_s_20)
{
	.p = {
		.family = AF_INET6, .s_mode = S_REUSEPORT_OTHER_UID,
		.l2_before_s = true, .n = 20,
		.name = "v6_otheruid_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseaddr_l2_after_s_1)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEADDR, .n = 1,
		.name = "v4mapped_reuseaddr_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseaddr_l2_before_s_1)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEADDR, .l2_before_s = true, .n = 1,
		.name = "v4mapped_reuseaddr_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseport_l2_after_s_1)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT, .n = 1,
		.name = "v4mapped_reuseport_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseport_l2_before_s_1)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT, .l2_before_s = true, .n = 1,
		.name = "v4mapped_reuseport_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_otheruid_l2_after_s_1)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT_OTHER_UID, .n = 1,
		.name = "v4mapped_otheruid_l2_after_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_otheruid_l2_before_s_1)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT_OTHER_UID, .l2_before_s = true, .n = 1,
		.name = "v4mapped_otheruid_l2_before_s_1",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseaddr_l2_after_s_10)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEADDR, .n = 10,
		.name = "v4mapped_reuseaddr_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseaddr_l2_before_s_10)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEADDR, .l2_before_s = true, .n = 10,
		.name = "v4mapped_reuseaddr_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseport_l2_after_s_10)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT, .n = 10,
		.name = "v4mapped_reuseport_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseport_l2_before_s_10)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT, .l2_before_s = true, .n = 10,
		.name = "v4mapped_reuseport_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_otheruid_l2_after_s_10)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT_OTHER_UID, .n = 10,
		.name = "v4mapped_otheruid_l2_after_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_otheruid_l2_before_s_10)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT_OTHER_UID, .l2_before_s = true, .n = 10,
		.name = "v4mapped_otheruid_l2_before_s_10",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseaddr_l2_after_s_20)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEADDR, .n = 20,
		.name = "v4mapped_reuseaddr_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseaddr_l2_before_s_20)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEADDR, .l2_before_s = true, .n = 20,
		.name = "v4mapped_reuseaddr_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseport_l2_after_s_20)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT, .n = 20,
		.name = "v4mapped_reuseport_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_reuseport_l2_before_s_20)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT, .l2_before_s = true, .n = 20,
		.name = "v4mapped_reuseport_l2_before_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_otheruid_l2_after_s_20)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT_OTHER_UID, .n = 20,
		.name = "v4mapped_otheruid_l2_after_s_20",
	},
};

FIXTURE_VARIANT_ADD(reuseport_connected, v4mapped_otheruid_l2_before_s_20)
{
	.p = {
		.family = AF_INET6, .v4mapped = true,
		.s_mode = S_REUSEPORT_OTHER_UID, .l2_before_s = true, .n = 20,
		.name = "v4mapped_otheruid_l2_before_s_20",
	},
};

static void set_lo_up(struct __test_metadata *_metadata)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	ASSERT_EQ(0, ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
}

static void set_hash4_from_env(struct __test_metadata *_metadata)
{
	const char *knob = getenv("UDP_HASH4");
	int fd;

	if (!knob)
		return;
	fd = open("/proc/sys/net/ipv4/udp_hash4", O_WRONLY);
	ASSERT_LE(0, fd) TH_LOG("UDP_HASH4 set, but no net.ipv4.udp_hash4");
	ASSERT_EQ((ssize_t)strlen(knob), write(fd, knob, strlen(knob)));
	close(fd);
}

/* Fill @ss with the IPv4 address @v4 or ::1, as @family sees it. */
static socklen_t make_addr(struct sockaddr_storage *ss, int family,
			   bool v4mapped, const char *v4, int port)
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
	snprintf(buf, sizeof(buf), "::ffff:%s", v4);
	inet_pton(AF_INET6, v4mapped ? buf : "::1", &sin6->sin6_addr);
	return sizeof(*sin6);
}

static int bound_socket(struct __test_metadata *_metadata,
			const struct server *srv, int family, bool reuseport)
{
	int one = 1, fd;

	fd = socket(family, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
				&one, sizeof(one)));
	if (reuseport)
		ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT,
					&one, sizeof(one)));
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&srv->addr, srv->len));
	return fd;
}

static void bind_group(struct __test_metadata *_metadata,
		       const struct server *srv, const struct params *p,
		       int *fds)
{
	int i;

	for (i = 0; i < p->n; i++)
		fds[i] = bound_socket(_metadata, srv, p->family, true);
}

/* The per-flow socket S, connected to the client. */
static int bind_s(struct __test_metadata *_metadata, const struct server *srv,
		  const struct params *p)
{
	bool other_uid = p->s_mode == S_REUSEPORT_OTHER_UID;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int fd;

	/* sk_uid is taken from the fsuid at socket() time. */
	if (other_uid)
		setfsuid(OTHER_UID);
	fd = bound_socket(_metadata, srv, p->family, p->s_mode != S_REUSEADDR);
	if (other_uid)
		ASSERT_EQ(OTHER_UID, setfsuid(0));	/* the old fsuid */

	peer_len = make_addr(&peer, p->family, p->v4mapped, "127.0.0.2",
			     CLIENT_PORT);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&peer, peer_len));
	return fd;
}

FIXTURE_SETUP(reuseport_connected)
{
	const struct params *p = &variant->p;
	struct sockaddr_storage client;
	int client_family, i;
	socklen_t client_len;

	for (i = 0; i < MAX_GROUP; i++) {
		self->l1[i] = -1;
		self->l2[i] = -1;
	}
	self->s = -1;
	self->c = -1;

	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	set_lo_up(_metadata);
	set_hash4_from_env(_metadata);

	self->srv.len = make_addr(&self->srv.addr, p->family, p->v4mapped,
				  "127.0.0.1", SERVER_PORT);
	client_family = p->v4mapped ? AF_INET : p->family;
	client_len = make_addr(&client, client_family, false, "127.0.0.2",
			       CLIENT_PORT);
	/* ADDR:PORT as the client sees it: 127.0.0.1 when S is v4-mapped. */
	self->dst_len = make_addr(&self->dst, client_family, false,
				  "127.0.0.1", SERVER_PORT);

	/* The old process: its listeners, then maybe its per-flow socket. */
	bind_group(_metadata, &self->srv, p, self->l1);
	if (p->l2_before_s) {
		bind_group(_metadata, &self->srv, p, self->l2);
		self->s = bind_s(_metadata, &self->srv, p);
	} else {
		self->s = bind_s(_metadata, &self->srv, p);
		bind_group(_metadata, &self->srv, p, self->l2);
	}
	/* The old process stops listening; its per-flow socket lives on. */
	for (i = 0; i < p->n; i++) {
		close(self->l1[i]);
		self->l1[i] = -1;
	}

	self->c = socket(client_family, SOCK_DGRAM, 0);
	ASSERT_LE(0, self->c);
	ASSERT_EQ(0, bind(self->c, (struct sockaddr *)&client, client_len));
}

FIXTURE_TEARDOWN(reuseport_connected)
{
	int i;

	for (i = 0; i < MAX_GROUP; i++) {
		if (self->l1[i] >= 0)
			close(self->l1[i]);
		if (self->l2[i] >= 0)
			close(self->l2[i]);
	}
	if (self->s >= 0)
		close(self->s);
	if (self->c >= 0)
		close(self->c);
}

TEST_F(reuseport_connected, deliver)
{
	const struct params *p = &variant->p;
	struct pollfd pfd[MAX_GROUP + 1];
	int got_s = 0, got_l2 = 0, lost = 0;
	int i, seq, timeout = 1000;
	char buf[64];

	for (i = 0; i < p->n; i++)
		pfd[i] = (struct pollfd){ .fd = self->l2[i], .events = POLLIN };
	pfd[p->n] = (struct pollfd){ .fd = self->s, .events = POLLIN };

	for (seq = 0; seq < NR_DGRAMS; seq++) {
		int len, ready;

		len = snprintf(buf, sizeof(buf), "dgram %d", seq);
		ASSERT_EQ(len, sendto(self->c, buf, len, 0,
				      (struct sockaddr *)&self->dst,
				      self->dst_len));

		ready = poll(pfd, p->n + 1, timeout);
		ASSERT_LE(0, ready);
		if (!ready) {
			/* Do not wait a second for each of many losses. */
			lost++;
			timeout = 50;
			continue;
		}
		for (i = 0; i <= p->n; i++) {
			char rbuf[64];

			if (!(pfd[i].revents & POLLIN))
				continue;
			ASSERT_EQ(len, recv(pfd[i].fd, rbuf, sizeof(rbuf),
					    MSG_DONTWAIT));
			ASSERT_EQ(0, memcmp(buf, rbuf, len));
			if (i == p->n)
				got_s++;
			else
				got_l2++;
			break;
		}
	}

	TH_LOG("landed %s: S=%d L2=%d lost=%d of %d", p->name,
	       got_s, got_l2, lost, NR_DGRAMS);
	EXPECT_EQ(0, got_l2);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(NR_DGRAMS, got_s);
}

TEST_HARNESS_MAIN
