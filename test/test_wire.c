/* The stack's wire layer: checksums against known vectors, and every parser's bounds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"
#include "stack/wire/eth.h"
#include "stack/wire/icmp.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/tcp.h"
#include "stack/wire/udp.h"

#define IP(a, b, c, d) ((uint32_t) wire_be32((uint32_t) (a) << 24 | (b) << 16 | (c) << 8 | (d)))

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) rng;
}

/* RFC 1071 the slow way: big-endian 16-bit words, 32-bit sum, fold, complement. */
static uint16_t ref_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t) p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t) p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t) ~sum;
}

static uint16_t field(uint16_t memory_order)
{
	uint8_t b[2];

	memcpy(b, &memory_order, 2);
	return (uint16_t) (b[0] << 8 | b[1]);
}

/* IPv4 header from the Wikipedia "IPv4 header checksum" example. */
static const uint8_t ip_vec[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
				   0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

Test(csum, matches_the_rfc_1071_example)
{
	/* RFC 1071 section 3: these bytes sum to ddf2, so the checksum is 220d. */
	const uint8_t b[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	cr_assert_eq(field(csum_fold(csum_acc(0, b, 8))), 0x220d);
}

Test(csum, matches_a_known_ipv4_header)
{
	uint8_t h[20];

	memcpy(h, ip_vec, 20);
	cr_assert_eq(csum_fold(csum_acc(0, h, 20)), 0, "a correct header sums to zero");
	h[10] = h[11] = 0;
	cr_assert_eq(field(csum_fold(csum_acc(0, h, 20))), 0xb861);
}

Test(csum, agrees_with_the_reference_at_every_length_and_alignment)
{
	uint8_t buf[600];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) rnd();
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf) && len < 530; len++)
			cr_assert_eq(field(csum_fold(csum_acc(0, buf + off, len))),
				     ref_csum(buf + off, len, 0), "off %zu len %zu", off, len);
}

Test(csum, chains_even_pieces_like_one_buffer)
{
	uint8_t buf[301];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) rnd();
	uint64_t acc = csum_acc(0, buf, 6);
	acc = csum_acc(acc, buf + 6, 100);
	acc = csum_acc(acc, buf + 106, 195);
	cr_assert_eq(csum_fold(acc), csum_fold(csum_acc(0, buf, sizeof(buf))));
}

Test(csum, all_ones_data_does_not_lose_carries)
{
	uint8_t buf[4096];

	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(field(csum_fold(csum_acc(0, buf, sizeof(buf)))), ref_csum(buf, 4096, 0));
	cr_assert_eq(field(csum_fold(csum_acc(0, buf, 4095))), ref_csum(buf, 4095, 0));
}

Test(csum, incremental_update_matches_the_rfc_1624_example)
{
	/* RFC 1624 section 4: HC = dd2f, m 5555 -> 3285 gives 0000 by equation 3. */
	cr_assert_eq(csum_update16(wire_be16(0xdd2f), wire_be16(0x5555), wire_be16(0x3285)),
		     0x0000);
}

Test(csum, incremental_update_keeps_a_header_valid)
{
	uint8_t h[20];

	memcpy(h, ip_vec, 20);
	for (int i = 0; i < 1000; i++) {
		uint16_t old_ttl = ld_raw16(h + 8), c = ld_raw16(h + 10);
		uint32_t old_dst = ld_addr(h + 16), new_dst = rnd();

		h[8] = (uint8_t) rnd(); /* TTL */
		c = csum_update16(c, old_ttl, ld_raw16(h + 8));
		st_addr(h + 16, new_dst);
		c = csum_update32(c, old_dst, new_dst);
		st_raw16(h + 10, c);
		cr_assert_eq(csum_fold(csum_acc(0, h, 20)), 0, "round %d", i);
	}
}

Test(csum, pseudo_header_matches_the_reference)
{
	uint8_t ph[12] = {198, 18, 0, 1, 198, 18, 0, 2, 0, 17, 0x01, 0x2c};
	uint8_t data[300];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t) rnd();
	uint32_t sum = 0;
	for (int i = 0; i < 12; i += 2)
		sum += (uint32_t) ph[i] << 8 | ph[i + 1];
	uint64_t acc = csum_pseudo4(IP(198, 18, 0, 1), IP(198, 18, 0, 2), 17, 300);
	cr_assert_eq(field(csum_fold(csum_acc(acc, data, 300))), ref_csum(data, 300, sum));
}

Test(eth, parses_an_untagged_header)
{
	uint8_t f[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0xaa};
	struct eth_view v;

	cr_assert_eq(eth_parse(f, sizeof(f), &v), 0);
	cr_assert_eq(v.type, ETH_P_IPV4);
	cr_assert_eq(v.dst, f);
	cr_assert_eq(v.src, f + 6);
	cr_assert_eq(v.payload, f + 14);
	cr_assert_eq(v.payload_len, 6);
	cr_assert_eq(eth_parse(f, 13, &v), -EBADMSG);
}

Test(eth, refuses_vlan_tags_and_8023_lengths)
{
	uint8_t f[64] = {0};
	struct eth_view v;

	st_be16(f + 12, ETH_P_8021Q);
	cr_assert_eq(eth_parse(f, sizeof(f), &v), -EOPNOTSUPP);
	cr_assert_eq(v.type, ETH_P_8021Q);
	st_be16(f + 12, ETH_P_8021AD);
	cr_assert_eq(eth_parse(f, sizeof(f), &v), -EOPNOTSUPP);
	st_be16(f + 12, 46); /* 802.3 length */
	cr_assert_eq(eth_parse(f, sizeof(f), &v), -EOPNOTSUPP);
}

Test(eth, emit_checks_capacity)
{
	uint8_t f[14], a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};

	cr_assert_eq(eth_emit(f, 13, a, b, ETH_P_ARP), -EMSGSIZE);
	cr_assert_eq(eth_emit(f, 14, a, b, ETH_P_ARP), 14);
	cr_assert_arr_eq(f, ((uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06}), 14);
}

Test(arp, round_trips_and_rejects_other_hardware)
{
	uint8_t p[ARP_LEN], sha[6] = {2, 0, 0, 0, 0, 9}, tha[6] = {2, 0, 0, 0, 0, 8};
	struct arp_view v;

	cr_assert_eq(arp_emit(p, ARP_LEN - 1, ARP_OP_REPLY, sha, IP(198, 18, 0, 9), tha,
			      IP(198, 18, 0, 8)),
		     -EMSGSIZE);
	cr_assert_eq(
		arp_emit(p, ARP_LEN, ARP_OP_REPLY, sha, IP(198, 18, 0, 9), tha, IP(198, 18, 0, 8)),
		ARP_LEN);
	cr_assert_eq(arp_parse(p, ARP_LEN, &v), 0);
	cr_assert_eq(v.op, ARP_OP_REPLY);
	cr_assert_arr_eq(v.sha, sha, 6);
	cr_assert_arr_eq(v.tha, tha, 6);
	cr_assert_eq(v.spa, IP(198, 18, 0, 9));
	cr_assert_eq(v.tpa, IP(198, 18, 0, 8));
	cr_assert_eq(arp_parse(p, ARP_LEN - 1, &v), -EBADMSG);
	p[1] = 6; /* IEEE 802 hardware */
	cr_assert_eq(arp_parse(p, ARP_LEN, &v), -EPROTONOSUPPORT);
	p[1] = 1;
	p[5] = 16; /* IPv6-length protocol addresses */
	cr_assert_eq(arp_parse(p, ARP_LEN, &v), -EPROTONOSUPPORT);
	p[5] = 4;
	p[7] = 3; /* RARP request */
	cr_assert_eq(arp_parse(p, ARP_LEN, &v), -EOPNOTSUPP);
}

Test(ipv4, emits_the_known_header_exactly)
{
	uint8_t h[20];
	struct ip4_hdr hdr = {.src = IP(192, 168, 0, 1),
			      .dst = IP(192, 168, 0, 199),
			      .ttl = 64,
			      .proto = IP4_PROTO_UDP,
			      .df = true};

	cr_assert_eq(ip4_emit(h, 19, &hdr, 0x73 - 20), -EMSGSIZE);
	cr_assert_eq(ip4_emit(h, 20, &hdr, 65536 - 20), -EMSGSIZE);
	cr_assert_eq(ip4_emit(h, 20, &hdr, 0x73 - 20), 20);
	cr_assert_arr_eq(h, ip_vec, 20);
}

static void mkip(uint8_t *p, unsigned ihl, unsigned total)
{
	struct ip4_hdr hdr = {.src = IP(198, 18, 0, 2), .dst = IP(198, 18, 0, 1), .ttl = 9};

	ip4_emit(p, 20, &hdr, total - 20);
	p[0] = (uint8_t) (0x40 | ihl);
	st_raw16(p + 10, 0);
	st_raw16(p + 10, csum_fold(csum_acc(0, p, ihl * 4)));
}

Test(ipv4, parses_and_excludes_link_padding)
{
	uint8_t p[60] = {0};
	struct ip4_view v;

	mkip(p, 5, 28);
	cr_assert_eq(ip4_parse(p, sizeof(p), 0, &v), 0);
	cr_assert_eq(v.hdr_len, 20);
	cr_assert_eq(v.payload, p + 20);
	cr_assert_eq(v.payload_len, 8);
	cr_assert_eq(v.ttl, 9);
	cr_assert_eq(v.src, IP(198, 18, 0, 2));
	cr_assert_not(ip4_is_fragment(&v));
	cr_assert_not(ip4_df(&v));
}

Test(ipv4, skips_options_by_header_length)
{
	uint8_t p[64] = {0};
	struct ip4_view v;

	mkip(p, 6, 30); /* one 4-byte option word, contents unread */
	p[20] = 0x44;   /* a timestamp option that claims more than there is */
	p[21] = 40;
	st_raw16(p + 10, 0);
	st_raw16(p + 10, csum_fold(csum_acc(0, p, 24)));
	cr_assert_eq(ip4_parse(p, 30, 0, &v), 0);
	cr_assert_eq(v.hdr_len, 24);
	cr_assert_eq(v.opts, p + 20);
	cr_assert_eq(v.payload, p + 24);
	cr_assert_eq(v.payload_len, 6);
}

Test(ipv4, rejects_bad_versions_lengths_and_checksums)
{
	uint8_t p[64] = {0};
	struct ip4_view v;

	mkip(p, 5, 40);
	cr_assert_eq(ip4_parse(p, 19, 0, &v), -EBADMSG, "shorter than a header");
	cr_assert_eq(ip4_parse(p, 39, 0, &v), -EBADMSG, "total length beyond the buffer");
	mkip(p, 4, 40);
	cr_assert_eq(ip4_parse(p, 40, 0, &v), -EBADMSG, "IHL below 5");
	mkip(p, 15, 40);
	cr_assert_eq(ip4_parse(p, 40, 0, &v), -EBADMSG, "header beyond the buffer");
	mkip(p, 6, 20);
	cr_assert_eq(ip4_parse(p, 40, 0, &v), -EBADMSG, "total length inside the header");
	mkip(p, 5, 40);
	p[0] = 0x65;
	cr_assert_eq(ip4_parse(p, 40, 0, &v), -EPROTONOSUPPORT);
	mkip(p, 5, 40);
	p[8]++;
	cr_assert_eq(ip4_parse(p, 40, 0, &v), -EILSEQ);
	cr_assert_eq(ip4_parse(p, 40, IP4_CSUM_OK, &v), 0, "the device's word is taken");
}

Test(ipv4, identifies_fragments_and_df)
{
	uint8_t p[40];
	struct ip4_view v;
	const uint16_t frag[] = {IP4_MF, 0x0001, IP4_MF | 0x0100, IP4_DF | 0x0010};

	for (unsigned i = 0; i < 4; i++) {
		mkip(p, 5, 40);
		st_be16(p + 6, frag[i]);
		st_raw16(p + 10, 0);
		st_raw16(p + 10, csum_fold(csum_acc(0, p, 20)));
		cr_assert_eq(ip4_parse(p, 40, 0, &v), 0);
		cr_assert(ip4_is_fragment(&v), "frag field %04x", frag[i]);
	}
	mkip(p, 5, 40);
	st_be16(p + 6, IP4_DF);
	st_raw16(p + 10, 0);
	st_raw16(p + 10, csum_fold(csum_acc(0, p, 20)));
	cr_assert_eq(ip4_parse(p, 40, 0, &v), 0);
	cr_assert_not(ip4_is_fragment(&v));
	cr_assert(ip4_df(&v));
}

Test(icmp, echo_round_trips_with_an_odd_length)
{
	uint8_t m[64];
	struct icmp_view v;

	cr_assert_eq(icmp_emit_echo(m, 12, ICMP_ECHO_REQUEST, 0xbeef, 3, "hello", 5), -EMSGSIZE);
	cr_assert_eq(icmp_emit_echo(m, sizeof(m), ICMP_ECHO_REQUEST, 0xbeef, 3, "hello", 5), 13);
	cr_assert_eq(ref_csum(m, 13, 0), 0);
	cr_assert_eq(icmp_parse(m, 13, 0, &v), 0);
	cr_assert_eq(v.type, ICMP_ECHO_REQUEST);
	cr_assert_eq(v.id, 0xbeef);
	cr_assert_eq(v.seq, 3);
	cr_assert_eq(v.body_len, 5);
	cr_assert_arr_eq(v.body, "hello", 5);
	m[12] ^= 1;
	cr_assert_eq(icmp_parse(m, 13, 0, &v), -EILSEQ);
	cr_assert_eq(icmp_parse(m, 7, ICMP_CSUM_OK, &v), -EBADMSG);
}

Test(icmp, exposes_the_quoted_datagram_of_an_error)
{
	uint8_t orig[32] = {0}, m[64];
	struct icmp_view v;

	mkip(orig, 6, 32); /* quote with an option word */
	st_be16(orig + 24, 40000);
	st_be16(orig + 26, 53);
	orig[9] = IP4_PROTO_UDP;
	cr_assert_eq(
		icmp_emit_error(m, sizeof(m), ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, orig, 32),
		40);
	cr_assert_eq(icmp_parse(m, 40, 0, &v), 0);
	cr_assert_eq(v.orig.hdr, m + 8);
	cr_assert_eq(v.orig.hdr_len, 24);
	cr_assert_eq(v.orig.proto, IP4_PROTO_UDP);
	cr_assert_eq(v.orig.src, IP(198, 18, 0, 2));
	cr_assert_eq(v.orig.l4, m + 8 + 24);
	cr_assert_eq(ld_be16(v.orig.l4), 40000);

	cr_assert_eq(v.orig.l4_len, 8);

	/* A short original: only what is there is exposed. */
	cr_assert_eq(icmp_emit_error(m, sizeof(m), ICMP_TIME_EXCEEDED, 0, 0, orig, 27), 35);
	cr_assert_eq(icmp_parse(m, 35, 0, &v), 0);
	cr_assert_eq(v.orig.l4_len, 3);
	/* A quoted header cut inside its options. */
	cr_assert_eq(icmp_emit_error(m, sizeof(m), ICMP_TIME_EXCEEDED, 0, 0, orig, 23), 31);
	cr_assert_eq(icmp_parse(m, 31, 0, &v), -EBADMSG);
	/* A quote that is not IPv4. */
	orig[0] = 0x65;
	icmp_emit_error(m, sizeof(m), ICMP_DEST_UNREACH, 1, 0, orig, 32);
	cr_assert_eq(icmp_parse(m, 40, 0, &v), -EBADMSG);
}

Test(udp, round_trips_and_verifies_the_checksum)
{
	uint8_t d[64];
	struct udp_view v;
	uint32_t s = IP(198, 18, 0, 1), t = IP(198, 18, 0, 2);

	memcpy(d + 8, "abc", 3);
	cr_assert_eq(udp_emit(d, 10, 1, 2, s, t, 3, 0), -EMSGSIZE);
	cr_assert_eq(udp_emit(d, sizeof(d), 1234, 53, s, t, 3, 0), 11);
	cr_assert_eq(udp_parse(d, 11, s, t, 0, &v), 0);
	cr_assert(v.has_csum);
	cr_assert_eq(v.sport, 1234);
	cr_assert_eq(v.dport, 53);
	cr_assert_eq(v.payload_len, 3);
	cr_assert_eq(udp_parse(d, 11, s, IP(198, 18, 0, 3), 0, &v), -EILSEQ,
		     "the pseudo-header is covered");
	st_raw16(d + 6, 0);
	cr_assert_eq(udp_parse(d, 11, s, IP(198, 18, 0, 3), 0, &v), 0, "zero means none");
	cr_assert_not(v.has_csum);
}

Test(udp, sends_a_computed_zero_as_ffff)
{
	uint8_t d[16] = {0};
	uint32_t s = IP(198, 18, 0, 1), t = IP(198, 18, 0, 2);
	struct udp_view v;

	/* With payload word 0 the checksum is c; a payload word equal to c makes the sum all
	 * ones, so the computed checksum is 0. */
	udp_emit(d, sizeof(d), 7, 9, s, t, 2, 0);
	uint16_t c = ld_raw16(d + 6);
	st_raw16(d + 8, c);
	udp_emit(d, sizeof(d), 7, 9, s, t, 2, 0);
	cr_assert_eq(ld_raw16(d + 6), 0xffff);
	cr_assert_eq(udp_parse(d, 10, s, t, 0, &v), 0);
}

Test(udp, rejects_bad_lengths)
{
	uint8_t d[32] = {0};
	struct udp_view v;

	cr_assert_eq(udp_parse(d, 7, 0, 0, 0, &v), -EBADMSG);
	st_be16(d + 4, 7);
	cr_assert_eq(udp_parse(d, 32, 0, 0, 0, &v), -EBADMSG, "length below the header");
	st_be16(d + 4, 33);
	cr_assert_eq(udp_parse(d, 32, 0, 0, 0, &v), -EBADMSG, "length beyond the packet");
	st_be16(d + 4, 20);
	cr_assert_eq(udp_parse(d, 32, 0, 0, 0, &v), 0);
	cr_assert_eq(v.payload_len, 12, "trailing bytes beyond the UDP length are ignored");
}

static const struct tcp_opts syn_opts = {
	.present = TCPO_MSS | TCPO_SACK_PERM | TCPO_TS | TCPO_WSCALE,
	.mss = 1460,
	.wscale = 7,
	.ts_val = 0x01020304,
	.ts_ecr = 0,
};

Test(tcp_opts, lays_out_syn_options_like_common_stacks)
{
	uint8_t b[40];
	const uint8_t exp[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7};

	cr_assert_eq(tcp_opts_len(&syn_opts), 20);
	cr_assert_eq(tcp_opts_emit(b, 19, &syn_opts), -EMSGSIZE);
	cr_assert_eq(tcp_opts_emit(b, sizeof(b), &syn_opts), 20);
	cr_assert_arr_eq(b, exp, 20);
}

static void assert_same(const struct tcp_opts *a, const struct tcp_opts *b)
{
	cr_assert_eq(a->present, b->present);
	if (a->present & TCPO_MSS)
		cr_assert_eq(a->mss, b->mss);
	if (a->present & TCPO_WSCALE)
		cr_assert_eq(a->wscale, b->wscale);
	if (a->present & TCPO_TS) {
		cr_assert_eq(a->ts_val, b->ts_val);
		cr_assert_eq(a->ts_ecr, b->ts_ecr);
	}
	if (a->present & TCPO_SACK) {
		cr_assert_eq(a->nsack, b->nsack);
		for (unsigned i = 0; i < a->nsack; i++) {
			cr_assert_eq(a->sack[i].left, b->sack[i].left);
			cr_assert_eq(a->sack[i].right, b->sack[i].right);
		}
	}
}

Test(tcp_opts, round_trip_every_combination_that_fits)
{
	uint8_t b[40];

	for (unsigned present = 0; present < 32; present++)
		for (unsigned nsack = 1; nsack <= TCP_MAX_SACK; nsack++) {
			struct tcp_opts o = {.present = present,
					     .mss = (uint16_t) rnd(),
					     .wscale = (uint8_t) (rnd() % 15),
					     .nsack = (uint8_t) nsack,
					     .ts_val = rnd(),
					     .ts_ecr = rnd()},
					p;
			for (unsigned i = 0; i < nsack; i++)
				o.sack[i] = (struct tcp_sack_block){rnd(), rnd()};
			int len = tcp_opts_emit(b, sizeof(b), &o);
			if (len < 0) {
				/* Only SACK blocks can overflow 40 bytes. */
				cr_assert(present & TCPO_SACK);
				cr_assert_eq(len, -EMSGSIZE);
				continue;
			}
			cr_assert_eq(len % 4, 0);
			cr_assert_eq(tcp_opts_parse(b, (size_t) len, &p), 0);
			assert_same(&o, &p);
		}
}

Test(tcp_opts, fit_three_sack_blocks_with_timestamps_and_four_without)
{
	struct tcp_opts o = {.present = TCPO_TS | TCPO_SACK, .nsack = 3};

	cr_assert_eq(tcp_opts_len(&o), 40);
	o.nsack = 4;
	cr_assert_eq(tcp_opts_len(&o), -EMSGSIZE);
	o.present = TCPO_SACK;
	cr_assert_eq(tcp_opts_len(&o), 36);
	o.nsack = 0;
	cr_assert_eq(tcp_opts_len(&o), -EMSGSIZE);
}

static int parse_bytes(const uint8_t *b, size_t len, struct tcp_opts *o)
{
	return tcp_opts_parse(b, len, o);
}

Test(tcp_opts, skip_unknown_kinds_and_stop_at_eol)
{
	struct tcp_opts o;
	const uint8_t b[] = {1, 30, 4, 0xde, 0xad, 2, 4, 0x02, 0x18, 0, 3, 0, 9};

	cr_assert_eq(parse_bytes(b, sizeof(b), &o), 0);
	cr_assert_eq(o.present, TCPO_MSS, "the bytes after EOL are not options");
	cr_assert_eq(o.mss, 536);
}

Test(tcp_opts, clamp_a_window_scale_above_14)
{
	struct tcp_opts o;
	const uint8_t b[] = {3, 3, 200, 1};

	cr_assert_eq(parse_bytes(b, sizeof(b), &o), 0);
	cr_assert_eq(o.wscale, 14);
}

Test(tcp_opts, reject_malformed_lengths)
{
	struct tcp_opts o;
	const struct {
		uint8_t b[12];
		size_t len;
		const char *why;
	} bad[] = {
		{{2}, 1, "kind without a length byte"},
		{{30, 0}, 2, "length 0"},
		{{30, 1, 1, 1}, 4, "length 1"},
		{{30, 9, 0, 0}, 4, "length past the end"},
		{{2, 3, 0, 1}, 4, "MSS of length 3"},
		{{2, 5, 0, 1, 0}, 5, "MSS of length 5"},
		{{3, 4, 1, 1}, 4, "window scale of length 4"},
		{{4, 3, 1, 1}, 4, "SACK-permitted of length 3"},
		{{8, 8, 0, 0, 0, 0, 0, 0}, 8, "timestamps of length 8"},
		{{5, 2, 1, 1}, 4, "SACK without blocks"},
		{{5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 11, "SACK of a partial block"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse_bytes(bad[i].b, bad[i].len, &o), -EBADMSG, "%s", bad[i].why);
	uint8_t big[44] = {0};
	cr_assert_eq(parse_bytes(big, sizeof(big), &o), -EBADMSG, "more than 40 bytes");
}

Test(tcp, round_trips_a_segment_with_options_and_payload)
{
	uint8_t seg[128];
	struct tcp_hdr h = {.sport = 40000,
			    .dport = 80,
			    .seq = 0xfffffff0,
			    .ack = 7,
			    .flags = TCP_SYN | TCP_ACK | TCP_ECE,
			    .window = 65535};
	uint32_t s = IP(198, 18, 0, 1), t = IP(198, 18, 0, 2);
	struct tcp_view v;
	struct tcp_opts o;

	cr_assert_eq(tcp_emit(seg, 44, &h, &syn_opts, "payload", 7, s, t, 0), -EMSGSIZE);
	cr_assert_eq(tcp_emit(seg, sizeof(seg), &h, &syn_opts, "payload", 7, s, t, 0), 47);
	cr_assert_eq(tcp_parse(seg, 47, s, t, 0, &v), 0);
	cr_assert_eq(v.sport, 40000);
	cr_assert_eq(v.dport, 80);
	cr_assert_eq(v.seq, 0xfffffff0);
	cr_assert_eq(v.ack, 7);
	cr_assert_eq(v.flags, TCP_SYN | TCP_ACK | TCP_ECE);
	cr_assert_eq(v.window, 65535);
	cr_assert_eq(v.hdr_len, 40);
	cr_assert_eq(v.payload_len, 7);
	cr_assert_arr_eq(v.payload, "payload", 7);
	cr_assert_eq(tcp_opts_parse(v.opts, v.opts_len, &o), 0);
	assert_same(&syn_opts, &o);
	seg[46] ^= 0x80;
	cr_assert_eq(tcp_parse(seg, 47, s, t, 0, &v), -EILSEQ);
}

Test(tcp, rejects_bad_data_offsets)
{
	uint8_t seg[40] = {0};
	struct tcp_view v;

	cr_assert_eq(tcp_parse(seg, 19, 0, 0, TCP_CSUM_OK, &v), -EBADMSG);
	seg[12] = 4 << 4;
	cr_assert_eq(tcp_parse(seg, 40, 0, 0, TCP_CSUM_OK, &v), -EBADMSG, "offset below 5");
	seg[12] = 11 << 4;
	cr_assert_eq(tcp_parse(seg, 40, 0, 0, TCP_CSUM_OK, &v), -EBADMSG, "offset past the end");
	seg[12] = 10 << 4;
	cr_assert_eq(tcp_parse(seg, 40, 0, 0, TCP_CSUM_OK, &v), 0);
	cr_assert_eq(v.opts_len, 20);
	cr_assert_eq(v.payload_len, 0);
}
