/*
 * Referenced send data (send_zc): bytes the application lends rather than copies. Each loan is
 * a stretch of the send ring whose space is reserved but not written; its bytes are read from
 * the application's buffer whenever a segment carries them, first transmission or
 * retransmission alike, and the loan ends when the peer's ACK covers its last byte (tcp_acked()
 * passes its end: the ops layer's F_NOTIF). Reserving the ring space keeps every sequence
 * computation of the stack unchanged, and lets a loan be paid back at any time by copying the
 * bytes into their place (tcp_zc_release), which close does: after it, nothing reads the
 * application's memory.
 */
#include <errno.h>
#include <string.h>

#include "stack/tcp/tcp.h"
#include "util/copy.h"

/* Copies n bytes into a frame: see copy_out() for out. */
static void copy(uint8_t *dst, const uint8_t *src, size_t n, bool out)
{
	if (out)
		copy_out(dst, src, n);
	else
		memcpy(dst, src, n);
}

/* Copies len bytes of the ring from stream position pos (relative to sbuf_head). */
static void ring_get(const struct tcb *t, uint32_t pos, uint32_t len, uint8_t *dst, bool out)
{
	uint32_t off = (t->sbuf_head + pos) % t->sbuf_size;
	uint32_t first = t->sbuf_size - off < len ? t->sbuf_size - off : len;

	copy(dst, t->sbuf + off, first, out);
	copy(dst + first, t->sbuf, len - first, out);
}

static void ring_set(struct tcb *t, uint32_t pos, uint32_t len, const uint8_t *src)
{
	uint32_t off = (t->sbuf_head + pos) % t->sbuf_size;
	uint32_t first = t->sbuf_size - off < len ? t->sbuf_size - off : len;

	memcpy(t->sbuf + off, src, first);
	memcpy(t->sbuf, src + first, len - first);
}

void tcp_sbuf_read(const struct tcb *t, uint32_t seq, uint32_t len, uint8_t *dst, bool out)
{
	if (!t->nzref) {
		ring_get(t, seq - t->snd_buf_seq, len, dst, out);
		return;
	}
	/* Loans are sorted and disjoint: walk them, taking the ring's bytes in between. */
	for (unsigned i = 0; i < t->nzref && len; i++) {
		const struct tcp_zref *z = &t->zref[i];
		uint32_t end = z->seq + z->len, n;

		if (SEQ_LEQ(end, seq))
			continue;
		if (SEQ_LT(seq, z->seq)) {
			n = z->seq - seq < len ? z->seq - seq : len;
			ring_get(t, seq - t->snd_buf_seq, n, dst, out);
			seq += n;
			dst += n;
			len -= n;
			if (!len)
				return;
		}
		n = end - seq < len ? end - seq : len;
		copy(dst, z->data + (seq - z->seq), n, out);
		seq += n;
		dst += n;
		len -= n;
	}
	if (len)
		ring_get(t, seq - t->snd_buf_seq, len, dst, out);
}

void tcp_zc_acked(struct tcb *t)
{
	unsigned done = 0;

	while (done < t->nzref && SEQ_LEQ(t->zref[done].seq + t->zref[done].len, t->snd_buf_seq))
		done++;
	if (!done)
		return;
	t->nzref = (uint8_t) (t->nzref - done);
	memmove(t->zref, t->zref + done, t->nzref * sizeof(t->zref[0]));
}

void tcp_zc_release(struct tcb *t)
{
	for (unsigned i = 0; i < t->nzref; i++) {
		struct tcp_zref *z = &t->zref[i];
		uint32_t skip = SEQ_LT(z->seq, t->snd_buf_seq) ? t->snd_buf_seq - z->seq : 0;

		if (skip < z->len)
			ring_set(t, z->seq + skip - t->snd_buf_seq, z->len - skip, z->data + skip);
	}
	t->nzref = 0;
}

long tcp_send_ref(struct tcb *t, uint64_t now, const void *buf, size_t len)
{
	struct tcp_stack *st = t->st;
	uint32_t room = t->sbuf_size - t->sbuf_len, n, seq = t->snd_buf_seq + t->sbuf_len;
	struct tcp_zref *last = t->nzref ? &t->zref[t->nzref - 1] : NULL;

	/* The same answers as tcp_send() when no byte can be taken. */
	if (!len || t->err || (t->flags & TF_FIN_QUEUED) || !room ||
	    (t->state != TCPS_ESTABLISHED && t->state != TCPS_CLOSE_WAIT))
		return tcp_send(t, now, buf, len);
	if (!tcp_sbuf_need(st, t))
		return -ENOMEM; /* the loan's space is reserved in the ring: it must exist */
	n = len < room ? (uint32_t) len : room;
	if (last && last->seq + last->len == seq &&
	    last->data + last->len == (const uint8_t *) buf) {
		last->len += n; /* the next piece of the same buffer */
	} else if (t->nzref < TCP_ZREF_MAX) {
		t->zref[t->nzref++] = (struct tcp_zref){seq, n, buf};
	} else {
		/* Out of loan slots: copy, which the reserved space always allows. */
		return tcp_send(t, now, buf, len);
	}
	t->sbuf_len += n;
	now = tcp_clock(st, now);
	if (!tcp_push_defer(st, t))
		tcp_output(st, t, now);
	tcp_settle(st, t);
	tcp_notify_run(st);
	return n;
}

uint64_t tcp_queued(const struct tcb *t)
{
	return t->acked_total + t->sbuf_len;
}
