#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/port_spec.h"

static struct pspec ports[PSPEC_MAX];

static int parse(const char *s, char *err)
{
	memset(ports, 0xa5, sizeof(ports)); /* nothing may depend on zeroed output */
	return pspec_parse(s, ports, PSPEC_MAX, err, 256);
}

Test(conf_port_spec, a_memif_spec_with_every_key_is_read_whole)
{
	char err[256] = "";
	const struct pspec_memif *m = &ports[0].memif;

	cr_assert_eq(parse("memif:path=/run/xring/m0.sock,role=server,ip=198.18.0.1/24,id=7,"
			   "secret=abc,queues=2,bufsize=4096,ring=512,mode=poll,"
			   "mac=02:00:00:AB:cd:01,mtu=9000,csum=none",
			   err),
		     1, "%s", err);
	cr_assert_eq(ports[0].kind, PSPEC_MEMIF);
	cr_assert_str_eq(m->path, "/run/xring/m0.sock");
	cr_assert_not(m->abstract);
	cr_assert_eq(m->role, PSPEC_ROLE_SERVER);
	cr_assert_eq(m->ip, inet_addr("198.18.0.1"));
	cr_assert_eq(m->prefix_len, 24);
	cr_assert_eq(m->id, 7);
	cr_assert_str_eq(m->secret, "abc");
	cr_assert_eq(m->queues, 2);
	cr_assert_eq(m->bufsize, 4096);
	cr_assert_eq(m->ring, 512);
	cr_assert_eq(m->mode, PSPEC_MODE_POLL);
	cr_assert(m->has_mac);
	cr_assert_arr_eq(m->mac, ((uint8_t[]){2, 0, 0, 0xab, 0xcd, 1}), 6);
	cr_assert_eq(m->mtu, 9000);
	cr_assert(m->csum_none);
}

Test(conf_port_spec, a_minimal_memif_spec_gets_the_defaults)
{
	char err[256] = "";
	const struct pspec_memif *m = &ports[0].memif;

	cr_assert_eq(parse("memif:ip=198.18.0.1/30", err), 1, "%s", err);
	cr_assert_str_eq(m->path, "/run/memif.sock");
	cr_assert_eq(m->role, PSPEC_ROLE_CLIENT);
	cr_assert_eq(m->mode, PSPEC_MODE_INTERRUPT);
	cr_assert_eq(m->id, 0);
	cr_assert_str_eq(m->secret, "");
	cr_assert_eq(m->queues, 1);
	cr_assert_eq(m->bufsize, 0, "XRING_BUF_SIZE decides");
	cr_assert_eq(m->ring, 0, "XRING_RX_QUEUE_DEPTH and XRING_TX_QUEUE_DEPTH decide");
	cr_assert_not(m->has_mac);
	cr_assert_eq(m->mtu, 0, "0: the backend's 1500");
	cr_assert_not(m->csum_none, "checksums stay on unless both ends say otherwise");
}

Test(conf_port_spec, xdp_and_verbs_specs_are_read_with_their_defaults)
{
	char err[256] = "";

	cr_assert_eq(parse("xdp:dev=veth0;xdp:dev=eth1,queues=4,mode=zc;verbs:netdev=ens1f0;"
			   "verbs:dev=mlx5_0,queues=8",
			   err),
		     4, "%s", err);
	cr_assert_eq(ports[0].kind, PSPEC_XDP);
	cr_assert_str_eq(ports[0].xdp.dev, "veth0");
	cr_assert_eq(ports[0].xdp.queues, 1);
	cr_assert_eq(ports[0].xdp.mode, PSPEC_XDP_AUTO);
	cr_assert_eq(ports[1].xdp.queues, 4);
	cr_assert_eq(ports[1].xdp.mode, PSPEC_XDP_ZC);
	cr_assert_eq(ports[2].kind, PSPEC_VERBS);
	cr_assert_str_eq(ports[2].verbs.netdev, "ens1f0");
	cr_assert_str_eq(ports[2].verbs.dev, "");
	cr_assert_eq(ports[2].verbs.queues, 1);
	cr_assert_str_eq(ports[3].verbs.dev, "mlx5_0");
	cr_assert_str_eq(ports[3].verbs.netdev, "");
	cr_assert_eq(ports[3].verbs.queues, 8);
}

Test(conf_port_spec, blanks_around_specs_and_empty_specs_are_ignored)
{
	char err[256] = "";

	cr_assert_eq(parse("", err), 0);
	cr_assert_eq(parse(" ; ;\n", err), 0);
	cr_assert_eq(parse("  xdp:dev=veth0 ;\n\txdp:dev=veth1;", err), 2, "%s", err);
	cr_assert_str_eq(ports[0].xdp.dev, "veth0");
	cr_assert_str_eq(ports[1].xdp.dev, "veth1");
}

Test(conf_port_spec, a_backslash_makes_the_next_character_part_of_the_value)
{
	char err[256] = "";

	cr_assert_eq(parse("memif:path=/tmp/a\\,b\\;c\\=d\\\\e,ip=198.18.0.1/24", err), 1, "%s",
		     err);
	cr_assert_str_eq(ports[0].memif.path, "/tmp/a,b;c=d\\e");
	cr_assert_eq(parse("memif:path=@xring/m0,ip=198.18.0.1/24", err), 1, "%s", err);
	cr_assert(ports[0].memif.abstract);
	cr_assert_str_eq(ports[0].memif.path, "xring/m0");
	cr_assert_eq(parse("memif:path=\\@literal,ip=198.18.0.1/24", err), 1, "%s", err);
	cr_assert_not(ports[0].memif.abstract);
	cr_assert_str_eq(ports[0].memif.path, "@literal");
}

Test(conf_port_spec, the_longest_values_that_fit_are_accepted)
{
	char spec[256], err[256] = "";
	char path[PSPEC_PATH_LEN];

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(spec, sizeof(spec), "memif:path=%s,ip=198.18.0.1/24,secret=%s", path,
		 "012345678901234567890123");
	cr_assert_eq(parse(spec, err), 1, "%s", err);
	cr_assert_eq(strlen(ports[0].memif.path), 107);
	cr_assert_eq(strlen(ports[0].memif.secret), 24);
	cr_assert_eq(parse("xdp:dev=abcdefghijklmno", err), 1, "%s", err);
	cr_assert_eq(parse("memif:ip=198.18.0.1/24,ring=16384,bufsize=65535,id=4294967295,"
			   "queues=64",
			   err),
		     1, "%s", err);
	cr_assert_eq(parse("memif:ip=198.18.0.1/32,ring=2,bufsize=128", err), 1, "%s", err);
}

Test(conf_port_spec, as_many_ports_as_fit_are_accepted_and_one_more_is_refused)
{
	char spec[512] = "", err[256] = "";

	for (int i = 0; i < PSPEC_MAX; i++)
		strcat(spec, "xdp:dev=v;");
	cr_assert_eq(parse(spec, err), PSPEC_MAX, "%s", err);
	strcat(spec, "xdp:dev=v");
	cr_assert_eq(parse(spec, err), -EINVAL);
	cr_assert_str_eq(err, "port spec 9: more than 8 ports");
}

/* Each bad spec string and the exact message it must produce. */
static const struct {
	const char *spec, *err;
} bad[] = {
	{"tap:dev=x", "port spec 1: unknown kind 'tap': expected memif, xdp or verbs"},
	{"xdp:dev=v;;XDP:dev=v", "port spec 3: unknown kind 'XDP': expected memif, xdp or verbs"},
	{"xdp", "port spec 1 (xdp): missing ':' after the kind"},
	{"xdp:", "port spec 1 (xdp): missing key 'dev'"},
	{"xdp:dev=v,speed=10",
	 "port spec 1 (xdp): unknown key 'speed' (accepted: dev, queues, mode)"},
	{"xdp:dev=v,", "port spec 1 (xdp): unknown key '' (accepted: dev, queues, mode)"},
	{"xdp:dev", "port spec 1 (xdp): key 'dev' needs '=value'"},
	{"xdp:dev=a,dev=b", "port spec 1 (xdp): key 'dev' given twice"},
	{"xdp:dev=",
	 "port spec 1 (xdp): bad value '' for key 'dev': expected an interface name of 1 to 15 characters"},
	{"xdp:dev=abcdefghijklmnop",
	 "port spec 1 (xdp): bad value 'abcdefghijklmnop' for key 'dev': expected an interface name of 1 to 15 characters"},
	{"xdp:dev=a/b",
	 "port spec 1 (xdp): bad value 'a/b' for key 'dev': expected an interface name of 1 to 15 characters"},
	{"xdp:dev=..",
	 "port spec 1 (xdp): bad value '..' for key 'dev': expected an interface name of 1 to 15 characters"},
	{"xdp:dev=a\\ b",
	 "port spec 1 (xdp): bad value 'a b' for key 'dev': expected an interface name of 1 to 15 characters"},
	{"xdp:dev=v,queues=0",
	 "port spec 1 (xdp): bad value '0' for key 'queues': expected an integer from 1 to 64"},
	{"xdp:dev=v,queues=65",
	 "port spec 1 (xdp): bad value '65' for key 'queues': expected an integer from 1 to 64"},
	{"xdp:dev=v,queues=1x",
	 "port spec 1 (xdp): bad value '1x' for key 'queues': expected an integer from 1 to 64"},
	{"xdp:dev=v,mode=native",
	 "port spec 1 (xdp): bad value 'native' for key 'mode': expected auto, skb, drv or zc"},
	{"verbs:queues=2", "port spec 1 (verbs): give exactly one of 'netdev' and 'dev'"},
	{"verbs:netdev=a,dev=mlx5_0",
	 "port spec 1 (verbs): give exactly one of 'netdev' and 'dev'"},
	{"verbs:dev=mlx5/0",
	 "port spec 1 (verbs): bad value 'mlx5/0' for key 'dev': expected a verbs device name such as mlx5_0"},
	{"memif:path=/x", "port spec 1 (memif): missing key 'ip'"},
	{"memif:ip=198.18.0.1",
	 "port spec 1 (memif): bad value '198.18.0.1' for key 'ip': expected an IPv4 address with a prefix length 1 to 32"},
	{"memif:ip=198.18.0.1/0",
	 "port spec 1 (memif): bad value '198.18.0.1/0' for key 'ip': expected an IPv4 address with a prefix length 1 to 32"},
	{"memif:ip=198.18.0.1/33",
	 "port spec 1 (memif): bad value '198.18.0.1/33' for key 'ip': expected an IPv4 address with a prefix length 1 to 32"},
	{"memif:ip=198.18.0/24",
	 "port spec 1 (memif): bad value '198.18.0/24' for key 'ip': expected an IPv4 address with a prefix length 1 to 32"},
	{"memif:ip=0.0.0.0/24",
	 "port spec 1 (memif): bad value '0.0.0.0/24' for key 'ip': expected a unicast IPv4 address"},
	{"memif:ip=224.0.0.1/24",
	 "port spec 1 (memif): bad value '224.0.0.1/24' for key 'ip': expected a unicast IPv4 address"},
	{"memif:ip=198.18.0.1/24,role=master",
	 "port spec 1 (memif): bad value 'master' for key 'role': expected server or client"},
	{"memif:ip=198.18.0.1/24,mode=busy",
	 "port spec 1 (memif): bad value 'busy' for key 'mode': expected interrupt or poll"},
	{"memif:ip=198.18.0.1/24,ring=1000",
	 "port spec 1 (memif): bad value '1000' for key 'ring': expected a power of two from 2 to 16384"},
	{"memif:ip=198.18.0.1/24,ring=32768",
	 "port spec 1 (memif): bad value '32768' for key 'ring': expected a power of two from 2 to 16384"},
	{"memif:ip=198.18.0.1/24,ring=1",
	 "port spec 1 (memif): bad value '1' for key 'ring': expected a power of two from 2 to 16384"},
	{"memif:ip=198.18.0.1/24,mtu=575",
	 "port spec 1 (memif): bad value '575' for key 'mtu': expected an integer from 576 to 65535"},
	{"memif:ip=198.18.0.1/24,mtu=65536",
	 "port spec 1 (memif): bad value '65536' for key 'mtu': expected an integer from 576 to 65535"},
	{"memif:ip=198.18.0.1/24,csum=off",
	 "port spec 1 (memif): bad value 'off' for key 'csum': expected full or none"},
	{"memif:ip=198.18.0.1/24,bufsize=127",
	 "port spec 1 (memif): bad value '127' for key 'bufsize': expected an integer from 128 to 65535"},
	{"memif:ip=198.18.0.1/24,bufsize=65536",
	 "port spec 1 (memif): bad value '65536' for key 'bufsize': expected an integer from 128 to 65535"},
	{"memif:ip=198.18.0.1/24,id=4294967296",
	 "port spec 1 (memif): bad value '4294967296' for key 'id': expected an integer from 0 to 4294967295"},
	{"memif:ip=198.18.0.1/24,id=-1",
	 "port spec 1 (memif): bad value '-1' for key 'id': expected an integer from 0 to 4294967295"},
	{"memif:ip=198.18.0.1/24,secret=",
	 "port spec 1 (memif): bad value '' for key 'secret': expected 1 to 24 bytes"},
	{"memif:ip=198.18.0.1/24,secret=0123456789012345678901234",
	 "port spec 1 (memif): bad value '0123456789012345678901234' for key 'secret': expected 1 to 24 bytes"},
	{"memif:ip=198.18.0.1/24,path=",
	 "port spec 1 (memif): bad value '' for key 'path': expected a socket path of 1 to 107 bytes ('@name' for the abstract namespace)"},
	{"memif:ip=198.18.0.1/24,path=@",
	 "port spec 1 (memif): bad value '' for key 'path': expected a socket path of 1 to 107 bytes ('@name' for the abstract namespace)"},
	{"memif:ip=198.18.0.1/24,mac=01:00:00:00:00:01",
	 "port spec 1 (memif): bad value '01:00:00:00:00:01' for key 'mac': expected a unicast MAC address xx:xx:xx:xx:xx:xx"},
	{"memif:ip=198.18.0.1/24,mac=00:00:00:00:00:00",
	 "port spec 1 (memif): bad value '00:00:00:00:00:00' for key 'mac': expected a unicast MAC address xx:xx:xx:xx:xx:xx"},
	{"memif:ip=198.18.0.1/24,mac=02:00:00:00:00",
	 "port spec 1 (memif): bad value '02:00:00:00:00' for key 'mac': expected a unicast MAC address xx:xx:xx:xx:xx:xx"},
	{"memif:ip=198.18.0.1/24,mac=02-00-00-00-00-01",
	 "port spec 1 (memif): bad value '02-00-00-00-00-01' for key 'mac': expected a unicast MAC address xx:xx:xx:xx:xx:xx"},
	{"memif:ip=198.18.0.1/24,mac=02:00:00:00:00:0g",
	 "port spec 1 (memif): bad value '02:00:00:00:00:0g' for key 'mac': expected a unicast MAC address xx:xx:xx:xx:xx:xx"},
	{"memif:ip=198.18.0.1/24,path=/x\\",
	 "port spec 1 (memif): value of key 'path' ends in a lone '\\'"},
	{"xdp:dev=veth0;memif:ip=198.18.0.1/24,role=server,queues=x",
	 "port spec 2 (memif): bad value 'x' for key 'queues': expected an integer from 1 to 64"},
	{"xdp:dev=veth0,mode=drv ; xdp:dev=veth1,mode=",
	 "port spec 2 (xdp): bad value '' for key 'mode': expected auto, skb, drv or zc"},
};

Test(conf_port_spec, a_bad_spec_is_refused_naming_its_position_and_the_bad_key_or_value)
{
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(parse(bad[i].spec, err), -EINVAL, "accepted: %s", bad[i].spec);
		cr_assert_str_eq(err, bad[i].err, "for %s", bad[i].spec);
	}
}

Test(conf_port_spec, an_overlong_path_is_refused_not_truncated)
{
	char spec[300], path[PSPEC_PATH_LEN + 1], err[256] = "";

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(spec, sizeof(spec), "memif:ip=198.18.0.1/24,path=%s", path);
	cr_assert_eq(parse(spec, err), -EINVAL);
	cr_assert(strstr(err, "key 'path'"), "%s", err);
	memset(spec, 'x', sizeof(spec) - 1);
	memcpy(spec, "memif:path=", 11);
	spec[sizeof(spec) - 1] = '\0';
	cr_assert_eq(parse(spec, err), -EINVAL);
	cr_assert_str_eq(err, "port spec 1 (memif): value of key 'path' is too long");
}

Test(conf_port_spec, kind_names_read_back)
{
	cr_assert_str_eq(pspec_kind_name(PSPEC_MEMIF), "memif");
	cr_assert_str_eq(pspec_kind_name(PSPEC_XDP), "xdp");
	cr_assert_str_eq(pspec_kind_name(PSPEC_VERBS), "verbs");
}
