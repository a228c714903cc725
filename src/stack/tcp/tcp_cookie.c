/*
 * SYN cookies (RFC 4987 3.6), in the spirit of Linux's: when a listener's SYN queue is full, the
 * SYN is answered with a SYN-ACK whose ISN carries what the connection needs and nothing is
 * kept; the peer's ACK brings the ISN back (as its ACK number minus one) and, if the cookie is
 * ours and fresh, the connection is made then.
 *
 * The ISN: bits 31..27 the low bits of a counter that moves every 64 s, bits 26..24 the peer's
 * MSS as an index into a table (rounded down), bits 23..0 a MAC: SipHash under the stack's
 * secret of the 4-tuple, the peer's ISN, the counter and the MSS index. An ACK is taken when its
 * cookie was made in this counter period or the previous one (64 to 128 s), so a captured
 * cookie goes stale, and a forged one passes with probability 2^-23 (two periods tried).
 *
 * Options the 32 bits have no room for ride in the timestamp: with timestamps on, the low five
 * bits of our SYN-ACK's TSval hold the peer's window scale (15: none) and SACK-permitted, and
 * come back in the ACK's TSecr. The TSval is rounded down to do so, so it never runs ahead of
 * the clock the connection uses afterwards. Without timestamps a cookie connection has neither
 * window scaling nor SACK (the SYN-ACK offers neither), as in Linux.
 */
#include <string.h>

#include "stack/tcp/tcp.h"

#define COOKIE_PERIOD_NS (64ull * IFACE_NS_PER_S)
#define COOKIE_TAG       0x636f6f6b00000000ull /* "cook": keeps these hashes apart from ISNs' */
#define COOKIE_NO_WS     15u
#define COOKIE_SACK      16u

/* MSS values a cookie can carry: common ones, each a floor for those between it and the next. */
static const uint16_t mss_table[8] = {256, 536, 1220, 1300, 1400, 1440, 1460, 8960};

static unsigned mss_index(uint16_t mss)
{
	unsigned i = 7;

	while (i > 0 && mss_table[i] > mss)
		i--;
	return i;
}

static uint32_t mac(struct tcp_stack *st, uint64_t count, unsigned idx, uint32_t raddr,
		    uint16_t rport, uint16_t lport, uint32_t peer_isn)
{
	uint64_t h = tcp_hash2(st, (uint64_t) raddr << 32 | st->ifc->ip,
			       (uint64_t) peer_isn << 32 | (uint32_t) rport << 16 | lport);

	return (uint32_t) tcp_hash2(st, h, COOKIE_TAG | count << 3 | idx) & 0xffffff;
}

void tcp_cookie_send(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport,
		     uint16_t lport, uint32_t peer_isn, const struct tcp_opts *o)
{
	uint64_t count = now / COOKIE_PERIOD_NS;
	uint16_t peer_mss = (o->present & TCPO_MSS) ? o->mss : TCP_DEFAULT_MSS;
	unsigned idx = mss_index(peer_mss);
	struct tcb tmp;

	/* A TCB that lives for this one segment: what tcp_send_seg needs to build the SYN-ACK
	 * exactly as a queued connection would. */
	memset(&tmp, 0, sizeof(tmp));
	tmp.st = st;
	tmp.cs = &tmp.cs_own;
	tmp.idx = tmp.hnext = tmp.parent = tmp.qnext = tmp.acc_head = tmp.acc_tail = -1;
	tmp.laddr = st->ifc->ip;
	tmp.raddr = raddr;
	tmp.rport = rport;
	tmp.lport = lport;
	tmp.sbuf_size = st->cfg.sndbuf;
	tmp.rbuf_size = st->cfg.rcvbuf;
	tcp_init_conn(st, &tmp, now);
	tmp.state = TCPS_SYN_RCVD;
	tmp.rcv_nxt = peer_isn + 1;
	if (o->present & TCPO_TS) {
		uint32_t bits = (o->present & TCPO_WSCALE)
					? (o->wscale < COOKIE_NO_WS ? o->wscale : COOKIE_NO_WS - 1)
					: COOKIE_NO_WS;
		uint32_t real, enc;

		if ((o->present & TCPO_SACK_PERM) && !st->cfg.no_sack) {
			bits |= COOKIE_SACK;
			tmp.flags |= TF_SACK;
		}
		if (o->present & TCPO_WSCALE)
			tmp.flags |= TF_WS;
		tmp.flags |= TF_TS;
		tmp.ts_recent = o->ts_val;
		real = tcp_tsval(&tmp, now);
		enc = (real & ~31u) | bits;
		if (SEQ_GT(enc, real))
			enc -= 32;
		tmp.ts_off += enc - real; /* tcp_tsval() now gives enc */
	}
	tmp.iss = (uint32_t) (count & 31) << 27 | idx << 24 |
		  mac(st, count, idx, raddr, rport, lport, peer_isn);
	if (tcp_send_seg(st, &tmp, now, tmp.iss, 0, TCP_SYN | TCP_ACK) >= 0) {
		st->stats.syncookies_sent++;
		st->cookie_at = now ? now : 1;
	}
}

bool tcp_cookie_check(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport,
		      uint16_t lport, uint32_t seq, uint32_t ack, const struct tcp_opts *o,
		      struct tcp_cookie *c)
{
	uint32_t cookie = ack - 1, peer_isn = seq - 1;
	uint64_t count = now / COOKIE_PERIOD_NS;
	unsigned idx = (cookie >> 24) & 7;
	bool ok = false;

	/* Only while cookies may be out there: otherwise a stray ACK is just that. */
	if (!st->cookie_at || now - st->cookie_at > 2 * COOKIE_PERIOD_NS)
		return false;
	for (uint64_t k = 0; k < 2 && k <= count && !ok; k++)
		ok = ((count - k) & 31) == cookie >> 27 &&
		     mac(st, count - k, idx, raddr, rport, lport, peer_isn) == (cookie & 0xffffff);
	if (!ok) {
		st->stats.syncookies_failed++;
		return false;
	}
	memset(c, 0, sizeof(*c));
	c->mss = mss_table[idx];
	c->wscale = COOKIE_NO_WS;
	if (o->present & TCPO_TS) {
		uint32_t bits = o->ts_ecr & 31;

		c->ts = true;
		c->wscale = (uint8_t) (bits & 15);
		c->sack = (bits & COOKIE_SACK) && !st->cfg.no_sack;
	}
	st->stats.syncookies_ok++;
	return true;
}
