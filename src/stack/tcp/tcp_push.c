/*
 * Deferred output: a batch's sends on one connection leave together. Without it, a ring
 * submission of 32 sends of 64 bytes on a NODELAY socket makes 32 segments (and the peer 32
 * ACKs or echoes); with it, one segment at the end of the batch. Nothing waits beyond the
 * batch: the caller flushes before ringing its device's doorbell, which is when the segments
 * would have left anyway.
 */
#include <string.h>

#include "stack/tcp/tcp.h"

void tcp_set_defer(struct tcp_stack *st, bool on)
{
	st->defer_output = on;
	if (!on)
		tcp_push_flush(st, st->now);
}

bool tcp_push_defer(struct tcp_stack *st, struct tcb *t)
{
	if (!st->defer_output)
		return false;
	if (t->flags & TF_ON_PUSH)
		return true;
	if (st->npush == TCP_PUSH_MAX)
		return false;
	t->flags |= TF_ON_PUSH;
	st->push[st->npush++] = t->idx;
	return true;
}

void tcp_push_flush(struct tcp_stack *st, uint64_t now)
{
	now = tcp_clock(st, now);
	/* The events an output delivers may queue more (a send in a WRITABLE callback): those
	 * leave in this flush too, since the caller's doorbell comes next. Bounded, in case a
	 * callback keeps sending; what is left goes at the next flush. */
	for (unsigned round = 0; st->npush && round < 8; round++) {
		unsigned n = st->npush;
		int32_t idx[TCP_PUSH_MAX];

		memcpy(idx, st->push, n * sizeof(idx[0]));
		st->npush = 0;
		for (unsigned i = 0; i < n; i++) {
			struct tcb *t = tcp_tcb(st, idx[i]);

			/* A block freed and reused meanwhile has lost the flag: nothing to push. */
			if (!(t->flags & TF_ON_PUSH))
				continue;
			t->flags &= ~TF_ON_PUSH;
			tcp_output(st, t, now);
			tcp_settle(st, t); /* file the timers the output armed */
		}
		tcp_notify_run(st);
	}
}
