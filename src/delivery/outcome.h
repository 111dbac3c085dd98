/*
 * outcome.h: what becomes of a delivery after one attempt (SPEC §4), as one pure function of
 * the answer. A 2xx is a success. A 410 Gone fails the delivery at once and disables the
 * webhook; an address the SSRF guard (or HOOKD_HTTPS_ONLY) refused fails it at once, since
 * nothing was sent; the last allowed attempt fails it. Anything else (3xx, which is never
 * followed, 4xx, 5xx, a timeout, a transport error) is retried after the backoff of
 * backoff.h, lengthened by a Retry-After answer to a 429 or 503.
 *
 * No clock, random source or I/O: the caller passes "now" and the uniform number for the
 * jitter, so the decision is tested with exact values (tests/unit/test_outcome.c). What the
 * dispatcher does with the decision (keep the retry in memory, write the result, count it) is
 * dispatcher.c's.
 */
#ifndef HK_OUTCOME_H
#define HK_OUTCOME_H

#include <stdint.h>

#include "core/config.h"
#include "delivery/httpc.h"

typedef enum hk_verdict {
    HK_VERDICT_SUCCESS = 0, /* delivered */
    HK_VERDICT_RETRY,       /* try again after delay_ms */
    HK_VERDICT_FAILED,      /* final failure: no more attempts */
} hk_verdict;

typedef struct hk_outcome {
    hk_verdict verdict;
    int cls;          /* the attempt's class for the metrics: HK_OUT_* of core/metrics.h */
    int gone;         /* FAILED by a 410 Gone: the webhook becomes disabled */
    int64_t delay_ms; /* RETRY: ms from now until the next attempt is due, else 0 */
    char msg[512];    /* not SUCCESS: the error recorded with the attempt ("HTTP 500", the
                         transport error); "" on success */
} hk_outcome;

/* How a failed attempt is retried: the HOOKD_RETRY_SCHEDULE delays (schedule_len >= 1) and
 * the HOOKD_RETRY_JITTER fraction (backoff.h). */
typedef struct hk_retry_policy {
    const int64_t *schedule;
    int schedule_len;
    double jitter;
} hk_retry_policy;

/* The policy of one webhook's deliveries (docs/API.md "Delivery policy"): its own retry
 * schedule when it has one (own_n >= 1), else the global HOOKD_RETRY_SCHEDULE of cfg, with the
 * global jitter either way; and its own attempt deadline (own_timeout_ms > 0) capped by
 * HOOKD_HTTP_TIMEOUT_MS, which leases are sized by, else that global deadline. Pure. */
void hk_policy_for(const hk_config *cfg, const int64_t *own, int own_n, int own_timeout_ms,
                   hk_retry_policy *policy, int *timeout_ms);

/* The metrics class of an answer: HK_OUT_REFUSED, else HK_OUT_TIMEOUT, else HK_OUT_CONNECT
 * (no status), else by status HK_OUT_2XX (< 300), 3XX, 4XX or 5XX (>= 500). */
int hk_outcome_class(const hk_httpc_resp *r);

/* Decides the fate of a delivery whose attempt number `attempt` (1-based) got the answer r,
 * when at most max_attempts are allowed, at wall-clock now_ms, with u a uniform random number
 * in [0,1) for the jitter. Fills *out (every field). Only the class 2XX is a success (a
 * timed-out answer with a status is not). Otherwise: FAILED when the status is 410 (gone = 1),
 * when r->refused, or when attempt >= max_attempts; else RETRY after
 * hk_backoff_delay_ms(policy, attempt, u), or after Retry-After (429 or 503 only, parsed
 * against now_ms, capped at HK_RETRY_AFTER_CAP_MS) when that is longer. Reads nothing but its
 * arguments. */
void hk_outcome_decide(const hk_httpc_resp *r, int attempt, int max_attempts,
                       const hk_retry_policy *policy, double u, int64_t now_ms, hk_outcome *out);

#endif
