/*
 * Posting completions. The CQ never drops one: when it is full, or while older completions
 * still wait, a CQE goes to the overflow list, which flows back in order as the application
 * makes room (xring_cq_advance calls __xring_flush_overflow).
 */
#include <errno.h>
#include <stdlib.h>

#include <unistd.h>

#include "ops/kring.h"
#include "ring/ring.h"
#include "util/log.h"

static int ovf_grow(struct xring_ctx *ctx)
{
	unsigned cap = ctx->ovf_cap ? ctx->ovf_cap * 2 : 64;
	struct xring_cqe *v = malloc(sizeof(*v) * cap);
	unsigned n = ctx->ovf_tail - ctx->ovf_head;

	if (!v)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		v[i] = ctx->ovf[(ctx->ovf_head + i) & (ctx->ovf_cap - 1)];
	free(ctx->ovf);
	ctx->ovf = v;
	ctx->ovf_cap = cap;
	ctx->ovf_head = 0;
	ctx->ovf_tail = n;
	return 0;
}

void cq_post_overflow(struct xring_ctx *ctx, uint64_t user_data, int32_t res, uint32_t flags)
{
	struct xring_cqe *cqe;

	ctx->st->cq_overflows++;
	if (ctx->ovf_tail - ctx->ovf_head == ctx->ovf_cap && ovf_grow(ctx)) {
		/* Only when malloc fails with the CQ full, as the kernel does in the same spot. */
		ctx->cq_dropped++;
		log_error("CQ full and no memory for the overflow list: completion %llu dropped",
			  (unsigned long long) user_data);
		return;
	}
	cqe = &ctx->ovf[ctx->ovf_tail++ & (ctx->ovf_cap - 1)];
	cqe->user_data = user_data;
	cqe->res = res;
	cqe->flags = flags;
	ctx->ring->cq.overflow = ctx->ovf_tail - ctx->ovf_head;
}

void cq_flush_overflow(struct xring_ctx *ctx)
{
	struct xring_cq *cq = &ctx->ring->cq;

	while (ctx->ovf_head != ctx->ovf_tail && cq->tail - cq->head < cq->entries) {
		cq->cqes[cq->tail & cq->mask] = ctx->ovf[ctx->ovf_head++ & (ctx->ovf_cap - 1)];
		cq->tail++;
	}
	cq->overflow = ctx->ovf_tail - ctx->ovf_head;
}

XRING_API void __xring_flush_overflow(struct xring *ring)
{
	cq_flush_overflow(ring->ctx);
}

void cq_notify(struct xring_ctx *ctx)
{
	uint64_t one = 1;

	if (ctx->evfd_posted == ctx->cq_posted)
		return;
	ctx->evfd_posted = ctx->cq_posted;
	/* A full counter (EAGAIN) already wakes the reader; nothing else can fail here. */
	(void) !write(ctx->evfd, &one, sizeof(one));
}

XRING_API int xring_register_eventfd(struct xring *ring, int fd)
{
	struct xring_ctx *ctx = ring->ctx;
	struct io_uring *kr = kring_ring(ctx);
	int ret;

	if (ctx->evfd >= 0)
		return -EBUSY;
	if (fd < 0)
		return -EBADF;
	/* Kernel completions signal it themselves, so a sleeping application wakes for them. */
	if (kr) {
		ret = io_uring_register_eventfd(kr, fd);
		if (ret)
			return ret;
	}
	ctx->evfd = fd;
	ctx->evfd_posted = ctx->cq_posted;
	return 0;
}

XRING_API int xring_unregister_eventfd(struct xring *ring)
{
	struct xring_ctx *ctx = ring->ctx;
	struct io_uring *kr = kring_ring(ctx);

	if (ctx->evfd < 0)
		return -ENXIO;
	if (kr)
		io_uring_unregister_eventfd(kr);
	ctx->evfd = -1;
	return 0;
}
