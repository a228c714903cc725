#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <xring.h>

#include "conf/proc.h"
#include "nic/fault.h"
#include "nic/memif/memif.h"
#include "nic/netlink.h"
#include "nic/pcap.h"
#include "nic/portcfg.h"
#include "nic/pool_mem.h"
#include "nic/ports.h"
#include "nic/verbs/verbs_port.h"
#include "nic/xdp/xdp_port.h"
#include "util/log.h"

/* The next hop of the default route when it leaves through ifindex, else 0. */
static uint32_t default_gateway(uint32_t ifindex)
{
	struct nlk_route r;
	struct nlk *n;
	uint32_t gw = 0;

	if (nlk_open(&n))
		return 0;
	if (nlk_route_lookup(n, 0, &r) == 0 && r.ifindex == ifindex && r.prefix_len == 0)
		gw = r.gateway;
	nlk_close(n);
	return gw;
}

static unsigned pow2_up(uint64_t v, unsigned max)
{
	unsigned p = 1;

	while (p < v && p < max)
		p <<= 1;
	return p;
}

/*
 * The pools and rings XRING_RX_BUFS, XRING_TX_BUFS, XRING_BUF_SIZE and the queue depths ask for,
 * in each backend's terms (nic/portcfg.h says which applies where).
 */
static void xdp_sizes(const struct xring_conf *k, struct port_xdp_config *c)
{
	if (k->buf_size > 4096)
		log_warn("xdp:dev=%s: XRING_BUF_SIZE=%" PRIu64
			 " is above AF_XDP's 4096; using 4096",
			 c->dev, k->buf_size);
	c->frame_size = k->buf_size <= 2048 ? 2048 : 4096;
	c->rx_frames = pow2_up(k->rx_bufs, 1u << 20);
	c->tx_frames = pow2_up(k->tx_bufs, 1u << 20);
	c->rx_ring = pow2_up(k->rx_queue_depth, c->rx_frames);
	c->tx_ring = pow2_up(k->tx_queue_depth, c->tx_frames);
}

static void verbs_sizes(const struct xring_conf *k, struct port_verbs_config *c)
{
	/* One buffer per work request: the queue depth is the buffer count. */
	c->rx_bufs = pow2_up(k->rx_bufs, 1u << 16);
	c->tx_bufs = pow2_up(k->tx_bufs, 1u << 16);
	c->buf_size = (unsigned) k->buf_size;
	c->hugepages = k->hugepages != CONF_HUGE_OFF;
}

static void memif_sizes(const struct xring_conf *k, const struct pspec_memif *s,
			struct memif_config *c)
{
	uint32_t depth =
		k->rx_queue_depth > k->tx_queue_depth ? k->rx_queue_depth : k->tx_queue_depth;

	/* One buffer per ring slot; the spec's own bufsize= and ring= come first. */
	if (!s->bufsize)
		c->buf_size = k->buf_size > MEMIF_MAX_BUF ? MEMIF_MAX_BUF : (unsigned) k->buf_size;
	if (!s->ring)
		c->log2_ring = (unsigned) __builtin_ctz(pow2_up(depth, 1u << MEMIF_MAX_LOG2));
}

int portcfg_open(const struct pspec *spec, char *err, size_t errlen)
{
	const struct xring_conf *k;
	struct port *p = NULL;
	uint32_t gw = 0;
	int ret;

	ret = proc_conf(&k);
	if (ret) {
		snprintf(err, errlen, "the process's parameters are invalid");
		return ret;
	}
	pmem_freeze();
	switch (spec->kind) {
	case PSPEC_XDP: {
		struct port_xdp_config c;

		port_xdp_config_from_spec(&spec->xdp, &c);
		xdp_sizes(k, &c);
		ret = port_xdp_open(&c, &p);
		if (ret) {
			snprintf(err, errlen, "xdp:dev=%s: cannot open the port: %s", spec->xdp.dev,
				 strerror(-ret));
			return ret;
		}
		gw = default_gateway(p->ifindex);
		break;
	}
	case PSPEC_VERBS: {
		struct port_verbs_config c;

		/* The port's own message says which device it looked for and why it failed. */
		port_verbs_config_from_spec(&spec->verbs, &c);
		verbs_sizes(k, &c);
		ret = port_verbs_open(&c, &p, err, errlen);
		if (ret)
			return ret;
		gw = default_gateway(p->ifindex);
		break;
	}
	case PSPEC_MEMIF: {
		struct memif_config c;
		char path[PSPEC_PATH_LEN + 1];

		memif_config_from_spec(&spec->memif, &c, path, sizeof(path));
		memif_sizes(k, &spec->memif, &c);
		ret = memif_port_create(&c, &p);
		if (ret) {
			snprintf(err, errlen, "memif:path=%s: cannot open the port: %s", path,
				 strerror(-ret));
			return ret;
		}
		break; /* no kernel netdev: the port's own subnet is its only route */
	}
	default:
		snprintf(err, errlen, "%s ports are not part of this build of xring",
			 pspec_kind_name(spec->kind));
		return -EOPNOTSUPP;
	}
	ret = fault_wrap_env(&p);
	if (ret >= 0)
		ret = pcapw_wrap_env(&p);
	if (ret >= 0)
		ret = ports_add(p, gw, NULL);
	if (ret < 0) {
		snprintf(err, errlen, "port %s: %s", p->name, strerror(-ret));
		p->ops->destroy(p);
		return ret;
	}
	log_info("port %s: %u queue(s)", p->name, p->nqueues);
	return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct xring_conf *once_conf;
static int once_ret;

static void open_all(void)
{
	char err[256];

	for (unsigned i = 0; i < once_conf->nports; i++) {
		once_ret = portcfg_open(&once_conf->ports[i], err, sizeof(err));
		if (once_ret) {
			log_error("XRING_PORTS, port %u: %s", i + 1, err);
			return;
		}
	}
}

int portcfg_open_env(const struct xring_conf *conf)
{
	once_conf = conf;
	pthread_once(&once, open_all);
	return once_ret;
}

XRING_API int xring_port_add(const char *spec)
{
	struct pspec specs[PSPEC_MAX];
	char err[256];
	int n, ret;

	if (!spec)
		return -EINVAL;
	n = pspec_parse(spec, specs, PSPEC_MAX, err, sizeof(err));
	if (n < 0) {
		log_error("xring_port_add: %s", err);
		return n;
	}
	for (int i = 0; i < n; i++) {
		ret = portcfg_open(&specs[i], err, sizeof(err));
		if (ret) {
			log_error("xring_port_add: %s", err);
			return ret;
		}
	}
	return 0;
}
