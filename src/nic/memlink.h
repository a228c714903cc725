/*
 * An in-memory Ethernet link: two ports joined back to back, for the deterministic simulation
 * (two stacks, one thread, a virtual clock) and for unit tests of anything above ports.
 *
 * Queue i of one end is wired to queue i of the other: frames posted and flushed on end A's
 * queue i are received by end B's queue i, in order, and the other way round. Each queue sends
 * from its own fixed pool of buffers allocated at creation; a receiver is lent the sender's
 * buffer itself (no copy) until it calls rx_release(), which hands it back to the sender. So a
 * receiver that holds frames eventually leaves its peer without send buffers, as on memif.
 *
 * PORT_F_EXTERNAL frames must lie inside memory given to mem_register(). They are copied into
 * a pool buffer when tx_post() accepts them (so the receiver can never write into the sender's
 * memory) and their cookies are returned by the first tx_reap() after the next tx_flush(); the
 * send is then complete as far as the link is concerned.
 *
 * Chained frames (PORT_F_MORE) are carried buffer by buffer. tx_post() accepts whole chains
 * only, and rx_poll() returns whole chains only (-EMSGSIZE when the next chain is longer than
 * max). Checksum offload is not offered: TX checksum flags are ignored and RX frames carry no
 * checksum-ok flags, so the stack's own checksum code is what the simulation exercises.
 *
 * steer() checks and records rules, but the link does not classify: whatever is sent on queue i
 * arrives on queue i, and rx frames carry flow 0 (no PORT_CAP_STEER), as with memif.
 *
 * Threads: everything works from one thread driving both ends. Each direction of a queue pair
 * is a single-producer single-consumer ring with release/acquire ordering, so the two ends of
 * one queue pair may also be driven by two different threads (one per end). port.h's rule still
 * holds: all calls on one queue come from one thread. mem_register(), steer() and their
 * inverses must not race with traffic on the same end. Each end is destroyed on its own; the
 * shared memory is freed with the second one.
 *
 * The wait fd of a queue is an eventfd that becomes readable when frames arrive on it after
 * arm(); the sender writes it at most once per tx_flush(), and only when the receiver is armed.
 * Send completions (returned buffers) do not wake a waiter.
 */
#ifndef XRING_NIC_MEMLINK_H
#define XRING_NIC_MEMLINK_H

#include "nic/port.h"

enum {
	MEMLINK_MAX_QUEUES = 64,
	MEMLINK_MAX_REGIONS = 16, /* mem_register() regions per end */
	MEMLINK_MAX_RULES = 256,  /* steer() rules per end */
};

struct memlink_config {
	const char *name;  /* ends are called "<name>a" and "<name>b"; NULL means "mem" */
	unsigned nqueues;  /* queue pairs, 1..MEMLINK_MAX_QUEUES; 0 means 1 */
	unsigned nbufs;    /* send buffers per queue and end, a power of two; 0 means 256 */
	unsigned buf_size; /* bytes per buffer, at least 64; 0 means 2048 */
	uint16_t mtu;      /* IP MTU reported by both ends; 0 means 1500 */
};

/*
 * Create a link; ends[0] and ends[1] receive its two ports, with MACs 02:78:72:00:00:01 and
 * ..:02 (the caller may change them and fill in ip / prefix_len). Destroy each end with its
 * destroy op. Returns 0, -EINVAL for a bad config or -ENOMEM.
 */
int memlink_create(const struct memlink_config *cfg, struct port *ends[2]);

#endif
