/* Rules file parser: any bytes either load into well-formed rules or fail with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "conf/rules.h"

static struct rules rules;

static void check(const struct rule *r)
{
	uint32_t m = ntohl(r->mask);

	/* A contiguous prefix mask, an address inside it, an ordered port range. */
	if (~m & (~m + 1))
		abort();
	if ((r->addr & r->mask) != r->addr || r->port_lo > r->port_hi || r->role > 4)
		abort();
	if (r->verdict != RULES_XRING && r->verdict != RULES_OS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "", line[RULES_LINE_MAX + 64];
	const char *text = (const char *) data;
	int ret;

	rules_init(&rules, "prog", "app");
	ret = rules_load_buf(&rules, "fuzz", text, size, err, sizeof(err));
	if (ret && (rules.nfile || !err[0]))
		abort();
	for (unsigned i = 0; i < rules.nfile; i++)
		check(&rules.file[i]);

	/* The first line, again, as a runtime rule. */
	size_t n = 0;
	while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n])
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	err[0] = '\0';
	ret = rules_add_line(&rules, line, err, sizeof(err));
	if (ret ? (!err[0] || rules.nrt) : rules.nrt != 1)
		abort();
	if (!ret)
		check(&rules.rt[0]);

	/* Every role against addresses and ports taken from the input. */
	for (size_t off = 0; off + 6 <= size && off < 64; off += 6) {
		uint32_t addr;
		uint16_t port;
		const struct rule *which;

		memcpy(&addr, data + off, 4);
		memcpy(&port, data + off + 4, 2);
		for (int role = 0; role < 5; role++) {
			enum rules_verdict v =
				rules_match(&rules, (enum rules_role) role, addr, port, &which);

			if ((v == RULES_NO_MATCH) != !which || (which && which->verdict != v))
				abort();
		}
	}
	return 0;
}
