/*
 * ratelimit.h: the per-webhook attempt limit of SPEC §4, in process. At most `limit` attempts
 * start in any 60-second window (an exact sliding log of start times, not a fixed window that
 * allows 2x at a boundary), and once a webhook has had to wait, its backlog goes out evenly
 * paced, one start every 60000/limit ms, so no burst follows when the window slides. An idle
 * webhook (nothing waiting) may again start up to `limit` at once.
 *
 * The Redis limiter (limiter_redis.c) applies the same rule across nodes.
 */
#ifndef HK_RATELIMIT_H
#define HK_RATELIMIT_H

#include <stdint.h>

#define HK_RL_WINDOW_MS 60000

typedef struct hk_rl_log {
    int64_t *t; /* ring of start times within the window */
    int cap, head, n;
    int64_t last;  /* last start */
    int throttled; /* a start had to wait since the backlog was last empty */
} hk_rl_log;

/* 0 if an attempt may start at now_ms (the start is recorded), else the ms to wait (> 0).
 * limit >= 1. Times are the caller's clock (the dispatcher uses the monotonic one). */
int64_t hk_rl_take(hk_rl_log *l, int limit, int64_t now_ms);
/* While a webhook waits: the earliest start of the job k places behind the head of its line
 * (k >= 1), given prev_ms, the projected start of the job before it; the head's own start is
 * now_ms + the wait hk_rl_take answered. One pacing step after prev_ms, and not before the start
 * recorded `limit` places earlier has left the window. Records nothing. */
int64_t hk_rl_projected(const hk_rl_log *l, int limit, int64_t prev_ms, int k);
/* The backlog is empty: pacing ends until the window fills again. */
static inline void hk_rl_idle(hk_rl_log *l)
{
    l->throttled = 0;
}
void hk_rl_free(hk_rl_log *l);

#endif
