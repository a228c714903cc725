/*
 * Ethernet II frames. The wire layer parses and emits; it keeps no state and makes no policy
 * (which destinations are ours is the interface's business).
 *
 * The error, byte-order and view conventions shared by every wire header are in wire.h.
 */
#ifndef XRING_STACK_WIRE_ETH_H
#define XRING_STACK_WIRE_ETH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_ZLEN 60 /* minimum frame without FCS; shorter frames are padded on output */

#define ETH_P_IPV4   0x0800
#define ETH_P_ARP    0x0806
#define ETH_P_8021Q  0x8100
#define ETH_P_8021AD 0x88a8
#define ETH_P_QINQ   0x9100 /* pre-standard QinQ, still seen */

struct eth_view {
	const uint8_t *dst, *src; /* ETH_ALEN bytes each */
	uint16_t type;            /* EtherType, host order */
	const uint8_t *payload;
	size_t payload_len; /* everything after the header, link padding included */
};

/*
 * Parse an Ethernet II header (no FCS). A VLAN-tagged frame (802.1Q, 802.1ad, QinQ) gives
 * -EOPNOTSUPP with v->type set to the tag's TPID so the caller can count it; its payload is
 * never offered as if it were untagged. An 802.3 length field (< 0x0600) gives -EOPNOTSUPP too.
 */
int eth_parse(const void *frame, size_t len, struct eth_view *v);

/* Write an Ethernet II header at buf. Returns ETH_HLEN or -EMSGSIZE when cap is too small. */
int eth_emit(void *buf, size_t cap, const uint8_t *dst, const uint8_t *src, uint16_t type);

static inline bool eth_is_broadcast(const uint8_t *a)
{
	return (a[0] & a[1] & a[2] & a[3] & a[4] & a[5]) == 0xff;
}

/* Group bit: multicast or broadcast. */
static inline bool eth_is_multicast(const uint8_t *a)
{
	return a[0] & 1;
}

static inline bool eth_is_zero(const uint8_t *a)
{
	return (a[0] | a[1] | a[2] | a[3] | a[4] | a[5]) == 0;
}

extern const uint8_t eth_broadcast[ETH_ALEN];

#endif
