/* xring_dump_stats(): a ring's counters to the log, in xring-stats' formats. */
#include <errno.h>
#include <string.h>

#include "ops/netport.h"
#include "ops/xsock.h"
#include "ring/ring.h"
#include "stats/shm_read.h"
#include "stats/stats.h"
#include "util/log.h"

#define PORT_PER_LINE 8

static void dump_sock(const struct xsock *xs, enum log_level level)
{
	char line[480];

	stats_sock_line(xs, line, sizeof(line));
	log_msg(level, "%s", line);
}

static void dump_port(struct netport *np, enum log_level level)
{
	static __thread struct xstats_port p; /* 3 KB: not on the caller's stack */
	char line[480];

	/* Taken now, published or not: the dump shows the counters as they are. */
	stats_port_snapshot(np, &p);
	for (unsigned k = 0; k < p.ncounters; k += PORT_PER_LINE) {
		xstats_fmt_port(&p, k, PORT_PER_LINE, line, sizeof(line));
		log_msg(level, "%s", line);
	}
}

XRING_API int xring_dump_stats(struct xring *ring, int fd, int level)
{
	struct xring_ctx *ctx = ring ? ring->ctx : NULL;
	enum log_level lvl = (enum log_level) level;
	char line[480];
	int n = 0;

	if (!ctx || level < LOG_ERROR || level > LOG_DEBUG)
		return -EINVAL;
	if (fd >= 0) {
		/* A plain descriptor, else a direct one (a registered-table slot). */
		const struct xsock *xs = xsock_by_fd(ctx, fd);

		if (!xs && ctx->xsocks)
			xs = xsock_by_slot(ctx, (uint32_t) fd);

		if (!xs)
			return -EBADF;
		dump_sock(xs, lvl);
		return 1;
	}
	if (fd != -1)
		return -EBADF;
	xstats_fmt_ring(ctx->st, line, sizeof(line));
	log_msg(lvl, "%s", line);
	for (struct netport *np = ctx->netports; np; np = np->next)
		dump_port(np, lvl);
	for (unsigned i = 0; ctx->xsocks && i < ctx->xsocks->nfd; i++)
		if (ctx->xsocks->by_fd[i]) {
			dump_sock(ctx->xsocks->by_fd[i], lvl);
			n++;
		}
	/* Then those known only by a slot. */
	for (unsigned i = 0; ctx->xsocks && i < ctx->xsocks->nslots; i++)
		if (ctx->xsocks->by_slot[i] && ctx->xsocks->by_slot[i]->fd < 0) {
			dump_sock(ctx->xsocks->by_slot[i], lvl);
			n++;
		}
	return n;
}
