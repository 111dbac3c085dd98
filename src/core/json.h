/*
 * json.h: hookd's one JSON mechanism, a strict validating parser that keeps spans into the
 * input, and a writer.
 *
 * Why not a DOM library: a webhook service must deliver the customer's `data` exactly as sent.
 * A DOM round trip changes numbers (1e400, 12345678901234567890, 0.1 printed with 17 digits)
 * and costs an allocation per node. This parser instead produces a flat array of tokens, each
 * a span of the input; numbers and strings are passed through byte for byte when re-emitted
 * (hk_json_compact), and decoded only when a field is read.
 *
 * Parser (RFC 8259, strict): one value with optional surrounding whitespace (space, \t, \r,
 * \n); no comments, trailing commas, leading zeros, NaN/Infinity, single quotes or raw control
 * characters in strings; escapes checked, \u surrogates must pair; the input must be valid
 * UTF-8 (no overlongs, no encoded surrogates, nothing above U+10FFFF). Nesting is capped by
 * max_depth, size by max_tokens. Duplicate keys are allowed by the parser (objects are
 * passed through as sent); hk_json_obj_get returns the first match, and callers that read
 * named fields reject duplicates with hk_json_obj_dup_key.
 *
 * Token layout: a container's token is followed by its children in order; an object's children
 * are key, value, key, value... (keys are HK_J_STRING tokens). `next` is the index just past a
 * token and all its descendants, so siblings are reached by following `next`.
 */
#ifndef HK_JSON_H
#define HK_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/common.h"

enum hk_jtype {
    HK_J_NONE = 0,
    HK_J_OBJECT,
    HK_J_ARRAY,
    HK_J_STRING,
    HK_J_NUMBER,
    HK_J_TRUE,
    HK_J_FALSE,
    HK_J_NULL,
};

typedef struct hk_jtok {
    uint32_t start; /* first byte of the value in src (the '"' of a string, '{' of an object) */
    uint32_t end;   /* one past its last byte */
    uint32_t size;  /* object: number of members; array: number of elements; else 0 */
    uint32_t next;  /* index of the first token after this value's subtree */
    uint8_t type;   /* enum hk_jtype */
    uint8_t plain;  /* strings: 1 if the content has no backslash escape */
} hk_jtok;

typedef struct hk_jdoc {
    const char *src; /* the parsed text; not owned, must outlive the doc */
    size_t len;
    hk_jtok *toks; /* owned */
    uint32_t ntoks;
    uint32_t cap;
    char err[128]; /* after a failed parse: what and where, e.g. "unexpected ',' at byte 17" */
} hk_jdoc;

#define HK_JSON_MAX_DEPTH_DEFAULT 64

/* Parses src[0..len). On success returns 0 and the root is token 0. On malformed input returns
 * HK_EPARSE with doc->err set; HK_ETOOBIG if the value needs more than max_tokens tokens or
 * nests deeper than max_depth (err set too). len must be < 4 GiB. The doc must be released
 * with hk_json_free whatever the result. */
int hk_json_parse(hk_jdoc *doc, const char *src, size_t len, uint32_t max_tokens, int max_depth);
void hk_json_free(hk_jdoc *doc);

static inline int hk_json_type(const hk_jdoc *d, int tok)
{
    return tok >= 0 && (uint32_t)tok < d->ntoks ? d->toks[tok].type : HK_J_NONE;
}

/* Object member lookup: the value token of the first member named `key` (key compared after
 * unescaping), or -1 if obj is not an object or has no such member. */
int hk_json_obj_get(const hk_jdoc *d, int obj, const char *key);

/* 1 if object obj has two members with the same (unescaped) name; 0 otherwise. Quadratic in
 * the member count: meant for small request objects, not customer data. */
int hk_json_obj_dup_key(const hk_jdoc *d, int obj);

/* Iteration helpers. For an object, hk_json_first gives the first key token, the member value
 * is key+1, and the next key is hk_json_next(d, key+1). For an array, first element and then
 * hk_json_next. -1 when there is none (use the container's size to bound loops). */
static inline int hk_json_first(const hk_jdoc *d, int tok)
{
    return hk_json_type(d, tok) == HK_J_OBJECT || hk_json_type(d, tok) == HK_J_ARRAY
               ? (d->toks[tok].size ? tok + 1 : -1)
               : -1;
}
static inline int hk_json_next(const hk_jdoc *d, int tok)
{
    return (int)d->toks[tok].next;
}

/* Decodes string token tok into out (appended, UTF-8, not NUL-counted in len but
 * NUL-terminated by hk_buf_cstr). HK_EINVAL if tok is not a string; HK_ETOOBIG past out->max. */
int hk_json_str(const hk_jdoc *d, int tok, hk_buf *out);

/* Decodes string token tok into a new C string (free with free()). Returns NULL if tok is not
 * a string, if the decoded text contains a NUL (U+0000), or if it is longer than max_len
 * bytes. *why (if not NULL) is set to a short reason on failure. */
char *hk_json_strdup(const hk_jdoc *d, int tok, size_t max_len, const char **why);

/* 1 if string token tok decodes to exactly s; 0 otherwise (also for non-strings). */
int hk_json_str_eq(const hk_jdoc *d, int tok, const char *s);

/* Integer value of number token tok: HK_EINVAL if not a number, has a fraction or exponent
 * that leaves a non-integer, or is outside int64. (1e3 is accepted as 1000.) */
int hk_json_int(const hk_jdoc *d, int tok, int64_t *out);
/* Number token as a double (strtod of the span); HK_EINVAL if not a number. */
int hk_json_double(const hk_jdoc *d, int tok, double *out);
/* true/false token: HK_EINVAL if not a boolean. */
int hk_json_bool(const hk_jdoc *d, int tok, int *out);

/* Appends the value at tok to out with all insignificant whitespace removed; strings and
 * numbers are copied byte for byte. */
int hk_json_compact(const hk_jdoc *d, int tok, hk_buf *out);

/* Semantic equality of two values (from the same or different docs): strings compare
 * decoded, numbers numerically (exact text or equal doubles), objects as unordered member
 * sets, arrays in order. 1 equal, 0 not. */
int hk_json_equal(const hk_jdoc *a, int ta, const hk_jdoc *b, int tb);

/* ---- writer ------------------------------------------------------------------------------
 * Appends JSON to an hk_buf, inserting commas itself. Errors (buffer cap, nesting deeper than
 * HK_JW_MAX_DEPTH) are sticky: check hk_jw_error() once at the end.
 *
 *     hk_jw w; hk_jw_init(&w, &buf);
 *     hk_jw_obj_open(&w);
 *     hk_jw_key(&w, "id"); hk_jw_str(&w, id);
 *     hk_jw_kint(&w, "total", n);
 *     hk_jw_obj_close(&w);
 *     if (hk_jw_error(&w)) ...
 */
#define HK_JW_MAX_DEPTH 32

typedef struct hk_jw {
    hk_buf *b;
    int depth;
    int err;                            /* first error, 0 if none */
    uint8_t first[HK_JW_MAX_DEPTH + 1]; /* 1 while the container at this depth is empty */
    uint8_t after_key;                  /* a key was just written: no comma before the value */
} hk_jw;

void hk_jw_init(hk_jw *w, hk_buf *b);
static inline int hk_jw_error(const hk_jw *w)
{
    return w->err;
}

void hk_jw_obj_open(hk_jw *w);
void hk_jw_obj_close(hk_jw *w);
void hk_jw_arr_open(hk_jw *w);
void hk_jw_arr_close(hk_jw *w);
void hk_jw_key(hk_jw *w, const char *key);

/* Strings are escaped; bytes that are not valid UTF-8 are written as U+FFFD, so any byte
 * string (a receiver's response body, say) yields valid JSON. NULL writes null. */
void hk_jw_str(hk_jw *w, const char *s);
void hk_jw_strn(hk_jw *w, const char *s, size_t n);
void hk_jw_int(hk_jw *w, int64_t v);
void hk_jw_bool(hk_jw *w, int v);
void hk_jw_null(hk_jw *w);
/* A pre-encoded JSON value, copied as is (caller guarantees validity); NULL writes null. */
void hk_jw_raw(hk_jw *w, const char *json, size_t n);
/* ms since epoch as an ISO-8601 string; ms <= 0 writes null. */
void hk_jw_time(hk_jw *w, int64_t ms);

/* key + value shorthands */
void hk_jw_kstr(hk_jw *w, const char *key, const char *s);
void hk_jw_kint(hk_jw *w, const char *key, int64_t v);
void hk_jw_kbool(hk_jw *w, const char *key, int v);
void hk_jw_knull(hk_jw *w, const char *key);
void hk_jw_kraw(hk_jw *w, const char *key, const char *json, size_t n);
void hk_jw_ktime(hk_jw *w, const char *key, int64_t ms);

/* The well-formed UTF-8 sequence at p[0..n): its length (1 for ASCII, NUL included; 2..4),
 * or 0 with *bad set to the bytes of the maximal ill-formed subpart that one U+FFFD replaces
 * (the rule hk_json_escape follows). n must be >= 1. */
size_t hk_utf8_seq(const char *p, size_t n, size_t *bad);

/* Appends s escaped as a JSON string (with quotes) to b; invalid UTF-8 becomes U+FFFD. */
int hk_json_escape(hk_buf *b, const char *s, size_t n);

#endif
