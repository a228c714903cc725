#include "conf/params.h"
#include "conf/parse.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const log_levels[] = {"none", "error", "warn", "info", "debug", NULL};
static const char *const cc_names[] = {"cubic", "newreno", NULL};
static const char *const huge_names[] = {"off", "try", "on", NULL};

#define FIELD(f) .off = offsetof(struct xring_conf, f), .size = sizeof(((struct xring_conf *) 0)->f)
#define KIB      1024ull
#define MIB      (1024 * KIB)
#define GIB      (1024 * MIB)

/* clang-format off */
static const struct conf_param params[] = {
	{"XRING_LOG_LEVEL", CONF_ENUM, "warn", .choices = log_levels, FIELD(log_level),
	 .desc = "Least severe message written to the log."},
	{"XRING_LOG_FILE", CONF_PATH, "", .flags = CONF_F_PID, FIELD(log_file),
	 .desc = "Log to this file instead of standard error; %d becomes the process id."},
	{"XRING_LOG_DETAILS", CONF_INT, "0", 0, 3, FIELD(log_details),
	 .desc = "Detail on each log line: 0 level only, 1 thread id, 2 time, 3 source location."},
	{"XRING_SQ_ENTRIES", CONF_INT, "128", 1, 32768, FIELD(sq_entries),
	 .desc = "Submission queue entries when the application asks for none."},
	{"XRING_CQ_ENTRIES", CONF_INT, "0", 1, 65536, .flags = CONF_F_ZERO, FIELD(cq_entries),
	 .zero = "twice the SQ entries", .desc = "Completion queue entries; at least the SQ entries."},
	{"XRING_RX_BUFS", CONF_INT, "4096", 64, 1048576, FIELD(rx_bufs),
	 .desc = "Receive buffers per port queue."},
	{"XRING_TX_BUFS", CONF_INT, "4096", 64, 1048576, FIELD(tx_bufs),
	 .desc = "Send buffers per port queue."},
	{"XRING_BUF_SIZE", CONF_SIZE, "2K", 512, 64 * KIB, FIELD(buf_size),
	 .desc = "Bytes in each receive and send buffer."},
	{"XRING_RX_QUEUE_DEPTH", CONF_INT, "1024", 16, 32768, FIELD(rx_queue_depth),
	 .desc = "Receive descriptors posted to each port queue; at most XRING_RX_BUFS."},
	{"XRING_TX_QUEUE_DEPTH", CONF_INT, "1024", 16, 32768, FIELD(tx_queue_depth),
	 .desc = "Send descriptors per port queue; at most XRING_TX_BUFS."},
	{"XRING_CQE_BATCH", CONF_INT, "32", 1, 1024, FIELD(cqe_batch),
	 .desc = "Device completions reaped per poll."},
	{"XRING_SPIN_US", CONF_INT, "50", 0, 1000000, FIELD(spin_us),
	 .desc = "Microseconds a waiting ring polls before it blocks."},
	{"XRING_TCP_NODELAY", CONF_BOOL, "0", FIELD(tcp_nodelay),
	 .desc = "New TCP sockets start with TCP_NODELAY (Nagle off)."},
	{"XRING_TCP_QUICKACK", CONF_BOOL, "0", FIELD(tcp_quickack),
	 .desc = "Acknowledge every segment at once instead of delaying ACKs."},
	{"XRING_TCP_CC", CONF_ENUM, "cubic", .choices = cc_names, FIELD(tcp_cc),
	 .desc = "Congestion control for new TCP connections."},
	{"XRING_MTU", CONF_INT, "0", 576, 65535, .flags = CONF_F_ZERO, FIELD(mtu),
	 .zero = "the port's MTU", .desc = "IP MTU used on every port."},
	{"XRING_MSS", CONF_INT, "0", 536, 65495, .flags = CONF_F_ZERO, FIELD(mss),
	 .zero = "the MTU less 40", .desc = "TCP maximum segment size announced and sent."},
	{"XRING_TCP_RMEM", CONF_SIZE, "256K", 4 * KIB, GIB, FIELD(tcp_rmem),
	 .desc = "TCP receive buffer (largest window offered) per socket."},
	{"XRING_TCP_WMEM", CONF_SIZE, "256K", 4 * KIB, GIB, FIELD(tcp_wmem),
	 .desc = "TCP send buffer per socket."},
	{"XRING_TCP_MAX_CONN", CONF_INT, "4096", 2, 4194304, FIELD(tcp_max_conn),
	 .desc = "TCP connections (listeners and TIME-WAIT included) per port and ring."},
	{"XRING_ACCEPT_EVENTFD", CONF_BOOL, "0", FIELD(accept_eventfd),
	 .desc = "Name accepted offloaded connections by an eventfd, not a TCP socket."},
	{"XRING_FILES_MAX", CONF_INT, "0", 1, 16777216, .flags = CONF_F_ZERO, FIELD(files_max),
	 .zero = "the kernel's limit",
	 .desc = "Largest registered file table; slots past the kernel's limit hold accepted "
		 "offloaded connections only."},
	{"XRING_TCP_TIMEWAIT_MS", CONF_INT, "60000", 0, 600000, FIELD(tcp_timewait_ms),
	 .desc = "Milliseconds a closed TCP connection stays in TIME-WAIT."},
	{"XRING_TCP_SYN_RETRIES", CONF_INT, "6", 1, 60, FIELD(tcp_syn_retries),
	 .desc = "SYN retransmissions before a TCP connect fails with ETIMEDOUT."},
	{"XRING_TCP_TIMESTAMPS", CONF_BOOL, "1", FIELD(tcp_timestamps),
	 .desc = "Offer the TCP timestamps option (RFC 7323)."},
	{"XRING_MEM_LIMIT", CONF_SIZE, "0", MIB, 1024 * GIB, .flags = CONF_F_ZERO, FIELD(mem_limit),
	 .zero = "no limit", .desc = "Most memory the buffer pools may take."},
	{"XRING_HUGEPAGES", CONF_ENUM, "try", .choices = huge_names, FIELD(hugepages),
	 .desc = "Huge pages for the pools: never, when available, or required."},
	{"XRING_OFFLOAD", CONF_BOOL, "1", FIELD(offload),
	 .desc = "Offload sockets that no rule decides."},
	{"XRING_CONFIG_FILE", CONF_PATH, "/etc/libxring.conf", FIELD(config_file),
	 .desc = "Rules file; empty for none."},
	{"XRING_APPLICATION_ID", CONF_STRING, "", .flags = CONF_F_WORD, FIELD(application_id),
	 .desc = "Selects application-id sections of the rules file."},
	{"XRING_STATS_DIR", CONF_PATH, "/tmp/xring", FIELD(stats_dir),
	 .desc = "Directory where statistics are published; empty for none."},
	{"XRING_STATS_SOCKETS", CONF_INT, "1024", 0, 65536, FIELD(stats_sockets),
	 .desc = "Offloaded sockets whose counters are published at once; those beyond are "
		 "counted, not shown."},
	{"XRING_STATS_FILE", CONF_PATH, "", .flags = CONF_F_PID, FIELD(stats_file),
	 .desc = "Append each offloaded socket's final counters to this file as it closes; %d "
		 "becomes the process id."},
	{"XRING_PCAP", CONF_PATH, "", .flags = CONF_F_PID, FIELD(pcap),
	 .desc = "Capture every frame of every port to this pcap file; %d becomes the process id."},
	{"XRING_PORTS", CONF_STRING, "", FIELD(ports_text),
	 .desc = "Ports to attach, as ';'-separated port specs."},
};
/* clang-format on */

#define NPARAMS (sizeof(params) / sizeof(params[0]))

const struct conf_param *conf_params(size_t *count)
{
	*count = NPARAMS;
	return params;
}

const struct conf_param *conf_param_find(const char *name)
{
	for (size_t i = 0; i < NPARAMS; i++)
		if (!strcmp(params[i].name, name))
			return &params[i];
	return NULL;
}

static void fmt_num(const struct conf_param *p, uint64_t v, char *buf, size_t len)
{
	if (p->type == CONF_SIZE)
		conf_format_size(v, buf, len);
	else
		snprintf(buf, len, "%" PRIu64, v);
}

void conf_param_range(const struct conf_param *p, char *buf, size_t len)
{
	char lo[24], hi[24];
	size_t n = 0;

	switch (p->type) {
	case CONF_BOOL:
		snprintf(buf, len, "0 or 1");
		return;
	case CONF_INT:
	case CONF_SIZE:
		fmt_num(p, p->min, lo, sizeof(lo));
		fmt_num(p, p->max, hi, sizeof(hi));
		if (p->flags & CONF_F_ZERO)
			snprintf(buf, len, "0 (%s) or %s to %s", p->zero, lo, hi);
		else
			snprintf(buf, len, "%s to %s", lo, hi);
		return;
	case CONF_ENUM:
		buf[0] = '\0';
		for (int i = 0; p->choices[i] && n < len; i++)
			n += (size_t) snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
					       p->choices[i]);
		return;
	case CONF_STRING:
		if (p->flags & CONF_F_WORD)
			snprintf(buf, len, "up to %zu printable characters, no blanks or '#'",
				 p->size - 1);
		else
			snprintf(buf, len, "up to %zu bytes", p->size - 1);
		return;
	case CONF_PATH:
		snprintf(buf, len, "a path of up to %zu bytes", p->size - 1);
		return;
	}
}

static uint64_t get_uint(const struct conf_param *p, const struct xring_conf *c)
{
	const char *f = (const char *) c + p->off;

	switch (p->size) {
	case 1:
		return *(const uint8_t *) f;
	case 2:
		return *(const uint16_t *) f;
	case 4:
		return *(const uint32_t *) f;
	default:
		return *(const uint64_t *) f;
	}
}

static void set_uint(const struct conf_param *p, struct xring_conf *c, uint64_t v)
{
	char *f = (char *) c + p->off;

	switch (p->size) {
	case 1:
		*(uint8_t *) f = (uint8_t) v;
		break;
	case 2:
		*(uint16_t *) f = (uint16_t) v;
		break;
	case 4:
		*(uint32_t *) f = (uint32_t) v;
		break;
	default:
		*(uint64_t *) f = v;
		break;
	}
}

void conf_param_format(const struct conf_param *p, const struct xring_conf *c, char *buf,
		       size_t len)
{
	const char *f = (const char *) c + p->off;

	switch (p->type) {
	case CONF_BOOL:
		snprintf(buf, len, "%d", *(const bool *) f ? 1 : 0);
		return;
	case CONF_INT:
	case CONF_SIZE:
		fmt_num(p, get_uint(p, c), buf, len);
		return;
	case CONF_ENUM:
		snprintf(buf, len, "%s", p->choices[get_uint(p, c)]);
		return;
	case CONF_STRING:
	case CONF_PATH:
		snprintf(buf, len, "%s", f);
		return;
	}
}

static int check_text(const struct conf_param *p, const char *v)
{
	for (const char *s = v; *s; s++) {
		unsigned char ch = (unsigned char) *s;

		if (ch < 0x20 || ch == 0x7f)
			return -EINVAL;
		if ((p->flags & CONF_F_WORD) && (ch == ' ' || ch == '#' || ch > 0x7e))
			return -EINVAL;
		/* Only %d and %% expand; anything else is a typo better caught now. */
		if ((p->flags & CONF_F_PID) && ch == '%' && s[1] != 'd' && s[1] != '%')
			return -EINVAL;
		if ((p->flags & CONF_F_PID) && ch == '%')
			s++;
	}
	if ((p->flags & CONF_F_WORD) && !strcmp(v, "*"))
		return -EINVAL;
	return 0;
}

int conf_param_set(const struct conf_param *p, struct xring_conf *c, const char *v, char *err,
		   size_t errlen)
{
	char *f = (char *) c + p->off;
	char range[160];
	const char *why;
	uint64_t n;
	bool b;
	int ret;

	switch (p->type) {
	case CONF_BOOL:
		if (conf_parse_bool(v, &b)) {
			why = "not a boolean";
			break;
		}
		*(bool *) f = b;
		return 0;
	case CONF_INT:
	case CONF_SIZE:
		ret = p->type == CONF_INT ? conf_parse_u64(v, &n) : conf_parse_size(v, &n);
		if (ret == -EINVAL) {
			why = p->type == CONF_INT ? "not a decimal integer"
						  : "not a size (digits and an optional K, M or G)";
			break;
		}
		if (ret || ((n < p->min || n > p->max) && !(n == 0 && (p->flags & CONF_F_ZERO)))) {
			why = "out of range";
			break;
		}
		set_uint(p, c, n);
		return 0;
	case CONF_ENUM:
		ret = conf_parse_choice(v, p->choices);
		if (ret < 0) {
			why = "not a known value";
			break;
		}
		set_uint(p, c, (uint64_t) ret);
		return 0;
	case CONF_STRING:
	case CONF_PATH:
		if (strlen(v) >= p->size) {
			why = "too long";
			break;
		}
		if (check_text(p, v)) {
			why = (p->flags & CONF_F_PID)
				      ? "bad character or % sequence (only %d and %%)"
				      : "bad character";
			break;
		}
		memcpy(f, v, strlen(v) + 1);
		return 0;
	default:
		why = "?";
		break;
	}
	conf_param_range(p, range, sizeof(range));
	conf_errf(err, errlen, "%s='%.64s%s': %s; accepted: %s", p->name, v,
		  strlen(v) > 64 ? "..." : "", why, range);
	return -EINVAL;
}

void conf_defaults(struct xring_conf *c)
{
	memset(c, 0, sizeof(*c));
	/* Every default parses: test_conf_params checks the whole table. */
	for (size_t i = 0; i < NPARAMS; i++)
		(void) conf_param_set(&params[i], c, params[i].def, NULL, 0);
}

static int relations(const struct xring_conf *c, char *err, size_t errlen)
{
	if (c->cq_entries && c->cq_entries < c->sq_entries) {
		conf_errf(err, errlen, "XRING_CQ_ENTRIES=%u is smaller than XRING_SQ_ENTRIES=%u",
			  c->cq_entries, c->sq_entries);
		return -EINVAL;
	}
	if (c->rx_queue_depth > c->rx_bufs) {
		conf_errf(err, errlen, "XRING_RX_QUEUE_DEPTH=%u is larger than XRING_RX_BUFS=%u",
			  c->rx_queue_depth, c->rx_bufs);
		return -EINVAL;
	}
	if (c->tx_queue_depth > c->tx_bufs) {
		conf_errf(err, errlen, "XRING_TX_QUEUE_DEPTH=%u is larger than XRING_TX_BUFS=%u",
			  c->tx_queue_depth, c->tx_bufs);
		return -EINVAL;
	}
	if (c->mss && c->mtu && c->mss > c->mtu - 40) {
		conf_errf(err, errlen, "XRING_MSS=%u does not fit XRING_MTU=%u (at most %u)",
			  c->mss, c->mtu, c->mtu - 40);
		return -EINVAL;
	}
	/* One port queue's pools must fit, or the limit could never be met. */
	if (c->mem_limit && c->mem_limit < ((uint64_t) c->rx_bufs + c->tx_bufs) * c->buf_size) {
		char lim[24];

		conf_format_size(c->mem_limit, lim, sizeof(lim));
		conf_errf(err, errlen,
			  "XRING_MEM_LIMIT=%s is below one queue's buffers (XRING_RX_BUFS + "
			  "XRING_TX_BUFS) * XRING_BUF_SIZE = %" PRIu64,
			  lim, ((uint64_t) c->rx_bufs + c->tx_bufs) * c->buf_size);
		return -EINVAL;
	}
	return 0;
}

/* secure_getenv: a set-user-ID program must not let its caller pick the files it writes. */
static const char *env_get(const char *name, void *ctx)
{
	return secure_getenv(name);
}

int conf_load_from(struct xring_conf *out, conf_getenv_fn get, void *ctx, char *err, size_t errlen)
{
	char msg[CONF_ERR_LEN];
	int ret;

	if (!get)
		get = env_get;
	conf_defaults(out);
	for (size_t i = 0; i < NPARAMS; i++) {
		const char *v = get(params[i].name, ctx);

		if (v && (ret = conf_param_set(&params[i], out, v, err, errlen)))
			return ret;
	}
	ret = pspec_parse(out->ports_text, out->ports, PSPEC_MAX, msg, sizeof(msg));
	if (ret < 0) {
		conf_errf(err, errlen, "XRING_PORTS: %s", msg);
		return ret;
	}
	out->nports = (unsigned) ret;
	return relations(out, err, errlen);
}

int conf_load(struct xring_conf *out, char *err, size_t errlen)
{
	return conf_load_from(out, NULL, NULL, err, errlen);
}

static struct xring_conf def_conf; /* read-only once def_once has run */
static pthread_once_t def_once = PTHREAD_ONCE_INIT;

static void def_init(void)
{
	conf_defaults(&def_conf);
}

unsigned conf_for_each_changed(const struct xring_conf *c, conf_changed_fn fn, void *ctx)
{
	char now[CONF_PORTS_LEN], was[CONF_PORTS_LEN];
	unsigned n = 0;

	pthread_once(&def_once, def_init);
	for (size_t i = 0; i < NPARAMS; i++) {
		conf_param_format(&params[i], c, now, sizeof(now));
		conf_param_format(&params[i], &def_conf, was, sizeof(was));
		if (strcmp(now, was)) {
			if (fn)
				fn(ctx, &params[i], now, was);
			n++;
		}
	}
	return n;
}

unsigned conf_for_each_unknown(char *const *envp, void (*fn)(void *ctx, const char *entry),
			       void *ctx)
{
	unsigned n = 0;

	for (; envp && *envp; envp++) {
		const char *e = *envp, *eq = strchr(e, '=');
		size_t len = eq ? (size_t) (eq - e) : strlen(e);
		bool known = false;

		if (strncmp(e, "XRING_", 6))
			continue;
		for (size_t i = 0; i < NPARAMS && !known; i++)
			known = strlen(params[i].name) == len && !memcmp(params[i].name, e, len);
		if (!known) {
			if (fn)
				fn(ctx, e);
			n++;
		}
	}
	return n;
}

static void log_changed(void *ctx, const struct conf_param *p, const char *value, const char *def)
{
	log_info("%s=%s (default %s)", p->name, value, *def ? def : "empty");
}

static void log_unknown(void *ctx, const char *entry)
{
	log_warn("%.200s: not an xring parameter, ignored", entry);
}

void conf_log(const struct xring_conf *c, char *const *envp)
{
	conf_for_each_changed(c, log_changed, NULL);
	conf_for_each_unknown(envp ? envp : environ, log_unknown, NULL);
}

int conf_expand_pid(const char *tmpl, int pid, char *buf, size_t len)
{
	size_t n = 0;

	for (const char *s = tmpl; *s; s++) {
		char num[16];
		const char *add = s;
		size_t alen = 1;

		if (*s == '%' && s[1] == 'd') {
			alen = (size_t) snprintf(num, sizeof(num), "%d", pid);
			add = num;
			s++;
		} else if (*s == '%' && s[1] == '%') {
			s++;
		}
		if (n + alen >= len)
			return -ENAMETOOLONG;
		memcpy(buf + n, add, alen);
		n += alen;
	}
	if (n >= len)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return (int) n;
}

static struct xring_conf proc_conf;
static int proc_ret;
static char proc_err[CONF_ERR_LEN];
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

static void proc_init(void)
{
	proc_ret = conf_load(&proc_conf, proc_err, sizeof(proc_err));
}

int conf_get(const struct xring_conf **out, char *err, size_t errlen)
{
	pthread_once(&proc_once, proc_init);
	if (proc_ret) {
		conf_errf(err, errlen, "%s", proc_err);
		return proc_ret;
	}
	*out = &proc_conf;
	return 0;
}
