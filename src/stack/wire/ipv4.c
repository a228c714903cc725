/* IPv4 header parse and emit. */
#include "stack/wire/ipv4.h"

#include <errno.h>

#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"

int ip4_parse(const void *buf, size_t len, unsigned flags, struct ip4_view *v)
{
	const uint8_t *p = buf;
	unsigned hl;

	if (len < IP4_HLEN)
		return -EBADMSG;
	if (p[0] >> 4 != 4)
		return -EPROTONOSUPPORT;
	hl = (p[0] & 0x0f) * 4u;
	if (hl < IP4_HLEN || hl > len)
		return -EBADMSG;
	v->total_len = ld_be16(p + 2);
	if (v->total_len < hl || v->total_len > len)
		return -EBADMSG;
	if (!(flags & IP4_CSUM_OK) && csum_fold(csum_acc(0, p, hl)) != 0)
		return -EILSEQ;
	v->hdr = p;
	v->hdr_len = (uint8_t) hl;
	v->tos = p[1];
	v->id = ld_be16(p + 4);
	v->frag = ld_be16(p + 6);
	v->ttl = p[8];
	v->proto = p[9];
	v->src = ld_addr(p + 12);
	v->dst = ld_addr(p + 16);
	v->opts = p + IP4_HLEN;
	v->payload = p + hl;
	v->payload_len = v->total_len - hl;
	return 0;
}

int ip4_emit(void *buf, size_t cap, const struct ip4_hdr *h, size_t payload_len)
{
	uint8_t *p = buf;

	if (cap < IP4_HLEN || payload_len > 65535 - IP4_HLEN)
		return -EMSGSIZE;
	p[0] = 0x45;
	p[1] = h->tos;
	st_be16(p + 2, (uint16_t) (IP4_HLEN + payload_len));
	st_be16(p + 4, h->id);
	st_be16(p + 6, h->df ? IP4_DF : 0);
	p[8] = h->ttl;
	p[9] = h->proto;
	st_raw16(p + 10, 0);
	st_addr(p + 12, h->src);
	st_addr(p + 16, h->dst);
	if (!h->no_csum)
		st_raw16(p + 10, csum_fold(csum_acc(0, p, IP4_HLEN)));
	return IP4_HLEN;
}

uint32_t ip4_mask(unsigned prefix_len)
{
	if (prefix_len == 0)
		return 0;
	if (prefix_len > 32)
		prefix_len = 32;
	return wire_be32(0xffffffffu << (32 - prefix_len));
}
