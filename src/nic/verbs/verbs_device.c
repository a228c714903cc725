/* Finding the RDMA device of a port, what it can do, and the netdev it drives. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

void vb_errf(char *err, size_t errlen, const char *fmt, ...)
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
int vb_dev_open(struct vb_port *vp, const struct port_verbs_config *c, const char *sysfs, char *err,
		size_t errlen)
{
	const char *want = c->dev ? c->dev : c->netdev;
	uint32_t ifindex = c->netdev ? if_nametoindex(c->netdev) : 0;
	struct ibv_device **list;
	int n = 0, ret = -ENODEV;

	list = ibv_get_device_list(&n);
	if (!list || n <= 0) {
		/* NULL with ENOSYS: the kernel has no RDMA support at all. */
		vb_errf(err, errlen, "verbs: no RDMA device found for %s %s (%s)",
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
			vb_errf(err, errlen, "verbs: ibv_open_device(%s): %s", name,
				strerror(errno));
			break;
		}
		if (!match && gid_ifindex(vp->ctx, vp->port_num) != ifindex) {
			ibv_close_device(vp->ctx);
			vp->ctx = NULL;
			continue;
		}
		snprintf(vp->devname, sizeof(vp->devname), "%s", name);
		vb_mlx5_probe(vp, list[i]);
		ret = 0;
	}
	if (ret == -ENODEV)
		vb_errf(err, errlen, "verbs: no RDMA device found for %s %s (%d device%s, none %s)",
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
void vb_describe(struct vb_port *vp, const struct port_verbs_config *c, const char *sysfs)
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

int vb_caps(struct vb_port *vp, char *err, size_t errlen)
{
	struct ibv_device_attr_ex da;
	struct ibv_port_attr pa;
	int ret;

	ret = ibv_query_port(vp->ctx, vp->port_num, &pa);
	if (ret) {
		vb_errf(err, errlen, "verbs: %s: ibv_query_port(%u): %s", vp->devname, vp->port_num,
			strerror(ret));
		return -ret;
	}
	if (pa.link_layer != IBV_LINK_LAYER_ETHERNET) {
		vb_errf(err, errlen, "verbs: %s port %u is not Ethernet (raw packet QPs need it)",
			vp->devname, vp->port_num);
		return -EPROTONOSUPPORT;
	}
	if (pa.state != IBV_PORT_ACTIVE)
		vp->error = -ENETDOWN;
	ret = ibv_query_device_ex(vp->ctx, NULL, &da);
	if (ret) {
		vb_errf(err, errlen, "verbs: %s: ibv_query_device_ex: %s", vp->devname,
			strerror(ret));
		return -ret;
	}
	if (vp->nrx > (unsigned) da.orig_attr.max_qp_wr ||
	    vp->ntx > (unsigned) da.orig_attr.max_qp_wr ||
	    vp->nrx > (unsigned) da.orig_attr.max_cqe ||
	    vp->ntx > (unsigned) da.orig_attr.max_cqe) {
		vb_errf(err, errlen,
			"verbs: %s allows %d work requests and %d CQ entries per queue",
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
	/* TSO computes every segment's checksums: a device without checksum offload has none. */
	vp->tso = !vp->no_tso && vp->csum && da.tso_caps.max_tso > 0 &&
		  (da.tso_caps.supported_qpts & (1u << IBV_QPT_RAW_PACKET));
	if (!vp->tbs)
		vp->tbs = vp->tso ? 65536 : vp->bs;
	if (vp->tso) {
		vp->port.caps |= PORT_CAP_TSO;
		vp->port.tso_max = vp->tbs < da.tso_caps.max_tso ? vp->tbs : da.tso_caps.max_tso;
	}
	return 0;
}
