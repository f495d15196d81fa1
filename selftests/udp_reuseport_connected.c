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
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

FIXTURE(reuseport_connected)
{
	int l1[MAX_GROUP];
	int l2[MAX_GROUP];
	int s;
	int c;
	struct sockaddr_storage server, client, dst;
	socklen_t server_len, client_len, dst_len;
	int client_family;
};

FIXTURE_VARIANT(reuseport_connected)
{
	int family;		/* family of the server-side sockets */
	bool v4mapped;		/* AF_INET6 sockets on ::ffff:127.0.0.x */
	enum s_mode s_mode;
	bool l2_before_s;
	int n;			/* listeners in L1 and in L2 */
	const char *name;
};

#define VARIANT(vname, fam, mapped, mode, l2first, size)			\
	FIXTURE_VARIANT_ADD(reuseport_connected, vname) {		\
		.family = fam, .v4mapped = mapped, .s_mode = mode,	\
		.l2_before_s = l2first, .n = size, .name = #vname,	\
	}

#define VARIANTS_FOR_SIZE(fam_name, fam, mapped, n)				\
	VARIANT(fam_name##_reuseaddr_l2_after_s_##n, fam, mapped,		\
		S_REUSEADDR, false, n);						\
	VARIANT(fam_name##_reuseaddr_l2_before_s_##n, fam, mapped,		\
		S_REUSEADDR, true, n);						\
	VARIANT(fam_name##_reuseport_l2_after_s_##n, fam, mapped,		\
		S_REUSEPORT, false, n);						\
	VARIANT(fam_name##_reuseport_l2_before_s_##n, fam, mapped,		\
		S_REUSEPORT, true, n);						\
	VARIANT(fam_name##_otheruid_l2_after_s_##n, fam, mapped,		\
		S_REUSEPORT_OTHER_UID, false, n);				\
	VARIANT(fam_name##_otheruid_l2_before_s_##n, fam, mapped,		\
		S_REUSEPORT_OTHER_UID, true, n)

#define VARIANTS_FOR_FAMILY(fam_name, fam, mapped)	\
	VARIANTS_FOR_SIZE(fam_name, fam, mapped, 1);	\
	VARIANTS_FOR_SIZE(fam_name, fam, mapped, 10);	\
	VARIANTS_FOR_SIZE(fam_name, fam, mapped, 20)

VARIANTS_FOR_FAMILY(v4, AF_INET, false);
VARIANTS_FOR_FAMILY(v6, AF_INET6, false);
VARIANTS_FOR_FAMILY(v4mapped, AF_INET6, true);

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

/* Fill @ss with the address @v4 (IPv4 dotted) or ::1, as @family sees it. */
static socklen_t make_addr(struct sockaddr_storage *ss, int family,
			   bool v4mapped, const char *v4, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, v4, &sin->sin_addr);
		return sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		char buf[64];

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		snprintf(buf, sizeof(buf), "::ffff:%s", v4);
		inet_pton(AF_INET6, v4mapped ? buf : "::1", &sin6->sin6_addr);
		return sizeof(*sin6);
	}
}

static int bound_socket(struct __test_metadata *_metadata,
			FIXTURE_DATA(reuseport_connected) *self, int family,
			bool reuseport)
{
	int one = 1, fd;

	fd = socket(family, SOCK_DGRAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	if (reuseport)
		ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT,
					&one, sizeof(one)));
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&self->server,
			  self->server_len));
	return fd;
}

static void bind_group(struct __test_metadata *_metadata,
		       FIXTURE_DATA(reuseport_connected) *self,
		       const FIXTURE_VARIANT(reuseport_connected) *variant,
		       int *fds)
{
	int i;

	for (i = 0; i < variant->n; i++)
		fds[i] = bound_socket(_metadata, self, variant->family, true);
}

static void bind_s(struct __test_metadata *_metadata,
		   FIXTURE_DATA(reuseport_connected) *self,
		   const FIXTURE_VARIANT(reuseport_connected) *variant)
{
	struct sockaddr_storage peer;
	socklen_t peer_len;

	/* sk_uid is taken from the fsuid at socket() time. */
	if (variant->s_mode == S_REUSEPORT_OTHER_UID)
		setfsuid(OTHER_UID);
	self->s = bound_socket(_metadata, self, variant->family,
			       variant->s_mode != S_REUSEADDR);
	if (variant->s_mode == S_REUSEPORT_OTHER_UID)
		ASSERT_EQ(OTHER_UID, setfsuid(0));	/* the old fsuid */

	peer_len = make_addr(&peer, variant->family, variant->v4mapped,
			     "127.0.0.2", CLIENT_PORT);
	ASSERT_EQ(0, connect(self->s, (struct sockaddr *)&peer, peer_len));
}

FIXTURE_SETUP(reuseport_connected)
{
	int i;

	for (i = 0; i < MAX_GROUP; i++)
		self->l1[i] = self->l2[i] = -1;
	self->s = self->c = -1;

	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	set_lo_up(_metadata);

	self->server_len = make_addr(&self->server, variant->family,
				     variant->v4mapped, "127.0.0.1",
				     SERVER_PORT);
	self->client_family = variant->v4mapped ? AF_INET : variant->family;
	self->client_len = make_addr(&self->client, self->client_family, false,
				     "127.0.0.2", CLIENT_PORT);
	/* ADDR:PORT as the client sees it: 127.0.0.1 when S is v4-mapped. */
	self->dst_len = make_addr(&self->dst, self->client_family, false,
				  "127.0.0.1", SERVER_PORT);

	/* The old process: its listeners, then maybe its per-flow socket. */
	bind_group(_metadata, self, variant, self->l1);
	if (variant->l2_before_s) {
		bind_group(_metadata, self, variant, self->l2);
		bind_s(_metadata, self, variant);
	} else {
		bind_s(_metadata, self, variant);
		bind_group(_metadata, self, variant, self->l2);
	}
	/* The old process stops listening; its per-flow socket lives on. */
	for (i = 0; i < variant->n; i++) {
		close(self->l1[i]);
		self->l1[i] = -1;
	}

	self->c = socket(self->client_family, SOCK_DGRAM, 0);
	ASSERT_LE(0, self->c);
	ASSERT_EQ(0, bind(self->c, (struct sockaddr *)&self->client,
			  self->client_len));
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
	struct pollfd pfd[MAX_GROUP + 1];
	int got_s = 0, got_l2 = 0, lost = 0;
	int i, seq, timeout = 1000;
	char buf[64];

	for (i = 0; i < variant->n; i++)
		pfd[i] = (struct pollfd){ .fd = self->l2[i], .events = POLLIN };
	pfd[variant->n] = (struct pollfd){ .fd = self->s, .events = POLLIN };

	for (seq = 0; seq < NR_DGRAMS; seq++) {
		int len, ready;

		len = snprintf(buf, sizeof(buf), "dgram %d", seq);
		ASSERT_EQ(len, sendto(self->c, buf, len, 0,
				      (struct sockaddr *)&self->dst,
				      self->dst_len));

		ready = poll(pfd, variant->n + 1, timeout);
		ASSERT_LE(0, ready);
		if (!ready) {
			/* Do not wait a second for each of many losses. */
			lost++;
			timeout = 50;
			continue;
		}
		for (i = 0; i <= variant->n; i++) {
			char rbuf[64];

			if (!(pfd[i].revents & POLLIN))
				continue;
			ASSERT_EQ(len, recv(pfd[i].fd, rbuf, sizeof(rbuf),
					    MSG_DONTWAIT));
			ASSERT_EQ(0, memcmp(buf, rbuf, len));
			if (i == variant->n)
				got_s++;
			else
				got_l2++;
			break;
		}
	}

	TH_LOG("landed %s: S=%d L2=%d lost=%d of %d", variant->name,
	       got_s, got_l2, lost, NR_DGRAMS);
	EXPECT_EQ(0, got_l2);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(NR_DGRAMS, got_s);
}

TEST_HARNESS_MAIN
