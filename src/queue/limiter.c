/*
 * limiter.c: the slot helpers and the local limiter backend (limiter.h), a thin layer over the
 * sliding log of ratelimit.h: every answer is immediate, so take never returns HK_RL_ASKED.
 */
#include "queue/limiter.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void hk_rl_slot_init(hk_rl_slot *s, const char *key, void (*wake)(void *arg), void *arg)
{
    memset(s, 0, sizeof *s);
    s->key = key;
    s->wake = wake;
    s->arg = arg;
}

static int64_t local_take(hk_limiter *l, hk_rl_slot *s, int limit, int want, int64_t now_ms)
{
    return hk_rl_take(&s->log, limit, now_ms);
}

static void local_idle(hk_limiter *l, hk_rl_slot *s)
{
    hk_rl_idle(&s->log);
}

static void local_slot_clear(hk_limiter *l, hk_rl_slot *s)
{
    hk_rl_free(&s->log);
}

static void local_free(hk_limiter *l)
{
    free(l);
}

static const hk_limiter_ops local_ops = {
    .name = "local",
    .take = local_take,
    .idle = local_idle,
    .slot_clear = local_slot_clear,
    .free = local_free,
};

hk_limiter *hk_limiter_local_new(void)
{
    hk_limiter *l = hk_calloc(1, sizeof *l);
    l->ops = &local_ops;
    return l;
}
