/*
 * rollup.c: the statistics' histograms and the per-minute rows a results request adds up
 * (see rollup.h). Bucket 0 holds values under 1 ms, buckets 1..46 the ranges
 * [R^(i-1), R^i) ms with R = 600000^(1/46) (about 1.335), bucket 47 values of 10 min and more.
 */
#include "store/rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/map.h"

#define LOG_BUCKETS (HK_SH_BUCKETS - 2)

/* ln R */
static double log_ratio(void)
{
    return log((double)HK_SH_MAX_MS) / LOG_BUCKETS;
}

int hk_sh_bucket(int64_t ms)
{
    if (ms < 1) return 0;
    if (ms >= HK_SH_MAX_MS) return HK_SH_BUCKETS - 1;
    int i = 1 + (int)floor(log((double)ms) / log_ratio());
    if (i < 1) i = 1;
    if (i > LOG_BUCKETS) i = LOG_BUCKETS;
    return i;
}

int64_t hk_sh_value(int i)
{
    if (i <= 0) return 0;
    if (i >= HK_SH_BUCKETS - 1) return HK_SH_MAX_MS;
    return (int64_t)llround(exp(((double)i - 0.5) * log_ratio()));
}

int64_t hk_sh_quantile(const int64_t *h, double q)
{
    int64_t total = 0;
    for (int i = 0; i < HK_SH_BUCKETS; i++) total += h[i];
    if (total <= 0) return -1;
    int64_t rank = (int64_t)ceil(q * (double)total);
    if (rank < 1) rank = 1;
    int64_t seen = 0;
    for (int i = 0; i < HK_SH_BUCKETS; i++) {
        seen += h[i];
        if (seen >= rank) return hk_sh_value(i);
    }
    return hk_sh_value(HK_SH_BUCKETS - 1);
}

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the length. By hand, not
 * snprintf: every results write formats two histograms for each of its rows of three grains,
 * and snprintf's 48 calls a histogram were a tenth of the writer's time with 1,000 webhooks. */
static size_t put_i64(char *p, int64_t v)
{
    char tmp[20];
    size_t n = 0, o = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) p[o++] = '-';
    while (n) p[o++] = tmp[--n];
    return o;
}

void hk_sh_format(const int64_t *h, char *out)
{
    int last = -1;
    for (int i = 0; i < HK_SH_BUCKETS; i++)
        if (h[i]) last = i;
    size_t o = 0;
    out[o++] = '{';
    for (int i = 0; i <= last; i++) {
        if (i) out[o++] = ',';
        o += put_i64(out + o, h[i]);
    }
    out[o++] = '}';
    out[o] = '\0';
}

/* Digits by hand, not strtoll: a read by minute parses 2 x 1,440 literals of up to 48 counts,
 * and strtoll's locale and sign handling was most of its time. */
int hk_sh_parse_add(int64_t *h, const char *s)
{
    if (!s) return 0;
    if (*s++ != '{') return -1;
    for (int i = 0; *s != '}'; i++) {
        if (i >= HK_SH_BUCKETS || *s < '0' || *s > '9') return -1;
        int64_t v = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            int d = *s - '0';
            if (v > (INT64_MAX - d) / 10) return -1;
            v = v * 10 + d;
        }
        h[i] += v;
        if (*s == ',')
            s++;
        else if (*s != '}')
            return -1;
    }
    return s[1] == '\0' ? 0 : -1;
}

void hk_rollup_merge(hk_rollup_row *acc, const hk_rollup_row *r)
{
    acc->delivered += r->delivered;
    acc->failed += r->failed;
    acc->given_up += r->given_up;
    if (r->last_at > acc->last_at) acc->last_at = r->last_at;
    for (int i = 0; i < HK_SH_BUCKETS; i++) {
        acc->att[i] += r->att[i];
        acc->e2e[i] += r->e2e[i];
    }
}

/* qsort order of rows: webhook id, then start. */
static int row_cmp(const void *a, const void *b)
{
    const hk_rollup_row *x = a, *y = b;
    int c = strcmp(x->webhook_id, y->webhook_id);
    if (c) return c;
    return x->start < y->start ? -1 : x->start > y->start;
}

int hk_rollup_collect(const hk_result *items, int n, hk_rollup_row **out)
{
    *out = NULL;
    hk_rollup_row *rows = NULL;
    int nr = 0;
    int *older = NULL; /* older[k]: the row of rows[k]'s webhook made before it, + 1 (0: none) */
    hk_map last;       /* webhook id -> its newest row + 1 (keys inside rows) */
    hk_map_init(&last);
    for (int i = 0; i < n; i++) {
        const hk_result *x = &items[i];
        if (!x->stored) continue;
        int64_t minute = x->finished_at - (x->finished_at % 60000);
        hk_rollup_row *r = NULL;
        intptr_t newest = (intptr_t)hk_map_get(&last, x->webhook_id);
        for (intptr_t k = newest; k && !r; k = older[k - 1])
            if (rows[k - 1].start == minute) r = &rows[k - 1];
        if (!r) {
            if (!rows) {
                rows = hk_calloc((size_t)n, sizeof *rows);
                older = hk_calloc((size_t)n, sizeof *older);
            }
            older[nr] = (int)newest;
            r = &rows[nr++];
            hk_strlcpy(r->webhook_id, x->webhook_id, HK_ID_MAX);
            r->start = minute;
            r->grain = HK_ROLLUP_MINUTE;
            hk_map_put(&last, r->webhook_id, (void *)(intptr_t)nr);
        }
        if (x->attempt_ok)
            r->delivered++;
        else if (x->final)
            r->given_up++;
        else
            r->failed++;
        if (x->finished_at > r->last_at) r->last_at = x->finished_at;
        r->att[hk_sh_bucket(x->duration_ms)]++;
        if (x->attempt_ok && x->created_at > 0)
            r->e2e[hk_sh_bucket(x->finished_at - x->created_at)]++;
    }
    hk_map_free(&last);
    free(older);
    if (nr > 1) qsort(rows, (size_t)nr, sizeof *rows, row_cmp);
    *out = rows;
    return nr;
}

/* Appends to out[*no] the rows of grain g that the sorted minute rows m[0..n) add up to (one per
 * webhook and start; adjacent, since m is sorted by webhook then minute). */
static void coarsen(const hk_rollup_row *m, int n, int64_t g, hk_rollup_row *out, int *no)
{
    hk_rollup_row *r = NULL;
    for (int i = 0; i < n; i++) {
        int64_t start = m[i].start - m[i].start % g;
        if (!r || r->start != start || strcmp(r->webhook_id, m[i].webhook_id) != 0) {
            r = &out[(*no)++];
            memset(r, 0, sizeof *r);
            hk_strlcpy(r->webhook_id, m[i].webhook_id, HK_ID_MAX);
            r->start = start;
            r->grain = g;
        }
        hk_rollup_merge(r, &m[i]);
    }
}

int hk_rollup_collect_all(const hk_result *items, int n, hk_rollup_row **out)
{
    hk_rollup_row *m;
    int nm = hk_rollup_collect(items, n, &m);
    *out = NULL;
    if (!nm) return 0;
    hk_rollup_row *all = hk_malloc(sizeof *all * (size_t)nm * 3);
    memcpy(all, m, sizeof *all * (size_t)nm);
    free(m);
    int no = nm;
    coarsen(all, nm, HK_ROLLUP_HOUR, all, &no);
    coarsen(all, nm, HK_ROLLUP_DAY, all, &no);
    *out = all;
    return no;
}

int64_t hk_rollup_grain(int64_t interval, int64_t from, int64_t to)
{
    static const int64_t coarse[] = {HK_ROLLUP_DAY, HK_ROLLUP_HOUR};
    for (int i = 0; i < 2; i++) {
        int64_t g = coarse[i];
        if (interval > 0 && interval % g == 0 && from % g == 0 && to % g == 0) return g;
    }
    return HK_ROLLUP_MINUTE;
}
