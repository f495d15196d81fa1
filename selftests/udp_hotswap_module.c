// SPDX-License-Identifier: GPL-2.0
/*
 * The udp_hotswap module (module/): load it from ./udp_hotswap.ko, check
 * its knobs, their defaults for new namespaces, its counters against
 * /proc/net/netstat, its reuseport inspector against a known scene, bad
 * input to the knobs file, and unload it. Skips when there is no
 * udp_hotswap.ko next to the test (the stock kernel run).
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
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define KO	"./udp_hotswap.ko"
#define DIR	"/proc/net/udp_hotswap/"
#define PORT	4433

static int load(const char *params)
{
	int fd = open(KO, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -ENOENT;
	ret = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int unload(void)
{
	return syscall(__NR_delete_module, "udp_hotswap", O_NONBLOCK) ? -errno : 0;
}

static int read_int(const char *path)
{
	char buf[32] = {};
	int fd = open(path, O_RDONLY), n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -1;
}

/* Write @s to @path; 0 or -errno. */
static int write_str(const char *path, const char *s, size_t len)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, len) != (ssize_t)len)
		ret = -errno;
	close(fd);
	return ret;
}

/* Value of "name value" in a file of such lines, or of a netstat field. */
static long field(const char *path, const char *name)
{
	char line[512];
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name)) &&
		    line[strlen(name)] == ' ')
			v = atol(line + strlen(name) + 1);
	fclose(f);
	return v;
}

static long netstat(const char *name)
{
	char hdr[4096], val[4096], *h, *v, *hs, *vs;
	long ret = -1;
	FILE *f = fopen("/proc/net/netstat", "r");

	while (f && fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		hdr[strcspn(hdr, "\n")] = 0;
		val[strcspn(val, "\n")] = 0;
		h = strtok_r(hdr, " ", &hs);
		v = strtok_r(val, " ", &vs);
		while (h && v) {
			if (!strcmp(h, name))
				ret = atol(v);
			h = strtok_r(NULL, " ", &hs);
			v = strtok_r(NULL, " ", &vs);
		}
	}
	if (f)
		fclose(f);
	return ret;
}

FIXTURE(mod)
{
	bool loaded;
};

FIXTURE_SETUP(mod)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd, err;

	if (access(KO, R_OK))
		SKIP(return, "no " KO " (the module is built for the patched kernel)");
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_EQ(0, ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	ASSERT_EQ(0, ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
	err = load("");
	ASSERT_EQ(0, err) TH_LOG("load: %s", strerror(-err));
	self->loaded = true;
}

FIXTURE_TEARDOWN(mod)
{
	if (self->loaded)
		EXPECT_EQ(0, unload());
}

static int udp_member(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (void *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_n(int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (n--)
		sendto(fd, "hello", 5, 0, (void *)&a, sizeof(a));
	close(fd);
}

static unsigned long ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

/* The inspector: a group of three listeners and a connected member, five
 * datagrams queued on one listener; every field of every line.
 */
TEST_F(mod, inspector)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(5000) };
	int fds[4], i, groups = 0, members = 0, seen[4] = {};
	char line[512];
	FILE *f;

	int tcp[2], tcp_groups = 0, tcp_members = 0;

	for (i = 0; i < 4; i++)
		ASSERT_LE(0, fds[i] = udp_member());
	/* And a TCP group of two listeners on the same port. */
	for (i = 0; i < 2; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons(PORT) };
		int one = 1;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		tcp[i] = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(tcp[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		ASSERT_EQ(0, bind(tcp[i], (void *)&a, sizeof(a)));
		ASSERT_EQ(0, listen(tcp[i], 4));
	}
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(0, connect(fds[3], (void *)&peer, sizeof(peer)));
	send_n(5);

	f = fopen(DIR "reuseport", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long ino;
		unsigned long long cookie;
		int st, uid, rqb, rqd, drops, h4, closed, n, c, hc, id, at, dev;
		unsigned int port;
		char proto[8], addr[64];

		if (!strncmp(line, "group tcp ", 10)) {
			ASSERT_EQ(5, sscanf(line, "group %7s %63[^:]:%u dev=%d num_socks=%d",
					    proto, addr, &port, &dev, &n));
			EXPECT_STREQ("127.0.0.1", addr);
			EXPECT_EQ(PORT, port);
			EXPECT_EQ(2, n);
			tcp_groups++;
			/* Its two member lines follow. */
			for (i = 0; i < 2 && fgets(line, sizeof(line), f); i++) {
				ASSERT_EQ(1, sscanf(line, "  sock ino=%lu", &ino));
				EXPECT_TRUE(ino == ino_of(tcp[0]) ||
					    ino == ino_of(tcp[1]));
				tcp_members++;
			}
			continue;
		}
		if (!strncmp(line, "group ", 6)) {
			ASSERT_EQ(9, sscanf(line, "group %7s %63[^:]:%u dev=%d num_socks=%d num_closed_socks=%d has_conns=%d prog_id=%d attach_type=%d",
					     proto, addr, &port, &dev, &n, &c, &hc, &id, &at))
				TH_LOG("%s", line);
			EXPECT_STREQ("udp", proto);
			EXPECT_STREQ("127.0.0.1", addr);
			EXPECT_EQ(PORT, port);
			EXPECT_EQ(0, dev);
			EXPECT_EQ(4, n);
			EXPECT_EQ(0, c);
			EXPECT_EQ(1, hc);
			EXPECT_EQ(0, id);
			EXPECT_EQ(-1, at);
			groups++;
			continue;
		}
		ASSERT_EQ(9, sscanf(line, "  sock ino=%lu cookie=%llu state=%d uid=%d rq_bytes=%d rq_dgrams=%d drops=%d hash4=%d closed=%d",
				    &ino, &cookie, &st, &uid, &rqb, &rqd, &drops, &h4, &closed))
			TH_LOG("%s", line);
		members++;
		EXPECT_EQ(0, uid);
		EXPECT_EQ(0, drops);
		EXPECT_EQ(0, closed);
		for (i = 0; i < 4; i++) {
			if (ino != ino_of(fds[i]))
				continue;
			seen[i]++;
			/* The connected member is ESTABLISHED and in hash4. */
			EXPECT_EQ(i == 3 ? 1 : 7, st);
			EXPECT_EQ(i == 3, h4);
			if (rqd)
				EXPECT_LT(0, rqb);
			if (i == 3)
				EXPECT_EQ(0, rqd);
		}
	}
	fclose(f);
	EXPECT_EQ(1, tcp_groups);
	EXPECT_EQ(2, tcp_members);
	EXPECT_EQ(1, groups);
	EXPECT_EQ(4, members);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(1, seen[i]) TH_LOG("socket %d", i);
}

/* The knobs: each write sets the sysctl; bad input changes nothing. */
TEST_F(mod, knobs)
{
	static const char *const bad[] = {
		"udp_hash4=2", "udp_hash4=-1", "udp_hash4=x", "udp_hash4",
		"=1", "nope=1", "udp_migrate=10",
	};
	char big[8192];
	unsigned int i;

	ASSERT_EQ(0, write_str(DIR "knobs", "udp_hash4=0", 11));
	EXPECT_EQ(0, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(0, field(DIR "knobs", "udp_hash4"));
	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=1\n", 14));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_migrate"));
	ASSERT_EQ(0, write_str(DIR "knobs", "udp_hash4=1", 11));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_hash4"));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, write_str(DIR "knobs", bad[i], strlen(bad[i])))
			TH_LOG("bad input %u", i);
	memset(big, 'a', sizeof(big));
	EXPECT_GT(0, write_str(DIR "knobs", big, sizeof(big)));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_migrate"));
}

/* The counters move as /proc/net/netstat does, over a migration. */
TEST_F(mod, counters)
{
	long m0, f0, n0;
	int l1, l2;

	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=1", 13));
	m0 = field(DIR "counters", "UdpMigrate");
	f0 = field(DIR "counters", "UdpMigrateFailure");
	n0 = netstat("UdpMigrate");
	EXPECT_EQ(n0, m0);
	l1 = udp_member();
	send_n(20);
	l2 = udp_member();
	ASSERT_LE(0, l2);
	close(l1);
	EXPECT_EQ(20, field(DIR "counters", "UdpMigrate") - m0);
	EXPECT_EQ(0, field(DIR "counters", "UdpMigrateFailure") - f0);
	EXPECT_EQ(netstat("UdpMigrate"), field(DIR "counters", "UdpMigrate"));
	EXPECT_EQ(netstat("UdpMigrateFailure"),
		  field(DIR "counters", "UdpMigrateFailure"));
}

/* Module parameters: defaults of namespaces made after load only. */
TEST_F(mod, defaults)
{
	int status, h, m;
	pid_t pid;

	h = read_int("/proc/sys/net/ipv4/udp_hash4");
	m = read_int("/proc/sys/net/ipv4/udp_migrate");
	ASSERT_EQ(0, unload());
	self->loaded = false;
	EXPECT_GT(0, load("hash4_default=3"));
	ASSERT_EQ(0, load("hash4_default=0 migrate_default=1"));
	self->loaded = true;
	EXPECT_EQ(h, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(m, read_int("/proc/sys/net/ipv4/udp_migrate"));
	pid = fork();
	if (!pid) {
		if (unshare(CLONE_NEWNET))
			_exit(2);
		_exit(read_int("/proc/sys/net/ipv4/udp_hash4") == 0 &&
		      read_int("/proc/sys/net/ipv4/udp_migrate") == 1 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("new netns: not 0/1");

	ASSERT_EQ(0, unload());
	self->loaded = false;
	pid = fork();
	if (!pid) {
		if (unshare(CLONE_NEWNET))
			_exit(2);
		_exit(read_int("/proc/sys/net/ipv4/udp_hash4") == 1 &&
		      read_int("/proc/sys/net/ipv4/udp_migrate") == 0 &&
		      access(DIR "knobs", F_OK) ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("after unload: not 1/0");
	ASSERT_EQ(0, load(""));
	self->loaded = true;
}

TEST_HARNESS_MAIN
