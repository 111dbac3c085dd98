/*
 * store_stats.h: the store's size and health on /metrics: hookd_store_rows{table},
 * hookd_store_bytes and hookd_store_up (issue 16, part 4). A timer on the loop submits one
 * HK_REQ_STORE_STATS read at a time (a reader thread runs it, never the writer, so ingest
 * commits do not wait for it) and sets the gauges from its answer.
 *
 * Cadence: bytes and hookd_store_up every HK_STORE_STATS_EVERY_MS (the request doubles as the
 * store check: hookd_store_up is 1 when it succeeded, 0 when the store did not answer; the
 * /health routes set it too). Rows cost more on SQLite (count(*) reads a whole index), so they
 * are refreshed at most that often and otherwise spaced out so that counting takes at most
 * 1/HK_STORE_STATS_ROWS_SHARE of one reader's time: a count that took 500 ms is repeated
 * 50 s later (2 million rows in each table took 0.1 s, page cache warm). On PostgreSQL rows
 * are the statistics' estimate and cost nothing, so they follow the bytes.
 */
#ifndef HK_STORE_STATS_H
#define HK_STORE_STATS_H

#include "core/metrics.h"
#include "store/store.h"

#define HK_STORE_STATS_EVERY_MS   5000
#define HK_STORE_STATS_ROWS_SHARE 100

typedef struct hk_store_stats hk_store_stats;

/* Starts the refresh on base: the first request is submitted at once. m may be NULL (nothing
 * to do: returns NULL). The store must outlive the returned object until hk_store_close has
 * returned (it completes the request in flight; the callback then only records the answer). */
hk_store_stats *hk_store_stats_start(struct event_base *base, hk_store *st, hk_metrics *m);

/* Stops the timer and frees s (NULL ok). Call after hk_store_close, before the loop is freed. */
void hk_store_stats_free(hk_store_stats *s);

/* The delay before the next row count, given how long the last one took (pure: unit-tested):
 * at least HK_STORE_STATS_EVERY_MS, else took_ms x HK_STORE_STATS_ROWS_SHARE. */
int64_t hk_store_stats_rows_delay(int64_t took_ms);

#endif
