/*
 * ingest.c: the ingest door (ingest.h): reserve -> store -> dispatcher -> metrics -> the
 * source's callback, for every source. A submission borrows the caller's hk_req and puts a
 * small record of its own in req->udata while the store has it (the reservation, the caller's
 * callback and udata, the options the completion needs), so sources keep their requests where
 * they like (an hk_call, a NATS batch).
 */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/time.h"
#include "delivery/dispatcher.h"

/* Store requests queued beyond which an ingest is refused (HTTP: 503) or waits (NATS). */
#define STORE_BACKLOG_MAX 100000

struct hk_ingest {
    const hk_config *cfg;
    hk_store *store;
    hk_dispatch *dispatch;
    hk_metrics *metrics;
};

/* One submission in the store's hands. */
typedef struct pending {
    hk_ingest *in;
    int reserved; /* lease budget taken from the dispatcher's window */
    int64_t start_us;
    int retries;
    hk_req_done done; /* the source's */
    void *udata;      /* the source's */
} pending;

static const char *const source_names[HK_SRC_MAX] = {"api", "manual", "nats", "kumomta"};

hk_ingest *hk_ingest_new(const hk_config *cfg, hk_store *store, hk_dispatch *dispatch,
                         hk_metrics *metrics)
{
    hk_ingest *in = hk_calloc(1, sizeof *in);
    in->cfg = cfg;
    in->store = store;
    in->dispatch = dispatch;
    in->metrics = metrics;
    return in;
}

void hk_ingest_free(hk_ingest *in)
{
    free(in);
}

const char *hk_ingest_source_name(int source)
{
    return source >= 0 && source < HK_SRC_MAX ? source_names[source] : "api";
}

/* HK_SRC_* of an item's source name (an unknown name counts as "api"). */
static int source_id(const char *name)
{
    for (int s = 0; name && s < HK_SRC_MAX; s++)
        if (strcmp(name, source_names[s]) == 0) return s;
    return HK_SRC_API;
}

int hk_ingest_backlogged(const hk_ingest *in)
{
    return hk_store_queued(in->store) > STORE_BACKLOG_MAX;
}

int hk_ingest_admit(hk_ingest *in)
{
    if (hk_store_healthy(in->store) && !hk_ingest_backlogged(in)) return 0;
    hk_m_inc(in->metrics, HK_C_INGEST_UNAVAILABLE, 1);
    return HK_EUNAVAIL;
}

/* What a committed ingest did, in the metrics: events stored per source (duplicates apart),
 * duplicates, deliveries created. */
static void count_stored(hk_ingest *in, const hk_req *req)
{
    int64_t stored[HK_SRC_MAX] = {0};
    int64_t dups = 0, deliveries = 0;
    for (int i = 0; i < req->u.ingest.n; i++) {
        const hk_ingest_item *it = &req->u.ingest.items[i];
        if (it->duplicate) {
            dups++;
        } else {
            stored[source_id(it->source)]++;
            deliveries += it->ndeliveries;
        }
    }
    for (int s = 0; s < HK_SRC_MAX; s++)
        if (stored[s]) hk_m_ingested(in->metrics, s, stored[s]);
    hk_m_inc(in->metrics, HK_C_DUPLICATES, dups);
    hk_m_inc(in->metrics, HK_C_DELIVERIES_CREATED, deliveries);
}

static void on_stored(hk_req *req)
{
    pending *p = req->udata;
    hk_ingest *in = p->in;
    hk_dispatch_ingested(in->dispatch, req, p->reserved);
    if (req->rc == 0) {
        count_stored(in, req);
        if (p->start_us)
            hk_m_observe(in->metrics, HK_H_INGEST_MS, (hk_mono_us() - p->start_us) / 1000);
    } else if (req->rc == HK_ELIMIT) {
        hk_m_inc(in->metrics, HK_C_INGEST_REJECTED, 1);
    } else if ((req->rc == HK_EUNAVAIL || req->rc == HK_ESHUTDOWN) && !p->retries) {
        hk_m_inc(in->metrics, HK_C_INGEST_UNAVAILABLE, 1);
    }
    hk_req_done done = p->done;
    req->done = done;
    req->udata = p->udata;
    free(p);
    done(req);
}

void hk_ingest_submit(hk_ingest *in, hk_req *req, hk_ingest_item *items, int n,
                      const hk_ingest_opts *opts, hk_req_done done)
{
    pending *p = hk_calloc(1, sizeof *p);
    p->in = in;
    p->reserved = hk_dispatch_reserve(in->dispatch, n, opts->org);
    p->start_us = opts->start_us;
    p->retries = opts->retries;
    p->done = done;
    p->udata = req->udata;
    req->kind = HK_REQ_INGEST;
    req->org_id = opts->org;
    req->node_id = in->cfg->node_id;
    req->u.ingest.items = items;
    req->u.ingest.n = n;
    req->u.ingest.lease_budget = p->reserved;
    req->u.ingest.max_per_event = opts->max_per_event;
    req->u.ingest.max_total = opts->max_total;
    req->done = on_stored;
    req->udata = p;
    hk_store_submit(in->store, req);
}
