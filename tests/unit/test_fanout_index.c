/*
 * test_fanout_index.c: the fan-out's pattern index (src/store/fanout.c) chooses exactly the
 * webhooks, in the same order, that the linear match over every webhook chose before it: many
 * random organizations of random patterns (exact types, "*", "hookd.*", `*` segments anywhere,
 * empty segments, reserved "hookd." types), statuses, deletions and filters, each queried with
 * many random event types, against a reference written here with hk_pattern_match.
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
#include "store/backend.h"
#include "store/match.h"

static const char *const SEGS[] = {"a", "b", "c", "hookd", "", "x1", "webhook", "failed"};
#define NSEGS ((int)HK_ARRAY_LEN(SEGS))

static unsigned g_seed = 12345;

static int rnd(int n)
{
    g_seed = g_seed * 1103515245u + 12345u;
    return (int)((g_seed >> 16) % (unsigned)n);
}

/* A random dot-separated string of 1-4 segments; with stars, some segments are `*`. */
static void rnd_name(char *out, size_t n, int stars)
{
    int nseg = 1 + rnd(4);
    out[0] = '\0';
    for (int i = 0; i < nseg; i++) {
        const char *s = stars && rnd(3) == 0 ? "*" : SEGS[rnd(NSEGS)];
        if (i == 0 && rnd(4) == 0) s = "hookd"; /* reserved types and patterns often */
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s", i ? "." : "", s);
    }
}

static char *rnd_pattern(void)
{
    char p[64];
    do {
        int k = rnd(12);
        if (k == 0)
            snprintf(p, sizeof p, "*");
        else if (k == 1)
            snprintf(p, sizeof p, "hookd.*");
        else
            rnd_name(p, sizeof p, 1);
    } while (!hk_pattern_valid(p));
    return hk_strdup(p);
}

static void rnd_type(char *t, size_t n)
{
    do {
        rnd_name(t, n, 0);
    } while (!hk_event_type_valid(t));
}

static hk_webhook *rnd_webhook(int i)
{
    hk_webhook *w = hk_calloc(1, sizeof *w);
    snprintf(w->id, sizeof w->id, "wh_%06d", i);
    int k = rnd(10);
    w->status = k == 0 ? HK_WH_DISABLED : k == 1 ? HK_WH_PAUSED : HK_WH_ACTIVE;
    w->deleted_at = rnd(15) == 0 ? 1 : 0;
    if (rnd(6) == 0) w->filtering_options = hk_strdup("{\"matchConditions\":{\"k\":\"v\"}}");
    w->nevents = rnd(4);
    w->events = hk_calloc((size_t)(w->nevents ? w->nevents : 1), sizeof *w->events);
    for (int e = 0; e < w->nevents; e++) w->events[e] = rnd_pattern();
    return w;
}

/* The linear fan-out as it was before the index: every webhook in order. */
static int reference(const hk_fanout_org *o, const char *type, const hk_jdoc *doc, int *out)
{
    int n = 0;
    for (int i = 0; i < o->n; i++) {
        const hk_fanout_wh *fw = &o->whs[i];
        const hk_webhook *wh = fw->wh;
        if (wh->deleted_at || wh->status == HK_WH_DISABLED) continue;
        int sub = 0;
        for (int e = 0; e < wh->nevents && !sub; e++) sub = hk_pattern_match(wh->events[e], type);
        if (!sub) continue;
        if (fw->filter_ok && fw->filter.match_json && !hk_filter_matches(&fw->filter, doc, 0))
            continue;
        out[n++] = i;
    }
    return n;
}

static void test_index_equals_linear(void **state)
{
    (void)state;
    int64_t total = 0, queries = 0;
    for (int org = 0; org < 300; org++) {
        hk_fanout_org o;
        memset(&o, 0, sizeof o);
        int nw = 1 + rnd(org % 10 == 0 ? 400 : 40);
        for (int i = 0; i < nw; i++) hk_fanout_add(&o, rnd_webhook(i));
        int *want = hk_calloc((size_t)nw, sizeof *want);
        for (int q = 0; q < 200; q++) {
            char type[64];
            rnd_type(type, sizeof type);
            const char *data = rnd(2) ? "{\"k\":\"v\"}" : "{\"k\":\"w\"}";
            hk_jdoc doc;
            assert_int_equal(hk_json_parse(&doc, data, strlen(data), 64, 16), 0);
            int nwant = reference(&o, type, &doc, want);
            hk_json_free(&doc);
            hk_fanout_target *t = NULL;
            int nt = hk_fanout_targets(&o, type, data, strlen(data), &t);
            if (nt != nwant)
                fail_msg("org %d type \"%s\": %d targets, the linear match %d", org, type, nt,
                         nwant);
            for (int i = 0; i < nt; i++) {
                assert_int_equal((int)(t[i].fw - o.whs), want[i]); /* same webhooks, same order */
                free(t[i].data);
            }
            free(t);
            total += nt;
            queries++;
        }
        free(want);
        hk_fanout_org_free(&o);
    }
    /* the random cases are not degenerate: they matched often, not always */
    assert_true(total > queries / 2);
    print_message("    %lld queries, %lld targets\n", (long long)queries, (long long)total);
}

/* Fixed cases of match.h's rules through the index: "*" never takes a reserved type, "hookd.*"
 * takes them at any depth, a `*` segment is exactly one non-empty segment, and a webhook with
 * two matching patterns is a target once. */
static void test_index_rules(void **state)
{
    (void)state;
    static const char *const pats[][3] = {
        {"*", NULL},         {"hookd.*", NULL}, {"a.*", NULL},   {"*.b", "a.b"},
        {"hookd.webhook.*"}, {"a..*", NULL},    {"*.*.*", NULL}, {"a.b", NULL},
    };
    hk_fanout_org o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < (int)HK_ARRAY_LEN(pats); i++) {
        hk_webhook *w = hk_calloc(1, sizeof *w);
        snprintf(w->id, sizeof w->id, "wh_%d", i);
        w->events = hk_calloc(3, sizeof *w->events);
        for (int k = 0; k < 3 && pats[i][k]; k++) w->events[w->nevents++] = hk_strdup(pats[i][k]);
        hk_fanout_add(&o, w);
    }
    static const struct {
        const char *type;
        const char *want; /* indexes of the targets, in order */
    } cases[] = {
        {"a.b", "0237"},  {"hookd.webhook.failed", "14"},
        {"hookd.x", "1"}, {"a..c", "05"}, /* "*.*.*": a `*` never stands for an empty segment */
        {"a.", "0"},      {"x.y.z", "06"},
        {"a", "0"},
    };
    for (int c = 0; c < (int)HK_ARRAY_LEN(cases); c++) {
        hk_fanout_target *t = NULL;
        int nt = hk_fanout_targets(&o, cases[c].type, "{}", 2, &t);
        char got[16] = "";
        for (int i = 0; i < nt && i < 15; i++) got[i] = (char)('0' + (t[i].fw - o.whs));
        got[nt < 15 ? nt : 15] = '\0';
        if (strcmp(got, cases[c].want) != 0)
            fail_msg("type %s: targets %s, want %s", cases[c].type, got, cases[c].want);
        free(t);
    }
    hk_fanout_org_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_equals_linear),
        cmocka_unit_test(test_index_rules),
    };
    return cmocka_run_group_tests_name("fanout index", tests, NULL, NULL);
}
