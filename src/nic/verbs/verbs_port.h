/*
 * The ConnectX port: a struct port (nic/port.h) on an RDMA device through libibverbs, with one
 * IBV_QPT_RAW_PACKET queue pair per queue. Frames go straight between the application's memory
 * and the NIC: the receive and send pools are allocated once and registered with ibv_reg_mr();
 * memory given to mem_register() is registered too, so a PORT_F_EXTERNAL frame is sent from it
 * without a copy.
 *
 * Per queue: a QP, a receive CQ and a send CQ (extended CQs from ibv_create_cq_ex() when the
 * device has them, ibv_create_cq() otherwise) and a completion channel. Receive WQEs are posted
 * rx_batch at a time with one ibv_post_recv() per batch, or whatever is waiting when rx_poll()
 * finds nothing (an idle queue keeps no buffer back) or the receive queue runs low. Sends posted
 * with tx_post() wait in a chained work-request list and tx_flush() rings the doorbell once for all
 * of them (one ibv_post_send()); only every tx_signal-th WQE asks for a completion, and a
 * completion retires every WQE before it. A flush that carries PORT_F_EXTERNAL frames asks for a
 * completion on its last WQE, so their cookies come back without waiting for more traffic. Chained
 * frames (PORT_F_MORE) are sent as one WQE with one scatter-gather entry per buffer.
 *
 * Checksums: when the device reports IBV_DEVICE_RAW_IP_CSUM (or IBV_RAW_PACKET_CAP_IP_CSUM),
 * PORT_CAP_TX_CSUM and PORT_CAP_RX_CSUM are set; a frame with PORT_F_TX_IP_CSUM or
 * PORT_F_TX_L4_CSUM is posted with IBV_SEND_IP_CSUM, which has the NIC compute both the IPv4
 * header and the TCP/UDP checksum; a received completion with IBV_WC_IP_CSUM_OK carries
 * PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK.
 *
 * TSO: when ibv_query_device_ex() reports tso_caps with IBV_QPT_RAW_PACKET among its QP types
 * (and the config does not turn it off), the QPs are made with ibv_create_qp_ex() and a
 * max_tso_header of VERBS_TSO_HDR bytes, send buffers grow to tx_buf_size (64 KiB by default) and
 * the port offers PORT_CAP_TSO with tso_max = the smaller of that and the device's max_tso. A
 * PORT_F_TX_TSO frame goes out as one IBV_WR_TSO work request: its Ethernet, IPv4 and TCP
 * headers as wr.tso.hdr (copied into the WQE by the provider), the rest as the one
 * scatter-gather entry, tso_mss as wr.tso.mss, with IBV_SEND_IP_CSUM; the NIC sends MSS-sized
 * frames with their own lengths, IPv4 ids, checksums and sequence numbers.
 *
 * Steering (ibv_create_flow on the QP of rule.queue): a TCP/UDP rule with a remote address is a
 * 5-tuple (priority 0), one without is a listener 3-tuple (priority 1), one without a local port
 * either takes the protocol to local_ip (priority 2); all also match the port's MAC and
 * EtherType IPv4. ICMP rules match IPv4 protocol 1 to local_ip. ARP rules match
 * EtherType 0x0806 and are made with IBV_FLOW_ATTR_FLAGS_DONT_TRAP where the device allows it, so
 * the kernel on the same netdev keeps receiving ARP too. Frames no rule matches go to the
 * kernel's netdev as usual. Each rule carries a flow tag equal to its handle; with extended CQs
 * received frames report it in port_frame.flow (0 where the device has no flow tags).
 *
 * A failed send (an error completion other than a flush) takes its QP to the error state, as
 * verbs does: that queue's tx_post(), tx_flush() and idle rx_poll() then answer -EIO, while the
 * port's other queues carry on. Received frames still lent when the port is destroyed become
 * invalid with it; sends in flight are dropped.
 *
 * Waiting: wait_fd() is an epoll fd holding the queue's completion channel and the device's
 * async event fd; arm() acknowledges completion events, re-arms both CQs with
 * ibv_req_notify_cq() and answers -EAGAIN when work or an async event came in meanwhile.
 *
 * Async events (port down, device or QP fatal) are read by arm(), by port_verbs_events() and by
 * rx_poll() once every VERBS_ASYNC_EVERY polls (one non-blocking read, so never per frame).
 * They are counted, and a port-down or fatal event puts the port in an error state: tx_post()
 * and tx_flush() then fail with it, and rx_poll() returns it once no received frame is left.
 * IBV_EVENT_PORT_ACTIVE clears a port-down state; fatal errors stay (-EIO).
 *
 * Nothing on the data path allocates, locks or makes a system call per frame: work-request
 * lists, scatter-gather entries and completion arrays are preallocated per queue.
 */
#ifndef XRING_NIC_VERBS_PORT_H
#define XRING_NIC_VERBS_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nic/port.h"

enum {
	VERBS_MAX_QUEUES = 64,
	VERBS_MAX_REGIONS = 16, /* mem_register() regions per port */
	VERBS_MAX_SGE = 8,      /* buffers of one chained frame */
	VERBS_ASYNC_EVERY = 1024,
	VERBS_TSO_HDR = 128, /* max_tso_header: Ethernet + IPv4 + TCP with options fit */
};

struct port_verbs_config {
	const char *netdev;   /* Linux netdev of the port, e.g. "ens1f0" ... */
	const char *dev;      /* ... or the RDMA device, e.g. "mlx5_0": exactly one of the two */
	uint8_t port_num;     /* device port; 0 means 1 */
	unsigned nqueues;     /* QP/CQ sets; 0 means 1 */
	unsigned rx_bufs;     /* receive buffers (and RQ depth) per queue, power of two; 0: 1024 */
	unsigned tx_bufs;     /* send buffers (and SQ depth) per queue, power of two; 0: 1024 */
	unsigned buf_size;    /* bytes per buffer, 256..65536; 0: 2048 */
	unsigned tx_buf_size; /* bytes per send buffer, 256..262144; 0: 65536 with TSO, else
			       * buf_size */
	bool no_tso;          /* do not use TSO even where the device has it */
	unsigned rx_batch;    /* receive WQEs posted per ibv_post_recv; 0: 32 */
	unsigned tx_signal;   /* ask for a send completion every this many WQEs; 0: 32 */
	unsigned max_rules;   /* steering rules; 0: 1024 */
	bool hugepages;       /* unused: XRING_HUGEPAGES decides for every pool (nic/pool_mem.h) */
	const uint8_t *mac;   /* override the MAC found from the netdev or GID 0 */
	uint32_t ip;          /* network byte order; 0: the netdev's primary IPv4 address */
	uint8_t prefix_len;   /* with ip */
	uint16_t mtu;         /* override the MTU; 0: the netdev's, else 1500 */
	const char *sysfs;    /* root of sysfs for the netdev mapping; NULL means "/sys" */
};

/* Verbs-specific counters, port-wide. */
struct port_verbs_stats {
	uint64_t async_events; /* every event read with ibv_get_async_event() */
	uint64_t port_down, port_up, fatal;
	uint64_t comp_events; /* completion channel events acknowledged */
	uint64_t doorbells;   /* ibv_post_send() calls */
	uint64_t rx_posts;    /* ibv_post_recv() calls */
	uint64_t signaled;    /* send WQEs that asked for a completion */
	uint64_t wc_errors;   /* completions with a status other than success */
	uint64_t tso_sends;   /* IBV_WR_TSO work requests */
};

/*
 * Open the port. On failure returns a negated errno and, when err is not NULL, a one-line
 * message in err: -ENODEV when no RDMA device matches (or none exists), -EINVAL for a bad
 * config, -EPROTONOSUPPORT when the device port is not Ethernet, or the error of the verbs call
 * that failed. Nothing is left allocated on failure.
 */
int port_verbs_open(const struct port_verbs_config *cfg, struct port **out, char *err,
		    size_t errlen);

/*
 * The same from one port spec (conf/port_spec.h): "verbs:netdev=ens1f0" or "verbs:dev=mlx5_0",
 * with an optional ",queues=N". -EINVAL with the parser's message for a bad spec.
 */
int port_verbs_open_spec(const char *spec, struct port **out, char *err, size_t errlen);

/* The configuration a parsed spec stands for; the strings point into spec. */
struct pspec_verbs;
void port_verbs_config_from_spec(const struct pspec_verbs *spec, struct port_verbs_config *cfg);

/* 0 while the port works, -ENETDOWN while its link is down, -EIO after a fatal error. */
int port_verbs_error(const struct port *p);

/* Read pending async events now; returns how many were read, or a negated errno. */
int port_verbs_events(struct port *p);

void port_verbs_stats(const struct port *p, struct port_verbs_stats *out);

/* What mlx5 direct verbs report for the port's device (verbs_mlx5.c); detected, not used. */
struct port_verbs_mlx5 {
	bool supported;         /* mlx5dv_is_supported(): a ConnectX (mlx5) device */
	bool mpw, enhanced_mpw; /* multi-packet send WQEs */
	uint32_t cqe_comp_max;  /* CQE compression: most CQEs in one compressed block, 0: none */
	bool striding_rq;       /* striding (multi-packet) receive queues on raw-packet QPs */
};
void port_verbs_mlx5(const struct port *p, struct port_verbs_mlx5 *out);

/* The RDMA device the port runs on, e.g. "mlx5_0". */
const char *port_verbs_device(const struct port *p);

#endif
