/*
 * limiter_redis.c: the shared rate limiter (limiter.h), exact across every node that uses the
 * same Redis and key prefix.
 *
 * Each webhook has a sliding log in Redis: a sorted set <prefix>rl:<webhook id> with one member
 * per attempt start, scored by Redis's own clock (TIME), so node clocks do not matter. One Lua
 * script (atomic: Redis runs one script at a time) drops the entries older than the window,
 * counts the rest, and either records up to `want` new starts ("grants") or answers how long
 * to wait. Once a webhook has had to wait, its starts are paced one every 60000/limit ms (a
 * marker key lives for one window after the last wait), as the local limiter does.
 *
 * Exactness: a grant is recorded at the moment Redis runs the script, and the node starts the
 * attempt a little later. So the script keeps each start in the window for 60 s + MARGIN_MS,
 * and a node uses a grant only within USE_WITHIN_MS (< MARGIN_MS) of sending the question;
 * later it lapses unused (it still counts: the error is always on the safe side). Hence real
 * start times never put more than `limit` starts in any 60-second window, whatever the number
 * of nodes; the price is that a saturated webhook gets limit per 61 s instead of per 60 s.
 *
 * Redis down: a limited webhook is held (take answers "wait DOWN_RETRY_MS") until Redis is back;
 * it never falls back to a per-node guess, which would let N nodes burst N times the limit.
 *
 * Redis back, possibly empty (a restart without persistence, a FLUSHALL noticed by the queue):
 * the logs of the last minute may be gone, and an empty log would let a full window through on
 * top of the starts already made. So every node remembers its own grants of the last window
 * (hk_rl_slot.hist) and, whenever the connection epoch changes, writes them again (ZADD NX of
 * the same members with the same scores: harmless if Redis still had them), eagerly for every
 * webhook with a history and again inside the next question of each. Meanwhile, for
 * SETTLE_MS after the change, limited webhooks wait, so that every node has re-seeded before
 * any grants again.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/time.h"
#include "queue/limiter.h"
#include "queue/redis_conn.h"

#define MARGIN_MS     1000
#define USE_WITHIN_MS 900
#define DOWN_RETRY_MS 1000
#define SETTLE_MS     3000
#define HIST_MAX      4096
#define KEY_MAX       320

typedef struct redis_lim {
    hk_limiter l;
    hk_redis *r;
    const char *prefix;
    const char *node;
    uint64_t seq;
    int64_t held_logged_mono;
    int64_t settle_until;   /* monotonic ms: no grants before (re-seeding after a loss) */
    int64_t redis_now;      /* Redis's clock in the last answer */
    int64_t redis_now_mono; /* when that answer came */
    hk_rl_slot *reg;        /* slots with a history */
} redis_lim;

typedef struct ask {  /* one question in flight */
    hk_rl_slot *slot; /* NULL once the slot is gone */
    redis_lim *rl;
    int64_t sent_mono;
    uint64_t seq;
    uint64_t epoch; /* the connection epoch it was sent in */
} ask;

/* KEYS[1] the log, KEYS[2] the pacing marker.
 * ARGV[1] limit, ARGV[2] want (0: only re-seed), ARGV[3] window + margin (ms), ARGV[4] pacing
 * window (ms), ARGV[5] a prefix that makes the new members unique, ARGV[6] k, then k triples
 * (at, prefix, n): earlier grants of this node, written again first (members prefix:1..n).
 * Returns {granted, wait_ms, now}: granted > 0 with wait 0, or 0 with the wait (0 for want 0). */
static hk_redis_script take_script = {
    .name = "ratelimit_take",
    .body = "local t = redis.call('TIME')\n"
            "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            "local limit = tonumber(ARGV[1])\n"
            "local want = tonumber(ARGV[2])\n"
            "local win = tonumber(ARGV[3])\n"
            "for j = 0, tonumber(ARGV[6]) - 1 do\n"
            "  local at = tonumber(ARGV[7 + 3 * j])\n"
            "  if at > now - win then\n"
            "    for i = 1, tonumber(ARGV[9 + 3 * j]) do\n"
            "      redis.call('ZADD', KEYS[1], 'NX', at, ARGV[8 + 3 * j] .. ':' .. i)\n"
            "    end\n"
            "  end\n"
            "end\n"
            "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)\n"
            "local n = redis.call('ZCARD', KEYS[1])\n"
            "local wait = 0\n"
            "if n >= limit and want > 0 then\n"
            "  local e = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')\n"
            "  wait = tonumber(e[2]) + win - now\n"
            "  redis.call('SET', KEYS[2], '1', 'PX', win)\n"
            "end\n"
            "if n > 0 and redis.call('EXISTS', KEYS[2]) == 1 then\n"
            "  local pace = math.ceil(tonumber(ARGV[4]) / limit)\n"
            "  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
            "  local w2 = tonumber(last[2]) + pace - now\n"
            "  if w2 > wait then wait = w2 end\n"
            "  if want > 1 then want = 1 end\n"
            "end\n"
            "if n > 0 then redis.call('PEXPIRE', KEYS[1], win) end\n"
            "if wait > 0 then return {0, wait, now} end\n"
            "local grant = limit - n\n"
            "if grant > want then grant = want end\n"
            "for i = 1, grant do\n"
            "  redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i)\n"
            "end\n"
            "if grant > 0 then redis.call('PEXPIRE', KEYS[1], win) end\n"
            "return {grant, 0, now}\n",
};

/* ---- this node's history ---------------------------------------------------------------- */

static void reg_add(redis_lim *rl, hk_rl_slot *s)
{
    if (s->registered) return;
    s->registered = 1;
    s->reg_prev = NULL;
    s->reg_next = rl->reg;
    if (rl->reg) rl->reg->reg_prev = s;
    rl->reg = s;
}

static void reg_del(redis_lim *rl, hk_rl_slot *s)
{
    if (!s->registered) return;
    if (s->reg_prev)
        s->reg_prev->reg_next = s->reg_next;
    else
        rl->reg = s->reg_next;
    if (s->reg_next) s->reg_next->reg_prev = s->reg_prev;
    s->reg_prev = s->reg_next = NULL;
    s->registered = 0;
}

/* Drops grants that have left the window by Redis's clock (as last seen, plus time since). */
static void hist_prune(redis_lim *rl, hk_rl_slot *s)
{
    int64_t now = rl->redis_now + (hk_mono_ms() - rl->redis_now_mono);
    int k = 0;
    while (k < s->hist_n && s->hist[k].at <= now - (HK_RL_WINDOW_MS + MARGIN_MS)) k++;
    if (k) {
        memmove(s->hist, s->hist + k, sizeof *s->hist * (size_t)(s->hist_n - k));
        s->hist_n -= k;
    }
}

static void hist_add(redis_lim *rl, hk_rl_slot *s, int64_t at, uint64_t seq, int n)
{
    hist_prune(rl, s);
    if (s->hist_n == HIST_MAX) { /* a very high limit: keep the newest, the rest is old */
        memmove(s->hist, s->hist + 1, sizeof *s->hist * (size_t)(HIST_MAX - 1));
        s->hist_n--;
    }
    if (s->hist_n == s->hist_cap) {
        s->hist_cap = s->hist_cap ? s->hist_cap * 2 : 8;
        s->hist = hk_realloc(s->hist, sizeof *s->hist * (size_t)s->hist_cap);
    }
    s->hist[s->hist_n].at = at;
    s->hist[s->hist_n].seq = seq;
    s->hist[s->hist_n].n = n;
    s->hist_n++;
    reg_add(rl, s);
}

/* ---- questions ---------------------------------------------------------------------------- */

static void on_answer(redisReply *rep, void *arg)
{
    ask *a = arg;
    hk_rl_slot *s = a->slot;
    redis_lim *rl = a->rl;
    int64_t sent = a->sent_mono;
    uint64_t seq = a->seq, epoch = a->epoch;
    free(a);
    if (!s) return; /* the webhook left the dispatcher's cache meanwhile */
    s->asking = NULL;
    int64_t mono = hk_mono_ms();
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER &&
        rep->element[1]->type == REDIS_REPLY_INTEGER &&
        rep->element[2]->type == REDIS_REPLY_INTEGER) {
        long long g = rep->element[0]->integer, w = rep->element[1]->integer;
        rl->redis_now = rep->element[2]->integer;
        rl->redis_now_mono = mono;
        s->epoch = epoch; /* what this node granted before is in Redis again */
        if (g > 0) {
            s->granted = (int)g;
            s->granted_until = sent + USE_WITHIN_MS;
            hist_add(rl, s, rep->element[2]->integer, seq, (int)g);
        } else if (w > 0) {
            s->retry_at = mono + w;
        }
    } else {
        if (rep)
            HK_LOG(HK_LOG_WARN, "ratelimit.redis_error", HK_LS("webhook_id", s->key),
                   HK_LS("msg", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply"));
        s->retry_at = mono + DOWN_RETRY_MS;
    }
    if (s->wake) s->wake(s->arg);
}

/* Sends the question for s (want 0: only re-seed). 0, or HK_EUNAVAIL (Redis down). */
static int ask_send(redis_lim *rl, hk_rl_slot *s, int limit, int want)
{
    uint64_t epoch = hk_redis_epoch(rl->r);
    int k = 0;
    if (s->epoch != epoch) { /* Redis may have lost what this node granted: write it again */
        hist_prune(rl, s);
        k = s->hist_n;
    }
    int argc = 8 + 3 * k;
    const char **argv = hk_malloc(sizeof(char *) * (size_t)argc);
    char(*num)[24] = hk_malloc(sizeof *num * (size_t)(2 * k + 1));
    char(*pfx)[128] = hk_malloc(sizeof *pfx * (size_t)(k + 1));
    char k1[KEY_MAX], k2[KEY_MAX], a1[16], a2[16], a3[16], a4[16], a5[128], a6[16];
    uint64_t seq = ++rl->seq;
    snprintf(k1, sizeof k1, "%srl:%s", rl->prefix, s->key);
    snprintf(k2, sizeof k2, "%srlp:%s", rl->prefix, s->key);
    snprintf(a1, sizeof a1, "%d", limit);
    snprintf(a2, sizeof a2, "%d", want);
    snprintf(a3, sizeof a3, "%d", HK_RL_WINDOW_MS + MARGIN_MS);
    snprintf(a4, sizeof a4, "%d", HK_RL_WINDOW_MS);
    snprintf(a5, sizeof a5, "%s:%llu", rl->node, (unsigned long long)seq);
    snprintf(a6, sizeof a6, "%d", k);
    const char *fixed[8] = {k1, k2, a1, a2, a3, a4, a5, a6};
    memcpy(argv, fixed, sizeof fixed);
    for (int j = 0; j < k; j++) {
        snprintf(num[2 * j], sizeof num[0], "%lld", (long long)s->hist[j].at);
        snprintf(num[2 * j + 1], sizeof num[0], "%d", s->hist[j].n);
        snprintf(pfx[j], sizeof pfx[0], "%s:%llu", rl->node, (unsigned long long)s->hist[j].seq);
        argv[8 + 3 * j] = num[2 * j];
        argv[9 + 3 * j] = pfx[j];
        argv[10 + 3 * j] = num[2 * j + 1];
    }
    ask *a = hk_calloc(1, sizeof *a);
    a->slot = s;
    a->rl = rl;
    a->sent_mono = hk_mono_ms();
    a->seq = seq;
    a->epoch = epoch;
    int rc = hk_redis_eval(rl->r, &take_script, 2, argc, argv, NULL, on_answer, a);
    free(argv);
    free(num);
    free(pfx);
    if (rc) {
        free(a);
        return rc;
    }
    s->asking = a;
    return HK_OK;
}

static int64_t redis_take(hk_limiter *l, hk_rl_slot *s, int limit, int want, int64_t now_ms)
{
    redis_lim *rl = (redis_lim *)l;
    int64_t mono = hk_mono_ms();
    if (s->granted > 0) {
        if (mono <= s->granted_until) {
            s->granted--;
            return 0;
        }
        s->granted = 0; /* lapsed unused: they still count in Redis */
    }
    if (s->asking) return HK_RL_ASKED;
    if (mono < s->retry_at) return s->retry_at - mono;
    if (mono < rl->settle_until) return rl->settle_until - mono;
    if (limit < 1) limit = 1;
    if (want < 1) want = 1;
    if (want > limit) want = limit;
    s->limit = limit;
    if (ask_send(rl, s, limit, want)) {
        s->retry_at = mono + DOWN_RETRY_MS;
        if (mono - rl->held_logged_mono > 10000 || !rl->held_logged_mono) {
            rl->held_logged_mono = mono;
            HK_LOG(HK_LOG_WARN, "ratelimit.held",
                   HK_LS("msg", "Redis is down: deliveries of rate-limited webhooks are held "
                                "until it is back (no burst)"),
                   HK_LS("webhook_id", s->key));
        }
        return DOWN_RETRY_MS;
    }
    return HK_RL_ASKED;
}

/* Redis is (back) up, maybe without its data: hold grants for SETTLE_MS and write every
 * webhook's recent grants again at once. */
static void on_redis_state(void *arg, int up)
{
    redis_lim *rl = arg;
    if (!up) return;
    uint64_t epoch = hk_redis_epoch(rl->r);
    if (epoch <= 1) return; /* the first connection: nothing can have been lost yet */
    rl->settle_until = hk_mono_ms() + SETTLE_MS;
    int n = 0;
    hk_rl_slot *s = rl->reg, *next;
    for (; s; s = next) {
        next = s->reg_next;
        hist_prune(rl, s);
        if (!s->hist_n) {
            reg_del(rl, s);
            continue;
        }
        if (s->asking || s->epoch == epoch) continue; /* the question in flight re-seeds */
        if (ask_send(rl, s, s->limit > 0 ? s->limit : 1, 0) == HK_OK) n++;
    }
    HK_LOG(HK_LOG_INFO, "ratelimit.reseed", HK_LI("webhooks", n), HK_LI("hold_ms", SETTLE_MS),
           HK_LS("msg", "Redis may have lost the last minute of attempt starts: writing this "
                        "node's again, limited webhooks wait meanwhile"));
}

static void redis_idle(hk_limiter *l, hk_rl_slot *s)
{
    /* pacing ends by itself one window after the last wait: other nodes may still have a
     * backlog of the same webhook */
}

static void redis_slot_clear(hk_limiter *l, hk_rl_slot *s)
{
    redis_lim *rl = (redis_lim *)l;
    if (s->asking) ((ask *)s->asking)->slot = NULL;
    s->asking = NULL;
    reg_del(rl, s);
    free(s->hist);
    s->hist = NULL;
    s->hist_n = s->hist_cap = 0;
    hk_rl_free(&s->log);
}

static void redis_free(hk_limiter *l)
{
    free(l);
}

static const hk_limiter_ops redis_ops = {
    .name = "redis",
    .take = redis_take,
    .idle = redis_idle,
    .slot_clear = redis_slot_clear,
    .free = redis_free,
};

hk_limiter *hk_limiter_redis_new(hk_redis *r, const char *prefix, const char *node_id)
{
    redis_lim *rl = hk_calloc(1, sizeof *rl);
    rl->l.ops = &redis_ops;
    rl->r = r;
    rl->prefix = prefix;
    rl->node = node_id;
    rl->redis_now_mono = hk_mono_ms();
    hk_redis_listen(r, on_redis_state, rl);
    return &rl->l;
}
