/*
 * ratelimit.c: the in-process sliding-log limiter (see ratelimit.h).
 */
#include "queue/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static void purge(hk_rl_log *l, int64_t now)
{
    while (l->n && l->t[l->head] <= now - HK_RL_WINDOW_MS) {
        l->head = (l->head + 1) % l->cap;
        l->n--;
    }
}

static void push(hk_rl_log *l, int64_t now)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        int64_t *t = hk_malloc(sizeof(int64_t) * (size_t)cap);
        for (int i = 0; i < l->n; i++) t[i] = l->t[(l->head + i) % l->cap];
        free(l->t);
        l->t = t;
        l->cap = cap;
        l->head = 0;
    }
    l->t[(l->head + l->n) % l->cap] = now;
    l->n++;
    l->last = now;
}

/* The pacing step of a waiting webhook: `limit` starts spread over the window. */
static int64_t pace_ms(int limit)
{
    return (HK_RL_WINDOW_MS + limit - 1) / limit;
}

int64_t hk_rl_take(hk_rl_log *l, int limit, int64_t now)
{
    if (limit < 1) limit = 1;
    purge(l, now);
    int64_t wait = 0;
    if (l->n >= limit) {
        /* the oldest start in the window must leave it first */
        int64_t oldest = l->t[(l->head + l->n - limit) % l->cap];
        wait = oldest + HK_RL_WINDOW_MS - now;
        l->throttled = 1;
    }
    if (l->throttled && l->n) {
        int64_t w2 = l->last + pace_ms(limit) - now;
        if (w2 > wait) wait = w2;
    }
    if (wait > 0) return wait;
    push(l, now);
    return 0;
}

int64_t hk_rl_projected(const hk_rl_log *l, int limit, int64_t prev, int k)
{
    if (limit < 1) limit = 1;
    int64_t at = prev + pace_ms(limit);
    /* the start `limit` places before this one: a recorded one while i < n (a projected one
     * otherwise, which pacing has already kept a window away) */
    int i = l->n + k - limit;
    if (i >= 0 && i < l->n) {
        int64_t free_at = l->t[(l->head + i) % l->cap] + HK_RL_WINDOW_MS;
        if (free_at > at) at = free_at;
    }
    return at;
}

void hk_rl_free(hk_rl_log *l)
{
    free(l->t);
    memset(l, 0, sizeof *l);
}
