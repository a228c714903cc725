/*
 * xring's SQE, CQE and parameter structs are the kernel's, byte for byte, and every prep
 * helper encodes exactly what liburing's helper of the same name encodes.
 */
#include <criterion/criterion.h>
#include <liburing.h>
#include <linux/io_uring.h>
#include <stddef.h>
#include <string.h>

#include <xring.h>

#define SAME_FIELD(xs, ks, f)                                                                      \
	do {                                                                                       \
		cr_expect_eq(offsetof(struct xs, f), offsetof(struct ks, f), #f " offset");        \
		cr_expect_eq(sizeof(((struct xs *) 0)->f), sizeof(((struct ks *) 0)->f),           \
			     #f " size");                                                          \
	} while (0)

Test(abi, sqe_matches_the_kernel_field_for_field)
{
	cr_assert_eq(sizeof(struct xring_sqe), 64);
	cr_assert_eq(sizeof(struct xring_sqe), sizeof(struct io_uring_sqe));
	SAME_FIELD(xring_sqe, io_uring_sqe, opcode);
	SAME_FIELD(xring_sqe, io_uring_sqe, flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, ioprio);
	SAME_FIELD(xring_sqe, io_uring_sqe, fd);
	SAME_FIELD(xring_sqe, io_uring_sqe, off);
	SAME_FIELD(xring_sqe, io_uring_sqe, addr2);
	SAME_FIELD(xring_sqe, io_uring_sqe, cmd_op);
	SAME_FIELD(xring_sqe, io_uring_sqe, __pad1);
	SAME_FIELD(xring_sqe, io_uring_sqe, addr);
	SAME_FIELD(xring_sqe, io_uring_sqe, splice_off_in);
	SAME_FIELD(xring_sqe, io_uring_sqe, len);
	SAME_FIELD(xring_sqe, io_uring_sqe, rw_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, fsync_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, poll_events);
	SAME_FIELD(xring_sqe, io_uring_sqe, poll32_events);
	SAME_FIELD(xring_sqe, io_uring_sqe, sync_range_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, msg_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, timeout_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, accept_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, cancel_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, open_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, statx_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, fadvise_advice);
	SAME_FIELD(xring_sqe, io_uring_sqe, splice_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, rename_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, unlink_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, hardlink_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, xattr_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, msg_ring_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, uring_cmd_flags);
	SAME_FIELD(xring_sqe, io_uring_sqe, user_data);
	SAME_FIELD(xring_sqe, io_uring_sqe, buf_index);
	SAME_FIELD(xring_sqe, io_uring_sqe, buf_group);
	SAME_FIELD(xring_sqe, io_uring_sqe, personality);
	SAME_FIELD(xring_sqe, io_uring_sqe, splice_fd_in);
	SAME_FIELD(xring_sqe, io_uring_sqe, file_index);
	SAME_FIELD(xring_sqe, io_uring_sqe, addr_len);
	SAME_FIELD(xring_sqe, io_uring_sqe, __pad3);
	SAME_FIELD(xring_sqe, io_uring_sqe, addr3);
	SAME_FIELD(xring_sqe, io_uring_sqe, __pad2);
	SAME_FIELD(xring_sqe, io_uring_sqe, cmd);
}

Test(abi, fields_newer_than_the_installed_header_sit_where_the_kernel_puts_them)
{
	/* Kernel 6.7+ fields this machine's uapi header (6.1) does not name yet. */
	cr_expect_eq(offsetof(struct xring_sqe, nop_flags),
		     offsetof(struct io_uring_sqe, rw_flags));
	cr_expect_eq(offsetof(struct xring_sqe, waitid_flags), 28);
	cr_expect_eq(offsetof(struct xring_sqe, futex_flags), 28);
	cr_expect_eq(offsetof(struct xring_sqe, level), 16);
	cr_expect_eq(offsetof(struct xring_sqe, optname), 20);
	cr_expect_eq(offsetof(struct xring_sqe, optlen), 44);
	cr_expect_eq(offsetof(struct xring_sqe, optval), 48);
	cr_expect_eq(offsetof(struct xring_sqe, attr_ptr), 48);
	cr_expect_eq(offsetof(struct xring_sqe, attr_type_mask), 56);
	cr_expect_eq(offsetof(struct xring_sqe, write_stream), 44);
}

Test(abi, cqe_matches_the_kernel)
{
	cr_assert_eq(sizeof(struct xring_cqe), 16);
	cr_assert_eq(sizeof(struct xring_cqe), sizeof(struct io_uring_cqe));
	SAME_FIELD(xring_cqe, io_uring_cqe, user_data);
	SAME_FIELD(xring_cqe, io_uring_cqe, res);
	SAME_FIELD(xring_cqe, io_uring_cqe, flags);
}

Test(abi, params_match_io_uring_params)
{
	cr_assert_eq(sizeof(struct xring_params), sizeof(struct io_uring_params));
	SAME_FIELD(xring_params, io_uring_params, sq_entries);
	SAME_FIELD(xring_params, io_uring_params, cq_entries);
	SAME_FIELD(xring_params, io_uring_params, flags);
	SAME_FIELD(xring_params, io_uring_params, sq_thread_cpu);
	SAME_FIELD(xring_params, io_uring_params, sq_thread_idle);
	SAME_FIELD(xring_params, io_uring_params, features);
	SAME_FIELD(xring_params, io_uring_params, wq_fd);
	SAME_FIELD(xring_params, io_uring_params, resv);
	SAME_FIELD(xring_params, io_uring_params, sq_off);
	SAME_FIELD(xring_params, io_uring_params, cq_off);
}

Test(abi, opcodes_and_flags_carry_the_kernel_values)
{
	static const struct {
		unsigned x, k;
		const char *name;
	} v[] = {
		{XRING_OP_NOP, IORING_OP_NOP, "NOP"},
		{XRING_OP_SENDMSG, IORING_OP_SENDMSG, "SENDMSG"},
		{XRING_OP_RECVMSG, IORING_OP_RECVMSG, "RECVMSG"},
		{XRING_OP_TIMEOUT, IORING_OP_TIMEOUT, "TIMEOUT"},
		{XRING_OP_TIMEOUT_REMOVE, IORING_OP_TIMEOUT_REMOVE, "TIMEOUT_REMOVE"},
		{XRING_OP_ACCEPT, IORING_OP_ACCEPT, "ACCEPT"},
		{XRING_OP_ASYNC_CANCEL, IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
		{XRING_OP_LINK_TIMEOUT, IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
		{XRING_OP_CONNECT, IORING_OP_CONNECT, "CONNECT"},
		{XRING_OP_CLOSE, IORING_OP_CLOSE, "CLOSE"},
		{XRING_OP_FILES_UPDATE, IORING_OP_FILES_UPDATE, "FILES_UPDATE"},
		{XRING_OP_READ, IORING_OP_READ, "READ"},
		{XRING_OP_WRITE, IORING_OP_WRITE, "WRITE"},
		{XRING_OP_SEND, IORING_OP_SEND, "SEND"},
		{XRING_OP_RECV, IORING_OP_RECV, "RECV"},
		{XRING_OP_PROVIDE_BUFFERS, IORING_OP_PROVIDE_BUFFERS, "PROVIDE_BUFFERS"},
		{XRING_OP_SHUTDOWN, IORING_OP_SHUTDOWN, "SHUTDOWN"},
		{XRING_OP_MSG_RING, IORING_OP_MSG_RING, "MSG_RING"},
		{XRING_OP_SOCKET, IORING_OP_SOCKET, "SOCKET"},
		{XRING_OP_URING_CMD, IORING_OP_URING_CMD, "URING_CMD"},
		{XRING_OP_SEND_ZC, IORING_OP_SEND_ZC, "SEND_ZC"},
		{XRING_OP_SENDMSG_ZC, IORING_OP_SENDMSG_ZC, "SENDMSG_ZC"},
		{XRING_SQE_FIXED_FILE, IOSQE_FIXED_FILE, "FIXED_FILE"},
		{XRING_SQE_IO_DRAIN, IOSQE_IO_DRAIN, "IO_DRAIN"},
		{XRING_SQE_IO_LINK, IOSQE_IO_LINK, "IO_LINK"},
		{XRING_SQE_IO_HARDLINK, IOSQE_IO_HARDLINK, "IO_HARDLINK"},
		{XRING_SQE_ASYNC, IOSQE_ASYNC, "ASYNC"},
		{XRING_SQE_BUFFER_SELECT, IOSQE_BUFFER_SELECT, "BUFFER_SELECT"},
		{XRING_SQE_CQE_SKIP_SUCCESS, IOSQE_CQE_SKIP_SUCCESS, "CQE_SKIP_SUCCESS"},
		{XRING_CQE_F_BUFFER, IORING_CQE_F_BUFFER, "CQE_F_BUFFER"},
		{XRING_CQE_F_MORE, IORING_CQE_F_MORE, "CQE_F_MORE"},
		{XRING_CQE_F_SOCK_NONEMPTY, IORING_CQE_F_SOCK_NONEMPTY, "CQE_F_SOCK_NONEMPTY"},
		{XRING_CQE_F_NOTIF, IORING_CQE_F_NOTIF, "CQE_F_NOTIF"},
		{XRING_CQE_BUFFER_SHIFT, IORING_CQE_BUFFER_SHIFT, "CQE_BUFFER_SHIFT"},
		{XRING_TIMEOUT_ABS, IORING_TIMEOUT_ABS, "TIMEOUT_ABS"},
		{XRING_TIMEOUT_UPDATE, IORING_TIMEOUT_UPDATE, "TIMEOUT_UPDATE"},
		{XRING_TIMEOUT_BOOTTIME, IORING_TIMEOUT_BOOTTIME, "TIMEOUT_BOOTTIME"},
		{XRING_TIMEOUT_REALTIME, IORING_TIMEOUT_REALTIME, "TIMEOUT_REALTIME"},
		{XRING_LINK_TIMEOUT_UPDATE, IORING_LINK_TIMEOUT_UPDATE, "LINK_TIMEOUT_UPDATE"},
		{XRING_TIMEOUT_ETIME_SUCCESS, IORING_TIMEOUT_ETIME_SUCCESS,
		 "TIMEOUT_ETIME_SUCCESS"},
		{XRING_ASYNC_CANCEL_ALL, IORING_ASYNC_CANCEL_ALL, "ASYNC_CANCEL_ALL"},
		{XRING_ASYNC_CANCEL_FD, IORING_ASYNC_CANCEL_FD, "ASYNC_CANCEL_FD"},
		{XRING_ASYNC_CANCEL_ANY, IORING_ASYNC_CANCEL_ANY, "ASYNC_CANCEL_ANY"},
		{XRING_SETUP_SQPOLL, IORING_SETUP_SQPOLL, "SETUP_SQPOLL"},
		{XRING_SETUP_CQSIZE, IORING_SETUP_CQSIZE, "SETUP_CQSIZE"},
		{XRING_SETUP_CLAMP, IORING_SETUP_CLAMP, "SETUP_CLAMP"},
		{XRING_SETUP_SUBMIT_ALL, IORING_SETUP_SUBMIT_ALL, "SETUP_SUBMIT_ALL"},
		{XRING_SETUP_COOP_TASKRUN, IORING_SETUP_COOP_TASKRUN, "SETUP_COOP_TASKRUN"},
		{XRING_SETUP_TASKRUN_FLAG, IORING_SETUP_TASKRUN_FLAG, "SETUP_TASKRUN_FLAG"},
		{XRING_SETUP_SQE128, IORING_SETUP_SQE128, "SETUP_SQE128"},
		{XRING_SETUP_CQE32, IORING_SETUP_CQE32, "SETUP_CQE32"},
		{XRING_SETUP_SINGLE_ISSUER, IORING_SETUP_SINGLE_ISSUER, "SETUP_SINGLE_ISSUER"},
		{XRING_SETUP_DEFER_TASKRUN, IORING_SETUP_DEFER_TASKRUN, "SETUP_DEFER_TASKRUN"},
		{XRING_FEAT_NODROP, IORING_FEAT_NODROP, "FEAT_NODROP"},
		{XRING_FEAT_EXT_ARG, IORING_FEAT_EXT_ARG, "FEAT_EXT_ARG"},
		{XRING_FEAT_CQE_SKIP, IORING_FEAT_CQE_SKIP, "FEAT_CQE_SKIP"},
		{XRING_FEAT_LINKED_FILE, IORING_FEAT_LINKED_FILE, "FEAT_LINKED_FILE"},
	};

	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		cr_expect_eq(v[i].x, v[i].k, "%s: xring %u, kernel %u", v[i].name, v[i].x, v[i].k);
	/* Opcodes past the 6.1 uapi header, from the kernel's enum io_uring_op. */
	cr_expect_eq(XRING_OP_READ_MULTISHOT, 49);
	cr_expect_eq(XRING_OP_FTRUNCATE, 55);
	cr_expect_eq(XRING_OP_BIND, 56);
	cr_expect_eq(XRING_OP_LISTEN, 57);
	cr_expect_eq(XRING_TIMEOUT_MULTISHOT, 1u << 6);
	cr_expect_eq(XRING_ASYNC_CANCEL_OP, 1u << 5);
}

/* Both helpers write into SQEs that start as the same garbage; the results must be equal. */
#define SAME_PREP(xcall, kcall)                                                                    \
	do {                                                                                       \
		struct xring_sqe xs;                                                               \
		struct io_uring_sqe ks;                                                            \
		memset(&xs, 0xa5, sizeof(xs));                                                     \
		memset(&ks, 0xa5, sizeof(ks));                                                     \
		{                                                                                  \
			struct xring_sqe *sqe = &xs;                                               \
			xcall;                                                                     \
		}                                                                                  \
		{                                                                                  \
			struct io_uring_sqe *sqe = &ks;                                            \
			kcall;                                                                     \
		}                                                                                  \
		cr_expect(memcmp(&xs, &ks, sizeof(xs)) == 0, "%s differs from liburing", #xcall);  \
	} while (0)

Test(abi, prep_helpers_encode_like_liburing)
{
	struct __kernel_timespec ts = {1, 2};
	int marker;

	SAME_PREP(xring_prep_nop(sqe), io_uring_prep_nop(sqe));
	SAME_PREP(xring_prep_rw(XRING_OP_READ, sqe, 7, &marker, 100, 42),
		  io_uring_prep_rw(IORING_OP_READ, sqe, 7, &marker, 100, 42));
	SAME_PREP(xring_prep_timeout(sqe, &ts, 3, XRING_TIMEOUT_ABS),
		  io_uring_prep_timeout(sqe, &ts, 3, IORING_TIMEOUT_ABS));
	SAME_PREP(xring_prep_timeout_remove(sqe, 0x1122334455667788ull, 0),
		  io_uring_prep_timeout_remove(sqe, 0x1122334455667788ull, 0));
	SAME_PREP(xring_prep_timeout_update(sqe, &ts, 99, XRING_TIMEOUT_ABS),
		  io_uring_prep_timeout_update(sqe, &ts, 99, IORING_TIMEOUT_ABS));
	SAME_PREP(xring_prep_link_timeout(sqe, &ts, XRING_TIMEOUT_BOOTTIME),
		  io_uring_prep_link_timeout(sqe, &ts, IORING_TIMEOUT_BOOTTIME));
	SAME_PREP(xring_prep_cancel64(sqe, 77, XRING_ASYNC_CANCEL_ALL),
		  io_uring_prep_cancel64(sqe, 77, IORING_ASYNC_CANCEL_ALL));
	SAME_PREP(xring_prep_cancel(sqe, &marker, 0), io_uring_prep_cancel(sqe, &marker, 0));
	SAME_PREP(xring_prep_cancel_fd(sqe, 5, XRING_ASYNC_CANCEL_ALL),
		  io_uring_prep_cancel_fd(sqe, 5, IORING_ASYNC_CANCEL_ALL));
	SAME_PREP((xring_prep_nop(sqe), xring_sqe_set_data64(sqe, 5), xring_sqe_set_flags(sqe, 3)),
		  (io_uring_prep_nop(sqe), io_uring_sqe_set_data64(sqe, 5),
		   io_uring_sqe_set_flags(sqe, 3)));
	SAME_PREP((xring_prep_nop(sqe), xring_sqe_set_data(sqe, &marker)),
		  (io_uring_prep_nop(sqe), io_uring_sqe_set_data(sqe, &marker)));
}
