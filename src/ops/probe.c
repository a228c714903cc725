/* The probe: which opcodes a ring accepts, and which of them xring runs without the kernel. */
#include <errno.h>
#include <stdlib.h>

#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"

/* What an offloaded socket serves today (others answer -EOPNOTSUPP on it). */
static bool offloaded(unsigned op)
{
	switch (op) {
	case XRING_OP_SEND:
	case XRING_OP_SENDMSG:
	case XRING_OP_SEND_ZC:
	case XRING_OP_SENDMSG_ZC:
	case XRING_OP_RECV:
	case XRING_OP_RECVMSG:
	case XRING_OP_CONNECT:
	case XRING_OP_BIND:
	case XRING_OP_LISTEN:
	case XRING_OP_ACCEPT:
	case XRING_OP_SHUTDOWN:
	case XRING_OP_CLOSE:
		return true;
	default:
		return false;
	}
}

XRING_API struct xring_probe *xring_get_probe(struct xring *ring)
{
	struct kring *kr = ring->ctx->kr;
	struct xring_probe *p = calloc(1, sizeof(*p) + 256 * sizeof(struct xring_probe_op));

	if (!p)
		return NULL;
	p->ops_len = 255;
	for (unsigned op = 0; op < 255; op++) {
		bool kernel = kr && !kr->broken && (kr->supported[op / 8] & (1u << (op % 8)));
		/* CONNECT, BIND and ACCEPT have entries only to decide offload; the kernel runs
		 * them otherwise. */
		bool own = ops_table[op] && ops_table[op] != &op_connect &&
			   ops_table[op] != &op_bind && ops_table[op] != &op_accept;
		uint16_t flags = 0;

		p->ops[op].op = (uint8_t) op;
		if (own || kernel)
			flags |= XRING_PROBE_OP_SUPPORTED;
		if (own)
			flags |= XRING_PROBE_OP_IN_XRING;
		if (offloaded(op) && ports_count())
			flags |= XRING_PROBE_OP_OFFLOADED;
		p->ops[op].flags = flags;
		if (flags & XRING_PROBE_OP_SUPPORTED)
			p->last_op = (uint8_t) op;
	}
	return p;
}

XRING_API void xring_free_probe(struct xring_probe *probe)
{
	free(probe);
}
