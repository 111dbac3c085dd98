/*
 * dispatcher_int.h: private to the dispatcher's files (dispatcher.c, writers.c): the
 * structures they share and the few calls between them. dispatcher.c is the core (the webhook
 * cache, the organizations' lines, the timer heap, the window, attempts, claims, leases and
 * the heartbeat, shutdown); writers.c writes to the store what the core decided (results
 * batches, jobs handed back, projected starts of rate-limited jobs). Nothing outside
 * src/delivery/dispatcher*.c and writers.c includes this; the public contract is
 * dispatcher.h.
 *
 * Everything here runs on the loop thread. Names shared between the two files are hk_dsp_*.
 */
#ifndef HK_DISPATCHER_INT_H
#define HK_DISPATCHER_INT_H

#include <event2/event.h>
#include <stdint.h>

#include "core/map.h"
#include "core/metrics.h"
#include "delivery/dispatcher.h" /* and queue/queue.h: the limiter's hk_rl_slot */
#include "delivery/fairq.h"
#include "delivery/httpc.h"
#include "delivery/sign.h"

typedef struct org {
    char *id;       /* the webhooks' org_id; "" for webhooks not loaded yet */
    hk_fq_group fq; /* its run list, its place in line, its attempts in flight */
    int held;       /* jobs in memory */
    int reserved;   /* room reserved by its ingests in flight */
    int nwhc;       /* cached webhooks of this organization */
} org;

typedef struct whc {
    char id[HK_ID_MAX];
    org *o;                /* its organization (d->noorg until the settings load) */
    int64_t progress_mono; /* last attempt finished, or first started after none was in
                              flight: a webhook in flight that has not moved since is
                              stalled (make_room) */
    hk_webhook *wh;        /* NULL until loaded */
    hk_sign_key *keys;
    int nkeys;
    hk_ed_key ed[2]; /* its live Ed25519 keys (scheme ed25519) */
    int ned;
    int64_t *sched; /* the webhook's own retry schedule (parsed), or NULL: the global one */
    int nsched;
    char *hdr_static;  /* Content-Type, User-Agent, custom headers: "Name: v\n"... */
    hk_blob *hdr_json; /* hdr_static as a JSON object, recorded once per version */
    char hdr_ref[65];  /* its reference in the store (hk_headers_ref) */
    int64_t loaded_mono;
    int loading;
    int dead;                  /* deleted */
    hk_job *rq_head, *rq_tail; /* due jobs */
    int nready;
    int inflight;
    int held;           /* jobs of this webhook in memory */
    int64_t avg_ms;     /* EWMA of attempt durations */
    hk_rl_slot rl;      /* rate limit: the queue's limiter (limiter.h) */
    int64_t rl_tail;    /* monotonic ms: projected start of the last job in rq while
                           the rate limit makes the webhook wait; 0 = not waiting */
    struct event *wake; /* rate-limit wait */
    int waking;
    hk_fq_item fq; /* in its organization's run list while runnable */
    int64_t last_used_mono;
    struct hk_dispatch *d;
} whc;

typedef struct attempt {
    hk_dispatch *d;
    whc *w;
    hk_job *job;
    hk_httpc_xfer *xfer;
    int64_t started_wall;
    char *req_headers; /* this attempt's own headers (JSON), for request_headers */
    hk_blob *hdr_json; /* the webhook's static headers sent (a reference) */
    char hdr_ref[65];
    struct attempt *prev, *next;
} attempt;

typedef struct results_batch {
    hk_req req;
    hk_dispatch *d;
    hk_result *items;
    int n, cap;
} results_batch;

typedef struct pending_release { /* (id, due time) items waiting to be written */
    hk_release *items;
    int n, cap;
} pending_release;

typedef struct resched_req { /* projected starts being written (HK_REQ_RESCHEDULE) */
    hk_req req;
    struct hk_dispatch *d;
} resched_req;

struct hk_dispatch {
    struct event_base *base;
    const hk_config *cfg;
    hk_store *store;
    hk_queue *queue;
    hk_metrics *m;
    int64_t commits_seen; /* hk_store_commits at the last metrics update */
    hk_httpc *http;

    hk_map whcs;
    hk_map orgs;      /* org by id */
    org *noorg;       /* webhooks whose settings are not loaded yet */
    hk_fq fq;         /* whose turn it is (fairq.h) */
    int orgs_holding; /* organizations (noorg included) that hold jobs */
    hk_job **heap;
    int nheap, heapcap;
    struct event *heap_timer;
    int64_t heap_timer_at;

    int held, inflight, reserved, waiting;
    attempt *attempts; /* in flight */

    struct event *tick; /* claim poll + housekeeping */
    struct event *hb_timer;
    struct event *soon; /* deferred pump/claim */
    int claiming;
    int claim_limit;        /* rows the claim in flight may bring: counted in `reserved` until it
                               answers, so that ingests meanwhile do not take the same room */
    int claim_more;         /* the last claim was full or work is known to be due */
    int64_t room_made_mono; /* last make_room that deferred jobs (monotonic ms) */
    int64_t last_hb_ok;     /* monotonic ms at which the last committed heartbeat was
                               sent: this node's leases run until then + lease_ms */
    int64_t hb_sent;        /* monotonic ms at which the heartbeat in flight was sent */
    int hb_inflight;
    int lease_doubt;   /* attempts paused (leases_sure said no) */
    int results_stuck; /* attempts paused: the last results batch was refused */

    results_batch *rb_cur;    /* accumulating */
    results_batch *rb_flight; /* being written */
    struct event *rb_retry;

    pending_release rel;
    int rel_inflight;
    struct event *rel_retry;

    pending_release resched; /* projected starts of rate-limited jobs, to write */
    int resched_inflight;

    int stopping;
    int64_t stop_deadline;
    struct event *stop_timer;
    void (*stop_done)(void *);
    void *stop_arg;
    int stop_signalled;
};

/* ---- the core (dispatcher.c), called by the writers ------------------------------------------ */

/* Starts as many attempts as the limits allow, then writes the projected starts noted and
 * claims if the window has room. A no-op while stopping or while leases are in doubt. */
void hk_dsp_pump(hk_dispatch *d);

/* While stopping: calls the shutdown's done callback once nothing is in flight, every result is
 * written and every job handed back; else does nothing. */
void hk_dsp_check_stopped(hk_dispatch *d);

/* Puts w at the back of its organization's run list if it has due jobs and is not there yet,
 * and the organization in line (pump serves it). */
void hk_dsp_whc_make_runnable(hk_dispatch *d, whc *w);

/* ---- the writers (writers.c) -------------------------------------------------------------------
 */

/* Creates the writers' retry timers on d->base (after the rest of d is set up). */
void hk_dsp_writers_init(hk_dispatch *d);

/* Frees the batches, the pending lists and the timers (hk_dispatch_free). */
void hk_dsp_writers_free(hk_dispatch *d);

/* A zeroed result at the end of the batch being gathered, for the caller to fill; the batch
 * owns the strings and blob the caller puts in it. Written by the next hk_dsp_flush_results. */
hk_result *hk_dsp_result_add(hk_dispatch *d);

/* Submits the gathered results as one HK_REQ_RESULTS unless a batch is already being written
 * (its completion flushes the next). A refused batch is kept and written again every
 * RESULTS_RETRY_MS, with d->results_stuck set meanwhile (no attempt starts); a written one
 * applies the webhooks' status changes, tells the queue (results_done), then pumps. */
void hk_dsp_flush_results(hk_dispatch *d);

/* Queues delivery id to be handed back to the store, due at next_retry_at (0 = parked). The
 * caller has dropped or still frees the job; hk_dsp_flush_release writes it. */
void hk_dsp_release_add(hk_dispatch *d, const char *id, int64_t next_retry_at);

/* Hands the queued jobs back through the queue (hk_queue_release), one call in flight at a
 * time; a refused call keeps them and tries again after RELEASE_RETRY_MS. On success it sets
 * d->claim_more (released work may be due now). */
void hk_dsp_flush_release(hk_dispatch *d);

/* Queues the projected start `at` (wall ms) of a rate-limited job to be written to its row. */
void hk_dsp_resched_add(hk_dispatch *d, const char *id, int64_t at);

/* Writes the projected starts queued so far (HK_REQ_RESCHEDULE), one request in flight at a
 * time; nothing while stopping. A failure is only logged: the jobs are in memory, only what
 * the rows show is stale. */
void hk_dsp_flush_resched(hk_dispatch *d);

#endif
