/*
 * send_zc on offloaded TCP sockets: the stack reads the payload from the application's buffer
 * (tcp_send_ref) until the peer acknowledges it, so the F_NOTIF completion, which frees the
 * buffer, waits for that ACK. The result CQE (F_MORE) is posted as soon as the stack has taken
 * every byte, as the kernel posts it once the data is queued. Parked notifications wait on the
 * socket's zcq in stream order, each with the stream offset of its last byte.
 */
#include <errno.h>

#include "ops/xsock.h"

/* Stream offsets fit in 32 bits with serial arithmetic: far less than 2 GiB is ever unacked. */
static bool covered(uint32_t end, uint64_t acked)
{
	return (int32_t) ((uint32_t) acked - end) >= 0;
}

static void notify(struct xring_ctx *ctx, struct xsock *xs, struct xreq *r)
{
	wlist_del(&xs->zcq, r);
	r->u.net.xs = NULL;
	/* The bytes were lent, not copied: REPORT_USAGE hears 0, not ZC_COPIED. */
	req_complete(ctx, r, 0, XRING_CQE_F_NOTIF);
}

int64_t xsock_zc_park(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req, int64_t res)
{
	if (res < 0 || !xs->tcb || (req->flags & REQ_F_FAIL))
		return res; /* a failed send: its notification follows at once */
	/* Every byte of req is queued and nothing after it yet: its end is the queue's end. */
	req->res = (int32_t) (uint32_t) tcp_queued(xs->tcb);
	req->cflags = XRING_CQE_F_NOTIF;
	if (covered((uint32_t) req->res, tcp_acked(xs->tcb)))
		return res;
	wlist_add_tail(&xs->zcq, req);
	req->flags |= REQ_F_RESULT_OUT;
	/* In the kernel the notification is a request of its own: what is linked after a send_zc
	 * starts at its result, not once the peer has acknowledged the data. */
	req_release_link(ctx, req);
	return OP_QUEUED;
}

bool xsock_zc_wait(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req, uint32_t end)
{
	if (!xs->tcb || tcp_error(xs->tcb) || covered(end, tcp_acked(xs->tcb)))
		return false;
	req->res = (int32_t) end;
	req->cflags = XRING_CQE_F_NOTIF;
	/* Sends queued since it stopped may have parked already, with later ends: its
	 * notification then waits for theirs too, never the other way round. */
	wlist_add_tail(&xs->zcq, req);
	req->flags |= REQ_F_RESULT_OUT;
	req_release_link(ctx, req);
	return true;
}

void xsock_zc_acked(struct xsock *xs)
{
	uint64_t acked = tcp_acked(xs->tcb);

	while (xs->zcq.first && covered((uint32_t) xs->zcq.first->res, acked))
		notify(xs->ctx, xs, xs->zcq.first);
}

void xsock_zc_flush(struct xsock *xs)
{
	/* The connection failed, or close paid the loans back (tcp_zc_release): no buffer of
	 * these requests is read any more. */
	while (xs->zcq.first)
		notify(xs->ctx, xs, xs->zcq.first);
}

bool xsock_zc_parked(const struct xreq *req)
{
	return req->cflags & XRING_CQE_F_NOTIF;
}
