/*
 * fairq.h: the order in which the dispatcher hands out attempt slots (issue 14.3, SPEC §7):
 * round-robin by group (an organization), then by item (a webhook) inside the group, with a
 * cap on the slots each group holds (HOOKD_ORG_MAX_INFLIGHT).
 *
 * Groups wait in two lines, as fq_codel's new and old flows: a group with nothing in flight
 * joins the fresh line, which is served first; a group that still has items after its turn
 * goes to the back of the round line. A group at its cap is in no line: the caller lines it
 * again (hk_fq_line) when one of its slots frees. So a group whose items all hang holds at most
 * the cap, and another group's first item takes the next free slot before any more of its.
 *
 * Intrusive and allocation-free: the caller embeds an hk_fq_group in each group and an
 * hk_fq_item in each item, keeps each group's `inflight` (slots held) up to date, and decides
 * what a turn does: the queue only says whose turn it is. An item is in at most one group's
 * list at a time. Not thread-safe; pure (no clock, no I/O), so tests/unit/test_fairq.c drives
 * it directly.
 */
#ifndef HK_FAIRQ_H
#define HK_FAIRQ_H

enum { HK_FQ_NONE = 0, HK_FQ_FRESH, HK_FQ_ROUND };

typedef struct hk_fq_item {
    struct hk_fq_item *next;
    int queued; /* 1 while in a group's list */
} hk_fq_item;

typedef struct hk_fq_group {
    int inflight;            /* slots the group holds: kept by the caller */
    hk_fq_item *head, *tail; /* its items that may take a slot, in turn order */
    struct hk_fq_group *line_next;
    int line; /* HK_FQ_NONE, HK_FQ_FRESH or HK_FQ_ROUND */
} hk_fq_group;

typedef struct hk_fq {
    hk_fq_group *fresh_head, *fresh_tail; /* groups with nothing in flight: served first */
    hk_fq_group *round_head, *round_tail; /* the others, round-robin */
    int cap;                              /* most slots per group (>= 1) */
} hk_fq;

/* An empty queue whose groups may hold up to cap slots each. Groups and items start zeroed. */
void hk_fq_init(hk_fq *q, int cap);

/* Puts it at the back of g's list unless it is queued already, then lines g (hk_fq_line). */
void hk_fq_push(hk_fq *q, hk_fq_group *g, hk_fq_item *it);

/* Lines g if it has items, holds fewer than cap slots and is in no line yet: at the back of
 * the fresh line if it holds none, else at the back of the round line. Otherwise nothing. */
void hk_fq_line(hk_fq *q, hk_fq_group *g);

/* The group whose turn it is (the fresh line first), taken out of its line; NULL if no group
 * is lined. The caller takes at most one slot for it, then lines it again (hk_fq_line). */
hk_fq_group *hk_fq_next(hk_fq *q);

/* The next item of g, taken out of g's list; NULL if g has none. */
hk_fq_item *hk_fq_pop(hk_fq_group *g);

#endif
