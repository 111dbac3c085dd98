/*
 * redis_conn.c: the self-healing async Redis connection (see redis_conn.h).
 *
 * States: idle (no context; a retry timer is armed) -> connecting (context, TCP not yet up)
 * -> connected (handshake: AUTH, SELECT, PING in flight) -> up. Any failure goes back to idle
 * through drop(), which frees the context (hiredis then runs every pending callback with a NULL
 * reply) and arms the retry timer. Every command in flight is an rcall on a list in send
 * order, so the oldest is at the head and one timer can tell a Redis that stopped answering.
 */
#include "queue/redis_conn.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/time.h"

#define CONNECT_TIMEOUT_MS 3000
#define WATCH_MS           1000
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     2000
#define MAX_LISTENERS      4

typedef struct rcall {
    hk_redis *r;
    hk_redis_cb cb;
    void *arg;
    int64_t sent_mono;
    struct rcall *prev, *next;
    /* hk_redis_eval: the full EVALSHA command, kept to send it again as EVAL on NOSCRIPT */
    hk_redis_script *script;
    int argc;
    const char **argv;
    size_t *lens;
    char *blob;
    int retried;
} rcall;

typedef struct listener {
    hk_redis_state_fn fn;
    void *arg;
} listener;

struct hk_redis {
    struct event_base *base;
    hk_redis_url url;
    redisAsyncContext *ac;
    int connected;    /* TCP connected, handshake maybe in flight */
    int up;           /* handshake done and answering */
    int announced_up; /* listeners were told "up" last */
    int64_t connect_started;
    int backoff_ms;
    int fail_logged; /* the current outage has been logged */
    int ping_inflight;
    uint64_t epoch; /* hk_redis_epoch */
    struct event *retry_timer, *watch_timer;
    rcall *head, *tail;
    listener listeners[MAX_LISTENERS];
    int nlisteners;
};

/* ---- calls -------------------------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

static void rc_link(hk_redis *r, rcall *c)
{
    c->prev = r->tail;
    c->next = NULL;
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
}

static void rc_unlink(hk_redis *r, rcall *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (r->head == c)
        r->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else if (r->tail == c)
        r->tail = c->prev;
    c->prev = c->next = NULL;
}

static void rc_free(rcall *c)
{
    free(c->argv);
    free(c->lens);
    free(c->blob);
    free(c);
}

/* Sends c's command. 0, or HK_EUNAVAIL (c is not linked then; the caller frees it). */
static int rc_send(hk_redis *r, rcall *c, int argc, const char **argv, const size_t *lens)
{
    if (!r->ac || !r->connected) return HK_EUNAVAIL;
    c->sent_mono = hk_mono_ms();
    rc_link(r, c);
    if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, lens) != REDIS_OK) {
        rc_unlink(r, c);
        return HK_EUNAVAIL;
    }
    return HK_OK;
}

static void notify(hk_redis *r, int up)
{
    if (r->announced_up == up) return;
    r->announced_up = up;
    for (int i = 0; i < r->nlisteners; i++) r->listeners[i].fn(r->listeners[i].arg, up);
}

static void arm_retry(hk_redis *r)
{
    struct timeval tv = {r->backoff_ms / 1000, (r->backoff_ms % 1000) * 1000};
    evtimer_add(r->retry_timer, &tv);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void log_down(hk_redis *r, const char *why)
{
    if (r->fail_logged) {
        HK_LOG(HK_LOG_DEBUG, "redis.connect_failed", HK_LS("msg", why));
        return;
    }
    r->fail_logged = 1;
    HK_LOG(HK_LOG_WARN, "redis.down", HK_LS("msg", why),
           HK_LS("why", "the delivery schedule and shared rate limits are unreachable"),
           HK_LS("fix", "hookd reconnects by itself; meanwhile due deliveries are claimed "
                        "from the store and rate-limited webhooks are held"));
}

/* Ends the current connection (pending callbacks get NULL), tells listeners, retries later. */
static void drop(hk_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->connected = 0;
    r->up = 0;
    r->ping_inflight = 0;
    log_down(r, why);
    if (ac) {
        ac->data = NULL; /* on_disconnect: nothing left to do */
        redisAsyncFree(ac);
    }
    notify(r, 0);
    if (!evtimer_pending(r->retry_timer, NULL)) arm_retry(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rcall *c = priv;
    hk_redis *r = c->r;
    redisReply *rep = reply;
    rc_unlink(r, c);
    if (!rep && r->ac == ac) r->up = 0; /* the connection is going: refuse new commands */
    if (rep && rep->type == REDIS_REPLY_ERROR && c->script && !c->retried &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0 && r->ac == ac) {
        c->retried = 1;
        c->argv[0] = "EVAL";
        c->lens[0] = 4;
        c->argv[1] = c->script->body;
        c->lens[1] = strlen(c->script->body);
        if (rc_send(r, c, c->argc, c->argv, c->lens) == HK_OK) return;
        rep = NULL;
    }
    if (c->cb) c->cb(rep, c->arg);
    rc_free(c);
}

static int user_call(hk_redis *r, rcall *c, int argc, const char **argv, const size_t *lens)
{
    if (!r->up) {
        rc_free(c);
        return HK_EUNAVAIL;
    }
    if (rc_send(r, c, argc, argv, lens)) {
        rc_free(c);
        return HK_EUNAVAIL;
    }
    return HK_OK;
}

int hk_redis_cmd(hk_redis *r, hk_redis_cb cb, void *arg, int argc, const char **argv,
                 const size_t *lens)
{
    rcall *c = hk_calloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    return user_call(r, c, argc, argv, lens);
}

static void script_sha(hk_redis_script *s)
{
    if (s->sha[0]) return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s->body, strlen(s->body), md, &n, EVP_sha1(), NULL);
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < n && i < 20; i++) {
        s->sha[2 * i] = hx[md[i] >> 4];
        s->sha[2 * i + 1] = hx[md[i] & 15];
    }
    s->sha[40] = '\0';
}

int hk_redis_eval(hk_redis *r, hk_redis_script *script, int nkeys, int argc, const char **argv,
                  const size_t *lens, hk_redis_cb cb, void *arg)
{
    if (!r->up) return HK_EUNAVAIL;
    script_sha(script);
    rcall *c = hk_calloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->script = script;
    c->argc = argc + 3;
    c->argv = hk_malloc(sizeof(char *) * (size_t)c->argc);
    c->lens = hk_malloc(sizeof(size_t) * (size_t)c->argc);
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += lens ? lens[i] : strlen(argv[i]);
    char nk[16];
    int nkl = snprintf(nk, sizeof nk, "%d", nkeys);
    c->blob = hk_malloc(total + (size_t)nkl + 1);
    char *o = c->blob;
    memcpy(o, nk, (size_t)nkl);
    c->argv[0] = "EVALSHA";
    c->lens[0] = 7;
    c->argv[1] = script->sha;
    c->lens[1] = 40;
    c->argv[2] = o;
    c->lens[2] = (size_t)nkl;
    o += nkl;
    for (int i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        if (l) memcpy(o, argv[i], l);
        c->argv[3 + i] = o;
        c->lens[3 + i] = l;
        o += l;
    }
    return user_call(r, c, c->argc, c->argv, c->lens);
}

/* ---- connecting --------------------------------------------------------------------------- */

static void start_connect(hk_redis *r);

static void on_hello(redisReply *rep, void *arg);

/* AUTH / SELECT: an error ends the connection (the PING behind it then gets NULL). */
static void on_handshake(redisReply *rep, void *arg)
{
    hk_redis *r = arg;
    if (rep && rep->type == REDIS_REPLY_ERROR && r->connected) on_hello(rep, arg);
}

/* The last handshake reply (PING): the connection is usable. */
static void on_hello(redisReply *rep, void *arg)
{
    hk_redis *r = arg;
    if (!rep || !r->connected) return; /* lost meanwhile: on_disconnect/drop handle it */
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why,
                 "Redis refused the connection: %.200s (check the password "
                 "and database in REDIS_URL)",
                 rep->str);
        HK_LOG(HK_LOG_ERROR, "redis.handshake_failed", HK_LS("msg", why));
        r->fail_logged = 1;
        drop(r, why);
        return;
    }
    r->up = 1;
    r->epoch++;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->fail_logged = 0;
    HK_LOG(HK_LOG_INFO, "redis.up", HK_LS("host", r->url.path[0] ? r->url.path : r->url.host),
           HK_LI("port", r->url.port), HK_LI("db", r->url.db));
    notify(r, 1);
}

static void send_internal(hk_redis *r, hk_redis_cb cb, int argc, const char **argv)
{
    rcall *c = hk_calloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = r;
    if (rc_send(r, c, argc, argv, NULL)) rc_free(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    hk_redis *r = ac->data;
    if (!r) return;
    if (status != REDIS_OK) {
        char why[300];
        snprintf(why, sizeof why, "cannot connect: %s", ac->errstr);
        r->ac = NULL; /* hiredis frees the context after this callback */
        r->connected = 0;
        log_down(r, why);
        notify(r, 0);
        arm_retry(r);
        return;
    }
    r->connected = 1;
    /* AUTH and SELECT first; everything sent later queues behind them on the same socket */
    if (r->url.pass[0]) {
        const char *av[3] = {"AUTH", r->url.user, r->url.pass};
        if (r->url.user[0])
            send_internal(r, on_handshake, 3, av);
        else {
            av[1] = r->url.pass;
            send_internal(r, on_handshake, 2, av);
        }
    }
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *av[2] = {"SELECT", db};
        send_internal(r, on_handshake, 2, av);
    }
    const char *ping[1] = {"PING"};
    send_internal(r, on_hello, 1, ping);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    hk_redis *r = ac->data;
    if (!r) return; /* we freed it ourselves */
    char why[300];
    snprintf(why, sizeof why, "connection lost: %s", ac->err ? ac->errstr : "closed by Redis");
    r->ac = NULL; /* hiredis frees it after this callback */
    r->connected = 0;
    r->up = 0;
    r->ping_inflight = 0;
    log_down(r, why);
    notify(r, 0);
    if (!evtimer_pending(r->retry_timer, NULL)) arm_retry(r);
}

static void start_connect(hk_redis *r)
{
    redisAsyncContext *ac = r->url.path[0] ? redisAsyncConnectUnix(r->url.path)
                                           : redisAsyncConnect(r->url.host, r->url.port);
    if (!ac || ac->err) {
        char why[300];
        snprintf(why, sizeof why, "cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        log_down(r, why);
        arm_retry(r);
        return;
    }
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->connected = 0;
    r->connect_started = hk_mono_ms();
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    hk_redis *r = arg;
    if (!r->ac) start_connect(r);
}

static void on_ping(redisReply *rep, void *arg)
{
    hk_redis *r = arg;
    r->ping_inflight = 0;
}

/* Once a second: connect timeout, a Redis that stopped answering, and an idle PING. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    hk_redis *r = arg;
    int64_t now = hk_mono_ms();
    if (r->ac && !r->connected && now - r->connect_started > CONNECT_TIMEOUT_MS) {
        drop(r, "connect timed out");
        return;
    }
    if (!r->connected) return;
    if (r->head && now - r->head->sent_mono > HK_REDIS_REPLY_TIMEOUT_MS) {
        drop(r, "Redis did not answer within 5 s");
        return;
    }
    if (r->up && !r->ping_inflight) {
        const char *ping[1] = {"PING"};
        r->ping_inflight = 1;
        rcall *c = hk_calloc(1, sizeof *c);
        c->r = r;
        c->cb = on_ping;
        c->arg = r;
        if (rc_send(r, c, 1, ping, NULL)) {
            rc_free(c);
            r->ping_inflight = 0;
        }
    }
}

hk_redis *hk_redis_new(struct event_base *base, const char *url, char *err, size_t errlen)
{
    hk_redis *r = hk_calloc(1, sizeof *r);
    char why[200];
    if (hk_redis_url_parse(url, &r->url, why, sizeof why)) {
        snprintf(err, errlen, "REDIS_URL: %s", why);
        free(r);
        return NULL;
    }
    r->base = base;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->retry_timer = evtimer_new(base, on_retry, r);
    r->watch_timer = event_new(base, -1, EV_PERSIST, on_watch, r);
    struct timeval tv = {WATCH_MS / 1000, (WATCH_MS % 1000) * 1000};
    evtimer_add(r->watch_timer, &tv);
    start_connect(r);
    return r;
}

void hk_redis_listen(hk_redis *r, hk_redis_state_fn fn, void *arg)
{
    if (r->nlisteners >= MAX_LISTENERS) return;
    r->listeners[r->nlisteners].fn = fn;
    r->listeners[r->nlisteners].arg = arg;
    r->nlisteners++;
}

int hk_redis_up(const hk_redis *r)
{
    return r && r->up;
}

uint64_t hk_redis_epoch(const hk_redis *r)
{
    return r->epoch;
}

void hk_redis_data_lost(hk_redis *r)
{
    r->epoch++;
    if (!r->up) return; /* the next connection tells the listeners */
    for (int i = 0; i < r->nlisteners; i++) r->listeners[i].fn(r->listeners[i].arg, 1);
}

void hk_redis_free(hk_redis *r)
{
    if (!r) return;
    r->nlisteners = 0;
    r->up = 0;
    /* One non-blocking write of what is still buffered (the last hand-backs of a shutdown),
     * so other nodes see them without waiting for a sweep. If it fails, hiredis ends the
     * connection itself and on_disconnect clears r->ac. */
    if (r->ac && r->connected) redisAsyncHandleWrite(r->ac);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->connected = 0;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* pending callbacks run now, with NULL */
    }
    while (r->head) { /* none expected: hiredis answered every pending call */
        rcall *c = r->head;
        rc_unlink(r, c);
        if (c->cb) c->cb(NULL, c->arg);
        rc_free(c);
    }
    event_free(r->retry_timer);
    event_free(r->watch_timer);
    free(r);
}
