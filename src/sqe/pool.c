/* The request pool: slabs carved into a free list; grown when empty, released at exit. */
#include <errno.h>
#include <stdlib.h>

#include "sqe/req.h"
#include "util/mem.h"

int req_pool_init(struct req_pool *p, unsigned slab_size)
{
	p->free = NULL;
	p->slabs = NULL;
	p->nslabs = p->cap_slabs = 0;
	p->slab_size = slab_size;
	p->allocated = 0;
	return req_pool_grow(p) ? 0 : -ENOMEM;
}

struct xreq *req_pool_grow(struct req_pool *p)
{
	struct xreq *slab;

	if (p->nslabs == p->cap_slabs) {
		unsigned cap = p->cap_slabs ? p->cap_slabs * 2 : 8;
		void **v = realloc(p->slabs, sizeof(*v) * cap);

		if (!v)
			return NULL;
		p->slabs = v;
		p->cap_slabs = cap;
	}
	slab = alloc_aligned(64, sizeof(*slab) * p->slab_size);
	if (!slab)
		return NULL;
	p->slabs[p->nslabs++] = slab;
	for (unsigned i = p->slab_size; i-- > 0;) {
		slab[i].qnext = p->free;
		p->free = &slab[i];
	}
	return p->free;
}

void req_pool_destroy(struct req_pool *p)
{
	for (unsigned i = 0; i < p->nslabs; i++)
		free(p->slabs[i]);
	free(p->slabs);
	p->slabs = NULL;
	p->free = NULL;
	p->nslabs = p->cap_slabs = 0;
}
