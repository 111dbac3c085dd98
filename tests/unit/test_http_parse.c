/*
 * test_http_parse.c: the HTTP request-head parser and the chunked decoder (src/http/parse.c),
 * with the inputs an attacker sends: CR/LF/NUL where they may not be, duplicate or conflicting
 * Content-Length, Transfer-Encoding tricks, obs-fold, absolute-form targets, too many headers,
 * oversized chunk sizes; and the query-string reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "http/parse.h"
#include "http/server.h"

/* Parses a head given as a C string; returns the parser's rc and fills h and hdrs. */
static int parse(const char *text, hk_http_head *h, hk_http_header *hdrs, int cap, char *buf)
{
    size_t n = strlen(text);
    memcpy(buf, text, n + 1);
    hk_http_scan s;
    hk_http_scan_init(&s);
    size_t end = hk_http_head_end(buf, n, &s);
    if (end == 0) return 1; /* incomplete */
    memset(h, 0, sizeof *h);
    return hk_http_parse_head(buf, end, hdrs, cap, h);
}

static void test_valid_request(void **state)
{
    (void)state;
    char buf[1024];
    hk_http_head h;
    hk_http_header hd[8];
    assert_int_equal(parse("POST /api/x?a=1&b=2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                           "X-Thing:   v a l  \r\n\r\n",
                           &h, hd, 8, buf),
                     0);
    assert_int_equal(h.method, HK_HTTP_POST);
    assert_string_equal(h.path, "/api/x");
    assert_string_equal(h.query, "a=1&b=2");
    assert_int_equal(h.minor, 1);
    assert_true(h.has_length);
    assert_int_equal(h.content_length, 5);
    assert_true(h.keep_alive);
    assert_false(h.chunked);
    assert_int_equal(h.nheaders, 3);
    assert_string_equal(hd[2].name, "x-thing");
    assert_string_equal(hd[2].value, "v a l");
    /* bare LF line ends and HTTP/1.0 without keep-alive */
    assert_int_equal(parse("GET / HTTP/1.0\n\n", &h, hd, 8, buf), 0);
    assert_int_equal(h.minor, 0);
    assert_false(h.keep_alive);
    assert_null(h.query);
}

/* Each malformed head and the status it must get. */
static void test_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: b\rX-Injected: 1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n folded\r\n\r\n", 400},
        {"GET http://evil/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\n\r\n", 400},                       /* no Host in 1.1 */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400}, /* two Hosts */
        {"GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417},
        {"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-\x01: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: b\x7f\r\n\r\n", 400},
    };
    char buf[1024];
    hk_http_head h;
    hk_http_header hd[8];
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        int rc = parse(cases[i].text, &h, hd, 8, buf);
        if (rc != HK_EPARSE || h.status != cases[i].status)
            fail_msg("case %zu: rc %d status %d, want %d", i, rc, h.status, cases[i].status);
        assert_non_null(h.code);
        assert_non_null(h.message);
    }
}

static void test_nul_and_header_count(void **state)
{
    (void)state;
    char buf[1024];
    const char head[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    memcpy(buf, head, sizeof head);
    hk_http_scan s;
    hk_http_scan_init(&s);
    size_t end = hk_http_head_end(buf, sizeof head - 1, &s);
    assert_int_equal(end, sizeof head - 1);
    hk_http_head h;
    hk_http_header hd[8];
    memset(&h, 0, sizeof h);
    assert_int_equal(hk_http_parse_head(buf, end, hd, 8, &h), HK_EPARSE);
    assert_int_equal(h.status, 400);
    /* one header more than the array holds: 431 */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", &h, hd, 2, buf),
                     HK_EPARSE);
    assert_int_equal(h.status, 431);
}

static void test_head_end_resumes(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT";
    hk_http_scan s;
    hk_http_scan_init(&s);
    size_t n = strlen(text);
    size_t want = n - 4;
    for (size_t i = 1; i < want; i++) assert_int_equal(hk_http_head_end(text, i, &s), 0);
    assert_int_equal(hk_http_head_end(text, n, &s), want);
}

/* Decodes a whole chunked body given at once; returns rc and the decoded bytes in out. */
static int dechunk(const char *in, size_t max, char *out, size_t *outlen, size_t *used_total)
{
    hk_http_chunked c;
    hk_http_chunked_init(&c, max, 1024);
    size_t len = strlen(in), off = 0;
    *outlen = 0;
    for (;;) {
        size_t used = 0, dl = 0;
        const char *d = NULL;
        int rc = hk_http_chunked_step(&c, in + off, len - off, &used, &d, &dl);
        memcpy(out + *outlen, d ? d : "", dl);
        *outlen += dl;
        off += used;
        if (rc != 0 || off == len) {
            *used_total = off;
            return rc;
        }
    }
}

static void test_chunked(void **state)
{
    (void)state;
    char out[256];
    size_t n, used;
    assert_int_equal(dechunk("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET", 100,
                             out, &n, &used),
                     1);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "hello world", 11);
    assert_int_equal(used, strlen("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"));
    /* over the cap: known from the size line, before any data */
    assert_int_equal(dechunk("65\r\n", 100, out, &n, &used), HK_ETOOBIG);
    /* a size that overflows 64 bits */
    assert_int_equal(dechunk("11111111111111111\r\n", 100, out, &n, &used), HK_EPARSE);
    assert_int_equal(dechunk("zz\r\n", 100, out, &n, &used), HK_EPARSE);
    assert_int_equal(dechunk("5\r\nhelloXX0\r\n\r\n", 100, out, &n, &used), HK_EPARSE);
    assert_int_equal(dechunk("-1\r\n", 100, out, &n, &used), HK_EPARSE);
    /* a bare LF anywhere in the framing: size line, extension, after data, trailers, end */
    static const char *const bare_lf[] = {
        "5\nhello\r\n0\r\n\r\n", "5;e=1\nhello\r\n0\r\n\r\n",     "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r\n0\n\r\n", "5\r\nhello\r\n0\r\nT: x\n\r\n", "5\r\nhello\r\n0\r\n\n",
    };
    for (size_t i = 0; i < sizeof bare_lf / sizeof *bare_lf; i++)
        assert_int_equal(dechunk(bare_lf[i], 100, out, &n, &used), HK_EPARSE);
}

static void test_query_get(void **state)
{
    (void)state;
    char v[16];
    assert_int_equal(hk_http_query_get("a=1&status=fail%65d&x", "status", v, sizeof v), 0);
    assert_string_equal(v, "failed");
    assert_int_equal(hk_http_query_get("a=b+c", "a", v, sizeof v), 0);
    assert_string_equal(v, "b c");
    assert_int_equal(hk_http_query_get("a=1", "b", v, sizeof v), HK_ENOTFOUND);
    assert_int_equal(hk_http_query_get(NULL, "b", v, sizeof v), HK_ENOTFOUND);
    assert_int_equal(hk_http_query_get("a=%00", "a", v, sizeof v), HK_EINVAL);
    assert_int_equal(hk_http_query_get("a=%zz", "a", v, sizeof v), HK_EINVAL);
    assert_int_equal(hk_http_query_get("a=0123456789abcdefXYZ", "a", v, sizeof v), HK_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_nul_and_header_count),
        cmocka_unit_test(test_head_end_resumes),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_query_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
