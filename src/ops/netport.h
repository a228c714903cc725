/*
 * A ring's attachment to a port: an interface of the ring's own stack over one of the port's
 * queues, polled by the completion engine. A ring attaches to a port the first time one of its
 * sockets is offloaded through it.
 */
#ifndef XRING_OPS_NETPORT_H
#define XRING_OPS_NETPORT_H

#include "nic/ports.h"
#include "ring/ring.h"
#include "stack/iface/iface.h"
#include "stack/tcp/tcp.h"
#include "stats/shm.h"

struct nlk;

#define NETPORT_BURST 32 /* frames taken per poll unless XRING_CQE_BATCH says otherwise */
#define NETPORT_HOLD  16 /* received frames the stack may keep at once (tcp_hold.c) */

struct netport {
	struct xring_source src;
	struct xring_ctx *ctx;
	struct xport *xp;
	struct port_queue *q;
	struct iface ifc;
	struct tcp_stack tcp;
	struct port_frame spare; /* a send buffer taken and not used (iface tx_abort) */
	bool has_spare;
	unsigned unflushed; /* frames posted since the last doorbell */
	uint64_t next_timer;
	struct netport *next;
	uint64_t rx_chained_drops; /* chains longer than the MTU (or with no gather buffer) */
	uint8_t *rx_gather;        /* ETH_HLEN + MTU bytes: a chained frame made contiguous */
	size_t rx_glen;            /* bytes of the chain so far */
	bool rx_in_chain, rx_gbad; /* inside a chain; it is too long and is being dropped */
	/* The port's error state as its queue last reported it (rx_poll): 0, -ENETDOWN while
	 * the link is down, -EIO once the device failed. See xsock_port.c. */
	int port_err;
	/* While a burst of received frames is processed, sockets that became readable wait
	 * here, so a receive takes the whole burst's data at once rather than one segment. */
	bool in_burst;
	struct xsock *ready;
	struct xstats_port *st; /* published snapshot (stats/stats.h), NULL when not published */
	uint64_t st_next_ns;    /* when the snapshot is next refreshed */
	bool st_dirty;          /* frames arrived since the last refresh */
	struct port_frame *rxf; /* room for one poll's frames */
	unsigned burst;         /* XRING_CQE_BATCH: receive completions taken per poll */
	struct nlk *nlk; /* the kernel's neighbour table, ports on a netdev (netport_neigh.c) */
	struct steer_ent **steers; /* counted steering rules (netport_steer.c) */
	/* Received frames the stack keeps until their bytes are read (tcp_hold.c), by id. */
	bool hold_ok;
	uint32_t held_mask;
	struct port_frame held[NETPORT_HOLD];
};

/*
 * netport_steer.c: steering rules shared by the sockets that need them, counted.
 * netport_steer_get(): takes a reference on rule, asking the port for it on the first one
 * (-EOPNOTSUPP: the port does not filter, nothing is held). netport_steer_put() lets go.
 * A steered TCP socket closes its connection with tcp_close_watch(): its reference stays with
 * the connection while it finishes alone (its FIN exchange must still reach this ring) and goes
 * when it is over (the stack's orphan hook, set by netport_steer_init()).
 */
int netport_steer_get(struct netport *np, const struct port_rule *rule);
void netport_steer_put(struct netport *np, const struct port_rule *rule);
void netport_steer_init(struct netport *np);
/* The rules held now (for tests and statistics). */
unsigned netport_steer_count(const struct netport *np);
void netport_steer_exit(struct netport *np);

/* netport_neigh.c: the host's neighbour table as the stack's iface_hooks.neigh_lookup. */
void netport_neigh_open(struct netport *np);
void netport_neigh_close(struct netport *np);
int netport_neigh_lookup(void *ctx, uint32_t ip, uint8_t mac[6]);

/* The ring's attachment to xp, made on first use. NULL with *err set on failure. */
struct netport *netport_get(struct xring_ctx *ctx, struct xport *xp, int *err);
/* Asks the port to deliver rule's frames to this ring's queue (a no-op on ports that do not
 * filter). 0 or a negated errno; *handle (may be NULL) is for netport_unsteer(). */
int netport_steer(struct netport *np, const struct port_rule *rule, uint32_t *handle);
void netport_unsteer(struct netport *np, uint32_t handle);
/* Rings the doorbell of every port the ring posted to; end of each submission and round. */
void netport_flush_all(struct xring_ctx *ctx);
void netport_exit(struct xring_ctx *ctx);

#endif
