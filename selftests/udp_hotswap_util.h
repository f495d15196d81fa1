/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the programs of this repository that are not part of
 * the series (udp_fuzz, udp_fault): lo up in a new netns, whole-file
 * reads and writes, one field of /proc/net/snmp or /proc/net/netstat, and
 * the loopback address of each variant (IPv4, IPv6, v4-mapped).
 */
#ifndef UDP_HOTSWAP_UTIL_H
#define UDP_HOTSWAP_UTIL_H
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return -1;
	ret = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (!ret)
		ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return ret;
}

static int write_file(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -errno;
}

static int write_str(const char *path, const char *s)
{
	return write_file(path, s, strlen(s));
}

static long read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long n, total = 0;

	if (fd < 0)
		return -errno;
	while (size - total > 1 &&
	       (n = read(fd, buf + total, size - 1 - total)) > 0)
		total += n;
	buf[total] = '\0';
	close(fd);
	return total;
}

/* Value of field @name of the @table line pair of /proc/net/snmp or
 * /proc/net/netstat ("Udp:", "TcpExt:"); -1 if absent. /proc/net is the
 * main thread's netns: a thread that entered another one reads
 * /proc/thread-self/net/.
 */
static long mib(const char *path, const char *table, const char *name)
{
	static __thread char buf[16384];
	size_t tl = strlen(table);
	char *hdr, *val, *end, *h, *v, *hs, *vs;

	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* The first line of @table names the fields, the second has them. */
	for (hdr = buf; hdr; hdr = strchr(hdr, '\n'), hdr = hdr ? hdr + 1 : NULL)
		if (!strncmp(hdr, table, tl) && hdr[tl] == ' ')
			break;
	val = hdr ? strchr(hdr, '\n') : NULL;
	if (!val || strncmp(val + 1, table, tl))
		return -1;
	*val++ = '\0';
	end = strchr(val, '\n');
	if (end)
		*end = '\0';
	h = strtok_r(hdr, " ", &hs);
	v = strtok_r(val, " ", &vs);
	while ((h = strtok_r(NULL, " ", &hs)) && (v = strtok_r(NULL, " ", &vs)))
		if (!strcmp(h, name))
			return atol(v);
	return -1;
}

enum variant { V4, V6, MAPPED, NVARIANTS };

/* The loopback address of @v, as a socket of family sock_family(@v) sees it. */
static inline socklen_t loop_addr(enum variant v, int port, void *ssp)
{
	struct sockaddr_storage *ss = ssp;
	struct sockaddr_in *sin = (void *)ss;
	struct sockaddr_in6 *sin6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (v == V4) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	if (v == V6)
		sin6->sin6_addr = in6addr_loopback;
	else
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6->sin6_addr);
	return sizeof(*sin6);
}

static inline int sock_family(enum variant v)
{
	return v == V4 ? AF_INET : AF_INET6;
}

#endif
