/*
 * search.c: organization-wide search of deliveries (SPEC §7, issue 17 item 5):
 * GET /api/webhook/v1/deliveries with filters (status, eventType, webhookId, a created_at range
 * since/until) and lookups (eventId, deliveryId, idempotencyKey: the deliveries of the event
 * ingested with that key), newest first, paged with a keyset cursor: `next` names the last row
 * of the page (its created_at and id), so a page never repeats or skips a row when deliveries
 * are added meanwhile, and reading page N costs no more than page 1. The store answers from
 * the organization's webhooks (store.h, DELIVERY_SEARCH).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/time.h"
#include "store/job.h"
#include "store/match.h"

#define IDEM_MAX 255

typedef struct search_input {
    char status[32], type[256], webhook[HK_ID_MAX + 8], event[HK_ID_MAX + 8];
    char delivery[HK_ID_MAX + 8], idem[IDEM_MAX + 2], cursor_id[HK_ID_MAX];
} search_input;

/* Reads query parameter key into out: 0 absent, 1 present, -1 (422 sent). */
static int query(hk_call *c, const char *key, char *out, size_t n)
{
    int r = hk_call_query(c, key, out, n);
    if (r < 0) return -1;
    return r == 0 ? 1 : 0;
}

/* An id parameter of the given prefix: 0 absent, 1 valid, -1 (422 sent). */
static int id_param(hk_call *c, const char *key, const char *prefix, char *out, size_t n)
{
    int r = query(c, key, out, n);
    if (r == 1 && !hk_id_valid(out, prefix)) {
        hk_call_invalid(c, "%s must be an id of the form %s_...", key, prefix);
        return -1;
    }
    return r;
}

/* An ISO 8601 time parameter: 0 absent, 1 present (*ms), -1 (422 sent). */
static int time_param(hk_call *c, const char *key, int64_t *ms)
{
    char v[64];
    int r = query(c, key, v, sizeof v);
    if (r == 1 && (hk_iso_parse(v, ms) || *ms <= 0)) {
        hk_call_invalid(c, "%s must be an ISO 8601 time (2026-01-31T12:00:00Z)", key);
        return -1;
    }
    return r;
}

/* The cursor "<created_at ms>.<delivery id>" (what `next` gave): 0 ok, -1 (422 sent). */
static int parse_cursor(hk_call *c, const char *v, int64_t *at, char id[HK_ID_MAX])
{
    const char *dot = strchr(v, '.');
    char num[24];
    size_t n = dot ? (size_t)(dot - v) : 0;
    if (!dot || n == 0 || n >= sizeof num || !hk_id_valid(dot + 1, "whde")) goto bad;
    memcpy(num, v, n);
    num[n] = '\0';
    if (hk_parse_int64(num, 1, INT64_MAX, at)) goto bad;
    hk_strlcpy(id, dot + 1, HK_ID_MAX);
    return 0;
bad:
    hk_call_invalid(c, "cursor is not one this API gave (use the `next` of the previous page)");
    return -1;
}

static void on_searched(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "deliveries");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "deliveries");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.dl_search.n; i++) hk_render_delivery(&w, &req->u.dl_search.items[i]);
    hk_jw_arr_close(&w);
    if (req->u.dl_search.more && req->u.dl_search.n) {
        const hk_delivery *last = &req->u.dl_search.items[req->u.dl_search.n - 1];
        char next[HK_ID_MAX + 32];
        snprintf(next, sizeof next, "%lld.%s", (long long)last->created_at, last->id);
        hk_jw_kstr(&w, "next", next);
    } else {
        hk_jw_knull(&w, "next");
    }
    hk_jw_kint(&w, "limit", req->u.dl_search.limit);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_delivery_search(hk_call *c)
{
    search_input *in = hk_calloc(1, sizeof *in);
    c->data = in;
    c->data_free = free;
    hk_req *q = &c->req;
    q->u.dl_search.status = -1;
    q->u.dl_search.limit = 10;
    char v[64];
    int r;
    if ((r = query(c, "limit", v, sizeof v)) < 0) return;
    int64_t n = 10;
    if (r && hk_parse_int64(v, 1, 100, &n)) {
        hk_call_invalid(c, "limit must be an integer between 1 and 100");
        return;
    }
    q->u.dl_search.limit = (int)n;
    if ((r = query(c, "status", in->status, sizeof in->status)) < 0) return;
    if (r && (q->u.dl_search.status = hk_dl_status_parse(in->status)) < 0) {
        hk_call_invalid(c, "status must be pending, success, failed or retrying");
        return;
    }
    if ((r = query(c, "eventType", in->type, sizeof in->type)) < 0) return;
    if (r && !hk_event_type_valid(in->type)) {
        hk_call_invalid(c, "eventType must match [A-Za-z0-9_.-]{1,255}");
        return;
    }
    if (r) q->u.dl_search.event_type = in->type;
    if ((r = id_param(c, "webhookId", "wh", in->webhook, sizeof in->webhook)) < 0) return;
    if (r) q->u.dl_search.webhook_id = in->webhook;
    if ((r = id_param(c, "eventId", "whev", in->event, sizeof in->event)) < 0) return;
    if (r) q->u.dl_search.event_id = in->event;
    if ((r = id_param(c, "deliveryId", "whde", in->delivery, sizeof in->delivery)) < 0) return;
    if (r) q->u.dl_search.delivery_id = in->delivery;
    if ((r = query(c, "idempotencyKey", in->idem, sizeof in->idem)) < 0) return;
    if (r && (!in->idem[0] || strlen(in->idem) > IDEM_MAX)) {
        hk_call_invalid(c, "idempotencyKey must be 1 to 255 bytes");
        return;
    }
    if (r) q->u.dl_search.idem_key = in->idem;
    if (time_param(c, "since", &q->u.dl_search.since) < 0) return;
    if (time_param(c, "until", &q->u.dl_search.until) < 0) return;
    if (q->u.dl_search.since && q->u.dl_search.until &&
        q->u.dl_search.until <= q->u.dl_search.since) {
        hk_call_invalid(c, "until must be later than since");
        return;
    }
    char cur[HK_ID_MAX + 32];
    if ((r = query(c, "cursor", cur, sizeof cur)) < 0) return;
    if (r) {
        if (parse_cursor(c, cur, &q->u.dl_search.before_at, in->cursor_id)) return;
        q->u.dl_search.before_id = in->cursor_id;
    }
    q->kind = HK_REQ_DELIVERY_SEARCH;
    hk_call_submit(c, on_searched);
}
