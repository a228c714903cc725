/*
 * Congestion control: slow start and congestion avoidance per RFC 5681, NewReno's recovery per
 * RFC 6582 (its ACK handling lives in tcp_input.c), and CUBIC per RFC 9438 as the default
 * window growth function. Windows are in bytes; CUBIC's formulas are in segments and seconds.
 */
#include "stack/tcp/tcp.h"

#define CUBIC_C    0.4 /* RFC 9438 4.2 */
#define CUBIC_BETA 0.7 /* RFC 9438 4.6 */

void tcp_cc_init(struct tcp_stack *st, struct tcb *t)
{
	uint32_t mss = t->mss;

	/* RFC 5681 3.1 eq. 3: IW = min(4 * SMSS, max(2 * SMSS, 4380)). */
	t->cwnd = 4 * mss < (2 * mss > 4380 ? 2 * mss : 4380) ? 4 * mss
							      : (2 * mss > 4380 ? 2 * mss : 4380);
	t->ssthresh = UINT32_MAX / 2;
	t->cc_acked = 0;
	t->cc_epoch = 0;
	t->cc_wmax = t->cc_wlast = t->cc_west = 0;
}

static double cbrt_pos(double x)
{
	double y = x > 1 ? x / 3 : 1;

	if (x <= 0)
		return 0;
	for (int i = 0; i < 60; i++) {
		double n = y - (y * y * y - x) / (3 * y * y);

		if (n == y)
			break;
		y = n;
	}
	return y;
}

static void reno_ca(struct tcb *t, uint32_t acked)
{
	/* RFC 5681 3.1: about one SMSS per RTT, counted in bytes acked. */
	t->cc_acked += acked;
	if (t->cc_acked >= t->cwnd) {
		t->cc_acked -= t->cwnd;
		t->cwnd += t->mss;
	}
}

static void cubic_ca(struct tcb *t, uint32_t acked, uint64_t now)
{
	double mss = t->mss, cwnd = t->cwnd / mss, wmax, tt, target, west;
	double rtt = t->srtt ? (double) t->srtt / 1e9 : 0.1;
	double alpha = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA); /* RFC 9438 4.3 */

	if (!t->cc_epoch) {
		/* RFC 9438 4.2: a new congestion-avoidance epoch. */
		t->cc_epoch = now ? now : 1;
		if (t->cc_wmax < t->cwnd) {
			t->cc_wmax = t->cwnd;
			t->cc_k_ns = 0;
		} else {
			t->cc_k_ns =
				(uint64_t) (cbrt_pos((t->cc_wmax - t->cwnd) / mss / CUBIC_C) * 1e9);
		}
		t->cc_west = t->cwnd;
		t->cc_acked = 0;
	}
	wmax = t->cc_wmax / mss;
	/* W_cubic(t + RTT), RFC 9438 4.2 eq. 1, as the target one RTT ahead (4.4). */
	tt = (double) (now - t->cc_epoch) / 1e9 + rtt - (double) t->cc_k_ns / 1e9;
	target = CUBIC_C * tt * tt * tt + wmax;
	if (target < cwnd)
		target = cwnd;
	if (target > 1.5 * cwnd)
		target = 1.5 * cwnd;
	/* Reno-friendly estimate (4.3). */
	west = t->cc_west / mss + (t->cc_west < t->cc_wmax ? alpha : 1.0) * acked / mss / cwnd;
	t->cc_west = (uint32_t) (west * mss);
	tt -= rtt;
	if (CUBIC_C * tt * tt * tt + wmax < west) {
		if (t->cc_west > t->cwnd)
			t->cwnd = t->cc_west;
		return;
	}
	/* (target - cwnd) / cwnd segments per segment acked, accumulated in bytes. */
	t->cc_acked += (uint32_t) ((target - cwnd) / cwnd * acked);
	if (t->cc_acked >= t->mss) {
		t->cwnd += t->cc_acked / t->mss * t->mss;
		t->cc_acked %= t->mss;
	}
}

void tcp_cc_ack(struct tcp_stack *st, struct tcb *t, uint32_t acked, uint64_t now)
{
	if (t->cwnd < t->ssthresh) {
		/* RFC 5681 3.1 eq. 2, with RFC 3465's limit L = 1 SMSS per ACK. */
		t->cwnd += acked < t->mss ? acked : t->mss;
		return;
	}
	if (st->cfg.cc == TCP_CC_NEWRENO)
		reno_ca(t, acked);
	else
		cubic_ca(t, acked, now);
	if (t->cwnd > (1u << 30))
		t->cwnd = 1u << 30;
}

static uint32_t half_flight(const struct tcb *t)
{
	/* RFC 5681 3.1 eq. 4: ssthresh = max(FlightSize / 2, 2 * SMSS). */
	uint32_t h = tcp_flight(t) / 2;

	return h > 2u * t->mss ? h : 2u * t->mss;
}

static uint32_t cubic_reduce(struct tcb *t)
{
	uint32_t w = t->cwnd;

	/* RFC 9438 4.7 fast convergence: give way when W_max shrinks. */
	/* Integer forms of beta = 0.7 and (1 + beta) / 2 = 0.85, exact for any window. */
	if (w < t->cc_wlast)
		t->cc_wmax = (uint32_t) ((uint64_t) w * 17 / 20);
	else
		t->cc_wmax = w;
	t->cc_wlast = w;
	t->cc_epoch = 0;
	w = (uint32_t) ((uint64_t) w * 7 / 10);
	return w > 2u * t->mss ? w : 2u * t->mss;
}

void tcp_cc_loss(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	t->cc_acked = 0;
	if (st->cfg.cc == TCP_CC_NEWRENO)
		t->ssthresh = half_flight(t);
	else
		t->ssthresh = cubic_reduce(t);
}

void tcp_cc_rto(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	/* RFC 5681 3.1: ssthresh only on the first timeout of a segment; RFC 9438 4.8. */
	if (t->rxt_shift <= 1)
		t->ssthresh = st->cfg.cc == TCP_CC_NEWRENO ? half_flight(t) : cubic_reduce(t);
	t->cwnd = t->mss; /* loss window */
	t->cc_acked = 0;
	t->cc_epoch = 0;
}
