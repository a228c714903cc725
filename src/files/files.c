#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "conf/proc.h"
#include "files/files.h"
#include "ops/kring.h"
#include "ops/xsock.h"

void files_free(struct xring_ctx *ctx)
{
	free(ctx->files);
	ctx->files = NULL;
}

static int table_set(struct xring_ctx *ctx, unsigned n, unsigned kn)
{
	struct ftable *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->n = n;
	t->kn = kn;
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

/*
 * How many of n slots the kernel ring can register when it refused them all (-EMFILE): its
 * limit, when XRING_FILES_MAX lets xring keep the rest; 0 when the refusal stands. The kernel
 * caps a table at RLIMIT_NOFILE and at IORING_MAX_FIXED_FILES (1 << 20); liburing, refused,
 * has raised the soft limit already as far as it could.
 */
static unsigned kernel_part(unsigned n)
{
	const struct xring_conf *c;
	struct rlimit rl;
	rlim_t lim;

	if (proc_conf(&c) || n > c->files_max || getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	lim = rl.rlim_cur < (1u << 20) ? rl.rlim_cur : (1u << 20);
	return lim > 0 && lim < n ? (unsigned) lim : 0;
}

/* An xring-only slot can hold nothing but an offloaded socket. */
static bool xring_only_ok(struct xring_ctx *ctx, int fd)
{
	return fd == -1 || (ctx->xsocks && xsock_by_fd(ctx, fd));
}

/* Registers with the kernel ring first: its answer (and error code) is the answer. */
static int register_table(struct xring *ring, const int *files, unsigned nr_files, bool sparse)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	unsigned kn = nr_files;
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	ret = sparse ? io_uring_register_files_sparse(kr, nr_files)
		     : io_uring_register_files(kr, files, nr_files);
	if (ret == -EMFILE && (kn = kernel_part(nr_files)) != 0) {
		for (unsigned i = kn; files && i < nr_files; i++)
			if (!xring_only_ok(ring->ctx, files[i]))
				return -EMFILE;
		ret = sparse ? io_uring_register_files_sparse(kr, kn)
			     : io_uring_register_files(kr, files, kn);
	}
	if (ret)
		return ret;
	ret = table_set(ring->ctx, nr_files, kn);
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

/* The part of an update past the kernel's table: clear, skip, or an offloaded socket's
 * descriptor. Returns how many entries it did, or -EBADF when none. */
static int update_xring_only(struct xring_ctx *ctx, unsigned off, const int *files, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct xsock *xs;

		if (files[i] == IORING_REGISTER_FILES_SKIP)
			continue;
		if (!xring_only_ok(ctx, files[i]))
			break;
		xs = files[i] == -1 ? NULL : xsock_by_fd(ctx, files[i]);
		if (xs && xs->slot >= 0 && (unsigned) xs->slot != off + i)
			break; /* one slot per socket */
		if (ctx->xsocks)
			xdirect_slot_gone(ctx, off + i);
		if (xs)
			xdirect_alias(ctx, xs, off + i);
	}
	return i ? (int) i : -EBADF;
}

XRING_API int xring_register_files_update(struct xring *ring, unsigned off, const int *files,
					  unsigned nr_files)
{
	struct io_uring *kr = kring_ring(ring->ctx);
	const struct ftable *f = ring->ctx->files;
	unsigned kpart = nr_files;
	int ret = 0;

	if (!kr)
		return -EOPNOTSUPP;
	if (f && f->n > f->kn && off + (uint64_t) nr_files > f->kn) {
		if (off + (uint64_t) nr_files > f->n)
			return -EINVAL;
		kpart = off < f->kn ? f->kn - off : 0;
	}
	/* liburing's prototype takes a non-const array it never writes. */
	if (kpart)
		ret = io_uring_register_files_update(kr, off, (int *) files, kpart);
	if (ret > 0 && f)
		ring->ctx->files->kfull = false;
	/* An offloaded socket whose slot now holds something else, or nothing, ends. */
	for (int i = 0; i < ret; i++)
		if (files[i] != IORING_REGISTER_FILES_SKIP) {
			xdirect_slot_gone(ring->ctx, off + (unsigned) i);
			alias(ring->ctx, files[i], off + (unsigned) i);
		}
	if (ret == (int) kpart && kpart < nr_files) {
		int more =
			update_xring_only(ring->ctx, off + kpart, files + kpart, nr_files - kpart);

		ret = more < 0 && ret == 0 ? more : ret + (more > 0 ? more : 0);
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
	struct ftable *f = ring->ctx->files;
	int ret;

	if (!kr)
		return -EOPNOTSUPP;
	if (f && f->n > f->kn && off + (uint64_t) len > f->kn) {
		/* The kernel allocates from the part of the range it has (none, past it). */
		unsigned koff = off < f->kn ? off : f->kn;

		if (off + (uint64_t) len > f->n)
			return -EINVAL;
		ret = io_uring_register_file_alloc_range(kr, koff, f->kn - koff);
	} else {
		ret = io_uring_register_file_alloc_range(kr, off, len);
	}
	if (ret == 0 && f) {
		f->alloc_off = off;
		f->alloc_len = len;
		f->xhint = off;
		f->kfull = false;
	}
	return ret;
}
