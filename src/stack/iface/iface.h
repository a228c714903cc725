/*
 * An IPv4-over-Ethernet interface: its addresses, the neighbour (ARP) cache, frame input
 * (Ethernet -> ARP / IPv4 -> ICMP / UDP / TCP) and IPv4 output through the device it owns.
 *
 * Everything is sized at iface_init() (the only allocation); input and output never allocate,
 * lock or make system calls. Time is always a parameter (nanoseconds on any monotonic scale the
 * caller chooses; tests use a virtual clock), never read here. iface_poll() runs the neighbour
 * timers and says when it next wants to run.
 *
 * Bad or unwanted input is dropped and counted by reason in struct iface_stats; nothing is
 * logged per packet.
 */
#ifndef XRING_STACK_IFACE_IFACE_H
#define XRING_STACK_IFACE_IFACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack/iface/dev.h"
#include "stack/wire/eth.h"
#include "stack/wire/icmp.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/tcp.h"
#include "stack/wire/udp.h"

#define IFACE_NS_PER_S 1000000000ull

struct iface_config {
	uint8_t mac[ETH_ALEN];
	uint32_t ip; /* network order */
	uint8_t prefix_len;
	uint32_t gateway; /* network order; 0: only the connected subnet is reachable */
	uint16_t mtu;     /* IP MTU, 68..65535; 0 means 1500 */
	uint8_t ttl;      /* 0 means 64 */
	uint16_t ip_id;   /* first IPv4 identification used (a seed, for reproducible runs) */
	/* The device segments TCP (TSO): the largest frame it takes, Ethernet header included;
	 * 0: no TSO. See iface_ip4_begin_tso(). */
	uint32_t tso_max;
	/* The device's link needs no TCP checksum (PORT_CAP_L4_CSUM_NONE): segments carry the
	 * pseudo-header sum only, as a checksum-offloading NIC would be handed them. */
	bool l4_csum_none;
	/* What is written into the device's send buffers is read next by another CPU or by the
	 * device (PORT_CAP_TX_STREAM): large payload copies into them use copy_out(). */
	bool tx_stream;

	/* Neighbour cache; 0 picks the default in brackets. */
	unsigned neigh_entries;     /* [64] */
	unsigned pending_frames;    /* [64] frames waiting for resolution, all neighbours */
	unsigned pending_per_neigh; /* [4] the oldest is dropped beyond this */
	uint64_t reachable_ns;      /* [30 s] a confirmation is trusted this long */
	uint64_t retrans_ns;        /* [1 s] between requests for one address */
	uint64_t delay_ns;          /* [5 s] a stale entry in use is probed after this */
	uint64_t gc_ns;             /* [60 s] an unused resolved entry is forgotten after this */
	unsigned max_probes;        /* [3] requests before giving up */

	/* ICMP errors we send: a token bucket. 0 picks the default; UINT32_MAX disables. */
	uint32_t icmp_rate;  /* [1000] per second */
	uint32_t icmp_burst; /* [50] */
};

/* Drop and event counters; every drop reason has its own. */
struct iface_stats {
	uint64_t rx_frames, rx_bytes;
	uint64_t eth_truncated, eth_vlan, eth_other_type, eth_not_for_us, eth_bad_src;
	uint64_t arp_malformed, arp_unsupported, arp_bad_sha, arp_conflict, arp_not_for_us;
	uint64_t arp_req_in, arp_reply_in, arp_req_out, arp_reply_out;
	uint64_t ip_malformed, ip_version, ip_bad_csum, ip_fragment, ip_bad_src, ip_not_for_us;
	uint64_t ip_l2_bcast, ip_unknown_proto, ip_delivered;
	uint64_t icmp_malformed, icmp_bad_csum, icmp_echo_in, icmp_echo_out, icmp_echo_bcast;
	uint64_t icmp_err_in, icmp_err_foreign, icmp_err_out, icmp_ratelimited, icmp_other;
	uint64_t udp_malformed, udp_bad_csum, udp_no_port, udp_delivered;
	uint64_t tcp_malformed, tcp_bad_csum, tcp_bcast, tcp_no_handler, tcp_delivered;
	uint64_t tx_frames, tx_bytes, tx_nobuf, tx_too_big;
	uint64_t neigh_miss, neigh_queued, neigh_queue_drop, neigh_failed, neigh_failed_frames;
	uint64_t neigh_full, neigh_evicted;
	uint64_t neigh_from_host; /* misses the host's own table answered (hooks.neigh_lookup) */
};

/*
 * What the layers above see. Every hook may be NULL. Views are valid only during the call.
 * Hooks may send (iface_ip4_*) but must not call iface_input() recursively.
 */
struct iface_hooks {
	void *ctx;
	/* A datagram for us (or broadcast: ip->dst tells). Return 0 when a socket took it,
	 * -ECONNREFUSED when no socket is bound to the port (the interface then sends an ICMP
	 * port unreachable, where RFC 1122 allows one). A NULL hook refuses everything. */
	int (*udp_input)(void *ctx, uint64_t now, const struct ip4_view *ip,
			 const struct udp_view *udp);
	/* A unicast segment for us, checksum verified, options not yet parsed. */
	void (*tcp_input)(void *ctx, uint64_t now, const struct ip4_view *ip,
			  const struct tcp_view *tcp);
	/* An ICMP error quoting a datagram we sent (icmp->orig), for the socket to turn into
	 * -ECONNREFUSED / -EHOSTUNREACH / -ENETUNREACH or a path MTU. */
	void (*icmp_error)(void *ctx, uint64_t now, const struct ip4_view *ip,
			   const struct icmp_view *icmp);
	/* The host's neighbour table, for an interface on a kernel netdev: asked (with
	 * neigh_ctx) when an address has no entry, before any ARP request. 0 with mac filled
	 * when the host knows a usable address: the entry starts STALE from it, so it is used at
	 * once and verified by our own probes as any unconfirmed entry is. Called only on a
	 * miss, so it may be slow (a netlink read), never per packet. */
	int (*neigh_lookup)(void *neigh_ctx, uint32_t ip, uint8_t mac[6]);
	void *neigh_ctx;
};

enum neigh_state {
	NEIGH_FREE = 0,
	NEIGH_INCOMPLETE, /* request sent, frames wait */
	NEIGH_REACHABLE,  /* confirmed within reachable_ns */
	NEIGH_STALE,      /* address known but unconfirmed: used, and probed if it stays in use */
};

struct neigh {
	uint32_t ip; /* network order */
	uint8_t mac[ETH_ALEN];
	uint8_t state;                /* enum neigh_state */
	uint8_t probes;               /* requests sent in the current resolution or probe round */
	int32_t next;                 /* hash chain, or free list */
	int32_t pend_head, pend_tail; /* frames waiting for resolution (pool indices), -1: none */
	uint32_t npend;
	uint64_t confirmed; /* last proof of reachability */
	uint64_t used;      /* last output through the entry */
	uint64_t timer;     /* next request (INCOMPLETE) or probe (STALE); 0: none */
};

struct neigh_pkt {
	int32_t next;
	uint32_t len; /* frame bytes, Ethernet header included */
};

struct neigh_cache {
	struct neigh *e;
	unsigned n;
	int32_t *bucket;     /* nbucket chain heads, -1 terminated */
	unsigned nbucket;    /* a power of two, at least 2 */
	unsigned hash_shift; /* 32 - log2(nbucket) */
	int32_t free_head;
	struct neigh_pkt *pkt;
	uint8_t *pkt_mem; /* npkt * pkt_size */
	uint32_t pkt_size;
	unsigned npkt;
	int32_t pkt_free;
	uint64_t next_timer; /* earliest INCOMPLETE / probe timer, UINT64_MAX: none */
	uint64_t next_gc;
};

struct iface {
	uint8_t mac[ETH_ALEN];
	uint32_t ip, mask, gateway; /* network order */
	uint16_t mtu;
	uint8_t ttl;
	uint16_t ip_id;
	struct iface_config cfg; /* with defaults filled in */
	struct iface_dev dev;
	struct iface_hooks hooks;
	struct neigh_cache nc;
	uint64_t icmp_tokens; /* scaled by IFACE_NS_PER_S */
	uint64_t icmp_last;
	struct iface_stats stats;
};

/* 0, -EINVAL for a bad configuration, -ENOMEM. */
int iface_init(struct iface *ifc, const struct iface_config *cfg, struct iface_dev dev,
	       const struct iface_hooks *hooks);
void iface_fini(struct iface *ifc);

/* Receive flags (the port's PORT_F_RX_* checksum results). */
#define IFACE_RX_IP_CSUM_OK 1u
#define IFACE_RX_L4_CSUM_OK 2u

/*
 * Process one received frame (no FCS). Returns 0 when it was handled, or the negated errno of
 * the reason it was dropped (the matching counter is incremented either way).
 */
int iface_input(struct iface *ifc, uint64_t now, const void *frame, size_t len, unsigned flags);

/* Run due neighbour timers (retries, probes, expiry). Returns the time it next wants to run,
 * UINT64_MAX when no timer is armed (garbage collection then waits for the next call). */
uint64_t iface_poll(struct iface *ifc, uint64_t now);

/*
 * IPv4 output in two steps so the layer above writes its header and payload in place:
 * iface_ip4_begin() finds the next hop and lends an L4 area of tx->l4_cap bytes (at most
 * MTU - 20), iface_ip4_commit() writes the IPv4 (DF set) and Ethernet headers and sends, or
 * queues the frame while the neighbour resolves. Between the two, call nothing else on the
 * interface. The L4 checksum is the caller's (the source address is ifc->ip).
 * begin: 0, -ENETUNREACH (no route), -EOPNOTSUPP (multicast), -ENOBUFS (no device buffer,
 * neighbour table or pending slot; counted). commit: 0 or -EMSGSIZE (l4_len above l4_cap).
 */
struct iface_tx {
	uint8_t *l4;
	size_t l4_cap;
	/* private */
	struct iface_txbuf buf;
	int32_t neigh; /* index of the neighbour waiting, or -1 when sending now */
	int32_t pkt;   /* pending slot */
	uint32_t dst;
	uint16_t tso_mss;
};

int iface_ip4_begin(struct iface *ifc, uint64_t now, uint32_t dst, struct iface_tx *tx);
int iface_ip4_commit(struct iface *ifc, struct iface_tx *tx, uint8_t proto, uint8_t tos,
		     size_t l4_len);
void iface_ip4_abort(struct iface *ifc, struct iface_tx *tx);
/*
 * begin for a TCP segment the device may cut (TSO): when the interface has tso_max and the
 * frame goes out now (not queued behind ARP), l4_cap reaches past the MTU, up to tso_max and
 * the 64 KiB an IPv4 length can say; a frame committed beyond the MTU goes to the device with
 * mss (payload bytes per segment, so that each segment fits the MTU). Else as begin.
 */
int iface_ip4_begin_tso(struct iface *ifc, uint64_t now, uint32_t dst, uint16_t mss,
			struct iface_tx *tx);

/* begin + copy + commit. */
int iface_ip4_send(struct iface *ifc, uint64_t now, uint32_t dst, uint8_t proto, uint8_t tos,
		   const void *l4, size_t l4_len);

/* Broadcast a gratuitous ARP (an RFC 5227 announcement) for our address. 0 or -ENOBUFS. */
int iface_announce(struct iface *ifc, uint64_t now);

/* An upper layer saw proof the neighbour is reachable (new data ACKed): mark it so. */
void iface_neigh_confirm(struct iface *ifc, uint64_t now, uint32_t ip);

/* The entry for ip, or NULL. For tests and diagnostics. */
const struct neigh *iface_neigh_find(const struct iface *ifc, uint32_t ip);

#endif
