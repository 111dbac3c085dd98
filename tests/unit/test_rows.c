/*
 * test_rows.c: the store's rules as pure functions (src/store/rows.c), which both backends
 * follow: a webhook create's defaults, a patch's merge (the consecutiveFailures reset only when
 * the status is set to active, updated_at strictly growing), the per-organization limit, the
 * health counters and the 410 / HOOKD_DISABLE_AFTER decision, the growable output arrays across
 * their growth points, the touched-webhook list (sorted, unique, undone with its request), a
 * job from a delivery row sharing its event's envelope, and the fan-out cache's bounds (least
 * recently used organizations evicted past HK_ORGCACHE_MAX_ORGS or HK_ORGCACHE_MAX_WEBHOOKS,
 * never one used in the current group), over an organization table held in this file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/sign.h"
#include "store/backend.h"
#include "store/rows.h"

static void test_create_defaults(void **state)
{
    (void)state;
    hk_webhook_fields f = {0};
    f.name = "n";
    f.url = "https://example.com/h";
    f.secret = "s";
    hk_wh_row r;
    hk_wh_row_create(&f, &r);
    assert_int_equal(r.status, HK_WH_ACTIVE);
    assert_int_equal(r.rate_limit_enabled, 1);
    assert_int_equal(r.max_per_minute, 60);
    assert_int_equal(r.max_retries, 6);
    assert_null(r.user_id);
    assert_null(r.custom_headers);
    assert_null(r.filtering_options);
    assert_string_equal(r.schemes, "standard,reloop");
    f.has = HK_WF_STATUS | HK_WF_MAX_RETRIES | HK_WF_SCHEMES | HK_WF_USER;
    f.status = HK_WH_PAUSED;
    f.max_retries = 0;
    f.schemes = HK_SIG_SHA256;
    f.user_id = "u1";
    hk_wh_row_create(&f, &r);
    assert_int_equal(r.status, HK_WH_PAUSED);
    assert_int_equal(r.max_retries, 0);
    assert_string_equal(r.schemes, "sha256");
    assert_string_equal(r.user_id, "u1");
}

static void test_patch_merge(void **state)
{
    (void)state;
    hk_webhook w = {0};
    w.name = "old";
    w.url = "https://a/";
    w.secret = "s1";
    w.status = HK_WH_FAILED;
    w.consecutive_failures = 7;
    w.max_retries = 3;
    w.max_per_minute = 10;
    w.rate_limit_enabled = 1;
    w.schemes = HK_SIG_STANDARD;
    w.updated_at = 5000;
    hk_webhook_fields f = {0};
    f.has = HK_WF_NAME;
    f.name = "new";
    hk_wh_row r;
    hk_wh_row_patch(&w, &f, 9000, &r);
    assert_string_equal(r.name, "new");
    assert_string_equal(r.url, "https://a/");
    assert_int_equal(r.status, HK_WH_FAILED);
    assert_int_equal(r.consecutive_failures, 7); /* status not given: the streak stays */
    assert_int_equal(r.max_retries, 3);
    assert_string_equal(r.schemes, "standard");
    assert_int_equal(r.updated_at, 9000);
    /* a clock behind the row: updated_at still grows */
    hk_wh_row_patch(&w, &f, 4000, &r);
    assert_int_equal(r.updated_at, 5001);
    /* set active: the streak resets */
    f.has = HK_WF_STATUS;
    f.status = HK_WH_ACTIVE;
    hk_wh_row_patch(&w, &f, 9000, &r);
    assert_int_equal(r.status, HK_WH_ACTIVE);
    assert_int_equal(r.consecutive_failures, 0);
    /* set paused: it does not */
    f.status = HK_WH_PAUSED;
    hk_wh_row_patch(&w, &f, 9000, &r);
    assert_int_equal(r.consecutive_failures, 7);
    /* an explicit NULL clears headers and filter */
    w.custom_headers = "{\"a\":\"b\"}";
    f.has = HK_WF_HEADERS;
    f.custom_headers = NULL;
    hk_wh_row_patch(&w, &f, 9000, &r);
    assert_null(r.custom_headers);
}

static void test_limit(void **state)
{
    (void)state;
    hk_req req;
    memset(&req, 0, sizeof req);
    req.kind = HK_REQ_WEBHOOK_CREATE;
    req.u.wh_create.max_per_org = 0;
    assert_int_equal(hk_wh_limit_check(&req, 1000000), HK_OK);
    req.u.wh_create.max_per_org = 3;
    assert_int_equal(hk_wh_limit_check(&req, 2), HK_OK);
    assert_int_equal(hk_wh_limit_check(&req, 3), HK_ELIMIT);
    assert_non_null(strstr(req.err, "HOOKD_MAX_WEBHOOKS_PER_ORG (3)"));
}

static void test_health(void **state)
{
    (void)state;
    hk_health h = {0};
    hk_result ok = {.final = 1, .stored = 1}, bad = {.final = 1, .stored = 1},
              gone = {.final = 1, .stored = 1};
    ok.attempt_ok = 1;
    gone.gone = 1;
    hk_health_add(&h, &bad);
    hk_health_add(&h, &bad);
    hk_health_add(&h, &ok);
    hk_health_add(&h, &bad);
    /* counted only if final and stored by this request (a repeated result counts nothing) */
    hk_result notfinal = ok, repeated = ok;
    notfinal.final = 0;
    repeated.stored = 0;
    assert_int_equal(hk_health_add(&h, &notfinal), 0);
    assert_int_equal(hk_health_add(&h, &repeated), 0);
    repeated.attempt_ok = 0;
    repeated.gone = 1;
    assert_int_equal(hk_health_add(&h, &repeated), 0);
    assert_int_equal(h.ok, 1);
    assert_int_equal(h.fail, 3);
    assert_int_equal(h.streak, 1); /* failures since the last success */
    assert_int_equal(h.had_success, 1);
    assert_int_equal(h.gone, 0);
    /* disable_after: only an active webhook, only at the threshold, 0 = never */
    assert_int_equal(hk_health_decide(&h, HK_WH_ACTIVE, 4, 0, 5), -1);
    assert_int_equal(hk_health_decide(&h, HK_WH_ACTIVE, 5, 0, 5), HK_WH_FAILED);
    assert_int_equal(hk_health_decide(&h, HK_WH_PAUSED, 9, 0, 5), -1);
    assert_int_equal(hk_health_decide(&h, HK_WH_ACTIVE, 99, 0, 0), -1);
    assert_int_equal(hk_health_decide(&h, HK_WH_ACTIVE, 5, 1, 5), -1); /* deleted */
    /* 410: disabled from any status but disabled, before the streak rule */
    hk_health_add(&h, &gone);
    assert_int_equal(hk_health_decide(&h, HK_WH_ACTIVE, 99, 0, 5), HK_WH_DISABLED);
    assert_int_equal(hk_health_decide(&h, HK_WH_PAUSED, 0, 0, 0), HK_WH_DISABLED);
    assert_int_equal(hk_health_decide(&h, HK_WH_DISABLED, 0, 0, 0), -1);
    assert_int_equal(hk_health_decide(&h, -1, 0, 0, 0), -1);
}

static void test_out_arrays(void **state)
{
    (void)state;
    hk_release *r = NULL;
    int n = 0;
    char id[HK_ID_MAX];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "whde_%d", i);
        hk_out_release(&r, &n, id, i);
    }
    assert_int_equal(n, 300);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "whde_%d", i);
        assert_string_equal(r[i].id, id);
        assert_int_equal(r[i].next_retry_at, i);
    }
    free(r);
    /* webhooks: one copy per id */
    hk_webhook **ws = NULL;
    int nw = 0;
    hk_webhook w = {0};
    hk_map seen;
    hk_map_init(&seen);
    for (int i = 0; i < 40; i++) {
        snprintf(w.id, sizeof w.id, "wh_%d", i % 20);
        hk_out_webhook(&ws, &nw, &seen, &w);
    }
    assert_int_equal(nw, 20);
    for (int i = 0; i < nw; i++) assert_ptr_equal(hk_map_get(&seen, ws[i]->id), ws[i]);
    hk_map_free(&seen);
    for (int i = 0; i < nw; i++) hk_webhook_free(ws[i]);
    free(ws);
    /* jobs: a compacted array keeps growing correctly */
    hk_job **js = NULL;
    int nj = 0;
    for (int i = 0; i < 40; i++) hk_out_job(&js, &nj, hk_job_new());
    for (int i = 3; i < nj; i++) hk_job_free(js[i]);
    nj = 3;
    for (int i = 0; i < 100; i++) hk_out_job(&js, &nj, hk_job_new());
    assert_int_equal(nj, 103);
    for (int i = 0; i < nj; i++) hk_job_free(js[i]);
    free(js);
}

static void test_touched(void **state)
{
    (void)state;
    hk_conn b;
    memset(&b, 0, sizeof b);
    hk_conn_group_reset(&b);
    /* hk_ingest_event touches; here through a tiny fan-out-free path: mark/undo on the list */
    const char *ids[] = {"wh_c", "wh_a", "wh_c", "wh_b", "wh_a"};
    for (size_t i = 0; i < 5; i++) {
        if (b.ntouched == b.touched_cap) {
            b.touched_cap = b.touched_cap ? b.touched_cap * 2 : 4;
            b.touched = realloc(b.touched, HK_ID_MAX * (size_t)b.touched_cap);
        }
        hk_strlcpy(b.touched[b.ntouched++], ids[i], HK_ID_MAX);
        if (i == 2) hk_conn_mark(&b);
    }
    hk_conn_undo(&b); /* the last request's two go */
    assert_int_equal(b.ntouched, 3);
    assert_int_equal(hk_conn_touched_unique(&b), 2);
    assert_string_equal(b.touched[0], "wh_a");
    assert_string_equal(b.touched[1], "wh_c");
    hk_conn_free(&b);
}

static void test_job_from_row(void **state)
{
    (void)state;
    hk_bodies bodies;
    hk_bodies_init(&bodies);
    hk_job_row r = {0};
    r.id = "whde_1";
    r.webhook_id = "wh_1";
    r.event_id = "whev_1";
    r.status = "retrying";
    r.attempt_number = 2;
    r.max_attempts = 7;
    r.due = 123;
    r.created = 100;
    r.type = "user.created";
    r.payload = "{\"a\":1}";
    r.payload_len = strlen(r.payload);
    r.ev_created = 99;
    hk_job *a = hk_job_from_row(&r, &bodies);
    r.id = "whde_2";
    hk_job *b = hk_job_from_row(&r, &bodies);
    r.id = "whde_3";
    r.data = "{}";
    r.data_len = 2;
    hk_job *c = hk_job_from_row(&r, &bodies);
    assert_string_equal(a->id, "whde_1");
    assert_string_equal(a->webhook_id, "wh_1");
    assert_int_equal(a->status, HK_DL_RETRYING);
    assert_int_equal(a->attempt_number, 2);
    assert_int_equal(a->max_attempts, 7);
    assert_int_equal(a->due_ms, 123);
    assert_int_equal(a->created_ms, 100);
    assert_ptr_equal(a->body, b->body);     /* one envelope per event */
    assert_ptr_not_equal(a->body, c->body); /* own data (excludeFields): its own */
    assert_non_null(strstr((const char *)a->body->data, "\"a\":1"));
    assert_null(strstr((const char *)c->body->data, "\"a\":1"));
    /* many events: the cache's map survives its array growing */
    char eid[HK_ID_MAX];
    hk_job *js[200];
    r.data = NULL;
    for (int i = 0; i < 200; i++) {
        snprintf(eid, sizeof eid, "whev_x%d", i % 100);
        r.event_id = eid;
        js[i] = hk_job_from_row(&r, &bodies);
    }
    for (int i = 0; i < 100; i++) assert_ptr_equal(js[i]->body, js[i + 100]->body);
    assert_int_equal(bodies.n, 101);
    hk_bodies_free(&bodies);
    for (int i = 0; i < 200; i++) hk_job_free(js[i]);
    hk_job_free(a);
    hk_job_free(b);
    hk_job_free(c);
}

/* ---- the fan-out cache's bounds ------------------------------------------------------------ */

/* The organizations org_0 .. org_(NORG-1) of a fake store: each its version and its number of
 * webhooks; loads counts org_webhooks calls. */
#define NORG (HK_ORGCACHE_MAX_ORGS + 8)
static struct {
    int64_t version[NORG];
    int nwh[NORG];
    int loads[NORG];
} fake;

static int org_index(const char *org)
{
    return (int)strtol(org + 4, NULL, 10);
}

static int fake_org_version(void *conn, const char *org, int64_t *version)
{
    (void)conn;
    *version = fake.version[org_index(org)];
    return HK_OK;
}

static int fake_org_webhooks(void *conn, const char *org, hk_fanout_org *o)
{
    (void)conn;
    int i = org_index(org), n = fake.nwh[i];
    fake.loads[i]++;
    hk_webhook **whs = calloc((size_t)(n ? n : 1), sizeof *whs);
    for (int k = 0; k < n; k++) {
        whs[k] = calloc(1, sizeof(hk_webhook));
        snprintf(whs[k]->id, sizeof whs[k]->id, "wh_%d_%d", i, k);
    }
    return hk_fanout_take(o, whs, n, HK_OK);
}

/* Uses org i in a group of its own; returns its candidate count. */
static int use(hk_conn *b, const hk_store_ops *o, int i)
{
    char org[32];
    snprintf(org, sizeof org, "org_%d", i);
    hk_fanout_org *set = NULL;
    hk_conn_group_reset(b);
    assert_int_equal(hk_org_candidates(b, NULL, o, org, &set), HK_OK);
    assert_string_equal(set->org_id, org);
    return set->n;
}

static void test_candidates_cache_bounds(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof fake);
    hk_store_ops ops = {0};
    ops.org_version = fake_org_version;
    ops.org_webhooks = fake_org_webhooks;
    hk_conn b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < NORG; i++) fake.nwh[i] = 1;

    /* by organizations: the first MAX stay, the next one evicts the least recently used */
    for (int i = 0; i < HK_ORGCACHE_MAX_ORGS; i++) use(&b, &ops, i);
    assert_int_equal(b.norgs, HK_ORGCACHE_MAX_ORGS);
    use(&b, &ops, 0); /* org_0 is now the most recent: org_1 is the oldest */
    assert_int_equal(fake.loads[0], 1);
    use(&b, &ops, HK_ORGCACHE_MAX_ORGS);
    assert_int_equal(b.norgs, HK_ORGCACHE_MAX_ORGS);
    use(&b, &ops, 0);
    assert_int_equal(fake.loads[0], 1); /* kept */
    use(&b, &ops, 1);
    assert_int_equal(fake.loads[1], 2); /* evicted, loaded again (and org_2 went) */
    use(&b, &ops, 2);
    assert_int_equal(fake.loads[2], 2);
    /* a version that moved reloads */
    fake.version[0]++;
    use(&b, &ops, 0);
    assert_int_equal(fake.loads[0], 2);
    assert_int_equal(b.norgs, HK_ORGCACHE_MAX_ORGS);
    assert_int_equal(b.nwebhooks, HK_ORGCACHE_MAX_ORGS);

    /* by webhooks: three organizations of 20,000 go past 50,000; the oldest goes */
    hk_conn_orgs_reset(&b);
    memset(fake.loads, 0, sizeof fake.loads);
    for (int i = 0; i < 3; i++) fake.nwh[i] = 20000;
    assert_int_equal(use(&b, &ops, 0), 20000);
    use(&b, &ops, 1);
    assert_int_equal(b.nwebhooks, 40000);
    use(&b, &ops, 2);
    assert_int_equal(b.norgs, 2);
    assert_int_equal(b.nwebhooks, 40000);
    use(&b, &ops, 1);
    assert_int_equal(fake.loads[1], 1);
    use(&b, &ops, 0);
    assert_int_equal(fake.loads[0], 2);

    /* never one used in the current group: two in one group stay together, over the bound,
     * until the group ends */
    hk_conn_orgs_reset(&b);
    fake.nwh[3] = 60000;
    hk_conn_group_reset(&b);
    hk_fanout_org *x = NULL, *y = NULL;
    assert_int_equal(hk_org_candidates(&b, NULL, &ops, "org_0", &x), HK_OK);
    assert_int_equal(hk_org_candidates(&b, NULL, &ops, "org_3", &y), HK_OK);
    assert_int_equal(b.norgs, 2); /* org_0 is in use: kept, and x still points at it */
    assert_string_equal(x->org_id, "org_0");
    assert_int_equal(x->n, 20000);
    use(&b, &ops, 4); /* next group: org_0 then org_3 go, the bound is met again */
    assert_int_equal(b.norgs, 1);
    assert_int_equal(b.nwebhooks, 1);
    hk_conn_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_defaults), cmocka_unit_test(test_patch_merge),
        cmocka_unit_test(test_limit),           cmocka_unit_test(test_health),
        cmocka_unit_test(test_out_arrays),      cmocka_unit_test(test_touched),
        cmocka_unit_test(test_job_from_row),    cmocka_unit_test(test_candidates_cache_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
