/* The verbs port: device discovery, the netdev mapping, protection domain, pools, lifecycle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/port_spec.h"
#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", line);
	log_error("%s", line);
}

/* Read a short sysfs attribute into buf without its newline; false when absent. */
static bool sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

static bool dir_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* The first netdev sysfs lists under an RDMA device, for a port given as dev=. */
static bool sysfs_netdev_of(const char *sysfs, const char *ibdev, char *out, size_t len)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;
	bool found = false;

	snprintf(path, sizeof(path), "%s/class/infiniband/%s/device/net", sysfs, ibdev);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(out, len, "%.*s", (int) len - 1, d->d_name);
		found = true;
	}
	closedir(dir);
	return found;
}

/* The netdev ifindex GID 0 of a port belongs to (RoCE), or 0. */
static uint32_t gid_ifindex(struct ibv_context *ctx, uint8_t port_num)
{
	struct ibv_gid_entry e;

	if (ibv_query_gid_ex(ctx, port_num, 0, &e, 0))
		return 0;
	return e.ndev_ifindex;
}

/* A RoCE GID 0 is the link-local address made from the MAC (EUI-64): undo that. */
static bool gid_mac(struct ibv_context *ctx, uint8_t port_num, uint8_t mac[6])
{
	union ibv_gid g;

	if (ibv_query_gid(ctx, port_num, 0, &g))
		return false;
	if (g.raw[0] != 0xfe || g.raw[1] != 0x80 || g.raw[11] != 0xff || g.raw[12] != 0xfe)
		return false;
	mac[0] = g.raw[8] ^ 2;
	mac[1] = g.raw[9];
	mac[2] = g.raw[10];
	mac[3] = g.raw[13];
	mac[4] = g.raw[14];
	mac[5] = g.raw[15];
	return true;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return false;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return false;
		mac[i] = (uint8_t) v[i];
	}
	return true;
}

/*
 * Find and open the device: by name, or by the netdev it drives, first from sysfs
 * (class/infiniband/<dev>/device/net/<netdev>), then from the netdev GID 0 belongs to.
 */
static int dev_open(struct vb_port *vp, const struct port_verbs_config *c, const char *sysfs,
		    char *err, size_t errlen)
{
	const char *want = c->dev ? c->dev : c->netdev;
	uint32_t ifindex = c->netdev ? if_nametoindex(c->netdev) : 0;
	struct ibv_device **list;
	int n = 0, ret = -ENODEV;

	list = ibv_get_device_list(&n);
	if (!list || n <= 0) {
		/* NULL with ENOSYS: the kernel has no RDMA support at all. */
		errf(err, errlen, "verbs: no RDMA device found for %s %s (%s)",
		     c->dev ? "device" : "netdev", want,
		     list ? "no device present" : "no RDMA support in the kernel");
		if (list)
			ibv_free_device_list(list);
		return -ENODEV;
	}
	for (int i = 0; i < n && ret; i++) {
		const char *name = ibv_get_device_name(list[i]);
		char path[PATH_MAX];
		bool match;

		if (c->dev) {
			match = !strcmp(name, c->dev);
		} else {
			snprintf(path, sizeof(path), "%s/class/infiniband/%s/device/net/%s", sysfs,
				 name, c->netdev);
			match = dir_exists(path);
		}
		if (!match && !(ifindex && !c->dev))
			continue;
		vp->ctx = ibv_open_device(list[i]);
		if (!vp->ctx) {
			if (!match)
				continue;
			ret = -errno;
			errf(err, errlen, "verbs: ibv_open_device(%s): %s", name, strerror(errno));
			break;
		}
		if (!match && gid_ifindex(vp->ctx, vp->port_num) != ifindex) {
			ibv_close_device(vp->ctx);
			vp->ctx = NULL;
			continue;
		}
		snprintf(vp->devname, sizeof(vp->devname), "%s", name);
		ret = 0;
	}
	if (ret == -ENODEV)
		errf(err, errlen, "verbs: no RDMA device found for %s %s (%d device%s, none %s)",
		     c->dev ? "device" : "netdev", want, n, n == 1 ? "" : "s",
		     c->dev ? "has that name" : "drives it");
	ibv_free_device_list(list);
	return ret;
}

/* The netdev's primary IPv4 address and prefix, asked of the caller's network namespace. */
static void netdev_addr(struct port *p, const char *netdev)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", netdev);
	if (!ioctl(s, SIOCGIFADDR, &ifr)) {
		p->ip = ((struct sockaddr_in *) &ifr.ifr_addr)->sin_addr.s_addr;
		if (!ioctl(s, SIOCGIFNETMASK, &ifr))
			p->prefix_len = (uint8_t) __builtin_popcount(
				((struct sockaddr_in *) &ifr.ifr_netmask)->sin_addr.s_addr);
	}
	close(s);
}

/* Name, MAC, MTU and ifindex: from the netdev when there is one, else from the device. */
static void describe(struct vb_port *vp, const struct port_verbs_config *c, const char *sysfs)
{
	struct port *p = &vp->port;
	char netdev[IF_NAMESIZE] = "", path[PATH_MAX], buf[64];
	uint32_t ifx;

	if (c->netdev)
		snprintf(netdev, sizeof(netdev), "%.15s", c->netdev);
	else if (!sysfs_netdev_of(sysfs, vp->devname, netdev, sizeof(netdev)) &&
		 (ifx = gid_ifindex(vp->ctx, vp->port_num)) && !if_indextoname(ifx, netdev))
		netdev[0] = 0;
	snprintf(p->name, sizeof(p->name), "%.31s", netdev[0] ? netdev : vp->devname);
	p->mtu = 1500;
	if (netdev[0]) {
		p->ifindex = if_nametoindex(netdev);
		snprintf(path, sizeof(path), "%s/class/net/%s/address", sysfs, netdev);
		if (sysfs_read(path, buf, sizeof(buf)))
			parse_mac(buf, p->mac);
		snprintf(path, sizeof(path), "%s/class/net/%s/mtu", sysfs, netdev);
		if (sysfs_read(path, buf, sizeof(buf)) && atoi(buf) >= 68 && atoi(buf) <= 65535)
			p->mtu = (uint16_t) atoi(buf);
	}
	if (netdev[0])
		netdev_addr(p, netdev);
	if (!(p->mac[0] | p->mac[1] | p->mac[2] | p->mac[3] | p->mac[4] | p->mac[5]))
		gid_mac(vp->ctx, vp->port_num, p->mac);
	if (c->ip) {
		p->ip = c->ip;
		p->prefix_len = c->prefix_len;
	}
	if (c->mac)
		memcpy(p->mac, c->mac, 6);
	if (c->mtu)
		p->mtu = c->mtu;
	/* A frame of the port's MTU must fit one receive buffer. */
	if (p->mtu + 18u > vp->bs)
		p->mtu = (uint16_t) (vp->bs - 18);
}

static int caps(struct vb_port *vp, char *err, size_t errlen)
{
	struct ibv_device_attr_ex da;
	struct ibv_port_attr pa;
	int ret;

	ret = ibv_query_port(vp->ctx, vp->port_num, &pa);
	if (ret) {
		errf(err, errlen, "verbs: %s: ibv_query_port(%u): %s", vp->devname, vp->port_num,
		     strerror(ret));
		return -ret;
	}
	if (pa.link_layer != IBV_LINK_LAYER_ETHERNET) {
		errf(err, errlen, "verbs: %s port %u is not Ethernet (raw packet QPs need it)",
		     vp->devname, vp->port_num);
		return -EPROTONOSUPPORT;
	}
	if (pa.state != IBV_PORT_ACTIVE)
		vp->error = -ENETDOWN;
	ret = ibv_query_device_ex(vp->ctx, NULL, &da);
	if (ret) {
		errf(err, errlen, "verbs: %s: ibv_query_device_ex: %s", vp->devname, strerror(ret));
		return -ret;
	}
	if (vp->nrx > (unsigned) da.orig_attr.max_qp_wr ||
	    vp->ntx > (unsigned) da.orig_attr.max_qp_wr ||
	    vp->nrx > (unsigned) da.orig_attr.max_cqe ||
	    vp->ntx > (unsigned) da.orig_attr.max_cqe) {
		errf(err, errlen, "verbs: %s allows %d work requests and %d CQ entries per queue",
		     vp->devname, da.orig_attr.max_qp_wr, da.orig_attr.max_cqe);
		return -EINVAL;
	}
	vp->max_sge = VERBS_MAX_SGE;
	if (da.orig_attr.max_sge > 0 && (unsigned) da.orig_attr.max_sge < vp->max_sge)
		vp->max_sge = (unsigned) da.orig_attr.max_sge;
	vp->csum = (da.orig_attr.device_cap_flags & IBV_DEVICE_RAW_IP_CSUM) ||
		   (da.raw_packet_caps & IBV_RAW_PACKET_CAP_IP_CSUM);
	vp->port.caps = PORT_CAP_STEER | PORT_CAP_EXTERNAL_TX;
	if (vp->csum)
		vp->port.caps |= PORT_CAP_TX_CSUM | PORT_CAP_RX_CSUM;
	return 0;
}

static int pools(struct vb_port *vp, const struct port_verbs_config *c, char *err, size_t errlen)
{
	size_t len = (size_t) vp->port.nqueues * (vp->nrx + vp->ntx) * vp->bs;
	void *m = MAP_FAILED;

	if (c->hugepages) {
		size_t hl = (len + (2u << 20) - 1) & ~(size_t) ((2u << 20) - 1);

		m = mmap(NULL, hl, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (m != MAP_FAILED)
			len = hl;
		else
			log_info("verbs: %s: no hugepages (%s), using normal pages", vp->port.name,
				 strerror(errno));
	}
	if (m == MAP_FAILED)
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	vp->pool = m;
	vp->pool_len = len;
	/* Receives write into the pools: LOCAL_WRITE. Sends only read. */
	vp->pool_mr = ibv_reg_mr(vp->pd, m, len, IBV_ACCESS_LOCAL_WRITE);
	if (!vp->pool_mr) {
		int e = errno ? errno : ENOMEM;

		errf(err, errlen, "verbs: %s: ibv_reg_mr of %zu bytes: %s", vp->devname, len,
		     strerror(e));
		return -e;
	}
	return 0;
}

static void vb_free(struct vb_port *vp)
{
	vb_unsteer_all(vp);
	for (unsigned i = 0; vp->qs && i < vp->port.nqueues; i++)
		vb_queue_teardown(&vp->qs[i]);
	for (unsigned i = 0; i < VERBS_MAX_REGIONS; i++)
		if (vp->regions[i].mr)
			ibv_dereg_mr(vp->regions[i].mr);
	if (vp->pool_mr)
		ibv_dereg_mr(vp->pool_mr);
	if (vp->pd && ibv_dealloc_pd(vp->pd))
		log_warn("verbs: %s: ibv_dealloc_pd failed", vp->devname);
	if (vp->ctx && ibv_close_device(vp->ctx))
		log_warn("verbs: %s: ibv_close_device failed", vp->devname);
	if (vp->pool)
		munmap(vp->pool, vp->pool_len);
	free(vp->qs);
	free(vp->qptrs);
	free(vp->rules);
	free(vp);
}

static void vb_destroy(struct port *p)
{
	vb_free(vbp(p));
}

static bool pow2(unsigned v)
{
	return v && !(v & (v - 1));
}

int port_verbs_open(const struct port_verbs_config *cfg, struct port **out, char *err,
		    size_t errlen)
{
	struct port_verbs_config c = cfg ? *cfg : (struct port_verbs_config){0};
	const char *sysfs = c.sysfs ? c.sysfs : "/sys";
	struct vb_port *vp;
	int ret;

	if (err && errlen)
		err[0] = 0;
	c.port_num = c.port_num ? c.port_num : 1;
	c.nqueues = c.nqueues ? c.nqueues : 1;
	c.rx_bufs = c.rx_bufs ? c.rx_bufs : 1024;
	c.tx_bufs = c.tx_bufs ? c.tx_bufs : 1024;
	c.buf_size = c.buf_size ? c.buf_size : 2048;
	c.rx_batch = c.rx_batch ? c.rx_batch : 32;
	c.tx_signal = c.tx_signal ? c.tx_signal : 32;
	c.max_rules = c.max_rules ? c.max_rules : 1024;
	if (!out || !c.netdev == !c.dev || c.nqueues > VERBS_MAX_QUEUES || !pow2(c.rx_bufs) ||
	    !pow2(c.tx_bufs) || c.rx_bufs > (1u << 16) || c.tx_bufs > (1u << 16) ||
	    c.buf_size < 256 || c.buf_size > 65536 || c.rx_batch > c.rx_bufs ||
	    c.tx_signal > c.tx_bufs / 2 || c.max_rules > (1u << 20)) {
		errf(err, errlen,
		     "verbs: bad port config (give exactly one of netdev and dev; "
		     "buffer counts powers of two up to 65536)");
		return -EINVAL;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	vp->port.ops = &vb_ops;
	vp->port_num = c.port_num;
	vp->port.nqueues = c.nqueues;
	vp->nrx = c.rx_bufs;
	vp->ntx = c.tx_bufs;
	vp->bs = c.buf_size;
	vp->rx_batch = c.rx_batch;
	vp->tx_signal = c.tx_signal;
	vp->max_rules = c.max_rules;
	vp->dont_trap = true;
	vp->tags = true;
	ret = dev_open(vp, &c, sysfs, err, errlen);
	if (ret) {
		free(vp);
		return ret;
	}
	ret = caps(vp, err, errlen);
	if (ret)
		goto fail;
	describe(vp, &c, sysfs);
	vp->pd = ibv_alloc_pd(vp->ctx);
	if (!vp->pd) {
		ret = errno ? -errno : -ENOMEM;
		errf(err, errlen, "verbs: %s: ibv_alloc_pd: %s", vp->devname, strerror(-ret));
		goto fail;
	}
	ret = pools(vp, &c, err, errlen);
	if (ret)
		goto fail;
	if (fcntl(vp->ctx->async_fd, F_SETFL, fcntl(vp->ctx->async_fd, F_GETFL) | O_NONBLOCK)) {
		ret = -errno;
		goto fail;
	}
	vp->qs = calloc(c.nqueues, sizeof(*vp->qs));
	vp->qptrs = calloc(c.nqueues, sizeof(*vp->qptrs));
	vp->rules = calloc(c.max_rules, sizeof(*vp->rules));
	if (!vp->qs || !vp->qptrs || !vp->rules) {
		ret = -ENOMEM;
		goto fail;
	}
	vp->port.queues = vp->qptrs;
	for (unsigned i = 0; i < c.nqueues; i++) {
		vp->qs[i].epfd = -1;
		vp->qptrs[i] = &vp->qs[i].q;
	}
	for (unsigned i = 0; i < c.nqueues; i++) {
		ret = vb_queue_setup(vp, &vp->qs[i], i);
		if (ret) {
			errf(err, errlen, "verbs: %s: queue %u: %s", vp->devname, i,
			     strerror(-ret));
			goto fail;
		}
	}
	log_info("verbs: %s on %s port %u: %u queue%s, checksum offload %s", vp->port.name,
		 vp->devname, vp->port_num, c.nqueues, c.nqueues == 1 ? "" : "s",
		 vp->csum ? "on" : "off");
	*out = &vp->port;
	return 0;
fail:
	vb_free(vp);
	return ret;
}

void port_verbs_config_from_spec(const struct pspec_verbs *spec, struct port_verbs_config *cfg)
{
	*cfg = (struct port_verbs_config){
		.netdev = spec->netdev[0] ? spec->netdev : NULL,
		.dev = spec->dev[0] ? spec->dev : NULL,
		.nqueues = spec->queues,
	};
}

int port_verbs_open_spec(const char *spec, struct port **out, char *err, size_t errlen)
{
	struct port_verbs_config c;
	struct pspec ps;
	char msg[256];
	int n = pspec_parse(spec ? spec : "", &ps, 1, msg, sizeof(msg));

	if (n == 1 && ps.kind != PSPEC_VERBS) {
		snprintf(msg, sizeof(msg), "not a verbs port spec: %s", spec);
		n = -EINVAL;
	}
	if (n != 1) {
		errf(err, errlen, "verbs: %s", n == 0 ? "empty port spec" : msg);
		return -EINVAL;
	}
	port_verbs_config_from_spec(&ps.verbs, &c);
	return port_verbs_open(&c, out, err, errlen);
}

static void set_error(struct vb_port *vp, int e)
{
	int cur = __atomic_load_n(&vp->error, __ATOMIC_RELAXED);

	/* Fatal errors stay; a port-down state only goes when the link comes back. */
	while (cur != -EIO && !__atomic_compare_exchange_n(&vp->error, &cur, e, false,
							   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static bool our_qp(const struct vb_port *vp, const struct ibv_qp *qp)
{
	for (unsigned i = 0; i < vp->port.nqueues; i++)
		if (vp->qs[i].qp == qp)
			return true;
	return false;
}

int vb_read_events(struct vb_port *vp)
{
	struct ibv_async_event ev;
	int n = 0;

	while (ibv_get_async_event(vp->ctx, &ev) == 0) {
		n++;
		__atomic_add_fetch(&vp->async_events, 1, __ATOMIC_RELAXED);
		switch (ev.event_type) {
		case IBV_EVENT_PORT_ERR:
			if (ev.element.port_num == vp->port_num) {
				__atomic_add_fetch(&vp->port_down, 1, __ATOMIC_RELAXED);
				if (__atomic_load_n(&vp->error, __ATOMIC_RELAXED) == 0)
					set_error(vp, -ENETDOWN);
			}
			break;
		case IBV_EVENT_PORT_ACTIVE:
			if (ev.element.port_num == vp->port_num) {
				int down = -ENETDOWN;

				__atomic_add_fetch(&vp->port_up, 1, __ATOMIC_RELAXED);
				__atomic_compare_exchange_n(&vp->error, &down, 0, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			}
			break;
		case IBV_EVENT_DEVICE_FATAL:
			__atomic_add_fetch(&vp->fatal, 1, __ATOMIC_RELAXED);
			set_error(vp, -EIO);
			break;
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_QP_ACCESS_ERR:
			if (our_qp(vp, ev.element.qp)) {
				__atomic_add_fetch(&vp->fatal, 1, __ATOMIC_RELAXED);
				set_error(vp, -EIO);
			}
			break;
		case IBV_EVENT_CQ_ERR:
			__atomic_add_fetch(&vp->fatal, 1, __ATOMIC_RELAXED);
			set_error(vp, -EIO);
			break;
		default:
			break;
		}
		log_warn("verbs: %s (%s): async event: %s", vp->port.name, vp->devname,
			 ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
	return n;
}

int port_verbs_events(struct port *p)
{
	return vb_read_events(vbp(p));
}

int port_verbs_error(const struct port *p)
{
	const struct vb_port *vp = (const struct vb_port *) p;

	return __atomic_load_n(&vp->error, __ATOMIC_RELAXED);
}

const char *port_verbs_device(const struct port *p)
{
	return ((const struct vb_port *) p)->devname;
}

void port_verbs_stats(const struct port *p, struct port_verbs_stats *o)
{
	const struct vb_port *vp = (const struct vb_port *) p;

	*o = (struct port_verbs_stats){
		.async_events = __atomic_load_n(&vp->async_events, __ATOMIC_RELAXED),
		.port_down = __atomic_load_n(&vp->port_down, __ATOMIC_RELAXED),
		.port_up = __atomic_load_n(&vp->port_up, __ATOMIC_RELAXED),
		.fatal = __atomic_load_n(&vp->fatal, __ATOMIC_RELAXED),
	};
	for (unsigned i = 0; i < p->nqueues; i++) {
		const struct vb_queue *vq = &vp->qs[i];

		o->comp_events += vq->comp_events;
		o->doorbells += vq->doorbells;
		o->rx_posts += vq->rx_posts;
		o->signaled += vq->signaled;
		o->wc_errors += vq->wc_errors;
	}
}

static int vb_mem_register(struct port *p, void *addr, size_t len, uint32_t *key)
{
	struct vb_port *vp = vbp(p);

	if (!addr || !len || !key || (uintptr_t) addr + len < (uintptr_t) addr)
		return -EINVAL;
	for (unsigned i = 0; i < VERBS_MAX_REGIONS; i++) {
		struct vb_region *r = &vp->regions[i];

		if (r->mr)
			continue;
		/* The NIC only reads application memory: no access flags beyond local read. */
		r->mr = ibv_reg_mr(vp->pd, addr, len, 0);
		if (!r->mr)
			return errno ? -errno : -ENOMEM;
		r->addr = (uintptr_t) addr;
		r->len = len;
		*key = i + 1;
		return 0;
	}
	return -ENOSPC;
}

static int vb_mem_deregister(struct port *p, uint32_t key)
{
	struct vb_port *vp = vbp(p);
	struct vb_region *r;
	int ret;

	if (!key || key > VERBS_MAX_REGIONS || !vp->regions[key - 1].mr)
		return -ENOENT;
	/* The device may still be reading it: wait for the sends to complete first. */
	for (unsigned i = 0; i < p->nqueues; i++)
		if (vp->qs[i].region_inflight[key - 1])
			return -EBUSY;
	r = &vp->regions[key - 1];
	ret = ibv_dereg_mr(r->mr);
	if (ret)
		return -ret;
	*r = (struct vb_region){0};
	return 0;
}

const struct port_ops vb_ops = {
	.rx_poll = vb_rx_poll,
	.rx_release = vb_rx_release,
	.tx_alloc = vb_tx_alloc,
	.tx_post = vb_tx_post,
	.tx_flush = vb_tx_flush,
	.tx_reap = vb_tx_reap,
	.wait_fd = vb_wait_fd,
	.arm = vb_arm,
	.steer = vb_steer,
	.unsteer = vb_unsteer,
	.mem_register = vb_mem_register,
	.mem_deregister = vb_mem_deregister,
	.destroy = vb_destroy,
};
