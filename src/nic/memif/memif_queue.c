/*
 * memif data path: the port.h queue operations over the shared rings, for both roles.
 *
 * Nothing here trusts the shared memory. Head and tail are read once per call and checked
 * against what we know the peer may have done (a producer cannot move more than the ring size
 * ahead of us, a consumer cannot give back slots we never handed over). Each descriptor is read
 * once into registers, then checked: a server checks that the buffer lies inside a region the
 * client gave us; a client checks that it points at one of our receive buffers that the server
 * holds right now. A violation counts rx_bad and drops the connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "nic/memif/memif_priv.h"

#define MQ(pq) ((struct mq *) (pq))

/* One read of a descriptor the peer can write at any moment. */
static inline struct dsc desc_read(const struct memif_desc *d)
{
	uint64_t w0 = __atomic_load_n((const uint64_t *) d, __ATOMIC_RELAXED);
	uint64_t w1 = __atomic_load_n((const uint64_t *) d + 1, __ATOMIC_RELAXED);

	return (struct dsc){.flags = (uint16_t) w0,
			    .region = (uint16_t) (w0 >> 16),
			    .length = (uint32_t) (w0 >> 32),
			    .offset = (uint32_t) w1};
}

static inline void desc_write(struct memif_desc *d, uint16_t flags, uint16_t region,
			      uint32_t length, uint32_t offset)
{
	d->flags = flags;
	d->region = region;
	d->length = length;
	d->offset = offset;
	d->metadata = 0;
}

/*
 * Latency: every line the peer last touched costs a trip between CPUs, and on a loaded host
 * such a trip can take a quarter of a microsecond. A consumer that waits for the index, then
 * the descriptor, then the data waits three trips; the prefetches below fetch the descriptor
 * and the likely data at once. A producer that writes into lines the peer holds makes its
 * index store wait behind their invalidation; taking the next buffer's first lines for writing
 * ahead of time (prefetchw, a no-op where unsupported) moves that wait off the send path.
 */
static inline void prefetch_rd(const void *p)
{
	__builtin_prefetch(p, 0, 3);
	__builtin_prefetch((const uint8_t *) p + 64, 0, 3);
}

static inline void prefetch_wr(const void *p)
{
#if defined(__x86_64__)
	__asm__ volatile("prefetchw %0" ::"m"(*(const volatile uint8_t *) p));
	__asm__ volatile("prefetchw %0" ::"m"(*((const volatile uint8_t *) p + 64)));
#else
	__builtin_prefetch(p, 1, 3);
	__builtin_prefetch((const uint8_t *) p + 64, 1, 3);
#endif
}

/* The likely data of the first filled slots from first on. */
static inline void rx_prefetch(const struct mq *q, uint16_t first, uint16_t n)
{
	for (uint16_t i = 0; i < n && i < 4; i++) {
		const uint8_t *d = q->rx_pred[(uint16_t) (first + i) & q->rx_mask];

		if (d)
			prefetch_rd(d);
	}
}

static inline uint16_t load_acq(const uint16_t *x)
{
	return __atomic_load_n(x, __ATOMIC_ACQUIRE);
}

static inline void store_rel(uint16_t *x, uint16_t v)
{
	__atomic_store_n(x, v, __ATOMIC_RELEASE);
}

/*
 * The control channel runs on queue 0's thread, from its rx_poll() every so often and before
 * it sleeps (arm()), so a port needs no caller that knows about memif_poll(). Polls of a link
 * that is down run it often; a link that is up only needs to notice its peer leaving.
 */
static inline void ctl_tick(struct mq *q)
{
	struct mport *p = q->p;

	if (q->pq.index == 0 && ++p->ctl_tick >= (q->up ? 4096u : 256u)) {
		p->ctl_tick = 0;
		memif_poll(&p->base);
	}
}

static int mq_fault(struct mq *q, const char *why)
{
	q->pq.stats.rx_bad++;
	mport_fault(q->p, why);
	return 0;
}

int mq_up(struct mq *q)
{
	struct mport *p = q->p;
	unsigned i = q->pq.index;
	bool srv = p->role == MEMIF_ROLE_SERVER;
	const struct mring_info *rxi = &p->rings[srv ? 0 : 1][i];
	const struct mring_info *txi = &p->rings[srv ? 1 : 0][i];
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = rxi->evfd};

	q->rx = (struct memif_ring *) (p->regions[rxi->region].base + rxi->offset);
	q->tx = (struct memif_ring *) (p->regions[txi->region].base + txi->offset);
	q->rx_size = (uint16_t) (1u << rxi->log2);
	q->rx_mask = (uint16_t) (q->rx_size - 1);
	q->tx_size = (uint16_t) (1u << txi->log2);
	q->tx_mask = (uint16_t) (q->tx_size - 1);
	q->rx_evfd = rxi->evfd;
	q->tx_evfd = txi->evfd;
	q->rx_last = q->rx_rel = 0;
	q->tx_pub = q->tx_post = q->tx_end = q->tx_alloc = q->tx_reaped = q->tx_seen = 0;
	q->tx_next_ok = false;
	q->armed = false;
	q->gen = p->gen;

	/* Both sides start the rings from zero, as DPDK does on CONNECT and CONNECTED. */
	store_rel(&q->rx->head, 0);
	store_rel(&q->rx->tail, 0);
	store_rel(&q->tx->head, 0);
	store_rel(&q->tx->tail, 0);
	__atomic_store_n(&q->rx->flags, MEMIF_RING_MASK_INT, __ATOMIC_RELAXED);

	q->rx_pred = calloc(q->rx_size, sizeof(*q->rx_pred));
	if (!q->rx_pred)
		return -ENOMEM;
	if (srv) {
		q->rx_done = calloc(q->rx_size, 1);
		if (!q->rx_done)
			return -ENOMEM;
	} else {
		unsigned n = q->tx_size; /* client rings have one size */

		q->tx_shadow = calloc((size_t) n * 4, sizeof(uint32_t));
		if (!q->tx_shadow)
			return -ENOMEM;
		q->rx_shadow = q->tx_shadow + n;
		q->tx_free = q->rx_shadow + n;
		q->rx_free = q->tx_free + n;
		/*
		 * Free buffers are reused oldest first. The buffer the peer gave back last is
		 * the one still in its CPU's cache, and writing into it costs a cross-core
		 * invalidation for every line; one given back a ring earlier has mostly left
		 * that cache. Taking the newest (a stack) held a 64 KiB stream's sender to
		 * 50-58 Gbit/s, oldest first gives it 64-88 on the same machine.
		 */
		for (unsigned k = 0; k < n; k++) {
			q->tx_free[k] = n - 1 - k;
			q->rx_free[k] = 2 * n - 1 - k;
		}
		q->tx_nfree = q->rx_nfree = n;
		q->tx_ftake = q->rx_ftake = 0;
		q->up = true;
		mq_cli_rx_release(&q->pq, NULL, 0); /* give the server every receive buffer */
	}
	if (q->epfd >= 0 && rxi->evfd >= 0)
		epoll_ctl(q->epfd, EPOLL_CTL_ADD, rxi->evfd, &ev);
	q->up = true;
	return 0;
}

void mq_down(struct mq *q)
{
	if (q->epfd >= 0 && q->rx_evfd >= 0)
		epoll_ctl(q->epfd, EPOLL_CTL_DEL, q->rx_evfd, NULL);
	free(q->rx_done);
	free(q->rx_pred);
	q->rx_pred = NULL;
	free(q->tx_shadow);
	q->rx_done = NULL;
	q->tx_shadow = q->rx_shadow = q->tx_free = q->rx_free = NULL;
	q->tx_nfree = q->rx_nfree = 0;
	q->rx = q->tx = NULL;
	q->rx_evfd = q->tx_evfd = -1;
	q->up = false;
	q->armed = false;
}

static inline void rx_disarm(struct mq *q)
{
	if (q->armed) {
		q->armed = false;
		__atomic_store_n(&q->rx->flags, MEMIF_RING_MASK_INT, __ATOMIC_RELAXED);
	}
}

/* ---- client: we own every buffer ---- */

static inline uint32_t cli_buf_off(const struct mq *q, uint32_t idx)
{
	return q->bufs_off + idx * q->p->buf_size;
}

int mq_cli_rx_poll(struct port_queue *pq, struct port_frame *f, unsigned max)
{
	struct mq *q = MQ(pq);
	const struct mport *p = q->p;
	uint16_t tail, n, owned;
	uint32_t bsz = p->buf_size;

	pq->stats.polls++;
	ctl_tick(q);
	if (!q->up)
		return 0;
	rx_disarm(q);
	tail = load_acq(&q->rx->tail);
	n = (uint16_t) (tail - q->rx_last);
	owned = (uint16_t) (q->rx_rel - q->rx_last); /* slots we gave the server */
	if (n > owned)
		return mq_fault(q, "S2C tail beyond the buffers we gave");
	if (n > max)
		n = (uint16_t) max;
	rx_prefetch(q, q->rx_last, n);
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = (uint16_t) (q->rx_last + i) & q->rx_mask;
		struct dsc d = desc_read(&q->rx->desc[slot]);
		uint32_t rel = d.offset - q->bufs_off, idx = rel / bsz;

		/*
		 * A server may return our buffers in any slot order, but each must be one of our
		 * receive buffers, whole, and one we handed over and have not had back yet.
		 */
		if (d.region != 0 || d.offset < q->bufs_off || rel % bsz || idx < q->tx_size ||
		    idx >= 2u * q->tx_size || d.length > bsz || !q->rx_shadow[idx - q->tx_size])
			return mq_fault(q, "S2C descriptor is not a buffer we gave");
		q->rx_shadow[idx - q->tx_size] = 0;
		f[i].data = q->bufs + (size_t) idx * bsz;
		f[i].len = d.length;
		f[i].buf = MQ_BUF(q->gen, idx);
		f[i].cookie = 0;
		f[i].flow = 0;
		f[i].flags = (d.flags & MEMIF_DESC_NEXT) ? PORT_F_MORE : p->rx_flags;
		f[i].l4_off = 0;
		pq->stats.rx_bytes += d.length;
		pq->stats.rx_frames += !(d.flags & MEMIF_DESC_NEXT);
	}
	q->rx_last = (uint16_t) (q->rx_last + n);
	pq->stats.poll_hits += n != 0;
	return n;
}

void mq_cli_rx_release(struct port_queue *pq, const struct port_frame *f, unsigned n)
{
	struct mq *q = MQ(pq);
	uint32_t nb = 2u * q->tx_size;
	uint16_t head;

	if (!q->up)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint32_t idx = f[i].buf & 0xffff;

		if (f[i].buf >> 16 != q->gen || idx < q->tx_size || idx >= nb ||
		    q->rx_nfree >= q->rx_size)
			continue; /* from an earlier connection */
		q->rx_free[(q->rx_ftake + q->rx_nfree++) & q->tx_mask] = idx;
	}
	/* Refill: every slot the server does not hold gets a fresh buffer. */
	head = q->rx_rel;
	while (q->rx_nfree && (uint16_t) (head - q->rx_last) < q->rx_size) {
		uint16_t slot = head & q->rx_mask;
		uint32_t idx = q->rx_free[q->rx_ftake++ & q->tx_mask];

		q->rx_nfree--;

		q->rx_shadow[idx - q->tx_size] = 1; /* the server has it */
		q->rx_pred[slot] = q->bufs + (size_t) idx * q->p->buf_size;
		desc_write(&q->rx->desc[slot], 0, 0, q->p->buf_size, cli_buf_off(q, idx));
		head++;
	}
	if (head != q->rx_rel) {
		q->rx_rel = head;
		store_rel(&q->rx->head, head);
	}
}

int mq_cli_tx_reap(struct port_queue *pq, uint64_t *cookies, unsigned max)
{
	struct mq *q = MQ(pq);
	uint16_t tail, n;

	if (!q->up)
		return 0;
	tail = load_acq(&q->tx->tail);
	n = (uint16_t) (tail - q->tx_reaped);
	if (n > (uint16_t) (q->tx_pub - q->tx_reaped))
		return mq_fault(q, "C2S tail beyond head");
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = (uint16_t) (q->tx_reaped + i) & q->tx_mask;

		q->tx_free[(q->tx_ftake + q->tx_nfree++) & q->tx_mask] = q->tx_shadow[slot];
	}
	q->tx_reaped = tail;
	return 0; /* no external buffers on memif */
}

int mq_cli_tx_alloc(struct port_queue *pq, struct port_frame *f, unsigned n)
{
	struct mq *q = MQ(pq);
	uint32_t bsz = q->p->buf_size;

	if (!q->up)
		return 0;
	if (q->tx_nfree < n) {
		mq_cli_tx_reap(pq, NULL, 0);
		if (!q->up)
			return 0;
	}
	if (n > q->tx_nfree)
		n = q->tx_nfree;
	for (unsigned i = 0; i < n; i++) {
		uint32_t idx = q->tx_free[q->tx_ftake++ & q->tx_mask];

		q->tx_nfree--;

		f[i].data = q->bufs + (size_t) idx * bsz;
		f[i].len = bsz;
		f[i].buf = MQ_BUF(q->gen, idx);
		f[i].cookie = 0;
		f[i].flow = 0;
		f[i].flags = 0;
		f[i].l4_off = 0;
	}
	if (q->tx_nfree) /* the buffer the next frame gets */
		prefetch_wr(q->bufs + (size_t) q->tx_free[q->tx_ftake & q->tx_mask] * bsz);
	return (int) n;
}

int mq_cli_tx_post(struct port_queue *pq, const struct port_frame *f, unsigned n)
{
	struct mq *q = MQ(pq);
	unsigned i;

	if (!q->up) {
		pq->stats.tx_drops += n;
		return (int) n;
	}
	for (i = 0; i < n; i++) {
		uint32_t idx = f[i].buf & 0xffff;
		uint16_t slot;

		if (f[i].buf >> 16 != q->gen || idx >= q->tx_size) {
			pq->stats.tx_drops++; /* a buffer of an earlier connection: gone with it */
			continue;
		}
		if ((uint16_t) (q->tx_post - q->tx_reaped) >= q->tx_size) {
			pq->stats.tx_full++;
			break;
		}
		slot = q->tx_post & q->tx_mask;
		q->tx_shadow[slot] = idx;
		desc_write(&q->tx->desc[slot], (f[i].flags & PORT_F_MORE) ? MEMIF_DESC_NEXT : 0, 0,
			   f[i].len, cli_buf_off(q, idx));
		q->tx_post++;
		pq->stats.tx_bytes += f[i].len;
		if (!(f[i].flags & PORT_F_MORE)) {
			q->tx_end = q->tx_post;
			pq->stats.tx_frames++;
		}
	}
	return (int) i;
}

/* ---- server: every buffer is the client's ---- */

/* Buffers are at most 64 KiB in every implementation (DPDK's buffer size is 16-bit). */
static inline bool srv_buf_ok(const struct mport *p, const struct dsc *d)
{
	return d->region < p->nregions && d->length <= MEMIF_MAX_BUF &&
	       (uint64_t) d->offset + d->length <= p->regions[d->region].size;
}

int mq_srv_rx_poll(struct port_queue *pq, struct port_frame *f, unsigned max)
{
	struct mq *q = MQ(pq);
	const struct mport *p = q->p;
	uint16_t head, n;

	pq->stats.polls++;
	ctl_tick(q);
	if (!q->up)
		return 0;
	rx_disarm(q);
	head = load_acq(&q->rx->head);
	n = (uint16_t) (head - q->rx_last);
	/* Slots from our released tail to head: all of them must fit in the ring. */
	if ((uint16_t) (head - q->rx_rel) > q->rx_size)
		return mq_fault(q, "C2S head moved more than the ring size");
	if (n > max)
		n = (uint16_t) max;
	rx_prefetch(q, q->rx_last, n);
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = (uint16_t) (q->rx_last + i) & q->rx_mask;
		struct dsc d = desc_read(&q->rx->desc[slot]);

		if (!srv_buf_ok(p, &d))
			return mq_fault(q, "C2S descriptor outside the regions");
		f[i].data = p->regions[d.region].base + d.offset;
		q->rx_pred[slot] = f[i].data;
		f[i].len = d.length;
		f[i].buf = MQ_BUF(q->gen, slot);
		f[i].cookie = 0;
		f[i].flow = 0;
		f[i].flags = (d.flags & MEMIF_DESC_NEXT) ? PORT_F_MORE : p->rx_flags;
		f[i].l4_off = 0;
		pq->stats.rx_bytes += d.length;
		pq->stats.rx_frames += !(d.flags & MEMIF_DESC_NEXT);
	}
	q->rx_last = (uint16_t) (q->rx_last + n);
	pq->stats.poll_hits += n != 0;
	return n;
}

void mq_srv_rx_release(struct port_queue *pq, const struct port_frame *f, unsigned n)
{
	struct mq *q = MQ(pq);
	uint16_t tail;

	if (!q->up)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint32_t slot = f[i].buf & 0xffff;

		if (f[i].buf >> 16 == q->gen && slot < q->rx_size)
			q->rx_done[slot] = 1;
	}
	/* The tail moves over released slots in ring order; a slot still lent stops it. */
	tail = q->rx_rel;
	while (tail != q->rx_last && q->rx_done[tail & q->rx_mask]) {
		q->rx_done[tail & q->rx_mask] = 0;
		tail++;
	}
	if (tail != q->rx_rel) {
		q->rx_rel = tail;
		store_rel(&q->rx->tail, tail);
	}
}

/*
 * Lending a slot reads two lines the client wrote, its head and the slot's descriptor: two trips
 * between CPUs before a reply can be written. So the head is read again only when the slots it
 * gave last time are used up, and the descriptor of the slot after the ones lent is read (and
 * checked) now, while the reply that will need it is not yet waiting. Both stay valid: a slot the
 * client gave is ours until our tail passes it, and the copy is what gets checked and used.
 */
int mq_srv_tx_alloc(struct port_queue *pq, struct port_frame *f, unsigned n)
{
	struct mq *q = MQ(pq);
	const struct mport *p = q->p;
	uint16_t avail;

	if (!q->up)
		return 0;
	if ((uint16_t) (q->tx_seen - q->tx_alloc) < n) {
		uint16_t head = load_acq(&q->tx->head);

		if ((uint16_t) (head - q->tx_pub) > q->tx_size)
			return mq_fault(q, "S2C head moved more than the ring size");
		if ((uint16_t) (q->tx_alloc - q->tx_pub) > (uint16_t) (head - q->tx_pub))
			return mq_fault(q, "S2C head moved back");
		q->tx_seen = head;
	}
	avail = (uint16_t) (q->tx_seen - q->tx_alloc);
	if (n > avail)
		n = avail;
	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (uint16_t) (q->tx_alloc + i);
		struct dsc d;

		if (i == 0 && q->tx_next_ok && q->tx_next_at == at)
			d = q->tx_next;
		else
			d = desc_read(&q->tx->desc[at & q->tx_mask]);
		if (!srv_buf_ok(p, &d))
			return mq_fault(q, "S2C descriptor outside the regions");
		f[i].data = p->regions[d.region].base + d.offset;
		f[i].len = d.length;
		f[i].buf = MQ_BUF(q->gen, d.region);
		f[i].cookie = 0;
		f[i].flow = 0;
		f[i].flags = 0;
		f[i].l4_off = 0;
	}
	q->tx_alloc = (uint16_t) (q->tx_alloc + n);
	q->tx_next_ok = false;
	if (avail > n) { /* the slot the next frame gets, already given to us */
		struct dsc d = desc_read(&q->tx->desc[q->tx_alloc & q->tx_mask]);

		if (srv_buf_ok(p, &d)) {
			q->tx_next_ok = true;
			q->tx_next_at = q->tx_alloc;
			q->tx_next = d;
			prefetch_wr(p->regions[d.region].base + d.offset);
		}
	}
	return (int) n;
}

int mq_srv_tx_post(struct port_queue *pq, const struct port_frame *f, unsigned n)
{
	struct mq *q = MQ(pq);
	const struct mport *p = q->p;
	unsigned i;

	if (!q->up) {
		pq->stats.tx_drops += n;
		return (int) n;
	}
	for (i = 0; i < n; i++) {
		uint32_t region = f[i].buf & 0xffff;
		const uint8_t *data = f[i].data;
		uint16_t slot;

		if (f[i].buf >> 16 != q->gen || region >= p->nregions ||
		    data < p->regions[region].base ||
		    (uint64_t) (data - p->regions[region].base) + f[i].len >
			    p->regions[region].size) {
			pq->stats.tx_drops++;
			continue;
		}
		/*
		 * Frames come back in any order: each lands in the next slot, pointing at its own
		 * buffer. The lent slots hold exactly the lent buffers, so a slot is always free.
		 */
		if (q->tx_post == q->tx_alloc) {
			pq->stats.tx_full++;
			break;
		}
		slot = q->tx_post & q->tx_mask;
		desc_write(&q->tx->desc[slot], (f[i].flags & PORT_F_MORE) ? MEMIF_DESC_NEXT : 0,
			   (uint16_t) region, f[i].len,
			   (uint32_t) (data - p->regions[region].base));
		q->tx_post++;
		pq->stats.tx_bytes += f[i].len;
		if (!(f[i].flags & PORT_F_MORE)) {
			q->tx_end = q->tx_post;
			pq->stats.tx_frames++;
		}
	}
	return (int) i;
}

int mq_srv_tx_reap(struct port_queue *pq, uint64_t *cookies, unsigned max)
{
	return 0; /* the client recycles its own buffers; nothing comes back to us */
}

/* ---- both ---- */

int mq_tx_flush(struct port_queue *pq)
{
	struct mq *q = MQ(pq);
	bool srv;

	if (!q->up || q->tx_end == q->tx_pub)
		return 0;
	/* Only whole frames are published: a chain still being posted stays ours. */
	srv = q->p->role == MEMIF_ROLE_SERVER;
	store_rel(srv ? &q->tx->tail : &q->tx->head, q->tx_end);
	q->tx_pub = q->tx_end;
	/* Pairs with the consumer clearing MASK_INT and then looking at the ring (mq_arm). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&q->tx->flags, __ATOMIC_RELAXED) & MEMIF_RING_MASK_INT) &&
	    q->tx_evfd >= 0) {
		uint64_t one = 1;

		pq->stats.kicks++;
		if (write(q->tx_evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return 0;
}

int mq_wait_fd(struct port_queue *pq)
{
	return MQ(pq)->epfd;
}

int mq_arm(struct port_queue *pq)
{
	struct mq *q = MQ(pq);
	uint64_t v;
	uint16_t seen;

	if (q->pq.index == 0)
		memif_poll(&q->p->base);
	if (!q->up)
		return 0; /* the control channel is in the wait set: it will say when we are up */
	if (read(q->rx_evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	__atomic_store_n(&q->rx->flags, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	seen = q->p->role == MEMIF_ROLE_SERVER ? load_acq(&q->rx->head) : load_acq(&q->rx->tail);
	if (seen != q->rx_last) {
		__atomic_store_n(&q->rx->flags, MEMIF_RING_MASK_INT, __ATOMIC_RELAXED);
		return -EAGAIN;
	}
	q->armed = true;
	return 0;
}
