/*
 * opevents.c: hookd's operational events (see opevents.h): the event's data, rendered from the
 * webhook and delivery rows as stored, and its fan-out, written through the backend's
 * opev_insert in the transaction of its cause.
 */
#include "store/opevents.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "store/match.h"

static const char *const opev_types[] = {"hookd.webhook.disabled", "hookd.webhook.failed",
                                         "hookd.delivery.exhausted", "hookd.webhook.recovered"};

const char *hk_opev_type(int kind)
{
    return kind >= 0 && kind < (int)HK_ARRAY_LEN(opev_types) ? opev_types[kind] : "hookd.unknown";
}

/* The data of ev about webhook w (docs/API.md "Operational events"); eid and etype are the
 * delivery's event id and type when ev has a result. */
static void render_data(hk_buf *out, const hk_opev *ev, const hk_webhook *w, const char *eid,
                        const char *etype)
{
    hk_jw j;
    hk_jw_init(&j, out);
    hk_jw_obj_open(&j);
    hk_jw_key(&j, "webhook");
    hk_jw_obj_open(&j);
    hk_jw_kstr(&j, "id", w->id);
    hk_jw_kstr(&j, "url", w->url);
    hk_jw_kstr(&j, "name", w->name);
    hk_jw_kstr(&j, "status", hk_wh_status_name(w->status));
    hk_jw_obj_close(&j);
    const hk_result *r = ev->res;
    if (r) {
        hk_jw_key(&j, "delivery");
        hk_jw_obj_open(&j);
        hk_jw_kstr(&j, "id", r->delivery_id);
        hk_jw_kstr(&j, "eventId", eid);
        hk_jw_kstr(&j, "eventType", etype);
        hk_jw_kint(&j, "attempts", r->attempt_number);
        hk_jw_obj_close(&j);
    } else {
        hk_jw_knull(&j, "delivery");
    }
    if (ev->reason) hk_jw_kstr(&j, "reason", ev->reason);
    if (ev->kind == HK_OPEV_FAILED) hk_jw_kint(&j, "consecutiveFailures", ev->consecutive_failures);
    if (r && r->response_status)
        hk_jw_kint(&j, "lastResponseStatus", r->response_status);
    else
        hk_jw_knull(&j, "lastResponseStatus");
    if (r && r->error_message && r->error_message[0])
        hk_jw_kstr(&j, "lastError", r->error_message);
    else
        hk_jw_knull(&j, "lastError");
    hk_jw_obj_close(&j);
}

int hk_opev_emit(hk_conn *b, void *conn, const hk_store_ops *o, int64_t now, const hk_opev *ev,
                 int *ndue)
{
    char eid[HK_ID_MAX] = "";
    char etype[HK_EVENT_TYPE_MAX + 1] = "";
    hk_webhook *w = NULL;
    hk_fanout_target *t = NULL;
    hk_new_delivery *ds = NULL;
    int nt = 0, nd = 0, due = 0;
    hk_buf data;
    hk_buf_init(&data, HK_BUF_UNLIMITED);
    int rc = HK_OK;
    if (ev->res) {
        int found = 0;
        rc = o->delivery_brief(conn, ev->res->delivery_id, eid, etype, sizeof etype, &found);
        if (rc || !found) goto out;
        /* no loop: an operational delivery's exhaustion emits nothing */
        if (ev->kind == HK_OPEV_EXHAUSTED && hk_event_type_reserved(etype)) goto out;
    }
    rc = o->webhook_get(conn, ev->webhook_id, NULL, &w);
    if (rc || !w || w->deleted_at) goto out;
    render_data(&data, ev, w, eid, etype);
    hk_fanout_org *fo = NULL;
    rc = hk_org_candidates(b, conn, o, w->org_id, &fo);
    if (rc) goto out;
    const char *type = hk_opev_type(ev->kind);
    nt = hk_fanout_targets(fo, type, hk_buf_cstr(&data), data.len, &t);
    if (nt < 0) {
        nt = 0;
        rc = HK_EINTERNAL;
        goto out;
    }
    ds = hk_calloc((size_t)(nt ? nt : 1), sizeof *ds);
    for (int i = 0; i < nt; i++) {
        const hk_webhook *to = t[i].fw->wh;
        if (strcmp(to->id, w->id) == 0) continue; /* never about itself */
        hk_new_delivery *d = &ds[nd++];
        hk_id_new("whde", d->id);
        d->wh = to;
        d->data = t[i].data;
        d->data_len = t[i].data_len;
        d->due = hk_claim_keeps(to) ? now : 0; /* parked: webhook or organization held */
        d->lease = NULL;
        if (d->due) due++;
    }
    hk_ingest_item it;
    memset(&it, 0, sizeof it);
    hk_id_new("whev", it.id);
    it.type = type;
    it.data = hk_buf_cstr(&data);
    it.data_len = data.len;
    it.source = "hookd";
    rc = o->opev_insert(conn, w->org_id, &it, ds, nd, now);
    if (rc) goto out;
    *ndue += due;
    HK_LOG(HK_LOG_INFO, "opevent.emitted", HK_LS("type", type), HK_LS("event_id", it.id),
           HK_LS("webhook_id", w->id), HK_LS("delivery_id", ev->res ? ev->res->delivery_id : ""),
           HK_LI("deliveries", nd));
out:
    for (int i = 0; i < nt; i++) free(t[i].data);
    free(t);
    free(ds);
    hk_webhook_free(w);
    hk_buf_free(&data);
    return rc;
}
