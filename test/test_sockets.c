/*
 * Socket operations through xring's kernel fallback give the kernel ring's CQE streams: the
 * same scripts run on a raw liburing ring and on an xring, against the same kind of kernel
 * peer, and every step's CQEs (user_data, res, flags) must agree. Within a step CQEs are
 * compared in user_data order, since independent requests may complete in either order.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diff_driver.h"
#include "support/cpu.h"

#define MAX_TRACE 128

struct trace {
	struct rec r[MAX_TRACE];
	int n;
	int steps;
};

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->user_data != y->user_data)
		return x->user_data < y->user_data ? -1 : 1;
	return 0;
}

/* Submits what is queued and records exactly `want` CQEs (or what came in 2 s). Results of
 * socket() on plain descriptors are fd numbers, which may differ: they are recorded as 0. */
static int step_fd(struct drv *d, struct trace *t, int want, uint64_t fd_ud)
{
	int n, fd = -1;

	drv_submit(d);
	n = drv_reap(d, t->r + t->n, MAX_TRACE - t->n, want, 2000);
	for (int i = 0; i < n; i++)
		if (t->r[t->n + i].user_data == fd_ud && t->r[t->n + i].res >= 0) {
			fd = t->r[t->n + i].res;
			t->r[t->n + i].res = 0;
		}
	qsort(t->r + t->n, (size_t) n, sizeof(struct rec), cmp_rec);
	t->n += n;
	t->steps++;
	return fd;
}

static void step(struct drv *d, struct trace *t, int want, uint64_t fd_ud)
{
	step_fd(d, t, want, fd_ud);
}

/* A kernel TCP listener on 127.0.0.1, ephemeral port. */
static int listener(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *) sa, sizeof(*sa)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *) sa, &len), 0);
	return fd;
}

static int accept_one(int lfd)
{
	struct pollfd p = {lfd, POLLIN, 0};

	cr_assert_eq(poll(&p, 1, 2000), 1, "no connection arrived");
	return accept(lfd, NULL, NULL);
}

static struct io_uring_sqe *sqe_ud(struct drv *d, uint64_t ud)
{
	struct io_uring_sqe *s = drv_sqe(d);

	cr_assert_not_null(s);
	return s;
	(void) ud;
}

#define UD(s, v) ((s)->user_data = (v))

static void file_table(struct drv *d, unsigned n)
{
	int ret = d->kernel ? io_uring_register_files_sparse(&d->k, n)
			    : xring_register_files_sparse(&d->x, n);

	cr_assert_eq(ret, 0, "%s: register_files_sparse: %d", d->name, ret);
}

/* Plain descriptors: socket, connect, send, recv, shutdown, close. */
static void s_tcp_client_plain(struct drv *d, struct trace *t)
{
	struct sockaddr_in sa;
	int lfd = listener(&sa), cfd, fd;
	char buf[64] = {0}, peer[64];
	struct io_uring_sqe *s;

	s = sqe_ud(d, 1);
	io_uring_prep_socket(s, AF_INET, SOCK_STREAM, 0, 0);
	UD(s, 1);
	fd = step_fd(d, t, 1, 1);
	cr_assert_geq(fd, 0, "%s: socket failed", d->name);
	s = sqe_ud(d, 2);
	io_uring_prep_connect(s, fd, (struct sockaddr *) &sa, sizeof(sa));
	UD(s, 2);
	step(d, t, 1, 0);
	cfd = accept_one(lfd);
	s = sqe_ud(d, 3);
	io_uring_prep_send(s, fd, "hello xring", 11, 0);
	UD(s, 3);
	step(d, t, 1, 0);
	cr_assert_eq(recv(cfd, peer, sizeof(peer), 0), 11);
	cr_assert_eq(send(cfd, "reply", 5, 0), 5);
	s = sqe_ud(d, 4);
	io_uring_prep_recv(s, fd, buf, sizeof(buf), 0);
	UD(s, 4);
	step(d, t, 1, 0);
	cr_assert_str_eq(buf, "reply");
	s = sqe_ud(d, 5);
	io_uring_prep_shutdown(s, fd, SHUT_WR);
	UD(s, 5);
	step(d, t, 1, 0);
	cr_assert_eq(recv(cfd, peer, sizeof(peer), 0), 0, "the peer sees the shutdown");
	s = sqe_ud(d, 6);
	io_uring_prep_close(s, fd);
	UD(s, 6);
	step(d, t, 1, 0);
	/* A closed descriptor now fails. */
	s = sqe_ud(d, 7);
	io_uring_prep_send(s, fd, "x", 1, 0);
	UD(s, 7);
	step(d, t, 1, 0);
	close(cfd);
	close(lfd);
}

/* Direct descriptors: socket_direct, socket_direct_alloc, connect, send_zc, close_direct. */
static void s_tcp_client_direct(struct drv *d, struct trace *t)
{
	struct sockaddr_in sa;
	int lfd = listener(&sa), cfd;
	static char payload[4096];
	char *peer = malloc(sizeof(payload));
	struct io_uring_sqe *s;
	size_t got = 0;

	memset(payload, 'z', sizeof(payload));
	file_table(d, 8);
	s = sqe_ud(d, 1);
	io_uring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, 3, 0);
	UD(s, 1);
	step(d, t, 1, 0);
	s = sqe_ud(d, 2);
	io_uring_prep_socket_direct_alloc(s, AF_INET, SOCK_STREAM, 0, 0);
	UD(s, 2);
	step(d, t, 1, 0);
	s = sqe_ud(d, 3);
	io_uring_prep_connect(s, 3, (struct sockaddr *) &sa, sizeof(sa));
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 3);
	step(d, t, 1, 0);
	cfd = accept_one(lfd);
	s = sqe_ud(d, 4);
	io_uring_prep_send_zc(s, 3, payload, sizeof(payload), 0, 0);
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 4);
	step(d, t, 2, 0);
	while (got < sizeof(payload)) {
		ssize_t r = recv(cfd, peer + got, sizeof(payload) - got, 0);

		cr_assert_gt(r, 0);
		got += (size_t) r;
	}
	cr_assert_eq(memcmp(peer, payload, sizeof(payload)), 0);
	s = sqe_ud(d, 5);
	io_uring_prep_close_direct(s, 3);
	UD(s, 5);
	s = sqe_ud(d, 6);
	io_uring_prep_close_direct(s, 3);
	UD(s, 6);
	step(d, t, 2, 0);
	s = sqe_ud(d, 7);
	io_uring_prep_send(s, 5, "x", 1, 0);
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 7);
	step(d, t, 1, 0);
	free(peer);
	close(cfd);
	close(lfd);
}

/* A server through SQEs: socket_direct, bind, listen, multishot accept direct, then multishot
 * recv into a provided buffer ring, fed by kernel clients. */
static void s_tcp_server_multishot(struct drv *d, struct trace *t)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	enum {
		NBUF = 8,
		BUFSZ = 64
	};
	static char bufs[NBUF][BUFSZ];
	struct io_uring_sqe *s;
	void *br_mem;
	int one = 1, probe, clients[3], port_fd, ret;
	socklen_t len = sizeof(sa);
	struct io_uring_buf_reg reg = {0};

	/* Find a free port with a throwaway socket, then let the ring bind to it. */
	probe = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(probe, (struct sockaddr *) &sa, sizeof(sa)), 0);
	getsockname(probe, (struct sockaddr *) &sa, &len);
	close(probe);

	file_table(d, 8);
	s = sqe_ud(d, 1);
	io_uring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, 0, 0);
	UD(s, 1);
	step(d, t, 1, 0);
	s = sqe_ud(d, 2);
	io_uring_prep_rw(XRING_OP_BIND, s, 0, &sa, 0, sizeof(sa));
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 2);
	step(d, t, 1, 0);
	s = sqe_ud(d, 3);
	io_uring_prep_rw(XRING_OP_LISTEN, s, 0, NULL, 16, 0);
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 3);
	step(d, t, 1, 0);
	s = sqe_ud(d, 4);
	io_uring_prep_multishot_accept(s, 0, NULL, NULL, 0);
	s->file_index = IORING_FILE_INDEX_ALLOC; /* liburing 2.3's direct helper wraps this to 0 */
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 4);
	drv_submit(d);
	for (int i = 0; i < 3; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(connect(clients[i], (struct sockaddr *) &sa, sizeof(sa)), 0);
	}
	step(d, t, 3, 0);

	br_mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	reg.ring_addr = (uint64_t) (uintptr_t) br_mem;
	reg.ring_entries = NBUF;
	reg.bgid = 7;
	ret = d->kernel ? io_uring_register_buf_ring(&d->k, &reg, 0)
			: xring_register_buf_ring(&d->x, (struct xring_buf_reg *) &reg, 0);
	cr_assert_eq(ret, 0);
	for (int i = 0; i < NBUF; i++)
		io_uring_buf_ring_add(br_mem, bufs[i], BUFSZ, (unsigned short) i, NBUF - 1, i);
	io_uring_buf_ring_advance(br_mem, NBUF);

	/* The accepted sockets took slots 1, 2 and 3; receive on slot 1. */
	s = sqe_ud(d, 5);
	io_uring_prep_recv_multishot(s, 1, NULL, 0, 0);
	s->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	s->buf_group = 7;
	UD(s, 5);
	drv_submit(d);
	port_fd = clients[0];
	for (int i = 0; i < 3; i++) {
		char msg[BUFSZ];

		memset(msg, 'a' + i, sizeof(msg));
		cr_assert_eq(send(port_fd, msg, sizeof(msg), 0), (ssize_t) sizeof(msg));
		step(d, t, 1, 0);
	}
	/* Cancel the multishot receive and the multishot accept. */
	s = sqe_ud(d, 6);
	io_uring_prep_cancel64(s, 5, 0);
	UD(s, 6);
	s = sqe_ud(d, 7);
	io_uring_prep_cancel64(s, 4, 0);
	UD(s, 7);
	step(d, t, 4, 0);
	for (int i = 0; i < 3; i++)
		close(clients[i]);
	munmap(br_mem, 4096);
}

/* UDP: bind, recvmsg, sendto a kernel socket. */
static void s_udp(struct drv *d, struct trace *t)
{
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in peer_sa = me, from;
	socklen_t len = sizeof(me);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), peer = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[64] = {0}, pbuf[64];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr msg = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
	struct io_uring_sqe *s;

	cr_assert_eq(bind(peer, (struct sockaddr *) &peer_sa, sizeof(peer_sa)), 0);
	getsockname(peer, (struct sockaddr *) &peer_sa, &len);
	s = sqe_ud(d, 1);
	io_uring_prep_rw(XRING_OP_BIND, s, fd, &me, 0, sizeof(me));
	UD(s, 1);
	step(d, t, 1, 0);
	len = sizeof(me);
	getsockname(fd, (struct sockaddr *) &me, &len);
	s = sqe_ud(d, 2);
	io_uring_prep_recvmsg(s, fd, &msg, 0);
	UD(s, 2);
	drv_submit(d);
	cr_assert_eq(sendto(peer, "datagram", 8, 0, (struct sockaddr *) &me, sizeof(me)), 8);
	step(d, t, 1, 0);
	cr_assert_str_eq(buf, "datagram");
	cr_assert_eq(from.sin_port, peer_sa.sin_port);
	s = sqe_ud(d, 3);
	io_uring_prep_send(s, fd, "back", 4, 0);
	io_uring_prep_send_set_addr(s, (struct sockaddr *) &peer_sa, sizeof(peer_sa));
	UD(s, 3);
	step(d, t, 1, 0);
	cr_assert_eq(recv(peer, pbuf, sizeof(pbuf), 0), 4);
	close(fd);
	close(peer);
}

/* A pending receive: cancelled by ASYNC_CANCEL, then timed out by a linked timeout. */
static void s_cancel_and_link_timeout(struct drv *d, struct trace *t)
{
	struct sockaddr_in sa;
	int lfd = listener(&sa), fd = socket(AF_INET, SOCK_STREAM, 0), cfd;
	static struct __kernel_timespec ts = {0, 20 * 1000 * 1000};
	char buf[16];
	struct io_uring_sqe *s;

	cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	cfd = accept_one(lfd);
	s = sqe_ud(d, 1);
	io_uring_prep_recv(s, fd, buf, sizeof(buf), 0);
	UD(s, 1);
	drv_submit(d);
	s = sqe_ud(d, 2);
	io_uring_prep_cancel64(s, 1, 0);
	UD(s, 2);
	step(d, t, 2, 0);
	s = sqe_ud(d, 3);
	io_uring_prep_cancel64(s, 12345, 0);
	UD(s, 3);
	step(d, t, 1, 0);
	s = sqe_ud(d, 4);
	io_uring_prep_recv(s, fd, buf, sizeof(buf), 0);
	s->flags |= IOSQE_IO_LINK;
	UD(s, 4);
	s = sqe_ud(d, 5);
	io_uring_prep_link_timeout(s, &ts, 0);
	UD(s, 5);
	step(d, t, 2, 0);
	/* A chain: send, then a receive the peer answers. */
	s = sqe_ud(d, 6);
	io_uring_prep_send(s, fd, "ping", 4, 0);
	s->flags |= IOSQE_IO_LINK;
	UD(s, 6);
	s = sqe_ud(d, 7);
	io_uring_prep_recv(s, fd, buf, sizeof(buf), 0);
	UD(s, 7);
	drv_submit(d);
	cr_assert_eq(recv(cfd, buf, sizeof(buf), 0), 4);
	cr_assert_eq(send(cfd, "pong!", 5, 0), 5);
	step(d, t, 2, 0);
	/* Cancelling by fd finds a pending receive on that socket. */
	s = sqe_ud(d, 8);
	io_uring_prep_recv(s, fd, buf, sizeof(buf), 0);
	UD(s, 8);
	drv_submit(d);
	s = sqe_ud(d, 9);
	io_uring_prep_cancel_fd(s, fd, 0);
	UD(s, 9);
	step(d, t, 2, 0);
	close(fd);
	close(cfd);
	close(lfd);
}

/* Every registered-file error the io_uring man pages list, on both rings. */
static void s_file_table_errors(struct drv *d, struct trace *t)
{
	int fds[4], p[2], ret;
	unsigned i = 0;
	struct io_uring_sqe *s;

#define REC(expr)                                                                                  \
	do {                                                                                       \
		ret = (expr);                                                                      \
		t->r[t->n++] = (struct rec){++i, ret, 0};                                          \
	} while (0)
#define K(call, ...)                                                                               \
	(d->kernel ? io_uring_##call(&d->k, ##__VA_ARGS__) : xring_##call(&d->x, ##__VA_ARGS__))

	cr_assert_eq(pipe(p), 0);
	fds[0] = p[0];
	fds[1] = -1;
	fds[2] = p[1];
	fds[3] = -1;
	REC(K(unregister_files));
	REC(K(register_files_update, 0, fds, 1));
	REC(K(register_files_sparse, 0));
	REC(K(register_files, fds, 4));
	REC(K(register_files, fds, 4));
	REC(K(register_files_sparse, 4));
	REC(K(register_files_update, 3, fds, 1));
	REC(K(register_files_update, 3, fds, 2));
	REC(K(register_files_update, 4, fds, 1));
	{
		int skip[2] = {IORING_REGISTER_FILES_SKIP, -1};

		REC(K(register_files_update, 0, skip, 2));
	}
	REC(K(register_file_alloc_range, 0, 5));
	REC(K(register_file_alloc_range, 2, 2));
	REC(K(unregister_files));
	REC(K(unregister_files));

	/* Fixed-file SQEs with no table, an empty slot, an index past the end. */
	s = sqe_ud(d, 100);
	io_uring_prep_send(s, 0, "x", 1, 0);
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 100);
	step(d, t, 1, 0);
	REC(K(register_files_sparse, 2));
	s = sqe_ud(d, 101);
	io_uring_prep_send(s, 1, "x", 1, 0);
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 101);
	s = sqe_ud(d, 102);
	io_uring_prep_send(s, 9, "x", 1, 0);
	s->flags |= IOSQE_FIXED_FILE;
	UD(s, 102);
	step(d, t, 2, 0);
	/* Allocation from a full table. */
	s = sqe_ud(d, 103);
	io_uring_prep_socket_direct_alloc(s, AF_INET, SOCK_DGRAM, 0, 0);
	UD(s, 103);
	step(d, t, 1, 0);
	s = sqe_ud(d, 104);
	io_uring_prep_socket_direct_alloc(s, AF_INET, SOCK_DGRAM, 0, 0);
	UD(s, 104);
	step(d, t, 1, 0);
	s = sqe_ud(d, 105);
	io_uring_prep_socket_direct_alloc(s, AF_INET, SOCK_DGRAM, 0, 0);
	UD(s, 105);
	step(d, t, 1, 0);
	/* A direct socket into a slot past the end. */
	s = sqe_ud(d, 106);
	io_uring_prep_socket_direct(s, AF_INET, SOCK_DGRAM, 0, 5, 0);
	UD(s, 106);
	step(d, t, 1, 0);
	close(p[0]);
	close(p[1]);
#undef REC
#undef K
}

/* Opcodes xring has no code for reach the kernel unchanged: pipe I/O, poll, statx-free ops. */
static void s_other_opcodes(struct drv *d, struct trace *t)
{
	int p[2];
	char buf[16] = {0};
	struct io_uring_sqe *s;

	cr_assert_eq(pipe(p), 0);
	s = sqe_ud(d, 1);
	io_uring_prep_poll_add(s, p[0], POLLIN);
	UD(s, 1);
	drv_submit(d);
	s = sqe_ud(d, 2);
	io_uring_prep_write(s, p[1], "pipe!", 5, 0);
	UD(s, 2);
	step(d, t, 2, 0);
	s = sqe_ud(d, 3);
	io_uring_prep_read(s, p[0], buf, sizeof(buf), 0);
	UD(s, 3);
	step(d, t, 1, 0);
	cr_assert_str_eq(buf, "pipe!");
	/* A short read fails its link, as in the kernel: the linked NOP is cancelled. */
	s = sqe_ud(d, 4);
	io_uring_prep_write(s, p[1], "ab", 2, 0);
	UD(s, 4);
	step(d, t, 1, 0);
	s = sqe_ud(d, 5);
	io_uring_prep_read(s, p[0], buf, sizeof(buf), 0);
	s->flags |= IOSQE_IO_LINK;
	UD(s, 5);
	s = sqe_ud(d, 6);
	io_uring_prep_nop(s);
	UD(s, 6);
	step(d, t, 2, 0);
	/* An opcode newer than anything this kernel knows. */
	s = sqe_ud(d, 7);
	io_uring_prep_nop(s);
	s->opcode = 250;
	UD(s, 7);
	step(d, t, 1, 0);
	close(p[0]);
	close(p[1]);
}

struct script {
	const char *name;
	void (*run)(struct drv *d, struct trace *t);
};

static const struct script scripts[] = {
	{"tcp_client_plain", s_tcp_client_plain},
	{"tcp_client_direct", s_tcp_client_direct},
	{"tcp_server_multishot", s_tcp_server_multishot},
	{"udp", s_udp},
	{"cancel_and_link_timeout", s_cancel_and_link_timeout},
	{"file_table_errors", s_file_table_errors},
	{"other_opcodes", s_other_opcodes},
};

#define NSCRIPTS (sizeof(scripts) / sizeof(scripts[0]))

static void show(const char *who, const struct trace *t)
{
	char line[4096];
	int o = snprintf(line, sizeof(line), "%s:", who);

	for (int i = 0; i < t->n && o < (int) sizeof(line) - 48; i++)
		o += snprintf(line + o, sizeof(line) - (size_t) o, " [%llu %d %x]",
			      (unsigned long long) t->r[i].user_data, t->r[i].res, t->r[i].flags);
	cr_log_info("%s", line);
}

ParameterizedTestParameters(sockets, kernel_ring_and_xring_fallback_agree)
{
	static int idx[NSCRIPTS];

	for (unsigned i = 0; i < NSCRIPTS; i++)
		idx[i] = (int) i;
	return cr_make_param_array(int, idx, NSCRIPTS);
}

ParameterizedTest(int *idx, sockets, kernel_ring_and_xring_fallback_agree)
{
	const struct script *sc = &scripts[*idx];
	struct trace k = {0}, x = {0};
	struct drv d;

	cr_assert_eq(drv_init(&d, true, 64, 0), 0);
	sc->run(&d, &k);
	drv_exit(&d);
	cr_assert_eq(drv_init(&d, false, 64, 0), 0);
	sc->run(&d, &x);
	drv_exit(&d);
	cr_log_info("script %s", sc->name);
	show("kernel", &k);
	show("xring ", &x);
	cr_assert_eq(x.n, k.n, "%s: %d CQEs on xring, %d on the kernel", sc->name, x.n, k.n);
	for (int i = 0; i < k.n; i++) {
		cr_expect_eq(x.r[i].user_data, k.r[i].user_data, "%s: record %d user_data",
			     sc->name, i);
		cr_expect_eq(x.r[i].res, k.r[i].res,
			     "%s: record %d (ud %llu) res: xring %d kernel %d", sc->name, i,
			     (unsigned long long) k.r[i].user_data, x.r[i].res, k.r[i].res);
		cr_expect_eq(x.r[i].flags, k.r[i].flags,
			     "%s: record %d (ud %llu) flags: xring %#x kernel %#x", sc->name, i,
			     (unsigned long long) k.r[i].user_data, x.r[i].flags, k.r[i].flags);
	}
}

Test(sockets, waiting_on_a_pending_kernel_receive_sleeps_and_wakes)
{
	struct __kernel_timespec ts = {0, 300 * 1000 * 1000};
	long before;
	struct xring_cqe *cqe;
	struct xring ring;
	char buf[8];
	long used_us;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	xring_prep_recv(xring_get_sqe(&ring), sv[0], buf, sizeof(buf), 0);
	cr_assert_eq(xring_submit(&ring), 1);
	before = cpu_used_us();
	cr_expect_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), -ETIME);
	used_us = cpu_used_us() - before;
	cr_expect_lt(used_us, 100000, "an idle 300 ms wait used %ld us of CPU", used_us);
	/* Data arriving while asleep wakes the wait. */
	cr_assert_eq(send(sv[1], "wake", 4, 0), 4);
	ts.tv_sec = 2;
	cr_assert_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), 0);
	cr_expect_eq(cqe->res, 4);
	xring_cqe_seen(&ring, cqe);
	xring_queue_exit(&ring);
	close(sv[0]);
	close(sv[1]);
}

static void *send_later(void *arg)
{
	usleep(50000);
	(void) !send(*(int *) arg, "late", 4, 0);
	return NULL;
}

/* Sleeping in the kernel ring for several CQEs must not wait for ones xring itself posts. */
Test(sockets, waiting_for_a_chain_that_ends_in_xring_does_not_hang_without_spinning)
{
	struct __kernel_timespec ts = {5, 0};
	struct xring_cqe *cqe;
	struct xring ring;
	pthread_t th;
	char buf[8];
	int sv[2];

	setenv("XRING_SPIN_US", "0", 1);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	xring_prep_recv(xring_get_sqe(&ring), sv[0], buf, sizeof(buf), 0);
	ring.sq.sqes[0].flags = XRING_SQE_IO_LINK;
	ring.sq.sqes[0].user_data = 1;
	xring_prep_nop(xring_get_sqe(&ring));
	ring.sq.sqes[1].user_data = 2;
	pthread_create(&th, NULL, send_later, &sv[1]);
	cr_assert_eq(xring_submit_and_wait(&ring, 2), 2);
	pthread_join(th, NULL);
	cr_assert_eq(xring_cq_ready(&ring), 2, "both CQEs are there when the wait returns");
	cr_assert_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), 0);
	cr_expect_eq(cqe->res, 4);
	xring_queue_exit(&ring);
	close(sv[0]);
	close(sv[1]);
}

Test(sockets, a_registered_eventfd_wakes_an_epoll_loop_for_local_and_kernel_completions)
{
	struct pollfd p;
	struct xring ring;
	struct xring_cqe *cqe;
	uint64_t v;
	char buf[8];
	int sv[2], efd = eventfd(0, EFD_NONBLOCK);

	cr_assert_geq(efd, 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	cr_expect_eq(xring_unregister_eventfd(&ring), -ENXIO);
	cr_assert_eq(xring_register_eventfd(&ring, efd), 0);
	cr_expect_eq(xring_register_eventfd(&ring, efd), -EBUSY);

	/* A completion xring posts itself. */
	xring_prep_nop(xring_get_sqe(&ring));
	cr_assert_eq(xring_submit(&ring), 1);
	cr_assert_eq(read(efd, &v, sizeof(v)), (ssize_t) sizeof(v), "no signal for the NOP");
	cr_assert_eq(xring_peek_cqe(&ring, &cqe), 0);
	xring_cqe_seen(&ring, cqe);

	/* A kernel completion arriving while the application sleeps in poll(2), not in xring. */
	xring_prep_recv(xring_get_sqe(&ring), sv[0], buf, sizeof(buf), 0);
	cr_assert_eq(xring_submit(&ring), 1);
	(void) !read(efd, &v, sizeof(v));
	cr_assert_eq(send(sv[1], "ping", 4, 0), 4);
	p = (struct pollfd){efd, POLLIN, 0};
	cr_assert_eq(poll(&p, 1, 5000), 1, "the eventfd did not wake the loop");
	cr_assert_eq(xring_wait_cqe(&ring, &cqe), 0);
	cr_expect_eq(cqe->res, 4);
	xring_cqe_seen(&ring, cqe);
	cr_expect_eq(xring_unregister_eventfd(&ring), 0);
	xring_queue_exit(&ring);
	close(efd);
	close(sv[0]);
	close(sv[1]);
}
