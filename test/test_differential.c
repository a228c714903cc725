/*
 * The same SQE scripts on the kernel's io_uring and on xring must give the same CQE streams:
 * same user_data, res and flags, in the same order, and the same submit return values. Every
 * case here was first observed on the kernel; xring must not merely "look right".
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diff_driver.h"

#define MAX_CQES 64

static struct __kernel_timespec t_long = {5, 0};
static struct __kernel_timespec t_short = {0, 2000000};
static struct __kernel_timespec t_neg = {-1, 0};

struct result {
	struct rec cqes[MAX_CQES];
	int n;
	int submits[8];
	int nsubmits;
};

static struct io_uring_sqe *nop(struct drv *d, uint64_t ud, unsigned flags)
{
	struct io_uring_sqe *s = drv_sqe(d);

	io_uring_prep_nop(s);
	s->user_data = ud;
	s->flags = (uint8_t) flags;
	return s;
}

static struct io_uring_sqe *timeout(struct drv *d, uint64_t ud, struct __kernel_timespec *ts,
				    unsigned count, unsigned tflags, unsigned flags)
{
	struct io_uring_sqe *s = drv_sqe(d);

	io_uring_prep_timeout(s, ts, count, tflags);
	s->user_data = ud;
	s->flags = (uint8_t) flags;
	return s;
}

static struct io_uring_sqe *ltimeout(struct drv *d, uint64_t ud, struct __kernel_timespec *ts,
				     unsigned flags)
{
	struct io_uring_sqe *s = drv_sqe(d);

	io_uring_prep_link_timeout(s, ts, 0);
	s->user_data = ud;
	s->flags = (uint8_t) flags;
	return s;
}

static struct io_uring_sqe *cancel(struct drv *d, uint64_t ud, uint64_t target, int cflags)
{
	struct io_uring_sqe *s = drv_sqe(d);

	io_uring_prep_cancel64(s, target, cflags);
	s->user_data = ud;
	return s;
}

static void inject(struct io_uring_sqe *s, int res)
{
	s->rw_flags = XRING_NOP_INJECT_RESULT; /* nop_flags shares the union */
	s->len = (unsigned) res;
}

/* Each script prepares and submits; `want` is how many CQEs it must produce. */
struct script {
	const char *name;
	void (*run)(struct drv *d, struct result *r);
	int want;
	int ms;
};

#define SUBMIT(d, r) ((r)->submits[(r)->nsubmits++] = drv_submit(d))

static void s_nops(struct drv *d, struct result *r)
{
	nop(d, 1, 0);
	nop(d, 2, 0);
	nop(d, 3, IOSQE_ASYNC);
	SUBMIT(d, r);
}

static void s_inject_fail_link(struct drv *d, struct result *r)
{
	inject(nop(d, 1, IOSQE_IO_LINK), -EINVAL);
	nop(d, 2, IOSQE_IO_LINK);
	nop(d, 3, 0);
	nop(d, 4, 0);
	SUBMIT(d, r);
}

static void s_inject_fail_hardlink(struct drv *d, struct result *r)
{
	inject(nop(d, 1, IOSQE_IO_HARDLINK), -EIO);
	nop(d, 2, 0);
	SUBMIT(d, r);
}

static void s_inject_positive(struct drv *d, struct result *r)
{
	inject(nop(d, 1, IOSQE_IO_LINK), 12345);
	nop(d, 2, 0);
	SUBMIT(d, r);
}

static void s_link_chain(struct drv *d, struct result *r)
{
	nop(d, 1, IOSQE_IO_LINK);
	nop(d, 2, IOSQE_IO_LINK);
	nop(d, 3, 0);
	nop(d, 4, 0);
	SUBMIT(d, r);
}

static void s_unterminated_link(struct drv *d, struct result *r)
{
	nop(d, 1, 0);
	nop(d, 2, IOSQE_IO_LINK);
	SUBMIT(d, r);
}

static void s_count_timeout_same_batch(struct drv *d, struct result *r)
{
	nop(d, 1, 0);
	nop(d, 2, 0);
	timeout(d, 3, &t_long, 1, 0, 0);
	SUBMIT(d, r);
}

static void s_count_timeout_later(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_long, 2, 0, 0);
	SUBMIT(d, r);
	nop(d, 2, 0);
	SUBMIT(d, r);
	nop(d, 3, 0);
	SUBMIT(d, r);
	nop(d, 4, 0);
	SUBMIT(d, r);
}

static void s_timeout_expires(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_short, 0, 0, 0);
	SUBMIT(d, r);
}

static void s_timeout_abs_past(struct drv *d, struct result *r)
{
	static struct __kernel_timespec zero = {0, 1};

	timeout(d, 1, &zero, 0, IORING_TIMEOUT_ABS, 0);
	SUBMIT(d, r);
}

static void s_timeout_bad(struct drv *d, struct result *r)
{
	struct io_uring_sqe *s;

	s = timeout(d, 1, &t_long, 0, 0, 0);
	s->len = 2;
	SUBMIT(d, r);
	timeout(d, 2, &t_neg, 0, 0, 0);
	SUBMIT(d, r);
	timeout(d, 3, &t_long, 0, IORING_TIMEOUT_ABS | (1U << 6), 0);
	SUBMIT(d, r);
	timeout(d, 4, &t_long, 0, IORING_TIMEOUT_BOOTTIME | IORING_TIMEOUT_REALTIME, 0);
	SUBMIT(d, r);
	timeout(d, 5, &t_long, 0, 1U << 9, 0);
	SUBMIT(d, r);
	s = timeout(d, 6, &t_long, 0, 0, 0);
	s->buf_index = 1;
	SUBMIT(d, r);
}

static void s_timeout_etime_success(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_short, 0, 1U << 5, IOSQE_IO_LINK);
	nop(d, 2, 0);
	timeout(d, 3, &t_short, 0, 0, IOSQE_IO_LINK);
	nop(d, 4, 0);
	SUBMIT(d, r);
}

static void s_timeout_multishot(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_short, 3, 1U << 6, 0);
	SUBMIT(d, r);
}

static void s_timeout_cancel_order(struct drv *d, struct result *r)
{
	timeout(d, 5, &t_long, 0, 0, 0);
	cancel(d, 6, 5, 0);
	nop(d, 7, 0);
	SUBMIT(d, r);
}

static void s_cancel_all(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_long, 0, 0, 0);
	timeout(d, 1, &t_long, 0, 0, 0);
	timeout(d, 2, &t_long, 0, 0, 0);
	cancel(d, 3, 1, IORING_ASYNC_CANCEL_ALL);
	cancel(d, 4, 99, IORING_ASYNC_CANCEL_ALL);
	cancel(d, 5, 0, IORING_ASYNC_CANCEL_ANY);
	cancel(d, 6, 0, IORING_ASYNC_CANCEL_ANY);
	cancel(d, 7, 2, 0);
	SUBMIT(d, r);
}

static void s_cancel_keys(struct drv *d, struct result *r)
{
	struct io_uring_sqe *s;

	timeout(d, 1, &t_long, 0, 0, 0);
	s = cancel(d, 2, 0, XRING_ASYNC_CANCEL_OP);
	s->len = IORING_OP_TIMEOUT;
	s = cancel(d, 3, 0, XRING_ASYNC_CANCEL_OP);
	s->len = IORING_OP_READ;
	s = drv_sqe(d);
	io_uring_prep_cancel_fd(s, 12345, 0);
	s->user_data = 4;
	s = drv_sqe(d);
	io_uring_prep_cancel_fd(s, 0, 0);
	s->user_data = 5;
	cancel(d, 6, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_FD);
	cancel(d, 7, 0, 1U << 8);
	SUBMIT(d, r);
	SUBMIT(d, r);
	s = cancel(d, 8, 0, 0);
	s->off = 1;
	SUBMIT(d, r);
}

static void s_timeout_remove(struct drv *d, struct result *r)
{
	struct io_uring_sqe *s;

	timeout(d, 1, &t_long, 0, 0, 0);
	s = drv_sqe(d);
	io_uring_prep_timeout_remove(s, 1, 0);
	s->user_data = 2;
	s = drv_sqe(d);
	io_uring_prep_timeout_remove(s, 1, 0);
	s->user_data = 3;
	SUBMIT(d, r);
	timeout(d, 4, &t_long, 0, 0, 0);
	s = drv_sqe(d);
	io_uring_prep_timeout_update(s, &t_short, 4, 0);
	s->user_data = 5;
	SUBMIT(d, r);
}

static void s_link_timeout_target_done(struct drv *d, struct result *r)
{
	nop(d, 1, IOSQE_IO_LINK);
	ltimeout(d, 2, &t_long, IOSQE_IO_LINK);
	nop(d, 3, 0);
	SUBMIT(d, r);
}

static void s_link_timeout_fires(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_long, 0, 0, IOSQE_IO_LINK);
	ltimeout(d, 2, &t_short, IOSQE_IO_LINK);
	nop(d, 3, 0);
	SUBMIT(d, r);
}

static void s_link_timeout_target_fails(struct drv *d, struct result *r)
{
	inject(nop(d, 1, IOSQE_IO_LINK), -EPERM);
	ltimeout(d, 2, &t_long, IOSQE_IO_LINK);
	nop(d, 3, 0);
	SUBMIT(d, r);
}

static void s_link_timeout_invalid(struct drv *d, struct result *r)
{
	ltimeout(d, 1, &t_long, 0);
	SUBMIT(d, r);
	nop(d, 2, IOSQE_IO_LINK);
	ltimeout(d, 3, &t_long, IOSQE_IO_LINK);
	ltimeout(d, 4, &t_long, 0);
	SUBMIT(d, r);
}

static void s_bad_flags_stop_submission(struct drv *d, struct result *r)
{
	nop(d, 1, 0x80);
	nop(d, 2, 0);
	SUBMIT(d, r);
	SUBMIT(d, r);
}

static void s_bad_fields(struct drv *d, struct result *r)
{
	struct io_uring_sqe *s;

	s = nop(d, 1, 0);
	s->opcode = 200;
	SUBMIT(d, r);
	s = nop(d, 2, 0);
	s->ioprio = 1;
	SUBMIT(d, r);
	s = nop(d, 3, 0);
	s->rw_flags = 1U << 7;
	SUBMIT(d, r);
	s = nop(d, 4, 0);
	s->personality = 3;
	SUBMIT(d, r);
	nop(d, 5, IOSQE_BUFFER_SELECT);
	SUBMIT(d, r);
}

static void s_mid_chain_failure(struct drv *d, struct result *r)
{
	nop(d, 15, IOSQE_IO_LINK);
	nop(d, 16, 0x80 | IOSQE_IO_LINK);
	nop(d, 17, 0);
	nop(d, 18, 0);
	SUBMIT(d, r);
}

static void s_skip_success(struct drv *d, struct result *r)
{
	inject(nop(d, 1, IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS), -EIO);
	nop(d, 2, IOSQE_CQE_SKIP_SUCCESS);
	nop(d, 3, 0);
	inject(nop(d, 4, IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS), 5);
	nop(d, 5, 0);
	nop(d, 6, IOSQE_CQE_SKIP_SUCCESS);
	SUBMIT(d, r);
	nop(d, 7, IOSQE_IO_DRAIN);
	SUBMIT(d, r);
}

static void s_drain(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_short, 0, 0, 0);
	nop(d, 2, IOSQE_IO_DRAIN);
	nop(d, 3, 0);
	SUBMIT(d, r);
}

static void s_drain_in_chain(struct drv *d, struct result *r)
{
	timeout(d, 1, &t_short, 0, 0, 0);
	nop(d, 2, IOSQE_IO_LINK);
	nop(d, 3, IOSQE_IO_DRAIN);
	nop(d, 4, 0);
	SUBMIT(d, r);
}

static const struct script scripts[] = {
	{"nops", s_nops, 3, 20},
	{"inject_fail_link", s_inject_fail_link, 4, 20},
	{"inject_fail_hardlink", s_inject_fail_hardlink, 2, 20},
	{"inject_positive", s_inject_positive, 2, 20},
	{"link_chain", s_link_chain, 4, 20},
	{"unterminated_link", s_unterminated_link, 2, 20},
	{"count_timeout_same_batch", s_count_timeout_same_batch, 3, 20},
	{"count_timeout_later", s_count_timeout_later, 4, 20},
	{"timeout_expires", s_timeout_expires, 1, 500},
	{"timeout_abs_past", s_timeout_abs_past, 1, 500},
	{"timeout_bad", s_timeout_bad, 6, 20},
	{"timeout_etime_success", s_timeout_etime_success, 4, 500},
	{"timeout_multishot", s_timeout_multishot, 3, 500},
	{"timeout_cancel_order", s_timeout_cancel_order, 3, 20},
	{"cancel_all", s_cancel_all, 8, 20},
	{"cancel_keys", s_cancel_keys, 8, 20},
	{"timeout_remove", s_timeout_remove, 5, 500},
	{"link_timeout_target_done", s_link_timeout_target_done, 3, 20},
	{"link_timeout_fires", s_link_timeout_fires, 3, 500},
	{"link_timeout_target_fails", s_link_timeout_target_fails, 3, 20},
	{"link_timeout_invalid", s_link_timeout_invalid, 4, 20},
	{"bad_flags_stop_submission", s_bad_flags_stop_submission, 2, 20},
	{"bad_fields", s_bad_fields, 5, 20},
	{"mid_chain_failure", s_mid_chain_failure, 4, 20},
	{"skip_success", s_skip_success, 4, 20},
	{"drain", s_drain, 3, 500},
	{"drain_in_chain", s_drain_in_chain, 4, 500},
};

static void run(const struct script *sc, bool kernel, struct result *r)
{
	struct drv d;

	memset(r, 0, sizeof(*r));
	cr_assert_eq(drv_init(&d, kernel, 64, 0), 0);
	sc->run(&d, r);
	r->n = drv_reap(&d, r->cqes, MAX_CQES, sc->want, sc->ms);
	drv_exit(&d);
}

static void print(const char *who, const struct result *r)
{
	char line[2048];
	int o = snprintf(line, sizeof(line), "%s: submits", who);

	for (int i = 0; i < r->nsubmits; i++)
		o += snprintf(line + o, sizeof(line) - (size_t) o, " %d", r->submits[i]);
	o += snprintf(line + o, sizeof(line) - (size_t) o, " cqes");
	for (int i = 0; i < r->n && o < (int) sizeof(line) - 64; i++)
		o += snprintf(line + o, sizeof(line) - (size_t) o, " [%llu %d %x]",
			      (unsigned long long) r->cqes[i].user_data, r->cqes[i].res,
			      r->cqes[i].flags);
	cr_log_info("%s", line);
}

#define NSCRIPTS (sizeof(scripts) / sizeof(scripts[0]))

/* Parameters are indexes: Criterion may run each test in a re-executed process, where
 * addresses differ. */
ParameterizedTestParameters(differential, kernel_and_xring_agree)
{
	static int idx[NSCRIPTS];

	for (unsigned i = 0; i < NSCRIPTS; i++)
		idx[i] = (int) i;
	return cr_make_param_array(int, idx, NSCRIPTS);
}

ParameterizedTest(int *idx, differential, kernel_and_xring_agree)
{
	const struct script *sc = &scripts[*idx];
	struct result k, x;

	run(sc, true, &k);
	run(sc, false, &x);
	cr_log_info("script %s", sc->name);
	print("kernel", &k);
	print("xring ", &x);
	cr_expect_eq(k.n, sc->want, "%s: the kernel gave %d CQEs, the script expects %d", sc->name,
		     k.n, sc->want);
	cr_assert_eq(k.nsubmits, x.nsubmits);
	for (int i = 0; i < k.nsubmits; i++)
		cr_expect_eq(k.submits[i], x.submits[i],
			     "%s: submit %d returned %d on the kernel, %d on xring", sc->name, i,
			     k.submits[i], x.submits[i]);
	cr_assert_eq(x.n, k.n, "%s: %d CQEs on xring, %d on the kernel", sc->name, x.n, k.n);
	for (int i = 0; i < k.n; i++) {
		cr_expect_eq(x.cqes[i].user_data, k.cqes[i].user_data, "%s: CQE %d user_data",
			     sc->name, i);
		cr_expect_eq(x.cqes[i].res, k.cqes[i].res, "%s: CQE %d res: xring %d kernel %d",
			     sc->name, i, x.cqes[i].res, k.cqes[i].res);
		cr_expect_eq(x.cqes[i].flags, k.cqes[i].flags, "%s: CQE %d flags", sc->name, i);
	}
}
