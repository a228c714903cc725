/*
 * IPv4 headers (RFC 791, host requirements of RFC 1122). Parsing checks the version, the header
 * length, the total length against the buffer and (unless the device did) the header checksum;
 * options are skipped by the header length, never interpreted. Fragments parse successfully and
 * are identified by ip4_is_fragment() so the caller can drop and count them: the stack does not
 * reassemble.
 */
#ifndef XRING_STACK_WIRE_IPV4_H
#define XRING_STACK_WIRE_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IP4_HLEN     20 /* without options */
#define IP4_MAX_HLEN 60

#define IP4_PROTO_ICMP 1
#define IP4_PROTO_TCP  6
#define IP4_PROTO_UDP  17

/* Flags and offset field, host order. */
#define IP4_DF       0x4000
#define IP4_MF       0x2000
#define IP4_OFF_MASK 0x1fff

/* Parse flags. */
#define IP4_CSUM_OK 1u /* the device verified the header checksum (PORT_F_RX_IP_CSUM_OK) */

struct ip4_view {
	const uint8_t *hdr; /* first byte of the header */
	uint8_t hdr_len;    /* bytes, 20..60 */
	uint8_t tos;        /* DSCP and ECN */
	uint8_t ttl;
	uint8_t proto;
	uint16_t total_len; /* header + payload, as the header says */
	uint16_t id;
	uint16_t frag;       /* flags and fragment offset (in 8-byte units), host order */
	uint32_t src, dst;   /* network order */
	const uint8_t *opts; /* hdr_len - 20 bytes of options, skipped */
	const uint8_t *payload;
	size_t payload_len; /* total_len - hdr_len; link padding beyond total_len excluded */
};

/*
 * Parse an IPv4 header at buf (len bytes available, link padding allowed). Returns 0,
 * -EPROTONOSUPPORT when the version is not 4, -EBADMSG when IHL < 5, the header or total length
 * exceeds the buffer, or total length is shorter than the header, -EILSEQ on a bad header
 * checksum (not checked with IP4_CSUM_OK).
 */
int ip4_parse(const void *buf, size_t len, unsigned flags, struct ip4_view *v);

static inline bool ip4_is_fragment(const struct ip4_view *v)
{
	return v->frag & (IP4_MF | IP4_OFF_MASK);
}

static inline bool ip4_df(const struct ip4_view *v)
{
	return v->frag & IP4_DF;
}

/* What ip4_emit() writes. */
struct ip4_hdr {
	uint32_t src, dst; /* network order */
	uint16_t id;
	uint8_t tos;
	uint8_t ttl;
	uint8_t proto;
	bool df;
	bool no_csum; /* leave the checksum 0 for the device to fill (PORT_F_TX_IP_CSUM) */
};

/*
 * Write a 20-byte header (no options) for a payload of payload_len bytes, checksum included.
 * Returns IP4_HLEN, or -EMSGSIZE when cap < IP4_HLEN or the total exceeds 65535.
 */
int ip4_emit(void *buf, size_t cap, const struct ip4_hdr *h, size_t payload_len);

/* Address classes, for the interface's martian checks. Addresses in network order. */
static inline bool ip4_is_multicast(uint32_t a)
{
	return (((const uint8_t *) &a)[0] & 0xf0) == 0xe0;
}

static inline bool ip4_is_loopback(uint32_t a)
{
	return ((const uint8_t *) &a)[0] == 127;
}

#define IP4_BROADCAST 0xffffffffu
#define IP4_ANY       0u

/* Network-order netmask for a prefix length 0..32. */
uint32_t ip4_mask(unsigned prefix_len);

#endif
