#include "diff_driver.h"

#include <string.h>
#include <time.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int drv_init(struct drv *d, bool kernel, unsigned entries, unsigned flags)
{
	memset(d, 0, sizeof(*d));
	d->kernel = kernel;
	d->name = kernel ? "kernel" : "xring";
	return kernel ? io_uring_queue_init(entries, &d->k, flags)
		      : xring_queue_init(entries, &d->x, flags);
}

void drv_exit(struct drv *d)
{
	if (d->kernel)
		io_uring_queue_exit(&d->k);
	else
		xring_queue_exit(&d->x);
}

struct io_uring_sqe *drv_sqe(struct drv *d)
{
	return d->kernel ? io_uring_get_sqe(&d->k) : (struct io_uring_sqe *) xring_get_sqe(&d->x);
}

int drv_submit(struct drv *d)
{
	d->last_submit = d->kernel ? io_uring_submit(&d->k) : xring_submit(&d->x);
	return d->last_submit;
}

int drv_reap(struct drv *d, struct rec *out, int max, int want, int ms)
{
	uint64_t end = now_ms() + (uint64_t) ms;
	int n = 0;

	while (n < max) {
		struct __kernel_timespec ts = {0, 1000000};
		int ret;

		if (d->kernel) {
			struct io_uring_cqe *cqe;

			ret = io_uring_wait_cqe_timeout(&d->k, &cqe, &ts);
			if (ret == 0) {
				out[n++] = (struct rec){cqe->user_data, cqe->res, cqe->flags};
				io_uring_cqe_seen(&d->k, cqe);
			}
		} else {
			struct xring_cqe *cqe;

			ret = xring_wait_cqe_timeout(&d->x, &cqe, &ts);
			if (ret == 0) {
				out[n++] = (struct rec){cqe->user_data, cqe->res, cqe->flags};
				xring_cqe_seen(&d->x, cqe);
			}
		}
		if (ret && ret != -ETIME)
			break;
		if (n >= want && ret == -ETIME)
			break;
		if (now_ms() > end)
			break;
	}
	return n;
}
