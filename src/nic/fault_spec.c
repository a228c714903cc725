/* Fault specs: the text form of a fault_config, as configuration strings carry it. */
#include "nic/fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

/* "1%", "0.5%" or a fraction "0.01" → parts per million. */
static int fs_rate(const char *v, uint32_t *ppm)
{
	char *end;
	double x = strtod(v, &end);

	if (end == v)
		return -EINVAL;
	if (*end == '%') {
		x /= 100;
		end++;
	}
	if (*end || !(x >= 0 && x <= 1))
		return -EINVAL;
	*ppm = (uint32_t) (x * 1e6 + 0.5);
	return 0;
}

static int fs_time(const char *v, uint64_t *ns)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
	char *end;
	double x = strtod(v, &end);

	if (end == v || !(x >= 0 && x < 1e9))
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].unit)) {
			*ns = (uint64_t) (x * units[i].mult + 0.5);
			return 0;
		}
	}
	return -EINVAL;
}

static int fs_uint(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 0);
	if (*end || errno || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

static uint32_t *fs_rate_field(struct fault_rates *r, const char *name)
{
	if (!strcmp(name, "drop"))
		return &r->drop;
	if (!strcmp(name, "dup"))
		return &r->duplicate;
	if (!strcmp(name, "reorder"))
		return &r->reorder;
	if (!strcmp(name, "corrupt"))
		return &r->corrupt;
	if (!strcmp(name, "delay"))
		return &r->delay;
	return NULL;
}

static int fs_pair(char *key, const char *v, struct fault_config *c)
{
	uint64_t x;
	uint32_t ppm, *tx, *rx;
	int err;

	if (!strcmp(key, "seed"))
		return fs_uint(v, UINT64_MAX, &c->seed);
	if (!strcmp(key, "latency"))
		return fs_time(v, &c->delay_ns);
	if (!strcmp(key, "jitter"))
		return fs_time(v, &c->jitter_ns);
	if (!strcmp(key, "reorder-wait"))
		return fs_time(v, &c->reorder_ns);
	if (!strcmp(key, "hold") || !strcmp(key, "bufsize")) {
		err = fs_uint(v, 1u << 20, &x);
		if (!err)
			*(key[0] == 'h' ? &c->hold : &c->buf_size) = (unsigned) x;
		return err;
	}
	tx = fs_rate_field(&c->tx, key);
	rx = fs_rate_field(&c->rx, key);
	if (!strncmp(key, "tx-", 3)) {
		tx = fs_rate_field(&c->tx, key + 3);
		rx = NULL;
		if (!tx)
			return -ENOENT;
	} else if (!strncmp(key, "rx-", 3)) {
		rx = fs_rate_field(&c->rx, key + 3);
		tx = NULL;
		if (!rx)
			return -ENOENT;
	} else if (!tx) {
		return -ENOENT;
	}
	err = fs_rate(v, &ppm);
	if (err)
		return err;
	if (tx)
		*tx = ppm;
	if (rx)
		*rx = ppm;
	return 0;
}

int fault_parse(const char *spec, struct fault_config *cfg, char *err, size_t errlen)
{
	char buf[512], *save = NULL;
	struct fault_config c;

	if (!spec || !cfg)
		return -EINVAL;
	if (strlen(spec) >= sizeof(buf)) {
		if (err)
			snprintf(err, errlen, "fault spec longer than %zu bytes", sizeof(buf) - 1);
		return -EINVAL;
	}
	strcpy(buf, spec);
	c = *cfg;
	for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		int r;

		if (!eq) {
			if (err)
				snprintf(err, errlen, "fault spec: '%s' is not key=value", kv);
			return -EINVAL;
		}
		*eq = 0;
		r = fs_pair(kv, eq + 1, &c);
		if (r) {
			if (err && r == -ENOENT)
				snprintf(err, errlen, "fault spec: unknown key '%s'", kv);
			else if (err)
				snprintf(err, errlen, "fault spec: bad value '%s' for '%s'", eq + 1,
					 kv);
			return -EINVAL;
		}
	}
	*cfg = c;
	return 0;
}

uint64_t fault_clock_monotonic(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int fault_wrap_env(struct port **p)
{
	const char *v = getenv("XRING_FAULT");
	struct fault_config c = {.now = fault_clock_monotonic};
	struct port *out;
	char err[160];
	int r;

	if (!v || !*v)
		return 0;
	if (!p || !*p)
		return -EINVAL;
	r = fault_parse(v, &c, err, sizeof(err));
	if (r) {
		log_error("XRING_FAULT: %s", err);
		return r;
	}
	r = fault_wrap(*p, &c, &out);
	if (r)
		return r;
	log_info("fault: injecting '%s' on %s", v, (*p)->name);
	*p = out;
	return 1;
}
