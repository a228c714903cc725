/*
 * 64-byte UDP ping-pong, one thread per end: xring sockets offloaded onto xring's stack over an
 * in-memory link (two ports, 198.18.0.1 and .2, one per end), against the kernel's UDP over
 * loopback in the same run (blocking sockets, busy-polling sockets, and io_uring).
 */
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <xring.h>

#include "cqe/timer.h"
#include "nic/memlink.h"
#include "nic/ports.h"

#define MSG 64

static int iters = 20000, warmup = 2000;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *rtt, double base_p50)
{
	double p50, p99;

	qsort(rtt, (size_t) iters, sizeof(*rtt), cmp_u64);
	p50 = (double) rtt[iters / 2] / 1000.0;
	p99 = (double) rtt[iters * 99 / 100] / 1000.0;
	printf("%-34s p50 %8.2f us  p99 %8.2f us", name, p50, p99);
	if (base_p50 > 0)
		printf("  RTT ratio vs this: %.1fx lower", base_p50 / p50);
	printf("\n");
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

/* Kernel UDP over loopback. mode 0: blocking; 1: busy-polling with MSG_DONTWAIT. */
struct kpeer {
	int fd, mode, n;
};

static ssize_t krecv(int fd, void *buf, int mode)
{
	ssize_t r;

	if (!mode)
		return recv(fd, buf, MSG, 0);
	while ((r = recv(fd, buf, MSG, MSG_DONTWAIT)) < 0)
		;
	return r;
}

static void *kecho(void *arg)
{
	struct kpeer *p = arg;
	char buf[MSG];
	struct sockaddr_in from;
	socklen_t len = sizeof(from);

	for (int i = 0; i < p->n; i++) {
		if (p->mode) {
			while (recvfrom(p->fd, buf, MSG, MSG_DONTWAIT, (struct sockaddr *) &from,
					&len) < 0)
				;
		} else {
			recvfrom(p->fd, buf, MSG, 0, (struct sockaddr *) &from, &len);
		}
		sendto(p->fd, buf, MSG, 0, (struct sockaddr *) &from, len);
	}
	return NULL;
}

static void kernel_run(int mode, uint64_t *rtt)
{
	struct sockaddr_in lo = sin_of("127.0.0.1", 0);
	socklen_t len = sizeof(lo);
	struct kpeer p = {socket(AF_INET, SOCK_DGRAM, 0), mode, iters + warmup};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[MSG] = {1};
	pthread_t th;

	bind(p.fd, (struct sockaddr *) &lo, sizeof(lo));
	getsockname(p.fd, (struct sockaddr *) &lo, &len);
	connect(fd, (struct sockaddr *) &lo, sizeof(lo));
	pthread_create(&th, NULL, kecho, &p);
	for (int i = -warmup; i < iters; i++) {
		uint64_t t = clock_mono_ns();

		send(fd, buf, MSG, 0);
		krecv(fd, buf, mode);
		if (i >= 0)
			rtt[i] = clock_mono_ns() - t;
	}
	pthread_join(th, NULL);
	close(fd);
	close(p.fd);
}

static void uring_run(uint64_t *rtt)
{
	struct sockaddr_in lo = sin_of("127.0.0.1", 0);
	socklen_t len = sizeof(lo);
	struct kpeer p = {socket(AF_INET, SOCK_DGRAM, 0), 0, iters + warmup};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char out[MSG] = {1}, in[MSG];
	struct io_uring ring;
	pthread_t th;

	bind(p.fd, (struct sockaddr *) &lo, sizeof(lo));
	getsockname(p.fd, (struct sockaddr *) &lo, &len);
	connect(fd, (struct sockaddr *) &lo, sizeof(lo));
	pthread_create(&th, NULL, kecho, &p);
	io_uring_queue_init(8, &ring, 0);
	for (int i = -warmup; i < iters; i++) {
		uint64_t t = clock_mono_ns();
		struct io_uring_cqe *cqe;

		io_uring_prep_send(io_uring_get_sqe(&ring), fd, out, MSG, 0);
		io_uring_prep_recv(io_uring_get_sqe(&ring), fd, in, MSG, 0);
		io_uring_submit_and_wait(&ring, 2);
		for (int k = 0; k < 2; k++) {
			io_uring_wait_cqe(&ring, &cqe);
			io_uring_cqe_seen(&ring, cqe);
		}
		if (i >= 0)
			rtt[i] = clock_mono_ns() - t;
	}
	io_uring_queue_exit(&ring);
	pthread_join(th, NULL);
	close(fd);
	close(p.fd);
}

/* xring: both ends offloaded, each on its own ring and thread. */
static void *xecho(void *arg)
{
	int n = *(int *) arg;
	struct sockaddr_in me = sin_of("198.18.0.2", 7000), from;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[MSG];
	struct iovec iov = {buf, MSG};
	struct msghdr msg = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
	struct xring ring;
	struct xring_cqe *cqe;

	xring_queue_init(8, &ring, 0);
	xring_prep_bind(xring_get_sqe(&ring), fd, (struct sockaddr *) &me, sizeof(me));
	xring_submit_and_wait(&ring, 1);
	xring_wait_cqe(&ring, &cqe);
	if (cqe->res) {
		fprintf(stderr, "bind: %d\n", cqe->res);
		exit(1);
	}
	xring_cqe_seen(&ring, cqe);
	for (int i = 0; i < n; i++) {
		msg.msg_namelen = sizeof(from);
		xring_prep_recvmsg(xring_get_sqe(&ring), fd, &msg, 0);
		xring_submit_and_wait(&ring, 1);
		xring_wait_cqe(&ring, &cqe);
		xring_cqe_seen(&ring, cqe);
		xring_prep_sendmsg(xring_get_sqe(&ring), fd, &msg, 0);
		xring_submit_and_wait(&ring, 1);
		xring_wait_cqe(&ring, &cqe);
		xring_cqe_seen(&ring, cqe);
	}
	xring_queue_exit(&ring);
	close(fd);
	return NULL;
}

static void xring_run(uint64_t *rtt)
{
	struct memlink_config mc = {.name = "bench"};
	struct sockaddr_in peer = sin_of("198.18.0.2", 7000);
	struct port *ends[2];
	char out[MSG] = {1}, in[MSG];
	struct xring ring;
	struct xring_cqe *cqe;
	pthread_t th;
	int n = iters + warmup, fd;

	if (memlink_create(&mc, ends)) {
		fprintf(stderr, "memlink_create failed\n");
		exit(1);
	}
	inet_pton(AF_INET, "198.18.0.1", &ends[0]->ip);
	inet_pton(AF_INET, "198.18.0.2", &ends[1]->ip);
	ends[0]->prefix_len = ends[1]->prefix_len = 24;
	ports_add(ends[0], 0, NULL);
	ports_add(ends[1], 0, NULL);
	pthread_create(&th, NULL, xecho, &n);
	usleep(100000); /* the echo side binds first */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	xring_queue_init(8, &ring, 0);
	xring_prep_connect(xring_get_sqe(&ring), fd, (struct sockaddr *) &peer, sizeof(peer));
	xring_submit_and_wait(&ring, 1);
	xring_wait_cqe(&ring, &cqe);
	if (cqe->res) {
		fprintf(stderr, "connect: %d\n", cqe->res);
		exit(1);
	}
	xring_cqe_seen(&ring, cqe);
	for (int i = -warmup; i < iters; i++) {
		uint64_t t = clock_mono_ns();

		xring_prep_send(xring_get_sqe(&ring), fd, out, MSG, 0);
		xring_prep_recv(xring_get_sqe(&ring), fd, in, MSG, 0);
		xring_submit_and_wait(&ring, 2);
		for (int k = 0; k < 2; k++) {
			xring_wait_cqe(&ring, &cqe);
			xring_cqe_seen(&ring, cqe);
		}
		if (i >= 0)
			rtt[i] = clock_mono_ns() - t;
	}
	pthread_join(th, NULL);
	xring_queue_exit(&ring);
	close(fd);
}

int main(int argc, char **argv)
{
	uint64_t *rtt = malloc(sizeof(*rtt) * (size_t) (argc > 1 ? atoi(argv[1]) : iters));
	double base[3];

	if (argc > 1)
		iters = atoi(argv[1]);
	printf("# 64-byte UDP ping-pong, %d round trips, one thread per end\n", iters);
	kernel_run(0, rtt);
	qsort(rtt, (size_t) iters, sizeof(*rtt), cmp_u64);
	base[0] = (double) rtt[iters / 2] / 1000.0;
	report("kernel UDP loopback, blocking", rtt, 0);
	kernel_run(1, rtt);
	qsort(rtt, (size_t) iters, sizeof(*rtt), cmp_u64);
	base[1] = (double) rtt[iters / 2] / 1000.0;
	report("kernel UDP loopback, busy-poll", rtt, 0);
	uring_run(rtt);
	qsort(rtt, (size_t) iters, sizeof(*rtt), cmp_u64);
	base[2] = (double) rtt[iters / 2] / 1000.0;
	report("kernel UDP loopback, io_uring", rtt, 0);
	xring_run(rtt);
	report("xring offloaded UDP, memlink", rtt, 0);
	qsort(rtt, (size_t) iters, sizeof(*rtt), cmp_u64);
	{
		double x = (double) rtt[iters / 2] / 1000.0;

		printf("ratios (p50 RTT, kernel / xring): blocking %.1fx  busy-poll %.1fx  "
		       "io_uring %.1fx\n",
		       base[0] / x, base[1] / x, base[2] / x);
	}
	free(rtt);
	return 0;
}
