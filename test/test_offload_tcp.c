/*
 * Offloaded TCP sockets from end to end over the verbs port: two rings of one process, a client
 * ring on one verbs port (198.18.0.1) and a server ring on another (198.18.0.2), the two ports on
 * two softverbs devices joined by a wire (test/softverbs). Both sides are xring's stack, driven
 * only through SQEs and CQEs; every frame goes through ibv_post_send, the software device's flow
 * steering and ibv_poll_cq. One thread drives both rings (a submission polls a ring's ports).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "nic/fault.h"
#include "nic/ports.h"
#include "nic/verbs/verbs_port.h"
#include "ops/netport.h"
#include "ring/ring.h"
#include "softverbs.h"

#define CLIENT_IP "198.18.0.1"
#define SERVER_IP "198.18.0.2"

#define S_NS 1000000000ull

static struct port *ports[2]; /* [0] the client's, [1] the server's */
static int devs[2];
static struct xring cr, sr; /* client ring, server ring */

struct link_opts {
	bool tso;          /* devices offer TSO */
	uint32_t drop_ppm; /* loss on the client's port, each way */
};

static void open_ports(const struct link_opts *o)
{
	static const char *const ips[2] = {CLIENT_IP, SERVER_IP};
	struct sv_dev_config dc[2] = {{.name = "svmlx0", .mac = {2, 0, 0x5e, 0, 0, 0xa}},
				      {.name = "svmlx1", .mac = {2, 0, 0x5e, 0, 0, 0xb}}};
	char err[256];

	sv_reset();
	for (int i = 0; i < 2; i++) {
		dc[i].tso = o->tso ? 262144 : 0;
		struct port_verbs_config vc = {.dev = dc[i].name,
					       .sysfs = "/nonexistent",
					       .ip = inet_addr(ips[i]),
					       .prefix_len = 24};

		devs[i] = sv_add(&dc[i]);
		cr_assert_eq(devs[i], i);
		cr_assert_eq(port_verbs_open(&vc, &ports[i], err, sizeof(err)), 0, "%s", err);
	}
	cr_assert_eq(sv_connect(0, 1), 0);
	if (o->drop_ppm) {
		struct fault_config fc = {
			.seed = 7, .tx = {.drop = o->drop_ppm}, .rx = {.drop = o->drop_ppm}};
		struct port *w;

		cr_assert_eq(fault_wrap(ports[0], &fc, &w), 0);
		ports[0] = w;
	}
	/* Equal prefixes: the first port added carries the route to the server's address. */
	cr_assert_eq(ports_add(ports[0], 0, NULL), 0);
	cr_assert_eq(ports_add(ports[1], 0, NULL), 0);
	cr_assert_eq(xring_queue_init(64, &cr, 0), 0);
	cr_assert_eq(xring_queue_init(64, &sr, 0), 0);
}

static void setup(void)
{
	open_ports(&(struct link_opts){0});
}

static void teardown(void)
{
	xring_queue_exit(&cr);
	xring_queue_exit(&sr);
	ports_reset();
	cr_expect_eq(sv_live_objects(), 0, "verbs objects left behind");
	cr_expect_eq(sv_misuse(), 0, "softverbs saw misuse: %s", sv_last_misuse());
	sv_reset();
}

static void pump(void)
{
	xring_submit(&cr);
	xring_submit(&sr);
}

/* The next CQE of ring r, driving both rings meanwhile; bounded in time. */
static struct xring_cqe wait_cqe(struct xring *r)
{
	uint64_t end = clock_mono_ns() + 30 * S_NS;
	struct xring_cqe *cqe, c;

	while (xring_peek_cqe(r, &cqe) != 0) {
		pump();
		cr_assert_lt(clock_mono_ns(), end, "no CQE within 30 s");
	}
	c = *cqe;
	xring_cqe_seen(r, cqe);
	return c;
}

/* The result of the request ud on ring r, which must be the next CQE there. */
static int32_t wait_ud(struct xring *r, uint64_t ud)
{
	struct xring_cqe c = wait_cqe(r);

	cr_assert_eq(c.user_data, ud, "CQE for %llu (res %d), expected %llu",
		     (unsigned long long) c.user_data, c.res, (unsigned long long) ud);
	return c.res;
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

static uint16_t server_port; /* the listener's, picked by the kernel */

/* A listener made with plain calls on the server port's address; offloaded at its first
 * accept. IP_FREEBIND: the kernel has no such address. */
static int listener(void)
{
	struct sockaddr_in a = sin_of(SERVER_IP, 0);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	cr_assert_geq(fd, 0);
	cr_assert_eq(setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
	server_port = ntohs(a.sin_port);
	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

/* One connection: *cfd on the client ring, *afd accepted on the server ring. */
static void connect_pair(int lfd, int *cfd, int *afd)
{
	struct sockaddr_in to = sin_of(SERVER_IP, server_port), peer;
	socklen_t plen = sizeof(peer);
	struct xring_sqe *sqe;
	bool connected = false, accepted = false;

	*cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(*cfd, 0);
	sqe = xring_get_sqe(&sr);
	xring_prep_accept(sqe, lfd, (struct sockaddr *) &peer, &plen, 0);
	sqe->user_data = 100;
	xring_submit(&sr);
	sqe = xring_get_sqe(&cr);
	xring_prep_connect(sqe, *cfd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 101;
	xring_submit(&cr);
	for (uint64_t end = clock_mono_ns() + 30 * S_NS; !connected || !accepted;) {
		struct xring_cqe *cqe;

		cr_assert_lt(clock_mono_ns(), end, "no connection within 30 s");
		if (xring_peek_cqe(&cr, &cqe) == 0) {
			cr_assert_eq(cqe->user_data, 101);
			cr_assert_eq(cqe->res, 0, "connect: %d", cqe->res);
			connected = true;
			xring_cqe_seen(&cr, cqe);
		}
		if (xring_peek_cqe(&sr, &cqe) == 0) {
			cr_assert_eq(cqe->user_data, 100);
			cr_assert_geq(cqe->res, 0, "accept: %d", cqe->res);
			*afd = cqe->res;
			accepted = true;
			xring_cqe_seen(&sr, cqe);
		}
	}
	cr_expect_eq(peer.sin_addr.s_addr, inet_addr(CLIENT_IP));
}

/* Closes fd through ring r; CQEs of other requests still due on r are passed over. */
static void close_on(struct xring *r, int fd)
{
	struct xring_sqe *sqe = xring_get_sqe(r);
	struct xring_cqe c;

	xring_prep_close(sqe, fd);
	sqe->user_data = 999;
	xring_submit(r);
	do
		c = wait_cqe(r);
	while (c.user_data != 999);
	cr_assert_eq(c.res, 0, "close: %d", c.res);
}

static uint8_t pattern(size_t i, unsigned dir)
{
	uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull + dir;

	return (uint8_t) ((z ^ (z >> 29)) >> 24);
}

/*
 * Both directions at once: each side keeps one send of up to chunk bytes and one receive in
 * flight until total bytes went each way, then checks every byte. ud: bit 0 send/recv.
 */
struct side {
	struct xring *r;
	int fd;
	unsigned dir;
	uint8_t *out, *in;
	size_t sent, rcvd, inflight_send;
	bool send_busy, recv_busy, eof;
};

static void side_kick(struct side *s, size_t total, size_t chunk)
{
	struct xring_sqe *sqe;

	if (!s->send_busy && s->sent < total) {
		size_t n = total - s->sent < chunk ? total - s->sent : chunk;

		sqe = xring_get_sqe(s->r);
		xring_prep_send(sqe, s->fd, s->out + s->sent, n, 0);
		sqe->user_data = 0;
		s->send_busy = true;
	}
	if (!s->recv_busy && s->rcvd < total) {
		size_t n = total - s->rcvd < chunk ? total - s->rcvd : chunk;

		sqe = xring_get_sqe(s->r);
		xring_prep_recv(sqe, s->fd, s->in + s->rcvd, n, 0);
		sqe->user_data = 1;
		s->recv_busy = true;
	}
	xring_submit(s->r);
}

static void side_reap(struct side *s)
{
	struct xring_cqe *cqe;

	while (xring_peek_cqe(s->r, &cqe) == 0) {
		cr_assert_gt(cqe->res, 0, "side %u: %s failed: %d", s->dir,
			     cqe->user_data ? "recv" : "send", cqe->res);
		if (cqe->user_data == 0) {
			s->sent += (size_t) cqe->res;
			s->send_busy = false;
		} else {
			s->rcvd += (size_t) cqe->res;
			s->recv_busy = false;
		}
		xring_cqe_seen(s->r, cqe);
	}
}

static void duplex(int cfd, int afd, size_t total, size_t chunk, uint64_t limit_s)
{
	struct side s[2] = {{.r = &cr, .fd = cfd, .dir = 0}, {.r = &sr, .fd = afd, .dir = 1}};
	uint64_t end = clock_mono_ns() + limit_s * S_NS;

	for (int i = 0; i < 2; i++) {
		s[i].out = malloc(total);
		s[i].in = malloc(total);
		cr_assert(s[i].out && s[i].in);
		for (size_t k = 0; k < total; k++)
			s[i].out[k] = pattern(k, s[i].dir);
	}
	while (s[0].rcvd < total || s[1].rcvd < total || s[0].sent < total || s[1].sent < total) {
		cr_assert_lt(clock_mono_ns(), end,
			     "stalled: client sent %zu rcvd %zu, server sent %zu rcvd %zu of %zu",
			     s[0].sent, s[0].rcvd, s[1].sent, s[1].rcvd, total);
		for (int i = 0; i < 2; i++) {
			side_kick(&s[i], total, chunk);
			side_reap(&s[i]);
		}
	}
	for (int i = 0; i < 2; i++) {
		for (size_t k = 0; k < total; k++)
			if (s[i].in[k] != pattern(k, !s[i].dir))
				cr_assert_fail("side %u: byte %zu of %zu differs", s[i].dir, k,
					       total);
		free(s[i].out);
		free(s[i].in);
	}
}

TestSuite(offload_tcp, .init = setup, .fini = teardown, .timeout = 120);

Test(offload_tcp, a_client_connects_and_a_listener_accepts_across_two_verbs_ports)
{
	int lfd = listener(), cfd, afd;
	struct port_verbs_stats st;

	connect_pair(lfd, &cfd, &afd);
	/* Both ends ran on the verbs ports: the devices carried the handshake. */
	port_verbs_stats(ports[0], &st);
	cr_expect_gt(st.doorbells, 0);
	cr_expect_gt(sv_stats(devs[1]).rx_delivered, 0);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

Test(offload_tcp, streams_a_mebibyte_each_way_at_once_and_every_byte_arrives_in_order)
{
	int lfd = listener(), cfd, afd;

	connect_pair(lfd, &cfd, &afd);
	duplex(cfd, afd, 1u << 20, 65536, 60);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

Test(offload_tcp, a_shutdown_reads_as_end_of_stream_on_the_other_side)
{
	int lfd = listener(), cfd, afd;
	struct xring_sqe *sqe;
	char buf[16];

	connect_pair(lfd, &cfd, &afd);
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, cfd, "last words", 10, 0);
	sqe->user_data = 1;
	sqe = xring_get_sqe(&cr);
	xring_prep_shutdown(sqe, cfd, SHUT_WR);
	sqe->user_data = 2;
	xring_submit(&cr);
	cr_assert_eq(wait_ud(&cr, 1), 10);
	cr_assert_eq(wait_ud(&cr, 2), 0);
	sqe = xring_get_sqe(&sr);
	xring_prep_recv(sqe, afd, buf, sizeof(buf), 0);
	sqe->user_data = 3;
	xring_submit(&sr);
	cr_assert_eq(wait_ud(&sr, 3), 10, "the data, then (next) the end of the stream");
	cr_expect_eq(memcmp(buf, "last words", 10), 0);
	sqe = xring_get_sqe(&sr);
	xring_prep_recv(sqe, afd, buf, sizeof(buf), 0);
	sqe->user_data = 4;
	xring_submit(&sr);
	cr_assert_eq(wait_ud(&sr, 4), 0);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

/*
 * Steering rules outlive the sockets that need them no longer, and no further: the verbs port
 * delivers only what a flow rule asks for, so a connection whose rule went too early would hear
 * nothing more. The listener closes first (its connection keeps the rule), then the client
 * closes (its rule stays until its FIN exchange is over), then the server.
 */
Test(offload_tcp, rules_stay_while_a_connection_needs_them_and_go_with_the_fin_exchange)
{
	int lfd = listener(), cfd, afd;
	struct netport *cn, *sn;
	struct xring_sqe *sqe;
	char buf[16];

	connect_pair(lfd, &cfd, &afd);
	cn = cr.ctx->netports;
	sn = sr.ctx->netports;
	cr_assert(cn && sn);
	cr_expect_eq(netport_steer_count(sn), 1, "the listener and its connection share one rule");
	close_on(&sr, lfd);
	cr_expect_eq(netport_steer_count(sn), 1, "the accepted connection still holds it");
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, cfd, "after", 5, 0);
	sqe->user_data = 1;
	xring_submit(&cr);
	cr_assert_eq(wait_ud(&cr, 1), 5);
	sqe = xring_get_sqe(&sr);
	xring_prep_recv(sqe, afd, buf, sizeof(buf), 0);
	sqe->user_data = 2;
	xring_submit(&sr);
	cr_assert_eq(wait_ud(&sr, 2), 5, "data reaches a connection whose listener is gone");
	/* The client closes first: its FIN, the server's ACK and FIN, its ACK. */
	close_on(&cr, cfd);
	cr_expect_eq(netport_steer_count(cn), 1, "the closing connection keeps its rule");
	sqe = xring_get_sqe(&sr);
	xring_prep_recv(sqe, afd, buf, sizeof(buf), 0);
	sqe->user_data = 3;
	xring_submit(&sr);
	cr_assert_eq(wait_ud(&sr, 3), 0, "the client's FIN");
	close_on(&sr, afd);
	for (uint64_t end = clock_mono_ns() + 10 * S_NS;
	     (netport_steer_count(cn) || netport_steer_count(sn) || tcp_inuse(&sn->tcp)) &&
	     clock_mono_ns() < end;)
		pump();
	cr_expect_eq(tcp_inuse(&sn->tcp), 0, "the server's side ended (the client's ACK came)");
	cr_expect_eq(netport_steer_count(sn), 0, "the server's rule went with it");
	cr_expect_eq(netport_steer_count(cn), 0,
		     "the client's rule went once it reached TIME_WAIT");
	cr_expect_eq(tcp_inuse(&cn->tcp), 1, "the client waits in TIME_WAIT");
}

Test(offload_tcp, a_multishot_accept_takes_several_connections)
{
	int lfd = listener(), cfd[3], afd[3];
	struct sockaddr_in to = sin_of(SERVER_IP, server_port);
	struct xring_sqe *sqe;
	int got = 0;

	sqe = xring_get_sqe(&sr);
	xring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	sqe->user_data = 50;
	xring_submit(&sr);
	for (int i = 0; i < 3; i++) {
		cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
		sqe = xring_get_sqe(&cr);
		xring_prep_connect(sqe, cfd[i], (struct sockaddr *) &to, sizeof(to));
		sqe->user_data = 60 + (uint64_t) i;
	}
	xring_submit(&cr);
	for (int i = 0; i < 3; i++) {
		struct xring_cqe c = wait_cqe(&cr);

		cr_assert_eq(c.res, 0, "connect %llu: %d", (unsigned long long) c.user_data, c.res);
	}
	while (got < 3) {
		struct xring_cqe c = wait_cqe(&sr);

		cr_assert_eq(c.user_data, 50);
		cr_assert_geq(c.res, 0, "accept: %d", c.res);
		cr_assert(c.flags & XRING_CQE_F_MORE,
			  "a multishot accept goes on (flags %#x res %d)", c.flags, c.res);
		afd[got++] = c.res;
	}
	for (int i = 0; i < 3; i++) {
		close_on(&cr, cfd[i]);
		close_on(&sr, afd[i]);
	}
	close(lfd);
}

/* The echo server shape of test_offload_xdp: a multishot receive into a provided buffer ring,
 * each buffer sent straight back. */
Test(offload_tcp, a_multishot_receive_into_a_buffer_ring_echoes_every_byte)
{
	enum {
		NBUF = 16,
		BUFSZ = 4096,
		TOTAL = 256 * 1024
	};
	int lfd = listener(), cfd, afd, ret;
	static uint8_t bufs[NBUF][BUFSZ], out[TOTAL], back[TOTAL];
	struct xring_buf_ring *br = xring_setup_buf_ring(&sr, NBUF, 1, 0, &ret);
	size_t sent = 0, got = 0, echoed = 0;
	uint64_t end = clock_mono_ns() + 60 * S_NS;
	bool csend = false, crecv = false;
	struct xring_sqe *sqe;

	cr_assert_not_null(br, "buffer ring: %d", ret);
	for (int i = 0; i < NBUF; i++)
		xring_buf_ring_add(br, bufs[i], BUFSZ, (unsigned short) i, NBUF - 1, i);
	xring_buf_ring_advance(br, NBUF);
	for (size_t i = 0; i < TOTAL; i++)
		out[i] = pattern(i, 3);
	connect_pair(lfd, &cfd, &afd);
	sqe = xring_get_sqe(&sr);
	xring_prep_recv_multishot(sqe, afd, NULL, 0, 0);
	sqe->flags |= XRING_SQE_BUFFER_SELECT;
	sqe->buf_group = 1;
	sqe->user_data = 7;
	xring_submit(&sr);
	while (got < TOTAL) {
		struct xring_cqe *cqe;

		cr_assert_lt(clock_mono_ns(), end, "echoed %zu, got back %zu of %d", echoed, got,
			     TOTAL);
		if (!csend && sent < TOTAL) {
			sqe = xring_get_sqe(&cr);
			xring_prep_send(sqe, cfd, out + sent,
					TOTAL - sent < 32768 ? TOTAL - sent : 32768, 0);
			sqe->user_data = 1;
			csend = true;
		}
		if (!crecv) {
			sqe = xring_get_sqe(&cr);
			xring_prep_recv(sqe, cfd, back + got, TOTAL - got, 0);
			sqe->user_data = 2;
			crecv = true;
		}
		pump();
		while (xring_peek_cqe(&cr, &cqe) == 0) {
			cr_assert_gt(cqe->res, 0, "client op %llu: %d",
				     (unsigned long long) cqe->user_data, cqe->res);
			if (cqe->user_data == 1) {
				sent += (size_t) cqe->res;
				csend = false;
			} else {
				got += (size_t) cqe->res;
				crecv = false;
			}
			xring_cqe_seen(&cr, cqe);
		}
		while (xring_peek_cqe(&sr, &cqe) == 0) {
			struct xring_cqe c = *cqe;

			xring_cqe_seen(&sr, cqe);
			if (c.user_data == 8) {
				cr_assert_gt(c.res, 0, "echo send: %d", c.res);
				echoed += (size_t) c.res;
				continue;
			}
			cr_assert_eq(c.user_data, 7);
			cr_assert_gt(c.res, 0, "multishot recv: %d", c.res);
			cr_assert(c.flags & XRING_CQE_F_BUFFER);
			cr_assert(c.flags & XRING_CQE_F_MORE, "the multishot receive goes on");
			{
				unsigned bid = c.flags >> XRING_CQE_BUFFER_SHIFT;
				/* The stack copies a send at submission: the buffer is free after.
				 */
				sqe = xring_get_sqe(&sr);
				xring_prep_send(sqe, afd, bufs[bid], (size_t) c.res, MSG_WAITALL);
				sqe->user_data = 8;
				xring_submit(&sr);
				xring_buf_ring_add(br, bufs[bid], BUFSZ, (unsigned short) bid,
						   NBUF - 1, 0);
				xring_buf_ring_advance(br, 1);
			}
		}
	}
	cr_assert_eq(memcmp(out, back, TOTAL), 0, "the echo differs");
	close_on(&cr, cfd);
	/* The multishot receive ends with the connection. */
	close_on(&sr, afd);
	xring_free_buf_ring(&sr, br, NBUF, 1);
	close(lfd);
}

static void setup_lossy(void)
{
	open_ports(&(struct link_opts){.drop_ppm = 10000});
}

TestSuite(offload_tcp_lossy, .init = setup_lossy, .fini = teardown, .timeout = 120);

/* The same stream with 1% of frames lost each way on the client's port (fault decorator). */
Test(offload_tcp_lossy, streams_through_one_percent_loss_each_way)
{
	int lfd = listener(), cfd, afd;
	struct fault_counters tx, rx;

	connect_pair(lfd, &cfd, &afd);
	duplex(cfd, afd, 1u << 20, 65536, 100);
	cr_assert_eq(fault_get_counters(ports[0], &tx, &rx), 0);
	cr_expect_gt(tx.dropped + rx.dropped, 0, "the decorator dropped frames");
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

/* ---- port errors: what sockets see when the port's link goes down or its device fails ---- */

static void submit_recv(struct xring *r, int fd, void *buf, size_t len, uint64_t ud)
{
	struct xring_sqe *sqe = xring_get_sqe(r);

	xring_prep_recv(sqe, fd, buf, len, 0);
	sqe->user_data = ud;
	xring_submit(r);
}

static int32_t send_now(struct xring *r, int fd, const char *msg, uint64_t ud)
{
	struct xring_sqe *sqe = xring_get_sqe(r);

	xring_prep_send(sqe, fd, msg, strlen(msg), 0);
	sqe->user_data = ud;
	xring_submit(r);
	return wait_ud(r, ud);
}

/* Drives both rings until the port reports no error and a ring has seen it; bounded. */
static void wait_port_up(struct port *p)
{
	uint64_t end = clock_mono_ns() + 10 * S_NS;

	while (port_verbs_error(p) != 0) {
		pump();
		cr_assert_lt(clock_mono_ns(), end, "the port did not come back");
	}
	pump();
}

Test(offload_tcp, a_link_down_fails_waiting_operations_with_enetdown_and_the_connection_resumes)
{
	int lfd = listener(), cfd, afd, ufd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = sin_of(SERVER_IP, 9);
	char cbuf[32] = {0}, sbuf[32] = {0}, ubuf[32];
	struct xring_sqe *sqe;
	struct xring_cqe c[2];

	connect_pair(lfd, &cfd, &afd);
	sqe = xring_get_sqe(&cr);
	xring_prep_connect(sqe, ufd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 5;
	xring_submit(&cr);
	cr_assert_eq(wait_ud(&cr, 5), 0, "the UDP socket is offloaded on the same port");
	submit_recv(&cr, cfd, cbuf, sizeof(cbuf), 1);
	submit_recv(&cr, ufd, ubuf, sizeof(ubuf), 2);
	submit_recv(&sr, afd, sbuf, sizeof(sbuf), 3);

	/* The client's link goes down: both receives waiting on its port end with -ENETDOWN. */
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ERR), 0);
	c[0] = wait_cqe(&cr);
	c[1] = wait_cqe(&cr);
	cr_assert_eq(c[0].user_data + c[1].user_data, 3, "the TCP and the UDP receive");
	cr_expect_eq(c[0].res, -ENETDOWN);
	cr_expect_eq(c[1].res, -ENETDOWN);
	cr_expect_eq(port_verbs_error(ports[0]), -ENETDOWN);
	/* New operations too, at once; close and shutdown still work. */
	cr_expect_eq(send_now(&cr, cfd, "while down", 4), -ENETDOWN);
	sqe = xring_get_sqe(&cr);
	xring_prep_recv(sqe, ufd, ubuf, sizeof(ubuf), 0);
	sqe->user_data = 6;
	xring_submit(&cr);
	cr_expect_eq(wait_ud(&cr, 6), -ENETDOWN);
	close_on(&cr, ufd);

	/* The server's port is fine: its receive still waits. The link comes back and the
	 * same connection carries data both ways again. */
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ACTIVE), 0);
	wait_port_up(ports[0]);
	cr_assert_eq(send_now(&cr, cfd, "after the outage", 7), 16);
	cr_assert_eq(wait_ud(&sr, 3), 16, "the server's receive, waiting all along");
	cr_expect_str_eq(sbuf, "after the outage");
	submit_recv(&cr, cfd, cbuf, sizeof(cbuf), 8);
	cr_assert_eq(send_now(&sr, afd, "welcome back", 9), 12);
	cr_assert_eq(wait_ud(&cr, 8), 12);
	cr_expect_str_eq(cbuf, "welcome back");
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

Test(offload_tcp, a_connect_caught_by_a_link_down_fails_with_enetdown_and_can_be_retried)
{
	int lfd = listener(), cfd = socket(AF_INET, SOCK_DGRAM, 0), afd;
	struct sockaddr_in to = sin_of(SERVER_IP, server_port), peer;
	socklen_t plen = sizeof(peer);
	struct xring_sqe *sqe;

	close(cfd);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	/* The server's listener is offloaded (its accept waits), then the server's link goes down:
	 * its accept ends with -ENETDOWN, and the client's SYN is lost on the dead link. */
	sqe = xring_get_sqe(&sr);
	xring_prep_accept(sqe, lfd, (struct sockaddr *) &peer, &plen, 0);
	sqe->user_data = 1;
	xring_submit(&sr);
	cr_assert_eq(sv_port_event(devs[1], IBV_EVENT_PORT_ERR), 0);
	cr_assert_eq(wait_ud(&sr, 1), -ENETDOWN);
	sqe = xring_get_sqe(&cr);
	xring_prep_connect(sqe, cfd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 2;
	xring_submit(&cr);
	/* Now the client's link goes down too: its connect, still waiting, fails. */
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ERR), 0);
	cr_assert_eq(wait_ud(&cr, 2), -ENETDOWN);

	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ACTIVE), 0);
	cr_assert_eq(sv_port_event(devs[1], IBV_EVENT_PORT_ACTIVE), 0);
	wait_port_up(ports[0]);
	wait_port_up(ports[1]);
	sqe = xring_get_sqe(&sr);
	xring_prep_accept(sqe, lfd, (struct sockaddr *) &peer, &plen, 0);
	sqe->user_data = 3;
	xring_submit(&sr);
	sqe = xring_get_sqe(&cr);
	xring_prep_connect(sqe, cfd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 4;
	xring_submit(&cr);
	cr_assert_eq(wait_ud(&cr, 4), 0, "the same socket connects once the links are back");
	afd = wait_ud(&sr, 3);
	cr_assert_geq(afd, 0);
	cr_assert_eq(send_now(&cr, cfd, "hi", 5), 2);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

Test(offload_tcp, a_device_failure_fails_every_operation_with_eio_for_good)
{
	int lfd = listener(), cfd, afd, nfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = sin_of(SERVER_IP, server_port);
	struct port_verbs_stats st;
	struct xring_sqe *sqe;
	char buf[16];

	connect_pair(lfd, &cfd, &afd);
	submit_recv(&cr, cfd, buf, sizeof(buf), 1);
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_DEVICE_FATAL), 0);
	cr_assert_eq(wait_ud(&cr, 1), -EIO);
	cr_expect_eq(send_now(&cr, cfd, "dead", 2), -EIO);
	/* No new socket goes through the failed port. */
	sqe = xring_get_sqe(&cr);
	xring_prep_connect(sqe, nfd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 3;
	xring_submit(&cr);
	cr_expect_eq(wait_ud(&cr, 3), -EIO);
	/* A fatal error stays, even when the link reports itself up. */
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ACTIVE), 0);
	for (int i = 0; i < 4096; i++)
		pump();
	cr_expect_eq(port_verbs_error(ports[0]), -EIO);
	cr_expect_eq(send_now(&cr, cfd, "still dead", 4), -EIO);
	port_verbs_stats(ports[0], &st);
	cr_expect_geq(st.fatal, 1);
	close(nfd);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

/* ---- TSO: the devices cut large TCP sends into MSS-sized frames ---- */

struct tx_work {
	uint64_t wqes, frames, tso_wqes, tso_frames;
};

static struct tx_work stream_and_count(void)
{
	int lfd = listener(), cfd, afd;
	struct tx_work w = {0};

	connect_pair(lfd, &cfd, &afd);
	duplex(cfd, afd, 4u << 20, 262144, 100);
	for (int i = 0; i < 2; i++) {
		struct sv_stats st = sv_stats(devs[i]);

		w.wqes += st.send_wqes;
		w.frames += st.tx_frames;
		w.tso_wqes += st.tso_wqes;
		w.tso_frames += st.tso_frames;
	}
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
	return w;
}

static void setup_tso(void)
{
	open_ports(&(struct link_opts){.tso = true});
}

TestSuite(offload_tcp_tso, .init = setup_tso, .fini = teardown, .timeout = 240);

Test(offload_tcp_tso, streams_the_same_bytes_with_far_fewer_send_work_requests)
{
	struct port_verbs_stats st;
	struct tx_work tso, plain;

	cr_assert(ports[0]->caps & PORT_CAP_TSO, "the port offers TSO where the device has it");
	cr_assert_geq(ports[0]->tso_max, 60000u);
	tso = stream_and_count();
	port_verbs_stats(ports[0], &st);
	cr_expect_gt(st.tso_sends, 0);
	cr_expect_gt(tso.tso_wqes, 0);

	/* The same streams again over devices without TSO. */
	xring_queue_exit(&cr);
	xring_queue_exit(&sr);
	ports_reset();
	open_ports(&(struct link_opts){0});
	cr_assert_not(ports[0]->caps & PORT_CAP_TSO);
	plain = stream_and_count();
	cr_expect_eq(plain.tso_wqes, 0);
	cr_log_info("4 MiB each way: %llu send WQEs with TSO (%llu TSO ones cut into %llu frames; "
		    "%llu frames in all), %llu without (%llu frames)",
		    (unsigned long long) tso.wqes, (unsigned long long) tso.tso_wqes,
		    (unsigned long long) tso.tso_frames, (unsigned long long) tso.frames,
		    (unsigned long long) plain.wqes, (unsigned long long) plain.frames);
	/* Every frame on the wire was MSS-sized or less: the receivers' 2 KiB buffers took them
	 * all, and duplex() checked every byte. The work to post is what shrank. */
	cr_expect_lt(tso.wqes * 2, plain.wqes, "TSO: %llu WQEs, plain: %llu",
		     (unsigned long long) tso.wqes, (unsigned long long) plain.wqes);
	cr_expect_geq(tso.tso_frames, 4 * tso.tso_wqes, "%llu frames from %llu TSO sends",
		      (unsigned long long) tso.tso_frames, (unsigned long long) tso.tso_wqes);
}

static void setup_tso_lossy(void)
{
	open_ports(&(struct link_opts){.tso = true, .drop_ppm = 10000});
}

TestSuite(offload_tcp_tso_lossy, .init = setup_tso_lossy, .fini = teardown, .timeout = 240);

/* A lost TSO send loses all of its segments at once: recovery must still resend every byte. */
Test(offload_tcp_tso_lossy, streams_with_tso_through_one_percent_loss_each_way)
{
	int lfd = listener(), cfd, afd;
	struct fault_counters tx, rx;

	connect_pair(lfd, &cfd, &afd);
	duplex(cfd, afd, 2u << 20, 262144, 200);
	cr_assert_eq(fault_get_counters(ports[0], &tx, &rx), 0);
	cr_expect_gt(tx.dropped + rx.dropped, 0, "the decorator dropped frames");
	cr_expect_gt(sv_stats(devs[0]).tso_wqes, 0);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

/* ---- the same SQE script on an offloaded TCP socket and on a kernel one ---- */

/* The other end of the connection: a kernel socket (over loopback), or xring's server ring. */
struct dpeer {
	bool kernel;
	int fd;
};

struct rec {
	uint64_t ud;
	int32_t res;
	uint32_t flags;
};

static void dreap(int n, struct rec *out, int *nout)
{
	for (int k = 0; k < n; k++) {
		struct xring_cqe c = wait_cqe(&cr);

		out[(*nout)++] = (struct rec){c.user_data, c.res, c.flags};
	}
}

static void dpeer_send(struct dpeer *p, const char *msg)
{
	if (p->kernel)
		cr_assert_eq(send(p->fd, msg, strlen(msg), 0), (ssize_t) strlen(msg));
	else
		cr_assert_eq(send_now(&sr, p->fd, msg, 900), (int32_t) strlen(msg));
}

static void dpeer_expect(struct dpeer *p, const char *msg)
{
	char buf[64] = {0};
	size_t got = 0, want = strlen(msg);

	for (int i = 0; i < 100 && got < want; i++) {
		if (p->kernel) {
			ssize_t n = recv(p->fd, buf + got, want - got, 0);

			cr_assert_gt(n, 0);
			got += (size_t) n;
		} else {
			submit_recv(&sr, p->fd, buf + got, want - got, 901);
			got += (size_t) wait_ud(&sr, 901);
		}
	}
	cr_assert_str_eq(buf, msg);
}

static void dpeer_shut(struct dpeer *p)
{
	if (p->kernel) {
		cr_assert_eq(shutdown(p->fd, SHUT_WR), 0);
	} else {
		struct xring_sqe *sqe = xring_get_sqe(&sr);

		xring_prep_shutdown(sqe, p->fd, SHUT_WR);
		sqe->user_data = 902;
		xring_submit(&sr);
		cr_assert_eq(wait_ud(&sr, 902), 0);
	}
}

static void tcp_script(struct dpeer *p, int lfd, const struct sockaddr_in *dst, struct rec *out,
		       int *n)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[64] = {0};
	struct xring_sqe *sqe;
	/* Written when the accept completes, later than the block that issues it. */
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);

	if (!p->kernel) {
		sqe = xring_get_sqe(&sr);
		xring_prep_accept(sqe, lfd, (struct sockaddr *) &peer, &plen, 0);
		sqe->user_data = 903;
		xring_submit(&sr);
	}
	sqe = xring_get_sqe(&cr);
	xring_prep_connect(sqe, fd, (const struct sockaddr *) dst, sizeof(*dst));
	sqe->user_data = 1;
	xring_submit(&cr);
	dreap(1, out, n);
	p->fd = p->kernel ? accept(lfd, NULL, NULL) : wait_ud(&sr, 903);
	cr_assert_geq(p->fd, 0);
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, fd, "hello", 5, 0);
	sqe->user_data = 2;
	xring_submit(&cr);
	dreap(1, out, n);
	dpeer_expect(p, "hello");
	dpeer_send(p, "world!!");
	sqe = xring_get_sqe(&cr);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), MSG_WAITALL);
	sqe->len = 7;
	sqe->user_data = 3;
	xring_submit(&cr);
	dreap(1, out, n);
	cr_expect_str_eq(buf, "world!!");
	sqe = xring_get_sqe(&cr);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), MSG_DONTWAIT);
	sqe->user_data = 4;
	xring_submit(&cr);
	dreap(1, out, n);
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, fd, "a", 1, 0);
	sqe->flags |= XRING_SQE_IO_LINK;
	sqe->user_data = 5;
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, fd, "bc", 2, 0);
	sqe->user_data = 6;
	xring_submit(&cr);
	dreap(2, out, n);
	dpeer_expect(p, "abc");
	sqe = xring_get_sqe(&cr);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 7;
	sqe = xring_get_sqe(&cr);
	xring_prep_cancel64(sqe, 7, 0);
	sqe->user_data = 8;
	xring_submit(&cr);
	dreap(2, out, n);
	/* The peer's last bytes and its FIN: the data, then the end of the stream. */
	dpeer_send(p, "xyz");
	dpeer_shut(p);
	sqe = xring_get_sqe(&cr);
	xring_prep_recv(sqe, fd, buf, 3, MSG_WAITALL);
	sqe->user_data = 9;
	xring_submit(&cr);
	dreap(1, out, n);
	sqe = xring_get_sqe(&cr);
	xring_prep_recv(sqe, fd, buf, sizeof(buf), 0);
	sqe->user_data = 10;
	xring_submit(&cr);
	dreap(1, out, n);
	sqe = xring_get_sqe(&cr);
	xring_prep_shutdown(sqe, fd, SHUT_WR);
	sqe->user_data = 11;
	xring_submit(&cr);
	dreap(1, out, n);
	sqe = xring_get_sqe(&cr);
	xring_prep_close(sqe, fd);
	sqe->user_data = 12;
	xring_submit(&cr);
	dreap(1, out, n);
	if (p->kernel)
		close(p->fd);
	else
		close_on(&sr, p->fd);
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->ud < y->ud ? -1 : x->ud > y->ud;
}

Test(offload_tcp, an_offloaded_tcp_socket_and_a_kernel_one_give_the_same_cqes)
{
	struct sockaddr_in lo = sin_of("127.0.0.1", 0), to;
	socklen_t len = sizeof(lo);
	struct dpeer kp = {.kernel = true}, op = {.kernel = false};
	int kl = socket(AF_INET, SOCK_STREAM, 0), xl = listener();
	struct rec off[32], ker[32];
	int noff = 0, nker = 0;

	cr_assert_eq(bind(kl, (struct sockaddr *) &lo, sizeof(lo)), 0);
	cr_assert_eq(getsockname(kl, (struct sockaddr *) &lo, &len), 0);
	cr_assert_eq(listen(kl, 4), 0);
	tcp_script(&kp, kl, &lo, ker, &nker);
	to = sin_of(SERVER_IP, server_port);
	tcp_script(&op, xl, &to, off, &noff);
	cr_assert_eq(noff, nker);
	qsort(off, (size_t) noff, sizeof(off[0]), cmp_rec);
	qsort(ker, (size_t) nker, sizeof(ker[0]), cmp_rec);
	for (int i = 0; i < noff; i++) {
		/* Once the FIN is in, Linux's tcp_inq_hint() counts it as a byte to read, so
		 * receives say IORING_CQE_F_SOCK_NONEMPTY even at the end of the stream; xring's
		 * do too. */
		uint32_t kflags = ker[i].flags;

		cr_expect_eq(off[i].ud, ker[i].ud);
		cr_expect_eq(off[i].res, ker[i].res, "request %llu: offloaded %d, kernel %d",
			     (unsigned long long) ker[i].ud, off[i].res, ker[i].res);
		cr_expect_eq(off[i].flags, kflags, "request %llu: flags %#x vs %#x",
			     (unsigned long long) ker[i].ud, off[i].flags, ker[i].flags);
	}
	close(kl);
	close(xl);
}

/* A send that had moved part of its bytes when the link went down ends with that count, as on a
 * kernel socket: the bytes are in the stream, and they all arrive once the link is back. */
Test(offload_tcp, a_send_caught_half_done_by_a_link_down_ends_with_the_bytes_it_moved)
{
	enum {
		BIG = 4 << 20
	};
	int lfd = listener(), cfd, afd;
	static uint8_t out[BIG], in[BIG];
	size_t got = 0;
	struct xring_sqe *sqe;
	struct xring_cqe *cqe;
	int32_t moved;

	for (size_t i = 0; i < BIG; i++)
		out[i] = pattern(i, 5);
	connect_pair(lfd, &cfd, &afd);
	/* The server reads nothing: the send fills the window and the send buffer, then waits. */
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, cfd, out, BIG, MSG_WAITALL);
	sqe->user_data = 1;
	xring_submit(&cr);
	for (int i = 0; i < 20000; i++)
		pump();
	cr_assert_neq(xring_peek_cqe(&cr, &cqe), 0, "4 MiB cannot all be taken");
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ERR), 0);
	moved = wait_ud(&cr, 1);
	cr_assert_gt(moved, 0, "the send ends with the bytes it moved, not %d", moved);
	cr_assert_lt(moved, BIG);
	cr_assert_eq(sv_port_event(devs[0], IBV_EVENT_PORT_ACTIVE), 0);
	wait_port_up(ports[0]);
	while (got < (size_t) moved) {
		submit_recv(&sr, afd, in + got, BIG - got, 2);
		got += (size_t) wait_ud(&sr, 2);
	}
	cr_assert_eq(got, (size_t) moved, "the server got exactly what the send reported");
	cr_assert_eq(memcmp(in, out, got), 0);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}

Test(offload_tcp, a_multishot_receive_ends_without_more_when_the_link_goes_down)
{
	enum {
		NBUF = 4,
		BUFSZ = 1024
	};
	static uint8_t bufs[NBUF][BUFSZ];
	int lfd = listener(), cfd, afd, ret;
	struct xring_buf_ring *br = xring_setup_buf_ring(&sr, NBUF, 2, 0, &ret);
	struct xring_sqe *sqe;
	struct xring_cqe c;

	cr_assert_not_null(br, "buffer ring: %d", ret);
	for (int i = 0; i < NBUF; i++)
		xring_buf_ring_add(br, bufs[i], BUFSZ, (unsigned short) i, NBUF - 1, i);
	xring_buf_ring_advance(br, NBUF);
	connect_pair(lfd, &cfd, &afd);
	sqe = xring_get_sqe(&sr);
	xring_prep_recv_multishot(sqe, afd, NULL, 0, 0);
	sqe->flags |= XRING_SQE_BUFFER_SELECT;
	sqe->buf_group = 2;
	sqe->user_data = 1;
	xring_submit(&sr);
	cr_assert_eq(send_now(&cr, cfd, "one", 2), 3);
	c = wait_cqe(&sr);
	cr_assert_eq(c.user_data, 1);
	cr_assert_eq(c.res, 3);
	cr_assert(c.flags & XRING_CQE_F_MORE);
	cr_assert_eq(sv_port_event(devs[1], IBV_EVENT_PORT_ERR), 0);
	c = wait_cqe(&sr);
	cr_assert_eq(c.user_data, 1);
	cr_expect_eq(c.res, -ENETDOWN);
	cr_expect_not(c.flags & XRING_CQE_F_MORE, "the multishot receive is over");
	close_on(&cr, cfd);
	close_on(&sr, afd);
	xring_free_buf_ring(&sr, br, NBUF, 2);
	close(lfd);
}

/* MSG_WAITALL asks for more than will ever come: the end of the stream ends it with what
 * there was, also when the FIN arrived before the receive was issued. */
Test(offload_tcp, a_waitall_receive_issued_after_the_fin_ends_with_what_there_was)
{
	int lfd = listener(), cfd, afd;
	struct xring_sqe *sqe;
	char buf[16];

	connect_pair(lfd, &cfd, &afd);
	sqe = xring_get_sqe(&cr);
	xring_prep_send(sqe, cfd, "last words", 10, 0);
	sqe->user_data = 1;
	sqe = xring_get_sqe(&cr);
	xring_prep_shutdown(sqe, cfd, SHUT_WR);
	sqe->user_data = 2;
	xring_submit(&cr);
	cr_assert_eq(wait_ud(&cr, 1), 10);
	cr_assert_eq(wait_ud(&cr, 2), 0);
	for (int i = 0; i < 1000; i++)
		pump(); /* the data and the FIN are in before the receive */
	sqe = xring_get_sqe(&sr);
	xring_prep_recv(sqe, afd, buf, sizeof(buf), MSG_WAITALL);
	sqe->user_data = 3;
	xring_submit(&sr);
	cr_assert_eq(wait_ud(&sr, 3), 10);
	cr_expect_eq(memcmp(buf, "last words", 10), 0);
	close_on(&cr, cfd);
	close_on(&sr, afd);
	close(lfd);
}
