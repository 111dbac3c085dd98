/*
 * backoff.h: when the next attempt of a failed delivery is due (SPEC §4). The delay before
 * retry n (1-based) is schedule[n-1] (the last entry repeating) scaled by a random factor in
 * [1 - jitter, 1 + jitter]; a Retry-After answer to a 429 or 503 lengthens the wait (never
 * shortens it) up to 24 hours.
 */
#ifndef HK_BACKOFF_H
#define HK_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define HK_RETRY_AFTER_CAP_MS (24LL * 3600 * 1000)

/* Delay in ms before retry number `retry` (1-based) given the schedule, the jitter fraction
 * (0..1) and u, a uniform random number in [0,1) (passed in so tests are deterministic). */
int64_t hk_backoff_delay_ms(const int64_t *schedule, int n, double jitter, int retry, double u);

/* Parses a Retry-After header value: delta-seconds ("120") or an HTTP-date (IMF-fixdate, RFC
 * 850 or asctime) relative to now_ms. Returns 0 and the delay in ms clamped to
 * [0, HK_RETRY_AFTER_CAP_MS], or HK_EINVAL if unparseable. */
int hk_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);

#endif
