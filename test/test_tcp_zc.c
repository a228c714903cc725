/*
 * The stack's zero-copy hooks between two stacks over the faulty simulated link
 * (support/sim.c): a sender that lends its buffers (tcp_send_ref) and a receiver whose payload
 * is placed straight into a posted buffer (tcp_rx_fn).
 *
 * The sender scribbles over each buffer the moment tcp_acked() says the peer holds all of it,
 * and reuses it: a segment built from a buffer after its loan ended (a late retransmission, a
 * probe) would carry the scribble and the receiver would see altered bytes. The receiver checks
 * every byte of the stream in order, whichever way it came (hook or ring), while reordering
 * makes the stack keep out-of-order data in its ring and loss makes the sender retransmit from
 * lent buffers. A failing seed is printed; rerun it alone with TCP_ZC_SEED=<n>.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/sim.h"

#define S  1000000000ull
#define MS 1000000ull

#define MAX_STEPS   4000000u
#define MAX_VTIME   (900 * S)
#define SERVER_PORT 5002
#define NBUF        6
#define BUF_SIZE    2999 /* odd, so loans straddle segments and the ring's end */
#define SCRIBBLE    0xa5

struct lent {
	uint8_t data[BUF_SIZE];
	uint64_t start; /* stream offset of data[0] */
	uint32_t len, taken;
	uint64_t end; /* tcp_queued() once every byte was taken */
	bool busy;
};

struct zrun {
	uint64_t seed;
	char why[256];
	struct sim sim;
	bool close_early; /* close as soon as every byte is lent, then scribble everything */
	uint64_t total;

	/* sender */
	struct tcb *c;
	struct lent buf[NBUF];
	unsigned cur, oldest, nbusy;
	uint64_t queued; /* bytes handed to the stack */
	bool c_done, c_closed;
	unsigned max_loans;

	/* receiver */
	struct tcb *lis, *s;
	uint8_t post[1500];
	size_t post_cap, post_len; /* the posted receive: room, and bytes the hook put there */
	uint64_t rcvd, hooked;
	bool s_closed;
};

static uint8_t pattern(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + i;

	z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ull;
	return (uint8_t) (z >> 56);
}

#define FAIL(r, ...)                                                                               \
	do {                                                                                       \
		snprintf((r)->why, sizeof((r)->why), __VA_ARGS__);                                 \
		return -1;                                                                         \
	} while (0)

static size_t place(void *arg, struct tcb *t, const uint8_t *data, size_t len)
{
	struct zrun *r = arg;
	size_t n = r->post_cap - r->post_len;

	(void) t;
	if (n > len)
		n = len;
	memcpy(r->post + r->post_len, data, n);
	r->post_len += n;
	r->hooked += n;
	return n;
}

static int check(struct zrun *r, const uint8_t *p, size_t n, const char *how)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(r->seed, r->rcvd + i))
			FAIL(r, "byte %llu altered (%s): %#x", (unsigned long long) (r->rcvd + i),
			     how, p[i]);
	r->rcvd += n;
	if (r->rcvd > r->total)
		FAIL(r, "%llu bytes received, %llu sent", (unsigned long long) r->rcvd,
		     (unsigned long long) r->total);
	return 0;
}

static void repost(struct zrun *r)
{
	r->post_len = 0;
	r->post_cap = 1 + (size_t) (sim_rand(&r->sim) % sizeof(r->post));
}

static int sender(struct zrun *r, uint64_t now)
{
	if (!r->c || r->c_closed)
		return 0;
	if (tcp_error(r->c))
		FAIL(r, "sender: error %d", tcp_error(r->c));
	if (tcp_state(r->c) < TCPS_ESTABLISHED)
		return 0;
	/* Loans the peer's ACK covers end: scribble over them at once, then reuse. */
	while (r->nbusy && r->buf[r->oldest].taken == r->buf[r->oldest].len &&
	       tcp_acked(r->c) >= r->buf[r->oldest].end) {
		memset(r->buf[r->oldest].data, SCRIBBLE, BUF_SIZE);
		r->buf[r->oldest].busy = false;
		r->oldest = (r->oldest + 1) % NBUF;
		r->nbusy--;
	}
	while (!r->c_done) {
		struct lent *b = &r->buf[r->cur];
		long n;

		if (b->busy && b->taken == b->len)
			break; /* every buffer is lent: wait for an ACK */
		if (!b->busy) {
			if (r->queued == r->total) {
				r->c_done = true;
				break;
			}
			b->busy = true;
			b->start = r->queued;
			b->len = r->total - r->queued < BUF_SIZE ? (uint32_t) (r->total - r->queued)
								 : BUF_SIZE;
			b->taken = 0;
			for (uint32_t i = 0; i < b->len; i++)
				b->data[i] = pattern(r->seed, b->start + i);
			r->nbusy++;
		}
		n = tcp_send_ref(r->c, now, b->data + b->taken, b->len - b->taken);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			FAIL(r, "sender: send %ld", n);
		b->taken += (uint32_t) n;
		r->queued += (uint64_t) n;
		if (r->c->nzref > r->max_loans)
			r->max_loans = r->c->nzref;
		if (b->taken < b->len)
			break;
		b->end = tcp_queued(r->c);
		if (b->end != r->queued)
			FAIL(r, "tcp_queued %llu, %llu handed over", (unsigned long long) b->end,
			     (unsigned long long) r->queued);
		r->cur = (r->cur + 1) % NBUF;
		if (r->buf[r->cur].busy)
			break; /* every buffer is lent: wait for an ACK */
	}
	if (r->c_done && r->close_early) {
		/* The application lets go now: close must pay every loan back first. */
		tcp_close(r->c, now);
		for (unsigned i = 0; i < NBUF; i++)
			memset(r->buf[i].data, SCRIBBLE, BUF_SIZE);
		r->c_closed = true;
		return 0;
	}
	if (r->c_done && tcp_state(r->c) == TCPS_ESTABLISHED)
		tcp_shutdown(r->c, now, 1);
	if (r->c_done && tcp_acked(r->c) == r->total &&
	    (tcp_state(r->c) == TCPS_TIME_WAIT || tcp_state(r->c) == TCPS_CLOSED)) {
		tcp_close(r->c, now);
		r->c_closed = true;
	}
	return 0;
}

static int receiver(struct zrun *r, uint64_t now)
{
	uint8_t tmp[1024];
	long n;

	if (!r->s && r->lis && tcp_accept(r->lis, &r->s) == 0) {
		tcp_set_cb(r->s, NULL, r);
		tcp_set_rx_hook(r->s, place);
		tcp_close(r->lis, now);
		r->lis = NULL;
	}
	if (!r->s || r->s_closed)
		return 0;
	if (tcp_error(r->s))
		FAIL(r, "receiver: error %d", tcp_error(r->s));
	/* The peer may count as acknowledged only what this side holds in order. */
	if (r->c && !r->c_closed && tcp_acked(r->c) > r->rcvd + r->post_len + tcp_rcvavail(r->s))
		FAIL(r, "sender sees %llu bytes acknowledged, receiver holds %llu",
		     (unsigned long long) tcp_acked(r->c),
		     (unsigned long long) (r->rcvd + r->post_len + tcp_rcvavail(r->s)));
	/* The posted receive completes with what the hook put there, then reads the ring. */
	if (r->post_len) {
		if (check(r, r->post, r->post_len, "placed") < 0)
			return -1;
		repost(r);
	}
	while ((n = tcp_recv(r->s, now, tmp, sizeof(tmp))) > 0)
		if (check(r, tmp, (size_t) n, "ring") < 0)
			return -1;
	if (n == 0) {
		if (r->rcvd != r->total)
			FAIL(r, "end of stream after %llu of %llu bytes",
			     (unsigned long long) r->rcvd, (unsigned long long) r->total);
		tcp_close(r->s, now);
		r->s_closed = true;
	} else if (n != -EAGAIN) {
		FAIL(r, "receiver: recv %ld", n);
	}
	return 0;
}

static int run_one(struct zrun *r, uint64_t seed, uint64_t total, bool close_early,
		   const struct sim_faults *f, const struct tcp_config *tc)
{
	struct sim *sim = &r->sim;

	memset(r, 0, sizeof(*r));
	r->seed = seed;
	r->total = total;
	r->close_early = close_early;
	if (sim_init(sim, seed, f, tc) < 0)
		FAIL(r, "sim_init");
	repost(r);
	if (tcp_listen(&sim->n[1].st, SERVER_PORT, 8, NULL, NULL, &r->lis) < 0)
		FAIL(r, "listen");
	if (tcp_connect(&sim->n[0].st, sim->now, sim->n[1].ip, SERVER_PORT, 0, NULL, NULL, &r->c))
		FAIL(r, "connect");
	for (unsigned steps = 0; steps < MAX_STEPS; steps++) {
		uint64_t next;

		sim_step(sim);
		if (sender(r, sim->now) < 0 || receiver(r, sim->now) < 0)
			return -1;
		if (r->c_closed && r->s_closed && !tcp_inuse(&sim->n[0].st) &&
		    !tcp_inuse(&sim->n[1].st))
			return 0;
		next = sim_next(sim);
		if (sender(r, sim->now) < 0 || receiver(r, sim->now) < 0)
			return -1;
		if (r->c_closed && r->s_closed && !tcp_inuse(&sim->n[0].st) &&
		    !tcp_inuse(&sim->n[1].st))
			return 0;
		if (next == UINT64_MAX)
			FAIL(r,
			     "hang: sent %llu, received %llu, sender %s (acked %llu), receiver %s",
			     (unsigned long long) r->queued, (unsigned long long) r->rcvd,
			     r->c_closed ? "closed" : tcp_state_name(tcp_state(r->c)),
			     r->c_closed ? 0ull : (unsigned long long) tcp_acked(r->c),
			     !r->s         ? "-"
			     : r->s_closed ? "closed"
					   : tcp_state_name(tcp_state(r->s)));
		if (next > sim->now)
			sim->now = next;
		if (sim->now > MAX_VTIME)
			FAIL(r, "virtual time limit: received %llu of %llu",
			     (unsigned long long) r->rcvd, (unsigned long long) r->total);
	}
	FAIL(r, "step limit");
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

struct totals {
	uint64_t rexmt, ooo, hooked, loans;
};

static void campaign(const char *what, uint64_t seeds, uint64_t bytes, bool close_early,
		     const struct sim_faults *f, struct totals *tot)
{
	static const struct tcp_config cfg = {.max_socks = 8, .sndbuf = 16384, .rcvbuf = 16384};
	uint64_t first = env_u64("TCP_ZC_SEED", 1);
	static struct zrun r;

	if (getenv("TCP_ZC_SEED"))
		seeds = 1;
	memset(tot, 0, sizeof(*tot));
	for (uint64_t seed = first; seed < first + seeds; seed++) {
		int ret = run_one(&r, seed, bytes, close_early, f, &cfg);

		tot->rexmt += tcp_get_stats(&r.sim.n[0].st)->rexmt_bytes;
		tot->ooo += tcp_get_stats(&r.sim.n[1].st)->ooo_segs;
		tot->hooked += r.hooked;
		tot->loans += r.max_loans;
		sim_fini(&r.sim);
		cr_assert_eq(ret, 0, "%s: seed %llu failed: %s (rerun: TCP_ZC_SEED=%llu)", what,
			     (unsigned long long) seed, r.why, (unsigned long long) seed);
	}
	cr_log_info("%s: %llu seeds x %llu bytes: %llu bytes resent from lent buffers, %llu "
		    "segments out of order, %llu bytes placed by the hook",
		    what, (unsigned long long) seeds, (unsigned long long) bytes,
		    (unsigned long long) tot->rexmt, (unsigned long long) tot->ooo,
		    (unsigned long long) tot->hooked);
}

static const struct sim_faults faulty = {.drop = 0.05,
					 .reorder = 0.05,
					 .dup = 0.01,
					 .corrupt = 0.001,
					 .delay_ns = 1 * MS,
					 .reorder_ns = 4 * MS};

Test(tcp_zc, lent_buffers_are_read_only_until_the_ack_covers_them_on_a_clean_link)
{
	struct sim_faults f = {.delay_ns = 1 * MS};
	struct totals t;

	campaign("zc-clean", 20, 100000, false, &f, &t);
	cr_assert_gt(t.loans, 0, "tcp_send_ref never lent a buffer");
	cr_assert_gt(t.hooked, 0, "the receive hook never placed a byte");
}

Test(tcp_zc, retransmissions_read_the_lent_buffer_and_reordered_data_goes_through_the_ring)
{
	struct totals t;

	campaign("zc-faulty", 500, 60000, false, &faulty, &t);
	cr_assert_gt(t.rexmt, 0, "no retransmission happened: the test proves nothing");
	cr_assert_gt(t.ooo, 0, "nothing arrived out of order: the test proves nothing");
	cr_assert_gt(t.hooked, 0, "the receive hook never placed a byte");
}

Test(tcp_zc, close_pays_every_loan_back_before_the_buffers_are_reused)
{
	struct totals t;

	campaign("zc-close-early", 300, 60000, true, &faulty, &t);
	cr_assert_gt(t.rexmt, 0, "no retransmission happened: the test proves nothing");
}
