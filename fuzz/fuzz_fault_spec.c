/* Fault specs from configuration: any text is parsed or refused, and what parses is usable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nic/fault.h"
#include "nic/memlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fault_config c = {0};
	struct port *e[2], *p;
	char text[600], err[160];

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (fault_parse(text, &c, err, sizeof(err)))
		return 0;
	if (c.tx.drop > 1000000 || c.rx.delay > 1000000 || c.hold > (1u << 20))
		abort();
	if (c.hold > 4096 || c.buf_size > 65536)
		return 0; /* valid, but too big to build thousands of times a second */
	c.now = fault_clock_monotonic;
	if (memlink_create(NULL, e))
		abort();
	if (fault_wrap(e[0], &c, &p))
		abort();
	p->ops->destroy(p);
	e[1]->ops->destroy(e[1]);
	return 0;
}
