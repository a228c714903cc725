/*
 * Passthrough to the kernel ring. xring keeps links, drain and CQE_SKIP_SUCCESS to itself
 * (it sequences chains and decides what a chain's failure is), so each request reaches the
 * kernel as a lone SQE whose user_data is the request; the kernel's CQE completes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "files/files.h"
#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"
#include "util/log.h"

/* Low bit of a kernel user_data: a CQE for xring itself (a cancellation it asked for), not
 * for a request. Requests are 8-byte aligned. */
#define KR_TAG_CANCEL 1ull
/* The user_data of kring_sync()'s SQE: never a request's (requests are aligned). */
#define KR_TAG_SYNC   2ull

static struct io_uring_sqe *kring_sqe(struct kring *kr)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&kr->ring);

	if (!sqe) {
		/* The kernel SQ is full: hand it over and take a fresh slot. */
		io_uring_submit(&kr->ring);
		kr->unsubmitted = 0;
		sqe = io_uring_get_sqe(&kr->ring);
	}
	if (sqe)
		kr->unsubmitted++;
	return sqe;
}

void kring_flush(struct xring_ctx *ctx)
{
	struct kring *kr = ctx->kr;

	/* A waiter that will sleep at once hands the SQEs over with its wait: one system call. */
	if (ctx->kr_defer)
		return;
	if (kr && kr->unsubmitted) {
		int ret = io_uring_submit(&kr->ring);

		if (ret < 0 && ret != -EBUSY && ret != -EAGAIN)
			log_warn("kernel ring submit: %d", ret);
		kr->unsubmitted = 0;
	}
}

/* The kernel fails a link on a short transfer where the caller asked for all of it; xring
 * sequences chains itself, so it applies the same rule to the result. */
static bool short_is_failure(const struct xreq *req, int32_t res)
{
	const struct xring_sqe *sqe = &req->u.sqe;

	if (res < 0)
		return true;
	switch (req->opcode) {
	case XRING_OP_READ:
	case XRING_OP_WRITE:
	case XRING_OP_READ_FIXED:
	case XRING_OP_WRITE_FIXED:
		return (uint32_t) res < sqe->len;
	case XRING_OP_SEND:
	case XRING_OP_RECV:
	case XRING_OP_SEND_ZC:
		return (sqe->msg_flags & MSG_WAITALL) && (uint32_t) res < sqe->len;
	default:
		return false;
	}
}

static void kr_cqe(struct xring_ctx *ctx, const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	struct xreq *req;

	if (!ud)
		return;
	if (ud & KR_TAG_CANCEL) {
		/* One of the kernel cancellations an ASYNC_CANCEL asked for has answered. */
		req = (struct xreq *) (uintptr_t) (ud & ~KR_TAG_CANCEL);
		if (cqe->res == 0 || cqe->res == -EALREADY)
			req->u.cancel.nr++;
		if (req->u.cancel.first == 1)
			req->u.cancel.first = cqe->res;
		if (--req->u.cancel.outstanding == 0) {
			bool all = req->u.cancel.flags &
				   (XRING_ASYNC_CANCEL_ALL | XRING_ASYNC_CANCEL_ANY);

			req_complete(ctx, req, all ? req->u.cancel.nr : req->u.cancel.first, 0);
		}
		return;
	}
	req = (struct xreq *) (uintptr_t) ud;
	if (cqe->flags & IORING_CQE_F_MORE) {
		/* Multishot results and the first CQE of a zero-copy send: the request goes on. */
		if (!(req->flags & REQ_F_CQE_SKIP) || cqe->res < 0)
			cq_post(ctx, req->user_data, cqe->res, cqe->flags);
		if (req->opcode == XRING_OP_SEND_ZC || req->opcode == XRING_OP_SENDMSG_ZC) {
			/* The result decides the chain, and the chain goes on at the result (the
			 * notification is a request of its own in the kernel); a failure cancels
			 * it once the notification is in, as the kernel orders it. */
			if (short_is_failure(req, cqe->res))
				req_set_fail(req);
			else
				req_release_link(ctx, req);
		}
		return;
	}
	ctx->kr->inflight--;
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		/* A notification: its result (0) says nothing about the send. */
		if (!(req->flags & REQ_F_FAIL))
			req->flags |= REQ_F_NO_FAIL;
	} else if (!short_is_failure(req, cqe->res)) {
		req->flags |= REQ_F_NO_FAIL;
	} else {
		req_set_fail(req);
	}
	req_complete(ctx, req, cqe->res, cqe->flags);
}

/* The oldest CQE not yet processed: stashed ones first, they came before the ring's. */
static bool kr_next(struct kring *kr, struct io_uring_cqe *out)
{
	struct io_uring_cqe *cqe;

	if (xring_unlikely(kr->nstash)) {
		*out = kr->stash[kr->stash_head++];
		if (kr->stash_head == kr->nstash)
			kr->stash_head = kr->nstash = 0;
		return true;
	}
	if (io_uring_peek_cqe(&kr->ring, &cqe))
		return false;
	*out = *cqe;
	/* Seen before it is processed: processing may run kring_sync(), which reaps too. */
	io_uring_cqe_seen(&kr->ring, cqe);
	return true;
}

static int kr_poll(struct xring_ctx *ctx, struct xring_source *src)
{
	struct kring *kr = ctx->kr;
	struct io_uring_cqe cqe;
	unsigned n = 0;
	bool was = ctx->batching;

	if (kr->unsubmitted)
		kring_flush(ctx);
	ctx->batching = true;
	while (kr_next(kr, &cqe)) {
		kr_cqe(ctx, &cqe);
		n++;
	}
	ctx->batching = was;
	if (n && !was)
		req_run_later(ctx);
	return (int) n;
}

static int stash(struct kring *kr, const struct io_uring_cqe *cqe)
{
	if (kr->nstash == kr->stash_cap) {
		unsigned cap = kr->stash_cap ? kr->stash_cap * 2 : 16;
		struct io_uring_cqe *s = realloc(kr->stash, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		kr->stash = s;
		kr->stash_cap = cap;
	}
	kr->stash[kr->nstash++] = *cqe;
	return 0;
}

/*
 * Moves the CQEs the kernel ring holds to the stash, in order, but for one tagged tag (0: none),
 * which goes to *found instead: 1 when it came, 0 when the ring is empty, -ENOMEM when the stash
 * cannot grow (what is left stays in the ring, in order, for the next poll).
 */
static int drain_to_stash(struct kring *kr, uint64_t tag, struct io_uring_cqe *found)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&kr->ring, &cqe) == 0) {
		struct io_uring_cqe c = *cqe;

		if ((!tag || c.user_data != tag) && stash(kr, &c))
			return -ENOMEM;
		io_uring_cqe_seen(&kr->ring, cqe);
		if (tag && c.user_data == tag) {
			*found = c;
			return 1;
		}
	}
	return 0;
}

int kring_sync(struct xring_ctx *ctx, const struct io_uring_sqe *sqe, uint32_t *cflags)
{
	struct kring *kr = ctx->kr;
	struct io_uring_sqe *ksqe;

	if (!kring_ring(ctx))
		return -EOPNOTSUPP;
	ksqe = kring_sqe(kr);
	if (!ksqe)
		return -EAGAIN;
	*ksqe = *sqe;
	ksqe->user_data = KR_TAG_SYNC;
	kr->unsubmitted = 0;
	/* Bounded: the operations run inline, so their CQE is there when submit returns. */
	for (int tries = 0; tries < 1000; tries++) {
		struct io_uring_cqe *cqe, c;
		int ret = tries ? io_uring_wait_cqe(&kr->ring, &cqe)
				: io_uring_submit_and_wait(&kr->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
		ret = drain_to_stash(kr, KR_TAG_SYNC, &c);
		if (ret < 0)
			return ret;
		if (ret) {
			if (cflags)
				*cflags = c.flags;
			return c.res;
		}
	}
	return -ETIME;
}

static void unstash(struct kring *kr, unsigned i)
{
	memmove(&kr->stash[i], &kr->stash[i + 1], (kr->nstash - i - 1) * sizeof(*kr->stash));
	if (--kr->nstash == kr->stash_head)
		kr->stash_head = kr->nstash = 0;
}

/* Finds req's last CQE among the stashed ones and drops it; the CQEs it posted before (with
 * F_MORE) go to the application now, in their order. */
static bool unstash_last(struct xring_ctx *ctx, struct kring *kr, struct xreq *req)
{
	for (unsigned i = kr->stash_head; i < kr->nstash; i++) {
		struct io_uring_cqe c = kr->stash[i];

		if (c.user_data != (uint64_t) (uintptr_t) req)
			continue;
		unstash(kr, i--);
		if (!(c.flags & IORING_CQE_F_MORE)) {
			kr->inflight--;
			return true;
		}
		cq_post(ctx, req->user_data, c.res, c.flags);
	}
	return false;
}

int kring_take_back(struct xring_ctx *ctx, struct xreq *req)
{
	struct kring *kr = ctx->kr;
	struct io_uring_sqe sqe;
	int ret;

	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_cancel64(&sqe, (uint64_t) (uintptr_t) req, 0);
	ret = kring_sync(ctx, &sqe, NULL);
	if (ret)
		return ret;
	/* Its -ECANCELED is posted by the kernel's task work, at the latest before the next
	 * wait returns: bounded, it is there at once in practice. */
	for (int tries = 0; tries < 1000; tries++) {
		struct __kernel_timespec ts = {0, 1000000};
		struct io_uring_cqe *cqe;

		if (drain_to_stash(kr, 0, NULL) < 0)
			return -ENOMEM; /* left in the ring; the request completes there */
		if (unstash_last(ctx, kr, req))
			return 0;
		io_uring_wait_cqe_timeout(&kr->ring, &cqe, &ts);
	}
	log_warn("kernel request %p: cancelled, but its CQE never came", (void *) req);
	return -ETIME;
}

static int kr_wait_fd(struct xring_source *src)
{
	struct kring *kr = (struct kring *) ((char *) src - offsetof(struct kring, src));

	return kr->ring.ring_fd;
}

static int kr_arm(struct xring_source *src)
{
	struct kring *kr = (struct kring *) ((char *) src - offsetof(struct kring, src));

	/* Completions already waiting in the kernel CQ: no sleeping. */
	return io_uring_cq_ready(&kr->ring) || kr->nstash ? -EAGAIN : 0;
}

int kring_init(struct xring_ctx *ctx, unsigned entries)
{
	struct io_uring_params p;
	struct kring *kr = calloc(1, sizeof(*kr));
	int ret;

	if (!kr)
		return -ENOMEM;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = entries * 4;
	ret = io_uring_queue_init_params(entries, &kr->ring, &p);
	if (ret) {
		/* io_uring may be disabled (kernel.io_uring_disabled); xring still runs its own
		 * opcodes and offloaded sockets. */
		log_warn("no kernel io_uring (%d): opcodes xring does not implement will fail",
			 ret);
		kr->broken = true;
	} else {
		struct io_uring_probe *probe = io_uring_get_probe_ring(&kr->ring);

		for (unsigned op = 0; probe && op <= probe->last_op && op < probe->ops_len; op++)
			if (probe->ops[op].flags & IO_URING_OP_SUPPORTED)
				kr->supported[op / 8] |= (uint8_t) (1u << (op % 8));
		io_uring_free_probe(probe);
		kr->src.poll = kr_poll;
		kr->src.wait_fd = kr_wait_fd;
		kr->src.arm = kr_arm;
		engine_add_source(ctx, &kr->src);
	}
	ctx->kr = kr;
	return 0;
}

int kring_submit_and_sleep(struct xring_ctx *ctx, unsigned want, struct __kernel_timespec *ts,
			   const sigset_t *sigmask)
{
	struct kring *kr = ctx->kr;
	struct io_uring_cqe *cqe;
	int ret;

	/* Several CQEs at once only when every live request is the kernel's: otherwise one of
	 * the wanted completions may be xring's own, due after the first kernel CQE. */
	if (!want || ctx->pool.allocated != kr->inflight)
		want = 1;
	ret = io_uring_submit_and_wait_timeout(&kr->ring, &cqe, want, ts, (sigset_t *) sigmask);
	kr->unsubmitted = 0;
	return ret == -EINTR ? -EINTR : 0;
}

void kring_exit(struct xring_ctx *ctx)
{
	if (!ctx->kr)
		return;
	if (!ctx->kr->broken)
		io_uring_queue_exit(&ctx->kr->ring);
	free(ctx->kr->stash);
	free(ctx->kr);
	ctx->kr = NULL;
}

/* The passthrough operation. */

static int pt_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	if (!kring_ring(ctx))
		return -EOPNOTSUPP;
	/* An opcode this kernel lacks is refused at once, as the kernel itself refuses it. */
	if (!(ctx->kr->supported[sqe->opcode / 8] & (1u << (sqe->opcode % 8))))
		return -EINVAL;
	/* The kernel refuses CQE_SKIP_SUCCESS on a send_zc, but never sees xring's flag. */
	if ((sqe->opcode == XRING_OP_SEND_ZC || sqe->opcode == XRING_OP_SENDMSG_ZC) &&
	    (req->flags & REQ_F_CQE_SKIP))
		return -EINVAL;
	req->u.sqe = *sqe;
	return 0;
}

static int64_t pt_issue(struct xring_ctx *ctx, struct xreq *req)
{
	struct io_uring_sqe *ksqe;

	/* The kernel will put a file where an offloaded socket is: that socket ends now, before
	 * a later offload could take the slot again (or, for an offloaded socket's descriptor,
	 * the slot becomes its second name). Nor can it put one, or close one, in an xring-only
	 * slot. */
	if (xring_unlikely(ctx->xsocks != NULL || (ctx->files && ctx->files->n > ctx->files->kn))) {
		int err = xdirect_kernel_issue(ctx, &req->u.sqe);

		if (err)
			return err;
	}
	ksqe = kring_sqe(ctx->kr);
	if (!ksqe)
		return -EAGAIN;
	memcpy(ksqe, &req->u.sqe, sizeof(*ksqe));
	ksqe->flags &= (uint8_t) (IOSQE_FIXED_FILE | IOSQE_ASYNC | IOSQE_BUFFER_SELECT);
	ksqe->user_data = (uint64_t) (uintptr_t) req;
	ctx->kr->inflight++;
	ctx->st->passthrough++;
	if (!ctx->batching)
		kring_flush(ctx);
	return OP_QUEUED;
}

/* Asks the kernel to cancel req; the answer arrives as a CQE tagged with the cancelling
 * request (see kr_cqe). */
static int pt_cancel(struct xring_ctx *ctx, struct xreq *req)
{
	struct xreq *canceller = ctx->canceller;
	struct io_uring_sqe *ksqe = kring_sqe(ctx->kr);

	if (!ksqe)
		return -EALREADY;
	io_uring_prep_cancel64(ksqe, (uint64_t) (uintptr_t) req, 0);
	/* A link timeout has no one to tell: its answer is dropped (user_data 0). */
	ksqe->user_data = canceller ? (uint64_t) (uintptr_t) canceller | KR_TAG_CANCEL : 0;
	if (canceller)
		canceller->u.cancel.outstanding++;
	if (!ctx->batching)
		kring_flush(ctx);
	return OP_CANCEL_ASYNC;
}

const struct xring_op op_passthrough = {
	.name = "PASSTHROUGH",
	.ioprio = true,
	.buffer_select = true,
	.prep = pt_prep,
	.issue = pt_issue,
	.cancel = pt_cancel,
};
