/* The operation table: what each opcode's SQE fields mean and how it runs. */
#ifndef XRING_OPS_OPS_H
#define XRING_OPS_OPS_H

#include <stdint.h>

#include <xring.h>

#include "sqe/req.h"

struct xring_ctx;

/* quick() returns this when the SQE needs a request after all. */
#define OP_NEED_REQ INT64_MIN

struct xring_op {
	const char *name;
	bool ioprio;        /* sqe->ioprio carries op flags */
	bool buffer_select; /* IOSQE_BUFFER_SELECT is meaningful */
	/*
	 * Optional: completes an unlinked, undrained SQE at submission, without a request.
	 * Returns the CQE result (failure when negative), or OP_NEED_REQ, which it must return
	 * for any SQE that prep() would refuse: refusals go through the request path, which
	 * keeps the kernel's rule that a refused SQE ends the submission.
	 */
	int64_t (*quick)(struct xring_ctx *ctx, const struct xring_sqe *sqe);
	/* Reads and validates the SQE into req; 0 or a negated errno. The SQE is not kept. */
	int (*prep)(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe);
	/* Starts the request: its result, or OP_QUEUED when it completes later. */
	int64_t (*issue)(struct xring_ctx *ctx, struct xreq *req);
	/* Stops a queued request: 0 when stopped (the caller completes it with -ECANCELED), or
	 * -EALREADY when it is past the point where it can be stopped. */
	int (*cancel)(struct xring_ctx *ctx, struct xreq *req);
	/* Optional: ends a request flagged REQ_F_OWN_END in place of the one failure CQE that
	 * req_complete_later() would post for it, at that CQE's moment (a send_zc cancelled on
	 * the way posts its result with F_MORE, then its notification). req->res holds the
	 * failure. */
	void (*end)(struct xring_ctx *ctx, struct xreq *req);
};

extern const struct xring_op *const ops_table[256];

extern const struct xring_op op_nop;
extern const struct xring_op op_timeout;
extern const struct xring_op op_timeout_remove;
extern const struct xring_op op_link_timeout;
extern const struct xring_op op_async_cancel;

/* Timeout plumbing the engine calls (src/ops/timeout.c). */
void timeout_expire(struct xring_ctx *ctx, struct timer *t);
void timeout_flush_counts(struct xring_ctx *ctx);
void link_timeout_arm(struct xring_ctx *ctx, struct xreq *lt, struct xreq *guarded);
void link_timeout_disarm(struct xring_ctx *ctx, struct xreq *req);

#endif
