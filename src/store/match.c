/*
 * match.c: which webhooks an event goes to, and what they receive (see match.h). Event types
 * and subscription patterns are checked and matched segment by segment; filteringOptions are
 * validated once into an hk_filter (conditions kept as compact JSON plus its parsed doc, the
 * excluded keys as C strings) and then applied per event to the event's parsed data.
 */
#include "store/match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 for the characters of an event type: [A-Za-z0-9_.-]. */
static int type_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int hk_event_type_valid(const char *s)
{
    if (!s) return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= HK_EVENT_TYPE_MAX || !type_char((unsigned char)s[n])) return 0;
    return n > 0;
}

int hk_pattern_valid(const char *s)
{
    if (!s) return 0;
    size_t n = 0, seg = 0; /* seg: start of the current dot-separated segment */
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= HK_EVENT_TYPE_MAX) return 0;
        if (c == '*') {
            /* a '*' must be the whole segment: first in it and followed by '.' or the end */
            if (n != seg || (s[n + 1] && s[n + 1] != '.')) return 0;
        } else if (!type_char(c)) {
            return 0;
        }
        if (c == '.') seg = n + 1;
    }
    return n > 0;
}

int hk_event_type_reserved(const char *s)
{
    return s && strncmp(s, "hookd.", 6) == 0;
}

/* A '*' segment stands for exactly one non-empty segment; other segments match literally. A
 * reserved type is matched only by a pattern that names "hookd" first; "hookd.*" takes them
 * all. */
int hk_pattern_match(const char *pattern, const char *type)
{
    if (!pattern || !type) return 0;
    if (hk_event_type_reserved(type)) {
        if (!hk_event_type_reserved(pattern)) return 0;
        if (strcmp(pattern, "hookd.*") == 0) return 1;
    } else if (pattern[0] == '*' && pattern[1] == '\0') {
        return 1;
    }
    const char *p = pattern, *t = type;
    for (;;) {
        const char *pe = strchr(p, '.'), *te = strchr(t, '.');
        size_t pn = pe ? (size_t)(pe - p) : strlen(p);
        size_t tn = te ? (size_t)(te - t) : strlen(t);
        if (pn == 1 && p[0] == '*') {
            if (tn == 0) return 0;
        } else if (pn != tn || memcmp(p, t, pn) != 0) {
            return 0;
        }
        if (!pe || !te) return !pe && !te; /* both must end together */
        p = pe + 1;
        t = te + 1;
    }
}

/* ---- filteringOptions -------------------------------------------------------------------- */

static int set_err(char *err, size_t errlen, const char *fmt, ...) HK_PRINTF(3, 4);
static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return HK_EINVAL;
}

/* Reads "matchConditions" (value token v of doc d) into f. */
static int parse_conditions(const hk_jdoc *d, int v, hk_filter *f, char *err, size_t errlen)
{
    if (hk_json_type(d, v) != HK_J_OBJECT)
        return set_err(err, errlen, "filteringOptions.matchConditions must be an object");
    if (d->toks[v].size > HK_FILTER_MAX_CONDITIONS)
        return set_err(err, errlen, "filteringOptions.matchConditions may have at most %d keys",
                       HK_FILTER_MAX_CONDITIONS);
    if (hk_json_obj_dup_key(d, v))
        return set_err(err, errlen, "filteringOptions.matchConditions has a duplicate key");
    if (d->toks[v].size == 0) return 0; /* no condition: same as none */
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_json_compact(d, v, &b);
    f->match_json = hk_buf_steal(&b);
    size_t n = strlen(f->match_json);
    if (hk_json_parse(&f->match_doc, f->match_json, n, (uint32_t)(n / 2 + 16),
                      HK_JSON_MAX_DEPTH_DEFAULT))
        return set_err(err, errlen, "filteringOptions.matchConditions: %s", f->match_doc.err);
    return 0;
}

/* Reads "excludeFields" (value token v of doc d) into f. */
static int parse_exclude(const hk_jdoc *d, int v, hk_filter *f, char *err, size_t errlen)
{
    if (hk_json_type(d, v) != HK_J_ARRAY)
        return set_err(err, errlen, "filteringOptions.excludeFields must be an array of strings");
    uint32_t n = d->toks[v].size;
    if (n > HK_FILTER_MAX_EXCLUDE)
        return set_err(err, errlen, "filteringOptions.excludeFields may have at most %d entries",
                       HK_FILTER_MAX_EXCLUDE);
    if (n == 0) return 0;
    f->exclude = hk_calloc(n, sizeof *f->exclude);
    int e = hk_json_first(d, v);
    for (uint32_t i = 0; i < n; i++, e = hk_json_next(d, e)) {
        if (hk_json_type(d, e) != HK_J_STRING)
            return set_err(err, errlen,
                           "filteringOptions.excludeFields must be an array of strings");
        const char *why = NULL;
        char *s = hk_json_strdup(d, e, HK_EVENT_TYPE_MAX, &why);
        if (!s || !*s) {
            free(s);
            return set_err(err, errlen,
                           "filteringOptions.excludeFields[%u] must be a non-empty string of at "
                           "most %d bytes without NUL",
                           i, HK_EVENT_TYPE_MAX);
        }
        f->exclude[f->nexclude++] = s;
    }
    return 0;
}

int hk_filter_parse(const char *json, size_t len, hk_filter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (err && errlen) err[0] = '\0';
    hk_jdoc d;
    int rc = hk_json_parse(&d, json, len, (uint32_t)HK_MIN(len / 2 + 16, (size_t)UINT32_MAX),
                           HK_JSON_MAX_DEPTH_DEFAULT);
    if (rc) {
        rc = set_err(err, errlen, "filteringOptions is not valid JSON: %s", d.err);
        goto out;
    }
    int t = hk_json_type(&d, 0);
    if (t == HK_J_NULL) goto out;
    if (t != HK_J_OBJECT) {
        rc = set_err(err, errlen, "filteringOptions must be an object");
        goto out;
    }
    if (hk_json_obj_dup_key(&d, 0)) {
        rc = set_err(err, errlen, "filteringOptions has a duplicate key");
        goto out;
    }
    for (int k = hk_json_first(&d, 0), i = 0; i < (int)d.toks[0].size;
         i++, k = hk_json_next(&d, k + 1)) {
        if (hk_json_str_eq(&d, k, "matchConditions")) {
            rc = parse_conditions(&d, k + 1, f, err, errlen);
        } else if (hk_json_str_eq(&d, k, "excludeFields")) {
            rc = parse_exclude(&d, k + 1, f, err, errlen);
        } else {
            /* name the key if it is short and printable */
            char *name = hk_json_strdup(&d, k, 64, NULL);
            int printable = name != NULL;
            for (const char *c = name; printable && *c; c++)
                printable = (unsigned char)*c >= 0x20 && *c != '"' && *c != 0x7f;
            if (printable)
                rc = set_err(err, errlen,
                             "filteringOptions has an unknown field \"%s\" (allowed: "
                             "matchConditions, excludeFields)",
                             name);
            else
                rc = set_err(err, errlen,
                             "filteringOptions has an unknown field (allowed: matchConditions, "
                             "excludeFields)");
            free(name);
        }
        if (rc) break;
    }
out:
    hk_json_free(&d);
    return rc;
}

void hk_filter_free(hk_filter *f)
{
    if (f->match_json) hk_json_free(&f->match_doc);
    free(f->match_json);
    for (int i = 0; i < f->nexclude; i++) free(f->exclude[i]);
    free(f->exclude);
    memset(f, 0, sizeof *f);
}

int hk_filter_canonical(const hk_filter *f, hk_buf *out)
{
    hk_jw w;
    hk_jw_init(&w, out);
    hk_jw_obj_open(&w);
    if (f->match_json) hk_jw_kraw(&w, "matchConditions", f->match_json, strlen(f->match_json));
    if (f->nexclude) {
        hk_jw_key(&w, "excludeFields");
        hk_jw_arr_open(&w);
        for (int i = 0; i < f->nexclude; i++) hk_jw_str(&w, f->exclude[i]);
        hk_jw_arr_close(&w);
    }
    hk_jw_obj_close(&w);
    return hk_jw_error(&w);
}

/* The value token of the LAST member of object obj (in d) whose key equals key token k of
 * doc kd (decoded comparison), or -1. The last one because that is the value a receiver reads:
 * JSON.parse, Python's json, Go's encoding/json and most others keep the last of duplicate keys,
 * so a condition checked on the first one could be passed by {"plan":"pro","plan":"free"}
 * while the receiver acts on "free". */
static int member_by_key(const hk_jdoc *d, int obj, const hk_jdoc *kd, int k)
{
    int found = -1;
    int m = hk_json_first(d, obj);
    for (uint32_t i = 0; i < d->toks[obj].size; i++, m = hk_json_next(d, m + 1))
        if (hk_json_equal(d, m, kd, k)) found = m + 1;
    return found;
}

int hk_filter_matches(const hk_filter *f, const hk_jdoc *data, int data_tok)
{
    if (!f->match_json) return 1;
    if (hk_json_type(data, data_tok) != HK_J_OBJECT) return 0;
    const hk_jdoc *c = &f->match_doc;
    int k = hk_json_first(c, 0);
    for (uint32_t i = 0; i < c->toks[0].size; i++, k = hk_json_next(c, k + 1)) {
        int v = member_by_key(data, data_tok, c, k);
        if (v < 0 || !hk_json_equal(data, v, c, k + 1)) return 0;
    }
    return 1;
}

/* 1 if key token k of d is one of f's excluded keys. */
static int excluded(const hk_filter *f, const hk_jdoc *d, int k)
{
    for (int i = 0; i < f->nexclude; i++)
        if (hk_json_str_eq(d, k, f->exclude[i])) return 1;
    return 0;
}

int hk_filter_apply_exclude(const hk_filter *f, const hk_jdoc *data, int data_tok, hk_buf *out)
{
    if (hk_json_type(data, data_tok) != HK_J_OBJECT || !f->nexclude)
        return hk_json_compact(data, data_tok, out);
    size_t old = out->len;
    int rc = hk_buf_putc(out, '{'), first = 1;
    int k = hk_json_first(data, data_tok);
    for (uint32_t i = 0; rc == 0 && i < data->toks[data_tok].size;
         i++, k = hk_json_next(data, k + 1)) {
        if (excluded(f, data, k)) continue;
        if (!first) rc = hk_buf_putc(out, ',');
        first = 0;
        if (rc == 0) rc = hk_json_compact(data, k, out);
        if (rc == 0) rc = hk_buf_putc(out, ':');
        if (rc == 0) rc = hk_json_compact(data, k + 1, out);
    }
    if (rc == 0) rc = hk_buf_putc(out, '}');
    if (rc) out->len = old;
    return rc;
}
