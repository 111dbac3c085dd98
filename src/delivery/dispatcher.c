/*
 * dispatcher.c: the delivery engine (see dispatcher.h for what it promises): its core. Here
 * are the webhook cache, the organizations' lines, the timer heap, the window (holding,
 * deferring, making room), the attempts, claims, leases and the heartbeat, and shutdown. What
 * becomes of a delivery after an attempt is outcome.c's pure decision; the writes to the store
 * (results, jobs handed back, projected starts) are writers.c's.
 *
 * Structures:
 *  - whc: one per webhook seen, keyed by id: the webhook's settings (refreshed from the store
 *    when older than CACHE_TTL_MS), its signing keys, its FIFO of due jobs, its in-flight
 *    count and its rate-limit log.
 *  - org: one per organization with cached webhooks: its attempts in flight, its jobs held and
 *    its run list (its webhooks that have due jobs and may start one).
 *  - the fair queue (fairq.h): whose turn it is. Slots are handed out round-robin by
 *    organization, then by webhook inside it, one attempt per turn, so every organization,
 *    then every endpoint, gets its share of the global in-flight budget; an organization with
 *    nothing in flight goes first, and one at HOOKD_ORG_MAX_INFLIGHT waits out of line until
 *    one of its attempts ends. So an organization whose endpoints all hang holds at most its
 *    cap, and another organization's first job takes the next free slot before any more of
 *    the first one's.
 *  - the timer heap: jobs due later (retries kept in memory, claims made ahead of time).
 *  - the results batch: finished attempts waiting to be written; one store request is in
 *    flight at a time and the next batch takes everything that finished meanwhile. It, the
 *    jobs handed back and the projected starts are written by writers.c; the structures are
 *    shared through dispatcher_int.h.
 *
 * Rate limit (SPEC §4): a webhook's line waits in memory, in order, and starts as the limiter
 * (ratelimit.h) allows. When the limit makes it wait, every waiting job gets its projected start
 * (the head's at the wait the limiter answered, each next one paced after it), and the ones more
 * than RL_NOTE_MS away have it written to their row's next_retry_at (HK_REQ_RESCHEDULE), so the
 * API shows when a held delivery goes out and a restart resumes it then, not in a burst.
 *
 * Life of a job: ready (in its webhook's FIFO) -> in flight -> result -> freed, or kept for a
 * retry due soon (back into the heap, lease kept), or handed back to the store (lease released,
 * the row's next_retry_at says when). A job whose webhook is not active is handed back parked.
 *
 * Leases: no attempt starts while the store refuses results or while the last stored heartbeat
 * is so old that this node's leases could lapse before the attempt ends; after a heartbeat gap
 * longer than a lease every job not in flight is handed back (another node may own it now). So
 * only attempts in flight when the store went away can be sent twice.
 */
#include "delivery/dispatcher.h"
#include "delivery/dispatcher_int.h"
#include "delivery/outcome.h"
#include "delivery/request.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/map.h"
#include "core/metrics.h"
#include "core/time.h"
#include "delivery/fairq.h"
#include "delivery/httpc.h"
#include "queue/limiter.h"
#include "queue/ratelimit.h"
#include "delivery/sign.h"

#define CLAIM_BATCH   1000
#define KEEP_RETRY_MS 60000  /* retries due within this stay in memory (lease kept) */
#define CACHE_TTL_MS  30000  /* webhook settings older than this are re-read */
#define IDLE_WHC_MS   300000 /* cached webhooks with no jobs are dropped after this */
#define CROWD_MS      10000  /* a full window that frees no room within this makes room */
#define RL_NOTE_MS    1000   /* projected starts sooner than this are not written to rows */

static void maybe_claim(hk_dispatch *d);
static int leases_sure(hk_dispatch *d);

/* ---- timer heap of jobs due later ------------------------------------------------------------ */

static void heap_swap(hk_dispatch *d, int a, int b)
{
    hk_job *t = d->heap[a];
    d->heap[a] = d->heap[b];
    d->heap[b] = t;
    d->heap[a]->heap_idx = (uint32_t)a + 1;
    d->heap[b]->heap_idx = (uint32_t)b + 1;
}

static void heap_up(hk_dispatch *d, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (d->heap[p]->due_ms <= d->heap[i]->due_ms) break;
        heap_swap(d, i, p);
        i = p;
    }
}

static void heap_down(hk_dispatch *d, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->nheap && d->heap[l]->due_ms < d->heap[m]->due_ms) m = l;
        if (r < d->nheap && d->heap[r]->due_ms < d->heap[m]->due_ms) m = r;
        if (m == i) break;
        heap_swap(d, i, m);
        i = m;
    }
}

static void heap_arm(hk_dispatch *d)
{
    if (!d->nheap) {
        evtimer_del(d->heap_timer);
        d->heap_timer_at = 0;
        return;
    }
    int64_t at = d->heap[0]->due_ms;
    if (d->heap_timer_at == at && evtimer_pending(d->heap_timer, NULL)) return;
    int64_t delay = at - hk_now_ms();
    if (delay < 0) delay = 0;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(d->heap_timer, &tv);
    d->heap_timer_at = at;
}

static void heap_push(hk_dispatch *d, hk_job *j)
{
    if (d->nheap == d->heapcap) {
        d->heapcap = d->heapcap ? d->heapcap * 2 : 256;
        d->heap = hk_realloc(d->heap, sizeof(hk_job *) * (size_t)d->heapcap);
    }
    d->heap[d->nheap] = j;
    j->heap_idx = (uint32_t)d->nheap + 1;
    heap_up(d, d->nheap++);
}

static hk_job *heap_pop(hk_dispatch *d)
{
    hk_job *top = d->heap[0];
    d->nheap--;
    if (d->nheap) {
        d->heap[0] = d->heap[d->nheap];
        d->heap[0]->heap_idx = 1;
        heap_down(d, 0);
    }
    top->heap_idx = 0;
    return top;
}

/* ---- organizations and their lines ------------------------------------------------------------
 */

static org *org_new(const char *id)
{
    org *o = hk_calloc(1, sizeof *o);
    o->id = hk_strdup(id);
    return o;
}

static void org_free(org *o)
{
    free(o->id);
    free(o);
}

/* The organization of that id, created if new. */
static org *org_get(hk_dispatch *d, const char *id)
{
    org *o = hk_map_get(&d->orgs, id);
    if (o) return o;
    o = org_new(id);
    hk_map_put(&d->orgs, o->id, o);
    return o;
}

/* Puts o in line if it has a webhook that may start a job, is under HOOKD_ORG_MAX_INFLIGHT
 * and is in no line yet (fairq.h). An organization at its cap is put in line again when one
 * of its attempts ends. */
static void org_enqueue(hk_dispatch *d, org *o)
{
    hk_fq_line(&d->fq, &o->fq);
}

/* Counts n jobs more (or fewer, n < 0) held by w, in its organization and in all. */
static void held_add(hk_dispatch *d, whc *w, int n)
{
    int before = w->o->held;
    w->held += n;
    w->o->held += n;
    d->held += n;
    d->orgs_holding += (w->o->held > 0) - (before > 0);
}

/* w's settings say which organization it belongs to: moves w (and its counts) there. Only a
 * webhook not loaded before moves (from d->noorg), so it has nothing in flight; if it is in
 * noorg's run list, pump moves it when it comes out. */
static void whc_set_org(hk_dispatch *d, whc *w, const char *org_id)
{
    if (w->o != d->noorg || !org_id) return;
    int held = w->held;
    held_add(d, w, -held);
    w->o->nwhc--;
    w->o = org_get(d, org_id);
    w->o->nwhc++;
    held_add(d, w, held);
}

/* ---- webhook cache -----------------------------------------------------------------------------
 */

/* Puts w at the back of its organization's run list if it has due jobs and is not there yet,
 * and the organization in line. */
void hk_dsp_whc_make_runnable(hk_dispatch *d, whc *w)
{
    if (w->rq_head) hk_fq_push(&d->fq, &w->o->fq, &w->fq);
}

static void on_whc_wake(evutil_socket_t fd, short what, void *arg)
{
    whc *w = arg;
    w->waking = 0;
    hk_dsp_whc_make_runnable(w->d, w);
    hk_dsp_pump(w->d);
}

/* The limiter has answered a question about w (it returned HK_RL_ASKED): serve w again. */
static void on_whc_limiter(void *arg)
{
    whc *w = arg;
    hk_dsp_whc_make_runnable(w->d, w);
    hk_dsp_pump(w->d);
}

static whc *whc_get(hk_dispatch *d, const char *id)
{
    whc *w = hk_map_get(&d->whcs, id);
    if (w) return w;
    w = hk_calloc(1, sizeof *w);
    hk_strlcpy(w->id, id, sizeof w->id);
    w->d = d;
    w->o = d->noorg;
    w->o->nwhc++;
    w->wake = evtimer_new(d->base, on_whc_wake, w);
    hk_rl_slot_init(&w->rl, w->id, on_whc_limiter, w);
    w->last_used_mono = hk_mono_ms();
    hk_map_put(&d->whcs, w->id, w);
    return w;
}

static void whc_free(whc *w)
{
    w->o->nwhc--;
    hk_webhook_free(w->wh);
    free(w->keys);
    hk_ed_keys_clear(w->ed, 2);
    free(w->sched);
    free(w->hdr_static);
    hk_blob_unref(w->hdr_json);
    hk_limiter_slot_clear(w->d->queue->limiter, &w->rl);
    event_free(w->wake);
    free(w);
}

/* Installs a fresh copy of the webhook's settings (takes ownership of wh). */
static void whc_set(hk_dispatch *d, whc *w, hk_webhook *wh)
{
    if (!w->wh || w->wh->rate_limit_enabled != wh->rate_limit_enabled ||
        w->wh->max_per_minute != wh->max_per_minute)
        w->rl_tail = 0; /* project the line again at the next wait */
    hk_webhook_free(w->wh);
    free(w->keys);
    free(w->hdr_static);
    w->wh = wh;
    whc_set_org(d, w, wh->org_id);
    w->dead = wh->deleted_at != 0;
    w->loaded_mono = hk_mono_ms();
    w->nkeys = 0;
    w->keys = hk_calloc(2, sizeof(hk_sign_key));
    w->nkeys = hk_request_keys(wh, hk_now_ms(), w->keys);
    hk_ed_keys_clear(w->ed, 2);
    w->ned = hk_request_ed_keys(wh, hk_now_ms(), w->ed);
    free(w->sched);
    w->sched = NULL;
    w->nsched = 0;
    if (wh->retry_schedule) { /* validated when stored; unreadable falls back to the global */
        int64_t tmp[HK_RETRY_SCHEDULE_MAX];
        int n = hk_duration_list_parse(wh->retry_schedule, tmp, HK_RETRY_SCHEDULE_MAX, NULL, 0);
        if (n > 0) {
            w->sched = hk_malloc(sizeof tmp[0] * (size_t)n);
            memcpy(w->sched, tmp, sizeof tmp[0] * (size_t)n);
            w->nsched = n;
        }
    }
    w->hdr_static = hk_request_static_headers(d->cfg, wh);
    hk_blob_unref(w->hdr_json);
    hk_buf hj;
    hk_buf_init(&hj, HK_BUF_UNLIMITED);
    hk_request_headers_json(w->hdr_static, &hj);
    w->hdr_json = hk_blob_new(hj.data, hj.len);
    hk_buf_free(&hj);
    hk_headers_ref(d->cfg, w->hdr_json->data, w->hdr_json->len, w->hdr_ref);
}

/* Adopts webhooks delivered with jobs, unless the cache already has the same version. */
static void adopt_webhooks(hk_dispatch *d, hk_webhook **whs, int n)
{
    for (int i = 0; i < n; i++) {
        whc *w = whc_get(d, whs[i]->id);
        if (w->wh && w->wh->updated_at >= whs[i]->updated_at && !w->loading) {
            /* keep ours, but the counters' freshness does not matter here */
            w->loaded_mono = hk_mono_ms();
            hk_webhook_free(whs[i]);
        } else {
            whc_set(d, w, whs[i]);
        }
        whs[i] = NULL;
    }
}

typedef struct load_req {
    hk_req req;
    hk_dispatch *d;
    char id[HK_ID_MAX];
    const char *ids[1];
} load_req;

static void on_loaded(hk_req *req)
{
    load_req *lr = HK_CONTAINER_OF(req, load_req, req);
    hk_dispatch *d = lr->d;
    whc *w = hk_map_get(&d->whcs, lr->id);
    if (w) {
        w->loading = 0;
        if (req->rc == 0 && req->u.wh_load.n == 1) {
            whc_set(d, w, req->u.wh_load.items[0]);
            req->u.wh_load.items[0] = NULL;
        } else if (req->rc == 0) {
            w->dead = 1; /* gone entirely */
            w->loaded_mono = hk_mono_ms();
        } else {
            w->loaded_mono = hk_mono_ms() - CACHE_TTL_MS + 1000; /* retry in a second */
        }
        hk_dsp_whc_make_runnable(d, w);
    }
    hk_req_clear(req);
    free(lr);
    hk_dsp_pump(d);
}

static void whc_refresh(hk_dispatch *d, whc *w)
{
    if (w->loading) return;
    w->loading = 1;
    load_req *lr = hk_calloc(1, sizeof *lr);
    lr->d = d;
    hk_strlcpy(lr->id, w->id, sizeof lr->id);
    lr->ids[0] = lr->id;
    lr->req.kind = HK_REQ_WEBHOOK_LOAD;
    lr->req.done = on_loaded;
    lr->req.u.wh_load.ids = lr->ids;
    lr->req.u.wh_load.nids = 1;
    hk_store_submit(d->store, &lr->req);
}

/* ---- holding and handing back jobs ----------------------------------------------------------- */

static void job_drop(hk_dispatch *d, whc *w, hk_job *j)
{
    held_add(d, w, -1);
    hk_job_free(j);
}

/* Hands a job back to the store with a new due time (0 = parked) and frees it. */
static void job_release(hk_dispatch *d, whc *w, hk_job *j, int64_t next_retry_at)
{
    hk_dsp_release_add(d, j->id, next_retry_at);
    job_drop(d, w, j);
}

/* Hands back every job of w that is not in flight: parked (due 0) when the webhook is not
 * active, else due at `due` or, for a job the rate limit holds, at its projected start. */
static void whc_release_ready(hk_dispatch *d, whc *w, int64_t due)
{
    while (w->rq_head) {
        hk_job *j = w->rq_head;
        w->rq_head = j->next;
        w->nready--;
        d->waiting--;
        job_release(d, w, j, due && j->rl_noted > due ? j->rl_noted : due);
    }
    w->rq_tail = NULL;
    w->rl_tail = 0;
    hk_dsp_flush_release(d);
}

/* Hands back every job not in flight (ready queues and the timer heap) at its due time. */
static void release_all_waiting(hk_dispatch *d)
{
    size_t it = 0;
    whc *w;
    while ((w = hk_map_next(&d->whcs, &it))) whc_release_ready(d, w, hk_now_ms());
    while (d->nheap) {
        hk_job *j = heap_pop(d);
        job_release(d, whc_get(d, j->webhook_id), j, j->due_ms);
    }
    hk_dsp_flush_release(d);
}

/* ---- rate limit: projected starts --------------------------------------------------------- */

/* Records j's projected start (monotonic `slot`) and, when it is more than RL_NOTE_MS ahead
 * and not already written within RL_NOTE_MS, queues it to be written to the row. */
static void rl_note(hk_dispatch *d, hk_job *j, int64_t slot, int64_t mono, int64_t now)
{
    j->rl_slot = slot;
    int64_t at = now + (slot - mono);
    if (at - now <= RL_NOTE_MS) return;
    if (j->rl_noted && at - j->rl_noted <= RL_NOTE_MS && j->rl_noted - at <= RL_NOTE_MS) return;
    j->rl_noted = at;
    hk_dsp_resched_add(d, j->id, at);
}

/* The limit makes w wait `wait` ms: projects the start of every job in its line, the head at
 * mono + wait and each next one as hk_rl_projected says. */
static void rl_project(hk_dispatch *d, whc *w, int64_t wait, int64_t mono, int64_t now)
{
    int limit = w->wh->max_per_minute;
    int64_t slot = mono + wait;
    int k = 0;
    for (hk_job *j = w->rq_head; j; j = j->next, k++) {
        if (k) slot = hk_rl_projected(&w->rl.log, limit, slot, k);
        rl_note(d, j, slot, mono, now);
    }
    w->rl_tail = slot;
}

/* A job is due: into its webhook's FIFO. */
static void job_ready(hk_dispatch *d, whc *w, hk_job *j)
{
    j->next = NULL;
    if (w->rq_tail)
        w->rq_tail->next = j;
    else
        w->rq_head = j;
    w->rq_tail = j;
    w->nready++;
    d->waiting++;
    if (w->rl_tail && w->nready > 1 && w->wh && w->wh->rate_limit_enabled) {
        /* the line is waiting for the rate limit: this job goes out after the last one */
        int64_t slot =
            hk_rl_projected(&w->rl.log, w->wh->max_per_minute, w->rl_tail, w->nready - 1);
        rl_note(d, j, slot, hk_mono_ms(), hk_now_ms());
        w->rl_tail = slot;
    } else {
        w->rl_tail = 0;
    }
    hk_dsp_whc_make_runnable(d, w);
}

/* Takes a job into memory: due now -> ready, later -> heap. */
static void job_hold(hk_dispatch *d, hk_job *j)
{
    whc *w = whc_get(d, j->webhook_id);
    held_add(d, w, 1);
    w->last_used_mono = hk_mono_ms();
    if (j->due_ms <= hk_now_ms())
        job_ready(d, w, j);
    else
        heap_push(d, j);
}

/* How long to push back the waiting jobs of a webhook that holds too many: roughly the time
 * it needs to work through what it has. */
static int64_t defer_ms(const hk_dispatch *d, const whc *w)
{
    int64_t ms;
    if (w->wh && w->wh->rate_limit_enabled && w->wh->max_per_minute > 0)
        ms = (int64_t)w->nready * HK_RL_WINDOW_MS / w->wh->max_per_minute;
    else
        ms = (int64_t)w->nready * (w->avg_ms ? w->avg_ms : 1000) / d->cfg->endpoint_concurrency;
    return ms < 1000 ? 1000 : ms > 3600000 ? 3600000 : ms;
}

/* The webhook holding the most waiting jobs, or NULL if none holds two. */
static whc *biggest_waiting(hk_dispatch *d)
{
    whc *big = NULL, *w;
    size_t it = 0;
    while ((w = hk_map_next(&d->whcs, &it)))
        if (!big || w->nready > big->nready) big = w;
    return big && big->nready >= 2 ? big : NULL;
}

/* big hands back the newer half of its waiting jobs, due again when it should have worked
 * through the older half (defer_ms). The releases are queued; the caller flushes them. */
static void defer_newer_half(hk_dispatch *d, whc *big)
{
    int keep = big->nready / 2;
    int64_t due = hk_now_ms() + defer_ms(d, big);
    hk_job *j = big->rq_head, *prev = NULL;
    for (int i = 0; i < keep && j; i++) {
        prev = j;
        j = j->next;
    }
    if (prev) {
        prev->next = NULL;
        big->rq_tail = prev;
    } else {
        big->rq_head = big->rq_tail = NULL;
    }
    if (big->rl_tail) big->rl_tail = prev ? prev->rl_slot : 0;
    int n = 0;
    while (j) {
        hk_job *next = j->next;
        big->nready--;
        d->waiting--;
        job_release(d, big, j, due);
        j = next;
        n++;
    }
    HK_LOG(HK_LOG_INFO, "dispatch.deferred", HK_LS("webhook_id", big->id), HK_LI("count", n),
           HK_LI("until_ms", due));
}

/* Keeps the window: while more than HOOKD_QUEUE_WINDOW jobs are held, the webhook with the
 * most waiting jobs hands back the newer half of them with a later due time. */
static void enforce_window(hk_dispatch *d)
{
    int guard = 0;
    whc *big;
    while (d->held > d->cfg->queue_window && guard++ < 64 && (big = biggest_waiting(d)))
        defer_newer_half(d, big);
    hk_dsp_flush_release(d);
}

/* The window is too full to claim. If the jobs held will not free room soon (the webhooks
 * holding them are rate-limited or slow: at the pace they start, `room` slots take longer than
 * CROWD_MS), the webhook with the most waiting jobs hands the newer half back, so that due work
 * of other webhooks waiting in the store can be claimed. At most once per poll interval, which
 * bounds the churn while a huge backlog of one slow webhook is being spread out in time. */
static void make_room(hk_dispatch *d, int room_wanted)
{
    int64_t mono = hk_mono_ms();
    if (mono - d->room_made_mono < d->cfg->poll_interval_ms) return;
    double per_ms = 0; /* starts per ms of every webhook with waiting jobs */
    size_t it = 0;
    whc *w;
    while ((w = hk_map_next(&d->whcs, &it))) {
        if (!w->nready) continue;
        /* a webhook with attempts in flight and none finished for longer than its average
         * (endpoints that hang: no attempt may have finished yet) goes at most that slowly */
        int64_t avg = w->avg_ms ? w->avg_ms : 1;
        if (w->inflight && mono - w->progress_mono > avg) avg = mono - w->progress_mono;
        if (w->wh && w->wh->rate_limit_enabled && w->wh->max_per_minute > 0)
            per_ms += (double)w->wh->max_per_minute / HK_RL_WINDOW_MS;
        else
            per_ms += (double)d->cfg->endpoint_concurrency / (double)avg;
    }
    if (per_ms > 0 && room_wanted / per_ms < CROWD_MS) return;
    whc *big = biggest_waiting(d);
    if (!big) return;
    d->room_made_mono = mono;
    defer_newer_half(d, big);
    hk_dsp_flush_release(d);
}

static void adopt_jobs(hk_dispatch *d, hk_job **jobs, int n)
{
    for (int i = 0; i < n; i++) {
        job_hold(d, jobs[i]);
        jobs[i] = NULL;
    }
    if (d->held > d->cfg->queue_window) enforce_window(d);
    heap_arm(d);
}

static void on_heap_timer(evutil_socket_t fd, short what, void *arg)
{
    hk_dispatch *d = arg;
    d->heap_timer_at = 0;
    int64_t now = hk_now_ms();
    while (d->nheap && d->heap[0]->due_ms <= now) {
        hk_job *j = heap_pop(d);
        job_ready(d, whc_get(d, j->webhook_id), j);
    }
    heap_arm(d);
    hk_dsp_pump(d);
}

/* ---- attempts ---------------------------------------------------------------------------------
 */

/* The header lines sent, as a JSON object for request_headers. */
static char *headers_to_json(const char *lines)
{
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_buf_reserve(&b, 2 * strlen(lines) + 64); /* "name":"value" for each line, most often */
    hk_request_headers_json(lines, &b);
    return hk_buf_steal(&b);
}

static void attempt_unlink(hk_dispatch *d, attempt *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        d->attempts = a->next;
    if (a->next) a->next->prev = a->prev;
}

static void on_attempt_done(void *arg, const hk_httpc_resp *resp)
{
    attempt *a = arg;
    hk_dispatch *d = a->d;
    whc *w = a->w;
    hk_job *j = a->job;
    attempt_unlink(d, a);
    w->inflight--;
    w->o->fq.inflight--;
    d->inflight--;
    w->progress_mono = hk_mono_ms();
    int64_t now = hk_now_ms();
    int n = j->attempt_number + 1;
    /* the webhook's policy as this node knows it now: a change made while the attempt was in
     * flight already decides its retry (docs/API.md "Delivery policy") */
    hk_retry_policy policy;
    int timeout_ms;
    hk_policy_for(d->cfg, w->sched, w->nsched, w->wh ? w->wh->timeout_ms : 0, &policy, &timeout_ms);
    hk_outcome oc;
    hk_outcome_decide(resp, n, j->max_attempts, &policy, hk_random_unit(), now, &oc);
    hk_m_attempt(d->m, oc.cls, resp->duration_ms);
    w->avg_ms = w->avg_ms ? (w->avg_ms * 7 + resp->duration_ms) / 8 : resp->duration_ms + 1;

    hk_result *r = hk_dsp_result_add(d);
    hk_strlcpy(r->delivery_id, j->id, sizeof r->delivery_id);
    hk_strlcpy(r->webhook_id, j->webhook_id, sizeof r->webhook_id);
    hk_id_new("whda", r->attempt_id);
    r->attempt_number = n;
    r->response_status = resp->status;
    r->response_body = resp->status ? hk_strndup(resp->body, resp->body_len) : NULL;
    r->response_headers = hk_strdup(resp->headers_json);
    r->request_headers = a->req_headers;
    a->req_headers = NULL;
    r->headers_static = a->hdr_json;
    a->hdr_json = NULL;
    memcpy(r->headers_ref, a->hdr_ref, sizeof r->headers_ref);
    r->request_url = hk_strdup(w->wh ? w->wh->url : NULL);
    r->duration_ms = (int)resp->duration_ms;
    r->started_at = a->started_wall;
    r->finished_at = now;
    r->created_at = j->created_ms;
    /* with a schedule of its own (Redis), the queue learns of the next head of a FIFO line
     * from the results (a final result asks the store for it); the local one needs nothing */
    r->fifo = d->queue->fifo_heads && w->wh && w->wh->fifo;

    int keep = 0;
    if (oc.verdict == HK_VERDICT_SUCCESS) {
        r->status = HK_DL_SUCCESS;
        r->attempt_ok = 1;
        r->final = 1;
        hk_m_delivery(d->m, HK_DLM_SUCCESS);
        hk_m_observe(d->m, HK_H_E2E_MS, now - j->created_ms);
        HK_LOG(HK_LOG_DEBUG, "delivery.success", HK_LS("delivery_id", j->id),
               HK_LS("webhook_id", j->webhook_id), HK_LI("attempt", n),
               HK_LI("status", resp->status), HK_LI("duration_ms", resp->duration_ms));
    } else if (oc.verdict == HK_VERDICT_FAILED) {
        r->error_message = hk_strdup(oc.msg);
        r->status = HK_DL_FAILED;
        r->final = 1;
        r->gone = oc.gone;
        hk_m_delivery(d->m, HK_DLM_FAILED);
        HK_LOG(HK_LOG_WARN, "delivery.failed", HK_LS("delivery_id", j->id),
               HK_LS("webhook_id", j->webhook_id), HK_LI("attempt", n), HK_LS("msg", oc.msg));
    } else {
        r->error_message = hk_strdup(oc.msg);
        r->status = HK_DL_RETRYING;
        r->next_retry_at = now + oc.delay_ms;
        keep = oc.delay_ms <= KEEP_RETRY_MS && d->held <= d->cfg->queue_window && !d->stopping;
        r->keep_lease = keep;
        hk_m_delivery(d->m, HK_DLM_RETRYING);
        HK_LOG(HK_LOG_INFO, "delivery.retry", HK_LS("delivery_id", j->id),
               HK_LS("webhook_id", j->webhook_id), HK_LI("attempt", n), HK_LS("msg", oc.msg),
               HK_LI("retry_in_ms", oc.delay_ms));
    }

    if (keep) {
        j->attempt_number = n;
        j->status = HK_DL_RETRYING;
        j->due_ms = r->next_retry_at;
        j->rl_slot = j->rl_noted = 0;
        heap_push(d, j);
        heap_arm(d);
    } else {
        job_drop(d, w, j);
    }
    free(a);
    if (w->rq_head) hk_dsp_whc_make_runnable(d, w);
    org_enqueue(d, w->o); /* it may have been at its cap */
    hk_dsp_flush_results(d);
    hk_dsp_pump(d);
    hk_dsp_check_stopped(d);
}

static void start_attempt(hk_dispatch *d, whc *w, hk_job *j)
{
    attempt *a = hk_calloc(1, sizeof *a);
    a->d = d;
    a->w = w;
    a->job = j;
    a->started_wall = hk_now_ms();
    hk_buf h;
    hk_buf_init(&h, HK_BUF_UNLIMITED);
    /* one allocation for the usual request: the static lines, the id and signature lines */
    hk_buf_reserve(&h, strlen(w->hdr_static) + 512);
    hk_buf_puts(&h, w->hdr_static);
    size_t fixed_len = h.len;
    /* a previous secret or key whose grace period ended since the settings were loaded stops
     * signing now, not at the next reload (keys are newest first) */
    int nkeys = w->nkeys > 1 && w->wh->prev_secret_expires_at <= a->started_wall ? 1 : w->nkeys;
    int ned = w->ned > 1 && w->wh->prev_signing_key_expires_at <= a->started_wall ? 1 : w->ned;
    hk_request_attempt_headers(w->wh, w->keys, nkeys, w->ed, ned, j->id, j->event_id,
                               a->started_wall / 1000, j->body->data, j->body->len, &h);
    const char *lines = hk_buf_cstr(&h);
    /* recorded in two parts: the static headers once per webhook version, by reference */
    a->req_headers = headers_to_json(lines + fixed_len);
    if (w->hdr_json) {
        a->hdr_json = hk_blob_ref(w->hdr_json);
        memcpy(a->hdr_ref, w->hdr_ref, sizeof a->hdr_ref);
    }
    if (!w->inflight) w->progress_mono = hk_mono_ms();
    w->inflight++;
    w->o->fq.inflight++;
    d->inflight++;
    a->next = d->attempts;
    if (d->attempts) d->attempts->prev = a;
    d->attempts = a;
    /* Never send unsigned: without a usable secret (it could not be decrypted) the attempt
     * fails here, retried like any other, so fixing the key and restarting sends it. */
    hk_retry_policy policy;
    int timeout_ms;
    hk_policy_for(d->cfg, w->sched, w->nsched, w->wh->timeout_ms, &policy, &timeout_ms);
    int can_sign = hk_request_can_sign(w->wh, w->nkeys, w->ned);
    if (can_sign)
        a->xfer = hk_httpc_post(d->http, w->wh->url, j->body->data, j->body->len, lines, timeout_ms,
                                on_attempt_done, a);
    hk_buf_free(&h);
    if (!a->xfer) {
        /* curl refused the transfer outright: a failed attempt, reported like any other */
        hk_httpc_resp r;
        memset(&r, 0, sizeof r);
        r.error = can_sign ? "the request could not be started"
                  : w->nkeys > 0
                      ? "the webhook's Ed25519 key cannot be read (check WEBHOOK_ENCRYPTION_KEY); "
                        "nothing was sent"
                      : "the webhook secret cannot be decrypted (check "
                        "WEBHOOK_ENCRYPTION_KEY); nothing was sent";
        r.body = "";
        on_attempt_done(a, &r);
    }
}

/* One turn of webhook w (out of its run list): starts its next job if its settings, status,
 * concurrency and rate limit allow, or does what they call for (load the settings, drop or
 * hand back its jobs, wait for the limiter). The caller puts w's organization back in line. */
static void serve_webhook(hk_dispatch *d, whc *w, int64_t mono, int64_t now)
{
    if (!w->rq_head) return;
    if (!w->wh || mono - w->loaded_mono > CACHE_TTL_MS) {
        whc_refresh(d, w);
        return; /* made runnable again when loaded */
    }
    if (w->dead) {
        /* deleted: the store already failed its deliveries */
        while (w->rq_head) {
            hk_job *j = w->rq_head;
            w->rq_head = j->next;
            w->nready--;
            d->waiting--;
            job_drop(d, w, j);
        }
        w->rq_tail = NULL;
        w->rl_tail = 0;
        return;
    }
    if (w->wh->status != HK_WH_ACTIVE || w->wh->org_disabled) {
        whc_release_ready(d, w, 0); /* parked until it (and its organization) is active again */
        return;
    }
    if (w->inflight >= d->cfg->endpoint_concurrency) return; /* re-added on completion */
    if (w->wh->rate_limit_enabled) {
        int want = HK_MIN(w->nready, d->cfg->endpoint_concurrency - w->inflight);
        int64_t wait =
            hk_limiter_take(d->queue->limiter, &w->rl, w->wh->max_per_minute, want, mono);
        if (wait == HK_RL_ASKED) return; /* on_whc_limiter serves it with the answer */
        if (wait > 0) {
            if (!w->rl_tail) {
                HK_LOG(HK_LOG_INFO, "webhook.rate_limited", HK_LS("webhook_id", w->id),
                       HK_LI("max_per_minute", w->wh->max_per_minute), HK_LI("waiting", w->nready),
                       HK_LI("next_in_ms", wait));
                rl_project(d, w, wait, mono, now);
            }
            if (!w->waking) {
                w->waking = 1;
                struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
                evtimer_add(w->wake, &tv);
            }
            return;
        }
    }
    hk_job *j = w->rq_head;
    w->rq_head = j->next;
    if (j->rl_slot && mono - j->rl_slot > RL_NOTE_MS)
        w->rl_tail = 0; /* the line runs late (a busy endpoint): project it again */
    if (!w->rq_head) {
        w->rq_tail = NULL;
        hk_limiter_idle(d->queue->limiter, &w->rl);
        w->rl_tail = 0;
    }
    j->next = NULL;
    w->nready--;
    d->waiting--;
    w->last_used_mono = mono;
    start_attempt(d, w, j);
    if (w->rq_head && w->inflight < d->cfg->endpoint_concurrency) hk_dsp_whc_make_runnable(d, w);
}

/* Starts as many attempts as the limits allow: one per turn, round-robin over organizations
 * with a webhook that may start a job (those with nothing in flight first), and round-robin
 * over those webhooks inside each organization. */
void hk_dsp_pump(hk_dispatch *d)
{
    if (d->stopping) return;
    if (!leases_sure(d)) return; /* resumed by the next stored heartbeat */
    int64_t mono = hk_mono_ms();
    int64_t now = hk_now_ms();
    hk_fq_group *g;
    int turns = 0;
    while (d->inflight < d->cfg->max_inflight && (g = hk_fq_next(&d->fq))) {
        org *o = HK_CONTAINER_OF(g, org, fq);
        if (++turns > 100000) {
            org_enqueue(d, o);
            break;
        }
        hk_fq_item *it = hk_fq_pop(g);
        whc *w = it ? HK_CONTAINER_OF(it, whc, fq) : NULL;
        if (w && w->o != o)
            hk_dsp_whc_make_runnable(
                d, w); /* loaded since it was queued: into its organization's list */
        else if (w)
            serve_webhook(d, w, mono, now);
        org_enqueue(d, o); /* back in line if it still has work and room */
    }
    hk_m_gauge(d->m, HK_G_INFLIGHT, d->inflight);
    hk_m_gauge(d->m, HK_G_HELD, d->held);
    hk_m_gauge(d->m, HK_G_QUEUE_DEPTH, d->waiting);
    hk_dsp_flush_resched(d);
    maybe_claim(d);
}

/* ---- claims, heartbeat, housekeeping
 * -------------------------------------------------------------- */

static void on_claimed(hk_req *req, void *arg)
{
    hk_dispatch *d = arg;
    d->claiming = 0;
    d->reserved -= d->claim_limit;
    d->claim_limit = 0;
    if (req->rc == 0) {
        adopt_webhooks(d, req->u.claim.webhooks, req->u.claim.nwebhooks);
        int n = req->u.claim.njobs;
        if (d->stopping) {
            /* claimed while stopping: hand them straight back */
            for (int i = 0; i < n; i++) {
                whc *w = whc_get(d, req->u.claim.jobs[i]->webhook_id);
                held_add(d, w, 1);
                job_release(d, w, req->u.claim.jobs[i], req->u.claim.jobs[i]->due_ms);
                req->u.claim.jobs[i] = NULL;
            }
            hk_dsp_flush_release(d);
        } else {
            adopt_jobs(d, req->u.claim.jobs, n);
        }
        /* more may wait; a reason to claim again that came during the claim (a FIFO head
         * finished, an ingest beyond the lease budget) stands */
        if (n + req->u.claim.parked >= req->u.claim.limit) d->claim_more = 1;
        if (n) HK_LOG(HK_LOG_DEBUG, "dispatch.claimed", HK_LI("count", n));
    }
    hk_req_clear(req);
    hk_dsp_pump(d);
    hk_dsp_check_stopped(d);
}

static void maybe_claim(hk_dispatch *d)
{
    if (d->claiming || !d->claim_more || d->stopping) return;
    int room = d->cfg->queue_window - d->held - d->reserved;
    int want =
        CLAIM_BATCH / 4 < d->cfg->queue_window / 4 ? CLAIM_BATCH / 4 : d->cfg->queue_window / 4;
    if (room < want) {
        make_room(d, want - room);
        room = d->cfg->queue_window - d->held - d->reserved;
        if (room < want) return;
    }
    int limit = room < CLAIM_BATCH ? room : CLAIM_BATCH;
    if (limit <= 0) return;
    d->claiming = 1;
    d->claim_more = 0;
    d->claim_limit = limit;
    d->reserved += limit;
    hk_queue_claim(d->queue, limit, d->cfg->poll_interval_ms, on_claimed, d);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    hk_dispatch *d = arg;
    d->claim_more = 1;
    /* drop cached webhooks that hold nothing and have not been used for a while */
    int64_t mono = hk_mono_ms();
    size_t it = 0;
    whc *w;
    while ((w = hk_map_next(&d->whcs, &it))) {
        if (w->held || w->inflight || w->fq.queued || w->loading || w->waking) continue;
        if (mono - w->last_used_mono < IDLE_WHC_MS) continue;
        hk_map_del(&d->whcs, w->id);
        whc_free(w);
    }
    /* and organizations left without a cached webhook */
    org *o;
    it = 0;
    while ((o = hk_map_next(&d->orgs, &it))) {
        if (o->nwhc || o->fq.line || o->fq.inflight || o->held || o->reserved) continue;
        hk_map_del(&d->orgs, o->id);
        org_free(o);
    }
    hk_m_gauge(d->m, HK_G_STORE_QUEUED, hk_store_queued(d->store));
    int64_t commits = hk_store_commits(d->store);
    hk_m_inc(d->m, HK_C_STORE_COMMITS, commits - d->commits_seen);
    d->commits_seen = commits;
    hk_dsp_pump(d);
}

/* The heartbeat failed for longer than a lease: another node may have taken this node's
 * deliveries over (PostgreSQL, several nodes). Every job not in flight goes back to the store;
 * the release only touches rows still leased to this node, so rows taken over stay with their
 * new owner and the others are claimed again. Nothing is sent twice for want of a lease. */
static void leases_lapsed(hk_dispatch *d)
{
    int n = d->held - d->inflight;
    release_all_waiting(d);
    heap_arm(d);
    HK_LOG(HK_LOG_WARN, "dispatch.leases_lapsed", HK_LI("handed_back", n),
           HK_LS("why", "no heartbeat was stored for longer than HOOKD_LEASE_MS"));
}

/* 1 while attempts may start: the store takes results (a refused batch pauses new attempts
 * until it is written), and the last stored heartbeat is recent enough that an attempt started
 * now ends (HOOKD_HTTP_TIMEOUT_MS) before this node's leases could lapse. */
static int leases_sure(hk_dispatch *d)
{
    int64_t age = hk_mono_ms() - d->last_hb_ok;
    int hb_ok = age <= (int64_t)d->cfg->lease_ms - d->cfg->http_timeout_ms;
    int sure = hb_ok && !d->results_stuck;
    if (!sure && !d->lease_doubt)
        HK_LOG(HK_LOG_WARN, "dispatch.paused", HK_LI("heartbeat_age_ms", age),
               HK_LS("why", !hb_ok ? "heartbeats are failing: no new attempt until one is stored"
                                   : "the store refuses results: no new attempt until they "
                                     "are written"));
    if (sure && d->lease_doubt)
        HK_LOG(HK_LOG_INFO, "dispatch.resumed", HK_LI("heartbeat_age_ms", age));
    d->lease_doubt = !sure;
    return sure;
}

static void on_heartbeat(hk_req *req, void *arg)
{
    hk_dispatch *d = arg;
    d->hb_inflight = 0;
    if (req->rc == 0) {
        int64_t prev = d->last_hb_ok;
        d->last_hb_ok = d->hb_sent;
        if (d->hb_sent - prev > d->cfg->lease_ms) leases_lapsed(d);
        if (d->lease_doubt) { /* paused: pump resumes (and says so) if nothing else holds it */
            d->claim_more = 1;
            hk_dsp_pump(d);
        }
        if (req->u.heartbeat.reclaimed) {
            HK_LOG(HK_LOG_INFO, "dispatch.reclaimed", HK_LI("count", req->u.heartbeat.reclaimed));
            d->claim_more = 1;
        }
    } else {
        HK_LOG(HK_LOG_WARN, "dispatch.heartbeat_failed", HK_LS("msg", hk_strerror(req->rc)));
    }
    hk_req_clear(req);
    hk_dsp_check_stopped(d);
}

static void on_hb_timer(evutil_socket_t fd, short what, void *arg)
{
    hk_dispatch *d = arg;
    if (d->hb_inflight || d->stopping) return;
    d->hb_inflight = 1;
    d->hb_sent = hk_mono_ms();
    hk_queue_heartbeat(d->queue, d->cfg->lease_ms, on_heartbeat, d);
}

static void on_soon(evutil_socket_t fd, short what, void *arg)
{
    hk_dsp_pump(arg);
}

/* ---- public -----------------------------------------------------------------------------------
 */

hk_dispatch *hk_dispatch_new(struct event_base *base, const hk_config *cfg, hk_store *store,
                             hk_queue *queue, struct hk_metrics *metrics, char *err, size_t errlen)
{
    hk_dispatch *d = hk_calloc(1, sizeof *d);
    d->base = base;
    d->cfg = cfg;
    d->store = store;
    d->queue = queue;
    d->m = metrics;
    d->http = hk_httpc_new(base, cfg, err, errlen);
    if (!d->http) {
        free(d);
        return NULL;
    }
    hk_map_init(&d->whcs);
    hk_map_init(&d->orgs);
    hk_fq_init(&d->fq, cfg->org_max_inflight);
    d->noorg = org_new("");
    d->heap_timer = evtimer_new(base, on_heap_timer, d);
    d->tick = event_new(base, -1, EV_PERSIST, on_tick, d);
    d->hb_timer = event_new(base, -1, EV_PERSIST, on_hb_timer, d);
    d->soon = evtimer_new(base, on_soon, d);
    hk_dsp_writers_init(d);
    return d;
}

void hk_dispatch_start(hk_dispatch *d)
{
    int poll = d->cfg->poll_interval_ms;
    struct timeval tv = {poll / 1000, (poll % 1000) * 1000};
    evtimer_add(d->tick, &tv);
    /* a lease outlives three heartbeats, and attempts pause when the last stored one is older
     * than lease - HTTP timeout (leases_sure): beat at least twice within that margin */
    int hb = HK_MIN(d->cfg->lease_ms / 3, (d->cfg->lease_ms - d->cfg->http_timeout_ms) / 2);
    struct timeval hv = {hb / 1000, (hb % 1000) * 1000};
    evtimer_add(d->hb_timer, &hv);
    d->last_hb_ok = hk_mono_ms();
    on_hb_timer(-1, 0, d);
    d->claim_more = 1;
    struct timeval zero = {0, 0};
    evtimer_add(d->soon, &zero);
}

int hk_dispatch_reserve(hk_dispatch *d, int events, const char *org_id)
{
    if (d->stopping || events <= 0) return 0;
    int window = d->cfg->queue_window;
    int room = window - d->held - d->reserved;
    int want = events < 10000 / HK_RESERVE_PER_EVENT ? events * HK_RESERVE_PER_EVENT : 10000;
    int take = room > 0 ? (room < want ? room : want) : 0;
    org *o = org_id ? org_get(d, org_id) : NULL;
    if (take < want && o) {
        /* The window is full. An organization holding (and reserving) less than its fair
         * share of it (the window divided among the organizations holding jobs) still leases
         * its new deliveries, up to an eighth of the window beyond it in all; adopt_jobs then
         * has the webhook with the most waiting jobs hand its newer half back
         * (enforce_window). So one organization's backlog cannot keep another's new events
         * out of memory, while a single organization never overfills the window. */
        int mine = o->held + o->reserved + take;
        int share = window / (d->orgs_holding + (o->held == 0));
        int over = HK_MAX(d->held + d->reserved + take - window, 0);
        int extra = HK_MIN(want - take, HK_MIN(share - mine, window / 8 - over));
        if (extra > 0) take += extra;
    }
    d->reserved += take;
    if (o) o->reserved += take;
    return take;
}

void hk_dispatch_ingested(hk_dispatch *d, hk_req *req, int reserved)
{
    d->reserved -= reserved;
    org *o = req->org_id ? hk_map_get(&d->orgs, req->org_id) : NULL;
    if (o) o->reserved -= HK_MIN(o->reserved, reserved);
    if (req->rc) return;
    hk_queue_ingested(d->queue, req); /* the deliveries not leased here */
    adopt_webhooks(d, req->u.ingest.webhooks, req->u.ingest.nwebhooks);
    if (d->stopping) {
        for (int i = 0; i < req->u.ingest.njobs; i++) {
            hk_job *j = req->u.ingest.jobs[i];
            whc *w = whc_get(d, j->webhook_id);
            held_add(d, w, 1);
            job_release(d, w, j, j->due_ms);
            req->u.ingest.jobs[i] = NULL;
        }
        hk_dsp_flush_release(d);
        return;
    }
    adopt_jobs(d, req->u.ingest.jobs, req->u.ingest.njobs);
    /* deliveries beyond the lease budget wait in the store: claim them */
    int created = 0;
    for (int i = 0; i < req->u.ingest.n; i++)
        if (!req->u.ingest.items[i].duplicate) created += req->u.ingest.items[i].ndeliveries;
    if (created > req->u.ingest.njobs) d->claim_more = 1;
    hk_dsp_pump(d);
}

void hk_dispatch_webhook_changed(hk_dispatch *d, const hk_webhook *wh, int unparked)
{
    whc *w = whc_get(d, wh->id);
    whc_set(d, w, hk_webhook_dup(wh));
    if (unparked > 0) {
        d->claim_more = 1;
        hk_queue_kick(d->queue); /* due in the store, not yet in the queue's schedule */
    }
    hk_dsp_whc_make_runnable(d, w);
    hk_dsp_pump(d);
}

void hk_dispatch_org_changed(hk_dispatch *d, const char *org_id, int unparked)
{
    size_t it = 0;
    whc *w;
    while ((w = hk_map_next(&d->whcs, &it))) {
        if (!w->wh || !w->wh->org_id || strcmp(w->wh->org_id, org_id) != 0) continue;
        w->loaded_mono = hk_mono_ms() - CACHE_TTL_MS - 1; /* re-read before the next attempt */
        hk_dsp_whc_make_runnable(d, w);
    }
    if (unparked > 0) {
        d->claim_more = 1;
        hk_queue_kick(d->queue); /* due in the store, not yet in the queue's schedule */
    }
    hk_dsp_pump(d);
}

void hk_dispatch_webhook_deleted(hk_dispatch *d, const char *webhook_id)
{
    whc *w = hk_map_get(&d->whcs, webhook_id);
    if (!w) return;
    w->dead = 1;
    if (w->wh) w->wh->deleted_at = hk_now_ms();
    hk_dsp_whc_make_runnable(d, w);
    hk_dsp_pump(d);
}

static void stop_finish(hk_dispatch *d)
{
    if (d->stop_signalled) return;
    d->stop_signalled = 1;
    evtimer_del(d->stop_timer);
    if (d->stop_done) d->stop_done(d->stop_arg);
}

/* Shutdown is over when nothing is in flight, every result is written and every job handed
 * back. */
void hk_dsp_check_stopped(hk_dispatch *d)
{
    if (!d->stopping || d->stop_signalled) return;
    if (d->inflight || d->claiming || d->hb_inflight) return;
    if (d->rb_flight || (d->rb_cur && d->rb_cur->n)) {
        hk_dsp_flush_results(d);
        return;
    }
    if (d->held) release_all_waiting(d); /* everything left is waiting, not in flight */
    if (d->rel_inflight || d->rel.n || d->resched_inflight) return;
    stop_finish(d);
}

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    hk_dispatch *d = arg;
    /* Abort what is still in flight: those deliveries go back at once (they may have been
     * received: the SPEC's one source of duplicates). */
    int n = 0;
    while (d->attempts) {
        attempt *a = d->attempts;
        attempt_unlink(d, a);
        hk_httpc_cancel(d->http, a->xfer);
        a->w->inflight--;
        a->w->o->fq.inflight--;
        d->inflight--;
        job_release(d, a->w, a->job, hk_now_ms());
        free(a->req_headers);
        hk_blob_unref(a->hdr_json);
        free(a);
        n++;
    }
    if (n) HK_LOG(HK_LOG_WARN, "dispatch.aborted_inflight", HK_LI("count", n));
    hk_dsp_flush_release(d);
    hk_dsp_check_stopped(d);
}

void hk_dispatch_shutdown(hk_dispatch *d, int timeout_ms, void (*done)(void *arg), void *arg)
{
    d->stopping = 1;
    d->stop_done = done;
    d->stop_arg = arg;
    hk_queue_stop(d->queue);
    evtimer_del(d->tick);
    evtimer_del(d->hb_timer);
    evtimer_del(d->heap_timer);
    d->stop_timer = evtimer_new(d->base, on_stop_timeout, d);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(d->stop_timer, &tv);
    hk_dsp_check_stopped(d);
}

void hk_dispatch_get_stats(const hk_dispatch *d, hk_dispatch_stats *out)
{
    out->held = d->held;
    out->inflight = d->inflight;
    out->waiting = d->waiting;
    out->webhooks = (int)d->whcs.n;
}

void hk_dispatch_free(hk_dispatch *d)
{
    if (!d) return;
    while (d->attempts) {
        attempt *a = d->attempts;
        attempt_unlink(d, a);
        hk_httpc_cancel(d->http, a->xfer);
        hk_job_free(a->job);
        free(a->req_headers);
        hk_blob_unref(a->hdr_json);
        free(a);
    }
    hk_httpc_free(d->http);
    for (int i = 0; i < d->nheap; i++) hk_job_free(d->heap[i]);
    free(d->heap);
    size_t it = 0;
    whc *w;
    while ((w = hk_map_next(&d->whcs, &it))) {
        while (w->rq_head) {
            hk_job *j = w->rq_head;
            w->rq_head = j->next;
            hk_job_free(j);
        }
        whc_free(w);
    }
    hk_map_free(&d->whcs);
    org *o;
    it = 0;
    while ((o = hk_map_next(&d->orgs, &it))) org_free(o);
    hk_map_free(&d->orgs);
    org_free(d->noorg);
    hk_dsp_writers_free(d);
    event_free(d->heap_timer);
    event_free(d->tick);
    event_free(d->hb_timer);
    event_free(d->soon);
    if (d->stop_timer) event_free(d->stop_timer);
    free(d);
}
