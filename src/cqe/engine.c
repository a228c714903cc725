/*
 * The completion engine: everything that makes progress without a new submission. It polls
 * the completion sources (the kernel ring, NIC queues: later layers register them), fires due
 * timers and runs deferred completions. Waiting spins on that for a budget, then sleeps on the
 * sources' file descriptors with a timeout set by the nearest timer, so an idle ring sleeps.
 */
#include <errno.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "ops/kring.h"
#include "ops/netport.h"
#include "ops/ops.h"
#include "ring/ring.h"
#include "stats/stats.h"

#define MAX_WAIT_FDS 64

void engine_add_source(struct xring_ctx *ctx, struct xring_source *src)
{
	src->next = ctx->sources;
	ctx->sources = src;
}

void engine_remove_source(struct xring_ctx *ctx, struct xring_source *src)
{
	for (struct xring_source **p = &ctx->sources; *p; p = &(*p)->next)
		if (*p == src) {
			*p = src->next;
			return;
		}
}

static int run_timers(struct xring_ctx *ctx, uint64_t now)
{
	struct timer *t;
	int n = 0;

	/* Timers due together fire before any of their consequences run, as kernel timers
	 * queue task work that runs after them. */
	ctx->batching = true;
	while ((t = timer_first(&ctx->timers)) && t->deadline <= now) {
		timer_del(&ctx->timers, t);
		timeout_expire(ctx, t);
		n++;
	}
	ctx->batching = false;
	return n;
}

int engine_progress(struct xring_ctx *ctx)
{
	int n = 0;

	/* One clock read per round for every source and the timers: in a VM each read is tens of
	 * nanoseconds, and an idle spin round that read it three times was a fifth clock. */
	ctx->now = clock_mono_ns();
	for (struct xring_source *s = ctx->sources; s; s = s->next)
		n += s->poll(ctx, s);
	if (ctx->timers.n)
		n += run_timers(ctx, ctx->now);
	timeout_flush_counts(ctx);
	req_run_later(ctx);
	kring_flush(ctx);
	if (ctx->netports)
		netport_flush_all(ctx);
	if (ctx->ring->cq.overflow)
		cq_flush_overflow(ctx);
	if (xring_unlikely(ctx->evfd >= 0))
		cq_notify(ctx);
	if (n)
		ctx->st->poll_hits++;
	else
		ctx->st->poll_misses++;
	ctx->st->cqes = ctx->cq_posted;
	return n;
}

/*
 * Spinning pays while the peer we wait for runs on another CPU: its answer then comes within a
 * few microseconds. When CPUs are shared (two busy processes on a small VM, other load), a
 * spinner holds the CPU its peer needs to produce what we wait for. So a wait that took longer
 * than this makes the next ones yield the CPU on every round of their spin once they have spun
 * this long themselves, and a run of waits answered sooner (the peer has a CPU of its own) goes
 * back to pure spinning. A yield with an idle CPU at hand costs a system call, and an answer that
 * comes during it waits for its end: yielding from a wait's first round made a pinned ping-pong
 * pay for the few slow waits (host noise) of the last sixteen (A/B, 600 rounds: p50 1.81 ->
 * 1.76 us, 2.91 -> 2.47 in the host's slow state); unpinned peers that share a CPU pay up to
 * this much more per wait (p99 7 -> 13 us).
 */
#define ENGINE_QUICK_NS 3000

#define ENGINE_QUICK_RUN 16 /* quick waits in a row before spinning without yields again */

static int spin_done(struct xring_ctx *ctx, uint64_t spin_start)
{
	if (clock_mono_ns() - spin_start >= ENGINE_QUICK_NS) {
		ctx->spin_yield = true;
		ctx->spin_quick = 0;
	} else if (ctx->spin_yield && ++ctx->spin_quick >= ENGINE_QUICK_RUN) {
		ctx->spin_yield = false;
	}
	return 0;
}

static unsigned ready(const struct xring_ctx *ctx)
{
	return xring_cq_ready(ctx->ring) + ctx->ring->cq.overflow;
}

/* Sleeps until a source has work, the nearest timer or the deadline. 0 or -EINTR. */
static int sleep_once(struct xring_ctx *ctx, unsigned want, int64_t deadline_ns,
		      const sigset_t *sigmask)
{
	struct pollfd fds[MAX_WAIT_FDS];
	struct timespec tmo, *tp = NULL;
	int64_t until = deadline_ns;
	nfds_t n = 0;
	int ret;

	ctx->st->sleeps++;
	if (ctx->netports)
		stats_ports_idle(ctx);
	for (struct xring_source *s = ctx->sources; s && n < MAX_WAIT_FDS; s = s->next) {
		int fd = s->wait_fd ? s->wait_fd(s) : -1;

		if (s->next_timer) {
			uint64_t t = s->next_timer(s);

			if (t != UINT64_MAX && (until < 0 || (int64_t) t < until))
				until = (int64_t) t;
		}
		if (fd < 0)
			continue;
		if (s->arm && s->arm(s) == -EAGAIN)
			return 0; /* work arrived while arming: poll again instead */
		fds[n].fd = fd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		n++;
	}
	if (ctx->timers.n) {
		int64_t t = (int64_t) timer_first(&ctx->timers)->deadline;

		if (until < 0 || t < until)
			until = t;
	}
	if (until >= 0) {
		int64_t now = (int64_t) clock_mono_ns(), d = until > now ? until - now : 0;

		tmo.tv_sec = d / 1000000000;
		tmo.tv_nsec = d % 1000000000;
		tp = &tmo;
	}
	if (ctx->kr && !ctx->kr->broken && ctx->sources == &ctx->kr->src && !ctx->sources->next) {
		/* Only the kernel ring can wake us: sleep in it, handing over what waits to be
		 * submitted in the same call, for as many completions as are still wanted. */
		struct __kernel_timespec kts = {tmo.tv_sec, tmo.tv_nsec};

		ctx->kr_defer = false;
		return kring_submit_and_sleep(ctx, want, tp ? &kts : NULL, sigmask);
	}
	ret = ppoll(fds, n, tp, sigmask);
	if (ret < 0 && errno == EINTR)
		return -EINTR;
	return 0;
}

int engine_wait(struct xring_ctx *ctx, unsigned want, int64_t deadline_ns, const sigset_t *sigmask)
{
	uint64_t spin_until = 0, spin_start = 0;
	bool spun = false;

	for (;;) {
		uint64_t now;
		int ret;

		if (ctx->ring->cq.overflow)
			cq_flush_overflow(ctx);
		if (ready(ctx) >= want)
			return spun ? spin_done(ctx, spin_start) : 0;
		engine_progress(ctx);
		if (ready(ctx) >= want)
			return spun ? spin_done(ctx, spin_start) : 0;
		now = ctx->now; /* engine_progress() read it */
		if (deadline_ns >= 0 && (int64_t) now >= deadline_ns)
			return -ETIME;
		if (!spun) {
			spun = true;
			spin_start = now;
			spin_until = now + ctx->spin_ns;
		}
		if (now < spin_until) {
			if (ctx->spin_yield && now - spin_start >= ENGINE_QUICK_NS)
				sched_yield();
			continue;
		}
		ctx->spin_yield = true;
		ctx->spin_quick = 0;
		ret = sleep_once(ctx, want - ready(ctx), deadline_ns, sigmask);
		if (ret)
			return ret;
	}
}

static int64_t deadline_after(const struct __kernel_timespec *ts)
{
	uint64_t d;

	if (!ts)
		return -1;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0)
		return (int64_t) clock_mono_ns();
	d = (uint64_t) ts->tv_sec > INT64_MAX / 2000000000
		    ? (uint64_t) INT64_MAX / 2
		    : (uint64_t) ts->tv_sec * 1000000000u + (uint64_t) ts->tv_nsec;
	return (int64_t) (clock_mono_ns() + d);
}

static int first_cqe(struct xring *ring, struct xring_cqe **cqe_ptr)
{
	if (ring->cq.overflow)
		cq_flush_overflow(ring->ctx);
	if (ring->cq.tail == ring->cq.head) {
		*cqe_ptr = NULL;
		return -EAGAIN;
	}
	*cqe_ptr = &ring->cq.cqes[ring->cq.head & ring->cq.mask];
	return 0;
}

XRING_API int __xring_peek_slow(struct xring *ring, struct xring_cqe **cqe_ptr)
{
	if (!ring->cq.overflow)
		engine_progress(ring->ctx);
	return first_cqe(ring, cqe_ptr);
}

XRING_API int __xring_get_cqe(struct xring *ring, struct xring_cqe **cqe_ptr, unsigned wait_nr)
{
	int ret;

	if (!wait_nr)
		return __xring_peek_slow(ring, cqe_ptr);
	ret = engine_wait(ring->ctx, wait_nr, -1, NULL);
	if (ret) {
		*cqe_ptr = NULL;
		return ret;
	}
	return first_cqe(ring, cqe_ptr);
}

XRING_API int xring_wait_cqes(struct xring *ring, struct xring_cqe **cqe_ptr, unsigned wait_nr,
			      struct __kernel_timespec *ts, sigset_t *sigmask)
{
	int ret = engine_wait(ring->ctx, wait_nr ? wait_nr : 1, deadline_after(ts), sigmask);

	if (ret) {
		/* Like liburing, a CQE that is ready is still handed out with the error. */
		if (first_cqe(ring, cqe_ptr))
			*cqe_ptr = NULL;
		return ret;
	}
	return first_cqe(ring, cqe_ptr);
}

XRING_API int xring_wait_cqe_timeout(struct xring *ring, struct xring_cqe **cqe_ptr,
				     struct __kernel_timespec *ts)
{
	return xring_wait_cqes(ring, cqe_ptr, 1, ts, NULL);
}

XRING_API unsigned xring_peek_batch_cqe(struct xring *ring, struct xring_cqe **cqes, unsigned count)
{
	unsigned n, i;

	if (ring->cq.overflow)
		cq_flush_overflow(ring->ctx);
	else if (ring->cq.tail == ring->cq.head)
		engine_progress(ring->ctx);
	n = xring_cq_ready(ring);
	if (n > count)
		n = count;
	for (i = 0; i < n; i++)
		cqes[i] = &ring->cq.cqes[(ring->cq.head + i) & ring->cq.mask];
	return n;
}
