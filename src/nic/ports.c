#include <errno.h>
#include <pthread.h>

#include "nic/ports.h"

static struct xport table[PORTS_MAX];
static unsigned count; /* published with release after the entry is filled */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t prefix_mask(uint8_t len)
{
	return len == 0 ? 0 : __builtin_bswap32(~0u << (32 - len));
}

int ports_add(struct port *p, uint32_t gateway, struct xport **out)
{
	struct xport *xp;
	int ret = 0;

	if (!p || !p->ip || p->prefix_len > 32)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	if (count == PORTS_MAX) {
		ret = -ENOSPC;
		goto out;
	}
	xp = &table[count];
	xp->port = p;
	xp->ip = p->ip;
	xp->mask = prefix_mask(p->prefix_len);
	xp->gateway = gateway;
	xp->next_queue = 0;
	xp->id = count;
	__atomic_store_n(&count, count + 1, __ATOMIC_RELEASE);
	if (out)
		*out = xp;
out:
	pthread_mutex_unlock(&lock);
	return ret;
}

unsigned ports_count(void)
{
	return __atomic_load_n(&count, __ATOMIC_ACQUIRE);
}

struct xport *ports_route(uint32_t dst)
{
	unsigned n = ports_count();
	struct xport *best = NULL, *via_gw = NULL;

	for (unsigned i = 0; i < n; i++) {
		struct xport *xp = &table[i];

		if ((dst & xp->mask) == (xp->ip & xp->mask)) {
			if (!best || __builtin_popcount(xp->mask) > __builtin_popcount(best->mask))
				best = xp;
		} else if (xp->gateway && !via_gw) {
			via_gw = xp;
		}
	}
	return best ? best : via_gw;
}

struct xport *ports_by_addr(uint32_t ip)
{
	unsigned n = ports_count();

	for (unsigned i = 0; i < n; i++)
		if (table[i].ip == ip)
			return &table[i];
	return NULL;
}

struct port_queue *ports_take_queue(struct xport *xp)
{
	unsigned q;

	pthread_mutex_lock(&lock);
	q = xp->next_queue++ % xp->port->nqueues;
	pthread_mutex_unlock(&lock);
	return xp->port->queues[q];
}

void ports_reset(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < count; i++)
		if (table[i].port->ops->destroy)
			table[i].port->ops->destroy(table[i].port);
	__atomic_store_n(&count, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
}
