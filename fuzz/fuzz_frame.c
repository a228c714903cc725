/*
 * The whole frame input path: Ethernet -> ARP / IPv4 -> ICMP / UDP / TCP (options included),
 * plus the neighbour timers and everything the interface sends in reply.
 *
 * Input: one mode byte, then records of [time step (1 byte)][length (2 bytes, big endian)]
 * [frame]. Mode bit 0 repairs the IPv4 and L4 checksums before a frame is fed, so mutations
 * reach past checksum checks; bit 1 passes the device-verified flags instead. Oracle: no
 * sanitizer report, every view the hooks get lies inside the frame, and every frame the
 * interface sends parses back cleanly, checksums included.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stack/iface/iface.h"
#include "stack/iface/txq.h"
#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static const uint8_t *frame_lo, *frame_hi;
static volatile uint8_t sink;

static void inside(const void *p, size_t len)
{
	const uint8_t *b = p;

	check(len == 0 || (b >= frame_lo && b + len <= frame_hi));
	for (size_t i = 0; i < len; i++)
		sink ^= b[i];
}

static int on_udp(void *ctx, uint64_t now, const struct ip4_view *ip, const struct udp_view *u)
{
	inside(u->payload, u->payload_len);
	return u->dport & 1 ? 0 : -ECONNREFUSED;
}

static void on_tcp(void *ctx, uint64_t now, const struct ip4_view *ip, const struct tcp_view *t)
{
	struct tcp_opts o;

	inside(t->opts, t->opts_len);
	inside(t->payload, t->payload_len);
	if (tcp_opts_parse(t->opts, t->opts_len, &o) == 0 && (o.present & TCPO_SACK))
		check(o.nsack >= 1 && o.nsack <= TCP_MAX_SACK);
}

static void on_icmp_err(void *ctx, uint64_t now, const struct ip4_view *ip,
			const struct icmp_view *v)
{
	inside(v->body, v->body_len);
	inside(v->orig.hdr, v->orig.hdr_len);
	check(v->orig.l4_len <= 8);
	inside(v->orig.l4, v->orig.l4_len);
}

static void repair(uint8_t *f, size_t len)
{
	uint8_t *ip = f + ETH_HLEN;
	size_t hl, tot;

	if (len < ETH_HLEN + IP4_HLEN || ld_be16(f + 12) != ETH_P_IPV4)
		return;
	hl = (ip[0] & 15u) * 4;
	tot = ld_be16(ip + 2);
	if (hl < IP4_HLEN || hl > len - ETH_HLEN)
		return;
	st_raw16(ip + 10, 0);
	st_raw16(ip + 10, csum_fold(csum_acc(0, ip, hl)));
	if (tot < hl || tot > len - ETH_HLEN)
		return;
	uint8_t *l4 = ip + hl;
	size_t l4len = tot - hl;
	uint64_t acc = csum_pseudo4(ld_addr(ip + 12), ld_addr(ip + 16), ip[9], (uint16_t) l4len);
	size_t off;

	switch (ip[9]) {
	case IP4_PROTO_ICMP:
		acc = 0;
		off = 2;
		break;
	case IP4_PROTO_UDP:
		off = 6;
		if (l4len >= 8 && ld_be16(l4 + 4) >= 8 && ld_be16(l4 + 4) <= l4len) {
			l4len = ld_be16(l4 + 4);
			acc = csum_pseudo4(ld_addr(ip + 12), ld_addr(ip + 16), 17,
					   (uint16_t) l4len);
		}
		break;
	case IP4_PROTO_TCP:
		off = 16;
		break;
	default:
		return;
	}
	if (l4len < off + 2)
		return;
	st_raw16(l4 + off, 0);
	st_raw16(l4 + off, csum_fold(csum_acc(acc, l4, l4len)));
}

/* What we send must be well-formed. */
static void check_output(struct txq *q, const struct iface *ifc)
{
	const uint8_t *f;
	uint32_t len;

	while ((f = txq_peek(q, &len))) {
		struct eth_view e;
		struct ip4_view ip;

		check(len >= ETH_ZLEN && len <= ETH_HLEN + ifc->mtu);
		check(eth_parse(f, len, &e) == 0);
		check(!memcmp(e.src, ifc->mac, ETH_ALEN));
		if (e.type == ETH_P_ARP) {
			struct arp_view a;

			check(arp_parse(e.payload, e.payload_len, &a) == 0);
		} else {
			check(e.type == ETH_P_IPV4);
			check(ip4_parse(e.payload, e.payload_len, 0, &ip) == 0);
			check(!ip4_is_fragment(&ip) && ip.src == ifc->ip);
			if (ip.proto == IP4_PROTO_ICMP) {
				struct icmp_view v;

				check(icmp_parse(ip.payload, ip.payload_len, 0, &v) == 0);
			}
		}
		txq_pop(q);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct txq q;
	static uint8_t frame[2048];
	struct iface ifc;
	struct iface_config c = {
		.mac = {2, 0, 0, 0, 0, 1},
		.ip = 0x010012c6, /* 198.18.0.1 */
		.prefix_len = 24,
		.gateway = 0xfe0012c6,
		.mtu = 1500,
		.neigh_entries = 4,
		.pending_frames = 6,
		.pending_per_neigh = 2,
		.icmp_burst = 20,
	};
	struct iface_hooks h = {
		.udp_input = on_udp, .tcp_input = on_tcp, .icmp_error = on_icmp_err};
	uint64_t now = 0;
	uint8_t mode;

	if (!q.mem && txq_init(&q, 64, 2048) != 0)
		abort();
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	if (iface_init(&ifc, &c, txq_dev(&q), &h) != 0)
		abort();
	while (size >= 3) {
		size_t len = ld_be16(data + 1);

		now += (uint64_t) data[0] * (IFACE_NS_PER_S / 8);
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len > sizeof(frame))
			len = sizeof(frame);
		/* An exact-size heap copy would be stricter, but the static frame plus the
		 * inside() checks keep the run fast and still catch any view past len. */
		memcpy(frame, data, len);
		if (mode & 1)
			repair(frame, len);
		frame_lo = frame;
		frame_hi = frame + len;
		iface_poll(&ifc, now);
		iface_input(&ifc, now, frame, len,
			    mode & 2 ? IFACE_RX_IP_CSUM_OK | IFACE_RX_L4_CSUM_OK : 0);
		check_output(&q, &ifc);
		data += len;
		size -= len;
	}
	/* Let every timer run out: retries, probes, failures. */
	for (int i = 0; i < 16; i++) {
		now += 2 * IFACE_NS_PER_S;
		iface_poll(&ifc, now);
		check_output(&q, &ifc);
	}
	iface_fini(&ifc);
	return 0;
}
