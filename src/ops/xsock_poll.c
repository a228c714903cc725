/*
 * Polling. POLL_ADD on an offloaded socket waits on the socket itself: its readiness is what
 * Linux's tcp_poll() / udp_poll() would report for the same state (see xpoll_mask), single-shot
 * or multishot (a CQE with F_MORE each time an event of the stack makes a wanted bit true).
 *
 * POLL_REMOVE (removal, and the update of a poll's events or user_data) finds its poll by
 * user_data among the ring's requests. That is xring's work for every poll, not only offloaded
 * ones: a poll on a kernel file is known to the kernel ring by the request's address, never by
 * the application's user_data, so a POLL_REMOVE passed through unchanged would find nothing.
 * It is rewritten to name the request the kernel knows, and a user_data update stays in xring
 * (which posts the CQEs under its own user_data anyway).
 */
#include <errno.h>
#include <poll.h>

#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"
#include "ring/ring.h"
#include "stack/tcp/tcp.h"

/* Bits a poll always hears, as the kernel's (io_uring/poll.c). */
#define POLL_ALWAYS (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)
#define PM_IN       (POLLIN | POLLRDNORM)
#define PM_OUT      (POLLOUT | POLLWRNORM)

uint32_t xpoll_mask(const struct xsock *xs)
{
	enum tcp_state st;
	unsigned ev, sh;
	uint32_t m = xs->np->port_err ? POLLERR : 0; /* the port is down or failed */

	if (xs->type == SOCK_DGRAM)
		return m | PM_OUT | (xs->rx_head != xs->rx_tail ? PM_IN : 0);
	if (!xs->tcb) /* bound, neither connecting nor listening: Linux's TCP_CLOSE */
		return m | PM_OUT | POLLHUP;
	if (xs->listening)
		return m | ((tcp_events(xs->tcb) & TCP_EV_ACCEPT) ? PM_IN : 0);
	ev = tcp_events(xs->tcb);
	sh = tcp_shutdowns(xs->tcb);
	st = tcp_state(xs->tcb);
	/* Until a receive or send has reported it (sock_error() clears sk_err). */
	if (tcp_error(xs->tcb) && !xs->err_taken)
		m |= POLLERR;
	if (sh == (TCP_SHUT_RD | TCP_SHUT_WR) || st == TCPS_CLOSED)
		m |= POLLHUP;
	if (sh & TCP_SHUT_RD)
		m |= PM_IN | POLLRDHUP;
	if (st != TCPS_SYN_SENT && st != TCPS_SYN_RCVD) {
		if (ev & TCP_EV_READABLE)
			m |= PM_IN;
		/* A socket that can send no more is "writable": a send fails at once. */
		if ((sh & TCP_SHUT_WR) || (ev & TCP_EV_WRITABLE))
			m |= PM_OUT;
	}
	return m;
}

static uint32_t wanted(const struct xreq *r)
{
	return (r->u.net.sqe.poll32_events & 0xffff) | POLL_ALWAYS;
}

static bool multishot(const struct xreq *r)
{
	return r->u.net.sqe.len & XRING_POLL_ADD_MULTI;
}

int xpoll_prep(const struct xring_sqe *sqe)
{
	/* The kernel's rules (io_poll_add_prep). */
	if (sqe->buf_index || sqe->off || sqe->addr)
		return -EINVAL;
	if (sqe->len & ~XRING_POLL_ADD_MULTI)
		return -EINVAL;
	if ((sqe->len & XRING_POLL_ADD_MULTI) && (sqe->flags & XRING_SQE_CQE_SKIP_SUCCESS))
		return -EINVAL;
	return 0;
}

/* Ready now: a single-shot poll ends with the mask, a multishot one posts it and stays. */
int64_t xpoll_issue(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req)
{
	uint32_t m = xpoll_mask(xs) & wanted(req);

	if (m && !multishot(req))
		return m;
	if (m)
		req_post_more(ctx, req, (int32_t) m, 0);
	wlist_add_tail(&xs->pollq, req);
	return OP_QUEUED;
}

void xpoll_wake(struct xsock *xs, uint32_t hint)
{
	struct xreq *r, *next;
	uint32_t m;

	if (!xs->pollq.first)
		return;
	m = xpoll_mask(xs);
	/* Newest first, as the kernel's wait queue wakes its polls. */
	for (r = xs->pollq.last; r; r = next) {
		uint32_t got = m & wanted(r);

		next = r->wprev;
		if (!got || !(hint & wanted(r)))
			continue;
		if (multishot(r)) {
			req_post_more(xs->ctx, r, (int32_t) got, 0);
			continue;
		}
		wlist_del(&xs->pollq, r);
		req_complete(xs->ctx, r, (int32_t) got, 0);
	}
}

uint32_t xpoll_hint(unsigned tcp_events)
{
	uint32_t h = 0;

	if (tcp_events & (TCP_EV_ERROR | TCP_EV_CLOSED))
		return ~0u;
	if (tcp_events & (TCP_EV_READABLE | TCP_EV_ACCEPT))
		h |= PM_IN | POLLRDHUP;
	if (tcp_events & (TCP_EV_WRITABLE | TCP_EV_CONNECTED))
		h |= PM_OUT;
	return h;
}

/* POLL_REMOVE */

#define REMOVE_FLAGS (XRING_POLL_UPDATE_EVENTS | XRING_POLL_UPDATE_USER_DATA | XRING_POLL_ADD_MULTI)

static int remove_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	uint32_t flags = sqe->len;

	(void) ctx;
	/* The kernel's rules (io_poll_remove_prep). */
	if (sqe->buf_index || sqe->splice_fd_in)
		return -EINVAL;
	if ((flags & ~REMOVE_FLAGS) || flags == XRING_POLL_ADD_MULTI)
		return -EINVAL;
	if (!(flags & XRING_POLL_UPDATE_USER_DATA) && sqe->off)
		return -EINVAL;
	if (!(flags & XRING_POLL_UPDATE_EVENTS) && sqe->poll32_events)
		return -EINVAL;
	req->u.sqe = *sqe;
	return 0;
}

static struct xreq *find_poll(struct xring_ctx *ctx, uint64_t user_data)
{
	for (struct xreq *r = ctx->pending.first; r; r = r->lnext)
		if (r->opcode == XRING_OP_POLL_ADD && r->user_data == user_data &&
		    (r->op == &op_passthrough || r->op == xsock_op(XRING_OP_POLL_ADD)))
			return r;
	return NULL;
}

/* A poll on an offloaded socket: all of it happens here. */
static int64_t remove_ours(struct xring_ctx *ctx, struct xreq *p, uint32_t flags,
			   const struct xring_sqe *sqe)
{
	struct xsock *xs = p->u.net.xs;
	uint32_t m;

	if (flags & XRING_POLL_UPDATE_USER_DATA)
		p->user_data = sqe->off;
	if (!(flags & (XRING_POLL_UPDATE_EVENTS | XRING_POLL_UPDATE_USER_DATA))) {
		if (req_try_cancel(ctx, p) == 0)
			req_complete_later(ctx, p, -ECANCELED);
		return 0;
	}
	if (flags & XRING_POLL_UPDATE_EVENTS) {
		/* The event bits change; single- or multishot stays as it was armed. */
		p->u.net.sqe.poll32_events =
			(p->u.net.sqe.poll32_events & ~0xffffu) | (sqe->poll32_events & 0xffff);
		/* Re-armed as the kernel does: ready now, it fires now. */
		m = xpoll_mask(xs) & wanted(p);
		if (m && !multishot(p)) {
			wlist_del(&xs->pollq, p);
			req_complete_later(ctx, p, (int32_t) m);
		} else if (m) {
			req_post_more(ctx, p, (int32_t) m, 0);
		}
	}
	return 0;
}

static int64_t remove_issue(struct xring_ctx *ctx, struct xreq *req)
{
	struct xring_sqe k = req->u.sqe;
	uint32_t flags = k.len;
	struct xreq *p = find_poll(ctx, k.addr);
	int err;

	if (!p)
		return -ENOENT;
	if (p->op != &op_passthrough)
		return remove_ours(ctx, p, flags, &k);
	/* The kernel's poll: user_data is xring's to change; the rest goes to the kernel,
	 * naming the request by the address it knows. */
	if (flags & XRING_POLL_UPDATE_USER_DATA) {
		p->user_data = k.off;
		if (!(flags & XRING_POLL_UPDATE_EVENTS))
			return 0;
	}
	k.addr = (uint64_t) (uintptr_t) p;
	k.off = 0;
	k.len = flags & ~XRING_POLL_UPDATE_USER_DATA;
	err = op_passthrough.prep(ctx, req, &k);
	if (err)
		return err;
	return op_passthrough.issue(ctx, req);
}

const struct xring_op op_poll_remove = {
	.name = "POLL_REMOVE",
	.prep = remove_prep,
	.issue = remove_issue,
};
