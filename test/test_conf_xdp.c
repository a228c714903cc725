/*
 * The pool parameters on an AF_XDP port that XRING_PORTS-style specs open (xring_port_add):
 * buffers, frame size, ring sizes, the memory limit and the alloc hooks, on a veth in a network
 * namespace (xdp_topo.h).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <xring.h>

#include "nic/pool_mem.h"
#include "nic/ports.h"
#include "nic/xdp/xdp_port.h"
#include "xdp_topo.h"

static size_t region_len, region_page;
static int regions, allocs, frees;

static void on_region(void *addr, size_t len, size_t page, void *arg)
{
	region_len = len;
	region_page = page;
	regions++;
}

static void *hook_alloc(size_t len, size_t align, void *arg)
{
	allocs++;
	return aligned_alloc(align, len);
}

static void hook_free(void *p, size_t len, void *arg)
{
	frees++;
	free(p);
}

static void open_port(const struct topo *t, int want)
{
	char spec[64];
	int ret;

	topo_enter(t->ns_a);
	snprintf(spec, sizeof(spec), "xdp:dev=%s,mode=skb", t->if_a);
	ret = xring_port_add(spec);
	CHECK(ret == want, "xring_port_add: %d, want %d", ret, want);
}

static void body_sizes(const struct topo *t)
{
	struct xring_alloc_hooks h = {.region = on_region};
	struct port_xdp_info info;
	struct xport *xp;

	setenv("XRING_RX_BUFS", "500", 1);
	setenv("XRING_TX_BUFS", "256", 1);
	setenv("XRING_RX_QUEUE_DEPTH", "100", 1);
	setenv("XRING_TX_QUEUE_DEPTH", "64", 1);
	setenv("XRING_BUF_SIZE", "3000", 1);
	setenv("XRING_HUGEPAGES", "off", 1);
	CHECK(xring_set_alloc_hooks(&h) == 0);
	open_port(t, 0);
	xp = ports_by_addr(inet_addr(TOPO_IP_A));
	CHECK(xp != NULL);
	CHECK(port_xdp_info(xp->port, &info) == 0);
	CHECK(info.rx_frames == 512, "rx frames %u", info.rx_frames);
	CHECK(info.tx_frames == 256, "tx frames %u", info.tx_frames);
	CHECK(info.frame_size == 4096, "frame size %u", info.frame_size);
	CHECK(info.rx_ring == 128, "rx ring %u", info.rx_ring);
	CHECK(info.tx_ring == 64, "tx ring %u", info.tx_ring);
	CHECK(regions == 1 && region_len == (512 + 256) * 4096, "%d region(s), %zu bytes", regions,
	      region_len);
	CHECK(region_page == 4096);
	ports_reset();
	CHECK(pmem_in_use() == 0);
}

Test(conf_xdp, buffers_frame_size_and_ring_depths_shape_each_queue)
{
	topo_run(1, 60, body_sizes);
}

static void body_limit(const struct topo *t)
{
	/* One queue's UMEM: (512 + 256) x 4096 = 3 MiB, above 3000K. */
	setenv("XRING_RX_BUFS", "512", 1);
	setenv("XRING_TX_BUFS", "256", 1);
	setenv("XRING_RX_QUEUE_DEPTH", "128", 1);
	setenv("XRING_TX_QUEUE_DEPTH", "64", 1);
	setenv("XRING_BUF_SIZE", "3000", 1);
	setenv("XRING_MEM_LIMIT", "3000K", 1);
	open_port(t, -ENOMEM);
	CHECK(pmem_in_use() == 0);
}

Test(conf_xdp, mem_limit_refuses_an_umem_beyond_it)
{
	topo_run(1, 60, body_limit);
}

static void body_hooks(const struct topo *t)
{
	struct xring_alloc_hooks h = {hook_alloc, hook_free, on_region, NULL};

	setenv("XRING_RX_BUFS", "256", 1);
	setenv("XRING_TX_BUFS", "256", 1);
	setenv("XRING_RX_QUEUE_DEPTH", "64", 1);
	setenv("XRING_TX_QUEUE_DEPTH", "64", 1);
	CHECK(xring_set_alloc_hooks(&h) == 0);
	open_port(t, 0);
	CHECK(allocs == 1 && regions == 1, "%d alloc(s), %d region(s)", allocs, regions);
	CHECK(xring_set_alloc_hooks(NULL) == -EBUSY);
	ports_reset();
	CHECK(frees == 1, "%d free(s)", frees);
}

Test(conf_xdp, the_umem_lives_in_the_application_s_memory_through_the_hooks)
{
	topo_run(1, 60, body_hooks);
}

/* Waits (bounded) for n CQEs; returns how many had res == want. */
static int reap(struct xring *ring, int n, int want)
{
	struct __kernel_timespec ts = {.tv_sec = 5};
	struct xring_cqe *cqe;
	int ok = 0;

	for (int i = 0; i < n; i++) {
		if (xring_wait_cqe_timeout(ring, &cqe, &ts))
			break;
		ok += cqe->res == want;
		xring_cqe_seen(ring, cqe);
	}
	return ok;
}

static void body_short_tx_ring(const struct topo *t)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(7000)};
	struct timeval tv = {.tv_sec = 2};
	char buf[64] = "burst";
	struct xring ring;
	struct xport *xp;
	int kfd, fd, got = 0;

	inet_pton(AF_INET, TOPO_IP_B, &peer.sin_addr);
	topo_enter(t->ns_b);
	kfd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(bind(kfd, (struct sockaddr *) &peer, sizeof(peer)) == 0);
	setsockopt(kfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("XRING_TX_QUEUE_DEPTH", "16", 1);
	open_port(t, 0);
	xp = ports_by_addr(inet_addr(TOPO_IP_A));
	CHECK(xring_queue_init(256, &ring, 0) == 0);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	xring_prep_connect(xring_get_sqe(&ring), fd, (struct sockaddr *) &peer, sizeof(peer));
	xring_submit(&ring);
	CHECK(reap(&ring, 1, 0) == 1);
	/* One datagram resolves the neighbour; then 200 in one submission, before any doorbell:
	 * far more than the 16-entry send ring holds. */
	xring_prep_send(xring_get_sqe(&ring), fd, buf, 8, 0);
	xring_submit(&ring);
	CHECK(reap(&ring, 1, 8) == 1);
	CHECK(recv(kfd, buf, sizeof(buf), 0) == 8);
	for (int i = 0; i < 200; i++)
		xring_prep_send(xring_get_sqe(&ring), fd, buf, 8, 0);
	xring_submit(&ring);
	CHECK(reap(&ring, 200, 8) == 200);
	while (got < 200 && recv(kfd, buf, sizeof(buf), 0) == 8)
		got++;
	CHECK(got == 200, "%d of 200 datagrams arrived", got);
	CHECK(xp->port->queues[0]->stats.tx_drops == 0, "%llu dropped",
	      (unsigned long long) xp->port->queues[0]->stats.tx_drops);
	xring_queue_exit(&ring);
	ports_reset();
}

Test(conf_xdp, a_send_ring_shorter_than_a_burst_drains_instead_of_dropping)
{
	topo_run(1, 60, body_short_tx_ring);
}
