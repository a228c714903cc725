/*
 * How a request ends: its CQE (or none, with CQE_SKIP_SUCCESS), what happens to the rest of its
 * link chain, and the deferred work list that orders these effects the way the kernel's task
 * work does (a cancelled target completes after the CQE of the request that cancelled it; the
 * next request of a chain is issued after the CQEs of the current submission).
 */
#include <errno.h>

#include "ops/ops.h"
#include "ring/ring.h"
#include "sqe/req.h"

void req_set_fail(struct xreq *req)
{
	req->flags |= REQ_F_FAIL;
	if (req->flags & REQ_F_CQE_SKIP) {
		/* A failure is always reported; the links it cancels then stay silent. */
		req->flags &= ~REQ_F_CQE_SKIP;
		req->flags |= REQ_F_SKIP_LINK_CQES;
	}
}

static void req_release(struct xring_ctx *ctx, struct xreq *req)
{
	req_free(&ctx->pool, req);
	if (xring_unlikely(ctx->defer.head != NULL))
		req_drain_flush(ctx);
}

/* Every member of a failed chain completes with its own init error or -ECANCELED. A send_zc
 * cancelled so has its notification in the kernel already: it follows, as there (6.18). */
static void fail_links(struct xring_ctx *ctx, struct xreq *link, bool silent)
{
	while (link) {
		struct xreq *next = link->link;
		int32_t res = (link->flags & REQ_F_INIT_FAILED) ? link->res : -ECANCELED;

		if (xring_unlikely(link->opcode == XRING_OP_SEND_ZC ||
				   link->opcode == XRING_OP_SENDMSG_ZC) &&
		    !(link->flags & REQ_F_INIT_FAILED))
			link->flags |= REQ_F_NOTIF_AFTER;
		link->link = NULL;
		link->flags &= ~(REQ_F_HARDLINK | REQ_F_ARM_LTIMEOUT);
		if (silent)
			link->flags |= REQ_F_CQE_SKIP;
		else
			link->flags &= ~REQ_F_CQE_SKIP;
		link->flags |= REQ_F_NO_FAIL; /* the chain is already being failed, here */
		req_complete_later(ctx, link, res);
		link = next;
	}
}

/* Detaches and cancels the LINK_TIMEOUT guarding req, which finished first. */
static void disarm_link_timeout(struct xring_ctx *ctx, struct xreq *req)
{
	struct xreq *lt = req->link;

	if (req->flags & REQ_F_LTIMEOUT_ACTIVE)
		link_timeout_disarm(ctx, lt);
	req->flags &= ~(REQ_F_ARM_LTIMEOUT | REQ_F_LTIMEOUT_ACTIVE);
	req->link = lt->link;
	lt->link = NULL;
	req_complete_later(ctx, lt, -ECANCELED);
}

/* What a finished request leaves to the one linked after it: its turn to be issued, or its
 * failure when the chain breaks here. False when nothing was linked. */
static bool pass_link(struct xring_ctx *ctx, struct xreq *req)
{
	struct xreq *next;

	if (xring_unlikely(req->flags & (REQ_F_ARM_LTIMEOUT | REQ_F_LTIMEOUT_ACTIVE)))
		disarm_link_timeout(ctx, req);
	next = req->link;
	if (!next)
		return false;
	req->link = NULL;
	if ((req->flags & REQ_F_FAIL) && !(req->flags & REQ_F_HARDLINK)) {
		fail_links(ctx, next, req->flags & REQ_F_SKIP_LINK_CQES);
	} else {
		next->flags |= REQ_F_TW_ISSUE;
		fifo_push(&ctx->tw, next);
	}
	return true;
}

void req_complete(struct xring_ctx *ctx, struct xreq *req, int32_t res, uint32_t cflags)
{
	if (req->flags & REQ_F_PENDING) {
		list_del(&ctx->pending, req);
		req->flags &= ~REQ_F_PENDING;
	}
	if (res < 0 && !(req->flags & REQ_F_NO_FAIL))
		req_set_fail(req);
	if (!(req->flags & REQ_F_CQE_SKIP)) {
		cq_post(ctx, req->user_data, res, cflags);
		/* Nothing of its buffer was sent: REPORT_USAGE hears "copied", as the kernel
		 * says when no byte went zero-copy. The SQE copy is the first field of both the
		 * passthrough's and the offloaded socket's request state. */
		if (xring_unlikely(req->flags & REQ_F_NOTIF_AFTER))
			cq_post(ctx, req->user_data,
				(req->u.sqe.ioprio & XRING_SEND_ZC_REPORT_USAGE)
					? (int32_t) XRING_NOTIF_USAGE_ZC_COPIED
					: 0,
				XRING_CQE_F_NOTIF);
	}

	pass_link(ctx, req);
	req_release(ctx, req);
	if (!ctx->batching)
		req_run_later(ctx);
}

void req_release_link(struct xring_ctx *ctx, struct xreq *req)
{
	if (pass_link(ctx, req) && !ctx->batching)
		req_run_later(ctx);
}

void req_complete_later(struct xring_ctx *ctx, struct xreq *req, int32_t res)
{
	req->res = res;
	req->flags &= ~REQ_F_TW_ISSUE;
	fifo_push(&ctx->tw, req);
}

void req_post_more(struct xring_ctx *ctx, struct xreq *req, int32_t res, uint32_t cflags)
{
	cq_post(ctx, req->user_data, res, cflags | XRING_CQE_F_MORE);
}

void req_run_later(struct xring_ctx *ctx)
{
	struct xreq *req;

	if (ctx->tw_running)
		return;
	ctx->tw_running = true;
	while ((req = fifo_pop(&ctx->tw))) {
		if (req->flags & REQ_F_TW_ISSUE) {
			req->flags &= ~REQ_F_TW_ISSUE;
			req_issue(ctx, req);
		} else if (xring_unlikely(req->flags & REQ_F_OWN_END)) {
			req->flags &= ~REQ_F_OWN_END;
			req->op->end(ctx, req);
		} else {
			req_complete(ctx, req, req->res, 0);
		}
	}
	ctx->tw_running = false;
}
