/*
 * kumomta.c: the mapping of bus messages to events (SPEC §5), see kumomta.h. Every rule that
 * decides what a NATS message becomes lives here: the KumoMTA log record table and its `data`
 * shape and idempotency key, the webhook.triggered form, and the generic form. The input is
 * parsed with the strict parser of core/json.h and strings are copied as they were sent (only
 * whitespace between tokens goes), so `data` keeps every number and escape of the record.
 */
#include "ingest/kumomta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"
#include "core/crypto.h"
#include "core/metrics.h"
#include "store/match.h"

#define MAX_DEPTH 64
#define USER_MAX  255

/* ---- small helpers ---------------------------------------------------------------------- */

void hk_bus_event_init(hk_bus_event *e)
{
    memset(e, 0, sizeof *e);
    hk_buf_init(&e->data, HK_BUF_UNLIMITED);
}

void hk_bus_event_free(hk_bus_event *e)
{
    free(e->org);
    free(e->type);
    free(e->idem_key);
    free(e->user_id);
    hk_buf_free(&e->data);
    hk_bus_event_init(e);
}

/* Writes a reason into why and returns verdict (HK_BUS_BAD or HK_BUS_IGNORED). */
static int verdict(int v, char *why, size_t whylen, const char *fmt, ...) HK_PRINTF(4, 5);
static int verdict(int v, char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return v;
}

/* A failed mapping leaves *out empty. */
static int fail(hk_bus_event *out, int v)
{
    hk_bus_event_free(out);
    return v;
}

int hk_bus_org_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > HK_BUS_ORG_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == ':' || *s == '-'))
            return 0;
    return 1;
}

int hk_bus_key_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > HK_BUS_KEY_MAX) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

void hk_bus_key_set(char **key, const char *s)
{
    free(*key);
    if (hk_bus_key_valid(s)) {
        *key = hk_strdup(s);
        return;
    }
    char hex[65];
    hk_sha256_hex(s, strlen(s), hex);
    size_t n = strlen("sha256:") + 64 + 1;
    *key = hk_malloc(n);
    snprintf(*key, n, "sha256:%s", hex);
}

int hk_bus_is_kumomta_subject(const char *subject)
{
    return subject && strncmp(subject, "kumomta.event", strlen("kumomta.event")) == 0;
}

int hk_nats_subject_match(const char *pattern, const char *subject)
{
    const char *p = pattern, *s = subject;
    if (!p || !s || !*p || !*s) return 0;
    for (;;) {
        size_t pl = strcspn(p, "."), sl = strcspn(s, ".");
        if (pl == 1 && p[0] == '>') return sl > 0;
        if (sl == 0) return 0;
        if (!(pl == 1 && p[0] == '*') && (pl != sl || memcmp(p, s, pl) != 0)) return 0;
        p += pl;
        s += sl;
        if (!*p || !*s) return !*p && !*s;
        p++;
        s++;
    }
}

/* The decoded string at tok, or NULL if tok is absent, not a string, holds U+0000 or is longer
 * than max bytes. */
static char *str_at(const hk_jdoc *d, int tok, size_t max)
{
    if (hk_json_type(d, tok) != HK_J_STRING) return NULL;
    return hk_json_strdup(d, tok, max, NULL);
}

/* Writes the value at tok through w, compact and byte for byte, or `null` if tok is absent. */
static void put_value(hk_jw *w, const hk_jdoc *d, int tok)
{
    if (tok < 0) {
        hk_jw_null(w);
        return;
    }
    hk_buf v;
    hk_buf_init(&v, HK_BUF_UNLIMITED);
    hk_json_compact(d, tok, &v);
    hk_jw_raw(w, hk_buf_cstr(&v), v.len);
    hk_buf_free(&v);
}

/* The value of the member of object obj whose name equals name ignoring ASCII case (the
 * first one), or -1. Header names are case-insensitive (RFC 5322). */
static int obj_get_ci(const hk_jdoc *d, int obj, const char *name)
{
    if (hk_json_type(d, obj) != HK_J_OBJECT) return -1;
    hk_buf k;
    hk_buf_init(&k, 1024);
    int found = -1;
    uint32_t n = d->toks[obj].size;
    int key = hk_json_first(d, obj);
    for (uint32_t i = 0; i < n && found < 0; i++, key = hk_json_next(d, key + 1)) {
        hk_buf_reset(&k);
        if (hk_json_str(d, key, &k) == 0 && k.len == strlen(name) &&
            strncasecmp(hk_buf_cstr(&k), name, k.len) == 0)
            found = key + 1;
    }
    hk_buf_free(&k);
    return found;
}

/* How many members of object obj are named name (exactly). */
static int member_count(const hk_jdoc *d, int obj, const char *name)
{
    int count = 0;
    uint32_t n = d->toks[obj].size;
    int key = hk_json_first(d, obj);
    for (uint32_t i = 0; i < n; i++, key = hk_json_next(d, key + 1))
        if (hk_json_str_eq(d, key, name)) count++;
    return count;
}

/* Trims ASCII spaces and tabs at both ends of s, in place. */
static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t') i++;
    if (i) memmove(s, s + i, n - i + 1);
}

/* ---- KumoMTA log records -------------------------------------------------------------------- */

typedef struct kumo_map {
    const char *record; /* KumoMTA record type */
    const char *type;   /* hookd event type, NULL = ignored */
    const char *status; /* data.status */
} kumo_map;

static const kumo_map kumo_table[] = {
    {"Delivery", "email.delivered", "delivered"},
    {"Bounce", "email.bounced", "bounced"},
    {"AdminBounce", "email.bounced", "bounced"},
    {"OOB", "email.bounced", "bounced"},
    {"TransientFailure", "email.delivery_delayed", "delivery_delayed"},
    {"Feedback", "email.complained", "complained"},
    {"Expiration", "email.failed", "failed"},
    /* KumoMTA record types with no hookd event: ignored, not malformed */
    {"Reception", NULL, NULL},
    {"Rejection", NULL, NULL},
    {"Delayed", NULL, NULL},
    {"AdminRebind", NULL, NULL},
    {"DeferredInjectionRebind", NULL, NULL},
    {"XferOut", NULL, NULL},
    {"XferIn", NULL, NULL},
    {"Any", NULL, NULL},
};

/* A header of the record, decoded and non-empty, or NULL. */
static char *kumo_header(const hk_jdoc *d, int headers, const char *name, size_t max)
{
    char *v = str_at(d, obj_get_ci(d, headers, name), max);
    if (v) trim(v);
    if (v && !*v) {
        free(v);
        v = NULL;
    }
    return v;
}

int hk_kumo_map(const hk_jdoc *d, hk_bus_event *out, char *why, size_t whylen)
{
    if (hk_json_type(d, 0) != HK_J_OBJECT)
        return verdict(HK_BUS_BAD, why, whylen, "a KumoMTA log record must be a JSON object");
    char *rtype = str_at(d, hk_json_obj_get(d, 0, "type"), 64);
    if (!rtype) return verdict(HK_BUS_BAD, why, whylen, "the record has no string \"type\"");
    const kumo_map *m = NULL;
    for (size_t i = 0; i < HK_ARRAY_LEN(kumo_table); i++)
        if (strcmp(kumo_table[i].record, rtype) == 0) m = &kumo_table[i];
    if (!m || !m->type) {
        int v = verdict(m ? HK_BUS_IGNORED : HK_BUS_BAD, why, whylen,
                        m ? "KumoMTA %.40s records make no event"
                          : "unknown KumoMTA record type \"%.40s\"",
                        rtype);
        free(rtype);
        return v;
    }
    free(rtype);
    int headers = hk_json_obj_get(d, 0, "headers");
    char *org = kumo_header(d, headers, "X-Org-ID", 1024);
    if (!org || !hk_bus_org_valid(org)) {
        free(org);
        return verdict(HK_BUS_BAD, why, whylen,
                       "no organization: headers[\"X-Org-ID\"] is missing or not "
                       "[A-Za-z0-9_.:-]{1,128}");
    }
    out->org = org;
    char *rid = str_at(d, hk_json_obj_get(d, 0, "id"), 1024);
    if (!rid || !*rid) {
        free(rid);
        return fail(out, verdict(HK_BUS_BAD, why, whylen, "the record has no string \"id\""));
    }
    char *email_id = kumo_header(d, headers, "X-Email-Log-ID", 4096);
    if (!email_id) email_id = hk_strdup(rid);

    out->source = HK_SRC_KUMOMTA;
    out->type = hk_strdup(m->type);
    hk_jw w;
    hk_jw_init(&w, &out->data);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "email_id", email_id);
    hk_jw_key(&w, "from");
    int sender = hk_json_obj_get(d, 0, "sender");
    put_value(&w, d, hk_json_type(d, sender) == HK_J_STRING ? sender : -1);
    hk_jw_key(&w, "to");
    int rcpt = hk_json_obj_get(d, 0, "recipient");
    if (hk_json_type(d, rcpt) == HK_J_ARRAY) { /* multi-recipient records (newer KumoMTA) */
        put_value(&w, d, rcpt);
    } else {
        hk_jw_arr_open(&w);
        if (hk_json_type(d, rcpt) == HK_J_STRING) put_value(&w, d, rcpt);
        hk_jw_arr_close(&w);
    }
    hk_jw_key(&w, "subject");
    int subj = obj_get_ci(d, headers, "Subject");
    put_value(&w, d, hk_json_type(d, subj) == HK_J_STRING ? subj : -1);
    hk_jw_kstr(&w, "status", m->status);
    int resp = hk_json_obj_get(d, 0, "response");
    if (strcmp(m->status, "delivered") != 0 && hk_json_type(d, resp) == HK_J_OBJECT) {
        hk_jw_key(&w, "error");
        hk_jw_obj_open(&w);
        hk_jw_key(&w, "code");
        put_value(&w, d, hk_json_obj_get(d, resp, "code"));
        hk_jw_key(&w, "message");
        put_value(&w, d, hk_json_obj_get(d, resp, "content"));
        hk_jw_obj_close(&w);
    }
    hk_jw_obj_close(&w);

    hk_buf key;
    hk_buf_init(&key, HK_BUF_UNLIMITED);
    hk_buf_printf(&key, "%s:%s:%s:%s:%s", org, m->type, email_id, m->record, rid);
    hk_bus_key_set(&out->idem_key, hk_buf_cstr(&key));
    hk_buf_free(&key);
    free(email_id);
    free(rid);
    if (hk_jw_error(&w))
        return fail(out, verdict(HK_BUS_BAD, why, whylen, "the record cannot be encoded"));
    return HK_BUS_EVENT;
}

/* ---- webhook.triggered and the generic form ----------------------------------------------- */

/* organizationId, idempotencyKey and userId of a non-KumoMTA body into out. */
static int common_fields(const hk_jdoc *d, hk_bus_event *out, char *why, size_t whylen)
{
    int ot = hk_json_obj_get(d, 0, "organizationId");
    char *org = str_at(d, ot, HK_BUS_ORG_MAX);
    if (!org || !hk_bus_org_valid(org)) {
        free(org);
        return verdict(HK_BUS_BAD, why, whylen,
                       "no organization: organizationId is missing or not "
                       "[A-Za-z0-9_.:-]{1,128}");
    }
    out->org = org;
    out->source = HK_SRC_NATS;
    if (member_count(d, 0, "organizationId") > 1)
        return verdict(HK_BUS_BAD, why, whylen, "organizationId appears more than once");
    int kt = hk_json_obj_get(d, 0, "idempotencyKey");
    if (kt >= 0 && hk_json_type(d, kt) != HK_J_NULL) {
        char *k = str_at(d, kt, HK_BUS_KEY_MAX);
        if (!k || !hk_bus_key_valid(k)) {
            free(k);
            return verdict(HK_BUS_BAD, why, whylen,
                           "idempotencyKey must be a string of 1 to %d characters without control "
                           "characters",
                           HK_BUS_KEY_MAX);
        }
        out->idem_key = k;
    }
    int ut = hk_json_obj_get(d, 0, "userId");
    if (ut >= 0 && hk_json_type(d, ut) != HK_J_NULL) {
        char *u = str_at(d, ut, USER_MAX);
        if (!u || !hk_bus_key_valid(u)) {
            free(u);
            return verdict(HK_BUS_BAD, why, whylen, "userId must be a string of 1 to %d characters",
                           USER_MAX);
        }
        out->user_id = u;
    }
    return HK_BUS_EVENT;
}

/* The event type at tok (required) into out->type. */
static int take_type(const hk_jdoc *d, int tok, const char *field, hk_bus_event *out, char *why,
                     size_t whylen)
{
    char *t = str_at(d, tok, HK_EVENT_TYPE_MAX);
    if (!t || !hk_event_type_valid(t)) {
        free(t);
        return verdict(HK_BUS_BAD, why, whylen,
                       "%s is required and must match [A-Za-z0-9_.-]{1,255}", field);
    }
    if (hk_event_type_reserved(t)) {
        free(t);
        return verdict(HK_BUS_BAD, why, whylen,
                       "%s: the prefix \"hookd.\" is reserved for hookd's own operational events",
                       field);
    }
    out->type = t;
    return HK_BUS_EVENT;
}

static int map_triggered(const hk_jdoc *d, hk_bus_event *out, char *why, size_t whylen)
{
    int v = common_fields(d, out, why, whylen);
    if (v == HK_BUS_EVENT)
        v = take_type(d, hk_json_obj_get(d, 0, "event"), "event", out, why, whylen);
    if (v != HK_BUS_EVENT) return v;
    int pt = hk_json_obj_get(d, 0, "payload");
    if (hk_json_type(d, pt) != HK_J_OBJECT)
        return verdict(HK_BUS_BAD, why, whylen, "payload is required and must be a JSON object");
    hk_json_compact(d, pt, &out->data);
    return HK_BUS_EVENT;
}

static int map_generic(const char *subject, const hk_jdoc *d, hk_bus_event *out, char *why,
                       size_t whylen)
{
    int v = common_fields(d, out, why, whylen);
    if (v != HK_BUS_EVENT) return v;
    int tt = hk_json_obj_get(d, 0, "type");
    if (tt >= 0) {
        v = take_type(d, tt, "type", out, why, whylen);
        if (v != HK_BUS_EVENT) return v;
    } else if (hk_event_type_reserved(subject)) {
        return verdict(HK_BUS_BAD, why, whylen,
                       "the subject (the event type when the body has no \"type\"): the prefix "
                       "\"hookd.\" is reserved for hookd's own operational events");
    } else if (hk_event_type_valid(subject)) {
        out->type = hk_strdup(subject);
    } else {
        return verdict(HK_BUS_BAD, why, whylen,
                       "the subject is not a valid event type and the body has no \"type\"");
    }
    int dt = hk_json_obj_get(d, 0, "data");
    if (dt >= 0) {
        if (hk_json_type(d, dt) != HK_J_OBJECT)
            return verdict(HK_BUS_BAD, why, whylen, "data must be a JSON object");
        hk_json_compact(d, dt, &out->data);
        return HK_BUS_EVENT;
    }
    /* data: the body without organizationId, members copied byte for byte */
    hk_buf *b = &out->data;
    hk_buf_putc(b, '{');
    int first = 1;
    uint32_t n = d->toks[0].size;
    int key = hk_json_first(d, 0);
    for (uint32_t i = 0; i < n; i++, key = hk_json_next(d, key + 1)) {
        if (hk_json_str_eq(d, key, "organizationId")) continue;
        if (!first) hk_buf_putc(b, ',');
        first = 0;
        hk_buf_append(b, d->src + d->toks[key].start, d->toks[key].end - d->toks[key].start);
        hk_buf_putc(b, ':');
        hk_json_compact(d, key + 1, b);
    }
    hk_buf_putc(b, '}');
    return HK_BUS_EVENT;
}

int hk_bus_map(const char *subject, const char *body, size_t len, hk_bus_event *out, char *why,
               size_t whylen)
{
    if (why && whylen) why[0] = '\0';
    if (!subject || !*subject)
        return verdict(HK_BUS_BAD, why, whylen, "the message has no subject");
    if (len == 0) return verdict(HK_BUS_BAD, why, whylen, "empty body: JSON expected");
    if (len >= UINT32_MAX) return verdict(HK_BUS_BAD, why, whylen, "body too large");
    hk_jdoc doc;
    /* a token needs at least one byte of input, plus one for the root */
    int rc = hk_json_parse(&doc, body, len, (uint32_t)len + 1, MAX_DEPTH);
    if (rc) {
        int v = verdict(HK_BUS_BAD, why, whylen, "bad JSON: %s", doc.err);
        hk_json_free(&doc);
        return v;
    }
    int v;
    if (hk_bus_is_kumomta_subject(subject)) {
        v = hk_kumo_map(&doc, out, why, whylen);
    } else if (hk_json_type(&doc, 0) != HK_J_OBJECT) {
        v = verdict(HK_BUS_BAD, why, whylen, "the body must be a JSON object");
    } else if (strcmp(subject, "webhook.triggered") == 0) {
        v = map_triggered(&doc, out, why, whylen);
    } else {
        v = map_generic(subject, &doc, out, why, whylen);
    }
    hk_json_free(&doc);
    if (v != HK_BUS_EVENT) hk_bus_event_free(out);
    return v;
}
