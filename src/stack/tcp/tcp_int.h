/*
 * TCP internals shared by tcp.c, tcp_input.c, tcp_output.c, tcp_timer.c and tcp_cc.c. Not for
 * the layers above: they use tcp.h.
 */
#ifndef XRING_STACK_TCP_TCP_INT_H
#define XRING_STACK_TCP_TCP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "stack/iface/iface.h"
#include "stack/wire/tcp.h"

/* Sequence-space comparisons (RFC 9293 3.4), modulo 2^32. */
#define SEQ_LT(a, b)  ((int32_t) ((uint32_t) (a) - (uint32_t) (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t) ((uint32_t) (a) - (uint32_t) (b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t) ((uint32_t) (a) - (uint32_t) (b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t) ((uint32_t) (a) - (uint32_t) (b)) >= 0)

#define TCP_OOO_MAX     16
#define TCP_SACKED_MAX  8   /* scoreboard extents the sender keeps */
#define TCP_RXT_MAX     8   /* retransmissions in a recovery watched for loss */
#define TCP_DEFAULT_MSS 536 /* RFC 9293 3.7.1: when the peer sends no MSS option */
#define TCP_MS          1000000ull

/* t->flags */
enum {
	TF_USER = 1u << 0,       /* the application holds the handle */
	TF_ACKNOW = 1u << 1,     /* send an ACK at the next output */
	TF_NODELAY = 1u << 2,    /* no Nagle */
	TF_QUICKACK = 1u << 3,   /* no delayed ACK */
	TF_KEEPALIVE = 1u << 4,  /* keepalive probes when idle */
	TF_TS = 1u << 5,         /* timestamps negotiated (RFC 7323) */
	TF_WS = 1u << 6,         /* window scaling negotiated */
	TF_SACK = 1u << 7,       /* SACK-permitted seen */
	TF_FIN_QUEUED = 1u << 8, /* user asked for a FIN after the queued data */
	TF_FIN_SENT = 1u << 9,
	TF_FIN_RCVD = 1u << 10,    /* the peer's FIN is in sequence: end of stream */
	TF_FIN_OOO = 1u << 11,     /* a FIN is known at rcv_fin, beyond rcv_nxt */
	TF_RD_SHUT = 1u << 12,     /* SHUT_RD: discard incoming data */
	TF_ACCEPTED = 1u << 13,    /* a passive child handed to the application (or active) */
	TF_IN_RECOVERY = 1u << 14, /* NewReno fast recovery (RFC 6582) */
	TF_RTT_TIMING = 1u << 15,  /* rtt_seq is being timed */
	TF_PERSIST = 1u << 16,     /* rexmt timer is the persist timer */
	TF_ON_NOTIFY = 1u << 17,   /* linked on the stack's notify list */
	TF_SEEN_SYN = 1u << 18,    /* irs and rcv_nxt are valid */
	TF_SACK_RCV = 1u << 19,    /* the recovery in progress is SACK based (RFC 6675) */
	TF_ON_PUSH = 1u << 20,     /* queued data waits for tcp_push_flush() (tcp_push.c) */
	TF_TLP = 1u << 21,         /* rexmt timer is the tail loss probe (RFC 8985 7) */
	TF_WATCH = 1u << 22,       /* closed by tcp_close_watch(): tell the orphan hook its end */
};

#define TCP_PUSH_MAX 32 /* connections whose output one batch defers; more go out at once */

struct tcp_range {
	uint32_t left, right; /* [left, right) */
};

#define TCP_ZREF_MAX 4 /* send_zc loans per connection; beyond them, sends copy */

#define TCP_HOLD_MAX 8 /* received frames one connection keeps; beyond them, its ring */

/* A received frame the stack keeps (tcp_hold.c), by the feeder's id for it. */
struct tcp_held {
	const uint8_t *data; /* its unread payload */
	uint32_t len;
	int32_t tcb;  /* the connection keeping it, -1: the id is free */
	int32_t next; /* the connection's next kept frame, -1: none */
	uint64_t since;
};

/* A stretch of the send ring whose bytes are still the application's (tcp_zc.c). */
struct tcp_zref {
	uint32_t seq, len;
	const uint8_t *data;
};

struct tcb {
	struct tcp_stack *st;
	uint8_t state; /* enum tcp_state */
	uint8_t snd_wscale, rcv_wscale;
	uint8_t rxt_shift; /* retransmissions (or unanswered probes) since the last progress */
	uint8_t dupacks;
	uint8_t nooo;        /* entries used in ooo[] */
	uint8_t keep_probes; /* unanswered keepalives */
	uint8_t delack_segs; /* full-sized segments received since our last ACK */
	uint32_t flags;
	int32_t idx;           /* in the pool */
	int32_t hnext;         /* hash chain / free list / listener list */
	int32_t parent;        /* listener of a passive child, or -1 */
	int32_t qnext;         /* accept queue link, or notify link */
	uint32_t laddr, raddr; /* network order */
	uint16_t lport, rport;
	uint16_t mss;     /* payload bytes per segment we send (options excluded) */
	uint16_t rcv_mss; /* what we announced */

	/* Send sequence space (RFC 9293 3.3.1). snd_max: highest sequence sent + 1. */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, max_sndwnd;
	/* Send ring: sbuf_len bytes starting at sbuf_head, the first at sequence snd_buf_seq. */
	uint8_t *sbuf;
	uint32_t sbuf_size, sbuf_head, sbuf_len, snd_buf_seq;
	uint64_t acked_total; /* stream bytes acknowledged (tcp_acked) */

	/* Receive sequence space. rbuf_len unread in-order bytes from rbuf_head; beyond them, the
	 * out-of-order extents ooo[] sit at their offset from rcv_nxt. */
	uint32_t irs, rcv_nxt, rcv_adv, rcv_fin, last_ack_sent;
	uint8_t *rbuf;
	uint32_t rbuf_size, rbuf_head, rbuf_len;
	struct tcp_range ooo[TCP_OOO_MAX];
	/* In-order bytes still in the frames they arrived in (tcp_hold.c): they come before the
	 * ring's unread bytes. hold_bytes in nhold frames, oldest hold_first, newest hold_last
	 * (ids into the stack's held[]). */
	uint8_t nhold;
	int8_t hold_first, hold_last;
	uint32_t hold_bytes;

	/* Timestamps (RFC 7323). */
	uint32_t ts_recent, ts_off;
	uint64_t ts_recent_age;

	/* RTT and RTO (RFC 6298), nanoseconds. */
	uint64_t srtt, rttvar, rto, rtt_start;
	uint32_t rtt_seq;

	/* SACK scoreboard (RFC 6675): extents above snd_una the peer holds, sorted, disjoint. */
	struct tcp_range sacked[TCP_SACKED_MAX];
	uint8_t nsacked;
	uint32_t high_rxt; /* HighRxt: retransmitted up to here in this recovery */
	/* Retransmissions of this recovery, in order: [left, right) went out when snd_max was
	 * mark, so data from mark on left after it (tcp_sack_rxt_check). */
	struct {
		uint32_t left, right, mark;
	} rxt[TCP_RXT_MAX];
	uint8_t nrxt;

	/* Congestion control. */
	uint32_t cwnd, ssthresh, recover;
	uint32_t cc_acked;          /* bytes acked towards the next cwnd increase (RFC 5681 3.1) */
	uint64_t cc_epoch;          /* CUBIC: start of the current epoch, 0: none */
	uint32_t cc_wmax, cc_wlast; /* CUBIC W_max and the W_max before it, bytes */
	uint32_t cc_west;           /* CUBIC W_est (Reno-friendly), bytes */
	uint64_t cc_k_ns;           /* CUBIC K */

	/* Timers: absolute deadlines, 0 when not armed. */
	uint64_t t_rexmt; /* RTO, or persist with TF_PERSIST */
	uint64_t t_delack;
	uint64_t t_keep;
	uint64_t t_2msl; /* TIME_WAIT, orphaned FIN_WAIT_2, or SYN_RCVD expiry */
	uint64_t last_rx;
	uint64_t last_oow; /* last reply to a rejected segment */

	int err;      /* negated errno once the connection failed */
	int soft_err; /* last ICMP error on a synchronized connection */
	uint32_t ev_pending;

	/* Listener. */
	uint16_t backlog, nsyn, nacc;
	int32_t acc_head, acc_tail;

	tcp_event_fn cb;
	void *arg;
	tcp_rx_fn rx_hook;

	struct tcp_conn_stats *cs; /* &cs_own, or where the owner wants them (tcp_set_stats) */
	struct tcp_conn_stats cs_own;
	/* Loans (tcp_zc.c), oldest first, sorted and disjoint, inside the send ring's bytes. */
	uint8_t nzref;
	struct tcp_zref zref[TCP_ZREF_MAX];

	uint32_t theap;           /* position in the timer heap (1-based), 0 when not filed */
	int32_t tw_prev, tw_next; /* on the TIME_WAIT list, oldest first; -2 when not on it */
};

/*
 * The pool grows in chunks of TCP_CHUNK blocks that never move, so a struct tcb * stays valid;
 * idx names a block as chunk << TCP_CHUNK_SHIFT | slot.
 */
#define TCP_CHUNK_SHIFT 8
#define TCP_CHUNK       (1u << TCP_CHUNK_SHIFT)

/* Timer heap entry: the block is due no earlier than when (see tcp_timer.c). */
struct tcp_tentry {
	uint64_t when;
	struct tcb *t;
};

/* Ring buffers of one size, kept for reuse once a connection no longer needs them. */
struct tcp_bufpool {
	void *free; /* singly linked through each buffer's first bytes */
	unsigned nfree, total;
	uint32_t size;
};

struct tcp_stack {
	struct iface *ifc;
	struct tcp_config cfg;
	struct tcb **chunks; /* nchunk of them, TCP_CHUNK blocks each */
	unsigned nchunk, chunk_cap;
	unsigned ntcb, inuse;    /* ntcb: blocks allocated so far, at most cfg.max_socks */
	struct tcp_tentry *heap; /* timer heap, entries 1..nheap */
	unsigned nheap, heap_cap;
	struct tcp_bufpool sbufs, rbufs;
	int32_t tw_head, tw_tail; /* TIME_WAIT blocks, in the order they entered it */
	int32_t free_head;
	int32_t *bucket;
	unsigned nbucket; /* power of two */
	int32_t listen_head;
	int32_t notify_head;
	uint32_t port_ctr;
	uint32_t chal_count;
	uint64_t chal_sec;
	uint64_t now;       /* the latest time any entry point was given (see tcp_clock) */
	uint64_t cookie_at; /* the last SYN cookie sent, 0: none yet */
	struct tcp_stats stats;
	/* Kept frames (tcp_hold.c): who gives them back, which frame is on offer now (or
	 * TCP_NO_FRAME), and the frames kept. */
	tcp_unhold_fn unhold;
	void *unhold_ctx;
	uint32_t offer;
	bool offer_taken;
	unsigned nheld;
	struct tcp_held held[TCP_HELD_MAX];
	/* Deferred output (tcp_push.c): connections that queued data during a batch. */
	bool defer_output;
	uint16_t npush;
	int32_t push[TCP_PUSH_MAX];
	tcp_orphan_fn orphan_fn; /* tcp_set_orphan_hook() */
	void *orphan_arg;
};

/* A watched orphan reached TIME_WAIT or is being freed: the hook hears it, once. */
void tcp_orphan_done(struct tcp_stack *st, struct tcb *t);

static inline struct tcb *tcp_tcb(const struct tcp_stack *st, int32_t idx)
{
	return &st->chunks[(uint32_t) idx >> TCP_CHUNK_SHIFT][(uint32_t) idx & (TCP_CHUNK - 1)];
}

/* tcp.c */
struct tcb *tcp_lookup(struct tcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport);
struct tcb *tcp_lookup_listener(struct tcp_stack *st, uint16_t lport);
struct tcb *tcp_alloc(struct tcp_stack *st);
void tcp_hash_insert(struct tcp_stack *st, struct tcb *t);
uint32_t tcp_isn(struct tcp_stack *st, uint64_t now, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport);
void tcp_init_conn(struct tcp_stack *st, struct tcb *t, uint64_t now);
void tcp_event(struct tcp_stack *st, struct tcb *t, unsigned ev);
void tcp_notify_run(struct tcp_stack *st);
/* The connection is over: CLOSED, err recorded, timers off; freed when nobody holds it. */
void tcp_drop(struct tcp_stack *st, struct tcb *t, int err);
/* Release a block whose state is CLOSED or TIME_WAIT-expired and that nobody holds. */
void tcp_free(struct tcp_stack *st, struct tcb *t);
void tcp_set_state(struct tcp_stack *st, struct tcb *t, uint8_t state);
uint32_t tcp_rcv_space(const struct tcb *t);
/* A SYN for t in TIME_WAIT: true when t made way for a new connection (RFC 6191). */
bool tcp_tw_reuse(struct tcp_stack *st, struct tcb *t, uint32_t seq, bool has_ts, uint32_t tsval);

/* Keyed hash (SipHash under cfg.secret) of two words, for ISNs, ports and cookies. */
uint64_t tcp_hash2(const struct tcp_stack *st, uint64_t a, uint64_t b);

/* tcp_cookie.c: SYN cookies (RFC 4987 3.6). */
struct tcp_cookie {
	uint16_t mss;   /* the peer's MSS, rounded down to what a cookie can say */
	uint8_t wscale; /* the peer's window shift; 15: no window scaling */
	bool sack, ts;
};
/* Answer a SYN with a cookie SYN-ACK; nothing is kept. */
void tcp_cookie_send(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport,
		     uint16_t lport, uint32_t peer_isn, const struct tcp_opts *o);
/* An ACK (seq, ack) reaching a listener with no connection: true, with what the cookie held,
 * when it answers a cookie of ours from the last 64 to 128 s. */
bool tcp_cookie_check(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport,
		      uint16_t lport, uint32_t seq, uint32_t ack, const struct tcp_opts *o,
		      struct tcp_cookie *c);

/* tcp_output.c */
int tcp_output(struct tcp_stack *st, struct tcb *t, uint64_t now);
/* One segment at seq carrying len bytes of the send ring (from seq) and flags. */
int tcp_send_seg(struct tcp_stack *st, struct tcb *t, uint64_t now, uint32_t seq, uint32_t len,
		 uint16_t flags);
void tcp_send_ack(struct tcp_stack *st, struct tcb *t, uint64_t now);
void tcp_send_rst(struct tcp_stack *st, struct tcb *t, uint64_t now);
/* A segment with no TCB behind it: RST replies (RFC 9293 3.10.7.1). */
void tcp_respond(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport, uint16_t lport,
		 uint32_t seq, uint32_t ack, uint16_t flags);
uint32_t tcp_tsval(const struct tcb *t, uint64_t now);

/* tcp_zc.c: len bytes of the send stream from seq, wherever they are (ring or a loan). */
/* out: dst is a frame another CPU or a device reads next (iface cfg tx_stream), copy_out(). */
void tcp_sbuf_read(const struct tcb *t, uint32_t seq, uint32_t len, uint8_t *dst, bool out);
/* snd_buf_seq moved: end the loans it covers. */
void tcp_zc_acked(struct tcb *t);

/* tcp_hold.c */
/* In-order payload at rcv_nxt that may stay in the frame on offer: true when it was kept. */
bool tcp_hold_take(struct tcp_stack *st, struct tcb *t, const uint8_t *data, uint32_t len);
/* Copy up to len of the kept bytes to dst and give back the frames emptied; the count. */
uint32_t tcp_hold_read(struct tcp_stack *st, struct tcb *t, uint8_t *dst, uint32_t len);
/* Give back every frame t keeps, dropping their bytes (the connection is gone, or SHUT_RD). */
void tcp_hold_drop(struct tcp_stack *st, struct tcb *t);

/* tcp_push.c: true when t's output was put off until tcp_push_flush(). */
bool tcp_push_defer(struct tcp_stack *st, struct tcb *t);

/* The TIME_WAIT list: a full pool takes the oldest block from it (tcp.c). */
void tcp_tw_link(struct tcp_stack *st, struct tcb *t);
void tcp_tw_unlink(struct tcp_stack *st, struct tcb *t);

/* tcp_timer.c */
void tcp_timers_run(struct tcp_stack *st, struct tcb *t, uint64_t now);
uint64_t tcp_next_timer(const struct tcb *t);
void tcp_rexmt_arm(struct tcp_stack *st, struct tcb *t, uint64_t now);
void tcp_rtt_sample(struct tcp_stack *st, struct tcb *t, uint64_t rtt);
void tcp_keep_arm(struct tcp_stack *st, struct tcb *t, uint64_t now);
void tcp_timewait(struct tcp_stack *st, struct tcb *t, uint64_t now);
/* File the block in the timer heap if one of its timers is due before it is filed for. Every
 * entry point calls it for the blocks whose timers it may have armed. */
void tcp_timer_sync(struct tcp_stack *st, struct tcb *t);
void tcp_timer_fini(struct tcp_stack *st);
/* Room in the heap for nblocks blocks: 0 or -1. */
int tcp_timer_grow(struct tcp_stack *st, unsigned nblocks);

/* tcp_buf.c: send and receive rings are taken when data needs them and given back when they
 * empty, so an idle connection holds none. */
/* The receive ring, or false when no memory could be had (the caller drops the data). */
bool tcp_rbuf_need(struct tcp_stack *st, struct tcb *t);
bool tcp_sbuf_need(struct tcp_stack *st, struct tcb *t);
/* Give back rings that hold nothing; then file the timers (tcp_timer_sync). */
void tcp_settle(struct tcp_stack *st, struct tcb *t);
void tcp_bufs_release(struct tcp_stack *st, struct tcb *t);
void tcp_bufpool_fini(struct tcp_bufpool *p);

/* tcp_sack.c */
void tcp_sack_update(struct tcb *t, const struct tcp_opts *o);
void tcp_sack_prune(struct tcb *t);
void tcp_sack_clear(struct tcb *t);
uint32_t tcp_sack_pipe(const struct tcb *t);
/* Bytes the scoreboard holds above snd_una. */
uint32_t tcp_sack_bytes(const struct tcb *t);
/* RFC 6675 IsLost(SND.UNA): enough is SACKed above the first unacknowledged byte. */
bool tcp_sack_islost(const struct tcb *t);
/* During SACK recovery: find retransmissions the peer should hold by now and did not get, and
 * make their holes eligible to be sent again. */
void tcp_sack_rxt_check(struct tcp_stack *st, struct tcb *t);
/* Enter SACK-based recovery (RFC 6675 5, steps 4.1 to 4.3); false when the scoreboard is
 * empty, so NewReno's recovery applies instead. */
bool tcp_sack_enter(struct tcp_stack *st, struct tcb *t, uint64_t now);
/* Send what the pipe allows during SACK recovery: holes first, then new data (6675 5 (C)). */
void tcp_sack_output(struct tcp_stack *st, struct tcb *t, uint64_t now);

/* tcp_cc.c */
void tcp_cc_init(struct tcp_stack *st, struct tcb *t);
/* New data acked outside recovery: grow cwnd (slow start / congestion avoidance). */
void tcp_cc_ack(struct tcp_stack *st, struct tcb *t, uint32_t acked, uint64_t now);
/* Loss detected by duplicate ACKs: set ssthresh (and CUBIC's W_max). */
void tcp_cc_loss(struct tcp_stack *st, struct tcb *t, uint64_t now);
/* Retransmission timeout (RFC 5681 3.1 eq. 4, RFC 9438 4.8). */
void tcp_cc_rto(struct tcp_stack *st, struct tcb *t, uint64_t now);

/*
 * Every entry point takes its time through here. Callers read their clock at different moments
 * (an event loop stamps a burst of frames once, then an event callback calls tcp_send with a
 * fresher reading, then the burst's next frame arrives with the older stamp), so the times the
 * stack is handed may step back a little between calls. Inside, time never does: timestamps
 * must not decrease (RFC 7323 5.4; a TSval older than the last one the peer took fails its PAWS
 * test and the segment is dropped, RFC 7323 5.3), nor may RTT samples or timer arithmetic see
 * a negative interval.
 */
static inline uint64_t tcp_clock(struct tcp_stack *st, uint64_t now)
{
	if (now < st->now) {
		st->stats.clock_back++;
		return st->now;
	}
	st->now = now;
	return now;
}

static inline uint32_t tcp_flight(const struct tcb *t)
{
	return t->snd_max - t->snd_una;
}

#endif
