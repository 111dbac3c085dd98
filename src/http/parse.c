/*
 * parse.c: the request-head parser and the chunked decoder (see parse.h for the contract and
 * the exact strictness rules). Byte classes are 256-bit tables; the head is walked once with a
 * pointer, and every check that fails returns with the status to answer.
 */
#include "http/parse.h"

#include <string.h>

/* ---- byte classes ------------------------------------------------------------------------ */

/* Bit c of a table is set when byte c belongs to the class. */
typedef struct {
    uint32_t w[8];
} byteset;

/* tchar (RFC 9110 §5.6.2): ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ */
static const byteset TCHAR = {{0, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff, 0, 0, 0, 0}};
/* origin-form target bytes: visible ASCII 0x21-0x7e except '#' */
static const byteset TARGET = {{0, 0xfffffff6, 0xffffffff, 0x7fffffff, 0, 0, 0, 0}};
/* field value bytes: HTAB, SP, visible ASCII, obs-text 0x80-0xff (no CTL, no DEL) */
static const byteset VALUE = {{0x00000200, 0xffffffff, 0xffffffff, 0x7fffffff, 0xffffffff,
                               0xffffffff, 0xffffffff, 0xffffffff}};
/* Host value bytes: unreserved, sub-delims, ':', '[', ']', '%' */
static const byteset HOSTC = {{0, 0x2fff7ff2, 0xaffffffe, 0x47fffffe, 0, 0, 0, 0}};

static inline bool in_set(const byteset *s, unsigned char c)
{
    return (s->w[c >> 5] >> (c & 31)) & 1u;
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of s[0..n) with the lowercase NUL-terminated word. */
static bool eq_nocase(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    if (n != wl) return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != word[i]) return false;
    return true;
}

/* ---- end of head ------------------------------------------------------------------------- */

size_t hk_http_head_end(const char *buf, size_t len, hk_http_scan *s)
{
    size_t p = s->pos;
    while (p < len) {
        const char *nl = memchr(buf + p, '\n', len - p);
        if (!nl) break;
        size_t lf = (size_t)(nl - buf);
        size_t ll = lf - s->line_start;
        bool blank = ll == 0 || (ll == 1 && buf[lf - 1] == '\r');
        s->line_start = lf + 1;
        p = lf + 1;
        if (!blank) {
            s->lines++;
        } else if (s->lines > 0) {
            s->pos = p;
            return p;
        }
    }
    s->pos = len;
    return 0;
}

/* ---- request head ------------------------------------------------------------------------ */

static int fail(hk_http_head *h, int status, const char *code, const char *message)
{
    h->status = status;
    h->code = code;
    h->message = message;
    return HK_EPARSE;
}

#define BAD(msg) fail(h, 400, "bad_request", (msg))

/* Consumes a line end at *pp: CRLF or LF. false if something else is there. */
static bool eat_eol(char **pp, const char *end)
{
    char *p = *pp;
    if (p < end && *p == '\n') {
        *pp = p + 1;
        return true;
    }
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
        *pp = p + 2;
        return true;
    }
    return false;
}

static int method_of(const char *m, size_t n)
{
    static const struct {
        const char *s;
        int m;
    } tbl[] = {{"GET", HK_HTTP_GET},        {"HEAD", HK_HTTP_HEAD},   {"POST", HK_HTTP_POST},
               {"PUT", HK_HTTP_PUT},        {"PATCH", HK_HTTP_PATCH}, {"DELETE", HK_HTTP_DELETE},
               {"OPTIONS", HK_HTTP_OPTIONS}};
    for (size_t i = 0; i < HK_ARRAY_LEN(tbl); i++)
        if (strlen(tbl[i].s) == n && memcmp(tbl[i].s, m, n) == 0) return tbl[i].m;
    return HK_HTTP_OTHER;
}

/* Parses a Content-Length value (digits only, at least one); saturates at UINT64_MAX. */
static bool parse_length(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v) return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9') return false;
        unsigned d = (unsigned)(*v - '0');
        if (n > (UINT64_MAX - d) / 10)
            n = UINT64_MAX;
        else
            n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* Walks the comma-separated tokens of a Connection value. */
static void connection_tokens(const char *v, bool *close, bool *keep)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',') v++;
        const char *t = v;
        while (*v && *v != ',' && *v != ' ' && *v != '\t') v++;
        size_t n = (size_t)(v - t);
        if (eq_nocase(t, n, "close")) *close = true;
        if (eq_nocase(t, n, "keep-alive")) *keep = true;
        while (*v && *v != ',') v++;
    }
}

/* Per-request state of the header checks. */
typedef struct {
    bool te_seen, te_bad, conn_close, conn_keep, host_seen;
} hstate;

/* Checks the semantics of one header (name lowercased, value trimmed). */
static int check_header(hk_http_head *h, hstate *st, const char *name, size_t nlen,
                        const char *value)
{
    switch (nlen) {
    case 4:
        if (memcmp(name, "host", 4) == 0) {
            if (st->host_seen) return BAD("more than one Host header");
            for (const char *v = value; *v; v++)
                if (!in_set(&HOSTC, (unsigned char)*v)) return BAD("invalid Host header");
            st->host_seen = true;
            h->host = value;
        }
        break;
    case 6:
        if (memcmp(name, "expect", 6) == 0) {
            if (!eq_nocase(value, strlen(value), "100-continue"))
                return fail(h, 417, "expectation_failed", "only Expect: 100-continue is supported");
            h->expect_continue = true;
        }
        break;
    case 10:
        if (memcmp(name, "connection", 10) == 0)
            connection_tokens(value, &st->conn_close, &st->conn_keep);
        break;
    case 14:
        if (memcmp(name, "content-length", 14) == 0) {
            uint64_t n;
            if (!parse_length(value, &n)) return BAD("invalid Content-Length");
            if (h->has_length && n != h->content_length)
                return BAD("conflicting Content-Length headers");
            h->has_length = true;
            h->content_length = n;
        }
        break;
    case 17:
        if (memcmp(name, "transfer-encoding", 17) == 0) {
            if (!*value) return BAD("empty Transfer-Encoding");
            if (st->te_seen || !eq_nocase(value, strlen(value), "chunked")) st->te_bad = true;
            st->te_seen = true;
        }
        break;
    default:
        break;
    }
    return 0;
}

int hk_http_parse_head(char *buf, size_t len, hk_http_header *hdrs, int hdrcap, hk_http_head *h)
{
    memset(h, 0, sizeof *h);
    hstate st = {0};
    char *p = buf;
    const char *end = buf + len;

    /* Blank lines before the request line. */
    while (p < end && (*p == '\r' || *p == '\n'))
        if (!eat_eol(&p, end)) return BAD("bare CR in the request head");

    /* Method. */
    char *m = p;
    while (p < end && in_set(&TCHAR, (unsigned char)*p)) p++;
    if (p == m || p >= end || *p != ' ') return BAD("malformed request line");
    size_t mlen = (size_t)(p - m);
    *p++ = '\0';
    h->method_str = m;
    h->method = method_of(m, mlen);

    /* Request target. */
    char *t = p;
    while (p < end && in_set(&TARGET, (unsigned char)*p)) p++;
    if (p == t || p >= end || *p != ' ') return BAD("malformed request target");
    *p++ = '\0';

    /* Version. */
    if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
        p[7] < '0' || p[7] > '9')
        return BAD("malformed HTTP version");
    int major = p[5] - '0', minor = p[7] - '0';
    p += 8;
    if (!eat_eol(&p, end)) return BAD("malformed request line");
    if (major != 1 || minor > 1)
        return fail(h, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
    h->minor = minor;

    if (t[0] == '/') {
        char *q = strchr(t, '?');
        if (q) {
            *q = '\0';
            h->query = q + 1;
        }
        h->path = t;
    } else if (t[0] == '*' && t[1] == '\0' && h->method == HK_HTTP_OPTIONS) {
        h->path = t;
    } else {
        return BAD("the request target must be a path starting with '/'");
    }

    /* Header fields. */
    int n = 0;
    for (;;) {
        if (p >= end) return BAD("unterminated request head");
        if (*p == '\r' || *p == '\n') {
            if (!eat_eol(&p, end)) return BAD("bare CR in the request head");
            break;
        }
        if (*p == ' ' || *p == '\t') return BAD("obsolete line folding is not accepted");
        char *name = p;
        while (p < end && in_set(&TCHAR, (unsigned char)*p)) {
            *p = lower(*p);
            p++;
        }
        if (p >= end || *p != ':') return BAD("malformed header field name");
        size_t nlen = (size_t)(p - name);
        *p++ = '\0';
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        char *value = p, *vend = p;
        while (p < end && *p != '\r' && *p != '\n') {
            unsigned char c = (unsigned char)*p;
            if (!in_set(&VALUE, c)) return BAD("forbidden character in a header value");
            p++;
            if (c != ' ' && c != '\t') vend = p;
        }
        if (!eat_eol(&p, end)) return BAD("bare CR in the request head");
        *vend = '\0';
        if (n >= hdrcap) return fail(h, 431, "header_too_large", "too many header fields");
        hdrs[n].name = name;
        hdrs[n].value = value;
        n++;
        int rc = check_header(h, &st, name, nlen, value);
        if (rc) return rc;
    }
    if (p != end) return BAD("bytes after the end of the request head");
    h->nheaders = n;

    if (st.te_seen) {
        if (h->has_length) return BAD("both Transfer-Encoding and Content-Length");
        if (minor == 0) return BAD("Transfer-Encoding in an HTTP/1.0 request");
        if (st.te_bad)
            return fail(h, 501, "not_implemented", "only the chunked transfer coding is supported");
        h->chunked = true;
    }
    if (minor == 1 && !st.host_seen) return BAD("missing Host header");
    if (minor == 0) h->expect_continue = false; /* RFC 9110 §10.1.1 */
    h->keep_alive = minor == 1 ? !st.conn_close : (st.conn_keep && !st.conn_close);
    return 0;
}

/* ---- chunked body ------------------------------------------------------------------------ */

enum {
    CS_SIZE,      /* at the first hex digit of a size line */
    CS_SIZE_MORE, /* after one hex digit */
    CS_SIZE_WS,   /* whitespace after the size: ';' or line end must follow */
    CS_EXT,       /* inside chunk extensions */
    CS_SIZE_LF,   /* CR seen at the end of the size line */
    CS_DATA,      /* chunk data */
    CS_DATA_CR,   /* CRLF after chunk data */
    CS_DATA_LF,
    CS_TRAILER, /* at the start of a trailer line (or the final blank line) */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_END_LF, /* CR of the final blank line seen */
    CS_DONE,
    CS_ERR_PARSE,
    CS_ERR_BIG,
};

void hk_http_chunked_init(hk_http_chunked *c, size_t max_total, size_t max_trailer)
{
    memset(c, 0, sizeof *c);
    c->state = CS_SIZE;
    c->max_total = max_total;
    c->max_trailer = max_trailer;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The size line is over: start the chunk's data, or the trailers after the last chunk. */
static void size_line_done(hk_http_chunked *c)
{
    c->state = c->size ? CS_DATA : CS_TRAILER;
}

/* The data of a chunk and its line end are over: the next size line starts. */
static void next_size(hk_http_chunked *c)
{
    c->state = CS_SIZE;
    c->size = 0;
    c->digits = 0;
    c->line = 0;
}

int hk_http_chunked_step(hk_http_chunked *c, const char *in, size_t len, size_t *used,
                         const char **data, size_t *datalen)
{
    size_t i = 0;
    *data = NULL;
    *datalen = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        int prev = c->state;
        switch (c->state) {
        case CS_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->size) n = (size_t)c->size;
            *data = in + i;
            *datalen = n;
            c->size -= n;
            c->total += n;
            if (c->size == 0) c->state = CS_DATA_CR;
            *used = i + n;
            return 0;
        }
        case CS_SIZE:
        case CS_SIZE_MORE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (c->size || v) c->digits++;
                if (c->digits > 16) goto bad;
                c->size = (c->size << 4) | (uint64_t)v;
                c->state = CS_SIZE_MORE;
            } else if (c->state == CS_SIZE) {
                goto bad;
            } else {
                if (c->size > c->max_total - c->total) goto big;
                if (ch == ';')
                    c->state = CS_EXT;
                else if (ch == ' ' || ch == '\t')
                    c->state = CS_SIZE_WS;
                else if (ch == '\r')
                    c->state = CS_SIZE_LF;
                else
                    goto bad; /* a bare LF included: CRLF only in chunk framing */
            }
            break;
        }
        case CS_SIZE_WS:
            if (ch == ';')
                c->state = CS_EXT;
            else if (ch != ' ' && ch != '\t')
                goto bad;
            break;
        case CS_EXT:
            if (ch == '\r')
                c->state = CS_SIZE_LF;
            else if (!in_set(&VALUE, ch))
                goto bad;
            break;
        case CS_SIZE_LF:
            if (ch != '\n') goto bad;
            size_line_done(c);
            break;
        case CS_DATA_CR:
            if (ch == '\r')
                c->state = CS_DATA_LF;
            else
                goto bad;
            break;
        case CS_DATA_LF:
            if (ch != '\n') goto bad;
            next_size(c);
            break;
        case CS_TRAILER:
            if (ch == '\r')
                c->state = CS_END_LF;
            else if (in_set(&TCHAR, ch))
                c->state = CS_TRAILER_NAME;
            else
                goto bad;
            break;
        case CS_TRAILER_NAME:
            if (ch == ':')
                c->state = CS_TRAILER_VALUE;
            else if (!in_set(&TCHAR, ch))
                goto bad;
            break;
        case CS_TRAILER_VALUE:
            if (ch == '\r')
                c->state = CS_TRAILER_LF;
            else if (!in_set(&VALUE, ch))
                goto bad;
            break;
        case CS_TRAILER_LF:
            if (ch != '\n') goto bad;
            c->state = CS_TRAILER;
            break;
        case CS_END_LF:
            if (ch != '\n') goto bad;
            c->state = CS_DONE;
            break;
        default: /* CS_DONE, errors: consume nothing */
            goto out;
        }
        i++;
        /* Caps on what is not data: each size line (with its extensions) and the trailers. */
        if (prev >= CS_TRAILER && prev <= CS_END_LF) {
            if (++c->trailer > c->max_trailer) goto big;
        } else if (prev <= CS_SIZE_LF) {
            if (++c->line > HK_HTTP_CHUNK_LINE_MAX) goto bad;
        }
        if (c->state == CS_DONE) break;
    }
out:
    *used = i;
    switch (c->state) {
    case CS_DONE:
        return 1;
    case CS_ERR_PARSE:
        return HK_EPARSE;
    case CS_ERR_BIG:
        return HK_ETOOBIG;
    default:
        return 0;
    }
bad:
    c->state = CS_ERR_PARSE;
    *used = i;
    return HK_EPARSE;
big:
    c->state = CS_ERR_BIG;
    *used = i;
    return HK_ETOOBIG;
}

/* ---- query strings ----------------------------------------------------------------------- */

/* Decodes one byte of a query component at s[*i] (n bytes in all): '+' is a space, "%XY" a
 * byte. Returns the byte (0-255) and advances *i, or -1 for a bad escape. */
static int query_byte(const char *s, size_t n, size_t *i)
{
    unsigned char ch = (unsigned char)s[*i];
    if (ch == '+') {
        (*i)++;
        return ' ';
    }
    if (ch != '%') {
        (*i)++;
        return ch;
    }
    if (n - *i < 3) return -1;
    int hi = hexval((unsigned char)s[*i + 1]), lo = hexval((unsigned char)s[*i + 2]);
    if (hi < 0 || lo < 0) return -1;
    *i += 3;
    return hi * 16 + lo;
}

/* 1 if the component s[0..n) decodes exactly to key. */
static bool query_key_is(const char *s, size_t n, const char *key)
{
    size_t i = 0, k = 0;
    while (i < n) {
        int b = query_byte(s, n, &i);
        if (b <= 0 || key[k] == '\0' || (unsigned char)key[k] != b) return false;
        k++;
    }
    return key[k] == '\0';
}

int hk_http_query_get(const char *query, const char *key, char *out, size_t outlen)
{
    if (!key) return HK_EINVAL;
    if (!query) return HK_ENOTFOUND;
    const char *p = query;
    while (*p) {
        const char *seg = p, *amp = strchr(p, '&');
        size_t slen = amp ? (size_t)(amp - seg) : strlen(seg);
        p = amp ? amp + 1 : seg + slen;
        const char *eq = memchr(seg, '=', slen);
        size_t klen = eq ? (size_t)(eq - seg) : slen;
        if (slen == 0 || !query_key_is(seg, klen, key)) continue;

        const char *v = eq ? eq + 1 : seg + slen;
        size_t vlen = (size_t)(seg + slen - v), i = 0, o = 0;
        bool too_big = false;
        while (i < vlen) {
            int b = query_byte(v, vlen, &i);
            if (b <= 0) return HK_EINVAL; /* bad escape or %00 */
            if (o + 1 < outlen)
                out[o++] = (char)b;
            else
                too_big = true;
        }
        if (too_big || outlen == 0) return HK_ETOOBIG;
        out[o] = '\0';
        return 0;
    }
    return HK_ENOTFOUND;
}
