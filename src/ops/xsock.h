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
#include "stats/shm.h"

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
	struct xsock *port_next;
	struct xsock *ready_next; /* on np->ready */
	bool on_ready;
	struct xstats_sock *st; /* its published counters (stats/stats.h), or the ring's sink */
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
/* Serves the receives of the sockets that became readable during a burst. */
void xsock_serve_ready(struct netport *np);
/* An XRING_MSG_DUMMY send (any send opcode): its result, nothing leaves and nothing changes
 * but the socket's dummy counters. */
int64_t xsock_dummy_send(struct xsock *xs, struct xreq *req);

extern const struct xring_op op_connect;
extern const struct xring_op op_bind;
extern const struct xring_op op_accept;

#endif
