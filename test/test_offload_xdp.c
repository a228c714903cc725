/*
 * An offloaded UDP socket over AF_XDP on a veth pair, against Linux's own UDP in the peer
 * namespace: xring's stack answers ARP for its address (198.18.0.3, beside the kernel's
 * 198.18.0.1 on the same interface), and datagrams go both ways through the XSK while the
 * kernel keeps the rest of the interface's traffic.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xring.h>

#include "nic/ports.h"
#include "nic/xdp/xdp_port.h"
#include "xdp_topo.h"

#define XRING_IP "198.18.0.3"

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

/* Reaps one CQE for ud, driving the ring; bounded. */
static int32_t wait_ud(struct xring *ring, uint64_t ud)
{
	struct __kernel_timespec ts = {2, 0};
	struct xring_cqe *cqe;
	int32_t res;

	CHECK(xring_wait_cqe_timeout(ring, &cqe, &ts) == 0, "no CQE for %llu",
	      (unsigned long long) ud);
	CHECK(cqe->user_data == ud, "CQE %llu, expected %llu", (unsigned long long) cqe->user_data,
	      (unsigned long long) ud);
	res = cqe->res;
	xring_cqe_seen(ring, cqe);
	return res;
}

static void body(const struct topo *t)
{
	struct port_xdp_config c = {.dev = t->if_a,
				    .prefix_len = 24,
				    .attach = PORT_XDP_SKB,
				    .zerocopy = PORT_XDP_ZC_NEVER};
	struct sockaddr_in peer_sa = sin_of(TOPO_IP_B, 7000), me;
	socklen_t len = sizeof(me);
	struct xring ring;
	struct port *p;
	int kfd, fd, rounds;

	topo_enter(t->ns_b);
	kfd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(bind(kfd, (struct sockaddr *) &peer_sa, sizeof(peer_sa)) == 0);

	topo_enter(t->ns_a);
	inet_pton(AF_INET, XRING_IP, &c.ip);
	CHECK(port_xdp_open(&c, &p) == 0, "AF_XDP port on %s", t->if_a);
	CHECK(ports_add(p, 0, NULL) == 0);
	CHECK(xring_queue_init(16, &ring, 0) == 0);
	fd = socket(AF_INET, SOCK_DGRAM, 0);

	xring_prep_connect(xring_get_sqe(&ring), fd, (struct sockaddr *) &peer_sa, sizeof(peer_sa));
	ring.sq.sqes[0].user_data = 1;
	xring_submit(&ring);
	CHECK(wait_ud(&ring, 1) == 0);
	CHECK(getsockname(fd, (struct sockaddr *) &me, &len) == 0);
	CHECK(me.sin_addr.s_addr == inet_addr(XRING_IP), "placeholder bound to the port address");

	for (rounds = 0; rounds < 200; rounds++) {
		char out[64], in[64] = {0}, back[64] = {0};
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct pollfd pfd = {kfd, POLLIN, 0};
		struct xring_sqe *sqe;
		int n = snprintf(out, sizeof(out), "round %d over AF_XDP", rounds);

		sqe = xring_get_sqe(&ring);
		xring_prep_send(sqe, fd, out, (size_t) n, 0);
		sqe->user_data = 2;
		sqe = xring_get_sqe(&ring);
		xring_prep_recv(sqe, fd, back, sizeof(back), 0);
		sqe->user_data = 3;
		xring_submit(&ring);
		CHECK(wait_ud(&ring, 2) == n);
		/* Keep the ring turning (ARP reply, retransmitted requests) until B has it. */
		for (int i = 0; i < 20000 && poll(&pfd, 1, 0) == 0; i++) {
			struct xring_cqe *cqe;

			xring_peek_cqe(&ring, &cqe);
			if (i > 1000)
				usleep(100);
		}
		CHECK(recvfrom(kfd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *) &from,
			       &flen) == n,
		      "round %d: the kernel peer did not get the datagram", rounds);
		CHECK(memcmp(in, out, (size_t) n) == 0);
		CHECK(from.sin_addr.s_addr == inet_addr(XRING_IP) && from.sin_port == me.sin_port,
		      "source %s:%u", inet_ntoa(from.sin_addr), ntohs(from.sin_port));
		in[0] ^= 0x20; /* answer with something different */
		CHECK(sendto(kfd, in, (size_t) n, 0, (struct sockaddr *) &from, flen) == n);
		CHECK(wait_ud(&ring, 3) == n, "round %d: no reply", rounds);
		CHECK(memcmp(back, in, (size_t) n) == 0);
	}
	close(fd);
	xring_queue_exit(&ring);
	ports_reset();
	close(kfd);
}

Test(offload_xdp, udp_crosses_af_xdp_to_linux_and_back)
{
	topo_run(1, 60, body);
}
