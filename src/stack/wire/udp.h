/* UDP (RFC 768) over IPv4. */
#ifndef XRING_STACK_WIRE_UDP_H
#define XRING_STACK_WIRE_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UDP_HLEN 8

/* Parse and emit flags. */
#define UDP_CSUM_OK 1u /* parse: the device verified the checksum; emit: leave it to the device */
#define UDP_NO_CSUM 2u /* emit: send checksum 0 (none), as RFC 768 allows over IPv4 */

struct udp_view {
	uint16_t sport, dport; /* host order */
	uint16_t len;          /* header + payload, from the header */
	bool has_csum;         /* false when the sender sent 0 (no checksum) */
	const uint8_t *payload;
	size_t payload_len;
};

/*
 * Parse a UDP datagram: buf is the IPv4 payload, src/dst the IPv4 addresses for the
 * pseudo-header. -EBADMSG when len < 8, the UDP length is below 8 or beyond len; -EILSEQ when a
 * non-zero checksum does not verify. Bytes beyond the UDP length are ignored.
 */
int udp_parse(const void *buf, size_t len, uint32_t src, uint32_t dst, unsigned flags,
	      struct udp_view *v);

/*
 * Write the 8-byte header at buf for the payload_len bytes the caller already placed at
 * buf + UDP_HLEN, and the checksum over pseudo-header, header and payload (a computed 0 is sent
 * as 0xffff). With UDP_CSUM_OK the checksum field holds the folded pseudo-header sum, not
 * complemented, which is what checksum-offloading devices expect. Returns the datagram length
 * or -EMSGSIZE.
 */
int udp_emit(void *buf, size_t cap, uint16_t sport, uint16_t dport, uint32_t src, uint32_t dst,
	     size_t payload_len, unsigned flags);

#endif
