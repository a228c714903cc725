/*
 * Test hosts: network namespaces joined by veth pairs, for tests and benchmarks that need real
 * links (netlink, AF_XDP, interop with the kernel's stack). The library (xring_netns_core, in
 * tools/CMakeLists.txt) does not depend on Criterion; the tests link xring_netns, which adds the
 * Criterion report hook that sweeps leftovers after a run (test/support/netns_hook.c). Only
 * NETNS_REQUIRE() below is for Criterion test bodies. Everything is done by running iproute2's `ip`
 * (fork/exec), the same commands a person would type, so a failing setup can be replayed by hand.
 *
 * Addresses: only 198.18.0.0/15 (plus loopback). Every command line given to netns_ip(),
 * netns_sh() and netns_spawn() is scanned for IPv4 literals and refused (-EINVAL) if one falls
 * outside those ranges.
 *
 * Cleanup: namespaces are named "xrt<pid>-<tag>" after the creating process. They are deleted by
 * netns_cleanup() (call it in the test's .fini), by an atexit handler of the creating process,
 * and, for processes that crashed, by netns_sweep(), which deletes namespaces of our prefix
 * whose owner process is gone; it runs before the first namespace of a process is created and
 * again after the last test of a Criterion run (a report hook in netns_hook.c). Namespaces of live
 * processes, such as concurrently running test programs, are never touched. Deleting a namespace
 * destroys the veth ends inside it, and with them their peers.
 *
 * Not thread-safe: call from the test's main thread (netns_thread_run() runs fn elsewhere).
 *
 * Use (link the test with LIBS xring_netns in test/CMakeLists.txt):
 *
 *	TestSuite(xdp, .fini = netns_cleanup);
 *
 *	Test(xdp, frames_from_the_peer_arrive)
 *	{
 *		struct netns_pair p;
 *		char out[256];
 *
 *		NETNS_REQUIRE();
 *		cr_assert_eq(netns_pair(&p, "xdp", "198.18.0.1/24", "198.18.0.2/24"), 0);
 *		netns_sh(p.b, NULL, 0, "ethtool -K veth0 tx off tso off gso off");
 *		pid_t peer = netns_spawn(p.b, "exec socat -u UDP-RECV:9000 -");
 *		int old = netns_enter(p.a);	// sockets/ports made now live in p.a
 *		... open the port on NETNS_PAIR_IF ...
 *		netns_leave(old);
 *		cr_assert_eq(netns_sh(p.a, out, sizeof(out), "ip -j neigh"), 0);
 *		netns_stop(peer);
 *	}
 */
#ifndef XRING_TEST_NETNS_H
#define XRING_TEST_NETNS_H

#include <stddef.h>
#include <sys/types.h>

#define NETNS_NAME_MAX 48
#define NETNS_PREFIX   "xrt"

/* NULL when namespaces can be made here, else why not (not root, no `ip`). */
const char *netns_unusable(void);

/* In a Criterion test body: skip with the reason when namespaces cannot be made. */
#define NETNS_REQUIRE()                                                                            \
	do {                                                                                       \
		const char *why_ = netns_unusable();                                               \
		if (why_)                                                                          \
			cr_skip_test("%s", why_);                                                  \
	} while (0)

/* Create namespace "xrt<pid>-<tag>" with lo up; its full name goes to name. */
int netns_add(const char *tag, char name[NETNS_NAME_MAX]);
int netns_del(const char *name);
/* Stop spawned processes and delete every namespace this process created. Idempotent. */
void netns_cleanup(void);
/* Delete namespaces of our prefix whose owner process no longer exists. Returns how many. */
int netns_sweep(void);

/* A veth pair: if_a in ns_a, if_b in ns_b, both up. */
int netns_veth(const char *ns_a, const char *if_a, const char *ns_b, const char *if_b);
/* Add cidr ("198.18.1.1/24") to ifname in ns. */
int netns_addr(const char *ns, const char *ifname, const char *cidr);

/* Two namespaces "<tag>a" and "<tag>b", joined by a veth pair named NETNS_PAIR_IF in both,
 * addressed cidr_a / cidr_b (either may be NULL), all links up. */
#define NETNS_PAIR_IF "veth0"
struct netns_pair {
	char a[NETNS_NAME_MAX];
	char b[NETNS_NAME_MAX];
};
int netns_pair(struct netns_pair *p, const char *tag, const char *cidr_a, const char *cidr_b);

/*
 * Run `ip -n <ns> <args>`, args split at blanks (no quoting), e.g.
 * netns_ip(ns, "route add 198.18.9.0/24 via %s", gw). Returns 0, or -EIO when ip failed (its
 * message is on stderr), or another negated errno.
 */
int netns_ip(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Run a shell command line inside ns (`ip netns exec <ns> sh -c <cmd>`), waiting at most 20 s.
 * Its stdout goes to out (NUL-terminated, truncated to outlen; out may be NULL); stderr is
 * inherited. Returns the command's exit status (0-255), or a negated errno (-ETIMEDOUT when it
 * had to be killed).
 */
int netns_sh(const char *ns, char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Start a shell command line inside ns in the background (a peer: socat, iperf3, python3).
 * Returns its pid; netns_cleanup() kills it if netns_stop() did not. */
pid_t netns_spawn(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* SIGTERM (SIGKILL after 5 s) and reap a process netns_spawn() started; returns its exit status,
 * 128 + signal when killed, or a negated errno (-ESRCH for a pid it did not start). */
int netns_stop(pid_t pid);
/* Wait at most timeout_ms for a spawned process to end by itself (SIGKILL after that); returns
 * as netns_stop(). */
int netns_wait(pid_t pid, int timeout_ms);

/* Move the calling thread into ns. Returns an fd of the namespace it was in, for netns_leave().
 * Sockets created meanwhile stay in ns after leaving. */
int netns_enter(const char *ns);
int netns_leave(int old_fd);

/* Run fn(arg) in a forked child inside ns (at most 60 s). Returns fn's result & 0xff, or a
 * negated errno (-ECANCELED when the child died by a signal). */
int netns_fork_run(const char *ns, int (*fn)(void *), void *arg);
/* Run fn(arg) in a new thread inside ns, sharing this process's memory. Returns fn's result
 * (so fn should return >= 0), or a negated errno when the thread could not enter ns. */
int netns_thread_run(const char *ns, int (*fn)(void *), void *arg);

/*
 * Tiny JSON helper for `ip -j` output: the value of the first "key" at or after s, a string
 * (unquoted) or a bare number/word, into out. Returns 0, or -ENOENT. Enough for the flat
 * objects `ip -j route get`, `ip -j neigh` and `ip -j link` print; not a JSON parser.
 */
int netns_json_get(const char *s, const char *key, char *out, size_t outlen);

#endif
