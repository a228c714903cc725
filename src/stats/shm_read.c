#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/shm_read.h"

#define SEQ_TRIES 64

/* Loads from memory another process writes: one at a time, never torn. */
static uint32_t load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Whether count blocks of size bytes at off lie inside len bytes, aligned for their words. */
static bool fits(uint64_t off, uint64_t size, uint64_t count, uint64_t len, size_t need)
{
	if (size < need || size % 8 || off % 8 || count > (1u << 20))
		return false;
	return off <= len && size * count <= len - off;
}

/*
 * Copies need bytes of a block whose seq may change under us. The words are copied one by one
 * with relaxed atomic loads so the copy races with no plain access. Returns false when the
 * block never held still or is not live.
 */
static bool copy_block(const uint8_t *src, void *dst, size_t need)
{
	const struct xstats_blk *b = (const void *) src;

	for (int i = 0; i < SEQ_TRIES; i++) {
		uint32_t s1 = load32(&b->seq), s2;

		if (s1 & 1)
			continue;
		for (size_t k = 0; k < need; k += 8)
			*(uint64_t *) ((uint8_t *) dst + k) =
				__atomic_load_n((const uint64_t *) (src + k), __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = load32(&b->seq);
		if (s1 == s2)
			return ((const struct xstats_blk *) dst)->state == XSTATS_LIVE;
	}
	return false;
}

static void cut(char *s, size_t size)
{
	s[size - 1] = '\0';
}

/* Copies the live blocks of one array into a new array; *n is how many. */
static int read_array(const uint8_t *buf, uint32_t off, uint32_t size, uint32_t count, size_t need,
		      void **out, unsigned *n)
{
	uint8_t *dst = NULL;

	*n = 0;
	*out = NULL;
	if (!count)
		return 0;
	dst = calloc(count, need);
	if (!dst)
		return -ENOMEM;
	*out = dst; /* before the copies: a reader that gives up halfway can still free it */
	for (uint32_t i = 0; i < count; i++)
		if (copy_block(buf + off + (size_t) i * size, dst + (size_t) *n * need, need))
			(*n)++;
	return 0;
}

int xstats_read(const void *buf, size_t len, struct xstats_view *v)
{
	const struct xstats_hdr *h = buf;
	int err;

	memset(v, 0, sizeof(*v));
	if (!buf || len < sizeof(*h) || (uintptr_t) buf % 8)
		return -EINVAL;
	if (h->magic != XSTATS_MAGIC)
		return -EINVAL;
	if (!load32(&h->ready))
		return -EAGAIN;
	if (h->version != XSTATS_VERSION)
		return -EPROTO;
	memcpy(&v->hdr, h, sizeof(*h));
	h = &v->hdr; /* from here on, only the copy: the file may change */
	cut(v->hdr.prog, sizeof(v->hdr.prog));
	if (h->hdr_size < sizeof(*h) || h->hdr_size > len || h->file_size != len ||
	    !fits(h->ring_off, h->ring_size, h->nrings, len, sizeof(struct xstats_ring)) ||
	    !fits(h->port_off, h->port_size, h->nports, len, sizeof(struct xstats_port)) ||
	    !fits(h->sock_off, h->sock_size, h->nsocks, len, sizeof(struct xstats_sock)))
		return -EINVAL;
	err = read_array(buf, h->ring_off, h->ring_size, h->nrings, sizeof(struct xstats_ring),
			 (void **) &v->rings, &v->nrings);
	if (!err)
		err = read_array(buf, h->port_off, h->port_size, h->nports,
				 sizeof(struct xstats_port), (void **) &v->ports, &v->nports);
	if (!err)
		err = read_array(buf, h->sock_off, h->sock_size, h->nsocks,
				 sizeof(struct xstats_sock), (void **) &v->socks, &v->nsocks);
	if (err) {
		xstats_view_free(v);
		return err;
	}
	for (unsigned i = 0; i < v->nports; i++) {
		struct xstats_port *p = &v->ports[i];

		cut(p->name, sizeof(p->name));
		if (p->ncounters > XSTATS_PORT_COUNTERS)
			p->ncounters = XSTATS_PORT_COUNTERS;
		for (unsigned k = 0; k < p->ncounters; k++)
			cut(p->c[k].name, sizeof(p->c[k].name));
	}
	return 0;
}

void xstats_view_free(struct xstats_view *v)
{
	free(v->rings);
	free(v->ports);
	free(v->socks);
	v->rings = NULL;
	v->ports = NULL;
	v->socks = NULL;
	v->nrings = v->nports = v->nsocks = 0;
}

/* enum tcp_state, in its order: the numbering is part of the file format. */
static const char *const tcp_states[] = {
	"CLOSED",     "LISTEN",     "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
	"FIN_WAIT_2", "CLOSE_WAIT", "CLOSING",  "LAST_ACK", "TIME_WAIT",
};

const char *xstats_state_name(const struct xstats_sock *s)
{
	if (s->type == XSTATS_UDP)
		return s->state ? "CONNECTED" : "UNCONNECTED";
	if (s->listening)
		return "LISTEN";
	if (s->state < sizeof(tcp_states) / sizeof(tcp_states[0]))
		return tcp_states[s->state];
	return "UNKNOWN";
}

static void fmt_addr(uint32_t ip, uint16_t port, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	struct in_addr in = {.s_addr = ip};

	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(buf, len, "%s:%u", a, port);
}

int xstats_fmt_sock(const struct xstats_sock *s, char *buf, size_t len)
{
	char l[32], r[32];

	fmt_addr(s->lip, s->lport, l, sizeof(l));
	fmt_addr(s->rip, s->rport, r, sizeof(r));
	return snprintf(
		buf, len,
		"fd %d %s %s %s %s ring %u rx_bytes %llu rx_packets %llu tx_bytes %llu "
		"tx_packets %llu segs_in %llu segs_out %llu rexmt_segs %llu rexmt_bytes %llu "
		"drops %llu drop_rxq_full %llu drop_not_peer %llu drop_too_big %llu "
		"tx_errors %llu rxq %u rxq_max %u dummy_sends %llu dummy_bytes %llu slot %d",
		s->fd, s->type == XSTATS_TCP ? "tcp" : "udp", l, r, xstats_state_name(s), s->b.ring,
		(unsigned long long) s->rx_bytes, (unsigned long long) s->rx_packets,
		(unsigned long long) s->tx_bytes, (unsigned long long) s->tx_packets,
		(unsigned long long) s->tcp_segs_in, (unsigned long long) s->tcp_segs_out,
		(unsigned long long) s->tcp_rexmt_segs, (unsigned long long) s->tcp_rexmt_bytes,
		(unsigned long long) (s->drop_rxq_full + s->drop_not_peer + s->drop_too_big),
		(unsigned long long) s->drop_rxq_full, (unsigned long long) s->drop_not_peer,
		(unsigned long long) s->drop_too_big, (unsigned long long) s->tx_errors, s->rxq_now,
		s->rxq_max, (unsigned long long) s->dummy_sends,
		(unsigned long long) s->dummy_bytes, s->slot);
}

int xstats_fmt_sock_unpublished(const struct xstats_sock *s, char *buf, size_t len)
{
	char l[32], r[32];

	fmt_addr(s->lip, s->lport, l, sizeof(l));
	fmt_addr(s->rip, s->rport, r, sizeof(r));
	return snprintf(buf, len, "fd %d %s %s %s %s ring %u unpublished slot %d", s->fd,
			s->type == XSTATS_TCP ? "tcp" : "udp", l, r, xstats_state_name(s),
			s->b.ring, s->slot);
}

int xstats_fmt_ring(const struct xstats_ring *r, char *buf, size_t len)
{
	return snprintf(buf, len,
			"ring %u tid %u sq %u cq %u sqes %llu cqes %llu cq_overflows %llu "
			"poll_hits %llu poll_misses %llu sleeps %llu passthrough %llu sockets %llu",
			r->id, r->tid, r->sq_entries, r->cq_entries, (unsigned long long) r->sqes,
			(unsigned long long) r->cqes, (unsigned long long) r->cq_overflows,
			(unsigned long long) r->poll_hits, (unsigned long long) r->poll_misses,
			(unsigned long long) r->sleeps, (unsigned long long) r->passthrough,
			(unsigned long long) r->socks);
}

int xstats_fmt_port(const struct xstats_port *p, unsigned first, unsigned n, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr in = {.s_addr = p->ip};
	size_t off;
	int w;

	inet_ntop(AF_INET, &in, ip, sizeof(ip));
	w = snprintf(buf, len, "port %s queue %u ring %u ip %s", p->name, p->queue, p->b.ring, ip);
	if (w < 0)
		return w;
	off = (size_t) w;
	for (unsigned k = first; k < p->ncounters && k < first + n; k++) {
		w = snprintf(buf + (off < len ? off : len), off < len ? len - off : 0, " %s %llu",
			     p->c[k].name, (unsigned long long) p->c[k].value);
		if (w < 0)
			return w;
		off += (size_t) w;
	}
	return (int) off;
}
