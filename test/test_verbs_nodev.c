/*
 * The verbs port against the real libibverbs on a machine without an RDMA device: opening fails
 * with -ENODEV and a message naming what was asked for, and nothing else is disturbed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <xring.h>

#include "nic/memlink.h"
#include "nic/ports.h"
#include "nic/verbs/verbs_port.h"

Test(verbs_nodev, a_netdev_spec_fails_with_enodev_and_names_the_netdev)
{
	struct port *p = (struct port *) 0x1;
	char err[256];

	cr_assert_eq(port_verbs_open_spec("verbs:netdev=ens1f0", &p, err, sizeof(err)), -ENODEV);
	cr_assert_eq(p, (struct port *) 0x1, "nothing is returned on failure");
	cr_assert(strstr(err, "ens1f0"), "message: %s", err);
	cr_assert(strstr(err, "no RDMA device found"), "message: %s", err);
}

Test(verbs_nodev, a_device_spec_fails_with_enodev_and_names_the_device)
{
	struct port *p = NULL;
	char err[256];

	cr_assert_eq(port_verbs_open_spec("verbs:dev=mlx5_0", &p, err, sizeof(err)), -ENODEV);
	cr_assert_null(p);
	cr_assert(strstr(err, "mlx5_0"), "message: %s", err);
	cr_assert(strstr(err, "no RDMA device found"), "message: %s", err);
}

Test(verbs_nodev, bad_specs_fail_with_einval_before_looking_for_devices)
{
	struct port *p = NULL;
	char err[256];

	cr_assert_eq(port_verbs_open_spec("verbs:", &p, err, sizeof(err)), -EINVAL);
	cr_assert_eq(port_verbs_open_spec("verbs:netdev=a,dev=b", &p, err, sizeof(err)), -EINVAL);
	cr_assert_eq(port_verbs_open_spec("verbs:netdev=a,queues=0", &p, err, sizeof(err)),
		     -EINVAL);
	cr_assert_eq(port_verbs_open_spec("verbs:netdev=a,colour=red", &p, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "colour"), "message: %s", err);
	cr_assert_null(p);
}

Test(verbs_nodev, other_ports_keep_working_after_a_failed_verbs_open)
{
	struct port *p = NULL, *ends[2];
	struct port_frame f;
	char err[256];

	cr_assert_eq(port_verbs_open_spec("verbs:netdev=ens1f0", &p, err, sizeof(err)), -ENODEV);
	cr_assert_eq(memlink_create(NULL, ends), 0);
	cr_assert_eq(port_tx_alloc(ends[0]->queues[0], &f, 1), 1);
	f.len = 60;
	memset(f.data, 0xab, 60);
	cr_assert_eq(port_tx_post(ends[0]->queues[0], &f, 1), 1);
	cr_assert_eq(port_tx_flush(ends[0]->queues[0]), 0);
	cr_assert_eq(port_rx_poll(ends[1]->queues[0], &f, 1), 1);
	cr_assert_eq(f.len, 60);
	port_rx_release(ends[1]->queues[0], &f, 1);
	ends[0]->ops->destroy(ends[0]);
	ends[1]->ops->destroy(ends[1]);
}

Test(verbs_nodev, xring_port_add_of_a_verbs_spec_fails_with_enodev_and_adds_nothing)
{
	cr_assert_eq(xring_port_add("verbs:netdev=ens1f0"), -ENODEV);
	cr_assert_eq(xring_port_add("verbs:dev=mlx5_0,queues=2"), -ENODEV);
	cr_assert_eq(ports_count(), 0);
}
