/*
 * The submission side: each SQE is validated, assembled into link chains, held back by IO_DRAIN
 * or issued to its operation. The rules and error codes are the kernel's (io_uring.c's
 * io_init_req / io_submit_sqe / io_drain_req), checked against it by test_differential.c.
 */
#include <errno.h>
#include <string.h>

#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"
#include "ring/ring.h"
#include "sqe/req.h"

#define SQE_VALID_FLAGS 0x7fu
/* Flags that take an SQE off the fast path. */
#define SQE_SLOW_FLAGS                                                                             \
	(XRING_SQE_IO_DRAIN | XRING_SQE_IO_LINK | XRING_SQE_IO_HARDLINK |                          \
	 XRING_SQE_BUFFER_SELECT | ~SQE_VALID_FLAGS)

static unsigned chain_len(const struct xreq *req)
{
	unsigned n = 0;

	for (; req; req = req->link)
		n++;
	return n;
}

void req_issue(struct xring_ctx *ctx, struct xreq *req)
{
	int64_t r = req->op->issue(ctx, req);

	if (r == OP_QUEUED) {
		list_add_tail(&ctx->pending, req);
		req->flags |= REQ_F_PENDING;
		if (req->flags & REQ_F_ARM_LTIMEOUT) {
			req->flags &= ~REQ_F_ARM_LTIMEOUT;
			req->flags |= REQ_F_LTIMEOUT_ACTIVE;
			link_timeout_arm(ctx, req->link, req);
		}
		return;
	}
	req_complete(ctx, req, (int32_t) r, req->cflags);
}

/* A chain whose head failed before issue completes at once: the head with its error, every
 * other member with its own init error or -ECANCELED. */
static void fail_chain(struct xring_ctx *ctx, struct xreq *head)
{
	head->flags &= ~(REQ_F_HARDLINK | REQ_F_ARM_LTIMEOUT);
	head->flags |= REQ_F_NO_FAIL;
	if (head->link) {
		/* A hard link does not keep a chain that never started going. */
		for (struct xreq *r = head; r; r = r->link)
			r->flags &= ~REQ_F_HARDLINK;
		head->flags |= REQ_F_FAIL;
	}
	req_complete(ctx, head, head->res, 0);
}

void req_drain_flush(struct xring_ctx *ctx)
{
	bool first = true, drain_seen = false;
	struct xreq *req;

	/* As the kernel: the first deferred request, and every one from a drain on, starts only
	 * when no other request is alive. */
	while ((req = ctx->defer.head)) {
		unsigned n = chain_len(req);

		drain_seen |= (req->flags & REQ_F_DRAIN) != 0;
		if ((drain_seen || first) && ctx->pool.allocated != ctx->ndeferred)
			return;
		fifo_pop(&ctx->defer);
		ctx->ndeferred -= n;
		first = false;
		req_issue(ctx, req);
	}
}

void req_queue(struct xring_ctx *ctx, struct xreq *req)
{
	if (xring_unlikely(req->flags & REQ_F_FAIL)) {
		fail_chain(ctx, req);
		return;
	}
	if (xring_unlikely(ctx->drain_active)) {
		bool drain = req->flags & REQ_F_DRAIN;

		fifo_push(&ctx->defer, req);
		ctx->ndeferred += chain_len(req);
		req_drain_flush(ctx);
		if (!drain && !ctx->defer.head)
			ctx->drain_active = false;
		return;
	}
	req_issue(ctx, req);
}

int req_try_cancel(struct xring_ctx *ctx, struct xreq *req)
{
	int ret;

	if (!(req->flags & REQ_F_PENDING) || !req->op->cancel)
		return -EALREADY;
	ret = req->op->cancel(ctx, req);
	if (ret == OP_CANCEL_ASYNC)
		return ret;
	if (ret == 0) {
		list_del(&ctx->pending, req);
		req->flags &= ~REQ_F_PENDING;
	}
	return ret;
}

static void init_drain(struct xring_ctx *ctx, struct xreq *req)
{
	ctx->drain_active = true;
	if (ctx->link_head) {
		/* A drain inside a chain drains the chain's head and whatever follows the chain. */
		ctx->link_head->flags |= REQ_F_DRAIN;
		ctx->drain_next = true;
	} else {
		req->flags |= REQ_F_DRAIN;
	}
}

static int init_req(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	unsigned fl = sqe->flags;

	req->user_data = sqe->user_data;
	req->opcode = sqe->opcode;
	req->sqe_flags = (uint8_t) fl;
	req->flags = 0;
	req->res = 0;
	req->cflags = 0;
	req->fd = sqe->fd;
	req->link = NULL;
	req->op = ops_table[sqe->opcode];
	/* Link flags count even when the SQE fails below: the chain stays whole. */
	if (fl & (XRING_SQE_IO_LINK | XRING_SQE_IO_HARDLINK))
		req->flags |= REQ_F_LINK;
	if (fl & XRING_SQE_IO_HARDLINK)
		req->flags |= REQ_F_HARDLINK;
	if (fl & XRING_SQE_CQE_SKIP_SUCCESS)
		req->flags |= REQ_F_CQE_SKIP;

	if (xring_unlikely(ctx->xsocks != NULL) && xsock_of_sqe(ctx, sqe)) {
		/* An offloaded socket: its operations run on the ring's stack. */
		const struct xring_op *xop = xsock_op(sqe->opcode);

		if (xop)
			req->op = xop;
	}
	if (!req->op)
		req->op = &op_passthrough; /* not ours: the kernel ring runs it, or refuses it */
	/* A dummy send means something to xring's stack only; the kernel would really send. */
	if (xring_unlikely(sqe->msg_flags & XRING_MSG_DUMMY) && req->op == &op_passthrough &&
	    (sqe->opcode == XRING_OP_SEND || sqe->opcode == XRING_OP_SENDMSG ||
	     sqe->opcode == XRING_OP_SEND_ZC || sqe->opcode == XRING_OP_SENDMSG_ZC))
		return -EOPNOTSUPP;
	if (fl & ~SQE_VALID_FLAGS)
		return -EINVAL;
	if ((fl & XRING_SQE_BUFFER_SELECT) && !req->op->buffer_select)
		return -EOPNOTSUPP;
	if (fl & XRING_SQE_CQE_SKIP_SUCCESS)
		ctx->drain_disabled = true;
	if (fl & XRING_SQE_IO_DRAIN) {
		if (ctx->drain_disabled)
			return -EOPNOTSUPP;
		init_drain(ctx, req);
	}
	if (xring_unlikely(ctx->drain_next) && !ctx->link_head) {
		ctx->drain_next = false;
		ctx->drain_active = true;
		req->flags |= REQ_F_DRAIN;
	}
	if (sqe->ioprio && !req->op->ioprio)
		return -EINVAL;
	if (fl & XRING_SQE_FIXED_FILE)
		req->flags |= REQ_F_FIXED_FILE;
	if (sqe->personality)
		return -EINVAL; /* xring registers no personalities */
	return req->op->prep(ctx, req, sqe);
}

/* An SQE failed before issue. Like the kernel, a chain is kept whole and failed as one when it
 * ends; the return value stops submission only when the failed SQE ends its chain. */
static int fail_init(struct xring_ctx *ctx, struct xreq *req, int err)
{
	struct xreq *head = ctx->link_head;

	req->res = err;
	req->flags |= REQ_F_INIT_FAILED;
	req_set_fail(req);
	if (head && !(head->flags & REQ_F_FAIL)) {
		req_set_fail(head);
		head->res = -ECANCELED;
		head->flags |= REQ_F_INIT_FAILED;
	}
	if (!(req->flags & REQ_F_LINK)) {
		if (head) {
			ctx->link_last->link = req;
			ctx->link_head = NULL;
			req = head;
		}
		req_queue(ctx, req);
		return err;
	}
	if (head)
		ctx->link_last->link = req;
	else
		ctx->link_head = req;
	ctx->link_last = req;
	return 0;
}

static int submit_one(struct xring_ctx *ctx, const struct xring_sqe *sqe)
{
	struct xreq *req = req_alloc(&ctx->pool);
	int err;

	if (xring_unlikely(!req))
		return -ENOMEM;
	err = init_req(ctx, req, sqe);
	if (xring_unlikely(err))
		return fail_init(ctx, req, err) ? 1 : 0;

	if (ctx->link_head) {
		ctx->link_last->link = req;
		ctx->link_last = req;
		if (req->flags & REQ_F_LINK)
			return 0;
		req = ctx->link_head;
		ctx->link_head = NULL;
		req_queue(ctx, req);
		return 0;
	}
	if (req->flags & REQ_F_LINK) {
		ctx->link_head = ctx->link_last = req;
		return 0;
	}
	req_queue(ctx, req);
	return 0;
}

/*
 * The fast path: SQEs that need no request (no link, no drain, an op that completes at once)
 * post their CQE right here, with the CQ cursor kept in registers. It stops at the first SQE
 * that needs more, or when the CQ is full (the overflow list is the slow path's business).
 * Returns the new SQ head; *n counts the SQEs consumed.
 */
static unsigned submit_fast(struct xring_ctx *ctx, unsigned head, unsigned tail, int *n)
{
	struct xring *ring = ctx->ring;
	const struct xring_sqe *sqes = ring->sq.sqes;
	const unsigned smask = ring->sq.mask, cmask = ring->cq.mask;
	struct xring_cqe *cqes = ring->cq.cqes;
	unsigned ctail = ring->cq.tail;
	const unsigned climit = ring->cq.overflow ? ctail : ring->cq.head + ring->cq.entries;
	const unsigned start = head;

	for (; head != tail; head++) {
		const struct xring_sqe *sqe = &sqes[head & smask];
		uint32_t word0;
		unsigned fl;
		int64_t res;

		/* opcode, flags and ioprio in one load: a plain NOP is all zeroes there. */
		memcpy(&word0, sqe, sizeof(word0));
		if (xring_likely(word0 == XRING_OP_NOP && !(sqe->nop_flags | sqe->personality))) {
			if (xring_unlikely(ctail == climit))
				break;
			cqes[ctail & cmask] = (struct xring_cqe){sqe->user_data, 0, 0};
			ctail++;
			continue;
		}
		fl = sqe->flags;
		if (xring_unlikely((fl & SQE_SLOW_FLAGS) | sqe->ioprio | sqe->personality))
			break;
		if (sqe->opcode == XRING_OP_NOP && !sqe->nop_flags) {
			res = 0;
		} else {
			const struct xring_op *op = ops_table[sqe->opcode];

			if (!op || !op->quick)
				break;
			res = op->quick(ctx, sqe);
			if (res == OP_NEED_REQ)
				break;
		}
		if (xring_unlikely(fl & XRING_SQE_CQE_SKIP_SUCCESS)) {
			ctx->drain_disabled = true;
			if (res >= 0)
				continue;
		}
		if (xring_unlikely(ctail == climit))
			break;
		cqes[ctail & cmask] = (struct xring_cqe){sqe->user_data, (int32_t) res, 0};
		ctail++;
	}
	ctx->cq_posted += ctail - ring->cq.tail;
	ring->cq.tail = ctail;
	*n += (int) (head - start);
	return head;
}

static int submit_sqes(struct xring_ctx *ctx)
{
	struct xring *ring = ctx->ring;
	struct xring_sq *sq = &ring->sq;
	unsigned head = sq->head;
	const unsigned tail = sq->tail;
	int n = 0;

	ctx->in_submit = true;
	ctx->batching = true;
	ctx->cq_seq_committed = ctx->cq_posted - ctx->cq_timeouts;
	while (head != tail) {
		int r;

		if (xring_likely(!ctx->link_head && !ctx->drain_active)) {
			head = submit_fast(ctx, head, tail, &n);
			if (head == tail)
				break;
		}
		r = submit_one(ctx, &sq->sqes[head & sq->mask]);
		if (xring_unlikely(r < 0)) {
			/* No memory for a request: leave this SQE queued, report what went in. */
			if (!n)
				n = r;
			break;
		}
		head++;
		n++;
		if (xring_unlikely(r > 0) && !(ctx->setup_flags & XRING_SETUP_SUBMIT_ALL))
			break;
	}
	ctx->st->sqes += head - sq->head;
	sq->head = head;
	if (ctx->link_head) {
		/* An unterminated chain is issued as it stands, as the kernel does. */
		struct xreq *req = ctx->link_head;

		ctx->link_head = NULL;
		req_queue(ctx, req);
	}
	ctx->in_submit = false;
	ctx->batching = false;
	ctx->st->cqes = ctx->cq_posted;
	timeout_flush_counts(ctx);
	req_run_later(ctx);
	kring_flush(ctx);
	if (ctx->netports)
		netport_flush_all(ctx);
	if (xring_unlikely(ctx->evfd >= 0))
		cq_notify(ctx);
	return n;
}

XRING_API int xring_submit(struct xring *ring)
{
	int n = submit_sqes(ring->ctx);

	/* With offloaded sockets nothing moves unless this thread moves it: a submission also
	 * polls the ports once, so a loop that only submits and peeks cannot starve them. */
	if (ring->ctx->netports)
		engine_progress(ring->ctx);
	return n;
}

XRING_API int xring_submit_and_wait(struct xring *ring, unsigned wait_nr)
{
	struct xring_ctx *ctx = ring->ctx;
	int n;

	/* Waiting without spinning: the kernel ring's SQEs go with the sleep, as liburing's
	 * submit_and_wait does, instead of a submit and then a sleep. */
	ctx->kr_defer = wait_nr && !ctx->spin_ns && ctx->kr && !ctx->netports;
	n = submit_sqes(ctx);
	if (wait_nr) {
		int ret = engine_wait(ctx, wait_nr, -1, NULL);

		ctx->kr_defer = false;
		kring_flush(ctx);
		if (ret < 0 && n == 0)
			return ret;
	}
	return n;
}
