/*
 * The demo's three workloads (64-byte ping-pong, a stream of 64 KiB sends, pipelined 64-byte
 * messages) between two network namespaces joined by a veth pair, each end in its own process:
 *
 *   1. xring on both ends, an AF_XDP port on each veth end, offloaded sockets through xring's
 *      SQEs; against the kernel's TCP on both ends over the same veth, driven by io_uring and by
 *      busy-polling sockets (SO_BUSY_POLL, non-blocking calls in a loop).
 *   2. xring (AF_XDP) on one end against Linux's TCP on the other, against the kernel on both:
 *      the shape of interop with an unmodified peer, whose cost is in both numbers.
 *
 * Addresses: namespace A holds 198.18.0.1 (kernel) and xring's 198.18.0.3 on the same veth end,
 * namespace B 198.18.0.2 (kernel) and xring's 198.18.0.4. B's kernel sends whole, checksummed
 * frames (ethtool -K tx off tso off gso off) in every run, so a Linux peer can talk to an AF_XDP
 * port in generic mode; A's kernel keeps its offloads. The namespaces are deleted at exit, on
 * failure and on SIGINT / SIGTERM.
 *
 * Needs root (namespaces, XDP); without it, says why and exits 0. --quick runs each workload
 * briefly and exits 1 unless every transfer completed with the right bytes (ctest runs it).
 * BENCH_XDP_MODE=skb|drv picks the attach mode (default: driver mode if the veth takes it,
 * else generic). BENCH_XDP_MTU=n sets both veth ends' MTU for every run (default 1500; above
 * 1500 the UMEM takes 4 KiB buffers, so at most about 3.5 KiB). BENCH_XDP_NO_TSO=1 turns TSO
 * and GSO off at A too, so the kernel's stream also crosses the veth in MTU-sized frames.
 * XRING_PCAP=file captures A's frames, file.b B's. --only=N makes only run N (0-4, in the order of
 * the table), for profiling.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#include "netns.h"
#include "nic/pcap.h"
#include "nic/ports.h"
#include "nic/xdp/xdp_port.h"

#define MSG        64
#define CHUNK      65536
#define PIPE_DEPTH 32
#define K_IP_A     "198.18.0.1"
#define K_IP_B     "198.18.0.2"
#define X_IP_A     "198.18.0.3"
#define X_IP_B     "198.18.0.4"
#define RUN_SECS   60 /* a run's processes are killed after this long */

enum kind {
	XRING, /* offloaded sockets over an AF_XDP port */
	URING, /* the kernel's TCP through io_uring */
	BUSY,  /* the kernel's TCP, busy-polling non-blocking sockets */
};

static const char *const kind_names[] = {"xring (AF_XDP)", "kernel io_uring", "kernel busy-poll"};

struct result {
	double p50_us, p99_us, gbps, msgs;
	int ok;        /* every transfer completed with the right bytes */
	char why[120]; /* else what went wrong */
	char mode[24]; /* the AF_XDP attach mode, for xring clients */
};

static int pp_iters = 20000, pp_warmup = 1000, pl_rounds = 5000;
static double stream_secs = 2.0;
static bool quick;
static int link_mtu = 1500; /* BENCH_XDP_MTU: both veth ends' MTU */
static volatile sig_atomic_t stop_sig;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

/* The stream's bytes: position o of the stream holds pat(o % CHUNK), so a receiver can check
 * any chunk without knowing how the sender cut it. */
static uint8_t pat(size_t o)
{
	return (uint8_t) ((o * 2654435761u) >> 11);
}

/*
 * One end's I/O, the same calls on all three paths. xring and io_uring take the same SQEs: a
 * round is its sends and receive submitted together, then every CQE reaped.
 */
struct io {
	enum kind kind;
	struct xring x;
	struct io_uring u;
	uint64_t deadline; /* busy loops give up here (the process alarm is the backstop) */
};

/* user_data: a receive, a send that may take fewer bytes than asked (the kernel's may), a send
 * that must take all n bytes (n << 2 | 2), or 0 for anything else. */
#define UD_RECV    1
#define UD_PARTIAL 3

/* An xring SQE with user_data cleared: the prep helpers leave it as the slot held it. */
static struct xring_sqe *x_sqe(struct io *io)
{
	struct xring_sqe *sqe = xring_get_sqe(&io->x);

	sqe->user_data = 0;
	return sqe;
}

/* ud: UD_PARTIAL, or 0 for a send that must take all n bytes. */
static void q_send(struct io *io, int fd, const void *b, size_t n, uint64_t ud)
{
	if (io->kind == XRING) {
		struct xring_sqe *sqe = x_sqe(io);

		xring_prep_send(sqe, fd, b, n, 0);
		sqe->user_data = ud ? ud : (uint64_t) n << 2 | 2;
	} else {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&io->u);

		io_uring_prep_send(sqe, fd, b, n, 0);
		sqe->user_data = ud ? ud : (uint64_t) n << 2 | 2;
	}
}

static void q_recv(struct io *io, int fd, void *b, size_t n, int flags)
{
	if (io->kind == XRING) {
		struct xring_sqe *sqe = x_sqe(io);

		xring_prep_recv(sqe, fd, b, n, flags);
		sqe->user_data = UD_RECV;
	} else {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&io->u);

		io_uring_prep_recv(sqe, fd, b, n, flags);
		sqe->user_data = UD_RECV;
	}
}

/* Submits what was queued and reaps n CQEs. Returns the receive's result (or the last send's
 * when there was no receive), -EIO for a short send, or the first negative result. */
static int q_run(struct io *io, unsigned n)
{
	int ret = 0, bad = 0;

	if (io->kind == XRING)
		xring_submit_and_wait(&io->x, n);
	else
		io_uring_submit_and_wait(&io->u, n);
	for (unsigned i = 0; i < n; i++) {
		uint64_t ud;
		int res;

		if (io->kind == XRING) {
			struct xring_cqe *cqe;
			int e = xring_wait_cqe(&io->x, &cqe);

			if (e)
				return e;
			ud = cqe->user_data;
			res = cqe->res;
			xring_cqe_seen(&io->x, cqe);
		} else {
			struct io_uring_cqe *cqe;
			int e = io_uring_wait_cqe(&io->u, &cqe);

			if (e)
				return e;
			ud = cqe->user_data;
			res = cqe->res;
			io_uring_cqe_seen(&io->u, cqe);
		}
		if (res < 0 && !bad)
			bad = res;
		else if ((ud & 3) == 2 && res != (int) (ud >> 2) && !bad)
			bad = -EIO;
		if (ud == UD_RECV || i + 1 == n)
			ret = res;
	}
	return bad ? bad : ret;
}

static int b_send_all(struct io *io, int fd, const void *b, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = send(fd, (const char *) b + done, n - done, MSG_DONTWAIT);

		if (r > 0)
			done += (size_t) r;
		else if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		else if (now_ns() > io->deadline)
			return -ETIMEDOUT;
	}
	return (int) done;
}

/* A receive by spinning: up to n bytes, all n with MSG_WAITALL; 0 at the end of the stream. */
static int b_recv(struct io *io, int fd, void *b, size_t n, int flags)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (char *) b + got, n - got, MSG_DONTWAIT);

		if (r == 0)
			break;
		if (r > 0) {
			got += (size_t) r;
			if (!(flags & MSG_WAITALL))
				break;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -errno;
		} else if (now_ns() > io->deadline) {
			return -ETIMEDOUT;
		}
	}
	return (int) got;
}

/* nsend messages of MSG bytes from out, then one receive of nsend * MSG bytes into in. */
static int io_round(struct io *io, int fd, const char *out, unsigned nsend, char *in)
{
	size_t len = (size_t) nsend * MSG;

	if (io->kind == BUSY) {
		for (unsigned k = 0; k < nsend; k++) {
			int r = b_send_all(io, fd, out + k * MSG, MSG);

			if (r < 0)
				return r;
		}
		return b_recv(io, fd, in, len, MSG_WAITALL);
	}
	for (unsigned k = 0; k < nsend; k++)
		q_send(io, fd, out + k * MSG, MSG, 0);
	q_recv(io, fd, in, len, MSG_WAITALL);
	return q_run(io, nsend + 1);
}

/* Sends all n bytes; a kernel send may take fewer, then the rest goes again. */
static int io_send(struct io *io, int fd, const void *b, size_t n)
{
	size_t done = 0;

	if (io->kind == BUSY)
		return b_send_all(io, fd, b, n);
	while (done < n) {
		int r;

		q_send(io, fd, (const char *) b + done, n - done, UD_PARTIAL);
		r = q_run(io, 1);
		if (r <= 0)
			return r < 0 ? r : -EIO;
		if (now_ns() > io->deadline)
			return -ETIMEDOUT;
		done += (size_t) r;
	}
	return (int) done;
}

static int io_recv(struct io *io, int fd, void *b, size_t n, int flags)
{
	if (io->kind == BUSY)
		return b_recv(io, fd, b, n, flags);
	q_recv(io, fd, b, n, flags);
	return q_run(io, 1);
}

static void io_close(struct io *io, int fd)
{
	if (io->kind == XRING) {
		xring_prep_close(x_sqe(io), fd);
		xring_submit_and_wait(&io->x, 1);
		struct xring_cqe *cqe;

		if (!xring_wait_cqe(&io->x, &cqe))
			xring_cqe_seen(&io->x, cqe);
	} else {
		close(fd);
	}
}

static void kernel_sockopts(struct io *io, int fd)
{
	int one = 1, busy = 50;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (io->kind == BUSY)
		setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &busy, sizeof(busy));
}

/* libxdp keeps its dispatcher state in bpffs: one of our own in a private mount namespace, so
 * nothing on the host's mounts changes (failures only cost libxdp's fallback warning). */
static void private_bpffs(void)
{
	if (unshare(CLONE_NEWNS) == 0 && mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		(void) !mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700");
}

/* The AF_XDP port on this namespace's veth end, holding ip, and a ring over it. */
static int xring_open(struct io *io, const char *ip, const char *pcap_suffix, char mode[24])
{
	struct port_xdp_config c = {.dev = NETNS_PAIR_IF,
				    .prefix_len = 24,
				    .attach = PORT_XDP_AUTO,
				    .zerocopy = PORT_XDP_ZC_TRY,
				    /* 8 MiB of UMEM: the default memlock limit here */
				    .frame_size = 2048,
				    .rx_frames = 2048,
				    .tx_frames = 2048};
	const char *m = getenv("BENCH_XDP_MODE"), *pcap = getenv("XRING_PCAP");
	struct port_xdp_info info;
	struct port *p;
	int err;

	if (link_mtu >
	    1500) { /* bigger frames need whole-page buffers: as many bytes, half the count */
		c.frame_size = 4096;
		c.rx_frames = c.tx_frames = 1024;
	}
	if (m && !strcmp(m, "skb"))
		c.attach = PORT_XDP_SKB;
	else if (m && !strcmp(m, "drv"))
		c.attach = PORT_XDP_NATIVE;
	inet_pton(AF_INET, ip, &c.ip);
	err = port_xdp_open(&c, &p);
	if (err && c.attach == PORT_XDP_AUTO) {
		c.attach = PORT_XDP_SKB;
		err = port_xdp_open(&c, &p);
	}
	if (err)
		return err;
	if (port_xdp_info(p, &info) == 0)
		snprintf(mode, 24, "%s", port_xdp_mode_name(&info));
	if (pcap && pcap_suffix) {
		char path[512];

		snprintf(path, sizeof(path), "%s%s", pcap, pcap_suffix);
		setenv("XRING_PCAP", path, 1);
	}
	if ((err = pcapw_wrap_env(&p)) < 0 || (err = ports_add(p, 0, NULL)) < 0)
		return err;
	return xring_queue_init(64, &io->x, 0);
}

static int io_init(struct io *io, enum kind kind, const char *xip, const char *pcap_suffix,
		   char mode[24])
{
	io->kind = kind;
	io->deadline = now_ns() + (uint64_t) (RUN_SECS - 5) * 1000000000u;
	if (kind == XRING)
		return xring_open(io, xip, pcap_suffix, mode);
	return io_uring_queue_init(64, &io->u, 0);
}

static void io_exit(struct io *io)
{
	if (io->kind == XRING) {
		xring_queue_exit(&io->x);
		ports_reset();
	} else {
		io_uring_queue_exit(&io->u);
	}
}

/*
 * The server: three connections, one per workload: echo 64-byte messages, count (and in quick
 * mode check) a stream and answer with its length and bad bytes, echo whatever arrives.
 */
static int serve(struct io *io, uint16_t port, int ready_fd)
{
	static char buf[CHUNK];
	struct sockaddr_in me = sin_of(io->kind == XRING ? X_IP_B : K_IP_B, port);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0), fd, n;

	if (lfd < 0)
		return -errno;
	if (io->kind == XRING) {
		xring_prep_bind(x_sqe(io), lfd, (struct sockaddr *) &me, sizeof(me));
		if ((n = q_run(io, 1)) < 0)
			return n;
		xring_prep_listen(x_sqe(io), lfd, 8);
		if ((n = q_run(io, 1)) < 0)
			return n;
	} else {
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *) &me, sizeof(me)) || listen(lfd, 8))
			return -errno;
	}
	if (write(ready_fd, "r", 1) != 1)
		return -EPIPE;
	close(ready_fd);
	for (int phase = 0; phase < 3; phase++) {
		uint64_t tally[2] = {0, 0}; /* bytes, bad bytes */

		if (io->kind == XRING) {
			xring_prep_accept(x_sqe(io), lfd, NULL, NULL, 0);
			fd = q_run(io, 1);
		} else {
			struct pollfd p = {lfd, POLLIN, 0};

			fd = poll(&p, 1, 20000) == 1 ? accept(lfd, NULL, NULL) : -ETIMEDOUT;
			if (fd >= 0)
				kernel_sockopts(io, fd);
		}
		if (fd < 0)
			return fd;
		for (;;) {
			size_t len = phase == 0 ? MSG : CHUNK;

			/* The busy-poll server takes what has arrived, as the pipelined
			 * echo does; the others wait for whole messages and chunks. */
			n = io_recv(io, fd, buf, len,
				    phase == 2 || (phase == 1 && io->kind == BUSY) ? 0
										   : MSG_WAITALL);
			if (n <= 0)
				break;
			if (phase == 1 && quick)
				for (int i = 0; i < n; i++)
					tally[1] += (uint8_t) buf[i] !=
						    pat((tally[0] + (size_t) i) % CHUNK);
			tally[0] += (uint64_t) n;
			if (phase != 1 && io_send(io, fd, buf, (size_t) n) != n)
				return -EIO;
		}
		if (n < 0)
			return n;
		if (phase == 1 && io_send(io, fd, tally, sizeof(tally)) != (int) sizeof(tally))
			return -EIO;
		io_close(io, fd);
	}
	io_close(io, lfd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static int connect_to(struct io *io, const struct sockaddr_in *sa, int *out)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), res;

	if (fd < 0)
		return -errno;
	if (io->kind == XRING) {
		xring_prep_connect(x_sqe(io), fd, (const struct sockaddr *) sa, sizeof(*sa));
		res = q_run(io, 1);
	} else {
		res = connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) ? -errno : 0;
		kernel_sockopts(io, fd);
	}
	if (res < 0) {
		io_close(io, fd);
		return res;
	}
	*out = fd;
	return 0;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(r->why, sizeof(r->why), __VA_ARGS__);                                     \
		return;                                                                            \
	} while (0)

/* The client: the three workloads in turn, each on its own connection. */
static void drive(struct io *io, const struct sockaddr_in *srv, struct result *r)
{
	static char out[CHUNK], in[CHUNK];
	uint64_t *rtt = calloc((size_t) pp_iters, sizeof(*rtt)), t0, sent = 0, tally[2] = {0, 0};
	int fd, n, err;

	if (!rtt)
		FAIL("out of memory");
	for (size_t i = 0; i < CHUNK; i++)
		out[i] = (char) pat(i);

	if ((err = connect_to(io, srv, &fd)))
		FAIL("ping-pong connect: %s", strerror(-err));
	for (int i = -pp_warmup; i < pp_iters; i++) {
		uint64_t t = now_ns();

		memcpy(out, &i, sizeof(i)); /* each message differs from the one before */
		if ((n = io_round(io, fd, out, 1, in)) != MSG || memcmp(in, out, MSG))
			FAIL("ping-pong round %d: %d bytes, %s", i, n,
			     n == MSG ? "different bytes" : strerror(n < 0 ? -n : EIO));
		if (i >= 0)
			rtt[i] = now_ns() - t;
	}
	qsort(rtt, (size_t) pp_iters, sizeof(*rtt), cmp_u64);
	r->p50_us = (double) rtt[pp_iters / 2] / 1e3;
	r->p99_us = (double) rtt[pp_iters * 99 / 100] / 1e3;
	free(rtt);
	io_close(io, fd);
	for (size_t i = 0; i < sizeof(int); i++) /* undo the stamps: the stream's pattern */
		out[i] = (char) pat(i);

	if ((err = connect_to(io, srv, &fd)))
		FAIL("stream connect: %s", strerror(-err));
	t0 = now_ns();
	while (now_ns() - t0 < (uint64_t) (stream_secs * 1e9)) {
		if ((n = io_send(io, fd, out, CHUNK)) != CHUNK)
			FAIL("stream send after %llu bytes: %d", (unsigned long long) sent, n);
		sent += CHUNK;
	}
	if (io->kind == XRING) {
		xring_prep_shutdown(x_sqe(io), fd, SHUT_WR);
		q_run(io, 1);
	} else {
		shutdown(fd, SHUT_WR);
	}
	if ((n = io_recv(io, fd, tally, sizeof(tally), MSG_WAITALL)) != (int) sizeof(tally))
		FAIL("stream: no tally from the server (%d)", n);
	r->gbps = (double) tally[0] * 8 / (double) (now_ns() - t0);
	if (tally[0] != sent || tally[1])
		FAIL("stream: sent %llu bytes, the server got %llu, %llu of them wrong",
		     (unsigned long long) sent, (unsigned long long) tally[0],
		     (unsigned long long) tally[1]);
	io_close(io, fd);

	if ((err = connect_to(io, srv, &fd)))
		FAIL("pipelined connect: %s", strerror(-err));
	t0 = now_ns();
	for (int i = 0; i < pl_rounds; i++) {
		memcpy(out, &i, sizeof(i));
		if ((n = io_round(io, fd, out, PIPE_DEPTH, in)) != PIPE_DEPTH * MSG ||
		    memcmp(in, out, PIPE_DEPTH * MSG))
			FAIL("pipelined round %d: %d bytes", i, n);
	}
	r->msgs = (double) pl_rounds * PIPE_DEPTH * 1e9 / (double) (now_ns() - t0);
	io_close(io, fd);
	r->ok = 1;
}

/* A child process of a run: its own namespace, bpffs and time limit; dies with the parent. */
static void child_setup(const char *ns)
{
	int old;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	alarm(RUN_SECS);
	old = netns_enter(ns);
	if (old < 0) {
		fprintf(stderr, "bench_xdp_tcp: entering %s: %s\n", ns, strerror(-old));
		_exit(2);
	}
	close(old);
	private_bpffs();
}

/* Waits for pid until deadline (ns); kills it after that. Returns its exit status, or -1. */
static int reap(pid_t pid, uint64_t deadline)
{
	int status;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (w < 0)
			return -1;
		if (now_ns() > deadline || stop_sig)
			kill(pid, SIGKILL);
		usleep(2000);
	}
}

/*
 * One run: the server (kind srv, namespace B) starts and says when it listens, then the client
 * (kind cli, namespace A) runs the workloads and sends back its result.
 */
static void run(const struct netns_pair *t, enum kind cli, enum kind srv, uint16_t port,
		struct result *r)
{
	uint64_t deadline = now_ns() + (uint64_t) RUN_SECS * 1000000000u;
	int ready[2], res[2], s_status, c_status;
	pid_t s_pid, c_pid;
	char c;
	struct pollfd p;

	memset(r, 0, sizeof(*r));
	if (pipe(ready) || pipe(res)) {
		snprintf(r->why, sizeof(r->why), "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	s_pid = fork();
	if (s_pid == 0) {
		struct io io;
		char mode[24];
		int err;

		close(ready[0]);
		close(res[0]);
		close(res[1]);
		child_setup(t->b);
		err = io_init(&io, srv, X_IP_B, ".b", mode);
		if (!err) {
			err = serve(&io, port, ready[1]);
			io_exit(&io);
		}
		if (err)
			fprintf(stderr, "bench_xdp_tcp: %s server: %s\n", kind_names[srv],
				strerror(-err));
		_exit(err ? 1 : 0);
	}
	close(ready[1]);
	p = (struct pollfd){ready[0], POLLIN, 0};
	if (s_pid < 0 || poll(&p, 1, 20000) != 1 || read(ready[0], &c, 1) != 1) {
		snprintf(r->why, sizeof(r->why), "the %s server did not start", kind_names[srv]);
		close(ready[0]);
		close(res[0]);
		close(res[1]);
		if (s_pid > 0)
			reap(s_pid, 0);
		return;
	}
	close(ready[0]);
	c_pid = fork();
	if (c_pid == 0) {
		struct sockaddr_in sa = sin_of(srv == XRING ? X_IP_B : K_IP_B, port);
		struct result cr = {0};
		struct io io;
		int err;

		close(res[0]);
		child_setup(t->a);
		err = io_init(&io, cli, X_IP_A, "", cr.mode);
		if (err)
			snprintf(cr.why, sizeof(cr.why), "%s client setup: %s", kind_names[cli],
				 strerror(-err));
		else
			drive(&io, &sa, &cr);
		if (write(res[1], &cr, sizeof(cr)) != (ssize_t) sizeof(cr))
			_exit(3);
		if (!err)
			io_exit(&io);
		_exit(cr.ok ? 0 : 1);
	}
	close(res[1]);
	c_status = c_pid > 0 ? reap(c_pid, deadline) : -1;
	s_status = reap(s_pid, now_ns() + 10ull * 1000000000u);
	if (read(res[0], r, sizeof(*r)) != (ssize_t) sizeof(*r)) {
		memset(r, 0, sizeof(*r));
		snprintf(r->why, sizeof(r->why), "the client ended without a result (status %d)",
			 c_status);
	}
	close(res[0]);
	if (r->ok && (c_status || s_status)) {
		r->ok = 0;
		snprintf(r->why, sizeof(r->why), "client status %d, server status %d", c_status,
			 s_status);
	}
}

static void on_signal(int sig)
{
	stop_sig = sig;
}

static void row(const char *name, const struct result *r)
{
	if (!r->ok) {
		printf("%-44s %s%s\n", name, strcmp(r->why, "not run") ? "FAILED: " : "", r->why);
		return;
	}
	printf("%-44s %10.2f %10.2f %9.2f %12.0f\n", name, r->p50_us, r->p99_us, r->gbps, r->msgs);
}

static void ratio(const char *name, const struct result *x, const struct result *k)
{
	if (!x->ok || !k->ok)
		return;
	printf("%-44s %10.2f %10.2f %9.2f %12.2f\n", name, x->p50_us / k->p50_us,
	       x->p99_us / k->p99_us, x->gbps / k->gbps, x->msgs / k->msgs);
}

static void header(const char *title)
{
	printf("\n%s\n%-44s %10s %10s %9s %12s\n", title, "", "p50 us", "p99 us", "Gbit/s",
	       "64B msg/s");
}

int main(int argc, char **argv)
{
	/* Each run gets a port of its own: no TIME_WAIT of one run meets the next. */
	static const struct {
		enum kind cli, srv;
		const char *name;
	} runs[] = {
		{XRING, XRING, "xring <-> xring, AF_XDP both ends"},
		{URING, URING, "kernel <-> kernel, io_uring"},
		{BUSY, BUSY, "kernel <-> kernel, busy-poll"},
		{XRING, URING, "xring -> Linux server on io_uring"},
		{XRING, BUSY, "xring -> Linux server busy-polling"},
	};
	struct result r[5] = {{0}};
	struct netns_pair t = {{0}};
	struct rlimit rl;
	const char *why, *mode = "not run";
	uint16_t port = (uint16_t) (20000 + getpid() % 20000);
	bool all_ok = true;
	int err, only = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
			pp_iters = 2000;
			pp_warmup = 100;
			pl_rounds = 300;
			stream_secs = 0.3;
		} else if (!strncmp(argv[i], "--only=", 7)) { /* one run, for profiling */
			only = atoi(argv[i] + 7);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--only=RUN]\n", argv[0]);
			return 2;
		}
	}
	if ((why = netns_unusable())) {
		printf("bench_xdp_tcp: skipped: %s\n", why);
		return 0;
	}
	/* Both sides of every comparison run without Nagle: the kernel sockets set TCP_NODELAY. */
	setenv("XRING_TCP_NODELAY", "1", 0);
	/* The UMEM is pinned memory: lift the soft limit to what we may (root may go past it). */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		struct rlimit want = {RLIM_INFINITY, RLIM_INFINITY};

		if (setrlimit(RLIMIT_MEMLOCK, &want)) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MEMLOCK, &rl);
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	err = netns_pair(&t, "xb", K_IP_A "/24", K_IP_B "/24");
	if (!err)
		err = netns_sh(t.b, NULL, 0, "ethtool -K %s tx off tso off gso off >/dev/null",
			       NETNS_PAIR_IF);
	if (getenv("BENCH_XDP_MTU"))
		link_mtu = atoi(getenv("BENCH_XDP_MTU"));
	/* For a frame-for-frame comparison: A's kernel sends MTU-sized frames too. */
	if (!err && getenv("BENCH_XDP_NO_TSO"))
		err = netns_sh(t.a, NULL, 0, "ethtool -K %s tso off gso off >/dev/null",
			       NETNS_PAIR_IF);
	if (!err && link_mtu != 1500)
		err = netns_ip(t.a, "link set %s mtu %d", NETNS_PAIR_IF, link_mtu)
			      ?: netns_ip(t.b, "link set %s mtu %d", NETNS_PAIR_IF, link_mtu);
	if (err) {
		fprintf(stderr, "bench_xdp_tcp: cannot build the veth topology: %d\n", err);
		netns_cleanup();
		return 1;
	}
	printf("bench_xdp_tcp: namespaces %s (" K_IP_A ", xring " X_IP_A ") and %s (" K_IP_B
	       ", xring " X_IP_B ") joined by a veth pair%s\n",
	       t.a, t.b, quick ? "; quick mode" : "");
	for (unsigned i = 0; i < sizeof(runs) / sizeof(runs[0]) && !stop_sig; i++) {
		if (only >= 0 && (int) i != only) {
			snprintf(r[i].why, sizeof(r[i].why), "not run");
			continue;
		}
		printf("  %s ...\n", runs[i].name);
		fflush(stdout);
		run(&t, runs[i].cli, runs[i].srv, (uint16_t) (port + i), &r[i]);
		all_ok &= r[i].ok;
		if (!r[i].ok)
			fprintf(stderr, "bench_xdp_tcp: %s: %s\n", runs[i].name, r[i].why);
	}
	netns_cleanup();
	if (stop_sig) {
		fprintf(stderr, "bench_xdp_tcp: interrupted; namespaces removed\n");
		return 128 + stop_sig;
	}

	for (unsigned i = 0; i < 5; i++)
		if (r[i].mode[0])
			mode = r[i].mode;
	printf("\nAF_XDP attach mode on the veth: %s; MTU %d. B's kernel sends with tx checksum, TSO "
	       "and GSO off; A's %s.\n",
	       mode, link_mtu,
	       getenv("BENCH_XDP_NO_TSO") ? "with TSO and GSO off (BENCH_XDP_NO_TSO)"
					  : "keeps them (64 KiB TSO frames cross the veth)");
	header("1. Both ends the same: xring on both, or the kernel on both");
	row(runs[0].name, &r[0]);
	row(runs[1].name, &r[1]);
	row(runs[2].name, &r[2]);
	printf("xring / kernel (RTT: below 1 is faster; Gbit/s, msg/s: above 1 is faster)\n");
	ratio("  xring / kernel io_uring", &r[0], &r[1]);
	ratio("  xring / kernel busy-poll", &r[0], &r[2]);
	header("2. xring on one end, a Linux TCP server on the other (the Linux peer's cost is in "
	       "both numbers)");
	row(runs[3].name, &r[3]);
	row(runs[1].name, &r[1]);
	row(runs[4].name, &r[4]);
	row(runs[2].name, &r[2]);
	printf("xring client / kernel client, same Linux server\n");
	ratio("  with the io_uring server", &r[3], &r[1]);
	ratio("  with the busy-polling server", &r[4], &r[2]);
	if (quick)
		printf("\n%s\n", all_ok ? "quick: every transfer completed with the right bytes"
					: "quick: FAILED");
	return all_ok ? 0 : 1;
}
