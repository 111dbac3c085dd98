/*
 * test_ids.c: the id format (prefix, 9 base36 time digits that decode to the creation time,
 * 15 random digits), the validity checker, uniqueness of 100k ids from one thread and from
 * four threads at once, the sort order of one thread's ids within and across milliseconds, and
 * API key generation and validation.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/ids.h"
#include "core/time.h"

/* ms encoded by the 9 time digits of an id body */
static int64_t id_time(const char *body)
{
    int64_t t = 0;
    for (int i = 0; i < 9; i++) {
        char c = body[i];
        t = t * 36 + (c >= 'a' ? c - 'a' + 10 : c - '0');
    }
    return t;
}

static void test_format(void **state)
{
    (void)state;
    char id[HK_ID_MAX];
    int64_t before = hk_now_ms();
    hk_id_new("whde", id);
    int64_t after = hk_now_ms();
    assert_int_equal(strlen(id), 5 + HK_ID_BODY_LEN);
    assert_memory_equal(id, "whde_", 5);
    for (const char *p = id + 5; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'));
    int64_t t = id_time(id + 5);
    assert_true(t >= before && t <= after + 1);

    hk_id_new("whsub", id);
    assert_int_equal(strlen(id), 6 + 24);
    hk_id_new("abcdefgh", id); /* the longest prefix */
    assert_int_equal(strlen(id), 9 + 24);
    assert_memory_equal(id, "abcdefgh_", 9);
    assert_int_equal(hk_id_valid(id, "abcdefgh"), 1);
    hk_id_new("n", id);
    assert_int_equal(strlen(id), 2 + 24);
}

static void test_valid(void **state)
{
    (void)state;
    char id[HK_ID_MAX];
    hk_id_new("wh", id);
    assert_int_equal(hk_id_valid(id, "wh"), 1);
    assert_int_equal(hk_id_valid(id, "whev"), 0);
    assert_int_equal(hk_id_valid(id, "w"), 0);

    assert_int_equal(hk_id_valid("wh_abcdefghij0123456789", "wh"), 1);                      /* 20 */
    assert_int_equal(hk_id_valid("wh_abcdefghij012345678", "wh"), 0);                       /* 19 */
    assert_int_equal(hk_id_valid("wh_abcdefghij0123456789abcdefghij0123456789", "wh"), 1);  /* 40 */
    assert_int_equal(hk_id_valid("wh_abcdefghij0123456789abcdefghij0123456789a", "wh"), 0); /* 41 */
    const char *bad[] = {
        "",
        "wh",
        "wh_",
        "whabcdefghij0123456789",
        "wh-abcdefghij0123456789",
        "WH_abcdefghij0123456789",
        "wh_Abcdefghij0123456789",
        "wh_abcdefghij 123456789",
        "wh_abcdefghij0123456789 ",
        "wh_abcdefghij-123456789",
        "wh_abcdefghij_123456789",
        "wh_abcdefghij0123456789\n",
        "whev_abcdefghij0123456789",
        " wh_abcdefghij0123456789",
        "wh_abcdefghij012345678\xc3\xa9",
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        if (hk_id_valid(bad[i], "wh")) print_error("accepted: \"%s\"\n", bad[i]);
        assert_int_equal(hk_id_valid(bad[i], "wh"), 0);
    }
    assert_int_equal(hk_id_valid(NULL, "wh"), 0);
    assert_int_equal(hk_id_valid("wh_abcdefghij0123456789", NULL), 0);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

#define N_IDS 100000

/* 100k ids from one thread: each sorts strictly after the one before (so all are distinct),
 * within a millisecond and across milliseconds. */
static void test_unique_and_sorted(void **state)
{
    (void)state;
    char(*ids)[HK_ID_MAX] = malloc(sizeof(*ids) * N_IDS);
    assert_non_null(ids);
    int same_ms = 0, new_ms = 0;
    for (int i = 0; i < N_IDS; i++) {
        hk_id_new("whev", ids[i]);
        if (i == 0) continue;
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            print_error("out of order at %d: %s then %s\n", i, ids[i - 1], ids[i]);
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
        if (memcmp(ids[i - 1] + 5, ids[i] + 5, 9) == 0)
            same_ms++;
        else
            new_ms++;
    }
    /* both cases really happened */
    assert_true(same_ms > 0);
    assert_true(new_ms > 0);
    free(ids);
}

/* Ids made across a few milliseconds, with sleeps between bursts, keep their order. */
static void test_sorted_across_ms(void **state)
{
    (void)state;
    char prev[HK_ID_MAX] = "", id[HK_ID_MAX];
    int64_t first = 0;
    for (int burst = 0; burst < 5; burst++) {
        for (int i = 0; i < 50; i++) {
            hk_id_new("wh", id);
            if (!first) first = id_time(id + 3);
            assert_true(strcmp(prev, id) < 0);
            memcpy(prev, id, sizeof id);
        }
        struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(id_time(prev + 3) >= first + 12);
}

#define N_THREADS  4
#define PER_THREAD 25000

static void *make_ids(void *arg)
{
    char(*ids)[HK_ID_MAX] = arg;
    for (int i = 0; i < PER_THREAD; i++) hk_id_new("whda", ids[i]);
    return NULL;
}

/* 4 threads x 25k ids at the same time: no id repeats. */
static void test_unique_threads(void **state)
{
    (void)state;
    char(*ids)[HK_ID_MAX] = malloc(sizeof(*ids) * N_THREADS * PER_THREAD);
    assert_non_null(ids);
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, make_ids, ids + t * PER_THREAD), 0);
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    qsort(ids, N_THREADS * PER_THREAD, sizeof(*ids), cmp_id);
    for (int i = 1; i < N_THREADS * PER_THREAD; i++) assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    free(ids);
}

static void test_apikey(void **state)
{
    (void)state;
    char a[HK_APIKEY_GEN_LEN], b[HK_APIKEY_GEN_LEN];
    hk_apikey_generate(a);
    hk_apikey_generate(b);
    assert_int_equal(strlen(a), 35);
    assert_memory_equal(a, "hk_", 3);
    assert_string_not_equal(a, b);
    for (const char *p = a + 3; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9'));
    assert_int_equal(hk_apikey_valid(a), 1);

    /* over many keys, every base62 character shows up (upper case included) */
    int seen[128] = {0};
    for (int i = 0; i < 200; i++) {
        hk_apikey_generate(a);
        for (const char *p = a + 3; *p; p++) seen[(unsigned char)*p] = 1;
    }
    int kinds = 0;
    for (int i = 0; i < 128; i++) kinds += seen[i];
    assert_int_equal(kinds, 62);

    char k[200];
    memset(k, 'a', sizeof k);
    k[16] = '\0';
    assert_int_equal(hk_apikey_valid(k), 1);
    k[15] = '\0';
    assert_int_equal(hk_apikey_valid(k), 0);
    memset(k, 'Z', sizeof k);
    k[128] = '\0';
    assert_int_equal(hk_apikey_valid(k), 1);
    k[128] = 'Z';
    k[129] = '\0';
    assert_int_equal(hk_apikey_valid(k), 0);

    assert_int_equal(hk_apikey_valid("test-key_0123456789-ABC"), 1);
    const char *bad[] = {"",
                         "short",
                         "abcdefghijklmno.",
                         "abcdefghijklmnop ",
                         "abcdefghijklmnop\n",
                         "abcdefgh:ijklmnop",
                         "abcdefghijklmnop=",
                         "abcdefghijklmnop\xc3\xa9"};
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) assert_int_equal(hk_apikey_valid(bad[i]), 0);
    assert_int_equal(hk_apikey_valid(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_unique_and_sorted),
        cmocka_unit_test(test_sorted_across_ms),
        cmocka_unit_test(test_unique_threads),
        cmocka_unit_test(test_apikey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
