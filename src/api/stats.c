/*
 * stats.c: the statistics (SPEC §7, issue 17 item 4; docs/API.md "Statistics"):
 * GET /api/webhook/v1/{id}/stats, a webhook's attempts by outcome and latency percentiles per
 * minute, hour or day between from and to, with its open backlog; GET /api/webhook/v1/stats,
 * the organization's webhooks with their last 24 hours, last attempt and backlog. Both are read
 * from the rollups the results batches write (store/rollup.h), never from the delivery tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/time.h"

#define STATS_MAX_BUCKETS 10000
#define STATS_DAY_MS      86400000LL
#define STATS_ERROR_PCT   16 /* rollup.h's HK_SH_ERROR_PCT */
#define ORG_STATS_MAX     500

/* An ISO 8601 time parameter: 0 absent, 1 present (*ms), -1 (422 sent). */
static int time_param(hk_call *c, const char *key, int64_t *ms)
{
    char v[64];
    int r = hk_call_query(c, key, v, sizeof v);
    if (r < 0) return -1;
    if (r == 1) return 0;
    if (hk_iso_parse(v, ms) || *ms <= 0) {
        hk_call_invalid(c, "%s must be an ISO 8601 time (2026-01-31T12:00:00Z)", key);
        return -1;
    }
    return 1;
}

/* {"p50":..,"p95":..,"p99":..} of p, or nulls when there was no sample. */
static void percentiles(hk_jw *w, const char *key, const int64_t p[3])
{
    static const char *const names[3] = {"p50", "p95", "p99"};
    hk_jw_key(w, key);
    hk_jw_obj_open(w);
    for (int i = 0; i < 3; i++)
        if (p[i] < 0)
            hk_jw_knull(w, names[i]);
        else
            hk_jw_kint(w, names[i], p[i]);
    hk_jw_obj_close(w);
}

static void on_webhook_stats(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    const char *ivname = c->data;
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "webhookId", req->u.wstats.webhook_id);
    hk_jw_kstr(&w, "interval", ivname);
    hk_jw_ktime(&w, "from", req->u.wstats.from);
    hk_jw_ktime(&w, "to", req->u.wstats.to);
    hk_jw_kint(&w, "backlog", req->u.wstats.backlog);
    hk_jw_kbool(&w, "backlogCapped", req->u.wstats.capped);
    hk_jw_kint(&w, "percentileErrorPct", STATS_ERROR_PCT);
    int64_t td = 0, tf = 0, tg = 0;
    hk_jw_key(&w, "buckets");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.wstats.n; i++) {
        const hk_stats_bucket *b = &req->u.wstats.items[i];
        hk_jw_obj_open(&w);
        hk_jw_ktime(&w, "start", b->start);
        hk_jw_kint(&w, "delivered", b->delivered);
        hk_jw_kint(&w, "failed", b->failed);
        hk_jw_kint(&w, "givenUp", b->given_up);
        percentiles(&w, "attemptLatencyMs", b->att_p);
        percentiles(&w, "endToEndLatencyMs", b->e2e_p);
        hk_jw_obj_close(&w);
        td += b->delivered;
        tf += b->failed;
        tg += b->given_up;
    }
    hk_jw_arr_close(&w);
    hk_jw_key(&w, "totals");
    hk_jw_obj_open(&w);
    hk_jw_kint(&w, "delivered", td);
    hk_jw_kint(&w, "failed", tf);
    hk_jw_kint(&w, "givenUp", tg);
    hk_jw_obj_close(&w);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_webhook_stats(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "wh")) {
        hk_call_error(c, 404, "not_found", "webhook not found", NULL, NULL);
        return;
    }
    char iv[16];
    int r = hk_call_query(c, "interval", iv, sizeof iv);
    if (r < 0) return;
    int64_t ivms = 3600000;
    const char *ivname = "hour";
    if (r == 0) {
        if (strcmp(iv, "minute") == 0) {
            ivms = 60000, ivname = "minute";
        } else if (strcmp(iv, "hour") == 0) {
            ivms = 3600000, ivname = "hour";
        } else if (strcmp(iv, "day") == 0) {
            ivms = STATS_DAY_MS, ivname = "day";
        } else {
            hk_call_invalid(c, "interval must be minute, hour or day");
            return;
        }
    }
    int64_t now = hk_now_ms(), from = 0, to = 0;
    int hf = time_param(c, "from", &from);
    if (hf < 0) return;
    int ht = time_param(c, "to", &to);
    if (ht < 0) return;
    if (!ht) to = now;
    if (!hf) from = to - STATS_DAY_MS;
    if (to <= from) {
        hk_call_invalid(c, "to must be later than from");
        return;
    }
    from -= from % ivms; /* buckets start on the interval's boundaries (UTC) */
    int64_t nb = (to - from + ivms - 1) / ivms;
    if (nb > STATS_MAX_BUCKETS) {
        hk_call_invalid(c, "from..to holds %lld %s buckets; at most %d are read at once",
                        (long long)nb, ivname, STATS_MAX_BUCKETS);
        return;
    }
    c->data = (void *)ivname; /* static: no data_free */
    c->req.kind = HK_REQ_WEBHOOK_STATS;
    c->req.u.wstats.webhook_id = c->params[0];
    c->req.u.wstats.from = from;
    c->req.u.wstats.to = from + nb * ivms;
    c->req.u.wstats.interval = ivms;
    hk_call_submit(c, on_webhook_stats);
}

static void on_org_stats(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "statistics");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_ktime(&w, "since", req->u.ostats.since);
    hk_jw_key(&w, "data");
    hk_jw_arr_open(&w);
    const char *last = NULL;
    for (int i = 0; i < req->u.ostats.n; i++) {
        const hk_org_stat *x = &req->u.ostats.items[i];
        last = x->id;
        if (!hk_call_webhook_allowed(c, x->id)) continue; /* a limited portal session */
        hk_jw_obj_open(&w);
        hk_jw_kstr(&w, "webhookId", x->id);
        hk_jw_kstr(&w, "name", x->name);
        hk_jw_kstr(&w, "url", x->url);
        hk_jw_kstr(&w, "status", x->status);
        hk_jw_kint(&w, "delivered", x->delivered);
        hk_jw_kint(&w, "failed", x->failed);
        hk_jw_kint(&w, "givenUp", x->given_up);
        int64_t all = x->delivered + x->failed + x->given_up;
        if (all) {
            char rate[32];
            snprintf(rate, sizeof rate, "%.4f", (double)x->delivered / (double)all);
            hk_jw_kraw(&w, "successRate", rate, strlen(rate));
        } else {
            hk_jw_knull(&w, "successRate");
        }
        if (x->last_at)
            hk_jw_ktime(&w, "lastAttemptAt", x->last_at);
        else
            hk_jw_knull(&w, "lastAttemptAt");
        hk_jw_kint(&w, "backlog", x->backlog);
        hk_jw_kbool(&w, "backlogCapped", x->capped);
        hk_jw_obj_close(&w);
    }
    hk_jw_arr_close(&w);
    hk_jw_kbool(&w, "more", req->u.ostats.more);
    if (req->u.ostats.more && last)
        hk_jw_kstr(&w, "next", last);
    else
        hk_jw_knull(&w, "next");
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_org_stats(hk_call *c)
{
    char v[32];
    int limit = 100;
    int r = hk_call_query(c, "limit", v, sizeof v);
    if (r < 0) return;
    if (r == 0) {
        char *end;
        long n = strtol(v, &end, 10);
        if (end == v || *end || n < 1 || n > ORG_STATS_MAX) {
            hk_call_invalid(c, "limit must be an integer from 1 to %d", ORG_STATS_MAX);
            return;
        }
        limit = (int)n;
    }
    char *after = hk_calloc(1, HK_ID_MAX + 8);
    c->data = after;
    c->data_free = free;
    r = hk_call_query(c, "cursor", after, HK_ID_MAX + 8); /* `cursor`, as every list */
    if (r < 0) return;
    if (r == 0 && !hk_id_valid(after, "wh")) {
        hk_call_invalid(c, "cursor must be the `next` of the previous page (a webhook id)");
        return;
    }
    c->req.kind = HK_REQ_ORG_STATS;
    c->req.u.ostats.since = hk_now_ms() - STATS_DAY_MS;
    c->req.u.ostats.limit = limit;
    c->req.u.ostats.after = r == 0 ? after : NULL;
    hk_call_submit(c, on_org_stats);
}
