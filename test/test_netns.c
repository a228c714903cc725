/* The network-namespace test hosts themselves (tools/netns/netns.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"

TestSuite(netns, .fini = netns_cleanup);

static bool ns_exists(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return stat(path, &st) == 0;
}

static int veth_index_here(void *arg)
{
	(void) arg;
	/* Only visible inside the namespace: the root namespace has no veth0 of ours. */
	return if_nametoindex(NETNS_PAIR_IF) ? 42 : 1;
}

Test(netns, a_pair_carries_tcp_between_its_namespaces)
{
	struct netns_pair p;
	char out[64];
	pid_t srv;

	NETNS_REQUIRE();
	cr_assert_eq(netns_pair(&p, "tcp", "198.18.0.1/24", "198.18.0.2/24"), 0);
	srv = netns_spawn(p.b, "exec socat TCP-LISTEN:7000,bind=198.18.0.2,reuseaddr "
			       "SYSTEM:'echo hello'");
	cr_assert_gt(srv, 0);
	cr_assert_eq(netns_sh(p.a, out, sizeof(out),
			      "socat -T 5 TCP:198.18.0.2:7000,retry=50,interval=0.1 - </dev/null"),
		     0);
	cr_assert_str_eq(out, "hello\n");
	/* socat exits by itself after its one connection. */
	cr_assert_eq(netns_wait(srv, 10000), 0);
}

Test(netns, functions_run_inside_the_namespace_in_a_child_and_in_a_thread)
{
	struct netns_pair p;

	NETNS_REQUIRE();
	cr_assert_eq(netns_pair(&p, "run", NULL, NULL), 0);
	cr_assert_eq(netns_fork_run(p.a, veth_index_here, NULL), 42);
	cr_assert_eq(netns_thread_run(p.b, veth_index_here, NULL), 42);
	cr_assert_eq(veth_index_here(NULL), 1, "the test thread itself stayed outside");
}

Test(netns, entering_and_leaving_moves_only_the_calling_thread)
{
	char ns[NETNS_NAME_MAX];
	char other[NETNS_NAME_MAX];
	int old;

	NETNS_REQUIRE();
	cr_assert_eq(netns_add("enter", ns), 0);
	cr_assert_eq(netns_add("enter2", other), 0);
	cr_assert_eq(netns_veth(ns, "vin", other, "vout"), 0);
	old = netns_enter(ns);
	cr_assert_geq(old, 0);
	cr_assert_neq(if_nametoindex("vin"), 0);
	cr_assert_eq(netns_leave(old), 0);
	cr_assert_eq(if_nametoindex("vin"), 0);
}

Test(netns, addresses_outside_the_benchmarking_range_are_refused)
{
	struct netns_pair p;

	NETNS_REQUIRE();
	cr_assert_eq(netns_pair(&p, "refuse", "198.18.0.1/24", NULL), 0);
	cr_assert_eq(netns_ip(p.a, "addr add 10.0.0.1/24 dev veth0"), -EINVAL);
	cr_assert_eq(netns_ip(p.a, "route add 198.0.0.0/8 dev veth0"), -EINVAL);
	cr_assert_eq(netns_ip(p.a, "route add 198.16.0.0/12 dev veth0"), -EINVAL);
	cr_assert_eq(netns_sh(p.a, NULL, 0, "socat - TCP:192.0.2.1:80"), -EINVAL);
	cr_assert_eq(netns_ip(p.a, "route add 198.19.0.0/16 dev veth0"), 0);
	cr_assert_eq(netns_ip(p.a, "route add 198.18.0.0/15 dev veth0 metric 5"), 0);
}

Test(netns, a_failing_ip_command_is_reported)
{
	char ns[NETNS_NAME_MAX];

	NETNS_REQUIRE();
	cr_assert_eq(netns_add("fail", ns), 0);
	cr_assert_eq(netns_ip(ns, "link set nosuchlink up"), -EIO);
}

Test(netns, cleanup_deletes_every_namespace_it_created)
{
	struct netns_pair p;

	NETNS_REQUIRE();
	cr_assert_eq(netns_pair(&p, "clean", NULL, NULL), 0);
	cr_assert(ns_exists(p.a) && ns_exists(p.b));
	netns_cleanup();
	cr_assert(!ns_exists(p.a));
	cr_assert(!ns_exists(p.b));
}

Test(netns, namespaces_of_a_dead_process_are_swept_and_of_a_live_one_kept)
{
	char mine[NETNS_NAME_MAX];
	char theirs[NETNS_NAME_MAX];
	int pfd[2];
	pid_t child;
	int st;

	NETNS_REQUIRE();
	cr_assert_eq(netns_add("live", mine), 0);
	cr_assert_eq(pipe(pfd), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		char name[NETNS_NAME_MAX] = "";

		if (netns_add("stale", name) != 0 ||
		    write(pfd[1], name, sizeof(name)) != (ssize_t) sizeof(name))
			_exit(1);
		_exit(0); /* like a crash: no cleanup runs */
	}
	cr_assert_eq(read(pfd[0], theirs, sizeof(theirs)), (ssize_t) sizeof(theirs));
	cr_assert_eq(waitpid(child, &st, 0), child);
	/* Any of our test processes may sweep it first (they sweep on start), so only the outcome
	 * is asserted, not who swept it. */
	netns_sweep();
	cr_assert(!ns_exists(theirs), "%s outlived its dead owner", theirs);
	cr_assert(ns_exists(mine), "a live process's namespace must be kept");
}

Test(netns, json_values_are_read_from_ip_output)
{
	char v[32];
	const char *j = "[{\"dst\":\"198.18.1.5\",\"dev\":\"v1\",\"lladdr\":\"02:00:00:00:00:01\","
			"\"state\":[\"PERMANENT\"],\"mtu\":1500}]";

	cr_assert_eq(netns_json_get(j, "dev", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "v1");
	cr_assert_eq(netns_json_get(j, "state", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "PERMANENT");
	cr_assert_eq(netns_json_get(j, "mtu", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "1500");
	cr_assert_eq(netns_json_get(j, "gateway", v, sizeof(v)), -ENOENT);
}
