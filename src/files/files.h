/*
 * Registered files. While every socket is a kernel socket, the kernel ring's table is the
 * authority: xring forwards each registration to it (so the error codes are the kernel's) and
 * remembers the table's shape, which the offloaded sockets will share slot for slot.
 */
#ifndef XRING_FILES_FILES_H
#define XRING_FILES_FILES_H

#include "ring/ring.h"

struct ftable {
	unsigned n;
	unsigned alloc_off, alloc_len;
};

void files_free(struct xring_ctx *ctx);

#endif
