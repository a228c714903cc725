/*
 * Arbitrary SQE streams against the ring core: any opcode, flags, reserved fields, links,
 * drains and skip-success mixes must end in CQEs, never a crash, a leak or a hang. Opcodes
 * that would reach the kernel ring are turned into NOPs (a random OPENAT or UNLINKAT must not
 * run on the fuzzing machine); pointers the kernel would copy from are made valid or NULL.
 */
#include <stdint.h>
#include <string.h>

#include <xring.h>

static struct __kernel_timespec ts_pool[4] = {{0, 0}, {0, 1000}, {0, 200000}, {-1, 5}};

static void sanitize(struct xring_sqe *sqe, uint8_t sel)
{
	switch (sqe->opcode % 6) {
	case 0:
		sqe->opcode = XRING_OP_NOP;
		break;
	case 1:
		sqe->opcode = XRING_OP_TIMEOUT;
		break;
	case 2:
		sqe->opcode = XRING_OP_LINK_TIMEOUT;
		break;
	case 3:
		sqe->opcode = XRING_OP_TIMEOUT_REMOVE;
		break;
	case 4:
		sqe->opcode = XRING_OP_ASYNC_CANCEL;
		break;
	default:
		sqe->opcode = (uint8_t) (200 + sel % 50); /* unknown to every kernel: -EINVAL */
		break;
	}
	/* The user pointers a timeout reads: one of a few timespecs, or NULL. */
	sqe->addr = (sel & 4) ? 0 : (uint64_t) (uintptr_t) &ts_pool[sel % 4];
	sqe->addr2 = (sel & 8) ? 0 : (uint64_t) (uintptr_t) &ts_pool[(sel >> 4) % 4];
	if (sqe->opcode == XRING_OP_ASYNC_CANCEL || sqe->opcode == XRING_OP_TIMEOUT_REMOVE)
		sqe->addr = sel % 8; /* a user_data to look for */
	/* FILE/FIXED nop flags would probe real descriptors: keep the fd harmless. */
	sqe->fd = -1;
	/* Cancel by fd needs an open fd; -1 gives -EBADF, fine. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xring_params p = {0};
	struct xring ring;
	unsigned n = (unsigned) (size / 65);

	if (n == 0 || n > 256)
		return 0;
	p.flags = (data[0] & 1) ? XRING_SETUP_SUBMIT_ALL : 0;
	p.flags |= XRING_SETUP_CQSIZE;
	p.cq_entries = 4 + (data[0] >> 4); /* a small CQ exercises the overflow list */
	if (xring_queue_init_params(8, &ring, &p))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		struct xring_sqe *sqe = xring_get_sqe(&ring);
		const uint8_t *src = data + i * 65;

		if (!sqe) {
			xring_submit(&ring);
			sqe = xring_get_sqe(&ring);
			if (!sqe)
				break;
		}
		memcpy(sqe, src, sizeof(*sqe));
		sqe->user_data = i % 8;
		sanitize(sqe, src[64]);
	}
	for (int round = 0; round < 4; round++) {
		struct xring_cqe *cqe;
		unsigned reaped = 0;

		xring_submit(&ring);
		while (xring_peek_cqe(&ring, &cqe) == 0 && reaped++ < 100000)
			xring_cqe_seen(&ring, cqe);
	}
	xring_queue_exit(&ring);
	return 0;
}
