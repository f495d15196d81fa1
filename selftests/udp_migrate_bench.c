// SPDX-License-Identifier: GPL-2.0
/*
 * Cost of UDP reuseport migration. For each queue length Q: a group of
 * two sockets on 127.0.0.1:4433, Q datagrams queued on the first, then
 * close() of the first, timed, with net.ipv4.udp_migrate=1 (the Q
 * datagrams move to the second) and =0 (they are freed). Meanwhile a
 * second thread ping-pongs datagrams with an echo socket on another port
 * (another flow) and records their round-trip times while close() runs,
 * and before it, for comparison. Each run has its own netns. Every Q is
 * measured ROUNDS times (default 3), udp_migrate=1 first in even rounds
 * and last in odd ones. Prints:
 *   result q=Q round=R migrate=M close_ns=X moved=N rtt_idle_p50=A
 *          rtt_idle_max=B rtt_close_p50=C rtt_close_max=D rtt_close_n=K
 * and exits 3 when a run lost datagrams: with udp_migrate=1 all Q must
 * reach the second socket, with 0 none may.
 *
 *   udp_migrate_bench [-q 0,1000,10000] [-r ROUNDS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT		4433
#define ECHO_PORT	4434
#define MAX_RTT		200000

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static struct sockaddr_in lo(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static int udp(int port, bool reuseport)
{
	struct sockaddr_in a = lo(port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, buf = 1 << 26;

	if (fd < 0)
		die("socket");
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	if (port && bind(fd, (void *)&a, sizeof(a)))
		die("bind");
	return fd;
}

struct pinger {
	int cl, echo;
	volatile int phase;	/* 0 idle, 1 during close, 2 stop */
	double rtt[2][MAX_RTT];
	int n[2];
};

/* Ping-pong one datagram between cl and the echo socket, again and again. */
static void *ping(void *arg)
{
	struct pinger *p = arg;
	struct sockaddr_in e = lo(ECHO_PORT), from;
	char buf[64];

	while (p->phase != 2) {
		int ph = p->phase;
		socklen_t len = sizeof(from);
		double t0 = now();

		sendto(p->cl, "p", 1, 0, (void *)&e, sizeof(e));
		if (recvfrom(p->echo, buf, sizeof(buf), 0, (void *)&from, &len) < 0)
			die("echo recv");
		sendto(p->echo, buf, 1, 0, (void *)&from, len);
		if (recv(p->cl, buf, sizeof(buf), 0) < 0)
			die("ping recv");
		if (ph < 2 && ph == p->phase && p->n[ph] < MAX_RTT)
			p->rtt[ph][p->n[ph]++] = now() - t0;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void run(int q, int round, int migrate)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	static struct pinger p;
	struct sockaddr_in dst = lo(PORT);
	int l1, l2, snd, fd, i, moved = 0;
	double t0, close_ns;
	char buf[64];
	pthread_t th;

	if (unshare(CLONE_NEWNET))
		die("unshare");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		die("lo up");
	close(fd);
	fd = open("/proc/sys/net/ipv4/udp_migrate", O_WRONLY);
	if (fd < 0 || write(fd, migrate ? "1" : "0", 1) != 1)
		die("net.ipv4.udp_migrate");
	close(fd);

	l1 = udp(PORT, true);
	snd = udp(0, false);
	for (i = 0; i < q; i++)
		if (sendto(snd, "0123456789abcdef", 16, 0, (void *)&dst,
			   sizeof(dst)) != 16)
			die("sendto");
	l2 = udp(PORT, true);

	memset(&p, 0, sizeof(p));
	p.echo = udp(ECHO_PORT, false);
	p.cl = udp(0, false);
	pthread_create(&th, NULL, ping, &p);
	usleep(200000);
	p.phase = 1;
	t0 = now();
	close(l1);
	close_ns = now() - t0;
	p.phase = 2;
	pthread_join(th, NULL);
	while (recv(l2, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		moved++;

	for (i = 0; i < 2; i++)
		qsort(p.rtt[i], p.n[i], sizeof(double), cmp);
	printf("result q=%d round=%d migrate=%d close_ns=%.0f moved=%d rtt_idle_p50=%.0f rtt_idle_max=%.0f rtt_close_p50=%.0f rtt_close_max=%.0f rtt_close_n=%d\n",
	       q, round, migrate, close_ns, moved,
	       p.n[0] ? p.rtt[0][p.n[0] / 2] : 0, p.n[0] ? p.rtt[0][p.n[0] - 1] : 0,
	       p.n[1] ? p.rtt[1][p.n[1] / 2] : 0, p.n[1] ? p.rtt[1][p.n[1] - 1] : 0,
	       p.n[1]);
	fflush(stdout);
	exit(moved != (migrate ? q : 0) ? 3 : 0);
}

int main(int argc, char **argv)
{
	char *list = "0,1000,10000", *tok;
	int qs[16], nq = 0, opt, i, j, r, rounds = 3, lost = 0;

	while ((opt = getopt(argc, argv, "q:r:")) != -1) {
		if (opt == 'q')
			list = optarg;
		else if (opt == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (rounds < 1)
		return 2;
	for (tok = strtok(list, ","); tok && nq < 16; tok = strtok(NULL, ","))
		qs[nq++] = atoi(tok);
	for (i = 0; i < nq; i++)
		for (r = 0; r < rounds; r++)
			for (j = 0; j < 2; j++) {
				/* 1, 0 in even rounds; 0, 1 in odd ones. */
				int m = (j + r + 1) % 2, status;
				pid_t pid = fork();

				if (!pid)
					run(qs[i], r, m);
				waitpid(pid, &status, 0);
				if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
					lost = 1;	/* reported; go on */
				else if (!WIFEXITED(status) || WEXITSTATUS(status))
					return 1;
				sleep(2);
			}
	if (lost)
		fprintf(stderr, "udp_migrate_bench: datagrams were lost\n");
	return lost ? 3 : 0;
}
