/*
 * memif port: a port.h backend over a memif shared-memory link to another xring process, VPP,
 * or DPDK's net_memif. No threads: the control channel (accept, handshake, reconnect) advances
 * only inside memif_poll(), which the owner calls from its event loop; the data path needs no
 * system call except the interrupt kick, at most once per tx_flush().
 *
 * Queue i of the port is the ring pair with index i (C2S and S2C). Received frames larger than
 * one buffer arrive as chains: every piece but the last carries PORT_F_MORE, and a chain may
 * continue in the next rx_poll(). Frames to send are chained the same way.
 *
 * Two things the user of a memif queue must know:
 *  - A server receives in the client's memory and gives slots back in ring order: a frame it
 *    holds keeps every later slot from the client. Release promptly, or copy what must wait.
 *  - Frame bytes live in memory the peer can write at any time. Descriptors are checked after
 *    one read, so nothing here goes out of bounds, but a parser of frame contents must read
 *    each field once (or copy the frame) if it does not trust the peer.
 *
 * All of a port's queues and memif_poll() must run on one thread: the control channel (run by
 * memif_poll(), and by queue 0's rx_poll() and arm()) takes every queue down when the link drops.
 *
 * wait_fd() is an epoll fd per queue that becomes readable when the peer interrupts the queue
 * (after arm()) or when the control channel has work; either way, call memif_poll() and poll the
 * queue. While a client is disconnected it retries every retry_ms: call memif_poll() at least
 * that often. memif has no send-completion interrupt.
 */
#ifndef XRING_NIC_MEMIF_H
#define XRING_NIC_MEMIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nic/port.h"
#include "nic/memif/memif_proto.h"

enum memif_role {
	MEMIF_ROLE_CLIENT,
	MEMIF_ROLE_SERVER
};

struct memif_config {
	const char *path; /* socket; a leading '@' puts it in the abstract namespace */
	enum memif_role role;
	uint32_t id;        /* interface id, matched by the server */
	const char *secret; /* NULL or up to 24 bytes */
	const char *name;   /* our interface name (sent in CONNECT / CONNECTED) */
	unsigned nqueues;   /* queue pairs wanted; 0 means 1 */
	unsigned log2_ring; /* ring size, client: 0 means 10 (1024 slots) */
	unsigned buf_size;  /* client: bytes per buffer (64..65535), 0 means 2048 */
	unsigned retry_ms;  /* client reconnect interval, 0 means 200 */
	uint8_t mac[6];
	uint16_t mtu; /* 0 means 1500 */
	/* Both ends trust the link (memory, no wire to corrupt it): TCP/UDP checksums are neither
	 * filled on send nor checked on receive (PORT_CAP_L4_CSUM_NONE). Only for peers
	 * configured the same way: a peer that checks would drop what we send. */
	bool csum_none;
	uint32_t ip; /* network byte order, optional */
	uint8_t prefix_len;
	/* server: take connections on this server port's socket instead of opening one; the
	 * interface id tells them apart (path is then ignored). Poll every port; destroy the
	 * sharing ports before the one that owns the socket. */
	struct port *share;
};

/* Limits we accept from any peer. */
#define MEMIF_MAX_QUEUES    16
#define MEMIF_MAX_REGIONS   16
#define MEMIF_MAX_LOG2      14
#define MEMIF_MAX_REGION_SZ (1ull << 32)
#define MEMIF_MAX_PENDING   8      /* server: connections not yet past INIT */
#define MEMIF_MAX_BUF       65535u /* bytes in one buffer */

int memif_port_create(const struct memif_config *cfg, struct port **out);

struct pspec_memif;
/* The config an XRING_PORTS memif spec asks for; the path is written to path_buf. */
void memif_config_from_spec(const struct pspec_memif *spec, struct memif_config *cfg,
			    char *path_buf, size_t len);
/* Advance the control channel: accept, handshake, detect peer loss, reconnect. Never blocks. */
int memif_poll(struct port *p);
bool memif_connected(const struct port *p);
/* Times the link came up since creation (tests use it to observe reconnects). */
uint64_t memif_connects(const struct port *p);
/* Slots in each ring of the running connection (0 when down), and bytes per buffer. */
unsigned memif_ring_size(const struct port *p);
unsigned memif_buf_size(const struct port *p);

/* Drop the running connection, if any (a client then reconnects after retry_ms). */
void memif_reset(struct port *p);

/*
 * For the fuzzers: feed one control message (and optional fd, which is consumed) to a server
 * port as if it arrived on a fresh or ongoing connection slot 0. Returns 0 while the connection
 * lives, negative when the message made us drop it.
 */
int memif_fuzz_server_msg(struct port *p, const void *msg, size_t len, int fd);

#endif
