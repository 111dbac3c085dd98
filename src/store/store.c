/*
 * store.c: the machinery behind store.h, the same for every backend.
 *
 * Threads: one writer thread runs write requests in submission order, committing every request
 * that waited together in one transaction (group commit: under load one fsync serves hundreds
 * of requests; idle, a lone request commits at once, so latency is one transaction). Each
 * request runs inside a savepoint, so a failing request is undone alone. Reader threads run
 * read requests on their own connections, so a slow list query never delays an ingest commit.
 *
 * Completion: finished requests are queued under a mutex and an eventfd wakes the loop, which
 * calls each `done` in order. If a group cannot commit (disk full, database gone), every
 * request in it fails with HK_EUNAVAIL, its outputs are cleared, and nothing of it is stored.
 * A broken connection is reopened by the next request that needs it (tries spaced out with
 * backoff); meanwhile requests fail fast with HK_EUNAVAIL and hk_store_healthy() says 0.
 *
 * Secrets: webhook secrets and custom header values (they carry receivers' tokens) are encrypted
 * here (WEBHOOK_ENCRYPTION_KEY) on their way to the backend and decrypted on their way back, so
 * backends hold only ciphertext and callers only plaintext. The same goes for the static part of
 * the request headers a delivery records (hk_result.headers_static), which store.c also joins
 * back to each delivery's own headers when a delivery is read.
 */
#include "store/store.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/map.h"
#include "core/log.h"
#include "core/time.h"
#include "store/sig_scheme.h"
#include "store/backend.h"
#include "store/opevents.h"
#include "store/rows.h"
#include "store/rollup.h"

#define GROUP_MAX      1024 /* requests per write transaction */
#define READERS_SQLITE 2

typedef struct reqq {
    hk_req *head, *tail;
    int len;
} reqq;

struct hk_store {
    const hk_store_backend *be;
    const hk_config *cfg;
    struct event_base *base;
    void *admin; /* synchronous mode: the one connection */

    pthread_mutex_t mu;
    pthread_cond_t wcond, rcond;
    reqq wq, rq, cq; /* writes, reads, completions */
    int stopping;
    pthread_t writer;
    pthread_t *readers;
    int nreaders;
    int started_threads;

    int efd;
    struct event *cev;

    atomic_int healthy;
    atomic_int queued;
    atomic_llong commits; /* write transactions committed */
};

static void q_push(reqq *q, hk_req *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->len++;
}

static hk_req *q_take_all(reqq *q, int max, int *n)
{
    hk_req *head = q->head, *r = head, *last = NULL;
    int k = 0;
    while (r && k < max) {
        last = r;
        r = r->next;
        k++;
    }
    if (!last) {
        *n = 0;
        return NULL;
    }
    q->head = r;
    if (!r) q->tail = NULL;
    q->len -= k;
    last->next = NULL;
    *n = k;
    return head;
}

/* ---- names, records ------------------------------------------------------------------------ */

/* ---- the request table: every kind's name, flags and policy ------------------------------- */

/* A kind's policy: the rules of the request, around the backend's SQL (ops). Returns 0 or an
 * HK_E* code, with req->err set for the ones a person reads. */
typedef int (*policy_fn)(const hk_store_ops *o, void *conn, hk_req *req);

static void apikey_clear(hk_apikey *k);
static void org_clear(hk_org *org);

/* The kinds whose rules all live in the backend's one op (listing, reading, and the batched
 * writes whose shape is the backend's: ingest, claims, results), or in rows.c helpers it calls. */
#define PASS(op)                                                                                   \
    static int p_##op(const hk_store_ops *o, void *conn, hk_req *req)                              \
    {                                                                                              \
        return o->op(conn, req);                                                                   \
    }
PASS(ping)
PASS(key_count)
PASS(webhook_load)
PASS(ingest)
PASS(event_get)
PASS(delivery_get)
PASS(claim)
PASS(due_scan)
PASS(release)
PASS(reschedule)
PASS(org_list)
PASS(heartbeat)
PASS(store_stats)
#undef PASS

/* PRUNE: the cut-offs are the caller's (store/prune.h); a step without any has nothing to do. */
static int p_prune(const hk_store_ops *o, void *conn, hk_req *req)
{
    if (req->u.prune.limit <= 0) req->u.prune.limit = 500;
    return o->prune(conn, req);
}

/* APIKEY_CREATE / APIKEY_ENSURE: ENSURE returns the key of the hash if it exists already. */
static int key_create(const hk_store_ops *o, void *conn, hk_req *req, int ensure)
{
    hk_apikey *k = &req->u.key_create.out;
    int found = 0, rc;
    if (ensure && ((rc = o->key_by_hash(conn, req->u.key_create.key_hash, k, &found)) || found))
        return rc;
    if (req->org_id && req->org_id[0]) { /* "" is an admin key: no organization */
        if (req->u.key_create.org_must_exist) {
            hk_org org = {0};
            rc = o->org_get(conn, req->org_id, &org, &found);
            org_clear(&org);
            if (rc) return rc;
            if (!found) return HK_ENOTFOUND;
        } else if ((rc = o->org_ensure(conn, req->org_id, req->now))) {
            return rc;
        }
    }
    char id[HK_ID_MAX];
    hk_id_new("key", id);
    if ((rc = o->key_insert(conn, req, id))) return rc;
    req->u.key_create.created = 1;
    return o->key_by_hash(conn, req->u.key_create.key_hash, k, &found);
}

static int p_key_create(const hk_store_ops *o, void *conn, hk_req *req)
{
    return key_create(o, conn, req, 0);
}

static int p_key_ensure(const hk_store_ops *o, void *conn, hk_req *req)
{
    return key_create(o, conn, req, 1);
}

static int p_key_revoke(const hk_store_ops *o, void *conn, hk_req *req)
{
    int64_t changed = 0;
    int rc = o->key_revoke(conn, req, &changed);
    return rc ? rc : changed ? HK_OK : HK_ENOTFOUND;
}

/* APIKEY_LIST: one organization's keys only if it exists. */
static int p_key_list(const hk_store_ops *o, void *conn, hk_req *req)
{
    if (req->u.key_list.org) {
        hk_org org = {0};
        int found = 0;
        int rc = o->org_get(conn, req->u.key_list.org, &org, &found);
        org_clear(&org);
        if (rc) return rc;
        if (!found) return HK_ENOTFOUND;
    }
    return o->key_list(conn, req);
}

/* APIKEY_LOOKUP: a revoked key is not found; a hash no key has may be a portal session's,
 * found while not revoked nor expired. */
static int p_key_lookup(const hk_store_ops *o, void *conn, hk_req *req)
{
    hk_apikey k = {0};
    int found = 0;
    int rc = o->key_by_hash(conn, req->u.key_lookup.key_hash, &k, &found);
    if (!rc && found && !k.revoked_at) {
        req->u.key_lookup.found = 1;
        hk_strlcpy(req->u.key_lookup.org, k.org_id ? k.org_id : "", sizeof req->u.key_lookup.org);
        hk_strlcpy(req->u.key_lookup.key_id, k.id, sizeof req->u.key_lookup.key_id);
        req->u.key_lookup.scope = k.scope;
        req->u.key_lookup.org_disabled = k.org_disabled;
    }
    apikey_clear(&k);
    if (rc || found) return rc;
    int64_t expires = 0;
    char *whs = NULL;
    rc = o->session_by_hash(conn, req->u.key_lookup.key_hash, &k, &expires, &whs, &found);
    if (!rc && found && !k.revoked_at && expires > req->now) {
        req->u.key_lookup.found = 1;
        req->u.key_lookup.session = 1;
        req->u.key_lookup.expires_at = expires;
        req->u.key_lookup.webhook_ids = whs;
        whs = NULL;
        hk_strlcpy(req->u.key_lookup.org, k.org_id ? k.org_id : "", sizeof req->u.key_lookup.org);
        hk_strlcpy(req->u.key_lookup.key_id, k.id, sizeof req->u.key_lookup.key_id);
        req->u.key_lookup.scope = k.scope;
        req->u.key_lookup.org_disabled = k.org_disabled;
    }
    free(whs);
    apikey_clear(&k);
    return rc;
}

/* DELIVERY_SEARCH: one row more than the page tells whether another page follows. */
static int p_delivery_search(const hk_store_ops *o, void *conn, hk_req *req)
{
    int rc = o->delivery_search(conn, req);
    req->u.dl_search.more = 0;
    if (!rc && req->u.dl_search.n > req->u.dl_search.limit) {
        req->u.dl_search.more = 1;
        while (req->u.dl_search.n > req->u.dl_search.limit)
            hk_delivery_clear(&req->u.dl_search.items[--req->u.dl_search.n]);
    }
    return rc;
}

/* SESSION_CREATE: a portal session of an organization that exists and is enabled. */
static int p_session_create(const hk_store_ops *o, void *conn, hk_req *req)
{
    hk_org org = {0};
    int found = 0;
    int rc = o->org_get(conn, req->org_id, &org, &found);
    int disabled = org.disabled;
    org_clear(&org);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    if (disabled) {
        snprintf(req->err, sizeof req->err, "organization %s is disabled", req->org_id);
        return HK_ECONFLICT;
    }
    hk_buf whs;
    hk_buf_init(&whs, HK_BUF_UNLIMITED);
    for (int i = 0; !rc && i < req->u.session.nwebhook_ids; i++) {
        const char *wid = req->u.session.webhook_ids[i];
        rc = o->webhook_exists(conn, wid, req->org_id, &found);
        if (!rc && !found) {
            snprintf(req->err, sizeof req->err,
                     "webhookIds[%d]: %s is not a webhook of the organization", i, wid);
            rc = HK_EINVAL;
        }
        if (!rc) hk_buf_printf(&whs, "%s ", wid);
    }
    if (!rc) {
        hk_id_new("ps", req->u.session.id);
        rc = o->session_insert(conn, req, req->u.session.id,
                               req->u.session.webhook_ids ? hk_buf_cstr(&whs) : NULL);
    }
    hk_buf_free(&whs);
    return rc;
}

static int p_session_revoke(const hk_store_ops *o, void *conn, hk_req *req)
{
    int64_t changed = 0;
    int rc = o->session_revoke(conn, req, &changed);
    return rc ? rc : changed ? HK_OK : HK_ENOTFOUND;
}

/* ---- organizations ---- */

/* ORG_CREATE: a new organization (HK_ECONFLICT if the id is taken); the answer is the row. */
static int p_org_create(const hk_store_ops *o, void *conn, hk_req *req)
{
    char gen[HK_ID_MAX];
    const char *id = req->u.org.id;
    if (!id) {
        hk_id_new("org", gen);
        id = gen;
    }
    int found = 0;
    int rc = o->org_get(conn, id, &req->u.org.out, &found);
    if (rc) return rc;
    if (found) {
        org_clear(&req->u.org.out);
        snprintf(req->err, sizeof req->err, "organization %s exists already", id);
        return HK_ECONFLICT;
    }
    if ((rc = o->org_insert(conn, req, id))) return rc;
    rc = o->org_get(conn, id, &req->u.org.out, &found);
    return rc ? rc : found ? HK_OK : HK_EINTERNAL;
}

static int p_org_get(const hk_store_ops *o, void *conn, hk_req *req)
{
    int found = 0;
    int rc = o->org_get(conn, req->u.org.id, &req->u.org.out, &found);
    return rc ? rc : found ? HK_OK : HK_ENOTFOUND;
}

/* ORG_PATCH: the fields given replace the stored ones; a change of `disabled` parks the
 * organization's waiting deliveries (held, as for a paused webhook, across restarts: the claim
 * parks any that become due while it is disabled) or makes the parked ones of its active
 * webhooks due now. */
static int p_org_patch(const hk_store_ops *o, void *conn, hk_req *req)
{
    hk_org *org = &req->u.org.out;
    int found = 0;
    int rc = o->org_get(conn, req->u.org.id, org, &found);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    int was = org->disabled;
    if (req->u.org.has & HK_OF_NAME) {
        free(org->name);
        org->name = hk_strdup(req->u.org.name);
    }
    if (req->u.org.has & HK_OF_METADATA) {
        free(org->metadata);
        org->metadata = hk_strdup(req->u.org.metadata);
    }
    if (req->u.org.has & HK_OF_DISABLED) org->disabled = req->u.org.disabled ? 1 : 0;
    if ((rc = o->org_update(conn, org, req->now))) return rc;
    if (org->disabled && !was)
        rc = o->org_park(conn, org->id);
    else if (!org->disabled && was)
        rc = o->org_unpark(conn, org->id, req->now, &req->u.org.unparked);
    if (rc) return rc;
    char id[HK_ORG_ID_MAX];
    hk_strlcpy(id, org->id, sizeof id);
    org_clear(org);
    rc = o->org_get(conn, id, org, &found);
    return rc ? rc : found ? HK_OK : HK_EINTERNAL;
}

/* WEBHOOK_CREATE: the per-organization limit, defaults (rows.c), row, subscriptions; the
 * answer is the row as stored. */
static int p_webhook_create(const hk_store_ops *o, void *conn, hk_req *req)
{
    const hk_webhook_fields *f = req->u.wh_create.f;
    int rc;
    if (req->u.wh_create.max_per_org > 0) {
        int64_t n = 0;
        if ((rc = o->webhook_count_org(conn, req->org_id, &n))) return rc;
        if ((rc = hk_wh_limit_check(req, n))) return rc;
    }
    char id[HK_ID_MAX];
    hk_id_new("wh", id);
    hk_wh_row row;
    hk_wh_row_create(f, &row);
    if ((rc = o->webhook_insert(conn, req, id, &row))) return rc;
    if ((rc = o->subs_insert(conn, id, f->events, f->nevents, req->now))) return rc;
    return o->webhook_get(conn, id, NULL, &req->u.wh_create.out);
}

static int p_webhook_get(const hk_store_ops *o, void *conn, hk_req *req)
{
    int rc = o->webhook_get(conn, req->u.wh_get.id, req->org_id, &req->u.wh_get.out);
    if (!rc && !req->u.wh_get.out) return HK_ENOTFOUND;
    return rc;
}

/* WEBHOOK_PATCH: the merge (rows.c), a secret rotation before the update, the subscriptions
 * replaced, the deliveries parked or unparked when the status changes, and a manual disable's
 * hookd.webhook.disabled (opevents.h) in the same transaction. */
static int p_webhook_patch(const hk_store_ops *o, void *conn, hk_req *req)
{
    const hk_webhook_fields *f = req->u.wh_patch.f;
    hk_webhook *w = NULL;
    int rc = o->webhook_get(conn, req->u.wh_patch.id, req->org_id, &w);
    if (rc) return rc;
    if (!w) return HK_ENOTFOUND;
    hk_wh_row row;
    hk_wh_row_patch(w, f, req->now, &row);
    /* before the update: the old secret moves aside, then the new one replaces it */
    if ((f->has & HK_WF_ROTATE) && (f->has & HK_WF_SECRET))
        rc = o->webhook_rotate(conn, w->id, f->prev_expires_at);
    if (!rc) rc = o->webhook_update(conn, w->id, &row);
    if (!rc && (f->has & HK_WF_EVENTS)) {
        rc = o->subs_delete(conn, w->id);
        if (!rc) rc = o->subs_insert(conn, w->id, f->events, f->nevents, req->now);
    }
    if (!rc && row.status != w->status) {
        if (row.status == HK_WH_ACTIVE)
            rc = o->webhook_unpark(conn, w->id, req->now, &req->u.wh_patch.unparked);
        else
            rc = o->webhook_park(conn, w->id);
    }
    req->u.wh_patch.emitted = 0;
    if (!rc && row.status == HK_WH_DISABLED && w->status != HK_WH_DISABLED) {
        hk_opev ev = {.kind = HK_OPEV_DISABLED, .webhook_id = w->id, .reason = "manual"};
        hk_conn_orgs_reset(conn); /* the candidates must see the new status */
        rc = hk_opev_emit(conn, conn, o, req->now, &ev, &req->u.wh_patch.emitted);
    }
    char id[HK_ID_MAX];
    hk_strlcpy(id, w->id, sizeof id);
    hk_webhook_free(w);
    if (rc) return rc;
    return o->webhook_get(conn, id, NULL, &req->u.wh_patch.out);
}

/* The lists: the backend's op fetches up to limit + 1 rows (backend.h); a row past `limit`
 * only says that more follow (`more`), and is dropped here. */
static int p_webhook_list(const hk_store_ops *o, void *conn, hk_req *req)
{
    int rc = o->webhook_list(conn, req);
    while (!rc && req->u.wh_list.n > req->u.wh_list.limit) {
        hk_webhook_free(req->u.wh_list.items[--req->u.wh_list.n]);
        req->u.wh_list.more = 1;
    }
    return rc;
}

static int p_event_list(const hk_store_ops *o, void *conn, hk_req *req)
{
    int rc = o->event_list(conn, req);
    while (!rc && req->u.ev_list.n > req->u.ev_list.limit) {
        hk_event_clear(&req->u.ev_list.items[--req->u.ev_list.n]);
        req->u.ev_list.more = 1;
    }
    return rc;
}

/* DELIVERY_LIST: the deliveries of a webhook of the request's organization only. */
static int p_delivery_list(const hk_store_ops *o, void *conn, hk_req *req)
{
    int found = 0;
    int rc = o->webhook_exists(conn, req->u.dl_list.webhook_id, req->org_id, &found);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    rc = o->delivery_list(conn, req);
    while (!rc && req->u.dl_list.n > req->u.dl_list.limit) {
        hk_delivery_clear(&req->u.dl_list.items[--req->u.dl_list.n]);
        req->u.dl_list.more = 1;
    }
    return rc;
}

/* CLAIM_IDS: `parked` counts every id not returned as a job (parked, later, or dropped). */
static int p_claim_ids(const hk_store_ops *o, void *conn, hk_req *req)
{
    int rc = o->claim_ids(conn, req);
    if (!rc) req->u.claim.parked = req->u.claim.nids - req->u.claim.njobs;
    return rc;
}

static int p_webhook_delete(const hk_store_ops *o, void *conn, hk_req *req)
{
    return o->webhook_delete(conn, req);
}

/* RESULTS: a result repeating an attempt already stored (same attempt id, or same delivery and
 * attempt number: the dispatcher submits a batch again after any failure, and a COMMIT whose
 * answer was lost may have stored it) is a no-op: no attempt row, no delivery change, nothing
 * counted, and the request succeeds (a batch that always failed would stall the dispatcher).
 * The backend marks each result whose attempt row it inserted (hk_result.stored), and the
 * webhook's counters count only those (hk_health_add); the operational events of the batch
 * (opevents.h) are written by the backend with them. A batch that changed a webhook's status
 * drops the fan-out cache (a backend that decides at pre-commit, PostgreSQL, drops it there). */
static int p_results(const hk_store_ops *o, void *conn, hk_req *req)
{
    for (int i = 0; i < req->u.results.n; i++) req->u.results.items[i].stored = 0;
    req->u.results.emitted = 0;
    free(req->u.results.heads); /* a run before this one (a group retried) */
    req->u.results.heads = NULL;
    req->u.results.nheads = 0;
    int rc = o->results(conn, req);
    if (req->u.results.nchanges) hk_conn_orgs_reset(conn);
    if (rc || !o->rollup_upsert) return rc; /* NULL: the backend adds them at pre-commit */
    /* the statistics' rollups (rollup.h): one row per webhook and minute, hour and day of this
     * request */
    hk_rollup_row *rows;
    int nr = hk_rollup_collect_all(req->u.results.items, req->u.results.n, &rows);
    if (nr) rc = o->rollup_upsert(conn, rows, nr);
    free(rows);
    return rc;
}

/* WEBHOOK_STATS (store.h): the webhook's rollups of the coarsest grain that divides the buckets
 * (hk_rollup_grain: a bucket adds up one row, or 60 minute rows for an hour that is not whole
 * days) added up per bucket, then its percentiles. */
static int p_webhook_stats(const hk_store_ops *o, void *conn, hk_req *req)
{
    int found = 0;
    int rc = o->webhook_exists(conn, req->u.wstats.webhook_id, req->org_id, &found);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    int64_t from = req->u.wstats.from, to = req->u.wstats.to, iv = req->u.wstats.interval;
    if (iv <= 0 || to <= from) return HK_EINVAL;
    int nb = (int)((to - from + iv - 1) / iv);
    hk_rollup_row *rows = NULL;
    int n = 0;
    int64_t grain = hk_rollup_grain(iv, from, to);
    rc = o->rollup_read(conn, req->u.wstats.webhook_id, grain, from, to, &rows, &n);
    if (rc) return rc;
    hk_rollup_row *acc = hk_calloc((size_t)nb, sizeof *acc);
    for (int i = 0; i < n; i++) {
        int64_t k = (rows[i].start - from) / iv;
        if (k >= 0 && k < nb) hk_rollup_merge(&acc[k], &rows[i]);
    }
    free(rows);
    static const double qs[3] = {0.50, 0.95, 0.99};
    hk_stats_bucket *b = hk_calloc((size_t)nb, sizeof *b);
    for (int k = 0; k < nb; k++) {
        b[k].start = from + (int64_t)k * iv;
        b[k].delivered = acc[k].delivered;
        b[k].failed = acc[k].failed;
        b[k].given_up = acc[k].given_up;
        for (int q = 0; q < 3; q++) {
            b[k].att_p[q] = hk_sh_quantile(acc[k].att, qs[q]);
            b[k].e2e_p[q] = hk_sh_quantile(acc[k].e2e, qs[q]);
        }
    }
    free(acc);
    req->u.wstats.items = b;
    req->u.wstats.n = nb;
    rc = o->backlog(conn, req->u.wstats.webhook_id, HK_LIST_COUNT_CAP, &req->u.wstats.backlog);
    if (!rc && req->u.wstats.backlog > HK_LIST_COUNT_CAP) {
        req->u.wstats.backlog = HK_LIST_COUNT_CAP;
        req->u.wstats.capped = 1;
    }
    return rc;
}

/* ORG_STATS (store.h): the page of webhooks with their sums, then each one's backlog. */
static int p_org_stats(const hk_store_ops *o, void *conn, hk_req *req)
{
    if (req->u.ostats.limit <= 0) req->u.ostats.limit = 100;
    int rc = o->org_stats(conn, req);
    while (!rc && req->u.ostats.n > req->u.ostats.limit) {
        hk_org_stat *x = &req->u.ostats.items[--req->u.ostats.n];
        free(x->name);
        free(x->url);
        free(x->status);
        req->u.ostats.more = 1;
    }
    for (int i = 0; !rc && i < req->u.ostats.n; i++) {
        hk_org_stat *x = &req->u.ostats.items[i];
        rc = o->backlog(conn, x->id, HK_LIST_COUNT_CAP, &x->backlog);
        if (x->backlog > HK_LIST_COUNT_CAP) {
            x->backlog = HK_LIST_COUNT_CAP;
            x->capped = 1;
        }
    }
    return rc;
}

/* One new delivery replaying orig; the first new id goes to u.replay.new_id. */
static int replay_one(const hk_store_ops *o, void *conn, hk_req *req, const hk_webhook *w,
                      const char *orig)
{
    char id[HK_ID_MAX];
    hk_id_new("whde", id);
    int rc = o->replay_insert(conn, id, orig, w, req->now);
    if (rc) return rc;
    if (req->u.replay.count++ == 0) hk_strlcpy(req->u.replay.new_id, id, HK_ID_MAX);
    return HK_OK;
}

/* REPLAY (store.h): one delivery, or every failed one of a webhook in a time range; only for
 * an active webhook. */
static int p_replay(const hk_store_ops *o, void *conn, hk_req *req)
{
    char wid[HK_ID_MAX];
    int rc;
    req->u.replay.count = 0;
    req->u.replay.new_id[0] = '\0';
    if (req->u.replay.delivery_id) {
        int found = 0;
        rc = o->delivery_webhook(conn, req->u.replay.delivery_id, req->org_id, wid, &found);
        if (rc) return rc;
        if (!found) return HK_ENOTFOUND;
    } else {
        hk_strlcpy(wid, req->u.replay.webhook_id, sizeof wid);
    }
    hk_webhook *w = NULL;
    rc = o->webhook_get(conn, wid, req->org_id, &w);
    if (rc) return rc;
    if (!w) return HK_ENOTFOUND;
    req->u.replay.webhook = w;
    if (w->status != HK_WH_ACTIVE) {
        snprintf(req->err, sizeof req->err, "webhook %s is %s, not active", w->id,
                 hk_wh_status_name(w->status));
        return HK_ECONFLICT;
    }
    if (req->u.replay.delivery_id) return replay_one(o, conn, req, w, req->u.replay.delivery_id);
    /* recover: the ids first (the inserts must not run inside the select) */
    char(*ids)[HK_ID_MAX] = NULL;
    int n = 0;
    rc = o->failed_range(conn, wid, req->u.replay.since, req->u.replay.until, &ids, &n);
    for (int i = 0; !rc && i < n; i++) {
        rc = replay_one(o, conn, req, w, ids[i]);
        if (rc == HK_ENOTFOUND) rc = HK_OK; /* pruned since it was listed: nothing to replay */
    }
    free(ids);
    return rc;
}

enum {
    WRITES = 1 << 0,     /* changes the store: runs on the group-commit writer */
    WRITES_NOW = 1 << 1, /* writes at once rather than into a group batch (be->write_now) */
    DROPS_ORGS = 1 << 2, /* changes webhooks: the fan-out cache is dropped first */
};

static const struct {
    const char *name;
    unsigned flags;
    policy_fn run;
} kinds[HK_REQ_KIND_MAX] = {
    [HK_REQ_PING] = {"ping", 0, p_ping},
    [HK_REQ_APIKEY_CREATE] = {"apikey_create", WRITES | WRITES_NOW, p_key_create},
    [HK_REQ_APIKEY_ENSURE] = {"apikey_ensure", WRITES | WRITES_NOW, p_key_ensure},
    [HK_REQ_APIKEY_LIST] = {"apikey_list", 0, p_key_list},
    [HK_REQ_APIKEY_REVOKE] = {"apikey_revoke", WRITES | WRITES_NOW, p_key_revoke},
    [HK_REQ_APIKEY_LOOKUP] = {"apikey_lookup", 0, p_key_lookup},
    [HK_REQ_APIKEY_COUNT] = {"apikey_count", 0, p_key_count},
    [HK_REQ_WEBHOOK_CREATE] = {"webhook_create", WRITES | WRITES_NOW | DROPS_ORGS,
                               p_webhook_create},
    [HK_REQ_WEBHOOK_GET] = {"webhook_get", 0, p_webhook_get},
    [HK_REQ_WEBHOOK_LIST] = {"webhook_list", 0, p_webhook_list},
    [HK_REQ_WEBHOOK_PATCH] = {"webhook_patch", WRITES | WRITES_NOW | DROPS_ORGS, p_webhook_patch},
    [HK_REQ_REPLAY] = {"replay", WRITES | WRITES_NOW, p_replay},
    [HK_REQ_WEBHOOK_DELETE] = {"webhook_delete", WRITES | WRITES_NOW | DROPS_ORGS,
                               p_webhook_delete},
    [HK_REQ_WEBHOOK_LOAD] = {"webhook_load", 0, p_webhook_load},
    [HK_REQ_INGEST] = {"ingest", WRITES, p_ingest},
    [HK_REQ_EVENT_LIST] = {"event_list", 0, p_event_list},
    [HK_REQ_EVENT_GET] = {"event_get", 0, p_event_get},
    [HK_REQ_DELIVERY_LIST] = {"delivery_list", 0, p_delivery_list},
    [HK_REQ_DELIVERY_GET] = {"delivery_get", 0, p_delivery_get},
    [HK_REQ_CLAIM] = {"claim", WRITES, p_claim},
    [HK_REQ_RESULTS] = {"results", WRITES, p_results},
    [HK_REQ_RELEASE] = {"release", WRITES, p_release},
    [HK_REQ_HEARTBEAT] = {"heartbeat", WRITES, p_heartbeat},
    [HK_REQ_CLAIM_IDS] = {"claim_ids", WRITES, p_claim_ids},
    [HK_REQ_DUE_SCAN] = {"due_scan", 0, p_due_scan},
    [HK_REQ_RESCHEDULE] = {"reschedule", WRITES, p_reschedule},
    [HK_REQ_STORE_STATS] = {"store_stats", 0, p_store_stats},
    [HK_REQ_ORG_CREATE] = {"org_create", WRITES | WRITES_NOW, p_org_create},
    [HK_REQ_ORG_GET] = {"org_get", 0, p_org_get},
    [HK_REQ_ORG_LIST] = {"org_list", 0, p_org_list},
    [HK_REQ_ORG_PATCH] = {"org_patch", WRITES | WRITES_NOW | DROPS_ORGS, p_org_patch},
    [HK_REQ_SESSION_CREATE] = {"session_create", WRITES | WRITES_NOW, p_session_create},
    [HK_REQ_SESSION_REVOKE] = {"session_revoke", WRITES | WRITES_NOW, p_session_revoke},
    [HK_REQ_DELIVERY_SEARCH] = {"delivery_search", 0, p_delivery_search},
    [HK_REQ_PRUNE] = {"prune", WRITES | WRITES_NOW, p_prune},
    [HK_REQ_WEBHOOK_STATS] = {"webhook_stats", 0, p_webhook_stats},
    [HK_REQ_ORG_STATS] = {"org_stats", 0, p_org_stats},
};

int hk_req_kind_writes(int kind)
{
    return kind > 0 && kind < HK_REQ_KIND_MAX ? (kinds[kind].flags & WRITES) != 0 : 0;
}

const char *hk_req_kind_name(int kind)
{
    return kind > 0 && kind < HK_REQ_KIND_MAX && kinds[kind].name ? kinds[kind].name : "?";
}

/* Runs req's policy on conn (inside the transaction the caller opened). */
static int run_kind(const hk_store_backend *be, void *conn, hk_req *req)
{
    if (req->kind <= 0 || req->kind >= HK_REQ_KIND_MAX || !kinds[req->kind].run) {
        snprintf(req->err, sizeof req->err, "unknown request kind %d", req->kind);
        return HK_EINTERNAL;
    }
    unsigned flags = kinds[req->kind].flags;
    if (flags & DROPS_ORGS) hk_conn_orgs_reset(conn);
    int rc = (flags & WRITES_NOW) && be->write_now ? be->write_now(conn) : HK_OK;
    if (!rc) rc = kinds[req->kind].run(be->ops, conn, req);
    const char *msg = be->take_error ? be->take_error(conn) : NULL;
    if (rc == HK_EINVAL && !req->err[0] && msg && msg[0])
        hk_strlcpy(req->err, msg, sizeof req->err);
    return rc;
}

static const char *const wh_status_names[] = {"active", "paused", "disabled", "failed"};

const char *hk_wh_status_name(int status)
{
    return status >= 0 && status < (int)HK_ARRAY_LEN(wh_status_names) ? wh_status_names[status]
                                                                      : "unknown";
}

int hk_wh_status_parse(const char *s)
{
    for (int i = 0; s && i < (int)HK_ARRAY_LEN(wh_status_names); i++)
        if (strcmp(s, wh_status_names[i]) == 0) return i;
    return -1;
}

void hk_schemes_str(unsigned bits, char *out, size_t n)
{
    out[0] = '\0';
    size_t len = 0;
    for (unsigned b = 1; b <= HK_SIG_LAST; b <<= 1) {
        if (!(bits & b)) continue;
        int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", hk_sig_scheme_name(b));
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
}

unsigned hk_schemes_parse(const char *s)
{
    unsigned bits = 0;
    char name[32];
    while (s && *s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n < sizeof name) {
            memcpy(name, s, n);
            name[n] = '\0';
            bits |= hk_sig_scheme_from_name(name);
        }
        s = e ? e + 1 : NULL;
    }
    return bits ? bits : HK_SIG_DEFAULT;
}

void hk_webhook_free(hk_webhook *w)
{
    if (!w) return;
    free(w->name);
    free(w->url);
    free(w->secret);
    free(w->prev_secret);
    free(w->org_id);
    free(w->user_id);
    free(w->custom_headers);
    free(w->filtering_options);
    free(w->retry_schedule);
    free(w->signing_key);
    free(w->prev_signing_key);
    for (int i = 0; i < w->nevents; i++) free(w->events[i]);
    free(w->events);
    free(w);
}

hk_webhook *hk_webhook_dup(const hk_webhook *w)
{
    hk_webhook *d = hk_malloc(sizeof *d);
    *d = *w;
    d->name = hk_strdup(w->name);
    d->url = hk_strdup(w->url);
    d->secret = hk_strdup(w->secret);
    d->prev_secret = hk_strdup(w->prev_secret);
    d->org_id = hk_strdup(w->org_id);
    d->user_id = hk_strdup(w->user_id);
    d->custom_headers = hk_strdup(w->custom_headers);
    d->filtering_options = hk_strdup(w->filtering_options);
    d->retry_schedule = hk_strdup(w->retry_schedule);
    d->signing_key = hk_strdup(w->signing_key);
    d->prev_signing_key = hk_strdup(w->prev_signing_key);
    d->events = w->nevents ? hk_malloc(sizeof(char *) * (size_t)w->nevents) : NULL;
    for (int i = 0; i < w->nevents; i++) d->events[i] = hk_strdup(w->events[i]);
    return d;
}

static void attempt_clear(hk_attempt *a)
{
    free(a->response_body);
    free(a->response_headers);
    free(a->error_message);
}

void hk_delivery_clear(hk_delivery *d)
{
    free(d->event_type);
    free(d->event_data);
    free(d->request_url);
    free(d->request_headers);
    free(d->request_headers_static);
    free(d->response_body);
    free(d->response_headers);
    free(d->error_message);
    for (int i = 0; i < d->nattempts; i++) attempt_clear(&d->attempts[i]);
    free(d->attempts);
    memset(d, 0, sizeof *d);
}

void hk_event_clear(hk_event *e)
{
    free(e->type);
    free(e->payload);
    free(e->source);
    free(e->idempotency_key);
    free(e->org_id);
    free(e->user_id);
    free(e->deliveries);
    memset(e, 0, sizeof *e);
}

static void apikey_clear(hk_apikey *k)
{
    free(k->org_id);
    free(k->name);
    free(k->prefix);
    memset(k, 0, sizeof *k);
}

static void org_clear(hk_org *org)
{
    free(org->name);
    free(org->metadata);
    memset(org, 0, sizeof *org);
}

const char *hk_scope_name(int scope)
{
    return scope == HK_SCOPE_READ ? "read" : "full";
}

int hk_scope_parse(const char *s)
{
    if (s && strcmp(s, "full") == 0) return HK_SCOPE_FULL;
    if (s && strcmp(s, "read") == 0) return HK_SCOPE_READ;
    return -1;
}

int hk_org_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > HK_ORG_ID_MAX - 1) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("_.:-", *s)))
            return 0;
    return 1;
}

static void webhooks_free(hk_webhook **items, int n)
{
    for (int i = 0; i < n; i++) hk_webhook_free(items[i]);
    free(items);
}

static void jobs_free(hk_job **jobs, int n)
{
    for (int i = 0; i < n; i++) hk_job_free(jobs[i]);
    free(jobs);
}

void hk_req_clear(hk_req *req)
{
    switch (req->kind) {
    case HK_REQ_APIKEY_CREATE:
    case HK_REQ_APIKEY_ENSURE:
        apikey_clear(&req->u.key_create.out);
        break;
    case HK_REQ_DELIVERY_SEARCH:
        for (int i = 0; i < req->u.dl_search.n; i++) hk_delivery_clear(&req->u.dl_search.items[i]);
        free(req->u.dl_search.items);
        req->u.dl_search.items = NULL;
        req->u.dl_search.n = 0;
        break;
    case HK_REQ_APIKEY_LOOKUP:
        free(req->u.key_lookup.webhook_ids);
        req->u.key_lookup.webhook_ids = NULL;
        break;
    case HK_REQ_APIKEY_LIST:
        for (int i = 0; i < req->u.key_list.n; i++) apikey_clear(&req->u.key_list.items[i]);
        free(req->u.key_list.items);
        req->u.key_list.items = NULL;
        req->u.key_list.n = 0;
        break;
    case HK_REQ_ORG_CREATE:
    case HK_REQ_ORG_GET:
    case HK_REQ_ORG_PATCH:
        org_clear(&req->u.org.out);
        break;
    case HK_REQ_ORG_LIST:
        for (int i = 0; i < req->u.org_list.n; i++) org_clear(&req->u.org_list.items[i]);
        free(req->u.org_list.items);
        req->u.org_list.items = NULL;
        req->u.org_list.n = 0;
        break;
    case HK_REQ_WEBHOOK_CREATE:
        hk_webhook_free(req->u.wh_create.out);
        req->u.wh_create.out = NULL;
        break;
    case HK_REQ_WEBHOOK_GET:
        hk_webhook_free(req->u.wh_get.out);
        req->u.wh_get.out = NULL;
        break;
    case HK_REQ_WEBHOOK_LIST:
        webhooks_free(req->u.wh_list.items, req->u.wh_list.n);
        req->u.wh_list.items = NULL;
        req->u.wh_list.n = 0;
        break;
    case HK_REQ_WEBHOOK_PATCH:
        hk_webhook_free(req->u.wh_patch.out);
        req->u.wh_patch.out = NULL;
        break;
    case HK_REQ_WEBHOOK_LOAD:
        webhooks_free(req->u.wh_load.items, req->u.wh_load.n);
        req->u.wh_load.items = NULL;
        req->u.wh_load.n = 0;
        break;
    case HK_REQ_INGEST:
        for (int i = 0; i < req->u.ingest.n; i++) {
            free(req->u.ingest.items[i].dup_type);
            req->u.ingest.items[i].dup_type = NULL;
        }
        jobs_free(req->u.ingest.jobs, req->u.ingest.njobs);
        webhooks_free(req->u.ingest.webhooks, req->u.ingest.nwebhooks);
        hk_map_free(&req->u.ingest.webhooks_seen);
        hk_map_init(&req->u.ingest.webhooks_seen);
        req->u.ingest.jobs = NULL;
        req->u.ingest.njobs = 0;
        req->u.ingest.webhooks = NULL;
        req->u.ingest.nwebhooks = 0;
        free(req->u.ingest.queued);
        req->u.ingest.queued = NULL;
        req->u.ingest.nqueued = 0;
        break;
    case HK_REQ_EVENT_LIST:
        for (int i = 0; i < req->u.ev_list.n; i++) hk_event_clear(&req->u.ev_list.items[i]);
        free(req->u.ev_list.items);
        req->u.ev_list.items = NULL;
        req->u.ev_list.n = 0;
        break;
    case HK_REQ_EVENT_GET:
        hk_event_clear(&req->u.ev_get.out);
        break;
    case HK_REQ_DELIVERY_LIST:
        for (int i = 0; i < req->u.dl_list.n; i++) hk_delivery_clear(&req->u.dl_list.items[i]);
        free(req->u.dl_list.items);
        req->u.dl_list.items = NULL;
        req->u.dl_list.n = 0;
        break;
    case HK_REQ_DELIVERY_GET:
        hk_delivery_clear(&req->u.dl_get.out);
        break;
    case HK_REQ_WEBHOOK_STATS:
        free(req->u.wstats.items);
        req->u.wstats.items = NULL;
        req->u.wstats.n = 0;
        break;
    case HK_REQ_ORG_STATS:
        for (int i = 0; i < req->u.ostats.n; i++) {
            free(req->u.ostats.items[i].name);
            free(req->u.ostats.items[i].url);
            free(req->u.ostats.items[i].status);
        }
        free(req->u.ostats.items);
        req->u.ostats.items = NULL;
        req->u.ostats.n = 0;
        break;
    case HK_REQ_REPLAY:
        hk_webhook_free(req->u.replay.webhook);
        req->u.replay.webhook = NULL;
        break;
    case HK_REQ_CLAIM:
    case HK_REQ_CLAIM_IDS:
        jobs_free(req->u.claim.jobs, req->u.claim.njobs);
        webhooks_free(req->u.claim.webhooks, req->u.claim.nwebhooks);
        hk_map_free(&req->u.claim.webhooks_seen);
        hk_map_init(&req->u.claim.webhooks_seen);
        req->u.claim.jobs = NULL;
        req->u.claim.njobs = 0;
        req->u.claim.webhooks = NULL;
        req->u.claim.nwebhooks = 0;
        free(req->u.claim.later);
        req->u.claim.later = NULL;
        req->u.claim.nlater = 0;
        break;
    case HK_REQ_DUE_SCAN:
        free(req->u.due_scan.items);
        req->u.due_scan.items = NULL;
        req->u.due_scan.n = 0;
        break;
    case HK_REQ_RESULTS:
        free(req->u.results.changes);
        req->u.results.changes = NULL;
        req->u.results.nchanges = 0;
        free(req->u.results.heads);
        req->u.results.heads = NULL;
        req->u.results.nheads = 0;
        break;
    default:
        break;
    }
}

/* ---- secrets at rest ------------------------------------------------------------------------ */

/* Replaces *s (plaintext or already encrypted) by its plaintext. HK_EDENIED if it cannot be
 * decrypted with the configured key (or no key is configured for an encrypted secret). */
static int secret_open(const hk_store *st, char **s)
{
    if (!*s || !hk_secret_is_encrypted(*s)) return HK_OK;
    if (!st->cfg->has_enc_key) return HK_EDENIED;
    hk_buf b;
    hk_buf_init(&b, 4096);
    int rc = hk_secret_decrypt(st->cfg->enc_key, *s, &b);
    if (rc) {
        hk_buf_free(&b);
        return HK_EDENIED;
    }
    free(*s);
    *s = hk_buf_steal(&b);
    return HK_OK;
}

/* ---- custom headers at rest ----------------------------------------------------------------- */

void hk_headers_ref(const hk_config *cfg, const char *json, size_t len, char out[65])
{
    uint8_t mac[32];
    static const char label[] = "hookd webhook_headers";
    hk_iov part = {json, len};
    if (cfg && cfg->has_enc_key)
        hk_hmac_sha256(cfg->enc_key, sizeof cfg->enc_key, &part, 1, mac);
    else
        hk_hmac_sha256(label, sizeof label - 1, &part, 1, mac);
    hk_hex(mac, sizeof mac, out);
}

/* Appends to out the custom headers object json with its values encrypted ("enc:<iv>:<tag>:<ct>",
 * as secrets; names stay readable): every value, or with only_plain the values that do not
 * look encrypted already (*changed then says whether any was). HK_EINVAL if json is not an
 * object of strings. */
static int headers_seal_values(const uint8_t key[32], const char *json, int only_plain,
                               int *changed, hk_buf *out)
{
    hk_jdoc doc = {0};
    size_t n = strlen(json);
    int rc = hk_json_parse(&doc, json, n, (uint32_t)(n / 2 + 16), 4);
    if (rc || hk_json_type(&doc, 0) != HK_J_OBJECT) {
        hk_json_free(&doc);
        return HK_EINVAL;
    }
    hk_buf name, val, enc;
    hk_buf_init(&name, HK_BUF_UNLIMITED);
    hk_buf_init(&val, HK_BUF_UNLIMITED);
    hk_buf_init(&enc, HK_BUF_UNLIMITED);
    hk_jw w;
    hk_jw_init(&w, out);
    hk_jw_obj_open(&w);
    int k = hk_json_first(&doc, 0);
    for (uint32_t i = 0; !rc && i < doc.toks[0].size; i++, k = hk_json_next(&doc, k + 1)) {
        hk_buf_reset(&name);
        hk_buf_reset(&val);
        hk_buf_reset(&enc);
        if (hk_json_str(&doc, k, &name) || hk_json_str(&doc, k + 1, &val)) {
            rc = HK_EINVAL;
            break;
        }
        hk_jw_key(&w, hk_buf_cstr(&name));
        if (only_plain && hk_secret_is_encrypted(hk_buf_cstr(&val))) {
            hk_jw_strn(&w, val.data, val.len);
            continue;
        }
        if (hk_secret_encrypt(key, hk_buf_cstr(&val), &enc)) {
            rc = HK_EINVAL;
            break;
        }
        if (changed) *changed = 1;
        hk_jw_strn(&w, enc.data, enc.len);
    }
    hk_jw_obj_close(&w);
    hk_buf_free(&name);
    hk_buf_free(&val);
    hk_buf_free(&enc);
    hk_json_free(&doc);
    return rc;
}

static int headers_seal(const uint8_t key[32], const char *json, hk_buf *out)
{
    return headers_seal_values(key, json, 0, NULL, out);
}

int hk_headers_seal_plain(const hk_config *cfg, const char *json, hk_buf *out)
{
    if (!cfg->has_enc_key || !json) return 0;
    int changed = 0;
    int rc = headers_seal_values(cfg->enc_key, json, 1, &changed, out);
    return rc ? rc : changed;
}

/* Replaces *json (a custom headers object, values plaintext or encrypted) by its plaintext
 * form. A value that is not well-formed ciphertext is plaintext that happens to start with
 * "enc:" and stays. HK_EDENIED if a value is ciphertext that cannot be decrypted (wrong or
 * missing WEBHOOK_ENCRYPTION_KEY); *json is then unchanged. */
static int headers_open(const hk_store *st, char **json)
{
    if (!*json || !strstr(*json, "\"enc:")) return HK_OK; /* nothing encrypted: the common case */
    hk_jdoc doc = {0};
    size_t n = strlen(*json);
    if (hk_json_parse(&doc, *json, n, (uint32_t)(n / 2 + 16), 4) ||
        hk_json_type(&doc, 0) != HK_J_OBJECT) {
        hk_json_free(&doc);
        return HK_OK;
    }
    int rc = HK_OK;
    hk_buf out, name, val, plain;
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    hk_buf_init(&name, HK_BUF_UNLIMITED);
    hk_buf_init(&val, HK_BUF_UNLIMITED);
    hk_buf_init(&plain, HK_BUF_UNLIMITED);
    hk_jw w;
    hk_jw_init(&w, &out);
    hk_jw_obj_open(&w);
    int k = hk_json_first(&doc, 0);
    for (uint32_t i = 0; i < doc.toks[0].size; i++, k = hk_json_next(&doc, k + 1)) {
        hk_buf_reset(&name);
        hk_buf_reset(&val);
        hk_buf_reset(&plain);
        hk_json_str(&doc, k, &name);
        hk_json_str(&doc, k + 1, &val);
        const char *v = hk_buf_cstr(&val);
        size_t vlen = val.len;
        if (hk_secret_is_encrypted(v)) {
            int d =
                st->cfg->has_enc_key ? hk_secret_decrypt(st->cfg->enc_key, v, &plain) : HK_EDENIED;
            if (d == HK_EDENIED) {
                rc = HK_EDENIED;
                break;
            }
            if (d == 0) {
                v = plain.data;
                vlen = plain.len;
            }
        }
        hk_jw_key(&w, hk_buf_cstr(&name));
        hk_jw_strn(&w, v, vlen);
    }
    hk_jw_obj_close(&w);
    if (rc == HK_OK) {
        free(*json);
        *json = hk_buf_steal(&out);
    }
    hk_buf_free(&out);
    hk_buf_free(&name);
    hk_buf_free(&val);
    hk_buf_free(&plain);
    hk_json_free(&doc);
    return rc;
}

/* Gives a read delivery its whole request_headers: the stored static part (decrypted) and the
 * attempt's own headers, joined in the order they were sent. If the static part cannot be
 * decrypted, only the attempt's headers are shown. */
static void delivery_open(const hk_store *st, hk_delivery *d)
{
    char *stat = d->request_headers_static;
    d->request_headers_static = NULL;
    if (!stat) return;
    if (hk_secret_is_encrypted(stat)) {
        hk_buf b;
        hk_buf_init(&b, HK_BUF_UNLIMITED);
        if (!st->cfg->has_enc_key || hk_secret_decrypt(st->cfg->enc_key, stat, &b)) {
            hk_buf_free(&b);
            free(stat);
            HK_LOG(HK_LOG_ERROR, "store.headers_unreadable", HK_LS("delivery_id", d->id),
                   HK_LS("msg", "the recorded request headers cannot be decrypted with "
                                "WEBHOOK_ENCRYPTION_KEY"));
            return;
        }
        free(stat);
        stat = hk_buf_steal(&b);
    }
    /* {"A":"1"} + {"B":"2"} -> {"A":"1","B":"2"} (the attempt's part may come back from the
     * database with spaces: a PostgreSQL row written while the column was jsonb, before
     * migration 4) */
    const char *att = d->request_headers ? strchr(d->request_headers, '{') : NULL;
    const char *att_in = att ? att + 1 + strspn(att + 1, " ") : NULL;
    const char *close = strrchr(stat, '}');
    int stat_empty = !close || stat[1 + strspn(stat + 1, " ")] == '}';
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    if (!close) {
        hk_buf_puts(&b, d->request_headers ? d->request_headers : "{}");
    } else if (!att || *att_in == '}') {
        hk_buf_append(&b, stat, (size_t)(close - stat) + 1);
    } else if (stat_empty) {
        hk_buf_puts(&b, att);
    } else {
        hk_buf_append(&b, stat, (size_t)(close - stat));
        hk_buf_putc(&b, ',');
        hk_buf_puts(&b, att_in);
    }
    free(stat);
    free(d->request_headers);
    d->request_headers = hk_buf_steal(&b);
}

/* Decrypts w's secrets in place. A secret that cannot be decrypted (wrong or missing
 * WEBHOOK_ENCRYPTION_KEY) is dropped: w->secret becomes NULL, which the dispatcher treats as
 * "cannot sign" (a failed attempt that never reaches the endpoint) and the API renders as
 * null. The request itself still succeeds: an ingest that committed must be acknowledged.
 * Returns 1 if a secret was dropped, else 0. */
static int webhook_open(const hk_store *st, hk_webhook *w)
{
    if (!w) return 0;
    int bad = 0;
    if (secret_open(st, &w->secret)) {
        free(w->secret);
        w->secret = NULL;
        bad = 1;
    }
    if (secret_open(st, &w->prev_secret)) {
        free(w->prev_secret);
        w->prev_secret = NULL;
        w->prev_secret_expires_at = 0;
        bad = 1;
    }
    if (secret_open(st, &w->signing_key)) {
        free(w->signing_key);
        w->signing_key = NULL;
        bad = 1;
    }
    if (secret_open(st, &w->prev_signing_key)) {
        free(w->prev_signing_key);
        w->prev_signing_key = NULL;
        w->prev_signing_key_expires_at = 0;
        bad = 1;
    }
    if (headers_open(st, &w->custom_headers)) {
        /* not sent as ciphertext: the deliveries go out without them (and the API shows null) */
        free(w->custom_headers);
        w->custom_headers = NULL;
        bad = 1;
    }
    return bad;
}

/* Decrypts every webhook a request returns (see webhook_open). */
static void req_open_secrets(const hk_store *st, hk_req *req)
{
    if (req->rc) return;
    int bad = 0;
    switch (req->kind) {
    case HK_REQ_WEBHOOK_CREATE:
        bad = webhook_open(st, req->u.wh_create.out);
        break;
    case HK_REQ_WEBHOOK_GET:
        bad = webhook_open(st, req->u.wh_get.out);
        break;
    case HK_REQ_WEBHOOK_PATCH:
        bad = webhook_open(st, req->u.wh_patch.out);
        break;
    case HK_REQ_REPLAY:
        bad = webhook_open(st, req->u.replay.webhook);
        break;
    case HK_REQ_WEBHOOK_LIST:
        for (int i = 0; i < req->u.wh_list.n; i++) bad |= webhook_open(st, req->u.wh_list.items[i]);
        break;
    case HK_REQ_WEBHOOK_LOAD:
        for (int i = 0; i < req->u.wh_load.n; i++) bad |= webhook_open(st, req->u.wh_load.items[i]);
        break;
    case HK_REQ_INGEST:
        for (int i = 0; i < req->u.ingest.nwebhooks; i++)
            bad |= webhook_open(st, req->u.ingest.webhooks[i]);
        break;
    case HK_REQ_CLAIM:
    case HK_REQ_CLAIM_IDS:
        for (int i = 0; i < req->u.claim.nwebhooks; i++)
            bad |= webhook_open(st, req->u.claim.webhooks[i]);
        break;
    case HK_REQ_DELIVERY_GET:
        delivery_open(st, &req->u.dl_get.out);
        break;
    case HK_REQ_DELIVERY_LIST:
        for (int i = 0; i < req->u.dl_list.n; i++) delivery_open(st, &req->u.dl_list.items[i]);
        break;
    case HK_REQ_DELIVERY_SEARCH:
        for (int i = 0; i < req->u.dl_search.n; i++) delivery_open(st, &req->u.dl_search.items[i]);
        break;
    default:
        break;
    }
    if (bad)
        HK_LOG(HK_LOG_ERROR, "store.secret_unreadable",
               HK_LS("msg", "a webhook secret or custom header cannot be decrypted with "
                            "WEBHOOK_ENCRYPTION_KEY; without a secret its deliveries fail without "
                            "being sent, without custom headers they go out without them"),
               HK_LS("request", hk_req_kind_name(req->kind)));
}

/* Sets what the backend stores for each distinct headers_ref of a results request: the static
 * headers, encrypted with a key (into bufs[i]); NULL for a ref already written by an earlier
 * item of the request. */
static int results_seal(hk_store *st, hk_req *req, hk_buf *bufs)
{
    hk_result *items = req->u.results.items;
    hk_map seen;
    hk_map_init(&seen);
    int rc = HK_OK;
    for (int i = 0; !rc && i < req->u.results.n; i++) {
        hk_result *r = &items[i];
        r->headers_static_db = NULL;
        if (!r->headers_static || hk_map_get(&seen, r->headers_ref)) continue;
        hk_map_put(&seen, r->headers_ref, r);
        if (!st->cfg->has_enc_key)
            r->headers_static_db = r->headers_static->data;
        else if (hk_secret_encrypt(st->cfg->enc_key, r->headers_static->data, &bufs[i]))
            rc = HK_EINTERNAL;
        else
            r->headers_static_db = hk_buf_cstr(&bufs[i]);
    }
    hk_map_free(&seen);
    return rc;
}

/* Runs req on conn, encrypting the secret and custom header values it writes when a key is
 * configured. */
static int exec_one(hk_store *st, void *conn, hk_req *req)
{
    req->rc = 0;
    req->err[0] = '\0';
    const hk_webhook_fields *orig = NULL, **slot = NULL;
    if (req->kind == HK_REQ_WEBHOOK_CREATE) slot = &req->u.wh_create.f;
    if (req->kind == HK_REQ_WEBHOOK_PATCH) slot = &req->u.wh_patch.f;
    hk_webhook_fields enc_fields;
    hk_buf enc, enc_headers, enc_key;
    hk_buf_init(&enc, 8192);
    hk_buf_init(&enc_key, 8192);
    hk_buf_init(&enc_headers, HK_BUF_UNLIMITED);
    hk_buf *bufs = NULL;
    int rc = HK_OK;
    if (slot && st->cfg->has_enc_key) {
        const hk_webhook_fields *f = *slot;
        int secret = (f->has & HK_WF_SECRET) && f->secret;
        int headers = (f->has & HK_WF_HEADERS) && f->custom_headers;
        int key = (f->has & HK_WF_SIGNING_KEY) && f->signing_key;
        if (secret || headers || key) {
            orig = f;
            enc_fields = *orig;
            if (secret && hk_secret_encrypt(st->cfg->enc_key, orig->secret, &enc))
                rc = HK_EINTERNAL;
            if (!rc && headers &&
                headers_seal(st->cfg->enc_key, orig->custom_headers, &enc_headers))
                rc = HK_EINTERNAL;
            if (!rc && key && hk_secret_encrypt(st->cfg->enc_key, orig->signing_key, &enc_key))
                rc = HK_EINTERNAL;
            if (secret) enc_fields.secret = hk_buf_cstr(&enc);
            if (key) enc_fields.signing_key = hk_buf_cstr(&enc_key);
            if (headers) enc_fields.custom_headers = hk_buf_cstr(&enc_headers);
            *slot = &enc_fields;
        }
    }
    if (!rc && req->kind == HK_REQ_RESULTS && req->u.results.n > 0) {
        bufs = hk_calloc((size_t)req->u.results.n, sizeof(hk_buf));
        for (int i = 0; i < req->u.results.n; i++) hk_buf_init(&bufs[i], HK_BUF_UNLIMITED);
        rc = results_seal(st, req, bufs);
    }
    if (rc) {
        snprintf(req->err, sizeof req->err, "encryption failed");
    } else {
        rc = run_kind(st->be, conn, req);
    }
    if (orig) *slot = orig;
    if (bufs) {
        for (int i = 0; i < req->u.results.n; i++) {
            hk_buf_free(&bufs[i]);
            req->u.results.items[i].headers_static_db = NULL;
        }
        free(bufs);
    }
    hk_buf_free(&enc);
    hk_buf_free(&enc_headers);
    hk_buf_free(&enc_key);
    req->rc = rc;
    return rc;
}

/* ---- completion ----------------------------------------------------------------------------- */

static void complete(hk_store *st, hk_req *head)
{
    if (!head) return;
    pthread_mutex_lock(&st->mu);
    hk_req *r = head;
    while (r) {
        hk_req *next = r->next;
        q_push(&st->cq, r);
        r = next;
    }
    pthread_mutex_unlock(&st->mu);
    uint64_t one = 1;
    ssize_t w = write(st->efd, &one, sizeof one);
    HK_UNUSED(w);
}

static void run_completions(hk_store *st)
{
    pthread_mutex_lock(&st->mu);
    int n;
    hk_req *r = q_take_all(&st->cq, st->cq.len, &n);
    pthread_mutex_unlock(&st->mu);
    while (r) {
        hk_req *next = r->next;
        r->next = NULL;
        atomic_fetch_sub(&st->queued, 1);
        req_open_secrets(st, r);
        r->done(r);
        r = next;
    }
}

static void on_completion(evutil_socket_t fd, short what, void *arg)
{
    hk_store *st = arg;
    uint64_t v;
    ssize_t rd = read(fd, &v, sizeof v);
    HK_UNUSED(rd);
    run_completions(st);
}

/* ---- threads -------------------------------------------------------------------------------- */

/* When a store thread may next try to reopen its connection. */
typedef struct reconn {
    int64_t next_try_mono;
    int delay_ms; /* 0: the last try (if any) worked */
} reconn;

/* Tries once to reopen a thread's connection, unless the last failed try is too recent (the
 * delay doubles from 100 ms to 2 s). Returns the connection, or NULL: the caller then fails its
 * requests at once with HK_EUNAVAIL, so the API answers 503 while the database is away instead
 * of hanging, and the next request tries again. */
static void *try_reconnect(hk_store *st, int role, reconn *rs)
{
    int64_t now = hk_mono_ms();
    if (rs->delay_ms && now < rs->next_try_mono) return NULL;
    char err[256];
    void *c = NULL;
    if (st->be->open(&c, st->cfg, role, err, sizeof err) == 0) {
        if (rs->delay_ms) HK_LOG(HK_LOG_INFO, "store.reconnected", HK_LS("backend", st->be->name));
        rs->delay_ms = 0;
        return c;
    }
    rs->delay_ms = rs->delay_ms ? HK_MIN(rs->delay_ms * 2, 2000) : 100;
    rs->next_try_mono = now + rs->delay_ms;
    HK_LOG(HK_LOG_WARN, "store.reconnect_failed", HK_LS("backend", st->be->name), HK_LS("msg", err),
           HK_LI("retry_ms", rs->delay_ms));
    return NULL;
}

static void fail_all(hk_req *head, int rc, const char *msg)
{
    for (hk_req *r = head; r; r = r->next) {
        hk_req_clear(r);
        r->rc = rc;
        snprintf(r->err, sizeof r->err, "%s", msg);
    }
}

/* Runs one group of write requests in one transaction. Returns 0, or HK_EUNAVAIL if the
 * connection broke (the caller reconnects); every request's rc is set either way. Returns
 * HK_EAGAIN, with nothing of the group run and no rc set, if the transaction cannot begin. */
static int run_write_group(hk_store *st, void *conn, hk_req *head)
{
    const hk_store_backend *be = st->be;
    if (be->begin(conn)) return HK_EAGAIN; /* nothing ran: the caller may try a new connection */
    for (hk_req *r = head; r; r = r->next) {
        if (be->savepoint(conn)) goto broken;
        int rc = exec_one(st, conn, r);
        if (rc == HK_EUNAVAIL) goto broken;
        if (rc) {
            hk_req_clear(r);
            if (be->rollback_to(conn)) goto broken;
        }
        if (be->release(conn)) goto broken;
    }
    if (be->pre_commit && be->pre_commit(conn)) goto broken;
    if (be->commit(conn)) goto broken;
    atomic_fetch_add(&st->commits, 1);
    return HK_OK;
broken:
    be->rollback(conn);
    fail_all(head, HK_EUNAVAIL, "the store could not commit; nothing was stored");
    return HK_EUNAVAIL;
}

static void *writer_main(void *arg)
{
    hk_store *st = arg;
    reconn rs = {0, 0};
    void *conn = try_reconnect(st, HK_CONN_WRITER, &rs);
    for (;;) {
        pthread_mutex_lock(&st->mu);
        while (!st->wq.len && !st->stopping) pthread_cond_wait(&st->wcond, &st->mu);
        if (!st->wq.len && st->stopping) {
            pthread_mutex_unlock(&st->mu);
            break;
        }
        int n;
        hk_req *head = q_take_all(&st->wq, GROUP_MAX, &n);
        pthread_mutex_unlock(&st->mu);

        int grc = conn ? run_write_group(st, conn, head) : HK_EAGAIN;
        if (grc == HK_EAGAIN && conn) {
            /* BEGIN failed: the connection went stale (say the database restarted since the
             * last group). Nothing of the group ran, so it runs on a new connection. */
            st->be->close(conn);
            conn = NULL;
            rs.delay_ms = 0;
        }
        if (grc == HK_EAGAIN) {
            conn = try_reconnect(st, HK_CONN_WRITER, &rs);
            grc = conn ? run_write_group(st, conn, head) : HK_EAGAIN;
        }
        if (grc == HK_EAGAIN) {
            atomic_store(&st->healthy, 0);
            fail_all(head, HK_EUNAVAIL, "the store is unavailable");
            complete(st, head);
            if (conn) st->be->close(conn);
            conn = NULL;
            continue;
        }
        if (grc == HK_EUNAVAIL) {
            atomic_store(&st->healthy, 0);
            /* Find out whether the connection itself is gone or only this group failed
             * (SQLite: disk full). A connection that still answers is kept. */
            if (st->be->ping(conn)) {
                complete(st, head);
                st->be->close(conn);
                conn = try_reconnect(st, HK_CONN_WRITER, &rs);
                continue;
            }
        } else {
            atomic_store(&st->healthy, 1);
        }
        complete(st, head);
    }
    if (conn) st->be->close(conn);
    return NULL;
}

static void *reader_main(void *arg)
{
    hk_store *st = arg;
    reconn rs = {0, 0};
    void *conn = try_reconnect(st, HK_CONN_READER, &rs);
    for (;;) {
        pthread_mutex_lock(&st->mu);
        while (!st->rq.len && !st->stopping) pthread_cond_wait(&st->rcond, &st->mu);
        if (!st->rq.len && st->stopping) {
            pthread_mutex_unlock(&st->mu);
            break;
        }
        int n;
        hk_req *r = q_take_all(&st->rq, 1, &n);
        pthread_mutex_unlock(&st->mu);

        int rc = conn && st->be->begin(conn) == 0 ? exec_one(st, conn, r) : HK_EAGAIN;
        if (rc == HK_EAGAIN) {
            /* no connection, or it went stale before anything ran: once more on a new one */
            if (conn) {
                st->be->close(conn);
                rs.delay_ms = 0;
            }
            conn = try_reconnect(st, HK_CONN_READER, &rs);
            rc = conn && st->be->begin(conn) == 0 ? exec_one(st, conn, r) : HK_EAGAIN;
        }
        if (rc == HK_EAGAIN) {
            fail_all(r, HK_EUNAVAIL, "the store is unavailable");
            complete(st, r);
            if (conn) st->be->close(conn);
            conn = NULL;
            continue;
        }
        if (rc == HK_EUNAVAIL) {
            st->be->rollback(conn);
            fail_all(r, HK_EUNAVAIL, "the store is unavailable");
            if (st->be->ping(conn)) {
                st->be->close(conn);
                conn = try_reconnect(st, HK_CONN_READER, &rs);
            }
        } else {
            if (rc) hk_req_clear(r);
            st->be->commit(conn);
        }
        complete(st, r);
    }
    if (conn) st->be->close(conn);
    return NULL;
}

/* ---- public --------------------------------------------------------------------------------- */

int hk_store_open(hk_store **out, struct event_base *base, const hk_config *cfg, char *err,
                  size_t errlen)
{
    hk_store *st = hk_calloc(1, sizeof *st);
    st->cfg = cfg;
    st->base = base;
    st->efd = -1;
    st->be = cfg->pg_url && cfg->pg_url[0] ? &hk_pg_backend : &hk_sqlite_backend;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->wcond, NULL);
    pthread_cond_init(&st->rcond, NULL);

    int rc = st->be->open(&st->admin, cfg, HK_CONN_ADMIN, err, errlen);
    if (rc) goto fail;
    rc = st->be->migrate(st->admin, err, errlen);
    if (rc) goto fail;
    atomic_store(&st->healthy, 1);
    if (!base) {
        *out = st;
        return HK_OK;
    }
    rc = st->be->startup(st->admin, cfg->node_id, err, errlen);
    if (rc) goto fail;
    st->be->close(st->admin);
    st->admin = NULL;

    st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (st->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        rc = HK_EIO;
        goto fail;
    }
    st->cev = event_new(base, st->efd, EV_READ | EV_PERSIST, on_completion, st);
    event_add(st->cev, NULL);

    st->nreaders =
        st->be == &hk_sqlite_backend ? READERS_SQLITE : (cfg->pg_pool > 1 ? cfg->pg_pool - 1 : 1);
    st->readers = hk_calloc((size_t)st->nreaders, sizeof(pthread_t));
    if (pthread_create(&st->writer, NULL, writer_main, st)) {
        snprintf(err, errlen, "cannot start the store thread");
        rc = HK_EINTERNAL;
        goto fail;
    }
    st->started_threads = 1;
    for (int i = 0; i < st->nreaders; i++) {
        if (pthread_create(&st->readers[i], NULL, reader_main, st)) {
            st->nreaders = i;
            break;
        }
    }
    *out = st;
    return HK_OK;
fail:
    hk_store_close(st);
    *out = NULL;
    return rc;
}

void hk_store_submit(hk_store *st, hk_req *req)
{
    req->rc = 0;
    req->err[0] = '\0';
    req->submitted_us = hk_mono_us();
    if (!req->now) req->now = hk_now_ms();
    atomic_fetch_add(&st->queued, 1);
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        req->rc = HK_ESHUTDOWN;
        snprintf(req->err, sizeof req->err, "hookd is shutting down");
        q_push(&st->cq, req);
        pthread_mutex_unlock(&st->mu);
        uint64_t one = 1;
        ssize_t w = write(st->efd, &one, sizeof one);
        HK_UNUSED(w);
        return;
    }
    if (hk_req_kind_writes(req->kind)) {
        q_push(&st->wq, req);
        pthread_cond_signal(&st->wcond);
    } else {
        q_push(&st->rq, req);
        pthread_cond_signal(&st->rcond);
    }
    pthread_mutex_unlock(&st->mu);
}

int hk_store_exec(hk_store *st, hk_req *req)
{
    req->rc = 0;
    req->err[0] = '\0';
    if (!req->now) req->now = hk_now_ms();
    void *c = st->admin;
    if (st->be->begin(c)) return req->rc = HK_EUNAVAIL;
    int rc = exec_one(st, c, req);
    if (rc == 0 && st->be->pre_commit) rc = st->be->pre_commit(c);
    if (rc == 0 && st->be->commit(c)) rc = HK_EUNAVAIL;
    if (rc) {
        st->be->rollback(c);
        hk_req_clear(req);
    }
    req->rc = rc;
    req_open_secrets(st, req);
    return req->rc;
}

const char *hk_store_backend_name(const hk_store *st)
{
    return st->be->name;
}

int hk_store_healthy(const hk_store *st)
{
    return atomic_load(&((hk_store *)st)->healthy);
}

int hk_store_queued(const hk_store *st)
{
    return atomic_load(&((hk_store *)st)->queued);
}

int64_t hk_store_commits(const hk_store *st)
{
    return atomic_load(&((hk_store *)st)->commits);
}

void hk_store_close(hk_store *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    pthread_cond_broadcast(&st->wcond);
    pthread_cond_broadcast(&st->rcond);
    pthread_mutex_unlock(&st->mu);
    if (st->started_threads) pthread_join(st->writer, NULL);
    for (int i = 0; i < st->nreaders; i++) pthread_join(st->readers[i], NULL);
    free(st->readers);
    if (st->efd >= 0) run_completions(st);
    if (st->cev) event_free(st->cev);
    if (st->efd >= 0) close(st->efd);
    if (st->admin) st->be->close(st->admin);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->wcond);
    pthread_cond_destroy(&st->rcond);
    free(st);
}
