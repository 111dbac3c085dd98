/*
 * rollup.h: the statistics' rollups (docs/API.md "Statistics"). Each results batch adds its
 * stored attempts to one row per (webhook, minute) in webhook_stats: counts by outcome
 * (delivered = a 2xx, failed = an attempt that will be retried, given up = a final failure),
 * the time of the last attempt, and two latency histograms (attempt duration, and end-to-end:
 * the delivery's creation to its success). A histogram is a fixed array of HK_SH_BUCKETS counts
 * on a log scale from 1 ms to 10 min, so rows merge by adding element-wise, across nodes (the
 * upsert adds) and from minutes to hours and days (the read adds). A percentile read from one is
 * the geometric middle of its bucket: within HK_SH_ERROR_PCT percent of the true value (for
 * values between 1 ms and 10 min; below 1 ms it reads 0, above 10 min 600000).
 *
 * The rows are written by the results request (store.c's policy, one upsert per webhook and
 * minute per request), never derived from the delivery tables, and pruned with the retention.
 * Pure functions here; the backends hold the SQL.
 *
 * Coarser rollups: the same request adds the same attempts to one row per (webhook, hour) and
 * one per (webhook, day) (UTC) in webhook_stats_coarse, in the same transaction, so that a read
 * by hour or by day adds up at most one row per bucket (a 7-day read by hour: 168 rows, not
 * 10,080 minute rows). hk_rollup_grain picks the coarsest grain that divides the interval and
 * both ends of the window; minute, hour and day rows of the same attempts hold the same sums, so
 * the answer does not depend on the grain read (the histograms add exactly).
 */
#ifndef HK_STORE_ROLLUP_H
#define HK_STORE_ROLLUP_H

#include <stdint.h>

#include "store/store.h"

#define HK_SH_BUCKETS   48
#define HK_SH_MAX_MS    600000
#define HK_SH_ERROR_PCT 16
#define HK_SH_TEXT_MAX  (HK_SH_BUCKETS * 21 + 3)

/* the rollups' grains in ms: minute rows in webhook_stats, hour and day rows in
 * webhook_stats_coarse (keyed by grain) */
#define HK_ROLLUP_MINUTE 60000LL
#define HK_ROLLUP_HOUR   3600000LL
#define HK_ROLLUP_DAY    86400000LL

/* One (webhook, grain, start) row, as written or read. */
typedef struct hk_rollup_row {
    char webhook_id[HK_ID_MAX];
    int64_t start; /* wall ms, a multiple of grain */
    int64_t grain; /* HK_ROLLUP_MINUTE, _HOUR or _DAY */
    int64_t delivered, failed, given_up;
    int64_t last_at; /* wall ms of the last attempt's end */
    int64_t att[HK_SH_BUCKETS];
    int64_t e2e[HK_SH_BUCKETS];
} hk_rollup_row;

/* The histogram bucket of a value in ms: 0 for < 1 ms, HK_SH_BUCKETS - 1 for >= 10 min. */
int hk_sh_bucket(int64_t ms);
/* The value a percentile in bucket i reads (the geometric middle of its bounds). */
int64_t hk_sh_value(int i);
/* The q-quantile (0 < q <= 1) of histogram h, or -1 if it is empty. */
int64_t hk_sh_quantile(const int64_t *h, double q);
/* Writes h as an array literal "{n0,n1,...}" without trailing zeros ("{}" if empty) into out
 * (HK_SH_TEXT_MAX bytes); the same text on both stores. */
void hk_sh_format(const int64_t *h, char *out);
/* Adds the array literal s (as hk_sh_format writes it, or NULL) to h element-wise. Returns 0, or
 * -1 if s is not such a literal (h then holds what was read before). */
int hk_sh_parse_add(int64_t *h, const char *s);

/* The minute rows of the attempts a results request stored (hk_result.stored), one per webhook
 * and minute, sorted by (webhook, minute) so that concurrent writers lock them in one order.
 * Returns their number; *out is allocated (free it) or NULL when there are none. */
int hk_rollup_collect(const hk_result *items, int n, hk_rollup_row **out);

/* The rows of every grain for the same attempts: the minute rows of hk_rollup_collect, then
 * the hour rows, then the day rows, each group sorted by (webhook, start) (so every writer
 * locks rows in the order (table, webhook, grain, start)). Returns their number; *out as
 * above. */
int hk_rollup_collect_all(const hk_result *items, int n, hk_rollup_row **out);

/* The coarsest grain (HK_ROLLUP_DAY, _HOUR, _MINUTE) that divides interval, from and to (wall
 * ms): the rows a read of buckets of interval over [from, to) adds up exactly. HK_ROLLUP_MINUTE
 * when none divides them (the minute rows, bucketed by their start). */
int64_t hk_rollup_grain(int64_t interval, int64_t from, int64_t to);

/* Adds row r's counts and histograms into acc. */
void hk_rollup_merge(hk_rollup_row *acc, const hk_rollup_row *r);

#endif
