#include "conf/port_spec.h"
#include "conf/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#define VALUE_MAX 256 /* longer than any value we accept, so truncation is always an error */

static const char *const kind_names[] = {"memif", "xdp", "verbs", NULL};
static const char *const role_names[] = {"client", "server", NULL};
static const char *const mode_names[] = {"interrupt", "poll", NULL};
static const char *const xdp_mode_names[] = {"auto", "skb", "drv", "zc", NULL};

/* Accepted keys per kind, in the order the error message lists them. */
static const char *const memif_keys[] = {"path",   "role",    "ip",   "id",   "secret",
					 "queues", "bufsize", "ring", "mode", "mac",
					 "mtu",    "csum",    NULL};
static const char *const csum_names[] = {"full", "none", NULL};
static const char *const xdp_keys[] = {"dev", "queues", "mode", NULL};
static const char *const verbs_keys[] = {"netdev", "dev", "queues", NULL};
static const char *const *const kind_keys[] = {memif_keys, xdp_keys, verbs_keys};

struct ctx {
	unsigned index; /* 1-based spec number, for messages */
	bool esc0;      /* the value starts with an escape: path=\@x is not abstract */
	const char *kind;
	char *err;
	size_t errlen;
};

const char *pspec_kind_name(enum pspec_kind kind)
{
	return (unsigned) kind < 3 ? kind_names[kind] : "?";
}

static int bad_value(struct ctx *c, const char *key, const char *val, const char *expect)
{
	conf_errf(c->err, c->errlen,
		  "port spec %u (%s): bad value '%.64s' for key '%s': expected %s", c->index,
		  c->kind, val, key, expect);
	return -EINVAL;
}

static int uint_in(struct ctx *c, const char *key, const char *val, uint64_t lo, uint64_t hi,
		   const char *expect, uint64_t *out)
{
	if (conf_parse_u64(val, out) || *out < lo || *out > hi)
		return bad_value(c, key, val, expect);
	return 0;
}

static int copy_str(struct ctx *c, const char *key, const char *val, char *dst, size_t cap,
		    const char *expect)
{
	size_t n = strlen(val);

	if (!n || n >= cap)
		return bad_value(c, key, val, expect);
	memcpy(dst, val, n + 1);
	return 0;
}

/* A Linux interface name: what dev_valid_name() in the kernel accepts. */
static int ifname(struct ctx *c, const char *key, const char *val, char *dst)
{
	static const char expect[] = "an interface name of 1 to 15 characters";

	if (!strcmp(val, ".") || !strcmp(val, ".."))
		return bad_value(c, key, val, expect);
	for (const char *p = val; *p; p++)
		if (*p == '/' || *p == ':' || (unsigned char) *p <= ' ' || *p == 0x7f)
			return bad_value(c, key, val, expect);
	return copy_str(c, key, val, dst, PSPEC_IFNAME_LEN, expect);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t) (hi << 4 | lo);
	}
	/* A port's own address must be unicast and not all zeroes. */
	if (mac[0] & 1 || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

static int memif_key(struct ctx *c, struct pspec_memif *m, int key, const char *val)
{
	const char *name = memif_keys[key];
	uint64_t v;
	int i;

	switch (key) {
	case 0: /* path */
		m->abstract = val[0] == '@' && !c->esc0;
		return copy_str(
			c, name, val + m->abstract, m->path, PSPEC_PATH_LEN,
			"a socket path of 1 to 107 bytes ('@name' for the abstract namespace)");
	case 1: /* role */
		if ((i = conf_parse_choice(val, role_names)) < 0)
			return bad_value(c, name, val, "server or client");
		m->role = (enum pspec_memif_role) i;
		return 0;
	case 2: { /* ip */
		uint32_t h;

		if (!strchr(val, '/') || conf_parse_ipv4(val, &m->ip, &m->prefix_len, true) ||
		    !m->prefix_len)
			return bad_value(c, name, val,
					 "an IPv4 address with a prefix length 1 to 32");
		h = ntohl(m->ip);
		if (!h || h >= 0xe0000000u)
			return bad_value(c, name, val, "a unicast IPv4 address");
		return 0;
	}
	case 3: /* id */
		if (uint_in(c, name, val, 0, UINT32_MAX, "an integer from 0 to 4294967295", &v))
			return -EINVAL;
		m->id = (uint32_t) v;
		return 0;
	case 4: /* secret */
		return copy_str(c, name, val, m->secret, PSPEC_SECRET_LEN, "1 to 24 bytes");
	case 5: /* queues */
		if (uint_in(c, name, val, 1, PSPEC_MAX_QUEUES, "an integer from 1 to 64", &v))
			return -EINVAL;
		m->queues = (uint16_t) v;
		return 0;
	case 6: /* bufsize */
		if (uint_in(c, name, val, 128, 65535, "an integer from 128 to 65535", &v))
			return -EINVAL;
		m->bufsize = (uint32_t) v;
		return 0;
	case 7: /* ring */
		if (conf_parse_u64(val, &v) || v < 2 || v > PSPEC_MEMIF_RING_MAX || (v & (v - 1)))
			return bad_value(c, name, val, "a power of two from 2 to 16384");
		m->ring = (uint32_t) v;
		return 0;
	case 8: /* mode */
		if ((i = conf_parse_choice(val, mode_names)) < 0)
			return bad_value(c, name, val, "interrupt or poll");
		m->mode = (enum pspec_memif_mode) i;
		return 0;
	case 9: /* mac */
		if (parse_mac(val, m->mac))
			return bad_value(c, name, val, "a unicast MAC address xx:xx:xx:xx:xx:xx");
		m->has_mac = true;
		return 0;
	case 10: /* mtu: up to the largest IPv4 packet, as XRING_MTU */
		if (uint_in(c, name, val, 576, 65535, "an integer from 576 to 65535", &v))
			return -EINVAL;
		m->mtu = (uint16_t) v;
		return 0;
	case 11: /* csum */
		if ((i = conf_parse_choice(val, csum_names)) < 0)
			return bad_value(c, name, val, "full or none");
		m->csum_none = i == 1;
		return 0;
	}
	return -EINVAL;
}

static int xdp_key(struct ctx *c, struct pspec_xdp *x, int key, const char *val)
{
	uint64_t v;
	int i;

	switch (key) {
	case 0:
		return ifname(c, "dev", val, x->dev);
	case 1:
		if (uint_in(c, "queues", val, 1, PSPEC_MAX_QUEUES, "an integer from 1 to 64", &v))
			return -EINVAL;
		x->queues = (uint16_t) v;
		return 0;
	case 2:
		if ((i = conf_parse_choice(val, xdp_mode_names)) < 0)
			return bad_value(c, "mode", val, "auto, skb, drv or zc");
		x->mode = (enum pspec_xdp_mode) i;
		return 0;
	}
	return -EINVAL;
}

static int verbs_key(struct ctx *c, struct pspec_verbs *vb, int key, const char *val)
{
	uint64_t v;

	switch (key) {
	case 0:
		return ifname(c, "netdev", val, vb->netdev);
	case 1:
		for (const char *p = val; *p; p++)
			if (*p == '/' || (unsigned char) *p <= ' ' || *p == 0x7f)
				return bad_value(c, "dev", val,
						 "a verbs device name such as mlx5_0");
		return copy_str(c, "dev", val, vb->dev, sizeof(vb->dev),
				"a verbs device name of 1 to 63 characters");
	case 2:
		if (uint_in(c, "queues", val, 1, PSPEC_MAX_QUEUES, "an integer from 1 to 64", &v))
			return -EINVAL;
		vb->queues = (uint16_t) v;
		return 0;
	}
	return -EINVAL;
}

static void defaults(struct pspec *p, enum pspec_kind kind)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	switch (kind) {
	case PSPEC_MEMIF:
		/* The socket libmemif, VPP and DPDK use when none is named. */
		strcpy(p->memif.path, "/run/memif.sock");
		p->memif.queues = 1;
		/* bufsize and ring stay 0: XRING_BUF_SIZE and the queue depths decide. */
		break;
	case PSPEC_XDP:
		p->xdp.queues = 1;
		break;
	case PSPEC_VERBS:
		p->verbs.queues = 1;
		break;
	}
}

static int finish(struct ctx *c, struct pspec *p)
{
	switch (p->kind) {
	case PSPEC_MEMIF:
		if (!p->memif.prefix_len) {
			conf_errf(c->err, c->errlen, "port spec %u (memif): missing key 'ip'",
				  c->index);
			return -EINVAL;
		}
		return 0;
	case PSPEC_XDP:
		if (!p->xdp.dev[0]) {
			conf_errf(c->err, c->errlen, "port spec %u (xdp): missing key 'dev'",
				  c->index);
			return -EINVAL;
		}
		return 0;
	case PSPEC_VERBS:
		if (!p->verbs.netdev[0] == !p->verbs.dev[0]) {
			conf_errf(c->err, c->errlen,
				  "port spec %u (verbs): give exactly one of 'netdev' and 'dev'",
				  c->index);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* End of the item starting at s: the first unescaped sep or the end of the string. */
static const char *item_end(const char *s, const char *end, char sep)
{
	while (s < end && *s != sep) {
		if (*s == '\\' && s + 1 < end)
			s++;
		s++;
	}
	return s;
}

static int unknown_key(struct ctx *c, const char *const *keys, const char *key, size_t len)
{
	char list[96];
	size_t n = 0;

	list[0] = '\0';
	for (int i = 0; keys[i] && n < sizeof(list); i++)
		n += (size_t) snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", keys[i]);
	conf_errf(c->err, c->errlen, "port spec %u (%s): unknown key '%.*s' (accepted: %s)",
		  c->index, c->kind, (int) (len > 32 ? 32 : len), key, list);
	return -EINVAL;
}

/* Parses one spec [s, end) that is not empty. */
static int parse_one(struct ctx *c, const char *s, const char *end, struct pspec *p)
{
	const char *colon = memchr(s, ':', (size_t) (end - s));
	const char *const *keys;
	char kind[8], key[16], val[VALUE_MAX];
	unsigned seen = 0;
	size_t n;
	int k;

	n = colon ? (size_t) (colon - s) : (size_t) (end - s);
	k = -1;
	if (n < sizeof(kind)) {
		memcpy(kind, s, n);
		kind[n] = '\0';
		k = conf_parse_choice(kind, kind_names);
	}
	if (k < 0) {
		conf_errf(c->err, c->errlen,
			  "port spec %u: unknown kind '%.*s': expected memif, xdp or verbs",
			  c->index, (int) (n > 32 ? 32 : n), s);
		return -EINVAL;
	}
	c->kind = kind_names[k];
	if (!colon) {
		conf_errf(c->err, c->errlen, "port spec %u (%s): missing ':' after the kind",
			  c->index, c->kind);
		return -EINVAL;
	}
	defaults(p, (enum pspec_kind) k);
	keys = kind_keys[k];
	for (s = colon + 1; s < end;) { /* an empty list is fine; an empty item is not */
		const char *e = item_end(s, end, ','), *eq = memchr(s, '=', (size_t) (e - s));
		size_t kn = eq ? (size_t) (eq - s) : (size_t) (e - s);
		int ki = -1, ret;
		size_t vn = 0;

		if (kn < sizeof(key)) {
			memcpy(key, s, kn);
			key[kn] = '\0';
			ki = conf_parse_choice(key, keys);
		}
		if (ki < 0)
			return unknown_key(c, keys, s, kn);
		if (!eq) {
			conf_errf(c->err, c->errlen, "port spec %u (%s): key '%s' needs '=value'",
				  c->index, c->kind, key);
			return -EINVAL;
		}
		if (seen & (1u << ki)) {
			conf_errf(c->err, c->errlen, "port spec %u (%s): key '%s' given twice",
				  c->index, c->kind, key);
			return -EINVAL;
		}
		seen |= 1u << ki;
		c->esc0 = eq + 1 < e && eq[1] == '\\';
		for (const char *q = eq + 1; q < e; q++) {
			if (*q == '\\' && ++q == e) {
				conf_errf(
					c->err, c->errlen,
					"port spec %u (%s): value of key '%s' ends in a lone '\\'",
					c->index, c->kind, key);
				return -EINVAL;
			}
			if (vn + 1 >= sizeof(val)) {
				conf_errf(c->err, c->errlen,
					  "port spec %u (%s): value of key '%s' is too long",
					  c->index, c->kind, key);
				return -EINVAL;
			}
			val[vn++] = *q;
		}
		val[vn] = '\0';
		switch (p->kind) {
		case PSPEC_MEMIF:
			ret = memif_key(c, &p->memif, ki, val);
			break;
		case PSPEC_XDP:
			ret = xdp_key(c, &p->xdp, ki, val);
			break;
		default:
			ret = verbs_key(c, &p->verbs, ki, val);
			break;
		}
		if (ret)
			return ret;
		if (e == end)
			break;
		s = e + 1;
		if (s == end)
			return unknown_key(c, keys, s, 0);
	}
	return finish(c, p);
}

int pspec_parse(const char *s, struct pspec *out, unsigned max, char *err, size_t errlen)
{
	struct ctx c = {.err = err, .errlen = errlen};
	const char *end = s + strlen(s);
	unsigned n = 0;

	while (s < end) {
		const char *e = item_end(s, end, ';'), *b = s, *t = e;
		int ret;

		while (b < t && is_space(*b))
			b++;
		/* Trailing blanks go unless escaped. */
		while (t > b && is_space(t[-1]) && !(t - 1 > b && t[-2] == '\\'))
			t--;
		c.index++;
		if (b < t) {
			if (n == max) {
				conf_errf(err, errlen, "port spec %u: more than %u ports", c.index,
					  max);
				return -EINVAL;
			}
			ret = parse_one(&c, b, t, &out[n]);
			if (ret)
				return ret;
			n++;
		}
		s = e < end ? e + 1 : e;
	}
	return (int) n;
}
