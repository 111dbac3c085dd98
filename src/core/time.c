/*
 * time.c: clocks, and the text forms of instants and durations hookd reads and writes, without
 * locale or TZ dependence: ISO-8601 (the API), HTTP-dates (Retry-After), durations ("5s",
 * HOOKD_RETRY_SCHEDULE). One calendar (days_from_civil, civil_from_days) serves them all.
 *
 * Why not curl_getdate() for HTTP-dates: it also takes what RFC 9110 does not (no zone or one
 * other than GMT, one-digit days, two-digit years in IMF-fixdate, "GMT+1", 31 Feb), and reads
 * an RFC 850 year "76" as 1976 where RFC 9110 says within 50 years of now (2076), so
 * Retry-After values refused today would start to count (tests/unit/test_backoff.c).
 */
#include "core/time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/common.h"

#define MS_PER_S        1000LL
#define MS_PER_MIN      (60 * MS_PER_S)
#define MS_PER_HOUR     (60 * MS_PER_MIN)
#define MS_PER_DAY      (24 * MS_PER_HOUR)
#define SCHEDULE_MAX_MS (7 * MS_PER_DAY)
#define ITEM_MAX        32 /* longest list item we look at ("9999999999ms" is 12) */

int64_t hk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hk_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hk_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* The year of a day count since 1970-01-01. */
static int64_t year_from_days(int64_t z)
{
    int64_t y;
    int m, d;
    civil_from_days(z, &y, &m, &d);
    return y;
}

/* Days in month m (1..12) of year y of the proleptic Gregorian calendar. */
static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

void hk_iso_format(int64_t ms, char out[HK_ISO_LEN])
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), msec);
    memcpy(out, tmp, HK_ISO_LEN - 1);
    out[HK_ISO_LEN - 1] = '\0';
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return HK_EINVAL;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return HK_OK;
}

int hk_iso_parse(const char *s, int64_t *ms_out)
{
    if (!s) return HK_EINVAL;
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, se = 0, msec = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return HK_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return HK_EINVAL;
    int64_t off_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return HK_EINVAL;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &se)) return HK_EINVAL;
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0;
                msec = 0;
                while (*p >= '0' && *p <= '9') {
                    if (n < 3) msec = msec * 10 + (*p - '0');
                    n++;
                    p++;
                }
                if (n == 0 || n > 9) return HK_EINVAL;
                for (; n < 3; n++) msec *= 10;
            }
        }
        if (h > 23 || mi > 59 || se > 60) return HK_EINVAL;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (digits(&p, 2, &oh)) return HK_EINVAL;
            if (*p == ':') p++;
            if (digits(&p, 2, &om)) return HK_EINVAL;
            if (oh > 23 || om > 59) return HK_EINVAL;
            off_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p) return HK_EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - off_s;
    *ms_out = secs * 1000 + msec;
    return HK_OK;
}

/* ---- HTTP-date (RFC 9110 §5.6.7) ---------------------------------------------------------- */

static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

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

/* The forms are listed in time.h. Day and month names are case-insensitive; the day name is not
 * checked against the date. */
int hk_http_date_parse(const char *s, int64_t now_ms, int64_t *ms_out)
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
