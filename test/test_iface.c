/*
 * The interface, packet by packet in the spirit of packetdrill: build a frame, feed it at a
 * virtual time, assert the exact frames that come out (or that none do) and the counters.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stack/iface/iface.h"
#include "stack/iface/txq.h"
#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"

#define IP(a, b, c, d) ((uint32_t) wire_be32((uint32_t) (a) << 24 | (b) << 16 | (c) << 8 | (d)))
#define S              IFACE_NS_PER_S

static const uint8_t our_mac[6] = {2, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};
static const uint8_t other_mac[6] = {2, 0, 0, 0, 0, 3};
#define OUR_IP   IP(198, 18, 0, 1)
#define PEER_IP  IP(198, 18, 0, 2)
#define OTHER_IP IP(198, 18, 0, 3)
#define GW_IP    IP(198, 18, 0, 254)

/* Expected frames, computed independently (a short Python script with its own checksum). */
static const uint8_t arp_reply_exp[60] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc6, 0x12, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc6, 0x12, 0x00, 0x02,
};
static const uint8_t arp_request_exp[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc6, 0x12, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc6, 0x12, 0x00, 0x02,
};
static const uint8_t garp_exp[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc6, 0x12, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc6, 0x12, 0x00, 0x01,
};
/* Echo reply to id 0x1234 seq 7 with the 29 bytes of echo_data, TOS 0x10, IP id 0x0100. */
static const uint8_t echo_reply_exp[71] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
	0x10, 0x00, 0x39, 0x01, 0x00, 0x40, 0x00, 0x40, 0x01, 0xad, 0x8c, 0xc6, 0x12, 0x00, 0x01,
	0xc6, 0x12, 0x00, 0x02, 0x00, 0x00, 0x2f, 0xa2, 0x12, 0x34, 0x00, 0x07, 0x78, 0x72, 0x69,
	0x6e, 0x67, 0x20, 0x70, 0x69, 0x6e, 0x67, 0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
	0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x21, 0x3f,
};
static const char echo_data[] = "xring ping 0123456789abcdef!?";

static struct iface ifc;
static struct txq q;
static struct {
	int udp_calls, udp_ret, tcp_calls, icmp_err_calls;
	uint16_t udp_dport;
	size_t udp_len;
	struct tcp_opts tcp_opts;
	int tcp_opts_ret;
	uint8_t icmp_err_type, icmp_err_code, icmp_err_proto;
	uint16_t icmp_err_sport;
} seen;

static int on_udp(void *ctx, uint64_t now, const struct ip4_view *ip, const struct udp_view *u)
{
	seen.udp_calls++;
	seen.udp_dport = u->dport;
	seen.udp_len = u->payload_len;
	return seen.udp_ret;
}

static void on_tcp(void *ctx, uint64_t now, const struct ip4_view *ip, const struct tcp_view *t)
{
	seen.tcp_calls++;
	seen.tcp_opts_ret = tcp_opts_parse(t->opts, t->opts_len, &seen.tcp_opts);
}

static void on_icmp_err(void *ctx, uint64_t now, const struct ip4_view *ip,
			const struct icmp_view *v)
{
	seen.icmp_err_calls++;
	seen.icmp_err_type = v->type;
	seen.icmp_err_code = v->code;
	seen.icmp_err_proto = v->orig.proto;
	if (v->orig.l4_len >= 2)
		seen.icmp_err_sport = ld_be16(v->orig.l4);
}

static void setup(void)
{
	struct iface_config c = {.ip = OUR_IP, .prefix_len = 24, .ip_id = 0x0100};
	struct iface_hooks h = {
		.udp_input = on_udp, .tcp_input = on_tcp, .icmp_error = on_icmp_err};

	memcpy(c.mac, our_mac, 6);
	memset(&seen, 0, sizeof(seen));
	seen.udp_ret = -ECONNREFUSED;
	cr_assert_eq(txq_init(&q, 16, 2048), 0);
	cr_assert_eq(iface_init(&ifc, &c, txq_dev(&q), &h), 0);
}

static void teardown(void)
{
	iface_fini(&ifc);
	txq_fini(&q);
}

TestSuite(iface, .init = setup, .fini = teardown);

/* ---- frame builders ---- */

static size_t arp_frame(uint8_t *f, const uint8_t *eth_dst, uint16_t op, const uint8_t *sha,
			uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
	eth_emit(f, 14, eth_dst, sha, ETH_P_ARP);
	arp_emit(f + 14, ARP_LEN, op, sha, spa, tha, tpa);
	memset(f + 42, 0, 18);
	return 60;
}

/* An IPv4 frame from the peer to us carrying l4 (whose checksum the caller made). */
static size_t ip_frame(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto, uint8_t tos,
		       const void *l4, size_t len)
{
	struct ip4_hdr h = {.src = src, .dst = dst, .ttl = 64, .proto = proto, .tos = tos};

	eth_emit(f, 14, our_mac, peer_mac, ETH_P_IPV4);
	ip4_emit(f + 14, 20, &h, len);
	memcpy(f + 34, l4, len);
	return 34 + len;
}

static size_t echo_frame(uint8_t *f, uint32_t dst)
{
	uint8_t m[64];
	int n = icmp_emit_echo(m, sizeof(m), ICMP_ECHO_REQUEST, 0x1234, 7, echo_data,
			       sizeof(echo_data) - 1);

	return ip_frame(f, PEER_IP, dst, IP4_PROTO_ICMP, 0x10, m, (size_t) n);
}

static size_t udp_frame(uint8_t *f, uint32_t dst, uint16_t dport, const char *data)
{
	uint8_t d[256];
	size_t n = strlen(data);

	memcpy(d + 8, data, n);
	int len = udp_emit(d, sizeof(d), 5353, dport, PEER_IP, dst, n, 0);
	return ip_frame(f, PEER_IP, dst, IP4_PROTO_UDP, 0, d, (size_t) len);
}

static void reip(uint8_t *f)
{
	st_raw16(f + 24, 0);
	st_raw16(f + 24, csum_fold(csum_acc(0, f + 14, (f[14] & 15) * 4u)));
}

/* ---- assertions on what left ---- */

static void expect_frame(const uint8_t *exp, uint32_t len)
{
	uint32_t got;
	const uint8_t *f = txq_peek(&q, &got);

	cr_assert_not_null(f, "a frame was sent");
	cr_assert_eq(got, len, "frame length %u, expected %u", got, len);
	for (uint32_t i = 0; i < len; i++)
		cr_assert_eq(f[i], exp[i], "byte %u: %02x, expected %02x", i, f[i], exp[i]);
	txq_pop(&q);
}

static const uint8_t *next_frame(uint32_t *len)
{
	const uint8_t *f = txq_peek(&q, len);

	cr_assert_not_null(f, "a frame was sent");
	return f;
}

static void expect_nothing(void)
{
	uint32_t len;

	cr_assert_null(txq_peek(&q, &len), "no frame was sent");
}

static void learn_peer(void)
{
	uint8_t f[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, peer_mac, PEER_IP, NULL, OUR_IP);
	cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), 0);
	expect_frame(arp_reply_exp, 60);
}

/* ---- ARP ---- */

Test(iface, answers_an_arp_request_for_its_address)
{
	learn_peer();
	expect_nothing();
	cr_assert_eq(ifc.stats.arp_req_in, 1);
	cr_assert_eq(ifc.stats.arp_reply_out, 1);
	const struct neigh *n = iface_neigh_find(&ifc, PEER_IP);
	cr_assert_not_null(n, "the requester is learned");
	cr_assert_eq(n->state, NEIGH_STALE, "a request proves nothing about our path to it");
	cr_assert_arr_eq(n->mac, peer_mac, 6);
}

Test(iface, ignores_an_arp_request_for_another_address)
{
	uint8_t f[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, peer_mac, PEER_IP, NULL, OTHER_IP);
	cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), 0);
	expect_nothing();
	cr_assert_eq(ifc.stats.arp_not_for_us, 1);
	cr_assert_null(iface_neigh_find(&ifc, PEER_IP), "nothing learned from others' chatter");
}

Test(iface, answers_an_rfc_5227_probe_without_learning_from_it)
{
	uint8_t f[60], exp[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, peer_mac, 0, NULL, OUR_IP);
	cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), 0);
	memcpy(exp, arp_reply_exp, 60);
	memset(exp + 38, 0, 4); /* target protocol address: the prober's 0.0.0.0 */
	expect_frame(exp, 60);
	cr_assert_null(iface_neigh_find(&ifc, 0));
}

Test(iface, counts_an_address_conflict_and_does_not_learn_it)
{
	uint8_t f[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, peer_mac, OUR_IP, NULL, OUR_IP);
	cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), -EADDRINUSE);
	expect_nothing();
	cr_assert_eq(ifc.stats.arp_conflict, 1);
	cr_assert_null(iface_neigh_find(&ifc, OUR_IP));
}

Test(iface, drops_arp_for_other_hardware_and_short_arp)
{
	uint8_t f[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, peer_mac, PEER_IP, NULL, OUR_IP);
	f[15] = 6;
	cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), -EPROTONOSUPPORT);
	cr_assert_eq(ifc.stats.arp_unsupported, 1);
	f[15] = 1;
	cr_assert_eq(iface_input(&ifc, 0, f, 41, 0), -EBADMSG);
	cr_assert_eq(ifc.stats.arp_malformed, 1);
	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, eth_broadcast, PEER_IP, NULL, OUR_IP);
	memcpy(f + 6, peer_mac, 6);
	cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), -EINVAL);
	cr_assert_eq(ifc.stats.arp_bad_sha, 1);
	expect_nothing();
}

Test(iface, announces_itself_with_a_gratuitous_arp)
{
	cr_assert_eq(iface_announce(&ifc, 0), 0);
	expect_frame(garp_exp, 60);
}

Test(iface, gratuitous_arp_updates_a_known_neighbour_but_creates_none)
{
	uint8_t f[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, other_mac, OTHER_IP, NULL, OTHER_IP);
	iface_input(&ifc, 0, f, 60, 0);
	cr_assert_null(iface_neigh_find(&ifc, OTHER_IP));
	learn_peer();
	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, other_mac, PEER_IP, NULL, PEER_IP);
	memcpy(f + 6, other_mac, 6);
	iface_input(&ifc, S, f, 60, 0);
	expect_nothing();
	cr_assert_arr_eq(iface_neigh_find(&ifc, PEER_IP)->mac, other_mac, 6, "the peer moved");
}

/* ---- neighbour resolution ---- */

Test(iface, resolves_before_sending_and_flushes_the_waiting_frames)
{
	uint8_t f[60];

	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "abc", 3), 0);
	expect_frame(arp_request_exp, 60);
	expect_nothing();
	cr_assert_eq(iface_neigh_find(&ifc, PEER_IP)->state, NEIGH_INCOMPLETE);

	arp_frame(f, our_mac, ARP_OP_REPLY, peer_mac, PEER_IP, our_mac, OUR_IP);
	cr_assert_eq(iface_input(&ifc, S / 10, f, 60, 0), 0);
	cr_assert_eq(iface_neigh_find(&ifc, PEER_IP)->state, NEIGH_REACHABLE);
	uint32_t len;
	const uint8_t *out = next_frame(&len);
	cr_assert_eq(len, 60);
	cr_assert_arr_eq(out, peer_mac, 6, "the waiting frame now has its destination");
	cr_assert_eq(out[14 + 9], 253);
	cr_assert_arr_eq(out + 34, "abc", 3);
	cr_assert_eq(csum_fold(csum_acc(0, out + 14, 20)), 0);
	txq_pop(&q);
	expect_nothing();
}

/* A host neighbour table that knows PEER_IP only. */
static int host_neigh(void *ctx, uint32_t ip, uint8_t mac[6])
{
	(*(unsigned *) ctx)++;
	if (ip != PEER_IP)
		return -ENOENT;
	memcpy(mac, peer_mac, 6);
	return 0;
}

Test(iface, takes_a_missing_neighbour_from_the_host_table_and_verifies_it_later)
{
	uint8_t unicast_req[60];
	unsigned asked = 0;
	uint32_t len;
	const uint8_t *out;

	ifc.hooks.neigh_lookup = host_neigh;
	ifc.hooks.neigh_ctx = &asked;
	/* Known to the host: the frame leaves at once, no ARP. */
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "abc", 3), 0);
	out = next_frame(&len);
	cr_assert_arr_eq(out, peer_mac, 6, "sent straight to the host's answer");
	cr_assert_arr_eq(out + 34, "abc", 3);
	txq_pop(&q);
	expect_nothing();
	cr_assert_eq(asked, 1);
	cr_assert_eq(ifc.stats.neigh_from_host, 1);
	cr_assert_eq(ifc.stats.neigh_miss, 0);
	cr_assert_eq(iface_neigh_find(&ifc, PEER_IP)->state, NEIGH_STALE, "not confirmed yet");
	/* A second frame uses the entry; the host is not asked again. */
	cr_assert_eq(iface_ip4_send(&ifc, 1, PEER_IP, 253, 0, "d", 1), 0);
	(void) next_frame(&len);
	txq_pop(&q);
	cr_assert_eq(asked, 1);
	/* Unconfirmed, it is probed with a unicast request after the delay, as any stale one. */
	memcpy(unicast_req, arp_request_exp, 60);
	memcpy(unicast_req, peer_mac, 6);
	cr_assert_eq(iface_poll(&ifc, 2), 5 * S);
	iface_poll(&ifc, 5 * S);
	expect_frame(unicast_req, 60);
	/* Unknown to the host: resolved by ARP as before. */
	cr_assert_eq(iface_ip4_send(&ifc, 5 * S, OTHER_IP, 253, 0, "x", 1), 0);
	cr_assert_eq(asked, 2);
	out = next_frame(&len);
	cr_assert_eq(ld_be16(out + 12), ETH_P_ARP, "an ARP request");
	txq_pop(&q);
	cr_assert_eq(ifc.stats.neigh_miss, 1);
}

Test(iface, retries_resolution_then_gives_up_and_drops_the_waiting_frames)
{
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "abc", 3), 0);
	expect_frame(arp_request_exp, 60);
	cr_assert_eq(iface_poll(&ifc, 0), 1 * S);
	expect_nothing();
	cr_assert_eq(iface_poll(&ifc, 1 * S), 2 * S);
	expect_frame(arp_request_exp, 60);
	cr_assert_eq(iface_poll(&ifc, 2 * S), 3 * S);
	expect_frame(arp_request_exp, 60);
	cr_assert_eq(iface_poll(&ifc, 3 * S), UINT64_MAX, "three requests, then nothing armed");
	expect_nothing();
	cr_assert_null(iface_neigh_find(&ifc, PEER_IP));
	cr_assert_eq(ifc.stats.neigh_failed, 1);
	cr_assert_eq(ifc.stats.neigh_failed_frames, 1);
}

Test(iface, bounds_the_frames_waiting_for_one_neighbour)
{
	uint8_t f[60];

	for (uint8_t i = 0; i < 6; i++)
		cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, &i, 1), 0);
	expect_frame(arp_request_exp, 60);
	cr_assert_eq(ifc.stats.neigh_queue_drop, 2);
	arp_frame(f, our_mac, ARP_OP_REPLY, peer_mac, PEER_IP, our_mac, OUR_IP);
	iface_input(&ifc, 1, f, 60, 0);
	for (uint8_t i = 2; i < 6; i++) {
		uint32_t len;
		const uint8_t *out = next_frame(&len);
		cr_assert_eq(out[34], i, "the oldest were dropped, the rest keep their order");
		txq_pop(&q);
	}
	expect_nothing();
}

Test(iface, probes_a_stale_neighbour_in_use_and_forgets_it_when_silent)
{
	uint8_t unicast_req[60];

	learn_peer();
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "x", 1), 0);
	(void) next_frame(&(uint32_t){0});
	txq_pop(&q);
	cr_assert_eq(iface_poll(&ifc, 1), 5 * S, "delay before probing");
	memcpy(unicast_req, arp_request_exp, 60);
	memcpy(unicast_req, peer_mac, 6);
	cr_assert_eq(iface_poll(&ifc, 5 * S), 6 * S);
	expect_frame(unicast_req, 60);
	iface_poll(&ifc, 6 * S);
	expect_frame(unicast_req, 60);
	iface_poll(&ifc, 7 * S);
	expect_frame(unicast_req, 60);
	iface_poll(&ifc, 8 * S);
	expect_nothing();
	cr_assert_null(iface_neigh_find(&ifc, PEER_IP));
}

Test(iface, a_confirmation_stops_the_probing)
{
	learn_peer();
	iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "x", 1);
	txq_pop(&q);
	iface_neigh_confirm(&ifc, 2 * S, PEER_IP);
	cr_assert_eq(iface_neigh_find(&ifc, PEER_IP)->state, NEIGH_REACHABLE);
	iface_poll(&ifc, 5 * S);
	expect_nothing();
}

Test(iface, sends_off_subnet_through_the_gateway_or_refuses)
{
	cr_assert_eq(iface_ip4_send(&ifc, 0, IP(192, 0, 2, 1), 253, 0, "x", 1), -ENETUNREACH);
	ifc.gateway = GW_IP;
	cr_assert_eq(iface_ip4_send(&ifc, 0, IP(192, 0, 2, 1), 253, 0, "x", 1), 0);
	uint32_t len;
	const uint8_t *out = next_frame(&len);
	cr_assert_eq(ld_addr(out + 38), GW_IP, "ARP asks for the gateway");
	cr_assert_not_null(iface_neigh_find(&ifc, GW_IP));
}

Test(iface, refuses_a_payload_above_the_mtu)
{
	static uint8_t big[1481];

	learn_peer();
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, big, 1481), -EMSGSIZE);
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, big, 1480), 0);
	uint32_t len;
	next_frame(&len);
	cr_assert_eq(len, 1514);
}

/* ---- ICMP ---- */

Test(iface, answers_an_echo_request_with_exact_bytes)
{
	uint8_t f[128];

	learn_peer();
	size_t n = echo_frame(f, OUR_IP);
	cr_assert_eq(iface_input(&ifc, 1, f, n, 0), 0);
	expect_frame(echo_reply_exp, sizeof(echo_reply_exp));
	expect_nothing();
	cr_assert_eq(ifc.stats.icmp_echo_in, 1);
	cr_assert_eq(ifc.stats.icmp_echo_out, 1);
}

Test(iface, answers_an_echo_from_an_unknown_neighbour_after_resolving_it)
{
	uint8_t f[128];
	size_t n = echo_frame(f, OUR_IP);

	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), 0);
	expect_frame(arp_request_exp, 60);
	arp_frame(f, our_mac, ARP_OP_REPLY, peer_mac, PEER_IP, our_mac, OUR_IP);
	iface_input(&ifc, 1, f, 60, 0);
	expect_frame(echo_reply_exp, sizeof(echo_reply_exp));
}

Test(iface, ignores_an_echo_to_broadcast)
{
	uint8_t f[128];

	learn_peer();
	size_t n = echo_frame(f, IP(198, 18, 0, 255));
	memcpy(f, eth_broadcast, 6);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EADDRNOTAVAIL);
	expect_nothing();
	cr_assert_eq(ifc.stats.icmp_echo_bcast, 1);
}

Test(iface, passes_icmp_errors_to_the_upper_layer)
{
	uint8_t orig[28], m[64], f[128];
	struct ip4_hdr h = {.src = OUR_IP, .dst = PEER_IP, .ttl = 64, .proto = IP4_PROTO_UDP};

	ip4_emit(orig, 20, &h, 8);
	udp_emit(orig + 20, 8, 40001, 9, OUR_IP, PEER_IP, 0, 0);
	int len = icmp_emit_error(m, sizeof(m), ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, orig, 28);
	size_t n = ip_frame(f, PEER_IP, OUR_IP, IP4_PROTO_ICMP, 0, m, (size_t) len);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), 0);
	cr_assert_eq(seen.icmp_err_calls, 1);
	cr_assert_eq(seen.icmp_err_type, ICMP_DEST_UNREACH);
	cr_assert_eq(seen.icmp_err_code, ICMP_PORT_UNREACH);
	cr_assert_eq(seen.icmp_err_proto, IP4_PROTO_UDP);
	cr_assert_eq(seen.icmp_err_sport, 40001);
	expect_nothing();

	/* The same error about a datagram someone else sent is not passed on. */
	h.src = OTHER_IP;
	ip4_emit(orig, 20, &h, 8);
	len = icmp_emit_error(m, sizeof(m), ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, orig, 28);
	n = ip_frame(f, PEER_IP, OUR_IP, IP4_PROTO_ICMP, 0, m, (size_t) len);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EINVAL);
	cr_assert_eq(seen.icmp_err_calls, 1);
	cr_assert_eq(ifc.stats.icmp_err_foreign, 1);
}

/* ---- UDP and TCP ---- */

Test(iface, delivers_udp_to_a_bound_port)
{
	uint8_t f[128];

	seen.udp_ret = 0;
	size_t n = udp_frame(f, OUR_IP, 7777, "hello");
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), 0);
	cr_assert_eq(seen.udp_calls, 1);
	cr_assert_eq(seen.udp_dport, 7777);
	cr_assert_eq(seen.udp_len, 5);
	cr_assert_eq(ifc.stats.udp_delivered, 1);
	expect_nothing();
}

Test(iface, answers_udp_to_a_closed_port_with_port_unreachable)
{
	uint8_t f[128];

	learn_peer();
	size_t n = udp_frame(f, OUR_IP, 7777, "hello");
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -ECONNREFUSED);
	uint32_t len;
	const uint8_t *out = next_frame(&len);
	cr_assert_eq(len, 14 + 20 + 8 + 20 + 13);
	cr_assert_arr_eq(out, peer_mac, 6);
	cr_assert_eq(ld_addr(out + 30), PEER_IP);
	cr_assert_eq(out[23], IP4_PROTO_ICMP);
	cr_assert_eq(csum_fold(csum_acc(0, out + 14, 20)), 0, "IP checksum");
	cr_assert_eq(csum_fold(csum_acc(0, out + 34, 8 + 33)), 0, "ICMP checksum");
	cr_assert_eq(out[34], ICMP_DEST_UNREACH);
	cr_assert_eq(out[35], ICMP_PORT_UNREACH);
	cr_assert_arr_eq(out + 42, f + 14, 33, "the whole offending datagram is quoted");
	txq_pop(&q);
	cr_assert_eq(ifc.stats.udp_no_port, 1);
	cr_assert_eq(ifc.stats.icmp_err_out, 1);
}

Test(iface, sends_no_port_unreachable_for_broadcast_udp)
{
	uint8_t f[128];

	learn_peer();
	size_t n = udp_frame(f, IP4_BROADCAST, 67, "dhcp?");
	memcpy(f, eth_broadcast, 6);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -ECONNREFUSED);
	expect_nothing();
}

Test(iface, rate_limits_the_icmp_errors_it_sends)
{
	uint8_t f[128];

	learn_peer();
	size_t n = udp_frame(f, OUR_IP, 7777, "x");
	for (int i = 0; i < 60; i++) {
		iface_input(&ifc, 0, f, n, 0);
		txq_pop(&q);
	}
	cr_assert_eq(ifc.stats.icmp_err_out, 50, "the burst");
	cr_assert_eq(ifc.stats.icmp_ratelimited, 10);
	iface_input(&ifc, S / 1000, f, n, 0);
	cr_assert_eq(ifc.stats.icmp_err_out, 51, "one more token per millisecond");
}

Test(iface, answers_an_unknown_protocol_with_protocol_unreachable)
{
	uint8_t f[128];

	learn_peer();
	size_t n = ip_frame(f, PEER_IP, OUR_IP, 132, 0, "sctp....", 8);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EPROTONOSUPPORT);
	uint32_t len;
	const uint8_t *out = next_frame(&len);
	cr_assert_eq(out[34], ICMP_DEST_UNREACH);
	cr_assert_eq(out[35], ICMP_PROT_UNREACH);
	cr_assert_eq(ifc.stats.ip_unknown_proto, 1);
}

Test(iface, delivers_tcp_whose_options_parse)
{
	uint8_t seg[64], f[128];
	struct tcp_hdr h = {.sport = 40000, .dport = 80, .seq = 1, .flags = TCP_SYN, .window = 1};
	struct tcp_opts o = {.present = TCPO_MSS | TCPO_WSCALE, .mss = 1400, .wscale = 9};

	int len = tcp_emit(seg, sizeof(seg), &h, &o, NULL, 0, PEER_IP, OUR_IP, 0);
	size_t n = ip_frame(f, PEER_IP, OUR_IP, IP4_PROTO_TCP, 0, seg, (size_t) len);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), 0);
	cr_assert_eq(seen.tcp_calls, 1);
	cr_assert_eq(seen.tcp_opts_ret, 0);
	cr_assert_eq(seen.tcp_opts.mss, 1400);
	cr_assert_eq(seen.tcp_opts.wscale, 9);
	f[n - 1] ^= 1; /* window scale byte: the TCP checksum catches it */
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EILSEQ);
	cr_assert_eq(ifc.stats.tcp_bad_csum, 1);
	cr_assert_eq(iface_input(&ifc, 0, f, n, IFACE_RX_L4_CSUM_OK), 0, "device verified");
}

/* ---- drops, counted by reason ---- */

Test(iface, drops_truncated_and_corrupt_frames_by_reason)
{
	uint8_t f[128];
	size_t n;

	learn_peer();
	n = echo_frame(f, OUR_IP);
	cr_assert_eq(iface_input(&ifc, 0, f, 13, 0), -EBADMSG);
	cr_assert_eq(ifc.stats.eth_truncated, 1);
	cr_assert_eq(iface_input(&ifc, 0, f, 14 + 19, 0), -EBADMSG);
	cr_assert_eq(iface_input(&ifc, 0, f, n - 1, 0), -EBADMSG, "total length beyond frame");
	cr_assert_eq(ifc.stats.ip_malformed, 2);

	n = echo_frame(f, OUR_IP);
	f[14 + 8] = 1; /* TTL changed, header checksum stale */
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EILSEQ);
	cr_assert_eq(ifc.stats.ip_bad_csum, 1);

	n = echo_frame(f, OUR_IP);
	f[14] = 0x65;
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EPROTONOSUPPORT);
	cr_assert_eq(ifc.stats.ip_version, 1);

	n = echo_frame(f, OUR_IP);
	f[n - 1] ^= 0xff;
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EILSEQ);
	cr_assert_eq(ifc.stats.icmp_bad_csum, 1);

	n = udp_frame(f, OUR_IP, 9, "data");
	f[n - 1] ^= 0xff;
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EILSEQ);
	cr_assert_eq(ifc.stats.udp_bad_csum, 1);

	n = udp_frame(f, OUR_IP, 9, "data");
	st_be16(f + 34 + 4, 40);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EBADMSG);
	cr_assert_eq(ifc.stats.udp_malformed, 1);

	n = ip_frame(f, PEER_IP, OUR_IP, IP4_PROTO_TCP, 0, "short", 5);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EBADMSG);
	cr_assert_eq(ifc.stats.tcp_malformed, 1);

	expect_nothing();
	cr_assert_eq(ifc.stats.icmp_echo_out, 0);
}

Test(iface, drops_fragments_and_counts_them)
{
	uint8_t f[128];
	const uint16_t frag[] = {IP4_MF, IP4_DF | 1, 185};

	learn_peer();
	for (int i = 0; i < 3; i++) {
		size_t n = echo_frame(f, OUR_IP);
		st_be16(f + 14 + 6, frag[i]);
		reip(f);
		cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EOPNOTSUPP);
	}
	cr_assert_eq(ifc.stats.ip_fragment, 3);
	expect_nothing();
}

Test(iface, drops_vlan_tagged_frames_instead_of_misparsing_them)
{
	uint8_t f[128];

	learn_peer();
	/* A tagged echo request: after the tag comes a perfectly valid IPv4 packet. */
	size_t n = echo_frame(f + 4, OUR_IP);
	memmove(f, f + 4, 12);
	st_be16(f + 12, ETH_P_8021Q);
	st_be16(f + 14, 5);
	st_be16(f + 16, ETH_P_IPV4);
	cr_assert_eq(iface_input(&ifc, 0, f, n + 4, 0), -EOPNOTSUPP);
	cr_assert_eq(ifc.stats.eth_vlan, 1);
	expect_nothing();
}

Test(iface, drops_frames_and_packets_not_for_it)
{
	uint8_t f[128];
	size_t n;

	learn_peer();
	n = echo_frame(f, OUR_IP);
	memcpy(f, other_mac, 6);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EADDRNOTAVAIL);
	cr_assert_eq(ifc.stats.eth_not_for_us, 1);

	n = echo_frame(f, OTHER_IP);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EADDRNOTAVAIL);
	cr_assert_eq(ifc.stats.ip_not_for_us, 1);

	n = echo_frame(f, OUR_IP);
	memcpy(f, eth_broadcast, 6);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EADDRNOTAVAIL, "unicast IP in a broadcast");
	cr_assert_eq(ifc.stats.ip_l2_bcast, 1);

	n = echo_frame(f, OUR_IP);
	st_addr(f + 26, IP(127, 0, 0, 1));
	reip(f);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EINVAL);
	cr_assert_eq(ifc.stats.ip_bad_src, 1);

	n = echo_frame(f, OUR_IP);
	memcpy(f + 6, our_mac, 6);
	cr_assert_eq(iface_input(&ifc, 0, f, n, 0), -EINVAL, "our own frame looped back");
	cr_assert_eq(ifc.stats.eth_bad_src, 1);
	expect_nothing();
}

Test(iface, accepts_ip_options_and_link_padding)
{
	uint8_t f[128], g[128];

	learn_peer();
	size_t n = echo_frame(f, OUR_IP);
	/* Insert a 4-byte option word (NOP NOP NOP EOL) after the IPv4 header. */
	memcpy(g, f, 34);
	memcpy(g + 34, "\x01\x01\x01\x00", 4);
	memcpy(g + 38, f + 34, n - 34);
	g[14] = 0x46;
	st_be16(g + 16, (uint16_t) (n - 14 + 4));
	reip(g);
	memset(g + n + 4, 0xee, 10); /* link padding after the datagram */
	cr_assert_eq(iface_input(&ifc, 1, g, n + 14, 0), 0);
	expect_frame(echo_reply_exp, sizeof(echo_reply_exp));
}

Test(iface, rejects_a_bad_configuration)
{
	struct iface bad;
	struct iface_config c = {.ip = OUR_IP, .prefix_len = 24, .mtu = 60};

	memcpy(c.mac, our_mac, 6);
	cr_assert_eq(iface_init(&bad, &c, txq_dev(&q), NULL), -EINVAL, "MTU below 68");
	c.mtu = 0;
	c.mac[0] = 1;
	cr_assert_eq(iface_init(&bad, &c, txq_dev(&q), NULL), -EINVAL, "multicast MAC");
}

Test(iface, evicts_the_least_recently_used_neighbour_when_full)
{
	struct iface_config c = {.ip = OUR_IP, .prefix_len = 16, .neigh_entries = 4};
	uint8_t f[60], mac[6] = {2, 0, 0, 0, 1, 0};

	iface_fini(&ifc);
	memcpy(c.mac, our_mac, 6);
	cr_assert_eq(iface_init(&ifc, &c, txq_dev(&q), NULL), 0);
	for (uint8_t i = 0; i < 40; i++) {
		mac[5] = i;
		arp_frame(f, eth_broadcast, ARP_OP_REQUEST, mac, IP(198, 18, 1, i), NULL, OUR_IP);
		cr_assert_eq(iface_input(&ifc, i, f, 60, 0), 0);
		txq_pop(&q);
		/* The first neighbour stays in use, so it is never the one evicted. */
		cr_assert_eq(iface_ip4_send(&ifc, i, IP(198, 18, 1, 0), 253, 0, "x", 1), 0);
		txq_pop(&q);
	}
	cr_assert_eq(ifc.stats.neigh_evicted, 36);
	cr_assert_not_null(iface_neigh_find(&ifc, IP(198, 18, 1, 0)));
	for (uint8_t i = 37; i < 40; i++) {
		const struct neigh *n = iface_neigh_find(&ifc, IP(198, 18, 1, i));
		cr_assert_not_null(n, "neighbour %u", i);
		cr_assert_eq(n->mac[5], i);
	}
	cr_assert_null(iface_neigh_find(&ifc, IP(198, 18, 1, 36)));
}

Test(iface, counts_a_device_out_of_buffers_and_keeps_going)
{
	uint8_t f[60];

	arp_frame(f, eth_broadcast, ARP_OP_REQUEST, peer_mac, PEER_IP, NULL, OUR_IP);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(iface_input(&ifc, 0, f, 60, 0), i < 16 ? 0 : -ENOBUFS);
	cr_assert_eq(ifc.stats.tx_nobuf, 4);
	cr_assert_eq(ifc.stats.arp_reply_out, 16);
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "x", 1), -ENOBUFS);
	for (int i = 0; i < 16; i++)
		expect_frame(arp_reply_exp, 60);
	cr_assert_eq(iface_ip4_send(&ifc, 0, PEER_IP, 253, 0, "x", 1), 0);
}
