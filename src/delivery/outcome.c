/*
 * outcome.c: the retry-or-fail decision after one attempt (see outcome.h for the rules): the
 * metrics class of the answer, the message recorded with a failed attempt, and success,
 * retry-at-delay or final failure. The delay itself is backoff.c's; this file only chooses
 * between the schedule and a Retry-After. Pure: no clock, no random source, no I/O.
 */
#include "delivery/outcome.h"

#include <stdio.h>
#include <string.h>

#include "core/metrics.h"
#include "delivery/backoff.h"

int hk_outcome_class(const hk_httpc_resp *r)
{
    if (r->refused) return HK_OUT_REFUSED;
    if (r->timed_out) return HK_OUT_TIMEOUT;
    if (!r->status) return HK_OUT_CONNECT;
    if (r->status < 300) return HK_OUT_2XX;
    if (r->status < 400) return HK_OUT_3XX;
    if (r->status < 500) return HK_OUT_4XX;
    return HK_OUT_5XX;
}

void hk_policy_for(const hk_config *cfg, const int64_t *own, int own_n, int own_timeout_ms,
                   hk_retry_policy *policy, int *timeout_ms)
{
    int mine = own && own_n >= 1;
    policy->schedule = mine ? own : cfg->retry_schedule;
    policy->schedule_len = mine ? own_n : cfg->retry_schedule_len;
    policy->jitter = cfg->retry_jitter;
    *timeout_ms = own_timeout_ms > 0 && own_timeout_ms < cfg->http_timeout_ms
                      ? own_timeout_ms
                      : cfg->http_timeout_ms;
}

/* The message of a failed attempt: "HTTP <status>" (redirects say they are not followed), or
 * the transport error when no status arrived. */
static void failure_message(const hk_httpc_resp *r, char *msg, size_t len)
{
    if (r->status)
        snprintf(msg, len, "HTTP %d%s", r->status,
                 r->status >= 300 && r->status < 400 ? " (redirects are not followed)" : "");
    else
        snprintf(msg, len, "%s", r->error ? r->error : "request failed");
}

void hk_outcome_decide(const hk_httpc_resp *r, int attempt, int max_attempts,
                       const hk_retry_policy *policy, double u, int64_t now_ms, hk_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->cls = hk_outcome_class(r);
    if (out->cls == HK_OUT_2XX) {
        out->verdict = HK_VERDICT_SUCCESS;
        return;
    }
    failure_message(r, out->msg, sizeof out->msg);
    if (r->status == 410 || r->refused || attempt >= max_attempts) {
        out->verdict = HK_VERDICT_FAILED;
        out->gone = r->status == 410;
        return;
    }
    int64_t delay =
        hk_backoff_delay_ms(policy->schedule, policy->schedule_len, policy->jitter, attempt, u);
    int64_t ra;
    if ((r->status == 429 || r->status == 503) && r->retry_after &&
        hk_retry_after_parse(r->retry_after, now_ms, &ra) == 0 && ra > delay)
        delay = ra;
    out->verdict = HK_VERDICT_RETRY;
    out->delay_ms = delay;
}
