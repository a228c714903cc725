/* copy_out(): the copy into send buffers that bypasses the cache for large sizes. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "util/copy.h"

#define SPAN (3 * COPY_OUT_MIN + 256)

static uint8_t src[SPAN + 64], dst[SPAN + 128];

/* Every size around the threshold and the 64-byte loop's edges, at every destination
 * misalignment the streaming stores' aligned part must absorb: the bytes copied are exact and
 * no byte beside them changes. */
Test(copy, copies_exactly_at_every_size_and_alignment_and_touches_nothing_else)
{
	static const size_t sizes[] = {0,
				       1,
				       15,
				       63,
				       64,
				       65,
				       COPY_OUT_MIN - 1,
				       COPY_OUT_MIN,
				       COPY_OUT_MIN + 1,
				       COPY_OUT_MIN + 15,
				       COPY_OUT_MIN + 63,
				       2 * COPY_OUT_MIN + 17,
				       SPAN};

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t) (i * 131 + 7);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		for (size_t da = 0; da < 32; da++)
			for (size_t sa = 0; sa < 3; sa++) {
				size_t n = sizes[k];

				memset(dst, 0xa5, sizeof(dst));
				copy_out(dst + da, src + sa, n);
				cr_assert_eq(memcmp(dst + da, src + sa, n), 0,
					     "size %zu dst+%zu src+%zu", n, da, sa);
				for (size_t j = 0; j < da; j++)
					cr_assert_eq(dst[j], 0xa5, "before, size %zu dst+%zu", n,
						     da);
				for (size_t j = da + n; j < sizeof(dst); j++)
					cr_assert_eq(dst[j], 0xa5, "after, size %zu dst+%zu", n,
						     da);
			}
}
