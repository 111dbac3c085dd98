/*
 * replay.c: sending deliveries again (SPEC §3): the manual retry of one delivery
 * (POST /deliveries/{id}/retry, also under /v1) and the recovery of every failed delivery of
 * a webhook in a time range (POST /v1/{id}/recover). Both create new deliveries of the same
 * event (same event id, `replayOfDeliveryId` set), due at once, and wake the dispatcher so
 * they go out without waiting for the next poll. A webhook that is not active answers 409:
 * its deliveries would only be parked.
 */
#include <string.h>

#include "api/api.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/time.h"

/* Wakes the dispatcher: the replay's webhook has new due deliveries. */
static void wake(hk_call *c, hk_req *req)
{
    if (req->u.replay.webhook && req->u.replay.count > 0)
        hk_dispatch_webhook_changed(c->api->dispatch, req->u.replay.webhook,
                                    (int)req->u.replay.count);
}

static void on_retried(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "delivery");
        return;
    }
    wake(c, req);
    HK_LOG(HK_LOG_INFO, "delivery.replayed", HK_LS("delivery_id", c->params[0]),
           HK_LS("new_delivery_id", req->u.replay.new_id),
           HK_LS("webhook_id", req->u.replay.webhook ? req->u.replay.webhook->id : ""));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kbool(&w, "success", 1);
    hk_jw_kstr(&w, "newDeliveryId", req->u.replay.new_id);
    hk_jw_kstr(&w, "replayOfDeliveryId", c->params[0]);
    hk_jw_obj_close(&w);
    hk_call_json(c, 202);
}

/* POST /deliveries/{id}/retry: a new delivery of the same event to the same webhook. */
void hk_h_delivery_retry(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "whde")) {
        hk_call_error(c, 404, "not_found", "delivery not found", NULL, NULL);
        return;
    }
    c->req.kind = HK_REQ_REPLAY;
    c->req.u.replay.delivery_id = c->params[0];
    hk_call_submit(c, on_retried);
}

static void on_recovered(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    wake(c, req);
    HK_LOG(HK_LOG_INFO, "webhook.recovered", HK_LS("webhook_id", c->params[0]),
           HK_LI("count", req->u.replay.count));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kint(&w, "count", req->u.replay.count);
    hk_jw_obj_close(&w);
    hk_call_json(c, 202);
}

/* Reads an ISO-8601 time field; 0 absent, 1 read, -1 invalid (422 sent). */
static int time_field(hk_call *c, const char *key, int64_t *out)
{
    int t = hk_json_obj_get(&c->doc, 0, key);
    if (t < 0 || hk_json_type(&c->doc, t) == HK_J_NULL) return 0;
    char s[64];
    hk_buf b;
    hk_buf_init(&b, sizeof s - 1);
    int bad = hk_json_type(&c->doc, t) != HK_J_STRING || hk_json_str(&c->doc, t, &b) != 0;
    if (!bad) {
        hk_strlcpy(s, hk_buf_cstr(&b), sizeof s);
        bad = hk_iso_parse(s, out) != 0;
    }
    hk_buf_free(&b);
    if (bad) {
        hk_call_invalid(c, "%s must be an ISO-8601 date-time such as 2026-01-31T12:00:00Z", key);
        return -1;
    }
    return 1;
}

/* POST /v1/{id}/recover {"since": ISO, "until"?: ISO}: replays every failed delivery of the
 * webhook created in [since, until). */
void hk_h_webhook_recover(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "wh")) {
        hk_call_error(c, 404, "not_found", "webhook not found", NULL, NULL);
        return;
    }
    if (hk_call_parse_body(c, 0)) return;
    int64_t since = 0, until = 0;
    int r = time_field(c, "since", &since);
    if (r < 0) return;
    if (r == 0) {
        hk_call_invalid(c, "since is required (an ISO-8601 date-time)");
        return;
    }
    if ((r = time_field(c, "until", &until)) < 0) return;
    if (r && until <= since) {
        hk_call_invalid(c, "until must be later than since");
        return;
    }
    c->req.kind = HK_REQ_REPLAY;
    c->req.u.replay.webhook_id = c->params[0];
    c->req.u.replay.since = since;
    c->req.u.replay.until = until;
    hk_call_submit(c, on_recovered);
}
