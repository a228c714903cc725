#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nic/memlink.h"
#include "nic/pcap.h"
#include "port_frames.h"

static char dir[] = "/tmp/xring-pcap-XXXXXX";
static char path[256];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cap.pcap", dir);
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(pcap, .init = setup, .fini = teardown);

static uint64_t vclock(void *arg)
{
	return *(uint64_t *) arg;
}

/* Read file with tshark: lengths and nanosecond times of its records; returns the count. */
static unsigned tshark_read(const char *file, uint32_t *lens, char (*times)[32], unsigned max)
{
	char cmd[512], line[256];
	unsigned n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "tshark -r '%s' -T fields -e frame.len -e frame.time_epoch 2>/dev/null", file);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		cr_assert_lt(n, max);
		cr_assert_eq(sscanf(line, "%u %31s", &lens[n], times[n]), 2, "tshark: %s", line);
		n++;
	}
	cr_assert_eq(pclose(p), 0, "tshark failed on %s", file);
	return n;
}

Test(pcap, writes_every_frame_both_ways_as_tshark_reads_them)
{
	static uint32_t lens[200];
	static char times[200][32];
	struct port *e[2], *a;
	struct port_frame f[16];
	uint64_t now = 1700000000123456789ull, nrx, ntx;
	unsigned n;
	int got;

	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(pcapw_wrap(e[0], path, vclock, &now, &a), 0);
	for (uint32_t i = 0; i < 50; i++)
		cr_assert(pf_send(a->queues[0], i, 60 + i));
	for (uint32_t i = 0; i < 30; i++)
		cr_assert(pf_send(e[1]->queues[0], i, 1000 + i));
	for (unsigned k = 0; k < 30; k += (unsigned) got) {
		got = port_rx_poll(a->queues[0], f, 16);
		cr_assert_gt(got, 0);
		for (int i = 0; i < got; i++)
			cr_assert_eq(pf_check(f[i].data, f[i].len), k + i);
		port_rx_release(a->queues[0], f, (unsigned) got);
	}
	/* A chained frame is one record of its whole length. */
	cr_assert_eq(port_tx_alloc(a->queues[0], f, 2), 2);
	f[0].len = 100;
	f[0].flags = PORT_F_MORE;
	f[1].len = 50;
	cr_assert_eq(port_tx_post(a->queues[0], f, 2), 2);
	cr_assert_eq(pcapw_get_counts(a, &nrx, &ntx), 0);
	cr_assert_eq(nrx, 30);
	cr_assert_eq(ntx, 51);
	cr_assert_eq(pcapw_flush(a), 0);
	n = tshark_read(path, lens, times, 200);
	cr_assert_eq(n, nrx + ntx);
	for (unsigned i = 0; i < 50; i++)
		cr_assert_eq(lens[i], 60 + i);
	for (unsigned i = 0; i < 30; i++)
		cr_assert_eq(lens[50 + i], 1000 + i);
	cr_assert_eq(lens[80], 150);
	cr_assert_str_eq(times[0], "1700000000.123456789", "nanosecond time from the clock given");
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);
}

Test(pcap, completes_the_file_at_destroy)
{
	static uint32_t lens[20];
	static char times[20][32];
	struct port *e[2], *a;

	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(pcapw_wrap(e[0], path, NULL, NULL, &a), 0);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert(pf_send(a->queues[0], i, 64));
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);
	cr_assert_eq(tshark_read(path, lens, times, 20), 10);
}

Test(pcap, is_switched_on_by_xring_pcap)
{
	struct port *e[2], *p;
	char want[300];

	cr_assert_eq(memlink_create(NULL, e), 0);
	p = e[0];
	unsetenv("XRING_PCAP");
	cr_assert_eq(pcapw_wrap_env(&p), 0);
	cr_assert_eq(p, e[0]);
	snprintf(want, sizeof(want), "%s/x-{port}.pcap", dir);
	setenv("XRING_PCAP", want, 1);
	cr_assert_eq(pcapw_wrap_env(&p), 1);
	cr_assert_neq(p, e[0]);
	cr_assert_str_eq(p->name, e[0]->name);
	unsetenv("XRING_PCAP");
	snprintf(want, sizeof(want), "%s/x-mema.pcap", dir);
	cr_assert_eq(access(want, F_OK), 0, "%s", want);
	p->ops->destroy(p);
	e[1]->ops->destroy(e[1]);
}

Test(pcap, reports_a_path_it_cannot_write)
{
	struct port *e[2], *a = NULL;

	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(pcapw_wrap(e[0], "/nonexistent-dir/x.pcap", NULL, NULL, &a), -EIO);
	cr_assert_null(a);
	cr_assert_eq(pcapw_flush(e[0]), -EINVAL);
	e[0]->ops->destroy(e[0]);
	e[1]->ops->destroy(e[1]);
}
