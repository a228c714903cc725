/*
 * The xring demo: two processes joined by a memif shared-memory link, each with its own xring,
 * talk TCP on sockets offloaded onto xring's stack: a 64-byte ping-pong, a stream of 64 KiB
 * sends and a pipelined run of 64-byte messages. Then the same workloads on the kernel's TCP
 * over loopback (io_uring, and busy-polling sockets), and a table of both. No root needed.
 *
 * The client prints what each offloaded connection moved, as it counted it from its CQEs. With
 * --hold it keeps those connections open (shut down for writing) after the offloaded part and
 * waits for a line on standard input before it closes them, so xring-stats(1) can be run
 * against it and its per-socket counters compared with the demo's own.
 */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#define MSG        64
#define CHUNK      65536
#define PIPE_DEPTH 32
#define SRV_IP     "198.18.0.2"
#define CLI_IP     "198.18.0.1"
/*
 * The link's settings: the kernel's loopback carries 64 KiB frames, and so does this link, one
 * frame per buffer (a stream pays its per-segment costs, both ends' header work and ACKs, once
 * per 64 KiB instead of once per 9 KB); buffers 64-byte aligned, and few of them, since a small
 * set of buffers stays in the CPUs' caches while a long ring cycles through memory. No TCP
 * checksums, since both ends are ours and the link is memory (the kernel's loopback does not
 * checksum either).
 */
#define LINK       ",mtu=65000,bufsize=65472,ring=32,csum=none"

static int pp_iters = 20000, pp_warmup = 1000, pl_rounds = 5000;
static double stream_secs = 2.0;
/* The server's port: one per run, so two demos at once (a test beside a user) do not meet on
 * the kernel's placeholder for it. */
static uint16_t srv_port = 7000;
static int only = -1; /* --only=N: run workload N alone (0 ping-pong, 1 stream, 2 pipelined) */
static bool hold;
static bool pin = true; /* --no-pin: leave placement to the scheduler */
static int pin_cpus[2] = {-1, -1};

/*
 * Each side of every comparison gets a CPU of its own, the same two CPUs for xring and for the
 * kernel: two spinning peers that the scheduler happens to put on one CPU measure the scheduler
 * instead (a round trip of 5-6 us instead of 1.5 on this kind of 2-vCPU VM), for xring's
 * processes and the kernel's threads alike.
 */
static void pin_pick(void)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			pin_cpus[n++] = c;
	if (n < 2)
		pin_cpus[0] = pin_cpus[1] = -1; /* one CPU: nothing to choose */
}

/* Pins the calling thread to side's CPU (0: client, 1: server). */
static void pin_to(int side)
{
	cpu_set_t set;

	if (!pin || pin_cpus[side] < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(pin_cpus[side], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* What one offloaded connection of the client moved: bytes and CQEs that carried them. */
struct totals {
	int fd;
	uint64_t tx_bytes, tx_packets, rx_bytes, rx_packets;
};

enum {
	TAG_SEND = 1,
	TAG_RECV = 2,
};

static struct totals conns[3], *cur;

struct result {
	double p50_us, p99_us, gbps, msgs;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static void rtt_stats(uint64_t *rtt, int n, struct result *r)
{
	qsort(rtt, (size_t) n, sizeof(*rtt), cmp_u64);
	r->p50_us = (double) rtt[n / 2] / 1e3;
	r->p99_us = (double) rtt[n * 99 / 100] / 1e3;
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "demo: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* xring, one request at a time: the synchronous style keeps the demo readable. */

static int32_t x_wait(struct xring *r, unsigned n)
{
	struct xring_cqe *cqe;
	int32_t res = 0;

	xring_submit_and_wait(r, n);
	for (unsigned i = 0; i < n; i++) {
		if (xring_wait_cqe(r, &cqe))
			die("wait", errno);
		if (cqe->res < 0 || i == 0)
			res = cqe->res;
		if (cur && cqe->res > 0 && cqe->user_data == TAG_SEND) {
			cur->tx_bytes += (uint64_t) cqe->res;
			cur->tx_packets++;
		} else if (cur && cqe->res > 0 && cqe->user_data == TAG_RECV) {
			cur->rx_bytes += (uint64_t) cqe->res;
			cur->rx_packets++;
		}
		xring_cqe_seen(r, cqe);
	}
	return res;
}

static int x_socket_connect(struct xring *r)
{
	struct sockaddr_in srv = sin_of(SRV_IP, srv_port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int32_t res;

	for (int tries = 0; tries < 200; tries++) {
		xring_prep_connect(xring_get_sqe(r), fd, (struct sockaddr *) &srv, sizeof(srv));
		res = x_wait(r, 1);
		if (res == 0)
			return fd;
		if (res != -ECONNREFUSED)
			die("connect", res);
		/* The server is not listening yet: a fresh socket, and again. */
		xring_prep_close(xring_get_sqe(r), fd);
		x_wait(r, 1);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		usleep(10000);
	}
	die("connect", ECONNREFUSED);
	return -1;
}

static void x_close(struct xring *r, int fd)
{
	xring_prep_close(xring_get_sqe(r), fd);
	x_wait(r, 1);
}

/* The client's data operations, tagged so x_wait() counts them. */
static void x_send(struct xring *r, int fd, const void *buf, size_t len)
{
	struct xring_sqe *sqe = xring_get_sqe(r);

	xring_prep_send(sqe, fd, buf, len, 0);
	xring_sqe_set_data64(sqe, TAG_SEND);
}

static void x_recv(struct xring *r, int fd, void *buf, size_t len, int flags)
{
	struct xring_sqe *sqe = xring_get_sqe(r);

	xring_prep_recv(sqe, fd, buf, len, flags);
	xring_sqe_set_data64(sqe, TAG_RECV);
}

/* The end of a client connection; with --hold, only of its sending side, the server sees the
 * end of the stream all the same. */
static void x_done(struct xring *r, int fd)
{
	if (!hold) {
		x_close(r, fd);
		return;
	}
	xring_prep_shutdown(xring_get_sqe(r), fd, SHUT_WR);
	x_wait(r, 1);
}

static void x_ring(struct xring *r, const char *spec)
{
	int ret = xring_port_add(spec);

	if (ret)
		die("xring_port_add", ret);
	ret = xring_queue_init(64, r, 0);
	if (ret)
		die("xring_queue_init", ret);
}

/* The server process: three connections, one per workload. */
static void x_server(const char *spec)
{
	static char buf[CHUNK];
	struct sockaddr_in me = sin_of(SRV_IP, srv_port);
	struct xring r;
	int lfd, fd;
	int32_t n;

	x_ring(&r, spec);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	xring_prep_bind(xring_get_sqe(&r), lfd, (struct sockaddr *) &me, sizeof(me));
	if ((n = x_wait(&r, 1)))
		die("bind", n);
	xring_prep_listen(xring_get_sqe(&r), lfd, 8);
	if ((n = x_wait(&r, 1)))
		die("listen", n);
	for (int phase = 0; phase < 3; phase++) {
		uint64_t total = 0;

		if (only >= 0 && phase != only)
			continue;
		xring_prep_accept(xring_get_sqe(&r), lfd, NULL, NULL, 0);
		fd = x_wait(&r, 1);
		if (fd < 0)
			die("accept", fd);
		for (;;) {
			xring_prep_recv(xring_get_sqe(&r), fd, buf, phase == 0 ? MSG : CHUNK,
					phase != 2 ? MSG_WAITALL : 0);
			n = x_wait(&r, 1);
			if (n <= 0)
				break;
			total += (uint64_t) n;
			if (phase != 1) {
				xring_prep_send(xring_get_sqe(&r), fd, buf, (size_t) n, 0);
				x_wait(&r, 1);
			}
		}
		if (phase == 1) {
			xring_prep_send(xring_get_sqe(&r), fd, &total, sizeof(total), 0);
			x_wait(&r, 1);
		}
		x_close(&r, fd);
	}
	x_close(&r, lfd);
	xring_queue_exit(&r);
}

static void x_client(const char *spec, struct result res[3])
{
	static char buf[CHUNK], in[CHUNK];
	uint64_t *rtt = calloc((size_t) pp_iters, sizeof(*rtt)), t0, total = 0, echoed = 0;
	struct xring r;
	int fd;

	x_ring(&r, spec);
	if (only < 0 || only == 0) {
		printf("  memif link up; 64-byte ping-pong ...\n");
		fflush(stdout);
		fd = x_socket_connect(&r);
		cur = &conns[0];
		cur->fd = fd;
		for (int i = -pp_warmup; i < pp_iters; i++) {
			uint64_t t = now_ns();

			x_send(&r, fd, buf, MSG);
			x_recv(&r, fd, in, MSG, MSG_WAITALL);
			if (x_wait(&r, 2) != MSG)
				die("ping-pong", EIO);
			if (i >= 0)
				rtt[i] = now_ns() - t;
		}
		rtt_stats(rtt, pp_iters, &res[0]);
		x_done(&r, fd);
	}

	if (only < 0 || only == 1) {
		printf("  stream of 64 KiB sends for %.1f s ...\n", stream_secs);
		fflush(stdout);
		fd = x_socket_connect(&r);
		cur = &conns[1];
		cur->fd = fd;
		t0 = now_ns();
		while (now_ns() - t0 < (uint64_t) (stream_secs * 1e9)) {
			x_send(&r, fd, buf, CHUNK);
			if (x_wait(&r, 1) != CHUNK)
				die("stream", EIO);
			total += CHUNK;
		}
		xring_prep_shutdown(xring_get_sqe(&r), fd, SHUT_WR);
		x_wait(&r, 1);
		x_recv(&r, fd, &echoed, sizeof(echoed), MSG_WAITALL);
		x_wait(&r, 1);
		res[1].gbps = (double) echoed * 8 / ((double) (now_ns() - t0));
		if (echoed != total)
			die("stream: bytes lost", EIO);
		if (!hold)
			x_close(&r, fd);
	}

	if (only < 0 || only == 2) {
		printf("  pipelined 64-byte messages, %d in flight ...\n", PIPE_DEPTH);
		fflush(stdout);
		fd = x_socket_connect(&r);
		cur = &conns[2];
		cur->fd = fd;
		t0 = now_ns();
		for (int i = 0; i < pl_rounds; i++) {
			for (int k = 0; k < PIPE_DEPTH; k++)
				x_send(&r, fd, buf + k * MSG, MSG);
			x_recv(&r, fd, in, PIPE_DEPTH * MSG, MSG_WAITALL);
			x_wait(&r, PIPE_DEPTH + 1);
		}
		res[2].msgs = (double) pl_rounds * PIPE_DEPTH * 1e9 / (double) (now_ns() - t0);
		x_done(&r, fd);
	}
	cur = NULL;
	for (int i = 0; i < 3; i++)
		if (conns[i].fd > 0)
			printf("  connection %d fd %d: sent %llu bytes in %llu packets, received %llu "
			       "bytes in %llu packets\n",
			       i + 1, conns[i].fd, (unsigned long long) conns[i].tx_bytes,
			       (unsigned long long) conns[i].tx_packets,
			       (unsigned long long) conns[i].rx_bytes,
			       (unsigned long long) conns[i].rx_packets);
	if (hold) {
		char line[16];

		printf("  holding the connections open: pid %d; press Enter to go on\n",
		       (int) getpid());
		fflush(stdout);
		(void) !fgets(line, sizeof(line), stdin);
		for (int i = 0; i < 3; i++)
			if (conns[i].fd > 0)
				x_close(&r, conns[i].fd);
	}
	xring_queue_exit(&r);
	free(rtt);
}

/* The kernel's TCP over loopback: io_uring (liburing) on both ends, or busy-polling sockets. */

struct kpeer {
	int lfd;
	int mode; /* 0: io_uring, 1: busy-poll */
};

static int k_recv(struct io_uring *ring, int fd, void *buf, size_t len, int flags, int mode)
{
	struct io_uring_cqe *cqe;
	int res;

	if (mode == 1) {
		size_t got = 0;

		do {
			ssize_t n = recv(fd, (char *) buf + got, len - got, MSG_DONTWAIT);

			if (n == 0)
				return (int) got;
			if (n > 0) {
				got += (size_t) n;
				if (!(flags & MSG_WAITALL))
					break;
			}
		} while (got < len);
		return (int) got;
	}
	io_uring_prep_recv(io_uring_get_sqe(ring), fd, buf, len, flags);
	io_uring_submit_and_wait(ring, 1);
	io_uring_wait_cqe(ring, &cqe);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* Returns the bytes the kernel took: an io_uring send may take fewer than asked. */
static size_t k_send(struct io_uring *ring, int fd, const void *buf, size_t len, int mode)
{
	struct io_uring_cqe *cqe;
	int res;

	if (mode == 1) {
		size_t done = 0;

		while (done < len) {
			ssize_t n = send(fd, (const char *) buf + done, len - done, MSG_DONTWAIT);

			if (n > 0)
				done += (size_t) n;
		}
		return done;
	}
	io_uring_prep_send(io_uring_get_sqe(ring), fd, buf, len, 0);
	io_uring_submit_and_wait(ring, 1);
	io_uring_wait_cqe(ring, &cqe);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res > 0 ? (size_t) res : 0;
}

static void *k_server(void *arg)
{
	static char buf[CHUNK];
	struct kpeer *p = arg;
	struct io_uring ring;

	pin_to(1);
	io_uring_queue_init(64, &ring, 0);
	for (int phase = 0; phase < 3; phase++) {
		int fd, one = 1, n;
		uint64_t total = 0;

		if (only >= 0 && phase != only)
			continue;
		fd = accept(p->lfd, NULL, NULL);

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while ((n = k_recv(&ring, fd, buf, phase == 0 ? MSG : CHUNK,
				   phase != 2 ? MSG_WAITALL : 0, p->mode)) > 0) {
			total += (uint64_t) n;
			if (phase != 1)
				k_send(&ring, fd, buf, (size_t) n, p->mode);
		}
		if (phase == 1)
			k_send(&ring, fd, &total, sizeof(total), 0);
		close(fd);
	}
	io_uring_queue_exit(&ring);
	return NULL;
}

static int k_connect(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (connect(fd, (const struct sockaddr *) sa, sizeof(*sa)))
		die("kernel connect", errno);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void k_client(int mode, struct result res[3])
{
	static char buf[CHUNK], in[CHUNK];
	struct sockaddr_in sa = sin_of("127.0.0.1", 0);
	socklen_t len = sizeof(sa);
	uint64_t *rtt = calloc((size_t) pp_iters, sizeof(*rtt)), t0, total = 0, echoed = 0;
	struct kpeer p = {socket(AF_INET, SOCK_STREAM, 0), mode};
	struct io_uring ring;
	pthread_t th;
	int fd;

	bind(p.lfd, (struct sockaddr *) &sa, sizeof(sa));
	listen(p.lfd, 8);
	getsockname(p.lfd, (struct sockaddr *) &sa, &len);
	pthread_create(&th, NULL, k_server, &p);
	io_uring_queue_init(64, &ring, 0);

	if (only < 0 || only == 0) {
		fd = k_connect(&sa);
		for (int i = -pp_warmup; i < pp_iters; i++) {
			uint64_t t = now_ns();

			if (mode == 1) {
				k_send(&ring, fd, buf, MSG, 1);
				k_recv(&ring, fd, in, MSG, MSG_WAITALL, 1);
			} else {
				struct io_uring_cqe *cqe;

				io_uring_prep_send(io_uring_get_sqe(&ring), fd, buf, MSG, 0);
				io_uring_prep_recv(io_uring_get_sqe(&ring), fd, in, MSG,
						   MSG_WAITALL);
				io_uring_submit_and_wait(&ring, 2);
				for (int k = 0; k < 2; k++) {
					io_uring_wait_cqe(&ring, &cqe);
					io_uring_cqe_seen(&ring, cqe);
				}
			}
			if (i >= 0)
				rtt[i] = now_ns() - t;
		}
		rtt_stats(rtt, pp_iters, &res[0]);
		close(fd);
	}

	if (only < 0 || only == 1) {
		fd = k_connect(&sa);
		t0 = now_ns();
		while (now_ns() - t0 < (uint64_t) (stream_secs * 1e9)) {
			total += k_send(&ring, fd, buf, CHUNK, mode);
		}
		shutdown(fd, SHUT_WR);
		k_recv(&ring, fd, &echoed, sizeof(echoed), MSG_WAITALL, 0);
		res[1].gbps = (double) echoed * 8 / ((double) (now_ns() - t0));
		if (echoed != total)
			die("kernel stream: bytes lost", EIO);
		close(fd);
	}

	if (only < 0 || only == 2) {
		fd = k_connect(&sa);
		t0 = now_ns();
		for (int i = 0; i < pl_rounds; i++) {
			if (mode == 1) {
				for (int k = 0; k < PIPE_DEPTH; k++)
					k_send(&ring, fd, buf + k * MSG, MSG, 1);
				k_recv(&ring, fd, in, PIPE_DEPTH * MSG, MSG_WAITALL, 1);
			} else {
				struct io_uring_cqe *cqe;

				for (int k = 0; k < PIPE_DEPTH; k++)
					io_uring_prep_send(io_uring_get_sqe(&ring), fd,
							   buf + k * MSG, MSG, 0);
				io_uring_prep_recv(io_uring_get_sqe(&ring), fd, in,
						   PIPE_DEPTH * MSG, MSG_WAITALL);
				io_uring_submit_and_wait(&ring, PIPE_DEPTH + 1);
				for (int k = 0; k < PIPE_DEPTH + 1; k++) {
					io_uring_wait_cqe(&ring, &cqe);
					io_uring_cqe_seen(&ring, cqe);
				}
			}
		}
		res[2].msgs = (double) pl_rounds * PIPE_DEPTH * 1e9 / (double) (now_ns() - t0);
		close(fd);
	}
	pthread_join(th, NULL);
	io_uring_queue_exit(&ring);
	close(p.lfd);
	free(rtt);
}

int main(int argc, char **argv)
{
	struct result x[3] = {0}, ku[3] = {0}, kb[3] = {0};
	const char *link = getenv("XRING_DEMO_LINK") ? getenv("XRING_DEMO_LINK") : LINK;
	char spec_s[512], spec_c[512];
	bool no_kernel = false;
	int status;
	pid_t pid;

	/* Both sides of the comparison run without Nagle: the kernel sockets set TCP_NODELAY. */
	setenv("XRING_TCP_NODELAY", "1", 0);
	if (argc > 1 && !strcmp(argv[1], "--quick")) { /* the first argument */
		pp_iters = 2000;
		pl_rounds = 500;
		stream_secs = 0.5;
	}
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--only=", 7))
			only = atoi(argv[i] + 7);
		else if (!strcmp(argv[i], "--no-kernel")) /* for profiling */
			no_kernel = true;
		else if (!strcmp(argv[i], "--hold")) /* for xring-stats: see the top */
			hold = true;
		else if (!strcmp(argv[i], "--no-pin"))
			pin = false;
	pin_pick();
	snprintf(spec_s, sizeof(spec_s), "memif:path=@xring-demo-%d,role=server,ip=" SRV_IP "/24%s",
		 (int) getpid(), link);
	snprintf(spec_c, sizeof(spec_c), "memif:path=@xring-demo-%d,role=client,ip=" CLI_IP "/24%s",
		 (int) getpid(), link);
	srv_port = (uint16_t) (20000 + getpid() % 20000);
	printf("xring demo: offloaded TCP between two processes over a memif link\n");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pin_to(1);
		x_server(spec_s);
		_exit(0);
	}
	pin_to(0);
	x_client(spec_c, x);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the server process failed", EIO);

	if (!no_kernel) {
		printf("kernel TCP over loopback, io_uring ...\n");
		fflush(stdout);
		k_client(0, ku);
		printf("kernel TCP over loopback, busy-polling sockets ...\n");
		fflush(stdout);
		k_client(1, kb);
	}

	printf("\n%-34s %12s %12s %12s %14s\n", "", "RTT p50 us", "RTT p99 us", "Gbit/s",
	       "64B msgs/s");
	printf("%-34s %12.2f %12.2f %12.2f %14.0f\n", "xring, offloaded TCP over memif",
	       x[0].p50_us, x[0].p99_us, x[1].gbps, x[2].msgs);
	printf("%-34s %12.2f %12.2f %12.2f %14.0f\n", "kernel loopback TCP, io_uring", ku[0].p50_us,
	       ku[0].p99_us, ku[1].gbps, ku[2].msgs);
	printf("%-34s %12.2f %12.2f %12.2f %14.0f\n", "kernel loopback TCP, busy-poll",
	       kb[0].p50_us, kb[0].p99_us, kb[1].gbps, kb[2].msgs);
	printf("\nratios: RTT %.1fx lower than io_uring, %.1fx lower than busy-poll; "
	       "stream %.2fx kernel; pipelined %.1fx io_uring's messages/s\n",
	       ku[0].p50_us / x[0].p50_us, kb[0].p50_us / x[0].p50_us, x[1].gbps / ku[1].gbps,
	       x[2].msgs / ku[2].msgs);
	return 0;
}
