/*
 * Fault injection around any port: seeded drop, duplicate, reorder, corrupt and delay, each at
 * its own rate, on the frames a caller sends (TX) and/or receives (RX).
 *
 * Deterministic: the only sources of variation are the seed and the clock callback. Each queue
 * and direction draws from its own xoshiro256** stream seeded (through splitmix64) from the seed,
 * the queue index and the direction, so one queue's traffic never changes another's faults, and
 * the same calls with the same seed and the same clock readings give the same faults. The
 * decorator never reads a clock itself.
 *
 * Per frame, in this order: drop (nothing else happens); duplicate (a copy goes out right
 * after the original, or at once if the original is held); corrupt (one random bit of one
 * random byte is flipped in the original); then delay (held until now + delay_ns + a uniform
 * part of jitter_ns) or, if not delayed, reorder (held until the next frame of the same queue
 * and direction has gone through, so the two swap places, or until reorder_ns has passed).
 * Chained frames (PORT_F_MORE) pass untouched and are counted in `chained`; chains longer than
 * 32 buffers are not supported (they stay in the inner port on RX, are refused on TX).
 *
 * Held frames wait in a bounded holding area per queue and direction (`hold` frames). When it
 * is full a frame picked for delay or reorder goes through at once and `hold_full` counts it.
 * Held frames are let go, oldest due first, by any later call on the queue (rx_poll, tx_post,
 * tx_flush, tx_reap); when rx_poll or tx_reap lets TX frames go it also flushes the inner port
 * (with whatever else was posted), so a stack that only polls still sees its delayed frames
 * leave. arm() answers -EAGAIN
 * while anything is held: a waiter busy-polls until the holding area is empty.
 *
 * Buffers: RX frames held for delay or reorder keep the inner port's buffer (on a memory link,
 * the sender's), so keep `hold` well below the inner queue's buffer count. RX duplicates are copies
 * in the decorator's own pool (`hold` buffers of buf_size bytes); TX duplicates, and corrupted
 * PORT_F_EXTERNAL frames (external memory is never written), are copies in buffers taken from the
 * inner port. Dropped TX queue buffers are kept and handed out again by this decorator's
 * tx_alloc(); for that, callers must send TX queue buffers at the data address tx_alloc() gave
 * them. A dropped or copied external frame's cookie is returned by the next tx_reap(). When no
 * buffer is free a duplicate or corruption is skipped and `no_buf` counts it. No memory is
 * allocated after fault_wrap().
 *
 * The decorated port starts as a copy of the inner port's fields (name, MAC, MTU, address,
 * caps): set addresses on the outermost port, the one the stack uses.
 *
 * The decorator takes ownership of the inner port: destroying it destroys the inner port. Held
 * RX frames are given back to the inner port first; held TX frames are discarded (their cookies
 * are never returned).
 */
#ifndef XRING_NIC_FAULT_H
#define XRING_NIC_FAULT_H

#include "nic/port.h"

/* Rates in parts per million of frames: 0 never, 1000000 always. */
struct fault_rates {
	uint32_t drop, duplicate, reorder, corrupt, delay;
};

struct fault_config {
	uint64_t seed;
	struct fault_rates tx; /* frames the caller sends; all zero: TX passes straight through */
	struct fault_rates rx; /* frames the caller receives */
	uint64_t delay_ns;     /* how long a delayed frame is held ... */
	uint64_t jitter_ns;    /* ... plus a uniform random part in [0, jitter_ns] */
	uint64_t reorder_ns;   /* longest a reordered frame waits for a successor; 0: 1 ms */
	unsigned hold;         /* holding area per queue and direction; 0 means 64 */
	unsigned buf_size;     /* bytes per own RX buffer; 0 means 2048 */
	/* Current time in ns; required when a delay or reorder rate is set. */
	uint64_t (*now)(void *arg);
	void *now_arg;
};

/* What was injected in one direction, summed over queues. */
struct fault_counters {
	uint64_t frames; /* frames that faced the dice */
	uint64_t dropped, duplicated, reordered, corrupted, delayed;
	uint64_t hold_full; /* picked for delay or reorder, passed at once: holding area full */
	uint64_t no_buf;    /* picked for duplicate or corrupt (or drop), skipped: no buffer */
	uint64_t chained;   /* buffers of chained frames passed untouched */
};

/*
 * Wrap inner; on success *out is the decorated port (same name, MAC, addresses, caps) and owns
 * inner. Returns 0, -EINVAL (bad config, or delay/reorder without a clock) or -ENOMEM; on
 * failure inner is left as it was.
 */
int fault_wrap(struct port *inner, const struct fault_config *cfg, struct port **out);

/*
 * Parse a fault spec into cfg (which the caller zeroes or pre-fills), for configuration
 * strings such as XRING_FAULT. Comma-separated key=value pairs:
 *   seed=N
 *   drop= dup= reorder= corrupt= delay=   rates, both directions: "1%" or a fraction "0.01"
 *   tx-drop= rx-dup= ...                  the same for one direction
 *   latency=  jitter=  reorder-wait=      times: a number with ns, us, ms or s
 *   hold=N  bufsize=N
 * The clock is not part of the spec: set cfg->now afterwards (fault_clock_monotonic() outside
 * simulations). Returns 0, or -EINVAL with the bad pair named in err (when err is not NULL).
 */
int fault_parse(const char *spec, struct fault_config *cfg, char *err, size_t errlen);

/* CLOCK_MONOTONIC in ns, for fault_config.now when time is real. */
uint64_t fault_clock_monotonic(void *arg);

/*
 * If XRING_FAULT holds a spec, wrap *p with it (clock: fault_clock_monotonic) and replace *p.
 * Returns 1 when wrapped, 0 when XRING_FAULT is unset or empty, or a negated errno (a bad spec
 * is logged with the bad pair named; *p is then unchanged).
 */
int fault_wrap_env(struct port **p);

/* Counters of a port made by fault_wrap(); -EINVAL for any other port. Either may be NULL. */
int fault_get_counters(struct port *p, struct fault_counters *tx, struct fault_counters *rx);

/*
 * The earliest time (on the config's clock) a held frame is due to be let go, 0 when one is let
 * go already and waits for the next call, UINT64_MAX when nothing is held or p is not a port
 * made by fault_wrap(). A simulation on a virtual clock jumps to it.
 */
uint64_t fault_next_due(struct port *p);

#endif
