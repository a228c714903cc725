/*
 * Shared steering rules. An offloaded socket's frames reach its ring by a rule on its local
 * address and port (a 3-tuple: any remote may reach it), and several sockets need the same rule
 * at once: a listener and the connections it accepted, a closed connection still finishing its
 * FIN exchange and a new socket the kernel gave the same port. So a rule is counted: the port
 * holds it while anyone does, and each user lets go on its own (netport_steer_put).
 *
 * Rules come and go with connections, not with packets: the table is a hash of short chains,
 * grown by malloc at those moments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "ops/netport.h"

struct steer_ent {
	struct port_rule rule;
	uint32_t handle; /* the port's */
	uint32_t refs;
	struct steer_ent *next;
};

#define STEER_BUCKETS 1024u

static bool same(const struct port_rule *a, const struct port_rule *b)
{
	return a->kind == b->kind && a->local_ip == b->local_ip && a->remote_ip == b->remote_ip &&
	       a->local_port == b->local_port && a->remote_port == b->remote_port;
}

static struct steer_ent **bucket(struct netport *np, const struct port_rule *r)
{
	uint32_t h = (r->local_ip ^ r->remote_ip) * 2654435761u ^
		     ((uint32_t) r->local_port << 16 | r->remote_port) ^ (uint32_t) r->kind;

	return &np->steers[(h ^ h >> 15) % STEER_BUCKETS];
}

int netport_steer_get(struct netport *np, const struct port_rule *rule)
{
	struct steer_ent **b, *e;
	int err;

	if (!np->xp->port->ops->steer)
		return -EOPNOTSUPP; /* the port delivers everything: nothing to hold */
	if (!np->steers && !(np->steers = calloc(STEER_BUCKETS, sizeof(*np->steers))))
		return -ENOMEM;
	b = bucket(np, rule);
	for (e = *b; e; e = e->next)
		if (same(&e->rule, rule)) {
			e->refs++;
			return 0;
		}
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	err = netport_steer(np, rule, &e->handle);
	if (err) {
		free(e);
		return err;
	}
	e->rule = *rule;
	e->refs = 1;
	e->next = *b;
	*b = e;
	return 0;
}

void netport_steer_put(struct netport *np, const struct port_rule *rule)
{
	struct steer_ent **pp, *e;

	if (!np->steers)
		return;
	for (pp = bucket(np, rule); (e = *pp); pp = &e->next)
		if (same(&e->rule, rule)) {
			if (--e->refs)
				return;
			*pp = e->next;
			netport_unsteer(np, e->handle);
			free(e);
			return;
		}
}

/* The stack's orphan hook: a steered socket's connection, closed with tcp_close_watch() and
 * finishing alone, is over (its FIN exchange ended in TIME_WAIT, or it ended otherwise); the
 * socket's reference on its rule goes. */
static void orphan_end(void *arg, struct tcb *t)
{
	struct port_rule r = {.kind = PORT_RULE_TCP};
	uint16_t lport;

	tcp_endpoints(t, &r.local_ip, &lport, NULL, NULL);
	r.local_port = htons(lport);
	netport_steer_put(arg, &r);
}

void netport_steer_init(struct netport *np)
{
	tcp_set_orphan_hook(&np->tcp, orphan_end, np);
}

unsigned netport_steer_count(const struct netport *np)
{
	unsigned n = 0;

	for (unsigned i = 0; np->steers && i < STEER_BUCKETS; i++)
		for (const struct steer_ent *e = np->steers[i]; e; e = e->next)
			n++;
	return n;
}

void netport_steer_exit(struct netport *np)
{
	if (!np->steers)
		return;
	for (unsigned i = 0; i < STEER_BUCKETS; i++)
		while (np->steers[i]) {
			struct steer_ent *e = np->steers[i];

			np->steers[i] = e->next;
			netport_unsteer(np, e->handle); /* the port outlives the ring */
			free(e);
		}
	free(np->steers);
	np->steers = NULL;
}
