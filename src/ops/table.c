/* Which operation serves each opcode. Opcodes without an entry go to the kernel ring. */
#include "ops/ops.h"
#include "ops/xsock.h"

const struct xring_op *const ops_table[256] = {
	[XRING_OP_NOP] = &op_nop,
	[XRING_OP_TIMEOUT] = &op_timeout,
	[XRING_OP_TIMEOUT_REMOVE] = &op_timeout_remove,
	[XRING_OP_ASYNC_CANCEL] = &op_async_cancel,
	[XRING_OP_LINK_TIMEOUT] = &op_link_timeout,
	[XRING_OP_CONNECT] = &op_connect,
	[XRING_OP_BIND] = &op_bind,
	[XRING_OP_ACCEPT] = &op_accept,
	[XRING_OP_POLL_REMOVE] = &op_poll_remove,
};
