/*
 * map.c: the string-keyed hash map (see map.h).
 */
#include "core/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static const char tomb_mark;
#define TOMB (&tomb_mark)

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

void hk_map_init(hk_map *m)
{
    memset(m, 0, sizeof *m);
}

void hk_map_free(hk_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static hk_map_slot *find(const hk_map *m, const char *key, uint32_t h)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        hk_map_slot *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->key != TOMB && s->hash == h && strcmp(s->key, key) == 0) return s;
    }
}

static void grow(hk_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    while (m->n * 2 >= cap) cap *= 2;
    hk_map_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = hk_calloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->used = m->n;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key || old[i].key == TOMB) continue;
        size_t j = old[i].hash & (cap - 1);
        while (m->slots[j].key) j = (j + 1) & (cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
}

void *hk_map_get(const hk_map *m, const char *key)
{
    hk_map_slot *s = find(m, key, fnv1a(key));
    return s ? s->val : NULL;
}

void *hk_map_put(hk_map *m, const char *key, void *val)
{
    uint32_t h = fnv1a(key);
    hk_map_slot *s = find(m, key, h);
    if (s) {
        void *old = s->val;
        s->key = key;
        s->val = val;
        return old;
    }
    if ((m->used + 1) * 4 > m->cap * 3) grow(m);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB) i = (i + 1) & mask;
    if (!m->slots[i].key) m->used++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->slots[i].hash = h;
    m->n++;
    return NULL;
}

void *hk_map_del(hk_map *m, const char *key)
{
    hk_map_slot *s = find(m, key, fnv1a(key));
    if (!s) return NULL;
    void *v = s->val;
    s->key = TOMB;
    s->val = NULL;
    m->n--;
    return v;
}

void *hk_map_next(const hk_map *m, size_t *iter)
{
    while (*iter < m->cap) {
        hk_map_slot *s = &m->slots[(*iter)++];
        if (s->key && s->key != TOMB) return s->val;
    }
    return NULL;
}
