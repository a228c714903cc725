/*
 * Parameters: the input is NAME=VALUE lines, offered as the environment. Whatever loads must be
 * in range, and every value must format to text that parses back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/params.h"

#define MAX_VARS 32

struct env {
	char *name[MAX_VARS], *value[MAX_VARS];
	unsigned n;
};

static const char *get(const char *name, void *ctx)
{
	struct env *e = ctx;

	for (unsigned i = 0; i < e->n; i++)
		if (!strcmp(e->name[i], name))
			return e->value[i];
	return NULL;
}

static struct xring_conf conf, again;
static char text[CONF_PORTS_LEN + CONF_PATH_LEN], buf[CONF_PORTS_LEN], buf2[CONF_PORTS_LEN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env e = {0};
	char err[CONF_ERR_LEN] = "";
	size_t n, np;
	const struct conf_param *p = conf_params(&np);
	int ret;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* The whole input as the value of the parameter its first byte picks. */
	if (size) {
		const struct conf_param *q = &p[data[0] % np];

		memset(&conf, 0, sizeof(conf));
		if (conf_param_set(q, &conf, text + 1, err, sizeof(err)) == 0) {
			conf_param_format(q, &conf, buf, sizeof(buf));
			memset(&again, 0, sizeof(again));
			if (conf_param_set(q, &again, buf, NULL, 0))
				abort();
			conf_param_format(q, &again, buf2, sizeof(buf2));
			if (strcmp(buf, buf2))
				abort();
		} else if (!strstr(err, q->name)) {
			abort();
		}
		if (q->flags & CONF_F_PID)
			conf_expand_pid(text + 1, 12345, buf, sizeof(buf));
	}

	for (char *s = text; e.n < MAX_VARS;) {
		char *nl = strchr(s, '\n'), *eq;

		if (nl)
			*nl = '\0';
		eq = strchr(s, '=');
		if (eq) {
			*eq = '\0';
			e.name[e.n] = s;
			e.value[e.n++] = eq + 1;
		}
		if (!nl)
			break;
		s = nl + 1;
	}
	err[0] = '\0';
	ret = conf_load_from(&conf, get, &e, err, sizeof(err));
	if (ret) {
		if (!err[0])
			abort();
		return 0;
	}
	for (size_t i = 0; i < np; i++) {
		conf_param_format(&p[i], &conf, buf, sizeof(buf));
		memset(&again, 0, sizeof(again));
		if (conf_param_set(&p[i], &again, buf, err, sizeof(err)))
			abort();
	}
	if (conf.cq_entries && conf.cq_entries < conf.sq_entries)
		abort();
	n = conf_for_each_changed(&conf, NULL, NULL);
	if (n > np || conf.nports > PSPEC_MAX)
		abort();
	return 0;
}
