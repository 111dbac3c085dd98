/*
 * orgs.c: tenancy (SPEC §7): organizations (admin keys only) and API keys, both an
 * organization's keys managed by an admin (/v1/organizations/{id}/api-keys) and an
 * organization's own (/v1/api-keys, a full-scoped key). Who may call each route is decided in
 * api.c (hk_authz_decide) before these handlers run; here are the input rules and the answers.
 *
 * A key is shown once, in the answer that created it, and never logged. Revoking a key or
 * disabling an organization forgets this node's cached keys at once (hk_api_auth_flush); other
 * nodes' caches expire within HK_AUTH_TTL_MS. Disabling an organization holds its deliveries
 * (parked in the store, hk_dispatch_org_changed for the ones this node holds in memory), and
 * enabling it makes them due again.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/crypto.h"
#include "core/log.h"

#define ORG_NAME_MAX     255
#define KEY_NAME_MAX     255
#define METADATA_MAX     8192 /* bytes of the compact JSON object */
#define METADATA_MAX_STR "8192"

/* What the handlers own for the store request (freed with the call). */
typedef struct org_input {
    char *id, *name, *metadata;
    char key[HK_APIKEY_GEN_LEN]; /* a new key's plaintext (create) */
    char hash[65], prefix[16];
} org_input;

static void org_input_free(void *p)
{
    org_input *in = p;
    if (!in) return;
    free(in->id);
    free(in->name);
    free(in->metadata);
    explicit_bzero(in->key, sizeof in->key);
    free(in);
}

static org_input *input_of(hk_call *c)
{
    org_input *in = hk_calloc(1, sizeof *in);
    c->data = in;
    c->data_free = org_input_free;
    return in;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* An optional one-line name of 1..max bytes at key `field`: 0 absent, 1 present (into *out),
 * -1 invalid (422 sent). */
static int parse_name(hk_call *c, const char *field, size_t max, char **out)
{
    int t = hk_json_obj_get(&c->doc, 0, field);
    if (t < 0) return 0;
    const char *why = NULL;
    char *v = hk_json_strdup(&c->doc, t, max, &why);
    if (!v || !*v || has_ctl(v)) {
        free(v);
        hk_call_invalid(c, "%s must be a string of 1 to %zu bytes on one line", field, max);
        return -1;
    }
    *out = v;
    return 1;
}

/* Validates an organization id in a path: a malformed one is simply not found. */
static int valid_org_param(hk_call *c, const char *id)
{
    if (hk_org_id_valid(id)) return 1;
    hk_call_error(c, 404, "not_found", "organization not found", NULL, NULL);
    return 0;
}

/* ---- organizations ---------------------------------------------------------------------------
 */

/* name, metadata, disabled (create and patch); with_id: also `id` (create). 0 ok, -1 (sent). */
static int parse_org(hk_call *c, org_input *in, int with_id)
{
    hk_req *r = &c->req;
    int t;
    if (with_id && (t = hk_json_obj_get(&c->doc, 0, "id")) >= 0) {
        in->id = hk_json_strdup(&c->doc, t, HK_ORG_ID_MAX - 1, NULL);
        if (!in->id || !hk_org_id_valid(in->id)) {
            hk_call_invalid(c, "id must be 1 to 128 characters of [A-Za-z0-9_.:-]");
            return -1;
        }
        r->u.org.id = in->id;
    }
    int n = parse_name(c, "name", ORG_NAME_MAX, &in->name);
    if (n < 0) return -1;
    if (n) {
        r->u.org.has |= HK_OF_NAME;
        r->u.org.name = in->name;
    }
    if ((t = hk_json_obj_get(&c->doc, 0, "metadata")) >= 0) {
        hk_buf b;
        hk_buf_init(&b, METADATA_MAX + 1);
        if (hk_json_type(&c->doc, t) != HK_J_OBJECT || hk_json_compact(&c->doc, t, &b) ||
            b.len > METADATA_MAX) {
            hk_buf_free(&b);
            hk_call_invalid(c,
                            "metadata must be a JSON object of at most " METADATA_MAX_STR " bytes");
            return -1;
        }
        hk_buf_cstr(&b);
        in->metadata = hk_buf_steal(&b);
        r->u.org.has |= HK_OF_METADATA;
        r->u.org.metadata = in->metadata;
    }
    if ((t = hk_json_obj_get(&c->doc, 0, "disabled")) >= 0) {
        if (hk_json_bool(&c->doc, t, &r->u.org.disabled)) {
            hk_call_invalid(c, "disabled must be true or false");
            return -1;
        }
        r->u.org.has |= HK_OF_DISABLED;
    }
    return 0;
}

static void respond_org(hk_call *c, const hk_org *o, int status)
{
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_org(&w, o);
    hk_call_json(c, status);
}

static void on_org_created(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    HK_LOG(HK_LOG_INFO, "org.created", HK_LS("org", req->u.org.out.id),
           HK_LI("disabled", req->u.org.out.disabled));
    respond_org(c, &req->u.org.out, 201);
}

void hk_h_org_create(hk_call *c)
{
    if (hk_call_parse_body(c, 1)) return;
    org_input *in = input_of(c);
    c->req.kind = HK_REQ_ORG_CREATE;
    if (parse_org(c, in, 1)) return;
    hk_call_submit(c, on_org_created);
}

static void on_org_listed(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "organizations");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.org_list.n; i++) hk_render_org(&w, &req->u.org_list.items[i]);
    hk_jw_arr_close(&w);
    const hk_org *last = req->u.org_list.n ? &req->u.org_list.items[req->u.org_list.n - 1] : NULL;
    hk_render_paging(&w, req->u.org_list.total, req->u.org_list.capped, req->u.org_list.page,
                     req->u.org_list.limit, req->u.org_list.more, last ? last->created_at : 0,
                     last ? last->id : NULL);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_org_list(hk_call *c)
{
    int page, limit;
    if (hk_call_paging(c, NULL, &page, &limit, &c->req.u.org_list.after)) return;
    c->req.kind = HK_REQ_ORG_LIST;
    c->req.u.org_list.page = page;
    c->req.u.org_list.limit = limit;
    hk_call_submit(c, on_org_listed);
}

static void on_org_got(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    respond_org(c, &req->u.org.out, 200);
}

void hk_h_org_get(hk_call *c)
{
    if (!valid_org_param(c, c->params[0])) return;
    c->req.kind = HK_REQ_ORG_GET;
    c->req.u.org.id = c->params[0];
    hk_call_submit(c, on_org_got);
}

static void on_org_patched(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    const hk_org *o = &req->u.org.out;
    if (req->u.org.has & HK_OF_DISABLED) {
        hk_api_auth_flush(c->api); /* its keys answer 401 (or work again) at once here */
        hk_dispatch_org_changed(c->api->dispatch, o->id, req->u.org.unparked);
    }
    HK_LOG(HK_LOG_INFO, "org.updated", HK_LS("org", o->id), HK_LI("disabled", o->disabled),
           HK_LI("unparked", req->u.org.unparked));
    respond_org(c, o, 200);
}

void hk_h_org_patch(hk_call *c)
{
    if (!valid_org_param(c, c->params[0])) return;
    if (hk_call_parse_body(c, 0)) return;
    org_input *in = input_of(c);
    c->req.kind = HK_REQ_ORG_PATCH;
    c->req.u.org.id = c->params[0];
    if (parse_org(c, in, 0)) return;
    hk_call_submit(c, on_org_patched);
}

/* ---- API keys --------------------------------------------------------------------------------
 */

static void on_keys_listed(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "apiKeys");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.key_list.n; i++)
        hk_render_apikey(&w, &req->u.key_list.items[i], NULL);
    hk_jw_arr_close(&w);
    hk_jw_kint(&w, "total", req->u.key_list.n);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

static void keys_list(hk_call *c, const char *org)
{
    c->req.kind = HK_REQ_APIKEY_LIST;
    c->req.u.key_list.org = org;
    hk_call_submit(c, on_keys_listed);
}

void hk_h_org_keys_list(hk_call *c)
{
    if (!valid_org_param(c, c->params[0])) return;
    keys_list(c, c->params[0]);
}

void hk_h_keys_list(hk_call *c)
{
    keys_list(c, c->org);
}

static void on_key_created(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "organization");
        return;
    }
    org_input *in = c->data;
    const hk_apikey *k = &req->u.key_create.out;
    /* never the key itself */
    HK_LOG(HK_LOG_INFO, "apikey.created", HK_LS("key_id", k->id), HK_LS("org", k->org_id),
           HK_LS("scope", hk_scope_name(k->scope)));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_apikey(&w, k, in->key);
    hk_call_json(c, 201);
}

/* Body {name?, scope?}: a new key of org (which must exist), shown once in the answer. */
static void keys_create(hk_call *c, const char *org)
{
    if (hk_call_parse_body(c, 1)) return;
    org_input *in = input_of(c);
    if (parse_name(c, "name", KEY_NAME_MAX, &in->name) < 0) return;
    int scope;
    if (hk_call_scope_field(c, &scope)) return;
    hk_apikey_generate(in->key);
    hk_sha256_hex(in->key, strlen(in->key), in->hash);
    snprintf(in->prefix, sizeof in->prefix, "%.8s", in->key);
    if (org != c->org) hk_strlcpy(c->org, org, sizeof c->org); /* an admin's target */
    c->req.kind = HK_REQ_APIKEY_CREATE;
    c->req.u.key_create.name = in->name;
    c->req.u.key_create.key_hash = in->hash;
    c->req.u.key_create.prefix = in->prefix;
    c->req.u.key_create.scope = scope;
    c->req.u.key_create.org_must_exist = 1;
    hk_call_submit(c, on_key_created); /* the key's organization: c->org */
}

void hk_h_org_keys_create(hk_call *c)
{
    if (!valid_org_param(c, c->params[0])) return;
    keys_create(c, c->params[0]);
}

void hk_h_keys_create(hk_call *c)
{
    keys_create(c, c->org);
}

static void on_key_revoked(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "API key");
        return;
    }
    hk_api_auth_flush(c->api); /* it stops at once on this node */
    const char *id = req->u.key_revoke.id;
    HK_LOG(HK_LOG_INFO, "apikey.revoked", HK_LS("key_id", id));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "id", id);
    hk_jw_kstr(&w, "message", "API key revoked");
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

static void keys_revoke(hk_call *c, const char *org, const char *key_id)
{
    c->req.kind = HK_REQ_APIKEY_REVOKE;
    c->req.u.key_revoke.id = key_id;
    c->req.u.key_revoke.org = org;
    hk_call_submit(c, on_key_revoked);
}

void hk_h_org_keys_revoke(hk_call *c)
{
    if (!valid_org_param(c, c->params[0])) return;
    keys_revoke(c, c->params[0], c->params[1]);
}

void hk_h_keys_revoke(hk_call *c)
{
    keys_revoke(c, c->org, c->params[0]);
}
