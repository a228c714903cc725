/*
 * Direct placement of received TCP payload: in-order bytes go straight from the NIC's buffer
 * into the buffer of the receive waiting at the head of the socket's queue, one copy instead of
 * two (no stop in the connection's receive ring). The stack offers payload here only when its
 * ring holds nothing unread (tcp_rx_fn), so the stream's order is kept; what this does not take
 * goes to the ring as before. The receive itself completes the usual way, once the burst of
 * frames is done (xsock_serve_ready), with the bytes already counted in its result.
 */
#include <string.h>
#include <sys/socket.h>

#include "ops/xsock.h"

size_t xsock_rx_place(void *arg, struct tcb *t, const uint8_t *data, size_t len)
{
	struct xsock *xs = arg;
	struct xreq *r = xs ? xs->recvq.first : NULL;
	const struct xring_sqe *sqe;
	size_t room;

	(void) t;
	if (!r || r->opcode != XRING_OP_RECV || r->res < 0)
		return 0;
	sqe = &r->u.net.sqe;
	/* Provided buffers are picked when the receive completes; a peek leaves the data. */
	if ((sqe->flags & XRING_SQE_BUFFER_SELECT) || (sqe->msg_flags & MSG_PEEK))
		return 0;
	room = sqe->len - (uint32_t) r->res;
	if (len > room)
		len = room;
	memcpy((uint8_t *) (uintptr_t) sqe->addr + r->res, data, len);
	r->res += (int32_t) len;
	return len;
}
