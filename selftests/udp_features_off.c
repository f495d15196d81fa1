// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD library for the "features off" run of the kernel's own
 * selftests (scripts/run-selftests patched-nohash4). Those tests create
 * their network namespaces themselves, with unshare(CLONE_NEWNET) or
 * "ip netns add", and a new netns starts with net.ipv4.udp_hash4=1 and
 * udp_migrate=0. After every unshare() that makes a new netns, this sets
 * both to 0 in it, so that the run compares the series at its defaults
 * with the same kernel and the features off, unchanged tests on both.
 * A write that fails ends the process with status 125: a run that
 * silently kept a feature on would compare nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void write_zero(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "0\n", 2) != 2) {
		fprintf(stderr, "udp_features_off: cannot write 0 to %s: %s\n",
			path, strerror(errno));
		_exit(125);
	}
	close(fd);
}

int unshare(int flags)
{
	static int (*real_unshare)(int);
	int saved, ret;

	if (!real_unshare)
		real_unshare = (int (*)(int))dlsym(RTLD_NEXT, "unshare");
	ret = real_unshare(flags);
	if (ret == 0 && (flags & CLONE_NEWNET)) {
		saved = errno;
		write_zero("/proc/sys/net/ipv4/udp_hash4");
		write_zero("/proc/sys/net/ipv4/udp_migrate");
		errno = saved;
	}
	return ret;
}
