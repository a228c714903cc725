/*
 * The AF_XDP port's control path: read the netdev, load and attach xring's XDP program through
 * libxdp, create one XSK per queue and keep the program's steering map in step with steer() and
 * unsteer(). The data path is in xdp_queue.c.
 */
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "nic/xdp/xdp_internal.h"
#include "util/log.h"

/* The object built from xdp_prog.bpf.c, linked in by xdp_embed.c. */
extern const unsigned char xp_bpf_obj_start[], xp_bpf_obj_end[];

struct xp_rule {
	struct xp_key key; /* kind 0: slot free */
	uint8_t shape;
};

struct xp_port {
	struct port p; /* first: the port layer's view */
	struct port_xdp_info info;
	struct bpf_object *obj;
	struct xdp_program *prog;
	enum xdp_attach_mode mode;
	int rules_fd, cfg_fd, xsks_fd, stats_fd;
	struct xp_rule *rules; /* handle h lives in rules[h - 1] */
	unsigned max_rules, next_rule;
	unsigned shape_refs[XP_NSHAPES];
	uint32_t shapes;
};

static struct xp_port *xp_of(struct port *p)
{
	return (struct xp_port *) p;
}

static bool is_pow2(unsigned v)
{
	return v && !(v & (v - 1));
}

/* --- the netdev ------------------------------------------------------------------------------ */

static int xp_ioctl(int s, unsigned long req, struct ifreq *ifr, const char *dev)
{
	snprintf(ifr->ifr_name, IFNAMSIZ, "%s", dev);
	return ioctl(s, req, ifr) < 0 ? -errno : 0;
}

/* Socket ioctls answer for the caller's network namespace, where sysfs may not. */
static int xp_read_netdev(struct xp_port *xp, const struct port_xdp_config *cfg)
{
	struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
	struct ethtool_drvinfo drv = {.cmd = ETHTOOL_GDRVINFO};
	struct port *p = &xp->p;
	struct ifreq ifr;
	uint32_t mask;
	unsigned nq = 1;
	int s, err;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	err = xp_ioctl(s, SIOCGIFINDEX, &ifr, cfg->dev);
	if (err)
		goto out;
	p->ifindex = (uint32_t) ifr.ifr_ifindex;
	err = xp_ioctl(s, SIOCGIFHWADDR, &ifr, cfg->dev);
	if (err)
		goto out;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		err = -EPROTONOSUPPORT;
		goto out;
	}
	memcpy(p->mac, ifr.ifr_hwaddr.sa_data, 6);
	err = xp_ioctl(s, SIOCGIFMTU, &ifr, cfg->dev);
	if (err)
		goto out;
	p->mtu = (uint16_t) (ifr.ifr_mtu > 65535 ? 65535 : ifr.ifr_mtu);
	if (cfg->ip) {
		p->ip = cfg->ip;
		p->prefix_len = cfg->prefix_len;
	} else if (!xp_ioctl(s, SIOCGIFADDR, &ifr, cfg->dev)) {
		p->ip = ((struct sockaddr_in *) &ifr.ifr_addr)->sin_addr.s_addr;
		if (!xp_ioctl(s, SIOCGIFNETMASK, &ifr, cfg->dev)) {
			mask = ntohl(((struct sockaddr_in *) &ifr.ifr_netmask)->sin_addr.s_addr);
			p->prefix_len = (uint8_t) __builtin_popcount(mask);
		}
	}

	/* Channels: NICs report combined queues; veth reports rx and tx counts. */
	ifr.ifr_data = (char *) &ch;
	if (!xp_ioctl(s, SIOCETHTOOL, &ifr, cfg->dev))
		nq = ch.combined_count > ch.rx_count ? ch.combined_count : ch.rx_count;
	if (!nq)
		nq = 1;
	if (cfg->nqueues && cfg->nqueues < nq)
		nq = cfg->nqueues;
	if (nq > XP_MAX_QUEUES)
		nq = XP_MAX_QUEUES;
	p->nqueues = nq;
	ifr.ifr_data = (char *) &drv;
	if (!xp_ioctl(s, SIOCETHTOOL, &ifr, cfg->dev))
		snprintf(xp->info.driver, sizeof(xp->info.driver), "%s", drv.driver);
	err = 0;
out:
	close(s);
	return err;
}

/* --- the XDP program ------------------------------------------------------------------------- */

static int xp_map_fd(struct xp_port *xp, const char *name)
{
	int fd = bpf_object__find_map_fd_by_name(xp->obj, name);

	return fd < 0 ? -ENOENT : fd;
}

static int xp_load(struct xp_port *xp, const struct port_xdp_config *cfg)
{
	DECLARE_LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "xring_xdp");
	DECLARE_LIBXDP_OPTS(xdp_program_opts, po, .prog_name = "xring_xdp");
	enum xdp_attach_mode modes[2];
	struct bpf_map *map;
	unsigned nmodes = 0, i;
	int err;

	if (cfg->bpf_obj)
		xp->obj = bpf_object__open_file(cfg->bpf_obj, NULL);
	else
		xp->obj = bpf_object__open_mem(xp_bpf_obj_start,
					       (size_t) (xp_bpf_obj_end - xp_bpf_obj_start), &oo);
	err = (int) libbpf_get_error(xp->obj);
	if (err) {
		xp->obj = NULL;
		log_error("xdp %s: cannot open the XDP object: %s", cfg->dev, strerror(-err));
		return err;
	}
	map = bpf_object__find_map_by_name(xp->obj, "xring_rules");
	if (!map)
		return -ENOENT;
	err = bpf_map__set_max_entries(map, xp->max_rules);
	if (err)
		return err;
	po.obj = xp->obj;
	xp->prog = xdp_program__create(&po);
	err = (int) libxdp_get_error(xp->prog);
	if (err) {
		xp->prog = NULL;
		return err;
	}

	if (cfg->attach != PORT_XDP_SKB)
		modes[nmodes++] = XDP_MODE_NATIVE;
	if (cfg->attach != PORT_XDP_NATIVE)
		modes[nmodes++] = XDP_MODE_SKB;
	err = -EINVAL;
	for (i = 0; i < nmodes; i++) {
		err = xdp_program__attach(xp->prog, (int) xp->p.ifindex, modes[i], 0);
		if (!err) {
			xp->mode = modes[i];
			break;
		}
		log_info("xdp %s: attach in %s mode failed: %s", cfg->dev,
			 modes[i] == XDP_MODE_NATIVE ? "driver" : "generic", strerror(-err));
	}
	if (err) {
		log_error("xdp %s: cannot attach the XDP program: %s", cfg->dev, strerror(-err));
		return err;
	}
	xp->info.attach = xp->mode == XDP_MODE_NATIVE ? PORT_XDP_NATIVE : PORT_XDP_SKB;
	xp->rules_fd = xp_map_fd(xp, "xring_rules");
	xp->cfg_fd = xp_map_fd(xp, "xring_cfg");
	xp->xsks_fd = xp_map_fd(xp, "xring_xsks");
	xp->stats_fd = xp_map_fd(xp, "xring_stats");
	if (xp->rules_fd < 0 || xp->cfg_fd < 0 || xp->xsks_fd < 0 || xp->stats_fd < 0)
		return -ENOENT;
	return 0;
}

/* --- the sockets ----------------------------------------------------------------------------- */

static void xp_queue_free(struct xp_queue *xq)
{
	if (!xq)
		return;
	if (xq->xsk)
		xsk_socket__delete(xq->xsk);
	if (xq->umem)
		xsk_umem__delete(xq->umem);
	pmem_free(&xq->mem);
	free(xq->tx_free);
	free(xq);
}

/* A failed bind leaves libxdp's UMEM half set up, so each attempt starts from nothing. */
static int xp_queue_try(struct xp_queue *xq, const struct port_xdp_config *cfg, unsigned qid,
			unsigned fsize, uint16_t bind_flags)
{
	const char *dev = cfg->dev;
	struct xsk_umem_config uc = {
		.fill_size = xq->nrx,
		.comp_size = xq->ntx,
		.frame_size = fsize,
		.frame_headroom = 0,
		.flags = 0,
	};
	struct xsk_socket_config sc = {
		.rx_size = cfg->rx_ring ? cfg->rx_ring : xq->nrx,
		.tx_size = cfg->tx_ring ? cfg->tx_ring : xq->ntx,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = bind_flags,
	};
	int err;

	xq->area_len = (size_t) (xq->nrx + xq->ntx) * fsize;
	err = pmem_alloc(&xq->mem, xq->area_len, PMEM_F_POPULATE, dev);
	if (err)
		return err;
	xq->area = xq->mem.addr;
	err = xsk_umem__create(&xq->umem, xq->area, xq->area_len, &xq->fill, &xq->comp, &uc);
	if (err) {
		xq->umem = NULL;
		goto fail;
	}
	err = xsk_socket__create(&xq->xsk, dev, qid, xq->umem, &xq->rx, &xq->tx, &sc);
	if (err) {
		xq->xsk = NULL;
		goto fail;
	}
	xq->fd = xsk_socket__fd(xq->xsk);
	return 0;
fail:
	if (xq->umem)
		xsk_umem__delete(xq->umem);
	xq->umem = NULL;
	pmem_free(&xq->mem);
	xq->area = NULL;
	return err;
}

/*
 * A socket closed a moment ago still holds its queue until a kernel work item releases its buffer
 * pool, and binding meanwhile fails with -EBUSY; so does binding a queue another process owns.
 * Wait a bounded while for the first case before reporting the second.
 */
static int xp_queue_bind(struct xp_queue *xq, const struct port_xdp_config *cfg, unsigned qid,
			 unsigned fsize, uint16_t bind_flags)
{
	unsigned i;
	int err;

	for (i = 0;; i++) {
		err = xp_queue_try(xq, cfg, qid, fsize, bind_flags);
		if (err != -EBUSY || i == 100)
			return err;
		usleep(10000);
	}
}

static int xp_queue_open(struct xp_port *xp, const struct port_xdp_config *cfg, unsigned qid,
			 bool *zc)
{
	unsigned fsize = cfg->frame_size ? cfg->frame_size : XSK_UMEM__DEFAULT_FRAME_SIZE;
	struct xp_queue *xq;
	int err = -EOPNOTSUPP;

	xq = calloc(1, sizeof(*xq));
	if (!xq)
		return -ENOMEM;
	xq->q.ops = &xp_ops;
	xq->q.port = &xp->p;
	xq->q.index = (uint16_t) qid;
	xq->shift = (unsigned) __builtin_ctz(fsize);
	xq->nrx = cfg->rx_frames ? cfg->rx_frames : 2048;
	xq->ntx = cfg->tx_frames ? cfg->tx_frames : 2048;
	xq->fd = -1;
	xq->tx_free = calloc(xq->ntx, sizeof(*xq->tx_free));
	if (!xq->tx_free) {
		free(xq);
		return -ENOMEM;
	}
	/* Zero-copy needs driver mode; once a queue has fallen back to copy, so do the rest. */
	if (*zc)
		err = xp_queue_bind(xq, cfg, qid, fsize, XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY);
	if (err && cfg->zerocopy != PORT_XDP_ZC_REQUIRED) {
		if (*zc)
			log_info("xdp %s: queue %u: no zero-copy (%s), copying", cfg->dev, qid,
				 strerror(-err));
		*zc = false;
		err = xp_queue_bind(xq, cfg, qid, fsize, XDP_USE_NEED_WAKEUP | XDP_COPY);
	}
	if (err) {
		log_error("xdp %s: queue %u: cannot create the AF_XDP socket: %s", cfg->dev, qid,
			  strerror(-err));
		xp_queue_free(xq);
		return err;
	}
	err = xsk_socket__update_xskmap(xq->xsk, xp->xsks_fd);
	if (err) {
		xp_queue_free(xq);
		return err;
	}
	if (cfg->trust_rx_csum)
		xq->rx_flags = PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK;
	xp_queue_prime(xq);
	xp->p.queues[qid] = &xq->q;
	return 0;
}

/* --- steering -------------------------------------------------------------------------------- */

static int xp_rule_key(const struct port_rule *r, struct xp_key *k, uint8_t *shape)
{
	memset(k, 0, sizeof(*k));
	k->local_ip = r->local_ip;
	switch (r->kind) {
	case PORT_RULE_TCP:
	case PORT_RULE_UDP:
		k->kind = r->kind == PORT_RULE_TCP ? XP_KIND_TCP : XP_KIND_UDP;
		if (!r->local_port || !r->remote_ip != !r->remote_port)
			return -EINVAL;
		k->local_port = r->local_port;
		k->remote_ip = r->remote_ip;
		k->remote_port = r->remote_port;
		if (r->remote_ip)
			*shape = r->local_ip ? XP_SH_CONN : XP_SH_CONN_ANYIP;
		else
			*shape = r->local_ip ? XP_SH_LISTEN : XP_SH_LISTEN_ANY;
		return 0;
	case PORT_RULE_ICMP:
	case PORT_RULE_ARP:
		if (r->remote_ip || r->local_port || r->remote_port)
			return -EINVAL;
		k->kind = r->kind == PORT_RULE_ICMP ? XP_KIND_ICMP : XP_KIND_ARP;
		if (r->kind == PORT_RULE_ICMP)
			*shape = r->local_ip ? XP_SH_ICMP : XP_SH_ICMP_ANY;
		else
			*shape = r->local_ip ? XP_SH_ARP : XP_SH_ARP_ANY;
		return 0;
	}
	return -EINVAL;
}

static int xp_shape_ref(struct xp_port *xp, unsigned shape, int delta)
{
	uint32_t shapes, zero = 0;
	struct xp_cfg c;

	xp->shape_refs[shape] += (unsigned) delta;
	shapes = xp->shapes & ~XP_SHAPE(shape);
	if (xp->shape_refs[shape])
		shapes |= XP_SHAPE(shape);
	if (shapes == xp->shapes)
		return 0;
	c.shapes = shapes;
	if (bpf_map_update_elem(xp->cfg_fd, &zero, &c, BPF_ANY))
		return -errno;
	xp->shapes = shapes;
	return 0;
}

static int xp_steer(struct port *p, const struct port_rule *rule, uint32_t *handle)
{
	struct xp_port *xp = xp_of(p);
	struct xp_key key;
	struct xp_val val;
	uint8_t shape;
	unsigned i, slot;
	int err;

	err = xp_rule_key(rule, &key, &shape);
	if (err)
		return err;
	if (rule->queue >= p->nqueues)
		return -EINVAL;
	for (i = 0; i < xp->max_rules; i++) {
		slot = (xp->next_rule + i) % xp->max_rules;
		if (!xp->rules[slot].key.kind)
			break;
	}
	if (i == xp->max_rules)
		return -ENOSPC;
	val.handle = slot + 1;
	val.queue = rule->queue;
	if (bpf_map_update_elem(xp->rules_fd, &key, &val, BPF_NOEXIST))
		return -errno;
	/* The rule is in the map before its shape is switched on, and the shape off before the
	 * rule leaves, so the program never looks for a shape that has no rules behind it. */
	err = xp_shape_ref(xp, shape, 1);
	if (err) {
		bpf_map_delete_elem(xp->rules_fd, &key);
		xp->shape_refs[shape]--;
		return err;
	}
	xp->rules[slot].key = key;
	xp->rules[slot].shape = shape;
	xp->next_rule = (slot + 1) % xp->max_rules;
	*handle = val.handle;
	return 0;
}

static int xp_unsteer(struct port *p, uint32_t handle)
{
	struct xp_port *xp = xp_of(p);
	struct xp_rule *r;
	int err;

	if (!handle || handle > xp->max_rules || !xp->rules[handle - 1].key.kind)
		return -ENOENT;
	r = &xp->rules[handle - 1];
	err = xp_shape_ref(xp, r->shape, -1);
	if (bpf_map_delete_elem(xp->rules_fd, &r->key) && !err)
		err = -errno;
	memset(r, 0, sizeof(*r));
	return err;
}

static int xp_mem_register(struct port *p, void *addr, size_t len, uint32_t *key)
{
	return -EOPNOTSUPP; /* AF_XDP sends only from the UMEM */
}

static int xp_mem_deregister(struct port *p, uint32_t key)
{
	return -ENOENT;
}

/* --- lifetime -------------------------------------------------------------------------------- */

static void xp_destroy(struct port *p)
{
	struct xp_port *xp = xp_of(p);
	unsigned i;
	int err;

	/* Sockets first: closing one removes it from the XSKMAP, so the program passes its
	 * frames to the kernel again before it is itself removed. */
	for (i = 0; p->queues && i < p->nqueues; i++)
		xp_queue_free((struct xp_queue *) p->queues[i]);
	if (xp->prog) {
		if (xp->mode) {
			err = xdp_program__detach(xp->prog, (int) p->ifindex, xp->mode, 0);
			if (err)
				log_warn("xdp %s: detaching the XDP program: %s", p->name,
					 strerror(-err));
		}
		xdp_program__close(xp->prog);
	}
	if (xp->obj)
		bpf_object__close(xp->obj);
	free(xp->rules);
	free(p->queues);
	free(xp);
}

int port_xdp_open(const struct port_xdp_config *cfg, struct port **out)
{
	unsigned fsize, rx, tx, i, room;
	struct xp_port *xp;
	bool zc;
	int err;

	if (!cfg || !cfg->dev || !out || strlen(cfg->dev) >= IFNAMSIZ)
		return -EINVAL;
	fsize = cfg->frame_size ? cfg->frame_size : XSK_UMEM__DEFAULT_FRAME_SIZE;
	rx = cfg->rx_frames ? cfg->rx_frames : 2048;
	tx = cfg->tx_frames ? cfg->tx_frames : 2048;
	if ((fsize != 2048 && fsize != 4096) || !is_pow2(rx) || !is_pow2(tx))
		return -EINVAL;
	if ((cfg->rx_ring && (!is_pow2(cfg->rx_ring) || cfg->rx_ring > rx)) ||
	    (cfg->tx_ring && (!is_pow2(cfg->tx_ring) || cfg->tx_ring > tx)))
		return -EINVAL;
	if (cfg->attach == PORT_XDP_SKB && cfg->zerocopy == PORT_XDP_ZC_REQUIRED)
		return -EINVAL;

	xp = calloc(1, sizeof(*xp));
	if (!xp)
		return -ENOMEM;
	xp->p.ops = &xp_ops;
	snprintf(xp->p.name, sizeof(xp->p.name), "xdp:%s", cfg->dev);
	xp->p.caps = PORT_CAP_STEER | (cfg->trust_rx_csum ? PORT_CAP_RX_CSUM : 0);
	xp->max_rules = cfg->max_rules ? cfg->max_rules : 4096;
	xp->rules = calloc(xp->max_rules, sizeof(*xp->rules));
	err = xp->rules ? xp_read_netdev(xp, cfg) : -ENOMEM;
	if (err) {
		log_error("xdp %s: cannot read the netdev: %s", cfg->dev, strerror(-err));
		goto fail;
	}
	/* What fits in a buffer after the kernel's XDP headroom and our metadata. */
	room = fsize - XDP_PACKET_HEADROOM - 14 - 4;
	if (xp->p.mtu > room) {
		log_warn("xdp %s: MTU %u does not fit %u-byte buffers: using %u", cfg->dev,
			 xp->p.mtu, fsize, room);
		xp->p.mtu = (uint16_t) room;
	}
	if (!strcmp(xp->info.driver, "veth"))
		log_info("xdp %s: veth: the sending kernel must not offload checksums or "
			 "segmentation (ethtool -K PEER tx off tso off gso off)",
			 cfg->dev);
	xp->p.queues = calloc(xp->p.nqueues, sizeof(*xp->p.queues));
	if (!xp->p.queues) {
		err = -ENOMEM;
		goto fail;
	}
	err = xp_load(xp, cfg);
	if (err)
		goto fail;
	zc = xp->mode == XDP_MODE_NATIVE && cfg->zerocopy != PORT_XDP_ZC_NEVER;
	if (!zc && cfg->zerocopy == PORT_XDP_ZC_REQUIRED) {
		err = -EOPNOTSUPP;
		goto fail;
	}
	for (i = 0; i < xp->p.nqueues; i++) {
		err = xp_queue_open(xp, cfg, i, &zc);
		if (err)
			goto fail;
	}
	xp->info.zerocopy = zc;
	xp->info.rx_frames = rx;
	xp->info.tx_frames = tx;
	xp->info.frame_size = fsize;
	xp->info.rx_ring = cfg->rx_ring ? cfg->rx_ring : rx;
	xp->info.tx_ring = cfg->tx_ring ? cfg->tx_ring : tx;
	log_info("xdp %s: %u queue(s), %s mode, MTU %u", cfg->dev, xp->p.nqueues,
		 port_xdp_mode_name(&xp->info), xp->p.mtu);
	*out = &xp->p;
	return 0;
fail:
	xp_destroy(&xp->p);
	return err;
}

void port_xdp_config_from_spec(const struct pspec_xdp *spec, struct port_xdp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->dev = spec->dev;
	cfg->nqueues = spec->queues;
	switch (spec->mode) {
	case PSPEC_XDP_AUTO:
		break;
	case PSPEC_XDP_SKB:
		cfg->attach = PORT_XDP_SKB;
		cfg->zerocopy = PORT_XDP_ZC_NEVER;
		break;
	case PSPEC_XDP_DRV:
		cfg->attach = PORT_XDP_NATIVE;
		break;
	case PSPEC_XDP_ZC:
		cfg->attach = PORT_XDP_NATIVE;
		cfg->zerocopy = PORT_XDP_ZC_REQUIRED;
		break;
	}
}

int port_xdp_info(const struct port *p, struct port_xdp_info *info)
{
	if (!p || p->ops != &xp_ops)
		return -EINVAL;
	*info = ((const struct xp_port *) p)->info;
	return 0;
}

const char *port_xdp_mode_name(const struct port_xdp_info *info)
{
	if (info->attach == PORT_XDP_NATIVE)
		return info->zerocopy ? "driver/zero-copy" : "driver/copy";
	return "generic/copy";
}

int port_xdp_prog_stats(const struct port *p, uint64_t *stats, unsigned n)
{
	const struct xp_port *xp = (const struct xp_port *) p;
	int ncpu = libbpf_num_possible_cpus(), c;
	uint64_t vals[512];
	uint32_t k;

	if (!p || p->ops != &xp_ops || ncpu <= 0)
		return -EINVAL;
	if (ncpu > 512)
		return -E2BIG;
	for (k = 0; k < n && k < XP_NSTATS; k++) {
		if (bpf_map_lookup_elem(xp->stats_fd, &k, vals))
			return -errno;
		stats[k] = 0;
		for (c = 0; c < ncpu; c++)
			stats[k] += vals[c];
	}
	return 0;
}

int port_xdp_sync_drops(struct port_queue *q)
{
	if (!q || q->ops != &xp_ops)
		return -EINVAL;
	return xp_sync_drops((struct xp_queue *) q);
}

const struct port_ops xp_ops = {
	.rx_poll = xp_rx_poll,
	.rx_release = xp_rx_release,
	.tx_alloc = xp_tx_alloc,
	.tx_post = xp_tx_post,
	.tx_flush = xp_tx_flush,
	.tx_reap = xp_tx_reap,
	.wait_fd = xp_wait_fd,
	.arm = xp_arm,
	.steer = xp_steer,
	.unsteer = xp_unsteer,
	.mem_register = xp_mem_register,
	.mem_deregister = xp_mem_deregister,
	.destroy = xp_destroy,
};
