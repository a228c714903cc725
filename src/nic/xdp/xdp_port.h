/*
 * The AF_XDP port: a struct port (nic/port.h) on any Linux netdev. Each queue of the device gets
 * an AF_XDP socket with its own UMEM; xring's XDP program (xdp_prog.bpf.c) sends to those sockets
 * only the frames that match rules given to steer(), and passes everything else to the kernel, so
 * the host keeps using the interface.
 *
 * Steering rules: TCP/UDP rules need a local port; a rule with a remote address needs the remote
 * port too (a connection), one without is a listener; a zero local address matches any. ARP
 * rules match ARP frames whose target protocol address is local_ip (both requests for it and
 * replies to requests sent from it), or every ARP frame when local_ip is 0; ICMP rules match
 * ICMP packets to local_ip, or all ICMP. When xring shares its address with the kernel's on the
 * same interface, steering ARP or ICMP for it takes them away from the kernel: give xring an
 * address of its own for that, or leave ARP and ICMP to the kernel. AF_XDP can only deliver a
 * frame on the queue it arrived on, so port_rule.queue is a hint here; frames carry the matching
 * rule's handle in port_frame.flow. Open every queue (nqueues 0) unless the NIC's RSS or ntuple
 * rules keep xring's flows on the opened ones: a steered frame that arrives on a queue without a
 * socket goes to the kernel (counted as XP_STAT_NO_XSK).
 *
 * veth quirks (what the tests measured on Linux 6.18):
 * - Checksums. A kernel sending over veth with tx checksum offload on (the default) leaves
 *   TCP/UDP checksums partial: only the pseudo-header sum is in the frame. Received frames carry
 *   no PORT_F_RX_*_CSUM_OK, so the stack verifies every checksum and would drop those frames.
 *   Either turn the offload off on the sending side (ethtool -K PEER tx off), as the tests do, or
 *   set port_xdp_config.trust_rx_csum when the peer can only be this host's kernel: frames are
 *   then flagged as verified (and PORT_CAP_RX_CSUM set) and the stack skips the check.
 * - Segmentation. With TSO/GSO on at the sender, a GSO packet crosses the veth whole. In driver
 *   mode veth itself turns GSO off on its peer while an XDP program is attached, so segments
 *   arrive; in generic mode the whole packet reaches the program, is bigger than a UMEM buffer,
 *   and the kernel drops it, counting it in XDP_STATISTICS (port_xdp_sync_drops() copies that into
 *   rx_drops). Turn tso and gso off at the sender for generic mode. port.mtu is clamped so that a
 *   frame of the port's own MTU always fits a buffer.
 */
#ifndef XRING_NIC_XDP_PORT_H
#define XRING_NIC_XDP_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/port_spec.h"
#include "nic/port.h"

enum port_xdp_attach {
	PORT_XDP_AUTO,   /* driver mode when the device has it, else generic */
	PORT_XDP_SKB,    /* generic (SKB) mode: works on every netdev, copies */
	PORT_XDP_NATIVE, /* driver mode */
};

enum port_xdp_zc {
	PORT_XDP_ZC_TRY,      /* zero-copy when the driver allows, else copy */
	PORT_XDP_ZC_NEVER,    /* always copy */
	PORT_XDP_ZC_REQUIRED, /* fail rather than copy */
};

struct port_xdp_config {
	const char *dev;     /* netdev name, required */
	uint32_t ip;         /* network byte order; 0: the netdev's primary IPv4 address */
	uint8_t prefix_len;  /* with ip */
	unsigned nqueues;    /* 0: every queue the device has */
	unsigned frame_size; /* UMEM buffer size, 2048 or 4096; 0: 4096 */
	unsigned rx_frames;  /* receive buffers per queue, a power of two; 0: 2048 */
	unsigned tx_frames;  /* send buffers per queue, a power of two; 0: 2048 */
	/* UMEM per queue: (rx_frames + tx_frames) * frame_size, 16 MiB by default. */
	unsigned rx_ring;   /* RX ring entries, a power of two, at most rx_frames; 0: rx_frames */
	unsigned tx_ring;   /* TX ring entries, a power of two, at most tx_frames; 0: tx_frames */
	unsigned max_rules; /* steering rules; 0: 4096 */
	enum port_xdp_attach attach;
	enum port_xdp_zc zerocopy;
	const char *bpf_obj; /* load this object file instead of the built-in program */
	/* Mark received frames PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK. Only for a veth
	 * whose peer is this host's kernel: its frames cannot be corrupted on the way, and with
	 * tx checksum offload on they carry partial checksums the stack would reject. */
	bool trust_rx_csum;
};

/* How the port ended up running. */
struct port_xdp_info {
	enum port_xdp_attach attach; /* PORT_XDP_SKB or PORT_XDP_NATIVE */
	bool zerocopy;
	char driver[32];                           /* the netdev's driver, from ethtool */
	unsigned rx_frames, tx_frames, frame_size; /* each queue's UMEM */
	unsigned rx_ring, tx_ring;                 /* each queue's XSK ring sizes */
};

/* Open the port: read the netdev, load and attach the XDP program, create the sockets. */
int port_xdp_open(const struct port_xdp_config *cfg, struct port **out);
/* The same from an XRING_PORTS spec ("xdp:dev=veth0,queues=2,mode=drv"): mode auto tries
 * driver mode and zero-copy, skb is generic mode, drv driver mode (zero-copy when it can), zc
 * driver mode with zero-copy or nothing; queues is how many queues get a socket. */
void port_xdp_config_from_spec(const struct pspec_xdp *spec, struct port_xdp_config *cfg);
int port_xdp_info(const struct port *p, struct port_xdp_info *info);
/* Sums over CPUs of the program's counters, indexed by XP_STAT_* (nic/xdp/xdp_maps.h). */
int port_xdp_prog_stats(const struct port *p, uint64_t *stats, unsigned n);
const char *port_xdp_mode_name(const struct port_xdp_info *info);
/* Copy the kernel's XDP_STATISTICS for queue q into q->stats (rx_drops, rx_bad). A system call:
 * call it from the queue's thread when reporting, not per frame. */
int port_xdp_sync_drops(struct port_queue *q);

#endif
