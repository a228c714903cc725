/*
 * Host network knowledge (nic/netlink.h) against iproute2's own answers, in a topology built in
 * network namespaces:
 *
 *   host  v1 198.18.1.1/24, 198.18.3.1/24 ── e1 198.18.1.2/24  peer1
 *         v2 198.18.2.1/24 ───────────────── e2 198.18.2.2/24  peer2
 *
 * with routes and static neighbours in host (see build()). Every answer is compared with what
 * `ip route get`, `ip neigh` and `ip link` print in the same namespace.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "netns.h"
#include "nic/netlink.h"
#include "nic/port.h"

static char host[NETNS_NAME_MAX], peer1[NETNS_NAME_MAX], peer2[NETNS_NAME_MAX];
static struct nlk *nl;

static void fini(void)
{
	nlk_close(nl);
	nl = NULL;
	netns_cleanup();
}

TestSuite(netlink, .fini = fini);

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1, "bad address %s", s);
	return a.s_addr;
}

static const char *str4(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &ip, buf, INET_ADDRSTRLEN);
}

static void parse_mac(const char *s, uint8_t mac[6])
{
	cr_assert_eq(sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
			    &mac[4], &mac[5]),
		     6, "bad MAC %s", s);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

#define IP(ns, ...) cr_assert_eq(netns_ip(ns, __VA_ARGS__), 0, "ip failed")

/* Process notifications until cond holds, for at most 5 s. */
#define WAIT_FOR(cond)                                                                             \
	({                                                                                         \
		long deadline_ = now_ms() + 5000;                                                  \
		bool ok_;                                                                          \
		while (!(ok_ = (cond)) && now_ms() < deadline_) {                                  \
			struct pollfd p_ = {.fd = nlk_fd(nl), .events = POLLIN};                   \
			poll(&p_, 1, 50);                                                          \
			cr_assert_geq(nlk_poll(nl), 0);                                            \
		}                                                                                  \
		ok_;                                                                               \
	})

static void build(void)
{
	cr_assert_eq(netns_add("host", host), 0);
	cr_assert_eq(netns_add("peer1", peer1), 0);
	cr_assert_eq(netns_add("peer2", peer2), 0);
	cr_assert_eq(netns_veth(host, "v1", peer1, "e1"), 0);
	cr_assert_eq(netns_veth(host, "v2", peer2, "e2"), 0);
	cr_assert_eq(netns_addr(host, "v1", "198.18.1.1/24"), 0);
	cr_assert_eq(netns_addr(host, "v1", "198.18.3.1/24"), 0);
	cr_assert_eq(netns_addr(host, "v2", "198.18.2.1/24"), 0);
	cr_assert_eq(netns_addr(peer1, "e1", "198.18.1.2/24"), 0);
	cr_assert_eq(netns_addr(peer2, "e2", "198.18.2.2/24"), 0);

	IP(host, "route add 198.18.10.0/24 via 198.18.1.2");
	IP(host, "route add 198.18.10.128/25 via 198.18.2.2");          /* longer prefix */
	IP(host, "route add 198.18.20.0/24 via 198.18.1.2 metric 100"); /* metric tie-break */
	IP(host, "route add 198.18.20.0/24 via 198.18.2.2 metric 50");
	IP(host, "route add 198.18.30.0/24 via 198.18.3.9"); /* source from 2nd subnet */
	IP(host, "route add 198.18.40.0/24 via 198.18.2.2 src 198.18.1.1"); /* explicit source */
	IP(host, "route add 198.18.60.0/24 dev v2"); /* on-link, no gateway */
	IP(host, "route add unreachable 198.18.70.0/24");
	IP(host, "route add blackhole 198.18.71.0/24");
	IP(host, "route add prohibit 198.18.72.0/24");
	IP(host, "route add default via 198.18.1.254");

	IP(host, "neigh add 198.18.1.50 lladdr 02:00:5e:00:01:50 dev v1 nud permanent");
	IP(host, "neigh add 198.18.2.50 lladdr 02:00:5e:00:02:50 dev v2 nud permanent");
	IP(host, "neigh add 198.18.1.51 lladdr 02:00:5e:00:01:51 dev v1 nud noarp");
}

static void open_in(const char *ns)
{
	int old = netns_enter(ns);

	cr_assert_geq(old, 0);
	cr_assert_eq(nlk_open(&nl), 0);
	cr_assert_eq(netns_leave(old), 0);
}

static uint32_t ifindex_of(const char *name)
{
	struct nlk_link l;

	cr_assert_eq(nlk_link_by_name(nl, name, &l), 0, "no link %s", name);
	return l.ifindex;
}

/* Our answer for dst must be what `ip route get dst` says in ns. */
static void route_matches_ip(const char *ns, const char *dst)
{
	char out[2048], v[64], buf[INET_ADDRSTRLEN];
	struct nlk_route r;
	struct nlk_link l;
	int st, ret;

	ret = nlk_route_lookup(nl, ip4(dst), &r);
	st = netns_sh(ns, out, sizeof(out), "ip route get %s 2>&1", dst);
	cr_assert_geq(st, 0);
	if (st != 0) {
		cr_assert_lt(ret, 0, "%s: ip says '%s' but we route it via %s", dst, out,
			     str4(r.gateway, buf));
		cr_assert(strstr(out, strerror(-ret)), "%s: ip says '%s', we say '%s'", dst, out,
			  strerror(-ret));
		return;
	}
	cr_assert_eq(ret, 0, "%s: ip routes it (%s) but we say '%s'", dst, out, strerror(-ret));
	cr_assert_eq(netns_sh(ns, out, sizeof(out), "ip -j route get %s", dst), 0);
	cr_assert_eq(netns_json_get(out, "dev", v, sizeof(v)), 0, "%s", out);
	cr_assert_eq(nlk_link_by_index(nl, r.ifindex, &l), 0);
	cr_assert_str_eq(l.name, v, "%s: output link", dst);
	if (netns_json_get(out, "gateway", v, sizeof(v)) == 0)
		cr_assert_str_eq(str4(r.gateway, buf), v, "%s: gateway", dst);
	else
		cr_assert_eq(r.gateway, 0, "%s: on-link, but we have gateway %s", dst,
			     str4(r.gateway, buf));
	cr_assert_eq(netns_json_get(out, "prefsrc", v, sizeof(v)), 0, "%s", out);
	cr_assert_str_eq(str4(r.src, buf), v, "%s: source", dst);
}

static const char *const host_dsts[] = {
	"198.18.1.2",    "198.18.1.77",   "198.18.3.5",    "198.18.2.9",  "198.18.10.5",
	"198.18.10.200", "198.18.20.1",   "198.18.30.1",   "198.18.40.1", "198.18.60.1",
	"198.18.70.1",   "198.18.71.1",   "198.18.72.1",   "198.18.99.1", "198.19.255.254",
	"198.18.10.0",   "198.18.10.127", "198.18.10.128",
};

static void all_routes_match_ip(void)
{
	for (size_t i = 0; i < sizeof(host_dsts) / sizeof(host_dsts[0]); i++)
		route_matches_ip(host, host_dsts[i]);
}

Test(netlink, routes_match_ip_route_get_for_every_kind_of_destination)
{
	struct nlk_route r;
	char buf[INET_ADDRSTRLEN];

	NETNS_REQUIRE();
	build();
	open_in(host);
	all_routes_match_ip();

	/* And the facts the table was built to exercise, stated directly. */
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.10.200"), &r), 0);
	cr_assert_eq(r.prefix_len, 25);
	cr_assert_str_eq(str4(r.gateway, buf), "198.18.2.2");
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.20.1"), &r), 0);
	cr_assert_eq(r.metric, 50);
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.30.1"), &r), 0);
	cr_assert_str_eq(str4(r.src, buf), "198.18.3.1");
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.60.1"), &r), 0);
	cr_assert_eq(r.gateway, 0);
	cr_assert_eq(r.ifindex, ifindex_of("v2"));
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.70.1"), &r), -EHOSTUNREACH);
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.99.1"), &r), 0);
	cr_assert_eq(r.prefix_len, 0);
	cr_assert_str_eq(str4(r.gateway, buf), "198.18.1.254");
}

Test(netlink, destinations_without_a_route_are_unreachable_as_ip_says)
{
	struct nlk_route r;

	NETNS_REQUIRE();
	build();
	open_in(peer1); /* only its connected route, no default */
	route_matches_ip(peer1, "198.18.1.1");
	route_matches_ip(peer1, "198.18.2.1");
	route_matches_ip(peer1, "198.19.0.1");
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.2.1"), &r), -ENETUNREACH);
}

/* Our neighbour entry for ip on dev must be what `ip -j neigh` says. */
static void neigh_matches_ip(const char *dev, const char *ip)
{
	static const struct {
		uint16_t bit;
		const char *name;
	} states[] = {
		{NUD_INCOMPLETE, "INCOMPLETE"}, {NUD_REACHABLE, "REACHABLE"},
		{NUD_STALE, "STALE"},           {NUD_DELAY, "DELAY"},
		{NUD_PROBE, "PROBE"},           {NUD_FAILED, "FAILED"},
		{NUD_NOARP, "NOARP"},           {NUD_PERMANENT, "PERMANENT"},
	};
	char out[1024], v[64];
	struct nlk_neigh ne;
	uint8_t mac[6];
	int ret = nlk_neigh_lookup(nl, ifindex_of(dev), ip4(ip), &ne);
	const char *name = "?";

	cr_assert_eq(
		netns_sh(host, out, sizeof(out), "ip -j neigh show nud all dev %s to %s", dev, ip),
		0);
	if (netns_json_get(out, "state", v, sizeof(v)) < 0) {
		cr_assert_eq(ret, -ENOENT, "%s: ip has no entry (%s), we say %d", ip, out, ret);
		return;
	}
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (ne.state == states[i].bit)
			name = states[i].name;
	cr_assert_str_eq(name, v, "%s: state", ip);
	cr_assert_eq(netns_json_get(out, "lladdr", v, sizeof(v)), 0, "%s", out);
	cr_assert_eq(ret, 0);
	parse_mac(v, mac);
	cr_assert_arr_eq(ne.mac, mac, 6, "%s: MAC", ip);
}

Test(netlink, neighbours_match_ip_neigh)
{
	NETNS_REQUIRE();
	build();
	open_in(host);
	neigh_matches_ip("v1", "198.18.1.50");
	neigh_matches_ip("v2", "198.18.2.50");
	neigh_matches_ip("v1", "198.18.1.51");
	neigh_matches_ip("v1", "198.18.1.99"); /* none */
	neigh_matches_ip("v2", "198.18.1.50"); /* on the other link */
}

static void link_matches_ip(const char *ns, const char *dev)
{
	char out[2048], v[64];
	struct nlk_link l;
	uint8_t mac[6];

	cr_assert_eq(nlk_link_by_name(nl, dev, &l), 0);
	cr_assert_eq(netns_sh(ns, out, sizeof(out), "ip -j link show dev %s", dev), 0);
	cr_assert_eq(netns_json_get(out, "ifindex", v, sizeof(v)), 0);
	cr_assert_eq(l.ifindex, strtoul(v, NULL, 10), "%s: ifindex", dev);
	cr_assert_eq(netns_json_get(out, "mtu", v, sizeof(v)), 0);
	cr_assert_eq(l.mtu, strtoul(v, NULL, 10), "%s: MTU", dev);
	cr_assert_eq(netns_json_get(out, "address", v, sizeof(v)), 0);
	parse_mac(v, mac);
	cr_assert_arr_eq(l.mac, mac, 6, "%s: MAC", dev);
	cr_assert_eq(l.up, strstr(out, "\"UP\"") != NULL, "%s: up", dev);
	cr_assert_eq(l.carrier, strstr(out, "\"LOWER_UP\"") != NULL, "%s: carrier", dev);
}

Test(netlink, links_match_ip_link_by_index_and_by_name)
{
	struct nlk_link a, b;

	NETNS_REQUIRE();
	build();
	open_in(host);
	link_matches_ip(host, "lo");
	link_matches_ip(host, "v1");
	link_matches_ip(host, "v2");
	cr_assert_eq(nlk_link_by_name(nl, "v2", &a), 0);
	cr_assert_eq(nlk_link_by_index(nl, a.ifindex, &b), 0);
	cr_assert_str_eq(b.name, "v2");
	cr_assert_eq(nlk_link_by_name(nl, "nosuch", &a), -ENODEV);
	cr_assert_eq(nlk_link_by_index(nl, 99999, &a), -ENODEV);
	cr_assert_eq(nlk_link_by_name(nl, "a-name-longer-than-ifnamsiz", &a), -EINVAL);
}

Test(netlink, addresses_are_listed_per_link_and_owners_found)
{
	struct nlk_addr a[4];
	uint32_t v1;
	int n;

	NETNS_REQUIRE();
	build();
	open_in(host);
	v1 = ifindex_of("v1");
	n = nlk_addrs(nl, v1, a, 4);
	cr_assert_eq(n, 2);
	cr_assert(a[0].ip == ip4("198.18.1.1") || a[1].ip == ip4("198.18.1.1"));
	cr_assert(a[0].ip == ip4("198.18.3.1") || a[1].ip == ip4("198.18.3.1"));
	cr_assert_eq(a[0].prefix_len, 24);
	cr_assert_eq(nlk_addrs(nl, v1, a, 1), 2, "the count is of all, not of those written");
	cr_assert_eq(nlk_addr_owner(nl, ip4("198.18.2.1")), (int) ifindex_of("v2"));
	cr_assert_eq(nlk_addr_owner(nl, ip4("127.0.0.1")), (int) ifindex_of("lo"));
	cr_assert_eq(nlk_addr_owner(nl, ip4("198.18.2.2")), -ENOENT);
}

Test(netlink, a_route_added_and_removed_after_open_is_seen)
{
	struct nlk_route r;
	uint32_t dst = ip4("198.18.80.1");
	uint64_t gen;

	NETNS_REQUIRE();
	build();
	open_in(host);
	gen = nlk_generation(nl);
	route_matches_ip(host, "198.18.80.1"); /* default route */
	IP(host, "route add 198.18.80.0/24 via 198.18.2.2");
	cr_assert(WAIT_FOR(nlk_route_lookup(nl, dst, &r) == 0 && r.prefix_len == 24),
		  "new route not seen");
	cr_assert_neq(nlk_generation(nl), gen);
	route_matches_ip(host, "198.18.80.1");
	IP(host, "route del 198.18.80.0/24");
	cr_assert(WAIT_FOR(nlk_route_lookup(nl, dst, &r) == 0 && r.prefix_len == 0),
		  "removal not seen");
	route_matches_ip(host, "198.18.80.1");
	IP(host, "route del default");
	cr_assert(WAIT_FOR(nlk_route_lookup(nl, dst, &r) == -ENETUNREACH));
	route_matches_ip(host, "198.18.80.1");
}

Test(netlink, the_fd_becomes_readable_when_something_changes)
{
	struct pollfd p;

	NETNS_REQUIRE();
	build();
	open_in(host);
	while (nlk_poll(nl) > 0)
		;
	p = (struct pollfd){.fd = nlk_fd(nl), .events = POLLIN};
	IP(host, "route add 198.18.81.0/24 via 198.18.1.2");
	cr_assert_eq(poll(&p, 1, 5000), 1);
	cr_assert_gt(nlk_poll(nl), 0);
	cr_assert_eq(nlk_poll(nl), 0, "nothing left, and no blocking");
}

Test(netlink, neighbours_added_changed_and_deleted_after_open_are_seen)
{
	struct nlk_neigh ne;
	uint32_t v2, ip = ip4("198.18.2.60");
	const uint8_t first[6] = {0x02, 0, 0x5e, 0, 0x02, 0x60};
	const uint8_t second[6] = {0x02, 0, 0x5e, 0, 0x02, 0x61};

	NETNS_REQUIRE();
	build();
	open_in(host);
	v2 = ifindex_of("v2");
	cr_assert_eq(nlk_neigh_lookup(nl, v2, ip, &ne), -ENOENT);
	IP(host, "neigh add 198.18.2.60 lladdr 02:00:5e:00:02:60 dev v2 nud permanent");
	cr_assert(WAIT_FOR(nlk_neigh_lookup(nl, v2, ip, &ne) == 0));
	cr_assert_arr_eq(ne.mac, first, 6);
	neigh_matches_ip("v2", "198.18.2.60");
	IP(host, "neigh replace 198.18.2.60 lladdr 02:00:5e:00:02:61 dev v2 nud permanent");
	cr_assert(WAIT_FOR(nlk_neigh_lookup(nl, v2, ip, &ne) == 0 && !memcmp(ne.mac, second, 6)));
	neigh_matches_ip("v2", "198.18.2.60");
	IP(host, "neigh del 198.18.2.60 dev v2");
	cr_assert(WAIT_FOR(nlk_neigh_lookup(nl, v2, ip, &ne) == -ENOENT));
}

Test(netlink, a_neighbour_the_kernel_resolves_by_arp_is_seen_with_the_peers_mac)
{
	struct nlk_neigh ne;
	char out[2048], v[64];
	uint8_t mac[6];
	uint32_t v1, ip = ip4("198.18.1.2");

	NETNS_REQUIRE();
	build();
	open_in(host);
	v1 = ifindex_of("v1");
	cr_assert_eq(nlk_neigh_lookup(nl, v1, ip, &ne), -ENOENT);
	/* One datagram makes the kernel resolve the peer. */
	cr_assert_eq(netns_sh(host, NULL, 0, "echo x | socat -u - UDP-SENDTO:198.18.1.2:9"), 0);
	cr_assert(WAIT_FOR(nlk_neigh_lookup(nl, v1, ip, &ne) == 0), "ARP result not seen");
	cr_assert_eq(netns_sh(peer1, out, sizeof(out), "ip -j link show dev e1"), 0);
	cr_assert_eq(netns_json_get(out, "address", v, sizeof(v)), 0);
	parse_mac(v, mac);
	cr_assert_arr_eq(ne.mac, mac, 6, "the peer's MAC is %s", v);
	cr_assert(ne.state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE));
}

Test(netlink, an_address_added_and_removed_after_open_is_seen_with_its_subnet_route)
{
	struct nlk_route r;
	struct nlk_addr a[4];
	uint32_t v2, dst = ip4("198.18.5.7");
	char buf[INET_ADDRSTRLEN];

	NETNS_REQUIRE();
	build();
	open_in(host);
	v2 = ifindex_of("v2");
	cr_assert_eq(nlk_addrs(nl, v2, a, 4), 1);
	IP(host, "addr add 198.18.5.1/24 dev v2");
	cr_assert(WAIT_FOR(nlk_addrs(nl, v2, a, 4) == 2));
	cr_assert_eq(nlk_addr_owner(nl, ip4("198.18.5.1")), (int) v2);
	cr_assert(WAIT_FOR(nlk_route_lookup(nl, dst, &r) == 0 && r.prefix_len == 24));
	cr_assert_eq(r.ifindex, v2);
	cr_assert_eq(r.gateway, 0);
	cr_assert_str_eq(str4(r.src, buf), "198.18.5.1");
	route_matches_ip(host, "198.18.5.7");
	IP(host, "addr del 198.18.5.1/24 dev v2");
	cr_assert(WAIT_FOR(nlk_addrs(nl, v2, a, 4) == 1));
	cr_assert(WAIT_FOR(nlk_route_lookup(nl, dst, &r) == 0 && r.prefix_len == 0));
	route_matches_ip(host, "198.18.5.7");
}

Test(netlink, a_link_going_down_and_up_is_seen_and_routes_follow_the_kernel)
{
	struct nlk_link l;
	uint32_t v2;

	NETNS_REQUIRE();
	build();
	open_in(host);
	v2 = ifindex_of("v2");
	IP(host, "link set v2 down");
	cr_assert(WAIT_FOR(nlk_link_by_index(nl, v2, &l) == 0 && !l.up));
	cr_assert(!l.carrier);
	/* The kernel drops the routes through v2 without telling anyone; we must follow. */
	all_routes_match_ip();
	IP(host, "link set v2 up");
	cr_assert(WAIT_FOR(nlk_link_by_index(nl, v2, &l) == 0 && l.up && l.carrier));
	link_matches_ip(host, "v2");
	all_routes_match_ip();
}

Test(netlink, a_link_losing_its_carrier_is_seen_and_keeps_its_routes_as_the_kernel_does)
{
	struct nlk_link l;
	uint32_t v1;

	NETNS_REQUIRE();
	build();
	open_in(host);
	v1 = ifindex_of("v1");
	IP(peer1, "link set e1 down");
	cr_assert(WAIT_FOR(nlk_link_by_index(nl, v1, &l) == 0 && l.up && !l.carrier));
	link_matches_ip(host, "v1");
	all_routes_match_ip();
	IP(peer1, "link set e1 up");
	cr_assert(WAIT_FOR(nlk_link_by_index(nl, v1, &l) == 0 && l.carrier));
	all_routes_match_ip();
}

Test(netlink, an_mtu_change_is_seen)
{
	struct nlk_link l;
	uint32_t v1;

	NETNS_REQUIRE();
	build();
	open_in(host);
	v1 = ifindex_of("v1");
	IP(host, "link set v1 mtu 1400");
	cr_assert(WAIT_FOR(nlk_link_by_index(nl, v1, &l) == 0 && l.mtu == 1400));
	link_matches_ip(host, "v1");
}

Test(netlink, removing_an_address_drops_the_routes_that_prefer_it_as_the_kernel_does)
{
	struct nlk_route r;

	NETNS_REQUIRE();
	build();
	open_in(host);
	cr_assert_eq(nlk_route_lookup(nl, ip4("198.18.40.1"), &r), 0);
	/* The kernel removes routes whose preferred source goes away, and says nothing. */
	IP(host, "addr del 198.18.1.1/24 dev v1");
	cr_assert(WAIT_FOR(nlk_addr_owner(nl, ip4("198.18.1.1")) == -ENOENT));
	all_routes_match_ip();
}

Test(netlink, a_burst_of_changes_larger_than_the_socket_buffer_is_not_lost)
{
	struct nlk_route r;
	char buf[INET_ADDRSTRLEN];

	NETNS_REQUIRE();
	build();
	open_in(host);
	/* 8192 routes at once overrun the notification socket before we read it; what was lost
	 * must come back from a fresh dump. */
	cr_assert_eq(
		netns_sh(host, NULL, 0,
			 "for i in $(seq 100 131); do for j in $(seq 0 255); do "
			 "echo route add 198.18.$i.$j/32 via 198.18.2.2; done; done | ip -batch -"),
		0);
	cr_assert(WAIT_FOR(nlk_route_lookup(nl, ip4("198.18.131.255"), &r) == 0 &&
			   r.prefix_len == 32));
	for (unsigned i = 100; i <= 131; i += 7) {
		for (unsigned j = 0; j <= 255; j += 51) {
			snprintf(buf, sizeof(buf), "198.18.%u.%u", i, j);
			cr_assert_eq(nlk_route_lookup(nl, ip4(buf), &r), 0);
			cr_assert_eq(r.prefix_len, 32, "%s", buf);
			cr_assert_eq(r.gateway, ip4("198.18.2.2"), "%s", buf);
		}
	}
	all_routes_match_ip();
}

Test(netlink, the_current_namespace_can_be_read_without_privileges)
{
	struct nlk_link lo;
	struct nlk_addr a;

	/* Reading rtnetlink needs no root, so this runs everywhere, on the host's own view. */
	cr_assert_eq(nlk_open(&nl), 0);
	cr_assert_geq(nlk_fd(nl), 0);
	cr_assert_geq(nlk_poll(nl), 0);
	cr_assert_eq(nlk_link_by_name(nl, "lo", &lo), 0);
	cr_assert(lo.flags & IFF_LOOPBACK);
	cr_assert_eq(nlk_addr_owner(nl, ip4("127.0.0.1")), (int) lo.ifindex);
	cr_assert_geq(nlk_addrs(nl, lo.ifindex, &a, 1), 1);
}

Test(netlink, a_port_on_a_kernel_link_gets_its_index_mac_mtu_and_address)
{
	struct port p = {.name = "v2"};
	struct nlk_link l;

	NETNS_REQUIRE();
	build();
	open_in(host);
	IP(host, "link set v2 mtu 1450");
	cr_assert(WAIT_FOR(nlk_link_by_name(nl, "v2", &l) == 0 && l.mtu == 1450));
	cr_assert_eq(nlk_port_fill(nl, &p), 0);
	cr_assert_eq(p.ifindex, l.ifindex);
	cr_assert_arr_eq(p.mac, l.mac, 6);
	cr_assert_eq(p.mtu, 1450);
	cr_assert_eq(p.ip, ip4("198.18.2.1"));
	cr_assert_eq(p.prefix_len, 24);
	snprintf(p.name, sizeof(p.name), "nosuch");
	cr_assert_eq(nlk_port_fill(nl, &p), -ENODEV);
}
