/*
 * pxl_map.h - an intrusive hash map from byte-string keys to the structs
 * that embed a struct pxl_map_node (pure; no I/O). The map never copies
 * keys or allocates per entry: the owner of each struct owns its key.
 */
#ifndef PXL_MAP_H
#define PXL_MAP_H

#include <stddef.h>
#include <stdint.h>

struct pxl_map_node {
        struct pxl_map_node *next;
        uint64_t hash;
        const char *key; /* borrowed from the embedding struct */
        size_t key_len;
};

struct pxl_map {
        struct pxl_map_node **buckets;
        size_t nbuckets; /* power of two, or 0 before the first put */
        size_t count;
};

#define pxl_container_of(ptr, type, member)                                    \
        ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

uint64_t pxl_map_hash(const char *key, size_t len);
struct pxl_map_node *pxl_map_get(const struct pxl_map *m, const char *key,
                                 size_t len);
/* Insert node (key and key_len set by the caller; the key must be new). */
int pxl_map_put(struct pxl_map *m, struct pxl_map_node *node);
void pxl_map_remove(struct pxl_map *m, struct pxl_map_node *node);
/* Free the bucket array; the nodes belong to their owners. */
void pxl_map_fini(struct pxl_map *m);

/*
 * Iteration that tolerates removing the current node: the cursor holds
 * the next node before the body runs.
 */
struct pxl_map_iter {
        const struct pxl_map *m;
        size_t bucket;
        struct pxl_map_node *next;
};
void pxl_map_iter_init(struct pxl_map_iter *it, const struct pxl_map *m);
struct pxl_map_node *pxl_map_iter_next(struct pxl_map_iter *it);

#endif
