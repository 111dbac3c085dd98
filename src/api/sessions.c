/*
 * sessions.c: portal sessions (SPEC §7, issue 17 item 3): what an operator's backend mints for
 * its customer and embeds, as Svix's app portal. A session is a short-lived bearer token of one
 * organization with a scope; it is sent like a key (x-api-key or Authorization: Bearer) and works
 * on that organization's routes within its scope, never on key or session management (api.c,
 * hk_authz_decide). The token is shown once, in the answer that minted it, and in the URL of the
 * dashboard page that carries it in the fragment (never in a query string: a fragment is not
 * sent to servers nor written to access logs); only its SHA-256 is stored, and it is never
 * logged. A session ends at its expiresAt, or when revoked (at once on the revoking node, within
 * HK_AUTH_TTL_MS on the others). A session made with webhookIds sees those webhooks only: api.c
 * (limited_session) lets it use one webhook's routes for them, sends its webhook list and
 * delivery reads here (filtered), and refuses the rest of the organization's routes.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/time.h"

#define TTL_DEFAULT_S 3600
#define TTL_MAX_S     86400
#define TOKEN_PREFIX  "hkps_"
#define UI_PATH       "/api/webhook/ui/"

#define WEBHOOK_IDS_MAX 100

typedef struct session_input {
    char token[HK_APIKEY_GEN_LEN + 8]; /* "hkps_" + 32 random characters */
    char hash[65];
    char *ids[WEBHOOK_IDS_MAX]; /* webhookIds */
    int nids;
} session_input;

static void session_input_free(void *p)
{
    session_input *in = p;
    if (!in) return;
    explicit_bzero(in->token, sizeof in->token);
    for (int i = 0; i < in->nids; i++) free(in->ids[i]);
    free(in);
}

static void on_session_created(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    session_input *in = c->data;
    HK_LOG(HK_LOG_INFO, "portal_session.created", HK_LS("session_id", req->u.session.id),
           HK_LS("org", c->org), HK_LS("scope", hk_scope_name(req->u.session.scope)),
           HK_LI("expires_at", req->u.session.expires_at)); /* never the token */
    const char *base = c->api->cfg->base_url ? c->api->cfg->base_url : "";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') bl--;
    hk_buf url;
    hk_buf_init(&url, HK_BUF_UNLIMITED);
    hk_buf_printf(&url, "%.*s" UI_PATH "#token=%s", (int)bl, base, in->token);
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "id", req->u.session.id);
    hk_jw_kstr(&w, "organizationId", c->org);
    hk_jw_kstr(&w, "scope", hk_scope_name(req->u.session.scope));
    hk_jw_kstr(&w, "token", in->token);
    hk_jw_ktime(&w, "expiresAt", req->u.session.expires_at);
    hk_jw_kstr(&w, "url", hk_buf_cstr(&url));
    hk_jw_key(&w, "webhookIds");
    if (in->nids) {
        hk_jw_arr_open(&w);
        for (int i = 0; i < in->nids; i++) hk_jw_str(&w, in->ids[i]);
        hk_jw_arr_close(&w);
    } else {
        hk_jw_null(&w);
    }
    hk_jw_obj_close(&w);
    explicit_bzero(url.data, url.len);
    hk_buf_free(&url);
    hk_call_json(c, 201);
}

/* Body {organizationId? (admin keys: required unless X-Organization-Id), scope?, ttlSeconds?}. */
void hk_h_session_create(hk_call *c)
{
    if (hk_call_parse_body(c, 1)) return;
    int t = hk_json_obj_get(&c->doc, 0, "organizationId");
    if (c->admin) {
        const char *hdr = hk_http_header_get(c->http, "x-organization-id");
        char *org = t >= 0 ? hk_json_strdup(&c->doc, t, HK_ORG_ID_MAX - 1, NULL) : NULL;
        if (t >= 0 && (!org || !hk_org_id_valid(org))) {
            free(org);
            hk_call_invalid(c, "organizationId must be 1 to 128 characters of [A-Za-z0-9_.:-]");
            return;
        }
        if (!org && hdr && *hdr && hk_org_id_valid(hdr)) org = hk_strdup(hdr);
        if (!org) {
            free(org);
            hk_call_invalid(c, "organizationId is required with an admin key (or send "
                               "X-Organization-Id)");
            return;
        }
        hk_strlcpy(c->org, org, sizeof c->org);
        free(org);
    } else if (t >= 0 && !hk_json_str_eq(&c->doc, t, c->org)) {
        hk_call_error(c, 403, "forbidden", "organizationId names another organization",
                      "An organization's key mints sessions of its own organization only.",
                      "Leave organizationId out, or use an admin key.");
        return;
    }
    int scope;
    if (hk_call_scope_field(c, &scope)) return;
    if (c->scope == HK_SCOPE_READ) scope = HK_SCOPE_READ; /* never more than the minter */
    int64_t ttl = TTL_DEFAULT_S;
    if ((t = hk_json_obj_get(&c->doc, 0, "ttlSeconds")) >= 0 &&
        (hk_json_int(&c->doc, t, &ttl) || ttl < 1 || ttl > TTL_MAX_S)) {
        hk_call_invalid(c, "ttlSeconds must be an integer between 1 and 86400");
        return;
    }
    session_input *in = hk_calloc(1, sizeof *in);
    c->data = in;
    c->data_free = session_input_free;
    int has_ids = 0;
    if ((t = hk_json_obj_get(&c->doc, 0, "webhookIds")) >= 0) {
        int n = hk_json_type(&c->doc, t) == HK_J_ARRAY ? (int)c->doc.toks[t].size : -1;
        if (n < 1 || n > WEBHOOK_IDS_MAX) {
            hk_call_invalid(c, "webhookIds must be an array of 1 to 100 webhook ids");
            return;
        }
        int i = 0;
        for (int e = hk_json_first(&c->doc, t); e >= 0 && i < n;
             e = hk_json_next(&c->doc, e), i++) {
            char *id = hk_json_strdup(&c->doc, e, HK_ID_MAX - 1, NULL);
            if (!id || !hk_id_valid(id, "wh")) {
                free(id);
                hk_call_invalid(c, "webhookIds[%d] must be a webhook id (wh_...)", i);
                return;
            }
            in->ids[in->nids++] = id;
        }
        has_ids = 1;
    }
    char raw[HK_APIKEY_GEN_LEN];
    hk_apikey_generate(raw); /* "hk_" + 32 */
    snprintf(in->token, sizeof in->token, TOKEN_PREFIX "%s", raw + 3);
    explicit_bzero(raw, sizeof raw);
    hk_sha256_hex(in->token, strlen(in->token), in->hash);
    c->req.kind = HK_REQ_SESSION_CREATE;
    c->req.u.session.token_hash = in->hash;
    c->req.u.session.scope = scope;
    c->req.u.session.expires_at = hk_now_ms() + ttl * 1000;
    if (has_ids) {
        c->req.u.session.webhook_ids = (const char *const *)in->ids;
        c->req.u.session.nwebhook_ids = in->nids;
    }
    hk_call_submit(c, on_session_created);
}

static void on_session_revoked(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "portal session");
        return;
    }
    hk_api_auth_flush(c->api); /* it stops at once on this node */
    HK_LOG(HK_LOG_INFO, "portal_session.revoked", HK_LS("session_id", req->u.session.id));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "id", req->u.session.id);
    hk_jw_kstr(&w, "message", "portal session revoked");
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_session_revoke(hk_call *c)
{
    if (strlen(c->params[0]) >= HK_ID_MAX) {
        hk_call_error(c, 404, "not_found", "portal session not found", NULL, NULL);
        return;
    }
    c->req.kind = HK_REQ_SESSION_REVOKE;
    hk_strlcpy(c->req.u.session.id, c->params[0], sizeof c->req.u.session.id);
    hk_call_submit(c, on_session_revoked);
}

/* ---- a session limited to some webhooks ------------------------------------------------------
 */

/* Newest first (created_at, then id), as the webhook list. */
static int newer(const void *a, const void *b)
{
    const hk_webhook *x = *(hk_webhook *const *)a, *y = *(hk_webhook *const *)b;
    if (x->created_at != y->created_at) return x->created_at > y->created_at ? -1 : 1;
    return strcmp(y->id, x->id);
}

typedef struct limited_list {
    char **ids;
    int n, page, limit, status;
    hk_cursor after; /* a cursor page starts after this (created_at, id) */
} limited_list;

static void limited_list_free(void *p)
{
    limited_list *l = p;
    if (!l) return;
    for (int i = 0; i < l->n; i++) free(l->ids[i]);
    free(l->ids);
    free(l);
}

static void on_limited_loaded(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhooks");
        return;
    }
    limited_list *l = c->data;
    /* the chosen ones, borrowed: the request still owns every webhook */
    hk_webhook **items =
        hk_calloc((size_t)(req->u.wh_load.n ? req->u.wh_load.n : 1), sizeof *items);
    int n = 0, total = 0;
    for (int i = 0; i < req->u.wh_load.n; i++) {
        hk_webhook *wh = req->u.wh_load.items[i];
        if (!wh || wh->deleted_at || strcmp(wh->org_id ? wh->org_id : "", c->org) != 0 ||
            (l->status >= 0 && wh->status != l->status))
            continue;
        total++; /* the list's total, as the other lists: whatever the cursor */
        if (l->after.id[0] && (wh->created_at > l->after.at ||
                               (wh->created_at == l->after.at && strcmp(wh->id, l->after.id) >= 0)))
            continue; /* at or before the cursor's row */
        items[n++] = wh;
    }
    qsort(items, (size_t)n, sizeof *items, newer);
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "webhooks");
    hk_jw_arr_open(&w);
    int64_t from = (int64_t)(l->page - 1) * l->limit, end = from;
    for (int64_t i = from; i < n && i < from + l->limit; i++, end++)
        hk_render_webhook(&w, items[i], 0);
    hk_jw_arr_close(&w);
    const hk_webhook *last = end > from ? items[end - 1] : NULL;
    hk_render_paging(&w, total, 0, l->page, l->limit, end < n, last ? last->created_at : 0,
                     last ? last->id : NULL);
    hk_jw_obj_close(&w);
    free(items);
    hk_call_json(c, 200);
}

void hk_h_session_webhook_list(hk_call *c)
{
    limited_list *l = hk_calloc(1, sizeof *l);
    c->data = l;
    c->data_free = limited_list_free;
    if (hk_call_paging(c, "wh", &l->page, &l->limit, &l->after)) return;
    char status[32];
    l->status = -1;
    int r = hk_call_query(c, "status", status, sizeof status);
    if (r < 0) return;
    if (r == 0 && (l->status = hk_wh_status_parse(status)) < 0) {
        hk_call_invalid(c, "status must be active, paused, disabled or failed");
        return;
    }
    for (const char *p = c->webhook_ids; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        l->ids = hk_realloc(l->ids, sizeof(char *) * (size_t)(l->n + 1));
        l->ids[l->n++] = hk_strndup(p, len);
        p = e ? e + 1 : p + len;
    }
    c->req.kind = HK_REQ_WEBHOOK_LOAD;
    c->req.u.wh_load.ids = (const char *const *)l->ids;
    c->req.u.wh_load.nids = l->n;
    hk_call_submit(c, on_limited_loaded);
}

static void on_limited_delivery(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "delivery");
        return;
    }
    if (!hk_call_webhook_allowed(c, req->u.dl_get.out.webhook_id)) {
        hk_call_error(c, 404, "not_found", "delivery not found", NULL, NULL);
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_delivery(&w, &req->u.dl_get.out);
    hk_call_json(c, 200);
}

void hk_h_session_delivery_get(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "whde")) {
        hk_call_error(c, 404, "not_found", "delivery not found", NULL, NULL);
        return;
    }
    c->req.kind = HK_REQ_DELIVERY_GET;
    c->req.u.dl_get.id = c->params[0];
    hk_call_submit(c, on_limited_delivery);
}
