/*
 * The verbs port (src/nic/verbs) over softverbs, the software verbs device: every ibv_* call the
 * port makes, and the inline post/poll calls behind ibv_context.ops, run in softverbs, which
 * carries real Ethernet frames between two devices joined by an in-memory wire and applies flow
 * steering in software. See test/softverbs/softverbs.h.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xring.h>

#include "nic/ports.h"
#include "nic/verbs/verbs_port.h"
#include "softverbs.h"

static const uint8_t MAC_A[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x0b};
static const uint8_t MAC_X[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x99};
#define IP_A htonl(0xc6120001) /* 198.18.0.1 */
#define IP_B htonl(0xc6120002) /* 198.18.0.2 */
#define IP_C htonl(0xc6120003)

static int dev_a, dev_b;
static struct port *pa, *pb;
static char tmpdir[64];

/* Two software devices on one wire. */
static void devices(const struct sv_dev_config *ca, const struct sv_dev_config *cb)
{
	struct sv_dev_config a = ca ? *ca : (struct sv_dev_config){0};
	struct sv_dev_config b = cb ? *cb : (struct sv_dev_config){0};

	sv_reset();
	a.name = "svmlx0";
	b.name = "svmlx1";
	memcpy(a.mac, MAC_A, 6);
	memcpy(b.mac, MAC_B, 6);
	dev_a = sv_add(&a);
	dev_b = sv_add(&b);
	cr_assert_geq(dev_a, 0);
	cr_assert_geq(dev_b, 0);
	cr_assert_eq(sv_connect(dev_a, dev_b), 0);
}

static struct port_verbs_config cfg(const char *dev)
{
	/* An empty sysfs, so the real host's /sys never plays a part. */
	return (struct port_verbs_config){
		.dev = dev,
		.rx_bufs = 64,
		.tx_bufs = 64,
		.rx_batch = 8,
		.tx_signal = 4,
		.sysfs = tmpdir,
	};
}

static struct port *open_port(const struct port_verbs_config *c)
{
	struct port *p = NULL;
	char err[256];
	int ret = port_verbs_open(c, &p, err, sizeof(err));

	cr_assert_eq(ret, 0, "port_verbs_open: %d %s", ret, err);
	return p;
}

static void pair(unsigned nqueues)
{
	struct port_verbs_config c = cfg("svmlx0");

	devices(NULL, NULL);
	c.nqueues = nqueues;
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	pa->ip = IP_A;
	pb->ip = IP_B;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xring-verbs-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	sv_reset();
}

static void teardown(void)
{
	char cmd[128];

	if (pa)
		pa->ops->destroy(pa);
	if (pb)
		pb->ops->destroy(pb);
	pa = pb = NULL;
	cr_expect_eq(sv_live_objects(), 0, "verbs objects left behind");
	cr_expect_eq(sv_misuse(), 0, "softverbs saw misuse: %s", sv_last_misuse());
	sv_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(verbs, .init = setup, .fini = teardown, .timeout = 30);

/* ---- frames ---- */

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t) (p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t) p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t) ~sum;
}

/* A TCP or UDP (proto 6/17) or ICMP (1) frame with correct checksums unless raw; returns len. */
static size_t frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint8_t proto, uint32_t sip,
		    uint32_t dip, uint16_t sport, uint16_t dport, uint32_t payload, uint32_t seq,
		    bool raw)
{
	size_t l4 = proto == 6 ? 20 : 8, tot = 20 + l4 + payload;
	uint8_t *ip = f + 14, *t = ip + 20;
	uint16_t c;
	uint32_t s;

	memset(f, 0, 14 + tot);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t) (tot >> 8);
	ip[3] = (uint8_t) tot;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	if (proto != 1) {
		memcpy(t, &sport, 2);
		memcpy(t + 2, &dport, 2);
	} else {
		t[0] = 8; /* echo request */
	}
	if (proto == 6)
		t[12] = 0x50;
	if (proto == 17) {
		t[4] = (uint8_t) ((l4 + payload) >> 8);
		t[5] = (uint8_t) (l4 + payload);
	}
	for (uint32_t i = 0; i < payload; i++)
		t[l4 + i] = (uint8_t) (seq * 7 + i);
	if (payload >= 4)
		memcpy(t + l4, &seq, 4);
	if (raw)
		return 14 + tot;
	c = csum(ip, 20, 0);
	ip[10] = (uint8_t) (c >> 8);
	ip[11] = (uint8_t) c;
	s = proto == 1 ? 0
		       : (uint32_t) (csum(ip + 12, 8, 0) ^ 0xffff) + proto + (uint32_t) (tot - 20);
	c = csum(t, tot - 20, s);
	if (proto == 6) {
		t[16] = (uint8_t) (c >> 8);
		t[17] = (uint8_t) c;
	} else if (proto == 17) {
		t[6] = (uint8_t) (c >> 8);
		t[7] = (uint8_t) c;
	} else {
		t[2] = (uint8_t) (c >> 8);
		t[3] = (uint8_t) c;
	}
	return 14 + tot;
}

static bool checksums_ok(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14;
	size_t tot = (size_t) (ip[2] << 8 | ip[3]);
	uint32_t s = (uint32_t) (csum(ip + 12, 8, 0) ^ 0xffff) + ip[9] + (uint32_t) (tot - 20);

	return len >= 14 + tot && csum(ip, 20, 0) == 0 && csum(ip + 20, tot - 20, s) == 0;
}

/* Copy len bytes into a queue buffer of q and post it (no flush). */
static void post_bytes(struct port_queue *q, const void *data, size_t len, uint16_t flags)
{
	struct port_frame f;

	cr_assert_eq(port_tx_alloc(q, &f, 1), 1);
	memcpy(f.data, data, len);
	f.len = (uint32_t) len;
	f.flags = flags;
	cr_assert_eq(port_tx_post(q, &f, 1), 1);
}

static uint16_t UDP_PORT = 0; /* set in steer_udp */

/* Steer UDP to 198.18.0.2:7000 on every queue-0 of b; returns the handle. */
static uint32_t steer_udp(struct port *p, uint16_t queue)
{
	struct port_rule r = {.kind = PORT_RULE_UDP, .local_ip = IP_B, .queue = queue};
	uint32_t h;

	UDP_PORT = htons(7000);
	r.local_port = UDP_PORT;
	cr_assert_eq(p->ops->steer(p, &r, &h), 0);
	return h;
}

static void send_udp(struct port_queue *q, uint32_t seq, uint32_t payload)
{
	uint8_t f[2048];
	size_t len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), payload, seq,
			   false);

	post_bytes(q, f, len, 0);
}

/* Receive up to want frames on q within a bounded number of polls; checks their numbers. */
static unsigned recv_udp(struct port_queue *q, unsigned want, uint32_t *next, bool release)
{
	struct port_frame f[16];
	unsigned got = 0;

	for (int tries = 0; got < want && tries < 1000; tries++) {
		int n = port_rx_poll(q, f, want - got < 16 ? want - got : 16);

		cr_assert_geq(n, 0, "rx_poll: %d", n);
		for (int i = 0; i < n; i++) {
			uint32_t seq;

			memcpy(&seq, (uint8_t *) f[i].data + 42, 4);
			cr_assert_eq(seq, *next, "frame %u arrived as %u", *next, seq);
			cr_assert(checksums_ok(f[i].data, f[i].len));
			(*next)++;
		}
		if (release && n > 0)
			port_rx_release(q, f, (unsigned) n);
		got += (unsigned) n;
	}
	return got;
}

/* ---- tests ---- */

Test(verbs, runs_on_softverbs_not_on_the_real_libibverbs)
{
	Dl_info info;

	cr_assert(dladdr((void *) ibv_get_device_list, &info));
	cr_assert(strstr(info.dli_fname, "softverbs"), "ibv_get_device_list is in %s",
		  info.dli_fname);
}

Test(verbs, creates_a_qp_two_cqs_and_a_channel_per_queue)
{
	struct port_verbs_config c = cfg("svmlx0");

	devices(NULL, NULL);
	c.nqueues = 3;
	pa = open_port(&c);
	/* context, PD, pool MR, and per queue a channel, two CQs and a QP */
	cr_assert_eq(sv_live_objects(), 3 + 3 * 4);
	cr_assert_eq(pa->nqueues, 3);
	cr_assert_str_eq(pa->name, "svmlx0");
	cr_assert_str_eq(port_verbs_device(pa), "svmlx0");
	cr_assert_arr_eq(pa->mac, MAC_A, 6, "MAC from the EUI-64 of GID 0");
	cr_assert_eq(pa->mtu, 1500);
	cr_assert_eq(pa->caps & (PORT_CAP_STEER | PORT_CAP_EXTERNAL_TX | PORT_CAP_TX_CSUM |
				 PORT_CAP_RX_CSUM),
		     PORT_CAP_STEER | PORT_CAP_EXTERNAL_TX | PORT_CAP_TX_CSUM | PORT_CAP_RX_CSUM);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(pa->queues[i]->index, i);
		cr_assert_eq(pa->queues[i]->port, pa);
		cr_assert_geq(pa->queues[i]->ops->wait_fd(pa->queues[i]), 0);
	}
	/* Every receive buffer was posted, rx_batch at a time. */
	cr_assert_eq(sv_stats(dev_a).recv_wqes, 3 * 64);
	cr_assert_eq(sv_stats(dev_a).post_recv_calls, 3 * 64 / 8);
	pa->ops->destroy(pa);
	pa = NULL;
	cr_assert_eq(sv_live_objects(), 0);
}

Test(verbs, maps_a_netdev_to_its_device_through_sysfs)
{
	char path[256];
	struct port_verbs_config c = cfg(NULL);
	FILE *f;

	devices(NULL, NULL);
	snprintf(path, sizeof(path),
		 "mkdir -p %s/class/infiniband/svmlx1/device/net/ens9f1 "
		 "%s/class/net/ens9f1",
		 tmpdir, tmpdir);
	cr_assert_eq(system(path), 0);
	snprintf(path, sizeof(path), "%s/class/net/ens9f1/address", tmpdir);
	f = fopen(path, "w");
	fputs("02:11:22:33:44:55\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/class/net/ens9f1/mtu", tmpdir);
	f = fopen(path, "w");
	fputs("4000\n", f);
	fclose(f);
	c.netdev = "ens9f1";
	c.buf_size = 8192;
	pb = open_port(&c);
	cr_assert_str_eq(port_verbs_device(pb), "svmlx1");
	cr_assert_str_eq(pb->name, "ens9f1");
	cr_assert_arr_eq(pb->mac, ((uint8_t[]){0x02, 0x11, 0x22, 0x33, 0x44, 0x55}), 6);
	cr_assert_eq(pb->mtu, 4000);
	cr_assert_eq(pb->ip, 0, "no such netdev here: no address");
	pb->ops->destroy(pb);
	c.ip = IP_B;
	c.prefix_len = 24;
	pb = open_port(&c);
	cr_assert_eq(pb->ip, IP_B, "an address given wins");
	cr_assert_eq(pb->prefix_len, 24);
}

Test(verbs, maps_a_netdev_to_its_device_through_the_gid_table)
{
	struct sv_dev_config b = {.ndev_ifindex = if_nametoindex("lo")};
	struct port_verbs_config c = cfg(NULL);

	cr_assert_neq(b.ndev_ifindex, 0);
	devices(NULL, &b);
	c.netdev = "lo";
	pb = open_port(&c);
	cr_assert_str_eq(port_verbs_device(pb), "svmlx1");
	cr_assert_str_eq(pb->name, "lo");
	cr_assert_eq(pb->ifindex, b.ndev_ifindex);
	cr_assert_arr_eq(pb->mac, MAC_B, 6, "lo has no MAC: the one of GID 0");
	cr_assert_eq(pb->ip, htonl(0x7f000001), "the netdev's address");
	cr_assert_eq(pb->prefix_len, 8);
}

Test(verbs, an_unknown_netdev_or_device_fails_with_enodev_and_says_so)
{
	struct port_verbs_config c = cfg(NULL);
	struct port *p = NULL;
	char err[256];

	devices(NULL, NULL);
	c.netdev = "nosuch0";
	cr_assert_eq(port_verbs_open(&c, &p, err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "no RDMA device found for netdev nosuch0"), "%s", err);
	cr_assert(strstr(err, "2 devices"), "%s", err);
	cr_assert_eq(port_verbs_open_spec("verbs:dev=mlx5_0", &p, err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "mlx5_0"), "%s", err);
	cr_assert_null(p);
	cr_assert_eq(sv_live_objects(), 0);
}

Test(verbs, opens_from_a_port_spec)
{
	struct port *p = NULL;
	char err[256];

	devices(NULL, NULL);
	cr_assert_eq(port_verbs_open_spec("verbs:dev=svmlx1,queues=2", &p, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(p->nqueues, 2);
	cr_assert_str_eq(port_verbs_device(p), "svmlx1");
	p->ops->destroy(p);
}

Test(verbs, refuses_a_port_that_is_not_ethernet)
{
	struct sv_dev_config a = {.infiniband = true};
	struct port_verbs_config c = cfg("svmlx0");
	struct port *p = NULL;
	char err[256];

	devices(&a, NULL);
	cr_assert_eq(port_verbs_open(&c, &p, err, sizeof(err)), -EPROTONOSUPPORT);
	cr_assert(strstr(err, "not Ethernet"), "%s", err);
	cr_assert_eq(sv_live_objects(), 0);
}

Test(verbs, carries_frames_intact_and_in_order_far_beyond_the_pool_sizes)
{
	uint32_t sent = 0, next = 0;

	pair(1);
	steer_udp(pb, 0);
	/* 64 send and receive buffers each: 2000 frames need both to be recycled. */
	for (int round = 0; round < 100; round++) {
		for (int k = 0; k < 20; k++)
			send_udp(pa->queues[0], sent++, 100);
		cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
		cr_assert_eq(recv_udp(pb->queues[0], 20, &next, true), 20);
	}
	cr_assert_eq(next, 2000);
	cr_assert_eq(pb->queues[0]->stats.rx_frames, 2000);
	cr_assert_eq(pa->queues[0]->stats.tx_frames, 2000);
	cr_assert_eq(sv_stats(dev_b).rx_no_wqe, 0);
}

Test(verbs, carries_frames_over_a_device_without_extended_cqs)
{
	struct sv_dev_config old = {.no_cq_ex = true};
	struct port_verbs_config c = cfg("svmlx0");
	uint32_t h, next = 0;
	struct port_frame f;

	devices(&old, &old);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	h = steer_udp(pb, 0);
	cr_assert_neq(h, 0);
	for (uint32_t s = 0; s < 100; s++) {
		send_udp(pa->queues[0], s, 60);
		cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
		cr_assert_eq(port_rx_poll(pb->queues[0], &f, 1), 1);
		cr_assert_eq(f.flow, 0, "no flow tags without extended CQs");
		memcpy(&next, (uint8_t *) f.data + 42, 4);
		cr_assert_eq(next, s);
		port_rx_release(pb->queues[0], &f, 1);
	}
}

Test(verbs, replenishes_receive_wqes_in_batches_with_one_post_each)
{
	struct port_frame f[40];
	unsigned got = 0;
	uint64_t calls0, wqes0;

	pair(1);
	steer_udp(pb, 0);
	calls0 = sv_stats(dev_b).post_recv_calls;
	wqes0 = sv_stats(dev_b).recv_wqes;
	for (uint32_t s = 0; s < 40; s++)
		send_udp(pa->queues[0], s, 32);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	for (int tries = 0; got < 40 && tries < 100; tries++) {
		int n = port_rx_poll(pb->queues[0], f + got, 40 - got);

		cr_assert_geq(n, 0);
		got += (unsigned) n;
	}
	cr_assert_eq(got, 40);
	cr_assert_eq(sv_stats(dev_b).post_recv_calls, calls0, "nothing reposted while lent");
	/* Released one by one, the buffers still go back 8 to an ibv_post_recv. */
	for (unsigned i = 0; i < 40; i++)
		port_rx_release(pb->queues[0], &f[i], 1);
	cr_assert_eq(sv_stats(dev_b).post_recv_calls, calls0 + 5);
	cr_assert_eq(sv_stats(dev_b).recv_wqes, wqes0 + 40);
}

Test(verbs, tops_up_a_low_receive_queue_without_waiting_for_a_full_batch)
{
	struct port_frame f[64];
	unsigned got = 0;
	uint32_t next = 0;

	pair(1);
	steer_udp(pb, 0);
	/* Hold 60 of 64 buffers, give back 4: fewer than a batch, but the queue is nearly dry. */
	for (uint32_t s = 0; s < 60; s++)
		send_udp(pa->queues[0], s, 32);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	for (int tries = 0; got < 60 && tries < 100; tries++)
		got += (unsigned) port_rx_poll(pb->queues[0], f + got, 60 - got);
	cr_assert_eq(got, 60);
	port_rx_release(pb->queues[0], f, 4);
	cr_assert_eq(port_rx_poll(pb->queues[0], f, 1), 0);
	for (uint32_t s = 60; s < 68; s++)
		send_udp(pa->queues[0], s, 32);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	next = 60;
	cr_assert_eq(recv_udp(pb->queues[0], 8, &next, true), 8);
	cr_assert_eq(sv_stats(dev_b).rx_no_wqe, 0);
	port_rx_release(pb->queues[0], f + 4, 56);
}

Test(verbs, rings_one_doorbell_per_flush_and_signals_every_nth_wqe)
{
	uint32_t next = 0;
	struct port_verbs_stats vs;

	pair(1);
	steer_udp(pb, 0);
	for (uint32_t s = 0; s < 10; s++)
		send_udp(pa->queues[0], s, 32);
	cr_assert_eq(sv_stats(dev_a).post_send_calls, 0, "nothing rings before tx_flush");
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(sv_stats(dev_a).post_send_calls, 1);
	cr_assert_eq(sv_stats(dev_a).send_wqes, 10);
	cr_assert_eq(sv_stats(dev_a).signaled_wqes, 2, "the 4th and the 8th");
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(sv_stats(dev_a).post_send_calls, 1, "an empty flush rings nothing");
	cr_assert_eq(recv_udp(pb->queues[0], 10, &next, true), 10);
	port_verbs_stats(pa, &vs);
	cr_assert_eq(vs.doorbells, 1);
	cr_assert_eq(vs.signaled, 2);
}

/* Post n frames from registered memory with cookies base.. and flush. */
static void post_ext(struct port_queue *q, uint8_t *mem, unsigned n, uint64_t base)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = mem + i * 256;
		struct port_frame f = {.len = (uint32_t) frame(d, MAC_B, MAC_A, 17, IP_A, IP_B,
							       htons(5000), htons(7000), 64,
							       (uint32_t) (base + i), false),
				       .data = d,
				       .cookie = base + i,
				       .flags = PORT_F_EXTERNAL};

		cr_assert_eq(port_tx_post(q, &f, 1), 1);
	}
	cr_assert_eq(port_tx_flush(q), 0);
}

Test(verbs, reaps_selectively_signalled_sends_across_the_batch_boundary)
{
	static uint8_t mem[16 * 256];
	uint64_t ck[16];
	uint32_t key, next = 100;
	struct port_queue *q;

	pair(1);
	q = pa->queues[0];
	steer_udp(pb, 0);
	cr_assert_eq(pa->ops->mem_register(pa, mem, sizeof(mem), &key), 0);
	sv_set_deferred(dev_a, true);
	/* 10 WQEs, signalled at 4 and 8, and at 10 because the flush carries cookies. */
	post_ext(q, mem, 10, 100);
	cr_assert_eq(sv_stats(dev_a).signaled_wqes, 3);
	cr_assert_eq(port_tx_reap(q, ck, 16), 0, "the device has run nothing yet");
	cr_assert_eq(sv_run(dev_a, 6), 6);
	/* Only the 4th completed, and it retires the three unsignalled WQEs before it. */
	cr_assert_eq(port_tx_reap(q, ck, 16), 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ck[i], 100 + (uint64_t) i);
	cr_assert_eq(port_tx_reap(q, ck, 16), 0, "5 and 6 ran but wait for the 8th");
	cr_assert_eq(sv_run(dev_a, 2), 2);
	cr_assert_eq(port_tx_reap(q, ck, 2), 2, "a short reap leaves the rest for later");
	cr_assert_eq(ck[0], 104);
	cr_assert_eq(ck[1], 105);
	cr_assert_eq(port_tx_reap(q, ck, 16), 2);
	cr_assert_eq(ck[0], 106);
	cr_assert_eq(ck[1], 107);
	cr_assert_eq(sv_run(dev_a, 100), 2);
	cr_assert_eq(port_tx_reap(q, ck, 16), 2);
	cr_assert_eq(ck[0], 108);
	cr_assert_eq(ck[1], 109);
	cr_assert_eq(recv_udp(pb->queues[0], 10, &next, true), 10);
	cr_assert_eq(pa->ops->mem_deregister(pa, key), 0);
}

Test(verbs, sends_zero_copy_from_registered_memory_and_returns_the_cookie)
{
	static uint8_t mem[4096];
	uint8_t outside[256], hdr[64];
	struct port_frame f[2], r;
	uint64_t ck;
	uint32_t key;
	size_t len;

	pair(1);
	steer_udp(pb, 0);
	cr_assert_eq(pa->ops->mem_register(pa, mem, sizeof(mem), &key), 0);
	/* One WQE from two places: headers in a queue buffer, payload in application memory. */
	len = frame(mem + 1000 - 42, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), 500,
		    77, false);
	memcpy(hdr, mem + 1000 - 42, 42);
	cr_assert_eq(port_tx_alloc(pa->queues[0], &f[0], 1), 1);
	memcpy(f[0].data, hdr, 42);
	f[0].len = 42;
	f[0].flags = PORT_F_MORE;
	f[1] = (struct port_frame){.data = mem + 1000,
				   .len = (uint32_t) len - 42,
				   .cookie = 0xc0ffee,
				   .flags = PORT_F_EXTERNAL};
	cr_assert_eq(port_tx_post(pa->queues[0], f, 2), 2);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(sv_stats(dev_a).send_wqes, 1, "a chain is one WQE with two SGEs");
	cr_assert_eq(port_rx_poll(pb->queues[0], &r, 1), 1);
	cr_assert_eq(r.len, len);
	cr_assert_arr_eq(r.data, mem + 1000 - 42, len);
	port_rx_release(pb->queues[0], &r, 1);
	cr_assert_eq(port_tx_reap(pa->queues[0], &ck, 1), 1);
	cr_assert_eq(ck, 0xc0ffee);
	/* Memory that was never registered is refused, and nothing is sent. */
	f[0] = (struct port_frame){.data = outside, .len = 60, .flags = PORT_F_EXTERNAL};
	cr_assert_eq(port_tx_post(pa->queues[0], f, 1), -EINVAL);
	cr_assert_eq(pa->ops->mem_deregister(pa, key), 0);
	cr_assert_eq(pa->ops->mem_deregister(pa, key), -ENOENT);
}

Test(verbs, keeps_registered_memory_while_the_device_still_reads_it)
{
	static uint8_t mem[4 * 256];
	uint64_t ck[4];
	uint32_t key, next = 0;

	pair(1);
	steer_udp(pb, 0);
	cr_assert_eq(pa->ops->mem_register(pa, mem, sizeof(mem), &key), 0);
	sv_set_deferred(dev_a, true);
	post_ext(pa->queues[0], mem, 1, 0);
	cr_assert_eq(pa->ops->mem_deregister(pa, key), -EBUSY);
	sv_run(dev_a, 10);
	cr_assert_eq(port_tx_reap(pa->queues[0], ck, 4), 1);
	cr_assert_eq(pa->ops->mem_deregister(pa, key), 0);
	cr_assert_eq(recv_udp(pb->queues[0], 1, &next, true), 1);
}

Test(verbs, offloads_checksums_when_the_device_can)
{
	uint8_t f[256];
	struct port_frame r;
	size_t len;

	pair(1);
	steer_udp(pb, 0);
	cr_assert(pa->caps & PORT_CAP_TX_CSUM);
	/* Both checksums left zero: the device fills them. */
	len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), 100, 1, true);
	post_bytes(pa->queues[0], f, len, PORT_F_TX_IP_CSUM | PORT_F_TX_L4_CSUM);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(sv_stats(dev_a).tx_csum, 1);
	cr_assert_eq(port_rx_poll(pb->queues[0], &r, 1), 1);
	cr_assert(checksums_ok(r.data, r.len));
	cr_assert_eq(r.flags & (PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK),
		     PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK);
	port_rx_release(pb->queues[0], &r, 1);
	/* A frame with a bad checksum arrives without the ok flags. */
	post_bytes(pa->queues[0], f, len, 0);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(port_rx_poll(pb->queues[0], &r, 1), 1);
	cr_assert_eq(r.flags & (PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK), 0);
	port_rx_release(pb->queues[0], &r, 1);
}

Test(verbs, leaves_checksums_to_the_stack_on_a_device_without_offload)
{
	struct sv_dev_config plain = {.no_csum = true};
	struct port_verbs_config c = cfg("svmlx0");
	struct port_frame r;
	uint8_t f[256];
	size_t len;

	devices(&plain, &plain);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	steer_udp(pb, 0);
	cr_assert_eq(pa->caps & (PORT_CAP_TX_CSUM | PORT_CAP_RX_CSUM), 0);
	len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), 100, 1, false);
	/* The flag is ignored rather than passed to a device that cannot honour it. */
	post_bytes(pa->queues[0], f, len, PORT_F_TX_IP_CSUM);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(port_rx_poll(pb->queues[0], &r, 1), 1);
	cr_assert_eq(r.flags & (PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK), 0);
	port_rx_release(pb->queues[0], &r, 1);
}

/* Send one frame from a's queue 0 and report which queue of b got it (-1: none). */
static int which_queue(const uint8_t *f, size_t len, uint32_t *flow)
{
	struct port_frame r;

	post_bytes(pa->queues[0], f, len, 0);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	for (unsigned q = 0; q < pb->nqueues; q++) {
		int n = port_rx_poll(pb->queues[q], &r, 1);

		cr_assert_geq(n, 0);
		if (n) {
			cr_assert_eq(r.len, len);
			cr_assert_arr_eq(r.data, f, len);
			*flow = r.flow;
			port_rx_release(pb->queues[q], &r, 1);
			return (int) q;
		}
	}
	return -1;
}

Test(verbs, steers_connections_listeners_arp_and_icmp_to_their_queues)
{
	struct port_rule conn = {.kind = PORT_RULE_TCP,
				 .local_ip = IP_B,
				 .local_port = htons(80),
				 .remote_ip = IP_A,
				 .remote_port = htons(40000),
				 .queue = 2};
	struct port_rule lis = {
		.kind = PORT_RULE_TCP, .local_ip = IP_B, .local_port = htons(80), .queue = 1};
	struct port_rule arp = {.kind = PORT_RULE_ARP, .local_ip = IP_B, .queue = 0};
	struct port_rule icmp = {.kind = PORT_RULE_ICMP, .local_ip = IP_B, .queue = 0};
	uint32_t hc, hl, ha, hi, flow = 0;
	uint64_t kernel;
	uint8_t f[256];
	size_t len;

	pair(3);
	/* The listener first: the connection must win by priority, not by order. */
	cr_assert_eq(pb->ops->steer(pb, &lis, &hl), 0);
	cr_assert_eq(pb->ops->steer(pb, &conn, &hc), 0);
	cr_assert_eq(pb->ops->steer(pb, &arp, &ha), 0);
	cr_assert_eq(pb->ops->steer(pb, &icmp, &hi), 0);

	len = frame(f, MAC_B, MAC_A, 6, IP_A, IP_B, htons(40000), htons(80), 10, 1, false);
	cr_assert_eq(which_queue(f, len, &flow), 2, "the connection's 5-tuple");
	cr_assert_eq(flow, hc);
	len = frame(f, MAC_B, MAC_A, 6, IP_C, IP_B, htons(40000), htons(80), 10, 2, false);
	cr_assert_eq(which_queue(f, len, &flow), 1, "another client: the listener");
	cr_assert_eq(flow, hl);

	kernel = sv_stats(dev_b).kernel_frames;
	len = frame(f, MAC_B, MAC_A, 6, IP_A, IP_B, htons(40000), htons(81), 10, 3, false);
	cr_assert_eq(which_queue(f, len, &flow), -1, "a port nobody listens on");
	len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(40000), htons(80), 10, 4, false);
	cr_assert_eq(which_queue(f, len, &flow), -1, "UDP to the TCP listener's port");
	len = frame(f, MAC_X, MAC_A, 6, IP_A, IP_B, htons(40000), htons(80), 10, 5, false);
	cr_assert_eq(which_queue(f, len, &flow), -1, "another MAC");
	len = frame(f, MAC_B, MAC_A, 1, IP_A, IP_C, 0, 0, 8, 6, false);
	cr_assert_eq(which_queue(f, len, &flow), -1, "ICMP to another address");
	cr_assert_eq(sv_stats(dev_b).kernel_frames, kernel + 4, "they go to the kernel");

	len = frame(f, MAC_B, MAC_A, 1, IP_A, IP_B, 0, 0, 8, 7, false);
	cr_assert_eq(which_queue(f, len, &flow), 0, "ICMP to the port's address");
	cr_assert_eq(flow, hi);

	/* An ARP request (broadcast): to xring's queue and, copied, to the kernel as well. */
	memset(f, 0, 60);
	memset(f, 0xff, 6);
	memcpy(f + 6, MAC_A, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	kernel = sv_stats(dev_b).kernel_frames;
	cr_assert_eq(which_queue(f, 60, &flow), 0);
	cr_assert_eq(flow, ha);
	cr_assert_eq(sv_stats(dev_b).kernel_frames, kernel + 1);

	/* Without the connection rule its frames fall back to the listener. */
	cr_assert_eq(pb->ops->unsteer(pb, hc), 0);
	cr_assert_eq(pb->ops->unsteer(pb, hc), -ENOENT);
	len = frame(f, MAC_B, MAC_A, 6, IP_A, IP_B, htons(40000), htons(80), 10, 8, false);
	cr_assert_eq(which_queue(f, len, &flow), 1);
	cr_assert_eq(sv_live_objects(), 2 * (3 + 3 * 4) + 3, "three flows left");
}

Test(verbs, rejects_bad_rules)
{
	struct port_rule r = {.kind = PORT_RULE_TCP, .local_port = htons(80), .queue = 1};
	uint32_t h;

	pair(1);
	cr_assert_eq(pb->ops->steer(pb, &r, &h), -EINVAL, "no such queue");
	r.queue = 0;
	r.remote_ip = IP_A;
	cr_assert_eq(pb->ops->steer(pb, &r, &h), -EINVAL, "a remote address without a port");
	r.remote_port = htons(80);
	r.local_port = 0;
	cr_assert_eq(pb->ops->steer(pb, &r, &h), -EINVAL, "a connection without a local port");
	r.kind = 7;
	cr_assert_eq(pb->ops->steer(pb, &r, &h), -EINVAL, "no such kind");
	cr_assert_eq(pb->ops->unsteer(pb, 0), -ENOENT);
	cr_assert_eq(pb->ops->unsteer(pb, 12345), -ENOENT);
}

Test(verbs, takes_arp_alone_where_the_device_cannot_share_it)
{
	struct sv_dev_config b = {.no_dont_trap = true};
	struct port_verbs_config c = cfg("svmlx0");
	struct port_rule arp = {.kind = PORT_RULE_ARP, .local_ip = IP_B};
	uint32_t h, flow;
	uint64_t kernel;
	uint8_t f[60] = {0};

	devices(NULL, &b);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	cr_assert_eq(pb->ops->steer(pb, &arp, &h), 0);
	memset(f, 0xff, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	kernel = sv_stats(dev_b).kernel_frames;
	cr_assert_eq(which_queue(f, 60, &flow), 0);
	cr_assert_eq(sv_stats(dev_b).kernel_frames, kernel);
}

Test(verbs, fails_cleanly_wherever_device_setup_fails)
{
	static const struct {
		enum sv_fail what;
		unsigned ok;
	} points[] = {
		{SV_FAIL_OPEN, 0},           {SV_FAIL_ALLOC_PD, 0},  {SV_FAIL_REG_MR, 0},
		{SV_FAIL_CREATE_CHANNEL, 1}, {SV_FAIL_CREATE_CQ, 3}, {SV_FAIL_CREATE_QP, 1},
		{SV_FAIL_MODIFY_QP, 4},
	};
	struct port_verbs_config c = cfg("svmlx0");

	c.nqueues = 2;
	for (unsigned i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		struct port *p = NULL;
		char err[256];
		int ret;

		devices(NULL, NULL);
		sv_fail_after(points[i].what, points[i].ok, ENOMEM);
		ret = port_verbs_open(&c, &p, err, sizeof(err));
		cr_assert_eq(ret, -ENOMEM, "failure point %u: %d (%s)", i, ret, err);
		cr_assert_null(p);
		cr_assert_neq(err[0], 0, "failure point %u says nothing", i);
		cr_assert_eq(sv_live_objects(), 0, "failure point %u leaks", i);
		cr_assert_eq(sv_misuse(), 0, "failure point %u: %s", i, sv_last_misuse());
	}
}

Test(verbs, fails_a_qp_creation_on_the_second_queue_with_a_clean_teardown)
{
	struct port_verbs_config c = cfg("svmlx0");
	struct port *p = NULL;
	char err[256];

	devices(NULL, NULL);
	c.nqueues = 2;
	sv_fail_after(SV_FAIL_CREATE_QP, 1, EPERM);
	cr_assert_eq(port_verbs_open(&c, &p, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "queue 1"), "%s", err);
	cr_assert_eq(sv_live_objects(), 0);
}

Test(verbs, reports_a_failed_doorbell_and_gives_the_frames_back)
{
	uint8_t f[128];
	size_t len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), 32, 0, false);
	struct port_frame all[64];
	uint32_t next = 0;

	pair(1);
	steer_udp(pb, 0);
	for (int i = 0; i < 3; i++)
		post_bytes(pa->queues[0], f, len, 0);
	sv_fail_after(SV_FAIL_POST_SEND, 0, EIO);
	cr_assert_eq(port_tx_flush(pa->queues[0]), -EIO);
	cr_assert_eq(pa->queues[0]->stats.tx_drops, 3);
	/* The three buffers are free again: the whole pool can be taken. */
	cr_assert_eq(port_tx_alloc(pa->queues[0], all, 64), 64);
	for (uint32_t i = 0; i < 64; i++)
		all[i].len = (uint32_t) frame(all[i].data, MAC_B, MAC_A, 17, IP_A, IP_B,
					      htons(5000), htons(7000), 32, i, false);
	cr_assert_eq(port_tx_post(pa->queues[0], all, 64), 64);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(recv_udp(pb->queues[0], 64, &next, true), 64);
}

Test(verbs, puts_the_port_in_an_error_state_when_its_link_goes_down)
{
	struct port_queue *q;
	struct pollfd pfd;
	struct port_frame f;
	struct port_verbs_stats vs;
	uint32_t next = 0;

	pair(1);
	q = pb->queues[0];
	steer_udp(pb, 0);
	cr_assert_eq(q->ops->arm(q), 0);
	cr_assert_eq(sv_port_event(dev_b, IBV_EVENT_PORT_ERR), 0);
	/* A sleeper wakes: the async fd is in the queue's wait set. */
	pfd = (struct pollfd){.fd = q->ops->wait_fd(q), .events = POLLIN};
	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	cr_assert_eq(q->ops->arm(q), -EAGAIN);
	cr_assert_eq(port_verbs_error(pb), -ENETDOWN);
	cr_assert_eq(port_rx_poll(q, &f, 1), -ENETDOWN);
	cr_assert_eq(port_tx_alloc(pb->queues[0], &f, 1), 1);
	f.len = 60;
	cr_assert_eq(port_tx_post(pb->queues[0], &f, 1), -ENETDOWN);
	port_verbs_stats(pb, &vs);
	cr_assert_eq(vs.async_events, 1);
	cr_assert_eq(vs.port_down, 1);
	/* The link comes back: so does the port. */
	cr_assert_eq(sv_port_event(dev_b, IBV_EVENT_PORT_ACTIVE), 0);
	cr_assert_eq(port_verbs_events(pb), 1);
	cr_assert_eq(port_verbs_error(pb), 0);
	cr_assert_eq(port_tx_post(pb->queues[0], &f, 1), 1, "the same buffer, now accepted");
	cr_assert_eq(port_tx_flush(pb->queues[0]), 0);
	send_udp(pa->queues[0], 0, 16);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(recv_udp(q, 1, &next, true), 1);
}

Test(verbs, notices_a_port_down_event_from_polling_alone)
{
	struct port_frame f;
	int ret = 0, polls = 0;

	pair(1);
	cr_assert_eq(sv_port_event(dev_b, IBV_EVENT_PORT_ERR), 0);
	while (ret == 0 && polls++ < VERBS_ASYNC_EVERY + 1)
		ret = port_rx_poll(pb->queues[0], &f, 1);
	cr_assert_eq(ret, -ENETDOWN, "after %d polls", polls);
	cr_assert_eq(sv_port_event(dev_b, IBV_EVENT_DEVICE_FATAL), 0);
	cr_assert_eq(port_verbs_events(pb), 1);
	cr_assert_eq(port_verbs_error(pb), -EIO);
	cr_assert_eq(sv_port_event(dev_b, IBV_EVENT_PORT_ACTIVE), 0);
	cr_assert_eq(port_verbs_events(pb), 1);
	cr_assert_eq(port_verbs_error(pb), -EIO, "a fatal error stays");
}

Test(verbs, starts_in_the_error_state_when_the_link_is_down)
{
	struct sv_dev_config a = {.port_down = true};
	struct port_verbs_config c = cfg("svmlx0");

	devices(&a, NULL);
	pa = open_port(&c);
	cr_assert_eq(port_verbs_error(pa), -ENETDOWN);
}

Test(verbs, wakes_a_waiter_when_frames_arrive_and_not_before)
{
	struct port_queue *q;
	struct pollfd pfd;
	struct port_frame f;
	struct port_verbs_stats vs;

	pair(1);
	q = pb->queues[0];
	steer_udp(pb, 0);
	cr_assert_eq(q->ops->arm(q), 0);
	pfd = (struct pollfd){.fd = q->ops->wait_fd(q), .events = POLLIN};
	cr_assert_eq(poll(&pfd, 1, 0), 0);
	send_udp(pa->queues[0], 0, 16);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	cr_assert_eq(port_rx_poll(q, &f, 1), 1);
	port_rx_release(q, &f, 1);
	cr_assert_eq(q->ops->arm(q), 0, "the event is acknowledged, nothing is pending");
	port_verbs_stats(pb, &vs);
	cr_assert_eq(vs.comp_events, 1);
	cr_assert_eq(poll(&pfd, 1, 0), 0);
	/* A frame that lands between polling and arming is found by arm() itself. */
	send_udp(pa->queues[0], 1, 16);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(q->ops->arm(q), -EAGAIN);
	cr_assert_eq(port_rx_poll(q, &f, 1), 1);
	port_rx_release(q, &f, 1);
}

Test(verbs, tears_down_with_frames_in_flight_and_buffers_lent)
{
	static uint8_t mem[8 * 256];
	struct port_frame f[8];
	uint32_t key;

	pair(2);
	steer_udp(pb, 0);
	cr_assert_eq(pa->ops->mem_register(pa, mem, sizeof(mem), &key), 0);
	for (uint32_t s = 0; s < 8; s++)
		send_udp(pa->queues[0], s, 32);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(port_rx_poll(pb->queues[0], f, 8), 8, "lent, never released");
	sv_set_deferred(dev_a, true);
	for (uint32_t s = 0; s < 20; s++)
		send_udp(pa->queues[1], s, 32);
	cr_assert_eq(port_tx_flush(pa->queues[1]), 0);
	post_ext(pa->queues[0], mem, 8, 0);
	send_udp(pa->queues[0], 99, 32); /* posted, never flushed */
	cr_assert_eq(sv_stats(dev_a).tx_frames, 8);
	/* teardown() destroys both ports and checks nothing is left behind */
}

Test(verbs, fails_the_queue_when_a_send_completes_in_error_and_still_tears_down)
{
	uint64_t ck[4];
	struct port_frame f;
	int ret = 0;

	pair(2);
	sv_fail_after(SV_FAIL_SEND_WQE, 2, EIO);
	for (uint32_t s = 0; s < 5; s++)
		send_udp(pb->queues[0], s, 16);
	/* The doorbell rings fine; the failure shows in the completions. */
	cr_assert_eq(port_tx_flush(pb->queues[0]), 0);
	cr_assert_eq(port_tx_reap(pb->queues[0], ck, 4), 0);
	cr_assert_eq(pb->queues[0]->stats.tx_drops, 3, "the failed send and the two flushed");
	cr_assert_eq(sv_stats(dev_b).tx_frames, 2, "the two before it went out");
	cr_assert_eq(port_tx_alloc(pb->queues[0], &f, 1), 1);
	f.len = 60;
	cr_assert_eq(port_tx_post(pb->queues[0], &f, 1), -EIO);
	/* The receive side of the failed QP is flushed: the poll reports the failure. */
	for (int i = 0; i < 10 && ret == 0; i++)
		ret = port_rx_poll(pb->queues[0], &f, 1);
	cr_assert_eq(ret, -EIO);
	cr_assert_eq(port_verbs_error(pb), 0, "the port itself is fine ...");
	send_udp(pb->queues[1], 7, 16);
	cr_assert_eq(port_tx_flush(pb->queues[1]), 0, "... and so are its other queues");
}

Test(verbs, falls_back_to_normal_pages_when_hugepages_are_asked_for_but_missing)
{
	struct port_verbs_config c = cfg("svmlx0");
	uint32_t next = 0;

	devices(NULL, NULL);
	c.hugepages = true;
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	steer_udp(pb, 0);
	send_udp(pa->queues[0], 0, 100);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(recv_udp(pb->queues[0], 1, &next, true), 1);
}

Test(verbs, steers_a_protocol_to_an_address_below_its_listeners)
{
	struct port_rule host = {.kind = PORT_RULE_UDP, .local_ip = IP_B, .queue = 1};
	struct port_rule lis = {
		.kind = PORT_RULE_UDP, .local_ip = IP_B, .local_port = htons(53), .queue = 0};
	uint32_t hh, hl, flow = 0;
	uint8_t f[256];
	size_t len;

	pair(2);
	cr_assert_eq(pb->ops->steer(pb, &host, &hh), 0);
	cr_assert_eq(pb->ops->steer(pb, &lis, &hl), 0);
	len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(999), htons(53), 10, 1, false);
	cr_assert_eq(which_queue(f, len, &flow), 0, "the listener's port");
	cr_assert_eq(flow, hl);
	len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(999), htons(54), 10, 2, false);
	cr_assert_eq(which_queue(f, len, &flow), 1, "any other port");
	cr_assert_eq(flow, hh);
	len = frame(f, MAC_B, MAC_A, 6, IP_A, IP_B, htons(999), htons(54), 10, 3, false);
	cr_assert_eq(which_queue(f, len, &flow), -1, "not TCP");
}

Test(verbs, steers_without_flow_tags_on_a_device_that_has_none)
{
	struct sv_dev_config b = {.no_flow_tag = true};
	struct port_verbs_config c = cfg("svmlx0");
	uint32_t h, flow = 1;
	uint8_t f[128];
	size_t len;

	devices(NULL, &b);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	h = steer_udp(pb, 0);
	cr_assert_neq(h, 0);
	len = frame(f, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), 10, 1, false);
	cr_assert_eq(which_queue(f, len, &flow), 0);
	cr_assert_eq(flow, 0, "no tag: flow unknown");
}

struct lane {
	unsigned q;
	uint32_t sent, got;
	bool bad;
};

/* One thread per queue pair: queue q of a sends to queue q of b, 3000 frames, in order. */
static void *lane_run(void *arg)
{
	struct lane *l = arg;
	struct port_queue *tx = pa->queues[l->q], *rx = pb->queues[l->q];
	uint16_t dport = htons((uint16_t) (7000 + l->q));

	for (unsigned round = 0; round < 100000 && l->got < 3000; round++) {
		struct port_frame f[16];
		int n = port_tx_alloc(tx, f, 3000 - l->sent < 16 ? 3000 - l->sent : 16);

		for (int i = 0; i < n; i++)
			f[i].len = (uint32_t) frame(f[i].data, MAC_B, MAC_A, 17, IP_A, IP_B,
						    htons(5000), dport, 32, l->sent++, false);
		if (n > 0 && port_tx_post(tx, f, (unsigned) n) != n)
			l->bad = true;
		port_tx_flush(tx);
		n = port_rx_poll(rx, f, 16);
		for (int i = 0; i < n; i++) {
			uint32_t seq;

			memcpy(&seq, (uint8_t *) f[i].data + 42, 4);
			l->bad |= seq != l->got++ || !checksums_ok(f[i].data, f[i].len);
		}
		if (n > 0)
			port_rx_release(rx, f, (unsigned) n);
		else if (n < 0)
			l->bad = true;
	}
	return NULL;
}

Test(verbs, drives_two_queues_from_two_threads)
{
	struct lane lanes[2] = {{.q = 0}, {.q = 1}};
	pthread_t th[2];

	pair(2);
	for (unsigned q = 0; q < 2; q++) {
		struct port_rule r = {.kind = PORT_RULE_UDP,
				      .local_ip = IP_B,
				      .local_port = htons((uint16_t) (7000 + q)),
				      .queue = (uint16_t) q};
		uint32_t h;

		cr_assert_eq(pb->ops->steer(pb, &r, &h), 0);
	}
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, lane_run, &lanes[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		cr_assert_not(lanes[i].bad, "queue %d saw a bad or misordered frame", i);
		cr_assert_eq(lanes[i].got, 3000, "queue %d got %u", i, lanes[i].got);
	}
	cr_assert_eq(sv_stats(dev_b).rx_no_wqe, 0);
}

Test(verbs, joins_the_port_table_from_xring_port_add)
{
	struct sv_dev_config a = {.ndev_ifindex = if_nametoindex("lo")};
	struct xport *xp;

	devices(&a, NULL);
	cr_assert_eq(xring_port_add("verbs:dev=svmlx1"), -EINVAL, "no netdev, so no address");
	cr_assert_eq(ports_count(), 0);
	cr_assert_eq(sv_live_objects(), 0);
	cr_assert_eq(xring_port_add("verbs:dev=svmlx0,queues=2"), 0);
	cr_assert_eq(ports_count(), 1);
	xp = ports_by_addr(htonl(0x7f000001));
	cr_assert_not_null(xp, "the port has lo's address, through the GID's netdev");
	cr_assert_eq(xp->port->nqueues, 2);
	cr_assert_str_eq(port_verbs_device(xp->port), "svmlx0");
	ports_reset();
	cr_assert_eq(sv_live_objects(), 0);
}

Test(verbs, gives_a_buffer_named_twice_in_a_chain_back_once)
{
	struct port_frame f[2], all[65], r;
	uint8_t fr[128];
	size_t len = frame(fr, MAC_B, MAC_A, 17, IP_A, IP_B, htons(5000), htons(7000), 0, 0, false);
	uint32_t next = 0;

	pair(1);
	steer_udp(pb, 0);
	cr_assert_eq(port_tx_alloc(pa->queues[0], &f[0], 1), 1);
	memcpy(f[0].data, fr, len);
	f[0].len = 20;
	f[0].flags = PORT_F_MORE;
	f[1] = f[0]; /* the same buffer, the rest of the frame */
	f[1].data = (uint8_t *) f[0].data + 20;
	f[1].len = (uint32_t) len - 20;
	f[1].flags = 0;
	cr_assert_eq(port_tx_post(pa->queues[0], f, 2), 2);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(port_rx_poll(pb->queues[0], &r, 1), 1);
	cr_assert_eq(r.len, len);
	cr_assert_arr_eq(r.data, fr, len);
	port_rx_release(pb->queues[0], &r, 1);
	/* Signalled later: 3 more single frames make the 4th WQE, which retires the chain. */
	for (uint32_t s = 0; s < 3; s++)
		send_udp(pa->queues[0], s, 8);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(recv_udp(pb->queues[0], 3, &next, true), 3);
	cr_assert_eq(port_rx_poll(pb->queues[0], &r, 1), 0, "an idle poll reposts all buffers");
	cr_assert_eq(port_tx_alloc(pa->queues[0], all, 65), 64, "64 buffers, not 65");
	for (int i = 0; i < 64; i++)
		all[i].len = (uint32_t) frame(all[i].data, MAC_B, MAC_A, 17, IP_A, IP_B,
					      htons(5000), htons(7000), 8, 3 + (uint32_t) i, false);
	cr_assert_eq(port_tx_post(pa->queues[0], all, 64), 64);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(recv_udp(pb->queues[0], 64, &next, true), 64);
}

Test(verbs, refuses_releases_of_buffers_it_did_not_lend)
{
	struct port_frame f, fake;
	uint32_t next = 0;

	pair(1);
	steer_udp(pb, 0);
	send_udp(pa->queues[0], 0, 16);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_assert_eq(port_rx_poll(pb->queues[0], &f, 1), 1);
	port_rx_release(pb->queues[0], &f, 1);
	port_rx_release(pb->queues[0], &f, 1);
	fake = f;
	fake.buf = (f.buf + 1) % 64; /* posted, never lent */
	port_rx_release(pb->queues[0], &fake, 1);
	fake.buf = 1000;
	port_rx_release(pb->queues[0], &fake, 1);
	cr_assert_eq(pb->queues[0]->stats.rx_bad, 3);
	/* The queue still works, with every buffer posted once. */
	for (uint32_t s = 1; s <= 200; s++) {
		send_udp(pa->queues[0], s, 16);
		cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	}
	next = 1;
	cr_assert_eq(recv_udp(pb->queues[0], 60, &next, true), 60);
	cr_assert_eq(sv_misuse(), 0);
}

Test(verbs, sends_a_tso_frame_as_one_work_request_that_arrives_as_mss_sized_segments)
{
	struct sv_dev_config tso = {.tso = 65536};
	struct port_verbs_config c = cfg("svmlx0");
	struct port_rule r = {.kind = PORT_RULE_TCP, .local_ip = IP_B, .local_port = htons(80)};
	static uint8_t f[16384];
	struct port_verbs_stats st;
	struct port_frame tx, rx[16];
	const uint32_t payload = 10000, mss = 1400, seq0 = 1000;
	uint32_t h, got = 0, nseg = (payload + mss - 1) / mss;
	size_t len;
	int n;

	devices(&tso, &tso);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	cr_assert(pa->caps & PORT_CAP_TSO);
	cr_assert_eq(pa->tso_max, 65536);
	cr_assert_eq(pb->ops->steer(pb, &r, &h), 0);
	/* One frame far beyond the MTU: headers and 10000 bytes, checksums left to the device. */
	len = frame(f, MAC_B, MAC_A, 6, IP_A, IP_B, htons(5000), htons(80), payload, 0, true);
	f[18] = 0x12;
	f[19] = 0x34;              /* IPv4 id */
	f[34 + 4 + 2] = seq0 >> 8; /* TCP sequence number */
	f[34 + 4 + 3] = seq0 & 0xff;
	f[34 + 13] = 0x80 | 0x10 | 0x08 | 0x01; /* CWR ACK PSH FIN */
	cr_assert_eq(port_tx_alloc(pa->queues[0], &tx, 1), 1);
	cr_assert_geq(tx.len, len, "send buffers hold a whole TSO frame");
	memcpy(tx.data, f, len);
	tx.len = (uint32_t) len;
	tx.flags = PORT_F_TX_TSO | PORT_F_TX_IP_CSUM | PORT_F_TX_L4_CSUM;
	tx.tso_mss = mss;
	tx.l4_off = 34;
	cr_assert_eq(port_tx_post(pa->queues[0], &tx, 1), 1);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_expect_eq(sv_stats(dev_a).send_wqes, 1);
	cr_expect_eq(sv_stats(dev_a).tso_wqes, 1);
	cr_expect_eq(sv_stats(dev_a).tso_frames, nseg);
	port_verbs_stats(pa, &st);
	cr_expect_eq(st.tso_sends, 1);

	n = port_rx_poll(pb->queues[0], rx, 16);
	cr_assert_eq(n, (int) nseg, "%d frames arrived, %u expected", n, nseg);
	for (int k = 0; k < n; k++) {
		const uint8_t *d = rx[k].data, *ip = d + 14, *t = d + 34;
		uint32_t want = payload - got < mss ? payload - got : mss;
		uint32_t seq =
			(uint32_t) t[4] << 24 | (uint32_t) t[5] << 16 | (uint32_t) t[6] << 8 | t[7];
		bool last = k == n - 1;

		cr_assert_eq(rx[k].len, 54 + want, "segment %d: %u bytes", k, rx[k].len);
		cr_expect_eq((uint32_t) (ip[2] << 8 | ip[3]), 40 + want, "segment %d: IPv4 length",
			     k);
		cr_expect_eq(ip[4] << 8 | ip[5], 0x1234 + k, "segment %d: IPv4 id", k);
		cr_expect_eq(seq, seq0 + got, "segment %d: sequence number", k);
		cr_expect_eq(t[13], (k == 0 ? 0x80 : 0) | 0x10 | (last ? 0x09 : 0),
			     "segment %d: flags %#x", k, t[13]);
		cr_expect(checksums_ok(d, rx[k].len), "segment %d: checksums", k);
		cr_expect_arr_eq(d + 54, f + 54 + got, want, "segment %d: payload", k);
		got += want;
	}
	cr_assert_eq(got, payload);
	port_rx_release(pb->queues[0], rx, (unsigned) n);
}

Test(verbs, refuses_tso_frames_it_cannot_send_that_way)
{
	struct port_verbs_config c = cfg("svmlx0");
	struct port_frame tx[2];
	uint8_t f[2048];
	size_t len;

	pair(1);
	cr_assert_not(pa->caps & PORT_CAP_TSO, "no TSO on a device without it");
	len = frame(f, MAC_B, MAC_A, 6, IP_A, IP_B, htons(5000), htons(80), 1000, 0, true);
	cr_assert_eq(port_tx_alloc(pa->queues[0], tx, 1), 1);
	memcpy(tx[0].data, f, len);
	tx[0].len = (uint32_t) len;
	tx[0].flags = PORT_F_TX_TSO;
	tx[0].tso_mss = 500;
	tx[0].l4_off = 34;
	cr_assert_eq(port_tx_post(pa->queues[0], tx, 1), -EINVAL);
	pa->ops->destroy(pa);
	pb->ops->destroy(pb);

	/* With TSO: a chained one, or one with no MSS, is refused too. */
	devices(&(struct sv_dev_config){.tso = 65536}, NULL);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	cr_assert(pa->caps & PORT_CAP_TSO);
	cr_assert_eq(port_tx_alloc(pa->queues[0], tx, 2), 2);
	memcpy(tx[0].data, f, len);
	tx[0].len = (uint32_t) len;
	tx[0].flags = PORT_F_TX_TSO | PORT_F_MORE;
	tx[0].tso_mss = 500;
	tx[0].l4_off = 34;
	tx[1].len = 10;
	cr_assert_eq(port_tx_post(pa->queues[0], tx, 2), -EINVAL);
	tx[0].flags = PORT_F_TX_TSO;
	tx[0].tso_mss = 0;
	cr_assert_eq(port_tx_post(pa->queues[0], tx, 1), -EINVAL);
	tx[0].tso_mss = 500;
	cr_assert_eq(port_tx_post(pa->queues[0], tx, 1), 1);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	cr_expect_eq(sv_stats(dev_a).tso_frames, 2);
}

Test(verbs, detects_mlx5_direct_verbs_and_says_what_the_device_could_do)
{
	struct sv_dev_config mlx5 = {.mlx5 = true};
	struct port_verbs_config c = cfg("svmlx0");
	struct port_verbs_mlx5 m;

	devices(&mlx5, NULL);
	pa = open_port(&c);
	c.dev = "svmlx1";
	pb = open_port(&c);
	port_verbs_mlx5(pa, &m);
	cr_expect(m.supported);
	cr_expect(m.enhanced_mpw);
	cr_expect_eq(m.cqe_comp_max, 64);
	cr_expect(m.striding_rq);
	port_verbs_mlx5(pb, &m);
	cr_expect_not(m.supported, "a device that is not mlx5 reports nothing");
	cr_expect_not(m.enhanced_mpw);
	cr_expect_eq(m.cqe_comp_max, 0);
}

Test(verbs, turns_tso_off_when_its_send_buffers_cannot_be_pinned)
{
	struct sv_dev_config tso = {.tso = 65536};
	struct port_verbs_config c = cfg("svmlx0");

	devices(&tso, &tso);
	sv_fail_after(SV_FAIL_REG_MR, 0, ENOMEM);
	pa = open_port(&c);
	cr_expect_not(pa->caps & PORT_CAP_TSO);
	cr_expect_eq(pa->tso_max, 0);
	c.dev = "svmlx1";
	pb = open_port(&c);
	cr_expect(pb->caps & PORT_CAP_TSO, "the next port pins them and has TSO");
	pb->ip = IP_B;
	steer_udp(pb, 0);
	send_udp(pa->queues[0], 0, 100);
	cr_assert_eq(port_tx_flush(pa->queues[0]), 0);
	{
		uint32_t next = 0;

		cr_assert_eq(recv_udp(pb->queues[0], 1, &next, true), 1);
	}
}
