/*
 * softverbs: a software RDMA device for tests, built as a shared library that provides the
 * libibverbs entry points (ibv_get_device_list, ibv_open_device, ibv_create_qp, ...) and fills
 * the context operations that libibverbs' inline calls go through (ibv_post_send, ibv_post_recv,
 * ibv_poll_cq, ibv_req_notify_cq through ibv_context.ops; ibv_create_cq_ex, ibv_create_flow,
 * ibv_destroy_flow, ibv_query_device_ex, ibv_query_port through verbs_context). A test program
 * links it in place of libibverbs, so the code under test is compiled against the real
 * <infiniband/verbs.h> and runs unchanged.
 *
 * Devices carry real Ethernet frames. A frame sent on a raw-packet QP is gathered from its
 * scatter-gather entries (each checked against a registered MR), checksummed when the work
 * request asks for IBV_SEND_IP_CSUM, and put on the wire: to the connected peer device, or into
 * a capture queue the test reads with sv_capture(). A frame arriving on a device is classified
 * by its flows in priority order (lower value first, then creation order), as a NIC does:
 * it goes to the QP of the first matching flow (and on, past flows made with
 * IBV_FLOW_ATTR_FLAGS_DONT_TRAP); with no trapping match it counts as a frame for the kernel.
 * It lands in the QP's oldest receive WQE, checked against its MR (which needs LOCAL_WRITE).
 *
 * A device made with a tso size offers TSO: ibv_query_device_ex() reports it for raw-packet QPs,
 * ibv_create_qp_ex() takes a max_tso_header, and an IBV_WR_TSO work request (headers in
 * wr.tso.hdr, payload in the scatter-gather list) is cut into frames of wr.tso.mss payload
 * bytes, as a NIC does: each with the headers, its own IPv4 total length, an IPv4 id one above
 * the previous frame's, its TCP sequence number, FIN and PSH only on the last frame, CWR only on
 * the first, and fresh IPv4 and TCP checksums.
 *
 * It also stands in for the two mlx5 direct-verbs calls the port makes to see what a ConnectX
 * device could do (mlx5dv_is_supported, mlx5dv_query_device): a device made with mlx5 says yes,
 * with enhanced multi-packet send, CQE compression and striding receive queues.
 *
 * Sends run at the doorbell (inside ibv_post_send) unless the device is deferred, when they
 * wait in the send queue until sv_run(): the "device" then works asynchronously to the caller.
 *
 * Semantics a driver would otherwise get wrong silently are enforced and counted as misuse:
 * destroying a CQ with unacknowledged events or still used by a QP, a QP with flows, a PD with
 * MRs or QPs; reading a CQ field that was not requested at creation; overrunning a CQ (which also
 * raises IBV_EVENT_CQ_ERR); asking for checksum offload on a device without it; closing a
 * context that still owns objects.
 *
 * One mutex serialises everything (this is a test device, not a fast one); the extended-CQ
 * poll holds it from ibv_start_poll() to ibv_end_poll().
 */
#ifndef SOFTVERBS_H
#define SOFTVERBS_H

#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_EXPORT __attribute__((visibility("default")))

enum {
	SV_MAX_DEVS = 8,
	SV_FRAME_MAX = 9216,
	SV_CAPTURE = 256, /* frames kept per device for sv_capture() */
};

struct sv_dev_config {
	const char *name;      /* e.g. "svmlx0" */
	uint8_t mac[6];        /* GID 0 is the EUI-64 link-local address made from it */
	uint32_t ndev_ifindex; /* netdev reported with GID 0; 0: none */
	bool no_csum;          /* no IBV_DEVICE_RAW_IP_CSUM / IBV_WC_IP_CSUM_OK */
	bool no_cq_ex;         /* no ibv_create_cq_ex (old provider) */
	bool no_flow_tag;      /* no IBV_WC_EX_WITH_FLOW_TAG, no IBV_FLOW_SPEC_ACTION_TAG */
	bool no_dont_trap;     /* ibv_create_flow refuses IBV_FLOW_ATTR_FLAGS_DONT_TRAP */
	bool infiniband;       /* port link layer InfiniBand instead of Ethernet */
	bool port_down;        /* port starts IBV_PORT_DOWN */
	int max_qp_wr;         /* 0: 32768 */
	int max_sge;           /* 0: 16 */
	uint32_t tso;          /* TSO on raw-packet QPs: tso_caps.max_tso; 0: no TSO */
	bool mlx5;             /* answers mlx5dv_is_supported() and mlx5dv_query_device() */
};

enum sv_fail {
	SV_FAIL_OPEN,
	SV_FAIL_ALLOC_PD,
	SV_FAIL_REG_MR,
	SV_FAIL_CREATE_CHANNEL,
	SV_FAIL_CREATE_CQ, /* both ibv_create_cq and ibv_create_cq_ex */
	SV_FAIL_CREATE_QP,
	SV_FAIL_MODIFY_QP,
	SV_FAIL_CREATE_FLOW,
	SV_FAIL_POST_SEND,
	SV_FAIL_SEND_WQE, /* a send WQE completes with IBV_WC_LOC_PROT_ERR: the QP fails */
	SV_FAIL_COUNT
};

struct sv_stats {
	uint64_t post_send_calls, post_recv_calls; /* doorbells */
	uint64_t send_wqes, signaled_wqes, recv_wqes;
	uint64_t tx_frames, tx_bytes, tx_csum; /* put on the wire; tx_csum: checksummed */
	uint64_t rx_frames;                    /* arrived from the wire */
	uint64_t rx_delivered, rx_no_wqe, rx_not_ready, kernel_frames;
	uint64_t completions, error_completions, cq_overruns, comp_events;
	uint64_t tso_wqes, tso_frames; /* IBV_WR_TSO sends, and the frames they were cut into */
};

SV_EXPORT int sv_add(const struct sv_dev_config *c); /* device id, or -errno */
SV_EXPORT void sv_reset(void);                       /* forget every device and counter */
SV_EXPORT int sv_connect(int a, int b);              /* a wire between two devices */
SV_EXPORT void sv_set_deferred(int dev, bool on);
SV_EXPORT unsigned sv_run(int dev, unsigned max); /* process queued sends; returns WQEs run */
SV_EXPORT int sv_inject(int dev, const void *frame, size_t len);
SV_EXPORT int sv_capture(int dev, void *buf, size_t cap); /* length, 0 when none */
SV_EXPORT int sv_port_event(int dev, enum ibv_event_type type);
SV_EXPORT void sv_fail_after(enum sv_fail what, unsigned ok_calls, int err);
SV_EXPORT struct sv_stats sv_stats(int dev);
SV_EXPORT unsigned sv_live_objects(void); /* contexts, PDs, MRs, channels, CQs, QPs, flows */
SV_EXPORT unsigned sv_misuse(void);
SV_EXPORT const char *sv_last_misuse(void);

#endif
