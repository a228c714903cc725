/*
 * Offloaded sockets when their port fails and recovers. A port reports its state through its
 * queue's rx_poll(): -ENETDOWN while the link is down (verbs: IBV_EVENT_PORT_ERR), -EIO once
 * the device failed (IBV_EVENT_DEVICE_FATAL, a QP or CQ error), until an idle poll returns 0
 * again (IBV_EVENT_PORT_ACTIVE; a failed device never recovers).
 *
 * Entering a state, every request waiting on a socket of that attachment ends with it: a
 * pending connect (its half-open connection is dropped, so the socket may connect again once
 * the port is back), sends waiting for room, receives (single and multishot), accepts; a TCP
 * send or receive that moved bytes already ends with their count instead. While the
 * state lasts, new operations on those sockets end with it at once, except close and shutdown,
 * and no socket is newly offloaded through the port (its connect or bind answers the error).
 *
 * Why these errors: -ENETDOWN is what Linux answers a send through an interface that is down,
 * and an application written for the kernel already treats it as "the network went away, maybe
 * for a while"; -EIO says the device itself is gone. Linux leaves receives and established
 * connections alone on a link flap; here a waiting receive ends too, so an event loop learns of
 * the outage without sending, but established connections survive a port-down: the data they
 * hold is kept and resent once the link is back, and a new receive then reads on. A device
 * failure drops every connection of the attachment (nothing can be resent on a dead device).
 */
#include <errno.h>

#include "ops/xsock.h"
#include "util/log.h"

bool xsock_port_refuses(uint8_t opcode)
{
	return opcode != XRING_OP_CLOSE && opcode != XRING_OP_SHUTDOWN &&
	       opcode != XRING_OP_POLL_ADD;
}

static void drop_connection(struct xsock *xs)
{
	tcp_set_cb(xs->tcb, NULL, NULL);
	tcp_abort(xs->tcb, clock_mono_ns());
	xs->tcb = NULL;
}

void xsock_port_state(struct netport *np, int err)
{
	struct xring_ctx *ctx = np->ctx;
	int was = np->port_err;

	np->port_err = err;
	if (!err) {
		log_info("port %s: back up, offloaded sockets on queue %u carry on",
			 np->xp->port->name, np->q->index);
		return;
	}
	log_warn("port %s: %s, failing the waiting operations of its sockets on queue %u",
		 np->xp->port->name, err == -ENETDOWN ? "link down" : "device failed",
		 np->q->index);
	if (!ctx->xsocks || was == err)
		return;
	for (unsigned i = 0; i < ctx->xsocks->nfd; i++) {
		struct xsock *xs = ctx->xsocks->by_fd[i];

		if (!xs || xs->np != np)
			continue;
		if (xs->tcb && !xs->listening && (xs->connecting || err == -EIO))
			drop_connection(xs);
		xsock_fail_waiters(ctx, xs, err);
	}
}
