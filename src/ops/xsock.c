#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/proc.h"
#include "ops/kring.h"
#include "ops/ops.h"
#include "ops/xsock.h"
#include "stack/wire/udp.h"
#include "util/log.h"

static unsigned hash_fd(int fd)
{
	return (unsigned) fd % XSOCK_HASH;
}

static unsigned hash_port(uint16_t port)
{
	return port % XSOCK_HASH;
}

struct xsock *xsock_by_fd(struct xring_ctx *ctx, int fd)
{
	struct xsock *xs;

	if (!ctx->xsocks || fd < 0)
		return NULL;
	for (xs = ctx->xsocks->by_fd[hash_fd(fd)]; xs; xs = xs->fd_next)
		if (xs->fd == fd)
			return xs;
	return NULL;
}

static struct xsock *by_port(struct xring_ctx *ctx, uint32_t ip, uint16_t port)
{
	struct xsock *xs;

	for (xs = ctx->xsocks->by_port[hash_port(port)]; xs; xs = xs->port_next)
		if (xs->lport == port && (xs->lip == ip || xs->lip == 0))
			return xs;
	return NULL;
}

static int xsock_new(struct xring_ctx *ctx, int fd, struct netport *np, uint32_t lip,
		     uint16_t lport, struct xsock **out)
{
	struct xsock *xs;

	if (!ctx->xsocks) {
		ctx->xsocks = calloc(1, sizeof(*ctx->xsocks));
		if (!ctx->xsocks)
			return -ENOMEM;
	}
	if (by_port(ctx, lip, lport))
		return -EADDRINUSE;
	xs = calloc(1, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	xs->rx = malloc(sizeof(*xs->rx) * XSOCK_RX_SLOTS);
	if (!xs->rx) {
		free(xs);
		return -ENOMEM;
	}
	xs->fd = fd;
	xs->type = SOCK_DGRAM;
	xs->np = np;
	xs->lip = lip;
	xs->lport = lport;
	xs->fd_next = ctx->xsocks->by_fd[hash_fd(fd)];
	ctx->xsocks->by_fd[hash_fd(fd)] = xs;
	xs->port_next = ctx->xsocks->by_port[hash_port(lport)];
	ctx->xsocks->by_port[hash_port(lport)] = xs;
	ctx->xsocks->n++;
	*out = xs;
	return 0;
}

/* Pending receives end with -ECANCELED: the socket they wait on is gone. */
static void xsock_free(struct xring_ctx *ctx, struct xsock *xs)
{
	struct xsock **pp;

	for (pp = &ctx->xsocks->by_fd[hash_fd(xs->fd)]; *pp; pp = &(*pp)->fd_next)
		if (*pp == xs) {
			*pp = xs->fd_next;
			break;
		}
	for (pp = &ctx->xsocks->by_port[hash_port(xs->lport)]; *pp; pp = &(*pp)->port_next)
		if (*pp == xs) {
			*pp = xs->port_next;
			break;
		}
	ctx->xsocks->n--;
	if (xs->steered)
		netport_unsteer(xs->np, xs->steer_handle);
	while (xs->recvq.first) {
		struct xreq *r = xs->recvq.first;

		wlist_del(&xs->recvq, r);
		r->u.net.xs = NULL;
		list_del(&ctx->pending, r);
		r->flags &= ~REQ_F_PENDING;
		req_complete_later(ctx, r, -ECANCELED);
	}
	free(xs->rx);
	free(xs);
}

void xsock_exit(struct xring_ctx *ctx)
{
	if (!ctx->xsocks)
		return;
	for (unsigned i = 0; i < XSOCK_HASH; i++)
		while (ctx->xsocks->by_fd[i])
			xsock_free(ctx, ctx->xsocks->by_fd[i]);
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

static bool is_udp(int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_DGRAM)
		return false;
	len = sizeof(domain);
	return !getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) && domain == AF_INET;
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

static int64_t to_kernel(struct xring_ctx *ctx, struct xreq *req)
{
	req->op = &op_passthrough;
	return op_passthrough.issue(ctx, req);
}

static int64_t offload(struct xring_ctx *ctx, struct xreq *req, struct xport *xp, uint16_t port,
		       const struct sockaddr_in *peer)
{
	struct netport *np;
	struct xsock *xs;
	int err, lport;

	np = netport_get(ctx, xp, &err);
	if (!np)
		return err;
	lport = reserve(req->fd, xp->ip, port);
	if (lport < 0)
		return lport;
	err = xsock_new(ctx, req->fd, np, xp->ip, (uint16_t) lport, &xs);
	if (err)
		return err;
	/* Its datagrams come to this ring's queue (3-tuple: any remote may send to it). */
	if (netport_steer(np,
			  &(struct port_rule){.kind = PORT_RULE_UDP,
					      .local_ip = xp->ip,
					      .local_port = htons((uint16_t) lport)},
			  &xs->steer_handle) == 0)
		xs->steered = np->xp->port->ops->steer != NULL;
	if (peer) {
		xs->rip = peer->sin_addr.s_addr;
		xs->rport = ntohs(peer->sin_port);
		xs->connected = true;
	}
	log_debug("fd %d: UDP offloaded on port %u, local port %d", req->fd, xp->id, lport);
	return 0;
}

static bool may_offload(struct xring_ctx *ctx, const struct xreq *req)
{
	return ports_count() && !(req->flags & REQ_F_FIXED_FILE) && is_udp(req->fd);
}

static int64_t connect_issue(struct xring_ctx *ctx, struct xreq *req)
{
	const struct sockaddr_in *sin = addr_in(req);
	struct xport *xp;

	if (!sin || !may_offload(ctx, req) || !(xp = ports_route(sin->sin_addr.s_addr)) ||
	    !proc_offload(RULES_UDP_CONNECT, sin->sin_addr.s_addr, sin->sin_port))
		return to_kernel(ctx, req);
	return offload(ctx, req, xp, 0, sin);
}

static int64_t bind_issue(struct xring_ctx *ctx, struct xreq *req)
{
	const struct sockaddr_in *sin = addr_in(req);
	struct xport *xp;

	if (!sin || !may_offload(ctx, req) || !(xp = ports_by_addr(sin->sin_addr.s_addr)) ||
	    !proc_offload(RULES_UDP_RECEIVER, sin->sin_addr.s_addr, sin->sin_port))
		return to_kernel(ctx, req);
	return offload(ctx, req, xp, ntohs(sin->sin_port), NULL);
}

const struct xring_op op_connect = {
	.name = "CONNECT",
	.ioprio = true,
	.prep = net_prep,
	.issue = connect_issue,
};

const struct xring_op op_bind = {
	.name = "BIND",
	.ioprio = true,
	.prep = net_prep,
	.issue = bind_issue,
};

/* Operations on offloaded sockets. */

static int xs_prep(struct xring_ctx *ctx, struct xreq *req, const struct xring_sqe *sqe)
{
	req->u.net.sqe = *sqe;
	req->u.net.xs = xsock_by_fd(ctx, sqe->fd);
	req->u.net.addrlen = 0;
	if (sqe->ioprio || (sqe->flags & XRING_SQE_BUFFER_SELECT))
		return -EOPNOTSUPP; /* multishot, zero-copy flags, buffer selection: not yet */
	if (sqe->opcode == XRING_OP_SEND && sqe->addr2)
		return read_addr(req, sqe->addr2, sqe->addr_len);
	if (sqe->opcode == XRING_OP_CONNECT)
		return read_addr(req, sqe->addr, (uint32_t) sqe->off);
	return 0;
}

/* Builds and sends one datagram from the gathered iovecs. */
static int64_t udp_send(struct xring_ctx *ctx, struct xsock *xs, const struct iovec *iov,
			size_t niov, const struct sockaddr_in *to)
{
	struct iface *ifc = &xs->np->ifc;
	uint32_t dst = xs->rip;
	uint16_t dport = xs->rport;
	struct iface_tx tx;
	size_t len = 0;
	int err;

	if (to) {
		dst = to->sin_addr.s_addr;
		dport = ntohs(to->sin_port);
	} else if (!xs->connected) {
		return -EDESTADDRREQ;
	}
	for (size_t i = 0; i < niov; i++)
		len += iov[i].iov_len;
	err = iface_ip4_begin(ifc, clock_mono_ns(), dst, &tx);
	if (err)
		return err;
	if (len > tx.l4_cap - UDP_HLEN) {
		iface_ip4_abort(ifc, &tx);
		return -EMSGSIZE;
	}
	for (size_t i = 0, off = UDP_HLEN; i < niov; off += iov[i].iov_len, i++)
		memcpy(tx.l4 + off, iov[i].iov_base, iov[i].iov_len);
	udp_emit(tx.l4, tx.l4_cap, xs->lport, dport, xs->lip, dst, len, 0);
	err = iface_ip4_commit(ifc, &tx, IPPROTO_UDP, 0, UDP_HLEN + len);
	return err ? err : (int64_t) len;
}

/* Copies a datagram into a receive request; returns its result. */
static int32_t deliver(struct xreq *req, uint32_t src, uint16_t sport, const uint8_t *data,
		       size_t len)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	size_t n;

	if (req->opcode == XRING_OP_RECV) {
		n = len < sqe->len ? len : sqe->len;
		memcpy((void *) (uintptr_t) sqe->addr, data, n);
		return (int32_t) ((sqe->msg_flags & MSG_TRUNC) ? len : n);
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

static int64_t xs_issue(struct xring_ctx *ctx, struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	struct xsock *xs = req->u.net.xs;

	if (!xs)
		return -EBADF;
	switch (req->opcode) {
	case XRING_OP_SEND: {
		struct iovec iov = {(void *) (uintptr_t) sqe->addr, sqe->len};

		return udp_send(ctx, xs, &iov, 1, addr_in(req));
	}
	case XRING_OP_SENDMSG: {
		const struct msghdr *msg = (const void *) (uintptr_t) sqe->addr;
		const struct sockaddr_in *to = msg->msg_name;

		if (to && (msg->msg_namelen < sizeof(*to) || to->sin_family != AF_INET))
			return -EINVAL;
		return udp_send(ctx, xs, msg->msg_iov, msg->msg_iovlen, to);
	}
	case XRING_OP_RECV:
	case XRING_OP_RECVMSG:
		if (xs->rx_head != xs->rx_tail) {
			const struct xsock_dgram *d = &xs->rx[xs->rx_head % XSOCK_RX_SLOTS];
			int32_t res = deliver(req, d->src, d->sport, d->data, d->len);

			if (!(sqe->msg_flags & MSG_PEEK))
				xs->rx_head++;
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
			return 0;
		}
		if (!sin)
			return -EAFNOSUPPORT;
		xs->rip = sin->sin_addr.s_addr;
		xs->rport = ntohs(sin->sin_port);
		xs->connected = true;
		return 0;
	}
	case XRING_OP_SHUTDOWN:
		return xs->connected ? 0 : -ENOTCONN;
	case XRING_OP_BIND:
		return -EINVAL; /* already bound */
	case XRING_OP_CLOSE:
		/* The offloaded socket goes now; the kernel closes the placeholder descriptor. */
		xsock_free(ctx, xs);
		return to_kernel(ctx, req);
	default:
		return -EOPNOTSUPP;
	}
}

static int xs_cancel(struct xring_ctx *ctx, struct xreq *req)
{
	if (req->u.net.xs)
		wlist_del(&req->u.net.xs->recvq, req);
	return 0;
}

static const struct xring_op op_xsock = {
	.name = "XSOCK",
	.ioprio = true,
	.buffer_select = true,
	.prep = xs_prep,
	.issue = xs_issue,
	.cancel = xs_cancel,
};

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
		xs->rx_drops++; /* a connected socket hears only its peer */
		return 0;
	}
	if (udp->payload_len > XSOCK_DGRAM_MAX) {
		xs->rx_drops++;
		return 0;
	}
	if (xs->recvq.first) {
		struct xreq *req = xs->recvq.first;

		/* Straight into the waiting request's buffer. */
		wlist_del(&xs->recvq, req);
		req_complete(ctx, req,
			     deliver(req, ip->src, udp->sport, udp->payload, udp->payload_len), 0);
		return 0;
	}
	if (xs->rx_tail - xs->rx_head == XSOCK_RX_SLOTS) {
		xs->rx_drops++; /* the receive queue is full: UDP drops, as the kernel does */
		return 0;
	}
	d = &xs->rx[xs->rx_tail++ % XSOCK_RX_SLOTS];
	d->src = ip->src;
	d->sport = udp->sport;
	d->len = (uint16_t) udp->payload_len;
	memcpy(d->data, udp->payload, udp->payload_len);
	return 0;
}
