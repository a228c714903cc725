/* Frame input, ARP, IPv4 dispatch, ICMP and IPv4 output of one interface. */
#include "stack/iface/iface.h"

#include <errno.h>
#include <string.h>

#include "stack/iface/neigh.h"
#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"

/* RFC 1812 4.3.2.3: an ICMP error datagram stays within 576 bytes. */
#define ICMP_ERR_MAX_QUOTE (576 - IP4_HLEN - ICMP_HLEN)

#define DEF(field, value)                                                                          \
	do {                                                                                       \
		if (!c->field)                                                                     \
			c->field = (value);                                                        \
	} while (0)

int iface_init(struct iface *ifc, const struct iface_config *cfg, struct iface_dev dev,
	       const struct iface_hooks *hooks)
{
	struct iface_config *c = &ifc->cfg;
	int ret;

	memset(ifc, 0, sizeof(*ifc));
	*c = *cfg;
	DEF(mtu, 1500);
	DEF(ttl, 64);
	DEF(neigh_entries, 64);
	DEF(pending_frames, 64);
	DEF(pending_per_neigh, 4);
	DEF(reachable_ns, 30 * IFACE_NS_PER_S);
	DEF(retrans_ns, 1 * IFACE_NS_PER_S);
	DEF(delay_ns, 5 * IFACE_NS_PER_S);
	DEF(gc_ns, 60 * IFACE_NS_PER_S);
	DEF(max_probes, 3);
	DEF(icmp_rate, 1000);
	DEF(icmp_burst, 50);
	if (c->mtu < 68 || c->prefix_len > 32 || eth_is_multicast(c->mac) || eth_is_zero(c->mac) ||
	    c->neigh_entries > (1u << 20) || c->pending_frames > (1u << 20))
		return -EINVAL;
	if (!dev.ops || !dev.ops->tx_alloc || !dev.ops->tx_post || !dev.ops->tx_abort)
		return -EINVAL;
	memcpy(ifc->mac, c->mac, ETH_ALEN);
	ifc->ip = c->ip;
	ifc->mask = ip4_mask(c->prefix_len);
	ifc->gateway = c->gateway;
	ifc->mtu = c->mtu;
	ifc->ttl = c->ttl;
	ifc->ip_id = c->ip_id;
	ifc->dev = dev;
	if (hooks)
		ifc->hooks = *hooks;
	ifc->icmp_tokens = (uint64_t) c->icmp_burst * IFACE_NS_PER_S;
	ret = neigh_init(ifc);
	return ret;
}

void iface_fini(struct iface *ifc)
{
	neigh_fini(ifc);
}

static bool on_link(const struct iface *ifc, uint32_t ip)
{
	return ((ip ^ ifc->ip) & ifc->mask) == 0;
}

static bool is_bcast(const struct iface *ifc, uint32_t ip)
{
	/* /31 and /32 have no directed broadcast (RFC 3021). */
	return ip == IP4_BROADCAST || (ifc->cfg.prefix_len < 31 && ip == (ifc->ip | ~ifc->mask));
}

/* ---- device output ---- */

static void pad_and_post(struct iface *ifc, struct iface_txbuf *b, uint32_t len)
{
	b->tso_mss = 0;
	/* Short frames are padded here so what leaves is exactly what tests (and pcaps) see,
	 * whether or not the device would pad. */
	if (len < ETH_ZLEN && b->cap >= ETH_ZLEN) {
		memset(b->data + len, 0, ETH_ZLEN - len);
		len = ETH_ZLEN;
	}
	b->len = len;
	ifc->stats.tx_frames++;
	ifc->stats.tx_bytes += len;
	ifc->dev.ops->tx_post(ifc->dev.ctx, b);
}

void iface_xmit_frame(struct iface *ifc, const uint8_t *frame, uint32_t len)
{
	struct iface_txbuf b;

	if (ifc->dev.ops->tx_alloc(ifc->dev.ctx, &b) < 0) {
		ifc->stats.tx_nobuf++;
		return;
	}
	if (b.cap < len) {
		ifc->stats.tx_too_big++;
		ifc->dev.ops->tx_abort(ifc->dev.ctx, &b);
		return;
	}
	memcpy(b.data, frame, len);
	pad_and_post(ifc, &b, len);
}

static int arp_send(struct iface *ifc, uint16_t op, const uint8_t *eth_dst, const uint8_t *tha,
		    uint32_t tpa)
{
	struct iface_txbuf b;

	if (ifc->dev.ops->tx_alloc(ifc->dev.ctx, &b) < 0) {
		ifc->stats.tx_nobuf++;
		return -ENOBUFS;
	}
	if (b.cap < ETH_HLEN + ARP_LEN) {
		ifc->stats.tx_too_big++;
		ifc->dev.ops->tx_abort(ifc->dev.ctx, &b);
		return -EMSGSIZE;
	}
	eth_emit(b.data, b.cap, eth_dst ? eth_dst : eth_broadcast, ifc->mac, ETH_P_ARP);
	arp_emit(b.data + ETH_HLEN, b.cap - ETH_HLEN, op, ifc->mac, ifc->ip, tha, tpa);
	if (op == ARP_OP_REQUEST)
		ifc->stats.arp_req_out++;
	else
		ifc->stats.arp_reply_out++;
	pad_and_post(ifc, &b, ETH_HLEN + ARP_LEN);
	return 0;
}

int iface_arp_request(struct iface *ifc, const uint8_t *eth_dst, uint32_t tpa)
{
	return arp_send(ifc, ARP_OP_REQUEST, eth_dst, NULL, tpa);
}

int iface_announce(struct iface *ifc, uint64_t now)
{
	return arp_send(ifc, ARP_OP_REQUEST, NULL, NULL, ifc->ip);
}

/* ---- IPv4 output ---- */

int iface_ip4_begin(struct iface *ifc, uint64_t now, uint32_t dst, struct iface_tx *tx)
{
	uint8_t mac[ETH_ALEN];
	uint32_t hop = dst;
	size_t room;
	int ret;

	tx->dst = dst;
	tx->neigh = -1;
	tx->pkt = -1;
	tx->tso_mss = 0;
	if (ip4_is_multicast(dst))
		return -EOPNOTSUPP;
	if (is_bcast(ifc, dst)) {
		memcpy(mac, eth_broadcast, ETH_ALEN);
	} else {
		if (!on_link(ifc, dst)) {
			if (!ifc->gateway)
				return -ENETUNREACH;
			hop = ifc->gateway;
		}
		ret = neigh_resolve(ifc, now, hop, mac, &tx->neigh);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			uint8_t *data;

			tx->pkt = neigh_pkt_take(ifc, tx->neigh, &data);
			if (tx->pkt < 0)
				return -ENOBUFS;
			tx->buf.data = data;
			tx->buf.cap = ifc->nc.pkt_size;
			goto lend;
		}
	}
	if (ifc->dev.ops->tx_alloc(ifc->dev.ctx, &tx->buf) < 0) {
		ifc->stats.tx_nobuf++;
		return -ENOBUFS;
	}
	if (tx->buf.cap < ETH_HLEN + IP4_HLEN) {
		ifc->stats.tx_too_big++;
		ifc->dev.ops->tx_abort(ifc->dev.ctx, &tx->buf);
		return -ENOBUFS;
	}
lend:
	eth_emit(tx->buf.data, tx->buf.cap, mac, ifc->mac, ETH_P_IPV4);
	tx->l4 = tx->buf.data + ETH_HLEN + IP4_HLEN;
	room = tx->buf.cap - ETH_HLEN - IP4_HLEN;
	tx->l4_cap = room < (size_t) ifc->mtu - IP4_HLEN ? room : (size_t) ifc->mtu - IP4_HLEN;
	return 0;
}

int iface_ip4_begin_tso(struct iface *ifc, uint64_t now, uint32_t dst, uint16_t mss,
			struct iface_tx *tx)
{
	int ret = iface_ip4_begin(ifc, now, dst, tx);
	size_t cap;

	if (ret || tx->pkt >= 0 || !ifc->cfg.tso_max || !mss ||
	    ifc->cfg.tso_max <= ETH_HLEN + IP4_HLEN)
		return ret;
	cap = tx->buf.cap - ETH_HLEN - IP4_HLEN;
	if (cap > ifc->cfg.tso_max - ETH_HLEN - IP4_HLEN)
		cap = ifc->cfg.tso_max - ETH_HLEN - IP4_HLEN;
	if (cap > 65535 - IP4_HLEN)
		cap = 65535 - IP4_HLEN;
	if (cap > tx->l4_cap) {
		tx->l4_cap = cap;
		tx->tso_mss = mss;
	}
	return 0;
}

void iface_ip4_abort(struct iface *ifc, struct iface_tx *tx)
{
	if (tx->pkt >= 0)
		neigh_pkt_put(ifc, tx->pkt);
	else
		ifc->dev.ops->tx_abort(ifc->dev.ctx, &tx->buf);
}

int iface_ip4_commit(struct iface *ifc, struct iface_tx *tx, uint8_t proto, uint8_t tos,
		     size_t l4_len)
{
	struct ip4_hdr h = {
		.src = ifc->ip,
		.dst = tx->dst,
		.id = ifc->ip_id++,
		.tos = tos,
		.ttl = ifc->ttl,
		.proto = proto,
		.df = true,
	};
	uint32_t len = (uint32_t) (ETH_HLEN + IP4_HLEN + l4_len);

	if (l4_len > tx->l4_cap) {
		ifc->stats.tx_too_big++;
		iface_ip4_abort(ifc, tx);
		return -EMSGSIZE;
	}
	ip4_emit(tx->buf.data + ETH_HLEN, IP4_HLEN, &h, l4_len);
	if (tx->pkt >= 0) {
		neigh_pkt_queue(ifc, tx->neigh, tx->pkt, len);
	} else if (l4_len > (size_t) ifc->mtu - IP4_HLEN) {
		/* Only begin_tso lends room past the MTU: the device cuts this one. */
		tx->buf.len = len;
		tx->buf.tso_mss = tx->tso_mss;
		ifc->stats.tx_frames++;
		ifc->stats.tx_bytes += len;
		ifc->dev.ops->tx_post(ifc->dev.ctx, &tx->buf);
	} else {
		pad_and_post(ifc, &tx->buf, len);
	}
	return 0;
}

int iface_ip4_send(struct iface *ifc, uint64_t now, uint32_t dst, uint8_t proto, uint8_t tos,
		   const void *l4, size_t l4_len)
{
	struct iface_tx tx;
	int ret = iface_ip4_begin(ifc, now, dst, &tx);

	if (ret < 0)
		return ret;
	if (l4_len > tx.l4_cap) {
		ifc->stats.tx_too_big++;
		iface_ip4_abort(ifc, &tx);
		return -EMSGSIZE;
	}
	memcpy(tx.l4, l4, l4_len);
	return iface_ip4_commit(ifc, &tx, proto, tos, l4_len);
}

/* ---- ICMP ---- */

static bool icmp_allow(struct iface *ifc, uint64_t now)
{
	const struct iface_config *c = &ifc->cfg;
	uint64_t cap = (uint64_t) c->icmp_burst * IFACE_NS_PER_S;
	uint64_t dt = now - ifc->icmp_last;

	if (c->icmp_rate == UINT32_MAX)
		return true;
	if (now > ifc->icmp_last) {
		/* Cap dt first so the product cannot overflow after a long idle. */
		if (dt > (uint64_t) c->icmp_burst * IFACE_NS_PER_S)
			dt = (uint64_t) c->icmp_burst * IFACE_NS_PER_S;
		ifc->icmp_tokens += dt * c->icmp_rate;
		if (ifc->icmp_tokens > cap)
			ifc->icmp_tokens = cap;
		ifc->icmp_last = now;
	}
	if (ifc->icmp_tokens < IFACE_NS_PER_S) {
		ifc->stats.icmp_ratelimited++;
		return false;
	}
	ifc->icmp_tokens -= IFACE_NS_PER_S;
	return true;
}

/*
 * Send an ICMP error about the datagram ip. RFC 1122 3.2.2: never about an ICMP error, a
 * broadcast or multicast, a non-initial fragment or a source that is not one host; the
 * callers have already dropped bad sources and fragments.
 */
static void icmp_error_send(struct iface *ifc, uint64_t now, const struct ip4_view *ip,
			    uint8_t type, uint8_t code)
{
	struct iface_tx tx;
	size_t quote = ip->total_len;
	int len;

	if (is_bcast(ifc, ip->dst) || ip4_is_multicast(ip->dst))
		return;
	if (ip->proto == IP4_PROTO_ICMP && ip->payload_len >= 1 && icmp_is_error(ip->payload[0]))
		return;
	if (!icmp_allow(ifc, now))
		return;
	if (iface_ip4_begin(ifc, now, ip->src, &tx) < 0)
		return;
	if (quote > ICMP_ERR_MAX_QUOTE)
		quote = ICMP_ERR_MAX_QUOTE;
	if (quote + ICMP_HLEN > tx.l4_cap)
		quote = tx.l4_cap - ICMP_HLEN;
	len = icmp_emit_error(tx.l4, tx.l4_cap, type, code, 0, ip->hdr, quote);
	if (len < 0) {
		iface_ip4_abort(ifc, &tx);
		return;
	}
	if (iface_ip4_commit(ifc, &tx, IP4_PROTO_ICMP, 0, (size_t) len) == 0)
		ifc->stats.icmp_err_out++;
}

static int icmp_input(struct iface *ifc, uint64_t now, const struct ip4_view *ip, bool bcast)
{
	struct icmp_view v;
	struct iface_tx tx;
	int ret = icmp_parse(ip->payload, ip->payload_len, 0, &v);

	if (ret < 0) {
		if (ret == -EILSEQ)
			ifc->stats.icmp_bad_csum++;
		else
			ifc->stats.icmp_malformed++;
		return ret;
	}
	if (v.type == ICMP_ECHO_REQUEST) {
		ifc->stats.icmp_echo_in++;
		if (bcast) {
			/* No smurf amplifier: like Linux's icmp_echo_ignore_broadcasts. */
			ifc->stats.icmp_echo_bcast++;
			return -EADDRNOTAVAIL;
		}
		ret = iface_ip4_begin(ifc, now, ip->src, &tx);
		if (ret < 0)
			return ret;
		ret = icmp_emit_echo(tx.l4, tx.l4_cap, ICMP_ECHO_REPLY, v.id, v.seq, v.body,
				     v.body_len);
		if (ret < 0) {
			ifc->stats.tx_too_big++;
			iface_ip4_abort(ifc, &tx);
			return ret;
		}
		ret = iface_ip4_commit(ifc, &tx, IP4_PROTO_ICMP, ip->tos, (size_t) ret);
		if (ret == 0)
			ifc->stats.icmp_echo_out++;
		return ret;
	}
	if (icmp_is_error(v.type)) {
		ifc->stats.icmp_err_in++;
		/* An error about a datagram we cannot have sent is noise or an attack. */
		if (v.orig.src != ifc->ip) {
			ifc->stats.icmp_err_foreign++;
			return -EINVAL;
		}
		if (ifc->hooks.icmp_error)
			ifc->hooks.icmp_error(ifc->hooks.ctx, now, ip, &v);
		return 0;
	}
	ifc->stats.icmp_other++;
	return 0;
}

/* ---- UDP and TCP ---- */

static int udp_input(struct iface *ifc, uint64_t now, const struct ip4_view *ip, bool bcast,
		     unsigned flags)
{
	struct udp_view v;
	int ret = udp_parse(ip->payload, ip->payload_len, ip->src, ip->dst,
			    flags & IFACE_RX_L4_CSUM_OK ? UDP_CSUM_OK : 0, &v);

	if (ret < 0) {
		if (ret == -EILSEQ)
			ifc->stats.udp_bad_csum++;
		else
			ifc->stats.udp_malformed++;
		return ret;
	}
	ret = ifc->hooks.udp_input ? ifc->hooks.udp_input(ifc->hooks.ctx, now, ip, &v)
				   : -ECONNREFUSED;
	if (ret == -ECONNREFUSED) {
		ifc->stats.udp_no_port++;
		if (!bcast)
			icmp_error_send(ifc, now, ip, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH);
		return ret;
	}
	ifc->stats.udp_delivered++;
	return 0;
}

static int tcp_input(struct iface *ifc, uint64_t now, const struct ip4_view *ip, bool bcast,
		     unsigned flags)
{
	struct tcp_view v;
	int ret;

	if (bcast) {
		ifc->stats.tcp_bcast++;
		return -EADDRNOTAVAIL;
	}
	ret = tcp_parse(ip->payload, ip->payload_len, ip->src, ip->dst,
			flags & IFACE_RX_L4_CSUM_OK ? TCP_CSUM_OK : 0, &v);
	if (ret < 0) {
		if (ret == -EILSEQ)
			ifc->stats.tcp_bad_csum++;
		else
			ifc->stats.tcp_malformed++;
		return ret;
	}
	if (!ifc->hooks.tcp_input) {
		ifc->stats.tcp_no_handler++;
		return -ECONNREFUSED;
	}
	ifc->stats.tcp_delivered++;
	ifc->hooks.tcp_input(ifc->hooks.ctx, now, ip, &v);
	return 0;
}

/* ---- input ---- */

static int ip4_input(struct iface *ifc, uint64_t now, const struct eth_view *eth, unsigned flags)
{
	struct ip4_view ip;
	bool bcast;
	int ret = ip4_parse(eth->payload, eth->payload_len,
			    flags & IFACE_RX_IP_CSUM_OK ? IP4_CSUM_OK : 0, &ip);

	if (ret < 0) {
		if (ret == -EPROTONOSUPPORT)
			ifc->stats.ip_version++;
		else if (ret == -EILSEQ)
			ifc->stats.ip_bad_csum++;
		else
			ifc->stats.ip_malformed++;
		return ret;
	}
	if (ip4_is_fragment(&ip)) {
		/* No reassembly: a fragment is never taken for a whole datagram. */
		ifc->stats.ip_fragment++;
		return -EOPNOTSUPP;
	}
	if (ip4_is_multicast(ip.src) || is_bcast(ifc, ip.src) || ip4_is_loopback(ip.src) ||
	    ip.src == IP4_ANY || ip.src == ifc->ip) {
		ifc->stats.ip_bad_src++;
		return -EINVAL;
	}
	bcast = is_bcast(ifc, ip.dst);
	if (!bcast && (ip.dst != ifc->ip || ifc->ip == IP4_ANY)) {
		ifc->stats.ip_not_for_us++;
		return -EADDRNOTAVAIL;
	}
	if (!bcast && eth_is_multicast(eth->dst)) {
		/* RFC 1122 3.3.6: a link broadcast must carry an IP broadcast or multicast. */
		ifc->stats.ip_l2_bcast++;
		return -EADDRNOTAVAIL;
	}
	switch (ip.proto) {
	case IP4_PROTO_ICMP:
		ifc->stats.ip_delivered++;
		return icmp_input(ifc, now, &ip, bcast);
	case IP4_PROTO_UDP:
		ifc->stats.ip_delivered++;
		return udp_input(ifc, now, &ip, bcast, flags);
	case IP4_PROTO_TCP:
		ifc->stats.ip_delivered++;
		return tcp_input(ifc, now, &ip, bcast, flags);
	}
	ifc->stats.ip_unknown_proto++;
	if (!bcast)
		icmp_error_send(ifc, now, &ip, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH);
	return -EPROTONOSUPPORT;
}

static int arp_input(struct iface *ifc, uint64_t now, const struct eth_view *eth)
{
	struct arp_view a;
	bool for_us;
	int ret = arp_parse(eth->payload, eth->payload_len, &a);

	if (ret < 0) {
		if (ret == -EBADMSG)
			ifc->stats.arp_malformed++;
		else
			ifc->stats.arp_unsupported++;
		return ret;
	}
	if (a.op == ARP_OP_REQUEST)
		ifc->stats.arp_req_in++;
	else
		ifc->stats.arp_reply_in++;
	if (eth_is_multicast(a.sha) || eth_is_zero(a.sha) || !memcmp(a.sha, ifc->mac, ETH_ALEN)) {
		ifc->stats.arp_bad_sha++;
		return -EINVAL;
	}
	if (ifc->ip == IP4_ANY) {
		ifc->stats.arp_not_for_us++;
		return -EADDRNOTAVAIL;
	}
	if (a.spa == ifc->ip) {
		/* Someone else claims our address (RFC 5227 conflict). Never learn it. */
		ifc->stats.arp_conflict++;
		return -EADDRINUSE;
	}
	for_us = a.tpa == ifc->ip;
	/* A sender address of 0 is an RFC 5227 probe: answer it, learn nothing from it. Only
	 * senders on our subnet may create entries; any known entry is refreshed (that is
	 * what a gratuitous ARP is for). */
	if (a.spa != IP4_ANY && !ip4_is_multicast(a.spa) && !is_bcast(ifc, a.spa))
		neigh_learn(ifc, now, a.spa, a.sha,
			    (for_us && on_link(ifc, a.spa) ? NEIGH_CREATE : 0) |
				    (for_us && a.op == ARP_OP_REPLY ? NEIGH_CONFIRM : 0));
	if (!for_us) {
		ifc->stats.arp_not_for_us++;
		return 0;
	}
	if (a.op == ARP_OP_REQUEST)
		return arp_send(ifc, ARP_OP_REPLY, a.sha, a.sha, a.spa);
	return 0;
}

int iface_input(struct iface *ifc, uint64_t now, const void *frame, size_t len, unsigned flags)
{
	struct eth_view eth;
	int ret;

	ifc->stats.rx_frames++;
	ifc->stats.rx_bytes += len;
	ret = eth_parse(frame, len, &eth);
	if (ret == -EBADMSG) {
		ifc->stats.eth_truncated++;
		return ret;
	}
	if (ret < 0) {
		if (eth.type == ETH_P_8021Q || eth.type == ETH_P_8021AD || eth.type == ETH_P_QINQ)
			ifc->stats.eth_vlan++;
		else
			ifc->stats.eth_other_type++;
		return ret;
	}
	if (memcmp(eth.dst, ifc->mac, ETH_ALEN) != 0 && !eth_is_broadcast(eth.dst)) {
		ifc->stats.eth_not_for_us++;
		return -EADDRNOTAVAIL;
	}
	if (eth_is_multicast(eth.src) || !memcmp(eth.src, ifc->mac, ETH_ALEN)) {
		ifc->stats.eth_bad_src++;
		return -EINVAL;
	}
	switch (eth.type) {
	case ETH_P_IPV4:
		return ip4_input(ifc, now, &eth, flags);
	case ETH_P_ARP:
		return arp_input(ifc, now, &eth);
	}
	ifc->stats.eth_other_type++;
	return -EPROTONOSUPPORT;
}

uint64_t iface_poll(struct iface *ifc, uint64_t now)
{
	return neigh_tick(ifc, now);
}

void iface_neigh_confirm(struct iface *ifc, uint64_t now, uint32_t ip)
{
	neigh_confirm(ifc, now, ip);
}

const struct neigh *iface_neigh_find(const struct iface *ifc, uint32_t ip)
{
	int32_t i = neigh_find(ifc, ip);

	return i < 0 ? NULL : &ifc->nc.e[i];
}
