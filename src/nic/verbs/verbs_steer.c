/* Flow steering for the verbs port: port_rule → ibv_create_flow() on the rule's queue. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

enum {
	ETH_P_IPV4 = 0x0800,
	ETH_P_ARPV = 0x0806,
	PRIO_CONN = 0,   /* 5-tuples win over ... */
	PRIO_LISTEN = 1, /* ... listeners, which win over ... */
	PRIO_HOST = 2,   /* ... a protocol to an address, any port; then ... */
	PRIO_OTHER = 3,  /* ... ARP and ICMP (they never overlap the others anyway) */
};

/* An attribute followed by its specs, laid out as ibv_create_flow() reads them. */
struct vb_flow {
	struct ibv_flow_attr attr;
	uint8_t specs[sizeof(struct ibv_flow_spec_eth) + sizeof(struct ibv_flow_spec_ipv4_ext) +
		      sizeof(struct ibv_flow_spec_tcp_udp) +
		      sizeof(struct ibv_flow_spec_action_tag)];
};

static void spec_add(struct vb_flow *fl, size_t *off, const void *spec, size_t len)
{
	memcpy((uint8_t *) fl + *off, spec, len);
	*off += len;
	fl->attr.num_of_specs++;
}

/* Build the flow for rule; returns its size. */
static size_t flow_build(const struct vb_port *vp, const struct port_rule *r, uint32_t tag,
			 struct vb_flow *fl)
{
	struct ibv_flow_spec_eth eth = {.type = IBV_FLOW_SPEC_ETH, .size = sizeof(eth)};
	struct ibv_flow_spec_ipv4_ext ip = {.type = IBV_FLOW_SPEC_IPV4_EXT, .size = sizeof(ip)};
	struct ibv_flow_spec_tcp_udp l4 = {.size = sizeof(l4)};
	struct ibv_flow_spec_action_tag at = {
		.type = IBV_FLOW_SPEC_ACTION_TAG, .size = sizeof(at), .tag_id = tag};
	size_t off = sizeof(fl->attr);

	memset(fl, 0, sizeof(*fl));
	fl->attr.type = IBV_FLOW_ATTR_NORMAL;
	fl->attr.port = vp->port_num;
	fl->attr.priority = PRIO_OTHER;
	eth.mask.ether_type = 0xffff;
	if (r->kind == PORT_RULE_ARP) {
		eth.val.ether_type = htons(ETH_P_ARPV);
		if (vp->dont_trap)
			fl->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
		spec_add(fl, &off, &eth, sizeof(eth));
		if (vp->tags)
			spec_add(fl, &off, &at, sizeof(at));
		fl->attr.size = (uint16_t) off;
		return off;
	}
	eth.val.ether_type = htons(ETH_P_IPV4);
	memcpy(eth.val.dst_mac, vp->port.mac, 6);
	memset(eth.mask.dst_mac, 0xff, 6);
	spec_add(fl, &off, &eth, sizeof(eth));
	ip.val.dst_ip = r->local_ip;
	ip.mask.dst_ip = r->local_ip ? 0xffffffff : 0;
	if (r->kind == PORT_RULE_ICMP) {
		ip.val.proto = 1;
		ip.mask.proto = 0xff;
		spec_add(fl, &off, &ip, sizeof(ip));
	} else {
		bool conn = r->remote_ip || r->remote_port;

		ip.val.proto = r->kind == PORT_RULE_TCP ? 6 : 17;
		ip.mask.proto = 0xff;
		ip.val.src_ip = r->remote_ip;
		ip.mask.src_ip = r->remote_ip ? 0xffffffff : 0;
		spec_add(fl, &off, &ip, sizeof(ip));
		l4.type = r->kind == PORT_RULE_TCP ? IBV_FLOW_SPEC_TCP : IBV_FLOW_SPEC_UDP;
		l4.val.dst_port = r->local_port;
		l4.mask.dst_port = r->local_port ? 0xffff : 0;
		l4.val.src_port = r->remote_port;
		l4.mask.src_port = r->remote_port ? 0xffff : 0;
		spec_add(fl, &off, &l4, sizeof(l4));
		fl->attr.priority = conn ? PRIO_CONN : r->local_port ? PRIO_LISTEN : PRIO_HOST;
	}
	if (vp->tags)
		spec_add(fl, &off, &at, sizeof(at));
	fl->attr.size = (uint16_t) off;
	return off;
}

int vb_steer(struct port *p, const struct port_rule *rule, uint32_t *handle)
{
	struct vb_port *vp = vbp(p);
	struct vb_flow fl;
	struct ibv_flow *flow;
	unsigned i;

	if (!rule || !handle || rule->queue >= p->nqueues || rule->kind > PORT_RULE_ICMP)
		return -EINVAL;
	/* A connection names both ends and a local port: anything less is a mistake. A rule
	 * without a local port and without a remote takes the protocol to the address. */
	if ((rule->kind == PORT_RULE_TCP || rule->kind == PORT_RULE_UDP) &&
	    (!rule->remote_ip != !rule->remote_port || (rule->remote_ip && !rule->local_port)))
		return -EINVAL;
	for (i = 0; i < vp->max_rules && vp->rules[i].flow; i++)
		;
	if (i == vp->max_rules)
		return -ENOSPC;
	flow_build(vp, rule, i + 1, &fl);
	flow = ibv_create_flow(vp->qs[rule->queue].qp, &fl.attr);
	if (!flow && (errno == EINVAL || errno == EOPNOTSUPP) && rule->kind == PORT_RULE_ARP &&
	    vp->dont_trap) {
		/* Devices that cannot replicate to the kernel still steer ARP to xring. */
		log_warn("verbs: %s: ARP cannot be shared with the kernel here (%s); taking it",
			 p->name, strerror(errno));
		vp->dont_trap = false;
		flow_build(vp, rule, i + 1, &fl);
		flow = ibv_create_flow(vp->qs[rule->queue].qp, &fl.attr);
	}
	if (!flow && (errno == EINVAL || errno == EOPNOTSUPP) && vp->tags) {
		/* Without flow tags frames carry flow 0, which port.h allows. */
		vp->tags = false;
		flow_build(vp, rule, i + 1, &fl);
		flow = ibv_create_flow(vp->qs[rule->queue].qp, &fl.attr);
		if (flow)
			log_info("verbs: %s: the device does not tag flows", p->name);
		else
			vp->tags = true;
	}
	if (!flow)
		return errno ? -errno : -EIO;
	vp->rules[i].flow = flow;
	*handle = i + 1;
	return 0;
}

int vb_unsteer(struct port *p, uint32_t handle)
{
	struct vb_port *vp = vbp(p);
	int ret;

	if (!handle || handle > vp->max_rules || !vp->rules[handle - 1].flow)
		return -ENOENT;
	ret = ibv_destroy_flow(vp->rules[handle - 1].flow);
	if (ret)
		return -ret;
	vp->rules[handle - 1].flow = NULL;
	return 0;
}

void vb_unsteer_all(struct vb_port *vp)
{
	for (unsigned i = 0; vp->rules && i < vp->max_rules; i++) {
		if (vp->rules[i].flow && ibv_destroy_flow(vp->rules[i].flow))
			log_warn("verbs: %s: ibv_destroy_flow failed", vp->port.name);
		vp->rules[i].flow = NULL;
	}
}
