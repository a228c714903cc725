#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "nic/memlink.h"
#include "port_frames.h"

static struct port *ends[2];

static void make(unsigned nqueues, unsigned nbufs)
{
	struct memlink_config c = {.name = "t", .nqueues = nqueues, .nbufs = nbufs};

	cr_assert_eq(memlink_create(&c, ends), 0);
}

static void teardown(void)
{
	for (int i = 0; i < 2; i++)
		if (ends[i])
			ends[i]->ops->destroy(ends[i]);
	ends[0] = ends[1] = NULL;
}

TestSuite(memlink, .fini = teardown);

/* Receive everything pending on q, check each frame and release it; returns the count. */
static unsigned drain(struct port_queue *q, uint32_t *next_seq)
{
	struct port_frame f[16];
	unsigned total = 0;
	int n;

	while ((n = port_rx_poll(q, f, 16)) > 0) {
		for (int i = 0; i < n; i++) {
			cr_assert_eq(pf_check(f[i].data, f[i].len), *next_seq, "frame %u",
				     *next_seq);
			(*next_seq)++;
		}
		port_rx_release(q, f, (unsigned) n);
		total += (unsigned) n;
	}
	cr_assert_geq(n, 0);
	return total;
}

Test(memlink, creates_two_ends_that_describe_themselves)
{
	make(2, 64);
	cr_assert_str_eq(ends[0]->name, "ta");
	cr_assert_str_eq(ends[1]->name, "tb");
	cr_assert_eq(ends[0]->nqueues, 2);
	cr_assert_eq(ends[0]->mtu, 1500);
	cr_assert_neq(memcmp(ends[0]->mac, ends[1]->mac, 6), 0);
	cr_assert(ends[0]->caps & PORT_CAP_EXTERNAL_TX);
	cr_assert_eq(ends[1]->queues[1]->index, 1);
	cr_assert_eq(ends[1]->queues[1]->port, ends[1]);
}

Test(memlink, rejects_bad_configs)
{
	struct port *e[2];

	cr_assert_eq(memlink_create(&(struct memlink_config){.nbufs = 100}, e), -EINVAL);
	cr_assert_eq(memlink_create(&(struct memlink_config){.buf_size = 10}, e), -EINVAL);
	cr_assert_eq(memlink_create(&(struct memlink_config){.nqueues = 1000}, e), -EINVAL);
}

Test(memlink, carries_frames_both_ways_intact_and_in_order)
{
	uint32_t sent[2] = {0}, got[2] = {0};

	make(1, 64);
	/* Many more frames than buffers: buffers must come back through rx_release. */
	for (int round = 0; round < 100; round++) {
		for (int s = 0; s < 2; s++)
			for (int k = 0; k < 40; k++, sent[s]++)
				cr_assert(
					pf_send(ends[s]->queues[0], sent[s], 60 + sent[s] % 1400));
		for (int s = 0; s < 2; s++)
			drain(ends[!s]->queues[0], &got[s]);
	}
	cr_assert_eq(got[0], 4000);
	cr_assert_eq(got[1], 4000);
	cr_assert_eq(ends[0]->queues[0]->stats.tx_frames, 4000);
	cr_assert_eq(ends[1]->queues[0]->stats.rx_frames, 4000);
}

Test(memlink, shows_nothing_before_the_flush)
{
	struct port_frame f;
	struct port_queue *a;

	make(1, 16);
	a = ends[0]->queues[0];
	cr_assert_eq(port_tx_alloc(a, &f, 1), 1);
	pf_fill(f.data, 64, 7);
	f.len = 64;
	cr_assert_eq(port_tx_post(a, &f, 1), 1);
	cr_assert_eq(port_rx_poll(ends[1]->queues[0], &f, 1), 0);
	cr_assert_eq(port_tx_flush(a), 0);
	cr_assert_eq(port_rx_poll(ends[1]->queues[0], &f, 1), 1);
	cr_assert_eq(pf_check(f.data, f.len), 7);
}

Test(memlink, wires_queue_i_to_queue_i)
{
	uint32_t seq = 0;

	make(4, 16);
	for (unsigned q = 0; q < 4; q++)
		cr_assert(pf_send(ends[0]->queues[q], 100 + q, 64));
	for (unsigned q = 0; q < 4; q++) {
		seq = 100 + q;
		cr_assert_eq(drain(ends[1]->queues[q], &seq), 1);
	}
}

Test(memlink, runs_out_of_buffers_with_counts_not_crashes)
{
	struct port_frame f[40], r[40];

	make(1, 32);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], f, 40), 32);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], r, 1), 0);
	cr_assert_geq(ends[0]->queues[0]->stats.tx_full, 2);
	for (int i = 0; i < 32; i++)
		f[i].len = 64;
	cr_assert_eq(port_tx_post(ends[0]->queues[0], f, 32), 32);
	port_tx_flush(ends[0]->queues[0]);
	/* Posting the same buffers again is a caller bug the link refuses. */
	cr_assert_eq(port_tx_post(ends[0]->queues[0], f, 1), -EINVAL);
	/* The receiver holds everything: the sender stays empty until it releases. */
	cr_assert_eq(port_rx_poll(ends[1]->queues[0], r, 40), 32);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], f, 1), 0);
	port_rx_release(ends[1]->queues[0], r, 32);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], f, 40), 32);
}

Test(memlink, counts_stray_releases_as_bad)
{
	struct port_frame bogus = {.buf = 12345}, ok = {.buf = 0};

	make(1, 16);
	port_rx_release(ends[1]->queues[0], &bogus, 1);
	port_rx_release(ends[1]->queues[0], &ok, 1); /* nothing was lent */
	cr_assert_eq(ends[1]->queues[0]->stats.rx_bad, 2);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], &ok, 1), 1);
}

Test(memlink, refuses_frames_longer_than_a_buffer)
{
	struct port_frame f;

	make(1, 16);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], &f, 1), 1);
	f.len = 4096;
	cr_assert_eq(port_tx_post(ends[0]->queues[0], &f, 1), -EINVAL);
}

Test(memlink, carries_chains_whole)
{
	struct port_queue *a, *b;
	struct port_frame f[3], r[3];

	make(1, 16);
	a = ends[0]->queues[0];
	b = ends[1]->queues[0];
	cr_assert_eq(port_tx_alloc(a, f, 3), 3);
	for (int i = 0; i < 3; i++) {
		memset(f[i].data, 'a' + i, 100);
		f[i].len = 100;
		f[i].flags = i < 2 ? PORT_F_MORE : 0;
	}
	/* An unfinished chain is refused, a whole one taken. */
	cr_assert_eq(port_tx_post(a, f, 2), -EINVAL);
	cr_assert_eq(port_tx_post(a, f, 3), 3);
	port_tx_flush(a);
	cr_assert_eq(a->stats.tx_frames, 1);
	cr_assert_eq(port_rx_poll(b, r, 2), -EMSGSIZE);
	cr_assert_eq(port_rx_poll(b, r, 0), 0, "asking for nothing is not an error");
	cr_assert_eq(port_rx_poll(b, r, 3), 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(r[i].len, 100);
		cr_assert_eq(((uint8_t *) r[i].data)[99], 'a' + i);
		cr_assert_eq(!!(r[i].flags & PORT_F_MORE), i < 2);
	}
	cr_assert_eq(b->stats.rx_frames, 1);
	port_rx_release(b, r, 3);
}

Test(memlink, copies_external_frames_and_returns_their_cookies_after_the_flush)
{
	static uint8_t mem[4096], other[256];
	struct port_queue *a, *b;
	struct port_frame f = {
		.data = mem + 100, .len = 300, .flags = PORT_F_EXTERNAL, .cookie = 0xc0ffee};
	uint64_t ck[4];
	uint32_t key;

	make(1, 16);
	a = ends[0]->queues[0];
	b = ends[1]->queues[0];
	pf_fill(mem + 100, 300, 42);
	cr_assert_eq(port_tx_post(a, &f, 1), -EINVAL, "unregistered memory is refused");
	cr_assert_eq(ends[0]->ops->mem_register(ends[0], mem, sizeof(mem), &key), 0);
	cr_assert_eq(port_tx_post(a, &f, 1), 1);
	cr_assert_eq(port_tx_reap(a, ck, 4), 0, "not before the flush");
	port_tx_flush(a);
	cr_assert_eq(port_tx_reap(a, ck, 4), 1);
	cr_assert_eq(ck[0], 0xc0ffee);
	cr_assert_eq(port_rx_poll(b, &f, 1), 1);
	cr_assert_eq(pf_check(f.data, f.len), 42);
	cr_assert(f.data < (void *) mem || f.data >= (void *) (mem + sizeof(mem)));
	memset(f.data, 0, f.len); /* the receiver's copy, not the sender's memory */
	cr_assert_eq(pf_check(mem + 100, 300), 42);
	port_rx_release(b, &f, 1);
	f = (struct port_frame){.data = other, .len = 64, .flags = PORT_F_EXTERNAL};
	cr_assert_eq(port_tx_post(a, &f, 1), -EINVAL);
	cr_assert_eq(ends[0]->ops->mem_deregister(ends[0], key), 0);
	cr_assert_eq(ends[0]->ops->mem_deregister(ends[0], key), -ENOENT);
}

Test(memlink, records_steering_rules)
{
	struct port_rule r = {.kind = PORT_RULE_TCP, .local_port = 80, .queue = 0};
	uint32_t h;

	make(1, 16);
	cr_assert_eq(ends[0]->ops->steer(ends[0], &r, &h), 0);
	cr_assert_eq(ends[0]->ops->unsteer(ends[0], h), 0);
	cr_assert_eq(ends[0]->ops->unsteer(ends[0], h), -ENOENT);
	r.queue = 3;
	cr_assert_eq(ends[0]->ops->steer(ends[0], &r, &h), -EINVAL);
}

Test(memlink, wakes_an_armed_receiver_once_frames_arrive)
{
	struct port_queue *b;
	struct pollfd pfd;
	uint32_t seq = 5;

	make(1, 16);
	b = ends[1]->queues[0];
	pfd = (struct pollfd){.fd = b->ops->wait_fd(b), .events = POLLIN};
	cr_assert_geq(pfd.fd, 0);
	cr_assert_eq(b->ops->arm(b), 0);
	cr_assert_eq(poll(&pfd, 1, 0), 0);
	cr_assert(pf_send(ends[0]->queues[0], 5, 64));
	cr_assert_eq(poll(&pfd, 1, 0), 1);
	cr_assert_eq(ends[0]->queues[0]->stats.kicks, 1);
	cr_assert_eq(b->ops->arm(b), -EAGAIN, "work is waiting");
	cr_assert_eq(drain(b, &seq), 1);
	cr_assert_eq(b->ops->arm(b), 0);
	cr_assert_eq(poll(&pfd, 1, 0), 0, "the old wakeup was consumed");
	/* One arm, one wakeup: the second flush makes no system call. */
	pf_send(ends[0]->queues[0], 6, 64);
	pf_send(ends[0]->queues[0], 7, 64);
	cr_assert_eq(ends[0]->queues[0]->stats.kicks, 2);
}

Test(memlink, survives_the_peer_going_away)
{
	make(1, 16);
	ends[1]->ops->destroy(ends[1]);
	ends[1] = NULL;
	for (uint32_t i = 0; i < 16; i++)
		cr_assert(pf_send(ends[0]->queues[0], i, 64));
	cr_assert_not(pf_send(ends[0]->queues[0], 16, 64));
}

/* Cross-thread use: one thread per end, each sending and receiving. */
enum {
	XT_FRAMES = 200000
};

struct xt {
	struct port *p;
	uint32_t got;
	int bad;
};

static uint64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec;
}

static void *xt_run(void *arg)
{
	struct xt *x = arg;
	struct port_queue *q = x->p->queues[0];
	uint64_t deadline = mono_s() + 60;
	uint32_t sent = 0;

	/* Bounded by frames and by a minute of wall time, so a bug fails instead of hanging. */
	while ((sent < XT_FRAMES || x->got < XT_FRAMES) && mono_s() < deadline) {
		struct port_frame f[32];
		int n;

		if (sent < XT_FRAMES) {
			n = port_tx_alloc(q, f, 32);
			for (int i = 0; i < n; i++) {
				pf_fill(f[i].data, 64, sent + i);
				f[i].len = 64;
			}
			if (n > 0 && port_tx_post(q, f, (unsigned) n) != n)
				x->bad++;
			sent += n > 0 ? (unsigned) n : 0;
			port_tx_flush(q);
		}
		n = port_rx_poll(q, f, 32);
		for (int i = 0; i < n; i++)
			if (pf_check(f[i].data, f[i].len) != x->got++)
				x->bad++;
		if (n > 0)
			port_rx_release(q, f, (unsigned) n);
	}
	return NULL;
}

Test(memlink, works_with_one_thread_per_end)
{
	struct xt x[2];
	pthread_t t[2];

	make(1, 256);
	for (int i = 0; i < 2; i++) {
		x[i] = (struct xt){.p = ends[i]};
		cr_assert_eq(pthread_create(&t[i], NULL, xt_run, &x[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(x[i].bad, 0);
		cr_assert_eq(x[i].got, XT_FRAMES);
	}
}
