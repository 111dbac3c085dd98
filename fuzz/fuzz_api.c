/*
 * fuzz_api.c: the whole HTTP API in process, the way a client on the network meets it: the
 * HTTP server, the router, authentication, every handler's validation (webhook bodies with
 * customHeaders, filteringOptions, events patterns, URLs, signature schemes; event ingest
 * single, batch and trigger; rotation, replay, recover, sign-test-event; paging and query
 * parameters) and the SQLite store behind them.
 *
 * Once per process it starts hookd's parts on one libevent loop (SQLite in a temp dir, the
 * dispatcher stopped at once so nothing is ever sent out) and creates one webhook, one event and
 * one delivery, so that routes with ids reach the store. Each input is one request:
 *   byte 0  the route (a method and path template from the table below, ids filled in)
 *   byte 1  how the rest becomes the body: as is; or spliced as the value of one field into an
 *           otherwise valid webhook or event body (so the fuzzer works on customHeaders or
 *           `data` without having to discover the JSON around them first)
 *   rest    the payload (also the query string for GET routes, after a '?').
 * Checks: an answer arrives, its status is 2xx/4xx (503 only for the draining or store-down
 * cases, which do not happen here; never 500), its body is JSON, and the server still answers
 * /health afterwards (checked every 256 inputs).
 */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/time.h"
#include "delivery/dispatcher.h"
#include "http/server.h"
#include "ingest/ingest.h"
#include "queue/queue.h"
#include "store/store.h"

#define KEY "fuzz_key_0123456789abcdef"

static struct {
    struct event_base *base;
    hk_config cfg;
    hk_store *store;
    hk_queue *queue;
    hk_metrics *metrics;
    hk_dispatch *dispatch;
    hk_ingest *ingest;
    hk_api api;
    hk_http_server *http;
    int port;
    int fd; /* keep-alive client connection, -1 if closed */
    char wh[64], ev[64], dl[64];
    unsigned long n;
} S = {.fd = -1};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_api: %s\n", what);
    abort();
}

static void on_dispatch_stopped(void *arg)
{
    (void)arg;
}

/* Opens a connection to the in-process server (non-blocking). */
static void client_connect(void)
{
    S.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (S.fd < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(S.fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS) die("connect");
}

/* Parses a complete response in b: returns its total length and sets *status, or 0 if more
 * bytes are needed. */
static size_t response_complete(const hk_buf *b, int *status, size_t *body_off, size_t *body_len)
{
    const char *p = b->data;
    const char *end = b->len ? memmem(p, b->len, "\r\n\r\n", 4) : NULL;
    if (!end) return 0;
    if (b->len < 12 || memcmp(p, "HTTP/1.1 ", 9)) die("bad status line");
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *cl = memmem(p, (size_t)(end - p), "Content-Length: ", 16);
    if (!cl) die("response without Content-Length");
    size_t len = strtoul(cl + 16, NULL, 10);
    size_t head = (size_t)(end - p) + 4;
    if (b->len < head + len) return 0;
    *body_off = head;
    *body_len = len;
    return head + len;
}

/* Sends one request and pumps the loop until its response is read. Returns the status; the
 * body is left in out (NUL-terminated). */
static int roundtrip(const char *req, size_t len, hk_buf *out)
{
    if (S.fd < 0) client_connect();
    size_t sent = 0;
    hk_buf in;
    hk_buf_init(&in, HK_BUF_UNLIMITED);
    int status = 0;
    size_t off = 0, blen = 0, total = 0;
    /* a deadline in time, not in loop turns: the store answers from its own threads, which a
     * loaded machine (or a nice'd fuzzer) may not schedule for a while */
    int64_t deadline = hk_mono_ms() + 30000;
    while (hk_mono_ms() < deadline) {
        if (sent < len) {
            ssize_t w = send(S.fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN)
                break;
        }
        event_base_loop(S.base, EVLOOP_NONBLOCK);
        char tmp[65536];
        ssize_t r = recv(S.fd, tmp, sizeof tmp, 0);
        if (r > 0) {
            hk_buf_append(&in, tmp, (size_t)r);
            if ((total = response_complete(&in, &status, &off, &blen))) break;
        } else if (r == 0) {
            break; /* closed: the response must already be complete */
        } else if (errno != EAGAIN) {
            break;
        } else {
            event_base_loop(S.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        }
    }
    if (!total && !(total = response_complete(&in, &status, &off, &blen))) die("no response");
    hk_buf_reset(out);
    hk_buf_append(out, in.data + off, blen);
    hk_buf_cstr(out);
    /* a response that says it closes (or any error the server closes after) ends the conn */
    if (memmem(in.data, off, "Connection: close", 17)) {
        close(S.fd);
        S.fd = -1;
    }
    hk_buf_free(&in);
    return status;
}

/* Builds and sends method path with an API key and body; returns the status, body in out. */
static int call(const char *method, const char *path, const char *body, size_t blen, hk_buf *out)
{
    hk_buf r;
    hk_buf_init(&r, HK_BUF_UNLIMITED);
    hk_buf_printf(&r, "%s %s HTTP/1.1\r\nHost: fuzz\r\nx-api-key: " KEY "\r\n", method, path);
    if (body) {
        hk_buf_printf(&r, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
        hk_buf_append(&r, body, blen);
    } else {
        hk_buf_puts(&r, "\r\n");
    }
    int st = roundtrip(r.data, r.len, out);
    hk_buf_free(&r);
    return st;
}

/* Copies the value of "id":"..." from a JSON body into out. */
static void grab_id(const hk_buf *b, const char *key, char *out, size_t outlen)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = b->data ? strstr(b->data, pat) : NULL;
    if (!p) die("no id in setup response");
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= outlen) die("id too long");
    memcpy(out, p, n);
    out[n] = '\0';
}

static void setup(void)
{
    char dir[] = "/tmp/hookd-fuzz-api-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp");
    char db[128];
    snprintf(db, sizeof db, "%s/hookd.db", dir);
    setenv("HOOKD_DB", db, 1);
    setenv("HOOKD_SQLITE_SYNC", "normal", 1);
    setenv("HOOKD_LOG_LEVEL", "error", 1);
    setenv("HOOKD_NODE_ID", "fuzz", 1);
    char *argv[] = {"fuzz_api", NULL};
    int rest[1], nrest = 0, help = 0;
    char err[512];
    if (hk_config_load(&S.cfg, 1, argv, "/nonexistent/.env", rest, &nrest, &help, err, sizeof err))
        die(err);
    hk_log_setup("text", "error");

    /* the API key, written synchronously before the loop's store opens */
    hk_store *sync;
    if (hk_store_open(&sync, NULL, &S.cfg, err, sizeof err)) die(err);
    char hash[65];
    hk_sha256_hex(KEY, strlen(KEY), hash);
    hk_req k = {0};
    k.kind = HK_REQ_APIKEY_ENSURE;
    k.org_id = "org_fuzz";
    k.u.key_create.name = "fuzz";
    k.u.key_create.key_hash = hash;
    k.u.key_create.prefix = "fuzz_k";
    if (hk_store_exec(sync, &k)) die("apikey");
    hk_req_clear(&k);
    hk_store_close(sync);

    S.base = event_base_new();
    if (hk_store_open(&S.store, S.base, &S.cfg, err, sizeof err)) die(err);
    S.metrics = hk_metrics_new();
    S.queue = hk_queue_local_new(S.store, S.cfg.node_id);
    S.dispatch = hk_dispatch_new(S.base, &S.cfg, S.store, S.queue, S.metrics, err, sizeof err);
    if (!S.dispatch) die(err);
    hk_dispatch_shutdown(S.dispatch, 0, on_dispatch_stopped, NULL); /* never send anything */
    S.ingest = hk_ingest_new(&S.cfg, S.store, S.dispatch, S.metrics);
    hk_api_init(&S.api, &S.cfg, S.store, S.dispatch, S.queue, S.metrics);
    S.api.ingest = S.ingest;
    hk_http_limits lim;
    hk_http_limits_default(&lim);
    lim.max_body_bytes = (size_t)S.cfg.max_body_bytes;
    lim.error_body = hk_api_error_body;
    lim.on_head = hk_api_head; /* as in main.c */
    S.http = hk_http_server_new(S.base, &lim, hk_api_handle, &S.api);
    if (hk_http_server_listen(S.http, "127.0.0.1", 0, err, sizeof err)) die(err);
    S.port = hk_http_server_port(S.http);

    hk_buf out;
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    const char *wh = "{\"name\":\"f\",\"url\":\"https://example.com/h\",\"events\":[\"a.*\"]}";
    if (call("POST", "/api/webhook/v1", wh, strlen(wh), &out) != 201) die(hk_buf_cstr(&out));
    grab_id(&out, "id", S.wh, sizeof S.wh);
    const char *ev = "{\"type\":\"a.b\",\"data\":{\"x\":1}}";
    if (call("POST", "/api/webhook/v1/events", ev, strlen(ev), &out) != 202) die(hk_buf_cstr(&out));
    grab_id(&out, "id", S.ev, sizeof S.ev);
    char path[160];
    snprintf(path, sizeof path, "/api/webhook/v1/%s/deliveries", S.wh);
    if (call("GET", path, NULL, 0, &out) != 200) die(hk_buf_cstr(&out));
    grab_id(&out, "id", S.dl, sizeof S.dl);
    hk_buf_free(&out);
}

typedef struct route {
    const char *method;
    const char *path; /* %W webhook id, %E event id, %D delivery id, %X the payload's first line */
} route;

static const route routes[] = {
    {"POST", "/api/webhook/v1"},
    {"PATCH", "/api/webhook/v1/%W"},
    {"POST", "/api/webhook/v1/events"},
    {"POST", "/api/webhook/v1/events/batch"},
    {"POST", "/api/webhook/v1/trigger"},
    {"POST", "/api/webhook/v1/sign-test-event"},
    {"POST", "/api/webhook/v1/%W/rotate-secret"},
    {"POST", "/api/webhook/v1/%W/recover"},
    {"POST", "/api/webhook/deliveries/%D/retry"},
    {"GET", "/api/webhook/v1?%X"},
    {"GET", "/api/webhook/v1/events?%X"},
    {"GET", "/api/webhook/v1/%W/deliveries?%X"},
    {"GET", "/api/webhook/v1/%X"},
    {"GET", "/api/webhook/v1/events/%X"},
    {"GET", "/api/webhook/v1/deliveries/%X"},
    {"DELETE", "/api/webhook/v1/%X"},
    {"GET", "/api/webhook/v1/%E"},
    {"GET", "/api/webhook/v1/events/%E"},
    {"GET", "/api/webhook/v1/deliveries/%D"},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* Body templates: the payload is spliced where @ stands. */
static const char *const templates[] = {
    NULL, /* the payload is the body */
    "{\"name\":\"f\",\"url\":\"https://example.com/h\",\"events\":[\"a.*\"],\"customHeaders\":@}",
    "{\"name\":\"f\",\"url\":\"https://example.com/"
    "h\",\"events\":[\"a.*\"],\"filteringOptions\":@}",
    "{\"name\":\"f\",\"url\":\"https://example.com/h\",\"events\":@}",
    "{\"name\":\"f\",\"url\":@,\"events\":[\"*\"]}",
    "{\"name\":\"f\",\"url\":\"https://example.com/h\",\"events\":[\"*\"],\"signatureSchemes\":@}",
    "{\"type\":\"a.b\",\"data\":@}",
    "{\"type\":@,\"data\":{}}",
    "{\"events\":[{\"type\":\"a.b\",\"data\":@},{\"type\":\"a.c\",\"data\":{}}]}",
};
#define NTEMPLATES (sizeof templates / sizeof templates[0])

/* The payload's first line with anything that would break the request line replaced. */
static void path_safe(const uint8_t *p, size_t n, hk_buf *out)
{
    for (size_t i = 0; i < n && i < 512 && p[i] != '\n'; i++)
        hk_buf_append(out, (p[i] <= ' ' || p[i] >= 0x7f) ? "%20" : (const char *)&p[i],
                      (p[i] <= ' ' || p[i] >= 0x7f) ? 3 : 1);
}

static void check_health(void)
{
    hk_buf out;
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    if (call("GET", "/api/webhook/health", NULL, 0, &out) != 200) die("health after input");
    hk_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!S.base) setup();
    if (size < 2) return 0;
    const route *rt = &routes[data[0] % NROUTES];
    const char *tpl = templates[data[1] % NTEMPLATES];
    data += 2;
    size -= 2;

    hk_buf path, body, out;
    hk_buf_init(&path, HK_BUF_UNLIMITED);
    hk_buf_init(&body, HK_BUF_UNLIMITED);
    hk_buf_init(&out, HK_BUF_UNLIMITED);
    for (const char *p = rt->path; *p; p++) {
        if (*p != '%') {
            hk_buf_append(&path, p, 1);
            continue;
        }
        switch (*++p) {
        case 'W':
            hk_buf_puts(&path, S.wh);
            break;
        case 'E':
            hk_buf_puts(&path, S.ev);
            break;
        case 'D':
            hk_buf_puts(&path, S.dl);
            break;
        default:
            path_safe(data, size, &path);
            break;
        }
    }
    int has_body = strcmp(rt->method, "GET") != 0 && strcmp(rt->method, "DELETE") != 0;
    if (tpl) {
        const char *at = strchr(tpl, '@');
        hk_buf_append(&body, tpl, (size_t)(at - tpl));
        hk_buf_append(&body, data, size);
        hk_buf_puts(&body, at + 1);
    } else {
        hk_buf_append(&body, data, size);
    }
    int st = call(rt->method, hk_buf_cstr(&path), has_body ? hk_buf_cstr(&body) : NULL,
                  has_body ? body.len : 0, &out);
    if (st >= 500 || st < 200 || (st >= 300 && st < 400)) {
        fprintf(stderr, "fuzz_api: %s %s -> %d %s\n", rt->method, hk_buf_cstr(&path), st,
                hk_buf_cstr(&out));
        abort();
    }
    if (out.len && out.data[0] != '{') die("response body is not a JSON object");
    hk_buf_free(&path);
    hk_buf_free(&body);
    hk_buf_free(&out);
    if ((++S.n & 255) == 0) check_health();
    return 0;
}
