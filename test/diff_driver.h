/*
 * Runs one SQE script on a kernel io_uring (through liburing) or on an xring and records the
 * CQE stream, so tests can require the two to agree. The SQE layouts are identical, so scripts
 * fill SQEs with liburing's own prep helpers on both.
 */
#ifndef XRING_TEST_DIFF_DRIVER_H
#define XRING_TEST_DIFF_DRIVER_H

#include <liburing.h>
#include <stdint.h>

#include <xring.h>

struct rec {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

struct drv {
	const char *name;
	bool kernel;
	struct io_uring k;
	struct xring x;
	int last_submit;
};

int drv_init(struct drv *d, bool kernel, unsigned entries, unsigned flags);
void drv_exit(struct drv *d);
struct io_uring_sqe *drv_sqe(struct drv *d);
int drv_submit(struct drv *d);
/* Collects CQEs until `want` have arrived or `ms` milliseconds pass; returns the count. */
int drv_reap(struct drv *d, struct rec *out, int max, int want, int ms);

#endif
