/*
 * log.c: structured log lines (see log.h). Each line is built in a buffer on the caller's stack
 * and written with one write(2), so there is no lock and threads never interleave within a
 * line. A line is at most HK_LOG_LINE_MAX bytes: a longer one is cut at a character boundary,
 * the string being written is closed, the fields that no longer fit are dropped and the line
 * ends with `truncated=true` (text) or `"truncated":true` (JSON), so it stays parseable.
 *
 * Text form: `<ts> <LEVEL> <event> key=value ...`. A string value is written as it is unless
 * it is empty or holds a space, '"', '=', a control character or bytes that are not UTF-8;
 * then it is double-quoted with \" \\ \n \r \t and \xNN escapes. A NULL string field is left
 * out. JSON form: one object per line, strings escaped by the small escaper below (invalid
 * UTF-8 becomes U+FFFD), a NULL string is null, a non-finite number is null.
 */
#include "core/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

#define HK_LOG_LINE_MAX 16384 /* bytes per line, '\n' included */
#define LINE_RESERVE    32    /* kept free for the closing quote, marker, '}' and '\n' */
#define HK_LOG_TS_LEN   96    /* room for any struct tm, not only 4-digit years */

int hk_log_min_level = HK_LOG_INFO;
static int log_json = 0;
static int log_fd = 2;

static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_lower[] = {"debug", "info", "warn", "error"};

/* ---- the line buffer ------------------------------------------------------------------------ */

typedef struct line {
    char *b;
    size_t len;
    size_t lim; /* ordinary appends stop here; the reserve above it is for closing bytes */
    int full;   /* an append did not fit: everything after it is dropped */
} line;

/* Appends n bytes as one unit (never split); sets full and drops it if it does not fit. */
static void put(line *l, const char *s, size_t n)
{
    if (l->full) return;
    if (l->len + n > l->lim) {
        l->full = 1;
        return;
    }
    memcpy(l->b + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Appends closing bytes into the reserve (always fits: the reserve is sized for them). */
static void put_closing(line *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len + n > HK_LOG_LINE_MAX) return; /* cannot happen; never overflow */
    memcpy(l->b + l->len, s, n);
    l->len += n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes are not valid UTF-8
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
        if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
        if (c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xf4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static const char hexd[] = "0123456789abcdef";

/* ---- JSON ----------------------------------------------------------------------------------- */

/* Appends s as a JSON string. Returns 0 if at least the opening quote fitted (the string is
 * then always closed, maybe cut short), -1 if nothing was written. */
static int json_str(line *l, const char *s)
{
    put(l, "\"", 1);
    if (l->full) return -1;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && !l->full) {
        unsigned c = *p;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\', e[1] = (char)c;
            put(l, e, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c == '\b') {
            put(l, "\\b", 2);
        } else if (c == '\f') {
            put(l, "\\f", 2);
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(e, "\\u00", 4);
            e[4] = hexd[c >> 4], e[5] = hexd[c & 15];
            put(l, e, 6);
        } else if (c < 0x80) {
            put(l, (const char *)p, 1);
        } else {
            size_t n = utf8_seq(p);
            if (n == 0) {
                put(l, "\\ufffd", 6);
                p++;
                continue;
            }
            put(l, (const char *)p, n);
            p += n;
            continue;
        }
        p++;
    }
    put_closing(l, "\"");
    return 0;
}

/* ---- text ----------------------------------------------------------------------------------- */

static int text_needs_quotes(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!*p) return 1;
    while (*p) {
        if (*p == ' ' || *p == '"' || *p == '=' || *p < 0x20 || *p == 0x7f) return 1;
        size_t n = utf8_seq(p);
        if (n == 0) return 1;
        p += n;
    }
    return 0;
}

/* Appends s in the text form: bare, or quoted and escaped when needed. Returns 0 if some of
 * it was written (a quoted string is then always closed, maybe cut short), -1 if none. */
static int text_str(line *l, const char *s)
{
    size_t start = l->len;
    if (!text_needs_quotes(s)) {
        /* bare: only printable ASCII and valid UTF-8; cut only between characters */
        const unsigned char *p = (const unsigned char *)s;
        while (*p && !l->full) {
            size_t n = utf8_seq(p);
            put(l, (const char *)p, n);
            p += n;
        }
        return l->len > start ? 0 : -1;
    }
    put(l, "\"", 1);
    if (l->full) return -1;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && !l->full) {
        unsigned c = *p;
        char e[4];
        size_t n = c < 0x80 ? 1 : utf8_seq(p);
        if (c == '"' || c == '\\') {
            e[0] = '\\', e[1] = (char)c;
            put(l, e, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f || n == 0) {
            e[0] = '\\', e[1] = 'x', e[2] = hexd[c >> 4], e[3] = hexd[c & 15];
            put(l, e, 4);
            n = 1;
        } else {
            put(l, (const char *)p, n);
        }
        p += n;
    }
    put_closing(l, "\"");
    return 0;
}

/* Keys come from code, but a stray byte must not break the line's shape: anything that is not
 * printable ASCII, or is ' ', '=' or '"', is written as '_'. */
static void text_key(line *l, const char *k)
{
    char tmp[128];
    size_t n = 0;
    for (; k[n] && n < sizeof tmp; n++) {
        unsigned char c = (unsigned char)k[n];
        tmp[n] = (c <= 0x20 || c >= 0x7f || c == '=' || c == '"') ? '_' : (char)c;
    }
    put(l, tmp, n);
}

/* ---- numbers and time ----------------------------------------------------------------------- */

/* Shortest of %.15g / %.17g that reads back as d; "null" (JSON) or nan/inf (text) if not
 * finite. */
static void fmt_double(double d, int json, char *out, size_t outlen)
{
    if (!isfinite(d)) {
        snprintf(out, outlen, "%s", json ? "null" : isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return;
    }
    snprintf(out, outlen, "%.15g", d);
    if (strtod(out, NULL) != d) snprintf(out, outlen, "%.17g", d);
}

/* Writes "2026-11-22T10:00:00.123Z" (UTC, milliseconds) into out. */
static void fmt_now(char out[HK_LOG_TS_LEN])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec;
    if (!gmtime_r(&t, &tm)) memset(&tm, 0, sizeof tm);
    snprintf(out, HK_LOG_TS_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));
}

/* ---- API ------------------------------------------------------------------------------------ */

static int level_from_name(const char *s)
{
    for (int i = HK_LOG_DEBUG; i <= HK_LOG_ERROR; i++)
        if (strcasecmp(s, level_lower[i]) == 0) return i;
    return -1;
}

int hk_log_setup(const char *format, const char *level)
{
    if (!format || !level) return HK_EINVAL;
    int json;
    if (strcasecmp(format, "text") == 0)
        json = 0;
    else if (strcasecmp(format, "json") == 0)
        json = 1;
    else
        return HK_EINVAL;
    int lv = level_from_name(level);
    if (lv < 0) return HK_EINVAL;
    __atomic_store_n(&log_json, json, __ATOMIC_RELAXED);
    __atomic_store_n(&hk_log_min_level, lv, __ATOMIC_RELAXED);
    return HK_OK;
}

void hk_log_set_fd(int fd)
{
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
}

/* Writes the whole line, retrying after EINTR or a partial write; gives up on other errors
 * (there is nowhere left to report them). */
static void write_line(const char *p, size_t n)
{
    int fd = __atomic_load_n(&log_fd, __ATOMIC_RELAXED);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

void hk_log_emit(int level, const char *event, const hk_log_field *fields)
{
    if (level < HK_LOG_DEBUG) level = HK_LOG_DEBUG;
    if (level > HK_LOG_ERROR) level = HK_LOG_ERROR;
    if (level < __atomic_load_n(&hk_log_min_level, __ATOMIC_RELAXED)) return;
    int json = __atomic_load_n(&log_json, __ATOMIC_RELAXED);
    int saved_errno = errno;

    char buf[HK_LOG_LINE_MAX];
    line l = {buf, 0, HK_LOG_LINE_MAX - LINE_RESERVE, 0};
    char ts[HK_LOG_TS_LEN], num[64];
    fmt_now(ts);
    if (!event) event = "-";

    if (json) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_lower[level]);
        puts_(&l, "\",\"event\":");
        json_str(&l, event);
    } else {
        puts_(&l, ts);
        put(&l, " ", 1);
        puts_(&l, level_upper[level]);
        put(&l, " ", 1);
        text_str(&l, event);
    }
    for (const hk_log_field *f = fields; f && f->type != HK_LF_END && !l.full; f++) {
        if (!f->key) continue;
        if (f->type == HK_LF_STR && !f->s && !json) continue; /* text: a NULL string is left out */
        size_t save = l.len;
        if (json) {
            put(&l, ",", 1);
            if (json_str(&l, f->key) || l.full) goto rollback;
            put(&l, ":", 1);
        } else {
            put(&l, " ", 1);
            text_key(&l, f->key);
            put(&l, "=", 1);
        }
        if (l.full) goto rollback;
        switch (f->type) {
        case HK_LF_STR:
            if (!f->s) {
                put(&l, "null", 4);
            } else {
                if (json ? json_str(&l, f->s) : text_str(&l, f->s)) goto rollback;
                continue; /* a string cut short is kept (closed) */
            }
            break;
        case HK_LF_INT:
            snprintf(num, sizeof num, "%lld", (long long)f->i);
            puts_(&l, num);
            break;
        case HK_LF_DBL:
            fmt_double(f->d, json, num, sizeof num);
            puts_(&l, num);
            break;
        default:
            l.len = save;
            continue; /* unknown type: skipped */
        }
        if (!l.full) continue;
    rollback:
        l.len = save; /* never leave half a key or half a number */
        l.full = 1;
    }
    if (json) {
        if (l.full) put_closing(&l, ",\"truncated\":true");
        put_closing(&l, "}\n");
    } else {
        if (l.full) put_closing(&l, " truncated=true");
        put_closing(&l, "\n");
    }
    write_line(buf, l.len);
    errno = saved_errno;
}
