/*
 * queue.h: where the delivery schedule lives, behind one interface with two backends:
 * local.c (the store's own due index: the embedded default, and PostgreSQL without Redis) and
 * redis.c (REDIS_URL: a sorted set of due times shared by all nodes).
 *
 * The store stays the truth either way: a queue only says which deliveries are due and which
 * node holds them. The dispatcher asks the queue for due work (claim), hands back work it will
 * not do (release), keeps its claims alive (heartbeat), and tells the queue what became of
 * each attempt (results, after they are committed) and of each new delivery (ingested).
 * Each queue also owns the rate limiter that matches it (limiter.h): in-process with the local
 * queue, shared in Redis with the Redis queue.
 *
 * Every call with a callback calls it exactly once on the loop thread, never from inside the
 * call. Requests the callback receives are the store's (store.h); the callback owns their
 * outputs and must hk_req_clear them.
 */
#ifndef HK_QUEUE_H
#define HK_QUEUE_H

#include "queue/limiter.h"
#include "store/store.h"

struct event_base;
typedef struct hk_queue hk_queue;
typedef void (*hk_queue_cb)(hk_req *req, void *arg);

typedef struct hk_queue_ops {
    const char *name;
    /* Claims up to limit deliveries due at or before now + horizon_ms for this node. The
     * request passed to cb is an HK_REQ_CLAIM with jobs and webhooks. */
    void (*claim)(hk_queue *q, int limit, int64_t horizon_ms, hk_queue_cb cb, void *arg);
    /* Hands leased deliveries back (items copied). cb may be NULL. */
    void (*release)(hk_queue *q, const hk_release *items, int n, hk_queue_cb cb, void *arg);
    /* Renews this node's claims until now + lease_ms and takes back dead nodes' work. */
    void (*heartbeat)(hk_queue *q, int64_t lease_ms, hk_queue_cb cb, void *arg);
    /* A results batch the store committed (req is the HK_REQ_RESULTS, read only): retries
     * need rescheduling, and the new heads of FIFO lines (u.results.heads) became claimable. */
    void (*results_done)(hk_queue *q, const hk_req *results);
    /* An ingest committed (req is the HK_REQ_INGEST, read only): its deliveries that were
     * not leased to this node (u.ingest.queued) must be scheduled. */
    void (*ingested)(hk_queue *q, const hk_req *ingest);
    /* Deliveries became due in the store without passing through the queue (a webhook was
     * set active again, replays): schedule whatever the store holds due. */
    void (*kick)(hk_queue *q);
    /* The dispatcher is shutting down: no more background work (sweeps); calls already
     * made still complete. */
    void (*stop)(hk_queue *q);
    /* 1 while the queue backend is reachable. */
    int (*healthy)(hk_queue *q);
    void (*free)(hk_queue *q);
} hk_queue_ops;

struct hk_queue {
    const hk_queue_ops *ops;
    hk_store *store;
    const char *node_id;
    hk_limiter *limiter; /* the rate limiter that goes with this schedule; owned */
    int fifo_heads;      /* 1: results_done needs the new heads of FIFO lines (hk_result.fifo:
                            the store reads them only when asked) */
};

/* The in-process queue over the store's due index (with the local rate limiter). */
hk_queue *hk_queue_local_new(hk_store *store, const char *node_id);

/* The Redis queue (REDIS_URL, HOOKD_REDIS_PREFIX, HOOKD_SWEEP_INTERVAL_MS from cfg, which
 * must outlive it), with the shared rate limiter. Connects in the background. NULL with err
 * (naming REDIS_URL) if the URL is invalid. */
hk_queue *hk_queue_redis_new(struct event_base *base, hk_store *store, const hk_config *cfg,
                             char *err, size_t errlen);

/* The calls through the backend's table: callers write hk_queue_claim(q, …), never
 * q->ops->claim(q, …). Each has the contract of its hk_queue_ops entry above. */
static inline const char *hk_queue_name(const hk_queue *q)
{
    return q->ops->name;
}
static inline void hk_queue_claim(hk_queue *q, int limit, int64_t horizon_ms, hk_queue_cb cb,
                                  void *arg)
{
    q->ops->claim(q, limit, horizon_ms, cb, arg);
}
static inline void hk_queue_release(hk_queue *q, const hk_release *items, int n, hk_queue_cb cb,
                                    void *arg)
{
    q->ops->release(q, items, n, cb, arg);
}
static inline void hk_queue_heartbeat(hk_queue *q, int64_t lease_ms, hk_queue_cb cb, void *arg)
{
    q->ops->heartbeat(q, lease_ms, cb, arg);
}
static inline void hk_queue_results_done(hk_queue *q, const hk_req *results)
{
    q->ops->results_done(q, results);
}
static inline void hk_queue_ingested(hk_queue *q, const hk_req *ingest)
{
    q->ops->ingested(q, ingest);
}
static inline void hk_queue_kick(hk_queue *q)
{
    q->ops->kick(q);
}
static inline void hk_queue_stop(hk_queue *q)
{
    q->ops->stop(q);
}
static inline int hk_queue_healthy(hk_queue *q)
{
    return q->ops->healthy(q);
}
/* Frees q and its limiter; NULL is ignored. */
static inline void hk_queue_free(hk_queue *q)
{
    if (q) q->ops->free(q);
}

#endif
