/* SPDX-License-Identifier: MIT */
/*
 * xring: io_uring-style submission and completion rings whose network I/O can run on a
 * user-space TCP/IP stack over NIC queues, with everything else passed to a kernel io_uring.
 *
 * The application's view is liburing's. SQEs and CQEs are binary-identical to the kernel's
 * struct io_uring_sqe and struct io_uring_cqe; opcodes and flags carry the kernel's values.
 * One ring is driven by one thread at a time, which is why nothing below needs atomics: the
 * "kernel side" of an xring is the library, running in the thread that submits and waits.
 */
#ifndef XRING_H
#define XRING_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/time_types.h> /* struct __kernel_timespec, as io_uring takes it */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define XRING_API         __attribute__((visibility("default")))
#define xring_unlikely(x) __builtin_expect(!!(x), 0)
#define xring_likely(x)   __builtin_expect(!!(x), 1)
#else
#define XRING_API
#define xring_unlikely(x) (x)
#define xring_likely(x)   (x)
#endif

/* Submission queue entry: the kernel's struct io_uring_sqe, field for field. */
struct xring_sqe {
	uint8_t opcode; /* XRING_OP_* */
	uint8_t flags;  /* XRING_SQE_* */
	uint16_t ioprio;
	int32_t fd;
	union {
		uint64_t off;
		uint64_t addr2;
		struct {
			uint32_t cmd_op;
			uint32_t __pad1;
		};
	};
	union {
		uint64_t addr;
		uint64_t splice_off_in;
		struct {
			uint32_t level;
			uint32_t optname;
		};
	};
	uint32_t len;
	union {
		uint32_t rw_flags;
		uint32_t fsync_flags;
		uint16_t poll_events;
		uint32_t poll32_events;
		uint32_t sync_range_flags;
		uint32_t msg_flags;
		uint32_t timeout_flags;
		uint32_t accept_flags;
		uint32_t cancel_flags;
		uint32_t open_flags;
		uint32_t statx_flags;
		uint32_t fadvise_advice;
		uint32_t splice_flags;
		uint32_t rename_flags;
		uint32_t unlink_flags;
		uint32_t hardlink_flags;
		uint32_t xattr_flags;
		uint32_t msg_ring_flags;
		uint32_t uring_cmd_flags;
		uint32_t waitid_flags;
		uint32_t futex_flags;
		uint32_t install_fd_flags;
		uint32_t nop_flags;
		uint32_t pipe_flags;
	};
	uint64_t user_data;
	union {
		uint16_t buf_index;
		uint16_t buf_group;
	} __attribute__((packed));
	uint16_t personality;
	union {
		int32_t splice_fd_in;
		uint32_t file_index;
		uint32_t zcrx_ifq_idx;
		uint32_t optlen;
		struct {
			uint16_t addr_len;
			uint16_t __pad3[1];
		};
		struct {
			uint8_t write_stream;
			uint8_t __pad4[3];
		};
	};
	union {
		struct {
			uint64_t addr3;
			uint64_t __pad2[1];
		};
		struct {
			uint64_t attr_ptr;
			uint64_t attr_type_mask;
		};
		uint64_t optval;
		uint8_t cmd[0];
	};
};

/* Completion queue entry: the kernel's struct io_uring_cqe. */
struct xring_cqe {
	uint64_t user_data;
	int32_t res; /* result, or a negated errno */
	uint32_t flags;
};

/* Opcodes: the kernel's IORING_OP_* values. */
enum {
	XRING_OP_NOP = 0,
	XRING_OP_READV = 1,
	XRING_OP_WRITEV = 2,
	XRING_OP_FSYNC = 3,
	XRING_OP_READ_FIXED = 4,
	XRING_OP_WRITE_FIXED = 5,
	XRING_OP_POLL_ADD = 6,
	XRING_OP_POLL_REMOVE = 7,
	XRING_OP_SYNC_FILE_RANGE = 8,
	XRING_OP_SENDMSG = 9,
	XRING_OP_RECVMSG = 10,
	XRING_OP_TIMEOUT = 11,
	XRING_OP_TIMEOUT_REMOVE = 12,
	XRING_OP_ACCEPT = 13,
	XRING_OP_ASYNC_CANCEL = 14,
	XRING_OP_LINK_TIMEOUT = 15,
	XRING_OP_CONNECT = 16,
	XRING_OP_FALLOCATE = 17,
	XRING_OP_OPENAT = 18,
	XRING_OP_CLOSE = 19,
	XRING_OP_FILES_UPDATE = 20,
	XRING_OP_STATX = 21,
	XRING_OP_READ = 22,
	XRING_OP_WRITE = 23,
	XRING_OP_FADVISE = 24,
	XRING_OP_MADVISE = 25,
	XRING_OP_SEND = 26,
	XRING_OP_RECV = 27,
	XRING_OP_OPENAT2 = 28,
	XRING_OP_EPOLL_CTL = 29,
	XRING_OP_SPLICE = 30,
	XRING_OP_PROVIDE_BUFFERS = 31,
	XRING_OP_REMOVE_BUFFERS = 32,
	XRING_OP_TEE = 33,
	XRING_OP_SHUTDOWN = 34,
	XRING_OP_RENAMEAT = 35,
	XRING_OP_UNLINKAT = 36,
	XRING_OP_MKDIRAT = 37,
	XRING_OP_SYMLINKAT = 38,
	XRING_OP_LINKAT = 39,
	XRING_OP_MSG_RING = 40,
	XRING_OP_FSETXATTR = 41,
	XRING_OP_SETXATTR = 42,
	XRING_OP_FGETXATTR = 43,
	XRING_OP_GETXATTR = 44,
	XRING_OP_SOCKET = 45,
	XRING_OP_URING_CMD = 46,
	XRING_OP_SEND_ZC = 47,
	XRING_OP_SENDMSG_ZC = 48,
	XRING_OP_READ_MULTISHOT = 49,
	XRING_OP_WAITID = 50,
	XRING_OP_FUTEX_WAIT = 51,
	XRING_OP_FUTEX_WAKE = 52,
	XRING_OP_FUTEX_WAITV = 53,
	XRING_OP_FIXED_FD_INSTALL = 54,
	XRING_OP_FTRUNCATE = 55,
	XRING_OP_BIND = 56,
	XRING_OP_LISTEN = 57,
	XRING_OP_RECV_ZC = 58,
	XRING_OP_EPOLL_WAIT = 59,
	XRING_OP_READV_FIXED = 60,
	XRING_OP_WRITEV_FIXED = 61,
	XRING_OP_PIPE = 62,
	XRING_OP_LAST,
};

/* sqe->flags: the kernel's IOSQE_* values. */
#define XRING_SQE_FIXED_FILE       (1U << 0)
#define XRING_SQE_IO_DRAIN         (1U << 1)
#define XRING_SQE_IO_LINK          (1U << 2)
#define XRING_SQE_IO_HARDLINK      (1U << 3)
#define XRING_SQE_ASYNC            (1U << 4)
#define XRING_SQE_BUFFER_SELECT    (1U << 5)
#define XRING_SQE_CQE_SKIP_SUCCESS (1U << 6)

/* cqe->flags: the kernel's IORING_CQE_F_* values. */
#define XRING_CQE_F_BUFFER        (1U << 0)
#define XRING_CQE_F_MORE          (1U << 1)
#define XRING_CQE_F_SOCK_NONEMPTY (1U << 2)
#define XRING_CQE_F_NOTIF         (1U << 3)
#define XRING_CQE_F_BUF_MORE      (1U << 4)
#define XRING_CQE_BUFFER_SHIFT    16

/* Setup flags: the kernel's IORING_SETUP_* values (see xring_queue_init(3) for which apply). */
#define XRING_SETUP_IOPOLL             (1U << 0)
#define XRING_SETUP_SQPOLL             (1U << 1)
#define XRING_SETUP_SQ_AFF             (1U << 2)
#define XRING_SETUP_CQSIZE             (1U << 3)
#define XRING_SETUP_CLAMP              (1U << 4)
#define XRING_SETUP_ATTACH_WQ          (1U << 5)
#define XRING_SETUP_R_DISABLED         (1U << 6)
#define XRING_SETUP_SUBMIT_ALL         (1U << 7)
#define XRING_SETUP_COOP_TASKRUN       (1U << 8)
#define XRING_SETUP_TASKRUN_FLAG       (1U << 9)
#define XRING_SETUP_SQE128             (1U << 10)
#define XRING_SETUP_CQE32              (1U << 11)
#define XRING_SETUP_SINGLE_ISSUER      (1U << 12)
#define XRING_SETUP_DEFER_TASKRUN      (1U << 13)
#define XRING_SETUP_NO_MMAP            (1U << 14)
#define XRING_SETUP_REGISTERED_FD_ONLY (1U << 15)
#define XRING_SETUP_NO_SQARRAY         (1U << 16)

/* Features reported in xring_params.features: the kernel's IORING_FEAT_* values. */
#define XRING_FEAT_SINGLE_MMAP     (1U << 0)
#define XRING_FEAT_NODROP          (1U << 1)
#define XRING_FEAT_SUBMIT_STABLE   (1U << 2)
#define XRING_FEAT_RW_CUR_POS      (1U << 3)
#define XRING_FEAT_CUR_PERSONALITY (1U << 4)
#define XRING_FEAT_FAST_POLL       (1U << 5)
#define XRING_FEAT_POLL_32BITS     (1U << 6)
#define XRING_FEAT_SQPOLL_NONFIXED (1U << 7)
#define XRING_FEAT_EXT_ARG         (1U << 8)
#define XRING_FEAT_NATIVE_WORKERS  (1U << 9)
#define XRING_FEAT_RSRC_TAGS       (1U << 10)
#define XRING_FEAT_CQE_SKIP        (1U << 11)
#define XRING_FEAT_LINKED_FILE     (1U << 12)

/* sqe->timeout_flags */
#define XRING_TIMEOUT_ABS           (1U << 0)
#define XRING_TIMEOUT_UPDATE        (1U << 1)
#define XRING_TIMEOUT_BOOTTIME      (1U << 2)
#define XRING_TIMEOUT_REALTIME      (1U << 3)
#define XRING_LINK_TIMEOUT_UPDATE   (1U << 4)
#define XRING_TIMEOUT_ETIME_SUCCESS (1U << 5)
#define XRING_TIMEOUT_MULTISHOT     (1U << 6)
#define XRING_TIMEOUT_CLOCK_MASK    (XRING_TIMEOUT_BOOTTIME | XRING_TIMEOUT_REALTIME)
#define XRING_TIMEOUT_UPDATE_MASK   (XRING_TIMEOUT_UPDATE | XRING_LINK_TIMEOUT_UPDATE)

/* sqe->cancel_flags */
#define XRING_ASYNC_CANCEL_ALL      (1U << 0)
#define XRING_ASYNC_CANCEL_FD       (1U << 1)
#define XRING_ASYNC_CANCEL_ANY      (1U << 2)
#define XRING_ASYNC_CANCEL_FD_FIXED (1U << 3)
#define XRING_ASYNC_CANCEL_USERDATA (1U << 4)
#define XRING_ASYNC_CANCEL_OP       (1U << 5)

/* sqe->nop_flags */
#define XRING_NOP_INJECT_RESULT (1U << 0)
#define XRING_NOP_FILE          (1U << 1)
#define XRING_NOP_FIXED_FILE    (1U << 2)
#define XRING_NOP_FIXED_BUFFER  (1U << 3)
#define XRING_NOP_TW            (1U << 4)
#define XRING_NOP_CQE32         (1U << 5)

/* send/recv flags in sqe->ioprio */
#define XRING_RECVSEND_POLL_FIRST   (1U << 0)
#define XRING_RECV_MULTISHOT        (1U << 1)
#define XRING_RECVSEND_FIXED_BUF    (1U << 2)
#define XRING_SEND_ZC_REPORT_USAGE  (1U << 3)
#define XRING_RECVSEND_BUNDLE       (1U << 4)
#define XRING_NOTIF_USAGE_ZC_COPIED (1U << 31)

/*
 * Send flag (msg_flags argument of send, sendmsg, send_zc): walk an offloaded socket's send path
 * (build the frame in a send buffer) without sending anything or changing the socket's state, to
 * keep caches warm; res is the length that would have been sent. Bit 28: no MSG_* flag of
 * Linux uses it. A kernel socket answers -EOPNOTSUPP. See xring_prep_send(3).
 */
#define XRING_MSG_DUMMY 0x10000000

/* accept flags in sqe->ioprio */
#define XRING_ACCEPT_MULTISHOT  (1U << 0)
#define XRING_ACCEPT_DONTWAIT   (1U << 1)
#define XRING_ACCEPT_POLL_FIRST (1U << 2)

/* POLL_ADD flags in sqe->len */
#define XRING_POLL_ADD_MULTI        (1U << 0)
#define XRING_POLL_UPDATE_EVENTS    (1U << 1)
#define XRING_POLL_UPDATE_USER_DATA (1U << 2)
#define XRING_POLL_ADD_LEVEL        (1U << 3)

/* Direct descriptors: sqe->file_index for socket and accept asks for any free slot. */
#define XRING_FILE_INDEX_ALLOC    (~0U)
/* In xring_register_files_update(): leave this slot as it is. */
#define XRING_REGISTER_FILES_SKIP (-2)

/* The layout of io_uring's io_sqring_offsets / io_cqring_offsets, kept so that xring_params
 * is binary-identical to struct io_uring_params. xring fills them with zeros: there is no
 * mmap'ed ring to locate. */
struct xring_sqring_offsets {
	uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
	uint64_t user_addr;
};
struct xring_cqring_offsets {
	uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
	uint64_t user_addr;
};

/* Ring parameters: the layout of struct io_uring_params. */
struct xring_params {
	uint32_t sq_entries;
	uint32_t cq_entries;
	uint32_t flags;
	uint32_t sq_thread_cpu;
	uint32_t sq_thread_idle;
	uint32_t features;
	uint32_t wq_fd;
	uint32_t resv[3];
	struct xring_sqring_offsets sq_off;
	struct xring_cqring_offsets cq_off;
};

/*
 * The ring. Its fields are public so that the hot helpers below can be inline, as liburing's
 * are; applications should treat them as read-only and go through the functions.
 */
struct xring_sq {
	unsigned head; /* first SQE not yet consumed by submission */
	unsigned tail; /* next SQE xring_get_sqe() hands out */
	unsigned mask;
	unsigned entries;
	struct xring_sqe *sqes;
};

struct xring_cq {
	unsigned head; /* next CQE the application will see */
	unsigned tail; /* one past the last CQE posted */
	unsigned mask;
	unsigned entries;
	struct xring_cqe *cqes;
	unsigned overflow; /* CQEs waiting in the overflow list because the CQ was full */
	unsigned resv;
};

struct xring_ctx;

struct xring {
	struct xring_sq sq;
	struct xring_cq cq;
	unsigned flags;        /* setup flags */
	unsigned features;     /* XRING_FEAT_* */
	struct xring_ctx *ctx; /* engine state, private to the library */
	uint64_t resv[4];
};

/* Setup and teardown. */
XRING_API int xring_queue_init(unsigned entries, struct xring *ring, unsigned flags);
XRING_API int xring_queue_init_params(unsigned entries, struct xring *ring, struct xring_params *p);
XRING_API void xring_queue_exit(struct xring *ring);

/* Submission. */
XRING_API int xring_submit(struct xring *ring);
XRING_API int xring_submit_and_wait(struct xring *ring, unsigned wait_nr);

/* Completion: the slow halves of the inline helpers below, and waiting. */
XRING_API int xring_wait_cqes(struct xring *ring, struct xring_cqe **cqe_ptr, unsigned wait_nr,
			      struct __kernel_timespec *ts, sigset_t *sigmask);
XRING_API int xring_wait_cqe_timeout(struct xring *ring, struct xring_cqe **cqe_ptr,
				     struct __kernel_timespec *ts);
XRING_API int __xring_get_cqe(struct xring *ring, struct xring_cqe **cqe_ptr, unsigned wait_nr);
XRING_API int __xring_peek_slow(struct xring *ring, struct xring_cqe **cqe_ptr);
XRING_API void __xring_flush_overflow(struct xring *ring);

/* Ports: where offloaded sockets send and receive. XRING_PORTS names them at start; this adds
 * more at run time, with the same ;-separated specs (see xring-params(7)). */
XRING_API int xring_port_add(const char *spec);
/* Adds an offload rule ("use xring udp_connect 198.18.0.0/24:*") ahead of all others. */
XRING_API int xring_add_conf_rule(const char *line);
/* Offload decision for sockets decided on thread from now on: on (1) or to the kernel (0), under
 * the rules; -1 forgets the thread's choice again (XRING_OFFLOAD applies). See
 * xring_thread_offload(3). */
XRING_API int xring_thread_offload(int on, pthread_t thread);

/* Where the packet-buffer pools of ports take their memory; see xring_set_alloc_hooks(3). */
struct xring_alloc_hooks {
	void *(*alloc)(size_t len, size_t align, void *arg); /* both alloc and free, or neither */
	void (*free)(void *ptr, size_t len, void *arg);
	/* Every region of packet buffers xring allocates, hooked or not (may be NULL). */
	void (*region)(void *addr, size_t len, size_t page_size, void *arg);
	void *arg;
};
/* Before the first port opens; -EBUSY after. NULL restores xring's own allocation. */
XRING_API int xring_set_alloc_hooks(const struct xring_alloc_hooks *hooks);

/* What a ring can run: io_uring's probe layout, with xring's own flags beside the kernel's. */
#define XRING_PROBE_OP_SUPPORTED (1U << 0) /* IO_URING_OP_SUPPORTED: the ring accepts it */
#define XRING_PROBE_OP_IN_XRING  (1U << 8) /* xring runs it itself, without the kernel */
#define XRING_PROBE_OP_OFFLOADED (1U << 9) /* runs on xring's stack for offloaded sockets */

struct xring_probe_op {
	uint8_t op;
	uint8_t resv;
	uint16_t flags; /* XRING_PROBE_OP_* */
	uint32_t resv2;
};

struct xring_probe {
	uint8_t last_op; /* highest supported opcode */
	uint8_t ops_len; /* entries in ops[] */
	uint16_t resv;
	uint32_t resv2[3];
	struct xring_probe_op ops[];
};

XRING_API struct xring_probe *xring_get_probe(struct xring *ring);
XRING_API void xring_free_probe(struct xring_probe *probe);

static inline bool xring_opcode_supported(const struct xring_probe *p, int op)
{
	return op >= 0 && op <= p->last_op && op < p->ops_len &&
	       (p->ops[op].flags & XRING_PROBE_OP_SUPPORTED);
}

/* Registered (direct) files: the table the application sees, mirrored into the kernel ring. */
XRING_API int xring_register_files(struct xring *ring, const int *files, unsigned nr_files);
XRING_API int xring_register_files_sparse(struct xring *ring, unsigned nr_files);
XRING_API int xring_register_files_update(struct xring *ring, unsigned off, const int *files,
					  unsigned nr_files);
XRING_API int xring_unregister_files(struct xring *ring);
XRING_API int xring_register_file_alloc_range(struct xring *ring, unsigned off, unsigned len);

/* An eventfd the ring signals when it posts completions, to fold a ring into an epoll loop. */
XRING_API int xring_register_eventfd(struct xring *ring, int fd);
XRING_API int xring_unregister_eventfd(struct xring *ring);

/* Statistics: the counters of offloaded socket fd, or with fd -1 of the ring, its ports and all
 * its offloaded sockets, written to the log at level (1 error ... 4 debug, as XRING_LOG_LEVEL).
 * xring-stats(1) reads the same counters from another process. */
XRING_API int xring_dump_stats(struct xring *ring, int fd, int level);

/* Registered (fixed) buffers. */
XRING_API int xring_register_buffers(struct xring *ring, const struct iovec *iovecs,
				     unsigned nr_iovecs);
XRING_API int xring_unregister_buffers(struct xring *ring);

/* Provided buffer rings: liburing's layout, shared with whoever consumes the buffers. */
struct xring_buf {
	uint64_t addr;
	uint32_t len;
	uint16_t bid;
	uint16_t resv;
};

struct xring_buf_ring {
	union {
		struct {
			uint64_t resv1;
			uint32_t resv2;
			uint16_t resv3;
			uint16_t tail; /* overlays bufs[0].resv */
		};
		struct xring_buf bufs[0];
	};
};

struct xring_buf_reg {
	uint64_t ring_addr;
	uint32_t ring_entries;
	uint16_t bgid;
	uint16_t flags;
	uint64_t resv[3];
};

XRING_API int xring_register_buf_ring(struct xring *ring, struct xring_buf_reg *reg,
				      unsigned flags);
XRING_API int xring_unregister_buf_ring(struct xring *ring, int bgid);
XRING_API struct xring_buf_ring *xring_setup_buf_ring(struct xring *ring, unsigned nentries,
						      int bgid, unsigned flags, int *ret);
XRING_API int xring_free_buf_ring(struct xring *ring, struct xring_buf_ring *br, unsigned nentries,
				  int bgid);

static inline int xring_buf_ring_mask(uint32_t ring_entries)
{
	return (int) ring_entries - 1;
}

static inline void xring_buf_ring_init(struct xring_buf_ring *br)
{
	br->tail = 0;
}

/* Fills the buf_offset'th free entry past the tail; xring_buf_ring_advance() publishes it. */
static inline void xring_buf_ring_add(struct xring_buf_ring *br, void *addr, unsigned len,
				      unsigned short bid, int mask, int buf_offset)
{
	struct xring_buf *buf = &br->bufs[(br->tail + buf_offset) & mask];

	buf->addr = (uint64_t) (uintptr_t) addr;
	buf->len = len;
	buf->bid = bid;
}

/* Publishes count added buffers. The release store orders the entries before the tail, for a
 * consumer that may be the kernel on another CPU. */
static inline void xring_buf_ring_advance(struct xring_buf_ring *br, int count)
{
	uint16_t tail = (uint16_t) (br->tail + count);

	__atomic_store_n(&br->tail, tail, __ATOMIC_RELEASE);
}

/* Submission queue helpers. */
static inline unsigned xring_sq_ready(const struct xring *ring)
{
	return ring->sq.tail - ring->sq.head;
}

static inline unsigned xring_sq_space_left(const struct xring *ring)
{
	return ring->sq.entries - xring_sq_ready(ring);
}

/* Returns the next free SQE, or NULL when the submission queue is full. */
static inline struct xring_sqe *xring_get_sqe(struct xring *ring)
{
	struct xring_sq *sq = &ring->sq;

	if (xring_unlikely(sq->tail - sq->head >= sq->entries))
		return NULL;
	return &sq->sqes[sq->tail++ & sq->mask];
}

static inline void xring_sqe_set_data(struct xring_sqe *sqe, void *data)
{
	sqe->user_data = (uint64_t) (uintptr_t) data;
}

static inline void xring_sqe_set_data64(struct xring_sqe *sqe, uint64_t data)
{
	sqe->user_data = data;
}

static inline void xring_sqe_set_flags(struct xring_sqe *sqe, unsigned flags)
{
	sqe->flags = (uint8_t) flags;
}

/* Completion queue helpers. */
static inline unsigned xring_cq_ready(const struct xring *ring)
{
	return ring->cq.tail - ring->cq.head;
}

static inline bool xring_cq_has_overflow(const struct xring *ring)
{
	return ring->cq.overflow != 0;
}

/* Marks nr CQEs as consumed; completions held in the overflow list then flow in, in order. */
static inline void xring_cq_advance(struct xring *ring, unsigned nr)
{
	if (nr) {
		ring->cq.head += nr;
		if (xring_unlikely(ring->cq.overflow))
			__xring_flush_overflow(ring);
	}
}

static inline void xring_cqe_seen(struct xring *ring, struct xring_cqe *cqe)
{
	if (cqe)
		xring_cq_advance(ring, 1);
}

/* Publishes count buffers and consumes count CQEs together. */
static inline void xring_buf_ring_cq_advance(struct xring *ring, struct xring_buf_ring *br,
					     int count)
{
	xring_buf_ring_advance(br, count);
	xring_cq_advance(ring, (unsigned) count);
}

static inline void *xring_cqe_get_data(const struct xring_cqe *cqe)
{
	return (void *) (uintptr_t) cqe->user_data;
}

static inline uint64_t xring_cqe_get_data64(const struct xring_cqe *cqe)
{
	return cqe->user_data;
}

/* Iterates over the CQEs ready now, without consuming them; follow with xring_cq_advance(). */
#define xring_for_each_cqe(ring, head, cqe)                                                        \
	for ((head) = (ring)->cq.head;                                                             \
	     ((cqe) = ((head) != (ring)->cq.tail ? &(ring)->cq.cqes[(head) & (ring)->cq.mask]      \
						 : NULL));                                         \
	     (head)++)

/* Returns 0 and the oldest CQE without consuming it, or -EAGAIN when none is ready. Peeking an
 * empty queue also drives progress once (network queues, timers), without blocking. */
static inline int xring_peek_cqe(struct xring *ring, struct xring_cqe **cqe_ptr)
{
	if (xring_likely(ring->cq.tail != ring->cq.head)) {
		*cqe_ptr = &ring->cq.cqes[ring->cq.head & ring->cq.mask];
		return 0;
	}
	return __xring_peek_slow(ring, cqe_ptr);
}

XRING_API unsigned xring_peek_batch_cqe(struct xring *ring, struct xring_cqe **cqes,
					unsigned count);

static inline int xring_wait_cqe_nr(struct xring *ring, struct xring_cqe **cqe_ptr,
				    unsigned wait_nr)
{
	if (xring_likely(wait_nr <= 1 && ring->cq.tail != ring->cq.head)) {
		*cqe_ptr = &ring->cq.cqes[ring->cq.head & ring->cq.mask];
		return 0;
	}
	return __xring_get_cqe(ring, cqe_ptr, wait_nr);
}

static inline int xring_wait_cqe(struct xring *ring, struct xring_cqe **cqe_ptr)
{
	return xring_wait_cqe_nr(ring, cqe_ptr, 1);
}

/*
 * Preparation helpers. Each only fills SQE fields, exactly as the liburing helper of the same
 * name does; all policy lives behind xring_submit().
 */
static inline void xring_prep_rw(int op, struct xring_sqe *sqe, int fd, const void *addr,
				 unsigned len, uint64_t offset)
{
	sqe->opcode = (uint8_t) op;
	sqe->flags = 0;
	sqe->ioprio = 0;
	sqe->fd = fd;
	sqe->off = offset;
	sqe->addr = (uint64_t) (uintptr_t) addr;
	sqe->len = len;
	sqe->rw_flags = 0;
	sqe->buf_index = 0;
	sqe->personality = 0;
	sqe->file_index = 0;
	sqe->addr3 = 0;
	sqe->__pad2[0] = 0;
}

static inline void xring_prep_nop(struct xring_sqe *sqe)
{
	xring_prep_rw(XRING_OP_NOP, sqe, -1, NULL, 0, 0);
}

static inline void xring_prep_timeout(struct xring_sqe *sqe, struct __kernel_timespec *ts,
				      unsigned count, unsigned flags)
{
	xring_prep_rw(XRING_OP_TIMEOUT, sqe, -1, ts, 1, count);
	sqe->timeout_flags = flags;
}

static inline void xring_prep_timeout_remove(struct xring_sqe *sqe, uint64_t user_data,
					     unsigned flags)
{
	xring_prep_rw(XRING_OP_TIMEOUT_REMOVE, sqe, -1, NULL, 0, 0);
	sqe->addr = user_data;
	sqe->timeout_flags = flags;
}

static inline void xring_prep_timeout_update(struct xring_sqe *sqe, struct __kernel_timespec *ts,
					     uint64_t user_data, unsigned flags)
{
	xring_prep_rw(XRING_OP_TIMEOUT_REMOVE, sqe, -1, NULL, 0, (uint64_t) (uintptr_t) ts);
	sqe->addr = user_data;
	sqe->timeout_flags = flags | XRING_TIMEOUT_UPDATE;
}

static inline void xring_prep_link_timeout(struct xring_sqe *sqe, struct __kernel_timespec *ts,
					   unsigned flags)
{
	xring_prep_rw(XRING_OP_LINK_TIMEOUT, sqe, -1, ts, 1, 0);
	sqe->timeout_flags = flags;
}

static inline void xring_prep_cancel64(struct xring_sqe *sqe, uint64_t user_data, int flags)
{
	xring_prep_rw(XRING_OP_ASYNC_CANCEL, sqe, -1, NULL, 0, 0);
	sqe->addr = user_data;
	sqe->cancel_flags = (uint32_t) flags;
}

static inline void xring_prep_cancel(struct xring_sqe *sqe, void *user_data, int flags)
{
	xring_prep_cancel64(sqe, (uint64_t) (uintptr_t) user_data, flags);
}

static inline void xring_prep_cancel_fd(struct xring_sqe *sqe, int fd, unsigned flags)
{
	xring_prep_rw(XRING_OP_ASYNC_CANCEL, sqe, fd, NULL, 0, 0);
	sqe->cancel_flags = (uint32_t) flags | XRING_ASYNC_CANCEL_FD;
}

/* Direct descriptors are encoded as index + 1; 0 means "not direct". */
static inline void __xring_set_target_fixed_file(struct xring_sqe *sqe, unsigned file_index)
{
	sqe->file_index = file_index + 1;
}

static inline void xring_prep_socket(struct xring_sqe *sqe, int domain, int type, int protocol,
				     unsigned flags)
{
	xring_prep_rw(XRING_OP_SOCKET, sqe, domain, NULL, (unsigned) protocol, (uint64_t) type);
	sqe->rw_flags = flags;
}

static inline void xring_prep_socket_direct(struct xring_sqe *sqe, int domain, int type,
					    int protocol, unsigned file_index, unsigned flags)
{
	xring_prep_socket(sqe, domain, type, protocol, flags);
	/* XRING_FILE_INDEX_ALLOC passes through unchanged (liburing 2.3 wrapped it to 0). */
	if (file_index == XRING_FILE_INDEX_ALLOC)
		file_index--;
	__xring_set_target_fixed_file(sqe, file_index);
}

static inline void xring_prep_socket_direct_alloc(struct xring_sqe *sqe, int domain, int type,
						  int protocol, unsigned flags)
{
	xring_prep_socket(sqe, domain, type, protocol, flags);
	__xring_set_target_fixed_file(sqe, XRING_FILE_INDEX_ALLOC - 1);
}

static inline void xring_prep_connect(struct xring_sqe *sqe, int fd, const struct sockaddr *addr,
				      socklen_t addrlen)
{
	xring_prep_rw(XRING_OP_CONNECT, sqe, fd, addr, 0, addrlen);
}

static inline void xring_prep_bind(struct xring_sqe *sqe, int fd, const struct sockaddr *addr,
				   socklen_t addrlen)
{
	xring_prep_rw(XRING_OP_BIND, sqe, fd, addr, 0, addrlen);
}

static inline void xring_prep_listen(struct xring_sqe *sqe, int fd, int backlog)
{
	xring_prep_rw(XRING_OP_LISTEN, sqe, fd, NULL, (unsigned) backlog, 0);
}

static inline void xring_prep_accept(struct xring_sqe *sqe, int fd, struct sockaddr *addr,
				     socklen_t *addrlen, int flags)
{
	xring_prep_rw(XRING_OP_ACCEPT, sqe, fd, addr, 0, (uint64_t) (uintptr_t) addrlen);
	sqe->accept_flags = (uint32_t) flags;
}

static inline void xring_prep_accept_direct(struct xring_sqe *sqe, int fd, struct sockaddr *addr,
					    socklen_t *addrlen, int flags, unsigned file_index)
{
	xring_prep_accept(sqe, fd, addr, addrlen, flags);
	if (file_index == XRING_FILE_INDEX_ALLOC)
		file_index--;
	__xring_set_target_fixed_file(sqe, file_index);
}

static inline void xring_prep_multishot_accept(struct xring_sqe *sqe, int fd, struct sockaddr *addr,
					       socklen_t *addrlen, int flags)
{
	xring_prep_accept(sqe, fd, addr, addrlen, flags);
	sqe->ioprio |= XRING_ACCEPT_MULTISHOT;
}

static inline void xring_prep_multishot_accept_direct(struct xring_sqe *sqe, int fd,
						      struct sockaddr *addr, socklen_t *addrlen,
						      int flags)
{
	xring_prep_multishot_accept(sqe, fd, addr, addrlen, flags);
	__xring_set_target_fixed_file(sqe, XRING_FILE_INDEX_ALLOC - 1);
}

static inline void xring_prep_send(struct xring_sqe *sqe, int sockfd, const void *buf, size_t len,
				   int flags)
{
	xring_prep_rw(XRING_OP_SEND, sqe, sockfd, buf, (unsigned) len, 0);
	sqe->msg_flags = (uint32_t) flags;
}

static inline void xring_prep_send_set_addr(struct xring_sqe *sqe, const struct sockaddr *dest_addr,
					    uint16_t addr_len)
{
	sqe->addr2 = (uint64_t) (uintptr_t) dest_addr;
	sqe->addr_len = addr_len;
}

static inline void xring_prep_sendto(struct xring_sqe *sqe, int sockfd, const void *buf, size_t len,
				     int flags, const struct sockaddr *addr, socklen_t addrlen)
{
	xring_prep_send(sqe, sockfd, buf, len, flags);
	xring_prep_send_set_addr(sqe, addr, (uint16_t) addrlen);
}

static inline void xring_prep_send_zc(struct xring_sqe *sqe, int sockfd, const void *buf,
				      size_t len, int flags, unsigned zc_flags)
{
	xring_prep_rw(XRING_OP_SEND_ZC, sqe, sockfd, buf, (unsigned) len, 0);
	sqe->msg_flags = (uint32_t) flags;
	sqe->ioprio = (uint16_t) zc_flags;
}

static inline void xring_prep_send_zc_fixed(struct xring_sqe *sqe, int sockfd, const void *buf,
					    size_t len, int flags, unsigned zc_flags,
					    unsigned buf_index)
{
	xring_prep_send_zc(sqe, sockfd, buf, len, flags, zc_flags);
	sqe->ioprio |= XRING_RECVSEND_FIXED_BUF;
	sqe->buf_index = (uint16_t) buf_index;
}

static inline void xring_prep_sendmsg(struct xring_sqe *sqe, int fd, const struct msghdr *msg,
				      unsigned flags)
{
	xring_prep_rw(XRING_OP_SENDMSG, sqe, fd, msg, 1, 0);
	sqe->msg_flags = flags;
}

static inline void xring_prep_sendmsg_zc(struct xring_sqe *sqe, int fd, const struct msghdr *msg,
					 unsigned flags)
{
	xring_prep_sendmsg(sqe, fd, msg, flags);
	sqe->opcode = XRING_OP_SENDMSG_ZC;
}

static inline void xring_prep_recv(struct xring_sqe *sqe, int sockfd, void *buf, size_t len,
				   int flags)
{
	xring_prep_rw(XRING_OP_RECV, sqe, sockfd, buf, (unsigned) len, 0);
	sqe->msg_flags = (uint32_t) flags;
}

static inline void xring_prep_recv_multishot(struct xring_sqe *sqe, int sockfd, void *buf,
					     size_t len, int flags)
{
	xring_prep_recv(sqe, sockfd, buf, len, flags);
	sqe->ioprio |= XRING_RECV_MULTISHOT;
}

static inline void xring_prep_recvmsg(struct xring_sqe *sqe, int fd, struct msghdr *msg,
				      unsigned flags)
{
	xring_prep_rw(XRING_OP_RECVMSG, sqe, fd, msg, 1, 0);
	sqe->msg_flags = flags;
}

static inline void xring_prep_recvmsg_multishot(struct xring_sqe *sqe, int fd, struct msghdr *msg,
						unsigned flags)
{
	xring_prep_recvmsg(sqe, fd, msg, flags);
	sqe->ioprio |= XRING_RECV_MULTISHOT;
}

static inline void xring_prep_shutdown(struct xring_sqe *sqe, int fd, int how)
{
	xring_prep_rw(XRING_OP_SHUTDOWN, sqe, fd, NULL, (unsigned) how, 0);
}

static inline void xring_prep_close(struct xring_sqe *sqe, int fd)
{
	xring_prep_rw(XRING_OP_CLOSE, sqe, fd, NULL, 0, 0);
}

static inline void xring_prep_close_direct(struct xring_sqe *sqe, unsigned file_index)
{
	xring_prep_close(sqe, 0);
	__xring_set_target_fixed_file(sqe, file_index);
}

static inline void xring_prep_files_update(struct xring_sqe *sqe, int *fds, unsigned nr_fds,
					   int offset)
{
	xring_prep_rw(XRING_OP_FILES_UPDATE, sqe, -1, fds, nr_fds, (uint64_t) offset);
}

static inline void xring_prep_read(struct xring_sqe *sqe, int fd, void *buf, unsigned nbytes,
				   uint64_t offset)
{
	xring_prep_rw(XRING_OP_READ, sqe, fd, buf, nbytes, offset);
}

static inline void xring_prep_write(struct xring_sqe *sqe, int fd, const void *buf, unsigned nbytes,
				    uint64_t offset)
{
	xring_prep_rw(XRING_OP_WRITE, sqe, fd, buf, nbytes, offset);
}

static inline void xring_prep_poll_add(struct xring_sqe *sqe, int fd, unsigned poll_mask)
{
	xring_prep_rw(XRING_OP_POLL_ADD, sqe, fd, NULL, 0, 0);
	sqe->poll32_events = poll_mask; /* little-endian layout, as on every Linux io_uring host */
}

static inline void xring_prep_poll_multishot(struct xring_sqe *sqe, int fd, unsigned poll_mask)
{
	xring_prep_poll_add(sqe, fd, poll_mask);
	sqe->len = XRING_POLL_ADD_MULTI;
}

static inline void xring_prep_poll_remove(struct xring_sqe *sqe, uint64_t user_data)
{
	xring_prep_rw(XRING_OP_POLL_REMOVE, sqe, -1, NULL, 0, 0);
	sqe->addr = user_data;
}

static inline void xring_prep_provide_buffers(struct xring_sqe *sqe, void *addr, int len, int nr,
					      int bgid, int bid)
{
	xring_prep_rw(XRING_OP_PROVIDE_BUFFERS, sqe, nr, addr, (unsigned) len, (uint64_t) bid);
	sqe->buf_group = (uint16_t) bgid;
}

static inline void xring_prep_remove_buffers(struct xring_sqe *sqe, int nr, int bgid)
{
	xring_prep_rw(XRING_OP_REMOVE_BUFFERS, sqe, nr, NULL, 0, 0);
	sqe->buf_group = (uint16_t) bgid;
}

/* Multishot recvmsg: each buffer starts with this header, then name, control and payload. */
struct xring_recvmsg_out {
	uint32_t namelen;
	uint32_t controllen;
	uint32_t payloadlen;
	uint32_t flags;
};

static inline struct xring_recvmsg_out *xring_recvmsg_validate(void *buf, int buf_len,
							       struct msghdr *msgh)
{
	unsigned long header =
		msgh->msg_controllen + msgh->msg_namelen + sizeof(struct xring_recvmsg_out);

	if (buf_len < 0 || (unsigned long) buf_len < header)
		return NULL;
	return (struct xring_recvmsg_out *) buf;
}

static inline void *xring_recvmsg_name(struct xring_recvmsg_out *o)
{
	return (void *) &o[1];
}

static inline void *xring_recvmsg_payload(struct xring_recvmsg_out *o, struct msghdr *msgh)
{
	return (void *) ((unsigned char *) xring_recvmsg_name(o) + msgh->msg_namelen +
			 msgh->msg_controllen);
}

static inline unsigned xring_recvmsg_payload_length(struct xring_recvmsg_out *o, int buf_len,
						    struct msghdr *msgh)
{
	unsigned long start = (unsigned long) xring_recvmsg_payload(o, msgh);
	unsigned long end = (unsigned long) o + (unsigned long) buf_len;

	return (unsigned) (end - start);
}

/* Control messages sit between the name and the payload. */
static inline struct cmsghdr *xring_recvmsg_cmsg_firsthdr(struct xring_recvmsg_out *o,
							  struct msghdr *msgh)
{
	if (o->controllen < sizeof(struct cmsghdr))
		return NULL;
	return (struct cmsghdr *) ((unsigned char *) xring_recvmsg_name(o) + msgh->msg_namelen);
}

static inline struct cmsghdr *xring_recvmsg_cmsg_nexthdr(struct xring_recvmsg_out *o,
							 struct msghdr *msgh, struct cmsghdr *cmsg)
{
	unsigned char *end, *next;

	if (cmsg->cmsg_len < sizeof(struct cmsghdr))
		return NULL;
	end = (unsigned char *) xring_recvmsg_cmsg_firsthdr(o, msgh) + o->controllen;
	next = (unsigned char *) cmsg + CMSG_ALIGN(cmsg->cmsg_len);
	if (next + sizeof(struct cmsghdr) > end)
		return NULL;
	if (next + CMSG_ALIGN(((struct cmsghdr *) next)->cmsg_len) > end)
		return NULL;
	return (struct cmsghdr *) next;
}

#ifdef __cplusplus
}
#endif

#endif /* XRING_H */
