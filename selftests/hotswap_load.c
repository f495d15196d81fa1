// SPDX-License-Identifier: GPL-2.0
/*
 * hotswap_load: the load generator of the udp-hotswap demo (make run).
 * F concurrent flows at a total rate R against hotswapd, each doing the
 * handshake (hotswap_proto.h) then a stream of DATA for a lifetime, then
 * CLOSE, and a new flow from a new port takes its place. K times during
 * the run it sends SIGHUP to the server's master (-P). It accounts for
 * every datagram by its number: echoed by the flow's owner, answered by
 * another worker (misdelivered) or never answered (lost); and for every
 * handshake: failed (never answered, not even in the drain), late (answered
 * after the 1 s the client waits before it gives the flow up and starts
 * another: a slow VM, not a loss) or split (its Initials answered by two
 * workers).
 *
 * usage: hotswap_load -P PID [-a ADDR] [-p PORT] [-f F] [-r R] [-t SEC]
 *                     [-i INITIALS] [-l LIFETIME_MS] [-k K] [-L LABEL]
 *                     [-c TIMELINE.csv]
 * Prints one "result" line: label, sent, echoed, lost, misdelivered,
 * hs_failed, hs_late, hs_split, hs_worst_ms (longest time from a flow's
 * first Initial to its HANDSHAKE), flows, reloads, reload_ms (worst time
 * from a SIGHUP to the first handshake of the new generation).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hotswap_proto.h"

#define HS_TIMEOUT_MS	1000
/* After the last send: wait for answers until none came for DRAIN_MS, at
 * most DRAIN_MAX_MS. A slow VM answers late; late is not lost.
 */
#define DRAIN_MS	1500
#define DRAIN_MAX_MS	15000
#define BUCKET_MS	100

enum { D_SENT, D_OWNER, D_OTHER };

struct dgram {
	uint32_t flow;
	uint32_t worker;	/* who answered */
	uint16_t bucket;	/* when it was sent */
	uint8_t state, type;
};

struct flow {
	int fd;
	uint32_t owner;		/* connection id from HANDSHAKE, 0 until then */
	uint32_t first_worker;	/* who answered its first Initial */
	long long start, next_send, end, hs_ms;
	bool failed, split;	/* failed: given up after HS_TIMEOUT_MS */
};

static struct dgram *dg;
static long ndg, maxdg, answered;
static long long last_answer;
static struct flow *flows;
static long nflows, maxflows;
static struct sockaddr_storage srv;
static socklen_t srvlen;
static long long t0;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "hotswap_load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void send_dg(long f, uint8_t type, uint8_t idx, uint8_t total)
{
	struct hs_hdr h = {
		.type = type, .n_index = idx, .n_total = total,
		.id = type == T_INITIAL ? (uint32_t)f + 1 : flows[f].owner,
		.flow = f, .seq = ndg,
	};

	if (ndg == maxdg) {
		maxdg *= 2;
		dg = realloc(dg, maxdg * sizeof(*dg));
		if (!dg)
			die("realloc");
	}
	dg[ndg] = (struct dgram){ .flow = f, .type = type,
				  .bucket = (now_ms() - t0) / BUCKET_MS };
	ndg++;
	/* One that does not leave is never answered: counted as lost. */
	send(flows[f].fd, &h, HDR_LEN, 0);
}

static long new_flow(int ep, int initials)
{
	long f = nflows++;
	int fd;

	if (nflows > maxflows)
		die("too many flows (raise -t or lower -f)");
	fd = socket(srv.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (void *)&srv, srvlen))
		die("client socket");
	flows[f] = (struct flow){ .fd = fd, .start = now_ms() };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd,
		  &(struct epoll_event){ .events = EPOLLIN, .data.u64 = f });
	for (int i = 0; i < initials; i++)
		send_dg(f, T_INITIAL, i, initials);
	return f;
}

static void receive(long f)
{
	struct hs_hdr h;
	struct flow *fl = &flows[f];

	while (recv(fl->fd, &h, sizeof(h), 0) == (ssize_t)HDR_LEN) {
		if (h.type == T_HANDSHAKE) {
			/* A late one still names the owner of the flow's
			 * Initials; the flow, given up, sends nothing more.
			 */
			if (!fl->owner) {
				fl->owner = h.id;
				fl->hs_ms = now_ms() - fl->start;
			}
			continue;
		}
		if (h.type != T_ECHO || h.seq >= ndg || dg[h.seq].flow != f ||
		    dg[h.seq].worker)
			continue;
		dg[h.seq].worker = h.worker;
		answered++;
		last_answer = now_ms();
		if (h.echoed == T_INITIAL) {
			if (!fl->first_worker)
				fl->first_worker = h.worker;
			else if (fl->first_worker != h.worker)
				fl->split = true;
		}
	}
}

static int parse_addr(const char *s, int port)
{
	struct sockaddr_in *a4 = (void *)&srv;
	struct sockaddr_in6 *a6 = (void *)&srv;

	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		srvlen = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		srvlen = sizeof(*a6);
		return 0;
	}
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: hotswap_load -P PID [-a ADDR] [-p PORT] [-f F] [-r R] [-t SEC] [-i INITIALS] [-l LIFETIME_MS] [-k K] [-L LABEL] [-c TIMELINE.csv]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int F = 64, R = 1000, T = 10, initials = 3, lifetime = 2000, K = 5;
	int port = 4433, opt, ep, reloads = 0, nb;
	const char *addr = "127.0.0.1", *label = "run", *csv = NULL;
	long long *reload_at, *reload_seen, end, next_reload, now, interval;
	long *slot, echoed = 0, lost = 0, other = 0, failed = 0, split = 0;
	long late = 0;
	long long worst = 0, hs_worst = 0;
	struct epoll_event ev[64];
	struct rlimit rl;
	pid_t master = 0;
	uint32_t gen_seen = 1;

	while ((opt = getopt(argc, argv, "P:a:p:f:r:t:i:l:k:L:c:")) != -1) {
		switch (opt) {
		case 'P': master = atoi(optarg); break;
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'f': F = atoi(optarg); break;
		case 'r': R = atoi(optarg); break;
		case 't': T = atoi(optarg); break;
		case 'i': initials = atoi(optarg); break;
		case 'l': lifetime = atoi(optarg); break;
		case 'k': K = atoi(optarg); break;
		case 'L': label = optarg; break;
		case 'c': csv = optarg; break;
		default: usage();
		}
	}
	if (master <= 0 || F < 1 || R < F || T < 1 || initials < 1 ||
	    initials > 8 || lifetime < 100 || K < 0 || parse_addr(addr, port))
		usage();

	maxflows = (long)F * (T * 1000 / lifetime + 2) * 2 + 16;
	rl.rlim_cur = rl.rlim_max = maxflows + 64;
	setrlimit(RLIMIT_NOFILE, &rl);
	flows = calloc(maxflows, sizeof(*flows));
	maxdg = (long)R * T + 1024;
	dg = calloc(maxdg, sizeof(*dg));
	slot = calloc(F, sizeof(*slot));
	reload_at = calloc(K + 1, sizeof(long long));
	reload_seen = calloc(K + 1, sizeof(long long));
	ep = epoll_create1(0);
	if (!flows || !dg || !slot || ep < 0)
		die("setup");

	interval = (long long)F * 1000 / R;	/* ms between a flow's datagrams */
	t0 = now_ms();
	end = t0 + T * 1000LL;
	for (int i = 0; i < F; i++) {
		slot[i] = new_flow(ep, initials);
		/* Spread the flows' lifetimes so they do not end together. */
		flows[slot[i]].end = flows[slot[i]].start + lifetime * (i + 1) / F;
	}
	next_reload = K ? t0 + T * 1000LL / (K + 1) : end + 1;

	while ((now = now_ms()) < end ||
	       (answered < ndg && now < end + DRAIN_MAX_MS &&
		now < (last_answer > end ? last_answer : end) + DRAIN_MS)) {
		if (now < end && reloads < K && now >= next_reload) {
			reload_at[reloads++] = now;
			kill(master, SIGHUP);
			next_reload = t0 + T * 1000LL * (reloads + 1) / (K + 1);
		}
		for (int i = 0; i < F && now < end; i++) {
			struct flow *fl = &flows[slot[i]];

			if (!fl->owner) {
				if (now - fl->start > HS_TIMEOUT_MS) {
					fl->failed = true;
					slot[i] = new_flow(ep, initials);
					flows[slot[i]].end = now + lifetime;
				}
				continue;
			}
			if (!fl->next_send) {
				/* First handshake of a newer generation. */
				if (CID_GEN(fl->owner) > gen_seen) {
					gen_seen = CID_GEN(fl->owner);
					if (gen_seen - 1 <= (uint32_t)reloads &&
					    !reload_seen[gen_seen - 2])
						reload_seen[gen_seen - 2] = now;
				}
				fl->next_send = now;
			}
			if (now >= fl->end) {
				send_dg(slot[i], T_CLOSE, 0, 0);
				slot[i] = new_flow(ep, initials);
				flows[slot[i]].end = now + lifetime;
				continue;
			}
			while (fl->next_send <= now) {
				send_dg(slot[i], T_DATA, 0, 0);
				fl->next_send += interval ? interval : 1;
			}
		}
		nb = epoll_wait(ep, ev, 64, 1);
		for (int i = 0; i < nb; i++)
			receive(ev[i].data.u64);
	}

	/* Account: a datagram is owner-echoed, answered by another worker
	 * (misdelivered) or lost. A flow without a handshake owns nothing:
	 * its answered Initials count as echoed, the flow as failed.
	 */
	for (long f = 0; f < nflows; f++) {
		failed += !flows[f].owner;
		late += flows[f].owner && flows[f].failed;
		split += flows[f].split;
		if (flows[f].hs_ms > hs_worst)
			hs_worst = flows[f].hs_ms;
	}
	for (long i = 0; i < ndg; i++) {
		uint32_t owner = flows[dg[i].flow].owner;

		if (!dg[i].worker)
			dg[i].state = D_SENT, lost++;
		else if (owner && dg[i].worker != owner)
			dg[i].state = D_OTHER, other++;
		else
			dg[i].state = D_OWNER, echoed++;
	}
	for (int r = 0; r < reloads; r++) {
		long long d = reload_seen[r] ? reload_seen[r] - reload_at[r] : -1;

		if (d < 0 || d > worst)
			worst = d < 0 ? -1 : d;
		if (worst < 0)
			break;
	}
	printf("result label=%s sent=%ld echoed=%ld lost=%ld misdelivered=%ld hs_failed=%ld hs_late=%ld hs_split=%ld hs_worst_ms=%lld flows=%ld reloads=%d reload_ms=%lld\n",
	       label, ndg, echoed, lost, other, failed, late, split, hs_worst,
	       nflows, reloads, worst);

	if (csv) {
		long nbuckets = (T * 1000 + DRAIN_MS) / BUCKET_MS + 1;
		long (*b)[3] = calloc(nbuckets, sizeof(*b));
		FILE *out = fopen(csv, "w");

		if (!b || !out)
			die(csv);
		for (long i = 0; i < ndg; i++)
			if (dg[i].bucket < nbuckets)
				b[dg[i].bucket][dg[i].state]++;
		fprintf(out, "t_ms,sent,lost,misdelivered,reload\n");
		for (long i = 0; i < nbuckets; i++) {
			int rl_mark = 0;

			for (int r = 0; r < reloads; r++)
				rl_mark |= (reload_at[r] - t0) / BUCKET_MS == i;
			fprintf(out, "%ld,%ld,%ld,%ld,%d\n", i * BUCKET_MS,
				b[i][0] + b[i][1] + b[i][2], b[i][D_SENT],
				b[i][D_OTHER], rl_mark);
		}
		fclose(out);
	}
	return lost || other || failed || split;
}
