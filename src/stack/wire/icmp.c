/* ICMPv4 parse and emit. */
#include "stack/wire/icmp.h"

#include <errno.h>
#include <string.h>

#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"
#include "stack/wire/ipv4.h"

static int parse_quote(const uint8_t *q, size_t len, struct icmp_view *v)
{
	unsigned hl;

	if (len < IP4_HLEN || q[0] >> 4 != 4)
		return -EBADMSG;
	hl = (q[0] & 0x0f) * 4u;
	/* The quoted total length describes the original datagram, not the quote, and a short
	 * original leaves fewer than 8 bytes after the header: only the header must be whole. */
	if (hl < IP4_HLEN || len < hl)
		return -EBADMSG;
	v->orig.hdr = q;
	v->orig.hdr_len = (uint8_t) hl;
	v->orig.proto = q[9];
	v->orig.src = ld_addr(q + 12);
	v->orig.dst = ld_addr(q + 16);
	v->orig.l4 = q + hl;
	v->orig.l4_len = (uint8_t) (len - hl < 8 ? len - hl : 8);
	return 0;
}

int icmp_parse(const void *buf, size_t len, unsigned flags, struct icmp_view *v)
{
	const uint8_t *p = buf;

	if (len < ICMP_HLEN)
		return -EBADMSG;
	if (!(flags & ICMP_CSUM_OK) && csum_fold(csum_acc(0, p, len)) != 0)
		return -EILSEQ;
	memset(&v->orig, 0, sizeof(v->orig));
	v->type = p[0];
	v->code = p[1];
	v->rest = ld_be32(p + 4);
	v->id = ld_be16(p + 4);
	v->seq = ld_be16(p + 6);
	v->body = p + ICMP_HLEN;
	v->body_len = len - ICMP_HLEN;
	if (icmp_is_error(v->type))
		return parse_quote(v->body, v->body_len, v);
	return 0;
}

static int emit(uint8_t *p, size_t cap, uint8_t type, uint8_t code, uint32_t rest, const void *data,
		size_t data_len)
{
	if (cap < ICMP_HLEN || data_len > cap - ICMP_HLEN || data_len > 65535 - 28)
		return -EMSGSIZE;
	if (data_len)
		memmove(p + ICMP_HLEN, data, data_len);
	p[0] = type;
	p[1] = code;
	st_raw16(p + 2, 0);
	st_be32(p + 4, rest);
	st_raw16(p + 2, csum_fold(csum_acc(0, p, ICMP_HLEN + data_len)));
	return (int) (ICMP_HLEN + data_len);
}

int icmp_emit_echo(void *buf, size_t cap, uint8_t type, uint16_t id, uint16_t seq, const void *data,
		   size_t data_len)
{
	return emit(buf, cap, type, 0, (uint32_t) id << 16 | seq, data, data_len);
}

int icmp_emit_error(void *buf, size_t cap, uint8_t type, uint8_t code, uint32_t rest,
		    const void *orig, size_t orig_len)
{
	return emit(buf, cap, type, code, rest, orig, orig_len);
}
