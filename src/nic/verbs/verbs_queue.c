/* The data path of the verbs port: receive and send work requests, completions, waiting. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

static inline uint32_t tx_mask(const struct vb_queue *vq)
{
	return vq->vp->ntx - 1;
}

/* Read up to max completions from a CQ into out; returns the count or a negated errno. */
static int cq_poll(struct vb_queue *vq, struct vb_cq *c, struct vb_cqe *out, int max)
{
	struct ibv_poll_cq_attr attr = {0};
	int n = 0, ret;

	if (!c->cx) {
		ret = ibv_poll_cq(c->cq, max, vq->wc);
		if (ret < 0)
			return -EIO;
		for (int i = 0; i < ret; i++) {
			const struct ibv_wc *w = &vq->wc[i];

			out[i] = (struct vb_cqe){
				.wr_id = w->wr_id,
				.len = w->byte_len,
				.status = (uint16_t) w->status,
				.flags = (w->wc_flags & IBV_WC_IP_CSUM_OK)
						 ? PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK
						 : 0,
			};
		}
		return ret;
	}
	ret = ibv_start_poll(c->cx, &attr);
	if (ret == ENOENT)
		return 0;
	if (ret)
		return -ret;
	for (;;) {
		struct ibv_cq_ex *x = c->cx;

		out[n] = (struct vb_cqe){
			.wr_id = x->wr_id,
			.status = (uint16_t) x->status,
		};
		if (x->status == IBV_WC_SUCCESS) {
			out[n].len = ibv_wc_read_byte_len(x);
			if (ibv_wc_read_wc_flags(x) & IBV_WC_IP_CSUM_OK)
				out[n].flags = PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK;
			if (c->tag)
				out[n].tag = ibv_wc_read_flow_tag(x);
		}
		if (++n == max || ibv_next_poll(x))
			break;
	}
	ibv_end_poll(c->cx);
	return n;
}

/* Post up to rx_batch waiting buffers with one ibv_post_recv(). */
static void rx_post_batch(struct vb_queue *vq)
{
	struct vb_port *vp = vq->vp;
	struct ibv_recv_wr *bad = NULL;
	unsigned n = vq->nrepost < vp->rx_batch ? vq->nrepost : vp->rx_batch;
	int ret;

	if (!n || vq->err)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint32_t b = vq->repost[vq->nrepost - n + i];

		vq->rsge[i] = (struct ibv_sge){
			.addr = (uintptr_t) (vq->rx_base + (size_t) b * vp->bs),
			.length = vp->bs,
			.lkey = vp->pool_mr->lkey,
		};
		vq->rwr[i] = (struct ibv_recv_wr){
			.wr_id = b,
			.next = i + 1 < n ? &vq->rwr[i + 1] : NULL,
			.sg_list = &vq->rsge[i],
			.num_sge = 1,
		};
	}
	for (unsigned i = 0; i < n; i++)
		vq->rx_state[vq->rwr[i].wr_id] = VB_RX_POSTED;
	vq->rx_posts++;
	ret = ibv_post_recv(vq->qp, vq->rwr, &bad);
	if (ret) {
		/* Work requests from bad on were not posted: their buffers stay waiting. */
		unsigned posted = bad ? (unsigned) (bad - vq->rwr) : 0;

		for (unsigned i = posted; i < n; i++)
			vq->rx_state[vq->rwr[i].wr_id] = VB_RX_WAITING;

		memmove(&vq->repost[vq->nrepost - n], &vq->repost[vq->nrepost - n + posted],
			(n - posted) * sizeof(*vq->repost));
		vq->nrepost -= posted;
		vq->rx_posted += posted;
		vq->q.stats.rx_bad++;
		return;
	}
	vq->nrepost -= n;
	vq->rx_posted += n;
}

/* Turn one receive completion into a frame; false when it carried none. */
static bool rx_take(struct vb_queue *vq, const struct vb_cqe *c, struct port_frame *f)
{
	struct vb_port *vp = vq->vp;
	uint32_t b = (uint32_t) c->wr_id;

	if (c->wr_id >= vp->nrx || vq->rx_state[b] != VB_RX_POSTED) {
		vq->q.stats.rx_bad++;
		return false;
	}
	vq->rx_posted--;
	vq->rx_state[b] = VB_RX_WAITING;
	if (c->status != IBV_WC_SUCCESS || c->len > vp->bs) {
		vq->wc_errors += c->status != IBV_WC_SUCCESS;
		if (c->status == IBV_WC_WR_FLUSH_ERR) {
			/* The QP is in the error state: the buffer waits, nothing is reposted. */
			vq->err = -EIO;
		} else {
			vq->q.stats.rx_drops++;
		}
		vq->repost[vq->nrepost++] = b;
		return false;
	}
	vq->rx_state[b] = VB_RX_LENT;
	*f = (struct port_frame){
		.data = vq->rx_base + (size_t) b * vp->bs,
		.len = c->len,
		.buf = b,
		.flow = c->tag,
		.flags = c->flags,
	};
	vq->q.stats.rx_frames++;
	vq->q.stats.rx_bytes += c->len;
	return true;
}

int vb_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max)
{
	struct vb_queue *vq = vbq(q);
	struct vb_port *vp = vq->vp;
	unsigned n = 0;

	q->stats.polls++;
	if (--vq->async_countdown == 0) {
		vq->async_countdown = VERBS_ASYNC_EVERY;
		vb_read_events(vp);
	}
	/* Keep the receive queue from running dry while the caller holds few buffers back. */
	if (vq->nrepost && vq->rx_posted < vp->rx_batch)
		rx_post_batch(vq);
	while (n < max && vq->stage_n) {
		if (rx_take(vq, &vq->stage[vq->stage_head], &f[n]))
			n++;
		vq->stage_head = (vq->stage_head + 1) % VB_WC_BATCH;
		vq->stage_n--;
	}
	while (n < max) {
		int want = (int) (max - n < VB_WC_BATCH ? max - n : VB_WC_BATCH);
		int got = cq_poll(vq, &vq->rcq, vq->cqe, want);

		if (got < 0) {
			if (!n)
				return got;
			break;
		}
		for (int i = 0; i < got; i++)
			if (rx_take(vq, &vq->cqe[i], &f[n]))
				n++;
		if (got < want)
			break;
	}
	vq->lent += n;
	if (n) {
		q->stats.poll_hits++;
		return (int) n;
	}
	/* Idle: no batch to wait for, give the device every buffer there is. */
	if (vq->nrepost)
		rx_post_batch(vq);
	if (vq->err)
		return vq->err;
	return __atomic_load_n(&vp->error, __ATOMIC_RELAXED);
}

void vb_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct vb_queue *vq = vbq(q);
	struct vb_port *vp = vq->vp;

	for (unsigned i = 0; i < n; i++) {
		/* More releases than loans would overflow the repost list. */
		if (f[i].buf >= vp->nrx || vq->rx_state[f[i].buf] != VB_RX_LENT) {
			q->stats.rx_bad++;
			continue;
		}
		vq->lent--;
		vq->rx_state[f[i].buf] = VB_RX_WAITING;
		vq->repost[vq->nrepost++] = f[i].buf;
		if (vq->nrepost >= vp->rx_batch)
			rx_post_batch(vq);
	}
}

int vb_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n)
{
	struct vb_queue *vq = vbq(q);
	uint32_t bs = vq->vp->tbs;
	unsigned i;

	if (vq->nfree < n)
		vb_tx_reap(q, NULL, 0);
	for (i = 0; i < n && vq->nfree; i++) {
		uint32_t s = vq->free[--vq->nfree];

		vq->state[s] = VB_ALLOC;
		f[i] = (struct port_frame){
			.data = vq->tx_base + (size_t) s * bs,
			.len = bs,
			.buf = s,
		};
	}
	if (i < n)
		q->stats.tx_full++;
	return (int) i;
}

/* The registered region holding [data, data + len), or -1. */
static int region_of(const struct vb_port *vp, const void *data, uint32_t len)
{
	uintptr_t a = (uintptr_t) data;

	for (int i = 0; i < VERBS_MAX_REGIONS; i++) {
		const struct vb_region *r = &vp->regions[i];

		if (r->mr && a >= r->addr && len <= r->len && a - r->addr <= r->len - len)
			return i;
	}
	return -1;
}

/* The bytes of Ethernet, IPv4 and TCP headers a TSO frame starts with, 0 when unusable. */
static uint16_t tso_hdr_len(const struct port_frame *f)
{
	const uint8_t *d = f->data;
	uint32_t hl;

	if (f->l4_off < 34 || f->len < f->l4_off + 20u || !f->tso_mss || f->tso_mss > 0xffff)
		return 0;
	hl = f->l4_off + (uint32_t) (d[f->l4_off + 12] >> 4) * 4;
	if (hl > VERBS_TSO_HDR || hl > f->len || hl < f->l4_off + 20u)
		return 0;
	return (uint16_t) hl;
}

static bool tx_buf_valid(const struct vb_queue *vq, const struct port_frame *f)
{
	uint32_t bs = vq->vp->tbs;
	uintptr_t base;

	if (f->len > bs || f->buf >= vq->vp->ntx || vq->state[f->buf] != VB_ALLOC)
		return false;
	base = (uintptr_t) (vq->tx_base + (size_t) f->buf * bs);
	return (uintptr_t) f->data >= base && (uintptr_t) f->data - base + f->len <= bs;
}

/* Give a slot's buffers back and its cookies to the caller; the device is done with it. */
static void tx_retire(struct vb_queue *vq, uint32_t slot)
{
	uint32_t s = slot & tx_mask(vq), ms = vq->vp->max_sge;
	struct vb_piece *pc = &vq->pieces[(size_t) s * ms];

	for (unsigned i = 0; i < vq->npieces[s]; i++) {
		if (pc[i].buf == UINT32_MAX) {
			vq->ck[vq->ck_tail++ & vq->ck_mask] = pc[i].cookie;
			vq->ext_inflight--;
			vq->region_inflight[pc[i].region]--;
		} else if (vq->state[pc[i].buf] == VB_SENT) {
			/* A chain may name one buffer twice: it goes back once. */
			vq->state[pc[i].buf] = VB_FREE;
			vq->free[vq->nfree++] = pc[i].buf;
		}
	}
	vq->npieces[s] = 0;
}

/* Read send completions: each retires its slot and every earlier one (selective signalling). */
static void tx_complete(struct vb_queue *vq)
{
	for (;;) {
		int got = cq_poll(vq, &vq->scq, vq->cqe, VB_WC_BATCH);

		if (got <= 0)
			return;
		for (int i = 0; i < got; i++) {
			const struct vb_cqe *c = &vq->cqe[i];
			uint32_t slot = (uint32_t) c->wr_id;

			/* Only slots the device holds can complete. */
			if (slot - vq->sq_head >= vq->sq_posted - vq->sq_head) {
				vq->q.stats.rx_bad++;
				continue;
			}
			if (c->status != IBV_WC_SUCCESS) {
				vq->wc_errors++;
				vq->q.stats.tx_drops++;
				if (c->status != IBV_WC_WR_FLUSH_ERR) {
					log_warn("verbs: %s queue %u: send completion %s",
						 vq->vp->port.name, vq->q.index,
						 ibv_wc_status_str((enum ibv_wc_status) c->status));
				}
				vq->err = -EIO;
			}
			while (vq->sq_head != slot + 1)
				tx_retire(vq, vq->sq_head++);
		}
		if (got < VB_WC_BATCH)
			return;
	}
}

int vb_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct vb_queue *vq = vbq(q);
	struct vb_port *vp = vq->vp;
	uint32_t ms = vp->max_sge, mask = tx_mask(vq);
	int perr = __atomic_load_n(&vp->error, __ATOMIC_RELAXED);
	unsigned i = 0;

	if (perr || vq->err)
		return perr ? perr : vq->err;
	while (i < n) {
		unsigned end = i, ext = 0;
		uint32_t slot, s, total = 0;
		struct vb_piece *pc;
		struct ibv_sge *sg;
		int regions[VERBS_MAX_SGE];
		bool csum = false;

		/* Whole chains only: find this chain's last buffer and check every piece. */
		for (;;) {
			const struct port_frame *p = &f[end];

			if (end - i >= ms)
				return i ? (int) i : -EMSGSIZE;
			regions[end - i] = -1;
			if (p->flags & PORT_F_EXTERNAL) {
				regions[end - i] = region_of(vp, p->data, p->len);
				if (regions[end - i] < 0)
					return i ? (int) i : -EINVAL;
				ext++;
			} else if (!tx_buf_valid(vq, p)) {
				return i ? (int) i : -EINVAL;
			}
			csum |= !!(p->flags & (PORT_F_TX_IP_CSUM | PORT_F_TX_L4_CSUM));
			/* TSO: one whole frame in one queue buffer, headers that fit the WQE. */
			if ((p->flags & PORT_F_TX_TSO) &&
			    (!vp->tso || end != i || (p->flags & (PORT_F_MORE | PORT_F_EXTERNAL)) ||
			     !tso_hdr_len(p)))
				return i ? (int) i : -EINVAL;
			if (!(p->flags & PORT_F_MORE))
				break;
			if (++end == n)
				return i ? (int) i : -EINVAL;
		}
		if (vq->sq_tail - vq->sq_head == vp->ntx ||
		    vq->ext_inflight + (vq->ck_tail - vq->ck_head) + ext > vq->ck_mask + 1)
			tx_complete(vq);
		if (vq->sq_tail - vq->sq_head == vp->ntx ||
		    vq->ext_inflight + (vq->ck_tail - vq->ck_head) + ext > vq->ck_mask + 1) {
			q->stats.tx_full++;
			break;
		}
		slot = vq->sq_tail++;
		s = slot & mask;
		pc = &vq->pieces[(size_t) s * ms];
		sg = &vq->ssge[(size_t) s * ms];
		for (unsigned k = 0; i <= end; i++, k++) {
			const struct port_frame *p = &f[i];

			if (regions[k] >= 0) {
				const struct vb_region *r = &vp->regions[regions[k]];

				pc[k] = (struct vb_piece){.cookie = p->cookie,
							  .buf = UINT32_MAX,
							  .region = (uint16_t) regions[k]};
				sg[k] = (struct ibv_sge){(uintptr_t) p->data, p->len, r->mr->lkey};
				vq->ext_inflight++;
				vq->region_inflight[regions[k]]++;
			} else {
				pc[k] = (struct vb_piece){.buf = p->buf};
				sg[k] = (struct ibv_sge){(uintptr_t) p->data, p->len,
							 vp->pool_mr->lkey};
				vq->state[p->buf] = VB_SENT;
			}
			vq->npieces[s] = (uint8_t) (k + 1);
			total += p->len;
		}
		vq->swr[s] = (struct ibv_send_wr){
			.wr_id = slot,
			.sg_list = sg,
			.num_sge = (int) vq->npieces[s],
			.opcode = IBV_WR_SEND,
			.send_flags = csum && vp->csum ? IBV_SEND_IP_CSUM : 0,
		};
		if (f[i - 1].flags & PORT_F_TX_TSO) {
			const struct port_frame *p = &f[i - 1];
			uint16_t hl = tso_hdr_len(p);

			/* The headers go in the WQE; the payload is the buffer past them. */
			vq->swr[s].opcode = IBV_WR_TSO;
			vq->swr[s].send_flags |= IBV_SEND_IP_CSUM;
			vq->swr[s].tso.hdr = p->data;
			vq->swr[s].tso.hdr_sz = hl;
			vq->swr[s].tso.mss = (uint16_t) p->tso_mss;
			sg[0].addr += hl;
			sg[0].length -= hl;
			vq->swr[s].num_sge = sg[0].length ? 1 : 0;
			vq->tso_sends++;
		}
		if (++vq->unsignaled >= vp->tx_signal) {
			vq->swr[s].send_flags |= IBV_SEND_SIGNALED;
			vq->unsignaled = 0;
		}
		if (slot != vq->sq_posted)
			vq->swr[(slot - 1) & mask].next = &vq->swr[s];
		vq->pending_ext |= ext != 0;
		q->stats.tx_frames++;
		q->stats.tx_bytes += total;
	}
	return (int) i;
}

int vb_tx_flush(struct port_queue *q)
{
	struct vb_queue *vq = vbq(q);
	uint32_t mask = tx_mask(vq), last;
	struct ibv_send_wr *bad = NULL;
	int ret;

	if (vq->sq_tail == vq->sq_posted)
		return vq->err ? vq->err : __atomic_load_n(&vq->vp->error, __ATOMIC_RELAXED);
	last = (vq->sq_tail - 1) & mask;
	/* Zero-copy senders wait for their cookies: do not leave them behind an unsignaled tail. */
	if (vq->pending_ext && !(vq->swr[last].send_flags & IBV_SEND_SIGNALED)) {
		vq->swr[last].send_flags |= IBV_SEND_SIGNALED;
		vq->unsignaled = 0;
	}
	vq->pending_ext = false;
	for (uint32_t s = vq->sq_posted; s != vq->sq_tail; s++)
		vq->signaled += !!(vq->swr[s & mask].send_flags & IBV_SEND_SIGNALED);
	vq->doorbells++; /* an MMIO write on hardware, not a system call: not a kick */
	ret = ibv_post_send(vq->qp, &vq->swr[vq->sq_posted & mask], &bad);
	if (ret) {
		/* The device took the requests before bad; take the rest back, newest first. */
		uint32_t first = bad ? (uint32_t) bad->wr_id : vq->sq_posted;

		while (vq->sq_tail != first) {
			vq->sq_tail--;
			q->stats.tx_drops++;
			q->stats.tx_frames--;
			tx_retire(vq, vq->sq_tail);
		}
		vq->sq_posted = vq->sq_tail;
		log_warn("verbs: %s queue %u: ibv_post_send: %s", vq->vp->port.name, q->index,
			 strerror(ret));
		return -ret;
	}
	vq->sq_posted = vq->sq_tail;
	return vq->err ? vq->err : __atomic_load_n(&vq->vp->error, __ATOMIC_RELAXED);
}

int vb_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max)
{
	struct vb_queue *vq = vbq(q);
	unsigned n = 0;

	tx_complete(vq);
	while (n < max && vq->ck_head != vq->ck_tail)
		cookies[n++] = vq->ck[vq->ck_head++ & vq->ck_mask];
	return (int) n;
}

int vb_wait_fd(struct port_queue *q)
{
	return vbq(q)->epfd;
}

/* Acknowledge every completion event pending on the channel (the fd is non-blocking). */
static void ack_events(struct vb_queue *vq)
{
	struct ibv_cq *cq;
	void *ctx;
	unsigned nr = 0, ns = 0;

	while (ibv_get_cq_event(vq->chan, &cq, &ctx) == 0) {
		if (cq == vq->rcq.cq)
			nr++;
		else
			ns++;
	}
	if (nr)
		ibv_ack_cq_events(vq->rcq.cq, nr);
	if (ns)
		ibv_ack_cq_events(vq->scq.cq, ns);
	vq->comp_events += nr + ns;
}

int vb_arm(struct port_queue *q)
{
	struct vb_queue *vq = vbq(q);
	int got;

	ack_events(vq);
	if (vb_read_events(vq->vp) > 0)
		return -EAGAIN; /* the port changed state: let the caller see it */
	while (vq->nrepost)
		rx_post_batch(vq);
	if (vq->err)
		return 0; /* nothing will complete on a failed QP: sleep until torn down */
	if (ibv_req_notify_cq(vq->rcq.cq, 0) || ibv_req_notify_cq(vq->scq.cq, 0))
		return -EIO;
	/* Completions that came before the CQs were armed raise no event: look for them. */
	if (vq->stage_n)
		return -EAGAIN;
	got = cq_poll(vq, &vq->rcq, vq->stage, VB_WC_BATCH);
	if (got > 0) {
		vq->stage_head = 0;
		vq->stage_n = (unsigned) got;
		return -EAGAIN;
	}
	if (vq->ext_inflight) {
		uint32_t before = vq->ck_tail;

		tx_complete(vq);
		if (vq->ck_tail != before)
			return -EAGAIN;
	}
	return 0;
}

static int cq_create(struct vb_queue *vq, struct vb_cq *c, unsigned n, bool rx)
{
	struct vb_port *vp = vq->vp;
	const uint64_t base = IBV_WC_EX_WITH_BYTE_LEN;
	/* Most capable first: flow tags (receive only), single-threaded, then plainer. */
	const struct {
		uint64_t wc;
		uint32_t flags;
	} tries[] = {
		{base | IBV_WC_EX_WITH_FLOW_TAG, IBV_CREATE_CQ_ATTR_SINGLE_THREADED},
		{base | IBV_WC_EX_WITH_FLOW_TAG, 0},
		{base, IBV_CREATE_CQ_ATTR_SINGLE_THREADED},
		{base, 0},
	};

	for (unsigned i = rx ? 0 : 2; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct ibv_cq_init_attr_ex a = {
			.cqe = n,
			.cq_context = vq,
			.channel = vq->chan,
			.wc_flags = tries[i].wc,
			.comp_mask = tries[i].flags ? IBV_CQ_INIT_ATTR_MASK_FLAGS : 0,
			.flags = tries[i].flags,
		};

		c->cx = ibv_create_cq_ex(vp->ctx, &a);
		if (c->cx) {
			c->cq = ibv_cq_ex_to_cq(c->cx);
			c->tag = !!(tries[i].wc & IBV_WC_EX_WITH_FLOW_TAG);
			return 0;
		}
		if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS)
			return -errno;
	}
	c->cq = ibv_create_cq(vp->ctx, (int) n, vq, vq->chan, 0);
	return c->cq ? 0 : -errno;
}

static int qp_create(struct vb_queue *vq)
{
	struct vb_port *vp = vq->vp;
	struct ibv_qp_init_attr qa = {
		.send_cq = vq->scq.cq,
		.recv_cq = vq->rcq.cq,
		.cap =
			{
				.max_send_wr = vp->ntx,
				.max_recv_wr = vp->nrx,
				.max_send_sge = vp->max_sge,
				.max_recv_sge = 1,
			},
		.qp_type = IBV_QPT_RAW_PACKET,
	};
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .port_num = vp->port_num};
	int ret;

	if (vp->tso) {
		struct ibv_qp_init_attr_ex qx = {
			.send_cq = qa.send_cq,
			.recv_cq = qa.recv_cq,
			.cap = qa.cap,
			.qp_type = qa.qp_type,
			.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER,
			.pd = vp->pd,
			.max_tso_header = VERBS_TSO_HDR,
		};

		vq->qp = ibv_create_qp_ex(vp->ctx, &qx);
	} else {
		vq->qp = ibv_create_qp(vp->pd, &qa);
	}
	if (!vq->qp)
		return -errno;
	ret = ibv_modify_qp(vq->qp, &a, IBV_QP_STATE | IBV_QP_PORT);
	if (!ret) {
		a = (struct ibv_qp_attr){.qp_state = IBV_QPS_RTR};
		ret = ibv_modify_qp(vq->qp, &a, IBV_QP_STATE);
	}
	if (!ret) {
		a = (struct ibv_qp_attr){.qp_state = IBV_QPS_RTS};
		ret = ibv_modify_qp(vq->qp, &a, IBV_QP_STATE);
	}
	return -ret;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int vb_queue_setup(struct vb_port *vp, struct vb_queue *vq, unsigned index)
{
	size_t per = (size_t) vp->nrx * vp->bs + (size_t) vp->ntx * vp->tbs;
	uint32_t ck_n = 1;
	struct epoll_event ev = {.events = EPOLLIN};
	int ret;

	vq->q.ops = &vb_ops;
	vq->q.port = &vp->port;
	vq->q.index = (uint16_t) index;
	vq->vp = vp;
	vq->epfd = -1;
	vq->async_countdown = VERBS_ASYNC_EVERY;
	vq->rx_base = (uint8_t *) vp->pool + per * index;
	vq->tx_base = vq->rx_base + (size_t) vp->nrx * vp->bs;
	while (ck_n < vp->ntx * vp->max_sge)
		ck_n <<= 1;
	vq->ck_mask = ck_n - 1;
	vq->repost = calloc(vp->nrx, sizeof(*vq->repost));
	vq->rx_state = calloc(vp->nrx, 1); /* VB_RX_WAITING */
	vq->rwr = calloc(vp->rx_batch, sizeof(*vq->rwr));
	vq->rsge = calloc(vp->rx_batch, sizeof(*vq->rsge));
	vq->free = calloc(vp->ntx, sizeof(*vq->free));
	vq->state = calloc(vp->ntx, 1);
	vq->swr = calloc(vp->ntx, sizeof(*vq->swr));
	vq->ssge = calloc((size_t) vp->ntx * vp->max_sge, sizeof(*vq->ssge));
	vq->pieces = calloc((size_t) vp->ntx * vp->max_sge, sizeof(*vq->pieces));
	vq->npieces = calloc(vp->ntx, 1);
	vq->ck = calloc(ck_n, sizeof(*vq->ck));
	vq->region_inflight = calloc(VERBS_MAX_REGIONS, sizeof(*vq->region_inflight));
	if (!vq->repost || !vq->rx_state || !vq->rwr || !vq->rsge || !vq->free || !vq->state ||
	    !vq->swr || !vq->ssge || !vq->pieces || !vq->npieces || !vq->ck || !vq->region_inflight)
		return -ENOMEM;
	for (uint32_t s = 0; s < vp->ntx; s++)
		vq->free[s] = vp->ntx - 1 - s;
	vq->nfree = vp->ntx;

	vq->chan = ibv_create_comp_channel(vp->ctx);
	if (!vq->chan)
		return -errno;
	ret = set_nonblock(vq->chan->fd);
	if (ret)
		return ret;
	ret = cq_create(vq, &vq->rcq, vp->nrx, true);
	if (ret)
		return ret;
	ret = cq_create(vq, &vq->scq, vp->ntx, false);
	if (ret)
		return ret;
	ret = qp_create(vq);
	if (ret)
		return ret;
	for (uint32_t b = 0; b < vp->nrx; b++)
		vq->repost[vq->nrepost++] = vp->nrx - 1 - b;
	while (vq->nrepost) {
		unsigned before = vq->nrepost;

		rx_post_batch(vq);
		if (vq->nrepost == before)
			return -EIO;
	}
	vq->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (vq->epfd < 0)
		return -errno;
	ev.data.u32 = 0;
	if (epoll_ctl(vq->epfd, EPOLL_CTL_ADD, vq->chan->fd, &ev))
		return -errno;
	ev.data.u32 = 1;
	if (epoll_ctl(vq->epfd, EPOLL_CTL_ADD, vp->ctx->async_fd, &ev))
		return -errno;
	return 0;
}

/* Release what vb_queue_setup() made, in the order verbs requires; safe on a partial setup. */
void vb_queue_teardown(struct vb_queue *vq)
{
	int ret;

	if (vq->qp) {
		ret = ibv_destroy_qp(vq->qp);
		if (ret)
			log_warn("verbs: ibv_destroy_qp: %s", strerror(ret));
	}
	/* ibv_destroy_cq() waits until every event of the CQ is acknowledged. */
	if (vq->chan)
		ack_events(vq);
	if (vq->rcq.cq && (ret = ibv_destroy_cq(vq->rcq.cq)))
		log_warn("verbs: ibv_destroy_cq: %s", strerror(ret));
	if (vq->scq.cq && (ret = ibv_destroy_cq(vq->scq.cq)))
		log_warn("verbs: ibv_destroy_cq: %s", strerror(ret));
	if (vq->chan && (ret = ibv_destroy_comp_channel(vq->chan)))
		log_warn("verbs: ibv_destroy_comp_channel: %s", strerror(ret));
	if (vq->epfd >= 0)
		close(vq->epfd);
	free(vq->repost);
	free(vq->rx_state);
	free(vq->rwr);
	free(vq->rsge);
	free(vq->free);
	free(vq->state);
	free(vq->swr);
	free(vq->ssge);
	free(vq->pieces);
	free(vq->npieces);
	free(vq->ck);
	free(vq->region_inflight);
}
