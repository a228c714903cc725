/*
 * Reading a statistics file (stats/shm.h) written by another process, which may be updating it
 * meanwhile, or may be anything at all: every size, offset and count is checked against the
 * bytes given before it is used, strings are cut at their field's end, and a block whose seq
 * keeps changing is skipped. Also the text formats of the blocks, shared by xring-stats and
 * xring_dump_stats() so the two always print the same thing.
 */
#ifndef XRING_STATS_SHM_READ_H
#define XRING_STATS_SHM_READ_H

#include <stddef.h>

#include "stats/shm.h"

/* A consistent copy of the live blocks of one file. */
struct xstats_view {
	struct xstats_hdr hdr;
	unsigned nrings, nports, nsocks;
	struct xstats_ring *rings;
	struct xstats_port *ports;
	struct xstats_sock *socks;
};

/*
 * Copies the live blocks of the file mapped at buf (len bytes) into v (free with
 * xstats_view_free). 0; -EAGAIN when the writer has not finished the header yet; -EPROTO for
 * another version; -EINVAL for anything malformed; -ENOMEM.
 */
int xstats_read(const void *buf, size_t len, struct xstats_view *v);
void xstats_view_free(struct xstats_view *v);

/* One line each, without a newline, key-value pairs after the first words. Return the length
 * snprintf would give (the line is cut to fit len). */
int xstats_fmt_sock(const struct xstats_sock *s, char *buf, size_t len);
/* The words that name a socket, then "unpublished": one that had no place in the file. */
int xstats_fmt_sock_unpublished(const struct xstats_sock *s, char *buf, size_t len);
int xstats_fmt_ring(const struct xstats_ring *r, char *buf, size_t len);
/* The port's identity, then counters [first, first + n) of it. */
int xstats_fmt_port(const struct xstats_port *p, unsigned first, unsigned n, char *buf, size_t len);
const char *xstats_state_name(const struct xstats_sock *s);

#endif
