/*
 * limiter.h: the per-webhook attempt limit of SPEC §4 behind one interface, so the dispatcher
 * never tests which backend it holds. Two backends:
 *  - local (limiter.c over ratelimit.h): the exact sliding log with pacing, in this process;
 *    the embedded default, and right whenever one node delivers.
 *  - redis (limiter_redis.c): the same rule for every node at once, decided atomically by a
 *    Lua script on a sorted set per webhook (REDIS_URL).
 * The queue backend owns the limiter that matches it (queue.h: hk_queue.limiter).
 *
 * The dispatcher keeps one hk_rl_slot per webhook and asks before each attempt starts.
 * hk_limiter_take answers at once from what the slot knows: 0 (start now; counted), a wait in
 * ms (> 0: ask again then), or HK_RL_ASKED: the answer needs a round trip; the slot's wake
 * function is called on the loop when it has arrived (never from inside take), and the next
 * take answers from it. A webhook that is limited never starts an attempt on a guess.
 */
#ifndef HK_LIMITER_H
#define HK_LIMITER_H

#include <stdint.h>

#include "queue/ratelimit.h"

#define HK_RL_ASKED (-1)

typedef struct hk_limiter hk_limiter;

typedef struct hk_rl_grant { /* redis backend: one answer that granted starts */
    int64_t at;              /* Redis's clock, ms */
    uint64_t seq;            /* the question's number (names the log's members) */
    int n;                   /* starts granted */
} hk_rl_grant;

/* Per-webhook state. Initialize with hk_rl_slot_init; release with hk_limiter_slot_clear. */
typedef struct hk_rl_slot {
    const char *key;         /* the webhook id; owned by the caller, outlives the slot */
    void (*wake)(void *arg); /* an answer HK_RL_ASKED for has arrived */
    void *arg;
    hk_rl_log log; /* local backend */
    /* redis backend */
    int granted;           /* starts granted and not used yet */
    int64_t granted_until; /* monotonic ms: unused grants lapse then */
    int64_t retry_at;      /* monotonic ms: do not ask again before */
    void *asking;          /* the question in flight, or NULL */
    hk_rl_grant *hist;     /* this node's grants of the last window, oldest first, to */
    int hist_n, hist_cap;  /* write them again if Redis lost its data */
    uint64_t epoch;        /* hk_redis_epoch when hist was last known to be in Redis */
    struct hk_rl_slot *reg_prev, *reg_next; /* the limiter's list of slots with a history */
    int registered;
    int limit; /* the limit of the last question */
} hk_rl_slot;

typedef struct hk_limiter_ops {
    const char *name;
    /* May one attempt of s's webhook start at now_ms, with at most `limit` starts in any
     * 60-second window? want (>= 1) is how many the caller could start right now: a hint
     * for a backend that asks for several at a time. */
    int64_t (*take)(hk_limiter *l, hk_rl_slot *s, int limit, int want, int64_t now_ms);
    /* The webhook has nothing waiting (pacing may end). */
    void (*idle)(hk_limiter *l, hk_rl_slot *s);
    /* Frees what s holds; a question in flight is forgotten (wake is not called). */
    void (*slot_clear)(hk_limiter *l, hk_rl_slot *s);
    void (*free)(hk_limiter *l);
} hk_limiter_ops;

struct hk_limiter {
    const hk_limiter_ops *ops;
};

void hk_rl_slot_init(hk_rl_slot *s, const char *key, void (*wake)(void *arg), void *arg);

static inline int64_t hk_limiter_take(hk_limiter *l, hk_rl_slot *s, int limit, int want,
                                      int64_t now_ms)
{
    return l->ops->take(l, s, limit, want, now_ms);
}
static inline void hk_limiter_idle(hk_limiter *l, hk_rl_slot *s)
{
    l->ops->idle(l, s);
}
static inline void hk_limiter_slot_clear(hk_limiter *l, hk_rl_slot *s)
{
    l->ops->slot_clear(l, s);
}
static inline void hk_limiter_free(hk_limiter *l)
{
    if (l) l->ops->free(l);
}

/* The in-process limiter. */
hk_limiter *hk_limiter_local_new(void);

struct hk_redis;
/* The shared limiter on r: keys <prefix>rl:<webhook id> (the log) and <prefix>rlp:<webhook id>
 * (pacing). node_id makes the log's members unique. Both strings must outlive the limiter. */
hk_limiter *hk_limiter_redis_new(struct hk_redis *r, const char *prefix, const char *node_id);

#endif
