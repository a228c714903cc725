/* A binary min-heap of deadlines. Each timer remembers its slot, so removal is O(log n). */
#ifndef XRING_CQE_TIMER_H
#define XRING_CQE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_IDLE UINT32_MAX

struct timer {
	uint64_t deadline; /* CLOCK_MONOTONIC nanoseconds */
	uint32_t idx;      /* slot in the heap, TIMER_IDLE when not armed */
};

struct timer_heap {
	struct timer **v;
	uint32_t n, cap;
};

static inline void timer_init(struct timer *t)
{
	t->idx = TIMER_IDLE;
}

static inline bool timer_armed(const struct timer *t)
{
	return t->idx != TIMER_IDLE;
}

int timer_heap_init(struct timer_heap *h, uint32_t cap);
void timer_heap_free(struct timer_heap *h);
int timer_add(struct timer_heap *h, struct timer *t, uint64_t deadline);
void timer_del(struct timer_heap *h, struct timer *t);
/* The earliest timer, or NULL. */
static inline struct timer *timer_first(const struct timer_heap *h)
{
	return h->n ? h->v[0] : 0;
}

uint64_t clock_mono_ns(void);

#endif
