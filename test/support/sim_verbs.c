/*
 * The simulated link as two verbs ports (src/nic/verbs) on two softverbs devices joined by a
 * wire, each under the fault decorator on the simulation's virtual clock. Each node's stack
 * sends through its port's queue as netport does (tx_alloc, tx_post, one flush per pass) and
 * receives what rx_poll gives it, so every frame goes through ibv_post_send, the device's flow
 * steering and ibv_poll_cq.
 *
 * The fault model maps onto the decorator: on each port's TX, drop and duplicate at the model's
 * rates and every frame delayed by delay_ns (the link's one-way delay); on each port's RX,
 * corrupt and reorder at the model's rates, a reordered frame waiting up to reorder_ns for its
 * successor. Corruption is on RX, after the device made the frames (as on a wire): a TSO send
 * corrupted before the device cut it would get valid checksums. Unlike sim.c, corruption may hit
 * ARP frames too. The virtual clock jumps to the earliest of the stacks' timers and the
 * decorators' held frames (fault_next_due).
 *
 * Built with SIM_VERBS_TSO, the devices offer TSO and the stacks send TCP segments of up to
 * 16 KiB for the device to cut (as netport does on a TSO port).
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nic/fault.h"
#include "nic/verbs/verbs_port.h"
#include "softverbs.h"
#include "stack/wire/bytes.h"

#define IP(a, b, c, d) ((uint32_t) wire_be32((uint32_t) (a) << 24 | (b) << 16 | (c) << 8 | (d)))

#ifdef SIM_VERBS_TSO
#define SV_TSO 16384 /* send buffer size, so the largest TSO frame */
#else
#define SV_TSO 0
#endif

enum {
	SV_BUFS = 4096, /* receive and send buffers per port: a whole 1 MiB window in flight */
	SV_HOLD = 2048, /* frames the decorator may hold per direction */
	SV_PASSES = 100000,
};

uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double sim_uniform(struct sim *s)
{
	return (double) (sim_rand(s) >> 11) / (double) (1ull << 53);
}

static uint64_t vclock(void *arg)
{
	return ((struct sim *) arg)->now;
}

static struct port_queue *nq(struct sim_node *n)
{
	return n->port->queues[0];
}

static int dev_tx_alloc(void *arg, struct iface_txbuf *b)
{
	struct sim_node *n = arg;
	struct port_frame f;

	if (n->has_spare) {
		f = n->spare;
		n->has_spare = false;
	} else if (port_tx_alloc(nq(n), &f, 1) != 1) {
		port_tx_reap(nq(n), NULL, 0);
		if (port_tx_alloc(nq(n), &f, 1) != 1)
			return -ENOBUFS;
	}
	b->data = f.data;
	b->cap = f.len;
	b->len = 0;
	b->id = f.buf;
	return 0;
}

static void dev_tx_post(void *arg, const struct iface_txbuf *b)
{
	struct sim_node *n = arg;
	struct port_frame f = {.data = b->data, .len = b->len, .buf = (uint32_t) b->id};

	if (b->tso_mss) {
		f.flags = PORT_F_TX_TSO | PORT_F_TX_IP_CSUM | PORT_F_TX_L4_CSUM;
		f.tso_mss = b->tso_mss;
		f.l4_off = ETH_HLEN + IP4_HLEN;
	}
	if (port_tx_post(nq(n), &f, 1) != 1)
		nq(n)->stats.tx_drops++;
}

static void dev_tx_abort(void *arg, const struct iface_txbuf *b)
{
	struct sim_node *n = arg;

	n->spare = (struct port_frame){.data = b->data, .len = b->cap, .buf = (uint32_t) b->id};
	n->has_spare = true;
}

static const struct iface_dev_ops sim_dev_ops = {dev_tx_alloc, dev_tx_post, dev_tx_abort};

static uint32_t ppm(double p)
{
	return p <= 0 ? 0 : p >= 1 ? 1000000u : (uint32_t) (p * 1e6 + 0.5);
}

/* The verbs port of node i, steering its address's ARP, ICMP and TCP to queue 0, wrapped. */
static int node_port(struct sim *s, int i, uint64_t seed)
{
	char name[16], err[256];
	struct sv_dev_config dc = {
		.name = name, .mac = {2, 0, 0, 0, 0, (uint8_t) (1 + i)}, .tso = SV_TSO};
	struct port_verbs_config vc = {.dev = name,
				       .rx_bufs = SV_BUFS,
				       .tx_bufs = SV_BUFS,
				       .rx_batch = 64,
				       .tx_buf_size = SV_TSO,
				       .sysfs = "/nonexistent",
				       .ip = s->n[i].ip,
				       .prefix_len = 24};
	const enum port_rule_kind kinds[] = {PORT_RULE_ARP, PORT_RULE_ICMP, PORT_RULE_TCP};
	struct fault_config fc = {
		.seed = seed * 2 + (uint64_t) i,
		.tx = {.drop = ppm(s->f.drop), .duplicate = ppm(s->f.dup), .delay = 1000000},
		.rx = {.reorder = ppm(s->f.reorder), .corrupt = ppm(s->f.corrupt)},
		.delay_ns = s->f.delay_ns ? s->f.delay_ns : 1000,
		.reorder_ns = s->f.reorder_ns ? s->f.reorder_ns : 1000000,
		.hold = SV_HOLD,
		.now = vclock,
		.now_arg = s,
	};
	struct port *p;
	uint32_t h;
	int ret;

	snprintf(name, sizeof(name), "svsim%d", i);
	ret = sv_add(&dc);
	if (ret < 0)
		return ret;
	ret = port_verbs_open(&vc, &p, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "sim_verbs: %s\n", err);
		return ret;
	}
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct port_rule r = {.kind = kinds[k], .local_ip = s->n[i].ip};

		ret = p->ops->steer(p, &r, &h);
		if (ret) {
			p->ops->destroy(p);
			return ret;
		}
	}
	ret = fault_wrap(p, &fc, &s->n[i].port);
	if (ret)
		p->ops->destroy(p);
	return ret;
}

int sim_init(struct sim *s, uint64_t seed, const struct sim_faults *f,
	     const struct tcp_config *tcfg)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->rng = seed * 0x2545f4914f6cdd1dull + 1;
	s->f = *f;
	s->now = 1000000000ull;
	sv_reset();
	for (int i = 0; i < 2; i++) {
		struct sim_node *n = &s->n[i];
		struct iface_config c = {.prefix_len = 24, .ip_id = (uint16_t) (seed + i)};
		struct iface_hooks h = {
			.tcp_input = tcp_input, .icmp_error = tcp_icmp_error, .ctx = &n->st};
		struct tcp_config tc = *tcfg;

		n->ip = IP(198, 18, 0, 1 + i);
		c.ip = n->ip;
		c.mac[0] = 2;
		c.mac[5] = (uint8_t) (1 + i);
		for (int k = 0; k < 16; k++)
			tc.secret[k] = (uint8_t) (sim_rand(s) >> 13);
		ret = node_port(s, i, seed);
		if (!ret && (s->n[i].port->caps & PORT_CAP_TSO))
			c.tso_max = s->n[i].port->tso_max;
		if (!ret)
			ret = iface_init(&n->ifc, &c, (struct iface_dev){&sim_dev_ops, n}, &h);
		if (!ret)
			ret = tcp_init(&n->st, &tc, &n->ifc);
		if (ret)
			return ret;
	}
	return sv_connect(0, 1);
}

void sim_fini(struct sim *s)
{
	for (int i = 0; i < 2; i++) {
		tcp_fini(&s->n[i].st);
		iface_fini(&s->n[i].ifc);
		if (s->n[i].port)
			s->n[i].port->ops->destroy(s->n[i].port);
		s->n[i].port = NULL;
	}
	sv_reset();
}

static void count(struct sim *s)
{
	s->sent = s->dropped = s->duped = s->reordered = s->corrupted = 0;
	for (int i = 0; i < 2; i++) {
		struct fault_counters tx, rx;

		if (fault_get_counters(s->n[i].port, &tx, &rx))
			continue;
		s->sent += tx.frames;
		s->dropped += tx.dropped;
		s->duped += tx.duplicated;
		s->corrupted += rx.corrupted;
		s->reordered += rx.reordered;
	}
}

/* Flush both ports, then feed each stack what its port received, until nothing moves. */
static unsigned pass(struct sim *s)
{
	unsigned total = 0;

	for (unsigned k = 0; k < SV_PASSES; k++) {
		unsigned moved = 0;

		for (int i = 0; i < 2; i++)
			port_tx_flush(nq(&s->n[i]));
		for (int i = 0; i < 2; i++) {
			struct port_frame fr[32];
			int got = port_rx_poll(nq(&s->n[i]), fr, 32);

			for (int j = 0; j < got; j++)
				iface_input(&s->n[i].ifc, s->now, fr[j].data, fr[j].len, 0);
			if (got > 0) {
				port_rx_release(nq(&s->n[i]), fr, (unsigned) got);
				moved += (unsigned) got;
			}
			port_tx_reap(nq(&s->n[i]), NULL, 0);
		}
		total += moved;
		if (!moved)
			break;
	}
	s->delivered += total;
	return total;
}

unsigned sim_step(struct sim *s)
{
	unsigned n = pass(s);

	count(s);
	return n;
}

uint64_t sim_next(struct sim *s)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < 2; i++) {
		uint64_t a = tcp_poll(&s->n[i].st, s->now);
		uint64_t b = iface_poll(&s->n[i].ifc, s->now);

		next = a < next ? a : next;
		next = b < next ? b : next;
	}
	/* What the timers sent, and anything due now, moves at once. */
	if (pass(s))
		next = s->now;
	for (int i = 0; i < 2; i++) {
		uint64_t d = fault_next_due(s->n[i].port);

		next = d < next ? d : next;
	}
	count(s);
	return next;
}
