// SPDX-License-Identifier: GPL-2.0
/*
 * The udp_hotswap module (module/): load it from ./udp_hotswap.ko, build a
 * known scene and check every field of its reuseport and hash4 files, its
 * knobs and their defaults for new namespaces, its counters against
 * /proc/net/netstat over a migration, bad input to its writable files,
 * the stress of reading it while other threads bind, connect, close and
 * migrate, and unload it. Skips when there is no udp_hotswap.ko next to
 * the test (the stock kernel run).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "udp_bind_connect_uapi.h"
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

#define KO	"./udp_hotswap.ko"
#define DIR	"/proc/net/udp_hotswap/"
#define PARAMS	"/sys/module/udp_hotswap/parameters/"
#define PORT	4433
#define PEER	40000	/* peers of connected sockets are PEER + n */

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

/* Value of "name value" in a file of such lines. */
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

/* A TcpExt field of /proc/net/netstat, as nstat shows it. */
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

static void lo_up(struct __test_metadata *_metadata)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_EQ(0, ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	ASSERT_EQ(0, ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
}

/* Each test: its own netns with lo up, and the module loaded. */
static void enter(struct __test_metadata *_metadata, bool *loaded)
{
	int err;

	lo_up(_metadata);
	err = load("");
	/* A case killed by its timeout never ran its teardown: unload its
	 * module rather than fail every case after it.
	 */
	if (err == -EEXIST) {
		TH_LOG("udp_hotswap left loaded by an earlier case: unloading it");
		ASSERT_EQ(0, unload());
		err = load("");
	}
	ASSERT_EQ(0, err) TH_LOG("load: %s", strerror(-err));
	*loaded = true;
}

/* The knobs and their defaults: no sockets, no address family. */
FIXTURE(mod)
{
	bool loaded;
};

FIXTURE_SETUP(mod)
{
	if (access(KO, R_OK))
		SKIP(return, "no " KO " (the module is built for the patched kernel)");
	enter(_metadata, &self->loaded);
}

FIXTURE_TEARDOWN(mod)
{
	if (self->loaded)
		EXPECT_EQ(0, unload());
}

/* The knobs: each write sets the sysctl; bad input changes nothing. */
TEST_F(mod, knobs)
{
	static const char *const bad[] = {
		"udp_hash4=2", "udp_hash4=-1", "udp_hash4=x", "udp_hash4",
		"=1", "nope=1", "udp_migrate=10", "udp_migrate=", "",
	};
	char big[8192];
	unsigned int i;

	ASSERT_EQ(0, write_str(DIR "knobs", "udp_hash4=0", 11));
	EXPECT_EQ(0, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(0, field(DIR "knobs", "udp_hash4"));
	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=1\n", 14));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_migrate"));
	EXPECT_EQ(1, field(DIR "knobs", "udp_migrate"));
	ASSERT_EQ(0, write_str(DIR "knobs", "udp_hash4=1", 11));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(1, field(DIR "knobs", "udp_hash4"));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *in = bad[i];

		EXPECT_EQ(-EINVAL, write_str(DIR "knobs", in, strlen(in)))
			TH_LOG("bad input \"%s\"", in);
	}
	memset(big, 'a', sizeof(big));
	EXPECT_GT(0, write_str(DIR "knobs", big, sizeof(big)));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(1, read_int("/proc/sys/net/ipv4/udp_migrate"));
	/* And back through the module: 0, as the kernel's default. */
	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=0", 13));
	EXPECT_EQ(0, read_int("/proc/sys/net/ipv4/udp_migrate"));
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
	EXPECT_EQ(-ERANGE, load("hash4_default=3"));
	EXPECT_GT(0, load("migrate_default=x"));
	EXPECT_EQ(-EINVAL, load("defaulted_namespaces=1"));
	ASSERT_EQ(0, load("hash4_default=0 migrate_default=1"));
	self->loaded = true;
	EXPECT_EQ(h, read_int("/proc/sys/net/ipv4/udp_hash4"));
	EXPECT_EQ(m, read_int("/proc/sys/net/ipv4/udp_migrate"));
	/* Namespaces that existed at load are not counted. The count is
	 * global: exact values assume that nothing else on the machine (the
	 * test VM) makes namespaces meanwhile.
	 */
	EXPECT_EQ(0, read_int(PARAMS "defaulted_namespaces"));
	/* 0444: kernfs refuses the open for writing, also to root. */
	EXPECT_EQ(-EACCES, write_str(PARAMS "defaulted_namespaces", "5", 1));
	pid = fork();
	if (!pid) {
		if (unshare(CLONE_NEWNET))
			_exit(2);
		_exit(read_int("/proc/sys/net/ipv4/udp_hash4") == 0 &&
		      read_int("/proc/sys/net/ipv4/udp_migrate") == 1 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("new netns: not 0/1");
	EXPECT_EQ(1, read_int(PARAMS "defaulted_namespaces"));
	/* A default set through sysfs after load applies to the next one. */
	ASSERT_EQ(0, write_str(PARAMS "hash4_default", "1", 1));
	pid = fork();
	if (!pid) {
		if (unshare(CLONE_NEWNET))
			_exit(2);
		_exit(read_int("/proc/sys/net/ipv4/udp_hash4") == 1 &&
		      read_int("/proc/sys/net/ipv4/udp_migrate") == 1 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("new netns: not 1/1");
	EXPECT_EQ(2, read_int(PARAMS "defaulted_namespaces"));

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
	/* Without defaults, a new namespace is not counted. */
	pid = fork();
	if (!pid)
		_exit(unshare(CLONE_NEWNET) ? 2 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, read_int(PARAMS "defaulted_namespaces"));
}

/* Scenes with sockets, in each address family. */
FIXTURE(scene)
{
	bool loaded;
};

FIXTURE_VARIANT(scene)
{
	int family;		/* of the server sockets */
	const char *addr;	/* their address */
	const char *shown;	/* and how the module prints it */
	const char *peer;	/* the peers' address, in their family */
};

FIXTURE_VARIANT_ADD(scene, ipv4)
{
	.family = AF_INET, .addr = "127.0.0.1", .shown = "127.0.0.1",
	.peer = "127.0.0.1",
};

FIXTURE_VARIANT_ADD(scene, ipv6)
{
	.family = AF_INET6, .addr = "::1", .shown = "[::1]", .peer = "::1",
};

FIXTURE_VARIANT_ADD(scene, v4mapped)
{
	.family = AF_INET6, .addr = "::ffff:127.0.0.1",
	.shown = "[::ffff:127.0.0.1]", .peer = "127.0.0.1",
};

FIXTURE_SETUP(scene)
{
	if (access(KO, R_OK))
		SKIP(return, "no " KO " (the module is built for the patched kernel)");
	enter(_metadata, &self->loaded);
}

FIXTURE_TEARDOWN(scene)
{
	if (self->loaded)
		EXPECT_EQ(0, unload());
}

/* @ip:@port in @family (v4-mapped when @family is AF_INET6 and @ip is v4). */
static socklen_t mkaddr(int family, const char *ip, int port,
			struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, ip, &a->sin_addr);
		return sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)ss;
		char m[64];

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (!strchr(ip, ':')) {
			snprintf(m, sizeof(m), "::ffff:%s", ip);
			ip = m;
		}
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		return sizeof(*a);
	}
}

static int peer_family(const FIXTURE_VARIANT(scene) *v)
{
	return strchr(v->peer, ':') ? AF_INET6 : AF_INET;
}

/* A SO_REUSEPORT UDP socket on the scene's address and @port. */
static int member_port(const FIXTURE_VARIANT(scene) *v, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(v->family, v->addr, port, &ss);
	int one = 1, fd = socket(v->family, SOCK_DGRAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int member(const FIXTURE_VARIANT(scene) *v)
{
	return member_port(v, PORT);
}

/* connect() @fd to the peer at port @pport. */
static int connect_peer(const FIXTURE_VARIANT(scene) *v, int fd, int pport)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(v->family, v->peer, pport, &ss);

	return connect(fd, (void *)&ss, len);
}

/* A socket with the 4-tuple PORT to peer port @pport from
 * UDP_BIND_CONNECT: not in the group, but on its port.
 */
static int bind_connect(const FIXTURE_VARIANT(scene) *v, int pport)
{
	struct udp_bind_connect bc;
	int one = 1, fd = socket(v->family, SOCK_DGRAM, 0);

	mkaddr(v->family, v->addr, PORT, (void *)&bc.local);
	mkaddr(v->family, v->peer, pport, (void *)&bc.remote);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A peer socket, bound to @pport when not 0. */
static int peer(const FIXTURE_VARIANT(scene) *v, int pport)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(peer_family(v), v->peer, pport, &ss);
	int one = 1, fd = socket(peer_family(v), SOCK_DGRAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (pport && bind(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send @n datagrams from @fd to the scene's PORT. */
static int send_n(const FIXTURE_VARIANT(scene) *v, int fd, int n)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(peer_family(v), v->peer, PORT, &ss);
	int sent = 0;

	while (n--)
		sent += sendto(fd, "hello", 5, 0, (void *)&ss, len) == 5;
	return sent;
}

static unsigned long ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

static unsigned long long cookie_of(int fd)
{
	unsigned long long c = 0;
	socklen_t len = sizeof(c);

	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len);
	return c;
}

/* sk_rmem_alloc and sk_drops, as SO_MEMINFO reports them. */
static void meminfo(int fd, int *rmem, int *drops)
{
	__u32 mi[SK_MEMINFO_VARS] = {};
	socklen_t len = sizeof(mi);

	getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len);
	*rmem = mi[SK_MEMINFO_RMEM_ALLOC];
	*drops = mi[SK_MEMINFO_DROPS];
}

/* One parsed line of the reuseport file. */
struct rec {
	bool group;
	char proto[8], addr[100], state[16], attach[24];
	unsigned int port;
	int dev, socks, closed_socks, has_conns, prog_id;
	unsigned long ino;
	unsigned long long cookie;
	int uid, rq_bytes, rq_dgrams, drops, hash4, closed;
};

/* Parse @line; false when it is not a well-formed group or member line. */
static bool parse(const char *line, struct rec *r)
{
	char addrport[100], *colon;

	memset(r, 0, sizeof(*r));
	if (!strncmp(line, "group ", 6)) {
		r->group = true;
		if (sscanf(line, "group %7s %99s dev=%d num_socks=%d num_closed_socks=%d has_conns=%d prog_id=%d attach_type=%23s",
			   r->proto, addrport, &r->dev, &r->socks,
			   &r->closed_socks, &r->has_conns, &r->prog_id,
			   r->attach) != 8)
			return false;
		colon = strrchr(addrport, ':');
		if (!colon)
			return false;
		*colon = 0;
		snprintf(r->addr, sizeof(r->addr), "%s", addrport);
		r->port = atoi(colon + 1);
		return (!strcmp(r->proto, "udp") || !strcmp(r->proto, "tcp")) &&
		       r->socks >= 0 && r->closed_socks >= 0;
	}
	return sscanf(line, "  sock ino=%lu cookie=%llu state=%15s uid=%d rq_bytes=%d rq_dgrams=%d drops=%d hash4=%d closed=%d",
		      &r->ino, &r->cookie, r->state, &r->uid, &r->rq_bytes,
		      &r->rq_dgrams, &r->drops, &r->hash4, &r->closed) == 9;
}

/* Read the reuseport file into @recs; the number of lines, or -1 when a
 * line is malformed or a group is not followed by its members.
 */
static int read_groups(struct rec *recs, int max)
{
	char line[512];
	int n = 0, want = 0;
	FILE *f = fopen(DIR "reuseport", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		struct rec r;

		if (!strcmp(line, "  gap\n") && want > 0) {
			want--;
			continue;
		}
		if (!parse(line, &r) || r.group != !want) {
			fprintf(stderr, "# malformed: %s", line);
			n = -1;
			break;
		}
		want = r.group ? r.socks + r.closed_socks : want - 1;
		if (n < max)
			recs[n] = r;
		n++;
	}
	fclose(f);
	return n >= 0 && want ? -1 : n;
}

/* The member line of the socket with cookie @c, or NULL. */
static struct rec *by_cookie(struct rec *recs, int n, unsigned long long c)
{
	for (int i = 0; i < n; i++)
		if (!recs[i].group && recs[i].cookie == c)
			return &recs[i];
	return NULL;
}

/* The first group line of @proto, or NULL. */
static struct rec *group_of(struct rec *recs, int n, const char *proto)
{
	for (int i = 0; i < n; i++)
		if (recs[i].group && !strcmp(recs[i].proto, proto))
			return &recs[i];
	return NULL;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* A SELECT_OR_MIGRATE program that lets the kernel pick by hash. */
static int load_pass_prog(void)
{
	struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
		  .imm = SK_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	attr.expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE;
	attr.insns = (uintptr_t)prog;
	attr.insn_cnt = 2;
	attr.license = (uintptr_t)"GPL";
	return sys_bpf(BPF_PROG_LOAD, &attr);
}

static unsigned int prog_id(int prog_fd)
{
	struct bpf_prog_info info = {};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = prog_fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (uintptr_t)&info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) ? 0 : info.id;
}

static int tcp_listener(const FIXTURE_VARIANT(scene) *v)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(v->family, v->addr, PORT, &ss);
	int one = 1, fd = socket(v->family, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (void *)&ss, len) || listen(fd, 8)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Check the member line of @fd: every field against the socket itself. */
static void check_member(struct __test_metadata *_metadata, struct rec *recs,
			 int n, int fd, const char *state, int dgrams,
			 int hash4)
{
	struct rec *r = by_cookie(recs, n, cookie_of(fd));
	int rmem, drops;

	ASSERT_NE(NULL, r) TH_LOG("no line with cookie %llu", cookie_of(fd));
	meminfo(fd, &rmem, &drops);
	EXPECT_EQ(ino_of(fd), r->ino);
	EXPECT_STREQ(state, r->state);
	EXPECT_EQ(0, r->uid);
	EXPECT_EQ(rmem, r->rq_bytes);
	EXPECT_EQ(dgrams, r->rq_dgrams);
	EXPECT_EQ(drops, r->drops);
	EXPECT_EQ(0, r->drops);
	EXPECT_EQ(hash4, r->hash4);
	EXPECT_EQ(0, r->closed);
}

/* The inspector against a known scene:
 * - a UDP group of three: u0 with 5 datagrams queued, u1, and c1
 *   connected to peer 1 with one datagram of that peer queued;
 * - c0, from UDP_BIND_CONNECT to peer 2, on the port but in no group;
 * - a TCP group with a SELECT_OR_MIGRATE program: t1 listening, and t0,
 *   closed with a request pending (TCP_DEFER_ACCEPT), in the closed part.
 */
TEST_F(scene, inspector)
{
	int u0, u1, c0, c1, p1, t0, t1, client, prog_fd, n, ten = 10;
	unsigned long long t0_cookie;
	struct sockaddr_storage ss;
	struct rec recs[64], *g, *r;
	socklen_t len;

	ASSERT_LE(0, u0 = member(variant));
	ASSERT_LE(0, p1 = peer(variant, PEER + 1));
	ASSERT_EQ(5, send_n(variant, p1, 5));	/* all to u0, alone */
	ASSERT_LE(0, u1 = member(variant));
	ASSERT_LE(0, c1 = member(variant));
	ASSERT_EQ(0, connect_peer(variant, c1, PEER + 1));
	ASSERT_LE(0, c0 = bind_connect(variant, PEER + 2));
	ASSERT_EQ(1, send_n(variant, p1, 1));	/* to c1, by hash4 */

	ASSERT_LE(0, t0 = tcp_listener(variant));
	ASSERT_EQ(0, setsockopt(t0, IPPROTO_TCP, TCP_DEFER_ACCEPT, &ten,
				sizeof(ten)));
	ASSERT_LE(0, prog_fd = load_pass_prog()) TH_LOG("bpf: %s", strerror(errno));
	ASSERT_EQ(0, setsockopt(t0, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
				&prog_fd, sizeof(prog_fd)));
	client = socket(peer_family(variant), SOCK_STREAM, 0);
	len = mkaddr(peer_family(variant), variant->peer, PORT, &ss);
	/* SYN_RECV on t0 until data or the first SYN-ACK retransmit (1 s). */
	ASSERT_EQ(0, connect(client, (void *)&ss, len));
	ASSERT_LE(0, t1 = tcp_listener(variant));
	t0_cookie = cookie_of(t0);
	close(t0);

	/* Exactly two groups and their 3 + 2 members in this netns. */
	n = read_groups(recs, 64);
	ASSERT_EQ(2 + 3 + 2, n);

	g = group_of(recs, n, "udp");
	ASSERT_NE(NULL, g);
	EXPECT_STREQ(variant->shown, g->addr);
	EXPECT_EQ(PORT, g->port);
	EXPECT_EQ(0, g->dev);
	EXPECT_EQ(3, g->socks);
	EXPECT_EQ(0, g->closed_socks);
	EXPECT_EQ(1, g->has_conns);
	EXPECT_EQ(0, g->prog_id);
	EXPECT_STREQ("none", g->attach);
	check_member(_metadata, recs, n, u0, "UNCONN", 5, 0);
	check_member(_metadata, recs, n, u1, "UNCONN", 0, 0);
	check_member(_metadata, recs, n, c1, "ESTAB", 1, 1);
	EXPECT_EQ(NULL, by_cookie(recs, n, cookie_of(c0)));

	g = group_of(recs, n, "tcp");
	ASSERT_NE(NULL, g);
	EXPECT_STREQ(variant->shown, g->addr);
	EXPECT_EQ(PORT, g->port);
	EXPECT_EQ(0, g->dev);
	EXPECT_EQ(1, g->socks);
	EXPECT_EQ(1, g->closed_socks) TH_LOG("t0 left its group too early");
	EXPECT_EQ(0, g->has_conns);
	EXPECT_EQ(prog_id(prog_fd), g->prog_id);
	EXPECT_LT(0, g->prog_id);
	EXPECT_STREQ("select_or_migrate", g->attach);
	check_member(_metadata, recs, n, t1, "LISTEN", 0, 0);
	r = by_cookie(recs, n, t0_cookie);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(0, r->ino);		/* orphaned by close() */
	EXPECT_STREQ("CLOSE", r->state);
	EXPECT_EQ(1, r->closed);
	EXPECT_EQ(0, r->hash4);


	close(client);
	close(prog_fd);
	close(u0);
	close(u1);
	close(c0);
	close(c1);
	close(t1);
	close(p1);
}

/* One line of the hash4 file. */
struct h4rec {
	unsigned long ino;
	unsigned long long cookie;
	char local[80], remote[80];
	int dev, uid, rq_dgrams, group;
	unsigned int slot;
};

/* Read the hash4 file: its header in @hdr, its lines in @recs; the number
 * of lines, or -1 when one is malformed.
 */
static int read_hash4(char *hdr, size_t hlen, struct h4rec *recs, int max)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(DIR "hash4", "r");

	if (!f)
		return -1;
	if (!fgets(hdr, hlen, f) || strncmp(hdr, "port ", 5)) {
		fclose(f);
		return -1;
	}
	hdr[strcspn(hdr, "\n")] = 0;
	while (fgets(line, sizeof(line), f)) {
		struct h4rec r;

		if (sscanf(line, "sock ino=%lu cookie=%llu local=%79s remote=%79s dev=%d slot=%u uid=%d rq_dgrams=%d reuseport_group=%d",
			   &r.ino, &r.cookie, r.local, r.remote, &r.dev, &r.slot,
			   &r.uid, &r.rq_dgrams, &r.group) != 9) {
			fprintf(stderr, "# malformed: %s", line);
			n = -1;
			break;
		}
		if (n < max)
			recs[n] = r;
		n++;
	}
	fclose(f);
	return n;
}

/* The hash4 file: the connected sockets of a port, and its port filter. */
TEST_F(scene, hash4_file)
{
	static const char *const bad[] = { "x", "65536", "-1", "", "44 33" };
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	char hdr[64], want[2][100], portstr[16], big[8192];
	int c0, c1, p1, n, i, seen = 0;
	struct h4rec recs[8];
	unsigned int k;

	ASSERT_LE(0, c1 = member(variant));
	ASSERT_EQ(0, connect_peer(variant, c1, PEER + 1));
	ASSERT_LE(0, c0 = bind_connect(variant, PEER + 2));
	ASSERT_LE(0, p1 = peer(variant, PEER + 1));
	ASSERT_EQ(3, send_n(variant, p1, 3));
	for (i = 0; i < 2; i++)
		snprintf(want[i], sizeof(want[i]), "%s:%d",
			 variant->family == AF_INET ? variant->peer :
			 strchr(variant->peer, ':') ? "[::1]" :
			 "[::ffff:127.0.0.1]", PEER + 1 + i);

	n = read_hash4(hdr, sizeof(hdr), recs, 8);
	EXPECT_STREQ("port any", hdr);
	ASSERT_EQ(2, n);
	snprintf(portstr, sizeof(portstr), "%d\n", PORT);
	ASSERT_EQ(0, write_str(DIR "hash4", portstr, strlen(portstr)));
	n = read_hash4(hdr, sizeof(hdr), recs, 8);
	EXPECT_STREQ("port 4433", hdr);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++) {
		int fd = recs[i].cookie == cookie_of(c1) ? c1 :
			 recs[i].cookie == cookie_of(c0) ? c0 : -1;
		char local[100];

		ASSERT_NE(-1, fd) TH_LOG("cookie %llu", recs[i].cookie);
		seen |= fd == c1 ? 1 : 2;
		snprintf(local, sizeof(local), "%s:%d", variant->shown, PORT);
		EXPECT_EQ(ino_of(fd), recs[i].ino);
		EXPECT_STREQ(local, recs[i].local);
		EXPECT_STREQ(want[fd == c1 ? 0 : 1], recs[i].remote);
		EXPECT_EQ(0, recs[i].dev);
		EXPECT_EQ(0, recs[i].uid);
		EXPECT_EQ(fd == c1 ? 3 : 0, recs[i].rq_dgrams);
		EXPECT_EQ(fd == c1, recs[i].group);
	}
	EXPECT_EQ(3, seen);

	ASSERT_EQ(0, write_str(DIR "hash4", "4434", 4));
	n = read_hash4(hdr, sizeof(hdr), recs, 8);
	EXPECT_STREQ("port 4434", hdr);
	EXPECT_EQ(0, n);

	/* Bad input: EINVAL, and the filter stays on 4434. */
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		const char *in = bad[k];

		EXPECT_EQ(-EINVAL, write_str(DIR "hash4", in, strlen(in)))
			TH_LOG("bad input \"%s\"", in);
	}
	memset(big, '1', sizeof(big));
	EXPECT_GT(0, write_str(DIR "hash4", big, sizeof(big)));
	read_hash4(hdr, sizeof(hdr), recs, 8);
	EXPECT_STREQ("port 4434", hdr);

	/* Disconnected: out of hash4. */
	ASSERT_EQ(0, write_str(DIR "hash4", "0", 1));
	ASSERT_EQ(0, connect(c1, &unspec, sizeof(unspec)));
	n = read_hash4(hdr, sizeof(hdr), recs, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(cookie_of(c0), recs[0].cookie);
	close(c0);
	close(c1);
	close(p1);
}

/* The counters move as /proc/net/netstat does, over a migration. */
TEST_F(scene, counters)
{
	long m0, f0, n0;
	int l1, l2, p;

	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=1", 13));
	m0 = field(DIR "counters", "UdpMigrate");
	f0 = field(DIR "counters", "UdpMigrateFailure");
	n0 = netstat("UdpMigrate");
	EXPECT_EQ(n0, m0);
	EXPECT_EQ(netstat("UdpMigrateFailure"), f0);
	ASSERT_LE(0, l1 = member(variant));
	ASSERT_LE(0, p = peer(variant, 0));
	ASSERT_EQ(20, send_n(variant, p, 20));
	ASSERT_LE(0, l2 = member(variant));
	close(l1);
	EXPECT_EQ(20, field(DIR "counters", "UdpMigrate") - m0);
	EXPECT_EQ(0, field(DIR "counters", "UdpMigrateFailure") - f0);
	EXPECT_EQ(netstat("UdpMigrate"), field(DIR "counters", "UdpMigrate"));
	EXPECT_EQ(netstat("UdpMigrateFailure"),
		  field(DIR "counters", "UdpMigrateFailure"));

	/* No live member left: the 20 moved to l2 and 7 more fail. */
	ASSERT_EQ(7, send_n(variant, p, 7));
	close(l2);
	EXPECT_EQ(20, field(DIR "counters", "UdpMigrate") - m0);
	EXPECT_EQ(27, field(DIR "counters", "UdpMigrateFailure") - f0);
	EXPECT_EQ(netstat("UdpMigrateFailure"),
		  field(DIR "counters", "UdpMigrateFailure"));
	close(p);
}

/* Read the reuseport file from another thread while a socket with
 * NR_QUEUED datagrams closes, until its group shows it in the closed part.
 */
#define NR_QUEUED	3000

struct catcher {
	unsigned long long cookie;
	atomic_int stop, reads, seen;
	int bad;
	struct rec group, member;
};

static void *catch_closed(void *arg)
{
	struct catcher *c = arg;
	struct rec recs[16];
	int n, i;

	while (!atomic_load(&c->stop) && !atomic_load(&c->seen)) {
		n = read_groups(recs, 16);
		atomic_fetch_add(&c->reads, 1);
		if (n < 0) {
			c->bad++;
			continue;
		}
		for (i = 0; i < n && i < 16; i++)
			if (recs[i].group)
				c->group = recs[i];
			else if (recs[i].cookie == c->cookie && recs[i].closed) {
				c->member = recs[i];
				atomic_store(&c->seen, 1);
				break;
			}
	}
	return NULL;
}

/* A UDP member during its migration: in the closed part of its group,
 * then gone, its datagrams all on the live member.
 */
TEST_F_TIMEOUT(scene, closing_member, 120)
{
	int l0, l1, p, big = 64 << 20, round, n, i;
	struct catcher c = {};
	struct rec recs[16];
	struct timespec t0, t1;
	pthread_t th;
	long m0;

	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=1", 13));
	ASSERT_LE(0, p = peer(variant, 0));
	for (round = 0; round < 3 && !c.seen; round++) {
		m0 = field(DIR "counters", "UdpMigrate");
		ASSERT_LE(0, l0 = member(variant));
		ASSERT_EQ(0, setsockopt(l0, SOL_SOCKET, SO_RCVBUFFORCE, &big,
					sizeof(big)));
		ASSERT_EQ(NR_QUEUED, send_n(variant, p, NR_QUEUED));
		ASSERT_LE(0, l1 = member(variant));
		ASSERT_EQ(0, setsockopt(l1, SOL_SOCKET, SO_RCVBUFFORCE, &big,
					sizeof(big)));
		memset(&c, 0, sizeof(c));
		c.cookie = cookie_of(l0);
		ASSERT_EQ(0, pthread_create(&th, NULL, catch_closed, &c));
		while (!atomic_load(&c.reads))
			sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t0);
		close(l0);
		/* The closed part empties an RCU grace period after close(). */
		do {
			clock_gettime(CLOCK_MONOTONIC, &t1);
		} while (!atomic_load(&c.seen) && t1.tv_sec - t0.tv_sec < 2);
		atomic_store(&c.stop, 1);
		pthread_join(th, NULL);
		EXPECT_EQ(0, c.bad);
		TH_LOG("round %d: %d reads, closed member %s", round,
		       atomic_load(&c.reads), c.seen ? "seen" : "not seen");

		/* Afterwards: one live member with everything. */
		for (i = 0; i < 200; i++) {
			n = read_groups(recs, 16);
			if (n == 2 && !recs[0].closed_socks)
				break;
			usleep(10000);
		}
		ASSERT_EQ(2, n);
		EXPECT_EQ(1, recs[0].socks);
		EXPECT_EQ(0, recs[0].closed_socks);
		EXPECT_EQ(cookie_of(l1), recs[1].cookie);
		EXPECT_EQ(NR_QUEUED, recs[1].rq_dgrams);
		EXPECT_EQ(NR_QUEUED, field(DIR "counters", "UdpMigrate") - m0);
		close(l1);
	}
	ASSERT_TRUE(c.seen) TH_LOG("never caught the closing member");
	EXPECT_STREQ("udp", c.group.proto);
	EXPECT_EQ(1, c.group.socks);
	EXPECT_EQ(1, c.group.closed_socks);
	EXPECT_EQ(1, c.member.closed);
	EXPECT_STREQ("UNCONN", c.member.state);
	EXPECT_EQ(0, c.member.hash4);
	EXPECT_GE(NR_QUEUED, c.member.rq_dgrams);
	close(p);
}

/* Stress: read both files in a loop while threads bind, connect, close
 * and migrate on the port; every record must be well formed.
 */
struct stress {
	const FIXTURE_VARIANT(scene) *v;
	atomic_int stop;
	atomic_long group_ops;	/* members added and closed */
	atomic_long flow_ops;	/* per-flow sockets set up and closed */
};

static void *churn_group(void *arg)
{
	struct stress *s = arg;
	int fds[8] = { -1, -1, -1, -1, -1, -1, -1, -1 }, i = 0;

	while (!atomic_load(&s->stop)) {
		if (fds[i] >= 0)
			close(fds[i]);	/* migrates what it holds */
		fds[i] = member(s->v);
		if (fds[i] >= 0 && i % 3 == 0)
			connect_peer(s->v, fds[i], PEER + i);
		i = (i + 1) % 8;
		atomic_fetch_add(&s->group_ops, 1);
	}
	for (i = 0; i < 8; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return NULL;
}

static void *churn_flows(void *arg)
{
	struct stress *s = arg;
	unsigned int seed = 1;
	int fd;

	while (!atomic_load(&s->stop)) {
		fd = bind_connect(s->v, PEER + 100 + rand_r(&seed) % 500);
		if (fd >= 0)
			close(fd);
		atomic_fetch_add(&s->flow_ops, 1);
	}
	return NULL;
}

static void *flood(void *arg)
{
	struct stress *s = arg;
	int fd = peer(s->v, 0);

	while (!atomic_load(&s->stop))
		send_n(s->v, fd, 16);
	close(fd);
	return NULL;
}

/* Both files read again and again for STRESS_PERIODS seconds while two
 * threads churn the group, one churns per-flow sockets and one floods: every
 * read parses and shows the group, and each churn went on in every second.
 */
#define STRESS_PERIODS	3

TEST_F(scene, stress)
{
	struct stress s = { .v = variant };
	int reads = 0, bad = 0, groups = 0, busy = 0, n, i, anchor;
	long g0, f0;
	void *(*fn[])(void *) = { churn_group, churn_group, churn_flows, flood };
	pthread_t th[4];
	struct h4rec h4[1];
	struct rec recs[1];
	struct timespec t0, t1;
	char hdr[64];

	ASSERT_EQ(0, write_str(DIR "knobs", "udp_migrate=1", 13));
	ASSERT_LE(0, anchor = member(variant));	/* the group never empties */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, fn[i], &s));
	for (i = 0; i < STRESS_PERIODS; i++) {
		g0 = atomic_load(&s.group_ops);
		f0 = atomic_load(&s.flow_ops);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			n = read_groups(recs, 1);
			bad += n < 0;
			groups += n > 0 && recs[0].group;
			bad += read_hash4(hdr, sizeof(hdr), h4, 1) < 0;
			reads++;
			clock_gettime(CLOCK_MONOTONIC, &t1);
		} while (t1.tv_sec - t0.tv_sec < 1);
		busy += atomic_load(&s.group_ops) > g0 &&
			atomic_load(&s.flow_ops) > f0;
	}
	atomic_store(&s.stop, 1);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	TH_LOG("%d reads of both files, %ld group and %ld flow operations",
	       reads, atomic_load(&s.group_ops), atomic_load(&s.flow_ops));
	EXPECT_EQ(0, bad);
	EXPECT_EQ(reads, groups);
	EXPECT_EQ(STRESS_PERIODS, busy) TH_LOG("a churn stalled");
	close(anchor);
}

TEST_HARNESS_MAIN
