/*
 * job.h: a delivery as the dispatcher holds it in memory, and the shared request body.
 *
 * A job is one webhook_delivery row leased to this node: enough to sign and send it without
 * reading the store again. The body (the SPEC §4 envelope) is an hk_blob shared by every job of
 * the same event whose webhook does not exclude fields, so an event fanned out to ten webhooks
 * is rendered and held once. Blobs are reference-counted on the loop thread; the store thread
 * creates them and hands them over with the jobs (one owner at a time, so no atomics).
 */
#ifndef HK_JOB_H
#define HK_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "core/ids.h"

typedef struct hk_blob {
    int refs;
    size_t len;
    char data[]; /* len bytes + NUL */
} hk_blob;

/* A new blob holding a copy of p[0..n) with one reference. */
hk_blob *hk_blob_new(const void *p, size_t n);
static inline hk_blob *hk_blob_ref(hk_blob *b)
{
    b->refs++;
    return b;
}
void hk_blob_unref(hk_blob *b); /* NULL ok */

/* Renders the delivery body of SPEC §4 into a new blob:
 * {"id":"<event id>","type":"<type>","created_at":"<ISO ms Z>","data":<data>}
 * data must be compact JSON (it is copied as is); type is a valid event type. */
hk_blob *hk_envelope_render(const char *event_id, const char *type, int64_t created_ms,
                            const char *data, size_t data_len);

enum hk_dl_status { HK_DL_PENDING = 0, HK_DL_SUCCESS, HK_DL_FAILED, HK_DL_RETRYING };
const char *hk_dl_status_name(int status);
/* -1 if unknown */
int hk_dl_status_parse(const char *s);

typedef struct hk_job {
    char id[HK_ID_MAX];         /* whde_ */
    char webhook_id[HK_ID_MAX]; /* wh_ */
    char event_id[HK_ID_MAX];   /* whev_ */
    hk_blob *body;              /* owned reference */
    int status;                 /* HK_DL_PENDING or HK_DL_RETRYING */
    int attempt_number;         /* attempts already made */
    int max_attempts;           /* attempts allowed in all (maxRetries + 1) */
    int64_t due_ms;             /* next_retry_at */
    int64_t created_ms;         /* delivery creation (for end-to-end latency) */

    /* Dispatcher-private from here on; zero when the store hands the job over. */
    struct hk_job *next; /* per-webhook ready FIFO */
    uint32_t heap_idx;   /* position in the timer heap + 1, 0 if not in it */
    void *xfer;          /* the attempt in flight, if any */
    int64_t rl_slot;     /* monotonic ms: projected start while the rate limit makes
                            it wait; 0 = none */
    int64_t rl_noted;    /* wall ms of that start as written to its row; 0 = none */
} hk_job;

hk_job *hk_job_new(void);
void hk_job_free(hk_job *job); /* drops the body reference too; NULL ok */

#endif
