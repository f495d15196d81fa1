// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures in the calls of the udp-hotswap series, as
 * syzkaller injects them: with fail-nth (/proc/thread-self/fail-nth) and
 * failslab, the 1st, 2nd, ... slab allocation of one call fails, until the
 * call makes fewer allocations than that. After each failure the socket
 * must be in a state that the documentation names, and usable:
 *   bind_connect     - UDP_BIND_CONNECT fails with ENOMEM or ENOBUFS and
 *                      leaves the socket unbound and unconnected (the
 *                      4-tuple is free: the same call then succeeds), or
 *                      succeeds; either way a datagram of the flow lands.
 *   bind_then_connect - the same for bind() and connect() in a row: a
 *                      failed bind() leaves the socket unbound, a failed
 *                      connect() leaves it bound and unconnected.
 *   close_migrate    - close() of a reuseport member with 10 datagrams
 *                      queued, udp_migrate=1: every datagram reaches the
 *                      other member or is counted in UdpMigrateFailure.
 *   sysctl           - a write of net.ipv4.udp_hash4 or udp_migrate
 *                      fails and leaves the old value, or sets the new one.
 *   module_files     - the same for writes to the module's knobs and hash4
 *                      files, and reads of its four files either fail or
 *                      give what a read without a failure gives.
 * kmemleak, in make check's kmemleak run, sees what a failure leaks; vm-run
 * fails the run on any splat. Slab allocations are failed; with
 * UDP_FAULT_PAGES=1 in the environment page allocations too
 * (fail_page_alloc; make stress): an injected page failure returns before
 * the allocator's slow path, so it prints no warning for the splat check.
 * Each test runs in its own netns; variants: IPv4, IPv6, v4-mapped. Skips
 * without fault injection (CONFIG_FAULT_INJECTION, FAILSLAB,
 * FAULT_INJECTION_DEBUG_FS), or without the feature a test needs (stock).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "udp_bind_connect_uapi.h"
#include "udp_hotswap_util.h"

#define PORT		4433
#define PEER_PORT	40000
#define MAX_POINTS	500	/* more fault points than any call has */
#define FAILSLAB	"/sys/kernel/debug/failslab/"
#define FAILPAGE	"/sys/kernel/debug/fail_page_alloc/"
#define KO		"./udp_hotswap.ko"

FIXTURE(fault)
{
	int family;	/* of the sockets under test */
	bool mapped;
	int nth;	/* /proc/thread-self/fail-nth */
	bool loaded;	/* the module was loaded by this test */
};

FIXTURE_VARIANT(fault)
{
	int family;
	bool mapped;
};

FIXTURE_VARIANT_ADD(fault, v4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(fault, v6) { .family = AF_INET6 };
FIXTURE_VARIANT_ADD(fault, v4mapped) { .family = AF_INET6, .mapped = true };

static int read_int(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -1;
}

/* The whole of @path into @buf; its length, or -errno. */
static long read_all(int fd, char *buf, size_t size)
{
	long total = 0, n;

	while ((n = read(fd, buf + total, size - 1 - total)) > 0)
		total += n;
	if (n < 0)
		return -errno;
	buf[total] = '\0';
	return total;
}

/* The local address of the sockets under test, or the peer's (IPv4 for
 * the v4-mapped variant: the datagrams are IPv4).
 */
static socklen_t addr(const FIXTURE_DATA(fault) *self, bool peer_side,
		      int port, void *ss)
{
	enum variant v = self->family == AF_INET ? V4 :
			 !self->mapped ? V6 : peer_side ? V4 : MAPPED;

	return loop_addr(v, port, ss);
}

static int sock(const FIXTURE_DATA(fault) *self, bool reuseport)
{
	int one = 1, fd = socket(self->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 1, 0 };

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* The peer: bound to PEER_PORT, in the datagrams' family. */
static int peer(const FIXTURE_DATA(fault) *self)
{
	int fd = socket(self->family == AF_INET || self->mapped ? AF_INET : AF_INET6,
			SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t len = addr(self, true, PEER_PORT, &ss);

	if (fd < 0 || bind(fd, (void *)&ss, len))
		return -1;
	return fd;
}

static int send_n(const FIXTURE_DATA(fault) *self, int p, int n)
{
	struct sockaddr_storage ss;
	socklen_t len = addr(self, true, PORT, &ss);
	int sent = 0;

	while (n--)
		sent += sendto(p, "f", 1, 0, (void *)&ss, len) == 1;
	return sent;
}

static int port_of(int fd, bool remote)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if ((remote ? getpeername : getsockname)(fd, (void *)&ss, &len))
		return -errno;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Arm fail-nth: the @n-th fault-injectable allocation of this thread
 * fails. The descriptor is open already, so nothing allocates between
 * this write and the call under test.
 */
static void arm(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self, int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	ASSERT_EQ(len, pwrite(self->nth, buf, len, 0));
}

/* Disarm it; whether the fault was injected. */
static bool disarm(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self)
{
	char buf[16] = "";
	bool injected;

	ASSERT_LT(0, pread(self->nth, buf, sizeof(buf) - 1, 0));
	injected = atoi(buf) == 0;
	ASSERT_EQ(1, pwrite(self->nth, "0", 1, 0));
	return injected;
}

static bool is_alloc_error(int err)
{
	return err == ENOMEM || err == ENOBUFS;
}

/* The same for connect() and UDP_BIND_CONNECT, which route the socket:
 * IPv6's route lookup turns a failed allocation of its per-CPU route copy
 * into the null route, so an IPv6 connect() fails with ENETUNREACH then
 * (stock behaviour, which the option shares).
 */
static bool is_route_alloc_error(const FIXTURE_DATA(fault) *self, int err)
{
	return is_alloc_error(err) ||
	       (self->family == AF_INET6 && !self->mapped && err == ENETUNREACH);
}

/* A netns of its own with lo up: the calls under test then also make the
 * allocations of a first use (the routes that the lookups cache).
 */
static int fresh_netns(void)
{
	if (unshare(CLONE_NEWNET))
		return -errno;
	return lo_up() ? -errno : 0;
}

FIXTURE_SETUP(fault)
{

	self->family = variant->family;
	self->mapped = variant->mapped;
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (self->nth < 0 || access(FAILSLAB "ignore-gfp-wait", W_OK))
		SKIP(return, "no fault injection (CONFIG_FAULT_INJECTION, FAILSLAB, FAULT_INJECTION_DEBUG_FS)");
	/* Fail GFP_KERNEL allocations too, and quietly. */
	ASSERT_EQ(0, write_str(FAILSLAB "ignore-gfp-wait", "N"));
	ASSERT_EQ(0, write_str(FAILSLAB "verbose", "0"));
	if (getenv("UDP_FAULT_PAGES") && !strcmp(getenv("UDP_FAULT_PAGES"), "1")) {
		/* The n-th fault point of the call is then a slab or a page
		 * allocation, whichever comes n-th.
		 */
		ASSERT_EQ(0, write_str(FAILPAGE "ignore-gfp-wait", "N"))
			TH_LOG("UDP_FAULT_PAGES=1, but no fail_page_alloc (CONFIG_FAIL_PAGE_ALLOC)");
		ASSERT_EQ(0, write_str(FAILPAGE "ignore-gfp-highmem", "N"));
		ASSERT_EQ(0, write_str(FAILPAGE "min-order", "0"));
		ASSERT_EQ(0, write_str(FAILPAGE "verbose", "0"));
	}
	ASSERT_EQ(0, fresh_netns());
}

FIXTURE_TEARDOWN(fault)
{
	if (self->nth >= 0)
		close(self->nth);
	if (self->loaded)
		syscall(__NR_delete_module, "udp_hotswap", O_NONBLOCK);
}

/* After UDP_BIND_CONNECT, failed or not: the socket is usable and gets
 * the flow's datagram.
 */
static void check_flow(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fault) *self, int fd, int p, int n)
{
	char buf[8];

	ASSERT_EQ(PORT, port_of(fd, false)) TH_LOG("fault %d", n);
	ASSERT_EQ(PEER_PORT, port_of(fd, true)) TH_LOG("fault %d", n);
	ASSERT_EQ(1, send_n(self, p, 1));
	ASSERT_EQ(1, recv(fd, buf, sizeof(buf), 0)) TH_LOG("fault %d: no datagram", n);
}

TEST_F(fault, bind_connect)
{
	struct udp_bind_connect bc;
	int n, fd, p, ret, failed = 0;
	bool injected = true;

	addr(self, false, PORT, &bc.local);
	addr(self, false, PEER_PORT, &bc.remote);
	fd = sock(self, false);
	ret = setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc));
	close(fd);
	if (ret && errno == ENOPROTOOPT)
		SKIP(return, "no UDP_BIND_CONNECT (ENOPROTOOPT)");
	for (n = 1; n <= MAX_POINTS && injected; n++) {
		ASSERT_EQ(0, fresh_netns());
		p = peer(self);
		ASSERT_LE(0, p);
		fd = sock(self, false);
		ASSERT_LE(0, fd);
		arm(_metadata, self, n);
		ret = setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)) ? errno : 0;
		injected = disarm(_metadata, self);
		if (ret) {
			failed++;
			ASSERT_TRUE(injected) TH_LOG("fault %d: error %d, none injected", n, ret);
			ASSERT_TRUE(is_route_alloc_error(self, ret)) TH_LOG("fault %d: errno %d", n, ret);
			/* As it was: unbound, unconnected; the tuple free. */
			ASSERT_EQ(0, port_of(fd, false)) TH_LOG("fault %d", n);
			ASSERT_EQ(-ENOTCONN, port_of(fd, true)) TH_LOG("fault %d", n);
			ASSERT_EQ(0, setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)))
				TH_LOG("fault %d: the retry: %s", n, strerror(errno));
		}
		check_flow(_metadata, self, fd, p, n);
		close(fd);
		close(p);
	}
	ASSERT_FALSE(injected) TH_LOG("more than %d fault points", MAX_POINTS);
	TH_LOG("%d allocations failed in turn, %d of them failed the call", n - 2, failed);
	/* A call that allocates nothing tests nothing. */
	ASSERT_LT(0, n - 2);
}

TEST_F(fault, bind_then_connect)
{
	int n, fd, p, ret_bind, ret_conn, failed = 0;
	struct sockaddr_storage local, remote;
	socklen_t llen, rlen;
	bool injected = true;

	llen = addr(self, false, PORT, &local);
	rlen = addr(self, false, PEER_PORT, &remote);
	for (n = 1; n <= MAX_POINTS && injected; n++) {
		ASSERT_EQ(0, fresh_netns());
		p = peer(self);
		ASSERT_LE(0, p);
		fd = sock(self, false);
		ASSERT_LE(0, fd);
		arm(_metadata, self, n);
		ret_bind = bind(fd, (void *)&local, llen) ? errno : 0;
		ret_conn = ret_bind ? -1 : connect(fd, (void *)&remote, rlen) ? errno : 0;
		injected = disarm(_metadata, self);
		if (ret_bind) {
			failed++;
			ASSERT_TRUE(is_alloc_error(ret_bind)) TH_LOG("fault %d: bind: %d", n, ret_bind);
			ASSERT_EQ(0, port_of(fd, false));
			ASSERT_EQ(0, bind(fd, (void *)&local, llen));
		}
		if (ret_conn) {
			if (ret_conn > 0) {
				failed++;
				ASSERT_TRUE(is_route_alloc_error(self, ret_conn))
					TH_LOG("fault %d: connect: %d", n, ret_conn);
			}
			ASSERT_EQ(PORT, port_of(fd, false)) TH_LOG("fault %d", n);
			ASSERT_EQ(-ENOTCONN, port_of(fd, true)) TH_LOG("fault %d", n);
			ASSERT_EQ(0, connect(fd, (void *)&remote, rlen));
		}
		check_flow(_metadata, self, fd, p, n);
		close(fd);
		close(p);
	}
	ASSERT_FALSE(injected) TH_LOG("more than %d fault points", MAX_POINTS);
	TH_LOG("%d allocations failed in turn, %d of them failed a call", n - 2, failed);
	ASSERT_LT(0, n - 2);
}

static long netstat(const char *name)
{
	return mib("/proc/net/netstat", "TcpExt:", name);
}

TEST_F(fault, close_migrate)
{
	struct sockaddr_storage ss;
	socklen_t len = addr(self, false, PORT, &ss);
	int n, l1, l2, p, got, moved = 0, dropped = 0;
	long fail0, fail;
	bool injected = true;
	char buf[8];

	if (access("/proc/sys/net/ipv4/udp_migrate", F_OK))
		SKIP(return, "no net.ipv4.udp_migrate");
	ASSERT_EQ(0, write_str("/proc/sys/net/ipv4/udp_migrate", "1"));
	p = peer(self);
	ASSERT_LE(0, p);
	for (n = 1; n <= MAX_POINTS && injected; n++) {
		/* L1 alone gets the 10, then L2 joins. */
		l1 = sock(self, true);
		l2 = sock(self, true);
		ASSERT_EQ(0, bind(l1, (void *)&ss, len));
		ASSERT_EQ(10, send_n(self, p, 10));
		ASSERT_EQ(0, bind(l2, (void *)&ss, len));
		fail0 = netstat("UdpMigrateFailure");
		arm(_metadata, self, n);
		close(l1);
		injected = disarm(_metadata, self);
		/* Every one of the 10 reaches L2 or is counted. */
		for (got = 0; got < 10; got++) {
			fail = netstat("UdpMigrateFailure");
			if (got + fail - fail0 >= 10)
				break;
			if (recv(l2, buf, sizeof(buf), 0) != 1)
				break;
		}
		fail = netstat("UdpMigrateFailure");
		ASSERT_EQ(10, got + fail - fail0)
			TH_LOG("fault %d: L2 read %d, UdpMigrateFailure +%ld", n, got, fail - fail0);
		moved += got;
		dropped += fail - fail0;
		/* L2 is a live member: it gets the next one too. */
		ASSERT_EQ(1, send_n(self, p, 1));
		ASSERT_EQ(1, recv(l2, buf, sizeof(buf), 0)) TH_LOG("fault %d", n);
		close(l2);
	}
	ASSERT_FALSE(injected) TH_LOG("more than %d fault points", MAX_POINTS);
	TH_LOG("%d allocations failed in turn: %d datagrams moved, %d counted as dropped",
	       n - 2, moved, dropped);
	ASSERT_LT(0, n - 2);
	close(p);
}

/* A write of @val to @path under each fault in turn: it fails with an
 * allocation error and the value stays @old, or it succeeds and the value
 * reads @new (through @sysctl). How many faults were injected.
 */
static int write_under_faults(struct __test_metadata *_metadata,
			      FIXTURE_DATA(fault) *self, const char *path,
			      const char *val, const char *sysctl, int old, int new)
{
	bool injected = true;
	int n, fd, ret;

	for (n = 1; n <= MAX_POINTS && injected; n++) {
		char reset[2] = { '0' + old, '\0' };

		EXPECT_EQ(0, write_str(sysctl, reset));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		EXPECT_LE(0, fd);
		if (fd < 0)
			return -1;
		arm(_metadata, self, n);
		ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : errno;
		injected = disarm(_metadata, self);
		close(fd);
		if (ret) {
			EXPECT_TRUE(is_alloc_error(ret)) TH_LOG("%s, fault %d: %d", path, n, ret);
			EXPECT_EQ(old, read_int(sysctl)) TH_LOG("%s, fault %d", path, n);
		} else {
			EXPECT_EQ(new, read_int(sysctl)) TH_LOG("%s, fault %d", path, n);
		}
	}
	EXPECT_FALSE(injected);
	return n - 2;
}

TEST_F(fault, sysctl)
{
	static const char *const knobs[] = {
		"/proc/sys/net/ipv4/udp_hash4", "/proc/sys/net/ipv4/udp_migrate",
	};
	int i, points;

	if (access(knobs[0], F_OK) || access(knobs[1], F_OK))
		SKIP(return, "no net.ipv4.udp_hash4 or udp_migrate");
	for (i = 0; i < 2; i++) {
		points = write_under_faults(_metadata, self, knobs[i], "1\n", knobs[i], 0, 1);
		TH_LOG("%s: %d allocations failed in turn", knobs[i], points);
		EXPECT_LT(0, points);
	}
}

TEST_F(fault, module_files)
{
	static const char *const files[] = {
		"/proc/net/udp_hotswap/knobs", "/proc/net/udp_hotswap/counters",
		"/proc/net/udp_hotswap/reuseport", "/proc/net/udp_hotswap/hash4",
	};
	static char want[8192], got[8192];
	struct udp_bind_connect bc;
	int i, n, fd, points, one, group[2];
	bool injected;
	long ret;

	if (access("/sys/module/udp_hotswap", F_OK)) {
		fd = open(KO, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			SKIP(return, "no " KO " (the stock run)");
		ASSERT_EQ(0, syscall(__NR_finit_module, fd, "", 0));
		close(fd);
		self->loaded = true;
	}
	points = write_under_faults(_metadata, self, files[0], "udp_hash4=1\n",
				    "/proc/sys/net/ipv4/udp_hash4", 0, 1);
	TH_LOG("knobs: %d allocations failed in turn", points);
	EXPECT_LT(0, points);
	/* Something in each file: a connected socket and a group. */
	one = socket(self->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	addr(self, false, PORT, &bc.local);
	addr(self, false, PEER_PORT, &bc.remote);
	ASSERT_EQ(0, setsockopt(one, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)));
	for (i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t len = addr(self, false, PORT + 1, &ss);

		group[i] = sock(self, true);
		ASSERT_EQ(0, bind(group[i], (void *)&ss, len));
	}
	/* Touched before any fault: with UDP_FAULT_PAGES=1 a first write to
	 * a page of @got would fault it in under the injection, and the
	 * read fail with EFAULT in its copy to user space, not in the file.
	 */
	memset(got, 1, sizeof(got));
	for (i = 0; i < 4; i++) {
		fd = open(files[i], O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_LT(0, read_all(fd, want, sizeof(want)));
		close(fd);
		injected = true;
		for (n = 1; n <= MAX_POINTS && injected; n++) {
			fd = open(files[i], O_RDONLY | O_CLOEXEC);
			ASSERT_LE(0, fd);
			arm(_metadata, self, n);
			ret = read_all(fd, got, sizeof(got));
			injected = disarm(_metadata, self);
			close(fd);
			if (ret < 0) {
				EXPECT_TRUE(is_alloc_error(-ret))
					TH_LOG("%s, fault %d: %ld", files[i], n, ret);
			} else {
				EXPECT_STREQ(want, got) TH_LOG("%s, fault %d", files[i], n);
			}
		}
		EXPECT_FALSE(injected);
		TH_LOG("%s: %d allocations failed in turn", files[i], n - 2);
		EXPECT_LT(0, n - 2);
	}
	close(one);
	close(group[0]);
	close(group[1]);
}

TEST_HARNESS_MAIN
