/*
 * writers.c: the dispatcher's writes to the store (see dispatcher_int.h): the results batch
 * (finished attempts gathered while the previous batch is written, then submitted as one
 * HK_REQ_RESULTS and written again until the store takes it, nothing dropped), the jobs handed
 * back (hk_queue_release: ids with their due time, retried until taken), and the projected
 * starts of rate-limited jobs (HK_REQ_RESCHEDULE, best effort). Each keeps one request in
 * flight at a time, and the next takes everything gathered meanwhile. What to write is the
 * core's (dispatcher.c) decision; nothing here holds or frees a job.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "delivery/dispatcher_int.h"

#define RESULTS_RETRY_MS 1000
#define RELEASE_RETRY_MS 1000

/* ---- pending (id, due time) lists --------------------------------------------------------- */

/* Appends (id, next_retry_at) to p, growing it. */
static void pending_add(pending_release *p, const char *id, int64_t next_retry_at)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->items = hk_realloc(p->items, sizeof(hk_release) * (size_t)p->cap);
    }
    hk_strlcpy(p->items[p->n].id, id, HK_ID_MAX);
    p->items[p->n].next_retry_at = next_retry_at;
    p->n++;
}

/* ---- jobs handed back ---------------------------------------------------------------------- */

void hk_dsp_release_add(hk_dispatch *d, const char *id, int64_t next_retry_at)
{
    pending_add(&d->rel, id, next_retry_at);
}

/* The queue answered a release: on failure the items go back to the pending list and are
 * tried again after RELEASE_RETRY_MS; on success what was queued meanwhile is flushed. */
static void on_released(hk_req *req, void *arg)
{
    hk_dispatch *d = arg;
    d->rel_inflight = 0;
    if (req->rc) {
        /* keep them for the next try: copy the items back into the pending list */
        HK_LOG(HK_LOG_WARN, "dispatch.release_failed", HK_LS("msg", hk_strerror(req->rc)),
               HK_LI("count", req->u.release.n));
        pending_release *p = &d->rel;
        for (int i = 0; i < req->u.release.n; i++) {
            if (p->n == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 64;
                p->items = hk_realloc(p->items, sizeof(hk_release) * (size_t)p->cap);
            }
            p->items[p->n++] = req->u.release.items[i];
        }
        hk_req_clear(req);
        struct timeval tv = {RELEASE_RETRY_MS / 1000, 0};
        evtimer_add(d->rel_retry, &tv);
        return;
    }
    hk_req_clear(req);
    if (d->rel.n) hk_dsp_flush_release(d);
    d->claim_more = 1; /* released work may be due now */
    hk_dsp_check_stopped(d);
}

void hk_dsp_flush_release(hk_dispatch *d)
{
    if (d->rel_inflight || !d->rel.n) return;
    d->rel_inflight = 1;
    hk_queue_release(d->queue, d->rel.items, d->rel.n, on_released, d);
    d->rel.n = 0;
}

/* The release retry timer. */
static void on_rel_retry(evutil_socket_t fd, short what, void *arg)
{
    hk_dsp_flush_release(arg);
}

/* ---- projected starts of rate-limited jobs ------------------------------------------------- */

void hk_dsp_resched_add(hk_dispatch *d, const char *id, int64_t at)
{
    pending_add(&d->resched, id, at);
}

/* A reschedule request completed (frees it): writes what was noted meanwhile. */
static void on_rescheduled(hk_req *req)
{
    resched_req *rr = HK_CONTAINER_OF(req, resched_req, req);
    hk_dispatch *d = rr->d;
    d->resched_inflight = 0;
    /* only what the rows show is stale: the jobs themselves are in memory */
    if (req->rc)
        HK_LOG(HK_LOG_DEBUG, "dispatch.reschedule_failed", HK_LS("msg", hk_strerror(req->rc)),
               HK_LI("count", req->u.release.n));
    free(req->u.release.items);
    hk_req_clear(req);
    free(rr);
    hk_dsp_flush_resched(d);
    hk_dsp_check_stopped(d);
}

/* Writes the projected starts noted so far (one request in flight at a time). */
void hk_dsp_flush_resched(hk_dispatch *d)
{
    if (d->resched_inflight || !d->resched.n || d->stopping) return;
    resched_req *rr = hk_calloc(1, sizeof *rr);
    rr->d = d;
    rr->req.kind = HK_REQ_RESCHEDULE;
    rr->req.done = on_rescheduled;
    rr->req.node_id = d->cfg->node_id;
    rr->req.u.release.items = d->resched.items;
    rr->req.u.release.n = d->resched.n;
    memset(&d->resched, 0, sizeof d->resched);
    d->resched_inflight = 1;
    hk_store_submit(d->store, &rr->req);
}

/* ---- results ------------------------------------------------------------------------------- */

/* An empty results batch of d. */
static results_batch *batch_new(hk_dispatch *d)
{
    results_batch *rb = hk_calloc(1, sizeof *rb);
    rb->d = d;
    return rb;
}

/* Frees rb, the strings and blobs of its results and its request's outputs. */
static void batch_free(results_batch *rb)
{
    for (int i = 0; i < rb->n; i++) {
        hk_result *r = &rb->items[i];
        free(r->response_body);
        free(r->response_headers);
        free(r->request_headers);
        hk_blob_unref(r->headers_static);
        free(r->request_url);
        free(r->error_message);
    }
    free(rb->items);
    hk_req_clear(&rb->req);
    free(rb);
}

hk_result *hk_dsp_result_add(hk_dispatch *d)
{
    if (!d->rb_cur) d->rb_cur = batch_new(d);
    results_batch *rb = d->rb_cur;
    if (rb->n == rb->cap) {
        rb->cap = rb->cap ? rb->cap * 2 : 64;
        rb->items = hk_realloc(rb->items, sizeof(hk_result) * (size_t)rb->cap);
    }
    hk_result *r = &rb->items[rb->n++];
    memset(r, 0, sizeof *r);
    return r;
}

/* The store changed webhooks' status while writing the results (410 Gone, HOOKD_DISABLE_AFTER):
 * logs and counts it (hookd_webhooks_disabled_total) and updates the cache, so pump hands their
 * jobs back, parked. */
static void apply_changes(hk_dispatch *d, const hk_req *req)
{
    for (int i = 0; i < req->u.results.nchanges; i++) {
        int st = req->u.results.changes[i].status;
        HK_LOG(HK_LOG_WARN, "webhook.status_changed",
               HK_LS("webhook_id", req->u.results.changes[i].id),
               HK_LS("status", hk_wh_status_name(st)),
               HK_LS("why", st == HK_WH_DISABLED ? "the endpoint answered 410 Gone"
                                                 : "too many consecutive failed deliveries "
                                                   "(HOOKD_DISABLE_AFTER)"));
        hk_m_webhook_disabled(d->m, st == HK_WH_DISABLED ? HK_WD_GONE : HK_WD_FAILURES);
        whc *w = hk_map_get(&d->whcs, req->u.results.changes[i].id);
        if (!w || !w->wh) continue;
        w->wh->status = req->u.results.changes[i].status;
        hk_dsp_whc_make_runnable(d, w); /* pump hands its jobs back, parked */
    }
}

/* The results retry timer: submits the kept batch again. */
static void on_results_retry(evutil_socket_t fd, short what, void *arg)
{
    hk_dispatch *d = arg;
    hk_store_submit(d->store, &d->rb_flight->req);
}

/* 1 if a result of rb ended a delivery of a FIFO webhook (docs/API.md "Ordering"): its next
 * delivery became the head of its line in the store and is claimable now. */
static int fifo_moved(hk_dispatch *d, const results_batch *rb)
{
    for (int i = 0; i < rb->n; i++) {
        if (!rb->items[i].final) continue;
        whc *w = hk_map_get(&d->whcs, rb->items[i].webhook_id);
        if (w && w->wh && w->wh->fifo) return 1;
    }
    return 0;
}

/* The store answered a results batch (see hk_dsp_flush_results). */
static void on_results_written(hk_req *req)
{
    results_batch *rb = HK_CONTAINER_OF(req, results_batch, req);
    hk_dispatch *d = rb->d;
    if (req->rc) {
        /* The store is down: keep the batch and write it again; nothing is dropped. No new
         * attempt starts meanwhile (pump): an outcome that is not recorded is what another
         * node would send again if this node's leases lapsed. */
        d->results_stuck = 1;
        HK_LOG(HK_LOG_WARN, "dispatch.results_retry", HK_LS("msg", hk_strerror(req->rc)),
               HK_LI("count", rb->n));
        struct timeval tv = {RESULTS_RETRY_MS / 1000, (RESULTS_RETRY_MS % 1000) * 1000};
        evtimer_add(d->rb_retry, &tv);
        return;
    }
    d->results_stuck = 0;
    HK_LOG(HK_LOG_DEBUG, "dispatch.results_written", HK_LI("count", rb->n));
    apply_changes(d, req);
    hk_queue_results_done(d->queue, req); /* the new FIFO heads are in the schedule now */
    /* operational events (store/opevents.h) made deliveries due in the store: the queue must
     * learn of them (with Redis: a sweep) */
    if (req->u.results.emitted > 0) hk_queue_kick(d->queue);
    /* ... and they, or a FIFO webhook's next delivery now its head, are claimable at once */
    if (req->u.results.emitted > 0 || fifo_moved(d, rb)) d->claim_more = 1;
    d->rb_flight = NULL;
    batch_free(rb);
    hk_dsp_flush_results(d);
    hk_dsp_pump(d);
    hk_dsp_check_stopped(d);
}

void hk_dsp_flush_results(hk_dispatch *d)
{
    if (d->rb_flight || !d->rb_cur || !d->rb_cur->n) return;
    results_batch *rb = d->rb_flight = d->rb_cur;
    d->rb_cur = NULL;
    rb->req.kind = HK_REQ_RESULTS;
    rb->req.done = on_results_written;
    rb->req.node_id = d->cfg->node_id;
    rb->req.u.results.items = rb->items;
    rb->req.u.results.n = rb->n;
    rb->req.u.results.disable_after = d->cfg->disable_after;
    hk_store_submit(d->store, &rb->req);
}

/* ---- set up and tear down -------------------------------------------------------------------- */

void hk_dsp_writers_init(hk_dispatch *d)
{
    d->rb_retry = evtimer_new(d->base, on_results_retry, d);
    d->rel_retry = evtimer_new(d->base, on_rel_retry, d);
}

void hk_dsp_writers_free(hk_dispatch *d)
{
    if (d->rb_cur) batch_free(d->rb_cur);
    if (d->rb_flight) batch_free(d->rb_flight);
    free(d->rel.items);
    free(d->resched.items);
    event_free(d->rb_retry);
    event_free(d->rel_retry);
}
