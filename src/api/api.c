/*
 * api.c: the front of the API: the route table, authentication (API key -> organization,
 * cached), the lifetime of a call, error responses and the small input helpers every handler
 * uses (see api.h).
 */
#include "api/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/time.h"

#define AUTH_TTL_MS    HK_AUTH_TTL_MS /* a revoked key stops working within this */
#define AUTH_CACHE_MAX 10000
#define API_PREFIX     "/api/webhook"

static const hk_route routes[] = {
    /* literal paths before parameterised ones that could take them: the first match wins, and
     * a path spelled by a route without ids is that route's whatever the method (handle():
     * "/v1/events" is never the webhook id "events" of "/v1/:id", so DELETE on it is 405 with
     * the literal route's methods, not 404 "webhook not found") */
    {HK_HTTP_GET, API_PREFIX "/health", hk_h_health, 0},
    {HK_HTTP_GET, API_PREFIX "/health/live", hk_h_health_live, 0},
    {HK_HTTP_GET, API_PREFIX "/health/ready", hk_h_health_ready, 0},
    {HK_HTTP_GET, API_PREFIX "/openapi", hk_h_openapi_page, 0},
    {HK_HTTP_GET, API_PREFIX "/openapi/json", hk_h_openapi_json, 0},
    {HK_HTTP_GET, API_PREFIX "/openapi/:id", hk_h_openapi_asset, 0}, /* Swagger UI files */
    {HK_HTTP_GET, API_PREFIX "/ui", hk_h_ui_index, 0},               /* the dashboard (ui.c) */
    {HK_HTTP_GET, API_PREFIX "/ui/:id", hk_h_ui_file, 0},
    {HK_HTTP_GET, API_PREFIX "/ui/vendor/:id", hk_h_ui_vendor, 0},
    {HK_HTTP_GET, "/metrics", hk_h_metrics, 2},
    {HK_HTTP_POST, API_PREFIX "/v1", hk_h_webhook_create, 1},
    {HK_HTTP_GET, API_PREFIX "/v1", hk_h_webhook_list, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/events", hk_h_event_ingest, 1},
    {HK_HTTP_GET, API_PREFIX "/v1/events", hk_h_event_list, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/events/batch", hk_h_event_batch, 1},
    {HK_HTTP_GET, API_PREFIX "/v1/events/:id", hk_h_event_get, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/trigger", hk_h_trigger, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/sign-test-event", hk_h_sign_test_event, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/deliveries/:id/retry", hk_h_delivery_retry, 1},
    {HK_HTTP_POST, API_PREFIX "/deliveries/:id/retry", hk_h_delivery_retry, 1},
    {HK_HTTP_GET, API_PREFIX "/v1/deliveries/:id", hk_h_delivery_get, 1},
    {HK_HTTP_GET, API_PREFIX "/v1/deliveries", hk_h_delivery_search, HK_AUTH_ORG},
    {HK_HTTP_GET, API_PREFIX "/v1/stats", hk_h_org_stats, HK_AUTH_ORG},
    /* tenancy: before /v1/:id/..., which would take "organizations" for a webhook id */
    {HK_HTTP_POST, API_PREFIX "/v1/organizations", hk_h_org_create, HK_AUTH_ADMIN},
    {HK_HTTP_GET, API_PREFIX "/v1/organizations", hk_h_org_list, HK_AUTH_ADMIN},
    {HK_HTTP_GET, API_PREFIX "/v1/organizations/:id", hk_h_org_get, HK_AUTH_ADMIN},
    {HK_HTTP_PATCH, API_PREFIX "/v1/organizations/:id", hk_h_org_patch, HK_AUTH_ADMIN},
    {HK_HTTP_GET, API_PREFIX "/v1/organizations/:id/api-keys", hk_h_org_keys_list, HK_AUTH_ADMIN},
    {HK_HTTP_POST, API_PREFIX "/v1/organizations/:id/api-keys", hk_h_org_keys_create,
     HK_AUTH_ADMIN},
    {HK_HTTP_DELETE, API_PREFIX "/v1/organizations/:id/api-keys/:id", hk_h_org_keys_revoke,
     HK_AUTH_ADMIN},
    {HK_HTTP_GET, API_PREFIX "/v1/api-keys", hk_h_keys_list, HK_AUTH_ORG_FULL},
    {HK_HTTP_POST, API_PREFIX "/v1/api-keys", hk_h_keys_create, HK_AUTH_ORG_FULL},
    {HK_HTTP_DELETE, API_PREFIX "/v1/api-keys/:id", hk_h_keys_revoke, HK_AUTH_ORG_FULL},
    {HK_HTTP_POST, API_PREFIX "/v1/portal-sessions", hk_h_session_create, HK_AUTH_MINT},
    {HK_HTTP_DELETE, API_PREFIX "/v1/portal-sessions/:id", hk_h_session_revoke, HK_AUTH_ORG_FULL},
    {HK_HTTP_GET, API_PREFIX "/v1/whoami", hk_h_whoami, HK_AUTH_ORG},
    {HK_HTTP_GET, API_PREFIX "/v1/:id", hk_h_webhook_get, 1},
    {HK_HTTP_PATCH, API_PREFIX "/v1/:id", hk_h_webhook_patch, 1},
    {HK_HTTP_DELETE, API_PREFIX "/v1/:id", hk_h_webhook_delete, 1},
    {HK_HTTP_GET, API_PREFIX "/v1/:id/deliveries", hk_h_delivery_list, 1},
    {HK_HTTP_GET, API_PREFIX "/v1/:id/stats", hk_h_webhook_stats, HK_AUTH_ORG},
    {HK_HTTP_POST, API_PREFIX "/v1/:id/rotate-secret", hk_h_webhook_rotate, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/:id/rotate-signing-key", hk_h_webhook_rotate_key, 1},
    {HK_HTTP_POST, API_PREFIX "/v1/:id/recover", hk_h_webhook_recover, 1},
};

typedef struct auth_entry {
    char hash[65];
    char org[160];           /* "" for an admin key */
    int scope;               /* enum hk_scope */
    int disabled;            /* its organization is disabled: 401 */
    int session;             /* a portal session, not a key */
    int64_t session_expires; /* wall ms: the session's end (it is never used after) */
    char *webhook_ids;       /* a session limited to these webhooks (owned), or NULL */
    int64_t expires_mono;
} auth_entry;

/* ---- errors ---------------------------------------------------------------------------------- */

static const char *default_why(int status)
{
    switch (status) {
    case 400:
        return "The request body is not valid JSON.";
    case 401:
        return "The request has no valid API key.";
    case 403:
        return "This credential may not use this route.";
    case 404:
        return "Nothing with this id exists in your organization.";
    case 405:
        return "This path does not accept this method.";
    case 409:
        return "The request conflicts with the current state.";
    case 413:
        return "The request body is larger than the server accepts.";
    case 415:
        return "The request body must be JSON.";
    case 422:
        return "A field failed validation.";
    case 429:
        return "Too many events for your organization right now.";
    case 503:
        return "A dependency of hookd is unavailable; nothing was stored.";
    default:
        return "The request could not be completed.";
    }
}

static const char *default_fix(int status)
{
    switch (status) {
    case 400:
        return "Send a well-formed JSON document.";
    case 401:
        return "Send your key as 'x-api-key: <key>' or 'Authorization: Bearer <key>'.";
    case 403:
        return "Use a key with the scope or role this route needs (see the API's docs).";
    case 404:
        return "Check the id and that it belongs to your organization.";
    case 405:
        return "See /api/webhook/openapi for the methods of each path.";
    case 409:
        return "Change the resource's state first, then retry.";
    case 413:
        return "Send a smaller body (HOOKD_MAX_BODY_BYTES on the server).";
    case 415:
        return "Send 'Content-Type: application/json'.";
    case 422:
        return "Correct the field named in the message and retry.";
    case 429:
        return "Retry after a short wait.";
    case 503:
        return "Retry later; the request may be repeated safely.";
    default:
        return "Retry; if it persists, look at hookd's logs.";
    }
}

static void error_json(hk_buf *out, int status, const char *code, const char *message,
                       const char *why, const char *fix)
{
    hk_jw w;
    hk_jw_init(&w, out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "code", code);
    hk_jw_kstr(&w, "message", message);
    hk_jw_kstr(&w, "why", why ? why : default_why(status));
    hk_jw_kstr(&w, "fix", fix ? fix : default_fix(status));
    hk_jw_obj_close(&w);
}

void hk_api_error_body(hk_buf *out, int status, const char *code, const char *message)
{
    /* the server's own 400s are about the HTTP framing (request line, headers, lengths,
     * chunks), never about JSON: the route's default why/fix would mislead */
    if (status == 400)
        error_json(out, status, code, message, "The request is not well-formed HTTP/1.1.",
                   "Send CRLF line ends, valid header fields, and one Content-Length or a "
                   "chunked body (not both).");
    else
        error_json(out, status, code, message, NULL, NULL);
}

/* ---- call lifetime ----------------------------------------------------------------------------
 */

static void auth_entry_free(void *p)
{
    auth_entry *e = p;
    if (!e) return;
    free(e->webhook_ids);
    free(e);
}

static void call_free(hk_call *c)
{
    /* The request may point into the handler's data (ingest items): clear it first. */
    hk_req_clear(&c->req);
    if (c->data_free) c->data_free(c->data);
    hk_json_free(&c->doc);
    hk_buf_free(&c->out);
    free(c->webhook_ids);
    free(c);
}

void hk_call_raw(hk_call *c, int status, const char *ctype, const char *extra_headers,
                 const void *body, size_t len)
{
    hk_http_respond(c->http, status, ctype, extra_headers, body, len);
    call_free(c);
}

void hk_call_raw_static(hk_call *c, int status, const char *ctype, const char *extra_headers,
                        const void *body, size_t len)
{
    hk_http_respond_static(c->http, status, ctype, extra_headers, body, len);
    call_free(c);
}

#define TAKE_MIN (64 * 1024) /* responses this large are handed over, not copied */

void hk_call_json(hk_call *c, int status)
{
    if (c->out.len >= TAKE_MIN) {
        size_t len = c->out.len;
        hk_http_respond_take(c->http, status, "application/json", NULL, hk_buf_steal(&c->out), len);
        call_free(c);
        return;
    }
    hk_call_raw(c, status, "application/json", NULL, c->out.data ? c->out.data : "", c->out.len);
}

void hk_call_error(hk_call *c, int status, const char *code, const char *message, const char *why,
                   const char *fix)
{
    hk_buf_reset(&c->out);
    error_json(&c->out, status, code, message, why, fix);
    if (status >= 500 && status != 503)
        HK_LOG(HK_LOG_ERROR, "api.error", HK_LI("status", status), HK_LS("msg", message),
               HK_LS("path", c->http->path));
    if (status == 401)
        hk_call_raw(c, status, "application/json", "WWW-Authenticate: Bearer\r\n", c->out.data,
                    c->out.len);
    else
        hk_call_json(c, status);
}

void hk_call_invalid(hk_call *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hk_call_error(c, 422, "validation_failed", msg, NULL, NULL);
}

void hk_call_store_error(hk_call *c, const char *what)
{
    char msg[320];
    switch (c->req.rc) {
    case HK_ENOTFOUND:
        snprintf(msg, sizeof msg, "%s not found", what);
        hk_call_error(c, 404, "not_found", msg, NULL, NULL);
        return;
    case HK_ECONFLICT:
        hk_call_error(c, 409, "conflict", c->req.err[0] ? c->req.err : "conflict", NULL, NULL);
        return;
    case HK_EINVAL:
        hk_call_invalid(c, "%s", c->req.err[0] ? c->req.err : "invalid input");
        return;
    case HK_EUNAVAIL:
    case HK_ESHUTDOWN:
        hk_call_error(c, 503, "unavailable",
                      c->req.rc == HK_ESHUTDOWN ? "hookd is shutting down"
                                                : "the store is unavailable",
                      NULL, NULL);
        return;
    default:
        hk_call_error(c, 500, "internal", c->req.err[0] ? c->req.err : "internal error", NULL,
                      NULL);
    }
}

void hk_call_submit(hk_call *c, void (*done)(hk_req *req))
{
    c->req.org_id = c->org;
    c->req.node_id = c->api->cfg->node_id;
    c->req.done = done;
    hk_store_submit(c->api->store, &c->req);
}

/* ---- input helpers ----------------------------------------------------------------------------
 */

static int is_json_ctype(const char *ct)
{
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0) return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int hk_call_parse_body(hk_call *c, int allow_empty)
{
    const hk_http_req *r = c->http;
    if (r->body_len == 0) {
        if (allow_empty) {
            hk_json_parse(&c->doc, "{}", 2, 4, 2);
            return 0;
        }
        hk_call_error(c, 400, "invalid_json", "the request body is empty", NULL, NULL);
        return -1;
    }
    if (!is_json_ctype(hk_http_header_get(r, "content-type"))) {
        hk_call_error(c, 415, "unsupported_media_type", "Content-Type must be application/json",
                      NULL, NULL);
        return -1;
    }
    uint32_t max_tokens = (uint32_t)(r->body_len / 2 + 16);
    int rc = hk_json_parse(&c->doc, r->body, r->body_len, max_tokens, HK_JSON_MAX_DEPTH_DEFAULT);
    if (rc) {
        char msg[200];
        snprintf(msg, sizeof msg, "malformed JSON: %s", c->doc.err);
        hk_call_error(c, 400, "invalid_json", msg, NULL, NULL);
        return -1;
    }
    if (hk_json_type(&c->doc, 0) != HK_J_OBJECT) {
        hk_call_invalid(c, "the request body must be a JSON object");
        return -1;
    }
    if (hk_json_obj_dup_key(&c->doc, 0)) {
        hk_call_error(c, 400, "invalid_json", "the request body has a duplicate key", NULL, NULL);
        return -1;
    }
    return 0;
}

int hk_call_query(hk_call *c, const char *key, char *out, size_t outlen)
{
    int rc = hk_http_query_get(c->http->query, key, out, outlen);
    if (rc == HK_ENOTFOUND) return 1;
    if (rc) {
        hk_call_invalid(c, "query parameter %s is invalid", key);
        return -1;
    }
    return 0;
}

/* ---- list paging ----------------------------------------------------------------------------
 *
 * A cursor is base64url (no padding) of "<created_at ms>.<id>" and the first CURSOR_CHECK bytes
 * of its SHA-256: the sort key of the last row of a page (store.h, lists). Clients treat it as
 * opaque. The check makes a cursor cut short, edited or made up a 422 rather than some other
 * position; it is no secret and guards nothing (the organization scope is the key's): a cursor
 * built with the check can only name a position of the caller's own list. */

#define CURSOR_RAW_MAX 160 /* 15 digits + '.' + an id (an organization's: 128) + the check */
#define CURSOR_CHECK   4

void hk_cursor_encode(int64_t at, const char *id, char out[HK_CURSOR_MAX])
{
    char raw[CURSOR_RAW_MAX];
    int n = snprintf(raw, sizeof raw, "%lld.%s", (long long)at, id);
    if (n < 0 || (size_t)n + CURSOR_CHECK >= sizeof raw) n = 0;
    uint8_t sum[32];
    hk_sha256(raw, (size_t)n, sum);
    memcpy(raw + n, sum, CURSOR_CHECK);
    n += CURSOR_CHECK;
    hk_buf b;
    hk_buf_init(&b, HK_CURSOR_MAX);
    size_t o = 0;
    if (!hk_base64_encode(raw, (size_t)n, &b)) {
        const char *e = hk_buf_cstr(&b);
        for (size_t i = 0; e[i] && e[i] != '=' && o + 1 < HK_CURSOR_MAX; i++)
            out[o++] = e[i] == '+' ? '-' : e[i] == '/' ? '_' : e[i];
    }
    out[o] = 0;
    hk_buf_free(&b);
}

int hk_cursor_decode(const char *s, const char *prefix, hk_cursor *out)
{
    size_t n = strlen(s);
    if (n == 0 || n >= HK_CURSOR_MAX || n % 4 == 1) return -1;
    char std[HK_CURSOR_MAX + 4];
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '-')
            ch = '+';
        else if (ch == '_')
            ch = '/';
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9')))
            return -1;
        std[i] = ch;
    }
    size_t m = n;
    while (m % 4) std[m++] = '=';
    uint8_t raw[CURSOR_RAW_MAX];
    size_t rawlen = 0;
    if (hk_base64_decode(std, m, raw, sizeof raw - 1, &rawlen)) return -1;
    if (rawlen <= CURSOR_CHECK) return -1;
    rawlen -= CURSOR_CHECK;
    uint8_t sum[32];
    hk_sha256(raw, rawlen, sum);
    if (memcmp(sum, raw + rawlen, CURSOR_CHECK)) return -1;
    raw[rawlen] = 0;
    if (memchr(raw, 0, rawlen)) return -1;
    char *dot = strchr((char *)raw, '.');
    if (!dot) return -1;
    *dot = 0;
    int64_t at;
    if (hk_parse_int64((char *)raw, 0, HK_CURSOR_TOP - 1, &at)) return -1;
    if (strlen(dot + 1) >= sizeof out->id) return -1;
    if (prefix ? !hk_id_valid(dot + 1, prefix) : !hk_org_id_valid(dot + 1)) return -1;
    out->at = at;
    hk_strlcpy(out->id, dot + 1, sizeof out->id);
    return 0;
}

int hk_call_scope_field(hk_call *c, int *scope)
{
    *scope = HK_SCOPE_FULL;
    int t = hk_json_obj_get(&c->doc, 0, "scope");
    if (t < 0) return 0;
    for (int s = HK_SCOPE_FULL; s <= HK_SCOPE_READ; s++)
        if (hk_json_str_eq(&c->doc, t, hk_scope_name(s))) {
            *scope = s;
            return 0;
        }
    hk_call_invalid(c, "scope must be full or read");
    return -1;
}

int hk_call_paging(hk_call *c, const char *prefix, int *page, int *limit, hk_cursor *after)
{
    char v[HK_CURSOR_MAX];
    int64_t n;
    *page = 1;
    *limit = 10;
    after->at = HK_CURSOR_TOP;
    after->id[0] = 0;
    int rc = hk_call_query(c, "limit", v, sizeof v);
    if (rc < 0) return -1;
    if (rc == 0) {
        if (hk_parse_int64(v, 1, 100, &n)) {
            hk_call_invalid(c, "limit must be an integer between 1 and 100");
            return -1;
        }
        *limit = (int)n;
    }
    int has_page = 0;
    rc = hk_call_query(c, "page", v, sizeof v);
    if (rc < 0) return -1;
    if (rc == 0) {
        if (hk_parse_int64(v, 1, 1000000000, &n)) {
            hk_call_invalid(c, "page must be an integer >= 1");
            return -1;
        }
        *page = (int)n;
        has_page = n > 1;
    }
    rc = hk_http_query_get(c->http->query, "cursor", v, sizeof v);
    if (rc != HK_ENOTFOUND) {
        if (rc || hk_cursor_decode(v, prefix, after)) {
            hk_call_error(c, 422, "validation_failed", "cursor is not a cursor of this list",
                          "A cursor is the `next` value of an earlier answer of the same list, "
                          "passed back unchanged.",
                          "Start again without cursor and follow `next`.");
            return -1;
        }
        if (has_page) {
            hk_call_invalid(c, "cursor and page cannot be combined: a cursor page starts "
                               "after the cursor's row, not at an offset");
            return -1;
        }
        return 0;
    }
    if ((int64_t)(*page - 1) * *limit >= HK_LIST_OFFSET_MAX) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "page is too deep: offset paging reaches the first %d rows of a list",
                 HK_LIST_OFFSET_MAX);
        hk_call_error(c, 422, "validation_failed", msg,
                      "Reading far into a list by offset costs the store a scan of every row "
                      "before the page.",
                      "Follow `next`: pass it back as cursor to get the page after.");
        return -1;
    }
    return 0;
}

/* ---- routing ----------------------------------------------------------------------------------
 */

/* Matches path against pattern; ":id" segments capture into params. 1 on match. */
static int route_match(const char *pattern, const char *path, size_t plen,
                       char params[HK_MAX_PARAMS][HK_PARAM_MAX])
{
    const char *p = pattern, *s = path, *end = path + plen;
    int np = 0;
    while (*p && s < end) {
        if (*p == ':') {
            while (*p && *p != '/') p++;
            const char *seg = s;
            while (s < end && *s != '/') s++;
            size_t n = (size_t)(s - seg);
            if (n == 0 || n >= HK_PARAM_MAX || np >= HK_MAX_PARAMS) return 0;
            memcpy(params[np], seg, n);
            params[np][n] = '\0';
            np++;
            continue;
        }
        if (*p != *s) return 0;
        p++;
        s++;
    }
    return *p == '\0' && s == end;
}

/* ---- authentication ----------------------------------------------------------------------------
 */

static const char *presented_key(const hk_http_req *r)
{
    const char *k = hk_http_header_get(r, "x-api-key");
    if (k && *k) return k;
    const char *a = hk_http_header_get(r, "authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ') a++;
        return a;
    }
    return NULL;
}

/* The caller is authenticated (or the route needs no key). At head time (c->gate): the body
 * is worth reading, the call ends here and the handler gets a fresh one with the whole
 * request; else the route's handler runs. */
static void run_handler(hk_call *c)
{
    if (c->gate) {
        hk_http_proceed(c->http);
        call_free(c);
        return;
    }
    c->route->handler(c);
}

static void on_org_lookup(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc && req->rc != HK_ENOTFOUND) {
        hk_call_store_error(c, "organization");
        return;
    }
    char msg[300];
    if (req->rc == HK_ENOTFOUND) {
        snprintf(msg, sizeof msg, "organization %s (X-Organization-Id) not found", c->org);
        hk_call_error(c, 404, "not_found", msg, "No organization has the id in X-Organization-Id.",
                      "Send the id of an existing organization (GET /v1/organizations).");
        return;
    }
    if (req->u.org.out.disabled) {
        snprintf(msg, sizeof msg, "organization %s (X-Organization-Id) is disabled", c->org);
        hk_call_error(c, 403, "forbidden", msg,
                      "A disabled organization's routes answer no one, its deliveries are held.",
                      "Enable it first: PATCH /v1/organizations/{id} {\"disabled\": false}.");
        return;
    }
    hk_req_clear(&c->req);
    memset(&c->req, 0, sizeof c->req);
    run_handler(c);
}

int hk_call_webhook_allowed(const hk_call *c, const char *wid)
{
    if (!c->webhook_ids) return 1;
    size_t n = strlen(wid);
    for (const char *p = c->webhook_ids; (p = strstr(p, wid)); p += n)
        if ((p == c->webhook_ids || p[-1] == ' ') && p[n] == ' ') return 1;
    return 0;
}

/* A portal session limited to some webhooks (webhookIds): the routes of one webhook only for
 * those, the webhook list and a delivery's read through sessions.c (filtered), and no route of
 * the organization's other data (403). */
static void limited_session(hk_call *c, const auth_entry *e)
{
    hk_handler h = c->route->handler;
    c->webhook_ids = hk_strdup(e->webhook_ids);
    if (h == hk_h_webhook_get || h == hk_h_webhook_patch || h == hk_h_webhook_delete ||
        h == hk_h_delivery_list || h == hk_h_webhook_rotate || h == hk_h_webhook_rotate_key ||
        h == hk_h_webhook_recover || h == hk_h_webhook_stats) {
        if (!hk_call_webhook_allowed(c, c->params[0])) {
            hk_call_error(c, 404, "not_found", "webhook not found", NULL, NULL);
            return;
        }
        run_handler(c);
        return;
    }
    if (h == hk_h_org_stats || h == hk_h_whoami) { /* stats.c filters to its webhooks */
        run_handler(c);
        return;
    }
    if (h == hk_h_webhook_list || h == hk_h_delivery_get) {
        if (c->gate) {
            run_handler(c);
            return;
        }
        if (h == hk_h_webhook_list)
            hk_h_session_webhook_list(c);
        else
            hk_h_session_delivery_get(c);
        return;
    }
    hk_call_error(c, 403, "forbidden", "this portal session is limited to some webhooks",
                  "A session made with webhookIds sees those webhooks and their deliveries only.",
                  "Use a session without webhookIds, or a key, for this route.");
}

/* The key is known and valid (e): 401 if its organization is disabled, then the route's rule
 * (hk_authz_decide); an admin key acting on an organization has it looked up first. */
static void authorize(hk_call *c, const auth_entry *e)
{
    if (e->session && e->session_expires <= hk_now_ms()) {
        hk_call_error(c, 401, "unauthorized", "the portal session has expired",
                      "A portal session works until its expiresAt.",
                      "Ask for a new portal session (POST /v1/portal-sessions).");
        return;
    }
    if (e->disabled) {
        hk_call_error(c, 401, "unauthorized", "the key's organization is disabled",
                      "The organization of this key was disabled by an administrator.",
                      "Ask the operator of this hookd to enable the organization.");
        return;
    }
    c->admin = !e->session && e->org[0] == '\0';
    c->scope = e->scope;
    c->session = e->session;
    const char *hdr = hk_http_header_get(c->http, "x-organization-id");
    int has_hdr = hdr && *hdr;
    char msg[300];
    switch (hk_authz_decide(c->route->auth, c->route->method == HK_HTTP_GET, c->admin, c->session,
                            c->scope, has_hdr)) {
    case HK_AUTHZ_OK:
        hk_strlcpy(c->org, e->org, sizeof c->org);
        if (e->webhook_ids) {
            limited_session(c, e);
            return;
        }
        run_handler(c);
        return;
    case HK_AUTHZ_SCOPE:
        snprintf(msg, sizeof msg, "a read-scoped credential may not use %s %s", c->http->method_str,
                 c->route->pattern);
        hk_call_error(
            c, 403, "forbidden", msg,
            "A credential with scope 'read' may only read (GET); managing keys needs 'full'.",
            "Use a key with scope 'full' for this route.");
        return;
    case HK_AUTHZ_SESSION:
        hk_call_error(c, 403, "forbidden", "a portal session may not manage keys or sessions",
                      "Portal sessions are for an organization's customers: its webhooks, "
                      "events and deliveries, within the session's scope.",
                      "Use an organization's full key or an admin key for this route.");
        return;
    case HK_AUTHZ_ADMIN_ONLY:
        hk_call_error(c, 403, "forbidden", "this route needs an admin key",
                      "Organizations and their keys are managed with an admin key, which belongs "
                      "to no organization.",
                      "Use an admin key (hookd apikey create --admin, HOOKD_BOOTSTRAP_ADMIN_KEY).");
        return;
    case HK_AUTHZ_NEED_ORG:
        hk_call_error(c, 422, "validation_failed",
                      "X-Organization-Id is required: an admin key acts on one organization",
                      "An admin key belongs to no organization; this route works on one.",
                      "Send the header X-Organization-Id: <organization id>.");
        return;
    case HK_AUTHZ_ACT_AS:
        if (!hk_org_id_valid(hdr)) {
            hk_call_invalid(c, "X-Organization-Id must match [A-Za-z0-9_.:-]{1,128}");
            return;
        }
        hk_strlcpy(c->org, hdr, sizeof c->org);
        c->req.kind = HK_REQ_ORG_GET;
        c->req.u.org.id = c->org;
        hk_call_submit(c, on_org_lookup);
        return;
    }
}

static void on_key_lookup(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "API key");
        return;
    }
    if (!req->u.key_lookup.found) {
        hk_call_error(c, 401, "unauthorized", "invalid API key", NULL, NULL);
        return;
    }
    hk_api *api = c->api;
    if (api->keys.n >= AUTH_CACHE_MAX) {
        size_t it = 0;
        void *v;
        while ((v = hk_map_next(&api->keys, &it))) auth_entry_free(v);
        hk_map_free(&api->keys);
        hk_map_init(&api->keys);
    }
    auth_entry *e = hk_calloc(1, sizeof *e);
    hk_strlcpy(e->hash, req->u.key_lookup.key_hash, sizeof e->hash);
    hk_strlcpy(e->org, req->u.key_lookup.org, sizeof e->org);
    e->scope = req->u.key_lookup.scope;
    e->disabled = req->u.key_lookup.org_disabled;
    e->session = req->u.key_lookup.session;
    e->session_expires = req->u.key_lookup.expires_at;
    e->webhook_ids = req->u.key_lookup.webhook_ids; /* taken */
    req->u.key_lookup.webhook_ids = NULL;
    e->expires_mono = hk_mono_ms() + AUTH_TTL_MS;
    auth_entry_free(hk_map_put(&api->keys, e->hash, e));
    hk_req_clear(&c->req);
    memset(&c->req, 0, sizeof c->req);
    authorize(c, e);
}

static void authenticate(hk_call *c)
{
    const char *key = presented_key(c->http);
    if (!key) {
        hk_call_error(c, 401, "unauthorized", "missing API key", NULL, NULL);
        return;
    }
    if (!hk_apikey_valid(key)) {
        hk_call_error(c, 401, "unauthorized", "invalid API key", NULL, NULL);
        return;
    }
    hk_sha256_hex(key, strlen(key), c->key_hash);
    auth_entry *e = hk_map_get(&c->api->keys, c->key_hash);
    if (e && e->expires_mono > hk_mono_ms()) {
        authorize(c, e);
        return;
    }
    c->req.kind = HK_REQ_APIKEY_LOOKUP;
    c->req.u.key_lookup.key_hash = c->key_hash;
    hk_call_submit(c, on_key_lookup);
}

static void authenticate_metrics(hk_call *c)
{
    const char *want = c->api->cfg->metrics_key;
    if (!want || !*want) {
        run_handler(c);
        return;
    }
    const char *key = presented_key(c->http);
    uint8_t a[32], b[32];
    hk_sha256(want, strlen(want), a);
    hk_sha256(key ? key : "", key ? strlen(key) : 0, b);
    if (!key || !hk_ct_equal(a, b, 32)) {
        hk_call_error(c, 401, "unauthorized", "invalid metrics key",
                      "HOOKD_METRICS_KEY is set on this server.",
                      "Send the metrics key as 'Authorization: Bearer <key>'.");
        return;
    }
    run_handler(c);
}

/* Routes and authenticates a request; the verdict is run_handler or an error response.
 * gate: called from the server's on_head (the body is not read yet). */
static void handle(hk_http_req *r, hk_api *api, int gate)
{
    hk_call *c = hk_calloc(1, sizeof *c);
    c->api = api;
    c->http = r;
    c->gate = gate;
    hk_buf_init(&c->out, HK_BUF_UNLIMITED);

    size_t plen = strlen(r->path);
    if (plen > 1 && r->path[plen - 1] == '/') plen--; /* one trailing slash is tolerated */
    int method = r->method == HK_HTTP_HEAD ? HK_HTTP_GET : r->method;
    char allow[128] = "";
    int literal = 0; /* a route without ids spelled the path: it is that route's (table rule) */
    for (size_t i = 0; i < HK_ARRAY_LEN(routes); i++) {
        char params[HK_MAX_PARAMS][HK_PARAM_MAX];
        int has_ids = strchr(routes[i].pattern, ':') != NULL;
        if (literal && has_ids) continue;
        if (!route_match(routes[i].pattern, r->path, plen, params)) continue;
        literal |= !has_ids;
        if (routes[i].method != method) {
            /* the same path may be served by a later route with this method */
            size_t al = strlen(allow);
            static const char *names[] = {"",    "GET",   "HEAD",   "POST",
                                          "PUT", "PATCH", "DELETE", "OPTIONS"};
            snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "",
                     names[routes[i].method]);
            continue;
        }
        c->route = &routes[i];
        memcpy(c->params, params, sizeof params);
        break;
    }
    if (!c->route) {
        if (allow[0]) {
            char hdr[160], msg[200];
            snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
            snprintf(msg, sizeof msg, "%s is not allowed on this path", r->method_str);
            hk_buf_reset(&c->out);
            error_json(&c->out, 405, "method_not_allowed", msg, NULL, NULL);
            hk_call_raw(c, 405, "application/json", hdr, c->out.data, c->out.len);
            return;
        }
        hk_call_error(c, 404, "not_found", "no such route", "Nothing is served at this path.",
                      "See /api/webhook/openapi for the API's routes.");
        return;
    }
    if (c->route->auth == HK_AUTH_METRICS)
        authenticate_metrics(c);
    else if (c->route->auth != HK_AUTH_NONE)
        authenticate(c);
    else
        run_handler(c);
}

void hk_api_handle(hk_http_req *r, void *arg)
{
    handle(r, arg, 0);
}

void hk_api_head(hk_http_req *r, void *arg)
{
    handle(r, arg, 1);
}

void hk_api_init(hk_api *api, const hk_config *cfg, hk_store *store, hk_dispatch *dispatch,
                 hk_queue *queue, hk_metrics *metrics)
{
    memset(api, 0, sizeof *api);
    api->cfg = cfg;
    api->store = store;
    api->dispatch = dispatch;
    api->queue = queue;
    api->metrics = metrics;
    api->guard = hk_ssrf_guard_new(cfg);
    api->started_ms = hk_now_ms();
    api->nats_state = "disabled";
    hk_map_init(&api->keys);
    hk_map_init(&api->ingest_buckets);
}

void hk_api_auth_flush(hk_api *api)
{
    size_t it = 0;
    void *v;
    while ((v = hk_map_next(&api->keys, &it))) auth_entry_free(v);
    hk_map_free(&api->keys);
    hk_map_init(&api->keys);
}

void hk_api_free(hk_api *api)
{
    size_t it = 0;
    void *v;
    while ((v = hk_map_next(&api->keys, &it))) auth_entry_free(v);
    hk_map_free(&api->keys);
    it = 0;
    while ((v = hk_map_next(&api->ingest_buckets, &it))) free(v);
    hk_map_free(&api->ingest_buckets);
    hk_ssrf_guard_free(api->guard);
}
