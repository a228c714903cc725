/* Shared between the AF_XDP port's control path (xdp_port.c) and its data path (xdp_queue.c). */
#ifndef XRING_NIC_XDP_INTERNAL_H
#define XRING_NIC_XDP_INTERNAL_H

#include "nic/pool_mem.h"
#include <stdbool.h>
#include <stdint.h>
#include <xdp/xsk.h>

#include "nic/port.h"
#include "nic/xdp/xdp_maps.h"
#include "nic/xdp/xdp_port.h"

/*
 * One AF_XDP socket and its UMEM. Buffers 0 .. nrx-1 receive (they live in the fill ring, the RX
 * ring or the caller's hands), buffers nrx .. nrx+ntx-1 send (free stack, caller, TX ring or
 * completion ring). Ring sizes equal the buffer counts, so refilling the fill ring and recycling
 * completions can never find the ring full.
 */
struct xp_queue {
	struct port_queue q; /* first: the port layer's view */
	struct xsk_ring_cons rx;
	struct xsk_ring_prod fill;
	struct xsk_ring_prod tx;
	struct xsk_ring_cons comp;
	uint8_t *area;
	unsigned shift; /* log2(frame size) */
	uint32_t nrx, ntx;
	uint32_t *tx_free; /* stack of free send buffer ids */
	uint32_t nfree;
	uint32_t tx_unsubmitted;   /* descriptors written by tx_post, not yet made visible */
	uint32_t fill_unsubmitted; /* buffers written by rx_release, not yet made visible */
	bool kick_pending;         /* the last kick left descriptors behind */
	uint16_t rx_flags;         /* flags for every received frame (trusted checksums) */
	int fd;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	size_t area_len;
	struct pmem mem; /* area's memory (nic/pool_mem.h) */
};

/* rx_release publishes refilled buffers once this many are pending (or when a poll is idle). */
#define XP_FILL_BATCH 32

extern const struct port_ops xp_ops;

int xp_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max);
void xp_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n);
int xp_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n);
int xp_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n);
int xp_tx_flush(struct port_queue *q);
int xp_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max);
int xp_wait_fd(struct port_queue *q);
int xp_arm(struct port_queue *q);
/* Read the kernel's drop counters for the socket (a system call: not per frame). */
int xp_sync_drops(struct xp_queue *xq);
/* Hand every receive buffer to the fill ring and every send buffer to the free stack. */
void xp_queue_prime(struct xp_queue *xq);

#endif
