/* Segment arrival, RFC 9293 3.10.7, hardened per RFC 5961, with RFC 7323 PAWS. */
#include <errno.h>
#include <string.h>

#include "stack/tcp/tcp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/icmp.h"

#define PAWS_IDLE_NS (24ull * 24 * 3600 * IFACE_NS_PER_S) /* RFC 7323 5.5: 24 days */

struct seg {
	uint32_t seq, ack;
	uint16_t flags;
	uint32_t wnd; /* unscaled field */
	const uint8_t *data;
	uint32_t len;
	bool old; /* entirely before rcv_nxt: only its ACK field counts */
	struct tcp_opts o;
};

/*
 * Replies to segments we reject (out of window, bad ACK) are limited per connection too, as
 * Linux's tcp_invalid_ratelimit does: two ends that disagree must not ping-pong ACKs at line
 * rate.
 */
#define OOW_GAP_NS (500 * TCP_MS)

static bool oow_allow(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	if (t->last_oow && now - t->last_oow < OOW_GAP_NS) {
		st->stats.challenge_limited++;
		return false;
	}
	t->last_oow = now;
	return true;
}

/* RFC 5961 7: challenge ACKs are rate limited stack-wide. */
static void challenge_ack(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint64_t sec = now / IFACE_NS_PER_S;

	if (!oow_allow(st, t, now))
		return;

	if (sec != st->chal_sec) {
		st->chal_sec = sec;
		st->chal_count = 0;
	}
	if (st->chal_count >= st->cfg.challenge_acks) {
		st->stats.challenge_limited++;
		return;
	}
	st->chal_count++;
	st->stats.challenge_acks++;
	tcp_send_ack(st, t, now);
}

/* RFC 9293 3.10.7.1: no connection. */
static void closed_input(struct tcp_stack *st, uint64_t now, uint32_t src, uint16_t sport,
			 uint16_t dport, const struct seg *s)
{
	st->stats.no_tcb++;
	if (s->flags & TCP_RST)
		return;
	st->stats.no_port_rst++;
	if (s->flags & TCP_ACK)
		tcp_respond(st, now, src, sport, dport, s->ack, 0, TCP_RST);
	else
		tcp_respond(st, now, src, sport, dport, 0,
			    s->seq + s->len + !!(s->flags & TCP_SYN) + !!(s->flags & TCP_FIN),
			    TCP_RST | TCP_ACK);
}

/* Options of the peer's SYN or SYN-ACK decide what this connection uses. */
static void syn_options(struct tcb *t, uint64_t now, const struct seg *s)
{
	uint16_t peer_mss = (s->o.present & TCPO_MSS) ? s->o.mss : TCP_DEFAULT_MSS;
	uint32_t mss = peer_mss < t->rcv_mss ? peer_mss : t->rcv_mss;

	if (s->o.present & TCPO_WSCALE) {
		t->flags |= TF_WS;
		t->snd_wscale = s->o.wscale;
	} else {
		/* RFC 7323 2.3: both sides scale or neither does. */
		t->snd_wscale = 0;
		t->rcv_wscale = 0;
	}
	if ((s->o.present & TCPO_TS) && !t->st->cfg.no_ts) {
		t->flags |= TF_TS;
		t->ts_recent = s->o.ts_val;
		t->ts_recent_age = now;
		mss -= 12; /* RFC 7323 3.2: the option comes out of every segment's payload */
	}
	if ((s->o.present & TCPO_SACK_PERM) && !t->st->cfg.no_sack)
		t->flags |= TF_SACK;
	t->mss = (uint16_t) (mss < 32 ? 32 : mss);
}

static void sync_input(struct tcp_stack *st, struct tcb *t, uint64_t now, struct seg *s);

/* A connection a SYN (or a SYN cookie's ACK) makes on listener lis, for raddr:rport. */
static void passive_child(struct tcp_stack *st, struct tcb *t, const struct tcb *lis,
			  uint32_t raddr, uint16_t rport, uint64_t now)
{
	t->raddr = raddr;
	t->rport = rport;
	t->lport = lis->lport;
	t->parent = lis->idx;
	t->flags = 0;
	tcp_init_conn(st, t, now);
}

/*
 * The ACK of a cookie SYN-ACK (tcp_cookie.c): build the connection the SYN queue had no room
 * for, in SYN-RECEIVED as if it had been queued, and let the ACK complete the handshake
 * through the ordinary path (which also takes any data it carries). false: not a cookie of
 * ours, or no room now.
 */
static bool cookie_ack(struct tcp_stack *st, struct tcb *lis, uint64_t now,
		       const struct ip4_view *ip, uint16_t sport, struct seg *s)
{
	struct tcp_cookie c;
	struct tcb *t;
	uint32_t mss;

	if (!tcp_cookie_check(st, now, ip->src, sport, lis->lport, s->seq, s->ack, &s->o, &c))
		return false;
	if (lis->nacc >= lis->backlog) {
		st->stats.accept_queue_full++;
		return true; /* like Linux: drop it; the peer's data or retransmission retries */
	}
	t = tcp_alloc(st);
	if (!t) {
		st->stats.syn_queue_full++;
		return true;
	}
	passive_child(st, t, lis, ip->src, sport, now);
	t->irs = s->seq - 1;
	t->rcv_nxt = s->seq;
	t->last_ack_sent = t->rcv_nxt;
	/* What the cookie SYN-ACK announced (never scaled). */
	t->rcv_adv = t->rcv_nxt + (tcp_rcv_space(t) > 65535 ? 65535 : tcp_rcv_space(t));
	mss = c.mss < t->rcv_mss ? c.mss : t->rcv_mss;
	if (c.wscale != 15) {
		t->flags |= TF_WS;
		t->snd_wscale = c.wscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : c.wscale;
	} else {
		t->snd_wscale = t->rcv_wscale = 0;
	}
	if (c.ts) {
		t->flags |= TF_TS;
		t->ts_recent = s->o.ts_val;
		t->ts_recent_age = now;
		mss -= 12;
	}
	if (c.sack)
		t->flags |= TF_SACK;
	t->mss = (uint16_t) (mss < 32 ? 32 : mss);
	tcp_cc_init(st, t);
	t->iss = s->ack - 1;
	t->snd_una = t->iss;
	t->snd_nxt = t->snd_max = t->iss + 1;
	t->recover = t->iss;
	t->snd_buf_seq = t->iss + 1;
	t->snd_wl1 = s->seq;
	t->snd_wl2 = t->iss;
	t->state = TCPS_SYN_RCVD;
	lis->nsyn++;
	tcp_hash_insert(st, t);
	sync_input(st, t, now, s);
	return true;
}

/* RFC 9293 3.10.7.2. */
static void listen_input(struct tcp_stack *st, struct tcb *lis, uint64_t now,
			 const struct ip4_view *ip, uint16_t sport, struct seg *s)
{
	struct tcb *t;

	if (s->flags & TCP_RST)
		return;
	if (s->flags & TCP_ACK) {
		if (!(s->flags & (TCP_SYN | TCP_FIN)) && cookie_ack(st, lis, now, ip, sport, s))
			return;
		tcp_respond(st, now, ip->src, sport, lis->lport, s->ack, 0, TCP_RST);
		st->stats.no_port_rst++;
		return;
	}
	if (!(s->flags & TCP_SYN))
		return;
	/* Bounded SYN and accept queues. A full accept queue drops the SYN (the peer retries);
	 * a full SYN queue, or no TCB for one, answers with a SYN cookie. */
	if (lis->nacc >= lis->backlog) {
		st->stats.accept_queue_full++;
		return;
	}
	if (lis->nsyn >= lis->backlog) {
		st->stats.syn_queue_full++;
		tcp_cookie_send(st, now, ip->src, sport, lis->lport, s->seq, &s->o);
		return;
	}
	t = tcp_alloc(st);
	if (!t) {
		st->stats.syn_queue_full++;
		tcp_cookie_send(st, now, ip->src, sport, lis->lport, s->seq, &s->o);
		return;
	}
	passive_child(st, t, lis, ip->src, sport, now);
	t->irs = s->seq;
	t->rcv_nxt = s->seq + 1;
	t->rcv_adv = t->rcv_nxt;
	t->last_ack_sent = t->rcv_nxt;
	syn_options(t, now, s);
	tcp_cc_init(st, t);
	t->iss = tcp_isn(st, now, t->laddr, t->lport, t->raddr, t->rport);
	t->snd_una = t->snd_nxt = t->snd_max = t->iss;
	t->recover = t->iss; /* RFC 6582 3.2 step 1 */
	t->snd_buf_seq = t->iss + 1;
	t->snd_wnd = s->wnd; /* RFC 7323 2.2: never scaled in a SYN */
	t->max_sndwnd = t->snd_wnd;
	t->snd_wl1 = s->seq;
	t->snd_wl2 = t->iss;
	t->state = TCPS_SYN_RCVD;
	lis->nsyn++;
	tcp_hash_insert(st, t);
	tcp_output(st, t, now);
}

static void established(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	t->state = TCPS_ESTABLISHED;
	t->rxt_shift = 0;
	t->t_rexmt = 0;
	tcp_cc_init(st, t); /* the MSS is known now */
	if (t->flags & TF_KEEPALIVE)
		tcp_keep_arm(st, t, now);
	if (t->flags & TF_FIN_QUEUED)
		t->state = TCPS_FIN_WAIT_1;
}

/* RFC 9293 3.10.7.3. */
static void syn_sent_input(struct tcp_stack *st, struct tcb *t, uint64_t now, const struct seg *s)
{
	bool ack_ok = false;

	if (s->flags & TCP_ACK) {
		if (SEQ_LEQ(s->ack, t->iss) || SEQ_GT(s->ack, t->snd_max)) {
			if (!(s->flags & TCP_RST))
				tcp_respond(st, now, t->raddr, t->rport, t->lport, s->ack, 0,
					    TCP_RST);
			return;
		}
		ack_ok = true;
	}
	if (s->flags & TCP_RST) {
		/* RFC 5961 3.2: in SYN-SENT a RST counts only when it acknowledges our SYN. */
		st->stats.rst_in++;
		if (ack_ok)
			tcp_drop(st, t, -ECONNREFUSED);
		return;
	}
	if (!(s->flags & TCP_SYN))
		return;
	t->irs = s->seq;
	t->rcv_nxt = s->seq + 1;
	/* What our SYN announced (never scaled). */
	t->rcv_adv = t->rcv_nxt + (tcp_rcv_space(t) > 65535 ? 65535 : tcp_rcv_space(t));
	t->flags |= TF_SEEN_SYN;
	syn_options(t, now, s);
	t->snd_wnd = s->wnd;
	t->max_sndwnd = t->snd_wnd;
	t->snd_wl1 = s->seq;
	t->snd_wl2 = s->ack;
	if (ack_ok) {
		if ((t->flags & TF_RTT_TIMING) && SEQ_GT(s->ack, t->rtt_seq)) {
			tcp_rtt_sample(st, t, now - t->rtt_start);
			t->flags &= ~TF_RTT_TIMING;
		}
		t->snd_una = s->ack;
		established(st, t, now);
		t->flags |= TF_ACKNOW;
		tcp_event(st, t, TCP_EV_CONNECTED | TCP_EV_WRITABLE);
		tcp_output(st, t, now);
		return;
	}
	/* Simultaneous open (RFC 9293 3.5, figure 8): answer with SYN-ACK from the same ISS. */
	t->state = TCPS_SYN_RCVD;
	t->snd_nxt = t->iss;
	t->t_rexmt = 0;
	tcp_output(st, t, now);
}

/* ---- receive side ---- */

static void ring_write(struct tcb *t, uint32_t off, const uint8_t *src, uint32_t len)
{
	uint32_t pos, first;

	if (!len)
		return; /* the receive hook took it all: the ring may not even exist */
	pos = (t->rbuf_head + t->rbuf_len + off) % t->rbuf_size;
	first = t->rbuf_size - pos < len ? t->rbuf_size - pos : len;
	memcpy(t->rbuf + pos, src, first);
	memcpy(t->rbuf, src + first, len - first);
}

/*
 * Record [left, right) as held out of order. The table stays sorted and disjoint, with the most
 * recently changed extent moved last so SACK reports it first. false when it is full.
 */
static bool ooo_add(struct tcp_stack *st, struct tcb *t, uint32_t left, uint32_t right)
{
	struct tcp_range r = {left, right};
	unsigned i = 0, n = 0;
	struct tcp_range keep[TCP_OOO_MAX];

	/* Merge every extent that overlaps or touches r into r. */
	for (i = 0; i < t->nooo; i++) {
		struct tcp_range *e = &t->ooo[i];

		if (SEQ_LEQ(e->left, r.right) && SEQ_GEQ(e->right, r.left)) {
			if (SEQ_LT(e->left, r.left))
				r.left = e->left;
			if (SEQ_GT(e->right, r.right))
				r.right = e->right;
		} else {
			keep[n++] = *e;
		}
	}
	if (n >= st->cfg.ooo_max)
		return false;
	memcpy(t->ooo, keep, n * sizeof(keep[0]));
	t->ooo[n++] = r;
	t->nooo = (uint8_t) n;
	return true;
}

/* In-order data reached rcv_nxt: pull in the extents it now touches. */
static bool ooo_pull(struct tcb *t)
{
	bool filled = false;

	for (bool again = true; again;) {
		again = false;
		for (unsigned i = 0; i < t->nooo; i++) {
			struct tcp_range *e = &t->ooo[i];

			if (SEQ_LEQ(e->left, t->rcv_nxt)) {
				if (SEQ_GT(e->right, t->rcv_nxt)) {
					t->rbuf_len += e->right - t->rcv_nxt;
					t->rcv_nxt = e->right;
				}
				memmove(e, e + 1, (t->nooo - i - 1) * sizeof(*e));
				t->nooo--;
				filled = again = true;
				break;
			}
		}
	}
	return filled;
}

/* Place payload that starts at or after rcv_nxt (already trimmed to the window). */
static void rcv_data(struct tcp_stack *st, struct tcb *t, uint64_t now, uint32_t seq,
		     const uint8_t *data, uint32_t len)
{
	uint32_t off = seq - t->rcv_nxt;

	if (t->flags & TF_RD_SHUT) {
		/* Nobody will read it: take it off the window at once. */
		if (off == 0) {
			t->rcv_nxt += len;
			t->flags |= TF_ACKNOW;
		}
		return;
	}
	if (off) {
		st->stats.ooo_segs++;
		if (!tcp_rbuf_need(st, t))
			return; /* as if lost: the peer sends it again */
		if (ooo_add(st, t, seq, seq + len))
			ring_write(t, off, data, len);
		else
			st->stats.ooo_full++;
		/* RFC 5681 4.2: an out-of-order segment is acknowledged at once (a dup ACK). */
		t->flags |= TF_ACKNOW;
		return;
	}
	if (!t->rbuf_len && !t->nooo && !t->nhold && t->rx_hook && (t->flags & TF_USER)) {
		size_t took = t->rx_hook(t->arg, t, data, len);

		if (took > len)
			took = len;
		data += took;
		len -= (uint32_t) took;
		t->rcv_nxt += (uint32_t) took;
	}
	if ((t->flags & TF_USER) && tcp_hold_take(st, t, data, len)) {
		t->rcv_nxt += len; /* read from its frame later (tcp_hold.c) */
	} else {
		if (len && !tcp_rbuf_need(st, t)) {
			t->flags |= TF_ACKNOW; /* what the hook took; the rest comes again */
			return;
		}
		ring_write(t, 0, data, len);
		t->rbuf_len += len;
		t->rcv_nxt += len;
		if (ooo_pull(t))
			t->flags |= TF_ACKNOW; /* RFC 5681 4.2: a segment that fills a hole */
	}
	tcp_event(st, t, TCP_EV_READABLE);
	/* Delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2): at least every second full-sized segment,
	 * and never later than delack_ns. */
	if ((t->flags & TF_QUICKACK) || t->rcv_nxt - t->last_ack_sent >= 2u * t->rcv_mss)
		t->flags |= TF_ACKNOW;
	else if (!t->t_delack)
		t->t_delack = now + st->cfg.delack_ns;
}

static void fin_arrived(struct tcp_stack *st, struct tcb *t, uint64_t now, bool fin_acked)
{
	t->rcv_nxt++;
	t->nooo = 0; /* nothing beyond the FIN can be valid */
	t->flags |= TF_FIN_RCVD | TF_ACKNOW;
	t->flags &= ~TF_FIN_OOO;
	tcp_event(st, t, TCP_EV_READABLE);
	switch (t->state) {
	case TCPS_SYN_RCVD:
	case TCPS_ESTABLISHED:
		t->state = TCPS_CLOSE_WAIT;
		break;
	case TCPS_FIN_WAIT_1:
		if (fin_acked)
			tcp_timewait(st, t, now);
		else
			t->state = TCPS_CLOSING;
		break;
	case TCPS_FIN_WAIT_2:
		tcp_timewait(st, t, now);
		break;
	default:
		break;
	}
}

/* ---- acknowledgement side ---- */

/* Retransmit the first unacknowledged segment (fast retransmit, NewReno partial ACK). */
static void rexmt_first(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint32_t off = t->snd_una - t->snd_buf_seq;
	uint32_t len = t->sbuf_len > off ? t->sbuf_len - off : 0;
	uint32_t sent = t->snd_max - t->snd_una; /* never beyond what was sent */
	uint16_t flags = TCP_ACK;

	if ((t->flags & TF_FIN_SENT) && sent)
		sent--;
	if (len > sent)
		len = sent;
	if (len > t->mss)
		len = t->mss;
	if ((t->flags & TF_FIN_SENT) && t->snd_una + len == t->snd_buf_seq + t->sbuf_len)
		flags |= TCP_FIN;
	if (!len && !(flags & TCP_FIN))
		return;
	t->flags &= ~TF_RTT_TIMING; /* Karn */
	if (tcp_send_seg(st, t, now, t->snd_una, len, flags) >= 0)
		st->stats.rexmt_bytes += len;
}

/*
 * RFC 3042: on the first two duplicate ACKs, one new segment each beyond cwnd (flight at most
 * cwnd + 2 SMSS), so a small window still draws the ACKs fast retransmit needs.
 */
static void limited_transmit(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint32_t cwnd = t->cwnd, before = t->snd_max;

	if (t->snd_nxt != t->snd_max)
		return;
	t->cwnd = tcp_flight(t) + t->mss < cwnd + 2u * t->mss ? tcp_flight(t) + t->mss
							      : cwnd + 2u * t->mss;
	tcp_output(st, t, now);
	t->cwnd = cwnd;
	if (t->snd_max != before)
		st->stats.limited_xmit++;
}

/* Returns false when the segment must be dropped here. */
static bool ack_input(struct tcp_stack *st, struct tcb *t, uint64_t now, const struct seg *s,
		      bool *fin_acked)
{
	uint32_t wnd = s->wnd << t->snd_wscale, sacked;
	bool sack_news;

	/* RFC 5961 5.2: an ACK for data never sent, or far below SND.UNA, is answered and
	 * dropped. snd_max stands for SND.NXT since snd_nxt goes back on retransmission. */
	if (SEQ_GT(s->ack, t->snd_max) || SEQ_LT(s->ack, t->snd_una - t->max_sndwnd)) {
		st->stats.bad_ack++;
		challenge_ack(st, t, now);
		return false;
	}
	if (t->state == TCPS_SYN_RCVD) {
		if (SEQ_LEQ(s->ack, t->snd_una)) {
			tcp_respond(st, now, t->raddr, t->rport, t->lport, s->ack, 0, TCP_RST);
			return false;
		}
		if (t->parent >= 0) {
			struct tcb *lis = tcp_tcb(st, t->parent);

			if (lis->nacc >= lis->backlog) {
				/* Like Linux: forget the ACK; our SYN-ACK retransmits. */
				st->stats.accept_queue_full++;
				return false;
			}
			lis->nsyn--;
			lis->nacc++;
			t->qnext = -1;
			if (lis->acc_tail >= 0)
				tcp_tcb(st, lis->acc_tail)->qnext = t->idx;
			else
				lis->acc_head = t->idx;
			lis->acc_tail = t->idx;
			tcp_event(st, lis, TCP_EV_ACCEPT);
		} else {
			tcp_event(st, t, TCP_EV_CONNECTED | TCP_EV_WRITABLE);
		}
		t->snd_wnd = wnd;
		t->snd_wl1 = s->seq;
		t->snd_wl2 = s->ack;
		established(st, t, now);
	}
	sacked = tcp_sack_bytes(t);
	tcp_sack_update(t, &s->o);
	sack_news = tcp_sack_bytes(t) > sacked;
	if (SEQ_GT(s->ack, t->snd_una)) {
		uint32_t acked = s->ack - t->snd_una, data = 0;

		if ((t->flags & TF_RTT_TIMING) && SEQ_GT(s->ack, t->rtt_seq)) {
			tcp_rtt_sample(st, t, now - t->rtt_start);
			t->flags &= ~TF_RTT_TIMING;
		}
		if (SEQ_GT(s->ack, t->snd_buf_seq)) {
			data = s->ack - t->snd_buf_seq;
			if (data > t->sbuf_len)
				data = t->sbuf_len;
			t->sbuf_head = (t->sbuf_head + data) % t->sbuf_size;
			t->sbuf_len -= data;
			t->snd_buf_seq += data;
			t->acked_total += data;
			if (t->nzref)
				tcp_zc_acked(t);
		}
		if ((t->flags & TF_FIN_SENT) && s->ack == t->snd_buf_seq + t->sbuf_len + 1)
			*fin_acked = true;
		if (t->flags & TF_IN_RECOVERY) {
			if (SEQ_GEQ(s->ack, t->recover)) {
				/* RFC 6582 3.2 step 3, full acknowledgement: deflate. */
				uint32_t fl = t->snd_max - s->ack;

				/* RFC 6582 3.2 step 3 (1), min(ssthresh, max(FlightSize, SMSS) +
				 * SMSS); after SACK recovery (2), ssthresh, as Linux does: cwnd was
				 * ssthresh all along there and the pipe kept bursts in check, while
				 * (1) drops to 2 SMSS whenever the full ACK empties the flight. */
				if (fl < t->mss)
					fl = t->mss;
				if (!(t->flags & TF_SACK_RCV) && fl + t->mss < t->ssthresh)
					t->cwnd = fl + t->mss;
				else
					t->cwnd = t->ssthresh;
				t->flags &= ~(TF_IN_RECOVERY | TF_SACK_RCV);
				t->dupacks = 0;
				t->nrxt = 0;
				/* recover only guards against reducing twice for one window
				 * (6582 4.1); the data sent at recover itself belongs to the next
				 * one, and its loss must be able to start a recovery. */
				t->recover = s->ack - 1;
			} else if (t->flags & TF_SACK_RCV) {
				/* RFC 6675: a partial ACK only moves the scoreboard; the pipe
				 * decides what goes next (tcp_sack_output via tcp_output). */
				st->stats.partial_acks++;
				if (SEQ_LT(t->high_rxt, s->ack))
					t->high_rxt = s->ack;
			} else {
				/* Partial acknowledgement (step 4): retransmit the next hole,
				 * deflate by what was acked, add back one MSS. */
				st->stats.partial_acks++;
				t->snd_una = s->ack;
				rexmt_first(st, t, now);
				t->cwnd = t->cwnd > acked ? t->cwnd - acked : t->mss;
				if (acked >= t->mss)
					t->cwnd += t->mss;
				if (t->dupacks) {
					t->dupacks = 0;
					tcp_rexmt_arm(st, t, now);
				}
			}
		} else {
			t->dupacks = 0;
			tcp_cc_ack(st, t, acked, now);
		}
		t->snd_una = s->ack;
		if (SEQ_LT(t->snd_nxt, t->snd_una))
			t->snd_nxt = t->snd_una;
		tcp_sack_prune(t);
		t->rxt_shift = 0;
		if (!(t->flags & TF_PERSIST)) {
			/* RFC 6298 5.2 / 5.3. */
			if (t->snd_una == t->snd_max)
				t->t_rexmt = 0;
			else
				tcp_rexmt_arm(st, t, now);
		}
		iface_neigh_confirm(st->ifc, now, t->raddr);
		if (data)
			tcp_event(st, t, TCP_EV_ACKED | TCP_EV_WRITABLE);
	} else if (s->ack == t->snd_una && !s->len && !s->old &&
		   !(s->flags & (TCP_SYN | TCP_FIN)) && (wnd == t->snd_wnd || sack_news) &&
		   t->snd_max != t->snd_una && !(t->flags & TF_PERSIST)) {
		/* A duplicate ACK (RFC 5681 2). With SACK, one that SACKs new data counts even
		 * when the window moved (RFC 6675 2, "DupAck"): Linux's receive buffer tuning
		 * grows the window on nearly every ACK, so the strict test never fires. */
		t->dupacks++;
		if (t->flags & TF_IN_RECOVERY) {
			if (!(t->flags & TF_SACK_RCV))
				t->cwnd += t->mss; /* RFC 6582 3.2 step 3 (inflation) */
		} else if (t->dupacks < 3 && !tcp_sack_islost(t)) {
			limited_transmit(st, t, now);
		}
	}
	/* RFC 6675 5: recovery starts on DupThresh duplicate ACKs or as soon as the scoreboard
	 * says the first unacknowledged segment is lost (IsLost), whichever comes first; the
	 * latter also when the ACK moved snd_una but not past a further hole. RFC 6582 3.2 step 2:
	 * recover guards against a second reduction for losses of one window after a timeout.
	 * Counting duplicates, an ACK at recover may be one the go-back-N after the timeout
	 * drew for data the peer held; SACK tells those apart (they SACK nothing new), so there
	 * an ACK at recover, whose hole is the first byte sent after the timeout, may start. */
	if (!(t->flags & TF_IN_RECOVERY) && t->snd_max != t->snd_una && !(t->flags & TF_PERSIST) &&
	    ((t->dupacks >= 3 && SEQ_GT(s->ack, t->recover)) ||
	     ((t->flags & TF_SACK) && SEQ_GEQ(s->ack, t->recover) && tcp_sack_islost(t)))) {
		st->stats.fast_rexmt++;
		tcp_cc_loss(st, t, now);
		t->recover = t->snd_max;
		t->flags |= TF_IN_RECOVERY;
		if (!tcp_sack_enter(st, t, now)) {
			rexmt_first(st, t, now);
			t->cwnd = t->ssthresh + 3u * t->mss;
		}
		/* After entering: in SACK recovery the timer is first the probe (tcp_timer.c),
		 * which repairs a lost last ACK in milliseconds instead of an RTO. */
		tcp_rexmt_arm(st, t, now);
	} else if ((t->flags & (TF_IN_RECOVERY | TF_SACK_RCV)) == (TF_IN_RECOVERY | TF_SACK_RCV)) {
		tcp_sack_rxt_check(st, t);
	}
	/* RFC 9293 3.10.7.4: window update from the newest segment only. With SEQ and ACK both
	 * unchanged, only a larger (or zero) window counts, as in Linux: a receiver never
	 * moves its right edge back, so a smaller one is a reordered old segment. */
	if (SEQ_LT(t->snd_wl1, s->seq) || (t->snd_wl1 == s->seq && SEQ_LT(t->snd_wl2, s->ack)) ||
	    (t->snd_wl1 == s->seq && t->snd_wl2 == s->ack && (wnd > t->snd_wnd || !wnd))) {
		t->snd_wnd = wnd;
		t->snd_wl1 = s->seq;
		t->snd_wl2 = s->ack;
		if (wnd > t->max_sndwnd)
			t->max_sndwnd = wnd;
		if (wnd && (t->flags & TF_PERSIST)) {
			t->flags &= ~TF_PERSIST;
			t->t_rexmt = 0;
			t->rxt_shift = 0;
			if (t->snd_una != t->snd_max)
				tcp_rexmt_arm(st, t, now);
		}
	}
	if (t->flags & TF_PERSIST)
		t->rxt_shift = 0; /* the peer answers: it is alive, keep probing */
	return true;
}

/* RFC 9293 3.10.7.4: every state after SYN-SENT. */
static void sync_input(struct tcp_stack *st, struct tcb *t, uint64_t now, struct seg *s)
{
	uint32_t seglen = s->len + !!(s->flags & TCP_SYN) + !!(s->flags & TCP_FIN);
	uint32_t wnd = tcp_rcv_space(t);
	bool ok, fin_acked = false;

	if (SEQ_GT(t->rcv_adv, t->rcv_nxt + wnd))
		wnd = t->rcv_adv - t->rcv_nxt;
	/* RFC 7323 5.3 R1: PAWS before anything else. */
	if ((t->flags & TF_TS) && (s->o.present & TCPO_TS) && !(s->flags & TCP_RST) &&
	    SEQ_LT(s->o.ts_val, t->ts_recent)) {
		if (now - t->ts_recent_age > PAWS_IDLE_NS) {
			t->ts_recent = s->o.ts_val; /* 5.5: ts_recent went stale */
		} else {
			st->stats.paws_drops++;
			t->flags |= TF_ACKNOW;
			tcp_output(st, t, now);
			return;
		}
	}
	/* A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost. */
	if (t->state == TCPS_SYN_RCVD && (s->flags & TCP_SYN) && !(s->flags & TCP_ACK) &&
	    s->seq == t->irs) {
		t->snd_nxt = t->iss;
		tcp_output(st, t, now);
		return;
	}
	/* Simultaneous open: the peer's SYN-ACK answers ours while we sit in SYN-RECEIVED. Its
	 * SYN is one we hold already; read it as the ACK that completes the handshake (the
	 * sequence test would reject it, RFC 9293 figure 8 expects it; Linux passes it too). */
	if (t->state == TCPS_SYN_RCVD && t->parent < 0 && (s->flags & TCP_SYN) &&
	    (s->flags & TCP_ACK) && s->seq + 1 == t->rcv_nxt && s->ack == t->iss + 1) {
		s->flags &= (uint16_t) ~TCP_SYN;
		s->seq = t->rcv_nxt;
		s->len = 0;
		s->flags &= (uint16_t) ~TCP_FIN;
		seglen = 0;
	}
	/* Acceptability (RFC 9293 3.10.7.4, the four cases). */
	if (seglen == 0)
		ok = wnd == 0 ? s->seq == t->rcv_nxt
			      : SEQ_GEQ(s->seq, t->rcv_nxt) && SEQ_LT(s->seq, t->rcv_nxt + wnd);
	else
		ok = wnd != 0 &&
		     ((SEQ_GEQ(s->seq, t->rcv_nxt) && SEQ_LT(s->seq, t->rcv_nxt + wnd)) ||
		      (SEQ_GEQ(s->seq + seglen - 1, t->rcv_nxt) &&
		       SEQ_LT(s->seq + seglen - 1, t->rcv_nxt + wnd)));
	/* RFC 5961 3.2 needs an in-window RST that misses rcv_nxt: with a zero window only an
	 * exact match is acceptable, which the case above already covers. */
	if (!ok) {
		if (s->flags & TCP_RST)
			return;
		/* Answer (RFC 9293 3.10.7.4) what carried something; an old or stray pure ACK
		 * only at a limited rate. */
		if (seglen || oow_allow(st, t, now))
			t->flags |= TF_ACKNOW;
		if (SEQ_LEQ(s->seq + seglen, t->rcv_nxt) && (s->flags & TCP_ACK) &&
		    !(s->flags & TCP_SYN) && t->state != TCPS_SYN_RCVD) {
			/* Entirely old: a retransmission we already hold. Its ACK field is still
			 * news (as BSD and Linux read it); ignoring it lets two ends that both
			 * went back after a timeout reject each other's ACKs for ever. */
			st->stats.dup_segs++;
			/* RFC 9293 3.10.7.4: a retransmitted FIN restarts the 2 MSL wait. */
			if (t->state == TCPS_TIME_WAIT && (s->flags & TCP_FIN))
				t->t_2msl = now + st->cfg.msl2_ns;
			s->len = 0;
			s->flags &= ~TCP_FIN;
			s->old = true;
			goto ack;
		}
		if (SEQ_LT(s->seq, t->rcv_nxt))
			st->stats.dup_segs++;
		else
			st->stats.out_of_window++;
		tcp_output(st, t, now);
		return;
	}
	if (s->flags & TCP_RST) {
		st->stats.rst_in++;
		if (s->seq != t->rcv_nxt) {
			/* RFC 5961 3.2: in the window but not exact: challenge. */
			challenge_ack(st, t, now);
			return;
		}
		switch (t->state) {
		case TCPS_SYN_RCVD:
			tcp_drop(st, t, t->parent >= 0 ? 0 : -ECONNREFUSED);
			break;
		case TCPS_TIME_WAIT:
			/* RFC 1337 (TIME-WAIT assassination, hazard H1): a RST must not cut
			 * TIME_WAIT short, or old duplicates may reach a new incarnation. */
			break;
		case TCPS_CLOSING:
		case TCPS_LAST_ACK:
			tcp_drop(st, t, 0);
			break;
		case TCPS_CLOSE_WAIT:
			/* The stream already ended: Linux reports the reset as EPIPE there
			 * (tcp_reset()), and so do we, to look the same to applications. */
			tcp_drop(st, t, -EPIPE);
			break;
		default:
			tcp_drop(st, t, -ECONNRESET);
			break;
		}
		return;
	}
	if (s->flags & TCP_SYN) {
		/* RFC 5961 4.2: any SYN in a synchronized state gets a challenge ACK. */
		challenge_ack(st, t, now);
		return;
	}
	if (!(s->flags & TCP_ACK))
		return;
	/* RFC 7323 4.3 / 5.3 R3: remember the timestamp of the segment at the left edge. */
	if ((t->flags & TF_TS) && (s->o.present & TCPO_TS) && SEQ_LEQ(s->seq, t->last_ack_sent) &&
	    SEQ_GEQ(s->o.ts_val, t->ts_recent)) {
		t->ts_recent = s->o.ts_val;
		t->ts_recent_age = now;
	}
	/* Trim what we already have and what lies beyond the window. */
	if (SEQ_LT(s->seq, t->rcv_nxt)) {
		uint32_t d = t->rcv_nxt - s->seq;

		if (d >= s->len) {
			d = s->len;
			/* The FIN, if any, was already taken when it sits before rcv_nxt. */
			if ((s->flags & TCP_FIN) && SEQ_LT(s->seq + s->len, t->rcv_nxt))
				s->flags &= ~TCP_FIN;
		}
		s->data += d;
		s->len -= d;
		s->seq += d;
		st->stats.dup_segs += d != 0;
		if (d)
			t->flags |= TF_ACKNOW;
	}
	if (SEQ_GT(s->seq + s->len, t->rcv_nxt + wnd)) {
		uint32_t keep = t->rcv_nxt + wnd - s->seq;

		s->len = keep < s->len ? keep : s->len;
		s->flags &= ~TCP_FIN;
		t->flags |= TF_ACKNOW;
		st->stats.rcv_trimmed++;
	}
ack:
	if (!ack_input(st, t, now, s, &fin_acked))
		goto out;
	if (t->state == TCPS_CLOSED)
		return;
	t->last_rx = now;
	t->keep_probes = 0;
	if (t->flags & TF_KEEPALIVE)
		tcp_keep_arm(st, t, now);
	if (fin_acked) {
		switch (t->state) {
		case TCPS_FIN_WAIT_1:
			t->state = TCPS_FIN_WAIT_2;
			if (!(t->flags & TF_USER))
				t->t_2msl = now + st->cfg.fin_wait2_ns;
			break;
		case TCPS_CLOSING:
			tcp_timewait(st, t, now);
			break;
		case TCPS_LAST_ACK:
			tcp_drop(st, t, 0);
			return;
		default:
			break;
		}
	}
	if (t->state == TCPS_TIME_WAIT) {
		/* RFC 9293 3.10.7.4: a retransmitted FIN restarts the 2 MSL wait. */
		if (s->flags & TCP_FIN) {
			t->t_2msl = now + st->cfg.msl2_ns;
			t->flags |= TF_ACKNOW;
		}
		goto out;
	}
	if (s->len) {
		if (t->flags & TF_FIN_RCVD) {
			/* Data beyond the FIN cannot be valid; it was trimmed or is a dup. */
		} else if (!(t->flags & TF_USER) && (t->flags & TF_RD_SHUT)) {
			/* Data for a closed socket: RFC 9293 3.10.4, the peer must know. */
			tcp_send_rst(st, t, now);
			tcp_drop(st, t, 0);
			return;
		} else if (t->state == TCPS_ESTABLISHED || t->state == TCPS_FIN_WAIT_1 ||
			   t->state == TCPS_FIN_WAIT_2) {
			rcv_data(st, t, now, s->seq, s->data, s->len);
		}
	}
	if ((s->flags & TCP_FIN) && !(t->flags & TF_FIN_RCVD)) {
		uint32_t fseq = s->seq + s->len;

		if (fseq == t->rcv_nxt) {
			fin_arrived(st, t, now, fin_acked || t->state == TCPS_FIN_WAIT_2);
		} else if (SEQ_GT(fseq, t->rcv_nxt)) {
			t->flags |= TF_FIN_OOO | TF_ACKNOW;
			t->rcv_fin = fseq;
		}
	}
	if ((t->flags & TF_FIN_OOO) && t->rcv_fin == t->rcv_nxt)
		fin_arrived(st, t, now, t->state == TCPS_FIN_WAIT_2);
out:
	/* With deferred output (tcp_set_defer) a burst of segments is answered once at its end:
	 * one ACK for the burst, as Linux's GRO makes. Not while data is out of order, where each
	 * segment owes the sender its duplicate ACK (RFC 5681 4.2). */
	if (t->state != TCPS_CLOSED && !(t->nooo == 0 && tcp_push_defer(st, t)))
		tcp_output(st, t, now);
}

void tcp_input(void *ctx, uint64_t now, const struct ip4_view *ip, const struct tcp_view *v)
{
	struct tcp_stack *st = ctx;
	struct tcb *t;
	struct seg s = {
		.seq = v->seq,
		.ack = v->ack,
		.flags = v->flags,
		.wnd = v->window,
		.data = v->payload,
		.len = (uint32_t) v->payload_len,
	};

	now = tcp_clock(st, now);
	st->stats.segs_in++;
	if (tcp_opts_parse(v->opts, v->opts_len, &s.o) < 0) {
		st->stats.bad_opts++;
		return;
	}
	if (!v->sport || !v->dport)
		return;
	t = tcp_lookup(st, ip->src, v->sport, v->dport);
	if (t && (s.flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN &&
	    tcp_tw_reuse(st, t, s.seq, s.o.present & TCPO_TS, s.o.ts_val))
		t = NULL;
	if (!t) {
		struct tcb *lis = tcp_lookup_listener(st, v->dport);

		if (lis)
			listen_input(st, lis, now, ip, v->sport, &s);
		else
			closed_input(st, now, ip->src, v->sport, v->dport, &s);
	} else if (t->state == TCPS_SYN_SENT) {
		t->cs->segs_in++;
		syn_sent_input(st, t, now, &s);
	} else {
		t->cs->segs_in++;
		sync_input(st, t, now, &s);
	}
	/* The block the segment reached (or made): rings it emptied go back, timers it armed
	 * are filed. A block freed meanwhile is CLOSED and holds neither. */
	if (!t)
		t = tcp_lookup(st, ip->src, v->sport, v->dport);
	if (t)
		tcp_settle(st, t);
	tcp_notify_run(st);
}

void tcp_icmp_error(void *ctx, uint64_t now, const struct ip4_view *ip,
		    const struct icmp_view *icmp)
{
	struct tcp_stack *st = ctx;
	struct tcb *t;
	uint32_t seq;
	int err;

	if (icmp->type != ICMP_DEST_UNREACH || icmp->orig.proto != IP4_PROTO_TCP ||
	    icmp->orig.l4_len < 8)
		return;
	t = tcp_lookup(st, icmp->orig.dst, ld_be16(icmp->orig.l4 + 2), ld_be16(icmp->orig.l4));
	if (!t || t->state == TCPS_LISTEN)
		return;
	seq = ld_be32(icmp->orig.l4 + 4);
	/* RFC 5927 4.1: only for a sequence number in flight, so blind forgeries miss. */
	if (SEQ_LT(seq, t->snd_una) || SEQ_GEQ(seq, t->snd_max))
		return;
	switch (icmp->code) {
	case ICMP_PORT_UNREACH:
	case ICMP_PROT_UNREACH:
		err = -ECONNREFUSED;
		break;
	case ICMP_NET_UNREACH:
		err = -ENETUNREACH;
		break;
	case ICMP_FRAG_NEEDED:
		return; /* no path MTU discovery yet */
	default:
		err = -EHOSTUNREACH;
		break;
	}
	now = tcp_clock(st, now);
	if (t->state == TCPS_SYN_SENT)
		tcp_drop(st, t, err);
	else
		t->soft_err = err;
	tcp_notify_run(st);
}
