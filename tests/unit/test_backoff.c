/*
 * test_backoff.c: duration and schedule parsing (core/time.c: values, limits, error messages),
 * the jittered delay at its bounds (u = 0, u just below 1, jitter 0, the last entry repeating), and
 * Retry-After: delta-seconds, the three HTTP-date forms (expected instants from Python's
 * email.utils + calendar.timegm), the RFC 850 two-digit year, clamping and garbage.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/time.h"
#include "delivery/backoff.h"

#define S 1000LL
#define M (60 * S)
#define H (60 * M)
#define D (24 * H)

static void test_duration_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"1500ms", 1500}, {"5s", 5 * S},
                {"5m", 5 * M},    {"2h", 2 * H},
                {"1d", D},        {"250", 250},
                {"0", 0},         {"007s", 7 * S},
                {"0ms", 0},       {"9223372036854775807", INT64_MAX}};
    for (size_t i = 0; i < HK_ARRAY_LEN(good); i++) {
        int64_t v = -1;
        assert_int_equal(hk_duration_parse(good[i].s, &v), HK_OK);
        assert_int_equal(v, good[i].ms);
    }
    const char *bad[] = {"",
                         "s",
                         "ms",
                         "5 s",
                         " 5s",
                         "5s ",
                         "5S",
                         "5sec",
                         "-5s",
                         "+5s",
                         "1.5s",
                         "5x",
                         "5mss",
                         "5h5m",
                         "0x10",
                         "1e3",
                         "9223372036854775808",
                         "9223372036854775807s",
                         "106751991168d"};
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        int64_t v = 42;
        if (hk_duration_parse(bad[i], &v) != HK_EINVAL) print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(hk_duration_parse(bad[i], &v), HK_EINVAL);
        assert_int_equal(v, 42);
    }
    int64_t v;
    assert_int_equal(hk_duration_parse(NULL, &v), HK_EINVAL);
    assert_int_equal(hk_duration_parse("106751991167d", &v), HK_OK); /* the most days in int64 ms */
    assert_int_equal(v, 106751991167LL * D);
}

static void test_schedule_parse(void **state)
{
    (void)state;
    int64_t out[HK_RETRY_SCHEDULE_MAX];
    char err[200];
    assert_int_equal(
        hk_duration_list_parse("5s,5m,30m,2h,5h,10h", out, HK_RETRY_SCHEDULE_MAX, err, sizeof err),
        6);
    const int64_t want[] = {5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H};
    assert_memory_equal(out, want, sizeof want);

    assert_int_equal(hk_duration_list_parse(" 1500ms ,\t2s,3 ", out, 64, err, sizeof err), 3);
    assert_int_equal(out[0], 1500);
    assert_int_equal(out[1], 2 * S);
    assert_int_equal(out[2], 3);
    assert_int_equal(hk_duration_list_parse("7d", out, 64, NULL, 0), 1);
    assert_int_equal(out[0], 7 * D);
}

/* Expects s to fail with HK_EINVAL, leave out as it was, and explain itself with `msg`. */
static void expect_list_error(const char *s, int max, const char *msg)
{
    int64_t out[HK_RETRY_SCHEDULE_MAX];
    for (int i = 0; i < HK_RETRY_SCHEDULE_MAX; i++) out[i] = -7;
    char err[200] = "unset";
    assert_int_equal(hk_duration_list_parse(s, out, max, err, sizeof err), HK_EINVAL);
    if (strcmp(err, msg) != 0) print_error("for \"%s\": \"%s\"\n", s, err);
    assert_string_equal(err, msg);
    for (int i = 0; i < HK_RETRY_SCHEDULE_MAX; i++) assert_int_equal(out[i], -7);
}

static void test_schedule_errors(void **state)
{
    (void)state;
    expect_list_error("", 64, "needs at least one delay");
    expect_list_error("  ", 64, "needs at least one delay");
    expect_list_error("5s,,5m", 64, "item 2 is empty");
    expect_list_error("5s,", 64, "item 2 is empty");
    expect_list_error(",5s", 64, "item 1 is empty");
    expect_list_error("5s, 5x", 64,
                      "\"5x\" (item 2) is not a duration: use a whole number and a unit ms, s, "
                      "m, h or d, e.g. 5s");
    expect_list_error("1.5s", 64,
                      "\"1.5s\" (item 1) is not a duration: use a whole number and a unit ms, s, "
                      "m, h or d, e.g. 5s");
    expect_list_error("5s,0s", 64, "\"0s\" (item 2) must be more than 0 and at most 7d");
    expect_list_error("8d", 64, "\"8d\" (item 1) must be more than 0 and at most 7d");
    expect_list_error("604800001", 64, "\"604800001\" (item 1) must be more than 0 and at most 7d");
    expect_list_error("1s,2s,3s,4s", 3, "more than 3 delays");
    /* a very long item is shown cut to 32 characters */
    expect_list_error("1111111111111111111111111111111111111111", 64,
                      "\"11111111111111111111111111111111\" (item 1) is not a duration: use a "
                      "whole number and a unit ms, s, m, h or d, e.g. 5s");

    /* "1s,1s,...,1s": 64 items pass, 65 do not */
    char many[400];
    size_t len = 0;
    for (int i = 0; i < HK_RETRY_SCHEDULE_MAX + 1; i++) {
        memcpy(many + len, "1s,", 3);
        len += 3;
    }
    many[HK_RETRY_SCHEDULE_MAX * 3 - 1] = '\0';
    int64_t out[HK_RETRY_SCHEDULE_MAX];
    assert_int_equal(hk_duration_list_parse(many, out, HK_RETRY_SCHEDULE_MAX, NULL, 0), 64);
    many[HK_RETRY_SCHEDULE_MAX * 3 - 1] = ',';
    many[len - 1] = '\0';
    expect_list_error(many, HK_RETRY_SCHEDULE_MAX, "more than 64 delays");
    /* asking for more than HK_RETRY_SCHEDULE_MAX still stops there */
    expect_list_error(many, 1000, "more than 64 delays");
    assert_int_equal(hk_duration_list_parse(NULL, out, 64, NULL, 0), HK_EINVAL);
}

static void test_backoff_delay(void **state)
{
    (void)state;
    const int64_t sch[] = {5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H};
    const int n = 6;
    const double below1 = nextafter(1.0, 0.0);
    /* jitter 0: the schedule exactly; the last entry repeats; retry < 1 is the first */
    for (int r = 1; r <= 6; r++)
        assert_int_equal(hk_backoff_delay_ms(sch, n, 0, r, 0.7), sch[r - 1]);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0, 7, 0.3), 10 * H);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0, 1000, 0.3), 10 * H);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0, 0, 0.3), 5 * S);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0, -3, 0.3), 5 * S);

    /* jitter 0.2: u = 0 gives -20 %, u just below 1 gives +20 %, u = 0.5 the entry itself */
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 1, 0.0), 4000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 1, below1), 6000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 1, 0.5), 5000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 2, 0.0), 240000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 2, 0.25), 270000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 9, 0.0), 8 * H);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 9, below1), 12 * H);
    for (int i = 0; i < 1000; i++) {
        double u = i / 1000.0;
        int64_t d = hk_backoff_delay_ms(sch, n, 0.2, 3, u);
        assert_in_range(d, 24 * M, 36 * M);
    }
    /* out-of-range inputs are clamped */
    assert_int_equal(hk_backoff_delay_ms(sch, n, 1.0, 1, 0.0), 0);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 5.0, 1, 0.0), 0);
    assert_int_equal(hk_backoff_delay_ms(sch, n, -0.5, 1, 0.0), 5000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, NAN, 1, 0.0), 5000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 1, -1.0), 4000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 1, 1.0), 6000);
    assert_int_equal(hk_backoff_delay_ms(sch, n, 0.2, 1, NAN), 4000);
    assert_int_equal(hk_backoff_delay_ms(NULL, 0, 0.2, 1, 0.5), 0);
    assert_int_equal(hk_backoff_delay_ms(sch, 0, 0.2, 1, 0.5), 0);
    /* a one-entry schedule repeats that entry */
    const int64_t one[] = {1500};
    assert_int_equal(hk_backoff_delay_ms(one, 1, 0, 4, 0.9), 1500);
}

#define DATE_S 784111777LL /* Sun, 06 Nov 1994 08:49:37 GMT */

static void expect_ra(const char *v, int64_t now_ms, int64_t want)
{
    int64_t d = -1;
    int rc = hk_retry_after_parse(v, now_ms, &d);
    if (rc != HK_OK || d != want) print_error("\"%s\": rc %d delay %lld\n", v, rc, (long long)d);
    assert_int_equal(rc, HK_OK);
    assert_int_equal(d, want);
}

static void test_retry_after_seconds(void **state)
{
    (void)state;
    int64_t now = 1767225600000LL;
    expect_ra("120", now, 120 * S);
    expect_ra("0", now, 0);
    expect_ra(" 7\t", now, 7 * S);
    expect_ra("0003", now, 3 * S);
    expect_ra("86400", now, HK_RETRY_AFTER_CAP_MS);
    expect_ra("86401", now, HK_RETRY_AFTER_CAP_MS);
    expect_ra("99999999999999999999999999999999999999999999", now, HK_RETRY_AFTER_CAP_MS);
    expect_ra("-5", now, 0);
    expect_ra("-99999999999999999999999", now, 0);
}

static void test_retry_after_dates(void **state)
{
    (void)state;
    int64_t now = (DATE_S - 120) * S;
    expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", now, 120 * S);    /* IMF-fixdate */
    expect_ra("Sunday, 06-Nov-94 08:49:37 GMT", now, 120 * S);   /* RFC 850 */
    expect_ra("Sun Nov  6 08:49:37 1994", now, 120 * S);         /* asctime */
    expect_ra("Sun Nov 06 08:49:37 1994", now, 120 * S);         /* asctime, 2-digit day */
    expect_ra("  sun, 06 NOV 1994 08:49:37 gmt ", now, 120 * S); /* case, whitespace */
    expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", now + 500, 120 * S - 500);
    /* in the past: 0; more than 24 h ahead: the cap */
    expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", DATE_S * S + 1, 0);
    expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", 1767225600000LL, 0);
    expect_ra("Thu, 01 Jan 2026 00:00:00 GMT", 0, HK_RETRY_AFTER_CAP_MS);
    expect_ra("Thu, 01 Jan 2026 00:00:00 GMT", 1767225600000LL - 3 * S, 3 * S);
    /* leap day, last day of a year */
    expect_ra("Tue, 29 Feb 2028 23:59:59 GMT", (1835481599LL - 60) * S, 60 * S);
    expect_ra("Fri, 31 Dec 2027 12:00:00 GMT", (1830254400LL - 1) * S, S);
    expect_ra("Wednesday, 31-Dec-27 12:00:00 GMT", (1830254400LL - 1) * S, S);

    /* RFC 850 two-digit years: more than 50 years ahead means the century before */
    int64_t in_2026 = 1767225600000LL;
    expect_ra("Thursday, 01-Jan-26 00:00:10 GMT", in_2026, 10 * S);
    expect_ra("Sunday, 06-Nov-94 08:49:37 GMT", in_2026, 0); /* 1994, not 2094 */
    expect_ra("Friday, 01-Jan-76 00:00:00 GMT", in_2026, HK_RETRY_AFTER_CAP_MS); /* 2076 */
    expect_ra("Friday, 01-Jan-77 00:00:00 GMT", in_2026, 0);                     /* 1977 */
    /* seen from 1994, "26" is 2026 (32 years ahead) */
    expect_ra("Thursday, 01-Jan-26 00:00:00 GMT", (DATE_S - 120) * S, HK_RETRY_AFTER_CAP_MS);
}

static void test_retry_after_garbage(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "   ",
        "abc",
        "1.5",
        "12 s",
        "12s",
        "+5",
        "-",
        "0x10",
        "Sun, 06 Nov 1994 08:49:37",       /* no zone */
        "Sun, 06 Nov 1994 08:49:37 UTC",   /* not GMT */
        "Sun, 06 Nov 1994 08:49:37 GMT+1", /* trailing text */
        "Sun, 6 Nov 1994 08:49:37 GMT",    /* 1-digit day */
        "Sun, 06 Nov 94 08:49:37 GMT",     /* 2-digit year in IMF-fixdate */
        "Sun, 31 Feb 1994 08:49:37 GMT",   /* no such day */
        "Sun, 29 Feb 1900 08:49:37 GMT",   /* 1900 was not a leap year */
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT", /* RFC 850 with 4-digit year */
        "Sunday, 06-Nov-94 08:49:37",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov   6 08:49:37 1994",
        "2026-01-01T00:00:00Z",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "120, 30",
        "\xc3\xa9",
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        int64_t d = 77;
        int rc = hk_retry_after_parse(bad[i], 0, &d);
        if (rc != HK_EINVAL) print_error("accepted \"%s\" -> %lld\n", bad[i], (long long)d);
        assert_int_equal(rc, HK_EINVAL);
        assert_int_equal(d, 77);
    }
    int64_t d;
    assert_int_equal(hk_retry_after_parse(NULL, 0, &d), HK_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse),      cmocka_unit_test(test_schedule_parse),
        cmocka_unit_test(test_schedule_errors),     cmocka_unit_test(test_backoff_delay),
        cmocka_unit_test(test_retry_after_seconds), cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
