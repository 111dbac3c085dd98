/*
 * local.c: the queue backend without Redis. The schedule is the store's own: a delivery is
 * due when its row says so (webhook_delivery.next_retry_at, indexed), a claim leases rows to
 * this node, a node's heartbeat keeps its leases, and a dead node's leases are handed back by
 * whichever node's heartbeat notices first. Nothing to lose: there is no second copy.
 */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/time.h"
#include "queue/queue.h"

typedef struct local_q {
    hk_queue q;
} local_q;

typedef struct local_req { /* a store request plus where to answer */
    hk_req req;
    hk_queue_cb cb;
    void *arg;
    hk_release *items; /* RELEASE: our copy */
} local_req;

static void local_done(hk_req *req)
{
    local_req *lr = HK_CONTAINER_OF(req, local_req, req);
    if (lr->cb)
        lr->cb(req, lr->arg);
    else
        hk_req_clear(req);
    free(lr->items);
    free(lr);
}

static local_req *new_req(hk_queue *q, int kind, hk_queue_cb cb, void *arg)
{
    local_req *lr = hk_calloc(1, sizeof *lr);
    lr->req.kind = kind;
    lr->req.done = local_done;
    lr->req.node_id = q->node_id;
    lr->cb = cb;
    lr->arg = arg;
    return lr;
}

static void l_claim(hk_queue *q, int limit, int64_t horizon_ms, hk_queue_cb cb, void *arg)
{
    local_req *lr = new_req(q, HK_REQ_CLAIM, cb, arg);
    lr->req.u.claim.limit = limit;
    lr->req.u.claim.horizon = horizon_ms;
    hk_store_submit(q->store, &lr->req);
}

static void l_release(hk_queue *q, const hk_release *items, int n, hk_queue_cb cb, void *arg)
{
    local_req *lr = new_req(q, HK_REQ_RELEASE, cb, arg);
    lr->items = hk_malloc(sizeof(hk_release) * (size_t)(n ? n : 1));
    memcpy(lr->items, items, sizeof(hk_release) * (size_t)n);
    lr->req.u.release.items = lr->items;
    lr->req.u.release.n = n;
    hk_store_submit(q->store, &lr->req);
}

static void l_heartbeat(hk_queue *q, int64_t lease_ms, hk_queue_cb cb, void *arg)
{
    local_req *lr = new_req(q, HK_REQ_HEARTBEAT, cb, arg);
    lr->req.now = hk_now_ms();
    lr->req.u.heartbeat.alive_until = lr->req.now + lease_ms;
    hk_store_submit(q->store, &lr->req);
}

static void l_results_done(hk_queue *q, const hk_req *results)
{
    (void)q;
    (void)results; /* the store rows already hold the next due times and heads */
}

static void l_ingested(hk_queue *q, const hk_req *ingest)
{
    (void)q;
    (void)ingest; /* unleased deliveries are in the due index already */
}

static void l_kick(hk_queue *q)
{
    (void)q; /* the next claim reads the due index */
}

static void l_stop(hk_queue *q)
{
    (void)q;
}

static int l_healthy(hk_queue *q)
{
    return hk_store_healthy(q->store);
}

static void l_free(hk_queue *q)
{
    hk_limiter_free(q->limiter);
    free(q);
}

static const hk_queue_ops local_ops = {
    .name = "local",
    .claim = l_claim,
    .release = l_release,
    .heartbeat = l_heartbeat,
    .results_done = l_results_done,
    .ingested = l_ingested,
    .kick = l_kick,
    .stop = l_stop,
    .healthy = l_healthy,
    .free = l_free,
};

hk_queue *hk_queue_local_new(hk_store *store, const char *node_id)
{
    local_q *lq = hk_calloc(1, sizeof *lq);
    lq->q.ops = &local_ops;
    lq->q.store = store;
    lq->q.node_id = node_id;
    lq->q.limiter = hk_limiter_local_new();
    return &lq->q;
}
