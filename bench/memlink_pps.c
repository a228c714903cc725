/*
 * Frames per second through the in-memory link (64-byte frames, batches of 32), bare and with
 * the fault decorator at rate 0 on both ends, on one thread and with one thread per end. An
 * in-memory link has no kernel twin, so the reference is an AF_UNIX SOCK_SEQPACKET socketpair
 * moving the same frames with sendmmsg/recvmmsg in batches of 32, measured in the same run.
 *
 * usage: memlink_pps [seconds per measurement, default 1]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nic/fault.h"
#include "nic/memlink.h"

enum {
	FRAME = 64,
	BATCH = 32,
	CHUNK = 1 << 16
};

static double secs;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t zero_clock(void *arg)
{
	return 0;
}

/* Send one batch on q; returns the number sent. */
static unsigned send_batch(struct port_queue *q, uint32_t seq)
{
	struct port_frame f[BATCH];
	int n = port_tx_alloc(q, f, BATCH);

	for (int i = 0; i < n; i++) {
		memcpy(f[i].data, &seq, sizeof(seq)); /* touch the frame like a real sender */
		seq++;
		f[i].len = FRAME;
	}
	if (n > 0 && port_tx_post(q, f, (unsigned) n) != n) {
		fprintf(stderr, "tx_post refused frames\n");
		exit(1);
	}
	port_tx_flush(q);
	return n > 0 ? (unsigned) n : 0;
}

/* Receive and release one batch from q; returns the number received. */
static unsigned recv_batch(struct port_queue *q, uint64_t *sum)
{
	struct port_frame f[BATCH];
	int n = port_rx_poll(q, f, BATCH);

	for (int i = 0; i < n; i++)
		*sum += *(const uint8_t *) f[i].data; /* read it like a real receiver */
	if (n > 0)
		port_rx_release(q, f, (unsigned) n);
	return n > 0 ? (unsigned) n : 0;
}

static void make_link(int faulty, struct port *p[2])
{
	struct fault_config fc = {.seed = 1, .now = zero_clock};

	if (memlink_create(&(struct memlink_config){.nbufs = 512}, p)) {
		fprintf(stderr, "memlink_create failed\n");
		exit(1);
	}
	for (int i = 0; faulty && i < 2; i++) {
		if (fault_wrap(p[i], &fc, &p[i])) {
			fprintf(stderr, "fault_wrap failed\n");
			exit(1);
		}
	}
}

static double mem_one_thread(int faulty)
{
	struct port *p[2];
	uint64_t frames = 0, sum = 0;
	double t0 = now_s(), t;

	make_link(faulty, p);
	do {
		for (unsigned k = 0; k < CHUNK / BATCH; k++) {
			send_batch(p[0]->queues[0], (uint32_t) frames);
			frames += recv_batch(p[1]->queues[0], &sum);
		}
		t = now_s() - t0;
	} while (t < secs);
	p[0]->ops->destroy(p[0]);
	p[1]->ops->destroy(p[1]);
	return (double) frames / t + (double) (sum & 0); /* sum keeps the reads alive */
}

struct recv_arg {
	struct port_queue *q;
	volatile int stop;
	uint64_t frames, sum;
};

static void *receiver(void *arg)
{
	struct recv_arg *r = arg;

	while (!r->stop) {
		unsigned n = recv_batch(r->q, &r->sum);

		/* Idle: on an oversubscribed machine the sender may need this core. */
		if (!n)
			sched_yield();
		r->frames += n;
	}
	return NULL;
}

static double mem_two_threads(int faulty)
{
	struct port *p[2];
	struct recv_arg r = {0};
	pthread_t th;
	uint64_t seq = 0;
	double t0, t;

	make_link(faulty, p);
	r.q = p[1]->queues[0];
	if (pthread_create(&th, NULL, receiver, &r))
		exit(1);
	t0 = now_s();
	do {
		for (unsigned k = 0; k < CHUNK / BATCH; k++) {
			unsigned n = send_batch(p[0]->queues[0], (uint32_t) seq);

			if (!n)
				sched_yield(); /* out of buffers: let the receiver run */
			seq += n;
		}
		t = now_s() - t0;
	} while (t < secs);
	r.stop = 1;
	pthread_join(th, NULL);
	p[0]->ops->destroy(p[0]);
	p[1]->ops->destroy(p[1]);
	return (double) r.frames / t;
}

static double kernel_seqpacket(void)
{
	static uint8_t buf[BATCH][FRAME];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	uint64_t frames = 0;
	double t0, t;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) {
		perror("socketpair");
		exit(1);
	}
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){buf[i], FRAME};
		m[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
	}
	t0 = now_s();
	do {
		for (unsigned k = 0; k < CHUNK / BATCH / 16; k++) {
			int s = sendmmsg(sv[0], m, BATCH, 0), r;

			if (s <= 0) {
				perror("sendmmsg");
				exit(1);
			}
			for (int got = 0; got < s; got += r) {
				r = recvmmsg(sv[1], m, (unsigned) (s - got), 0, NULL);
				if (r <= 0) {
					perror("recvmmsg");
					exit(1);
				}
			}
			frames += (unsigned) s;
		}
		t = now_s() - t0;
	} while (t < secs);
	close(sv[0]);
	close(sv[1]);
	return (double) frames / t;
}

int main(int argc, char **argv)
{
	double k, m1, f1, m2, f2;

	secs = argc > 1 ? atof(argv[1]) : 1.0;
	if (secs <= 0)
		secs = 1.0;
	k = kernel_seqpacket();
	m1 = mem_one_thread(0);
	f1 = mem_one_thread(1);
	m2 = mem_two_threads(0);
	f2 = mem_two_threads(1);
	printf("kernel AF_UNIX SEQPACKET socketpair, 64 B, sendmmsg/recvmmsg x32, 1 thread: "
	       "%.2f Mframes/s\n",
	       k / 1e6);
	printf("memlink 64 B, 1 thread: %.2f Mframes/s (%.1fx kernel)\n", m1 / 1e6, m1 / k);
	printf("memlink + fault at rate 0, 64 B, 1 thread: %.2f Mframes/s (%.1fx kernel, %.2f of "
	       "bare)\n",
	       f1 / 1e6, f1 / k, f1 / m1);
	printf("memlink 64 B, 2 threads: %.2f Mframes/s (%.1fx kernel)\n", m2 / 1e6, m2 / k);
	printf("memlink + fault at rate 0, 64 B, 2 threads: %.2f Mframes/s (%.1fx kernel)\n",
	       f2 / 1e6, f2 / k);
	return 0;
}
