/*
 * Loads and stores of network-order (big-endian) fields at any alignment. Packet buffers carry
 * no alignment promise (an IPv4 header follows a 14-byte Ethernet header), so every multi-byte
 * access goes through memcpy, which compilers turn into a plain load or store where the target
 * allows it, followed by a byte swap on little-endian hosts.
 */
#ifndef XRING_STACK_WIRE_BYTES_H
#define XRING_STACK_WIRE_BYTES_H

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define wire_be16(x) __builtin_bswap16(x)
#define wire_be32(x) __builtin_bswap32(x)
#else
#define wire_be16(x) ((uint16_t) (x))
#define wire_be32(x) ((uint32_t) (x))
#endif

static inline uint16_t ld_be16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return wire_be16(v);
}

static inline uint32_t ld_be32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return wire_be32(v);
}

static inline void st_be16(void *p, uint16_t v)
{
	v = wire_be16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void st_be32(void *p, uint32_t v)
{
	v = wire_be32(v);
	memcpy(p, &v, sizeof(v));
}

/* IPv4 addresses stay in network byte order everywhere (as in struct in_addr): copy, no swap. */
static inline uint32_t ld_addr(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void st_addr(void *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* 16-bit value exactly as it sits in memory (a checksum field): copy, no swap. */
static inline uint16_t ld_raw16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void st_raw16(void *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

#endif
