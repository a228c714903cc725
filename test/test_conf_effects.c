/*
 * Each XRING_* parameter does what xring-params(7) says: not whether it parses (that is
 * test_conf_params) but what changes when it is set. Every test sets the environment first and
 * then makes the first ring of its process (Criterion runs each test in a process of its own),
 * then looks at the effect: the log file and its lines, the ring's sizes, the frames the ring
 * puts on an in-memory link (a SYN's options and window), the pools a port takes, the port a
 * memif spec opens.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xring.h>

#include "nic/memif/memif.h"
#include "nic/pool_mem.h"
#include "nic/ports.h"
#include "ops/netport.h"
#include "ops/xsock.h"
#include "offload_link.h"
#include "stack/tcp/tcp_int.h"

static char log_path[128];

/* Logs at info to a file of this test's own (so the lines can be read back). */
static void log_to_file(void)
{
	snprintf(log_path, sizeof(log_path), "/tmp/xring-effects-%d.log", getpid());
	unlink(log_path);
	setenv("XRING_LOG_FILE", "/tmp/xring-effects-%d.log", 1);
	setenv("XRING_LOG_LEVEL", "info", 1);
}

/* The log so far, NUL-terminated, in buf. */
static const char *read_log(char *buf, size_t len)
{
	int fd = open(log_path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "no log file at %s", log_path);
	n = read(fd, buf, len - 1);
	close(fd);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	return buf;
}

static void fini(void)
{
	if (log_path[0])
		unlink(log_path);
}

TestSuite(conf_effects, .fini = fini);

/* --- the log ------------------------------------------------------------------------------ */

Test(conf_effects, the_log_goes_to_the_file_named_with_the_pid_in_place_of_percent_d)
{
	struct xring ring;
	char buf[8192];

	log_to_file();
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	/* The start-up report lists the parameters that differ from their defaults. */
	cr_expect(strstr(read_log(buf, sizeof(buf)), "info: XRING_LOG_LEVEL=info"), "log: %s", buf);
	xring_queue_exit(&ring);
}

Test(conf_effects, the_log_level_keeps_out_lines_below_it)
{
	struct xring ring;
	char buf[8192];

	log_to_file();
	setenv("XRING_LOG_LEVEL", "error", 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	cr_expect_str_empty(read_log(buf, sizeof(buf)), "info lines at level error: %s", buf);
	xring_queue_exit(&ring);
}

Test(conf_effects, log_details_zero_writes_the_pid_and_level_only)
{
	struct xring ring;
	char buf[8192], want[64];

	log_to_file();
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	snprintf(want, sizeof(want), "xring[%d] info: ", getpid());
	cr_expect_eq(strncmp(read_log(buf, sizeof(buf)), want, strlen(want)), 0, "log: %s", buf);
	xring_queue_exit(&ring);
}

Test(conf_effects, log_details_three_adds_the_thread_the_time_and_the_source_line)
{
	struct xring ring;
	char buf[8192], want[64];
	const char *l;

	log_to_file();
	setenv("XRING_LOG_DETAILS", "3", 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	l = read_log(buf, sizeof(buf));
	/* xring[pid:tid] 2026-11-22T02:10:51.123456Z conf/params.c:NNN info: ... */
	snprintf(want, sizeof(want), "xring[%d:%d] ", getpid(), gettid());
	cr_expect_eq(strncmp(l, want, strlen(want)), 0, "log: %s", l);
	l += strlen(want);
	cr_expect(l[4] == '-' && l[10] == 'T' && l[19] == '.' && l[26] == 'Z', "time: %.40s", l);
	cr_expect(strstr(l, " conf/params.c:"), "no source location: %s", l);
	xring_queue_exit(&ring);
}

Test(conf_effects, log_details_two_adds_the_time_but_no_source_line)
{
	struct xring ring;
	char buf[8192];

	log_to_file();
	setenv("XRING_LOG_DETAILS", "2", 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	read_log(buf, sizeof(buf));
	cr_expect(strstr(buf, "Z info: "), "log: %s", buf);
	cr_expect_null(strstr(buf, ".c:"), "log: %s", buf);
	xring_queue_exit(&ring);
}

/* --- the ring -------------------------------------------------------------------------------- */

Test(conf_effects, sq_entries_sizes_a_ring_asked_for_zero_entries)
{
	struct xring ring;

	setenv("XRING_SQ_ENTRIES", "64", 1);
	cr_assert_eq(xring_queue_init(0, &ring, 0), 0);
	cr_expect_eq(ring.sq.entries, 64);
	cr_expect_eq(ring.cq.entries, 128);
	xring_queue_exit(&ring);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0, "a size given still wins");
	cr_expect_eq(ring.sq.entries, 8);
	xring_queue_exit(&ring);
}

Test(conf_effects, cq_entries_sizes_the_completion_queue_unless_the_setup_asks_its_own)
{
	struct xring_params p = {.flags = XRING_SETUP_CQSIZE, .cq_entries = 32};
	struct xring ring;

	setenv("XRING_CQ_ENTRIES", "1000", 1);
	cr_assert_eq(xring_queue_init(16, &ring, 0), 0);
	cr_expect_eq(ring.cq.entries, 1024, "rounded up to a power of two");
	xring_queue_exit(&ring);
	cr_assert_eq(xring_queue_init(2048, &ring, 0), 0);
	cr_expect_eq(ring.cq.entries, 2048, "never below the SQ");
	xring_queue_exit(&ring);
	cr_assert_eq(xring_queue_init_params(16, &ring, &p), 0);
	cr_expect_eq(ring.cq.entries, 32);
	xring_queue_exit(&ring);
}

Test(conf_effects, spin_us_is_the_ring_s_spin_budget)
{
	struct xring ring;

	setenv("XRING_SPIN_US", "7", 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	cr_expect_eq(ring.ctx->spin_ns, 7000);
	xring_queue_exit(&ring);
}

/* --- TCP, as the SYN shows it ---------------------------------------------------------------- */

static void link_up(void)
{
	struct memlink_config mc = {.name = "e"};

	ol_setup(&mc);
}

/* Opens a TCP connection to the remote host and returns the ring's SYN, parsed. */
static int syn_of_connect(struct tcp_view *v, struct tcp_opts *o)
{
	int32_t res;
	int fd = ol_connect(SOCK_STREAM, 7001, &res);

	cr_assert_eq(res, 0, "connect: %d", res);
	cr_assert(ol_offloaded(fd));
	cr_assert_eq(ol_find_tcp(TCP_SYN, v, o), 0, "no SYN reached the remote host");
	return fd;
}

Test(conf_effects, tcp_timestamps_on_offers_the_option_in_the_syn)
{
	struct tcp_view v;
	struct tcp_opts o;

	link_up();
	close(syn_of_connect(&v, &o));
	cr_expect(o.present & TCPO_TS, "the SYN has no timestamps option");
	ol_teardown();
}

Test(conf_effects, tcp_timestamps_off_leaves_the_option_out_of_the_syn_and_the_connection)
{
	struct tcp_view v;
	struct tcp_opts o;
	int fd;

	setenv("XRING_TCP_TIMESTAMPS", "0", 1);
	link_up();
	fd = syn_of_connect(&v, &o);
	cr_expect_not(o.present & TCPO_TS, "the SYN offers timestamps");
	cr_expect(o.present & TCPO_MSS);
	/* The remote host's SYN-ACK offered them (it may); the connection still goes without. */
	cr_expect_not(xsock_by_fd(ol.ring.ctx, fd)->tcb->flags & TF_TS);
	close(fd);
	ol_teardown();
}

Test(conf_effects, mss_is_announced_in_the_syn)
{
	struct tcp_view v;
	struct tcp_opts o;

	setenv("XRING_MSS", "1000", 1);
	link_up();
	close(syn_of_connect(&v, &o));
	cr_expect_eq(o.mss, 1000);
	ol_teardown();
}

Test(conf_effects, mtu_lowers_the_port_s_mtu_and_so_the_mss)
{
	struct tcp_view v;
	struct tcp_opts o;

	setenv("XRING_MTU", "1000", 1);
	link_up();
	close(syn_of_connect(&v, &o));
	cr_expect_eq(o.mss, 960, "MSS %u for an MTU of 1000", o.mss);
	cr_expect_eq(ol.ring.ctx->netports->ifc.mtu, 1000);
	ol_teardown();
}

Test(conf_effects, tcp_rmem_is_the_window_the_syn_offers)
{
	struct tcp_view v;
	struct tcp_opts o;

	setenv("XRING_TCP_RMEM", "16K", 1);
	link_up();
	close(syn_of_connect(&v, &o));
	cr_expect_eq(v.window, 16384);
	ol_teardown();
}

Test(conf_effects, tcp_wmem_is_the_send_space_of_a_new_connection)
{
	struct tcp_view v;
	struct tcp_opts o;
	int fd;

	setenv("XRING_TCP_WMEM", "8K", 1);
	link_up();
	fd = syn_of_connect(&v, &o);
	cr_expect_eq(tcp_sndspace(xsock_by_fd(ol.ring.ctx, fd)->tcb), 8192);
	close(fd);
	ol_teardown();
}

Test(conf_effects, tcp_nodelay_and_quickack_are_set_on_new_sockets)
{
	struct tcp_view v;
	struct tcp_opts o;
	const struct tcb *t;
	int fd;

	link_up();
	fd = syn_of_connect(&v, &o);
	t = xsock_by_fd(ol.ring.ctx, fd)->tcb;
	cr_expect_not(t->flags & (TF_NODELAY | TF_QUICKACK), "off by default");
	close(fd);
	ol_teardown();

	/* A second process-wide configuration needs a second process: the option is read once. */
}

Test(conf_effects, tcp_nodelay_and_quickack_on_are_set_on_new_sockets)
{
	struct tcp_view v;
	struct tcp_opts o;
	const struct tcb *t;
	int fd;

	setenv("XRING_TCP_NODELAY", "1", 1);
	setenv("XRING_TCP_QUICKACK", "1", 1);
	link_up();
	fd = syn_of_connect(&v, &o);
	t = xsock_by_fd(ol.ring.ctx, fd)->tcb;
	cr_expect(t->flags & TF_NODELAY);
	cr_expect(t->flags & TF_QUICKACK);
	close(fd);
	ol_teardown();
}

Test(conf_effects, tcp_cc_and_timewait_reach_the_ring_s_stack)
{
	struct tcp_view v;
	struct tcp_opts o;
	const struct tcp_stack *st;

	setenv("XRING_TCP_CC", "newreno", 1);
	setenv("XRING_TCP_TIMEWAIT_MS", "1500", 1);
	link_up();
	close(syn_of_connect(&v, &o));
	st = &ol.ring.ctx->netports->tcp;
	cr_expect_eq(st->cfg.cc, TCP_CC_NEWRENO);
	cr_expect_eq(st->cfg.msl2_ns, 1500ull * 1000000);
	ol_teardown();
}

/* --- offload and batching -------------------------------------------------------------------- */

Test(conf_effects, offload_off_leaves_sockets_no_rule_decides_on_the_kernel)
{
	int32_t res;
	int fd;

	setenv("XRING_OFFLOAD", "0", 1);
	link_up();
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_expect(res == 0 || res == -ENETUNREACH, "kernel connect gave %d", res);
	cr_expect_not(ol_offloaded(fd), "offloaded with XRING_OFFLOAD=0");
	close(fd);
	ol_teardown();
}

Test(conf_effects, cqe_batch_is_how_many_frames_one_poll_takes)
{
	struct sockaddr_in me = ol_sin(OL_XRING_IP, 5000);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct xring_sqe *sqe;
	struct netport *np;
	uint64_t before;

	setenv("XRING_CQE_BATCH", "4", 1);
	link_up();
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_bind(sqe, fd, (struct sockaddr *) &me, sizeof(me));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);
	np = ol.ring.ctx->netports;
	cr_assert_not_null(np);
	cr_expect_eq(np->burst, 4);
	/* Ten frames wait on the ring's queue: an ethertype nobody speaks, dropped after the poll.
	 */
	for (int i = 0; i < 10; i++) {
		struct port_queue *q = ol.ends[1]->queues[0];
		struct port_frame f;

		cr_assert_eq(port_tx_alloc(q, &f, 1), 1);
		memset(f.data, 0, 60);
		memcpy(f.data, ol.ends[0]->mac, 6);
		memcpy(f.data + 6, ol.ends[1]->mac, 6);
		((uint8_t *) f.data)[12] = 0x88;
		((uint8_t *) f.data)[13] = 0xb5;
		f.len = 60;
		cr_assert_eq(port_tx_post(q, &f, 1), 1);
		port_tx_flush(q);
	}
	before = np->q->stats.rx_frames;
	engine_progress(ol.ring.ctx);
	cr_expect_eq(np->q->stats.rx_frames - before, 4, "one poll took %llu frames",
		     (unsigned long long) (np->q->stats.rx_frames - before));
	engine_progress(ol.ring.ctx);
	cr_expect_eq(np->q->stats.rx_frames - before, 8);
	close(fd);
	ol_teardown();
}
