/*
 * webhooks.c: create, list, get, patch and delete webhooks (SPEC §3), and the validation of
 * every webhook field. Create and patch share one parser (parse_fields); a field that is
 * present must be valid, unknown fields are ignored, and each error names its field.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/crypto.h"
#include "core/log.h"
#include "delivery/sign.h"
#include "core/time.h"
#include "delivery/request.h"
#include "store/match.h"
#include "store/job.h"

#define MAX_EVENTS        100
#define MAX_HEADERS       50
#define HEADER_NAME_MAX   256
#define HEADER_VALUE_MAX  4096
#define NAME_MAX_LEN      255
#define SECRET_MIN        8
#define SECRET_MAX        512
#define MAX_RETRIES_MAX   50
#define RATE_MAX          100000
#define HK_TIMEOUT_MIN_MS 100 /* HOOKD_HTTP_TIMEOUT_MS's own minimum */

/* What parse_fields owns for the store request (freed with the call). */
typedef struct wh_input {
    hk_webhook_fields f;
    char *name, *url, *secret, *user_id, *headers, *filter, *schedule;
    char **events;
    int nevents;
    char generated_secret[HK_SECRET_GEN_LEN];
    char generated_key[HK_ED25519_TEXT_LEN]; /* an Ed25519 private key (crypto.h) */
} wh_input;

static void wh_input_free(void *p)
{
    wh_input *in = p;
    if (!in) return;
    free(in->name);
    free(in->url);
    free(in->secret);
    free(in->user_id);
    free(in->headers);
    free(in->filter);
    free(in->schedule);
    for (int i = 0; i < in->nevents; i++) free(in->events[i]);
    free(in->events);
    free(in);
}

/* 1 if s has a byte < 0x20 or 0x7f (control characters: CR, LF, NUL, ...). */
static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static int is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static const char *const reserved_headers[] = {
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "reloop-id",
    "reloop-timestamp",
    "reloop-signature",
    "x-webhook-signature",
    "x-delivery-id",
    "transfer-encoding",
    "connection",
    "expect",
    "te",
    "upgrade",
    "keep-alive",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
};

/* Reads a string field: absent -> 0 (nothing set), present and valid -> 1 with *out set,
 * invalid -> -1 with a 422 sent. */
static int str_field(hk_call *c, const char *key, size_t min, size_t max, int allow_null,
                     char **out)
{
    int t = hk_json_obj_get(&c->doc, 0, key);
    if (t < 0) return 0;
    if (hk_json_type(&c->doc, t) == HK_J_NULL && allow_null) {
        *out = NULL;
        return 1;
    }
    const char *why = NULL;
    char *s = hk_json_strdup(&c->doc, t, max, &why);
    if (!s) {
        if (hk_json_type(&c->doc, t) != HK_J_STRING)
            hk_call_invalid(c, "%s must be a string", key);
        else
            hk_call_invalid(c, "%s is invalid: %s (at most %zu bytes)", key,
                            why ? why : "unreadable", max);
        return -1;
    }
    if (strlen(s) < min || has_ctl(s)) {
        hk_call_invalid(c,
                        "%s must be %zu to %zu characters without control characters (CR, "
                        "LF, NUL)",
                        key, min, max);
        free(s);
        return -1;
    }
    *out = s;
    return 1;
}

static int int_field(hk_call *c, const char *key, int64_t min, int64_t max, int *out)
{
    int t = hk_json_obj_get(&c->doc, 0, key);
    if (t < 0) return 0;
    int64_t v;
    if (hk_json_int(&c->doc, t, &v) || v < min || v > max) {
        hk_call_invalid(c, "%s must be an integer between %lld and %lld", key, (long long)min,
                        (long long)max);
        return -1;
    }
    *out = (int)v;
    return 1;
}

static int bool_field(hk_call *c, const char *key, int *out)
{
    int t = hk_json_obj_get(&c->doc, 0, key);
    if (t < 0) return 0;
    if (hk_json_bool(&c->doc, t, out)) {
        hk_call_invalid(c, "%s must be true or false", key);
        return -1;
    }
    return 1;
}

static int parse_events(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "events");
    if (t < 0) return 0;
    if (hk_json_type(&c->doc, t) != HK_J_ARRAY || c->doc.toks[t].size == 0) {
        hk_call_invalid(c, "events must be a non-empty array of event types or patterns");
        return -1;
    }
    if (c->doc.toks[t].size > MAX_EVENTS) {
        hk_call_invalid(c, "events may hold at most %d entries", MAX_EVENTS);
        return -1;
    }
    in->events = hk_calloc(c->doc.toks[t].size, sizeof(char *));
    int i = 0;
    for (int e = hk_json_first(&c->doc, t); i < (int)c->doc.toks[t].size;
         e = hk_json_next(&c->doc, e), i++) {
        char *s = hk_json_strdup(&c->doc, e, HK_EVENT_TYPE_MAX, NULL);
        if (!s || !hk_pattern_valid(s)) {
            free(s);
            hk_call_invalid(c,
                            "events[%d] must match [A-Za-z0-9_.-]{1,255}, where a whole segment "
                            "may be '*'",
                            i);
            return -1;
        }
        int dup = 0;
        for (int k = 0; k < in->nevents; k++)
            if (strcmp(in->events[k], s) == 0) dup = 1;
        if (dup)
            free(s);
        else
            in->events[in->nevents++] = s;
    }
    in->f.events = (const char *const *)in->events;
    in->f.nevents = in->nevents;
    in->f.has |= HK_WF_EVENTS;
    return 1;
}

/* The first customHeaders name that another one equals ignoring ASCII case (header names are
 * case-insensitive: `X-A` and `x-a` are one header), as a new string; NULL if none. */
static char *dup_header_name(const hk_jdoc *d, int obj)
{
    char *names[MAX_HEADERS] = {0}, *dup = NULL;
    int n = 0;
    int size = (int)d->toks[obj].size < MAX_HEADERS ? (int)d->toks[obj].size : MAX_HEADERS;
    for (int k = hk_json_first(d, obj); k >= 0 && n < size; k = hk_json_next(d, k + 1)) {
        names[n] = hk_json_strdup(d, k, HEADER_NAME_MAX, NULL);
        for (int j = 0; names[n] && j < n && !dup; j++)
            if (names[j] && strcasecmp(names[j], names[n]) == 0) dup = hk_strdup(names[n]);
        n++;
        if (dup) break;
    }
    for (int j = 0; j < n; j++) free(names[j]);
    return dup;
}

static int parse_headers(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "customHeaders");
    if (t < 0) return 0;
    in->f.has |= HK_WF_HEADERS;
    if (hk_json_type(&c->doc, t) == HK_J_NULL) return 1;
    if (hk_json_type(&c->doc, t) != HK_J_OBJECT) {
        hk_call_invalid(c, "customHeaders must be an object of header names to string values");
        return -1;
    }
    if (c->doc.toks[t].size > MAX_HEADERS) {
        hk_call_invalid(c, "customHeaders may hold at most %d headers", MAX_HEADERS);
        return -1;
    }
    if (hk_json_obj_dup_key(&c->doc, t)) {
        hk_call_invalid(c, "customHeaders has a duplicate name");
        return -1;
    }
    char *dup = dup_header_name(&c->doc, t);
    if (dup) {
        hk_call_invalid(c, "customHeaders has %s twice (header names are case-insensitive)", dup);
        free(dup);
        return -1;
    }
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_jw w;
    hk_jw_init(&w, &b);
    hk_jw_obj_open(&w);
    int i = 0, rc = 1;
    for (int k = hk_json_first(&c->doc, t); i < (int)c->doc.toks[t].size;
         k = hk_json_next(&c->doc, k + 1), i++) {
        char *name = hk_json_strdup(&c->doc, k, HEADER_NAME_MAX, NULL);
        const char *why = NULL;
        char *value = hk_json_type(&c->doc, k + 1) == HK_J_STRING
                          ? hk_json_strdup(&c->doc, k + 1, HEADER_VALUE_MAX, &why)
                          : NULL;
        int ok = name && *name;
        for (const char *p = name; ok && *p; p++) ok = is_tchar(*p);
        if (!ok) {
            hk_call_invalid(c,
                            "customHeaders: header names must be HTTP tokens of at most %d "
                            "characters",
                            HEADER_NAME_MAX);
            rc = -1;
        } else {
            for (size_t r = 0; r < HK_ARRAY_LEN(reserved_headers); r++)
                if (strcasecmp(name, reserved_headers[r]) == 0 ||
                    strncasecmp(name, "proxy-", 6) == 0) {
                    hk_call_invalid(c, "customHeaders.%s is reserved: hookd sets it itself", name);
                    rc = -1;
                    break;
                }
        }
        if (rc > 0) {
            int vok = value != NULL;
            for (const char *p = value; vok && *p; p++)
                vok = !((unsigned char)*p < 0x20 && *p != '\t') && *p != 0x7f;
            if (!vok) {
                hk_call_invalid(c,
                                "customHeaders.%s must be a string of at most %d bytes without "
                                "CR, LF, NUL or other control characters",
                                name, HEADER_VALUE_MAX);
                rc = -1;
            }
        }
        if (rc > 0) {
            hk_jw_kstr(&w, name, value);
        }
        free(name);
        free(value);
        if (rc < 0) break;
    }
    hk_jw_obj_close(&w);
    if (rc > 0) {
        in->headers = hk_buf_steal(&b);
        in->f.custom_headers = in->headers;
    }
    hk_buf_free(&b);
    return rc;
}

static int parse_filter(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "filteringOptions");
    if (t < 0) return 0;
    in->f.has |= HK_WF_FILTER;
    if (hk_json_type(&c->doc, t) == HK_J_NULL) return 1;
    const hk_jtok *tok = &c->doc.toks[t];
    hk_filter f;
    char err[256];
    int rc = hk_filter_parse(c->doc.src + tok->start, tok->end - tok->start, &f, err, sizeof err);
    if (rc) {
        hk_filter_free(&f);
        hk_call_invalid(c, "%s", err);
        return -1;
    }
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_filter_canonical(&f, &b);
    hk_filter_free(&f);
    if (b.len == 2 && memcmp(b.data, "{}", 2) == 0) {
        hk_buf_free(&b);
        return 1; /* an empty filter is no filter */
    }
    in->filter = hk_buf_steal(&b);
    in->f.filtering_options = in->filter;
    return 1;
}

/* Makes a new Ed25519 key pair the signing_key of the fields. -1 after a 500 if OpenSSL
 * fails. */
static int set_new_key(hk_call *c, wh_input *in)
{
    if (hk_ed25519_generate(in->generated_key)) {
        hk_call_error(c, 500, "internal", "the Ed25519 key pair could not be made", NULL, NULL);
        return -1;
    }
    in->f.signing_key = in->generated_key;
    in->f.has |= HK_WF_SIGNING_KEY;
    return 0;
}

static int parse_schemes(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "signatureSchemes");
    if (t < 0) return 0;
    if (hk_json_type(&c->doc, t) != HK_J_ARRAY || c->doc.toks[t].size == 0) {
        hk_call_invalid(c, "signatureSchemes must be a non-empty array of \"standard\", "
                           "\"reloop\", \"sha256\", \"ed25519\"");
        return -1;
    }
    unsigned bits = 0;
    int i = 0;
    for (int e = hk_json_first(&c->doc, t); i < (int)c->doc.toks[t].size;
         e = hk_json_next(&c->doc, e), i++) {
        char *s = hk_json_strdup(&c->doc, e, 32, NULL);
        unsigned b = s ? hk_sig_scheme_from_name(s) : 0;
        free(s);
        if (!b) {
            hk_call_invalid(c,
                            "signatureSchemes[%d] must be \"standard\", \"reloop\", "
                            "\"sha256\" or \"ed25519\"",
                            i);
            return -1;
        }
        bits |= b;
    }
    in->f.schemes = bits;
    in->f.has |= HK_WF_SCHEMES;
    /* ed25519: a key pair for a webhook that has none (the store keeps one it has) */
    if ((bits & HK_SIG_ED25519) && set_new_key(c, in) < 0) return -1;
    return 1;
}

/* retrySchedule: null (the global HOOKD_RETRY_SCHEDULE) or an array of durations, validated by
 * the parser of HOOKD_RETRY_SCHEDULE itself (hk_duration_list_parse: each > 0 and <= 7d) with at
 * most MAX_RETRIES_MAX items, and stored as that option is written ("1s,5s,30s"). Without an
 * explicit maxRetries the schedule's length becomes the webhook's maxRetries, so a listed
 * schedule is the whole retry plan. 0 absent, 1 set, -1 after a 422. */
static int parse_schedule(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "retrySchedule");
    if (t < 0) return 0;
    in->f.has |= HK_WF_RETRY_SCHEDULE;
    if (hk_json_type(&c->doc, t) == HK_J_NULL) return 1;
    if (hk_json_type(&c->doc, t) != HK_J_ARRAY) {
        hk_call_invalid(c, "retrySchedule must be null or an array of delays such as "
                           "[\"5s\", \"1m\"] (units ms, s, m, h, d)");
        return -1;
    }
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    int i = 0, rc = 1;
    for (int e = hk_json_first(&c->doc, t); i < (int)c->doc.toks[t].size;
         e = hk_json_next(&c->doc, e), i++) {
        char *item =
            hk_json_type(&c->doc, e) == HK_J_STRING ? hk_json_strdup(&c->doc, e, 32, NULL) : NULL;
        /* a comma would split one item in two for the list parser */
        if (!item || strchr(item, ',') || has_ctl(item)) {
            hk_call_invalid(c,
                            "retrySchedule[%d] must be a duration string such as \"5s\" "
                            "(units ms, s, m, h, d; at most 32 characters)",
                            i);
            free(item);
            rc = -1;
            break;
        }
        const char *a = item, *z = item + strlen(item);
        while (a < z && (*a == ' ' || *a == '\t')) a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t')) z--;
        if (i) hk_buf_putc(&b, ',');
        hk_buf_append(&b, a, (size_t)(z - a));
        free(item);
    }
    if (rc > 0) {
        int64_t ms[HK_RETRY_SCHEDULE_MAX];
        char why[200];
        int n = hk_duration_list_parse(hk_buf_cstr(&b), ms, MAX_RETRIES_MAX, why, sizeof why);
        if (n <= 0) {
            hk_call_invalid(c, "retrySchedule: %s",
                            n == 0 || !why[0] ? "needs at least one delay" : why);
            rc = -1;
        } else {
            in->schedule = hk_buf_steal(&b);
            in->f.retry_schedule = in->schedule;
            if (!(in->f.has & HK_WF_MAX_RETRIES)) {
                in->f.max_retries = n;
                in->f.has |= HK_WF_MAX_RETRIES;
            }
        }
    }
    hk_buf_free(&b);
    return rc;
}

/* timeoutMs: null (HOOKD_HTTP_TIMEOUT_MS) or the attempt deadline in ms, 100 (the option's own
 * minimum) up to HOOKD_HTTP_TIMEOUT_MS: leases are sized by the global deadline (HOOKD_LEASE_MS
 * > HOOKD_HTTP_TIMEOUT_MS + 5000), so a webhook may shorten it, never lengthen it. */
static int parse_timeout(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "timeoutMs");
    if (t < 0) return 0;
    in->f.has |= HK_WF_TIMEOUT;
    if (hk_json_type(&c->doc, t) == HK_J_NULL) return 1;
    int64_t v;
    int max = c->api->cfg->http_timeout_ms;
    if (hk_json_int(&c->doc, t, &v) || v < HK_TIMEOUT_MIN_MS || v > max) {
        hk_call_invalid(c,
                        "timeoutMs must be null or an integer between %d and %d (the server's "
                        "HOOKD_HTTP_TIMEOUT_MS)",
                        HK_TIMEOUT_MIN_MS, max);
        return -1;
    }
    in->f.timeout_ms = (int)v;
    return 1;
}

/* ordering: "parallel" (the default) or "fifo" (docs/API.md "Ordering"). Returns 1 if given, 0
 * if absent, -1 after a 422 naming the field. */
static int parse_ordering(hk_call *c, wh_input *in)
{
    int t = hk_json_obj_get(&c->doc, 0, "ordering");
    if (t < 0) return 0;
    char *s = hk_json_type(&c->doc, t) == HK_J_STRING ? hk_json_strdup(&c->doc, t, 16, NULL) : NULL;
    int v = !s ? -1 : strcmp(s, "fifo") == 0 ? 1 : strcmp(s, "parallel") == 0 ? 0 : -1;
    free(s);
    if (v < 0) {
        hk_call_invalid(c, "ordering must be \"parallel\" or \"fifo\"");
        return -1;
    }
    in->f.fifo = v;
    in->f.has |= HK_WF_ORDERING;
    return 1;
}

/* Parses and validates every webhook field present in the body into a new wh_input (owned
 * by the call). Returns it, or NULL after sending a 4xx. */
static wh_input *parse_fields(hk_call *c, int patch)
{
    wh_input *in = hk_calloc(1, sizeof *in);
    c->data = in;
    c->data_free = wh_input_free;
    int r;
    /* name, or description as the seed calls it */
    if ((r = str_field(c, "name", 1, NAME_MAX_LEN, 0, &in->name)) < 0) return NULL;
    if (r == 0 && (r = str_field(c, "description", 1, NAME_MAX_LEN, 0, &in->name)) < 0) return NULL;
    if (in->name) {
        in->f.name = in->name;
        in->f.has |= HK_WF_NAME;
    }
    if ((r = str_field(c, "url", 1, 2048, 0, &in->url)) < 0) return NULL;
    if (r) {
        char msg[320];
        if (hk_url_validate(c->api->guard, in->url, c->api->cfg->https_only, msg, sizeof msg)) {
            hk_call_invalid(c, "%s", msg);
            return NULL;
        }
        in->f.url = in->url;
        in->f.has |= HK_WF_URL;
    }
    if ((r = str_field(c, "secret", SECRET_MIN, SECRET_MAX, 0, &in->secret)) < 0) return NULL;
    if (r) {
        for (const char *p = in->secret; *p; p++)
            if ((unsigned char)*p > 0x7e || *p == ' ') {
                hk_call_invalid(c, "secret must be printable ASCII without spaces");
                return NULL;
            }
        in->f.secret = in->secret;
        in->f.has |= HK_WF_SECRET;
    }
    if ((r = str_field(c, "userId", 1, 255, 1, &in->user_id)) < 0) return NULL;
    if (r) {
        in->f.user_id = in->user_id;
        in->f.has |= HK_WF_USER;
    }
    int st = hk_json_obj_get(&c->doc, 0, "status");
    if (st >= 0) {
        char *s = hk_json_strdup(&c->doc, st, 32, NULL);
        int v = s ? hk_wh_status_parse(s) : -1;
        free(s);
        if (v < 0 || v == HK_WH_FAILED) {
            hk_call_invalid(c, "status must be \"active\", \"paused\" or \"disabled\"");
            return NULL;
        }
        in->f.status = v;
        in->f.has |= HK_WF_STATUS;
    }
    if ((r = bool_field(c, "rateLimitEnabled", &in->f.rate_limit_enabled)) < 0) return NULL;
    if (r) in->f.has |= HK_WF_RATE_ENABLED;
    if ((r = int_field(c, "maxRequestsPerMinute", 1, RATE_MAX, &in->f.max_per_minute)) < 0)
        return NULL;
    if (r) in->f.has |= HK_WF_RATE_MAX;
    if ((r = int_field(c, "maxRetries", 0, MAX_RETRIES_MAX, &in->f.max_retries)) < 0) return NULL;
    if (r) in->f.has |= HK_WF_MAX_RETRIES;
    if (parse_events(c, in) < 0) return NULL;
    if (parse_headers(c, in) < 0) return NULL;
    if (parse_filter(c, in) < 0) return NULL;
    if (parse_schemes(c, in) < 0) return NULL;
    if (parse_schedule(c, in) < 0) return NULL; /* after maxRetries: it may set it */
    if (parse_timeout(c, in) < 0) return NULL;
    if (parse_ordering(c, in) < 0) return NULL;

    if (!patch) {
        if (!(in->f.has & HK_WF_NAME)) {
            hk_call_invalid(c, "name (or description) is required");
            return NULL;
        }
        if (!(in->f.has & HK_WF_URL)) {
            hk_call_invalid(c, "url is required");
            return NULL;
        }
        if (!(in->f.has & HK_WF_EVENTS)) {
            hk_call_invalid(c, "events is required: a non-empty array of event types");
            return NULL;
        }
        if (!(in->f.has & HK_WF_SECRET)) {
            hk_secret_generate(in->generated_secret);
            in->f.secret = in->generated_secret;
            in->f.has |= HK_WF_SECRET;
        }
    } else if (!in->f.has) {
        hk_call_invalid(c, "nothing to change: give at least one webhook field");
        return NULL;
    }
    return in;
}

static int valid_webhook_id(hk_call *c)
{
    if (hk_id_valid(c->params[0], "wh")) return 1;
    hk_call_error(c, 404, "not_found", "webhook not found", NULL, NULL);
    return 0;
}

/* ---- handlers ---------------------------------------------------------------------------------
 */

static void on_created(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc == HK_ELIMIT) {
        hk_call_error(c, 422, "limit_exceeded", req->err,
                      "HOOKD_MAX_WEBHOOKS_PER_ORG caps the webhooks of one organization.",
                      "Delete a webhook you no longer use, or ask the operator to raise the "
                      "limit.");
        return;
    }
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_webhook(&w, req->u.wh_create.out, 1);
    HK_LOG(HK_LOG_INFO, "webhook.created", HK_LS("webhook_id", req->u.wh_create.out->id),
           HK_LS("org", c->org));
    hk_call_json(c, 201);
}

void hk_h_webhook_create(hk_call *c)
{
    if (hk_call_parse_body(c, 0)) return;
    wh_input *in = parse_fields(c, 0);
    if (!in) return;
    c->req.kind = HK_REQ_WEBHOOK_CREATE;
    c->req.u.wh_create.f = &in->f;
    c->req.u.wh_create.max_per_org = c->api->cfg->max_webhooks_per_org;
    hk_call_submit(c, on_created);
}

static void on_listed(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhooks");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "webhooks");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.wh_list.n; i++) hk_render_webhook(&w, req->u.wh_list.items[i], 0);
    hk_jw_arr_close(&w);
    const hk_webhook *last = req->u.wh_list.n ? req->u.wh_list.items[req->u.wh_list.n - 1] : NULL;
    hk_render_paging(&w, req->u.wh_list.total, req->u.wh_list.capped, req->u.wh_list.page,
                     req->u.wh_list.limit, req->u.wh_list.more, last ? last->created_at : 0,
                     last ? last->id : NULL);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_webhook_list(hk_call *c)
{
    int page, limit;
    hk_cursor after;
    if (hk_call_paging(c, "wh", &page, &limit, &after)) return;
    char status[32];
    int st = -1;
    int r = hk_call_query(c, "status", status, sizeof status);
    if (r < 0) return;
    if (r == 0) {
        st = hk_wh_status_parse(status);
        if (st < 0) {
            hk_call_invalid(c, "status must be active, paused, disabled or failed");
            return;
        }
    }
    c->req.kind = HK_REQ_WEBHOOK_LIST;
    c->req.u.wh_list.status = st;
    c->req.u.wh_list.page = page;
    c->req.u.wh_list.limit = limit;
    c->req.u.wh_list.after = after;
    hk_call_submit(c, on_listed);
}

static void on_got(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_webhook(&w, req->u.wh_get.out, 0);
    hk_call_json(c, 200);
}

void hk_h_webhook_get(hk_call *c)
{
    if (!valid_webhook_id(c)) return;
    c->req.kind = HK_REQ_WEBHOOK_GET;
    c->req.u.wh_get.id = c->params[0];
    hk_call_submit(c, on_got);
}

static void on_patched(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    hk_webhook *wh = req->u.wh_patch.out;
    /* a manual disable's operational event may have made deliveries due: claim them too */
    hk_dispatch_webhook_changed(c->api->dispatch, wh,
                                req->u.wh_patch.unparked + req->u.wh_patch.emitted);
    HK_LOG(HK_LOG_INFO, "webhook.updated", HK_LS("webhook_id", wh->id),
           HK_LS("status", hk_wh_status_name(wh->status)),
           HK_LI("unparked", req->u.wh_patch.unparked));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_webhook(&w, wh, 0);
    hk_call_json(c, 200);
}

void hk_h_webhook_patch(hk_call *c)
{
    if (!valid_webhook_id(c)) return;
    if (hk_call_parse_body(c, 0)) return;
    wh_input *in = parse_fields(c, 1);
    if (!in) return;
    c->req.kind = HK_REQ_WEBHOOK_PATCH;
    c->req.u.wh_patch.id = c->params[0];
    c->req.u.wh_patch.f = &in->f;
    hk_call_submit(c, on_patched);
}

static void on_deleted(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    hk_dispatch_webhook_deleted(c->api->dispatch, c->params[0]);
    HK_LOG(HK_LOG_INFO, "webhook.deleted", HK_LS("webhook_id", c->params[0]),
           HK_LI("deliveries_failed", req->u.wh_delete.failed));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "id", c->params[0]);
    hk_jw_kstr(&w, "message", "webhook deleted");
    hk_jw_kint(&w, "failedDeliveries", req->u.wh_delete.failed);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_webhook_delete(hk_call *c)
{
    if (!valid_webhook_id(c)) return;
    c->req.kind = HK_REQ_WEBHOOK_DELETE;
    c->req.u.wh_delete.id = c->params[0];
    hk_call_submit(c, on_deleted);
}

/* ---- rotate-secret ----------------------------------------------------------------------------
 */

#define GRACE_MAX_S (7LL * 24 * 3600)

/* The answer of both rotations (the patch's HK_WF_ROTATE_KEY says which): the webhook, with
 * its new secret shown once after rotate-secret; the new public key is always shown. */
static void on_rotated(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    int key = (req->u.wh_patch.f->has & HK_WF_ROTATE_KEY) != 0;
    hk_webhook *wh = req->u.wh_patch.out;
    hk_dispatch_webhook_changed(c->api->dispatch, wh, 0);
    HK_LOG(HK_LOG_INFO, key ? "webhook.signing_key_rotated" : "webhook.secret_rotated",
           HK_LS("webhook_id", wh->id),
           HK_LI("previous_expires_at",
                 key ? wh->prev_signing_key_expires_at : wh->prev_secret_expires_at));
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_webhook(&w, wh, !key);
    hk_call_json(c, 200);
}

/* POST /v1/{id}/rotate-secret {"graceSeconds"?: 0..604800 (default 86400), "secret"?: S}:
 * a new secret (generated unless given), returned once; the old one keeps signing beside it
 * until the grace period ends. */
void hk_h_webhook_rotate(hk_call *c)
{
    if (!valid_webhook_id(c)) return;
    if (hk_call_parse_body(c, 1)) return;
    wh_input *in = hk_calloc(1, sizeof *in);
    c->data = in;
    c->data_free = wh_input_free;
    int grace = 86400, r;
    if (int_field(c, "graceSeconds", 0, GRACE_MAX_S, &grace) < 0) return;
    if ((r = str_field(c, "secret", SECRET_MIN, SECRET_MAX, 0, &in->secret)) < 0) return;
    if (r) {
        for (const char *p = in->secret; *p; p++)
            if ((unsigned char)*p > 0x7e || *p == ' ') {
                hk_call_invalid(c, "secret must be printable ASCII without spaces");
                return;
            }
        in->f.secret = in->secret;
    } else {
        hk_secret_generate(in->generated_secret);
        in->f.secret = in->generated_secret;
    }
    in->f.has = HK_WF_SECRET | HK_WF_ROTATE;
    in->f.prev_expires_at = grace > 0 ? hk_now_ms() + (int64_t)grace * 1000 : 0;
    c->req.kind = HK_REQ_WEBHOOK_PATCH;
    c->req.u.wh_patch.id = c->params[0];
    c->req.u.wh_patch.f = &in->f;
    hk_call_submit(c, on_rotated);
}

/* POST /v1/{id}/rotate-signing-key {"graceSeconds"?: 0..604800 (default 86400)}: a new
 * Ed25519 key pair; the old key keeps signing (a second v1a) until the grace period ends. The
 * answer shows the new publicKey and, during the grace period, previousPublicKey. */
void hk_h_webhook_rotate_key(hk_call *c)
{
    if (!valid_webhook_id(c)) return;
    if (hk_call_parse_body(c, 1)) return;
    wh_input *in = hk_calloc(1, sizeof *in);
    c->data = in;
    c->data_free = wh_input_free;
    int grace = 86400;
    if (int_field(c, "graceSeconds", 0, GRACE_MAX_S, &grace) < 0) return;
    if (set_new_key(c, in) < 0) return;
    in->f.has |= HK_WF_ROTATE_KEY;
    in->f.prev_expires_at = grace > 0 ? hk_now_ms() + (int64_t)grace * 1000 : 0;
    c->req.kind = HK_REQ_WEBHOOK_PATCH;
    c->req.u.wh_patch.id = c->params[0];
    c->req.u.wh_patch.f = &in->f;
    hk_call_submit(c, on_rotated);
}

/* ---- sign-test-event --------------------------------------------------------------------------
 */

typedef struct sign_test {
    char *type;
    hk_buf payload; /* compact JSON object */
} sign_test;

static void sign_test_free(void *p)
{
    sign_test *t = p;
    if (!t) return;
    free(t->type);
    hk_buf_free(&t->payload);
    free(t);
}

static void on_sign_test_webhook(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    const hk_webhook *wh = req->u.wh_get.out;
    sign_test *t = c->data;
    const hk_config *cfg = c->api->cfg;

    /* the data as a delivery carries it: after excludeFields */
    hk_buf data;
    hk_buf_init(&data, HK_BUF_UNLIMITED);
    hk_filter f;
    char err[256];
    int filtered = 0;
    if (wh->filtering_options &&
        hk_filter_parse(wh->filtering_options, strlen(wh->filtering_options), &f, err,
                        sizeof err) == 0) {
        if (hk_filter_excludes(&f)) {
            hk_jdoc d = {0};
            if (hk_json_parse(&d, t->payload.data, t->payload.len, 1u << 20, 64) == 0) {
                hk_filter_apply_exclude(&f, &d, 0, &data);
                filtered = 1;
            }
            hk_json_free(&d);
        }
        hk_filter_free(&f);
    } else if (wh->filtering_options) {
        hk_filter_free(&f);
    }
    if (!filtered) hk_buf_append(&data, t->payload.data, t->payload.len);

    char event_id[HK_ID_MAX], delivery_id[HK_ID_MAX];
    hk_id_new("whev", event_id);
    hk_id_new("whde", delivery_id);
    int64_t now = hk_now_ms();
    hk_blob *body = hk_envelope_render(event_id, t->type, now, data.data, data.len);
    hk_buf_free(&data);

    char *fixed = hk_request_static_headers(cfg, wh);
    hk_sign_key keys[2];
    hk_ed_key ed[2];
    int nkeys = hk_request_keys(wh, now, keys);
    int ned = hk_request_ed_keys(wh, now, ed);
    hk_buf lines;
    hk_buf_init(&lines, HK_BUF_UNLIMITED);
    hk_buf_puts(&lines, fixed);
    hk_request_attempt_headers(wh, keys, nkeys, ed, ned, delivery_id, event_id, now / 1000,
                               body->data, body->len, &lines);
    free(fixed);
    memset(keys, 0, sizeof keys);
    hk_ed_keys_clear(ed, 2);

    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "url", wh->url);
    hk_jw_key(&w, "headers");
    hk_buf hj;
    hk_buf_init(&hj, HK_BUF_UNLIMITED);
    hk_request_headers_json(hk_buf_cstr(&lines), &hj);
    hk_jw_raw(&w, hj.data, hj.len);
    hk_buf_free(&hj);
    hk_buf_free(&lines);
    hk_jw_kraw(&w, "body", body->data, body->len);
    hk_jw_key(&w, "rawBody");
    hk_jw_strn(&w, body->data, body->len);
    hk_jw_obj_close(&w);
    hk_blob_unref(body);
    hk_call_json(c, 200);
}

/* POST /v1/sign-test-event {"webhookId","event","payload"?}: what a delivery of that event to
 * that webhook would send, signed with its live secrets; nothing is stored or sent. */
void hk_h_sign_test_event(hk_call *c)
{
    if (hk_call_parse_body(c, 0)) return;
    sign_test *t = hk_calloc(1, sizeof *t);
    hk_buf_init(&t->payload, HK_BUF_UNLIMITED);
    c->data = t;
    c->data_free = sign_test_free;
    char *wid = NULL;
    int r = str_field(c, "webhookId", 1, HK_ID_MAX - 1, 0, &wid);
    if (r < 0) return;
    if (r == 0) {
        hk_call_invalid(c, "webhookId is required");
        return;
    }
    hk_strlcpy(c->params[0], wid, sizeof c->params[0]);
    free(wid);
    if ((r = str_field(c, "event", 1, 255, 0, &t->type)) < 0) return;
    if (r == 0 || !hk_event_type_valid(t->type)) {
        hk_call_invalid(c, "event must be an event type of [A-Za-z0-9_.-], 1 to 255 characters");
        return;
    }
    int p = hk_json_obj_get(&c->doc, 0, "payload");
    if (p < 0) {
        hk_buf_puts(&t->payload, "{}");
    } else if (hk_json_type(&c->doc, p) != HK_J_OBJECT) {
        hk_call_invalid(c, "payload must be a JSON object");
        return;
    } else {
        hk_json_compact(&c->doc, p, &t->payload);
    }
    if (!valid_webhook_id(c)) return;
    c->req.kind = HK_REQ_WEBHOOK_GET;
    c->req.u.wh_get.id = c->params[0];
    hk_call_submit(c, on_sign_test_webhook);
}
