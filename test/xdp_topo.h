/*
 * The AF_XDP tests' topology, built with the shared test hosts (tools/netns/netns.h): namespaces A
 * and B joined by a veth pair (NETNS_PAIR_IF in both, nqueues queues each way), A holding
 * 198.18.0.1/24, B 198.18.0.2/24; B's kernel sends whole frames with full checksums (ethtool -K
 * tx off tso off gso off) unless topo_peer_offloads is set. The test body runs in a forked child
 * with a bpffs of its own, so a crash or a hang cannot take the test runner with it; it reports
 * failures through a pipe, and the parent deletes both namespaces before judging the result.
 */
#ifndef XRING_TEST_XDP_TOPO_H
#define XRING_TEST_XDP_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#include "netns.h"

struct topo {
	char ns_a[NETNS_NAME_MAX], ns_b[NETNS_NAME_MAX];
	const char *if_a, *if_b;
	unsigned nqueues;
};

#define TOPO_IP_A "198.18.0.1"
#define TOPO_IP_B "198.18.0.2"

/* Leave checksum offload, TSO and GSO on at B's veth end (default false: turned off). */
extern bool topo_peer_offloads;

/* Run body(t) in a child inside a fresh topology with nqueues queues per veth end, within
 * timeout_s seconds; skips when namespaces cannot be made, fails the Criterion test when the
 * body fails. */
void topo_run(unsigned nqueues, unsigned timeout_s, void (*body)(const struct topo *t));

/* In the child: move this thread into namespace ns (A or B). */
void topo_enter(const char *ns);
/* In the child: report a failure and end the child. */
void topo_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			topo_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                     \
	} while (0)

#endif
