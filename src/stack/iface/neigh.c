/*
 * Neighbour cache: fixed table with hash chains, a fixed pool of frames waiting for
 * resolution, and the INCOMPLETE / REACHABLE / STALE life cycle of Linux's ARP (a stale entry
 * keeps being used; if it stays in use for delay_ns without confirmation it is probed with
 * unicast requests, and forgotten when they go unanswered).
 */
#include "stack/iface/neigh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash_ip(const struct neigh_cache *nc, uint32_t ip)
{
	/* Fibonacci hashing: the top bits of the product are the well-mixed ones. */
	return (unsigned) ((ip * 0x9e3779b1u) >> nc->hash_shift);
}

int neigh_init(struct iface *ifc)
{
	struct neigh_cache *nc = &ifc->nc;
	const struct iface_config *c = &ifc->cfg;

	memset(nc, 0, sizeof(*nc));
	nc->n = c->neigh_entries;
	nc->nbucket = 2;
	nc->hash_shift = 31;
	while (nc->nbucket < 2 * nc->n) {
		nc->nbucket <<= 1;
		nc->hash_shift--;
	}
	nc->npkt = c->pending_frames;
	nc->pkt_size = ETH_HLEN + ifc->mtu;
	nc->e = calloc(nc->n, sizeof(*nc->e));
	nc->bucket = malloc(nc->nbucket * sizeof(*nc->bucket));
	nc->pkt = calloc(nc->npkt, sizeof(*nc->pkt));
	nc->pkt_mem = malloc((size_t) nc->npkt * nc->pkt_size);
	if (!nc->e || !nc->bucket || !nc->pkt || !nc->pkt_mem) {
		neigh_fini(ifc);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nc->nbucket; i++)
		nc->bucket[i] = -1;
	for (unsigned i = 0; i < nc->n; i++)
		nc->e[i].next = i + 1 < nc->n ? (int32_t) i + 1 : -1;
	nc->free_head = 0;
	for (unsigned i = 0; i < nc->npkt; i++)
		nc->pkt[i].next = i + 1 < nc->npkt ? (int32_t) i + 1 : -1;
	nc->pkt_free = 0;
	nc->next_timer = UINT64_MAX;
	return 0;
}

void neigh_fini(struct iface *ifc)
{
	struct neigh_cache *nc = &ifc->nc;

	free(nc->e);
	free(nc->bucket);
	free(nc->pkt);
	free(nc->pkt_mem);
	memset(nc, 0, sizeof(*nc));
}

int32_t neigh_find(const struct iface *ifc, uint32_t ip)
{
	const struct neigh_cache *nc = &ifc->nc;
	int32_t i = nc->bucket[hash_ip(nc, ip)];

	while (i >= 0 && nc->e[i].ip != ip)
		i = nc->e[i].next;
	return i;
}

static void arm(struct neigh_cache *nc, struct neigh *e, uint64_t when)
{
	e->timer = when;
	if (when < nc->next_timer)
		nc->next_timer = when;
}

void neigh_pkt_put(struct iface *ifc, int32_t pkt)
{
	struct neigh_cache *nc = &ifc->nc;

	nc->pkt[pkt].next = nc->pkt_free;
	nc->pkt_free = pkt;
}

static int32_t pkt_dequeue(struct neigh_cache *nc, struct neigh *e)
{
	int32_t p = e->pend_head;

	if (p >= 0) {
		e->pend_head = nc->pkt[p].next;
		if (e->pend_head < 0)
			e->pend_tail = -1;
		e->npend--;
	}
	return p;
}

static void drop_pending(struct iface *ifc, struct neigh *e)
{
	int32_t p;

	while ((p = pkt_dequeue(&ifc->nc, e)) >= 0) {
		ifc->stats.neigh_failed_frames++;
		neigh_pkt_put(ifc, p);
	}
}

static void release(struct iface *ifc, int32_t idx)
{
	struct neigh_cache *nc = &ifc->nc;
	struct neigh *e = &nc->e[idx];
	int32_t *pp = &nc->bucket[hash_ip(nc, e->ip)];

	drop_pending(ifc, e);
	while (*pp != idx)
		pp = &nc->e[*pp].next;
	*pp = e->next;
	memset(e, 0, sizeof(*e));
	e->next = nc->free_head;
	nc->free_head = idx;
}

/* A free entry, evicting the least recently used resolved one when the table is full. Frames
 * waiting on INCOMPLETE entries are never thrown away to make room. */
static int32_t alloc_entry(struct iface *ifc, uint32_t ip)
{
	struct neigh_cache *nc = &ifc->nc;
	int32_t idx = nc->free_head, victim = -1;
	struct neigh *e;
	unsigned h;

	if (idx < 0) {
		for (unsigned i = 0; i < nc->n; i++) {
			if (nc->e[i].state == NEIGH_INCOMPLETE)
				continue;
			if (victim < 0 || nc->e[i].used < nc->e[victim].used)
				victim = (int32_t) i;
		}
		if (victim < 0) {
			ifc->stats.neigh_full++;
			return -1;
		}
		ifc->stats.neigh_evicted++;
		release(ifc, victim);
		idx = nc->free_head;
	}
	e = &nc->e[idx];
	nc->free_head = e->next;
	memset(e, 0, sizeof(*e));
	e->ip = ip;
	e->pend_head = e->pend_tail = -1;
	h = hash_ip(nc, ip);
	e->next = nc->bucket[h];
	nc->bucket[h] = idx;
	return idx;
}

int neigh_resolve(struct iface *ifc, uint64_t now, uint32_t ip, uint8_t *mac, int32_t *idx)
{
	struct neigh_cache *nc = &ifc->nc;
	int32_t i = neigh_find(ifc, ip);
	struct neigh *e;

	if (i < 0) {
		uint8_t host_mac[ETH_ALEN];

		i = alloc_entry(ifc, ip);
		if (i < 0)
			return -ENOBUFS;
		e = &nc->e[i];
		if (ifc->hooks.neigh_lookup &&
		    ifc->hooks.neigh_lookup(ifc->hooks.neigh_ctx, ip, host_mac) == 0) {
			/* Seeded from the host's table: usable now, unconfirmed (STALE), so
			 * the DELAY / probe cycle below checks it before long. */
			ifc->stats.neigh_from_host++;
			memcpy(e->mac, host_mac, ETH_ALEN);
			e->state = NEIGH_STALE;
			e->used = now;
			e->probes = 0;
			arm(nc, e, now + ifc->cfg.delay_ns);
			memcpy(mac, e->mac, ETH_ALEN);
			return 0;
		}
		e->state = NEIGH_INCOMPLETE;
		e->used = now;
		e->probes = 1;
		ifc->stats.neigh_miss++;
		iface_arp_request(ifc, NULL, ip);
		arm(nc, e, now + ifc->cfg.retrans_ns);
		*idx = i;
		return 1;
	}
	e = &nc->e[i];
	e->used = now;
	switch (e->state) {
	case NEIGH_INCOMPLETE:
		*idx = i;
		return 1;
	case NEIGH_REACHABLE:
		if (now - e->confirmed < ifc->cfg.reachable_ns)
			break;
		e->state = NEIGH_STALE;
		/* fall through */
	case NEIGH_STALE:
		if (!e->timer) {
			/* In use but unconfirmed: give the upper layers delay_ns to confirm it
			 * before asking the neighbour directly (RFC 4861's DELAY state). */
			e->probes = 0;
			arm(nc, e, now + ifc->cfg.delay_ns);
		}
		break;
	}
	memcpy(mac, e->mac, ETH_ALEN);
	return 0;
}

int32_t neigh_pkt_take(struct iface *ifc, int32_t n, uint8_t **data)
{
	struct neigh_cache *nc = &ifc->nc;
	struct neigh *e = &nc->e[n];
	int32_t p;

	if (e->npend >= ifc->cfg.pending_per_neigh) {
		p = pkt_dequeue(nc, e); /* the oldest goes, as in Linux's unresolved queue */
		ifc->stats.neigh_queue_drop++;
	} else {
		p = nc->pkt_free;
		if (p < 0) {
			ifc->stats.neigh_queue_drop++;
			return -1;
		}
		nc->pkt_free = nc->pkt[p].next;
	}
	*data = nc->pkt_mem + (size_t) p * nc->pkt_size;
	return p;
}

void neigh_pkt_queue(struct iface *ifc, int32_t n, int32_t pkt, uint32_t len)
{
	struct neigh_cache *nc = &ifc->nc;
	struct neigh *e = &nc->e[n];

	nc->pkt[pkt].len = len;
	nc->pkt[pkt].next = -1;
	if (e->pend_tail >= 0)
		nc->pkt[e->pend_tail].next = pkt;
	else
		e->pend_head = pkt;
	e->pend_tail = pkt;
	e->npend++;
	ifc->stats.neigh_queued++;
}

static void flush(struct iface *ifc, struct neigh *e)
{
	struct neigh_cache *nc = &ifc->nc;
	int32_t p;

	while ((p = pkt_dequeue(nc, e)) >= 0) {
		uint8_t *f = nc->pkt_mem + (size_t) p * nc->pkt_size;

		memcpy(f, e->mac, ETH_ALEN);
		iface_xmit_frame(ifc, f, nc->pkt[p].len);
		neigh_pkt_put(ifc, p);
	}
}

void neigh_learn(struct iface *ifc, uint64_t now, uint32_t ip, const uint8_t *mac, unsigned how)
{
	struct neigh_cache *nc = &ifc->nc;
	int32_t i = neigh_find(ifc, ip);
	struct neigh *e;
	bool confirm = how & NEIGH_CONFIRM;

	if (i < 0) {
		if (!(how & NEIGH_CREATE))
			return;
		i = alloc_entry(ifc, ip);
		if (i < 0)
			return;
		e = &nc->e[i];
		memcpy(e->mac, mac, ETH_ALEN);
		e->state = confirm ? NEIGH_REACHABLE : NEIGH_STALE;
		e->confirmed = now;
		e->used = now;
		return;
	}
	e = &nc->e[i];
	if (e->state == NEIGH_INCOMPLETE) {
		memcpy(e->mac, mac, ETH_ALEN);
		e->state = confirm ? NEIGH_REACHABLE : NEIGH_STALE;
		e->confirmed = now;
		e->probes = 0;
		e->timer = 0;
		flush(ifc, e);
		return;
	}
	if (memcmp(e->mac, mac, ETH_ALEN) != 0) {
		/* Moved (failover, a gratuitous ARP): believe the newest word. */
		memcpy(e->mac, mac, ETH_ALEN);
		e->state = confirm ? NEIGH_REACHABLE : NEIGH_STALE;
		e->timer = 0;
		e->probes = 0;
		e->confirmed = now;
		return;
	}
	if (confirm) {
		e->state = NEIGH_REACHABLE;
		e->confirmed = now;
		e->timer = 0;
		e->probes = 0;
	}
}

void neigh_confirm(struct iface *ifc, uint64_t now, uint32_t ip)
{
	int32_t i = neigh_find(ifc, ip);
	struct neigh *e;

	if (i < 0)
		return;
	e = &ifc->nc.e[i];
	if (e->state == NEIGH_INCOMPLETE)
		return;
	e->state = NEIGH_REACHABLE;
	e->confirmed = now;
	e->timer = 0;
	e->probes = 0;
}

uint64_t neigh_tick(struct iface *ifc, uint64_t now)
{
	struct neigh_cache *nc = &ifc->nc;
	const struct iface_config *c = &ifc->cfg;
	bool gc = now >= nc->next_gc;
	uint64_t next = UINT64_MAX;

	if (now < nc->next_timer && !gc)
		return nc->next_timer;
	for (unsigned i = 0; i < nc->n; i++) {
		struct neigh *e = &nc->e[i];

		if (e->state == NEIGH_FREE)
			continue;
		if (e->timer && e->timer <= now) {
			if (e->probes >= c->max_probes) {
				if (e->state == NEIGH_INCOMPLETE)
					ifc->stats.neigh_failed++;
				release(ifc, (int32_t) i);
				continue;
			}
			e->probes++;
			/* Incomplete: broadcast; stale: ask the address we believe in. */
			iface_arp_request(ifc, e->state == NEIGH_STALE ? e->mac : NULL, e->ip);
			e->timer = now + c->retrans_ns;
		}
		if (gc && e->state != NEIGH_INCOMPLETE && !e->timer && now - e->used >= c->gc_ns &&
		    now - e->confirmed >= c->gc_ns) {
			release(ifc, (int32_t) i);
			continue;
		}
		if (e->timer && e->timer < next)
			next = e->timer;
	}
	nc->next_timer = next;
	if (gc)
		nc->next_gc = now + c->gc_ns / 2;
	return next;
}
