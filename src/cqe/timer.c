#include "cqe/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int timer_heap_init(struct timer_heap *h, uint32_t cap)
{
	h->n = 0;
	h->cap = cap ? cap : 16;
	h->v = malloc(sizeof(*h->v) * h->cap);
	return h->v ? 0 : -ENOMEM;
}

void timer_heap_free(struct timer_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

static void place(struct timer_heap *h, uint32_t i, struct timer *t)
{
	h->v[i] = t;
	t->idx = i;
}

static void sift_up(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->v[i];

	while (i) {
		uint32_t parent = (i - 1) / 2;

		if (h->v[parent]->deadline <= t->deadline)
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, t);
}

static void sift_down(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->deadline < h->v[c]->deadline)
			c++;
		if (t->deadline <= h->v[c]->deadline)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, t);
}

int timer_add(struct timer_heap *h, struct timer *t, uint64_t deadline)
{
	if (timer_armed(t))
		timer_del(h, t);
	if (h->n == h->cap) {
		struct timer **v = realloc(h->v, sizeof(*v) * h->cap * 2);

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap *= 2;
	}
	t->deadline = deadline;
	place(h, h->n++, t);
	sift_up(h, t->idx);
	return 0;
}

void timer_del(struct timer_heap *h, struct timer *t)
{
	uint32_t i = t->idx;
	struct timer *last;

	if (i == TIMER_IDLE)
		return;
	t->idx = TIMER_IDLE;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	if (i && h->v[(i - 1) / 2]->deadline > last->deadline)
		sift_up(h, i);
	else
		sift_down(h, i);
}
