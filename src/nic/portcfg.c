#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <xring.h>

#include "nic/fault.h"
#include "nic/memif/memif.h"
#include "nic/netlink.h"
#include "nic/pcap.h"
#include "nic/portcfg.h"
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

int portcfg_open(const struct pspec *spec, char *err, size_t errlen)
{
	struct port *p = NULL;
	uint32_t gw = 0;
	int ret;

	switch (spec->kind) {
	case PSPEC_XDP: {
		struct port_xdp_config c;

		port_xdp_config_from_spec(&spec->xdp, &c);
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
