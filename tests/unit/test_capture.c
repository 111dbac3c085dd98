/*
 * test_capture.c: the response capture (delivery/capture.c) fed as curl's callbacks feed it:
 * text conversion (NUL and each maximal ill-formed UTF-8 subpart as one U+FFFD, control bytes
 * kept), the body cap and its mark, header caps (bytes and lines, whole lines only), a 1xx
 * interim answer forgotten, names lowercased and repeated names joined, Retry-After.
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
#include "delivery/capture.h"

#define FFFD "\xEF\xBF\xBD"

static void feed(hk_capture *cp, const char *lines)
{
    for (const char *p = lines; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        hk_capture_header(cp, p, n);
        p += n;
    }
}

static void assert_headers(hk_capture *cp, const char *want, const char *want_ra)
{
    hk_buf out, ra;
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    hk_buf_init(&ra, HK_BUF_UNLIMITED);
    assert_int_equal(hk_capture_headers_json(cp, &out, &ra), 0);
    assert_string_equal(hk_buf_cstr(&out), want);
    assert_string_equal(hk_buf_cstr(&ra), want_ra);
    hk_buf_free(&out);
    hk_buf_free(&ra);
}

static void test_text(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"a\0b", 3, "a" FFFD "b"},
        {"\x01\x1f\x7f", 3, "\x01\x1f\x7f"},
        {"\xff\xfe", 2, FFFD FFFD},
        {"\xe2\x82(", 3, FFFD "("},          /* a cut sequence is one U+FFFD */
        {"\xed\xa0\x80", 3, FFFD FFFD FFFD}, /* an encoded surrogate: three */
        {"\xc0\xaf", 2, FFFD FFFD},          /* overlong */
        {"\xf0\x9f\x98\x80\xc3\xa9", 6, "\xf0\x9f\x98\x80\xc3\xa9"},
        {"\xf0\x9f\x98", 3, FFFD},
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        hk_buf b;
        hk_buf_init(&b, HK_BUF_UNLIMITED);
        assert_int_equal(hk_capture_text(&b, cases[i].in, cases[i].n), 0);
        assert_int_equal(b.len, strlen(cases[i].out));
        assert_memory_equal(b.data ? b.data : "", cases[i].out, b.len);
        hk_buf_free(&b);
    }
    hk_buf small;
    hk_buf_init(&small, 4);
    assert_int_equal(hk_capture_text(&small, "ab\0", 3), HK_ETOOBIG);
    assert_int_equal(small.len, 0);
    hk_buf_free(&small);
}

static void test_body_cap(void **state)
{
    (void)state;
    hk_capture cp;
    hk_capture_init(&cp, 8);
    assert_int_equal(hk_capture_body(&cp, "abc\0", 4), 4);
    assert_int_equal(hk_capture_body(&cp, "defg", 4), 4);
    assert_int_equal(cp.body_truncated, 0);
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_capture_body_text(&cp, &b);
    assert_string_equal(hk_buf_cstr(&b), "abc" FFFD "defg");
    assert_int_equal(hk_capture_body(&cp, "h", 1), 0);
    assert_int_equal(cp.body_truncated, 1);
    hk_buf_reset(&b);
    hk_capture_body_text(&cp, &b);
    assert_string_equal(hk_buf_cstr(&b), "abc" FFFD "defg" HK_CAPTURE_TRUNCATED_MARK);
    hk_buf_free(&b);
    hk_capture_free(&cp);

    hk_capture_init(&cp, 5);
    assert_int_equal(hk_capture_body(&cp, "0123456789", 10), 5);
    assert_int_equal(cp.body.len, 5);
    assert_int_equal(cp.body_truncated, 1);
    hk_capture_free(&cp);
}

static void test_headers_joined_and_lowercased(void **state)
{
    (void)state;
    hk_capture cp;
    hk_capture_init(&cp, 0);
    feed(&cp, "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
              "HTTP/1.1 429 Too Many\r\nSet-Cookie: a=1\r\nX-Bad: \x01\"\\\xff\r\n"
              "set-COOKIE:b=2  \r\nRetry-After: 30\r\nretry-after: 99\r\n"
              "nocolon\r\n: empty\r\n folded: x\r\nEmpty:\r\n\r\n");
    assert_headers(&cp,
                   "{\"set-cookie\":\"a=1, b=2\",\"x-bad\":\"\\u0001\\\"\\\\" FFFD "\","
                   "\"retry-after\":\"30, 99\",\"empty\":\"\"}",
                   "30");
    hk_capture_free(&cp);
}

static void test_header_caps(void **state)
{
    (void)state;
    hk_capture cp;
    hk_capture_init(&cp, 0);
    feed(&cp, "HTTP/1.1 200 OK\r\n");
    char line[64];
    for (int i = 0; i < 150; i++) {
        snprintf(line, sizeof line, "H%d: %d\r\n", i, i);
        feed(&cp, line);
    }
    assert_int_equal(cp.nlines, HK_CAPTURE_HEADER_LINES);
    hk_buf out;
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    assert_int_equal(hk_capture_headers_json(&cp, &out, NULL), 0);
    assert_non_null(strstr(hk_buf_cstr(&out), "\"h99\":\"99\"}"));
    assert_null(strstr(hk_buf_cstr(&out), "\"h100\""));
    hk_buf_free(&out);
    hk_capture_free(&cp);

    /* bytes: a line that does not fit is dropped whole; a smaller one after it still fits */
    hk_capture_init(&cp, 0);
    char *big = malloc(HK_CAPTURE_HEADER_BYTES);
    memset(big, 'z', HK_CAPTURE_HEADER_BYTES);
    memcpy(big, "Big: ", 5);
    feed(&cp, "HTTP/1.1 200 OK\r\nA: 1\r\n");
    hk_capture_header(&cp, big, HK_CAPTURE_HEADER_BYTES);
    feed(&cp, "B: 2\r\n");
    assert_true(cp.hdrs.len <= HK_CAPTURE_HEADER_BYTES);
    assert_headers(&cp, "{\"a\":\"1\",\"b\":\"2\"}", "");
    free(big);
    hk_capture_free(&cp);

    /* the JSON of 16 KiB of control bytes needs 6 bytes a byte: a too small out fails whole */
    hk_capture_init(&cp, 0);
    char ctl[4000];
    memset(ctl, 1, sizeof ctl);
    memcpy(ctl, "C: ", 3);
    hk_capture_header(&cp, ctl, sizeof ctl);
    hk_buf_init(&out, 1000);
    assert_int_equal(hk_capture_headers_json(&cp, &out, NULL), HK_ETOOBIG);
    assert_int_equal(out.len, 0);
    hk_buf_free(&out);
    hk_capture_free(&cp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_headers_joined_and_lowercased),
        cmocka_unit_test(test_header_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
