/*
 * An in-memory device: frames the interface sends are queued in a fixed ring that the caller
 * drains. Used by packet-level tests, fuzzers and the simulation link; all memory is taken at
 * init.
 */
#ifndef XRING_STACK_IFACE_TXQ_H
#define XRING_STACK_IFACE_TXQ_H

#include <stddef.h>
#include <stdint.h>

#include "stack/iface/dev.h"

struct txq {
	uint8_t *mem; /* nframes * frame_cap bytes */
	uint32_t *lens;
	uint32_t frame_cap;
	unsigned nframes;
	unsigned head;         /* oldest queued frame */
	unsigned count;        /* queued frames */
	unsigned allocated;    /* 1 while a buffer is lent out by tx_alloc */
	uint64_t posted, full; /* frames posted; tx_alloc calls refused because the ring was full */
};

extern const struct iface_dev_ops txq_ops;

/* 0, -EINVAL for zero sizes, -ENOMEM. */
int txq_init(struct txq *q, unsigned nframes, uint32_t frame_cap);
void txq_fini(struct txq *q);

/* The oldest queued frame and its length, or NULL when empty. Valid until txq_pop(). */
const uint8_t *txq_peek(const struct txq *q, uint32_t *len);
void txq_pop(struct txq *q);

static inline struct iface_dev txq_dev(struct txq *q)
{
	return (struct iface_dev){.ops = &txq_ops, .ctx = q};
}

#endif
