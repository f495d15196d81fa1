// SPDX-License-Identifier: GPL-2.0
/*
 * Per-flow socket setup rate of an established-over-unconnected UDP
 * server, three ways, on one port that keeps every socket it made:
 *
 *   setsockopt  socket(), SO_REUSEADDR, setsockopt(UDP_BIND_CONNECT)
 *   bind        socket(), SO_REUSEADDR, bind(), connect()
 *   emulation   Cloudflare's user-space connectx(): socket(),
 *               SO_REUSEADDR on, bind(), SO_REUSEADDR off, a sock_diag
 *               lookup that the 4-tuple finds this socket (SO_COOKIE),
 *               connect(), SO_REUSEADDR on
 *
 * For each N, each way sets up N sockets (127.0.0.1:4433 to 127.0.0.2,
 * one peer port each) beside one listener, in its own netns, in rounds
 * that alternate the order of the ways, after one uncounted warm-up
 * round. Prints one line per way and N, with the median and the minimum
 * over the rounds:
 *   result mode=M n=N ns_per_socket=MEDIAN ns_min=MIN rate=R
 *
 * Each run waits -s seconds after the previous one, whose netns is being
 * torn down meanwhile.
 *
 *   udp_setup_bench [-n 1000,10000] [-r rounds] [-s settle]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "udp_bind_connect_uapi.h"

#define PORT		4433
#define MAX_ROUNDS	15
#define PEER_PORT	10000

enum mode { SETSOCKOPT, BIND, EMULATION, NR_MODES };
static const char *const mode_name[] = { "setsockopt", "bind", "emulation" };

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static struct sockaddr_in addr4(const char *ip, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons(port);
	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

static int setopt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

/* Does the lookup of a datagram from @r to @l find the socket @cookie? */
static bool diag_owns(int nl, const struct sockaddr_in *l,
		      const struct sockaddr_in *r, uint64_t cookie)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q = {
		.nlh.nlmsg_len = sizeof(q),
		.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY,
		.nlh.nlmsg_flags = NLM_F_REQUEST,
		.req.sdiag_family = AF_INET,
		.req.sdiag_protocol = IPPROTO_UDP,
		.req.idiag_states = ~0U,
		.req.id.idiag_sport = r->sin_port,
		.req.id.idiag_dport = l->sin_port,
		.req.id.idiag_src[0] = r->sin_addr.s_addr,
		.req.id.idiag_dst[0] = l->sin_addr.s_addr,
		.req.id.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
	};
	char buf[1024];
	struct nlmsghdr *h = (void *)buf;
	struct inet_diag_msg *m = NLMSG_DATA(h);
	uint64_t got;

	if (send(nl, &q, sizeof(q), 0) != sizeof(q))
		die("sock_diag send");
	if (recv(nl, buf, sizeof(buf), 0) < (ssize_t)sizeof(*h))
		die("sock_diag recv");
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return false;
	got = m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
	return got == cookie;
}

/* One per-flow socket to peer port @pport; the fd, or -1 on EADDRINUSE. */
static int setup(enum mode mode, int nl, int pport)
{
	struct sockaddr_in l = addr4("127.0.0.1", PORT);
	struct sockaddr_in r = addr4("127.0.0.2", pport);
	struct udp_bind_connect bc = {};
	struct sockaddr_in any = { .sin_family = AF_UNSPEC };
	uint64_t cookie;
	socklen_t len = sizeof(cookie);
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	if (setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1))
		die("SO_REUSEADDR");
	switch (mode) {
	case SETSOCKOPT:
		memcpy(&bc.local, &l, sizeof(l));
		memcpy(&bc.remote, &r, sizeof(r));
		if (setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)))
			die("UDP_BIND_CONNECT");
		break;
	case BIND:
		if (bind(fd, (void *)&l, sizeof(l)))
			die("bind");
		if (connect(fd, (void *)&r, sizeof(r)))
			die("connect");
		break;
	case EMULATION:
		if (bind(fd, (void *)&l, sizeof(l)))
			die("bind");
		if (setopt(fd, SOL_SOCKET, SO_REUSEADDR, 0))
			die("SO_REUSEADDR off");
		if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
			die("SO_COOKIE");
		if (!diag_owns(nl, &l, &r, cookie)) {
			connect(fd, (void *)&any, sizeof(any));
			close(fd);
			return -1;
		}
		if (connect(fd, (void *)&r, sizeof(r)))
			die("connect");
		if (setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1))
			die("SO_REUSEADDR on");
		break;
	default:
		break;
	}
	return fd;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Set up @n sockets @mode's way in a fresh netns; ns per socket. */
static void run(enum mode mode, int n, int pipefd)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	struct sockaddr_in l = addr4("127.0.0.1", PORT);
	int *fds, i, fd, nl, refused = 0;
	double t0, ns;

	if (unshare(CLONE_NEWNET))
		die("unshare");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		die("SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		die("SIOCSIFFLAGS");
	/* The listener. */
	setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (bind(fd, (void *)&l, sizeof(l)))
		die("bind listener");
	nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
	if (nl < 0)
		die("NETLINK_SOCK_DIAG");

	fds = calloc(n, sizeof(*fds));
	t0 = now();
	for (i = 0; i < n; i++) {
		fds[i] = setup(mode, nl, PEER_PORT + i);
		refused += fds[i] < 0;
	}
	ns = (now() - t0) * 1e9 / n;
	if (refused)
		fprintf(stderr, "%s: %d of %d setups refused\n",
			mode_name[mode], refused, n);
	if (write(pipefd, &ns, sizeof(ns)) != sizeof(ns))
		die("write");
	exit(refused ? 1 : 0);
}

int main(int argc, char **argv)
{
	int sizes[16], nsizes = 0, rounds = 5, settle = 3, opt, s, r, k;
	char *list = "1000,10000", *tok;
	struct rlimit rl;

	while ((opt = getopt(argc, argv, "n:r:s:")) != -1) {
		if (opt == 'n')
			list = optarg;
		else if (opt == 'r')
			rounds = atoi(optarg);
		else if (opt == 's')
			settle = atoi(optarg);
		else
			return 2;
	}
	for (tok = strtok(list, ","); tok && nsizes < 16; tok = strtok(NULL, ","))
		sizes[nsizes++] = atoi(tok);
	if (!nsizes || rounds < 1) {
		fprintf(stderr, "usage: %s [-n N,N...] [-r rounds] [-s secs]\n",
			argv[0]);
		return 2;
	}
	rl.rlim_cur = rl.rlim_max = 200000;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("RLIMIT_NOFILE");

	if (rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	for (s = 0; s < nsizes; s++) {
		double t[NR_MODES][MAX_ROUNDS];

		/* Round -1 warms the VM up and is not counted. */
		for (r = -1; r < rounds; r++) {
			for (k = 0; k < NR_MODES; k++) {
				enum mode m = (k + r + NR_MODES) % NR_MODES;
				int p[2], status;
				double ns;
				pid_t pid;

				if (pipe(p))
					die("pipe");
				pid = fork();
				if (!pid)
					run(m, sizes[s], p[1]);
				waitpid(pid, &status, 0);
				if (!WIFEXITED(status) || WEXITSTATUS(status) ||
				    read(p[0], &ns, sizeof(ns)) != sizeof(ns)) {
					fprintf(stderr, "%s failed at n=%d\n",
						mode_name[m], sizes[s]);
					return 1;
				}
				close(p[0]);
				close(p[1]);
				if (r >= 0)
					t[m][r] = ns;
				fprintf(stderr, "round %d %s n=%d: %.0f ns\n",
					r, mode_name[m], sizes[s], ns);
				/* Let the netns and its sockets go first. */
				sleep(settle);
			}
		}
		for (k = 0; k < NR_MODES; k++) {
			qsort(t[k], rounds, sizeof(double), cmp_double);
			printf("result mode=%s n=%d ns_per_socket=%.0f ns_min=%.0f rate=%.0f\n",
			       mode_name[k], sizes[s], t[k][rounds / 2],
			       t[k][0], 1e9 / t[k][rounds / 2]);
		}
		fflush(stdout);
	}
	return 0;
}
