/*
 * TCP segment headers (RFC 9293 3.1) and options: MSS (RFC 9293 3.7.1), window scale and
 * timestamps (RFC 7323), SACK-permitted and SACK blocks (RFC 2018). Only the format lives here;
 * what the options mean for a connection is the TCP layer's business.
 */
#ifndef XRING_STACK_WIRE_TCP_H
#define XRING_STACK_WIRE_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCP_HLEN       20
#define TCP_MAX_HLEN   60
#define TCP_MAX_OPTS   40
#define TCP_MAX_SACK   4  /* blocks that fit in 40 bytes of options */
#define TCP_MAX_WSCALE 14 /* RFC 7323 2.3 */

/* Header flags, host order (bit 8 is AE, RFC 9768, carried but not interpreted). */
enum {
	TCP_FIN = 0x01,
	TCP_SYN = 0x02,
	TCP_RST = 0x04,
	TCP_PSH = 0x08,
	TCP_ACK = 0x10,
	TCP_URG = 0x20,
	TCP_ECE = 0x40,
	TCP_CWR = 0x80,
	TCP_AE = 0x100,
};

/* Option kinds. */
enum {
	TCPOPT_EOL = 0,
	TCPOPT_NOP = 1,
	TCPOPT_MSS = 2,
	TCPOPT_WSCALE = 3,
	TCPOPT_SACK_PERM = 4,
	TCPOPT_SACK = 5,
	TCPOPT_TS = 8,
};

/* Parse and emit flags. */
#define TCP_CSUM_OK 1u /* parse: the device verified it; emit: leave it to the device */

struct tcp_view {
	uint16_t sport, dport; /* host order, like every numeric field here */
	uint32_t seq, ack;
	uint16_t flags;  /* TCP_* */
	uint16_t window; /* unscaled */
	uint16_t urg;
	uint8_t hdr_len;     /* 20..60 */
	const uint8_t *opts; /* hdr_len - 20 bytes, for tcp_opts_parse() */
	size_t opts_len;
	const uint8_t *payload;
	size_t payload_len;
};

/*
 * Parse a TCP segment: buf is the IPv4 payload (len bytes), src/dst the IPv4 addresses for the
 * pseudo-header. -EBADMSG when len < 20 or the data offset is below 5 or beyond len; -EILSEQ on a
 * bad checksum (not checked with TCP_CSUM_OK). Options are not parsed here.
 */
int tcp_parse(const void *buf, size_t len, uint32_t src, uint32_t dst, unsigned flags,
	      struct tcp_view *v);

/* Options present in struct tcp_opts. */
enum {
	TCPO_MSS = 1u << 0,
	TCPO_WSCALE = 1u << 1,
	TCPO_SACK_PERM = 1u << 2,
	TCPO_SACK = 1u << 3,
	TCPO_TS = 1u << 4,
};

struct tcp_sack_block {
	uint32_t left, right; /* host order sequence numbers */
};

struct tcp_opts {
	unsigned present; /* TCPO_* */
	uint16_t mss;
	uint8_t wscale; /* parse clamps to TCP_MAX_WSCALE, as RFC 7323 2.3 requires */
	uint8_t nsack;  /* 1..TCP_MAX_SACK with TCPO_SACK */
	struct tcp_sack_block sack[TCP_MAX_SACK];
	uint32_t ts_val, ts_ecr;
};

/*
 * Parse the options area (len bytes, at most TCP_MAX_OPTS). EOL ends the list, NOP is skipped,
 * unknown kinds are skipped by their length. -EBADMSG when a length byte is missing, below 2 or
 * runs past the end, or a known option has a length its format does not allow (MSS 4, window
 * scale 3, SACK-permitted 2, timestamps 10, SACK 2 + 8n with n = 1..4). A repeated option
 * replaces the earlier one. On error *o is unspecified.
 */
int tcp_opts_parse(const uint8_t *opts, size_t len, struct tcp_opts *o);

/* Bytes tcp_opts_emit() writes for o (a multiple of 4), or -EMSGSIZE above TCP_MAX_OPTS or for
 * an invalid nsack. */
int tcp_opts_len(const struct tcp_opts *o);

/*
 * Write the options in o, laid out the way common stacks do so middleboxes see familiar bytes:
 * MSS; SACK-permitted + timestamps (or NOP NOP timestamps, or NOP NOP SACK-permitted);
 * NOP window scale; NOP NOP SACK blocks. Returns the length (a multiple of 4) or -EMSGSIZE when
 * it exceeds cap or TCP_MAX_OPTS: the caller chooses nsack so that everything fits (3 blocks
 * with timestamps, 4 without).
 */
int tcp_opts_emit(uint8_t *buf, size_t cap, const struct tcp_opts *o);

/* What tcp_emit() writes. */
struct tcp_hdr {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint16_t flags, window, urg;
};

/*
 * Write a segment at buf: header, the options in o (may be NULL) and payload_len bytes from
 * payload (moved into place; payload may already sit at buf + header length), then the checksum
 * over the pseudo-header (src, dst) and the whole segment. With TCP_CSUM_OK the checksum field
 * holds the folded pseudo-header sum for the device to complete. Returns the segment length or
 * -EMSGSIZE.
 */
int tcp_emit(void *buf, size_t cap, const struct tcp_hdr *h, const struct tcp_opts *o,
	     const void *payload, size_t payload_len, uint32_t src, uint32_t dst, unsigned flags);

#endif
