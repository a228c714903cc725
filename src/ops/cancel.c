/* IORING_OP_ASYNC_CANCEL: stop requests still in flight, found by user_data, fd or opcode. */
#include <errno.h>
#include <fcntl.h>

#include "files/files.h"
#include "ops/ops.h"
#include "ring/ring.h"

#define CANCEL_FLAGS                                                                               \
	(XRING_ASYNC_CANCEL_ALL | XRING_ASYNC_CANCEL_FD | XRING_ASYNC_CANCEL_ANY |                 \
	 XRING_ASYNC_CANCEL_FD_FIXED | XRING_ASYNC_CANCEL_USERDATA | XRING_ASYNC_CANCEL_OP)

static int cancel_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	uint32_t flags = sqe->cancel_flags;

	if (sqe->off || sqe->splice_fd_in)
		return -EINVAL;
	if (flags & ~CANCEL_FLAGS)
		return -EINVAL;
	if ((flags & XRING_ASYNC_CANCEL_ANY) &&
	    (flags & (XRING_ASYNC_CANCEL_FD | XRING_ASYNC_CANCEL_OP)))
		return -EINVAL;
	req->u.cancel.addr = sqe->addr;
	req->u.cancel.flags = flags;
	req->u.cancel.fd = sqe->fd;
	req->u.cancel.opcode = (uint8_t) sqe->len;
	return 0;
}

static bool matches(const struct xreq *c, const struct xreq *r)
{
	uint32_t flags = c->u.cancel.flags;
	bool by_data = !(flags & (XRING_ASYNC_CANCEL_FD | XRING_ASYNC_CANCEL_OP)) ||
		       (flags & XRING_ASYNC_CANCEL_USERDATA);

	if (!r->op->cancel || (r->flags & REQ_F_RESULT_OUT))
		return false; /* not something a cancellation can find, as in the kernel */
	if (flags & XRING_ASYNC_CANCEL_ANY)
		return true;
	if (flags & XRING_ASYNC_CANCEL_FD) {
		bool fixed = (flags & XRING_ASYNC_CANCEL_FD_FIXED) || (c->flags & REQ_F_FIXED_FILE);

		if (r->fd != c->u.cancel.fd || fixed != !!(r->flags & REQ_F_FIXED_FILE))
			return false;
	}
	if ((flags & XRING_ASYNC_CANCEL_OP) && r->opcode != c->u.cancel.opcode)
		return false;
	if (by_data && r->user_data != c->u.cancel.addr)
		return false;
	return true;
}

static int64_t cancel_issue(struct xring_ctx *ctx, struct xreq *req)
{
	uint32_t flags = req->u.cancel.flags;
	bool all = flags & (XRING_ASYNC_CANCEL_ALL | XRING_ASYNC_CANCEL_ANY);
	struct xreq *r, *next;
	int nr = 0;

	if (flags & XRING_ASYNC_CANCEL_FD) {
		/* The key must name an open file, as the kernel resolves it before searching. */
		if ((flags & XRING_ASYNC_CANCEL_FD_FIXED) || (req->flags & REQ_F_FIXED_FILE)) {
			/* A slot of the registered table (whether it holds a file, only the kernel
			 * ring knows: an empty one finds nothing here). */
			if (!ctx->files || (uint32_t) req->u.cancel.fd >= ctx->files->n)
				return -EBADF;
		} else if (req->u.cancel.fd < 0 || fcntl(req->u.cancel.fd, F_GETFD) < 0) {
			return -EBADF;
		}
	}
	req->u.cancel.outstanding = 0;
	req->u.cancel.first = 1;
	ctx->canceller = req;
	for (r = ctx->pending.first; r; r = next) {
		int ret;

		next = r->lnext;
		if (!matches(req, r))
			continue;
		ret = req_try_cancel(ctx, r);
		if (ret == 0)
			req_complete_later(ctx, r, -ECANCELED);
		if (!all) {
			ctx->canceller = NULL;
			/* A kernel request: its ring answers, and that answer is ours. */
			return ret == OP_CANCEL_ASYNC ? OP_QUEUED : ret;
		}
		if (ret != OP_CANCEL_ASYNC)
			nr++;
		/* Completions are deferred, so the list only lost r; next is still valid. */
	}
	ctx->canceller = NULL;
	if (req->u.cancel.outstanding) {
		req->u.cancel.nr = nr;
		return OP_QUEUED;
	}
	return all ? nr : -ENOENT;
}

const struct xring_op op_async_cancel = {
	.name = "ASYNC_CANCEL",
	.prep = cancel_prep,
	.issue = cancel_issue,
};
