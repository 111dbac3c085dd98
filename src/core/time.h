/*
 * time.h: clocks, ISO-8601, HTTP-dates and durations. hookd keeps wall-clock instants as int64
 * milliseconds since the Unix epoch (UTC) everywhere inside; the API prints them as
 * "2026-01-02T03:04:05.678Z". Durations and deadlines that must not jump with the wall clock use
 * the monotonic clock.
 */
#ifndef HK_TIME_H
#define HK_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t hk_now_ms(void);  /* wall clock, ms since epoch */
int64_t hk_mono_ms(void); /* monotonic, ms */
int64_t hk_mono_us(void); /* monotonic, µs */

#define HK_ISO_LEN 25 /* "2026-01-02T03:04:05.678Z" + NUL */

/* Writes ms as ISO-8601 UTC with milliseconds and 'Z' into out (HK_ISO_LEN bytes). */
void hk_iso_format(int64_t ms, char out[HK_ISO_LEN]);

/* Parses an ISO-8601 / RFC 3339 instant: date "YYYY-MM-DD", optionally followed by 'T' or ' '
 * and "HH:MM[:SS[.fraction]]" and a zone ('Z', "+HH:MM", "-HHMM"; none = UTC). Returns 0 and
 * ms since epoch, or HK_EINVAL. */
int hk_iso_parse(const char *s, int64_t *ms_out);

/* Parses an HTTP-date (RFC 9110 §5.6.7, as in Retry-After) into ms since the epoch:
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"  (2-digit year: within 50 years of now_ms)
 *   asctime      "Sun Nov  6 08:49:37 1994"
 * exactly (no surrounding space). Returns 0, or HK_EINVAL if s is none of these. */
int hk_http_date_parse(const char *s, int64_t now_ms, int64_t *ms_out);

/* Parses one duration ("1500ms", "5s", "2h"; units ms, s, m, h, d; a bare number is ms).
 * HK_EINVAL if malformed or beyond int64 ms. */
int hk_duration_parse(const char *s, int64_t *out_ms);

/* The most items hk_duration_list_parse takes (HOOKD_RETRY_SCHEDULE). */
#define HK_RETRY_SCHEDULE_MAX 64

/* Parses a comma-separated list of durations ("5s,5m,30m,2h,5h,10h"; spaces around items
 * allowed; each > 0 and <= 7 days; 1..HK_RETRY_SCHEDULE_MAX items) into out_ms. Returns the
 * number of items, or HK_EINVAL with err naming the bad item. */
int hk_duration_list_parse(const char *s, int64_t *out_ms, int max, char *err, size_t errlen);

#endif
