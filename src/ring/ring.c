/* Creating and destroying rings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/proc.h"
#include "files/files.h"
#include "nic/portcfg.h"
#include "ops/kring.h"
#include "ops/xsock.h"
#include "ring/ring.h"
#include "stats/stats.h"
#include "util/log.h"
#include "util/mem.h"

/* Setup flags xring honours, or accepts because they change nothing here: the submitting
 * thread already does all the work an SQ thread or task-work deferral would. */
#define SETUP_ACCEPTED                                                                             \
	(XRING_SETUP_SQPOLL | XRING_SETUP_SQ_AFF | XRING_SETUP_CQSIZE | XRING_SETUP_CLAMP |        \
	 XRING_SETUP_ATTACH_WQ | XRING_SETUP_SUBMIT_ALL | XRING_SETUP_COOP_TASKRUN |               \
	 XRING_SETUP_TASKRUN_FLAG | XRING_SETUP_SINGLE_ISSUER | XRING_SETUP_DEFER_TASKRUN |        \
	 XRING_SETUP_NO_SQARRAY)

#define FEATURES                                                                                   \
	(XRING_FEAT_SINGLE_MMAP | XRING_FEAT_NODROP | XRING_FEAT_SUBMIT_STABLE |                   \
	 XRING_FEAT_FAST_POLL | XRING_FEAT_EXT_ARG | XRING_FEAT_CQE_SKIP | XRING_FEAT_LINKED_FILE)

#define DEFAULT_SPIN_US 50
#define MAX_SPIN_US     1000000

static unsigned roundup_pow2(unsigned v)
{
	unsigned r = 1;

	while (r < v)
		r <<= 1;
	return r;
}

static void ctx_free(struct xring_ctx *ctx)
{
	if (!ctx)
		return;
	xsock_exit(ctx);
	netport_exit(ctx);
	files_free(ctx);
	bufring_free_all(ctx);
	kring_exit(ctx);
	timer_heap_free(&ctx->timers);
	req_pool_destroy(&ctx->pool);
	stats_ring_close(ctx);
	free(ctx->ovf);
	free(ctx);
}

XRING_API int xring_queue_init_params(unsigned entries, struct xring *ring, struct xring_params *p)
{
	unsigned flags = p->flags, sq, cq;
	const struct xring_conf *conf;
	struct xring_ctx *ctx;
	int err;

	if ((flags & ~SETUP_ACCEPTED) || p->resv[0] || p->resv[1] || p->resv[2])
		return -EINVAL;
	/* The process's parameters and rules, read and validated once: a bad one refuses every
	 * ring. */
	err = proc_conf(&conf);
	if (err)
		return err;
	/* 0 entries: the process default (XRING_SQ_ENTRIES), where the kernel would refuse. */
	if (!entries)
		entries = conf->sq_entries;
	/* Combinations the kernel refuses are refused here too. */
	if ((flags & XRING_SETUP_TASKRUN_FLAG) &&
	    !(flags & (XRING_SETUP_COOP_TASKRUN | XRING_SETUP_DEFER_TASKRUN)))
		return -EINVAL;
	if ((flags & XRING_SETUP_DEFER_TASKRUN) && !(flags & XRING_SETUP_SINGLE_ISSUER))
		return -EINVAL;
	if ((flags & XRING_SETUP_SQ_AFF) && !(flags & XRING_SETUP_SQPOLL))
		return -EINVAL;
	if (entries > XRING_MAX_ENTRIES) {
		if (!(flags & XRING_SETUP_CLAMP))
			return -EINVAL;
		entries = XRING_MAX_ENTRIES;
	}
	sq = roundup_pow2(entries);
	if (flags & XRING_SETUP_CQSIZE) {
		cq = p->cq_entries;
		if (!cq)
			return -EINVAL;
		if (cq > XRING_MAX_CQ_ENTRIES) {
			if (!(flags & XRING_SETUP_CLAMP))
				return -EINVAL;
			cq = XRING_MAX_CQ_ENTRIES;
		}
		cq = roundup_pow2(cq);
		if (cq < sq)
			return -EINVAL;
	} else if (conf->cq_entries) {
		/* XRING_CQ_ENTRIES, never fewer than the SQ entries. */
		cq = roundup_pow2(conf->cq_entries);
		if (cq < sq)
			cq = sq;
	} else {
		cq = 2 * sq;
	}
	err = portcfg_open_env(conf);
	if (err)
		return err;

	memset(ring, 0, sizeof(*ring));
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ring->sq.sqes = alloc_aligned(64, sizeof(struct xring_sqe) * sq);
	ring->cq.cqes = alloc_aligned(64, sizeof(struct xring_cqe) * cq);
	err = -ENOMEM;
	if (!ring->sq.sqes || !ring->cq.cqes)
		goto fail;
	err = req_pool_init(&ctx->pool, sq < 64 ? 64 : sq);
	if (err)
		goto fail;
	err = timer_heap_init(&ctx->timers, 64);
	if (err)
		goto fail;
	err = kring_init(ctx, sq);
	if (err)
		goto fail;

	ring->sq.entries = sq;
	ring->sq.mask = sq - 1;
	ring->cq.entries = cq;
	ring->cq.mask = cq - 1;
	ring->flags = flags;
	ring->features = FEATURES;
	ring->ctx = ctx;
	ctx->ring = ring;
	ctx->evfd = -1;
	ctx->setup_flags = flags;
	ctx->spin_ns = (uint64_t) conf->spin_us * 1000;
	stats_ring_open(ctx);

	p->sq_entries = sq;
	p->cq_entries = cq;
	p->features = FEATURES;
	memset(&p->sq_off, 0, sizeof(p->sq_off));
	memset(&p->cq_off, 0, sizeof(p->cq_off));
	return 0;
fail:
	free(ring->sq.sqes);
	free(ring->cq.cqes);
	ctx_free(ctx);
	memset(ring, 0, sizeof(*ring));
	return err;
}

XRING_API int xring_queue_init(unsigned entries, struct xring *ring, unsigned flags)
{
	struct xring_params p;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	return xring_queue_init_params(entries, ring, &p);
}

XRING_API void xring_queue_exit(struct xring *ring)
{
	if (!ring->ctx)
		return;
	ctx_free(ring->ctx);
	free(ring->sq.sqes);
	free(ring->cq.cqes);
	memset(ring, 0, sizeof(*ring));
}
