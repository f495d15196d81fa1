/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The QUIC-like protocol of hotswapd and hotswap_load (make run): every
 * datagram is one struct hs_hdr. A flow sends n_total Initials carrying
 * its client id; the worker that has seen all of them answers HANDSHAKE
 * with its connection id (generation << 16 | sockarray key); then the
 * flow sends DATA with that id and ends with CLOSE. The server answers
 * every datagram it serves with ECHO, naming the worker in "worker".
 */
#ifndef HOTSWAP_PROTO_H
#define HOTSWAP_PROTO_H
#include <stdint.h>

enum { T_INITIAL = 1, T_HANDSHAKE, T_DATA, T_ECHO, T_CLOSE };

struct hs_hdr {
	uint8_t type;
	uint8_t n_index;	/* Initial: its index, from 0 */
	uint8_t n_total;	/* Initial: how many the flow sends */
	uint8_t echoed;		/* ECHO: the type of what it answers */
	uint32_t id;		/* Initial: client id; others: connection id */
	uint32_t flow;		/* the client's flow number */
	uint32_t seq;		/* the client's datagram number */
	uint32_t worker;	/* replies: connection id of the worker */
};

#define HDR_LEN		sizeof(struct hs_hdr)
#define CID_GEN(cid)	((cid) >> 16)

#endif
