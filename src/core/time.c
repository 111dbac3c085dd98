/*
 * time.c: clocks and ISO-8601 formatting/parsing without locale or TZ dependence.
 */
#include "core/time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/common.h"

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
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return HK_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return HK_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) return HK_EINVAL;
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
