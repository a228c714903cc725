/* memif port internals shared by the control channel and the data path. */
#ifndef XRING_NIC_MEMIF_PRIV_H
#define XRING_NIC_MEMIF_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "nic/memif/memif.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "memif is little-endian on the wire");

enum mconn_state {
	MC_FREE,
	MC_S_WAIT_INIT,  /* server: HELLO sent */
	MC_S_SETUP,      /* server: INIT accepted, taking regions and rings until CONNECT */
	MC_C_WAIT_HELLO, /* client: connected, waiting for HELLO */
	MC_C_WAIT_CONN,  /* client: setup sent, waiting for CONNECTED */
	MC_UP,
};

struct mconn {
	int fd;
	enum mconn_state state;
	uint64_t deadline_ns; /* the handshake must be done by then */
};

#define MEMIF_HANDSHAKE_MS 5000

struct mregion {
	uint8_t *base;
	uint64_t size;
	int fd;
};

/* A ring announced by the client (ADD_RING), server side. */
struct mring_info {
	bool have;
	uint16_t region;
	uint32_t offset;
	uint8_t log2;
	int evfd;
};

/* A descriptor as read once from the shared ring (memif_queue.c desc_read()). */
struct dsc {
	uint16_t flags, region;
	uint32_t length, offset;
};

struct mq {
	struct port_queue pq; /* first: port_queue pointers are mq pointers */
	struct mport *p;
	bool up;
	bool armed;
	uint16_t gen; /* connection generation, in the top half of every buffer id */

	/* the ring we consume */
	struct memif_ring *rx;
	uint16_t rx_size, rx_mask;
	uint16_t rx_last; /* next slot to read */
	uint16_t rx_rel;  /* server: tail given back; client: head (refilled up to) */
	int rx_evfd;
	uint8_t *rx_done;    /* server: slot released by the caller, tail not yet moved */
	uint32_t *rx_shadow; /* client: per receive buffer, 1 while the server holds it */
	uint32_t *rx_free;   /* client: free receive buffers */
	unsigned rx_nfree;
	unsigned rx_ftake; /* client: where rx_free's oldest entry is (a FIFO) */
	/* Per slot, the data the next descriptor there most likely points at (client: the buffer
	 * it placed there; server: what it found there last time round), prefetched as soon as
	 * the slot fills, together with the descriptor instead of after it. */
	const uint8_t **rx_pred;

	/* the ring we produce */
	struct memif_ring *tx;
	uint16_t tx_size, tx_mask;
	uint16_t tx_pub;     /* published to the peer (client: head, server: tail) */
	uint16_t tx_post;    /* next slot to fill */
	uint16_t tx_end;     /* tx_post after the last complete frame */
	uint16_t tx_alloc;   /* server: next slot to lend */
	uint16_t tx_seen;    /* server: the client's head when last read (slots it gave us) */
	uint16_t tx_next_at; /* server: the slot tx_next was read from */
	bool tx_next_ok;     /* server: tx_next holds slot tx_next_at's checked descriptor */
	struct dsc tx_next;
	uint16_t tx_reaped; /* client: slots recycled */
	int tx_evfd;
	uint32_t *tx_shadow; /* client: buffer placed in each slot */
	uint32_t *tx_free;   /* client: free send buffers */
	unsigned tx_nfree;
	unsigned tx_ftake; /* client: where tx_free's oldest entry is (a FIFO) */

	/* client: this queue's buffers, tx ones first, then rx ones */
	uint8_t *bufs;
	uint32_t bufs_off; /* of bufs within region 0 */

	int epfd;
};

struct mtomb {
	void *addr;
	size_t len;
};

struct mport {
	struct port base;
	enum memif_role role;
	uint32_t id;
	char secret[MEMIF_SECRET_SZ + 1];
	char ifname[MEMIF_NAME_SZ];
	unsigned cfg_nq, cfg_log2, buf_size, retry_ms;
	uint16_t rx_flags; /* PORT_F_RX_* every received frame carries (csum=none) */

	struct sockaddr_un addr;
	socklen_t addrlen;
	bool abstract;
	int listen_fd;
	struct mport *owner;       /* server: the port whose socket we accept on (may be us) */
	struct mport *shared;      /* owner: other interfaces on our socket */
	struct mport *next_shared; /* in the owner's list */
	int ctl_epfd; /* listener and control connections; nested in every queue's epfd */
	struct mconn conns[1 + MEMIF_MAX_PENDING];
	int active; /* index in conns of the connection past INIT, -1 when none */
	uint64_t next_retry_ns;
	int retry_fd;      /* client: timerfd for the next attempt, in ctl_epfd */
	unsigned ctl_tick; /* rx_poll calls on queue 0 since the control channel last ran */

	/* the running connection */
	bool up;
	uint16_t gen;
	unsigned nq, log2;
	struct mregion regions[MEMIF_MAX_REGIONS];
	unsigned nregions;
	size_t pool_len; /* client: bytes of our region counted against XRING_MEM_LIMIT */
	struct mring_info rings[2][MEMIF_MAX_QUEUES]; /* [0] C2S, [1] S2C */
	uint64_t connects;

	/* mappings of finished connections, kept readable until the next one ends */
	struct mtomb tombs[MEMIF_MAX_REGIONS];
	unsigned ntombs;

	struct mq q[MEMIF_MAX_QUEUES];
	struct port_queue *qptr[MEMIF_MAX_QUEUES];
};

#define MQ_BUF(gen, idx) (((uint32_t) (gen) << 16) | (uint32_t) (idx))

extern const struct port_ops memif_client_ops;
extern const struct port_ops memif_server_ops;

/* memif_ctl.c */
void mport_fault(struct mport *p, const char *why);

/* memif_queue.c: bring a queue up on the current connection, or down */
int mq_up(struct mq *q);
void mq_down(struct mq *q);

/* memif_queue.c: the data path, one set per role */
int mq_cli_rx_poll(struct port_queue *pq, struct port_frame *f, unsigned max);
void mq_cli_rx_release(struct port_queue *pq, const struct port_frame *f, unsigned n);
int mq_cli_tx_alloc(struct port_queue *pq, struct port_frame *f, unsigned n);
int mq_cli_tx_post(struct port_queue *pq, const struct port_frame *f, unsigned n);
int mq_cli_tx_reap(struct port_queue *pq, uint64_t *cookies, unsigned max);
int mq_srv_rx_poll(struct port_queue *pq, struct port_frame *f, unsigned max);
void mq_srv_rx_release(struct port_queue *pq, const struct port_frame *f, unsigned n);
int mq_srv_tx_alloc(struct port_queue *pq, struct port_frame *f, unsigned n);
int mq_srv_tx_post(struct port_queue *pq, const struct port_frame *f, unsigned n);
int mq_srv_tx_reap(struct port_queue *pq, uint64_t *cookies, unsigned max);
int mq_tx_flush(struct port_queue *pq);
int mq_wait_fd(struct port_queue *pq);
int mq_arm(struct port_queue *pq);

#endif
