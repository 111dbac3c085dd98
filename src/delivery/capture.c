/*
 * capture.c: an endpoint's answer kept as capped raw bytes, then turned into text and JSON
 * that are valid whatever the bytes were (see capture.h). The raw bytes are kept until the
 * transfer ends; the conversion runs once, when the outcome is reported.
 */
#include "delivery/capture.h"

#include <string.h>

#include "core/json.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

void hk_capture_init(hk_capture *cp, size_t body_max)
{
    memset(cp, 0, sizeof *cp);
    hk_buf_init(&cp->hdrs, HK_CAPTURE_HEADER_BYTES);
    hk_buf_init(&cp->body, body_max);
}

void hk_capture_free(hk_capture *cp)
{
    hk_buf_free(&cp->hdrs);
    hk_buf_free(&cp->body);
}

void hk_capture_header(hk_capture *cp, const char *line, size_t n)
{
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    int status = n >= 5 && memcmp(line, "HTTP/", 5) == 0;
    if (status) {
        hk_buf_reset(&cp->hdrs); /* a new response: forget an interim 1xx answer */
        cp->nlines = 0;
    } else if (n == 0 || cp->nlines >= HK_CAPTURE_HEADER_LINES) {
        return; /* the blank line ending the headers, or past the line cap */
    }
    if (hk_buf_reserve(&cp->hdrs, n + 1)) return; /* past the byte cap: dropped whole */
    hk_buf_append(&cp->hdrs, line, n);
    hk_buf_putc(&cp->hdrs, '\n');
    if (!status) cp->nlines++;
}

size_t hk_capture_body(hk_capture *cp, const char *p, size_t n)
{
    size_t room = cp->body.max - cp->body.len;
    if (n > room) {
        hk_buf_append(&cp->body, p, room);
        cp->body_truncated = 1;
        return room;
    }
    hk_buf_append(&cp->body, p, n);
    return n;
}

int hk_capture_text(hk_buf *out, const char *s, size_t n)
{
    size_t old = out->len, run = 0, i = 0;
    int rc = 0;
    while (rc == 0 && i < n) {
        size_t bad = 0, l = s[i] ? hk_utf8_seq(s + i, n - i, &bad) : 0;
        if (l) {
            i += l;
            continue;
        }
        if (!s[i]) bad = 1; /* NUL: PostgreSQL text cannot hold it */
        rc = hk_buf_append(out, s + run, i - run);
        if (rc == 0) rc = hk_buf_append(out, REPLACEMENT, 3);
        i += bad;
        run = i;
    }
    if (rc == 0) rc = hk_buf_append(out, s + run, i - run);
    if (rc) out->len = old;
    return rc;
}

int hk_capture_body_text(const hk_capture *cp, hk_buf *out)
{
    size_t old = out->len;
    int rc = hk_capture_text(out, cp->body.data, cp->body.len);
    if (rc == 0 && cp->body_truncated) rc = hk_buf_puts(out, HK_CAPTURE_TRUNCATED_MARK);
    if (rc) out->len = old;
    return rc;
}

typedef struct hline {
    const char *name, *value;
    size_t nlen, vlen;
} hline;

static int name_eq(const hline *a, const hline *b)
{
    if (a->nlen != b->nlen) return 0;
    for (size_t i = 0; i < a->nlen; i++) {
        unsigned char x = (unsigned char)a->name[i], y = (unsigned char)b->name[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}

/* Splits the kept lines into name/value pairs (status line and malformed lines skipped);
 * returns how many, at most HK_CAPTURE_HEADER_LINES. */
static int split_lines(const hk_capture *cp, hline *out)
{
    const char *p = cp->hdrs.data, *end = p ? p + cp->hdrs.len : p;
    int n = 0;
    if (p && end - p >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    while (p && p < end && n < HK_CAPTURE_HEADER_LINES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p && *p != ' ' && *p != '\t') {
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            out[n++] = (hline){p, v, (size_t)(colon - p), (size_t)(ve - v)};
        }
        p = nl ? nl + 1 : end;
    }
    return n;
}

int hk_capture_headers_json(const hk_capture *cp, hk_buf *out, hk_buf *ra)
{
    hline lines[HK_CAPTURE_HEADER_LINES];
    int n = split_lines(cp, lines), rc = 0;
    static const hline retry_after = {"retry-after", NULL, 11, 0};
    size_t old = out->len;
    hk_buf name, value;
    hk_buf_init(&name, HK_BUF_UNLIMITED);
    hk_buf_init(&value, HK_BUF_UNLIMITED);
    if (ra) hk_buf_reset(ra);
    hk_jw w;
    hk_jw_init(&w, out);
    hk_jw_obj_open(&w);
    for (int i = 0; i < n && rc == 0; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = name_eq(&lines[j], &lines[i]);
        if (seen) continue; /* joined into the first one's value */
        hk_buf_reset(&name);
        hk_buf_reset(&value);
        rc = hk_capture_text(&name, lines[i].name, lines[i].nlen);
        for (size_t k = 0; k < name.len; k++)
            if (name.data[k] >= 'A' && name.data[k] <= 'Z') name.data[k] += 32;
        for (int j = i; j < n && rc == 0; j++) {
            if (j > i && !name_eq(&lines[j], &lines[i])) continue;
            if (j > i) rc = hk_buf_append(&value, ", ", 2);
            if (rc == 0) rc = hk_capture_text(&value, lines[j].value, lines[j].vlen);
        }
        if (rc) break;
        hk_jw_key(&w, hk_buf_cstr(&name));
        hk_jw_strn(&w, value.data ? value.data : "", value.len);
        if (ra && name_eq(&lines[i], &retry_after))
            rc = hk_buf_append(ra, lines[i].value, lines[i].vlen);
    }
    hk_jw_obj_close(&w);
    if (rc == 0) rc = hk_jw_error(&w);
    if (rc) out->len = old;
    hk_buf_free(&name);
    hk_buf_free(&value);
    return rc;
}
