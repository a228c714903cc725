#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "conf/proc.h"
#include "ops/netport.h"
#include "ops/xsock.h"
#include "stats/stats.h"
#include "util/log.h"

static void flush(struct netport *np);

static int dev_tx_alloc(void *arg, struct iface_txbuf *b)
{
	struct netport *np = arg;
	struct port_frame f;

	if (np->has_spare) {
		f = np->spare;
		np->has_spare = false;
	} else if (port_tx_alloc(np->q, &f, 1) != 1) {
		/* Reclaim finished sends and try once more before giving up. */
		port_tx_reap(np->q, NULL, 0);
		if (port_tx_alloc(np->q, &f, 1) != 1)
			return -ENOBUFS;
	}
	b->data = f.data;
	b->cap = f.len;
	b->len = 0;
	b->id = f.buf;
	return 0;
}

static void dev_tx_post(void *arg, const struct iface_txbuf *b)
{
	struct netport *np = arg;
	struct port_frame f = {.data = b->data, .len = b->len, .buf = (uint32_t) b->id};
	int ok;

	if (b->tso_mss) {
		/* TCP beyond the MTU (iface tso_max): the device cuts it, checksums each piece. */
		f.flags = PORT_F_TX_TSO | PORT_F_TX_IP_CSUM | PORT_F_TX_L4_CSUM;
		f.tso_mss = b->tso_mss;
		f.l4_off = ETH_HLEN + IP4_HLEN;
	}
	ok = port_tx_post(np->q, &f, 1);
	if (ok != 1 && np->unflushed) {
		/* The send ring is full (XRING_TX_QUEUE_DEPTH below the buffers): ring the
		 * doorbell so the device drains it, then try once more. */
		flush(np);
		ok = port_tx_post(np->q, &f, 1);
	}
	if (ok == 1) {
		np->unflushed++;
		return;
	}
	/* Refused (the port is down, or full): the buffer is still ours, keep it for the next
	 * frame rather than lose it. */
	np->q->stats.tx_drops++;
	if (!np->has_spare) {
		np->spare = (struct port_frame){.data = b->data, .len = b->cap, .buf = f.buf};
		np->has_spare = true;
	}
}

static void dev_tx_abort(void *arg, const struct iface_txbuf *b)
{
	struct netport *np = arg;

	np->spare = (struct port_frame){.data = b->data, .len = b->cap, .buf = (uint32_t) b->id};
	np->has_spare = true;
}

static const struct iface_dev_ops dev_ops = {
	.tx_alloc = dev_tx_alloc,
	.tx_post = dev_tx_post,
	.tx_abort = dev_tx_abort,
};

static struct netport *np_of(struct xring_source *src)
{
	return (struct netport *) ((char *) src - offsetof(struct netport, src));
}

static void flush(struct netport *np)
{
	/* The batch's sends leave now, before the doorbell (tcp_set_defer). */
	if (np->tcp.npush) {
		tcp_push_flush(&np->tcp, clock_mono_ns());
		np->next_timer = 0; /* the output may have armed a timer: look again */
	}
	if (np->unflushed) {
		port_tx_flush(np->q);
		np->unflushed = 0;
	}
}

/*
 * One piece of a chained frame (a peer that puts jumbo frames in small buffers): copied into
 * np->rx_gather, since the stack parses flat frames. A chain may straddle two polls. true when
 * the piece completed a frame that fits the MTU; it is then in rx_gather, rx_glen bytes.
 */
static bool rx_piece(struct netport *np, const struct port_frame *f)
{
	size_t cap = ETH_HLEN + (size_t) np->ifc.mtu;
	bool ok;

	np->rx_in_chain = true;
	if (!np->rx_gather || f->len > cap - np->rx_glen)
		np->rx_gbad = true;
	else if (!np->rx_gbad)
		memcpy(np->rx_gather + np->rx_glen, f->data, f->len);
	np->rx_glen += f->len;
	if (f->flags & PORT_F_MORE)
		return false;
	ok = !np->rx_gbad;
	if (!ok) {
		np->rx_chained_drops++;
		np->rx_glen = 0;
	}
	np->rx_in_chain = np->rx_gbad = false;
	return ok;
}

_Static_assert(NETPORT_HOLD <= TCP_HELD_MAX && NETPORT_HOLD < 32,
	       "kept frames: ids the stack knows, and a bit each in held_mask");

/* The stack is done with a frame it kept (tcp_hold.c). */
static void np_unhold(void *ctx, uint32_t id)
{
	struct netport *np = ctx;

	np->held_mask &= ~(1u << id);
	port_rx_release(np->q, &np->held[id], 1);
}

static uint32_t hold_slot(const struct netport *np)
{
	if (!np->hold_ok || np->held_mask == (1u << NETPORT_HOLD) - 1)
		return TCP_NO_FRAME;
	return (uint32_t) __builtin_ctz(~np->held_mask);
}

/*
 * Kept frames live from one poll to the next only: the reads that follow a burst (the receives
 * its completions answer) find them there, and what they did not take goes to the rings before
 * the port is polled again. A poll, like arm(), may run the port's control channel, which on a
 * link drop takes the peer's memory away; no frame may be kept then.
 */
static void unhold_all(struct netport *np)
{
	if (np->held_mask)
		tcp_hold_trim(&np->tcp, UINT64_MAX);
}

/* Gives the burst's frames back, but for those the stack kept (data set to NULL). */
static void rx_release(struct netport *np, struct port_frame *frames, int n, int kept)
{
	int j = 0;

	if (kept) {
		for (int i = 0; i < n; i++)
			if (frames[i].data)
				frames[j++] = frames[i];
		n = j;
	}
	if (n > 0)
		port_rx_release(np->q, frames, (unsigned) n);
}

static int np_poll(struct xring_ctx *ctx, struct xring_source *src)
{
	struct netport *np = np_of(src);
	struct port_frame *frames = np->rxf;
	uint64_t now = ctx->now;
	bool was = ctx->batching;
	int n, kept = 0;

	unhold_all(np);
	n = port_rx_poll(np->q, frames, np->burst);

	/* A negative count is the port's error state; an idle poll without one, its recovery. */
	if (xring_unlikely(n < 0 ? n != np->port_err : n == 0 && np->port_err))
		xsock_port_state(np, n < 0 ? n : 0);
	if (n < 0)
		n = 0;
	ctx->batching = true;
	np->in_burst = true;
	for (int i = 0; i < n; i++) {
		unsigned flags = 0;
		uint32_t id = TCP_NO_FRAME;

		const uint8_t *data = frames[i].data;
		size_t len = frames[i].len;

		if ((frames[i].flags & PORT_F_MORE) || np->rx_in_chain) {
			if (!rx_piece(np, &frames[i]))
				continue;
			data = np->rx_gather;
			len = np->rx_glen;
			np->rx_glen = 0;
		} else {
			id = hold_slot(np); /* a gathered chain is ours, not the port's */
		}
		if (frames[i].flags & PORT_F_RX_IP_CSUM_OK)
			flags |= IFACE_RX_IP_CSUM_OK;
		if (frames[i].flags & PORT_F_RX_L4_CSUM_OK)
			flags |= IFACE_RX_L4_CSUM_OK;
		tcp_hold_offer(&np->tcp, id);
		iface_input(&np->ifc, now, data, len, flags);
		if (id != TCP_NO_FRAME && tcp_hold_taken(&np->tcp)) {
			np->held[id] = frames[i];
			np->held_mask |= 1u << id;
			frames[i].data = NULL;
			kept++;
		}
	}
	tcp_hold_offer(&np->tcp, TCP_NO_FRAME);
	np->in_burst = false;
	rx_release(np, frames, n, kept);
	xsock_serve_ready(np);
	if (now >= np->next_timer) {
		uint64_t a = iface_poll(&np->ifc, now), b = tcp_poll(&np->tcp, now);

		np->next_timer = a < b ? a : b;
	}
	flush(np);
	port_tx_reap(np->q, NULL, 0);
	/* The snapshot is refreshed every STATS_PORT_NS here, and before the ring sleeps. */
	if (n > 0)
		np->st_dirty = true;
	if (xring_unlikely(now >= np->st_next_ns))
		stats_port_publish(np, now);
	ctx->batching = was;
	if (n > 0 && !was)
		req_run_later(ctx);
	return n > 0 ? n : 0;
}

static uint64_t np_next_timer(struct xring_source *src)
{
	return np_of(src)->next_timer;
}

static int np_wait_fd(struct xring_source *src)
{
	struct netport *np = np_of(src);

	return np->q->ops->wait_fd ? np->q->ops->wait_fd(np->q) : -1;
}

static int np_arm(struct xring_source *src)
{
	struct netport *np = np_of(src);

	unhold_all(np);
	return np->q->ops->arm ? np->q->ops->arm(np->q) : 0;
}

static int np_udp_input(void *arg, uint64_t now, const struct ip4_view *ip,
			const struct udp_view *udp)
{
	return xsock_udp_input(((struct netport *) arg)->ctx, now, ip, udp);
}

static void np_tcp_input(void *arg, uint64_t now, const struct ip4_view *ip,
			 const struct tcp_view *seg)
{
	struct netport *np = arg;

	tcp_input(&np->tcp, now, ip, seg);
	/* A segment may have armed a timer (retransmission, delayed ACK): look again soon. */
	np->next_timer = 0;
}

static void np_icmp_error(void *arg, uint64_t now, const struct ip4_view *ip,
			  const struct icmp_view *icmp)
{
	tcp_icmp_error(&((struct netport *) arg)->tcp, now, ip, icmp);
}

/* The TCP parameters of the process (XRING_TCP_*), as the stack takes them. */
static void tcp_config_from(struct tcp_config *tc)
{
	const struct xring_conf *c;

	memset(tc, 0, sizeof(*tc));
	if (proc_conf(&c) == 0) {
		tc->max_socks = c->tcp_max_conn;
		tc->sndbuf = (uint32_t) c->tcp_wmem;
		tc->rcvbuf = (uint32_t) c->tcp_rmem;
		tc->mss = (uint16_t) c->mss;
		tc->msl2_ns = (uint64_t) c->tcp_timewait_ms * 1000000;
		tc->syn_retries = c->tcp_syn_retries;
		tc->cc = c->tcp_cc == CONF_CC_NEWRENO ? TCP_CC_NEWRENO : TCP_CC_CUBIC;
		tc->no_ts = !c->tcp_timestamps;
	}
	/* The key of ISNs, ephemeral ports and SYN cookies: from the kernel's random source,
	 * since a cookie keyed by a guessable clock could be forged; the clock only if that
	 * fails (as before). */
	if (getrandom(tc->secret, sizeof(tc->secret), GRND_NONBLOCK) !=
	    (ssize_t) sizeof(tc->secret))
		for (unsigned i = 0; i < sizeof(tc->secret); i++)
			tc->secret[i] = (uint8_t) (clock_mono_ns() >> (i % 8));
}

/* XRING_MTU, when set, lowers the port's own MTU (a port cannot send beyond its own). */
static uint16_t mtu_for(const struct port *p, const struct xring_conf *c)
{
	if (!c || !c->mtu || c->mtu == p->mtu)
		return p->mtu;
	if (c->mtu > p->mtu) {
		log_warn("port %s: XRING_MTU=%u is above the port's MTU %u; using %u", p->name,
			 c->mtu, p->mtu, p->mtu);
		return p->mtu;
	}
	return (uint16_t) c->mtu;
}

struct netport *netport_get(struct xring_ctx *ctx, struct xport *xp, int *err)
{
	struct tcp_config tc;
	struct iface_config cfg = {0};
	struct iface_hooks hooks = {0};
	const struct xring_conf *c = NULL;
	struct netport *np;

	for (np = ctx->netports; np; np = np->next)
		if (np->xp == xp)
			return np;
	(void) proc_conf(&c);
	np = calloc(1, sizeof(*np));
	if (np) {
		np->burst = c ? c->cqe_batch : NETPORT_BURST;
		np->rxf = calloc(np->burst, sizeof(*np->rxf));
	}
	if (!np || !np->rxf) {
		free(np);
		*err = -ENOMEM;
		return NULL;
	}
	np->ctx = ctx;
	np->xp = xp;
	np->q = ports_take_queue(xp);
	memcpy(cfg.mac, xp->port->mac, sizeof(cfg.mac));
	cfg.ip = xp->ip;
	cfg.prefix_len = xp->port->prefix_len;
	cfg.gateway = xp->gateway;
	cfg.mtu = mtu_for(xp->port, c);
	cfg.l4_csum_none = xp->port->caps & PORT_CAP_L4_CSUM_NONE;
	cfg.tx_stream = xp->port->caps & PORT_CAP_TX_STREAM;
	if (xp->port->caps & PORT_CAP_TSO)
		cfg.tso_max = xp->port->tso_max;
	cfg.ip_id = (uint16_t) clock_mono_ns();
	hooks.ctx = np;
	hooks.udp_input = np_udp_input;
	hooks.tcp_input = np_tcp_input;
	hooks.icmp_error = np_icmp_error;
	hooks.neigh_lookup = netport_neigh_lookup;
	hooks.neigh_ctx = np;
	*err = iface_init(&np->ifc, &cfg, (struct iface_dev){&dev_ops, np}, &hooks);
	if (*err) {
		free(np->rxf);
		free(np);
		return NULL;
	}
	if (xp->port->caps & PORT_CAP_CHAIN)
		np->rx_gather = malloc(ETH_HLEN + (size_t) np->ifc.mtu);
	tcp_config_from(&tc);
	*err = tcp_init(&np->tcp, &tc, &np->ifc);
	if (*err) {
		iface_fini(&np->ifc);
		free(np->rx_gather);
		free(np->rxf);
		free(np);
		return NULL;
	}
	tcp_set_defer(&np->tcp, true);
	/* Kept frames: only where one queue is the port's (its control channel, run by queue
	 * 0's polls, could otherwise take a link down under frames another ring keeps). */
	np->hold_ok = xp->port->nqueues == 1 && !tcp_set_unhold(&np->tcp, np_unhold, np);
	/* Frames for the stack, where the port filters (AF_XDP, verbs): ARP and ICMP for its
	 * address. Sockets add their own flows. */
	netport_steer(np, &(struct port_rule){.kind = PORT_RULE_ARP, .local_ip = xp->ip}, NULL);
	netport_steer(np, &(struct port_rule){.kind = PORT_RULE_ICMP, .local_ip = xp->ip}, NULL);
	netport_neigh_open(np);
	netport_steer_init(np);
	np->src.poll = np_poll;
	np->src.wait_fd = np_wait_fd;
	np->src.arm = np_arm;
	np->src.next_timer = np_next_timer;
	stats_port_open(np);
	engine_add_source(ctx, &np->src);
	np->next = ctx->netports;
	ctx->netports = np;
	return np;
}

int netport_steer(struct netport *np, const struct port_rule *rule, uint32_t *handle)
{
	struct port *p = np->xp->port;
	struct port_rule r = *rule;
	uint32_t h;
	int ret;

	if (!p->ops->steer)
		return 0;
	r.queue = np->q->index;
	ret = p->ops->steer(p, &r, handle ? handle : &h);
	if (ret && ret != -EEXIST)
		log_warn("port %s: steering rule refused: %d", p->name, ret);
	return ret == -EEXIST ? 0 : ret;
}

void netport_unsteer(struct netport *np, uint32_t handle)
{
	struct port *p = np->xp->port;

	if (p->ops->unsteer)
		p->ops->unsteer(p, handle);
}

void netport_flush_all(struct xring_ctx *ctx)
{
	for (struct netport *np = ctx->netports; np; np = np->next)
		flush(np);
}

void netport_exit(struct xring_ctx *ctx)
{
	while (ctx->netports) {
		struct netport *np = ctx->netports;

		ctx->netports = np->next;
		/* A spare send buffer stays with the queue: port.h has no call to give one back,
		 * and the queue outlives the ring. */
		flush(np);
		if (log_get_level() >= LOG_INFO) {
			const struct tcp_stats *t = tcp_get_stats(&np->tcp);
			const struct port_counters *c = &np->q->stats;

			log_info(
				"port %s queue %u: rx %llu tx %llu rx_drops %llu tx_drops %llu "
				"tx_full %llu; tcp segs in %llu out %llu rexmt bytes %llu rto %llu "
				"fast rexmt %llu ooo %llu tx_fail %llu",
				np->xp->port->name, np->q->index, (unsigned long long) c->rx_frames,
				(unsigned long long) c->tx_frames, (unsigned long long) c->rx_drops,
				(unsigned long long) c->tx_drops, (unsigned long long) c->tx_full,
				(unsigned long long) t->segs_in, (unsigned long long) t->segs_out,
				(unsigned long long) t->rexmt_bytes,
				(unsigned long long) t->rto_fired,
				(unsigned long long) t->fast_rexmt,
				(unsigned long long) t->ooo_segs, (unsigned long long) t->tx_fail);
			log_info(
				"port %s queue %u: out of window %llu, trimmed %llu, ooo full %llu, "
				"dup %llu, paws %llu, bad ack %llu, bad opts %llu, bad csum ip %llu "
				"tcp %llu, tcp malformed %llu, clock back %llu",
				np->xp->port->name, np->q->index,
				(unsigned long long) t->out_of_window,
				(unsigned long long) t->rcv_trimmed,
				(unsigned long long) t->ooo_full, (unsigned long long) t->dup_segs,
				(unsigned long long) t->paws_drops, (unsigned long long) t->bad_ack,
				(unsigned long long) t->bad_opts,
				(unsigned long long) np->ifc.stats.ip_bad_csum,
				(unsigned long long) np->ifc.stats.tcp_bad_csum,
				(unsigned long long) np->ifc.stats.tcp_malformed,
				(unsigned long long) t->clock_back);
			log_info(
				"port %s queue %u: sack recoveries %llu, lost rexmt %llu, "
				"limited xmit %llu, tlp %llu; syn cookies sent %llu ok %llu bad %llu; "
				"neighbours from the host %llu, by ARP %llu",
				np->xp->port->name, np->q->index,
				(unsigned long long) t->sack_recoveries,
				(unsigned long long) t->lost_rexmt,
				(unsigned long long) t->limited_xmit,
				(unsigned long long) t->tlp_probes,
				(unsigned long long) t->syncookies_sent,
				(unsigned long long) t->syncookies_ok,
				(unsigned long long) t->syncookies_failed,
				(unsigned long long) np->ifc.stats.neigh_from_host,
				(unsigned long long) np->ifc.stats.neigh_miss);
		}
		engine_remove_source(ctx, &np->src);
		netport_steer_exit(np);
		netport_neigh_close(np);
		stats_port_close(np);
		tcp_fini(&np->tcp);
		iface_fini(&np->ifc);
		free(np->rx_gather);
		free(np->rxf);
		free(np);
	}
}
