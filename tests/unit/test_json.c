/*
 * test_json.c: the strict parser (grammar table, UTF-8, escapes, caps, error messages, token
 * layout), the token readers (strings, integers, doubles, compact output, equality) and the
 * writer (escaping, U+FFFD replacement, structure, sticky errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"

#define BIG_TOKS (1u << 20)

static int parse(hk_jdoc *d, const char *s)
{
    return hk_json_parse(d, s, strlen(s), BIG_TOKS, HK_JSON_MAX_DEPTH_DEFAULT);
}

/* ---- grammar ----------------------------------------------------------------------------- */

typedef struct gcase {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int rc;
    int type; /* root type when rc == 0 */
} gcase;

#define OK(s, t)                                                                                   \
    {                                                                                              \
        s, 0, 0, t                                                                                 \
    }
#define BAD(s)                                                                                     \
    {                                                                                              \
        s, 0, HK_EPARSE, 0                                                                         \
    }
#define BADN(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1, HK_EPARSE, 0                                                             \
    }

static const gcase grammar[] = {
    /* scalars */
    OK("0", HK_J_NUMBER),
    OK("-0", HK_J_NUMBER),
    OK("1", HK_J_NUMBER),
    OK("-1", HK_J_NUMBER),
    OK("1234567890", HK_J_NUMBER),
    OK("0.5", HK_J_NUMBER),
    OK("-0.0", HK_J_NUMBER),
    OK("10.25", HK_J_NUMBER),
    OK("1e5", HK_J_NUMBER),
    OK("1E5", HK_J_NUMBER),
    OK("1e+5", HK_J_NUMBER),
    OK("1e-5", HK_J_NUMBER),
    OK("0e0", HK_J_NUMBER),
    OK("-0.1e-0", HK_J_NUMBER),
    OK("1.5E+10", HK_J_NUMBER),
    OK("1e400", HK_J_NUMBER),
    OK("12345678901234567890123", HK_J_NUMBER),
    OK("true", HK_J_TRUE),
    OK("false", HK_J_FALSE),
    OK("null", HK_J_NULL),
    OK("\"\"", HK_J_STRING),
    OK("\"abc\"", HK_J_STRING),
    OK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", HK_J_STRING),
    OK("\"\\u0000\"", HK_J_STRING),
    OK("\"\\u00e9\\u00E9\"", HK_J_STRING),
    OK("\"\\ud83d\\ude00\"", HK_J_STRING),
    OK("\"\\uD83D\\uDE00\"", HK_J_STRING),
    OK("\"\\uFFFF\"", HK_J_STRING),
    OK("\"'single' inside\"", HK_J_STRING),
    OK("\"\x7f\"", HK_J_STRING),
    /* containers */
    OK("[]", HK_J_ARRAY),
    OK("{}", HK_J_OBJECT),
    OK("[ ]", HK_J_ARRAY),
    OK("{ }", HK_J_OBJECT),
    OK("[1,2,3]", HK_J_ARRAY),
    OK("[[],[[]],{}]", HK_J_ARRAY),
    OK("{\"a\":1}", HK_J_OBJECT),
    OK("{\"a\":1,\"a\":2}", HK_J_OBJECT), /* duplicates pass the parser */
    OK("{\"\":null}", HK_J_OBJECT),
    OK("{\"a\":{\"b\":{\"c\":[true,false,null]}}}", HK_J_OBJECT),
    /* whitespace */
    OK(" 1 ", HK_J_NUMBER),
    OK("\t\r\n 1\t\r\n ", HK_J_NUMBER),
    OK("{ \"a\" : [ 1 , 2 ] }", HK_J_OBJECT),
    OK("[\n1\n,\n2\n]", HK_J_ARRAY),
    /* empty and junk */
    BAD(""),
    BAD(" "),
    BAD("\t\n"),
    BAD("1 2"),
    BAD("[] []"),
    BAD("{}x"),
    BAD("nul"),
    BAD("nulll"),
    BAD("True"),
    BAD("NULL"),
    BAD("tru"),
    BAD("truex"),
    BAD("NaN"),
    BAD("Infinity"),
    BAD("-Infinity"),
    BAD("undefined"),
    /* numbers */
    BAD("01"),
    BAD("-01"),
    BAD("00"),
    BAD("+1"),
    BAD("-"),
    BAD("--1"),
    BAD(".5"),
    BAD("1."),
    BAD("1.e5"),
    BAD("1e"),
    BAD("1e+"),
    BAD("1e-"),
    BAD("1E+-1"),
    BAD("0x10"),
    BAD("1_000"),
    BAD("1.5.5"),
    BAD("- 1"),
    BAD("1ee5"),
    BAD("[01]"),
    BAD("[1.]"),
    /* strings */
    BAD("\"abc"),
    BAD("\""),
    BAD("'abc'"),
    BAD("\"\\\""),
    BAD("\"\\a\""),
    BAD("\"\\x41\""),
    BAD("\"\\'\""),
    BAD("\"\\U0041\""),
    BAD("\"\\u\""),
    BAD("\"\\u12\""),
    BAD("\"\\u12G4\""),
    BAD("\"\\u123"),
    BAD("\"a\nb\""),
    BAD("\"a\tb\""),
    BAD("\"\x01\""),
    BAD("\"\x1f\""),
    BADN("\"a\0b\""),
    BAD("\"\\uD800\""),
    BAD("\"\\uDBFF\""),
    BAD("\"\\uDC00\""),
    BAD("\"\\uDFFF\""),
    BAD("\"\\uDE00\\uD83D\""),
    BAD("\"\\uD83D\\u0041\""),
    BAD("\"\\uD83D\\uD83D\""),
    BAD("\"\\uD83Dx\""),
    BAD("\"\\uD83D\\\""),
    BAD("\"\\uD83D\\n\""),
    /* arrays */
    BAD("["),
    BAD("]"),
    BAD("[1"),
    BAD("[1,"),
    BAD("[1,]"),
    BAD("[,1]"),
    BAD("[1 2]"),
    BAD("[1,,2]"),
    BAD("[}"),
    BAD("[1}"),
    /* objects */
    BAD("{"),
    BAD("}"),
    BAD("{\"a\""),
    BAD("{\"a\":"),
    BAD("{\"a\":1"),
    BAD("{\"a\":1,}"),
    BAD("{,\"a\":1}"),
    BAD("{\"a\" 1}"),
    BAD("{\"a\"::1}"),
    BAD("{a:1}"),
    BAD("{'a':1}"),
    BAD("{1:1}"),
    BAD("{null:1}"),
    BAD("{\"a\":1 \"b\":2}"),
    BAD("{\"a\":1]"),
    BAD("{\"a\"}"),
    /* comments and other extensions */
    BAD("[1]//c"),
    BAD("/*c*/[1]"),
    BAD("[1 /*c*/]"),
    BAD("#c\n1"),
    /* whitespace that JSON does not allow */
    BAD("\f1"),
    BAD("\v1"),
    BAD("\xc2\xa0"
        "1"),
    BADN("1\0"),
    BADN("\0"),
};

static void test_grammar_table(void **state)
{
    (void)state;
    assert_true(HK_ARRAY_LEN(grammar) >= 60);
    for (size_t i = 0; i < HK_ARRAY_LEN(grammar); i++) {
        const gcase *c = &grammar[i];
        size_t n = c->len ? c->len : strlen(c->in);
        hk_jdoc d;
        int rc = hk_json_parse(&d, c->in, n, BIG_TOKS, 8);
        if (rc != c->rc)
            print_error("case %zu: input '%s' rc %d want %d (%s)\n", i, c->in, rc, c->rc, d.err);
        assert_int_equal(rc, c->rc);
        if (rc == 0) {
            assert_int_equal(hk_json_type(&d, 0), c->type);
            assert_int_equal(d.toks[0].next, d.ntoks);
        } else {
            assert_int_equal(d.ntoks, 0);
            assert_int_equal(hk_json_type(&d, 0), HK_J_NONE);
            assert_true(strstr(d.err, " at byte ") != NULL);
        }
        hk_json_free(&d);
    }
}

/* ---- error messages ---------------------------------------------------------------------- */

static void expect_err(const char *in, size_t len, int rc, const char *msg)
{
    hk_jdoc d;
    assert_int_equal(hk_json_parse(&d, in, len, BIG_TOKS, HK_JSON_MAX_DEPTH_DEFAULT), rc);
    assert_string_equal(d.err, msg);
    hk_json_free(&d);
}
#define EXPECT_ERR(in, msg) expect_err(in, strlen(in), HK_EPARSE, msg)

static void test_error_messages(void **state)
{
    (void)state;
    EXPECT_ERR("", "unexpected end of input (expected a value) at byte 0");
    EXPECT_ERR("[1,]", "unexpected ']' (expected a value) at byte 3");
    EXPECT_ERR("{\"a\" 1}", "unexpected '1' (expected ':') at byte 5");
    EXPECT_ERR("[1 2]", "unexpected '2' (expected ',' or ']') at byte 3");
    EXPECT_ERR("{\"a\":1 2}", "unexpected '2' (expected ',' or '}') at byte 7");
    EXPECT_ERR("{\"a\":1,}", "unexpected '}' (expected a string key) at byte 7");
    EXPECT_ERR("[1,2", "unexpected end of input at byte 4");
    EXPECT_ERR("1 x", "unexpected 'x' (expected end of input after the value) at byte 2");
    EXPECT_ERR("\x80", "unexpected byte 0x80 (expected a value) at byte 0");
    EXPECT_ERR("01", "leading zero in number at byte 0");
    EXPECT_ERR("[-]", "digit expected in number at byte 2");
    EXPECT_ERR("1.x", "digit expected after '.' in number at byte 2");
    EXPECT_ERR("1e+", "digit expected in number exponent at byte 3");
    EXPECT_ERR("[nul]", "invalid literal (true, false or null expected) at byte 1");
    EXPECT_ERR("  \"abc", "unterminated string starting at byte 2");
    EXPECT_ERR("\"ab\\q\"", "invalid escape in string at byte 3");
    EXPECT_ERR("\"\\u12x4\"", "invalid \\u escape (4 hex digits expected) at byte 1");
    EXPECT_ERR("\"a\x01\"", "raw control character 0x01 in string at byte 2");
    EXPECT_ERR("\"a\xff\"", "invalid UTF-8 in string at byte 2");
    EXPECT_ERR("\"xx\\uDC00\"", "lone low surrogate in \\u escape at byte 3");
    EXPECT_ERR("\"\\uD800\\u0041\"", "high surrogate not followed by a low surrogate at byte 1");
    {
        hk_jdoc d;
        assert_int_equal(hk_json_parse(&d, "[[[", 3, BIG_TOKS, 2), HK_ETOOBIG);
        assert_string_equal(d.err, "nesting deeper than 2 at byte 2");
        hk_json_free(&d);
        assert_int_equal(hk_json_parse(&d, "[1, 2, 3]", 9, 3, 8), HK_ETOOBIG);
        assert_string_equal(d.err, "more than 3 tokens at byte 7");
        hk_json_free(&d);
    }
}

/* A control character (or a quote) at every position of strings of every length checks the
 * word-at-a-time scan against byte positions. */
static void test_string_scan_positions(void **state)
{
    (void)state;
    char buf[80], want[96];
    for (size_t n = 0; n < 40; n++) {
        for (size_t i = 0; i < n; i++) {
            buf[0] = '"';
            memset(buf + 1, 'a', n);
            buf[1 + n] = '"';
            buf[1 + i] = '\n';
            hk_jdoc d;
            assert_int_equal(hk_json_parse(&d, buf, n + 2, 16, 4), HK_EPARSE);
            snprintf(want, sizeof want, "raw control character 0x0a in string at byte %zu", i + 1);
            assert_string_equal(d.err, want);
            hk_json_free(&d);

            buf[1 + i] = '"'; /* string ends early: the rest is junk */
            assert_int_equal(hk_json_parse(&d, buf, n + 2, 16, 4), HK_EPARSE);
            snprintf(want, sizeof want,
                     "unexpected '%c' (expected end of input after the value) at byte %zu",
                     i + 1 < n ? 'a' : '"', i + 2);
            assert_string_equal(d.err, want);
            hk_json_free(&d);

            buf[1 + i] = '\\'; /* "\a": invalid escape, or "\"" then unterminated */
            int rc = hk_json_parse(&d, buf, n + 2, 16, 4);
            assert_int_equal(rc, HK_EPARSE);
            hk_json_free(&d);

            buf[1 + i] = '\xc3'; /* é split: valid only as C3 A9 */
            assert_int_equal(hk_json_parse(&d, buf, n + 2, 16, 4), HK_EPARSE);
            snprintf(want, sizeof want, "invalid UTF-8 in string at byte %zu", i + 1);
            assert_string_equal(d.err, want);
            hk_json_free(&d);
            if (i + 1 < n) {
                buf[2 + i] = '\xa9';
                assert_int_equal(hk_json_parse(&d, buf, n + 2, 16, 4), 0);
                assert_int_equal(d.toks[0].end, n + 2);
                hk_json_free(&d);
            }
        }
        buf[0] = '"';
        memset(buf + 1, 'a', n);
        buf[1 + n] = '"';
        hk_jdoc d;
        assert_int_equal(hk_json_parse(&d, buf, n + 2, 16, 4), 0);
        assert_int_equal(d.toks[0].end, n + 2);
        assert_int_equal(d.toks[0].plain, 1);
        hk_json_free(&d);
        /* unterminated at every length */
        assert_int_equal(hk_json_parse(&d, buf, n + 1, 16, 4), HK_EPARSE);
        assert_string_equal(d.err, "unterminated string starting at byte 0");
        hk_json_free(&d);
    }
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

typedef struct ucase {
    const char *bytes;
    int ok;
} ucase;

static const ucase utf8_cases[] = {
    {"\xc2\x80", 1},         /* U+0080 */
    {"\xdf\xbf", 1},         /* U+07FF */
    {"\xe0\xa0\x80", 1},     /* U+0800 */
    {"\xe2\x82\xac", 1},     /* € */
    {"\xed\x9f\xbf", 1},     /* U+D7FF */
    {"\xee\x80\x80", 1},     /* U+E000 */
    {"\xef\xbf\xbd", 1},     /* U+FFFD */
    {"\xef\xbf\xbf", 1},     /* U+FFFF */
    {"\xf0\x90\x80\x80", 1}, /* U+10000 */
    {"\xf0\x9f\x98\x80", 1}, /* 😀 */
    {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
    {"\xc3\xa9t\xc3\xa9", 1},
    {"\x80", 0}, /* lone continuation */
    {"\xbf", 0},
    {"\xc0\x80", 0},                 /* overlong NUL */
    {"\xc1\xbf", 0},                 /* overlong */
    {"\xe0\x80\x80", 0},             /* overlong */
    {"\xe0\x9f\xbf", 0},             /* overlong U+07FF */
    {"\xed\xa0\x80", 0},             /* U+D800 encoded */
    {"\xed\xbf\xbf", 0},             /* U+DFFF encoded */
    {"\xed\xa0\xbd\xed\xb8\x80", 0}, /* CESU-8 pair */
    {"\xf0\x80\x80\x80", 0},         /* overlong */
    {"\xf0\x8f\xbf\xbf", 0},         /* overlong U+FFFF */
    {"\xf4\x90\x80\x80", 0},         /* U+110000 */
    {"\xf5\x80\x80\x80", 0},
    {"\xf8\x88\x80\x80\x80", 0}, /* 5-byte form */
    {"\xfe", 0},
    {"\xff", 0},
    {"\xc2", 0}, /* truncated */
    {"\xe2\x82", 0},
    {"\xf0\x9f\x98", 0},
    {"\xc2\x41", 0}, /* missing continuation */
    {"\xe2\x28\xa1", 0},
    {"\xf0\x9f\x28\x80", 0},
    {"\xc3\xa9\xa9", 0}, /* extra continuation */
};

static void test_utf8(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(utf8_cases); i++) {
        char in[32];
        int n = snprintf(in, sizeof in, "[\"%s\"]", utf8_cases[i].bytes);
        hk_jdoc d;
        int rc = hk_json_parse(&d, in, (size_t)n, 16, 4);
        if ((rc == 0) != utf8_cases[i].ok) print_error("utf8 case %zu: rc %d\n", i, rc);
        assert_int_equal(rc, utf8_cases[i].ok ? 0 : HK_EPARSE);
        if (rc == 0) {
            hk_buf b;
            hk_buf_init(&b, 64);
            assert_int_equal(hk_json_str(&d, 1, &b), 0);
            assert_int_equal(b.len, strlen(utf8_cases[i].bytes));
            assert_memory_equal(b.data, utf8_cases[i].bytes, b.len);
            hk_buf_free(&b);
        } else {
            assert_non_null(strstr(d.err, "invalid UTF-8 in string at byte "));
        }
        hk_json_free(&d);
    }
    /* non-ASCII outside a string */
    hk_jdoc d;
    assert_int_equal(parse(&d, "[1,\xc3\xa9]"), HK_EPARSE);
    assert_string_equal(d.err, "unexpected byte 0xc3 (expected a value) at byte 3");
    hk_json_free(&d);
    /* a string ending in a truncated sequence: the quote is not a continuation byte */
    assert_int_equal(parse(&d, "\"\xe2\x82\""), HK_EPARSE);
    assert_string_equal(d.err, "invalid UTF-8 in string at byte 1");
    hk_json_free(&d);
    /* input ending inside a sequence */
    assert_int_equal(hk_json_parse(&d, "\"\xe2\x82", 3, 16, 4), HK_EPARSE);
    hk_json_free(&d);
}

/* ---- caps -------------------------------------------------------------------------------- */

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = open;
        s[depth * 2 - 1 - i] = close;
    }
    s[depth * 2] = '\0';
    return s;
}

static void test_depth_cap(void **state)
{
    (void)state;
    hk_jdoc d;
    char *s = nested(64, '[', ']');
    assert_int_equal(hk_json_parse(&d, s, strlen(s), BIG_TOKS, 64), 0);
    assert_int_equal(d.ntoks, 64);
    assert_int_equal(d.toks[0].next, 64);
    assert_int_equal(d.toks[63].size, 0);
    assert_int_equal(d.toks[62].size, 1);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, s, strlen(s), BIG_TOKS, 63), HK_ETOOBIG);
    assert_string_equal(d.err, "nesting deeper than 63 at byte 63");
    hk_json_free(&d);
    free(s);

    /* objects count the same */
    const char *o = "{\"a\":{\"b\":{}}}";
    assert_int_equal(hk_json_parse(&d, o, strlen(o), BIG_TOKS, 3), 0);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, o, strlen(o), BIG_TOKS, 2), HK_ETOOBIG);
    hk_json_free(&d);

    /* max_depth 0: scalars only */
    assert_int_equal(hk_json_parse(&d, "1", 1, BIG_TOKS, 0), 0);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, "[]", 2, BIG_TOKS, 0), HK_ETOOBIG);
    hk_json_free(&d);

    /* deeper than the on-stack container stack */
    s = nested(5000, '[', ']');
    assert_int_equal(hk_json_parse(&d, s, strlen(s), BIG_TOKS, 5000), 0);
    assert_int_equal(d.ntoks, 5000);
    assert_int_equal(d.toks[0].end, 10000);
    assert_int_equal(d.toks[4999].start, 4999);
    assert_int_equal(d.toks[4999].end, 5001);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, s, strlen(s), BIG_TOKS, 4999), HK_ETOOBIG);
    hk_json_free(&d);
    free(s);
}

static void test_token_cap(void **state)
{
    (void)state;
    hk_jdoc d;
    const char *s = "{\"a\":[1,2],\"b\":null}"; /* 7 tokens */
    assert_int_equal(hk_json_parse(&d, s, strlen(s), 7, 8), 0);
    assert_int_equal(d.ntoks, 7);
    assert_true(d.cap <= 7);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, s, strlen(s), 6, 8), HK_ETOOBIG);
    assert_string_equal(d.err, "more than 6 tokens at byte 15");
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, "1", 1, 0, 8), HK_ETOOBIG);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, "1", 1, 1, 8), 0);
    hk_json_free(&d);

    /* many tokens: the array grows past its first guess */
    size_t n = 100000;
    char *big = malloc(n * 2 + 2);
    big[0] = '[';
    for (size_t i = 0; i < n; i++) {
        big[1 + 2 * i] = '7';
        big[2 + 2 * i] = ',';
    }
    big[n * 2] = ']';
    big[n * 2 + 1] = '\0';
    assert_int_equal(hk_json_parse(&d, big, n * 2 + 1, BIG_TOKS, 4), 0);
    assert_int_equal(d.ntoks, n + 1);
    assert_int_equal(d.toks[0].size, n);
    assert_int_equal(d.toks[n].start, n * 2 - 1);
    hk_json_free(&d);
    assert_int_equal(hk_json_parse(&d, big, n * 2 + 1, (uint32_t)n, 4), HK_ETOOBIG);
    hk_json_free(&d);
    free(big);
}

/* ---- token layout ------------------------------------------------------------------------ */

static void test_token_layout(void **state)
{
    (void)state;
    const char *s = " {\"a\": [1, \"x\\n\", {\"b\":null}], \"c\":true} ";
    hk_jdoc d;
    assert_int_equal(parse(&d, s), 0);
    struct {
        int type;
        uint32_t start, end, size, next;
        uint8_t plain;
    } want[] = {
        {HK_J_OBJECT, 1, 40, 2, 10, 0}, /* { ... } */
        {HK_J_STRING, 2, 5, 0, 2, 1},   /* "a" */
        {HK_J_ARRAY, 7, 29, 3, 8, 0},   /* [...] */
        {HK_J_NUMBER, 8, 9, 0, 4, 0},   /* 1 */
        {HK_J_STRING, 11, 16, 0, 5, 0}, /* "x\n" */
        {HK_J_OBJECT, 18, 28, 1, 8, 0}, /* {"b":null} */
        {HK_J_STRING, 19, 22, 0, 7, 1}, /* "b" */
        {HK_J_NULL, 23, 27, 0, 8, 0},   /* null */
        {HK_J_STRING, 31, 34, 0, 9, 1}, /* "c" */
        {HK_J_TRUE, 35, 39, 0, 10, 0},  /* true */
    };
    assert_int_equal(d.ntoks, HK_ARRAY_LEN(want));
    for (size_t i = 0; i < HK_ARRAY_LEN(want); i++) {
        assert_int_equal(d.toks[i].type, want[i].type);
        assert_int_equal(d.toks[i].start, want[i].start);
        assert_int_equal(d.toks[i].end, want[i].end);
        assert_int_equal(d.toks[i].size, want[i].size);
        assert_int_equal(d.toks[i].next, want[i].next);
        if (d.toks[i].type == HK_J_STRING) assert_int_equal(d.toks[i].plain, want[i].plain);
    }
    /* iteration helpers */
    int k = hk_json_first(&d, 0);
    assert_int_equal(k, 1);
    assert_int_equal(hk_json_next(&d, k + 1), 8);
    int e = hk_json_first(&d, 2);
    assert_int_equal(e, 3);
    e = hk_json_next(&d, e);
    assert_int_equal(e, 4);
    e = hk_json_next(&d, e);
    assert_int_equal(e, 5);
    assert_int_equal(hk_json_first(&d, 3), -1);
    assert_int_equal(hk_json_type(&d, -1), HK_J_NONE);
    assert_int_equal(hk_json_type(&d, 10), HK_J_NONE);
    hk_json_free(&d);

    assert_int_equal(parse(&d, "[{}, []]"), 0);
    assert_int_equal(hk_json_first(&d, 1), -1);
    assert_int_equal(hk_json_first(&d, 2), -1);
    assert_int_equal(d.toks[1].next, 2);
    assert_int_equal(d.toks[2].next, 3);
    hk_json_free(&d);

    /* a zeroed doc frees fine, twice */
    hk_jdoc z = {0};
    hk_json_free(&z);
    hk_json_free(&z);
}

/* ---- strings ----------------------------------------------------------------------------- */

static void test_surrogates_and_escapes(void **state)
{
    (void)state;
    hk_jdoc d;
    const char *s = "[\"\\uD83D\\uDE00\", \"\\ud834\\udd1e\", \"\\u00e9\\u20AC\\u0041\","
                    " \"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\uDBFF\\uDFFF\"]";
    assert_int_equal(parse(&d, s), 0);
    const char *want[] = {"\xf0\x9f\x98\x80", "\xf0\x9d\x84\x9e",
                          ("\xc3\xa9\xe2\x82\xac"
                           "A"),
                          "\"\\/\b\f\n\r\t", "\xf4\x8f\xbf\xbf"};
    int e = hk_json_first(&d, 0);
    for (size_t i = 0; i < HK_ARRAY_LEN(want); i++, e = hk_json_next(&d, e)) {
        hk_buf b;
        hk_buf_init(&b, 100);
        assert_int_equal(hk_json_str(&d, e, &b), 0);
        assert_string_equal(hk_buf_cstr(&b), want[i]);
        assert_int_equal(d.toks[e].plain, 0);
        assert_int_equal(hk_json_str_eq(&d, e, want[i]), 1);
        hk_buf_free(&b);
    }
    hk_json_free(&d);
}

static void test_str_and_strdup(void **state)
{
    (void)state;
    hk_jdoc d;
    assert_int_equal(parse(&d, "[\"plain\", \"a\\u0000b\", \"x\\ty\", 5, \"\\u00e9t\\u00e9\"]"), 0);
    hk_buf b;
    hk_buf_init(&b, 100);
    assert_int_equal(hk_buf_puts(&b, ">"), 0);
    assert_int_equal(hk_json_str(&d, 1, &b), 0); /* appends */
    assert_string_equal(hk_buf_cstr(&b), ">plain");
    hk_buf_reset(&b);
    assert_int_equal(hk_json_str(&d, 2, &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 3);
    assert_int_equal(hk_json_str(&d, 4, &b), HK_EINVAL);
    assert_int_equal(hk_json_str(&d, 0, &b), HK_EINVAL);
    assert_int_equal(hk_json_str(&d, 99, &b), HK_EINVAL);
    hk_buf_free(&b);

    /* cap: too long leaves the buffer as it was */
    hk_buf_init(&b, 4);
    assert_int_equal(hk_buf_puts(&b, "ab"), 0);
    assert_int_equal(hk_json_str(&d, 3, &b), HK_ETOOBIG); /* "x\ty" is 3 bytes: 5 > 4 */
    assert_int_equal(b.len, 2);
    assert_int_equal(hk_json_str(&d, 1, &b), HK_ETOOBIG);
    assert_int_equal(b.len, 2);
    hk_buf_reset(&b);
    assert_int_equal(hk_json_str(&d, 3, &b),
                     0); /* escaped text longer than the cap, decoded fits */
    assert_int_equal(b.len, 3);
    hk_buf_free(&b);

    const char *why = NULL;
    char *s = hk_json_strdup(&d, 1, 5, &why);
    assert_string_equal(s, "plain");
    free(s);
    why = NULL;
    assert_null(hk_json_strdup(&d, 1, 4, &why));
    assert_string_equal(why, "too long");
    why = NULL;
    assert_null(hk_json_strdup(&d, 2, 100, &why));
    assert_string_equal(why, "contains a NUL character");
    why = NULL;
    assert_null(hk_json_strdup(&d, 4, 100, &why));
    assert_string_equal(why, "not a string");
    assert_null(hk_json_strdup(&d, 4, 100, NULL));
    s = hk_json_strdup(&d, 5, 5, NULL); /* é t é: 5 bytes */
    assert_string_equal(s, "\xc3\xa9t\xc3\xa9");
    free(s);
    assert_null(hk_json_strdup(&d, 5, 4, NULL));
    hk_json_free(&d);

    assert_int_equal(parse(&d, "\"\""), 0);
    s = hk_json_strdup(&d, 0, 0, NULL);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(hk_json_str_eq(&d, 0, ""), 1);
    assert_int_equal(hk_json_str_eq(&d, 0, "a"), 0);
    hk_json_free(&d);
}

static void test_obj_get(void **state)
{
    (void)state;
    hk_jdoc d;
    const char *s = "{\"a\\u0062c\":1, \"abc\":2, \"q\\\"t\":3, \"sl\\/\":4, \"\":5,"
                    " \"nested\":{\"x\":6}, \"\\u00e9\":7, \"ab\":8}";
    assert_int_equal(parse(&d, s), 0);
    int64_t v;
    int t = hk_json_obj_get(&d, 0, "abc");
    assert_true(t > 0);
    assert_int_equal(hk_json_int(&d, t, &v), 0);
    assert_int_equal(v, 1); /* the first match, found through the escape */
    assert_int_equal(hk_json_int(&d, hk_json_obj_get(&d, 0, "q\"t"), &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(hk_json_int(&d, hk_json_obj_get(&d, 0, "sl/"), &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(hk_json_int(&d, hk_json_obj_get(&d, 0, ""), &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(hk_json_int(&d, hk_json_obj_get(&d, 0, "\xc3\xa9"), &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(hk_json_int(&d, hk_json_obj_get(&d, 0, "ab"), &v), 0);
    assert_int_equal(v, 8);
    assert_int_equal(hk_json_obj_get(&d, 0, "x"), -1); /* not at the top level */
    assert_int_equal(hk_json_obj_get(&d, 0, "a"), -1);
    assert_int_equal(hk_json_obj_get(&d, 0, "abcd"), -1);
    int n = hk_json_obj_get(&d, 0, "nested");
    assert_int_equal(hk_json_type(&d, n), HK_J_OBJECT);
    assert_int_equal(hk_json_int(&d, hk_json_obj_get(&d, n, "x"), &v), 0);
    assert_int_equal(v, 6);
    assert_int_equal(hk_json_obj_get(&d, 1, "abc"), -1); /* not an object */
    assert_int_equal(hk_json_obj_get(&d, -1, "abc"), -1);
    assert_int_equal(hk_json_obj_dup_key(&d, 0), 1);
    assert_int_equal(hk_json_obj_dup_key(&d, n), 0);
    hk_json_free(&d);

    assert_int_equal(parse(&d, "{\"a\":1,\"b\":{\"a\":2},\"c\":[\"a\"]}"), 0);
    assert_int_equal(hk_json_obj_dup_key(&d, 0), 0);
    assert_int_equal(hk_json_obj_dup_key(&d, 1), 0);
    hk_json_free(&d);
    assert_int_equal(parse(&d, "{\"a\":1,\"b\":2,\"c\":3,\"b\":4}"), 0);
    assert_int_equal(hk_json_obj_dup_key(&d, 0), 1);
    hk_json_free(&d);
    assert_int_equal(parse(&d, "{}"), 0);
    assert_int_equal(hk_json_obj_dup_key(&d, 0), 0);
    assert_int_equal(hk_json_obj_get(&d, 0, ""), -1);
    hk_json_free(&d);
}

/* ---- numbers ----------------------------------------------------------------------------- */

typedef struct icase {
    const char *in;
    int rc;
    int64_t v;
} icase;

static const icase int_cases[] = {
    {"0", 0, 0},
    {"-0", 0, 0},
    {"7", 0, 7},
    {"-42", 0, -42},
    {"9223372036854775807", 0, INT64_MAX},
    {"-9223372036854775808", 0, INT64_MIN},
    {"9223372036854775808", HK_EINVAL, 0},
    {"-9223372036854775809", HK_EINVAL, 0},
    {"12345678901234567890", HK_EINVAL, 0},
    {"99999999999999999999999999", HK_EINVAL, 0},
    {"1e3", 0, 1000},
    {"1E3", 0, 1000},
    {"1e+3", 0, 1000},
    {"-1E+2", 0, -100},
    {"1.0", 0, 1},
    {"10E-1", 0, 1},
    {"100e-2", 0, 1},
    {"100e-3", HK_EINVAL, 0},
    {"1.5", HK_EINVAL, 0},
    {"0.5", HK_EINVAL, 0},
    {"1e-1", HK_EINVAL, 0},
    {"1.5e1", 0, 15},
    {"1.55e1", HK_EINVAL, 0},
    {"1.50e1", 0, 15},
    {"0.0", 0, 0},
    {"-0.0e-5", 0, 0},
    {"0e99999999999999999999", 0, 0},
    {"0.000e-99999999999999999999", 0, 0},
    {"1e99999999999999999999", HK_EINVAL, 0},
    {"1e-99999999999999999999", HK_EINVAL, 0},
    {"1e18", 0, 1000000000000000000},
    {"1e19", HK_EINVAL, 0},
    {"-1e18", 0, -1000000000000000000},
    {"9.223372036854775807e18", 0, INT64_MAX},
    {"9.223372036854775808e18", HK_EINVAL, 0},
    {"-9.223372036854775808e18", 0, INT64_MIN},
    {"92233720368547758070e-1", 0, INT64_MAX},
    {"92233720368547758080e-1", HK_EINVAL, 0},
    {"0.000000000000000000000001e24", 0, 1},
    {"1000000000000000000000e-3", 0, 1000000000000000000},
    {"00000", HK_EPARSE, 0}, /* never a number token */
    {"123.000", 0, 123},
    {"123.0001", HK_EINVAL, 0},
    {"0.1e1", 0, 1},
    {"0.01e1", HK_EINVAL, 0},
    {"922337203685477580.7e1", 0, INT64_MAX},
};

static void test_int(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(int_cases); i++) {
        const icase *c = &int_cases[i];
        hk_jdoc d;
        int rc = parse(&d, c->in);
        if (c->rc == HK_EPARSE) {
            assert_int_equal(rc, HK_EPARSE);
            hk_json_free(&d);
            continue;
        }
        assert_int_equal(rc, 0);
        int64_t v = 12345;
        rc = hk_json_int(&d, 0, &v);
        if (rc != c->rc) print_error("int case %s: rc %d\n", c->in, rc);
        assert_int_equal(rc, c->rc);
        if (rc == 0)
            assert_true(v == c->v);
        else
            assert_true(v == 12345); /* untouched on failure */
        hk_json_free(&d);
    }
    hk_jdoc d;
    int64_t v;
    assert_int_equal(parse(&d, "[\"1\", true, null]"), 0);
    assert_int_equal(hk_json_int(&d, 1, &v), HK_EINVAL);
    assert_int_equal(hk_json_int(&d, 2, &v), HK_EINVAL);
    assert_int_equal(hk_json_int(&d, 0, &v), HK_EINVAL);
    assert_int_equal(hk_json_int(&d, 7, &v), HK_EINVAL);
    hk_json_free(&d);
}

static void test_double_and_bool(void **state)
{
    (void)state;
    hk_jdoc d;
    const char *s = "[1.5, -2e-3, 1e400, 12345678901234567890, \"1\", true, false, null]";
    assert_int_equal(parse(&d, s), 0);
    double x;
    assert_int_equal(hk_json_double(&d, 1, &x), 0);
    assert_true(x == 1.5);
    assert_int_equal(hk_json_double(&d, 2, &x), 0);
    assert_true(x == -2e-3);
    assert_int_equal(hk_json_double(&d, 3, &x), 0);
    assert_true(x > 1e308); /* inf */
    assert_int_equal(hk_json_double(&d, 4, &x), 0);
    assert_true(x == 12345678901234567890.0);
    assert_int_equal(hk_json_double(&d, 5, &x), HK_EINVAL);
    int b = -1;
    assert_int_equal(hk_json_bool(&d, 6, &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(hk_json_bool(&d, 7, &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(hk_json_bool(&d, 8, &b), HK_EINVAL);
    assert_int_equal(hk_json_bool(&d, 1, &b), HK_EINVAL);
    hk_json_free(&d);

    /* a number longer than the on-stack copy */
    char longnum[300];
    memset(longnum, '1', 299);
    longnum[299] = '\0';
    assert_int_equal(parse(&d, longnum), 0);
    assert_int_equal(hk_json_double(&d, 0, &x), 0);
    assert_true(x > 1.1e298 && x < 1.2e298);
    hk_json_free(&d);
}

/* ---- compact, equal, round trip ---------------------------------------------------------- */

static void expect_compact(const char *in, int tok, const char *want)
{
    hk_jdoc d;
    assert_int_equal(parse(&d, in), 0);
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    assert_int_equal(hk_json_compact(&d, tok, &b), 0);
    assert_string_equal(hk_buf_cstr(&b), want);
    hk_buf_free(&b);
    hk_json_free(&d);
}

static void test_compact(void **state)
{
    (void)state;
    expect_compact(" { \"a\" : [ 1e400 , 12345678901234567890 , -0.0 , 0.10, 1E+2 ] ,\n"
                   "\t\"s\" : \"a b\\n\\u00e9 \\/\" , \"t\" : true , \"n\" : null } ",
                   0,
                   "{\"a\":[1e400,12345678901234567890,-0.0,0.10,1E+2],"
                   "\"s\":\"a b\\n\\u00e9 \\/\",\"t\":true,\"n\":null}");
    expect_compact("[ 1 , [ ] , { } , \"  { , }  \" ]", 0, "[1,[],{},\"  { , }  \"]");
    expect_compact("{\"a\": {\"b\" : [ 1, 2 ] }, \"c\": 3}", 2, "{\"b\":[1,2]}");
    expect_compact("{\"a\": {\"b\" : [ 1, 2 ] }, \"c\": 3}", 4, "[1,2]");
    expect_compact("{\"a\": {\"b\" : [ 1, 2 ] }, \"c\": 3}", 1, "\"a\"");
    expect_compact("  -0.0  ", 0, "-0.0");
    expect_compact("\"\xf0\x9f\x98\x80\"", 0, "\"\xf0\x9f\x98\x80\"");

    /* capped output buffer */
    hk_jdoc d;
    const char *s = "[ 1 ,  2 ]"; /* compact: [1,2] */
    assert_int_equal(parse(&d, s), 0);
    hk_buf b;
    hk_buf_init(&b, 6);
    assert_int_equal(hk_buf_puts(&b, "x"), 0);
    assert_int_equal(hk_json_compact(&d, 0, &b), 0); /* span is 10 bytes, compact is 5 */
    assert_string_equal(hk_buf_cstr(&b), "x[1,2]");
    assert_int_equal(hk_json_compact(&d, 0, &b), HK_ETOOBIG);
    assert_int_equal(b.len, 6);
    assert_int_equal(hk_json_compact(&d, 99, &b), HK_EINVAL);
    hk_buf_free(&b);
    hk_json_free(&d);
}

typedef struct eqcase {
    const char *a, *b;
    int eq;
} eqcase;

static const eqcase eq_cases[] = {
    {"1", "1", 1},
    {"1", "1.0", 1},
    {"100", "1e2", 1},
    {"0.1", "0.10", 1},
    {"-0", "0", 1},
    {"1", "2", 0},
    {"1e400", "1e400", 1},
    {"12345678901234567890", "12345678901234567890", 1},
    {"\"a\"", "\"\\u0061\"", 1},
    {"\"\\u00e9\"", "\"\xc3\xa9\"", 1},
    {"\"\\uD83D\\uDE00\"", "\"\xf0\x9f\x98\x80\"", 1},
    {"\"a\"", "\"A\"", 0},
    {"\"a\"", "\"a \"", 0},
    {"\"1\"", "1", 0},
    {"true", "true", 1},
    {"false", "false", 1},
    {"null", "null", 1},
    {"true", "false", 0},
    {"null", "false", 0},
    {"[]", "[]", 1},
    {"[]", "{}", 0},
    {"[1,2]", "[1, 2]", 1},
    {"[1,2]", "[2,1]", 0},
    {"[1,2]", "[1,2,3]", 0},
    {"[[1],[2]]", "[[1],[2.0]]", 1},
    {"{}", "{}", 1},
    {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", 1},
    {"{\"a\":1,\"b\":2}", "{\"a\":1}", 0},
    {"{\"a\":1}", "{\"a\":1,\"b\":2}", 0},
    {"{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", 0},
    {"{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":3}", 0},
    {"{\"a\":{\"x\":[1,{\"y\":null}]}}", "{\"a\":{\"x\":[1,{\"y\":null}]}}", 1},
    {"{\"a\":{\"x\":[1,{\"y\":null}]}}", "{\"a\":{\"x\":[1,{\"y\":false}]}}", 0},
    {"{\"\\u0061\":1}", "{\"a\":1}", 1},
    {"{\"a\":1,\"a\":2}", "{\"a\":2,\"a\":1}", 1},
    {"{\"a\":1,\"a\":1}", "{\"a\":1,\"a\":2}", 0},
    {"{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":1}", 0},
};

static void test_equal(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(eq_cases); i++) {
        hk_jdoc a, b;
        assert_int_equal(parse(&a, eq_cases[i].a), 0);
        assert_int_equal(parse(&b, eq_cases[i].b), 0);
        int eq = hk_json_equal(&a, 0, &b, 0);
        if (eq != eq_cases[i].eq)
            print_error("equal case %zu: %s vs %s -> %d\n", i, eq_cases[i].a, eq_cases[i].b, eq);
        assert_int_equal(eq, eq_cases[i].eq);
        assert_int_equal(hk_json_equal(&b, 0, &a, 0), eq_cases[i].eq);
        assert_int_equal(hk_json_equal(&a, 0, &a, 0), 1);
        hk_json_free(&a);
        hk_json_free(&b);
    }
    hk_jdoc a;
    assert_int_equal(parse(&a, "[1, 1, [1]]"), 0);
    assert_int_equal(hk_json_equal(&a, 1, &a, 2), 1);
    assert_int_equal(hk_json_equal(&a, 1, &a, 3), 0);
    assert_int_equal(hk_json_equal(&a, 1, &a, 99), 0);
    assert_int_equal(hk_json_equal(&a, 99, &a, 99), 0);
    hk_json_free(&a);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *docs[] = {
        "{\"id\": \"evt_1\", \"n\": [1, -0.0, 1e400, 0.10, 12345678901234567890],\n"
        " \"s\": \"tab\\there \\u00e9 \\ud83d\\ude00 \xe2\x82\xac\", \"o\": {\"x\": {}, \"y\": []},"
        " \"b\": [true, false, null]}",
        "[]",
        "\"just a string\"",
        "  42  ",
        "[[[[[[[[[[\"deep\"]]]]]]]]]]",
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(docs); i++) {
        hk_jdoc a, b;
        assert_int_equal(parse(&a, docs[i]), 0);
        hk_buf c1, c2;
        hk_buf_init(&c1, HK_BUF_UNLIMITED);
        hk_buf_init(&c2, HK_BUF_UNLIMITED);
        assert_int_equal(hk_json_compact(&a, 0, &c1), 0);
        assert_int_equal(hk_json_parse(&b, c1.data, c1.len, BIG_TOKS, 64), 0);
        assert_int_equal(b.ntoks, a.ntoks);
        assert_int_equal(hk_json_compact(&b, 0, &c2), 0);
        assert_int_equal(c1.len, c2.len);
        assert_memory_equal(c1.data, c2.data, c1.len);
        assert_int_equal(hk_json_equal(&a, 0, &b, 0), 1);
        for (uint32_t t = 0; t < a.ntoks; t++) {
            assert_int_equal(a.toks[t].type, b.toks[t].type);
            assert_int_equal(a.toks[t].size, b.toks[t].size);
            assert_int_equal(a.toks[t].next, b.toks[t].next);
        }
        hk_buf_free(&c1);
        hk_buf_free(&c2);
        hk_json_free(&a);
        hk_json_free(&b);
    }
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct escase {
    const char *in;
    size_t len; /* 0: strlen */
    const char *out;
} escase;

static const escase esc_cases[] = {
    {"", 0, "\"\""},
    {"plain text", 0, "\"plain text\""},
    {"a\"b\\c", 0, "\"a\\\"b\\\\c\""},
    {"/ stays", 0, "\"/ stays\""},
    {"\b\f\n\r\t", 0, "\"\\b\\f\\n\\r\\t\""},
    {"\x01\x1f\x7f", 0, "\"\\u0001\\u001f\x7f\""},
    {"nul\0here", 8, "\"nul\\u0000here\""},
    {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
    {"\xf4\x8f\xbf\xbf", 0, "\"\xf4\x8f\xbf\xbf\""},
    {"\xff", 0, "\"\xef\xbf\xbd\""},
    {"a\x80z", 0, "\"a\xef\xbf\xbdz\""},
    {"\xc0\x80", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\""}, /* overlong: 2 */
    {"\xe2\x82", 0, "\"\xef\xbf\xbd\""},             /* truncated: 1 */
    {"\xe2\x82"
     "A",
     0,
     "\"\xef\xbf\xbd"
     "A\""},
    {"\xf0\x9f\x98", 0, "\"\xef\xbf\xbd\""},
    {"\xf0\x9f\x98\"", 0, "\"\xef\xbf\xbd\\\"\""},
    {"\xed\xa0\x80", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate: 3 */
    {"\xf4\x90\x80\x80", 0,
     "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* > U+10FFFF: 4 */
    {"ok\xc3\xa9\xc3"
     "x\n",
     0, "\"ok\xc3\xa9\xef\xbf\xbdx\\n\""},
};

static void test_escape(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(esc_cases); i++) {
        const escase *c = &esc_cases[i];
        hk_buf b;
        hk_buf_init(&b, 1000);
        assert_int_equal(hk_json_escape(&b, c->in, c->len ? c->len : strlen(c->in)), 0);
        if (strcmp(hk_buf_cstr(&b), c->out) != 0) print_error("escape case %zu\n", i);
        assert_string_equal(hk_buf_cstr(&b), c->out);
        /* the output is valid JSON whatever the input bytes */
        hk_jdoc d;
        assert_int_equal(hk_json_parse(&d, b.data, b.len, 4, 4), 0);
        assert_int_equal(hk_json_type(&d, 0), HK_J_STRING);
        hk_json_free(&d);
        hk_buf_free(&b);
    }
    /* every byte value, alone and after a lead byte */
    for (int x = 0; x < 256; x++) {
        for (int lead = 0; lead < 3; lead++) {
            unsigned char in[3] = {0xe2, 0x82, (unsigned char)x};
            hk_buf b;
            hk_buf_init(&b, 1000);
            assert_int_equal(hk_json_escape(&b, (const char *)in + 2 - lead, (size_t)lead + 1), 0);
            hk_jdoc d;
            assert_int_equal(hk_json_parse(&d, b.data, b.len, 4, 4), 0);
            hk_json_free(&d);
            hk_buf_free(&b);
        }
    }
    /* cap: fails and leaves the buffer unchanged */
    hk_buf b;
    hk_buf_init(&b, 8);
    assert_int_equal(hk_buf_puts(&b, "ab"), 0);
    assert_int_equal(hk_json_escape(&b, "12345", 5), HK_ETOOBIG); /* needs 7 more */
    assert_int_equal(b.len, 2);
    assert_int_equal(hk_json_escape(&b, "1234", 4), 0);
    assert_string_equal(hk_buf_cstr(&b), "ab\"1234\"");
    hk_buf_free(&b);
}

static void test_writer(void **state)
{
    (void)state;
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_jw w;
    hk_jw_init(&w, &b);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "id", "wh_1");
    hk_jw_kstr(&w, "nil", NULL);
    hk_jw_kint(&w, "min", INT64_MIN);
    hk_jw_kint(&w, "max", INT64_MAX);
    hk_jw_kbool(&w, "t", 1);
    hk_jw_kbool(&w, "f", 0);
    hk_jw_knull(&w, "n");
    hk_jw_kraw(&w, "raw", "{\"x\":1e400}", 11);
    hk_jw_kraw(&w, "rawnil", NULL, 0);
    hk_jw_ktime(&w, "t0", 0);
    hk_jw_ktime(&w, "t1", 1767323045678);
    hk_jw_key(&w, "list");
    hk_jw_arr_open(&w);
    hk_jw_int(&w, 1);
    hk_jw_str(&w, "two\n");
    hk_jw_strn(&w, "thr\xff", 4);
    hk_jw_arr_open(&w);
    hk_jw_arr_close(&w);
    hk_jw_obj_open(&w);
    hk_jw_obj_close(&w);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "k\"");
    hk_jw_bool(&w, 1);
    hk_jw_obj_close(&w);
    hk_jw_null(&w);
    hk_jw_raw(&w, "[1, 2]", 6);
    hk_jw_time(&w, -5);
    hk_jw_arr_close(&w);
    hk_jw_obj_close(&w);
    assert_int_equal(hk_jw_error(&w), 0);
    assert_string_equal(hk_buf_cstr(&b),
                        "{\"id\":\"wh_1\",\"nil\":null,\"min\":-9223372036854775808,"
                        "\"max\":9223372036854775807,\"t\":true,\"f\":false,\"n\":null,"
                        "\"raw\":{\"x\":1e400},\"rawnil\":null,\"t0\":null,"
                        "\"t1\":\"2026-01-02T03:04:05.678Z\",\"list\":[1,\"two\\n\","
                        "\"thr\xef\xbf\xbd\",[],{},{\"k\\\"\":true},null,[1, 2],null]}");
    hk_jdoc d;
    assert_int_equal(hk_json_parse(&d, b.data, b.len, 100, 8), 0);
    hk_json_free(&d);
    hk_buf_free(&b);
}

static void test_writer_errors(void **state)
{
    (void)state;
    hk_buf b;
    hk_jw w;

    /* nesting cap */
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_jw_init(&w, &b);
    for (int i = 0; i < HK_JW_MAX_DEPTH; i++) hk_jw_arr_open(&w);
    assert_int_equal(hk_jw_error(&w), 0);
    for (int i = 0; i < HK_JW_MAX_DEPTH; i++) hk_jw_arr_close(&w);
    assert_int_equal(hk_jw_error(&w), 0);
    assert_int_equal(b.len, 2 * HK_JW_MAX_DEPTH);
    hk_buf_reset(&b);
    hk_jw_init(&w, &b);
    for (int i = 0; i <= HK_JW_MAX_DEPTH; i++) hk_jw_arr_open(&w);
    assert_int_equal(hk_jw_error(&w), HK_ETOOBIG);
    hk_jw_int(&w, 1); /* sticky: nothing more is written */
    hk_jw_arr_close(&w);
    assert_int_equal(hk_jw_error(&w), HK_ETOOBIG);
    assert_int_equal(b.len, HK_JW_MAX_DEPTH);

    /* closing what is not open */
    hk_buf_reset(&b);
    hk_jw_init(&w, &b);
    hk_jw_obj_close(&w);
    assert_int_equal(hk_jw_error(&w), HK_EINVAL);
    hk_buf_free(&b);

    /* buffer cap: sticky */
    hk_buf_init(&b, 10);
    hk_jw_init(&w, &b);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "key", "long value");
    assert_int_equal(hk_jw_error(&w), HK_ETOOBIG);
    hk_jw_obj_close(&w);
    assert_int_equal(hk_jw_error(&w), HK_ETOOBIG);
    assert_true(b.len <= 10);
    hk_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar_table),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_string_scan_positions),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_token_cap),
        cmocka_unit_test(test_token_layout),
        cmocka_unit_test(test_surrogates_and_escapes),
        cmocka_unit_test(test_str_and_strdup),
        cmocka_unit_test(test_obj_get),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_double_and_bool),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_writer_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
