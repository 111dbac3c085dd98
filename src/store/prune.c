/*
 * prune.c: retention's cut-offs (pure) and the pruner, the timer that runs prune steps on the
 * loop (see prune.h). One step is in flight at a time; its request lives in the pruner.
 */
#include "store/prune.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/time.h"

#define STEP_GAP_MS       50    /* between the steps of a round: ingests get the writer */
#define FIRST_ROUND_MS    1000  /* after start */
#define VACUUM_STEP_PAGES 1024  /* SQLite: most free pages returned per step */
#define ROUND_LOG_MS      60000 /* a round longer than this logs what it did so far */

void hk_prune_cutoffs(int64_t now, int64_t retention_ms, int64_t unmatched_ms, int64_t *dl_cut,
                      int64_t *ev_cut)
{
    *dl_cut = retention_ms > 0 ? now - retention_ms : 0;
    int64_t ev = retention_ms;
    if (unmatched_ms > 0 && (ev <= 0 || unmatched_ms < ev)) ev = unmatched_ms;
    *ev_cut = ev > 0 ? now - ev : 0;
    if (*dl_cut < 0) *dl_cut = 0;
    if (*ev_cut < 0) *ev_cut = 0;
}

int64_t hk_prune_lag_s(int64_t dl_cut, int64_t oldest, int64_t ev_cut, int64_t ev_pos_at,
                       int ev_more)
{
    int64_t lag = 0;
    if (dl_cut > 0 && oldest > 0 && oldest < dl_cut) lag = dl_cut - oldest;
    if (ev_more && ev_cut > 0 && ev_pos_at < ev_cut && ev_cut - ev_pos_at > lag)
        lag = ev_cut - ev_pos_at;
    return lag / 1000;
}

void hk_prune_req_init(hk_req *req, const hk_config *cfg, int64_t now)
{
    req->kind = HK_REQ_PRUNE;
    req->now = now;
    hk_prune_cutoffs(now, cfg->retention_ms, cfg->retention_unmatched_ms, &req->u.prune.dl_cut,
                     &req->u.prune.ev_cut);
    req->u.prune.limit = cfg->prune_batch;
    req->u.prune.vacuum_pages = VACUUM_STEP_PAGES;
}

struct hk_pruner {
    struct event_base *base;
    hk_store *st;
    const hk_config *cfg;
    hk_metrics *m;
    struct event *timer;
    hk_req req;
    int busy, stopping;
    /* carried from step to step */
    int64_t floor;     /* no finished delivery completed before this is left */
    int64_t ev_pos_at; /* the event scan's position after the last step (for the lag) */
    /* the round */
    int64_t t0, events, deliveries, attempts, vacuumed;
    int64_t step_t0, busy_ms, step_max_ms; /* steps' time from submit to done */
    int steps, failed_logged;
};

static void arm(hk_pruner *p, int ms)
{
    if (p->stopping) return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

/* One log line for the round so far if anything went; counts start again. */
static void round_log(hk_pruner *p)
{
    if (p->events || p->deliveries || p->attempts)
        HK_LOG(HK_LOG_INFO, "store.pruned", HK_LI("events", p->events),
               HK_LI("deliveries", p->deliveries), HK_LI("attempts", p->attempts),
               HK_LI("steps", p->steps), HK_LI("ms", hk_mono_ms() - p->t0),
               HK_LI("step_ms_total", p->busy_ms), HK_LI("step_ms_max", p->step_max_ms),
               HK_LI("vacuumed_pages", p->vacuumed));
    p->steps = 0;
}

/* Ends the round: its log line, then the next round after the interval. */
static void round_end(hk_pruner *p)
{
    round_log(p);
    arm(p, p->cfg->prune_interval_ms);
}

static void on_step(hk_req *req)
{
    hk_pruner *p = req->udata;
    p->busy = 0;
    int64_t took = hk_mono_ms() - p->step_t0;
    p->busy_ms += took;
    if (took > p->step_max_ms) p->step_max_ms = took;
    if (req->rc) {
        if (req->rc != HK_ESHUTDOWN && !p->failed_logged) {
            HK_LOG(HK_LOG_WARN, "store.prune_failed", HK_LS("msg", hk_strerror(req->rc)),
                   HK_LS("detail", req->err));
            p->failed_logged = 1;
        }
        hk_req_clear(req);
        round_end(p);
        return;
    }
    p->failed_logged = 0;
    if (req->u.prune.skipped) { /* another node prunes (PostgreSQL): its gauge says the lag */
        hk_m_retention_lag(p->m, 0);
        round_end(p);
        return;
    }
    p->steps++;
    HK_LOG(HK_LOG_DEBUG, "store.prune_step", HK_LI("events", req->u.prune.events),
           HK_LI("deliveries", req->u.prune.deliveries), HK_LI("attempts", req->u.prune.attempts),
           HK_LI("ms", took), HK_LI("more", req->u.prune.more));
    p->events += req->u.prune.events;
    p->deliveries += req->u.prune.deliveries;
    p->attempts += req->u.prune.attempts;
    p->vacuumed += req->u.prune.vacuumed;
    hk_m_pruned(p->m, HK_PR_EVENT, req->u.prune.events);
    hk_m_pruned(p->m, HK_PR_DELIVERY, req->u.prune.deliveries);
    hk_m_pruned(p->m, HK_PR_ATTEMPT, req->u.prune.attempts);
    /* below the oldest left (or, with none left, the cut-off) there is nothing more to find */
    int64_t floor = req->u.prune.oldest ? req->u.prune.oldest : req->u.prune.dl_cut;
    if (floor > p->floor) p->floor = floor;
    p->ev_pos_at = req->u.prune.ev_pos_at;
    int ev_more = req->u.prune.more && req->u.prune.ev_cut > 0;
    hk_m_retention_lag(p->m, hk_prune_lag_s(req->u.prune.dl_cut, req->u.prune.oldest,
                                            req->u.prune.ev_cut, p->ev_pos_at, ev_more));
    if (!req->u.prune.more) {
        round_end(p);
        return;
    }
    /* a round that lasts (pruning behind a heavy stream) still logs once a minute */
    if (hk_mono_ms() - p->t0 >= ROUND_LOG_MS) round_log(p);
    arm(p, STEP_GAP_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    hk_pruner *p = arg;
    HK_UNUSED(fd);
    HK_UNUSED(what);
    if (p->stopping || p->busy) return;
    if (p->steps == 0) {
        p->t0 = hk_mono_ms();
        p->events = p->deliveries = p->attempts = p->vacuumed = 0;
        p->busy_ms = p->step_max_ms = 0;
    }
    memset(&p->req, 0, sizeof p->req);
    hk_prune_req_init(&p->req, p->cfg, hk_now_ms());
    p->req.u.prune.dl_floor = p->floor;
    p->req.done = on_step;
    p->req.udata = p;
    p->busy = 1;
    p->step_t0 = hk_mono_ms();
    hk_store_submit(p->st, &p->req);
}

hk_pruner *hk_pruner_start(struct event_base *base, hk_store *st, const hk_config *cfg,
                           hk_metrics *m)
{
    if (cfg->retention_ms <= 0 && cfg->retention_unmatched_ms <= 0) return NULL;
    hk_pruner *p = hk_calloc(1, sizeof *p);
    p->base = base;
    p->st = st;
    p->cfg = cfg;
    p->m = m;
    p->timer = evtimer_new(base, on_timer, p);
    arm(p, HK_MIN(FIRST_ROUND_MS, cfg->prune_interval_ms));
    return p;
}

void hk_pruner_stop(hk_pruner *p)
{
    if (!p) return;
    p->stopping = 1;
    evtimer_del(p->timer);
}

void hk_pruner_free(hk_pruner *p)
{
    if (!p) return;
    event_free(p->timer);
    free(p);
}
