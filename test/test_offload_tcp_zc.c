/*
 * Zero-copy on offloaded TCP sockets, through SQEs and CQEs: an xring port on one end of an
 * in-memory link, a second stack (a "remote host", 198.18.0.2, with its own TCP) on the other.
 * The test decides when the remote host runs, so it decides when ACKs come back: a send_zc's
 * F_NOTIF must wait for them, its buffer must not be read after it, and close must end the loan
 * without losing a byte.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "offload_link.h"

#define PORT 7000

static uint8_t zbuf[50000];

static void peer_accepted(struct tcb *c)
{
	tcp_setopt(c, TCP_OPT_QUICKACK, 1);
	tcp_setopt(c, TCP_OPT_NODELAY, 1); /* each round's tail leaves at once */
}

/* Drives xring (and the remote host when pump is set) until a CQE is there; bounded. */
static struct xring_cqe *next_cqe(bool pump)
{
	struct xring_cqe *cqe;

	for (int i = 0; i < 100000; i++) {
		xring_submit(&ol.ring);
		if (xring_peek_cqe(&ol.ring, &cqe) == 0)
			return cqe;
		if (pump)
			ol_pump();
	}
	return NULL;
}

static void expect_cqe(uint64_t ud, int32_t res, uint32_t flags, bool pump)
{
	struct xring_cqe *cqe = next_cqe(pump);

	cr_assert_not_null(cqe, "no CQE for %llu", (unsigned long long) ud);
	cr_expect_eq(cqe->user_data, ud, "CQE for %llu, expected %llu",
		     (unsigned long long) cqe->user_data, (unsigned long long) ud);
	cr_expect_eq(cqe->res, res, "CQE %llu: res %d, expected %d", (unsigned long long) ud,
		     cqe->res, res);
	cr_expect_eq(cqe->flags, flags, "CQE %llu: flags %#x, expected %#x",
		     (unsigned long long) ud, cqe->flags, flags);
	xring_cqe_seen(&ol.ring, cqe);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t) (i * 7 + (i >> 8) * 13);
}

/* Reads what the remote host received, checking it against the pattern from *off on. */
static void peer_drain(size_t *off)
{
	uint8_t buf[4096];
	long n;

	while (ol.accepted && (n = tcp_recv(ol.accepted, clock_mono_ns(), buf, sizeof(buf))) > 0) {
		for (long i = 0; i < n; i++)
			cr_assert_eq(buf[i], pattern(*off + (size_t) i),
				     "byte %zu altered at the remote host", *off + (size_t) i);
		*off += (size_t) n;
	}
}

static int connect_offloaded(void)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

	inet_pton(AF_INET, OL_PEER_IP, &to.sin_addr);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 1;
	expect_cqe(1, 0, 0, true);
	for (int i = 0; i < 1000 && !ol.accepted; i++)
		ol_pump();
	cr_assert_not_null(ol.accepted, "the remote host accepted nothing");
	return fd;
}

static void setup(void)
{
	struct memlink_config mc = {.name = "z"};
	struct ol_config c = {.link = &mc,
			      .listen_port = PORT,
			      .strict_tx = true,
			      .tcp = {.rcvbuf = 256 * 1024},
			      .accepted = peer_accepted};

	ol_setup_with(&c);
	for (size_t i = 0; i < sizeof(zbuf); i++)
		zbuf[i] = pattern(i);
}

TestSuite(offload_tcp_zc, .init = setup, .fini = ol_teardown);

Test(offload_tcp_zc, the_notification_waits_for_the_ack_and_the_buffer_is_not_read_after_it)
{
	int fd = connect_offloaded();
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);
	size_t got = 0;

	xring_prep_send_zc(sqe, fd, zbuf, 20000, 0, 0);
	sqe->user_data = 2;
	/* The remote host does not run: the stack took every byte, nothing is acknowledged. */
	expect_cqe(2, 20000, XRING_CQE_F_MORE, false);
	cr_expect_null(next_cqe(false), "F_NOTIF before the peer acknowledged anything");
	/* Now it runs and acknowledges. */
	expect_cqe(2, 0, XRING_CQE_F_NOTIF, true);
	peer_drain(&got);
	cr_expect_eq(got, 20000, "the notification came before the peer held every byte");
	/* The buffer is the application's again: what it writes now must never go out. */
	memset(zbuf, 0xa5, sizeof(zbuf));
	for (int i = 0; i < 1000; i++) {
		ol_pump();
		xring_submit(&ol.ring);
	}
	peer_drain(&got);
	cr_expect_eq(got, 20000);
	close(fd);
}

/* As in the kernel, where the notification is a request of its own: the chain goes on at the
 * send_zc's result, not at its notification. */
Test(offload_tcp_zc, a_linked_request_starts_at_the_result_not_at_the_notification)
{
	int fd = connect_offloaded();
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

	xring_prep_send_zc(sqe, fd, zbuf, 20000, 0, 0);
	sqe->user_data = 2;
	sqe->flags |= XRING_SQE_IO_LINK;
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_nop(sqe);
	sqe->user_data = 3;
	/* The remote host does not run: nothing is acknowledged, yet the NOP completes. */
	expect_cqe(2, 20000, XRING_CQE_F_MORE, false);
	expect_cqe(3, 0, 0, false);
	cr_expect_null(next_cqe(false), "F_NOTIF before the peer acknowledged anything");
	expect_cqe(2, 0, XRING_CQE_F_NOTIF, true);
	close(fd);
}

Test(offload_tcp_zc, close_ends_the_loan_and_every_byte_still_arrives)
{
	int fd = connect_offloaded();
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);
	size_t got = 0;
	int notif = 0, closed = 0;

	xring_prep_send_zc(sqe, fd, zbuf, sizeof(zbuf), 0, XRING_SEND_ZC_REPORT_USAGE);
	sqe->user_data = 2;
	expect_cqe(2, (int32_t) sizeof(zbuf), XRING_CQE_F_MORE, false);
	/* Close before any ACK: the notification comes with the close, the buffer is free. */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_close(sqe, fd);
	sqe->user_data = 3;
	for (int k = 0; k < 2; k++) {
		struct xring_cqe *cqe = next_cqe(false);

		cr_assert_not_null(cqe, "close and the notification: %d of 2 CQEs", k);
		if (cqe->user_data == 2) {
			cr_expect_eq(cqe->flags, XRING_CQE_F_NOTIF);
			notif++;
		} else {
			cr_expect_eq(cqe->user_data, 3);
			cr_expect_eq(cqe->res, 0);
			closed++;
		}
		xring_cqe_seen(&ol.ring, cqe);
	}
	cr_assert_eq(notif, 1);
	cr_assert_eq(closed, 1);
	memset(zbuf, 0xa5, sizeof(zbuf));
	for (int i = 0; i < 20000 && got < sizeof(zbuf); i++) {
		ol_pump();
		xring_submit(&ol.ring);
		peer_drain(&got);
	}
	cr_expect_eq(got, sizeof(zbuf), "the remote host received %zu of %zu bytes", got,
		     sizeof(zbuf));
}

static void receive_rounds(int fd)
{
	static uint8_t in[8192];
	size_t sent = 0, off = 0;

	for (int round = 0; round < 4; round++) {
		size_t len = round == 3 ? sizeof(in) : 1000 + (size_t) round * 1500;
		int flags = round == 3 ? MSG_WAITALL : 0;
		bool first = true;
		struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

		/* The receive waits first, so the payload can go straight into it. */
		xring_prep_recv(sqe, fd, in, sizeof(in), flags);
		sqe->user_data = 10 + (uint64_t) round;
		cr_assert_null(next_cqe(false), "a receive completed with nothing sent");
		cr_assert_eq(tcp_send(ol.accepted, clock_mono_ns(), zbuf + sent, len), (long) len);
		sent += len;
		while (off < sent) {
			struct xring_cqe *cqe = next_cqe(true);

			cr_assert_not_null(cqe, "%zu of %zu bytes received", off, sent);
			cr_assert_gt(cqe->res, 0);
			if (first && round == 3)
				cr_expect_eq(cqe->res, (int32_t) sizeof(in),
					     "MSG_WAITALL returned early");
			for (int32_t i = 0; i < cqe->res; i++)
				cr_assert_eq(in[i], pattern(off + (size_t) i), "byte %zu altered",
					     off + (size_t) i);
			off += (size_t) cqe->res;
			xring_cqe_seen(&ol.ring, cqe);
			first = false;
			if (off < sent) {
				sqe = xring_get_sqe(&ol.ring);
				xring_prep_recv(sqe, fd, in, sizeof(in), flags);
				sqe->user_data = 20;
			}
		}
	}
}

Test(offload_tcp_zc, a_waiting_receive_gets_the_payload_in_order)
{
	int fd = connect_offloaded();

	receive_rounds(fd);
	close(fd);
}

Test(offload_tcp_zc, frames_that_arrive_as_chains_of_buffers_are_taken_whole)
{
	int fd = connect_offloaded();

	ol.tx_split = 700;
	receive_rounds(fd);
	ol.tx_split = 0;
	close(fd);
}

/* As the kernel's io_sendrecv_fail(): a send_zc stopped after the stack took part of it ends
 * with that count and F_MORE, and its notification still waits for the ACK of those bytes,
 * which the remote host receives whole and unaltered. */
Test(offload_tcp_zc, a_send_zc_cancelled_half_way_keeps_its_notification_until_the_ack)
{
	static uint8_t big[600000]; /* more than the send buffer (XRING_TCP_WMEM, 256 KiB) */
	int fd = connect_offloaded();
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);
	struct xring_cqe *cqe;
	size_t got = 0, moved;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = pattern(i);
	xring_prep_send_zc(sqe, fd, big, sizeof(big), MSG_WAITALL, 0); /* waits for room */
	sqe->user_data = 2;
	/* The remote host does not run: the stack takes what its send ring holds, and waits. */
	cr_assert_null(next_cqe(false), "the whole send_zc was taken");
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_cancel64(sqe, 2, 0);
	sqe->user_data = 3;
	expect_cqe(3, 0, 0, false);
	cqe = next_cqe(false);
	cr_assert_not_null(cqe);
	cr_expect_eq(cqe->user_data, 2);
	cr_expect_eq(cqe->flags, XRING_CQE_F_MORE);
	cr_assert(cqe->res > 0 && cqe->res < (int32_t) sizeof(big), "res %d", cqe->res);
	moved = (size_t) cqe->res;
	xring_cqe_seen(&ol.ring, cqe);
	cr_expect_null(next_cqe(false), "F_NOTIF before the peer acknowledged anything");
	expect_cqe(2, 0, XRING_CQE_F_NOTIF, true);
	peer_drain(&got);
	cr_expect_eq(got, moved, "the remote host holds %zu bytes, the result said %zu", got,
		     moved);
	memset(big, 0xa5, sizeof(big));
	for (int i = 0; i < 1000; i++) {
		ol_pump();
		xring_submit(&ol.ring);
	}
	peer_drain(&got);
	cr_expect_eq(got, moved);
	close(fd);
}

/* As in the kernel (6.18: ASYNC_CANCEL of a send_zc whose result is out answers -ENOENT):
 * once the result is posted the request is over, and its notification cannot be cancelled. */
Test(offload_tcp_zc, a_send_zc_whose_result_is_out_is_no_longer_found_by_a_cancel)
{
	int fd = connect_offloaded();
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

	xring_prep_send_zc(sqe, fd, zbuf, 20000, 0, 0);
	sqe->user_data = 2;
	expect_cqe(2, 20000, XRING_CQE_F_MORE, false);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_cancel64(sqe, 2, 0);
	sqe->user_data = 3;
	expect_cqe(3, -ENOENT, 0, false);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_cancel64(sqe, 0, XRING_ASYNC_CANCEL_ANY);
	sqe->user_data = 4;
	expect_cqe(4, 0, 0, false); /* none found, none cancelled */
	cr_expect_null(next_cqe(false), "F_NOTIF before the peer acknowledged anything");
	expect_cqe(2, 0, XRING_CQE_F_NOTIF, true);
	close(fd);
}

/*
 * As the kernel's io_uring send on a stream socket: without MSG_WAITALL a send ends with what
 * the send buffer took; one that finds the buffer full waits, and wakes once a third of the
 * buffer is free (not for the few bytes one ACK frees); MSG_WAITALL waits for every byte. The
 * kernel's own answer is checked first, on a loopback pair through xring's kernel path.
 */
Test(offload_tcp_zc, a_send_without_waitall_ends_with_what_the_send_buffer_took)
{
	static uint8_t big[600000], huge[8 << 20];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), kfd = socket(AF_INET, SOCK_STREAM, 0), afd, fd;
	struct xring_sqe *sqe;
	struct xring_cqe *cqe;
	size_t got = 0, sent;

	/* The kernel: the peer reads nothing, 8 MiB cannot all be taken. */
	cr_assert_eq(bind(lfd, (struct sockaddr *) &a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 1), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *) &a, &alen), 0);
	cr_assert_eq(connect(kfd, (struct sockaddr *) &a, sizeof(a)), 0);
	afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, kfd, huge, sizeof(huge), 0);
	sqe->user_data = 9;
	cqe = next_cqe(false);
	cr_assert_not_null(cqe, "the kernel's send did not end");
	cr_expect(cqe->res > 0 && cqe->res < (int32_t) sizeof(huge), "kernel: res %d", cqe->res);
	xring_cqe_seen(&ol.ring, cqe);
	close(afd);
	close(kfd);
	close(lfd);

	/* Offloaded, the remote host not running: the send ends at once with what fitted. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = pattern(i);
	fd = connect_offloaded();
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, big, sizeof(big), 0);
	sqe->user_data = 2;
	cqe = next_cqe(false);
	cr_assert_not_null(cqe, "the send waited for every byte");
	cr_assert_eq(cqe->user_data, 2);
	cr_assert(cqe->res > 0 && cqe->res < (int32_t) sizeof(big), "res %d", cqe->res);
	sent = (size_t) cqe->res;
	xring_cqe_seen(&ol.ring, cqe);
	/* The buffer is full: the next send waits until the remote host reads. */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, big + sent, sizeof(big) - sent, 0);
	sqe->user_data = 3;
	cr_assert_null(next_cqe(false), "a send into a full buffer ended");
	for (int i = 0; i < 100000 && !(cqe = next_cqe(true)); i++)
		peer_drain(&got);
	cr_assert_not_null(cqe);
	cr_assert_eq(cqe->user_data, 3);
	cr_expect_geq(cqe->res, 256 * 1024 / 3, "woken for %d bytes", cqe->res);
	sent += (size_t) cqe->res;
	xring_cqe_seen(&ol.ring, cqe);
	/* MSG_WAITALL: every byte of what is left. */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, big + sent, sizeof(big) - sent, MSG_WAITALL);
	sqe->user_data = 4;
	for (int i = 0; i < 100000 && !(cqe = next_cqe(true)); i++)
		peer_drain(&got);
	cr_assert_not_null(cqe);
	cr_expect_eq(cqe->user_data, 4);
	cr_expect_eq(cqe->res, (int32_t) (sizeof(big) - sent));
	xring_cqe_seen(&ol.ring, cqe);
	for (int i = 0; i < 1000 && got < sizeof(big); i++) {
		ol_pump();
		xring_submit(&ol.ring);
		peer_drain(&got);
	}
	cr_expect_eq(got, sizeof(big), "the remote host got %zu bytes", got);
	close(fd);
}
