#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "conf/rules.h"

static struct rules rules; /* large: keep it off the test's stack */

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1, "%s", s);
	return a.s_addr;
}

static enum rules_verdict match(enum rules_role role, const char *addr, unsigned port)
{
	return rules_match(&rules, role, ip(addr), htons((uint16_t) port), NULL);
}

static int load(const char *text, char *err)
{
	return rules_load_buf(&rules, "test.conf", text, strlen(text), err, 256);
}

Test(conf_rules, with_no_rules_nothing_matches)
{
	rules_init(&rules, "prog", "");
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", 80), RULES_NO_MATCH);
}

Test(conf_rules, comments_and_blank_lines_are_ignored)
{
	char err[256] = "";

	rules_init(&rules, "prog", "");
	cr_assert_eq(
		load("# a comment\n\n   \t\n  # indented comment\nuse os tcp_client *:80 # why\n",
		     err),
		0, "%s", err);
	cr_assert_eq(rules.nfile, 1);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", 80), RULES_OS);
}

Test(conf_rules, the_first_matching_rule_wins)
{
	char err[256] = "";
	const struct rule *which;

	rules_init(&rules, "prog", "");
	cr_assert_eq(load("use os tcp_client 198.18.1.0/24:*\n"
			  "use xring tcp_client 198.18.0.0/16:*\n"
			  "use os tcp_client *:*\n",
			  err),
		     0, "%s", err);
	cr_assert_eq(rules_match(&rules, RULES_TCP_CLIENT, ip("198.18.1.7"), htons(9), &which),
		     RULES_OS);
	cr_assert_eq(which->line, 1);
	cr_assert_eq(rules_match(&rules, RULES_TCP_CLIENT, ip("198.18.2.7"), htons(9), &which),
		     RULES_XRING);
	cr_assert_eq(which->line, 2);
	cr_assert_eq(rules_match(&rules, RULES_TCP_CLIENT, ip("198.19.0.1"), htons(9), &which),
		     RULES_OS);
	cr_assert_eq(which->line, 3);
}

Test(conf_rules, a_rule_matches_only_its_own_role)
{
	static const char *const roles[] = {"tcp_client", "tcp_server", "udp_sender",
					    "udp_receiver", "udp_connect"};
	char err[256], line[128];

	for (int r = 0; r < 5; r++) {
		rules_init(&rules, "prog", "");
		snprintf(line, sizeof(line), "use os %s *:*", roles[r]);
		cr_assert_eq(load(line, err), 0, "%s", err);
		for (int q = 0; q < 5; q++)
			cr_assert_eq(match((enum rules_role) q, "198.18.0.1", 1),
				     q == r ? RULES_OS : RULES_NO_MATCH, "%s vs %s", roles[r],
				     rules_role_name((enum rules_role) q));
	}
}

Test(conf_rules, addresses_match_by_prefix_and_ports_by_inclusive_range)
{
	static const struct {
		const char *addr;
		unsigned port;
		enum rules_verdict want;
	} cases[] = {
		{"198.18.4.1", 5000, RULES_XRING},
		{"198.18.7.255", 5999, RULES_XRING},
		{"198.18.8.0", 5000, RULES_NO_MATCH},
		{"198.18.3.255", 5000, RULES_NO_MATCH},
		{"198.18.4.1", 4999, RULES_NO_MATCH},
		{"198.18.4.1", 6000, RULES_NO_MATCH},
		{"198.19.0.1", 53, RULES_OS},
		{"198.19.0.2", 53, RULES_NO_MATCH},
		{"10.0.0.1", 7, RULES_OS},
		{"10.0.0.1", 8, RULES_NO_MATCH},
	};
	char err[256] = "";

	rules_init(&rules, "prog", "");
	/* Host bits in the address are masked off, as "198.18.5.9/22" means 198.18.4.0/22. */
	cr_assert_eq(load("use xring udp_sender 198.18.5.9/22:5000-5999\n"
			  "use os udp_sender 198.19.0.1:53\n"
			  "use os udp_sender 0.0.0.0/0:7\n",
			  err),
		     0, "%s", err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(match(RULES_UDP_SENDER, cases[i].addr, cases[i].port), cases[i].want,
			     "%s:%u", cases[i].addr, cases[i].port);
}

static const char sections[] = "use os tcp_server *:1\n"         /* everyone */
			       "application-id redis-server *\n" /* the program, any id */
			       "use os tcp_server *:2\n"
			       "application-id * cache\n" /* any program with id "cache" */
			       "use os tcp_server *:3\n"
			       "application-id redis-server cache\n" /* both */
			       "use os tcp_server *:4\n"
			       "application-id * *\n" /* back to everyone */
			       "use os tcp_server *:5\n";

static unsigned applying(const char *program, const char *id)
{
	char err[256] = "";
	unsigned mask = 0;

	rules_init(&rules, program, id);
	cr_assert_eq(load(sections, err), 0, "%s", err);
	for (unsigned p = 1; p <= 5; p++)
		if (match(RULES_TCP_SERVER, "198.18.0.1", p) == RULES_OS)
			mask |= 1u << p;
	return mask;
}

Test(conf_rules, application_id_sections_apply_by_program_name_and_application_id)
{
	cr_assert_eq(applying("redis-server", "cache"), 0x3e);  /* 1 2 3 4 5 */
	cr_assert_eq(applying("redis-server", ""), 0x26);       /* 1 2 5 */
	cr_assert_eq(applying("redis-server", "other"), 0x26);  /* 1 2 5 */
	cr_assert_eq(applying("nginx", "cache"), 0x2a);         /* 1 3 5 */
	cr_assert_eq(applying("nginx", ""), 0x22);              /* 1 5 */
	cr_assert_eq(applying("", ""), 0x22);                   /* 1 5 */
	cr_assert_eq(applying("redis-server-2", "cach"), 0x22); /* names match whole */
}

Test(conf_rules, rules_in_sections_that_do_not_apply_are_still_checked)
{
	char err[256] = "";

	rules_init(&rules, "prog", "");
	cr_assert_eq(load("application-id other *\nuse os tcp_server *:99999\n", err), -EINVAL);
	cr_assert_str_eq(err,
			 "test.conf:2: bad port '99999': expected N, N-M (N <= M <= 65535) or *");
}

Test(conf_rules, runtime_rules_come_before_the_file_and_the_newest_first)
{
	char err[256] = "";
	const struct rule *which;

	rules_init(&rules, "prog", "");
	cr_assert_eq(load("use xring tcp_client *:*\n", err), 0, "%s", err);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", 80), RULES_XRING);
	cr_assert_eq(rules_add_line(&rules, "use os tcp_client 198.18.0.0/15:80", err, 256), 0,
		     "%s", err);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", 80), RULES_OS);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", 81), RULES_XRING);
	cr_assert_eq(
		rules_add_line(&rules, "use xring tcp_client 198.18.0.1:80  # back\n", err, 256), 0,
		"%s", err);
	cr_assert_eq(rules_match(&rules, RULES_TCP_CLIENT, ip("198.18.0.1"), htons(80), &which),
		     RULES_XRING);
	cr_assert_eq(which, &rules.rt[1]);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.2", 80), RULES_OS);
	/* Reloading the file keeps the runtime rules ahead of it. */
	cr_assert_eq(load("use os tcp_client *:*\n", err), 0, "%s", err);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", 80), RULES_XRING);
}

Test(conf_rules, runtime_rules_refuse_sections_blank_lines_and_errors_and_have_a_limit)
{
	char err[256] = "";

	rules_init(&rules, "prog", "");
	cr_assert_eq(rules_add_line(&rules, "application-id * *", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "only in the rules file"), "%s", err);
	cr_assert_eq(rules_add_line(&rules, "  # nothing", err, sizeof(err)), -EINVAL);
	cr_assert_eq(rules_add_line(&rules, "use os tcp_client *:x", err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "rule:1: bad port 'x': expected N, N-M (N <= M <= 65535) or *");
	cr_assert_eq(rules.nrt, 0);
	for (unsigned i = 0; i < RULES_RT_MAX; i++)
		cr_assert_eq(rules_add_line(&rules, "use os udp_sender *:*", err, sizeof(err)), 0);
	cr_assert_eq(rules_add_line(&rules, "use os udp_sender *:*", err, sizeof(err)), -ENOSPC);
}

/* Each bad file, and the line and message its error must carry. */
static const struct {
	const char *text, *err;
} bad[] = {
	{"use os tcp_client *:*\nfrobnicate\n",
	 "test.conf:2: unknown keyword 'frobnicate': expected use or application-id"},
	{"\n\n\nuse kernel tcp_client *:*\n",
	 "test.conf:4: unknown target 'kernel': expected xring or os"},
	{"use os tcp_listener *:*",
	 "test.conf:1: unknown role 'tcp_listener': expected tcp_client, tcp_server, udp_sender, "
	 "udp_receiver or udp_connect"},
	{"use os tcp_client 198.18.0.1\n",
	 "test.conf:1: '198.18.0.1' is not <addr[/len]|*>:<port[-port]|*>"},
	{"use os tcp_client 198.18.0:80\n",
	 "test.conf:1: bad address '198.18.0': expected a.b.c.d[/len] or *"},
	{"use os tcp_client 198.18.0.1/33:80\n",
	 "test.conf:1: bad address '198.18.0.1/33': expected a.b.c.d[/len] or *"},
	{"use os tcp_client 198.18.0.1/:80\n",
	 "test.conf:1: bad address '198.18.0.1/': expected a.b.c.d[/len] or *"},
	{"use os tcp_client *:80-79\n",
	 "test.conf:1: bad port '80-79': expected N, N-M (N <= M <= 65535) or *"},
	{"use os tcp_client *:65536\n",
	 "test.conf:1: bad port '65536': expected N, N-M (N <= M <= 65535) or *"},
	{"use os tcp_client *:-1\n",
	 "test.conf:1: bad port '-1': expected N, N-M (N <= M <= 65535) or *"},
	{"use os tcp_client *:\n",
	 "test.conf:1: bad port '': expected N, N-M (N <= M <= 65535) or *"},
	{"use os tcp_client\n",
	 "test.conf:1: use takes three words: <xring|os> <role> <addr[/len]|*>:<port[-port]|*>"},
	{"use os tcp_client *:* extra\n",
	 "test.conf:1: use takes three words: <xring|os> <role> <addr[/len]|*>:<port[-port]|*>"},
	{"application-id prog\n",
	 "test.conf:1: application-id takes two words: <program|*> <id|*>"},
	{"USE os tcp_client *:*\n",
	 "test.conf:1: unknown keyword 'USE': expected use or application-id"},
};

Test(conf_rules, errors_name_the_file_and_line_and_leave_no_rules_behind)
{
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rules_init(&rules, "prog", "");
		err[0] = '\0';
		cr_assert_eq(load(bad[i].text, err), -EINVAL, "accepted: %s", bad[i].text);
		cr_assert_str_eq(err, bad[i].err);
		cr_assert_eq(rules.nfile, 0);
	}
}

Test(conf_rules, an_overlong_line_or_a_nul_byte_is_an_error)
{
	static char text[1024];
	char err[256] = "";

	rules_init(&rules, "prog", "");
	memset(text, ' ', 600);
	memcpy(text + 600, "use os tcp_client *:*\n", 23);
	cr_assert_eq(load(text, err), -EINVAL);
	cr_assert_str_eq(err, "test.conf:1: line longer than 511 bytes");
	cr_assert_eq(rules_load_buf(&rules, "t", "\nuse os\0 tcp_client *:*\n", 24, err, 256),
		     -EINVAL);
	cr_assert_str_eq(err, "t:2: NUL byte in line");
}

Test(conf_rules, more_rules_than_fit_is_an_error_not_a_truncation)
{
	static char text[(RULES_MAX + 1) * 32];
	char err[256] = "";
	size_t n = 0;

	rules_init(&rules, "prog", "");
	for (unsigned i = 0; i <= RULES_MAX; i++)
		n += (size_t) sprintf(text + n, "use os udp_sender *:%u\n", i);
	cr_assert_eq(load(text, err), -ENOSPC);
	cr_assert_str_eq(err, "test.conf:257: more than 256 rules apply");
	cr_assert_eq(rules.nfile, 0);
}

Test(conf_rules, a_file_is_read_with_the_same_rules_and_line_numbers)
{
	char path[] = "/tmp/xring-rules-XXXXXX", err[256] = "";
	const char text[] =
		"# test\nuse os tcp_client 198.18.0.0/15:443\n\nuse xring tcp_client *:*";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t) sizeof(text) - 1);
	close(fd);
	rules_init(&rules, "prog", "");
	cr_assert_eq(rules_load_file(&rules, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rules.nfile, 2);
	cr_assert_eq(rules.file[1].line, 4);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.19.1.1", 443), RULES_OS);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.19.1.1", 444), RULES_XRING);

	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\n\nuse os tcp_client *:x\n", 24), 24);
	close(fd);
	cr_assert_eq(rules_load_file(&rules, path, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, ":3: bad port 'x'") && !strncmp(err, path, strlen(path)), "%s", err);
	cr_assert_eq(rules.nfile, 0);
	unlink(path);
	cr_assert_eq(rules_load_file(&rules, path, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, path), "%s", err);
}

Test(conf_rules, a_line_too_long_for_the_file_reader_is_an_error)
{
	char path[] = "/tmp/xring-rules-XXXXXX", err[256] = "";
	static char text[2048];
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	memset(text, '#', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\n';
	cr_assert_eq(write(fd, text, sizeof(text)), (ssize_t) sizeof(text));
	close(fd);
	rules_init(&rules, "prog", "");
	cr_assert_eq(rules_load_file(&rules, path, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, ":1: line longer than 511 bytes"), "%s", err);
	unlink(path);
}

/* The example in libxring.conf(5) parses and means what the page says it means. */
Test(conf_rules, the_example_in_the_man_page_loads_and_decides_as_documented)
{
	static char page[32 * 1024], text[4096];
	FILE *f = fopen(XRING_SOURCE_DIR "/man/libxring.conf.5", "r");
	char *ex, *end, err[256] = "";
	size_t len, n = 0;

	cr_assert_not_null(f);
	len = fread(page, 1, sizeof(page) - 1, f);
	fclose(f);
	page[len] = '\0';
	ex = strstr(page, ".SH EXAMPLES\n.EX\n");
	cr_assert_not_null(ex);
	ex += 17;
	end = strstr(ex, "\n.EE\n");
	cr_assert_not_null(end);
	for (; ex <= end && n < sizeof(text) - 1; ex++) /* roff's \- is a plain - here */
		if (!(ex[0] == '\\' && ex[1] == '-'))
			text[n++] = *ex;
	text[n] = '\0';

	rules_init(&rules, "cached", "");
	cr_assert_eq(load(text, err), 0, "%s", err);
	cr_assert_eq(match(RULES_UDP_SENDER, "198.18.0.53", 53), RULES_OS);
	cr_assert_eq(match(RULES_TCP_SERVER, "198.18.0.1", 7001), RULES_OS);
	cr_assert_eq(match(RULES_TCP_SERVER, "198.18.0.1", 7050), RULES_XRING);
	cr_assert_eq(match(RULES_UDP_RECEIVER, "198.19.0.1", 9), RULES_NO_MATCH);
	rules_init(&rules, "other", "feed");
	cr_assert_eq(load(text, err), 0, "%s", err);
	cr_assert_eq(match(RULES_TCP_SERVER, "198.18.0.1", 7050), RULES_NO_MATCH);
	cr_assert_eq(match(RULES_UDP_RECEIVER, "198.19.0.1", 9), RULES_XRING);
	cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.255.9", 22), RULES_OS);
}

Test(conf_rules, a_nul_byte_in_a_file_is_an_error_not_the_end_of_its_line)
{
	char path[] = "/tmp/xring-rules-XXXXXX", err[256] = "";
	static const char text[] = "use os tcp_client *:1\nuse os\0garbage\n";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t) sizeof(text) - 1);
	close(fd);
	rules_init(&rules, "prog", "");
	cr_assert_eq(rules_load_file(&rules, path, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, ":2: NUL byte in line"), "%s", err);
	unlink(path);
}

Test(conf_rules, setup_tolerates_only_a_missing_file_nobody_asked_for)
{
	char path[] = "/tmp/xring-rules-XXXXXX", err[256] = "";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "use os tcp_client *:1\n", 22), 22);
	close(fd);
	cr_assert_eq(rules_setup(&rules, path, true, "id", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rules.nfile, 1);
	cr_assert_str_eq(rules.program, program_invocation_short_name);
	cr_assert_str_eq(rules.app_id, "id");
	unlink(path);
	cr_assert_eq(rules_setup(&rules, path, false, "", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rules.nfile, 0);
	cr_assert_eq(rules_setup(&rules, path, true, "", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "No such file"), "%s", err);
	cr_assert_eq(rules_setup(&rules, "", true, "", err, sizeof(err)), 0);
	cr_assert_eq(rules_setup(&rules, "/proc/self/cmdline", false, "", err, sizeof(err)),
		     -EINVAL); /* exists, but NUL bytes */
}

static void *add_rules(void *arg)
{
	char line[64], err[256];
	uintptr_t failed = 0;

	for (unsigned p = 1; p <= RULES_RT_MAX; p++) {
		snprintf(line, sizeof(line), "use os tcp_client 198.18.0.1:%u", p);
		failed |= rules_add_line(&rules, line, err, sizeof(err)) != 0;
	}
	return (void *) failed;
}

Test(conf_rules, a_rule_added_while_another_thread_matches_is_seen_whole_or_not_at_all)
{
	char err[256] = "";
	pthread_t t;
	void *failed;

	rules_init(&rules, "prog", "");
	cr_assert_eq(load("use xring tcp_client *:*\n", err), 0, "%s", err);
	cr_assert_eq(pthread_create(&t, NULL, add_rules, NULL), 0);
	for (unsigned i = 0; i < 200000; i++) {
		unsigned p = 1 + i % RULES_RT_MAX;
		const struct rule *which;
		enum rules_verdict v = rules_match(&rules, RULES_TCP_CLIENT, ip("198.18.0.1"),
						   htons((uint16_t) p), &which);

		if (v == RULES_OS)
			cr_assert(which->port_lo == p && which->port_hi == p &&
					  which->mask == 0xffffffffu &&
					  which->role == RULES_TCP_CLIENT,
				  "a half-written rule for port %u was matched", p);
		else
			cr_assert_eq(v, RULES_XRING);
	}
	pthread_join(t, &failed);
	cr_assert_null(failed);
	for (unsigned p = 1; p <= RULES_RT_MAX; p++)
		cr_assert_eq(match(RULES_TCP_CLIENT, "198.18.0.1", p), RULES_OS);
}
