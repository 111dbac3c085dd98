/*
 * test_kumomta.c: the bus message mappers of SPEC §5 (src/ingest/kumomta.c) on realistic
 * KumoMTA log records (Delivery, Bounce, AdminBounce, OOB, TransientFailure, Feedback,
 * Expiration; Reception and the other record types ignored), the idempotency key, the `data`
 * shape byte for byte, webhook.triggered, the generic rule, every malformed case, subject
 * matching and key hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/metrics.h"
#include "ingest/kumomta.h"

/* A KumoMTA record as kumod logs it (fields of docs.kumomta.com/reference/log_record), with
 * type, response and headers spliced in. */
static char *record(const char *type, const char *response, const char *headers)
{
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_buf_printf(&b,
                  "{\"type\":\"%s\",\"id\":\"1d98076abbbc11ed940250ebf67f93bd\","
                  "\"sender\":\"noreply@send.example.com\",\"recipient\":\"user@gmail.com\","
                  "\"queue\":\"campaign:tenant@gmail.com\","
                  "\"site\":\"source2->(alt1|alt2|alt3|alt4)?.gmail-smtp-in.l.google.com\","
                  "\"size\":1047,\"response\":%s,"
                  "\"peer_address\":{\"name\":\"gmail-smtp-in.l.google.com.\","
                  "\"addr\":\"142.251.2.27\"},"
                  "\"timestamp\":1678069691,\"created\":1678069690,\"num_attempts\":0,"
                  "\"bounce_classification\":\"Uncategorized\",\"egress_pool\":\"pool0\","
                  "\"egress_source\":\"source2\",\"feedback_report\":null,\"meta\":{},"
                  "\"headers\":%s,\"delivery_protocol\":\"ESMTP\","
                  "\"reception_protocol\":\"ESMTP\",\"nodeid\":\"557f3ad4-2c8c-11ee-976e-"
                  "782b46d2cb5e\"}",
                  type, response, headers);
    return hk_buf_steal(&b);
}

static const char *HDRS = "{\"Subject\":\"Your order\",\"X-Org-ID\":\"org_42\"}";
static const char *OK250 = "{\"code\":250,\"enhanced_code\":{\"class\":2,\"subject\":0,"
                           "\"detail\":0},\"content\":\"OK ids=8a5475ccbbc611eda12250ebf67f93bd\","
                           "\"command\":\".\\r\\n\"}";

static int map_str(const char *subject, const char *body, hk_bus_event *ev, char *why)
{
    hk_bus_event_init(ev);
    return hk_bus_map(subject, body, strlen(body), ev, why, 200);
}

static void expect_event(const char *subject, const char *body, const char *type, const char *org,
                         const char *data, const char *key, int source)
{
    hk_bus_event ev;
    char why[200];
    int v = map_str(subject, body, &ev, why);
    if (v != HK_BUS_EVENT) print_error("not an event: %s\n", why);
    assert_int_equal(v, HK_BUS_EVENT);
    assert_string_equal(ev.type, type);
    assert_string_equal(ev.org, org);
    assert_string_equal(hk_buf_cstr(&ev.data), data);
    if (key)
        assert_string_equal(ev.idem_key, key);
    else
        assert_null(ev.idem_key);
    assert_int_equal(ev.source, source);
    hk_bus_event_free(&ev);
}

static void expect_verdict(const char *subject, const char *body, int verdict, const char *why_has)
{
    hk_bus_event ev;
    char why[200];
    int v = map_str(subject, body, &ev, why);
    if (v != verdict) print_error("verdict %d (%s) for %s\n", v, why, body);
    assert_int_equal(v, verdict);
    if (why_has && !strstr(why, why_has)) print_error("why: %s (wanted %s)\n", why, why_has);
    if (why_has) assert_non_null(strstr(why, why_has));
    assert_null(ev.org); /* left empty */
    assert_null(ev.type);
    assert_int_equal(ev.data.len, 0);
    hk_bus_event_free(&ev);
}

/* ---- KumoMTA -----------------------------------------------------------------------------------
 */

static void test_kumo_delivery(void **state)
{
    (void)state;
    char *r = record("Delivery", OK250, HDRS);
    expect_event("kumomta.event", r, "email.delivered", "org_42",
                 "{\"email_id\":\"1d98076abbbc11ed940250ebf67f93bd\","
                 "\"from\":\"noreply@send.example.com\",\"to\":[\"user@gmail.com\"],"
                 "\"subject\":\"Your order\",\"status\":\"delivered\"}",
                 "org_42:email.delivered:1d98076abbbc11ed940250ebf67f93bd:Delivery:"
                 "1d98076abbbc11ed940250ebf67f93bd",
                 HK_SRC_KUMOMTA);
    free(r);
}

static void test_kumo_failures_carry_error(void **state)
{
    (void)state;
    struct {
        const char *rtype, *type, *status;
    } cases[] = {
        {"Bounce", "email.bounced", "bounced"},
        {"AdminBounce", "email.bounced", "bounced"},
        {"OOB", "email.bounced", "bounced"},
        {"TransientFailure", "email.delivery_delayed", "delivery_delayed"},
        {"Feedback", "email.complained", "complained"},
        {"Expiration", "email.failed", "failed"},
    };
    const char *resp =
        "{\"code\":550,\"enhanced_code\":{\"class\":5,\"subject\":1,\"detail\":1},"
        "\"content\":\"5.1.1 The email account that you tried to reach does not "
        "exist. \\\"quoted\\\" caf\\u00e9\",\"command\":\"RCPT TO:<user@gmail.com>\"}";
    const char *hdrs = "{\"subject\":\"Hi \\u00e9\",\"x-org-id\":\" org_7 \","
                       "\"X-Email-Log-ID\":\"log-123\"}";
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        char *r = record(cases[i].rtype, resp, hdrs);
        char data[1024], key[512];
        snprintf(data, sizeof data,
                 "{\"email_id\":\"log-123\",\"from\":\"noreply@send.example.com\","
                 "\"to\":[\"user@gmail.com\"],\"subject\":\"Hi \\u00e9\",\"status\":\"%s\","
                 "\"error\":{\"code\":550,\"message\":\"5.1.1 The email account that you tried "
                 "to reach does not exist. \\\"quoted\\\" caf\\u00e9\"}}",
                 cases[i].status);
        snprintf(key, sizeof key, "org_7:%s:log-123:%s:1d98076abbbc11ed940250ebf67f93bd",
                 cases[i].type, cases[i].rtype);
        expect_event("kumomta.event.bounce", r, cases[i].type, "org_7", data, key, HK_SRC_KUMOMTA);
        free(r);
    }
}

static void test_kumo_optional_fields(void **state)
{
    (void)state;
    /* no Subject header, no response: subject null, no error; recipient list kept as is */
    const char *r = "{\"type\":\"Expiration\",\"id\":\"abc\",\"sender\":\"a@b.c\","
                    "\"recipient\":[\"x@y.z\",\"w@y.z\"],\"headers\":{\"X-Org-ID\":\"o1\"}}";
    expect_event("kumomta.event", r, "email.failed", "o1",
                 "{\"email_id\":\"abc\",\"from\":\"a@b.c\",\"to\":[\"x@y.z\",\"w@y.z\"],"
                 "\"subject\":null,\"status\":\"failed\"}",
                 "o1:email.failed:abc:Expiration:abc", HK_SRC_KUMOMTA);
    /* sender and recipient missing */
    r = "{\"type\":\"Delivery\",\"id\":\"abc\",\"headers\":{\"X-Org-ID\":\"o1\"},"
        "\"response\":{\"code\":250,\"content\":\"ok\"}}";
    expect_event("kumomta.event", r, "email.delivered", "o1",
                 "{\"email_id\":\"abc\",\"from\":null,\"to\":[],\"subject\":null,"
                 "\"status\":\"delivered\"}",
                 "o1:email.delivered:abc:Delivery:abc", HK_SRC_KUMOMTA);
    /* a response without content: message null */
    r = "{\"type\":\"Bounce\",\"id\":\"abc\",\"headers\":{\"X-Org-ID\":\"o1\"},"
        "\"response\":{\"code\":554}}";
    expect_event("kumomta.event", r, "email.bounced", "o1",
                 "{\"email_id\":\"abc\",\"from\":null,\"to\":[],\"subject\":null,"
                 "\"status\":\"bounced\",\"error\":{\"code\":554,\"message\":null}}",
                 "o1:email.bounced:abc:Bounce:abc", HK_SRC_KUMOMTA);
}

static void test_kumo_ignored_and_bad(void **state)
{
    (void)state;
    const char *ignored[] = {"Reception", "Rejection", "Delayed", "AdminRebind",
                             "Any",       "XferOut",   "XferIn",  "DeferredInjectionRebind"};
    for (size_t i = 0; i < HK_ARRAY_LEN(ignored); i++) {
        char *r = record(ignored[i], OK250, HDRS);
        expect_verdict("kumomta.event", r, HK_BUS_IGNORED, ignored[i]);
        free(r);
    }
    /* Reception records need no organization to be ignored */
    char *r = record("Reception", "{}", "{}");
    expect_verdict("kumomta.event", r, HK_BUS_IGNORED, "Reception");
    free(r);

    r = record("Bogus", OK250, HDRS);
    expect_verdict("kumomta.event", r, HK_BUS_BAD, "unknown KumoMTA record type");
    free(r);
    r = record("delivery", OK250, HDRS); /* record types are case-sensitive */
    expect_verdict("kumomta.event", r, HK_BUS_BAD, "unknown");
    free(r);
    r = record("Delivery", OK250, "{\"Subject\":\"no org\"}");
    expect_verdict("kumomta.event", r, HK_BUS_BAD, "no organization");
    free(r);
    r = record("Delivery", OK250, "{\"X-Org-ID\":\"has space\"}");
    expect_verdict("kumomta.event", r, HK_BUS_BAD, "no organization");
    free(r);
    r = record("Delivery", OK250, "{\"X-Org-ID\":42}");
    expect_verdict("kumomta.event", r, HK_BUS_BAD, "no organization");
    free(r);
    r = record("Delivery", OK250, "null");
    expect_verdict("kumomta.event", r, HK_BUS_BAD, "no organization");
    free(r);
    expect_verdict("kumomta.event", "{\"type\":\"Delivery\",\"headers\":{\"X-Org-ID\":\"o\"}}",
                   HK_BUS_BAD, "\"id\"");
    expect_verdict("kumomta.event", "{\"id\":\"x\"}", HK_BUS_BAD, "\"type\"");
    expect_verdict("kumomta.event", "[1,2]", HK_BUS_BAD, "JSON object");
    expect_verdict("kumomta.event", "{\"type\":\"Delivery\",", HK_BUS_BAD, "bad JSON");
    expect_verdict("kumomta.event", "", HK_BUS_BAD, "empty");
    expect_verdict("kumomta.event", "\xff\xfe", HK_BUS_BAD, "bad JSON");
}

static void test_kumo_key_too_long_is_hashed(void **state)
{
    (void)state;
    char id[400];
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_buf_printf(&b, "{\"type\":\"Delivery\",\"id\":\"%s\",\"headers\":{\"X-Org-ID\":\"o\"}}", id);
    hk_bus_event ev;
    char why[200];
    assert_int_equal(map_str("kumomta.event", hk_buf_cstr(&b), &ev, why), HK_BUS_EVENT);
    assert_int_equal(strlen(ev.idem_key), strlen("sha256:") + 64);
    assert_memory_equal(ev.idem_key, "sha256:", 7);
    /* the same record, the same key */
    hk_bus_event ev2;
    assert_int_equal(map_str("kumomta.event", hk_buf_cstr(&b), &ev2, why), HK_BUS_EVENT);
    assert_string_equal(ev.idem_key, ev2.idem_key);
    hk_bus_event_free(&ev);
    hk_bus_event_free(&ev2);
    hk_buf_free(&b);
}

static void test_kumo_subjects(void **state)
{
    (void)state;
    assert_int_equal(hk_bus_is_kumomta_subject("kumomta.event"), 1);
    assert_int_equal(hk_bus_is_kumomta_subject("kumomta.event.delivery"), 1);
    assert_int_equal(hk_bus_is_kumomta_subject("kumomta.events"), 1); /* `kumomta.event*` */
    assert_int_equal(hk_bus_is_kumomta_subject("kumomta.even"), 0);
    assert_int_equal(hk_bus_is_kumomta_subject("tracking.open"), 0);
    assert_int_equal(hk_bus_is_kumomta_subject("x.kumomta.event"), 0);
    /* a KumoMTA subject never falls back to the generic rule */
    expect_verdict("kumomta.event.x", "{\"organizationId\":\"o\",\"type\":\"t\",\"data\":{}}",
                   HK_BUS_BAD, "record type");
}

/* ---- webhook.triggered -------------------------------------------------------------------------
 */

static void test_triggered(void **state)
{
    (void)state;
    expect_event("webhook.triggered",
                 "{\"event\":\"order.paid\",\"payload\":{ \"n\" : 12345678901234567890, "
                 "\"f\": 0.10 },\"organizationId\":\"org_1\"}",
                 "order.paid", "org_1", "{\"n\":12345678901234567890,\"f\":0.10}", NULL,
                 HK_SRC_NATS);
    hk_bus_event ev;
    char why[200];
    assert_int_equal(map_str("webhook.triggered",
                             "{\"event\":\"a\",\"payload\":{},\"organizationId\":\"o\","
                             "\"idempotencyKey\":\"k-1\",\"userId\":\"u-9\"}",
                             &ev, why),
                     HK_BUS_EVENT);
    assert_string_equal(ev.idem_key, "k-1");
    assert_string_equal(ev.user_id, "u-9");
    hk_bus_event_free(&ev);

    expect_verdict("webhook.triggered", "{\"event\":\"a\",\"payload\":{}}", HK_BUS_BAD,
                   "no organization");
    expect_verdict("webhook.triggered", "{\"payload\":{},\"organizationId\":\"o\"}", HK_BUS_BAD,
                   "event");
    expect_verdict("webhook.triggered",
                   "{\"event\":\"a b\",\"payload\":{},\"organizationId\":\"o\"}", HK_BUS_BAD,
                   "event");
    expect_verdict("webhook.triggered", "{\"event\":\"a\",\"payload\":[],\"organizationId\":\"o\"}",
                   HK_BUS_BAD, "payload");
    expect_verdict("webhook.triggered", "{\"event\":\"a\",\"organizationId\":\"o\"}", HK_BUS_BAD,
                   "payload");
    expect_verdict("webhook.triggered",
                   "{\"event\":\"a\",\"payload\":{},\"organizationId\":\"o\",\"idempotencyKey\":5}",
                   HK_BUS_BAD, "idempotencyKey");
    expect_verdict("webhook.triggered", "\"just a string\"", HK_BUS_BAD, "JSON object");
}

/* ---- the generic rule -------------------------------------------------------------------------
 */

static void test_generic(void **state)
{
    (void)state;
    /* type defaults to the subject, data to the body without organizationId */
    expect_event("tracking.open",
                 "{\"organizationId\":\"org_1\",\"email\":\"a@b.c\",\"at\":1E400,"
                 "\"nested\":{\"organizationId\":\"kept\"}}",
                 "tracking.open", "org_1",
                 "{\"email\":\"a@b.c\",\"at\":1E400,\"nested\":{\"organizationId\":\"kept\"}}",
                 NULL, HK_SRC_NATS);
    /* explicit type and data */
    expect_event("tracking.click",
                 "{\"type\":\"link.clicked\",\"data\":{\"url\":\"https://x\"},"
                 "\"organizationId\":\"org_1\",\"extra\":1}",
                 "link.clicked", "org_1", "{\"url\":\"https://x\"}", NULL, HK_SRC_NATS);
    /* type given, data not: the whole body but organizationId, type included */
    expect_event("tracking.click", "{\"type\":\"t.x\",\"organizationId\":\"o\",\"v\":[1,2]}", "t.x",
                 "o", "{\"type\":\"t.x\",\"v\":[1,2]}", NULL, HK_SRC_NATS);
    /* only the organization: empty data */
    expect_event("a.b", "{\"organizationId\":\"o\"}", "a.b", "o", "{}", NULL, HK_SRC_NATS);
    /* escaped key names are compared decoded */
    expect_event("a.b", "{\"organization\\u0049d\":\"o\",\"k\":1}", "a.b", "o", "{\"k\":1}", NULL,
                 HK_SRC_NATS);
    expect_event("a.b", "{\"organizationId\":\"o\",\"idempotencyKey\":\"k\"}", "a.b", "o",
                 "{\"idempotencyKey\":\"k\"}", "k", HK_SRC_NATS);

    expect_verdict("a.b", "{\"data\":{}}", HK_BUS_BAD, "no organization");
    expect_verdict("a.b", "{\"organizationId\":\"\"}", HK_BUS_BAD, "no organization");
    expect_verdict("a.b", "{\"organizationId\":null}", HK_BUS_BAD, "no organization");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"organizationId\":\"p\"}", HK_BUS_BAD,
                   "more than once");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"data\":\"x\"}", HK_BUS_BAD, "data");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"data\":null}", HK_BUS_BAD, "data");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"type\":\"\"}", HK_BUS_BAD, "type");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"type\":7}", HK_BUS_BAD, "type");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"userId\":\"\"}", HK_BUS_BAD, "userId");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"idempotencyKey\":\"a\\nb\"}", HK_BUS_BAD,
                   "idempotencyKey");
    expect_verdict("$bad.subject", "{\"organizationId\":\"o\"}", HK_BUS_BAD, "subject");
    expect_verdict("a.b", "[]", HK_BUS_BAD, "JSON object");
    expect_verdict("a.b", "{\"organizationId\":\"o\"} x", HK_BUS_BAD, "bad JSON");
    expect_verdict("a.b", "{\"organizationId\":\"o\",\"s\":\"\\ud800\"}", HK_BUS_BAD, "bad JSON");
    expect_verdict("", "{}", HK_BUS_BAD, "subject");
    /* $bad.subject still works with an explicit type */
    expect_event("$bad.subject", "{\"organizationId\":\"o\",\"type\":\"good\",\"data\":{}}", "good",
                 "o", "{}", NULL, HK_SRC_NATS);
}

static void test_deep_nesting_is_bad_not_a_crash(void **state)
{
    (void)state;
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_buf_puts(&b, "{\"organizationId\":\"o\",\"d\":");
    for (int i = 0; i < 10000; i++) hk_buf_putc(&b, '[');
    for (int i = 0; i < 10000; i++) hk_buf_putc(&b, ']');
    hk_buf_putc(&b, '}');
    expect_verdict("a.b", hk_buf_cstr(&b), HK_BUS_BAD, "bad JSON");
    hk_buf_free(&b);
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

static void test_org_and_key_rules(void **state)
{
    (void)state;
    assert_int_equal(hk_bus_org_valid("org_1"), 1);
    assert_int_equal(hk_bus_org_valid("a.b:c-d_E9"), 1);
    assert_int_equal(hk_bus_org_valid(""), 0);
    assert_int_equal(hk_bus_org_valid("a b"), 0);
    assert_int_equal(hk_bus_org_valid("a/b"), 0);
    assert_int_equal(hk_bus_org_valid(NULL), 0);
    char s[200];
    memset(s, 'a', sizeof s);
    s[128] = '\0';
    assert_int_equal(hk_bus_org_valid(s), 1);
    s[128] = 'a';
    s[129] = '\0';
    assert_int_equal(hk_bus_org_valid(s), 0);

    assert_int_equal(hk_bus_key_valid("k"), 1);
    assert_int_equal(hk_bus_key_valid(""), 0);
    assert_int_equal(hk_bus_key_valid("a\tb"), 0);
    char *k = NULL;
    hk_bus_key_set(&k, "plain");
    assert_string_equal(k, "plain");
    hk_bus_key_set(&k, "a\nb");
    char hex[65], want[80];
    hk_sha256_hex("a\nb", 3, hex);
    snprintf(want, sizeof want, "sha256:%s", hex);
    assert_string_equal(k, want);
    free(k);
}

static void test_subject_match(void **state)
{
    (void)state;
    assert_int_equal(hk_nats_subject_match("a.b", "a.b"), 1);
    assert_int_equal(hk_nats_subject_match("a.*", "a.b"), 1);
    assert_int_equal(hk_nats_subject_match("a.*", "a.b.c"), 0);
    assert_int_equal(hk_nats_subject_match("a.*", "a"), 0);
    assert_int_equal(hk_nats_subject_match("a.>", "a.b.c"), 1);
    assert_int_equal(hk_nats_subject_match("a.>", "a"), 0);
    assert_int_equal(hk_nats_subject_match(">", "x.y"), 1);
    assert_int_equal(hk_nats_subject_match("*.b", "a.b"), 1);
    assert_int_equal(hk_nats_subject_match("kumomta.event", "kumomta.event.x"), 0);
    assert_int_equal(hk_nats_subject_match("kumomta.event.*", "kumomta.event.x"), 1);
    assert_int_equal(hk_nats_subject_match("a.b", "a.bc"), 0);
    assert_int_equal(hk_nats_subject_match("", "a"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kumo_delivery),
        cmocka_unit_test(test_kumo_failures_carry_error),
        cmocka_unit_test(test_kumo_optional_fields),
        cmocka_unit_test(test_kumo_ignored_and_bad),
        cmocka_unit_test(test_kumo_key_too_long_is_hashed),
        cmocka_unit_test(test_kumo_subjects),
        cmocka_unit_test(test_triggered),
        cmocka_unit_test(test_generic),
        cmocka_unit_test(test_deep_nesting_is_bad_not_a_crash),
        cmocka_unit_test(test_org_and_key_rules),
        cmocka_unit_test(test_subject_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
