/*
 * A ring attached to an in-memory link whose far end is a "remote host": an interface and a TCP
 * stack of xring's own, driven by the test (198.18.0.2; the ring's port is 198.18.0.1). Every
 * frame the remote host receives is also kept, so a test can look at the exact bytes the ring
 * put on the wire. For tests of what offloaded sockets do (parameters, extras, UDP, TCP
 * zero-copy, direct descriptors); ol_setup_with lets a test change the remote host's behaviour
 * where it checks something ol_setup's default would hide.
 */
#ifndef XRING_TEST_OFFLOAD_LINK_H
#define XRING_TEST_OFFLOAD_LINK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <xring.h>

#include "nic/memlink.h"
#include "stack/iface/iface.h"
#include "stack/tcp/tcp.h"

#define OL_XRING_IP "198.18.0.1"
#define OL_PEER_IP  "198.18.0.2"
#define OL_FRAMES   64

struct ol_frame {
	uint8_t data[2048];
	uint32_t len;
};

struct ol {
	struct port *ends[2];
	struct iface peer;
	struct tcp_stack peer_tcp;
	struct xring ring;
	struct ol_frame frames[OL_FRAMES]; /* what reached the remote host, in order */
	unsigned nframes;                  /* all of them, also those beyond OL_FRAMES */
	unsigned udp_in;                   /* datagrams the remote host took */
	struct tcb *accepted;              /* the remote host's newest accepted connection */
	uint32_t tx_split; /* the remote host sends frames longer than this as two buffers */
};

extern struct ol ol;

/* What a test may change in ol_setup_with; zero fields keep ol_setup's choices. */
struct ol_config {
	const struct memlink_config *link; /* NULL: memlink's defaults */
	unsigned entries;                  /* the ring's entries: 16 */
	bool no_ring;                      /* the test makes its own rings; ol.ring stays unused */
	bool no_listener;                  /* the remote host listens on no TCP port */
	uint16_t listen_port;              /* where it listens: 7001 */
	bool strict_tx; /* the remote host never aborts a send: an abort fails the test */
	/* The remote host's UDP taker (ctx &ol.peer_tcp), replacing the counter of ol.udp_in. */
	int (*udp_input)(void *ctx, uint64_t now, const struct ip4_view *ip,
			 const struct udp_view *udp);
	/* The remote host's TCP taker (ctx &ol.peer_tcp), replacing its own stack's input. */
	void (*tcp_input)(void *ctx, uint64_t now, const struct ip4_view *ip,
			  const struct tcp_view *tcp);
	struct tcp_config tcp; /* the remote host's stack */
	/* Called with each connection the remote host accepts (also kept in ol.accepted). */
	void (*accepted)(struct tcb *c);
	/* Makes the two ends in place of memlink_create (ports of another kind). */
	void (*make_link)(const struct memlink_config *mc, struct port *ends[2]);
};

/* Link, port table, remote host, ring of 16 entries (after the environment is set). */
void ol_setup(const struct memlink_config *mc);
void ol_setup_with(const struct ol_config *c);
void ol_teardown(void);
/* Runs the remote host once: frames in, then its timers. */
void ol_pump(void);
/* Moves both ends once: submits the ring (which polls its ports and timers), then ol_pump. */
void ol_drive(void);
/* Submits and drives both ends until the CQE for ud; returns its res. Bounded. */
int32_t ol_run(uint64_t ud);
struct sockaddr_in ol_sin(const char *ip, uint16_t port);
/* The first TCP segment with exactly these flags the remote host received, parsed; its options
 * into *o. 0, or -ENOENT. */
int ol_find_tcp(uint16_t flags, struct tcp_view *v, struct tcp_opts *o);
/* UDP or TCP connect of a fresh socket to the remote host; returns the fd and the res. */
int ol_connect(int type, uint16_t port, int32_t *res);
/* Whether fd is offloaded on the ring (an xsock) rather than a kernel socket. */
int ol_offloaded(int fd);

#endif
