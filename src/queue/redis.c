/*
 * redis.c: the queue backend with REDIS_URL. Redis holds the schedule that every node shares;
 * the store stays the only truth. Keys (P = HOOKD_REDIS_PREFIX, default "hookd:"):
 *
 *   P due      sorted set: delivery id -> due time (ms since the epoch). The schedule.
 *   P claims   sorted set: delivery id -> claim expiry. Ids a node took out of `due` and is
 *              confirming with the store; a node that dies there loses them for HOOKD_LEASE_MS
 *              only: the next claim by any node puts expired claims back into `due`.
 *   P swept    a marker written by the claim script when it finds it missing: its absence
 *              means Redis lost its data (FLUSHALL, a restart without persistence), and the
 *              node that notices first sweeps at once.
 *   P sweep    the periodic sweep's lock (SET NX PX): one sweep per interval for all nodes.
 *   P rl:<webhook id>, P rlp:<webhook id>   the shared rate limiter (queue/limiter_redis.c).
 *
 * Claim: one Lua script (atomic across nodes) moves up to `limit` ids due by now + horizon
 * from `due` to `claims`; then an HK_REQ_CLAIM_IDS store request confirms each id against its
 * row (status, lease, due time, webhook) and leases the ones the store agrees with, so nothing
 * is ever sent only because Redis said so; then the ids leave `claims`, and rows the store
 * says are due later go back into `due` at the store's time. Ids the store refuses (finished,
 * leased by a node, parked) are dropped: whoever holds such a row schedules it again when it
 * is done with it, and a row of a dead node comes back through the store's heartbeat.
 *
 * Holding: while a node holds a delivery in memory, the store's lease (per-node heartbeat,
 * HK_REQ_HEARTBEAT, the same as without Redis) is what keeps other nodes off it; Redis has no
 * copy. When the node is done: a retry not kept in memory, a hand-back (release), a new
 * delivery it had no room for (ingest) or the next head of a FIFO line whose head ended (read
 * by the results' transaction) is added to `due` after the store committed it.
 *
 * The sweeper closes every gap between the two writes (a crash between commit and ZADD, Redis
 * down, flushed or restarted empty, a dead node's work handed back by the heartbeat): it reads
 * the store's due index (HK_REQ_DUE_SCAN: rows claimable and due within two sweep intervals),
 * page by page, and adds each id to `due` unless it is being claimed (one already there moves
 * earlier if the store has it due sooner: an unparked retry). It runs every
 * HOOKD_SWEEP_INTERVAL_MS (one node per interval, by the lock), at start, when Redis comes back,
 * when the marker is gone, and when the store gained due rows the queue did not see (kick:
 * unpark, replays, reclaimed leases).
 *
 * Redis down: claims go to the store's due index directly (HK_REQ_CLAIM, as the local queue
 * does), so deliveries of webhooks that are not rate limited keep going; the limiter holds the
 * limited ones. Writes to Redis are skipped, and the sweep after reconnecting repairs them.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/time.h"
#include "queue/queue.h"
#include "queue/redis_conn.h"

#define KEY_MAX       160
#define SWEEP_PAGE    1000
#define ZADD_CHUNK    1000
#define KICK_DELAY_MS 20

typedef struct sweep sweep;

typedef struct redis_q {
    hk_queue q;
    struct event_base *base;
    const hk_config *cfg;
    hk_redis *r;
    char k_due[KEY_MAX], k_claims[KEY_MAX], k_marker[KEY_MAX], k_lock[KEY_MAX];
    struct event *sweep_timer; /* periodic, every HOOKD_SWEEP_INTERVAL_MS */
    struct event *kick_timer;  /* a forced sweep, soon */
    int started;               /* the dispatcher runs (first heartbeat): sweeps allowed */
    int stopped;               /* the dispatcher is shutting down */
    int freeing;               /* inside free: callbacks drop their work */
    sweep *sw;                 /* the sweep running, if any */
    int sweep_again;           /* another was asked for meanwhile */
    int64_t sweeps;            /* completed, for logs */
    char marker[128];          /* the marker's value seen last ("" = none yet) */
} redis_q;

/* ---- scripts ---------------------------------------------------------------------------- */

/* KEYS[1] due, KEYS[2] claims, KEYS[3] marker.
 * ARGV[1] now (ms), ARGV[2] horizon (ms), ARGV[3] limit, ARGV[4] claim lease (ms), ARGV[5] the
 * marker's value if it has to be written again (unique: node and time).
 * Returns {fresh, marker, id1, due1, id2, due2, ...}; fresh = 1 if the marker was missing. A
 * marker different from the one a node saw last means another node found it missing. */
static hk_redis_script claim_script = {
    .name = "queue_claim",
    .body = "local now = tonumber(ARGV[1])\n"
            "local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)\n"
            "for _, id in ipairs(stale) do\n"
            "  redis.call('ZADD', KEYS[1], 'NX', now, id)\n"
            "  redis.call('ZREM', KEYS[2], id)\n"
            "end\n"
            "local got = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now + tonumber(ARGV[2]),\n"
            "                       'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))\n"
            "local exp = now + tonumber(ARGV[4])\n"
            "for i = 1, #got, 2 do\n"
            "  redis.call('ZREM', KEYS[1], got[i])\n"
            "  redis.call('ZADD', KEYS[2], exp, got[i])\n"
            "end\n"
            "local fresh = 0\n"
            "local marker = redis.call('GET', KEYS[3])\n"
            "if not marker then\n"
            "  marker = ARGV[5]\n"
            "  redis.call('SET', KEYS[3], marker)\n"
            "  fresh = 1\n"
            "end\n"
            "table.insert(got, 1, marker)\n"
            "table.insert(got, 1, fresh)\n"
            "return got\n",
};

/* KEYS[1] marker. ARGV[1] its value if it has to be written. Returns {fresh, marker}. Run
 * first on every connection, so that claims compare against this connection's marker. */
static hk_redis_script marker_script = {
    .name = "queue_marker",
    .body = "local m = redis.call('GET', KEYS[1])\n"
            "if m then return {0, m} end\n"
            "redis.call('SET', KEYS[1], ARGV[1])\n"
            "return {1, ARGV[1]}\n",
};

/* KEYS[1] due, KEYS[2] claims. ARGV: id1, due1, id2, due2, ...
 * Adds each id to due unless it is being claimed; an id already there keeps its score unless
 * the store's due time is earlier (a retry parked while its webhook was paused is due at once
 * when it is active again, not at the time Redis still had: ZADD's LT, written out because
 * Redis 5.0 lacks it). Returns how many were added. */
static hk_redis_script sweep_script = {
    .name = "queue_sweep",
    .body = "local added = 0\n"
            "for i = 1, #ARGV, 2 do\n"
            "  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then\n"
            "    local s = redis.call('ZSCORE', KEYS[1], ARGV[i])\n"
            "    if not s then\n"
            "      added = added + redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])\n"
            "    elseif tonumber(ARGV[i + 1]) < tonumber(s) then\n"
            "      redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])\n"
            "    end\n"
            "  end\n"
            "end\n"
            "return added\n",
};

/* ---- small Redis writes (fire and forget: the sweeper repairs a lost one) ------------------ */

/* ZADD due for each item with a due time (0 = parked: not scheduled). */
static void zadd_due(redis_q *rq, const hk_release *items, int n)
{
    if (!hk_redis_up(rq->r)) return;
    const char **argv = hk_malloc(sizeof(char *) * (size_t)(2 + 2 * ZADD_CHUNK));
    char(*scores)[24] = hk_malloc(sizeof *scores * ZADD_CHUNK);
    int i = 0;
    while (i < n) {
        int argc = 2, k = 0;
        argv[0] = "ZADD";
        argv[1] = rq->k_due;
        for (; i < n && k < ZADD_CHUNK; i++) {
            if (items[i].next_retry_at <= 0) continue;
            snprintf(scores[k], sizeof scores[k], "%lld", (long long)items[i].next_retry_at);
            argv[argc++] = scores[k];
            argv[argc++] = items[i].id;
            k++;
        }
        if (k) hk_redis_cmd(rq->r, NULL, NULL, argc, argv, NULL);
    }
    free(scores);
    free(argv);
}

/* ZREM claims ids[0..n). */
static void zrem_claims(redis_q *rq, const char *const *ids, int n)
{
    if (!n || !hk_redis_up(rq->r)) return;
    const char **argv = hk_malloc(sizeof(char *) * (size_t)(n + 2));
    argv[0] = "ZREM";
    argv[1] = rq->k_claims;
    for (int i = 0; i < n; i++) argv[2 + i] = ids[i];
    hk_redis_cmd(rq->r, NULL, NULL, n + 2, argv, NULL);
    free(argv);
}

/* ---- the sweeper -------------------------------------------------------------------------- */

struct sweep {
    hk_req req; /* HK_REQ_DUE_SCAN, reused page after page */
    redis_q *rq;
    const char *why;
    int64_t until;
    int64_t started_mono;
    int64_t rows, added;
    int pages;
};

static void sweep_page(sweep *sw);
static void sweep_start(redis_q *rq, const char *why);

static void sweep_end(sweep *sw, const char *failed)
{
    redis_q *rq = sw->rq;
    hk_req_clear(&sw->req);
    if (failed) {
        HK_LOG(HK_LOG_WARN, "queue.sweep_failed", HK_LS("msg", failed), HK_LS("why", sw->why),
               HK_LI("rows", sw->rows), HK_LI("added", sw->added));
    } else {
        rq->sweeps++;
        HK_LOG(sw->added ? HK_LOG_INFO : HK_LOG_DEBUG, "queue.swept", HK_LS("why", sw->why),
               HK_LI("rows", sw->rows), HK_LI("added", sw->added), HK_LI("pages", sw->pages),
               HK_LI("ms", hk_mono_ms() - sw->started_mono));
    }
    if (rq->sw == sw) rq->sw = NULL;
    free(sw);
    if (rq->sweep_again && !rq->stopped && !rq->freeing) {
        rq->sweep_again = 0;
        sweep_start(rq, "asked again during a sweep");
    }
}

static void on_sweep_added(redisReply *rep, void *arg)
{
    sweep *sw = arg;
    redis_q *rq = sw->rq;
    if (rq->freeing) {
        hk_req_clear(&sw->req);
        if (rq->sw == sw) rq->sw = NULL;
        free(sw);
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        sweep_end(sw, rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "Redis went away");
        return;
    }
    sw->added += rep->integer;
    if (sw->req.u.due_scan.more && !rq->stopped)
        sweep_page(sw);
    else
        sweep_end(sw, NULL);
}

static void on_sweep_page(hk_req *req)
{
    sweep *sw = HK_CONTAINER_OF(req, sweep, req);
    redis_q *rq = sw->rq;
    if (rq->freeing || rq->stopped) {
        sweep_end(sw, rq->stopped ? NULL : "stopping");
        return;
    }
    if (req->rc) {
        sweep_end(sw, hk_strerror(req->rc));
        return;
    }
    sw->pages++;
    int n = req->u.due_scan.n;
    sw->rows += n;
    if (n == 0) {
        sweep_end(sw, NULL);
        return;
    }
    const char **argv = hk_malloc(sizeof(char *) * (size_t)(2 + 2 * n));
    char(*scores)[24] = hk_malloc(sizeof *scores * (size_t)n);
    argv[0] = rq->k_due;
    argv[1] = rq->k_claims;
    for (int i = 0; i < n; i++) {
        snprintf(scores[i], sizeof scores[i], "%lld",
                 (long long)req->u.due_scan.items[i].next_retry_at);
        argv[2 + 2 * i] = req->u.due_scan.items[i].id;
        argv[3 + 2 * i] = scores[i];
    }
    int rc = hk_redis_eval(rq->r, &sweep_script, 2, 2 + 2 * n, argv, NULL, on_sweep_added, sw);
    free(scores);
    free(argv);
    if (rc) sweep_end(sw, "Redis is down"); /* the reconnect sweeps again */
}

static void sweep_page(sweep *sw)
{
    /* keep the cursor (input and output of the previous page); drop its items */
    char cursor[sizeof sw->req.u.due_scan.cursor];
    hk_strlcpy(cursor, sw->req.u.due_scan.cursor, sizeof cursor);
    hk_req_clear(&sw->req);
    memset(&sw->req, 0, sizeof sw->req);
    sw->req.kind = HK_REQ_DUE_SCAN;
    sw->req.done = on_sweep_page;
    sw->req.node_id = sw->rq->q.node_id;
    sw->req.u.due_scan.until = sw->until;
    sw->req.u.due_scan.limit = SWEEP_PAGE;
    hk_strlcpy(sw->req.u.due_scan.cursor, cursor, sizeof cursor);
    hk_store_submit(sw->rq->q.store, &sw->req);
}

/* Starts a sweep now (or right after the one running). */
static void sweep_start(redis_q *rq, const char *why)
{
    if (!rq->started || rq->stopped || rq->freeing) return;
    if (rq->sw) {
        rq->sweep_again = 1;
        return;
    }
    if (!hk_redis_up(rq->r)) return; /* coming back up sweeps */
    sweep *sw = hk_calloc(1, sizeof *sw);
    sw->rq = rq;
    sw->why = why;
    sw->started_mono = hk_mono_ms();
    /* rows due before the sweep after next: a row missing from Redis is back in time */
    sw->until = hk_now_ms() + 2 * (int64_t)rq->cfg->sweep_interval_ms;
    rq->sw = sw;
    sweep_page(sw);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    sweep_start(arg, "kick");
}

static void kick_soon(redis_q *rq)
{
    if (!rq->started || rq->stopped || rq->freeing) return;
    if (evtimer_pending(rq->kick_timer, NULL)) return;
    struct timeval tv = {0, KICK_DELAY_MS * 1000};
    evtimer_add(rq->kick_timer, &tv);
}

static void on_sweep_lock(redisReply *rep, void *arg)
{
    redis_q *rq = arg;
    if (rq->freeing || !rep) return;
    if (rep->type == REDIS_REPLY_STATUS) sweep_start(rq, "interval"); /* OK: ours */
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    redis_q *rq = arg;
    if (!rq->started || rq->stopped || rq->sw) return;
    char px[24];
    /* a little shorter than the interval, so the node that swept last can take it again */
    snprintf(px, sizeof px, "%d", rq->cfg->sweep_interval_ms - rq->cfg->sweep_interval_ms / 10);
    const char *argv[6] = {"SET", rq->k_lock, rq->q.node_id, "NX", "PX", px};
    hk_redis_cmd(rq->r, on_sweep_lock, rq, 6, argv, NULL);
}

/* ---- claims ------------------------------------------------------------------------------- */

typedef struct claim_op {
    hk_req req; /* HK_REQ_CLAIM_IDS, or HK_REQ_CLAIM when Redis is down */
    redis_q *rq;
    hk_queue_cb cb;
    void *arg;
    int limit;
    int64_t horizon;
    int n;
    char (*ids)[HK_ID_MAX];
    const char **idp;
    int64_t *dues; /* the scores the ids had in `due` */
} claim_op;

static void claim_op_free(claim_op *op)
{
    free(op->ids);
    free(op->idp);
    free(op->dues);
    free(op);
}

static void on_claim_done(hk_req *req)
{
    claim_op *op = HK_CONTAINER_OF(req, claim_op, req);
    redis_q *rq = op->rq;
    if (req->kind == HK_REQ_CLAIM_IDS) {
        if (req->rc == 0) {
            zrem_claims(rq, op->idp, op->n);
            zadd_due(rq, req->u.claim.later, req->u.claim.nlater);
        } else {
            /* the store could not confirm: back into the schedule as they were */
            hk_release *back = hk_malloc(sizeof(hk_release) * (size_t)op->n);
            for (int i = 0; i < op->n; i++) {
                hk_strlcpy(back[i].id, op->ids[i], HK_ID_MAX);
                back[i].next_retry_at = op->dues[i] > 0 ? op->dues[i] : hk_now_ms();
            }
            zadd_due(rq, back, op->n);
            zrem_claims(rq, op->idp, op->n);
            free(back);
        }
        req->u.claim.limit = op->limit;
    }
    if (rq->freeing) {
        hk_req_clear(req);
    } else {
        op->cb(req, op->arg);
    }
    claim_op_free(op);
}

static void submit_claim(claim_op *op, int kind)
{
    op->req.kind = kind;
    op->req.done = on_claim_done;
    op->req.node_id = op->rq->q.node_id;
    op->req.now = hk_now_ms();
    op->req.u.claim.limit = op->limit;
    op->req.u.claim.horizon = op->horizon;
    if (kind == HK_REQ_CLAIM_IDS) {
        op->req.u.claim.ids = op->idp;
        op->req.u.claim.nids = op->n;
    }
    hk_store_submit(op->rq->q.store, &op->req);
}

static void on_claim_reply(redisReply *rep, void *arg)
{
    claim_op *op = arg;
    redis_q *rq = op->rq;
    if (rq->freeing) {
        claim_op_free(op); /* the dispatcher is gone */
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->elements % 2 != 0) {
        if (rep)
            HK_LOG(HK_LOG_ERROR, "queue.claim_script_failed",
                   HK_LS("msg", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply"));
        submit_claim(op, HK_REQ_CLAIM); /* keep delivering from the store */
        return;
    }
    const char *marker = rep->element[1]->str;
    int fresh = rep->element[0]->integer == 1;
    if (rq->marker[0] && (fresh || strcmp(marker, rq->marker) != 0)) {
        /* lost while connected: this node saw another marker on this connection */
        HK_LOG(HK_LOG_WARN, "queue.redis_empty",
               HK_LS("msg", fresh ? "Redis lost the schedule (flushed, or restarted without "
                                    "persistence); sweeping the store's due deliveries back"
                                  : "another node found Redis's data lost"));
        kick_soon(rq);
        hk_redis_data_lost(rq->r); /* the rate limiter writes its recent starts back */
    } else if (fresh) {
        kick_soon(rq);
    }
    hk_strlcpy(rq->marker, marker, sizeof rq->marker);
    int n = (int)(rep->elements - 2) / 2;
    op->n = 0;
    op->ids = hk_malloc(sizeof *op->ids * (size_t)(n ? n : 1));
    op->idp = hk_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    op->dues = hk_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        redisReply *id = rep->element[2 + 2 * i], *sc = rep->element[3 + 2 * i];
        if (id->type != REDIS_REPLY_STRING || id->len == 0 || id->len >= HK_ID_MAX) continue;
        memcpy(op->ids[op->n], id->str, id->len);
        op->ids[op->n][id->len] = '\0';
        op->dues[op->n] = sc->type == REDIS_REPLY_STRING ? strtoll(sc->str, NULL, 10) : 0;
        op->idp[op->n] = op->ids[op->n];
        op->n++;
    }
    if (op->n == 0) { /* nothing due: no store transaction (we are in a Redis callback) */
        op->req.kind = HK_REQ_CLAIM_IDS;
        op->req.rc = 0;
        on_claim_done(&op->req);
        return;
    }
    submit_claim(op, HK_REQ_CLAIM_IDS);
}

static void r_claim(hk_queue *q, int limit, int64_t horizon_ms, hk_queue_cb cb, void *arg)
{
    redis_q *rq = (redis_q *)q;
    claim_op *op = hk_calloc(1, sizeof *op);
    op->rq = rq;
    op->cb = cb;
    op->arg = arg;
    op->limit = limit;
    op->horizon = horizon_ms;
    char now[24], hz[24], lim[16], lease[16], mark[128];
    int64_t t = hk_now_ms();
    snprintf(now, sizeof now, "%lld", (long long)t);
    snprintf(mark, sizeof mark, "%s:%lld", q->node_id, (long long)t);
    snprintf(hz, sizeof hz, "%lld", (long long)horizon_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(lease, sizeof lease, "%d", rq->cfg->lease_ms);
    const char *argv[8] = {rq->k_due, rq->k_claims, rq->k_marker, now, hz, lim, lease, mark};
    if (hk_redis_eval(rq->r, &claim_script, 3, 8, argv, NULL, on_claim_reply, op))
        submit_claim(op, HK_REQ_CLAIM); /* Redis is down: the store's due index */
}

/* ---- release, heartbeat, results, ingest ------------------------------------------------------
 */

typedef struct store_op {
    hk_req req;
    redis_q *rq;
    hk_queue_cb cb;
    void *arg;
    hk_release *items; /* RELEASE: our copy */
} store_op;

static void on_store_op(hk_req *req)
{
    store_op *so = HK_CONTAINER_OF(req, store_op, req);
    redis_q *rq = so->rq;
    if (req->kind == HK_REQ_RELEASE && req->rc == 0) zadd_due(rq, so->items, req->u.release.n);
    if (req->kind == HK_REQ_HEARTBEAT && req->rc == 0 && req->u.heartbeat.reclaimed > 0)
        kick_soon(rq); /* a dead node's deliveries are claimable again: into the schedule */
    if (so->cb && !rq->freeing)
        so->cb(req, so->arg);
    else
        hk_req_clear(req);
    free(so->items);
    free(so);
}

static store_op *store_op_new(redis_q *rq, int kind, hk_queue_cb cb, void *arg)
{
    store_op *so = hk_calloc(1, sizeof *so);
    so->rq = rq;
    so->cb = cb;
    so->arg = arg;
    so->req.kind = kind;
    so->req.done = on_store_op;
    so->req.node_id = rq->q.node_id;
    return so;
}

static void r_release(hk_queue *q, const hk_release *items, int n, hk_queue_cb cb, void *arg)
{
    redis_q *rq = (redis_q *)q;
    store_op *so = store_op_new(rq, HK_REQ_RELEASE, cb, arg);
    so->items = hk_malloc(sizeof(hk_release) * (size_t)(n ? n : 1));
    memcpy(so->items, items, sizeof(hk_release) * (size_t)n);
    so->req.u.release.items = so->items;
    so->req.u.release.n = n;
    hk_store_submit(q->store, &so->req);
}

static void r_heartbeat(hk_queue *q, int64_t lease_ms, hk_queue_cb cb, void *arg)
{
    redis_q *rq = (redis_q *)q;
    if (!rq->started && !rq->stopped) {
        /* the dispatcher has started: sweep now (a restart hands every old lease back, and
         * Redis may have lost anything meanwhile), then every interval */
        rq->started = 1;
        int ms = rq->cfg->sweep_interval_ms;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(rq->sweep_timer, &tv);
        kick_soon(rq);
    }
    store_op *so = store_op_new(rq, HK_REQ_HEARTBEAT, cb, arg);
    so->req.now = hk_now_ms();
    so->req.u.heartbeat.alive_until = so->req.now + lease_ms;
    hk_store_submit(q->store, &so->req);
}

/* Retries handed back to the store go into `due` at their time; so do the new heads of FIFO
 * lines (docs/API.md "Ordering"): the store's claim refused them while the delivery before
 * them was open, so the schedule may not hold them (or held them and dropped them), and
 * without this they would wait for the next sweep and the poll after it. Sent before the
 * dispatcher's next claim on the same connection, so that claim finds them. */
static void r_results_done(hk_queue *q, const hk_req *results)
{
    redis_q *rq = (redis_q *)q;
    const hk_result *items = results->u.results.items;
    int n = results->u.results.n;
    if (results->u.results.nheads)
        zadd_due(rq, results->u.results.heads, results->u.results.nheads);
    hk_release *due = NULL;
    int nd = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].status != HK_DL_RETRYING || items[i].keep_lease) continue;
        if (!due) due = hk_malloc(sizeof(hk_release) * (size_t)n);
        hk_strlcpy(due[nd].id, items[i].delivery_id, HK_ID_MAX);
        due[nd].next_retry_at = items[i].next_retry_at;
        nd++;
    }
    if (nd) zadd_due(rq, due, nd);
    free(due);
}

static void r_ingested(hk_queue *q, const hk_req *ingest)
{
    if (ingest->rc == 0 && ingest->u.ingest.nqueued)
        zadd_due((redis_q *)q, ingest->u.ingest.queued, ingest->u.ingest.nqueued);
}

static void r_kick(hk_queue *q)
{
    kick_soon((redis_q *)q);
}

static void r_stop(hk_queue *q)
{
    redis_q *rq = (redis_q *)q;
    rq->stopped = 1;
    evtimer_del(rq->sweep_timer);
    evtimer_del(rq->kick_timer);
}

static int r_healthy(hk_queue *q)
{
    return hk_redis_up(((redis_q *)q)->r);
}

static void on_marker(redisReply *rep, void *arg)
{
    redis_q *rq = arg;
    if (rq->freeing || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return;
    if (rep->element[0]->integer == 1 && rq->marker[0])
        HK_LOG(HK_LOG_WARN, "queue.redis_empty",
               HK_LS("msg", "Redis came back without the schedule (restarted without "
                            "persistence?); sweeping the store's due deliveries back"));
    else if (rep->element[0]->integer == 1)
        HK_LOG(HK_LOG_INFO, "queue.redis_empty",
               HK_LS("msg", "the schedule in Redis is empty; filling it from the store"));
    hk_strlcpy(rq->marker, rep->element[1]->str, sizeof rq->marker);
}

static void on_redis_state(void *arg, int up)
{
    redis_q *rq = arg;
    if (!up) return;
    if (rq->freeing) return;
    /* this connection's marker first (any loss before it is covered by the reconnect: the
     * sweep below, and the rate limiter re-seeds on every new connection) */
    char mark[128];
    snprintf(mark, sizeof mark, "%s:%lld", rq->q.node_id, (long long)hk_now_ms());
    const char *argv[2] = {rq->k_marker, mark};
    /* rq->marker keeps the value seen before the outage: on_marker (whose reply comes before any
     * claim's on this connection) tells a Redis that came back empty from a first start */
    hk_redis_eval(rq->r, &marker_script, 1, 2, argv, NULL, on_marker, rq);
    kick_soon(rq); /* Redis may have come back empty */
}

static void r_free(hk_queue *q)
{
    redis_q *rq = (redis_q *)q;
    rq->freeing = 1;
    rq->stopped = 1;
    hk_limiter_free(q->limiter);
    hk_redis_free(rq->r); /* calls in flight end here (their callbacks drop their work) */
    if (rq->sw) {         /* a page still with the store: closed already, so it never comes back */
        hk_req_clear(&rq->sw->req);
        free(rq->sw);
    }
    event_free(rq->sweep_timer);
    event_free(rq->kick_timer);
    free(rq);
}

static const hk_queue_ops redis_ops = {
    .name = "redis",
    .claim = r_claim,
    .release = r_release,
    .heartbeat = r_heartbeat,
    .results_done = r_results_done,
    .ingested = r_ingested,
    .kick = r_kick,
    .stop = r_stop,
    .healthy = r_healthy,
    .free = r_free,
};

hk_queue *hk_queue_redis_new(struct event_base *base, hk_store *store, const hk_config *cfg,
                             char *err, size_t errlen)
{
    hk_redis *r = hk_redis_new(base, cfg->redis_url, err, errlen);
    if (!r) return NULL;
    redis_q *rq = hk_calloc(1, sizeof *rq);
    rq->q.ops = &redis_ops;
    rq->q.store = store;
    rq->q.node_id = cfg->node_id;
    rq->base = base;
    rq->cfg = cfg;
    rq->r = r;
    snprintf(rq->k_due, sizeof rq->k_due, "%sdue", cfg->redis_prefix);
    snprintf(rq->k_claims, sizeof rq->k_claims, "%sclaims", cfg->redis_prefix);
    snprintf(rq->k_marker, sizeof rq->k_marker, "%sswept", cfg->redis_prefix);
    snprintf(rq->k_lock, sizeof rq->k_lock, "%ssweep", cfg->redis_prefix);
    rq->sweep_timer = event_new(base, -1, EV_PERSIST, on_sweep_timer, rq);
    rq->kick_timer = evtimer_new(base, on_kick, rq);
    rq->q.limiter = hk_limiter_redis_new(r, cfg->redis_prefix, cfg->node_id);
    rq->q.fifo_heads = 1; /* the schedule learns of them from the results (r_results_done) */
    hk_redis_listen(r, on_redis_state, rq);
    return &rq->q;
}
