/*
 * pxl_pool.h - a free list of fixed-size objects carved from large blocks
 * (pure; no I/O). Connections and client records come from pools: one
 * malloc header per block instead of per object, and long-lived records
 * are not interleaved with short-lived buffers (less fragmentation).
 */
#ifndef PXL_POOL_H
#define PXL_POOL_H

#include <stddef.h>

struct pxl_pool_block;

struct pxl_pool {
        size_t size;      /* object size, rounded up to pointer alignment */
        size_t per_block; /* objects per block */
        void *free;       /* free list, linked through the objects */
        struct pxl_pool_block *blocks;
        size_t live;      /* objects handed out */
};

void pxl_pool_init(struct pxl_pool *p, size_t size, size_t per_block);
/* A zeroed object, or NULL when out of memory. */
void *pxl_pool_alloc(struct pxl_pool *p);
void pxl_pool_free(struct pxl_pool *p, void *obj);
/* Free every block; objects still handed out become invalid. */
void pxl_pool_fini(struct pxl_pool *p);

#endif
