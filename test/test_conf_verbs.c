/*
 * The pool parameters on a verbs port opened from a spec (xring_port_add), over softverbs: the
 * pool's size comes from XRING_RX_BUFS, XRING_TX_BUFS and XRING_BUF_SIZE (counts rounded up to
 * powers of two), it is taken through the alloc hooks and reported, and XRING_MEM_LIMIT refuses
 * it when too large. softverbs devices have no netdev, so the port has no address and the table
 * refuses it once open: the pool is seen coming and going.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include <xring.h>

#include "nic/pool_mem.h"
#include "softverbs.h"

static int allocs, frees, regions;
static size_t alloc_len, region_len;

static void *hook_alloc(size_t len, size_t align, void *arg)
{
	allocs++;
	alloc_len = len;
	return aligned_alloc(align, len);
}

static void hook_free(void *p, size_t len, void *arg)
{
	frees++;
	cr_expect_eq(len, alloc_len);
	free(p);
}

static void on_region(void *addr, size_t len, size_t page, void *arg)
{
	regions++;
	region_len = len;
}

static void setup(void)
{
	struct sv_dev_config dc = {.name = "svmlx0", .mac = {2, 0, 0x5e, 0, 0, 0xa}};

	sv_reset();
	cr_assert_eq(sv_add(&dc), 0);
	setenv("XRING_RX_BUFS", "300", 1);
	setenv("XRING_TX_BUFS", "100", 1);
	setenv("XRING_RX_QUEUE_DEPTH", "16", 1);
	setenv("XRING_TX_QUEUE_DEPTH", "16", 1);
	setenv("XRING_BUF_SIZE", "1K", 1);
}

static void teardown(void)
{
	cr_expect_eq(sv_live_objects(), 0, "verbs objects left behind");
	sv_reset();
}

TestSuite(conf_verbs, .init = setup, .fini = teardown);

Test(conf_verbs, the_pool_holds_the_buffers_the_parameters_ask_for_in_hooked_memory)
{
	struct xring_alloc_hooks h = {hook_alloc, hook_free, on_region, NULL};
	int ret;

	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	ret = xring_port_add("verbs:dev=svmlx0");
	cr_expect(ret == 0 || ret == -EINVAL, "xring_port_add: %d", ret);
	cr_expect_eq(allocs, 1);
	cr_expect_eq(alloc_len, (512 + 128) * 1024, "pool of %zu bytes", alloc_len);
	cr_expect_eq(regions, 1);
	cr_expect_eq(region_len, alloc_len);
	if (ret == -EINVAL)
		cr_expect_eq(frees, 1, "the refused port's pool went back through the hook");
}

Test(conf_verbs, mem_limit_refuses_a_pool_beyond_it)
{
	/* 640 KiB of buffers against 1 MiB: fits; twice the buffers do not. */
	setenv("XRING_RX_BUFS", "600", 1);
	setenv("XRING_TX_BUFS", "200", 1);
	setenv("XRING_MEM_LIMIT", "1M", 1);
	cr_expect_eq(xring_port_add("verbs:dev=svmlx0"), -ENOMEM);
	cr_expect_eq(pmem_in_use(), 0);
}
