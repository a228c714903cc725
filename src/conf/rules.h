/*
 * Offload rules: which sockets run on xring's stack and which go to the kernel, from the rules
 * file (libxring.conf(5)) and from rules added at run time.
 *
 *   # comment
 *   use os tcp_client 198.18.0.0/16:5000-5999   # rules before any section apply to everyone
 *   application-id redis-server *               # a section for one program, any application id
 *   use xring tcp_server *:6379
 *
 * A rule names the address the role decides on: for tcp_server and udp_receiver the local
 * (bound) address, for tcp_client, udp_sender and udp_connect the remote one. Rules are tried in
 * order: runtime rules first, newest first, then the file's in file order; the first match wins.
 * Rules in a section whose program or application id does not match this process are checked for
 * errors and then dropped.
 *
 * Storage is fixed-size: no allocation, and parsing is a loop over lines. Matching may run
 * concurrently with rules_add_line() in another thread (a rule is published only once complete),
 * but rules_add_line() calls must not race each other, nor rules_load*() anything.
 */
#ifndef XRING_CONF_RULES_H
#define XRING_CONF_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RULES_MAX      256 /* from the file */
#define RULES_RT_MAX   64  /* added at run time */
#define RULES_LINE_MAX 512 /* longest line, newline included */
#define RULES_NAME_LEN 64

enum rules_role {
	RULES_TCP_CLIENT,
	RULES_TCP_SERVER,
	RULES_UDP_SENDER,
	RULES_UDP_RECEIVER,
	RULES_UDP_CONNECT,
};

enum rules_verdict {
	RULES_NO_MATCH,
	RULES_XRING,
	RULES_OS
};

struct rule {
	uint32_t addr, mask;       /* network byte order; mask 0 matches any address */
	uint16_t port_lo, port_hi; /* host byte order, inclusive */
	uint8_t role;              /* enum rules_role */
	uint8_t verdict;           /* RULES_XRING or RULES_OS */
	uint32_t line;             /* line in the file, or the runtime rule's sequence number */
};

struct rules {
	char program[RULES_NAME_LEN]; /* empty matches only '*' */
	char app_id[RULES_NAME_LEN];
	struct rule file[RULES_MAX];
	unsigned nfile;
	struct rule rt[RULES_RT_MAX];
	unsigned nrt; /* published with release ordering */
};

/* Starts with no rules; program (basename) and app_id select the sections that apply. */
void rules_init(struct rules *r, const char *program, const char *app_id);

/*
 * Replaces the file rules with those in buf (name is used in messages). All or nothing: on an
 * error the file rules are empty, err reads "name:line: what", and -EINVAL is returned (or
 * -ENOSPC past RULES_MAX rules).
 */
int rules_load_buf(struct rules *r, const char *name, const char *buf, size_t len, char *err,
		   size_t errlen);
/* The same from a file; -ENOENT (and a message) when it does not exist. */
int rules_load_file(struct rules *r, const char *path, char *err, size_t errlen);

/*
 * What ring setup does: starts r for this program (its short name) and app_id, then loads path
 * unless it is empty. A missing file is fine unless must_exist (the user named it). Any failure
 * is -EINVAL, with the reason in err.
 */
int rules_setup(struct rules *r, const char *path, bool must_exist, const char *app_id, char *err,
		size_t errlen);

/*
 * Adds one "use ..." rule ahead of every other. Comments and blanks are allowed around it;
 * "application-id" lines are not. -ENOSPC once RULES_RT_MAX rules were added.
 */
int rules_add_line(struct rules *r, const char *line, char *err, size_t errlen);

/*
 * The decision for a socket in role whose deciding address is addr:port (both network byte
 * order). *which, when not NULL, points to the rule that matched.
 */
enum rules_verdict rules_match(const struct rules *r, enum rules_role role, uint32_t addr,
			       uint16_t port, const struct rule **which);

const char *rules_role_name(enum rules_role role);

#endif
