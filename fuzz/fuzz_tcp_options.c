/*
 * TCP option parsing. Oracle: no sanitizer report, parsed values obey their documented ranges,
 * and whatever parses and fits re-emits into bytes that parse back to the same options.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stack/wire/tcp.h"

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static void same(const struct tcp_opts *a, const struct tcp_opts *b)
{
	check(a->present == b->present);
	if (a->present & TCPO_MSS)
		check(a->mss == b->mss);
	if (a->present & TCPO_WSCALE)
		check(a->wscale == b->wscale);
	if (a->present & TCPO_TS)
		check(a->ts_val == b->ts_val && a->ts_ecr == b->ts_ecr);
	if (a->present & TCPO_SACK) {
		check(a->nsack == b->nsack);
		for (unsigned i = 0; i < a->nsack; i++)
			check(a->sack[i].left == b->sack[i].left &&
			      a->sack[i].right == b->sack[i].right);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tcp_opts o, p;
	uint8_t out[TCP_MAX_OPTS];
	int len;

	if (tcp_opts_parse(data, size, &o) != 0)
		return 0;
	check(size <= TCP_MAX_OPTS);
	if (o.present & TCPO_WSCALE)
		check(o.wscale <= TCP_MAX_WSCALE);
	if (o.present & TCPO_SACK)
		check(o.nsack >= 1 && o.nsack <= TCP_MAX_SACK);
	len = tcp_opts_emit(out, sizeof(out), &o);
	if (len < 0) {
		/* Only a SACK list beside other options can outgrow 40 bytes once padded. */
		check(len == -EMSGSIZE && (o.present & TCPO_SACK));
		return 0;
	}
	check(len % 4 == 0 && len <= TCP_MAX_OPTS);
	check(tcp_opts_parse(out, (size_t) len, &p) == 0);
	same(&o, &p);
	return 0;
}
