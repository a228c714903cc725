/* softverbs: a software verbs device for tests. See softverbs.h. */
#define _GNU_SOURCE
#include "softverbs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- objects --------------------------------------------------------------------------- */

struct sv_wc {
	uint64_t wr_id;
	uint32_t status, opcode, len, wc_flags, tag, qpn;
};

struct sv_dev;
struct sv_ctx;

struct sv_cq {
	struct ibv_cq_ex cx; /* ibv_cq is its prefix: ibv_cq_ex_to_cq() is a cast */
	struct sv_ctx *ctx;
	bool ex, polling;
	uint64_t wc_flags;
	struct sv_wc *ring;
	unsigned cap, head, n;
	bool armed;
	unsigned events, acked, qps;
};

struct sv_chan {
	struct ibv_comp_channel ch;
	struct sv_ctx *ctx;
	struct sv_cq *pending[1024]; /* one pending event per armed CQ at most */
	unsigned head, n, cqs;
};

struct sv_pd {
	struct ibv_pd pd;
	unsigned refs;
};

struct sv_mr {
	struct ibv_mr mr;
	int access;
	struct sv_mr *next;
};

struct sv_swqe {
	uint64_t wr_id;
	unsigned flags;
	int nsge;
	struct ibv_sge sge[16];
	bool tso;
	uint16_t hdr_sz, mss;
	uint8_t hdr[256]; /* TSO: the headers, copied at post as a provider inlines them */
};

struct sv_rwqe {
	uint64_t wr_id;
	struct ibv_sge sge;
};

struct sv_qp {
	struct ibv_qp qp;
	struct sv_ctx *ctx;
	struct sv_swqe *sq;
	struct sv_rwqe *rq;
	unsigned sq_cap, sq_head, sq_n, rq_cap, rq_head, rq_n, max_send_sge;
	unsigned max_tso_header;
	bool sig_all;
	unsigned flows;
	struct sv_qp *next;
};

struct sv_flow {
	struct ibv_flow fl;
	struct sv_qp *qp;
	uint16_t priority;
	uint32_t flags;
	uint64_t seq;
	bool has_eth, has_ip, has_l4, has_tag;
	struct ibv_flow_spec_eth eth;
	struct ibv_flow_spec_ipv4_ext ip;
	struct ibv_flow_spec_tcp_udp l4;
	uint32_t tag;
	struct sv_flow *next;
};

struct sv_ctx {
	struct verbs_context vctx;
	struct sv_dev *dev;
	struct ibv_async_event evq[256];
	unsigned ev_head, ev_n, objects;
	struct sv_mr *mrs;
	struct sv_qp *qps;
	struct sv_ctx *next;
};

struct sv_frame {
	uint16_t len;
	uint8_t data[SV_FRAME_MAX];
};

struct sv_dev {
	bool used;
	struct ibv_device ibdev;
	struct sv_dev_config cfg;
	int id, peer;
	bool deferred;
	enum ibv_port_state state;
	struct sv_frame *cap;
	unsigned cap_head, cap_n;
	struct sv_stats st;
	struct sv_ctx *ctxs;
	struct sv_flow *flows;
};

static pthread_mutex_t L = PTHREAD_MUTEX_INITIALIZER;
static struct sv_dev devs[SV_MAX_DEVS];
static unsigned live, misuse;
static char last_misuse[256];
static uint32_t next_key = 0x100, next_qpn = 0x40;
static uint64_t next_seq;
static struct {
	bool armed;
	unsigned ok;
	int err;
} fails[SV_FAIL_COUNT];

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bad(const char *fmt, ...)
{
	va_list ap;

	misuse++;
	va_start(ap, fmt);
	vsnprintf(last_misuse, sizeof(last_misuse), fmt, ap);
	va_end(ap);
	fprintf(stderr, "softverbs: misuse: %s\n", last_misuse);
}

/* Should this call fail by the test's request? Sets errno when it should. Under L. */
static bool failing(enum sv_fail what)
{
	if (!fails[what].armed)
		return false;
	if (fails[what].ok) {
		fails[what].ok--;
		return false;
	}
	fails[what].armed = false;
	errno = fails[what].err;
	return true;
}

static struct sv_ctx *ctx_of(struct ibv_context *c)
{
	return (struct sv_ctx *) verbs_get_ctx(c);
}

static struct sv_dev *dev_of(struct ibv_context *c)
{
	return ctx_of(c)->dev;
}

static void obj_new(struct sv_ctx *c)
{
	live++;
	c->objects++;
}

static void obj_gone(struct sv_ctx *c)
{
	live--;
	c->objects--;
}

/* ---- async events, completions ------------------------------------------------------------ */

static void async_push(struct sv_ctx *c, struct ibv_async_event ev)
{
	uint64_t one = 1;

	if (c->ev_n == sizeof(c->evq) / sizeof(c->evq[0]))
		return;
	c->evq[(c->ev_head + c->ev_n++) % (sizeof(c->evq) / sizeof(c->evq[0]))] = ev;
	if (write(c->vctx.context.async_fd, &one, sizeof(one)) < 0)
		bad("async eventfd write failed");
}

static void cq_push(struct sv_cq *cq, struct sv_wc wc)
{
	struct sv_dev *d = cq->ctx->dev;

	if (cq->n == cq->cap) {
		d->st.cq_overruns++;
		bad("CQ overrun (%u entries)", cq->cap);
		async_push(cq->ctx,
			   (struct ibv_async_event){.element.cq = (struct ibv_cq *) &cq->cx,
						    .event_type = IBV_EVENT_CQ_ERR});
		return;
	}
	cq->ring[(cq->head + cq->n++) % cq->cap] = wc;
	d->st.completions++;
	d->st.error_completions += wc.status != IBV_WC_SUCCESS;
	if (cq->armed && cq->cx.channel) {
		struct sv_chan *ch = (struct sv_chan *) cq->cx.channel;
		uint64_t one = 1;

		cq->armed = false;
		if (ch->n < sizeof(ch->pending) / sizeof(ch->pending[0])) {
			ch->pending[(ch->head + ch->n++) %
				    (sizeof(ch->pending) / sizeof(ch->pending[0]))] = cq;
			d->st.comp_events++;
			if (write(ch->ch.fd, &one, sizeof(one)) < 0)
				bad("channel eventfd write failed");
		}
	}
}

/* ---- frames ------------------------------------------------------------------------------ */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t) (p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t) p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t) ~sum;
}

/* Offsets of the IPv4 header and the L4 header, or false for anything else. */
static bool ipv4_parse(const uint8_t *f, size_t len, size_t *l3, size_t *l4, size_t *l4len)
{
	size_t ihl, tot;

	if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || (f[14] >> 4) != 4)
		return false;
	ihl = (size_t) (f[14] & 15) * 4;
	tot = (size_t) (f[16] << 8 | f[17]);
	if (ihl < 20 || tot < ihl || 14 + tot > len)
		return false;
	*l3 = 14;
	*l4 = 14 + ihl;
	*l4len = tot - ihl;
	return true;
}

static uint32_t pseudo(const uint8_t *ip, size_t l4len)
{
	uint32_t s = csum_add(0, ip + 12, 8);

	return s + ip[9] + (uint32_t) l4len;
}

/* What IBV_SEND_IP_CSUM does: fill the IPv4 header and the TCP/UDP checksums. */
static void tx_csum(uint8_t *f, size_t len)
{
	size_t l3, l4, l4len;
	uint8_t *ip = f + 14, *t;
	uint16_t c;

	if (!ipv4_parse(f, len, &l3, &l4, &l4len))
		return;
	ip[10] = ip[11] = 0;
	c = csum_fold(csum_add(0, ip, l4 - l3));
	ip[10] = (uint8_t) (c >> 8);
	ip[11] = (uint8_t) c;
	t = f + l4;
	if (ip[9] == 6 && l4len >= 20) {
		t[16] = t[17] = 0;
		c = csum_fold(csum_add(pseudo(ip, l4len), t, l4len));
		t[16] = (uint8_t) (c >> 8);
		t[17] = (uint8_t) c;
	} else if (ip[9] == 17 && l4len >= 8) {
		t[6] = t[7] = 0;
		c = csum_fold(csum_add(pseudo(ip, l4len), t, l4len));
		if (!c)
			c = 0xffff;
		t[6] = (uint8_t) (c >> 8);
		t[7] = (uint8_t) c;
	}
}

/* What a NIC reports as IBV_WC_IP_CSUM_OK: IPv4 header and TCP/UDP checksums both good. */
static bool rx_csum_ok(const uint8_t *f, size_t len)
{
	size_t l3, l4, l4len;
	const uint8_t *ip = f + 14;

	if (!ipv4_parse(f, len, &l3, &l4, &l4len))
		return false;
	if (csum_fold(csum_add(0, ip, l4 - l3)))
		return false;
	if (ip[9] == 6 && l4len >= 20)
		return csum_fold(csum_add(pseudo(ip, l4len), f + l4, l4len)) == 0;
	if (ip[9] == 17 && l4len >= 8)
		return csum_fold(csum_add(pseudo(ip, l4len), f + l4, l4len)) == 0;
	return false;
}

static bool masked_eq(const void *a, const void *b, const void *m, size_t n)
{
	const uint8_t *x = a, *y = b, *k = m;

	for (size_t i = 0; i < n; i++)
		if ((x[i] & k[i]) != (y[i] & k[i]))
			return false;
	return true;
}

static bool flow_match(const struct sv_flow *fl, const uint8_t *f, size_t len)
{
	size_t l3, l4, l4len;
	bool ip4 = ipv4_parse(f, len, &l3, &l4, &l4len);

	if (len < 14)
		return false;
	if (fl->has_eth) {
		uint16_t et = (uint16_t) (f[12] << 8 | f[13]), v = ntohs(fl->eth.val.ether_type),
			 m = ntohs(fl->eth.mask.ether_type);

		if (!masked_eq(f, fl->eth.val.dst_mac, fl->eth.mask.dst_mac, 6) ||
		    !masked_eq(f + 6, fl->eth.val.src_mac, fl->eth.mask.src_mac, 6) ||
		    (et & m) != (v & m))
			return false;
	}
	if (fl->has_ip) {
		const uint8_t *ip = f + 14;
		struct ibv_flow_ipv4_ext_filter got;

		if (!ip4)
			return false;
		memcpy(&got.src_ip, ip + 12, 4);
		memcpy(&got.dst_ip, ip + 16, 4);
		got.proto = ip[9];
		got.tos = ip[1];
		got.ttl = ip[8];
		got.flags = ip[6] >> 5;
		if (!masked_eq(&got.src_ip, &fl->ip.val.src_ip, &fl->ip.mask.src_ip, 4) ||
		    !masked_eq(&got.dst_ip, &fl->ip.val.dst_ip, &fl->ip.mask.dst_ip, 4) ||
		    !masked_eq(&got.proto, &fl->ip.val.proto, &fl->ip.mask.proto, 4))
			return false;
	}
	if (fl->has_l4) {
		uint8_t want = fl->l4.type == IBV_FLOW_SPEC_TCP ? 6 : 17;
		struct ibv_flow_tcp_udp_filter got;

		if (!ip4 || f[14 + 9] != want || l4len < 4)
			return false;
		memcpy(&got.src_port, f + l4, 2);
		memcpy(&got.dst_port, f + l4 + 2, 2);
		if (!masked_eq(&got, &fl->l4.val, &fl->l4.mask, sizeof(got)))
			return false;
	}
	return true;
}

static struct sv_mr *mr_find(struct sv_ctx *c, struct ibv_pd *pd, const struct ibv_sge *s,
			     bool write)
{
	for (struct sv_mr *m = c->mrs; m; m = m->next) {
		uintptr_t a = (uintptr_t) m->mr.addr;

		if (m->mr.lkey != s->lkey)
			continue;
		if (m->mr.pd != pd || s->addr < a || s->length > m->mr.length ||
		    s->addr - a > m->mr.length - s->length)
			return NULL;
		if (write && !(m->access & IBV_ACCESS_LOCAL_WRITE))
			return NULL;
		return m;
	}
	return NULL;
}

static void qp_rx(struct sv_qp *q, const uint8_t *f, size_t len, const struct sv_flow *fl)
{
	struct sv_dev *d = q->ctx->dev;
	struct sv_rwqe w;
	struct sv_wc wc = {.opcode = IBV_WC_RECV, .qpn = q->qp.qp_num};

	if (q->qp.state != IBV_QPS_RTR && q->qp.state != IBV_QPS_RTS) {
		d->st.rx_not_ready++;
		return;
	}
	if (!q->rq_n) {
		d->st.rx_no_wqe++;
		return;
	}
	w = q->rq[q->rq_head];
	q->rq_head = (q->rq_head + 1) % q->rq_cap;
	q->rq_n--;
	wc.wr_id = w.wr_id;
	if (!mr_find(q->ctx, q->qp.pd, &w.sge, true)) {
		wc.status = IBV_WC_LOC_PROT_ERR;
	} else if (len > w.sge.length) {
		wc.status = IBV_WC_LOC_LEN_ERR;
	} else {
		memcpy((void *) (uintptr_t) w.sge.addr, f, len);
		wc.len = (uint32_t) len;
		if (!d->cfg.no_csum && rx_csum_ok(f, len))
			wc.wc_flags |= IBV_WC_IP_CSUM_OK;
		if (fl->has_tag)
			wc.tag = fl->tag;
		d->st.rx_delivered++;
	}
	cq_push((struct sv_cq *) q->qp.recv_cq, wc);
}

/* Flows are kept in matching order: lower priority value first, then older first. */
static void wire_rx(struct sv_dev *d, const uint8_t *f, size_t len)
{
	bool trapped = false;

	d->st.rx_frames++;
	if (d->state != IBV_PORT_ACTIVE)
		return;
	for (struct sv_flow *fl = d->flows; fl && !trapped; fl = fl->next) {
		if (!flow_match(fl, f, len))
			continue;
		qp_rx(fl->qp, f, len, fl);
		trapped = !(fl->flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
	}
	if (!trapped)
		d->st.kernel_frames++;
}

static void wire_tx(struct sv_dev *d, const uint8_t *f, size_t len)
{
	d->st.tx_frames++;
	d->st.tx_bytes += len;
	if (d->state != IBV_PORT_ACTIVE)
		return;
	if (d->peer >= 0) {
		wire_rx(&devs[d->peer], f, len);
		return;
	}
	if (d->cap_n == SV_CAPTURE)
		return;
	d->cap[(d->cap_head + d->cap_n) % SV_CAPTURE].len = (uint16_t) len;
	memcpy(d->cap[(d->cap_head + d->cap_n) % SV_CAPTURE].data, f, len);
	d->cap_n++;
}

static void rq_flush(struct sv_qp *q)
{
	while (q->rq_n) {
		cq_push((struct sv_cq *) q->qp.recv_cq,
			(struct sv_wc){.wr_id = q->rq[q->rq_head].wr_id,
				       .status = IBV_WC_WR_FLUSH_ERR,
				       .opcode = IBV_WC_RECV});
		q->rq_head = (q->rq_head + 1) % q->rq_cap;
		q->rq_n--;
	}
}

/* Execute up to max queued send WQEs of q. */
static void st_be16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

/* What a NIC makes of an IBV_WR_TSO send; false for headers that are not Ethernet/IPv4/TCP. */
static bool tso_send(struct sv_dev *d, const struct sv_swqe *w, const uint8_t *pay, size_t plen)
{
	static uint8_t fr[SV_FRAME_MAX];
	size_t hl = w->hdr_sz, ihl, l4;
	uint32_t seq;
	unsigned id, flags;

	if (hl < 54 || w->hdr[12] != 0x08 || w->hdr[13] != 0 || (w->hdr[14] >> 4) != 4)
		return false;
	ihl = (size_t) (w->hdr[14] & 15) * 4;
	l4 = 14 + ihl;
	if (w->hdr[23] != 6 || l4 + 20 > hl || l4 + (size_t) (w->hdr[l4 + 12] >> 4) * 4 != hl ||
	    hl + w->mss > SV_FRAME_MAX)
		return false;
	id = (unsigned) (w->hdr[18] << 8 | w->hdr[19]);
	seq = (uint32_t) w->hdr[l4 + 4] << 24 | (uint32_t) w->hdr[l4 + 5] << 16 |
	      (uint32_t) w->hdr[l4 + 6] << 8 | w->hdr[l4 + 7];
	flags = w->hdr[l4 + 13];
	for (size_t off = 0, k = 0; off < plen || (!plen && !k); off += w->mss, k++) {
		size_t n = plen - off < w->mss ? plen - off : w->mss;
		bool last = off + n >= plen;
		uint32_t s = seq + (uint32_t) off;

		memcpy(fr, w->hdr, hl);
		memcpy(fr + hl, pay + off, n);
		st_be16(fr + 16, (unsigned) (hl - 14 + n));
		st_be16(fr + 18, (id + (unsigned) k) & 0xffff);
		fr[l4 + 4] = (uint8_t) (s >> 24);
		fr[l4 + 5] = (uint8_t) (s >> 16);
		fr[l4 + 6] = (uint8_t) (s >> 8);
		fr[l4 + 7] = (uint8_t) s;
		fr[l4 + 13] = (uint8_t) (flags & ~(last ? 0u : 0x09u) & ~(k ? 0x80u : 0u));
		tx_csum(fr, hl + n);
		d->st.tso_frames++;
		d->st.tx_csum++;
		wire_tx(d, fr, hl + n);
		if (!plen)
			break;
	}
	return true;
}

static unsigned qp_run(struct sv_qp *q, unsigned max)
{
	static uint8_t frame[1u << 18]; /* a TSO send's payload, or one frame */
	struct sv_dev *d = q->ctx->dev;
	unsigned done = 0;

	while (q->sq_n && done < max) {
		struct sv_swqe *w = &q->sq[q->sq_head];
		struct sv_wc wc = {.wr_id = w->wr_id, .opcode = IBV_WC_SEND, .qpn = q->qp.qp_num};
		size_t len = 0;

		q->sq_head = (q->sq_head + 1) % q->sq_cap;
		q->sq_n--;
		done++;
		if (q->qp.state == IBV_QPS_ERR) {
			wc.status = IBV_WC_WR_FLUSH_ERR;
			cq_push((struct sv_cq *) q->qp.send_cq, wc);
			continue;
		}
		for (int i = 0; i < w->nsge && !wc.status; i++) {
			const struct ibv_sge *s = &w->sge[i];

			if (!mr_find(q->ctx, q->qp.pd, s, false))
				wc.status = IBV_WC_LOC_PROT_ERR;
			else if (len + s->length >
				 (w->tso ? (d->cfg.tso < sizeof(frame) ? d->cfg.tso : sizeof(frame))
					 : SV_FRAME_MAX))
				wc.status = IBV_WC_LOC_LEN_ERR;
			else
				memcpy(frame + len, (const void *) (uintptr_t) s->addr, s->length);
			len += s->length;
		}
		if (!wc.status && failing(SV_FAIL_SEND_WQE))
			wc.status = IBV_WC_LOC_PROT_ERR;
		if (wc.status) {
			/* A failed send takes the QP to the error state, as on hardware: what
			 * is queued behind it is flushed. */
			q->qp.state = IBV_QPS_ERR;
			cq_push((struct sv_cq *) q->qp.send_cq, wc);
			rq_flush(q);
			continue;
		}
		if (w->tso) {
			if (!tso_send(d, w, frame, len)) {
				bad("IBV_WR_TSO with headers that are not Ethernet, IPv4 and TCP");
				wc.status = IBV_WC_LOC_QP_OP_ERR;
				q->qp.state = IBV_QPS_ERR;
				cq_push((struct sv_cq *) q->qp.send_cq, wc);
				rq_flush(q);
				continue;
			}
		} else if (w->flags & IBV_SEND_IP_CSUM) {
			if (d->cfg.no_csum)
				bad("IBV_SEND_IP_CSUM on a device without checksum offload");
			else
				tx_csum(frame, len), d->st.tx_csum++;
		}
		if (!w->tso)
			wire_tx(d, frame, len);
		if ((w->flags & IBV_SEND_SIGNALED) || q->sig_all)
			cq_push((struct sv_cq *) q->qp.send_cq, wc);
	}
	return done;
}

/* ---- context operations (what the inline ibv_* calls reach) ------------------------------ */

static int op_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **badwr)
{
	struct sv_qp *q = (struct sv_qp *) qp;
	struct sv_dev *d;
	int ret = 0;

	pthread_mutex_lock(&L);
	d = q->ctx->dev;
	d->st.post_send_calls++;
	if (failing(SV_FAIL_POST_SEND)) {
		*badwr = wr;
		ret = errno;
		goto out;
	}
	if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR) {
		*badwr = wr;
		ret = EINVAL;
		goto out;
	}
	for (; wr; wr = wr->next) {
		struct sv_swqe *w;

		bool tso = wr->opcode == IBV_WR_TSO;

		if ((wr->opcode != IBV_WR_SEND && !tso) || wr->num_sge < 0 ||
		    (unsigned) wr->num_sge > q->max_send_sge ||
		    (tso && (!wr->tso.hdr || !wr->tso.mss || !wr->tso.hdr_sz ||
			     wr->tso.hdr_sz > q->max_tso_header))) {
			if (tso && !q->max_tso_header)
				bad("IBV_WR_TSO on a QP made without max_tso_header");
			*badwr = wr;
			ret = EINVAL;
			goto out;
		}
		if (q->sq_n == q->sq_cap) {
			*badwr = wr;
			ret = ENOMEM;
			goto out;
		}
		w = &q->sq[(q->sq_head + q->sq_n++) % q->sq_cap];
		w->wr_id = wr->wr_id;
		w->flags = wr->send_flags;
		w->nsge = wr->num_sge;
		memcpy(w->sge, wr->sg_list, sizeof(*w->sge) * (size_t) wr->num_sge);
		w->tso = tso;
		if (tso) {
			w->hdr_sz = wr->tso.hdr_sz;
			w->mss = wr->tso.mss;
			memcpy(w->hdr, wr->tso.hdr, wr->tso.hdr_sz);
			d->st.tso_wqes++;
		}
		d->st.send_wqes++;
		d->st.signaled_wqes += !!(wr->send_flags & IBV_SEND_SIGNALED);
	}
out:
	if (!d->deferred)
		qp_run(q, ~0u);
	pthread_mutex_unlock(&L);
	return ret;
}

static int op_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **badwr)
{
	struct sv_qp *q = (struct sv_qp *) qp;
	int ret = 0;

	pthread_mutex_lock(&L);
	q->ctx->dev->st.post_recv_calls++;
	if (qp->state == IBV_QPS_RESET) {
		*badwr = wr;
		ret = EINVAL;
		goto out;
	}
	for (; wr; wr = wr->next) {
		if (wr->num_sge != 1) {
			*badwr = wr;
			ret = EINVAL;
			goto out;
		}
		if (q->rq_n == q->rq_cap) {
			*badwr = wr;
			ret = ENOMEM;
			goto out;
		}
		q->ctx->dev->st.recv_wqes++;
		if (qp->state == IBV_QPS_ERR) {
			cq_push((struct sv_cq *) qp->recv_cq,
				(struct sv_wc){.wr_id = wr->wr_id,
					       .status = IBV_WC_WR_FLUSH_ERR,
					       .opcode = IBV_WC_RECV});
			continue;
		}
		q->rq[(q->rq_head + q->rq_n++) % q->rq_cap] =
			(struct sv_rwqe){.wr_id = wr->wr_id, .sge = wr->sg_list[0]};
	}
out:
	pthread_mutex_unlock(&L);
	return ret;
}

static int op_poll_cq(struct ibv_cq *ibcq, int num, struct ibv_wc *wc)
{
	struct sv_cq *cq = (struct sv_cq *) ibcq;
	int n = 0;

	pthread_mutex_lock(&L);
	while (n < num && cq->n) {
		const struct sv_wc *w = &cq->ring[cq->head];

		wc[n] = (struct ibv_wc){
			.wr_id = w->wr_id,
			.status = (enum ibv_wc_status) w->status,
			.opcode = (enum ibv_wc_opcode) w->opcode,
			.byte_len = w->len,
			.qp_num = w->qpn,
			.wc_flags = w->wc_flags,
		};
		cq->head = (cq->head + 1) % cq->cap;
		cq->n--;
		n++;
	}
	pthread_mutex_unlock(&L);
	return n;
}

static int op_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	pthread_mutex_lock(&L);
	((struct sv_cq *) ibcq)->armed = true;
	pthread_mutex_unlock(&L);
	return 0;
}

/* Extended CQ: L is held from start_poll to end_poll, as a locking provider would. */
static struct sv_wc *cur(struct ibv_cq_ex *x)
{
	struct sv_cq *cq = (struct sv_cq *) x;

	return &cq->ring[cq->head];
}

static void load(struct ibv_cq_ex *x)
{
	x->wr_id = cur(x)->wr_id;
	x->status = (enum ibv_wc_status) cur(x)->status;
}

static int cx_start(struct ibv_cq_ex *x, struct ibv_poll_cq_attr *attr)
{
	struct sv_cq *cq = (struct sv_cq *) x;

	pthread_mutex_lock(&L);
	if (cq->polling)
		bad("ibv_start_poll twice without ibv_end_poll");
	if (!cq->n) {
		pthread_mutex_unlock(&L);
		return ENOENT;
	}
	cq->polling = true;
	load(x);
	return 0;
}

static void consume(struct sv_cq *cq)
{
	cq->head = (cq->head + 1) % cq->cap;
	cq->n--;
}

static int cx_next(struct ibv_cq_ex *x)
{
	struct sv_cq *cq = (struct sv_cq *) x;

	consume(cq);
	if (!cq->n) {
		cq->polling = false; /* nothing current any more: end_poll only unlocks */
		return ENOENT;
	}
	load(x);
	return 0;
}

static void cx_end(struct ibv_cq_ex *x)
{
	struct sv_cq *cq = (struct sv_cq *) x;

	if (cq->polling)
		consume(cq);
	cq->polling = false;
	pthread_mutex_unlock(&L);
}

static uint32_t cx_byte_len(struct ibv_cq_ex *x)
{
	if (!(((struct sv_cq *) x)->wc_flags & IBV_WC_EX_WITH_BYTE_LEN))
		bad("byte_len read from a CQ created without IBV_WC_EX_WITH_BYTE_LEN");
	return cur(x)->len;
}

static unsigned cx_wc_flags(struct ibv_cq_ex *x)
{
	return cur(x)->wc_flags;
}

static uint32_t cx_flow_tag(struct ibv_cq_ex *x)
{
	if (!(((struct sv_cq *) x)->wc_flags & IBV_WC_EX_WITH_FLOW_TAG))
		bad("flow tag read from a CQ created without IBV_WC_EX_WITH_FLOW_TAG");
	return cur(x)->tag;
}

static enum ibv_wc_opcode cx_opcode(struct ibv_cq_ex *x)
{
	return (enum ibv_wc_opcode) cur(x)->opcode;
}

static uint32_t cx_qp_num(struct ibv_cq_ex *x)
{
	return cur(x)->qpn;
}

static struct sv_cq *cq_new(struct ibv_context *ibctx, int cqe, void *cq_ctx,
			    struct ibv_comp_channel *ch, uint64_t wc_flags, bool ex)
{
	struct sv_ctx *c = ctx_of(ibctx);
	struct sv_cq *cq;

	if (failing(SV_FAIL_CREATE_CQ))
		return NULL;
	if (cqe <= 0 || cqe > 4194304) {
		errno = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq || !(cq->ring = calloc((size_t) cqe, sizeof(*cq->ring)))) {
		free(cq);
		errno = ENOMEM;
		return NULL;
	}
	cq->ctx = c;
	cq->ex = ex;
	cq->cap = (unsigned) cqe;
	cq->wc_flags = wc_flags;
	cq->cx.context = ibctx;
	cq->cx.channel = ch;
	cq->cx.cq_context = cq_ctx;
	cq->cx.cqe = cqe;
	if (ex) {
		cq->cx.start_poll = cx_start;
		cq->cx.next_poll = cx_next;
		cq->cx.end_poll = cx_end;
		cq->cx.read_byte_len = cx_byte_len;
		cq->cx.read_wc_flags = cx_wc_flags;
		cq->cx.read_flow_tag = cx_flow_tag;
		cq->cx.read_opcode = cx_opcode;
		cq->cx.read_qp_num = cx_qp_num;
	}
	if (ch)
		((struct sv_chan *) ch)->cqs++;
	obj_new(c);
	return cq;
}

static struct ibv_cq_ex *op_create_cq_ex(struct ibv_context *ibctx, struct ibv_cq_init_attr_ex *a)
{
	struct sv_cq *cq = NULL;
	const uint64_t known =
		IBV_WC_EX_WITH_BYTE_LEN | IBV_WC_EX_WITH_QP_NUM | IBV_WC_EX_WITH_FLOW_TAG;

	pthread_mutex_lock(&L);
	if ((a->wc_flags & ~known) || (a->comp_mask & ~(uint32_t) IBV_CQ_INIT_ATTR_MASK_FLAGS) ||
	    ((a->wc_flags & IBV_WC_EX_WITH_FLOW_TAG) && dev_of(ibctx)->cfg.no_flow_tag) ||
	    (a->flags & ~(uint32_t) IBV_CREATE_CQ_ATTR_SINGLE_THREADED)) {
		errno = EOPNOTSUPP;
		goto out;
	}
	cq = cq_new(ibctx, (int) a->cqe, a->cq_context, a->channel, a->wc_flags, true);
out:
	pthread_mutex_unlock(&L);
	return cq ? &cq->cx : NULL;
}

/* ---- flows ------------------------------------------------------------------------------- */

static struct ibv_flow *op_create_flow(struct ibv_qp *qp, struct ibv_flow_attr *a)
{
	struct sv_qp *q = (struct sv_qp *) qp;
	struct sv_dev *d;
	struct sv_flow *fl = NULL;
	const uint8_t *p = (const uint8_t *) (a + 1);
	size_t off = sizeof(*a);

	pthread_mutex_lock(&L);
	d = q->ctx->dev;
	if (failing(SV_FAIL_CREATE_FLOW))
		goto out;
	errno = EINVAL;
	if (qp->qp_type != IBV_QPT_RAW_PACKET || a->port != 1 || a->comp_mask)
		goto out;
	if (a->type != IBV_FLOW_ATTR_NORMAL) {
		errno = EOPNOTSUPP;
		goto out;
	}
	if ((a->flags & ~(uint32_t) IBV_FLOW_ATTR_FLAGS_DONT_TRAP) ||
	    ((a->flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) && d->cfg.no_dont_trap))
		goto out;
	fl = calloc(1, sizeof(*fl));
	if (!fl) {
		errno = ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < a->num_of_specs; i++) {
		struct ibv_flow_spec sp;

		if (off + 8 > a->size)
			goto bad_spec;
		memcpy(&sp.hdr, p, sizeof(sp.hdr));
		if (off + sp.hdr.size > a->size || sp.hdr.size > sizeof(sp))
			goto bad_spec;
		memcpy(&sp, p, sp.hdr.size);
		switch (sp.hdr.type) {
		case IBV_FLOW_SPEC_ETH:
			if (sp.hdr.size != sizeof(sp.eth) || fl->has_eth)
				goto bad_spec;
			fl->has_eth = true;
			fl->eth = sp.eth;
			break;
		case IBV_FLOW_SPEC_IPV4_EXT:
			if (sp.hdr.size != sizeof(sp.ipv4_ext) || fl->has_ip)
				goto bad_spec;
			fl->has_ip = true;
			fl->ip = sp.ipv4_ext;
			break;
		case IBV_FLOW_SPEC_IPV4:
			if (sp.hdr.size != sizeof(sp.ipv4) || fl->has_ip)
				goto bad_spec;
			fl->has_ip = true;
			fl->ip.val.src_ip = sp.ipv4.val.src_ip;
			fl->ip.val.dst_ip = sp.ipv4.val.dst_ip;
			fl->ip.mask.src_ip = sp.ipv4.mask.src_ip;
			fl->ip.mask.dst_ip = sp.ipv4.mask.dst_ip;
			break;
		case IBV_FLOW_SPEC_TCP:
		case IBV_FLOW_SPEC_UDP:
			if (sp.hdr.size != sizeof(sp.tcp_udp) || fl->has_l4)
				goto bad_spec;
			fl->has_l4 = true;
			fl->l4 = sp.tcp_udp;
			break;
		case IBV_FLOW_SPEC_ACTION_TAG:
			if (d->cfg.no_flow_tag) {
				errno = EOPNOTSUPP;
				free(fl);
				fl = NULL;
				goto out;
			}
			if (sp.hdr.size != sizeof(sp.flow_tag) || fl->has_tag)
				goto bad_spec;
			fl->has_tag = true;
			fl->tag = sp.flow_tag.tag_id;
			break;
		default:
			errno = EOPNOTSUPP;
			free(fl);
			fl = NULL;
			goto out;
		}
		p += sp.hdr.size;
		off += sp.hdr.size;
	}
	if (off != a->size)
		goto bad_spec;
	fl->fl.context = qp->context;
	fl->qp = q;
	fl->priority = a->priority;
	fl->flags = a->flags;
	fl->seq = next_seq++;
	{
		struct sv_flow **pp = &d->flows;

		while (*pp && (*pp)->priority <= fl->priority)
			pp = &(*pp)->next;
		fl->next = *pp;
		*pp = fl;
	}
	q->flows++;
	obj_new(q->ctx);
	goto out;
bad_spec:
	errno = EINVAL;
	free(fl);
	fl = NULL;
out:
	pthread_mutex_unlock(&L);
	return fl ? &fl->fl : NULL;
}

static int op_destroy_flow(struct ibv_flow *f)
{
	struct sv_flow *fl = (struct sv_flow *) f;
	struct sv_dev *d;

	pthread_mutex_lock(&L);
	d = fl->qp->ctx->dev;
	for (struct sv_flow **pp = &d->flows; *pp; pp = &(*pp)->next) {
		if (*pp == fl) {
			*pp = fl->next;
			break;
		}
	}
	fl->qp->flows--;
	obj_gone(fl->qp->ctx);
	free(fl);
	pthread_mutex_unlock(&L);
	return 0;
}

/* ---- device queries ---------------------------------------------------------------------- */

static void fill_attr(struct sv_dev *d, struct ibv_device_attr *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->fw_ver, sizeof(a->fw_ver), "softverbs");
	a->max_qp = 1024;
	a->max_qp_wr = d->cfg.max_qp_wr ? d->cfg.max_qp_wr : 32768;
	a->max_sge = d->cfg.max_sge ? d->cfg.max_sge : 16;
	a->max_cq = 4096;
	a->max_cqe = 4194304;
	a->max_mr = 1 << 20;
	a->max_pd = 1024;
	a->phys_port_cnt = 1;
	if (!d->cfg.no_csum)
		a->device_cap_flags |= IBV_DEVICE_RAW_IP_CSUM;
}

static int op_query_device_ex(struct ibv_context *c, const struct ibv_query_device_ex_input *in,
			      struct ibv_device_attr_ex *a, size_t size)
{
	struct ibv_device_attr_ex x = {0};

	pthread_mutex_lock(&L);
	fill_attr(dev_of(c), &x.orig_attr);
	if (!dev_of(c)->cfg.no_csum)
		x.raw_packet_caps = IBV_RAW_PACKET_CAP_IP_CSUM;
	x.phys_port_cnt_ex = 1;
	if (dev_of(c)->cfg.tso) {
		x.tso_caps.max_tso = dev_of(c)->cfg.tso;
		x.tso_caps.supported_qpts = 1u << IBV_QPT_RAW_PACKET;
	}
	pthread_mutex_unlock(&L);
	memcpy(a, &x, size < sizeof(x) ? size : sizeof(x));
	return 0;
}

static void fill_port(struct sv_dev *d, struct ibv_port_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->state = d->state;
	a->max_mtu = IBV_MTU_4096;
	a->active_mtu = IBV_MTU_1024;
	a->gid_tbl_len = 1;
	a->link_layer = d->cfg.infiniband ? IBV_LINK_LAYER_INFINIBAND : IBV_LINK_LAYER_ETHERNET;
}

static int op_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *a, size_t size)
{
	struct ibv_port_attr x;

	if (port != 1)
		return EINVAL;
	pthread_mutex_lock(&L);
	fill_port(dev_of(c), &x);
	pthread_mutex_unlock(&L);
	memcpy(a, &x, size < sizeof(x) ? size : sizeof(x));
	return 0;
}

static void gid_of(const struct sv_dev *d, union ibv_gid *g)
{
	const uint8_t *m = d->cfg.mac;

	memset(g, 0, sizeof(*g));
	g->raw[0] = 0xfe;
	g->raw[1] = 0x80;
	g->raw[8] = m[0] ^ 2;
	g->raw[9] = m[1];
	g->raw[10] = m[2];
	g->raw[11] = 0xff;
	g->raw[12] = 0xfe;
	g->raw[13] = m[3];
	g->raw[14] = m[4];
	g->raw[15] = m[5];
}

/* ---- exported entry points --------------------------------------------------------------- */

#define EXPORT SV_EXPORT

EXPORT struct ibv_device **ibv_get_device_list(int *num)
{
	struct ibv_device **l = calloc(SV_MAX_DEVS + 1, sizeof(*l));
	int n = 0;

	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&L);
	for (int i = 0; i < SV_MAX_DEVS; i++)
		if (devs[i].used)
			l[n++] = &devs[i].ibdev;
	pthread_mutex_unlock(&L);
	if (num)
		*num = n;
	return l;
}

EXPORT void ibv_free_device_list(struct ibv_device **list)
{
	free(list);
}

EXPORT const char *ibv_get_device_name(struct ibv_device *device)
{
	return device->name;
}

/* ibv_create_qp_ex: what ibv_create_qp does, plus max_tso_header where the device has TSO. */
static struct ibv_qp *op_create_qp_ex(struct ibv_context *ic, struct ibv_qp_init_attr_ex *x)
{
	struct ibv_qp_init_attr a = {
		.qp_context = x->qp_context,
		.send_cq = x->send_cq,
		.recv_cq = x->recv_cq,
		.srq = x->srq,
		.cap = x->cap,
		.qp_type = x->qp_type,
		.sq_sig_all = x->sq_sig_all,
	};
	const uint32_t known = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
	bool tso = x->comp_mask & IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
	struct ibv_qp *qp;

	if (!(x->comp_mask & IBV_QP_INIT_ATTR_PD) || (x->comp_mask & ~known) ||
	    x->pd->context != ic) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	pthread_mutex_lock(&L);
	if (tso && (!ctx_of(ic)->dev->cfg.tso || x->max_tso_header > 256)) {
		pthread_mutex_unlock(&L);
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_unlock(&L);
	qp = ibv_create_qp(x->pd, &a);
	if (qp && tso) {
		pthread_mutex_lock(&L);
		((struct sv_qp *) qp)->max_tso_header = x->max_tso_header;
		pthread_mutex_unlock(&L);
	}
	if (qp)
		x->cap = a.cap;
	return qp;
}

static struct sv_dev *dev_from_ib(struct ibv_device *ib)
{
	for (int i = 0; i < SV_MAX_DEVS; i++)
		if (&devs[i].ibdev == ib)
			return &devs[i];
	return NULL;
}

EXPORT struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	struct sv_dev *d;
	struct sv_ctx *c = NULL;
	struct ibv_context *ic;

	pthread_mutex_lock(&L);
	d = dev_from_ib(device);
	if (!d || !d->used) {
		errno = ENODEV;
		goto out;
	}
	if (failing(SV_FAIL_OPEN))
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		errno = ENOMEM;
		goto out;
	}
	ic = &c->vctx.context;
	c->dev = d;
	c->vctx.sz = sizeof(c->vctx);
	ic->abi_compat = __VERBS_ABI_IS_EXTENDED;
	ic->device = device;
	ic->cmd_fd = -1;
	ic->num_comp_vectors = 1;
	ic->async_fd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	if (ic->async_fd < 0) {
		free(c);
		c = NULL;
		goto out;
	}
	ic->ops.post_send = op_post_send;
	ic->ops.post_recv = op_post_recv;
	ic->ops.poll_cq = op_poll_cq;
	ic->ops.req_notify_cq = op_req_notify_cq;
	c->vctx.query_port = op_query_port;
	c->vctx.query_device_ex = op_query_device_ex;
	if (!d->cfg.no_cq_ex)
		c->vctx.create_cq_ex = op_create_cq_ex;
	c->vctx.ibv_create_flow = op_create_flow;
	c->vctx.create_qp_ex = op_create_qp_ex;
	c->vctx.ibv_destroy_flow = op_destroy_flow;
	pthread_mutex_init(&ic->mutex, NULL);
	c->next = d->ctxs;
	d->ctxs = c;
	live++;
out:
	pthread_mutex_unlock(&L);
	return c ? &c->vctx.context : NULL;
}

EXPORT int ibv_close_device(struct ibv_context *ic)
{
	struct sv_ctx *c = ctx_of(ic);

	pthread_mutex_lock(&L);
	if (c->objects)
		bad("ibv_close_device with %u objects still open", c->objects);
	for (struct sv_ctx **pp = &c->dev->ctxs; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	close(ic->async_fd);
	live--;
	pthread_mutex_unlock(&L);
	free(c);
	return 0;
}

EXPORT int ibv_query_device(struct ibv_context *c, struct ibv_device_attr *a)
{
	pthread_mutex_lock(&L);
	fill_attr(dev_of(c), a);
	pthread_mutex_unlock(&L);
	return 0;
}

EXPORT int(ibv_query_port)(struct ibv_context *c, uint8_t port, struct _compat_ibv_port_attr *a)
{
	return op_query_port(c, port, (struct ibv_port_attr *) a, sizeof(struct ibv_port_attr));
}

EXPORT int ibv_query_gid(struct ibv_context *c, uint8_t port, int index, union ibv_gid *gid)
{
	if (port != 1 || index != 0)
		return -1;
	pthread_mutex_lock(&L);
	gid_of(dev_of(c), gid);
	pthread_mutex_unlock(&L);
	return 0;
}

EXPORT int _ibv_query_gid_ex(struct ibv_context *c, uint32_t port, uint32_t index,
			     struct ibv_gid_entry *e, uint32_t flags, size_t size)
{
	struct ibv_gid_entry x = {
		.gid_index = index, .port_num = port, .gid_type = IBV_GID_TYPE_ROCE_V2};

	if (port != 1 || index != 0 || flags)
		return EINVAL;
	pthread_mutex_lock(&L);
	gid_of(dev_of(c), &x.gid);
	x.ndev_ifindex = dev_of(c)->cfg.ndev_ifindex;
	pthread_mutex_unlock(&L);
	memcpy(e, &x, size < sizeof(x) ? size : sizeof(x));
	return 0;
}

EXPORT struct ibv_pd *ibv_alloc_pd(struct ibv_context *ic)
{
	struct sv_pd *pd = NULL;

	pthread_mutex_lock(&L);
	if (failing(SV_FAIL_ALLOC_PD))
		goto out;
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		goto out;
	}
	pd->pd.context = ic;
	obj_new(ctx_of(ic));
out:
	pthread_mutex_unlock(&L);
	return pd ? &pd->pd : NULL;
}

EXPORT int ibv_dealloc_pd(struct ibv_pd *ibpd)
{
	struct sv_pd *pd = (struct sv_pd *) ibpd;

	pthread_mutex_lock(&L);
	if (pd->refs) {
		bad("ibv_dealloc_pd with %u MRs or QPs on it", pd->refs);
		pthread_mutex_unlock(&L);
		return EBUSY;
	}
	obj_gone(ctx_of(ibpd->context));
	pthread_mutex_unlock(&L);
	free(pd);
	return 0;
}

EXPORT struct ibv_mr *(ibv_reg_mr) (struct ibv_pd *ibpd, void *addr, size_t len, int access)
{
	struct sv_ctx *c = ctx_of(ibpd->context);
	struct sv_mr *m = NULL;

	pthread_mutex_lock(&L);
	if (failing(SV_FAIL_REG_MR))
		goto out;
	if (!addr || !len) {
		errno = EINVAL;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		errno = ENOMEM;
		goto out;
	}
	m->mr.context = ibpd->context;
	m->mr.pd = ibpd;
	m->mr.addr = addr;
	m->mr.length = len;
	m->mr.lkey = m->mr.rkey = next_key++;
	m->access = access;
	m->next = c->mrs;
	c->mrs = m;
	((struct sv_pd *) ibpd)->refs++;
	obj_new(c);
out:
	pthread_mutex_unlock(&L);
	return m ? &m->mr : NULL;
}

EXPORT struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t len, uint64_t iova,
				       unsigned int access)
{
	if (iova != (uintptr_t) addr) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return (ibv_reg_mr) (pd, addr, len, (int) access);
}

EXPORT int ibv_dereg_mr(struct ibv_mr *mr)
{
	struct sv_ctx *c = ctx_of(mr->context);

	pthread_mutex_lock(&L);
	for (struct sv_mr **pp = &c->mrs; *pp; pp = &(*pp)->next) {
		if (&(*pp)->mr == mr) {
			*pp = (*pp)->next;
			break;
		}
	}
	((struct sv_pd *) mr->pd)->refs--;
	obj_gone(c);
	pthread_mutex_unlock(&L);
	free(mr);
	return 0;
}

EXPORT struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ic)
{
	struct sv_chan *ch = NULL;

	pthread_mutex_lock(&L);
	if (failing(SV_FAIL_CREATE_CHANNEL))
		goto out;
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		errno = ENOMEM;
		goto out;
	}
	ch->ch.context = ic;
	ch->ctx = ctx_of(ic);
	ch->ch.fd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	if (ch->ch.fd < 0) {
		free(ch);
		ch = NULL;
		goto out;
	}
	obj_new(ch->ctx);
out:
	pthread_mutex_unlock(&L);
	return ch ? &ch->ch : NULL;
}

EXPORT int ibv_destroy_comp_channel(struct ibv_comp_channel *ibch)
{
	struct sv_chan *ch = (struct sv_chan *) ibch;

	pthread_mutex_lock(&L);
	if (ch->cqs) {
		bad("ibv_destroy_comp_channel with %u CQs on it", ch->cqs);
		pthread_mutex_unlock(&L);
		return EBUSY;
	}
	close(ibch->fd);
	obj_gone(ch->ctx);
	pthread_mutex_unlock(&L);
	free(ch);
	return 0;
}

EXPORT int ibv_get_cq_event(struct ibv_comp_channel *ibch, struct ibv_cq **cq, void **cq_ctx)
{
	struct sv_chan *ch = (struct sv_chan *) ibch;
	uint64_t v;
	struct sv_cq *c;

	/* Blocks (or fails with EAGAIN) as the real one does: the fd's flags decide. */
	if (read(ibch->fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	pthread_mutex_lock(&L);
	if (!ch->n) {
		pthread_mutex_unlock(&L);
		errno = EAGAIN;
		return -1;
	}
	c = ch->pending[ch->head];
	ch->head = (ch->head + 1) % (sizeof(ch->pending) / sizeof(ch->pending[0]));
	ch->n--;
	c->events++;
	*cq = (struct ibv_cq *) &c->cx;
	*cq_ctx = c->cx.cq_context;
	pthread_mutex_unlock(&L);
	return 0;
}

EXPORT void ibv_ack_cq_events(struct ibv_cq *ibcq, unsigned int n)
{
	pthread_mutex_lock(&L);
	((struct sv_cq *) ibcq)->acked += n;
	pthread_mutex_unlock(&L);
}

EXPORT struct ibv_cq *ibv_create_cq(struct ibv_context *ic, int cqe, void *cq_ctx,
				    struct ibv_comp_channel *ch, int vector)
{
	struct sv_cq *cq;

	pthread_mutex_lock(&L);
	cq = cq_new(ic, cqe, cq_ctx, ch, 0, false);
	pthread_mutex_unlock(&L);
	return cq ? (struct ibv_cq *) &cq->cx : NULL;
}

EXPORT int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	struct sv_cq *cq = (struct sv_cq *) ibcq;

	pthread_mutex_lock(&L);
	if (cq->qps || cq->events != cq->acked) {
		/* The real call would wait forever for the missing acks. */
		bad("ibv_destroy_cq with %u QPs on it, %u events not acknowledged", cq->qps,
		    cq->events - cq->acked);
		pthread_mutex_unlock(&L);
		return EBUSY;
	}
	if (cq->cx.channel) {
		struct sv_chan *ch = (struct sv_chan *) cq->cx.channel;
		unsigned cap = sizeof(ch->pending) / sizeof(ch->pending[0]), keep = 0;

		/* Drop events of this CQ nobody read: they would point to freed memory. */
		for (unsigned i = 0; i < ch->n; i++) {
			struct sv_cq *e = ch->pending[(ch->head + i) % cap];

			if (e != cq)
				ch->pending[(ch->head + keep++) % cap] = e;
		}
		ch->n = keep;
		ch->cqs--;
	}
	obj_gone(cq->ctx);
	pthread_mutex_unlock(&L);
	free(cq->ring);
	free(cq);
	return 0;
}

EXPORT struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
	struct sv_ctx *c = ctx_of(pd->context);
	struct ibv_device_attr da;
	struct sv_qp *q = NULL;

	pthread_mutex_lock(&L);
	fill_attr(c->dev, &da);
	if (failing(SV_FAIL_CREATE_QP))
		goto out;
	if (a->qp_type != IBV_QPT_RAW_PACKET) {
		errno = EOPNOTSUPP;
		goto out;
	}
	if (!a->send_cq || !a->recv_cq || a->srq || !a->cap.max_send_wr || !a->cap.max_recv_wr ||
	    a->cap.max_send_wr > (uint32_t) da.max_qp_wr ||
	    a->cap.max_recv_wr > (uint32_t) da.max_qp_wr ||
	    a->cap.max_send_sge > (uint32_t) da.max_sge || a->cap.max_send_sge > 16 ||
	    a->cap.max_recv_sge != 1) {
		errno = EINVAL;
		goto out;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !(q->sq = calloc(a->cap.max_send_wr, sizeof(*q->sq))) ||
	    !(q->rq = calloc(a->cap.max_recv_wr, sizeof(*q->rq)))) {
		if (q)
			free(q->sq);
		free(q);
		q = NULL;
		errno = ENOMEM;
		goto out;
	}
	q->ctx = c;
	q->qp.context = pd->context;
	q->qp.qp_context = a->qp_context;
	q->qp.pd = pd;
	q->qp.send_cq = a->send_cq;
	q->qp.recv_cq = a->recv_cq;
	q->qp.qp_num = next_qpn++;
	q->qp.state = IBV_QPS_RESET;
	q->qp.qp_type = a->qp_type;
	q->sq_cap = a->cap.max_send_wr;
	q->rq_cap = a->cap.max_recv_wr;
	q->max_send_sge = a->cap.max_send_sge ? a->cap.max_send_sge : 1;
	q->sig_all = a->sq_sig_all;
	((struct sv_cq *) a->send_cq)->qps++;
	((struct sv_cq *) a->recv_cq)->qps++;
	((struct sv_pd *) pd)->refs++;
	q->next = c->qps;
	c->qps = q;
	obj_new(c);
out:
	pthread_mutex_unlock(&L);
	return q ? &q->qp : NULL;
}

/* Everything queued completes with a flush error, as when a QP enters the error state. */
static void qp_flush(struct sv_qp *q)
{
	rq_flush(q);
	qp_run(q, ~0u);
}

EXPORT int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask)
{
	struct sv_qp *q = (struct sv_qp *) qp;
	enum ibv_qp_state from = qp->state, to;
	int ret = 0;

	pthread_mutex_lock(&L);
	if (failing(SV_FAIL_MODIFY_QP)) {
		ret = errno;
		goto out;
	}
	if (!(mask & IBV_QP_STATE)) {
		ret = EINVAL;
		goto out;
	}
	to = a->qp_state;
	if (!((from == IBV_QPS_RESET && to == IBV_QPS_INIT && (mask & IBV_QP_PORT) &&
	       a->port_num == 1) ||
	      (from == IBV_QPS_INIT && to == IBV_QPS_RTR) ||
	      (from == IBV_QPS_RTR && to == IBV_QPS_RTS) || to == IBV_QPS_ERR ||
	      to == IBV_QPS_RESET)) {
		ret = EINVAL;
		goto out;
	}
	qp->state = to;
	if (to == IBV_QPS_ERR)
		qp_flush(q);
	if (to == IBV_QPS_RESET)
		q->rq_n = q->sq_n = 0;
out:
	pthread_mutex_unlock(&L);
	return ret;
}

EXPORT int ibv_destroy_qp(struct ibv_qp *qp)
{
	struct sv_qp *q = (struct sv_qp *) qp;
	struct sv_ctx *c = q->ctx;

	pthread_mutex_lock(&L);
	if (q->flows) {
		bad("ibv_destroy_qp with %u flows on it", q->flows);
		pthread_mutex_unlock(&L);
		return EBUSY;
	}
	for (struct sv_qp **pp = &c->qps; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	((struct sv_cq *) qp->send_cq)->qps--;
	((struct sv_cq *) qp->recv_cq)->qps--;
	((struct sv_pd *) qp->pd)->refs--;
	obj_gone(c);
	pthread_mutex_unlock(&L);
	free(q->sq);
	free(q->rq);
	free(q);
	return 0;
}

EXPORT int ibv_get_async_event(struct ibv_context *ic, struct ibv_async_event *ev)
{
	struct sv_ctx *c = ctx_of(ic);
	uint64_t v;

	if (read(ic->async_fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	pthread_mutex_lock(&L);
	if (!c->ev_n) {
		pthread_mutex_unlock(&L);
		errno = EAGAIN;
		return -1;
	}
	*ev = c->evq[c->ev_head];
	c->ev_head = (c->ev_head + 1) % (sizeof(c->evq) / sizeof(c->evq[0]));
	c->ev_n--;
	pthread_mutex_unlock(&L);
	return 0;
}

EXPORT void ibv_ack_async_event(struct ibv_async_event *ev)
{
}

EXPORT const char *ibv_event_type_str(enum ibv_event_type e)
{
	switch (e) {
	case IBV_EVENT_PORT_ACTIVE:
		return "port active";
	case IBV_EVENT_PORT_ERR:
		return "port error";
	case IBV_EVENT_DEVICE_FATAL:
		return "local catastrophic error";
	case IBV_EVENT_QP_FATAL:
		return "local work queue catastrophic error";
	case IBV_EVENT_CQ_ERR:
		return "CQ error";
	default:
		return "unknown";
	}
}

EXPORT const char *ibv_wc_status_str(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS:
		return "success";
	case IBV_WC_LOC_LEN_ERR:
		return "local length error";
	case IBV_WC_LOC_PROT_ERR:
		return "local protection error";
	case IBV_WC_WR_FLUSH_ERR:
		return "Work Request Flushed Error";
	default:
		return "unknown";
	}
}

/* ---- test control ------------------------------------------------------------------------ */

int sv_add(const struct sv_dev_config *cfg)
{
	int id = -ENOSPC;

	pthread_mutex_lock(&L);
	for (int i = 0; i < SV_MAX_DEVS; i++) {
		struct sv_dev *d = &devs[i];

		if (d->used)
			continue;
		memset(d, 0, sizeof(*d));
		d->cap = calloc(SV_CAPTURE, sizeof(*d->cap));
		if (!d->cap) {
			id = -ENOMEM;
			break;
		}
		d->used = true;
		d->id = i;
		d->peer = -1;
		d->cfg = *cfg;
		d->state = cfg->port_down ? IBV_PORT_DOWN : IBV_PORT_ACTIVE;
		snprintf(d->ibdev.name, sizeof(d->ibdev.name), "%s", cfg->name ? cfg->name : "sv");
		d->cfg.name = d->ibdev.name;
		snprintf(d->ibdev.dev_name, sizeof(d->ibdev.dev_name), "uverbs%d", i);
		d->ibdev.node_type = IBV_NODE_CA;
		d->ibdev.transport_type = IBV_TRANSPORT_IB;
		id = i;
		break;
	}
	pthread_mutex_unlock(&L);
	return id;
}

void sv_reset(void)
{
	pthread_mutex_lock(&L);
	for (int i = 0; i < SV_MAX_DEVS; i++) {
		if (devs[i].used && devs[i].ctxs)
			bad("sv_reset with contexts of %s open", devs[i].ibdev.name);
		free(devs[i].cap);
		memset(&devs[i], 0, sizeof(devs[i]));
	}
	memset(fails, 0, sizeof(fails));
	misuse = 0;
	last_misuse[0] = 0;
	pthread_mutex_unlock(&L);
}

static struct sv_dev *dev_id(int id)
{
	return id >= 0 && id < SV_MAX_DEVS && devs[id].used ? &devs[id] : NULL;
}

int sv_connect(int a, int b)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&L);
	if (dev_id(a) && dev_id(b) && a != b) {
		devs[a].peer = b;
		devs[b].peer = a;
		ret = 0;
	}
	pthread_mutex_unlock(&L);
	return ret;
}

void sv_set_deferred(int id, bool on)
{
	pthread_mutex_lock(&L);
	if (dev_id(id))
		devs[id].deferred = on;
	pthread_mutex_unlock(&L);
}

unsigned sv_run(int id, unsigned max)
{
	unsigned done = 0;

	pthread_mutex_lock(&L);
	if (dev_id(id))
		for (struct sv_ctx *c = devs[id].ctxs; c; c = c->next)
			for (struct sv_qp *q = c->qps; q && done < max; q = q->next)
				done += qp_run(q, max - done);
	pthread_mutex_unlock(&L);
	return done;
}

int sv_inject(int id, const void *frame, size_t len)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&L);
	if (dev_id(id) && len <= SV_FRAME_MAX) {
		wire_rx(&devs[id], frame, len);
		ret = 0;
	}
	pthread_mutex_unlock(&L);
	return ret;
}

int sv_capture(int id, void *buf, size_t cap)
{
	struct sv_dev *d;
	int len = 0;

	pthread_mutex_lock(&L);
	d = dev_id(id);
	if (d && d->cap_n) {
		struct sv_frame *f = &d->cap[d->cap_head];

		len = f->len <= cap ? f->len : -EMSGSIZE;
		if (len > 0)
			memcpy(buf, f->data, f->len);
		d->cap_head = (d->cap_head + 1) % SV_CAPTURE;
		d->cap_n--;
	}
	pthread_mutex_unlock(&L);
	return len;
}

int sv_port_event(int id, enum ibv_event_type type)
{
	struct sv_dev *d;

	pthread_mutex_lock(&L);
	d = dev_id(id);
	if (!d) {
		pthread_mutex_unlock(&L);
		return -EINVAL;
	}
	if (type == IBV_EVENT_PORT_ERR)
		d->state = IBV_PORT_DOWN;
	else if (type == IBV_EVENT_PORT_ACTIVE)
		d->state = IBV_PORT_ACTIVE;
	for (struct sv_ctx *c = d->ctxs; c; c = c->next)
		async_push(c, (struct ibv_async_event){.element.port_num = 1, .event_type = type});
	pthread_mutex_unlock(&L);
	return 0;
}

void sv_fail_after(enum sv_fail what, unsigned ok_calls, int err)
{
	pthread_mutex_lock(&L);
	fails[what].armed = true;
	fails[what].ok = ok_calls;
	fails[what].err = err;
	pthread_mutex_unlock(&L);
}

struct sv_stats sv_stats(int id)
{
	struct sv_stats s = {0};

	pthread_mutex_lock(&L);
	if (dev_id(id))
		s = devs[id].st;
	pthread_mutex_unlock(&L);
	return s;
}

unsigned sv_live_objects(void)
{
	unsigned n;

	pthread_mutex_lock(&L);
	n = live;
	pthread_mutex_unlock(&L);
	return n;
}

unsigned sv_misuse(void)
{
	return __atomic_load_n(&misuse, __ATOMIC_RELAXED);
}

const char *sv_last_misuse(void)
{
	return last_misuse;
}

/* ---- the mlx5 direct-verbs queries ------------------------------------------------------- */

EXPORT bool mlx5dv_is_supported(struct ibv_device *device)
{
	bool yes;

	pthread_mutex_lock(&L);
	yes = dev_from_ib(device) && dev_from_ib(device)->cfg.mlx5;
	pthread_mutex_unlock(&L);
	return yes;
}

EXPORT int mlx5dv_query_device(struct ibv_context *ic, struct mlx5dv_context *a)
{
	const uint64_t known = MLX5DV_CONTEXT_MASK_CQE_COMPRESION | MLX5DV_CONTEXT_MASK_STRIDING_RQ;
	bool yes;

	pthread_mutex_lock(&L);
	yes = ctx_of(ic)->dev->cfg.mlx5;
	pthread_mutex_unlock(&L);
	if (!yes)
		return EOPNOTSUPP;
	a->version = 1;
	a->flags = MLX5DV_CONTEXT_FLAGS_CQE_V1 | MLX5DV_CONTEXT_FLAGS_MPW_ALLOWED |
		   MLX5DV_CONTEXT_FLAGS_ENHANCED_MPW;
	if (a->comp_mask & MLX5DV_CONTEXT_MASK_CQE_COMPRESION)
		a->cqe_comp_caps = (struct mlx5dv_cqe_comp_caps){
			.max_num = 64,
			.supported_format =
				MLX5DV_CQE_RES_FORMAT_HASH | MLX5DV_CQE_RES_FORMAT_CSUM};
	if (a->comp_mask & MLX5DV_CONTEXT_MASK_STRIDING_RQ)
		a->striding_rq_caps = (struct mlx5dv_striding_rq_caps){
			.min_single_stride_log_num_of_bytes = 6,
			.max_single_stride_log_num_of_bytes = 13,
			.min_single_wqe_log_num_of_strides = 3,
			.max_single_wqe_log_num_of_strides = 16,
			.supported_qpts = 1u << IBV_QPT_RAW_PACKET};
	a->comp_mask &= known;
	return 0;
}
