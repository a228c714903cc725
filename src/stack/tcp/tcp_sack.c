/*
 * SACK on the sending side: the scoreboard of what the peer holds above snd_una (RFC 2018) and
 * loss recovery from it (RFC 6675), simplified in two documented ways: every hole below the
 * highest SACKed byte counts as lost (IsLost without its DupThresh test, as FACK does), and a
 * retransmitted hole counts once in the pipe.
 *
 * One addition: a retransmission can be lost too. RFC 6675 leaves that to the RTO, which at 1%
 * loss fires every hundred recoveries or so and costs a 200 ms stall and a one-segment window
 * each time. RFC 8985 (RACK) finds such losses from per-segment send times; without those we
 * use what Linux's tcp_mark_lost_retrans used: a retransmission is lost once the peer SACKs data
 * we first sent after it (on a link that keeps order, it would have arrived first).
 */
#include <errno.h>
#include <string.h>

#include "stack/tcp/tcp.h"

void tcp_sack_clear(struct tcb *t)
{
	t->nsacked = 0;
	t->nrxt = 0;
	t->flags &= ~TF_SACK_RCV;
}

static void add(struct tcb *t, uint32_t left, uint32_t right)
{
	struct tcp_range r = {left, right}, keep[TCP_SACKED_MAX];
	unsigned n = 0, at;

	for (unsigned i = 0; i < t->nsacked; i++) {
		struct tcp_range *e = &t->sacked[i];

		if (SEQ_LEQ(e->left, r.right) && SEQ_GEQ(e->right, r.left)) {
			if (SEQ_LT(e->left, r.left))
				r.left = e->left;
			if (SEQ_GT(e->right, r.right))
				r.right = e->right;
		} else {
			keep[n++] = *e;
		}
	}
	if (n == TCP_SACKED_MAX)
		return; /* full: forgetting a block only makes us more conservative */
	for (at = 0; at < n && SEQ_LT(keep[at].left, r.left); at++)
		;
	memmove(&keep[at + 1], &keep[at], (n - at) * sizeof(keep[0]));
	keep[at] = r;
	memcpy(t->sacked, keep, (n + 1) * sizeof(keep[0]));
	t->nsacked = (uint8_t) (n + 1);
}

void tcp_sack_update(struct tcb *t, const struct tcp_opts *o)
{
	if (!(t->flags & TF_SACK) || !(o->present & TCPO_SACK))
		return;
	for (unsigned i = 0; i < o->nsack && i < TCP_MAX_SACK; i++) {
		uint32_t l = o->sack[i].left, r = o->sack[i].right;

		/* RFC 2018 / 6675: only blocks inside (SND.UNA, SND.MAX]; a D-SACK (RFC 2883)
		 * below SND.UNA and anything malformed are ignored. */
		if (!SEQ_LT(l, r) || !SEQ_GT(l, t->snd_una) || SEQ_GT(r, t->snd_max))
			continue;
		add(t, l, r);
	}
}

void tcp_sack_prune(struct tcb *t)
{
	unsigned n = 0;

	for (unsigned i = 0; i < t->nsacked; i++) {
		struct tcp_range e = t->sacked[i];

		if (SEQ_LEQ(e.right, t->snd_una))
			continue;
		if (SEQ_LT(e.left, t->snd_una))
			e.left = t->snd_una;
		if (e.left == t->snd_una)
			continue; /* cumulative ACK will cover it; keeps every extent above snd_una
				   */
		t->sacked[n++] = e;
	}
	t->nsacked = (uint8_t) n;
}

uint32_t tcp_sack_pipe(const struct tcb *t)
{
	uint32_t sacked = 0, lost = 0, from = t->snd_una;

	for (unsigned i = 0; i < t->nsacked; i++) {
		const struct tcp_range *e = &t->sacked[i];
		uint32_t a = SEQ_GT(from, t->high_rxt) ? from : t->high_rxt;

		sacked += e->right - e->left;
		/* The hole [from, e->left): its part at or above HighRxt is lost and not yet
		 * retransmitted, so not in the network. */
		if (SEQ_LT(a, e->left))
			lost += e->left - a;
		from = e->right;
	}
	return tcp_flight(t) - sacked - lost;
}

uint32_t tcp_sack_bytes(const struct tcb *t)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < t->nsacked; i++)
		n += t->sacked[i].right - t->sacked[i].left;
	return n;
}

bool tcp_sack_islost(const struct tcb *t)
{
	/* RFC 6675 4: DupThresh (3) discontiguous SACKed sequences above it, or more than
	 * (DupThresh - 1) * SMSS bytes SACKed above it. */
	return t->nsacked >= 3 || tcp_sack_bytes(t) > 2u * t->mss;
}

static bool sacked_all(const struct tcb *t, uint32_t left, uint32_t right)
{
	for (unsigned i = 0; i < t->nsacked; i++)
		if (SEQ_LEQ(t->sacked[i].left, left) && SEQ_GEQ(t->sacked[i].right, right))
			return true;
	return false;
}

void tcp_sack_rxt_check(struct tcp_stack *st, struct tcb *t)
{
	uint32_t top = t->nsacked ? t->sacked[t->nsacked - 1].right : t->snd_una;
	unsigned n = 0;

	for (unsigned i = 0; i < t->nrxt; i++) {
		uint32_t l = t->rxt[i].left, r = t->rxt[i].right;

		if (SEQ_LEQ(r, t->snd_una) ||
		    sacked_all(t, SEQ_GT(l, t->snd_una) ? l : t->snd_una, r))
			continue; /* delivered */
		/* One segment of slack beyond mark so a single swap of two frames does not
		 * count as a loss. Later entries went out later: all of them are sent again. */
		if (SEQ_GT(top, t->rxt[i].mark + t->mss)) {
			if (SEQ_LT(l, t->snd_una))
				l = t->snd_una;
			if (SEQ_LT(l, t->high_rxt))
				t->high_rxt = l;
			st->stats.lost_rexmt++;
			break;
		}
		t->rxt[n++] = t->rxt[i];
	}
	t->nrxt = (uint8_t) n;
}

static void rxt_note(struct tcb *t, uint32_t left, uint32_t right)
{
	if (t->nrxt && t->rxt[t->nrxt - 1].right == left &&
	    t->rxt[t->nrxt - 1].mark == t->snd_max) {
		t->rxt[t->nrxt - 1].right = right;
		return;
	}
	if (t->nrxt == TCP_RXT_MAX) {
		/* Forget the oldest: if it is lost, the RTO finds it as before. */
		memmove(&t->rxt[0], &t->rxt[1], (TCP_RXT_MAX - 1) * sizeof(t->rxt[0]));
		t->nrxt--;
	}
	t->rxt[t->nrxt].left = left;
	t->rxt[t->nrxt].right = right;
	t->rxt[t->nrxt].mark = t->snd_max;
	t->nrxt++;
}

/* The first byte of a hole not yet retransmitted, and how much of the hole follows it. */
static bool next_hole(const struct tcb *t, uint32_t *seq, uint32_t *len)
{
	uint32_t from = t->snd_una;

	for (unsigned i = 0; i < t->nsacked; i++) {
		const struct tcp_range *e = &t->sacked[i];
		uint32_t a = SEQ_GT(from, t->high_rxt) ? from : t->high_rxt;

		if (SEQ_LT(a, e->left)) {
			*seq = a;
			*len = e->left - a;
			return true;
		}
		from = e->right;
	}
	return false;
}

/* Retransmit (part of) the next hole: bytes sent, 0 when there is no hole, or an error. */
static int send_hole(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint32_t seq, len, off, avail;
	int ret;

	if (!next_hole(t, &seq, &len))
		return 0;
	off = seq - t->snd_buf_seq;
	avail = t->sbuf_len > off ? t->sbuf_len - off : 0;
	if (len > avail)
		len = avail;
	if (len > t->mss)
		len = t->mss;
	if (!len) {
		t->high_rxt = seq + 1; /* nothing to resend there (cannot happen) */
		return 1;
	}
	t->flags &= ~TF_RTT_TIMING; /* Karn */
	ret = tcp_send_seg(st, t, now, seq, len, TCP_ACK);
	if (ret <= 0)
		return ret < 0 ? ret : -EAGAIN;
	t->high_rxt = seq + (uint32_t) ret;
	rxt_note(t, seq, t->high_rxt);
	st->stats.rexmt_bytes += (uint32_t) ret;
	return ret;
}

bool tcp_sack_enter(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	if (!(t->flags & TF_SACK) || !t->nsacked)
		return false;
	t->flags |= TF_SACK_RCV;
	st->stats.sack_recoveries++;
	t->high_rxt = t->snd_una;
	t->nrxt = 0;
	t->cwnd = t->ssthresh; /* RFC 6675 5 step 4.2: no inflation */
	t->snd_nxt = t->snd_max;
	/* Step 4.3: the first segment presumed lost goes out whatever the pipe says. After
	 * the reduction the pipe may well exceed cwnd, and when no further ACK comes (Linux
	 * acknowledges a GRO-merged burst once) waiting for it to drain ends in an RTO. */
	send_hole(st, t, now);
	tcp_sack_output(st, t, now);
	return true;
}

void tcp_sack_output(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint32_t pipe = tcp_sack_pipe(t);

	/* Bounded: each pass sends at least one byte or stops, and the ring is finite. */
	for (unsigned n = 0; n < t->sbuf_size / 64 + 2 && pipe + t->mss <= t->cwnd; n++) {
		uint32_t len, off, avail;
		int ret;

		ret = send_hole(st, t, now);
		if (ret < 0)
			break;
		if (ret > 0) {
			pipe += (uint32_t) ret;
			continue;
		}
		/* RFC 6675 5 (C.3): new data, within the peer's window. */
		off = t->snd_max - t->snd_buf_seq;
		avail = t->sbuf_len > off ? t->sbuf_len - off : 0;
		len = avail < t->mss ? avail : t->mss;
		if (t->snd_wnd < tcp_flight(t) + len)
			len = t->snd_wnd > tcp_flight(t) ? t->snd_wnd - tcp_flight(t) : 0;
		if (!len || (t->flags & TF_FIN_SENT))
			break;
		ret = tcp_send_seg(st, t, now, t->snd_max, len, TCP_ACK);
		if (ret <= 0)
			break;
		t->snd_max += (uint32_t) ret;
		t->snd_nxt = t->snd_max;
		pipe += (uint32_t) ret;
	}
	if (!t->t_rexmt)
		tcp_rexmt_arm(st, t, now);
}
