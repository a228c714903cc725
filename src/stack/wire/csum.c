/* The Internet checksum: a 64-bit ones'-complement accumulator over native-endian words. */
#include "stack/wire/csum.h"

#include <string.h>

static inline uint64_t add_carry(uint64_t acc, uint64_t w)
{
	acc += w;
	return acc + (acc < w); /* end-around carry keeps the sum ones'-complement */
}

uint64_t csum_acc(uint64_t acc, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t w;

	/* Four independent-ish words per round keep the adder busy on long payloads. */
	while (len >= 32) {
		uint64_t a, b, c, d;

		memcpy(&a, p, 8);
		memcpy(&b, p + 8, 8);
		memcpy(&c, p + 16, 8);
		memcpy(&d, p + 24, 8);
		acc = add_carry(acc, a);
		acc = add_carry(acc, b);
		acc = add_carry(acc, c);
		acc = add_carry(acc, d);
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		memcpy(&w, p, 8);
		acc = add_carry(acc, w);
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t v;

		memcpy(&v, p, 4);
		acc = add_carry(acc, v);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;

		memcpy(&v, p, 2);
		acc = add_carry(acc, v);
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd byte is the first byte of a word padded with zero (RFC 1071). */
		uint16_t v = 0;

		memcpy(&v, p, 1);
		acc = add_carry(acc, v);
	}
	return acc;
}
