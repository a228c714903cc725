/*
 * Connections: how fast they are set up, and what an idle one costs. Two processes, each with
 * its own xring, joined by NLINK memif links (no root needed), then the same two processes on
 * the kernel's TCP over loopback with io_uring.
 *
 * Setup rate: the client keeps WINDOW connections in flight. A cycle is socket + connect; the
 * server accepts, sends one byte and closes; the client reads the byte and the end of the
 * stream, and closes. Cycles per second, xring against the kernel, ROUNDS times interleaved.
 *
 * Hold: N connections (100,000 by default) are opened, each checked with an 8-byte echo, and
 * kept open while memory is read: each process's resident set (VmRSS) and the kernel's slab
 * memory (/proc/meminfo Slab, system-wide, so both ends), from a tenth of the connections to
 * all of them; per connection, that growth over the nine tenths.
 *
 * xring: ONE server process holds all N, accepted by multishot accept direct into a registered
 * table larger than the kernel's (XRING_FILES_MAX): the kernel may register no more slots than
 * RLIMIT_NOFILE (20,000 hard here, not raisable even as root in this container), so the slots
 * past it exist in xring only and hold accepted connections with no kernel descriptor or
 * socket at all. The server lowers its own RLIMIT_NOFILE to SRV_NOFILE, so all but the first
 * SRV_NOFILE connections land in xring-only slots (it prints how many). The clients are
 * CLI_CONNS connections per process, each process on a memif link of its own, started one
 * after the other: an offloaded client socket keeps a kernel socket (its placeholder, which
 * reserves its port: the kernel's ephemeral range holds some 28,000 ports per address) and so
 * a descriptor, and a process has at most RLIMIT_NOFILE.
 *
 * Kernel: the same hold over loopback TCP with io_uring, at the largest N the descriptor
 * limit lets one server process hold (both ends need a descriptor per connection); 100,000
 * kernel connections in one process are impossible here for that reason, and the output says
 * so. NLINK server ports, because of the ephemeral range.
 *
 * --quick: 2,000 connections (about 1,000 in xring-only slots, the server's limit lowered to
 * 1,024) over two client processes, and one short rate round; it exits non-zero unless every
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

#define NLINK      4
#define MAXLINK    64
#define SRV_NOFILE 1024  /* the xring server's RLIMIT_NOFILE: its kernel table's size */
#define CLI_CONNS  12500 /* connections per xring client process */
#define SLACK      64    /* registered slots beyond N: warm-up connections */
#define PORT       7100
#define WINDOW     64
#define ROUNDS     3
#define QD         512

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
static unsigned cli_conns = CLI_CONNS; /* connections per xring client process */
static int nlinks = NLINK; /* the server's links (xring) or ports (kernel) in this run */
static int cli_link0, cli_nlink = NLINK; /* the links a client process connects over */

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

/* The kernel's TCP sockets (active objects of the TCP slab), or -1 when /proc/slabinfo cannot
 * be read (it takes root). */
static long tcp_socks(void)
{
	char line[512];
	long v = -1;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "TCP ", 4)) {
			v = strtol(line + 4, NULL, 10);
			break;
		}
	fclose(f);
	return v;
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
	int k0 = server ? 0 : cli_link0, kn = server ? nlinks : cli_link0 + cli_nlink;

	for (int k = k0; k < kn; k++) {
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
	unsigned xonly; /* in xring-only slots */
	long slab10_kb; /* the kernel's slab (system-wide) at a tenth */
	long tcp10;     /* the kernel's TCP sockets then */
};

static unsigned tenth(unsigned n)
{
	return n / 10;
}

static void prep_fixed(struct ring *r, struct io_uring_sqe *s, int direct)
{
	if (direct)
		s->flags |= IOSQE_FIXED_FILE;
	(void) r;
}

/* xring's hold: a registered table of n + SLACK slots, most of them past the kernel's. */
static void direct_table(struct ring *r, unsigned n)
{
	int ret = xring_register_files_sparse(&r->xr, n + SLACK);

	if (ret)
		die("xring_register_files_sparse (past the kernel's table)", ret);
}

/* Accepts on nlinks listeners. Hold: echo 8 bytes once per connection and keep it; after the
 * n-th echo, the report on rep_fd. Rate: send a byte and close. Runs until killed. xring's hold
 * accepts into direct descriptors (see the header). */
static void server(int x, int mode, unsigned n, int rep_fd)
{
	static const char one = '!';
	int direct = x && mode == M_HOLD;
	uint64_t *buf;
	struct rlimit rl;
	struct ring r;
	int lfd[MAXLINK];
	unsigned echoed = 0, xonly = 0, nbuf;
	long rss0, rss10 = 0, slab10 = 0, tcp10 = 0;

	if (direct) {
		char v[32];

		/* A small kernel table: all but its first slots are xring's only. */
		rl.rlim_cur = rl.rlim_max = SRV_NOFILE;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			die("setrlimit", errno);
		snprintf(v, sizeof(v), "%u", n + SLACK);
		setenv("XRING_FILES_MAX", v, 1);
	}
	if (x)
		add_ports(1);
	ring_init(&r, x);
	getrlimit(RLIMIT_NOFILE, &rl);
	nbuf = direct ? n + SLACK : (unsigned) rl.rlim_cur;
	buf = calloc(nbuf, sizeof(*buf));
	if (!buf)
		die("calloc", ENOMEM);
	if (direct)
		direct_table(&r, n);
	for (int k = 0; k < nlinks; k++) {
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

			if (direct)
				xring_prep_multishot_accept_direct((struct xring_sqe *) s, lfd[k],
								   NULL, NULL, 0);
			else
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
			struct io_uring_sqe *s;

			seen(&r, c);
			switch (UD_KIND(ud)) {
			case K_ACCEPT:
				if (!(flags & IORING_CQE_F_MORE)) {
					s = sqe_get(&r);
					if (direct)
						xring_prep_multishot_accept_direct(
							(struct xring_sqe *) s, lfd[UD_X(ud)], NULL,
							NULL, 0);
					else
						io_uring_prep_multishot_accept(s, lfd[UD_X(ud)],
									       NULL, NULL, 0);
					io_uring_sqe_set_data64(s, ud);
				}
				if (res < 0) {
					if (res == -EMFILE || res == -ENFILE || res == -ENOMEM)
						die("accept", res);
					break;
				}
				if ((unsigned) res >= nbuf)
					die("accept: slot past the table", ERANGE);
				if (direct && res >= SRV_NOFILE)
					xonly++;
				s = sqe_get(&r);
				if (mode == M_RATE) {
					io_uring_prep_send(s, res, &one, 1, 0);
					io_uring_sqe_set_data64(s, UD(K_SEND, res));
				} else {
					io_uring_prep_recv(s, res, &buf[res], 8, MSG_WAITALL);
					prep_fixed(&r, s, direct);
					io_uring_sqe_set_data64(s, UD(K_RECV, res));
				}
				break;
			case K_RECV:
				if (res != 8) {
					/* a warm-up connection */
					s = sqe_get(&r);
					if (direct)
						xring_prep_close_direct((struct xring_sqe *) s,
									(unsigned) fd);
					else
						io_uring_prep_close(s, fd);
					io_uring_sqe_set_data64(s, UD(K_CLOSE, fd));
					if (direct && fd >= SRV_NOFILE)
						xonly--;
				} else {
					s = sqe_get(&r);
					io_uring_prep_send(s, fd, &buf[fd], 8, 0);
					prep_fixed(&r, s, direct);
					io_uring_sqe_set_data64(s, UD(K_SEND, fd));
				}
				break;
			case K_SEND:
				if (mode == M_RATE || res != 8) {
					op_close(&r, fd, UD(K_CLOSE, fd));
					break;
				}
				if (++echoed == tenth(n)) {
					rss10 = rss_kb();
					slab10 = slab_kb();
					tcp10 = tcp_socks();
				}
				if (echoed == n) {
					struct report rep = {rss_kb() - rss10, echoed, xonly,
							     slab10, tcp10};

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
};

static void start_connect(struct ring *r, struct slot *s, unsigned i, unsigned seq)
{
	static struct sockaddr_in a[2][MAXLINK];
	static int init;
	struct io_uring_sqe *q;

	if (!init) {
		for (int k = 0; k < MAXLINK; k++) {
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
	io_uring_prep_connect(
		q, s->fd,
		(struct sockaddr *) &a[r->x][cli_link0 + (int) (seq % (unsigned) cli_nlink)],
		sizeof(a[0][0]));
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

	memset(st, 0, sizeof(*st));
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
	for (int k = cli_link0; k < cli_link0 + cli_nlink; k++) {
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
	unsigned n, xonly;
	long cli_kb, srv_kb, slab_kb;
	long tcp; /* kernel TCP sockets more, -1 unknown */
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

/* A client process: n connections over links [link0, link0 + nl), held until killed. Its
 * figures come back on *rfd once they are all open and echoed. */
static pid_t spawn_client(int x, unsigned n, int link0, int nl, int *rfd)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		die("pipe", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		struct ring r;
		struct cstats st;
		int *fds = calloc(n, sizeof(*fds));
		long rss;

		close(p[0]);
		cli_link0 = link0;
		cli_nlink = nl;
		if (x)
			add_ports(0);
		ring_init(&r, x);
		warm_up(&r);
		rss = rss_kb();
		client_run(&r, M_HOLD, n, fds, &st);
		st.rss_delta_kb = rss_kb() - rss;
		if (write(p[1], &st, sizeof(st)) != sizeof(st))
			die("write", errno);
		pause(); /* holding, until killed */
		_exit(0);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/*
 * Holds n connections: one server process; the clients one process after the other, each
 * with its own links (xring) or all on NLINK server ports (kernel, one process). Every
 * process stays until all connections were counted.
 */
static void run_hold(int x, unsigned n, struct hold_result *out)
{
	unsigned per = x ? cli_conns : n;
	int ncli = (int) ((n + per - 1) / per), rfd;
	pid_t srv, cli[MAXLINK];
	struct report rep;
	unsigned done = 0;
	long cli_kb = 0;
	double secs = 0;

	if (ncli > MAXLINK)
		die("too many connections for the links", E2BIG);
	nlinks = x ? ncli : NLINK;
	srv = spawn_server(x, M_HOLD, n, &rfd);
	for (int c = 0; c < ncli; c++) {
		unsigned nc = n - done < per ? n - done : per;
		struct cstats st;
		int cfd;

		cli[c] = x ? spawn_client(1, nc, c, 1, &cfd) : spawn_client(0, nc, 0, NLINK, &cfd);
		if (read(cfd, &st, sizeof(st)) != sizeof(st))
			die("client failed", EIO);
		close(cfd);
		if (st.done != nc)
			die("a client did not open all its connections", EIO);
		done += st.done;
		cli_kb += st.rss_delta_kb;
		secs += st.secs;
	}
	out->secs = secs; /* the clients' connecting, their link setup left out */
	if (read(rfd, &rep, sizeof(rep)) != sizeof(rep))
		die("server failed", EIO);
	usleep(200000); /* let the last ACKs settle */
	out->n = done;
	out->xonly = rep.xonly;
	out->cli_kb = cli_kb;
	out->srv_kb = rep.rss_delta_kb;
	out->slab_kb = slab_kb() - rep.slab10_kb;
	out->tcp = rep.tcp10 < 0 ? -1 : tcp_socks() - rep.tcp10;
	if (rep.count != n || done != n)
		die("not every connection was established and echoed", EIO);
	for (int c = 0; c < ncli; c++)
		reap(cli[c]);
	reap(srv);
	close(rfd);
	nlinks = NLINK;
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

/* Raises RLIMIT_NOFILE toward need (past the hard limit only with CAP_SYS_RESOURCE); returns
 * the limit reached. */
static unsigned nofile_up_to(unsigned need)
{
	struct rlimit rl;
	long max = proc_kb("/proc/sys/fs/nr_open", "");

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= need)
		return (unsigned) (rl.rlim_cur < UINT32_MAX ? rl.rlim_cur : UINT32_MAX);
	if (rl.rlim_max < need) {
		struct rlimit up = {need, need};

		if (max > 0 && (rlim_t) max < need)
			up.rlim_cur = up.rlim_max = (rlim_t) max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (unsigned) (rl.rlim_cur < UINT32_MAX ? rl.rlim_cur : UINT32_MAX);
}

static double per_conn(long kb, unsigned n)
{
	return kb * 1024.0 / (n - tenth(n));
}

static void show_hold(const char *name, const struct hold_result *h)
{
	printf("%-18s %u connections held, opened and echoed in %.2f s (%.0f/s)\n", name, h->n,
	       h->secs, h->n / h->secs);
	printf("%-18s per connection: server process %.0f B, client processes %.0f B, kernel slab "
	       "(both ends) %.0f B; total %.0f B\n",
	       "", per_conn(h->srv_kb, h->n), per_conn(h->cli_kb, h->n), per_conn(h->slab_kb, h->n),
	       per_conn(h->srv_kb + h->cli_kb + h->slab_kb, h->n));
	if (h->tcp >= 0)
		printf("%-18s kernel TCP sockets per connection (both ends): %.2f\n", "",
		       (double) h->tcp / (h->n - tenth(h->n)));
}

int main(int argc, char **argv)
{
	struct hold_result hx, hk;
	struct rate_result rx[ROUNDS], rk[ROUNDS];
	double lo = 1e30, hi = 0, elo = 1e30, ehi = 0;
	int quick = 0, skip_hold = 0, xring_only = 0;
	unsigned lim, kn;
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
	lim = nofile_up_to(nconns + 1000);
	if (quick)
		cli_conns = 1000;
	if (lim < (nconns < cli_conns ? nconns : cli_conns) + 1000)
		die("RLIMIT_NOFILE too low for one client process", EMFILE);
	/* Both ends of a kernel connection take a descriptor each, in their own process. */
	kn = nconns < lim - 1000 ? nconns : lim - 1000;
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
		run_hold(1, nconns, &hx);
		printf("xring: one server process holds all %u connections, %u of them in "
		       "xring-only slots (no kernel descriptor or socket; its RLIMIT_NOFILE is %d), "
		       "%u client processes\n",
		       hx.n, hx.xonly, SRV_NOFILE, (hx.n + cli_conns - 1) / cli_conns);
		show_hold("xring (memif)", &hx);
		if (kn < nconns)
			printf("kernel: %u connections in one process are impossible here "
			       "(RLIMIT_NOFILE %u, a descriptor each): measured at %u\n",
			       nconns, lim, kn);
		run_hold(0, kn, &hk);
		show_hold("kernel (loopback)", &hk);
		printf("memory per idle connection, process + kernel slab, both ends: xring %.0f B "
		       "(at %u), kernel %.0f B (at %u); server process + all slab: xring %.0f B, "
		       "kernel %.0f B\n",
		       per_conn(hx.srv_kb + hx.cli_kb + hx.slab_kb, hx.n), hx.n,
		       per_conn(hk.srv_kb + hk.cli_kb + hk.slab_kb, hk.n), hk.n,
		       per_conn(hx.srv_kb + hx.slab_kb, hx.n),
		       per_conn(hk.srv_kb + hk.slab_kb, hk.n));
		if (quick && hx.xonly == 0)
			die("no connection landed in an xring-only slot", EIO);
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
