/*
 * The process-wide port table: the ports xring's sockets may leave through, shared by every
 * ring of the process. Registration is rare and takes a lock; lookups after that read an
 * append-only array without one. Each ring that uses a port takes one of its queues.
 */
#ifndef XRING_NIC_PORTS_H
#define XRING_NIC_PORTS_H

#include <stdint.h>

#include "nic/port.h"

#define PORTS_MAX 16

struct xport {
	struct port *port;
	uint32_t ip, mask; /* the port's address and connected subnet, network order */
	uint32_t gateway;  /* a next hop for everything else, 0 for none */
	unsigned next_queue;
	unsigned id;
};

/* Adds a port, taking it over (it is destroyed at exit). 0, -ENOSPC, -EINVAL (no address). */
int ports_add(struct port *p, uint32_t gateway, struct xport **out);
/* The port whose subnet holds dst, longest prefix first, then one with a gateway. NULL when
 * no port reaches it. */
struct xport *ports_route(uint32_t dst);
/* The port that owns the local address ip, or NULL. */
struct xport *ports_by_addr(uint32_t ip);
unsigned ports_count(void);
/* A queue of the port for a new ring: queues are handed out round robin. */
struct port_queue *ports_take_queue(struct xport *xp);
/* Destroys every port (tests). */
void ports_reset(void);

#endif
