/*
 * Offloaded sockets: sockets whose traffic leaves through an xring port and so runs on the
 * ring's own stack. A socket is created as a kernel socket (through the kernel ring or by the
 * application); when a BIND or CONNECT shows that its traffic goes through a port, it becomes
 * an xsock and the kernel socket stays behind as a placeholder that reserves its address and
 * port in the kernel and keeps its descriptor number.
 *
 * Offloaded today, over plain and direct descriptors (port and slot kept by the placeholder,
 * see xsock_direct.c): UDP (connect, bind, send / sendto / sendmsg / send_zc, recv / recvmsg,
 * single and multishot into provided buffers) and TCP (connect, bind, listen, accept plain,
 * direct and multishot, the same sends and receives, shutdown), with cancel, link timeouts,
 * close and close_direct; read / write (as recv / send; readv / writev too) and poll
 * (single and multishot, with POLL_REMOVE's removal and updates, xsock_poll.c). Other opcodes
 * that reach an offloaded socket answer -EOPNOTSUPP.
 */
#ifndef XRING_OPS_XSOCK_H
#define XRING_OPS_XSOCK_H

#include <netinet/in.h>
#include <sys/uio.h>

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
	int fd;   /* the plain descriptor, -1 for a direct one */
	int slot; /* the direct descriptor's slot in the registered table, -1 for a plain one */
	int type; /* SOCK_DGRAM or SOCK_STREAM */
	struct tcb *tcb; /* SOCK_STREAM: the connection or listener, NULL before either */
	struct xring_ctx *ctx;
	struct req_wlist sendq;   /* TCP sends waiting for room, oldest first */
	struct req_wlist acceptq; /* accepts waiting for a connection */
	struct xreq *connecting;  /* the CONNECT waiting for the handshake */
	bool listening;
	bool err_taken; /* the connection's error was reported (take_err) */
	struct netport *np;
	uint32_t lip, rip;     /* network order */
	uint16_t lport, rport; /* host order */
	bool connected;
	bool steered; /* holds a reference on its port's rule XSOCK_RULE (netport_steer.c) */
	struct req_wlist recvq; /* receives waiting for a datagram, oldest first */
	struct xsock_dgram *rx; /* XSOCK_RX_SLOTS, taken at the first datagram that must wait */
	unsigned rx_head, rx_tail;
	struct xsock *port_next;
	struct xsock *ready_next; /* on np->ready */
	bool on_ready;
	struct xstats_sock *st; /* its published counters (stats/stats.h), or the ring's sink */
	struct req_wlist zcq;   /* TCP send_zc notifications waiting for the peer's ACK */
	struct req_wlist zcc;   /* send_zc requests stopped on the way, until their end (xs_end) */
	struct req_wlist pollq; /* POLL_ADDs waiting (xsock_poll.c) */
};

/* The steering rule of an offloaded socket: its local address and port, any remote. */
#define XSOCK_RULE(xs)                                                                             \
	.kind = (xs)->type == SOCK_DGRAM ? PORT_RULE_UDP : PORT_RULE_TCP, .local_ip = (xs)->lip,   \
	.local_port = htons((xs)->lport)

struct xsock_table {
	struct xsock **by_fd; /* indexed by descriptor: descriptors are small and dense */
	unsigned nfd;
	struct xsock *by_port[XSOCK_HASH];
	unsigned n;
	struct xsock **by_slot; /* direct descriptors (xsock_direct.c), nslots entries */
	unsigned nslots, ndirect;
	bool in_direct; /* xdirect_issue() runs an op on a slot's stand-in descriptor */
};

/* The offloaded socket behind a plain descriptor, or NULL. */
struct xsock *xsock_by_fd(struct xring_ctx *ctx, int fd);

/* The offloaded socket in a registered-table slot, or NULL. */
static inline struct xsock *xsock_by_slot(struct xring_ctx *ctx, uint32_t slot)
{
	const struct xsock_table *t = ctx->xsocks;

	return t->ndirect && slot < t->nslots ? t->by_slot[slot] : NULL;
}

/* The offloaded socket an SQE names (plain or fixed descriptor, or CLOSE's file_index), or
 * NULL. ctx->xsocks must exist. */
static inline struct xsock *xsock_of_sqe(struct xring_ctx *ctx, const struct xring_sqe *sqe)
{
	if (sqe->flags & XRING_SQE_FIXED_FILE)
		return xsock_by_slot(ctx, (uint32_t) sqe->fd);
	if (sqe->opcode == XRING_OP_CLOSE && sqe->file_index && !sqe->fd)
		return xsock_by_slot(ctx, sqe->file_index - 1);
	return xsock_by_fd(ctx, sqe->fd);
}
/* xs was just offloaded: the requests still waiting on its kernel socket (polls, and receives
 * on UDP) come over to it, as they would have seen its traffic on the kernel path. */
void xsock_adopt(struct xring_ctx *ctx, struct xsock *xs);
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
/* A send_zc stopped on the way (its result is out) had lent bytes up to stream offset end: its
 * notification waits on zcq for their ACK (true, and req's chain goes on or fails now), or can
 * follow at once (false: acknowledged already, or the connection reads no buffer any more). */
bool xsock_zc_wait(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req, uint32_t end);
/* req waits on zcq: its result is out, only its notification is left (it cannot be cancelled). */
bool xsock_zc_parked(const struct xreq *req);
/* Ends an offloaded socket (its pending requests fail with -ECANCELED). Its descriptor, plain
 * or direct, is the caller's business. */
void xsock_free(struct xring_ctx *ctx, struct xsock *xs);
void xsock_unhash_fd(struct xring_ctx *ctx, struct xsock *xs);

/*
 * Direct descriptors on offloaded sockets (xsock_direct.c). The kernel ring's table slot holds
 * the placeholder kernel socket, so the slot is taken there too and allocation, updates and
 * kernel-side fixed-file operations keep their meaning; this table says which slots are
 * offloaded. Slots past the kernel's table (xring-only, files/files.h) hold accepted
 * connections with no kernel file at all.
 */
/* Runs fn (connect, bind or accept on a plain descriptor) on a fixed-file request: with a
 * plain descriptor of the slot's socket while fn decides, so an offloaded socket made there
 * lands in the slot. worth: whether the request could be offloaded at all. */
int64_t xdirect_issue(struct xring_ctx *ctx, struct xreq *req,
		      int64_t (*fn)(struct xring_ctx *, struct xreq *), bool worth);
/* Puts an accepted connection's socket (xs, on plain descriptor fd, which this closes; or
 * XSOCK_FD_NONE) into the slot file_index names (IORING_FILE_INDEX_ALLOC: one from the alloc
 * range). The accept's result: 0, the allocated slot, or a negated errno (xs is then freed). */
int64_t xdirect_adopt(struct xring_ctx *ctx, struct xsock *xs, int fd, uint32_t file_index);
/* An accepted connection bound for file_index (0: a plain descriptor) needs a kernel
 * descriptor: not when it lands in an xring-only slot, so none is made. */
bool xdirect_fd_needed(struct xring_ctx *ctx, uint32_t file_index);
#define XSOCK_FD_NONE (-2) /* xsock_new: a socket with no descriptor (an xring-only slot's) */
/* The slot now holds something else, or nothing: its offloaded socket, if any, ends. */
void xdirect_slot_gone(struct xring_ctx *ctx, uint32_t slot);
/* A request goes to the kernel: a slot it installs a file into is no longer offloaded. Returns
 * -EBADF instead when the request would put a file into, or close, an xring-only slot. */
int xdirect_kernel_issue(struct xring_ctx *ctx, const struct xring_sqe *sqe);
void xdirect_unslot(struct xring_ctx *ctx, struct xsock *xs);
/* A CLOSE (plain, or close_direct) on xs: that name goes; xs ends with its last name. Returns
 * whether the kernel has a file to close too (not for an xring-only slot). */
bool xdirect_close(struct xring_ctx *ctx, struct xsock *xs, const struct xreq *req);
/* The application registered the offloaded socket xs (by its plain descriptor) in slot too. */
void xdirect_alias(struct xring_ctx *ctx, struct xsock *xs, uint32_t slot);
void xdirect_exit(struct xring_ctx *ctx);
/* The registered table is gone: every slot's name goes (sockets with a plain descriptor
 * stay). */
void xdirect_unregister(struct xring_ctx *ctx);
/* Serves the receives of the sockets that became readable during a burst. */
void xsock_serve_ready(struct netport *np);
/* Ends every request waiting on xs (connect, sends, receives, accepts) with res; a TCP send
 * or receive that moved bytes already ends with their count instead. */
void xsock_fail_waiters(struct xring_ctx *ctx, struct xsock *xs, int32_t res);

/* xsock_port.c: the port of np went down (-ENETDOWN), failed (-EIO) or came back (0). */
void xsock_port_state(struct netport *np, int err);
/*
 * Polling (xsock_poll.c). xpoll_mask(): the socket's readiness as Linux's tcp_poll() /
 * udp_poll() would say. xpoll_wake(): an event of the stack may have made the bits in hint
 * true; the polls waiting for them fire. xpoll_hint(): those bits for a set of TCP_EV_*.
 */
uint32_t xpoll_mask(const struct xsock *xs);
int xpoll_prep(const struct xring_sqe *sqe);
int64_t xpoll_issue(struct xring_ctx *ctx, struct xsock *xs, struct xreq *req);
void xpoll_wake(struct xsock *xs, uint32_t hint);
uint32_t xpoll_hint(unsigned tcp_events);
extern const struct xring_op op_poll_remove;
/* Whether an opcode is refused with the port's error while the port is in one. */
bool xsock_port_refuses(uint8_t opcode);
/* An XRING_MSG_DUMMY send (any send opcode): its result, nothing leaves and nothing changes
 * but the socket's dummy counters. */
int64_t xsock_dummy_send(struct xsock *xs, struct xreq *req);

/*
 * Receives into a provided buffer (xsock_recvmsg.c). xsmsg_room(): where the payload goes in b
 * and how much fits (-EFAULT when a multishot RECVMSG's header does not fit). xsmsg_done():
 * the CQE's res for n bytes received of full (a datagram's length), with the RECVMSG name
 * (from, NULL for TCP) and flags written where the request wants them.
 */
int xsmsg_room(const struct xreq *req, const struct xring_buf *b, uint8_t **payload, uint32_t *cap);
int32_t xsmsg_done(const struct xreq *req, const struct xring_buf *b, uint32_t n, size_t full,
		   const struct sockaddr_in *from);

extern const struct xring_op op_connect;
extern const struct xring_op op_bind;
extern const struct xring_op op_accept;

/* The bytes an iovec array names. */
static inline size_t iov_total(const struct iovec *iov, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

#endif
