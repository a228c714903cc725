#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conf/proc.h"
#include "files/files.h"
#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"
#include "stack/wire/udp.h"
#include "stats/stats.h"
#include "util/log.h"

static unsigned hash_port(uint16_t port)
{
	return port % XSOCK_HASH;
}

struct xsock *xsock_by_fd(struct xring_ctx *ctx, int fd)
{
	if (!ctx->xsocks || fd < 0 || (unsigned) fd >= ctx->xsocks->nfd)
		return NULL;
	return ctx->xsocks->by_fd[fd];
}

/* Room in the descriptor table for fd. */
static int fd_room(struct xsock_table *tab, int fd)
{
	unsigned n = tab->nfd ? tab->nfd : 64;
	struct xsock **t;

	if ((unsigned) fd < tab->nfd)
		return 0;
	while (n <= (unsigned) fd)
		n *= 2;
	t = realloc(tab->by_fd, n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + tab->nfd, 0, (n - tab->nfd) * sizeof(*t));
	tab->by_fd = t;
	tab->nfd = n;
	return 0;
}

static struct xsock *by_port(struct xring_ctx *ctx, uint32_t ip, uint16_t port)
{
	struct xsock *xs;

	for (xs = ctx->xsocks->by_port[hash_port(port)]; xs; xs = xs->port_next)
		if (xs->lport == port && (xs->lip == ip || xs->lip == 0))
			return xs;
	return NULL;
}

static int xsock_new(struct xring_ctx *ctx, int fd, int type, struct netport *np, uint32_t lip,
		     uint16_t lport, struct xsock **out)
{
	struct xsock *xs;

	if (!ctx->xsocks) {
		ctx->xsocks = calloc(1, sizeof(*ctx->xsocks));
		if (!ctx->xsocks)
			return -ENOMEM;
	}
	if (type == SOCK_DGRAM && by_port(ctx, lip, lport))
		return -EADDRINUSE;
	if (fd != XSOCK_FD_NONE && (fd < 0 || fd_room(ctx->xsocks, fd)))
		return fd < 0 ? -EBADF : -ENOMEM;
	if (fd >= 0 && ctx->xsocks->by_fd[fd])
		xsock_free(ctx, ctx->xsocks->by_fd[fd]); /* its descriptor was closed behind us */
	xs = calloc(1, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	xs->fd = fd >= 0 ? fd : -1;
	xs->slot = -1;
	xs->type = type;
	xs->ctx = ctx;
	xs->np = np;
	xs->lip = lip;
	xs->lport = lport;
	if (fd >= 0)
		ctx->xsocks->by_fd[fd] = xs;
	/* UDP demultiplexes here; TCP inside its stack. */
	if (type == SOCK_DGRAM) {
		xs->port_next = ctx->xsocks->by_port[hash_port(lport)];
		ctx->xsocks->by_port[hash_port(lport)] = xs;
	}
	ctx->xsocks->n++;
	stats_sock_open(xs);
	*out = xs;
	return 0;
}

static bool is_zc(const struct xreq *req);

/* A waiting request ends with res, after the current round (its socket may be going away). A
 * send_zc posts its result with F_MORE and its notification (xs_end): the socket is gone or
 * failed, so no buffer is read any more. */
static void cancel_waiter(struct xring_ctx *ctx, struct xreq *r, int32_t res)
{
	r->u.net.xs = NULL;
	if (r->flags & REQ_F_PENDING) {
		list_del(&ctx->pending, r);
		r->flags &= ~REQ_F_PENDING;
	}
	if (is_zc(r)) {
		r->u.net.moved = r->res > 0 ? (uint32_t) r->res : 0;
		r->flags |= REQ_F_OWN_END;
	}
	req_complete_later(ctx, r, res);
}

static void fail_all(struct xring_ctx *ctx, struct req_wlist *q, int32_t res)
{
	while (q->first) {
		struct xreq *r = q->first;

		wlist_del(q, r);
		cancel_waiter(ctx, r, res);
	}
}

void xsock_unhash_fd(struct xring_ctx *ctx, struct xsock *xs)
{
	if ((unsigned) xs->fd < ctx->xsocks->nfd && ctx->xsocks->by_fd[xs->fd] == xs)
		ctx->xsocks->by_fd[xs->fd] = NULL;
	xs->fd = -1;
	if (xs->slot >= 0) /* still named by its slot; otherwise it is closing under its fd */
		stats_sock_ident(xs);
}

/* Pending requests end with -ECANCELED: the socket they wait on is gone. */
void xsock_free(struct xring_ctx *ctx, struct xsock *xs)
{
	struct xsock **pp;

	stats_sock_close(xs);
	if (xs->slot >= 0)
		xdirect_unslot(ctx, xs);
	if (xs->fd >= 0)
		xsock_unhash_fd(ctx, xs);
	if (xs->type == SOCK_DGRAM)
		for (pp = &ctx->xsocks->by_port[hash_port(xs->lport)]; *pp; pp = &(*pp)->port_next)
			if (*pp == xs) {
				*pp = xs->port_next;
				break;
			}
	ctx->xsocks->n--;
	if (xs->on_ready)
		for (struct xsock **rp = &xs->np->ready; *rp; rp = &(*rp)->ready_next)
			if (*rp == xs) {
				*rp = xs->ready_next;
				break;
			}
	if (xs->tcb) {
		/* The connection closes gracefully on its own; nothing may call back into xs. Its
		 * steering rule stays until the FIN exchange is over: those frames are ours. */
		tcp_set_cb(xs->tcb, NULL, NULL);
		if (xs->steered && !xs->listening) {
			tcp_close_watch(xs->tcb, clock_mono_ns());
			xs->steered = false; /* the connection holds the reference now */
		} else {
			tcp_close(xs->tcb, clock_mono_ns());
		}
	}
	if (xs->steered) /* a listener (nothing to finish) or a socket with no connection */
		netport_steer_put(xs->np, &(struct port_rule){XSOCK_RULE(xs)});
	xsock_zc_flush(xs); /* tcp_close() paid every loan back */
	if (xs->connecting) {
		cancel_waiter(ctx, xs->connecting, -ECANCELED);
		xs->connecting = NULL;
	}
	fail_all(ctx, &xs->recvq, -ECANCELED);
	fail_all(ctx, &xs->sendq, -ECANCELED);
	fail_all(ctx, &xs->acceptq, -ECANCELED);
	fail_all(ctx, &xs->pollq, -ECANCELED);
	while (xs->zcc.first) { /* tcp_close() paid their loans back too */
		struct xreq *r = xs->zcc.first;

		wlist_del(&xs->zcc, r);
		r->u.net.xs = NULL;
	}
	free(xs->rx);
	free(xs);
}

static bool selects(const struct xreq *req);
static int64_t zc_result(struct xring_ctx *ctx, struct xreq *req, int64_t res);

/* TCP sends and receives that moved bytes already end with their count, as on a kernel
 * socket: those bytes are in the stream or the buffer, and the connection may go on. */
static void fail_moved(struct xring_ctx *ctx, struct req_wlist *q, int32_t res)
{
	while (q->first) {
		struct xreq *r = q->first;
		int64_t v;

		wlist_del(q, r);
		if ((r->res <= 0 && !is_zc(r)) || selects(r)) {
			cancel_waiter(ctx, r, res);
			continue;
		}
		v = zc_result(ctx, r, r->res > 0 ? r->res : res);
		r->u.net.xs = NULL;
		if (r->flags & REQ_F_PENDING) {
			list_del(&ctx->pending, r);
			r->flags &= ~REQ_F_PENDING;
		}
		req_complete(ctx, r, (int32_t) v, r->cflags);
	}
}

void xsock_fail_waiters(struct xring_ctx *ctx, struct xsock *xs, int32_t res)
{
	if (xs->connecting) {
		cancel_waiter(ctx, xs->connecting, res);
		xs->connecting = NULL;
	}
	if (xs->type == SOCK_STREAM) {
		fail_moved(ctx, &xs->recvq, res);
		fail_moved(ctx, &xs->sendq, res);
	} else {
		fail_all(ctx, &xs->recvq, res);
		fail_all(ctx, &xs->sendq, res);
	}
	fail_all(ctx, &xs->acceptq, res);
}

void xsock_exit(struct xring_ctx *ctx)
{
	if (!ctx->xsocks)
		return;
	xdirect_exit(ctx);
	for (unsigned i = 0; i < ctx->xsocks->nfd; i++)
		if (ctx->xsocks->by_fd[i])
			xsock_free(ctx, ctx->xsocks->by_fd[i]);
	free(ctx->xsocks->by_fd);
	free(ctx->xsocks);
	ctx->xsocks = NULL;
}

/* Reads the sockaddr an SQE points to, as the kernel copies it at prep. */
static int read_addr(struct xreq *req, uint64_t addr, uint32_t len)
{
	req->u.net.addrlen = 0;
	if (!addr || len < sizeof(sa_family_t))
		return 0;
	if (len > sizeof(req->u.net.addr))
		len = sizeof(req->u.net.addr);
	memcpy(req->u.net.addr, (const void *) (uintptr_t) addr, len);
	req->u.net.addrlen = len;
	return 0;
}

static const struct sockaddr_in *addr_in(const struct xreq *req)
{
	const struct sockaddr_in *sin = (const void *) req->u.net.addr;

	if (req->u.net.addrlen < sizeof(*sin) || sin->sin_family != AF_INET)
		return NULL;
	return sin;
}

/* SOCK_DGRAM or SOCK_STREAM for an AF_INET UDP or TCP socket, else 0. */
static int sock_type(int fd)
{
	int type = 0, domain = 0, proto = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    (type != SOCK_DGRAM && type != SOCK_STREAM))
		return 0;
	len = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) || domain != AF_INET)
		return 0;
	len = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) ||
	    (proto != IPPROTO_UDP && proto != IPPROTO_TCP))
		return 0;
	return type;
}

/*
 * Reserves ip:port for the offloaded socket in the kernel, on its own kernel socket (the
 * placeholder), so the kernel never hands the same port to another socket. IP_FREEBIND lets
 * it bind a port address the kernel may not have. Returns the port (host order) or -errno.
 */
static int reserve(int fd, uint32_t ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = ip};
	socklen_t len = sizeof(sin);
	int one = 1;

	if (getsockname(fd, (struct sockaddr *) &sin, &len) == 0 && sin.sin_port)
		return ntohs(sin.sin_port); /* already bound: keep its port */
	sin.sin_addr.s_addr = ip;
	sin.sin_port = htons(port);
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)))
		return -errno;
	len = sizeof(sin);
	if (getsockname(fd, (struct sockaddr *) &sin, &len))
		return -errno;
	return ntohs(sin.sin_port);
}

/* CONNECT and BIND on sockets not yet offloaded: offload them when a port carries them. */

static int net_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	int err = op_passthrough.prep(ctx, req, sqe);

	if (err)
		return err;
	req->u.net.xs = NULL;
	/* CONNECT and BIND carry the address length in off. */
	return read_addr(req, sqe->addr, (uint32_t) sqe->off);
}

static int net_accept_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	int err = op_passthrough.prep(ctx, req, sqe);

	req->u.net.xs = NULL;
	req->u.net.addrlen = 0;
	return err;
}

static int64_t to_kernel(struct xring_ctx *ctx, struct xreq *req)
{
	req->op = &op_passthrough;
	return op_passthrough.issue(ctx, req);
}

static void xs_tcp_event(void *arg, struct tcb *t, unsigned events);

/* A socket offloaded on its plain descriptor takes over what waits on it; on a direct one
 * xdirect_issue() does, once the slot names it. */
static void adopt(struct xring_ctx *ctx, struct xsock *xs)
{
	if (!ctx->xsocks->in_direct)
		xsock_adopt(ctx, xs);
}

/* Makes req->fd an offloaded socket of this type on port xp, bound to xp's address and port
 * (0: any, the kernel picks it while reserving). */
static int offload(struct xring_ctx *ctx, struct xreq *req, int type, struct xport *xp,
		   uint16_t port, struct xsock **out)
{
	struct netport *np;
	struct xsock *xs;
	int err, lport;

	np = netport_get(ctx, xp, &err);
	if (!np)
		return err;
	if (np->port_err)
		return np->port_err;
	lport = reserve(req->fd, xp->ip, port);
	if (lport < 0)
		return lport;
	err = xsock_new(ctx, req->fd, type, np, xp->ip, (uint16_t) lport, &xs);
	if (err)
		return err;
	/* Its traffic comes to this ring's queue (3-tuple: any remote may reach it). */
	xs->steered = netport_steer_get(np, &(struct port_rule){XSOCK_RULE(xs)}) == 0;
	log_debug("fd %d: %s offloaded on port %u, local port %d", req->fd,
		  type == SOCK_DGRAM ? "UDP" : "TCP", xp->id, lport);
	*out = xs;
	return 0;
}

/* The socket's type when it may be offloaded at all, else 0. */
static int may_offload(struct xring_ctx *ctx, const struct xreq *req)
{
	if (!ports_count() || (req->flags & REQ_F_FIXED_FILE))
		return 0;
	return sock_type(req->fd);
}

/* XRING_TCP_NODELAY and XRING_TCP_QUICKACK give new connections their first options. */
static void tcp_defaults(struct tcb *t)
{
	const struct xring_conf *c;

	tcp_set_rx_hook(t, xsock_rx_place);
	if (proc_conf(&c))
		return;
	tcp_setopt(t, TCP_OPT_NODELAY, c->tcp_nodelay);
	tcp_setopt(t, TCP_OPT_QUICKACK, c->tcp_quickack);
}

static int64_t tcp_start_connect(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req,
				 const struct sockaddr_in *sin)
{
	int err = tcp_connect(&xs->np->tcp, clock_mono_ns(), sin->sin_addr.s_addr,
			      ntohs(sin->sin_port), xs->lport, xs_tcp_event, xs, &xs->tcb);

	if (err)
		return err;
	tcp_defaults(xs->tcb);
	xs->rip = sin->sin_addr.s_addr;
	xs->rport = ntohs(sin->sin_port);
	xs->connecting = req;
	stats_sock_ident(xs);
	return OP_QUEUED; /* the handshake completes it (xs_tcp_event) */
}

static int64_t connect_issue(struct xring_ctx *ctx, struct xreq *req)
{
	const struct sockaddr_in *sin = addr_in(req);
	int type = sin ? may_offload(ctx, req) : 0;
	struct xport *xp;
	struct xsock *xs;
	int err;

	if (req->flags & REQ_F_FIXED_FILE)
		return xdirect_issue(ctx, req, connect_issue,
				     sin && ports_count() && ports_route(sin->sin_addr.s_addr));
	if (!type || !(xp = ports_route(sin->sin_addr.s_addr)) ||
	    !proc_offload(type == SOCK_DGRAM ? RULES_UDP_CONNECT : RULES_TCP_CLIENT,
			  sin->sin_addr.s_addr, sin->sin_port))
		return to_kernel(ctx, req);
	err = offload(ctx, req, type, xp, 0, &xs);
	if (err)
		return err;
	req->u.net.xs = xs;
	if (type == SOCK_STREAM) {
		int64_t res = tcp_start_connect(ctx, xs, req, sin);

		adopt(ctx, xs);
		return res;
	}
	xs->rip = sin->sin_addr.s_addr;
	xs->rport = ntohs(sin->sin_port);
	xs->connected = true;
	stats_sock_ident(xs);
	adopt(ctx, xs);
	return 0;
}

static int64_t bind_issue(struct xring_ctx *ctx, struct xreq *req)
{
	const struct sockaddr_in *sin = addr_in(req);
	int type = sin ? may_offload(ctx, req) : 0;
	struct xport *xp;
	struct xsock *xs;
	int err;

	if (req->flags & REQ_F_FIXED_FILE)
		return xdirect_issue(ctx, req, bind_issue,
				     sin && ports_count() && ports_by_addr(sin->sin_addr.s_addr));
	if (!type || !(xp = ports_by_addr(sin->sin_addr.s_addr)) ||
	    !proc_offload(type == SOCK_DGRAM ? RULES_UDP_RECEIVER : RULES_TCP_SERVER,
			  sin->sin_addr.s_addr, sin->sin_port))
		return to_kernel(ctx, req);
	err = offload(ctx, req, type, xp, ntohs(sin->sin_port), &xs);
	if (!err)
		adopt(ctx, xs);
	return err;
}

const struct xring_op op_connect = {
	.name = "CONNECT",
	.ioprio = true,
	.prep = net_prep,
	.issue = connect_issue,
};

/*
 * ACCEPT on a listening kernel socket bound to a port's address, as servers made with plain
 * socket/bind/listen calls have: the listener is offloaded here, at its first accept, and the
 * kernel socket stays as its placeholder.
 */
static int64_t xs_issue(struct xring_ctx *ctx, struct xreq *req);
static const struct xring_op op_xsock;

static int64_t accept_issue(struct xring_ctx *ctx, struct xreq *req)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int listening = 0, err;
	socklen_t ilen = sizeof(listening);
	struct xport *xp;
	struct xsock *xs;

	if (req->flags & REQ_F_FIXED_FILE)
		return xdirect_issue(ctx, req, accept_issue, ports_count() != 0);
	if (may_offload(ctx, req) != SOCK_STREAM ||
	    getsockopt(req->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) || !listening ||
	    getsockname(req->fd, (struct sockaddr *) &sin, &len) ||
	    !(xp = ports_by_addr(sin.sin_addr.s_addr)) ||
	    (req->u.sqe.ioprio &
	     ~(XRING_ACCEPT_MULTISHOT | XRING_ACCEPT_DONTWAIT | XRING_ACCEPT_POLL_FIRST)) ||
	    !proc_offload(RULES_TCP_SERVER, sin.sin_addr.s_addr, sin.sin_port))
		return to_kernel(ctx, req);
	err = offload(ctx, req, SOCK_STREAM, xp, ntohs(sin.sin_port), &xs);
	if (err)
		return err;
	err = tcp_listen(&xs->np->tcp, xs->lport, 128, xs_tcp_event, xs, &xs->tcb);
	if (err) {
		xsock_free(ctx, xs);
		return err;
	}
	xs->listening = true;
	stats_sock_ident(xs);
	adopt(ctx, xs);
	req->u.net.xs = xs;
	req->op = &op_xsock;
	return xs_issue(ctx, req);
}

const struct xring_op op_accept = {
	.name = "ACCEPT",
	.ioprio = true,
	.prep = net_accept_prep,
	.issue = accept_issue,
};

const struct xring_op op_bind = {
	.name = "BIND",
	.ioprio = true,
	.prep = net_prep,
	.issue = bind_issue,
};

/* Operations on offloaded sockets. */

/*
 * read / write on an offloaded socket are recv / send with no flags (RWF_NOWAIT: MSG_DONTWAIT),
 * as on a kernel socket; readv / writev are recvmsg / sendmsg over the SQE's iovec array (with
 * provided buffers they answer -EOPNOTSUPP). The offset is ignored, as a socket ignores it.
 */
static int rw_prep(struct xreq *req, const struct xring_sqe *sqe)
{
	struct xring_sqe *s = &req->u.net.sqe;
	bool vec = sqe->opcode == XRING_OP_READV || sqe->opcode == XRING_OP_WRITEV;
	bool wr = sqe->opcode == XRING_OP_WRITE || sqe->opcode == XRING_OP_WRITEV;

	if (sqe->rw_flags & ~(uint32_t) RWF_NOWAIT)
		return -EOPNOTSUPP;
	if (vec && (sqe->flags & XRING_SQE_BUFFER_SELECT))
		return -EOPNOTSUPP;
	if (vec && sqe->len > UIO_MAXIOV)
		return -EINVAL; /* as readv(2) */
	s->msg_flags = (sqe->rw_flags & RWF_NOWAIT) ? MSG_DONTWAIT : 0;
	s->ioprio = 0;
	s->off = 0;
	s->addr2 = 0;
	if (vec) {
		/* req->opcode says recvmsg / sendmsg; the copy keeps READV / WRITEV so that
		 * io_vec() takes the iovec array itself (and READ / READV, so that no
		 * F_SOCK_NONEMPTY is set). */
		req->opcode = wr ? XRING_OP_SENDMSG : XRING_OP_RECVMSG;
	} else {
		req->opcode = wr ? XRING_OP_SEND : XRING_OP_RECV;
	}
	return 0;
}

/* A read or readv: the kernel's read path sets no F_SOCK_NONEMPTY (only recv and recvmsg do). */
static bool is_read(const struct xreq *req)
{
	return req->u.net.sqe.opcode == XRING_OP_READ || req->u.net.sqe.opcode == XRING_OP_READV;
}

static int xs_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	req->u.net.sqe = *sqe;
	req->u.net.xs = ctx->xsocks ? xsock_of_sqe(ctx, sqe) : NULL;
	req->u.net.addrlen = 0;
	if (sqe->opcode == XRING_OP_POLL_ADD)
		return xpoll_prep(sqe);
	if (xring_unlikely(sqe->opcode == XRING_OP_READ || sqe->opcode == XRING_OP_WRITE ||
			   sqe->opcode == XRING_OP_READV || sqe->opcode == XRING_OP_WRITEV)) {
		int err = rw_prep(req, sqe);

		if (err)
			return err;
		sqe = &req->u.net.sqe;
	}
	if (sqe->opcode == XRING_OP_SEND_ZC || sqe->opcode == XRING_OP_SENDMSG_ZC) {
		/* Refused before the kernel makes the notification: one CQE. Unknown flags come
		 * after it, at issue here (zc_bad_flags()). */
		if (req->flags & REQ_F_CQE_SKIP)
			return -EINVAL;
	} else if (req->opcode == XRING_OP_ACCEPT) {
		/* The kernel's rules (io_accept_prep). */
		if ((sqe->ioprio &
		     ~(XRING_ACCEPT_MULTISHOT | XRING_ACCEPT_DONTWAIT | XRING_ACCEPT_POLL_FIRST)) ||
		    sqe->len || sqe->buf_index ||
		    (sqe->accept_flags & ~(uint32_t) (SOCK_CLOEXEC | SOCK_NONBLOCK)))
			return -EINVAL;
		if (sqe->file_index && ((sqe->accept_flags & SOCK_CLOEXEC) ||
					((sqe->ioprio & XRING_ACCEPT_MULTISHOT) &&
					 sqe->file_index != XRING_FILE_INDEX_ALLOC)))
			return -EINVAL;
	} else if ((sqe->opcode == XRING_OP_SEND || sqe->opcode == XRING_OP_SENDMSG) &&
		   !(sqe->ioprio & ~XRING_RECVSEND_POLL_FIRST)) {
		/* Polling first changes nothing here: the stack answers when it can. */
	} else if ((sqe->opcode == XRING_OP_RECV || sqe->opcode == XRING_OP_RECVMSG) &&
		   !(sqe->ioprio & ~(XRING_RECV_MULTISHOT | XRING_RECVSEND_POLL_FIRST))) {
		/* As the kernel: a multishot receive takes provided buffers, and not all at once.
		 */
		if ((sqe->ioprio & XRING_RECV_MULTISHOT) &&
		    (!(sqe->flags & XRING_SQE_BUFFER_SELECT) || (sqe->msg_flags & MSG_WAITALL)))
			return -EINVAL;
	} else if (sqe->ioprio) {
		return -EOPNOTSUPP;
	}
	/* No message header where one is read (the kernel's copy faults: -EFAULT). */
	if ((sqe->opcode == XRING_OP_SENDMSG || sqe->opcode == XRING_OP_RECVMSG) && !sqe->addr)
		return -EFAULT;
	/* The kernel's message header import (__copy_msghdr): -EMSGSIZE beyond UIO_MAXIOV (for
	 * SENDMSG_ZC at issue, see too_many_iovecs()). */
	if ((sqe->opcode == XRING_OP_SENDMSG || sqe->opcode == XRING_OP_RECVMSG) &&
	    ((const struct msghdr *) (uintptr_t) sqe->addr)->msg_iovlen > UIO_MAXIOV)
		return -EMSGSIZE;
	if (sqe->flags & XRING_SQE_BUFFER_SELECT) {
		if (req->opcode != XRING_OP_RECV && req->opcode != XRING_OP_RECVMSG)
			return -EOPNOTSUPP;
		if (sqe->opcode == XRING_OP_RECVMSG &&
		    ((const struct msghdr *) (uintptr_t) sqe->addr)->msg_iovlen > 1)
			return -EINVAL; /* a provided buffer is one iovec */
		if (!bufring_exists(ctx, sqe->buf_group))
			return -ENOBUFS;
	}
	if ((sqe->opcode == XRING_OP_SEND || sqe->opcode == XRING_OP_SEND_ZC) && sqe->addr2)
		return read_addr(req, sqe->addr2, sqe->addr_len);
	if (sqe->opcode == XRING_OP_CONNECT)
		return read_addr(req, sqe->addr, (uint32_t) sqe->off);
	return 0;
}

static bool is_zc(const struct xreq *req)
{
	return req->opcode == XRING_OP_SEND_ZC || req->opcode == XRING_OP_SENDMSG_ZC;
}

static bool is_send(const struct xreq *req)
{
	return req->opcode == XRING_OP_SEND || req->opcode == XRING_OP_SENDMSG || is_zc(req);
}

/*
 * A zero-copy send ends in two CQEs: its result with F_MORE, then F_NOTIF once the buffer is
 * free again. UDP copies, so the buffer is free as soon as the result is known and both come
 * together; IORING_SEND_ZC_REPORT_USAGE is answered with "copied", truthfully. TCP lends the
 * buffer to the stack and the notification waits for the peer's ACK (xsock_zc.c).
 * Returns what the request completes with (the notification), after posting the result.
 */
static int64_t zc_result(struct xring_ctx *ctx, struct xreq *req, int64_t res)
{
	if (!is_zc(req) || res == OP_QUEUED)
		return res;
	/* A failed send_zc too: its result with F_MORE, then the notification, and the chain
	 * fails with the result (the kernel's io_sendrecv_fail()). */
	req_post_more(ctx, req, (int32_t) res, 0);
	req->cflags = XRING_CQE_F_NOTIF;
	if (res < 0)
		req_set_fail(req);
	else
		req->flags |= REQ_F_NO_FAIL;
	return (req->u.net.sqe.ioprio & XRING_SEND_ZC_REPORT_USAGE)
		       ? (int32_t) XRING_NOTIF_USAGE_ZC_COPIED
		       : 0;
}

/* Builds and sends one datagram from the gathered iovecs. */
static int64_t udp_send(struct xring_ctx *ctx, struct xsock *xs, const struct iovec *iov,
			size_t niov, const struct sockaddr_in *to)
{
	struct iface *ifc = &xs->np->ifc;
	uint32_t dst = xs->rip;
	uint16_t dport = xs->rport;
	struct iface_tx tx;
	size_t len;
	int err;

	if (to) {
		dst = to->sin_addr.s_addr;
		dport = ntohs(to->sin_port);
	} else if (!xs->connected) {
		return -EDESTADDRREQ;
	}
	len = iov_total(iov, niov);
	err = iface_ip4_begin(ifc, clock_mono_ns(), dst, &tx);
	if (err) {
		xs->st->tx_errors++;
		return err;
	}
	if (len > tx.l4_cap - UDP_HLEN) {
		iface_ip4_abort(ifc, &tx);
		xs->st->tx_errors++;
		return -EMSGSIZE;
	}
	for (size_t i = 0, off = UDP_HLEN; i < niov; off += iov[i].iov_len, i++)
		memcpy(tx.l4 + off, iov[i].iov_base, iov[i].iov_len);
	udp_emit(tx.l4, tx.l4_cap, xs->lport, dport, xs->lip, dst, len, 0);
	err = iface_ip4_commit(ifc, &tx, IPPROTO_UDP, 0, UDP_HLEN + len);
	if (err) {
		xs->st->tx_errors++;
		return err;
	}
	stats_tx(xs->st, len);
	return (int64_t) len;
}

/* Copies a datagram into a receive request; returns its result. */
static int32_t deliver(struct xreq *req, uint32_t src, uint16_t sport, const uint8_t *data,
		       size_t len)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	size_t n;

	if (!(sqe->msg_flags & MSG_PEEK))
		stats_rx(req->u.net.xs->st, len);
	if (req->opcode == XRING_OP_RECV) {
		n = len < sqe->len ? len : sqe->len;
		memcpy((void *) (uintptr_t) sqe->addr, data, n);
		return (int32_t) ((sqe->msg_flags & MSG_TRUNC) ? len : n);
	}
	if (sqe->opcode == XRING_OP_READV) {
		/* The datagram across the iovecs; what does not fit is lost, as in readv(2). */
		const struct iovec *iov = (const struct iovec *) (uintptr_t) sqe->addr;
		size_t off = 0;

		for (uint32_t i = 0; i < sqe->len && off < len; i++) {
			size_t c = len - off < iov[i].iov_len ? len - off : iov[i].iov_len;

			memcpy(iov[i].iov_base, data + off, c);
			off += c;
		}
		return (int32_t) off;
	}
	{
		struct msghdr *msg = (struct msghdr *) (uintptr_t) sqe->addr;
		size_t left = len, off = 0;

		for (size_t i = 0; i < msg->msg_iovlen && left; i++) {
			size_t c = left < msg->msg_iov[i].iov_len ? left : msg->msg_iov[i].iov_len;

			memcpy(msg->msg_iov[i].iov_base, data + off, c);
			off += c;
			left -= c;
		}
		if (msg->msg_name) {
			struct sockaddr_in sin = {.sin_family = AF_INET,
						  .sin_port = htons(sport),
						  .sin_addr.s_addr = src};
			size_t c = msg->msg_namelen < sizeof(sin) ? msg->msg_namelen : sizeof(sin);

			memcpy(msg->msg_name, &sin, c);
			msg->msg_namelen = sizeof(sin);
		}
		msg->msg_controllen = 0;
		msg->msg_flags = left ? MSG_TRUNC : 0;
		return (int32_t) ((sqe->msg_flags & MSG_TRUNC) ? len : off);
	}
}

static bool selects(const struct xreq *req)
{
	return req->u.net.sqe.flags & XRING_SQE_BUFFER_SELECT;
}

static bool multishot(const struct xreq *req)
{
	return req->u.net.sqe.ioprio & XRING_RECV_MULTISHOT;
}

/* The CQE flags of a receive into provided buffer b. */
static uint32_t buf_flags(const struct xring_buf *b, bool more_data)
{
	return XRING_CQE_F_BUFFER | ((uint32_t) b->bid << XRING_CQE_BUFFER_SHIFT) |
	       (more_data ? XRING_CQE_F_SOCK_NONEMPTY : 0);
}

/* A datagram for a receive that selects its buffer. Returns the request's final result (with
 * req->cflags), or OP_QUEUED when a multishot receive goes on. */
static int64_t udp_deliver_select(struct xring_ctx *ctx, struct xreq *req, const uint8_t *data,
				  size_t len, bool more_data, uint32_t src, uint16_t sport)
{
	struct xring_buf *b = bufring_take(ctx, req->u.net.sqe.buf_group);
	struct sockaddr_in from = {
		.sin_family = AF_INET, .sin_port = htons(sport), .sin_addr.s_addr = src};
	uint32_t cap, n;
	uint8_t *payload;
	int32_t res;
	int err;

	if (!b)
		return -ENOBUFS;
	err = xsmsg_room(req, b, &payload, &cap);
	if (err)
		return err;
	n = len < cap ? (uint32_t) len : cap;
	memcpy(payload, data, n);
	stats_rx(req->u.net.xs->st, len);
	res = xsmsg_done(req, b, n, len, &from);
	if (!multishot(req)) {
		req->cflags = buf_flags(b, more_data && !is_read(req));
		return res;
	}
	req_post_more(ctx, req, res, buf_flags(b, more_data && !is_read(req)));
	/* The kernel cannot tell whether a UDP socket has more, so its multishot receive tries
	 * again at once: with the group empty, that ends it. */
	return bufring_empty(ctx, req->u.net.sqe.buf_group) ? -ENOBUFS : OP_QUEUED;
}

/* A connection's error as the kernel reports it (sock_error() clears it): once, to whichever
 * operation looks first; after that sends fail with -EPIPE and receives see the end. */
static int32_t take_err(struct xsock *xs, bool sending)
{
	if (!xs->err_taken) {
		xs->err_taken = true;
		return tcp_error(xs->tcb);
	}
	return sending ? -EPIPE : 0;
}

/* TCP on an offloaded socket. A request's progress (bytes moved so far) is kept in req->res
 * while it waits; only the oldest waiting send or receive of a socket moves data. */

/* The iovec array a TCP send or receive moves, read in place from the application's memory
 * (one holds a plain buffer): no copy, so no limit but the kernel's UIO_MAXIOV, checked at
 * prep. Like the message header, it is read again at each step while the request waits. */
static const struct iovec *io_vec(const struct xreq *req, struct iovec *one, size_t *niov)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	const struct msghdr *msg;

	if (req->opcode == XRING_OP_SEND || req->opcode == XRING_OP_RECV ||
	    req->opcode == XRING_OP_SEND_ZC) {
		one->iov_base = (void *) (uintptr_t) sqe->addr;
		one->iov_len = sqe->len;
		*niov = 1;
		return one;
	}
	if (sqe->opcode == XRING_OP_READV || sqe->opcode == XRING_OP_WRITEV) {
		*niov = sqe->len;
		return (const struct iovec *) (uintptr_t) sqe->addr;
	}
	msg = (const void *) (uintptr_t) sqe->addr;
	*niov = msg->msg_iovlen;
	return msg->msg_iov;
}

/* Whether a receive's CQE says more is waiting: unread data, or (as the kernel's
 * tcp_inq_hint()) the peer's FIN, which the next receive returns. */
static bool tcp_more(struct tcb *t)
{
	return tcp_rcvavail(t) > 0 || (tcp_events(t) & TCP_EV_READABLE);
}

static int64_t tcp_move_data(struct xsock *xs, struct xreq *req, bool sending);

/* Moves as much as it can; returns the result when the request is done, or OP_QUEUED. */
static int64_t tcp_move(struct xsock *xs, struct xreq *req, bool sending)
{
	int64_t res = tcp_move_data(xs, req, sending);

	if (res > 0 && sending)
		stats_tx(xs->st, (uint64_t) res);
	else if (res > 0)
		stats_rx(xs->st, (uint64_t) res);
	if (!sending) {
		xs->st->rxq_now = (uint32_t) tcp_rcvavail(xs->tcb);
		if (res >= 0)
			req->cflags =
				tcp_more(xs->tcb) && !is_read(req) ? XRING_CQE_F_SOCK_NONEMPTY : 0;
	}
	return res;
}

static int64_t tcp_move_data(struct xsock *xs, struct xreq *req, bool sending)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	/* As the kernel's io_uring send and receive: a stream send without MSG_WAITALL ends with
	 * what the send buffer took, as a receive ends with what there was. */
	bool all = sqe->msg_flags & MSG_WAITALL;
	uint64_t now = clock_mono_ns();
	struct iovec one;
	size_t niov, total, off;
	const struct iovec *iov = io_vec(req, &one, &niov);
	long done = req->res;

	total = iov_total(iov, niov);
	if (xring_unlikely(!total) && !sending && !is_read(req)) {
		/* No room, yet a recv or recvmsg waits for data (or the end) as the kernel's
		 * tcp_recvmsg() does; the CQE then says data is waiting. read and readv do not. */
		if (tcp_rcvavail(xs->tcb) || (tcp_events(xs->tcb) & TCP_EV_READABLE))
			return 0;
		return (sqe->msg_flags & MSG_DONTWAIT) ? -EAGAIN : OP_QUEUED;
	}
	off = (size_t) done;
	for (size_t i = 0; i < niov && (size_t) done < total; i++) {
		long n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		if (!sending)
			n = tcp_recv(xs->tcb, now, (char *) iov[i].iov_base + off,
				     iov[i].iov_len - off);
		else if (is_zc(req)) /* lent, not copied: see xsock_zc.c */
			n = tcp_send_ref(xs->tcb, now, (char *) iov[i].iov_base + off,
					 iov[i].iov_len - off);
		else
			n = tcp_send(xs->tcb, now, (char *) iov[i].iov_base + off,
				     iov[i].iov_len - off);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			return done ? done : n;
		if (n == 0)
			return done; /* end of stream */
		done += n;
		off = 0;
		if ((size_t) n < iov[i].iov_len - off && !sending)
			break;
	}
	req->res = (int32_t) done;
	if ((size_t) done == total || (done > 0 && !all))
		return done;
	/* MSG_WAITALL short of its length with the end of the stream (or an error) already
	 * there: no event will come for it again, so it ends now with what it has, as in the
	 * kernel. */
	if (!sending && done > 0 && !tcp_rcvavail(xs->tcb) &&
	    (tcp_events(xs->tcb) & TCP_EV_READABLE))
		return done;
	if (sqe->msg_flags & MSG_DONTWAIT)
		return done ? done : -EAGAIN;
	return OP_QUEUED;
}

/*
 * A TCP receive into provided buffers, one buffer per CQE. Returns the request's final result
 * (req->cflags set), or OP_QUEUED while it waits for data (a multishot one may have posted CQEs
 * on the way). An empty buffer group ends it with -ENOBUFS, as in the kernel.
 */
static int64_t tcp_recv_select(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;

	for (;;) {
		struct xring_buf *b;
		uint32_t cap, flags;
		uint8_t *payload;
		int32_t res;
		int err;
		long n;

		/* Data, then the end of the stream, then an error: Linux's order. */
		if (tcp_error(xs->tcb) && !tcp_rcvavail(xs->tcb) && !tcp_fin_rcvd(xs->tcb))
			return take_err(xs, false);
		if (!tcp_rcvavail(xs->tcb)) {
			if (tcp_events(xs->tcb) & TCP_EV_READABLE) {
				/* The peer's FIN: the end, also of a multishot receive. */
				req->cflags = is_read(req) ? 0 : XRING_CQE_F_SOCK_NONEMPTY;
				return 0;
			}
			if ((sqe->msg_flags & MSG_DONTWAIT) && !multishot(req))
				return -EAGAIN;
			return OP_QUEUED;
		}
		b = bufring_take(ctx, sqe->buf_group);
		if (!b)
			return -ENOBUFS;
		err = xsmsg_room(req, b, &payload, &cap);
		if (err)
			return err;
		n = tcp_recv(xs->tcb, clock_mono_ns(), payload, cap);
		if (n < 0)
			return n;
		stats_rx(xs->st, (uint64_t) n);
		res = xsmsg_done(req, b, (uint32_t) n, (size_t) n, NULL);
		flags = buf_flags(b, tcp_more(xs->tcb) && !is_read(req));
		if (!multishot(req)) {
			req->cflags = flags;
			return res;
		}
		req_post_more(ctx, req, res, flags);
	}
}

/* The descriptor that names an accepted connection: an unbound TCP socket, or an eventfd
 * (XRING_ACCEPT_EVENTFD), far cheaper in kernel memory when connections are many. */
static int accept_fd(int flags)
{
	const struct xring_conf *c;

	if (proc_conf(&c) == 0 && c->accept_eventfd)
		return eventfd(0, (flags & SOCK_NONBLOCK ? EFD_NONBLOCK : 0) |
					  (flags & SOCK_CLOEXEC ? EFD_CLOEXEC : 0));
	return socket(AF_INET, flags, 0);
}

/* Creates the offloaded socket of an accepted connection, with a kernel descriptor of its own
 * for the application to name it by (none when it goes to an xring-only slot). Returns the
 * descriptor, or the accept's result for a direct one. */
static int64_t tcp_take(struct xring_ctx *ctx, struct xsock *lis, struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	int flags = SOCK_STREAM | (int) (sqe->accept_flags & (SOCK_NONBLOCK | SOCK_CLOEXEC));
	struct xsock *xs;
	struct tcb *c;
	int fd, err = tcp_accept(lis->tcb, &c);

	if (err)
		return err;
	fd = xdirect_fd_needed(ctx, sqe->file_index) ? accept_fd(flags) : XSOCK_FD_NONE;
	if (fd == -1) {
		tcp_abort(c, clock_mono_ns());
		return -errno;
	}
	err = xsock_new(ctx, fd, SOCK_STREAM, lis->np, lis->lip, lis->lport, &xs);
	if (err) {
		tcp_abort(c, clock_mono_ns());
		if (fd >= 0)
			close(fd);
		return err;
	}
	xs->tcb = c;
	/* The listener's rule brings its frames; the connection holds it too, so that closing
	 * the listener does not cut the connections it accepted. */
	xs->steered =
		lis->steered && netport_steer_get(xs->np, &(struct port_rule){XSOCK_RULE(xs)}) == 0;
	tcp_defaults(c);
	tcp_endpoints(c, NULL, NULL, &xs->rip, &xs->rport);
	tcp_set_cb(c, xs_tcp_event, xs);
	stats_sock_ident(xs);
	if (sqe->addr && sqe->off) {
		struct sockaddr_in peer = {.sin_family = AF_INET,
					   .sin_port = htons(xs->rport),
					   .sin_addr.s_addr = xs->rip};
		socklen_t *lenp = (socklen_t *) (uintptr_t) sqe->off;
		size_t n = *lenp < sizeof(peer) ? *lenp : sizeof(peer);

		memcpy((void *) (uintptr_t) sqe->addr, &peer, n);
		*lenp = sizeof(peer);
	}
	return sqe->file_index ? xdirect_adopt(ctx, xs, fd, sqe->file_index) : fd;
}

static int64_t accept_some(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req);

/*
 * A waiting send that ends with what fits wakes, as the kernel's (sk_stream_write_space), once a
 * third of the send buffer is free or all it has left fits: not for the few bytes each ACK frees.
 */
static bool send_room(const struct xsock *xs, const struct xreq *r)
{
	const struct xring_sqe *sqe = &r->u.net.sqe;
	size_t want = tcp_sndbuf(xs->tcb) / 3, left, niov;
	struct iovec one;
	const struct iovec *iov;

	if ((sqe->msg_flags & MSG_WAITALL) || r->res > 0)
		return true;
	iov = io_vec(r, &one, &niov);
	left = iov_total(iov, niov);
	return tcp_sndspace(xs->tcb) >= (left < want ? left : want);
}

static void serve(struct xring_ctx *ctx, struct xsock *xs, struct req_wlist *q, int kind)
{
	while (q->first && xs->tcb) {
		struct xreq *r = q->first;
		int64_t res;

		if (kind == 1 && !tcp_error(xs->tcb) && !(tcp_shutdowns(xs->tcb) & TCP_SHUT_WR) &&
		    !send_room(xs, r))
			return;
		res = kind == 2                 ? accept_some(ctx, xs, r)
		      : kind == 0 && selects(r) ? tcp_recv_select(ctx, xs, r)
						: tcp_move(xs, r, kind == 1);

		if (res == OP_QUEUED || (res == -EAGAIN && kind != 2))
			return;
		wlist_del(q, r);
		res = zc_result(ctx, r, res);
		if (is_zc(r))
			res = xsock_zc_park(ctx, xs, r, res);
		if (res != OP_QUEUED)
			req_complete(ctx, r, (int32_t) res, r->cflags);
	}
}

static void xs_tcp_event(void *arg, struct tcb *t, unsigned events)
{
	struct xsock *xs = arg;
	struct xring_ctx *ctx;

	if (!xs)
		return;
	ctx = xs->ctx;
	if (events & (TCP_EV_CONNECTED | TCP_EV_ERROR | TCP_EV_CLOSED))
		xs->st->state = (uint8_t) tcp_state(t);
	if (events & TCP_EV_READABLE)
		stats_rxq(xs->st, (uint32_t) tcp_rcvavail(t));
	if ((events & TCP_EV_CONNECTED) && xs->connecting) {
		struct xreq *r = xs->connecting;

		xs->connecting = NULL;
		req_complete(ctx, r, 0, 0);
	}
	if (events & TCP_EV_ERROR) {
		if (xs->connecting) {
			struct xreq *r = xs->connecting;

			xs->connecting = NULL;
			req_complete(ctx, r, take_err(xs, false), 0);
		}
		while (xs->recvq.first) {
			struct xreq *r = xs->recvq.first;

			wlist_del(&xs->recvq, r);
			cancel_waiter(ctx, r, take_err(xs, false));
		}
		while (xs->sendq.first) {
			struct xreq *r = xs->sendq.first;

			wlist_del(&xs->sendq, r);
			cancel_waiter(ctx, r, take_err(xs, true));
		}
		xsock_zc_flush(xs);
		xpoll_wake(xs, ~0u);
		return;
	}
	if (events & (TCP_EV_READABLE | TCP_EV_CLOSED)) {
		if (xs->np->in_burst) {
			if (!xs->on_ready && xs->recvq.first) {
				xs->on_ready = true;
				xs->ready_next = xs->np->ready;
				xs->np->ready = xs;
			}
		} else {
			serve(ctx, xs, &xs->recvq, 0);
		}
	}
	if (events & TCP_EV_ACKED)
		xsock_zc_acked(xs);
	if (events & TCP_EV_WRITABLE)
		serve(ctx, xs, &xs->sendq, 1);
	if (events & TCP_EV_ACCEPT) {
		/* Polls first, as the kernel wakes them: the accepts may take every connection. */
		if (xring_unlikely(xs->pollq.first != NULL))
			xpoll_wake(xs, xpoll_hint(TCP_EV_ACCEPT));
		serve(ctx, xs, &xs->acceptq, 2);
	}
	if (xring_unlikely(xs->pollq.first != NULL) && (events & ~TCP_EV_ACCEPT))
		xpoll_wake(xs, xpoll_hint(events & ~TCP_EV_ACCEPT));
}

/* Accepts what is waiting: one connection, or all of them for a multishot accept (each with
 * F_MORE). Returns the final result, or OP_QUEUED to wait for more. */
static int64_t accept_some(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req)
{
	bool multi = req->u.net.sqe.ioprio & XRING_ACCEPT_MULTISHOT;

	for (;;) {
		int64_t res = tcp_take(ctx, xs, req);

		/* SOCK_NONBLOCK is the new socket's flag: the accept itself still waits, unless
		 * IORING_ACCEPT_DONTWAIT (which also ends a multishot accept). */
		if (res == -EAGAIN)
			return (req->u.net.sqe.ioprio & XRING_ACCEPT_DONTWAIT) ? -EAGAIN
									       : OP_QUEUED;
		if (!multi || res < 0)
			return res;
		req_post_more(ctx, req, (int32_t) res, 0);
	}
}

void xsock_serve_ready(struct netport *np)
{
	while (np->ready) {
		struct xsock *xs = np->ready;

		np->ready = xs->ready_next;
		xs->on_ready = false;
		serve(xs->ctx, xs, &xs->recvq, 0);
	}
}

static int64_t tcp_issue(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	struct req_wlist *q;
	int64_t res;

	req->res = 0;
	switch (req->opcode) {
	case XRING_OP_CONNECT: {
		const struct sockaddr_in *sin = addr_in(req);

		if (!sin)
			return -EAFNOSUPPORT;
		if (xs->tcb)
			return xs->listening ? -EINVAL : -EISCONN;
		return tcp_start_connect(ctx, xs, req, sin);
	}
	case XRING_OP_LISTEN: {
		int err;

		if (xs->listening)
			return 0;
		if (xs->tcb)
			return -EINVAL;
		err = tcp_listen(&xs->np->tcp, xs->lport, sqe->len ? sqe->len : 1, xs_tcp_event, xs,
				 &xs->tcb);
		if (err)
			return err;
		xs->listening = true;
		stats_sock_ident(xs);
		return 0;
	}
	case XRING_OP_ACCEPT:
		if (!xs->listening)
			return -EINVAL;
		if (!xs->acceptq.first) {
			res = accept_some(ctx, xs, req);
			if (res != OP_QUEUED)
				return res;
		}
		q = &xs->acceptq;
		break;
	case XRING_OP_SEND:
	case XRING_OP_SENDMSG:
	case XRING_OP_SEND_ZC:
	case XRING_OP_SENDMSG_ZC:
	case XRING_OP_RECV:
	case XRING_OP_RECVMSG: {
		bool sending = is_send(req);

		if (!xs->tcb || xs->listening)
			return zc_result(ctx, req, sending ? -EPIPE : -ENOTCONN);
		/* A send sees the error first; a receive gets what is left to read, then the end
		 * of the stream, before the error (Linux's tcp_recvmsg()). */
		if (tcp_error(xs->tcb) &&
		    (sending || (!tcp_rcvavail(xs->tcb) && !tcp_fin_rcvd(xs->tcb))))
			return zc_result(ctx, req, take_err(xs, sending));
		q = sending ? &xs->sendq : &xs->recvq;
		if (!q->first) {
			res = selects(req) ? tcp_recv_select(ctx, xs, req)
					   : tcp_move(xs, req, sending);
			if (res != OP_QUEUED) {
				res = zc_result(ctx, req, res);
				return is_zc(req) ? xsock_zc_park(ctx, xs, req, res) : res;
			}
		}
		break;
	}
	case XRING_OP_SHUTDOWN:
		if (!xs->tcb || xs->listening)
			return -ENOTCONN;
		return tcp_shutdown(xs->tcb, clock_mono_ns(), (int) sqe->len);
	case XRING_OP_BIND:
		return -EINVAL;
	case XRING_OP_CLOSE:
		return xdirect_close(ctx, xs, req) ? to_kernel(ctx, req) : 0;
	default:
		return -EOPNOTSUPP;
	}
	/* Last, after every call into the stack: an event it delivered cannot see this request. */
	wlist_add_tail(q, req);
	return OP_QUEUED;
}

/* A SENDMSG_ZC's header names more than UIO_MAXIOV iovecs. The kernel finds it at prep, but
 * after the notification exists, so the failure posts with F_MORE and the notification follows
 * (zc_result()): here at issue, where that is what a failure does. */
static bool too_many_iovecs(const struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;

	return sqe->opcode == XRING_OP_SENDMSG_ZC &&
	       ((const struct msghdr *) (uintptr_t) sqe->addr)->msg_iovlen > UIO_MAXIOV;
}

/* A send_zc with flags the kernel does not know: it refuses them once the notification
 * exists, so the -EINVAL has F_MORE and the notification (res 0: usage is not reported)
 * follows. */
static bool zc_bad_flags(struct xreq *req)
{
	struct xring_sqe *sqe = &req->u.net.sqe;

	if (!is_zc(req) || !(sqe->ioprio & ~(XRING_SEND_ZC_REPORT_USAGE | XRING_RECVSEND_FIXED_BUF |
					     XRING_RECVSEND_POLL_FIRST)))
		return false;
	sqe->ioprio = 0;
	return true;
}

static int64_t xs_issue(struct xring_ctx *ctx, struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	struct xsock *xs = req->u.net.xs;

	if (!xs)
		return -EBADF;
	if (xring_unlikely(zc_bad_flags(req)))
		return zc_result(ctx, req, -EINVAL);
	if (xring_unlikely(sqe->opcode == XRING_OP_SENDMSG_ZC && !sqe->addr))
		return zc_result(ctx, req, -EFAULT); /* as too_many_iovecs(): with F_MORE */
	if (xring_unlikely(too_many_iovecs(req)))
		return zc_result(ctx, req, -EMSGSIZE);
	if (xring_unlikely(xs->np->port_err) && xsock_port_refuses(req->opcode))
		return xs->np->port_err;
	if (xring_unlikely(sqe->msg_flags & XRING_MSG_DUMMY) && is_send(req))
		return zc_result(ctx, req, xsock_dummy_send(xs, req));
	if (req->opcode == XRING_OP_POLL_ADD)
		return xpoll_issue(ctx, xs, req);
	if (xs->type == SOCK_STREAM)
		return tcp_issue(ctx, xs, req);
	switch (req->opcode) {
	case XRING_OP_SEND:
	case XRING_OP_SEND_ZC: {
		struct iovec iov = {(void *) (uintptr_t) sqe->addr, sqe->len};

		return zc_result(ctx, req, udp_send(ctx, xs, &iov, 1, addr_in(req)));
	}
	case XRING_OP_SENDMSG:
	case XRING_OP_SENDMSG_ZC: {
		const struct msghdr *msg = (const void *) (uintptr_t) sqe->addr;
		const struct sockaddr_in *to;

		if (sqe->opcode == XRING_OP_WRITEV) /* one datagram from the iovec array */
			return udp_send(ctx, xs, (const struct iovec *) (uintptr_t) sqe->addr,
					sqe->len, NULL);
		to = msg->msg_name;

		if (to && (msg->msg_namelen < sizeof(*to) || to->sin_family != AF_INET))
			return -EINVAL;
		return zc_result(ctx, req, udp_send(ctx, xs, msg->msg_iov, msg->msg_iovlen, to));
	}
	case XRING_OP_RECV:
	case XRING_OP_RECVMSG:
		while (selects(req) && xs->rx_head != xs->rx_tail) {
			const struct xsock_dgram *d = &xs->rx[xs->rx_head % XSOCK_RX_SLOTS];
			int64_t res;

			xs->rx_head++;
			xs->st->rxq_now = xs->rx_tail - xs->rx_head;
			res = udp_deliver_select(ctx, req, d->data, d->len,
						 xs->rx_head != xs->rx_tail, d->src, d->sport);
			if (res != OP_QUEUED)
				return res;
		}
		if (!selects(req) && xs->rx_head != xs->rx_tail) {
			const struct xsock_dgram *d = &xs->rx[xs->rx_head % XSOCK_RX_SLOTS];
			int32_t res = deliver(req, d->src, d->sport, d->data, d->len);

			if (!(sqe->msg_flags & MSG_PEEK))
				xs->rx_head++;
			xs->st->rxq_now = xs->rx_tail - xs->rx_head;
			return res;
		}
		if (sqe->msg_flags & MSG_DONTWAIT)
			return -EAGAIN;
		wlist_add_tail(&xs->recvq, req);
		return OP_QUEUED;
	case XRING_OP_CONNECT: {
		const struct sockaddr_in *sin = addr_in(req);

		if (req->u.net.addrlen >= sizeof(sa_family_t) &&
		    ((const struct sockaddr *) req->u.net.addr)->sa_family == AF_UNSPEC) {
			xs->connected = false;
			stats_sock_ident(xs);
			return 0;
		}
		if (!sin)
			return -EAFNOSUPPORT;
		xs->rip = sin->sin_addr.s_addr;
		xs->rport = ntohs(sin->sin_port);
		xs->connected = true;
		stats_sock_ident(xs);
		return 0;
	}
	case XRING_OP_SHUTDOWN:
		return xs->connected ? 0 : -ENOTCONN;
	case XRING_OP_BIND:
		return -EINVAL; /* already bound */
	case XRING_OP_CLOSE:
		/* The offloaded socket goes now (unless a slot or descriptor still names it); the
		 * kernel closes the placeholder descriptor. */
		return xdirect_close(ctx, xs, req) ? to_kernel(ctx, req) : 0;
	default:
		return -EOPNOTSUPP;
	}
}

static int xs_cancel(struct xring_ctx *ctx, struct xreq *req)
{
	struct xsock *xs = req->u.net.xs;

	if (!xs)
		return 0;
	switch (req->opcode) {
	case XRING_OP_SEND:
	case XRING_OP_SENDMSG:
	case XRING_OP_SEND_ZC:
	case XRING_OP_SENDMSG_ZC:
		if (xsock_zc_parked(req))
			return -EALREADY; /* the result is out; the notification always follows */
		wlist_del(&xs->sendq, req);
		if (is_zc(req)) {
			/* Its result and notification come at the moment of the -ECANCELED
			 * (xs_end); bytes it lent keep the notification until their ACK. */
			req->u.net.moved = req->res > 0 ? (uint32_t) req->res : 0;
			req->flags |= REQ_F_OWN_END;
			if (req->u.net.moved) {
				req->u.net.zc_end = (uint32_t) tcp_queued(xs->tcb);
				wlist_add_tail(&xs->zcc, req);
				return 0;
			}
			req->u.net.xs = NULL;
			return 0;
		}
		break;
	case XRING_OP_ACCEPT:
		wlist_del(&xs->acceptq, req);
		break;
	case XRING_OP_POLL_ADD:
		wlist_del(&xs->pollq, req);
		break;
	case XRING_OP_CONNECT:
		/* A cancelled connect leaves no connection behind. */
		if (xs->connecting == req) {
			xs->connecting = NULL;
			tcp_set_cb(xs->tcb, NULL, NULL);
			tcp_abort(xs->tcb, clock_mono_ns());
			xs->tcb = NULL;
		}
		break;
	default:
		wlist_del(&xs->recvq, req);
		break;
	}
	/* A TCP send or receive that moved bytes ends with their count (xs_end). */
	if (xs->type == SOCK_STREAM && req->res > 0 && !selects(req) &&
	    (is_send(req) || req->opcode == XRING_OP_RECV || req->opcode == XRING_OP_RECVMSG)) {
		req->u.net.moved = (uint32_t) req->res;
		req->u.net.xs = NULL;
		req->flags |= REQ_F_OWN_END;
	}
	return 0;
}

/*
 * A request stopped on the way (cancelled, timed out by its link timeout, or failed by its
 * socket's end): the kernel's io_sendrecv_fail(). The bytes it moved are its result, if any;
 * the chain fails either way. A send_zc posts that result with F_MORE, then its notification,
 * which waits for the peer's ACK of the bytes it lent while its connection lives.
 */
static void xs_end(struct xring_ctx *ctx, struct xreq *req)
{
	struct xsock *xs = req->u.net.xs;
	uint32_t moved = req->u.net.moved;
	int64_t res;

	if (!is_zc(req)) {
		req_set_fail(req);
		req_complete(ctx, req, moved ? (int32_t) moved : req->res, 0);
		return;
	}
	if (xs)
		wlist_del(&xs->zcc, req);
	res = zc_result(ctx, req, moved ? (int64_t) moved : req->res);
	req_set_fail(req);
	if (moved && xs && xsock_zc_wait(ctx, xs, req, req->u.net.zc_end))
		return;
	req_complete(ctx, req, (int32_t) res, req->cflags);
}

static const struct xring_op op_xsock = {
	.name = "XSOCK",
	.ioprio = true,
	.buffer_select = true,
	.prep = xs_prep,
	.issue = xs_issue,
	.cancel = xs_cancel,
	.end = xs_end,
};

/* Whether r, on the kernel ring, waits on xs's kernel socket for something xs now serves. */
static bool waits_on(const struct xreq *r, const struct xsock *xs)
{
	if (r->op != &op_passthrough)
		return false;
	if (r->flags & REQ_F_FIXED_FILE) {
		if (xs->slot < 0 || r->fd != xs->slot)
			return false;
	} else if (xs->fd < 0 || r->fd != xs->fd) {
		return false;
	}
	switch (r->opcode) {
	case XRING_OP_POLL_ADD:
		return true;
	case XRING_OP_RECV:
	case XRING_OP_RECVMSG:
	case XRING_OP_READ:
	case XRING_OP_READV:
		/* A TCP socket receives nothing before it connects (-ENOTCONN at once). */
		return xs->type == SOCK_DGRAM;
	default:
		return false;
	}
}

/*
 * Before its offload a socket is the kernel's, and requests may wait on it there: a poll, or a
 * receive on a UDP socket not yet bound. The traffic now goes to xs, so the kernel socket left
 * behind (the placeholder) would never wake them. Each is taken back from the kernel without a
 * CQE for it and goes on here with its user_data, its flags and its multishot-ness. A poll
 * waits for the next event, as the kernel's would (what was true when it was armed, it has
 * reported); a receive is issued again. One the kernel has completed meanwhile keeps its CQE.
 */
void xsock_adopt(struct xring_ctx *ctx, struct xsock *xs)
{
	struct xreq *r, *next;

	if (!kring_ring(ctx))
		return;
	for (r = ctx->pending.first; r; r = next) {
		struct xring_sqe sqe;
		int64_t res;
		int err;

		next = r->lnext;
		if (!waits_on(r, xs) || kring_take_back(ctx, r))
			continue;
		sqe = r->u.sqe;
		r->op = &op_xsock;
		err = xs_prep(ctx, r, &sqe);
		r->u.net.xs = xs;
		if (err) {
			req_complete_later(ctx, r, err);
			list_del(&ctx->pending, r);
			r->flags &= ~REQ_F_PENDING;
			continue;
		}
		if (r->opcode == XRING_OP_POLL_ADD) {
			wlist_add_tail(&xs->pollq, r);
			continue;
		}
		res = xs_issue(ctx, r);
		if (res != OP_QUEUED)
			req_complete(ctx, r, (int32_t) res, r->cflags);
	}
}

const struct xring_op *xsock_op(uint8_t opcode)
{
	switch (opcode) {
	case XRING_OP_CONNECT:
	case XRING_OP_BIND:
	case XRING_OP_LISTEN:
	case XRING_OP_ACCEPT:
	case XRING_OP_SEND:
	case XRING_OP_SENDMSG:
	case XRING_OP_SEND_ZC:
	case XRING_OP_SENDMSG_ZC:
	case XRING_OP_RECV:
	case XRING_OP_RECVMSG:
	case XRING_OP_SHUTDOWN:
	case XRING_OP_CLOSE:
	case XRING_OP_READ:
	case XRING_OP_WRITE:
	case XRING_OP_READV:
	case XRING_OP_WRITEV:
	case XRING_OP_POLL_ADD:
		return &op_xsock;
	default:
		return NULL;
	}
}

int xsock_udp_input(void *arg, uint64_t now, const struct ip4_view *ip, const struct udp_view *udp)
{
	struct xring_ctx *ctx = arg;
	struct xsock *xs = ctx->xsocks ? by_port(ctx, ip->dst, udp->dport) : NULL;
	struct xsock_dgram *d;

	if (!xs)
		return -ECONNREFUSED;
	if (xs->connected && (ip->src != xs->rip || udp->sport != xs->rport)) {
		xs->st->drop_not_peer++; /* a connected socket hears only its peer */
		return 0;
	}
	if (udp->payload_len > XSOCK_DGRAM_MAX) {
		xs->st->drop_too_big++;
		return 0;
	}
	if (xs->recvq.first) {
		struct xreq *req = xs->recvq.first;
		int64_t res;

		/* Straight into the waiting request's buffer, or a provided one. */
		if (selects(req)) {
			res = udp_deliver_select(ctx, req, udp->payload, udp->payload_len, false,
						 ip->src, udp->sport);
			if (res == OP_QUEUED)
				return 0;
		} else {
			res = deliver(req, ip->src, udp->sport, udp->payload, udp->payload_len);
		}
		wlist_del(&xs->recvq, req);
		req_complete(ctx, req, (int32_t) res, req->cflags);
		return 0;
	}
	if (xs->rx_tail - xs->rx_head == XSOCK_RX_SLOTS) {
		/* The receive queue is full: UDP drops, as the kernel does. */
		xs->st->drop_rxq_full++;
		return 0;
	}
	if (!xs->rx && !(xs->rx = malloc(sizeof(*xs->rx) * XSOCK_RX_SLOTS))) {
		xs->st->drop_rxq_full++; /* no memory for the queue */
		return 0;
	}
	d = &xs->rx[xs->rx_tail++ % XSOCK_RX_SLOTS];
	stats_rxq(xs->st, xs->rx_tail - xs->rx_head);
	d->src = ip->src;
	d->sport = udp->sport;
	d->len = (uint16_t) udp->payload_len;
	memcpy(d->data, udp->payload, udp->payload_len);
	if (xs->pollq.first)
		xpoll_wake(xs, POLLIN | POLLRDNORM);
	return 0;
}
