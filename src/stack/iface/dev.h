/*
 * The device an interface sends through. It is deliberately the smallest slice of
 * nic/port.h's queue interface that output needs, one frame at a time, so the stack can be
 * tested over an in-memory queue (txq.h) and later sit on a port queue unchanged:
 *
 *	tx_alloc  -> port_tx_alloc(q, &f, 1); data = f.data, cap = f.len, id = f.buf
 *	tx_post   -> f.len = len; port_tx_post(q, &f, 1)   (the doorbell, port_tx_flush(), stays
 *	             with whoever drives the interface, once per batch)
 *	tx_abort  -> keep the frame for the next tx_alloc (port.h has no way to give it back)
 *
 * The interface holds at most one allocated buffer at a time and always posts or aborts it
 * before returning to its caller.
 */
#ifndef XRING_STACK_IFACE_DEV_H
#define XRING_STACK_IFACE_DEV_H

#include <stdint.h>

struct iface_txbuf {
	uint8_t *data; /* first byte of the Ethernet header */
	uint32_t cap;  /* bytes writable at data */
	uint32_t len;  /* bytes to send, set before tx_post */
	uint64_t id;   /* the device's own handle, opaque to the interface */
	/* Set by the interface at post: 0 for an ordinary frame; for a TCP frame beyond the MTU
	 * (only with iface_config.tso_max), the payload bytes per segment the device cuts it
	 * into. */
	uint16_t tso_mss;
};

struct iface_dev_ops {
	/* Fill in an empty buffer; 0, or -ENOBUFS when none is free. */
	int (*tx_alloc)(void *ctx, struct iface_txbuf *b);
	/* Hand the first b->len bytes over for sending. The device owns the buffer from now on,
	 * also when it has to drop the frame (it counts that itself). */
	void (*tx_post)(void *ctx, const struct iface_txbuf *b);
	/* Give back an allocated buffer unsent. */
	void (*tx_abort)(void *ctx, const struct iface_txbuf *b);
};

struct iface_dev {
	const struct iface_dev_ops *ops;
	void *ctx;
};

#endif
