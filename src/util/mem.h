/* Memory helpers. */
#ifndef XRING_UTIL_MEM_H
#define XRING_UTIL_MEM_H

#include <stdlib.h>

/* aligned_alloc() wants the size to be a multiple of the alignment (C11); round it up. */
static inline void *alloc_aligned(size_t align, size_t size)
{
	return aligned_alloc(align, (size + align - 1) / align * align);
}

#endif
