/*
 * The statistics file reader (stats/shm_read.c) on arbitrary bytes as the mapped file: whatever
 * the file says, xstats_read() must stay inside it, and every block it returns must format.
 * The first input byte chooses whether the header's magic, version, readiness and size are made
 * right, so the search reaches the blocks instead of stopping at the magic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats/shm_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xstats_view v;
	char line[8192];
	uint8_t *file;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	/* A mapping is page-aligned; malloc is aligned enough for the reader's 8-byte loads. */
	file = malloc(len ? len : 1);
	if (!file)
		return 0;
	memcpy(file, data + 1, len);
	if ((data[0] & 1) && len >= sizeof(struct xstats_hdr)) {
		struct xstats_hdr *h = (struct xstats_hdr *) file;

		h->magic = XSTATS_MAGIC;
		h->version = XSTATS_VERSION;
		h->ready = 1;
		h->file_size = len;
	}
	if (xstats_read(file, len, &v) == 0) {
		for (unsigned i = 0; i < v.nrings; i++)
			xstats_fmt_ring(&v.rings[i], line, sizeof(line));
		for (unsigned i = 0; i < v.nports; i++)
			xstats_fmt_port(&v.ports[i], 0, XSTATS_PORT_COUNTERS, line, sizeof(line));
		for (unsigned i = 0; i < v.nsocks; i++)
			xstats_fmt_sock(&v.socks[i], line, sizeof(line));
		xstats_view_free(&v);
	}
	free(file);
	return 0;
}
