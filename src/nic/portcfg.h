/* Opening the ports XRING_PORTS (or xring_port_add) names, with the decorators the environment
 * asks for (XRING_FAULT, XRING_PCAP), into the process-wide port table. */
#ifndef XRING_NIC_PORTCFG_H
#define XRING_NIC_PORTCFG_H

#include <stddef.h>

#include "conf/params.h"

/* Opens every port of conf->ports, once per process; later calls return the first result. */
int portcfg_open_env(const struct xring_conf *conf);
/* Opens one parsed spec. 0 or a negated errno, with a message naming the port in err. */
int portcfg_open(const struct pspec *spec, char *err, size_t errlen);

#endif
