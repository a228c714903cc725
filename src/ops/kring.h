/*
 * The kernel io_uring an xring owns: every opcode xring does not run itself goes there
 * unchanged (the fixed-file index means the same slot in both tables), and its CQEs come back
 * into xring's CQ with user_data, res and flags intact.
 */
#ifndef XRING_OPS_KRING_H
#define XRING_OPS_KRING_H

#include <liburing.h>

#include "ring/ring.h"

struct kring {
	struct io_uring ring;
	struct xring_source src;
	unsigned unsubmitted; /* SQEs prepared since the last io_uring_submit() */
	unsigned inflight;    /* requests the kernel ring holds */
	bool files_registered;
	bool broken;                /* io_uring_setup failed: passthrough answers -EOPNOTSUPP */
	uint8_t supported[256 / 8]; /* opcodes the kernel implements, from its probe */
	/* CQEs reaped while kring_sync() waited for its own, processed at the next poll. */
	struct io_uring_cqe *stash;
	unsigned stash_head, nstash, stash_cap;
};

int kring_init(struct xring_ctx *ctx, unsigned entries);
void kring_exit(struct xring_ctx *ctx);
/* Submits what was prepared; called at the end of each submission and progress round. */
void kring_flush(struct xring_ctx *ctx);

/* Submits what was prepared and sleeps until the kernel ring has want CQEs, the timeout
 * (NULL: none) or a signal, in one system call. 0 or -EINTR. */
int kring_submit_and_sleep(struct xring_ctx *ctx, unsigned want, struct __kernel_timespec *ts,
			   const sigset_t *sigmask);

/*
 * Runs one SQE on the kernel ring now and returns its result (and *cflags, may be NULL),
 * after submitting whatever was prepared before it, so kernel requests keep their order. For
 * quick, inline operations (installing or updating a registered file) that xring needs the
 * answer to before it can go on; other CQEs that arrive meanwhile wait for the next poll.
 */
int kring_sync(struct xring_ctx *ctx, const struct io_uring_sqe *sqe, uint32_t *cflags);

/*
 * Takes req, in flight on the kernel ring, back from the kernel without a CQE for its end: it
 * is cancelled there and its -ECANCELED dropped (CQEs it posted before, a multishot poll's,
 * reach the application first). 0 when req is xring's again, or the kernel's answer: -ENOENT
 * when it completed already, -EALREADY when it can no longer be stopped (it completes as
 * usual then).
 */
int kring_take_back(struct xring_ctx *ctx, struct xreq *req);

static inline struct io_uring *kring_ring(struct xring_ctx *ctx)
{
	return ctx->kr && !ctx->kr->broken ? &ctx->kr->ring : NULL;
}

extern const struct xring_op op_passthrough;

#endif
