/*
 * The queue interface every NIC backend implements (verbs, AF_XDP, memif) and every decorator
 * (fault injection, pcap) wraps. It is shaped after verbs: work is posted in batches and a
 * doorbell is rung once; completions are polled in batches. Nothing here allocates, locks or
 * makes a system call per frame, except where a backend's kernel interface forces a kick
 * (AF_XDP sendto, memif interrupt eventfd), and then once per flush, never per frame.
 *
 * Ownership: every buffer belongs to a port queue. Received frames are lent to the caller by
 * rx_poll() and given back with rx_release() (verbs: repost the receive WQE; AF_XDP: fill ring;
 * memif: refill the ring). Frames to send are taken with tx_alloc(), filled, and handed over with
 * tx_post(); the queue takes them back itself once the device is done with them. A frame may
 * instead point into memory registered with mem_register() (zero-copy send): its cookie is then
 * returned by tx_reap() once the device no longer reads it.
 *
 * All calls on one queue come from one thread. Errors are negated errno values.
 */
#ifndef XRING_NIC_PORT_H
#define XRING_NIC_PORT_H

#include <stddef.h>
#include <stdint.h>

struct port;
struct port_queue;

/* port_frame.flags */
enum {
	PORT_F_RX_IP_CSUM_OK = 1u << 0, /* device verified the IPv4 header checksum */
	PORT_F_RX_L4_CSUM_OK = 1u << 1, /* device verified the TCP/UDP checksum */
	PORT_F_TX_IP_CSUM = 1u << 2,    /* device must fill the IPv4 header checksum */
	PORT_F_TX_L4_CSUM = 1u << 3,    /* device must fill the TCP/UDP checksum */
	PORT_F_EXTERNAL = 1u << 4,      /* data is in registered memory, not a queue buffer */
	PORT_F_MORE = 1u << 5,          /* not the last buffer of a chained frame */
	PORT_F_TX_TSO = 1u << 6,        /* a TCP frame beyond the MTU: the device cuts it into
					 * segments of tso_mss payload bytes, each with its own IPv4
					 * length, id and checksums and TCP sequence number */
};

/* One frame (or one buffer of a chained frame), as posted or as completed. 32 bytes. */
struct port_frame {
	void *data;      /* first byte of the Ethernet header (or of this chained piece) */
	uint32_t len;    /* bytes at data */
	uint32_t buf;    /* backend's buffer id; opaque to callers, give it back unchanged */
	uint64_t cookie; /* PORT_F_EXTERNAL: returned by tx_reap() when the device is done */
	union {
		uint32_t flow;    /* rx: steering handle id that matched, 0 when unknown */
		uint32_t tso_mss; /* tx with PORT_F_TX_TSO: payload bytes per segment */
	};
	uint16_t flags;  /* PORT_F_* */
	uint16_t l4_off; /* tx with PORT_F_TX_L4_CSUM or _TSO: offset of the L4 header from data */
};

/* Flow steering: which received frames this queue wants. Zero fields are wildcards. */
enum port_rule_kind {
	PORT_RULE_TCP, /* 5-tuple when remote is set (a connection), 3-tuple otherwise (a listener)
			*/
	PORT_RULE_UDP,
	PORT_RULE_ARP,  /* every ARP frame for the port */
	PORT_RULE_ICMP, /* every ICMP packet to local_ip */
};

struct port_rule {
	enum port_rule_kind kind;
	uint32_t local_ip; /* network byte order */
	uint32_t remote_ip;
	uint16_t local_port; /* network byte order */
	uint16_t remote_port;
	uint16_t queue; /* deliver to this queue of the port */
};

/* Per-queue counters; the backend only ever increments them, from the queue's thread. */
struct port_counters {
	uint64_t rx_frames, rx_bytes, rx_drops,
		rx_bad; /* bad: malformed descriptors, peer faults */
	uint64_t tx_frames, tx_bytes, tx_drops, tx_full;
	uint64_t polls, poll_hits;
	uint64_t kicks; /* system calls made to kick the device */
};

struct port_ops {
	/* Receive completions: up to max frames, oldest first. Returns the count (0 when idle),
	 * or, when idle, the port's error state: -ENETDOWN while its link is down, -EIO once the
	 * device failed. A ring fails its sockets' operations on the port with it until an idle
	 * poll returns 0 again (ops/xsock_port.c). */
	int (*rx_poll)(struct port_queue *q, struct port_frame *frames, unsigned max);
	/* Give received buffers back so the device can receive into them again. */
	void (*rx_release)(struct port_queue *q, const struct port_frame *frames, unsigned n);
	/* Take up to n empty send buffers (data and len = capacity filled in). Returns the count.
	 */
	int (*tx_alloc)(struct port_queue *q, struct port_frame *frames, unsigned n);
	/* Queue n filled frames for sending; returns how many were accepted (the rest stay the
	 * caller's). Nothing is guaranteed to leave before tx_flush(). */
	int (*tx_post)(struct port_queue *q, const struct port_frame *frames, unsigned n);
	/* Ring the doorbell for everything posted so far. */
	int (*tx_flush)(struct port_queue *q);
	/* Reclaim finished sends; writes the cookies of finished PORT_F_EXTERNAL frames (up to
	 * max) and returns their count. Queue-owned buffers are recycled internally. */
	int (*tx_reap)(struct port_queue *q, uint64_t *cookies, unsigned max);
	/* Fd that becomes readable when the queue has work; arm() enables the notification and
	 * returns 0, or -EAGAIN when work arrived meanwhile (poll again instead of sleeping). */
	int (*wait_fd)(struct port_queue *q);
	int (*arm)(struct port_queue *q);

	/* Port-wide. */
	int (*steer)(struct port *p, const struct port_rule *rule, uint32_t *handle);
	int (*unsteer)(struct port *p, uint32_t handle);
	int (*mem_register)(struct port *p, void *addr, size_t len, uint32_t *key);
	int (*mem_deregister)(struct port *p, uint32_t key);
	void (*destroy)(struct port *p);
};

struct port_queue {
	const struct port_ops *ops;
	struct port *port;
	uint16_t index;
	struct port_counters stats;
};

/* What a port is, whatever the backend. Backends embed it first in their own struct. */
struct port {
	const struct port_ops *ops;
	char name[32];
	uint8_t mac[6];
	uint16_t mtu;     /* IP MTU */
	uint32_t ifindex; /* kernel netdev index, 0 for memif */
	uint32_t ip;      /* primary IPv4 address, network byte order, 0 when unknown */
	uint8_t prefix_len;
	unsigned caps;    /* PORT_CAP_* */
	uint32_t tso_max; /* PORT_CAP_TSO: the largest PORT_F_TX_TSO frame, Ethernet header included
			   */
	unsigned nqueues;
	struct port_queue **queues;
};

enum {
	PORT_CAP_RX_CSUM = 1u << 0,
	PORT_CAP_TX_CSUM = 1u << 1,
	PORT_CAP_TSO = 1u << 2, /* sends PORT_F_TX_TSO frames (one, unchained, queue buffer each) */
	PORT_CAP_STEER = 1u << 3,       /* steer() filters in hardware or in an XDP program */
	PORT_CAP_CHAIN = 1u << 4,       /* frames larger than one buffer arrive as chains */
	PORT_CAP_EXTERNAL_TX = 1u << 5, /* can send from memory given to mem_register() */
	/* A link both ends trust (shared memory, configured so on both sides): TCP/UDP checksums
	 * need not be filled on send (the pseudo-header sum is enough), and received frames come
	 * flagged verified. Never set towards a peer that checks them. */
	PORT_CAP_L4_CSUM_NONE = 1u << 6,
	/* Send buffers are read next by another CPU (a memif peer) or by the device's DMA, not by
	 * the CPU that fills them: large copies into them should bypass its caches. A port whose
	 * send path copies on the sending CPU (AF_XDP in copy mode) leaves it unset. */
	PORT_CAP_TX_STREAM = 1u << 7,
};

static inline int port_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max)
{
	return q->ops->rx_poll(q, f, max);
}
static inline void port_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	q->ops->rx_release(q, f, n);
}
static inline int port_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n)
{
	return q->ops->tx_alloc(q, f, n);
}
static inline int port_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	return q->ops->tx_post(q, f, n);
}
static inline int port_tx_flush(struct port_queue *q)
{
	return q->ops->tx_flush(q);
}
static inline int port_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max)
{
	return q->ops->tx_reap(q, cookies, max);
}

#endif
