/*
 * store_stats.c: the refresh of hookd_store_rows, hookd_store_bytes and hookd_store_up (see
 * store_stats.h). One request at a time: a tick that finds the previous one still in flight
 * (a slow count, a store that hangs) skips, so a struggling store is never sent a pile of them.
 */
#include "store/store_stats.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/time.h"

struct hk_store_stats {
    hk_store *st;
    hk_metrics *m;
    struct event *timer;
    hk_req req;
    int inflight;
    int64_t next_rows_at; /* monotonic ms: the next tick at or after it counts rows */
    int64_t sent_ms;      /* monotonic ms the request in flight was submitted */
};

int64_t hk_store_stats_rows_delay(int64_t took_ms)
{
    if (took_ms < 0) took_ms = 0;
    int64_t d = took_ms * HK_STORE_STATS_ROWS_SHARE;
    return d > HK_STORE_STATS_EVERY_MS ? d : HK_STORE_STATS_EVERY_MS;
}

static void arm(hk_store_stats *s, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

static void on_stats(hk_req *req)
{
    hk_store_stats *s = req->udata;
    s->inflight = 0;
    if (req->rc == HK_ESHUTDOWN) return; /* hk_store_close: no more ticks */
    hk_m_gauge(s->m, HK_G_STORE_UP, req->rc == 0);
    if (req->rc) return;
    hk_m_gauge(s->m, HK_G_STORE_BYTES, req->u.stats.bytes);
    if (req->u.stats.want_rows) {
        int64_t now = hk_mono_ms();
        for (int i = 0; i < HK_TBL_MAX; i++) hk_m_store_rows(s->m, i, req->u.stats.rows[i]);
        s->next_rows_at = now + hk_store_stats_rows_delay(now - s->sent_ms) -
                          HK_STORE_STATS_EVERY_MS / 10; /* ticks are not exact */
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    HK_UNUSED(fd);
    HK_UNUSED(what);
    hk_store_stats *s = arg;
    arm(s, HK_STORE_STATS_EVERY_MS);
    if (s->inflight) return;
    memset(&s->req, 0, sizeof s->req);
    s->req.kind = HK_REQ_STORE_STATS;
    s->req.done = on_stats;
    s->req.udata = s;
    s->sent_ms = hk_mono_ms();
    s->req.u.stats.want_rows = s->sent_ms >= s->next_rows_at;
    s->inflight = 1;
    hk_store_submit(s->st, &s->req);
}

hk_store_stats *hk_store_stats_start(struct event_base *base, hk_store *st, hk_metrics *m)
{
    if (!m) return NULL;
    hk_store_stats *s = hk_calloc(1, sizeof *s);
    s->st = st;
    s->m = m;
    s->timer = evtimer_new(base, on_tick, s);
    arm(s, 0);
    return s;
}

void hk_store_stats_free(hk_store_stats *s)
{
    if (!s) return;
    if (s->timer) event_free(s->timer);
    free(s);
}
