/*
 * api.h: the HTTP API of SPEC §3, shared by the files of src/api/.
 *
 * A request's path: src/http/server.c parses it -> api.c finds the route (404/405 otherwise)
 * and resolves the API key to an organization (cached; a miss asks the store) -> the route's
 * handler validates the input, fills a store request and submits it (event ingest goes through
 * the ingest door, src/ingest/ingest.h) -> the store answers on the loop -> the handler renders
 * JSON and responds. Every handler works through an hk_call, which owns everything the request
 * needs until the response is sent.
 *
 * The files: api.c (routes, authentication, the call's lifetime, errors, input helpers),
 * render.c (resources as JSON), and one file of handlers per resource: webhooks.c, events.c,
 * deliveries.c, replay.c (retry, recover), health.c (health, metrics), openapi.c (the API's
 * own documentation), orgs.c (organizations and their API keys), authz.c (who may call what),
 * search.c (an organization's deliveries searched), sessions.c (portal sessions), stats.c
 * (statistics), ui.c (the dashboard's files).
 *
 * Errors are JSON {"code","message","why","fix"} (api.c), never HTML, never a 500 for bad
 * input.
 */
#ifndef HK_API_H
#define HK_API_H

#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "core/map.h"
#include "core/metrics.h"
#include "delivery/dispatcher.h"
#include "delivery/ssrf.h"
#include "http/server.h"
#include "ingest/ingest.h"
#include "store/store.h"

typedef struct hk_api {
    const hk_config *cfg;
    hk_store *store;
    hk_dispatch *dispatch;
    hk_ingest *ingest; /* the ingest door (set by whoever builds the parts, after init) */
    hk_queue *queue;
    hk_metrics *metrics;
    hk_ssrf_guard *guard;
    hk_map keys;           /* auth cache: key hash -> struct auth_entry */
    hk_map ingest_buckets; /* per-organization ingest rate limit (HOOKD_INGEST_RATE_LIMIT) */
    int64_t started_ms;
    int draining;           /* shutting down: ingest and /health/ready answer 503 */
    const char *nats_state; /* "disabled", "ok", "down" (set by the NATS source) */
} hk_api;

typedef struct hk_call hk_call;
typedef void (*hk_handler)(hk_call *c);

#define HK_MAX_PARAMS 2
#define HK_PARAM_MAX  136 /* a path parameter: an id, or an organization id (128) */

struct hk_call {
    hk_api *api;
    hk_http_req *http;
    const struct hk_route *route;
    char org[160]; /* the caller's organization (after auth) */
    char params[HK_MAX_PARAMS][HK_PARAM_MAX];
    hk_jdoc doc; /* the parsed body, if any */
    hk_req req;  /* the store request */
    hk_buf out;  /* response body being built */
    void *data;  /* handler state, freed with data_free */
    void (*data_free)(void *);
    char key_hash[65]; /* sha256 hex of the presented API key */
    int gate;          /* head only (hk_api_head): route and auth, no handler */
    int admin;         /* the key is an admin key (of no organization) */
    int scope;         /* the credential's scope (enum hk_scope) */
    int session;       /* the credential is a portal session */
    char *webhook_ids; /* a session limited to these webhooks ("id id ... ", owned), or NULL */
};

/* Routing table entry. */
typedef struct hk_route {
    int method;          /* enum hk_http_method */
    const char *pattern; /* "/api/webhook/v1/:id/deliveries" */
    hk_handler handler;
    int auth; /* enum hk_auth */
} hk_route;

/* What a route needs (hk_route.auth). */
enum hk_auth {
    HK_AUTH_NONE = 0,
    HK_AUTH_ORG = 1,      /* an organization's key, or an admin key with X-Organization-Id */
    HK_AUTH_METRICS = 2,  /* the metrics key, if configured */
    HK_AUTH_ADMIN = 3,    /* an admin key only */
    HK_AUTH_ORG_FULL = 4, /* as HK_AUTH_ORG, a full scope for every method, and no portal
                             session (key and session management) */
    HK_AUTH_MINT = 5      /* minting portal sessions: an admin key (it names the organization)
                             or an organization's full key; no portal session */
};

/* The authorization decision for an authenticated credential (pure: authz.c). */
enum hk_authz {
    HK_AUTHZ_OK = 0,
    HK_AUTHZ_ACT_AS,     /* an admin key acting on the organization of X-Organization-Id */
    HK_AUTHZ_NEED_ORG,   /* 422: an admin key on an organization's route without the header */
    HK_AUTHZ_ADMIN_ONLY, /* 403 forbidden: an organization's key on an admin route */
    HK_AUTHZ_SCOPE,      /* 403 forbidden: a read credential on a route that changes things */
    HK_AUTHZ_SESSION     /* 403 forbidden: a portal session on key or session management */
};
/* route_auth: enum hk_auth (not NONE/METRICS); is_get: the route's method is GET (HEAD is
 * routed as GET); admin: the key belongs to no organization; session: the credential is a
 * portal session (of an organization), not a key; scope: enum hk_scope; has_org_header:
 * X-Organization-Id was sent (read for admin keys only). */
int hk_authz_decide(int route_auth, int is_get, int admin, int session, int scope,
                    int has_org_header);

/* ---- setup ---------------------------------------------------------------------------------- */

void hk_api_init(hk_api *api, const hk_config *cfg, hk_store *store, hk_dispatch *dispatch,
                 hk_queue *queue, hk_metrics *metrics);
void hk_api_free(hk_api *api);
/* The server's request handler (arg = hk_api *). */
void hk_api_handle(hk_http_req *req, void *arg);
/* The server's on_head (arg = hk_api *): a request with a body is routed and its key checked
 * (the lookup may go to the store) before the body is read; a request that would be refused
 * (404, 405, 401, 503 from the key lookup) is answered without reading it. The handler then
 * routes and authenticates again (a cache hit). */
void hk_api_head(hk_http_req *req, void *arg);
/* Error bodies for errors the HTTP server produces itself (a 400 is about the HTTP framing:
 * its why and fix say so). */
void hk_api_error_body(hk_buf *out, int status, const char *code, const char *message);
/* Forgets every cached key (a key was revoked or an organization changed on this node): the
 * next request of each key asks the store. Other nodes forget within their cache time
 * (HK_AUTH_TTL_MS). */
void hk_api_auth_flush(hk_api *api);
#define HK_AUTH_TTL_MS 10000 /* a revoked key or disabled organization stops within this */

/* ---- responding (each ends the call: the hk_call is freed) ---------------------------------- */

/* Responds with c->out as JSON. */
void hk_call_json(hk_call *c, int status);
/* Responds with an error. why/fix may be NULL (a default per status is used). */
void hk_call_error(hk_call *c, int status, const char *code, const char *message, const char *why,
                   const char *fix);
/* Maps a store result code to the right error response (404, 409, 422, 503, 500). */
void hk_call_store_error(hk_call *c, const char *what);
/* 422 with the field named in the message. */
void hk_call_invalid(hk_call *c, const char *fmt, ...) HK_PRINTF(2, 3);
/* Responds with any content type (for /metrics, the docs page). */
void hk_call_raw(hk_call *c, int status, const char *ctype, const char *extra_headers,
                 const void *body, size_t len);
/* hk_call_raw with a body that lives as long as the process (cached files): not copied. */
void hk_call_raw_static(hk_call *c, int status, const char *ctype, const char *extra_headers,
                        const void *body, size_t len);

/* ---- input helpers -------------------------------------------------------------------------- */

/* Parses the body as JSON into c->doc. Responds with 415/400/422 and returns -1 on failure;
 * 0 on success. With allow_empty, an empty body parses as {} (returns 0). */
int hk_call_parse_body(hk_call *c, int allow_empty);
/* Reads a list's limit, page and cursor (store.h, lists) and validates them: a cursor must
 * be one of this list (ids with `prefix`), is not combined with a page > 1, and a page may not
 * start HK_LIST_OFFSET_MAX rows deep or more. Without a cursor, *after is the top of the list.
 * Responds 422 (naming the parameter) and returns -1 on a bad value; 0 otherwise. */
int hk_call_paging(hk_call *c, const char *prefix, int *page, int *limit, hk_cursor *after);
/* A list cursor: base64url of the row's sort key; fits HK_CURSOR_MAX with its NUL. */
#define HK_CURSOR_MAX 224
void hk_cursor_encode(int64_t at, const char *id, char out[HK_CURSOR_MAX]);
/* Parses s into out; 0, or -1 if s is not a cursor of a list of `prefix` ids (prefix NULL:
 * organization ids, hk_org_id_valid). Any bytes. */
int hk_cursor_decode(const char *s, const char *prefix, hk_cursor *out);
/* The body's optional "scope" (a key's or a session's: hk_scope_name's names) into *scope,
 * HK_SCOPE_FULL when absent. Returns 0, or -1 with a 422 sent. */
int hk_call_scope_field(hk_call *c, int *scope);
/* Query parameter value into out; 0 found, 1 absent, -1 invalid (422 sent). */
int hk_call_query(hk_call *c, const char *key, char *out, size_t outlen);

/* 1 if the caller may see webhook wid: always, unless a portal session limited to some
 * webhooks (webhookIds) does not name it. */
int hk_call_webhook_allowed(const hk_call *c, const char *wid);

/* Submits c->req with kind already set: org and done filled in here. */
void hk_call_submit(hk_call *c, void (*done)(hk_req *req));
/* The call a store request belongs to. */
static inline hk_call *hk_call_of(hk_req *req)
{
    return HK_CONTAINER_OF(req, hk_call, req);
}

/* ---- rendering --------------------------------------------------------------------------------
 */

/* secret_mode: 0 masked ("whsec_…abcd"), 1 plaintext (create/rotate responses). */
void hk_render_webhook(hk_jw *w, const hk_webhook *wh, int secret_mode);
void hk_render_delivery(hk_jw *w, const hk_delivery *d);
void hk_render_event(hk_jw *w, const hk_event *e, int with_deliveries);
void hk_render_org(hk_jw *w, const hk_org *o);
/* plaintext: the key itself, shown in the answer that created it only; else NULL */
void hk_render_apikey(hk_jw *w, const hk_apikey *k, const char *plaintext);
/* The paging fields of a list answer: total, totalCapped, page, limit, and next (the cursor
 * of the last row, last_at and last_id, when more rows follow; else null). */
void hk_render_paging(hk_jw *w, int64_t total, int capped, int page, int limit, int more,
                      int64_t last_at, const char *last_id);

/* ---- handlers (one file per resource) ---------------------------------------------------------
 */

void hk_h_health(hk_call *c);
void hk_h_health_live(hk_call *c);
void hk_h_health_ready(hk_call *c);
void hk_h_metrics(hk_call *c);
void hk_h_openapi_page(hk_call *c);
void hk_h_openapi_json(hk_call *c);
void hk_h_openapi_asset(hk_call *c);
void hk_h_ui_index(hk_call *c); /* ui.c: the dashboard */
void hk_h_ui_file(hk_call *c);
void hk_h_ui_vendor(hk_call *c);
void hk_h_whoami(hk_call *c);
void hk_h_webhook_create(hk_call *c);
void hk_h_webhook_list(hk_call *c);
void hk_h_webhook_get(hk_call *c);
void hk_h_webhook_patch(hk_call *c);
void hk_h_webhook_delete(hk_call *c);
void hk_h_event_ingest(hk_call *c);
void hk_h_event_batch(hk_call *c);
void hk_h_trigger(hk_call *c);
void hk_h_event_list(hk_call *c);
void hk_h_event_get(hk_call *c);
void hk_h_delivery_list(hk_call *c);
void hk_h_delivery_get(hk_call *c);
void hk_h_delivery_retry(hk_call *c);
void hk_h_webhook_rotate(hk_call *c);
void hk_h_webhook_rotate_key(hk_call *c);
void hk_h_webhook_recover(hk_call *c);
void hk_h_sign_test_event(hk_call *c);
/* tenancy (orgs.c) */
void hk_h_org_create(hk_call *c);
void hk_h_org_list(hk_call *c);
void hk_h_org_get(hk_call *c);
void hk_h_org_patch(hk_call *c);
void hk_h_org_keys_list(hk_call *c);
void hk_h_org_keys_create(hk_call *c);
void hk_h_org_keys_revoke(hk_call *c);
void hk_h_keys_list(hk_call *c);
void hk_h_keys_create(hk_call *c);
void hk_h_keys_revoke(hk_call *c);
/* portal sessions (sessions.c) */
void hk_h_session_create(hk_call *c);
void hk_h_session_revoke(hk_call *c);
/* what a portal session limited to some webhooks gets instead of the webhook list and the
 * delivery read (sessions.c): only its webhooks, and their deliveries */
void hk_h_session_webhook_list(hk_call *c);
/* organization-wide delivery search (search.c) */
void hk_h_delivery_search(hk_call *c);
/* stats.c */
void hk_h_webhook_stats(hk_call *c);
void hk_h_org_stats(hk_call *c);
void hk_h_session_delivery_get(hk_call *c);

#endif
