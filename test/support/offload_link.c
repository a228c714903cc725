#include "offload_link.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cqe/timer.h"
#include "nic/ports.h"
#include "ops/xsock.h"
#include "stack/wire/eth.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/tcp.h"

struct ol ol;
static bool strict_tx;
static bool ring_made; /* ol_setup_with made ol.ring (and so ends it) */
static void (*on_accept)(struct tcb *c);

static struct port_queue *pq(void)
{
	return ol.ends[1]->queues[0];
}

static int peer_tx_alloc(void *ctx, struct iface_txbuf *b)
{
	struct port_frame f;

	if (port_tx_alloc(pq(), &f, 1) != 1) {
		/* A test may make the remote host send many times between two pumps. */
		port_tx_reap(pq(), NULL, 0);
		if (port_tx_alloc(pq(), &f, 1) != 1)
			return -ENOBUFS;
	}
	b->data = f.data;
	b->cap = f.len;
	b->id = f.buf;
	return 0;
}

static void peer_tx_post(void *ctx, const struct iface_txbuf *b)
{
	struct port_frame f[2] = {{.data = b->data, .len = b->len, .buf = (uint32_t) b->id}};
	uint32_t at = ol.tx_split;
	unsigned n = 1;

	if (at && b->len > at) {
		/* A chain, as a peer with jumbo frames in small buffers sends it. */
		cr_assert_eq(port_tx_alloc(pq(), &f[1], 1), 1);
		memcpy(f[1].data, b->data + at, b->len - at);
		f[1].len = b->len - at;
		f[0].len = at;
		f[0].flags = PORT_F_MORE;
		n = 2;
	}
	cr_assert_eq(port_tx_post(pq(), f, n), (int) n);
	port_tx_flush(pq());
}

static void peer_tx_abort(void *ctx, const struct iface_txbuf *b)
{
	struct port_frame f = {.data = b->data, .len = 0, .buf = (uint32_t) b->id};

	cr_assert(!strict_tx, "the remote host never aborts a send here");
	/* memlink has no call to give an unused buffer back: send an empty frame the ring drops */
	port_tx_post(pq(), &f, 1);
}

static const struct iface_dev_ops peer_dev = {peer_tx_alloc, peer_tx_post, peer_tx_abort};

static int peer_udp(void *ctx, uint64_t now, const struct ip4_view *ip, const struct udp_view *udp)
{
	ol.udp_in++;
	return 0;
}

static void peer_accept(void *arg, struct tcb *t, unsigned events)
{
	struct tcb *c;

	while (tcp_accept(t, &c) == 0) {
		ol.accepted = c;
		if (on_accept)
			on_accept(c);
	}
}

void ol_setup(const struct memlink_config *mc)
{
	struct ol_config c = {.link = mc};

	ol_setup_with(&c);
}

void ol_setup_with(const struct ol_config *c)
{
	static const struct memlink_config defaults = {0};
	struct iface_config pc = {0};
	struct iface_hooks hooks = {.udp_input = c->udp_input ? c->udp_input : peer_udp,
				    .tcp_input = c->tcp_input ? c->tcp_input : tcp_input,
				    .icmp_error = tcp_icmp_error,
				    .ctx = &ol.peer_tcp};
	struct tcb *lis;

	memset(&ol, 0, sizeof(ol));
	strict_tx = c->strict_tx;
	ring_made = !c->no_ring;
	on_accept = c->accepted;
	if (c->make_link)
		c->make_link(c->link ? c->link : &defaults, ol.ends);
	else
		cr_assert_eq(memlink_create(c->link ? c->link : &defaults, ol.ends), 0);
	inet_pton(AF_INET, OL_XRING_IP, &ol.ends[0]->ip);
	ol.ends[0]->prefix_len = 24;
	cr_assert_eq(ports_add(ol.ends[0], 0, NULL), 0);
	memcpy(pc.mac, ol.ends[1]->mac, 6);
	inet_pton(AF_INET, OL_PEER_IP, &pc.ip);
	pc.prefix_len = 24;
	cr_assert_eq(iface_init(&ol.peer, &pc, (struct iface_dev){&peer_dev, NULL}, &hooks), 0);
	cr_assert_eq(tcp_init(&ol.peer_tcp, &c->tcp, &ol.peer), 0);
	/* The remote host accepts TCP (on 7001 unless told) and takes whatever arrives. */
	if (!c->no_listener)
		cr_assert_eq(tcp_listen(&ol.peer_tcp, c->listen_port ? c->listen_port : 7001, 8,
					peer_accept, NULL, &lis),
			     0);
	if (ring_made)
		cr_assert_eq(xring_queue_init(c->entries ? c->entries : 16, &ol.ring, 0), 0);
}

void ol_teardown(void)
{
	if (ring_made)
		xring_queue_exit(&ol.ring);
	tcp_fini(&ol.peer_tcp);
	iface_fini(&ol.peer);
	ports_reset();
	ol.ends[1]->ops->destroy(ol.ends[1]);
}

void ol_pump(void)
{
	struct port_frame f[32];
	uint64_t now = clock_mono_ns();
	int n = port_rx_poll(pq(), f, 32);

	for (int i = 0; i < n; i++) {
		if (ol.nframes < OL_FRAMES && f[i].len <= sizeof(ol.frames[0].data)) {
			memcpy(ol.frames[ol.nframes].data, f[i].data, f[i].len);
			ol.frames[ol.nframes].len = f[i].len;
		}
		ol.nframes++;
		iface_input(&ol.peer, now, f[i].data, f[i].len, 0);
	}
	if (n > 0)
		port_rx_release(pq(), f, (unsigned) n);
	iface_poll(&ol.peer, now);
	tcp_poll(&ol.peer_tcp, now);
	port_tx_reap(pq(), NULL, 0);
}

void ol_drive(void)
{
	xring_submit(&ol.ring);
	ol_pump();
}

int32_t ol_run(uint64_t ud)
{
	struct xring_cqe *cqe;
	int32_t res;

	xring_submit(&ol.ring);
	for (int i = 0; i < 100000; i++) {
		if (xring_peek_cqe(&ol.ring, &cqe) == 0) {
			cr_assert_eq(cqe->user_data, ud, "CQE for %llu, expected %llu",
				     (unsigned long long) cqe->user_data, (unsigned long long) ud);
			res = cqe->res;
			xring_cqe_seen(&ol.ring, cqe);
			return res;
		}
		ol_pump();
	}
	cr_assert_fail("no CQE arrived");
	return 0;
}

struct sockaddr_in ol_sin(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

int ol_find_tcp(uint16_t flags, struct tcp_view *v, struct tcp_opts *o)
{
	for (unsigned i = 0; i < ol.nframes && i < OL_FRAMES; i++) {
		const uint8_t *f = ol.frames[i].data;
		size_t len = ol.frames[i].len;

		if (len < ETH_HLEN + IP4_HLEN + TCP_HLEN || f[12] != 0x08 || f[13] != 0 ||
		    f[ETH_HLEN + 9] != IPPROTO_TCP)
			continue;
		if (tcp_parse(f + ETH_HLEN + IP4_HLEN, len - ETH_HLEN - IP4_HLEN, 0, 0, TCP_CSUM_OK,
			      v))
			continue;
		if (v->flags != flags)
			continue;
		memset(o, 0, sizeof(*o));
		cr_assert_eq(tcp_opts_parse(v->opts, v->opts_len, o), 0);
		return 0;
	}
	return -ENOENT;
}

int ol_connect(int type, uint16_t port, int32_t *res)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in to = ol_sin(OL_PEER_IP, port);
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

	cr_assert_geq(fd, 0);
	xring_prep_connect(sqe, fd, (struct sockaddr *) &to, sizeof(to));
	sqe->user_data = 0xc0;
	*res = ol_run(0xc0);
	return fd;
}

int ol_offloaded(int fd)
{
	return xsock_by_fd(ol.ring.ctx, fd) != NULL;
}
