/*
 * Dummy sends (XRING_MSG_DUMMY), after XLIO's VMA_SND_FLAGS_DUMMY: the send path of an offloaded
 * socket is walked (a send buffer taken from the port queue, the Ethernet, IPv4 and UDP or TCP
 * headers written, the payload copied and checksummed) and then the buffer is given back
 * unsent. An application calls it between real sends so that the path's code and data stay in
 * the caches. Nothing reaches the wire and nothing changes in the socket or the stack (no
 * sequence number moves, no neighbour is resolved) except the socket's dummy counters.
 */
#include <errno.h>
#include <string.h>

#include <xring.h>

#include "ops/xsock.h"
#include "stack/tcp/tcp_int.h"
#include "stack/wire/eth.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/tcp.h"
#include "stack/wire/udp.h"

static size_t gather(const struct xring_sqe *sqe, uint8_t opcode, struct iovec *one,
		     const struct iovec **iov, size_t *niov, const struct sockaddr_in **to)
{
	*to = NULL;
	if (opcode == XRING_OP_SEND || opcode == XRING_OP_SEND_ZC) {
		one->iov_base = (void *) (uintptr_t) sqe->addr;
		one->iov_len = sqe->len;
		*iov = one;
		*niov = 1;
	} else {
		const struct msghdr *msg = (const void *) (uintptr_t) sqe->addr;

		*iov = msg->msg_iov;
		*niov = msg->msg_iovlen;
		if (msg->msg_name && msg->msg_namelen >= sizeof(**to))
			*to = msg->msg_name;
	}
	return iov_total(*iov, *niov);
}

/* Copies up to cap bytes of the iovecs to dst. */
static size_t copy_in(uint8_t *dst, size_t cap, const struct iovec *iov, size_t niov)
{
	size_t n = 0;

	for (size_t i = 0; i < niov && n < cap; i++) {
		size_t k = iov[i].iov_len < cap - n ? iov[i].iov_len : cap - n;

		memcpy(dst + n, iov[i].iov_base, k);
		n += k;
	}
	return n;
}

int64_t xsock_dummy_send(struct xsock *xs, struct xreq *req)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	struct iface *ifc = &xs->np->ifc;
	static const uint8_t no_mac[6];
	const struct sockaddr_in *to;
	const struct iovec *iov;
	struct iface_txbuf b = {0};
	struct iovec one;
	size_t niov, len, cap, n;
	uint32_t dst = xs->rip;
	uint8_t *l4;
	int ret = 0;

	len = gather(sqe, req->opcode, &one, &iov, &niov, &to);
	if (xs->type == SOCK_STREAM) {
		if (!xs->tcb || xs->listening)
			return -EPIPE;
		if (tcp_error(xs->tcb))
			return tcp_error(xs->tcb);
	} else if (req->opcode == XRING_OP_SEND || req->opcode == XRING_OP_SEND_ZC) {
		to = (const void *) req->u.net.addr;
		if (req->u.net.addrlen < sizeof(*to))
			to = NULL;
	}
	if (to && to->sin_family != AF_INET)
		return -EAFNOSUPPORT;
	if (xs->type == SOCK_DGRAM && to)
		dst = to->sin_addr.s_addr;
	else if (xs->type == SOCK_DGRAM && !xs->connected)
		return -EDESTADDRREQ;
	/* The device's buffer, straight: the neighbour table is not consulted (no ARP). */
	if (ifc->dev.ops->tx_alloc(ifc->dev.ctx, &b) < 0)
		return -ENOBUFS;
	cap = b.cap < (size_t) ifc->mtu + ETH_HLEN ? b.cap : (size_t) ifc->mtu + ETH_HLEN;
	if (cap < ETH_HLEN + IP4_HLEN + TCP_HLEN) {
		ret = -ENOBUFS;
		goto out;
	}
	cap -= ETH_HLEN + IP4_HLEN;
	l4 = b.data + ETH_HLEN + IP4_HLEN;
	eth_emit(b.data, ETH_HLEN, no_mac, ifc->mac, ETH_P_IPV4);
	if (xs->type == SOCK_DGRAM) {
		if (len > cap - UDP_HLEN) {
			ret = -EMSGSIZE;
			goto out;
		}
		n = copy_in(l4 + UDP_HLEN, cap - UDP_HLEN, iov, niov);
		udp_emit(l4, cap, xs->lport, to ? ntohs(to->sin_port) : xs->rport, xs->lip, dst, n,
			 0);
		n += UDP_HLEN;
	} else {
		const struct tcb *t = xs->tcb;
		struct tcp_hdr h = {.sport = xs->lport,
				    .dport = xs->rport,
				    .seq = t->snd_nxt,
				    .ack = t->rcv_nxt,
				    .flags = TCP_ACK | TCP_PSH};
		size_t room = cap - TCP_HLEN < t->mss ? cap - TCP_HLEN : t->mss;

		/* One segment's worth: what the first segment of this send would carry. */
		n = copy_in(l4 + TCP_HLEN, room, iov, niov);
		ret = tcp_emit(l4, cap, &h, NULL, l4 + TCP_HLEN, n, xs->lip, dst, 0);
		if (ret < 0)
			goto out;
		n = (size_t) ret;
		ret = 0;
	}
	ip4_emit(b.data + ETH_HLEN, IP4_HLEN + n,
		 &(struct ip4_hdr){.src = xs->lip,
				   .dst = dst,
				   .ttl = 64,
				   .proto = xs->type == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP,
				   .df = true},
		 n);
	b.len = ETH_HLEN + IP4_HLEN + n;
out:
	ifc->dev.ops->tx_abort(ifc->dev.ctx, &b);
	if (ret)
		return ret;
	xs->st->dummy_sends++;
	xs->st->dummy_bytes += len;
	return (int64_t) len;
}
