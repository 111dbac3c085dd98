/*
 * ingest.h: the one door every event goes in by. The sources (HTTP in src/api/events.c, the
 * NATS bus in src/ingest/nats.c) turn their input into hk_ingest_items and call
 * hk_ingest_submit; the door does what every ingest does, the same way for all of them:
 *
 *   reserve room in the dispatcher's window (the lease budget)
 *     -> submit one HK_REQ_INGEST store request (events + deliveries, one transaction,
 *        group-committed with whatever else waits)
 *     -> on completion, on the loop: give the reservation back and hand the deliveries leased
 *        to this node to the dispatcher (the ones beyond the budget go to the queue backend,
 *        e.g. Redis, through it): the no-second-read path
 *     -> metrics: events ingested by source, duplicates, deliveries created, ingest duration,
 *        ingests refused for the store being unavailable or over a delivery cap
 *     -> the source's callback, with each item's result (id, duplicate, deliveries) or the
 *        error in the request.
 *
 * What stays with a source is what is particular to it: validation and answers (HTTP), mapping
 * messages and acks (NATS), its own admission rules (rate limit, draining) and whether it
 * refuses or retries when the store cannot take an ingest.
 *
 * Threads: loop thread only.
 */
#ifndef HK_INGEST_H
#define HK_INGEST_H

#include <stdint.h>

#include "core/config.h"
#include "core/metrics.h"
#include "store/store.h"

struct hk_dispatch;

typedef struct hk_ingest hk_ingest;

/* What one submission asks for, besides its items. Zero-initialise, then set what applies. */
typedef struct hk_ingest_opts {
    const char *org; /* the organization of every item (required; must outlive the request) */
    /* Delivery caps (0 = none): the store refuses the whole request with HK_ELIMIT (err set,
     * nothing stored) when one event would create more than max_per_event deliveries or all
     * together more than max_total. Counted in hookd_ingest_rejected_total. */
    int max_per_event, max_total;
    /* When the ingest arrived (hk_mono_us()): the time to completion is observed in
     * hookd_ingest_duration_ms on success. 0: not observed. */
    int64_t start_us;
    /* 1: the source keeps what the store could not take and submits it again (NATS), so a
     * failure is not a refusal and is not counted in hookd_ingest_unavailable_total. 0: the
     * source refuses it (HTTP 503), counted. */
    int retries;
} hk_ingest_opts;

/* The door over this node's store and dispatcher. Never fails (allocation aborts). */
hk_ingest *hk_ingest_new(const hk_config *cfg, hk_store *store, struct hk_dispatch *dispatch,
                         hk_metrics *metrics);

/* Frees the door. Call after hk_store_close (its last completions pass through the door). NULL
 * ok. */
void hk_ingest_free(hk_ingest *in);

/* The name of a source (HK_SRC_*, core/metrics.h) as an item's `source` and the store's event
 * rows say it: "api", "manual", "nats", "kumomta". */
const char *hk_ingest_source_name(int source);

/* 1 while more store requests wait than an ingest should queue behind (the store is slow or
 * stuck): a source that retries waits before submitting. */
int hk_ingest_backlogged(const hk_ingest *in);

/* Admission for a source that refuses what the store cannot take now: 0 if an ingest may be
 * submitted, HK_EUNAVAIL (counted in hookd_ingest_unavailable_total) if the store is down or
 * backlogged. */
int hk_ingest_admit(hk_ingest *in);

/* Submits items[0..n) of organization opts->org as one store request, req (caller-owned,
 * zeroed or cleared, living until done ran: e.g. embedded in the caller's state). items and
 * the strings they point to must live until done ran too; their out fields are filled then.
 * done(req) runs exactly once, later, on the loop (never from inside this call): req->rc is 0
 * or an HK_E* code with req->err, the dispatcher already has the leased deliveries, the
 * metrics are counted, and req->udata is the caller's value again. The caller clears req
 * (hk_req_clear) when done with the items' results. */
void hk_ingest_submit(hk_ingest *in, hk_req *req, hk_ingest_item *items, int n,
                      const hk_ingest_opts *opts, hk_req_done done);

#endif
