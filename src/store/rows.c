/*
 * rows.c: the store's rules, the same for every backend (see rows.h). The backends call these
 * between their statements; store.c's request table calls the policy functions built on them.
 */
#include "store/rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/sig_scheme.h"

/* ---- output arrays ------------------------------------------------------------------------ */

/* Makes room for element n of *arr (elements of size sz): the capacity is implied by n (8, then
 * each power of two), so the arrays of store.h need no capacity field. */
static void grow(void **arr, int n, size_t sz)
{
    if (n == 0)
        *arr = hk_realloc(*arr, sz * 8);
    else if (n >= 8 && (n & (n - 1)) == 0)
        *arr = hk_realloc(*arr, sz * (size_t)n * 2);
}

void hk_out_job(hk_job ***arr, int *n, hk_job *j)
{
    grow((void **)arr, *n, sizeof(hk_job *));
    (*arr)[(*n)++] = j;
}

void hk_out_webhook(hk_webhook ***arr, int *n, hk_map *seen, const hk_webhook *wh)
{
    if (hk_map_get(seen, wh->id)) return;
    grow((void **)arr, *n, sizeof(hk_webhook *));
    hk_webhook *copy = hk_webhook_dup(wh);
    (*arr)[(*n)++] = copy;
    hk_map_put(seen, copy->id, copy);
}

void hk_out_release(hk_release **arr, int *n, const char *id, int64_t due)
{
    grow((void **)arr, *n, sizeof(hk_release));
    hk_strlcpy((*arr)[*n].id, id, HK_ID_MAX);
    (*arr)[*n].next_retry_at = due;
    (*n)++;
}

int hk_results_fifo_webhooks(const hk_req *req, const char ***ids)
{
    hk_map seen;
    hk_map_init(&seen);
    int n = 0;
    *ids = NULL;
    for (int i = 0; i < req->u.results.n; i++) {
        const hk_result *r = &req->u.results.items[i];
        if (!r->final || !r->fifo || hk_map_get(&seen, r->webhook_id)) continue;
        hk_map_put(&seen, r->webhook_id, (void *)1);
        grow((void **)ids, n, sizeof **ids);
        (*ids)[n++] = r->webhook_id;
    }
    hk_map_free(&seen);
    return n;
}

void hk_out_change(hk_req *req, const char *wid, int status)
{
    grow((void **)&req->u.results.changes, req->u.results.nchanges, sizeof(hk_wh_change));
    hk_wh_change *ch = &req->u.results.changes[req->u.results.nchanges++];
    hk_strlcpy(ch->id, wid, sizeof ch->id);
    ch->status = status; /* logged by the dispatcher once the commit succeeded */
}

/* ---- per-connection state: the fan-out cache, the group ---------------------------------- */

/* Removes e from b's cache and frees it. */
static void org_drop(hk_conn *b, hk_fanout_org *e)
{
    hk_map_del(&b->orgs, e->org_id);
    b->norgs--;
    b->nwebhooks -= e->n;
    hk_fanout_org_free(e);
    free(e);
}

void hk_conn_orgs_reset(hk_conn *b)
{
    size_t it = 0;
    hk_fanout_org *e;
    while ((e = hk_map_next(&b->orgs, &it))) org_drop(b, e);
    hk_map_free(&b->orgs);
    b->norgs = 0;
    b->nwebhooks = 0;
    b->resets++;
}

void hk_conn_group_reset(hk_conn *b)
{
    b->gen++;
    b->ntouched = b->touched_mark = 0;
    b->mark_resets = b->resets;
}

void hk_conn_group_rollback(hk_conn *b)
{
    hk_conn_orgs_reset(b);
    hk_conn_group_reset(b);
}

void hk_conn_mark(hk_conn *b)
{
    b->touched_mark = b->ntouched;
    b->mark_resets = b->resets;
}

void hk_conn_undo(hk_conn *b)
{
    if (b->resets != b->mark_resets) hk_conn_orgs_reset(b);
    /* the undone request's touched flags go with it (a webhook touched earlier in the group may
     * be listed again: hk_conn_touched_unique removes repeats) */
    b->gen++;
    if (b->ntouched > b->touched_mark) b->ntouched = b->touched_mark;
}

void hk_conn_free(hk_conn *b)
{
    hk_conn_orgs_reset(b);
    hk_conn_group_reset(b);
    free(b->touched);
    b->touched = NULL;
    b->touched_cap = 0;
}

/* Remembers that webhook wid got a delivery in this group. */
static void touch(hk_conn *b, const char *wid)
{
    if (b->ntouched == b->touched_cap) {
        b->touched_cap = b->touched_cap ? b->touched_cap * 2 : 16;
        b->touched = hk_realloc(b->touched, sizeof *b->touched * (size_t)b->touched_cap);
    }
    hk_strlcpy(b->touched[b->ntouched++], wid, HK_ID_MAX);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

int hk_conn_touched_unique(hk_conn *b)
{
    if (b->ntouched > 1) qsort(b->touched, (size_t)b->ntouched, HK_ID_MAX, cmp_id);
    int m = 0;
    for (int i = 0; i < b->ntouched; i++) {
        if (m > 0 && strcmp(b->touched[i], b->touched[m - 1]) == 0) continue;
        if (m != i) memcpy(b->touched[m], b->touched[i], HK_ID_MAX);
        m++;
    }
    b->ntouched = m;
    if (b->touched_mark > m) b->touched_mark = m;
    return m;
}

/* Evicts the least recently used sets not used in the current group until b is within its
 * bounds (keep: the set just loaded, which stays even if it alone exceeds them). */
static void org_evict(hk_conn *b, const hk_fanout_org *keep)
{
    while (b->norgs > HK_ORGCACHE_MAX_ORGS || b->nwebhooks > HK_ORGCACHE_MAX_WEBHOOKS) {
        hk_fanout_org *lru = NULL, *e;
        size_t it = 0;
        while ((e = hk_map_next(&b->orgs, &it)))
            if (e != keep && e->checked != b->gen && (!lru || e->used < lru->used)) lru = e;
        if (!lru) return; /* all in use in this group: over the bound until it ends */
        org_drop(b, lru);
    }
}

int hk_org_candidates(hk_conn *b, void *conn, const hk_store_ops *o, const char *org,
                      hk_fanout_org **out)
{
    hk_fanout_org *e = hk_map_get(&b->orgs, org);
    if (e && e->checked == b->gen) { /* checked in this group: reuse (pointers may be held) */
        e->used = ++b->tick;
        *out = e;
        return HK_OK;
    }
    int64_t version = 0;
    int rc = o->org_version(conn, org, &version);
    if (rc) return rc;
    if (e && e->version == version) {
        e->checked = b->gen;
        e->used = ++b->tick;
        *out = e;
        return HK_OK;
    }
    if (e) org_drop(b, e); /* not used in this group: nothing points into it */
    hk_fanout_org *n = hk_calloc(1, sizeof *n);
    n->org_id = hk_strdup(org);
    rc = o->org_webhooks(conn, org, n);
    if (rc) {
        hk_fanout_org_free(n);
        free(n);
        return rc;
    }
    n->version = version;
    n->checked = b->gen;
    n->used = ++b->tick;
    hk_map_put(&b->orgs, n->org_id, n);
    b->norgs++;
    b->nwebhooks += n->n;
    b->reloads++;
    HK_LOG(HK_LOG_DEBUG, "fanout.loaded", HK_LS("org_id", org), HK_LI("webhooks", n->n),
           HK_LI("version", version), HK_LI("loads", (int64_t)b->reloads));
    org_evict(b, n);
    *out = n;
    return HK_OK;
}

/* ---- webhooks ----------------------------------------------------------------------------- */

void hk_wh_row_create(const hk_webhook_fields *f, hk_wh_row *out)
{
    memset(out, 0, sizeof *out);
    out->name = f->name;
    out->url = f->url;
    out->secret = f->secret;
    out->user_id = f->has & HK_WF_USER ? f->user_id : NULL;
    out->status = f->has & HK_WF_STATUS ? f->status : HK_WH_ACTIVE;
    out->custom_headers = f->has & HK_WF_HEADERS ? f->custom_headers : NULL;
    out->rate_limit_enabled = f->has & HK_WF_RATE_ENABLED ? f->rate_limit_enabled : 1;
    out->max_per_minute = f->has & HK_WF_RATE_MAX ? f->max_per_minute : 60;
    out->max_retries = f->has & HK_WF_MAX_RETRIES ? f->max_retries : 6;
    out->filtering_options = f->has & HK_WF_FILTER ? f->filtering_options : NULL;
    hk_schemes_str(f->has & HK_WF_SCHEMES ? f->schemes : HK_SIG_DEFAULT, out->schemes,
                   sizeof out->schemes);
    out->retry_schedule = f->has & HK_WF_RETRY_SCHEDULE ? f->retry_schedule : NULL;
    out->timeout_ms = f->has & HK_WF_TIMEOUT ? f->timeout_ms : 0;
    out->signing_key = f->has & HK_WF_SIGNING_KEY ? f->signing_key : NULL;
    out->fifo = f->has & HK_WF_ORDERING ? f->fifo : 0;
}

void hk_wh_row_patch(const hk_webhook *w, const hk_webhook_fields *f, int64_t now, hk_wh_row *out)
{
    memset(out, 0, sizeof *out);
    out->name = f->has & HK_WF_NAME ? f->name : w->name;
    out->url = f->has & HK_WF_URL ? f->url : w->url;
    out->secret = f->has & HK_WF_SECRET ? f->secret : w->secret;
    out->user_id = f->has & HK_WF_USER ? f->user_id : w->user_id;
    out->status = f->has & HK_WF_STATUS ? f->status : w->status;
    out->custom_headers = f->has & HK_WF_HEADERS ? f->custom_headers : w->custom_headers;
    out->rate_limit_enabled =
        f->has & HK_WF_RATE_ENABLED ? f->rate_limit_enabled : w->rate_limit_enabled;
    out->max_per_minute = f->has & HK_WF_RATE_MAX ? f->max_per_minute : w->max_per_minute;
    out->max_retries = f->has & HK_WF_MAX_RETRIES ? f->max_retries : w->max_retries;
    out->filtering_options = f->has & HK_WF_FILTER ? f->filtering_options : w->filtering_options;
    hk_schemes_str(f->has & HK_WF_SCHEMES ? f->schemes : w->schemes, out->schemes,
                   sizeof out->schemes);
    out->retry_schedule = f->has & HK_WF_RETRY_SCHEDULE ? f->retry_schedule : w->retry_schedule;
    out->timeout_ms = f->has & HK_WF_TIMEOUT ? f->timeout_ms : w->timeout_ms;
    out->fifo = f->has & HK_WF_ORDERING ? f->fifo : w->fifo;
    /* Ed25519: a rotation moves the current key aside; otherwise a key once made is kept */
    out->signing_key = w->signing_key;
    out->prev_signing_key = w->prev_signing_key;
    out->prev_signing_key_expires_at = w->prev_signing_key_expires_at;
    if ((f->has & HK_WF_SIGNING_KEY) && (f->has & HK_WF_ROTATE_KEY)) {
        int keep = w->signing_key && f->prev_expires_at > 0;
        out->prev_signing_key = keep ? w->signing_key : NULL;
        out->prev_signing_key_expires_at = keep ? f->prev_expires_at : 0;
        out->signing_key = f->signing_key;
    } else if ((f->has & HK_WF_SIGNING_KEY) && !w->signing_key) {
        out->signing_key = f->signing_key;
    }
    out->consecutive_failures = w->consecutive_failures;
    if ((f->has & HK_WF_STATUS) && out->status == HK_WH_ACTIVE) out->consecutive_failures = 0;
    out->recovering =
        (f->has & HK_WF_STATUS) && out->status == HK_WH_ACTIVE && w->status == HK_WH_FAILED;
    out->updated_at = now > w->updated_at ? now : w->updated_at + 1;
}

int hk_wh_limit_check(hk_req *req, int64_t n)
{
    if (req->u.wh_create.max_per_org <= 0 || n < req->u.wh_create.max_per_org) return HK_OK;
    snprintf(req->err, sizeof req->err,
             "the organization has %lld webhooks, the most HOOKD_MAX_WEBHOOKS_PER_ORG "
             "(%d) allows: delete one first",
             (long long)n, req->u.wh_create.max_per_org);
    return HK_ELIMIT;
}

/* ---- ingest ------------------------------------------------------------------------------- */

int hk_ingest_event(hk_conn *b, hk_req *req, int idx, hk_fanout_org *o, int *budget,
                    const hk_ingest_sink *sink)
{
    hk_ingest_item *it = &req->u.ingest.items[idx];
    hk_fanout_target *t = NULL;
    int nt = hk_fanout_targets(o, it->type, it->data, it->data_len, &t);
    if (nt < 0) {
        snprintf(req->err, sizeof req->err, "data must be a JSON object");
        return HK_EINVAL;
    }
    int rc = hk_fanout_check_caps(req, idx, nt);
    if (!rc) {
        hk_id_new("whev", it->id);
        rc = sink->event(sink->ctx, req, it);
    }
    hk_blob *shared = NULL;
    for (int i = 0; !rc && i < nt; i++) {
        const hk_webhook *wh = t[i].fw->wh;
        int active = wh->status == HK_WH_ACTIVE;
        /* a FIFO webhook's deliveries wait for a claim, which takes only its oldest open one */
        int lease = active && *budget > 0 && !wh->fifo;
        hk_new_delivery d;
        hk_id_new("whde", d.id);
        d.wh = wh;
        d.data = t[i].data;
        d.data_len = t[i].data_len;
        d.due = active ? req->now : 0;
        d.lease = lease ? req->node_id : NULL;
        rc = sink->delivery(sink->ctx, req, it, &d);
        if (rc) break;
        if (t[i].fw->touched_gen != b->gen) {
            t[i].fw->touched_gen = b->gen;
            touch(b, wh->id);
        }
        it->ndeliveries++;
        /* due now, not leased: a queue with its own schedule (Redis) adds it */
        if (active && !lease)
            hk_out_release(&req->u.ingest.queued, &req->u.ingest.nqueued, d.id, req->now);
        if (!lease) continue;
        (*budget)--;
        hk_job *j = hk_job_new();
        hk_strlcpy(j->id, d.id, sizeof j->id);
        hk_strlcpy(j->webhook_id, wh->id, sizeof j->webhook_id);
        hk_strlcpy(j->event_id, it->id, sizeof j->event_id);
        if (t[i].data) {
            j->body = hk_envelope_render(it->id, it->type, req->now, t[i].data, t[i].data_len);
        } else {
            if (!shared)
                shared = hk_envelope_render(it->id, it->type, req->now, it->data, it->data_len);
            j->body = hk_blob_ref(shared);
        }
        j->status = HK_DL_PENDING;
        j->attempt_number = 0;
        j->max_attempts = wh->max_retries + 1;
        j->due_ms = req->now;
        j->created_ms = req->now;
        hk_out_job(&req->u.ingest.jobs, &req->u.ingest.njobs, j);
        hk_out_webhook(&req->u.ingest.webhooks, &req->u.ingest.nwebhooks,
                       &req->u.ingest.webhooks_seen, wh);
    }
    hk_blob_unref(shared);
    for (int i = 0; i < nt; i++) free(t[i].data);
    free(t);
    return rc;
}

void hk_ingest_copy_dup(hk_ingest_item *it, const hk_ingest_item *first)
{
    memcpy(it->id, first->id, sizeof it->id);
    free(it->dup_type);
    it->dup_type = hk_strdup(first->dup_type ? first->dup_type : first->type);
    it->duplicate = 1;
    it->ndeliveries = first->ndeliveries;
}

/* ---- jobs from delivery rows -------------------------------------------------------------- */

void hk_bodies_init(hk_bodies *b)
{
    memset(b, 0, sizeof *b);
    hk_map_init(&b->map);
}

void hk_bodies_free(hk_bodies *b)
{
    for (int i = 0; i < b->n; i++) hk_blob_unref(b->e[i].body);
    free(b->e);
    hk_map_free(&b->map);
    memset(b, 0, sizeof *b);
}

/* The shared envelope of row r's event, rendered on first use. */
static hk_blob *event_body(const hk_job_row *r, hk_bodies *b)
{
    intptr_t k = (intptr_t)hk_map_get(&b->map, r->event_id);
    if (k) return b->e[k - 1].body;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->e = hk_realloc(b->e, sizeof *b->e * (size_t)b->cap);
        /* the map's keys point into the array: rebuild it after a move */
        hk_map_free(&b->map);
        hk_map_init(&b->map);
        for (int i = 0; i < b->n; i++) hk_map_put(&b->map, b->e[i].id, (void *)(intptr_t)(i + 1));
    }
    struct hk_body *e = &b->e[b->n++];
    hk_strlcpy(e->id, r->event_id, sizeof e->id);
    e->body = hk_envelope_render(r->event_id, r->type, r->ev_created, r->payload, r->payload_len);
    hk_map_put(&b->map, e->id, (void *)(intptr_t)b->n);
    return e->body;
}

hk_job *hk_job_from_row(const hk_job_row *r, hk_bodies *bodies)
{
    hk_job *j = hk_job_new();
    hk_strlcpy(j->id, r->id ? r->id : "", sizeof j->id);
    hk_strlcpy(j->webhook_id, r->webhook_id ? r->webhook_id : "", sizeof j->webhook_id);
    hk_strlcpy(j->event_id, r->event_id ? r->event_id : "", sizeof j->event_id);
    j->status = hk_dl_status_parse(r->status);
    j->attempt_number = r->attempt_number;
    j->max_attempts = r->max_attempts;
    j->due_ms = r->due;
    j->created_ms = r->created;
    if (r->data)
        j->body = hk_envelope_render(j->event_id, r->type, r->ev_created, r->data, r->data_len);
    else
        j->body = hk_blob_ref(event_body(r, bodies));
    return j;
}

int hk_claim_keeps(const hk_webhook *wh)
{
    return wh && wh->status == HK_WH_ACTIVE && !wh->deleted_at && !wh->org_disabled;
}

/* ---- results: a webhook's health ---------------------------------------------------------- */

int hk_health_add(hk_health *h, const hk_result *r)
{
    if (!r->final || !r->stored) return 0;
    if (r->attempt_ok) {
        h->ok++;
        h->had_success = 1;
        h->streak = 0;
    } else {
        h->fail++;
        h->streak++;
    }
    if (r->gone) h->gone = 1;
    return 1;
}

int hk_health_decide(const hk_health *h, int status, int64_t cf, int deleted, int disable_after)
{
    if (deleted || status < 0) return -1;
    if (h->gone && status != HK_WH_DISABLED) return HK_WH_DISABLED;
    if (status == HK_WH_ACTIVE && disable_after > 0 && cf >= disable_after) return HK_WH_FAILED;
    return -1;
}
