/*
 * metrics.c: the fixed metric set and its Prometheus rendering (see metrics.h).
 */
#include "core/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "core/common.h"

static const int64_t bucket_ms[HK_HIST_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

typedef struct hist {
    atomic_llong b[HK_HIST_BUCKETS]; /* last one is +Inf */
    atomic_llong count, sum;
} hist;

struct hk_metrics {
    atomic_llong ingested[HK_SRC_MAX];
    atomic_llong attempts[HK_OUT_MAX];
    atomic_llong deliveries[HK_DLM_MAX];
    atomic_llong wh_disabled[HK_WD_MAX];
    atomic_llong counters[HK_C_MAX];
    atomic_llong gauges[HK_G_MAX];
    atomic_llong store_rows[HK_TBL_MAX];
    atomic_int store_rows_set; /* hookd_store_rows is rendered once known */
    atomic_llong pruned[HK_PR_MAX];
    atomic_llong retention_lag_s;
    hist h[HK_H_MAX];
};

hk_metrics *hk_metrics_new(void)
{
    return hk_calloc(1, sizeof(hk_metrics));
}

void hk_metrics_free(hk_metrics *m)
{
    free(m);
}

void hk_m_ingested(hk_metrics *m, int source, int64_t n)
{
    if (m && source >= 0 && source < HK_SRC_MAX) atomic_fetch_add(&m->ingested[source], n);
}

void hk_m_observe(hk_metrics *m, int h, int64_t ms)
{
    if (!m || h < 0 || h >= HK_H_MAX) return;
    if (ms < 0) ms = 0;
    int i = 0;
    while (i < HK_HIST_BUCKETS - 1 && ms > bucket_ms[i]) i++;
    atomic_fetch_add(&m->h[h].b[i], 1);
    atomic_fetch_add(&m->h[h].count, 1);
    atomic_fetch_add(&m->h[h].sum, ms);
}

void hk_m_attempt(hk_metrics *m, int outcome, int64_t ms)
{
    if (!m || outcome < 0 || outcome >= HK_OUT_MAX) return;
    atomic_fetch_add(&m->attempts[outcome], 1);
    hk_m_observe(m, HK_H_ATTEMPT_MS, ms);
}

void hk_m_delivery(hk_metrics *m, int status)
{
    if (m && status >= 0 && status < HK_DLM_MAX) atomic_fetch_add(&m->deliveries[status], 1);
}

void hk_m_webhook_disabled(hk_metrics *m, int reason)
{
    if (m && reason >= 0 && reason < HK_WD_MAX) atomic_fetch_add(&m->wh_disabled[reason], 1);
}

void hk_m_inc(hk_metrics *m, int c, int64_t n)
{
    if (m && c >= 0 && c < HK_C_MAX) atomic_fetch_add(&m->counters[c], n);
}

void hk_m_pruned(hk_metrics *m, int table, int64_t n)
{
    if (m && table >= 0 && table < HK_PR_MAX) atomic_fetch_add(&m->pruned[table], n);
}

void hk_m_retention_lag(hk_metrics *m, int64_t seconds)
{
    if (m) atomic_store(&m->retention_lag_s, seconds);
}

void hk_m_gauge(hk_metrics *m, int g, int64_t v)
{
    if (m && g >= 0 && g < HK_G_MAX) atomic_store(&m->gauges[g], v);
}

int64_t hk_m_counter_value(const hk_metrics *m, int c)
{
    return m && c >= 0 && c < HK_C_MAX ? atomic_load(&((hk_metrics *)m)->counters[c]) : 0;
}

void hk_m_store_rows(hk_metrics *m, int t, int64_t v)
{
    if (!m || t < 0 || t >= HK_TBL_MAX) return;
    atomic_store(&m->store_rows[t], v);
    atomic_store(&m->store_rows_set, 1);
}

static void family(hk_buf *o, const char *name, const char *type, const char *help)
{
    hk_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_hist(hk_buf *o, const char *name, const char *help, hist *h)
{
    family(o, name, "histogram", help);
    long long cum = 0;
    for (int i = 0; i < HK_HIST_BUCKETS; i++) {
        cum += atomic_load(&h->b[i]);
        if (i < HK_HIST_BUCKETS - 1)
            hk_buf_printf(o, "%s_bucket{le=\"%lld\"} %lld\n", name, (long long)bucket_ms[i], cum);
        else
            hk_buf_printf(o, "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
    }
    hk_buf_printf(o, "%s_sum %lld\n%s_count %lld\n", name, (long long)atomic_load(&h->sum), name,
                  (long long)atomic_load(&h->count));
}

int hk_metrics_render(const hk_metrics *cm, hk_buf *o)
{
    hk_metrics *m = (hk_metrics *)cm;
    static const char *src[HK_SRC_MAX] = {"api", "manual", "nats", "kumomta"};
    static const char *out[HK_OUT_MAX] = {"2xx",     "3xx",     "4xx",    "5xx",
                                          "timeout", "connect", "refused"};
    static const char *dls[HK_DLM_MAX] = {"success", "failed", "retrying"};
    static const char *wds[HK_WD_MAX] = {"gone", "failures"};
    static const struct {
        const char *name, *help;
    } cnt[HK_C_MAX] = {
        {"hookd_deliveries_created_total", "Deliveries created by ingested events."},
        {"hookd_events_duplicate_total", "Ingests answered as duplicates of an idempotency key."},
        {"hookd_ingest_rejected_total", "Ingest requests refused with a 4xx."},
        {"hookd_ingest_unavailable_total", "Ingest requests refused with 503 (store down)."},
        {"hookd_nats_dropped_total", "NATS messages dropped (bad JSON, no organization, ...)."},
        {"hookd_store_groups_total", "Store write transactions committed."},
    };
    static const struct {
        const char *name, *help;
    } gg[HK_G_MAX] = {
        {"hookd_queue_depth", "Deliveries held by this node and due, waiting for a slot."},
        {"hookd_inflight", "Delivery attempts in flight."},
        {"hookd_held", "Deliveries held in this node's memory (due later, due now, in flight)."},
        {"hookd_store_queued", "Store requests queued and not yet completed."},
        {"hookd_store_bytes",
         "Bytes the store occupies (SQLite: database pages + -wal file; PostgreSQL: hookd's "
         "tables with their indexes and TOAST)."},
        {"hookd_store_up", "1 if the last store check (every 5 s, and each /health) succeeded."},
    };
    family(o, "hookd_events_ingested_total", "counter", "Events stored, by source.");
    for (int i = 0; i < HK_SRC_MAX; i++)
        hk_buf_printf(o, "hookd_events_ingested_total{source=\"%s\"} %lld\n", src[i],
                      (long long)atomic_load(&m->ingested[i]));
    family(o, "hookd_attempts_total", "counter", "Delivery attempts, by outcome.");
    for (int i = 0; i < HK_OUT_MAX; i++)
        hk_buf_printf(o, "hookd_attempts_total{outcome=\"%s\"} %lld\n", out[i],
                      (long long)atomic_load(&m->attempts[i]));
    family(o, "hookd_deliveries_total", "counter",
           "Delivery outcomes: success and failed are final, retrying counts retries scheduled.");
    for (int i = 0; i < HK_DLM_MAX; i++)
        hk_buf_printf(o, "hookd_deliveries_total{status=\"%s\"} %lld\n", dls[i],
                      (long long)atomic_load(&m->deliveries[i]));
    family(o, "hookd_webhooks_disabled_total", "counter",
           "Webhooks taken out of service by their results: gone (410, status disabled), "
           "failures (HOOKD_DISABLE_AFTER, status failed).");
    for (int i = 0; i < HK_WD_MAX; i++)
        hk_buf_printf(o, "hookd_webhooks_disabled_total{reason=\"%s\"} %lld\n", wds[i],
                      (long long)atomic_load(&m->wh_disabled[i]));
    for (int i = 0; i < HK_C_MAX; i++) {
        family(o, cnt[i].name, "counter", cnt[i].help);
        hk_buf_printf(o, "%s %lld\n", cnt[i].name, (long long)atomic_load(&m->counters[i]));
    }
    for (int i = 0; i < HK_G_MAX; i++) {
        family(o, gg[i].name, "gauge", gg[i].help);
        hk_buf_printf(o, "%s %lld\n", gg[i].name, (long long)atomic_load(&m->gauges[i]));
    }
    if (atomic_load(&m->store_rows_set)) {
        static const char *tbl[HK_TBL_MAX] = {"event", "delivery", "attempt", "webhook"};
        family(o, "hookd_store_rows", "gauge",
               "Rows per table (SQLite: counted; PostgreSQL: the statistics' estimate).");
        for (int i = 0; i < HK_TBL_MAX; i++)
            hk_buf_printf(o, "hookd_store_rows{table=\"%s\"} %lld\n", tbl[i],
                          (long long)atomic_load(&m->store_rows[i]));
    }
    static const char *prt[HK_PR_MAX] = {"event", "delivery", "attempt"};
    family(o, "hookd_pruned_total", "counter", "Rows deleted by retention, by table.");
    for (int i = 0; i < HK_PR_MAX; i++)
        hk_buf_printf(o, "hookd_pruned_total{table=\"%s\"} %lld\n", prt[i],
                      (long long)atomic_load(&m->pruned[i]));
    family(o, "hookd_retention_lag_seconds", "gauge",
           "How far past the retention the oldest finished row not yet pruned is; 0 when "
           "caught up (or retention is off).");
    hk_buf_printf(o, "hookd_retention_lag_seconds %lld\n",
                  (long long)atomic_load(&m->retention_lag_s));
    render_hist(o, "hookd_attempt_duration_ms", "Duration of delivery attempts in milliseconds.",
                &m->h[HK_H_ATTEMPT_MS]);
    render_hist(o, "hookd_delivery_latency_ms",
                "From event ingest to successful delivery, in milliseconds.", &m->h[HK_H_E2E_MS]);
    render_hist(o, "hookd_ingest_duration_ms",
                "From request arrival to the ingest answer (after commit), in milliseconds.",
                &m->h[HK_H_INGEST_MS]);
    return HK_OK;
}
