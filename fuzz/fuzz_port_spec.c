/* Port specs: any text either parses into specs within their documented limits or fails. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/port_spec.h"

static struct pspec ports[PSPEC_MAX];
static char text[8192];

static void check(const struct pspec *p)
{
	switch (p->kind) {
	case PSPEC_MEMIF:
		if (!memchr(p->memif.path, '\0', sizeof(p->memif.path)) || !p->memif.path[0] ||
		    !memchr(p->memif.secret, '\0', sizeof(p->memif.secret)))
			abort();
		/* bufsize and ring may be 0: the parameters decide at open. */
		if (!p->memif.prefix_len || p->memif.prefix_len > 32 || !p->memif.queues ||
		    p->memif.queues > PSPEC_MAX_QUEUES ||
		    (p->memif.bufsize && p->memif.bufsize < 128) || p->memif.bufsize > 65535 ||
		    p->memif.ring == 1 || p->memif.ring > PSPEC_MEMIF_RING_MAX ||
		    (p->memif.ring & (p->memif.ring - 1)))
			abort();
		if (p->memif.mtu && p->memif.mtu < 576)
			abort();
		if (p->memif.has_mac && (p->memif.mac[0] & 1))
			abort();
		break;
	case PSPEC_XDP:
		if (!p->xdp.dev[0] || !memchr(p->xdp.dev, '\0', sizeof(p->xdp.dev)) ||
		    !p->xdp.queues || p->xdp.queues > PSPEC_MAX_QUEUES ||
		    p->xdp.mode > PSPEC_XDP_ZC)
			abort();
		break;
	case PSPEC_VERBS:
		if (!p->verbs.netdev[0] == !p->verbs.dev[0] || !p->verbs.queues ||
		    p->verbs.queues > PSPEC_MAX_QUEUES)
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	int n;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* The first byte bounds how many ports fit, so the "too many" path is reached too. */
	n = pspec_parse(text, ports, size ? 1 + data[0] % PSPEC_MAX : PSPEC_MAX, err, sizeof(err));
	if (n < 0) {
		if (!err[0])
			abort();
		return 0;
	}
	if (n > PSPEC_MAX)
		abort();
	for (int i = 0; i < n; i++)
		check(&ports[i]);
	return 0;
}
