/*
 * A request: what an SQE becomes once it needs state beyond its submission (a link chain, a
 * drain, a timer, an operation still in flight). Requests come from a per-ring pool that grows
 * in slabs and never shrinks, so steady-state submission does not call malloc.
 */
#ifndef XRING_SQE_REQ_H
#define XRING_SQE_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xring.h>

#include "cqe/timer.h"

struct xring_ctx;
struct xring_op;
struct xsock;

/* xreq.flags */
enum {
	REQ_F_LINK = 1u << 0,     /* IO_LINK or IO_HARDLINK: req->link follows it */
	REQ_F_HARDLINK = 1u << 1, /* the chain goes on even if this one fails */
	REQ_F_FAIL = 1u << 2,     /* completed (or will complete) as a failure */
	REQ_F_CQE_SKIP = 1u << 3, /* CQE_SKIP_SUCCESS and not failed */
	REQ_F_SKIP_LINK_CQES =
		1u << 4, /* failed with CQE_SKIP_SUCCESS: cancelled links post nothing */
	REQ_F_DRAIN = 1u << 5,
	REQ_F_ARM_LTIMEOUT = 1u << 6, /* req->link is a LINK_TIMEOUT to arm when this is issued */
	REQ_F_LTIMEOUT_ACTIVE = 1u << 7, /* req->link is an armed LINK_TIMEOUT guarding this req */
	REQ_F_PENDING = 1u << 8,         /* on ctx->pending */
	REQ_F_FIXED_FILE = 1u << 9,
	REQ_F_INIT_FAILED = 1u << 10, /* failed before it was issued; res holds the error */
	REQ_F_TW_ISSUE = 1u << 11,    /* on ctx->tw to be issued, not completed */
	REQ_F_NO_FAIL = 1u << 12,     /* a negative result does not fail the chain */
	REQ_F_OWN_END = 1u << 13,     /* its deferred failure goes to op->end() */
	/* Its result is out and only a notification is left (a send_zc waiting for the ACK):
	 * in the kernel the request is over, so no cancellation finds it. */
	REQ_F_RESULT_OUT = 1u << 14,
	REQ_F_NOTIF_AFTER = 1u << 15, /* a send_zc failed unrun: its notification follows its CQE */
};

struct xreq {
	uint64_t user_data;
	uint8_t opcode;
	uint8_t sqe_flags;
	uint16_t flags; /* REQ_F_* */
	int32_t res;    /* result carried to a deferred completion */
	uint32_t cflags;
	int32_t fd;
	const struct xring_op *op;
	struct xreq *link;          /* next request of the chain */
	struct xreq *qnext;         /* FIFO membership: defer, tw, free list */
	struct xreq *lprev, *lnext; /* pending list */
	struct xreq *wprev, *wnext; /* an operation's own wait list (receives on a socket) */
	union {
		struct {
			struct timer tm;
			uint64_t target_seq; /* count timeouts: complete when cq_seq reaches it */
			struct xreq *cprev, *cnext; /* count_timeouts list */
			struct xreq *guarded;       /* LINK_TIMEOUT: the request it guards */
			struct __kernel_timespec ts;
			uint32_t flags;
			uint32_t count;
			uint32_t repeats; /* MULTISHOT: expirations left, 0 = unlimited */
			bool counted;
		} timeout;
		struct {
			uint64_t addr;
			uint32_t flags;
			int32_t fd;
			uint8_t opcode;
			unsigned outstanding; /* kernel cancellations not answered yet */
			int nr;               /* requests cancelled so far */
			int first;            /* the first answer, 1 while none came */
		} cancel;
		struct {
			uint64_t addr;
			uint32_t flags;
			struct __kernel_timespec ts;
		} tremove;
		/* A copy, for requests issued after their SQE slot is reused. */
		struct xring_sqe sqe;
		struct {
			struct xring_sqe sqe; /* first: passthrough reads it as u.sqe */
			struct xsock *xs;     /* the offloaded socket, NULL on the kernel path */
			uint8_t addr[16];     /* a sockaddr_in read at prep, as the kernel does */
			uint32_t addrlen;
			/* A TCP send or receive stopped on the way (REQ_F_OWN_END): the bytes it
			 * had moved, and for a send_zc the stream offset of its last byte. */
			uint32_t moved, zc_end;
		} net;
	} u;
};

struct req_fifo {
	struct xreq *head, *tail;
};

struct req_list {
	struct xreq *first, *last;
};

struct req_pool {
	struct xreq *free;
	void **slabs;
	unsigned nslabs, cap_slabs;
	unsigned slab_size;
	unsigned allocated; /* requests handed out and not yet freed */
};

int req_pool_init(struct req_pool *p, unsigned slab_size);
void req_pool_destroy(struct req_pool *p);
struct xreq *req_pool_grow(struct req_pool *p);

static inline struct xreq *req_alloc(struct req_pool *p)
{
	struct xreq *r = p->free;

	if (__builtin_expect(!r, 0))
		r = req_pool_grow(p);
	if (r) {
		p->free = r->qnext;
		p->allocated++;
	}
	return r;
}

static inline void req_free(struct req_pool *p, struct xreq *r)
{
	r->qnext = p->free;
	p->free = r;
	p->allocated--;
}

static inline void fifo_push(struct req_fifo *q, struct xreq *r)
{
	r->qnext = NULL;
	if (q->tail)
		q->tail->qnext = r;
	else
		q->head = r;
	q->tail = r;
}

static inline struct xreq *fifo_pop(struct req_fifo *q)
{
	struct xreq *r = q->head;

	if (r) {
		q->head = r->qnext;
		if (!q->head)
			q->tail = NULL;
	}
	return r;
}

/* Appends r: lists keep submission order, so a cancellation finds the oldest match first. */
static inline void list_add_tail(struct req_list *l, struct xreq *r)
{
	r->lnext = NULL;
	r->lprev = l->last;
	if (l->last)
		l->last->lnext = r;
	else
		l->first = r;
	l->last = r;
}

static inline void list_del(struct req_list *l, struct xreq *r)
{
	if (r->lprev)
		r->lprev->lnext = r->lnext;
	else
		l->first = r->lnext;
	if (r->lnext)
		r->lnext->lprev = r->lprev;
	else
		l->last = r->lprev;
	r->lprev = r->lnext = NULL;
}

/* An operation's wait list, linked through wprev/wnext so a request can be on it and on the
 * pending list at once. */
struct req_wlist {
	struct xreq *first, *last;
};

static inline void wlist_add_tail(struct req_wlist *l, struct xreq *r)
{
	r->wnext = NULL;
	r->wprev = l->last;
	if (l->last)
		l->last->wnext = r;
	else
		l->first = r;
	l->last = r;
}

static inline void wlist_del(struct req_wlist *l, struct xreq *r)
{
	if (r->wprev)
		r->wprev->wnext = r->wnext;
	else
		l->first = r->wnext;
	if (r->wnext)
		r->wnext->wprev = r->wprev;
	else
		l->last = r->wprev;
	r->wprev = r->wnext = NULL;
}

/* What an operation's issue() may return instead of a result. */
#define OP_QUEUED       INT64_MIN
/* What an operation's cancel() returns when the answer comes later (kernel requests): the
 * request stays in flight and completes, cancelled or not, by itself. */
#define OP_CANCEL_ASYNC 1

/* Completion of requests (src/sqe/complete.c). */
void req_set_fail(struct xreq *req);
/* Final completion: posts the CQE (unless skipped), follows the link chain, frees req. */
void req_complete(struct xring_ctx *ctx, struct xreq *req, int32_t res, uint32_t cflags);
/* Final completion deferred to the end of the current round, as kernel task work would be. */
void req_complete_later(struct xring_ctx *ctx, struct xreq *req, int32_t res);
/* A CQE for a request that stays in flight (multishot): F_MORE is added. */
void req_post_more(struct xring_ctx *ctx, struct xreq *req, int32_t res, uint32_t cflags);
/* req's result is out and req stays for a later CQE (a send_zc's F_NOTIF): its chain goes on
 * now (or fails now, when req failed), as the kernel's does once the request has its result. */
void req_release_link(struct xring_ctx *ctx, struct xreq *req);
void req_run_later(struct xring_ctx *ctx);

/* Issue side (src/sqe/submit.c). */
void req_queue(struct xring_ctx *ctx, struct xreq *req);
/* Issues now, bypassing the drain queue: for the next request of a running chain. */
void req_issue(struct xring_ctx *ctx, struct xreq *req);
void req_drain_flush(struct xring_ctx *ctx);
/* Detaches a pending request for cancellation: 0 when it was stopped (complete it with
 * -ECANCELED), -EALREADY when it can no longer be stopped, OP_CANCEL_ASYNC when asked of the
 * kernel (the request completes by itself; ctx->canceller hears the answer). */
int req_try_cancel(struct xring_ctx *ctx, struct xreq *req);

#endif
