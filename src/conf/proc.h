/* The process's configuration: its parameters and its offload rules, loaded once, shared by
 * every ring. */
#ifndef XRING_CONF_PROC_H
#define XRING_CONF_PROC_H

#include "conf/params.h"
#include "conf/rules.h"

/* Loads both on first use; a bad parameter or rules file fails every call with -EINVAL (the
 * reason is logged once, naming the variable, or the file and line). */
int proc_conf(const struct xring_conf **conf);
/* The rules; valid after a successful proc_conf(). */
const struct rules *proc_rules(void);
/* Whether a socket in this role towards (or at) addr:port (both network order) is to be
 * offloaded. */
bool proc_offload(enum rules_role role, uint32_t addr, uint16_t port);

#endif
