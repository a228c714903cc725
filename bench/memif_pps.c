/*
 * memif throughput between two processes over one queue pair: the client sends, the server
 * receives, for 64-byte and 1500-byte frames. The sender writes every byte of each frame (as an
 * application building it would); the receiver checks each frame's sequence number and reads every
 * cache line of it. Beside it, the kernel's AF_PACKET path between two network namespaces joined by
 * a veth pair, in the same run (needs root and ip(8); skipped with a message otherwise).
 *
 * Usage: memif_pps [seconds-per-case]   (default 2)
 * Output: one line per case, then the memif / AF_PACKET ratios.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nic/memif/memif.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

struct result {
	uint64_t frames, bad, touch;
	double secs;
};

static struct port *open_port(const char *path, enum memif_role role)
{
	struct memif_config cfg = {.path = path, .role = role, .id = 1, .retry_ms = 10};
	struct port *p;

	if (memif_port_create(&cfg, &p) < 0)
		return NULL;
	for (int i = 0; i < 5000000 && !memif_connected(p); i++) {
		memif_poll(p);
		if (!memif_connected(p))
			usleep(100);
	}
	return memif_connected(p) ? p : NULL;
}

/* Client: send frames of size bytes until told to stop (SIGTERM) or the link drops. */
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

static void memif_sender(const char *path, size_t size)
{
	struct port *p = open_port(path, MEMIF_ROLE_CLIENT);
	struct port_queue *q;
	struct port_frame f[64];
	uint64_t seq = 0;
	unsigned spin = 0;
	static uint8_t tmpl[2048];

	if (!p)
		_exit(2);
	memset(tmpl, 0x5a, sizeof(tmpl));
	memset(tmpl, 0xff, 12);
	tmpl[12] = 0x88;
	tmpl[13] = 0xb5;
	q = p->queues[0];
	signal(SIGTERM, on_term);
	while (!stop && memif_connected(p)) {
		int n = port_tx_alloc(q, f, 64);

		if (n <= 0) {
			sched_yield();
			if ((++spin & 1023) == 0)
				memif_poll(p);
			continue;
		}
		for (int i = 0; i < n; i++) {
			memcpy((uint8_t *) f[i].data + 14, &seq, 8);
			seq++;
			f[i].len = (uint32_t) size;
		}
		port_tx_post(q, f, (unsigned) n);
		port_tx_flush(q);
	}
	_exit(0);
}

static volatile uint64_t bench_sink; /* keeps the receiver's reads from being optimised out */

static struct result memif_case(size_t size, double secs)
{
	char path[64];
	struct result r = {0};
	struct port *p;
	struct port_queue *q;
	struct port_frame f[256];
	uint64_t expect = 0;
	double t0, end;
	pid_t pid;

	snprintf(path, sizeof(path), "@xring-bench-%d-%zu", getpid(), size);
	{
		struct memif_config cfg = {.path = path, .role = MEMIF_ROLE_SERVER, .id = 1};

		if (memif_port_create(&cfg, &p) < 0)
			return r;
	}
	pid = fork();
	if (pid == 0)
		memif_sender(path, size);
	for (int i = 0; i < 100000 && !memif_connected(p); i++) {
		memif_poll(p);
		usleep(100);
	}
	q = p->queues[0];
	t0 = now_s();
	end = t0 + secs;
	for (unsigned spin = 0;; spin++) {
		int n = port_rx_poll(q, f, 256);

		if (n <= 0) {
			sched_yield();
			if ((spin & 1023) == 0 && now_s() > end)
				break;
			continue;
		}
		for (int i = 0; i < n; i++) {
			uint64_t seq;

			memcpy(&seq, (uint8_t *) f[i].data + 14, 8);
			r.bad += seq != expect || f[i].len != size;
			/* pull every cache line of the frame across, as a consumer of it would */
			for (size_t off = 64; off < f[i].len; off += 64)
				r.touch += ((const uint8_t *) f[i].data)[off];
			expect = seq + 1;
		}
		r.frames += (uint64_t) n;
		port_rx_release(q, f, (unsigned) n);
		if ((spin & 255) == 0 && now_s() > end)
			break;
	}
	r.secs = now_s() - t0;
	bench_sink = r.touch;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	p->ops->destroy(p);
	return r;
}

/* ---- kernel AF_PACKET over veth between two namespaces ---- */

static int sh(const char *cmd)
{
	int st = system(cmd);

	return st == 0 ? 0 : -1;
}

static char ns_a[32], ns_b[32];

static void veth_down(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns_a);
	sh(cmd);
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns_b);
	sh(cmd);
}

static int veth_up(void)
{
	char cmd[512];

	snprintf(ns_a, sizeof(ns_a), "xrb-a-%d", getpid());
	snprintf(ns_b, sizeof(ns_b), "xrb-b-%d", getpid());
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %s && ip netns add %s && "
		 "ip link add xrb0 netns %s type veth peer name xrb1 netns %s && "
		 "ip -n %s link set xrb0 up && ip -n %s link set xrb1 up",
		 ns_a, ns_b, ns_a, ns_b, ns_a, ns_b);
	if (sh(cmd) < 0) {
		veth_down();
		return -1;
	}
	return 0;
}

static int enter_ns(const char *ns)
{
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = setns(fd, CLONE_NEWNET);
	close(fd);
	return ret;
}

static int pkt_socket(const char *dev)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(0x88b5)};
	int big = 8 << 20;

	if (fd < 0)
		return -1;
	sll.sll_ifindex = (int) if_nametoindex(dev);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *) &sll, sizeof(sll)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pkt_sender(size_t size)
{
	static uint8_t frames[64][1514];
	struct mmsghdr mm[64];
	struct iovec iov[64];
	uint64_t seq = 0;
	int fd;

	if (enter_ns(ns_a) < 0 || (fd = pkt_socket("xrb0")) < 0)
		_exit(2);
	signal(SIGTERM, on_term);
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 64; i++) {
		memset(frames[i], 0xff, 12);
		frames[i][12] = 0x88;
		frames[i][13] = 0xb5;
		iov[i].iov_base = frames[i];
		iov[i].iov_len = size;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (!stop) {
		for (int i = 0; i < 64; i++, seq++)
			memcpy(frames[i] + 14, &seq, 8);
		if (sendmmsg(fd, mm, 64, 0) < 0 && errno != ENOBUFS && errno != EAGAIN)
			break;
	}
	_exit(0);
}

static struct result pkt_case(size_t size, double secs)
{
	static uint8_t frames[64][2048];
	struct mmsghdr mm[64];
	struct iovec iov[64];
	struct result r = {0};
	struct timeval tv = {.tv_usec = 100000};
	int fd, self;
	double t0, end;
	pid_t pid;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (enter_ns(ns_b) < 0 || (fd = pkt_socket("xrb1")) < 0) {
		if (self >= 0) {
			setns(self, CLONE_NEWNET);
			close(self);
		}
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 64; i++) {
		iov[i].iov_base = frames[i];
		iov[i].iov_len = sizeof(frames[i]);
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	pid = fork();
	if (pid == 0)
		pkt_sender(size);
	t0 = now_s();
	end = t0 + secs;
	while (now_s() < end) {
		int n = recvmmsg(fd, mm, 64, 0, NULL);

		if (n > 0)
			r.frames += (uint64_t) n;
	}
	r.secs = now_s() - t0;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	close(fd);
	setns(self, CLONE_NEWNET);
	close(self);
	return r;
}

static void report(const char *what, size_t size, const struct result *r)
{
	double pps = r->secs > 0 ? (double) r->frames / r->secs : 0;

	printf("%-24s %5zu B  %8.3f Mpps  %7.3f Gbit/s  (%llu frames in %.2f s, %llu bad)\n", what,
	       size, pps / 1e6, pps * (double) size * 8 / 1e9, (unsigned long long) r->frames,
	       r->secs, (unsigned long long) r->bad);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 1500};
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	struct result m[2], k[2] = {{0}};
	bool have_kernel;

	for (int i = 0; i < 2; i++) {
		m[i] = memif_case(sizes[i], secs);
		report("memif (1 queue)", sizes[i], &m[i]);
	}
	have_kernel = geteuid() == 0 && veth_up() == 0;
	if (!have_kernel) {
		printf("af_packet veth: skipped (needs root and ip(8))\n");
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		k[i] = pkt_case(sizes[i], secs);
		report("kernel AF_PACKET (veth)", sizes[i], &k[i]);
	}
	veth_down();
	for (int i = 0; i < 2; i++) {
		if (k[i].frames && k[i].secs > 0 && m[i].secs > 0)
			printf("ratio memif / AF_PACKET %5zu B: %.1fx\n", sizes[i],
			       ((double) m[i].frames / m[i].secs) /
				       ((double) k[i].frames / k[i].secs));
	}
	return 0;
}
