/*
 * events.c: event ingest over HTTP (single, batch, the seed's /trigger) and event reads.
 *
 * Ingest: every event is validated first (type, data object, idempotency key); one invalid
 * event refuses the whole request with 422 and nothing is stored. What is particular to HTTP
 * stays here: the loop guard, draining, the per-organization rate limit, the delivery caps
 * (HTTP only), and the answer. The valid request goes through the ingest door
 * (src/ingest/ingest.h: one store transaction, the leased deliveries to the dispatcher, the
 * metrics), and the answer (202, or 200 for a pure duplicate) is sent only after the commit.
 *
 * `data` is kept byte for byte (only insignificant whitespace is removed), so numbers of any
 * size and precision reach the receiver exactly as sent.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"
#include "core/time.h"
#include "ingest/ingest.h"
#include "store/match.h"

#define BATCH_MAX    1000
#define IDEM_KEY_MAX 255

typedef struct ingest_data {
    hk_ingest_item *items;
    int n;
    hk_buf *datas; /* compact data per item */
    char **strs;   /* owned strings (types, keys, users) */
    int nstrs;
    int batch;  /* answer with {"results":[...]} */
    int source; /* HK_SRC_* */
} ingest_data;

static void ingest_data_free(void *p)
{
    ingest_data *d = p;
    if (!d) return;
    for (int i = 0; i < d->n; i++) hk_buf_free(&d->datas[i]);
    free(d->datas);
    for (int i = 0; i < d->nstrs; i++) free(d->strs[i]);
    free(d->strs);
    free(d->items);
    free(d);
}

static char *keep(ingest_data *d, char *s)
{
    d->strs = hk_realloc(d->strs, sizeof(char *) * (size_t)(d->nstrs + 1));
    d->strs[d->nstrs++] = s;
    return s;
}

/* Per-organization token bucket for HOOKD_INGEST_RATE_LIMIT (events per second, burst of one
 * second's worth). */
typedef struct bucket {
    char org[160];
    double tokens;
    int64_t at_ms;
} bucket;

static int rate_limited(hk_call *c, int n)
{
    int limit = c->api->cfg->ingest_rate_limit;
    if (limit <= 0) return 0;
    bucket *b = hk_map_get(&c->api->ingest_buckets, c->org);
    int64_t now = hk_mono_ms();
    if (!b) {
        b = hk_calloc(1, sizeof *b);
        hk_strlcpy(b->org, c->org, sizeof b->org);
        b->tokens = limit;
        b->at_ms = now;
        hk_map_put(&c->api->ingest_buckets, b->org, b);
    }
    b->tokens += (double)(now - b->at_ms) * limit / 1000.0;
    if (b->tokens > limit) b->tokens = limit;
    b->at_ms = now;
    if (b->tokens < n) return 1;
    b->tokens -= n;
    return 0;
}

/* Validates one event object at tok (fields: typeKey, dataKey, idempotencyKey, userId) into
 * item i. `where` prefixes error messages ("events[3]." or ""). Returns 0, or -1 after a 422. */
static int parse_event(hk_call *c, ingest_data *d, int i, int tok, const char *type_key,
                       const char *data_key, const char *where)
{
    hk_jdoc *doc = &c->doc;
    hk_ingest_item *it = &d->items[i];
    if (hk_json_type(doc, tok) != HK_J_OBJECT) {
        hk_call_invalid(c, "%s must be an object", where[0] ? where : "the event");
        return -1;
    }
    int t = hk_json_obj_get(doc, tok, type_key);
    char *type = t >= 0 ? hk_json_strdup(doc, t, HK_EVENT_TYPE_MAX, NULL) : NULL;
    if (!type || !hk_event_type_valid(type)) {
        free(type);
        hk_call_invalid(c, "%s%s is required and must match [A-Za-z0-9_.-]{1,255}", where,
                        type_key);
        return -1;
    }
    if (hk_event_type_reserved(type)) {
        free(type);
        hk_call_invalid(c,
                        "%s%s: the prefix \"hookd.\" is reserved for hookd's own operational "
                        "events",
                        where, type_key);
        return -1;
    }
    it->type = keep(d, type);
    int dt = hk_json_obj_get(doc, tok, data_key);
    if (dt < 0 || hk_json_type(doc, dt) != HK_J_OBJECT) {
        hk_call_invalid(c, "%s%s is required and must be a JSON object", where, data_key);
        return -1;
    }
    hk_buf_init(&d->datas[i], HK_BUF_UNLIMITED);
    hk_json_compact(doc, dt, &d->datas[i]);
    it->data = hk_buf_cstr(&d->datas[i]);
    it->data_len = d->datas[i].len;
    int kt = hk_json_obj_get(doc, tok, "idempotencyKey");
    if (kt >= 0 && hk_json_type(doc, kt) != HK_J_NULL) {
        char *k = hk_json_strdup(doc, kt, IDEM_KEY_MAX, NULL);
        int ok = k && *k;
        for (const char *p = k; ok && *p; p++) ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
        if (!ok) {
            free(k);
            hk_call_invalid(c,
                            "%sidempotencyKey must be a string of 1 to %d characters without "
                            "control characters",
                            where, IDEM_KEY_MAX);
            return -1;
        }
        it->idem_key = keep(d, k);
    }
    int ut = hk_json_obj_get(doc, tok, "userId");
    if (ut >= 0 && hk_json_type(doc, ut) != HK_J_NULL) {
        char *u = hk_json_strdup(doc, ut, 255, NULL);
        int ok = u && *u;
        for (const char *p = u; ok && *p; p++) ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
        if (!ok) {
            free(u);
            hk_call_invalid(c, "%suserId must be a string of 1 to 255 characters", where);
            return -1;
        }
        it->user_id = keep(d, u);
    }
    it->source = hk_ingest_source_name(d->source);
    return 0;
}

static void render_item(hk_jw *w, const hk_ingest_item *it)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", it->id);
    hk_jw_kstr(w, "type", it->duplicate && it->dup_type ? it->dup_type : it->type);
    hk_jw_kint(w, "deliveries", it->ndeliveries);
    hk_jw_kbool(w, "duplicate", it->duplicate);
    hk_jw_obj_close(w);
}

static void on_ingested(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    ingest_data *d = c->data;
    if (req->rc == HK_ELIMIT) {
        hk_call_error(c, 429, "limit_exceeded", req->err,
                      "HOOKD_MAX_DELIVERIES_PER_EVENT and HOOKD_MAX_DELIVERIES_PER_BATCH cap the "
                      "deliveries one event and one request may create.",
                      "Send fewer events per request, narrow the webhooks' subscriptions or "
                      "matchConditions, or ask the operator to raise the limit.");
        return;
    }
    if (req->rc) {
        hk_call_store_error(c, "event");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    if (d->batch) {
        hk_jw_obj_open(&w);
        hk_jw_key(&w, "results");
        hk_jw_arr_open(&w);
        for (int i = 0; i < d->n; i++) render_item(&w, &d->items[i]);
        hk_jw_arr_close(&w);
        hk_jw_obj_close(&w);
        hk_call_json(c, 202);
        return;
    }
    render_item(&w, &d->items[0]);
    hk_call_json(c, d->items[0].duplicate ? 200 : 202);
}

static ingest_data *ingest_data_new(hk_call *c, int n, int batch, int source)
{
    ingest_data *d = hk_calloc(1, sizeof *d);
    d->n = n;
    d->items = hk_calloc((size_t)(n ? n : 1), sizeof(hk_ingest_item));
    d->datas = hk_calloc((size_t)(n ? n : 1), sizeof(hk_buf));
    d->batch = batch;
    d->source = source;
    c->data = d;
    c->data_free = ingest_data_free;
    return d;
}

/* Checks what every HTTP ingest must pass before the store is asked; sends the error and
 * returns -1 when the event cannot be taken now. */
static int ingest_admit(hk_call *c, int n)
{
    hk_api *api = c->api;
    if (api->draining) {
        hk_call_error(c, 503, "unavailable", "hookd is shutting down", NULL, NULL);
        return -1;
    }
    if (hk_ingest_admit(api->ingest)) {
        hk_call_error(c, 503, "unavailable", "the store is unavailable or overloaded", NULL, NULL);
        return -1;
    }
    if (rate_limited(c, n)) {
        hk_m_inc(api->metrics, HK_C_INGEST_REJECTED, 1);
        hk_call_error(c, 429, "rate_limited", "ingest rate limit exceeded for your organization",
                      "HOOKD_INGEST_RATE_LIMIT caps events per second per organization.",
                      "Retry after a second, or send fewer events at once.");
        return -1;
    }
    return 0;
}

/* Refuses (422, returns -1) a request that is itself a hookd delivery: every delivery carries
 * `X-Delivery-Id: whde_...` (a name customHeaders may not set), so a webhook whose URL points
 * at an ingest route of this hookd (or of another node or installation), with an API key in its
 * custom headers, cannot turn each delivery into a new event that is delivered again: a loop
 * that would grow without end. Checked on the request, not on the webhook's URL, because no
 * URL check sees every way back to hookd (DNS names, proxies, other nodes, NAT). */
static int delivery_loop(hk_call *c)
{
    const char *h = hk_http_header_get(c->http, "x-delivery-id");
    if (!h) return 0;
    while (*h == ' ' || *h == '\t') h++;
    if (strncmp(h, "whde_", 5) != 0) return 0;
    hk_m_inc(c->api->metrics, HK_C_INGEST_REJECTED, 1);
    hk_call_error(c, 422, "delivery_loop",
                  "this request is a hookd delivery (it carries X-Delivery-Id: whde_...); hookd "
                  "does not ingest its own deliveries",
                  "A webhook's URL points at a hookd ingest route: each delivery would become a "
                  "new event delivered again, without end.",
                  "Point the webhook at its real receiver; to chain two hookd installations, "
                  "put a relay in between that sends a new request.");
    return -1;
}

/* Admits the request and hands it to the ingest door; on_ingested answers. */
static void submit_ingest(hk_call *c, ingest_data *d)
{
    if (ingest_admit(c, d->n)) return;
    hk_ingest_opts o = {
        .org = c->org,
        .max_per_event = c->api->cfg->max_deliveries_per_event,
        .max_total = c->api->cfg->max_deliveries_per_batch,
        .start_us = c->http->start_us,
    };
    hk_ingest_submit(c->api->ingest, &c->req, d->items, d->n, &o, on_ingested);
}

/* The Idempotency-Key header, checked against the body's key. 0 ok, -1 after a 422. */
static int header_key(hk_call *c, ingest_data *d)
{
    const char *h = hk_http_header_get(c->http, "idempotency-key");
    if (!h) return 0;
    hk_ingest_item *it = &d->items[0];
    if (!*h || strlen(h) > IDEM_KEY_MAX) {
        hk_call_invalid(c, "the Idempotency-Key header must have 1 to %d characters", IDEM_KEY_MAX);
        return -1;
    }
    if (it->idem_key && strcmp(it->idem_key, h) != 0) {
        hk_call_invalid(c, "idempotencyKey and the Idempotency-Key header differ");
        return -1;
    }
    it->idem_key = keep(d, hk_strdup(h));
    return 0;
}

void hk_h_event_ingest(hk_call *c)
{
    if (delivery_loop(c)) return;
    if (hk_call_parse_body(c, 0)) return;
    ingest_data *d = ingest_data_new(c, 1, 0, HK_SRC_API);
    if (parse_event(c, d, 0, 0, "type", "data", "")) return;
    if (header_key(c, d)) return;
    submit_ingest(c, d);
}

void hk_h_trigger(hk_call *c)
{
    if (delivery_loop(c)) return;
    if (hk_call_parse_body(c, 0)) return;
    ingest_data *d = ingest_data_new(c, 1, 0, HK_SRC_MANUAL);
    if (parse_event(c, d, 0, 0, "event", "payload", "")) return;
    if (header_key(c, d)) return;
    submit_ingest(c, d);
}

void hk_h_event_batch(hk_call *c)
{
    if (delivery_loop(c)) return;
    if (hk_call_parse_body(c, 0)) return;
    int arr = hk_json_obj_get(&c->doc, 0, "events");
    if (arr < 0 || hk_json_type(&c->doc, arr) != HK_J_ARRAY) {
        hk_call_invalid(c, "events is required: an array of 1 to %d events", BATCH_MAX);
        return;
    }
    int n = (int)c->doc.toks[arr].size;
    if (n < 1 || n > BATCH_MAX) {
        hk_call_invalid(c, "events must hold 1 to %d events, not %d", BATCH_MAX, n);
        return;
    }
    ingest_data *d = ingest_data_new(c, n, 1, HK_SRC_API);
    int i = 0;
    for (int e = hk_json_first(&c->doc, arr); i < n; e = hk_json_next(&c->doc, e), i++) {
        char where[32];
        snprintf(where, sizeof where, "events[%d].", i);
        if (parse_event(c, d, i, e, "type", "data", where)) return;
    }
    submit_ingest(c, d);
}

/* ---- reads ------------------------------------------------------------------------------------
 */

static void on_event_list(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "events");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "events");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.ev_list.n; i++) hk_render_event(&w, &req->u.ev_list.items[i], 0);
    hk_jw_arr_close(&w);
    const hk_event *last = req->u.ev_list.n ? &req->u.ev_list.items[req->u.ev_list.n - 1] : NULL;
    hk_render_paging(&w, req->u.ev_list.total, req->u.ev_list.capped, req->u.ev_list.page,
                     req->u.ev_list.limit, req->u.ev_list.more, last ? last->created_at : 0,
                     last ? last->id : NULL);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_event_list(hk_call *c)
{
    int page, limit;
    hk_cursor after;
    if (hk_call_paging(c, "whev", &page, &limit, &after)) return;
    char *type = hk_malloc(HK_EVENT_TYPE_MAX + 1);
    c->data = type;
    c->data_free = free;
    int r = hk_call_query(c, "type", type, HK_EVENT_TYPE_MAX + 1);
    if (r < 0) return;
    if (r == 0 && !hk_event_type_valid(type)) {
        hk_call_invalid(c, "type must match [A-Za-z0-9_.-]{1,255}");
        return;
    }
    c->req.kind = HK_REQ_EVENT_LIST;
    c->req.u.ev_list.type = r == 0 ? type : NULL;
    c->req.u.ev_list.page = page;
    c->req.u.ev_list.limit = limit;
    c->req.u.ev_list.after = after;
    hk_call_submit(c, on_event_list);
}

static void on_event_get(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "event");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_event(&w, &req->u.ev_get.out, 1);
    hk_call_json(c, 200);
}

void hk_h_event_get(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "whev")) {
        hk_call_error(c, 404, "not_found", "event not found", NULL, NULL);
        return;
    }
    c->req.kind = HK_REQ_EVENT_GET;
    c->req.u.ev_get.id = c->params[0];
    hk_call_submit(c, on_event_get);
}
