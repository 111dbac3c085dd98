/*
 * fairq.c: round-robin by group, then by item, with a fresh line and a cap per group (see
 * fairq.h for the rule and who keeps what).
 */
#include "delivery/fairq.h"

#include <stddef.h>

void hk_fq_init(hk_fq *q, int cap)
{
    q->fresh_head = q->fresh_tail = NULL;
    q->round_head = q->round_tail = NULL;
    q->cap = cap > 0 ? cap : 1;
}

void hk_fq_push(hk_fq *q, hk_fq_group *g, hk_fq_item *it)
{
    if (!it->queued) {
        it->queued = 1;
        it->next = NULL;
        if (g->tail)
            g->tail->next = it;
        else
            g->head = it;
        g->tail = it;
    }
    hk_fq_line(q, g);
}

void hk_fq_line(hk_fq *q, hk_fq_group *g)
{
    if (g->line != HK_FQ_NONE || !g->head || g->inflight >= q->cap) return;
    int fresh = g->inflight == 0;
    hk_fq_group **head = fresh ? &q->fresh_head : &q->round_head;
    hk_fq_group **tail = fresh ? &q->fresh_tail : &q->round_tail;
    g->line_next = NULL;
    if (*tail)
        (*tail)->line_next = g;
    else
        *head = g;
    *tail = g;
    g->line = fresh ? HK_FQ_FRESH : HK_FQ_ROUND;
}

hk_fq_group *hk_fq_next(hk_fq *q)
{
    int fresh = q->fresh_head != NULL;
    hk_fq_group **head = fresh ? &q->fresh_head : &q->round_head;
    hk_fq_group **tail = fresh ? &q->fresh_tail : &q->round_tail;
    hk_fq_group *g = *head;
    if (!g) return NULL;
    *head = g->line_next;
    if (!*head) *tail = NULL;
    g->line_next = NULL;
    g->line = HK_FQ_NONE;
    return g;
}

hk_fq_item *hk_fq_pop(hk_fq_group *g)
{
    hk_fq_item *it = g->head;
    if (!it) return NULL;
    g->head = it->next;
    if (!g->head) g->tail = NULL;
    it->next = NULL;
    it->queued = 0;
    return it;
}
