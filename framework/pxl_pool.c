/*
 * pxl_pool.c - fixed-size object pools. Blocks are kept until the pool is
 * finished (a server's peak of connections is the memory it keeps). Under
 * AddressSanitizer free objects are poisoned, so use after free is still
 * caught although the memory is not returned to malloc.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_pool.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct pxl_pool_block {
        struct pxl_pool_block *next;
        max_align_t align[]; /* the objects */
};

void pxl_pool_init(struct pxl_pool *p, size_t size, size_t per_block)
{
        size_t a = _Alignof(max_align_t);

        memset(p, 0, sizeof(*p));
        if (size < sizeof(void *))
                size = sizeof(void *);
        p->size = (size + a - 1) / a * a;
        p->per_block = per_block ? per_block : 64;
}

static int grow(struct pxl_pool *p)
{
        struct pxl_pool_block *b =
                malloc(sizeof(*b) + p->size * p->per_block);
        char *obj;

        assert(p->per_block > 0); /* pxl_pool_init: so p->free is set */
        if (b == NULL)
                return -1;
        b->next = p->blocks;
        p->blocks = b;
        obj = (char *)b->align;
        /* Thread the new objects onto the free list, first one first. */
        for (size_t i = p->per_block; i-- > 0;) {
                char *o = obj + i * p->size;

                *(void **)o = p->free;
                p->free = o;
                POISON(o + sizeof(void *), p->size - sizeof(void *));
        }
        return 0;
}

void *pxl_pool_alloc(struct pxl_pool *p)
{
        void *o;

        if (p->free == NULL && grow(p) < 0)
                return NULL;
        o = p->free;
        UNPOISON(o, p->size);
        p->free = *(void **)o;
        memset(o, 0, p->size);
        p->live++;
        return o;
}

void pxl_pool_free(struct pxl_pool *p, void *obj)
{
        if (obj == NULL)
                return;
        *(void **)obj = p->free;
        p->free = obj;
        p->live--;
        POISON((char *)obj + sizeof(void *), p->size - sizeof(void *));
}

void pxl_pool_fini(struct pxl_pool *p)
{
        struct pxl_pool_block *b, *next;

        for (b = p->blocks; b != NULL; b = next) {
                next = b->next;
                UNPOISON(b->align, p->size * p->per_block);
                free(b);
        }
        memset(p, 0, sizeof(*p));
}
