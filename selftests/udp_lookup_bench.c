// SPDX-License-Identifier: GPL-2.0
/*
 * Receive-path cost of UDP datagrams to N connected sockets that share one
 * local address and port (the established-over-unconnected pattern).
 *
 *   udp_lookup_bench [-n N1,N2,...] [-t SECONDS] [-r ROUNDS] [-s SLOTS]
 *                    [-H] [-U] [-G]
 *
 * N sockets are bound to 127.0.0.1:4433 with SO_REUSEADDR and each is
 * connected to its own peer (127.0.0.2+i/60000, port 2000+i%60000). A raw
 * IP_HDRINCL socket sends datagrams from the peers round-robin, 64 per
 * sendmmsg(), so that one syscall carries 64 trips through the IP and UDP
 * receive path (loopback delivers them before sendmmsg() returns). Only the
 * sendmmsg() calls are timed; draining the sockets is not.
 *
 * Three figures per N:
 *   batch   ns per datagram over sendmmsg() batches, for SECONDS
 *   rtt     ns per round trip: one sendto() and the recv() of that datagram
 *   oneflow as batch, but every datagram is for socket 0: the lookup still
 *           sees N sockets, the enqueue always hits the same one, so this
 *           isolates the lookup from the cost of touching N sockets
 * With -U, a fourth figure:
 *   unconn  as batch, but from peers that no socket is connected to: the
 *           datagrams go to a reuseport group of two unconnected listeners,
 *           bound to the same address and port before the N sockets
 * With -G, the N connected sockets join that group (SO_REUSEPORT, same
 * owner) instead of staying out of it, so that the cost that connected
 * members add to unconnected traffic (has_conns: the lookup scores the
 * whole chain, and the group's hash skips connected members) shows in
 * unconn when compared with a run without -G.
 * With -H, each is measured with net.ipv4.udp_hash4=1 and 0, on the same
 * sockets in the same boot. Every N is measured ROUNDS times (default 3),
 * and with -H the order of the two settings alternates from round to round
 * (1 then 0, 0 then 1, ...), so that neither always runs on a warmer cache
 * or a quieter host; the report takes the median of the rounds. The benchmark runs in a netns of its own, with a UDP table
 * of SLOTS slots (net.ipv4.udp_child_hash_entries, default 65536), so that
 * every kernel and setting is measured with the same table size. It also
 * lifts net.ipv4.udp_mem: each socket that received keeps up to a page of
 * forward allocation, and 100k of them exhaust the default accounting
 * limit, after which datagrams are dropped instead of queued.
 * Output: one line per measurement,
 *   result config=<hash4=1|hash4=0|kernel> n=<N> round=<R> \
 *          mode=<batch|oneflow|rtt|unconn|unconn-members> ns=<ns> \
 *          rate=<datagrams/s> delivered=<got>/<sent>
 * where delivered counts the datagrams of the mode so far; the benchmark
 * exits 3 when any line has fewer delivered than sent.
 * Sockets are added as N grows, so the largest N sets the memory needed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT		4433
#define BATCH		64
#define PEERS_PER_ADDR	60000
#define PAYLOAD		16

struct pkt {
	struct iphdr ip;
	struct udphdr udp;
	char data[PAYLOAD];
} __attribute__((packed));

static int *socks;
static int nsocks;
static int raw;
static int listeners[2];
static int group_members;
static long sent, delivered;

static void die(const char *what)
{
	fprintf(stderr, "udp_lookup_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void peer_of(int i, struct in_addr *addr, int *port)
{
	addr->s_addr = htonl(0x7f000002 + i / PEERS_PER_ADDR);
	*port = 2000 + i % PEERS_PER_ADDR;
}

static void add_sockets(int n)
{
	struct sockaddr_in local = {
		.sin_family = AF_INET, .sin_port = htons(PORT),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, i;

	socks = realloc(socks, n * sizeof(*socks));
	if (!socks)
		die("realloc");
	for (i = nsocks; i < n; i++) {
		struct sockaddr_in peer = { .sin_family = AF_INET };
		int port, fd;

		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fd < 0)
			die("socket");
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
			die("SO_REUSEADDR");
		if (group_members &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
			die("SO_REUSEPORT");
		if (bind(fd, (void *)&local, sizeof(local)))
			die("bind");
		peer_of(i, &peer.sin_addr, &port);
		peer.sin_port = htons(port);
		if (connect(fd, (void *)&peer, sizeof(peer)))
			die("connect");
		socks[i] = fd;
	}
	nsocks = n;
}

/* The two unconnected members of the group on 127.0.0.1:4433. */
static void add_listeners(void)
{
	struct sockaddr_in local = {
		.sin_family = AF_INET, .sin_port = htons(PORT),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, i;

	for (i = 0; i < 2; i++) {
		listeners[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (listeners[i] < 0 ||
		    setsockopt(listeners[i], SOL_SOCKET, SO_REUSEADDR, &one,
			       sizeof(one)) ||
		    setsockopt(listeners[i], SOL_SOCKET, SO_REUSEPORT, &one,
			       sizeof(one)) ||
		    bind(listeners[i], (void *)&local, sizeof(local)))
			die("listener");
	}
}

/* Peer @i of the unconnected traffic: 127.1.0.1, ports 1000-1999. */
static void stranger_of(int i, struct in_addr *addr, int *port)
{
	addr->s_addr = htonl(0x7f010001);
	*port = 1000 + i % 1000;
}

static void fill(struct pkt *p, int i, int stranger)
{
	struct in_addr src;
	int port;

	if (stranger)
		stranger_of(i, &src, &port);
	else
		peer_of(i, &src, &port);
	memset(p, 0, sizeof(*p));
	p->ip.version = 4;
	p->ip.ihl = 5;
	p->ip.ttl = 64;
	p->ip.protocol = IPPROTO_UDP;
	p->ip.tot_len = htons(sizeof(*p));
	p->ip.saddr = src.s_addr;
	p->ip.daddr = htonl(INADDR_LOOPBACK);
	p->udp.source = htons(port);
	p->udp.dest = htons(PORT);
	p->udp.len = htons(sizeof(p->udp) + PAYLOAD);
	p->udp.check = 0;	/* no checksum: allowed over IPv4 */
}

static long drain_fd(int fd)
{
	char buf[64];
	long got = 0;

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		got++;
	return got;
}

static long drain(int from, int to)
{
	long got = 0;
	int i;

	for (i = from; i < to; i++)
		got += drain_fd(socks[i]);
	return got;
}

enum traffic { ROUND_ROBIN, ONE_FLOW, UNCONNECTED };

/* ns per datagram over sendmmsg() batches to the first n sockets, to socket
 * 0 only (ONE_FLOW) while n sockets exist, or to the listeners from peers
 * that no socket is connected to (UNCONNECTED).
 */
static double batch(int n, double seconds, enum traffic tr)
{
	static struct pkt pkts[BATCH];
	struct sockaddr_in dst = {
		.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	double busy = 0, start = now();
	long since_drain = 0, k = 0;
	int i;

	sent = delivered = 0;
	for (i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ &pkts[i], sizeof(pkts[i]) };
		msgs[i] = (struct mmsghdr){ .msg_hdr = {
			.msg_name = &dst, .msg_namelen = sizeof(dst),
			.msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	do {
		double t;

		for (i = 0; i < BATCH; i++)
			fill(&pkts[i], tr == ONE_FLOW ? 0 : (k + i) % n,
			     tr == UNCONNECTED);
		t = now();
		if (sendmmsg(raw, msgs, BATCH, 0) != BATCH)
			die("sendmmsg");
		busy += now() - t;
		k += BATCH;
		sent += BATCH;
		since_drain += BATCH;
		/* Keep queues short, outside the timed part. */
		if (tr == UNCONNECTED) {
			delivered += drain_fd(listeners[0]) +
				     drain_fd(listeners[1]);
			since_drain = 0;
		} else if (tr == ONE_FLOW || n == 1) {
			delivered += drain(0, 1);
			since_drain = 0;
		} else if (since_drain / n >= 64) {
			delivered += drain(0, n);
			since_drain = 0;
		}
	} while (now() - start < seconds);
	delivered += drain(0, n) + drain_fd(listeners[0]) +
		     drain_fd(listeners[1]);
	return busy * 1e9 / sent;
}

/* ns per round trip: one datagram sent and received, peers round-robin. */
static double rtt(int n, double seconds)
{
	struct sockaddr_in dst = {
		.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	double start = now();
	struct pkt p;
	long k = 0;
	char buf[64];

	sent = delivered = 0;
	do {
		int i = k++ % n;

		fill(&p, i, 0);
		if (sendto(raw, &p, sizeof(p), 0, (void *)&dst, sizeof(dst)) < 0)
			die("sendto");
		sent++;
		if (recv(socks[i], buf, sizeof(buf), 0) > 0)
			delivered++;
	} while (now() - start < seconds || k < 20);
	return (now() - start) * 1e9 / sent;
}

static void write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		die(path);
	close(fd);
}

static int set_hash4(int on)
{
	int fd = open("/proc/sys/net/ipv4/udp_hash4", O_WRONLY);

	if (fd < 0)
		return -1;
	if (write(fd, on ? "1" : "0", 1) != 1)
		die("write udp_hash4");
	close(fd);
	return 0;
}

static int round_nr, lost;

static void report(const char *config, int n, const char *mode, double ns)
{
	printf("result config=%s n=%d round=%d mode=%s ns=%.1f rate=%.0f delivered=%ld/%ld\n",
	       config, n, round_nr, mode, ns, 1e9 / ns, delivered, sent);
	lost |= delivered != sent;
	fflush(stdout);
}

static int unconn;

static void measure(const char *config, int n, double seconds)
{
	batch(n, seconds / 4, ROUND_ROBIN);	/* warm up, not reported */
	report(config, n, "batch", batch(n, seconds, ROUND_ROBIN));
	report(config, n, "oneflow", batch(n, seconds / 2, ONE_FLOW));
	report(config, n, "rtt", rtt(n, seconds / 2));
	if (unconn)
		report(config, n, group_members ? "unconn-members" : "unconn",
		       batch(n, seconds, UNCONNECTED));
}

int main(int argc, char **argv)
{
	char sizes[256] = "1,500,10000,100000", *tok, *save, slots[16] = "65536";
	char entries[32] = "?";
	FILE *f;
	struct ifreq ifr = { .ifr_name = "lo" };
	double seconds = 2;
	int opt, toggle = 0, one = 1, fd, rounds = 3;
	struct rlimit rl;

	while ((opt = getopt(argc, argv, "n:t:r:s:HUG")) != -1) {
		switch (opt) {
		case 'n':
			snprintf(sizes, sizeof(sizes), "%s", optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 's':
			snprintf(slots, sizeof(slots), "%s", optarg);
			break;
		case 'H':
			toggle = 1;
			break;
		case 'U':
			unconn = 1;
			break;
		case 'G':
			unconn = 1;
			group_members = 1;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n N,...] [-t SECONDS] [-r ROUNDS] [-s SLOTS] [-H] [-U] [-G]\n",
				argv[0]);
			return 2;
		}
	}
	if (rounds < 1) {
		fprintf(stderr, "udp_lookup_bench: bad ROUNDS %d\n", rounds);
		return 2;
	}
	write_sysctl("/proc/sys/net/ipv4/udp_child_hash_entries", slots);
	write_sysctl("/proc/sys/net/ipv4/udp_mem", "4194304 4194304 4194304");
	if (unshare(CLONE_NEWNET))
		die("unshare");
	f = fopen("/proc/sys/net/ipv4/udp_hash_entries", "r");
	if (!f || !fgets(entries, sizeof(entries), f))
		die("udp_hash_entries");
	fclose(f);
	entries[strcspn(entries, "\n")] = 0;
	printf("# udp hash table of this netns: %s slots\n", entries);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		die("SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		die("SIOCSIFFLAGS");
	close(fd);
	raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (raw < 0 || setsockopt(raw, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)))
		die("raw socket");
	if (toggle && set_hash4(1))
		die("net.ipv4.udp_hash4 (-H needs the patched kernel)");
	add_listeners();

	for (tok = strtok_r(sizes, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int n = atoi(tok);
		double t0 = now();

		if (n < 1) {
			fprintf(stderr, "udp_lookup_bench: bad N '%s'\n", tok);
			return 2;
		}
		if (getrlimit(RLIMIT_NOFILE, &rl))
			die("getrlimit");
		if (rl.rlim_cur < (rlim_t)n + 64) {
			rl.rlim_cur = n + 64;
			if (rl.rlim_max < rl.rlim_cur)
				rl.rlim_max = rl.rlim_cur;
			if (setrlimit(RLIMIT_NOFILE, &rl))
				die("RLIMIT_NOFILE");
		}
		add_sockets(n);
		fprintf(stderr, "# n=%d: sockets ready in %.1f s\n", n, now() - t0);
		for (round_nr = 0; round_nr < rounds; round_nr++) {
			int j, on;

			if (!toggle) {
				measure("kernel", n, seconds);
				continue;
			}
			for (j = 0; j < 2; j++) {
				/* 1, 0 in even rounds; 0, 1 in odd ones. */
				on = (j + round_nr + 1) % 2;
				set_hash4(on);
				measure(on ? "hash4=1" : "hash4=0", n, seconds);
			}
			set_hash4(1);
		}
	}
	if (lost)
		fprintf(stderr, "udp_lookup_bench: datagrams were lost\n");
	return lost ? 3 : 0;
}
