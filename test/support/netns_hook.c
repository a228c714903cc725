/*
 * The Criterion side of the network-namespace hosts (tools/netns/netns.h): after the last test of
 * a run, delete the namespaces that crashed test processes left behind.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "netns.h"

/* Runs in Criterion's runner after every test process has ended, crashed ones included. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void) stats;
	netns_sweep();
}
