/*
 * NOP throughput: xring against the kernel's io_uring (through liburing), same run, same loop
 * shape: fill a batch of NOP SQEs, submit, reap the batch of CQEs.
 */
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xring.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static double run_kernel(unsigned batch, double secs)
{
	struct io_uring ring;
	unsigned long ops = 0;
	double t0, t;

	if (io_uring_queue_init(64, &ring, 0)) {
		fprintf(stderr, "io_uring_queue_init failed\n");
		exit(1);
	}
	t0 = now_s();
	do {
		for (int rep = 0; rep < 64; rep++) {
			struct io_uring_cqe *cqe;
			unsigned head, n = 0;

			for (unsigned i = 0; i < batch; i++)
				io_uring_prep_nop(io_uring_get_sqe(&ring));
			io_uring_submit_and_wait(&ring, batch);
			io_uring_for_each_cqe(&ring, head, cqe) n++;
			io_uring_cq_advance(&ring, n);
			ops += n;
		}
		t = now_s() - t0;
	} while (t < secs);
	io_uring_queue_exit(&ring);
	return (double) ops / t;
}

static double run_xring(unsigned batch, double secs)
{
	struct xring ring;
	unsigned long ops = 0;
	double t0, t;

	if (xring_queue_init(64, &ring, 0)) {
		fprintf(stderr, "xring_queue_init failed\n");
		exit(1);
	}
	t0 = now_s();
	do {
		for (int rep = 0; rep < 64; rep++) {
			struct xring_cqe *cqe;
			unsigned head, n = 0;

			for (unsigned i = 0; i < batch; i++)
				xring_prep_nop(xring_get_sqe(&ring));
			xring_submit_and_wait(&ring, batch);
			xring_for_each_cqe (&ring, head, cqe)
				n++;
			xring_cq_advance(&ring, n);
			ops += n;
		}
		t = now_s() - t0;
	} while (t < secs);
	xring_queue_exit(&ring);
	return (double) ops / t;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	static const unsigned batches[] = {1, 32};

	printf("# NOP throughput, %.1f s per measurement, best of 3\n", secs);
	for (unsigned b = 0; b < 2; b++) {
		double k = 0, x = 0;

		for (int rep = 0; rep < 3; rep++) {
			double kr = run_kernel(batches[b], secs), xr = run_xring(batches[b], secs);

			if (kr > k)
				k = kr;
			if (xr > x)
				x = xr;
		}
		printf("nop batch=%-2u kernel_io_uring %8.2f Mops/s  xring %8.2f Mops/s  ratio %.1fx\n",
		       batches[b], k / 1e6, x / 1e6, x / k);
	}
	return 0;
}
