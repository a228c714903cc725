/* TCB pool and lookup, ISNs and ephemeral ports, and the socket-level API. */
#include "stack/tcp/tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stack/wire/bytes.h"

#define DEF(field, value)                                                                          \
	do {                                                                                       \
		if (!c->field)                                                                     \
			c->field = (value);                                                        \
	} while (0)

/* ---- SipHash-2-4, the keyed hash behind ISNs (RFC 6528 3) and ports (RFC 6056 3.3.3) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL(v[2], 32);
}

/* Hash of two 64-bit words under the 128-bit key. */
static uint64_t siphash2(const uint8_t key[16], uint64_t a, uint64_t b)
{
	uint64_t k0, k1, v[4], m[2] = {a, b};

	memcpy(&k0, key, 8);
	memcpy(&k1, key + 8, 8);
	v[0] = k0 ^ 0x736f6d6570736575ull;
	v[1] = k1 ^ 0x646f72616e646f6dull;
	v[2] = k0 ^ 0x6c7967656e657261ull;
	v[3] = k1 ^ 0x7465646279746573ull;
	for (int i = 0; i < 2; i++) {
		v[3] ^= m[i];
		sip_round(v);
		sip_round(v);
		v[0] ^= m[i];
	}
	uint64_t last = (uint64_t) 16 << 56;
	v[3] ^= last;
	sip_round(v);
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t tcp_hash2(const struct tcp_stack *st, uint64_t a, uint64_t b)
{
	return siphash2(st->cfg.secret, a, b);
}

uint32_t tcp_isn(struct tcp_stack *st, uint64_t now, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport)
{
	/* RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a
	 * timer ticking every 4 microseconds. */
	uint64_t f = siphash2(st->cfg.secret, (uint64_t) laddr << 32 | raddr,
			      (uint64_t) lport << 16 | rport);

	return (uint32_t) (now / 4000) + (uint32_t) f;
}

/* ---- pool and lookup ---- */

static unsigned hash4(const struct tcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	uint32_t h = (raddr ^ ((uint32_t) rport << 16 | lport)) * 0x9e3779b1u;

	return (h ^ (h >> 15)) & (st->nbucket - 1);
}

struct tcb *tcp_lookup(struct tcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	int32_t i = st->bucket[hash4(st, raddr, rport, lport)];

	while (i >= 0) {
		struct tcb *t = tcp_tcb(st, i);

		if (t->raddr == raddr && t->rport == rport && t->lport == lport)
			return t;
		i = t->hnext;
	}
	return NULL;
}

struct tcb *tcp_lookup_listener(struct tcp_stack *st, uint16_t lport)
{
	for (int32_t i = st->listen_head; i >= 0; i = tcp_tcb(st, i)->hnext)
		if (tcp_tcb(st, i)->lport == lport)
			return tcp_tcb(st, i);
	return NULL;
}

void tcp_hash_insert(struct tcp_stack *st, struct tcb *t)
{
	unsigned b = hash4(st, t->raddr, t->rport, t->lport);

	t->hnext = st->bucket[b];
	st->bucket[b] = t->idx;
}

static void hash_remove(struct tcp_stack *st, struct tcb *t)
{
	int32_t *pp;

	if (t->state == TCPS_LISTEN)
		pp = &st->listen_head;
	else
		pp = &st->bucket[hash4(st, t->raddr, t->rport, t->lport)];
	while (*pp >= 0) {
		if (*pp == t->idx) {
			*pp = t->hnext;
			return;
		}
		pp = &tcp_tcb(st, *pp)->hnext;
	}
}

/* Blocks in the hash: every allocated one that is neither CLOSED nor LISTEN. */
static int rehash(struct tcp_stack *st, unsigned nbucket)
{
	int32_t *b = malloc(nbucket * sizeof(*b));

	if (!b)
		return -ENOMEM;
	free(st->bucket);
	st->bucket = b;
	st->nbucket = nbucket;
	for (unsigned i = 0; i < nbucket; i++)
		b[i] = -1;
	for (unsigned i = 0; i < st->ntcb; i++) {
		struct tcb *t = tcp_tcb(st, (int32_t) i);

		if (t->state != TCPS_CLOSED && t->state != TCPS_LISTEN)
			tcp_hash_insert(st, t);
	}
	return 0;
}

/*
 * One more chunk of blocks, on the free list. The hash keeps at least two buckets per block and
 * the timer heap one entry per block, so lookups stay short and filing a timer never fails.
 */
static int pool_grow(struct tcp_stack *st)
{
	unsigned n = st->cfg.max_socks - st->ntcb, nb;
	struct tcb *c;

	if (!n)
		return -ENOMEM;
	if (n > TCP_CHUNK)
		n = TCP_CHUNK;
	if (st->nchunk == st->chunk_cap) {
		unsigned cap = st->chunk_cap ? 2 * st->chunk_cap : 8;
		struct tcb **d = realloc(st->chunks, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		st->chunks = d;
		st->chunk_cap = cap;
	}
	if (tcp_timer_grow(st, st->ntcb + n))
		return -ENOMEM;
	for (nb = st->nbucket ? st->nbucket : 2; nb < 2 * (st->ntcb + n); nb <<= 1)
		;
	if (nb != st->nbucket && rehash(st, nb))
		return -ENOMEM;
	c = calloc(n, sizeof(*c));
	if (!c)
		return -ENOMEM;
	st->chunks[st->nchunk++] = c;
	for (unsigned i = n; i-- > 0;) {
		c[i].st = st;
		c[i].idx = (int32_t) (st->ntcb + i);
		c[i].tw_prev = c[i].tw_next = -2;
		c[i].hnext = st->free_head;
		st->free_head = c[i].idx;
	}
	st->ntcb += n;
	return 0;
}

void tcp_tw_link(struct tcp_stack *st, struct tcb *t)
{
	if (t->tw_prev != -2)
		return;
	t->tw_next = -1;
	t->tw_prev = st->tw_tail;
	if (st->tw_tail >= 0)
		tcp_tcb(st, st->tw_tail)->tw_next = t->idx;
	else
		st->tw_head = t->idx;
	st->tw_tail = t->idx;
}

void tcp_tw_unlink(struct tcp_stack *st, struct tcb *t)
{
	if (t->tw_prev == -2)
		return;
	if (t->tw_prev >= 0)
		tcp_tcb(st, t->tw_prev)->tw_next = t->tw_next;
	else
		st->tw_head = t->tw_next;
	if (t->tw_next >= 0)
		tcp_tcb(st, t->tw_next)->tw_prev = t->tw_prev;
	else
		st->tw_tail = t->tw_prev;
	t->tw_prev = t->tw_next = -2;
}

/*
 * A full pool ends the oldest TIME_WAIT connection nobody holds, as Linux does beyond
 * tcp_max_tw_buckets: otherwise a server closing connections at a high rate would fill its
 * pool with them (one per connection for 2 MSL) and refuse new ones. A look at the first few
 * is enough; blocks still held are rare there (shut down both ways, not closed).
 */
static bool tw_recycle(struct tcp_stack *st)
{
	int32_t i = st->tw_head;

	for (unsigned n = 0; i >= 0 && n < 8; n++, i = tcp_tcb(st, i)->tw_next) {
		struct tcb *t = tcp_tcb(st, i);

		if (!(t->flags & TF_USER)) {
			st->stats.tw_recycled++;
			tcp_drop(st, t, 0);
			return st->free_head >= 0;
		}
	}
	return false;
}

struct tcb *tcp_alloc(struct tcp_stack *st)
{
	struct tcb *t;
	uint32_t theap;
	int32_t idx;

	if (st->free_head < 0 && pool_grow(st) && !tw_recycle(st))
		return NULL;
	idx = st->free_head;
	t = tcp_tcb(st, idx);
	st->free_head = t->hnext;
	theap = t->theap; /* a stale heap entry may still name the block: tcp_timer.c */
	memset(t, 0, sizeof(*t));
	t->st = st;
	t->idx = idx;
	t->theap = theap;
	t->tw_prev = t->tw_next = -2;
	t->sbuf_size = st->cfg.sndbuf;
	t->rbuf_size = st->cfg.rcvbuf;
	t->cs = &t->cs_own;
	t->hnext = t->parent = t->qnext = t->acc_head = t->acc_tail = -1;
	t->laddr = st->ifc->ip;
	st->inuse++;
	return t;
}

void tcp_orphan_done(struct tcp_stack *st, struct tcb *t)
{
	if (!(t->flags & TF_WATCH))
		return;
	t->flags &= ~TF_WATCH;
	if (st->orphan_fn)
		st->orphan_fn(st->orphan_arg, t);
}

void tcp_set_orphan_hook(struct tcp_stack *st, tcp_orphan_fn fn, void *arg)
{
	st->orphan_fn = fn;
	st->orphan_arg = arg;
}

void tcp_free(struct tcp_stack *st, struct tcb *t)
{
	tcp_orphan_done(st, t);
	if (t->state != TCPS_CLOSED)
		hash_remove(st, t);
	if (t->flags & TF_ON_NOTIFY) {
		int32_t *pp = &st->notify_head;

		while (*pp >= 0 && *pp != t->idx)
			pp = &tcp_tcb(st, *pp)->qnext;
		if (*pp >= 0)
			*pp = t->qnext;
	}
	tcp_bufs_release(st, t);
	tcp_tw_unlink(st, t);
	t->state = TCPS_CLOSED;
	t->flags = 0;
	t->hnext = st->free_head;
	st->free_head = t->idx;
	st->inuse--;
}

/* Largest shift that still lets the 16-bit window field cover the whole ring (RFC 7323 2.3). */
static uint8_t wscale_for(uint32_t size)
{
	uint8_t s = 0;

	while (s < TCP_MAX_WSCALE && (size >> s) > 65535)
		s++;
	return s;
}

/* Fields every new connection starts with (active, or a passive child). */
void tcp_init_conn(struct tcp_stack *st, struct tcb *t, uint64_t now)
{
	const struct tcp_config *c = &st->cfg;
	uint16_t mtu_mss = (uint16_t) (st->ifc->mtu - IP4_HLEN - TCP_HLEN);

	t->rcv_mss = c->mss < mtu_mss ? c->mss : mtu_mss;
	t->mss = TCP_DEFAULT_MSS < t->rcv_mss ? TCP_DEFAULT_MSS : t->rcv_mss;
	t->rcv_wscale = wscale_for(t->rbuf_size);
	t->rto = c->rto_init_ns;
	t->ts_off = (uint32_t) siphash2(c->secret, (uint64_t) t->raddr << 32 | t->laddr,
					0x7473ull << 32 | t->rport);
	t->last_rx = now;
	tcp_cc_init(st, t);
}

void tcp_set_state(struct tcp_stack *st, struct tcb *t, uint8_t state)
{
	t->state = state;
}

/* ---- events ---- */

void tcp_event(struct tcp_stack *st, struct tcb *t, unsigned ev)
{
	if (!(t->flags & TF_ACCEPTED) || !(t->flags & TF_USER) || !t->cb)
		return;
	t->ev_pending |= ev;
	if (!(t->flags & TF_ON_NOTIFY)) {
		t->flags |= TF_ON_NOTIFY;
		t->qnext = st->notify_head;
		st->notify_head = t->idx;
	}
}

void tcp_notify_run(struct tcp_stack *st)
{
	/* Bounded: each pass takes one block off the list, and a callback can only add blocks
	 * whose events it caused, each at most once per pass through here. */
	for (unsigned n = 0; st->notify_head >= 0 && n < 4 * st->ntcb; n++) {
		struct tcb *t = tcp_tcb(st, st->notify_head);
		unsigned ev = t->ev_pending;

		st->notify_head = t->qnext;
		t->qnext = -1;
		t->flags &= ~TF_ON_NOTIFY;
		t->ev_pending = 0;
		if (ev && (t->flags & TF_USER) && t->cb)
			t->cb(t->arg, t, ev);
	}
}

static void acc_remove(struct tcp_stack *st, struct tcb *lis, struct tcb *t)
{
	int32_t *pp = &lis->acc_head, prev = -1;

	while (*pp >= 0 && *pp != t->idx) {
		prev = *pp;
		pp = &tcp_tcb(st, *pp)->qnext;
	}
	if (*pp < 0)
		return;
	*pp = t->qnext;
	if (lis->acc_tail == t->idx)
		lis->acc_tail = prev;
	lis->nacc--;
	t->qnext = -1;
}

void tcp_drop(struct tcp_stack *st, struct tcb *t, int err)
{
	if (t->state == TCPS_CLOSED)
		return;
	if (t->parent >= 0) {
		struct tcb *lis = tcp_tcb(st, t->parent);

		/* A passive child the application never saw goes away quietly. */
		if (t->state == TCPS_SYN_RCVD)
			lis->nsyn--;
		else
			acc_remove(st, lis, t);
		t->parent = -1;
		hash_remove(st, t);
		t->state = TCPS_CLOSED;
		t->flags &= ~TF_USER;
		tcp_free(st, t);
		return;
	}
	hash_remove(st, t);
	tcp_tw_unlink(st, t);
	t->state = TCPS_CLOSED;
	t->t_rexmt = t->t_delack = t->t_keep = t->t_2msl = 0;
	if (err && !t->err)
		t->err = err;
	if (!(t->flags & TF_USER)) {
		tcp_free(st, t);
		return;
	}
	tcp_event(st, t, err ? TCP_EV_ERROR | TCP_EV_READABLE | TCP_EV_WRITABLE : TCP_EV_CLOSED);
}

/* ---- init ---- */

int tcp_init(struct tcp_stack *st, const struct tcp_config *cfg, struct iface *ifc)
{
	struct tcp_config *c = &st->cfg;

	memset(st, 0, sizeof(*st));
	*c = *cfg;
	st->offer = TCP_NO_FRAME;
	for (unsigned i = 0; i < TCP_HELD_MAX; i++)
		st->held[i].tcb = -1;
	DEF(max_socks, 4096);
	DEF(sndbuf, 64 * 1024);
	DEF(rcvbuf, 64 * 1024);
	DEF(mss, (uint16_t) (ifc->mtu - IP4_HLEN - TCP_HLEN));
	DEF(msl2_ns, 60 * IFACE_NS_PER_S);
	DEF(fin_wait2_ns, 60 * IFACE_NS_PER_S);
	DEF(rto_init_ns, 1 * IFACE_NS_PER_S);
	DEF(rto_min_ns, 200 * TCP_MS);
	DEF(rto_max_ns, 60 * IFACE_NS_PER_S);
	DEF(delack_ns, 40 * TCP_MS);
	DEF(retries, 12);
	DEF(syn_retries, 6);
	DEF(keepidle_ns, 7200 * IFACE_NS_PER_S);
	DEF(keepintvl_ns, 75 * IFACE_NS_PER_S);
	DEF(keepcnt, 9);
	DEF(port_lo, 49152);
	DEF(port_hi, 65535);
	DEF(ooo_max, 8);
	DEF(challenge_acks, 1000);
	if (c->max_socks > TCP_MAX_SOCKS || c->sndbuf < 1024 || c->rcvbuf < 1024 ||
	    c->sndbuf > (1u << 30) || c->rcvbuf > (1u << 30) || c->mss < 64 ||
	    c->port_lo > c->port_hi || c->ooo_max > TCP_OOO_MAX || c->rto_min_ns > c->rto_max_ns ||
	    c->retries > 60 || c->syn_retries > 60)
		return -EINVAL;
	st->ifc = ifc;
	st->free_head = -1;
	st->tw_head = st->tw_tail = -1;
	st->listen_head = -1;
	st->notify_head = -1;
	st->sbufs.size = c->sndbuf;
	st->rbufs.size = c->rcvbuf;
	/* The first chunk now, so that a stack that starts has room for its first sockets. */
	if (pool_grow(st)) {
		tcp_fini(st);
		return -ENOMEM;
	}
	return 0;
}

void tcp_fini(struct tcp_stack *st)
{
	for (unsigned i = 0; i < st->nchunk; i++) {
		struct tcb *c = st->chunks[i];

		for (unsigned j = 0; j < TCP_CHUNK && i * TCP_CHUNK + j < st->ntcb; j++)
			tcp_bufs_release(st, &c[j]);
		free(c);
	}
	free(st->chunks);
	free(st->bucket);
	tcp_timer_fini(st);
	tcp_bufpool_fini(&st->sbufs);
	tcp_bufpool_fini(&st->rbufs);
	st->chunks = NULL;
	st->bucket = NULL;
	st->nchunk = st->chunk_cap = st->ntcb = st->nbucket = 0;
}

/* ---- ports ---- */

static bool tuple_free(struct tcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	return !tcp_lookup(st, raddr, rport, lport) && !tcp_lookup_listener(st, lport);
}

/* RFC 6056 3.3.3 (double-hash port selection, one table slot): a keyed offset per destination
 * and a counter that moves on after each use. */
static int pick_port(struct tcp_stack *st, uint32_t raddr, uint16_t rport)
{
	uint32_t n = (uint32_t) st->cfg.port_hi - st->cfg.port_lo + 1;
	uint32_t off = (uint32_t) siphash2(st->cfg.secret, raddr, 0x706f7274ull << 16 | rport);

	for (uint32_t i = 0; i < n; i++) {
		uint16_t p = (uint16_t) (st->cfg.port_lo + (off + st->port_ctr + i) % n);

		if (tuple_free(st, raddr, rport, p)) {
			st->port_ctr += i + 1;
			return p;
		}
	}
	return -EADDRINUSE;
}

/*
 * A SYN that reaches a connection in TIME_WAIT may open a new incarnation of it when it cannot
 * be an old duplicate: its timestamp is newer than the last one the old connection took (RFC
 * 6191 2), or, without timestamps, its sequence lies beyond the old one's (RFC 1122
 * 4.2.2.13). Clients that reuse ports quickly (a connection-rate benchmark, a proxy) depend on
 * it, as Linux allows it too. The old block goes; true when the SYN is the listener's now.
 */
bool tcp_tw_reuse(struct tcp_stack *st, struct tcb *t, uint32_t seq, bool has_ts, uint32_t tsval)
{
	bool ok;

	if (t->state != TCPS_TIME_WAIT || (t->flags & TF_USER))
		return false;
	if ((t->flags & TF_TS) && has_ts)
		ok = SEQ_GT(tsval, t->ts_recent);
	else
		ok = SEQ_GT(seq, t->rcv_nxt);
	if (!ok)
		return false;
	st->stats.tw_reused++;
	tcp_drop(st, t, 0);
	return true;
}

/* ---- API ---- */

static struct tcp_stack *stack_of(const struct tcb *t)
{
	return t->st;
}

int tcp_connect(struct tcp_stack *st, uint64_t now, uint32_t raddr, uint16_t rport, uint16_t lport,
		tcp_event_fn cb, void *arg, struct tcb **out)
{
	struct tcb *t;
	int p;

	if (!rport || raddr == IP4_ANY || raddr == IP4_BROADCAST || ip4_is_multicast(raddr))
		return -EINVAL;
	if (lport) {
		if (!tuple_free(st, raddr, rport, lport))
			return -EADDRINUSE;
		p = lport;
	} else {
		p = pick_port(st, raddr, rport);
		if (p < 0)
			return p;
	}
	t = tcp_alloc(st);
	if (!t)
		return -ENOMEM;
	now = tcp_clock(st, now);
	t->raddr = raddr;
	t->rport = rport;
	t->lport = (uint16_t) p;
	t->flags = TF_USER | TF_ACCEPTED;
	t->cb = cb;
	t->arg = arg;
	tcp_init_conn(st, t, now);
	t->iss = tcp_isn(st, now, t->laddr, t->lport, raddr, rport);
	t->snd_una = t->snd_nxt = t->snd_max = t->iss;
	t->recover = t->iss; /* RFC 6582 3.2 step 1 */
	t->snd_buf_seq = t->iss + 1;
	t->state = TCPS_SYN_SENT;
	tcp_hash_insert(st, t);
	tcp_output(st, t, now);
	tcp_settle(st, t);
	*out = t;
	tcp_notify_run(st);
	return 0;
}

int tcp_listen(struct tcp_stack *st, uint16_t lport, unsigned backlog, tcp_event_fn cb, void *arg,
	       struct tcb **out)
{
	struct tcb *t;

	if (!lport || !backlog)
		return -EINVAL;
	if (tcp_lookup_listener(st, lport))
		return -EADDRINUSE;
	t = tcp_alloc(st);
	if (!t)
		return -ENOMEM;
	t->lport = lport;
	t->state = TCPS_LISTEN;
	t->flags = TF_USER | TF_ACCEPTED;
	t->backlog = (uint16_t) (backlog > 4096 ? 4096 : backlog);
	t->cb = cb;
	t->arg = arg;
	t->hnext = st->listen_head;
	st->listen_head = t->idx;
	*out = t;
	return 0;
}

int tcp_accept(struct tcb *lis, struct tcb **out)
{
	struct tcp_stack *st = stack_of(lis);
	struct tcb *c;

	if (lis->state != TCPS_LISTEN)
		return -EINVAL;
	if (lis->acc_head < 0)
		return -EAGAIN;
	c = tcp_tcb(st, lis->acc_head);
	lis->acc_head = c->qnext;
	if (lis->acc_head < 0)
		lis->acc_tail = -1;
	lis->nacc--;
	c->qnext = -1;
	c->parent = -1;
	c->flags |= TF_ACCEPTED | TF_USER;
	c->cb = lis->cb;
	c->arg = lis->arg;
	*out = c;
	return 0;
}

static uint32_t ring_put(uint8_t *ring, uint32_t size, uint32_t pos, const uint8_t *src,
			 uint32_t len)
{
	uint32_t first = size - pos < len ? size - pos : len;

	memcpy(ring + pos, src, first);
	memcpy(ring, src + first, len - first);
	return (pos + len) % size;
}

long tcp_send(struct tcb *t, uint64_t now, const void *buf, size_t len)
{
	struct tcp_stack *st = stack_of(t);
	uint32_t room, n;

	if (t->err)
		return t->err;
	if (t->flags & TF_FIN_QUEUED)
		return -EPIPE;
	switch (t->state) {
	case TCPS_SYN_SENT:
	case TCPS_SYN_RCVD:
		return -ENOTCONN;
	case TCPS_ESTABLISHED:
	case TCPS_CLOSE_WAIT:
		break;
	case TCPS_LISTEN:
		return -ENOTCONN;
	default:
		return -EPIPE;
	}
	room = t->sbuf_size - t->sbuf_len;
	if (!room)
		return -EAGAIN;
	if (len && !tcp_sbuf_need(st, t))
		return -ENOMEM;
	n = len < room ? (uint32_t) len : room;
	if (n)
		ring_put(t->sbuf, t->sbuf_size, (t->sbuf_head + t->sbuf_len) % t->sbuf_size, buf,
			 n);
	t->sbuf_len += n;
	now = tcp_clock(st, now);
	if (!tcp_push_defer(st, t))
		tcp_output(st, t, now);
	tcp_settle(st, t);
	tcp_notify_run(st);
	return n;
}

long tcp_recv(struct tcb *t, uint64_t now, void *buf, size_t len)
{
	struct tcp_stack *st = stack_of(t);
	uint32_t n, first, held;
	uint8_t *dst = buf;

	if (t->state == TCPS_LISTEN)
		return -ENOTCONN;
	if (!t->rbuf_len && !t->hold_bytes) {
		if (t->flags & TF_FIN_RCVD)
			return 0;
		if (t->err)
			return t->err;
		if (t->state == TCPS_CLOSED)
			return 0;
		return -EAGAIN;
	}
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	/* Kept frames first: their bytes come before the ring's (tcp_hold.c). */
	held = tcp_hold_read(st, t, dst, (uint32_t) len);
	dst += held;
	len -= held;
	n = len < t->rbuf_len ? (uint32_t) len : t->rbuf_len;
	first = t->rbuf_size - t->rbuf_head < n ? t->rbuf_size - t->rbuf_head : n;
	if (n) {
		memcpy(dst, t->rbuf + t->rbuf_head, first);
		memcpy(dst + first, t->rbuf, n - first);
		t->rbuf_head = (t->rbuf_head + n) % t->rbuf_size;
		t->rbuf_len -= n;
	}
	n += held;
	/* RFC 9293 3.8.6.2.2 (receiver SWS avoidance): announce the opened window only once it
	 * grew by min(half the ring, one MSS) beyond what the peer was last told. */
	if (t->state >= TCPS_ESTABLISHED && t->state != TCPS_TIME_WAIT &&
	    !(t->flags & TF_FIN_RCVD)) {
		uint32_t right = t->rcv_nxt + tcp_rcv_space(t);
		uint32_t thresh = t->rbuf_size / 2 < t->rcv_mss ? t->rbuf_size / 2 : t->rcv_mss;

		if (SEQ_GEQ(right, t->rcv_adv + thresh)) {
			now = tcp_clock(st, now);
			t->flags |= TF_ACKNOW;
			tcp_output(st, t, now);
			tcp_settle(st, t);
			tcp_notify_run(st);
			return n;
		}
	}
	tcp_settle(st, t);
	return n;
}

int tcp_shutdown(struct tcb *t, uint64_t now, int how)
{
	struct tcp_stack *st = stack_of(t);

	if (how < 0 || how > 2)
		return -EINVAL;
	if (t->state == TCPS_LISTEN || t->state == TCPS_CLOSED)
		return -ENOTCONN;
	if (how != 1) {
		/* Unread and out-of-order data is dropped; what arrives later is acknowledged
		 * and discarded (rcv_data). */
		t->flags |= TF_RD_SHUT;
		t->rbuf_len = 0;
		t->nooo = 0;
		tcp_hold_drop(st, t);
		tcp_settle(st, t);
	}
	if (how == 0 || (t->flags & TF_FIN_QUEUED))
		return 0;
	t->flags |= TF_FIN_QUEUED;
	/* RFC 9293 3.10.4: the state moves now; the FIN itself leaves after the queued data. */
	if (t->state == TCPS_ESTABLISHED)
		t->state = TCPS_FIN_WAIT_1;
	else if (t->state == TCPS_CLOSE_WAIT)
		t->state = TCPS_LAST_ACK;
	now = tcp_clock(st, now);
	tcp_output(st, t, now);
	tcp_settle(st, t);
	tcp_notify_run(st);
	return 0;
}

static void close_listener(struct tcp_stack *st, struct tcb *lis, uint64_t now)
{
	for (unsigned i = 0; i < st->ntcb; i++) {
		struct tcb *c = tcp_tcb(st, (int32_t) i);

		if (c->state != TCPS_CLOSED && c->parent == lis->idx) {
			if (c->state != TCPS_SYN_RCVD)
				tcp_send_rst(st, c, now);
			tcp_drop(st, c, -ECONNABORTED);
		}
	}
	hash_remove(st, lis);
	lis->state = TCPS_CLOSED;
	lis->flags = 0;
	tcp_free(st, lis);
}

int tcp_close(struct tcb *t, uint64_t now)
{
	struct tcp_stack *st = stack_of(t);

	now = tcp_clock(st, now);
	tcp_zc_release(t); /* the stack finishes alone: the application's buffers are not ours */
	t->flags &= ~TF_USER;
	t->cb = NULL;
	t->rx_hook = NULL;
	switch (t->state) {
	case TCPS_LISTEN:
		close_listener(st, t, now);
		return 0;
	case TCPS_CLOSED:
		tcp_free(st, t);
		return 0;
	case TCPS_SYN_SENT:
		tcp_drop(st, t, 0);
		return 0;
	default:
		break;
	}
	if ((t->rbuf_len || t->hold_bytes) && !(t->flags & TF_RD_SHUT)) {
		/* Unread data: the peer must learn it was lost (RFC 9293 3.10.4). */
		tcp_send_rst(st, t, now);
		tcp_drop(st, t, 0);
		return 0;
	}
	t->flags |= TF_RD_SHUT;
	t->nooo = 0;
	if (!(t->flags & TF_FIN_QUEUED)) {
		t->flags |= TF_FIN_QUEUED;
		if (t->state == TCPS_ESTABLISHED || t->state == TCPS_SYN_RCVD)
			t->state = TCPS_FIN_WAIT_1;
		else if (t->state == TCPS_CLOSE_WAIT)
			t->state = TCPS_LAST_ACK;
	}
	if (t->state == TCPS_FIN_WAIT_2 && !t->t_2msl)
		t->t_2msl = now + st->cfg.fin_wait2_ns;
	tcp_output(st, t, now);
	tcp_settle(st, t);
	tcp_notify_run(st);
	return 0;
}

void tcp_close_watch(struct tcb *t, uint64_t now)
{
	/* Every way a connection ends goes through tcp_free() or tcp_timewait(), which tell the
	 * hook, also when tcp_close() ends it at once; one already in TIME_WAIT is over now. */
	t->flags |= TF_WATCH;
	if (t->state == TCPS_TIME_WAIT)
		tcp_orphan_done(stack_of(t), t);
	tcp_close(t, now);
}

void tcp_abort(struct tcb *t, uint64_t now)
{
	struct tcp_stack *st = stack_of(t);

	now = tcp_clock(st, now);
	t->nzref = 0;
	t->flags &= ~TF_USER;
	t->cb = NULL;
	if (t->state == TCPS_LISTEN) {
		close_listener(st, t, now);
		return;
	}
	if (t->state == TCPS_CLOSED) {
		tcp_free(st, t);
		return;
	}
	if (t->state != TCPS_SYN_SENT && t->state != TCPS_TIME_WAIT)
		tcp_send_rst(st, t, now);
	tcp_drop(st, t, 0);
}

int tcp_setopt(struct tcb *t, int opt, int value)
{
	uint32_t f;

	switch (opt) {
	case TCP_OPT_NODELAY:
		f = TF_NODELAY;
		break;
	case TCP_OPT_QUICKACK:
		f = TF_QUICKACK;
		break;
	case TCP_OPT_KEEPALIVE:
		f = TF_KEEPALIVE;
		break;
	default:
		return -ENOPROTOOPT;
	}
	if (value)
		t->flags |= f;
	else
		t->flags &= ~f;
	if (opt == TCP_OPT_KEEPALIVE) {
		struct tcp_stack *st = stack_of(t);

		if (value)
			tcp_keep_arm(st, t, st->now);
		else
			t->t_keep = 0;
	}
	return 0;
}

void tcp_set_cb(struct tcb *t, tcp_event_fn cb, void *arg)
{
	t->cb = cb;
	t->arg = arg;
}

void tcp_set_rx_hook(struct tcb *t, tcp_rx_fn fn)
{
	t->rx_hook = fn;
}

void tcp_set_stats(struct tcb *t, struct tcp_conn_stats *cs)
{
	struct tcp_conn_stats *to = cs ? cs : &t->cs_own;

	if (to != t->cs)
		*to = *t->cs;
	t->cs = to;
}

uint32_t tcp_rcv_space(const struct tcb *t)
{
	return t->rbuf_size - t->rbuf_len - t->hold_bytes;
}

unsigned tcp_events(const struct tcb *t)
{
	unsigned ev = 0;

	if (t->state == TCPS_LISTEN)
		return t->acc_head >= 0 ? TCP_EV_ACCEPT : 0;
	if (t->rbuf_len || t->hold_bytes || (t->flags & TF_FIN_RCVD) || t->err)
		ev |= TCP_EV_READABLE;
	if (t->err)
		ev |= TCP_EV_ERROR | TCP_EV_WRITABLE;
	else if ((t->state == TCPS_ESTABLISHED || t->state == TCPS_CLOSE_WAIT) &&
		 !(t->flags & TF_FIN_QUEUED) && t->sbuf_len < t->sbuf_size)
		ev |= TCP_EV_WRITABLE;
	if (t->state >= TCPS_ESTABLISHED)
		ev |= TCP_EV_CONNECTED;
	return ev;
}

enum tcp_state tcp_state(const struct tcb *t)
{
	return (enum tcp_state) t->state;
}

int tcp_error(const struct tcb *t)
{
	return t->err;
}

uint64_t tcp_acked(const struct tcb *t)
{
	return t->acked_total;
}

size_t tcp_sndspace(const struct tcb *t)
{
	return t->sbuf_size - t->sbuf_len;
}

size_t tcp_sndbuf(const struct tcb *t)
{
	return t->sbuf_size;
}

size_t tcp_rcvavail(const struct tcb *t)
{
	return t->rbuf_len + t->hold_bytes;
}

bool tcp_fin_rcvd(const struct tcb *t)
{
	return t->flags & TF_FIN_RCVD;
}

unsigned tcp_shutdowns(const struct tcb *t)
{
	unsigned sh = 0;

	if (t->err || t->state == TCPS_CLOSED)
		return TCP_SHUT_RD | TCP_SHUT_WR;
	if (t->flags & TF_FIN_RCVD)
		sh |= TCP_SHUT_RD;
	if (t->flags & TF_FIN_QUEUED)
		sh |= TCP_SHUT_WR;
	return sh;
}

void tcp_endpoints(const struct tcb *t, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
		   uint16_t *rport)
{
	/* Any of them may be NULL. */
	if (laddr)
		*laddr = t->laddr;
	if (lport)
		*lport = t->lport;
	if (raddr)
		*raddr = t->raddr;
	if (rport)
		*rport = t->rport;
}

const char *tcp_state_name(enum tcp_state s)
{
	static const char *const n[] = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RCVD",
					"ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
					"CLOSING",     "LAST_ACK",   "TIME_WAIT"};

	return (unsigned) s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

unsigned tcp_inuse(const struct tcp_stack *st)
{
	return st->inuse;
}

const struct tcp_stats *tcp_get_stats(const struct tcp_stack *st)
{
	return &st->stats;
}
