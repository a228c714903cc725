#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "nic/fault.h"
#include "nic/memlink.h"
#include "port_frames.h"

static uint64_t vnow;    /* the virtual clock every test drives */
static bool noise_on_q1; /* run_link also sends on queue 1 */

static uint64_t clk(void *arg)
{
	return vnow;
}

/* Frames as the receiver saw them: number (-1 when damaged) and arrival time. */
struct run {
	int64_t *seq;
	uint64_t *at;
	unsigned n, cap;
	struct fault_counters tx, rx;
};

static void run_free(struct run *r)
{
	free(r->seq);
	free(r->at);
}

/*
 * Send frames numbered 0..frames-1 from one end of a memory link to the other, per_step frames
 * per virtual microsecond, both ends wrapped with cfg (its tx rates act at the sender, its rx
 * rates at the receiver). Runs 3000 steps past the last send so nothing stays held.
 */
static void run_link(const struct fault_config *cfg, unsigned frames, unsigned per_step,
		     struct run *r)
{
	struct port *e[2], *a, *b;
	unsigned sent = 0, steps = frames / per_step + 3000;

	*r = (struct run){.cap = frames * 2 + 16};
	r->seq = calloc(r->cap, sizeof(*r->seq));
	r->at = calloc(r->cap, sizeof(*r->at));
	cr_assert(r->seq && r->at);
	cr_assert_eq(memlink_create(&(struct memlink_config){.nbufs = 256, .nqueues = 2}, e), 0);
	cr_assert_eq(fault_wrap(e[0], cfg, &a), 0);
	cr_assert_eq(fault_wrap(e[1], cfg, &b), 0);
	vnow = 1000000;
	for (unsigned step = 0; step < steps; step++, vnow += 1000) {
		struct port_frame f[32];
		int n;

		for (unsigned k = 0; k < per_step && sent < frames; k++, sent++)
			cr_assert(pf_send(a->queues[0], sent, 64 + sent % 200), "send %u", sent);
		port_tx_flush(a->queues[0]);
		if (noise_on_q1) {
			pf_send(a->queues[1], step, 100);
			while ((n = port_rx_poll(b->queues[1], f, 32)) > 0)
				port_rx_release(b->queues[1], f, (unsigned) n);
		}
		while ((n = port_rx_poll(b->queues[0], f, 32)) > 0) {
			for (int i = 0; i < n; i++) {
				cr_assert_lt(r->n, r->cap);
				r->seq[r->n] = pf_check(f[i].data, f[i].len);
				r->at[r->n++] = vnow;
			}
			port_rx_release(b->queues[0], f, (unsigned) n);
		}
		cr_assert_geq(n, 0);
	}
	cr_assert_eq(fault_get_counters(a, &r->tx, NULL), 0);
	cr_assert_eq(fault_get_counters(b, NULL, &r->rx), 0);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

/* How many received frames are second copies, damaged, or later than a higher number. */
static void observe(const struct run *r, unsigned frames, unsigned *dups, unsigned *bad,
		    unsigned *late)
{
	unsigned char *seen = calloc(frames, 1);
	int64_t max = -1;

	*dups = *bad = *late = 0;
	for (unsigned i = 0; i < r->n; i++) {
		int64_t s = r->seq[i];

		if (s < 0 || s >= frames) {
			(*bad)++;
			continue;
		}
		if (seen[s]++) {
			(*dups)++;
			continue;
		}
		if (s < max)
			(*late)++;
		else
			max = s;
	}
	free(seen);
}

/* 20000 frames at 5%: mean 1000, sd about 31; [600, 1400] is over 12 sd away. */
enum {
	N = 20000,
	RATE = 50000,
	LO = 600,
	HI = 1400
};

static const struct fault_config base = {.seed = 1, .now = clk};

Test(fault, is_transparent_at_rate_zero)
{
	struct run r;
	unsigned dups, bad, late;

	run_link(&base, 5000, 8, &r);
	cr_assert_eq(r.n, 5000);
	for (unsigned i = 0; i < r.n; i++)
		cr_assert_eq(r.seq[i], i);
	observe(&r, 5000, &dups, &bad, &late);
	cr_assert_eq(dups + bad + late, 0);
	cr_assert_eq(r.tx.dropped + r.rx.dropped + r.tx.delayed + r.rx.delayed, 0);
	run_free(&r);
}

Test(fault, drops_everything_sent_at_rate_one)
{
	struct fault_config c = base;
	struct run r;

	c.tx.drop = 1000000;
	/* Four times the sender's buffers: dropped buffers must be reused. */
	run_link(&c, 1024, 8, &r);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(r.tx.dropped, 1024);
	cr_assert_eq(r.tx.frames, 1024);
	run_free(&r);
}

Test(fault, drops_everything_received_at_rate_one)
{
	struct fault_config c = base;
	struct run r;

	c.rx.drop = 1000000;
	run_link(&c, 1024, 8, &r);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(r.rx.dropped, 1024);
	run_free(&r);
}

static struct fault_config everything(uint64_t seed)
{
	struct fault_config c = base;
	struct fault_rates all = {
		.drop = RATE, .duplicate = RATE, .reorder = RATE, .corrupt = RATE, .delay = RATE};

	c.seed = seed;
	c.tx = c.rx = all;
	c.delay_ns = 3000;
	c.jitter_ns = 5000;
	return c;
}

Test(fault, repeats_the_same_faults_for_the_same_seed)
{
	struct fault_config c = everything(42);
	struct run r1, r2, r3;

	run_link(&c, 5000, 8, &r1);
	run_link(&c, 5000, 8, &r2);
	cr_assert_eq(r1.n, r2.n);
	cr_assert_eq(memcmp(r1.seq, r2.seq, r1.n * sizeof(*r1.seq)), 0);
	cr_assert_eq(memcmp(r1.at, r2.at, r1.n * sizeof(*r1.at)), 0);
	cr_assert_eq(memcmp(&r1.tx, &r2.tx, sizeof(r1.tx)), 0);
	cr_assert_eq(memcmp(&r1.rx, &r2.rx, sizeof(r1.rx)), 0);
	c.seed = 43;
	run_link(&c, 5000, 8, &r3);
	cr_assert(r3.n != r1.n || memcmp(r1.seq, r3.seq, r1.n * sizeof(*r1.seq)),
		  "another seed, other faults");
	run_free(&r1);
	run_free(&r2);
	run_free(&r3);
}

static void check_rate(const char *what, uint64_t counted, unsigned observed)
{
	cr_assert_eq(counted, observed, "%s: counted %lu, observed %u", what,
		     (unsigned long) counted, observed);
	cr_assert(observed >= LO && observed <= HI, "%s: %u of %u", what, observed, N);
}

Test(fault, keeps_the_faults_of_each_queue_independent)
{
	struct fault_config c = everything(5);
	struct run quiet, noisy;

	run_link(&c, 5000, 8, &quiet);
	noise_on_q1 = true;
	run_link(&c, 5000, 8, &noisy);
	cr_assert_eq(quiet.n, noisy.n);
	cr_assert_eq(memcmp(quiet.seq, noisy.seq, quiet.n * sizeof(*quiet.seq)), 0);
	cr_assert_eq(memcmp(quiet.at, noisy.at, quiet.n * sizeof(*quiet.at)), 0);
	cr_assert_gt(noisy.tx.frames, quiet.tx.frames, "queue 1 did face the dice");
	run_free(&quiet);
	run_free(&noisy);
}

Test(fault, loses_nothing_but_what_it_drops)
{
	struct fault_config c = everything(11);
	unsigned dups, bad, late;
	unsigned char *seen = calloc(N, 1);
	unsigned unique = 0;
	struct run r;

	c.tx.duplicate = c.rx.duplicate = c.tx.corrupt = c.rx.corrupt = 0;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	cr_assert_eq(dups + bad, 0);
	for (unsigned i = 0; i < r.n; i++)
		unique += !seen[r.seq[i]]++;
	cr_assert_eq(unique + r.tx.dropped + r.rx.dropped, N);
	cr_assert_eq(r.tx.hold_full + r.rx.hold_full, 0);
	cr_assert_gt(late, 0);
	free(seen);
	run_free(&r);
}

Test(fault, delays_at_about_the_rate)
{
	struct fault_config c = base;
	unsigned delayed = 0;
	struct run r;

	c.tx.delay = RATE;
	c.delay_ns = 3000;
	run_link(&c, N, 8, &r);
	cr_assert_eq(r.n, N);
	for (unsigned i = 0; i < r.n; i++)
		delayed += r.at[i] >= 1000000 + (uint64_t) (r.seq[i] / 8) * 1000 + 3000;
	check_rate("tx delay", r.tx.delayed, delayed);
	run_free(&r);
}

Test(fault, duplicates_at_about_the_rate_both_ways)
{
	struct fault_config c = base;
	unsigned dups, bad, late;
	struct run r;

	c.tx.duplicate = RATE;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	check_rate("tx duplicate", r.tx.duplicated, dups);
	cr_assert_eq(bad + late, 0);
	run_free(&r);

	c = base;
	c.rx.duplicate = RATE;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	check_rate("rx duplicate", r.rx.duplicated, dups);
	cr_assert_eq(bad + late, 0);
	run_free(&r);
}

Test(fault, corrupts_at_about_the_rate_both_ways)
{
	struct fault_config c = base;
	unsigned dups, bad, late;
	struct run r;

	c.tx.corrupt = RATE;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	check_rate("tx corrupt", r.tx.corrupted, bad);
	cr_assert_eq(r.n, N);
	run_free(&r);

	c = base;
	c.rx.corrupt = RATE;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	check_rate("rx corrupt", r.rx.corrupted, bad);
	run_free(&r);
}

Test(fault, reorders_at_about_the_rate_both_ways)
{
	struct fault_config c = base;
	unsigned dups, bad, late;
	struct run r;

	c.tx.reorder = RATE;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	cr_assert_eq(r.n, N);
	/* A frame held at the very end goes by timeout, not after a successor. */
	cr_assert(late <= r.tx.reordered && late + 2 >= r.tx.reordered, "%u late, %lu held", late,
		  (unsigned long) r.tx.reordered);
	check_rate("tx reorder", late, late);
	run_free(&r);

	c = base;
	c.rx.reorder = RATE;
	run_link(&c, N, 8, &r);
	observe(&r, N, &dups, &bad, &late);
	cr_assert(late <= r.rx.reordered && late + 2 >= r.rx.reordered);
	check_rate("rx reorder", late, late);
	run_free(&r);
}

Test(fault, drops_at_about_the_rate)
{
	struct fault_config c = base;
	struct run r;

	c.tx.drop = RATE;
	run_link(&c, N, 8, &r);
	check_rate("tx drop", r.tx.dropped, N - r.n);
	run_free(&r);
}

Test(fault, delays_by_the_virtual_clock_only)
{
	struct fault_config c = base;
	struct run r;

	c.tx.delay = 1000000;
	c.delay_ns = 5000;
	/* One frame per microsecond: five are held at any time, far below the holding area. */
	run_link(&c, 1000, 1, &r);
	cr_assert_eq(r.n, 1000);
	cr_assert_eq(r.tx.delayed, 1000);
	for (unsigned i = 0; i < r.n; i++) {
		uint64_t sent_at = 1000000 + (uint64_t) r.seq[i] * 1000;

		cr_assert_eq(r.at[i], sent_at + 5000, "frame %u", i);
	}
	run_free(&r);
}

Test(fault, passes_frames_on_when_the_holding_area_is_full)
{
	struct fault_config c = base;
	struct port *e[2], *a;
	struct port_frame f[16];
	struct fault_counters tx;

	c.tx.delay = 1000000;
	c.delay_ns = 5000;
	c.hold = 4;
	vnow = 0;
	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(fault_wrap(e[0], &c, &a), 0);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert(pf_send(a->queues[0], i, 64));
	cr_assert_eq(port_rx_poll(e[1]->queues[0], f, 16), 6);
	port_rx_release(e[1]->queues[0], f, 6);
	fault_get_counters(a, &tx, NULL);
	cr_assert_eq(tx.delayed, 4);
	cr_assert_eq(tx.hold_full, 6);
	cr_assert_eq(a->queues[0]->ops->arm(a->queues[0]), -EAGAIN, "frames are held");
	vnow = 5000;
	port_tx_reap(a->queues[0], NULL, 0); /* any call lets due frames go */
	cr_assert_eq(port_rx_poll(e[1]->queues[0], f, 16), 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pf_check(f[i].data, f[i].len), i);
	port_rx_release(e[1]->queues[0], f, 4);
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);
}

Test(fault, never_writes_external_memory_and_returns_its_cookies)
{
	static uint8_t mem[2048];
	struct fault_config c = base;
	struct port *e[2], *a;
	struct port_frame f = {.data = mem, .len = 200, .flags = PORT_F_EXTERNAL, .cookie = 1};
	uint64_t ck[4];
	uint32_t key;

	c.tx.corrupt = 1000000;
	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(fault_wrap(e[0], &c, &a), 0);
	cr_assert_eq(a->ops->mem_register(a, mem, sizeof(mem), &key), 0);
	pf_fill(mem, 200, 9);
	cr_assert_eq(port_tx_post(a->queues[0], &f, 1), 1);
	port_tx_flush(a->queues[0]);
	cr_assert_eq(pf_check(mem, 200), 9, "the caller's memory is untouched");
	cr_assert_eq(port_tx_reap(a->queues[0], ck, 4), 1);
	cr_assert_eq(ck[0], 1);
	cr_assert_eq(port_rx_poll(e[1]->queues[0], &f, 1), 1);
	cr_assert_eq(pf_check(f.data, f.len), -1, "the copy on the wire is damaged");
	port_rx_release(e[1]->queues[0], &f, 1);
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);

	/* A dropped external frame is finished at once. */
	c = base;
	c.tx.drop = 1000000;
	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(fault_wrap(e[0], &c, &a), 0);
	cr_assert_eq(a->ops->mem_register(a, mem, sizeof(mem), &key), 0);
	f = (struct port_frame){.data = mem, .len = 200, .flags = PORT_F_EXTERNAL, .cookie = 2};
	cr_assert_eq(port_tx_post(a->queues[0], &f, 1), 1);
	cr_assert_eq(port_tx_reap(a->queues[0], ck, 4), 1);
	cr_assert_eq(ck[0], 2);
	cr_assert_eq(port_rx_poll(e[1]->queues[0], &f, 1), 0);
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);
}

Test(fault, passes_chained_frames_untouched)
{
	struct fault_config c = base;
	struct port *e[2], *a;
	struct port_frame f[3];
	struct fault_counters tx;

	c.tx.drop = 1000000;
	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(fault_wrap(e[0], &c, &a), 0);
	cr_assert_eq(port_tx_alloc(a->queues[0], f, 3), 3);
	for (int i = 0; i < 3; i++) {
		f[i].len = 100;
		f[i].flags = i < 2 ? PORT_F_MORE : 0;
	}
	cr_assert_eq(port_tx_post(a->queues[0], f, 3), 3);
	port_tx_flush(a->queues[0]);
	cr_assert_eq(port_rx_poll(e[1]->queues[0], f, 3), 3);
	port_rx_release(e[1]->queues[0], f, 3);
	fault_get_counters(a, &tx, NULL);
	cr_assert_eq(tx.chained, 3);
	cr_assert_eq(tx.dropped, 0);
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);
}

Test(fault, carries_chains_across_its_queue_wrapping_round)
{
	struct fault_config c = base;
	struct port *e[2], *a;
	struct port_frame f[3];
	struct port_queue *qa, *qb;

	c.tx.corrupt = 1; /* on, so frames take the decorator's queue; almost never fires */
	c.seed = 7;
	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(fault_wrap(e[0], &c, &a), 0);
	qa = a->queues[0];
	qb = e[1]->queues[0];
	for (uint32_t i = 0; i < 1000; i++) {
		cr_assert_eq(port_tx_alloc(qa, f, 3), 3);
		for (int j = 0; j < 3; j++) {
			pf_fill(f[j].data, 64, i * 3 + (uint32_t) j);
			f[j].len = 64;
			f[j].flags = j < 2 ? PORT_F_MORE : 0;
		}
		cr_assert_eq(port_tx_post(qa, f, 3), 3);
		port_tx_flush(qa);
		cr_assert_eq(port_rx_poll(qb, f, 3), 3, "chain %u", i);
		for (int j = 0; j < 3; j++)
			cr_assert_eq(pf_check(f[j].data, f[j].len), i * 3 + (uint32_t) j);
		port_rx_release(qb, f, 3);
	}
	a->ops->destroy(a);
	e[1]->ops->destroy(e[1]);
}

Test(fault, gives_held_frames_back_when_destroyed)
{
	struct fault_config c = base;
	struct port *e[2], *b;
	struct port_frame f[4];

	c.rx.delay = 1000000;
	c.delay_ns = 1000;
	vnow = 0;
	cr_assert_eq(memlink_create(&(struct memlink_config){.nbufs = 16}, e), 0);
	cr_assert_eq(fault_wrap(e[1], &c, &b), 0);
	for (uint32_t i = 0; i < 8; i++)
		cr_assert(pf_send(e[0]->queues[0], i, 64));
	cr_assert_eq(port_rx_poll(b->queues[0], f, 4), 0, "all held");
	b->ops->destroy(b);
	/* The link is freed with its second end: nothing leaks, nothing is touched twice. */
	e[0]->ops->destroy(e[0]);
}

Test(fault, refuses_bad_configs)
{
	struct fault_config c = {.tx.delay = 1};
	struct port *e[2], *a;

	cr_assert_eq(memlink_create(NULL, e), 0);
	cr_assert_eq(fault_wrap(e[0], &c, &a), -EINVAL, "delay needs a clock");
	c = (struct fault_config){.rx.reorder = 1};
	cr_assert_eq(fault_wrap(e[0], &c, &a), -EINVAL, "reorder needs a clock");
	c = (struct fault_config){.rx.drop = 1000001};
	cr_assert_eq(fault_wrap(e[0], &c, &a), -EINVAL);
	cr_assert_eq(fault_get_counters(e[0], NULL, NULL), -EINVAL);
	e[0]->ops->destroy(e[0]);
	e[1]->ops->destroy(e[1]);
}

Test(fault, reads_specs_and_names_the_bad_pair)
{
	struct fault_config c = {0};
	char err[128] = "";

	cr_assert_eq(fault_parse("seed=7,drop=1%,tx-dup=0.5%,rx-corrupt=0.001,latency=100us,"
				 "jitter=2ms,reorder-wait=1s,hold=128,reorder=5%",
				 &c, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.seed, 7);
	cr_assert_eq(c.tx.drop, 10000);
	cr_assert_eq(c.rx.drop, 10000);
	cr_assert_eq(c.tx.duplicate, 5000);
	cr_assert_eq(c.rx.duplicate, 0);
	cr_assert_eq(c.rx.corrupt, 1000);
	cr_assert_eq(c.tx.reorder, 50000);
	cr_assert_eq(c.delay_ns, 100000);
	cr_assert_eq(c.jitter_ns, 2000000);
	cr_assert_eq(c.reorder_ns, 1000000000);
	cr_assert_eq(c.hold, 128);

	cr_assert_eq(fault_parse("drop=1%,lose=3%", &c, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "fault spec: unknown key 'lose'");
	cr_assert_eq(fault_parse("drop=150%", &c, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "fault spec: bad value '150%' for 'drop'");
	cr_assert_eq(fault_parse("latency=5", &c, err, sizeof(err)), -EINVAL,
		     "a time needs a unit");
	cr_assert_eq(fault_parse("tx-seed=1", &c, err, sizeof(err)), -EINVAL);
	cr_assert_eq(fault_parse("drop", &c, err, sizeof(err)), -EINVAL);
	cr_assert_eq(c.tx.drop, 10000, "a failed parse leaves cfg alone");
}

Test(fault, is_switched_on_by_xring_fault)
{
	struct port *e[2], *p;
	struct port_frame f;
	struct fault_counters tx;

	cr_assert_eq(memlink_create(NULL, e), 0);
	p = e[0];
	unsetenv("XRING_FAULT");
	cr_assert_eq(fault_wrap_env(&p), 0);
	setenv("XRING_FAULT", "drop=2%,colour=blue", 1);
	cr_assert_eq(fault_wrap_env(&p), -EINVAL);
	cr_assert_eq(p, e[0]);
	setenv("XRING_FAULT", "seed=3,tx-drop=100%", 1);
	cr_assert_eq(fault_wrap_env(&p), 1);
	unsetenv("XRING_FAULT");
	cr_assert(pf_send(p->queues[0], 1, 64));
	cr_assert_eq(port_rx_poll(e[1]->queues[0], &f, 1), 0, "dropped");
	cr_assert_eq(fault_get_counters(p, &tx, NULL), 0);
	cr_assert_eq(tx.dropped, 1);
	p->ops->destroy(p);
	e[1]->ops->destroy(e[1]);
}
