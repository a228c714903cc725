/*
 * The AF_XDP data path: port.h's queue operations over one XSK's four rings. No allocation, lock
 * or system call per frame; the only system calls are the kicks AF_XDP asks for through its
 * need-wakeup flags, at most a few per flush or per idle poll.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_xdp.h>

#include "nic/xdp/xdp_internal.h"

static inline struct xp_queue *xq_of(struct port_queue *q)
{
	return (struct xp_queue *) q;
}

static inline uint64_t xp_addr(const struct xp_queue *xq, uint32_t buf)
{
	return (uint64_t) buf << xq->shift;
}

void xp_queue_prime(struct xp_queue *xq)
{
	uint32_t idx = 0, i;

	/* The fill ring has exactly nrx slots, so this reserve cannot fail. */
	if (xsk_ring_prod__reserve(&xq->fill, xq->nrx, &idx) == xq->nrx) {
		for (i = 0; i < xq->nrx; i++)
			*xsk_ring_prod__fill_addr(&xq->fill, idx + i) = xp_addr(xq, i);
		xsk_ring_prod__submit(&xq->fill, xq->nrx);
	}
	for (i = 0; i < xq->ntx; i++)
		xq->tx_free[i] = xq->nrx + xq->ntx - 1 - i;
	xq->nfree = xq->ntx;
}

/*
 * In copy mode the kernel sends at most a small batch per sendto() and answers -EAGAIN when
 * descriptors are left; each further call sends another batch, so a flush of n frames makes about
 * n/32 calls. In zero-copy mode one call wakes the driver, which then sends on its own.
 */
static int xp_kick_tx(struct xp_queue *xq)
{
	unsigned limit = xq->ntx / 16 + 2, i;
	ssize_t r = 0;
	int err = 0;

	xq->kick_pending = false;
	for (i = 0; i < limit; i++) {
		r = sendto(xq->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
		xq->q.stats.kicks++;
		err = r < 0 ? errno : 0;
		if (err != EAGAIN)
			break;
	}
	/* -EAGAIN after the limit, -ENOBUFS or -EBUSY: descriptors remain; kick again from
	 * tx_reap or arm instead of leaving them until the next flush. Anything else (the
	 * device went down) is the caller's to hear about. */
	if (err == EAGAIN || err == ENOBUFS || err == EBUSY) {
		xq->kick_pending = true;
		return 0;
	}
	return -err;
}

static void xp_reclaim(struct xp_queue *xq)
{
	uint32_t idx = 0, n, i, buf;

	n = xsk_ring_cons__peek(&xq->comp, xq->ntx, &idx);
	for (i = 0; i < n; i++) {
		buf = (uint32_t) (*xsk_ring_cons__comp_addr(&xq->comp, idx + i) >> xq->shift);
		if (buf - xq->nrx < xq->ntx && xq->nfree < xq->ntx)
			xq->tx_free[xq->nfree++] = buf;
		else
			xq->q.stats.tx_drops++; /* cannot happen unless the kernel lost track */
	}
	if (n)
		xsk_ring_cons__release(&xq->comp, n);
}

/* Publish refilled buffers to the kernel in batches: one release store per XP_FILL_BATCH
 * buffers, however the caller chunks its releases. */
static void xp_fill_submit(struct xp_queue *xq)
{
	xsk_ring_prod__submit(&xq->fill, xq->fill_unsubmitted);
	xq->fill_unsubmitted = 0;
}

int xp_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max)
{
	struct xp_queue *xq = xq_of(q);
	uint32_t idx = 0, n, i, off, mask = (1u << xq->shift) - 1;
	const struct xdp_desc *d;
	struct xp_meta *meta;
	uint64_t bytes = 0;

	q->stats.polls++;
	n = xsk_ring_cons__peek(&xq->rx, max, &idx);
	if (!n) {
		/* Idle: hand back whatever is held, so a quiet link never lacks buffers. */
		if (xq->fill_unsubmitted)
			xp_fill_submit(xq);
		/* Drivers that ran out of fill buffers sleep until told; copy mode never asks. */
		if (xsk_ring_prod__needs_wakeup(&xq->fill)) {
			recvfrom(xq->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			q->stats.kicks++;
		}
		return 0;
	}
	for (i = 0; i < n; i++) {
		d = xsk_ring_cons__rx_desc(&xq->rx, idx + i);
		off = (uint32_t) d->addr & mask;
		f[i].data = xq->area + d->addr;
		f[i].len = d->len;
		f[i].buf = (uint32_t) (d->addr >> xq->shift);
		f[i].cookie = 0;
		f[i].flow = 0;
		f[i].flags = xq->rx_flags; /* 0 unless the config trusts the sender: xdp_port.h */
		f[i].l4_off = 0;
		if (off >= sizeof(*meta)) {
			meta = (struct xp_meta *) (xq->area + d->addr - sizeof(*meta));
			if (meta->magic == XP_META_MAGIC) {
				f[i].flow = meta->flow;
				meta->magic = 0;
			}
		}
		bytes += d->len;
	}
	xsk_ring_cons__release(&xq->rx, n);
	q->stats.poll_hits++;
	q->stats.rx_frames += n;
	q->stats.rx_bytes += bytes;
	return (int) n;
}

void xp_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct xp_queue *xq = xq_of(q);
	uint32_t idx = 0, i, k = 0;

	if (!n)
		return;
	/* Buffers in the caller's hands have fill-ring slots waiting for them: cannot fail. */
	if (xsk_ring_prod__reserve(&xq->fill, n, &idx) != n) {
		q->stats.rx_bad += n;
		return;
	}
	for (i = 0; i < n; i++) {
		if (f[i].buf >= xq->nrx) {
			q->stats.rx_bad++; /* not one of our receive buffers: keep it out */
			continue;
		}
		*xsk_ring_prod__fill_addr(&xq->fill, idx + k++) = xp_addr(xq, f[i].buf);
	}
	/* Slots reserved for rejected buffers are returned by never submitting them. */
	xq->fill.cached_prod -= n - k;
	xq->fill_unsubmitted += k;
	if (xq->fill_unsubmitted >= XP_FILL_BATCH)
		xp_fill_submit(xq);
}

int xp_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n)
{
	struct xp_queue *xq = xq_of(q);
	uint32_t i, buf;

	if (xq->nfree < n)
		xp_reclaim(xq);
	if (n > xq->nfree)
		n = xq->nfree;
	for (i = 0; i < n; i++) {
		buf = xq->tx_free[--xq->nfree];
		f[i].data = xq->area + xp_addr(xq, buf);
		f[i].len = 1u << xq->shift;
		f[i].buf = buf;
		f[i].cookie = 0;
		f[i].flow = 0;
		f[i].flags = 0;
		f[i].l4_off = 0;
	}
	return (int) n;
}

int xp_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct xp_queue *xq = xq_of(q);
	uint32_t idx = 0, i, room, size = 1u << xq->shift;
	const uint16_t unsupported =
		PORT_F_EXTERNAL | PORT_F_MORE | PORT_F_TX_IP_CSUM | PORT_F_TX_L4_CSUM;
	struct xdp_desc *d;
	uint64_t addr, bytes = 0;

	room = xsk_prod_nb_free(&xq->tx, n);
	if (room < n) {
		q->stats.tx_full++;
		n = room;
	}
	/* Accept the leading run of valid frames: each must lie inside the send buffer it names. */
	for (i = 0; i < n; i++) {
		addr = (uint64_t) ((const uint8_t *) f[i].data - xq->area);
		if ((f[i].flags & unsupported) || f[i].buf - xq->nrx >= xq->ntx ||
		    (uint32_t) (addr >> xq->shift) != f[i].buf || !f[i].len ||
		    (addr & (size - 1)) + f[i].len > size)
			break;
	}
	n = i;
	if (!n)
		return 0;
	xsk_ring_prod__reserve(&xq->tx, n, &idx);
	for (i = 0; i < n; i++) {
		d = xsk_ring_prod__tx_desc(&xq->tx, idx + i);
		d->addr = (uint64_t) ((const uint8_t *) f[i].data - xq->area);
		d->len = f[i].len;
		d->options = 0;
		bytes += f[i].len;
	}
	xq->tx_unsubmitted += n;
	q->stats.tx_frames += n;
	q->stats.tx_bytes += bytes;
	return (int) n;
}

int xp_tx_flush(struct port_queue *q)
{
	struct xp_queue *xq = xq_of(q);

	if (xq->tx_unsubmitted) {
		xsk_ring_prod__submit(&xq->tx, xq->tx_unsubmitted);
		xq->tx_unsubmitted = 0;
	} else if (!xq->kick_pending) {
		return 0;
	}
	if (xsk_ring_prod__needs_wakeup(&xq->tx))
		return xp_kick_tx(xq);
	return 0;
}

int xp_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max)
{
	struct xp_queue *xq = xq_of(q);

	if (xq->kick_pending)
		(void) xp_kick_tx(xq); /* errors reach the caller through the next tx_flush */
	xp_reclaim(xq);
	return 0; /* no PORT_F_EXTERNAL frames on this port, so never a cookie */
}

int xp_sync_drops(struct xp_queue *xq)
{
	struct xdp_statistics st;
	socklen_t len = sizeof(st);
	uint64_t drops;

	if (getsockopt(xq->fd, SOL_XDP, XDP_STATISTICS, &st, &len))
		return -errno;
	/* Frames the kernel could not deliver: too big for a buffer or a full RX ring (dropped),
	 * no fill buffer (fill ring empty), and malformed TX descriptors as rx_bad. The counters
	 * only grow, so copying them keeps port_counters monotonic. */
	drops = st.rx_dropped + st.rx_ring_full + st.rx_fill_ring_empty_descs;
	if (drops > xq->q.stats.rx_drops)
		xq->q.stats.rx_drops = drops;
	if (st.tx_invalid_descs > xq->q.stats.rx_bad)
		xq->q.stats.rx_bad = st.tx_invalid_descs;
	return 0;
}

int xp_wait_fd(struct port_queue *q)
{
	return xq_of(q)->fd;
}

int xp_arm(struct port_queue *q)
{
	struct xp_queue *xq = xq_of(q);

	if (xq->fill_unsubmitted)
		xp_fill_submit(xq);
	/* poll() on an XSK is level-triggered on the RX ring and drives copy-mode TX itself, so
	 * there is nothing to enable; only report work that is already there. */
	if (xq->kick_pending)
		(void) xp_kick_tx(xq);
	if (xsk_cons_nb_avail(&xq->rx, 1))
		return -EAGAIN;
	return 0;
}
