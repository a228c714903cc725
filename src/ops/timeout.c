/*
 * IORING_OP_TIMEOUT, IORING_OP_TIMEOUT_REMOVE (and update) and IORING_OP_LINK_TIMEOUT, with the
 * kernel's rules: a timeout completes with -ETIME when its timer fires, or with 0 once `off`
 * other completions have been posted; a link timeout cancels the request it follows in a chain
 * if that request is still running when it fires.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ops/ops.h"
#include "ring/ring.h"

#define TIMEOUT_FLAGS                                                                              \
	(XRING_TIMEOUT_ABS | XRING_TIMEOUT_CLOCK_MASK | XRING_TIMEOUT_ETIME_SUCCESS |              \
	 XRING_TIMEOUT_MULTISHOT)

static struct xreq *timer_req(struct timer *t)
{
	return (struct xreq *) ((char *) t - offsetof(struct xreq, u.timeout.tm));
}

static int read_ts(uint64_t addr, struct __kernel_timespec *ts)
{
	if (!addr)
		return -EFAULT;
	memcpy(ts, (const void *) (uintptr_t) addr, sizeof(*ts));
	if (ts->tv_sec < 0 || ts->tv_nsec < 0)
		return -EINVAL;
	return 0;
}

static uint64_t ts_ns(const struct __kernel_timespec *ts)
{
	const uint64_t max_sec = UINT64_MAX / 1000000000u - 1;

	if ((uint64_t) ts->tv_sec > max_sec)
		return UINT64_MAX / 2;
	return (uint64_t) ts->tv_sec * 1000000000u + (uint64_t) ts->tv_nsec;
}

/* Every deadline is kept on CLOCK_MONOTONIC; absolute times on another clock are converted
 * when armed (a later jump of that clock is not followed). */
static uint64_t deadline_of(uint32_t flags, const struct __kernel_timespec *ts)
{
	uint64_t now = clock_mono_ns(), d = ts_ns(ts);
	clockid_t clk = CLOCK_MONOTONIC;
	struct timespec cts;
	uint64_t cnow;

	if (!(flags & XRING_TIMEOUT_ABS))
		return now + d;
	if (flags & XRING_TIMEOUT_BOOTTIME)
		clk = CLOCK_BOOTTIME;
	else if (flags & XRING_TIMEOUT_REALTIME)
		clk = CLOCK_REALTIME;
	if (clk == CLOCK_MONOTONIC)
		return d;
	clock_gettime(clk, &cts);
	cnow = (uint64_t) cts.tv_sec * 1000000000u + (uint64_t) cts.tv_nsec;
	return d <= cnow ? now : now + (d - cnow);
}

static void count_list_del(struct xring_ctx *ctx, struct xreq *req)
{
	struct xreq *p = req->u.timeout.cprev, *n = req->u.timeout.cnext;

	if (!req->u.timeout.counted)
		return;
	if (p)
		p->u.timeout.cnext = n;
	else
		ctx->count_timeouts = n;
	if (n)
		n->u.timeout.cprev = p;
	req->u.timeout.counted = false;
}

static void count_list_add(struct xring_ctx *ctx, struct xreq *req)
{
	struct xreq *p = NULL, *n = ctx->count_timeouts;

	while (n && n->u.timeout.target_seq <= req->u.timeout.target_seq) {
		p = n;
		n = n->u.timeout.cnext;
	}
	req->u.timeout.cprev = p;
	req->u.timeout.cnext = n;
	if (p)
		p->u.timeout.cnext = req;
	else
		ctx->count_timeouts = req;
	if (n)
		n->u.timeout.cprev = req;
	req->u.timeout.counted = true;
}

static int prep_common(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe,
		       bool is_link)
{
	uint32_t off = (uint32_t) sqe->off, flags = sqe->timeout_flags;
	int err;

	if (sqe->buf_index || sqe->len != 1 || sqe->splice_fd_in)
		return -EINVAL;
	if (off && is_link)
		return -EINVAL;
	if (flags & ~TIMEOUT_FLAGS)
		return -EINVAL;
	if ((flags & XRING_TIMEOUT_CLOCK_MASK) == XRING_TIMEOUT_CLOCK_MASK)
		return -EINVAL;
	if ((flags & XRING_TIMEOUT_MULTISHOT) && (flags & XRING_TIMEOUT_ABS))
		return -EINVAL;
	timer_init(&req->u.timeout.tm);
	req->u.timeout.counted = false;
	req->u.timeout.guarded = NULL;
	req->u.timeout.flags = flags;
	req->u.timeout.count = off;
	req->u.timeout.repeats = (flags & XRING_TIMEOUT_MULTISHOT) ? off : 0;
	err = read_ts(sqe->addr, &req->u.timeout.ts);
	if (err)
		return err;
	if (is_link) {
		if (!ctx->link_head || ctx->link_last->opcode == XRING_OP_LINK_TIMEOUT)
			return -EINVAL;
		req->u.timeout.guarded = ctx->link_last;
		ctx->link_last->flags |= REQ_F_ARM_LTIMEOUT;
	}
	return 0;
}

static int timeout_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	return prep_common(ctx, req, sqe, false);
}

static int arm(struct xring_ctx *ctx, struct xreq *req)
{
	return timer_add(&ctx->timers, &req->u.timeout.tm,
			 deadline_of(req->u.timeout.flags, &req->u.timeout.ts));
}

static bool counts_events(const struct xreq *req)
{
	return req->u.timeout.count && !(req->u.timeout.flags & XRING_TIMEOUT_MULTISHOT);
}

static int64_t timeout_issue(struct xring_ctx *ctx, struct xreq *req)
{
	int err = arm(ctx, req);

	if (err)
		return err;
	if (counts_events(req)) {
		uint64_t base =
			ctx->in_submit ? ctx->cq_seq_committed : ctx->cq_posted - ctx->cq_timeouts;

		req->u.timeout.target_seq = base + req->u.timeout.count;
		count_list_add(ctx, req);
	}
	return OP_QUEUED;
}

static int timeout_cancel(struct xring_ctx *ctx, struct xreq *req)
{
	timer_del(&ctx->timers, &req->u.timeout.tm);
	count_list_del(ctx, req);
	return 0;
}

void timeout_flush_counts(struct xring_ctx *ctx)
{
	struct xreq *req;

	while ((req = ctx->count_timeouts) &&
	       req->u.timeout.target_seq <= ctx->cq_posted - ctx->cq_timeouts) {
		count_list_del(ctx, req);
		timer_del(&ctx->timers, &req->u.timeout.tm);
		list_del(&ctx->pending, req);
		req->flags &= ~REQ_F_PENDING;
		ctx->cq_timeouts++;
		req_complete_later(ctx, req, 0);
	}
}

static void link_timeout_fire(struct xring_ctx *ctx, struct xreq *lt)
{
	struct xreq *guarded = lt->u.timeout.guarded;
	int ret;

	guarded->link = lt->link;
	guarded->flags &= ~REQ_F_LTIMEOUT_ACTIVE;
	lt->link = NULL;
	ret = req_try_cancel(ctx, guarded);
	/* A kernel request was asked to stop; it completes, cancelled, by itself. */
	if (ret == OP_CANCEL_ASYNC)
		ret = 0;
	else if (!ret)
		req_complete_later(ctx, guarded, -ECANCELED);
	req_complete(ctx, lt, ret ? ret : -ETIME, 0);
}

void timeout_expire(struct xring_ctx *ctx, struct timer *t)
{
	struct xreq *req = timer_req(t);
	uint32_t flags = req->u.timeout.flags;

	if (req->opcode == XRING_OP_LINK_TIMEOUT) {
		link_timeout_fire(ctx, req);
		return;
	}
	count_list_del(ctx, req);
	ctx->cq_timeouts++;
	if ((flags & XRING_TIMEOUT_MULTISHOT) &&
	    (!req->u.timeout.count || (req->u.timeout.repeats && --req->u.timeout.repeats))) {
		req_post_more(ctx, req, -ETIME, 0);
		if (arm(ctx, req) == 0)
			return;
	}
	if (flags & XRING_TIMEOUT_ETIME_SUCCESS)
		req->flags |= REQ_F_NO_FAIL;
	req_complete(ctx, req, -ETIME, 0);
}

/* LINK_TIMEOUT */

static int link_timeout_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	return prep_common(ctx, req, sqe, true);
}

/* Reached only when the chain is failed or the request it guards never needed it. */
static int64_t link_timeout_issue(struct xring_ctx *ctx, struct xreq *req)
{
	return -ECANCELED;
}

void link_timeout_arm(struct xring_ctx *ctx, struct xreq *lt, struct xreq *guarded)
{
	lt->u.timeout.guarded = guarded;
	if (arm(ctx, lt)) {
		/* No memory for the timer: the request runs unguarded, the guard reports it. */
		guarded->flags &= ~REQ_F_LTIMEOUT_ACTIVE;
		guarded->link = lt->link;
		lt->link = NULL;
		req_complete_later(ctx, lt, -ENOMEM);
		return;
	}
	list_add_tail(&ctx->pending, lt);
	lt->flags |= REQ_F_PENDING;
}

void link_timeout_disarm(struct xring_ctx *ctx, struct xreq *lt)
{
	timer_del(&ctx->timers, &lt->u.timeout.tm);
	if (lt->flags & REQ_F_PENDING) {
		list_del(&ctx->pending, lt);
		lt->flags &= ~REQ_F_PENDING;
	}
}

/* TIMEOUT_REMOVE and timeout updates */

static int remove_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	uint32_t flags = sqe->timeout_flags;

	if (sqe->buf_index || sqe->len || sqe->splice_fd_in)
		return -EINVAL;
	req->u.tremove.addr = sqe->addr;
	req->u.tremove.flags = flags;
	if (flags & XRING_TIMEOUT_UPDATE_MASK) {
		if ((flags & XRING_TIMEOUT_CLOCK_MASK) == XRING_TIMEOUT_CLOCK_MASK)
			return -EINVAL;
		if (flags &
		    ~(XRING_TIMEOUT_UPDATE_MASK | XRING_TIMEOUT_ABS | XRING_TIMEOUT_CLOCK_MASK))
			return -EINVAL;
		return read_ts(sqe->addr2, &req->u.tremove.ts);
	}
	if (flags)
		return -EINVAL;
	return 0;
}

static struct xreq *find_timeout(struct xring_ctx *ctx, uint64_t user_data, uint8_t opcode)
{
	for (struct xreq *r = ctx->pending.first; r; r = r->lnext)
		if (r->opcode == opcode && r->user_data == user_data)
			return r;
	return NULL;
}

static int64_t remove_issue(struct xring_ctx *ctx, struct xreq *req)
{
	uint32_t flags = req->u.tremove.flags;
	bool lt = flags & XRING_LINK_TIMEOUT_UPDATE;
	struct xreq *t = find_timeout(ctx, req->u.tremove.addr,
				      lt ? XRING_OP_LINK_TIMEOUT : XRING_OP_TIMEOUT);

	if (!t)
		return -ENOENT;
	if (!(flags & XRING_TIMEOUT_UPDATE_MASK)) {
		int ret = req_try_cancel(ctx, t);

		if (ret)
			return ret;
		req_complete_later(ctx, t, -ECANCELED);
		return 0;
	}
	/* An updated timeout is a pure timer from now on, as in the kernel. */
	if (!lt && !(t->u.timeout.flags & XRING_TIMEOUT_MULTISHOT))
		count_list_del(ctx, t);
	t->u.timeout.flags =
		(t->u.timeout.flags & ~(XRING_TIMEOUT_ABS | XRING_TIMEOUT_CLOCK_MASK)) |
		(flags & (XRING_TIMEOUT_ABS | XRING_TIMEOUT_CLOCK_MASK));
	t->u.timeout.ts = req->u.tremove.ts;
	return arm(ctx, t);
}

const struct xring_op op_timeout = {
	.name = "TIMEOUT",
	.prep = timeout_prep,
	.issue = timeout_issue,
	.cancel = timeout_cancel,
};

const struct xring_op op_link_timeout = {
	.name = "LINK_TIMEOUT",
	.prep = link_timeout_prep,
	.issue = link_timeout_issue,
};

const struct xring_op op_timeout_remove = {
	.name = "TIMEOUT_REMOVE",
	.prep = remove_prep,
	.issue = remove_issue,
};
