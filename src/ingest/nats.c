/*
 * nats.c: the NATS source (nats.h). It owns the cnats connection (on hookd's libevent loop
 * through cnats's libevent adapter), the core queue subscriptions or the JetStream pull
 * consumer, and the path of a message: map (kumomta.h) -> wait in the inbox -> one ingest
 * (ingest.h: store, dispatcher, metrics) per organization for everything that waited together
 * (group commit does the rest) -> ack after the commit, or keep and retry while the store is
 * down.
 *
 * Why a pull consumer for JetStream: the client asks for as many messages as it has room for,
 * which is flow control and the in-flight bound in one, and several nodes pulling from one
 * durable share its messages (push consumers with a deliver group cannot have flow control or
 * heartbeats). The puller asks without waiting while messages are there, and waits for one
 * message at a time when the stream is idle, so an idle hookd sends one request a second and a
 * new message is taken at once.
 *
 * Keys: a JetStream message whose body names no idempotency key (KumoMTA records always have
 * one) gets nats:<stream>:<stream creation ns>:<stream sequence>, so a redelivery after a crash
 * between commit and ack is absorbed as a duplicate. Core messages have no redelivery, and no
 * key but their own.
 */
#include "ingest/nats.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>
/* The adapter is a header of function definitions: this is its one translation unit. */
#include <nats/adapters/libevent.h>

#include "core/common.h"
#include "core/log.h"
#include "core/time.h"
#include "ingest/kumomta.h"

#define BATCH_MAX       512   /* events per store request */
#define OPEN_MAX        16    /* organizations batched at once per pass */
#define FETCH_MAX       256   /* messages per JetStream pull */
#define FETCH_WAIT_MS   1000  /* an idle pull waits this long for a message */
#define ACK_WAIT_S      30    /* AckWait of the consumer hookd creates */
#define MAX_ACK_PENDING 16384 /* MaxAckPending of the consumer hookd creates (all nodes) */
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000
#define LOG_PER_SECOND  20 /* dropped-message log lines per second at most */

typedef struct nmsg {
    struct nmsg *next;
    natsMsg *m;
    int js;            /* from the JetStream consumer: ack after commit */
    int verdict;       /* enum hk_bus_verdict */
    int solo;          /* store it alone (its batch was refused) */
    char subject[128]; /* for logs (truncated) */
    char why[160];     /* reason when not an event */
    hk_bus_event ev;
} nmsg;

typedef struct nbatch {
    hk_req req;
    struct hk_nats *n;
    nmsg **msgs;
    hk_ingest_item *items;
    int len;
} nbatch;

typedef struct limiter {
    int64_t window_ms;
    int count;
    int64_t suppressed;
} limiter;

struct hk_nats {
    struct event_base *base;
    const hk_config *cfg;
    hk_ingest *ingest;
    hk_metrics *metrics;
    const char **health;
    char **subjects;
    int nsubjects;
    const char *stream; /* NULL: core mode */

    natsOptions *opts;
    natsConnection *nc;
    natsSubscription **core;
    int ncore;

    /* JetStream: owned by the puller thread while it runs */
    jsCtx *js;
    natsSubscription *pull;
    int64_t stream_created;
    pthread_t puller;
    int puller_started;

    /* shared with cnats threads and the puller, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* room in the inbox, or stop */
    nmsg *in_head, *in_tail;
    int held; /* messages in hookd's hands: inbox + ready + in store requests */
    int wake_pending;
    int stop_pull; /* puller: finish */
    int abort;     /* producers: drop instead of waiting for room */
    atomic_int connected;
    atomic_int js_ready;
    atomic_int puller_done;
    atomic_int drained; /* core subscriptions whose drain completed */
    struct event *wake;

    /* loop thread only */
    nmsg *ready_head, *ready_tail;
    int batches;      /* store requests in flight */
    int64_t retry_at; /* monotonic ms before which nothing is submitted */
    int backoff_ms;
    struct event *timer;
    int64_t dropped_seen; /* slow-consumer drops already counted */
    limiter lim;
    int state_logged; /* -1 unknown, 0 down, 1 ok */
    int stopping;
    int stopped;  /* stop completed: nothing more is submitted */
    int flushing; /* stop: waiting for acks to leave */
    int64_t stop_deadline, flush_deadline;
    void (*stop_done)(void *arg);
    void *stop_arg;
    int closed; /* connection closed: no more acks */
};

static void pump(hk_nats *n);
static void check_stop(hk_nats *n);

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* A log line for a dropped message is written unless more than LOG_PER_SECOND were this second;
 * the count of the others is logged when the next second starts. */
static int lim_ok(limiter *l)
{
    int64_t now = hk_mono_ms();
    if (now - l->window_ms >= 1000) {
        if (l->suppressed)
            HK_LOG(HK_LOG_WARN, "nats.log_suppressed", HK_LI("lines", l->suppressed),
                   HK_LS("msg", "dropped-message log lines skipped in the last second"));
        l->window_ms = now;
        l->count = 0;
        l->suppressed = 0;
    }
    if (l->count < LOG_PER_SECOND) {
        l->count++;
        return 1;
    }
    l->suppressed++;
    return 0;
}

/* Wakes the loop (any thread). Caller holds n->mu. */
static void wake_locked(hk_nats *n)
{
    if (n->wake_pending) return;
    n->wake_pending = 1;
    event_active(n->wake, EV_READ, 0);
}

/* Wakes the loop (any thread). */
static void wake(hk_nats *n)
{
    pthread_mutex_lock(&n->mu);
    wake_locked(n);
    pthread_mutex_unlock(&n->mu);
}

/* 1 if the subject is one of HOOKD_NATS_SUBJECTS (a stream may hold more). */
static int subject_wanted(const hk_nats *n, const char *subject)
{
    for (int i = 0; i < n->nsubjects; i++)
        if (hk_nats_subject_match(n->subjects[i], subject)) return 1;
    return 0;
}

/* Maps a message into a new nmsg (any thread). */
static nmsg *nmsg_new(hk_nats *n, natsMsg *m, int js)
{
    nmsg *x = hk_calloc(1, sizeof *x);
    x->m = m;
    x->js = js;
    hk_bus_event_init(&x->ev);
    const char *subject = natsMsg_GetSubject(m);
    hk_strlcpy(x->subject, subject ? subject : "", sizeof x->subject);
    int len = natsMsg_GetDataLength(m);
    if (js && !subject_wanted(n, x->subject)) {
        x->verdict = HK_BUS_IGNORED;
        snprintf(x->why, sizeof x->why, "the subject is not in HOOKD_NATS_SUBJECTS");
    } else if (len > n->cfg->max_body_bytes) {
        x->verdict = HK_BUS_BAD;
        snprintf(x->why, sizeof x->why, "the body has %d bytes, over HOOKD_MAX_BODY_BYTES (%d)",
                 len, n->cfg->max_body_bytes);
    } else {
        x->verdict = hk_bus_map(x->subject, natsMsg_GetData(m), (size_t)(len > 0 ? len : 0), &x->ev,
                                x->why, sizeof x->why);
    }
    if (x->verdict == HK_BUS_EVENT && js && !x->ev.idem_key) {
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            char key[HK_BUS_KEY_MAX + 1];
            snprintf(key, sizeof key, "nats:%s:%lld:%llu", n->stream, (long long)n->stream_created,
                     (unsigned long long)meta->Sequence.Stream);
            hk_bus_key_set(&x->ev.idem_key, key);
            jsMsgMetaData_Destroy(meta);
        }
    }
    return x;
}

static void nmsg_free(nmsg *x)
{
    if (!x) return;
    if (x->m) natsMsg_Destroy(x->m);
    hk_bus_event_free(&x->ev);
    free(x);
}

/* Queues mapped messages for the loop (any thread but the loop). With wait, blocks while hookd
 * holds HK_NATS_MAX_INFLIGHT messages; returns 0, or -1 if the source is aborting (the
 * messages were not queued: the caller frees them). */
static int push(hk_nats *n, nmsg *first, nmsg *last, int count, int wait)
{
    pthread_mutex_lock(&n->mu);
    while (wait && !n->abort && n->held >= HK_NATS_MAX_INFLIGHT)
        pthread_cond_wait(&n->cond, &n->mu);
    if (n->abort) {
        pthread_mutex_unlock(&n->mu);
        return -1;
    }
    if (n->in_tail)
        n->in_tail->next = first;
    else
        n->in_head = first;
    n->in_tail = last;
    n->held += count;
    wake_locked(n);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

/* Messages leave hookd's hands (loop thread). */
static void release(hk_nats *n, int count)
{
    pthread_mutex_lock(&n->mu);
    n->held -= count;
    if (n->held < HK_NATS_MAX_INFLIGHT) pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
}

/* Acks (JetStream) and frees a message that is done with: stored, duplicate or dropped. */
static void finish(hk_nats *n, nmsg *x)
{
    if (x->js && !n->closed) natsMsg_Ack(x->m, NULL);
    nmsg_free(x);
}

/* A message that makes no event, acked. One that is valid but has no event (a KumoMTA
 * Reception record, a subject hookd does not read) is logged at debug only; one that cannot be
 * an event is counted in hookd_nats_dropped_total and logged (the HookdNatsDropping alert reads
 * that counter: a normal Reception stream must not raise it). */
static void drop(hk_nats *n, nmsg *x)
{
    if (x->verdict == HK_BUS_IGNORED) {
        HK_LOG(HK_LOG_DEBUG, "nats.ignored", HK_LS("subject", x->subject), HK_LS("why", x->why));
    } else {
        hk_m_inc(n->metrics, HK_C_NATS_DROPPED, 1);
        if (lim_ok(&n->lim))
            HK_LOG(HK_LOG_WARN, "nats.dropped", HK_LS("subject", x->subject), HK_LS("why", x->why),
                   HK_LS("msg", "counted in hookd_nats_dropped_total and acknowledged"));
    }
    finish(n, x);
    release(n, 1);
}

static void ready_push_front(hk_nats *n, nmsg *x)
{
    x->next = n->ready_head;
    n->ready_head = x;
    if (!n->ready_tail) n->ready_tail = x;
}

static void ready_push_back(hk_nats *n, nmsg *x)
{
    x->next = NULL;
    if (n->ready_tail)
        n->ready_tail->next = x;
    else
        n->ready_head = x;
    n->ready_tail = x;
}

static nmsg *ready_pop(hk_nats *n)
{
    nmsg *x = n->ready_head;
    if (x) {
        n->ready_head = x->next;
        if (!n->ready_head) n->ready_tail = NULL;
        x->next = NULL;
    }
    return x;
}

/* ---- health --------------------------------------------------------------------------------- */

static void update_health(hk_nats *n)
{
    int conn = atomic_load(&n->connected);
    int ok = conn && !n->closed && (!n->stream || atomic_load(&n->js_ready));
    *n->health = ok ? "ok" : "down";
    if (ok == n->state_logged) return;
    if (ok)
        HK_LOG(HK_LOG_INFO, "nats.ready", HK_LS("mode", n->stream ? "jetstream" : "core"));
    else if (n->state_logged == 1 && !n->stopping)
        HK_LOG(HK_LOG_WARN, "nats.down",
               HK_LS("msg", conn ? "the JetStream consumer is not ready; retrying"
                                 : "disconnected from NATS; reconnecting"));
    n->state_logged = ok;
}

/* ---- storing -------------------------------------------------------------------------------- */

static void batch_free(nbatch *b)
{
    free(b->msgs);
    free(b->items);
    free(b);
}

static void on_batch_done(hk_req *req)
{
    nbatch *b = req->udata;
    hk_nats *n = b->n;
    n->batches--;
    if (req->rc == 0) {
        for (int i = 0; i < b->len; i++) finish(n, b->msgs[i]);
        release(n, b->len);
        n->backoff_ms = 0;
    } else if ((req->rc == HK_EINVAL || req->rc == HK_ECONFLICT) && b->len > 1) {
        /* one event the store refuses fails its whole request: store each alone to find it */
        for (int i = b->len - 1; i >= 0; i--) {
            b->msgs[i]->solo = 1;
            ready_push_front(n, b->msgs[i]);
        }
    } else if (req->rc == HK_EINVAL || req->rc == HK_ECONFLICT) {
        nmsg *x = b->msgs[0];
        x->verdict = HK_BUS_BAD;
        snprintf(x->why, sizeof x->why, "the store refused the event: %.120s",
                 req->err[0] ? req->err : hk_strerror(req->rc));
        drop(n, x);
    } else {
        /* the store cannot take it now: keep the messages and try again later */
        if (lim_ok(&n->lim))
            HK_LOG(HK_LOG_WARN, "nats.store_unavailable", HK_LI("messages", b->len),
                   HK_LS("msg", req->err[0] ? req->err : hk_strerror(req->rc)),
                   HK_LS("action", "kept and retried; JetStream messages stay unacknowledged"));
        for (int i = b->len - 1; i >= 0; i--) ready_push_front(n, b->msgs[i]);
        n->backoff_ms = n->backoff_ms ? HK_MIN(n->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
        n->retry_at = hk_mono_ms() + n->backoff_ms;
    }
    hk_req_clear(req);
    batch_free(b);
    /* After the loop has ended (store closing), submit nothing more. */
    if (!n->stopped && !event_base_got_break(n->base) && !event_base_got_exit(n->base)) {
        pump(n);
        check_stop(n);
    }
}

static nbatch *batch_new(hk_nats *n)
{
    nbatch *b = hk_calloc(1, sizeof *b);
    b->n = n;
    b->msgs = hk_calloc(BATCH_MAX, sizeof *b->msgs);
    b->items = hk_calloc(BATCH_MAX, sizeof *b->items);
    return b;
}

static void batch_add(nbatch *b, nmsg *x)
{
    hk_ingest_item *it = &b->items[b->len];
    it->type = x->ev.type;
    it->data = hk_buf_cstr(&x->ev.data);
    it->data_len = x->ev.data.len;
    it->idem_key = x->ev.idem_key;
    it->user_id = x->ev.user_id;
    it->source = hk_ingest_source_name(x->ev.source);
    b->msgs[b->len++] = x;
}

/* One ingest of the batch's messages (one organization); on_batch_done acks or keeps them. */
static void batch_submit(hk_nats *n, nbatch *b)
{
    hk_ingest_opts o = {.org = b->msgs[0]->ev.org, .retries = 1};
    b->req.udata = b;
    n->batches++;
    hk_ingest_submit(n->ingest, &b->req, b->items, b->len, &o, on_batch_done);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void arm_timer(hk_nats *n, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(n->timer, &tv);
}

/* Moves what the producers queued to the ready list and submits it: one store request per
 * organization and BATCH_MAX events. Loop thread. */
static void pump(hk_nats *n)
{
    pthread_mutex_lock(&n->mu);
    n->wake_pending = 0;
    nmsg *in = n->in_head;
    n->in_head = n->in_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while (in) {
        nmsg *next = in->next;
        ready_push_back(n, in);
        in = next;
    }
    if (!n->ready_head || n->stopped) return;
    int64_t now = hk_mono_ms();
    if (now < n->retry_at) {
        arm_timer(n, (int)(n->retry_at - now));
        return;
    }
    if (hk_ingest_backlogged(n->ingest)) {
        n->retry_at = now + 20;
        arm_timer(n, 20);
        return;
    }
    nbatch *open[OPEN_MAX];
    int nopen = 0;
    nmsg *x;
    while ((x = ready_pop(n))) {
        if (x->verdict != HK_BUS_EVENT) {
            drop(n, x);
            continue;
        }
        if (x->solo) {
            nbatch *b = batch_new(n);
            batch_add(b, x);
            batch_submit(n, b);
            continue;
        }
        nbatch *b = NULL;
        for (int i = 0; i < nopen && !b; i++)
            if (strcmp(open[i]->msgs[0]->ev.org, x->ev.org) == 0) b = open[i];
        if (!b) {
            if (nopen == OPEN_MAX) {
                for (int i = 0; i < nopen; i++) batch_submit(n, open[i]);
                nopen = 0;
            }
            b = open[nopen++] = batch_new(n);
        }
        batch_add(b, x);
        if (b->len == BATCH_MAX) {
            batch_submit(n, b);
            for (int i = 0; i < nopen; i++)
                if (open[i] == b) open[i] = open[--nopen];
        }
    }
    for (int i = 0; i < nopen; i++) batch_submit(n, open[i]);
}

/* ---- loop events ---------------------------------------------------------------------------- */

/* Slow-consumer drops of the core subscriptions (cnats's buffer overflowed while hookd was at
 * its in-flight bound): counted as dropped. */
static void count_slow_drops(hk_nats *n)
{
    int64_t total = 0;
    for (int i = 0; i < n->ncore; i++) {
        int64_t d = 0;
        if (n->core[i] && natsSubscription_GetDropped(n->core[i], &d) == NATS_OK) total += d;
    }
    if (total > n->dropped_seen) {
        int64_t delta = total - n->dropped_seen;
        hk_m_inc(n->metrics, HK_C_NATS_DROPPED, delta);
        HK_LOG(HK_LOG_WARN, "nats.slow_consumer", HK_LI("dropped", delta),
               HK_LS("msg", "core NATS messages dropped: hookd could not keep up (the store is "
                            "slow or down); use JetStream (HOOKD_NATS_STREAM) to lose none"));
        n->dropped_seen = total;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    hk_nats *n = arg;
    update_health(n);
    pump(n);
    check_stop(n);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    hk_nats *n = arg;
    if (!n->stopped) {
        update_health(n);
        count_slow_drops(n);
        pump(n);
    }
    check_stop(n);
    if (!n->stopped && !evtimer_pending(n->timer, NULL)) arm_timer(n, n->stopping ? 20 : 1000);
}

/* ---- connection callbacks (cnats threads) ------------------------------------------------------
 */

static void on_connected(natsConnection *nc, void *arg)
{
    hk_nats *n = arg;
    atomic_store(&n->connected, 1);
    pthread_mutex_lock(&n->mu);
    pthread_cond_broadcast(&n->cond);
    wake_locked(n);
    pthread_mutex_unlock(&n->mu);
}

static void on_disconnected(natsConnection *nc, void *arg)
{
    hk_nats *n = arg;
    atomic_store(&n->connected, 0);
    wake(n);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
    if (err == NATS_SLOW_CONSUMER) return; /* counted by count_slow_drops */
    HK_LOG(HK_LOG_WARN, "nats.error", HK_LS("msg", natsStatus_GetText(err)));
}

static void on_core_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    hk_nats *n = arg;
    nmsg *x = nmsg_new(n, m, 0);
    if (push(n, x, x, 1, 1)) nmsg_free(x); /* stopping past the deadline: lost, as core is */
}

static void on_drained(void *arg)
{
    hk_nats *n = arg;
    atomic_fetch_add(&n->drained, 1);
    wake(n);
}

/* ---- JetStream puller -------------------------------------------------------------------------
 */

/* Sleeps up to ms, or less if the source is stopping. */
static void pull_sleep(hk_nats *n, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    if (!n->stop_pull) pthread_cond_timedwait(&n->cond, &n->mu, &ts);
    pthread_mutex_unlock(&n->mu);
}

static int pull_stopping(hk_nats *n)
{
    pthread_mutex_lock(&n->mu);
    int s = n->stop_pull;
    pthread_mutex_unlock(&n->mu);
    return s;
}

/* Finds (or creates) the stream and the durable consumer and binds the pull subscription.
 * Returns 0, or -1 with err. Puller thread. */
static int js_setup(hk_nats *n, char *err, size_t errlen)
{
    natsStatus s;
    jsErrCode jerr = 0;
    if (!n->js && (s = natsConnection_JetStream(&n->js, n->nc, NULL)) != NATS_OK) {
        snprintf(err, errlen, "JetStream context: %s", natsStatus_GetText(s));
        return -1;
    }
    jsStreamInfo *si = NULL;
    s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = n->stream;
        sc.Subjects = (const char **)n->subjects;
        sc.SubjectsLen = n->nsubjects;
        sc.Storage = js_FileStorage;
        jerr = 0;
        s = js_AddStream(&si, n->js, &sc, NULL, &jerr);
        if (s == NATS_OK)
            HK_LOG(HK_LOG_INFO, "nats.stream_created", HK_LS("stream", n->stream),
                   HK_LS("subjects", n->cfg->nats_subjects),
                   HK_LS("msg", "the stream did not exist: created with file storage"));
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "stream %s: %s (JetStream error %d)", n->stream,
                 nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s),
                 (int)jerr);
        jsStreamInfo_Destroy(si);
        return -1;
    }
    int64_t created = si->Created;
    jsStreamInfo_Destroy(si);

    const char *durable = n->cfg->nats_durable;
    jsConsumerInfo *ci = NULL;
    jerr = 0;
    s = js_GetConsumerInfo(&ci, n->js, n->stream, durable, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = durable;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = (int64_t)ACK_WAIT_S * 1000000000LL;
        cc.DeliverPolicy = js_DeliverAll;
        cc.MaxDeliver = -1;
        cc.MaxAckPending = MAX_ACK_PENDING;
        if (n->nsubjects == 1) cc.FilterSubject = n->subjects[0];
        jerr = 0;
        s = js_AddConsumer(&ci, n->js, n->stream, &cc, NULL, &jerr);
        if (s != NATS_OK) { /* another node may have created it meanwhile */
            jerr = 0;
            s = js_GetConsumerInfo(&ci, n->js, n->stream, durable, NULL, &jerr);
        } else {
            HK_LOG(HK_LOG_INFO, "nats.consumer_created", HK_LS("stream", n->stream),
                   HK_LS("durable", durable), HK_LI("ack_wait_s", ACK_WAIT_S));
        }
    }
    if (s != NATS_OK) {
        snprintf(
            err, errlen, "consumer %s on stream %s: %s (JetStream error %d)", durable, n->stream,
            nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s), (int)jerr);
        jsConsumerInfo_Destroy(ci);
        return -1;
    }
    int push_mode = ci->Config && ci->Config->DeliverSubject && ci->Config->DeliverSubject[0];
    int acks = ci->Config && ci->Config->AckPolicy == js_AckExplicit;
    jsConsumerInfo_Destroy(ci);
    if (push_mode || !acks) {
        snprintf(err, errlen,
                 "consumer %s on stream %s must be a pull consumer with explicit acks "
                 "(delete it, or name another in HOOKD_NATS_DURABLE)",
                 durable, n->stream);
        return -1;
    }
    pthread_mutex_lock(&n->mu);
    n->stream_created = created;
    pthread_mutex_unlock(&n->mu);
    if (!n->pull) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = n->stream;
        so.Consumer = durable;
        jerr = 0;
        s = js_PullSubscribe(&n->pull, n->js, NULL, NULL, NULL, &so, &jerr);
        if (s != NATS_OK) {
            n->pull = NULL;
            snprintf(err, errlen, "pull subscription: %s",
                     nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
            return -1;
        }
    }
    return 0;
}

/* One pull: up to `room` messages; waiting for one when the stream was idle. Returns the
 * natsStatus of the fetch. Puller thread. */
static natsStatus pull_once(hk_nats *n, int room, int idle)
{
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    if (idle) {
        req.Batch = 1;
        req.Expires = (int64_t)FETCH_WAIT_MS * 1000000LL;
    } else {
        req.Batch = HK_MIN(room, FETCH_MAX);
        req.NoWait = true;
        req.Expires = 5000LL * 1000000LL; /* the server answers at once; this bounds the wait */
    }
    natsMsgList list = {0};
    natsStatus s = natsSubscription_FetchRequest(&list, n->pull, &req);
    if (s != NATS_OK) return s;
    nmsg *first = NULL, *last = NULL;
    for (int i = 0; i < list.Count; i++) {
        nmsg *x = nmsg_new(n, list.Msgs[i], 1);
        list.Msgs[i] = NULL;
        if (last)
            last->next = x;
        else
            first = x;
        last = x;
    }
    int count = list.Count;
    natsMsgList_Destroy(&list);
    if (first && push(n, first, last, count, 0)) {
        /* aborting: give them back at once */
        while (first) {
            nmsg *next = first->next;
            natsMsg_Nak(first->m, NULL);
            nmsg_free(first);
            first = next;
        }
    }
    return NATS_OK;
}

static void *puller_main(void *arg)
{
    hk_nats *n = arg;
    int setup = 0, idle = 0, errors = 0, backoff = 250;
    char err[512];
    int64_t last_log = 0;
    while (!pull_stopping(n)) {
        if (!atomic_load(&n->connected)) {
            pull_sleep(n, 200);
            continue;
        }
        if (!setup) {
            if (js_setup(n, err, sizeof err)) {
                atomic_store(&n->js_ready, 0);
                wake(n);
                if (hk_mono_ms() - last_log > 10000) {
                    HK_LOG(HK_LOG_WARN, "nats.jetstream_setup_failed", HK_LS("msg", err),
                           HK_LS("action", "retrying"));
                    last_log = hk_mono_ms();
                }
                pull_sleep(n, backoff);
                backoff = HK_MIN(backoff * 2, BACKOFF_MAX_MS);
                continue;
            }
            setup = 1;
            backoff = 250;
            errors = 0;
            atomic_store(&n->js_ready, 1);
            wake(n);
        }
        pthread_mutex_lock(&n->mu);
        while (!n->stop_pull && n->held > HK_NATS_MAX_INFLIGHT - FETCH_MAX / 4)
            pthread_cond_wait(&n->cond, &n->mu);
        int room = HK_NATS_MAX_INFLIGHT - n->held;
        int stop = n->stop_pull;
        pthread_mutex_unlock(&n->mu);
        if (stop) break;
        natsStatus s = pull_once(n, room, idle);
        if (s == NATS_OK) {
            idle = 0;
            errors = 0;
        } else if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) {
            idle = 1; /* nothing there: next time wait for one */
            errors = 0;
            if (!atomic_load(&n->js_ready)) {
                atomic_store(&n->js_ready, 1);
                wake(n);
            }
        } else if (atomic_load(&n->connected)) {
            /* the consumer or the stream may be gone (deleted, server state lost) */
            if (++errors >= 3) {
                atomic_store(&n->js_ready, 0);
                wake(n);
                if (hk_mono_ms() - last_log > 10000) {
                    HK_LOG(HK_LOG_WARN, "nats.pull_failed", HK_LS("msg", natsStatus_GetText(s)),
                           HK_LS("action", "checking the stream and the consumer"));
                    last_log = hk_mono_ms();
                }
                setup = 0;
            }
            idle = 1;
            pull_sleep(n, HK_MIN(100 * errors, 2000));
        }
    }
    atomic_store(&n->puller_done, 1);
    wake(n);
    return NULL;
}

/* ---- start, stop, free ------------------------------------------------------------------------
 */

void hk_nats_global_init(void)
{
    natsLibevent_Init();
}

/* 1 if s is a NATS subject or wildcard pattern: dot-separated non-empty tokens of visible
 * characters, `*` only as a whole token, `>` only as the whole last token. */
static int subject_valid(const char *s)
{
    if (!*s || strlen(s) > 255) return 0;
    const char *t = s;
    for (;;) {
        size_t len = strcspn(t, ".");
        if (len == 0) return 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c <= ' ' || c == 0x7f) return 0;
            if ((c == '*' || c == '>') && len != 1) return 0;
        }
        if (len == 1 && t[0] == '>' && t[1]) return 0;
        if (!t[len]) return 1;
        t += len + 1;
    }
}

static int parse_subjects(hk_nats *n, char *err, size_t errlen)
{
    const char *p = n->cfg->nats_subjects;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        size_t len = strcspn(p, ", ");
        if (!len) break;
        char *sub = hk_strndup(p, len);
        if (!subject_valid(sub)) {
            snprintf(err, errlen, "HOOKD_NATS_SUBJECTS: '%.100s' is not a NATS subject", sub);
            free(sub);
            return -1;
        }
        n->subjects = hk_realloc(n->subjects, sizeof(char *) * (size_t)(n->nsubjects + 1));
        n->subjects[n->nsubjects++] = sub;
        p += len;
    }
    if (!n->nsubjects) {
        snprintf(err, errlen, "HOOKD_NATS_SUBJECTS names no subject");
        return -1;
    }
    return 0;
}

hk_nats *hk_nats_start(struct event_base *base, const hk_config *cfg, hk_ingest *ingest,
                       hk_metrics *metrics, const char **health, char *err, size_t errlen)
{
    hk_nats *n = hk_calloc(1, sizeof *n);
    n->base = base;
    n->cfg = cfg;
    n->ingest = ingest;
    n->metrics = metrics;
    n->health = health;
    n->state_logged = -1;
    n->stream = cfg->nats_stream && cfg->nats_stream[0] ? cfg->nats_stream : NULL;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cond, NULL);
    n->wake = event_new(base, -1, 0, on_wake, n);
    n->timer = evtimer_new(base, on_timer, n);
    *health = "down";
    if (parse_subjects(n, err, errlen)) goto fail;

    natsStatus s = natsOptions_Create(&n->opts);
    char name[200];
    snprintf(name, sizeof name, "hookd %s", cfg->node_id ? cfg->node_id : "");
    if (s == NATS_OK) s = natsOptions_SetURL(n->opts, cfg->nats_url);
    if (s != NATS_OK) {
        snprintf(err, errlen, "NATS_URL: %s", natsStatus_GetText(s));
        goto fail;
    }
    if (s == NATS_OK) s = natsOptions_SetName(n->opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(n->opts, base, natsLibevent_Attach, natsLibevent_Read,
                                     natsLibevent_Write, natsLibevent_Detach);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(n->opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(n->opts, 500);
    if (s == NATS_OK) s = natsOptions_SetReconnectJitter(n->opts, 100, 1000);
    if (s == NATS_OK) s = natsOptions_SetTimeout(n->opts, 2000);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(n->opts, 10000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(n->opts, 2);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(n->opts, true, on_connected, n);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(n->opts, on_disconnected, n);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(n->opts, on_connected, n);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(n->opts, on_disconnected, n);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(n->opts, on_async_error, n);
    if (s != NATS_OK) {
        snprintf(err, errlen, "NATS options: %s", natsStatus_GetText(s));
        goto fail;
    }
    s = natsConnection_Connect(&n->nc, n->opts);
    if (s == NATS_OK) {
        atomic_store(&n->connected, 1);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        HK_LOG(HK_LOG_WARN, "nats.connect_failed",
               HK_LS("msg", "NATS is not reachable yet; retrying in the background"));
    } else {
        snprintf(err, errlen, "NATS_URL: cannot connect: %s",
                 nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
        n->nc = NULL;
        goto fail;
    }
    if (!n->stream) {
        n->core = hk_calloc((size_t)n->nsubjects, sizeof *n->core);
        for (int i = 0; i < n->nsubjects; i++) {
            s = natsConnection_QueueSubscribe(&n->core[i], n->nc, n->subjects[i],
                                              HK_NATS_QUEUE_GROUP, on_core_msg, n);
            if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(n->core[i], on_drained, n);
            if (s != NATS_OK) {
                snprintf(err, errlen, "subscribe to %s: %s", n->subjects[i], natsStatus_GetText(s));
                goto fail;
            }
            n->ncore++;
        }
    } else {
        if (pthread_create(&n->puller, NULL, puller_main, n)) {
            snprintf(err, errlen, "cannot start the JetStream puller: %s", strerror(errno));
            goto fail;
        }
        n->puller_started = 1;
    }
    HK_LOG(HK_LOG_INFO, "nats.started", HK_LS("subjects", cfg->nats_subjects),
           HK_LS("mode", n->stream ? "jetstream" : "core"), HK_LS("stream", n->stream),
           HK_LS("durable", n->stream ? cfg->nats_durable : NULL),
           HK_LS("queue_group", n->stream ? NULL : HK_NATS_QUEUE_GROUP));
    update_health(n);
    arm_timer(n, 1000);
    return n;
fail:
    hk_nats_free(n);
    *health = "down";
    return NULL;
}

/* The end of a stop: connection closed, done called. */
static void stop_finish(hk_nats *n)
{
    n->stopped = 1;
    if (n->nc && !n->closed) natsConnection_Close(n->nc);
    n->closed = 1;
    *n->health = "down";
    HK_LOG(HK_LOG_INFO, "nats.stopped",
           HK_LS("msg", "every message in hand stored and acked, or "
                        "handed back"));
    if (n->stop_done) n->stop_done(n->stop_arg);
}

/* Advances a stop: once nothing is in hand (or the deadline passed), lets the acks leave, then
 * closes. Loop thread. */
static void check_stop(hk_nats *n)
{
    if (!n->stopping || n->stopped) return;
    int64_t now = hk_mono_ms();
    if (!n->flushing) {
        int pulled = !n->puller_started || atomic_load(&n->puller_done);
        int drained = atomic_load(&n->drained) >= n->ncore || !atomic_load(&n->connected);
        pthread_mutex_lock(&n->mu);
        int empty = !n->in_head;
        pthread_mutex_unlock(&n->mu);
        int idle = pulled && drained && empty && !n->ready_head && n->batches == 0;
        if (!idle && now < n->stop_deadline) return;
        if (!idle) {
            /* out of time: hand back what is not stored (JetStream redelivers it) */
            pthread_mutex_lock(&n->mu);
            n->abort = 1;
            n->stop_pull = 1;
            pthread_cond_broadcast(&n->cond);
            nmsg *in = n->in_head;
            n->in_head = n->in_tail = NULL;
            pthread_mutex_unlock(&n->mu);
            while (in) {
                nmsg *next = in->next;
                ready_push_back(n, in);
                in = next;
            }
            int lost = 0, back = 0;
            nmsg *x;
            while ((x = ready_pop(n))) {
                if (x->js) {
                    natsMsg_Nak(x->m, NULL);
                    back++;
                } else {
                    lost++;
                }
                nmsg_free(x);
                release(n, 1);
            }
            HK_LOG(HK_LOG_WARN, "nats.stop_timeout", HK_LI("handed_back", back),
                   HK_LI("core_lost", lost), HK_LI("storing", n->batches),
                   HK_LS("msg", "messages not stored in time; JetStream redelivers them"));
        }
        n->flushing = 1;
        n->flush_deadline = now + 2000;
    }
    if (n->nc && !n->closed && natsConnection_Buffered(n->nc) > 0 && atomic_load(&n->connected) &&
        now < n->flush_deadline)
        return; /* the loop is writing the acks out */
    stop_finish(n);
}

void hk_nats_stop(hk_nats *n, int timeout_ms, void (*done)(void *arg), void *arg)
{
    n->stopping = 1;
    n->stop_deadline = hk_mono_ms() + timeout_ms;
    n->stop_done = done;
    n->stop_arg = arg;
    HK_LOG(HK_LOG_INFO, "nats.stopping", HK_LI("timeout_ms", timeout_ms));
    pthread_mutex_lock(&n->mu);
    n->stop_pull = 1;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    /* core: stop interest, but take what cnats already holds */
    for (int i = 0; i < n->ncore; i++)
        if (natsSubscription_Drain(n->core[i]) != NATS_OK) atomic_fetch_add(&n->drained, 1);
    arm_timer(n, 20);
    check_stop(n);
}

void hk_nats_free(hk_nats *n)
{
    if (!n) return;
    pthread_mutex_lock(&n->mu);
    n->abort = 1;
    n->stop_pull = 1;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    if (n->puller_started) pthread_join(n->puller, NULL);
    if (n->nc && !n->closed) natsConnection_Close(n->nc);
    n->closed = 1;
    for (int i = 0; i < n->ncore; i++) natsSubscription_Destroy(n->core[i]);
    free(n->core);
    natsSubscription_Destroy(n->pull);
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    natsOptions_Destroy(n->opts);
    /* every cnats thread (callbacks included) ends before the state they use goes */
    nats_CloseAndWait(2000);
    nmsg *x;
    for (x = n->in_head; x;) {
        nmsg *next = x->next;
        nmsg_free(x);
        x = next;
    }
    while ((x = ready_pop(n))) nmsg_free(x);
    for (int i = 0; i < n->nsubjects; i++) free(n->subjects[i]);
    free(n->subjects);
    if (n->wake) event_free(n->wake);
    if (n->timer) event_free(n->timer);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cond);
    free(n);
}
