/*
 * The AF_XDP port across a veth pair between two network namespaces: xring's port on if_a in A,
 * the kernel in B. Frames are built and checked by hand here, since the stack is not involved.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xdp_topo.h"
#include "nic/port.h"
#include "nic/xdp/xdp_maps.h"
#include "nic/xdp/xdp_port.h"

#define UDP_XR   7000 /* xring's UDP port on the kernel's address 198.18.0.1 */
#define TCP_KERN 7001 /* a kernel TCP listener on the same address */
#define UDP_PEER 6000 /* the peer's kernel UDP socket on 198.18.0.2 */
#define NDGRAMS  32
#define DEADLINE 5.0 /* seconds any single wait may take */

/* --- time and checksums ---------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static uint32_t sum16(const void *p, size_t len, uint32_t sum)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t) (b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t) (b[len - 1] << 8);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t) ~sum;
}

/* Internet checksum of the L4 segment with the IPv4 pseudo-header; 0 when a received segment's
 * checksum is right. */
static uint16_t l4_sum(const uint8_t *ip, const uint8_t *l4, size_t l4len)
{
	uint8_t ph[12];

	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = ip[9];
	ph[10] = (uint8_t) (l4len >> 8);
	ph[11] = (uint8_t) l4len;
	return fold(sum16(l4, l4len, sum16(ph, sizeof(ph), 0)));
}

/* --- frames ---------------------------------------------------------------------------------- */

static void get_mac(const char *dev, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	CHECK(s >= 0 && ioctl(s, SIOCGIFHWADDR, &ifr) == 0, "(%s)", strerror(errno));
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);
}

/* Ethernet + IPv4 + UDP with both checksums; returns the frame length. */
static uint32_t build_udp(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint32_t sip,
			  uint32_t dip, uint16_t sport, uint16_t dport, const void *pay, size_t n)
{
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint16_t ulen = (uint16_t) (8 + n), tlen = (uint16_t) (20 + 8 + n), c;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t) (tlen >> 8);
	ip[3] = (uint8_t) tlen;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	c = fold(sum16(ip, 20, 0));
	ip[10] = (uint8_t) (c >> 8);
	ip[11] = (uint8_t) c;
	udp[0] = (uint8_t) (sport >> 8);
	udp[1] = (uint8_t) sport;
	udp[2] = (uint8_t) (dport >> 8);
	udp[3] = (uint8_t) dport;
	udp[4] = (uint8_t) (ulen >> 8);
	udp[5] = (uint8_t) ulen;
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, pay, n);
	c = l4_sum(ip, udp, ulen);
	if (!c)
		c = 0xffff;
	udp[6] = (uint8_t) (c >> 8);
	udp[7] = (uint8_t) c;
	return 14u + tlen;
}

struct udp_view {
	uint32_t sip, dip;
	uint16_t sport, dport;
	const uint8_t *pay;
	size_t len;
};

/* Parse and verify an Ethernet/IPv4/UDP frame: lengths, both checksums. */
static bool parse_udp_l4(const uint8_t *f, uint32_t len, struct udp_view *v, bool verify_l4)
{
	const uint8_t *ip = f + 14, *udp;
	unsigned ihl, tlen, ulen;

	if (len < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0x00 || (ip[0] >> 4) != 4)
		return false;
	ihl = (ip[0] & 15u) * 4;
	tlen = (unsigned) (ip[2] << 8 | ip[3]);
	if (ihl < 20 || tlen > len - 14 || tlen < ihl + 8 || ip[9] != IPPROTO_UDP)
		return false;
	if (fold(sum16(ip, ihl, 0)) != 0)
		return false;
	udp = ip + ihl;
	ulen = (unsigned) (udp[4] << 8 | udp[5]);
	if (ulen != tlen - ihl)
		return false;
	if (verify_l4 && (udp[6] | udp[7]) && l4_sum(ip, udp, ulen) != 0)
		return false;
	memcpy(&v->sip, ip + 12, 4);
	memcpy(&v->dip, ip + 16, 4);
	v->sport = (uint16_t) (udp[0] << 8 | udp[1]);
	v->dport = (uint16_t) (udp[2] << 8 | udp[3]);
	v->pay = udp + 8;
	v->len = ulen - 8;
	return true;
}

/* --- kernel sockets -------------------------------------------------------------------------- */

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static int udp_socket(const char *ip, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = ip4(ip);
	CHECK(s >= 0);
	CHECK(bind(s, (struct sockaddr *) &sa, sizeof(sa)) == 0, "(bind %s:%u: %s)", ip, port,
	      strerror(errno));
	return s;
}

static void udp_send_to(int s, const char *ip, uint16_t port, const void *buf, size_t n)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

	sa.sin_addr.s_addr = ip4(ip);
	CHECK(sendto(s, buf, n, 0, (struct sockaddr *) &sa, sizeof(sa)) == (ssize_t) n, "(%s)",
	      strerror(errno));
}

/* Receive one datagram within DEADLINE; returns its length or -1. */
static ssize_t recv_within(int s, void *buf, size_t n, double secs)
{
	struct pollfd p = {.fd = s, .events = POLLIN};

	if (poll(&p, 1, (int) (secs * 1000)) <= 0)
		return -1;
	return recv(s, buf, n, MSG_DONTWAIT);
}

/* --- the port -------------------------------------------------------------------------------- */

static bool trust_csum;

static struct port *open_port(const struct topo *t, enum port_xdp_attach mode, uint32_t ip)
{
	struct port_xdp_config cfg = {
		.dev = t->if_a,
		.ip = ip,
		.prefix_len = 24,
		.attach = mode,
		.rx_frames = 512,
		.tx_frames = 512,
		.trust_rx_csum = trust_csum,
	};
	struct port *p = NULL;
	int err;

	err = port_xdp_open(&cfg, &p);
	CHECK(err == 0, "(port_xdp_open %s: %s)", t->if_a, strerror(-err));
	return p;
}

static uint32_t steer(struct port *p, enum port_rule_kind kind, const char *lip, uint16_t lport,
		      const char *rip, uint16_t rport)
{
	struct port_rule r = {
		.kind = kind, .local_port = htons(lport), .remote_port = htons(rport)};
	uint32_t h = 0;
	int err;

	r.local_ip = lip ? ip4(lip) : 0;
	r.remote_ip = rip ? ip4(rip) : 0;
	err = p->ops->steer(p, &r, &h);
	CHECK(err == 0 && h != 0, "(steer: %s)", strerror(-err));
	return h;
}

/* Poll every queue until want frames matched by accept() arrived or the deadline passed; other
 * frames (the kernel's ARP chatter never reaches us, but be safe) are released and ignored.
 * Returns the number accepted. */
typedef bool (*accept_fn)(const struct port_frame *f, unsigned i, void *arg);

static unsigned rx_collect(struct port *p, unsigned want, double secs, accept_fn fn, void *arg)
{
	struct port_frame f[64];
	double end = now_s() + secs;
	unsigned got = 0, q;
	int n, i;

	while (got < want && now_s() < end) {
		for (q = 0; q < p->nqueues; q++) {
			n = port_rx_poll(p->queues[q], f, 64);
			CHECK(n >= 0);
			for (i = 0; i < n; i++)
				if (fn(&f[i], got, arg))
					got++;
			port_rx_release(p->queues[q], f, (unsigned) n);
		}
		if (!got)
			usleep(1000);
	}
	return got;
}

static bool parse_udp(const uint8_t *f, uint32_t len, struct udp_view *v)
{
	return parse_udp_l4(f, len, v, true);
}

struct udp_expect {
	uint32_t flow;
	uint16_t dport, sport;
	uint32_t dip;
	unsigned bad;
	const uint8_t *mac;
};

static bool accept_udp(const struct port_frame *f, unsigned i, void *arg)
{
	struct udp_expect *e = arg;
	struct udp_view v;
	char want[64];

	/* Trusted frames may carry the partial checksum a sender's offload left. */
	if (!parse_udp_l4(f->data, f->len, &v, !(f->flags & PORT_F_RX_L4_CSUM_OK))) {
		e->bad++;
		return false;
	}
	snprintf(want, sizeof(want), "datagram %u", i);
	if (v.dport != e->dport || v.dip != e->dip || memcmp(f->data, e->mac, 6) ||
	    (e->sport && v.sport != e->sport) || f->flow != e->flow || v.len != strlen(want) ||
	    memcmp(v.pay, want, v.len)) {
		e->bad++;
		return false;
	}
	return true;
}

static void send_numbered_from(int s, const char *ip, uint16_t port, unsigned from, unsigned n)
{
	char buf[64];
	unsigned i;

	for (i = from; i < n; i++) {
		snprintf(buf, sizeof(buf), "datagram %u", i);
		udp_send_to(s, ip, port, buf, strlen(buf));
		/* Stay below the peer's qdisc and veth backlog; this is not a load test. */
		if (i % 8 == 7)
			usleep(1000);
	}
}

static void send_numbered(int s, const char *ip, uint16_t port, unsigned n)
{
	send_numbered_from(s, ip, port, 0, n);
}

/* --- bodies ---------------------------------------------------------------------------------- */

static enum port_xdp_attach body_mode = PORT_XDP_SKB;

static void body_udp_from_peer(const struct topo *t)
{
	struct pollfd pfd = {.events = POLLIN};
	struct port_queue *q0;
	struct udp_expect e = {.dport = UDP_XR, .sport = UDP_PEER, .dip = ip4(TOPO_IP_A)};
	struct port_xdp_info info;
	struct port *p;
	uint64_t st[XP_NSTATS];
	unsigned got;
	int s;

	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);
	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0);
	CHECK(port_xdp_info(p, &info) == 0);
	fprintf(stderr, "xdp port on %s: %s (%s)\n", t->if_a, port_xdp_mode_name(&info),
		info.driver);
	CHECK(p->ip == ip4(TOPO_IP_A), "(the netdev's address)");
	e.mac = p->mac;
	e.flow = steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	/* Idle: arm() lets the caller sleep; the wait fd wakes it when frames come. */
	q0 = p->queues[0];
	CHECK(q0->ops->arm(q0) == 0);
	pfd.fd = q0->ops->wait_fd(q0);
	CHECK(pfd.fd >= 0);
	send_numbered(s, TOPO_IP_A, UDP_XR, NDGRAMS);
	if (p->nqueues == 1) {
		CHECK(poll(&pfd, 1, (int) (DEADLINE * 1000)) == 1 && (pfd.revents & POLLIN));
		CHECK(q0->ops->arm(q0) == -EAGAIN, "(work is waiting)");
	}
	got = rx_collect(p, NDGRAMS, DEADLINE, accept_udp, &e);
	CHECK(got == NDGRAMS, "(got %u of %u, %u malformed or unexpected)", got, NDGRAMS, e.bad);
	CHECK(e.bad == 0, "(%u malformed or unexpected frames)", e.bad);
	CHECK(q0->ops->arm(q0) == 0);
	CHECK(port_xdp_prog_stats(p, st, XP_NSTATS) == 0);
	CHECK(st[XP_STAT_STEERED] >= NDGRAMS && st[XP_STAT_NO_XSK] == 0);
	CHECK(p->queues[0]->stats.rx_frames >= NDGRAMS || p->nqueues > 1);
	p->ops->destroy(p);
	close(s);
}

static void body_udp_to_peer(const struct topo *t)
{
	uint8_t peer_mac[6], buf[128];
	struct port_frame f[NDGRAMS];
	unsigned i, got = 0;
	struct sockaddr_in from;
	socklen_t fl;
	struct port *p;
	char want[64];
	ssize_t n;
	int s, k;

	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);
	get_mac(t->if_b, peer_mac);
	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0);

	k = port_tx_alloc(p->queues[0], f, NDGRAMS);
	CHECK(k == NDGRAMS, "(tx_alloc gave %d)", k);
	for (i = 0; i < NDGRAMS; i++) {
		CHECK(f[i].len >= 128);
		snprintf(want, sizeof(want), "datagram %u", i);
		f[i].len = build_udp(f[i].data, peer_mac, p->mac, ip4(TOPO_IP_A), ip4(TOPO_IP_B),
				     UDP_XR, UDP_PEER, want, strlen(want));
	}
	/* Two posts, one doorbell: nothing has to leave before the flush. */
	CHECK(port_tx_post(p->queues[0], f, NDGRAMS / 2) == NDGRAMS / 2);
	CHECK(port_tx_post(p->queues[0], f + NDGRAMS / 2, NDGRAMS / 2) == NDGRAMS / 2);
	CHECK(port_tx_flush(p->queues[0]) == 0);
	for (i = 0; i < NDGRAMS; i++) {
		fl = sizeof(from);
		n = recv_within(s, buf, sizeof(buf) - 1, DEADLINE);
		if (n < 0)
			break;
		buf[n] = 0;
		snprintf(want, sizeof(want), "datagram %u", i);
		CHECK(!strcmp((char *) buf, want), "(got '%s', want '%s')", buf, want);
		got++;
	}
	CHECK(got == NDGRAMS, "(the peer received %u of %u)", got, NDGRAMS);
	fl = sizeof(from);
	(void) fl;
	/* Every send buffer comes back through the completion ring. */
	for (i = 0; i < 1000; i++) {
		port_tx_reap(p->queues[0], NULL, 0);
		k = port_tx_alloc(p->queues[0], f, NDGRAMS);
		if (k == NDGRAMS)
			break;
		CHECK(port_tx_post(p->queues[0], f, 0) == 0);
		usleep(1000);
	}
	CHECK(i < 1000, "(send buffers were not returned)");
	CHECK(p->queues[0]->stats.tx_frames == NDGRAMS);
	CHECK(p->queues[0]->stats.kicks >= 1);
	p->ops->destroy(p);
	close(s);
}

/* Send an ICMP echo request from the current namespace; returns the raw socket to wait on. */
static int icmp_send(const char *dst, uint16_t id, uint16_t seq)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint8_t req[16] = {8, 0, 0, 0};
	uint16_t c;
	int s;

	sa.sin_addr.s_addr = ip4(dst);
	s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	CHECK(s >= 0, "(raw socket: %s)", strerror(errno));
	req[4] = (uint8_t) (id >> 8);
	req[5] = (uint8_t) id;
	req[6] = (uint8_t) (seq >> 8);
	req[7] = (uint8_t) seq;
	memcpy(req + 8, "xringecho", 8);
	c = fold(sum16(req, sizeof(req), 0));
	req[2] = (uint8_t) (c >> 8);
	req[3] = (uint8_t) c;
	CHECK(sendto(s, req, sizeof(req), 0, (struct sockaddr *) &sa, sizeof(sa)) == sizeof(req));
	return s;
}

/* Wait for the reply to icmp_send(dst, id, seq) on s, and close s. */
static bool icmp_wait(int s, const char *dst, uint16_t id, uint16_t seq)
{
	double end = now_s() + DEADLINE;
	uint8_t buf[256];
	uint32_t from = ip4(dst);
	bool ok = false;
	ssize_t n;
	int ihl;

	while (!ok && now_s() < end) {
		n = recv_within(s, buf, sizeof(buf), end - now_s());
		if (n < 20)
			continue;
		ihl = (buf[0] & 15) * 4;
		ok = n >= ihl + 16 && !memcmp(buf + 12, &from, 4) && buf[ihl] == 0 &&
		     buf[ihl + 4] == (uint8_t) (id >> 8) && buf[ihl + 5] == (uint8_t) id &&
		     buf[ihl + 6] == (uint8_t) (seq >> 8) && buf[ihl + 7] == (uint8_t) seq &&
		     !memcmp(buf + ihl + 8, "xringecho", 8);
	}
	close(s);
	return ok;
}

/* A ping, without needing ping(8). */
static bool icmp_echo(const char *dst, uint16_t id, uint16_t seq)
{
	return icmp_wait(icmp_send(dst, id, seq), dst, id, seq);
}

static int tcp_listener(const char *ip, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = ip4(ip);
	CHECK(s >= 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(s, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(s, 4) == 0);
	return s;
}

static void tcp_exchange(const char *ip, uint16_t port, int ls)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char buf[32];
	int c, a;

	sa.sin_addr.s_addr = ip4(ip);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c >= 0);
	CHECK(connect(c, (struct sockaddr *) &sa, sizeof(sa)) == 0, "(connect: %s)",
	      strerror(errno));
	a = accept(ls, NULL, NULL);
	CHECK(a >= 0);
	CHECK(write(c, "ping over tcp", 13) == 13);
	CHECK(recv_within(a, buf, sizeof(buf), DEADLINE) == 13 &&
	      !memcmp(buf, "ping over tcp", 13));
	CHECK(write(a, "pong", 4) == 4);
	CHECK(recv_within(c, buf, sizeof(buf), DEADLINE) == 4 && !memcmp(buf, "pong", 4));
	close(a);
	close(c);
}

static void body_kernel_keeps_working(const struct topo *t)
{
	struct udp_expect e = {.dport = UDP_XR, .sport = UDP_PEER, .dip = ip4(TOPO_IP_A)};
	uint64_t st[XP_NSTATS];
	struct port *p;
	unsigned got, i;
	int s, ls;

	topo_enter(t->ns_a);
	ls = tcp_listener(TOPO_IP_A, TCP_KERN);
	p = open_port(t, body_mode, 0);
	e.mac = p->mac;
	e.flow = steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	/* A TCP listener rule for another port must not catch the kernel's connection either. */
	steer(p, PORT_RULE_TCP, TOPO_IP_A, TCP_KERN + 1, NULL, 0);
	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);

	/* Interleave: xring's UDP flow, the kernel's ICMP, ARP and TCP on the same interface. */
	send_numbered(s, TOPO_IP_A, UDP_XR, NDGRAMS / 2);
	for (i = 0; i < 3; i++)
		CHECK(icmp_echo(TOPO_IP_A, 0x7872, (uint16_t) i), "(ping %u failed)", i);
	tcp_exchange(TOPO_IP_A, TCP_KERN, ls);
	send_numbered_from(s, TOPO_IP_A, UDP_XR, NDGRAMS / 2, NDGRAMS);
	CHECK(netns_sh(t->ns_b, NULL, 0, "ip neigh flush dev %s", t->if_b) == 0);
	CHECK(icmp_echo(TOPO_IP_A, 0x7872, 3), "(ping after flushing the peer's neighbours)");
	got = rx_collect(p, NDGRAMS, DEADLINE, accept_udp, &e);
	CHECK(got == NDGRAMS, "(xring got %u of %u)", got, NDGRAMS);
	CHECK(e.bad == 0);
	CHECK(port_xdp_prog_stats(p, st, XP_NSTATS) == 0);
	CHECK(st[XP_STAT_PASSED] > 0, "(the program passed nothing to the kernel)");
	topo_enter(t->ns_a); /* the port detaches its program in the namespace it was opened in */
	p->ops->destroy(p);
	close(s);
	close(ls);
}

static void body_unsteer(const struct topo *t)
{
	struct udp_expect e = {.dport = UDP_XR, .sport = UDP_PEER, .dip = ip4(TOPO_IP_A)};
	struct port_frame f[16];
	struct port *p;
	unsigned got, i;
	char buf[64];
	int s, ks, n;

	topo_enter(t->ns_a);
	/* A kernel socket on the very port xring steers: it sees the datagrams only once the
	 * rule is gone. */
	ks = udp_socket(TOPO_IP_A, UDP_XR);
	p = open_port(t, body_mode, 0);
	e.mac = p->mac;
	e.flow = steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);

	send_numbered(s, TOPO_IP_A, UDP_XR, 8);
	got = rx_collect(p, 8, DEADLINE, accept_udp, &e);
	CHECK(got == 8, "(xring got %u of 8 while steered)", got);
	CHECK(recv(ks, buf, sizeof(buf), MSG_DONTWAIT) < 0, "(the kernel got a steered datagram)");

	CHECK(p->ops->unsteer(p, e.flow) == 0);
	CHECK(p->ops->unsteer(p, e.flow) == -ENOENT);
	send_numbered(s, TOPO_IP_A, UDP_XR, 8);
	for (i = 0; i < 8; i++)
		CHECK(recv_within(ks, buf, sizeof(buf), DEADLINE) > 0,
		      "(the kernel got %u of 8 after unsteer)", i);
	for (i = 0; i < p->nqueues; i++) {
		n = port_rx_poll(p->queues[i], f, 16);
		CHECK(n == 0, "(xring still received %d frames after unsteer)", n);
	}
	topo_enter(t->ns_a);
	p->ops->destroy(p);
	close(s);
	close(ks);
}

#define TOPO_IP_X "198.18.0.3" /* an address of xring's own on if_a, next to the kernel's */

/* Take frames from every queue until one satisfies want(), answering nothing; copies it out. */
static bool rx_one(struct port *p, bool (*want)(const uint8_t *f, uint32_t len), uint8_t *out,
		   uint32_t *len, uint32_t *flow)
{
	struct port_frame f[16];
	double end = now_s() + DEADLINE;
	bool found = false;
	unsigned q;
	int n, i;

	while (!found && now_s() < end) {
		for (q = 0; q < p->nqueues; q++) {
			n = port_rx_poll(p->queues[q], f, 16);
			for (i = 0; i < n; i++) {
				if (found || !want(f[i].data, f[i].len))
					continue;
				memcpy(out, f[i].data, f[i].len);
				*len = f[i].len;
				*flow = f[i].flow;
				found = true;
			}
			port_rx_release(p->queues[q], f, n > 0 ? (unsigned) n : 0);
		}
		if (!found)
			usleep(1000);
	}
	return found;
}

static bool is_arp_request_for_x(const uint8_t *f, uint32_t len)
{
	uint32_t x = ip4(TOPO_IP_X);

	return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 1 &&
	       !memcmp(f + 38, &x, 4);
}

static bool is_udp_to_x(const uint8_t *f, uint32_t len)
{
	struct udp_view v;

	return parse_udp(f, len, &v) && v.dip == ip4(TOPO_IP_X) && v.dport == UDP_XR;
}

static bool is_echo_to_x(const uint8_t *f, uint32_t len)
{
	uint32_t x = ip4(TOPO_IP_X);

	return len >= 14 + 20 + 8 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45 &&
	       f[23] == IPPROTO_ICMP && !memcmp(f + 30, &x, 4) && f[34] == 8;
}

static void send_one(struct port *p, const uint8_t *frame, uint32_t len)
{
	struct port_frame f;

	CHECK(port_tx_alloc(p->queues[0], &f, 1) == 1);
	memcpy(f.data, frame, len);
	f.len = len;
	CHECK(port_tx_post(p->queues[0], &f, 1) == 1);
	CHECK(port_tx_flush(p->queues[0]) == 0);
}

static void body_arp_and_icmp(const struct topo *t)
{
	uint8_t fr[2048], reply[64];
	uint32_t len, flow, x = ip4(TOPO_IP_X), ha, hi, hu;
	struct port *p;
	uint16_t c;
	int s, is;

	topo_enter(t->ns_a);
	p = open_port(t, body_mode, x);
	CHECK(p->ip == x);
	ha = steer(p, PORT_RULE_ARP, TOPO_IP_X, 0, NULL, 0);
	hi = steer(p, PORT_RULE_ICMP, TOPO_IP_X, 0, NULL, 0);
	hu = steer(p, PORT_RULE_UDP, TOPO_IP_X, UDP_XR, NULL, 0);
	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);

	/* The peer's kernel must resolve 198.18.0.3 first: its ARP request comes to xring. */
	udp_send_to(s, TOPO_IP_X, UDP_XR, "datagram 0", 10);
	CHECK(rx_one(p, is_arp_request_for_x, fr, &len, &flow), "(no ARP request for .3)");
	CHECK(flow == ha, "(flow %u, want the ARP rule's %u)", flow, ha);
	/* Answer it by hand (RFC 826): we are 198.18.0.3 at the port's MAC. */
	memcpy(reply, fr + 6, 6);
	memcpy(reply + 6, p->mac, 6);
	memcpy(reply + 12, fr + 12, 8); /* ethertype, hrd, pro, hln, pln */
	reply[20] = 0;
	reply[21] = 2;
	memcpy(reply + 22, p->mac, 6);
	memcpy(reply + 28, &x, 4);
	memcpy(reply + 32, fr + 22, 10); /* their sha and spa become tha and tpa */
	memset(reply + 42, 0, 18);
	send_one(p, reply, 60);
	/* Now the datagram the kernel held back comes to our MAC. */
	CHECK(rx_one(p, is_udp_to_x, fr, &len, &flow), "(the datagram to .3 never came)");
	CHECK(flow == hu);
	CHECK(!memcmp(fr, p->mac, 6));

	/* An echo request to .3 reaches xring; our reply reaches the peer's raw socket. */
	is = icmp_send(TOPO_IP_X, 0x7878, 1);
	CHECK(rx_one(p, is_echo_to_x, fr, &len, &flow), "(no echo request for .3)");
	CHECK(flow == hi);
	memcpy(reply, fr, 12);
	memcpy(fr, reply + 6, 6);
	memcpy(fr + 6, reply, 6);
	memcpy(reply, fr + 26, 4);
	memcpy(fr + 26, fr + 30, 4);
	memcpy(fr + 30, reply, 4);
	fr[34] = 0;
	fr[36] = fr[37] = 0;
	c = fold(sum16(fr + 34, len - 34, 0));
	fr[36] = (uint8_t) (c >> 8);
	fr[37] = (uint8_t) c;
	send_one(p, fr, len);
	CHECK(icmp_wait(is, TOPO_IP_X, 0x7878, 1), "(the peer did not get xring's echo reply)");

	/* The kernel's own address still answers ARP and ping. */
	CHECK(netns_sh(t->ns_b, NULL, 0, "ip neigh flush dev %s", t->if_b) == 0);
	CHECK(icmp_echo(TOPO_IP_A, 0x7872, 9), "(the kernel's address stopped answering)");
	topo_enter(t->ns_a);
	p->ops->destroy(p);
	close(s);
}

struct spread {
	uint32_t flow;
	unsigned per_queue[XP_MAX_QUEUES];
	unsigned bad;
	uint8_t seen[256];
};

static bool accept_spread(const struct port_frame *f, unsigned i, void *arg)
{
	struct spread *sp = arg;
	struct udp_view v;
	unsigned id;

	if (!parse_udp(f->data, f->len, &v) || v.dport != UDP_XR || f->flow != sp->flow ||
	    sscanf((const char *) v.pay, "flow datagram %u", &id) != 1 || id >= 256 ||
	    sp->seen[id]) {
		sp->bad++;
		return false;
	}
	sp->seen[id] = 1;
	return true;
}

static void body_multi_queue(const struct topo *t)
{
	struct spread sp = {0};
	struct port_frame f[64];
	char buf[64];
	unsigned i, got = 0, q, used = 0;
	struct port *p;
	double end;
	int s[16], n, k;

	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0);
	CHECK(p->nqueues == t->nqueues, "(%u queues, the veth has %u)", p->nqueues, t->nqueues);
	sp.flow = steer(p, PORT_RULE_UDP, NULL, UDP_XR, NULL, 0);
	topo_enter(t->ns_b);
	/* Sixteen source ports, so the peer's transmit hash spreads them over its queues. */
	for (i = 0; i < 16; i++)
		s[i] = udp_socket(TOPO_IP_B, (uint16_t) (UDP_PEER + i));
	for (i = 0; i < 128; i++) {
		snprintf(buf, sizeof(buf), "flow datagram %u", i);
		udp_send_to(s[i % 16], TOPO_IP_A, UDP_XR, buf, strlen(buf));
		if (i % 8 == 7)
			usleep(1000);
	}
	end = now_s() + DEADLINE;
	while (got < 128 && now_s() < end) {
		for (q = 0; q < p->nqueues; q++) {
			n = port_rx_poll(p->queues[q], f, 64);
			for (k = 0; k < n; k++) {
				if (accept_spread(&f[k], got, &sp)) {
					got++;
					sp.per_queue[q]++;
				}
			}
			port_rx_release(p->queues[q], f, n > 0 ? (unsigned) n : 0);
		}
		usleep(500);
	}
	CHECK(got == 128, "(got %u of 128, %u bad)", got, sp.bad);
	for (q = 0; q < p->nqueues; q++) {
		fprintf(stderr, "queue %u: %u frames\n", q, sp.per_queue[q]);
		used += sp.per_queue[q] > 0;
		CHECK(p->queues[q]->stats.rx_frames == sp.per_queue[q]);
	}
	fprintf(stderr, "%u of %u queues received\n", used, p->nqueues);
	topo_enter(t->ns_a);
	p->ops->destroy(p);
	for (i = 0; i < 16; i++)
		close(s[i]);
}

static void body_rules_and_limits(const struct topo *t)
{
	struct port_xdp_config cfg = {.dev = t->if_a, .max_rules = 4, .attach = body_mode};
	struct port_rule r = {.kind = PORT_RULE_TCP};
	struct port_frame f[2];
	uint32_t h[5], hx, key;
	uint8_t mac[6];
	struct port *p = NULL, *p2 = NULL;
	int err;
	unsigned i;

	topo_enter(t->ns_a);
	CHECK(port_xdp_open(&(struct port_xdp_config){.dev = "xr-no-such-dev"}, &p) == -ENODEV);
	CHECK(port_xdp_open(&(struct port_xdp_config){.dev = t->if_a, .frame_size = 1000}, &p) ==
	      -EINVAL);
	CHECK(port_xdp_open(&(struct port_xdp_config){.dev = t->if_a, .rx_frames = 1000}, &p) ==
	      -EINVAL);
	err = port_xdp_open(&cfg, &p);
	CHECK(err == 0, "(%s)", strerror(-err));
	/* What the port knows of its netdev. */
	get_mac(t->if_a, mac);
	CHECK(!memcmp(p->mac, mac, 6));
	CHECK(p->ifindex == if_nametoindex(t->if_a));
	CHECK(p->mtu == 1500 && p->ip == ip4(TOPO_IP_A) && p->prefix_len == 24);
	CHECK(p->caps & PORT_CAP_STEER);
	CHECK(!(p->caps & (PORT_CAP_RX_CSUM | PORT_CAP_TX_CSUM | PORT_CAP_EXTERNAL_TX)));
	/* A second program on the same device is refused, and the first keeps working. */
	err = port_xdp_open(&cfg, &p2);
	CHECK(err < 0 || p2 != NULL);
	if (!err)
		p2->ops->destroy(p2); /* with libxdp's dispatcher both may run */

	/* Rules the program cannot express. */
	CHECK(p->ops->steer(p, &r, &hx) == -EINVAL, "(TCP without a local port)");
	r = (struct port_rule){.kind = PORT_RULE_UDP, .local_port = 1, .remote_ip = 1};
	CHECK(p->ops->steer(p, &r, &hx) == -EINVAL, "(remote address without remote port)");
	r = (struct port_rule){.kind = PORT_RULE_ICMP, .local_port = 1};
	CHECK(p->ops->steer(p, &r, &hx) == -EINVAL, "(ICMP with a port)");
	r = (struct port_rule){.kind = PORT_RULE_UDP, .local_port = 1, .queue = 1};
	CHECK(p->ops->steer(p, &r, &hx) == -EINVAL, "(queue beyond the port's)");
	r = (struct port_rule){.kind = 99};
	CHECK(p->ops->steer(p, &r, &hx) == -EINVAL, "(unknown kind)");

	/* Four rules fit, a fifth does not, a duplicate is refused, a freed slot is reused. */
	for (i = 0; i < 4; i++) {
		r = (struct port_rule){.kind = PORT_RULE_UDP,
				       .local_port = htons((uint16_t) (100 + i))};
		CHECK(p->ops->steer(p, &r, &h[i]) == 0);
	}
	r.local_port = htons(200);
	CHECK(p->ops->steer(p, &r, &h[4]) == -ENOSPC);
	CHECK(p->ops->unsteer(p, h[1]) == 0);
	r.local_port = htons(100);
	CHECK(p->ops->steer(p, &r, &hx) == -EEXIST);
	r.local_port = htons(200);
	CHECK(p->ops->steer(p, &r, &hx) == 0 && hx == h[1]);
	CHECK(p->ops->unsteer(p, 0) == -ENOENT && p->ops->unsteer(p, 77) == -ENOENT);

	/* The data path refuses what it cannot send, and takes the rest. */
	CHECK(p->ops->mem_register(p, mac, sizeof(mac), &key) == -EOPNOTSUPP);
	CHECK(port_tx_alloc(p->queues[0], f, 2) == 2);
	f[0].flags = PORT_F_EXTERNAL;
	CHECK(port_tx_post(p->queues[0], f, 2) == 0);
	f[0].flags = 0;
	f[0].len = 5000;
	CHECK(port_tx_post(p->queues[0], f, 2) == 0, "(longer than its buffer)");
	f[0].len = 60;
	f[0].data = f[1].data;
	CHECK(port_tx_post(p->queues[0], f, 2) == 0, "(data outside the buffer it names)");
	CHECK(p->queues[0]->stats.tx_frames == 0);
	CHECK(port_xdp_prog_stats(p, (uint64_t[XP_NSTATS]){0}, XP_NSTATS) == 0);
	p->ops->destroy(p);

	/* After destroy the device is free for the next port. */
	err = port_xdp_open(&cfg, &p);
	CHECK(err == 0, "(reopen: %s)", strerror(-err));
	p->ops->destroy(p);

	/* Zero-copy on demand: veth has none, so the open fails and leaves nothing attached
	 * (a driver that has it must report it). */
	cfg.attach = PORT_XDP_NATIVE;
	cfg.zerocopy = PORT_XDP_ZC_REQUIRED;
	err = port_xdp_open(&cfg, &p);
	if (!err) {
		struct port_xdp_info info;

		CHECK(port_xdp_info(p, &info) == 0 && info.zerocopy);
		p->ops->destroy(p);
	}
	cfg.zerocopy = PORT_XDP_ZC_TRY;
	err = port_xdp_open(&cfg, &p);
	CHECK(err == 0, "(open after a failed zero-copy open: %s)", strerror(-err));
	p->ops->destroy(p);
}

/* B's kernel with every offload on: checksums arrive partial, which trust_rx_csum accepts. */
static void body_trusted_checksums(const struct topo *t)
{
	struct udp_expect e = {.dport = UDP_XR, .sport = UDP_PEER, .dip = ip4(TOPO_IP_A)};
	struct port_frame f[64];
	unsigned got, q, partial = 0;
	struct port *p;
	int s, n, i;

	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);
	topo_enter(t->ns_a);
	trust_csum = false;
	p = open_port(t, body_mode, 0);
	CHECK(!(p->caps & PORT_CAP_RX_CSUM));
	e.mac = p->mac;
	e.flow = steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	/* Untrusted: the frames come, unflagged, and their UDP checksums do not verify. */
	send_numbered(s, TOPO_IP_A, UDP_XR, 8);
	for (i = 0; i < 5000 && partial < 8; i++) {
		for (q = 0; q < p->nqueues; q++) {
			n = port_rx_poll(p->queues[q], f, 64);
			for (int k = 0; k < n; k++) {
				struct udp_view v;

				CHECK(!(f[k].flags &
					(PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK)));
				CHECK(parse_udp_l4(f[k].data, f[k].len, &v, false));
				partial += !parse_udp(f[k].data, f[k].len, &v);
			}
			port_rx_release(p->queues[q], f, n > 0 ? (unsigned) n : 0);
		}
		usleep(1000);
	}
	CHECK(partial == 8, "(%u of 8 frames had partial checksums: is tx offload on at B?)",
	      partial);
	p->ops->destroy(p);

	trust_csum = true;
	p = open_port(t, body_mode, 0);
	trust_csum = false;
	CHECK(p->caps & PORT_CAP_RX_CSUM);
	e.mac = p->mac;
	e.flow = steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	send_numbered(s, TOPO_IP_A, UDP_XR, NDGRAMS);
	got = rx_collect(p, NDGRAMS, DEADLINE, accept_udp, &e);
	CHECK(got == NDGRAMS && e.bad == 0, "(got %u of %u, %u bad)", got, NDGRAMS, e.bad);
	p->ops->destroy(p);
	close(s);
}

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* B's kernel sends one 16-segment UDP GSO datagram: either the segments arrive one by one, or
 * the whole too-big frame is dropped by the kernel and counted; never lost silently. */
static void body_gso(const struct topo *t)
{
	struct port_frame f[64];
	unsigned got = 0, q;
	static char big[16 * 1000];
	int s, n, i, seg = 1000;
	struct port *p;

	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);
	CHECK(setsockopt(s, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0, "(%s)", strerror(errno));
	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0);
	steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	memset(big, 'g', sizeof(big));
	udp_send_to(s, TOPO_IP_A, UDP_XR, big, sizeof(big));
	for (i = 0; i < 300 && got < 16; i++) {
		for (q = 0; q < p->nqueues; q++) {
			n = port_rx_poll(p->queues[q], f, 64);
			for (int k = 0; k < n; k++)
				CHECK(f[k].len <= 14 + 20 + 8 + 1000u, "(a %u-byte frame)",
				      f[k].len);
			got += n > 0 ? (unsigned) n : 0;
			port_rx_release(p->queues[q], f, n > 0 ? (unsigned) n : 0);
		}
		usleep(10000);
	}
	CHECK(port_xdp_sync_drops(p->queues[0]) == 0);
	fprintf(stderr, "GSO datagram: %u segments arrived, %llu frames dropped by the kernel\n",
		got, (unsigned long long) p->queues[0]->stats.rx_drops);
	CHECK(got == 16 || p->queues[0]->stats.rx_drops > 0,
	      "(%u of 16 segments arrived and no drop was counted)", got);
	p->ops->destroy(p);
	close(s);
}

/* Four times the queue's receive buffers, released one at a time: the fill ring is refilled (in
 * batches) and nothing is lost or left behind. */
static void body_recycling(const struct topo *t)
{
	struct port_frame f[64];
	static uint8_t seen[2048];
	unsigned got = 0, bad = 0, id, k;
	struct udp_view v;
	struct port *p;
	uint32_t flow;
	char buf[32];
	double end;
	int s, n, i;

	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);
	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0); /* 512 receive buffers */
	flow = steer(p, PORT_RULE_UDP, TOPO_IP_A, UDP_XR, NULL, 0);
	end = now_s() + 4 * DEADLINE;
	for (k = 0; k < 2048 && now_s() < end; k++) {
		snprintf(buf, sizeof(buf), "n %u", k);
		udp_send_to(s, TOPO_IP_A, UDP_XR, buf, strlen(buf));
		if (k % 16 != 15)
			continue;
		/* Drain between bursts, so the peer's and the veth's queues never overflow. */
		for (i = 0; i < 50 && got < k + 1; i++) {
			n = port_rx_poll(p->queues[0], f, 64);
			for (int j = 0; j < n; j++) {
				if (parse_udp(f[j].data, f[j].len, &v) && f[j].flow == flow &&
				    sscanf((const char *) v.pay, "n %u", &id) == 1 && id < 2048 &&
				    !seen[id]) {
					seen[id] = 1;
					got++;
				} else {
					bad++;
				}
				port_rx_release(p->queues[0], &f[j], 1);
			}
			if (n <= 0)
				usleep(200);
		}
	}
	CHECK(got == 2048 && bad == 0, "(got %u of 2048, %u bad)", got, bad);
	CHECK(port_xdp_sync_drops(p->queues[0]) == 0 && p->queues[0]->stats.rx_drops == 0);
	CHECK(p->queues[0]->ops->arm(p->queues[0]) == 0);
	p->ops->destroy(p);
	close(s);
}

/* Four times the queue's send buffers in bursts as large as the ring allows: completions recycle
 * them and every flush's kicks push out all it posted (copy mode sends a few dozen per kick). */
static void body_tx_bulk(const struct topo *t)
{
	static uint8_t seen[2048];
	struct port_frame f[512];
	unsigned sent = 0, got = 0, id, i, rounds = 0;
	uint8_t peer_mac[6], buf[64];
	struct port_queue *q;
	struct port *p;
	char pay[32];
	ssize_t n;
	double end;
	int s, k;

	topo_enter(t->ns_b);
	s = udp_socket(TOPO_IP_B, UDP_PEER);
	CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &(int){16 << 20}, sizeof(int)) == 0);
	get_mac(t->if_b, peer_mac);
	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0); /* 512 send buffers */
	q = p->queues[0];
	end = now_s() + 4 * DEADLINE;
	while ((sent < 2048 || got < sent) && now_s() < end) {
		k = sent < 2048 ? port_tx_alloc(q, f, 2048 - sent < 512 ? 2048 - sent : 512) : 0;
		for (i = 0; i < (unsigned) k; i++) {
			snprintf(pay, sizeof(pay), "bulk %u", sent + i);
			f[i].len = build_udp(f[i].data, peer_mac, p->mac, ip4(TOPO_IP_A),
					     ip4(TOPO_IP_B), UDP_XR, UDP_PEER, pay, strlen(pay));
		}
		if (k > 0) {
			CHECK(port_tx_post(q, f, (unsigned) k) == k);
			CHECK(port_tx_flush(q) == 0);
			sent += (unsigned) k;
			rounds++;
		}
		port_tx_reap(q, NULL, 0);
		while ((n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			buf[n] = 0;
			CHECK(sscanf((char *) buf, "bulk %u", &id) == 1 && id < 2048 && !seen[id],
			      "(unexpected '%s')", buf);
			seen[id] = 1;
			got++;
		}
		if (k <= 0)
			usleep(500);
	}
	fprintf(stderr, "bulk send: %u frames in %u bursts, %llu kicks\n", sent, rounds,
		(unsigned long long) q->stats.kicks);
	CHECK(sent == 2048 && got == 2048, "(sent %u, the peer received %u)", sent, got);
	CHECK(q->stats.tx_frames == 2048);
	p->ops->destroy(p);
	close(s);
}

static uint16_t syn_sport;

static bool is_syn_from(const uint8_t *f, uint32_t len)
{
	const uint8_t *tcp = f + 34;

	return len >= 54 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45 &&
	       f[23] == IPPROTO_TCP && (tcp[13] & 0x12) == 0x02 &&
	       (uint16_t) (tcp[0] << 8 | tcp[1]) == syn_sport;
}

/* Open a non-blocking TCP connection from B (bound to sport) to A's steered port. */
static int tcp_connect_from(uint16_t sport, uint16_t dport)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(sport)};
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(dport)};
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	src.sin_addr.s_addr = ip4(TOPO_IP_B);
	dst.sin_addr.s_addr = ip4(TOPO_IP_A);
	CHECK(c >= 0 && bind(c, (struct sockaddr *) &src, sizeof(src)) == 0);
	CHECK(connect(c, (struct sockaddr *) &dst, sizeof(dst)) < 0 && errno == EINPROGRESS);
	return c;
}

/* A TCP connection rule (5-tuple) wins over a listener rule (3-tuple) on the same port; other
 * connections to the port match the listener. */
static void body_tcp_rules(const struct topo *t)
{
	uint32_t listener, conn, len, flow;
	static uint8_t fr[2048];
	struct pollfd pfd = {.events = POLLOUT};
	socklen_t sl = sizeof(int);
	struct port *p;
	int c1, c2, soerr = 0;

	topo_enter(t->ns_a);
	p = open_port(t, body_mode, 0);
	listener = steer(p, PORT_RULE_TCP, TOPO_IP_A, 7002, NULL, 0);
	conn = steer(p, PORT_RULE_TCP, TOPO_IP_A, 7002, TOPO_IP_B, 40001);
	topo_enter(t->ns_b);
	c1 = tcp_connect_from(40001, 7002);
	syn_sport = 40001;
	CHECK(rx_one(p, is_syn_from, fr, &len, &flow), "(no SYN from port 40001)");
	CHECK(flow == conn, "(flow %u: want the connection rule's %u)", flow, conn);
	c2 = tcp_connect_from(40002, 7002);
	syn_sport = 40002;
	CHECK(rx_one(p, is_syn_from, fr, &len, &flow), "(no SYN from port 40002)");
	CHECK(flow == listener, "(flow %u: want the listener rule's %u)", flow, listener);
	/* Without the listener, other connections go to the kernel (which refuses them). */
	CHECK(p->ops->unsteer(p, listener) == 0);
	close(c2);
	c2 = tcp_connect_from(40003, 7002);
	pfd.fd = c2;
	CHECK(poll(&pfd, 1, (int) (DEADLINE * 1000)) == 1);
	getsockopt(c2, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	CHECK(soerr == ECONNREFUSED, "(the kernel should have refused: %s)", strerror(soerr));
	topo_enter(t->ns_a);
	p->ops->destroy(p);
	close(c1);
	close(c2);
}

/* XRING_PORTS text through the conf parser to an open port. */
static void body_from_spec(const struct topo *t)
{
	struct port_xdp_config cfg;
	struct port_xdp_info info;
	struct pspec spec[2];
	char err[128], text[64];
	struct port *p;
	int n, e;

	topo_enter(t->ns_a);
	snprintf(text, sizeof(text), "xdp:dev=%s,mode=skb,queues=2", t->if_a);
	n = pspec_parse(text, spec, 2, err, sizeof(err));
	CHECK(n == 1 && spec[0].kind == PSPEC_XDP, "(%s)", err);
	port_xdp_config_from_spec(&spec[0].xdp, &cfg);
	e = port_xdp_open(&cfg, &p);
	CHECK(e == 0, "(%s)", strerror(-e));
	CHECK(port_xdp_info(p, &info) == 0 && info.attach == PORT_XDP_SKB && !info.zerocopy);
	CHECK(p->nqueues == 2);
	p->ops->destroy(p);
	/* zc on a veth: refused, cleanly. */
	snprintf(text, sizeof(text), "xdp:dev=%s,mode=zc", t->if_a);
	CHECK(pspec_parse(text, spec, 2, err, sizeof(err)) == 1);
	port_xdp_config_from_spec(&spec[0].xdp, &cfg);
	e = port_xdp_open(&cfg, &p);
	if (e == 0) {
		CHECK(port_xdp_info(p, &info) == 0 && info.zerocopy);
		p->ops->destroy(p);
	}
}

/* --- tests ----------------------------------------------------------------------------------- */

TestSuite(xdp_port, .timeout = 120, .fini = netns_cleanup);

Test(xdp_port, udp_from_a_peer_kernel_socket_reaches_rx_poll_intact_in_generic_mode)
{
	body_mode = PORT_XDP_SKB;
	topo_run(1, 30, body_udp_from_peer);
}

Test(xdp_port, udp_from_a_peer_kernel_socket_reaches_rx_poll_intact_in_driver_mode)
{
	body_mode = PORT_XDP_NATIVE;
	topo_run(1, 30, body_udp_from_peer);
}

Test(xdp_port, frames_built_by_hand_reach_a_peer_kernel_udp_socket_in_generic_mode)
{
	body_mode = PORT_XDP_SKB;
	topo_run(1, 30, body_udp_to_peer);
}

Test(xdp_port, frames_built_by_hand_reach_a_peer_kernel_udp_socket_in_driver_mode)
{
	body_mode = PORT_XDP_NATIVE;
	topo_run(1, 30, body_udp_to_peer);
}

Test(xdp_port, kernel_ping_arp_and_tcp_keep_working_beside_steered_udp)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 30, body_kernel_keeps_working);
}

Test(xdp_port, unsteer_hands_the_flow_back_to_the_kernel)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 30, body_unsteer);
}

Test(xdp_port, arp_and_icmp_for_an_address_of_its_own_reach_xring_and_its_replies_the_peer)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 30, body_arp_and_icmp);
}

Test(xdp_port, a_two_queue_veth_gets_a_socket_per_queue_and_loses_nothing_in_driver_mode)
{
	body_mode = PORT_XDP_NATIVE;
	topo_run(2, 30, body_multi_queue);
}

Test(xdp_port, a_two_queue_veth_gets_a_socket_per_queue_and_loses_nothing_in_generic_mode)
{
	body_mode = PORT_XDP_SKB;
	topo_run(2, 30, body_multi_queue);
}

Test(xdp_port, steering_rules_are_validated_limited_and_reused)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 30, body_rules_and_limits);
}

Test(xdp_port, trust_rx_csum_accepts_the_partial_checksums_of_an_offloading_peer)
{
	body_mode = PORT_XDP_AUTO;
	topo_peer_offloads = true;
	topo_run(1, 30, body_trusted_checksums);
}

Test(xdp_port, a_gso_datagram_from_the_peer_arrives_in_segments_or_counts_as_drops_generic)
{
	body_mode = PORT_XDP_SKB;
	topo_peer_offloads = true;
	topo_run(1, 30, body_gso);
}

Test(xdp_port, a_gso_datagram_from_the_peer_arrives_in_segments_or_counts_as_drops_driver)
{
	body_mode = PORT_XDP_NATIVE;
	topo_peer_offloads = true;
	topo_run(1, 30, body_gso);
}

Test(xdp_port, receiving_four_times_its_buffers_recycles_them_through_the_fill_ring)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 60, body_recycling);
}

Test(xdp_port, sending_four_times_its_buffers_in_large_bursts_delivers_every_frame)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 60, body_tx_bulk);
}

Test(xdp_port, a_tcp_connection_rule_wins_over_the_listener_rule_of_its_port)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(1, 30, body_tcp_rules);
}

Test(xdp_port, a_port_spec_from_xring_ports_opens_the_port_it_describes)
{
	body_mode = PORT_XDP_AUTO;
	topo_run(2, 30, body_from_spec);
}
