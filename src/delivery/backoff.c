/*
 * backoff.c: retry timing (SPEC §4, see backoff.h): the jittered delay before retry n, and
 * Retry-After values (delta-seconds or any of the three HTTP-date forms of RFC 9110 §5.6.7,
 * read by hk_http_date_parse in core/time.c), all in int64 milliseconds. The
 * HOOKD_RETRY_SCHEDULE duration list is parsed by hk_duration_list_parse (core/time.c).
 *
 * Nothing here reads a clock or a random source: callers pass "now" and the uniform number,
 * so every function is deterministic and tested with exact values.
 */
#include "delivery/backoff.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "core/common.h"
#include "core/time.h"

#define MS_PER_S 1000LL

/* ---- backoff ------------------------------------------------------------------------------ */

/* schedule[min(retry, n) - 1] * (1 - jitter + 2 * jitter * u), rounded to the nearest ms; the
 * factor lies in [1 - jitter, 1 + jitter). Out-of-range inputs are clamped (retry to >= 1,
 * jitter to [0, 1], u to [0, 1)); an empty schedule gives 0. */
int64_t hk_backoff_delay_ms(const int64_t *schedule, int n, double jitter, int retry, double u)
{
    if (!schedule || n < 1) return 0;
    if (retry < 1) retry = 1;
    int64_t base = schedule[HK_MIN(retry, n) - 1];
    if (base <= 0) return 0;
    if (!(jitter > 0)) return base; /* also NaN */
    if (jitter > 1) jitter = 1;
    if (!(u >= 0)) u = 0;
    if (u >= 1) u = 0x1.fffffffffffffp-1; /* the largest double below 1 */
    double d = (double)base * (1.0 - jitter + 2.0 * jitter * u);
    return d <= 0 ? 0 : (int64_t)llround(d);
}

/* ---- Retry-After -------------------------------------------------------------------------- */

int hk_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    if (!value) return HK_EINVAL;
    /* trim optional whitespace (SP, HTAB) around the field value */
    const char *a = value, *b = value + strlen(value);
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    size_t len = (size_t)(b - a);
    if (len == 0) return HK_EINVAL;

    /* delta-seconds; a negative number is read as "now" and a huge one as the cap */
    int neg = *a == '-';
    size_t i = neg;
    while (i < len && isdigit((unsigned char)a[i])) i++;
    if (i == len && i > (size_t)neg) {
        int64_t secs = 0;
        for (size_t k = neg; k < len; k++) {
            secs = secs * 10 + (a[k] - '0');
            if (secs > HK_RETRY_AFTER_CAP_MS / MS_PER_S) break;
        }
        *delay_ms = neg ? 0 : HK_MIN(secs * MS_PER_S, HK_RETRY_AFTER_CAP_MS);
        return HK_OK;
    }

    char date[40]; /* the longest form, rfc850 with "Wednesday", is 37 characters */
    if (len >= sizeof date) return HK_EINVAL;
    memcpy(date, a, len);
    date[len] = '\0';
    int64_t at;
    if (hk_http_date_parse(date, now_ms, &at) != HK_OK) return HK_EINVAL;
    int64_t d = at - now_ms;
    *delay_ms = d < 0 ? 0 : HK_MIN(d, HK_RETRY_AFTER_CAP_MS);
    return HK_OK;
}
