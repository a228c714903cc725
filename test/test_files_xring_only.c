/*
 * Registered tables larger than the kernel's (XRING_FILES_MAX): the kernel registers as many
 * slots as RLIMIT_NOFILE allows, the rest exist in xring only and hold accepted offloaded
 * connections with no kernel file behind them. The ring's port is one end of an in-memory
 * link; a second stack on the other end is the remote host whose connections it accepts. The
 * kernel's table is made small by lowering RLIMIT_NOFILE (no privilege needed).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "offload_link.h"

/* Each test is a process, run in parallel: the listener's placeholder reserves the port in
 * the kernel, so each takes its own. */
#define PORT   (uint16_t)(20000 + getpid() % 30000)
#define KSLOTS 64 /* the kernel's table: the soft RLIMIT_NOFILE */
#define NSLOTS 72 /* the registered table: 8 slots in xring only */
#define NCONN  6

static struct tcb *conn[NCONN];

static bool in_time(const struct timespec *start, int secs)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec < secs;
}

static void small_kernel_table(void)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	/* The hard limit too: liburing raises the soft one toward it when the kernel refuses. */
	rl.rlim_cur = rl.rlim_max = KSLOTS;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void setup(void)
{
	struct memlink_config mc = {.name = "x"};
	struct ol_config c = {.link = &mc, .entries = 64, .no_listener = true, .strict_tx = true};

	signal(SIGPIPE, SIG_IGN);
	/* Before the ring reads the parameters (once per process: each test is one). */
	setenv("XRING_FILES_MAX", "1000", 1);
	small_kernel_table();
	ol_setup_with(&c);
}

TestSuite(files_xring_only, .init = setup, .fini = ol_teardown, .timeout = 60);

static struct xring_sqe *sqe(uint64_t ud)
{
	struct xring_sqe *s = xring_get_sqe(&ol.ring);

	cr_assert_not_null(s);
	xring_sqe_set_data64(s, ud);
	return s;
}

static struct xring_sqe *fixed(struct xring_sqe *s)
{
	s->flags |= XRING_SQE_FIXED_FILE;
	return s;
}

/* The next CQE, driving both ends while there is none. */
static struct xring_cqe get(uint64_t *ud)
{
	struct timespec start;
	struct xring_cqe *c, out;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (xring_peek_cqe(&ol.ring, &c) != 0) {
		cr_assert(in_time(&start, 10), "no CQE came");
		ol_drive();
	}
	out = *c;
	xring_cqe_seen(&ol.ring, c);
	if (ud)
		*ud = out.user_data;
	return out;
}

/* Submits one request and returns its result. */
static int run1(struct xring_sqe *s)
{
	uint64_t want = s->user_data, ud;
	struct xring_cqe c;

	xring_submit(&ol.ring);
	c = get(&ud);
	cr_assert_eq(ud, want, "CQE for %llu, expected %llu", (unsigned long long) ud,
		     (unsigned long long) want);
	return c.res;
}

/* A listener in slot 0 (a kernel slot: its placeholder reserves the port). */
static void listener(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	struct xring_sqe *s;
	int ret;

	inet_pton(AF_INET, OL_XRING_IP, &a.sin_addr);
	s = sqe(1);
	xring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, 0, 0);
	cr_assert_eq(run1(s), 0);
	s = sqe(2);
	xring_prep_bind(s, 0, (struct sockaddr *) &a, sizeof(a));
	ret = run1(fixed(s));
	cr_assert_eq(ret, 0, "bind: %d", ret);
	s = sqe(3);
	xring_prep_listen(s, 0, 16);
	cr_assert_eq(run1(fixed(s)), 0);
}

/* The remote host's connection c, established. */
static void client(int c)
{
	struct timespec start;

	cr_assert_eq(tcp_connect(&ol.peer_tcp, clock_mono_ns(), inet_addr(OL_XRING_IP), PORT, 0,
				 NULL, NULL, &conn[c]),
		     0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (tcp_state(conn[c]) != TCPS_ESTABLISHED) {
		cr_assert(in_time(&start, 10), "client %d not established", c);
		ol_drive();
	}
}

/* Exactly len bytes from the remote host's connection c (0: waits for the end of stream). */
static void peer_recv(int c, char *buf, size_t len)
{
	struct timespec start;
	size_t got = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		long n;

		ol_drive();
		n = tcp_recv(conn[c], clock_mono_ns(), buf + got, len ? len - got : 1);
		if (n == 0 && !len)
			return;
		if (n > 0)
			got += (size_t) n;
		else
			cr_assert(n == -EAGAIN, "peer recv: %ld", n);
		cr_assert(in_time(&start, 10), "the remote host received %zu of %zu", got, len);
	} while (got < len || !len);
}

/* Sends on slot and reads it at the remote host's connection c; then the other way. */
static void echo_both_ways(unsigned slot, int c)
{
	char buf[8] = {0};
	struct xring_sqe *s = sqe(50);

	xring_prep_send(s, (int) slot, "ping", 4, 0);
	cr_assert_eq(run1(fixed(s)), 4);
	peer_recv(c, buf, 4);
	cr_assert_str_eq(buf, "ping");
	cr_assert_eq(tcp_send(conn[c], clock_mono_ns(), "pong", 4), 4);
	memset(buf, 0, sizeof(buf));
	s = sqe(51);
	xring_prep_recv(s, (int) slot, buf, 4, MSG_WAITALL);
	cr_assert_eq(run1(fixed(s)), 4);
	cr_assert_str_eq(buf, "pong");
}

/* An accept_direct into slot (or XRING_FILE_INDEX_ALLOC) as the remote host's connection c
 * comes in; its result. */
static int32_t accept_client(uint64_t ud, unsigned slot, int c)
{
	struct xring_sqe *s = sqe(ud);

	xring_prep_accept_direct(s, 0, NULL, NULL, 0, slot);
	fixed(s);
	xring_submit(&ol.ring);
	client(c);
	return get(NULL).res;
}

/* A table of NSLOTS with the allocation range [off, NSLOTS), and the listener. */
static void table(unsigned off)
{
	cr_assert_eq(xring_register_files_sparse(&ol.ring, NSLOTS), 0);
	cr_assert_eq(xring_register_file_alloc_range(&ol.ring, off, NSLOTS - off), 0);
	listener();
}

static void setup_plain(void)
{
	unsetenv("XRING_FILES_MAX");
	small_kernel_table();
	cr_assert_eq(xring_queue_init(8, &ol.ring, 0), 0);
}

static void teardown_plain(void)
{
	xring_queue_exit(&ol.ring);
}

TestSuite(files_kernel_limit, .init = setup_plain, .fini = teardown_plain, .timeout = 60);

Test(files_kernel_limit, without_the_opt_in_a_table_past_the_kernel_limit_fails_with_emfile)
{
	cr_assert_eq(xring_register_files_sparse(&ol.ring, NSLOTS), -EMFILE);
	cr_assert_eq(xring_register_files_sparse(&ol.ring, KSLOTS), 0);
	cr_assert_eq(xring_register_files_update(&ol.ring, KSLOTS, (int[]){-1}, 1), -EINVAL);
	cr_assert_eq(xring_unregister_files(&ol.ring), 0);
}

Test(files_xring_only, a_table_past_xring_files_max_fails_with_emfile)
{
	int ret = xring_register_files_sparse(&ol.ring, 1001);

	cr_assert_eq(ret, -EMFILE, "%d", ret);
}

Test(files_xring_only, a_table_past_the_kernel_limit_registers_with_the_opt_in)
{
	int fds[NSLOTS];

	cr_assert_eq(xring_register_files_sparse(&ol.ring, NSLOTS), 0);
	cr_assert_eq(xring_unregister_files(&ol.ring), 0);
	/* Xring-only slots may be registered empty, never with a kernel file. */
	for (int i = 0; i < NSLOTS; i++)
		fds[i] = -1;
	cr_assert_eq(xring_register_files(&ol.ring, fds, NSLOTS), 0);
	cr_assert_eq(xring_unregister_files(&ol.ring), 0);
	fds[NSLOTS - 1] = 0;
	cr_assert_eq(xring_register_files(&ol.ring, fds, NSLOTS), -EMFILE);
}

Test(files_xring_only, multishot_accept_direct_allocates_past_the_kernel_table_when_it_is_full)
{
	struct xring_sqe *s;

	table(KSLOTS - 2);
	s = sqe(10);
	xring_prep_multishot_accept_direct(s, 0, NULL, NULL, 0);
	fixed(s);
	xring_submit(&ol.ring);
	for (int c = 0; c < 4; c++) {
		uint64_t ud;
		struct xring_cqe cqe;

		client(c);
		cqe = get(&ud);
		cr_assert_eq(ud, 10);
		cr_assert(cqe.flags & XRING_CQE_F_MORE);
		/* Two slots the kernel has, then two it does not. */
		cr_assert_eq(cqe.res, KSLOTS - 2 + c);
	}
	for (int c = 0; c < 4; c++)
		echo_both_ways((unsigned) (KSLOTS - 2 + c), c);
	/* A kernel slot comes free: the next connection takes it again. */
	s = sqe(11);
	xring_prep_close_direct(s, KSLOTS - 2);
	cr_assert_eq(run1(s), 0);
	client(4);
	{
		uint64_t ud;
		struct xring_cqe cqe = get(&ud);

		cr_assert_eq(ud, 10);
		cr_assert_eq(cqe.res, KSLOTS - 2);
	}
	echo_both_ways(KSLOTS - 2, 4);
}

Test(files_xring_only, an_accept_into_an_xring_only_slot_needs_no_free_descriptor)
{
	int fds[KSLOTS], n = 0;
	struct xring_sqe *s;

	table(KSLOTS);
	/* Every descriptor the process may have is taken. */
	while (n < KSLOTS && (fds[n] = dup(0)) >= 0)
		n++;
	cr_assert_lt(n, KSLOTS);
	s = sqe(10);
	xring_prep_multishot_accept_direct(s, 0, NULL, NULL, 0);
	fixed(s);
	xring_submit(&ol.ring);
	for (int c = 0; c < 2; c++) {
		client(c);
		cr_assert_eq(get(NULL).res, KSLOTS + c);
	}
	echo_both_ways(KSLOTS + 1, 1);
	while (n > 0)
		close(fds[--n]);
}

Test(files_xring_only, accept_direct_lands_in_a_named_or_allocated_xring_only_slot)
{
	table(KSLOTS + 2);
	cr_assert_eq(accept_client(10, KSLOTS + 5, 0), 0);
	cr_assert_eq(accept_client(11, XRING_FILE_INDEX_ALLOC, 1), KSLOTS + 2);
	echo_both_ways(KSLOTS + 5, 0);
	echo_both_ways(KSLOTS + 2, 1);
}

Test(files_xring_only, accept_direct_fails_with_enfile_when_the_range_is_full)
{
	table(NSLOTS - 2);
	for (int c = 0; c < 3; c++) {
		cr_assert_eq(accept_client(10 + (uint64_t) c, XRING_FILE_INDEX_ALLOC, c),
			     c < 2 ? NSLOTS - 2 + c : -ENFILE);
	}
}

Test(files_xring_only, close_direct_ends_the_connection_and_frees_the_slot)
{
	char buf[4];
	struct xring_sqe *s;

	table(KSLOTS);
	cr_assert_eq(accept_client(10, XRING_FILE_INDEX_ALLOC, 0), KSLOTS);
	s = sqe(11);
	xring_prep_close_direct(s, KSLOTS);
	cr_assert_eq(run1(s), 0);
	peer_recv(0, buf, 0); /* the end of the stream */
	s = sqe(12);
	xring_prep_close_direct(s, KSLOTS);
	cr_assert_eq(run1(s), -EBADF);
	/* The slot is free again. */
	xring_register_file_alloc_range(&ol.ring, KSLOTS, NSLOTS - KSLOTS);
	cr_assert_eq(accept_client(13, XRING_FILE_INDEX_ALLOC, 1), KSLOTS);
	echo_both_ways(KSLOTS, 1);
}

Test(files_xring_only, a_files_update_clears_an_xring_only_slot)
{
	int none = -1, kfd = 0;
	struct xring_sqe *s;
	char buf[4];

	table(KSLOTS);
	cr_assert_eq(accept_client(10, XRING_FILE_INDEX_ALLOC, 0), KSLOTS);
	/* A kernel file has no place there; an update across both parts does both. */
	cr_assert_eq(xring_register_files_update(&ol.ring, KSLOTS, &kfd, 1), -EBADF);
	cr_assert_eq(xring_register_files_update(&ol.ring, NSLOTS, &none, 1), -EINVAL);
	{
		int two[2] = {-1, -1};

		cr_assert_eq(xring_register_files_update(&ol.ring, KSLOTS - 1, two, 2), 2);
	}
	peer_recv(0, buf, 0);
	s = sqe(11);
	xring_prep_send(s, KSLOTS, "x", 1, MSG_NOSIGNAL);
	cr_assert_eq(run1(fixed(s)), -EBADF);
}

Test(files_xring_only, unregistering_ends_the_connections_in_xring_only_slots)
{
	struct xring_sqe *s;
	char buf[4];

	table(KSLOTS);
	cr_assert_eq(accept_client(10, XRING_FILE_INDEX_ALLOC, 0), KSLOTS);
	cr_assert_eq(xring_unregister_files(&ol.ring), 0);
	peer_recv(0, buf, 0);
	s = sqe(11);
	xring_prep_send(s, KSLOTS, "x", 1, MSG_NOSIGNAL);
	cr_assert_eq(run1(fixed(s)), -EBADF);
}

Test(files_xring_only, a_kernel_only_request_on_an_xring_only_slot_fails_with_ebadf)
{
	struct xring_sqe *s;

	table(KSLOTS);
	cr_assert_eq(accept_client(10, XRING_FILE_INDEX_ALLOC, 0), KSLOTS);
	/* A plain descriptor for it would need a kernel file. */
	s = sqe(11);
	xring_prep_rw(XRING_OP_FIXED_FD_INSTALL, s, KSLOTS, NULL, 0, 0);
	cr_assert_eq(run1(fixed(s)), -EBADF);
	/* Nor can the kernel create a socket there, or close an empty one. */
	s = sqe(12);
	xring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, KSLOTS + 1, 0);
	cr_assert_eq(run1(s), -EBADF);
	s = sqe(13);
	xring_prep_close_direct(s, KSLOTS + 1);
	cr_assert_eq(run1(s), -EBADF);
	/* The connection is untouched. */
	echo_both_ways(KSLOTS, 0);
}
