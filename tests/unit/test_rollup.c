/*
 * test_rollup.c: the statistics' histograms (store/rollup.c): every latency from 1 ms to 10 min
 * reads back within HK_SH_ERROR_PCT percent (the bound docs/API.md states), the ends, the
 * quantile's nearest rank, the array literal both stores hold (format, parse, add, garbage), and
 * hk_rollup_collect's rows (outcomes, minutes, repeated results skipped, sorted), the hour and
 * day rows of hk_rollup_collect_all (the same sums), and the grain a read picks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/rollup.h"

static void test_bound(void **state)
{
    (void)state;
    for (int64_t ms = 1; ms < HK_SH_MAX_MS; ms += ms < 2000 ? 1 : ms / 500) {
        int64_t v = hk_sh_value(hk_sh_bucket(ms));
        int64_t off = v > ms ? v - ms : ms - v;
        /* rounding to whole ms adds at most 0.5 ms on the smallest buckets */
        if ((double)off > (double)ms * HK_SH_ERROR_PCT / 100.0 + 0.5)
            fail_msg("%lld ms reads %lld", (long long)ms, (long long)v);
    }
    assert_int_equal(hk_sh_bucket(0), 0);
    assert_int_equal(hk_sh_bucket(-5), 0);
    assert_int_equal(hk_sh_value(0), 0);
    assert_int_equal(hk_sh_bucket(HK_SH_MAX_MS), HK_SH_BUCKETS - 1);
    assert_int_equal(hk_sh_bucket(INT64_MAX), HK_SH_BUCKETS - 1);
    assert_int_equal(hk_sh_value(HK_SH_BUCKETS - 1), HK_SH_MAX_MS);
    for (int i = 1; i < HK_SH_BUCKETS; i++) assert_true(hk_sh_value(i) >= hk_sh_value(i - 1));
}

static void test_quantile(void **state)
{
    (void)state;
    int64_t h[HK_SH_BUCKETS] = {0};
    assert_int_equal(hk_sh_quantile(h, 0.5), -1);
    /* 98 values of 10 ms, 2 of 1000 ms: p50 = p95 = 10 ms, p99 = 1000 ms (nearest rank) */
    h[hk_sh_bucket(10)] = 98;
    h[hk_sh_bucket(1000)] = 2;
    assert_int_equal(hk_sh_quantile(h, 0.50), hk_sh_value(hk_sh_bucket(10)));
    assert_int_equal(hk_sh_quantile(h, 0.95), hk_sh_value(hk_sh_bucket(10)));
    assert_int_equal(hk_sh_quantile(h, 0.99), hk_sh_value(hk_sh_bucket(1000)));
}

static void test_literal(void **state)
{
    (void)state;
    int64_t h[HK_SH_BUCKETS] = {0}, g[HK_SH_BUCKETS] = {0};
    char s[HK_SH_TEXT_MAX];
    hk_sh_format(h, s);
    assert_string_equal(s, "{}");
    h[0] = 1;
    h[3] = 7;
    hk_sh_format(h, s);
    assert_string_equal(s, "{1,0,0,7}");
    h[4] = 1234567890123;
    h[5] = 10;
    hk_sh_format(h, s);
    assert_string_equal(s, "{1,0,0,7,1234567890123,10}");
    h[4] = h[5] = 0;
    assert_int_equal(hk_sh_parse_add(g, s), 0);
    assert_int_equal(hk_sh_parse_add(g, "{0,2}"), 0);
    assert_int_equal(g[0], 1);
    assert_int_equal(g[1], 2);
    assert_int_equal(g[3], 7);
    assert_int_equal(hk_sh_parse_add(g, NULL), 0);
    for (int i = 0; i < HK_SH_BUCKETS; i++) h[i] = INT64_MAX;
    hk_sh_format(h, s); /* the longest literal fits */
    assert_true(strlen(s) < HK_SH_TEXT_MAX);
    int64_t back[HK_SH_BUCKETS] = {0}; /* and reads back */
    assert_int_equal(hk_sh_parse_add(back, s), 0);
    assert_true(back[0] == INT64_MAX && back[HK_SH_BUCKETS - 1] == INT64_MAX);
    static const char *const bad[] = {"", "1,2", "{1,2", "{a}", "{-1}", "{1}x", "{1,,2}"};
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        int64_t z[HK_SH_BUCKETS] = {0};
        if (hk_sh_parse_add(z, bad[i]) == 0) fail_msg("accepted \"%s\"", bad[i]);
    }
    char big[HK_SH_TEXT_MAX * 2];
    size_t o = (size_t)snprintf(big, sizeof big, "{1");
    for (int i = 1; i <= HK_SH_BUCKETS; i++) o += (size_t)snprintf(big + o, sizeof big - o, ",1");
    snprintf(big + o, sizeof big - o, "}");
    int64_t z[HK_SH_BUCKETS] = {0};
    assert_int_equal(hk_sh_parse_add(z, big), -1); /* one bucket too many */
}

static void test_collect(void **state)
{
    (void)state;
    hk_result r[5];
    memset(r, 0, sizeof r);
    const int64_t t = 1700000040000LL; /* a minute boundary */
    for (int i = 0; i < 5; i++) {
        hk_strlcpy(r[i].webhook_id, i == 1 ? "wh_b" : "wh_a", HK_ID_MAX);
        r[i].stored = 1;
        r[i].finished_at = t + 1000 * i;
        r[i].created_at = t - 500;
        r[i].duration_ms = 40;
    }
    r[0].attempt_ok = 1;
    r[0].final = 1; /* delivered */
    r[1].attempt_ok = 1;
    r[1].final = 1;                   /* wh_b */
    r[2].final = 0;                   /* failed, retried */
    r[3].final = 1;                   /* given up */
    r[4].stored = 0;                  /* repeated: nothing */
    r[3].finished_at = t + 60000 + 5; /* the next minute */
    hk_rollup_row *rows;
    int n = hk_rollup_collect(r, 5, &rows);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].webhook_id, "wh_a");
    assert_int_equal(rows[0].start, t);
    assert_int_equal(rows[0].delivered, 1);
    assert_int_equal(rows[0].failed, 1);
    assert_int_equal(rows[0].given_up, 0);
    assert_int_equal(rows[0].last_at, t + 2000);
    assert_int_equal(rows[0].att[hk_sh_bucket(40)], 2);
    assert_int_equal(rows[0].e2e[hk_sh_bucket(500)], 1); /* successes only */
    assert_string_equal(rows[1].webhook_id, "wh_a");
    assert_int_equal(rows[1].start, t + 60000);
    assert_int_equal(rows[1].given_up, 1);
    assert_string_equal(rows[2].webhook_id, "wh_b");
    hk_rollup_row acc;
    memset(&acc, 0, sizeof acc);
    hk_rollup_merge(&acc, &rows[0]);
    hk_rollup_merge(&acc, &rows[1]);
    assert_int_equal(acc.delivered + acc.failed + acc.given_up, 3);
    assert_int_equal(acc.last_at, t + 60000 + 5);
    free(rows);
    r[0].stored = r[1].stored = r[2].stored = r[3].stored = 0;
    assert_int_equal(hk_rollup_collect(r, 5, &rows), 0);
    assert_null(rows);
}

static void test_collect_all(void **state)
{
    (void)state;
    hk_result r[4];
    memset(r, 0, sizeof r);
    const int64_t day = 1699920000000LL; /* a UTC day boundary */
    const int64_t at[4] = {day + 3600000 - 1, day + 3600000, day + 3600000 + 60000, day + 86400000};
    for (int i = 0; i < 4; i++) {
        hk_strlcpy(r[i].webhook_id, "wh_a", HK_ID_MAX);
        r[i].stored = 1;
        r[i].attempt_ok = i != 1;
        r[i].final = 1;
        r[i].finished_at = at[i];
        r[i].duration_ms = 10 * (i + 1);
    }
    hk_rollup_row *rows;
    /* minute rows: 4; hour rows: 3 (the first hour, the second with two, the next day's);
     * day rows: 2 */
    int n = hk_rollup_collect_all(r, 4, &rows);
    assert_int_equal(n, 9);
    for (int i = 0; i < 4; i++) assert_int_equal(rows[i].grain, HK_ROLLUP_MINUTE);
    assert_int_equal(rows[4].grain, HK_ROLLUP_HOUR);
    assert_int_equal(rows[4].start, day);
    assert_int_equal(rows[4].delivered, 1);
    assert_int_equal(rows[5].start, day + 3600000);
    assert_int_equal(rows[5].delivered, 1);
    assert_int_equal(rows[5].given_up, 1);
    assert_int_equal(rows[5].last_at, day + 3600000 + 60000);
    assert_int_equal(rows[5].att[hk_sh_bucket(20)] + rows[5].att[hk_sh_bucket(30)], 2);
    assert_int_equal(rows[6].start, day + 86400000);
    assert_int_equal(rows[7].grain, HK_ROLLUP_DAY);
    assert_int_equal(rows[7].start, day);
    assert_int_equal(rows[7].delivered + rows[7].given_up, 3);
    assert_int_equal(rows[8].start, day + 86400000);
    int64_t sum[3] = {0};
    for (int i = 0; i < n; i++)
        sum[rows[i].grain == HK_ROLLUP_MINUTE ? 0
            : rows[i].grain == HK_ROLLUP_HOUR ? 1
                                              : 2] += rows[i].delivered;
    assert_int_equal(sum[0], 3);
    assert_int_equal(sum[1], 3);
    assert_int_equal(sum[2], 3);
    free(rows);
}

static void test_grain(void **state)
{
    (void)state;
    const int64_t day = 1699920000000LL, H = HK_ROLLUP_HOUR, D = HK_ROLLUP_DAY;
    assert_int_equal(hk_rollup_grain(D, day, day + 7 * D), D);
    assert_int_equal(hk_rollup_grain(H, day, day + 7 * D), H);
    assert_int_equal(hk_rollup_grain(H, day + H, day + 5 * H), H);
    assert_int_equal(hk_rollup_grain(D, day + H, day + D + H), H); /* days from 01:00 */
    assert_int_equal(hk_rollup_grain(60000, day, day + D), HK_ROLLUP_MINUTE);
    assert_int_equal(hk_rollup_grain(180000, day, day + D), HK_ROLLUP_MINUTE);
    assert_int_equal(hk_rollup_grain(H, day + 60000, day + H + 60000), HK_ROLLUP_MINUTE);
    assert_int_equal(hk_rollup_grain(0, day, day + D), HK_ROLLUP_MINUTE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),       cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_literal),     cmocka_unit_test(test_collect),
        cmocka_unit_test(test_collect_all), cmocka_unit_test(test_grain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
