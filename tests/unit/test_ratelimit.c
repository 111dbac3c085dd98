/*
 * test_ratelimit.c: the per-webhook sliding-log limiter (SPEC §4 rate limit). At most `limit`
 * starts in any 60-second window (a sliding window, not a fixed one that lets 2x through at a
 * boundary), even pacing once a webhook has had to wait (no burst when the window slides), an
 * idle webhook may burst again, and hk_rl_projected predicts the starts the limiter then allows,
 * for backlogs after a compressed burst, a spread one and a late cluster. A seeded random run
 * checks the window invariant over thousands of starts.
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
#include "queue/ratelimit.h"

#define S 1000LL
#define W HK_RL_WINDOW_MS

/* Fails unless no 60-second window [t, t + 60 s) of the sorted starts holds more than limit. */
static void assert_window(const int64_t *starts, int n, int limit)
{
    for (int i = 0; i + limit < n; i++)
        if (starts[i + limit] - starts[i] < W)
            fail_msg("starts %d and %d are %lld ms apart: %d starts in one window (limit %d)", i,
                     i + limit, (long long)(starts[i + limit] - starts[i]), limit + 1, limit);
}

/* Drains a backlog of n jobs from time `now` the way the dispatcher does: take, and when told
 * to wait, sleep exactly that long. Writes the start times; returns the time after the last. */
static int64_t drain(hk_rl_log *l, int limit, int64_t now, int n, int64_t *starts)
{
    for (int i = 0; i < n;) {
        int64_t wait = hk_rl_take(l, limit, now);
        if (wait > 0) {
            now += wait;
            continue;
        }
        starts[i++] = now;
    }
    hk_rl_idle(l);
    return now;
}

static void test_burst_up_to_the_limit_then_wait(void **state)
{
    (void)state;
    hk_rl_log l = {0};
    for (int i = 0; i < 5; i++) assert_int_equal(hk_rl_take(&l, 5, 1000), 0);
    assert_int_equal(hk_rl_take(&l, 5, 1000), W); /* the first start leaves at 61 s */
    assert_int_equal(hk_rl_take(&l, 5, 30 * S), 31 * S);
    assert_int_equal(hk_rl_take(&l, 5, 1000 + W), 0); /* exactly one window later */
    hk_rl_free(&l);
    assert_null(l.t);
    assert_int_equal(l.n, 0);
}

/* A sliding window: 5 starts 10 s apart, the 6th waits for the first to leave, not for a
 * minute boundary. */
static void test_window_slides(void **state)
{
    (void)state;
    hk_rl_log l = {0};
    for (int i = 0; i < 5; i++) assert_int_equal(hk_rl_take(&l, 5, i * 10 * S), 0);
    assert_int_equal(hk_rl_take(&l, 5, 50 * S), 10 * S);
    /* throttled now: the next start is paced 12 s after the last (40 s) and the window lets it
     * go at 60 s */
    assert_int_equal(hk_rl_take(&l, 5, 60 * S), 0);
    hk_rl_free(&l);
}

/* After a full burst the backlog goes out one start every 60/limit s, not `limit` at once
 * when the burst leaves the window. */
static void test_backlog_is_paced_without_boundary_burst(void **state)
{
    (void)state;
    hk_rl_log l = {0};
    int64_t st[15];
    drain(&l, 5, 0, 15, st);
    for (int i = 0; i < 5; i++) assert_int_equal(st[i], 0);
    for (int i = 5; i < 15; i++) assert_int_equal(st[i], W + (i - 5) * 12 * S);
    assert_window(st, 15, 5);
    hk_rl_free(&l);
}

/* An idle webhook (its backlog emptied) may burst up to the limit again once the window
 * allows. */
static void test_idle_webhook_may_burst_again(void **state)
{
    (void)state;
    hk_rl_log l = {0};
    int64_t st[8];
    int64_t end = drain(&l, 4, 0, 8, st); /* 4 at 0, then 60, 75, 90, 105 s */
    assert_int_equal(end, W + 45 * S);
    int64_t later = end + W;
    for (int i = 0; i < 4; i++) assert_int_equal(hk_rl_take(&l, 4, later), 0);
    assert_true(hk_rl_take(&l, 4, later) > 0);
    hk_rl_free(&l);
}

static void test_limit_below_one_is_one(void **state)
{
    (void)state;
    hk_rl_log l = {0};
    assert_int_equal(hk_rl_take(&l, 0, 0), 0);
    assert_int_equal(hk_rl_take(&l, -3, 1), W - 1);
    assert_int_equal(hk_rl_projected(&l, 0, 100, 1), 100 + W);
    hk_rl_free(&l);
}

/* The projection made when the limit first makes a line wait equals the starts the limiter
 * then allows, job by job. */
static void check_projection(const int64_t *recorded, int nrec, int limit, int64_t now, int n)
{
    hk_rl_log l = {0};
    for (int i = 0; i < nrec; i++) assert_int_equal(hk_rl_take(&l, limit, recorded[i]), 0);
    int64_t wait = hk_rl_take(&l, limit, now);
    assert_true(wait > 0);
    int64_t proj[64];
    proj[0] = now + wait;
    for (int k = 1; k < n; k++) proj[k] = hk_rl_projected(&l, limit, proj[k - 1], k);
    int64_t st[64];
    drain(&l, limit, now, n, st);
    for (int k = 0; k < n; k++)
        if (proj[k] != st[k])
            fail_msg("limit %d, job %d: projected %lld, started %lld", limit, k, (long long)proj[k],
                     (long long)st[k]);
    int64_t all[128];
    memcpy(all, recorded, sizeof(int64_t) * (size_t)nrec);
    memcpy(all + nrec, st, sizeof(int64_t) * (size_t)n);
    assert_window(all, nrec + n, limit);
    hk_rl_free(&l);
}

static void test_projection_matches_the_starts(void **state)
{
    (void)state;
    static const int64_t burst[] = {0, 0, 0, 0, 0};
    check_projection(burst, 5, 5, 100, 12);
    static const int64_t spread[] = {0, 25 * S, 50 * S};
    check_projection(spread, 3, 3, 51 * S, 6);
    /* a late cluster: the window, not the pacing, sets the second start (40 s + 60 s) */
    static const int64_t late[] = {0, 40 * S, 41 * S};
    check_projection(late, 3, 3, 41500, 6);
    hk_rl_log l = {0};
    for (int i = 0; i < 3; i++) assert_int_equal(hk_rl_take(&l, 3, late[i]), 0);
    int64_t wait = hk_rl_take(&l, 3, 41500);
    assert_int_equal(41500 + wait, 61 * S);                       /* pacing: 41 s + 20 s */
    assert_int_equal(hk_rl_projected(&l, 3, 61 * S, 1), 100 * S); /* window: 40 s + 60 s */
    hk_rl_free(&l);
    static const int64_t one[] = {7};
    check_projection(one, 1, 1, 8, 5);
}

/* Seeded random arrivals, limits and idle gaps: the window invariant holds for every start. */
static void test_random_runs_keep_the_window(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int run = 0; run < 200; run++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int limit = 1 + (int)((seed >> 33) % 20);
        hk_rl_log l = {0};
        int64_t now = 0;
        int64_t st[400];
        int n = 0;
        while (n < 400) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            int batch = 1 + (int)((seed >> 35) % (unsigned)(2 * limit + 1));
            if (batch > 400 - n) batch = 400 - n;
            now = drain(&l, limit, now, batch, st + n);
            n += batch;
            now += (int64_t)((seed >> 20) % (unsigned)(2 * W)); /* idle for up to two windows */
        }
        assert_window(st, n, limit);
        hk_rl_free(&l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_up_to_the_limit_then_wait),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_backlog_is_paced_without_boundary_burst),
        cmocka_unit_test(test_idle_webhook_may_burst_again),
        cmocka_unit_test(test_limit_below_one_is_one),
        cmocka_unit_test(test_projection_matches_the_starts),
        cmocka_unit_test(test_random_runs_keep_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
