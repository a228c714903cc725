/*
 * Test frames for memif tests and benchmarks: an Ethernet header, a 64-bit sequence number, a
 * pattern derived from it, and a checksum over everything before it in the last 8 bytes. Also
 * the send and receive loops both sides of a two-process test run.
 */
#ifndef XRING_TEST_MEMIF_FRAMES_H
#define XRING_TEST_MEMIF_FRAMES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "nic/memif/memif.h"

#define MF_ETHERTYPE 0x88b5 /* local experimental */
#define MF_K         0x9E3779B97F4A7C15ull
#define MF_MAX       16384

static inline uint64_t mf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static inline uint64_t mf_sum(const uint8_t *b, size_t n)
{
	uint64_t h = 0x12345678, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001B3ull + (h >> 29);
	}
	if (i < n) {
		w = 0;
		memcpy(&w, b + i, n - i);
		h = (h ^ w) * 0x100000001B3ull + (h >> 29);
	}
	return h;
}

/* Build frame seq of size bytes (size >= 30) in b. */
static inline void mf_build(uint8_t *b, size_t size, uint64_t seq)
{
	static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
	size_t body = size - 8, off;
	uint64_t w, sum;

	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = MF_ETHERTYPE >> 8;
	b[13] = MF_ETHERTYPE & 0xff;
	memcpy(b + 14, &seq, 8);
	for (off = 22, w = seq * MF_K; off + 8 <= body; off += 8, w++)
		memcpy(b + off, &w, 8);
	if (off < body)
		memcpy(b + off, &w, body - off);
	sum = mf_sum(b, body);
	memcpy(b + body, &sum, 8);
}

/* Check a whole frame; returns its sequence number, or UINT64_MAX when it is damaged. */
static inline uint64_t mf_check(const uint8_t *b, size_t size)
{
	uint64_t seq, sum;

	if (size < 30 || b[12] != (MF_ETHERTYPE >> 8) || b[13] != (MF_ETHERTYPE & 0xff))
		return UINT64_MAX;
	memcpy(&sum, b + size - 8, 8);
	if (mf_sum(b, size - 8) != sum)
		return UINT64_MAX;
	memcpy(&seq, b + 14, 8);
	return seq;
}

struct mf_stats {
	uint64_t frames, bad, out_of_order, polls;
};

/*
 * Send count frames of size bytes on queue 0, chaining buffers when size exceeds one. Returns
 * the number of frames handed to the port before deadline_ms.
 */
static inline uint64_t mf_send(struct port *p, uint64_t count, size_t size, uint64_t deadline_ms)
{
	struct port_queue *q = p->queues[0];
	struct port_frame spare[256], pend[256];
	unsigned nspare = 0, npend = 0, spin = 0;
	uint64_t seq = 0;
	static uint8_t tmp[MF_MAX];

	while (seq < count || npend) {
		if ((++spin & 1023) == 0 || !memif_connected(p)) {
			memif_poll(p);
			if ((spin & 0xffff) == 0 && mf_now_ms() > deadline_ms)
				break;
			if (!memif_connected(p)) {
				nspare = npend = 0; /* their buffers went with the connection */
				continue;
			}
		}
		if (npend == 0) {
			unsigned pieces, cap, want;
			int n = port_tx_alloc(q, spare + nspare, 128 - nspare);

			if (n > 0)
				nspare += (unsigned) n;
			if (nspare == 0) {
				port_tx_reap(q, NULL, 0);
				sched_yield(); /* ring full: let the receiver run if we share a CPU
						*/
				continue;
			}
			cap = spare[0].len;
			pieces = (unsigned) ((size + cap - 1) / cap);
			want = nspare / pieces;
			if (want > count - seq)
				want = (unsigned) (count - seq);
			for (unsigned f = 0; f < want; f++) {
				const uint8_t *src;
				size_t left = size;

				if (pieces == 1) {
					mf_build(spare[nspare - 1].data, size, seq);
				} else {
					mf_build(tmp, size, seq);
				}
				src = tmp;
				for (unsigned k = 0; k < pieces; k++) {
					struct port_frame fr = spare[--nspare];
					size_t len = left < fr.len ? left : fr.len;

					if (pieces > 1)
						memcpy(fr.data, src, len);
					src += len;
					left -= len;
					fr.len = (uint32_t) len;
					fr.flags = left ? PORT_F_MORE : 0;
					pend[npend++] = fr;
				}
				seq++;
			}
		}
		if (npend) {
			int k = port_tx_post(q, pend, npend);

			if (k > 0) {
				npend -= (unsigned) k;
				memmove(pend, pend + k, npend * sizeof(pend[0]));
			}
			port_tx_flush(q);
			if (npend) {
				port_tx_reap(q, NULL, 0);
				if (k <= 0)
					sched_yield();
			}
		}
	}
	return seq;
}

/* Receive and check count frames of size bytes on queue 0, in order from seq 0. */
static inline void mf_recv(struct port *p, uint64_t count, size_t size, uint64_t deadline_ms,
			   struct mf_stats *st)
{
	struct port_queue *q = p->queues[0];
	struct port_frame fr[256];
	static uint8_t asm_buf[MF_MAX];
	size_t have = 0;
	unsigned spin = 0;

	while (st->frames < count) {
		int n = port_rx_poll(q, fr, 256);

		st->polls++;
		if (n <= 0) {
			sched_yield(); /* ring empty: let the sender run if we share a CPU */
			if ((++spin & 1023) == 0) {
				memif_poll(p);
				if (mf_now_ms() > deadline_ms)
					break;
			}
			continue;
		}
		for (int i = 0; i < n; i++) {
			const uint8_t *b = fr[i].data;
			size_t len = fr[i].len;
			uint64_t seq;

			if (have == 0 && !(fr[i].flags & PORT_F_MORE)) {
				seq = len == size ? mf_check(b, len) : UINT64_MAX;
			} else {
				if (have + len > sizeof(asm_buf)) {
					st->bad++;
					have = 0;
					continue;
				}
				memcpy(asm_buf + have, b, len);
				have += len;
				if (fr[i].flags & PORT_F_MORE)
					continue;
				seq = have == size ? mf_check(asm_buf, have) : UINT64_MAX;
				have = 0;
			}
			if (seq == UINT64_MAX)
				st->bad++;
			else if (seq != st->frames)
				st->out_of_order++;
			st->frames++;
		}
		port_rx_release(q, fr, (unsigned) n);
	}
}

#endif
