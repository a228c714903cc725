/*
 * The other half of the compatibility check (compat_names.c is the first): here, with the
 * kernel's own <linux/io_uring.h> and without the compatibility header, every constant that
 * header defines must equal the xring constant constants.h pairs it with. Together the two
 * translation units prove that a liburing name seen through <xring/liburing.h> has the kernel's
 * value. The structs are compared the same way.
 */
#include <linux/io_uring.h>
#include <stddef.h>

#include <xring.h>

#define K(name, xname, value)                                                                      \
	_Static_assert((long long) (name) == (long long) (xname), #name " is not xring's");
#define N(name, xname, value)
#include "constants.h"

#define SAME_SIZE(k, x) _Static_assert(sizeof(struct k) == sizeof(struct x), #k " size");
#define SAME_FIELD(k, x, f)                                                                        \
	_Static_assert(offsetof(struct k, f) == offsetof(struct x, f), #k "." #f " offset");

SAME_SIZE(io_uring_sqe, xring_sqe)
SAME_SIZE(io_uring_cqe, xring_cqe)
SAME_SIZE(io_uring_params, xring_params)
SAME_SIZE(io_uring_buf, xring_buf)
SAME_SIZE(io_uring_buf_ring, xring_buf_ring)
SAME_SIZE(io_uring_buf_reg, xring_buf_reg)
SAME_SIZE(io_uring_recvmsg_out, xring_recvmsg_out)
SAME_SIZE(io_uring_probe, io_uring_probe) /* (the kernel's; compat_names.c checks ours: 16) */
SAME_FIELD(io_uring_params, xring_params, features)
SAME_FIELD(io_uring_params, xring_params, sq_off)
SAME_FIELD(io_uring_params, xring_params, cq_off)
SAME_FIELD(io_uring_buf_ring, xring_buf_ring, tail)
SAME_FIELD(io_uring_buf_reg, xring_buf_reg, bgid)
SAME_FIELD(io_uring_recvmsg_out, xring_recvmsg_out, payloadlen)
SAME_FIELD(io_uring_recvmsg_out, xring_recvmsg_out, flags)
_Static_assert(sizeof(struct io_uring_probe) == 16 && sizeof(struct io_uring_probe_op) == 8,
	       "probe layout");

/* Something for the linker to keep: the test calls it to show this unit was built. */
int compat_kernel_consts_checked(void)
{
	return IORING_OP_SEND_ZC;
}
