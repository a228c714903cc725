/*
 * Frames per second for 64-byte frames over AF_XDP on a veth pair, next to a kernel AF_PACKET
 * socket on the same veth, in the same run. Needs root: it creates two network namespaces
 * (198.18.0.1/24 and .2/24 on a veth pair) and removes them at the end.
 *
 *   xdp_pps [seconds per phase, default 1] [rounds, default 3]
 *
 * Prints the median of the rounds for each measurement, with its ratio to AF_PACKET.
 *
 * Send: each sender in namespace A puts frames on its veth end for the period, as fast as it can
 * (AF_PACKET: sendmmsg in batches of 64 with PACKET_QDISC_BYPASS; AF_XDP: tx_alloc / tx_post /
 * tx_flush in batches of 64). The frames are addressed to a MAC nobody has, so the peer drops
 * them at once and the receiving side costs little.
 * Receive: an AF_PACKET sender in namespace B offers frames to A for the period; A receives with
 * an AF_PACKET socket (recvmmsg, batches of 64) or through the AF_XDP port (a steered UDP port).
 * The offered rate bounds both, so it is printed beside them, and for AF_XDP the frames its
 * socket dropped (the rest of any shortfall was lost in the kernel before the XDP program).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nic/port.h"
#include "nic/xdp/xdp_port.h"

#define BATCH     64
#define FRAME_LEN 64
#define UDP_PORT  7000

static char ns_a[32], ns_b[32], if_a[16], if_b[16];
static double period = 1.0;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	return r == -1 || !WIFEXITED(r) ? -1 : WEXITSTATUS(r);
}

static void enter(const char *ns)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static void get_mac(const char *dev, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr)) {
		perror("SIOCGIFHWADDR");
		exit(1);
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);
}

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t) (p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t) ~s;
}

/* A 64-byte Ethernet/IPv4/UDP frame (no FCS), UDP checksum 0 (none). */
static void build_frame(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const char *sip,
			const char *dip)
{
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint16_t c;

	memset(f, 0, FRAME_LEN);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = FRAME_LEN - 14;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	inet_pton(AF_INET, sip, ip + 12);
	inet_pton(AF_INET, dip, ip + 16);
	c = csum(ip, 20);
	ip[10] = (uint8_t) (c >> 8);
	ip[11] = (uint8_t) c;
	udp[0] = UDP_PORT >> 8;
	udp[1] = UDP_PORT & 0xff;
	udp[2] = UDP_PORT >> 8;
	udp[3] = UDP_PORT & 0xff;
	udp[5] = FRAME_LEN - 14 - 20;
}

static int packet_socket(const char *dev, int proto)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons((uint16_t) proto)};
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons((uint16_t) proto)), one = 1;

	sll.sll_ifindex = (int) if_nametoindex(dev);
	if (s < 0 || bind(s, (struct sockaddr *) &sll, sizeof(sll))) {
		perror("AF_PACKET");
		exit(1);
	}
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	return s;
}

/* Send the frame in batches for the period; returns frames the kernel accepted. */
static uint64_t afp_send(int s, const uint8_t *frame, double secs)
{
	struct mmsghdr m[BATCH];
	struct iovec iov = {.iov_base = (void *) frame, .iov_len = FRAME_LEN};
	double end = now_s() + secs;
	uint64_t sent = 0;
	unsigned i;
	int n;

	memset(m, 0, sizeof(m));
	for (i = 0; i < BATCH; i++) {
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (now_s() < end) {
		n = sendmmsg(s, m, BATCH, 0);
		if (n > 0)
			sent += (uint64_t) n;
	}
	return sent;
}

static struct port *open_port(enum port_xdp_attach mode)
{
	/* 8192 receive buffers: about what the AF_PACKET socket's 8 MiB buffer holds of 64-byte
	 * frames. */
	struct port_xdp_config cfg = {.dev = if_a, .attach = mode, .rx_frames = 8192};
	struct port *p = NULL;
	int err = port_xdp_open(&cfg, &p);

	if (err) {
		fprintf(stderr, "port_xdp_open(%s): %s\n", if_a, strerror(-err));
		return NULL;
	}
	return p;
}

static double xdp_send(struct port *p, const uint8_t *frame, double secs)
{
	struct port_queue *q = p->queues[0];
	struct port_frame f[BATCH];
	double t0 = now_s(), end = t0 + secs;
	uint64_t posted = 0;
	int n, i, k;

	while (now_s() < end) {
		n = port_tx_alloc(q, f, BATCH);
		for (i = 0; i < n; i++) {
			memcpy(f[i].data, frame, FRAME_LEN);
			f[i].len = FRAME_LEN;
		}
		k = n > 0 ? port_tx_post(q, f, (unsigned) n) : 0;
		/* Frames not taken stay ours; with ring sizes equal to the buffer count this
		 * does not happen, but keep the accounting honest. */
		posted += (uint64_t) (k > 0 ? k : 0);
		port_tx_flush(q);
		port_tx_reap(q, NULL, 0);
	}
	return (double) posted / (now_s() - t0);
}

/* The receive side's offered load: a child in namespace B sending for the period. */
static pid_t offer(const uint8_t *frame, double secs, int report_fd)
{
	pid_t pid = fork();
	uint64_t sent;

	if (pid == 0) {
		enter(ns_b);
		sent = afp_send(packet_socket(if_b, ETH_P_ALL), frame, secs);
		if (write(report_fd, &sent, sizeof(sent)) != sizeof(sent))
			_exit(1);
		_exit(0);
	}
	return pid;
}

static uint64_t offered(pid_t pid, int fd)
{
	uint64_t sent = 0;

	if (read(fd, &sent, sizeof(sent)) != sizeof(sent))
		sent = 0;
	waitpid(pid, NULL, 0);
	return sent;
}

static uint64_t afp_recv(int s, double secs)
{
	uint8_t bufs[BATCH][128];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	struct timespec to = {0, 1000000};
	double end = now_s() + secs;
	uint64_t got = 0;
	int i, n;

	memset(m, 0, sizeof(m));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (now_s() < end) {
		n = recvmmsg(s, m, BATCH, MSG_DONTWAIT, &to);
		for (i = 0; i < n; i++)
			got += m[i].msg_len == FRAME_LEN && bufs[i][23] == IPPROTO_UDP;
	}
	return got;
}

static uint64_t xdp_recv(struct port *p, double secs)
{
	struct port_frame f[BATCH];
	double end = now_s() + secs;
	uint64_t got = 0;
	unsigned q;
	int n;

	while (now_s() < end) {
		for (q = 0; q < p->nqueues; q++) {
			n = port_rx_poll(p->queues[q], f, BATCH);
			if (n > 0) {
				got += (uint64_t) n;
				port_rx_release(p->queues[q], f, (unsigned) n);
			}
		}
	}
	return got;
}

#define MAX_ROUNDS 9

/* Rates of one kind of measurement over the rounds; the median is reported. */
struct series {
	double v[MAX_ROUNDS];
	double offered[MAX_ROUNDS];
	uint64_t xsk_drops; /* summed over rounds: frames the AF_XDP socket itself dropped */
	unsigned n;
	char name[48];
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double t[MAX_ROUNDS];

	if (!n)
		return 0;
	memcpy(t, v, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void report(const struct series *x, const struct series *base, bool rx)
{
	double m = median(x->v, x->n);

	if (!x->n) {
		printf("%s: not measured\n", x->name);
		return;
	}
	printf("%s 64B: %.3f Mpps", x->name, m / 1e6);
	if (rx)
		printf(" (offered %.3f Mpps)", median(x->offered, x->n) / 1e6);
	if (rx && !strncmp(x->name, "af_xdp", 6))
		printf(" [socket drops %llu]", (unsigned long long) x->xsk_drops);
	if (base && base->n && median(base->v, base->n) > 0)
		printf(", ratio to af_packet %.2f", m / median(base->v, base->n));
	printf("\n");
}

/* The phases alternate within each round, so drift in a shared machine's load hits all alike. */
static void run(unsigned rounds)
{
	static const uint8_t nobody[6] = {0x02, 0x78, 0x72, 0x6e, 0x67, 0x00};
	static const enum port_xdp_attach modes[2] = {PORT_XDP_SKB, PORT_XDP_NATIVE};
	uint8_t mac_a[6], mac_b[6], to_nobody[FRAME_LEN], to_a[FRAME_LEN];
	struct series afp_tx = {.name = "af_packet send"}, afp_rx = {.name = "af_packet receive"};
	struct series xtx[2] = {0}, xrx[2] = {0};
	double rx_secs = period + 0.3;
	struct port_xdp_info info;
	struct port_rule rule = {.kind = PORT_RULE_UDP, .local_port = htons(UDP_PORT)};
	uint64_t got, sent;
	uint32_t handle;
	struct port *p;
	int pfd[2], s;
	unsigned i, r;
	pid_t gen;

	enter(ns_b);
	get_mac(if_b, mac_b);
	enter(ns_a);
	get_mac(if_a, mac_a);
	build_frame(to_nobody, nobody, mac_a, "198.18.0.1", "198.18.0.2");
	build_frame(to_a, mac_a, mac_b, "198.18.0.2", "198.18.0.1");
	if (pipe(pfd))
		exit(1);

	for (r = 0; r < rounds; r++) {
		s = packet_socket(if_a, 0);
		afp_tx.v[afp_tx.n++] = (double) afp_send(s, to_nobody, period) / period;
		close(s);

		s = packet_socket(if_a, ETH_P_ALL);
		/* Room for bursts: the kernel receiver should not lose frames to a small buffer. */
		setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &(int){8 << 20}, sizeof(int));
		gen = offer(to_a, period, pfd[1]);
		got = afp_recv(s, rx_secs);
		sent = offered(gen, pfd[0]);
		close(s);
		afp_rx.offered[afp_rx.n] = (double) sent / period;
		afp_rx.v[afp_rx.n++] = (double) got / period;

		for (i = 0; i < 2; i++) {
			p = open_port(modes[i]);
			if (!p)
				continue;
			port_xdp_info(p, &info);
			snprintf(xtx[i].name, sizeof(xtx[i].name), "af_xdp %s send",
				 port_xdp_mode_name(&info));
			snprintf(xrx[i].name, sizeof(xrx[i].name), "af_xdp %s receive",
				 port_xdp_mode_name(&info));
			xtx[i].v[xtx[i].n++] = xdp_send(p, to_nobody, period);
			if (p->ops->steer(p, &rule, &handle) == 0) {
				gen = offer(to_a, period, pfd[1]);
				got = xdp_recv(p, rx_secs);
				sent = offered(gen, pfd[0]);
				xrx[i].offered[xrx[i].n] = (double) sent / period;
				xrx[i].v[xrx[i].n++] = (double) got / period;
				if (port_xdp_sync_drops(p->queues[0]) == 0)
					xrx[i].xsk_drops += p->queues[0]->stats.rx_drops;
			}
			p->ops->destroy(p);
		}
		fprintf(stderr, "round %u of %u done\n", r + 1, rounds);
	}
	printf("# medians of %u rounds of %.1f s; receive rates are bounded by the offered load\n",
	       rounds, period);
	report(&afp_tx, NULL, false);
	for (i = 0; i < 2; i++)
		report(&xtx[i], &afp_tx, false);
	report(&afp_rx, NULL, true);
	for (i = 0; i < 2; i++)
		report(&xrx[i], &afp_rx, true);
}

static void cleanup(void)
{
	sh("ip netns del %s 2>/dev/null", ns_a);
	sh("ip netns del %s 2>/dev/null", ns_b);
}

int main(int argc, char **argv)
{
	int status = 0, err = 0;
	unsigned rounds = 3;
	pid_t pid;

	if (argc > 1)
		period = atof(argv[1]);
	if (argc > 2)
		rounds = (unsigned) atoi(argv[2]);
	if (period <= 0 || period > 60 || !rounds || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: xdp_pps [seconds per phase, 0-60] [rounds, 1-%d]\n",
			MAX_ROUNDS);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "xdp_pps: needs root (network namespaces, XDP)\n");
		return 77;
	}
	snprintf(ns_a, sizeof(ns_a), "xrb-a-%d", getpid());
	snprintf(ns_b, sizeof(ns_b), "xrb-b-%d", getpid());
	snprintf(if_a, sizeof(if_a), "xba%d", getpid() % 1000000);
	snprintf(if_b, sizeof(if_b), "xbb%d", getpid() % 1000000);
	err |= sh("ip netns add %s && ip netns add %s", ns_a, ns_b);
	err |= sh("ip link add %s netns %s type veth peer name %s netns %s", if_a, ns_a, if_b,
		  ns_b);
	err |= sh("ip -n %s addr add 198.18.0.1/24 dev %s && ip -n %s link set %s up", ns_a, if_a,
		  ns_a, if_a);
	err |= sh("ip -n %s addr add 198.18.0.2/24 dev %s && ip -n %s link set %s up", ns_b, if_b,
		  ns_b, if_b);
	err |= sh("ip netns exec %s ethtool -K %s tx off tso off gso off >/dev/null", ns_b, if_b);
	if (err) {
		fprintf(stderr, "xdp_pps: cannot build the veth topology\n");
		cleanup();
		return 1;
	}
	fflush(NULL);
	/* The measurement runs in a child so that the namespaces go away whatever happens to it. */
	pid = fork();
	if (pid == 0) {
		alarm((unsigned) (period * 12 * rounds + 30));
		run(rounds);
		fflush(NULL);
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	cleanup();
	return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
