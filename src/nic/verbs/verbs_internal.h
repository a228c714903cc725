/* Shared between the files of the verbs port; see verbs_port.h for the behaviour. */
#ifndef XRING_NIC_VERBS_INTERNAL_H
#define XRING_NIC_VERBS_INTERNAL_H

#include <infiniband/verbs.h>
#include <stdbool.h>

#include "nic/pool_mem.h"
#include "nic/verbs/verbs_port.h"

enum {
	VB_WC_BATCH = 64, /* completions read per poll call */
};

/* One completion, whichever kind of CQ it came from. */
struct vb_cqe {
	uint64_t wr_id;
	uint32_t len;
	uint32_t tag;
	uint16_t status; /* enum ibv_wc_status */
	uint16_t flags;  /* PORT_F_RX_* */
};

/* A CQ, extended or not. */
struct vb_cq {
	struct ibv_cq *cq;    /* always set: notify, events and destroy go through it */
	struct ibv_cq_ex *cx; /* set when created with ibv_create_cq_ex() */
	bool tag;             /* cx reports flow tags */
};

/* One buffer of a send WQE: a queue buffer, or registered memory with a cookie. */
struct vb_piece {
	uint64_t cookie;
	uint32_t buf;    /* queue buffer id, or UINT32_MAX for external memory */
	uint16_t region; /* external: index into vb_port.regions */
	uint16_t pad;
};

enum {
	VB_FREE,
	VB_ALLOC,
	VB_SENT
};

enum {
	VB_RX_WAITING, /* in the repost list */
	VB_RX_POSTED,  /* the device may write it */
	VB_RX_LENT     /* the caller holds it */
};

struct vb_port;

struct vb_queue {
	struct port_queue q;
	struct vb_port *vp;
	struct ibv_comp_channel *chan;
	struct vb_cq rcq, scq;
	struct ibv_qp *qp;
	int epfd;
	int err; /* the QP failed (error completion other than a flush): -EIO */
	unsigned async_countdown;

	/* receive side */
	uint8_t *rx_base;
	uint32_t *repost;  /* buffers waiting to be posted */
	uint8_t *rx_state; /* VB_RX_* per receive buffer: catches double releases */
	uint32_t nrepost, rx_posted, lent;
	struct ibv_recv_wr *rwr; /* rx_batch each */
	struct ibv_sge *rsge;
	struct vb_cqe stage[VB_WC_BATCH]; /* completions read by arm() before rx_poll() */
	unsigned stage_head, stage_n;

	/* send side; slots are numbered by a free-running counter, masked into the rings */
	uint8_t *tx_base;
	uint32_t *free;
	uint32_t nfree;
	uint8_t *state;          /* VB_* per send buffer */
	struct ibv_send_wr *swr; /* one per slot */
	struct ibv_sge *ssge;    /* max_sge per slot */
	struct vb_piece *pieces; /* max_sge per slot */
	uint8_t *npieces;        /* per slot */
	uint32_t sq_head;        /* oldest slot the device may still read */
	uint32_t sq_posted;      /* first slot not yet handed to the device */
	uint32_t sq_tail;        /* next slot to fill */
	uint32_t unsignaled;     /* WQEs since the last signaled one */
	bool pending_ext;        /* the unflushed chain holds external memory */
	uint64_t *ck;            /* cookies whose sends are complete */
	uint32_t ck_head, ck_tail, ck_mask;
	uint32_t ext_inflight;
	uint32_t *region_inflight; /* per region */
	struct vb_cqe cqe[VB_WC_BATCH];
	struct ibv_wc wc[VB_WC_BATCH];

	uint64_t doorbells, rx_posts, signaled, wc_errors, comp_events, tso_sends;
};

struct vb_region {
	struct ibv_mr *mr; /* NULL when the slot is unused */
	uintptr_t addr;
	size_t len;
};

struct vb_rule {
	struct ibv_flow *flow; /* NULL when unused */
};

struct vb_port {
	struct port port;
	char devname[IBV_SYSFS_NAME_MAX];
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *pool_mr;
	void *pool;
	size_t pool_len;
	struct pmem mem; /* pool's memory (nic/pool_mem.h) */
	uint8_t port_num;
	unsigned nrx, ntx, bs, rx_batch, tx_signal, max_sge, max_rules;
	unsigned tbs;               /* bytes per send buffer */
	bool csum, dont_trap, tags; /* tags: rules carry a flow tag */
	bool tso, no_tso;
	int error; /* 0, -ENETDOWN or -EIO; atomic */
	struct vb_queue *qs;
	struct port_queue **qptrs;
	struct vb_region regions[VERBS_MAX_REGIONS];
	struct vb_rule *rules;
	uint64_t async_events, port_down, port_up, fatal; /* atomic */
	struct port_verbs_mlx5 mlx5;
};

static inline struct vb_port *vbp(struct port *p)
{
	return (struct vb_port *) p;
}

static inline struct vb_queue *vbq(struct port_queue *q)
{
	return (struct vb_queue *) q;
}

extern const struct port_ops vb_ops;

/* verbs_queue.c */
int vb_queue_setup(struct vb_port *vp, struct vb_queue *vq, unsigned index);
void vb_queue_teardown(struct vb_queue *vq);
int vb_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max);
void vb_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n);
int vb_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n);
int vb_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n);
int vb_tx_flush(struct port_queue *q);
int vb_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max);
int vb_wait_fd(struct port_queue *q);
int vb_arm(struct port_queue *q);

/* verbs_steer.c */
int vb_steer(struct port *p, const struct port_rule *rule, uint32_t *handle);
int vb_unsteer(struct port *p, uint32_t handle);
void vb_unsteer_all(struct vb_port *vp);

/* verbs_device.c */
void vb_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vb_dev_open(struct vb_port *vp, const struct port_verbs_config *c, const char *sysfs, char *err,
		size_t errlen);
int vb_caps(struct vb_port *vp, char *err, size_t errlen);
void vb_describe(struct vb_port *vp, const struct port_verbs_config *c, const char *sysfs);

/* verbs_mlx5.c */
void vb_mlx5_probe(struct vb_port *vp, struct ibv_device *dev);

/* verbs_events.c */
int vb_read_events(struct vb_port *vp);

#endif
