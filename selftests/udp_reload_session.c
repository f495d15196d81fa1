// SPDX-License-Identifier: GPL-2.0
/*
 * Print what /proc/net/udp_hotswap/ shows during the reload of a UDP
 * server, as a shell session: an old generation of 2 workers with 2
 * per-flow sockets (UDP_BIND_CONNECT) and datagrams queued, a new
 * generation of 2 workers joining the group, the old workers closing with
 * net.ipv4.udp_migrate=1 (caught while their datagrams move), then the old
 * flows ending. Needs the patched kernel and the udp_hotswap module
 * loaded; scripts/show-reload-session runs it in the test VM. Not a test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udp_bind_connect_uapi.h"

#define DIR	"/proc/net/udp_hotswap/"
#define PORT	4433
#define QUEUED	2000	/* datagrams queued on the old workers */

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static struct sockaddr_in addr(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void cat(const char *file)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(file, "r");

	if (!f)
		die(file);
	printf("# cat %s\n", file);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(f);
}

static void put(const char *file, const char *s)
{
	FILE *f = fopen(file, "w");

	printf("# echo %s > %s\n", s, file);
	if (!f || fputs(s, f) < 0 || fclose(f))
		die(file);
}

static int worker(int rcvbuf)
{
	struct sockaddr_in a = addr(PORT);
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) ||
	    bind(fd, (void *)&a, sizeof(a)))
		die("worker");
	return fd;
}

static int flow(int peer_port)
{
	struct udp_bind_connect bc = {};
	struct sockaddr_in l = addr(PORT), r = addr(peer_port);
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);

	memcpy(&bc.local, &l, sizeof(l));
	memcpy(&bc.remote, &r, sizeof(r));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_UDP, UDP_BIND_CONNECT, &bc, sizeof(bc)))
		die("UDP_BIND_CONNECT");
	return fd;
}

static int client(int port)
{
	struct sockaddr_in a = addr(port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (port && bind(fd, (void *)&a, sizeof(a)))
		die("client");
	return fd;
}

static void send_n(int fd, int n)
{
	struct sockaddr_in a = addr(PORT);

	while (n--)
		sendto(fd, "x", 1, 0, (void *)&a, sizeof(a));
}

/* A copy of the reuseport file taken while a member is in the closed part. */
static char during[16384];
static atomic_int stop, caught;

static void *watch(void *arg)
{
	char buf[sizeof(during)];
	size_t n;
	FILE *f;

	while (!atomic_load(&stop) && !atomic_load(&caught)) {
		f = fopen(DIR "reuseport", "r");
		if (!f)
			break;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		if (strstr(buf, "closed=1")) {
			memcpy(during, buf, n + 1);
			atomic_store(&caught, 1);
		}
	}
	return NULL;
}

int main(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int old[2], new[2], flows[2], c, p1, p2, fd, i, big = 32 << 20;
	pthread_t th;

	if (unshare(CLONE_NEWNET))
		die("unshare");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		die("lo up");
	close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("# # a new netns; the old generation: 2 workers on 127.0.0.1:%d,\n"
	       "# # 2 flows from UDP_BIND_CONNECT, %d datagrams queued\n",
	       PORT, QUEUED);
	put(DIR "knobs", "udp_migrate=1");
	cat(DIR "knobs");
	for (i = 0; i < 2; i++)
		old[i] = worker(big);
	flows[0] = flow(40001);
	flows[1] = flow(40002);
	c = client(0);
	p1 = client(40001);
	p2 = client(40002);
	send_n(c, QUEUED);
	send_n(p1, 3);
	send_n(p2, 1);
	cat(DIR "reuseport");
	cat(DIR "hash4");

	printf("# # SIGHUP: the new generation binds its 2 workers\n");
	for (i = 0; i < 2; i++)
		new[i] = worker(big);
	cat(DIR "reuseport");

	printf("# # the old workers close; seen from another thread meanwhile:\n");
	pthread_create(&th, NULL, watch, NULL);
	usleep(1000);
	close(old[0]);
	close(old[1]);
	for (i = 0; i < 200 && !atomic_load(&caught); i++)
		usleep(10000);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	if (atomic_load(&caught))
		printf("# cat %sreuseport\n%s", DIR, during);
	else
		printf("# # (the closed part emptied before a read saw it)\n");
	usleep(100000);
	printf("# # afterwards\n");
	cat(DIR "reuseport");
	cat(DIR "counters");
	printf("# # a datagram of each old flow, sent after the reload, is on\n"
	       "# # its flow's socket (rq_dgrams 3 -> 4 and 1 -> 2), by hash4\n");
	send_n(p1, 1);
	send_n(p2, 1);
	put(DIR "hash4", "4433");
	cat(DIR "hash4");
	printf("# # the old flows end\n");
	close(flows[0]);
	close(flows[1]);
	cat(DIR "hash4");
	close(new[0]);
	close(new[1]);
	return 0;
}
