/*
 * A liburing-style translation unit built through the compatibility header: it names a broad set
 * of liburing's structs, functions and constants, checks at compile time that every constant has
 * the xring value constants.h pairs it with (kernel_consts.c closes the loop against the
 * kernel's header), and runs a few requests so the test can see the names do what they say.
 */
#include <xring/liburing.h>

#include <liburing.h> /* must now be empty */
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "compat_names.h"

#define K(name, xname, value)                                                                      \
	_Static_assert((long long) (name) == (long long) (xname),                                  \
		       #name " is not mapped to " #xname);                                         \
	_Static_assert((long long) (name) == (long long) (value), #name " is not the kernel's");
#define N K
#include "constants.h"

_Static_assert(sizeof(struct io_uring_sqe) == 64, "sqe size");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "cqe size");
_Static_assert(sizeof(struct io_uring_params) == 120, "params size");
_Static_assert(sizeof(struct io_uring_buf) == 16, "buf size");
_Static_assert(sizeof(struct io_uring_buf_reg) == 40, "buf_reg size");
_Static_assert(sizeof(struct io_uring_recvmsg_out) == 16, "recvmsg_out size");
_Static_assert(sizeof(struct io_uring_probe) == 16, "probe size");
_Static_assert(sizeof(struct io_uring_probe_op) == 8, "probe op size");

/* Every function and function-like name, by address or by use, so that a missing one fails the
 * build (or the link) rather than a program in the field. */
typedef void (*fnptr)(void);
#define F(f) (fnptr)(f)
static const fnptr functions[] = {
	F(io_uring_queue_init),
	F(io_uring_queue_init_params),
	F(io_uring_queue_exit),
	F(io_uring_get_sqe),
	F(io_uring_submit),
	F(io_uring_submit_and_wait),
	F(io_uring_submit_and_wait_timeout),
	F(io_uring_submit_and_get_events),
	F(io_uring_get_events),
	F(io_uring_peek_cqe),
	F(io_uring_peek_batch_cqe),
	F(io_uring_wait_cqe),
	F(io_uring_wait_cqe_nr),
	F(io_uring_wait_cqes),
	F(io_uring_wait_cqe_timeout),
	F(__io_uring_get_cqe),
	F(io_uring_cqe_seen),
	F(io_uring_cq_advance),
	F(io_uring_cq_ready),
	F(io_uring_cq_has_overflow),
	F(io_uring_sq_ready),
	F(io_uring_sq_space_left),
	F(io_uring_sqring_wait),
	F(io_uring_cqe_shift),
	F(io_uring_sqe_set_data),
	F(io_uring_sqe_set_data64),
	F(io_uring_sqe_set_flags),
	F(io_uring_sqe_set_buf_group),
	F(io_uring_cqe_get_data),
	F(io_uring_cqe_get_data64),
	F(io_uring_register_ring_fd),
	F(io_uring_unregister_ring_fd),
	F(io_uring_ring_dontfork),
	F(io_uring_get_probe),
	F(io_uring_get_probe_ring),
	F(io_uring_free_probe),
	F(io_uring_opcode_supported),
	F(__io_uring_set_target_fixed_file),
	F(io_uring_prep_rw),
	F(io_uring_prep_nop),
	F(io_uring_prep_timeout),
	F(io_uring_prep_timeout_remove),
	F(io_uring_prep_timeout_update),
	F(io_uring_prep_link_timeout),
	F(io_uring_prep_cancel),
	F(io_uring_prep_cancel64),
	F(io_uring_prep_cancel_fd),
	F(io_uring_prep_socket),
	F(io_uring_prep_socket_direct),
	F(io_uring_prep_socket_direct_alloc),
	F(io_uring_prep_connect),
	F(io_uring_prep_bind),
	F(io_uring_prep_listen),
	F(io_uring_prep_accept),
	F(io_uring_prep_accept_direct),
	F(io_uring_prep_multishot_accept),
	F(io_uring_prep_multishot_accept_direct),
	F(io_uring_prep_send),
	F(io_uring_prep_send_set_addr),
	F(io_uring_prep_sendto),
	F(io_uring_prep_send_zc),
	F(io_uring_prep_send_zc_fixed),
	F(io_uring_prep_send_bundle),
	F(io_uring_prep_sendmsg),
	F(io_uring_prep_sendmsg_zc),
	F(io_uring_prep_recv),
	F(io_uring_prep_recv_multishot),
	F(io_uring_prep_recvmsg),
	F(io_uring_prep_recvmsg_multishot),
	F(io_uring_prep_shutdown),
	F(io_uring_prep_close),
	F(io_uring_prep_close_direct),
	F(io_uring_prep_files_update),
	F(io_uring_prep_read),
	F(io_uring_prep_write),
	F(io_uring_prep_readv),
	F(io_uring_prep_readv2),
	F(io_uring_prep_writev),
	F(io_uring_prep_writev2),
	F(io_uring_prep_read_fixed),
	F(io_uring_prep_write_fixed),
	F(io_uring_prep_fsync),
	F(io_uring_prep_splice),
	F(io_uring_prep_tee),
	F(io_uring_prep_openat),
	F(io_uring_prep_openat_direct),
	F(io_uring_prep_epoll_ctl),
	F(io_uring_prep_cmd_sock),
	F(io_uring_prep_poll_add),
	F(io_uring_prep_poll_multishot),
	F(io_uring_prep_poll_remove),
	F(io_uring_prep_poll_update),
	F(io_uring_prep_provide_buffers),
	F(io_uring_prep_remove_buffers),
	F(io_uring_recvmsg_validate),
	F(io_uring_recvmsg_name),
	F(io_uring_recvmsg_payload),
	F(io_uring_recvmsg_payload_length),
	F(io_uring_recvmsg_cmsg_firsthdr),
	F(io_uring_recvmsg_cmsg_nexthdr),
	F(io_uring_register_files),
	F(io_uring_register_files_sparse),
	F(io_uring_register_files_update),
	F(io_uring_unregister_files),
	F(io_uring_register_file_alloc_range),
	F(io_uring_register_buffers),
	F(io_uring_unregister_buffers),
	F(io_uring_register_buf_ring),
	F(io_uring_unregister_buf_ring),
	F(io_uring_setup_buf_ring),
	F(io_uring_free_buf_ring),
	F(io_uring_buf_ring_init),
	F(io_uring_buf_ring_add),
	F(io_uring_buf_ring_advance),
	F(io_uring_buf_ring_cq_advance),
	F(io_uring_buf_ring_mask),
};

int compat_function_count(void)
{
	int n = 0;

	for (unsigned i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
		if (!functions[i])
			return -1;
		n++;
	}
	return n;
}

/* A linked NOP + timeout pair and a batch reap, all in liburing's words. Returns 0 or the line
 * that failed. */
int compat_nop_chain(void)
{
	struct io_uring ring;
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe, *cqes[4];
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
	unsigned head, seen = 0;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = 64;
	if (io_uring_queue_init_params(8, &ring, &p) < 0)
		return __LINE__;
	if (!(p.features & IORING_FEAT_NODROP))
		return __LINE__;
	if (io_uring_register_ring_fd(&ring) != 1)
		return __LINE__;

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, 1);
	io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	io_uring_sqe_set_data(sqe, (void *) (uintptr_t) 2);
	if (io_uring_sq_ready(&ring) != 2 || io_uring_sq_space_left(&ring) != 6)
		return __LINE__;
	ret = io_uring_submit_and_wait_timeout(&ring, &cqe, 2, NULL, NULL);
	if (ret != 2)
		return __LINE__;
	if (io_uring_cq_ready(&ring) != 2 || io_uring_cq_has_overflow(&ring))
		return __LINE__;
	io_uring_for_each_cqe(&ring, head, cqe)
	{
		if (io_uring_cqe_get_data64(cqe) == 1 && cqe->res != 0)
			return __LINE__;
		if (io_uring_cqe_get_data(cqe) == (void *) (uintptr_t) 2 && cqe->res != -ETIME)
			return __LINE__;
		seen++;
	}
	io_uring_cq_advance(&ring, seen);
	if (seen != 2)
		return __LINE__;

	/* A timeout that expires while waiting: -ETIME from the wait itself. */
	ret = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	if (ret != -ETIME)
		return __LINE__;

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	io_uring_submit(&ring);
	if (io_uring_wait_cqe(&ring, &cqe) || cqe->res != 0)
		return __LINE__;
	if (io_uring_peek_batch_cqe(&ring, cqes, 4) != 1)
		return __LINE__;
	io_uring_cqe_seen(&ring, cqe);
	if (io_uring_peek_cqe(&ring, &cqe) != -EAGAIN)
		return __LINE__;
	io_uring_queue_exit(&ring);
	return 0;
}

/* The kernel's probe speaks for xring. */
int compat_probe(void)
{
	struct io_uring_probe *probe = io_uring_get_probe();
	int ok;

	if (!probe)
		return __LINE__;
	ok = io_uring_opcode_supported(probe, IORING_OP_SEND) &&
	     io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
	     !io_uring_opcode_supported(probe, 255);
	io_uring_free_probe(probe);
	return ok ? 0 : __LINE__;
}

/* A socket option set through IORING_OP_URING_CMD, which xring hands to its kernel ring. */
int compat_cmd_sock(void)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int fd, one = 1, val = 0, ret = 0;
	socklen_t len = sizeof(val);

	if (io_uring_queue_init(4, &ring, 0) < 0)
		return __LINE__;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return __LINE__;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_cmd_sock(sqe, SOCKET_URING_OP_SETSOCKOPT, fd, SOL_SOCKET, SO_KEEPALIVE, &one,
			       sizeof(one));
	io_uring_submit(&ring);
	if (io_uring_wait_cqe(&ring, &cqe) || cqe->res != 0)
		ret = __LINE__;
	else
		io_uring_cqe_seen(&ring, cqe);
	if (!ret && (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &val, &len) || val != 1))
		ret = __LINE__;
	close(fd);
	io_uring_queue_exit(&ring);
	return ret;
}

/* liburing's field encodings for helpers the compatibility header adds. */
int compat_prep_encodings(void)
{
	struct io_uring_sqe sqe;
	struct iovec iov = {0};
	int v = 0;

	io_uring_prep_cmd_sock(&sqe, SOCKET_URING_OP_GETSOCKOPT, 7, SOL_SOCKET, SO_RCVBUF, &v, 4);
	if (sqe.opcode != IORING_OP_URING_CMD || sqe.fd != 7 || sqe.cmd_op != 2 ||
	    sqe.level != SOL_SOCKET || sqe.optname != SO_RCVBUF || sqe.optlen != 4 ||
	    sqe.optval != (uintptr_t) &v)
		return __LINE__;
	io_uring_prep_splice(&sqe, 3, -1, 4, 10, 100, 0);
	if (sqe.opcode != IORING_OP_SPLICE || sqe.fd != 4 || sqe.splice_fd_in != 3 ||
	    sqe.splice_off_in != (uint64_t) -1 || sqe.off != 10 || sqe.len != 100)
		return __LINE__;
	io_uring_prep_readv2(&sqe, 5, &iov, 1, 8, 3);
	if (sqe.opcode != IORING_OP_READV || sqe.addr != (uintptr_t) &iov || sqe.len != 1 ||
	    sqe.off != 8 || sqe.rw_flags != 3)
		return __LINE__;
	io_uring_prep_poll_update(&sqe, 11, 12, POLLIN, IORING_POLL_UPDATE_EVENTS);
	if (sqe.opcode != IORING_OP_POLL_REMOVE || sqe.addr != 11 || sqe.off != 12 ||
	    sqe.len != IORING_POLL_UPDATE_EVENTS || sqe.poll32_events != POLLIN)
		return __LINE__;
	io_uring_prep_send_bundle(&sqe, 9, 0, 0);
	if (sqe.opcode != IORING_OP_SEND || !(sqe.ioprio & IORING_RECVSEND_BUNDLE))
		return __LINE__;
	io_uring_sqe_set_buf_group(&sqe, 77);
	if (sqe.buf_group != 77)
		return __LINE__;
	io_uring_prep_openat_direct(&sqe, -100, "x", 0, 0, IORING_FILE_INDEX_ALLOC);
	if (sqe.opcode != IORING_OP_OPENAT || sqe.file_index != IORING_FILE_INDEX_ALLOC)
		return __LINE__;
	return 0;
}

/*
 * The errors the manual pages promise, as a liburing program sees them through the header.
 * Each value was first observed on the kernel's own io_uring; the cases are ones whose answer
 * has been stable across kernels.
 */
static struct io_uring er;

/* Runs the one SQE prepared, returns the res of its first CQE, and sets *flags to its flags. */
static int er_run(unsigned *flags)
{
	struct io_uring_cqe *cqe;
	int res;

	io_uring_submit(&er);
	if (io_uring_wait_cqe(&er, &cqe))
		return 1000;
	res = cqe->res;
	*flags = cqe->flags;
	io_uring_cqe_seen(&er, cqe);
	/* A failed zero-copy send still posts its notification: take it too. */
	if (*flags & IORING_CQE_F_MORE) {
		if (io_uring_wait_cqe(&er, &cqe))
			return 1001;
		if (!(cqe->flags & IORING_CQE_F_NOTIF))
			return 1002;
		io_uring_cqe_seen(&er, cqe);
	}
	return res;
}

int compat_documented_errors(const char **what, int *got, int *want)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct io_uring_sqe *s;
	unsigned fl;
	int t, u, closed, sv[2], fds[2] = {-1, -1}, bad[1] = {9999}, ret = 0;

	if (io_uring_queue_init(8, &er, 0))
		return -1;
	t = socket(AF_INET, SOCK_STREAM, 0);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	closed = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Bound but not listening: connecting to its port is refused. */
	if (t < 0 || u < 0 || closed < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    bind(closed, (struct sockaddr *) &a, sizeof(a)) ||
	    getsockname(closed, (struct sockaddr *) &a, &alen))
		return -1;

#define NOTE(name, expect, r)                                                                      \
	do {                                                                                       \
		if ((r) != (expect) && !ret) {                                                     \
			*what = name;                                                              \
			*got = (r);                                                                \
			*want = (expect);                                                          \
			ret = __LINE__;                                                            \
		}                                                                                  \
	} while (0)
#define CHECK(name, expect, prep)                                                                  \
	do {                                                                                       \
		int r_;                                                                            \
		s = io_uring_get_sqe(&er);                                                         \
		prep;                                                                              \
		r_ = er_run(&fl);                                                                  \
		NOTE(name, expect, r_);                                                            \
	} while (0)
#define CHECK_CALL(name, expect, call)                                                             \
	do {                                                                                       \
		int r_ = (call);                                                                   \
		NOTE(name, expect, r_);                                                            \
	} while (0)

	CHECK("socket with flags", -EINVAL, io_uring_prep_socket(s, AF_INET, SOCK_STREAM, 0, 1));
	CHECK("socket_direct without a table", -ENXIO,
	      io_uring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, 0, 0));
	CHECK("close_direct without a table", -ENXIO, io_uring_prep_close_direct(s, 0));
	CHECK_CALL("unregister_files without a table", -ENXIO, io_uring_unregister_files(&er));
	CHECK_CALL("register_files_update without a table", -ENXIO,
		   io_uring_register_files_update(&er, 0, fds, 1));
	CHECK_CALL("register_files of none", -EINVAL, io_uring_register_files(&er, fds, 0));
	CHECK_CALL("register_files_sparse", 0, io_uring_register_files_sparse(&er, 4));
	CHECK_CALL("a second table", -EBUSY, io_uring_register_files(&er, fds, 2));
	CHECK_CALL("register_files_update past the end", -EINVAL,
		   io_uring_register_files_update(&er, 3, fds, 2));
	CHECK_CALL("register_files_update of a closed fd", -EBADF,
		   io_uring_register_files_update(&er, 0, bad, 1));
	CHECK_CALL("register_file_alloc_range past the end", -EINVAL,
		   io_uring_register_file_alloc_range(&er, 3, 2));
	CHECK_CALL("register_file_alloc_range overflowing", -EOVERFLOW,
		   io_uring_register_file_alloc_range(&er, 0xffffffffu, 2));
	CHECK("close_direct of an empty slot", -EBADF, io_uring_prep_close_direct(s, 1));
	CHECK("close_direct past the end", -EINVAL, io_uring_prep_close_direct(s, 9));
	CHECK("socket_direct with SOCK_CLOEXEC", -EINVAL,
	      io_uring_prep_socket_direct(s, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0));
	CHECK("socket_direct past the end", -EINVAL,
	      io_uring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, 7, 0));
	CHECK("accept on a socket not listening", -EINVAL,
	      io_uring_prep_accept(s, t, NULL, NULL, 0));
	CHECK("listen on a datagram socket", -EOPNOTSUPP, io_uring_prep_listen(s, u, 4));
	CHECK("multishot recv without buffer selection", -EINVAL,
	      io_uring_prep_recv_multishot(s, t, NULL, 0, 0));
	CHECK("shutdown of an unconnected socket", -ENOTCONN,
	      io_uring_prep_shutdown(s, t, SHUT_WR));
	CHECK("provide_buffers of none", -E2BIG,
	      io_uring_prep_provide_buffers(s, NULL, 16, 0, 1, 0));
	CHECK("remove_buffers of a missing group", -ENOENT, io_uring_prep_remove_buffers(s, 1, 77));
	CHECK("send_zc on a unix socket", -EOPNOTSUPP,
	      io_uring_prep_send_zc(s, sv[0], "x", 1, 0, 0));
	CHECK("send on a never-connected TCP socket", -EPIPE,
	      io_uring_prep_send(s, t, "x", 1, MSG_NOSIGNAL));
	CHECK("connect to a port nobody listens on", -ECONNREFUSED,
	      io_uring_prep_connect(s, t, (struct sockaddr *) &a, sizeof(a)));
	CHECK("close of a closed fd", -EBADF, io_uring_prep_close(s, 9999));
	CHECK_CALL("unregister_buffers without buffers", -ENXIO, io_uring_unregister_buffers(&er));
	CHECK_CALL("unregister_buf_ring of a missing group", -ENOENT,
		   io_uring_unregister_buf_ring(&er, 3));
	{
		int r2 = 0;
		struct io_uring_buf_ring *br = io_uring_setup_buf_ring(&er, 3, 1, 0, &r2);

		CHECK_CALL("setup_buf_ring of 3 entries", -EINVAL, br ? 0 : r2);
		br = io_uring_setup_buf_ring(&er, 4, 1, 0, &r2);
		CHECK_CALL("setup_buf_ring", 0, r2);
		if (br) {
			io_uring_setup_buf_ring(&er, 4, 1, 0, &r2);
			CHECK_CALL("a second ring for the group", -EEXIST, r2);
			CHECK_CALL("free_buf_ring", 0, io_uring_free_buf_ring(&er, br, 4, 1));
		}
	}
#undef CHECK_CALL
#undef CHECK
#undef NOTE

	close(t);
	close(u);
	close(closed);
	close(sv[0]);
	close(sv[1]);
	io_uring_queue_exit(&er);
	return ret;
}
