/* Fixed buffers and provided buffer rings, registered with the kernel ring that reads them. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "files/files.h"

#include "ops/kring.h"

_Static_assert(sizeof(struct xring_buf) == sizeof(struct io_uring_buf), "buf layout");
_Static_assert(sizeof(struct xring_buf_reg) == sizeof(struct io_uring_buf_reg), "buf_reg layout");

XRING_API int xring_register_buffers(struct xring *ring, const struct iovec *iovecs,
				     unsigned nr_iovecs)
{
	struct io_uring *kr = kring_ring(ring->ctx);

	return kr ? io_uring_register_buffers(kr, iovecs, nr_iovecs) : -EOPNOTSUPP;
}

XRING_API int xring_unregister_buffers(struct xring *ring)
{
	struct io_uring *kr = kring_ring(ring->ctx);

	return kr ? io_uring_unregister_buffers(kr) : -EOPNOTSUPP;
}

static struct bufring *group(struct xring_ctx *ctx, uint16_t bgid)
{
	for (struct bufring *g = ctx->bufrings; g; g = g->next)
		if (g->bgid == bgid)
			return g;
	return NULL;
}

bool bufring_empty(struct xring_ctx *ctx, uint16_t bgid)
{
	struct bufring *g = group(ctx, bgid);

	return !g || g->head == __atomic_load_n(&g->br->tail, __ATOMIC_ACQUIRE);
}

struct xring_buf *bufring_take(struct xring_ctx *ctx, uint16_t bgid)
{
	struct bufring *g = group(ctx, bgid);
	uint16_t tail;
	struct xring_buf *b;

	if (!g)
		return NULL;
	/* Acquire: the entries before the tail were written before it was published. */
	tail = __atomic_load_n(&g->br->tail, __ATOMIC_ACQUIRE);
	if (g->head == tail)
		return NULL;
	b = &g->br->bufs[g->head & g->mask];
	g->head++;
	return b;
}

bool bufring_exists(struct xring_ctx *ctx, uint16_t bgid)
{
	return group(ctx, bgid) != NULL;
}

void bufring_free_all(struct xring_ctx *ctx)
{
	while (ctx->bufrings) {
		struct bufring *g = ctx->bufrings;

		ctx->bufrings = g->next;
		free(g);
	}
}

XRING_API int xring_register_buf_ring(struct xring *ring, struct xring_buf_reg *reg, unsigned flags)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	struct bufring *g;
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	ret = io_uring_register_buf_ring(kr, (struct io_uring_buf_reg *) reg, flags);
	if (ret)
		return ret;
	/* Offloaded sockets take buffers from the same ring, with a head of xring's own. */
	g = calloc(1, sizeof(*g));
	if (!g) {
		io_uring_unregister_buf_ring(kr, reg->bgid);
		return -ENOMEM;
	}
	g->br = (struct xring_buf_ring *) (uintptr_t) reg->ring_addr;
	g->mask = reg->ring_entries - 1;
	g->bgid = reg->bgid;
	g->next = ring->ctx->bufrings;
	ring->ctx->bufrings = g;
	return 0;
}

XRING_API int xring_unregister_buf_ring(struct xring *ring, int bgid)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	ret = io_uring_unregister_buf_ring(kr, bgid);
	if (ret == 0)
		for (struct bufring **pp = &ring->ctx->bufrings; *pp; pp = &(*pp)->next)
			if ((*pp)->bgid == bgid) {
				struct bufring *g = *pp;

				*pp = g->next;
				free(g);
				break;
			}
	return ret;
}

XRING_API struct xring_buf_ring *xring_setup_buf_ring(struct xring *ring, unsigned nentries,
						      int bgid, unsigned flags, int *ret)
{
	size_t len = (size_t) nentries * sizeof(struct xring_buf);
	struct xring_buf_reg reg = {0};
	struct xring_buf_ring *br;
	int err;

	if (!nentries || nentries > 32768 || (nentries & (nentries - 1))) {
		*ret = -EINVAL;
		return NULL;
	}
	br = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED) {
		*ret = -ENOMEM;
		return NULL;
	}
	reg.ring_addr = (uint64_t) (uintptr_t) br;
	reg.ring_entries = nentries;
	reg.bgid = (uint16_t) bgid;
	err = xring_register_buf_ring(ring, &reg, flags);
	if (err) {
		munmap(br, len);
		*ret = err;
		return NULL;
	}
	xring_buf_ring_init(br);
	*ret = 0;
	return br;
}

XRING_API int xring_free_buf_ring(struct xring *ring, struct xring_buf_ring *br, unsigned nentries,
				  int bgid)
{
	int ret = xring_unregister_buf_ring(ring, bgid);

	if (ret)
		return ret;
	munmap(br, (size_t) nentries * sizeof(struct xring_buf));
	return 0;
}
