/*
 * test_redis_url.c: REDIS_URL parsing (queue/redis_conn.h): host, port, database, user and
 * password (%-decoded), IPv6 in brackets, unix sockets with ?db=, and the refusals (other
 * schemes, rediss://, bad ports and databases, bad escapes), whose messages name REDIS_URL and
 * never repeat the password. Also the local limiter backend (queue/limiter.h) answers like
 * the sliding log it wraps and never asks.
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
#include "queue/limiter.h"
#include "queue/redis_conn.h"

static void ok(const char *url, const char *host, int port, const char *path, const char *user,
               const char *pass, int db)
{
    hk_redis_url u;
    char err[256] = "";
    int rc = hk_redis_url_parse(url, &u, err, sizeof err);
    if (rc) fail_msg("%s: refused: %s", url, err);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.path, path);
    assert_string_equal(u.user, user);
    assert_string_equal(u.pass, pass);
    assert_int_equal(u.db, db);
}

static void bad(const char *url)
{
    hk_redis_url u;
    char err[256] = "";
    if (hk_redis_url_parse(url, &u, err, sizeof err) != HK_EINVAL)
        fail_msg("%s: accepted", url ? url : "(null)");
    assert_true(err[0] != '\0'); /* says what is wrong */
    assert_null(strstr(err, "s3cret"));
}

static void test_accepted(void **state)
{
    (void)state;
    ok("redis://127.0.0.1:6379", "127.0.0.1", 6379, "", "", "", 0);
    ok("redis://localhost", "localhost", 6379, "", "", "", 0);
    ok("redis://localhost/", "localhost", 6379, "", "", "", 0);
    ok("redis://r.example.com:6380/3", "r.example.com", 6380, "", "", "", 3);
    ok("redis://:s3cret@h:1/0", "h", 1, "", "", "s3cret", 0);
    ok("redis://app:s3cret@h:65535/15", "h", 65535, "", "app", "s3cret", 15);
    ok("redis://app:p%40ss%3Aw%2Fd@h", "h", 6379, "", "app", "p@ss:w/d", 0);
    ok("redis://u:a@b@h:7", "h", 7, "", "u", "a@b", 0); /* the last '@' ends the password */
    ok("redis://[::1]:6390/2", "::1", 6390, "", "", "", 2);
    ok("redis://[fe80::1]", "fe80::1", 6379, "", "", "", 0);
    ok("unix:///run/redis/redis.sock", "", 6379, "/run/redis/redis.sock", "", "", 0);
    ok("unix:///tmp/r.sock?db=4", "", 6379, "/tmp/r.sock", "", "", 4);
}

static void test_refused(void **state)
{
    (void)state;
    bad(NULL);
    bad("");
    bad("http://h:6379");
    bad("rediss://h:6380");
    bad("redis://");
    bad("redis://:6379");
    bad("redis://h:0");
    bad("redis://h:65536");
    bad("redis://h:12ab");
    bad("redis://h:");
    bad("redis://h/abc");
    bad("redis://h/-1");
    bad("redis://h/1/2");
    bad("redis://[::1");
    bad("redis://[::1]x");
    bad("redis://h h:1");
    bad("redis://u:s3cret%zz@h");
    bad("redis://u:s3cret%4@h");
    bad("unix://relative.sock");
    bad("unix:///tmp/r.sock?x=1");
    bad("unix:///tmp/r.sock?db=x");
}

static void test_long_fields(void **state)
{
    (void)state;
    char url[1200];
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(url, sizeof url, "redis://u:%s@h", big); /* password over its buffer */
    bad(url);
    snprintf(url, sizeof url, "redis://%s:1", big); /* host over its buffer */
    bad(url);
}

static void test_local_limiter(void **state)
{
    (void)state;
    hk_limiter *l = hk_limiter_local_new();
    hk_rl_slot s;
    hk_rl_slot_init(&s, "wh_x", NULL, NULL);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) assert_int_equal(hk_limiter_take(l, &s, 3, 1, t), 0);
    int64_t w = hk_limiter_take(l, &s, 3, 1, t);
    assert_true(w > 0 && w <= HK_RL_WINDOW_MS);
    assert_int_equal(hk_limiter_take(l, &s, 3, 1, t + HK_RL_WINDOW_MS), 0);
    hk_limiter_idle(l, &s);
    hk_limiter_slot_clear(l, &s);
    hk_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long_fields),
        cmocka_unit_test(test_local_limiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
