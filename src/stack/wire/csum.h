/*
 * The Internet checksum (RFC 1071) with incremental update (RFC 1624).
 *
 * Checksums are kept in *memory order*: the ones'-complement sum is independent of byte order
 * (RFC 1071 section 2(B)), so data is summed as native-endian words and the folded result is
 * stored into (or compared with) the packet's checksum field with a plain memcpy, never swapped.
 * A value computed by csum_fold() thus equals ld_raw16() of the field it belongs in.
 *
 * Use:
 *	uint64_t acc = csum_pseudo4(src, dst, IPPROTO_UDP, len);
 *	acc = csum_acc(acc, udp, len);
 *	st_raw16(udp + 6, csum_fold(acc));       (emit: field zeroed beforehand)
 *	ok = csum_fold(acc) == 0;                 (verify: field included in the sum)
 */
#ifndef XRING_STACK_WIRE_CSUM_H
#define XRING_STACK_WIRE_CSUM_H

#include <stddef.h>
#include <stdint.h>

#include "stack/wire/bytes.h"

/*
 * Add len bytes at data to the running sum acc (start with 0). Any alignment. Pieces may be
 * chained through acc, but every piece except the last must have an even length, otherwise the
 * bytes of the following pieces would be summed in the wrong lanes.
 */
uint64_t csum_acc(uint64_t acc, const void *data, size_t len);

/* Fold a running sum to 16 bits and complement it: the value that goes into a checksum field. */
static inline uint16_t csum_fold(uint64_t acc)
{
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffu) + (acc >> 16);
	acc = (acc & 0xffffu) + (acc >> 16);
	return (uint16_t) ~acc;
}

/* Running sum of the IPv4 pseudo-header (RFC 9293 3.1, RFC 768): addresses in network order,
 * proto and the L4 length (header + payload) as host numbers. */
static inline uint64_t csum_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len)
{
	return (uint64_t) src + dst + wire_be16((uint16_t) proto) + wire_be16(l4_len);
}

/*
 * RFC 1624 equation 3: the checksum field csum (memory order) after a 16-bit word of the
 * covered data changed from old_w to new_w (both as they sit in memory, read with ld_raw16()).
 */
static inline uint16_t csum_update16(uint16_t csum, uint16_t old_w, uint16_t new_w)
{
	uint64_t acc = (uint16_t) ~csum;

	acc += (uint16_t) ~old_w;
	acc += new_w;
	return csum_fold(acc);
}

/* The same for an aligned 32-bit word (an address): old and new as they sit in memory. */
static inline uint16_t csum_update32(uint16_t csum, uint32_t old_w, uint32_t new_w)
{
	uint64_t acc = (uint16_t) ~csum;

	acc += (uint32_t) ~old_w;
	acc += new_w;
	return csum_fold(acc);
}

#endif
