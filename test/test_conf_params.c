#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/params.h"

/* A fake environment, so no test touches the real one. */
struct env {
	const char *kv[16][2];
	unsigned n;
};

static const char *env_get(const char *name, void *ctx)
{
	struct env *e = ctx;

	for (unsigned i = 0; i < e->n; i++)
		if (!strcmp(e->kv[i][0], name))
			return e->kv[i][1];
	return NULL;
}

static int load(struct xring_conf *c, char *err, struct env e)
{
	return conf_load_from(c, env_get, &e, err, CONF_ERR_LEN);
}

static struct xring_conf conf; /* large: keep it off the test's stack */

Test(conf_params, every_default_in_the_table_parses_and_formats_back_to_itself)
{
	size_t n;
	const struct conf_param *p = conf_params(&n);
	char err[CONF_ERR_LEN], buf[CONF_PATH_LEN];

	cr_assert_gt(n, 28);
	for (size_t i = 0; i < n; i++) {
		memset(&conf, 0, sizeof(conf));
		cr_assert_eq(conf_param_set(&p[i], &conf, p[i].def, err, sizeof(err)), 0, "%s: %s",
			     p[i].name, err);
		conf_param_format(&p[i], &conf, buf, sizeof(buf));
		cr_assert_str_eq(buf, p[i].def, "%s", p[i].name);
	}
}

Test(conf_params, an_empty_environment_loads_the_defaults_and_nothing_differs)
{
	char err[CONF_ERR_LEN] = "";

	cr_assert_eq(load(&conf, err, (struct env){0}), 0, "%s", err);
	cr_assert_eq(conf.sq_entries, 128);
	cr_assert_eq(conf.log_level, 2); /* warn */
	cr_assert_eq(conf.buf_size, 2048);
	cr_assert(conf.offload);
	cr_assert(conf.tcp_timestamps);
	cr_assert_str_eq(conf.config_file, "/etc/libxring.conf");
	cr_assert_eq(conf.nports, 0);
	cr_assert_eq(conf_for_each_changed(&conf, NULL, NULL), 0);
}

Test(conf_params, every_parameter_has_a_unique_name_a_description_and_a_field_that_holds_its_max)
{
	size_t n;
	const struct conf_param *p = conf_params(&n);

	for (size_t i = 0; i < n; i++) {
		cr_assert(!strncmp(p[i].name, "XRING_", 6), "%s", p[i].name);
		cr_assert(p[i].desc && *p[i].desc, "%s", p[i].name);
		cr_assert_eq(conf_param_find(p[i].name), &p[i], "%s is listed twice", p[i].name);
		cr_assert_leq(p[i].off + p[i].size, sizeof(struct xring_conf));
		if (p[i].type == CONF_INT || p[i].type == CONF_SIZE) {
			cr_assert_leq(p[i].min, p[i].max, "%s", p[i].name);
			if (p[i].size < 8)
				cr_assert_lt(p[i].max, 1ull << (8 * p[i].size), "%s", p[i].name);
			cr_assert(!(p[i].flags & CONF_F_ZERO) || p[i].zero, "%s", p[i].name);
		}
		if (p[i].type == CONF_BOOL)
			cr_assert_eq(p[i].size, sizeof(bool), "%s", p[i].name);
		if (p[i].type == CONF_ENUM)
			cr_assert_eq(p[i].size, sizeof(unsigned), "%s", p[i].name);
	}
	cr_assert_null(conf_param_find("XRING_NOPE"));
}

/* Asserts that v is refused for p, with a message naming p and its accepted range. */
static void refused(const struct conf_param *p, const char *v)
{
	char err[CONF_ERR_LEN] = "", range[160];

	conf_param_range(p, range, sizeof(range));
	cr_assert_eq(conf_param_set(p, &conf, v, err, sizeof(err)), -EINVAL, "%s='%s' accepted",
		     p->name, v);
	cr_assert(strstr(err, p->name), "message '%s' does not name %s", err, p->name);
	cr_assert(strstr(err, range), "message '%s' does not give the range '%s'", err, range);
}

static void accepted(const struct conf_param *p, const char *v, const char *as)
{
	char err[CONF_ERR_LEN] = "", buf[CONF_PORTS_LEN];

	cr_assert_eq(conf_param_set(p, &conf, v, err, sizeof(err)), 0, "%s='%s': %s", p->name, v,
		     err);
	conf_param_format(p, &conf, buf, sizeof(buf));
	cr_assert_str_eq(buf, as, "%s='%s' read as '%s'", p->name, v, buf);
}

Test(conf_params, every_number_is_accepted_at_its_bounds_and_refused_beyond_or_malformed)
{
	static const char *const junk[] = {"",
					   "abc",
					   "12x",
					   "-1",
					   "+1",
					   " 1",
					   "1 ",
					   "0x10",
					   "1.5",
					   "99999999999999999999999",
					   "18446744073709551616"};
	size_t n;
	const struct conf_param *p = conf_params(&n);
	char v[64];

	for (size_t i = 0; i < n; i++) {
		if (p[i].type != CONF_INT && p[i].type != CONF_SIZE)
			continue;
		memset(&conf, 0, sizeof(conf));
		/* Plain digits: sizes take them as bytes. */
		sprintf(v, "%" PRIu64, p[i].min);
		cr_assert_eq(conf_param_set(&p[i], &conf, v, NULL, 0), 0, "%s=%s", p[i].name, v);
		sprintf(v, "%" PRIu64, p[i].max);
		cr_assert_eq(conf_param_set(&p[i], &conf, v, NULL, 0), 0, "%s=%s", p[i].name, v);
		sprintf(v, "%" PRIu64, p[i].max + 1);
		refused(&p[i], v);
		if (p[i].min > 0) {
			sprintf(v, "%" PRIu64, p[i].min - 1);
			if (p[i].min - 1 == 0 && (p[i].flags & CONF_F_ZERO))
				accepted(&p[i], v, "0");
			else
				refused(&p[i], v);
		}
		for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++)
			refused(&p[i], junk[j]);
	}
}

Test(conf_params, every_boolean_takes_the_usual_spellings_and_nothing_else)
{
	static const char *const yes[] = {"1", "yes", "on", "true", "YES", "On", "TRUE"};
	static const char *const no[] = {"0", "no", "off", "false", "NO", "Off", "False"};
	static const char *const bad[] = {"", "2", "y", "n", "maybe", "01", "true ", "-1"};
	size_t n, seen = 0;
	const struct conf_param *p = conf_params(&n);

	for (size_t i = 0; i < n; i++) {
		if (p[i].type != CONF_BOOL)
			continue;
		seen++;
		for (size_t j = 0; j < sizeof(yes) / sizeof(yes[0]); j++) {
			accepted(&p[i], yes[j], "1");
			accepted(&p[i], no[j], "0");
		}
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
			refused(&p[i], bad[j]);
	}
	cr_assert_eq(seen, 5);
}

Test(conf_params, every_enum_takes_each_of_its_names_exactly_and_refuses_others)
{
	size_t n, seen = 0;
	const struct conf_param *p = conf_params(&n);
	char upper[32];

	for (size_t i = 0; i < n; i++) {
		if (p[i].type != CONF_ENUM)
			continue;
		seen++;
		for (int j = 0; p[i].choices[j]; j++) {
			accepted(&p[i], p[i].choices[j], p[i].choices[j]);
			snprintf(upper, sizeof(upper), "%s", p[i].choices[j]);
			upper[0] = (char) (upper[0] - 32);
			refused(&p[i], upper);
		}
		refused(&p[i], "");
		refused(&p[i], "bogus");
		refused(&p[i], "0");
	}
	cr_assert_eq(seen, 3);
}

Test(conf_params, every_string_and_path_refuses_overlong_values_and_control_characters)
{
	static char big[CONF_PORTS_LEN + 2];
	size_t n;
	const struct conf_param *p = conf_params(&n);

	for (size_t i = 0; i < n; i++) {
		if (p[i].type != CONF_STRING && p[i].type != CONF_PATH)
			continue;
		memset(big, 'a', p[i].size);
		big[p[i].size] = '\0';
		refused(&p[i], big);
		big[p[i].size - 1] = '\0';
		if (strcmp(p[i].name, "XRING_PORTS")) /* "aaa…" is not a port spec, see below */
			accepted(&p[i], big, big);
		refused(&p[i], "a\nb");
		refused(&p[i], "tab\there");
		accepted(&p[i], "", "");
	}
}

/* Values with a meaning of their own, beyond the generic bounds. */
static const struct {
	const char *name, *value, *reads_as;
} good[] = {
	{"XRING_LOG_LEVEL", "debug", "debug"},
	{"XRING_LOG_FILE", "/tmp/xring.%d.log", "/tmp/xring.%d.log"},
	{"XRING_LOG_FILE", "/tmp/100%%.log", "/tmp/100%%.log"},
	{"XRING_BUF_SIZE", "4K", "4K"},
	{"XRING_BUF_SIZE", "4k", "4K"},
	{"XRING_BUF_SIZE", "4096", "4K"},
	{"XRING_BUF_SIZE", "1000", "1000"},
	{"XRING_BUF_SIZE", "64K", "64K"},
	{"XRING_TCP_RMEM", "1G", "1G"},
	{"XRING_TCP_RMEM", "1m", "1M"},
	{"XRING_TCP_WMEM", "1536K", "1536K"},
	{"XRING_MEM_LIMIT", "1024G", "1024G"},
	{"XRING_MEM_LIMIT", "0", "0"},
	{"XRING_CQ_ENTRIES", "0", "0"},
	{"XRING_MTU", "9000", "9000"},
	{"XRING_MSS", "1460", "1460"},
	{"XRING_TCP_CC", "newreno", "newreno"},
	{"XRING_HUGEPAGES", "on", "on"},
	{"XRING_APPLICATION_ID", "web-frontend_2", "web-frontend_2"},
	{"XRING_PCAP", "/tmp/cap-%d.pcap", "/tmp/cap-%d.pcap"},
	{"XRING_STATS_FILE", "/tmp/stats-%d.txt", "/tmp/stats-%d.txt"},
	{"XRING_STATS_SOCKETS", "0", "0"},
	{"XRING_STATS_SOCKETS", "65536", "65536"},
	{"XRING_PORTS", "xdp:dev=veth0", "xdp:dev=veth0"},
	{"XRING_SPIN_US", "0", "0"},
	{"XRING_TCP_TIMEWAIT_MS", "0", "0"},
};

static const struct {
	const char *name, *value;
} bad[] = {
	{"XRING_LOG_LEVEL", "verbose"},
	{"XRING_LOG_LEVEL", "3"},
	{"XRING_LOG_FILE", "/tmp/x.%s"},
	{"XRING_LOG_FILE", "/tmp/x.%"},
	{"XRING_PCAP", "/tmp/%p.pcap"},
	{"XRING_STATS_FILE", "/tmp/stats.%x"},
	{"XRING_STATS_SOCKETS", "65537"},
	{"XRING_STATS_SOCKETS", "-1"},
	{"XRING_BUF_SIZE", "4KB"},
	{"XRING_BUF_SIZE", "K"},
	{"XRING_BUF_SIZE", "4T"},
	{"XRING_BUF_SIZE", "511"},
	{"XRING_BUF_SIZE", "65537"},
	{"XRING_TCP_RMEM", "2G"},
	{"XRING_TCP_RMEM", "17179869184G"},
	{"XRING_MEM_LIMIT", "1025G"},
	{"XRING_MEM_LIMIT", "1023K"},
	{"XRING_MTU", "575"},
	{"XRING_MTU", "65536"},
	{"XRING_MSS", "535"},
	{"XRING_SQ_ENTRIES", "0"},
	{"XRING_SQ_ENTRIES", "-5"},
	{"XRING_SQ_ENTRIES", "4294967424"}, /* 2^32 + 128: would wrap to 128 in 32 bits */
	{"XRING_TCP_CC", "reno"},
	{"XRING_TCP_CC", "bbr"},
	{"XRING_HUGEPAGES", "yes"},
	{"XRING_APPLICATION_ID", "two words"},
	{"XRING_APPLICATION_ID", "a#b"},
	{"XRING_APPLICATION_ID", "*"},
	{"XRING_OFFLOAD", "enabled"},
};

Test(conf_params, values_with_a_meaning_of_their_own_read_back_as_expected)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const struct conf_param *p = conf_param_find(good[i].name);

		cr_assert_not_null(p, "%s", good[i].name);
		accepted(p, good[i].value, good[i].reads_as);
	}
	cr_assert_eq(conf_param_set(conf_param_find("XRING_TCP_RMEM"), &conf, "3M", NULL, 0), 0);
	cr_assert_eq(conf.tcp_rmem, 3u << 20);
}

Test(conf_params, malformed_or_out_of_range_values_are_refused_naming_the_variable)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct conf_param *p = conf_param_find(bad[i].name);

		cr_assert_not_null(p, "%s", bad[i].name);
		refused(p, bad[i].value);
	}
}

Test(conf_params, load_refuses_a_bad_value_instead_of_defaulting_it)
{
	char err[CONF_ERR_LEN] = "";
	struct env e = {{{"XRING_SQ_ENTRIES", "256"}, {"XRING_RX_BUFS", "lots"}}, 2};

	cr_assert_eq(load(&conf, err, e), -EINVAL);
	cr_assert_str_eq(err,
			 "XRING_RX_BUFS='lots': not a decimal integer; accepted: 64 to 1048576");
}

Test(conf_params, load_reads_every_variable_it_is_given)
{
	char err[CONF_ERR_LEN] = "";
	struct env e = {{{"XRING_SQ_ENTRIES", "256"},
			 {"XRING_CQ_ENTRIES", "1024"},
			 {"XRING_LOG_LEVEL", "debug"},
			 {"XRING_TCP_NODELAY", "on"},
			 {"XRING_TCP_CC", "newreno"},
			 {"XRING_BUF_SIZE", "4K"},
			 {"XRING_PORTS", "memif:ip=198.18.0.1/24;xdp:dev=veth0"},
			 {"XRING_APPLICATION_ID", "db"}},
			8};

	cr_assert_eq(load(&conf, err, e), 0, "%s", err);
	cr_assert_eq(conf.sq_entries, 256);
	cr_assert_eq(conf.cq_entries, 1024);
	cr_assert_eq(conf.log_level, 4);
	cr_assert(conf.tcp_nodelay);
	cr_assert_eq(conf.tcp_cc, CONF_CC_NEWRENO);
	cr_assert_eq(conf.buf_size, 4096);
	cr_assert_eq(conf.nports, 2);
	cr_assert_eq(conf.ports[0].kind, PSPEC_MEMIF);
	cr_assert_str_eq(conf.ports[1].xdp.dev, "veth0");
	cr_assert_str_eq(conf.application_id, "db");
}

Test(conf_params, a_bad_port_spec_fails_the_load_naming_xring_ports_and_the_spec)
{
	char err[CONF_ERR_LEN] = "";
	struct env e = {{{"XRING_PORTS", "xdp:dev=veth0;xdp:dev=veth1,mode=turbo"}}, 1};

	cr_assert_eq(load(&conf, err, e), -EINVAL);
	cr_assert(strstr(err, "XRING_PORTS"), "%s", err);
	cr_assert(strstr(err, "spec 2"), "%s", err);
	cr_assert(strstr(err, "'mode'"), "%s", err);
}

Test(conf_params, parameters_that_contradict_each_other_are_refused_naming_both)
{
	static const struct {
		const char *a, *va, *b, *vb;
	} cases[] = {
		{"XRING_SQ_ENTRIES", "256", "XRING_CQ_ENTRIES", "128"},
		{"XRING_RX_BUFS", "64", "XRING_RX_QUEUE_DEPTH", "128"},
		{"XRING_TX_BUFS", "100", "XRING_TX_QUEUE_DEPTH", "101"},
		{"XRING_MTU", "1500", "XRING_MSS", "1461"},
		{"XRING_MEM_LIMIT", "8M", "XRING_BUF_SIZE", "2K"}, /* 8192 bufs * 2K = 16M */
	};
	char err[CONF_ERR_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env e = {{{cases[i].a, cases[i].va}, {cases[i].b, cases[i].vb}}, 2};

		err[0] = '\0';
		cr_assert_eq(load(&conf, err, e), -EINVAL, "%s=%s %s=%s accepted", cases[i].a,
			     cases[i].va, cases[i].b, cases[i].vb);
		cr_assert(strstr(err, cases[i].a) && strstr(err, cases[i].b), "%s", err);
	}
	/* And their edges are fine. */
	struct env ok = {{{"XRING_SQ_ENTRIES", "256"},
			  {"XRING_CQ_ENTRIES", "256"},
			  {"XRING_MTU", "1500"},
			  {"XRING_MSS", "1460"},
			  {"XRING_MEM_LIMIT", "16M"},
			  {"XRING_RX_BUFS", "1024"}},
			 6};
	cr_assert_eq(load(&conf, err, ok), 0, "%s", err);
}

struct changed {
	char lines[8][128];
	unsigned n;
};

static void on_changed(void *ctx, const struct conf_param *p, const char *value, const char *def)
{
	struct changed *ch = ctx;

	if (ch->n < 8)
		snprintf(ch->lines[ch->n], sizeof(ch->lines[0]), "%s=%s (default %s)", p->name,
			 value, def);
	ch->n++;
}

Test(conf_params, the_startup_list_names_exactly_the_parameters_that_differ_from_their_default)
{
	char err[CONF_ERR_LEN] = "";
	struct changed ch = {0};
	/* XRING_TCP_CC is given at its default, so it is not a change; 2048 is 2K, the default. */
	struct env e = {{{"XRING_TCP_CC", "cubic"},
			 {"XRING_BUF_SIZE", "2048"},
			 {"XRING_TCP_RMEM", "1048576"},
			 {"XRING_OFFLOAD", "off"},
			 {"XRING_LOG_FILE", "/tmp/l.%d"}},
			5};

	cr_assert_eq(load(&conf, err, e), 0, "%s", err);
	cr_assert_eq(conf_for_each_changed(&conf, on_changed, &ch), 3);
	cr_assert_str_eq(ch.lines[0], "XRING_LOG_FILE=/tmp/l.%d (default )");
	cr_assert_str_eq(ch.lines[1], "XRING_TCP_RMEM=1M (default 256K)");
	cr_assert_str_eq(ch.lines[2], "XRING_OFFLOAD=0 (default 1)");
}

static void on_unknown(void *ctx, const char *entry)
{
	*(const char **) ctx = entry;
}

Test(conf_params, a_misspelt_variable_is_reported_and_others_are_not)
{
	char *envp[] = {"PATH=/bin", "XRING_SQ_ENTRIES=4",  "XRING_SQ_ENTRYS=4",
			"XRINGX=1",  "XRING_SQ_ENTRIES_=1", "XRING_PORTS",
			NULL};
	const char *last = NULL;

	cr_assert_eq(conf_for_each_unknown(envp, on_unknown, &last), 2);
	cr_assert_str_eq(last, "XRING_SQ_ENTRIES_=1");
}

Test(conf_params, pid_templates_expand_percent_d_and_percent_percent)
{
	char buf[32];

	cr_assert_eq(conf_expand_pid("/tmp/x.%d.log", 4242, buf, sizeof(buf)), 15);
	cr_assert_str_eq(buf, "/tmp/x.4242.log");
	cr_assert_eq(conf_expand_pid("%%d-%d%%", 7, buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "%d-7%");
	cr_assert_eq(conf_expand_pid("", 7, buf, sizeof(buf)), 0);
	cr_assert_eq(conf_expand_pid("/a/b/%d", 123456, buf, 11), -ENAMETOOLONG);
	cr_assert_eq(conf_expand_pid("/a/b/%d", 123456, buf, 12), 11);
}

Test(conf_params, the_process_configuration_is_loaded_once)
{
	const struct xring_conf *a = NULL, *b = NULL;
	char e1[CONF_ERR_LEN] = "", e2[CONF_ERR_LEN] = "";
	int r1 = conf_get(&a, e1, sizeof(e1)), r2 = conf_get(&b, e2, sizeof(e2));

	cr_assert_eq(r1, r2);
	cr_assert_str_eq(e1, e2);
	cr_assert_eq(a, b);
}

/* man/xring-params.7 lists exactly the table's parameters, each with its default and range. */
Test(conf_params, the_man_page_documents_exactly_the_parameters_in_the_table)
{
	static char page[64 * 1024];
	FILE *f = fopen(XRING_SOURCE_DIR "/man/xring-params.7", "r");
	size_t n, len, found = 0;
	const struct conf_param *p = conf_params(&n);

	cr_assert_not_null(f);
	len = fread(page, 1, sizeof(page) - 1, f);
	fclose(f);
	cr_assert_lt(len, sizeof(page) - 1);
	page[len] = '\0';

	/* Every ".B XRING_..." item line must be a table entry... */
	for (char *s = page; (s = strstr(s, "\n.TP\n.B XRING_"));) {
		char name[64];
		const struct conf_param *q;

		s += 8;
		cr_assert_eq(sscanf(s, "%63[A-Z0-9_]", name), 1);
		q = conf_param_find(name);
		cr_assert_not_null(q, "man page documents %s, which the table lacks", name);
		found++;
	}
	/* ...and every entry has one, with "Default:" and "Accepted:" lines matching the table. */
	for (size_t i = 0; i < n; i++) {
		char head[80], want[256], range[160];
		char *item, *next;

		snprintf(head, sizeof(head), "\n.TP\n.B %s\n", p[i].name);
		item = strstr(page, head);
		cr_assert_not_null(item, "man page lacks %s", p[i].name);
		cr_assert_null(strstr(item + 1, head), "man page lists %s twice", p[i].name);
		next = strstr(item + 1, "\n.TP\n"); /* end the item after its last newline */
		if (next)
			*++next = '\0';
		snprintf(want, sizeof(want), "\nDefault: %s.\n", *p[i].def ? p[i].def : "empty");
		cr_assert(strstr(item, want), "%s: no line '%s'", p[i].name, want + 1);
		conf_param_range(&p[i], range, sizeof(range));
		snprintf(want, sizeof(want), "\nAccepted: %s.\n", range);
		cr_assert(strstr(item, want), "%s: no line '%s'", p[i].name, want + 1);
		if (next)
			*next = '.';
	}
	cr_assert_eq(found, n);
}

Test(conf_params, the_startup_report_warns_about_unknown_variables, .init = cr_redirect_stderr)
{
	char *envp[] = {"XRING_SQ_ENTRYS=4", "HOME=/root", NULL};

	conf_defaults(&conf);
	conf_log(&conf, envp);
	fflush(stderr);
	fclose(stderr); /* ends the redirected stream, so the read below sees all of it */

	char out[512] = "";
	size_t n = fread(out, 1, sizeof(out) - 1, cr_get_redirected_stderr());

	out[n] = '\0';
	cr_assert(strstr(out, "warn: XRING_SQ_ENTRYS=4: not an xring parameter, ignored\n"), "%s",
		  out);
	cr_assert_null(strstr(out, "HOME"));
}
