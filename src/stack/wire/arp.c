/* ARP packet parse and emit, Ethernet/IPv4 only. */
#include "stack/wire/arp.h"

#include <errno.h>
#include <string.h>

#include "stack/wire/bytes.h"
#include "stack/wire/eth.h"

int arp_parse(const void *buf, size_t len, struct arp_view *v)
{
	const uint8_t *p = buf;

	if (len < ARP_LEN)
		return -EBADMSG;
	if (ld_be16(p) != ARP_HRD_ETHER || ld_be16(p + 2) != ETH_P_IPV4 || p[4] != ETH_ALEN ||
	    p[5] != 4)
		return -EPROTONOSUPPORT;
	v->op = ld_be16(p + 6);
	if (v->op != ARP_OP_REQUEST && v->op != ARP_OP_REPLY)
		return -EOPNOTSUPP;
	v->sha = p + 8;
	v->spa = ld_addr(p + 14);
	v->tha = p + 18;
	v->tpa = ld_addr(p + 24);
	return 0;
}

int arp_emit(void *buf, size_t cap, uint16_t op, const uint8_t *sha, uint32_t spa,
	     const uint8_t *tha, uint32_t tpa)
{
	uint8_t *p = buf;

	if (cap < ARP_LEN)
		return -EMSGSIZE;
	st_be16(p, ARP_HRD_ETHER);
	st_be16(p + 2, ETH_P_IPV4);
	p[4] = ETH_ALEN;
	p[5] = 4;
	st_be16(p + 6, op);
	memcpy(p + 8, sha, ETH_ALEN);
	st_addr(p + 14, spa);
	if (tha)
		memcpy(p + 18, tha, ETH_ALEN);
	else
		memset(p + 18, 0, ETH_ALEN);
	st_addr(p + 24, tpa);
	return ARP_LEN;
}
