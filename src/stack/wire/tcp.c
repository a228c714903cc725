/* TCP header and option parse and emit. */
#include "stack/wire/tcp.h"

#include <errno.h>
#include <string.h>

#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"
#include "stack/wire/ipv4.h"

int tcp_parse(const void *buf, size_t len, uint32_t src, uint32_t dst, unsigned flags,
	      struct tcp_view *v)
{
	const uint8_t *p = buf;
	unsigned hl;

	if (len < TCP_HLEN)
		return -EBADMSG;
	hl = (p[12] >> 4) * 4u;
	if (hl < TCP_HLEN || hl > len)
		return -EBADMSG;
	if (len > 65535 - IP4_HLEN)
		return -EBADMSG;
	if (!(flags & TCP_CSUM_OK)) {
		uint64_t acc = csum_pseudo4(src, dst, IP4_PROTO_TCP, (uint16_t) len);

		if (csum_fold(csum_acc(acc, p, len)) != 0)
			return -EILSEQ;
	}
	v->sport = ld_be16(p);
	v->dport = ld_be16(p + 2);
	v->seq = ld_be32(p + 4);
	v->ack = ld_be32(p + 8);
	v->flags = (uint16_t) ((p[12] & 1u) << 8 | p[13]);
	v->window = ld_be16(p + 14);
	v->urg = ld_be16(p + 18);
	v->hdr_len = (uint8_t) hl;
	v->opts = p + TCP_HLEN;
	v->opts_len = hl - TCP_HLEN;
	v->payload = p + hl;
	v->payload_len = len - hl;
	return 0;
}

int tcp_opts_parse(const uint8_t *opts, size_t len, struct tcp_opts *o)
{
	size_t i = 0;

	o->present = 0;
	o->nsack = 0;
	if (len > TCP_MAX_OPTS)
		return -EBADMSG;
	while (i < len) {
		uint8_t kind = opts[i], olen;
		const uint8_t *d;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2)
			return -EBADMSG;
		olen = opts[i + 1];
		if (olen < 2 || olen > len - i)
			return -EBADMSG;
		d = opts + i + 2;
		switch (kind) {
		case TCPOPT_MSS:
			if (olen != 4)
				return -EBADMSG;
			o->mss = ld_be16(d);
			o->present |= TCPO_MSS;
			break;
		case TCPOPT_WSCALE:
			if (olen != 3)
				return -EBADMSG;
			o->wscale = d[0] > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : d[0];
			o->present |= TCPO_WSCALE;
			break;
		case TCPOPT_SACK_PERM:
			if (olen != 2)
				return -EBADMSG;
			o->present |= TCPO_SACK_PERM;
			break;
		case TCPOPT_SACK: {
			unsigned n = (olen - 2u) / 8u;

			if ((olen - 2u) % 8u || n < 1 || n > TCP_MAX_SACK)
				return -EBADMSG;
			for (unsigned k = 0; k < n; k++) {
				o->sack[k].left = ld_be32(d + 8 * k);
				o->sack[k].right = ld_be32(d + 8 * k + 4);
			}
			o->nsack = (uint8_t) n;
			o->present |= TCPO_SACK;
			break;
		}
		case TCPOPT_TS:
			if (olen != 10)
				return -EBADMSG;
			o->ts_val = ld_be32(d);
			o->ts_ecr = ld_be32(d + 4);
			o->present |= TCPO_TS;
			break;
		default:
			break; /* unknown: skipped by its length */
		}
		i += olen;
	}
	return 0;
}

int tcp_opts_len(const struct tcp_opts *o)
{
	unsigned n = 0;

	if (o->present & TCPO_MSS)
		n += 4;
	if (o->present & TCPO_TS)
		n += 12;
	else if (o->present & TCPO_SACK_PERM)
		n += 4;
	if (o->present & TCPO_WSCALE)
		n += 4;
	if (o->present & TCPO_SACK) {
		if (o->nsack < 1 || o->nsack > TCP_MAX_SACK)
			return -EMSGSIZE;
		n += 4 + 8u * o->nsack;
	}
	if (n > TCP_MAX_OPTS)
		return -EMSGSIZE;
	return (int) n;
}

int tcp_opts_emit(uint8_t *buf, size_t cap, const struct tcp_opts *o)
{
	int len = tcp_opts_len(o);
	uint8_t *p = buf;

	if (len < 0 || (size_t) len > cap)
		return -EMSGSIZE;
	if (o->present & TCPO_MSS) {
		p[0] = TCPOPT_MSS;
		p[1] = 4;
		st_be16(p + 2, o->mss);
		p += 4;
	}
	if (o->present & TCPO_TS) {
		if (o->present & TCPO_SACK_PERM) {
			p[0] = TCPOPT_SACK_PERM;
			p[1] = 2;
		} else {
			p[0] = TCPOPT_NOP;
			p[1] = TCPOPT_NOP;
		}
		p[2] = TCPOPT_TS;
		p[3] = 10;
		st_be32(p + 4, o->ts_val);
		st_be32(p + 8, o->ts_ecr);
		p += 12;
	} else if (o->present & TCPO_SACK_PERM) {
		p[0] = TCPOPT_NOP;
		p[1] = TCPOPT_NOP;
		p[2] = TCPOPT_SACK_PERM;
		p[3] = 2;
		p += 4;
	}
	if (o->present & TCPO_WSCALE) {
		p[0] = TCPOPT_NOP;
		p[1] = TCPOPT_WSCALE;
		p[2] = 3;
		p[3] = o->wscale;
		p += 4;
	}
	if (o->present & TCPO_SACK) {
		p[0] = TCPOPT_NOP;
		p[1] = TCPOPT_NOP;
		p[2] = TCPOPT_SACK;
		p[3] = (uint8_t) (2 + 8 * o->nsack);
		p += 4;
		for (unsigned k = 0; k < o->nsack; k++) {
			st_be32(p, o->sack[k].left);
			st_be32(p + 4, o->sack[k].right);
			p += 8;
		}
	}
	return len;
}

int tcp_emit(void *buf, size_t cap, const struct tcp_hdr *h, const struct tcp_opts *o,
	     const void *payload, size_t payload_len, uint32_t src, uint32_t dst, unsigned flags)
{
	uint8_t *p = buf;
	int olen = o ? tcp_opts_len(o) : 0;
	size_t hl, total;
	uint64_t acc;

	if (olen < 0)
		return -EMSGSIZE;
	hl = TCP_HLEN + (size_t) olen;
	if (cap < hl || payload_len > cap - hl || payload_len > 65535 - IP4_HLEN - hl)
		return -EMSGSIZE;
	total = hl + payload_len;
	/* Move the payload first: it may overlap the header area we are about to write. */
	if (payload_len && payload != p + hl)
		memmove(p + hl, payload, payload_len);
	st_be16(p, h->sport);
	st_be16(p + 2, h->dport);
	st_be32(p + 4, h->seq);
	st_be32(p + 8, h->ack);
	p[12] = (uint8_t) ((hl / 4) << 4 | ((h->flags >> 8) & 1u));
	p[13] = (uint8_t) h->flags;
	st_be16(p + 14, h->window);
	st_raw16(p + 16, 0);
	st_be16(p + 18, h->urg);
	if (o)
		tcp_opts_emit(p + TCP_HLEN, (size_t) olen, o);
	acc = csum_pseudo4(src, dst, IP4_PROTO_TCP, (uint16_t) total);
	if (flags & TCP_CSUM_OK)
		st_raw16(p + 16, (uint16_t) ~csum_fold(acc));
	else
		st_raw16(p + 16, csum_fold(csum_acc(acc, p, total)));
	return (int) total;
}
