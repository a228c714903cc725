/*
 * The published statistics of one process: the layout of <XRING_STATS_DIR>/xring.<pid>.shm,
 * shared by the library (the writer, which maps it MAP_SHARED and increments the counters in
 * place) and xring-stats (a reader in another process). Defined once, here, with sizes asserted.
 *
 * A file header, then three arrays of fixed-size blocks at the offsets the header gives: rings,
 * port attachments (one per ring and port), sockets. Counters are naturally aligned 64-bit
 * words, each written by one thread only; a reader loads them one at a time and may see one
 * counter a little behind another, never a torn value.
 *
 * A block's identity (fd, addresses, name) changes only when its slot is taken or given back.
 * The writer then makes seq odd, writes, and makes it even again; a reader copies the block
 * between two loads of seq and keeps the copy only when both are the same even value. gen counts
 * the uses of a slot, so a reader that watches a socket across refreshes sees when its slot was
 * given to another socket. Port blocks are snapshots refreshed under seq the same way.
 *
 * Nothing in a file is trusted by a reader: see stats/shm_read.h.
 */
#ifndef XRING_STATS_SHM_H
#define XRING_STATS_SHM_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define XSTATS_MAGIC         0x54535258u /* "XRST" */
#define XSTATS_VERSION       1
#define XSTATS_PROG          64
#define XSTATS_NAME          32
#define XSTATS_PORT_COUNTERS 96

/* xstats_blk.state */
enum {
	XSTATS_FREE = 0,
	XSTATS_LIVE = 1,
};

struct xstats_blk {
	uint32_t seq;   /* odd while the writer changes the block's identity */
	uint32_t state; /* XSTATS_FREE or XSTATS_LIVE */
	uint32_t gen;   /* uses of this slot so far */
	uint32_t ring;  /* id of the ring the block belongs to (xstats_ring.id) */
};

struct xstats_ring {
	struct xstats_blk b;
	uint32_t id;  /* 1, 2, ... in the order the process made its rings */
	uint32_t tid; /* the thread that made it */
	uint32_t sq_entries, cq_entries;
	uint64_t sqes;         /* SQEs consumed by submissions */
	uint64_t cqes;         /* CQEs posted */
	uint64_t cq_overflows; /* CQEs that went to the overflow list (the CQ was full) */
	uint64_t poll_hits;    /* completion-engine rounds that found work */
	uint64_t poll_misses;  /* rounds that found none */
	uint64_t sleeps;       /* times the ring blocked waiting */
	uint64_t passthrough;  /* requests handed to the kernel io_uring */
	uint64_t socks;        /* offloaded sockets open now */
	uint64_t rsvd[4];
};

struct xstats_counter {
	char name[24];
	uint64_t value;
};

/* A ring's attachment to a port: the queue's, the interface's and TCP's counters. */
struct xstats_port {
	struct xstats_blk b;
	char name[XSTATS_NAME]; /* the port's name */
	uint32_t queue;
	uint32_t ip; /* network order */
	uint32_t ncounters;
	uint32_t pad;
	uint64_t updated_ns; /* CLOCK_MONOTONIC of the last refresh */
	struct xstats_counter c[XSTATS_PORT_COUNTERS];
};

/* xstats_sock.type */
enum {
	XSTATS_TCP = 1,
	XSTATS_UDP = 2,
};

/*
 * An offloaded socket. bytes and packets are what the application sees: payload bytes moved,
 * and datagrams (UDP) or completed operations that moved data (TCP, one per CQE). The tcp_
 * fields are the connection's segments on the wire, retransmissions included.
 */
struct xstats_sock {
	struct xstats_blk b;
	int32_t fd;    /* plain descriptor, or -1 for a socket known only by its slot */
	uint8_t type;  /* XSTATS_TCP or XSTATS_UDP */
	uint8_t state; /* TCP: enum tcp_state when last seen; UDP: 1 when connected */
	uint8_t listening;
	uint8_t pad0;
	uint32_t lip, rip;     /* network order */
	uint16_t lport, rport; /* host order */
	uint32_t port_id;
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
	/* The TCP connection's own counters (struct tcp_conn_stats), live. */
	uint64_t tcp_segs_in, tcp_segs_out, tcp_rexmt_segs, tcp_rexmt_bytes;
	uint64_t drop_rxq_full;            /* UDP: the receive queue was full */
	uint64_t drop_not_peer;            /* UDP: a connected socket heard from someone else */
	uint64_t drop_too_big;             /* UDP: larger than a receive slot */
	uint64_t tx_errors;                /* sends that failed (no buffer, no route, too big) */
	uint32_t rxq_now, rxq_max;         /* datagrams (UDP) or bytes (TCP) waiting to be read */
	uint64_t dummy_sends, dummy_bytes; /* XRING_MSG_DUMMY sends walked, never sent */
	int32_t slot;                      /* direct descriptor (registered-table slot), or -1 */
	uint32_t pad1;
	uint64_t rsvd[1];
};

struct xstats_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;
	uint32_t pid;
	uint32_t ready; /* 1 once the header is complete */
	uint64_t file_size;
	uint64_t start_ns; /* CLOCK_REALTIME at creation */
	char prog[XSTATS_PROG];
	uint32_t ring_size, nrings, ring_off;
	uint32_t port_size, nports, port_off;
	uint32_t sock_size, nsocks, sock_off;
	uint32_t pad;
	/* Blocks that did not fit: those rings, ports and sockets are not published. */
	uint64_t rings_lost, ports_lost, socks_lost;
	uint64_t rsvd[4];
};

static_assert(sizeof(struct xstats_blk) == 16, "xstats_blk layout");
static_assert(sizeof(struct xstats_ring) == 128, "xstats_ring layout");
static_assert(sizeof(struct xstats_counter) == 32, "xstats_counter layout");
static_assert(sizeof(struct xstats_port) == 72 + 32 * XSTATS_PORT_COUNTERS, "xstats_port layout");
static_assert(sizeof(struct xstats_sock) == 176, "xstats_sock layout");
static_assert(sizeof(struct xstats_hdr) == 192, "xstats_hdr layout");

#endif
