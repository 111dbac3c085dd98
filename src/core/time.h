/*
 * time.h: clocks and ISO-8601. hookd keeps wall-clock instants as int64 milliseconds since
 * the Unix epoch (UTC) everywhere inside; the API prints them as "2026-01-02T03:04:05.678Z".
 * Durations and deadlines that must not jump with the wall clock use the monotonic clock.
 */
#ifndef HK_TIME_H
#define HK_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t hk_now_ms(void);      /* wall clock, ms since epoch */
int64_t hk_mono_ms(void);     /* monotonic, ms */
int64_t hk_mono_us(void);     /* monotonic, µs */

#define HK_ISO_LEN 25 /* "2026-01-02T03:04:05.678Z" + NUL */

/* Writes ms as ISO-8601 UTC with milliseconds and 'Z' into out (HK_ISO_LEN bytes). */
void hk_iso_format(int64_t ms, char out[HK_ISO_LEN]);

/* Parses an ISO-8601 / RFC 3339 instant: date "YYYY-MM-DD", optionally followed by 'T' or ' '
 * and "HH:MM[:SS[.fraction]]" and a zone ('Z', "+HH:MM", "-HHMM"; none = UTC). Returns 0 and
 * ms since epoch, or HK_EINVAL. */
int hk_iso_parse(const char *s, int64_t *ms_out);

#endif
