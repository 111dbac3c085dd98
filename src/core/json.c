/*
 * json.c: the strict JSON parser (flat token array of spans into the input), the helpers that
 * read tokens (decode strings, numbers, compare, re-emit compactly) and the JSON writer (see
 * json.h for the contract).
 *
 * The parser is on the ingest hot path, so it is one iterative loop with an explicit stack of
 * open containers, a word-at-a-time scan over string bytes that need no attention (plain
 * ASCII other than '"', '\\' and control characters), and UTF-8 validation only for bytes
 * >= 0x80. The only allocations are the token array (grown geometrically, never past
 * max_tokens) and, past 128 levels of nesting, the container stack. Byte offsets in error
 * messages are 0-based.
 */
#include "core/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"

/* ---- shared character helpers ------------------------------------------------------------ */

/* Value of a hex digit, or -1. */
static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Four hex digits at p as a code unit, or -1 if any is not a hex digit. */
static inline int hex4(const uint8_t *p)
{
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0) return -1;
    return a << 12 | b << 8 | c << 4 | d;
}

/* Checks the UTF-8 sequence starting at p (p[0] >= 0x80, n >= 1 bytes available) against the
 * Unicode well-formedness table (no overlongs, no surrogates, nothing above U+10FFFF). Returns
 * its length (2..4) if well formed; otherwise 0 with *bad set to the length of the maximal
 * ill-formed subpart (>= 1), the bytes one U+FFFD stands for. */
static inline size_t utf8_len(const uint8_t *p, size_t n, size_t *bad)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    size_t more;
    if (c >= 0xC2 && c <= 0xDF) {
        more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        more = 2;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        more = 3;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad = 1; /* continuation byte, C0/C1, F5..FF */
        return 0;
    }
    if (n < 2 || p[1] < lo || p[1] > hi) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 2; i <= more; i++) {
        if (i >= n || (p[i] & 0xC0) != 0x80) {
            *bad = i;
            return 0;
        }
    }
    return more + 1;
}

/* Encodes code point cp (<= 0x10FFFF) as UTF-8 into out; returns the length. */
static inline size_t utf8_put(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Nonzero if any of the 8 bytes in w is '"', '\\', < 0x20 or >= 0x80. The lowest flagged
 * byte is exact (borrows only run upwards), so on little-endian machines ctz finds it. */
static inline uint64_t str_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');
    q = (q - ones) & ~q;
    b = (b - ones) & ~b;
    uint64_t c = (w - ones * 0x20) & ~w;
    return (q | b | c | w) & high;
}

/* ---- parser ------------------------------------------------------------------------------ */

#define STACK_LOCAL 128

typedef struct parser {
    hk_jdoc *d;
    const uint8_t *s;
    size_t len;
    uint32_t max_tokens;
} parser;

/* Sets doc->err to "<what> at byte <pos>" and returns rc. */
static int fail(parser *p, int rc, size_t pos, const char *what)
{
    snprintf(p->d->err, sizeof p->d->err, "%s at byte %zu", what, pos);
    return rc;
}

/* "unexpected 'x' at byte N", "unexpected byte 0x80 at byte N" or "unexpected end of input". */
static int fail_char(parser *p, size_t pos, const char *expected)
{
    char what[96];
    const char *sep = expected ? " (expected " : "";
    const char *tail = expected ? ")" : "";
    if (!expected) expected = "";
    if (pos >= p->len) {
        snprintf(what, sizeof what, "unexpected end of input%s%s%s", sep, expected, tail);
    } else {
        uint8_t c = p->s[pos];
        if (c >= 0x20 && c < 0x7F)
            snprintf(what, sizeof what, "unexpected '%c'%s%s%s", c, sep, expected, tail);
        else
            snprintf(what, sizeof what, "unexpected byte 0x%02x%s%s%s", c, sep, expected, tail);
    }
    return fail(p, HK_EPARSE, pos, what);
}

/* Makes room for one more token: 0, or HK_ETOOBIG at max_tokens. */
static int grow_tokens(parser *p, size_t pos)
{
    hk_jdoc *d = p->d;
    if (d->ntoks >= p->max_tokens) {
        char what[64];
        snprintf(what, sizeof what, "more than %" PRIu32 " tokens", p->max_tokens);
        return fail(p, HK_ETOOBIG, pos, what);
    }
    uint64_t cap = d->cap ? (uint64_t)d->cap * 2 : 16;
    if (cap > p->max_tokens) cap = p->max_tokens;
    d->toks = hk_realloc(d->toks, (size_t)cap * sizeof *d->toks);
    d->cap = (uint32_t)cap;
    return 0;
}

/* Scans the string whose opening quote is at pos. Returns the offset just past the closing
 * quote and sets *plain (1 if no escape), or (size_t)-1 with doc->err set. */
static size_t scan_string(parser *p, size_t pos, uint8_t *plain)
{
    const uint8_t *s = p->s;
    size_t len = p->len, start = pos;
    uint8_t pl = 1;
    pos++;
    for (;;) {
        while (pos + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + pos, 8);
            uint64_t m = str_special(w);
            if (m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                pos += (size_t)__builtin_ctzll(m) >> 3;
#endif
                break;
            }
            pos += 8;
        }
        if (pos >= len) break;
        uint8_t c = s[pos];
        if (c == '"') {
            *plain = pl;
            return pos + 1;
        }
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            pos++;
            continue;
        }
        if (c == '\\') {
            pl = 0;
            if (pos + 1 >= len) break;
            switch (s[pos + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                pos += 2;
                continue;
            case 'u':
                break;
            default:
                fail(p, HK_EPARSE, pos, "invalid escape in string");
                return (size_t)-1;
            }
            int cu = pos + 6 <= len ? hex4(s + pos + 2) : -1;
            if (cu < 0) {
                fail(p, HK_EPARSE, pos, "invalid \\u escape (4 hex digits expected)");
                return (size_t)-1;
            }
            if (cu >= 0xDC00 && cu <= 0xDFFF) {
                fail(p, HK_EPARSE, pos, "lone low surrogate in \\u escape");
                return (size_t)-1;
            }
            if (cu >= 0xD800 && cu <= 0xDBFF) {
                int lo = pos + 12 <= len && s[pos + 6] == '\\' && s[pos + 7] == 'u'
                             ? hex4(s + pos + 8)
                             : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, HK_EPARSE, pos, "high surrogate not followed by a low surrogate");
                    return (size_t)-1;
                }
                pos += 12;
            } else {
                pos += 6;
            }
            continue;
        }
        if (c < 0x20) {
            char what[64];
            snprintf(what, sizeof what, "raw control character 0x%02x in string", c);
            fail(p, HK_EPARSE, pos, what);
            return (size_t)-1;
        }
        size_t bad, n = utf8_len(s + pos, len - pos, &bad);
        if (!n) {
            fail(p, HK_EPARSE, pos, "invalid UTF-8 in string");
            return (size_t)-1;
        }
        pos += n;
    }
    fail(p, HK_EPARSE, start, "unterminated string starting");
    return (size_t)-1;
}

static inline int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Scans the number starting at pos (RFC 8259 grammar). Returns the offset past it, or
 * (size_t)-1 with doc->err set. */
static size_t scan_number(parser *p, size_t pos)
{
    const uint8_t *s = p->s;
    size_t len = p->len;
    if (s[pos] == '-') pos++;
    if (pos >= len || !is_digit(s[pos])) {
        fail(p, HK_EPARSE, pos, "digit expected in number");
        return (size_t)-1;
    }
    if (s[pos] == '0') {
        pos++;
        if (pos < len && is_digit(s[pos])) {
            fail(p, HK_EPARSE, pos - 1, "leading zero in number");
            return (size_t)-1;
        }
    } else {
        while (pos < len && is_digit(s[pos])) pos++;
    }
    if (pos < len && s[pos] == '.') {
        pos++;
        if (pos >= len || !is_digit(s[pos])) {
            fail(p, HK_EPARSE, pos, "digit expected after '.' in number");
            return (size_t)-1;
        }
        while (pos < len && is_digit(s[pos])) pos++;
    }
    if (pos < len && (s[pos] == 'e' || s[pos] == 'E')) {
        pos++;
        if (pos < len && (s[pos] == '+' || s[pos] == '-')) pos++;
        if (pos >= len || !is_digit(s[pos])) {
            fail(p, HK_EPARSE, pos, "digit expected in number exponent");
            return (size_t)-1;
        }
        while (pos < len && is_digit(s[pos])) pos++;
    }
    return pos;
}

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

int hk_json_parse(hk_jdoc *doc, const char *src, size_t len, uint32_t max_tokens, int max_depth)
{
    doc->src = src;
    doc->len = len;
    doc->toks = NULL;
    doc->ntoks = 0;
    doc->cap = 0;
    doc->err[0] = '\0';
    parser P = {.d = doc, .s = (const uint8_t *)src, .len = len, .max_tokens = max_tokens};
    parser *p = &P;
    if (len > UINT32_MAX) return fail(p, HK_ETOOBIG, 0, "input of 4 GiB or more");

    /* A first guess of the token count (typical JSON has a token every 8..16 bytes) saves
     * most of the regrowth on big documents. */
    uint64_t guess = len / 16 + 16;
    if (guess > max_tokens) guess = max_tokens;
    if (guess) {
        doc->toks = hk_malloc((size_t)guess * sizeof *doc->toks);
        doc->cap = (uint32_t)guess;
    }

    const uint8_t *s = p->s;
    uint32_t local[STACK_LOCAL], *stack = local;
    size_t stcap = STACK_LOCAL, sp = 0, pos = 0, end;
    hk_jtok *t;
    uint32_t idx;
    int rc = 0;

#define NEWTOK(type_)                                                                              \
    do {                                                                                           \
        if (HK_UNLIKELY(doc->ntoks == doc->cap) && (rc = grow_tokens(p, pos)) != 0) goto out;      \
        idx = doc->ntoks++;                                                                        \
        t = &doc->toks[idx];                                                                       \
        t->start = (uint32_t)pos;                                                                  \
        t->size = 0;                                                                               \
        t->type = (type_);                                                                         \
        t->plain = 0;                                                                              \
    } while (0)
#define SKIP_WS()                                                                                  \
    while (pos < len && IS_WS(s[pos])) pos++

    SKIP_WS();

value:
    if (HK_UNLIKELY(pos >= len)) {
        rc = fail_char(p, pos, "a value");
        goto out;
    }
    switch (s[pos]) {
    case '"':
        NEWTOK(HK_J_STRING);
        end = scan_string(p, pos, &t->plain);
        if (end == (size_t)-1) goto parse_error;
        t->end = (uint32_t)end;
        t->next = idx + 1;
        pos = end;
        goto after_value;
    case '{':
    case '[': {
        int obj = s[pos] == '{';
        if (sp >= (size_t)(max_depth > 0 ? max_depth : 0)) {
            char what[64];
            snprintf(what, sizeof what, "nesting deeper than %d", max_depth);
            rc = fail(p, HK_ETOOBIG, pos, what);
            goto out;
        }
        NEWTOK(obj ? HK_J_OBJECT : HK_J_ARRAY);
        if (HK_UNLIKELY(sp == stcap)) {
            uint32_t *ns = hk_malloc(stcap * 2 * sizeof *ns);
            memcpy(ns, stack, stcap * sizeof *ns);
            if (stack != local) free(stack);
            stack = ns;
            stcap *= 2;
        }
        stack[sp++] = idx;
        pos++;
        SKIP_WS();
        if (pos < len && s[pos] == (obj ? '}' : ']')) {
            t->end = (uint32_t)(pos + 1);
            t->next = idx + 1;
            sp--;
            pos++;
            goto after_value;
        }
        t->size = 1;
        if (obj) goto key;
        goto value;
    }
    case 't':
        if (len - pos >= 4 && memcmp(s + pos, "true", 4) == 0) {
            NEWTOK(HK_J_TRUE);
            end = pos + 4;
            goto scalar;
        }
        goto bad_literal;
    case 'f':
        if (len - pos >= 5 && memcmp(s + pos, "false", 5) == 0) {
            NEWTOK(HK_J_FALSE);
            end = pos + 5;
            goto scalar;
        }
        goto bad_literal;
    case 'n':
        if (len - pos >= 4 && memcmp(s + pos, "null", 4) == 0) {
            NEWTOK(HK_J_NULL);
            end = pos + 4;
            goto scalar;
        }
        goto bad_literal;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        NEWTOK(HK_J_NUMBER);
        end = scan_number(p, pos);
        if (end == (size_t)-1) goto parse_error;
        goto scalar;
    default:
        rc = fail_char(p, pos, "a value");
        goto out;
    }

bad_literal:
    rc = fail(p, HK_EPARSE, pos, "invalid literal (true, false or null expected)");
    goto out;

scalar:
    t->end = (uint32_t)end;
    t->next = idx + 1;
    pos = end;
    /* fall through */

after_value:
    if (sp == 0) goto done;
    SKIP_WS();
    if (HK_UNLIKELY(pos >= len)) {
        rc = fail_char(p, pos, NULL);
        goto out;
    }
    {
        hk_jtok *top = &doc->toks[stack[sp - 1]];
        uint8_t c = s[pos];
        if (c == ',') {
            pos++;
            SKIP_WS();
            top->size++;
            if (top->type == HK_J_OBJECT) goto key;
            goto value;
        }
        if (c == (top->type == HK_J_OBJECT ? '}' : ']')) {
            top->end = (uint32_t)(pos + 1);
            top->next = doc->ntoks;
            sp--;
            pos++;
            goto after_value;
        }
        rc = fail_char(p, pos, top->type == HK_J_OBJECT ? "',' or '}'" : "',' or ']'");
        goto out;
    }

key:
    if (HK_UNLIKELY(pos >= len || s[pos] != '"')) {
        rc = fail_char(p, pos, "a string key");
        goto out;
    }
    NEWTOK(HK_J_STRING);
    end = scan_string(p, pos, &t->plain);
    if (end == (size_t)-1) goto parse_error;
    t->end = (uint32_t)end;
    t->next = idx + 1;
    pos = end;
    SKIP_WS();
    if (HK_UNLIKELY(pos >= len || s[pos] != ':')) {
        rc = fail_char(p, pos, "':'");
        goto out;
    }
    pos++;
    SKIP_WS();
    goto value;

parse_error:
    rc = HK_EPARSE;
    goto out;

done:
    SKIP_WS();
    if (pos != len) rc = fail_char(p, pos, "end of input after the value");

out:
#undef NEWTOK
#undef SKIP_WS
    if (stack != local) free(stack);
    if (rc) doc->ntoks = 0;
    return rc;
}

void hk_json_free(hk_jdoc *doc)
{
    free(doc->toks);
    doc->toks = NULL;
    doc->ntoks = 0;
    doc->cap = 0;
}

/* ---- reading tokens ---------------------------------------------------------------------- */

/* Content bytes of string token tok (between the quotes). */
static inline const uint8_t *str_begin(const hk_jdoc *d, int tok)
{
    return (const uint8_t *)d->src + d->toks[tok].start + 1;
}
static inline size_t str_rawlen(const hk_jdoc *d, int tok)
{
    return d->toks[tok].end - d->toks[tok].start - 2;
}

/* Decodes the escape at p (p[0] == '\\', already validated by the parser) into out; returns
 * its length in the source and sets *n to the decoded length. */
static size_t decode_escape(const uint8_t *p, uint8_t out[4], size_t *n)
{
    uint8_t c;
    switch (p[1]) {
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u': {
        uint32_t cp = (uint32_t)hex4(p + 2);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = (uint32_t)hex4(p + 8);
            *n = utf8_put(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), out);
            return 12;
        }
        *n = utf8_put(cp, out);
        return 6;
    }
    default:
        c = p[1];
        break; /* " \ / */
    }
    out[0] = c;
    *n = 1;
    return 2;
}

/* Byte-at-a-time decoder of a string token, for comparisons without allocation. */
typedef struct sdec {
    const uint8_t *p, *e;
    uint8_t pend[4];
    size_t np, ip;
} sdec;

static void sdec_init(sdec *it, const hk_jdoc *d, int tok)
{
    it->p = str_begin(d, tok);
    it->e = it->p + str_rawlen(d, tok);
    it->np = it->ip = 0;
}

/* Next decoded byte, or -1 at the end. */
static inline int sdec_next(sdec *it)
{
    if (it->ip < it->np) return it->pend[it->ip++];
    if (it->p >= it->e) return -1;
    if (*it->p != '\\') return *it->p++;
    it->p += decode_escape(it->p, it->pend, &it->np);
    it->ip = 1;
    return it->pend[0];
}

/* 1 if string token tok decodes to exactly s[0..n). */
static int str_eq_n(const hk_jdoc *d, int tok, const char *s, size_t n)
{
    if (d->toks[tok].plain) return str_rawlen(d, tok) == n && memcmp(str_begin(d, tok), s, n) == 0;
    sdec it;
    sdec_init(&it, d, tok);
    for (size_t i = 0; i < n; i++)
        if (sdec_next(&it) != (uint8_t)s[i]) return 0;
    return sdec_next(&it) < 0;
}

/* 1 if string tokens ta (in a) and tb (in b) decode to the same bytes. */
static int str_tok_eq(const hk_jdoc *a, int ta, const hk_jdoc *b, int tb)
{
    if (a->toks[ta].plain && b->toks[tb].plain)
        return str_rawlen(a, ta) == str_rawlen(b, tb) &&
               memcmp(str_begin(a, ta), str_begin(b, tb), str_rawlen(a, ta)) == 0;
    if (a->toks[ta].plain)
        return str_eq_n(b, tb, (const char *)str_begin(a, ta), str_rawlen(a, ta));
    if (b->toks[tb].plain)
        return str_eq_n(a, ta, (const char *)str_begin(b, tb), str_rawlen(b, tb));
    sdec x, y;
    sdec_init(&x, a, ta);
    sdec_init(&y, b, tb);
    for (;;) {
        int cx = sdec_next(&x), cy = sdec_next(&y);
        if (cx != cy) return 0;
        if (cx < 0) return 1;
    }
}

int hk_json_obj_get(const hk_jdoc *d, int obj, const char *key)
{
    if (hk_json_type(d, obj) != HK_J_OBJECT) return -1;
    size_t n = strlen(key);
    uint32_t k = (uint32_t)obj + 1;
    for (uint32_t i = 0; i < d->toks[obj].size; i++) {
        if (str_eq_n(d, (int)k, key, n)) return (int)k + 1;
        k = d->toks[k + 1].next;
    }
    return -1;
}

int hk_json_obj_dup_key(const hk_jdoc *d, int obj)
{
    if (hk_json_type(d, obj) != HK_J_OBJECT) return 0;
    uint32_t k = (uint32_t)obj + 1;
    for (uint32_t i = 0; i < d->toks[obj].size; i++) {
        uint32_t j = d->toks[k + 1].next;
        for (uint32_t m = i + 1; m < d->toks[obj].size; m++) {
            if (str_tok_eq(d, (int)k, d, (int)j)) return 1;
            j = d->toks[j + 1].next;
        }
        k = d->toks[k + 1].next;
    }
    return 0;
}

int hk_json_str(const hk_jdoc *d, int tok, hk_buf *out)
{
    if (hk_json_type(d, tok) != HK_J_STRING) return HK_EINVAL;
    const uint8_t *p = str_begin(d, tok), *e = p + str_rawlen(d, tok);
    if (d->toks[tok].plain) return hk_buf_append(out, p, (size_t)(e - p));
    size_t old = out->len;
    int rc = 0;
    while (p < e) {
        const uint8_t *bs = memchr(p, '\\', (size_t)(e - p));
        if (!bs) bs = e;
        if ((rc = hk_buf_append(out, p, (size_t)(bs - p))) != 0) break;
        p = bs;
        if (p == e) break;
        uint8_t tmp[4];
        size_t n;
        p += decode_escape(p, tmp, &n);
        if ((rc = hk_buf_append(out, tmp, n)) != 0) break;
    }
    if (rc) out->len = old;
    return rc;
}

char *hk_json_strdup(const hk_jdoc *d, int tok, size_t max_len, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (hk_json_type(d, tok) != HK_J_STRING) {
        *why = "not a string";
        return NULL;
    }
    hk_buf b;
    hk_buf_init(&b, max_len);
    if (hk_json_str(d, tok, &b)) {
        hk_buf_free(&b);
        *why = "too long";
        return NULL;
    }
    if (b.len && memchr(b.data, '\0', b.len)) {
        hk_buf_free(&b);
        *why = "contains a NUL character";
        return NULL;
    }
    return hk_buf_steal(&b);
}

int hk_json_str_eq(const hk_jdoc *d, int tok, const char *s)
{
    if (hk_json_type(d, tok) != HK_J_STRING) return 0;
    return str_eq_n(d, tok, s, strlen(s));
}

int hk_json_int(const hk_jdoc *d, int tok, int64_t *out)
{
    if (hk_json_type(d, tok) != HK_J_NUMBER) return HK_EINVAL;
    const char *p = d->src + d->toks[tok].start, *e = d->src + d->toks[tok].end;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const char *ip = p;
    while (p < e && is_digit((uint8_t)*p)) p++;
    size_t ni = (size_t)(p - ip), nf = 0;
    const char *fp = p;
    if (p < e && *p == '.') {
        fp = ++p;
        while (p < e && is_digit((uint8_t)*p)) p++;
        nf = (size_t)(p - fp);
    }
    int64_t exp = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < e; p++)
            if (exp < 1000000000) exp = exp * 10 + (*p - '0'); /* saturates: huge is huge */
        if (eneg) exp = -exp;
    }
    /* The value is D * 10^E with D the digits of the integer and fraction parts together. */
    size_t nd = ni + nf;
#define DIGIT(k) ((k) < ni ? ip[(k)] : fp[(k)-ni])
    size_t first = 0; /* skip leading zeros */
    while (first < nd && DIGIT(first) == '0') first++;
    if (first == nd) {
        *out = 0; /* 0, -0, 0.000, 0e999 */
        return 0;
    }
    size_t last = nd; /* one past the last nonzero digit */
    while (DIGIT(last - 1) == '0') last--;
    int64_t E = exp - (int64_t)nf;
    /* Digits below 10^0 must all be zero: drop them; the value's digits end at nd + E. */
    if (E < 0) {
        if ((int64_t)(nd - last) < -E) return HK_EINVAL; /* a nonzero digit after the point */
        nd = (size_t)((int64_t)nd + E);
        E = 0;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, u = 0;
    for (size_t k = first; k < nd; k++) {
        unsigned dig = (unsigned)(DIGIT(k) - '0');
        if (u > (limit - dig) / 10) return HK_EINVAL;
        u = u * 10 + dig;
    }
#undef DIGIT
    for (int64_t k = 0; k < E; k++) {
        if (u > limit / 10) return HK_EINVAL;
        u *= 10;
    }
    *out = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
    return 0;
}

/* strtod of number token tok. */
static double num_value(const hk_jdoc *d, int tok)
{
    size_t n = d->toks[tok].end - d->toks[tok].start;
    const char *p = d->src + d->toks[tok].start;
    char small[64];
    double v;
    if (n < sizeof small) {
        memcpy(small, p, n);
        small[n] = '\0';
        v = strtod(small, NULL);
    } else {
        char *big = hk_strndup(p, n);
        v = strtod(big, NULL);
        free(big);
    }
    return v;
}

int hk_json_double(const hk_jdoc *d, int tok, double *out)
{
    if (hk_json_type(d, tok) != HK_J_NUMBER) return HK_EINVAL;
    *out = num_value(d, tok);
    return 0;
}

int hk_json_bool(const hk_jdoc *d, int tok, int *out)
{
    int t = hk_json_type(d, tok);
    if (t != HK_J_TRUE && t != HK_J_FALSE) return HK_EINVAL;
    *out = t == HK_J_TRUE;
    return 0;
}

/* Appends the bytes of src[a..b) that are not JSON whitespace (only punctuation and
 * whitespace lie between tokens). */
static void copy_gap(const char *src, uint32_t a, uint32_t b, char *out, size_t *n)
{
    for (uint32_t i = a; i < b; i++) {
        char c = src[i];
        if (!IS_WS(c)) out[(*n)++] = c;
    }
}

int hk_json_compact(const hk_jdoc *d, int tok, hk_buf *out)
{
    if (hk_json_type(d, tok) == HK_J_NONE) return HK_EINVAL;
    const hk_jtok *root = &d->toks[tok];
    int rc = hk_buf_reserve(out, root->end - root->start); /* never longer than the input */
    if (rc) {
        /* The input span does not fit but its compact form might: compact aside, then append
         * (which fails with HK_ETOOBIG, buffer unchanged, if it does not fit either). */
        hk_buf tmp;
        hk_buf_init(&tmp, HK_BUF_UNLIMITED);
        hk_json_compact(d, tok, &tmp);
        rc = hk_buf_append(out, tmp.data, tmp.len);
        hk_buf_free(&tmp);
        return rc;
    }
    char *o = out->data + out->len;
    size_t n = 0;
    uint32_t cur = root->start;
    for (uint32_t i = (uint32_t)tok; i < root->next; i++) {
        const hk_jtok *t = &d->toks[i];
        copy_gap(d->src, cur, t->start, o, &n);
        if (t->type == HK_J_OBJECT || t->type == HK_J_ARRAY) {
            cur = t->start; /* its brackets are copied with the gaps */
        } else {
            memcpy(o + n, d->src + t->start, t->end - t->start);
            n += t->end - t->start;
            cur = t->end;
        }
    }
    copy_gap(d->src, cur, root->end, o, &n);
    out->len += n;
    return 0;
}

/* Finds in object ob (of b) a member equal (key and value) to the member whose key is ka in a;
 * hint is the key token to try first (the same position). */
static int has_member(const hk_jdoc *a, int ka, const hk_jdoc *b, int ob, uint32_t hint)
{
    if (hint && str_tok_eq(a, ka, b, (int)hint) && hk_json_equal(a, ka + 1, b, (int)hint + 1))
        return 1;
    uint32_t k = (uint32_t)ob + 1;
    for (uint32_t i = 0; i < b->toks[ob].size; i++) {
        if (k != hint && str_tok_eq(a, ka, b, (int)k) && hk_json_equal(a, ka + 1, b, (int)k + 1))
            return 1;
        k = b->toks[k + 1].next;
    }
    return 0;
}

/* 1 if every member of object oa (in a) has an equal member in object ob (in b). */
static int obj_subset(const hk_jdoc *a, int oa, const hk_jdoc *b, int ob)
{
    uint32_t ka = (uint32_t)oa + 1, kb = (uint32_t)ob + 1;
    for (uint32_t i = 0; i < a->toks[oa].size; i++) {
        if (!has_member(a, (int)ka, b, ob, kb)) return 0;
        ka = a->toks[ka + 1].next;
        kb = b->toks[kb + 1].next;
    }
    return 1;
}

int hk_json_equal(const hk_jdoc *a, int ta, const hk_jdoc *b, int tb)
{
    int type = hk_json_type(a, ta);
    if (type == HK_J_NONE || type != hk_json_type(b, tb)) return 0;
    const hk_jtok *x = &a->toks[ta], *y = &b->toks[tb];
    switch (type) {
    case HK_J_STRING:
        return str_tok_eq(a, ta, b, tb);
    case HK_J_NUMBER:
        if (x->end - x->start == y->end - y->start &&
            memcmp(a->src + x->start, b->src + y->start, x->end - x->start) == 0)
            return 1;
        return num_value(a, ta) == num_value(b, tb);
    case HK_J_ARRAY: {
        if (x->size != y->size) return 0;
        uint32_t i = (uint32_t)ta + 1, j = (uint32_t)tb + 1;
        for (uint32_t k = 0; k < x->size; k++) {
            if (!hk_json_equal(a, (int)i, b, (int)j)) return 0;
            i = a->toks[i].next;
            j = b->toks[j].next;
        }
        return 1;
    }
    case HK_J_OBJECT:
        /* Both directions, so that duplicate keys cannot make unequal objects look equal. */
        return x->size == y->size && obj_subset(a, ta, b, tb) && obj_subset(b, tb, a, ta);
    default:
        return 1; /* true, false, null */
    }
}

/* ---- writer ------------------------------------------------------------------------------ */

size_t hk_utf8_seq(const char *p, size_t n, size_t *bad)
{
    const uint8_t *s = (const uint8_t *)p;
    if (n == 0) {
        *bad = 0;
        return 0;
    }
    if (s[0] < 0x80) return 1;
    return utf8_len(s, n, bad);
}

/* 1 for ASCII bytes that go into a JSON string as they are. */
static const uint8_t plain_ascii[128] = {
    ['\x20'] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1,    ['\''] = 1, ['('] = 1,
    [')'] = 1,    ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1,    ['/'] = 1,  ['0'] = 1,
    ['1'] = 1,    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,    ['7'] = 1,  ['8'] = 1,
    ['9'] = 1,    [':'] = 1, [';'] = 1, ['<'] = 1, ['='] = 1, ['>'] = 1,    ['?'] = 1,  ['@'] = 1,
    ['A'] = 1,    ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,    ['G'] = 1,  ['H'] = 1,
    ['I'] = 1,    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,    ['O'] = 1,  ['P'] = 1,
    ['Q'] = 1,    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,    ['W'] = 1,  ['X'] = 1,
    ['Y'] = 1,    ['Z'] = 1, ['['] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1,    ['`'] = 1,  ['a'] = 1,
    ['b'] = 1,    ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,    ['h'] = 1,  ['i'] = 1,
    ['j'] = 1,    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,    ['p'] = 1,  ['q'] = 1,
    ['r'] = 1,    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1,    ['x'] = 1,  ['y'] = 1,
    ['z'] = 1,    ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1, ['\x7f'] = 1,
};

int hk_json_escape(hk_buf *b, const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t old = b->len, run = 0, i = 0;
    int rc = hk_buf_putc(b, '"');
    while (rc == 0 && i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (plain_ascii[c]) {
                i++;
                continue;
            }
        } else {
            size_t bad, l = utf8_len(s + i, n - i, &bad);
            if (l) {
                i += l; /* valid UTF-8 passes through */
                continue;
            }
            if ((rc = hk_buf_append(b, s + run, i - run)) != 0) break;
            rc = hk_buf_append(b, "\xEF\xBF\xBD", 3);
            i += bad;
            run = i;
            continue;
        }
        if ((rc = hk_buf_append(b, s + run, i - run)) != 0) break;
        char esc[8];
        switch (c) {
        case '"':
            rc = hk_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = hk_buf_append(b, "\\\\", 2);
            break;
        case '\b':
            rc = hk_buf_append(b, "\\b", 2);
            break;
        case '\f':
            rc = hk_buf_append(b, "\\f", 2);
            break;
        case '\n':
            rc = hk_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = hk_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = hk_buf_append(b, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc = hk_buf_append(b, esc, 6);
            break;
        }
        run = ++i;
    }
    if (rc == 0) rc = hk_buf_append(b, s + run, i - run);
    if (rc == 0) rc = hk_buf_putc(b, '"');
    if (rc) b->len = old;
    return rc;
}

void hk_jw_init(hk_jw *w, hk_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    w->first[0] = 1;
}

/* Records the first error. */
static void jw_fail(hk_jw *w, int rc)
{
    if (rc && !w->err) w->err = rc;
}

/* Writes the comma a value or key needs (none after a key or first in its container).
 * Returns 0 if writing may go on. */
static int jw_pre(hk_jw *w)
{
    if (w->err) return -1;
    if (w->after_key) {
        w->after_key = 0;
        return 0;
    }
    if (!w->first[w->depth]) {
        int rc = hk_buf_putc(w->b, ',');
        if (rc) {
            jw_fail(w, rc);
            return -1;
        }
    }
    w->first[w->depth] = 0;
    return 0;
}

static void jw_open(hk_jw *w, char c)
{
    if (jw_pre(w)) return;
    if (w->depth >= HK_JW_MAX_DEPTH) {
        jw_fail(w, HK_ETOOBIG);
        return;
    }
    jw_fail(w, hk_buf_putc(w->b, c));
    w->depth++;
    w->first[w->depth] = 1;
}

static void jw_close(hk_jw *w, char c)
{
    if (w->err) return;
    if (w->depth == 0 || w->after_key) {
        jw_fail(w, HK_EINVAL); /* nothing open, or a key without a value */
        return;
    }
    jw_fail(w, hk_buf_putc(w->b, c));
    w->depth--;
}

void hk_jw_obj_open(hk_jw *w)
{
    jw_open(w, '{');
}
void hk_jw_obj_close(hk_jw *w)
{
    jw_close(w, '}');
}
void hk_jw_arr_open(hk_jw *w)
{
    jw_open(w, '[');
}
void hk_jw_arr_close(hk_jw *w)
{
    jw_close(w, ']');
}

void hk_jw_key(hk_jw *w, const char *key)
{
    if (w->after_key) jw_fail(w, HK_EINVAL); /* two keys in a row */
    if (jw_pre(w)) return;
    int rc = hk_json_escape(w->b, key ? key : "", key ? strlen(key) : 0);
    if (rc == 0) rc = hk_buf_putc(w->b, ':');
    jw_fail(w, rc);
    w->after_key = 1;
}

void hk_jw_strn(hk_jw *w, const char *s, size_t n)
{
    if (!s) {
        hk_jw_null(w);
        return;
    }
    if (jw_pre(w)) return;
    jw_fail(w, hk_json_escape(w->b, s, n));
}

void hk_jw_str(hk_jw *w, const char *s)
{
    hk_jw_strn(w, s, s ? strlen(s) : 0);
}

void hk_jw_int(hk_jw *w, int64_t v)
{
    if (jw_pre(w)) return;
    jw_fail(w, hk_buf_printf(w->b, "%" PRId64, v));
}

void hk_jw_bool(hk_jw *w, int v)
{
    if (jw_pre(w)) return;
    jw_fail(w, v ? hk_buf_append(w->b, "true", 4) : hk_buf_append(w->b, "false", 5));
}

void hk_jw_null(hk_jw *w)
{
    if (jw_pre(w)) return;
    jw_fail(w, hk_buf_append(w->b, "null", 4));
}

void hk_jw_raw(hk_jw *w, const char *json, size_t n)
{
    if (!json) {
        hk_jw_null(w);
        return;
    }
    if (jw_pre(w)) return;
    jw_fail(w, hk_buf_append(w->b, json, n));
}

void hk_jw_time(hk_jw *w, int64_t ms)
{
    if (ms <= 0) {
        hk_jw_null(w);
        return;
    }
    char iso[HK_ISO_LEN];
    hk_iso_format(ms, iso);
    hk_jw_str(w, iso);
}

void hk_jw_kstr(hk_jw *w, const char *key, const char *s)
{
    hk_jw_key(w, key);
    hk_jw_str(w, s);
}

void hk_jw_kint(hk_jw *w, const char *key, int64_t v)
{
    hk_jw_key(w, key);
    hk_jw_int(w, v);
}

void hk_jw_kbool(hk_jw *w, const char *key, int v)
{
    hk_jw_key(w, key);
    hk_jw_bool(w, v);
}

void hk_jw_knull(hk_jw *w, const char *key)
{
    hk_jw_key(w, key);
    hk_jw_null(w);
}

void hk_jw_kraw(hk_jw *w, const char *key, const char *json, size_t n)
{
    hk_jw_key(w, key);
    hk_jw_raw(w, json, n);
}

void hk_jw_ktime(hk_jw *w, const char *key, int64_t ms)
{
    hk_jw_key(w, key);
    hk_jw_time(w, ms);
}
