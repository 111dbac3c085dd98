/*
 * fuzz_http.c: the HTTP request-head parser and the chunked decoder (http/parse.c), fed the
 * way the server feeds them: the head found by hk_http_head_end, parsed in place, then the
 * rest as a chunked body in pieces of varying size. Every string the parser returns must lie
 * inside the buffer and be NUL-terminated there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

static void inside(const char *p, const char *buf, size_t len)
{
    if (!p) return;
    if (p < buf || p >= buf + len) abort();
    if (!memchr(p, '\0', (size_t)(buf + len - p))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    hk_http_scan s;
    hk_http_scan_init(&s);
    size_t end = hk_http_head_end(buf, size, &s);
    size_t body_at = 0;
    if (end) {
        hk_http_header hdrs[16];
        hk_http_head h;
        memset(&h, 0, sizeof h);
        if (hk_http_parse_head(buf, end, hdrs, 16, &h) == 0) {
            inside(h.path, buf, end);
            inside(h.query, buf, end);
            for (int i = 0; i < h.nheaders; i++) {
                inside(hdrs[i].name, buf, end);
                inside(hdrs[i].value, buf, end);
            }
        } else if (h.status < 400 || h.status > 505 || !h.message) {
            abort();
        }
        body_at = end;
    }
    /* the rest (or everything) as a chunked body, in pieces of 1, 2, 3... bytes */
    hk_http_chunked c;
    hk_http_chunked_init(&c, 1 << 16, 1024);
    const char *in = (const char *)data + body_at;
    size_t left = size - body_at, step = 1, total = 0;
    while (left > 0) {
        size_t give = step < left ? step : left, used = 0, dl = 0;
        const char *d = NULL;
        int rc = hk_http_chunked_step(&c, in, give, &used, &d, &dl);
        if (used > give || (dl && (d < in || d + dl > in + give))) abort();
        total += dl;
        if (total > (1 << 16)) abort();
        if (rc != 0) break;
        in += used;
        left -= used;
        if (used == 0) step++;
    }
    free(buf);

    char v[64];
    char *q = malloc(size + 1);
    if (!q) abort();
    memcpy(q, data, size);
    q[size] = '\0';
    if (hk_http_query_get(q, "a", v, sizeof v) == 0 && strlen(v) >= sizeof v) abort();
    free(q);
    return 0;
}
