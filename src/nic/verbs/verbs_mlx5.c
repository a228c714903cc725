/*
 * What mlx5 direct verbs (libmlx5's mlx5dv, from rdma-core) say a ConnectX device could do for a
 * faster data path: multi-packet send WQEs, compressed CQEs, striding receive queues. The port
 * only detects and reports them; its data path stays on plain verbs until a fast path built on
 * them can be measured on hardware to beat it (xring-verbs(7) says what would change).
 */
#include <infiniband/mlx5dv.h>
#include <string.h>

#include "nic/verbs/verbs_internal.h"
#include "util/log.h"

void vb_mlx5_probe(struct vb_port *vp, struct ibv_device *dev)
{
	struct mlx5dv_context c = {.comp_mask = MLX5DV_CONTEXT_MASK_CQE_COMPRESION |
						MLX5DV_CONTEXT_MASK_STRIDING_RQ};
	struct port_verbs_mlx5 *m = &vp->mlx5;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!mlx5dv_is_supported(dev)) {
		log_info("verbs: %s: not an mlx5 device, plain verbs", vp->devname);
		return;
	}
	m->supported = true;
	ret = mlx5dv_query_device(vp->ctx, &c);
	if (ret) {
		log_info("verbs: %s: mlx5dv_query_device: %s", vp->devname, strerror(ret));
		return;
	}
	m->mpw = c.flags & MLX5DV_CONTEXT_FLAGS_MPW_ALLOWED;
	m->enhanced_mpw = c.flags & MLX5DV_CONTEXT_FLAGS_ENHANCED_MPW;
	if (c.comp_mask & MLX5DV_CONTEXT_MASK_CQE_COMPRESION)
		m->cqe_comp_max = c.cqe_comp_caps.max_num;
	if (c.comp_mask & MLX5DV_CONTEXT_MASK_STRIDING_RQ)
		m->striding_rq = c.striding_rq_caps.supported_qpts & (1u << IBV_QPT_RAW_PACKET)
					 ? true
					 : false;
	log_info("verbs: %s: mlx5 direct verbs: multi-packet send %s, CQE compression %s "
		 "(up to %u), striding receive queues %s; the port uses plain verbs",
		 vp->devname,
		 m->enhanced_mpw ? "enhanced"
		 : m->mpw        ? "legacy"
				 : "no",
		 m->cqe_comp_max ? "yes" : "no", m->cqe_comp_max, m->striding_rq ? "yes" : "no");
}

void port_verbs_mlx5(const struct port *p, struct port_verbs_mlx5 *out)
{
	*out = ((const struct vb_port *) p)->mlx5;
}
