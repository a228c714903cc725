/*
 * TCP (RFC 9293) over one interface: connection blocks, the socket-level API the ops layer
 * calls, and the two entry points the interface and the event loop drive.
 *
 * Shape. Connection blocks (TCBs) come from a pool that grows in chunks up to cfg.max_socks;
 * blocks never move. A send or receive byte ring is lent to a connection while it holds data
 * (tcp_buf.c), so idle connections own none. Timers sit in a heap keyed by each block's next
 * deadline, so tcp_poll() touches only the blocks that are due. Out-of-order data is
 * reassembled in place in the receive ring, its extents tracked in a small fixed table per TCB,
 * so no segment is ever buffered outside the rings. Input, output and timers make no system
 * calls and take no locks; they allocate only when a connection is set up (a new chunk of
 * blocks) or a ring pool is below its high-water mark. Time is always a parameter (nanoseconds, any
 *monotonic origin), never read here; a time older than one an earlier call gave is taken as that
 *earlier one.
 *
 * Files. tcp.c: pool, lookup, ISNs (RFC 6528), ports (RFC 6056) and this API. tcp_input.c:
 * segment arrival (RFC 9293 3.10.7, RFC 5961, RFC 7323 PAWS) and ICMP errors. tcp_output.c:
 * segment transmission (Nagle, SWS avoidance, options). tcp_timer.c: retransmission (RFC 6298),
 * tail loss probes (RFC 8985 7), persist, delayed ACK, keepalive, TIME_WAIT. tcp_sack.c: the
 * SACK scoreboard and RFC 6675 loss recovery, with lost retransmissions detected. tcp_cc.c:
 * congestion control (RFC 5681 / 6582 NewReno, RFC 9438 CUBIC). tcp_cookie.c: SYN cookies
 * (RFC 4987 3.6) for a listener whose SYN queue is full. tcp_zc.c: referenced (send_zc) send
 * data. tcp_push.c: output deferred to the end of a batch.
 *
 * Not implemented yet: path MTU discovery, ECN, urgent data (the pointer is ignored), D-SACK.
 *
 * Driving it:
 *	tcp_init(&st, &cfg, &ifc);                 with ifc's hooks .tcp_input = tcp_input_hook,
 *	                                           .ctx = &st (or call tcp_input() yourself)
 *	iface_input(&ifc, now, frame, len, 0);     segments reach tcp_input()
 *	next = tcp_poll(&st, now);                 timers; call again at or after next
 *
 * Events. Each socket has one callback, set with tcp_set_cb(), called with a mask of TCP_EV_*
 * after the stack has finished with the segment or timer that caused them, never from inside
 * tcp_send() and friends. The callback may call any function here, on any socket (including
 * tcp_close() on its own). tcp_events() gives the same readiness as a level-triggered mask.
 *
 * Handles. A struct tcb * stays valid until the owner calls tcp_close() or tcp_abort() on it;
 * after that the stack finishes the connection on its own (FIN exchange, TIME_WAIT) and reuses
 * the block. Every function returns a negated errno on failure.
 */
#ifndef XRING_STACK_TCP_TCP_H
#define XRING_STACK_TCP_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack/iface/iface.h"

struct tcb;
struct tcp_stack;

enum tcp_state {
	TCPS_CLOSED = 0,
	TCPS_LISTEN,
	TCPS_SYN_SENT,
	TCPS_SYN_RCVD,
	TCPS_ESTABLISHED,
	TCPS_FIN_WAIT_1,
	TCPS_FIN_WAIT_2,
	TCPS_CLOSE_WAIT,
	TCPS_CLOSING,
	TCPS_LAST_ACK,
	TCPS_TIME_WAIT,
};

enum tcp_cc_algo {
	TCP_CC_CUBIC = 0, /* the default */
	TCP_CC_NEWRENO,
};

/* Events, as a mask to the callback and from tcp_events(). */
enum {
	TCP_EV_READABLE = 1u << 0,  /* tcp_recv() has data, or the peer's FIN (returns 0) */
	TCP_EV_WRITABLE = 1u << 1,  /* tcp_send() accepts bytes */
	TCP_EV_CONNECTED = 1u << 2, /* the handshake completed (active open) */
	TCP_EV_ACCEPT = 1u << 3,    /* a listener's accept queue is not empty */
	TCP_EV_ERROR = 1u << 4,     /* tcp_error() is set; the connection is gone */
	TCP_EV_ACKED = 1u << 5,     /* tcp_acked() advanced: sent bytes the peer holds */
	TCP_EV_CLOSED = 1u << 6,    /* reached CLOSED or TIME_WAIT with both FINs done */
};

typedef void (*tcp_event_fn)(void *arg, struct tcb *t, unsigned events);
/* A connection closed with tcp_close_watch() has finished its FIN exchange (TIME_WAIT) or
 * ended otherwise; its endpoints can still be read during the call. */
typedef void (*tcp_orphan_fn)(void *arg, struct tcb *t);

/*
 * Direct placement: in-order payload is offered to this hook before the receive ring when the
 * ring holds nothing unread. It copies what it wants to (straight into the caller's buffer) and
 * returns how many bytes it took; the rest goes to the ring. data is valid only during the call.
 */
typedef size_t (*tcp_rx_fn)(void *arg, struct tcb *t, const uint8_t *data, size_t len);

/*
 * Kept frames (tcp_hold.c). The layer that feeds frames to the stack may offer the one it is
 * about to input; when in-order payload in it would otherwise be copied into the receive ring,
 * the stack keeps the frame instead and reads the payload from it when the application asks,
 * one copy instead of two. Frames are given back through this function, with the id they were
 * offered under, once read, or when the connection goes, or when tcp_hold_trim() asks.
 */
typedef void (*tcp_unhold_fn)(void *ctx, uint32_t frame);

#define TCP_HELD_MAX 16         /* frames one stack keeps at once: ids 0 to 15 */
#define TCP_NO_FRAME UINT32_MAX /* nothing on offer */

#define TCP_MAX_SOCKS (1u << 23) /* the largest max_socks */

struct tcp_config {
	unsigned max_socks;                 /* [4096] TCBs, listeners and TIME_WAIT ones included */
	uint32_t sndbuf;                    /* [64 KiB] send ring per TCB, while it has data */
	uint32_t rcvbuf;                    /* [64 KiB] receive ring per TCB, while it has data */
	uint16_t mss;                       /* [MTU - 40] the MSS we announce */
	uint64_t msl2_ns;                   /* [60 s] TIME_WAIT length (2 MSL) */
	uint64_t fin_wait2_ns;              /* [60 s] an orphaned FIN_WAIT_2 gives up after this */
	uint64_t rto_init_ns;               /* [1 s] RFC 6298 2.1 */
	uint64_t rto_min_ns;                /* [200 ms] (RFC 6298 2.4 says 1 s; 200 ms as Linux) */
	uint64_t rto_max_ns;                /* [60 s] */
	uint64_t delack_ns;                 /* [40 ms] */
	unsigned retries;                   /* [12] retransmissions before -ETIMEDOUT */
	unsigned syn_retries;               /* [6] */
	uint64_t keepidle_ns, keepintvl_ns; /* [2 h, 75 s] */
	unsigned keepcnt;                   /* [9] */
	uint16_t port_lo, port_hi;          /* [49152, 65535] ephemeral range */
	unsigned ooo_max;                   /* [8] out-of-order extents kept per TCB, 1..16 */
	uint32_t challenge_acks;            /* [1000] RFC 5961 7: per second, stack-wide */
	enum tcp_cc_algo cc;
	bool no_sack;       /* neither offer nor accept SACK (RFC 2018): NewReno recovery only */
	bool no_ts;         /* neither offer nor accept timestamps (RFC 7323) */
	uint8_t secret[16]; /* RFC 6528 / RFC 6056 key; all zero is allowed (tests) */
};

/* Counters; every drop and every subtle path has its own. */
struct tcp_stats {
	uint64_t segs_in, segs_out, bytes_out, rexmt_bytes;
	uint64_t bad_opts, no_port_rst, rst_in, rst_out, challenge_acks, challenge_limited;
	uint64_t paws_drops, out_of_window, ooo_segs, ooo_full, dup_segs, bad_ack;
	uint64_t syn_queue_full, accept_queue_full, no_tcb;
	uint64_t rto_fired, fast_rexmt, sack_recoveries, partial_acks, probes_sent, keepalives_sent,
		delacks;
	uint64_t tx_fail;
	uint64_t lost_rexmt;   /* retransmissions found lost again during SACK recovery */
	uint64_t limited_xmit; /* segments sent on the first two duplicate ACKs (RFC 3042) */
	uint64_t tlp_probes;   /* tail loss probes sent (RFC 8985 7) */
	/* SYN cookies (RFC 4987 3.6): SYN-ACKs sent with one when the SYN queue was full; ACKs
	 * that brought a valid one back (a connection made) or an invalid or stale one. */
	uint64_t syncookies_sent, syncookies_ok, syncookies_failed;
	uint64_t rcv_trimmed; /* segments whose tail lay beyond the receive window and was cut */
	uint64_t clock_back;  /* calls given an older time than an earlier call (tcp_clock) */
	uint64_t no_buf;      /* a send or receive ring could not be had (malloc failed) */
	uint64_t tw_reused;   /* TIME_WAIT connections that made way for a new SYN (RFC 6191) */
	uint64_t tw_recycled; /* TIME_WAIT connections ended early for a full pool */
};

/* One connection's own counters; where they are kept can be chosen (tcp_set_stats). */
struct tcp_conn_stats {
	uint64_t segs_in, segs_out;
	uint64_t rexmt_segs, rexmt_bytes; /* segments sent again, and their payload */
};

/* ---- set up ---- */

/* 0, -EINVAL for a bad configuration, -ENOMEM. ifc must outlive the stack. */
int tcp_init(struct tcp_stack *st, const struct tcp_config *cfg, struct iface *ifc);
void tcp_fini(struct tcp_stack *st);

/* The interface's tcp_input hook: ctx is the struct tcp_stack. */
void tcp_input(void *ctx, uint64_t now, const struct ip4_view *ip, const struct tcp_view *seg);

/*
 * The interface's icmp_error hook (ctx is the struct tcp_stack): a destination-unreachable
 * quoting a segment we sent within SND.UNA..SND.MAX (RFC 5927 4.1) aborts a connection still in
 * SYN-SENT with -ECONNREFUSED (port or protocol), -EHOSTUNREACH or -ENETUNREACH; on a
 * synchronized connection it is only remembered and reported instead of -ETIMEDOUT if the
 * connection later times out (RFC 1122 4.2.3.9: these are soft errors there).
 */
void tcp_icmp_error(void *ctx, uint64_t now, const struct ip4_view *ip,
		    const struct icmp_view *icmp);

/*
 * Deferred output, for a caller that works in batches (the ring's submissions): while on, data
 * tcp_send() queues leaves at the next tcp_push_flush() rather than at once, so a batch of
 * small sends on one connection goes out as one segment however NODELAY is set (as Linux's
 * autocorking or MSG_MORE would), and a burst of received segments is answered by one ACK
 * (except while data is out of order). The caller flushes at the end of every batch or burst,
 * before it rings the device's doorbell, so no segment waits longer than the batch did.
 */
void tcp_set_defer(struct tcp_stack *st, bool on);
void tcp_push_flush(struct tcp_stack *st, uint64_t now);

/* Run due timers and deliver their events. Returns the time it next wants to run, or
 * UINT64_MAX when no timer is armed. */
uint64_t tcp_poll(struct tcp_stack *st, uint64_t now);

/* ---- sockets ---- */

/*
 * Active open to raddr:rport (network-order address, host-order port) from an ephemeral port
 * (lport 0) or the given one. Sends the SYN now; TCP_EV_CONNECTED or TCP_EV_ERROR follow.
 * -ENOMEM (no TCB), -EADDRINUSE (the 4-tuple, or every ephemeral port, is taken), -EINVAL.
 */
int tcp_connect(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport, uint16_t lport,
		tcp_event_fn cb, void *arg, struct tcb **out);

/* Passive open on lport with a SYN queue and an accept queue of backlog entries each. */
int tcp_listen(struct tcp_stack *st, uint16_t lport, unsigned backlog, tcp_event_fn cb, void *arg,
	       struct tcb **out);

/* The oldest established connection of a listener, or -EAGAIN. It inherits the listener's
 * callback; change it with tcp_set_cb(). Data (even a FIN) may already be waiting: check
 * tcp_events(), no event announces what arrived before the accept. */
int tcp_accept(struct tcb *lis, struct tcb **out);

/* Copy up to len bytes into the send ring and push what the windows allow. Returns the bytes
 * taken (maybe fewer than len), -EAGAIN when the ring is full, -EPIPE after shutdown or close,
 * -ENOTCONN before the handshake, or the connection's error. */
long tcp_send(struct tcb *t, uint64_t now, const void *buf, size_t len);

/*
 * Zero-copy send (tcp_zc.c): as tcp_send(), but the bytes taken stay in buf, read from there by
 * every segment that carries them, until the peer acknowledges them: buf must stay unchanged
 * until tcp_acked() reaches tcp_queued() as it is after the call (or until tcp_zc_release(),
 * tcp_close() or tcp_abort()). Copies instead when the connection has no loan slot left.
 */
long tcp_send_ref(struct tcb *t, uint64_t now, const void *buf, size_t len);
/* Copies every byte still on loan into the send ring: from now on no buffer given to
 * tcp_send_ref() is read. tcp_close() does it; a connection that failed reads nothing anyway. */
void tcp_zc_release(struct tcb *t);
/* Stream bytes queued since the connection began (acknowledged or not). */
uint64_t tcp_queued(const struct tcb *t);

/* Copy out up to len bytes. Returns the bytes copied, 0 at end of stream, -EAGAIN when nothing
 * is there yet, or the connection's error. Opens the window when enough room was made. */
long tcp_recv(struct tcb *t, uint64_t now, void *buf, size_t len);

/* SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2). SHUT_WR sends a FIN after the queued data. */
int tcp_shutdown(struct tcb *t, uint64_t now, int how);

/* Release the handle: a graceful close (FIN after queued data; a RST when received data was
 * left unread, RFC 9293 3.10.4 / RFC 2525 2.17). The stack finishes on its own. */
int tcp_close(struct tcb *t, uint64_t now);
/* tcp_close(), for an owner that must know when the connection, finishing alone, is over:
 * the stack's orphan hook is called for it once, during this call when it ends at once. */
void tcp_close_watch(struct tcb *t, uint64_t now);
void tcp_set_orphan_hook(struct tcp_stack *st, tcp_orphan_fn fn, void *arg);

/* Release the handle and reset the connection now. */
void tcp_abort(struct tcb *t, uint64_t now);

/* Options. */
enum {
	TCP_OPT_NODELAY = 1, /* value 0/1: disable Nagle (RFC 896) */
	TCP_OPT_QUICKACK,    /* value 0/1: acknowledge every segment at once, no delayed ACK */
	TCP_OPT_KEEPALIVE,   /* value 0/1 */
};
int tcp_setopt(struct tcb *t, int opt, int value);

void tcp_set_cb(struct tcb *t, tcp_event_fn cb, void *arg);
void tcp_set_rx_hook(struct tcb *t, tcp_rx_fn fn);
/* Count the connection's segments in *cs from now on (its counts so far are copied there), or
 * in the TCB itself again when cs is NULL. cs must stay valid until then. */
void tcp_set_stats(struct tcb *t, struct tcp_conn_stats *cs);

/* Level-triggered readiness, TCP_EV_* (ACKED and CLOSED are edge-only and never set here). */
unsigned tcp_events(const struct tcb *t);
enum tcp_state tcp_state(const struct tcb *t);
int tcp_error(const struct tcb *t);
/* Bytes of this connection's stream the peer has acknowledged: send_zc notifications complete
 * up to here. */
uint64_t tcp_acked(const struct tcb *t);
/* Bytes free in the send ring, the ring's size, bytes unread in the receive ring. */
size_t tcp_sndspace(const struct tcb *t);
size_t tcp_sndbuf(const struct tcb *t);
size_t tcp_rcvavail(const struct tcb *t);
/* Which directions are over, as Linux's sk_shutdown: TCP_SHUT_RD once the peer's FIN is in
 * sequence, TCP_SHUT_WR once ours is queued; both after an error or in CLOSED. */
enum {
	TCP_SHUT_RD = 1u << 0,
	TCP_SHUT_WR = 1u << 1,
};
unsigned tcp_shutdowns(const struct tcb *t);
/* The peer's FIN is in sequence: once the receive ring is empty, receives return 0 (before any
 * error, as Linux's tcp_recvmsg()). */
bool tcp_fin_rcvd(const struct tcb *t);
void tcp_endpoints(const struct tcb *t, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
		   uint16_t *rport);

const char *tcp_state_name(enum tcp_state s);

/* Kept frames: fn gives them back; 0, or -EINVAL when fn is NULL. */
int tcp_set_unhold(struct tcp_stack *st, tcp_unhold_fn fn, void *ctx);
/* The next frame input may be kept under id (below TCP_HELD_MAX, not kept now), or none with
 * TCP_NO_FRAME. After the input, tcp_hold_taken() says whether it was. */
void tcp_hold_offer(struct tcp_stack *st, uint32_t id);
bool tcp_hold_taken(const struct tcp_stack *st);
/* Copy the bytes of frames kept since before `before` into their connections' rings and give
 * the frames back (UINT64_MAX: all of them), so that no frame stays lent to the stack while
 * its application does not read: a device's receive ring must not run dry. Returns the time
 * the oldest frame still kept was kept at, or UINT64_MAX. */
uint64_t tcp_hold_trim(struct tcp_stack *st, uint64_t before);

/* Sockets in use (for tests: 0 means every connection has finished). */
unsigned tcp_inuse(const struct tcp_stack *st);
const struct tcp_stats *tcp_get_stats(const struct tcp_stack *st);

#include "stack/tcp/tcp_int.h" /* struct tcp_stack, so callers can embed it */

#endif
