/*
 * test_prune.c: retention's pure rules (store/prune.c): the cut-offs from HOOKD_RETENTION and
 * HOOKD_RETENTION_UNMATCHED (either off, the shorter one for events with no delivery, never
 * before the epoch), the lag the gauge shows, and the parsing of a retention (core/config.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/config.h"
#include "store/prune.h"

#define S 1000LL
#define H (3600 * S)
#define D (24 * H)

static void test_cutoffs(void **state)
{
    (void)state;
    const int64_t now = 1800000000000LL;
    int64_t dl, ev;
    hk_prune_cutoffs(now, 30 * D, D, &dl, &ev); /* the defaults */
    assert_int_equal(dl, now - 30 * D);
    assert_int_equal(ev, now - D);
    hk_prune_cutoffs(now, 0, D, &dl, &ev); /* retention off: only unmatched events go */
    assert_int_equal(dl, 0);
    assert_int_equal(ev, now - D);
    hk_prune_cutoffs(now, 30 * D, 0, &dl, &ev); /* unmatched off: kept as long as the rest */
    assert_int_equal(dl, now - 30 * D);
    assert_int_equal(ev, now - 30 * D);
    hk_prune_cutoffs(now, H, D, &dl, &ev); /* unmatched longer: never beyond the retention */
    assert_int_equal(ev, now - H);
    hk_prune_cutoffs(now, 0, 0, &dl, &ev); /* all off */
    assert_int_equal(dl, 0);
    assert_int_equal(ev, 0);
    hk_prune_cutoffs(5 * S, 30 * D, D, &dl, &ev); /* a clock near the epoch: nothing goes */
    assert_int_equal(dl, 0);
    assert_int_equal(ev, 0);
}

static void test_lag(void **state)
{
    (void)state;
    const int64_t cut = 1800000000000LL;
    assert_int_equal(hk_prune_lag_s(cut, 0, 0, 0, 0), 0);           /* nothing finished left */
    assert_int_equal(hk_prune_lag_s(cut, cut + 5 * S, 0, 0, 0), 0); /* oldest is not due */
    assert_int_equal(hk_prune_lag_s(cut, cut - 90 * S, 0, 0, 0), 90);
    assert_int_equal(hk_prune_lag_s(0, cut - 90 * S, 0, 0, 0), 0); /* retention off */
    /* the event scan behind, with more to do */
    assert_int_equal(hk_prune_lag_s(cut, cut - 10 * S, cut, cut - 3600 * S, 1), 3600);
    assert_int_equal(hk_prune_lag_s(cut, cut - 10 * S, cut, cut - 3600 * S, 0), 10);
}

static void test_retention_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"30d", 30 * D}, {"12h", 12 * H}, {"90m", 90 * 60 * S},
                {"60s", 60 * S}, {"1s", S},       {"0", 0},
                {"off", 0},      {"OFF", 0},      {"36500d", 36500 * D}};
    for (size_t i = 0; i < HK_ARRAY_LEN(good); i++) {
        int64_t v = -1;
        assert_int_equal(hk_retention_parse(good[i].s, &v), HK_OK);
        assert_int_equal(v, good[i].ms);
    }
    static const char *const bad[] = {"",   "5",    "60000",  "10ms",
                                      "0s", "-1d",  "1.5d",   "abc",
                                      "d",  "30 d", "36501d", "99999999999999999999d",
                                      "on"};
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        int64_t v = -1;
        assert_int_equal(hk_retention_parse(bad[i], &v), HK_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutoffs),
        cmocka_unit_test(test_lag),
        cmocka_unit_test(test_retention_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
