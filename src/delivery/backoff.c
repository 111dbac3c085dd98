/*
 * backoff.c: retry timing (SPEC §4, see backoff.h): the HOOKD_RETRY_SCHEDULE duration list,
 * the jittered delay before retry n, and Retry-After values (delta-seconds or any of the three
 * HTTP-date forms of RFC 9110 §5.6.7), all in int64 milliseconds.
 *
 * Nothing here reads a clock or a random source: callers pass "now" and the uniform number,
 * so every function is deterministic and tested with exact values.
 */
#include "delivery/backoff.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"

#define MS_PER_S        1000LL
#define MS_PER_MIN      (60 * MS_PER_S)
#define MS_PER_HOUR     (60 * MS_PER_MIN)
#define MS_PER_DAY      (24 * MS_PER_HOUR)
#define SCHEDULE_MAX_MS (7 * MS_PER_DAY)
#define ITEM_MAX        32 /* longest list item we look at ("9999999999ms" is 12) */

/* ---- durations ---------------------------------------------------------------------------- */

int hk_duration_parse(const char *s, int64_t *out_ms)
{
    if (!s || !isdigit((unsigned char)*s)) return HK_EINVAL;
    int64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10) return HK_EINVAL;
        v = v * 10 + d;
    }
    int64_t unit;
    if (*s == '\0' || strcmp(s, "ms") == 0)
        unit = 1;
    else if (strcmp(s, "s") == 0)
        unit = MS_PER_S;
    else if (strcmp(s, "m") == 0)
        unit = MS_PER_MIN;
    else if (strcmp(s, "h") == 0)
        unit = MS_PER_HOUR;
    else if (strcmp(s, "d") == 0)
        unit = MS_PER_DAY;
    else
        return HK_EINVAL;
    if (v > INT64_MAX / unit) return HK_EINVAL;
    *out_ms = v * unit;
    return HK_OK;
}

/* Items are split on ',' and trimmed of spaces and tabs; out_ms is written only on success. */
int hk_duration_list_parse(const char *s, int64_t *out_ms, int max, char *err, size_t errlen)
{
    int64_t tmp[HK_RETRY_SCHEDULE_MAX];
    int limit = HK_MIN(max, HK_RETRY_SCHEDULE_MAX);
    int n = 0;
    if (err && errlen) err[0] = '\0';
    if (!s || limit < 1) return HK_EINVAL;

    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        size_t len = (size_t)(b - a);
        if (len == 0) {
            if (err && errlen) {
                if (n == 0 && *end == '\0')
                    snprintf(err, errlen, "needs at least one delay");
                else
                    snprintf(err, errlen, "item %d is empty", n + 1);
            }
            return HK_EINVAL;
        }
        if (n == limit) {
            if (err && errlen) snprintf(err, errlen, "more than %d delays", limit);
            return HK_EINVAL;
        }
        char item[ITEM_MAX + 1];
        int64_t ms = 0;
        int ok = len <= ITEM_MAX;
        if (ok) {
            memcpy(item, a, len);
            item[len] = '\0';
            ok = hk_duration_parse(item, &ms) == HK_OK;
        }
        int shown = (int)HK_MIN(len, ITEM_MAX);
        if (!ok) {
            if (err && errlen)
                snprintf(err, errlen,
                         "\"%.*s\" (item %d) is not a duration: use a whole number and a unit "
                         "ms, s, m, h or d, e.g. 5s",
                         shown, a, n + 1);
            return HK_EINVAL;
        }
        if (ms <= 0 || ms > SCHEDULE_MAX_MS) {
            if (err && errlen)
                snprintf(err, errlen, "\"%.*s\" (item %d) must be more than 0 and at most 7d",
                         shown, a, n + 1);
            return HK_EINVAL;
        }
        tmp[n++] = ms;
        if (*end == '\0') break;
        p = end + 1;
    }
    memcpy(out_ms, tmp, (size_t)n * sizeof tmp[0]);
    return n;
}

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

static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year of a day count since 1970-01-01 (inverse of days_from_civil, year only). */
static int64_t year_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return yoe + era * 400 + (m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* A cursor over the value being parsed. */
typedef struct {
    const char *p;
} cur;

/* Consumes a name of the table (case-insensitive, exact length); returns its index or -1. */
static int take_name(cur *c, const char *const *names, int count)
{
    for (int i = 0; i < count; i++) {
        size_t len = strlen(names[i]);
        if (strncasecmp(c->p, names[i], len) == 0 && !isalpha((unsigned char)c->p[len])) {
            c->p += len;
            return i;
        }
    }
    return -1;
}

static int take_char(cur *c, char ch)
{
    if (*c->p != ch) return 0;
    c->p++;
    return 1;
}

/* Exactly n digits; -1 if not there. */
static int take_digits(cur *c, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)c->p[i])) return -1;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    return v;
}

/* "HH:MM:SS" into seconds of the day; -1 if malformed or out of range (a leap second 60 is
 * accepted). */
static int take_time(cur *c)
{
    int h = take_digits(c, 2);
    if (h < 0 || h > 23 || !take_char(c, ':')) return -1;
    int m = take_digits(c, 2);
    if (m < 0 || m > 59 || !take_char(c, ':')) return -1;
    int s = take_digits(c, 2);
    if (s < 0 || s > 60) return -1;
    return h * 3600 + m * 60 + s;
}

static int take_gmt(cur *c)
{
    if (strncasecmp(c->p, "GMT", 3) != 0) return 0;
    c->p += 3;
    return 1;
}

/* Parses an HTTP-date (RFC 9110 §5.6.7) into ms since the epoch:
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"  (2-digit year: within 50 years of now)
 *   asctime      "Sun Nov  6 08:49:37 1994"
 * Day and month names are case-insensitive; the day name is not checked against the date. */
static int http_date_parse(const char *s, int64_t now_ms, int64_t *ms_out)
{
    cur c = {s};
    int64_t year;
    int mon, day, secs;

    if (take_name(&c, day_long, 7) < 0 && take_name(&c, day_short, 7) < 0) return HK_EINVAL;
    if (take_char(&c, ',')) {
        if (!take_char(&c, ' ') || (day = take_digits(&c, 2)) < 0) return HK_EINVAL;
        if (take_char(&c, '-')) { /* rfc850-date */
            if ((mon = take_name(&c, month_names, 12)) < 0 || !take_char(&c, '-')) return HK_EINVAL;
            int yy = take_digits(&c, 2);
            if (yy < 0) return HK_EINVAL;
            int64_t now_year = year_from_days(now_ms / MS_PER_DAY);
            year = now_year - now_year % 100 + yy;
            if (year > now_year + 50)
                year -= 100;
            else if (year <= now_year - 50)
                year += 100;
        } else { /* IMF-fixdate */
            if (!take_char(&c, ' ') || (mon = take_name(&c, month_names, 12)) < 0 ||
                !take_char(&c, ' ') || (year = take_digits(&c, 4)) < 0)
                return HK_EINVAL;
        }
        if (!take_char(&c, ' ') || (secs = take_time(&c)) < 0 || !take_char(&c, ' ') ||
            !take_gmt(&c))
            return HK_EINVAL;
    } else { /* asctime-date */
        if (!take_char(&c, ' ') || (mon = take_name(&c, month_names, 12)) < 0 ||
            !take_char(&c, ' '))
            return HK_EINVAL;
        if (take_char(&c, ' '))
            day = take_digits(&c, 1);
        else
            day = take_digits(&c, 2);
        if (day < 0 || !take_char(&c, ' ') || (secs = take_time(&c)) < 0 || !take_char(&c, ' ') ||
            (year = take_digits(&c, 4)) < 0)
            return HK_EINVAL;
    }
    if (*c.p != '\0') return HK_EINVAL;
    mon += 1;
    if (day < 1 || day > days_in_month(year, mon)) return HK_EINVAL;
    *ms_out = (days_from_civil(year, mon, day) * 86400 + secs) * MS_PER_S;
    return HK_OK;
}

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
    if (http_date_parse(date, now_ms, &at) != HK_OK) return HK_EINVAL;
    int64_t d = at - now_ms;
    *delay_ms = d < 0 ? 0 : HK_MIN(d, HK_RETRY_AFTER_CAP_MS);
    return HK_OK;
}
