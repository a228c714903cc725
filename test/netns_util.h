/*
 * Two network namespaces joined by a veth pair, for tests that need real interfaces: A holds
 * 198.18.0.1/24 on if_a, B holds 198.18.0.2/24 on if_b; B's kernel sends whole frames with
 * full checksums (ethtool -K tx off tso off gso off) unless topo_peer_offloads is set. The test
 * body runs in a forked child (so a crash or a hang cannot leave the namespaces behind) and reports
 * failures through a pipe; the parent always deletes both namespaces before judging the result.
 */
#ifndef XRING_TEST_NETNS_UTIL_H
#define XRING_TEST_NETNS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

struct topo {
	char ns_a[32], ns_b[32];
	char if_a[16], if_b[16];
	unsigned nqueues;
};

#define TOPO_IP_A "198.18.0.1"
#define TOPO_IP_B "198.18.0.2"

/* Mount a bpffs for the body, in a mount namespace of its own (default true). */
extern bool topo_bpffs;
/* Leave checksum offload, TSO and GSO on at B's veth end (default false: turned off). */
extern bool topo_peer_offloads;

/* Run body(t) in a child inside a fresh topology with nqueues queues per veth end, within
 * timeout_s seconds; skips when not root, fails the Criterion test when the body fails. */
void topo_run(unsigned nqueues, unsigned timeout_s, void (*body)(const struct topo *t));

/* In the child: move this thread into namespace ns (A or B). */
void topo_enter(const char *ns);
/* In the child: run a shell command; returns its exit status. */
int topo_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* In the child: report a failure and end the child. */
void topo_fail(const char *file, int line, const char *cond, const char *fmt, ...)
        __attribute__((format(printf, 4, 5), noreturn));

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			topo_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                     \
	} while (0)

#endif
