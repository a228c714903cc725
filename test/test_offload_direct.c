/*
 * Offloaded TCP, differentially: the same SQE script runs on an offloaded socket (an xring
 * port on one end of an in-memory link, a second stack as the remote host on the other) and
 * on a kernel socket (xring's fallback over loopback, a kernel peer), with plain and with
 * direct descriptors, and the CQE streams (res, flags) must agree. Error results too: refused,
 * reset, unreachable, timed out, the kernel's answers for the last two taken from a private
 * network namespace.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "offload_link.h"
#include "stack/wire/icmp.h"

/* How the remote host treats TCP: its stack, silence (timed out), or ICMP host unreachable. */
static enum {
	PEER_TCP,
	PEER_SILENT,
	PEER_UNREACH
} peer_mode;

static void peer_tcp_input(void *ctx, uint64_t now, const struct ip4_view *ip,
			   const struct tcp_view *seg)
{
	struct iface_tx tx;
	int len;

	if (peer_mode == PEER_TCP) {
		tcp_input(&ol.peer_tcp, now, ip, seg);
		return;
	}
	if (peer_mode == PEER_SILENT)
		return;
	/* As a router with no route onward would. */
	cr_assert_eq(iface_ip4_begin(&ol.peer, now, ip->src, &tx), 0);
	len = icmp_emit_error(tx.l4, tx.l4_cap, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, ip->hdr,
			      (size_t) ip->hdr_len + 8);
	cr_assert_gt(len, 0);
	cr_assert_eq(iface_ip4_commit(&ol.peer, &tx, IPPROTO_ICMP, 0, (size_t) len), 0);
}

static void setup(void)
{
	struct memlink_config mc = {.name = "d"};
	struct ol_config c = {.link = &mc,
			      .no_ring = true,
			      .no_listener = true,
			      .strict_tx = true,
			      .tcp_input = peer_tcp_input};

	/* Before the first ring reads the parameters: a connect times out in 1 + 2 s. */
	setenv("XRING_TCP_SYN_RETRIES", "1", 1);
	signal(SIGPIPE, SIG_IGN);
	ol_setup_with(&c);
	peer_mode = PEER_TCP;
}

TestSuite(offload_direct, .init = setup, .fini = ol_teardown, .timeout = 60);

/* The script's other end: a kernel socket over loopback, or the remote host's stack. */
struct tpeer {
	bool kernel;
	struct xring ring;
	int lfd, cfd[4];
	struct tcb *lis, *conn[4];
	int nconn;
	struct sockaddr_in addr; /* where the script connects */
	struct xring_sqe *cur;   /* the SQE being prepared */
	bool alloc;              /* direct sockets from SOCKET's slot allocation */
};

static void tp_init(struct tpeer *p, bool kernel)
{
	memset(p, 0, sizeof(*p));
	p->kernel = kernel;
	p->lfd = -1;
	for (int i = 0; i < 4; i++)
		p->cfd[i] = -1;
	cr_assert_eq(xring_queue_init(64, &p->ring, 0), 0);
}

/* Moves both ends once: the ring's ports and timers (a submission polls them), the peer. */
static void drive(struct tpeer *p)
{
	xring_submit(&p->ring);
	if (!p->kernel)
		ol_pump();
}

static bool in_time(const struct timespec *start, int secs)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec < secs;
}

/* A listener the script connects to (listen) or a closed port (refuses). */
static void tp_listen(struct tpeer *p, bool listen_too)
{
	if (p->kernel) {
		struct sockaddr_in lo = ol_sin("127.0.0.1", 0);
		socklen_t len = sizeof(lo);

		p->lfd = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(bind(p->lfd, (struct sockaddr *) &lo, sizeof(lo)), 0);
		if (listen_too)
			cr_assert_eq(listen(p->lfd, 8), 0);
		getsockname(p->lfd, (struct sockaddr *) &lo, &len);
		p->addr = lo;
		return;
	}
	p->addr = ol_sin(OL_PEER_IP, 7000);
	if (listen_too)
		cr_assert_eq(tcp_listen(&ol.peer_tcp, 7000, 8, NULL, NULL, &p->lis), 0);
}

static void tp_accept(struct tpeer *p)
{
	struct timespec start;

	if (p->kernel) {
		struct timeval tv = {5, 0};
		struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};

		cr_assert_eq(poll(&pfd, 1, 5000), 1, "the kernel peer accepted nothing");
		p->cfd[0] = accept(p->lfd, NULL, NULL);
		cr_assert_geq(p->cfd[0], 0);
		setsockopt(p->cfd[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (tcp_accept(p->lis, &p->conn[0]) != 0) {
		cr_assert(in_time(&start, 10), "the remote host accepted nothing");
		drive(p);
	}
}

static void tp_send(struct tpeer *p, int c, const void *data, size_t len)
{
	if (p->kernel) {
		cr_assert_eq(send(p->cfd[c], data, len, 0), (ssize_t) len);
		return;
	}
	cr_assert_eq(tcp_send(p->conn[c], clock_mono_ns(), data, len), (long) len);
	ol_pump();
}

/* Reads exactly len bytes (0: waits for the end of the stream) from connection c. */
static void tp_recv(struct tpeer *p, int c, void *buf, size_t len)
{
	struct timespec start;
	size_t got = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		long n;

		if (p->kernel) {
			n = recv(p->cfd[c], (char *) buf + got, len ? len - got : 1, 0);
			cr_assert_geq(n, 0, "kernel peer recv: %s", strerror(errno));
		} else {
			drive(p);
			n = tcp_recv(p->conn[c], clock_mono_ns(), (char *) buf + got,
				     len ? len - got : 1);
			if (n == -EAGAIN)
				n = -1;
			cr_assert_geq(n, -1, "remote host recv: %ld", n);
		}
		if (n == 0) {
			cr_assert_eq(len, 0, "end of stream after %zu of %zu bytes", got, len);
			return;
		}
		if (n > 0) {
			cr_assert_neq(len, 0, "data where the end of the stream was due");
			got += (size_t) n;
		}
		cr_assert(in_time(&start, 10), "the peer received %zu of %zu bytes", got, len);
	} while (!len || got < len);
}

static void tp_close(struct tpeer *p, int c, bool reset)
{
	if (p->kernel) {
		struct linger lg = {1, 0};

		if (reset)
			setsockopt(p->cfd[c], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(p->cfd[c]);
		p->cfd[c] = -1;
		return;
	}
	if (reset)
		tcp_abort(p->conn[c], clock_mono_ns());
	else
		tcp_close(p->conn[c], clock_mono_ns());
	p->conn[c] = NULL;
	ol_pump();
}

static void tp_fini(struct tpeer *p)
{
	for (int i = 0; i < 4; i++) {
		if (p->cfd[i] >= 0)
			close(p->cfd[i]);
		if (p->conn[i])
			tcp_abort(p->conn[i], clock_mono_ns());
	}
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->lis)
		tcp_close(p->lis, clock_mono_ns());
	xring_queue_exit(&p->ring);
}

struct rec {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

struct log {
	struct rec r[64];
	int n;
};

/* Reaps n CQEs, driving both ends; bounded in time. */
static void reap(struct tpeer *p, int n, struct log *out)
{
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int k = 0; k < n; k++) {
		struct xring_cqe *cqe = NULL;

		while (xring_peek_cqe(&p->ring, &cqe)) {
			cr_assert(in_time(&start, 20), "CQE %d of %d missing", k + 1, n);
			drive(p);
			usleep(20);
		}
		cr_assert_lt(out->n, 64);
		out->r[out->n++] = (struct rec){cqe->user_data, cqe->res, cqe->flags};
		xring_cqe_seen(&p->ring, cqe);
	}
}

static struct xring_sqe *sqe_for(struct tpeer *p, uint64_t ud)
{
	struct xring_sqe *sqe = xring_get_sqe(&p->ring);

	cr_assert_not_null(sqe);
	sqe->user_data = ud;
	p->cur = sqe;
	return sqe;
}

static void run(struct tpeer *p, int ncqes, struct log *out)
{
	xring_submit(&p->ring);
	reap(p, ncqes, out);
}

/* A socket for the script: a plain kernel one, or a direct one made by SOCKET in slot 2 or
 * (p->alloc) in the slot the kernel allocates from the range 5..7. */
#define SLOT 2
static int script_socket(struct tpeer *p, bool direct, struct log *out)
{
	if (!direct)
		return socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(xring_register_files_sparse(&p->ring, 8), 0);
	if (p->alloc) {
		cr_assert_eq(xring_register_file_alloc_range(&p->ring, 5, 3), 0);
		xring_prep_socket_direct_alloc(sqe_for(p, 1), AF_INET, SOCK_STREAM, 0, 0);
	} else {
		xring_prep_socket_direct(sqe_for(p, 1), AF_INET, SOCK_STREAM, 0, SLOT, 0);
	}
	run(p, 1, out);
	cr_assert_geq(out->r[out->n - 1].res, 0, "socket: %d", out->r[out->n - 1].res);
	return p->alloc ? out->r[out->n - 1].res : SLOT;
}

/* The SQE just prepared names a direct descriptor (prep helpers clear the flags). */
static void fixed(struct tpeer *p, bool direct)
{
	if (direct)
		p->cur->flags |= XRING_SQE_FIXED_FILE;
}

static void script_close(struct tpeer *p, bool direct, int fd, uint64_t ud, struct log *out)
{
	if (direct)
		xring_prep_close_direct(sqe_for(p, ud), (unsigned) fd);
	else
		xring_prep_close(sqe_for(p, ud), fd);
	run(p, 1, out);
}

/* Connects, moves data every way the ring offers, cancels, times out, shuts down, closes. */
static void tcp_script(struct tpeer *p, bool direct, struct log *out)
{
	static char bufs[4][64];
	char buf[128] = {0}, big[100];
	struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	struct sockaddr_in name;
	struct msghdr rmsg = {.msg_name = &name, .msg_namelen = sizeof(name)};
	struct __kernel_timespec ts = {.tv_nsec = 20 * 1000 * 1000};
	struct xring_buf_ring *br;
	struct xring_sqe *sqe;
	int fd, ret;

	tp_listen(p, true);
	fd = script_socket(p, direct, out);
	xring_prep_connect(sqe_for(p, 2), fd, (struct sockaddr *) &p->addr, sizeof(p->addr));
	fixed(p, direct);
	run(p, 1, out);
	cr_assert_eq(out->r[out->n - 1].res, 0, "connect: %d (socket %d)", out->r[out->n - 1].res,
		     out->r[0].res);
	tp_accept(p);

	xring_prep_send(sqe_for(p, 3), fd, "hello", 5, 0);
	fixed(p, direct);
	run(p, 1, out);
	tp_recv(p, 0, buf, 5);
	cr_expect_eq(memcmp(buf, "hello", 5), 0);

	tp_send(p, 0, "world!!", 7);
	xring_prep_recv(sqe_for(p, 4), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	run(p, 1, out);
	cr_expect_eq(memcmp(buf, "world!!", 7), 0);

	/* Polling first: the same answer. */
	tp_send(p, 0, "pf", 2);
	xring_prep_recv(sqe_for(p, 19), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	p->cur->ioprio |= XRING_RECVSEND_POLL_FIRST;
	run(p, 1, out);
	xring_prep_send(sqe_for(p, 20), fd, "PF", 2, 0);
	fixed(p, direct);
	p->cur->ioprio |= XRING_RECVSEND_POLL_FIRST;
	run(p, 1, out);
	tp_recv(p, 0, buf, 2);
	cr_expect_eq(memcmp(buf, "PF", 2), 0);

	/* A multishot receive into a buffer ring: one 100-byte segment fills two buffers. */
	br = xring_setup_buf_ring(&p->ring, 4, 7, 0, &ret);
	cr_assert_not_null(br, "buffer ring: %d", ret);
	for (int i = 0; i < 4; i++)
		xring_buf_ring_add(br, bufs[i], sizeof(bufs[i]), (unsigned short) i,
				   xring_buf_ring_mask(4), i);
	xring_buf_ring_advance(br, 4);
	for (int i = 0; i < 100; i++)
		big[i] = (char) i;
	tp_send(p, 0, big, sizeof(big));
	sqe = sqe_for(p, 5);
	xring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	fixed(p, direct);
	sqe->flags |= XRING_SQE_BUFFER_SELECT;
	sqe->buf_group = 7;
	run(p, 2, out);
	cr_expect_eq(memcmp(bufs[0], big, 64), 0);
	cr_expect_eq(memcmp(bufs[1], big + 64, 36), 0);
	xring_prep_cancel64(sqe_for(p, 6), 5, 0);
	run(p, 2, out);

	/* A multishot recvmsg: header and a name area first in each buffer (TCP leaves the name
	 * empty), 32 bytes of payload room in each. */
	tp_send(p, 0, big, 40);
	sqe = sqe_for(p, 15);
	xring_prep_recvmsg_multishot(sqe, fd, &rmsg, 0);
	fixed(p, direct);
	sqe->flags |= XRING_SQE_BUFFER_SELECT;
	sqe->buf_group = 7;
	run(p, 2, out);
	for (int i = 0; i < 2; i++) {
		struct xring_recvmsg_out *o = xring_recvmsg_validate(bufs[2 + i], 64, &rmsg);

		cr_assert_not_null(o);
		cr_expect_eq(o->namelen, 0);
		cr_expect_eq(o->payloadlen, i ? 8u : 32u);
		cr_expect_eq(memcmp(xring_recvmsg_payload(o, &rmsg), big + 32 * i, i ? 8 : 32), 0);
	}
	xring_prep_cancel64(sqe_for(p, 16), 15, 0);
	run(p, 2, out);

	/* A receive that nothing arrives for: its link timeout ends it. */
	sqe = sqe_for(p, 7);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	sqe->flags |= XRING_SQE_IO_LINK;
	xring_prep_link_timeout(sqe_for(p, 8), &ts, 0);
	run(p, 2, out);
	/* A waiting receive cancelled by its descriptor. */
	xring_prep_recv(sqe_for(p, 17), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	xring_prep_cancel_fd(sqe_for(p, 18), fd, direct ? XRING_ASYNC_CANCEL_FD_FIXED : 0);
	run(p, 2, out);
	xring_prep_recv(sqe_for(p, 9), fd, buf, sizeof(buf), MSG_DONTWAIT);
	fixed(p, direct);
	run(p, 1, out);

	xring_prep_send_zc(sqe_for(p, 10), fd, "zc", 2, 0, 0);
	fixed(p, direct);
	run(p, 2, out);
	tp_recv(p, 0, buf, 2);
	cr_expect_eq(memcmp(buf, "zc", 2), 0);
	xring_prep_sendmsg(sqe_for(p, 11), fd, &msg, 0);
	fixed(p, direct);
	run(p, 1, out);
	tp_recv(p, 0, buf, 4);
	cr_expect_eq(memcmp(buf, "abcd", 4), 0);

	xring_prep_shutdown(sqe_for(p, 12), fd, SHUT_WR);
	fixed(p, direct);
	run(p, 1, out);
	tp_recv(p, 0, buf, 0);
	tp_close(p, 0, false);
	xring_prep_recv(sqe_for(p, 13), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	run(p, 1, out);
	script_close(p, direct, fd, 14, out);
	xring_free_buf_ring(&p->ring, br, 4, 7);
}

/* A connect to p->addr that fails; the socket is dead after that. */
static void failed_connect_script(struct tpeer *p, bool direct, struct log *out)
{
	char buf[8];
	int fd;

	fd = script_socket(p, direct, out);
	xring_prep_connect(sqe_for(p, 2), fd, (struct sockaddr *) &p->addr, sizeof(p->addr));
	fixed(p, direct);
	run(p, 1, out);
	xring_prep_send(sqe_for(p, 3), fd, "x", 1, MSG_NOSIGNAL);
	fixed(p, direct);
	run(p, 1, out);
	xring_prep_recv(sqe_for(p, 4), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	run(p, 1, out);
	script_close(p, direct, fd, 5, out);
}

/* Nothing listens: the connect is refused. */
static void refused_script(struct tpeer *p, bool direct, struct log *out)
{
	tp_listen(p, false);
	failed_connect_script(p, direct, out);
}

/* The peer resets the connection under a waiting receive. */
static void reset_script(struct tpeer *p, bool direct, struct log *out)
{
	char buf[8];
	int fd;

	tp_listen(p, true);
	fd = script_socket(p, direct, out);
	xring_prep_connect(sqe_for(p, 2), fd, (struct sockaddr *) &p->addr, sizeof(p->addr));
	fixed(p, direct);
	run(p, 1, out);
	tp_accept(p);
	xring_prep_recv(sqe_for(p, 3), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	xring_submit(&p->ring);
	tp_close(p, 0, true);
	reap(p, 1, out);
	xring_prep_send(sqe_for(p, 4), fd, "x", 1, MSG_NOSIGNAL);
	fixed(p, direct);
	run(p, 1, out);
	xring_prep_recv(sqe_for(p, 5), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	run(p, 1, out);
	script_close(p, direct, fd, 6, out);
}

/* Client c connects to the script's listener at p->addr and is established. */
static void tp_client(struct tpeer *p, int c)
{
	struct timespec start;

	if (p->kernel) {
		struct timeval tv = {5, 0};

		p->cfd[c] = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(p->cfd[c], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cr_assert_eq(connect(p->cfd[c], (struct sockaddr *) &p->addr, sizeof(p->addr)), 0);
		return;
	}
	cr_assert_eq(tcp_connect(&ol.peer_tcp, clock_mono_ns(), p->addr.sin_addr.s_addr,
				 ntohs(p->addr.sin_port), 0, NULL, NULL, &p->conn[c]),
		     0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (tcp_state(p->conn[c]) != TCPS_ESTABLISHED) {
		cr_assert(in_time(&start, 10), "client %d: %s (segs in %llu out %llu rst in %llu)",
			  c, tcp_state_name(tcp_state(p->conn[c])),
			  (unsigned long long) tcp_get_stats(&ol.peer_tcp)->segs_in,
			  (unsigned long long) tcp_get_stats(&ol.peer_tcp)->segs_out,
			  (unsigned long long) tcp_get_stats(&ol.peer_tcp)->rst_in);
		drive(p);
	}
}

/*
 * A listener on a direct descriptor: a multishot accept into the alloc range until it is full
 * (-ENFILE ends it), an accept into a chosen slot, I/O and close_direct on accepted slots, a
 * slot emptied by a files update.
 */
static void accept_script(struct tpeer *p, bool direct, struct log *out)
{
	char buf[8] = {0};
	int none = -1;

	if (p->kernel) {
		struct sockaddr_in lo = ol_sin("127.0.0.1", 0);
		socklen_t len = sizeof(lo);
		int t = socket(AF_INET, SOCK_STREAM, 0);

		/* A free port to bind the direct socket to (it has no getsockname). */
		cr_assert_eq(bind(t, (struct sockaddr *) &lo, sizeof(lo)), 0);
		getsockname(t, (struct sockaddr *) &lo, &len);
		close(t);
		p->addr = lo;
	} else {
		p->addr = ol_sin(OL_XRING_IP, 8000);
	}
	cr_assert_eq(xring_register_files_sparse(&p->ring, 8), 0);
	cr_assert_eq(xring_register_file_alloc_range(&p->ring, 4, 2), 0);
	xring_prep_socket_direct(sqe_for(p, 1), AF_INET, SOCK_STREAM, 0, 0, 0);
	xring_prep_bind(sqe_for(p, 2), 0, (struct sockaddr *) &p->addr, sizeof(p->addr));
	fixed(p, true);
	xring_prep_listen(sqe_for(p, 3), 0, 8);
	fixed(p, true);
	p->cur->flags |= XRING_SQE_IO_LINK;
	p->cur = NULL;
	run(p, 3, out);
	for (int i = 0; i < out->n; i++)
		cr_assert_geq(out->r[i].res, 0, "setup request %llu: %d",
			      (unsigned long long) out->r[i].user_data, out->r[i].res);

	xring_prep_multishot_accept_direct(sqe_for(p, 4), 0, NULL, NULL, 0);
	fixed(p, true);
	xring_submit(&p->ring);
	for (int c = 0; c < 3; c++)
		tp_client(p, c);
	reap(p, 3, out);
	xring_prep_accept_direct(sqe_for(p, 5), 0, NULL, NULL, 0, 2);
	fixed(p, true);
	xring_submit(&p->ring);
	tp_client(p, 3);
	reap(p, 1, out);

	xring_prep_send(sqe_for(p, 6), 4, "abc", 3, 0);
	fixed(p, true);
	run(p, 1, out);
	tp_recv(p, 0, buf, 3);
	cr_expect_str_eq(buf, "abc");
	xring_prep_close_direct(sqe_for(p, 7), 4);
	run(p, 1, out);
	tp_recv(p, 0, buf, 0);

	out->r[out->n++] = (struct rec){100, xring_register_files_update(&p->ring, 5, &none, 1), 0};
	xring_prep_send(sqe_for(p, 8), 5, "x", 1, MSG_NOSIGNAL);
	fixed(p, true);
	run(p, 1, out);
	xring_prep_recv(sqe_for(p, 9), 2, buf, sizeof(buf), MSG_DONTWAIT);
	fixed(p, true);
	run(p, 1, out);
	xring_prep_send(sqe_for(p, 10), 2, "xy", 2, 0);
	fixed(p, true);
	run(p, 1, out);
	tp_recv(p, 3, buf, 2);
	cr_expect_eq(memcmp(buf, "xy", 2), 0);
	/* Nobody connecting: SOCK_NONBLOCK is for the new socket, the accept waits (and is
	 * cancelled); IORING_ACCEPT_DONTWAIT does not wait. */
	xring_prep_accept_direct(sqe_for(p, 13), 0, NULL, NULL, SOCK_NONBLOCK, 3);
	fixed(p, true);
	xring_prep_cancel64(sqe_for(p, 14), 13, 0);
	run(p, 2, out);
	xring_prep_accept_direct(sqe_for(p, 15), 0, NULL, NULL, 0, 3);
	fixed(p, true);
	p->cur->ioprio |= XRING_ACCEPT_DONTWAIT;
	run(p, 1, out);
	/* A files-update request empties slot 2: the connection is gone, the slot too. */
	xring_prep_files_update(sqe_for(p, 16), &none, 1, 2);
	run(p, 1, out);
	xring_prep_send(sqe_for(p, 17), 2, "x", 1, MSG_NOSIGNAL);
	fixed(p, true);
	run(p, 1, out);
	tp_recv(p, 3, buf, 0);
	xring_prep_close_direct(sqe_for(p, 11), 2);
	run(p, 1, out);
	xring_prep_close_direct(sqe_for(p, 12), 0);
	run(p, 1, out);
	cr_expect_eq(xring_unregister_files(&p->ring), 0);
}

/* The peer resets an idle connection: the next send reports it, the one after is a broken
 * pipe, a receive sees the end. */
static void reset_idle_script(struct tpeer *p, bool direct, struct log *out)
{
	char buf[8];
	int fd;

	tp_listen(p, true);
	fd = script_socket(p, direct, out);
	xring_prep_connect(sqe_for(p, 2), fd, (struct sockaddr *) &p->addr, sizeof(p->addr));
	fixed(p, direct);
	run(p, 1, out);
	tp_accept(p);
	tp_close(p, 0, true);
	/* Let the RST arrive (the link is memory: a few rounds carry it). */
	for (int i = 0; i < 100; i++) {
		drive(p);
		usleep(100);
	}
	xring_prep_send(sqe_for(p, 3), fd, "x", 1, MSG_NOSIGNAL);
	fixed(p, direct);
	run(p, 1, out);
	xring_prep_send(sqe_for(p, 4), fd, "x", 1, MSG_NOSIGNAL);
	fixed(p, direct);
	run(p, 1, out);
	xring_prep_recv(sqe_for(p, 5), fd, buf, sizeof(buf), 0);
	fixed(p, direct);
	run(p, 1, out);
	script_close(p, direct, fd, 6, out);
}

/* A connected socket registered by its plain descriptor: the slot names the same socket,
 * which outlives the close of the descriptor until close_direct. */
static void registered_script(struct tpeer *p, bool direct, struct log *out)
{
	char buf[8] = {0};
	int fd;

	tp_listen(p, true);
	fd = script_socket(p, false, out);
	xring_prep_connect(sqe_for(p, 2), fd, (struct sockaddr *) &p->addr, sizeof(p->addr));
	run(p, 1, out);
	tp_accept(p);
	if (direct && p->alloc) {
		/* p->alloc here: by a files-update request. */
		cr_assert_eq(xring_register_files_sparse(&p->ring, 8), 0);
		xring_prep_files_update(sqe_for(p, 101), &fd, 1, 3);
		run(p, 1, out);
	} else if (direct) {
		cr_assert_eq(xring_register_files_sparse(&p->ring, 8), 0);
		out->r[out->n++] =
			(struct rec){100, xring_register_files_update(&p->ring, 3, &fd, 1), 0};
	} else {
		int fds[4] = {-1, -1, -1, fd};

		out->r[out->n++] = (struct rec){100, xring_register_files(&p->ring, fds, 4), 0};
	}
	xring_prep_send(sqe_for(p, 3), 3, "abc", 3, 0);
	fixed(p, true);
	run(p, 1, out);
	tp_recv(p, 0, buf, 3);
	cr_expect_str_eq(buf, "abc");
	xring_prep_close(sqe_for(p, 4), fd);
	run(p, 1, out);
	xring_prep_send(sqe_for(p, 5), 3, "de", 2, 0);
	fixed(p, true);
	run(p, 1, out);
	tp_recv(p, 0, buf, 2);
	cr_expect_eq(memcmp(buf, "de", 2), 0);
	tp_send(p, 0, "xyz", 3);
	xring_prep_recv(sqe_for(p, 6), 3, buf, sizeof(buf), 0);
	fixed(p, true);
	run(p, 1, out);
	xring_prep_close_direct(sqe_for(p, 7), 3);
	run(p, 1, out);
	tp_recv(p, 0, buf, 0);
	cr_expect_eq(xring_unregister_files(&p->ring), 0);
}

/* Within a submission CQEs may come in either order: compare them by request, keeping each
 * request's own CQEs in order (qsort is not stable, so sort by position too). */
static void sort_log(struct log *l)
{
	struct rec tmp[64];
	int k = 0;

	memcpy(tmp, l->r, sizeof(tmp));
	for (uint64_t ud = 0; ud < 256 && k < l->n; ud++)
		for (int i = 0; i < l->n; i++)
			if (tmp[i].user_data == ud)
				l->r[k++] = tmp[i];
	cr_assert_eq(k, l->n, "user_data out of range");
}

static void compare(struct log *off, struct log *ker, const char *what)
{
	sort_log(off);
	sort_log(ker);
	for (int i = 0; i < ker->n; i++)
		cr_log_info("%s: kernel %llu: res %d flags %#x", what,
			    (unsigned long long) ker->r[i].user_data, ker->r[i].res,
			    ker->r[i].flags);
	cr_assert_eq(off->n, ker->n, "%s: %d CQEs offloaded, %d on the kernel", what, off->n,
		     ker->n);
	for (int i = 0; i < ker->n; i++) {
		cr_expect_eq(off->r[i].user_data, ker->r[i].user_data, "%s: CQE %d", what, i);
		cr_expect_eq(off->r[i].res, ker->r[i].res,
			     "%s: request %llu: offloaded %d, kernel %d", what,
			     (unsigned long long) ker->r[i].user_data, off->r[i].res,
			     ker->r[i].res);
		cr_expect_eq(off->r[i].flags, ker->r[i].flags,
			     "%s: request %llu: flags offloaded %#x, kernel %#x", what,
			     (unsigned long long) ker->r[i].user_data, off->r[i].flags,
			     ker->r[i].flags);
	}
}

typedef void (*script_fn)(struct tpeer *p, bool direct, struct log *out);

static void differential_alloc(script_fn fn, bool direct, bool alloc, const char *what)
{
	struct tpeer kp, op;
	struct log ker = {0}, off = {0};

	tp_init(&kp, true);
	kp.alloc = alloc;
	fn(&kp, direct, &ker);
	tp_fini(&kp);
	tp_init(&op, false);
	op.alloc = alloc;
	fn(&op, direct, &off);
	tp_fini(&op);
	compare(&off, &ker, what);
}

static void differential(script_fn fn, bool direct, const char *what)
{
	differential_alloc(fn, direct, false, what);
}

Test(offload_direct, a_tcp_script_gives_the_same_cqes_offloaded_and_on_the_kernel)
{
	differential(tcp_script, false, "tcp");
}

Test(offload_direct, a_tcp_script_on_direct_descriptors_gives_the_same_cqes)
{
	differential(tcp_script, true, "tcp direct");
	differential_alloc(tcp_script, true, true, "tcp direct, allocated slot");
}

Test(offload_direct, a_refused_connect_gives_the_same_cqes)
{
	differential(refused_script, false, "refused");
	differential(refused_script, true, "refused direct");
}

Test(offload_direct, a_reset_connection_gives_the_same_cqes)
{
	differential(reset_script, false, "reset");
	differential(reset_script, true, "reset direct");
	differential(reset_idle_script, false, "reset idle");
	differential(reset_idle_script, true, "reset idle direct");
}

Test(offload_direct, a_direct_listener_accepts_into_slots_as_the_kernel_does)
{
	differential(accept_script, true, "accept direct");
}

/*
 * The kernel's answer to a connect to 198.18.99.1:80 from a private network namespace A whose
 * default route leads over a veth pair to namespace B, a router: with forwarding on and an
 * unreachable route there, B answers the SYN with ICMP host unreachable; with forwarding off,
 * B drops it silently and the connect times out (tcp_syn_retries=1). With script, the CQEs of
 * failed_connect_script() through xring's kernel path; without, one entry (user_data 2): what
 * a blocking connect() returns.
 */
static void kernel_reference(bool router_forwards, bool script, bool direct, struct log *out)
{
	char ns[32], cmd[1024];
	int pfd[2];
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root for network namespaces");
	snprintf(ns, sizeof(ns), "xrd%db", (int) getpid());
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_in to = ol_sin("198.18.99.1", 80);
		struct log l = {.n = -1};
		struct tpeer kp;

		snprintf(cmd, sizeof(cmd),
			 "set -e; ip netns add %s; ip link set lo up;"
			 " sysctl -qw net.ipv4.tcp_syn_retries=1;"
			 " ip link add xrda type veth peer name xrdb netns %s;"
			 " ip addr add 198.18.97.1/24 dev xrda; ip link set xrda up;"
			 " ip route add default via 198.18.97.2;"
			 " ip -n %s addr add 198.18.97.2/24 dev xrdb; ip -n %s link set xrdb up;"
			 " ip -n %s link set lo up;"
			 " ip netns exec %s sysctl -qw net.ipv4.ip_forward=%d;"
			 " ip -n %s route add unreachable 198.18.99.0/24",
			 ns, ns, ns, ns, ns, ns, router_forwards, ns);
		if (unshare(CLONE_NEWNET) == 0 && system(cmd) == 0) {
			l.n = 0;
			if (script) {
				tp_init(&kp, true);
				kp.addr = to;
				failed_connect_script(&kp, direct, &l);
				tp_fini(&kp);
			} else {
				int fd = socket(AF_INET, SOCK_STREAM, 0);

				l.r[l.n].user_data = 2;
				l.r[l.n++].res = connect(fd, (struct sockaddr *) &to, sizeof(to))
							 ? -errno
							 : 0;
				close(fd);
			}
		}
		if (write(pfd[1], &l, sizeof(l)) != sizeof(l))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], out, sizeof(*out)), (ssize_t) sizeof(*out));
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns);
	if (system(cmd)) {
		/* Gone already when setup failed before creating it. */
	}
	cr_assert_geq(out->n, 0, "could not set up the kernel's namespaces");
}

static void offloaded_failure(int mode, bool direct, struct log *off)
{
	struct tpeer op;

	peer_mode = mode;
	tp_init(&op, false);
	op.addr = ol_sin(OL_PEER_IP, 7000);
	failed_connect_script(&op, direct, off);
	tp_fini(&op);
	sort_log(off);
}

/*
 * The kernel's io_uring connect is no reference here: on this kernel it completes with 0 (the
 * error surfacing on the next send) or, when the router's ICMP rate limit swallowed the answer
 * to the retransmitted SYN, with -ETIMEDOUT. A blocking connect() reports -EHOSTUNREACH, as
 * xring's connect does; after it, the socket behaves as after any failed connect.
 */
Test(offload_direct, an_icmp_host_unreachable_fails_the_connect_as_in_the_kernel)
{
	struct log ker = {0};

	kernel_reference(true, false, false, &ker);
	cr_assert_eq(ker.n, 1);
	cr_expect_eq(ker.r[0].res, -EHOSTUNREACH, "blocking connect: %d", ker.r[0].res);
	for (int direct = 0; direct < 2; direct++) {
		struct log off = {0};
		int i = direct;

		offloaded_failure(PEER_UNREACH, direct, &off);
		cr_assert_eq(off.n, 4 + direct);
		cr_expect_eq(off.r[i].res, ker.r[0].res, "connect: %d", off.r[i].res);
		cr_expect_eq(off.r[i + 1].res, -EPIPE, "send: %d", off.r[i + 1].res);
		cr_expect_eq(off.r[i + 2].res, 0, "recv: %d", off.r[i + 2].res);
		cr_expect_eq(off.r[i + 3].res, 0, "close: %d", off.r[i + 3].res);
	}
}

Test(offload_direct, a_connect_nobody_answers_times_out_as_in_the_kernel)
{
	struct log ker = {0}, off = {0};

	kernel_reference(false, true, true, &ker);
	offloaded_failure(PEER_SILENT, true, &off);
	compare(&off, &ker, "timed out direct");
}

Test(offload_direct, a_registered_offloaded_descriptor_is_the_same_socket_in_its_slot)
{
	differential(registered_script, true, "registered by update");
	differential(registered_script, false, "registered with the table");
	differential_alloc(registered_script, true, true, "registered by a files-update request");
}
