/*
 * The host's network knowledge, read from the kernel through libnl-route-3: links, IPv4
 * addresses, IPv4 routes of the main table and IPv4 neighbours. libnl's cache manager keeps it
 * current from rtnetlink change notifications; nothing here parses netlink messages by hand.
 *
 * Driving it: nlk_fd() becomes readable when notifications are pending; nlk_poll() processes
 * them without blocking. The completion engine polls the fd together with its other wait fds.
 * Queries answer from the caches as of the last nlk_poll(); nlk_generation() changes whenever an
 * answer may have changed, so a caller may cache answers and revalidate them cheaply.
 *
 * A context sees the network namespace its creator thread was in at nlk_open() time (netlink
 * sockets stay bound to the namespace they were created in).
 *
 * Thread-safety: none. One owner thread opens, polls, queries and closes a context; libnl's
 * caches are not locked. Queries are not for per-packet use (they walk the caches).
 *
 * All IPv4 addresses are uint32_t in network byte order. Errors are negated errno values.
 */
#ifndef XRING_NIC_NETLINK_H
#define XRING_NIC_NETLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

struct nlk;

struct nlk_link {
	uint32_t ifindex;
	char name[IF_NAMESIZE];
	uint8_t mac[6]; /* zero when the link has no 6-byte hardware address (lo, tun) */
	uint32_t mtu;   /* IP MTU */
	unsigned flags; /* IFF_* as the kernel reports them */
	bool up;        /* administratively up (IFF_UP) */
	bool carrier;   /* lower layer up (IFF_LOWER_UP) */
};

struct nlk_addr {
	uint32_t ifindex;
	uint32_t ip;
	uint8_t prefix_len;
	uint8_t scope; /* RT_SCOPE_* */
	bool secondary;
};

struct nlk_route {
	uint32_t dst; /* the matching route's prefix */
	uint8_t prefix_len;
	uint32_t ifindex; /* output link */
	uint32_t gateway; /* next hop, 0 when the destination is on-link */
	uint32_t src;     /* preferred source address, 0 when the host has none to offer */
	uint32_t metric;
};

struct nlk_neigh {
	uint8_t mac[6];
	uint16_t state; /* NUD_* */
};

/* Open a context on the calling thread's network namespace and fill its caches. */
int nlk_open(struct nlk **out);
void nlk_close(struct nlk *n);

/* Readable when change notifications are pending. */
int nlk_fd(const struct nlk *n);

/*
 * Process pending change notifications without blocking. Returns how many were processed (0
 * when none), or a negated errno. When the kernel dropped notifications (socket overrun), the
 * caches are refilled from a fresh dump instead, so the context never stays out of date.
 */
int nlk_poll(struct nlk *n);

/* Increments whenever any cached answer may have changed. */
uint64_t nlk_generation(const struct nlk *n);

int nlk_link_by_index(struct nlk *n, uint32_t ifindex, struct nlk_link *out);
int nlk_link_by_name(struct nlk *n, const char *name, struct nlk_link *out);

/*
 * IPv4 addresses of one link (ifindex 0: of every link). Writes up to max of them, primaries
 * before secondaries, and returns how many exist (which may be more than max).
 */
int nlk_addrs(struct nlk *n, uint32_t ifindex, struct nlk_addr *out, unsigned max);

/* The link that owns the local address ip: its ifindex, or -ENOENT. */
int nlk_addr_owner(struct nlk *n, uint32_t ip);

/*
 * Longest-prefix match of dst in the main routing table; among routes of equal prefix the lowest
 * metric wins; routes with a dead next hop or a TOS are skipped. A multipath route answers with
 * its first next hop. Errors as the kernel gives them for the same lookup: -ENETUNREACH when no
 * route matches, -EHOSTUNREACH for an "unreachable" route, -EACCES for "prohibit", -EINVAL for
 * "blackhole". Local destinations (the local table) are not considered: see nlk_addr_owner().
 */
int nlk_route_lookup(struct nlk *n, uint32_t dst, struct nlk_route *out);

/*
 * The neighbour entry of ip on ifindex. Returns 0 when it holds a usable hardware address
 * (NUD_VALID states), -EAGAIN when the entry exists without one (incomplete or failed; state
 * is still written), -ENOENT when there is no entry.
 */
int nlk_neigh_lookup(struct nlk *n, uint32_t ifindex, uint32_t ip, struct nlk_neigh *out);

/*
 * Fill a port's ifindex, MAC, MTU and IPv4 address (the link's first primary address, 0 when it
 * has none) from the kernel link named p->name; for backends on a Linux netdev (AF_XDP, verbs).
 */
struct port;
int nlk_port_fill(struct nlk *n, struct port *p);

#endif
