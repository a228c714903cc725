#include "util/copy.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>

void copy_out(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t head;

	if (n < COPY_OUT_MIN) {
		memcpy(dst, src, n);
		return;
	}
	/* Streaming stores want 16-byte aligned destinations: the unaligned head by memcpy. */
	head = (16 - ((uintptr_t) d & 15)) & 15;
	memcpy(d, s, head);
	d += head;
	s += head;
	n -= head;
	for (; n >= 64; n -= 64, d += 64, s += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *) s);
		__m128i b = _mm_loadu_si128((const __m128i *) (s + 16));
		__m128i c = _mm_loadu_si128((const __m128i *) (s + 32));
		__m128i e = _mm_loadu_si128((const __m128i *) (s + 48));

		_mm_stream_si128((__m128i *) d, a);
		_mm_stream_si128((__m128i *) (d + 16), b);
		_mm_stream_si128((__m128i *) (d + 32), c);
		_mm_stream_si128((__m128i *) (d + 48), e);
	}
	memcpy(d, s, n);
	/* Streaming stores are weakly ordered: before the frame is published (a release store
	 * of a ring index), they must be visible. */
	_mm_sfence();
}

#else

void copy_out(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

#endif
