/*
 * fanout.c: which of an organization's webhooks an event goes to, and with what data. An
 * organization's candidate webhooks are loaded once per transaction (rows.c's organization
 * cache, through the backend's org_webhooks op) and hk_fanout_targets runs for every event of
 * that organization in it (rows.c's hk_ingest_event).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "store/match.h"
#include "store/backend.h"

void hk_fanout_add(hk_fanout_org *o, hk_webhook *wh)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 8;
        o->whs = hk_realloc(o->whs, sizeof(hk_fanout_wh) * (size_t)o->cap);
    }
    hk_fanout_wh *fw = &o->whs[o->n++];
    memset(fw, 0, sizeof *fw);
    fw->wh = wh;
    fw->filter_ok = 1;
    if (wh->filtering_options) {
        char err[160];
        if (hk_filter_parse(wh->filtering_options, strlen(wh->filtering_options), &fw->filter, err,
                            sizeof err)) {
            /* Stored filters were validated on the way in; an unreadable one is a bug or a
             * hand-edited row. Deliver everything rather than drop events silently. */
            HK_LOG(HK_LOG_ERROR, "fanout.bad_filter", HK_LS("webhook_id", wh->id),
                   HK_LS("msg", err));
            hk_filter_free(&fw->filter);
            memset(&fw->filter, 0, sizeof fw->filter);
            fw->filter_ok = 0;
        }
    }
}

void hk_fanout_org_free(hk_fanout_org *o)
{
    for (int i = 0; i < o->n; i++) {
        hk_filter_free(&o->whs[i].filter);
        hk_webhook_free(o->whs[i].wh);
    }
    free(o->whs);
    free(o->org_id);
    memset(o, 0, sizeof *o);
}

static int subscribed(const hk_webhook *wh, const char *type)
{
    for (int i = 0; i < wh->nevents; i++)
        if (hk_pattern_match(wh->events[i], type)) return 1;
    return 0;
}

int hk_fanout_targets(hk_fanout_org *o, const char *type, const char *data, size_t data_len,
                      hk_fanout_target **out)
{
    *out = NULL;
    hk_jdoc doc = {0};
    int parsed = 0, n = 0, rc = 0;
    hk_fanout_target *t = NULL;
    for (int i = 0; i < o->n; i++) {
        hk_fanout_wh *fw = &o->whs[i];
        const hk_webhook *wh = fw->wh;
        if (wh->deleted_at || wh->status == HK_WH_DISABLED) continue;
        if (!subscribed(wh, type)) continue;
        int needs_doc = fw->filter_ok && (fw->filter.match_json || fw->filter.nexclude);
        if (needs_doc && !parsed) {
            if (hk_json_parse(&doc, data, data_len, 1u << 24, HK_JSON_MAX_DEPTH_DEFAULT) ||
                hk_json_type(&doc, 0) != HK_J_OBJECT) {
                rc = HK_EINVAL;
                goto out;
            }
            parsed = 1;
        }
        if (needs_doc && !hk_filter_matches(&fw->filter, &doc, 0)) continue;
        t = hk_realloc(t, sizeof *t * (size_t)(n + 1));
        t[n].fw = fw;
        t[n].data = NULL;
        t[n].data_len = 0;
        if (needs_doc && hk_filter_excludes(&fw->filter)) {
            hk_buf b;
            hk_buf_init(&b, HK_BUF_UNLIMITED);
            hk_filter_apply_exclude(&fw->filter, &doc, 0, &b);
            t[n].data_len = b.len;
            t[n].data = hk_buf_steal(&b);
        }
        n++;
    }
out:
    hk_json_free(&doc);
    if (rc) {
        for (int i = 0; i < n; i++) free(t[i].data);
        free(t);
        return rc;
    }
    *out = t;
    return n;
}

int hk_fanout_check_caps(hk_req *req, int idx, int nt)
{
    const hk_ingest_item *it = &req->u.ingest.items[idx];
    int per_event = req->u.ingest.max_per_event, total_max = req->u.ingest.max_total;
    if (per_event > 0 && nt > per_event) {
        snprintf(req->err, sizeof req->err,
                 "event %d of the request (type %.64s) matches %d webhooks: more than "
                 "HOOKD_MAX_DELIVERIES_PER_EVENT (%d) deliveries; nothing was stored",
                 idx, it->type, nt, per_event);
        return HK_ELIMIT;
    }
    if (total_max <= 0) return HK_OK;
    int64_t total = nt;
    for (int k = 0; k < idx; k++)
        if (!req->u.ingest.items[k].duplicate) total += req->u.ingest.items[k].ndeliveries;
    if (total > total_max) {
        snprintf(req->err, sizeof req->err,
                 "the request would create more than HOOKD_MAX_DELIVERIES_PER_BATCH (%d) "
                 "deliveries (%lld by event %d); nothing was stored: send fewer events per "
                 "request",
                 total_max, (long long)total, idx);
        return HK_ELIMIT;
    }
    return HK_OK;
}
