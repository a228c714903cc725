/*
 * Connections: how fast they are set up, and what an idle one costs. Two processes, each with
 * its own xring, joined by NLINK memif links (no root needed), then the same two processes on
 * the kernel's TCP over loopback with io_uring.
 *
 * Setup rate: the client keeps WINDOW connections in flight. A cycle is socket + connect; the
 * server accepts, sends one byte and closes; the client reads the byte and the end of the
 * stream, and closes. Cycles per second, xring against the kernel, ROUNDS times interleaved.
 *
 * Hold: the client opens N connections (100,000 by default), checks each with an 8-byte echo,
 * and both processes keep them all open while their memory is read: each process's resident
 * set (VmRSS) before and after, and the kernel's slab memory (/proc/meminfo Slab, system-wide)
 * before and after, for both processes together. An offloaded socket keeps a kernel socket as
 * its placeholder (the application's own socket on the client; one made at accept on the
 * server), so xring's connections cost kernel slab memory too: both are shown, and xring is
 * run a second time with XRING_ACCEPT_EVENTFD=1 (an eventfd names each accepted connection).
 *
 * Each client address is one link, because an offloaded client socket reserves its port in
 * the kernel (bind to port 0) and the kernel's ephemeral range holds some 28,000 ports per
 * address. The kernel's clients connect to NLINK server ports for the same reason.
 *
 * Each process needs a descriptor per connection: RLIMIT_NOFILE is raised to fit, which past
 * the hard limit takes CAP_SYS_RESOURCE (root in CI); --conns N sizes the run otherwise.
 *
 * --quick: 2,000 connections and one short rate round; it exits non-zero unless every
 * connection was established and echoed (ctest runs it, label memif).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#define NLINK  4
#define PORT   7100
#define WINDOW 64
#define ROUNDS 3
#define QD     512

enum {
	K_ACCEPT = 1,
	K_CONNECT,
	K_SEND,
	K_RECV,
	K_CLOSE
};

#define UD(kind, x) ((uint64_t) (kind) << 56 | (uint64_t) (x))
#define UD_KIND(u)  ((int) ((u) >> 56))
#define UD_X(u)     ((uint32_t) (u))

static unsigned nconns = 100000;
static double rate_secs = 2.0;
static int rounds = ROUNDS;
static char tag[32];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_conns: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* A kB figure from a /proc file: the number after "key". */
static long proc_kb(const char *path, const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			v = strtol(line + strlen(key), NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long rss_kb(void)
{
	return proc_kb("/proc/self/status", "VmRSS:");
}

static long slab_kb(void)
{
	return proc_kb("/proc/meminfo", "Slab:");
}

/* ---- one ring API over both: xring, or liburing on the kernel's ring ---- */

struct ring {
	int x;
	struct xring xr;
	struct io_uring kr;
};

static int submit_wait(struct ring *r, unsigned n)
{
	return r->x ? xring_submit_and_wait(&r->xr, n) : io_uring_submit_and_wait(&r->kr, n);
}

static struct io_uring_sqe *sqe_get(struct ring *r)
{
	struct io_uring_sqe *s = r->x ? (void *) xring_get_sqe(&r->xr) : io_uring_get_sqe(&r->kr);

	if (!s) {
		submit_wait(r, 0);
		s = r->x ? (void *) xring_get_sqe(&r->xr) : io_uring_get_sqe(&r->kr);
		if (!s)
			die("no SQE", EBUSY);
	}
	return s;
}

static int peek(struct ring *r, struct io_uring_cqe **c)
{
	return r->x ? xring_peek_cqe(&r->xr, (struct xring_cqe **) c)
		    : io_uring_peek_cqe(&r->kr, c);
}

static void seen(struct ring *r, struct io_uring_cqe *c)
{
	if (r->x)
		xring_cqe_seen(&r->xr, (struct xring_cqe *) c);
	else
		io_uring_cqe_seen(&r->kr, c);
}

static void ring_init(struct ring *r, int x)
{
	int ret;

	r->x = x;
	ret = x ? xring_queue_init(QD, &r->xr, 0) : io_uring_queue_init(QD, &r->kr, 0);
	if (ret)
		die("ring init", ret);
}

static void op_close(struct ring *r, int fd, uint64_t ud)
{
	struct io_uring_sqe *s = sqe_get(r);

	io_uring_prep_close(s, fd);
	io_uring_sqe_set_data64(s, ud);
}

static struct sockaddr_in server_addr(int x, int link)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	if (x) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.18.%d.2", link);
		inet_pton(AF_INET, ip, &a.sin_addr);
		a.sin_port = htons(PORT);
	} else {
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t) (PORT + link));
	}
	return a;
}

static void add_ports(int server)
{
	for (int k = 0; k < NLINK; k++) {
		char spec[160];
		int ret;

		snprintf(spec, sizeof(spec),
			 "memif:path=@xring-conns-%s-%d,role=%s,ip=198.18.%d.%d/24", tag, k,
			 server ? "server" : "client", k, server ? 2 : 1);
		ret = xring_port_add(spec);
		if (ret)
			die("xring_port_add", ret);
	}
}

/* ---- the server ---- */

enum {
	M_HOLD,
	M_RATE
};

/* Memory is read at a tenth of the connections and at all of them: the growth between the
 * two, per connection, leaves out what the first connections warm up once (link buffers,
 * the first chunk of blocks, the rings' pools). */
struct report {
	long rss_delta_kb; /* from a tenth to all */
	unsigned count;
};

static unsigned tenth(unsigned n)
{
	return n / 10;
}

/* Accepts on NLINK listeners. Hold: echo 8 bytes once per connection and keep it; after the
 * n-th echo, report the resident set's growth on rep_fd. Rate: send a byte and close. Runs
 * until killed. */
static void server(int x, int mode, unsigned n, int rep_fd)
{
	static const char one = '!';
	uint64_t *buf;
	struct rlimit rl;
	struct ring r;
	int lfd[NLINK];
	unsigned echoed = 0;
	long rss0, rss10 = 0;

	if (x)
		add_ports(1);
	ring_init(&r, x);
	getrlimit(RLIMIT_NOFILE, &rl);
	buf = calloc(rl.rlim_cur, sizeof(*buf));
	if (!buf)
		die("calloc", ENOMEM);
	for (int k = 0; k < NLINK; k++) {
		struct sockaddr_in a = server_addr(x, k);
		int on = 1, ret;

		lfd[k] = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(lfd[k], SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (x) {
			struct xring_cqe *c;

			xring_prep_bind(xring_get_sqe(&r.xr), lfd[k], (struct sockaddr *) &a,
					sizeof(a));
			xring_prep_listen(xring_get_sqe(&r.xr), lfd[k], 4096);
			xring_submit_and_wait(&r.xr, 2);
			for (int i = 0; i < 2; i++) {
				xring_wait_cqe(&r.xr, &c);
				ret = c->res;
				xring_cqe_seen(&r.xr, c);
				if (ret)
					die("bind/listen", ret);
			}
		} else if (bind(lfd[k], (struct sockaddr *) &a, sizeof(a)) ||
			   listen(lfd[k], 4096)) {
			die("bind/listen", errno);
		}
		{
			struct io_uring_sqe *s = sqe_get(&r);

			io_uring_prep_multishot_accept(s, lfd[k], NULL, NULL, 0);
			io_uring_sqe_set_data64(s, UD(K_ACCEPT, k));
		}
	}
	rss0 = rss_kb();
	if (write(rep_fd, &rss0, sizeof(rss0)) != sizeof(rss0)) /* ready */
		die("write", errno);
	for (;;) {
		struct io_uring_cqe *c;

		submit_wait(&r, 1);
		while (peek(&r, &c) == 0) {
			uint64_t ud = c->user_data;
			int res = c->res, fd = (int) UD_X(ud);
			unsigned flags = c->flags;

			seen(&r, c);
			switch (UD_KIND(ud)) {
			case K_ACCEPT:
				if (!(flags & IORING_CQE_F_MORE)) {
					struct io_uring_sqe *s = sqe_get(&r);

					io_uring_prep_multishot_accept(s, lfd[UD_X(ud)], NULL, NULL,
								       0);
					io_uring_sqe_set_data64(s, ud);
				}
				if (res < 0) {
					if (res == -EMFILE || res == -ENFILE || res == -ENOMEM)
						die("accept", res);
					break;
				}
				if (mode == M_RATE) {
					struct io_uring_sqe *s = sqe_get(&r);

					io_uring_prep_send(s, res, &one, 1, 0);
					io_uring_sqe_set_data64(s, UD(K_SEND, res));
				} else {
					struct io_uring_sqe *s = sqe_get(&r);

					io_uring_prep_recv(s, res, &buf[res], 8, MSG_WAITALL);
					io_uring_sqe_set_data64(s, UD(K_RECV, res));
				}
				break;
			case K_RECV:
				if (res != 8) {
					op_close(&r, fd,
						 UD(K_CLOSE, fd)); /* a warm-up connection */
				} else {
					struct io_uring_sqe *s = sqe_get(&r);

					io_uring_prep_send(s, fd, &buf[fd], 8, 0);
					io_uring_sqe_set_data64(s, UD(K_SEND, fd));
				}
				break;
			case K_SEND:
				if (mode == M_RATE || res != 8) {
					op_close(&r, fd, UD(K_CLOSE, fd));
					break;
				}
				if (++echoed == tenth(n))
					rss10 = rss_kb();
				if (echoed == n) {
					struct report rep = {rss_kb() - rss10, echoed};

					if (write(rep_fd, &rep, sizeof(rep)) != sizeof(rep))
						die("write", errno);
				}
				break;
			default:
				break;
			}
		}
	}
}

/* ---- the client ---- */

struct slot {
	int fd;
	int state; /* 0 free, K_CONNECT, K_RECV (rate), K_SEND (hold: echo), K_CLOSE */
	int pending;
	int retry; /* the connect failed: closing, then again */
	uint64_t out, in;
};

struct cstats {
	unsigned done, retries;
	long rss_delta_kb, rss10;
	double secs;
	int marker_fd; /* hold: a byte goes here at a tenth of the connections */
};

static void start_connect(struct ring *r, struct slot *s, unsigned i, unsigned seq)
{
	static struct sockaddr_in a[2][NLINK];
	static int init;
	struct io_uring_sqe *q;

	if (!init) {
		for (int k = 0; k < NLINK; k++) {
			a[0][k] = server_addr(0, k);
			a[1][k] = server_addr(1, k);
		}
		init = 1;
	}
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->fd < 0)
		die("socket", errno);
	s->state = K_CONNECT;
	s->pending = 1;
	q = sqe_get(r);
	io_uring_prep_connect(q, s->fd, (struct sockaddr *) &a[r->x][seq % NLINK], sizeof(a[0][0]));
	io_uring_sqe_set_data64(q, UD(K_CONNECT, i));
}

/*
 * Hold (mode M_HOLD): open n connections, WINDOW at a time, each checked by an echo; their
 * descriptors go to fds. Rate (M_RATE): connect, read, close for rate_secs.
 */
static void client_run(struct ring *r, int mode, unsigned n, int *fds, struct cstats *st)
{
	struct slot slots[WINDOW] = {{0}};
	unsigned started = 0, inflight = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t) (rate_secs * 1e9);
	int stop = 0;

	{
		int m = st->marker_fd;

		memset(st, 0, sizeof(*st));
		st->marker_fd = m;
	}
	for (;;) {
		struct io_uring_cqe *c;

		for (unsigned i = 0; i < WINDOW && !stop; i++)
			if (!slots[i].state && (mode == M_RATE || started < n)) {
				start_connect(r, &slots[i], i, started++);
				inflight++;
			}
		if (!inflight)
			break;
		submit_wait(r, 1);
		while (peek(r, &c) == 0) {
			uint64_t ud = c->user_data;
			int res = c->res;
			struct slot *s = &slots[UD_X(ud)];
			struct io_uring_sqe *q;

			seen(r, c);
			switch (UD_KIND(ud)) {
			default:
				break;
			case K_CONNECT:
				if (res == -EADDRINUSE || res == -EADDRNOTAVAIL ||
				    res == -ECONNREFUSED || res == -ETIMEDOUT ||
				    res == -EHOSTUNREACH || res == -EAGAIN) {
					/* The tuple is still taken, or no port is free yet: again
					 * on a fresh socket. */
					if (++st->retries > 100000 + n)
						die("connect keeps failing", res);
					s->state = K_CLOSE;
					s->retry = 1;
					op_close(r, s->fd, UD(K_CLOSE, UD_X(ud)));
					break;
				}
				if (res < 0)
					die("connect", res);
				if (mode == M_RATE) {
					s->state = K_RECV;
					q = sqe_get(r);
					io_uring_prep_recv(q, s->fd, &s->in, 2, MSG_WAITALL);
					io_uring_sqe_set_data64(q, UD(K_RECV, UD_X(ud)));
				} else {
					s->state = K_SEND;
					s->pending = 2;
					s->out = 0x5a5a000000000000ull | (uint64_t) s->fd << 8 |
						 UD_X(ud);
					s->in = 0;
					q = sqe_get(r);
					io_uring_prep_send(q, s->fd, &s->out, 8, 0);
					io_uring_sqe_set_data64(q, UD(K_SEND, UD_X(ud)));
					q = sqe_get(r);
					io_uring_prep_recv(q, s->fd, &s->in, 8, MSG_WAITALL);
					io_uring_sqe_set_data64(q, UD(K_RECV, UD_X(ud)));
				}
				break;
			case K_SEND:
				if (res != 8)
					die("echo send", res < 0 ? res : EIO);
				break;
			case K_RECV:
				if (mode == M_RATE) {
					if (res != 1)
						die("rate: one byte then the end",
						    res < 0 ? res : EIO);
					s->state = K_CLOSE;
					op_close(r, s->fd, UD(K_CLOSE, UD_X(ud)));
				} else if (res != 8 || s->in != s->out) {
					die("echo", res < 0 ? res : EIO);
				}
				break;
			case K_CLOSE:
				if (s->retry) {
					/* A failed attempt: start over. */
					s->retry = 0;
					s->state = 0;
					inflight--;
					started--;
					break;
				}
				if (res < 0)
					die("close", res);
				st->done++;
				s->state = 0;
				inflight--;
				break;
			}
			if (mode == M_HOLD && s->state == K_SEND &&
			    (UD_KIND(ud) == K_SEND || UD_KIND(ud) == K_RECV) && --s->pending == 0) {
				fds[st->done++] = s->fd; /* echoed: held from now on */
				s->state = 0;
				inflight--;
				if (st->done == tenth(n)) {
					st->rss10 = rss_kb();
					if (write(st->marker_fd, "m", 1) != 1)
						die("write", errno);
				}
			}
		}
		if (mode == M_RATE && now_ns() >= end)
			stop = 1;
	}
	st->secs = (double) (now_ns() - t0) / 1e9;
}

/* The link is up once a connection on each one goes through. */
static void warm_up(struct ring *r)
{
	for (int k = 0; k < NLINK; k++) {
		struct sockaddr_in a = server_addr(r->x, k);

		for (int tries = 0;; tries++) {
			struct io_uring_cqe *c;
			int fd = socket(AF_INET, SOCK_STREAM, 0), res;

			io_uring_prep_connect(sqe_get(r), fd, (struct sockaddr *) &a, sizeof(a));
			submit_wait(r, 1);
			while (peek(r, &c))
				submit_wait(r, 1);
			res = c->res;
			seen(r, c);
			op_close(r, fd, 0);
			submit_wait(r, 1);
			while (peek(r, &c))
				submit_wait(r, 1);
			seen(r, c);
			if (res == 0)
				break;
			if (tries > 300)
				die("warm-up connect", res);
			usleep(10000);
		}
	}
}

/* ---- runs ---- */

struct hold_result {
	unsigned n;
	long cli_kb, srv_kb, slab_kb;
	double secs;
};

struct rate_result {
	double rate;
	unsigned retries;
};

static pid_t spawn_server(int x, int mode, unsigned n, int *rfd)
{
	int p[2];
	long ready;
	pid_t pid;

	if (pipe(p))
		die("pipe", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		close(p[0]);
		server(x, mode, n, p[1]);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &ready, sizeof(ready)) != sizeof(ready))
		die("server did not start", EIO);
	*rfd = p[0];
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The client runs in a child too, so that the descriptors and memory of the connections it
 * held go with it. It sends its figures back on a pipe. */
static void run_hold(int x, struct hold_result *out)
{
	int rfd, p[2];
	pid_t srv, cli;
	long slab10;
	struct report rep;
	char m;

	srv = spawn_server(x, M_HOLD, nconns, &rfd);
	if (pipe(p))
		die("pipe", errno);
	cli = fork();
	if (cli == 0) {
		struct ring r;
		struct cstats st;
		int *fds = calloc(nconns, sizeof(*fds));

		close(p[0]);
		if (x)
			add_ports(0);
		ring_init(&r, x);
		warm_up(&r);
		st.marker_fd = p[1];
		client_run(&r, M_HOLD, nconns, fds, &st);
		st.rss_delta_kb = rss_kb() - st.rss10;
		if (write(p[1], &st, sizeof(st)) != sizeof(st))
			die("write", errno);
		pause(); /* holding, until killed */
		_exit(0);
	}
	close(p[1]);
	{
		struct cstats st;

		if (read(p[0], &m, 1) != 1)
			die("client failed", EIO);
		slab10 = slab_kb();
		if (read(p[0], &st, sizeof(st)) != sizeof(st))
			die("client failed", EIO);
		if (read(rfd, &rep, sizeof(rep)) != sizeof(rep))
			die("server failed", EIO);
		usleep(200000); /* let the last ACKs settle */
		out->n = st.done;
		out->cli_kb = st.rss_delta_kb;
		out->srv_kb = rep.rss_delta_kb;
		out->slab_kb = slab_kb() - slab10;
		out->secs = st.secs;
		if (rep.count != nconns || st.done != nconns)
			die("not every connection was established and echoed", EIO);
	}
	reap(cli);
	reap(srv);
	close(p[0]);
	close(rfd);
	/* The kernel frees the sockets of the processes it just killed over the next moments;
	 * the next run's slab figures must not see that. */
	sleep(2);
}

static void run_rate(int x, struct rate_result *out)
{
	int rfd, p[2];
	pid_t srv, cli;

	srv = spawn_server(x, M_RATE, 0, &rfd);
	if (pipe(p))
		die("pipe", errno);
	cli = fork();
	if (cli == 0) {
		struct ring r;
		struct cstats st;

		close(p[0]);
		if (x)
			add_ports(0);
		ring_init(&r, x);
		warm_up(&r);
		st.marker_fd = -1;
		client_run(&r, M_RATE, 0, NULL, &st);
		if (write(p[1], &st, sizeof(st)) != sizeof(st))
			die("write", errno);
		_exit(0);
	}
	close(p[1]);
	{
		struct cstats st;
		int status;

		if (read(p[0], &st, sizeof(st)) != sizeof(st))
			die("rate client failed", EIO);
		waitpid(cli, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			die("rate client failed", EIO);
		out->rate = st.done / st.secs;
		out->retries = st.retries;
	}
	reap(srv);
	close(p[0]);
	close(rfd);
}

static void raise_nofile(unsigned need)
{
	struct rlimit rl;
	long max = proc_kb("/proc/sys/fs/nr_open", "");

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = need;
	if (rl.rlim_max < need) {
		rl.rlim_max = max > 0 && (rlim_t) max < need ? (rlim_t) max : need;
		rl.rlim_cur = rl.rlim_max;
	}
	if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < need) {
		fprintf(stderr,
			"bench_conns: cannot raise RLIMIT_NOFILE to %u (run as root, or lower "
			"--conns)\n",
			need);
		exit(1);
	}
}

static void show_hold(const char *name, const struct hold_result *h)
{
	printf("%-22s %u connections held, opened and echoed in %.2f s (%.0f/s)\n", name, h->n,
	       h->secs, h->n / h->secs);
	double per = 1024.0 / (h->n - tenth(h->n));

	printf("%-22s per connection: server process %.0f B, client process %.0f B, kernel slab "
	       "(both ends) %.0f B\n",
	       "", h->srv_kb * per, h->cli_kb * per, h->slab_kb * per);
}

int main(int argc, char **argv)
{
	struct hold_result hx, he, hk;
	struct rate_result rx[ROUNDS], rk[ROUNDS];
	double lo = 1e30, hi = 0, elo = 1e30, ehi = 0;
	int quick = 0, skip_hold = 0, xring_only = 0;
	char cap[32];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = 1;
			nconns = 2000;
			rate_secs = 0.5;
			rounds = 1;
		} else if (!strcmp(argv[i], "--conns") && i + 1 < argc) {
			nconns = (unsigned) strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--secs") && i + 1 < argc) {
			rate_secs = strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "--no-hold")) {
			skip_hold = 1;
		} else if (!strcmp(argv[i], "--xring-only")) {
			xring_only = 1; /* for profiling */
		} else {
			fprintf(stderr,
				"usage: %s [--quick] [--conns N] [--secs S] [--no-hold] [--xring-only]\n",
				argv[0]);
			return 2;
		}
	}
	if (nconns < 10)
		nconns = 10;
	snprintf(tag, sizeof(tag), "%d", (int) getpid());
	raise_nofile(nconns + 1000);
	/* Room for every connection and a margin for the rate runs' TIME_WAIT ones, per link
	 * (blocks are allocated as connections open, not at start). */
	snprintf(cap, sizeof(cap), "%u", nconns + 65536);
	setenv("XRING_TCP_MAX_CONN", cap, 0);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench_conns: %u connections over %d links (xring: memif, kernel: loopback io_uring), "
	       "%d in flight\n",
	       nconns, NLINK, WINDOW);
	if (!skip_hold) {
		run_hold(1, &hx);
		show_hold("xring (memif)", &hx);
		/* The server's descriptors as eventfds instead of TCP sockets. */
		setenv("XRING_ACCEPT_EVENTFD", "1", 1);
		run_hold(1, &he);
		unsetenv("XRING_ACCEPT_EVENTFD");
		show_hold("xring, eventfd accept", &he);
		run_hold(0, &hk);
		show_hold("kernel (loopback)", &hk);
		printf("memory per idle connection, process + kernel slab, both ends: xring %.0f B, "
		       "xring with eventfd accept %.0f B, kernel %.0f B\n",
		       (hx.srv_kb + hx.cli_kb + hx.slab_kb) * 1024.0 / (hx.n - tenth(hx.n)),
		       (he.srv_kb + he.cli_kb + he.slab_kb) * 1024.0 / (he.n - tenth(he.n)),
		       (hk.srv_kb + hk.cli_kb + hk.slab_kb) * 1024.0 / (hk.n - tenth(hk.n)));
	}
	for (int i = 0; i < rounds; i++) {
		struct rate_result re;
		double ratio;

		run_rate(1, &rx[i]);
		if (xring_only) {
			printf("setup rate round %d: xring %.0f/s\n", i + 1, rx[i].rate);
			continue;
		}
		run_rate(0, &rk[i]);
		setenv("XRING_ACCEPT_EVENTFD", "1", 1);
		run_rate(1, &re);
		unsetenv("XRING_ACCEPT_EVENTFD");
		ratio = rx[i].rate / rk[i].rate;
		if (ratio < lo)
			lo = ratio;
		if (ratio > hi)
			hi = ratio;
		if (re.rate / rk[i].rate < elo)
			elo = re.rate / rk[i].rate;
		if (re.rate / rk[i].rate > ehi)
			ehi = re.rate / rk[i].rate;
		printf("setup rate round %d: xring %.0f/s (%u retries), kernel %.0f/s, ratio %.2f; "
		       "xring with eventfd accept %.0f/s, ratio %.2f\n",
		       i + 1, rx[i].rate, rx[i].retries, rk[i].rate, ratio, re.rate,
		       re.rate / rk[i].rate);
	}
	if (!xring_only)
		printf("setup rate ratio xring/kernel over %d round(s): %.2f to %.2f (eventfd accept "
		       "%.2f to %.2f)\n",
		       rounds, lo, hi, elo, ehi);
	if (quick)
		printf("quick: every connection established and echoed\n");
	return 0;
}
