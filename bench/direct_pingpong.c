/*
 * 64-byte TCP ping-pong on offloaded sockets over a memif link between two processes: the
 * client names its socket by a plain descriptor in one round and by a direct descriptor (a
 * registered-table slot, IOSQE_FIXED_FILE) in the next, same run, same server; both are
 * compared with kernel loopback TCP on io_uring (the same client through xring's kernel
 * path). It shows what direct descriptors cost on the offloaded path (they should cost
 * nothing: a slot lookup instead of a descriptor hash) and what offloading them gains.
 *
 * Usage: bench_direct_pingpong [ITERS] (default 20000 round trips per round, 3 rounds each).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#define MSG    64
#define ROUNDS 3
#define SRV_IP "198.18.0.2"
#define CLI_IP "198.18.0.1"
#define PORT   7100

enum {
	PLAIN,
	DIRECT,
	KERNEL,
	KINDS
};
static const char *const names[KINDS] = {
	"offloaded, plain descriptor", "offloaded, direct descriptor", "kernel loopback, io_uring"};

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_direct_pingpong: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

/* Submits and reaps n CQEs; the first failure, else the first result. */
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
		xring_cqe_seen(r, cqe);
	}
	return res;
}

static struct xring_sqe *get(struct xring *r)
{
	struct xring_sqe *sqe = xring_get_sqe(r);

	if (!sqe)
		die("get_sqe", EBUSY);
	return sqe;
}

static void fx(struct xring_sqe *sqe, bool fixed)
{
	if (fixed)
		sqe->flags |= XRING_SQE_FIXED_FILE;
}

/* Echoes each connection until its end; one connection at a time, conns in all. */
static void server(const char *spec, const struct sockaddr_in *me, int conns)
{
	static char buf[MSG];
	struct xring r;
	int lfd, fd, n;

	if ((n = xring_port_add(spec)) || (n = xring_queue_init(64, &r, 0)))
		die("server ring", n);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	xring_prep_bind(get(&r), lfd, (const struct sockaddr *) me, sizeof(*me));
	if ((n = x_wait(&r, 1)))
		die("bind", n);
	xring_prep_listen(get(&r), lfd, 8);
	if ((n = x_wait(&r, 1)))
		die("listen", n);
	/* The parent waits for this line before it connects. */
	if (write(STDOUT_FILENO, "ready\n", 6) != 6)
		die("ready", errno);
	for (int c = 0; c < conns; c++) {
		xring_prep_accept(get(&r), lfd, NULL, NULL, 0);
		fd = x_wait(&r, 1);
		if (fd < 0)
			die("accept", fd);
		for (;;) {
			xring_prep_recv(get(&r), fd, buf, MSG, MSG_WAITALL);
			if (x_wait(&r, 1) != MSG)
				break;
			xring_prep_send(get(&r), fd, buf, MSG, 0);
			x_wait(&r, 1);
		}
		xring_prep_close(get(&r), fd);
		x_wait(&r, 1);
	}
	xring_queue_exit(&r);
}

/* One round of iters round trips; returns the median RTT in ns. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static uint64_t round_trips(struct xring *r, const struct sockaddr_in *to, bool direct, int iters,
			    uint64_t *rtt)
{
	static char out[MSG], in[MSG];
	int fd = direct ? 0 : socket(AF_INET, SOCK_STREAM, 0);
	struct xring_sqe *s;
	int32_t res;

	if (direct) {
		xring_prep_socket_direct(get(r), AF_INET, SOCK_STREAM, 0, 0, 0);
		if ((res = x_wait(r, 1)))
			die("socket_direct", res);
	}
	s = get(r);
	xring_prep_connect(s, fd, (const struct sockaddr *) to, sizeof(*to));
	fx(s, direct);
	if ((res = x_wait(r, 1)))
		die("connect", res);
	for (int i = -1000; i < iters; i++) {
		uint64_t t = now_ns();

		s = get(r);
		xring_prep_send(s, fd, out, MSG, 0);
		fx(s, direct);
		s = get(r);
		xring_prep_recv(s, fd, in, MSG, MSG_WAITALL);
		fx(s, direct);
		if ((res = x_wait(r, 2)) != MSG)
			die("ping-pong", res < 0 ? res : EIO);
		if (i >= 0)
			rtt[i] = now_ns() - t;
	}
	if (direct)
		xring_prep_close_direct(get(r), 0);
	else
		xring_prep_close(get(r), fd);
	x_wait(r, 1);
	qsort(rtt, (size_t) iters, sizeof(*rtt), cmp_u64);
	return rtt[iters / 2];
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20000;
	struct sockaddr_in srv = sin_of(SRV_IP, PORT), lo = sin_of("127.0.0.1", 0);
	char spec_s[128], spec_c[128], line[16];
	uint64_t med[KINDS][ROUNDS], *rtt = calloc((size_t) iters, sizeof(*rtt));
	struct xring r;
	int pipefd[2], status, ret;
	pid_t pid;

	if (iters < 1 || !rtt)
		die("usage: bench_direct_pingpong [ITERS]", EINVAL);
	setenv("XRING_TCP_NODELAY", "1", 0);
	snprintf(spec_s, sizeof(spec_s), "memif:path=@xring-bdp-%d,role=server,ip=" SRV_IP "/24",
		 (int) getpid());
	snprintf(spec_c, sizeof(spec_c), "memif:path=@xring-bdp-%d,role=client,ip=" CLI_IP "/24",
		 (int) getpid());
	if (pipe(pipefd))
		die("pipe", errno);
	pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], STDOUT_FILENO);
		server(spec_s, &srv, 2 * ROUNDS);
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], line, sizeof(line)) <= 0)
		die("the server did not start", EIO);
	if ((ret = xring_port_add(spec_c)) || (ret = xring_queue_init(64, &r, 0)) ||
	    (ret = xring_register_files_sparse(&r, 4)))
		die("client ring", ret);

	/* The kernel's echo: a process on blocking loopback sockets. */
	{
		int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		socklen_t len = sizeof(lo);
		pid_t kpid;

		if (bind(lfd, (struct sockaddr *) &lo, sizeof(lo)) || listen(lfd, 8) ||
		    getsockname(lfd, (struct sockaddr *) &lo, &len))
			die("kernel listener", errno);
		kpid = fork();
		if (kpid == 0) {
			static char buf[MSG];

			for (int c = 0; c < ROUNDS; c++) {
				int fd = accept(lfd, NULL, NULL);

				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				while (recv(fd, buf, MSG, MSG_WAITALL) == MSG)
					if (send(fd, buf, MSG, 0) != MSG)
						break;
				close(fd);
			}
			_exit(0);
		}
		close(lfd);
		for (int k = 0; k < ROUNDS; k++) {
			/* Interleaved rounds, so a noisy moment hits every kind alike. */
			med[PLAIN][k] = round_trips(&r, &srv, false, iters, rtt);
			med[DIRECT][k] = round_trips(&r, &srv, true, iters, rtt);
			med[KERNEL][k] = round_trips(&r, &lo, false, iters, rtt);
		}
		waitpid(kpid, NULL, 0);
	}
	xring_queue_exit(&r);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the server process failed", EIO);

	printf("64-byte TCP ping-pong, %d round trips per round, median RTT per round (us)\n",
	       iters);
	for (int k = 0; k < KINDS; k++) {
		printf("%-30s", names[k]);
		for (int i = 0; i < ROUNDS; i++)
			printf(" %8.2f", (double) med[k][i] / 1000);
		printf("\n");
	}
	for (int i = 0; i < ROUNDS; i++)
		printf("round %d: direct / plain %.2f, kernel / direct %.1f\n", i + 1,
		       (double) med[DIRECT][i] / (double) med[PLAIN][i],
		       (double) med[KERNEL][i] / (double) med[DIRECT][i]);
	free(rtt);
	return 0;
}
