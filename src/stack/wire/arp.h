/* ARP (RFC 826), IPv4 over Ethernet only: every other hardware or protocol type is rejected. */
#ifndef XRING_STACK_WIRE_ARP_H
#define XRING_STACK_WIRE_ARP_H

#include <stddef.h>
#include <stdint.h>

#define ARP_LEN        28 /* Ethernet/IPv4 ARP packet */
#define ARP_HRD_ETHER  1
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY   2

struct arp_view {
	uint16_t op;        /* ARP_OP_REQUEST or ARP_OP_REPLY */
	const uint8_t *sha; /* sender hardware address, ETH_ALEN bytes */
	uint32_t spa;       /* sender protocol address, network order */
	const uint8_t *tha;
	uint32_t tpa;
};

/*
 * Parse an ARP packet (the Ethernet payload; trailing link padding is ignored).
 * -EBADMSG when shorter than ARP_LEN, -EPROTONOSUPPORT for a hardware type other than Ethernet,
 * a protocol type other than IPv4 or address lengths other than 6 and 4, -EOPNOTSUPP for an
 * opcode other than request or reply (RARP, InARP).
 */
int arp_parse(const void *buf, size_t len, struct arp_view *v);

/* Write an ARP packet (ARP_LEN bytes) at buf. tha may be NULL (all zero, as in requests).
 * Returns ARP_LEN or -EMSGSIZE. */
int arp_emit(void *buf, size_t cap, uint16_t op, const uint8_t *sha, uint32_t spa,
	     const uint8_t *tha, uint32_t tpa);

#endif
