/*
 * TCP between two stacks over a faulty simulated link (support/sim.c), on a virtual clock that
 * jumps to the next event: every byte arrives once and in order, both connections finish, no
 * run hangs. A failing seed is printed; rerun it alone with TCP_SIM_SEED=<n>.
 *
 * Environment: TCP_SIM_SEEDS (count), TCP_SIM_SEED (first seed), TCP_SIM_BYTES (each way).
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
#define SERVER_PORT 5001

struct side {
	struct tcb *t;
	struct tcb *lis;
	uint64_t sent, rcvd, total, expect;
	uint64_t read_every, next_read; /* a slow reader: read_max bytes per period */
	size_t read_max;
	uint8_t dir;
	bool shut, closed, saw_tw, connected;
	int err;
	enum tcp_state final;
};

struct run {
	uint64_t seed;
	char why[256];
	struct side c, s;
	uint64_t vtime, steps;
	uint64_t app_lead; /* the applications' clock reads this far ahead of the link's */
	struct sim sim;
};

static uint8_t pattern(uint64_t seed, uint8_t dir, uint64_t i)
{
	uint64_t z = (seed * 2 + dir) * 0x9e3779b97f4a7c15ull + i;

	z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ull;
	return (uint8_t) (z >> 56);
}

#define FAIL(r, ...)                                                                               \
	do {                                                                                       \
		snprintf((r)->why, sizeof((r)->why), __VA_ARGS__);                                 \
		return -1;                                                                         \
	} while (0)

/* One pass of an application on one side: push, pull, shut down, close. */
static int app(struct run *r, struct side *sd)
{
	uint64_t now = r->sim.now + r->app_lead;
	uint8_t buf[4096];
	long n;

	if (!sd->t || sd->closed)
		return 0;
	if (tcp_error(sd->t))
		FAIL(r, "side %u: error %d in %s", sd->dir, tcp_error(sd->t),
		     tcp_state_name(tcp_state(sd->t)));
	if (tcp_state(sd->t) >= TCPS_ESTABLISHED)
		sd->connected = true;
	while (sd->connected && sd->sent < sd->total) {
		size_t k = sizeof(buf);

		if (k > sd->total - sd->sent)
			k = (size_t) (sd->total - sd->sent);
		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(r->seed, sd->dir, sd->sent + i);
		n = tcp_send(sd->t, now, buf, k);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			FAIL(r, "side %u: send %ld", sd->dir, n);
		sd->sent += (uint64_t) n;
	}
	if (sd->connected && sd->sent == sd->total && !sd->shut) {
		if (tcp_shutdown(sd->t, now, 1) < 0)
			FAIL(r, "side %u: shutdown failed", sd->dir);
		sd->shut = true;
	}
	for (size_t budget = 0;;) {
		size_t want = sizeof(buf);

		if (sd->read_every) {
			/* Each period, one burst of reads that takes up to read_max bytes. */
			if (!budget) {
				if (now < sd->next_read) {
					n = -EAGAIN;
					break;
				}
				sd->next_read = now + sd->read_every;
				budget = sd->read_max;
			}
			if (want > budget)
				want = budget;
		}
		n = tcp_recv(sd->t, now, buf, want);
		if (n == -EAGAIN || n == 0)
			break;
		if (n < 0)
			FAIL(r, "side %u: recv %ld", sd->dir, n);
		for (long i = 0; i < n; i++)
			if (buf[i] != pattern(r->seed, (uint8_t) !sd->dir, sd->rcvd + (uint64_t) i))
				FAIL(r, "side %u: byte %llu altered", sd->dir,
				     (unsigned long long) (sd->rcvd + (uint64_t) i));
		sd->rcvd += (uint64_t) n;
		if (sd->rcvd > sd->expect)
			FAIL(r, "side %u: %llu bytes received, %llu sent", sd->dir,
			     (unsigned long long) sd->rcvd, (unsigned long long) sd->expect);
		if (sd->read_every && (budget -= (size_t) n) == 0)
			break;
	}
	if (tcp_state(sd->t) == TCPS_TIME_WAIT)
		sd->saw_tw = true;
	if (n == 0 && sd->shut && tcp_acked(sd->t) == sd->total &&
	    (tcp_state(sd->t) == TCPS_TIME_WAIT || tcp_state(sd->t) == TCPS_CLOSED)) {
		if (sd->rcvd != sd->expect)
			FAIL(r, "side %u: end of stream after %llu of %llu bytes", sd->dir,
			     (unsigned long long) sd->rcvd, (unsigned long long) sd->expect);
		sd->final = tcp_state(sd->t);
		sd->err = tcp_error(sd->t);
		tcp_close(sd->t, now);
		sd->closed = true;
	}
	return 0;
}

static int apps(struct run *r)
{
	struct side *s = &r->s;

	if (!s->t && s->lis) {
		struct tcb *c;

		if (tcp_accept(s->lis, &c) == 0) {
			s->t = c;
			tcp_close(s->lis, r->sim.now + r->app_lead);
			s->lis = NULL;
		}
	}
	if (app(r, &r->c) < 0 || app(r, &r->s) < 0)
		return -1;
	return 0;
}

struct scenario {
	uint64_t client_bytes, server_bytes; /* each side sends this many */
	uint64_t read_every;                 /* server reads slowly: period, 0 for at once */
	size_t read_max;
	/* The applications read their clock this much later than the link stamped the frames
	 * just delivered, as an event loop that stamps a burst once before serving it does. */
	uint64_t app_lead_ns;
	/* No faults: then no segment may arrive out of order, be dropped by PAWS or be sent
	 * twice. */
	bool clean;
};

static int run_one(struct run *r, uint64_t seed, const struct scenario *sc,
		   const struct sim_faults *f, const struct tcp_config *tc)
{
	struct sim *sim = &r->sim;
	int ret;

	memset(r, 0, sizeof(*r));
	r->seed = seed;
	if (sim_init(sim, seed, f, tc) < 0)
		FAIL(r, "sim_init");
	r->c.total = r->s.expect = sc->client_bytes;
	r->s.total = r->c.expect = sc->server_bytes;
	r->s.read_every = sc->read_every;
	r->s.read_max = sc->read_max;
	r->app_lead = sc->app_lead_ns;
	r->c.dir = 0;
	r->s.dir = 1;
	if (tcp_listen(&sim->n[1].st, SERVER_PORT, 8, NULL, NULL, &r->s.lis) < 0)
		FAIL(r, "listen");
	ret = tcp_connect(&sim->n[0].st, sim->now, sim->n[1].ip, SERVER_PORT, 0, NULL, NULL,
			  &r->c.t);
	if (ret < 0)
		FAIL(r, "connect %d", ret);
	for (r->steps = 0; r->steps < MAX_STEPS; r->steps++) {
		uint64_t next;

		sim_step(sim);
		if (apps(r) < 0)
			return -1;
		if (r->c.closed && r->s.closed && !tcp_inuse(&sim->n[0].st) &&
		    !tcp_inuse(&sim->n[1].st))
			break;
		next = sim_next(sim);
		if (apps(r) < 0)
			return -1;
		if (next == UINT64_MAX) {
			if (r->c.closed && r->s.closed && !tcp_inuse(&sim->n[0].st) &&
			    !tcp_inuse(&sim->n[1].st))
				break;
			FAIL(r,
			     "hang: nothing pending, client %s server %s, sent %llu/%llu rcvd %llu/%llu",
			     r->c.t && !r->c.closed ? tcp_state_name(tcp_state(r->c.t)) : "-",
			     r->s.t && !r->s.closed ? tcp_state_name(tcp_state(r->s.t)) : "-",
			     (unsigned long long) r->c.sent, (unsigned long long) r->s.sent,
			     (unsigned long long) r->c.rcvd, (unsigned long long) r->s.rcvd);
		}
		if (r->s.read_every && r->s.t && !r->s.closed && r->s.next_read < next)
			next = r->s.next_read > sim->now ? r->s.next_read : sim->now + 1;
		if (next > sim->now)
			sim->now = next;
		if (sim->now > MAX_VTIME + S)
			FAIL(r, "virtual time limit: client %s server %s, rcvd %llu/%llu",
			     r->c.t && !r->c.closed ? tcp_state_name(tcp_state(r->c.t)) : "-",
			     r->s.t && !r->s.closed ? tcp_state_name(tcp_state(r->s.t)) : "-",
			     (unsigned long long) r->c.rcvd, (unsigned long long) r->s.rcvd);
	}
	if (r->steps >= MAX_STEPS)
		FAIL(r, "step limit");
	r->vtime = sim->now;
	if (r->c.err || r->s.err)
		FAIL(r, "errors %d %d", r->c.err, r->s.err);
	for (int i = 0; i < 2 && sc->clean; i++) {
		const struct tcp_stats *ts = tcp_get_stats(&sim->n[i].st);

		if (ts->ooo_segs || ts->paws_drops || ts->rexmt_bytes || ts->rto_fired ||
		    ts->fast_rexmt)
			FAIL(r,
			     "node %d on a clean link: %llu out of order, %llu PAWS drops, %llu bytes "
			     "resent, %llu timeouts, %llu fast retransmits",
			     i, (unsigned long long) ts->ooo_segs,
			     (unsigned long long) ts->paws_drops,
			     (unsigned long long) ts->rexmt_bytes,
			     (unsigned long long) ts->rto_fired,
			     (unsigned long long) ts->fast_rexmt);
	}
	if (!r->c.saw_tw && !r->s.saw_tw)
		FAIL(r, "nobody went through TIME_WAIT");
	return 0;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

/* Built again over two verbs ports on softverbs (support/sim_verbs.c), with a fifth of the
 * seeds (at least two). */
#ifdef SIM_OVER_VERBS
#define SEEDS(n) ((n) / 5 > 2 ? (n) / 5 : 2)
#else
#define SEEDS(n) (n)
#endif

static void campaign_sc(const char *what, uint64_t def_seeds, const struct scenario *def_sc,
			const struct sim_faults *f, const struct tcp_config *tc)
{
	uint64_t first = env_u64("TCP_SIM_SEED", 1), n = env_u64("TCP_SIM_SEEDS", SEEDS(def_seeds));
	struct scenario sc = *def_sc;
	uint64_t bytes = env_u64("TCP_SIM_BYTES", sc.client_bytes);
	uint64_t vt = 0, sent = 0, dropped = 0, corrupted = 0, rto = 0, frx = 0, probes = 0,
		 sackr = 0;
	static struct run r;

	if (getenv("TCP_SIM_SEED") && !getenv("TCP_SIM_SEEDS"))
		n = 1;
	for (uint64_t seed = first; seed < first + n; seed++) {
		int ret;

		if (getenv("TCP_SIM_BYTES")) {
			sc.client_bytes = bytes;
			sc.server_bytes = def_sc->server_bytes ? bytes : 0;
		}
		ret = run_one(&r, seed, &sc, f, tc);

		vt += r.sim.now;
		if (getenv("TCP_SIM_VERBOSE"))
			fprintf(stderr,
				"seed %llu: %.3f s virtual, %llu steps, %llu frames, %llu reordered\n",
				(unsigned long long) seed, (double) r.sim.now / 1e9,
				(unsigned long long) r.steps, (unsigned long long) r.sim.sent,
				(unsigned long long) r.sim.reordered);
		sent += r.sim.sent;
		dropped += r.sim.dropped;
		corrupted += r.sim.corrupted;
		for (int i = 0; i < 2; i++) {
			const struct tcp_stats *ts = tcp_get_stats(&r.sim.n[i].st);

			rto += ts->rto_fired;
			frx += ts->fast_rexmt;
			sackr += ts->sack_recoveries;
			probes += ts->probes_sent;
		}
		sim_fini(&r.sim);
		cr_assert_eq(ret, 0, "%s: seed %llu failed: %s (rerun: TCP_SIM_SEED=%llu)", what,
			     (unsigned long long) seed, r.why, (unsigned long long) seed);
	}
	cr_log_info("%s: %llu seeds x %llu bytes: %llu frames, %llu dropped, %llu corrupted, "
		    "mean virtual time %.2f s; %llu timeouts, %llu fast retransmits (%llu "
		    "SACK-based), %llu persist probes",
		    what, (unsigned long long) n, (unsigned long long) bytes,
		    (unsigned long long) sent, (unsigned long long) dropped,
		    (unsigned long long) corrupted, (double) vt / (double) n / 1e9,
		    (unsigned long long) rto, (unsigned long long) frx, (unsigned long long) sackr,
		    (unsigned long long) probes);
}

static void campaign(const char *what, uint64_t def_seeds, uint64_t def_bytes,
		     const struct sim_faults *f, const struct tcp_config *tc)
{
	struct scenario sc = {.client_bytes = def_bytes, .server_bytes = def_bytes};

	campaign_sc(what, def_seeds, &sc, f, tc);
}

static const struct tcp_config small_cfg = {
	.max_socks = 8,
	.sndbuf = 16384,
	.rcvbuf = 16384,
};

Test(tcp_sim, transfers_every_byte_once_and_in_order_over_a_clean_link)
{
	struct sim_faults f = {.delay_ns = 1 * MS};

	campaign("clean", 20, 200000, &f, &small_cfg);
}

Test(tcp_sim, survives_loss_reordering_duplication_and_corruption_on_every_seed)
{
	struct sim_faults f = {.drop = 0.05,
			       .reorder = 0.05,
			       .dup = 0.01,
			       .corrupt = 0.001,
			       .delay_ns = 1 * MS,
			       .reorder_ns = 4 * MS};

	campaign("faulty", 3000, 50000, &f, &small_cfg);
}

Test(tcp_sim, survives_the_same_faults_with_newreno_and_without_sack)
{
	struct sim_faults f = {.drop = 0.05,
			       .reorder = 0.05,
			       .dup = 0.01,
			       .corrupt = 0.001,
			       .delay_ns = 1 * MS,
			       .reorder_ns = 4 * MS};
	struct tcp_config c = small_cfg;

	c.cc = TCP_CC_NEWRENO;
	campaign("faulty-newreno", 300, 20000, &f, &c);
	c.no_sack = true;
	campaign("faulty-newreno-nosack", 500, 50000, &f, &c);
	c.cc = TCP_CC_CUBIC;
	campaign("faulty-cubic-nosack", 500, 50000, &f, &c);
}

Test(tcp_sim, survives_heavy_loss_with_long_transfers)
{
	struct sim_faults f = {.drop = 0.15,
			       .reorder = 0.2,
			       .dup = 0.05,
			       .corrupt = 0.01,
			       .delay_ns = 5 * MS,
			       .reorder_ns = 20 * MS};

	campaign("heavy", 30, 100000, &f, &small_cfg);
}

Test(tcp_sim, delivers_to_a_slow_reader_through_zero_windows_under_faults)
{
	struct sim_faults f = {.drop = 0.05,
			       .reorder = 0.05,
			       .dup = 0.01,
			       .corrupt = 0.001,
			       .delay_ns = 1 * MS,
			       .reorder_ns = 4 * MS};
	struct scenario sc = {.client_bytes = 60000,
			      .server_bytes = 3000,
			      .read_every = 50 * MS,
			      .read_max = 1000};

	campaign_sc("slow-reader", 300, &sc, &f, &small_cfg);
}

Test(tcp_sim, finishes_a_one_way_transfer_where_the_server_sends_nothing)
{
	struct sim_faults f = {.drop = 0.05,
			       .reorder = 0.05,
			       .dup = 0.01,
			       .corrupt = 0.001,
			       .delay_ns = 1 * MS,
			       .reorder_ns = 4 * MS};
	struct scenario sc = {.client_bytes = 40000, .server_bytes = 0};

	campaign_sc("one-way", 500, &sc, &f, &small_cfg);
}

Test(tcp_sim, scales_windows_with_large_buffers_under_faults)
{
	struct sim_faults f = {.drop = 0.05,
			       .reorder = 0.05,
			       .dup = 0.01,
			       .corrupt = 0.001,
			       .delay_ns = 1 * MS,
			       .reorder_ns = 4 * MS};
	struct tcp_config c = small_cfg;

	c.sndbuf = c.rcvbuf = 256 * 1024; /* window scale 3 */
	campaign("large-buffers", 200, 400000, &f, &c);
}

Test(tcp_sim, loses_nothing_with_scaled_windows_and_a_bursty_reader_on_a_clean_link)
{
	struct sim_faults f = {.delay_ns = 50 * 1000};
	struct scenario sc = {.client_bytes = 1000000,
			      .server_bytes = 20000,
			      .read_every = 300 * 1000,
			      .read_max = 16384,
			      .clean = true};
	struct tcp_config c = small_cfg;

	c.sndbuf = c.rcvbuf = 128 * 1024; /* window scale 2 */
	campaign_sc("clean-scaled", 20, &sc, &f, &c);
	/* The applications' clock runs ahead of the link's: the stack sees time go back a
	 * little between calls, yet its timestamps must not (RFC 7323 5.4). */
	sc.app_lead_ns = 700 * 1000;
	campaign_sc("clean-scaled-app-ahead", 20, &sc, &f, &c);
	c.sndbuf = c.rcvbuf = 1024 * 1024; /* window scale 5 */
	sc.read_max = 65536;
	campaign_sc("clean-1m-app-ahead", 10, &sc, &f, &c);
}
