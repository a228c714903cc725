/* The verbs port: opening and closing it, its pools, registered memory, counters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/port_spec.h"
#include "nic/pool_mem.h"
#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

static int pools(struct vb_port *vp, const struct port_verbs_config *c, char *err, size_t errlen)
{
	size_t len = (size_t) vp->port.nqueues *
		     ((size_t) vp->nrx * vp->bs + (size_t) vp->ntx * vp->tbs);
	void *m;
	int ret;

	/* Huge pages, the alloc hooks and the limit: nic/pool_mem.h (XRING_HUGEPAGES). */
	ret = pmem_alloc(&vp->mem, len, 0, vp->port.name);
	if (ret) {
		vb_errf(err, errlen, "verbs: %s: no memory for %zu bytes of buffers", vp->devname,
			len);
		return ret;
	}
	m = vp->mem.addr;
	len = vp->mem.size;
	vp->pool = m;
	/* Receives write into the pools: LOCAL_WRITE. Sends only read. */
	vp->pool_mr = ibv_reg_mr(vp->pd, m, len, IBV_ACCESS_LOCAL_WRITE);
	if (!vp->pool_mr) {
		int e = errno ? errno : ENOMEM;

		vb_errf(err, errlen, "verbs: %s: ibv_reg_mr of %zu bytes: %s", vp->devname, len,
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
	pmem_free(&vp->mem);
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
	    (c.tx_buf_size && (c.tx_buf_size < 256 || c.tx_buf_size > (1u << 18))) ||
	    c.tx_signal > c.tx_bufs / 2 || c.max_rules > (1u << 20)) {
		vb_errf(err, errlen,
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
	vp->tbs = c.tx_buf_size;
	vp->no_tso = c.no_tso;
	vp->rx_batch = c.rx_batch;
	vp->tx_signal = c.tx_signal;
	vp->max_rules = c.max_rules;
	vp->dont_trap = true;
	vp->tags = true;
	ret = vb_dev_open(vp, &c, sysfs, err, errlen);
	if (ret) {
		free(vp);
		return ret;
	}
	ret = vb_caps(vp, err, errlen);
	if (ret)
		goto fail;
	vb_describe(vp, &c, sysfs);
	vp->pd = ibv_alloc_pd(vp->ctx);
	if (!vp->pd) {
		ret = errno ? -errno : -ENOMEM;
		vb_errf(err, errlen, "verbs: %s: ibv_alloc_pd: %s", vp->devname, strerror(-ret));
		goto fail;
	}
	ret = pools(vp, &c, err, errlen);
	if (ret && vp->tso && !c.tx_buf_size) {
		/* TSO's 64 KiB send buffers are the bulk of the pool: without them the port still
		 * works (RLIMIT_MEMLOCK is often 8 MiB, XRING_MEM_LIMIT may be lower), one MTU per
		 * send. */
		log_warn("verbs: %s: no room for TSO send buffers (%zu bytes); TSO off",
			 vp->devname, vp->mem.size ? vp->mem.size : vp->mem.len);
		if (vp->pool_mr)
			ibv_dereg_mr(vp->pool_mr);
		pmem_free(&vp->mem);
		vp->pool = NULL;
		vp->pool_mr = NULL;
		vp->tso = false;
		vp->tbs = vp->bs;
		vp->port.caps &= ~(unsigned) PORT_CAP_TSO;
		vp->port.tso_max = 0;
		if (err && errlen)
			err[0] = 0;
		ret = pools(vp, &c, err, errlen);
	}
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
			vb_errf(err, errlen, "verbs: %s: queue %u: %s", vp->devname, i,
				strerror(-ret));
			goto fail;
		}
	}
	log_info("verbs: %s on %s port %u: %u queue%s, checksum offload %s, TSO %s", vp->port.name,
		 vp->devname, vp->port_num, c.nqueues, c.nqueues == 1 ? "" : "s",
		 vp->csum ? "on" : "off", vp->tso ? "on" : "off");
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
		vb_errf(err, errlen, "verbs: %s", n == 0 ? "empty port spec" : msg);
		return -EINVAL;
	}
	port_verbs_config_from_spec(&ps.verbs, &c);
	return port_verbs_open(&c, out, err, errlen);
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
		o->tso_sends += vq->tso_sends;
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
