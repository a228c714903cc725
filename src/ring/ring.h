/*
 * The engine behind a struct xring: requests, link chains, the drain queue, the overflow list,
 * timers and completion sources. Private to the library.
 */
#ifndef XRING_RING_RING_H
#define XRING_RING_RING_H

#include <xring.h>

#include "cqe/timer.h"
#include "sqe/req.h"
#include "stats/shm.h"

#define XRING_MAX_ENTRIES    32768u
#define XRING_MAX_CQ_ENTRIES (2 * XRING_MAX_ENTRIES)

/*
 * A completion source: something the engine polls for progress (the kernel ring, a NIC queue)
 * and, when idle, sleeps on. poll() does a bounded amount of non-blocking work and returns how
 * many events it handled; wait_fd() is the descriptor to sleep on (or -1); arm() readies it and
 * returns -EAGAIN when work arrived meanwhile.
 */
struct xring_source {
	int (*poll)(struct xring_ctx *ctx, struct xring_source *src);
	int (*wait_fd)(struct xring_source *src);
	int (*arm)(struct xring_source *src);
	/* CLOCK_MONOTONIC ns when the source next needs a poll without any fd waking it (its own
	 * timers: retransmissions, ARP retries), UINT64_MAX for never; NULL is never. */
	uint64_t (*next_timer)(struct xring_source *src);
	struct xring_source *next;
};

struct kring;

struct xring_ctx {
	struct xring *ring;
	struct kring *kr;           /* the kernel io_uring behind passthrough ops */
	struct xreq *canceller;     /* the ASYNC_CANCEL being issued, for cancels answered later */
	struct ftable *files;       /* registered files, NULL when none */
	struct xsock_table *xsocks; /* offloaded sockets, NULL until the first */
	struct netport *netports;   /* ports this ring's sockets use */
	struct bufring *bufrings;   /* provided buffer rings, for offloaded receives */
	unsigned setup_flags;

	struct req_pool pool;

	/* Link chain being assembled by the current submission. */
	struct xreq *link_head, *link_last;

	/* IO_DRAIN: requests waiting for everything before them to complete. */
	struct req_fifo defer;
	unsigned ndeferred; /* requests in defer, counting every member of each chain */
	bool drain_active;
	bool drain_next;
	bool drain_disabled; /* set once CQE_SKIP_SUCCESS was used, as the kernel does */

	/* Requests issued and not yet completed: cancellation looks here. */
	struct req_list pending;
	unsigned inflight; /* requests issued or waiting in a chain, not yet completed */

	/* Completions deferred to the end of the current submit or progress round, the way the
	 * kernel defers them to task work: targets of cancellations, count-satisfied timeouts. */
	struct req_fifo tw;
	bool tw_running;

	/* CQEs that did not fit in the CQ, oldest first: a power-of-two ring that grows. */
	struct xring_cqe *ovf;
	unsigned ovf_head, ovf_tail, ovf_cap;
	uint64_t cq_dropped; /* only ever non-zero when malloc failed with the CQ full */

	/* Count-based timeouts count CQEs posted (cq_posted) other than those of timeouts that
	 * fired or met their count (cq_timeouts), as the kernel does. A timeout submitted in the
	 * middle of a submission counts from the start of it, because the kernel only publishes
	 * the inline completions of a submission at its end. */
	uint64_t cq_posted;
	uint64_t cq_seq_committed;
	struct xreq *count_timeouts; /* ordered by target sequence, linked by u.timeout.cnext */
	uint64_t cq_timeouts;        /* CQEs of timeouts that fired or met their count */
	struct timer_heap timers;

	struct xring_source *sources;
	uint64_t spin_ns;
	uint64_t now;        /* clock_mono_ns() at the start of the last engine_progress() */
	bool spin_yield;     /* waits spin long: yield the CPU while spinning (engine.c) */
	unsigned spin_quick; /* quick waits in a row since */
	bool in_submit;
	bool kr_defer;        /* kernel SQEs wait for the coming sleep, which submits them */
	int evfd;             /* xring_register_eventfd(), -1 when none */
	uint64_t evfd_posted; /* cq_posted when the eventfd was last signalled */
	bool batching; /* in a submission or a round of timers: deferred work waits for its end */
	struct xstats_ring *st; /* its counters: published (stats/stats.h), or st_own */
	struct xstats_ring st_own;
	struct xstats_sock sock_sink; /* where unpublished sockets count: nobody reads it */
};

static inline struct xring_ctx *ring_ctx(struct xring *ring)
{
	return ring->ctx;
}

/* Completion side (src/cqe). */
void cq_post_overflow(struct xring_ctx *ctx, uint64_t user_data, int32_t res, uint32_t flags)
	__attribute__((noinline, cold));

/* Posts a CQE; when the CQ is full, or older CQEs still wait, it joins the overflow list. */
static inline void cq_post(struct xring_ctx *ctx, uint64_t user_data, int32_t res, uint32_t flags)
{
	struct xring_cq *cq = &ctx->ring->cq;

	ctx->cq_posted++;
	if (xring_likely(!cq->overflow && cq->tail - cq->head < cq->entries)) {
		struct xring_cqe *cqe = &cq->cqes[cq->tail & cq->mask];

		cqe->user_data = user_data;
		cqe->res = res;
		cqe->flags = flags;
		cq->tail++;
		return;
	}
	cq_post_overflow(ctx, user_data, res, flags);
}

void cq_flush_overflow(struct xring_ctx *ctx);
/* Signals the registered eventfd if completions were posted since the last signal. */
void cq_notify(struct xring_ctx *ctx);
int engine_progress(struct xring_ctx *ctx);
int engine_wait(struct xring_ctx *ctx, unsigned want, int64_t deadline_ns, const sigset_t *sigmask);
void engine_add_source(struct xring_ctx *ctx, struct xring_source *src);
void engine_remove_source(struct xring_ctx *ctx, struct xring_source *src);

#endif
