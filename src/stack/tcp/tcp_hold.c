/*
 * Kept frames: the receive side's second copy saved. Without them, in-order payload that no
 * receive is waiting for goes from the device's buffer into the connection's receive ring, and
 * from there into the application's buffer when it reads. A stream whose reader is busy when
 * its data arrives (the common case at full speed) pays both copies for every byte. Here the
 * stack keeps the frame instead, lent by the layer that fed it, and the read copies straight
 * out of it.
 *
 * Kept bytes always come first in the stream: a frame is kept only while the ring holds nothing
 * unread and nothing out of order, so what the ring takes afterwards follows them. The window
 * counts them as unread. A device cannot receive into a buffer the stack keeps (and a memif
 * peer cannot reuse any slot behind it), so frames are few (TCP_HOLD_MAX per connection,
 * TCP_HELD_MAX per stack) and short-lived: tcp_hold_trim() moves the bytes of frames kept too
 * long into their rings, ahead of what is there, and gives the frames back.
 */
#include <errno.h>
#include <string.h>

#include "stack/tcp/tcp.h"

int tcp_set_unhold(struct tcp_stack *st, tcp_unhold_fn fn, void *ctx)
{
	if (!fn)
		return -EINVAL;
	st->unhold = fn;
	st->unhold_ctx = ctx;
	return 0;
}

void tcp_hold_offer(struct tcp_stack *st, uint32_t id)
{
	st->offer = st->unhold && id < TCP_HELD_MAX && st->held[id].tcb < 0 ? id : TCP_NO_FRAME;
	st->offer_taken = false;
}

bool tcp_hold_taken(const struct tcp_stack *st)
{
	return st->offer_taken;
}

bool tcp_hold_take(struct tcp_stack *st, struct tcb *t, const uint8_t *data, uint32_t len)
{
	uint32_t id = st->offer;
	struct tcp_held *h;

	if (id == TCP_NO_FRAME || st->offer_taken || !len || t->nhold == TCP_HOLD_MAX ||
	    t->rbuf_len || t->nooo)
		return false;
	h = &st->held[id];
	*h = (struct tcp_held){
		.data = data, .len = len, .tcb = t->idx, .next = -1, .since = st->now};
	if (t->nhold)
		st->held[t->hold_last].next = (int32_t) id;
	else
		t->hold_first = (int8_t) id;
	t->hold_last = (int8_t) id;
	t->nhold++;
	t->hold_bytes += len;
	st->nheld++;
	st->offer_taken = true;
	return true;
}

/* The connection's oldest kept frame goes back. */
static void give_back(struct tcp_stack *st, struct tcb *t)
{
	uint32_t id = (uint32_t) t->hold_first;
	struct tcp_held *h = &st->held[id];

	t->hold_first = (int8_t) h->next;
	t->nhold--;
	h->tcb = -1;
	st->nheld--;
	st->unhold(st->unhold_ctx, id);
}

uint32_t tcp_hold_read(struct tcp_stack *st, struct tcb *t, uint8_t *dst, uint32_t len)
{
	uint32_t done = 0;

	while (t->nhold && done < len) {
		struct tcp_held *h = &st->held[t->hold_first];
		uint32_t n = h->len < len - done ? h->len : len - done;

		memcpy(dst + done, h->data, n);
		h->data += n;
		h->len -= n;
		t->hold_bytes -= n;
		done += n;
		if (!h->len)
			give_back(st, t);
	}
	return done;
}

void tcp_hold_drop(struct tcp_stack *st, struct tcb *t)
{
	while (t->nhold)
		give_back(st, t);
	t->hold_bytes = 0;
}

/*
 * The kept bytes go into the ring just ahead of its unread ones, where they belong in the
 * stream. They fit: the window never offered more than the ring's size less everything unread,
 * kept bytes included (tcp_rcv_space), so kept, unread and out-of-order bytes span at most the
 * ring. false when no ring could be had: the frames stay kept.
 */
static bool evict(struct tcp_stack *st, struct tcb *t)
{
	uint32_t pos;

	if (!tcp_rbuf_need(st, t))
		return false;
	pos = (t->rbuf_head + t->rbuf_size - t->hold_bytes) % t->rbuf_size;
	t->rbuf_head = pos;
	t->rbuf_len += t->hold_bytes;
	while (t->nhold) {
		const struct tcp_held *h = &st->held[t->hold_first];
		uint32_t first = t->rbuf_size - pos < h->len ? t->rbuf_size - pos : h->len;

		memcpy(t->rbuf + pos, h->data, first);
		memcpy(t->rbuf, h->data + first, h->len - first);
		pos = (pos + h->len) % t->rbuf_size;
		give_back(st, t);
	}
	t->hold_bytes = 0;
	return true;
}

uint64_t tcp_hold_trim(struct tcp_stack *st, uint64_t before)
{
	uint64_t oldest = UINT64_MAX;

	if (!st->nheld)
		return UINT64_MAX;
	for (unsigned id = 0; id < TCP_HELD_MAX; id++)
		if (st->held[id].tcb >= 0 && (before == UINT64_MAX || st->held[id].since < before))
			evict(st, tcp_tcb(st, st->held[id].tcb));
	for (unsigned id = 0; id < TCP_HELD_MAX; id++)
		if (st->held[id].tcb >= 0 && st->held[id].since < oldest)
			oldest = st->held[id].since;
	return oldest;
}
