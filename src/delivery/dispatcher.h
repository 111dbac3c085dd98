/*
 * dispatcher.h: the delivery engine. It holds this node's leased deliveries (jobs) in memory,
 * a bounded window of them, and sends each when it is due: per-webhook FIFO queues served
 * round-robin by organization, then by webhook inside it (an organization with nothing in
 * flight first), at most HOOKD_ENDPOINT_CONCURRENCY attempts in flight per webhook,
 * HOOKD_ORG_MAX_INFLIGHT per organization and HOOKD_MAX_INFLIGHT in all, the webhook's rate
 * limit, signing, the POST (httpc.h), then the
 * outcome: success, a retry at its backoff time, or a final failure, written to the store in
 * batches.
 *
 * Where jobs come from: ingest hands over the deliveries it just committed and leased to this
 * node (no second read of the store), and the queue (queue.h) is asked for due work whenever
 * the window has room: pending deliveries not leased at ingest, retries that were not kept in
 * memory, work of dead nodes, and everything after a restart.
 *
 * Memory: at most HOOKD_QUEUE_WINDOW jobs are held. When the window fills, the webhook holding
 * the most waiting jobs hands some back with a later due time, so a slow or rate-limited
 * endpoint can never crowd out the others.
 */
#ifndef HK_DISPATCHER_H
#define HK_DISPATCHER_H

#include <stdint.h>

#include "core/config.h"
#include "queue/queue.h"
#include "store/store.h"

struct event_base;
struct hk_metrics;

typedef struct hk_dispatch hk_dispatch;

typedef struct hk_dispatch_stats {
    int held;     /* jobs in memory (waiting + in flight) */
    int inflight; /* attempts in flight */
    int waiting;  /* jobs due and waiting for a slot */
    int webhooks; /* webhooks cached */
} hk_dispatch_stats;

/* Creates the dispatcher (nothing runs until hk_dispatch_start). NULL with err on failure. */
hk_dispatch *hk_dispatch_new(struct event_base *base, const hk_config *cfg, hk_store *store,
                             hk_queue *queue, struct hk_metrics *metrics, char *err, size_t errlen);

/* Starts the heartbeat and the claim loop. */
void hk_dispatch_start(hk_dispatch *d);

/* How many new deliveries an ingest of `events` events about to be submitted may lease to this
 * node: room in the window, up to HK_RESERVE_PER_EVENT per event (a fan-out wider than that is
 * claimed right after the commit). The amount is reserved until hk_dispatch_ingested gives it
 * back, so many ingests in flight at once cannot overfill the window, and a small ingest never
 * takes room another needs. When the window is full, the events' organization (org_id, NULL =
 * unknown) still gets room if it holds and reserves less than its fair share of the window
 * (the window divided among the organizations holding jobs), at most an eighth of the window
 * beyond it in all; the webhook with the most waiting jobs then hands some back. The ingest's
 * req->org_id must be the same org_id when it is handed to hk_dispatch_ingested. */
#define HK_RESERVE_PER_EVENT 32
int hk_dispatch_reserve(hk_dispatch *d, int events, const char *org_id);

/* After an ingest request completed (successfully or not): releases its reservation and takes
 * its leased jobs and their webhooks (req's outputs are moved out). */
void hk_dispatch_ingested(hk_dispatch *d, hk_req *ingest, int reserved);

/* A webhook changed through the API on this node (patch): refresh the cache; when it became
 * active again, parked deliveries (unparked > 0) are claimed at once. */
void hk_dispatch_webhook_changed(hk_dispatch *d, const hk_webhook *wh, int unparked);

/* An organization was disabled or enabled through the API on this node: its cached webhooks
 * are read again before their next attempt (a disabled organization's jobs are parked, like a
 * paused webhook's); when enabling made deliveries due (unparked > 0) they are claimed at once.
 * Other nodes see the change when their cache expires (CACHE_TTL_MS, 30 s). */
void hk_dispatch_org_changed(hk_dispatch *d, const char *org_id, int unparked);

/* A webhook was deleted through the API on this node: drop its jobs (the store has failed
 * them). */
void hk_dispatch_webhook_deleted(hk_dispatch *d, const char *webhook_id);

/* Graceful stop: no new attempts or claims; waits for attempts in flight up to timeout_ms
 * (then aborts them), writes every result, hands every other job back to the store, then
 * calls done(arg) on the loop. */
void hk_dispatch_shutdown(hk_dispatch *d, int timeout_ms, void (*done)(void *arg), void *arg);

void hk_dispatch_get_stats(const hk_dispatch *d, hk_dispatch_stats *out);

/* Frees everything (after hk_dispatch_shutdown completed, or at exit). */
void hk_dispatch_free(hk_dispatch *d);

#endif
