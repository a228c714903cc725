/*
 * TCP segment by segment, in the spirit of packetdrill: build a segment from the peer, feed it
 * through the interface at a virtual time, assert the exact segment that comes back (or that
 * none does), and the socket's state and errors.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stack/iface/iface.h"
#include "stack/iface/txq.h"
#include "stack/tcp/tcp.h"
#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"

#define IP(a, b, c, d) ((uint32_t) wire_be32((uint32_t) (a) << 24 | (b) << 16 | (c) << 8 | (d)))
#define S              IFACE_NS_PER_S
#define MS             1000000ull

static const uint8_t our_mac[6] = {2, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};
#define OUR_IP    IP(198, 18, 0, 1)
#define PEER_IP   IP(198, 18, 0, 2)
#define PORT      8080
#define PEER_PORT 40000
#define PEER_ISS  1000000u
#define T0        (10 * S)

static struct iface ifc;
static struct txq q;
static struct tcp_stack st;
static struct tcp_config cfg;
static uint64_t now;

struct out {
	struct tcp_view v;
	struct tcp_opts o;
	uint8_t data[2048];
};

static void init_stack(void)
{
	struct iface_config c = {.ip = OUR_IP, .prefix_len = 24};
	struct iface_hooks h = {.tcp_input = tcp_input, .icmp_error = tcp_icmp_error, .ctx = &st};
	uint8_t f[60];

	memcpy(c.mac, our_mac, 6);
	cr_assert_eq(txq_init(&q, 64, 2048), 0);
	cr_assert_eq(iface_init(&ifc, &c, txq_dev(&q), &h), 0);
	cr_assert_eq(tcp_init(&st, &cfg, &ifc), 0);
	now = T0;
	/* Learn the peer's address so segments leave at once. */
	eth_emit(f, 14, eth_broadcast, peer_mac, ETH_P_ARP);
	arp_emit(f + 14, ARP_LEN, ARP_OP_REQUEST, peer_mac, PEER_IP, NULL, OUR_IP);
	memset(f + 42, 0, 18);
	cr_assert_eq(iface_input(&ifc, now, f, 60, 0), 0);
	txq_pop(&q);
}

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_socks = 8;
	cfg.sndbuf = 65536;
	cfg.rcvbuf = 65536;
	cfg.syn_retries = 3;
	init_stack();
}

static void teardown(void)
{
	tcp_fini(&st);
	iface_fini(&ifc);
	txq_fini(&q);
}

TestSuite(tcp, .init = setup, .fini = teardown);

/* ---- the peer ---- */

/* A segment from the peer's port sport (another port: another connection). */
static int seg_in_port(uint16_t sport, uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win,
		       const struct tcp_opts *o, const void *data, size_t len)
{
	uint8_t f[2048];
	struct tcp_hdr h = {.sport = sport,
			    .dport = PORT,
			    .seq = seq,
			    .ack = ack,
			    .flags = flags,
			    .window = win};
	struct ip4_hdr ih = {.src = PEER_IP, .dst = OUR_IP, .ttl = 64, .proto = IP4_PROTO_TCP};
	int n;

	eth_emit(f, 14, our_mac, peer_mac, ETH_P_IPV4);
	n = tcp_emit(f + 34, sizeof(f) - 34, &h, o, data, len, PEER_IP, OUR_IP, 0);
	cr_assert_gt(n, 0);
	ip4_emit(f + 14, 20, &ih, (size_t) n);
	return iface_input(&ifc, now, f, 34 + (size_t) n, 0);
}

static int seg_in_opts(uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win,
		       const struct tcp_opts *o, const void *data, size_t len)
{
	return seg_in_port(PEER_PORT, flags, seq, ack, win, o, data, len);
}

static int seg_in(uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win, const void *data,
		  size_t len)
{
	return seg_in_opts(flags, seq, ack, win, NULL, data, len);
}

/* The next segment we sent, parsed; fails the test when there is none. */
static void seg_out(struct out *o)
{
	uint32_t len;
	const uint8_t *f = txq_peek(&q, &len);
	struct ip4_view ip;

	cr_assert_not_null(f, "a segment was sent");
	cr_assert_eq(ld_be16(f + 12), ETH_P_IPV4);
	cr_assert_eq(ip4_parse(f + 14, len - 14, 0, &ip), 0);
	cr_assert_eq(ip.proto, IP4_PROTO_TCP);
	cr_assert_eq(ip.src, OUR_IP);
	cr_assert_eq(ip.dst, PEER_IP);
	cr_assert_eq(tcp_parse(ip.payload, ip.payload_len, ip.src, ip.dst, 0, &o->v), 0,
		     "checksum and header are valid");
	cr_assert_eq(tcp_opts_parse(o->v.opts, o->v.opts_len, &o->o), 0);
	memcpy(o->data, o->v.payload, o->v.payload_len);
	o->v.payload = o->data;
	txq_pop(&q);
}

static void expect_seg(uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win, size_t len)
{
	struct out o;

	seg_out(&o);
	cr_assert_eq(o.v.flags, flags, "flags %#x, expected %#x", o.v.flags, flags);
	cr_assert_eq(o.v.seq, seq, "seq %u, expected %u", o.v.seq, seq);
	cr_assert_eq(o.v.ack, ack, "ack %u, expected %u", o.v.ack, ack);
	cr_assert_eq(o.v.window, win, "window %u, expected %u", o.v.window, win);
	cr_assert_eq(o.v.payload_len, len, "payload %zu, expected %zu", o.v.payload_len, len);
	cr_assert_eq(o.v.sport, PORT);
	cr_assert_eq(o.v.dport, PEER_PORT);
}

static void expect_nothing(void)
{
	uint32_t len;

	cr_assert_null(txq_peek(&q, &len), "no segment was sent");
}

/* ---- connections in a known state ---- */

static struct tcb *lis;
static uint32_t iss; /* ours */

/* Passive open with no options (MSS 536, no scaling, no timestamps): easy exact numbers. */
static struct tcb *accept_plain(void)
{
	struct tcb *t;

	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in(TCP_SYN, PEER_ISS, 0, 8192, NULL, 0);
	iss = tcp_isn(&st, now, OUR_IP, PORT, PEER_IP, PEER_PORT);
	expect_seg(TCP_SYN | TCP_ACK, iss, PEER_ISS + 1, 65535, 0);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, NULL, 0);
	expect_nothing();
	cr_assert_eq(tcp_accept(lis, &t), 0);
	cr_assert_eq(tcp_state(t), TCPS_ESTABLISHED);
	return t;
}

/* The window we announce on a plain connection with n bytes unread (no scaling): the right
 * edge stays where the first 65535 put it until reading opens a full MSS (receiver SWS). */
static uint16_t win_after(uint32_t unread)
{
	return (uint16_t) (65535 - unread);
}

/* ---- opening ---- */

Test(tcp, answers_a_syn_on_a_listening_port_with_a_syn_ack_carrying_its_options)
{
	struct tcp_opts o = {.present = TCPO_MSS | TCPO_WSCALE | TCPO_SACK_PERM | TCPO_TS,
			     .mss = 1400,
			     .wscale = 7,
			     .ts_val = 777,
			     .ts_ecr = 0};
	struct out r;
	static const uint8_t opts_exp[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0,
					     0, 0, 0,    0,    3, 9, 1, 3,  3, 1};

	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in_opts(TCP_SYN, PEER_ISS, 0, 65535, &o, NULL, 0);
	seg_out(&r);
	iss = tcp_isn(&st, now, OUR_IP, PORT, PEER_IP, PEER_PORT);
	cr_assert_eq(r.v.flags, TCP_SYN | TCP_ACK);
	cr_assert_eq(r.v.seq, iss);
	cr_assert_eq(r.v.ack, PEER_ISS + 1);
	cr_assert_eq(r.v.window, 65535, "the window of a SYN is never scaled");
	cr_assert_eq(r.v.opts_len, 20);
	/* MSS 1460; SACK-permitted + timestamps (TSval ours, TSecr 777); NOP, window scale 1. */
	cr_assert_eq(r.o.present, TCPO_MSS | TCPO_WSCALE | TCPO_SACK_PERM | TCPO_TS);
	cr_assert_eq(r.o.mss, 1460);
	cr_assert_eq(r.o.wscale, 1, "64 KiB needs a shift of 1");
	cr_assert_eq(r.o.ts_ecr, 777);
	for (unsigned i = 0; i < 20; i++)
		if (i < 8 || i > 11)
			cr_assert_eq(r.v.opts[i], opts_exp[i], "option byte %u", i);
	expect_nothing();
}

Test(tcp, leaves_out_the_options_the_syn_did_not_offer)
{
	struct out r;

	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in(TCP_SYN, PEER_ISS, 0, 8192, NULL, 0);
	seg_out(&r);
	cr_assert_eq(r.o.present, TCPO_MSS, "only MSS when the SYN had no options");
}

Test(tcp, resets_a_syn_to_a_closed_port)
{
	seg_in(TCP_SYN, PEER_ISS, 0, 8192, NULL, 0);
	/* RFC 9293 3.10.7.1: no ACK in the SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. */
	expect_seg(TCP_RST | TCP_ACK, 0, PEER_ISS + 1, 0, 0);
	expect_nothing();
}

Test(tcp, resets_an_ack_to_a_closed_port_from_its_ack_number)
{
	seg_in(TCP_ACK, PEER_ISS, 4242, 8192, "x", 1);
	expect_seg(TCP_RST, 4242, 0, 0, 0);
}

Test(tcp, never_answers_a_rst_to_a_closed_port)
{
	seg_in(TCP_RST, PEER_ISS, 0, 0, NULL, 0);
	expect_nothing();
}

Test(tcp, resets_an_ack_to_a_listening_port)
{
	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in(TCP_ACK, PEER_ISS, 777, 8192, NULL, 0);
	expect_seg(TCP_RST, 777, 0, 0, 0);
}

Test(tcp, accepts_a_connection_after_the_three_way_handshake)
{
	struct tcb *t = accept_plain();

	cr_assert_eq(tcp_accept(lis, &t), -EAGAIN, "the accept queue is empty again");
	cr_assert_eq(tcp_sndspace(t), 65536);
}

/* A segment from another port of the peer's: another connection. */
static void seg_in_from(uint16_t sport, uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win,
			const struct tcp_opts *o)
{
	seg_in_port(sport, flags, seq, ack, win, o, NULL, 0);
}

/* A listener with backlog 1 whose SYN queue holds one half-open connection (from PEER_PORT). */
static void fill_syn_queue(void)
{
	cr_assert_eq(tcp_listen(&st, PORT, 1, NULL, NULL, &lis), 0);
	seg_in(TCP_SYN, PEER_ISS, 0, 8192, NULL, 0);
	txq_pop(&q);
}

/* A SYN from sport with every option; returns our cookie SYN-ACK. */
static void cookie_syn(uint16_t sport, uint32_t seq, struct out *r)
{
	struct tcp_opts o = {.present = TCPO_MSS | TCPO_WSCALE | TCPO_SACK_PERM | TCPO_TS,
			     .mss = 1460,
			     .wscale = 7,
			     .ts_val = 5000};

	seg_in_from(sport, TCP_SYN, seq, 0, 65535, &o);
	seg_out(r);
	cr_assert_eq(r->v.flags, TCP_SYN | TCP_ACK);
	cr_assert_eq(r->v.ack, seq + 1);
	cr_assert_eq(r->v.dport, sport);
}

Test(tcp, answers_syns_beyond_the_syn_queue_with_a_cookie_and_connects_on_its_ack)
{
	struct tcp_opts ao = {.present = TCPO_TS, .ts_val = 5001};
	struct out r;
	struct tcb *t;
	static char d[3000];

	fill_syn_queue();
	cookie_syn(PEER_PORT + 1, 5, &r);
	cr_assert_eq(tcp_get_stats(&st)->syn_queue_full, 1);
	cr_assert_eq(tcp_get_stats(&st)->syncookies_sent, 1);
	/* Every option of the SYN is answered; the TSval carries scale 7 and SACK-permitted. */
	cr_assert(r.o.present & TCPO_WSCALE);
	cr_assert(r.o.present & TCPO_SACK_PERM);
	cr_assert(r.o.present & TCPO_TS);
	cr_assert_eq(r.o.ts_ecr, 5000);
	cr_assert_eq(r.o.ts_val & 31, 7 | 16);
	cr_assert_eq(tcp_inuse(&st), 2, "nothing kept for the cookie");
	/* The ACK brings it back: a connection, ready to accept. */
	ao.ts_ecr = r.o.ts_val;
	seg_in_from(PEER_PORT + 1, TCP_ACK, 6, r.v.seq + 1, 100, &ao);
	expect_nothing();
	cr_assert_eq(tcp_get_stats(&st)->syncookies_ok, 1);
	cr_assert_eq(tcp_accept(lis, &t), 0);
	cr_assert_eq(tcp_state(t), TCPS_ESTABLISHED);
	/* It uses what the cookie held: MSS 1460 less the timestamps, the peer's scale 7 (a
	 * window of 100 is 12800 bytes), timestamps. */
	cr_assert_eq(tcp_send(t, now, d, sizeof(d)), (long) sizeof(d));
	seg_out(&r);
	cr_assert_eq(r.v.payload_len, 1448);
	cr_assert(r.o.present & TCPO_TS);
	cr_assert_eq(r.o.ts_ecr, 5001);
	seg_out(&r);
	cr_assert_eq(r.v.payload_len, 1448);
}

Test(tcp, rejects_a_forged_or_stale_cookie_with_a_reset)
{
	struct tcp_opts ao = {.present = TCPO_TS, .ts_val = 5001};
	struct out r;
	struct tcb *t;
	uint32_t cookie;

	fill_syn_queue();
	cookie_syn(PEER_PORT + 1, 5, &r);
	cookie = r.v.seq;
	ao.ts_ecr = r.o.ts_val;
	/* Forged: one off. */
	seg_in_from(PEER_PORT + 1, TCP_ACK, 6, cookie + 2, 100, &ao);
	seg_out(&r);
	cr_assert_eq(r.v.flags, TCP_RST);
	cr_assert_eq(r.v.seq, cookie + 2);
	cr_assert_eq(tcp_get_stats(&st)->syncookies_failed, 1);
	/* Wrong peer ISN: the MAC covers it. */
	seg_in_from(PEER_PORT + 1, TCP_ACK, 7, cookie + 1, 100, &ao);
	seg_out(&r);
	cr_assert_eq(r.v.flags, TCP_RST);
	cr_assert_eq(tcp_get_stats(&st)->syncookies_failed, 2);
	/* Stale: two counter periods (128 s) later the same ACK is refused, while a fresh
	 * cookie (for another port) is being handed out. */
	now += 130 * S;
	cookie_syn(PEER_PORT + 2, 9, &r);
	seg_in_from(PEER_PORT + 1, TCP_ACK, 6, cookie + 1, 100, &ao);
	seg_out(&r);
	cr_assert_eq(r.v.flags, TCP_RST);
	cr_assert_eq(tcp_get_stats(&st)->syncookies_failed, 3);
	cr_assert_eq(tcp_get_stats(&st)->syncookies_ok, 0);
	cr_assert_eq(tcp_accept(lis, &t), -EAGAIN);
}

Test(tcp, takes_a_cookie_from_the_previous_period_and_without_timestamps_no_options)
{
	struct out r;
	struct tcb *t;
	static char d[2000];

	fill_syn_queue();
	/* No options at all: the peer's MSS is 536 and neither scaling nor SACK is offered. */
	seg_in_from(PEER_PORT + 1, TCP_SYN, 5, 0, 65535, NULL);
	seg_out(&r);
	cr_assert_eq(r.v.flags, TCP_SYN | TCP_ACK);
	cr_assert_eq(r.o.present & (TCPO_WSCALE | TCPO_SACK_PERM | TCPO_TS), 0);
	now += 64 * S; /* the next counter period */
	seg_in_from(PEER_PORT + 1, TCP_ACK, 6, r.v.seq + 1, 1072, NULL);
	expect_nothing();
	cr_assert_eq(tcp_accept(lis, &t), 0);
	cr_assert_eq(tcp_send(t, now, d, sizeof(d)), (long) sizeof(d));
	seg_out(&r);
	cr_assert_eq(r.v.payload_len, 536);
	cr_assert_eq(r.o.present & TCPO_TS, 0);
	seg_out(&r);
	cr_assert_eq(r.v.payload_len, 536);
	expect_nothing(); /* the window, 1072 bytes unscaled, is full */
}

Test(tcp, reports_a_refused_connection_when_the_syn_meets_a_rst)
{
	struct tcb *t;
	struct out r;

	cr_assert_eq(tcp_connect(&st, now, PEER_IP, PEER_PORT, PORT, NULL, NULL, &t), 0);
	seg_out(&r);
	cr_assert_eq(r.v.flags, TCP_SYN);
	cr_assert_eq(r.o.present, TCPO_MSS | TCPO_WSCALE | TCPO_SACK_PERM | TCPO_TS);
	/* A RST whose ACK misses our SYN is ignored (RFC 5961 3.2)... */
	seg_in(TCP_RST | TCP_ACK, 0, r.v.seq + 7, 0, NULL, 0);
	cr_assert_eq(tcp_state(t), TCPS_SYN_SENT);
	/* ...and our SYN draws a RST for such an ACK without RST. */
	seg_in(TCP_ACK, 0, r.v.seq + 7, 0, NULL, 0);
	expect_seg(TCP_RST, r.v.seq + 7, 0, 0, 0);
	seg_in(TCP_RST | TCP_ACK, 0, r.v.seq + 1, 0, NULL, 0);
	cr_assert_eq(tcp_state(t), TCPS_CLOSED);
	cr_assert_eq(tcp_error(t), -ECONNREFUSED);
	cr_assert_eq(tcp_send(t, now, "x", 1), -ECONNREFUSED);
	tcp_close(t, now);
	cr_assert_eq(tcp_inuse(&st), 0);
}

Test(tcp, retransmits_the_syn_with_exponential_backoff_then_times_out)
{
	struct tcb *t;
	struct out r;
	uint64_t start = now, next;

	cr_assert_eq(tcp_connect(&st, now, PEER_IP, PEER_PORT, PORT, NULL, NULL, &t), 0);
	seg_out(&r);
	next = tcp_poll(&st, now);
	cr_assert_eq(next, start + 1 * S, "RFC 6298 2.1: the first RTO is 1 s");
	for (unsigned i = 0; i < 3; i++) {
		uint32_t seq = r.v.seq;

		now = next - 1;
		cr_assert_eq(tcp_poll(&st, now), next);
		expect_nothing();
		now = next;
		next = tcp_poll(&st, now);
		seg_out(&r);
		cr_assert_eq(r.v.flags, TCP_SYN);
		cr_assert_eq(r.v.seq, seq, "the same SYN again");
		cr_assert_eq(next - now, (2ull << i) * S, "the RTO doubles");
	}
	now = next;
	tcp_poll(&st, now);
	cr_assert_eq(tcp_state(t), TCPS_CLOSED);
	cr_assert_eq(tcp_error(t), -ETIMEDOUT);
	tcp_close(t, now);
}

/* ---- data ---- */

Test(tcp, delivers_in_order_data_and_delays_the_ack_of_a_single_segment)
{
	struct tcb *t = accept_plain();
	char buf[64];
	uint64_t next;

	seg_in(TCP_ACK | TCP_PSH, PEER_ISS + 1, iss + 1, 8192, "hello", 5);
	expect_nothing();
	next = tcp_poll(&st, now);
	cr_assert_eq(next, now + 40 * MS, "the delayed ACK timer");
	now = next;
	tcp_poll(&st, now);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 6, win_after(5), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), -EAGAIN);
}

Test(tcp, acknowledges_every_second_full_sized_segment_at_once)
{
	static char d[1460];

	accept_plain();
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, d, 1460);
	expect_nothing();
	seg_in(TCP_ACK, PEER_ISS + 1 + 1460, iss + 1, 8192, d, 1460);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1 + 2920, win_after(2920), 0);
}

Test(tcp, acknowledges_at_once_when_asked_for_quick_acks)
{
	struct tcb *t = accept_plain();

	tcp_setopt(t, TCP_OPT_QUICKACK, 1);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, "abc", 3);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 4, win_after(3), 0);
}

Test(tcp, reassembles_out_of_order_segments_with_immediate_duplicate_acks)
{
	struct tcb *t = accept_plain();
	char buf[64];

	seg_in(TCP_ACK, PEER_ISS + 1 + 3, iss + 1, 8192, "def", 3);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), -EAGAIN);
	seg_in(TCP_ACK, PEER_ISS + 1 + 6, iss + 1, 8192, "ghi", 3);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, "abc", 3);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 10, win_after(9), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 9);
	cr_assert_eq(memcmp(buf, "abcdefghi", 9), 0);
}

Test(tcp, retransmits_data_after_the_rto_with_backoff)
{
	struct tcb *t = accept_plain();
	uint64_t sent_at = now, next;

	cr_assert_eq(tcp_send(t, now, "0123456789", 10), 10);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 10);
	/* The handshake measured an RTT of 0: first the tail loss probe (RFC 8985 7.2: 2 SRTT
	 * plus the delayed-ACK allowance for a lone segment), then the RTO, its 200 ms floor. */
	next = tcp_poll(&st, now);
	cr_assert_eq(next, sent_at + 40 * MS + 2);
	now = next;
	next = tcp_poll(&st, now);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 10);
	cr_assert_eq(tcp_get_stats(&st)->tlp_probes, 1);
	cr_assert_eq(next, now + 200 * MS);
	now = next;
	next = tcp_poll(&st, now);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 10);
	cr_assert_eq(tcp_get_stats(&st)->rto_fired, 1);
	cr_assert_eq(next, now + 400 * MS);
	now = next;
	next = tcp_poll(&st, now);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 10);
	cr_assert_eq(next, now + 800 * MS);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 11, 8192, NULL, 0);
	cr_assert_eq(tcp_acked(t), 10);
	cr_assert_eq(tcp_poll(&st, now), UINT64_MAX, "no timer once everything is acked");
}

Test(tcp, holds_a_small_segment_behind_unacked_data_unless_nodelay)
{
	struct tcb *t = accept_plain();

	cr_assert_eq(tcp_send(t, now, "a", 1), 1);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 1);
	cr_assert_eq(tcp_send(t, now, "b", 1), 1);
	expect_nothing(); /* Nagle */
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 2, 8192, NULL, 0);
	expect_seg(TCP_ACK | TCP_PSH, iss + 2, PEER_ISS + 1, 65535, 1);
	tcp_setopt(t, TCP_OPT_NODELAY, 1);
	cr_assert_eq(tcp_send(t, now, "c", 1), 1);
	expect_seg(TCP_ACK | TCP_PSH, iss + 3, PEER_ISS + 1, 65535, 1);
}

Test(tcp, probes_a_zero_window_with_one_byte_on_the_persist_timer)
{
	struct tcb *t = accept_plain();
	uint64_t next;

	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 0, NULL, 0);
	cr_assert_eq(tcp_send(t, now, "xyz", 3), 3);
	expect_nothing();
	next = tcp_poll(&st, now);
	cr_assert_eq(next, now + 200 * MS);
	now = next;
	next = tcp_poll(&st, now);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 1);
	cr_assert_eq(tcp_get_stats(&st)->probes_sent, 1);
	/* Still closed: the next probe waits twice as long. */
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 0, NULL, 0);
	expect_nothing();
	/* The window opens: everything goes. */
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 100, NULL, 0);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 3);
	cr_assert_eq(tcp_state(t), TCPS_ESTABLISHED);
}

/* ---- RFC 5961 and RFC 7323 ---- */

Test(tcp, answers_an_in_window_rst_with_the_wrong_sequence_by_a_challenge_ack)
{
	struct tcb *t = accept_plain();

	seg_in(TCP_RST, PEER_ISS + 100, 0, 0, NULL, 0);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert_eq(tcp_state(t), TCPS_ESTABLISHED);
	seg_in(TCP_RST, PEER_ISS + 1 + 70000, 0, 0, NULL, 0);
	expect_nothing(); /* outside the window: silently dropped */
	seg_in(TCP_RST, PEER_ISS + 1, 0, 0, NULL, 0);
	expect_nothing();
	cr_assert_eq(tcp_state(t), TCPS_CLOSED);
	cr_assert_eq(tcp_error(t), -ECONNRESET);
	cr_assert_eq(tcp_recv(t, now, NULL, 0), -ECONNRESET);
	cr_assert_eq(tcp_send(t, now, "x", 1), -ECONNRESET);
}

Test(tcp, answers_a_syn_on_an_established_connection_by_a_challenge_ack)
{
	struct tcb *t = accept_plain();

	seg_in(TCP_SYN, PEER_ISS + 5, 0, 8192, NULL, 0);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert_eq(tcp_state(t), TCPS_ESTABLISHED);
	cr_assert_eq(tcp_get_stats(&st)->challenge_acks, 1);
}

Test(tcp, answers_an_ack_for_unsent_data_by_a_challenge_ack)
{
	struct tcb *t = accept_plain();

	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1000, 8192, "data", 4);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert_eq(tcp_rcvavail(t), 0, "the segment was dropped");
}

Test(tcp, drops_a_segment_with_an_old_timestamp_and_acks_it)
{
	struct tcp_opts so = {.present = TCPO_TS, .ts_val = 5000};
	struct tcp_opts syn = {.present = TCPO_TS | TCPO_MSS, .mss = 1460, .ts_val = 5000};
	struct out r;
	struct tcb *t;

	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in_opts(TCP_SYN, PEER_ISS, 0, 8192, &syn, NULL, 0);
	seg_out(&r);
	iss = r.v.seq;
	so.ts_ecr = r.o.ts_val;
	seg_in_opts(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, &so, NULL, 0);
	cr_assert_eq(tcp_accept(lis, &t), 0);
	so.ts_val = 6000;
	seg_in_opts(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, &so, "new", 3);
	cr_assert_eq(tcp_rcvavail(t), 3);
	/* RFC 7323 5.3: TSval 5999 < TS.Recent 6000: PAWS drops it and acknowledges. */
	so.ts_val = 5999;
	tcp_setopt(t, TCP_OPT_QUICKACK, 1);
	txq_pop(&q);
	seg_in_opts(TCP_ACK, PEER_ISS + 4, iss + 1, 8192, &so, "old", 3);
	seg_out(&r);
	cr_assert_eq(r.v.flags, TCP_ACK);
	cr_assert_eq(r.v.ack, PEER_ISS + 4);
	cr_assert_eq(r.o.ts_ecr, 6000, "TSecr echoes TS.Recent");
	cr_assert_eq(tcp_rcvavail(t), 3, "nothing of the old segment was taken");
	cr_assert_eq(tcp_get_stats(&st)->paws_drops, 1);
}

Test(tcp, never_sends_a_timestamp_older_than_one_it_sent_when_callers_times_step_back)
{
	struct tcp_opts so = {.present = TCPO_TS, .ts_val = 5000};
	struct tcp_opts syn = {.present = TCPO_TS | TCPO_MSS, .mss = 1460, .ts_val = 5000};
	struct out r;
	struct tcb *t;
	uint32_t first;

	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in_opts(TCP_SYN, PEER_ISS, 0, 8192, &syn, NULL, 0);
	seg_out(&r);
	iss = r.v.seq;
	so.ts_ecr = r.o.ts_val;
	seg_in_opts(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, &so, NULL, 0);
	cr_assert_eq(tcp_accept(lis, &t), 0);
	tcp_setopt(t, TCP_OPT_NODELAY, 1);
	tcp_setopt(t, TCP_OPT_QUICKACK, 1);
	/* The application's clock reads 1.5 ms ahead of the time its event loop stamped the
	 * frames it is still delivering (which seg_in uses). */
	cr_assert_eq(tcp_send(t, now + 3 * MS / 2, "abc", 3), 3);
	seg_out(&r);
	first = r.o.ts_val;
	so.ts_val = 5001;
	seg_in_opts(TCP_ACK, PEER_ISS + 1, iss + 4, 8192, &so, "x", 1);
	seg_out(&r);
	cr_assert_eq(r.v.ack, PEER_ISS + 2);
	/* RFC 7323 5.4: TSval never decreases, or the peer's PAWS test drops the segment. */
	cr_assert((int32_t) (r.o.ts_val - first) >= 0, "TSval %u after %u", r.o.ts_val, first);
	cr_assert_eq(tcp_get_stats(&st)->clock_back, 1);
}

/* ---- closing ---- */

Test(tcp, passive_close_goes_through_close_wait_and_last_ack)
{
	struct tcb *t = accept_plain();
	char buf[8];

	seg_in(TCP_ACK | TCP_FIN, PEER_ISS + 1, iss + 1, 8192, NULL, 0);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 2, 65534, 0); /* the FIN took one */
	cr_assert_eq(tcp_state(t), TCPS_CLOSE_WAIT);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 0, "end of stream");
	/* Half-close: we may still send. */
	cr_assert_eq(tcp_send(t, now, "bye", 3), 3);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 2, 65534, 3);
	cr_assert_eq(tcp_close(t, now), 0);
	expect_seg(TCP_ACK | TCP_FIN, iss + 4, PEER_ISS + 2, 65534, 0);
	seg_in(TCP_ACK, PEER_ISS + 2, iss + 5, 8192, NULL, 0);
	expect_nothing();
	cr_assert_eq(tcp_inuse(&st), 1, "only the listener is left");
}

Test(tcp, active_close_goes_through_fin_wait_and_time_wait)
{
	struct tcb *t = accept_plain();
	uint64_t next;

	cr_assert_eq(tcp_shutdown(t, now, 1), 0);
	expect_seg(TCP_ACK | TCP_FIN, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert_eq(tcp_state(t), TCPS_FIN_WAIT_1);
	cr_assert_eq(tcp_send(t, now, "x", 1), -EPIPE);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 2, 8192, NULL, 0);
	cr_assert_eq(tcp_state(t), TCPS_FIN_WAIT_2);
	/* Half-closed: the peer still sends, we still receive. */
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 2, 8192, "more", 4);
	cr_assert_eq(tcp_rcvavail(t), 4);
	seg_in(TCP_ACK | TCP_FIN, PEER_ISS + 5, iss + 2, 8192, NULL, 0);
	expect_seg(TCP_ACK, iss + 2, PEER_ISS + 6, win_after(5), 0);
	cr_assert_eq(tcp_state(t), TCPS_TIME_WAIT);
	/* A retransmitted FIN is acknowledged again and restarts the 2 MSL wait. */
	now += 30 * S;
	cr_assert_eq(tcp_poll(&st, now), now + 30 * S);
	seg_in(TCP_ACK | TCP_FIN, PEER_ISS + 5, iss + 2, 8192, NULL, 0);
	expect_seg(TCP_ACK, iss + 2, PEER_ISS + 6, win_after(5), 0);
	next = tcp_poll(&st, now);
	cr_assert_eq(next, now + 60 * S, "2 MSL");
	now = next;
	tcp_poll(&st, now);
	cr_assert_eq(tcp_state(t), TCPS_CLOSED);
	cr_assert_eq(tcp_error(t), 0);
}

Test(tcp, simultaneous_close_goes_through_closing)
{
	struct tcb *t = accept_plain();

	cr_assert_eq(tcp_shutdown(t, now, 1), 0);
	expect_seg(TCP_ACK | TCP_FIN, iss + 1, PEER_ISS + 1, 65535, 0);
	/* The peer's FIN crosses ours: it does not acknowledge our FIN. */
	seg_in(TCP_ACK | TCP_FIN, PEER_ISS + 1, iss + 1, 8192, NULL, 0);
	expect_seg(TCP_ACK, iss + 2, PEER_ISS + 2, 65534, 0);
	cr_assert_eq(tcp_state(t), TCPS_CLOSING);
	seg_in(TCP_ACK, PEER_ISS + 2, iss + 2, 8192, NULL, 0);
	cr_assert_eq(tcp_state(t), TCPS_TIME_WAIT);
}

Test(tcp, resets_the_peer_when_closed_with_unread_data)
{
	struct tcb *t = accept_plain();

	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, "unread", 6);
	cr_assert_eq(tcp_close(t, now), 0);
	expect_seg(TCP_RST | TCP_ACK, iss + 1, PEER_ISS + 7, 0, 0);
	cr_assert_eq(tcp_inuse(&st), 1);
}

Test(tcp, abort_sends_a_rst_and_frees_the_connection)
{
	struct tcb *t = accept_plain();

	tcp_abort(t, now);
	expect_seg(TCP_RST | TCP_ACK, iss + 1, PEER_ISS + 1, 0, 0);
	cr_assert_eq(tcp_inuse(&st), 1);
}

Test(tcp, sends_keepalive_probes_and_times_out_an_unanswering_peer)
{
	struct tcb *t = accept_plain();
	uint64_t next;

	tcp_setopt(t, TCP_OPT_KEEPALIVE, 1);
	next = tcp_poll(&st, now);
	cr_assert_eq(next, now + 7200 * S);
	for (unsigned i = 0; i < 9; i++) {
		now = next;
		next = tcp_poll(&st, now);
		/* RFC 9293 3.8.4: sequence SND.NXT - 1, so the peer must answer. */
		expect_seg(TCP_ACK, iss, PEER_ISS + 1, 65535, 0);
		cr_assert_eq(next, now + 75 * S);
	}
	now = next;
	tcp_poll(&st, now);
	expect_seg(TCP_RST | TCP_ACK, iss + 1, PEER_ISS + 1, 0, 0);
	cr_assert_eq(tcp_error(t), -ETIMEDOUT);
}

/* ---- events and the API ---- */

static unsigned events_seen;
static void on_event(void *arg, struct tcb *t, unsigned ev)
{
	events_seen |= ev;
}

Test(tcp, signals_connected_readable_acked_and_closed)
{
	struct tcb *t;
	struct out r;
	char buf[4];

	events_seen = 0;
	cr_assert_eq(tcp_connect(&st, now, PEER_IP, PEER_PORT, PORT, on_event, NULL, &t), 0);
	cr_assert_eq(tcp_send(t, now, "x", 1), -ENOTCONN);
	seg_out(&r);
	iss = r.v.seq;
	seg_in(TCP_SYN | TCP_ACK, PEER_ISS, iss + 1, 8192, NULL, 0);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert(events_seen & TCP_EV_CONNECTED);
	cr_assert(tcp_events(t) & TCP_EV_WRITABLE);
	cr_assert_eq(tcp_send(t, now, "ab", 2), 2);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 2);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 3, 8192, "z", 1);
	cr_assert(events_seen & TCP_EV_ACKED);
	cr_assert(events_seen & TCP_EV_READABLE);
	cr_assert_eq(tcp_acked(t), 2);
	cr_assert_eq(tcp_recv(t, now, buf, 4), 1);
	events_seen = 0;
	seg_in(TCP_RST, PEER_ISS + 2, 0, 0, NULL, 0);
	cr_assert(events_seen & TCP_EV_ERROR);
	tcp_close(t, now);
	cr_assert_eq(tcp_inuse(&st), 0);
}

static uint8_t direct[16];
static size_t direct_len;
static size_t take_some(void *arg, struct tcb *t, const uint8_t *d, size_t len)
{
	size_t n = len < 4 ? len : 4;

	memcpy(direct + direct_len, d, n);
	direct_len += n;
	return n;
}

Test(tcp, places_in_order_payload_through_the_receive_hook)
{
	struct tcb *t = accept_plain();
	char buf[16];

	direct_len = 0;
	tcp_set_rx_hook(t, take_some);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 8192, "abcdefgh", 8);
	cr_assert_eq(direct_len, 4);
	cr_assert_eq(memcmp(direct, "abcd", 4), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 4, "the rest went to the ring");
	cr_assert_eq(memcmp(buf, "efgh", 4), 0);
}

Test(tcp, picks_distinct_ephemeral_ports_in_the_configured_range)
{
	struct tcb *a, *b;
	uint32_t la, ra;
	uint16_t pa, pb, rp;

	cr_assert_eq(tcp_connect(&st, now, PEER_IP, 80, 0, NULL, NULL, &a), 0);
	cr_assert_eq(tcp_connect(&st, now, PEER_IP, 80, 0, NULL, NULL, &b), 0);
	tcp_endpoints(a, &la, &pa, &ra, &rp);
	tcp_endpoints(b, &la, &pb, &ra, &rp);
	cr_assert_geq(pa, 49152);
	cr_assert_geq(pb, 49152);
	cr_assert_neq(pa, pb);
}

Test(tcp, returns_enomem_when_the_pool_is_exhausted)
{
	struct tcb *t;
	int ret = 0;

	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(tcp_connect(&st, now, PEER_IP, 80, 0, NULL, NULL, &t), 0);
	ret = tcp_connect(&st, now, PEER_IP, 80, 0, NULL, NULL, &t);
	cr_assert_eq(ret, -ENOMEM);
}

Test(tcp, derives_isns_from_the_secret_and_the_clock)
{
	uint32_t a = tcp_isn(&st, 0, OUR_IP, 1, PEER_IP, 2);
	uint32_t b = tcp_isn(&st, 4000, OUR_IP, 1, PEER_IP, 2);
	uint32_t c = tcp_isn(&st, 0, OUR_IP, 1, PEER_IP, 3);

	cr_assert_eq(b, a + 1, "RFC 6528: M ticks every 4 us");
	cr_assert_neq(a, c, "another 4-tuple, another offset");
	st.cfg.secret[0] ^= 1;
	cr_assert_neq(tcp_isn(&st, 0, OUR_IP, 1, PEER_IP, 2), a, "another secret");
}

/* ---- SACK, simultaneous open, RFC 1337, ICMP, windows ---- */

/* Passive open with SACK-permitted (and nothing else): MSS 536 from the peer's default. */
static struct tcb *accept_sack(void)
{
	struct tcp_opts o = {.present = TCPO_SACK_PERM | TCPO_MSS, .mss = 1000};
	struct tcb *t;
	struct out r;

	cr_assert_eq(tcp_listen(&st, PORT, 4, NULL, NULL, &lis), 0);
	seg_in_opts(TCP_SYN, PEER_ISS, 0, 65535, &o, NULL, 0);
	seg_out(&r);
	iss = r.v.seq;
	cr_assert(r.o.present & TCPO_SACK_PERM);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 65535, NULL, 0);
	cr_assert_eq(tcp_accept(lis, &t), 0);
	return t;
}

Test(tcp, reports_out_of_order_data_in_sack_blocks_most_recent_first)
{
	struct out r;

	accept_sack();
	seg_in(TCP_ACK, PEER_ISS + 11, iss + 1, 8192, "bb", 2);
	seg_out(&r);
	cr_assert_eq(r.o.nsack, 1);
	cr_assert_eq(r.o.sack[0].left, PEER_ISS + 11);
	cr_assert_eq(r.o.sack[0].right, PEER_ISS + 13);
	seg_in(TCP_ACK, PEER_ISS + 21, iss + 1, 8192, "cc", 2);
	seg_out(&r);
	cr_assert_eq(r.o.nsack, 2);
	cr_assert_eq(r.o.sack[0].left, PEER_ISS + 21, "the newest block first (RFC 2018 4)");
	cr_assert_eq(r.o.sack[1].left, PEER_ISS + 11);
}

Test(tcp, retransmits_only_the_holes_the_peer_reports_with_sack)
{
	struct tcb *t = accept_sack();
	static char d[8000];
	struct tcp_opts so = {.present = TCPO_SACK, .nsack = 1};
	struct out r;

	for (unsigned i = 0; i < sizeof(d); i++)
		d[i] = (char) i;
	tcp_setopt(t, TCP_OPT_NODELAY, 1);
	/* Grow cwnd past the initial window first. */
	cr_assert_eq(tcp_send(t, now, d, 4000), 4000);
	for (unsigned i = 0; i < 4; i++)
		seg_out(&r);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1 + 4000, 65535, NULL, 0);
	cr_assert_eq(tcp_send(t, now, d, 8000), 8000);
	for (unsigned i = 0; i < 5; i++)
		seg_out(&r); /* cwnd 5000 (slow start, RFC 5681 3.1): 5 segments from iss + 4001 */
	expect_nothing();
	/* The first of them is lost: three duplicate ACKs SACK the rest, growing. The first
	 * two each let one new segment out (limited transmit, RFC 3042); the third makes the
	 * hole lost (RFC 6675 IsLost: more than 2 SMSS SACKed above it). */
	for (unsigned k = 1; k <= 3; k++) {
		so.sack[0].left = iss + 5001;
		so.sack[0].right = iss + 5001 + 1000 * k;
		seg_in_opts(TCP_ACK, PEER_ISS + 1, iss + 4001, 65535, &so, NULL, 0);
		if (k < 3) {
			seg_out(&r);
			cr_assert_eq(r.v.seq, iss + 9001 + 1000 * (k - 1), "limited transmit");
		}
	}
	cr_assert_eq(tcp_get_stats(&st)->limited_xmit, 2);
	seg_out(&r);
	cr_assert_eq(r.v.seq, iss + 4001, "the hole, retransmitted");
	cr_assert_eq(r.v.payload_len, 1000);
	cr_assert_eq(tcp_get_stats(&st)->sack_recoveries, 1);
	/* Nothing SACKed is sent again. */
	while (txq_peek(&q, &(uint32_t){0})) {
		seg_out(&r);
		cr_assert(SEQ_GEQ(r.v.seq, iss + 11001) || r.v.payload_len == 0,
			  "no SACKed byte resent (seq %u)", r.v.seq - iss);
	}
}

Test(tcp, opens_simultaneously_through_syn_received)
{
	struct tcb *t;
	struct out r;

	cr_assert_eq(tcp_connect(&st, now, PEER_IP, PEER_PORT, PORT, NULL, NULL, &t), 0);
	seg_out(&r);
	iss = r.v.seq;
	/* The peer's own SYN crosses ours (RFC 9293 figure 8). */
	seg_in(TCP_SYN, PEER_ISS, 0, 8192, NULL, 0);
	expect_seg(TCP_SYN | TCP_ACK, iss, PEER_ISS + 1, 65535, 0);
	cr_assert_eq(tcp_state(t), TCPS_SYN_RCVD);
	seg_in(TCP_SYN | TCP_ACK, PEER_ISS, iss + 1, 8192, NULL, 0);
	cr_assert_eq(tcp_state(t), TCPS_ESTABLISHED);
}

Test(tcp, keeps_time_wait_when_a_rst_arrives)
{
	struct tcb *t = accept_plain();

	cr_assert_eq(tcp_shutdown(t, now, 1), 0);
	txq_pop(&q);
	seg_in(TCP_ACK | TCP_FIN, PEER_ISS + 1, iss + 2, 8192, NULL, 0);
	txq_pop(&q);
	cr_assert_eq(tcp_state(t), TCPS_TIME_WAIT);
	seg_in(TCP_RST, PEER_ISS + 2, 0, 0, NULL, 0);
	cr_assert_eq(tcp_state(t), TCPS_TIME_WAIT, "RFC 1337");
}

static int icmp_in(uint8_t code, const uint8_t *quoted_tcp)
{
	uint8_t f[128], m[64], q8[28];
	struct ip4_hdr qh = {.src = OUR_IP, .dst = PEER_IP, .ttl = 64, .proto = IP4_PROTO_TCP};
	struct ip4_hdr ih = {.src = PEER_IP, .dst = OUR_IP, .ttl = 64, .proto = IP4_PROTO_ICMP};
	int n;

	ip4_emit(q8, 20, &qh, 20);
	memcpy(q8 + 20, quoted_tcp, 8);
	n = icmp_emit_error(m, sizeof(m), ICMP_DEST_UNREACH, code, 0, q8, 28);
	cr_assert_gt(n, 0);
	eth_emit(f, 14, our_mac, peer_mac, ETH_P_IPV4);
	ip4_emit(f + 14, 20, &ih, (size_t) n);
	memcpy(f + 34, m, (size_t) n);
	return iface_input(&ifc, now, f, 34 + (size_t) n, 0);
}

Test(tcp, fails_a_connect_on_an_icmp_port_unreachable_quoting_its_syn)
{
	struct tcb *t;
	struct out r;
	uint8_t hdr[8];

	cr_assert_eq(tcp_connect(&st, now, PEER_IP, PEER_PORT, PORT, NULL, NULL, &t), 0);
	seg_out(&r);
	st_be16(hdr, PORT);
	st_be16(hdr + 2, PEER_PORT);
	st_be32(hdr + 4, r.v.seq + 1000); /* not in flight: ignored (RFC 5927) */
	icmp_in(ICMP_PORT_UNREACH, hdr);
	cr_assert_eq(tcp_state(t), TCPS_SYN_SENT);
	st_be32(hdr + 4, r.v.seq);
	icmp_in(ICMP_PORT_UNREACH, hdr);
	cr_assert_eq(tcp_state(t), TCPS_CLOSED);
	cr_assert_eq(tcp_error(t), -ECONNREFUSED);
}

Test(tcp, ignores_a_smaller_window_from_an_older_copy_of_the_same_ack)
{
	struct tcb *t = accept_plain();
	static char d[2000];

	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 100, NULL, 0);
	cr_assert_eq(tcp_send(t, now, d, 50), 50);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 50);
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 51, 4000, NULL, 0);
	/* A reordered copy with the same SEQ and ACK and a smaller window. */
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 51, 100, NULL, 0);
	cr_assert_eq(tcp_send(t, now, d, 2000), 2000);
	expect_seg(TCP_ACK, iss + 51, PEER_ISS + 1, 65535, 536);
}

Test(tcp, sends_into_a_window_too_small_for_a_segment_after_the_override_timeout)
{
	struct tcb *t = accept_plain();
	static char d[1000];
	uint64_t next;

	seg_in(TCP_ACK, PEER_ISS + 1, iss + 1, 2000, NULL, 0);
	cr_assert_eq(tcp_send(t, now, d, 1000), 1000);
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 536);
	/* The rest (464 bytes) waits behind the unacknowledged segment (Nagle)... */
	expect_nothing();
	/* ...then the window shrinks to 100 with nothing in flight: SWS avoidance waits. */
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 537, 100, NULL, 0);
	expect_nothing();
	next = tcp_poll(&st, now);
	now = next;
	tcp_poll(&st, now);
	expect_seg(TCP_ACK | TCP_PSH, iss + 537, PEER_ISS + 1, 65535, 100);
}

Test(tcp, retries_output_that_found_no_device_buffer_on_the_rto)
{
	struct tcb *t = accept_plain();
	struct iface_txbuf b;
	uint64_t next;

	/* Fill the device queue. */
	while (txq_ops.tx_alloc(&q, &b) == 0) {
		b.len = 60;
		txq_ops.tx_post(&q, &b);
	}
	cr_assert_eq(tcp_send(t, now, "late", 4), 4, "taken into the ring");
	while (txq_peek(&q, &(uint32_t){0}))
		txq_pop(&q);
	next = tcp_poll(&st, now);
	cr_assert_neq(next, UINT64_MAX, "a timer is armed to try again");
	now = next;
	tcp_poll(&st, now);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 4);
}

/* ---- congestion control, through the internal hooks ---- */

/* Feed one window of ACKs per RTT for `rtts` round trips starting at *at. */
static void ack_rounds(struct tcb *t, uint64_t *at, unsigned rtts)
{
	for (unsigned i = 0; i < rtts; i++) {
		uint32_t w = t->cwnd;

		for (uint32_t a = 0; a < w; a += t->mss)
			tcp_cc_ack(&st, t, t->mss, *at);
		*at += t->srtt;
	}
}

Test(tcp, cubic_reduces_by_beta_and_regrows_to_wmax_at_k)
{
	struct tcb *t = accept_plain();
	uint64_t at = now;
	uint32_t mss = t->mss;

	st.cfg.cc = TCP_CC_CUBIC;
	t->srtt = 100 * MS;
	t->cwnd = 100 * mss;
	t->snd_max = t->snd_una + 100 * mss; /* a full window in flight */
	tcp_cc_loss(&st, t, at);
	cr_assert_eq(t->ssthresh, 70 * mss, "RFC 9438 4.6: beta 0.7");
	t->cwnd = t->ssthresh;
	/* K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = 4.22 s: about 42 RTTs. */
	ack_rounds(t, &at, 20);
	cr_assert_lt(t->cwnd, 100 * mss, "still below W_max halfway to K");
	cr_assert_gt(t->cwnd, 85 * mss, "concave: most of the way back after half of K");
	ack_rounds(t, &at, 22);
	cr_assert_geq(t->cwnd, 97 * mss, "back at W_max around K (cwnd %u)", t->cwnd / mss);
	cr_assert_leq(t->cwnd, 103 * mss, "and not far beyond it (cwnd %u)", t->cwnd / mss);
}

Test(tcp, newreno_halves_the_flight_and_grows_one_segment_per_rtt)
{
	struct tcb *t = accept_plain();
	uint64_t at = now;
	uint32_t mss = t->mss;

	st.cfg.cc = TCP_CC_NEWRENO;
	t->srtt = 100 * MS;
	t->cwnd = 40 * mss;
	t->snd_max = t->snd_una + 40 * mss;
	tcp_cc_loss(&st, t, at);
	cr_assert_eq(t->ssthresh, 20 * mss, "RFC 5681 eq. 4");
	t->cwnd = t->ssthresh;
	ack_rounds(t, &at, 10);
	cr_assert_eq(t->cwnd, 30 * mss, "one SMSS per RTT in congestion avoidance");
}

Test(tcp, collapses_the_window_to_one_segment_on_a_timeout)
{
	struct tcb *t = accept_plain();

	t->cwnd = 40 * t->mss;
	t->snd_max = t->snd_una + 40 * t->mss;
	t->rxt_shift = 1;
	tcp_cc_rto(&st, t, now);
	cr_assert_eq(t->cwnd, t->mss, "RFC 5681 3.1: the loss window");
	cr_assert_eq(t->ssthresh, 28 * t->mss, "CUBIC: beta times cwnd");
}

/* ---- per-connection counters ---- */

Test(tcp, counts_a_connections_segments_and_retransmissions_where_its_owner_asks)
{
	struct tcb *t = accept_plain();
	struct tcp_conn_stats cs;

	/* The handshake counted in the TCB: the SYN-ACK out, the ACK in (the SYN reached the
	 * listener). Moving the counters takes them along. */
	memset(&cs, 0xff, sizeof(cs));
	tcp_set_stats(t, &cs);
	cr_expect_eq(cs.segs_out, 1);
	cr_expect_eq(cs.segs_in, 1);
	cr_expect_eq(cs.rexmt_segs, 0);
	cr_assert_eq(tcp_send(t, now, "0123456789", 10), 10);
	expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 10);
	/* Two retransmissions: the tail loss probe, then the RTO's (both the tail, with PSH). */
	for (int i = 0; i < 2; i++) {
		now = tcp_poll(&st, now); /* when the timer is due */
		tcp_poll(&st, now);
		expect_seg(TCP_ACK | TCP_PSH, iss + 1, PEER_ISS + 1, 65535, 10);
	}
	seg_in(TCP_ACK, PEER_ISS + 1, iss + 11, 8192, NULL, 0);
	cr_expect_eq(cs.segs_out, 4);
	cr_expect_eq(cs.segs_in, 2);
	cr_expect_eq(cs.rexmt_segs, 2);
	cr_expect_eq(cs.rexmt_bytes, 20);

	/* Given back, the TCB counts on from there in its own. */
	tcp_set_stats(t, NULL);
	seg_in(TCP_ACK | TCP_PSH, PEER_ISS + 1, iss + 11, 8192, "ab", 2);
	cr_expect_eq(t->cs_own.segs_in, 3);
	cr_expect_eq(cs.segs_in, 2, "no longer counted in the owner's copy");
}

/* ---- kept frames (tcp_hold.c) ---- */

static uint8_t kept_mem[TCP_HELD_MAX][2048]; /* frames that outlive the input call */
static unsigned unheld[64], nunheld;

static void on_unhold(void *ctx, uint32_t frame)
{
	(void) ctx;
	cr_assert_lt(nunheld, 64);
	unheld[nunheld++] = frame;
}

/* A data segment from the peer in frame id (TCP_NO_FRAME: one the stack may not keep); true
 * when the stack kept it. */
static bool seg_in_frame(uint32_t id, uint32_t seq, const void *data, size_t len)
{
	static uint8_t scratch[2048];
	uint8_t *f = id == TCP_NO_FRAME ? scratch : kept_mem[id];
	struct tcp_hdr h = {.sport = PEER_PORT,
			    .dport = PORT,
			    .seq = seq,
			    .ack = iss + 1,
			    .flags = TCP_ACK,
			    .window = 8192};
	struct ip4_hdr ih = {.src = PEER_IP, .dst = OUR_IP, .ttl = 64, .proto = IP4_PROTO_TCP};
	int n;

	eth_emit(f, 14, our_mac, peer_mac, ETH_P_IPV4);
	n = tcp_emit(f + 34, 2048 - 34, &h, NULL, data, len, PEER_IP, OUR_IP, 0);
	cr_assert_gt(n, 0);
	ip4_emit(f + 14, 20, &ih, (size_t) n);
	tcp_hold_offer(&st, id);
	cr_assert_eq(iface_input(&ifc, now, f, 34 + (size_t) n, 0), 0);
	return tcp_hold_taken(&st);
}

static struct tcb *accept_keeping(void)
{
	struct tcb *t = accept_plain();

	nunheld = 0;
	cr_assert_eq(tcp_set_unhold(&st, on_unhold, NULL), 0);
	tcp_setopt(t, TCP_OPT_QUICKACK, 1); /* every segment answered: its window can be seen */
	return t;
}

Test(tcp, keeps_in_order_payload_in_its_frame_and_gives_the_frame_back_once_read)
{
	struct tcb *t = accept_keeping();
	char buf[16];

	cr_assert(seg_in_frame(3, PEER_ISS + 1, "abcdefgh", 8));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 9, win_after(8), 0);
	cr_assert_eq(tcp_rcvavail(t), 8);
	cr_assert(tcp_events(t) & TCP_EV_READABLE);
	cr_assert_eq(tcp_recv(t, now, buf, 3), 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	cr_assert_eq(nunheld, 0, "the frame still holds unread bytes");
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "defgh", 5), 0);
	cr_assert_eq(nunheld, 1);
	cr_assert_eq(unheld[0], 3);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), -EAGAIN);
}

Test(tcp, puts_what_follows_kept_frames_in_its_ring_and_reads_both_in_order)
{
	struct tcb *t = accept_keeping();
	char want[64], buf[64];
	unsigned kept = 0;
	uint32_t seq = PEER_ISS + 1;

	for (unsigned i = 0; i < sizeof(want); i++)
		want[i] = (char) ('A' + i % 26);
	/* Four bytes a segment: more frames than a connection keeps, then one not on offer,
	 * then offered ones again (the ring is not empty: not kept). */
	for (unsigned i = 0; i < 16; i++, seq += 4) {
		uint32_t id = i == 10 ? TCP_NO_FRAME : i;

		kept += seg_in_frame(id, seq, want + 4 * i, 4);
		expect_seg(TCP_ACK, iss + 1, seq + 4, win_after(4 * (i + 1)), 0);
	}
	cr_assert_eq(kept, TCP_HOLD_MAX, "as many as a connection keeps, then the ring");
	cr_assert_eq(tcp_rcvavail(t), 64);
	cr_assert_eq(tcp_recv(t, now, buf, 10), 10);
	cr_assert_eq(tcp_recv(t, now, buf + 10, sizeof(buf) - 10), 54);
	cr_assert_eq(memcmp(buf, want, sizeof(want)), 0, "every byte once and in order");
	cr_assert_eq(nunheld, TCP_HOLD_MAX);
	for (unsigned i = 0; i < nunheld; i++)
		cr_assert_eq(unheld[i], i, "frames given back oldest first");
}

Test(tcp, keeps_no_frame_while_data_waits_out_of_order)
{
	struct tcb *t = accept_keeping();
	char buf[16];

	cr_assert_not(seg_in_frame(0, PEER_ISS + 1 + 3, "def", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 1, 65535, 0);
	cr_assert_not(seg_in_frame(1, PEER_ISS + 1, "abc", 3), "it fills a hole: the ring");
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 7, win_after(6), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 6);
	cr_assert_eq(memcmp(buf, "abcdef", 6), 0);
	cr_assert_eq(nunheld, 0);
}

Test(tcp, copies_kept_bytes_ahead_of_its_ring_when_trimmed)
{
	struct tcb *t = accept_keeping();
	char buf[16];

	cr_assert(seg_in_frame(0, PEER_ISS + 1, "abc", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 4, win_after(3), 0);
	cr_assert(seg_in_frame(1, PEER_ISS + 4, "def", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 7, win_after(6), 0);
	cr_assert_not(seg_in_frame(TCP_NO_FRAME, PEER_ISS + 7, "ghi", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 10, win_after(9), 0);
	cr_assert_eq(tcp_hold_trim(&st, now), now, "kept at now: not before it");
	cr_assert_eq(nunheld, 0);
	cr_assert_eq(tcp_hold_trim(&st, now + 1), UINT64_MAX, "nothing kept any more");
	cr_assert_eq(nunheld, 2);
	memset(kept_mem, 0, sizeof(kept_mem)); /* the device reuses the buffers */
	cr_assert_eq(tcp_rcvavail(t), 9);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 9);
	cr_assert_eq(memcmp(buf, "abcdefghi", 9), 0);
}

Test(tcp, gives_kept_frames_back_when_reads_are_shut_down_or_the_connection_goes)
{
	struct tcb *t = accept_keeping();
	char buf[16];
	uint32_t len;

	cr_assert(seg_in_frame(0, PEER_ISS + 1, "abc", 3));
	cr_assert(seg_in_frame(1, PEER_ISS + 4, "def", 3));
	cr_assert_eq(tcp_shutdown(t, now, 0), 0);
	cr_assert_eq(nunheld, 2);
	cr_assert_eq(tcp_rcvavail(t), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), -EAGAIN);
	tcp_abort(t, now);
	while (txq_peek(&q, &len))
		txq_pop(&q);
	/* A second connection: its kept frame goes back when it is reset. */
	cr_assert_eq(tcp_close(lis, now), 0);
	t = accept_keeping();
	cr_assert(seg_in_frame(2, PEER_ISS + 1, "ghi", 3));
	tcp_abort(t, now);
	cr_assert_eq(nunheld, 1);
	cr_assert_eq(unheld[0], 2);
}

Test(tcp, trims_kept_bytes_into_place_before_data_held_out_of_order)
{
	struct tcb *t = accept_keeping();
	char buf[16];

	cr_assert(seg_in_frame(0, PEER_ISS + 1, "abc", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 4, win_after(3), 0);
	cr_assert_not(seg_in_frame(1, PEER_ISS + 7, "ghi", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 4, win_after(3), 0);
	tcp_hold_trim(&st, UINT64_MAX);
	memset(kept_mem, 0, sizeof(kept_mem));
	cr_assert_eq(nunheld, 1);
	cr_assert_not(seg_in_frame(2, PEER_ISS + 4, "def", 3));
	expect_seg(TCP_ACK, iss + 1, PEER_ISS + 10, win_after(9), 0);
	cr_assert_eq(tcp_recv(t, now, buf, sizeof(buf)), 9);
	cr_assert_eq(memcmp(buf, "abcdefghi", 9), 0);
}
