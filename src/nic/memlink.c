#include "nic/memlink.h"
#include "nic/pool_mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* One buffer as it crosses a lane: which sender buffer, where in it, and the chain flag. */
struct ml_desc {
	uint32_t slot;
	uint32_t off;
	uint32_t len;
	uint32_t flags;
};

/*
 * One direction of one queue pair. The descriptor ring carries sent buffers to the receiver;
 * the return ring carries released buffer ids back. At most nbufs buffers exist, so neither
 * ring (nbufs entries each) can overflow and neither side needs the other's head: only the two
 * tails are shared, each written by one side with release and read by the other with acquire.
 */
struct ml_lane {
	_Alignas(64) uint32_t desc_tail; /* sender → receiver */
	_Alignas(64) uint32_t ret_tail;  /* receiver → sender */
	_Alignas(64) uint32_t armed;     /* receiver asks the sender for a wakeup */
	int efd;
	struct ml_desc *desc;
	uint32_t *ret;
	uint8_t *bufs;
	struct pmem mem; /* bufs' memory */
};

enum {
	SLOT_FREE,
	SLOT_ALLOC,
	SLOT_SENT
};

struct ml_end;

struct ml_queue {
	struct port_queue q;
	struct ml_end *end;
	struct ml_lane *tx, *rx;
	/* sender side, touched only by this queue's thread */
	uint32_t *free;
	uint32_t nfree;
	uint8_t *state; /* SLOT_* per buffer, catches double posts and stray ids */
	uint32_t tx_tail, published, ret_head;
	uint64_t *ck; /* cookies of copied external frames, reapable once flushed */
	uint32_t ck_head, ck_tail, ck_ready;
	/* receiver side */
	uint32_t rx_head, ret_tail, lent;
};

struct ml_region {
	uintptr_t addr;
	size_t len;
};

struct ml_end {
	struct port port;
	struct ml_link *link;
	struct ml_queue *qs;
	struct port_queue **qptrs;
	struct ml_region regions[MEMLINK_MAX_REGIONS];
	struct port_rule rules[MEMLINK_MAX_RULES];
	bool rule_used[MEMLINK_MAX_RULES];
};

struct ml_link {
	int refs;
	unsigned nqueues, nbufs, buf_size;
	struct ml_lane *lanes; /* lanes[q * 2 + side]: the lane end `side` sends on */
	struct ml_end ends[2];
};

static const struct port_ops ml_ops;

static inline struct ml_queue *mlq(struct port_queue *q)
{
	return (struct ml_queue *) q;
}

static inline uint32_t ml_mask(const struct ml_queue *mq)
{
	return mq->end->link->nbufs - 1;
}

/* Take back the buffers the receiver has released. */
static void ml_reclaim(struct ml_queue *mq)
{
	struct ml_lane *l = mq->tx;
	uint32_t tail = __atomic_load_n(&l->ret_tail, __ATOMIC_ACQUIRE);
	uint32_t nbufs = mq->end->link->nbufs;

	while (mq->ret_head != tail) {
		uint32_t s = l->ret[mq->ret_head++ & ml_mask(mq)];

		/* The receiver checks ids, but a stray one must never grow the free stack. */
		if (s >= nbufs || mq->state[s] != SLOT_SENT) {
			mq->q.stats.rx_bad++;
			continue;
		}
		mq->state[s] = SLOT_FREE;
		mq->free[mq->nfree++] = s;
	}
}

static int ml_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max)
{
	struct ml_queue *mq = mlq(q);
	struct ml_lane *l = mq->rx;
	uint32_t mask = ml_mask(mq), bs = mq->end->link->buf_size;
	uint32_t tail = __atomic_load_n(&l->desc_tail, __ATOMIC_ACQUIRE);
	unsigned n = 0;

	q->stats.polls++;
	while (mq->rx_head != tail && max) {
		uint32_t clen = 1;

		/* The sender publishes whole chains only, so the chain ends before tail. */
		while (l->desc[(mq->rx_head + clen - 1) & mask].flags & PORT_F_MORE)
			clen++;
		if (n + clen > max) {
			if (!n)
				return -EMSGSIZE;
			break;
		}
		for (uint32_t i = 0; i < clen; i++) {
			const struct ml_desc *d = &l->desc[mq->rx_head++ & mask];

			f[n] = (struct port_frame){
				.data = l->bufs + (size_t) d->slot * bs + d->off,
				.len = d->len,
				.buf = d->slot,
				.flags = (uint16_t) d->flags,
			};
			q->stats.rx_bytes += d->len;
			n++;
		}
		q->stats.rx_frames++;
	}
	mq->lent += n;
	if (n)
		q->stats.poll_hits++;
	return (int) n;
}

static void ml_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct ml_queue *mq = mlq(q);
	struct ml_lane *l = mq->rx;
	uint32_t nbufs = mq->end->link->nbufs;

	for (unsigned i = 0; i < n; i++) {
		/* More releases than loans would overflow the return ring. */
		if (f[i].buf >= nbufs || !mq->lent) {
			q->stats.rx_bad++;
			continue;
		}
		mq->lent--;
		l->ret[mq->ret_tail++ & ml_mask(mq)] = f[i].buf;
	}
	__atomic_store_n(&l->ret_tail, mq->ret_tail, __ATOMIC_RELEASE);
}

static int ml_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n)
{
	struct ml_queue *mq = mlq(q);
	uint32_t bs = mq->end->link->buf_size;
	unsigned i;

	if (mq->nfree < n)
		ml_reclaim(mq);
	for (i = 0; i < n && mq->nfree; i++) {
		uint32_t s = mq->free[--mq->nfree];

		mq->state[s] = SLOT_ALLOC;
		f[i] = (struct port_frame){
			.data = mq->tx->bufs + (size_t) s * bs,
			.len = bs,
			.buf = s,
		};
	}
	if (i < n)
		q->stats.tx_full++;
	return (int) i;
}

static bool ml_registered(const struct ml_end *e, const void *data, uint32_t len)
{
	uintptr_t a = (uintptr_t) data;

	for (unsigned i = 0; i < MEMLINK_MAX_REGIONS; i++) {
		const struct ml_region *r = &e->regions[i];

		if (r->len && a >= r->addr && len <= r->len && a - r->addr <= r->len - len)
			return true;
	}
	return false;
}

/* Is this frame acceptable to send? Queue buffers must be ours, allocated and in bounds. */
static bool ml_tx_valid(const struct ml_queue *mq, const struct port_frame *f)
{
	uint32_t bs = mq->end->link->buf_size;
	uintptr_t base;

	if (f->len > bs)
		return false;
	if (f->flags & PORT_F_EXTERNAL)
		return ml_registered(mq->end, f->data, f->len);
	if (f->buf >= mq->end->link->nbufs || mq->state[f->buf] != SLOT_ALLOC)
		return false;
	base = (uintptr_t) (mq->tx->bufs + (size_t) f->buf * bs);
	return (uintptr_t) f->data >= base && (uintptr_t) f->data - base + f->len <= bs;
}

static void ml_tx_put(struct ml_queue *mq, uint32_t slot, const struct port_frame *f)
{
	struct ml_lane *l = mq->tx;
	uint32_t bs = mq->end->link->buf_size;
	uint32_t off = (uint32_t) ((uint8_t *) f->data - (l->bufs + (size_t) slot * bs));

	mq->state[slot] = SLOT_SENT;
	l->desc[mq->tx_tail++ & ml_mask(mq)] = (struct ml_desc){
		.slot = slot,
		.off = off,
		.len = f->len,
		.flags = f->flags & PORT_F_MORE,
	};
	mq->q.stats.tx_bytes += f->len;
	if (!(f->flags & PORT_F_MORE))
		mq->q.stats.tx_frames++;
}

static int ml_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct ml_queue *mq = mlq(q);
	uint32_t nbufs = mq->end->link->nbufs, bs = mq->end->link->buf_size;
	unsigned i = 0;

	while (i < n) {
		unsigned end = i, ext = 0;

		/* Whole chains only: find this chain's last buffer and check every piece. */
		for (;;) {
			if (!ml_tx_valid(mq, &f[end]))
				return i ? (int) i : -EINVAL;
			ext += !!(f[end].flags & PORT_F_EXTERNAL);
			if (!(f[end].flags & PORT_F_MORE))
				break;
			if (++end == n)
				return i ? (int) i : -EINVAL;
		}
		if (ext > mq->nfree)
			ml_reclaim(mq);
		if (ext > mq->nfree || ext > nbufs - (mq->ck_tail - mq->ck_head)) {
			q->stats.tx_full++;
			break;
		}
		for (; i <= end; i++) {
			struct port_frame c;
			uint32_t s;

			if (!(f[i].flags & PORT_F_EXTERNAL)) {
				ml_tx_put(mq, f[i].buf, &f[i]);
				continue;
			}
			/* Copy now: the receiver may write into what it is lent. */
			s = mq->free[--mq->nfree];
			c = f[i];
			c.data = mq->tx->bufs + (size_t) s * bs;
			memcpy(c.data, f[i].data, f[i].len);
			mq->ck[mq->ck_tail++ & ml_mask(mq)] = f[i].cookie;
			ml_tx_put(mq, s, &c);
		}
	}
	return (int) i;
}

static int ml_tx_flush(struct port_queue *q)
{
	struct ml_queue *mq = mlq(q);
	struct ml_lane *l = mq->tx;

	mq->ck_ready = mq->ck_tail;
	if (mq->tx_tail == mq->published)
		return 0;
	mq->published = mq->tx_tail;
	__atomic_store_n(&l->desc_tail, mq->tx_tail, __ATOMIC_RELEASE);
	/* Pairs with the fence in ml_arm(): either we see armed or it sees the new tail. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&l->armed, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&l->armed, 0, __ATOMIC_ACQ_REL)) {
		uint64_t one = 1;

		if (write(l->efd, &one, sizeof(one)) < 0)
			q->stats.tx_drops++; /* cannot happen short of 2^64 wakeups */
		q->stats.kicks++;
	}
	return 0;
}

static int ml_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max)
{
	struct ml_queue *mq = mlq(q);
	unsigned n = 0;

	ml_reclaim(mq);
	while (n < max && mq->ck_head != mq->ck_ready)
		cookies[n++] = mq->ck[mq->ck_head++ & ml_mask(mq)];
	return (int) n;
}

static int ml_wait_fd(struct port_queue *q)
{
	return mlq(q)->rx->efd;
}

static int ml_arm(struct port_queue *q)
{
	struct ml_queue *mq = mlq(q);
	struct ml_lane *l = mq->rx;
	uint64_t v;

	/* Consume an earlier wakeup so the fd reports only what comes after this arm. */
	if (read(l->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	__atomic_store_n(&l->armed, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&l->desc_tail, __ATOMIC_ACQUIRE) != mq->rx_head) {
		__atomic_store_n(&l->armed, 0, __ATOMIC_RELAXED);
		return -EAGAIN;
	}
	return 0;
}

static int ml_steer(struct port *p, const struct port_rule *rule, uint32_t *handle)
{
	struct ml_end *e = (struct ml_end *) p;

	if (!rule || rule->queue >= p->nqueues || rule->kind > PORT_RULE_ICMP)
		return -EINVAL;
	for (unsigned i = 0; i < MEMLINK_MAX_RULES; i++) {
		if (e->rule_used[i])
			continue;
		e->rule_used[i] = true;
		e->rules[i] = *rule;
		*handle = i + 1;
		return 0;
	}
	return -ENOSPC;
}

static int ml_unsteer(struct port *p, uint32_t handle)
{
	struct ml_end *e = (struct ml_end *) p;

	if (!handle || handle > MEMLINK_MAX_RULES || !e->rule_used[handle - 1])
		return -ENOENT;
	e->rule_used[handle - 1] = false;
	return 0;
}

static int ml_mem_register(struct port *p, void *addr, size_t len, uint32_t *key)
{
	struct ml_end *e = (struct ml_end *) p;

	if (!addr || !len || (uintptr_t) addr + len < (uintptr_t) addr)
		return -EINVAL;
	for (unsigned i = 0; i < MEMLINK_MAX_REGIONS; i++) {
		if (e->regions[i].len)
			continue;
		e->regions[i] = (struct ml_region){(uintptr_t) addr, len};
		*key = i + 1;
		return 0;
	}
	return -ENOSPC;
}

static int ml_mem_deregister(struct port *p, uint32_t key)
{
	struct ml_end *e = (struct ml_end *) p;

	if (!key || key > MEMLINK_MAX_REGIONS || !e->regions[key - 1].len)
		return -ENOENT;
	e->regions[key - 1] = (struct ml_region){0};
	return 0;
}

static void ml_free(struct ml_link *lk)
{
	if (lk->lanes) {
		for (unsigned i = 0; i < lk->nqueues * 2; i++) {
			struct ml_lane *l = &lk->lanes[i];

			if (l->efd >= 0)
				close(l->efd);
			free(l->desc);
			free(l->ret);
			pmem_free(&l->mem);
		}
	}
	for (int s = 0; s < 2; s++) {
		struct ml_end *e = &lk->ends[s];

		for (unsigned i = 0; e->qs && i < lk->nqueues; i++) {
			free(e->qs[i].free);
			free(e->qs[i].state);
			free(e->qs[i].ck);
		}
		free(e->qs);
		free(e->qptrs);
	}
	free(lk->lanes);
	free(lk);
}

static void ml_destroy(struct port *p)
{
	struct ml_end *e = (struct ml_end *) p;

	if (__atomic_sub_fetch(&e->link->refs, 1, __ATOMIC_ACQ_REL) == 0)
		ml_free(e->link);
}

static const struct port_ops ml_ops = {
	.rx_poll = ml_rx_poll,
	.rx_release = ml_rx_release,
	.tx_alloc = ml_tx_alloc,
	.tx_post = ml_tx_post,
	.tx_flush = ml_tx_flush,
	.tx_reap = ml_tx_reap,
	.wait_fd = ml_wait_fd,
	.arm = ml_arm,
	.steer = ml_steer,
	.unsteer = ml_unsteer,
	.mem_register = ml_mem_register,
	.mem_deregister = ml_mem_deregister,
	.destroy = ml_destroy,
};

static int ml_lane_init(struct ml_lane *l, unsigned nbufs, unsigned bs)
{
	int ret;

	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0)
		return -errno;
	l->desc = calloc(nbufs, sizeof(*l->desc));
	l->ret = calloc(nbufs, sizeof(*l->ret));
	if (!l->desc || !l->ret)
		return -ENOMEM;
	ret = pmem_alloc(&l->mem, (size_t) nbufs * bs, 0, "memlink");
	if (ret)
		return ret;
	l->bufs = l->mem.addr;
	memset(l->bufs, 0, (size_t) nbufs * bs);
	return 0;
}

static int ml_end_init(struct ml_link *lk, int side, const char *name, uint16_t mtu)
{
	struct ml_end *e = &lk->ends[side];
	struct port *p = &e->port;

	e->link = lk;
	p->ops = &ml_ops;
	snprintf(p->name, sizeof(p->name), "%.30s%c", name, 'a' + side);
	memcpy(p->mac, (uint8_t[6]){0x02, 0x78, 0x72, 0, 0, (uint8_t) (side + 1)}, 6);
	p->mtu = mtu;
	p->caps = PORT_CAP_CHAIN | PORT_CAP_EXTERNAL_TX;
	p->nqueues = lk->nqueues;
	e->qs = calloc(lk->nqueues, sizeof(*e->qs));
	e->qptrs = calloc(lk->nqueues, sizeof(*e->qptrs));
	if (!e->qs || !e->qptrs)
		return -ENOMEM;
	p->queues = e->qptrs;
	for (unsigned i = 0; i < lk->nqueues; i++) {
		struct ml_queue *mq = &e->qs[i];

		mq->q.ops = &ml_ops;
		mq->q.port = p;
		mq->q.index = (uint16_t) i;
		mq->end = e;
		mq->tx = &lk->lanes[i * 2 + side];
		mq->rx = &lk->lanes[i * 2 + !side];
		mq->free = calloc(lk->nbufs, sizeof(*mq->free));
		mq->state = calloc(lk->nbufs, 1);
		mq->ck = calloc(lk->nbufs, sizeof(*mq->ck));
		if (!mq->free || !mq->state || !mq->ck)
			return -ENOMEM;
		/* Hand out low ids first: easier to read in a debugger. */
		for (uint32_t s = 0; s < lk->nbufs; s++)
			mq->free[s] = lk->nbufs - 1 - s;
		mq->nfree = lk->nbufs;
		e->qptrs[i] = &mq->q;
	}
	return 0;
}

int memlink_create(const struct memlink_config *cfg, struct port *ends[2])
{
	struct memlink_config c = cfg ? *cfg : (struct memlink_config){0};
	struct ml_link *lk;
	int err;

	if (!c.nqueues)
		c.nqueues = 1;
	if (!c.nbufs)
		c.nbufs = 256;
	if (!c.buf_size)
		c.buf_size = 2048;
	if (!c.mtu)
		c.mtu = 1500;
	if (!c.name)
		c.name = "mem";
	if (!ends || c.nqueues > MEMLINK_MAX_QUEUES || (c.nbufs & (c.nbufs - 1)) ||
	    c.nbufs > (1u << 20) || c.buf_size < 64 || c.buf_size > (1u << 20))
		return -EINVAL;
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return -ENOMEM;
	lk->refs = 2;
	lk->nqueues = c.nqueues;
	lk->nbufs = c.nbufs;
	lk->buf_size = c.buf_size;
	lk->lanes = calloc(c.nqueues * 2, sizeof(*lk->lanes));
	if (!lk->lanes) {
		ml_free(lk);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c.nqueues * 2; i++)
		lk->lanes[i].efd = -1;
	for (unsigned i = 0; i < c.nqueues * 2; i++) {
		err = ml_lane_init(&lk->lanes[i], c.nbufs, c.buf_size);
		if (err) {
			ml_free(lk);
			return err;
		}
	}
	for (int s = 0; s < 2; s++) {
		err = ml_end_init(lk, s, c.name, c.mtu);
		if (err) {
			ml_free(lk);
			return err;
		}
	}
	ends[0] = &lk->ends[0].port;
	ends[1] = &lk->ends[1].port;
	return 0;
}
