/*
 * receiver.c: the benchmark's webhook endpoint, and the target of the wrk ceiling run.
 *
 * One thread, one epoll loop, HTTP/1.1 keep-alive with pipelining (every complete request in
 * the input is answered, in order, with one write). Every POST (any path but the control
 * paths below) is a delivery: it is answered 200 "ok" (or the failure status while a failure
 * window is open), and, when answered 2xx, its X-Delivery-Id is looked up in a set of 64-bit
 * hashes, so the receiver counts distinct deliveries and duplicates. For the first arrival of
 * a delivery, the end-to-end latency is now - t_us, where t_us is the number after the first
 * `"t_us":` in the body: the CLOCK_MONOTONIC microseconds at which the load generator meant to
 * send the event (CLOCK_MONOTONIC is one clock for every process of the machine).
 *
 * Slow, hanging and closing endpoints (issue 21), chosen by the delivery's path: a path holding
 * "/slow/N" is answered N ms after it arrived (a timer of the event loop: no thread, the
 * connection reads nothing more until then), one holding "/hang" is never answered (the
 * connection stays open until the client gives up), one holding "/close" is answered with
 * "Connection: close" and the connection closed (every delivery a new connection). A delayed
 * delivery is counted when it is answered; /stats says how many are held now and at most.
 *
 * TLS (--tls-cert FILE --tls-key FILE, PEM; OpenSSL, non-blocking on the same loop): every
 * connection is https; /stats counts the connections that carried a delivery (conns_used: control
 * requests are left out) and, of those, the full and the resumed handshakes (SSL_session_reused),
 * and the failed handshakes. --any-loopback listens on 0.0.0.0 and closes at once every connection
 * whose local address is not in 127.0.0.0/8, so one receiver answers all 16 million loopback
 * addresses (Linux routes 127/8 to lo) and nothing else.
 *
 * Control paths (any method, same port):
 *   GET /stats            every figure as one JSON object, with latency percentiles
 *   GET /count            the same without the percentiles (cheap: for polling)
 *   GET /reset            forget everything counted so far (after the ceiling run)
 *   GET /fail?ms=N&status=S   answer S (default 500) to deliveries for the next N ms
 *
 *   receiver [--host 127.0.0.1] [--port 0] [--fail-ms N] [--fail-status 500]
 *            [--start-after-ms N] [--tls-cert PEM --tls-key PEM] [--any-loopback 1]
 * Prints {"port":P} on stdout once listening, and the final /stats object on SIGTERM/SIGINT.
 * Caps: request head 64 KiB (431), body 16 MiB (413), pending output 4 MiB per connection
 * (input is not read while it is over 256 KiB), 16M latency samples (then only counted).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX    (64 * 1024)
#define BODY_MAX    (16 * 1024 * 1024)
#define OUT_HIGH    (256 * 1024)
#define READ_CHUNK  (64 * 1024)
#define SAMPLES_MAX (16u * 1024 * 1024)
#define EVENTS_MAX  256

typedef struct conn {
    int fd;
    char *in; /* bytes read and not yet consumed */
    size_t in_len, in_cap;
    char *out; /* response bytes not yet written */
    size_t out_off, out_len, out_cap;
    uint32_t mask;       /* epoll events registered */
    bool closing;        /* close once out is drained */
    bool sent_continue;  /* 100 Continue already sent for the request being read */
    SSL *ssl;            /* NULL: plain TCP */
    bool hs_done;        /* TLS handshake finished */
    bool used;           /* has carried a delivery (control requests do not count) */
    bool ssl_want_write; /* the last TLS call needs the socket writable */
    /* a delivery held for a delayed answer (or forever: hang) */
    bool held, held_hang, held_close, held_has_id;
    uint64_t held_id;
    int64_t held_t0;
    int64_t due_us; /* when the held answer is due (in the timer heap) */
    long heap_i;    /* index in the timer heap, -1 = not there */
} conn;

/* Everything counted since start or the last /reset. */
typedef struct stats {
    uint64_t requests;       /* delivery requests (not control requests) */
    uint64_t ok;             /* answered 2xx */
    uint64_t failed;         /* answered the failure status */
    uint64_t distinct;       /* 2xx with an X-Delivery-Id not seen before */
    uint64_t duplicates;     /* 2xx with an X-Delivery-Id already seen */
    uint64_t no_id;          /* 2xx without X-Delivery-Id (e.g. wrk) */
    uint64_t no_t_us;        /* distinct deliveries without a usable t_us */
    uint64_t bad;            /* malformed requests (answered 4xx/5xx and closed) */
    uint64_t accepted;       /* connections accepted */
    uint64_t delayed;        /* deliveries answered after a /slow/N delay */
    uint64_t hung;           /* deliveries to /hang (never answered) */
    uint64_t closed;         /* deliveries answered with Connection: close by /close */
    uint64_t held_max;       /* most deliveries held (delayed or hung) at once */
    uint64_t conns_used;     /* connections that carried at least one delivery */
    uint64_t tls_full;       /* ... of which TLS, with a full handshake */
    uint64_t tls_resumed;    /* ... resuming a session */
    uint64_t tls_failed;     /* ... that failed */
    uint64_t tls13;          /* handshakes counted in tls_full/tls_resumed that were TLS 1.3 */
    uint64_t tls_x25519;     /* ... whose key exchange used X25519 */
    uint64_t tls_hellos;     /* ClientHellos seen (a HelloRetryRequest makes a second one) */
    uint64_t tls_key_shares; /* key shares the ClientHellos offered, in all */
    uint64_t rejected;       /* --any-loopback: connections to a non-loopback address closed */
    int64_t first_us;        /* monotonic µs of the first distinct delivery, 0 = none */
    int64_t last_us;         /* ... and of the last */
    int64_t first_fail_us, last_fail_us; /* same for requests answered the failure status */
    uint32_t *lat;                       /* latency samples (µs) of distinct deliveries */
    size_t nlat, lat_cap;
    uint64_t *set; /* open-addressing set of delivery-id hashes; 0 = empty slot */
    size_t set_cap, set_len;
} stats;

static stats S;
static int64_t fail_until_us; /* deliveries get fail_status until then */
static int fail_status = 500;
static int open_conns;
static uint64_t held_now; /* deliveries held for a delayed answer or hanging now */
static SSL_CTX *tls_ctx;  /* --tls-cert: every connection is TLS */
static conn **heap;       /* min-heap of held connections by due_us */
static size_t heap_len, heap_cap;
static volatile sig_atomic_t stop_flag;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* malloc/realloc that exit on failure: the receiver has nothing useful to do without memory. */
static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "receiver: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

/* 64-bit FNV-1a with a splitmix finaliser; never 0 (0 marks an empty slot). */
static uint64_t hash_id(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

/* Inserts h into the set; returns true if it was not there. Keeps the load under 1/2. */
static bool set_insert(uint64_t h)
{
    if ((S.set_len + 1) * 2 > S.set_cap) {
        size_t ncap = S.set_cap ? S.set_cap * 2 : 1024;
        uint64_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) {
            fprintf(stderr, "receiver: out of memory (id set)\n");
            exit(1);
        }
        for (size_t i = 0; i < S.set_cap; i++) {
            if (!S.set[i]) continue;
            size_t j = S.set[i] & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = S.set[i];
        }
        free(S.set);
        S.set = ns;
        S.set_cap = ncap;
    }
    size_t j = h & (S.set_cap - 1);
    while (S.set[j]) {
        if (S.set[j] == h) return false;
        j = (j + 1) & (S.set_cap - 1);
    }
    S.set[j] = h;
    S.set_len++;
    return true;
}

static void stats_reset(void)
{
    free(S.lat);
    free(S.set);
    memset(&S, 0, sizeof S);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted array v[0..n). */
static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    if (!n) return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

/* Writes the stats JSON object (with percentiles if with_lat) into buf; returns its length
 * (at most cap - 1; the object is small, so truncation does not happen in practice). */
static size_t stats_json(char *buf, size_t cap, bool with_lat)
{
    uint32_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, mx = 0;
    double mean = 0;
    if (with_lat && S.nlat) {
        uint32_t *v = xrealloc(NULL, S.nlat * sizeof *v);
        memcpy(v, S.lat, S.nlat * sizeof *v);
        qsort(v, S.nlat, sizeof *v, cmp_u32);
        p50 = pct(v, S.nlat, 50);
        p90 = pct(v, S.nlat, 90);
        p99 = pct(v, S.nlat, 99);
        p999 = pct(v, S.nlat, 99.9);
        mx = v[S.nlat - 1];
        double sum = 0;
        for (size_t i = 0; i < S.nlat; i++) sum += v[i];
        mean = sum / (double)S.nlat;
        free(v);
    }
    int n = snprintf(buf, cap,
                     "{\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
                     ",\"distinct\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"no_id\":%" PRIu64
                     ",\"no_t_us\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"accepted\":%" PRIu64
                     ",\"open_conns\":%d,\"first_us\":%" PRId64 ",\"last_us\":%" PRId64
                     ",\"first_fail_us\":%" PRId64 ",\"last_fail_us\":%" PRId64
                     ",\"now_us\":%" PRId64 ",\"fail_until_us\":%" PRId64 ",\"lat_samples\":%zu",
                     S.requests, S.ok, S.failed, S.distinct, S.duplicates, S.no_id, S.no_t_us,
                     S.bad, S.accepted, open_conns, S.first_us, S.last_us, S.first_fail_us,
                     S.last_fail_us, now_us(), fail_until_us, S.nlat);
    if (n < 0 || (size_t)n >= cap) return 0;
    size_t len = (size_t)n;
    n = snprintf(buf + len, cap - len,
                 ",\"delayed\":%" PRIu64 ",\"hung\":%" PRIu64 ",\"closed\":%" PRIu64
                 ",\"held_now\":%" PRIu64 ",\"held_max\":%" PRIu64 ",\"tls_full\":%" PRIu64
                 ",\"tls_resumed\":%" PRIu64 ",\"tls_failed\":%" PRIu64 ",\"rejected\":%" PRIu64
                 ",\"conns_used\":%" PRIu64 ",\"tls13\":%" PRIu64 ",\"tls_x25519\":%" PRIu64
                 ",\"tls_hellos\":%" PRIu64 ",\"tls_key_shares\":%" PRIu64,
                 S.delayed, S.hung, S.closed, held_now, S.held_max, S.tls_full, S.tls_resumed,
                 S.tls_failed, S.rejected, S.conns_used, S.tls13, S.tls_x25519, S.tls_hellos,
                 S.tls_key_shares);
    if (n < 0 || (size_t)n >= cap - len) return 0;
    len += (size_t)n;
    if (with_lat) {
        n = snprintf(buf + len, cap - len,
                     ",\"lat_p50_us\":%u,\"lat_p90_us\":%u,\"lat_p99_us\":%u,"
                     "\"lat_p999_us\":%u,\"lat_max_us\":%u,\"lat_mean_us\":%.1f",
                     p50, p90, p99, p999, mx, mean);
        if (n < 0 || (size_t)n >= cap - len) return 0;
        len += (size_t)n;
    }
    if (len + 2 > cap) return 0;
    buf[len++] = '}';
    buf[len] = '\0';
    return len;
}

/* Appends n bytes to c's output; returns false (and marks c closing) over the 4 MiB cap. */
static bool out_add(conn *c, const char *p, size_t n)
{
    if (c->out_len + n > 4 * 1024 * 1024) {
        c->closing = true;
        return false;
    }
    if (c->out_len + n > c->out_cap) {
        size_t ncap = c->out_cap ? c->out_cap : 4096;
        while (ncap < c->out_len + n) ncap *= 2;
        c->out = xrealloc(c->out, ncap);
        c->out_cap = ncap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Queues one response; body may be NULL for none. */
static void respond(conn *c, int status, const char *ctype, const char *body, size_t blen,
                    bool close_after)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     reason(status), ctype, blen, close_after ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) return;
    out_add(c, head, (size_t)n);
    if (blen) out_add(c, body, blen);
    if (close_after) c->closing = true;
}

/* Value of query parameter key in q[0..qn) as a non-negative integer, or dflt. */
static long long query_int(const char *q, size_t qn, const char *key, long long dflt)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl < qn; i++) {
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, key, kl) == 0 && q[i + kl] == '=') {
            long long v = 0;
            size_t j = i + kl + 1;
            if (j >= qn || q[j] < '0' || q[j] > '9') return dflt;
            for (; j < qn && q[j] >= '0' && q[j] <= '9'; j++) {
                if (v > 100000000000000LL) return dflt;
                v = v * 10 + (q[j] - '0');
            }
            return v;
        }
    }
    return dflt;
}

/* The number after the first "t_us": in the body, or -1. */
static int64_t find_t_us(const char *body, size_t n)
{
    static const char key[] = "\"t_us\":";
    const char *p = memmem(body, n, key, sizeof key - 1);
    if (!p) return -1;
    p += sizeof key - 1;
    const char *end = body + n;
    while (p < end && *p == ' ') p++;
    if (p >= end || *p < '0' || *p > '9') return -1;
    int64_t v = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > INT64_MAX / 10 - 10) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* Counts one delivery answered 2xx, now: distinct or duplicate by its id hash h (has_id false:
 * it had none), and its end-to-end latency from t0 (the body's t_us, -1 = none). */
static void count_ok(bool has_id, uint64_t h, int64_t t0)
{
    int64_t t = now_us();
    S.ok++;
    if (!has_id) {
        S.no_id++;
    } else if (set_insert(h)) {
        S.distinct++;
        if (!S.first_us) S.first_us = t;
        S.last_us = t;
        if (t0 < 0 || t0 > t) {
            S.no_t_us++;
        } else if (S.nlat < SAMPLES_MAX) {
            if (S.nlat == S.lat_cap) {
                S.lat_cap = S.lat_cap ? S.lat_cap * 2 : 65536;
                S.lat = xrealloc(S.lat, S.lat_cap * sizeof *S.lat);
            }
            int64_t d = t - t0;
            S.lat[S.nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        }
    } else {
        S.duplicates++;
    }
}

/* ---- the timer heap of held deliveries (min-heap on due_us; conn.heap_i is the index) ---- */

static void heap_set(size_t i, conn *c)
{
    heap[i] = c;
    c->heap_i = (long)i;
}

static void heap_sift(size_t i)
{
    while (i > 0 && heap[(i - 1) / 2]->due_us > heap[i]->due_us) {
        conn *p = heap[(i - 1) / 2];
        heap_set((i - 1) / 2, heap[i]);
        heap_set(i, p);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->due_us < heap[m]->due_us) m = l;
        if (r < heap_len && heap[r]->due_us < heap[m]->due_us) m = r;
        if (m == i) return;
        conn *x = heap[m];
        heap_set(m, heap[i]);
        heap_set(i, x);
        i = m;
    }
}

static void heap_push(conn *c)
{
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = xrealloc(heap, heap_cap * sizeof *heap);
    }
    heap_set(heap_len++, c);
    heap_sift(heap_len - 1);
}

static void heap_remove(conn *c)
{
    size_t i = (size_t)c->heap_i;
    c->heap_i = -1;
    if (i != --heap_len) {
        heap_set(i, heap[heap_len]);
        heap_sift(i);
    }
}

/* The number after "/slow/" in the path, or -1. */
static long long slow_ms(const char *path, size_t plen)
{
    const char *p = memmem(path, plen, "/slow/", 6);
    if (!p) return -1;
    long long v = 0;
    for (p += 6; p < path + plen && *p >= '0' && *p <= '9' && v < 100000000; p++)
        v = v * 10 + (*p - '0');
    return v;
}

/* ClientHello callback: counts the hello and the key shares it offers (the key_share
 * extension: a 2-byte length, then entries of group (2), key length (2), key). Never refuses. */
static int on_client_hello(SSL *s, int *al, void *arg)
{
    (void)al, (void)arg;
    const unsigned char *p;
    size_t len;
    S.tls_hellos++;
    if (SSL_client_hello_get0_ext(s, 51 /* key_share */, &p, &len) == 1 && len >= 2) {
        size_t end = 2 + ((size_t)p[0] << 8 | p[1]), i = 2;
        if (end > len) end = len;
        while (i + 4 <= end) {
            S.tls_key_shares++;
            i += 4 + ((size_t)p[i + 2] << 8 | p[i + 3]);
        }
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Handles one delivery: counts it and queues its answer, or holds it (/slow/N, /hang). */
static void on_delivery(conn *c, const char *path, size_t plen, const char *id, size_t idlen,
                        const char *body, size_t blen, bool close_after)
{
    int64_t t = now_us();
    S.requests++;
    if (!c->used) { /* the connection's first delivery: count it and its handshake */
        c->used = true;
        S.conns_used++;
        if (c->ssl && SSL_session_reused(c->ssl))
            S.tls_resumed++;
        else if (c->ssl)
            S.tls_full++;
        if (c->ssl && SSL_version(c->ssl) == TLS1_3_VERSION) S.tls13++;
        if (c->ssl && SSL_get_negotiated_group(c->ssl) == NID_X25519) S.tls_x25519++;
    }
    if (fail_until_us && t < fail_until_us) {
        S.failed++;
        if (!S.first_fail_us) S.first_fail_us = t;
        S.last_fail_us = t;
        respond(c, fail_status, "text/plain", "fail", 4, close_after);
        return;
    }
    if (memmem(path, plen, "/close", 6)) {
        close_after = true;
        S.closed++;
    }
    bool hang = memmem(path, plen, "/hang", 5) != NULL;
    long long delay = slow_ms(path, plen);
    if (hang || delay > 0) {
        c->held = true;
        c->held_hang = hang;
        c->held_close = close_after;
        c->held_has_id = id != NULL;
        c->held_id = id ? hash_id(id, idlen) : 0;
        c->held_t0 = find_t_us(body, blen);
        if (++held_now > S.held_max) S.held_max = held_now;
        if (hang) {
            S.hung++;
        } else {
            c->due_us = t + delay * 1000;
            heap_push(c);
        }
        return;
    }
    count_ok(id != NULL, id ? hash_id(id, idlen) : 0, find_t_us(body, blen));
    respond(c, 200, "text/plain", "ok", 2, close_after);
}

/* Handles a control request (path starts with /stats, /count, /reset or /fail). */
static void on_control(conn *c, const char *path, size_t plen, bool close_after)
{
    const char *q = memchr(path, '?', plen);
    size_t base = q ? (size_t)(q - path) : plen;
    size_t qn = q ? plen - base - 1 : 0;
    char buf[2048];
    size_t n;
    if (base == 6 && memcmp(path, "/stats", 6) == 0) {
        n = stats_json(buf, sizeof buf, true);
    } else if (base == 6 && memcmp(path, "/count", 6) == 0) {
        n = stats_json(buf, sizeof buf, false);
    } else if (base == 6 && memcmp(path, "/reset", 6) == 0) {
        stats_reset();
        fail_until_us = 0;
        n = (size_t)snprintf(buf, sizeof buf, "{\"reset\":true}");
    } else {
        long long ms = query_int(q ? q + 1 : "", qn, "ms", 0);
        long long st = query_int(q ? q + 1 : "", qn, "status", 500);
        if (st < 100 || st > 599) st = 500;
        fail_status = (int)st;
        fail_until_us = ms > 0 ? now_us() + ms * 1000 : 0;
        n = (size_t)snprintf(buf, sizeof buf, "{\"fail_until_us\":%" PRId64 ",\"status\":%d}",
                             fail_until_us, fail_status);
    }
    respond(c, 200, "application/json", buf, n, close_after);
}

static bool is_control(const char *path, size_t plen)
{
    return (plen >= 6 && (memcmp(path, "/stats", 6) == 0 || memcmp(path, "/count", 6) == 0 ||
                          memcmp(path, "/reset", 6) == 0)) ||
           (plen >= 5 && memcmp(path, "/fail", 5) == 0);
}

/* Trimmed value of a header line "name: value" if its name is lname (case-insensitive). */
static bool header_is(const char *line, size_t n, const char *lname, const char **v, size_t *vn)
{
    size_t ln = strlen(lname);
    if (n <= ln || line[ln] != ':' || strncasecmp(line, lname, ln) != 0) return false;
    const char *p = line + ln + 1, *e = line + n;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *v = p;
    *vn = (size_t)(e - p);
    return true;
}

/* The first "\r\n\r\n" in p[0..n), or NULL. (A loop rather than memmem, whose nonnull
 * attribute gives a false -Wnonnull under gcc's UBSan instrumentation.) */
static const char *find_head_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (p[i + 3] != '\n') {
            if (p[i + 3] != '\r') i += 3; /* no end can start at i+1..i+3 */
            continue;
        }
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r') return p + i;
    }
    return NULL;
}

/* The first "\r\n" in p[0..n), or NULL. */
static const char *find_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n') return p + i;
    return NULL;
}

/* Parses and answers every complete request at the start of c->in; consumes them. Stops when
 * a request is incomplete, the connection must close, or too much output is pending. */
static void process(conn *c)
{
    size_t pos = 0;
    const char *in = c->in;
    if (!in) return; /* nothing read yet */
    while (!c->closing && !c->held && c->out_len - c->out_off < OUT_HIGH) {
        const char *b = in + pos;
        size_t avail = c->in_len - pos;
        if (!avail) break;
        const char *he = find_head_end(b, avail);
        if (!he) {
            if (avail > HEAD_MAX) {
                S.bad++;
                respond(c, 431, "text/plain", "", 0, true);
            }
            break;
        }
        size_t hlen = (size_t)(he - b) + 4;
        /* request line */
        const char *le = find_crlf(b, hlen);
        const char *sp1 = memchr(b, ' ', (size_t)(le - b));
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(le - sp1 - 1)) : NULL;
        if (!sp1 || !sp2) {
            S.bad++;
            respond(c, 400, "text/plain", "", 0, true);
            break;
        }
        const char *path = sp1 + 1;
        size_t plen = (size_t)(sp2 - path);
        bool http10 = (size_t)(le - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
        bool close_after = http10, chunked = false, expect100 = false, bad_len = false;
        long long clen = 0;
        const char *id = NULL;
        size_t idlen = 0;
        for (const char *l = le + 2; l < he;) {
            const char *e = find_crlf(l, (size_t)(he + 2 - l));
            size_t n = (size_t)(e - l);
            const char *v;
            size_t vn;
            if (header_is(l, n, "content-length", &v, &vn)) {
                clen = 0;
                if (!vn || vn > 12) bad_len = true;
                for (size_t i = 0; i < vn; i++) {
                    if (v[i] < '0' || v[i] > '9')
                        bad_len = true;
                    else
                        clen = clen * 10 + (v[i] - '0');
                }
            } else if (header_is(l, n, "x-delivery-id", &v, &vn)) {
                id = v;
                idlen = vn;
            } else if (header_is(l, n, "transfer-encoding", &v, &vn)) {
                chunked = true;
            } else if (header_is(l, n, "connection", &v, &vn)) {
                if (vn == 5 && strncasecmp(v, "close", 5) == 0) close_after = true;
                if (vn == 10 && strncasecmp(v, "keep-alive", 10) == 0) close_after = false;
            } else if (header_is(l, n, "expect", &v, &vn)) {
                expect100 = vn == 12 && strncasecmp(v, "100-continue", 12) == 0;
            }
            l = e + 2;
        }
        if (bad_len || chunked || clen > BODY_MAX) {
            S.bad++;
            respond(c, chunked ? 501 : bad_len ? 400 : 413, "text/plain", "", 0, true);
            break;
        }
        if (avail < hlen + (size_t)clen) {
            if (expect100 && !c->sent_continue) {
                out_add(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->sent_continue = true;
            }
            break;
        }
        c->sent_continue = false;
        const char *body = b + hlen;
        if (is_control(path, plen))
            on_control(c, path, plen, close_after);
        else
            on_delivery(c, path, plen, id, idlen, body, (size_t)clen, close_after);
        pos += hlen + (size_t)clen;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
}

static void conn_close(int ep, conn *c)
{
    if (c->heap_i >= 0) heap_remove(c);
    if (c->held) held_now--;
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* close_notify, best effort (non-blocking) */
        SSL_free(c->ssl);
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    open_conns--;
}

/* One read into buf: returns the bytes read (> 0), -1 when it would block, 0 at the end or on
 * an error. TLS: SSL_read (which may need the socket writable: ssl_want_write). */
static ssize_t io_read(conn *c, char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t r = recv(c->fd, buf, n, 0);
        if (r > 0) return r;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
        return 0;
    }
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, n > 1 << 30 ? 1 << 30 : (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE) c->ssl_want_write = true;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : 0;
}

/* One write of buf: the bytes written (> 0), -1 when it would block, 0 on an error. */
static ssize_t io_write(conn *c, const char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w > 0) return w;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
        return 0;
    }
    ERR_clear_error();
    int w = SSL_write(c->ssl, buf, n > 1 << 30 ? 1 << 30 : (int)n);
    if (w > 0) return w;
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE) c->ssl_want_write = true;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : 0;
}

/* Writes what c has pending; returns false if the connection is finished (closed). */
static bool conn_flush(int ep, conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = io_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0) break;
        conn_close(ep, c);
        return false;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->closing) {
            conn_close(ep, c);
            return false;
        }
    }
    /* output pending: wait for room; too much of it: stop reading until it drains */
    uint32_t mask = (c->out_off < c->out_len || c->ssl_want_write ? EPOLLOUT : 0) |
                    (c->out_len - c->out_off < OUT_HIGH ? EPOLLIN : 0);
    if (mask != c->mask) {
        struct epoll_event ev = {.events = mask, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->mask = mask;
    }
    return true;
}

/* Reads what is available, answers complete requests, writes. */
static void conn_io(int ep, conn *c, uint32_t events)
{
    bool eof = false;
    c->ssl_want_write = false;
    if (c->ssl && !c->hs_done) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            c->hs_done = true;
        } else {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                S.tls_failed++;
                conn_close(ep, c);
                return;
            }
            c->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
            conn_flush(ep, c); /* nothing to write yet: sets the mask */
            return;
        }
    }
    /* TLS may hold decrypted bytes the socket no longer signals: always read then */
    while (c->ssl || (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        if (c->out_len - c->out_off < OUT_HIGH) {
            if (c->in_cap - c->in_len < READ_CHUNK) {
                size_t need = c->in_len + READ_CHUNK;
                if (need > HEAD_MAX + BODY_MAX + READ_CHUNK) {
                    conn_close(ep, c);
                    return;
                }
                size_t ncap = c->in_cap ? c->in_cap : READ_CHUNK;
                while (ncap < need) ncap *= 2;
                c->in = xrealloc(c->in, ncap);
                c->in_cap = ncap;
            }
            ssize_t r = io_read(c, c->in + c->in_len, c->in_cap - c->in_len);
            if (r > 0) {
                c->in_len += (size_t)r;
                if (c->ssl) continue; /* until SSL_read would block */
            } else if (r == 0) {
                eof = true;
            }
        }
        break;
    }
    process(c);
    if (eof) c->closing = true;
    if (!conn_flush(ep, c)) return;
    /* output drained below the mark: more buffered requests may now be answered */
    if (c->in_len && c->out_len - c->out_off < OUT_HIGH && !c->closing) {
        process(c);
        conn_flush(ep, c);
    }
}

/* Answers c's held delivery (its delay is over), then what was pipelined behind it. */
static void release(int ep, conn *c)
{
    c->held = false;
    held_now--;
    S.delayed++;
    count_ok(c->held_has_id, c->held_id, c->held_t0);
    respond(c, 200, "text/plain", "ok", 2, c->held_close);
    process(c);
    conn_flush(ep, c);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static long long arg_int(const char *name, const char *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < 0) {
        fprintf(stderr, "receiver: %s wants a non-negative integer, got '%s'\n", name, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long long port = 0, fail_ms = 0, start_after = 0, any_loopback = 0;
    const char *tls_cert = NULL, *tls_key = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: receiver [--host H] [--port P] [--fail-ms N] "
                            "[--fail-status S] [--start-after-ms N] [--tls-cert PEM "
                            "--tls-key PEM] [--any-loopback 1]\n");
            return 2;
        }
        if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--port"))
            port = arg_int(a, v);
        else if (!strcmp(a, "--fail-ms"))
            fail_ms = arg_int(a, v);
        else if (!strcmp(a, "--fail-status"))
            fail_status = (int)arg_int(a, v);
        else if (!strcmp(a, "--start-after-ms"))
            start_after = arg_int(a, v);
        else if (!strcmp(a, "--tls-cert"))
            tls_cert = v;
        else if (!strcmp(a, "--tls-key"))
            tls_key = v;
        else if (!strcmp(a, "--any-loopback"))
            any_loopback = arg_int(a, v);
        else {
            fprintf(stderr, "receiver: unknown option %s\n", a);
            return 2;
        }
    }
    if (port > 65535 || fail_status < 100 || fail_status > 599) {
        fprintf(stderr, "receiver: bad --port or --fail-status\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    if (!tls_cert != !tls_key) {
        fprintf(stderr, "receiver: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (tls_cert) {
        tls_ctx = SSL_CTX_new(TLS_server_method());
        if (!tls_ctx || SSL_CTX_use_certificate_chain_file(tls_ctx, tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, tls_key, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "receiver: cannot load %s / %s\n", tls_cert, tls_key);
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_CTX_set_mode(tls_ctx,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* sessions resumable: server-side cache (TLS 1.2) and tickets (TLS 1.3, default) */
        SSL_CTX_set_session_id_context(tls_ctx, (const unsigned char *)"receiver", 8);
        SSL_CTX_sess_set_cache_size(tls_ctx, 100000);
        SSL_CTX_set_client_hello_cb(tls_ctx, on_client_hello, NULL);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (start_after) {
        struct timespec ts = {start_after / 1000, (start_after % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_flag) {
        }
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (any_loopback) host = "0.0.0.0"; /* connections to other addresses are closed */
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "receiver: --host must be an IPv4 address\n");
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "receiver: cannot listen on %s:%lld: %s\n", host, port, strerror(errno));
        return 1;
    }
    socklen_t sl = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &sl);
    if (fail_ms) fail_until_us = now_us() + fail_ms * 1000;
    printf("{\"port\":%d}\n", ntohs(sin.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[EVENTS_MAX];
    while (!stop_flag) {
        int wait_ms = 500;
        if (heap_len) {
            int64_t d = (heap[0]->due_us - now_us() + 999) / 1000;
            wait_ms = d < 0 ? 0 : d < wait_ms ? (int)d : wait_ms;
        }
        int n = epoll_wait(ep, evs, EVENTS_MAX, wait_ms);
        if (n < 0 && errno != EINTR) {
            perror("receiver: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c) {
                conn_io(ep, c, evs[i].events);
                continue;
            }
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) break;
                if (any_loopback) {
                    struct sockaddr_in la;
                    socklen_t ll = sizeof la;
                    if (getsockname(fd, (struct sockaddr *)&la, &ll) != 0 ||
                        la.sin_family != AF_INET || (ntohl(la.sin_addr.s_addr) >> 24) != 127) {
                        S.rejected++;
                        close(fd);
                        continue;
                    }
                }
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = xrealloc(NULL, sizeof *c);
                memset(c, 0, sizeof *c);
                c->fd = fd;
                c->heap_i = -1;
                if (tls_ctx) {
                    c->ssl = SSL_new(tls_ctx);
                    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                        SSL_free(c->ssl);
                        close(fd);
                        free(c);
                        continue;
                    }
                    SSL_set_accept_state(c->ssl);
                }
                c->mask = EPOLLIN;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                    SSL_free(c->ssl);
                    close(fd);
                    free(c);
                    continue;
                }
                S.accepted++;
                open_conns++;
            }
        }
        /* held deliveries whose delay is over */
        for (int64_t t = now_us(); heap_len && heap[0]->due_us <= t;) {
            conn *c = heap[0];
            heap_remove(c);
            release(ep, c);
        }
    }
    char buf[2048];
    if (stats_json(buf, sizeof buf, true)) printf("%s\n", buf);
    stats_reset();
    return 0;
}
