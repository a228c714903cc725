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
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
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

#define MAX_ROUNDS 50
#define STR(x)     #x
#define XSTR(x)    STR(x)

static int pp_iters = 20000, pp_warmup = 1000, pl_rounds = 5000, rounds = 10;
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
				xring_prep_send(xring_get_sqe(&r), fd, buf, (size_t) n,
						MSG_WAITALL);
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
		unsigned idle = 0;

		do {
			ssize_t n = recv(fd, (char *) buf + got, len - got, MSG_DONTWAIT);

			if (n == 0)
				return (int) got;
			if (n > 0) {
				got += (size_t) n;
				idle = 0;
				if (!(flags & MSG_WAITALL))
					break;
			} else if (n < 0 && errno != EAGAIN) {
				return -errno;
			} else if (++idle == 20000) {
				/* Some milliseconds without data: the other contestants' turn.
				 * Sleep until data comes, as xring's rings do after their spin
				 * budget, so that an idle peer never takes their CPU. */
				struct pollfd p = {.fd = fd, .events = POLLIN};

				poll(&p, 1, -1);
				idle = 0;
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
	struct kpeer *p = arg;
	char *buf = malloc(CHUNK); /* one per server thread: both kernel servers run at once */
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
			for (size_t off = 0, w = 1; phase != 1 && off < (size_t) n && w; off += w)
				w = k_send(&ring, fd, buf + off, (size_t) n - off, p->mode);
		}
		if (phase == 1)
			k_send(&ring, fd, &total, sizeof(total), 0);
		close(fd);
	}
	io_uring_queue_exit(&ring);
	free(buf);
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

/*
 * The comparison. Machines like the VMs this runs on drift between states in which a cache line
 * takes three or four times longer to travel between the two CPUs, for seconds to minutes; a
 * figure measured in one such state and compared with one measured in another says little. So
 * every workload runs in rounds, and each round gives xring, kernel io_uring and kernel
 * busy-polling sockets a slice each, in turn, on connections kept open for the whole workload;
 * a round's figures are compared with each other, and the core-to-core round trip of a cache
 * line measured before the round shows the state the round ran in.
 */
enum {
	XR,
	KU,
	KB,
	NCONT
};

struct client {
	struct xring xr;
	struct io_uring kr;
	struct kpeer kp[2]; /* index: mode, 0 io_uring, 1 busy-poll */
	struct sockaddr_in ka[2];
	pthread_t th[2];
	int fd[NCONT];
	int ncont; /* XR alone with --no-kernel */
};

static char cbuf[CHUNK], cin[CHUNK];

/* The cache line's trip from the client's CPU to the server's and back, in ns; 0 when the two
 * sides do not have CPUs of their own. */
static _Alignas(128) _Atomic uint64_t c2c_ping;
static _Alignas(128) _Atomic uint64_t c2c_pong;
#define C2C_TRIPS 60000 /* the first tenth untimed: the peer's thread gets going */
#define C2C_STOP  UINT64_MAX

static void *c2c_peer(void *arg)
{
	(void) arg;
	pin_to(1);
	for (uint64_t i = 1; i <= C2C_TRIPS; i++) {
		uint64_t v;

		while ((v = atomic_load_explicit(&c2c_ping, memory_order_acquire)) != i)
			if (v == C2C_STOP)
				return NULL;
		atomic_store_explicit(&c2c_pong, i, memory_order_release);
	}
	return NULL;
}

static double c2c_ns(void)
{
	uint64_t t0, spins = 0;
	pthread_t th;

	if (!pin || pin_cpus[0] < 0)
		return 0;
	atomic_store(&c2c_ping, 0);
	atomic_store(&c2c_pong, 0);
	if (pthread_create(&th, NULL, c2c_peer, NULL))
		return 0;
	t0 = now_ns();
	for (uint64_t i = 1; i <= C2C_TRIPS; i++) {
		if (i == C2C_TRIPS / 10)
			t0 = now_ns();
		atomic_store_explicit(&c2c_ping, i, memory_order_release);
		while (atomic_load_explicit(&c2c_pong, memory_order_acquire) != i)
			if (++spins > 500000000u) { /* the peer is not running: give up */
				atomic_store(&c2c_ping, C2C_STOP);
				pthread_join(th, NULL);
				return 0;
			}
	}
	t0 = now_ns() - t0;
	pthread_join(th, NULL);
	return (double) t0 / (C2C_TRIPS - C2C_TRIPS / 10 + 1);
}

/* One 64-byte round trip on the connection of contestant who. */
static void pp_one(struct client *c, int who)
{
	int fd = c->fd[who];

	if (who == XR) {
		x_send(&c->xr, fd, cbuf, MSG);
		x_recv(&c->xr, fd, cin, MSG, MSG_WAITALL);
		if (x_wait(&c->xr, 2) != MSG)
			die("ping-pong", EIO);
	} else if (who == KB) {
		k_send(&c->kr, fd, cbuf, MSG, 1);
		if (k_recv(&c->kr, fd, cin, MSG, MSG_WAITALL, 1) != MSG)
			die("kernel ping-pong", EIO);
	} else {
		struct io_uring_cqe *cqe;

		io_uring_prep_send(io_uring_get_sqe(&c->kr), fd, cbuf, MSG, 0);
		io_uring_prep_recv(io_uring_get_sqe(&c->kr), fd, cin, MSG, MSG_WAITALL);
		io_uring_submit_and_wait(&c->kr, 2);
		for (int k = 0; k < 2; k++) {
			io_uring_wait_cqe(&c->kr, &cqe);
			if (cqe->res < 0)
				die("kernel ping-pong", cqe->res);
			io_uring_cqe_seen(&c->kr, cqe);
		}
	}
}

/* 64 KiB sends for secs; returns the bytes the sends took. */
static uint64_t st_slice(struct client *c, int who, double secs)
{
	uint64_t t0 = now_ns(), bytes = 0;

	while (now_ns() - t0 < (uint64_t) (secs * 1e9)) {
		if (who == XR) {
			int32_t n;

			/* As the kernel's: a send takes what the send buffer has room for. */
			x_send(&c->xr, c->fd[XR], cbuf, CHUNK);
			n = x_wait(&c->xr, 1);
			if (n <= 0)
				die("stream", n ? n : EIO);
			bytes += (uint64_t) n;
		} else {
			bytes += k_send(&c->kr, c->fd[who], cbuf, CHUNK, who == KB);
		}
	}
	return bytes;
}

/* One pipelined round: PIPE_DEPTH messages out, all of them back. */
static void pl_one(struct client *c, int who)
{
	int fd = c->fd[who];

	if (who == XR) {
		for (int k = 0; k < PIPE_DEPTH; k++)
			x_send(&c->xr, fd, cbuf + k * MSG, MSG);
		x_recv(&c->xr, fd, cin, PIPE_DEPTH * MSG, MSG_WAITALL);
		x_wait(&c->xr, PIPE_DEPTH + 1);
	} else if (who == KB) {
		for (int k = 0; k < PIPE_DEPTH; k++)
			k_send(&c->kr, fd, cbuf + k * MSG, MSG, 1);
		if (k_recv(&c->kr, fd, cin, PIPE_DEPTH * MSG, MSG_WAITALL, 1) != PIPE_DEPTH * MSG)
			die("kernel pipelined", EIO);
	} else {
		struct io_uring_cqe *cqe;

		for (int k = 0; k < PIPE_DEPTH; k++)
			io_uring_prep_send(io_uring_get_sqe(&c->kr), fd, cbuf + k * MSG, MSG, 0);
		io_uring_prep_recv(io_uring_get_sqe(&c->kr), fd, cin, PIPE_DEPTH * MSG,
				   MSG_WAITALL);
		io_uring_submit_and_wait(&c->kr, PIPE_DEPTH + 1);
		for (int k = 0; k < PIPE_DEPTH + 1; k++) {
			io_uring_wait_cqe(&c->kr, &cqe);
			io_uring_cqe_seen(&c->kr, cqe);
		}
	}
}

/* What each contestant measured in each round of one workload. */
struct rounds {
	double v[MAX_ROUNDS][NCONT]; /* p50 us, Gbit/s or msgs/s */
	double c2c[MAX_ROUNDS];
	uint64_t *rtt[NCONT];              /* ping-pong: every round's samples, for the totals */
	uint64_t amount[NCONT], ns[NCONT]; /* stream bytes / pipelined messages, and time */
};

static const char *const wl_name[3] = {"64-byte ping-pong, RTT p50 us",
				       "stream of 64 KiB sends, Gbit/s",
				       "pipelined 64-byte messages, 32 in flight, msgs/s"};

/* Runs workload wl's rounds, contestants in turn (each round starts with the next one). */
static void run_rounds(struct client *c, int wl, struct rounds *rs)
{
	int per_pp = pp_iters / rounds, per_pl = pl_rounds / rounds;
	double per_st = stream_secs / rounds;

	printf("  %s; %d rounds of %s:\n", wl_name[wl], rounds,
	       c->ncont > 1 ? "xring / kernel io_uring / kernel busy-poll" : "xring");
	fflush(stdout);
	for (int r = 0; r < rounds; r++) {
		usleep(20000); /* the last slice's peers go to sleep */
		rs->c2c[r] = c2c_ns();
		for (int j = 0; j < c->ncont; j++) {
			int who = (r + j) % c->ncont;
			uint64_t t0;

			usleep(20000); /* the previous contestant's peer settles, then sleeps */
			if (wl == 0) {
				uint64_t *s = rs->rtt[who] + (size_t) r * (size_t) per_pp;
				struct result slice;

				for (int i = 0; i < pp_warmup / rounds; i++)
					pp_one(c, who);
				for (int i = 0; i < per_pp; i++) {
					t0 = now_ns();
					pp_one(c, who);
					s[i] = now_ns() - t0;
				}
				/* Sorting the slice in place leaves the totals as they are. */
				rtt_stats(s, per_pp, &slice);
				rs->v[r][who] = slice.p50_us;
			} else if (wl == 1) {
				uint64_t b;

				t0 = now_ns();
				b = st_slice(c, who, per_st);
				t0 = now_ns() - t0;
				rs->amount[who] += b;
				rs->ns[who] += t0;
				rs->v[r][who] = (double) b * 8 / (double) t0;
			} else {
				t0 = now_ns();
				for (int i = 0; i < per_pl; i++)
					pl_one(c, who);
				t0 = now_ns() - t0;
				rs->amount[who] += (uint64_t) per_pl * PIPE_DEPTH;
				rs->ns[who] += t0;
				rs->v[r][who] = (double) per_pl * PIPE_DEPTH * 1e9 / (double) t0;
			}
		}
		printf("    round %2d:", r + 1);
		for (int j = 0; j < c->ncont; j++)
			printf(wl == 2 ? " %10.0f" : " %8.2f", rs->v[r][j]);
		if (rs->c2c[r] > 0)
			printf("   (cache line between the CPUs and back: %.0f ns)", rs->c2c[r]);
		printf("\n");
		fflush(stdout);
	}
}

/* The end of a workload's connections: the stream's are checked for lost bytes. */
static void end_workload(struct client *c, int wl, const uint64_t sent[NCONT])
{
	for (int who = 0; who < c->ncont; who++) {
		uint64_t echoed = 0;

		if (who == XR) {
			if (wl == 1) {
				xring_prep_shutdown(xring_get_sqe(&c->xr), c->fd[XR], SHUT_WR);
				x_wait(&c->xr, 1);
				x_recv(&c->xr, c->fd[XR], &echoed, sizeof(echoed), MSG_WAITALL);
				x_wait(&c->xr, 1);
				if (!hold)
					x_close(&c->xr, c->fd[XR]);
			} else {
				x_done(&c->xr, c->fd[XR]);
			}
		} else {
			if (wl == 1) {
				shutdown(c->fd[who], SHUT_WR);
				k_recv(&c->kr, c->fd[who], &echoed, sizeof(echoed), MSG_WAITALL, 0);
			}
			close(c->fd[who]);
		}
		if (wl == 1 && echoed != sent[who])
			die(who == XR ? "stream: bytes lost" : "kernel stream: bytes lost", EIO);
	}
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* The rounds' ratios of contestant a's figure to b's (b's to a's where lower is better): the
 * lowest, the median and the highest. */
static void ratios(const struct rounds *rs, int a, int b, bool lower_better, double q[3])
{
	double v[MAX_ROUNDS];

	for (int r = 0; r < rounds; r++)
		v[r] = lower_better ? rs->v[r][b] / rs->v[r][a] : rs->v[r][a] / rs->v[r][b];
	qsort(v, (size_t) rounds, sizeof(v[0]), cmp_dbl);
	q[0] = v[0];
	q[1] = rounds % 2 ? v[rounds / 2] : (v[rounds / 2 - 1] + v[rounds / 2]) / 2;
	q[2] = v[rounds - 1];
}

static void client(const char *spec, bool no_kernel)
{
	static struct rounds rs[3];
	struct client c = {.ncont = no_kernel ? 1 : NCONT};
	struct result res[NCONT][3] = {0};

	x_ring(&c.xr, spec);
	if (!no_kernel) {
		for (int m = 0; m < 2; m++) {
			socklen_t len = sizeof(c.ka[m]);

			c.ka[m] = sin_of("127.0.0.1", 0);
			c.kp[m] = (struct kpeer){socket(AF_INET, SOCK_STREAM, 0), m};
			if (bind(c.kp[m].lfd, (struct sockaddr *) &c.ka[m], sizeof(c.ka[m])) ||
			    listen(c.kp[m].lfd, 8) ||
			    getsockname(c.kp[m].lfd, (struct sockaddr *) &c.ka[m], &len))
				die("kernel listener", errno);
			pthread_create(&c.th[m], NULL, k_server, &c.kp[m]);
		}
		if (io_uring_queue_init(64, &c.kr, 0))
			die("io_uring_queue_init", ENOMEM);
	}
	for (int who = 0; who < NCONT; who++)
		rs[0].rtt[who] = calloc((size_t) pp_iters, sizeof(uint64_t));

	for (int wl = 0; wl < 3; wl++) {
		uint64_t sent[NCONT];

		if (only >= 0 && wl != only)
			continue;
		c.fd[XR] = x_socket_connect(&c.xr);
		conns[wl].fd = c.fd[XR];
		for (int m = 0; m < 2 && !no_kernel; m++)
			c.fd[KU + m] = k_connect(&c.ka[m]);
		cur = &conns[wl];
		run_rounds(&c, wl, &rs[wl]);
		for (int who = 0; who < NCONT; who++)
			sent[who] = rs[wl].amount[who];
		end_workload(&c, wl, sent);
		cur = NULL;

		for (int who = 0; who < c.ncont; who++) {
			if (wl == 0) {
				int n = pp_iters / rounds * rounds;

				rtt_stats(rs[0].rtt[who], n, &res[who][0]);
			} else if (wl == 1) {
				res[who][1].gbps =
					(double) rs[1].amount[who] * 8 / (double) rs[1].ns[who];
			} else {
				res[who][2].msgs =
					(double) rs[2].amount[who] * 1e9 / (double) rs[2].ns[who];
			}
		}
	}

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
				x_close(&c.xr, conns[i].fd);
	}
	xring_queue_exit(&c.xr);
	if (!no_kernel) {
		for (int m = 0; m < 2; m++) {
			pthread_join(c.th[m], NULL);
			close(c.kp[m].lfd);
		}
		io_uring_queue_exit(&c.kr);
	}

	printf("\n%-34s %12s %12s %12s %14s\n", "totals over the rounds", "RTT p50 us",
	       "RTT p99 us", "Gbit/s", "64B msgs/s");
	printf("%-34s %12.2f %12.2f %12.2f %14.0f\n", "xring, offloaded TCP over memif",
	       res[XR][0].p50_us, res[XR][0].p99_us, res[XR][1].gbps, res[XR][2].msgs);
	if (no_kernel)
		return;
	printf("%-34s %12.2f %12.2f %12.2f %14.0f\n", "kernel loopback TCP, io_uring",
	       res[KU][0].p50_us, res[KU][0].p99_us, res[KU][1].gbps, res[KU][2].msgs);
	printf("%-34s %12.2f %12.2f %12.2f %14.0f\n", "kernel loopback TCP, busy-poll",
	       res[KB][0].p50_us, res[KB][0].p99_us, res[KB][1].gbps, res[KB][2].msgs);
	printf("\nratios: RTT %.1fx lower than io_uring, %.1fx lower than busy-poll; stream %.2fx "
	       "kernel io_uring, %.2fx busy-poll; pipelined %.1fx io_uring's messages/s\n",
	       res[KU][0].p50_us / res[XR][0].p50_us, res[KB][0].p50_us / res[XR][0].p50_us,
	       res[XR][1].gbps / res[KU][1].gbps, res[XR][1].gbps / res[KB][1].gbps,
	       res[XR][2].msgs / res[KU][2].msgs);
	if (only < 0) {
		static const struct {
			const char *what;
			int wl, vs;
			bool lower;
		} cmp[] = {{"RTT vs io_uring", 0, KU, true},
			   {"RTT vs busy-poll", 0, KB, true},
			   {"stream vs io_uring", 1, KU, false},
			   {"stream vs busy-poll", 1, KB, false},
			   {"pipelined vs io_uring", 2, KU, false}};

		printf("ratios round by round, lowest / median / highest:");
		for (size_t i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++) {
			double q[3];

			ratios(&rs[cmp[i].wl], XR, cmp[i].vs, cmp[i].lower, q);
			printf("%s %s %.2f / %.2f / %.2fx", i ? ";" : "", cmp[i].what, q[0], q[1],
			       q[2]);
		}
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	const char *link = getenv("XRING_DEMO_LINK") ? getenv("XRING_DEMO_LINK") : LINK;
	char spec_s[512], spec_c[512];
	bool no_kernel = false;
	int status;
	pid_t pid;

	/* Both sides of the comparison run without Nagle: the kernel sockets set TCP_NODELAY. */
	setenv("XRING_TCP_NODELAY", "1", 0);
	if (argc > 1 && !strcmp(argv[1], "--quick")) { /* the first argument */
		pp_iters = 2000;
		pp_warmup = 200;
		pl_rounds = 500;
		stream_secs = 0.5;
		rounds = 2;
	}
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--only=", 7))
			only = atoi(argv[i] + 7);
		else if (!strncmp(argv[i], "--rounds=", 9))
			rounds = atoi(argv[i] + 9);
		else if (!strncmp(argv[i], "--pings=", 8)) /* round trips in all, for profiling */
			pp_iters = atoi(argv[i] + 8);
		else if (!strcmp(argv[i], "--no-kernel")) /* for profiling */
			no_kernel = true;
		else if (!strcmp(argv[i], "--hold")) /* for xring-stats: see the top */
			hold = true;
		else if (!strcmp(argv[i], "--no-pin"))
			pin = false;
	if (rounds < 1 || rounds > MAX_ROUNDS)
		die("--rounds: 1 to " XSTR(MAX_ROUNDS), EINVAL);
	if (pp_iters < rounds || pp_iters > 100000000)
		die("--pings: at least one per round, at most 10^8", EINVAL);
	pin_pick();
	snprintf(spec_s, sizeof(spec_s), "memif:path=@xring-demo-%d,role=server,ip=" SRV_IP "/24%s",
		 (int) getpid(), link);
	snprintf(spec_c, sizeof(spec_c), "memif:path=@xring-demo-%d,role=client,ip=" CLI_IP "/24%s",
		 (int) getpid(), link);
	srv_port = (uint16_t) (20000 + getpid() % 20000);
	printf("xring demo: offloaded TCP between two processes over a memif link, beside the "
	       "kernel's TCP over loopback\n");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pin_to(1);
		x_server(spec_s);
		_exit(0);
	}
	pin_to(0);
	client(spec_c, no_kernel);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the server process failed", EIO);
	return 0;
}
