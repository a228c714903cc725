/* The simulated link: per-frame faults from one seeded generator, a virtual clock. */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack/wire/bytes.h"

#define IP(a, b, c, d) ((uint32_t) wire_be32((uint32_t) (a) << 24 | (b) << 16 | (c) << 8 | (d)))

uint64_t sim_rand(struct sim *s)
{
	/* splitmix64: small, seedable, good enough for fault decisions. */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double sim_uniform(struct sim *s)
{
	return (double) (sim_rand(s) >> 11) / (double) (1ull << 53);
}

int sim_init(struct sim *s, uint64_t seed, const struct sim_faults *f,
	     const struct tcp_config *tcfg)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->rng = seed * 0x2545f4914f6cdd1dull + 1;
	s->f = *f;
	s->trace = getenv("TCP_SIM_TRACE") != NULL;
	s->now = 1000000000ull; /* not 0: 0 means "unarmed" to several timers */
	s->cap = 4096;
	s->fr = malloc(s->cap * sizeof(*s->fr));
	if (!s->fr)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		struct sim_node *n = &s->n[i];
		struct iface_config c = {.prefix_len = 24, .ip_id = (uint16_t) (seed + i)};
		struct iface_hooks h = {
			.tcp_input = tcp_input, .icmp_error = tcp_icmp_error, .ctx = &n->st};
		struct tcp_config tc = *tcfg;

		n->ip = IP(198, 18, 0, 1 + i);
		c.ip = n->ip;
		c.mac[0] = 2;
		c.mac[5] = (uint8_t) (1 + i);
		for (int k = 0; k < 16; k++)
			tc.secret[k] = (uint8_t) (sim_rand(s) >> 13);
		ret = txq_init(&n->q, 512, 1536);
		if (!ret)
			ret = iface_init(&n->ifc, &c, txq_dev(&n->q), &h);
		if (!ret)
			ret = tcp_init(&n->st, &tc, &n->ifc);
		if (ret)
			return ret;
	}
	return 0;
}

void sim_fini(struct sim *s)
{
	for (int i = 0; i < 2; i++) {
		tcp_fini(&s->n[i].st);
		iface_fini(&s->n[i].ifc);
		txq_fini(&s->n[i].q);
	}
	free(s->fr);
	s->fr = NULL;
}

/* One line per frame event when TCP_SIM_TRACE is set: the way to read a failing seed. */
static void trace(struct sim *s, const char *what, int from, const uint8_t *d, uint32_t len)
{
	struct eth_view e;
	struct ip4_view ip;
	struct tcp_view t;

	if (!s->trace)
		return;
	if (eth_parse(d, len, &e) < 0 || e.type != ETH_P_IPV4 ||
	    ip4_parse(e.payload, e.payload_len, 0, &ip) < 0 || ip.proto != IP4_PROTO_TCP ||
	    tcp_parse(ip.payload, ip.payload_len, ip.src, ip.dst, 0, &t) < 0) {
		fprintf(stderr, "%12.6f %-7s %d->%d non-TCP or bad frame, %u bytes\n",
			(double) s->now / 1e9, what, from, !from, len);
		return;
	}
	fprintf(stderr, "%12.6f %-7s %d->%d %s%s%s%s seq %u ack %u win %u len %zu\n",
		(double) s->now / 1e9, what, from, !from, t.flags & TCP_SYN ? "S" : ".",
		t.flags & TCP_FIN ? "F" : ".", t.flags & TCP_RST ? "R" : ".",
		t.flags & TCP_ACK ? "A" : ".", t.seq, t.ack, t.window, t.payload_len);
}

static void put(struct sim *s, uint8_t to, const uint8_t *data, uint32_t len, uint64_t at)
{
	struct sim_frame *fr;

	if (s->nfr == s->cap || len > sizeof(fr->data)) {
		s->link_full++;
		return;
	}
	fr = &s->fr[s->nfr++];
	fr->at = at;
	fr->len = len;
	fr->to = to;
	memcpy(fr->data, data, len);
}

/* sim_faults.wnd_wiggle: 0 to 15 units off the window of each TCP segment in turn, checksum
 * patched incrementally (RFC 1624). Never on a SYN, whose window is unscaled. */
static void wiggle(struct sim *s, uint8_t *b, uint32_t len)
{
	uint8_t *tcp;
	uint16_t w, d;
	uint32_t sum;

	if (len < 14 + 20 + 20 || ld_be16(b + 12) != ETH_P_IPV4 || b[14 + 9] != 6)
		return;
	tcp = b + 14 + (b[14] & 15) * 4;
	if (tcp + 20 > b + len || (tcp[13] & 0x02))
		return;
	w = ld_be16(tcp + 14);
	d = (uint16_t) (s->wiggled++ % 16);
	if (w <= d)
		return;
	sum = (uint16_t) ~ld_be16(tcp + 16) + (uint16_t) ~w + (uint16_t) (w - d);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	st_be16(tcp + 14, (uint16_t) (w - d));
	st_be16(tcp + 16, (uint16_t) ~sum);
}

static void drain(struct sim *s, int from)
{
	struct txq *q = &s->n[from].q;
	const uint8_t *d;
	uint32_t len;

	while ((d = txq_peek(q, &len))) {
		uint8_t buf[1536];
		int copies = 1;

		s->sent++;
		memcpy(buf, d, len < sizeof(buf) ? len : sizeof(buf));
		txq_pop(q);
		if (from == 1 && s->f.wnd_wiggle && len <= sizeof(buf))
			wiggle(s, buf, len);
		trace(s, "send", from, buf, len);
		if (sim_uniform(s) < s->f.drop) {
			s->dropped++;
			trace(s, "DROP", from, buf, len);
			continue;
		}
		if (sim_uniform(s) < s->f.dup) {
			s->duped++;
			trace(s, "DUP", from, buf, len);
			copies = 2;
		}
		for (int c = 0; c < copies; c++) {
			uint64_t at = s->now + s->f.delay_ns;

			if (sim_uniform(s) < s->f.reorder) {
				s->reordered++;
				at += s->f.reorder_ns ? sim_rand(s) % s->f.reorder_ns : 0;
			}
			/* Only IPv4 frames: corruption here stands for what gets past the Ethernet
			 * FCS, which IPv4 and TCP checksums must catch. ARP has no checksum, so a
			 * flipped sender address would poison the neighbour cache, a fault no
			 * real link delivers and TCP cannot repair. */
			if (len >= 14 && ld_be16(buf + 12) == ETH_P_IPV4 &&
			    sim_uniform(s) < s->f.corrupt) {
				uint32_t bit = (uint32_t) (sim_rand(s) % (len * 8u));
				uint8_t cb[1536];

				s->corrupted++;
				trace(s, "CORRUPT", from, buf, len);
				memcpy(cb, buf, len);
				cb[bit / 8] ^= (uint8_t) (1u << (bit % 8));
				put(s, (uint8_t) !from, cb, len, at);
				continue;
			}
			put(s, (uint8_t) !from, buf, len, at);
		}
	}
}

unsigned sim_step(struct sim *s)
{
	unsigned n = 0;

	drain(s, 0);
	drain(s, 1);
	for (;;) {
		int best = -1;

		/* Earliest due frame first; ties keep link order. */
		for (unsigned i = 0; i < s->nfr; i++)
			if (s->fr[i].at <= s->now && (best < 0 || s->fr[i].at < s->fr[best].at))
				best = (int) i;
		if (best < 0)
			break;
		{
			struct sim_frame f = s->fr[best];

			memmove(&s->fr[best], &s->fr[best + 1], (s->nfr - best - 1) * sizeof(f));
			s->nfr--;
			trace(s, "deliver", !f.to, f.data, f.len);
			iface_input(&s->n[f.to].ifc, s->now, f.data, f.len, 0);
			s->delivered++;
			n++;
		}
		drain(s, 0);
		drain(s, 1);
	}
	return n;
}

uint64_t sim_next(struct sim *s)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < s->nfr; i++)
		if (s->fr[i].at < next)
			next = s->fr[i].at;
	for (int i = 0; i < 2; i++) {
		uint64_t a = tcp_poll(&s->n[i].st, s->now);
		uint64_t b = iface_poll(&s->n[i].ifc, s->now);

		drain(s, i);
		if (a < next)
			next = a;
		if (b < next)
			next = b;
	}
	for (unsigned i = 0; i < s->nfr; i++)
		if (s->fr[i].at < next)
			next = s->fr[i].at;
	return next;
}
