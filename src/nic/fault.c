#include "nic/fault.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
	FT_BATCH = 32,
	FT_OWN = 1u << 31, /* buf ids of the decorator's own RX buffers */
};

enum {
	FT_DROP = 1,
	FT_DUP = 2,
	FT_CORRUPT = 4,
	FT_DELAY = 8,
	FT_REORDER = 16
};

/* Thresholds on a 32-bit draw, 2^32 meaning always. */
struct ft_thr {
	uint64_t drop, dup, reorder, corrupt, delay;
	bool on;
};

struct ft_held {
	struct port_frame f;
	uint64_t due, seq;
	bool waiting; /* reorder: goes right after the next frame that passes */
};

/* One direction of one queue: its dice, its holding area, and the frames ready to go on. */
struct ft_dir {
	uint64_t rng[4];
	struct fault_counters c;
	struct ft_held *held;
	unsigned nheld, nwait;
	uint64_t seq;
	struct port_frame *fifo; /* TX: to the inner port; RX: to the caller */
	uint32_t fhead, ftail, fmask;
};

struct ft_port;

struct ft_queue {
	struct port_queue q;
	struct ft_port *fp;
	struct port_queue *in;
	struct ft_dir tx, rx;
	/* TX: dropped queue buffers for reuse, cookies completed here, buffer capacity seen */
	struct port_frame *stash;
	unsigned nstash;
	uint32_t tx_cap;
	uint64_t *ck;
	uint32_t ck_head, ck_tail;
	/* RX: own buffers for duplicates */
	uint8_t *bufs;
	uint32_t *free;
	uint8_t *out; /* own buffer lent to the caller */
	unsigned nfree;
};

struct ft_port {
	struct port port;
	struct port *in;
	struct fault_config cfg;
	struct ft_thr thr_tx, thr_rx;
	struct ft_queue *qs;
	struct port_queue **qptrs;
};

static const struct port_ops ft_ops;

static inline struct ft_queue *ftq(struct port_queue *q)
{
	return (struct ft_queue *) q;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna). */
static uint64_t ft_rand(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static inline bool ft_chance(struct ft_dir *d, uint64_t thr)
{
	return thr && (ft_rand(d->rng) >> 32) < thr;
}

static unsigned ft_decide(struct ft_dir *d, const struct ft_thr *t)
{
	unsigned m = 0;

	if (ft_chance(d, t->drop))
		return FT_DROP;
	if (ft_chance(d, t->dup))
		m |= FT_DUP;
	if (ft_chance(d, t->corrupt))
		m |= FT_CORRUPT;
	if (ft_chance(d, t->delay))
		m |= FT_DELAY;
	else if (ft_chance(d, t->reorder))
		m |= FT_REORDER;
	return m;
}

static void ft_corrupt(struct ft_dir *d, struct port_frame *f)
{
	uint64_t r = ft_rand(d->rng);

	((uint8_t *) f->data)[(r >> 32) % f->len] ^= (uint8_t) (1u << (r & 7));
	d->c.corrupted++;
}

static inline unsigned ft_room(const struct ft_dir *d)
{
	return d->fmask + 1 - (d->ftail - d->fhead);
}

static inline void ft_push(struct ft_dir *d, const struct port_frame *f)
{
	d->fifo[d->ftail++ & d->fmask] = *f;
}

static bool ft_busy(const struct ft_dir *d)
{
	return d->nheld || d->fhead != d->ftail;
}

/*
 * Move held frames to the fifo: with waiting, those waiting for a successor (in arrival order);
 * otherwise those due by now (earliest due first). Stops when the fifo is full.
 */
static unsigned ft_let_go(struct ft_dir *d, uint64_t now, bool waiting)
{
	unsigned moved = 0;

	while (d->nheld && ft_room(d)) {
		int best = -1;

		for (unsigned i = 0; i < d->nheld; i++) {
			const struct ft_held *h = &d->held[i],
					     *b = best < 0 ? NULL : &d->held[best];

			if (waiting ? !h->waiting : h->due > now)
				continue;
			if (!b || (!waiting && h->due < b->due) ||
			    ((waiting || h->due == b->due) && h->seq < b->seq))
				best = (int) i;
		}
		if (best < 0)
			break;
		ft_push(d, &d->held[best].f);
		if (d->held[best].waiting)
			d->nwait--;
		d->held[best] = d->held[--d->nheld];
		moved++;
	}
	return moved;
}

/* Hold a frame if there is room; false when it must go on at once. */
static bool ft_hold(struct ft_queue *fq, struct ft_dir *d, const struct port_frame *f,
		    unsigned fate, uint64_t now)
{
	const struct fault_config *c = &fq->fp->cfg;
	struct ft_held *h;

	if (d->nheld == c->hold) {
		d->c.hold_full++;
		return false;
	}
	h = &d->held[d->nheld++];
	h->f = *f;
	h->seq = d->seq++;
	h->waiting = fate & FT_REORDER;
	if (h->waiting) {
		h->due = now + c->reorder_ns;
		d->nwait++;
		d->c.reordered++;
	} else {
		h->due = now + c->delay_ns;
		if (c->jitter_ns)
			h->due += ft_rand(d->rng) % (c->jitter_ns + 1);
		d->c.delayed++;
	}
	return true;
}

static uint64_t ft_now(const struct ft_port *fp)
{
	return fp->cfg.now ? fp->cfg.now(fp->cfg.now_arg) : 0;
}

/* Length of the chain at f[0..n): whole chains only, 0 when it does not end within n. */
static unsigned ft_chain_len(const struct port_frame *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!(f[i].flags & PORT_F_MORE))
			return i + 1;
	return 0;
}

/* ---- receive side ---- */

static bool ft_own_copy(struct ft_queue *fq, const struct port_frame *f, struct port_frame *dup)
{
	uint32_t bs = fq->fp->cfg.buf_size, id;

	if (!fq->nfree || f->len > bs)
		return false;
	id = fq->free[--fq->nfree];
	fq->out[id] = 1;
	*dup = *f;
	dup->data = fq->bufs + (size_t) id * bs;
	dup->buf = FT_OWN | id;
	memcpy(dup->data, f->data, f->len);
	return true;
}

/* Decide the fate of frames fresh from the inner port; what goes on lands in the fifo. */
static void ft_rx_faults(struct ft_queue *fq, struct port_frame *f, unsigned n, uint64_t now)
{
	struct ft_dir *d = &fq->rx;
	struct port_frame rel[FT_BATCH];
	unsigned nrel = 0;

	for (unsigned i = 0; i < n;) {
		unsigned fate, clen = ft_chain_len(&f[i], n - i);
		struct port_frame dup;
		bool have_dup = false;

		if (clen != 1) {
			/* A chain (or a torn one, which we cannot judge): pass it as it is. */
			clen = clen ? clen : n - i;
			for (unsigned j = 0; j < clen; j++)
				ft_push(d, &f[i + j]);
			d->c.chained += clen;
			i += clen;
			ft_let_go(d, now, true);
			continue;
		}
		d->c.frames++;
		fate = ft_decide(d, &fq->fp->thr_rx);
		if (fate & FT_DROP) {
			rel[nrel++] = f[i++];
			d->c.dropped++;
			fq->q.stats.rx_drops++;
			continue;
		}
		if (fate & FT_DUP) {
			have_dup = ft_own_copy(fq, &f[i], &dup);
			d->c.duplicated += have_dup;
			d->c.no_buf += !have_dup;
		}
		if ((fate & FT_CORRUPT) && f[i].len)
			ft_corrupt(d, &f[i]);
		if (!(fate & (FT_DELAY | FT_REORDER)) || !ft_hold(fq, d, &f[i], fate, now)) {
			ft_push(d, &f[i]);
			ft_let_go(d, now, true);
		}
		if (have_dup)
			ft_push(d, &dup);
		i++;
	}
	if (nrel)
		fq->in->ops->rx_release(fq->in, rel, nrel);
}

/* Hand fifo frames to the caller, whole chains only. */
static int ft_deliver(struct ft_queue *fq, struct port_frame *f, unsigned max)
{
	struct ft_dir *d = &fq->rx;
	unsigned n = 0;

	while (d->fhead != d->ftail && max) {
		unsigned clen = 1;

		while ((d->fifo[(d->fhead + clen - 1) & d->fmask].flags & PORT_F_MORE) &&
		       d->fhead + clen != d->ftail)
			clen++;
		if (n + clen > max) {
			if (!n)
				return -EMSGSIZE;
			break;
		}
		for (unsigned j = 0; j < clen; j++) {
			f[n] = d->fifo[d->fhead++ & d->fmask];
			fq->q.stats.rx_bytes += f[n].len;
			n++;
		}
		fq->q.stats.rx_frames++;
	}
	return (int) n;
}

static void ft_tx_pump(struct ft_queue *fq, uint64_t now, bool flush);

static int ft_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max)
{
	struct ft_queue *fq = ftq(q);
	struct ft_dir *d = &fq->rx;
	uint64_t now = 0;
	int n;

	q->stats.polls++;
	if (ft_busy(&fq->tx))
		ft_tx_pump(fq, now = ft_now(fq->fp), true);
	if (!fq->fp->thr_rx.on && !ft_busy(d)) {
		n = fq->in->ops->rx_poll(fq->in, f, max);
		if (n > 0) {
			q->stats.poll_hits++;
			for (int i = 0; i < n; i++) {
				q->stats.rx_bytes += f[i].len;
				q->stats.rx_frames += !(f[i].flags & PORT_F_MORE);
			}
		}
		return n;
	}
	if (!now)
		now = ft_now(fq->fp);
	if (d->nheld)
		ft_let_go(d, now, false);
	/* Room for each new frame, its duplicate and every frame waiting for a successor. */
	if (ft_room(d) >= 2 + d->nwait) {
		struct port_frame in[FT_BATCH];
		unsigned want = (ft_room(d) - d->nwait) / 2;

		n = fq->in->ops->rx_poll(fq->in, in, want < FT_BATCH ? want : FT_BATCH);
		if (n < 0 && n != -EMSGSIZE)
			return n;
		if (n > 0)
			ft_rx_faults(fq, in, (unsigned) n, now);
	}
	n = ft_deliver(fq, f, max);
	if (n > 0)
		q->stats.poll_hits++;
	return n;
}

static void ft_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct ft_queue *fq = ftq(q);
	unsigned start = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t id = f[i].buf & ~FT_OWN;

		if (!(f[i].buf & FT_OWN))
			continue;
		/* Give the inner port the run before this own buffer, then take the buffer back. */
		if (i > start)
			fq->in->ops->rx_release(fq->in, f + start, i - start);
		start = i + 1;
		if (id >= fq->fp->cfg.hold || !fq->out[id]) {
			q->stats.rx_bad++;
			continue;
		}
		fq->out[id] = 0;
		fq->free[fq->nfree++] = id;
	}
	if (n > start)
		fq->in->ops->rx_release(fq->in, f + start, n - start);
}

/* ---- send side ---- */

/* A buffer to copy len bytes into: a stashed one first, else one from the inner port. */
static bool ft_tx_buf(struct ft_queue *fq, uint32_t len, struct port_frame *b)
{
	unsigned cap = fq->fp->cfg.hold + 2 * FT_BATCH;

	if (fq->nstash) {
		*b = fq->stash[--fq->nstash];
		b->len = fq->tx_cap;
	} else if (fq->in->ops->tx_alloc(fq->in, b, 1) != 1) {
		return false;
	} else if (b->len > fq->tx_cap) {
		fq->tx_cap = b->len;
	}
	if (len <= b->len) {
		b->flags = 0;
		b->cookie = 0;
		return true;
	}
	if (fq->nstash < cap)
		fq->stash[fq->nstash++] = *b;
	return false;
}

static bool ft_cookie_room(const struct ft_queue *fq)
{
	return fq->ck_tail - fq->ck_head < fq->fp->cfg.hold + 2 * FT_BATCH;
}

static void ft_cookie_done(struct ft_queue *fq, uint64_t cookie)
{
	unsigned cap = fq->fp->cfg.hold + 2 * FT_BATCH;

	fq->ck[fq->ck_tail++ % cap] = cookie;
}

/* Try to drop a sent frame: its buffer must be kept, or its cookie returned. */
static bool ft_tx_drop(struct ft_queue *fq, const struct port_frame *f)
{
	if (f->flags & PORT_F_EXTERNAL) {
		if (!ft_cookie_room(fq))
			return false;
		ft_cookie_done(fq, f->cookie);
		return true;
	}
	if (fq->nstash == fq->fp->cfg.hold + 2 * FT_BATCH)
		return false;
	fq->stash[fq->nstash++] = *f;
	return true;
}

static void ft_tx_one(struct ft_queue *fq, const struct port_frame *orig, uint64_t now)
{
	struct ft_dir *d = &fq->tx;
	struct port_frame f = *orig, dup;
	bool have_dup = false;
	unsigned fate;

	d->c.frames++;
	fate = ft_decide(d, &fq->fp->thr_tx);
	if (fate & FT_DROP) {
		if (ft_tx_drop(fq, &f)) {
			d->c.dropped++;
			fq->q.stats.tx_drops++;
			return;
		}
		d->c.no_buf++;
		fate = 0;
	}
	if ((fate & FT_DUP) && ft_tx_buf(fq, f.len, &dup)) {
		memcpy(dup.data, f.data, f.len);
		dup.len = f.len;
		dup.flags = f.flags & ~PORT_F_EXTERNAL;
		dup.l4_off = f.l4_off;
		dup.tso_mss = f.tso_mss;
		have_dup = true;
		d->c.duplicated++;
	} else if (fate & FT_DUP) {
		d->c.no_buf++;
	}
	if ((fate & FT_CORRUPT) && f.len) {
		struct port_frame c;

		if (!(f.flags & PORT_F_EXTERNAL)) {
			ft_corrupt(d, &f);
		} else if (ft_cookie_room(fq) && ft_tx_buf(fq, f.len, &c)) {
			/* Never write the caller's memory: corrupt a copy, finish the original. */
			memcpy(c.data, f.data, f.len);
			c.len = f.len;
			c.flags = f.flags & ~PORT_F_EXTERNAL;
			c.l4_off = f.l4_off;
			c.tso_mss = f.tso_mss;
			ft_cookie_done(fq, f.cookie);
			f = c;
			ft_corrupt(d, &f);
		} else {
			d->c.no_buf++;
		}
	}
	if (!(fate & (FT_DELAY | FT_REORDER)) || !ft_hold(fq, d, &f, fate, now)) {
		ft_push(d, &f);
		ft_let_go(d, now, true);
	}
	if (have_dup)
		ft_push(d, &dup);
}

/* Hand the fifo to the inner port, in order; what it refuses stays for the next call. */
static unsigned ft_tx_drain(struct ft_queue *fq)
{
	struct ft_dir *d = &fq->tx;
	struct port_frame tmp[2 * FT_BATCH];
	unsigned total = 0;

	while (d->fhead != d->ftail) {
		uint32_t at = d->fhead & d->fmask, n = d->ftail - d->fhead;
		const struct port_frame *f = &d->fifo[at];
		int r;

		if (n > d->fmask + 1 - at) {
			/* The fifo wraps here and a chain may straddle it: post a straight copy. */
			n = n < 2 * FT_BATCH ? n : 2 * FT_BATCH;
			for (uint32_t i = 0; i < n; i++)
				tmp[i] = d->fifo[(d->fhead + i) & d->fmask];
			f = tmp;
		}
		r = fq->in->ops->tx_post(fq->in, f, n);
		if (r == -EINVAL) {
			/* The inner port will never take this frame (the fifo holds whole chains):
			 * drop it rather than block the queue for good. */
			bool more;

			do
				more = d->fifo[d->fhead++ & d->fmask].flags & PORT_F_MORE;
			while (more && d->fhead != d->ftail);
			fq->q.stats.tx_drops++;
			continue;
		}
		if (r <= 0)
			break;
		d->fhead += (uint32_t) r;
		total += (unsigned) r;
		if ((uint32_t) r < n)
			break;
	}
	return total;
}

/* Let go of due TX frames and push them to the inner port, flushing it if asked and needed. */
static void ft_tx_pump(struct ft_queue *fq, uint64_t now, bool flush)
{
	if (fq->tx.nheld)
		ft_let_go(&fq->tx, now, false);
	if (ft_tx_drain(fq) && flush)
		fq->in->ops->tx_flush(fq->in);
}

static int ft_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n)
{
	struct ft_queue *fq = ftq(q);
	unsigned i = 0;
	int r;

	while (i < n && fq->nstash) {
		f[i] = fq->stash[--fq->nstash];
		f[i].len = fq->tx_cap;
		f[i].flags = 0;
		f[i].cookie = 0;
		i++;
	}
	if (i == n)
		return (int) n;
	r = fq->in->ops->tx_alloc(fq->in, f + i, n - i);
	if (r < 0)
		return i ? (int) i : r;
	for (int j = 0; j < r; j++)
		if (f[i + j].len > fq->tx_cap)
			fq->tx_cap = f[i + j].len;
	if (i + (unsigned) r < n)
		q->stats.tx_full++;
	return (int) i + r;
}

static void ft_tx_count(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		q->stats.tx_bytes += f[i].len;
		q->stats.tx_frames += !(f[i].flags & PORT_F_MORE);
	}
}

static int ft_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct ft_queue *fq = ftq(q);
	struct ft_dir *d = &fq->tx;
	uint64_t now;
	unsigned i = 0;

	if (!fq->fp->thr_tx.on && !ft_busy(d)) {
		int r = fq->in->ops->tx_post(fq->in, f, n);

		if (r > 0)
			ft_tx_count(q, f, (unsigned) r);
		if (r >= 0 && (unsigned) r < n)
			q->stats.tx_full++;
		return r;
	}
	now = ft_now(fq->fp);
	ft_tx_pump(fq, now, false);
	while (i < n) {
		unsigned clen = ft_chain_len(&f[i], n - i);

		if (!clen)
			return i ? (int) i : -EINVAL;
		if (ft_room(d) < (clen > 1 ? clen : 2) + d->nwait)
			break;
		if (clen > 1) {
			for (unsigned j = 0; j < clen; j++)
				ft_push(d, &f[i + j]);
			d->c.chained += clen;
			ft_let_go(d, now, true);
		} else {
			ft_tx_one(fq, &f[i], now);
		}
		ft_tx_count(q, &f[i], clen);
		i += clen;
	}
	if (i < n)
		q->stats.tx_full++;
	ft_tx_drain(fq);
	return (int) i;
}

static int ft_tx_flush(struct port_queue *q)
{
	struct ft_queue *fq = ftq(q);

	if (ft_busy(&fq->tx))
		ft_tx_pump(fq, ft_now(fq->fp), false);
	return fq->in->ops->tx_flush(fq->in);
}

static int ft_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max)
{
	struct ft_queue *fq = ftq(q);
	unsigned cap = fq->fp->cfg.hold + 2 * FT_BATCH, n = 0;
	int r;

	if (ft_busy(&fq->tx))
		ft_tx_pump(fq, ft_now(fq->fp), true);
	while (n < max && fq->ck_head != fq->ck_tail)
		cookies[n++] = fq->ck[fq->ck_head++ % cap];
	if (n == max)
		return (int) n;
	r = fq->in->ops->tx_reap(fq->in, cookies + n, max - n);
	return r < 0 ? (n ? (int) n : r) : (int) n + r;
}

static int ft_wait_fd(struct port_queue *q)
{
	struct ft_queue *fq = ftq(q);

	return fq->in->ops->wait_fd(fq->in);
}

static int ft_arm(struct port_queue *q)
{
	struct ft_queue *fq = ftq(q);

	/* Held frames are let go by calls, not by the fd: keep the caller polling. */
	if (ft_busy(&fq->tx) || ft_busy(&fq->rx))
		return -EAGAIN;
	return fq->in->ops->arm(fq->in);
}

static int ft_steer(struct port *p, const struct port_rule *rule, uint32_t *handle)
{
	struct port *in = ((struct ft_port *) p)->in;

	return in->ops->steer(in, rule, handle);
}

static int ft_unsteer(struct port *p, uint32_t handle)
{
	struct port *in = ((struct ft_port *) p)->in;

	return in->ops->unsteer(in, handle);
}

static int ft_mem_register(struct port *p, void *addr, size_t len, uint32_t *key)
{
	struct port *in = ((struct ft_port *) p)->in;

	return in->ops->mem_register(in, addr, len, key);
}

static int ft_mem_deregister(struct port *p, uint32_t key)
{
	struct port *in = ((struct ft_port *) p)->in;

	return in->ops->mem_deregister(in, key);
}

static void ft_free(struct ft_port *fp)
{
	for (unsigned i = 0; fp->qs && i < fp->port.nqueues; i++) {
		struct ft_queue *fq = &fp->qs[i];

		free(fq->tx.held);
		free(fq->tx.fifo);
		free(fq->rx.held);
		free(fq->rx.fifo);
		free(fq->stash);
		free(fq->ck);
		free(fq->bufs);
		free(fq->free);
		free(fq->out);
	}
	free(fp->qs);
	free(fp->qptrs);
	free(fp);
}

static void ft_destroy(struct port *p)
{
	struct ft_port *fp = (struct ft_port *) p;

	for (unsigned i = 0; i < p->nqueues; i++) {
		struct ft_queue *fq = &fp->qs[i];
		struct ft_dir *d = &fq->rx;

		/* Frames held on RX are loans from the inner port: return them. */
		for (unsigned j = 0; j < d->nheld; j++)
			if (!(d->held[j].f.buf & FT_OWN))
				fq->in->ops->rx_release(fq->in, &d->held[j].f, 1);
		for (; d->fhead != d->ftail; d->fhead++) {
			const struct port_frame *f = &d->fifo[d->fhead & d->fmask];

			if (!(f->buf & FT_OWN))
				fq->in->ops->rx_release(fq->in, f, 1);
		}
	}
	fp->in->ops->destroy(fp->in);
	ft_free(fp);
}

static const struct port_ops ft_ops = {
	.rx_poll = ft_rx_poll,
	.rx_release = ft_rx_release,
	.tx_alloc = ft_tx_alloc,
	.tx_post = ft_tx_post,
	.tx_flush = ft_tx_flush,
	.tx_reap = ft_tx_reap,
	.wait_fd = ft_wait_fd,
	.arm = ft_arm,
	.steer = ft_steer,
	.unsteer = ft_unsteer,
	.mem_register = ft_mem_register,
	.mem_deregister = ft_mem_deregister,
	.destroy = ft_destroy,
};

static int ft_thr(const struct fault_rates *r, struct ft_thr *t)
{
	if (r->drop > 1000000 || r->duplicate > 1000000 || r->reorder > 1000000 ||
	    r->corrupt > 1000000 || r->delay > 1000000)
		return -EINVAL;
	/* 2^32 * ppm / 10^6: a 32-bit draw below it happens with probability ppm / 10^6. */
	t->drop = ((uint64_t) r->drop << 32) / 1000000;
	t->dup = ((uint64_t) r->duplicate << 32) / 1000000;
	t->reorder = ((uint64_t) r->reorder << 32) / 1000000;
	t->corrupt = ((uint64_t) r->corrupt << 32) / 1000000;
	t->delay = ((uint64_t) r->delay << 32) / 1000000;
	t->on = t->drop || t->dup || t->reorder || t->corrupt || t->delay;
	return 0;
}

static int ft_dir_init(struct ft_dir *d, unsigned hold, uint64_t seed)
{
	uint32_t cap = 1;

	while (cap < hold + 2 * FT_BATCH + 2)
		cap <<= 1;
	for (int i = 0; i < 4; i++)
		d->rng[i] = splitmix64(&seed);
	d->held = calloc(hold, sizeof(*d->held));
	d->fifo = calloc(cap, sizeof(*d->fifo));
	d->fmask = cap - 1;
	return d->held && d->fifo ? 0 : -ENOMEM;
}

static int ft_queue_init(struct ft_port *fp, unsigned i)
{
	struct ft_queue *fq = &fp->qs[i];
	const struct fault_config *c = &fp->cfg;
	unsigned cap = c->hold + 2 * FT_BATCH;

	fq->q.ops = &ft_ops;
	fq->q.port = &fp->port;
	fq->q.index = (uint16_t) i;
	fq->fp = fp;
	fq->in = fp->in->queues[i];
	/* Distinct, reproducible streams per queue and direction. */
	if (ft_dir_init(&fq->tx, c->hold, c->seed ^ ((uint64_t) i << 1)) ||
	    ft_dir_init(&fq->rx, c->hold, c->seed ^ ((uint64_t) i << 1 | 1)))
		return -ENOMEM;
	fq->stash = calloc(cap, sizeof(*fq->stash));
	fq->ck = calloc(cap, sizeof(*fq->ck));
	fq->bufs = calloc(c->hold, c->buf_size);
	fq->free = calloc(c->hold, sizeof(*fq->free));
	fq->out = calloc(c->hold, 1);
	if (!fq->stash || !fq->ck || !fq->bufs || !fq->free || !fq->out)
		return -ENOMEM;
	for (unsigned j = 0; j < c->hold; j++)
		fq->free[j] = c->hold - 1 - j;
	fq->nfree = c->hold;
	fp->qptrs[i] = &fq->q;
	return 0;
}

int fault_wrap(struct port *inner, const struct fault_config *cfg, struct port **out)
{
	struct ft_port *fp;

	if (!inner || !cfg || !out)
		return -EINVAL;
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	fp->cfg = *cfg;
	if (!fp->cfg.hold)
		fp->cfg.hold = 64;
	if (!fp->cfg.buf_size)
		fp->cfg.buf_size = 2048;
	if (!fp->cfg.reorder_ns)
		fp->cfg.reorder_ns = 1000000;
	if (ft_thr(&cfg->tx, &fp->thr_tx) || ft_thr(&cfg->rx, &fp->thr_rx) ||
	    fp->cfg.hold > (1u << 20) || fp->cfg.buf_size > (1u << 20) ||
	    (!cfg->now && (cfg->tx.delay || cfg->tx.reorder || cfg->rx.delay || cfg->rx.reorder))) {
		free(fp);
		return -EINVAL;
	}
	fp->port = *inner;
	fp->port.ops = &ft_ops;
	fp->in = inner;
	fp->qs = calloc(inner->nqueues, sizeof(*fp->qs));
	fp->qptrs = calloc(inner->nqueues, sizeof(*fp->qptrs));
	fp->port.queues = fp->qptrs;
	if (!fp->qs || !fp->qptrs) {
		ft_free(fp);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < inner->nqueues; i++) {
		if (ft_queue_init(fp, i)) {
			ft_free(fp);
			return -ENOMEM;
		}
	}
	*out = &fp->port;
	return 0;
}

static void ft_add(struct fault_counters *s, const struct fault_counters *a)
{
	s->frames += a->frames;
	s->dropped += a->dropped;
	s->duplicated += a->duplicated;
	s->reordered += a->reordered;
	s->corrupted += a->corrupted;
	s->delayed += a->delayed;
	s->hold_full += a->hold_full;
	s->no_buf += a->no_buf;
	s->chained += a->chained;
}

int fault_get_counters(struct port *p, struct fault_counters *tx, struct fault_counters *rx)
{
	struct ft_port *fp = (struct ft_port *) p;

	if (!p || p->ops != &ft_ops)
		return -EINVAL;
	if (tx)
		*tx = (struct fault_counters){0};
	if (rx)
		*rx = (struct fault_counters){0};
	for (unsigned i = 0; i < p->nqueues; i++) {
		if (tx)
			ft_add(tx, &fp->qs[i].tx.c);
		if (rx)
			ft_add(rx, &fp->qs[i].rx.c);
	}
	return 0;
}

static uint64_t ft_dir_due(const struct ft_dir *d)
{
	uint64_t next = UINT64_MAX;

	if (d->fhead != d->ftail)
		return 0; /* let go already, waiting for the next call */
	for (unsigned i = 0; i < d->nheld; i++)
		if (d->held[i].due < next)
			next = d->held[i].due;
	return next;
}

uint64_t fault_next_due(struct port *p)
{
	struct ft_port *fp = (struct ft_port *) p;
	uint64_t next = UINT64_MAX;

	if (!p || p->ops != &ft_ops)
		return UINT64_MAX;
	for (unsigned i = 0; i < p->nqueues; i++) {
		uint64_t t = ft_dir_due(&fp->qs[i].tx), r = ft_dir_due(&fp->qs[i].rx);

		next = t < next ? t : next;
		next = r < next ? r : next;
	}
	return next;
}
