/*
 * Fuzz the memif data path against a lying peer: a real server and client are connected in this
 * process; each input rewrites one side's view of a ring (head or tail, and descriptors) as a
 * hostile peer could, then drives the victim's queue operations. The victim must neither crash
 * nor touch memory outside its mappings (every delivered frame is read end to end); faults must
 * only drop the connection, after which the pair reconnects for the next input.
 *
 * Input: byte 0 picks the victim (server rx, client rx, server tx, client tx reap), bytes 1-2
 * the index value to store, byte 3 how many frames the client first sends honestly, the rest
 * descriptors (16 bytes each) written from slot 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nic/memif/memif_priv.h"

static struct port *srv, *cli;

static void bring_up(void)
{
	for (int i = 0; i < 100000 && !(memif_connected(srv) && memif_connected(cli)); i++) {
		((struct mport *) cli)->next_retry_ns = 0;
		memif_poll(srv);
		memif_poll(cli);
	}
	if (!memif_connected(srv) || !memif_connected(cli)) {
		fprintf(stderr, "fuzz_memif_ring: pair does not connect\n");
		_exit(1);
	}
}

static void setup(void)
{
	char path[64];
	struct memif_config c = {.path = path, .id = 5, .log2_ring = 4, .buf_size = 256};

	snprintf(path, sizeof(path), "@xring-fuzz-ring-%d", getpid());
	c.role = MEMIF_ROLE_SERVER;
	if (memif_port_create(&c, &srv) < 0)
		_exit(1);
	c.role = MEMIF_ROLE_CLIENT;
	c.retry_ms = 1;
	if (memif_port_create(&c, &cli) < 0)
		_exit(1);
	bring_up();
}

static volatile uint8_t sink;

static void touch(const struct port_frame *f, int n)
{
	for (int i = 0; i < n; i++) {
		const volatile uint8_t *b = f[i].data;

		if (f[i].len) {
			sink ^= b[0];
			sink ^= b[f[i].len - 1];
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct port_frame f[64];
	struct mq *sq, *cq;
	uint16_t val;
	int n;

	if (!srv)
		setup();
	if (size < 4)
		return 0;
	sq = &((struct mport *) srv)->q[0];
	cq = &((struct mport *) cli)->q[0];
	memcpy(&val, data + 1, 2);

	/* some honest traffic first, so rings are not empty */
	n = port_tx_alloc(&cq->pq, f, data[3] % 17);
	for (int i = 0; i < n; i++)
		f[i].len = 60;
	port_tx_post(&cq->pq, f, (unsigned) n);
	port_tx_flush(&cq->pq);

	switch (data[0] % 4) {
	case 0: /* hostile client: C2S head and descriptors, server receives */
		memcpy(cq->tx->desc, data + 4,
		       (size - 4) < 16u * cq->tx_size ? size - 4 : 16u * cq->tx_size);
		cq->tx->head = val;
		n = port_rx_poll(&sq->pq, f, 64);
		if (n > 0) {
			touch(f, n);
			port_rx_release(&sq->pq, f, (unsigned) n);
		}
		break;
	case 1: /* hostile server: S2C tail and descriptors, client receives */
		memcpy(cq->rx->desc, data + 4,
		       (size - 4) < 16u * cq->rx_size ? size - 4 : 16u * cq->rx_size);
		cq->rx->tail = val;
		n = port_rx_poll(&cq->pq, f, 64);
		if (n > 0) {
			touch(f, n);
			port_rx_release(&cq->pq, f, (unsigned) n);
		}
		break;
	case 2: /* hostile client: S2C head and descriptors, server sends into them */
		memcpy(cq->rx->desc, data + 4,
		       (size - 4) < 16u * cq->rx_size ? size - 4 : 16u * cq->rx_size);
		cq->rx->head = val;
		/* one slot, then the rest: the second lends the descriptor the first read ahead */
		n = port_tx_alloc(&sq->pq, f, 1);
		if (n == 1)
			n += port_tx_alloc(&sq->pq, f + 1, 63);
		for (int i = 0; i < n; i++) {
			if (f[i].len)
				memset(f[i].data, 0xab, f[i].len < 64 ? f[i].len : 64);
			f[i].len = f[i].len < 64 ? f[i].len : 64;
		}
		if (n > 0)
			port_tx_post(&sq->pq, f, (unsigned) n);
		port_tx_flush(&sq->pq);
		break;
	default: /* hostile server: C2S tail, client reclaims */
		cq->tx->tail = val;
		port_tx_reap(&cq->pq, NULL, 0);
		n = port_tx_alloc(&cq->pq, f, 64);
		for (int i = 0; i < n; i++)
			f[i].len = 60;
		if (n > 0)
			port_tx_post(&cq->pq, f, (unsigned) n);
		break;
	}
	/* a fresh link for the next input, so each input runs alone */
	memif_reset(srv);
	bring_up();
	return 0;
}
