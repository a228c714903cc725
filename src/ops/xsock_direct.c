/*
 * Direct descriptors on offloaded sockets. The kernel ring's registered table stays the one
 * table: an offloaded socket's slot holds its placeholder kernel socket there, so the kernel
 * allocates around it, FILES_UPDATE and close_direct act on it as on any file, and -ENFILE,
 * -EINVAL, -ENXIO come from the kernel itself. This file keeps the slot -> xsock map that
 * submission consults for fixed-file SQEs (an array lookup, only once some slot is offloaded).
 *
 * xring looks at a slot's socket through a plain descriptor the kernel installs for it
 * (IORING_OP_FIXED_FD_INSTALL, closed again right away), so the offload decision, the
 * placeholder's bind and the port reservation are the plain-descriptor code, unchanged. An
 * offloaded socket the application registers by its plain descriptor gets its slot as a second
 * name; it ends when its last name is closed.
 *
 * Slots past the kernel's table (xring-only slots, files/files.h) have no kernel file: an
 * accepted connection lands there when its accept names such a slot, or allocates and the
 * kernel's part of the alloc range is full. It gets no placeholder socket when xring knows
 * beforehand (a named slot, a range past the kernel's table, the kernel's part known full);
 * otherwise the one made for the kernel is closed at once. A
 * request xring would hand to the kernel on such a slot fails with -EBADF, the kernel's
 * answer for a slot it does not have.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/files.h"
#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"
#include "stats/stats.h"

/* Makes the map as large as the registered table, which slot must lie in. */
static int slots_reserve(struct xring_ctx *ctx, uint32_t slot)
{
	struct xsock_table *t = ctx->xsocks;

	if (slot < t->nslots)
		return 0;
	if (!ctx->files || slot >= ctx->files->n)
		return -EINVAL;
	free(t->by_slot);
	t->by_slot = calloc(ctx->files->n, sizeof(*t->by_slot));
	t->nslots = t->by_slot ? ctx->files->n : 0;
	return t->by_slot ? 0 : -ENOMEM;
}

/* Moves xs from its plain descriptor to slot (reserved already). */
static void set_slot(struct xring_ctx *ctx, struct xsock *xs, uint32_t slot)
{
	struct xsock_table *t = ctx->xsocks;

	xsock_unhash_fd(ctx, xs);
	xs->slot = (int) slot;
	t->by_slot[slot] = xs;
	t->ndirect++;
	stats_sock_ident(xs);
}

void xdirect_unslot(struct xring_ctx *ctx, struct xsock *xs)
{
	struct xsock_table *t = ctx->xsocks;

	if (xs->slot >= 0 && (unsigned) xs->slot < t->nslots && t->by_slot[xs->slot] == xs) {
		t->by_slot[xs->slot] = NULL;
		t->ndirect--;
	}
	xs->slot = -1;
	if (xs->fd >= 0) /* still named by its descriptor; otherwise it is closing */
		stats_sock_ident(xs);
}

void xdirect_slot_gone(struct xring_ctx *ctx, uint32_t slot)
{
	struct xsock *xs;

	if (!ctx->xsocks)
		return;
	xs = xsock_by_slot(ctx, slot);
	if (!xs)
		return;
	/* Still open by its plain descriptor: only the slot's name goes. */
	if (xs->fd >= 0)
		xdirect_unslot(ctx, xs);
	else
		xsock_free(ctx, xs);
}

bool xdirect_close(struct xring_ctx *ctx, struct xsock *xs, const struct xreq *req)
{
	bool kernel = true;

	if (req->u.sqe.file_index) {
		kernel = !files_xring_only(ctx->files, (uint32_t) xs->slot);
		xdirect_unslot(ctx, xs);
	} else if (xs->fd >= 0) {
		xsock_unhash_fd(ctx, xs);
	}
	/* Like the kernel's file, the socket lives while the table or a descriptor holds it. */
	if (xs->fd < 0 && xs->slot < 0)
		xsock_free(ctx, xs);
	return kernel;
}

void xdirect_alias(struct xring_ctx *ctx, struct xsock *xs, uint32_t slot)
{
	struct xsock_table *t = ctx->xsocks;

	/* One slot per socket: a second registration of it stays the kernel's placeholder. */
	if (xs->slot >= 0 || slots_reserve(ctx, slot))
		return;
	xdirect_slot_gone(ctx, slot);
	xs->slot = (int) slot;
	t->by_slot[slot] = xs;
	t->ndirect++;
	stats_sock_ident(xs);
}

void xdirect_exit(struct xring_ctx *ctx)
{
	struct xsock_table *t = ctx->xsocks;

	for (unsigned i = 0; t->ndirect && i < t->nslots; i++)
		if (t->by_slot[i])
			xsock_free(ctx, t->by_slot[i]);
	free(t->by_slot);
	t->by_slot = NULL;
	t->nslots = 0;
}

void xdirect_unregister(struct xring_ctx *ctx)
{
	struct xsock_table *t = ctx->xsocks;

	for (unsigned i = 0; t->ndirect && i < t->nslots; i++)
		xdirect_slot_gone(ctx, i);
	free(t->by_slot);
	t->by_slot = NULL;
	t->nslots = 0;
}

/* A plain descriptor for the socket in slot (close-on-exec), or a negated errno. */
static int slot_fd(struct xring_ctx *ctx, uint32_t slot)
{
	struct io_uring_sqe sqe = {
		.opcode = XRING_OP_FIXED_FD_INSTALL,
		.flags = IOSQE_FIXED_FILE,
		.fd = (int32_t) slot,
	};

	return kring_sync(ctx, &sqe, NULL);
}

int64_t xdirect_issue(struct xring_ctx *ctx, struct xreq *req,
		      int64_t (*fn)(struct xring_ctx *, struct xreq *), bool worth)
{
	uint32_t slot = (uint32_t) req->fd;
	struct xsock *xs;
	int64_t res;
	int fd;

	if (worth && !ctx->xsocks) {
		ctx->xsocks = calloc(1, sizeof(*ctx->xsocks));
		worth = ctx->xsocks != NULL;
	}
	/* Without a plain descriptor the request stays the kernel's, which also answers a bad
	 * slot with its own error. */
	if (!worth || slots_reserve(ctx, slot) || (fd = slot_fd(ctx, slot)) < 0) {
		req->op = &op_passthrough;
		return op_passthrough.issue(ctx, req);
	}
	req->fd = fd;
	req->flags &= ~REQ_F_FIXED_FILE;
	ctx->xsocks->in_direct = true; /* nothing waits on the stand-in: see xsock_adopt() */
	res = fn(ctx, req);
	ctx->xsocks->in_direct = false;
	req->fd = (int32_t) slot;
	req->flags |= REQ_F_FIXED_FILE;
	xs = xsock_by_fd(ctx, fd);
	if (xs) {
		set_slot(ctx, xs, slot);
		xsock_adopt(ctx, xs);
	}
	close(fd);
	return res;
}

/* A free xring-only slot in the alloc range, searched from where the last one was found, as
 * the kernel searches its bitmap; -ENFILE when there is none. */
static int xring_only_alloc(struct xring_ctx *ctx, uint32_t *slot)
{
	struct ftable *f = ctx->files;
	struct xsock_table *t = ctx->xsocks;
	uint64_t end = (uint64_t) f->alloc_off + f->alloc_len;
	unsigned lo = f->alloc_off > f->kn ? f->alloc_off : f->kn;
	unsigned hi = end < f->n ? (unsigned) end : f->n;
	unsigned s;

	if (lo >= hi || slots_reserve(ctx, f->n - 1))
		return -ENFILE;
	s = f->xhint >= lo && f->xhint < hi ? f->xhint : lo;
	for (unsigned i = 0; i < hi - lo; i++, s = s + 1 < hi ? s + 1 : lo)
		if (!t->by_slot[s]) {
			f->xhint = s + 1;
			*slot = s;
			return 1;
		}
	return -ENFILE;
}

bool xdirect_fd_needed(struct xring_ctx *ctx, uint32_t file_index)
{
	const struct ftable *f = ctx->files;

	if (!file_index || !f || f->n <= f->kn)
		return true;
	if (file_index != XRING_FILE_INDEX_ALLOC)
		return !files_xring_only(f, file_index - 1);
	return f->alloc_off < f->kn && !f->kfull;
}

int64_t xdirect_adopt(struct xring_ctx *ctx, struct xsock *xs, int fd, uint32_t file_index)
{
	struct io_uring *kr = kring_ring(ctx);
	struct ftable *f = ctx->files;
	bool beyond = f && f->n > f->kn;
	uint32_t slot;
	int ret;

	if (!kr) {
		ret = -ENXIO;
	} else if (beyond && file_index != XRING_FILE_INDEX_ALLOC &&
		   files_xring_only(f, file_index - 1)) {
		slot = file_index - 1;
		ret = slots_reserve(ctx, slot) ? -ENOMEM : 1;
	} else if (beyond && file_index == XRING_FILE_INDEX_ALLOC && fd < 0) {
		/* The kernel has no part of the range, or its part is full. */
		ret = xring_only_alloc(ctx, &slot);
	} else if (fd < 0) {
		ret = -EBADF; /* xdirect_fd_needed() said otherwise */
	} else if (file_index == XRING_FILE_INDEX_ALLOC) {
		/* The kernel picks the slot from the alloc range: its choice, its -ENFILE. */
		int fds[1] = {fd};
		struct io_uring_sqe sqe = {
			.opcode = XRING_OP_FILES_UPDATE,
			.fd = -1,
			.off = IORING_FILE_INDEX_ALLOC,
			.addr = (uint64_t) (uintptr_t) fds,
			.len = 1,
		};

		ret = kring_sync(ctx, &sqe, NULL);
		slot = (uint32_t) fds[0];
		/* Its part is full: xring's part next, as one table would allocate. */
		if (ret == -ENFILE && beyond) {
			/* Until a kernel slot is freed, the next accepts need no kernel file. */
			f->kfull = true;
			ret = xring_only_alloc(ctx, &slot);
		}
	} else {
		slot = file_index - 1;
		ret = io_uring_register_files_update(kr, slot, &fd, 1);
	}
	if (ret > 0 && slots_reserve(ctx, slot)) {
		int none = -1;

		io_uring_register_files_update(kr, slot, &none, 1);
		if (f)
			f->kfull = false;
		ret = -ENOMEM;
	}
	if (fd >= 0)
		close(fd);
	if (ret < 0) {
		xsock_free(ctx, xs);
		return ret;
	}
	if (ret == 0) {
		xsock_free(ctx, xs);
		return -EINVAL;
	}
	/* A socket replaced there is gone, as the kernel's accept into a taken slot does. */
	xdirect_slot_gone(ctx, slot);
	set_slot(ctx, xs, slot);
	return file_index == XRING_FILE_INDEX_ALLOC ? (int64_t) slot : 0;
}

int xdirect_kernel_issue(struct xring_ctx *ctx, const struct xring_sqe *sqe)
{
	switch (sqe->opcode) {
	case XRING_OP_SOCKET:
	case XRING_OP_ACCEPT:
	case XRING_OP_OPENAT:
	case XRING_OP_OPENAT2:
		if (!sqe->file_index || sqe->file_index == XRING_FILE_INDEX_ALLOC)
			break;
		/* A kernel file cannot go where the kernel has no slot. */
		if (files_xring_only(ctx->files, sqe->file_index - 1))
			return -EBADF;
		/* Into a chosen slot: whatever is there is replaced. (Should the kernel fail the
		 * request, the placeholder stays in the slot as a plain kernel socket.) */
		if (ctx->xsocks)
			xdirect_slot_gone(ctx, sqe->file_index - 1);
		break;
	case XRING_OP_CLOSE:
		/* An empty xring-only slot (an offloaded socket's close never gets here). */
		if (sqe->file_index && files_xring_only(ctx->files, sqe->file_index - 1))
			return -EBADF;
		if (sqe->file_index && ctx->files)
			ctx->files->kfull = false; /* a kernel slot may come free */
		break;
	case XRING_OP_FILES_UPDATE:
		if (ctx->files)
			ctx->files->kfull = false;
		if (ctx->xsocks && sqe->off != IORING_FILE_INDEX_ALLOC) {
			const int32_t *fds = (const int32_t *) (uintptr_t) sqe->addr;

			for (uint32_t i = 0; i < sqe->len; i++) {
				struct xsock *xs;

				if (fds[i] == IORING_REGISTER_FILES_SKIP)
					continue;
				xdirect_slot_gone(ctx, (uint32_t) sqe->off + i);
				xs = xsock_by_fd(ctx, fds[i]);
				if (xs)
					xdirect_alias(ctx, xs, (uint32_t) sqe->off + i);
			}
		}
		break;
	default:
		break;
	}
	return 0;
}
