/* Segment transmission: what may leave now (windows, Nagle, FIN), and the segments themselves. */
#include <errno.h>
#include <string.h>

#include "stack/tcp/tcp.h"

uint32_t tcp_tsval(const struct tcb *t, uint64_t now)
{
	/* RFC 7323 5.4: a millisecond clock with a per-connection offset (7.1). */
	return (uint32_t) (now / TCP_MS) + t->ts_off;
}

/* SACK blocks for the receiver's out-of-order extents, the most recent first (RFC 2018 4). */
static void sack_blocks(const struct tcb *t, struct tcp_opts *o, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = t->nooo; i-- > 0 && n < max;) {
		o->sack[n].left = t->ooo[i].left;
		o->sack[n].right = t->ooo[i].right;
		n++;
	}
	if (n) {
		o->nsack = (uint8_t) n;
		o->present |= TCPO_SACK;
	}
}

static void build_opts(const struct tcb *t, uint64_t now, uint16_t flags, struct tcp_opts *o)
{
	o->present = 0;
	if (flags & TCP_SYN) {
		bool synack = flags & TCP_ACK;

		o->present |= TCPO_MSS;
		o->mss = t->rcv_mss;
		/* RFC 7323 2.2 / 3.2: a SYN-ACK carries an option only when the SYN did. */
		if (!synack || (t->flags & TF_WS)) {
			o->present |= TCPO_WSCALE;
			o->wscale = t->rcv_wscale;
		}
		if ((!synack && !t->st->cfg.no_ts) || (t->flags & TF_TS)) {
			o->present |= TCPO_TS;
			o->ts_val = tcp_tsval(t, now);
			o->ts_ecr = synack ? t->ts_recent : 0;
		}
		if ((!synack && !t->st->cfg.no_sack) || (t->flags & TF_SACK))
			o->present |= TCPO_SACK_PERM;
		return;
	}
	if (t->flags & TF_TS) {
		o->present |= TCPO_TS;
		o->ts_val = tcp_tsval(t, now);
		o->ts_ecr = t->ts_recent;
	}
	if ((t->flags & TF_SACK) && t->nooo && !(flags & TCP_RST))
		sack_blocks(t, o, t->flags & TF_TS ? 3 : 4);
}

/* The window field: never shrink the right edge we announced (RFC 9293 3.8.6.2.1). */
static uint16_t window_field(struct tcb *t, uint16_t flags)
{
	uint32_t space = tcp_rcv_space(t), w;

	uint32_t cur = SEQ_GT(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	uint32_t thresh = t->rbuf_size / 2 < t->rcv_mss ? t->rbuf_size / 2 : t->rcv_mss;

	if (flags & TCP_SYN) {
		w = space > 65535 ? 65535 : space;
		if (flags & TCP_ACK)
			t->rcv_adv = t->rcv_nxt + w;
		return (uint16_t) w;
	}
	/* Receiver SWS avoidance (RFC 9293 3.8.6.2.2): open the window only by at least
	 * min(half the buffer, one MSS); never move its right edge back. */
	if (space < cur || space - cur < thresh)
		space = cur;
	w = space >> t->rcv_wscale;
	if (w > 65535)
		w = 65535;
	if (SEQ_GT(t->rcv_nxt + (w << t->rcv_wscale), t->rcv_adv))
		t->rcv_adv = t->rcv_nxt + (w << t->rcv_wscale);
	return (uint16_t) w;
}

int tcp_send_seg(struct tcp_stack *st, struct tcb *t, uint64_t now, uint32_t seq, uint32_t len,
		 uint16_t flags)
{
	struct iface_tx tx;
	struct tcp_opts o;
	struct tcp_hdr h;
	size_t hl;
	int olen, ret;

	build_opts(t, now, flags, &o);
	olen = tcp_opts_len(&o);
	if (olen < 0) {
		o.present &= ~TCPO_SACK;
		olen = tcp_opts_len(&o);
	}
	hl = TCP_HLEN + (size_t) olen;
	if (len > t->mss) {
		/* Beyond one MSS only where the device segments (tcp_tso_len): each of its
		 * segments carries these options, so its payload is what fits the MTU. */
		size_t seg = (size_t) st->ifc->mtu - IP4_HLEN - hl;

		ret = iface_ip4_begin_tso(st->ifc, now, t->raddr,
					  (uint16_t) (seg < t->mss ? seg : t->mss), &tx);
	} else {
		ret = iface_ip4_begin(st->ifc, now, t->raddr, &tx);
	}
	if (ret < 0) {
		st->stats.tx_fail++;
		return ret;
	}
	if (hl > tx.l4_cap) {
		iface_ip4_abort(st->ifc, &tx);
		st->stats.tx_fail++;
		return -EMSGSIZE;
	}
	if (len > tx.l4_cap - hl) {
		/* SACK blocks took room the caller counted on: send less, and the FIN (which
		 * follows the last byte) not yet. Callers look at the length returned. */
		len = (uint32_t) (tx.l4_cap - hl);
		flags &= (uint16_t) ~TCP_FIN;
	}
	if (len)
		tcp_sbuf_read(t, seq, len, tx.l4 + hl, st->ifc->cfg.tx_stream);
	h = (struct tcp_hdr){
		.sport = t->lport,
		.dport = t->rport,
		.seq = seq,
		.ack = (flags & TCP_ACK) ? t->rcv_nxt : 0,
		.flags = flags,
		.window = (flags & TCP_RST) ? 0 : window_field(t, flags),
	};
	/* A frame the device cuts gets its checksums from the device, segment by segment; a
	 * trusted link (PORT_CAP_L4_CSUM_NONE) needs none. */
	ret = tcp_emit(tx.l4, tx.l4_cap, &h, &o, tx.l4 + hl, len, t->laddr, t->raddr,
		       (tx.tso_mss && hl + len > (size_t) st->ifc->mtu - IP4_HLEN) ||
				       st->ifc->cfg.l4_csum_none
			       ? TCP_CSUM_OK
			       : 0);
	if (ret < 0) {
		iface_ip4_abort(st->ifc, &tx);
		st->stats.tx_fail++;
		return ret;
	}
	ret = iface_ip4_commit(st->ifc, &tx, IP4_PROTO_TCP, 0, (size_t) ret);
	if (ret < 0) {
		st->stats.tx_fail++;
		return ret;
	}
	st->stats.segs_out++;
	st->stats.bytes_out += len;
	t->cs->segs_out++;
	if (len && SEQ_LT(seq, t->snd_max)) {
		t->cs->rexmt_segs++;
		t->cs->rexmt_bytes += len;
	}
	if (flags & TCP_ACK) {
		t->flags &= ~TF_ACKNOW;
		t->t_delack = 0;
		t->delack_segs = 0;
		t->last_ack_sent = t->rcv_nxt;
	}
	if (flags & TCP_RST)
		st->stats.rst_out++;
	return (int) len;
}

void tcp_send_ack(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	/* snd_max, not snd_nxt: after a timeout snd_nxt goes back, and an ACK numbered below
	 * what the peer already holds would be unacceptable to it (as in Linux). A window
	 * probe's byte is not really sent, so then snd_nxt. */
	tcp_send_seg(st, t, now, t->flags & TF_PERSIST ? t->snd_nxt : t->snd_max, 0, TCP_ACK);
}

void tcp_send_rst(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	tcp_send_seg(st, t, now, t->snd_max, 0, TCP_RST | TCP_ACK);
}

void tcp_respond(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport, uint16_t lport,
		 uint32_t seq, uint32_t ack, uint16_t flags)
{
	struct tcp_hdr h = {.sport = lport, .dport = rport, .seq = seq, .ack = ack, .flags = flags};
	struct iface_tx tx;
	int len;

	if (iface_ip4_begin(st->ifc, now, raddr, &tx) < 0) {
		st->stats.tx_fail++;
		return;
	}
	len = tcp_emit(tx.l4, tx.l4_cap, &h, NULL, NULL, 0, st->ifc->ip, raddr, 0);
	if (len < 0) {
		iface_ip4_abort(st->ifc, &tx);
		return;
	}
	if (iface_ip4_commit(st->ifc, &tx, IP4_PROTO_TCP, 0, (size_t) len) == 0) {
		st->stats.segs_out++;
		if (flags & TCP_RST)
			st->stats.rst_out++;
	}
}

static void syn_output(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint16_t flags = t->state == TCPS_SYN_RCVD ? TCP_SYN | TCP_ACK : TCP_SYN;

	if (t->snd_nxt != t->iss) {
		if ((t->flags & TF_ACKNOW) && t->state == TCPS_SYN_RCVD)
			tcp_send_ack(st, t, now);
		return;
	}
	if (tcp_send_seg(st, t, now, t->iss, 0, flags) < 0) {
		/* Nothing left: the retransmission timer tries again. */
		if (!t->t_rexmt)
			tcp_rexmt_arm(st, t, now);
		return;
	}
	if (!(t->flags & TF_RTT_TIMING) && t->rxt_shift == 0) {
		t->flags |= TF_RTT_TIMING;
		t->rtt_seq = t->iss;
		t->rtt_start = now;
	}
	t->snd_nxt = t->iss + 1;
	if (SEQ_GT(t->snd_nxt, t->snd_max))
		t->snd_max = t->snd_nxt;
	if (!t->t_rexmt)
		tcp_rexmt_arm(st, t, now);
}

/*
 * The most one new segment may carry: one MSS, or where the device segments (TSO) as many of the
 * segments it will cut as one TSO frame holds, up to 64 KiB (with room for the largest TCP
 * header). The device's segments carry the options too (timestamps: 12 bytes less payload).
 */
static uint32_t tcp_tso_len(const struct tcp_stack *st, const struct tcb *t)
{
	uint32_t max = st->ifc->cfg.tso_max, room;
	uint32_t seg = (uint32_t) st->ifc->mtu - IP4_HLEN - TCP_HLEN - (t->flags & TF_TS ? 12 : 0);

	if (seg > t->mss)
		seg = t->mss;
	if (!max || max <= ETH_HLEN + IP4_HLEN + 60 + 2 * seg)
		return t->mss;
	room = max - ETH_HLEN - IP4_HLEN - 60;
	if (room > 65535 - IP4_HLEN - 60)
		room = 65535 - IP4_HLEN - 60;
	return room / seg * seg;
}

int tcp_output(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	uint32_t seg_max = tcp_tso_len(st, t);
	bool sent = false;

	switch (t->state) {
	case TCPS_CLOSED:
	case TCPS_LISTEN:
		return 0;
	case TCPS_SYN_SENT:
	case TCPS_SYN_RCVD:
		syn_output(st, t, now);
		return 0;
	case TCPS_TIME_WAIT:
		if (t->flags & TF_ACKNOW)
			tcp_send_ack(st, t, now);
		return 0;
	default:
		break;
	}
	if ((t->flags & (TF_IN_RECOVERY | TF_SACK_RCV)) == (TF_IN_RECOVERY | TF_SACK_RCV)) {
		uint64_t before = st->stats.segs_out;

		tcp_sack_output(st, t, now);
		if (st->stats.segs_out == before && (t->flags & TF_ACKNOW))
			tcp_send_ack(st, t, now);
		return 0;
	}
	/* Bounded by what one call may send: the whole send ring plus a FIN. */
	for (unsigned n = 0; n < t->sbuf_size / 64 + 2; n++) {
		uint32_t off = t->snd_nxt - t->snd_buf_seq;
		uint32_t avail = off < t->sbuf_len ? t->sbuf_len - off : 0;
		uint32_t wnd = t->snd_wnd < t->cwnd ? t->snd_wnd : t->cwnd;
		uint32_t inflight = t->snd_nxt - t->snd_una;
		uint32_t usable = wnd > inflight ? wnd - inflight : 0;
		uint32_t len = avail < seg_max ? avail : seg_max;
		uint32_t fin_seq = t->snd_buf_seq + t->sbuf_len;
		bool rexmt = SEQ_LT(t->snd_nxt, t->snd_max);
		bool fin;
		uint16_t flags = TCP_ACK;
		int ret;

		if (len > usable)
			len = usable;
		fin = (t->flags & TF_FIN_QUEUED) && t->snd_nxt + len == fin_seq &&
		      off <= t->sbuf_len;
		if (!len && !fin)
			break;
		if (len && len < t->mss && !fin && !rexmt) {
			/* Nagle (RFC 896, RFC 9293 3.7.4) and sender SWS avoidance (3.8.6.2.1):
			 * a short segment leaves only when it empties the ring and nothing is in
			 * flight (or NODELAY), or when it fills half the largest window seen. */
			bool all = len == avail;
			bool idle = inflight == 0 || (t->flags & TF_NODELAY);

			if (!(all && idle) && !(t->max_sndwnd && len >= t->max_sndwnd / 2))
				break;
		}
		if (fin)
			flags |= TCP_FIN;
		if (len && len == avail)
			flags |= TCP_PSH;
		ret = tcp_send_seg(st, t, now, t->snd_nxt, len, flags);
		if (ret < 0) {
			/* No device buffer or neighbour slot: try again on the RTO. */
			if (!t->t_rexmt)
				tcp_rexmt_arm(st, t, now);
			break;
		}
		len = (uint32_t) ret;
		if (len && !rexmt && !(t->flags & TF_RTT_TIMING) && t->rxt_shift == 0) {
			t->flags |= TF_RTT_TIMING;
			t->rtt_seq = t->snd_nxt;
			t->rtt_start = now;
		}
		if (rexmt)
			st->stats.rexmt_bytes += len;
		t->snd_nxt += len;
		if (fin && t->snd_nxt == fin_seq) {
			t->snd_nxt++;
			t->flags |= TF_FIN_SENT;
		}
		if (SEQ_GT(t->snd_nxt, t->snd_max))
			t->snd_max = t->snd_nxt;
		if (t->flags & TF_PERSIST) {
			t->flags &= ~TF_PERSIST;
			t->t_rexmt = 0;
		}
		if (!t->t_rexmt)
			tcp_rexmt_arm(st, t, now);
		sent = true;
		if (t->flags & TF_FIN_SENT && t->snd_nxt == fin_seq + 1)
			break;
	}
	if (!sent && (t->flags & TF_ACKNOW))
		tcp_send_ack(st, t, now);
	/* Data waits with nothing in flight: behind a zero window (RFC 9293 3.8.6.1, probe
	 * it), or behind one too small for sender SWS avoidance (3.8.6.2.1, whose override
	 * timeout this is). Either way the persist timer moves it. */
	if (t->snd_nxt == t->snd_una && !t->t_rexmt &&
	    (t->sbuf_len > t->snd_nxt - t->snd_buf_seq)) {
		t->flags |= TF_PERSIST;
		tcp_rexmt_arm(st, t, now);
	}
	return 0;
}
