/*
 * UDP sockets offloaded onto the ring's own stack: an xring port on one end of an in-memory
 * link, a second stack instance (a "remote host", 198.18.0.2) on the other end. The xring side
 * is driven only through SQEs and CQEs; the remote host through the stack's interface. Frames
 * cross the link for real: ARP first, then UDP, ICMP for a closed port.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "nic/ports.h"
#ifdef OFFLOAD_OVER_VERBS
#include "nic/verbs/verbs_port.h"
#include "softverbs.h"
#endif
#include "offload_link.h"
#include "stack/wire/udp.h"

/* What the remote host received. */
static struct {
	char data[2048];
	size_t len;
	uint16_t sport, dport;
	uint32_t src;
	int count;
} got;

static int peer_udp(void *ctx, uint64_t now, const struct ip4_view *ip, const struct udp_view *udp)
{
	if (udp->dport != 7000)
		return -ECONNREFUSED;
	memcpy(got.data, udp->payload, udp->payload_len);
	got.len = udp->payload_len;
	got.sport = udp->sport;
	got.dport = udp->dport;
	got.src = ip->src;
	got.count++;
	return 0;
}

/* Drives both ends until xring has a CQE; bounded. */
static struct xring_cqe *next_cqe(void)
{
	struct xring_cqe *cqe;

	for (int i = 0; i < 100000; i++) {
		if (xring_peek_cqe(&ol.ring, &cqe) == 0)
			return cqe;
		ol_pump();
	}
	cr_assert_fail("no CQE arrived");
	return NULL;
}

static void peer_send(uint16_t sport, uint32_t dst, uint16_t dport, const char *msg)
{
	struct iface_tx tx;
	size_t len = strlen(msg);

	cr_assert_eq(iface_ip4_begin(&ol.peer, clock_mono_ns(), dst, &tx), 0);
	memcpy(tx.l4 + UDP_HLEN, msg, len);
	udp_emit(tx.l4, tx.l4_cap, sport, dport, ol.peer.ip, dst, len, 0);
	cr_assert_eq(iface_ip4_commit(&ol.peer, &tx, IPPROTO_UDP, 0, UDP_HLEN + len), 0);
}

#ifdef OFFLOAD_OVER_VERBS
/*
 * Built a second time as test_offload_udp_verbs: both ends are verbs ports on two softverbs
 * devices joined by a wire (test/softverbs). The devices steer: xring's end gets the rules its
 * stack asks for (ARP, ICMP, each socket's UDP flow); the remote host's end, which has no
 * stack of xring's above it, steers ARP, ICMP and all UDP to its address here.
 */
static void make_link(const struct memlink_config *mc, struct port *e[2])
{
	static const char *const ips[2] = {OL_XRING_IP, OL_PEER_IP};
	struct sv_dev_config dc[2] = {{.name = "svmlx0", .mac = {2, 0, 0x5e, 0, 0, 0xa}},
				      {.name = "svmlx1", .mac = {2, 0, 0x5e, 0, 0, 0xb}}};
	struct port_verbs_config vc = {.rx_bufs = 256, .tx_bufs = 256, .sysfs = "/nonexistent"};
	const enum port_rule_kind kinds[] = {PORT_RULE_ARP, PORT_RULE_ICMP, PORT_RULE_UDP};
	char err[256];
	uint32_t h;

	sv_reset();
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(sv_add(&dc[i]), i);
		vc.dev = dc[i].name;
		cr_assert_eq(port_verbs_open(&vc, &e[i], err, sizeof(err)), 0, "%s", err);
		for (unsigned k = 0; i == 1 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			struct port_rule r = {.kind = kinds[k], .local_ip = inet_addr(ips[i])};

			cr_assert_eq(e[i]->ops->steer(e[i], &r, &h), 0);
		}
	}
	cr_assert_eq(sv_connect(0, 1), 0);
}

static void link_done(void)
{
	cr_expect_eq(sv_live_objects(), 0, "verbs objects left behind");
	cr_expect_eq(sv_misuse(), 0, "softverbs saw misuse: %s", sv_last_misuse());
	sv_reset();
}
#else
static void make_link(const struct memlink_config *mc, struct port *e[2])
{
	cr_assert_eq(memlink_create(mc, e), 0);
}

static void link_done(void)
{
}
#endif

static void setup(void)
{
	struct memlink_config mc = {.name = "t"};
	struct ol_config c = {.link = &mc,
			      .no_listener = true,
			      .strict_tx = true,
			      .udp_input = peer_udp,
			      .make_link = make_link};

	ol_setup_with(&c);
	memset(&got, 0, sizeof(got));
}

static void teardown(void)
{
	ol_teardown();
	link_done();
}

TestSuite(offload_udp, .init = setup, .fini = teardown);

Test(offload_udp, a_connected_socket_sends_through_the_port_and_receives_replies)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = ol_sin(OL_PEER_IP, 7000), me;
	socklen_t len = sizeof(me);
	char buf[64] = {0};
	struct xring_sqe *sqe;

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);

	/* The kernel socket stays behind, bound to the port's address: the port is reserved. */
	cr_assert_eq(getsockname(fd, (struct sockaddr *) &me, &len), 0);
	cr_expect_eq(me.sin_addr.s_addr, inet_addr(OL_XRING_IP));
	cr_expect_neq(me.sin_port, 0);

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, "hello, remote", 13, 0);
	sqe->user_data = 2;
	cr_assert_eq(ol_run(2), 13);
	for (int i = 0; i < 1000 && !got.count; i++) {
		struct xring_cqe *cqe;

		ol_pump();
		/* Drives the xring side: the ARP reply, then the datagram. */
		xring_peek_cqe(&ol.ring, &cqe);
	}
	cr_assert_eq(got.count, 1, "the datagram did not arrive (ARP first, then UDP)");
	cr_expect_eq(got.len, 13);
	cr_expect_eq(memcmp(got.data, "hello, remote", 13), 0);
	cr_expect_eq(got.sport, ntohs(me.sin_port), "source port %u, reserved %u", got.sport,
		     ntohs(me.sin_port));
	cr_expect_eq(got.src, inet_addr(OL_XRING_IP));

	/* A receive waits; the reply lands straight in its buffer. */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 3;
	xring_submit(&ol.ring);
	peer_send(7000, inet_addr(OL_XRING_IP), ntohs(me.sin_port), "reply");
	cr_assert_eq(ol_run(3), 5);
	cr_expect_str_eq(buf, "reply");

	/* A datagram from another source does not reach a connected socket. */
	peer_send(7001, inet_addr(OL_XRING_IP), ntohs(me.sin_port), "stranger");
	peer_send(7000, inet_addr(OL_XRING_IP), ntohs(me.sin_port), "second");
	memset(buf, 0, sizeof(buf));
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 4;
	cr_assert_eq(ol_run(4), 6);
	cr_expect_str_eq(buf, "second");

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_close(sqe, fd);
	sqe->user_data = 5;
	cr_assert_eq(ol_run(5), 0);
	cr_expect_eq(fcntl(fd, F_GETFD), -1, "the placeholder descriptor is closed");
}

Test(offload_udp, a_bound_socket_uses_sendmsg_and_recvmsg_with_addresses)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in me = ol_sin(OL_XRING_IP, 5000), to = ol_sin(OL_PEER_IP, 7000), from;
	char buf[64] = {0};
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr msg = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
	struct iovec out[2] = {{"two ", 4}, {"parts", 5}};
	struct msghdr omsg = {
		.msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = out, .msg_iovlen = 2};
	struct xring_sqe *sqe;

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_bind(sqe, fd, (struct sockaddr *) &me, sizeof(me));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_sendmsg(sqe, fd, &omsg, 0);
	sqe->user_data = 2;
	cr_assert_eq(ol_run(2), 9);
	for (int i = 0; i < 1000 && !got.count; i++) {
		struct xring_cqe *cqe;

		ol_pump();
		xring_peek_cqe(&ol.ring, &cqe);
	}
	cr_assert_eq(got.count, 1);
	cr_expect_eq(memcmp(got.data, "two parts", 9), 0);
	cr_expect_eq(got.sport, 5000);

	/* Queued before anyone asks, then received with the sender's address. */
	peer_send(7000, inet_addr(OL_XRING_IP), 5000, "queued");
	for (int i = 0; i < 100; i++) {
		struct xring_cqe *cqe;

		xring_peek_cqe(&ol.ring, &cqe);
	}
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recvmsg(sqe, fd, &msg, 0);
	sqe->user_data = 3;
	cr_assert_eq(ol_run(3), 6);
	cr_expect_str_eq(buf, "queued");
	cr_expect_eq(from.sin_addr.s_addr, inet_addr(OL_PEER_IP));
	cr_expect_eq(ntohs(from.sin_port), 7000);

	/* sendto without a destination on an unconnected socket. */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, "x", 1, 0);
	sqe->user_data = 4;
	cr_expect_eq(ol_run(4), -EDESTADDRREQ);
	close(fd);
}

Test(offload_udp, a_pending_receive_can_be_cancelled_and_dontwait_does_not_wait)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = ol_sin(OL_PEER_IP, 7000);
	char buf[16];
	struct xring_sqe *sqe;
	struct xring_cqe *cqe;
	int seen[3] = {0};

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), MSG_DONTWAIT);
	sqe->user_data = 2;
	cr_expect_eq(ol_run(2), -EAGAIN);

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 3;
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_cancel64(sqe, 3, 0);
	sqe->user_data = 4;
	xring_submit(&ol.ring);
	for (int i = 0; i < 2; i++) {
		cqe = next_cqe();
		if (cqe->user_data == 3)
			seen[0] = cqe->res;
		else if (cqe->user_data == 4)
			seen[1] = cqe->res;
		xring_cqe_seen(&ol.ring, cqe);
	}
	cr_expect_eq(seen[0], -ECANCELED);
	cr_expect_eq(seen[1], 0);
	close(fd);
}

/* A receive armed before the bind that offloads the socket waits on the kernel socket until
 * then; afterwards it gets the offloaded socket's first datagram, as on the kernel path. */
Test(offload_udp, a_receive_armed_before_the_bind_gets_the_offloaded_traffic)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in me = ol_sin(OL_XRING_IP, 7200), from = {0};
	char buf[16] = {0};
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr msg = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
	struct xring_sqe *sqe;
	struct xring_cqe *cqe;

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recvmsg(sqe, fd, &msg, 0);
	sqe->user_data = 1;
	xring_submit(&ol.ring);
	for (int i = 0; i < 100; i++) {
		ol_pump();
		cr_assert_neq(xring_peek_cqe(&ol.ring, &cqe), 0, "the receive completed unbound");
	}
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_bind(sqe, fd, (struct sockaddr *) &me, sizeof(me));
	sqe->user_data = 2;
	cr_assert_eq(ol_run(2), 0);
	cr_assert(ol_offloaded(fd));
	cr_assert_neq(xring_peek_cqe(&ol.ring, &cqe), 0, "a CQE for the receive taken back");
	peer_send(7000, me.sin_addr.s_addr, 7200, "one");
	cqe = next_cqe();
	cr_expect_eq(cqe->user_data, 1);
	cr_expect_eq(cqe->res, 3);
	cr_expect_eq(cqe->flags, 0u);
	xring_cqe_seen(&ol.ring, cqe);
	cr_expect_str_eq(buf, "one");
	cr_expect_eq(from.sin_port, htons(7000));
	cr_expect_eq(from.sin_addr.s_addr, ol_sin(OL_PEER_IP, 0).sin_addr.s_addr);
	close(fd);
}

Test(offload_udp, sockets_not_routed_through_a_port_stay_on_the_kernel)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), peer_fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in lo = ol_sin("127.0.0.1", 0);
	socklen_t len = sizeof(lo);
	char buf[16] = {0};
	struct xring_sqe *sqe;

	cr_assert_eq(bind(peer_fd, (struct sockaddr *) &lo, sizeof(lo)), 0);
	getsockname(peer_fd, (struct sockaddr *) &lo, &len);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &lo, sizeof(lo));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, "kernel", 6, 0);
	sqe->user_data = 2;
	cr_assert_eq(ol_run(2), 6);
	cr_assert_eq(recv(peer_fd, buf, sizeof(buf), 0), 6, "the kernel path carried it");
	close(fd);
	close(peer_fd);
}

Test(offload_udp, a_datagram_to_a_closed_port_draws_port_unreachable)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in me = ol_sin(OL_XRING_IP, 5000);
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

	/* A bound socket attaches the ring to the port; nothing listens on 4444. */
	xring_prep_bind(sqe, fd, (struct sockaddr *) &me, sizeof(me));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);
#ifdef OFFLOAD_OVER_VERBS
	{
		/* A steering NIC hands a datagram no socket's flow matches to the kernel, which
		 * would answer it on a real host. Here xring owns the address: all its UDP. */
		struct port_rule r = {.kind = PORT_RULE_UDP, .local_ip = inet_addr(OL_XRING_IP)};
		uint32_t h;

		cr_assert_eq(ol.ends[0]->ops->steer(ol.ends[0], &r, &h), 0);
	}
#endif
	peer_send(7000, inet_addr(OL_XRING_IP), 4444, "nobody");
	for (int i = 0; i < 1000 && !ol.peer.stats.icmp_err_in; i++) {
		struct xring_cqe *cqe;

		xring_peek_cqe(&ol.ring, &cqe);
		ol_pump();
	}
	cr_expect_eq(ol.peer.stats.icmp_err_in, 1, "no ICMP port unreachable came back");
	close(fd);
}

Test(offload_udp, a_rule_keeps_a_destination_on_the_kernel)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = ol_sin(OL_PEER_IP, 7000), me;
	socklen_t len = sizeof(me);
	struct xring_sqe *sqe;
	int32_t res;

	cr_assert_eq(xring_add_conf_rule("use os udp_connect 198.18.0.2/32:7000"), 0);
	cr_expect_eq(xring_add_conf_rule("use sometimes udp_connect *:*"), -EINVAL);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 1;
	res = ol_run(1);
	/* The kernel decided: connected through its own routes, or unreachable from here. */
	cr_expect(res == 0 || res == -ENETUNREACH, "kernel connect gave %d", res);
	if (getsockname(fd, (struct sockaddr *) &me, &len) == 0)
		cr_expect_neq(me.sin_addr.s_addr, inet_addr(OL_XRING_IP),
			      "the socket was offloaded");
	close(fd);
}

Test(offload_udp, the_probe_marks_the_socket_operations_that_run_offloaded)
{
	struct xring_probe *p = xring_get_probe(&ol.ring);

	cr_assert_not_null(p);
	cr_expect(p->ops[XRING_OP_SEND].flags & XRING_PROBE_OP_OFFLOADED);
	cr_expect(p->ops[XRING_OP_RECVMSG].flags & XRING_PROBE_OP_OFFLOADED);
	cr_expect(p->ops[XRING_OP_ACCEPT].flags & XRING_PROBE_OP_OFFLOADED);
	cr_expect_not(p->ops[XRING_OP_READ].flags & XRING_PROBE_OP_OFFLOADED);
	xring_free_probe(p);
}

Test(offload_udp, a_zero_copy_send_posts_its_result_then_the_notification)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = ol_sin(OL_PEER_IP, 7000);
	struct xring_sqe *sqe;
	struct xring_cqe *cqe;

	sqe = xring_get_sqe(&ol.ring);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 1;
	cr_assert_eq(ol_run(1), 0);
	for (unsigned usage = 0; usage < 2; usage++) {
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_send_zc(sqe, fd, "zero-copy", 9, 0,
				   usage ? XRING_SEND_ZC_REPORT_USAGE : 0);
		sqe->user_data = 2;
		xring_submit(&ol.ring);
		cqe = next_cqe();
		cr_expect_eq(cqe->user_data, 2);
		cr_expect_eq(cqe->res, 9);
		cr_expect_eq(cqe->flags, XRING_CQE_F_MORE);
		xring_cqe_seen(&ol.ring, cqe);
		cqe = next_cqe();
		cr_expect_eq(cqe->user_data, 2);
		cr_expect_eq(cqe->flags, XRING_CQE_F_NOTIF);
		cr_expect_eq((uint32_t) cqe->res, usage ? XRING_NOTIF_USAGE_ZC_COPIED : 0u,
			     "the notification says the data was copied");
		xring_cqe_seen(&ol.ring, cqe);
	}
	for (int i = 0; i < 1000 && got.count < 2; i++) {
		ol_pump();
		xring_peek_cqe(&ol.ring, &cqe);
	}
	cr_expect_eq(got.count, 2);
	cr_expect_eq(memcmp(got.data, "zero-copy", 9), 0);
	close(fd);
}

struct rec {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

/*
 * The same SQE script on an offloaded socket (over the link, to the remote stack) and on a
 * kernel socket (xring's fallback, over loopback, to a kernel peer): the CQE streams agree.
 */
struct dpeer {
	bool kernel;
	int kfd; /* kernel peer socket */
	struct sockaddr_in from;
};

static void dpeer_pump(struct dpeer *p)
{
	if (!p->kernel)
		ol_pump();
}

/* Waits until the peer has the datagram the script just sent, then replies. */
static void dpeer_reply(struct dpeer *p, const char *msg)
{
	if (p->kernel) {
		char buf[64];
		socklen_t len = sizeof(p->from);

		cr_assert_gt(
			recvfrom(p->kfd, buf, sizeof(buf), 0, (struct sockaddr *) &p->from, &len),
			0);
		cr_assert_eq(sendto(p->kfd, msg, strlen(msg), 0, (struct sockaddr *) &p->from, len),
			     (ssize_t) strlen(msg));
		return;
	}
	for (int i = 0; i < 1000 && !got.count; i++) {
		struct xring_cqe *cqe;

		ol_pump();
		xring_peek_cqe(&ol.ring, &cqe);
	}
	cr_assert_eq(got.count, 1);
	peer_send(7000, got.src, got.sport, msg);
}

/* Sends the script another datagram, to where the last one came from. */
static void dpeer_again(struct dpeer *p, const char *msg)
{
	if (p->kernel) {
		cr_assert_eq(sendto(p->kfd, msg, strlen(msg), 0, (struct sockaddr *) &p->from,
				    sizeof(p->from)),
			     (ssize_t) strlen(msg));
		return;
	}
	peer_send(7000, got.src, got.sport, msg);
}

/* Reaps n CQEs, driving both ends; records (res, flags). */
static void dreap(struct dpeer *p, int n, struct rec *out, int *nout)
{
	for (int k = 0; k < n; k++) {
		struct xring_cqe *cqe = NULL;

		for (int i = 0; i < 200000 && xring_peek_cqe(&ol.ring, &cqe); i++) {
			dpeer_pump(p);
			if (i > 1000)
				usleep(10);
		}
		cr_assert_not_null(cqe, "CQE %d of %d missing", k, n);
		out[(*nout)++] = (struct rec){cqe->user_data, cqe->res, cqe->flags};
		xring_cqe_seen(&ol.ring, cqe);
	}
}

/* The SQE names the script's socket by its direct descriptor (prep helpers clear the flags). */
static void fx(struct xring_sqe *sqe, bool direct)
{
	if (direct && sqe->opcode != XRING_OP_ASYNC_CANCEL && sqe->opcode != XRING_OP_CLOSE &&
	    sqe->opcode != XRING_OP_SOCKET)
		sqe->flags |= XRING_SQE_FIXED_FILE;
}

static void udp_script(struct dpeer *p, const struct sockaddr_in *dst, bool direct, struct rec *out,
		       int *n)
{
	char buf[64] = {0};
	struct xring_sqe *sqe;
	int fd;

	if (direct) {
		/* A direct socket in slot 1, made by SOCKET. */
		cr_assert_eq(xring_register_files_sparse(&ol.ring, 4), 0);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_socket_direct(sqe, AF_INET, SOCK_DGRAM, 0, 1, 0);
		sqe->user_data = 20;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		fd = 1;
	} else {
		fd = socket(AF_INET, SOCK_DGRAM, 0);
	}

	/* Polls armed before the connect that offloads the socket follow it there. */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_poll_add(sqe, fd, POLLIN);
	sqe->user_data = 60;
	fx(sqe, direct);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_poll_multishot(sqe, fd, POLLIN);
	sqe->user_data = 61;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_connect(sqe, fd, (const struct sockaddr *) dst, sizeof(*dst));
	sqe->user_data = 1;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 1, out, n);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, "hello", 5, 0);
	sqe->user_data = 2;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 1, out, n);
	dpeer_reply(p, "world!!");
	dreap(p, 2, out, n); /* both polls: POLLIN */
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 3;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 1, out, n);
	cr_expect_str_eq(buf, "world!!");
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_poll_remove(sqe, 61);
	sqe->user_data = 62;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 2, out, n);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), MSG_DONTWAIT);
	sqe->user_data = 4;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 1, out, n);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, "a", 1, 0);
	sqe->flags |= XRING_SQE_IO_LINK;
	sqe->user_data = 5;
	fx(sqe, direct);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_send(sqe, fd, "bc", 2, 0);
	sqe->user_data = 6;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 2, out, n);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 7;
	fx(sqe, direct);
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_cancel64(sqe, 7, 0);
	sqe->user_data = 8;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 2, out, n);
	/* write / writev / read / readv on the socket, and a poll that waits for a datagram. */
	{
		static char a[4], b[4], c[16];
		struct iovec wv[2] = {{(void *) "ab", 2}, {(void *) "cde", 3}};
		struct iovec rv[2] = {{a, sizeof(a)}, {b, sizeof(b)}};

		sqe = xring_get_sqe(&ol.ring);
		xring_prep_rw(XRING_OP_WRITEV, sqe, fd, wv, 2, 0);
		sqe->user_data = 30;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		dpeer_reply(p, "0123456789"); /* 10 bytes for 8 of room: the rest is lost */
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_rw(XRING_OP_READV, sqe, fd, rv, 2, 0);
		sqe->user_data = 31;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		cr_expect_eq(memcmp(a, "0123", 4), 0);
		cr_expect_eq(memcmp(b, "4567", 4), 0);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_poll_add(sqe, fd, POLLIN);
		sqe->user_data = 32;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dpeer_again(p, "xyz");
		dreap(p, 1, out, n);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_read(sqe, fd, c, sizeof(c), 0);
		sqe->user_data = 33;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		cr_expect_eq(memcmp(c, "xyz", 3), 0);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_write(sqe, fd, "w", 1, 0);
		sqe->user_data = 34;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		dpeer_reply(p, "ok");
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_recv(sqe, fd, c, sizeof(c), 0);
		sqe->user_data = 35;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
	}
	/* Up to UIO_MAXIOV iovecs, one byte each, and the kernel's errors beyond. */
	{
		static struct iovec many[UIO_MAXIOV + 1];
		static char bytes[UIO_MAXIOV + 1];
		struct msghdr mm = {.msg_iov = many, .msg_iovlen = UIO_MAXIOV};
		struct msghdr over = {.msg_iov = many, .msg_iovlen = UIO_MAXIOV + 1};
		struct msghdr some = {.msg_iov = many, .msg_iovlen = 12};
		struct msghdr none = {.msg_iov = many, .msg_iovlen = 0};

		for (int i = 0; i <= UIO_MAXIOV; i++)
			many[i] = (struct iovec){bytes + i, 1};
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_rw(XRING_OP_WRITEV, sqe, fd, many, UIO_MAXIOV, 0);
		sqe->user_data = 40;
		fx(sqe, direct);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_sendmsg(sqe, fd, &mm, 0);
		sqe->user_data = 41;
		fx(sqe, direct);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_rw(XRING_OP_WRITEV, sqe, fd, many, UIO_MAXIOV + 1, 0);
		sqe->user_data = 42;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 3, out, n);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_sendmsg(sqe, fd, &over, 0);
		sqe->user_data = 43;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_sendmsg_zc(sqe, fd, &over, 0); /* its result, then the notification */
		sqe->user_data = 44;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 2, out, n);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_recvmsg(sqe, fd, &over, 0);
		sqe->user_data = 45;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_rw(XRING_OP_READV, sqe, fd, many, UIO_MAXIOV + 1, 0);
		sqe->user_data = 46;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		memset(bytes, 0, sizeof(bytes));
		dpeer_again(p, "abcdefghijklmnopqrst");
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_rw(XRING_OP_READV, sqe, fd, many, 30, 0); /* 20 bytes in 20 iovecs */
		sqe->user_data = 47;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		cr_expect_eq(memcmp(bytes, "abcdefghijklmnopqrst", 20), 0);
		dpeer_again(p, "ABCDEFGHIJKLMNOPQRST");
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_recvmsg(sqe, fd, &some, MSG_TRUNC); /* 12 of 20: the length, MSG_TRUNC */
		sqe->user_data = 48;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		cr_expect_eq(memcmp(bytes, "ABCDEFGHIJKLm", 13), 0);
		cr_expect_eq(some.msg_flags, MSG_TRUNC);
		dpeer_again(p, "q");
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_recvmsg(sqe, fd, &none, 0); /* takes the datagram, 0 bytes */
		sqe->user_data = 49;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_recv(sqe, fd, bytes, 4, MSG_DONTWAIT); /* nothing left */
		sqe->user_data = 50;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 1, out, n);
	}
	/* A multishot recvmsg: each buffer holds the header, the sender's address, the payload. */
	{
		static char bufs[4][128];
		char big[121];
		struct sockaddr_in name;
		struct msghdr rmsg = {.msg_name = &name, .msg_namelen = sizeof(name)};
		struct xring_buf_ring *br;
		int ret;

		br = xring_setup_buf_ring(&ol.ring, 4, 3, 0, &ret);
		cr_assert_not_null(br, "buffer ring: %d", ret);
		for (int i = 0; i < 3; i++)
			xring_buf_ring_add(br, bufs[i], sizeof(bufs[i]), (unsigned short) i,
					   xring_buf_ring_mask(4), i);
		xring_buf_ring_advance(br, 3);
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_recvmsg_multishot(sqe, fd, &rmsg, 0);
		sqe->flags |= XRING_SQE_BUFFER_SELECT;
		sqe->buf_group = 3;
		sqe->user_data = 11;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dpeer_again(p, "first");
		dreap(p, 1, out, n);
		dpeer_again(p, "second!");
		dreap(p, 1, out, n);
		/* 120 bytes where 96 fit after the header and name: MSG_TRUNC. */
		memset(big, 'z', 120);
		big[120] = 0;
		dpeer_again(p, big);
		dreap(p, 1, out, n);
		{
			struct xring_recvmsg_out *o = xring_recvmsg_validate(bufs[2], 128, &rmsg);

			cr_assert_not_null(o);
			cr_expect_eq(o->payloadlen, 96u);
			cr_expect_eq(o->flags, (uint32_t) MSG_TRUNC);
		}
		for (int i = 0; i < 2; i++) {
			struct xring_recvmsg_out *o = xring_recvmsg_validate(bufs[i], 128, &rmsg);
			const struct sockaddr_in *from = xring_recvmsg_name(o);

			cr_assert_not_null(o);
			cr_expect_eq(o->namelen, sizeof(name));
			cr_expect_eq(o->payloadlen, i ? 7u : 5u);
			cr_expect_eq(o->flags, 0u);
			cr_expect_eq(from->sin_family, AF_INET);
			cr_expect_eq(memcmp(xring_recvmsg_payload(o, &rmsg),
					    i ? "second!" : "first", o->payloadlen),
				     0);
		}
		sqe = xring_get_sqe(&ol.ring);
		xring_prep_cancel64(sqe, 11, 0);
		sqe->user_data = 12;
		fx(sqe, direct);
		xring_submit(&ol.ring);
		dreap(p, 2, out, n);
		xring_free_buf_ring(&ol.ring, br, 4, 3);
	}
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_shutdown(sqe, fd, SHUT_RDWR);
	sqe->user_data = 9;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 1, out, n);
	sqe = xring_get_sqe(&ol.ring);
	if (direct)
		xring_prep_close_direct(sqe, (unsigned) fd);
	else
		xring_prep_close(sqe, fd);
	sqe->user_data = 10;
	fx(sqe, direct);
	xring_submit(&ol.ring);
	dreap(p, 1, out, n);
	if (direct)
		cr_assert_eq(xring_unregister_files(&ol.ring), 0);
}

static int cmp_rec_ud(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->user_data < y->user_data ? -1 : x->user_data > y->user_data;
}

static void udp_differential(bool direct)
{
	struct rec off[64], ker[64];
	int noff = 0, nker = 0;
	struct sockaddr_in lo = ol_sin("127.0.0.1", 0), to = ol_sin(OL_PEER_IP, 7000);
	socklen_t len = sizeof(lo);
	struct dpeer kp = {.kernel = true}, op = {.kernel = false};

	kp.kfd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(bind(kp.kfd, (struct sockaddr *) &lo, sizeof(lo)), 0);
	getsockname(kp.kfd, (struct sockaddr *) &lo, &len);
	udp_script(&kp, &lo, direct, ker, &nker);
	udp_script(&op, &to, direct, off, &noff);
	cr_assert_eq(noff, nker);
	/* Within a submission CQEs may come in either order; compare them by request. */
	qsort(off, (size_t) noff, sizeof(off[0]), cmp_rec_ud);
	qsort(ker, (size_t) nker, sizeof(ker[0]), cmp_rec_ud);
	for (int i = 0; i < noff; i++) {
		cr_expect_eq(off[i].user_data, ker[i].user_data);
		cr_expect_eq(off[i].res, ker[i].res, "request %llu: offloaded %d, kernel %d",
			     (unsigned long long) ker[i].user_data, off[i].res, ker[i].res);
		cr_expect_eq(off[i].flags, ker[i].flags, "request %llu: flags %#x vs %#x",
			     (unsigned long long) ker[i].user_data, off[i].flags, ker[i].flags);
	}
	close(kp.kfd);
}

Test(offload_udp, an_offloaded_socket_and_a_kernel_socket_give_the_same_cqes)
{
	udp_differential(false);
}

Test(offload_udp, the_same_holds_on_direct_descriptors)
{
	udp_differential(true);
}
