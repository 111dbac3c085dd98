/*
 * test_fairq.c: the order of turns (fairq.h). A small model of the dispatcher drives it: each
 * group is an organization, each item a webhook with a number of jobs; a turn takes one slot for
 * the group's next item, puts the item back if it has jobs left and the group back in line.
 * Checked: round-robin by group then by item, the fresh line first (a group with nothing in
 * flight goes before one that holds slots, whatever came first), the cap (a group at it is in
 * no line until a slot frees), no double queueing, and the hanging-organization case of issue
 * 14.3 at small scale.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "delivery/fairq.h"

typedef struct item {
    hk_fq_item fq;
    char name[8];
    int jobs;
    struct grp *g;
} item;

typedef struct grp {
    hk_fq_group fq;
} grp;

/* One turn: the next group's next item starts a job (one slot more for its group); the item is
 * pushed again while it has jobs, and the group lined again. Writes the item's name, or "-" if
 * no group was lined. */
static void turn(hk_fq *q, char *out, size_t n)
{
    hk_fq_group *g = hk_fq_next(q);
    if (!g) {
        snprintf(out, n, "-");
        return;
    }
    hk_fq_item *fi = hk_fq_pop(g);
    assert_non_null(fi);
    item *it = HK_CONTAINER_OF(fi, item, fq);
    it->jobs--;
    g->inflight++;
    if (it->jobs > 0) hk_fq_push(q, g, &it->fq);
    hk_fq_line(q, g);
    snprintf(out, n, "%s", it->name);
}

/* Runs k turns and returns their names joined by spaces (static buffer). */
static const char *turns(hk_fq *q, int k)
{
    static char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < k && len < sizeof buf; i++) {
        char one[16];
        turn(q, one, sizeof one);
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "", one);
        if (w < 0) break;
        len += (size_t)w;
    }
    return buf;
}

static void add(hk_fq *q, item *it, grp *g, const char *name, int jobs)
{
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->jobs = jobs;
    it->g = g;
    hk_fq_push(q, &g->fq, &it->fq);
}

/* A slot of g ends: the caller's bookkeeping, then g may be lined again. */
static void done(hk_fq *q, grp *g)
{
    g->fq.inflight--;
    hk_fq_line(q, &g->fq);
}

static void test_round_robin_by_group_then_item(void **state)
{
    (void)state;
    hk_fq q;
    hk_fq_init(&q, 100);
    grp a = {0}, b = {0};
    item a1, a2, a3, b1;
    add(&q, &a1, &a, "a1", 3);
    add(&q, &a2, &a, "a2", 3);
    add(&q, &a3, &a, "a3", 3);
    add(&q, &b1, &b, "b1", 3);
    /* A has three webhooks, B one: they alternate by organization, not by webhook */
    assert_string_equal(turns(&q, 10), "a1 b1 a2 b1 a3 b1 a1 a2 a3 a1");
    assert_string_equal(turns(&q, 3), "a2 a3 -");
}

static void test_a_group_with_nothing_in_flight_goes_first(void **state)
{
    (void)state;
    hk_fq q;
    hk_fq_init(&q, 100);
    grp a = {0}, b = {0}, c = {0};
    item a1, b1, c1;
    add(&q, &a1, &a, "a1", 10);
    add(&q, &c1, &c, "c1", 10);
    assert_string_equal(turns(&q, 4), "a1 c1 a1 c1");
    /* A and C hold slots and are lined (round); B arrives with nothing in flight */
    add(&q, &b1, &b, "b1", 2);
    assert_string_equal(turns(&q, 4), "b1 a1 c1 b1");
    /* once all of B's slots end, it is fresh again and jumps the line once more */
    b1.jobs = 1;
    b.fq.inflight = 0;
    hk_fq_push(&q, &b.fq, &b1.fq);
    assert_string_equal(turns(&q, 2), "b1 a1");
}

static void test_the_cap_holds_a_group_out_of_line_until_a_slot_frees(void **state)
{
    (void)state;
    hk_fq q;
    hk_fq_init(&q, 2);
    grp a = {0}, b = {0};
    item a1, a2, b1;
    add(&q, &a1, &a, "a1", 10);
    add(&q, &a2, &a, "a2", 10);
    assert_string_equal(turns(&q, 3), "a1 a2 -"); /* A at its cap of 2 */
    assert_int_equal(a.fq.line, HK_FQ_NONE);
    hk_fq_push(&q, &a.fq, &a1.fq); /* more work does not line it either */
    assert_int_equal(a.fq.line, HK_FQ_NONE);
    add(&q, &b1, &b, "b1", 10);
    assert_string_equal(turns(&q, 3), "b1 b1 -");
    done(&q, &a);
    assert_int_equal(a.fq.line, HK_FQ_ROUND); /* still holds one slot */
    assert_string_equal(turns(&q, 2), "a1 -");
    done(&q, &b);
    assert_int_equal(b.fq.line, HK_FQ_ROUND);
    done(&q, &b); /* already in line: it keeps its place */
    assert_int_equal(b.fq.line, HK_FQ_ROUND);
    assert_string_equal(turns(&q, 3), "b1 b1 -");
}

static void test_nothing_is_queued_twice(void **state)
{
    (void)state;
    hk_fq q;
    hk_fq_init(&q, 0); /* a cap below 1 is 1 */
    assert_int_equal(q.cap, 1);
    grp a = {0};
    item a1;
    add(&q, &a1, &a, "a1", 5);
    hk_fq_push(&q, &a.fq, &a1.fq);
    hk_fq_line(&q, &a.fq);
    assert_ptr_equal(a.fq.head, &a1.fq);
    assert_ptr_equal(a.fq.tail, &a1.fq);
    assert_ptr_equal(q.fresh_head, &a.fq);
    assert_null(a.fq.line_next);
    assert_string_equal(turns(&q, 2), "a1 -");
    /* a group with no item is never lined */
    grp e = {0};
    hk_fq_line(&q, &e.fq);
    assert_int_equal(e.fq.line, HK_FQ_NONE);
    assert_null(hk_fq_pop(&e.fq));
}

/* Issue 14.3 at small scale: global limit 8, cap 6. Organization A has 8 webhooks whose
 * attempts never end; B's single job must start at once, and with no cap (cap = the limit) it
 * must take the first slot that frees, before any more of A's. */
static void run_attack(int cap, const char *want_b_at)
{
    const int limit = 8;
    hk_fq q;
    hk_fq_init(&q, cap);
    grp a = {0}, b = {0};
    item as[8], b1;
    for (int i = 0; i < 8; i++) {
        char name[8];
        snprintf(name, sizeof name, "a%d", i);
        add(&q, &as[i], &a, name, 5);
    }
    int inflight = 0;
    char one[16];
    while (inflight < limit) {
        turn(&q, one, sizeof one);
        if (strcmp(one, "-") == 0) break;
        inflight++;
    }
    assert_int_equal(a.fq.inflight, cap < limit ? cap : limit);
    add(&q, &b1, &b, "b1", 1);
    if (inflight == limit) { /* every slot taken: one of A's ends */
        done(&q, &a);
        inflight--;
    }
    turn(&q, one, sizeof one);
    assert_string_equal(one, want_b_at);
}

static void test_a_hanging_organization_does_not_hold_back_another(void **state)
{
    (void)state;
    run_attack(6, "b1"); /* the cap leaves room: B starts at once */
    run_attack(8, "b1"); /* no cap: B takes the slot that freed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_by_group_then_item),
        cmocka_unit_test(test_a_group_with_nothing_in_flight_goes_first),
        cmocka_unit_test(test_the_cap_holds_a_group_out_of_line_until_a_slot_frees),
        cmocka_unit_test(test_nothing_is_queued_twice),
        cmocka_unit_test(test_a_hanging_organization_does_not_hold_back_another),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
