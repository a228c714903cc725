/*
 * 64-byte TCP ping-pong over loopback: a client on raw liburing against the same client on
 * xring's kernel fallback, same run, same echo peer (a thread on blocking sockets). Each round
 * trip submits a send and a receive and waits for both CQEs. xring is measured twice: with its
 * default spin budget before sleeping, and with XRING_SPIN_US=0 (sleep at once, the kernel
 * ring's behaviour), which shows the fallback's own overhead. The last lines are from the
 * last round; the summary is the median over all rounds.
 */
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#define MSG 64

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void *echo(void *arg)
{
	int fd = *(int *) arg;
	char buf[MSG];

	for (;;) {
		size_t got = 0;

		while (got < MSG) {
			ssize_t r = recv(fd, buf + got, MSG - got, 0);

			if (r <= 0)
				return NULL;
			got += (size_t) r;
		}
		if (send(fd, buf, MSG, 0) != MSG)
			return NULL;
	}
}

/* A connected pair on loopback: *client for the ring, the other end served by an echo thread. */
static int connect_pair(pthread_t *th, int *server_fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0), cfd;

	bind(lfd, (struct sockaddr *) &sa, sizeof(sa));
	listen(lfd, 1);
	getsockname(lfd, (struct sockaddr *) &sa, &len);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(cfd, (struct sockaddr *) &sa, sizeof(sa))) {
		perror("connect");
		exit(1);
	}
	*server_fd = accept(lfd, NULL, NULL);
	close(lfd);
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_create(th, NULL, echo, server_fd);
	return cfd;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

struct result {
	double p50_us, p99_us, msgs_per_s;
};

static struct result summarize(uint64_t *rtt, int n, uint64_t total_ns)
{
	struct result r;

	qsort(rtt, (size_t) n, sizeof(*rtt), cmp_u64);
	r.p50_us = (double) rtt[n / 2] / 1000.0;
	r.p99_us = (double) rtt[n * 99 / 100] / 1000.0;
	r.msgs_per_s = (double) n * 1e9 / (double) total_ns;
	return r;
}

static struct result run_liburing(int iters)
{
	uint64_t *rtt = malloc(sizeof(*rtt) * (size_t) iters), t0;
	char out[MSG] = {1}, in[MSG];
	struct io_uring ring;
	pthread_t th;
	int sfd, fd = connect_pair(&th, &sfd);
	struct result r;

	io_uring_queue_init(8, &ring, 0);
	t0 = now_ns();
	for (int i = -1000; i < iters; i++) {
		uint64_t t = now_ns();
		struct io_uring_cqe *cqe;
		int done = 0;

		io_uring_prep_send(io_uring_get_sqe(&ring), fd, out, MSG, 0);
		io_uring_prep_recv(io_uring_get_sqe(&ring), fd, in, MSG, MSG_WAITALL);
		io_uring_submit_and_wait(&ring, 2);
		while (done < 2) {
			io_uring_wait_cqe(&ring, &cqe);
			io_uring_cqe_seen(&ring, cqe);
			done++;
		}
		if (i == -1)
			t0 = now_ns();
		if (i >= 0)
			rtt[i] = now_ns() - t;
	}
	r = summarize(rtt, iters, now_ns() - t0);
	io_uring_queue_exit(&ring);
	shutdown(fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(fd);
	close(sfd);
	free(rtt);
	return r;
}

static struct result run_xring(int iters, const char *spin_us)
{
	uint64_t *rtt = malloc(sizeof(*rtt) * (size_t) iters), t0;
	char out[MSG] = {1}, in[MSG];
	struct xring ring;
	pthread_t th;
	int sfd, fd = connect_pair(&th, &sfd);
	struct result r;

	if (spin_us)
		setenv("XRING_SPIN_US", spin_us, 1);
	else
		unsetenv("XRING_SPIN_US");
	if (xring_queue_init(8, &ring, 0)) {
		fprintf(stderr, "xring_queue_init failed\n");
		exit(1);
	}
	t0 = now_ns();
	for (int i = -1000; i < iters; i++) {
		uint64_t t = now_ns();
		struct xring_cqe *cqe;
		int done = 0;

		xring_prep_send(xring_get_sqe(&ring), fd, out, MSG, 0);
		xring_prep_recv(xring_get_sqe(&ring), fd, in, MSG, MSG_WAITALL);
		xring_submit_and_wait(&ring, 2);
		while (done < 2) {
			xring_wait_cqe(&ring, &cqe);
			xring_cqe_seen(&ring, cqe);
			done++;
		}
		if (i == -1)
			t0 = now_ns();
		if (i >= 0)
			rtt[i] = now_ns() - t;
	}
	r = summarize(rtt, iters, now_ns() - t0);
	xring_queue_exit(&ring);
	shutdown(fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(fd);
	close(sfd);
	free(rtt);
	return r;
}

static void show(const char *name, struct result r, struct result base)
{
	printf("%-28s p50 %7.1f us  p99 %7.1f us  %9.0f msg/s  p50 ratio vs liburing %.2f\n", name,
	       r.p50_us, r.p99_us, r.msgs_per_s, r.p50_us / base.p50_us);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	enum {
		ROUNDS = 5
	};
	int iters = argc > 1 ? atoi(argv[1]) : 20000;
	double p50[3][ROUNDS], med[3];
	struct result k, x, x0;

	printf("# 64-byte TCP ping-pong over loopback, %d round trips in %d interleaved rounds, echo "
	       "peer on blocking sockets\n",
	       iters, ROUNDS);
	/* Interleaved rounds and medians: this VM's scheduling alone moves one run by 15%. */
	for (int r = 0; r < ROUNDS; r++) {
		k = run_liburing(iters / ROUNDS);
		x0 = run_xring(iters / ROUNDS, "0");
		x = run_xring(iters / ROUNDS, NULL);
		p50[0][r] = k.p50_us;
		p50[1][r] = x0.p50_us;
		p50[2][r] = x.p50_us;
	}
	for (int v = 0; v < 3; v++) {
		qsort(p50[v], ROUNDS, sizeof(double), cmp_double);
		med[v] = p50[v][ROUNDS / 2];
	}
	show("liburing (kernel ring)", k, k);
	show("xring fallback, no spin", x0, k);
	show("xring fallback, spin 50us", x, k);
	printf("median p50 RTT over %d rounds: liburing %.1f us, xring no spin %.1f us (%+.1f%%), "
	       "xring spin %.1f us (%+.1f%%)\n",
	       ROUNDS, med[0], med[1], (med[1] / med[0] - 1) * 100, med[2],
	       (med[2] / med[0] - 1) * 100);
	return 0;
}
