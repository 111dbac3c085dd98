/*
 * test_store_conformance.c: the backend conformance suite. Every request kind of store.h is
 * run through the public interface only (hk_store_open with an event_base, hk_store_submit,
 * the loop until `done`), and the same table of tests runs once per backend: SQLite (a fresh
 * temp file per test) and PostgreSQL (a fresh database per test on the server named by
 * HOOKD_TEST_PG_URL, created and dropped with libpq). What one backend does, the other must do
 * too: group commit, idempotency, fan-out, lease budgets, claims, parking, leases and
 * hand-back, results and the webhook's counters, heartbeats, replays.
 *
 * Without HOOKD_TEST_PG_URL the PostgreSQL group is skipped with a message, unless
 * HOOKD_REQUIRE_PG=1 (scripts/test.sh sets it, through tests/lib/with_pg.py): then its
 * absence fails the run, so CI cannot skip it silently.
 *
 * The tests never look inside a backend: leases, for one, show only through what a claim
 * returns. A difference found and not fixed yet would be marked KNOWN DIFFERENCE in the test
 * that shows it: on the backend concerned the test prints what differs and skips (visibly in
 * the cmocka summary), unless HOOKD_CONFORMANCE_STRICT=1 makes it fail. None is open today (the
 * last three, fixed: test_json_as_written on PostgreSQL, test_results_repeated on both).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "core/time.h"
#include "store/rollup.h"
#include "store/store.h"

/* ---- fixture: one fresh store per test ------------------------------------------------------ */

enum { BE_SQLITE = 0, BE_PG = 1 };

static int g_backend;          /* the group being run */
static const char *g_pg_admin; /* HOOKD_TEST_PG_URL */
static int g_seq;

typedef struct node {
    hk_config cfg;
    hk_store *st;
} node;

typedef struct fx {
    struct event_base *base;
    char dir[256]; /* SQLite: temp dir holding the database */
    char db[300];  /* SQLite: file; PostgreSQL: database name */
    char url[600]; /* PostgreSQL: URL of the test database */
    node a, b;     /* b: a second node (second handle), opened by tests that want one */
} fx;

static fx *F;                 /* the current test's fixture */
static const char *g_enc_key; /* WEBHOOK_ENCRYPTION_KEY of the next node_open, or NULL */

/* Runs one SQL statement on the admin database; fails the test on error. */
static void pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(g_pg_admin);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot reach %s: %s", g_pg_admin, PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* Opens a store for node_id on the fixture's database into n: asynchronous on the fixture's
 * loop, or synchronous (hk_store_exec) with sync. */
static void node_open_mode(node *n, const char *node_id, int sync)
{
    char a1[700], a2[700], a3[200];
    if (g_backend == BE_PG) {
        snprintf(a1, sizeof a1, "--pg-url=%s", F->url);
        snprintf(a2, sizeof a2, "--db=%s/unused.db", F->dir);
    } else {
        snprintf(a1, sizeof a1, "--pg-url=");
        snprintf(a2, sizeof a2, "--db=%s", F->db);
    }
    snprintf(a3, sizeof a3, "--node-id=%s", node_id);
    char a4[200];
    snprintf(a4, sizeof a4, "--webhook-encryption-key=%s", g_enc_key ? g_enc_key : "");
    char *argv[] = {"test", a1, a2, a3, a4, "--lease-ms=30000", NULL};
    int rest[8], nrest = 0, help = 0;
    char err[512];
    int rc = hk_config_load(&n->cfg, 6, argv, "/nonexistent/hookd-test.env", rest, &nrest, &help,
                            err, sizeof err);
    if (rc) fail_msg("config: %s", err);
    rc = hk_store_open(&n->st, sync ? NULL : F->base, &n->cfg, err, sizeof err);
    if (rc) fail_msg("hk_store_open (%s): %s", g_backend == BE_PG ? "pg" : "sqlite", err);
    assert_string_equal(hk_store_backend_name(n->st), g_backend == BE_PG ? "postgres" : "sqlite");
}

static void node_open(node *n, const char *node_id)
{
    node_open_mode(n, node_id, 0);
}

static void node_close(node *n)
{
    if (!n->st) return;
    hk_store_close(n->st);
    n->st = NULL;
    hk_config_free(&n->cfg);
}

static int setup(void **state)
{
    (void)state;
    F = calloc(1, sizeof *F);
    F->base = event_base_new();
    snprintf(F->dir, sizeof F->dir, "/tmp/hookd-conform-XXXXXX");
    if (!mkdtemp(F->dir)) return -1;
    g_seq++;
    if (g_backend == BE_PG) {
        snprintf(F->db, sizeof F->db, "hkconf_%d_%d", (int)getpid(), g_seq);
        char sql[400];
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", F->db);
        pg_admin(sql);
        /* the admin URL with its database replaced: scheme://authority/<db>[?params] */
        const char *p = strstr(g_pg_admin, "://");
        const char *slash = p ? strchr(p + 3, '/') : NULL;
        const char *q = strchr(g_pg_admin, '?');
        size_t head = slash ? (size_t)(slash - g_pg_admin) : strlen(g_pg_admin);
        if (q && (!slash || q < slash)) head = (size_t)(q - g_pg_admin);
        snprintf(F->url, sizeof F->url, "%.*s/%s%s", (int)head, g_pg_admin, F->db, q ? q : "");
    } else {
        snprintf(F->db, sizeof F->db, "%s/hookd.db", F->dir);
    }
    node_open(&F->a, "node-a");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    node_close(&F->b);
    node_close(&F->a);
    event_base_free(F->base);
    if (g_backend == BE_PG) {
        char sql[400];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", F->db);
        pg_admin(sql);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F->dir);
    if (system(cmd) != 0) return -1;
    free(F);
    F = NULL;
    return 0;
}

/* ---- running requests ----------------------------------------------------------------------- */

static void on_done(hk_req *r)
{
    (*(int *)r->udata)++;
}

/* Submits reqs[0..n) to st together, then runs the loop until all are done. */
static void submit_all(hk_store *st, hk_req **reqs, int n)
{
    int done = 0;
    for (int i = 0; i < n; i++) {
        reqs[i]->done = on_done;
        reqs[i]->udata = &done;
        hk_store_submit(st, reqs[i]);
    }
    while (done < n) event_base_loop(F->base, EVLOOP_ONCE);
}

/* Runs one request on node a (or st); returns its rc. */
static int run_on(hk_store *st, hk_req *r)
{
    submit_all(st, &r, 1);
    return r->rc;
}

static int run(hk_req *r)
{
    if (!r->node_id) r->node_id = "node-a";
    return run_on(F->a.st, r);
}

#define ORG_A "org_a"
#define ORG_B "org_b"

/* Creates a webhook of org subscribed to the comma-less list evs[0..nev). */
static void mk_webhook(const char *org, const char *const *evs, int nev, int status,
                       char id[HK_ID_MAX])
{
    hk_webhook_fields f = {0};
    f.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS | HK_WF_MAX_RETRIES | HK_WF_STATUS;
    f.name = "hook";
    f.url = "http://127.0.0.1:9/hook";
    f.secret = "whsec_test";
    f.events = evs;
    f.nevents = nev;
    f.max_retries = 2;
    f.status = status;
    hk_req r = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = org};
    r.u.wh_create.f = &f;
    if (run(&r)) fail_msg("webhook create: %d %s", r.rc, r.err);
    hk_strlcpy(id, r.u.wh_create.out->id, HK_ID_MAX);
    hk_req_clear(&r);
}

static const char *const EV_ORDER[] = {"order.created"};

/* A webhook of org on order.created with a matchConditions filter that "{}" does not meet:
 * it gets no delivery, but its filter makes the fan-out parse each event's data. */
static void mk_filtered_webhook(const char *org)
{
    hk_webhook_fields f = {.has =
                               HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS | HK_WF_FILTER,
                           .name = "filtered",
                           .url = "http://127.0.0.1:9/",
                           .secret = "s",
                           .events = EV_ORDER,
                           .nevents = 1,
                           .filtering_options = "{\"matchConditions\":{\"k\":\"v\"}}"};
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = org};
    c.u.wh_create.f = &f;
    if (run(&c)) fail_msg("webhook create: %d %s", c.rc, c.err);
    hk_req_clear(&c);
}

/* One-event ingest into org; budget = lease budget for node-a. Caller clears *r. */
static int ingest(hk_req *r, hk_ingest_item *it, const char *org, const char *type,
                  const char *data, const char *idem, int budget, int64_t now)
{
    memset(r, 0, sizeof *r);
    memset(it, 0, sizeof *it);
    it->type = type;
    it->data = data;
    it->data_len = strlen(data);
    it->idem_key = idem;
    it->source = "api";
    r->kind = HK_REQ_INGEST;
    r->org_id = org;
    r->node_id = "node-a";
    r->now = now;
    r->u.ingest.items = it;
    r->u.ingest.n = 1;
    r->u.ingest.lease_budget = budget;
    return run(r);
}

/* Ingests one event with no lease and returns its first delivery's id in did (if any). */
static void ingest_simple(const char *org, int64_t now, char did[HK_ID_MAX], char eid[HK_ID_MAX])
{
    hk_req r;
    hk_ingest_item it;
    if (ingest(&r, &it, org, "order.created", "{\"n\":1}", NULL, 0, now))
        fail_msg("ingest: %s", r.err);
    if (eid) hk_strlcpy(eid, it.id, HK_ID_MAX);
    if (did) {
        did[0] = '\0';
        if (r.u.ingest.nqueued > 0) hk_strlcpy(did, r.u.ingest.queued[0].id, HK_ID_MAX);
    }
    hk_req_clear(&r);
}

static void get_delivery(const char *org, const char *id, hk_req *r)
{
    memset(r, 0, sizeof *r);
    r->kind = HK_REQ_DELIVERY_GET;
    r->org_id = org;
    r->u.dl_get.id = id;
    if (run(r)) fail_msg("delivery get %s: %d", id, r->rc);
}

static hk_webhook *get_webhook(const char *org, const char *id)
{
    hk_req r = {.kind = HK_REQ_WEBHOOK_GET, .org_id = org};
    r.u.wh_get.id = id;
    if (run(&r)) fail_msg("webhook get %s: %d", id, r.rc);
    hk_webhook *w = r.u.wh_get.out;
    r.u.wh_get.out = NULL;
    return w;
}

/* CLAIM for node at now with horizon and limit: returns njobs; the request stays for
 * inspection (caller clears). */
static int claim(hk_req *r, const char *node_id, int64_t now, int64_t horizon, int limit)
{
    memset(r, 0, sizeof *r);
    r->kind = HK_REQ_CLAIM;
    r->node_id = node_id;
    r->now = now;
    r->u.claim.horizon = horizon;
    r->u.claim.limit = limit;
    if (run(r)) fail_msg("claim: %d %s", r->rc, r->err);
    return r->u.claim.njobs;
}

static int claim_count(const char *node_id, int64_t now)
{
    hk_req r;
    int n = claim(&r, node_id, now, 0, 100);
    hk_req_clear(&r);
    return n;
}

/* Patches the status of webhook id; returns the unparked count. */
static int set_status(const char *org, const char *id, int status)
{
    hk_webhook_fields f = {.has = HK_WF_STATUS, .status = status};
    hk_req r = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = org};
    r.u.wh_patch.id = id;
    r.u.wh_patch.f = &f;
    if (run(&r)) fail_msg("patch: %d %s", r.rc, r.err);
    assert_int_equal(r.u.wh_patch.out->status, status);
    int n = r.u.wh_patch.unparked;
    hk_req_clear(&r);
    return n;
}

static int result_fifo; /* hk_result.fifo of the next result() calls */

/* Records one finished attempt of delivery did (webhook wid). */
static int result(const char *wid, const char *did, int attempt, int status, int ok, int final,
                  int gone, int64_t next_retry, int keep, int disable_after, int64_t now,
                  hk_req *out)
{
    hk_result *res = calloc(1, sizeof *res);
    hk_strlcpy(res->delivery_id, did, HK_ID_MAX);
    hk_strlcpy(res->webhook_id, wid, HK_ID_MAX);
    hk_id_new("what", res->attempt_id);
    res->attempt_number = attempt;
    res->status = status;
    res->attempt_ok = ok;
    res->final = final;
    res->gone = gone;
    res->response_status = ok ? 200 : gone ? 410 : 500;
    res->response_body = ok ? "fine" : "broken";
    res->response_headers = "{\"content-type\":\"text/plain\"}";
    res->request_headers = "{\"X-Delivery-Id\":\"x\"}";
    res->request_url = "http://127.0.0.1:9/hook";
    res->error_message = ok ? NULL : "HTTP error";
    res->duration_ms = 12;
    res->started_at = now - 12;
    res->finished_at = now;
    res->next_retry_at = next_retry;
    res->keep_lease = keep;
    res->fifo = result_fifo;
    hk_req r = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
    r.u.results.items = res;
    r.u.results.n = 1;
    r.u.results.disable_after = disable_after;
    int rc = run(&r);
    if (out)
        *out = r;
    else
        hk_req_clear(&r);
    free(res);
    return rc;
}

/* ---- store size (hookd_store_rows, hookd_store_bytes) ---------------------------------------- */

static void test_store_stats(void **state)
{
    (void)state;
    const char *all[] = {"*"};
    char w[HK_ID_MAX], did[HK_ID_MAX], eid[HK_ID_MAX];
    mk_webhook(ORG_A, all, 1, HK_WH_ACTIVE, w);
    int64_t now = hk_now_ms();
    for (int i = 0; i < 3; i++) ingest_simple(ORG_A, now, did, eid);
    hk_req r = {.kind = HK_REQ_STORE_STATS};
    r.u.stats.want_rows = 1;
    assert_int_equal(run(&r), 0);
    assert_true(r.u.stats.bytes > 0);
    if (g_backend == BE_PG) {
        /* estimates from the cumulative statistics: they trail commits, never negative */
        for (int i = 0; i < HK_TBL_MAX; i++) assert_true(r.u.stats.rows[i] >= 0);
    } else {
        assert_int_equal(r.u.stats.rows[HK_TBL_EVENT], 3);
        assert_int_equal(r.u.stats.rows[HK_TBL_DELIVERY], 3);
        assert_int_equal(r.u.stats.rows[HK_TBL_ATTEMPT], 0);
        assert_int_equal(r.u.stats.rows[HK_TBL_WEBHOOK], 1);
    }
    /* without want_rows the rows are left as the caller had them */
    hk_req b = {.kind = HK_REQ_STORE_STATS};
    b.u.stats.rows[HK_TBL_EVENT] = -7;
    assert_int_equal(run(&b), 0);
    assert_int_equal(b.u.stats.rows[HK_TBL_EVENT], -7);
    assert_true(b.u.stats.bytes > 0);
    hk_req_clear(&r);
    hk_req_clear(&b);
}

/* ---- API keys -------------------------------------------------------------------------------- */

static void test_ping(void **state)
{
    (void)state;
    hk_req r = {.kind = HK_REQ_PING};
    assert_int_equal(run(&r), 0);
    assert_int_equal(hk_store_healthy(F->a.st), 1);
}

static void test_apikeys(void **state)
{
    (void)state;
    hk_req c = {.kind = HK_REQ_APIKEY_CREATE, .org_id = ORG_A};
    c.u.key_create.name = "first";
    c.u.key_create.key_hash = "aaaa";
    c.u.key_create.prefix = "hk_aa";
    assert_int_equal(run(&c), 0);
    assert_string_equal(c.u.key_create.out.org_id, ORG_A);
    assert_string_equal(c.u.key_create.out.name, "first");
    assert_string_equal(c.u.key_create.out.prefix, "hk_aa");
    char key1[HK_ID_MAX];
    hk_strlcpy(key1, c.u.key_create.out.id, sizeof key1);
    hk_req_clear(&c);

    /* ENSURE of a known hash: no new key, the existing one */
    hk_req e = {.kind = HK_REQ_APIKEY_ENSURE, .org_id = ORG_A};
    e.u.key_create.name = "again";
    e.u.key_create.key_hash = "aaaa";
    e.u.key_create.prefix = "hk_aa";
    assert_int_equal(run(&e), 0);
    assert_int_equal(e.u.key_create.created, 0);
    assert_string_equal(e.u.key_create.out.id, key1);
    hk_req_clear(&e);
    /* ENSURE of a new hash creates it */
    hk_req e2 = {.kind = HK_REQ_APIKEY_ENSURE, .org_id = ORG_B};
    e2.u.key_create.name = "boot";
    e2.u.key_create.key_hash = "bbbb";
    e2.u.key_create.prefix = "hk_bb";
    assert_int_equal(run(&e2), 0);
    assert_int_equal(e2.u.key_create.created, 1);
    assert_string_equal(e2.u.key_create.out.org_id, ORG_B);
    char key2[HK_ID_MAX];
    hk_strlcpy(key2, e2.u.key_create.out.id, sizeof key2);
    hk_req_clear(&e2);

    hk_req cnt = {.kind = HK_REQ_APIKEY_COUNT};
    assert_int_equal(run(&cnt), 0);
    assert_int_equal(cnt.u.key_count.count, 2);

    hk_req l = {.kind = HK_REQ_APIKEY_LIST};
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.key_list.n, 2); /* all organizations */
    int seen = 0;
    for (int i = 0; i < l.u.key_list.n; i++) {
        if (strcmp(l.u.key_list.items[i].id, key1) == 0) {
            assert_string_equal(l.u.key_list.items[i].org_id, ORG_A);
            assert_int_equal(l.u.key_list.items[i].revoked_at, 0);
            seen |= 1;
        }
        if (strcmp(l.u.key_list.items[i].id, key2) == 0) seen |= 2;
    }
    assert_int_equal(seen, 3);
    hk_req_clear(&l);

    hk_req lk = {.kind = HK_REQ_APIKEY_LOOKUP};
    lk.u.key_lookup.key_hash = "aaaa";
    assert_int_equal(run(&lk), 0);
    assert_int_equal(lk.u.key_lookup.found, 1);
    assert_string_equal(lk.u.key_lookup.org, ORG_A);
    assert_string_equal(lk.u.key_lookup.key_id, key1);
    hk_req lk0 = {.kind = HK_REQ_APIKEY_LOOKUP};
    lk0.u.key_lookup.key_hash = "nope";
    assert_int_equal(run(&lk0), 0);
    assert_int_equal(lk0.u.key_lookup.found, 0);

    hk_req rv = {.kind = HK_REQ_APIKEY_REVOKE};
    rv.u.key_revoke.id = key1;
    assert_int_equal(run(&rv), 0);
    hk_req rv2 = {.kind = HK_REQ_APIKEY_REVOKE};
    rv2.u.key_revoke.id = key1; /* already revoked */
    assert_int_equal(run(&rv2), HK_ENOTFOUND);
    hk_req rv3 = {.kind = HK_REQ_APIKEY_REVOKE};
    rv3.u.key_revoke.id = "key_unknown";
    assert_int_equal(run(&rv3), HK_ENOTFOUND);

    hk_req lk2 = {.kind = HK_REQ_APIKEY_LOOKUP};
    lk2.u.key_lookup.key_hash = "aaaa";
    assert_int_equal(run(&lk2), 0);
    assert_int_equal(lk2.u.key_lookup.found, 0); /* revoked keys do not authenticate */

    hk_req l2 = {.kind = HK_REQ_APIKEY_LIST};
    assert_int_equal(run(&l2), 0);
    for (int i = 0; i < l2.u.key_list.n; i++)
        if (strcmp(l2.u.key_list.items[i].id, key1) == 0)
            assert_true(l2.u.key_list.items[i].revoked_at > 0);
    hk_req_clear(&l2);
}

/* ---- webhooks -------------------------------------------------------------------------------- */

static void test_webhook_crud(void **state)
{
    (void)state;
    const char *evs[] = {"order.created", "user.*"};
    hk_webhook_fields f = {0};
    f.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS | HK_WF_HEADERS |
            HK_WF_RATE_ENABLED | HK_WF_RATE_MAX | HK_WF_MAX_RETRIES | HK_WF_FILTER | HK_WF_USER;
    f.name = "crud";
    f.url = "http://127.0.0.1:9/crud";
    f.secret = "whsec_crud";
    f.events = evs;
    f.nevents = 2;
    f.custom_headers = "{\"X-Token\":\"t\"}";
    f.rate_limit_enabled = 0;
    f.max_per_minute = 30;
    f.max_retries = 4;
    f.filtering_options = "{\"excludeFields\":[\"secret\"]}";
    f.user_id = "user_1";
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A, .now = hk_now_ms()};
    c.u.wh_create.f = &f;
    assert_int_equal(run(&c), 0);
    hk_webhook *w = c.u.wh_create.out;
    char id[HK_ID_MAX];
    hk_strlcpy(id, w->id, sizeof id);
    assert_string_equal(w->name, "crud");
    assert_string_equal(w->url, "http://127.0.0.1:9/crud");
    assert_string_equal(w->secret, "whsec_crud");
    assert_string_equal(w->org_id, ORG_A);
    assert_string_equal(w->user_id, "user_1");
    assert_int_equal(w->status, HK_WH_ACTIVE);
    assert_non_null(strstr(w->custom_headers, "X-Token")); /* as written: test_json_as_written */
    assert_int_equal(w->rate_limit_enabled, 0);
    assert_int_equal(w->max_per_minute, 30);
    assert_int_equal(w->max_retries, 4);
    assert_non_null(strstr(w->filtering_options, "excludeFields"));
    assert_int_equal(w->nevents, 2);
    assert_string_equal(w->events[0], "order.created");
    assert_string_equal(w->events[1], "user.*");
    assert_int_equal(w->success_count + w->failure_count + w->consecutive_failures, 0);
    assert_true(w->created_at > 0);
    hk_req_clear(&c);

    /* defaults */
    char id2[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_PAUSED, id2);
    hk_webhook *w2 = get_webhook(ORG_A, id2);
    assert_int_equal(w2->status, HK_WH_PAUSED);
    assert_int_equal(w2->rate_limit_enabled, 1);
    assert_int_equal(w2->max_per_minute, 60);
    assert_null(w2->custom_headers);
    assert_null(w2->filtering_options);
    hk_webhook_free(w2);

    /* another organization sees nothing */
    hk_req g = {.kind = HK_REQ_WEBHOOK_GET, .org_id = ORG_B};
    g.u.wh_get.id = id;
    assert_int_equal(run(&g), HK_ENOTFOUND);

    /* list, status filter, paging */
    char id3[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, id3);
    char idb[HK_ID_MAX];
    mk_webhook(ORG_B, EV_ORDER, 1, HK_WH_ACTIVE, idb);
    hk_req l = {.kind = HK_REQ_WEBHOOK_LIST, .org_id = ORG_A};
    l.u.wh_list.status = -1;
    l.u.wh_list.page = 1;
    l.u.wh_list.limit = 2;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.wh_list.total, 3);
    assert_int_equal(l.u.wh_list.n, 2);
    hk_req_clear(&l);
    l.u.wh_list.page = 2;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.wh_list.n, 1);
    hk_req_clear(&l);
    l.u.wh_list.page = 1;
    l.u.wh_list.limit = 10;
    l.u.wh_list.status = HK_WH_PAUSED;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.wh_list.total, 1);
    assert_int_equal(l.u.wh_list.n, 1);
    assert_string_equal(l.u.wh_list.items[0]->id, id2);
    hk_req_clear(&l);

    /* patch: fields and subscriptions */
    const char *evs2[] = {"invoice.paid"};
    hk_webhook_fields pf = {.has = HK_WF_NAME | HK_WF_EVENTS | HK_WF_HEADERS,
                            .name = "renamed",
                            .events = evs2,
                            .nevents = 1,
                            .custom_headers = NULL};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    p.u.wh_patch.id = id;
    p.u.wh_patch.f = &pf;
    assert_int_equal(run(&p), 0);
    assert_string_equal(p.u.wh_patch.out->name, "renamed");
    assert_string_equal(p.u.wh_patch.out->url, "http://127.0.0.1:9/crud"); /* untouched */
    assert_int_equal(p.u.wh_patch.out->max_retries, 4);
    assert_null(p.u.wh_patch.out->custom_headers);
    assert_int_equal(p.u.wh_patch.out->nevents, 1);
    assert_string_equal(p.u.wh_patch.out->events[0], "invoice.paid");
    hk_req_clear(&p);
    hk_req p2 = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_B};
    p2.u.wh_patch.id = id;
    p2.u.wh_patch.f = &pf;
    assert_int_equal(run(&p2), HK_ENOTFOUND);

    /* load: by ids, any organization, unknown ids left out */
    const char *ids[] = {id, "wh_unknown", idb};
    hk_req ld = {.kind = HK_REQ_WEBHOOK_LOAD};
    ld.u.wh_load.ids = ids;
    ld.u.wh_load.nids = 3;
    assert_int_equal(run(&ld), 0);
    assert_int_equal(ld.u.wh_load.n, 2);
    int seen = 0;
    for (int i = 0; i < ld.u.wh_load.n; i++) {
        if (strcmp(ld.u.wh_load.items[i]->id, id) == 0) {
            assert_string_equal(ld.u.wh_load.items[i]->secret, "whsec_crud");
            seen |= 1;
        }
        if (strcmp(ld.u.wh_load.items[i]->id, idb) == 0) seen |= 2;
    }
    assert_int_equal(seen, 3);
    hk_req_clear(&ld);

    /* delete: gone from get and list; twice is not found */
    hk_req d = {.kind = HK_REQ_WEBHOOK_DELETE, .org_id = ORG_A};
    d.u.wh_delete.id = id;
    assert_int_equal(run(&d), 0);
    hk_req d2 = {.kind = HK_REQ_WEBHOOK_DELETE, .org_id = ORG_A};
    d2.u.wh_delete.id = id;
    assert_int_equal(run(&d2), HK_ENOTFOUND);
    hk_req db = {.kind = HK_REQ_WEBHOOK_DELETE, .org_id = ORG_B};
    db.u.wh_delete.id = id3; /* another organization's */
    assert_int_equal(run(&db), HK_ENOTFOUND);
    hk_req g2 = {.kind = HK_REQ_WEBHOOK_GET, .org_id = ORG_A};
    g2.u.wh_get.id = id;
    assert_int_equal(run(&g2), HK_ENOTFOUND);
    hk_req l3 = {.kind = HK_REQ_WEBHOOK_LIST, .org_id = ORG_A};
    l3.u.wh_list.status = -1;
    l3.u.wh_list.page = 1;
    l3.u.wh_list.limit = 10;
    assert_int_equal(run(&l3), 0);
    assert_int_equal(l3.u.wh_list.total, 2);
    hk_req_clear(&l3);
}

static void test_webhook_limit(void **state)
{
    (void)state;
    hk_webhook_fields f = {.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS,
                           .name = "n",
                           .url = "http://127.0.0.1:9/",
                           .secret = "s",
                           .events = EV_ORDER,
                           .nevents = 1};
    for (int i = 0; i < 3; i++) {
        hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A};
        c.u.wh_create.f = &f;
        c.u.wh_create.max_per_org = 2;
        int rc = run(&c);
        if (i < 2) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, HK_ELIMIT);
            assert_true(c.err[0] != '\0');
            assert_null(c.u.wh_create.out);
        }
        hk_req_clear(&c);
    }
    /* the cap is per organization */
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_B};
    c.u.wh_create.f = &f;
    c.u.wh_create.max_per_org = 2;
    assert_int_equal(run(&c), 0);
    hk_req_clear(&c);
}

/* consecutiveFailures is reset when the status is set to active, and only then. */
static void test_webhook_status_resets_failures(void **state)
{
    (void)state;
    char wid[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, wid);
    int64_t now = hk_now_ms();
    for (int i = 0; i < 2; i++) {
        char did[HK_ID_MAX];
        ingest_simple(ORG_A, now, did, NULL);
        assert_int_equal(result(wid, did, 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 0, now, NULL), 0);
    }
    hk_webhook *w = get_webhook(ORG_A, wid);
    assert_int_equal(w->consecutive_failures, 2);
    assert_int_equal(w->failure_count, 2);
    hk_webhook_free(w);
    set_status(ORG_A, wid, HK_WH_PAUSED);
    w = get_webhook(ORG_A, wid);
    assert_int_equal(w->consecutive_failures, 2);
    hk_webhook_free(w);
    set_status(ORG_A, wid, HK_WH_ACTIVE);
    w = get_webhook(ORG_A, wid);
    assert_int_equal(w->consecutive_failures, 0);
    assert_int_equal(w->failure_count, 2); /* totals stay */
    hk_webhook_free(w);
}

/* Rows of a webhook that is not active are parked (no due time) and come back when it is. */
static void test_park_unpark(void **state)
{
    (void)state;
    char wid[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_PAUSED, wid);
    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 10, now), 0);
    assert_int_equal(it.ndeliveries, 1); /* created, but neither leased nor queued */
    assert_int_equal(r.u.ingest.njobs, 0);
    assert_int_equal(r.u.ingest.nqueued, 0);
    hk_req_clear(&r);
    hk_req ev = {.kind = HK_REQ_EVENT_GET, .org_id = ORG_A};
    ev.u.ev_get.id = it.id;
    assert_int_equal(run(&ev), 0);
    assert_int_equal(ev.u.ev_get.out.ndeliveries, 1);
    char did[HK_ID_MAX];
    hk_strlcpy(did, ev.u.ev_get.out.deliveries[0].id, sizeof did);
    hk_req_clear(&ev);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_PENDING);
    assert_int_equal(g.u.dl_get.out.next_retry_at, 0);
    hk_req_clear(&g);
    assert_int_equal(claim_count("node-a", now + 60000), 0);

    /* active again: unparked, due at the patch time, claimable */
    assert_int_equal(set_status(ORG_A, wid, HK_WH_ACTIVE), 1);
    get_delivery(ORG_A, did, &g);
    assert_true(g.u.dl_get.out.next_retry_at > 0);
    hk_req_clear(&g);
    assert_int_equal(set_status(ORG_A, wid, HK_WH_ACTIVE), 0); /* no change, nothing unparked */

    /* paused while rows wait unleased: they are parked at once */
    ingest_simple(ORG_A, now, NULL, NULL);
    set_status(ORG_A, wid, HK_WH_PAUSED);
    assert_int_equal(claim_count("node-a", now + 60000), 0);
    assert_int_equal(set_status(ORG_A, wid, HK_WH_ACTIVE), 2);
    assert_int_equal(claim_count("node-a", hk_now_ms() + 1000), 2);
}

/* Deleting a webhook ends its open deliveries failed; finished ones stay as they are. */
static void test_webhook_delete_fails_pending(void **state)
{
    (void)state;
    char wid[HK_ID_MAX], other[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, wid);
    int64_t now = hk_now_ms();
    char d1[HK_ID_MAX], d2[HK_ID_MAX], d3[HK_ID_MAX];
    ingest_simple(ORG_A, now, d1, NULL);
    ingest_simple(ORG_A, now, d2, NULL);
    ingest_simple(ORG_A, now, d3, NULL);
    assert_int_equal(result(wid, d3, 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now, NULL), 0);
    hk_req lease;
    claim(&lease, "node-a", now, 0, 1); /* one of the open ones is leased */
    hk_req_clear(&lease);
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, other);

    hk_req d = {.kind = HK_REQ_WEBHOOK_DELETE, .org_id = ORG_A, .now = now + 5};
    d.u.wh_delete.id = wid;
    assert_int_equal(run(&d), 0);
    assert_int_equal(d.u.wh_delete.failed, 2);
    const char *open_ids[] = {d1, d2};
    for (int i = 0; i < 2; i++) {
        hk_req g = {.kind = HK_REQ_DELIVERY_GET, .org_id = ORG_A};
        g.u.dl_get.id = open_ids[i];
        assert_int_equal(run(&g), 0); /* a deleted webhook's deliveries stay readable */
        assert_int_equal(g.u.dl_get.out.status, HK_DL_FAILED);
        assert_int_equal(g.u.dl_get.out.next_retry_at, 0);
        assert_int_equal(g.u.dl_get.out.completed_at, now + 5);
        assert_non_null(g.u.dl_get.out.error_message);
        hk_req_clear(&g);
    }
    /* nothing of the deleted webhook is claimable; new events go only to the other one */
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 0, now + 10), 0);
    assert_int_equal(it.ndeliveries, 1);
    assert_int_equal(r.u.ingest.nqueued, 1);
    hk_req_clear(&r);
    hk_req c;
    assert_int_equal(claim(&c, "node-a", now + 1000, 0, 100), 1);
    assert_string_equal(c.u.claim.jobs[0]->webhook_id, other);
    hk_req_clear(&c);
}

/* What a caller wrote as JSON comes back as written (store.h: compact JSON; the order of
 * custom headers and of a delivery's request headers is the order they are sent in), after a
 * create, a patch and a load, and for a delivery's request headers. (PostgreSQL differed once:
 * its jsonb columns re-spaced ({"a": 1}) and re-ordered keys (shorter keys first); they are
 * json since its migration 4.) */
static int g_strict;

static void same_json(const char *got, const char *want, const char *what)
{
    if (got && strcmp(got, want) == 0) return;
    fail_msg("%s reads back as %s, written as %s", what, got ? got : "NULL", want);
}

static void test_json_as_written(void **state)
{
    (void)state;
    const char *headers = "{\"X-Zeta\":\"1\",\"X-A\":\"2\",\"Authorization\":\"Bearer t\"}";
    const char *filter = "{\"matchConditions\":{\"region\":\"eu\",\"a\":1}}";
    hk_webhook_fields f = {.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS |
                                  HK_WF_HEADERS | HK_WF_FILTER,
                           .name = "j",
                           .url = "http://127.0.0.1:9/",
                           .secret = "s",
                           .events = EV_ORDER,
                           .nevents = 1,
                           .custom_headers = headers,
                           .filtering_options = filter};
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A};
    c.u.wh_create.f = &f;
    assert_int_equal(run(&c), 0);
    char wid[HK_ID_MAX];
    hk_strlcpy(wid, c.u.wh_create.out->id, sizeof wid);
    same_json(c.u.wh_create.out->custom_headers, headers, "custom_headers");
    same_json(c.u.wh_create.out->filtering_options, filter, "filtering_options");
    hk_req_clear(&c);
    const char *ids[] = {wid};
    hk_req ld = {.kind = HK_REQ_WEBHOOK_LOAD};
    ld.u.wh_load.ids = ids;
    ld.u.wh_load.nids = 1;
    assert_int_equal(run(&ld), 0);
    assert_int_equal(ld.u.wh_load.n, 1);
    same_json(ld.u.wh_load.items[0]->custom_headers, headers, "custom_headers (load)");
    same_json(ld.u.wh_load.items[0]->filtering_options, filter, "filtering_options (load)");
    hk_req_clear(&ld);
    /* a patch writes new JSON: read back as written too */
    const char *h2 = "{\"X-Zeta\":\"3\",\"Authorization\":\"Bearer u\",\"X-B\":\"4\"}";
    const char *f2 = "{\"matchConditions\":{\"zone\":\"b\",\"a\":[1,2]}}";
    hk_webhook_fields pf = {
        .has = HK_WF_HEADERS | HK_WF_FILTER, .custom_headers = h2, .filtering_options = f2};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    p.u.wh_patch.id = wid;
    p.u.wh_patch.f = &pf;
    assert_int_equal(run(&p), 0);
    same_json(p.u.wh_patch.out->custom_headers, h2, "custom_headers (patch)");
    same_json(p.u.wh_patch.out->filtering_options, f2, "filtering_options (patch)");
    hk_req_clear(&p);
    hk_webhook *gw = get_webhook(ORG_A, wid);
    same_json(gw->custom_headers, h2, "custom_headers (get after patch)");
    same_json(gw->filtering_options, f2, "filtering_options (get after patch)");
    hk_webhook_free(gw);
    /* back to the first version, which the deliveries below match */
    pf.custom_headers = headers;
    pf.filtering_options = filter;
    p = (hk_req){.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    p.u.wh_patch.id = wid;
    p.u.wh_patch.f = &pf;
    assert_int_equal(run(&p), 0);
    hk_req_clear(&p);

    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(
        ingest(&r, &it, ORG_A, "order.created", "{\"region\":\"eu\",\"a\":1}", NULL, 0, now), 0);
    assert_int_equal(r.u.ingest.nqueued, 1);
    char did[HK_ID_MAX];
    hk_strlcpy(did, r.u.ingest.queued[0].id, sizeof did);
    hk_req_clear(&r);
    hk_result res = {0};
    hk_strlcpy(res.delivery_id, did, HK_ID_MAX);
    hk_strlcpy(res.webhook_id, wid, HK_ID_MAX);
    hk_id_new("what", res.attempt_id);
    res.attempt_number = 1;
    res.status = HK_DL_SUCCESS;
    res.attempt_ok = 1;
    res.final = 1;
    res.response_status = 200;
    const char *sent = "{\"X-Zeta\":\"1\",\"X-A\":\"2\",\"X-Delivery-Id\":\"d\"}";
    res.request_headers = (char *)sent;
    res.request_url = "http://127.0.0.1:9/";
    res.started_at = res.finished_at = now;
    hk_req rq = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
    rq.u.results.items = &res;
    rq.u.results.n = 1;
    assert_int_equal(run(&rq), 0);
    hk_req_clear(&rq);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    same_json(g.u.dl_get.out.request_headers, sent, "request_headers");
    hk_req_clear(&g);

    /* with a static part stored by reference: static headers first, then the attempt's */
    const char *stat = "{\"User-Agent\":\"hookd\",\"Content-Type\":\"application/json\"}";
    const char *own = "{\"X-Delivery-Id\":\"d\",\"Webhook-Signature\":\"v1,x\"}";
    const char *joined = "{\"User-Agent\":\"hookd\",\"Content-Type\":\"application/json\","
                         "\"X-Delivery-Id\":\"d\",\"Webhook-Signature\":\"v1,x\"}";
    hk_blob *blob = hk_blob_new(stat, strlen(stat));
    char d2[2][HK_ID_MAX];
    for (int k = 0; k < 2; k++) { /* two deliveries, one stored static set */
        assert_int_equal(
            ingest(&r, &it, ORG_A, "order.created", "{\"region\":\"eu\",\"a\":1}", NULL, 0, now),
            0);
        hk_strlcpy(d2[k], r.u.ingest.queued[0].id, HK_ID_MAX);
        hk_req_clear(&r);
        hk_result rs = res;
        hk_strlcpy(rs.delivery_id, d2[k], HK_ID_MAX);
        hk_id_new("what", rs.attempt_id);
        rs.request_headers = (char *)own;
        rs.headers_static = blob;
        hk_headers_ref(&F->a.cfg, stat, strlen(stat), rs.headers_ref);
        hk_req q = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
        q.u.results.items = &rs;
        q.u.results.n = 1;
        assert_int_equal(run(&q), 0);
        hk_req_clear(&q);
    }
    hk_blob_unref(blob);
    for (int k = 0; k < 2; k++) {
        get_delivery(ORG_A, d2[k], &g);
        same_json(g.u.dl_get.out.request_headers, joined, "request_headers (static + own)");
        hk_req_clear(&g);
    }
}

/* ---- ingest ---------------------------------------------------------------------------------- */

static void test_ingest_fanout(void **state)
{
    (void)state;
    const char *e1[] = {"order.created"}, *e2[] = {"order.*"}, *e3[] = {"user.created"},
               *e4[] = {"*"};
    char w1[HK_ID_MAX], w2[HK_ID_MAX], w3[HK_ID_MAX], w4[HK_ID_MAX], wb[HK_ID_MAX], wd[HK_ID_MAX];
    mk_webhook(ORG_A, e1, 1, HK_WH_ACTIVE, w1);
    mk_webhook(ORG_A, e2, 1, HK_WH_ACTIVE, w2);
    mk_webhook(ORG_A, e3, 1, HK_WH_ACTIVE, w3);
    mk_webhook(ORG_A, e4, 1, HK_WH_DISABLED, wd); /* disabled: no delivery */
    mk_webhook(ORG_B, e1, 1, HK_WH_ACTIVE, wb);
    /* matchConditions */
    hk_webhook_fields f = {.has =
                               HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS | HK_WF_FILTER,
                           .name = "f",
                           .url = "http://127.0.0.1:9/",
                           .secret = "s",
                           .events = e1,
                           .nevents = 1,
                           .filtering_options = "{\"matchConditions\":{\"country\":\"FR\"}}"};
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A};
    c.u.wh_create.f = &f;
    assert_int_equal(run(&c), 0);
    hk_strlcpy(w4, c.u.wh_create.out->id, sizeof w4);
    hk_req_clear(&c);

    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(
        ingest(&r, &it, ORG_A, "order.created", "{\"country\":\"DE\",\"n\":1}", NULL, 10, now), 0);
    assert_int_equal(it.duplicate, 0);
    assert_int_equal(it.ndeliveries, 2); /* w1, w2 */
    assert_int_equal(r.u.ingest.njobs, 2);
    assert_int_equal(r.u.ingest.nqueued, 0);
    assert_true(r.u.ingest.nwebhooks >= 1);
    int seen = 0;
    for (int i = 0; i < r.u.ingest.njobs; i++) {
        hk_job *j = r.u.ingest.jobs[i];
        assert_string_equal(j->event_id, it.id);
        assert_int_equal(j->status, HK_DL_PENDING);
        assert_int_equal(j->attempt_number, 0);
        assert_int_equal(j->max_attempts, 3);
        assert_non_null(j->body);
        assert_non_null(strstr(j->body->data, it.id));
        assert_non_null(strstr(j->body->data, "\"country\":\"DE\""));
        if (strcmp(j->webhook_id, w1) == 0) seen |= 1;
        if (strcmp(j->webhook_id, w2) == 0) seen |= 2;
        int found = 0;
        for (int k = 0; k < r.u.ingest.nwebhooks; k++)
            if (strcmp(r.u.ingest.webhooks[k]->id, j->webhook_id) == 0) found = 1;
        assert_true(found);
    }
    assert_int_equal(seen, 3);
    hk_req_clear(&r);

    /* the condition holds: w4 too */
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{\"country\":\"FR\"}", NULL, 10, now),
                     0);
    assert_int_equal(it.ndeliveries, 3);
    hk_req_clear(&r);

    /* another type */
    assert_int_equal(ingest(&r, &it, ORG_A, "user.created", "{}", NULL, 10, now), 0);
    assert_int_equal(it.ndeliveries, 1);
    assert_string_equal(r.u.ingest.jobs[0]->webhook_id, w3);
    hk_req_clear(&r);

    /* no subscriber: the event is stored, no delivery */
    assert_int_equal(ingest(&r, &it, ORG_A, "nobody.listens", "{}", NULL, 10, now), 0);
    assert_int_equal(it.ndeliveries, 0);
    assert_int_equal(r.u.ingest.njobs, 0);
    hk_req_clear(&r);

    /* organizations are isolated: B's webhook got nothing of A's events */
    hk_req dl = {.kind = HK_REQ_DELIVERY_LIST, .org_id = ORG_B};
    dl.u.dl_list.webhook_id = wb;
    dl.u.dl_list.status = -1;
    dl.u.dl_list.page = 1;
    dl.u.dl_list.limit = 10;
    assert_int_equal(run(&dl), 0);
    assert_int_equal(dl.u.dl_list.total, 0);
    hk_req_clear(&dl);
    assert_int_equal(ingest(&r, &it, ORG_B, "order.created", "{}", NULL, 10, now), 0);
    assert_int_equal(it.ndeliveries, 1);
    assert_string_equal(r.u.ingest.jobs[0]->webhook_id, wb);
    hk_req_clear(&r);

    /* excludeFields: the delivery's data is the event's without the field */
    const char *ee[] = {"secret.shared"};
    hk_webhook_fields fx2 = {.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS |
                                    HK_WF_FILTER,
                             .name = "x",
                             .url = "http://127.0.0.1:9/",
                             .secret = "s",
                             .events = ee,
                             .nevents = 1,
                             .filtering_options = "{\"excludeFields\":[\"pw\"]}"};
    hk_req c2 = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A};
    c2.u.wh_create.f = &fx2;
    assert_int_equal(run(&c2), 0);
    hk_req_clear(&c2);
    assert_int_equal(
        ingest(&r, &it, ORG_A, "secret.shared", "{\"pw\":\"x\",\"a\":1}", NULL, 0, now), 0);
    assert_int_equal(r.u.ingest.nqueued, 1);
    hk_req g;
    get_delivery(ORG_A, r.u.ingest.queued[0].id, &g);
    assert_string_equal(g.u.dl_get.out.event_data, "{\"a\":1}");
    hk_req_clear(&g);
    hk_req_clear(&r);
}

static void test_ingest_idempotency(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{\"v\":1}", "key-1", 0, now), 0);
    char first[HK_ID_MAX];
    hk_strlcpy(first, it.id, sizeof first);
    assert_int_equal(it.duplicate, 0);
    hk_req_clear(&r);
    /* the same key again, another type and body: the first event's id and type */
    assert_int_equal(ingest(&r, &it, ORG_A, "order.updated", "{\"v\":2}", "key-1", 0, now + 1), 0);
    assert_int_equal(it.duplicate, 1);
    assert_string_equal(it.id, first);
    assert_string_equal(it.dup_type, "order.created");
    assert_int_equal(it.ndeliveries, 1);
    assert_int_equal(r.u.ingest.nqueued, 0);
    hk_req_clear(&r);
    /* the key is per organization */
    assert_int_equal(ingest(&r, &it, ORG_B, "order.created", "{}", "key-1", 0, now), 0);
    assert_int_equal(it.duplicate, 0);
    assert_string_not_equal(it.id, first);
    hk_req_clear(&r);

    /* a key repeated inside one request */
    hk_ingest_item items[3] = {
        {.type = "order.created", .data = "{}", .data_len = 2, .idem_key = "k2", .source = "api"},
        {.type = "order.created", .data = "{}", .data_len = 2, .idem_key = "k2", .source = "api"},
        {.type = "order.created", .data = "{}", .data_len = 2, .idem_key = NULL, .source = "api"},
    };
    hk_req m = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    m.u.ingest.items = items;
    m.u.ingest.n = 3;
    assert_int_equal(run(&m), 0);
    assert_int_equal(items[0].duplicate, 0);
    assert_int_equal(items[1].duplicate, 1);
    assert_string_equal(items[1].id, items[0].id);
    assert_string_equal(items[1].dup_type, "order.created");
    assert_int_equal(items[2].duplicate, 0);
    assert_int_equal(m.u.ingest.nqueued, 2);
    hk_req_clear(&m);

    /* a key repeated in two requests of one group commit */
    hk_ingest_item a = {
        .type = "order.created", .data = "{}", .data_len = 2, .idem_key = "k3", .source = "api"};
    hk_ingest_item b = a;
    hk_req ra = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    hk_req rb = ra;
    ra.u.ingest.items = &a;
    ra.u.ingest.n = 1;
    rb.u.ingest.items = &b;
    rb.u.ingest.n = 1;
    hk_req *both[] = {&ra, &rb};
    submit_all(F->a.st, both, 2);
    assert_int_equal(ra.rc, 0);
    assert_int_equal(rb.rc, 0);
    assert_int_equal(a.duplicate, 0);
    assert_int_equal(b.duplicate, 1);
    assert_string_equal(b.id, a.id);
    hk_req_clear(&ra);
    hk_req_clear(&rb);

    hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
    l.u.ev_list.page = 1;
    l.u.ev_list.limit = 50;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, 4); /* key-1, k2, the keyless one, k3 */
    hk_req_clear(&l);
}

/* The lease budget: leased jobs up to it, the rest reported in `queued` and claimable. */
static void test_ingest_lease_budget(void **state)
{
    (void)state;
    char w[3][HK_ID_MAX], wp[HK_ID_MAX];
    for (int i = 0; i < 3; i++) mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w[i]);
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_PAUSED, wp);
    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 1, now), 0);
    assert_int_equal(it.ndeliveries, 4);
    assert_int_equal(r.u.ingest.njobs, 1);
    assert_int_equal(r.u.ingest.nqueued, 2); /* the paused one's is parked, not queued */
    char leased[HK_ID_MAX];
    hk_strlcpy(leased, r.u.ingest.jobs[0]->id, sizeof leased);
    for (int i = 0; i < r.u.ingest.nqueued; i++) {
        assert_int_equal(r.u.ingest.queued[i].next_retry_at, now);
        assert_string_not_equal(r.u.ingest.queued[i].id, leased);
    }
    hk_req_clear(&r);
    /* the queued ones are claimable, the leased one is not */
    hk_req c;
    assert_int_equal(claim(&c, "node-b", now + 1000, 0, 100), 2);
    for (int i = 0; i < c.u.claim.njobs; i++)
        assert_string_not_equal(c.u.claim.jobs[i]->id, leased);
    hk_req_clear(&c);

    /* budget 0: nothing leased */
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 0, now), 0);
    assert_int_equal(r.u.ingest.njobs, 0);
    assert_int_equal(r.u.ingest.nqueued, 3);
    hk_req_clear(&r);

    /* the budget spans the items of a request */
    hk_ingest_item items[2] = {
        {.type = "order.created", .data = "{}", .data_len = 2, .source = "api"},
        {.type = "order.created", .data = "{}", .data_len = 2, .source = "api"},
    };
    hk_req m = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    m.u.ingest.items = items;
    m.u.ingest.n = 2;
    m.u.ingest.lease_budget = 4;
    assert_int_equal(run(&m), 0);
    assert_int_equal(m.u.ingest.njobs, 4);
    assert_int_equal(m.u.ingest.nqueued, 2);
    hk_req_clear(&m);
}

/* Caps and bad data: the request fails and stores nothing. */
static void test_ingest_refusals(void **state)
{
    (void)state;
    char w1[HK_ID_MAX], w2[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w2);
    int64_t now = hk_now_ms();
    hk_ingest_item items[2] = {
        {.type = "order.created", .data = "{}", .data_len = 2, .idem_key = "cap", .source = "api"},
        {.type = "order.created", .data = "{}", .data_len = 2, .source = "api"},
    };
    hk_req m = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    m.u.ingest.items = items;
    m.u.ingest.n = 2;
    m.u.ingest.lease_budget = 10;
    m.u.ingest.max_total = 3;
    assert_int_equal(run(&m), HK_ELIMIT);
    assert_true(m.err[0] != '\0');
    assert_int_equal(m.u.ingest.njobs, 0);
    hk_req_clear(&m);
    hk_req m2 = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    m2.u.ingest.items = items;
    m2.u.ingest.n = 1;
    m2.u.ingest.max_per_event = 1;
    assert_int_equal(run(&m2), HK_ELIMIT);
    hk_req_clear(&m2);
    /* data that is not a JSON object, when a filter needs to read it */
    mk_filtered_webhook(ORG_A);
    hk_ingest_item bad = {.type = "order.created", .data = "[1]", .data_len = 3, .source = "api"};
    hk_req m3 = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    m3.u.ingest.items = &bad;
    m3.u.ingest.n = 1;
    assert_int_equal(run(&m3), HK_EINVAL);
    hk_req_clear(&m3);

    hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
    l.u.ev_list.page = 1;
    l.u.ev_list.limit = 50;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, 0);
    hk_req_clear(&l);
    assert_int_equal(claim_count("node-a", now + 1000), 0);
    /* the key of the refused request is free */
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", "cap", 0, now), 0);
    assert_int_equal(it.duplicate, 0);
    hk_req_clear(&r);
}

/* ---- events and deliveries ------------------------------------------------------------------- */

/* Keyset paging of the lists (store.h, lists): newest first by (created_at, id), a page after
 * `after` holds exactly the rows that sort after it, `more` says whether rows follow, and a
 * walk returns every row once, ties of one millisecond included; filters combine with it. */
static void test_list_keyset(void **state)
{
    (void)state;
    char wh[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_PAUSED, wh);
    int64_t now = hk_now_ms() - 100000;
    enum { N = 23 };
    for (int i = 0; i < N; i++) { /* five to a millisecond: ties that only the id breaks */
        hk_req r;
        hk_ingest_item it;
        const char *type = i % 3 ? "order.created" : "user.created";
        assert_int_equal(ingest(&r, &it, ORG_A, type, "{}", NULL, 0, now + i / 5), 0);
        hk_req_clear(&r);
    }
    for (int filtered = 0; filtered < 2; filtered++) {
        hk_cursor after = {0};
        int64_t last_at = 0;
        char last_id[HK_ID_MAX] = "";
        int seen = 0, pages = 0, more = 1;
        while (more) {
            hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
            l.u.ev_list.type = filtered ? "order.created" : NULL;
            l.u.ev_list.page = 1;
            l.u.ev_list.limit = 4;
            l.u.ev_list.after = after;
            assert_int_equal(run(&l), 0);
            assert_int_equal(l.u.ev_list.total, filtered ? 15 : N);
            assert_false(l.u.ev_list.capped);
            for (int i = 0; i < l.u.ev_list.n; i++) {
                const hk_event *e = &l.u.ev_list.items[i];
                if (seen)
                    assert_true(e->created_at < last_at ||
                                (e->created_at == last_at && strcmp(e->id, last_id) < 0));
                if (filtered) assert_string_equal(e->type, "order.created");
                last_at = e->created_at;
                hk_strlcpy(last_id, e->id, HK_ID_MAX);
                seen++;
            }
            more = l.u.ev_list.more;
            if (more) assert_int_equal(l.u.ev_list.n, 4);
            after.at = last_at;
            hk_strlcpy(after.id, last_id, HK_ID_MAX);
            hk_req_clear(&l);
            pages++;
        }
        assert_int_equal(seen, filtered ? 15 : N);
        assert_int_equal(pages, filtered ? 4 : 6);
    }
    /* the deliveries (pending, parked): the walk, the status filter, and offset page 2 equal to
     * the page after page 1's last row */
    hk_req p1 = {.kind = HK_REQ_DELIVERY_LIST, .org_id = ORG_A};
    p1.u.dl_list.webhook_id = wh;
    p1.u.dl_list.status = HK_DL_PENDING;
    p1.u.dl_list.page = 1;
    p1.u.dl_list.limit = 6;
    assert_int_equal(run(&p1), 0);
    assert_int_equal(p1.u.dl_list.total, 15);
    assert_int_equal(p1.u.dl_list.n, 6);
    assert_true(p1.u.dl_list.more);
    hk_req p2 = p1, c2 = p1;
    p2.u.dl_list.items = c2.u.dl_list.items = NULL;
    p2.u.dl_list.n = c2.u.dl_list.n = 0;
    p2.u.dl_list.page = 2;
    c2.u.dl_list.after.at = p1.u.dl_list.items[5].created_at;
    hk_strlcpy(c2.u.dl_list.after.id, p1.u.dl_list.items[5].id, HK_ID_MAX);
    assert_int_equal(run(&p2), 0);
    assert_int_equal(run(&c2), 0);
    assert_int_equal(p2.u.dl_list.n, 6);
    assert_int_equal(c2.u.dl_list.n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(p2.u.dl_list.items[i].id, c2.u.dl_list.items[i].id);
    assert_true(strcmp(c2.u.dl_list.items[0].id, p1.u.dl_list.items[5].id) != 0);
    hk_req c3 = c2;
    c3.u.dl_list.items = NULL;
    c3.u.dl_list.n = 0;
    c3.u.dl_list.more = 0;
    c3.u.dl_list.after.at = c2.u.dl_list.items[5].created_at;
    hk_strlcpy(c3.u.dl_list.after.id, c2.u.dl_list.items[5].id, HK_ID_MAX);
    assert_int_equal(run(&c3), 0);
    assert_int_equal(c3.u.dl_list.n, 3);
    assert_false(c3.u.dl_list.more);
    c3.u.dl_list.status = HK_DL_SUCCESS;
    hk_req_clear(&c3);
    assert_int_equal(run(&c3), 0);
    assert_int_equal(c3.u.dl_list.n, 0);
    assert_int_equal(c3.u.dl_list.total, 0);
    hk_req_clear(&p1);
    hk_req_clear(&p2);
    hk_req_clear(&c2);
    hk_req_clear(&c3);
}

static void test_events(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char ids[3][HK_ID_MAX];
    const char *types[] = {"order.created", "user.created", "order.created"};
    for (int i = 0; i < 3; i++) {
        hk_req r;
        hk_ingest_item it;
        assert_int_equal(ingest(&r, &it, ORG_A, types[i], "{\"i\":1}", NULL, 0, now + i), 0);
        hk_strlcpy(ids[i], it.id, HK_ID_MAX);
        hk_req_clear(&r);
    }
    hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
    l.u.ev_list.page = 1;
    l.u.ev_list.limit = 2;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, 3);
    assert_int_equal(l.u.ev_list.n, 2);
    assert_string_equal(l.u.ev_list.items[0].id, ids[2]); /* newest first */
    assert_string_equal(l.u.ev_list.items[1].id, ids[1]);
    hk_req_clear(&l);
    l.u.ev_list.type = "order.created";
    l.u.ev_list.limit = 10;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, 2);
    assert_int_equal(l.u.ev_list.n, 2);
    hk_req_clear(&l);
    hk_req lb = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_B};
    lb.u.ev_list.page = 1;
    lb.u.ev_list.limit = 10;
    assert_int_equal(run(&lb), 0);
    assert_int_equal(lb.u.ev_list.total, 0);
    hk_req_clear(&lb);

    hk_req g = {.kind = HK_REQ_EVENT_GET, .org_id = ORG_A};
    g.u.ev_get.id = ids[0];
    assert_int_equal(run(&g), 0);
    assert_string_equal(g.u.ev_get.out.type, "order.created");
    assert_string_equal(g.u.ev_get.out.payload, "{\"i\":1}");
    assert_string_equal(g.u.ev_get.out.source, "api");
    assert_string_equal(g.u.ev_get.out.org_id, ORG_A);
    assert_int_equal(g.u.ev_get.out.created_at, now);
    assert_int_equal(g.u.ev_get.out.ndeliveries, 1);
    assert_string_equal(g.u.ev_get.out.deliveries[0].webhook_id, w1);
    assert_int_equal(g.u.ev_get.out.deliveries[0].status, HK_DL_PENDING);
    hk_req_clear(&g);
    hk_req gb = {.kind = HK_REQ_EVENT_GET, .org_id = ORG_B};
    gb.u.ev_get.id = ids[0];
    assert_int_equal(run(&gb), HK_ENOTFOUND);
    hk_req gu = {.kind = HK_REQ_EVENT_GET, .org_id = ORG_A};
    gu.u.ev_get.id = "whev_unknown";
    assert_int_equal(run(&gu), HK_ENOTFOUND);
}

static void test_deliveries(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char d[3][HK_ID_MAX], e0[HK_ID_MAX];
    for (int i = 0; i < 3; i++) ingest_simple(ORG_A, now + i, d[i], i == 0 ? e0 : NULL);
    assert_int_equal(result(w1, d[0], 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now + 10, NULL), 0);

    hk_req l = {.kind = HK_REQ_DELIVERY_LIST, .org_id = ORG_A};
    l.u.dl_list.webhook_id = w1;
    l.u.dl_list.status = -1;
    l.u.dl_list.page = 1;
    l.u.dl_list.limit = 2;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.dl_list.total, 3);
    assert_int_equal(l.u.dl_list.n, 2);
    assert_string_equal(l.u.dl_list.items[0].id, d[2]); /* newest first */
    hk_req_clear(&l);
    l.u.dl_list.status = HK_DL_SUCCESS;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.dl_list.total, 1);
    assert_string_equal(l.u.dl_list.items[0].id, d[0]);
    hk_req_clear(&l);

    /* another organization's webhook, an unknown one: not found */
    hk_req lb = {.kind = HK_REQ_DELIVERY_LIST, .org_id = ORG_B};
    lb.u.dl_list.webhook_id = w1;
    lb.u.dl_list.status = -1;
    lb.u.dl_list.page = 1;
    lb.u.dl_list.limit = 10;
    assert_int_equal(run(&lb), HK_ENOTFOUND);
    hk_req_clear(&lb);
    lb.org_id = ORG_A;
    lb.u.dl_list.webhook_id = "wh_unknown";
    assert_int_equal(run(&lb), HK_ENOTFOUND);
    hk_req_clear(&lb);

    hk_req g;
    get_delivery(ORG_A, d[1], &g);
    hk_delivery *o = &g.u.dl_get.out;
    assert_string_equal(o->webhook_id, w1);
    assert_string_equal(o->event_type, "order.created");
    assert_string_equal(o->event_data, "{\"n\":1}");
    assert_string_equal(o->request_url, "http://127.0.0.1:9/hook");
    assert_string_equal(o->replay_of, "");
    assert_int_equal(o->status, HK_DL_PENDING);
    assert_int_equal(o->attempt_number, 0);
    assert_int_equal(o->max_attempts, 3);
    assert_int_equal(o->next_retry_at, now + 1);
    assert_int_equal(o->created_at, now + 1);
    assert_int_equal(o->nattempts, 0);
    hk_req_clear(&g);
    get_delivery(ORG_A, d[0], &g);
    assert_string_equal(g.u.dl_get.out.event_id, e0);
    hk_req_clear(&g);

    hk_req gb = {.kind = HK_REQ_DELIVERY_GET, .org_id = ORG_B};
    gb.u.dl_get.id = d[0];
    assert_int_equal(run(&gb), HK_ENOTFOUND);
    hk_req gu = {.kind = HK_REQ_DELIVERY_GET, .org_id = ORG_A};
    gu.u.dl_get.id = "whde_unknown";
    assert_int_equal(run(&gu), HK_ENOTFOUND);
}

/* ---- claims ---------------------------------------------------------------------------------- */

static void test_claim(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char d[3][HK_ID_MAX];
    for (int i = 0; i < 3; i++) ingest_simple(ORG_A, now + i * 10, d[i], NULL);

    /* not yet due: nothing; the horizon reaches ahead */
    assert_int_equal(claim_count("node-a", now - 1), 0);
    hk_req c;
    assert_int_equal(claim(&c, "node-a", now - 100, 105, 10), 1);
    assert_string_equal(c.u.claim.jobs[0]->id, d[0]);
    hk_req_clear(&c);
    /* soonest first, limited; leased rows are not claimed again, by any node */
    assert_int_equal(claim(&c, "node-b", now + 1000, 0, 1), 1);
    assert_string_equal(c.u.claim.jobs[0]->id, d[1]);
    hk_job *j = c.u.claim.jobs[0];
    assert_string_equal(j->webhook_id, w1);
    assert_int_equal(j->status, HK_DL_PENDING);
    assert_int_equal(j->max_attempts, 3);
    assert_int_equal(j->due_ms, now + 10);
    assert_int_equal(j->created_ms, now + 10);
    assert_non_null(strstr(j->body->data, "\"data\":{\"n\":1}"));
    assert_non_null(strstr(j->body->data, j->event_id));
    assert_int_equal(c.u.claim.nwebhooks, 1);
    assert_string_equal(c.u.claim.webhooks[0]->id, w1);
    assert_string_equal(c.u.claim.webhooks[0]->secret, "whsec_test");
    hk_req_clear(&c);
    assert_int_equal(claim_count("node-a", now + 1000), 1);
    assert_int_equal(claim_count("node-a", now + 1000), 0);
    assert_int_equal(claim_count("node-b", now + 1000), 0);
}

/* A due row of a webhook that is no longer active is parked by the claim, not leased. */
static void test_claim_parks(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 1, now), 0);
    char did[HK_ID_MAX];
    hk_strlcpy(did, r.u.ingest.jobs[0]->id, sizeof did);
    hk_req_clear(&r);
    set_status(ORG_A, w1, HK_WH_PAUSED); /* the leased row is not parked by the patch */
    hk_release rel = {.next_retry_at = now};
    hk_strlcpy(rel.id, did, sizeof rel.id);
    hk_req rr = {.kind = HK_REQ_RELEASE, .node_id = "node-a", .now = now};
    rr.u.release.items = &rel;
    rr.u.release.n = 1;
    assert_int_equal(run(&rr), 0);
    hk_req c;
    assert_int_equal(claim(&c, "node-a", now + 1000, 0, 10), 0);
    assert_int_equal(c.u.claim.parked, 1);
    hk_req_clear(&c);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, 0);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_PENDING);
    hk_req_clear(&g);
    assert_int_equal(claim_count("node-a", now + 1000), 0);
    assert_int_equal(set_status(ORG_A, w1, HK_WH_ACTIVE), 1);
    assert_int_equal(claim_count("node-a", hk_now_ms() + 1000), 1);
}

static void test_claim_ids(void **state)
{
    (void)state;
    char w1[HK_ID_MAX], wp[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char due[HK_ID_MAX], later[HK_ID_MAX], leased[HK_ID_MAX], done[HK_ID_MAX], paused[HK_ID_MAX];
    ingest_simple(ORG_A, now, due, NULL);
    ingest_simple(ORG_A, now + 60000, later, NULL);
    ingest_simple(ORG_A, now, done, NULL);
    assert_int_equal(result(w1, done, 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now, NULL), 0);
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 1, now), 0);
    hk_strlcpy(leased, r.u.ingest.jobs[0]->id, sizeof leased);
    hk_req_clear(&r);
    /* a due row whose webhook was paused after it was released unparked */
    mk_webhook(ORG_B, EV_ORDER, 1, HK_WH_ACTIVE, wp);
    assert_int_equal(ingest(&r, &it, ORG_B, "order.created", "{}", NULL, 1, now), 0);
    hk_strlcpy(paused, r.u.ingest.jobs[0]->id, sizeof paused);
    hk_req_clear(&r);
    set_status(ORG_B, wp, HK_WH_PAUSED);
    hk_release rel = {.next_retry_at = now};
    hk_strlcpy(rel.id, paused, sizeof rel.id);
    hk_req rr = {.kind = HK_REQ_RELEASE, .node_id = "node-a", .now = now};
    rr.u.release.items = &rel;
    rr.u.release.n = 1;
    assert_int_equal(run(&rr), 0);

    const char *ids[] = {later, "whde_unknown", due, leased, done, paused};
    hk_req c = {.kind = HK_REQ_CLAIM_IDS, .node_id = "node-a", .now = now + 100};
    c.u.claim.ids = ids;
    c.u.claim.nids = 6;
    assert_int_equal(run(&c), 0);
    assert_int_equal(c.u.claim.njobs, 1);
    assert_string_equal(c.u.claim.jobs[0]->id, due);
    assert_int_equal(c.u.claim.nlater, 1);
    assert_string_equal(c.u.claim.later[0].id, later);
    assert_int_equal(c.u.claim.later[0].next_retry_at, now + 60000);
    assert_int_equal(c.u.claim.parked, 5);
    hk_req_clear(&c);
    hk_req g;
    get_delivery(ORG_B, paused, &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, 0); /* parked */
    hk_req_clear(&g);
    /* claimed now: a second claim_ids drops it; the horizon reaches the later one */
    hk_req c2 = {.kind = HK_REQ_CLAIM_IDS, .node_id = "node-b", .now = now + 100};
    const char *ids2[] = {due, later};
    c2.u.claim.ids = ids2;
    c2.u.claim.nids = 2;
    c2.u.claim.horizon = 60000;
    assert_int_equal(run(&c2), 0);
    assert_int_equal(c2.u.claim.njobs, 1);
    assert_string_equal(c2.u.claim.jobs[0]->id, later);
    assert_int_equal(c2.u.claim.nlater, 0);
    assert_int_equal(c2.u.claim.parked, 1);
    hk_req_clear(&c2);
}

static void test_due_scan(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char d[6][HK_ID_MAX];
    for (int i = 0; i < 6; i++)
        ingest_simple(ORG_A, now + (5 - i) * 100, d[i], NULL); /* d5 first */
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 1, now), 0); /* leased */
    hk_req_clear(&r);

    /* until excludes d0 (due now+500); paging by 2 with the cursor, due order */
    const char *expect[] = {d[5], d[4], d[3], d[2], d[1]};
    hk_req s = {.kind = HK_REQ_DUE_SCAN};
    s.u.due_scan.until = now + 400;
    s.u.due_scan.limit = 2;
    int got = 0, pages = 0;
    for (;;) {
        assert_int_equal(run(&s), 0);
        pages++;
        for (int i = 0; i < s.u.due_scan.n; i++) {
            assert_true(got < 5);
            assert_string_equal(s.u.due_scan.items[i].id, expect[got]);
            assert_int_equal(s.u.due_scan.items[i].next_retry_at, now + got * 100);
            got++;
        }
        int more = s.u.due_scan.more;
        assert_int_equal(more, s.u.due_scan.n == 2);
        hk_req_clear(&s);
        if (!more) break;
        assert_true(pages < 10);
    }
    assert_int_equal(got, 5);
    assert_int_equal(pages, 3);
    /* from the start again with an empty cursor */
    hk_req s2 = {.kind = HK_REQ_DUE_SCAN};
    s2.u.due_scan.until = now + 1000;
    s2.u.due_scan.limit = 100;
    assert_int_equal(run(&s2), 0);
    assert_int_equal(s2.u.due_scan.n, 6);
    assert_int_equal(s2.u.due_scan.more, 0);
    hk_req_clear(&s2);
}

/* ---- results --------------------------------------------------------------------------------- */

static void test_results_success(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char did[HK_ID_MAX];
    ingest_simple(ORG_A, now, did, NULL);
    assert_int_equal(claim_count("node-a", now), 1);
    hk_req out;
    assert_int_equal(result(w1, did, 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 3, now + 50, &out), 0);
    assert_int_equal(out.u.results.nchanges, 0);
    hk_req_clear(&out);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    hk_delivery *o = &g.u.dl_get.out;
    assert_int_equal(o->status, HK_DL_SUCCESS);
    assert_int_equal(o->attempt_number, 1);
    assert_int_equal(o->response_status, 200);
    assert_string_equal(o->response_body, "fine");
    assert_int_equal(o->duration_ms, 12);
    assert_int_equal(o->next_retry_at, 0);
    assert_int_equal(o->completed_at, now + 50);
    assert_int_equal(o->last_attempt_at, now + 38);
    assert_non_null(o->request_headers);
    assert_non_null(strstr(o->request_headers, "X-Delivery-Id"));
    assert_int_equal(o->nattempts, 1);
    assert_int_equal(o->attempts[0].attempt_number, 1);
    assert_int_equal(o->attempts[0].status, HK_DL_SUCCESS);
    assert_int_equal(o->attempts[0].response_status, 200);
    assert_string_equal(o->attempts[0].response_body, "fine");
    hk_req_clear(&g);
    hk_webhook *w = get_webhook(ORG_A, w1);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->failure_count, 0);
    assert_int_equal(w->consecutive_failures, 0);
    assert_true(w->last_triggered_at > 0);
    hk_webhook_free(w);
    assert_int_equal(claim_count("node-a", now + 100000), 0); /* finished */
}

/* RESULTS' heads (docs/API.md "Ordering"): a final result marked fifo returns its FIFO line's
 * new head when it is claimable; nothing for a retry, a leased or parked head, or a webhook
 * whose row is not "fifo" (the mark is the dispatcher's cached view). */
static void test_results_fifo_heads(void **state)
{
    (void)state;
    char w1[HK_ID_MAX], w2[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    hk_webhook_fields f = {.has = HK_WF_ORDERING, .fifo = 1};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    p.u.wh_patch.id = w1;
    p.u.wh_patch.f = &f;
    if (run(&p)) fail_msg("patch: %d %s", p.rc, p.err);
    hk_req_clear(&p);
    int64_t now = hk_now_ms();
    char d[3][HK_ID_MAX];
    for (int i = 0; i < 3; i++) ingest_simple(ORG_A, now + i * 10, d[i], NULL);
    hk_req c, out;
    assert_int_equal(claim(&c, "node-a", now + 1000, 0, 10), 1); /* the head only */
    assert_string_equal(c.u.claim.jobs[0]->id, d[0]);
    hk_req_clear(&c);
    result_fifo = 1;
    /* a retry of the head (not final): it keeps its place, no new head */
    assert_int_equal(result(w1, d[0], 1, HK_DL_RETRYING, 0, 0, 0, now + 30, 1, 0, now + 20, &out),
                     0);
    assert_int_equal(out.u.results.nheads, 0);
    hk_req_clear(&out);
    /* the head ends: the next one, with its due time */
    assert_int_equal(result(w1, d[0], 2, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now + 40, &out), 0);
    assert_int_equal(out.u.results.nheads, 1);
    assert_string_equal(out.u.results.heads[0].id, d[1]);
    assert_int_equal(out.u.results.heads[0].next_retry_at, now + 10);
    hk_req_clear(&out);
    /* the new head leased (claimed by a node): a repeat of the result names no head */
    assert_int_equal(claim(&c, "node-b", now + 1000, 0, 10), 1);
    assert_string_equal(c.u.claim.jobs[0]->id, d[1]);
    hk_req_clear(&c);
    assert_int_equal(result(w1, d[0], 2, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now + 40, &out), 0);
    assert_int_equal(out.u.results.nheads, 0);
    hk_req_clear(&out);
    /* given up (failed): the last one is the head; then none is left */
    assert_int_equal(result(w1, d[1], 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 0, now + 50, &out), 0);
    assert_int_equal(out.u.results.nheads, 1);
    assert_string_equal(out.u.results.heads[0].id, d[2]);
    hk_req_clear(&out);
    assert_int_equal(claim_count("node-a", now + 1000), 1);
    assert_int_equal(result(w1, d[2], 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now + 60, &out), 0);
    assert_int_equal(out.u.results.nheads, 0);
    hk_req_clear(&out);
    /* a parallel webhook marked fifo by a stale cache: the row decides, no head */
    mk_webhook(ORG_B, EV_ORDER, 1, HK_WH_ACTIVE, w2);
    char e[2][HK_ID_MAX];
    for (int i = 0; i < 2; i++) ingest_simple(ORG_B, now + i * 10, e[i], NULL);
    assert_int_equal(claim_count("node-a", now + 1000), 2);
    assert_int_equal(result(w2, e[0], 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now + 60, &out), 0);
    assert_int_equal(out.u.results.nheads, 0);
    hk_req_clear(&out);
    result_fifo = 0;
}

/* A retry: attempt rows accumulate, the due time moves, keep_lease decides who may claim it. */
static void test_results_retry_and_lease(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char did[HK_ID_MAX];
    ingest_simple(ORG_A, now, did, NULL);
    assert_int_equal(claim_count("node-a", now), 1);
    /* retrying, lease kept: nobody can claim it, even when due */
    assert_int_equal(result(w1, did, 1, HK_DL_RETRYING, 0, 0, 0, now + 1000, 1, 0, now, NULL), 0);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_RETRYING);
    assert_int_equal(g.u.dl_get.out.next_retry_at, now + 1000);
    assert_int_equal(g.u.dl_get.out.attempt_number, 1);
    assert_int_equal(g.u.dl_get.out.response_status, 500);
    assert_string_equal(g.u.dl_get.out.error_message, "HTTP error");
    hk_req_clear(&g);
    assert_int_equal(claim_count("node-b", now + 5000), 0);
    /* retrying, lease dropped: claimable once due, with its attempt count */
    assert_int_equal(
        result(w1, did, 2, HK_DL_RETRYING, 0, 0, 0, now + 2000, 0, 0, now + 1000, NULL), 0);
    assert_int_equal(claim_count("node-b", now + 1500), 0);
    hk_req c;
    assert_int_equal(claim(&c, "node-b", now + 2000, 0, 10), 1);
    assert_int_equal(c.u.claim.jobs[0]->status, HK_DL_RETRYING);
    assert_int_equal(c.u.claim.jobs[0]->attempt_number, 2);
    assert_int_equal(c.u.claim.jobs[0]->due_ms, now + 2000);
    hk_req_clear(&c);
    /* non-final failures do not count for the webhook's health */
    hk_webhook *w = get_webhook(ORG_A, w1);
    assert_int_equal(w->failure_count, 0);
    assert_int_equal(w->consecutive_failures, 0);
    hk_webhook_free(w);
    /* final failure */
    assert_int_equal(result(w1, did, 3, HK_DL_FAILED, 0, 1, 0, 0, 0, 0, now + 3000, NULL), 0);
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_FAILED);
    assert_int_equal(g.u.dl_get.out.nattempts, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g.u.dl_get.out.attempts[i].attempt_number, i + 1);
        assert_int_equal(g.u.dl_get.out.attempts[i].status, HK_DL_FAILED);
    }
    assert_int_equal(g.u.dl_get.out.completed_at, now + 3000);
    hk_req_clear(&g);
    w = get_webhook(ORG_A, w1);
    assert_int_equal(w->failure_count, 1);
    assert_int_equal(w->consecutive_failures, 1);
    hk_webhook_free(w);
    assert_int_equal(claim_count("node-b", now + 100000), 0);
}

/* Counters: success resets the streak; disable_after final failures in a row -> failed. */
static void test_results_disable_after(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char d[5][HK_ID_MAX];
    for (int i = 0; i < 5; i++) ingest_simple(ORG_A, now, d[i], NULL);
    assert_int_equal(result(w1, d[0], 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 2, now, NULL), 0);
    assert_int_equal(result(w1, d[1], 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 2, now, NULL), 0);
    hk_webhook *w = get_webhook(ORG_A, w1);
    assert_int_equal(w->consecutive_failures, 0);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->failure_count, 1);
    hk_webhook_free(w);
    hk_req out;
    assert_int_equal(result(w1, d[2], 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 2, now, &out), 0);
    assert_int_equal(out.u.results.nchanges, 0);
    hk_req_clear(&out);
    assert_int_equal(result(w1, d[3], 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 2, now, &out), 0);
    assert_int_equal(out.u.results.nchanges, 1);
    assert_string_equal(out.u.results.changes[0].id, w1);
    assert_int_equal(out.u.results.changes[0].status, HK_WH_FAILED);
    hk_req_clear(&out);
    w = get_webhook(ORG_A, w1);
    assert_int_equal(w->status, HK_WH_FAILED);
    assert_int_equal(w->consecutive_failures, 2);
    assert_int_equal(w->failure_count, 3);
    hk_webhook_free(w);
    /* the remaining open row is parked with its webhook */
    hk_req g;
    get_delivery(ORG_A, d[4], &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, 0);
    hk_req_clear(&g);
    assert_int_equal(claim_count("node-a", now + 100000), 0);

    /* several results of one webhook in one request: counted together */
    char w2[HK_ID_MAX];
    const char *ev2[] = {"other.type"};
    mk_webhook(ORG_B, ev2, 1, HK_WH_ACTIVE, w2);
    char e[3][HK_ID_MAX];
    for (int i = 0; i < 3; i++) {
        hk_req r;
        hk_ingest_item it;
        assert_int_equal(ingest(&r, &it, ORG_B, "other.type", "{}", NULL, 0, now), 0);
        hk_strlcpy(e[i], r.u.ingest.queued[0].id, HK_ID_MAX);
        hk_req_clear(&r);
    }
    hk_result rs[3];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 3; i++) {
        hk_strlcpy(rs[i].delivery_id, e[i], HK_ID_MAX);
        hk_strlcpy(rs[i].webhook_id, w2, HK_ID_MAX);
        hk_id_new("what", rs[i].attempt_id);
        rs[i].attempt_number = 1;
        rs[i].status = i == 1 ? HK_DL_SUCCESS : HK_DL_FAILED;
        rs[i].attempt_ok = i == 1;
        rs[i].final = 1;
        rs[i].response_status = i == 1 ? 200 : 500;
        rs[i].request_url = "http://127.0.0.1:9/hook";
        rs[i].started_at = now;
        rs[i].finished_at = now;
    }
    hk_req rq = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
    rq.u.results.items = rs;
    rq.u.results.n = 3;
    rq.u.results.disable_after = 5;
    assert_int_equal(run(&rq), 0);
    hk_req_clear(&rq);
    w = get_webhook(ORG_B, w2);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->failure_count, 2);
    assert_int_equal(w->consecutive_failures, 1); /* the failure after the success */
    assert_int_equal(w->status, HK_WH_ACTIVE);
    hk_webhook_free(w);
}

/* 410 Gone disables the webhook at once. */
static void test_results_gone(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char d1[HK_ID_MAX], d2[HK_ID_MAX];
    ingest_simple(ORG_A, now, d1, NULL);
    ingest_simple(ORG_A, now, d2, NULL);
    hk_req out;
    assert_int_equal(result(w1, d1, 1, HK_DL_FAILED, 0, 1, 1, 0, 0, 0, now, &out), 0);
    assert_int_equal(out.u.results.nchanges, 1);
    assert_int_equal(out.u.results.changes[0].status, HK_WH_DISABLED);
    hk_req_clear(&out);
    hk_webhook *w = get_webhook(ORG_A, w1);
    assert_int_equal(w->status, HK_WH_DISABLED);
    hk_webhook_free(w);
    assert_int_equal(claim_count("node-a", now + 100000), 0);
    /* a disabled webhook gets no new deliveries */
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 10, now), 0);
    assert_int_equal(it.ndeliveries, 0);
    hk_req_clear(&r);
    /* and a replay is refused */
    hk_req rp = {.kind = HK_REQ_REPLAY, .org_id = ORG_A, .node_id = "node-a"};
    rp.u.replay.delivery_id = d1;
    assert_int_equal(run(&rp), HK_ECONFLICT);
    assert_true(rp.err[0] != '\0');
    hk_req_clear(&rp);
}

/* ---- release, reschedule --------------------------------------------------------------------- */

static void test_release_reschedule(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char did[HK_ID_MAX];
    ingest_simple(ORG_A, now, did, NULL);
    assert_int_equal(claim_count("node-a", now), 1);

    hk_release it = {.next_retry_at = now + 5000};
    hk_strlcpy(it.id, did, sizeof it.id);
    /* another node's reschedule changes nothing */
    hk_req rs = {.kind = HK_REQ_RESCHEDULE, .node_id = "node-b", .now = now};
    rs.u.release.items = &it;
    rs.u.release.n = 1;
    assert_int_equal(run(&rs), 0);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, now);
    hk_req_clear(&g);
    /* the holder's: later due time, lease kept */
    rs.node_id = "node-a";
    assert_int_equal(run(&rs), 0);
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, now + 5000);
    hk_req_clear(&g);
    assert_int_equal(claim_count("node-b", now + 10000), 0);
    /* never earlier */
    it.next_retry_at = now + 1000;
    assert_int_equal(run(&rs), 0);
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, now + 5000);
    hk_req_clear(&g);

    /* release by another node: nothing */
    hk_req rl = {.kind = HK_REQ_RELEASE, .node_id = "node-b", .now = now};
    it.next_retry_at = now + 200;
    rl.u.release.items = &it;
    rl.u.release.n = 1;
    assert_int_equal(run(&rl), 0);
    assert_int_equal(claim_count("node-b", now + 10000), 0);
    /* by the holder: claimable at the new due time */
    rl.node_id = "node-a";
    assert_int_equal(run(&rl), 0);
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.next_retry_at, now + 200);
    hk_req_clear(&g);
    assert_int_equal(claim_count("node-b", now + 100), 0);
    assert_int_equal(claim_count("node-b", now + 200), 1);
    /* released with 0: parked, until the webhook is (re)activated */
    rl.node_id = "node-b";
    it.next_retry_at = 0;
    assert_int_equal(run(&rl), 0);
    assert_int_equal(claim_count("node-a", now + 1000000), 0);
    assert_int_equal(set_status(ORG_A, w1, HK_WH_PAUSED), 0);
    assert_int_equal(set_status(ORG_A, w1, HK_WH_ACTIVE), 1);
    assert_int_equal(claim_count("node-a", hk_now_ms() + 1000), 1);
}

/* ---- heartbeats and hand-back ---------------------------------------------------------------- */

/* Two nodes on one handle (node ids on the requests): a node whose heartbeat lapsed loses
 * its leases to the next heartbeat of another. */
static void test_heartbeat_reclaim(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    for (int i = 0; i < 2; i++) ingest_simple(ORG_A, now, NULL, NULL);
    hk_req hb = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-x", .now = now};
    hb.u.heartbeat.alive_until = now + 1000;
    assert_int_equal(run(&hb), 0);
    assert_int_equal(claim_count("node-x", now), 2);

    hk_req ha = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-y", .now = now + 500};
    ha.u.heartbeat.alive_until = now + 10000;
    assert_int_equal(run(&ha), 0);
    assert_int_equal(ha.u.heartbeat.reclaimed, 0); /* node-x is alive */
    assert_int_equal(claim_count("node-y", now + 500), 0);

    hk_req hx = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-x", .now = now + 900};
    hx.u.heartbeat.alive_until = now + 2000; /* kept alive */
    assert_int_equal(run(&hx), 0);
    hk_req hy = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-y", .now = now + 1500};
    hy.u.heartbeat.alive_until = now + 10000;
    assert_int_equal(run(&hy), 0);
    assert_int_equal(hy.u.heartbeat.reclaimed, 0);

    hk_req hy2 = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-y", .now = now + 2500};
    hy2.u.heartbeat.alive_until = now + 10000;
    assert_int_equal(run(&hy2), 0);
    assert_int_equal(hy2.u.heartbeat.reclaimed, 2);
    assert_int_equal(claim_count("node-y", now + 2500), 2);
    hk_req hy3 = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-y", .now = now + 3000};
    hy3.u.heartbeat.alive_until = now + 10000;
    assert_int_equal(run(&hy3), 0);
    assert_int_equal(hy3.u.heartbeat.reclaimed, 0); /* its own leases stay */
}

/* A store opened again by the same node hands back that node's old leases (a restart). */
static void test_restart_hands_back(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 5, now), 0);
    assert_int_equal(r.u.ingest.njobs, 1);
    hk_req_clear(&r);
    assert_int_equal(claim_count("node-a", now + 1000), 0);
    node_close(&F->a);
    node_open(&F->a, "node-a");
    assert_int_equal(claim_count("node-a", now + 1000), 1);
}

/* Two handles on one PostgreSQL database, two nodes: the second's leases come back to the
 * first once its lease time has passed without a heartbeat. SQLite is single-node (one hookd
 * per file): the test does not apply there. */
static void test_two_nodes(void **state)
{
    (void)state;
    if (g_backend != BE_PG) {
        print_message("    (two store handles: PostgreSQL only, SQLite is single-node)\n");
        skip();
    }
    node_open(&F->b, "node-b");
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    hk_ingest_item it = {.type = "order.created", .data = "{}", .data_len = 2, .source = "api"};
    hk_req r = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = F->b.cfg.node_id, .now = now};
    r.u.ingest.items = &it;
    r.u.ingest.n = 1;
    r.u.ingest.lease_budget = 5;
    assert_int_equal(run_on(F->b.st, &r), 0);
    assert_int_equal(r.u.ingest.njobs, 1);
    hk_req_clear(&r);
    /* node-a sees the row, leased: not claimable; node-b is alive (registered at open) */
    assert_int_equal(claim_count("node-a", now + 1000), 0);
    hk_req hb = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-a", .now = now + 1000};
    hb.u.heartbeat.alive_until = now + 31000;
    assert_int_equal(run(&hb), 0);
    assert_int_equal(hb.u.heartbeat.reclaimed, 0);
    /* node-b's lease time (30 s from its open) runs out */
    hk_req hb2 = {.kind = HK_REQ_HEARTBEAT, .node_id = "node-a", .now = now + 40000};
    hb2.u.heartbeat.alive_until = now + 70000;
    assert_int_equal(run(&hb2), 0);
    assert_int_equal(hb2.u.heartbeat.reclaimed, 1);
    assert_int_equal(claim_count("node-a", now + 40000), 1);
}

/* ---- the fan-out cache (rows.h): changes by any writer reach the next ingest --------------- */

/* Runs SQL on the fixture's database through a connection of its own, as another process (or
 * a node of another release) would: sqlite for SQLite, pg for PostgreSQL. */
static void raw_sql(const char *sqlite, const char *pg)
{
    if (g_backend == BE_PG) {
        PGconn *c = PQconnectdb(F->url);
        if (PQstatus(c) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(c));
        PGresult *r = PQexec(c, pg);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", pg, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open(F->db, &db) != SQLITE_OK) fail_msg("open %s", F->db);
    sqlite3_busy_timeout(db, 10000);
    char *err = NULL;
    if (sqlite3_exec(db, sqlite, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sqlite, err);
    sqlite3_close(db);
}

/* The version of org's candidates (0: no row), read the same way. */
static int64_t org_version(const char *org)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COALESCE((SELECT version FROM webhook_org_versions WHERE org_id = '%s'), 0)",
             org);
    int64_t v = -1;
    if (g_backend == BE_PG) {
        PGconn *c = PQconnectdb(F->url);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_open(F->db, &db) != SQLITE_OK) fail_msg("open %s", F->db);
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) fail_msg("%s", sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Ingests one order.created into ORG_A on st with a lease budget of 5: returns the deliveries
 * made, *jobs the ones leased (active webhooks), and the first target's URL in url if given. */
static int ingest_on(hk_store *st, int *jobs, char *url, size_t urllen)
{
    hk_ingest_item it = {.type = "order.created", .data = "{}", .data_len = 2, .source = "api"};
    hk_req r = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = hk_now_ms()};
    r.u.ingest.items = &it;
    r.u.ingest.n = 1;
    r.u.ingest.lease_budget = 5;
    if (run_on(st, &r)) fail_msg("ingest: %d %s", r.rc, r.err);
    int n = it.ndeliveries;
    if (jobs) *jobs = r.u.ingest.njobs;
    if (url) hk_strlcpy(url, r.u.ingest.nwebhooks ? r.u.ingest.webhooks[0]->url : "", urllen);
    hk_req_clear(&r);
    return n;
}

static void test_fanout_cache_other_writers(void **state)
{
    (void)state;
    int pg = g_backend == BE_PG;
    char w1[HK_ID_MAX], sql[600], sql2[600], url[200];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int jobs = 0;
    assert_int_equal(ingest_on(F->a.st, &jobs, NULL, 0), 1); /* loads and caches ORG_A */
    assert_int_equal(jobs, 1);
    int64_t v0 = org_version(ORG_A);
    assert_true(v0 > 0);

    /* what a delivery's result and an ingest write (counters, last_triggered_at) does not move
     * the version: the cache stays */
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 1, hk_now_ms()), 0);
    char did[HK_ID_MAX];
    hk_strlcpy(did, r.u.ingest.jobs[0]->id, sizeof did);
    hk_req_clear(&r);
    assert_int_equal(result(w1, did, 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 0, hk_now_ms(), NULL), 0);
    snprintf(sql, sizeof sql,
             "UPDATE webhook SET success_count = success_count + 5, failure_count = 2, "
             "consecutive_failures = 3, last_triggered_at = %s, recovering = %s WHERE id = '%s'",
             pg ? "now()" : "7", pg ? "true" : "1", w1);
    raw_sql(sql, sql);
    assert_int_equal(org_version(ORG_A), v0);

    /* another writer pauses it: the next ingest parks the delivery (no lease) */
    snprintf(sql, sizeof sql, "UPDATE webhook SET status = 'paused' WHERE id = '%s'", w1);
    raw_sql(sql, sql);
    assert_true(org_version(ORG_A) > v0);
    assert_int_equal(ingest_on(F->a.st, &jobs, NULL, 0), 1);
    assert_int_equal(jobs, 0);
    /* disables it: no delivery; sets it active again: leased */
    snprintf(sql, sizeof sql, "UPDATE webhook SET status = 'disabled' WHERE id = '%s'", w1);
    raw_sql(sql, sql);
    assert_int_equal(ingest_on(F->a.st, &jobs, NULL, 0), 0);
    snprintf(sql, sizeof sql, "UPDATE webhook SET status = 'active' WHERE id = '%s'", w1);
    raw_sql(sql, sql);
    assert_int_equal(ingest_on(F->a.st, &jobs, NULL, 0), 1);
    assert_int_equal(jobs, 1);
    /* its subscriptions: removed, then one wildcard added, disabled, enabled */
    snprintf(sql, sizeof sql, "DELETE FROM webhook_event_subscription WHERE webhook_id = '%s'", w1);
    raw_sql(sql, sql);
    assert_int_equal(ingest_on(F->a.st, NULL, NULL, 0), 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO webhook_event_subscription (id, webhook_id, event_id, is_enabled, "
             "created_at) VALUES ('whsub_raw1', '%s', 'order.*', 1, 0)",
             w1);
    snprintf(sql2, sizeof sql2,
             "INSERT INTO webhook_event_subscription (id, webhook_id, event_id, is_enabled, "
             "created_at) VALUES ('whsub_raw1', '%s', 'order.*', true, now())",
             w1);
    raw_sql(sql, sql2);
    assert_int_equal(ingest_on(F->a.st, NULL, NULL, 0), 1);
    raw_sql("UPDATE webhook_event_subscription SET is_enabled = 0 WHERE id = 'whsub_raw1'",
            "UPDATE webhook_event_subscription SET is_enabled = false WHERE id = 'whsub_raw1'");
    assert_int_equal(ingest_on(F->a.st, NULL, NULL, 0), 0);
    raw_sql("UPDATE webhook_event_subscription SET is_enabled = 1 WHERE id = 'whsub_raw1'",
            "UPDATE webhook_event_subscription SET is_enabled = true WHERE id = 'whsub_raw1'");
    assert_int_equal(ingest_on(F->a.st, NULL, NULL, 0), 1);
    /* its URL: the job's webhook is the new one */
    snprintf(sql, sizeof sql, "UPDATE webhook SET url = 'http://127.0.0.1:9/moved' WHERE id = '%s'",
             w1);
    raw_sql(sql, sql);
    assert_int_equal(ingest_on(F->a.st, &jobs, url, sizeof url), 1);
    assert_string_equal(url, "http://127.0.0.1:9/moved");
    /* deleted by another writer: nothing */
    snprintf(sql, sizeof sql, "UPDATE webhook SET deleted_at = %s WHERE id = '%s'",
             pg ? "now()" : "1", w1);
    raw_sql(sql, sql);
    assert_int_equal(ingest_on(F->a.st, NULL, NULL, 0), 0);

    /* the same connection's own API changes, each seen by the next ingest */
    char w2[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w2);
    assert_int_equal(ingest_on(F->a.st, &jobs, NULL, 0), 1);
    set_status(ORG_A, w2, HK_WH_PAUSED);
    assert_int_equal(ingest_on(F->a.st, &jobs, NULL, 0), 1);
    assert_int_equal(jobs, 0);
    hk_req d = {.kind = HK_REQ_WEBHOOK_DELETE, .org_id = ORG_A};
    d.u.wh_delete.id = w2;
    assert_int_equal(run(&d), 0);
    hk_req_clear(&d);
    assert_int_equal(ingest_on(F->a.st, NULL, NULL, 0), 0);

    if (!pg) return;
    /* PostgreSQL: another node creates a webhook; this node's next ingest delivers to it */
    node_open(&F->b, "node-b");
    hk_webhook_fields f = {0};
    f.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS;
    f.name = "other node";
    f.url = "http://127.0.0.1:9/b";
    f.secret = "whsec_b";
    f.events = EV_ORDER;
    f.nevents = 1;
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A, .node_id = "node-b"};
    c.u.wh_create.f = &f;
    assert_int_equal(run_on(F->b.st, &c), 0);
    hk_req_clear(&c);
    assert_int_equal(ingest_on(F->a.st, &jobs, url, sizeof url), 1);
    assert_string_equal(url, "http://127.0.0.1:9/b");
}

/* ---- replay ---------------------------------------------------------------------------------- */

static void test_replay(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char d[4][HK_ID_MAX];
    for (int i = 0; i < 4; i++) ingest_simple(ORG_A, now + i * 1000, d[i], NULL);
    for (int i = 0; i < 3; i++) /* d0, d1, d2 failed; d3 stays pending */
        assert_int_equal(result(w1, d[i], 1, i == 1 ? HK_DL_SUCCESS : HK_DL_FAILED, i == 1, 1, 0, 0,
                                0, 0, now + 5000, NULL),
                         0);
    hk_req c;
    claim(&c, "node-a", now + 5000, 0, 10); /* d3 leased away */
    hk_req_clear(&c);

    /* one delivery */
    hk_req rp = {.kind = HK_REQ_REPLAY, .org_id = ORG_A, .node_id = "node-a", .now = now + 6000};
    rp.u.replay.delivery_id = d[1];
    assert_int_equal(run(&rp), 0);
    assert_int_equal(rp.u.replay.count, 1);
    assert_non_null(rp.u.replay.webhook);
    assert_string_equal(rp.u.replay.webhook->id, w1);
    char nid[HK_ID_MAX];
    hk_strlcpy(nid, rp.u.replay.new_id, sizeof nid);
    hk_req_clear(&rp);
    hk_req g;
    get_delivery(ORG_A, nid, &g);
    assert_string_equal(g.u.dl_get.out.replay_of, d[1]);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_PENDING);
    assert_int_equal(g.u.dl_get.out.attempt_number, 0);
    assert_int_equal(g.u.dl_get.out.next_retry_at, now + 6000);
    assert_int_equal(g.u.dl_get.out.max_attempts, 3);
    assert_string_equal(g.u.dl_get.out.event_data, "{\"n\":1}");
    hk_req_clear(&g);
    hk_req cl;
    assert_int_equal(claim(&cl, "node-a", now + 6000, 0, 10), 1);
    assert_string_equal(cl.u.claim.jobs[0]->id, nid);
    hk_req_clear(&cl);

    /* unknown, another organization's */
    hk_req ru = {.kind = HK_REQ_REPLAY, .org_id = ORG_A, .node_id = "node-a"};
    ru.u.replay.delivery_id = "whde_unknown";
    assert_int_equal(run(&ru), HK_ENOTFOUND);
    hk_req_clear(&ru);
    hk_req rb = {.kind = HK_REQ_REPLAY, .org_id = ORG_B, .node_id = "node-a"};
    rb.u.replay.delivery_id = d[0];
    assert_int_equal(run(&rb), HK_ENOTFOUND);
    hk_req_clear(&rb);

    /* recover a range: the failed ones created in [since, until) */
    hk_req rr = {.kind = HK_REQ_REPLAY, .org_id = ORG_A, .node_id = "node-a", .now = now + 7000};
    rr.u.replay.webhook_id = w1;
    rr.u.replay.since = now;
    rr.u.replay.until = now + 2000; /* d0 (failed), d1 (success) */
    assert_int_equal(run(&rr), 0);
    assert_int_equal(rr.u.replay.count, 1);
    get_delivery(ORG_A, rr.u.replay.new_id, &g);
    assert_string_equal(g.u.dl_get.out.replay_of, d[0]);
    hk_req_clear(&g);
    hk_req_clear(&rr);
    rr.u.replay.until = 0; /* no end: d0, d2 */
    assert_int_equal(run(&rr), 0);
    assert_int_equal(rr.u.replay.count, 2);
    hk_req_clear(&rr);
    rr.u.replay.since = now + 100000;
    assert_int_equal(run(&rr), 0);
    assert_int_equal(rr.u.replay.count, 0);
    hk_req_clear(&rr);
    hk_req rw = {.kind = HK_REQ_REPLAY, .org_id = ORG_B, .node_id = "node-a"};
    rw.u.replay.webhook_id = w1;
    assert_int_equal(run(&rw), HK_ENOTFOUND);
    hk_req_clear(&rw);

    /* the webhook not active: a conflict, nothing created */
    set_status(ORG_A, w1, HK_WH_PAUSED);
    hk_req rc = {.kind = HK_REQ_REPLAY, .org_id = ORG_A, .node_id = "node-a"};
    rc.u.replay.delivery_id = d[0];
    assert_int_equal(run(&rc), HK_ECONFLICT);
    assert_true(rc.err[0] != '\0');
    hk_req_clear(&rc);
    rr.u.replay.since = 0;
    assert_int_equal(run(&rr), HK_ECONFLICT);
    hk_req_clear(&rr);
    hk_req l = {.kind = HK_REQ_DELIVERY_LIST, .org_id = ORG_A};
    l.u.dl_list.webhook_id = w1;
    l.u.dl_list.status = -1;
    l.u.dl_list.page = 1;
    l.u.dl_list.limit = 50;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.dl_list.total, 4 + 1 + 1 + 2);
    hk_req_clear(&l);
}

/* Event data is kept byte for byte (SPEC: delivered as ingested): spacing, key order, duplicate
 * keys, number spelling, escapes; and the event's source and user. */
static void test_event_bytes_kept(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    const char *data = "{\"b\": 1,  \"a\":1.0e2,\"b\":2,\"s\":\"\\u00e9\\n\\\"\",\"n\":[ ]}";
    int64_t now = hk_now_ms();
    hk_ingest_item it = {.type = "order.created",
                         .data = data,
                         .data_len = strlen(data),
                         .source = "nats",
                         .user_id = "user_9",
                         .idem_key = "bytes"};
    hk_req r = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    r.u.ingest.items = &it;
    r.u.ingest.n = 1;
    r.u.ingest.lease_budget = 1;
    assert_int_equal(run(&r), 0);
    assert_int_equal(r.u.ingest.njobs, 1);
    assert_non_null(strstr(r.u.ingest.jobs[0]->body->data, data));
    char did[HK_ID_MAX];
    hk_strlcpy(did, r.u.ingest.jobs[0]->id, sizeof did);
    hk_req_clear(&r);

    hk_req g = {.kind = HK_REQ_EVENT_GET, .org_id = ORG_A};
    g.u.ev_get.id = it.id;
    assert_int_equal(run(&g), 0);
    assert_string_equal(g.u.ev_get.out.payload, data);
    assert_string_equal(g.u.ev_get.out.source, "nats");
    assert_string_equal(g.u.ev_get.out.user_id, "user_9");
    assert_string_equal(g.u.ev_get.out.idempotency_key, "bytes");
    hk_req_clear(&g);
    hk_req dg;
    get_delivery(ORG_A, did, &dg);
    assert_string_equal(dg.u.dl_get.out.event_data, data);
    assert_int_equal(dg.u.dl_get.out.event_created_at, now);
    hk_req_clear(&dg);
    /* and as a claim renders it, after a hand-back */
    hk_release rel = {.next_retry_at = now};
    hk_strlcpy(rel.id, did, sizeof rel.id);
    hk_req rr = {.kind = HK_REQ_RELEASE, .node_id = "node-a", .now = now};
    rr.u.release.items = &rel;
    rr.u.release.n = 1;
    assert_int_equal(run(&rr), 0);
    hk_req c;
    assert_int_equal(claim(&c, "node-a", now, 0, 10), 1);
    assert_non_null(strstr(c.u.claim.jobs[0]->body->data, data));
    hk_req_clear(&c);
}

/* Orders the API relies on: keys by creation, webhooks, events and deliveries newest first
 * (ties by id, descending); a patch never moves updated_at back. */
static void test_orders(void **state)
{
    (void)state;
    int64_t now = hk_now_ms();
    char keys[3][HK_ID_MAX];
    for (int i = 0; i < 3; i++) {
        char hash[8];
        snprintf(hash, sizeof hash, "h%d", i);
        hk_req c = {.kind = HK_REQ_APIKEY_CREATE, .org_id = ORG_A, .now = now + 10 - i};
        c.u.key_create.name = "k";
        c.u.key_create.key_hash = hash;
        c.u.key_create.prefix = "hk_";
        assert_int_equal(run(&c), 0);
        assert_int_equal(c.u.key_create.out.created_at, now + 10 - i);
        hk_strlcpy(keys[i], c.u.key_create.out.id, HK_ID_MAX);
        hk_req_clear(&c);
    }
    hk_req l = {.kind = HK_REQ_APIKEY_LIST};
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.key_list.n, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(l.u.key_list.items[i].id, keys[2 - i]);
    hk_req_clear(&l);

    /* events with the same created_at: by id, descending */
    char ev[4][HK_ID_MAX];
    for (int i = 0; i < 4; i++) {
        hk_req r;
        hk_ingest_item it;
        assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 0, now), 0);
        hk_strlcpy(ev[i], it.id, HK_ID_MAX);
        hk_req_clear(&r);
    }
    hk_req el = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
    el.u.ev_list.page = 1;
    el.u.ev_list.limit = 10;
    assert_int_equal(run(&el), 0);
    assert_int_equal(el.u.ev_list.n, 4);
    for (int i = 1; i < 4; i++)
        assert_true(strcmp(el.u.ev_list.items[i - 1].id, el.u.ev_list.items[i].id) > 0);
    hk_req_clear(&el);

    char w[3][HK_ID_MAX];
    for (int i = 0; i < 3; i++) {
        hk_webhook_fields f = {.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS,
                               .name = "o",
                               .url = "http://127.0.0.1:9/",
                               .secret = "s",
                               .events = EV_ORDER,
                               .nevents = 1};
        hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A, .now = now + i};
        c.u.wh_create.f = &f;
        assert_int_equal(run(&c), 0);
        assert_int_equal(c.u.wh_create.out->created_at, now + i);
        assert_int_equal(c.u.wh_create.out->updated_at, now + i);
        hk_strlcpy(w[i], c.u.wh_create.out->id, HK_ID_MAX);
        hk_req_clear(&c);
    }
    hk_req wl = {.kind = HK_REQ_WEBHOOK_LIST, .org_id = ORG_A};
    wl.u.wh_list.status = -1;
    wl.u.wh_list.page = 1;
    wl.u.wh_list.limit = 10;
    assert_int_equal(run(&wl), 0);
    for (int i = 0; i < 3; i++) assert_string_equal(wl.u.wh_list.items[i]->id, w[2 - i]);
    hk_req_clear(&wl);

    /* a patch with an earlier clock: updated_at still moves forward */
    hk_webhook_fields pf = {.has = HK_WF_NAME, .name = "later"};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A, .now = now - 1000};
    p.u.wh_patch.id = w[2];
    p.u.wh_patch.f = &pf;
    assert_int_equal(run(&p), 0);
    assert_int_equal(p.u.wh_patch.out->updated_at, now + 3);
    assert_int_equal(p.u.wh_patch.out->created_at, now + 2);
    hk_req_clear(&p);
}

/* Secret rotation: the old secret signs on until prev_expires_at; 0 drops it at once. */
static void test_secret_rotation(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    hk_webhook_fields f = {.has = HK_WF_SECRET | HK_WF_ROTATE,
                           .secret = "whsec_new",
                           .prev_expires_at = now + 3600000};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A, .now = now};
    p.u.wh_patch.id = w1;
    p.u.wh_patch.f = &f;
    assert_int_equal(run(&p), 0);
    assert_string_equal(p.u.wh_patch.out->secret, "whsec_new");
    assert_string_equal(p.u.wh_patch.out->prev_secret, "whsec_test");
    assert_int_equal(p.u.wh_patch.out->prev_secret_expires_at, now + 3600000);
    hk_req_clear(&p);
    f.secret = "whsec_third";
    f.prev_expires_at = 0;
    assert_int_equal(run(&p), 0);
    assert_string_equal(p.u.wh_patch.out->secret, "whsec_third");
    assert_null(p.u.wh_patch.out->prev_secret);
    assert_int_equal(p.u.wh_patch.out->prev_secret_expires_at, 0);
    hk_req_clear(&p);
    /* a plain secret change (no rotation) leaves no previous secret */
    hk_webhook_fields f2 = {.has = HK_WF_SECRET, .secret = "whsec_fourth"};
    p.u.wh_patch.f = &f2;
    assert_int_equal(run(&p), 0);
    assert_string_equal(p.u.wh_patch.out->secret, "whsec_fourth");
    assert_null(p.u.wh_patch.out->prev_secret);
    hk_req_clear(&p);
}

/* Results requests and a failing request in one group: each results request keeps its attempts
 * and its share of the webhook's counters (PostgreSQL adds them up at pre-commit), the failing
 * request is undone alone. */
static void test_group_results(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    mk_filtered_webhook(ORG_A);
    int64_t now = hk_now_ms();
    char d[3][HK_ID_MAX];
    for (int i = 0; i < 3; i++) ingest_simple(ORG_A, now, d[i], NULL);
    hk_result res[3];
    memset(res, 0, sizeof res);
    for (int i = 0; i < 3; i++) {
        hk_result *x = &res[i];
        hk_strlcpy(x->delivery_id, d[i], HK_ID_MAX);
        hk_strlcpy(x->webhook_id, w1, HK_ID_MAX);
        hk_id_new("what", x->attempt_id);
        x->attempt_number = 1;
        x->status = i == 2 ? HK_DL_FAILED : HK_DL_SUCCESS;
        x->attempt_ok = i != 2;
        x->final = 1;
        x->response_status = i == 2 ? 500 : 200;
        x->request_url = "http://127.0.0.1:9/hook";
        x->started_at = x->finished_at = now;
    }
    hk_ingest_item badpair[2] = {
        {.type = "order.created", .data = "{}", .data_len = 2, .source = "api"},
        {.type = "order.created", .data = "[]", .data_len = 2, .source = "api"},
    };
    hk_req bad = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    bad.u.ingest.items = badpair;
    bad.u.ingest.n = 2;
    hk_req q[3];
    memset(q, 0, sizeof q);
    for (int i = 0; i < 3; i++) {
        q[i].kind = HK_REQ_RESULTS;
        q[i].node_id = "node-a";
        q[i].now = now;
        q[i].u.results.items = &res[i];
        q[i].u.results.n = 1;
        q[i].u.results.disable_after = 2;
    }
    hk_req *all[] = {&q[0], &bad, &q[1], &q[2]};
    submit_all(F->a.st, all, 4);
    assert_int_equal(bad.rc, HK_EINVAL);
    hk_req_clear(&bad);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q[i].rc, 0);
        assert_int_equal(q[i].u.results.nchanges, 0);
        hk_req_clear(&q[i]);
    }
    for (int i = 0; i < 3; i++) {
        hk_req g;
        get_delivery(ORG_A, d[i], &g);
        assert_int_equal(g.u.dl_get.out.status, i == 2 ? HK_DL_FAILED : HK_DL_SUCCESS);
        assert_int_equal(g.u.dl_get.out.nattempts, 1);
        hk_req_clear(&g);
    }
    hk_webhook *w = get_webhook(ORG_A, w1);
    assert_int_equal(w->status, HK_WH_ACTIVE);
    assert_int_equal(w->success_count, 2);
    assert_int_equal(w->failure_count, 1);
    assert_int_equal(w->consecutive_failures, 1);
    hk_webhook_free(w);
    hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
    l.u.ev_list.page = 1;
    l.u.ev_list.limit = 10;
    l.u.ev_list.type = "order.created";
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, 3); /* nothing of the bad ingest */
    hk_req_clear(&l);
    /* the final failure's operational event, once (store/opevents.h) */
    l.u.ev_list.type = "hookd.delivery.exhausted";
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, 1);
    hk_req_clear(&l);
}

/* The events of type t in org: how many, and the webhook ids of the first one's deliveries
 * (at most 4, "" after the last). */
static int64_t events_of(const char *org, const char *t, char dl_wh[4][HK_ID_MAX])
{
    hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = org};
    l.u.ev_list.type = t;
    l.u.ev_list.page = 1;
    l.u.ev_list.limit = 10;
    if (run(&l)) fail_msg("event list: %d", l.rc);
    int64_t n = l.u.ev_list.total;
    for (int i = 0; dl_wh && i < 4; i++) dl_wh[i][0] = '\0';
    if (dl_wh && l.u.ev_list.n > 0) {
        hk_req g = {.kind = HK_REQ_EVENT_GET, .org_id = org};
        g.u.ev_get.id = l.u.ev_list.items[0].id;
        if (run(&g)) fail_msg("event get: %d", g.rc);
        assert_string_equal(g.u.ev_get.out.source, "hookd");
        for (int i = 0; i < g.u.ev_get.out.ndeliveries && i < 4; i++)
            hk_strlcpy(dl_wh[i], g.u.ev_get.out.deliveries[i].webhook_id, HK_ID_MAX);
        hk_req_clear(&g);
    }
    hk_req_clear(&l);
    return n;
}

/* Operational events (store/opevents.h), the same on every backend: a 410 result writes one
 * hookd.delivery.exhausted and one hookd.webhook.disabled with the results, delivered to the
 * hookd.* subscriber and not to the webhook they are about; the same result written again
 * writes nothing more; a manual disable (patch) writes one more hookd.webhook.disabled. */
static void test_operational_events(void **state)
{
    (void)state;
    static const char *const ops_ev[] = {"hookd.*"};
    static const char *const w_ev[] = {"order.created", "hookd.*"};
    char ops[HK_ID_MAX], w1[HK_ID_MAX], dl[4][HK_ID_MAX];
    mk_webhook(ORG_A, ops_ev, 1, HK_WH_ACTIVE, ops);
    mk_webhook(ORG_A, w_ev, 2, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char did[HK_ID_MAX];
    ingest_simple(ORG_A, now, did, NULL);
    hk_req out;
    assert_int_equal(result(w1, did, 1, HK_DL_FAILED, 0, 1, 1, 0, 0, 0, now, &out), 0);
    assert_int_equal(out.u.results.nchanges, 1);
    assert_int_equal(out.u.results.emitted, 2); /* one delivery of each event, due now */
    hk_req_clear(&out);
    assert_int_equal(events_of(ORG_A, "hookd.delivery.exhausted", dl), 1);
    assert_string_equal(dl[0], ops);
    assert_string_equal(dl[1], "");
    assert_int_equal(events_of(ORG_A, "hookd.webhook.disabled", dl), 1);
    assert_string_equal(dl[0], ops);
    assert_string_equal(dl[1], "");
    /* the same attempt again (another attempt id): a no-op, nothing emitted */
    assert_int_equal(result(w1, did, 1, HK_DL_FAILED, 0, 1, 1, 0, 0, 0, now, &out), 0);
    assert_int_equal(out.u.results.emitted, 0);
    hk_req_clear(&out);
    assert_int_equal(events_of(ORG_A, "hookd.delivery.exhausted", NULL), 1);
    assert_int_equal(events_of(ORG_A, "hookd.webhook.disabled", NULL), 1);
    /* a manual disable of the subscriber: announced, to nobody (w1 is disabled) */
    hk_webhook_fields f = {.has = HK_WF_STATUS, .status = HK_WH_DISABLED};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A, .now = now};
    p.u.wh_patch.id = ops;
    p.u.wh_patch.f = &f;
    assert_int_equal(run(&p), 0);
    assert_int_equal(p.u.wh_patch.emitted, 0);
    hk_req_clear(&p);
    assert_int_equal(events_of(ORG_A, "hookd.webhook.disabled", NULL), 2);
    assert_int_equal(events_of(ORG_A, "order.created", NULL), 1);
}

/* A results request written again (the dispatcher submits a batch again after any failure, and
 * a commit whose answer was lost may have been stored): a result whose attempt is stored already
 * (same attempt id, or same delivery and attempt number) is a no-op on both backends. The
 * request succeeds (a batch that always fails would stall the dispatcher, which starts no
 * attempt while results are stuck), no attempt row is added, the delivery stays as it is, and
 * the webhook's successCount, failureCount and consecutiveFailures count only the attempts
 * stored. (Both differed once: SQLite failed the request with a conflict; PostgreSQL counted
 * the repeated result again.) */
static void test_results_repeated(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char did[HK_ID_MAX];
    ingest_simple(ORG_A, now, did, NULL);
    hk_result x = {0};
    hk_strlcpy(x.delivery_id, did, HK_ID_MAX);
    hk_strlcpy(x.webhook_id, w1, HK_ID_MAX);
    hk_id_new("what", x.attempt_id);
    x.attempt_number = 1;
    x.status = HK_DL_SUCCESS;
    x.attempt_ok = 1;
    x.final = 1;
    x.response_status = 200;
    x.request_url = "http://127.0.0.1:9/hook";
    x.started_at = x.finished_at = now;
    hk_req q = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
    q.u.results.items = &x;
    q.u.results.n = 1;
    assert_int_equal(run(&q), 0);
    hk_req_clear(&q);
    /* the same request again (same attempt id), twice */
    for (int k = 0; k < 2; k++) {
        int rc = run(&q);
        if (rc) fail_msg("a repeated results request fails: %d (%s)", rc, q.err);
        hk_req_clear(&q);
    }
    /* the same attempt number of the same delivery under another attempt id */
    assert_int_equal(result(w1, did, 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now, NULL), 0);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_SUCCESS);
    assert_int_equal(g.u.dl_get.out.nattempts, 1);
    hk_req_clear(&g);
    hk_webhook *w = get_webhook(ORG_A, w1);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->failure_count, 0);
    hk_webhook_free(w);

    /* final failures repeated: counted once in failureCount and consecutiveFailures */
    char d2[HK_ID_MAX];
    ingest_simple(ORG_A, now, d2, NULL);
    x.attempt_number = 1;
    hk_strlcpy(x.delivery_id, d2, HK_ID_MAX);
    hk_id_new("what", x.attempt_id);
    x.status = HK_DL_FAILED;
    x.attempt_ok = 0;
    x.response_status = 500;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(run(&q), 0);
        hk_req_clear(&q);
    }
    assert_int_equal(result(w1, d2, 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 0, now, NULL), 0);
    w = get_webhook(ORG_A, w1);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->failure_count, 1);
    assert_int_equal(w->consecutive_failures, 1);
    hk_webhook_free(w);
    get_delivery(ORG_A, d2, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_FAILED);
    assert_int_equal(g.u.dl_get.out.nattempts, 1);
    hk_req_clear(&g);

    /* a repeated retry result leaves the open delivery as the first one left it */
    char d3[HK_ID_MAX];
    ingest_simple(ORG_A, now, d3, NULL);
    assert_int_equal(result(w1, d3, 1, HK_DL_RETRYING, 0, 0, 0, now + 60000, 0, 0, now, NULL), 0);
    hk_strlcpy(x.delivery_id, d3, HK_ID_MAX);
    hk_id_new("what", x.attempt_id);
    x.status = HK_DL_SUCCESS; /* a different outcome under the same attempt number */
    x.attempt_ok = 1;
    x.response_status = 200;
    assert_int_equal(run(&q), 0);
    hk_req_clear(&q);
    get_delivery(ORG_A, d3, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_RETRYING);
    assert_int_equal(g.u.dl_get.out.response_status, 500);
    assert_int_equal(g.u.dl_get.out.nattempts, 1);
    hk_req_clear(&g);
    w = get_webhook(ORG_A, w1);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->consecutive_failures, 1);
    hk_webhook_free(w);
    /* the same result twice in one request (and the same attempt number under another id):
     * the first is recorded and counted, the others are no-ops */
    char d4[HK_ID_MAX];
    ingest_simple(ORG_A, now, d4, NULL);
    hk_result three[3];
    for (int k = 0; k < 3; k++) {
        three[k] = x;
        hk_strlcpy(three[k].delivery_id, d4, HK_ID_MAX);
        three[k].status = HK_DL_FAILED;
        three[k].attempt_ok = 0;
        three[k].response_status = 500 + k;
    }
    hk_id_new("what", three[0].attempt_id);
    hk_strlcpy(three[1].attempt_id, three[0].attempt_id, HK_ID_MAX);
    hk_id_new("what", three[2].attempt_id);
    three[2].status = HK_DL_SUCCESS;
    three[2].attempt_ok = 1;
    hk_req q3 = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
    q3.u.results.items = three;
    q3.u.results.n = 3;
    assert_int_equal(run(&q3), 0);
    hk_req_clear(&q3);
    get_delivery(ORG_A, d4, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_FAILED);
    assert_int_equal(g.u.dl_get.out.response_status, 500);
    assert_int_equal(g.u.dl_get.out.nattempts, 1);
    hk_req_clear(&g);
    w = get_webhook(ORG_A, w1);
    assert_int_equal(w->success_count, 1);
    assert_int_equal(w->failure_count, 2);
    assert_int_equal(w->consecutive_failures, 2);
    hk_webhook_free(w);
    /* and the next attempt number is recorded as usual */
    assert_int_equal(result(w1, d3, 2, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now, NULL), 0);
    get_delivery(ORG_A, d3, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_SUCCESS);
    assert_int_equal(g.u.dl_get.out.nattempts, 2);
    hk_req_clear(&g);
    w = get_webhook(ORG_A, w1);
    assert_int_equal(w->success_count, 2);
    assert_int_equal(w->failure_count, 2);
    assert_int_equal(w->consecutive_failures, 0);
    hk_webhook_free(w);
}

/* A result for a delivery that is no longer open (say its webhook was deleted while the attempt
 * was in flight): the delivery stays as it ended. */
static void test_results_late(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    char did[HK_ID_MAX];
    ingest_simple(ORG_A, now, did, NULL);
    assert_int_equal(claim_count("node-a", now), 1);
    hk_req d = {.kind = HK_REQ_WEBHOOK_DELETE, .org_id = ORG_A, .now = now + 1};
    d.u.wh_delete.id = w1;
    assert_int_equal(run(&d), 0);
    assert_int_equal(d.u.wh_delete.failed, 1);
    hk_req out;
    assert_int_equal(result(w1, did, 1, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 1, now + 2, &out), 0);
    assert_int_equal(out.u.results.nchanges, 0);
    hk_req_clear(&out);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_int_equal(g.u.dl_get.out.status, HK_DL_FAILED);
    assert_int_equal(g.u.dl_get.out.nattempts, 1); /* the attempt was made: recorded */
    hk_req_clear(&g);
    const char *ids[] = {w1};
    hk_req ld = {.kind = HK_REQ_WEBHOOK_LOAD};
    ld.u.wh_load.ids = ids;
    ld.u.wh_load.nids = 1;
    assert_int_equal(run(&ld), 0);
    assert_int_equal(ld.u.wh_load.n, 1); /* load returns deleted webhooks, marked */
    assert_true(ld.u.wh_load.items[0]->deleted_at > 0);
    assert_int_equal(ld.u.wh_load.items[0]->success_count, 1);
    hk_req_clear(&ld);
}

/* The synchronous store (base NULL: the CLI's key commands) runs requests with hk_store_exec on
 * the calling thread, each in its own transaction; a failing one stores nothing. */
static void test_sync_exec(void **state)
{
    (void)state;
    node_open_mode(&F->b, "node-cli", 1);
    hk_req c = {.kind = HK_REQ_APIKEY_ENSURE, .org_id = ORG_A};
    c.u.key_create.name = "cli";
    c.u.key_create.key_hash = "cccc";
    c.u.key_create.prefix = "hk_cc";
    assert_int_equal(hk_store_exec(F->b.st, &c), 0);
    assert_int_equal(c.u.key_create.created, 1);
    char kid[HK_ID_MAX];
    hk_strlcpy(kid, c.u.key_create.out.id, sizeof kid);
    hk_req_clear(&c);
    c.u.key_create.created = 0; /* an output hk_req_clear leaves (not allocated) */
    assert_int_equal(hk_store_exec(F->b.st, &c), 0);
    assert_int_equal(c.u.key_create.created, 0);
    hk_req_clear(&c);
    hk_req n = {.kind = HK_REQ_APIKEY_COUNT};
    assert_int_equal(hk_store_exec(F->b.st, &n), 0);
    assert_int_equal(n.u.key_count.count, 1);
    hk_req rv = {.kind = HK_REQ_APIKEY_REVOKE};
    rv.u.key_revoke.id = "key_unknown";
    assert_int_equal(hk_store_exec(F->b.st, &rv), HK_ENOTFOUND);
    hk_webhook_fields f = {.has = HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS,
                           .name = "n",
                           .url = "http://127.0.0.1:9/",
                           .secret = "s",
                           .events = EV_ORDER,
                           .nevents = 1};
    hk_req wc = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A};
    wc.u.wh_create.f = &f;
    wc.u.wh_create.max_per_org = 1;
    assert_int_equal(hk_store_exec(F->b.st, &wc), 0);
    hk_req_clear(&wc);
    assert_int_equal(hk_store_exec(F->b.st, &wc), HK_ELIMIT);
    assert_null(wc.u.wh_create.out);
    /* the asynchronous store sees what it committed */
    hk_req l = {.kind = HK_REQ_APIKEY_LIST};
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.key_list.n, 1);
    assert_string_equal(l.u.key_list.items[0].id, kid);
    hk_req_clear(&l);
    hk_req wl = {.kind = HK_REQ_WEBHOOK_LIST, .org_id = ORG_A};
    wl.u.wh_list.status = -1;
    wl.u.wh_list.page = 1;
    wl.u.wh_list.limit = 10;
    assert_int_equal(run(&wl), 0);
    assert_int_equal(wl.u.wh_list.total, 1);
    hk_req_clear(&wl);
}

/* With WEBHOOK_ENCRYPTION_KEY callers still see plaintext everywhere: secrets (and the previous
 * one), custom header values, the static request headers a delivery records. */
static void test_encrypted(void **state)
{
    (void)state;
    node_close(&F->a);
    g_enc_key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    node_open(&F->a, "node-a");
    g_enc_key = NULL;
    hk_webhook_fields f = {.has =
                               HK_WF_NAME | HK_WF_URL | HK_WF_SECRET | HK_WF_EVENTS | HK_WF_HEADERS,
                           .name = "e",
                           .url = "http://127.0.0.1:9/",
                           .secret = "whsec_plain",
                           .events = EV_ORDER,
                           .nevents = 1,
                           .custom_headers = "{\"X-Token\":\"tok\"}"};
    hk_req c = {.kind = HK_REQ_WEBHOOK_CREATE, .org_id = ORG_A};
    c.u.wh_create.f = &f;
    assert_int_equal(run(&c), 0);
    char wid[HK_ID_MAX];
    hk_strlcpy(wid, c.u.wh_create.out->id, sizeof wid);
    assert_string_equal(c.u.wh_create.out->secret, "whsec_plain");
    assert_non_null(strstr(c.u.wh_create.out->custom_headers, "\"tok\""));
    hk_req_clear(&c);
    hk_webhook_fields rot = {.has = HK_WF_SECRET | HK_WF_ROTATE,
                             .secret = "whsec_next",
                             .prev_expires_at = hk_now_ms() + 60000};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    p.u.wh_patch.id = wid;
    p.u.wh_patch.f = &rot;
    assert_int_equal(run(&p), 0);
    hk_req_clear(&p);
    hk_webhook *w = get_webhook(ORG_A, wid);
    assert_string_equal(w->secret, "whsec_next");
    assert_string_equal(w->prev_secret, "whsec_plain");
    assert_non_null(strstr(w->custom_headers, "\"tok\""));
    hk_webhook_free(w);

    int64_t now = hk_now_ms();
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "order.created", "{}", NULL, 1, now), 0);
    assert_int_equal(r.u.ingest.njobs, 1);
    assert_string_equal(r.u.ingest.webhooks[0]->secret, "whsec_next");
    char did[HK_ID_MAX];
    hk_strlcpy(did, r.u.ingest.jobs[0]->id, sizeof did);
    hk_req_clear(&r);
    const char *stat = "{\"X-Token\":\"tok\"}";
    hk_blob *blob = hk_blob_new(stat, strlen(stat));
    hk_result x = {0};
    hk_strlcpy(x.delivery_id, did, HK_ID_MAX);
    hk_strlcpy(x.webhook_id, wid, HK_ID_MAX);
    hk_id_new("what", x.attempt_id);
    x.attempt_number = 1;
    x.status = HK_DL_SUCCESS;
    x.attempt_ok = 1;
    x.final = 1;
    x.response_status = 200;
    x.request_url = "http://127.0.0.1:9/";
    x.request_headers = "{\"X-Delivery-Id\":\"d\"}";
    x.headers_static = blob;
    hk_headers_ref(&F->a.cfg, stat, strlen(stat), x.headers_ref);
    x.started_at = x.finished_at = now;
    hk_req q = {.kind = HK_REQ_RESULTS, .node_id = "node-a", .now = now};
    q.u.results.items = &x;
    q.u.results.n = 1;
    assert_int_equal(run(&q), 0);
    hk_req_clear(&q);
    hk_blob_unref(blob);
    hk_req g;
    get_delivery(ORG_A, did, &g);
    assert_non_null(strstr(g.u.dl_get.out.request_headers, "\"X-Token\":\"tok\""));
    assert_non_null(strstr(g.u.dl_get.out.request_headers, "X-Delivery-Id"));
    hk_req_clear(&g);
}

/* Edges the API leans on: a key hash is unique; a subscription list keeps its order and its
 * first copy of a repeated entry; a cursor the backend did not write is refused; an empty
 * subscription list subscribes to nothing. */
static void test_edges(void **state)
{
    (void)state;
    hk_req c = {.kind = HK_REQ_APIKEY_CREATE, .org_id = ORG_A};
    c.u.key_create.name = "k";
    c.u.key_create.key_hash = "dup";
    c.u.key_create.prefix = "hk_";
    assert_int_equal(run(&c), 0);
    hk_req_clear(&c);
    c.org_id = ORG_B;
    assert_int_equal(run(&c), HK_ECONFLICT);
    hk_req_clear(&c);
    hk_req n = {.kind = HK_REQ_APIKEY_COUNT};
    assert_int_equal(run(&n), 0);
    assert_int_equal(n.u.key_count.count, 1);

    const char *evs[] = {"z.last", "a.first", "z.last", "m.*"};
    char wid[HK_ID_MAX];
    mk_webhook(ORG_A, evs, 4, HK_WH_ACTIVE, wid);
    hk_webhook *w = get_webhook(ORG_A, wid);
    assert_int_equal(w->nevents, 3);
    assert_string_equal(w->events[0], "z.last");
    assert_string_equal(w->events[1], "a.first");
    assert_string_equal(w->events[2], "m.*");
    hk_webhook_free(w);
    hk_webhook_fields pf = {.has = HK_WF_EVENTS, .events = NULL, .nevents = 0};
    hk_req p = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    p.u.wh_patch.id = wid;
    p.u.wh_patch.f = &pf;
    assert_int_equal(run(&p), 0);
    assert_int_equal(p.u.wh_patch.out->nevents, 0);
    hk_req_clear(&p);
    hk_req r;
    hk_ingest_item it;
    assert_int_equal(ingest(&r, &it, ORG_A, "z.last", "{}", NULL, 0, hk_now_ms()), 0);
    assert_int_equal(it.ndeliveries, 0);
    hk_req_clear(&r);

    hk_req sc = {.kind = HK_REQ_DUE_SCAN};
    sc.u.due_scan.until = hk_now_ms();
    sc.u.due_scan.limit = 10;
    hk_strlcpy(sc.u.due_scan.cursor, "not:a:cursor", sizeof sc.u.due_scan.cursor);
    assert_int_equal(run(&sc), HK_EINVAL);
    hk_req_clear(&sc);
}

/* ---- group commit ---------------------------------------------------------------------------- */

/* Write requests waiting together commit in one transaction; a request that fails inside the
 * group is undone alone, whatever it had written, and the others stay. */
static void test_group_commit(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    int64_t now = hk_now_ms();
    enum { N = 60 };
    /* a first, big write keeps the writer busy while the rest queue up behind it */
    hk_ingest_item *big = calloc(400, sizeof *big);
    for (int i = 0; i < 400; i++) {
        big[i].type = "order.created";
        big[i].data = "{\"big\":true}";
        big[i].data_len = strlen(big[i].data);
        big[i].source = "api";
    }
    hk_req *reqs[N + 3];
    hk_req blocker = {.kind = HK_REQ_INGEST, .org_id = ORG_B, .node_id = "node-a", .now = now};
    blocker.u.ingest.items = big;
    blocker.u.ingest.n = 400;
    char wb[HK_ID_MAX];
    mk_webhook(ORG_B, EV_ORDER, 1, HK_WH_ACTIVE, wb);
    hk_ingest_item items[N];
    hk_req r[N];
    char keys[N][32];
    memset(items, 0, sizeof items);
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "g-%d", i);
        items[i].type = "order.created";
        items[i].data = "{}";
        items[i].data_len = 2;
        items[i].idem_key = keys[i];
        items[i].source = "api";
        r[i].kind = HK_REQ_INGEST;
        r[i].org_id = ORG_A;
        r[i].node_id = "node-a";
        r[i].now = now;
        r[i].u.ingest.items = &items[i];
        r[i].u.ingest.n = 1;
    }
    /* in the middle: an ingest whose first item is fine and whose second is not (its event
     * and delivery of the first item must be undone), and a patch of an unknown webhook */
    hk_ingest_item badpair[2] = {
        {.type = "order.created",
         .data = "{}",
         .data_len = 2,
         .idem_key = "bad-1",
         .source = "api"},
        {.type = "order.created", .data = "nope", .data_len = 4, .source = "api"},
    };
    mk_filtered_webhook(ORG_A); /* so that the bad data is read, and refused */
    hk_req bad = {.kind = HK_REQ_INGEST, .org_id = ORG_A, .node_id = "node-a", .now = now};
    bad.u.ingest.items = badpair;
    bad.u.ingest.n = 2;
    hk_webhook_fields pf = {.has = HK_WF_NAME, .name = "x"};
    hk_req badpatch = {.kind = HK_REQ_WEBHOOK_PATCH, .org_id = ORG_A};
    badpatch.u.wh_patch.id = "wh_unknown";
    badpatch.u.wh_patch.f = &pf;
    int k = 0;
    reqs[k++] = &blocker;
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            reqs[k++] = &bad;
            reqs[k++] = &badpatch;
        }
        reqs[k++] = &r[i];
    }
    int64_t c0 = hk_store_commits(F->a.st);
    submit_all(F->a.st, reqs, k);
    int64_t commits = hk_store_commits(F->a.st) - c0;
    print_message("    %d write requests, %lld commits\n", k, (long long)commits);
    assert_true(commits >= 1);
    assert_true(commits <= k / 4); /* one per request would be k (63) */
    assert_int_equal(blocker.rc, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_int_equal(items[i].duplicate, 0);
        assert_int_equal(items[i].ndeliveries, 1);
        assert_int_equal(r[i].u.ingest.nqueued, 1);
        hk_req_clear(&r[i]);
    }
    assert_int_equal(bad.rc, HK_EINVAL);
    assert_int_equal(badpatch.rc, HK_ENOTFOUND);
    hk_req_clear(&blocker);
    hk_req_clear(&bad);
    hk_req_clear(&badpatch);
    free(big);

    /* everything of the good requests is there, nothing of the bad one */
    hk_req l = {.kind = HK_REQ_EVENT_LIST, .org_id = ORG_A};
    l.u.ev_list.page = 1;
    l.u.ev_list.limit = 500;
    assert_int_equal(run(&l), 0);
    assert_int_equal(l.u.ev_list.total, N);
    for (int i = 0; i < l.u.ev_list.n; i++)
        assert_true(!l.u.ev_list.items[i].idempotency_key ||
                    strcmp(l.u.ev_list.items[i].idempotency_key, "bad-1") != 0);
    hk_req_clear(&l);
    hk_req s = {.kind = HK_REQ_DUE_SCAN};
    s.u.due_scan.until = now + 1000;
    s.u.due_scan.limit = 1000;
    assert_int_equal(run(&s), 0);
    assert_int_equal(s.u.due_scan.n, N + 400);
    hk_req_clear(&s);
    /* the undone request's key is free; the good ones' keys are taken */
    hk_req r2;
    hk_ingest_item it;
    assert_int_equal(ingest(&r2, &it, ORG_A, "order.created", "{}", "bad-1", 0, now), 0);
    assert_int_equal(it.duplicate, 0);
    hk_req_clear(&r2);
    assert_int_equal(ingest(&r2, &it, ORG_A, "order.created", "{}", "g-7", 0, now), 0);
    assert_int_equal(it.duplicate, 1);
    hk_req_clear(&r2);
}

/* Reads and writes submitted together all complete, each with its own answer. */
static void test_mixed_submit(void **state)
{
    (void)state;
    char w1[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w1);
    hk_req g[10], p = {.kind = HK_REQ_PING};
    hk_req *all[11];
    for (int i = 0; i < 10; i++) {
        memset(&g[i], 0, sizeof g[i]);
        g[i].kind = HK_REQ_WEBHOOK_GET;
        g[i].org_id = i % 2 ? ORG_A : ORG_B;
        g[i].u.wh_get.id = w1;
        all[i] = &g[i];
    }
    all[10] = &p;
    submit_all(F->a.st, all, 11);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(g[i].rc, i % 2 ? 0 : HK_ENOTFOUND);
        hk_req_clear(&g[i]);
    }
    assert_int_equal(p.rc, 0);
    assert_int_equal(hk_store_queued(F->a.st), 0);
}

/* ---- the table ------------------------------------------------------------------------------- */

/* ---- retention (HK_REQ_PRUNE) -----------------------------------------------------------------
 */

static hk_req prune_run(int64_t dl_cut, int64_t ev_cut, int limit, int dry)
{
    hk_req r = {.kind = HK_REQ_PRUNE, .now = hk_now_ms()};
    r.u.prune.dl_cut = dl_cut;
    r.u.prune.ev_cut = ev_cut;
    r.u.prune.limit = limit;
    r.u.prune.dry_run = dry;
    r.u.prune.vacuum_pages = 1000;
    if (run(&r)) fail_msg("prune: %d %s", r.rc, r.err);
    return r;
}

static int event_exists(const char *eid)
{
    hk_req g = {.kind = HK_REQ_EVENT_GET, .org_id = ORG_A};
    g.u.ev_get.id = eid;
    int rc = run(&g);
    hk_req_clear(&g);
    return rc == 0;
}

/* Finished deliveries before the cut-off go with their attempts, then their events once none
 * is left; open ones (parked or due) and their events stay; events with no delivery go after
 * ev_cut, scanned from a position the store keeps; a dry run counts exactly what a full prune
 * then deletes; steps are bounded by limit and say `more` while work is left. */
static void test_prune(void **state)
{
    (void)state;
    static const char *const EV_DONE[] = {"t.done"}, *const EV_BOTH[] = {"t.done", "t.held"};
    char done[HK_ID_MAX], held[HK_ID_MAX];
    mk_webhook(ORG_A, EV_DONE, 1, HK_WH_ACTIVE, done);
    mk_webhook(ORG_A, EV_BOTH + 1, 1, HK_WH_PAUSED, held);
    int64_t now = hk_now_ms();
    char ev_done[3][HK_ID_MAX], ev_open[HK_ID_MAX], ev_none[HK_ID_MAX];
    hk_req r;
    hk_ingest_item it;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ingest(&r, &it, ORG_A, "t.done", "{}", NULL, 10, now), 0);
        hk_strlcpy(ev_done[i], it.id, HK_ID_MAX);
        assert_int_equal(r.u.ingest.njobs, 1);
        char did[HK_ID_MAX];
        hk_strlcpy(did, r.u.ingest.jobs[0]->id, HK_ID_MAX);
        hk_req_clear(&r);
        /* two attempts: a retry, then success */
        assert_int_equal(
            result(done, did, 1, HK_DL_RETRYING, 0, 0, 0, now + 10, 1, 0, now + 1, NULL), 0);
        assert_int_equal(result(done, did, 2, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, now + 2, NULL), 0);
    }
    assert_int_equal(ingest(&r, &it, ORG_A, "t.held", "{}", NULL, 10, now), 0);
    hk_strlcpy(ev_open, it.id, HK_ID_MAX);
    hk_req_clear(&r);
    assert_int_equal(ingest(&r, &it, ORG_A, "t.nobody", "{}", NULL, 10, now), 0);
    hk_strlcpy(ev_none, it.id, HK_ID_MAX);
    assert_int_equal(it.ndeliveries, 0);
    hk_req_clear(&r);

    /* cut-offs before everything: nothing goes */
    hk_req p = prune_run(now - 1000, now - 1000, 100, 0);
    assert_int_equal(p.u.prune.deliveries + p.u.prune.events + p.u.prune.attempts, 0);
    assert_int_equal(p.u.prune.oldest, now + 2);
    /* the dry run counts, and deletes nothing */
    p = prune_run(now + 1000, now + 1000, 100, 1);
    assert_int_equal(p.u.prune.deliveries, 3);
    assert_int_equal(p.u.prune.attempts, 6);
    assert_int_equal(p.u.prune.events, 4);
    assert_true(event_exists(ev_done[0]));
    /* steps of 2: more, then done */
    p = prune_run(now + 1000, 0, 2, 0);
    assert_int_equal(p.u.prune.deliveries, 2);
    assert_int_equal(p.u.prune.attempts, 4);
    assert_int_equal(p.u.prune.events, 2);
    assert_int_equal(p.u.prune.more, 1);
    assert_int_equal(p.u.prune.skipped, 0);
    p = prune_run(now + 1000, 0, 2, 0);
    assert_int_equal(p.u.prune.deliveries, 1);
    assert_int_equal(p.u.prune.more, 0);
    assert_int_equal(p.u.prune.oldest, 0);
    for (int i = 0; i < 3; i++) assert_false(event_exists(ev_done[i]));
    assert_true(event_exists(ev_none)); /* ev_cut 0: unmatched events kept */
    /* the unmatched event goes by the scan; the position moves past it */
    p = prune_run(0, now + 1000, 100, 0);
    assert_int_equal(p.u.prune.events, 1);
    assert_int_equal(p.u.prune.deliveries, 0);
    assert_true(p.u.prune.ev_pos_at >= now);
    assert_false(event_exists(ev_none));
    /* the position is kept in the store: the next step (or a restart, or another node) goes
     * on from there instead of walking the kept events again */
    hk_req p2 = prune_run(0, now + 1000, 100, 0);
    assert_int_equal(p2.u.prune.ev_pos_at, p.u.prune.ev_pos_at);
    assert_string_equal(p2.u.prune.ev_pos_id, p.u.prune.ev_pos_id);
    assert_int_equal(p2.u.prune.more, 0);
    /* the held delivery and its event stay, whatever the cut-offs */
    p = prune_run(now + 100000, now + 100000, 100, 1);
    assert_int_equal(p.u.prune.deliveries + p.u.prune.events + p.u.prune.attempts, 0);
    p = prune_run(now + 100000, now + 100000, 100, 0);
    assert_int_equal(p.u.prune.deliveries + p.u.prune.events + p.u.prune.attempts, 0);
    assert_true(event_exists(ev_open));
    assert_int_equal(set_status(ORG_A, held, HK_WH_ACTIVE), 1);
}

static int group_sqlite(void **state)
{
    (void)state;
    g_backend = BE_SQLITE;
    return 0;
}

static int group_pg(void **state)
{
    (void)state;
    g_backend = BE_PG;
    return 0;
}

/* Statistics (rollup.h): a results request adds to the (webhook, minute) rows; a repeated
 * result adds nothing; WEBHOOK_STATS buckets them with percentiles and the backlog; ORG_STATS
 * sums the last 24 h; retention deletes rows whose minute is older than the cut. */
static void test_stats(void **state)
{
    (void)state;
    char w[HK_ID_MAX], d1[HK_ID_MAX], d2[HK_ID_MAX], d3[HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w);
    int64_t now = hk_now_ms();
    int64_t minute = now - now % 60000;
    ingest_simple(ORG_A, now, d1, NULL);
    ingest_simple(ORG_A, now, d2, NULL);
    ingest_simple(ORG_A, now, d3, NULL); /* stays open: the backlog */
    assert_int_equal(result(w, d1, 1, HK_DL_RETRYING, 0, 0, 0, now + 10, 0, 0, minute + 1, NULL),
                     0);
    assert_int_equal(result(w, d1, 2, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, minute + 2, NULL), 0);
    assert_int_equal(result(w, d1, 2, HK_DL_SUCCESS, 1, 1, 0, 0, 0, 0, minute + 3, NULL), 0);
    assert_int_equal(result(w, d2, 1, HK_DL_FAILED, 0, 1, 0, 0, 0, 0, minute + 60001, NULL), 0);
    hk_req r = {.kind = HK_REQ_WEBHOOK_STATS, .org_id = ORG_A};
    r.u.wstats.webhook_id = w;
    r.u.wstats.from = minute;
    r.u.wstats.to = minute + 180000;
    r.u.wstats.interval = 60000;
    assert_int_equal(run(&r), 0);
    assert_int_equal(r.u.wstats.n, 3);
    hk_stats_bucket *b = r.u.wstats.items;
    assert_int_equal(b[0].start, minute);
    assert_int_equal(b[0].delivered, 1); /* the repeated result is not counted */
    assert_int_equal(b[0].failed, 1);
    assert_int_equal(b[0].given_up, 0);
    assert_int_equal(b[0].att_p[0], hk_sh_value(hk_sh_bucket(12)));
    assert_int_equal(b[1].given_up, 1);
    assert_int_equal(b[2].delivered + b[2].failed + b[2].given_up, 0);
    assert_int_equal(b[2].att_p[2], -1);
    assert_int_equal(r.u.wstats.backlog, 1);
    hk_req_clear(&r);
    /* one bucket of 3 minutes adds them up */
    hk_req h = {.kind = HK_REQ_WEBHOOK_STATS, .org_id = ORG_A};
    h.u.wstats.webhook_id = w;
    h.u.wstats.from = minute;
    h.u.wstats.to = minute + 180000;
    h.u.wstats.interval = 180000;
    assert_int_equal(run(&h), 0);
    assert_int_equal(h.u.wstats.n, 1);
    assert_int_equal(h.u.wstats.items[0].delivered + h.u.wstats.items[0].failed +
                         h.u.wstats.items[0].given_up,
                     3);
    hk_req_clear(&h);
    /* another organization: not found */
    hk_req x = {.kind = HK_REQ_WEBHOOK_STATS, .org_id = ORG_B};
    x.u.wstats.webhook_id = w;
    x.u.wstats.from = minute;
    x.u.wstats.to = minute + 60000;
    x.u.wstats.interval = 60000;
    assert_int_equal(run(&x), HK_ENOTFOUND);
    hk_req_clear(&x);
    /* the organization's summary */
    hk_req o = {.kind = HK_REQ_ORG_STATS, .org_id = ORG_A};
    o.u.ostats.since = minute - 1;
    o.u.ostats.limit = 10;
    assert_int_equal(run(&o), 0);
    assert_int_equal(o.u.ostats.n, 1);
    assert_string_equal(o.u.ostats.items[0].id, w);
    assert_int_equal(o.u.ostats.items[0].delivered, 1);
    assert_int_equal(o.u.ostats.items[0].failed, 1);
    assert_int_equal(o.u.ostats.items[0].given_up, 1);
    assert_int_equal(o.u.ostats.items[0].last_at, minute + 60001);
    assert_int_equal(o.u.ostats.items[0].backlog, 1);
    hk_req_clear(&o);
    /* retention: the first minute is older than the cut as a whole, the second is not */
    hk_req p = prune_run(minute + 60000 + 60000, 0, 100, 0);
    hk_req_clear(&p);
    hk_req a = {.kind = HK_REQ_WEBHOOK_STATS, .org_id = ORG_A};
    a.u.wstats.webhook_id = w;
    a.u.wstats.from = minute;
    a.u.wstats.to = minute + 120000;
    a.u.wstats.interval = 60000;
    assert_int_equal(run(&a), 0);
    assert_int_equal(a.u.wstats.items[0].delivered + a.u.wstats.items[0].failed, 0);
    assert_int_equal(a.u.wstats.items[1].given_up, 1);
    hk_req_clear(&a);
}

/* The hour and day rows (rollup.h, webhook_stats_coarse): results on both sides of an hour
 * boundary; a read by hour or by day (which reads those rows) answers what the minute rows add
 * up to; retention keeps an hour row until its whole hour is older than the cut. */
static void test_stats_coarse(void **state)
{
    (void)state;
    char w[HK_ID_MAX], d[4][HK_ID_MAX];
    mk_webhook(ORG_A, EV_ORDER, 1, HK_WH_ACTIVE, w);
    int64_t now = hk_now_ms();
    int64_t hour = now - now % 3600000, day = now - now % 86400000;
    int64_t at[4] = {hour - 61000, hour - 1, hour, hour + 120000};
    for (int i = 0; i < 4; i++) {
        ingest_simple(ORG_A, now, d[i], NULL);
        assert_int_equal(result(w, d[i], 1, i == 2 ? HK_DL_FAILED : HK_DL_SUCCESS, i != 2, 1, 0, 0,
                                0, 0, at[i], NULL),
                         0);
    }
    int64_t iv[3] = {60000, 3600000, 86400000};
    int64_t from[3] = {hour - 3600000, hour - 3600000, day - 86400000};
    int64_t sums[3][3];
    for (int g = 0; g < 3; g++) {
        hk_req r = {.kind = HK_REQ_WEBHOOK_STATS, .org_id = ORG_A};
        r.u.wstats.webhook_id = w;
        r.u.wstats.from = from[g];
        r.u.wstats.to = hour + 3600000 + (g == 2 ? 86400000 : 0);
        r.u.wstats.to +=
            (r.u.wstats.to - from[g]) % iv[g] ? iv[g] - (r.u.wstats.to - from[g]) % iv[g] : 0;
        r.u.wstats.interval = iv[g];
        assert_int_equal(run(&r), 0);
        sums[g][0] = sums[g][1] = sums[g][2] = 0;
        for (int k = 0; k < r.u.wstats.n; k++) {
            sums[g][0] += r.u.wstats.items[k].delivered;
            sums[g][1] += r.u.wstats.items[k].given_up;
            if (g == 1 && r.u.wstats.items[k].start == hour) {
                assert_int_equal(r.u.wstats.items[k].delivered, 1);
                assert_int_equal(r.u.wstats.items[k].given_up, 1);
            }
            if (g == 1 && r.u.wstats.items[k].start == hour - 3600000)
                assert_int_equal(r.u.wstats.items[k].delivered, 2);
        }
        hk_req_clear(&r);
    }
    for (int g = 0; g < 3; g++) {
        assert_int_equal(sums[g][0], 3);
        assert_int_equal(sums[g][1], 1);
    }
    /* retention: a cut inside the current hour drops the previous hour's rows, not its own */
    hk_req p = prune_run(hour + 1800000, 0, 100, 0);
    hk_req_clear(&p);
    hk_req a = {.kind = HK_REQ_WEBHOOK_STATS, .org_id = ORG_A};
    a.u.wstats.webhook_id = w;
    a.u.wstats.from = hour - 3600000;
    a.u.wstats.to = hour + 3600000;
    a.u.wstats.interval = 3600000;
    assert_int_equal(run(&a), 0);
    assert_int_equal(a.u.wstats.items[0].delivered, 0);
    assert_int_equal(a.u.wstats.items[1].delivered + a.u.wstats.items[1].given_up, 2);
    hk_req_clear(&a);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TESTS                                                                                      \
    {                                                                                              \
        T(test_ping), T(test_apikeys), T(test_webhook_crud), T(test_webhook_limit),                \
            T(test_webhook_status_resets_failures), T(test_park_unpark),                           \
            T(test_webhook_delete_fails_pending), T(test_json_as_written), T(test_ingest_fanout),  \
            T(test_ingest_idempotency), T(test_ingest_lease_budget), T(test_ingest_refusals),      \
            T(test_events), T(test_list_keyset), T(test_deliveries), T(test_claim),                \
            T(test_claim_parks), T(test_claim_ids), T(test_due_scan), T(test_results_success),     \
            T(test_results_fifo_heads), T(test_results_retry_and_lease),                           \
            T(test_results_disable_after), T(test_results_gone), T(test_release_reschedule),       \
            T(test_heartbeat_reclaim), T(test_restart_hands_back), T(test_two_nodes),              \
            T(test_replay), T(test_group_commit), T(test_group_results), T(test_results_repeated), \
            T(test_operational_events), T(test_results_late), T(test_mixed_submit),                \
            T(test_event_bytes_kept), T(test_orders), T(test_secret_rotation), T(test_sync_exec),  \
            T(test_edges), T(test_encrypted), T(test_store_stats), T(test_prune), T(test_stats),   \
            T(test_stats_coarse), T(test_fanout_cache_other_writers),                              \
    }

int main(void)
{
    hk_log_setup("text", "warn");
    const char *strict = getenv("HOOKD_CONFORMANCE_STRICT");
    g_strict =
        strict && strcmp(strict, "1") == 0; /* migrations are announced at info, once per test */
    static const struct CMUnitTest sqlite_tests[] = TESTS;
    static const struct CMUnitTest pg_tests[] = TESTS;
    int failed =
        cmocka_run_group_tests_name("store conformance: sqlite", sqlite_tests, group_sqlite, NULL);
    g_pg_admin = getenv("HOOKD_TEST_PG_URL");
    if (!g_pg_admin || !g_pg_admin[0]) {
        const char *req = getenv("HOOKD_REQUIRE_PG");
        if (req && strcmp(req, "1") == 0) {
            fprintf(stderr, "store conformance: HOOKD_REQUIRE_PG=1 but HOOKD_TEST_PG_URL is not "
                            "set: the PostgreSQL group cannot be skipped here\n");
            return 1;
        }
        printf("[  SKIPPED ] store conformance: postgres (HOOKD_TEST_PG_URL is not set; "
               "tests/lib/with_pg.py starts a private PostgreSQL for it)\n");
        return failed;
    }
    failed += cmocka_run_group_tests_name("store conformance: postgres", pg_tests, group_pg, NULL);
    return failed;
}
