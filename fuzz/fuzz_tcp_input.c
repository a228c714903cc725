/*
 * The TCP input path against a connection in each state, with application calls and timers
 * interleaved.
 *
 * Input: byte 0 picks the starting state (LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1,
 * FIN_WAIT_2, CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT) and, in bit 4, whether the handshake
 * negotiated timestamps, window scaling and SACK. Then records of [control][length][bytes]:
 * control bits 0-1 select an action (segment, application call, time step, poll); for a
 * segment, bit 2 makes its sequence number relative to what we expect next and bit 3 its
 * acknowledgement relative to what we sent, so mutations reach past the window checks; the
 * bytes are a TCP header (ports forced to the connection's, checksum repaired) and payload.
 * Control bit 4 of a segment offers its frame to be kept (tcp_hold.c), as the netport does: a
 * kept frame stays in one of TCP_HELD_MAX buffers until the stack gives it back, and a buffer
 * given back is poisoned for ASan, so a read of a frame after its release is a report. A poll
 * first takes every kept frame back (tcp_hold_trim), as the netport does before it polls.
 * Oracle: no sanitizer report, the TCB invariants below after every step, every segment the
 * stack sends parses back with a valid checksum, and no frame is still kept after a full trim.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stack/iface/iface.h"
#include "stack/iface/txq.h"
#include "stack/tcp/tcp.h"
#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(a, n)   ((void) (a), (void) (n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void) (a), (void) (n))
#endif

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

#define IP(a, b, c, d) ((uint32_t) wire_be32((uint32_t) (a) << 24 | (b) << 16 | (c) << 8 | (d)))
#define OUR_IP         IP(198, 18, 0, 1)
#define PEER_IP        IP(198, 18, 0, 2)
#define PORT           8080
#define PEER_PORT      40000
#define PEER_ISS       1000000u

static const uint8_t our_mac[6] = {2, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};

static struct iface ifc;
static struct txq q;
static struct tcp_stack st;
static uint64_t now;
static struct tcb *lis, *conn;
static uint32_t peer_nxt; /* the peer's next sequence number */
static uint32_t our_iss;
static bool opts_on;
static uint8_t held_buf[TCP_HELD_MAX][1600]; /* frames the stack may keep */
static uint32_t held_mask;

static void unhold(void *ctx, uint32_t id)
{
	(void) ctx;
	check(id < TCP_HELD_MAX && (held_mask & (1u << id)));
	held_mask &= ~(1u << id);
	ASAN_POISON_MEMORY_REGION(held_buf[id], sizeof(held_buf[id]));
}

static void feed(uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win, const void *data,
		 size_t len)
{
	uint8_t f[1600];
	struct tcp_opts o = {.present = TCPO_MSS | TCPO_WSCALE | TCPO_SACK_PERM | TCPO_TS,
			     .mss = 1460,
			     .wscale = 2,
			     .ts_val = (uint32_t) (now / 1000000)};
	struct tcp_hdr h = {.sport = PEER_PORT,
			    .dport = PORT,
			    .seq = seq,
			    .ack = ack,
			    .flags = flags,
			    .window = win};
	struct ip4_hdr ih = {.src = PEER_IP, .dst = OUR_IP, .ttl = 64, .proto = IP4_PROTO_TCP};
	int n;

	if (!(flags & TCP_SYN))
		o.present &= TCPO_TS;
	eth_emit(f, 14, our_mac, peer_mac, ETH_P_IPV4);
	n = tcp_emit(f + 34, sizeof(f) - 34, &h, opts_on ? &o : NULL, data, len, PEER_IP, OUR_IP,
		     0);
	check(n > 0);
	ip4_emit(f + 14, 20, &ih, (size_t) n);
	iface_input(&ifc, now, f, 34 + (size_t) n, 0);
}

/* Every segment we sent must parse back cleanly; remember our ISS from the first SYN. */
static void drain(void)
{
	const uint8_t *f;
	uint32_t len;

	while ((f = txq_peek(&q, &len))) {
		struct ip4_view ip;
		struct tcp_view v;
		struct tcp_opts o;

		if (ld_be16(f + 12) == ETH_P_IPV4) {
			check(ip4_parse(f + 14, len - 14, 0, &ip) == 0);
			check(ip.proto == IP4_PROTO_TCP);
			check(tcp_parse(ip.payload, ip.payload_len, ip.src, ip.dst, 0, &v) == 0);
			check(tcp_opts_parse(v.opts, v.opts_len, &o) == 0);
			if ((v.flags & TCP_SYN) && !our_iss)
				our_iss = v.seq;
		}
		txq_pop(&q);
	}
}

static void invariants(void)
{
	for (unsigned i = 0; i < st.ntcb; i++) {
		const struct tcb *t = tcp_tcb(&st, (int32_t) i);

		if (t->state == TCPS_CLOSED || t->state == TCPS_LISTEN)
			continue;
		check(t->sbuf_len <= t->sbuf_size && t->sbuf_head < t->sbuf_size);
		check(t->rbuf_len <= t->rbuf_size && t->rbuf_head < t->rbuf_size);
		check(SEQ_LEQ(t->snd_una, t->snd_max));
		check(SEQ_LEQ(t->snd_nxt, t->snd_max));
		check(SEQ_LEQ(t->snd_una, t->snd_nxt) || (t->flags & TF_PERSIST));
		check(t->nooo <= st.cfg.ooo_max);
		for (unsigned k = 0; k < t->nooo; k++) {
			check(SEQ_GT(t->ooo[k].left, t->rcv_nxt));
			check(SEQ_LT(t->ooo[k].left, t->ooo[k].right));
			check(t->ooo[k].right - t->rcv_nxt <= t->rbuf_size - t->rbuf_len);
		}
	}
	check(st.inuse <= st.ntcb);
}

static void establish_passive(void)
{
	feed(TCP_SYN, PEER_ISS, 0, 65535, NULL, 0);
	drain();
	feed(TCP_ACK, PEER_ISS + 1, our_iss + 1, 65535, NULL, 0);
	drain();
	peer_nxt = PEER_ISS + 1;
	if (tcp_accept(lis, &conn) < 0)
		conn = NULL;
}

static void start(unsigned state)
{
	struct tcp_config c = {.max_socks = 4, .sndbuf = 4096, .rcvbuf = 4096, .ooo_max = 4};
	struct iface_config ic = {.ip = OUR_IP, .prefix_len = 24};
	struct iface_hooks h = {.tcp_input = tcp_input, .icmp_error = tcp_icmp_error, .ctx = &st};
	uint8_t f[60];

	memcpy(ic.mac, our_mac, 6);
	txq_init(&q, 256, 1600);
	iface_init(&ifc, &ic, txq_dev(&q), &h);
	tcp_init(&st, &c, &ifc);
	tcp_set_unhold(&st, unhold, NULL);
	held_mask = 0;
	now = 10 * IFACE_NS_PER_S;
	eth_emit(f, 14, eth_broadcast, peer_mac, ETH_P_ARP);
	arp_emit(f + 14, ARP_LEN, ARP_OP_REQUEST, peer_mac, PEER_IP, NULL, OUR_IP);
	memset(f + 42, 0, 18);
	iface_input(&ifc, now, f, 60, 0);
	drain();
	lis = conn = NULL;
	our_iss = 0;
	peer_nxt = PEER_ISS;
	if (state == 1) {
		tcp_connect(&st, now, PEER_IP, PEER_PORT, PORT, NULL, NULL, &conn);
		drain();
		return;
	}
	tcp_listen(&st, PORT, 2, NULL, NULL, &lis);
	if (state == 0)
		return;
	if (state == 2) {
		feed(TCP_SYN, PEER_ISS, 0, 65535, NULL, 0);
		drain();
		peer_nxt = PEER_ISS + 1;
		return;
	}
	establish_passive();
	if (!conn)
		return;
	switch (state) {
	case 4: /* FIN_WAIT_1 */
		tcp_shutdown(conn, now, 1);
		break;
	case 5: /* FIN_WAIT_2 */
		tcp_shutdown(conn, now, 1);
		feed(TCP_ACK, peer_nxt, our_iss + 2, 65535, NULL, 0);
		break;
	case 6: /* CLOSE_WAIT */
		feed(TCP_ACK | TCP_FIN, peer_nxt++, our_iss + 1, 65535, NULL, 0);
		break;
	case 7: /* LAST_ACK */
		feed(TCP_ACK | TCP_FIN, peer_nxt++, our_iss + 1, 65535, NULL, 0);
		tcp_shutdown(conn, now, 1);
		break;
	case 8: /* CLOSING */
		tcp_shutdown(conn, now, 1);
		feed(TCP_ACK | TCP_FIN, peer_nxt++, our_iss + 1, 65535, NULL, 0);
		break;
	case 9: /* TIME_WAIT */
		tcp_shutdown(conn, now, 1);
		feed(TCP_ACK, peer_nxt, our_iss + 2, 65535, NULL, 0);
		feed(TCP_ACK | TCP_FIN, peer_nxt++, our_iss + 2, 65535, NULL, 0);
		break;
	}
	drain();
}

static void stop(void)
{
	tcp_fini(&st);
	iface_fini(&ifc);
	txq_fini(&q);
}

static void segment(uint8_t ctl, const uint8_t *d, size_t len)
{
	uint8_t f[1600], *l4 = f + 34;
	struct ip4_hdr ih = {.src = PEER_IP, .dst = OUR_IP, .ttl = 64, .proto = IP4_PROTO_TCP};
	struct tcb *t = conn;
	size_t n = len < TCP_HLEN ? TCP_HLEN : len;

	if (n > sizeof(f) - 34)
		n = sizeof(f) - 34;
	memset(l4, 0, TCP_HLEN);
	memcpy(l4, d, len < n ? len : n);
	st_be16(l4, PEER_PORT);
	st_be16(l4 + 2, PORT);
	if (t && t->state != TCPS_CLOSED) {
		if (ctl & 4)
			st_be32(l4 + 4, t->rcv_nxt + (uint32_t) (int16_t) ld_be16(l4 + 4));
		if (ctl & 8)
			st_be32(l4 + 8, t->snd_una + (uint32_t) (int16_t) ld_be16(l4 + 8));
	}
	st_raw16(l4 + 16, 0);
	st_raw16(l4 + 16,
		 csum_fold(csum_acc(csum_pseudo4(PEER_IP, OUR_IP, IP4_PROTO_TCP, (uint16_t) n), l4,
				    n)));
	eth_emit(f, 14, our_mac, peer_mac, ETH_P_IPV4);
	ip4_emit(f + 14, 20, &ih, n);
	if ((ctl & 16) && held_mask != (1u << TCP_HELD_MAX) - 1) {
		/* Offered to be kept: the frame lives in a buffer of its own until given back. */
		uint32_t id = (uint32_t) __builtin_ctz(~held_mask);

		ASAN_UNPOISON_MEMORY_REGION(held_buf[id], sizeof(held_buf[id]));
		memcpy(held_buf[id], f, 34 + n);
		tcp_hold_offer(&st, id);
		iface_input(&ifc, now, held_buf[id], 34 + n, 0);
		if (tcp_hold_taken(&st))
			held_mask |= 1u << id;
		else
			ASAN_POISON_MEMORY_REGION(held_buf[id], sizeof(held_buf[id]));
		tcp_hold_offer(&st, TCP_NO_FRAME);
		return;
	}
	iface_input(&ifc, now, f, 34 + n, 0);
}

static void app(const uint8_t *d, size_t len)
{
	uint8_t buf[2048];
	uint8_t op = len ? d[0] : 0;

	if (op % 8 == 7 && lis) {
		struct tcb *c;

		if (tcp_accept(lis, &c) == 0) {
			if (conn)
				tcp_abort(conn, now);
			conn = c;
		}
		return;
	}
	if (!conn)
		return;
	switch (op % 8) {
	case 0:
		tcp_send(conn, now, d, len);
		break;
	case 1:
		tcp_recv(conn, now, buf, len * 16 < sizeof(buf) ? len * 16 : sizeof(buf));
		break;
	case 2:
		tcp_shutdown(conn, now, len > 1 ? d[1] % 3 : 1);
		break;
	case 3:
		tcp_close(conn, now);
		conn = NULL;
		break;
	case 4:
		tcp_abort(conn, now);
		conn = NULL;
		break;
	case 5:
		tcp_setopt(conn, 1 + (len > 1 ? d[1] % 3 : 0), len > 2 ? d[2] & 1 : 1);
		break;
	case 6:
		(void) tcp_events(conn);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 1;

	if (size < 1)
		return 0;
	opts_on = data[0] & 0x10;
	start(data[0] % 10);
	invariants();
	for (unsigned steps = 0; i + 3 <= size && steps < 64; steps++) {
		uint8_t ctl = data[i];
		size_t len = ld_be16(data + i + 1) % 1600;
		const uint8_t *d = data + i + 3;

		i += 3;
		if (len > size - i)
			len = size - i;
		i += len;
		switch (ctl & 3) {
		case 0:
			segment(ctl, d, len);
			break;
		case 1:
			app(d, len);
			break;
		case 2:
			/* A time step up to about 70 s, so every timer can fire. */
			now += (uint64_t) (len ? d[0] : 1) * ((ctl >> 2) + 1) * 17000000ull;
			tcp_poll(&st, now);
			break;
		case 3:
			/* As the netport before it polls: every kept frame goes back. */
			tcp_hold_trim(&st, UINT64_MAX);
			check(held_mask == 0);
			tcp_poll(&st, now);
			break;
		}
		drain();
		invariants();
	}
	if (conn)
		tcp_abort(conn, now);
	drain();
	tcp_hold_trim(&st, UINT64_MAX);
	check(held_mask == 0);
	stop();
	return 0;
}
