/* Async events: port down and up, fatal errors, and the error state they leave the port in. */
#include <errno.h>

#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

static void set_error(struct vb_port *vp, int e)
{
	int cur = __atomic_load_n(&vp->error, __ATOMIC_RELAXED);

	/* Fatal errors stay; a port-down state only goes when the link comes back. */
	while (cur != -EIO && !__atomic_compare_exchange_n(&vp->error, &cur, e, false,
							   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static bool our_qp(const struct vb_port *vp, const struct ibv_qp *qp)
{
	for (unsigned i = 0; i < vp->port.nqueues; i++)
		if (vp->qs[i].qp == qp)
			return true;
	return false;
}

int vb_read_events(struct vb_port *vp)
{
	struct ibv_async_event ev;
	int n = 0;

	while (ibv_get_async_event(vp->ctx, &ev) == 0) {
		n++;
		__atomic_add_fetch(&vp->async_events, 1, __ATOMIC_RELAXED);
		switch (ev.event_type) {
		case IBV_EVENT_PORT_ERR:
			if (ev.element.port_num == vp->port_num) {
				__atomic_add_fetch(&vp->port_down, 1, __ATOMIC_RELAXED);
				if (__atomic_load_n(&vp->error, __ATOMIC_RELAXED) == 0)
					set_error(vp, -ENETDOWN);
			}
			break;
		case IBV_EVENT_PORT_ACTIVE:
			if (ev.element.port_num == vp->port_num) {
				int down = -ENETDOWN;

				__atomic_add_fetch(&vp->port_up, 1, __ATOMIC_RELAXED);
				__atomic_compare_exchange_n(&vp->error, &down, 0, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			}
			break;
		case IBV_EVENT_DEVICE_FATAL:
			__atomic_add_fetch(&vp->fatal, 1, __ATOMIC_RELAXED);
			set_error(vp, -EIO);
			break;
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_QP_ACCESS_ERR:
			if (our_qp(vp, ev.element.qp)) {
				__atomic_add_fetch(&vp->fatal, 1, __ATOMIC_RELAXED);
				set_error(vp, -EIO);
			}
			break;
		case IBV_EVENT_CQ_ERR:
			__atomic_add_fetch(&vp->fatal, 1, __ATOMIC_RELAXED);
			set_error(vp, -EIO);
			break;
		default:
			break;
		}
		log_warn("verbs: %s (%s): async event: %s", vp->port.name, vp->devname,
			 ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
	return n;
}

int port_verbs_events(struct port *p)
{
	return vb_read_events(vbp(p));
}

int port_verbs_error(const struct port *p)
{
	const struct vb_port *vp = (const struct vb_port *) p;

	return __atomic_load_n(&vp->error, __ATOMIC_RELAXED);
}
