/*
 * fuzz_response.c: an endpoint's answer as a hostile receiver sends it (delivery/capture.c),
 * then rendered as the API shows it (api/render.c). The input is the raw response: header
 * lines up to the first empty line, each handed over as curl's header callback does (status
 * line included, a second "HTTP/" line starting a new response), then the body in chunks as
 * curl's write callback does, against a 64-byte body cap. Properties checked beyond "no
 * crash": the body text is valid UTF-8 without NUL; the headers are a JSON object of at most
 * HK_CAPTURE_HEADER_LINES members; the rendered delivery parses with hookd's own parser and
 * shows that object (not null).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/json.h"
#include "delivery/capture.h"

#define BODY_MAX 64

/* Aborts unless s[0..n) is valid UTF-8 without NUL. */
static void check_text(const char *s, size_t n)
{
    for (size_t i = 0, bad, l; i < n; i += l)
        if (!s[i] || (l = hk_utf8_seq(s + i, n - i, &bad)) == 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    hk_capture cp;
    hk_capture_init(&cp, BODY_MAX);
    while (p < end) { /* header lines, each with its line end, up to the empty line */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl + 1 : end;
        int blank = le - p <= 2 && (*p == '\n' || *p == '\r');
        hk_capture_header(&cp, p, (size_t)(le - p));
        p = le;
        if (blank) break;
    }
    size_t chunk = 1 + size % 13;
    while (p < end) {
        size_t n = (size_t)(end - p) < chunk ? (size_t)(end - p) : chunk;
        if (hk_capture_body(&cp, p, n) < n) break; /* curl stops at a short count */
        p += n;
    }

    hk_buf hj, ra, body, out;
    hk_buf_init(&hj, HK_BUF_UNLIMITED);
    hk_buf_init(&ra, HK_BUF_UNLIMITED);
    hk_buf_init(&body, HK_BUF_UNLIMITED);
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    if (hk_capture_headers_json(&cp, &hj, &ra) || hk_capture_body_text(&cp, &body)) abort();
    check_text(body.data ? body.data : "", body.len);
    hk_jdoc doc;
    if (hk_json_parse(&doc, hk_buf_cstr(&hj), hj.len, 1 << 16, 8) ||
        hk_json_type(&doc, 0) != HK_J_OBJECT || doc.toks[0].size > HK_CAPTURE_HEADER_LINES)
        abort();
    hk_json_free(&doc);

    hk_attempt a;
    memset(&a, 0, sizeof a);
    hk_strlcpy(a.id, "whda_1", sizeof a.id);
    a.attempt_number = 1;
    a.response_status = 500;
    a.response_body = (char *)hk_buf_cstr(&body);
    a.response_headers = (char *)hk_buf_cstr(&hj);
    hk_delivery d;
    memset(&d, 0, sizeof d);
    hk_strlcpy(d.id, "whd_1", sizeof d.id);
    d.response_status = 500;
    d.response_body = a.response_body;
    d.response_headers = a.response_headers;
    d.attempts = &a;
    d.nattempts = 1;
    hk_jw w;
    hk_jw_init(&w, &out);
    hk_render_delivery(&w, &d);
    if (hk_jw_error(&w)) abort();
    if (hk_json_parse(&doc, hk_buf_cstr(&out), out.len, 1 << 16, 8)) abort();
    int h = hk_json_obj_get(&doc, 0, "responseHeaders");
    if (hk_json_type(&doc, h) != HK_J_OBJECT) abort();
    hk_json_free(&doc);

    hk_buf_free(&hj);
    hk_buf_free(&ra);
    hk_buf_free(&body);
    hk_buf_free(&out);
    hk_capture_free(&cp);
    return 0;
}
