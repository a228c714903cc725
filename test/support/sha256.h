/*
 * SHA-256 (FIPS 180-4) for tests that compare streams end to end: incremental, no allocation,
 * no dependency. Not constant-time and not for secrets.
 */
#ifndef XRING_TEST_SHA256_H
#define XRING_TEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
	unsigned nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[32]);
/* Lower-case hex of a digest, as sha256sum prints it: hex must hold 65 bytes. */
void sha256_hex(const uint8_t d[32], char hex[65]);

#endif
