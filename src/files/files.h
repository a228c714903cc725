/*
 * Registered files. The kernel ring's table is the authority for the slots it has: xring
 * forwards each registration to it (so the error codes are the kernel's) and remembers the
 * table's shape, which the offloaded sockets share slot for slot.
 *
 * With XRING_FILES_MAX above the kernel's limit (RLIMIT_NOFILE), a table may be larger than
 * the kernel's: the kernel registers the first kn slots, and slots kn..n-1 exist in xring only
 * ("xring-only slots"). They hold offloaded sockets that need no kernel file (accepted
 * connections), so a process holds more connections than it may have descriptors.
 */
#ifndef XRING_FILES_FILES_H
#define XRING_FILES_FILES_H

#include "ring/ring.h"

struct ftable {
	unsigned n;  /* slots in all */
	unsigned kn; /* of which the kernel ring has the first kn */
	unsigned alloc_off, alloc_len;
	unsigned xhint; /* where the next xring-only allocation starts looking */
	bool kfull;     /* the kernel's part of the alloc range was full, and no slot freed since */
};

/* Whether slot exists in xring only. */
static inline bool files_xring_only(const struct ftable *f, uint32_t slot)
{
	return f && slot >= f->kn && slot < f->n;
}

void files_free(struct xring_ctx *ctx);

/* A provided buffer ring as offloaded sockets consume it: the application's ring, and a head of
 * xring's own (the kernel ring keeps its own for kernel sockets: a group serves one or the
 * other, not both at once). */
struct bufring {
	struct xring_buf_ring *br;
	uint32_t mask;
	uint16_t bgid;
	uint16_t head;
	struct bufring *next;
};

/* The next buffer of group bgid, or NULL when the group is empty or unknown. */
struct xring_buf *bufring_take(struct xring_ctx *ctx, uint16_t bgid);
bool bufring_exists(struct xring_ctx *ctx, uint16_t bgid);
/* No buffer is there to take (or no such group). */
bool bufring_empty(struct xring_ctx *ctx, uint16_t bgid);
void bufring_free_all(struct xring_ctx *ctx);

#endif
