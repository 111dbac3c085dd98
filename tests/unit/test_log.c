/*
 * test_log.c: the log line formats (core/log.c). Output is captured through hk_log_set_fd on a
 * pipe; each test compares whole lines, the timestamp checked for its shape and the rest for
 * exact bytes: text and JSON forms, quoting and escaping, level filtering, truncation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"

static int pipefd[2];

static int setup(void **state)
{
    if (pipe(pipefd) != 0) return -1;
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
    hk_log_set_fd(pipefd[1]);
    return 0;
}

static int teardown(void **state)
{
    hk_log_set_fd(2);
    hk_log_setup("text", "info");
    close(pipefd[0]);
    close(pipefd[1]);
    return 0;
}

/* Everything written so far (NUL-terminated, caller frees). */
static char *drain(size_t *len_out)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (len == cap) b = realloc(b, (cap *= 2) + 1);
        ssize_t r = read(pipefd[0], b + len, cap - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    b[len] = '\0';
    if (len_out) *len_out = len;
    return b;
}

/* Checks that line starts with an ISO-8601 ms timestamp + sep, and that the rest equals want. */
static void expect_line(const char *got, const char *prefix, const char *want)
{
    size_t pl = strlen(prefix);
    assert_memory_equal(got, prefix, pl);
    const char *t = got + pl;
    /* 2026-11-22T10:00:00.123Z */
    assert_true(strlen(t) >= 24);
    for (int i = 0; i < 24; i++) {
        char c = t[i];
        switch (i) {
        case 4:
        case 7:
            assert_int_equal(c, '-');
            break;
        case 10:
            assert_int_equal(c, 'T');
            break;
        case 13:
        case 16:
            assert_int_equal(c, ':');
            break;
        case 19:
            assert_int_equal(c, '.');
            break;
        case 23:
            assert_int_equal(c, 'Z');
            break;
        default:
            assert_true(c >= '0' && c <= '9');
        }
    }
    assert_string_equal(t + 24, want);
}

static void test_text_basic(void **state)
{
    assert_int_equal(hk_log_setup("text", "info"), 0);
    HK_LOG(HK_LOG_INFO, "delivery.retry", HK_LS("delivery_id", "whde_x"), HK_LI("attempt", 2),
           HK_LS("msg", "timed out"));
    char *out = drain(NULL);
    expect_line(out, "", " INFO delivery.retry delivery_id=whde_x attempt=2 msg=\"timed out\"\n");
    free(out);
}

static void test_json_basic(void **state)
{
    assert_int_equal(hk_log_setup("json", "info"), 0);
    HK_LOG(HK_LOG_INFO, "delivery.retry", HK_LS("delivery_id", "whde_x"), HK_LI("attempt", 2),
           HK_LS("msg", "timed out"));
    char *out = drain(NULL);
    expect_line(out, "{\"ts\":\"",
                "\",\"level\":\"info\",\"event\":\"delivery.retry\",\"delivery_id\":\"whde_x\","
                "\"attempt\":2,\"msg\":\"timed out\"}\n");
    free(out);
}

static void test_text_quoting(void **state)
{
    hk_log_setup("text", "debug");
    HK_LOG(HK_LOG_WARN, "x", HK_LS("a", "plain"), HK_LS("b", ""), HK_LS("c", "k=v"),
           HK_LS("d", "say \"hi\""), HK_LS("e", "back\\slash"), HK_LS("f", "a\\b c"),
           HK_LS("g", "l1\nl2\tx\r\x01\x7f"), HK_LS("h", "caf\xc3\xa9"), HK_LS("i", "bad\xff"),
           HK_LS("j", NULL), HK_LI("k", -5), HK_LD("l", 0.25), HK_LD("m", 1.0 / 3));
    char *out = drain(NULL);
    expect_line(out, "",
                " WARN x a=plain b=\"\" c=\"k=v\" d=\"say \\\"hi\\\"\" e=back\\slash "
                "f=\"a\\\\b c\" g=\"l1\\nl2\\tx\\r\\x01\\x7f\" h=caf\xc3\xa9 i=\"bad\\xff\" "
                "k=-5 l=0.25 m=0.33333333333333331\n");
    free(out);
}

static void test_json_escaping(void **state)
{
    hk_log_setup("json", "debug");
    HK_LOG(HK_LOG_ERROR, "ev\"1", HK_LS("s", "q\"b\\n\n\t\r\b\f\x01\x7f"),
           HK_LS("u", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
           HK_LS("bad", "a\xff\xc0\xaf"
                        "b"),
           HK_LS("sur", "\xed\xa0\x80"), HK_LS("nul", NULL), HK_LI("big", INT64_MIN),
           HK_LD("d", 1e300), HK_LD("nan", NAN), HK_LD("inf", -INFINITY));
    char *out = drain(NULL);
    expect_line(out, "{\"ts\":\"",
                "\",\"level\":\"error\",\"event\":\"ev\\\"1\","
                "\"s\":\"q\\\"b\\\\n\\n\\t\\r\\b\\f\\u0001\\u007f\","
                "\"u\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
                "\"bad\":\"a\\ufffd\\ufffd\\ufffdb\",\"sur\":\"\\ufffd\\ufffd\\ufffd\","
                "\"nul\":null,\"big\":-9223372036854775808,\"d\":1e+300,\"nan\":null,"
                "\"inf\":null}\n");
    free(out);
}

static void test_text_event_and_key_sanitised(void **state)
{
    hk_log_setup("text", "info");
    HK_LOG(HK_LOG_ERROR, "bad event", HK_LS("k y=\"", "v"));
    hk_log_emit(HK_LOG_INFO, NULL, NULL);
    char *out = drain(NULL);
    char *second = strchr(out, '\n');
    assert_non_null(second);
    *second++ = '\0';
    expect_line(out, "", " ERROR \"bad event\" k_y__=v");
    expect_line(second, "", " INFO -\n");
    free(out);
}

static void test_level_filtering(void **state)
{
    assert_int_equal(hk_log_setup("text", "warn"), 0);
    assert_int_equal(hk_log_min_level, HK_LOG_WARN);
    HK_LOG(HK_LOG_DEBUG, "d", HK_LI("n", 1));
    HK_LOG(HK_LOG_INFO, "i", HK_LI("n", 2));
    hk_log_emit(HK_LOG_INFO, "direct", NULL); /* emit filters too */
    HK_LOG(HK_LOG_WARN, "w", HK_LI("n", 3));
    HK_LOG(HK_LOG_ERROR, "e", HK_LI("n", 4));
    char *out = drain(NULL);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    expect_line(out, "", " WARN w n=3");
    expect_line(nl + 1, "", " ERROR e n=4\n");
    free(out);

    assert_int_equal(hk_log_setup("text", "ERROR"), 0); /* names are case-insensitive */
    HK_LOG(HK_LOG_WARN, "w", HK_LI("n", 3));
    out = drain(NULL);
    assert_string_equal(out, "");
    free(out);

    assert_int_equal(hk_log_setup("text", "debug"), 0);
    HK_LOG(HK_LOG_DEBUG, "d", HK_LI("n", 1));
    out = drain(NULL);
    expect_line(out, "", " DEBUG d n=1\n");
    free(out);
}

static void test_setup_rejects_unknown(void **state)
{
    assert_int_equal(hk_log_setup("json", "info"), 0);
    assert_int_equal(hk_log_setup("xml", "debug"), HK_EINVAL);
    assert_int_equal(hk_log_setup("text", "verbose"), HK_EINVAL);
    assert_int_equal(hk_log_setup(NULL, "info"), HK_EINVAL);
    /* nothing changed: still json, info */
    assert_int_equal(hk_log_min_level, HK_LOG_INFO);
    HK_LOG(HK_LOG_DEBUG, "hidden", HK_LI("n", 0));
    HK_LOG(HK_LOG_INFO, "shown", HK_LI("n", 1));
    char *out = drain(NULL);
    expect_line(out, "{\"ts\":\"", "\",\"level\":\"info\",\"event\":\"shown\",\"n\":1}\n");
    free(out);
}

static char *big_string(size_t n, char c)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_truncation_text(void **state)
{
    hk_log_setup("text", "info");
    char *v = big_string(20000, 'a');
    HK_LOG(HK_LOG_INFO, "big", HK_LI("n", 7), HK_LS("msg", v), HK_LS("after", "dropped"));
    size_t len;
    char *out = drain(&len);
    assert_true(len <= 16384);
    assert_true(len > 16000);
    assert_int_equal(out[len - 1], '\n');
    assert_null(memchr(out, '\n', len - 1)); /* one line */
    assert_non_null(strstr(out, " INFO big n=7 msg=aaaa"));
    assert_null(strstr(out, "after"));
    const char *tail = " truncated=true\n";
    assert_string_equal(out + len - strlen(tail), tail);
    free(out);

    /* quoted value: the quote is closed before the marker; escapes are never split */
    memset(v, '"', 20000);
    HK_LOG(HK_LOG_INFO, "big", HK_LS("msg", v));
    out = drain(&len);
    assert_true(len <= 16384);
    tail = "\\\"\" truncated=true\n";
    assert_string_equal(out + len - strlen(tail), tail);
    free(out);
    free(v);
}

static void test_truncation_json(void **state)
{
    hk_log_setup("json", "info");
    /* 3-byte characters: the cut must fall between characters */
    size_t nchars = 8000;
    char *v = malloc(nchars * 3 + 1);
    for (size_t i = 0; i < nchars; i++) memcpy(v + 3 * i, "\xe2\x82\xac", 3);
    v[nchars * 3] = '\0';
    HK_LOG(HK_LOG_INFO, "big", HK_LS("msg", v), HK_LI("after", 1));
    size_t len;
    char *out = drain(&len);
    assert_true(len <= 16384);
    const char *tail = "\xe2\x82\xac\",\"truncated\":true}\n";
    assert_string_equal(out + len - strlen(tail), tail);
    assert_null(strstr(out, "after"));
    /* the euro signs are whole: the bytes between the opening quote and the tail are 3k */
    const char *start = strstr(out, "\"msg\":\"") + 7;
    size_t body = (size_t)(out + len - strlen(",\"truncated\":true}\n") - 1 - start);
    assert_int_equal(body % 3, 0);
    free(out);

    /* many small fields: a field that does not fit is dropped whole, never half a key */
    hk_log_field f[3000];
    char keys[3000][16];
    for (int i = 0; i < 2999; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        f[i] = HK_LI(keys[i], 123456789);
    }
    f[2999] = (hk_log_field){0};
    hk_log_emit(HK_LOG_INFO, "many", f);
    out = drain(&len);
    assert_true(len <= 16384);
    tail = "123456789,\"truncated\":true}\n";
    assert_string_equal(out + len - strlen(tail), tail);
    free(out);
    free(v);
}

static void test_fits_exactly_no_marker(void **state)
{
    hk_log_setup("text", "info");
    char *v = big_string(1000, 'b');
    HK_LOG(HK_LOG_INFO, "mid", HK_LS("msg", v));
    size_t len;
    char *out = drain(&len);
    assert_int_equal(len, 24 + strlen(" INFO mid msg=") + 1000 + 1);
    assert_null(strstr(out, "truncated"));
    free(out);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_event_and_key_sanitised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_rejects_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fits_exactly_no_marker, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
