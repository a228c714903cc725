/* Ring setup, the SQ and CQ helpers, the overflow list and waiting. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <time.h>

#include <xring.h>

#include "support/cpu.h"

static struct xring ring;

static void nops(struct xring *r, unsigned n, uint64_t first_ud)
{
	for (unsigned i = 0; i < n; i++) {
		struct xring_sqe *sqe = xring_get_sqe(r);

		cr_assert_not_null(sqe);
		xring_prep_nop(sqe);
		xring_sqe_set_data64(sqe, first_ud + i);
	}
}

struct init_case {
	unsigned entries, flags, cq_entries;
	int ret;
	unsigned sq_out, cq_out;
};

ParameterizedTestParameters(ring, init_follows_the_kernel_rules)
{
	static struct init_case cases[] = {
		{0, 0, 0, 0, 128, 256}, /* XRING_SQ_ENTRIES, default 128 */
		{1, 0, 0, 0, 1, 2},
		{3, 0, 0, 0, 4, 8},
		{32768, 0, 0, 0, 32768, 65536},
		{32769, 0, 0, -EINVAL, 0, 0},
		{40000, XRING_SETUP_CLAMP, 0, 0, 32768, 65536},
		{4, XRING_SETUP_CQSIZE, 4, 0, 4, 4},
		{4, XRING_SETUP_CQSIZE, 5, 0, 4, 8},
		{4, XRING_SETUP_CQSIZE, 2, -EINVAL, 0, 0},
		{4, XRING_SETUP_CQSIZE, 0, -EINVAL, 0, 0},
		{4, XRING_SETUP_CQSIZE, 65537, -EINVAL, 0, 0},
		{4, XRING_SETUP_CQSIZE | XRING_SETUP_CLAMP, 1000000, 0, 4, 65536},
		{8, XRING_SETUP_IOPOLL, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_SQE128, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_CQE32, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_R_DISABLED, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_NO_MMAP, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_REGISTERED_FD_ONLY, 0, -EINVAL, 0, 0},
		{8, 1u << 30, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_SUBMIT_ALL | XRING_SETUP_COOP_TASKRUN | XRING_SETUP_TASKRUN_FLAG, 0,
		 0, 8, 16},
		{8, XRING_SETUP_SINGLE_ISSUER | XRING_SETUP_DEFER_TASKRUN, 0, 0, 8, 16},
		{8, XRING_SETUP_SQPOLL | XRING_SETUP_SQ_AFF | XRING_SETUP_NO_SQARRAY, 0, 0, 8, 16},
		{8, XRING_SETUP_TASKRUN_FLAG, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_DEFER_TASKRUN, 0, -EINVAL, 0, 0},
		{8, XRING_SETUP_SQ_AFF, 0, -EINVAL, 0, 0},
	};
	return cr_make_param_array(struct init_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct init_case *c, ring, init_follows_the_kernel_rules)
{
	struct xring_params p = {0};
	int ret;

	p.flags = c->flags;
	p.cq_entries = c->cq_entries;
	ret = xring_queue_init_params(c->entries, &ring, &p);
	cr_assert_eq(ret, c->ret, "entries %u flags %#x cq %u: got %d, want %d", c->entries,
		     c->flags, c->cq_entries, ret, c->ret);
	if (ret)
		return;
	cr_expect_eq(p.sq_entries, c->sq_out);
	cr_expect_eq(p.cq_entries, c->cq_out);
	cr_expect_eq(ring.sq.entries, c->sq_out);
	cr_expect_eq(ring.cq.entries, c->cq_out);
	cr_expect(p.features & XRING_FEAT_NODROP);
	cr_expect(p.features & XRING_FEAT_CQE_SKIP);
	xring_queue_exit(&ring);
}

Test(ring, init_refuses_reserved_params)
{
	struct xring_params p = {0};

	p.resv[1] = 1;
	cr_expect_eq(xring_queue_init_params(8, &ring, &p), -EINVAL);
}

/* Parameters are read once per process; Criterion runs each test in a process of its own. */
struct bad_param {
	char name[32], value[32];
};

ParameterizedTestParameters(ring, init_refuses_a_bad_parameter)
{
	static struct bad_param cases[] = {
		{"XRING_SPIN_US", "12x"},
		{"XRING_SPIN_US", "-1"},
		{"XRING_SPIN_US", "2000000"},
		{"XRING_LOG_LEVEL", "chatty"},
	};
	return cr_make_param_array(struct bad_param, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_param *c, ring, init_refuses_a_bad_parameter)
{
	setenv(c->name, c->value, 1);
	cr_expect_eq(xring_queue_init(8, &ring, 0), -EINVAL, "%s=%s was accepted", c->name,
		     c->value);
}

Test(ring, init_accepts_a_zero_spin_budget)
{
	setenv("XRING_SPIN_US", "0", 1);
	cr_expect_eq(xring_queue_init(8, &ring, 0), 0);
	xring_queue_exit(&ring);
}

Test(ring, get_sqe_returns_null_when_the_sq_is_full)
{
	cr_assert_eq(xring_queue_init(4, &ring, 0), 0);
	cr_expect_eq(xring_sq_space_left(&ring), 4);
	for (int i = 0; i < 4; i++)
		cr_expect_not_null(xring_get_sqe(&ring));
	cr_expect_null(xring_get_sqe(&ring));
	cr_expect_eq(xring_sq_ready(&ring), 4);
	cr_expect_eq(xring_sq_space_left(&ring), 0);
	for (unsigned i = 0; i < 4; i++)
		xring_prep_nop(&ring.sq.sqes[i]);
	cr_expect_eq(xring_submit(&ring), 4);
	cr_expect_eq(xring_sq_ready(&ring), 0);
	cr_expect_not_null(xring_get_sqe(&ring));
	xring_queue_exit(&ring);
}

Test(ring, ten_thousand_nops_against_a_four_entry_cq_all_arrive_in_order)
{
	struct xring_params p = {.flags = XRING_SETUP_CQSIZE, .cq_entries = 4};
	struct xring_cqe *cqe;
	unsigned submitted = 0;

	cr_assert_eq(xring_queue_init_params(4, &ring, &p), 0);
	cr_assert_eq(ring.cq.entries, 4);
	while (submitted < 10000) {
		nops(&ring, 4, submitted);
		cr_assert_eq(xring_submit(&ring), 4);
		submitted += 4;
	}
	cr_expect(xring_cq_has_overflow(&ring));
	cr_expect_eq(xring_cq_ready(&ring), 4);
	for (uint64_t i = 0; i < 10000; i++) {
		cr_assert_eq(xring_peek_cqe(&ring, &cqe), 0, "CQE %llu missing",
			     (unsigned long long) i);
		cr_assert_eq(cqe->user_data, i, "CQE %llu out of order: got %llu",
			     (unsigned long long) i, (unsigned long long) cqe->user_data);
		cr_assert_eq(cqe->res, 0);
		xring_cqe_seen(&ring, cqe);
	}
	cr_expect_not(xring_cq_has_overflow(&ring));
	cr_expect_eq(xring_peek_cqe(&ring, &cqe), -EAGAIN);
	xring_queue_exit(&ring);
}

Test(ring, overflowed_completions_keep_order_with_new_ones)
{
	struct xring_params p = {.flags = XRING_SETUP_CQSIZE, .cq_entries = 2};
	struct xring_cqe *cqes[8];
	uint64_t want = 0;

	cr_assert_eq(xring_queue_init_params(2, &ring, &p), 0);
	for (int round = 0; round < 50; round++) {
		unsigned n;

		nops(&ring, 2, (uint64_t) round * 2);
		cr_assert_eq(xring_submit(&ring), 2);
		/* Reap one per round, so the backlog keeps growing while new CQEs arrive. */
		n = xring_peek_batch_cqe(&ring, cqes, 1);
		cr_assert_eq(n, 1);
		cr_assert_eq(cqes[0]->user_data, want++);
		xring_cq_advance(&ring, 1);
	}
	while (want < 100) {
		struct xring_cqe *cqe;

		cr_assert_eq(xring_wait_cqe(&ring, &cqe), 0);
		cr_assert_eq(cqe->user_data, want++);
		xring_cqe_seen(&ring, cqe);
	}
	xring_queue_exit(&ring);
}

Test(ring, for_each_cqe_visits_every_ready_cqe_without_consuming)
{
	struct xring_cqe *cqe;
	unsigned head, seen = 0;

	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	nops(&ring, 5, 100);
	cr_assert_eq(xring_submit(&ring), 5);
	xring_for_each_cqe (&ring, head, cqe) {
		cr_expect_eq(xring_cqe_get_data64(cqe), 100 + seen);
		seen++;
	}
	cr_expect_eq(seen, 5);
	cr_expect_eq(xring_cq_ready(&ring), 5);
	xring_cq_advance(&ring, 5);
	cr_expect_eq(xring_cq_ready(&ring), 0);
	xring_queue_exit(&ring);
}

Test(ring, cqe_data_pointer_round_trips)
{
	struct xring_cqe *cqe;
	int marker;

	cr_assert_eq(xring_queue_init(2, &ring, 0), 0);
	xring_prep_nop(xring_get_sqe(&ring));
	xring_sqe_set_data(&ring.sq.sqes[0], &marker);
	cr_assert_eq(xring_submit_and_wait(&ring, 1), 1);
	cr_assert_eq(xring_wait_cqe(&ring, &cqe), 0);
	cr_expect_eq(xring_cqe_get_data(cqe), &marker);
	xring_cqe_seen(&ring, cqe);
	xring_queue_exit(&ring);
}

Test(ring, wait_with_a_timeout_returns_etime_when_nothing_completes)
{
	struct __kernel_timespec ts = {0, 10 * 1000 * 1000};
	struct xring_cqe *cqe = (void *) 1;

	cr_assert_eq(xring_queue_init(2, &ring, 0), 0);
	cr_expect_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), -ETIME);
	cr_expect_null(cqe);
	xring_queue_exit(&ring);
}

Test(ring, wait_cqe_nr_waits_for_all_of_them)
{
	struct __kernel_timespec t1 = {0, 1000000}, t2 = {0, 3000000};
	struct xring_cqe *cqe;

	cr_assert_eq(xring_queue_init(4, &ring, 0), 0);
	xring_prep_timeout(xring_get_sqe(&ring), &t1, 0, 0);
	xring_prep_timeout(xring_get_sqe(&ring), &t2, 0, 0);
	cr_assert_eq(xring_submit(&ring), 2);
	cr_assert_eq(xring_wait_cqe_nr(&ring, &cqe, 2), 0);
	cr_expect_eq(xring_cq_ready(&ring), 2);
	cr_expect_eq(cqe->res, -ETIME);
	xring_queue_exit(&ring);
}

Test(ring, submit_and_wait_returns_with_the_completions_ready)
{
	struct __kernel_timespec t = {0, 2000000};

	cr_assert_eq(xring_queue_init(4, &ring, 0), 0);
	xring_prep_timeout(xring_get_sqe(&ring), &t, 0, 0);
	nops(&ring, 1, 7);
	cr_assert_eq(xring_submit_and_wait(&ring, 2), 2);
	cr_expect_eq(xring_cq_ready(&ring), 2);
	xring_queue_exit(&ring);
}

Test(ring, submit_all_keeps_going_after_a_refused_sqe)
{
	struct xring_cqe *cqe;

	cr_assert_eq(xring_queue_init(4, &ring, XRING_SETUP_SUBMIT_ALL), 0);
	nops(&ring, 3, 1);
	ring.sq.sqes[0].flags = 0x80;
	cr_expect_eq(xring_submit(&ring), 3);
	cr_assert_eq(xring_peek_cqe(&ring, &cqe), 0);
	cr_expect_eq(cqe->res, -EINVAL);
	xring_queue_exit(&ring);
}

Test(ring, an_idle_wait_sleeps_instead_of_spinning)
{
	struct __kernel_timespec ts = {0, 300 * 1000 * 1000};
	long before;
	struct xring_cqe *cqe;
	long used_us;

	cr_assert_eq(xring_queue_init(2, &ring, 0), 0);
	before = cpu_used_us();
	cr_expect_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), -ETIME);
	used_us = cpu_used_us() - before;
	/* 300 ms of waiting may cost the 50 us spin and a little bookkeeping, not a core. */
	cr_expect_lt(used_us, 100000, "an idle 300 ms wait used %ld us of CPU", used_us);
	xring_queue_exit(&ring);
}

Test(ring, exit_with_requests_in_flight_releases_everything)
{
	struct __kernel_timespec t = {60, 0};

	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	for (int i = 0; i < 4; i++)
		xring_prep_timeout(xring_get_sqe(&ring), &t, 0, 0);
	xring_prep_nop(xring_get_sqe(&ring));
	ring.sq.sqes[4].flags = XRING_SQE_IO_LINK;
	xring_prep_link_timeout(xring_get_sqe(&ring), &t, 0);
	cr_assert_eq(xring_submit(&ring), 6);
	xring_queue_exit(&ring);
	cr_expect_null(ring.ctx);
	xring_queue_exit(&ring); /* a second exit is harmless */
}

Test(ring, a_long_link_chain_runs_without_deep_recursion)
{
	enum {
		N = 20000
	};
	struct xring_params p = {.flags = XRING_SETUP_CQSIZE, .cq_entries = N};
	struct xring_cqe *cqe;

	cr_assert_eq(xring_queue_init_params(N, &ring, &p), 0);
	for (unsigned i = 0; i < N; i++) {
		struct xring_sqe *sqe = xring_get_sqe(&ring);

		xring_prep_nop(sqe);
		sqe->user_data = i;
		if (i + 1 < N)
			sqe->flags = XRING_SQE_IO_LINK;
	}
	cr_assert_eq(xring_submit(&ring), N);
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(xring_peek_cqe(&ring, &cqe), 0);
		cr_assert_eq(cqe->user_data, i);
		xring_cqe_seen(&ring, cqe);
	}
	xring_queue_exit(&ring);
}

Test(ring, the_probe_tells_what_runs_in_xring_and_what_in_the_kernel)
{
	struct xring_probe *p;

	cr_assert_eq(xring_queue_init(4, &ring, 0), 0);
	p = xring_get_probe(&ring);
	cr_assert_not_null(p);
	cr_expect(xring_opcode_supported(p, XRING_OP_NOP));
	cr_expect(p->ops[XRING_OP_NOP].flags & XRING_PROBE_OP_IN_XRING);
	cr_expect(p->ops[XRING_OP_LINK_TIMEOUT].flags & XRING_PROBE_OP_IN_XRING);
	cr_expect(xring_opcode_supported(p, XRING_OP_SEND), "the kernel ring runs SEND");
	cr_expect_not(p->ops[XRING_OP_SEND].flags & XRING_PROBE_OP_IN_XRING);
	cr_expect_not(p->ops[XRING_OP_SEND].flags & XRING_PROBE_OP_OFFLOADED,
		      "no port, no offload");
	cr_expect_not(xring_opcode_supported(p, 250));
	cr_expect_not(xring_opcode_supported(p, -1));
	cr_expect_geq(p->last_op, XRING_OP_LISTEN);
	xring_free_probe(p);
	xring_queue_exit(&ring);
}
