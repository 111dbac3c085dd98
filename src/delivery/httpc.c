/*
 * httpc.c: libcurl multi-socket on libevent (see httpc.h). The integration is the usual one:
 * curl tells us which sockets to watch (socket callback) and when to wake it (timer callback);
 * libevent tells curl when a socket is ready; finished transfers are collected from
 * curl_multi_info_read and called back.
 *
 * TLS sessions are resumed by libcurl's session cache, which belongs to each easy handle: the
 * handles are pooled, so a new connection to an endpoint resumes the session of the last one its
 * handle made there (a handle's first connection does a full handshake). A curl share handle
 * (CURL_LOCK_DATA_SSL_SESSION) was measured and resumed fewer (docs/BENCHMARKS.md, scenario h).
 * HOOKD_TLS_SESSION_CACHE=0 turns resumption off (every handshake full).
 *
 * Trust: HOOKD_CA_FILE, else the system's CA bundle; never a CA directory, with which libcurl
 * 7.88 reads and parses the CA file again for every new connection (find_system_ca).
 *
 * Transfers are spread over HK_HTTPC_SHARDS multi handles by their URL's origin (scheme, host,
 * port), each with its own connection cache, DNS cache and timer, all on the one loop. libcurl
 * 7.88 walks a multi handle's whole connection cache when a transfer that kept its connection
 * is removed, when the cache is full (to find the oldest idle connection) and its whole DNS
 * cache when it prunes it: with thousands of endpoints these walks were most of hookd's CPU
 * (docs/BENCHMARKS.md, scenarios g and j). Shards divide each walk by their number; an origin's
 * connections all live in its shard, so reuse is as before. 16, 64 and 256 shards were
 * measured (bench j: CPU per delivery 0.142, 0.117, 0.112 ms against 1.23 with one); 64 is where
 * the gain flattens.
 *
 * Idle connections: HOOKD_MAX_IDLE_CONNECTIONS of them in all, wherever they are needed: the
 * sockets are counted per shard (opened in on_opensocket, closed in on_closesocket), and a
 * shard's CURLMOPT_MAXCONNECTS, set whenever its transfers change, is its transfers plus the
 * idle room the other shards leave (at least an even share, rounded up: a budget below 64 may
 * keep up to 64), so one busy origin may keep every idle connection while thousands of origins
 * share them. libcurl applies the limit when a connection is returned, so a shard out of use
 * keeps what it held until it is used again, and closes a connection idle for longer than
 * CURLOPT_MAXAGE_CONN (118 s) when the shard is next used: connections stay about
 * HOOKD_MAX_INFLIGHT + HOOKD_MAX_IDLE_CONNECTIONS. 0 keeps none (CURLOPT_FORBID_REUSE).
 *
 * Every socket is made by on_opensocket: the SSRF guard's check, the shard's socket count, and
 * the send-queue bound every hookd socket has (hk_sock_bound_unsent, core/common.h).
 *
 * Callbacks to the user are never made from inside curl: completions are gathered first and
 * called after curl returns, so a callback may start or cancel transfers freely.
 */
#include "delivery/httpc.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/time.h"
#include "delivery/capture.h"
#include "delivery/ssrf.h"

#define HK_HTTPC_SHARDS 64

/* One multi handle and what drives it. */
typedef struct shard {
    hk_httpc *c;
    CURLM *multi;
    struct event *timer;
    int inflight; /* its transfers started and not yet freed */
    int conns;    /* its sockets open (in use or idle) */
} shard;

struct hk_httpc {
    struct event_base *base;
    const hk_config *cfg;
    shard shards[HK_HTTPC_SHARDS];
    long idle_max;   /* idle connections kept in all: HOOKD_MAX_IDLE_CONNECTIONS */
    long idle_share; /* the idle connections a shard may always keep (an even share) */
    int conns;       /* sockets open in all shards */
    int inflight;
    hk_httpc_xfer *all; /* every live transfer (for free) */
    CURL **pool;        /* idle easy handles for reuse */
    int npool, poolcap;
    hk_ssrf_guard *guard;
    char *system_ca; /* see find_system_ca; NULL: libcurl's defaults as they are */
};

struct hk_httpc_xfer {
    hk_httpc *c;
    shard *sh; /* the multi handle it runs in */
    CURL *easy;
    struct curl_slist *hdrs;
    hk_httpc_cb cb;
    void *arg;
    hk_capture cap; /* the response as it arrives (capture.h) */
    int refused;    /* the SSRF guard refused an address */
    int allowed;    /* ... and let another one through (a name with several) */
    char refused_msg[160];
    char errbuf[CURL_ERROR_SIZE];
    int64_t start_us;
    int timeout_ms; /* this transfer's total deadline */
    hk_httpc_xfer *prev, *next;
};

typedef struct sockctx {
    struct event *ev;
    curl_socket_t fd;
} sockctx;

static void check_done(shard *sh);

/* ---- libevent <-> curl glue ------------------------------------------------------------------ */

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    shard *sh = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(sh->multi, fd, action, &running);
    check_done(sh);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    shard *sh = arg;
    int running;
    curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(sh);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    shard *sh = userp;
    sockctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            event_free(sc->ev);
            free(sc);
            curl_multi_assign(sh->multi, s, NULL);
        }
        return 0;
    }
    short kind =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sc) {
        sc = hk_calloc(1, sizeof *sc);
        sc->fd = s;
        sc->ev = event_new(sh->c->base, s, kind, on_socket_event, sh);
        curl_multi_assign(sh->multi, s, sc);
    } else {
        event_del(sc->ev);
        event_assign(sc->ev, sh->c->base, s, kind, on_socket_event, sh);
    }
    event_add(sc->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    shard *sh = userp;
    if (timeout_ms < 0) {
        evtimer_del(sh->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(sh->timer, &tv);
    return 0;
}

/* Sets sh's connection cache size: its transfers, plus the idle connections it may keep, which
 * is the idle room of HOOKD_MAX_IDLE_CONNECTIONS that the other shards' idle connections leave,
 * at least its even share. A finished transfer's connection is kept while that room lasts. */
static void shard_maxconnects(hk_httpc *c, shard *sh)
{
    long idle_all = HK_MAX(c->conns - c->inflight, 0);
    long idle_here = HK_MAX(sh->conns - sh->inflight, 0);
    long room = c->idle_max - HK_MAX(idle_all - idle_here, 0);
    curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS,
                      (long)sh->inflight + HK_MAX(room, c->idle_share));
}

/* The shard of url: a hash of its origin, the text between "://" and the next '/', '?' or '#'
 * (the scheme's length mixed in), so that every connection to one origin lives in one multi
 * handle and can be reused. */
static shard *shard_of(hk_httpc *c, const char *url)
{
    const char *p = strstr(url, "://");
    uint32_t h = 2166136261u; /* FNV-1a */
    if (p) {
        h = (h ^ (uint32_t)(p - url)) * 16777619u;
        for (p += 3; *p && *p != '/' && *p != '?' && *p != '#'; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
    }
    return &c->shards[h % HK_HTTPC_SHARDS];
}

/* ---- per-transfer callbacks ------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    hk_httpc_xfer *x = arg;
    size_t len = size * n;
    if (hk_capture_body(&x->cap, p, len) < len) return 0; /* stop at the cap: the status decides */
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    hk_httpc_xfer *x = arg;
    hk_capture_header(&x->cap, p, size * n); /* past the caps: dropped */
    return size * n;
}

/* Called by curl for every address it is about to connect to: the SSRF guard's check. */
static curl_socket_t on_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    hk_httpc_xfer *x = arg;
    if (purpose == CURLSOCKTYPE_IPCXN && x->c->guard &&
        hk_ssrf_check(x->c->guard, &addr->addr, addr->addrlen, x->refused_msg,
                      sizeof x->refused_msg)) {
        x->refused = 1;
        return CURL_SOCKET_BAD;
    }
    x->allowed = 1;
    curl_socket_t s = socket(addr->family, addr->socktype, addr->protocol);
    if (s != CURL_SOCKET_BAD) {
        x->sh->conns++;
        x->c->conns++;
        /* an endpoint that never reads holds its window plus 128 KiB of a body, not all of
         * it: the rest stays in the transfer's own buffer */
        hk_sock_bound_unsent(s);
    }
    return s;
}

/* Called by curl when it closes a socket on_opensocket made; arg is the shard of the transfer
 * that opened it (curl keeps it with the connection). */
static int on_closesocket(void *arg, curl_socket_t s)
{
    shard *sh = arg;
    sh->conns--;
    sh->c->conns--;
    return close(s);
}

static void xfer_unlink(hk_httpc *c, hk_httpc_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        c->all = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void xfer_free(hk_httpc *c, hk_httpc_xfer *x)
{
    curl_multi_remove_handle(x->sh->multi, x->easy);
    x->sh->inflight--;
    shard_maxconnects(c, x->sh);
    if (c->npool < c->poolcap) {
        /* kept as it is, not curl_easy_reset: its fixed options stay set (handle_setup) and
         * the next transfer sets the per-transfer ones again, before curl reads any of them */
        c->pool[c->npool++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    free(x->hdrs); /* header_list: one allocation */
    hk_capture_free(&x->cap);
    free(x);
}

static void finish(hk_httpc *c, hk_httpc_xfer *x, CURLcode code)
{
    hk_httpc_resp r;
    memset(&r, 0, sizeof r);
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    char msg[CURL_ERROR_SIZE + 96];
    hk_buf hj, ra, body;
    hk_buf_init(&hj, HK_BUF_UNLIMITED); /* bounded by the capture's caps */
    hk_buf_init(&ra, HK_BUF_UNLIMITED);
    hk_buf_init(&body, HK_BUF_UNLIMITED);
    r.duration_ms = (hk_mono_us() - x->start_us) / 1000;
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && x->cap.body_truncated && status > 0)) {
        r.status = (int)status;
    } else if (x->refused && !x->allowed) {
        /* every address was refused: a policy answer, final (an address that was let through
         * and then failed is an ordinary connection error, retried) */
        r.refused = 1;
        r.error = x->refused_msg;
    } else if (code == CURLE_UNSUPPORTED_PROTOCOL && c->cfg->https_only) {
        r.refused = 1;
        r.error = "the url is http and HOOKD_HTTPS_ONLY=1 allows only https; nothing was sent";
    } else {
        r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
        if (r.timed_out)
            snprintf(msg, sizeof msg, "timed out after %d ms (%s)", x->timeout_ms,
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
        else
            snprintf(msg, sizeof msg, "%s%s%s", curl_easy_strerror(code), x->errbuf[0] ? ": " : "",
                     x->errbuf);
        r.error = msg;
    }
    if (r.status) {
        /* names, values and body as valid UTF-8 without NUL, whatever the receiver sent */
        if (hk_capture_headers_json(&x->cap, &hj, &ra) == 0) r.headers_json = hk_buf_cstr(&hj);
        if (ra.len) r.retry_after = hk_buf_cstr(&ra);
        hk_capture_body_text(&x->cap, &body);
    }
    r.body = hk_buf_cstr(&body);
    r.body_len = body.len;
    c->inflight--;
    xfer_unlink(c, x);
    x->cb(x->arg, &r);
    hk_buf_free(&hj);
    hk_buf_free(&ra);
    hk_buf_free(&body);
    xfer_free(c, x);
}

static void check_done(shard *sh)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(sh->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        hk_httpc_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x) finish(sh->c, x, m->data.result);
    }
}

/* Sets the options that are the same for every transfer of c on a new easy handle; a pooled
 * handle keeps them (hk_httpc_post sets the per-transfer ones: url, body, headers, deadline,
 * and the pointers to its transfer). Returns e, or NULL if curl could not make one. */
static CURL *handle_setup(hk_httpc *c, CURL *e)
{
    if (!e) return NULL;
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (c->idle_max == 0) curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L); /* nothing kept */
    /* never a proxy from the environment (http_proxy, HTTPS_PROXY, ...): the SSRF guard checks
     * the address connected to, which would then be the proxy's, not the endpoint's */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->cfg->https_only ? "https" : "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->cfg->tls_insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->cfg->tls_insecure ? 0L : 2L);
    if (c->cfg->ca_file && c->cfg->ca_file[0]) {
        /* instead of the system's: no CA directory either, which also lets libcurl keep the
         * parsed file for later connections (it reloads it for each one when a CA path is set) */
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    } else if (c->system_ca) {
        /* the system's bundle without its directory, for the same reason (find_system_ca) */
        curl_easy_setopt(e, CURLOPT_CAINFO, c->system_ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (!c->cfg->tls_session_cache) curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    return e;
}

#define HDR_LINE_MAX 8192 /* a longer header line is left out */

/* The next line of headers at *p ("Name: value", without its "\n"): its length, and *p moved
 * past it. */
static size_t next_line(const char **p, const char **line)
{
    const char *nl = strchr(*p, '\n');
    size_t n = nl ? (size_t)(nl - *p) : strlen(*p);
    *line = *p;
    *p = nl ? nl + 1 : *p + n;
    return n;
}

/* The request's headers as a curl_slist made in one allocation (the nodes, then their strings;
 * freed with free()), instead of two allocations a line with curl_slist_append: each non-empty
 * line of headers ("Name: value\n"...) shorter than HDR_LINE_MAX, a line with a blank value as
 * "Name;" (curl drops "Name:" with nothing after it, and sends "Name;" as the header with an
 * empty value), then "Expect:" so curl never waits for a 100. */
static struct curl_slist *header_list(const char *headers)
{
    static const char expect[] = "Expect:";
    size_t n = 1, bytes = sizeof expect;
    const char *line;
    for (const char *p = headers; p && *p;) {
        size_t len = next_line(&p, &line);
        if (len && len < HDR_LINE_MAX) {
            n++;
            bytes += len + 1;
        }
    }
    struct curl_slist *nodes = hk_malloc(n * sizeof *nodes + bytes);
    char *str = (char *)(nodes + n);
    size_t i = 0;
    for (const char *p = headers; p && *p;) {
        size_t len = next_line(&p, &line);
        if (!len || len >= HDR_LINE_MAX) continue;
        memcpy(str, line, len);
        str[len] = '\0';
        char *colon = strchr(str, ':');
        if (colon && colon[1 + strspn(colon + 1, " \t")] == '\0') {
            colon[0] = ';';
            colon[1] = '\0';
        }
        nodes[i].data = str;
        nodes[i].next = &nodes[i + 1];
        i++;
        str += len + 1;
    }
    memcpy(str, expect, sizeof expect);
    nodes[i].data = str;
    nodes[i].next = NULL;
    return nodes;
}

/* ---- public -----------------------------------------------------------------------------------
 */

/* The system's CA bundle to trust when HOOKD_CA_FILE is not given, or NULL to leave libcurl's
 * defaults as they are. libcurl (Debian's 7.88) is built with a default CA file (the bundle,
 * /etc/ssl/certs/ca-certificates.crt) and a default CA directory (/etc/ssl/certs, the same
 * certificates by hash); a CA directory turns its CA cache off, so it read and parsed the whole
 * bundle for every new connection (~15-20 ms of CPU for 144 certificates). The bundle alone is
 * the system's trust (update-ca-certificates writes both from the same certificates) and stays
 * parsed. Only when libcurl has both and the bundle is readable; a copy, freed by the caller. */
static char *find_system_ca(const hk_config *cfg)
{
    if (cfg->tls_insecure || (cfg->ca_file && cfg->ca_file[0])) return NULL;
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    char *file = NULL, *dir = NULL, *out = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CAINFO, &file) == CURLE_OK &&
        curl_easy_getinfo(e, CURLINFO_CAPATH, &dir) == CURLE_OK && file && file[0] && dir &&
        dir[0] && access(file, R_OK) == 0)
        out = hk_strdup(file);
    curl_easy_cleanup(e);
    return out;
}

hk_httpc *hk_httpc_new(struct event_base *base, const hk_config *cfg, char *err, size_t errlen)
{
    static int global_init;
    if (!global_init) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
            snprintf(err, errlen, "curl_global_init failed");
            return NULL;
        }
        global_init = 1;
    }
    hk_httpc *c = hk_calloc(1, sizeof *c);
    c->base = base;
    c->cfg = cfg;
    c->poolcap = cfg->max_inflight;
    c->pool = hk_calloc((size_t)c->poolcap, sizeof(CURL *));
    c->guard = hk_ssrf_guard_new(cfg);
    c->system_ca = find_system_ca(cfg);
    c->idle_max = cfg->max_idle_connections;
    c->idle_share = (c->idle_max + HK_HTTPC_SHARDS - 1) / HK_HTTPC_SHARDS;
    for (int i = 0; i < HK_HTTPC_SHARDS; i++) {
        shard *sh = &c->shards[i];
        sh->c = c;
        sh->multi = curl_multi_init();
        sh->timer = evtimer_new(base, on_timer, sh);
        if (!sh->multi || !sh->timer) {
            snprintf(err, errlen, "curl_multi_init or evtimer_new failed");
            hk_httpc_free(c);
            return NULL;
        }
        curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
        curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
        shard_maxconnects(c, sh);
    }
    return c;
}

hk_httpc_xfer *hk_httpc_post(hk_httpc *c, const char *url, const char *body, size_t len,
                             const char *headers, int timeout_ms, hk_httpc_cb cb, void *arg)
{
    hk_httpc_xfer *x = hk_calloc(1, sizeof *x);
    x->c = c;
    x->timeout_ms = timeout_ms > 0 ? timeout_ms : c->cfg->http_timeout_ms;
    x->cb = cb;
    x->arg = arg;
    hk_capture_init(&x->cap, (size_t)c->cfg->response_body_max);
    x->easy = c->npool ? c->pool[--c->npool] : handle_setup(c, curl_easy_init());
    if (!x->easy) {
        free(x);
        return NULL;
    }
    x->hdrs = header_list(headers);
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)x->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    x->start_us = hk_mono_us();
    x->sh = shard_of(c, url);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, x->sh);
    x->sh->inflight++;
    shard_maxconnects(c, x->sh);
    if (curl_multi_add_handle(x->sh->multi, e) != CURLM_OK) {
        x->sh->inflight--;
        shard_maxconnects(c, x->sh);
        free(x->hdrs);
        curl_easy_cleanup(e);
        hk_capture_free(&x->cap);
        free(x);
        return NULL;
    }
    x->next = c->all;
    if (c->all) c->all->prev = x;
    c->all = x;
    c->inflight++;
    return x;
}

void hk_httpc_cancel(hk_httpc *c, hk_httpc_xfer *x)
{
    c->inflight--;
    xfer_unlink(c, x);
    xfer_free(c, x);
}

int hk_httpc_inflight(const hk_httpc *c)
{
    return c->inflight;
}

void hk_httpc_free(hk_httpc *c)
{
    if (!c) return;
    while (c->all) hk_httpc_cancel(c, c->all);
    for (int i = 0; i < c->npool; i++) curl_easy_cleanup(c->pool[i]);
    free(c->pool);
    for (int i = 0; i < HK_HTTPC_SHARDS; i++) {
        if (c->shards[i].multi) curl_multi_cleanup(c->shards[i].multi);
        if (c->shards[i].timer) event_free(c->shards[i].timer);
    }
    hk_ssrf_guard_free(c->guard);
    free(c->system_ca);
    free(c);
}
