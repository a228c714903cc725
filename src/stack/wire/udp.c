/* UDP parse and emit. */
#include "stack/wire/udp.h"

#include <errno.h>

#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"
#include "stack/wire/ipv4.h"

int udp_parse(const void *buf, size_t len, uint32_t src, uint32_t dst, unsigned flags,
	      struct udp_view *v)
{
	const uint8_t *p = buf;
	uint16_t ulen;

	if (len < UDP_HLEN)
		return -EBADMSG;
	ulen = ld_be16(p + 4);
	if (ulen < UDP_HLEN || ulen > len)
		return -EBADMSG;
	v->has_csum = ld_raw16(p + 6) != 0;
	if (v->has_csum && !(flags & UDP_CSUM_OK)) {
		uint64_t acc = csum_pseudo4(src, dst, IP4_PROTO_UDP, ulen);

		if (csum_fold(csum_acc(acc, p, ulen)) != 0)
			return -EILSEQ;
	}
	v->sport = ld_be16(p);
	v->dport = ld_be16(p + 2);
	v->len = ulen;
	v->payload = p + UDP_HLEN;
	v->payload_len = ulen - UDP_HLEN;
	return 0;
}

int udp_emit(void *buf, size_t cap, uint16_t sport, uint16_t dport, uint32_t src, uint32_t dst,
	     size_t payload_len, unsigned flags)
{
	uint8_t *p = buf;
	size_t ulen = UDP_HLEN + payload_len;
	uint64_t acc;
	uint16_t c;

	if (cap < UDP_HLEN || payload_len > cap - UDP_HLEN || ulen > 65535 - IP4_HLEN)
		return -EMSGSIZE;
	st_be16(p, sport);
	st_be16(p + 2, dport);
	st_be16(p + 4, (uint16_t) ulen);
	st_raw16(p + 6, 0);
	if (flags & UDP_NO_CSUM)
		return (int) ulen;
	acc = csum_pseudo4(src, dst, IP4_PROTO_UDP, (uint16_t) ulen);
	if (flags & UDP_CSUM_OK) {
		st_raw16(p + 6, (uint16_t) ~csum_fold(acc));
		return (int) ulen;
	}
	c = csum_fold(csum_acc(acc, p, ulen));
	st_raw16(p + 6, c ? c : 0xffff);
	return (int) ulen;
}
