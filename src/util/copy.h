/* Copies whose destination another CPU or a device reads next. */
#ifndef XRING_UTIL_COPY_H
#define XRING_UTIL_COPY_H

#include <stddef.h>

/*
 * Copies n bytes into memory that this CPU will not read again: a send buffer another process
 * (memif) or a NIC (DMA) takes next. Copies of at least COPY_OUT_MIN bytes use non-temporal
 * stores, which go to memory without first taking each line from the cache that holds it —
 * for a memif buffer that is the peer's CPU, which read it on its last trip round the ring, and
 * that cross-core fetch per line is what a plain copy waits on. Smaller copies use memcpy(): a
 * message of a few lines is cheaper to hand over cache to cache than through memory.
 */
#define COPY_OUT_MIN 2048
void copy_out(void *dst, const void *src, size_t n);

#endif
