/*
 * The host's neighbour table for a ring's stack on a port with a kernel netdev (AF_XDP,
 * verbs): when the stack's own ARP cache misses, the kernel's entry for the address on the
 * port's link is taken first (issue 5: a neighbour cache that also uses the kernel's table), so
 * a peer the host already talks to is reached without an ARP exchange. The stack still verifies
 * such an entry itself (it starts STALE). memif ports have no netdev and keep plain ARP.
 *
 * One netlink context per attachment, opened with it on the ring's thread (so in that thread's
 * network namespace), and read only on a miss: pending change notifications first, then the
 * cached table. No per-packet cost.
 */
#include <errno.h>
#include <string.h>

#include "nic/netlink.h"
#include "ops/netport.h"
#include "util/log.h"

void netport_neigh_open(struct netport *np)
{
	np->nlk = NULL;
	if (!np->xp->port->ifindex)
		return;
	if (nlk_open(&np->nlk) < 0) {
		np->nlk = NULL;
		log_debug("port %s: no netlink context; neighbours by ARP only",
			  np->xp->port->name);
	}
}

void netport_neigh_close(struct netport *np)
{
	if (np->nlk)
		nlk_close(np->nlk);
	np->nlk = NULL;
}

int netport_neigh_lookup(void *ctx, uint32_t ip, uint8_t mac[6])
{
	struct netport *np = ctx;
	struct nlk_neigh n;

	if (!np->nlk)
		return -ENOENT;
	(void) nlk_poll(np->nlk); /* the kernel's changes since the last miss */
	if (nlk_neigh_lookup(np->nlk, np->xp->port->ifindex, ip, &n) < 0)
		return -ENOENT;
	memcpy(mac, n.mac, 6);
	return 0;
}
