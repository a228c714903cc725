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
#include <stdbool.h>
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

/* --- ports and their pools ------------------------------------------------------------------- */

static char sock_path[108];

/* A memif server in the test, for the client XRING_PORTS names; returns it. */
static struct port *memif_server(void)
{
	struct memif_config cfg = {.role = MEMIF_ROLE_SERVER, .name = "srv"};
	struct port *p;
	char spec[256];

	snprintf(sock_path, sizeof(sock_path), "/tmp/xring-effects-%d.sock", getpid());
	unlink(sock_path);
	cfg.path = sock_path;
	cr_assert_eq(memif_port_create(&cfg, &p), 0);
	snprintf(spec, sizeof(spec), "memif:path=%s,role=client,ip=198.18.0.1/24", sock_path);
	setenv("XRING_PORTS", spec, 1);
	return p;
}

static struct port *memif_client_up(struct port *srv)
{
	struct xport *xp = ports_by_addr(inet_addr("198.18.0.1"));

	cr_assert_not_null(xp, "XRING_PORTS opened no port");
	for (int i = 0; i < 3000 && !memif_connected(xp->port); i++) {
		memif_poll(srv);
		memif_poll(xp->port);
		usleep(1000);
	}
	cr_assert(memif_connected(xp->port), "the memif client did not connect");
	return xp->port;
}

Test(conf_effects, queue_depths_and_buf_size_shape_the_memif_rings_a_port_spec_opens)
{
	struct port *srv, *cli;
	struct port_frame f;
	struct xring ring;

	setenv("XRING_RX_QUEUE_DEPTH", "200", 1);
	setenv("XRING_TX_QUEUE_DEPTH", "64", 1);
	setenv("XRING_BUF_SIZE", "1024", 1);
	srv = memif_server();
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	cli = memif_client_up(srv);
	/* memif has one ring size for both directions and one buffer per slot: the larger
	 * depth, rounded up to a power of two. */
	cr_expect_eq(memif_ring_size(cli), 256);
	cr_expect_eq(memif_ring_size(srv), 256, "the server sees the client's rings");
	cr_expect_eq(memif_buf_size(cli), 1024);
	cr_assert_eq(port_tx_alloc(cli->queues[0], &f, 1), 1);
	cr_expect_eq(f.len, 1024, "a send buffer holds XRING_BUF_SIZE bytes");
	xring_queue_exit(&ring);
	ports_reset();
	srv->ops->destroy(srv);
	unlink(sock_path);
}

Test(conf_effects, a_memif_spec_s_own_ring_and_bufsize_come_before_the_parameters)
{
	struct port *srv, *cli;
	struct xring ring;
	char spec[256];

	setenv("XRING_RX_QUEUE_DEPTH", "200", 1);
	srv = memif_server();
	snprintf(spec, sizeof(spec), "%s,ring=32,bufsize=512", getenv("XRING_PORTS"));
	setenv("XRING_PORTS", spec, 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	cli = memif_client_up(srv);
	cr_expect_eq(memif_ring_size(cli), 32);
	cr_expect_eq(memif_buf_size(cli), 512);
	xring_queue_exit(&ring);
	ports_reset();
	srv->ops->destroy(srv);
	unlink(sock_path);
}

Test(conf_effects, pcap_captures_each_port_to_the_file_named_with_the_pid)
{
	struct port *srv;
	struct xring ring;
	char path[128];
	uint32_t magic = 0;
	int fd;

	srv = memif_server();
	setenv("XRING_PCAP", "/tmp/xring-effects-%d-{port}.pcap", 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	snprintf(path, sizeof(path), "/tmp/xring-effects-%d-%s.pcap", getpid(),
		 ports_by_addr(inet_addr("198.18.0.1"))->port->name);
	xring_queue_exit(&ring);
	ports_reset(); /* closes the capture, writing out what it buffered */
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "no capture at %s", path);
	cr_expect_eq(read(fd, &magic, 4), 4);
	cr_expect(magic == 0xa1b2c3d4 || magic == 0xa1b23c4d, "not a pcap file: %#x", magic);
	close(fd);
	srv->ops->destroy(srv);
	unlink(path);
	unlink(sock_path);
}

/* Room for one link of 2 x 64 buffers of 2 KiB, and the limit at 1 MiB. */
static void small_pools(void)
{
	setenv("XRING_RX_BUFS", "64", 1);
	setenv("XRING_TX_BUFS", "64", 1);
	setenv("XRING_RX_QUEUE_DEPTH", "16", 1);
	setenv("XRING_TX_QUEUE_DEPTH", "16", 1);
}

Test(conf_effects, mem_limit_refuses_a_pool_beyond_it_with_a_log_line)
{
	struct memlink_config mc = {.nbufs = 128}; /* 256 KiB per direction */
	struct port *a[2], *b[2], *c[2];
	struct xring ring;
	char buf[8192];

	log_to_file();
	small_pools();
	setenv("XRING_MEM_LIMIT", "1M", 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0, "the log file is opened at first use");
	cr_assert_eq(memlink_create(&mc, a), 0);
	cr_assert_eq(memlink_create(&mc, b), 0);
	cr_expect_eq(pmem_in_use(), 1u << 20);
	cr_expect_eq(memlink_create(&mc, c), -ENOMEM, "a third link passes 1 MiB");
	cr_expect(strstr(read_log(buf, sizeof(buf)), "XRING_MEM_LIMIT=1048576"), "log: %s", buf);
	/* Memory given back makes room again. */
	b[0]->ops->destroy(b[0]);
	b[1]->ops->destroy(b[1]);
	cr_expect_eq(memlink_create(&mc, c), 0);
	for (int i = 0; i < 2; i++) {
		a[i]->ops->destroy(a[i]);
		c[i]->ops->destroy(c[i]);
	}
	cr_expect_eq(pmem_in_use(), 0);
	xring_queue_exit(&ring);
}

Test(conf_effects, mem_limit_also_counts_the_memif_regions)
{
	struct port *srv;
	struct xring ring;
	char buf[8192];

	log_to_file();
	small_pools();
	/* The client's region: 2 rings of 512 slots of 2 KiB (2 MiB) and their headers, just
	 * above the limit (which must hold one queue's buffers: 576 x 2 KiB). */
	setenv("XRING_RX_QUEUE_DEPTH", "512", 1);
	setenv("XRING_RX_BUFS", "512", 1);
	setenv("XRING_MEM_LIMIT", "2M", 1);
	srv = memif_server();
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	for (int i = 0; i < 300; i++) {
		memif_poll(srv);
		memif_poll(ports_by_addr(inet_addr("198.18.0.1"))->port);
		usleep(1000);
	}
	cr_expect_not(memif_connected(srv), "connected beyond the limit");
	cr_expect(strstr(read_log(buf, sizeof(buf)), "XRING_MEM_LIMIT"), "log: %s", buf);
	xring_queue_exit(&ring);
	ports_reset();
	srv->ops->destroy(srv);
	unlink(sock_path);
}

static size_t seen_page;

static void note_page(void *addr, size_t len, size_t page, void *arg)
{
	seen_page = page;
}

static size_t huge_free(void)
{
	char line[128];
	size_t n = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %zu", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

Test(conf_effects, hugepages_off_takes_normal_pages)
{
	struct xring_alloc_hooks h = {.region = note_page};
	struct memlink_config mc = {0};
	struct port *e[2];

	setenv("XRING_HUGEPAGES", "off", 1);
	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	cr_assert_eq(memlink_create(&mc, e), 0);
	cr_expect_eq(seen_page, (size_t) sysconf(_SC_PAGESIZE));
	e[0]->ops->destroy(e[0]);
	e[1]->ops->destroy(e[1]);
}

Test(conf_effects, hugepages_on_takes_huge_pages_or_refuses_the_pool)
{
	struct xring_alloc_hooks h = {.region = note_page};
	struct memlink_config mc = {0}; /* 512 KiB per lane: a quarter of a huge page */
	struct port *e[2];
	bool have = huge_free() >= 2;
	int ret;

	setenv("XRING_HUGEPAGES", "on", 1);
	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	ret = memlink_create(&mc, e);
	if (have) {
		cr_assert_eq(ret, 0);
		cr_expect_gt(seen_page, (size_t) sysconf(_SC_PAGESIZE), "normal pages taken");
		e[0]->ops->destroy(e[0]);
		e[1]->ops->destroy(e[1]);
	} else {
		cr_expect_eq(ret, -ENOMEM, "no huge page is free: the pool must be refused");
	}
}

Test(conf_effects, hugepages_try_falls_back_to_normal_pages)
{
	struct xring_alloc_hooks h = {.region = note_page};
	struct memlink_config mc = {0};
	struct port *e[2];

	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	cr_assert_eq(memlink_create(&mc, e), 0, "the default (try) never fails for want of them");
	cr_expect(seen_page == (size_t) sysconf(_SC_PAGESIZE) || huge_free() > 0);
	e[0]->ops->destroy(e[0]);
	e[1]->ops->destroy(e[1]);
}

/* --- the rules file -------------------------------------------------------------------------- */

static char rules_path[128];

static void write_rules(const char *text)
{
	FILE *f;

	snprintf(rules_path, sizeof(rules_path), "/tmp/xring-effects-%d.conf", getpid());
	f = fopen(rules_path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	setenv("XRING_CONFIG_FILE", rules_path, 1);
}

static int connect_udp_offloaded(void)
{
	int32_t res;
	int fd, off;

	link_up();
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	off = ol_offloaded(fd);
	close(fd);
	ol_teardown();
	unlink(rules_path);
	return off;
}

Test(conf_effects, config_file_rules_send_a_destination_to_the_kernel)
{
	write_rules("use os udp_connect 198.18.0.2/32:7000\n");
	cr_expect_not(connect_udp_offloaded(), "the rules file said os");
}

Test(conf_effects, application_id_selects_the_sections_that_apply)
{
	write_rules("application-id * cache\nuse os udp_connect *:*\n");
	setenv("XRING_APPLICATION_ID", "cache", 1);
	cr_expect_not(connect_udp_offloaded(), "the section for id cache said os");
}

Test(conf_effects, application_id_leaves_out_the_sections_of_other_ids)
{
	write_rules("application-id * cache\nuse os udp_connect *:*\n");
	setenv("XRING_APPLICATION_ID", "web", 1);
	cr_expect(connect_udp_offloaded(), "a section for another id applied");
}

/* Reserves n more huge pages for the test (root only), or skips; hp_restore() gives them back. */
static long hp_saved = -1;

static long hp_read(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static bool hp_write(long n)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", n) > 0;
	return fclose(f) == 0 && ok;
}

static void hp_reserve(long n)
{
	if (geteuid() != 0)
		cr_skip_test("reserving huge pages needs root");
	hp_saved = hp_read();
	cr_assert_geq(hp_saved, 0);
	cr_assert(hp_write(hp_saved + n), "cannot reserve %ld huge pages", n);
	cr_assert_geq(huge_free(), (size_t) n, "the kernel found no room for %ld huge pages", n);
}

static void hp_restore(void)
{
	if (hp_saved >= 0)
		hp_write(hp_saved);
}

Test(conf_effects, hugepages_on_backs_pools_and_memif_regions_with_huge_pages_when_reserved,
     .fini = hp_restore)
{
	struct xring_alloc_hooks h = {.region = note_page};
	struct memlink_config mc = {0};
	struct port *e[2], *srv;
	struct xring ring;

	hp_reserve(8);
	setenv("XRING_HUGEPAGES", "on", 1);
	srv = memif_server(); /* sets XRING_PORTS, read with the rest at the first pool */
	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	cr_assert_eq(memlink_create(&mc, e), 0);
	cr_expect_eq(seen_page, 2u << 20, "pages of %zu bytes", seen_page);
	e[0]->ops->destroy(e[0]);
	e[1]->ops->destroy(e[1]);
	/* A memif client's region, from a huge-page memfd. */
	seen_page = 0;
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	memif_client_up(srv);
	cr_expect_eq(seen_page, 2u << 20, "memif region pages of %zu bytes", seen_page);
	xring_queue_exit(&ring);
	ports_reset();
	srv->ops->destroy(srv);
	unlink(sock_path);
}
