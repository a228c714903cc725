/*
 * Receives into provided buffers on offloaded sockets: how much of a buffer the payload may
 * use and, for RECVMSG, where the name and flags go. A multishot RECVMSG lays each buffer out
 * as the kernel does (io_uring_prep_recvmsg_multishot(3)): a struct io_uring_recvmsg_out, then
 * msg_namelen bytes for the source address, msg_controllen bytes for control data, then the
 * payload; the CQE's res counts all of it. Readers use xring_recvmsg_validate() and friends.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "ops/xsock.h"

static const struct msghdr *req_msg(const struct xreq *req)
{
	return (const struct msghdr *) (uintptr_t) req->u.net.sqe.addr;
}

static bool msg_multishot(const struct xreq *req)
{
	return req->opcode == XRING_OP_RECVMSG && (req->u.net.sqe.ioprio & XRING_RECV_MULTISHOT);
}

int xsmsg_room(const struct xreq *req, const struct xring_buf *b, uint8_t **payload, uint32_t *cap)
{
	uint32_t len = b->len, want = req->u.net.sqe.len;

	if (req->opcode == XRING_OP_RECVMSG) {
		const struct msghdr *msg = req_msg(req);

		/* With a provided buffer, the msghdr's one iovec (if any) only limits the length.
		 */
		want = msg->msg_iovlen ? (uint32_t) msg->msg_iov[0].iov_len : 0;
	}
	if (want && want < len)
		len = want;
	*payload = (uint8_t *) (uintptr_t) b->addr;
	if (msg_multishot(req)) {
		const struct msghdr *msg = req_msg(req);
		size_t hdr =
			sizeof(struct xring_recvmsg_out) + msg->msg_namelen + msg->msg_controllen;

		if (len < hdr)
			return -EFAULT;
		*payload += hdr;
		len -= (uint32_t) hdr;
	}
	*cap = len;
	return 0;
}

int32_t xsmsg_done(const struct xreq *req, const struct xring_buf *b, uint32_t n, size_t full,
		   const struct sockaddr_in *from)
{
	const struct xring_sqe *sqe = &req->u.net.sqe;
	uint32_t flags = full > n ? MSG_TRUNC : 0;
	struct msghdr *msg;

	if (req->opcode != XRING_OP_RECVMSG)
		return (int32_t) n;
	msg = (struct msghdr *) (uintptr_t) sqe->addr;
	if (!msg_multishot(req)) {
		if (from && msg->msg_name)
			memcpy(msg->msg_name, from,
			       msg->msg_namelen < sizeof(*from) ? msg->msg_namelen : sizeof(*from));
		msg->msg_namelen = from ? sizeof(*from) : 0;
		msg->msg_controllen = 0;
		msg->msg_flags = (int) flags;
		return (int32_t) n;
	} else {
		struct xring_recvmsg_out out = {
			.namelen = from ? sizeof(*from) : 0,
			.controllen = 0,
			/* As the socket's recvmsg returns it: the whole datagram with MSG_TRUNC. */
			.payloadlen = (sqe->msg_flags & MSG_TRUNC) ? (uint32_t) full : n,
			.flags = flags,
		};
		uint8_t *base = (uint8_t *) (uintptr_t) b->addr;

		memcpy(base, &out, sizeof(out));
		if (from)
			memcpy(base + sizeof(out), from,
			       msg->msg_namelen < sizeof(*from) ? msg->msg_namelen : sizeof(*from));
		return (int32_t) (sizeof(out) + msg->msg_namelen + msg->msg_controllen + n);
	}
}
