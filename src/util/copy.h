/* Copies whose destination another CPU or a device reads next. */
#ifndef XRING_UTIL_COPY_H
#define XRING_UTIL_COPY_H

#include <stddef.h>

/*
 * Copies n bytes into memory that this CPU will not read again: a send buffer another process
 * (memif) or a NIC (DMA) takes next. Copies of at least COPY_OUT_MIN bytes use non-temporal
 * stores, which go to memory without first taking each line from the cache that holds it —
 * for a memif buffer that is the peer's CPU, which read it on its last trip round the ring, and
 * that cross-core fetch per line is what a plain copy waits on. Smaller copies use memcpy():
 * a receiver waiting for a few KiB gets them sooner cache to cache than through memory (with
 * the threshold at 2 KiB, 32 pipelined 64-byte messages coalesced into one segment went through
 * memory and the pipelined demo lost a quarter of its messages per second).
 */
#define COPY_OUT_MIN 16384
void copy_out(void *dst, const void *src, size_t n);

#endif
