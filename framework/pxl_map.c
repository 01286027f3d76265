/*
 * pxl_map.c - the intrusive hash map: chained buckets, grown by doubling
 * at a load factor of 1. It owns only the bucket array.
 */
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_map.h"

uint64_t pxl_map_hash(const char *key, size_t len)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a, 64 bit */

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
        return h ^ (h >> 29); /* mix the high bits into the bucket index */
}

struct pxl_map_node *pxl_map_get(const struct pxl_map *m, const char *key,
                                 size_t len)
{
        uint64_t h;
        struct pxl_map_node *n;

        if (m->nbuckets == 0)
                return NULL;
        h = pxl_map_hash(key, len);
        for (n = m->buckets[h & (m->nbuckets - 1)]; n != NULL; n = n->next)
                if (n->hash == h && n->key_len == len &&
                    memcmp(n->key, key, len) == 0)
                        return n;
        return NULL;
}

static int grow(struct pxl_map *m)
{
        size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
        struct pxl_map_node **b = calloc(nb, sizeof(*b));

        if (b == NULL)
                return PXL_ENOMEM;
        for (size_t i = 0; i < m->nbuckets; i++) {
                struct pxl_map_node *n = m->buckets[i], *next;

                for (; n != NULL; n = next) {
                        next = n->next;
                        n->next = b[n->hash & (nb - 1)];
                        b[n->hash & (nb - 1)] = n;
                }
        }
        free(m->buckets);
        m->buckets = b;
        m->nbuckets = nb;
        return PXL_OK;
}

int pxl_map_put(struct pxl_map *m, struct pxl_map_node *node)
{
        size_t i;

        if (m->count >= m->nbuckets && grow(m) < 0)
                return PXL_ENOMEM;
        node->hash = pxl_map_hash(node->key, node->key_len);
        i = node->hash & (m->nbuckets - 1);
        node->next = m->buckets[i];
        m->buckets[i] = node;
        m->count++;
        return PXL_OK;
}

void pxl_map_remove(struct pxl_map *m, struct pxl_map_node *node)
{
        struct pxl_map_node **pp;

        if (m->nbuckets == 0)
                return;
        for (pp = &m->buckets[node->hash & (m->nbuckets - 1)]; *pp != NULL;
             pp = &(*pp)->next) {
                if (*pp == node) {
                        *pp = node->next;
                        node->next = NULL;
                        m->count--;
                        return;
                }
        }
}

void pxl_map_fini(struct pxl_map *m)
{
        free(m->buckets);
        memset(m, 0, sizeof(*m));
}

void pxl_map_iter_init(struct pxl_map_iter *it, const struct pxl_map *m)
{
        it->m = m;
        it->bucket = 0;
        it->next = NULL;
        while (it->bucket < m->nbuckets && it->next == NULL)
                it->next = m->buckets[it->bucket++];
}

struct pxl_map_node *pxl_map_iter_next(struct pxl_map_iter *it)
{
        struct pxl_map_node *n = it->next;

        if (n == NULL)
                return NULL;
        it->next = n->next;
        while (it->next == NULL && it->bucket < it->m->nbuckets)
                it->next = it->m->buckets[it->bucket++];
        return n;
}
