/* The tests' SHA-256 (support/sha256.c) against FIPS 180-4's examples and sha256sum. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support/sha256.h"

static void hex_of(const void *d, size_t len, size_t step, char hex[65])
{
	struct sha256 c;
	uint8_t out[32];

	sha256_init(&c);
	for (size_t i = 0; i < len; i += step)
		sha256_update(&c, (const uint8_t *) d + i, len - i < step ? len - i : step);
	sha256_final(&c, out);
	sha256_hex(out, hex);
}

Test(sha256, matches_the_fips_180_examples)
{
	char hex[65];

	hex_of("", 0, 1, hex);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex_of("abc", 3, 1, hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, 7, hex);
	cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(sha256, gives_the_same_digest_whatever_the_pieces)
{
	static uint8_t d[1000000];
	char a[65], b[65];

	memset(d, 'a', sizeof(d));
	hex_of(d, sizeof(d), sizeof(d), a);
	cr_assert_str_eq(a, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	for (size_t step = 1; step < 200; step += 13) {
		hex_of(d, 5000, step, a);
		hex_of(d, 5000, 5000, b);
		cr_assert_str_eq(a, b, "pieces of %zu", step);
	}
}

Test(sha256, agrees_with_sha256sum)
{
	static uint8_t d[100003];
	char mine[65], theirs[65] = {0}, path[] = "/tmp/xring-sha-XXXXXX", cmd[128];
	int fd = mkstemp(path);
	FILE *p;

	cr_assert(fd >= 0);
	for (size_t i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t) (i * 2654435761u >> 13);
	cr_assert_eq(write(fd, d, sizeof(d)), (ssize_t) sizeof(d));
	close(fd);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	p = popen(cmd, "r");
	cr_assert(p && fscanf(p, "%64s", theirs) == 1, "sha256sum ran");
	pclose(p);
	unlink(path);
	hex_of(d, sizeof(d), 4096, mine);
	cr_assert_str_eq(mine, theirs);
}
