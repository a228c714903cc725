/* Helpers for tests of ports: numbered frames that can be checked end to end. */
#ifndef XRING_TEST_PORT_FRAMES_H
#define XRING_TEST_PORT_FRAMES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "nic/port.h"

/* Pattern byte i of frame seq: every bit of seq changes every byte (31 is odd). */
static inline uint8_t pf_byte(uint32_t seq, uint32_t i)
{
	return (uint8_t) ((seq ^ seq >> 8 ^ seq >> 16 ^ seq >> 24) * 31 + i * 7);
}

/* A frame numbered seq, len bytes: Ethernet-looking header, the number, a pattern from it. */
static inline void pf_fill(void *data, uint32_t len, uint32_t seq)
{
	uint8_t *p = data;

	for (uint32_t i = 0; i < len; i++)
		p[i] = pf_byte(seq, i);
	if (len >= 18) {
		memset(p, 0xff, 6);
		p[12] = 0x88;
		p[13] = 0xb5; /* local experimental ethertype */
		memcpy(p + 14, &seq, 4);
	}
}

/* The number of a frame made by pf_fill(), or -1 when the frame is not intact. */
static inline int64_t pf_check(const void *data, uint32_t len)
{
	const uint8_t *p = data;
	uint32_t seq;

	if (len < 18)
		return -1;
	memcpy(&seq, p + 14, 4);
	for (uint32_t i = 0; i < len; i++) {
		if (i < 6 && p[i] != 0xff)
			return -1;
		if (((i >= 6 && i < 12) || i >= 18) && p[i] != pf_byte(seq, i))
			return -1;
	}
	if (p[12] != 0x88 || p[13] != 0xb5)
		return -1;
	return seq;
}

/* Send one numbered frame on q and flush; false when no buffer or not accepted. */
static inline bool pf_send(struct port_queue *q, uint32_t seq, uint32_t len)
{
	struct port_frame f;

	if (port_tx_alloc(q, &f, 1) != 1 || f.len < len)
		return false;
	pf_fill(f.data, len, seq);
	f.len = len;
	if (port_tx_post(q, &f, 1) != 1)
		return false;
	return port_tx_flush(q) == 0;
}

#endif
