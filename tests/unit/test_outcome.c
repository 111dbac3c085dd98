/*
 * test_outcome.c: the retry-or-fail decision (outcome.h) on every branch: success on 2xx
 * (and not on a timed-out answer with a status), the metrics class of each kind of answer,
 * the message recorded (HTTP status, redirects, transport error, the default), 410 Gone
 * (final at once, gone), refused by the SSRF guard (final at once on attempt 1), the last
 * attempt, the schedule with its jitter, and Retry-After: honoured on 429 and 503 only, only
 * when longer than the schedule, as delta-seconds or an HTTP-date against "now", capped, and
 * ignored when unparseable. And a webhook's own policy (hk_policy_for): its schedule or the
 * global one, its deadline capped by the global one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/metrics.h"
#include "delivery/backoff.h"
#include "delivery/outcome.h"

#define S 1000LL
#define M (60 * S)
#define H (60 * M)

/* 2026-12-04T18:00:00Z, a Friday */
#define NOW 1796407200000LL

static const int64_t schedule[] = {5 * S, 5 * M, 30 * M};
static const hk_retry_policy flat = {schedule, 3, 0.0};

static hk_httpc_resp answer(int status)
{
    hk_httpc_resp r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.body = "";
    return r;
}

static hk_outcome decide(const hk_httpc_resp *r, int attempt, int max)
{
    hk_outcome o;
    memset(&o, 0x5a, sizeof o); /* every field must be written */
    hk_outcome_decide(r, attempt, max, &flat, 0.5, NOW, &o);
    return o;
}

static void test_success(void **state)
{
    (void)state;
    const int ok[] = {200, 201, 202, 204, 299};
    for (size_t i = 0; i < HK_ARRAY_LEN(ok); i++) {
        hk_httpc_resp r = answer(ok[i]);
        r.retry_after = "120"; /* ignored on success */
        hk_outcome o = decide(&r, 1, 3);
        assert_int_equal(o.verdict, HK_VERDICT_SUCCESS);
        assert_int_equal(o.cls, HK_OUT_2XX);
        assert_int_equal(o.gone, 0);
        assert_int_equal(o.delay_ms, 0);
        assert_string_equal(o.msg, "");
    }
    /* a success on the last allowed attempt is a success */
    hk_httpc_resp r = answer(200);
    assert_int_equal(decide(&r, 3, 3).verdict, HK_VERDICT_SUCCESS);
    /* a status that arrived before the deadline does not make a timed-out attempt a success */
    r.timed_out = 1;
    hk_outcome o = decide(&r, 1, 3);
    assert_int_equal(o.verdict, HK_VERDICT_RETRY);
    assert_int_equal(o.cls, HK_OUT_TIMEOUT);
    assert_string_equal(o.msg, "HTTP 200");
}

static void test_classes_and_messages(void **state)
{
    (void)state;
    static const struct {
        int status, timed_out, refused;
        const char *error;
        int cls;
        const char *msg;
    } cases[] = {
        {301, 0, 0, NULL, HK_OUT_3XX, "HTTP 301 (redirects are not followed)"},
        {399, 0, 0, NULL, HK_OUT_3XX, "HTTP 399 (redirects are not followed)"},
        {400, 0, 0, NULL, HK_OUT_4XX, "HTTP 400"},
        {404, 0, 0, NULL, HK_OUT_4XX, "HTTP 404"},
        {429, 0, 0, NULL, HK_OUT_4XX, "HTTP 429"},
        {499, 0, 0, NULL, HK_OUT_4XX, "HTTP 499"},
        {500, 0, 0, NULL, HK_OUT_5XX, "HTTP 500"},
        {503, 0, 0, NULL, HK_OUT_5XX, "HTTP 503"},
        {599, 0, 0, NULL, HK_OUT_5XX, "HTTP 599"},
        {0, 1, 0, "Operation timed out after 10000 ms", HK_OUT_TIMEOUT,
         "Operation timed out after 10000 ms"},
        {0, 0, 0, "Connection refused", HK_OUT_CONNECT, "Connection refused"},
        {0, 0, 0, NULL, HK_OUT_CONNECT, "request failed"},
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        hk_httpc_resp r = answer(cases[i].status);
        r.timed_out = cases[i].timed_out;
        r.refused = cases[i].refused;
        r.error = cases[i].error;
        assert_int_equal(hk_outcome_class(&r), cases[i].cls);
        hk_outcome o = decide(&r, 1, 3);
        assert_int_equal(o.verdict, HK_VERDICT_RETRY);
        assert_int_equal(o.cls, cases[i].cls);
        assert_int_equal(o.gone, 0);
        assert_int_equal(o.delay_ms, 5 * S);
        assert_string_equal(o.msg, cases[i].msg);
    }
    /* a message longer than the buffer is cut, still terminated */
    char longer[700];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    hk_httpc_resp r = answer(0);
    r.error = longer;
    hk_outcome o = decide(&r, 1, 3);
    assert_int_equal(strlen(o.msg), sizeof o.msg - 1);
}

static void test_gone(void **state)
{
    (void)state;
    hk_httpc_resp r = answer(410);
    r.retry_after = "5";
    hk_outcome o = decide(&r, 1, 10);
    assert_int_equal(o.verdict, HK_VERDICT_FAILED);
    assert_int_equal(o.gone, 1);
    assert_int_equal(o.cls, HK_OUT_4XX);
    assert_int_equal(o.delay_ms, 0);
    assert_string_equal(o.msg, "HTTP 410");
    /* other final failures are not "gone" */
    r = answer(404);
    o = decide(&r, 3, 3);
    assert_int_equal(o.verdict, HK_VERDICT_FAILED);
    assert_int_equal(o.gone, 0);
}

static void test_refused(void **state)
{
    (void)state;
    hk_httpc_resp r = answer(0);
    r.refused = 1;
    r.error = "refused: 127.0.0.1 is not an allowed address";
    hk_outcome o = decide(&r, 1, 10);
    assert_int_equal(o.verdict, HK_VERDICT_FAILED);
    assert_int_equal(o.cls, HK_OUT_REFUSED);
    assert_int_equal(o.gone, 0);
    assert_int_equal(o.delay_ms, 0);
    assert_string_equal(o.msg, r.error);
    /* refused wins over a timeout flag */
    r.timed_out = 1;
    assert_int_equal(hk_outcome_class(&r), HK_OUT_REFUSED);
    assert_int_equal(decide(&r, 1, 10).verdict, HK_VERDICT_FAILED);
}

static void test_last_attempt(void **state)
{
    (void)state;
    hk_httpc_resp r = answer(500);
    assert_int_equal(decide(&r, 1, 3).verdict, HK_VERDICT_RETRY);
    assert_int_equal(decide(&r, 2, 3).verdict, HK_VERDICT_RETRY);
    hk_outcome o = decide(&r, 3, 3);
    assert_int_equal(o.verdict, HK_VERDICT_FAILED);
    assert_int_equal(o.gone, 0);
    assert_int_equal(o.delay_ms, 0);
    assert_string_equal(o.msg, "HTTP 500");
    assert_int_equal(decide(&r, 4, 3).verdict, HK_VERDICT_FAILED);
    assert_int_equal(decide(&r, 1, 1).verdict, HK_VERDICT_FAILED); /* one attempt allowed */
    /* a Retry-After does not buy another attempt */
    r = answer(503);
    r.retry_after = "1";
    assert_int_equal(decide(&r, 3, 3).verdict, HK_VERDICT_FAILED);
}

static void test_schedule(void **state)
{
    (void)state;
    hk_httpc_resp r = answer(502);
    assert_int_equal(decide(&r, 1, 10).delay_ms, 5 * S);
    assert_int_equal(decide(&r, 2, 10).delay_ms, 5 * M);
    assert_int_equal(decide(&r, 3, 10).delay_ms, 30 * M);
    assert_int_equal(decide(&r, 9, 10).delay_ms, 30 * M); /* the last entry repeats */
    /* the jitter scales the delay by 1 - j + 2 j u, u passed in */
    hk_retry_policy jit = {schedule, 3, 0.2};
    hk_outcome o;
    hk_outcome_decide(&r, 1, 10, &jit, 0.0, NOW, &o);
    assert_int_equal(o.delay_ms, 4 * S);
    hk_outcome_decide(&r, 1, 10, &jit, 0.5, NOW, &o);
    assert_int_equal(o.delay_ms, 5 * S);
    hk_outcome_decide(&r, 2, 10, &jit, 0.75, NOW, &o);
    assert_int_equal(o.delay_ms, 330 * S);
    assert_int_equal(o.delay_ms,
                     hk_backoff_delay_ms(schedule, 3, 0.2, 2, 0.75)); /* backoff.c's, as is */
}

static void test_retry_after(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *ra;
        int attempt;
        int64_t delay;
    } cases[] = {
        {429, "120", 1, 120 * S}, /* longer than the schedule: honoured */
        {503, "120", 1, 120 * S},
        {429, "1", 1, 5 * S}, /* shorter: the schedule wins */
        {503, "0", 1, 5 * S},
        {429, "120", 2, 5 * M}, /* shorter than retry 2's delay */
        {429, "3600", 2, H},
        {500, "120", 1, 5 * S}, /* other statuses: ignored */
        {502, "120", 1, 5 * S},
        {404, "120", 1, 5 * S},
        {429, "soon", 1, 5 * S}, /* unparseable: ignored */
        {429, "", 1, 5 * S},
        {429, "-5", 1, 5 * S},
        {429, "999999999", 1, HK_RETRY_AFTER_CAP_MS},      /* capped at 24 hours */
        {503, "Fri, 04 Dec 2026 18:10:00 GMT", 1, 10 * M}, /* an HTTP-date against now */
        {503, "Fri, 04 Dec 2026 17:00:00 GMT", 1, 5 * S},  /* in the past */
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        hk_httpc_resp r = answer(cases[i].status);
        r.retry_after = cases[i].ra;
        hk_outcome o = decide(&r, cases[i].attempt, 10);
        if (o.delay_ms != cases[i].delay)
            print_error("%d Retry-After \"%s\": %lld\n", cases[i].status, cases[i].ra,
                        (long long)o.delay_ms);
        assert_int_equal(o.verdict, HK_VERDICT_RETRY);
        assert_int_equal(o.delay_ms, cases[i].delay);
    }
    /* no header: the schedule */
    hk_httpc_resp r = answer(429);
    assert_int_equal(decide(&r, 1, 10).delay_ms, 5 * S);
}

static void test_policy_for(void **state)
{
    (void)state;
    hk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.retry_schedule[0] = 5 * S;
    cfg.retry_schedule[1] = 5 * M;
    cfg.retry_schedule_len = 2;
    cfg.retry_jitter = 0.2;
    cfg.http_timeout_ms = 10000;
    hk_retry_policy p;
    int t = -1;
    /* none of its own: the global schedule, jitter and deadline */
    hk_policy_for(&cfg, NULL, 0, 0, &p, &t);
    assert_ptr_equal(p.schedule, cfg.retry_schedule);
    assert_int_equal(p.schedule_len, 2);
    assert_true(p.jitter == 0.2);
    assert_int_equal(t, 10000);
    /* its own schedule (the global jitter still) and a shorter deadline */
    const int64_t own[] = {S, 2 * S, 3 * S};
    hk_policy_for(&cfg, own, 3, 300, &p, &t);
    assert_ptr_equal(p.schedule, own);
    assert_int_equal(p.schedule_len, 3);
    assert_true(p.jitter == 0.2);
    assert_int_equal(t, 300);
    /* an empty own schedule is none */
    hk_policy_for(&cfg, own, 0, 0, &p, &t);
    assert_ptr_equal(p.schedule, cfg.retry_schedule);
    /* a deadline above HOOKD_HTTP_TIMEOUT_MS (the global was lowered after it was stored) is
     * capped by it: leases are sized by the global one */
    hk_policy_for(&cfg, NULL, 0, 60000, &p, &t);
    assert_int_equal(t, 10000);
    hk_policy_for(&cfg, NULL, 0, -5, &p, &t);
    assert_int_equal(t, 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),      cmocka_unit_test(test_classes_and_messages),
        cmocka_unit_test(test_gone),         cmocka_unit_test(test_refused),
        cmocka_unit_test(test_last_attempt), cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_retry_after),  cmocka_unit_test(test_policy_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
