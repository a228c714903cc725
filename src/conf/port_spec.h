/*
 * Port specs: the text form of the ports a process attaches, as given in XRING_PORTS.
 *
 *   memif:path=/run/xring/m0.sock,role=server,ip=198.18.0.1/24;xdp:dev=veth0;verbs:netdev=ens1f0
 *
 * Specs are separated by ';', keys by ',', a key from its value by '='. Whitespace around a spec
 * is ignored and empty specs are skipped. Inside a value a backslash takes the next character
 * literally, so a path may hold ',', ';', '=' or '\' as "\,", "\;", "\=", "\\". A memif path
 * that starts with '@' names a socket in the abstract namespace. Parsing is pure: nothing is
 * opened or resolved here; the backends validate what only the system can tell (does veth0
 * exist, is the socket reachable).
 */
#ifndef XRING_CONF_PORT_SPEC_H
#define XRING_CONF_PORT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSPEC_MAX            8   /* ports one process may name */
#define PSPEC_PATH_LEN       108 /* sizeof(sun_path): the longest memif socket path plus NUL */
#define PSPEC_IFNAME_LEN     16  /* IFNAMSIZ */
#define PSPEC_SECRET_LEN     25  /* memif secrets are 24 bytes on the wire, plus NUL */
#define PSPEC_MAX_QUEUES     64
#define PSPEC_MEMIF_RING_MAX 16384 /* 2^14, the largest log2 ring size libmemif and DPDK accept */

enum pspec_kind {
	PSPEC_MEMIF,
	PSPEC_XDP,
	PSPEC_VERBS
};

enum pspec_memif_role {
	PSPEC_ROLE_CLIENT,
	PSPEC_ROLE_SERVER
};
enum pspec_memif_mode {
	PSPEC_MODE_INTERRUPT,
	PSPEC_MODE_POLL
};
enum pspec_xdp_mode {
	PSPEC_XDP_AUTO,
	PSPEC_XDP_SKB,
	PSPEC_XDP_DRV,
	PSPEC_XDP_ZC
};

struct pspec_memif {
	char path[PSPEC_PATH_LEN]; /* without the leading '@' when abstract */
	bool abstract;
	enum pspec_memif_role role;
	enum pspec_memif_mode mode;
	uint32_t ip; /* network byte order */
	uint8_t prefix_len;
	uint32_t id; /* memif interface id */
	char secret[PSPEC_SECRET_LEN];
	uint16_t queues;
	uint32_t bufsize; /* 0: XRING_BUF_SIZE */
	uint32_t ring;    /* descriptors per ring, a power of two; 0: the XRING_*_QUEUE_DEPTH */
	uint8_t mac[6];
	bool has_mac;   /* otherwise the backend picks a locally administered address */
	uint16_t mtu;   /* IP MTU, 0: 1500 */
	bool csum_none; /* csum=none: a trusted memory link, no TCP checksums either way */
};

struct pspec_xdp {
	char dev[PSPEC_IFNAME_LEN];
	uint16_t queues;
	enum pspec_xdp_mode mode;
};

struct pspec_verbs {
	char netdev[PSPEC_IFNAME_LEN]; /* exactly one of netdev and dev is set */
	char dev[64];                  /* verbs device name, e.g. mlx5_0 */
	uint16_t queues;
};

struct pspec {
	enum pspec_kind kind;
	union {
		struct pspec_memif memif;
		struct pspec_xdp xdp;
		struct pspec_verbs verbs;
	};
};

/*
 * Parses every spec in s into out[0..max). Returns the number of specs, or -EINVAL with a
 * message naming the spec (counted from 1), and the bad key or value. Nothing is written past
 * out[max - 1]; more specs than that is an error.
 */
int pspec_parse(const char *s, struct pspec *out, unsigned max, char *err, size_t errlen);

const char *pspec_kind_name(enum pspec_kind kind);

#endif
