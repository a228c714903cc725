/*
 * ICMPv4 (RFC 792): echo request and reply, and the error messages whose payload quotes the
 * offending datagram (destination unreachable, time exceeded, parameter problem, source quench).
 * For those the quoted IPv4 header and up to the first 8 bytes of its payload (ports, or the
 * TCP sequence number) are exposed through bounds-checked fields; nothing else of the quote is
 * trusted. The quote may hold fewer than 8 payload bytes (the original datagram was that short,
 * as our own errors about short datagrams are): check orig.l4_len before reading ports.
 */
#ifndef XRING_STACK_WIRE_ICMP_H
#define XRING_STACK_WIRE_ICMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ICMP_HLEN 8

enum {
	ICMP_ECHO_REPLY = 0,
	ICMP_DEST_UNREACH = 3,
	ICMP_SOURCE_QUENCH = 4,
	ICMP_ECHO_REQUEST = 8,
	ICMP_TIME_EXCEEDED = 11,
	ICMP_PARAM_PROBLEM = 12,
};

/* ICMP_DEST_UNREACH codes */
enum {
	ICMP_NET_UNREACH = 0,
	ICMP_HOST_UNREACH = 1,
	ICMP_PROT_UNREACH = 2,
	ICMP_PORT_UNREACH = 3,
	ICMP_FRAG_NEEDED = 4,
	ICMP_NET_PROHIBITED = 9,
	ICMP_HOST_PROHIBITED = 10,
	ICMP_ADMIN_PROHIBITED = 13,
};

/* Parse flags. */
#define ICMP_CSUM_OK 1u /* skip the checksum check */

struct icmp_view {
	uint8_t type, code;
	uint32_t rest;    /* bytes 4..7, host order: echo id << 16 | seq, next-hop MTU, pointer */
	uint16_t id, seq; /* echo only */
	const uint8_t *body; /* everything after the 8-byte header */
	size_t body_len;
	/* Error messages only (icmp_is_error()): the quoted datagram. */
	struct {
		const uint8_t *hdr; /* quoted IPv4 header, hdr_len bytes */
		uint8_t hdr_len;
		uint8_t proto;
		uint32_t src, dst; /* network order */
		const uint8_t *l4; /* start of the quoted payload */
		uint8_t l4_len;    /* bytes at l4, 0..8: more may be there but are not exposed */
	} orig;
};

static inline bool icmp_is_error(uint8_t type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAM_PROBLEM || type == ICMP_SOURCE_QUENCH;
}

/*
 * Parse an ICMP message (the IPv4 payload). Returns 0, -EBADMSG when shorter than 8 bytes or,
 * for an error message, when the quote does not start with a whole IPv4 header (version 4,
 * IHL >= 5, all IHL words present), -EILSEQ on a bad checksum. Other types parse with only type,
 * code, rest and body set.
 */
int icmp_parse(const void *buf, size_t len, unsigned flags, struct icmp_view *v);

/* Write an echo message (type ICMP_ECHO_REQUEST or ICMP_ECHO_REPLY) with data; data may alias
 * buf + ICMP_HLEN. Returns the message length or -EMSGSIZE. */
int icmp_emit_echo(void *buf, size_t cap, uint8_t type, uint16_t id, uint16_t seq, const void *data,
		   size_t data_len);

/* Write an error message quoting orig_len bytes of the offending datagram (the caller chooses
 * how much: RFC 1812 4.3.2.3 allows up to 576 bytes of ICMP datagram). rest is host order
 * (next-hop MTU for ICMP_FRAG_NEEDED, otherwise usually 0). Returns the length or -EMSGSIZE. */
int icmp_emit_error(void *buf, size_t cap, uint8_t type, uint8_t code, uint32_t rest,
		    const void *orig, size_t orig_len);

#endif
