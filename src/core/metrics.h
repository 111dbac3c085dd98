/*
 * metrics.h: hookd's counters, gauges and histograms, rendered as Prometheus text at /metrics.
 * The set is fixed at compile time (an enum per family, fixed label values), so recording is
 * an array index and an atomic add: cheap enough for every attempt. Safe from any thread.
 */
#ifndef HK_METRICS_H
#define HK_METRICS_H

#include <stdint.h>

#include "core/buf.h"

/* hookd_events_ingested_total{source} */
enum { HK_SRC_API = 0, HK_SRC_MANUAL, HK_SRC_NATS, HK_SRC_KUMOMTA, HK_SRC_MAX };
/* hookd_attempts_total{outcome} */
enum {
    HK_OUT_2XX = 0,
    HK_OUT_3XX,
    HK_OUT_4XX,
    HK_OUT_5XX,
    HK_OUT_TIMEOUT,
    HK_OUT_CONNECT, /* connection or other transport error */
    HK_OUT_REFUSED, /* SSRF guard */
    HK_OUT_MAX
};
/* hookd_deliveries_total{status}: final outcomes and retries scheduled */
enum { HK_DLM_SUCCESS = 0, HK_DLM_FAILED, HK_DLM_RETRYING, HK_DLM_MAX };
/* hookd_webhooks_disabled_total{reason}: webhooks this node's results took out of service,
 * gone = the endpoint answered 410 (status disabled), failures = HOOKD_DISABLE_AFTER final
 * failures in a row (status failed) */
enum { HK_WD_GONE = 0, HK_WD_FAILURES, HK_WD_MAX };
/* plain counters */
enum {
    HK_C_DELIVERIES_CREATED = 0, /* hookd_deliveries_created_total */
    HK_C_DUPLICATES,             /* hookd_events_duplicate_total */
    HK_C_INGEST_REJECTED,        /* hookd_ingest_rejected_total (4xx at ingest) */
    HK_C_INGEST_UNAVAILABLE,     /* hookd_ingest_unavailable_total (503) */
    HK_C_NATS_DROPPED,           /* hookd_nats_dropped_total */
    HK_C_STORE_COMMITS,          /* hookd_store_groups_total */
    HK_C_MAX
};
/* histograms (milliseconds) */
enum { HK_H_ATTEMPT_MS = 0, HK_H_E2E_MS, HK_H_INGEST_MS, HK_H_MAX };
/* gauges, set by their owners */
enum {
    HK_G_QUEUE_DEPTH = 0,
    HK_G_INFLIGHT,
    HK_G_HELD,
    HK_G_STORE_QUEUED,
    HK_G_STORE_BYTES, /* hookd_store_bytes (src/store/store_stats.c) */
    HK_G_STORE_UP,    /* hookd_store_up: 1 if the last store check succeeded */
    HK_G_MAX
};
/* hookd_store_rows{table}: rows per table, refreshed by src/store/store_stats.c */
enum { HK_TBL_EVENT = 0, HK_TBL_DELIVERY, HK_TBL_ATTEMPT, HK_TBL_WEBHOOK, HK_TBL_MAX };

/* hookd_pruned_total{table}: rows deleted by retention */
enum { HK_PR_EVENT = 0, HK_PR_DELIVERY, HK_PR_ATTEMPT, HK_PR_MAX };

#define HK_HIST_BUCKETS 16

typedef struct hk_metrics hk_metrics;

hk_metrics *hk_metrics_new(void);
void hk_metrics_free(hk_metrics *m);

/* All of these accept m == NULL (no-op), so components work without metrics. */
void hk_m_ingested(hk_metrics *m, int source, int64_t n);
void hk_m_attempt(hk_metrics *m, int outcome, int64_t ms);
void hk_m_delivery(hk_metrics *m, int status);
void hk_m_webhook_disabled(hk_metrics *m, int reason);
void hk_m_inc(hk_metrics *m, int counter, int64_t n);
void hk_m_observe(hk_metrics *m, int hist, int64_t ms);
void hk_m_gauge(hk_metrics *m, int gauge, int64_t v);
int64_t hk_m_counter_value(const hk_metrics *m, int counter);
/* Sets hookd_store_rows{table} (HK_TBL_*); until first set, the family is not rendered. */
void hk_m_store_rows(hk_metrics *m, int table, int64_t v);
/* Retention: rows pruned from table (HK_PR_*), and hookd_retention_lag_seconds (how far past
 * the retention the oldest finished row not yet pruned is; 0 when caught up). */
void hk_m_pruned(hk_metrics *m, int table, int64_t n);
void hk_m_retention_lag(hk_metrics *m, int64_t seconds);

/* Appends the Prometheus text exposition (version 0.0.4) of every metric to out. */
int hk_metrics_render(const hk_metrics *m, hk_buf *out);

#endif
