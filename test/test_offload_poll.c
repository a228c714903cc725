/*
 * poll, POLL_REMOVE (removal and updates), read / write / readv / writev on a connected TCP
 * socket: the same SQE script runs on a kernel socket (through xring's kernel path, over
 * loopback, with a kernel socket as the peer) and on an offloaded one (over an in-memory link,
 * with xring's stack as the remote host), and the two CQE streams must be the same — user_data,
 * res (poll masks included) and flags, in order.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "support/offload_link.h"

#define K_TCP_NODELAY 1 /* <netinet/tcp.h>'s TCP_NODELAY; that header clashes with the stack's */

#define MAX_RECS 64
#define FILL_UD  1000 /* fill()'s sends, left out of the record */

struct rec {
	uint64_t ud;
	int32_t res;
	uint32_t flags;
};

/* One side of the comparison: a ring, a connected socket on it, and its peer. */
struct env {
	const char *name;
	bool offloaded;
	struct xring *ring;
	int fd;
	int kpeer;             /* the kernel path's peer (accepted kernel socket) */
	struct sockaddr_in to; /* where connect_env() connects */
	int klis;              /* and its listener */
	struct xring kring;
	struct rec recs[MAX_RECS];
	int n;
};

static void peer_send(struct env *e, size_t n)
{
	static const char data[64] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.";

	cr_assert_leq(n, sizeof(data));
	if (e->offloaded)
		cr_assert_eq(tcp_send(ol.accepted, clock_mono_ns(), data, n), (long) n);
	else
		cr_assert_eq(send(e->kpeer, data, n, 0), (ssize_t) n);
}

static void peer_fin(struct env *e)
{
	if (e->offloaded)
		cr_assert_eq(tcp_shutdown(ol.accepted, clock_mono_ns(), SHUT_WR), 0);
	else
		cr_assert_eq(shutdown(e->kpeer, SHUT_WR), 0);
}

static void peer_rst(struct env *e)
{
	if (e->offloaded) {
		tcp_abort(ol.accepted, clock_mono_ns());
		ol.accepted = NULL;
	} else {
		struct linger l = {1, 0};

		setsockopt(e->kpeer, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(e->kpeer);
		e->kpeer = -1;
	}
}

/*
 * Submits, then collects CQEs for ms milliseconds or until want have come (want < 0: for the
 * whole time, to show that nothing comes). Drives the remote host on the offloaded side.
 */
static void reap(struct env *e, int want, int ms)
{
	uint64_t end = clock_mono_ns() + (uint64_t) ms * 1000000u;
	int got = 0;

	xring_submit(e->ring);
	while (clock_mono_ns() < end && (want < 0 || got < want)) {
		struct __kernel_timespec ts = {0, 1000000};
		struct xring_cqe *cqe;

		if (e->offloaded)
			ol_pump();
		if (xring_wait_cqe_timeout(e->ring, &cqe, &ts))
			continue;
		if (cqe->user_data == FILL_UD) { /* a late notification of fill()'s */
			xring_cqe_seen(e->ring, cqe);
			continue;
		}
		cr_assert_lt(e->n, MAX_RECS);
		e->recs[e->n++] = (struct rec){cqe->user_data, cqe->res, cqe->flags};
		xring_cqe_seen(e->ring, cqe);
		got++;
	}
	/* The peer's acknowledgements and window updates settle before the next step. */
	for (int i = 0; e->offloaded && i < 20; i++)
		ol_pump();
}

static struct xring_sqe *sqe_of(struct env *e, uint64_t ud)
{
	struct xring_sqe *s = xring_get_sqe(e->ring);

	cr_assert_not_null(s);
	s->user_data = ud;
	return s;
}

static struct xring_sqe *poll_add(struct env *e, uint64_t ud, unsigned mask, bool multi)
{
	struct xring_sqe *s = sqe_of(e, ud);

	if (multi)
		xring_prep_poll_multishot(s, e->fd, mask);
	else
		xring_prep_poll_add(s, e->fd, mask);
	s->user_data = ud;
	return s;
}

/* POLL_REMOVE of old with flags; new_ud and events for the updates. */
static void poll_update(struct env *e, uint64_t ud, uint64_t old, uint64_t new_ud, unsigned events,
			unsigned flags)
{
	struct xring_sqe *s = sqe_of(e, ud);

	xring_prep_poll_remove(s, old);
	s->len = flags;
	s->off = new_ud;
	s->poll32_events = events;
	s->user_data = ud;
}

static void setup_kernel(struct env *e)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int one = 1;

	e->name = "kernel";
	e->ring = &e->kring;
	cr_assert_eq(xring_queue_init(16, e->ring, 0), 0);
	e->klis = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(e->klis, (struct sockaddr *) &a, sizeof(a)), 0);
	cr_assert_eq(getsockname(e->klis, (struct sockaddr *) &a, &len), 0);
	cr_assert_eq(listen(e->klis, 4), 0);
	e->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(e->fd, (struct sockaddr *) &a, sizeof(a)), 0);
	e->kpeer = accept(e->klis, NULL, NULL);
	cr_assert_geq(e->kpeer, 0);
	/* Small segments go out at once on both sides, as on the offloaded side. */
	setsockopt(e->kpeer, IPPROTO_TCP, K_TCP_NODELAY, &one, sizeof(one));
	setsockopt(e->fd, IPPROTO_TCP, K_TCP_NODELAY, &one, sizeof(one));
}

static void setup_offloaded(struct env *e)
{
	struct memlink_config mc = {0};
	int32_t res;

	e->name = "offloaded";
	e->offloaded = true;
	ol_setup(&mc);
	e->ring = &ol.ring;
	e->fd = ol_connect(SOCK_STREAM, 7001, &res);
	cr_assert_eq(res, 0, "connect: %d", res);
	cr_assert(ol_offloaded(e->fd));
	for (int i = 0; i < 100 && !ol.accepted; i++)
		ol_pump();
	cr_assert_not_null(ol.accepted, "the remote host accepted");
	tcp_setopt(ol.accepted, TCP_OPT_NODELAY, 1);
}

static void teardown_env(struct env *e)
{
	close(e->fd);
	if (e->offloaded) {
		ol_teardown();
	} else {
		xring_queue_exit(e->ring);
		if (e->kpeer >= 0)
			close(e->kpeer);
		close(e->klis);
	}
}

static void print(const struct env *e)
{
	for (int i = 0; i < e->n; i++)
		cr_log_info("%-9s %2d: ud %3llu res %6d (0x%04x) flags 0x%x", e->name, i,
			    (unsigned long long) e->recs[i].ud, e->recs[i].res,
			    (unsigned) e->recs[i].res, e->recs[i].flags);
}

static void compare(struct env *k, struct env *x)
{
	print(k);
	print(x);
	cr_assert_eq(x->n, k->n, "%d CQEs offloaded, %d on the kernel", x->n, k->n);
	for (int i = 0; i < k->n; i++) {
		cr_expect_eq(x->recs[i].ud, k->recs[i].ud, "CQE %d: user_data %llu vs kernel %llu",
			     i, (unsigned long long) x->recs[i].ud,
			     (unsigned long long) k->recs[i].ud);
		cr_expect_eq(x->recs[i].res, k->recs[i].res,
			     "CQE %d (ud %llu): res %d vs kernel %d", i,
			     (unsigned long long) k->recs[i].ud, x->recs[i].res, k->recs[i].res);
		cr_expect_eq(x->recs[i].flags, k->recs[i].flags,
			     "CQE %d (ud %llu): flags 0x%x vs kernel 0x%x", i,
			     (unsigned long long) k->recs[i].ud, x->recs[i].flags,
			     k->recs[i].flags);
	}
}

static void run(void (*script)(struct env *), struct env *k, struct env *x)
{
	memset(k, 0, sizeof(*k));
	memset(x, 0, sizeof(*x));
	setup_kernel(k);
	script(k);
	teardown_env(k);
	setup_offloaded(x);
	script(x);
	teardown_env(x);
	compare(k, x);
}

/* Single-shot and multishot polls, removal, updates of events and user_data, bad fields. */
static void s_polls(struct env *e)
{
	char buf[64];

	poll_add(e, 1, POLLOUT, false); /* writable now */
	reap(e, 1, 500);
	poll_add(e, 2, POLLIN, false); /* nothing to read yet */
	reap(e, -1, 30);
	peer_send(e, 10);
	reap(e, 1, 500);
	poll_add(e, 3, POLLIN, true); /* data waiting: a first CQE at once, F_MORE */
	reap(e, 1, 500);
	poll_add(e, 4, POLLPRI, false); /* never true here */
	reap(e, -1, 30);
	poll_update(e, 6, 4, 5, POLLIN, XRING_POLL_UPDATE_EVENTS | XRING_POLL_UPDATE_USER_DATA);
	reap(e, 2, 500); /* the update, then the poll (now user_data 5) fires */
	xring_prep_recv(sqe_of(e, 7), e->fd, buf, sizeof(buf), 0);
	reap(e, 1, 500);
	peer_send(e, 5);
	reap(e, 1, 500);               /* the multishot poll again */
	poll_update(e, 8, 3, 0, 0, 0); /* removal */
	reap(e, 2, 500);
	xring_prep_recv(sqe_of(e, 9), e->fd, buf, sizeof(buf), 0);
	reap(e, 1, 500);
	poll_add(e, 10, POLLIN, false);
	reap(e, -1, 30);
	poll_update(e, 11, 10, 12, 0, XRING_POLL_UPDATE_USER_DATA); /* only the user_data */
	reap(e, 1, 500);
	peer_send(e, 1);
	reap(e, 1, 500);                  /* fires as 12 */
	poll_update(e, 13, 999, 0, 0, 0); /* no such poll */
	reap(e, 1, 500);
	poll_update(e, 14, 12, 0, 0, XRING_POLL_ADD_MULTI); /* meaningless alone */
	reap(e, 1, 500);
	poll_update(e, 15, 12, 7, 0, 0); /* a new user_data without the flag */
	reap(e, 1, 500);
	poll_add(e, 16, POLLIN, false)->addr = 1;
	reap(e, 1, 500);                         /* addr must be 0 */
	poll_add(e, 17, POLLIN, false)->len = 8; /* IORING_POLL_ADD_LEVEL: refused */
	reap(e, 1, 500);
	xring_prep_recv(sqe_of(e, 18), e->fd, buf, sizeof(buf), 0);
	reap(e, 1, 500);
}

/* The peer's FIN, then its reset, as polls see them (single-shot polls: a multishot one may
 * hear the kernel's two wake-ups for a FIN as one or two). */
static void s_fin_and_reset(struct env *e)
{
	struct xring_sqe *s;
	char buf[64];

	poll_add(e, 1, POLLIN, false);
	reap(e, -1, 30);
	peer_fin(e);
	reap(e, 1, 500); /* POLLIN | POLLRDHUP */
	xring_prep_recv(sqe_of(e, 2), e->fd, buf, sizeof(buf), 0);
	reap(e, 1, 500);                /* end of stream */
	poll_add(e, 3, POLLOUT, false); /* still writable after the peer's FIN */
	reap(e, 1, 500);
	poll_add(e, 4, POLLIN | POLLOUT, false);
	reap(e, 1, 500);
	xring_prep_send(sqe_of(e, 5), e->fd, "x", 1, 0);
	reap(e, 1, 500);
	poll_add(e, 6, POLLPRI, false); /* waits for the reset */
	reap(e, -1, 30);
	peer_rst(e);
	reap(e, 1, 500); /* POLLERR | POLLHUP | POLLRDHUP */
	xring_prep_recv(sqe_of(e, 7), e->fd, buf, sizeof(buf), 0);
	reap(e, 1, 500); /* the error, once */
	poll_add(e, 8, POLLIN | POLLOUT, false);
	reap(e, 1, 500); /* no POLLERR any more */
	/* A send_zc that fails: its result with F_MORE, then its notification; a request linked
	 * after it is cancelled. */
	xring_prep_send_zc(sqe_of(e, 9), e->fd, "y", 1, 0, 0);
	reap(e, 2, 500);
	s = sqe_of(e, 10);
	xring_prep_send_zc(s, e->fd, "y", 1, 0, 0);
	s->flags |= XRING_SQE_IO_LINK;
	xring_prep_nop(sqe_of(e, 11));
	reap(e, 3, 500);
}

/* read, write, readv and writev on a socket: receives and sends without flags. */
static void s_read_write(struct env *e)
{
	static char a[8], b[8], c[64];
	struct iovec in[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct iovec out[2] = {{(void *) "hello ", 6}, {(void *) "world", 5}};
	struct xring_sqe *s;

	xring_prep_write(sqe_of(e, 1), e->fd, "abc", 3, 0);
	reap(e, 1, 500);
	xring_prep_rw(XRING_OP_WRITEV, sqe_of(e, 2), e->fd, out, 2, 0);
	reap(e, 1, 500);
	xring_prep_read(sqe_of(e, 3), e->fd, c, sizeof(c), 0); /* waits for data */
	reap(e, -1, 30);
	peer_send(e, 20);
	reap(e, 1, 500);
	cr_assert_eq(memcmp(c, "abcdefghijklmnopqrst", 20), 0, "%s: read's bytes", e->name);
	peer_send(e, 12);
	reap(e, -1, 30);
	xring_prep_rw(XRING_OP_READV, sqe_of(e, 4), e->fd, in, 2, 0); /* 8 + 4 bytes */
	reap(e, 1, 500);
	cr_assert_eq(memcmp(a, "abcdefgh", 8), 0, "%s: readv's first iovec", e->name);
	cr_assert_eq(memcmp(b, "ijkl", 4), 0, "%s: readv's second iovec", e->name);
	/* RWF_NOWAIT with nothing to read: -EAGAIN at once. */
	s = sqe_of(e, 5);
	xring_prep_read(s, e->fd, c, sizeof(c), 0);
	s->rw_flags = RWF_NOWAIT;
	reap(e, 1, 500);
	xring_prep_read(sqe_of(e, 6), e->fd, c, sizeof(c), 0);
	reap(e, -1, 30);
	peer_fin(e);
	reap(e, 1, 500); /* the waiting read sees the end of the stream */
}

/* Up to UIO_MAXIOV iovecs (one byte each) on sends and receives, the kernel's errors beyond. */
static void s_iovecs(struct env *e)
{
	static struct iovec many[UIO_MAXIOV + 1];
	static char bytes[UIO_MAXIOV + 1];
	struct msghdr mm = {.msg_iov = many, .msg_iovlen = UIO_MAXIOV};
	struct msghdr over = {.msg_iov = many, .msg_iovlen = UIO_MAXIOV + 1};
	struct msghdr some = {.msg_iov = many, .msg_iovlen = 30};
	struct msghdr none = {.msg_iov = many, .msg_iovlen = 0};
	struct msghdr fifty = {.msg_iov = many, .msg_iovlen = 50};

	for (int i = 0; i <= UIO_MAXIOV; i++)
		many[i] = (struct iovec){bytes + i, 1};
	xring_prep_rw(XRING_OP_WRITEV, sqe_of(e, 1), e->fd, many, UIO_MAXIOV, 0);
	reap(e, 1, 500);
	xring_prep_sendmsg(sqe_of(e, 2), e->fd, &mm, 0);
	reap(e, 1, 500);
	xring_prep_sendmsg_zc(sqe_of(e, 3), e->fd, &mm, 0);
	reap(e, 2, 500);
	xring_prep_rw(XRING_OP_WRITEV, sqe_of(e, 4), e->fd, many, UIO_MAXIOV + 1, 0);
	reap(e, 1, 500);
	xring_prep_sendmsg(sqe_of(e, 5), e->fd, &over, 0);
	reap(e, 1, 500);
	xring_prep_sendmsg_zc(sqe_of(e, 6), e->fd, &over, 0); /* with F_MORE, then F_NOTIF */
	reap(e, 2, 500);
	xring_prep_recvmsg(sqe_of(e, 7), e->fd, &over, 0);
	reap(e, 1, 500);
	xring_prep_rw(XRING_OP_READV, sqe_of(e, 8), e->fd, many, UIO_MAXIOV + 1, 0);
	reap(e, 1, 500);
	xring_prep_rw(XRING_OP_READV, sqe_of(e, 9), e->fd, many, 0, 0); /* nothing to fill */
	reap(e, 1, 500);
	xring_prep_recvmsg(sqe_of(e, 10), e->fd, &none, 0); /* waits for data, reads none */
	reap(e, -1, 30);
	memset(bytes, 0, sizeof(bytes));
	peer_send(e, 40);
	reap(e, 1, 500);
	xring_prep_rw(XRING_OP_READV, sqe_of(e, 11), e->fd, many, UIO_MAXIOV, 0);
	reap(e, 1, 500);
	cr_assert_eq(memcmp(bytes, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN", 40), 0,
		     "%s: readv's bytes", e->name);
	peer_send(e, 40);
	reap(e, -1, 30);
	xring_prep_recvmsg(sqe_of(e, 12), e->fd, &some, 0);
	reap(e, 1, 500);
	xring_prep_rw(XRING_OP_READV, sqe_of(e, 13), e->fd, many + 100, UIO_MAXIOV - 100, 0);
	reap(e, 1, 500);
	cr_assert_eq(memcmp(bytes + 100, "EFGHIJKLMN", 10), 0, "%s: the rest", e->name);
	xring_prep_recvmsg(sqe_of(e, 14), e->fd, &fifty, MSG_WAITALL); /* 30 + 30 for 50 */
	reap(e, -1, 30);
	peer_send(e, 30);
	reap(e, -1, 30);
	peer_send(e, 30);
	reap(e, 1, 500);
	xring_prep_rw(XRING_OP_READV, sqe_of(e, 15), e->fd, many, UIO_MAXIOV, 0);
	reap(e, 1, 500);
	cr_assert_eq(memcmp(bytes, "uvwxyzABCD", 10), 0, "%s: the last 10", e->name);
}

/* Sends until the socket takes no more, its peer reading nothing; outside the record. They are
 * zero-copy sends: the kernel's next one then needs a segment of its own, which it only gets
 * with room in the send buffer (it may append to a last segment that copied). */
/* Sends until five sends in a row find no room; returns the bytes the sends took. */
static long fill_once(struct env *e)
{
	static char junk[65536];
	int again = 0, sndbuf = 65536;
	long took = 0;

	/* A fixed send buffer: the kernel's own tuning would make room again later. */
	if (!e->offloaded)
		setsockopt(e->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (int i = 0; i < 2000 && again < 5; i++) {
		uint64_t end = clock_mono_ns() + 500000000u;
		bool got = false;
		int32_t res = 0;

		xring_prep_send_zc(sqe_of(e, FILL_UD), e->fd, junk, sizeof(junk), MSG_DONTWAIT, 0);
		xring_submit(e->ring);
		while (!got && clock_mono_ns() < end) {
			struct __kernel_timespec ts = {0, 1000000};
			struct xring_cqe *cqe;

			if (e->offloaded)
				ol_pump();
			if (xring_wait_cqe_timeout(e->ring, &cqe, &ts))
				continue;
			cr_assert_eq(cqe->user_data, FILL_UD, "%s: CQE %llu while filling", e->name,
				     (unsigned long long) cqe->user_data);
			if (!(cqe->flags & XRING_CQE_F_NOTIF)) {
				res = cqe->res;
				got = true;
			}
			xring_cqe_seen(e->ring, cqe);
		}
		cr_assert(got, "%s: no CQE for a send while filling", e->name);
		cr_assert(res > 0 || res == -EAGAIN, "%s: send while filling: %d", e->name, res);
		again = res == -EAGAIN ? again + 1 : 0;
		took += res > 0 ? res : 0;
		/* The peer's window closes, the kernel's send buffer stops growing. */
		for (int k = 0; k < 50; k++)
			if (e->offloaded)
				ol_pump();
		if (!e->offloaded && res == -EAGAIN)
			usleep(20000);
	}
	cr_assert_eq(again, 5, "%s: the socket kept taking bytes", e->name);
	return took;
}

/* Waits (at most 2 s) until neither the kernel peer's receive queue nor our send queue has
 * changed for three looks 20 ms apart. */
static void settle(struct env *e)
{
	int same = 0, last_in = -1, last_out = -1;

	for (int i = 0; i < 100 && same < 3; i++) {
		int in = 0, out = 0;

		usleep(20000);
		cr_assert_eq(ioctl(e->kpeer, FIONREAD, &in), 0);
		cr_assert_eq(ioctl(e->fd, SIOCOUTQ, &out), 0);
		same = in == last_in && out == last_out ? same + 1 : 0;
		last_in = in;
		last_out = out;
	}
}

/*
 * Fills the socket's send path until a send has to wait. On the kernel path, loopback may
 * still be moving bytes when the sends stop taking them (a loaded machine defers its softirq
 * work, and ACKs that come later make room again): the socket counts as full once its queues
 * have settled and a further round of sends takes nothing.
 */
static void fill(struct env *e)
{
	for (int r = 0; r < 20; r++) {
		long took = fill_once(e);

		if (e->offloaded || (r > 0 && !took))
			return;
		settle(e);
	}
	cr_assert_fail("%s: the socket never stayed full", e->name);
}

/* A send_zc or sendmsg_zc waiting for room, stopped by ASYNC_CANCEL or its link timeout: its
 * result (-ECANCELED) with F_MORE, then its notification (REPORT_USAGE: "copied", nothing was
 * sent from it), and a request linked after it is cancelled. */
static void s_zc_cancel(struct env *e)
{
	static struct __kernel_timespec lt = {0, 20000000};
	static char big[4096];
	struct iovec iov = {big, sizeof(big)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct xring_sqe *s;

	fill(e);
	xring_prep_send_zc(sqe_of(e, 1), e->fd, big, sizeof(big), 0, 0);
	reap(e, -1, 30); /* waits for room */
	xring_prep_cancel64(sqe_of(e, 2), 1, 0);
	reap(e, 3, 500);
	fill(e);
	s = sqe_of(e, 3);
	xring_prep_sendmsg_zc(s, e->fd, &msg, 0);
	s->ioprio |= XRING_SEND_ZC_REPORT_USAGE;
	s->flags |= XRING_SQE_IO_LINK;
	xring_prep_link_timeout(sqe_of(e, 4), &lt, 0);
	reap(e, 3, 500);
	fill(e);
	s = sqe_of(e, 5);
	xring_prep_send_zc(s, e->fd, big, sizeof(big), 0, XRING_SEND_ZC_REPORT_USAGE);
	s->flags |= XRING_SQE_IO_LINK;
	xring_prep_nop(sqe_of(e, 6));
	reap(e, -1, 30);
	xring_prep_cancel64(sqe_of(e, 7), 5, 0);
	reap(e, 4, 500);
	xring_prep_cancel64(sqe_of(e, 8), 5, 0); /* nothing left to find */
	reap(e, 1, 500);
}

/* send_zc that fails before it runs, as the kernel (6.18) ends it: cancelled by its chain's
 * failure, -ECANCELED then the notification (ZC_COPIED with REPORT_USAGE); unknown flags,
 * -EINVAL with F_MORE then the notification (res 0); CQE_SKIP_SUCCESS, one -EINVAL; a NULL
 * message header, -EFAULT (with F_MORE and the notification for sendmsg_zc). */
static void s_zc_failures(struct env *e)
{
	static char b[16];
	struct xring_sqe *s;

	s = sqe_of(e, 1);
	xring_prep_read(s, 999, b, sizeof(b), 0);
	s->flags |= XRING_SQE_IO_LINK;
	xring_prep_send_zc(sqe_of(e, 2), e->fd, b, sizeof(b), 0, XRING_SEND_ZC_REPORT_USAGE);
	reap(e, 3, 500);
	s = sqe_of(e, 3);
	xring_prep_send_zc(s, e->fd, b, sizeof(b), 0, 0);
	s->ioprio |= 1u << 7;
	reap(e, 2, 500);
	s = sqe_of(e, 4);
	xring_prep_send_zc(s, e->fd, b, sizeof(b), 0, XRING_SEND_ZC_REPORT_USAGE);
	s->ioprio |= 1u << 7;
	reap(e, 2, 500);
	s = sqe_of(e, 5);
	xring_prep_sendmsg_zc(s, e->fd, &(struct msghdr){0}, 0);
	s->flags |= XRING_SQE_CQE_SKIP_SUCCESS;
	reap(e, 1, 500);
	/* No message header at all: -EFAULT (sendmsg_zc's with F_MORE and its notification). */
	xring_prep_sendmsg_zc(sqe_of(e, 6), e->fd, NULL, 0);
	reap(e, 2, 500);
	xring_prep_sendmsg(sqe_of(e, 7), e->fd, NULL, 0);
	reap(e, 1, 500);
	xring_prep_recvmsg(sqe_of(e, 8), e->fd, NULL, 0);
	reap(e, 1, 500);
	reap(e, -1, 30); /* nothing more */
}

/* Environments whose socket is not connected yet: the script connects it (connect_env). */
static void setup_kernel_unconnected(struct env *e)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	e->name = "kernel";
	e->ring = &e->kring;
	e->kpeer = -1;
	cr_assert_eq(xring_queue_init(16, e->ring, 0), 0);
	e->klis = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(e->klis, (struct sockaddr *) &a, sizeof(a)), 0);
	cr_assert_eq(getsockname(e->klis, (struct sockaddr *) &a, &len), 0);
	cr_assert_eq(listen(e->klis, 4), 0);
	e->to = a;
	e->fd = socket(AF_INET, SOCK_STREAM, 0);
}

static void setup_offloaded_unconnected(struct env *e)
{
	struct memlink_config mc = {0};

	e->name = "offloaded";
	e->offloaded = true;
	ol_setup(&mc);
	e->ring = &ol.ring;
	e->to = ol_sin(OL_PEER_IP, 7001);
	e->fd = socket(AF_INET, SOCK_STREAM, 0);
}

/* CONNECT through the ring (ud), and the peer's side of the connection. */
static void connect_env(struct env *e, uint64_t ud)
{
	int one = 1;

	xring_prep_connect(sqe_of(e, ud), e->fd, (struct sockaddr *) &e->to, sizeof(e->to));
	reap(e, 1, 1000);
	if (e->offloaded) {
		cr_assert(ol_offloaded(e->fd), "the connect did not offload the socket");
		for (int i = 0; i < 100 && !ol.accepted; i++)
			ol_pump();
		cr_assert_not_null(ol.accepted, "the remote host accepted");
		tcp_setopt(ol.accepted, TCP_OPT_NODELAY, 1);
	} else {
		e->kpeer = accept(e->klis, NULL, NULL);
		cr_assert_geq(e->kpeer, 0);
		setsockopt(e->kpeer, IPPROTO_TCP, K_TCP_NODELAY, &one, sizeof(one));
		setsockopt(e->fd, IPPROTO_TCP, K_TCP_NODELAY, &one, sizeof(one));
	}
}

static void run_unconnected(void (*script)(struct env *), struct env *k, struct env *x)
{
	memset(k, 0, sizeof(*k));
	memset(x, 0, sizeof(*x));
	setup_kernel_unconnected(k);
	script(k);
	teardown_env(k);
	setup_offloaded_unconnected(x);
	script(x);
	teardown_env(x);
	compare(k, x);
}

/* A multishot poll armed before the connect that offloads the socket: on the fresh socket it
 * reports POLLHUP at once and stays; after the connect it hears the offloaded connection. */
static void s_poll_before_connect(struct env *e)
{
	char buf[64];

	poll_add(e, 1, POLLIN, true);
	reap(e, 1, 500);
	poll_add(e, 2, POLLIN | POLLRDHUP, true);
	reap(e, 1, 500);
	connect_env(e, 3); /* nothing for the polls: no POLLOUT wanted */
	reap(e, -1, 30);
	peer_send(e, 5);
	reap(e, 2, 500); /* both polls: POLLIN, F_MORE */
	xring_prep_recv(sqe_of(e, 4), e->fd, buf, sizeof(buf), 0);
	reap(e, 1, 500);
	poll_update(e, 5, 1, 0, 0, 0); /* removal, as of a poll armed after the connect */
	reap(e, 2, 500);
	peer_fin(e);
	reap(e, 1, 500); /* the other: POLLIN | POLLRDHUP */
	poll_update(e, 6, 2, 0, 0, 0);
	reap(e, 2, 500);
}

TestSuite(offload_poll, .timeout = 60);

Test(offload_poll, polls_removals_and_updates_match_the_kernel)
{
	static struct env k, x;

	run(s_polls, &k, &x);
}

Test(offload_poll, fin_and_reset_reach_polls_as_on_the_kernel)
{
	static struct env k, x;

	run(s_fin_and_reset, &k, &x);
}

Test(offload_poll, read_write_readv_writev_match_the_kernel)
{
	static struct env k, x;

	run(s_read_write, &k, &x);
}

Test(offload_poll, the_kernel_paths_poll_remove_names_the_right_poll)
{
	struct xring ring;
	struct xring_cqe *cqe;
	int p[2];
	uint64_t uds[2];
	int32_t res[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	xring_prep_poll_add(xring_get_sqe(&ring), p[0], POLLIN);
	ring.sq.sqes[0].user_data = 7;
	xring_prep_poll_remove(xring_get_sqe(&ring), 7);
	ring.sq.sqes[1].user_data = 8;
	cr_assert_eq(xring_submit(&ring), 2);
	for (int i = 0; i < 2; i++) {
		struct __kernel_timespec ts = {2, 0};

		cr_assert_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), 0);
		uds[i] = cqe->user_data;
		res[i] = cqe->res;
		xring_cqe_seen(&ring, cqe);
	}
	for (int i = 0; i < 2; i++)
		cr_expect_eq(res[i], uds[i] == 7 ? -ECANCELED : 0, "ud %llu res %d",
			     (unsigned long long) uds[i], res[i]);
	cr_expect_neq(uds[0], uds[1]);
	xring_queue_exit(&ring);
	close(p[0]);
	close(p[1]);
}

Test(offload_poll, a_waiting_send_zc_stopped_posts_its_result_and_notification_as_on_the_kernel)
{
	static struct env k, x;

	run(s_zc_cancel, &k, &x);
}

Test(offload_poll, up_to_uio_maxiov_iovecs_and_the_errors_beyond_match_the_kernel)
{
	static struct env k, x;

	run(s_iovecs, &k, &x);
}

Test(offload_poll, a_poll_armed_before_the_connect_follows_the_socket_offloaded)
{
	static struct env k, x;

	run_unconnected(s_poll_before_connect, &k, &x);
}

/* A poll on a listening kernel socket made by plain socket / bind / listen calls, armed before
 * the first accept offloads it: it hears the connection the offloaded listener gets, before the
 * accept takes it (the kernel's order, kernel_listener_order below). */
static void listener_script(bool offloaded, int *order)
{
	struct sockaddr_in a = offloaded ? ol_sin(OL_XRING_IP, 7100) : ol_sin("127.0.0.1", 0);
	socklen_t len = sizeof(a);
	struct xring kr, *ring = offloaded ? &ol.ring : &kr;
	int lis = socket(AF_INET, SOCK_STREAM, 0), one = 1, client = -1, n = 0;
	struct xring_sqe *sqe;
	struct tcb *c = NULL;

	if (offloaded)
		ol_setup(&(struct memlink_config){0});
	else
		cr_assert_eq(xring_queue_init(16, ring, 0), 0);
	cr_assert_eq(setsockopt(lis, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)), 0);
	cr_assert_eq(bind(lis, (struct sockaddr *) &a, sizeof(a)), 0);
	cr_assert_eq(getsockname(lis, (struct sockaddr *) &a, &len), 0);
	cr_assert_eq(listen(lis, 4), 0);
	sqe = xring_get_sqe(ring);
	xring_prep_poll_add(sqe, lis, POLLIN);
	sqe->user_data = 1;
	xring_submit(ring);
	sqe = xring_get_sqe(ring);
	xring_prep_accept(sqe, lis, NULL, NULL, 0);
	sqe->user_data = 2;
	xring_submit(ring);
	if (offloaded) {
		cr_assert(ol_offloaded(lis), "the accept did not offload the listener");
		cr_assert_eq(tcp_connect(&ol.peer_tcp, clock_mono_ns(), a.sin_addr.s_addr, 7100, 0,
					 NULL, NULL, &c),
			     0);
	} else {
		client = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(connect(client, (struct sockaddr *) &a, sizeof(a)), 0);
	}
	for (uint64_t end = clock_mono_ns() + 2000000000u; n < 2 && clock_mono_ns() < end;) {
		struct __kernel_timespec ts = {0, 1000000};
		struct xring_cqe *cqe;

		if (offloaded)
			ol_pump();
		if (xring_wait_cqe_timeout(ring, &cqe, &ts))
			continue;
		cr_assert(cqe->user_data == 1 || cqe->user_data == 2);
		if (cqe->user_data == 1)
			cr_expect_eq(cqe->res, POLLIN, "the poll: %d", cqe->res);
		else
			cr_expect_geq(cqe->res, 0, "the accept: %d", cqe->res);
		if (cqe->user_data == 2 && cqe->res >= 0)
			close(cqe->res);
		order[n++] = (int) cqe->user_data;
		xring_cqe_seen(ring, cqe);
	}
	cr_assert_eq(n, 2, "%s: %d of 2 CQEs", offloaded ? "offloaded" : "kernel", n);
	close(lis);
	if (client >= 0)
		close(client);
	if (offloaded)
		ol_teardown();
	else
		xring_queue_exit(ring);
}

Test(offload_poll, a_poll_on_a_listener_armed_before_its_first_accept_hears_the_connection)
{
	int korder[2], xorder[2];

	listener_script(false, korder);
	listener_script(true, xorder);
	cr_expect_eq(xorder[0], korder[0], "first CQE: ud %d, kernel %d", xorder[0], korder[0]);
	cr_expect_eq(xorder[1], korder[1]);
}

Test(offload_poll, a_send_zc_failing_before_it_runs_ends_as_on_the_kernel)
{
	static struct env k, x;

	run(s_zc_failures, &k, &x);
	cr_expect_eq(k.n, 12, "the kernel path: %d CQEs", k.n);
	cr_expect_eq(k.recs[8].res, -EFAULT);
	cr_expect_eq(k.recs[8].flags, XRING_CQE_F_MORE);
	cr_expect_eq(k.recs[2].flags, XRING_CQE_F_NOTIF);
	cr_expect_eq((uint32_t) k.recs[2].res, XRING_NOTIF_USAGE_ZC_COPIED);
}
