/* SPDX-License-Identifier: MIT */
/*
 * liburing's names for xring, so that a liburing network program builds against xring
 * unchanged: replace #include <liburing.h> with #include <xring/liburing.h>, or compile with
 * -include xring/liburing.h and link with -lxring. The manual page is xring_liburing in
 * section 7.
 *
 * Names are mapped with object-like macros. A macro replaces a whole identifier only, so
 * "#define io_uring xring" turns struct io_uring into struct xring while io_uring_get_sqe, a
 * different identifier, keeps its own mapping.
 *
 * The include guards of <liburing.h> and <linux/io_uring.h> are defined here, so that either
 * header included afterwards (directly, or through another header) is empty: the real liburing
 * would declare the same names for a different ring. What they would have provided and a
 * networking program uses is provided here instead.
 *
 * Not covered (a program that uses them does not compile, which is better than misbehaving):
 * the raw system calls (io_uring_setup/enter/register, io_uring_queue_mmap, IORING_OFF_*,
 * IORING_ENTER_*, IORING_REGISTER_* opcodes, IORING_SQ_* ring flags); the kernel ring's
 * internals (ring->sq.khead, ring->ring_fd, ...); the async eventfd variant and
 * io_uring_cq_eventfd_*; tagged and sparse buffer tables
 * (io_uring_register_buffers_tags/_sparse/_update_tag, io_uring_register_files_tags/
 * _update_tag); personalities, restrictions, io-wq tuning, io_uring_enable_rings,
 * io_uring_register_sync_cancel, io_uring_buf_ring_available, io_uring_prep_msg_ring
 * (xring rings have no file descriptor to message); incremental and kernel-mapped buffer rings
 * (IOU_PBUF_RING_MMAP is defined, but the kernel refuses it with a user address); 32-byte CQEs
 * and 128-byte SQEs; enum io_uring_op as a type; IO_URING_VERSION_* and io_uring_*_version().
 */
#ifndef XRING_LIBURING_H
#define XRING_LIBURING_H

#if defined(LIB_URING_H) || defined(LINUX_IO_URING_H)
#error "include <xring/liburing.h> before (instead of) <liburing.h> and <linux/io_uring.h>"
#endif
#define LIB_URING_H
#define LINUX_IO_URING_H

/* What <liburing.h> brings in, for programs that rely on it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/types.h>
#include <linux/time_types.h>

#include <xring.h>

#ifdef __cplusplus
extern "C" {
#endif

struct epoll_event;

/* Structures. */
#define io_uring             xring
#define io_uring_sqe         xring_sqe
#define io_uring_cqe         xring_cqe
#define io_uring_params      xring_params
#define io_sqring_offsets    xring_sqring_offsets
#define io_cqring_offsets    xring_cqring_offsets
#define io_uring_buf         xring_buf
#define io_uring_buf_ring    xring_buf_ring
#define io_uring_buf_reg     xring_buf_reg
#define io_uring_recvmsg_out xring_recvmsg_out

/* Setup, submission, completion. */
#define io_uring_queue_init        xring_queue_init
#define io_uring_queue_init_params xring_queue_init_params
#define io_uring_queue_exit        xring_queue_exit
#define io_uring_get_sqe           xring_get_sqe
#define io_uring_submit            xring_submit
#define io_uring_submit_and_wait   xring_submit_and_wait
#define io_uring_peek_cqe          xring_peek_cqe
#define io_uring_peek_batch_cqe    xring_peek_batch_cqe
#define io_uring_wait_cqe          xring_wait_cqe
#define io_uring_wait_cqe_nr       xring_wait_cqe_nr
#define io_uring_wait_cqes         xring_wait_cqes
#define io_uring_wait_cqe_timeout  xring_wait_cqe_timeout
#define __io_uring_get_cqe         __xring_get_cqe
#define io_uring_for_each_cqe      xring_for_each_cqe
#define io_uring_cqe_seen          xring_cqe_seen
#define io_uring_cq_advance        xring_cq_advance
#define io_uring_cq_ready          xring_cq_ready
#define io_uring_cq_has_overflow   xring_cq_has_overflow
#define io_uring_sq_ready          xring_sq_ready
#define io_uring_sq_space_left     xring_sq_space_left
#define io_uring_sqe_set_data      xring_sqe_set_data
#define io_uring_sqe_set_data64    xring_sqe_set_data64
#define io_uring_sqe_set_flags     xring_sqe_set_flags
#define io_uring_cqe_get_data      xring_cqe_get_data
#define io_uring_cqe_get_data64    xring_cqe_get_data64

/* Preparation helpers. */
#define __io_uring_set_target_fixed_file      __xring_set_target_fixed_file
#define io_uring_prep_rw                      xring_prep_rw
#define io_uring_prep_nop                     xring_prep_nop
#define io_uring_prep_timeout                 xring_prep_timeout
#define io_uring_prep_timeout_remove          xring_prep_timeout_remove
#define io_uring_prep_timeout_update          xring_prep_timeout_update
#define io_uring_prep_link_timeout            xring_prep_link_timeout
#define io_uring_prep_cancel                  xring_prep_cancel
#define io_uring_prep_cancel64                xring_prep_cancel64
#define io_uring_prep_cancel_fd               xring_prep_cancel_fd
#define io_uring_prep_socket                  xring_prep_socket
#define io_uring_prep_socket_direct           xring_prep_socket_direct
#define io_uring_prep_socket_direct_alloc     xring_prep_socket_direct_alloc
#define io_uring_prep_connect                 xring_prep_connect
#define io_uring_prep_bind                    xring_prep_bind
#define io_uring_prep_listen                  xring_prep_listen
#define io_uring_prep_accept                  xring_prep_accept
#define io_uring_prep_accept_direct           xring_prep_accept_direct
#define io_uring_prep_multishot_accept        xring_prep_multishot_accept
#define io_uring_prep_multishot_accept_direct xring_prep_multishot_accept_direct
#define io_uring_prep_send                    xring_prep_send
#define io_uring_prep_send_set_addr           xring_prep_send_set_addr
#define io_uring_prep_sendto                  xring_prep_sendto
#define io_uring_prep_send_zc                 xring_prep_send_zc
#define io_uring_prep_send_zc_fixed           xring_prep_send_zc_fixed
#define io_uring_prep_sendmsg                 xring_prep_sendmsg
#define io_uring_prep_sendmsg_zc              xring_prep_sendmsg_zc
#define io_uring_prep_recv                    xring_prep_recv
#define io_uring_prep_recv_multishot          xring_prep_recv_multishot
#define io_uring_prep_recvmsg                 xring_prep_recvmsg
#define io_uring_prep_recvmsg_multishot       xring_prep_recvmsg_multishot
#define io_uring_prep_shutdown                xring_prep_shutdown
#define io_uring_prep_close                   xring_prep_close
#define io_uring_prep_close_direct            xring_prep_close_direct
#define io_uring_prep_files_update            xring_prep_files_update
#define io_uring_prep_read                    xring_prep_read
#define io_uring_prep_write                   xring_prep_write
#define io_uring_prep_poll_add                xring_prep_poll_add
#define io_uring_prep_poll_multishot          xring_prep_poll_multishot
#define io_uring_prep_poll_remove             xring_prep_poll_remove
#define io_uring_prep_provide_buffers         xring_prep_provide_buffers
#define io_uring_prep_remove_buffers          xring_prep_remove_buffers
#define io_uring_recvmsg_validate             xring_recvmsg_validate
#define io_uring_recvmsg_name                 xring_recvmsg_name
#define io_uring_recvmsg_payload              xring_recvmsg_payload
#define io_uring_recvmsg_payload_length       xring_recvmsg_payload_length
#define io_uring_recvmsg_cmsg_firsthdr        xring_recvmsg_cmsg_firsthdr
#define io_uring_recvmsg_cmsg_nexthdr         xring_recvmsg_cmsg_nexthdr

/* Registered files and buffers, provided buffer rings. */
#define io_uring_register_files            xring_register_files
#define io_uring_register_files_sparse     xring_register_files_sparse
#define io_uring_register_files_update     xring_register_files_update
#define io_uring_unregister_files          xring_unregister_files
#define io_uring_register_file_alloc_range xring_register_file_alloc_range
#define io_uring_register_buffers          xring_register_buffers
#define io_uring_register_eventfd          xring_register_eventfd
#define io_uring_unregister_eventfd        xring_unregister_eventfd
#define io_uring_unregister_buffers        xring_unregister_buffers
#define io_uring_register_buf_ring         xring_register_buf_ring
#define io_uring_unregister_buf_ring       xring_unregister_buf_ring
#define io_uring_setup_buf_ring            xring_setup_buf_ring
#define io_uring_free_buf_ring             xring_free_buf_ring
#define io_uring_buf_ring_init             xring_buf_ring_init
#define io_uring_buf_ring_add              xring_buf_ring_add
#define io_uring_buf_ring_advance          xring_buf_ring_advance
#define io_uring_buf_ring_cq_advance       xring_buf_ring_cq_advance
#define io_uring_buf_ring_mask             xring_buf_ring_mask

/* Opcodes. */
#define IORING_OP_NOP              XRING_OP_NOP
#define IORING_OP_READV            XRING_OP_READV
#define IORING_OP_WRITEV           XRING_OP_WRITEV
#define IORING_OP_FSYNC            XRING_OP_FSYNC
#define IORING_OP_READ_FIXED       XRING_OP_READ_FIXED
#define IORING_OP_WRITE_FIXED      XRING_OP_WRITE_FIXED
#define IORING_OP_POLL_ADD         XRING_OP_POLL_ADD
#define IORING_OP_POLL_REMOVE      XRING_OP_POLL_REMOVE
#define IORING_OP_SYNC_FILE_RANGE  XRING_OP_SYNC_FILE_RANGE
#define IORING_OP_SENDMSG          XRING_OP_SENDMSG
#define IORING_OP_RECVMSG          XRING_OP_RECVMSG
#define IORING_OP_TIMEOUT          XRING_OP_TIMEOUT
#define IORING_OP_TIMEOUT_REMOVE   XRING_OP_TIMEOUT_REMOVE
#define IORING_OP_ACCEPT           XRING_OP_ACCEPT
#define IORING_OP_ASYNC_CANCEL     XRING_OP_ASYNC_CANCEL
#define IORING_OP_LINK_TIMEOUT     XRING_OP_LINK_TIMEOUT
#define IORING_OP_CONNECT          XRING_OP_CONNECT
#define IORING_OP_FALLOCATE        XRING_OP_FALLOCATE
#define IORING_OP_OPENAT           XRING_OP_OPENAT
#define IORING_OP_CLOSE            XRING_OP_CLOSE
#define IORING_OP_FILES_UPDATE     XRING_OP_FILES_UPDATE
#define IORING_OP_STATX            XRING_OP_STATX
#define IORING_OP_READ             XRING_OP_READ
#define IORING_OP_WRITE            XRING_OP_WRITE
#define IORING_OP_FADVISE          XRING_OP_FADVISE
#define IORING_OP_MADVISE          XRING_OP_MADVISE
#define IORING_OP_SEND             XRING_OP_SEND
#define IORING_OP_RECV             XRING_OP_RECV
#define IORING_OP_OPENAT2          XRING_OP_OPENAT2
#define IORING_OP_EPOLL_CTL        XRING_OP_EPOLL_CTL
#define IORING_OP_SPLICE           XRING_OP_SPLICE
#define IORING_OP_PROVIDE_BUFFERS  XRING_OP_PROVIDE_BUFFERS
#define IORING_OP_REMOVE_BUFFERS   XRING_OP_REMOVE_BUFFERS
#define IORING_OP_TEE              XRING_OP_TEE
#define IORING_OP_SHUTDOWN         XRING_OP_SHUTDOWN
#define IORING_OP_RENAMEAT         XRING_OP_RENAMEAT
#define IORING_OP_UNLINKAT         XRING_OP_UNLINKAT
#define IORING_OP_MKDIRAT          XRING_OP_MKDIRAT
#define IORING_OP_SYMLINKAT        XRING_OP_SYMLINKAT
#define IORING_OP_LINKAT           XRING_OP_LINKAT
#define IORING_OP_MSG_RING         XRING_OP_MSG_RING
#define IORING_OP_FSETXATTR        XRING_OP_FSETXATTR
#define IORING_OP_SETXATTR         XRING_OP_SETXATTR
#define IORING_OP_FGETXATTR        XRING_OP_FGETXATTR
#define IORING_OP_GETXATTR         XRING_OP_GETXATTR
#define IORING_OP_SOCKET           XRING_OP_SOCKET
#define IORING_OP_URING_CMD        XRING_OP_URING_CMD
#define IORING_OP_SEND_ZC          XRING_OP_SEND_ZC
#define IORING_OP_SENDMSG_ZC       XRING_OP_SENDMSG_ZC
#define IORING_OP_READ_MULTISHOT   XRING_OP_READ_MULTISHOT
#define IORING_OP_WAITID           XRING_OP_WAITID
#define IORING_OP_FUTEX_WAIT       XRING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAKE       XRING_OP_FUTEX_WAKE
#define IORING_OP_FUTEX_WAITV      XRING_OP_FUTEX_WAITV
#define IORING_OP_FIXED_FD_INSTALL XRING_OP_FIXED_FD_INSTALL
#define IORING_OP_FTRUNCATE        XRING_OP_FTRUNCATE
#define IORING_OP_BIND             XRING_OP_BIND
#define IORING_OP_LISTEN           XRING_OP_LISTEN
#define IORING_OP_RECV_ZC          XRING_OP_RECV_ZC
#define IORING_OP_EPOLL_WAIT       XRING_OP_EPOLL_WAIT
#define IORING_OP_READV_FIXED      XRING_OP_READV_FIXED
#define IORING_OP_WRITEV_FIXED     XRING_OP_WRITEV_FIXED
#define IORING_OP_PIPE             XRING_OP_PIPE
#define IORING_OP_LAST             XRING_OP_LAST

/* SQE flags, and the bit numbers the kernel header names them by. */
enum {
	IOSQE_FIXED_FILE_BIT = 0,
	IOSQE_IO_DRAIN_BIT = 1,
	IOSQE_IO_LINK_BIT = 2,
	IOSQE_IO_HARDLINK_BIT = 3,
	IOSQE_ASYNC_BIT = 4,
	IOSQE_BUFFER_SELECT_BIT = 5,
	IOSQE_CQE_SKIP_SUCCESS_BIT = 6,
};
#define IOSQE_FIXED_FILE       XRING_SQE_FIXED_FILE
#define IOSQE_IO_DRAIN         XRING_SQE_IO_DRAIN
#define IOSQE_IO_LINK          XRING_SQE_IO_LINK
#define IOSQE_IO_HARDLINK      XRING_SQE_IO_HARDLINK
#define IOSQE_ASYNC            XRING_SQE_ASYNC
#define IOSQE_BUFFER_SELECT    XRING_SQE_BUFFER_SELECT
#define IOSQE_CQE_SKIP_SUCCESS XRING_SQE_CQE_SKIP_SUCCESS

/* CQE flags. */
#define IORING_CQE_F_BUFFER        XRING_CQE_F_BUFFER
#define IORING_CQE_F_MORE          XRING_CQE_F_MORE
#define IORING_CQE_F_SOCK_NONEMPTY XRING_CQE_F_SOCK_NONEMPTY
#define IORING_CQE_F_NOTIF         XRING_CQE_F_NOTIF
#define IORING_CQE_F_BUF_MORE      XRING_CQE_F_BUF_MORE
#define IORING_CQE_BUFFER_SHIFT    XRING_CQE_BUFFER_SHIFT

/* Setup flags (see xring_queue_init(3) for which xring honours and which it accepts). */
#define IORING_SETUP_IOPOLL             XRING_SETUP_IOPOLL
#define IORING_SETUP_SQPOLL             XRING_SETUP_SQPOLL
#define IORING_SETUP_SQ_AFF             XRING_SETUP_SQ_AFF
#define IORING_SETUP_CQSIZE             XRING_SETUP_CQSIZE
#define IORING_SETUP_CLAMP              XRING_SETUP_CLAMP
#define IORING_SETUP_ATTACH_WQ          XRING_SETUP_ATTACH_WQ
#define IORING_SETUP_R_DISABLED         XRING_SETUP_R_DISABLED
#define IORING_SETUP_SUBMIT_ALL         XRING_SETUP_SUBMIT_ALL
#define IORING_SETUP_COOP_TASKRUN       XRING_SETUP_COOP_TASKRUN
#define IORING_SETUP_TASKRUN_FLAG       XRING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_SQE128             XRING_SETUP_SQE128
#define IORING_SETUP_CQE32              XRING_SETUP_CQE32
#define IORING_SETUP_SINGLE_ISSUER      XRING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_DEFER_TASKRUN      XRING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_NO_MMAP            XRING_SETUP_NO_MMAP
#define IORING_SETUP_REGISTERED_FD_ONLY XRING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_NO_SQARRAY         XRING_SETUP_NO_SQARRAY

/* Features. */
#define IORING_FEAT_SINGLE_MMAP     XRING_FEAT_SINGLE_MMAP
#define IORING_FEAT_NODROP          XRING_FEAT_NODROP
#define IORING_FEAT_SUBMIT_STABLE   XRING_FEAT_SUBMIT_STABLE
#define IORING_FEAT_RW_CUR_POS      XRING_FEAT_RW_CUR_POS
#define IORING_FEAT_CUR_PERSONALITY XRING_FEAT_CUR_PERSONALITY
#define IORING_FEAT_FAST_POLL       XRING_FEAT_FAST_POLL
#define IORING_FEAT_POLL_32BITS     XRING_FEAT_POLL_32BITS
#define IORING_FEAT_SQPOLL_NONFIXED XRING_FEAT_SQPOLL_NONFIXED
#define IORING_FEAT_EXT_ARG         XRING_FEAT_EXT_ARG
#define IORING_FEAT_NATIVE_WORKERS  XRING_FEAT_NATIVE_WORKERS
#define IORING_FEAT_RSRC_TAGS       XRING_FEAT_RSRC_TAGS
#define IORING_FEAT_CQE_SKIP        XRING_FEAT_CQE_SKIP
#define IORING_FEAT_LINKED_FILE     XRING_FEAT_LINKED_FILE

/* Timeouts. */
#define IORING_TIMEOUT_ABS           XRING_TIMEOUT_ABS
#define IORING_TIMEOUT_UPDATE        XRING_TIMEOUT_UPDATE
#define IORING_TIMEOUT_BOOTTIME      XRING_TIMEOUT_BOOTTIME
#define IORING_TIMEOUT_REALTIME      XRING_TIMEOUT_REALTIME
#define IORING_LINK_TIMEOUT_UPDATE   XRING_LINK_TIMEOUT_UPDATE
#define IORING_TIMEOUT_ETIME_SUCCESS XRING_TIMEOUT_ETIME_SUCCESS
#define IORING_TIMEOUT_MULTISHOT     XRING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_CLOCK_MASK    XRING_TIMEOUT_CLOCK_MASK
#define IORING_TIMEOUT_UPDATE_MASK   XRING_TIMEOUT_UPDATE_MASK

/* Cancellation. */
#define IORING_ASYNC_CANCEL_ALL      XRING_ASYNC_CANCEL_ALL
#define IORING_ASYNC_CANCEL_FD       XRING_ASYNC_CANCEL_FD
#define IORING_ASYNC_CANCEL_ANY      XRING_ASYNC_CANCEL_ANY
#define IORING_ASYNC_CANCEL_FD_FIXED XRING_ASYNC_CANCEL_FD_FIXED
#define IORING_ASYNC_CANCEL_USERDATA XRING_ASYNC_CANCEL_USERDATA
#define IORING_ASYNC_CANCEL_OP       XRING_ASYNC_CANCEL_OP

/* NOP flags. */
#define IORING_NOP_INJECT_RESULT XRING_NOP_INJECT_RESULT
#define IORING_NOP_FILE          XRING_NOP_FILE
#define IORING_NOP_FIXED_FILE    XRING_NOP_FIXED_FILE
#define IORING_NOP_FIXED_BUFFER  XRING_NOP_FIXED_BUFFER
#define IORING_NOP_TW            XRING_NOP_TW
#define IORING_NOP_CQE32         XRING_NOP_CQE32

/* send / recv / accept / poll flags. */
#define IORING_RECVSEND_POLL_FIRST   XRING_RECVSEND_POLL_FIRST
#define IORING_RECV_MULTISHOT        XRING_RECV_MULTISHOT
#define IORING_RECVSEND_FIXED_BUF    XRING_RECVSEND_FIXED_BUF
#define IORING_SEND_ZC_REPORT_USAGE  XRING_SEND_ZC_REPORT_USAGE
#define IORING_RECVSEND_BUNDLE       XRING_RECVSEND_BUNDLE
#define IORING_NOTIF_USAGE_ZC_COPIED XRING_NOTIF_USAGE_ZC_COPIED
#define IORING_ACCEPT_MULTISHOT      XRING_ACCEPT_MULTISHOT
#define IORING_ACCEPT_DONTWAIT       XRING_ACCEPT_DONTWAIT
#define IORING_ACCEPT_POLL_FIRST     XRING_ACCEPT_POLL_FIRST
#define IORING_POLL_ADD_MULTI        XRING_POLL_ADD_MULTI
#define IORING_POLL_UPDATE_EVENTS    XRING_POLL_UPDATE_EVENTS
#define IORING_POLL_UPDATE_USER_DATA XRING_POLL_UPDATE_USER_DATA
#define IORING_POLL_ADD_LEVEL        XRING_POLL_ADD_LEVEL

/* Direct descriptors. */
#define IORING_FILE_INDEX_ALLOC    XRING_FILE_INDEX_ALLOC
#define IORING_REGISTER_FILES_SKIP XRING_REGISTER_FILES_SKIP

/* Provided buffer ring registration flags (struct io_uring_buf_reg.flags), kernel values. */
#define IOU_PBUF_RING_MMAP 1
#define IOU_PBUF_RING_INC  2

/* Socket commands for IORING_OP_URING_CMD (io_uring_prep_cmd_sock), kernel values. */
#define SOCKET_URING_OP_SIOCINQ    0
#define SOCKET_URING_OP_SIOCOUTQ   1
#define SOCKET_URING_OP_GETSOCKOPT 2
#define SOCKET_URING_OP_SETSOCKOPT 3

/* Probe results (io_uring_get_probe()). */
#define IO_URING_OP_SUPPORTED (1U << 0)

struct io_uring_probe_op {
	__u8 op;
	__u8 resv;
	__u16 flags; /* IO_URING_OP_* */
	__u32 resv2;
};

struct io_uring_probe {
	__u8 last_op;
	__u8 ops_len;
	__u16 resv;
	__u32 resv2[3];
	struct io_uring_probe_op ops[];
};

/* Memory ordering helpers from <liburing/barrier.h>. xring itself needs none (one thread drives
 * a ring), but programs that share buffer rings or flags with other threads use them. */
#define io_uring_smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define io_uring_smp_load_acquire(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define io_uring_smp_mb()                __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define IO_URING_WRITE_ONCE(var, val)    __atomic_store_n(&(var), (val), __ATOMIC_RELAXED)
#define IO_URING_READ_ONCE(var)          __atomic_load_n(&(var), __ATOMIC_RELAXED)

/*
 * liburing functions xring has no name for, built here from xring's primitives. The prep
 * helpers fill the SQE as current liburing does; the kernel ring behind xring runs them.
 */

static inline int io_uring_submit_and_wait_timeout(struct xring *ring, struct xring_cqe **cqe_ptr,
						   unsigned wait_nr, struct __kernel_timespec *ts,
						   sigset_t *sigmask)
{
	int submitted = xring_submit(ring);
	int ret;

	if (submitted < 0)
		return submitted;
	ret = xring_wait_cqes(ring, cqe_ptr, wait_nr, ts, sigmask);
	return ret < 0 ? ret : submitted;
}

/* Completions are gathered by every call into xring; submitting nothing is a flush. */
static inline int io_uring_submit_and_get_events(struct xring *ring)
{
	return xring_submit(ring);
}

static inline int io_uring_get_events(struct xring *ring)
{
	int ret = xring_submit(ring);

	return ret < 0 ? ret : 0;
}

/* An xring has no file descriptor to register or to keep from a child; liburing returns the
 * number of descriptors registered. */
static inline int io_uring_register_ring_fd(struct xring *ring)
{
	(void) ring;
	return 1;
}

static inline int io_uring_unregister_ring_fd(struct xring *ring)
{
	(void) ring;
	return 1;
}

static inline int io_uring_ring_dontfork(struct xring *ring)
{
	(void) ring;
	return 0;
}

/* Without SQPOLL nobody else consumes the SQ: there is never a reason to wait for space. */
static inline int io_uring_sqring_wait(struct xring *ring)
{
	(void) ring;
	return 0;
}

/* Every CQE is 16 bytes. */
static inline unsigned io_uring_cqe_shift(const struct xring *ring)
{
	(void) ring;
	return 0;
}

static inline void io_uring_sqe_set_buf_group(struct xring_sqe *sqe, int bgid)
{
	sqe->buf_group = (uint16_t) bgid;
}

/*
 * The opcodes xring can run are the kernel's: what it does not run itself, it passes to a
 * kernel ring, and it refuses what that kernel lacks. So the kernel's own probe answers for
 * xring. Returns NULL (errno set) where io_uring is unavailable.
 */
static inline struct io_uring_probe *io_uring_get_probe(void)
{
	struct xring_params p;
	struct io_uring_probe *probe;
	const unsigned nr_ops = 256;
	size_t len = sizeof(*probe) + nr_ops * sizeof(struct io_uring_probe_op);
	long fd, ret;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 2, &p);
	if (fd < 0)
		return NULL;
	probe = (struct io_uring_probe *) calloc(1, len);
	if (probe) {
		/* IORING_REGISTER_PROBE is 8. */
		ret = syscall(__NR_io_uring_register, (int) fd, 8, probe, nr_ops);
		if (ret < 0) {
			free(probe);
			probe = NULL;
		}
	}
	close((int) fd);
	return probe;
}

/* A ring's own probe: xring's answer, which also says what runs without the kernel. */
static inline struct io_uring_probe *io_uring_get_probe_ring(struct xring *ring)
{
	return (struct io_uring_probe *) xring_get_probe(ring);
}

static inline void io_uring_free_probe(struct io_uring_probe *probe)
{
	free(probe);
}

static inline int io_uring_opcode_supported(const struct io_uring_probe *p, int op)
{
	if (op < 0 || op > p->last_op)
		return 0;
	return (p->ops[op].flags & IO_URING_OP_SUPPORTED) != 0;
}

static inline void io_uring_prep_readv(struct xring_sqe *sqe, int fd, const struct iovec *iovecs,
				       unsigned nr_vecs, uint64_t offset)
{
	xring_prep_rw(XRING_OP_READV, sqe, fd, iovecs, nr_vecs, offset);
}

static inline void io_uring_prep_readv2(struct xring_sqe *sqe, int fd, const struct iovec *iovecs,
					unsigned nr_vecs, uint64_t offset, int flags)
{
	io_uring_prep_readv(sqe, fd, iovecs, nr_vecs, offset);
	sqe->rw_flags = (uint32_t) flags;
}

static inline void io_uring_prep_writev(struct xring_sqe *sqe, int fd, const struct iovec *iovecs,
					unsigned nr_vecs, uint64_t offset)
{
	xring_prep_rw(XRING_OP_WRITEV, sqe, fd, iovecs, nr_vecs, offset);
}

static inline void io_uring_prep_writev2(struct xring_sqe *sqe, int fd, const struct iovec *iovecs,
					 unsigned nr_vecs, uint64_t offset, int flags)
{
	io_uring_prep_writev(sqe, fd, iovecs, nr_vecs, offset);
	sqe->rw_flags = (uint32_t) flags;
}

static inline void io_uring_prep_read_fixed(struct xring_sqe *sqe, int fd, void *buf,
					    unsigned nbytes, uint64_t offset, int buf_index)
{
	xring_prep_rw(XRING_OP_READ_FIXED, sqe, fd, buf, nbytes, offset);
	sqe->buf_index = (uint16_t) buf_index;
}

static inline void io_uring_prep_write_fixed(struct xring_sqe *sqe, int fd, const void *buf,
					     unsigned nbytes, uint64_t offset, int buf_index)
{
	xring_prep_rw(XRING_OP_WRITE_FIXED, sqe, fd, buf, nbytes, offset);
	sqe->buf_index = (uint16_t) buf_index;
}

static inline void io_uring_prep_fsync(struct xring_sqe *sqe, int fd, unsigned fsync_flags)
{
	xring_prep_rw(XRING_OP_FSYNC, sqe, fd, NULL, 0, 0);
	sqe->fsync_flags = fsync_flags;
}

static inline void io_uring_prep_splice(struct xring_sqe *sqe, int fd_in, int64_t off_in,
					int fd_out, int64_t off_out, unsigned nbytes,
					unsigned splice_flags)
{
	xring_prep_rw(XRING_OP_SPLICE, sqe, fd_out, NULL, nbytes, (uint64_t) off_out);
	sqe->splice_off_in = (uint64_t) off_in;
	sqe->splice_fd_in = fd_in;
	sqe->splice_flags = splice_flags;
}

static inline void io_uring_prep_tee(struct xring_sqe *sqe, int fd_in, int fd_out, unsigned nbytes,
				     unsigned splice_flags)
{
	xring_prep_rw(XRING_OP_TEE, sqe, fd_out, NULL, nbytes, 0);
	sqe->splice_off_in = 0;
	sqe->splice_fd_in = fd_in;
	sqe->splice_flags = splice_flags;
}

static inline void io_uring_prep_poll_update(struct xring_sqe *sqe, uint64_t old_user_data,
					     uint64_t new_user_data, unsigned poll_mask,
					     unsigned flags)
{
	xring_prep_rw(XRING_OP_POLL_REMOVE, sqe, -1, NULL, flags, new_user_data);
	sqe->addr = old_user_data;
	sqe->poll32_events = poll_mask;
}

static inline void io_uring_prep_openat(struct xring_sqe *sqe, int dfd, const char *path, int flags,
					mode_t mode)
{
	xring_prep_rw(XRING_OP_OPENAT, sqe, dfd, path, mode, 0);
	sqe->open_flags = (uint32_t) flags;
}

static inline void io_uring_prep_openat_direct(struct xring_sqe *sqe, int dfd, const char *path,
					       int flags, mode_t mode, unsigned file_index)
{
	io_uring_prep_openat(sqe, dfd, path, flags, mode);
	if (file_index == XRING_FILE_INDEX_ALLOC)
		file_index--;
	__xring_set_target_fixed_file(sqe, file_index);
}

static inline void io_uring_prep_epoll_ctl(struct xring_sqe *sqe, int epfd, int fd, int op,
					   struct epoll_event *ev)
{
	xring_prep_rw(XRING_OP_EPOLL_CTL, sqe, epfd, ev, (unsigned) op, (uint64_t) (uint32_t) fd);
}

static inline void io_uring_prep_send_bundle(struct xring_sqe *sqe, int sockfd, size_t len,
					     int flags)
{
	xring_prep_send(sqe, sockfd, NULL, len, flags);
	sqe->ioprio |= XRING_RECVSEND_BUNDLE;
}

static inline void io_uring_prep_cmd_sock(struct xring_sqe *sqe, int cmd_op, int fd, int level,
					  int optname, void *optval, int optlen)
{
	xring_prep_rw(XRING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = (uint32_t) cmd_op;
	sqe->level = (uint32_t) level;
	sqe->optname = (uint32_t) optname;
	sqe->optval = (uint64_t) (uintptr_t) optval;
	sqe->optlen = (uint32_t) optlen;
}

#ifdef __cplusplus
}
#endif

#endif /* XRING_LIBURING_H */
