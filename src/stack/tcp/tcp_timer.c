/*
 * Timers: retransmission (RFC 6298) and persist (RFC 9293 3.8.6.1) share t_rexmt; delayed ACK,
 * keepalive (RFC 9293 3.8.4, RFC 1122 4.2.3.6) and the 2 MSL family (TIME_WAIT, an orphaned
 * FIN_WAIT_2) have their own deadlines. All are absolute times; 0 means not armed.
 *
 * Finding due blocks. A binary min-heap holds blocks by the time they are filed for, and the
 * invariant is: a block with any timer armed is filed for a time no later than its earliest
 * deadline. Arming a timer earlier than that refiles it (tcp_timer_sync); arming one later, or
 * disarming, changes nothing, so the common cases (the RTO pushed back by every ACK, a delayed
 * ACK cancelled by a reply) cost no heap work. A block that comes up early is refiled at its
 * true deadline, or dropped from the heap when nothing is armed any more. tcp_poll() thus runs
 * in time proportional to the blocks that are due (times log n), not to the pool.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "stack/tcp/tcp.h"

#define RTO_G_NS   (1 * TCP_MS) /* RFC 6298 2.2 G: the granularity we claim */
#define TLP_MIN_NS (1 * TCP_MS) /* a floor for the probe timeout on a sub-millisecond path */

uint64_t tcp_next_timer(const struct tcb *t)
{
	uint64_t d[4] = {t->t_rexmt, t->t_delack, t->t_keep, t->t_2msl}, m = 0;

	for (unsigned i = 0; i < 4; i++)
		if (d[i] && (!m || d[i] < m))
			m = d[i];
	return m;
}

/*
 * RFC 8985 7.2: a tail loss probe is due after PTO = 2 SRTT (plus the worst delayed ACK when
 * one segment is in flight), when that comes before the RTO. Only with data in flight on an
 * established connection outside NewReno recovery and before any timeout of it.
 */
static uint64_t tlp_pto(const struct tcp_stack *st, const struct tcb *t)
{
	uint64_t pto;

	if (!t->srtt || t->rxt_shift || (t->flags & (TF_PERSIST | TF_FIN_SENT)) ||
	    (t->flags & (TF_IN_RECOVERY | TF_SACK_RCV)) == TF_IN_RECOVERY ||
	    (t->state != TCPS_ESTABLISHED && t->state != TCPS_CLOSE_WAIT) ||
	    t->snd_una == t->snd_max)
		return 0;
	pto = 2 * t->srtt;
	if (tcp_flight(t) <= t->mss)
		pto += st->cfg.delack_ns;
	return pto > TLP_MIN_NS ? pto : TLP_MIN_NS;
}

/* ---- the heap ---- */

static void heap_set(struct tcp_stack *st, uint32_t i, struct tcp_tentry e)
{
	st->heap[i] = e;
	e.t->theap = i;
}

static void sift_up(struct tcp_stack *st, uint32_t i)
{
	struct tcp_tentry e = st->heap[i];

	while (i > 1 && st->heap[i / 2].when > e.when) {
		heap_set(st, i, st->heap[i / 2]);
		i /= 2;
	}
	heap_set(st, i, e);
}

static void sift_down(struct tcp_stack *st, uint32_t i)
{
	struct tcp_tentry e = st->heap[i];

	for (;;) {
		uint32_t c = 2 * i;

		if (c > st->nheap)
			break;
		if (c < st->nheap && st->heap[c + 1].when < st->heap[c].when)
			c++;
		if (st->heap[c].when >= e.when)
			break;
		heap_set(st, i, st->heap[c]);
		i = c;
	}
	heap_set(st, i, e);
}

static void heap_remove_top(struct tcp_stack *st)
{
	st->heap[1].t->theap = 0;
	if (--st->nheap) {
		st->heap[1] = st->heap[st->nheap + 1];
		sift_down(st, 1);
	}
}

/* The earliest deadline of a block the heap should know about; 0 for none. */
static uint64_t due_of(const struct tcb *t)
{
	return t->state == TCPS_CLOSED || t->state == TCPS_LISTEN ? 0 : tcp_next_timer(t);
}

void tcp_timer_sync(struct tcp_stack *st, struct tcb *t)
{
	uint64_t d = due_of(t);

	if (!d || (t->theap && st->heap[t->theap].when <= d))
		return;
	if (t->theap) {
		st->heap[t->theap].when = d;
		sift_up(st, t->theap);
		return;
	}
	/* The heap has room for every block of the pool (tcp_timer_grow). */
	assert(st->nheap + 1 < st->heap_cap);
	st->nheap++;
	st->heap[st->nheap] = (struct tcp_tentry){d, t};
	t->theap = st->nheap;
	sift_up(st, st->nheap);
}

void tcp_timer_fini(struct tcp_stack *st)
{
	free(st->heap);
	st->heap = NULL;
	st->nheap = st->heap_cap = 0;
}

/* Room for one entry per block, so that filing never fails; called as the pool grows. */
int tcp_timer_grow(struct tcp_stack *st, unsigned nblocks)
{
	struct tcp_tentry *h;

	if (nblocks + 1 <= st->heap_cap)
		return 0;
	h = realloc(st->heap, (nblocks + 1) * sizeof(*h));
	if (!h)
		return -1;
	st->heap = h;
	st->heap_cap = nblocks + 1;
	return 0;
}

uint64_t tcp_poll(struct tcp_stack *st, uint64_t now)
{
	/* Bounded: a block refiled for a time already past comes up again on the next call. */
	unsigned budget = 2 * st->nheap + 16;

	now = tcp_clock(st, now);
	while (st->nheap && st->heap[1].when <= now && budget--) {
		struct tcb *t = st->heap[1].t;

		heap_remove_top(st);
		if (due_of(t))
			tcp_timers_run(st, t, now);
		tcp_settle(st, t);
	}
	tcp_notify_run(st);
	/* A callback may have armed timers; and the top may be filed early. Make the top exact,
	 * so the time returned is the true next deadline. */
	while (st->nheap) {
		struct tcb *t = st->heap[1].t;
		uint64_t d = due_of(t);

		if (d == st->heap[1].when)
			break;
		if (!d) {
			heap_remove_top(st);
		} else {
			st->heap[1].when = d;
			sift_down(st, 1);
		}
	}
	return st->nheap ? st->heap[1].when : UINT64_MAX;
}

/* ---- arming ---- */

void tcp_rexmt_arm(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint64_t rto = t->rto, pto = tlp_pto(st, t);

	t->flags &= ~TF_TLP;
	if (pto && pto < rto) {
		t->flags |= TF_TLP;
		rto = pto;
	}
	if (t->flags & TF_PERSIST) {
		/* Persist backs off like the RTO, bounded the same way. */
		for (unsigned i = 0; i < t->rxt_shift && rto < st->cfg.rto_max_ns; i++)
			rto *= 2;
		if (rto > st->cfg.rto_max_ns)
			rto = st->cfg.rto_max_ns;
	}
	t->t_rexmt = now + rto;
	tcp_timer_sync(st, t);
}

/* RFC 6298 2.2 and 2.3, in nanoseconds. */
void tcp_rtt_sample(struct tcp_stack *st, struct tcb *t, uint64_t r)
{
	uint64_t var;

	if (!r)
		r = 1;
	if (!t->srtt) {
		t->srtt = r;
		t->rttvar = r / 2;
	} else {
		uint64_t d = t->srtt > r ? t->srtt - r : r - t->srtt;

		t->rttvar = (3 * t->rttvar + d) / 4;
		t->srtt = (7 * t->srtt + r) / 8;
	}
	var = 4 * t->rttvar > RTO_G_NS ? 4 * t->rttvar : RTO_G_NS;
	t->rto = t->srtt + var;
	if (t->rto < st->cfg.rto_min_ns)
		t->rto = st->cfg.rto_min_ns;
	if (t->rto > st->cfg.rto_max_ns)
		t->rto = st->cfg.rto_max_ns;
}

void tcp_keep_arm(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	t->t_keep = now + st->cfg.keepidle_ns;
	tcp_timer_sync(st, t);
}

void tcp_timewait(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	t->state = TCPS_TIME_WAIT;
	tcp_tw_link(st, t);
	t->t_rexmt = t->t_delack = t->t_keep = 0;
	t->flags &= ~TF_PERSIST;
	t->t_2msl = now + st->cfg.msl2_ns;
	tcp_timer_sync(st, t);
	tcp_event(st, t, TCP_EV_CLOSED);
}

static void persist_fire(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	if (t->rxt_shift >= st->cfg.retries) {
		tcp_drop(st, t, -ETIMEDOUT);
		return;
	}
	if (t->snd_wnd) {
		/* A window too small to please SWS avoidance: the override timeout expired, so
		 * fill what there is (RFC 9293 3.8.6.2.1). */
		uint32_t off = t->snd_nxt - t->snd_buf_seq;
		uint32_t len = t->sbuf_len > off ? t->sbuf_len - off : 0;
		uint32_t fl = t->snd_nxt - t->snd_una;
		uint32_t room = t->snd_wnd > fl ? t->snd_wnd - fl : 0;
		int ret;

		if (len > room)
			len = room;
		if (len > t->mss)
			len = t->mss;
		t->flags &= ~TF_PERSIST;
		if (!len)
			return;
		ret = tcp_send_seg(st, t, now, t->snd_nxt, len, TCP_ACK | TCP_PSH);
		if (ret > 0) {
			t->snd_nxt += (uint32_t) ret;
			if (SEQ_GT(t->snd_nxt, t->snd_max))
				t->snd_max = t->snd_nxt;
		}
		tcp_rexmt_arm(st, t, now);
		return;
	}
	/* One byte beyond the closed window (RFC 9293 3.8.6.1). The byte is not counted as sent
	 * (snd_nxt stays), but an ACK covering it must be acceptable, hence snd_max. */
	if (t->sbuf_len > t->snd_una - t->snd_buf_seq) {
		st->stats.probes_sent++;
		tcp_send_seg(st, t, now, t->snd_una, 1, TCP_ACK);
		if (SEQ_GT(t->snd_una + 1, t->snd_max))
			t->snd_max = t->snd_una + 1;
	}
	t->rxt_shift++;
	tcp_rexmt_arm(st, t, now);
}

/*
 * RFC 8985 7.3 prefers a new segment as the probe; we always send the last segment again. A
 * duplicate is acknowledged at once (RFC 5681 4.2, with a D-SACK), while Linux holds its ACK
 * of a lone new segment for its delayed-ACK time (40 ms), and the commonest tail event against
 * it is not a lost segment but a lost ACK: Linux answers each GRO-merged burst with one ACK,
 * so one lost ACK leaves the whole flight unacknowledged. The ACK the probe draws repairs that
 * case, and its SACK starts fast recovery when the tail really was lost. Simplified: no TLP
 * loss detection (7.4), so a tail loss the probe itself repairs does not reduce cwnd.
 */
static void tlp_fire(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint32_t len = tcp_flight(t) < t->mss ? tcp_flight(t) : t->mss, seq = t->snd_max - len;

	if (t->flags & TF_IN_RECOVERY) {
		/* In SACK recovery the probe is the first hole again: its retransmission (or
		 * the ACK for it) was lost, and with the pipe over cwnd nothing else would
		 * bring the SACKs that find that out (tcp_sack_rxt_check). */
		seq = t->snd_una;
		if (t->nsacked && t->sacked[0].left - seq < len)
			len = t->sacked[0].left - seq;
	}
	if (len && !(t->flags & TF_FIN_SENT)) {
		int ret;

		st->stats.tlp_probes++;
		t->flags &= ~TF_RTT_TIMING; /* Karn */
		/* The tail again carries the PSH it had (the RTO's retransmission sets it too). */
		ret = tcp_send_seg(st, t, now, seq, len,
				   TCP_ACK | (seq + len == t->snd_max ? TCP_PSH : 0));
		if (ret > 0)
			st->stats.rexmt_bytes += (uint32_t) ret;
	}
	/* The RTO proper, without backoff: one probe per flight. */
	t->flags &= ~TF_TLP;
	t->t_rexmt = now + t->rto;
}

static void rexmt_fire(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	unsigned limit = t->state == TCPS_SYN_SENT || t->state == TCPS_SYN_RCVD
				 ? st->cfg.syn_retries
				 : st->cfg.retries;

	if (t->flags & TF_PERSIST) {
		persist_fire(st, t, now);
		return;
	}
	if (t->flags & TF_TLP) {
		t->flags &= ~TF_TLP;
		if (t->snd_una != t->snd_max) {
			tlp_fire(st, t, now);
			return;
		}
	}
	if (t->snd_una == t->snd_max) {
		/* Nothing in flight: the timer only retries output that found no buffer. */
		tcp_output(st, t, now);
		return;
	}
	if (t->rxt_shift >= limit) {
		tcp_send_rst(st, t, now);
		tcp_drop(st, t, t->soft_err ? t->soft_err : -ETIMEDOUT);
		return;
	}
	st->stats.rto_fired++;
	t->rxt_shift++;
	/* RFC 6298 5.5: back off. */
	t->rto = t->rto * 2 > st->cfg.rto_max_ns ? st->cfg.rto_max_ns : t->rto * 2;
	if (t->state >= TCPS_ESTABLISHED)
		tcp_cc_rto(st, t, now);
	t->recover = t->snd_max;                       /* RFC 6582 3.2 step 2 */
	t->flags &= ~(TF_IN_RECOVERY | TF_RTT_TIMING); /* Karn: no sample from a retransmission */
	tcp_sack_clear(t); /* RFC 6675 5.1: the receiver may have reneged */
	t->dupacks = 0;
	if (t->state == TCPS_SYN_SENT || t->state == TCPS_SYN_RCVD)
		t->snd_nxt = t->iss;
	else
		t->snd_nxt = t->snd_una; /* go back: resend from the oldest unacknowledged byte */
	tcp_output(st, t, now);
	if (!t->t_rexmt && t->state != TCPS_CLOSED)
		tcp_rexmt_arm(st, t, now);
}

static void keep_fire(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	if (!(t->flags & TF_KEEPALIVE) || t->state < TCPS_ESTABLISHED || t->state == TCPS_TIME_WAIT)
		return;
	if (now - t->last_rx < st->cfg.keepidle_ns && !t->keep_probes) {
		t->t_keep = t->last_rx + st->cfg.keepidle_ns;
		return;
	}
	if (t->keep_probes >= st->cfg.keepcnt) {
		tcp_send_rst(st, t, now);
		tcp_drop(st, t, -ETIMEDOUT);
		return;
	}
	/* RFC 9293 3.8.4: a segment the peer must acknowledge, with sequence SND.NXT - 1. */
	st->stats.keepalives_sent++;
	tcp_send_seg(st, t, now, t->snd_una - 1, 0, TCP_ACK);
	t->keep_probes++;
	t->t_keep = now + st->cfg.keepintvl_ns;
}

void tcp_timers_run(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	if (t->t_2msl && now >= t->t_2msl) {
		t->t_2msl = 0;
		if (t->state == TCPS_TIME_WAIT || t->state == TCPS_FIN_WAIT_2 ||
		    t->state == TCPS_SYN_RCVD) {
			tcp_drop(st, t, t->state == TCPS_TIME_WAIT ? 0 : -ETIMEDOUT);
			return;
		}
	}
	if (t->t_delack && now >= t->t_delack) {
		t->t_delack = 0;
		st->stats.delacks++;
		t->flags |= TF_ACKNOW;
		tcp_output(st, t, now);
	}
	if (t->t_rexmt && now >= t->t_rexmt) {
		t->t_rexmt = 0;
		rexmt_fire(st, t, now);
		if (t->state == TCPS_CLOSED)
			return;
	}
	if (t->t_keep && now >= t->t_keep) {
		t->t_keep = 0;
		keep_fire(st, t, now);
	}
}
