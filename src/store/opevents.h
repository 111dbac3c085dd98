/*
 * opevents.h: hookd's own events (docs/API.md "Operational events"): when a webhook is
 * disabled (410 Gone or by hand), fails (HOOKD_DISABLE_AFTER consecutive final failures) or
 * recovers (delivers again after being re-enabled from `failed`), and when a delivery is
 * exhausted (final failure), hookd stores an ordinary event of type hookd.<...> in the
 * webhook's organization and fans it out to the webhooks subscribed to it (match.h: only a
 * subscription naming "hookd" first matches). Those deliveries are signed and retried like any.
 *
 * Once per occurrence: the event is written by the store request that writes its cause (the
 * results batch that stores the final attempt or changes the status, the webhook patch), in the
 * same transaction, on the node that writes it. A repeated result (hk_result.stored 0) causes
 * nothing, a rolled-back group leaves nothing, so a crash can neither lose the event nor store
 * it twice.
 *
 * No loops: an event about a webhook never goes to that webhook, and the exhaustion of a
 * delivery of a hookd.* event emits nothing. A webhook's status events (disabled, failed,
 * recovered) are emitted whatever deliveries caused them: each fires at most once per status
 * change, and never to the webhook it names, so no chain of them can go on.
 *
 * Runs on the store thread inside the caller's transaction; backends call it from their results
 * op, store.c from the patch policy.
 */
#ifndef HK_STORE_OPEVENTS_H
#define HK_STORE_OPEVENTS_H

#include "store/rows.h"

enum hk_opev_kind {
    HK_OPEV_DISABLED = 0, /* hookd.webhook.disabled */
    HK_OPEV_FAILED,       /* hookd.webhook.failed */
    HK_OPEV_EXHAUSTED,    /* hookd.delivery.exhausted */
    HK_OPEV_RECOVERED,    /* hookd.webhook.recovered */
};

/* The event type of kind ("hookd.webhook.disabled", ...). */
const char *hk_opev_type(int kind);

/* One occurrence, as its cause knows it. */
typedef struct hk_opev {
    int kind;                     /* enum hk_opev_kind */
    const char *webhook_id;       /* the webhook it is about */
    const char *reason;           /* HK_OPEV_DISABLED: "gone" or "manual"; else NULL */
    const hk_result *res;         /* the attempt that caused it, or NULL (a manual disable) */
    int64_t consecutive_failures; /* HK_OPEV_FAILED: as stored after the batch */
} hk_opev;

/* Stores the event of ev in the webhook's organization and its deliveries (fan-out to the
 * organization's webhooks subscribed to its type, the webhook it names excepted; due now for an
 * active webhook, parked otherwise, never leased), through o->opev_insert, inside the caller's
 * transaction. Emits nothing (returns 0) when the webhook is unknown or deleted, or for the
 * exhaustion of a delivery of a hookd.* event. Adds to *ndue the deliveries created due now (the
 * caller's queue must learn of them). Does not touch the webhooks' last_triggered_at. Returns 0
 * or the HK_E* of a failed statement (the caller's transaction then fails). */
int hk_opev_emit(hk_conn *b, void *conn, const hk_store_ops *o, int64_t now, const hk_opev *ev,
                 int *ndue);

#endif
