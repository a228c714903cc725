/*
 * XRING_* environment parameters: one table describes each (name, type, default, range,
 * description); conf_load() reads and validates all of them once into a struct xring_conf.
 * Nothing is ever silently defaulted: a value that does not parse, or is out of range, fails the
 * whole load with -EINVAL and a message naming the variable and what it accepts. The caller logs
 * the message (the log itself is configured from here, so this module does not log on its own).
 */
#ifndef XRING_CONF_PARAMS_H
#define XRING_CONF_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/port_spec.h"

#define CONF_PATH_LEN  1024
#define CONF_APPID_LEN 64
#define CONF_PORTS_LEN 4096
#define CONF_ERR_LEN   256 /* enough for any message conf_load() writes */

enum conf_type {
	CONF_BOOL,
	CONF_INT,
	CONF_SIZE,
	CONF_ENUM,
	CONF_STRING,
	CONF_PATH
};

/* Values of the enum parameters, in the order of their names in the table. */
enum conf_cc {
	CONF_CC_CUBIC,
	CONF_CC_NEWRENO
};
enum conf_hugepages {
	CONF_HUGE_OFF,
	CONF_HUGE_TRY,
	CONF_HUGE_ON
};

struct xring_conf {
	unsigned log_level; /* enum log_level */
	char log_file[CONF_PATH_LEN];
	uint32_t log_details;

	uint32_t sq_entries;
	uint32_t cq_entries; /* 0: twice sq_entries */
	uint32_t rx_bufs;
	uint32_t tx_bufs;
	uint64_t buf_size;
	uint32_t rx_queue_depth;
	uint32_t tx_queue_depth;
	uint32_t cqe_batch;
	uint32_t spin_us;

	bool tcp_nodelay;
	bool tcp_quickack;
	unsigned tcp_cc; /* enum conf_cc */
	uint32_t mtu;    /* 0: the port's own MTU */
	uint32_t mss;    /* 0: derived from the MTU */
	uint64_t tcp_rmem;
	uint64_t tcp_wmem;
	uint32_t tcp_max_conn;
	bool accept_eventfd;
	uint32_t files_max;
	uint32_t tcp_timewait_ms;
	uint32_t tcp_syn_retries;
	bool tcp_timestamps;

	uint64_t mem_limit; /* 0: no limit */
	unsigned hugepages; /* enum conf_hugepages */
	bool offload;

	char config_file[CONF_PATH_LEN]; /* empty: no rules file */
	char application_id[CONF_APPID_LEN];
	char stats_dir[CONF_PATH_LEN];  /* empty: statistics not published */
	char stats_file[CONF_PATH_LEN]; /* empty: no per-socket lines at close */
	uint32_t stats_sockets;         /* socket blocks in the statistics file */
	char pcap[CONF_PATH_LEN];       /* empty: no capture */
	char ports_text[CONF_PORTS_LEN];
	struct pspec ports[PSPEC_MAX]; /* XRING_PORTS, parsed */
	unsigned nports;
};

/* conf_param.flags */
enum {
	CONF_F_ZERO = 1u << 0, /* 0 is accepted outside [min, max] and means "automatic" */
	CONF_F_PID = 1u << 1,  /* a path template: %d becomes the pid, %% a percent sign */
	CONF_F_WORD = 1u << 2, /* printable, no blanks: it appears as a token in the rules file */
};

struct conf_param {
	const char *name;
	enum conf_type type;
	const char *def;            /* default, as the user would write it */
	uint64_t min, max;          /* CONF_INT, CONF_SIZE */
	const char *const *choices; /* CONF_ENUM: NULL-terminated */
	unsigned flags;
	size_t off, size; /* field in struct xring_conf */
	const char *zero; /* CONF_F_ZERO: what 0 means */
	const char *desc;
};

/* The table, in documentation order. */
const struct conf_param *conf_params(size_t *count);
const struct conf_param *conf_param_find(const char *name);

/* The accepted values of p as a phrase, e.g. "an integer from 1 to 32768". */
void conf_param_range(const struct conf_param *p, char *buf, size_t len);
/* The value p has in c, as text that parses back to the same value. */
void conf_param_format(const struct conf_param *p, const struct xring_conf *c, char *buf,
		       size_t len);

/*
 * Parses text v as p's value into c, checking p's own range only (conf_load_from() also checks
 * how parameters relate). -EINVAL with "NAME='v': why; accepted: range" in err.
 */
int conf_param_set(const struct conf_param *p, struct xring_conf *c, const char *v, char *err,
		   size_t errlen);

/* Every parameter at its default. */
void conf_defaults(struct xring_conf *c);

typedef const char *(*conf_getenv_fn)(const char *name, void *ctx);

/*
 * Reads every parameter through get (getenv when NULL), validates each value and the relations
 * between them, and parses XRING_PORTS. On -EINVAL *out is left at the defaults plus whatever
 * parsed before the failure, and err holds one line naming the variable.
 */
int conf_load_from(struct xring_conf *out, conf_getenv_fn get, void *ctx, char *err, size_t errlen);
int conf_load(struct xring_conf *out, char *err, size_t errlen);

/*
 * Calls fn for every parameter whose value in c differs from its default, in table order, with
 * both values as text; returns how many. Used to log the effective configuration at start.
 */
typedef void (*conf_changed_fn)(void *ctx, const struct conf_param *p, const char *value,
				const char *def);
unsigned conf_for_each_changed(const struct xring_conf *c, conf_changed_fn fn, void *ctx);

/*
 * Calls fn for every XRING_* variable in envp (NAME=VALUE strings, NULL-terminated) that is not a
 * parameter, typically a misspelling; returns how many.
 */
unsigned conf_for_each_unknown(char *const *envp, void (*fn)(void *ctx, const char *entry),
			       void *ctx);

/*
 * The start-up report: logs (info) each parameter that differs from its default and warns about
 * each unknown XRING_* variable in envp (environ when NULL).
 */
void conf_log(const struct xring_conf *c, char *const *envp);

/* Expands a CONF_F_PID template. Returns the length, or -ENAMETOOLONG when it does not fit. */
int conf_expand_pid(const char *tmpl, int pid, char *buf, size_t len);

/*
 * The process-wide configuration: loaded from the environment on the first call, the same
 * result (and message) on every later one. Thread-safe.
 */
int conf_get(const struct xring_conf **out, char *err, size_t errlen);

#endif
