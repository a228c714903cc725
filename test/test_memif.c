/*
 * memif port: two processes over a real memif link (fork), reconnecting after the peer dies,
 * and a hostile peer that lies in rings and control messages.
 *
 * XRING_MEMIF_SMALL=64,9000 counts can be set with XRING_MEMIF_N64 / XRING_MEMIF_N9000; the
 * defaults are the bar (10 M and 1 M frames).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <xring.h>

#include "memif_frames.h"
#include "nic/memif/memif_priv.h"
#include "nic/ports.h"

static char sock_path[108];

static void make_path(bool abstract)
{
	static int n;

	if (abstract)
		snprintf(sock_path, sizeof(sock_path), "@xring-test-%d-%d", getpid(), n++);
	else
		snprintf(sock_path, sizeof(sock_path), "/tmp/xring-test-%d-%d.sock", getpid(), n++);
}

static struct port *open_port(enum memif_role role, uint32_t id, const char *secret)
{
	struct memif_config cfg = {.path = sock_path,
				   .role = role,
				   .id = id,
				   .secret = secret,
				   .retry_ms = 20,
				   .name = role == MEMIF_ROLE_SERVER ? "srv" : "cli"};
	struct port *p = NULL;
	int err = memif_port_create(&cfg, &p);

	cr_assert_eq(err, 0, "memif_port_create: %d", err);
	return p;
}

static bool wait_up(struct port **ps, int n, uint64_t ms)
{
	uint64_t end = mf_now_ms() + ms;

	while (mf_now_ms() < end) {
		bool all = true;

		for (int i = 0; i < n; i++) {
			memif_poll(ps[i]);
			all = all && memif_connected(ps[i]);
		}
		if (all)
			return true;
		usleep(200);
	}
	return false;
}

static uint64_t env_count(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v ? strtoull(v, NULL, 0) : def;
}

/*
 * The child is the client and sends; the parent is the server and receives (or the other way
 * round with reverse). The receiver tells the sender it is done through a pipe so the sender
 * does not tear the link down under frames still in the ring.
 */
static void two_process(uint64_t count, size_t size, bool client_sends, bool abstract)
{
	int done[2];
	pid_t pid;
	struct mf_stats st = {0};
	uint64_t t0, deadline = mf_now_ms() + 240000;
	int status;

	make_path(abstract);
	cr_assert_eq(pipe(done), 0);
	struct port *srv = open_port(MEMIF_ROLE_SERVER, 7, "s3cret");

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct port *cli = open_port(MEMIF_ROLE_CLIENT, 7, "s3cret");
		char c;
		uint64_t sent;

		close(done[1]);
		if (!wait_up(&cli, 1, 10000))
			_exit(2);
		if (client_sends) {
			sent = mf_send(cli, count, size, deadline);
			if (sent != count)
				_exit(3);
			/* Keep the link (and serve its control channel) until the parent is done.
			 */
			fcntl(done[0], F_SETFL, O_NONBLOCK);
			while (read(done[0], &c, 1) < 0 && mf_now_ms() < deadline)
				memif_poll(cli);
			_exit(0);
		}
		struct mf_stats cs = {0};

		mf_recv(cli, count, size, deadline, &cs);
		_exit(cs.frames == count && cs.bad == 0 && cs.out_of_order == 0 ? 0 : 4);
	}
	close(done[0]);
	cr_assert(wait_up(&srv, 1, 10000), "the client connected");
	t0 = mf_now_ms();
	if (client_sends) {
		mf_recv(srv, count, size, deadline, &st);
		cr_log_info("memif: %llu frames of %zu bytes in %llu ms",
			    (unsigned long long) count, size,
			    (unsigned long long) (mf_now_ms() - t0));
		cr_expect_eq(st.frames, count, "received %llu of %llu",
			     (unsigned long long) st.frames, (unsigned long long) count);
		cr_expect_eq(st.bad, 0, "damaged frames");
		cr_expect_eq(st.out_of_order, 0, "frames out of order (lost or duplicated)");
		cr_expect_eq(srv->queues[0]->stats.rx_bad, 0);
		cr_expect_eq(srv->queues[0]->stats.rx_frames, count);
		cr_assert_eq(write(done[1], "x", 1), 1);
	} else {
		uint64_t sent = mf_send(srv, count, size, deadline);

		cr_expect_eq(sent, count);
		cr_expect_eq(srv->queues[0]->stats.tx_frames, count);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	close(done[1]);
	srv->ops->destroy(srv);
}

Test(memif, ten_million_64_byte_frames_cross_two_processes_intact_and_in_order, .timeout = 280)
{
	two_process(env_count("XRING_MEMIF_N64", 10000000), 64, true, true);
}

Test(memif, a_million_9000_byte_chained_frames_cross_from_server_to_client, .timeout = 280)
{
	two_process(env_count("XRING_MEMIF_N9000", 1000000), 9000, false, false);
}

Test(memif, chained_frames_also_cross_from_client_to_server, .timeout = 120)
{
	two_process(20000, 9000, true, true);
}

Test(memif, frames_cross_from_server_to_client_over_a_filesystem_socket, .timeout = 120)
{
	two_process(200000, 1500, false, false);
}

/* ---- reconnect ---- */

Test(memif, the_server_takes_a_new_client_after_the_old_one_is_killed, .timeout = 120)
{
	make_path(true);
	struct port *srv = open_port(MEMIF_ROLE_SERVER, 1, NULL);

	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0) {
			struct port *cli = open_port(MEMIF_ROLE_CLIENT, 1, NULL);

			if (!wait_up(&cli, 1, 10000))
				_exit(2);
			mf_send(cli, 1000, 64, mf_now_ms() + 20000);
			for (;;) { /* until killed */
				memif_poll(cli);
				usleep(1000);
			}
		}
		struct mf_stats st = {0};

		cr_assert(wait_up(&srv, 1, 10000), "round %d: client connected", round);
		mf_recv(srv, 1000, 64, mf_now_ms() + 20000, &st);
		cr_expect_eq(st.frames, 1000);
		cr_expect_eq(st.bad + st.out_of_order, 0);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		uint64_t end = mf_now_ms() + 10000;

		while (memif_connected(srv) && mf_now_ms() < end)
			memif_poll(srv);
		cr_assert(!memif_connected(srv), "round %d: peer loss noticed", round);
	}
	cr_expect_eq(memif_connects(srv), 3);
	srv->ops->destroy(srv);
}

Test(memif, the_client_reconnects_when_a_killed_server_comes_back, .timeout = 120)
{
	make_path(false);
	struct port *cli = NULL;

	for (int round = 0; round < 2; round++) {
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0) {
			struct port *srv = open_port(MEMIF_ROLE_SERVER, 3, NULL);
			struct mf_stats st = {0};

			if (!wait_up(&srv, 1, 10000))
				_exit(2);
			mf_recv(srv, 500, 128, mf_now_ms() + 20000, &st);
			if (st.frames != 500 || st.bad || st.out_of_order)
				_exit(3);
			for (;;) {
				memif_poll(srv);
				usleep(1000);
			}
		}
		if (!cli) {
			usleep(50000);
			cli = open_port(MEMIF_ROLE_CLIENT, 3, NULL);
		}
		cr_assert(wait_up(&cli, 1, 10000), "round %d: connected", round);
		cr_expect_eq(mf_send(cli, 500, 128, mf_now_ms() + 20000), 500);
		/* let the server drain before it dies */
		uint64_t end = mf_now_ms() + 2000;
		while (mf_now_ms() < end)
			memif_poll(cli);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		end = mf_now_ms() + 10000;
		while (memif_connected(cli) && mf_now_ms() < end)
			memif_poll(cli);
		cr_assert(!memif_connected(cli), "round %d: server loss noticed", round);
	}
	cr_expect_eq(memif_connects(cli), 2);
	cli->ops->destroy(cli);
}

/* ---- in-process pair, for checks that need to reach into the rings ---- */

struct pair {
	struct port *srv, *cli;
	struct mport *ms, *mc;
};

static void pair_open(struct pair *pr)
{
	make_path(true);
	pr->srv = open_port(MEMIF_ROLE_SERVER, 9, "k");
	pr->cli = open_port(MEMIF_ROLE_CLIENT, 9, "k");
	pr->ms = (struct mport *) pr->srv;
	pr->mc = (struct mport *) pr->cli;
	cr_assert(wait_up(&pr->srv, 2, 5000), "pair connected");
}

static void pair_close(struct pair *pr)
{
	pr->cli->ops->destroy(pr->cli);
	pr->srv->ops->destroy(pr->srv);
}

/* The client posts one good frame, then the test (as a lying client) rewrites it. */
static struct memif_desc *post_one(struct pair *pr)
{
	struct port_queue *q = pr->cli->queues[0];
	struct port_frame f;

	cr_assert_eq(port_tx_alloc(q, &f, 1), 1);
	mf_build(f.data, 64, 0);
	f.len = 64;
	cr_assert_eq(port_tx_post(q, &f, 1), 1);
	cr_assert_eq(port_tx_flush(q), 0);
	return &pr->mc->q[0].tx->desc[0];
}

static void expect_server_fault(struct pair *pr, const char *what)
{
	struct port_frame f[8];
	struct port_queue *q = pr->srv->queues[0];

	cr_expect_eq(port_rx_poll(q, f, 8), 0, "%s: nothing delivered", what);
	cr_expect_eq(q->stats.rx_bad, 1, "%s: counted", what);
	cr_expect(!memif_connected(pr->srv), "%s: connection dropped", what);
	/* and the link comes back by itself */
	cr_expect(wait_up(&pr->srv, 2, 5000), "%s: reconnected", what);
}

Test(memif, a_descriptor_pointing_past_the_region_is_a_counted_fault)
{
	struct pair pr;

	pair_open(&pr);
	post_one(&pr)->offset = (uint32_t) pr.ms->regions[0].size - 10;
	expect_server_fault(&pr, "offset");
	pair_close(&pr);
}

Test(memif, an_oversize_length_is_a_counted_fault)
{
	struct pair pr;

	pair_open(&pr);
	post_one(&pr)->length = 0xfffffff0u;
	expect_server_fault(&pr, "length");
	pair_close(&pr);
}

Test(memif, an_unknown_region_index_is_a_counted_fault)
{
	struct pair pr;

	pair_open(&pr);
	post_one(&pr)->region = 3;
	expect_server_fault(&pr, "region");
	pair_close(&pr);
}

Test(memif, a_head_moved_by_more_than_the_ring_is_a_counted_fault)
{
	struct pair pr;

	pair_open(&pr);
	post_one(&pr);
	pr.mc->q[0].tx->head = (uint16_t) (1 + pr.mc->q[0].tx_size + 5);
	expect_server_fault(&pr, "head");
	pair_close(&pr);
}

Test(memif, a_server_that_repoints_a_receive_buffer_is_a_counted_fault)
{
	struct pair pr;
	struct port_frame f[4];
	struct port_queue *sq, *cq;

	pair_open(&pr);
	sq = pr.srv->queues[0];
	cq = pr.cli->queues[0];
	cr_assert_eq(port_tx_alloc(sq, f, 1), 1);
	mf_build(f[0].data, 64, 0);
	f[0].len = 64;
	cr_assert_eq(port_tx_post(sq, f, 1), 1);
	port_tx_flush(sq);
	pr.ms->q[0].tx->desc[0].offset += 100; /* the lie: inside our memory, not a buffer start */
	cr_expect_eq(port_rx_poll(cq, f, 4), 0);
	cr_expect_eq(cq->stats.rx_bad, 1);
	cr_expect(!memif_connected(pr.cli));
	pair_close(&pr);
}

Test(memif, a_client_offering_a_send_buffer_outside_its_region_is_a_counted_fault)
{
	struct pair pr;
	struct port_frame f[4];
	struct port_queue *sq;

	pair_open(&pr);
	sq = pr.srv->queues[0];
	pr.mc->q[0].rx->desc[0].offset = (uint32_t) pr.ms->regions[0].size - 100;
	cr_expect_eq(port_tx_alloc(sq, f, 4), 0, "nothing lent");
	cr_expect_eq(sq->stats.rx_bad, 1);
	cr_expect(!memif_connected(pr.srv));
	pair_close(&pr);
}

Test(memif, a_server_tail_beyond_what_it_was_given_is_a_counted_fault)
{
	struct pair pr;
	struct port_frame f[4];
	struct port_queue *cq;

	pair_open(&pr);
	cq = pr.cli->queues[0];
	pr.mc->q[0].rx->tail = (uint16_t) (pr.mc->q[0].rx_size + 1);
	cr_expect_eq(port_rx_poll(cq, f, 4), 0);
	cr_expect_eq(cq->stats.rx_bad, 1);
	cr_expect(!memif_connected(pr.cli));
	pair_close(&pr);
}

Test(memif, a_server_tail_jumping_past_the_client_head_is_a_counted_fault)
{
	struct pair pr;
	struct port_queue *cq;

	pair_open(&pr);
	cq = pr.cli->queues[0];
	post_one(&pr);
	pr.mc->q[0].tx->tail = 40;
	port_tx_reap(cq, NULL, 0);
	cr_expect_eq(cq->stats.rx_bad, 1);
	cr_expect(!memif_connected(pr.cli));
	pair_close(&pr);
}

Test(memif, good_frames_still_flow_both_ways_in_one_process)
{
	struct pair pr;
	struct port_frame f[64];

	pair_open(&pr);
	for (int dir = 0; dir < 2; dir++) {
		struct port_queue *tq = (dir ? pr.srv : pr.cli)->queues[0];
		struct port_queue *rq = (dir ? pr.cli : pr.srv)->queues[0];
		int n = port_tx_alloc(tq, f, 32), got = 0;

		cr_assert_eq(n, 32);
		for (int i = 0; i < n; i++) {
			mf_build(f[i].data, 100, (uint64_t) i);
			f[i].len = 100;
		}
		cr_assert_eq(port_tx_post(tq, f, 32), 32);
		port_tx_flush(tq);
		n = port_rx_poll(rq, f, 64);
		cr_assert_eq(n, 32);
		for (int i = 0; i < n; i++, got++)
			cr_expect_eq(mf_check(f[i].data, f[i].len), (uint64_t) i);
		port_rx_release(rq, f, (unsigned) n);
		cr_expect_eq(got, 32);
	}
	pair_close(&pr);
}

Test(memif, a_server_gives_slots_back_in_ring_order_whatever_order_frames_come_back)
{
	struct pair pr;
	struct port_frame f[8];
	struct port_queue *sq, *cq;

	pair_open(&pr);
	sq = pr.srv->queues[0];
	cq = pr.cli->queues[0];
	cr_assert_eq(port_tx_alloc(cq, f, 4), 4);
	for (int i = 0; i < 4; i++) {
		mf_build(f[i].data, 64, (uint64_t) i);
		f[i].len = 64;
	}
	cr_assert_eq(port_tx_post(cq, f, 4), 4);
	port_tx_flush(cq);
	cr_assert_eq(port_rx_poll(sq, f, 8), 4);
	port_rx_release(sq, f + 1, 3); /* the first frame is still held */
	cr_expect_eq(pr.mc->q[0].tx->tail, 0, "a held slot keeps the tail");
	port_rx_release(sq, f, 1);
	cr_expect_eq(pr.mc->q[0].tx->tail, 4, "all four given back at once");
	port_tx_reap(cq, NULL, 0);
	cr_expect_eq(pr.mc->q[0].tx_nfree, pr.mc->q[0].tx_size, "the client has every buffer back");
	pair_close(&pr);
}

Test(memif, an_armed_queue_is_interrupted_once_per_flush)
{
	struct pair pr;
	struct port_frame f[8];
	struct port_queue *sq, *cq;
	uint64_t v;

	pair_open(&pr);
	sq = pr.srv->queues[0];
	cq = pr.cli->queues[0];
	cr_assert_eq(port_rx_poll(sq, f, 8), 0);
	cr_assert_eq(sq->ops->arm(sq), 0);
	cr_assert_eq(port_tx_alloc(cq, f, 4), 4);
	for (int i = 0; i < 4; i++) {
		mf_build(f[i].data, 64, (uint64_t) i);
		f[i].len = 64;
	}
	cr_assert_eq(port_tx_post(cq, f, 4), 4);
	port_tx_flush(cq);
	cr_expect_eq(cq->stats.kicks, 1);
	struct pollfd pfd = {.fd = sq->ops->wait_fd(sq), .events = POLLIN};
	cr_expect_eq(poll(&pfd, 1, 1000), 1, "the queue's wait fd woke up");
	cr_expect_eq(read(pr.ms->q[0].rx_evfd, &v, 8), 8, "the eventfd fired");
	/* polling again masks interrupts: the next flush makes no system call */
	cr_expect_eq(port_rx_poll(sq, f, 8), 4);
	port_rx_release(sq, f, 4);
	cr_assert_eq(port_tx_alloc(cq, f, 1), 1);
	mf_build(f[0].data, 64, 9);
	f[0].len = 64;
	port_tx_post(cq, f, 1);
	port_tx_flush(cq);
	cr_expect_eq(cq->stats.kicks, 1);
	/* arming with work pending says so instead of sleeping */
	cr_expect_eq(sq->ops->arm(sq), -EAGAIN);
	pair_close(&pr);
}

Test(memif, four_queue_pairs_carry_their_own_frames)
{
	struct memif_config cfg = {.id = 4, .nqueues = 4, .retry_ms = 5, .log2_ring = 6};
	struct port *ps[2];
	struct port_frame f[16];

	make_path(true);
	cfg.path = sock_path;
	cfg.role = MEMIF_ROLE_SERVER;
	cr_assert_eq(memif_port_create(&cfg, &ps[0]), 0);
	cfg.role = MEMIF_ROLE_CLIENT;
	cr_assert_eq(memif_port_create(&cfg, &ps[1]), 0);
	cr_assert(wait_up(ps, 2, 5000));
	cr_assert_eq(((struct mport *) ps[0])->nq, 4);
	for (unsigned qi = 0; qi < 4; qi++) {
		struct port_queue *tq = ps[1]->queues[qi];

		cr_assert_eq(port_tx_alloc(tq, f, 1), 1);
		mf_build(f[0].data, 80, 100 + qi);
		f[0].len = 80;
		cr_assert_eq(port_tx_post(tq, f, 1), 1);
		port_tx_flush(tq);
	}
	for (unsigned qi = 0; qi < 4; qi++) {
		struct port_queue *rq = ps[0]->queues[qi];

		cr_assert_eq(port_rx_poll(rq, f, 16), 1, "queue %u", qi);
		cr_expect_eq(mf_check(f[0].data, f[0].len), 100 + qi, "queue %u", qi);
		port_rx_release(rq, f, 1);
	}
	ps[1]->ops->destroy(ps[1]);
	ps[0]->ops->destroy(ps[0]);
}

Test(memif, a_client_with_another_interface_id_is_not_let_in)
{
	make_path(true);
	struct port *srv = open_port(MEMIF_ROLE_SERVER, 1, NULL);
	struct port *cli = open_port(MEMIF_ROLE_CLIENT, 2, NULL);
	struct port *both[2] = {srv, cli};

	cr_expect(!wait_up(both, 2, 300));
	cr_expect(!memif_connected(srv));
	cli->ops->destroy(cli);
	srv->ops->destroy(srv);
}

Test(memif, two_interfaces_share_one_socket_and_clients_find_theirs_by_id)
{
	struct memif_config cfg = {.path = NULL, .retry_ms = 5, .log2_ring = 6};
	struct port *s1, *s2, *c1, *c2, *c3, *all[4];
	struct port_frame f[4];

	make_path(true);
	cfg.path = sock_path;
	cfg.role = MEMIF_ROLE_SERVER;
	cfg.id = 1;
	cr_assert_eq(memif_port_create(&cfg, &s1), 0);
	cfg.path = NULL;
	cfg.share = s1;
	cfg.id = 2;
	cr_assert_eq(memif_port_create(&cfg, &s2), 0);
	cfg.id = 1;
	cr_assert_eq(memif_port_create(&cfg, &c3), -EEXIST, "ids are unique on a socket");
	cfg.share = NULL;
	cfg.path = sock_path;
	cfg.role = MEMIF_ROLE_CLIENT;
	cfg.id = 2;
	cr_assert_eq(memif_port_create(&cfg, &c2), 0);
	cfg.id = 1;
	cr_assert_eq(memif_port_create(&cfg, &c1), 0);
	cfg.id = 3;
	cr_assert_eq(memif_port_create(&cfg, &c3), 0);
	all[0] = s1, all[1] = s2, all[2] = c1, all[3] = c2;
	cr_assert(wait_up(all, 4, 5000), "both interfaces up");
	cr_expect(!memif_connected(c3), "no interface 3");
	for (int k = 0; k < 2; k++) {
		struct port *tx = k ? c2 : c1, *rx = k ? s2 : s1;

		cr_assert_eq(port_tx_alloc(tx->queues[0], f, 1), 1);
		mf_build(f[0].data, 64, 10 + (uint64_t) k);
		f[0].len = 64;
		port_tx_post(tx->queues[0], f, 1);
		port_tx_flush(tx->queues[0]);
		cr_assert_eq(port_rx_poll(rx->queues[0], f, 4), 1);
		cr_expect_eq(mf_check(f[0].data, f[0].len), 10 + (uint64_t) k, "interface %d",
			     k + 1);
		port_rx_release(rx->queues[0], f, 1);
	}
	c3->ops->destroy(c3);
	c2->ops->destroy(c2);
	c1->ops->destroy(c1);
	s2->ops->destroy(s2);
	s1->ops->destroy(s1);
}

Test(memif, a_port_named_in_a_spec_connects_driven_only_by_its_queue)
{
	char spec[160];
	struct xport *xp;
	struct port *srv, *cli;
	struct port_frame f[4];
	int got = 0;

	make_path(true);
	snprintf(spec, sizeof(spec), "memif:path=%s,role=server,id=6,ip=198.18.0.1/24", sock_path);
	cr_assert_eq(xring_port_add(spec), 0);
	xp = ports_by_addr(inet_addr("198.18.0.1"));
	cr_assert_not_null(xp, "the port is in the table");
	srv = xp->port;
	cr_expect_eq(srv->mac[0], 0x02, "a locally administered MAC");
	cli = open_port(MEMIF_ROLE_CLIENT, 6, NULL);
	/* nobody calls memif_poll() on the server: its queue's polls run the control channel */
	for (int i = 0; i < 2000000 && !(memif_connected(srv) && memif_connected(cli)); i++) {
		port_rx_poll(srv->queues[0], f, 4);
		if (i % 64 == 0)
			memif_poll(cli);
	}
	cr_assert(memif_connected(srv) && memif_connected(cli));
	cr_assert_eq(port_tx_alloc(cli->queues[0], f, 1), 1);
	mf_build(f[0].data, 64, 77);
	f[0].len = 64;
	port_tx_post(cli->queues[0], f, 1);
	port_tx_flush(cli->queues[0]);
	for (int i = 0; i < 1000 && !got; i++)
		got = port_rx_poll(srv->queues[0], f, 4);
	cr_assert_eq(got, 1);
	cr_expect_eq(mf_check(f[0].data, f[0].len), 77);
	port_rx_release(srv->queues[0], f, 1);
	cli->ops->destroy(cli);
	ports_reset();
}

Test(memif, a_sleeping_client_queue_is_woken_to_reconnect)
{
	struct port *cli, *srv;
	struct port_queue *q;
	struct pollfd pfd;

	make_path(true);
	cli = open_port(MEMIF_ROLE_CLIENT, 8, NULL); /* retry_ms = 20, no server yet */
	q = cli->queues[0];
	cr_assert_eq(q->ops->arm(q), 0, "down: sleeping is allowed");
	srv = open_port(MEMIF_ROLE_SERVER, 8, NULL);
	pfd.fd = q->ops->wait_fd(q);
	pfd.events = POLLIN;
	cr_expect_eq(poll(&pfd, 1, 5000), 1, "the retry timer wakes the sleeper");
	cr_expect(wait_up((struct port *[]){srv, cli}, 2, 5000));
	cli->ops->destroy(cli);
	srv->ops->destroy(srv);
}

/* ---- hostile control messages ---- */

static int raw_client(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(sock_path));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	memcpy(a.sun_path + 1, sock_path + 1, strlen(sock_path) - 1);
	cr_assert_eq(connect(fd, (struct sockaddr *) &a, len), 0);
	return fd;
}

static bool raw_recv(struct port *srv, int fd, struct memif_msg *m)
{
	for (int i = 0; i < 2000; i++) {
		memif_poll(srv);
		if (recv(fd, m, sizeof(*m), MSG_DONTWAIT) == (ssize_t) sizeof(*m))
			return true;
		usleep(500);
	}
	return false;
}

static bool raw_recv_long(struct port *srv, int fd, struct memif_msg *m, uint64_t ms)
{
	uint64_t end = mf_now_ms() + ms;

	while (mf_now_ms() < end) {
		memif_poll(srv);
		if (recv(fd, m, sizeof(*m), MSG_DONTWAIT) == (ssize_t) sizeof(*m))
			return true;
		usleep(2000);
	}
	return false;
}

static void raw_send(int fd, const struct memif_msg *m, size_t len, int pass_fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *) m, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (pass_fd >= 0) {
		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = sizeof(ctl);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	cr_assert_eq(sendmsg(fd, &mh, 0), (ssize_t) len);
}

/* Run setup messages on a raw connection; expect a DISCONNECT after the last one. */
static void expect_refused(struct port *srv, const struct memif_msg *bad, size_t len, int fd,
			   const char *what)
{
	struct memif_msg m;
	int c = raw_client();

	cr_assert(raw_recv(srv, c, &m) && m.type == MEMIF_MSG_HELLO, "%s: hello", what);
	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_INIT;
	m.init.version = MEMIF_VERSION;
	m.init.id = 9;
	memcpy(m.init.secret, "k", 1);
	raw_send(c, &m, sizeof(m), -1);
	cr_assert(raw_recv(srv, c, &m) && m.type == MEMIF_MSG_ACK, "%s: init acked", what);
	raw_send(c, bad, len, fd);
	bool got = raw_recv(srv, c, &m);
	cr_expect(got && m.type == MEMIF_MSG_DISCONNECT, "%s: refused", what);
	close(c);
	memif_poll(srv);
}

Test(memif, hostile_control_messages_are_refused_and_the_server_lives_on)
{
	struct memif_msg m;
	struct port *srv;
	int mfd;

	make_path(true);
	srv = open_port(MEMIF_ROLE_SERVER, 9, "k");

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_ADD_REGION;
	m.add_region.size = 1 << 20;
	expect_refused(srv, &m, sizeof(m), -1, "region without fd");

	mfd = memfd_create("t", 0); /* not sealed */
	cr_assert_eq(ftruncate(mfd, 1 << 20), 0);
	expect_refused(srv, &m, sizeof(m), mfd, "unsealed region");
	close(mfd);

	mfd = memfd_create("t", MFD_ALLOW_SEALING);
	cr_assert_eq(ftruncate(mfd, 4096), 0);
	fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK);
	expect_refused(srv, &m, sizeof(m), mfd, "region larger than its file");

	m.add_region.index = 5;
	m.add_region.size = 4096;
	expect_refused(srv, &m, sizeof(m), mfd, "region index out of order");

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_ADD_RING;
	m.add_ring.log2_ring_size = 10;
	expect_refused(srv, &m, sizeof(m), mfd, "ring before any region");

	/* a ring whose interrupt fd is a pipe (a write could SIGPIPE or block us) */
	{
		struct memif_msg r;
		int pp[2], c2, sealed = memfd_create("t", MFD_ALLOW_SEALING);

		cr_assert_eq(ftruncate(sealed, 1 << 16), 0);
		fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK);
		cr_assert_eq(pipe(pp), 0);
		c2 = raw_client();
		cr_assert(raw_recv(srv, c2, &r) && r.type == MEMIF_MSG_HELLO);
		memset(&r, 0, sizeof(r));
		r.type = MEMIF_MSG_INIT;
		r.init.version = MEMIF_VERSION;
		r.init.id = 9;
		memcpy(r.init.secret, "k", 1);
		raw_send(c2, &r, sizeof(r), -1);
		cr_assert(raw_recv(srv, c2, &r) && r.type == MEMIF_MSG_ACK);
		memset(&r, 0, sizeof(r));
		r.type = MEMIF_MSG_ADD_REGION;
		r.add_region.size = 1 << 16;
		raw_send(c2, &r, sizeof(r), sealed);
		cr_assert(raw_recv(srv, c2, &r) && r.type == MEMIF_MSG_ACK, "sealed region taken");
		memset(&r, 0, sizeof(r));
		r.type = MEMIF_MSG_ADD_RING;
		r.add_ring.log2_ring_size = 4;
		raw_send(c2, &r, sizeof(r), pp[1]);
		cr_expect(raw_recv(srv, c2, &r) && r.type == MEMIF_MSG_DISCONNECT, "pipe refused");
		close(c2);
		close(pp[0]);
		close(pp[1]);
		close(sealed);
		memif_poll(srv);
	}

	m.type = 77;
	expect_refused(srv, &m, sizeof(m), -1, "unknown type");
	m.type = MEMIF_MSG_CONNECT;
	expect_refused(srv, &m, sizeof(m), -1, "connect without rings");
	m.type = MEMIF_MSG_ACK;
	expect_refused(srv, &m, 40, -1, "short message");
	close(mfd);

	/* a wrong secret is refused at INIT */
	int c = raw_client();
	cr_assert(raw_recv(srv, c, &m) && m.type == MEMIF_MSG_HELLO);
	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_INIT;
	m.init.version = MEMIF_VERSION;
	m.init.id = 9;
	memcpy(m.init.secret, "nope", 4);
	raw_send(c, &m, sizeof(m), -1);
	cr_expect(raw_recv(srv, c, &m) && m.type == MEMIF_MSG_DISCONNECT, "wrong secret refused");
	close(c);

	/* a client that connects and says nothing is let go */
	c = raw_client();
	cr_assert(raw_recv(srv, c, &m) && m.type == MEMIF_MSG_HELLO);
	cr_expect(raw_recv_long(srv, c, &m, 15000) && m.type == MEMIF_MSG_DISCONNECT,
		  "a stalled handshake is dropped");
	close(c);

	/* and after all that, a real client still gets through */
	struct port *cli = open_port(MEMIF_ROLE_CLIENT, 9, "k");
	struct port *both[2] = {srv, cli};
	cr_expect(wait_up(both, 2, 5000), "a good client connects");
	cli->ops->destroy(cli);
	srv->ops->destroy(srv);
}
