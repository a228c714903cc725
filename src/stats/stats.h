/*
 * Statistics: per-ring, per-port and per-socket counters, kept in the process's shared-memory
 * file (stats/shm.h) so xring-stats reads them live. The fast path only increments: every ring
 * and socket always has a block to count in, the published one or, when statistics are off or
 * every slot is taken, one of its own. Taking and giving back slots (ring init, socket open and
 * close) takes a lock; counting never does.
 */
#ifndef XRING_STATS_STATS_H
#define XRING_STATS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "stats/shm.h"

struct xring_ctx;
struct xsock;
struct netport;

#define STATS_MAX_RINGS 64
#define STATS_MAX_PORTS 64
#define STATS_PORT_NS   10000000ull /* port snapshots are refreshed at most this often */

/* Ring: ctx->st points to the published block or to ctx->st_own. */
void stats_ring_open(struct xring_ctx *ctx);
void stats_ring_close(struct xring_ctx *ctx);

/* Port attachment: np->st is the published snapshot, or NULL when not published. */
void stats_port_open(struct netport *np);
void stats_port_publish(struct netport *np, uint64_t now);
void stats_port_close(struct netport *np);
/* The counters as a block, published or not. */
void stats_port_snapshot(struct netport *np, struct xstats_port *p);
/* The ring is about to sleep: refresh the snapshots of ports that received since the last. */
void stats_ports_idle(struct xring_ctx *ctx);

/* Socket: xs->st points to its published block or, when there is none (statistics off, or
 * every place taken), to the ring's sink, which is never read: such a socket has no counters
 * of its own, only its ring's and port's. */
void stats_sock_open(struct xsock *xs);
/* The socket's identity changed (its peer, listening): republish it. */
void stats_sock_ident(struct xsock *xs);
/* Also appends the final counters to XRING_STATS_FILE when it is set. */
void stats_sock_close(struct xsock *xs);
bool stats_sock_published(const struct xsock *xs);
/* The socket's line, as xring-stats prints it. */
int stats_sock_line(const struct xsock *xs, char *buf, size_t len);

static inline void stats_tx(struct xstats_sock *s, uint64_t bytes)
{
	s->tx_bytes += bytes;
	s->tx_packets++;
}

static inline void stats_rx(struct xstats_sock *s, uint64_t bytes)
{
	s->rx_bytes += bytes;
	s->rx_packets++;
}

static inline void stats_rxq(struct xstats_sock *s, uint32_t now)
{
	s->rxq_now = now;
	if (now > s->rxq_max)
		s->rxq_max = now;
}

#endif
