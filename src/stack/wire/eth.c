/* Ethernet II header parse and emit. */
#include "stack/wire/eth.h"

#include <errno.h>
#include <string.h>

#include "stack/wire/bytes.h"

const uint8_t eth_broadcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

int eth_parse(const void *frame, size_t len, struct eth_view *v)
{
	const uint8_t *p = frame;

	if (len < ETH_HLEN)
		return -EBADMSG;
	v->dst = p;
	v->src = p + ETH_ALEN;
	v->type = ld_be16(p + 2 * ETH_ALEN);
	v->payload = p + ETH_HLEN;
	v->payload_len = len - ETH_HLEN;
	switch (v->type) {
	case ETH_P_8021Q:
	case ETH_P_8021AD:
	case ETH_P_QINQ:
		return -EOPNOTSUPP;
	}
	if (v->type < 0x0600)
		return -EOPNOTSUPP;
	return 0;
}

int eth_emit(void *buf, size_t cap, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	uint8_t *p = buf;

	if (cap < ETH_HLEN)
		return -EMSGSIZE;
	memcpy(p, dst, ETH_ALEN);
	memcpy(p + ETH_ALEN, src, ETH_ALEN);
	st_be16(p + 2 * ETH_ALEN, type);
	return ETH_HLEN;
}
