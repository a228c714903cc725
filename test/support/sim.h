/*
 * Deterministic simulation of two stacks (interface + TCP) joined by an in-memory link with a
 * seeded fault model, driven by a virtual clock that jumps to the next event. Test support
 * only: it allocates freely.
 *
 * Two implementations of this interface: sim.c, whose link is a list of frames in memory, and
 * sim_verbs.c, whose link is a pair of verbs ports on two softverbs devices joined by a wire,
 * each port under the fault decorator (nic/fault.h) on the same virtual clock.
 */
#ifndef XRING_TEST_SIM_H
#define XRING_TEST_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "nic/port.h"
#include "stack/iface/iface.h"
#include "stack/iface/txq.h"
#include "stack/tcp/tcp.h"

struct sim_faults {
	double drop, dup, reorder, corrupt; /* probabilities per frame; corrupt: IPv4 only */
	uint64_t delay_ns;                  /* one-way base delay */
	uint64_t reorder_ns; /* extra delay, uniform in [0, reorder_ns), of a reordered frame */
};

struct sim_node {
	struct txq q;
	struct iface ifc;
	struct tcp_stack st;
	uint32_t ip;
	/* sim_verbs.c: the node's verbs port (under the fault decorator) instead of q */
	struct port *port;
	struct port_frame spare; /* a send buffer taken and not used (iface tx_abort) */
	bool has_spare;
};

struct sim_frame {
	uint64_t at;
	uint32_t len;
	uint8_t to;
	uint8_t data[1536];
};

struct sim {
	struct sim_node n[2];
	struct sim_frame *fr;
	unsigned nfr, cap;
	uint64_t now, rng;
	struct sim_faults f;
	bool trace;
	uint64_t sent, dropped, duped, reordered, corrupted, delivered, link_full;
};

uint64_t sim_rand(struct sim *s);
double sim_uniform(struct sim *s);

/* Node 0 is 198.18.0.1, node 1 198.18.0.2, both /24; tcfg applies to both stacks. */
int sim_init(struct sim *s, uint64_t seed, const struct sim_faults *f,
	     const struct tcp_config *tcfg);
void sim_fini(struct sim *s);

/* Move frames the nodes sent onto the link, then deliver every frame due at s->now.
 * Returns the number of frames delivered. */
unsigned sim_step(struct sim *s);

/* The earliest time anything wants to happen (a frame arrives, a timer fires), UINT64_MAX when
 * nothing is pending. */
uint64_t sim_next(struct sim *s);

#endif
