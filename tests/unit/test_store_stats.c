/*
 * test_store_stats.c: the cadence of the row counts behind hookd_store_rows
 * (hk_store_stats_rows_delay): never more often than the refresh period, and a count that took
 * long is repeated only after HK_STORE_STATS_ROWS_SHARE times as long, so counting uses at
 * most 1 % of a reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store_stats.h"

static void test_rows_delay(void **state)
{
    (void)state;
    assert_int_equal(hk_store_stats_rows_delay(-5), HK_STORE_STATS_EVERY_MS);
    assert_int_equal(hk_store_stats_rows_delay(0), HK_STORE_STATS_EVERY_MS);
    assert_int_equal(hk_store_stats_rows_delay(3), HK_STORE_STATS_EVERY_MS);
    assert_int_equal(hk_store_stats_rows_delay(50), HK_STORE_STATS_EVERY_MS); /* 50 x 100 */
    assert_int_equal(hk_store_stats_rows_delay(51), 5100);
    assert_int_equal(hk_store_stats_rows_delay(500), 50000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rows_delay)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
