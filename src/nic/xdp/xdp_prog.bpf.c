/*
 * xring's XDP program: frames that match one of xring's steering rules go to the AF_XDP socket of
 * the queue they arrived on; every other frame goes on to the kernel (XDP_PASS), so the host keeps
 * using the interface as before. Rules live in a hash map that the port fills from steer() and
 * unsteer(). IPv4 only, like the stack; later IP fragments carry no ports and so always pass.
 *
 * Built with clang -O2 -g -target bpf (the BTF lets libxdp run it under its dispatcher).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdp_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xring_xsks SEC(".maps");

/* max_entries is set by the port before loading (port_xdp_config.max_rules). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct xp_key);
	__type(value, struct xp_val);
} xring_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xp_cfg);
} xring_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XP_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} xring_stats SEC(".maps");

/* The IPv4-over-Ethernet ARP body after the fixed header (RFC 826). */
struct xp_arp {
	__be16 hrd, pro;
	__u8 hln, pln;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&xring_stats, &slot);

	if (c)
		*c += 1;
}

static __always_inline struct xp_val *lookup(struct xp_key *k, __u32 shapes, __u32 shape)
{
	if (!(shapes & shape))
		return 0;
	return bpf_map_lookup_elem(&xring_rules, k);
}

static __always_inline struct xp_val *match_arp(void *l3, void *end, __u32 shapes)
{
	struct xp_arp *a = l3;
	struct xp_key k = {};
	struct xp_val *v;

	if ((void *) (a + 1) > end)
		return 0;
	if (a->hrd != bpf_htons(1) || a->pro != bpf_htons(ETH_P_IP) || a->hln != 6 || a->pln != 4)
		return 0;
	k.kind = XP_KIND_ARP;
	__builtin_memcpy(&k.local_ip, a->tpa, 4);
	v = lookup(&k, shapes, XP_SHAPE(XP_SH_ARP));
	if (!v) {
		k.local_ip = 0;
		v = lookup(&k, shapes, XP_SHAPE(XP_SH_ARP_ANY));
	}
	return v;
}

static __always_inline struct xp_val *match_ip(void *l3, void *end, __u32 shapes)
{
	struct iphdr *ip = l3;
	struct xp_key k = {};
	struct xp_val *v;
	__u16 *ports;
	__u32 hlen;

	if ((void *) (ip + 1) > end || ip->version != 4)
		return 0;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return 0;
	k.local_ip = ip->daddr;
	if (ip->protocol == IPPROTO_ICMP) {
		k.kind = XP_KIND_ICMP;
		v = lookup(&k, shapes, XP_SHAPE(XP_SH_ICMP));
		if (!v) {
			k.local_ip = 0;
			v = lookup(&k, shapes, XP_SHAPE(XP_SH_ICMP_ANY));
		}
		return v;
	}
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	if (ip->frag_off & bpf_htons(0x1fff)) /* not the first fragment: no ports to match */
		return 0;
	ports = l3 + hlen;
	if ((void *) (ports + 2) > end)
		return 0;
	k.kind = ip->protocol;
	k.remote_ip = ip->saddr;
	k.remote_port = ports[0];
	k.local_port = ports[1];
	v = lookup(&k, shapes, XP_SHAPE(XP_SH_CONN));
	if (v)
		return v;
	k.local_ip = 0;
	v = lookup(&k, shapes, XP_SHAPE(XP_SH_CONN_ANYIP));
	if (v)
		return v;
	k.local_ip = ip->daddr;
	k.remote_ip = 0;
	k.remote_port = 0;
	v = lookup(&k, shapes, XP_SHAPE(XP_SH_LISTEN));
	if (v)
		return v;
	k.local_ip = 0;
	return lookup(&k, shapes, XP_SHAPE(XP_SH_LISTEN_ANY));
}

SEC("xdp")
int xring_xdp(struct xdp_md *ctx)
{
	void *data = (void *) (long) ctx->data;
	void *end = (void *) (long) ctx->data_end;
	struct ethhdr *eth = data;
	struct xp_meta *meta;
	struct xp_cfg *cfg;
	struct xp_val *v = 0;
	__u32 zero = 0, handle;
	int act;

	cfg = bpf_map_lookup_elem(&xring_cfg, &zero);
	if (!cfg || !cfg->shapes || (void *) (eth + 1) > end)
		goto pass;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		v = match_arp(eth + 1, end, cfg->shapes);
	else if (eth->h_proto == bpf_htons(ETH_P_IP))
		v = match_ip(eth + 1, end, cfg->shapes);
	if (!v)
		goto pass;

	/* Tell user space which rule matched. Without room for metadata the frame still goes, with
	 * flow 0 ("unknown"), which port.h allows. */
	handle = v->handle;
	if (bpf_xdp_adjust_meta(ctx, -(int) sizeof(*meta)) == 0) {
		meta = (void *) (long) ctx->data_meta;
		if ((void *) (meta + 1) <= (void *) (long) ctx->data) {
			meta->flow = handle;
			meta->magic = XP_META_MAGIC;
		}
	}
	act = bpf_redirect_map(&xring_xsks, ctx->rx_queue_index, XDP_PASS);
	count(act == XDP_REDIRECT ? XP_STAT_STEERED : XP_STAT_NO_XSK);
	return act;
pass:
	count(XP_STAT_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
