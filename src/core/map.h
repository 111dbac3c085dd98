/*
 * map.h: a string-keyed hash map (open addressing, linear probing, FNV-1a). Keys are not
 * copied: a key must stay valid while its entry exists (store it inside the value). Not
 * thread-safe.
 */
#ifndef HK_MAP_H
#define HK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hk_map_slot {
    const char *key; /* NULL: empty; HK_MAP_TOMB: deleted */
    void *val;
    uint32_t hash;
} hk_map_slot;

typedef struct hk_map {
    hk_map_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t n;    /* live entries */
    size_t used; /* live + tombstones */
} hk_map;

void hk_map_init(hk_map *m);
void hk_map_free(hk_map *m); /* frees the table, not the values */
void *hk_map_get(const hk_map *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *hk_map_put(hk_map *m, const char *key, void *val);
/* Removes; returns the value or NULL. */
void *hk_map_del(hk_map *m, const char *key);
/* Iteration: size_t i = 0; void *v; while ((v = hk_map_next(m, &i))) ... Removing the entry
 * just returned is allowed during iteration. */
void *hk_map_next(const hk_map *m, size_t *iter);

#endif
