/*
 * test_match.c: event type and pattern validation, pattern matching, and filteringOptions
 * (parse errors and their messages, canonical form, matchConditions, excludeFields).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/match.h"

/* ---- event types and patterns ------------------------------------------------------------ */

static void test_event_type_valid(void **state)
{
    (void)state;
    const char *good[] = {"a", "email.delivered", "A-Z_0-9",    "kumomta.event", "a..b", ".",
                          "-", "x.y.z.w",         "UPPER.lower"};
    const char *bad[] = {"", "*", "email.*", "a b", "a/b", "a:b", "é", "a\tb", "a*", "a,b"};
    for (size_t i = 0; i < HK_ARRAY_LEN(good); i++)
        assert_int_equal(hk_event_type_valid(good[i]), 1);
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) assert_int_equal(hk_event_type_valid(bad[i]), 0);
    assert_int_equal(hk_event_type_valid(NULL), 0);

    char s[300];
    memset(s, 'a', sizeof s);
    s[HK_EVENT_TYPE_MAX] = '\0';
    assert_int_equal(hk_event_type_valid(s), 1); /* 255 */
    s[HK_EVENT_TYPE_MAX] = 'a';
    s[HK_EVENT_TYPE_MAX + 1] = '\0';
    assert_int_equal(hk_event_type_valid(s), 0); /* 256 */
}

static void test_pattern_valid(void **state)
{
    (void)state;
    const char *good[] = {"*",     "email.*", "*.bounced", "a.*.c", "*.*", "email.delivered",
                          "a.*.*", "*.a.*",   "x-y.*"};
    const char *bad[] = {"",     "**", "email*", "*email", "e*mail", "email.*x", "email.x*",
                         "a.**", "* ", "a b.*",  "a.*/",   "é.*",    "*.é"};
    for (size_t i = 0; i < HK_ARRAY_LEN(good); i++) {
        if (!hk_pattern_valid(good[i])) print_error("should be valid: %s\n", good[i]);
        assert_int_equal(hk_pattern_valid(good[i]), 1);
    }
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        if (hk_pattern_valid(bad[i])) print_error("should be invalid: %s\n", bad[i]);
        assert_int_equal(hk_pattern_valid(bad[i]), 0);
    }
    assert_int_equal(hk_pattern_valid(NULL), 0);

    char s[300];
    memset(s, 'a', sizeof s);
    s[HK_EVENT_TYPE_MAX - 1] = '*';
    s[HK_EVENT_TYPE_MAX - 2] = '.';
    s[HK_EVENT_TYPE_MAX] = '\0';
    assert_int_equal(hk_pattern_valid(s), 1); /* 255 ending in ".*" */
    s[HK_EVENT_TYPE_MAX - 1] = 'a';
    s[HK_EVENT_TYPE_MAX] = 'a';
    s[HK_EVENT_TYPE_MAX + 1] = '\0';
    assert_int_equal(hk_pattern_valid(s), 0); /* 256 */
}

typedef struct mcase {
    const char *pattern, *type;
    int match;
} mcase;

static const mcase match_cases[] = {
    {"*", "email", 1},
    {"*", "email.delivered", 1},
    {"*", "a.b.c.d", 1},
    {"email.*", "email.bounced", 1},
    {"email.*", "email.delivered", 1},
    {"email.*", "email", 0},
    {"email.*", "email.a.b", 0},
    {"email.*", "email.", 0},
    {"email.*", "emails.bounced", 0},
    {"email.*", "Email.bounced", 0},
    {"email.*", "xemail.bounced", 0},
    {"*.bounced", "email.bounced", 1},
    {"*.bounced", "sms.bounced", 1},
    {"*.bounced", "bounced", 0},
    {"*.bounced", "a.b.bounced", 0},
    {"*.bounced", "email.bouncedx", 0},
    {"a.*.c", "a.b.c", 1},
    {"a.*.c", "a.xyz.c", 1},
    {"a.*.c", "a.c", 0},
    {"a.*.c", "a.b.b.c", 0},
    {"a.*.c", "a.b.d", 0},
    {"*.*", "a.b", 1},
    {"*.*", "a", 0},
    {"*.*", "a.b.c", 0},
    {"kumomta.event.*", "kumomta.event.delivery", 1},
    {"kumomta.event.*", "kumomta.event", 0},
    {"email.delivered", "email.delivered", 1},
    {"email.delivered", "email.delivere", 0},
    {"email.delivered", "email.deliveredx", 0},
    {"email.delivered", "EMAIL.delivered", 0},
    {"email", "email", 1},
    {"email", "email.delivered", 0},
    {"a..b", "a..b", 1},
    /* reserved operational types: only a pattern naming "hookd" first matches them */
    {"*", "hookd.webhook.disabled", 0},
    {"*.*.*", "hookd.webhook.disabled", 0},
    {"*.webhook.disabled", "hookd.webhook.disabled", 0},
    {"hookd.*", "hookd.webhook.disabled", 1},
    {"hookd.*", "hookd.delivery.exhausted", 1},
    {"hookd.webhook.*", "hookd.webhook.failed", 1},
    {"hookd.webhook.*", "hookd.delivery.exhausted", 0},
    {"hookd.webhook.recovered", "hookd.webhook.recovered", 1},
    {"hookd.*.exhausted", "hookd.delivery.exhausted", 1},
    {"hookd.*", "hookdx.a", 0},
    {"hookd.*", "hookd", 0},
    {"*", "hookd", 1},
    {"*", "Hookd.webhook.failed", 1},
};

static void test_pattern_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(match_cases); i++) {
        const mcase *c = &match_cases[i];
        assert_int_equal(hk_pattern_valid(c->pattern), 1);
        int m = hk_pattern_match(c->pattern, c->type);
        if (m != c->match) print_error("%s vs %s: %d\n", c->pattern, c->type, m);
        assert_int_equal(m, c->match);
    }
}

/* ---- filteringOptions: parsing ----------------------------------------------------------- */

static int fparse(const char *json, hk_filter *f, char *err, size_t errlen)
{
    return hk_filter_parse(json, strlen(json), f, err, errlen);
}

static char *canonical(const char *json)
{
    hk_filter f;
    char err[256];
    int rc = fparse(json, &f, err, sizeof err);
    if (rc) print_error("parse %s: %s\n", json, err);
    assert_int_equal(rc, 0);
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    assert_int_equal(hk_filter_canonical(&f, &b), 0);
    hk_filter_free(&f);
    return hk_buf_steal(&b);
}

static void expect_canonical(const char *json, const char *want)
{
    char *c = canonical(json);
    assert_string_equal(c, want);
    /* canonical is a fixed point */
    char *c2 = canonical(c);
    assert_string_equal(c2, c);
    free(c);
    free(c2);
}

static void test_filter_canonical(void **state)
{
    (void)state;
    expect_canonical("null", "{}");
    expect_canonical(" null ", "{}");
    expect_canonical("{}", "{}");
    expect_canonical("{ \"matchConditions\" : {} }", "{}");
    expect_canonical("{\"excludeFields\": []}", "{}");
    expect_canonical("{\"matchConditions\": {\"type\": \"Bounce\", \"n\": 1.50 }}",
                     "{\"matchConditions\":{\"type\":\"Bounce\",\"n\":1.50}}");
    expect_canonical("{\"excludeFields\": [\"secret\", \"a\\u0062\"]}",
                     "{\"excludeFields\":[\"secret\",\"ab\"]}");
    /* key order is fixed whatever the input order */
    expect_canonical("{\"excludeFields\":[\"x\"],\"matchConditions\":{\"k\":[1, {\"a\":null}]}}",
                     "{\"matchConditions\":{\"k\":[1,{\"a\":null}]},\"excludeFields\":[\"x\"]}");
    /* conditions keep their text byte for byte (escapes too) */
    expect_canonical("{\"matchConditions\":{\"k\\u00e9\":\"\\n\",\"big\":12345678901234567890}}",
                     "{\"matchConditions\":{\"k\\u00e9\":\"\\n\",\"big\":12345678901234567890}}");
    /* excluded keys are re-escaped by the writer */
    expect_canonical("{\"excludeFields\":[\"q\\\"uote\",\"tab\\t\",\"\\u00e9\"]}",
                     "{\"excludeFields\":[\"q\\\"uote\",\"tab\\t\",\"\xc3\xa9\"]}");
}

typedef struct fcase {
    const char *json;
    const char *err;
} fcase;

static const fcase filter_errors[] = {
    {"", "filteringOptions is not valid JSON: unexpected end of input (expected a value) at "
         "byte 0"},
    {"{\"matchConditions\":", "filteringOptions is not valid JSON: unexpected end of input "
                              "(expected a value) at byte 19"},
    {"[]", "filteringOptions must be an object"},
    {"\"x\"", "filteringOptions must be an object"},
    {"1", "filteringOptions must be an object"},
    {"true", "filteringOptions must be an object"},
    {"{\"matchConditions\":{},\"matchConditions\":{}}", "filteringOptions has a duplicate key"},
    {"{\"excludeFields\":[],\"exclude\\u0046ields\":[]}", "filteringOptions has a duplicate key"},
    {"{\"other\":1}", "filteringOptions has an unknown field \"other\" (allowed: "
                      "matchConditions, excludeFields)"},
    {"{\"matchconditions\":{}}", "filteringOptions has an unknown field \"matchconditions\" "
                                 "(allowed: matchConditions, excludeFields)"},
    {"{\"a\\nb\":1}", "filteringOptions has an unknown field (allowed: matchConditions, "
                      "excludeFields)"},
    {"{\"matchConditions\":[]}", "filteringOptions.matchConditions must be an object"},
    {"{\"matchConditions\":null}", "filteringOptions.matchConditions must be an object"},
    {"{\"matchConditions\":\"a=b\"}", "filteringOptions.matchConditions must be an object"},
    {"{\"matchConditions\":{\"a\":1,\"a\":2}}",
     "filteringOptions.matchConditions has a duplicate key"},
    {"{\"excludeFields\":{}}", "filteringOptions.excludeFields must be an array of strings"},
    {"{\"excludeFields\":null}", "filteringOptions.excludeFields must be an array of strings"},
    {"{\"excludeFields\":\"a\"}", "filteringOptions.excludeFields must be an array of strings"},
    {"{\"excludeFields\":[\"a\",1]}", "filteringOptions.excludeFields must be an array of strings"},
    {"{\"excludeFields\":[[\"a\"]]}", "filteringOptions.excludeFields must be an array of strings"},
    {"{\"excludeFields\":[\"a\",\"\"]}",
     "filteringOptions.excludeFields[1] must be a non-empty string of at most 255 bytes "
     "without NUL"},
    {"{\"excludeFields\":[\"a\\u0000b\"]}",
     "filteringOptions.excludeFields[0] must be a non-empty string of at most 255 bytes "
     "without NUL"},
};

static void test_filter_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(filter_errors); i++) {
        hk_filter f;
        char err[256];
        int rc = fparse(filter_errors[i].json, &f, err, sizeof err);
        if (rc != HK_EINVAL || strcmp(err, filter_errors[i].err) != 0)
            print_error("case %zu (%s): rc %d err '%s'\n", i, filter_errors[i].json, rc, err);
        assert_int_equal(rc, HK_EINVAL);
        assert_string_equal(err, filter_errors[i].err);
        hk_filter_free(&f);
        hk_filter_free(&f); /* freeing leaves it empty: again is harmless */
    }
    /* the error text is cut to errlen; NULL err is fine */
    hk_filter f;
    char small[10];
    assert_int_equal(fparse("[]", &f, small, sizeof small), HK_EINVAL);
    assert_string_equal(small, "filtering");
    hk_filter_free(&f);
    assert_int_equal(fparse("[]", &f, NULL, 0), HK_EINVAL);
    hk_filter_free(&f);
}

static void test_filter_limits(void **state)
{
    (void)state;
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_filter f;
    char err[256];

    /* matchConditions: 64 keys fine, 65 refused */
    for (int n = HK_FILTER_MAX_CONDITIONS; n <= HK_FILTER_MAX_CONDITIONS + 1; n++) {
        hk_buf_reset(&b);
        hk_buf_puts(&b, "{\"matchConditions\":{");
        for (int i = 0; i < n; i++) hk_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
        hk_buf_puts(&b, "}}");
        int rc = hk_filter_parse(b.data, b.len, &f, err, sizeof err);
        if (n == HK_FILTER_MAX_CONDITIONS) {
            assert_int_equal(rc, 0);
            assert_non_null(f.match_json);
            assert_int_equal(f.match_doc.toks[0].size, n);
        } else {
            assert_int_equal(rc, HK_EINVAL);
            assert_string_equal(err, "filteringOptions.matchConditions may have at most 64 keys");
        }
        hk_filter_free(&f);
    }
    /* excludeFields: 64 entries fine, 65 refused */
    for (int n = HK_FILTER_MAX_EXCLUDE; n <= HK_FILTER_MAX_EXCLUDE + 1; n++) {
        hk_buf_reset(&b);
        hk_buf_puts(&b, "{\"excludeFields\":[");
        for (int i = 0; i < n; i++) hk_buf_printf(&b, "%s\"f%d\"", i ? "," : "", i);
        hk_buf_puts(&b, "]}");
        int rc = hk_filter_parse(b.data, b.len, &f, err, sizeof err);
        if (n == HK_FILTER_MAX_EXCLUDE) {
            assert_int_equal(rc, 0);
            assert_int_equal(f.nexclude, n);
            assert_string_equal(f.exclude[63], "f63");
            assert_int_equal(hk_filter_excludes(&f), 1);
        } else {
            assert_int_equal(rc, HK_EINVAL);
            assert_string_equal(err, "filteringOptions.excludeFields may have at most 64 entries");
        }
        hk_filter_free(&f);
    }
    /* excluded key length: 255 bytes fine, 256 refused */
    for (int n = 255; n <= 256; n++) {
        hk_buf_reset(&b);
        hk_buf_puts(&b, "{\"excludeFields\":[\"");
        for (int i = 0; i < n; i++) hk_buf_putc(&b, 'x');
        hk_buf_puts(&b, "\"]}");
        int rc = hk_filter_parse(b.data, b.len, &f, err, sizeof err);
        assert_int_equal(rc, n == 255 ? 0 : HK_EINVAL);
        if (rc == 0) assert_int_equal(strlen(f.exclude[0]), 255);
        hk_filter_free(&f);
    }
    hk_buf_free(&b);

    /* an empty filter has nothing to do */
    assert_int_equal(fparse("{}", &f, err, sizeof err), 0);
    assert_null(f.match_json);
    assert_int_equal(f.nexclude, 0);
    assert_int_equal(hk_filter_excludes(&f), 0);
    hk_filter_free(&f);
}

/* ---- filteringOptions: applying ---------------------------------------------------------- */

static int matches(const char *filter, const char *data)
{
    hk_filter f;
    char err[256];
    assert_int_equal(fparse(filter, &f, err, sizeof err), 0);
    hk_jdoc d;
    assert_int_equal(hk_json_parse(&d, data, strlen(data), 1000, 16), 0);
    int m = hk_filter_matches(&f, &d, 0);
    hk_json_free(&d);
    hk_filter_free(&f);
    return m;
}

static void test_filter_matches(void **state)
{
    (void)state;
    const char *f1 = "{\"matchConditions\":{\"type\":\"Bounce\",\"code\":550}}";
    assert_int_equal(matches(f1, "{\"type\":\"Bounce\",\"code\":550,\"x\":1}"), 1);
    assert_int_equal(matches(f1, "{\"x\":1,\"code\":550.0,\"type\":\"Bounce\"}"), 1);
    assert_int_equal(matches(f1, "{\"type\":\"B\\u006funce\",\"code\":5.5e2}"), 1);
    assert_int_equal(matches(f1, "{\"type\":\"Bounce\"}"), 0); /* a key missing */
    assert_int_equal(matches(f1, "{\"type\":\"bounce\",\"code\":550}"), 0);
    assert_int_equal(matches(f1, "{\"type\":\"Bounce\",\"code\":\"550\"}"), 0);
    assert_int_equal(matches(f1, "{\"typ\\u0065\":\"Bounce\",\"code\":550}"), 1);
    assert_int_equal(matches(f1, "{\"nested\":{\"type\":\"Bounce\",\"code\":550}}"), 0);
    assert_int_equal(matches(f1, "{}"), 0);
    assert_int_equal(matches(f1, "[]"), 0);
    /* the last member wins for duplicate keys in data: the one a receiver reads (JSON.parse) */
    assert_int_equal(matches(f1, "{\"type\":\"Bounce\",\"code\":550,\"type\":\"x\"}"), 0);
    assert_int_equal(matches(f1, "{\"type\":\"x\",\"code\":550,\"type\":\"Bounce\"}"), 1);

    /* structured values compare semantically */
    const char *f2 = "{\"matchConditions\":{\"o\":{\"a\":[1,true,null],\"b\":\"x\"}}}";
    assert_int_equal(matches(f2, "{\"o\":{\"b\":\"x\",\"a\":[1.0,true,null]}}"), 1);
    assert_int_equal(matches(f2, "{\"o\":{\"b\":\"x\",\"a\":[true,1,null]}}"), 0);
    assert_int_equal(matches(f2, "{\"o\":{\"b\":\"x\",\"a\":[1,true,null],\"c\":0}}"), 0);
    assert_int_equal(matches(f2, "{\"o\":null}"), 0);
    const char *f3 = "{\"matchConditions\":{\"v\":null}}";
    assert_int_equal(matches(f3, "{\"v\":null}"), 1);
    assert_int_equal(matches(f3, "{}"), 0); /* absent is not null */
    assert_int_equal(matches(f3, "{\"v\":false}"), 0);
    const char *f4 = "{\"matchConditions\":{\"\":1}}";
    assert_int_equal(matches(f4, "{\"\":1}"), 1);
    assert_int_equal(matches(f4, "{\"a\":1}"), 0);

    /* no conditions: everything passes */
    assert_int_equal(matches("{}", "{\"a\":1}"), 1);
    assert_int_equal(matches("null", "[]"), 1);
    assert_int_equal(matches("{\"excludeFields\":[\"a\"]}", "{\"a\":1}"), 1);
    assert_int_equal(matches("{\"matchConditions\":{}}", "{\"a\":1}"), 1);

    /* data deeper in a bigger doc: data_tok need not be the root */
    hk_filter f;
    assert_int_equal(fparse(f1, &f, NULL, 0), 0);
    hk_jdoc d;
    const char *env = "{\"id\":\"e1\",\"data\":{\"code\":550,\"type\":\"Bounce\"}}";
    assert_int_equal(hk_json_parse(&d, env, strlen(env), 100, 8), 0);
    int data = hk_json_obj_get(&d, 0, "data");
    assert_int_equal(hk_filter_matches(&f, &d, data), 1);
    assert_int_equal(hk_filter_matches(&f, &d, 0), 0);
    hk_json_free(&d);
    hk_filter_free(&f);
}

static char *excluded(const char *filter, const char *data)
{
    hk_filter f;
    char err[256];
    assert_int_equal(fparse(filter, &f, err, sizeof err), 0);
    hk_jdoc d;
    assert_int_equal(hk_json_parse(&d, data, strlen(data), 1000, 16), 0);
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    assert_int_equal(hk_filter_apply_exclude(&f, &d, 0, &b), 0);
    hk_json_free(&d);
    hk_filter_free(&f);
    char *out = hk_buf_steal(&b);
    /* the result is always valid JSON */
    assert_int_equal(hk_json_parse(&d, out, strlen(out), 1000, 16), 0);
    hk_json_free(&d);
    return out;
}

static void expect_excluded(const char *filter, const char *data, const char *want)
{
    char *out = excluded(filter, data);
    assert_string_equal(out, want);
    free(out);
}

static void test_filter_exclude(void **state)
{
    (void)state;
    const char *f = "{\"excludeFields\":[\"secret\",\"pii\"]}";
    expect_excluded(f, "{\"a\":1,\"secret\":\"s\",\"b\":[1, 2],\"pii\":{\"x\":1}}",
                    "{\"a\":1,\"b\":[1,2]}");
    expect_excluded(f, "{\"secret\":\"s\",\"a\":1}", "{\"a\":1}");
    expect_excluded(f, "{\"a\":1,\"secret\":\"s\"}", "{\"a\":1}");
    expect_excluded(f, "{\"secret\":1,\"pii\":2}", "{}");
    expect_excluded(f, "{}", "{}");
    expect_excluded(f, "{\"a\": 1e400, \"n\": 12345678901234567890, \"z\": -0.0}",
                    "{\"a\":1e400,\"n\":12345678901234567890,\"z\":-0.0}");
    /* keys compare decoded; nested keys stay */
    expect_excluded(f, "{\"s\\u0065cret\":1,\"o\":{\"secret\":2}}", "{\"o\":{\"secret\":2}}");
    /* every duplicate of an excluded key goes */
    expect_excluded(f, "{\"pii\":1,\"k\":\"v\\n\",\"pii\":2}", "{\"k\":\"v\\n\"}");
    /* no exclusions: the compact data as is */
    expect_excluded("{}", "{ \"a\" : 1 }", "{\"a\":1}");
    expect_excluded(f, "[1, 2]", "[1,2]"); /* not an object: copied */

    /* a capped output: too small fails and leaves the buffer as it was */
    hk_filter flt;
    assert_int_equal(fparse(f, &flt, NULL, 0), 0);
    hk_jdoc d;
    const char *data = "{\"abc\":123,\"secret\":1}";
    assert_int_equal(hk_json_parse(&d, data, strlen(data), 100, 8), 0);
    hk_buf b;
    hk_buf_init(&b, 11);
    assert_int_equal(hk_buf_puts(&b, "x"), 0);
    assert_int_equal(hk_filter_apply_exclude(&flt, &d, 0, &b),
                     HK_ETOOBIG); /* needs 11 more, room for 10 */
    assert_int_equal(b.len, 1);
    hk_buf_free(&b);
    hk_buf_init(&b, 11);
    assert_int_equal(hk_filter_apply_exclude(&flt, &d, 0, &b), 0);
    assert_string_equal(hk_buf_cstr(&b), "{\"abc\":123}");
    hk_buf_free(&b);
    hk_json_free(&d);
    hk_filter_free(&flt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_type_valid), cmocka_unit_test(test_pattern_valid),
        cmocka_unit_test(test_pattern_match),    cmocka_unit_test(test_filter_canonical),
        cmocka_unit_test(test_filter_errors),    cmocka_unit_test(test_filter_limits),
        cmocka_unit_test(test_filter_matches),   cmocka_unit_test(test_filter_exclude),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
