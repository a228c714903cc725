/* A ring of outgoing frames in memory, drained by the caller. */
#include "stack/iface/txq.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

int txq_init(struct txq *q, unsigned nframes, uint32_t frame_cap)
{
	*q = (struct txq){0};
	if (!nframes || !frame_cap)
		return -EINVAL;
	q->mem = calloc(nframes, frame_cap);
	q->lens = calloc(nframes, sizeof(*q->lens));
	if (!q->mem || !q->lens) {
		txq_fini(q);
		return -ENOMEM;
	}
	q->nframes = nframes;
	q->frame_cap = frame_cap;
	return 0;
}

void txq_fini(struct txq *q)
{
	free(q->mem);
	free(q->lens);
	*q = (struct txq){0};
}

static int txq_alloc(void *ctx, struct iface_txbuf *b)
{
	struct txq *q = ctx;
	unsigned slot;

	assert(!q->allocated);
	if (q->count == q->nframes) {
		q->full++;
		return -ENOBUFS;
	}
	slot = (q->head + q->count) % q->nframes;
	b->data = q->mem + (size_t) slot * q->frame_cap;
	b->cap = q->frame_cap;
	b->len = 0;
	b->id = slot;
	q->allocated = 1;
	return 0;
}

static void txq_post(void *ctx, const struct iface_txbuf *b)
{
	struct txq *q = ctx;

	assert(q->allocated && b->id == (q->head + q->count) % q->nframes);
	assert(b->len <= q->frame_cap);
	q->lens[b->id] = b->len;
	q->count++;
	q->posted++;
	q->allocated = 0;
}

static void txq_abort(void *ctx, const struct iface_txbuf *b)
{
	struct txq *q = ctx;

	assert(q->allocated);
	q->allocated = 0;
}

const struct iface_dev_ops txq_ops = {
	.tx_alloc = txq_alloc,
	.tx_post = txq_post,
	.tx_abort = txq_abort,
};

const uint8_t *txq_peek(const struct txq *q, uint32_t *len)
{
	if (!q->count)
		return NULL;
	*len = q->lens[q->head];
	return q->mem + (size_t) q->head * q->frame_cap;
}

void txq_pop(struct txq *q)
{
	if (!q->count)
		return;
	q->head = (q->head + 1) % q->nframes;
	q->count--;
}
