/*
 * TCP at scale: the pool of connection blocks that grows in chunks, the send and receive rings
 * lent only while a connection holds data, the timer heap, and TIME_WAIT giving way to a newer
 * SYN. Two stacks over the simulated link (support/sim.h) with no delay, so "flush" runs every
 * exchange to its end without moving the clock, and each timer is then driven by hand.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "support/sim.h"

#define MS    1000000ull
#define SPORT 80

static struct sim sim;
static struct tcp_config cfg;

static void start(void)
{
	struct sim_faults f = {0};

	cr_assert_eq(sim_init(&sim, 7, &f, &cfg), 0);
}

static void stop(void)
{
	sim_fini(&sim);
}

/* Deliver frames until the link is quiet; the clock stands still. */
static void flush(void)
{
	for (unsigned i = 0; i < 100000 && sim_step(&sim); i++)
		;
}

static struct tcp_stack *srv(void)
{
	return &sim.n[0].st;
}

static struct tcp_stack *cli(void)
{
	return &sim.n[1].st;
}

static struct tcb *listen_on(uint16_t port)
{
	struct tcb *lis;

	cr_assert_eq(tcp_listen(srv(), port, 4096, NULL, NULL, &lis), 0);
	return lis;
}

static struct tcb *connect_to(uint16_t port, uint16_t lport)
{
	struct tcb *t;

	cr_assert_eq(tcp_connect(cli(), sim.now, sim.n[0].ip, port, lport, NULL, NULL, &t), 0);
	return t;
}

/* One established pair: the client's end in *c, the server's in *a. */
static void pair(struct tcb *lis, struct tcb **c, struct tcb **a)
{
	uint16_t port;

	tcp_endpoints(lis, NULL, &port, NULL, NULL);
	*c = connect_to(port, 0);
	flush();
	cr_assert_eq(tcp_state(*c), TCPS_ESTABLISHED);
	cr_assert_eq(tcp_accept(lis, a), 0);
}

static void small_cfg(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_socks = 64;
	cfg.sndbuf = 16384;
	cfg.rcvbuf = 2896; /* two full segments (MSS 1460 less timestamps) close the window */
	cfg.keepidle_ns = 5000 * MS;
	cfg.keepintvl_ns = 1000 * MS;
	cfg.msl2_ns = 3000 * MS;
	start();
}

TestSuite(tcp_pool, .fini = stop);

Test(tcp_pool, grows_the_pool_in_chunks_and_keeps_every_handle_valid)
{
	const unsigned n = 3 * TCP_CHUNK + 4;
	struct tcb **h = calloc(n, sizeof(*h)), *lis, *t, *a;
	uint16_t *ports = calloc(n, sizeof(*ports));
	char buf[8];

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_socks = n + 1; /* the server's listener takes one block */
	start();
	cr_assert_eq(srv()->ntcb, TCP_CHUNK, "one chunk at start");
	lis = listen_on(SPORT);
	for (unsigned i = 0; i < n; i++) {
		h[i] = connect_to(SPORT, 0);
		tcp_endpoints(h[i], NULL, &ports[i], NULL, NULL);
		flush();
		cr_assert_eq(tcp_accept(lis, &a), 0);
	}
	cr_assert_eq(cli()->nchunk, 4, "grown to four chunks");
	cr_assert_eq(cli()->ntcb, n + 1, "the last chunk only as large as the limit allows");
	for (unsigned i = 0; i < n; i++) {
		uint16_t p;

		tcp_endpoints(h[i], NULL, &p, NULL, NULL);
		cr_assert_eq(p, ports[i], "block %u did not move", i);
		cr_assert_eq(tcp_state(h[i]), TCPS_ESTABLISHED);
		cr_assert_eq(tcp_lookup(cli(), sim.n[0].ip, SPORT, p), h[i]);
	}
	cr_assert_eq(tcp_connect(cli(), sim.now, sim.n[0].ip, SPORT, 0, NULL, NULL, &t), 0);
	cr_assert_eq(tcp_connect(cli(), sim.now, sim.n[0].ip, SPORT, 0, NULL, NULL, &t), -ENOMEM,
		     "no block beyond max_socks");
	/* A handle from the first chunk still carries data after the growth. */
	cr_assert_eq(tcp_send(h[0], sim.now, "first", 5), 5);
	flush();
	a = tcp_lookup(srv(), sim.n[1].ip, ports[0], SPORT);
	cr_assert_not_null(a);
	cr_assert_eq(tcp_recv(a, sim.now, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "first", 5), 0);
	free(h);
	free(ports);
}

Test(tcp_pool, lends_rings_only_while_a_connection_holds_data)
{
	struct tcb *lis, *c, *a;
	char out[2000], in[4096];
	long got = 0;

	small_cfg();
	lis = listen_on(SPORT);
	pair(lis, &c, &a);
	/* Nothing waits for Nagle or a delayed ACK: the clock stands still here. */
	tcp_setopt(c, TCP_OPT_NODELAY, 1);
	tcp_setopt(a, TCP_OPT_QUICKACK, 1);
	cr_assert_null(c->sbuf);
	cr_assert_null(c->rbuf);
	cr_assert_null(a->sbuf);
	cr_assert_null(a->rbuf);
	for (unsigned i = 0; i < sizeof(out); i++)
		out[i] = (char) (i * 7);
	for (int round = 0; round < 3; round++) {
		got = 0;
		cr_assert_eq(tcp_send(c, sim.now, out, sizeof(out)), (long) sizeof(out));
		cr_assert_not_null(c->sbuf, "a send ring while bytes wait for their ACK");
		flush();
		cr_assert_null(c->sbuf, "given back once everything is acknowledged");
		cr_assert_not_null(a->rbuf, "a receive ring while bytes are unread");
		while (got < (long) sizeof(out)) {
			long n = tcp_recv(a, sim.now, in + got, sizeof(in) - (size_t) got);

			cr_assert_gt(n, 0);
			got += n;
		}
		cr_assert_eq(memcmp(in, out, sizeof(out)), 0, "the data came through intact");
		cr_assert_null(a->rbuf, "given back once everything is read");
		flush();
	}
	cr_assert_eq(cli()->sbufs.total, 1, "the same ring served every round");
	cr_assert_eq(cli()->sbufs.nfree, 1);
	cr_assert_eq(srv()->rbufs.total, 1);
	cr_assert_eq(srv()->rbufs.nfree, 1);
}

Test(tcp_pool, keeps_out_of_order_data_in_a_lent_ring_until_it_is_read)
{
	struct tcb *lis, *c, *a;
	char in[64];

	small_cfg();
	lis = listen_on(SPORT);
	pair(lis, &c, &a);
	tcp_setopt(c, TCP_OPT_NODELAY, 1);
	/* The first segment is lost: the second waits out of order in a ring of its own. */
	sim.f.drop = 1.0;
	cr_assert_eq(tcp_send(c, sim.now, "abcd", 4), 4);
	flush();
	sim.f.drop = 0;
	cr_assert_eq(tcp_send(c, sim.now, "efgh", 4), 4);
	flush();
	cr_assert_not_null(a->rbuf);
	cr_assert_eq(tcp_rcvavail(a), 0);
	/* The retransmission fills the hole. */
	sim.now = c->t_rexmt;
	tcp_poll(cli(), sim.now);
	flush();
	cr_assert_eq(tcp_recv(a, sim.now, in, sizeof(in)), 8);
	cr_assert_eq(memcmp(in, "abcdefgh", 8), 0);
	cr_assert_null(a->rbuf);
}

/* The counter moves at the deadline d, not a nanosecond before, and tcp_poll() announced a
 * time no later than d. */
static void fires_at(struct tcp_stack *st, uint64_t d, const uint64_t *counter, const char *kind)
{
	uint64_t before = *counter;

	cr_assert_neq(d, 0, "armed");
	cr_assert_leq(tcp_poll(st, sim.now), d, "the stack wants to run by the deadline");
	tcp_poll(st, d - 1);
	cr_assert_eq(*counter, before, "%s: not before its deadline", kind);
	tcp_poll(st, d);
	cr_assert_eq(*counter, before + 1, "%s: at its deadline", kind);
	sim.now = d;
	flush();
}

Test(tcp_pool, fires_every_kind_of_timer_at_its_deadline_among_many_idle_connections)
{
	struct tcb *lis, *c[5], *a[5], *idle_c, *idle_a;
	char fill[16384];
	unsigned inuse;

	small_cfg();
	cfg.max_socks = 1024; /* re-made below with room for the idle crowd */
	stop();
	start();
	lis = listen_on(SPORT);
	for (unsigned i = 0; i < 300; i++)
		pair(lis, &idle_c, &idle_a);
	for (unsigned i = 0; i < 5; i++)
		pair(lis, &c[i], &a[i]);
	sim.now += 100 * MS;
	tcp_poll(srv(), sim.now);
	tcp_poll(cli(), sim.now);
	flush();

	/* Delayed ACK: a small segment is acknowledged delack_ns later. */
	cr_assert_eq(tcp_send(c[0], sim.now, "x", 1), 1);
	flush();
	fires_at(srv(), a[0]->t_delack, &srv()->stats.delacks, "delayed ACK");

	/* Retransmission timeout: a segment lost for good. */
	sim.f.drop = 1.0;
	cr_assert_eq(tcp_send(c[1], sim.now, "y", 1), 1);
	flush();
	sim.f.drop = 0;
	fires_at(cli(), c[1]->t_rexmt, &cli()->stats.rto_fired, "RTO");

	/* Keepalive: a probe after keepidle_ns of silence. */
	cr_assert_eq(tcp_setopt(c[2], TCP_OPT_KEEPALIVE, 1), 0);
	fires_at(cli(), c[2]->t_keep, &cli()->stats.keepalives_sent, "keepalive");

	/* Persist: data behind a closed window (the server reads nothing). */
	memset(fill, 'z', sizeof(fill));
	tcp_setopt(a[3], TCP_OPT_QUICKACK, 1);
	cr_assert_eq(tcp_send(c[3], sim.now, fill, sizeof(fill)), (long) sizeof(fill));
	flush();
	cr_assert(c[3]->flags & TF_PERSIST, "the window closed");
	fires_at(cli(), c[3]->t_rexmt, &cli()->stats.probes_sent, "persist");

	/* TIME_WAIT: the active closer's block is freed 2 MSL after the last FIN. */
	cr_assert_eq(tcp_close(c[4], sim.now), 0);
	flush();
	cr_assert_eq(tcp_close(a[4], sim.now), 0);
	flush();
	cr_assert_eq(tcp_state(c[4]), TCPS_TIME_WAIT);
	inuse = tcp_inuse(cli());
	cr_assert_eq(c[4]->t_2msl, sim.now + cfg.msl2_ns);
	tcp_poll(cli(), c[4]->t_2msl - 1);
	cr_assert_eq(tcp_inuse(cli()), inuse);
	tcp_poll(cli(), c[4]->t_2msl);
	cr_assert_eq(tcp_inuse(cli()), inuse - 1, "freed at the end of TIME_WAIT");
}

Test(tcp_pool, opens_a_new_connection_over_one_in_time_wait_for_a_newer_syn)
{
	struct tcb *lis, *c, *a;

	small_cfg();
	lis = listen_on(SPORT);
	c = connect_to(SPORT, 40000);
	flush();
	cr_assert_eq(tcp_accept(lis, &a), 0);
	/* The server closes first, so TIME_WAIT is on its side. */
	cr_assert_eq(tcp_close(a, sim.now), 0);
	flush();
	cr_assert_eq(tcp_close(c, sim.now), 0);
	flush();
	a = tcp_lookup(srv(), sim.n[1].ip, 40000, SPORT);
	cr_assert_not_null(a);
	cr_assert_eq(tcp_state(a), TCPS_TIME_WAIT);
	/* The same port again, later (newer timestamps). */
	sim.now += 10 * MS;
	c = connect_to(SPORT, 40000);
	flush();
	cr_assert_eq(tcp_state(c), TCPS_ESTABLISHED, "established without waiting 2 MSL");
	cr_assert_eq(srv()->stats.tw_reused, 1);
	cr_assert_eq(tcp_accept(lis, &a), 0);
	cr_assert_eq(tcp_state(a), TCPS_ESTABLISHED);
}

Test(tcp_pool, holds_100000_connections_in_one_stack_without_rings)
{
	const unsigned n = 100000, nports = 7, batch = 32;
	struct tcb *lis[7], **h = calloc(n, sizeof(*h)), *a;
	unsigned accepted = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_socks = n + 16;
	start();
	for (unsigned p = 0; p < nports; p++)
		lis[p] = listen_on((uint16_t) (SPORT + p));
	/* One first, so that the neighbours know each other before a burst. */
	h[0] = connect_to(SPORT, 0);
	flush();
	cr_assert_eq(tcp_accept(lis[0], &a), 0);
	accepted++;
	for (unsigned i = 1; i < n; i += batch) {
		for (unsigned j = i; j < i + batch && j < n; j++)
			h[j] = connect_to((uint16_t) (SPORT + j % nports), 0);
		flush();
		for (unsigned p = 0; p < nports; p++)
			while (tcp_accept(lis[p], &a) == 0)
				accepted++;
	}
	cr_assert_eq(
		accepted, n,
		"every connection was accepted (%u; syn queue full %llu, no tcb %llu, link full %llu)",
		accepted, (unsigned long long) srv()->stats.syn_queue_full,
		(unsigned long long) srv()->stats.no_tcb, (unsigned long long) sim.link_full);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(tcp_state(h[i]), TCPS_ESTABLISHED, "connection %u", i);
	/* A sample carries data; then nobody holds a ring. */
	for (unsigned i = 0; i < n; i += 997)
		cr_assert_eq(tcp_send(h[i], sim.now, "ping", 4), 4);
	flush();
	sim.now += 100 * MS; /* the delayed ACKs */
	tcp_poll(srv(), sim.now);
	flush();
	for (unsigned i = 0; i < n; i += 997) {
		uint16_t lport;
		char buf[8];

		tcp_endpoints(h[i], NULL, &lport, NULL, NULL);
		a = tcp_lookup(srv(), sim.n[1].ip, lport, (uint16_t) (SPORT + i % nports));
		cr_assert_not_null(a);
		cr_assert_eq(tcp_recv(a, sim.now, buf, sizeof(buf)), 4);
	}
	cr_assert_eq(cli()->sbufs.total, cli()->sbufs.nfree, "idle connections hold no send ring");
	cr_assert_eq(srv()->rbufs.total, srv()->rbufs.nfree, "nor receive rings");
	cr_assert_leq(cli()->sbufs.total, 64, "a hundred rings were lent at once; 64 are kept");
	cr_assert_eq(tcp_inuse(srv()), n + nports);
	cr_log_info("%u connections per stack, %zu bytes per connection block", n,
		    sizeof(struct tcb));
	free(h);
}

Test(tcp_pool, ends_the_oldest_time_wait_connection_when_the_pool_is_full)
{
	struct tcb *lis, *c, *a, *t;
	uint16_t first;

	small_cfg();
	stop();
	cfg.max_socks = 9; /* the listener and eight server ends */
	start();
	lis = listen_on(SPORT);
	/* Eight connections, each closed by the server first: eight blocks in TIME_WAIT there. */
	for (unsigned i = 0; i < 8; i++) {
		pair(lis, &c, &a);
		if (!i)
			tcp_endpoints(c, NULL, &first, NULL, NULL);
		cr_assert_eq(tcp_close(a, sim.now), 0);
		flush();
		cr_assert_eq(tcp_close(c, sim.now), 0);
		flush();
		sim.now += MS;
	}
	cr_assert_eq(tcp_inuse(srv()), 9, "the pool is full of TIME_WAIT");
	t = tcp_lookup(srv(), sim.n[1].ip, first, SPORT);
	cr_assert_not_null(t);
	cr_assert_eq(tcp_state(t), TCPS_TIME_WAIT);
	/* A ninth connection still gets a block: the oldest TIME_WAIT one. */
	pair(lis, &c, &a);
	cr_assert_eq(srv()->stats.tw_recycled, 1);
	cr_assert_null(tcp_lookup(srv(), sim.n[1].ip, first, SPORT), "the oldest went");
	cr_assert_eq(tcp_state(a), TCPS_ESTABLISHED);
}
