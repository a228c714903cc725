/*
 * Offloaded sockets: sockets whose traffic leaves through an xring port and so runs on the
 * ring's own stack. A socket is created as a kernel socket (through the kernel ring or by the
 * application); when a BIND or CONNECT shows that its traffic goes through a port, it becomes
 * an xsock and the kernel socket stays behind as a placeholder that reserves its address and
 * port in the kernel and keeps its descriptor number.
 *
 * Offloaded today, over plain descriptors: UDP (connect, bind, send / sendto / sendmsg,
 * recv / recvmsg) and TCP (connect, bind, listen, accept, send, recv, shutdown), with cancel
 * and close. Direct descriptors, multishot and zero-copy variants stay on the kernel path or
 * answer -EOPNOTSUPP on an offloaded socket.
 */
#ifndef XRING_OPS_XSOCK_H
#define XRING_OPS_XSOCK_H

#include <netinet/in.h>

#include "ops/netport.h"
#include "ring/ring.h"
#include "sqe/req.h"

#define XSOCK_RX_SLOTS  64
#define XSOCK_DGRAM_MAX 2048
#define XSOCK_HASH      256

struct xsock_dgram {
	uint32_t src; /* network order */
	uint16_t sport;
	uint16_t len;
	uint8_t data[XSOCK_DGRAM_MAX];
};

struct xsock {
	int fd;
	int type;        /* SOCK_DGRAM or SOCK_STREAM */
	struct tcb *tcb; /* SOCK_STREAM: the connection or listener, NULL before either */
	struct xring_ctx *ctx;
	struct req_wlist sendq;   /* TCP sends waiting for room, oldest first */
	struct req_wlist acceptq; /* accepts waiting for a connection */
	struct xreq *connecting;  /* the CONNECT waiting for the handshake */
	bool listening;
	struct netport *np;
	uint32_t lip, rip;     /* network order */
	uint16_t lport, rport; /* host order */
	bool connected;
	bool steered;
	uint32_t steer_handle;
	struct req_wlist recvq; /* receives waiting for a datagram, oldest first */
	struct xsock_dgram *rx; /* XSOCK_RX_SLOTS, taken at the first datagram that must wait */
	unsigned rx_head, rx_tail;
	uint64_t rx_drops;
	struct xsock *port_next;
	struct xsock *ready_next; /* on np->ready */
	bool on_ready;
	uint64_t dummy_sends, dummy_bytes; /* XRING_MSG_DUMMY sends walked (ops/xsock_dummy.c) */
	struct req_wlist zcq; /* TCP send_zc notifications waiting for the peer's ACK */
};

struct xsock_table {
	struct xsock **by_fd; /* indexed by descriptor: descriptors are small and dense */
	unsigned nfd;
	struct xsock *by_port[XSOCK_HASH];
	unsigned n;
};

/* The offloaded socket behind a plain descriptor, or NULL. */
struct xsock *xsock_by_fd(struct xring_ctx *ctx, int fd);
/* The operation that serves opcode on an offloaded socket. */
const struct xring_op *xsock_op(uint8_t opcode);
/* The iface's UDP hook. */
int xsock_udp_input(void *ctx, uint64_t now, const struct ip4_view *ip, const struct udp_view *udp);
void xsock_exit(struct xring_ctx *ctx);
/* The stack's tcp_rx_fn (xsock_rx.c): in-order payload straight into the waiting receive. */
size_t xsock_rx_place(void *arg, struct tcb *t, const uint8_t *data, size_t len);
/* xsock_zc.c. A TCP send_zc whose result (res) was posted: OP_QUEUED when its F_NOTIF waits
 * for the ACK on xs->zcq, else what it completes with. */
int64_t xsock_zc_park(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req, int64_t res);
/* TCP_EV_ACKED: post the notifications the ACK covers. */
void xsock_zc_acked(struct xsock *xs);
/* The connection is gone or closed: post them all. */
void xsock_zc_flush(struct xsock *xs);
/* req waits on zcq: its result is out, only its notification is left (it cannot be cancelled). */
bool xsock_zc_parked(const struct xreq *req);
/* Serves the receives of the sockets that became readable during a burst. */
void xsock_serve_ready(struct netport *np);
/* Ends every request waiting on xs (connect, sends, receives, accepts) with res; a TCP send
 * or receive that moved bytes already ends with their count instead. */
void xsock_fail_waiters(struct xring_ctx *ctx, struct xsock *xs, int32_t res);

/* xsock_port.c: the port of np went down (-ENETDOWN), failed (-EIO) or came back (0). */
void xsock_port_state(struct netport *np, int err);
/* Whether an opcode is refused with the port's error while the port is in one. */
bool xsock_port_refuses(uint8_t opcode);
/* An XRING_MSG_DUMMY send (any send opcode): its result, nothing leaves and nothing changes
 * but the socket's dummy counters. */
int64_t xsock_dummy_send(struct xsock *xs, struct xreq *req);

extern const struct xring_op op_connect;
extern const struct xring_op op_bind;
extern const struct xring_op op_accept;

#endif
