/* IORING_OP_NOP: completes at once, with 0 or an injected result. */
#include <errno.h>
#include <fcntl.h>

#include "ops/ops.h"
#include "ring/ring.h"

#define NOP_FLAGS                                                                                  \
	(XRING_NOP_INJECT_RESULT | XRING_NOP_FILE | XRING_NOP_FIXED_FILE |                         \
	 XRING_NOP_FIXED_BUFFER | XRING_NOP_TW | XRING_NOP_CQE32)

static int64_t nop_quick(struct xring_ctx *ctx, const struct xring_sqe *sqe)
{
	uint32_t fl = sqe->nop_flags;

	if (xring_likely(!fl))
		return 0;
	if (fl == XRING_NOP_INJECT_RESULT)
		return (int32_t) sqe->len;
	return OP_NEED_REQ;
}

static int nop_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	uint32_t fl = sqe->nop_flags;

	if (fl & ~NOP_FLAGS)
		return -EINVAL;
	/* xring rings have 16-byte CQEs only (XRING_SETUP_CQE32 is refused). */
	if (fl & XRING_NOP_CQE32)
		return -EINVAL;
	req->u.sqe.nop_flags = fl;
	req->u.sqe.len = sqe->len;
	req->u.sqe.fd = sqe->fd;
	return 0;
}

static int64_t nop_issue(struct xring_ctx *ctx, struct xreq *req)
{
	uint32_t fl = req->u.sqe.nop_flags;

	if (fl & XRING_NOP_FILE) {
		/* No direct-descriptor table exists yet: every fixed index is empty. */
		if (fl & XRING_NOP_FIXED_FILE)
			return -EBADF;
		if (req->u.sqe.fd < 0 || fcntl(req->u.sqe.fd, F_GETFD) < 0)
			return -EBADF;
	}
	if (fl & XRING_NOP_FIXED_BUFFER)
		return -EFAULT; /* no registered buffers */
	return (fl & XRING_NOP_INJECT_RESULT) ? (int32_t) req->u.sqe.len : 0;
}

const struct xring_op op_nop = {
	.name = "NOP",
	.quick = nop_quick,
	.prep = nop_prep,
	.issue = nop_issue,
};
