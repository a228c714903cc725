/*
 * Capture around any port: every frame the caller receives (as rx_poll() returns it) and every
 * frame the port accepts from tx_post() is written to a pcap file (Ethernet link type,
 * nanosecond timestamps) with libpcap, so kernel-bypass traffic can be read with tshark or
 * wireshark. A chained frame is written as one record.
 *
 * The decorated port starts as a copy of the inner port's fields (name, MAC, MTU, address,
 * caps): set addresses on the outermost port, the one the stack uses.
 *
 * Where it sits decides what it sees: around a fault decorator it records what the stack sent
 * and what it was finally given; under it, what actually crossed the device.
 *
 * Writes go through stdio buffering, so there is no system call per frame; the file is complete
 * after pcapw_flush() or destroy. Queues may be driven from several threads: writes are
 * serialised by one lock per port taken once per batch (capture is a debugging aid, not a fast
 * path). Module prefix pcapw_, as libpcap owns pcap_*.
 */
#ifndef XRING_NIC_PCAP_H
#define XRING_NIC_PCAP_H

#include "nic/port.h"

/*
 * Wrap inner, writing to path (created or truncated). Timestamps come from now (ns since the
 * epoch, or any clock the reader is happy with, e.g. a simulation's virtual time), or from
 * CLOCK_REALTIME when now is NULL. On success *out owns inner (destroying it flushes, closes
 * the file and destroys inner). Returns 0, -EINVAL, -ENOMEM or -EIO (file not writable); on
 * failure inner is left as it was.
 */
int pcapw_wrap(struct port *inner, const char *path, uint64_t (*now)(void *arg), void *now_arg,
	       struct port **out);

/*
 * If XRING_PCAP is set and non-empty, wrap *p with a capture to that path and replace *p.
 * "%d" becomes the process id, "%%" a percent sign, and
 * every occurrence of "{port}" in the path is replaced by the port's name: give one when a
 * process has several ports, or they all write (and truncate) the same file. Returns 1 when
 * wrapped, 0 when XRING_PCAP is unset, or a negated errno (then *p is unchanged).
 */
int pcapw_wrap_env(struct port **p);

/* Write out everything captured so far. -EINVAL if p is not a capture port, -EIO on error. */
int pcapw_flush(struct port *p);

/* Frames written so far, received and sent. -EINVAL if p is not a capture port. */
int pcapw_get_counts(struct port *p, uint64_t *rx, uint64_t *tx);

#endif
