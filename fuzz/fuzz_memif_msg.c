/*
 * Fuzz the memif control channel, server side: each input is a sequence of records, one byte
 * saying which fd (if any) rides along, then a 128-byte message (short at the end of input:
 * zero-padded). Fds are real: sealed or unsealed memfds of fuzzer-chosen size, or eventfds, so
 * the region and ring checks and the mmap path all run. The connection is reset after each input.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nic/memif/memif.h"

static struct port *srv;

static int make_fd(uint8_t sel)
{
	int fd;

	switch (sel & 3) {
	case 0:
		return -1;
	case 1:
		return eventfd(0, EFD_CLOEXEC);
	default:
		fd = memfd_create("fz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return -1;
		if (ftruncate(fd, (off_t) (sel >> 2) * 4096) < 0) {
			close(fd);
			return -1;
		}
		/* ring cookies on every cache line, so rings can pass the CONNECT check */
		for (off_t pg = 0; pg < (off_t) (sel >> 2); pg++) {
			static uint32_t page[1024];

			for (unsigned i = 0; i < 1024; i += 16)
				page[i] = MEMIF_COOKIE;
			if (pwrite(fd, page, sizeof(page), pg * 4096) < 0)
				break;
		}
		if ((sel & 3) == 2)
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
		return fd;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct memif_msg m, disc;

	if (!srv) {
		char path[64];
		struct memif_config c = {.path = path, .role = MEMIF_ROLE_SERVER, .id = 0};

		snprintf(path, sizeof(path), "@xring-fuzz-msg-%d", getpid());
		if (memif_port_create(&c, &srv) < 0)
			return 0;
	}
	while (size > 0) {
		uint8_t sel = data[0];
		size_t n = size - 1 < sizeof(m) ? size - 1 : sizeof(m);

		memset(&m, 0, sizeof(m));
		memcpy(&m, data + 1, n);
		data += 1 + n;
		size -= 1 + n;
		if (memif_fuzz_server_msg(srv, &m, sizeof(m), make_fd(sel)) < 0)
			break;
		/* a link that came up carries a round of traffic checks too */
		if (memif_connected(srv)) {
			struct port_frame f[8];
			struct port_queue *q = srv->queues[0];
			int k = port_rx_poll(q, f, 8);

			if (k > 0)
				port_rx_release(q, f, (unsigned) k);
			k = port_tx_alloc(q, f, 8);
			if (k > 0) {
				for (int i = 0; i < k; i++)
					f[i].len = 0;
				port_tx_post(q, f, (unsigned) k);
			}
			port_tx_flush(q);
		}
	}
	memset(&disc, 0, sizeof(disc));
	disc.type = MEMIF_MSG_DISCONNECT;
	memif_fuzz_server_msg(srv, &disc, sizeof(disc), -1);
	return 0;
}
