/*
 * What the XDP program (xdp_prog.bpf.c) and the AF_XDP port (xdp_port.c) share: the layout of the
 * steering map, the configuration word, the statistics slots and the metadata the program puts in
 * front of each frame it redirects. Included by BPF C and by user-space C alike, so only
 * fixed-width kernel types and no padding the two compilers could disagree on.
 */
#ifndef XRING_NIC_XDP_MAPS_H
#define XRING_NIC_XDP_MAPS_H

#include <linux/types.h>

/* xp_key.kind: IPPROTO numbers for IPv4 rules, one value outside them for ARP. */
#define XP_KIND_ICMP 1
#define XP_KIND_TCP  6
#define XP_KIND_UDP  17
#define XP_KIND_ARP  0xf0

/*
 * One steering rule as the program looks it up. Addresses and ports are in network byte order,
 * as on the wire; a zero field is a wildcard, and the program only tries the key shapes whose
 * bits are set in xp_cfg.shapes so that the traffic xring does not want pays for few lookups.
 */
struct xp_key {
	__u32 local_ip;
	__u32 remote_ip;
	__u16 local_port;
	__u16 remote_port;
	__u8 kind;
	__u8 pad[3];
};

struct xp_val {
	__u32 handle; /* port_frame.flow of every frame this rule delivers */
	__u32 queue;  /* the queue the rule asked for; AF_XDP delivers on the receiving queue */
};

/* Key shapes, by bit number in xp_cfg.shapes; the program tries them in this order. */
#define XP_SH_CONN       0 /* kind, local ip, remote ip, local port, remote port */
#define XP_SH_CONN_ANYIP 1 /* the same with local ip 0 */
#define XP_SH_LISTEN     2 /* kind, local ip, local port */
#define XP_SH_LISTEN_ANY 3 /* kind, local port */
#define XP_SH_ICMP       4 /* ICMP, destination ip */
#define XP_SH_ICMP_ANY   5 /* every ICMP packet */
#define XP_SH_ARP        6 /* ARP, target protocol address */
#define XP_SH_ARP_ANY    7 /* every ARP frame */
#define XP_SHAPE(sh)     (1u << (sh))
#define XP_NSHAPES       8

struct xp_cfg {
	__u32 shapes;
};

/* Per-CPU counters kept by the program. */
#define XP_STAT_STEERED 0 /* matched a rule and went to the XSK */
#define XP_STAT_PASSED  1 /* matched no rule: passed to the kernel */
#define XP_STAT_NO_XSK  2 /* matched a rule but no XSK is bound on its receive queue */
#define XP_NSTATS       3

/*
 * Written by the program just before the frame (bpf_xdp_adjust_meta), read and wiped by rx_poll.
 * The magic tells rx_poll the words are fresh rather than left over from an earlier frame in the
 * same buffer.
 */
struct xp_meta {
	__u32 flow;
	__u32 magic;
};
#define XP_META_MAGIC 0x676e7278u /* "xrng" */

#define XP_MAX_QUEUES 64

#endif
