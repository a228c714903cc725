/*
 * Send and receive rings, lent to connections while they hold data. A connection that has
 * nothing to send and nothing unread owns no ring, so thousands of idle connections cost their
 * control blocks only. A ring given back stays on its pool's free list for the next connection
 * (the pool keeps its high-water mark), so a busy connection that empties and refills its rings
 * takes them from the list, not from malloc. The list keeps at most TCP_BUF_KEEP rings; beyond
 * that they go back to malloc, so a burst of many busy connections does not pin its memory
 * for good.
 *
 * The window announced and the writable test still use the configured sizes: a ring is always
 * to be had at the full size, or the segment is dropped (and retransmitted by the peer) as if
 * lost, which only happens when malloc fails.
 */
#include <stdlib.h>
#include <string.h>

#include "stack/tcp/tcp.h"

#define TCP_BUF_KEEP 64

static uint8_t *pool_get(struct tcp_bufpool *p)
{
	uint8_t *b = p->free;

	if (b) {
		memcpy(&p->free, b, sizeof(p->free));
		p->nfree--;
		return b;
	}
	b = malloc(p->size);
	if (b)
		p->total++;
	return b;
}

static void pool_put(struct tcp_bufpool *p, uint8_t *b)
{
	if (p->nfree >= TCP_BUF_KEEP) {
		free(b);
		p->total--;
		return;
	}
	memcpy(b, &p->free, sizeof(p->free));
	p->free = b;
	p->nfree++;
}

void tcp_bufpool_fini(struct tcp_bufpool *p)
{
	while (p->free) {
		void *b = p->free;

		memcpy(&p->free, b, sizeof(p->free));
		free(b);
	}
	p->nfree = p->total = 0;
}

bool tcp_rbuf_need(struct tcp_stack *st, struct tcb *t)
{
	if (t->rbuf)
		return true;
	t->rbuf = pool_get(&st->rbufs);
	t->rbuf_head = 0;
	if (!t->rbuf)
		st->stats.no_buf++;
	return t->rbuf != NULL;
}

bool tcp_sbuf_need(struct tcp_stack *st, struct tcb *t)
{
	if (t->sbuf)
		return true;
	t->sbuf = pool_get(&st->sbufs);
	t->sbuf_head = 0;
	if (!t->sbuf)
		st->stats.no_buf++;
	return t->sbuf != NULL;
}

/* Rings that hold nothing go back. The receive ring holds out-of-order extents beyond the
 * unread bytes too (nooo). */
static void release_empty(struct tcp_stack *st, struct tcb *t)
{
	if (t->sbuf && !t->sbuf_len) {
		pool_put(&st->sbufs, t->sbuf);
		t->sbuf = NULL;
	}
	if (t->rbuf && !t->rbuf_len && !t->nooo) {
		pool_put(&st->rbufs, t->rbuf);
		t->rbuf = NULL;
	}
}

void tcp_bufs_release(struct tcp_stack *st, struct tcb *t)
{
	tcp_hold_drop(st, t);
	if (t->sbuf)
		pool_put(&st->sbufs, t->sbuf);
	if (t->rbuf)
		pool_put(&st->rbufs, t->rbuf);
	t->sbuf = t->rbuf = NULL;
	t->sbuf_len = t->rbuf_len = 0;
	t->nooo = 0;
}

void tcp_settle(struct tcp_stack *st, struct tcb *t)
{
	release_empty(st, t);
	tcp_timer_sync(st, t);
}
