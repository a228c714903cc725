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
