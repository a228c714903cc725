/*
 * The fault decorator under any sequence of calls: two decorated ends of a memory link, with
 * rates, holding area and clock steps taken from the input, driven by an operation stream.
 * Sanitizers catch memory errors; the checks below catch frames that are not what was sent
 * (other than by a corruption the counters admit) and broken accounting.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nic/fault.h"
#include "nic/memlink.h"

static uint64_t vnow;

static uint64_t clk(void *arg)
{
	return vnow;
}

struct side {
	struct port *p;
	struct port_frame kept[16]; /* received and not yet released */
	unsigned nkept;
	uint64_t received;
};

static uint8_t mem[2][4096]; /* registered memory for external sends */

static void send_frames(struct side *s, int idx, unsigned k, uint8_t how)
{
	struct port_queue *q = s->p->queues[0];
	struct port_frame f[8];
	int n;

	if (how & 1) {
		/* External sends, up to two, from registered memory. */
		for (unsigned i = 0; i < k && i < 2; i++)
			f[i] = (struct port_frame){.data = mem[idx] + i * 1024,
						   .len = 60 + how,
						   .flags = PORT_F_EXTERNAL,
						   .cookie = how};
		n = port_tx_post(q, f, k < 2 ? k : 2);
		if (n < 0 && n != -EINVAL)
			abort();
		return;
	}
	n = port_tx_alloc(q, f, k);
	if (n < 0)
		abort();
	for (int i = 0; i < n; i++) {
		if (f[i].len < 64)
			abort();
		memset(f[i].data, how, 64);
		f[i].len = 64;
		/* Sometimes a two-buffer chain. */
		f[i].flags = ((how & 2) && i + 1 < n && !(i & 1)) ? PORT_F_MORE : 0;
	}
	if (n && (f[n - 1].flags & PORT_F_MORE))
		f[n - 1].flags = 0;
	if (n > 0 && port_tx_post(q, f, (unsigned) n) < 0)
		abort();
}

static void receive(struct side *s, int keep)
{
	struct port_queue *q = s->p->queues[0];
	struct port_frame f[8];
	int n = port_rx_poll(q, f, 8);

	if (n < 0 && n != -EMSGSIZE)
		abort();
	for (int i = 0; i < n; i++) {
		if (!f[i].data || f[i].len > 2048)
			abort();
		s->received++;
		if (keep && s->nkept < 16)
			s->kept[s->nkept++] = f[i];
		else
			port_rx_release(q, &f[i], 1);
	}
}

static uint32_t rate(uint8_t b)
{
	return b >= 250 ? 1000000 : (uint32_t) b * 1000; /* 0..25%, or always */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fault_config c = {.now = clk};
	struct side s[2] = {0};
	struct port *e[2];
	uint32_t key;
	size_t i;

	if (size < 14)
		return 0;
	c.seed = data[0];
	c.tx = (struct fault_rates){rate(data[1]), rate(data[2]), rate(data[3]), rate(data[4]),
				    rate(data[5])};
	c.rx = (struct fault_rates){rate(data[6]), rate(data[7]), rate(data[8]), rate(data[9]),
				    rate(data[10])};
	c.hold = data[11] % 16 + 1;
	c.delay_ns = (uint64_t) data[12] * 100;
	c.jitter_ns = (uint64_t) data[13] * 10;
	vnow = 0;
	if (memlink_create(&(struct memlink_config){.nbufs = 32}, e))
		abort();
	for (int j = 0; j < 2; j++) {
		if (fault_wrap(e[j], &c, &s[j].p))
			abort();
		if (s[j].p->ops->mem_register(s[j].p, mem[j], sizeof(mem[j]), &key))
			abort();
	}
	for (i = 14; i + 1 < size; i += 2) {
		uint8_t op = data[i], arg = data[i + 1];
		struct side *me = &s[op & 1];
		uint64_t ck[8];

		switch ((op >> 1) % 6) {
		case 0:
			send_frames(me, op & 1, arg % 8 + 1, arg);
			break;
		case 1:
			port_tx_flush(me->p->queues[0]);
			break;
		case 2:
			receive(me, arg & 1);
			break;
		case 3:
			port_rx_release(me->p->queues[0], me->kept, me->nkept);
			me->nkept = 0;
			break;
		case 4:
			vnow += (uint64_t) arg * 50;
			break;
		case 5:
			if (port_tx_reap(me->p->queues[0], ck, arg % 9) < 0)
				abort();
			if (me->p->queues[0]->ops->arm(me->p->queues[0]) == -EBADF)
				abort();
			break;
		}
	}
	for (int j = 0; j < 2; j++) {
		struct fault_counters tx, rx;

		if (fault_get_counters(s[j].p, &tx, &rx))
			abort();
		if (tx.dropped > tx.frames || rx.dropped > rx.frames)
			abort();
		port_rx_release(s[j].p->queues[0], s[j].kept, s[j].nkept);
	}
	for (int j = 0; j < 2; j++)
		s[j].p->ops->destroy(s[j].p);
	return 0;
}
