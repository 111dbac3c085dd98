/*
 * loadgen.c: the benchmark's event source. Sends events to hookd's ingest API over raw
 * keep-alive sockets, one request in flight per connection, from one epoll loop, and prints
 * one JSON line of what happened.
 *
 * Each event is {"type":T,"data":{"t_us":U,"seq":I,"pad":"x..."}} where U is the
 * CLOCK_MONOTONIC microsecond at which the event was due to be sent (the receiver subtracts it
 * from its arrival time: end-to-end latency). In closed-loop mode (no --rate) every connection
 * sends its next request as soon as the previous one is answered, so U is the send time. With
 * --rate R the requests are due at fixed times (a timerfd armed at the next due time); a request
 * that finds no free connection waits, and its U stays its due time, so a slow ingest shows in
 * the latency instead of hiding in the generator (no coordinated omission). The result says
 * how late the generator itself was (late_*_us: due -> sent, when a connection was free) and how
 * many requests had to wait for a connection (conn_waits: hookd answering slower than the
 * rate needs).
 * With --batch B every request is POST /v1/events/batch with B events (the last may hold
 * fewer); without it, POST /v1/events with one event.
 *
 *   loadgen --target HOST:PORT [--target ...] --key KEY --events N [--conns 8]
 *           [--rate EVENTS_PER_S] [--batch B] [--type bench.event] [--pad 200]
 * Connections are spread over the targets round-robin. Exit 0 when every request got an
 * answer (whatever its status: the JSON says which), 1 when a target could not be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 16
#define MAX_CONNS   1024
#define RESP_MAX    (1024 * 1024)
#define MAX_BATCH   1000

typedef struct target {
    struct sockaddr_in addr;
    char hostport[64];
} target;

typedef struct conn {
    int fd;
    int target;
    bool busy; /* a request is written or being written; its answer is awaited */
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;
    size_t in_len, in_cap;
    int64_t sent_us; /* when the request started to be written */
    int nev;         /* events in the request in flight */
} conn;

static target targets[MAX_TARGETS];
static int ntargets;
static conn conns[MAX_CONNS];
static int nconns = 8;
static const char *api_key;
static const char *ev_type = "bench.event";
static long long total_events;
static long long per_req = 1; /* events per request */
static bool batch_mode;
static double rate; /* events/s; 0 = closed loop */
static int pad_len = 200;
static char *pad;

/* progress */
static long long next_seq; /* next event number to put in a request */
static long long next_req; /* next request number (its due time is from it) */
static long long total_reqs;
static long long answered_reqs, ok_events, ok_reqs, failed_events, io_errors, reconnects;
static long long statuses[600];
static int64_t start_us, first_send_us, last_answer_us, late_max_us;
static long long conn_waits;       /* rate mode: requests due while every connection was busy */
static long long blocked_req = -1; /* the first such request, until it is sent */
static uint32_t *req_lat;          /* per answered request: send -> answer, µs */
static long long nreq_lat;
static uint32_t *late; /* rate mode, per request sent on time: due -> sent, µs */
static long long nlate;
static int ep;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    return q;
}

static void die(const char *msg)
{
    printf("{\"error\":\"%s\"}\n", msg);
    fflush(stdout);
    exit(1);
}

/* Appends n bytes to c's output buffer. */
static void out_add(conn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t ncap = c->out_cap ? c->out_cap : 8192;
        while (ncap < c->out_len + n) ncap *= 2;
        c->out = xrealloc(c->out, ncap);
        c->out_cap = ncap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* Due time of request k in rate mode. */
static int64_t due_us(long long k)
{
    return start_us + (int64_t)((double)(k * per_req) * 1e6 / rate);
}

/* Opens (or reopens) connection i to its target: a blocking connect (loopback), then
 * non-blocking and registered with epoll. Returns false if the target refuses. */
static bool conn_open(int i)
{
    conn *c = &conns[i];
    if (c->fd > 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->in_len = c->out_len = c->out_off = 0;
    c->busy = false;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return false;
    if (connect(c->fd, (struct sockaddr *)&targets[c->target].addr, sizeof(struct sockaddr_in))) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return true;
}

/* Appends the JSON of one event, due at t, to buf[*len..cap). */
static void put_event(char *buf, size_t *len, size_t cap, int64_t t)
{
    int n =
        snprintf(buf + *len, cap - *len,
                 "{\"type\":\"%s\",\"data\":{\"t_us\":%" PRId64 ",\"seq\":%lld,\"pad\":\"%s\"}}",
                 ev_type, t, next_seq++, pad);
    if (n < 0 || (size_t)n >= cap - *len) die("event too large");
    *len += (size_t)n;
}

/* Registers connection i for EPOLLIN, plus EPOLLOUT if want. */
static void arm_out(conn *c, int i, bool want)
{
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what c has pending; arms EPOLLOUT if the socket is full. Returns false on error. */
static bool conn_flush(conn *c, int i)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            arm_out(c, i, true);
            return true;
        } else {
            return false;
        }
    }
    c->out_len = c->out_off = 0;
    return true;
}

static void conn_failed(int i);

/* Builds request number next_req (due at t) and starts writing it on idle connection i. */
static void send_request(int i, int64_t t)
{
    static char body[MAX_BATCH * 1200 + 4096];
    static char head[512];
    conn *c = &conns[i];
    size_t len = 0;
    long long left = total_events - next_seq;
    int nev = (int)(left < per_req ? left : per_req);
    if (batch_mode) {
        memcpy(body, "{\"events\":[", 11);
        len = 11;
        for (int k = 0; k < nev; k++) {
            if (k) body[len++] = ',';
            put_event(body, &len, sizeof body - 2, t);
        }
        body[len++] = ']';
        body[len++] = '}';
    } else {
        put_event(body, &len, sizeof body, t);
    }
    int hn = snprintf(head, sizeof head,
                      "POST /api/webhook/v1/events%s HTTP/1.1\r\nHost: %s\r\nx-api-key: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      batch_mode ? "/batch" : "", targets[c->target].hostport, api_key, len);
    if (hn < 0 || (size_t)hn >= sizeof head) die("request head too large");
    out_add(c, head, (size_t)hn);
    out_add(c, body, len);
    c->busy = true;
    c->nev = nev;
    c->sent_us = now_us();
    if (!first_send_us) first_send_us = c->sent_us;
    if (rate > 0 && next_req == blocked_req)
        conn_waits++;
    else if (rate > 0) {
        int64_t d = c->sent_us - t;
        if (d > late_max_us) late_max_us = d;
        late[nlate++] = d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    next_req++;
    if (!conn_flush(c, i)) conn_failed(i);
}

/* The request in flight on i was lost (connection error): counted, and the connection reopened
 * (the events are not resent: hookd may have stored them). */
static void conn_failed(int i)
{
    conn *c = &conns[i];
    if (c->busy) {
        io_errors++;
        failed_events += c->nev;
        answered_reqs++;
    }
    reconnects++;
    for (int tries = 0; !conn_open(i); tries++) {
        if (tries == 50) die("cannot reconnect to the target");
        usleep(100000);
    }
}

/* Sends on idle connections whatever may go now: in closed-loop mode the next request, in
 * rate mode every request already due. */
static void pump(void)
{
    int64_t t = now_us();
    for (int i = 0; i < nconns && next_req < total_reqs; i++) {
        if (conns[i].busy) continue;
        if (rate > 0) {
            int64_t due = due_us(next_req);
            if (due > t) return;
            send_request(i, due);
        } else {
            send_request(i, now_us());
        }
    }
    if (rate > 0 && next_req < total_reqs && due_us(next_req) <= t) blocked_req = next_req;
}

/* Parses answers in c->in; returns false if the connection must be reopened. */
static bool on_readable(int i)
{
    conn *c = &conns[i];
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
            if (c->in_cap > RESP_MAX) return false;
            c->in = xrealloc(c->in, c->in_cap);
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return false; /* EOF or error */
    }
    const char *he = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!he) return true;
    size_t hlen = (size_t)(he - c->in) + 4;
    int status = 0;
    if (c->in_len < 12 || memcmp(c->in, "HTTP/1.", 7) != 0) return false;
    status = (c->in[9] - '0') * 100 + (c->in[10] - '0') * 10 + (c->in[11] - '0');
    if (status < 100 || status > 599) return false;
    long long clen = -1;
    bool close_after = false;
    for (const char *l = c->in; l < he;) {
        const char *e = memmem(l, (size_t)(he + 2 - l), "\r\n", 2);
        if (!strncasecmp(l, "content-length:", 15)) clen = strtoll(l + 15, NULL, 10);
        if (!strncasecmp(l, "connection:", 11) && memmem(l, (size_t)(e - l), "close", 5))
            close_after = true;
        l = e + 2;
    }
    if (clen < 0) return false;
    if (c->in_len < hlen + (size_t)clen) return true;
    if (c->in_len > hlen + (size_t)clen) return false; /* one request in flight: no extra bytes */
    if (!c->busy) return false;
    if (status == 100) { /* interim answer: drop it, keep waiting */
        c->in_len = 0;
        return true;
    }
    int64_t t = now_us();
    last_answer_us = t;
    statuses[status]++;
    answered_reqs++;
    if (status >= 200 && status < 300) {
        ok_events += c->nev;
        ok_reqs++;
    } else {
        failed_events += c->nev;
    }
    int64_t d = t - c->sent_us;
    req_lat[nreq_lat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    c->busy = false;
    c->in_len = 0;
    if (close_after) {
        reconnects++;
        conn_open(i);
    }
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, long long n, double p)
{
    if (n <= 0) return 0;
    long long k = (long long)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static long long arg_num(const char *name, const char *v, long long lo, long long hi)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        fprintf(stderr, "loadgen: %s wants an integer in %lld..%lld, got '%s'\n", name, lo, hi, v);
        exit(2);
    }
    return x;
}

static void add_target(const char *hp)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || ntargets == MAX_TARGETS || (size_t)(colon - hp) >= 46) {
        fprintf(stderr, "loadgen: --target wants IPV4:PORT (at most %d)\n", MAX_TARGETS);
        exit(2);
    }
    char host[48];
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    target *t = &targets[ntargets++];
    t->addr.sin_family = AF_INET;
    t->addr.sin_port = htons((uint16_t)arg_num("--target port", colon + 1, 1, 65535));
    if (inet_pton(AF_INET, host, &t->addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --target host must be an IPv4 address\n");
        exit(2);
    }
    snprintf(t->hostport, sizeof t->hostport, "%s", hp);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: loadgen --target HOST:PORT --key KEY --events N [--conns C] "
                            "[--rate R] [--batch B] [--type T] [--pad P]\n");
            return 2;
        }
        if (!strcmp(a, "--target"))
            add_target(v);
        else if (!strcmp(a, "--key"))
            api_key = v;
        else if (!strcmp(a, "--events"))
            total_events = arg_num(a, v, 1, 1000000000);
        else if (!strcmp(a, "--conns"))
            nconns = (int)arg_num(a, v, 1, MAX_CONNS);
        else if (!strcmp(a, "--rate"))
            rate = (double)arg_num(a, v, 1, 10000000);
        else if (!strcmp(a, "--batch")) {
            per_req = arg_num(a, v, 1, MAX_BATCH);
            batch_mode = true;
        } else if (!strcmp(a, "--type"))
            ev_type = v;
        else if (!strcmp(a, "--pad"))
            pad_len = (int)arg_num(a, v, 0, 1000);
        else {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            return 2;
        }
    }
    if (!ntargets || !api_key || !total_events) {
        fprintf(stderr, "loadgen: --target, --key and --events are required\n");
        return 2;
    }
    if (strlen(ev_type) > 255 || strpbrk(ev_type, "\"\\") || strlen(api_key) > 200 ||
        strpbrk(api_key, "\r\n")) {
        fprintf(stderr, "loadgen: bad --type or --key\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    pad = xrealloc(NULL, (size_t)pad_len + 1);
    memset(pad, 'x', (size_t)pad_len);
    pad[pad_len] = '\0';
    total_reqs = (total_events + per_req - 1) / per_req;
    req_lat = xrealloc(NULL, (size_t)total_reqs * sizeof *req_lat);
    late = xrealloc(NULL, (size_t)total_reqs * sizeof *late);
    if ((long long)nconns > total_reqs) nconns = (int)total_reqs;

    ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].target = i % ntargets;
        if (!conn_open(i)) die("cannot connect to the target");
    }
    int tfd = -1;
    start_us = now_us();
    if (rate > 0) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }
    struct epoll_event evs[256];
    while (answered_reqs < total_reqs) {
        pump();
        if (tfd >= 0 && next_req < total_reqs) {
            int64_t due = due_us(next_req);
            struct itimerspec its = {.it_value = {due / 1000000, (due % 1000000) * 1000}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait failed");
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;
            if (i == UINT32_MAX) {
                uint64_t x;
                if (read(tfd, &x, sizeof x) < 0) {
                }
                continue;
            }
            conn *c = &conns[i];
            if (evs[k].events & EPOLLOUT) {
                if (!conn_flush(c, (int)i)) {
                    conn_failed((int)i);
                    continue;
                }
                if (c->out_len == 0) arm_out(c, (int)i, false);
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!on_readable((int)i)) conn_failed((int)i);
            }
        }
    }
    int64_t end = last_answer_us ? last_answer_us : now_us();
    qsort(req_lat, (size_t)nreq_lat, sizeof *req_lat, cmp_u32);
    qsort(late, (size_t)nlate, sizeof *late, cmp_u32);
    double secs = (double)(end - first_send_us) / 1e6;
    printf("{\"events\":%lld,\"requests\":%lld,\"ok_events\":%lld,\"ok_requests\":%lld,"
           "\"failed_events\":%lld,\"io_errors\":%lld,\"reconnects\":%lld,\"statuses\":{",
           total_events, total_reqs, ok_events, ok_reqs, failed_events, io_errors, reconnects);
    bool first = true;
    for (int s = 0; s < 600; s++) {
        if (!statuses[s]) continue;
        printf("%s\"%d\":%lld", first ? "" : ",", s, statuses[s]);
        first = false;
    }
    printf("},\"first_send_us\":%" PRId64 ",\"last_answer_us\":%" PRId64 ",\"seconds\":%.6f,"
           "\"events_per_s\":%.1f,\"req_p50_us\":%u,\"req_p99_us\":%u,\"req_max_us\":%u,"
           "\"late_p50_us\":%u,\"late_p99_us\":%u,\"late_max_us\":%" PRId64
           ",\"conn_waits\":%lld}\n",
           first_send_us, end, secs, secs > 0 ? (double)ok_events / secs : 0.0,
           pct(req_lat, nreq_lat, 50), pct(req_lat, nreq_lat, 99),
           nreq_lat ? req_lat[nreq_lat - 1] : 0, pct(late, nlate, 50), pct(late, nlate, 99),
           late_max_us, conn_waits);
    return 0;
}
