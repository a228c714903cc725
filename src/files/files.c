#include <errno.h>
#include <stdlib.h>

#include "files/files.h"
#include "ops/kring.h"
#include "ops/xsock.h"

void files_free(struct xring_ctx *ctx)
{
	free(ctx->files);
	ctx->files = NULL;
}

static int table_set(struct xring_ctx *ctx, unsigned n)
{
	struct ftable *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->n = n;
	t->alloc_len = n;
	ctx->files = t;
	return 0;
}

/* An offloaded socket registered by its plain descriptor is offloaded in its slot too. */
static void alias(struct xring_ctx *ctx, int fd, unsigned slot)
{
	struct xsock *xs = ctx->xsocks ? xsock_by_fd(ctx, fd) : NULL;

	if (xs)
		xdirect_alias(ctx, xs, slot);
}

/* Registers with the kernel ring first: its answer (and error code) is the answer. */
static int register_table(struct xring *ring, const int *files, unsigned nr_files, bool sparse)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	ret = sparse ? io_uring_register_files_sparse(kr, nr_files)
		     : io_uring_register_files(kr, files, nr_files);
	if (ret)
		return ret;
	ret = table_set(ring->ctx, nr_files);
	if (ret)
		io_uring_unregister_files(kr);
	for (unsigned i = 0; ret == 0 && files && i < nr_files; i++)
		alias(ring->ctx, files[i], i);
	return ret;
}

XRING_API int xring_register_files(struct xring *ring, const int *files, unsigned nr_files)
{
	return register_table(ring, files, nr_files, false);
}

XRING_API int xring_register_files_sparse(struct xring *ring, unsigned nr_files)
{
	return register_table(ring, NULL, nr_files, true);
}

XRING_API int xring_register_files_update(struct xring *ring, unsigned off, const int *files,
					  unsigned nr_files)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	/* liburing's prototype takes a non-const array it never writes. */
	ret = io_uring_register_files_update(kr, off, (int *) files, nr_files);
	/* An offloaded socket whose slot now holds something else, or nothing, ends. */
	for (int i = 0; i < ret; i++)
		if (files[i] != IORING_REGISTER_FILES_SKIP) {
			xdirect_slot_gone(ring->ctx, off + (unsigned) i);
			alias(ring->ctx, files[i], off + (unsigned) i);
		}
	return ret;
}

XRING_API int xring_unregister_files(struct xring *ring)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	ret = io_uring_unregister_files(kr);
	if (ret == 0) {
		if (ring->ctx->xsocks)
			xdirect_unregister(ring->ctx);
		files_free(ring->ctx);
	}
	return ret;
}

XRING_API int xring_register_file_alloc_range(struct xring *ring, unsigned off, unsigned len)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	ret = io_uring_register_file_alloc_range(kr, off, len);
	if (ret == 0 && ring->ctx->files) {
		ring->ctx->files->alloc_off = off;
		ring->ctx->files->alloc_len = len;
	}
	return ret;
}
