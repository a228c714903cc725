/*
 * Host network knowledge through libnl-route-3's cache manager. libnl keeps one cache per object
 * kind current from rtnetlink notifications; this file answers questions from those caches. Only
 * the routing table is copied out, into an array sorted so that the first match is the longest
 * prefix with the lowest metric, because walking libnl's route objects for every lookup would
 * mean one accessor call per attribute per route.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if.h> /* IFF_LOWER_UP */
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "nic/netlink.h"
#include "nic/port.h"
#include "util/log.h"

/* Entry states that hold a usable hardware address (the kernel's NUD_VALID, not in uapi). */
#define NLK_NUD_VALID                                                                              \
	(NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY)

/* One IPv4 route of the main table, as nlk_route_lookup() needs it. */
struct nlk_rt {
	uint32_t dst; /* prefix, host bits cleared */
	uint32_t mask;
	uint32_t ifindex;
	uint32_t gateway;
	uint32_t prefsrc;
	uint32_t metric;
	uint8_t prefix_len;
	uint8_t type;  /* RTN_* */
	uint8_t scope; /* RT_SCOPE_* */
};

struct nlk {
	struct nl_cache_mngr *mngr;
	struct nl_sock *sync; /* for full dumps when notifications cannot be trusted */
	struct nl_cache *links, *addrs, *routes, *neighs;
	/* The kernel removes IPv4 routes without notifying when a link goes down or an address
	 * goes away, so those events make us dump the routes again. */
	bool routes_refill;
	bool routes_dirty; /* rt[] no longer matches the route cache */
	struct nlk_rt *rt;
	unsigned nrt, rt_cap;
	uint64_t generation;
};

/* libnl has its own error space; callers get errno values. */
static int nlk_err(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case 0:
		return 0;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_PROTO_MISMATCH:
		return -EPROTO;
	case NLE_BAD_SOCK:
		return -EBADF;
	default:
		return -EIO;
	}
}

static uint32_t plen_mask(unsigned plen)
{
	return plen == 0 ? 0 : htonl(~0u << (32 - plen));
}

/* An IPv4 address out of a libnl address, 0 when it is absent or not IPv4 (default routes
 * carry a zero-length destination). */
static uint32_t addr4(struct nl_addr *a)
{
	uint32_t v = 0;

	if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4)
		memcpy(&v, nl_addr_get_binary_addr(a), 4);
	return v;
}

static void on_change(struct nl_cache *cache, struct nl_object *obj, int action, void *arg)
{
	struct nlk *n = arg;

	if (cache == n->routes)
		n->routes_dirty = true;
	else if (cache == n->links || cache == n->addrs)
		n->routes_refill = true;
	n->generation++;
}

static int rt_cmp(const void *pa, const void *pb)
{
	const struct nlk_rt *a = pa, *b = pb;

	if (a->prefix_len != b->prefix_len)
		return a->prefix_len > b->prefix_len ? -1 : 1;
	if (a->metric != b->metric)
		return a->metric < b->metric ? -1 : 1;
	return 0;
}

/* Copy one libnl route into rt[] if it takes part in IPv4 main-table lookups. */
static void rt_add_one(struct nl_object *obj, void *arg)
{
	struct nlk *n = arg;
	struct rtnl_route *r = (struct rtnl_route *) obj;
	struct rtnl_nexthop *nh;
	struct nlk_rt *e;
	unsigned type;

	if (rtnl_route_get_family(r) != AF_INET || rtnl_route_get_table(r) != RT_TABLE_MAIN ||
	    rtnl_route_get_tos(r) != 0 || (rtnl_route_get_flags(r) & RTM_F_CLONED))
		return;
	type = rtnl_route_get_type(r);
	if (type != RTN_UNICAST && type != RTN_UNREACHABLE && type != RTN_PROHIBIT &&
	    type != RTN_BLACKHOLE && type != RTN_THROW)
		return;
	nh = rtnl_route_get_nnexthops(r) > 0 ? rtnl_route_nexthop_n(r, 0) : NULL;
	if (type == RTN_UNICAST && (!nh || (rtnl_route_nh_get_flags(nh) & RTNH_F_DEAD)))
		return;
	if (n->nrt == n->rt_cap) {
		unsigned cap = n->rt_cap ? 2 * n->rt_cap : 64;
		struct nlk_rt *grown = realloc(n->rt, cap * sizeof(*grown));

		if (!grown) {
			/* Keep the routes we have; the table is rebuilt on the next change. */
			log_warn("netlink: out of memory copying routes");
			return;
		}
		n->rt = grown;
		n->rt_cap = cap;
	}
	e = &n->rt[n->nrt++];
	memset(e, 0, sizeof(*e));
	e->prefix_len = (uint8_t) nl_addr_get_prefixlen(rtnl_route_get_dst(r));
	if (e->prefix_len > 32)
		e->prefix_len = 32;
	e->mask = plen_mask(e->prefix_len);
	e->dst = addr4(rtnl_route_get_dst(r)) & e->mask;
	e->metric = rtnl_route_get_priority(r);
	e->type = (uint8_t) type;
	e->scope = rtnl_route_get_scope(r);
	e->prefsrc = addr4(rtnl_route_get_pref_src(r));
	if (nh) {
		e->ifindex = (uint32_t) rtnl_route_nh_get_ifindex(nh);
		e->gateway = addr4(rtnl_route_nh_get_gateway(nh));
	}
}

static int rt_rebuild(struct nlk *n)
{
	n->nrt = 0;
	nl_cache_foreach(n->routes, rt_add_one, n);
	qsort(n->rt, n->nrt, sizeof(*n->rt), rt_cmp);
	n->routes_dirty = false;
	return 0;
}

static int refill(struct nlk *n, struct nl_cache *c, const char *what)
{
	int err = nl_cache_refill(n->sync, c);

	if (err < 0) {
		log_warn("netlink: refilling %s failed: %s", what, nl_geterror(err));
		return nlk_err(err);
	}
	return 0;
}

int nlk_open(struct nlk **out)
{
	struct nlk *n = calloc(1, sizeof(*n));
	int err;

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->sync = nl_socket_alloc();
	if (!n->sync) {
		err = -NLE_NOMEM;
		goto fail;
	}
	err = nl_connect(n->sync, NETLINK_ROUTE);
	if (err < 0)
		goto fail;
	/* The manager allocates and subscribes its own notification socket, non-blocking. */
	err = nl_cache_mngr_alloc(NULL, NETLINK_ROUTE, 0, &n->mngr);
	if (err < 0)
		goto fail;
	err = nl_cache_mngr_add(n->mngr, "route/link", on_change, n, &n->links);
	if (err < 0)
		goto fail;
	err = nl_cache_mngr_add(n->mngr, "route/addr", on_change, n, &n->addrs);
	if (err < 0)
		goto fail;
	err = nl_cache_mngr_add(n->mngr, "route/route", on_change, n, &n->routes);
	if (err < 0)
		goto fail;
	err = nl_cache_mngr_add(n->mngr, "route/neigh", on_change, n, &n->neighs);
	if (err < 0)
		goto fail;
	rt_rebuild(n);
	*out = n;
	return 0;
fail:
	log_error("netlink: cannot open: %s", nl_geterror(err));
	nlk_close(n);
	return nlk_err(err);
}

void nlk_close(struct nlk *n)
{
	if (!n)
		return;
	/* Frees the caches it manages and its socket. */
	if (n->mngr)
		nl_cache_mngr_free(n->mngr);
	if (n->sync)
		nl_socket_free(n->sync);
	free(n->rt);
	free(n);
}

int nlk_fd(const struct nlk *n)
{
	return nl_cache_mngr_get_fd(n->mngr);
}

uint64_t nlk_generation(const struct nlk *n)
{
	return n->generation;
}

/*
 * After an overrun the socket still holds notifications older than the ones the kernel dropped;
 * applied on top of a fresh dump they would bring back stale state. So drop everything queued
 * (these are whole datagrams; nothing is parsed) before dumping.
 */
static void discard_pending(struct nlk *n)
{
	int fd = nl_cache_mngr_get_fd(n->mngr);
	char sink[4096];

	for (unsigned i = 0; i < 1u << 20; i++) {
		ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT | MSG_TRUNC);

		if (r < 0 && errno != ENOBUFS && errno != EINTR)
			break;
	}
}

static int resync(struct nlk *n)
{
	struct nl_cache *all[] = {n->links, n->addrs, n->routes, n->neighs};
	static const char *const what[] = {"links", "addresses", "routes", "neighbours"};
	int err;

	discard_pending(n);
	for (unsigned i = 0; i < 4; i++) {
		err = refill(n, all[i], what[i]);
		if (err < 0)
			return err;
	}
	n->routes_refill = false;
	n->routes_dirty = true;
	n->generation++;
	return 0;
}

int nlk_poll(struct nlk *n)
{
	int got = nl_cache_mngr_data_ready(n->mngr);
	int err;

	if (got == -NLE_AGAIN) {
		got = 0;
	} else if (got < 0) {
		/* Most likely the socket overran (ENOBUFS, which libnl calls "out of memory") and
		 * notifications were lost: only a full dump makes the caches trustworthy again. */
		log_warn("netlink: notification socket error (%s), dumping everything again",
			 nl_geterror(got));
		err = resync(n);
		if (err < 0)
			return err;
		got = 1;
	}
	if (n->routes_refill) {
		err = refill(n, n->routes, "routes");
		if (err < 0)
			return err;
		n->routes_refill = false;
		n->routes_dirty = true;
		n->generation++;
	}
	if (n->routes_dirty)
		rt_rebuild(n);
	return got;
}

static void fill_link(struct rtnl_link *l, struct nlk_link *out)
{
	struct nl_addr *mac = rtnl_link_get_addr(l);
	const char *name = rtnl_link_get_name(l);

	memset(out, 0, sizeof(*out));
	out->ifindex = (uint32_t) rtnl_link_get_ifindex(l);
	if (name)
		strncpy(out->name, name, sizeof(out->name) - 1);
	if (mac && nl_addr_get_len(mac) == 6)
		memcpy(out->mac, nl_addr_get_binary_addr(mac), 6);
	out->mtu = rtnl_link_get_mtu(l);
	out->flags = rtnl_link_get_flags(l);
	out->up = out->flags & IFF_UP;
	out->carrier = out->flags & IFF_LOWER_UP;
}

int nlk_link_by_index(struct nlk *n, uint32_t ifindex, struct nlk_link *out)
{
	struct rtnl_link *l;

	if (ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	l = rtnl_link_get(n->links, (int) ifindex);
	if (!l)
		return -ENODEV;
	fill_link(l, out);
	rtnl_link_put(l);
	return 0;
}

int nlk_link_by_name(struct nlk *n, const char *name, struct nlk_link *out)
{
	struct rtnl_link *l;

	if (!name || !*name || strlen(name) >= IF_NAMESIZE)
		return -EINVAL;
	l = rtnl_link_get_by_name(n->links, name);
	if (!l)
		return -ENODEV;
	fill_link(l, out);
	rtnl_link_put(l);
	return 0;
}

/* Calls fn for each IPv4 address (of ifindex, or all when 0) until it returns nonzero. */
static int addr_walk(struct nlk *n, uint32_t ifindex, int (*fn)(const struct nlk_addr *, void *),
		     void *arg)
{
	struct nl_object *o;

	for (o = nl_cache_get_first(n->addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *) o;
		struct nlk_addr v;
		int r;

		if (rtnl_addr_get_family(a) != AF_INET)
			continue;
		v.ifindex = (uint32_t) rtnl_addr_get_ifindex(a);
		if (ifindex && v.ifindex != ifindex)
			continue;
		v.ip = addr4(rtnl_addr_get_local(a));
		v.prefix_len = (uint8_t) rtnl_addr_get_prefixlen(a);
		v.scope = (uint8_t) rtnl_addr_get_scope(a);
		v.secondary = rtnl_addr_get_flags(a) & IFA_F_SECONDARY;
		r = fn(&v, arg);
		if (r)
			return r;
	}
	return 0;
}

struct addr_collect {
	struct nlk_addr *out;
	unsigned max, count;
	bool secondary; /* which pass */
};

static int addr_collect_one(const struct nlk_addr *a, void *arg)
{
	struct addr_collect *c = arg;

	if (a->secondary != c->secondary)
		return 0;
	if (c->count < c->max)
		c->out[c->count] = *a;
	c->count++;
	return 0;
}

int nlk_addrs(struct nlk *n, uint32_t ifindex, struct nlk_addr *out, unsigned max)
{
	struct addr_collect c = {.out = out, .max = out ? max : 0};

	addr_walk(n, ifindex, addr_collect_one, &c);
	c.secondary = true;
	addr_walk(n, ifindex, addr_collect_one, &c);
	return c.count > INT32_MAX ? INT32_MAX : (int) c.count;
}

static int addr_owner_one(const struct nlk_addr *a, void *arg)
{
	uint32_t *ip = arg;

	return a->ip == *ip ? (int) a->ifindex : 0;
}

int nlk_addr_owner(struct nlk *n, uint32_t ip)
{
	int r = addr_walk(n, 0, addr_owner_one, &ip);

	return r > 0 ? r : -ENOENT;
}

/*
 * The source address the kernel would pick for a route without a preferred source: a primary
 * address of the output link no wider in scope than the route, preferably in the same subnet as
 * the next hop; failing that, a primary address of any link with less than link scope.
 */
struct src_pick {
	uint32_t ifindex, near;
	uint8_t scope;
	bool other_links;
	uint32_t first, first_ifindex, match;
};

static int src_pick_one(const struct nlk_addr *a, void *arg)
{
	struct src_pick *p = arg;
	uint32_t mask = plen_mask(a->prefix_len);

	if (a->secondary || a->scope > p->scope)
		return 0;
	if (!p->other_links) {
		if (a->ifindex != p->ifindex)
			return 0;
		if (p->near && (a->ip & mask) == (p->near & mask)) {
			p->match = a->ip;
			return 1;
		}
		if (!p->first)
			p->first = a->ip;
		return 0;
	}
	if (a->scope >= RT_SCOPE_LINK)
		return 0;
	if (!p->first || a->ifindex < p->first_ifindex) {
		p->first = a->ip;
		p->first_ifindex = a->ifindex;
	}
	return 0;
}

static uint32_t pick_src(struct nlk *n, const struct nlk_rt *rt)
{
	struct src_pick p = {.ifindex = rt->ifindex, .near = rt->gateway, .scope = rt->scope};

	if (addr_walk(n, rt->ifindex, src_pick_one, &p))
		return p.match;
	if (p.first)
		return p.first;
	p.other_links = true;
	addr_walk(n, 0, src_pick_one, &p);
	return p.first;
}

int nlk_route_lookup(struct nlk *n, uint32_t dst, struct nlk_route *out)
{
	const struct nlk_rt *rt = NULL;

	if (n->routes_dirty)
		rt_rebuild(n);
	for (unsigned i = 0; i < n->nrt; i++) {
		if ((dst & n->rt[i].mask) == n->rt[i].dst) {
			rt = &n->rt[i];
			break;
		}
	}
	if (!rt)
		return -ENETUNREACH;
	switch (rt->type) {
	case RTN_UNICAST:
		break;
	case RTN_UNREACHABLE:
		return -EHOSTUNREACH;
	case RTN_PROHIBIT:
		return -EACCES;
	case RTN_BLACKHOLE:
		return -EINVAL;
	default: /* throw: continue in the next table, and there is none */
		return -ENETUNREACH;
	}
	out->dst = rt->dst;
	out->prefix_len = rt->prefix_len;
	out->ifindex = rt->ifindex;
	out->gateway = rt->gateway;
	out->metric = rt->metric;
	out->src = rt->prefsrc ? rt->prefsrc : pick_src(n, rt);
	return 0;
}

int nlk_neigh_lookup(struct nlk *n, uint32_t ifindex, uint32_t ip, struct nlk_neigh *out)
{
	struct nl_addr *key;
	struct rtnl_neigh *ne;
	struct nl_addr *ll;
	int state;
	int ret;

	if (ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	key = nl_addr_build(AF_INET, &ip, 4);
	if (!key)
		return -ENOMEM;
	ne = rtnl_neigh_get(n->neighs, (int) ifindex, key);
	nl_addr_put(key);
	if (!ne)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	state = rtnl_neigh_get_state(ne);
	out->state = state < 0 ? 0 : (uint16_t) state;
	ll = rtnl_neigh_get_lladdr(ne);
	if ((out->state & NLK_NUD_VALID) && ll && nl_addr_get_len(ll) == 6) {
		memcpy(out->mac, nl_addr_get_binary_addr(ll), 6);
		ret = 0;
	} else {
		ret = -EAGAIN;
	}
	rtnl_neigh_put(ne);
	return ret;
}

int nlk_port_fill(struct nlk *n, struct port *p)
{
	struct nlk_link l;
	struct nlk_addr a;
	int err;

	if (!memchr(p->name, '\0', sizeof(p->name)))
		return -EINVAL;
	err = nlk_link_by_name(n, p->name, &l);
	if (err)
		return err;
	p->ifindex = l.ifindex;
	memcpy(p->mac, l.mac, sizeof(p->mac));
	p->mtu = l.mtu > UINT16_MAX ? UINT16_MAX : (uint16_t) l.mtu;
	p->ip = 0;
	p->prefix_len = 0;
	if (nlk_addrs(n, l.ifindex, &a, 1) > 0 && !a.secondary) {
		p->ip = a.ip;
		p->prefix_len = a.prefix_len;
	}
	return 0;
}
