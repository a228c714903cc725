#include "conf/rules.h"
#include "conf/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const role_names[] = {"tcp_client",   "tcp_server",  "udp_sender",
					 "udp_receiver", "udp_connect", NULL};
static const char *const verdict_names[] = {"xring", "os", NULL};

/* State while reading one source of rules. */
struct loader {
	struct rules *r;
	const char *name;
	unsigned line;
	bool active; /* the current section applies to this process */
	unsigned n;  /* rules kept so far */
	char *err;
	size_t errlen;
};

const char *rules_role_name(enum rules_role role)
{
	return (unsigned) role < 5 ? role_names[role] : "?";
}

static void copy_name(char *dst, const char *src)
{
	size_t n = src ? strnlen(src, RULES_NAME_LEN - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void rules_init(struct rules *r, const char *program, const char *app_id)
{
	memset(r, 0, sizeof(*r));
	copy_name(r->program, program);
	copy_name(r->app_id, app_id);
}

__attribute__((format(printf, 2, 3))) static int fail(struct loader *l, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	conf_errf(l->err, l->errlen, "%s:%u: %s", l->name, l->line, what);
	return -EINVAL;
}

/* "*", "N" or "N-M", each N at most 65535. */
static int parse_ports(const char *s, uint16_t *lo, uint16_t *hi)
{
	char a[8];
	const char *dash;
	uint64_t x, y;
	size_t n;

	if (!strcmp(s, "*")) {
		*lo = 0;
		*hi = 65535;
		return 0;
	}
	dash = strchr(s, '-');
	n = dash ? (size_t) (dash - s) : strlen(s);
	if (n >= sizeof(a))
		return -EINVAL;
	memcpy(a, s, n);
	a[n] = '\0';
	if (conf_parse_u64(a, &x) || x > 65535)
		return -EINVAL;
	y = x;
	if (dash && (strlen(dash + 1) > 5 || conf_parse_u64(dash + 1, &y) || y > 65535 || y < x))
		return -EINVAL;
	*lo = (uint16_t) x;
	*hi = (uint16_t) y;
	return 0;
}

static int parse_use(struct loader *l, char **tok, struct rule *out)
{
	char *colon = strrchr(tok[3], ':');
	uint8_t plen = 0;
	int v, role;

	if ((v = conf_parse_choice(tok[1], verdict_names)) < 0)
		return fail(l, "unknown target '%.32s': expected xring or os", tok[1]);
	if ((role = conf_parse_choice(tok[2], role_names)) < 0)
		return fail(l,
			    "unknown role '%.32s': expected tcp_client, tcp_server, udp_sender, "
			    "udp_receiver or udp_connect",
			    tok[2]);
	if (!colon)
		return fail(l, "'%.48s' is not <addr[/len]|*>:<port[-port]|*>", tok[3]);
	*colon = '\0';
	memset(out, 0, sizeof(*out));
	if (strcmp(tok[3], "*")) {
		if (conf_parse_ipv4(tok[3], &out->addr, &plen, true))
			return fail(l, "bad address '%.48s': expected a.b.c.d[/len] or *", tok[3]);
		out->mask = plen ? htonl(~0u << (32 - plen)) : 0;
		out->addr &= out->mask;
	}
	if (parse_ports(colon + 1, &out->port_lo, &out->port_hi))
		return fail(l, "bad port '%.16s': expected N, N-M (N <= M <= 65535) or *",
			    colon + 1);
	out->role = (uint8_t) role;
	out->verdict = v ? RULES_OS : RULES_XRING;
	out->line = l->line;
	return 0;
}

/*
 * Handles one line (without its newline, NUL-terminated, writable). Returns 1 with *out filled
 * for a rule that applies, 0 for anything else that is fine, or -EINVAL.
 */
static int parse_line(struct loader *l, char *line, bool sections, struct rule *out)
{
	char *tok[5], *p = line, *hash = strchr(line, '#');
	unsigned n = 0;
	int ret;

	if (hash)
		*hash = '\0';
	while (n < 5) {
		p += strspn(p, " \t\r\v\f");
		if (!*p)
			break;
		tok[n++] = p;
		p += strcspn(p, " \t\r\v\f");
		if (*p)
			*p++ = '\0';
	}
	if (!n)
		return 0;
	if (!strcmp(tok[0], "application-id")) {
		if (!sections)
			return fail(l, "%s is allowed only in the rules file", tok[0]);
		if (n != 3)
			return fail(l, "%s takes two words: <program|*> <id|*>", tok[0]);
		l->active = (!strcmp(tok[1], "*") ||
			     (l->r->program[0] && !strcmp(tok[1], l->r->program))) &&
			    (!strcmp(tok[2], "*") ||
			     (l->r->app_id[0] && !strcmp(tok[2], l->r->app_id)));
		return 0;
	}
	if (strcmp(tok[0], "use"))
		return fail(l, "unknown keyword '%.32s': expected use or application-id", tok[0]);
	if (n != 4)
		return fail(
			l, "%s takes three words: <xring|os> <role> <addr[/len]|*>:<port[-port]|*>",
			tok[0]);
	ret = parse_use(l, tok, out);
	if (ret)
		return ret;
	return l->active;
}

static int feed(struct loader *l, const char *text, size_t len)
{
	char line[RULES_LINE_MAX];
	struct rule rule;
	int ret;

	l->line++;
	if (len >= sizeof(line))
		return fail(l, "line longer than %d bytes", RULES_LINE_MAX - 1);
	if (memchr(text, '\0', len))
		return fail(l, "NUL byte in line");
	memcpy(line, text, len);
	line[len] = '\0';
	ret = parse_line(l, line, true, &rule);
	if (ret <= 0)
		return ret;
	if (l->n == RULES_MAX) {
		fail(l, "more than %d rules apply", RULES_MAX);
		return -ENOSPC;
	}
	l->r->file[l->n++] = rule;
	return 0;
}

static void loader_init(struct loader *l, struct rules *r, const char *name, char *err,
			size_t errlen)
{
	*l = (struct loader){.r = r, .name = name, .active = true, .err = err, .errlen = errlen};
	r->nfile = 0;
}

int rules_load_buf(struct rules *r, const char *name, const char *buf, size_t len, char *err,
		   size_t errlen)
{
	const char *end = buf + len;
	struct loader l;

	loader_init(&l, r, name, err, errlen);
	while (buf < end) {
		const char *nl = memchr(buf, '\n', (size_t) (end - buf));
		const char *e = nl ? nl : end;
		int ret = feed(&l, buf, (size_t) (e - buf));

		if (ret)
			return ret;
		buf = nl ? nl + 1 : end;
	}
	r->nfile = l.n;
	return 0;
}

int rules_load_file(struct rules *r, const char *path, char *err, size_t errlen)
{
	char buf[2 * RULES_LINE_MAX], what[64];
	size_t have = 0;
	struct loader l;
	int fd, ret = 0;

	loader_init(&l, r, path, err, errlen);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		conf_errf(err, errlen, "%s: %s", path, strerror_r(-ret, what, sizeof(what)));
		return ret;
	}
	/* Read in blocks and cut lines ourselves: a NUL byte in the file is then seen, not lost. */
	for (;;) {
		ssize_t got = read(fd, buf + have, sizeof(buf) - have);
		char *nl;
		size_t off = 0;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			conf_errf(err, errlen, "%s: %s", path,
				  strerror_r(-ret, what, sizeof(what)));
			break;
		}
		have += (size_t) got;
		while (!ret && (nl = memchr(buf + off, '\n', have - off))) {
			ret = feed(&l, buf + off, (size_t) (nl - (buf + off)));
			off = (size_t) (nl - buf) + 1;
		}
		if (ret)
			break;
		memmove(buf, buf + off, have - off);
		have -= off;
		if (!got || have >= RULES_LINE_MAX) {
			/* The last line has no newline, or this one is already too long. */
			if (have)
				ret = feed(&l, buf, have);
			if (ret || !got)
				break;
		}
	}
	close(fd);
	if (ret)
		return ret;
	r->nfile = l.n;
	return 0;
}

int rules_setup(struct rules *r, const char *path, bool must_exist, const char *app_id, char *err,
		size_t errlen)
{
	int ret;

	rules_init(r, program_invocation_short_name, app_id);
	if (!path[0])
		return 0;
	ret = rules_load_file(r, path, err, errlen);
	if (ret == -ENOENT && !must_exist)
		return 0;
	return ret ? -EINVAL : 0;
}

int rules_add_line(struct rules *r, const char *text, char *err, size_t errlen)
{
	unsigned n = __atomic_load_n(&r->nrt, __ATOMIC_RELAXED);
	char line[RULES_LINE_MAX];
	struct loader l = {.r = r,
			   .name = "rule",
			   .line = n + 1,
			   .active = true,
			   .err = err,
			   .errlen = errlen};
	struct rule rule;
	size_t len = strlen(text);
	int ret;

	if (len && text[len - 1] == '\n')
		len--;
	if (len >= sizeof(line))
		return fail(&l, "longer than %d bytes", RULES_LINE_MAX - 1);
	memcpy(line, text, len);
	line[len] = '\0';
	ret = parse_line(&l, line, false, &rule);
	if (ret < 0)
		return ret;
	if (!ret)
		return fail(&l, "no rule on the line");
	if (n == RULES_RT_MAX) {
		fail(&l, "more than %d runtime rules", RULES_RT_MAX);
		return -ENOSPC;
	}
	r->rt[n] = rule;
	/* Release: a matcher that sees the new count sees the whole rule. */
	__atomic_store_n(&r->nrt, n + 1, __ATOMIC_RELEASE);
	return 0;
}

static bool hit(const struct rule *rl, enum rules_role role, uint32_t addr, uint16_t port)
{
	return rl->role == role && (addr & rl->mask) == rl->addr && port >= rl->port_lo &&
	       port <= rl->port_hi;
}

enum rules_verdict rules_match(const struct rules *r, enum rules_role role, uint32_t addr,
			       uint16_t port, const struct rule **which)
{
	unsigned nrt = __atomic_load_n(&r->nrt, __ATOMIC_ACQUIRE);
	const struct rule *rl = NULL;
	uint16_t hport = ntohs(port);

	for (unsigned i = nrt; i-- > 0 && !rl;)
		if (hit(&r->rt[i], role, addr, hport))
			rl = &r->rt[i];
	for (unsigned i = 0; i < r->nfile && !rl; i++)
		if (hit(&r->file[i], role, addr, hport))
			rl = &r->file[i];
	if (which)
		*which = rl;
	return rl ? (enum rules_verdict) rl->verdict : RULES_NO_MATCH;
}
