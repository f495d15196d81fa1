/* SPDX-License-Identifier: GPL-2.0 */
/*
 * UDP_BIND_CONNECT for the programs of this repository that are not part
 * of the series (benchmarks, the module's test, the demo server): from the
 * patched <linux/udp.h> when it is there, else the same values here, so
 * that they also build against older headers (where the option then
 * fails with ENOPROTOOPT).
 */
#ifndef UDP_BIND_CONNECT_UAPI_H
#define UDP_BIND_CONNECT_UAPI_H
#include <sys/socket.h>
#include <linux/udp.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_BIND_CONNECT
#define UDP_BIND_CONNECT 105
struct udp_bind_connect {
	struct sockaddr_storage local;
	struct sockaddr_storage remote;
};
#endif

#endif
