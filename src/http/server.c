/*
 * server.c: hookd's HTTP/1.1 server on libevent (contract in server.h, parsing in parse.c).
 *
 * Why raw events and the server's own buffers rather than bufferevents or evbuffers:
 *  - input lands in one contiguous per-connection buffer (ib), so the end of a head is found
 *    with memchr over plain bytes, without evbuffer_pullup or searches across chains; the head
 *    (a few hundred bytes) is then copied into the connection's head buffer and parsed in
 *    place, so header strings cost nothing and ib stays free to compact and grow while the
 *    request is with the handler;
 *  - output is one flat buffer (ob) written with a single sendmsg(); responses to pipelined
 *    requests queue behind each other in it and leave in one syscall; a borrowed body
 *    (hk_http_respond_static) is not copied into ob but spliced in as an iovec;
 *  - none of the four timeouts is a bufferevent timeout (they run from the start of a state,
 *    not from the last byte), so each connection needs its own timers anyway: two events on
 *    libevent's common-timeout queues (O(1) add/remove instead of the heap, since every
 *    connection uses the same few durations).
 * In steady state a keep-alive request costs no malloc: head, body, header array and both
 * byte buffers belong to the connection and are reused (body and output buffers grown past
 * 64 KiB are released after their request, so a big upload does not pin memory).
 *
 * Read-side states of a connection (only set_state changes them):
 *   IDLE     no byte of the next request yet (fresh, or keep-alive between requests)
 *   HEAD     bytes of a head are in, not its blank line yet            (header timeout)
 *   GATE     head parsed, with limits.on_head: nothing read until it says hk_http_proceed
 *            (-> BODY) or answers (-> CLOSING, the body never read)   (no timeout)
 *   BODY     head parsed, body being read                              (body timeout)
 *   HANDLER  request handed to the handler, waiting for hk_http_respond (no timeout)
 *   CLOSING  last response queued; the connection closes once it is written
 *   LINGER   after an error response: write side shut down, what the client still sends is
 *            read and dropped for a short while, so that closing does not send an RST that
 *            would destroy the error response before the client read it
 * A fresh connection waits for its first byte under the header timeout, later ones under the
 * idle timeout. The write side runs beside this: while ob holds bytes the socket is polled for
 * writing and the write timeout runs; the next request is parsed as soon as the previous
 * response is queued (and while less than OB_HIGH bytes wait to be written).
 * IDLE, HEAD, BODY and LINGER connections are on the wait list, least recent progress first
 * (LINGER at the front; BODY moves to the back on every KiB of body, IDLE -> HEAD does not):
 * when max_connections is reached, its head is closed to make room. Output backed up over
 * OB_HIGH also stops reading (IDLE/HEAD), so a client that pipelines and never reads costs at
 * most ib_max of input. After the client's EOF nothing more is read; complete requests are
 * still answered, then the connection closes (conn_settle).
 *
 * Lifetime: a connection object embeds the one request it hands out at a time, so the request
 * lives as long as the object. When the socket closes while a request is with the handler, the
 * object becomes a zombie (socket, events and byte buffers freed; head, body and headers kept)
 * until hk_http_respond frees it. hk_http_server_free closes every connection; zombies are
 * orphaned (srv = NULL) and still freed by hk_http_respond. The handler is called only from
 * the connection's own event callbacks, never from inside hk_http_respond: a response given
 * inside the handler lets the same callback go on with the next pipelined request, a later one
 * is written at once and the next pipelined request is parsed in a fresh callback.
 * hk_http_server_free must not be called from inside the handler.
 *
 * Limits: a timeout <= 0 disables it; max_connections <= 0 means no limit.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "core/time.h"
#include "http/parse.h"

#define IB_INIT         4096        /* first input buffer */
#define IB_MIN_ROOM     1024        /* compact or grow ib below this much free room */
#define OB_HIGH         (16 * 1024) /* stop parsing pipelined requests above this much output */
#define BUF_KEEP        (64 * 1024) /* body/output buffers above this are freed after use */
#define ERR_BODY_MAX    (64 * 1024) /* cap on an error body made by limits.error_body */
#define LINGER_MS       2000        /* lingering close: at most this long... */
#define LINGER_BYTES    (1 << 20)   /* ...and this many bytes dropped */
#define ACCEPT_PAUSE_MS 100         /* accept paused this long when out of descriptors */

#define OB_IOV         16   /* iovecs per sendmsg() */
#define PROGRESS_BYTES 1024 /* body bytes that count as progress (eviction order) */

enum rstate { R_IDLE, R_HEAD, R_GATE, R_BODY, R_HANDLER, R_CLOSING, R_LINGER };
enum tkind { T_NONE, T_HEADER, T_BODY, T_IDLE, T_LINGER, T_WRITE, T_NKINDS };

typedef struct conn conn;

/* A response body written after ob[..at) from where it lies, never copied: borrowed
 * (hk_http_respond_static) or owned (hk_http_respond_take: freed once written). */
typedef struct oref {
    size_t at;
    const char *p;
    size_t len;
    bool owned;
} oref;

enum body_mode { B_COPY, B_BORROWED, B_OWNED };

struct conn {
    hk_http_server *srv; /* NULL for a zombie whose server was freed */
    evutil_socket_t fd;  /* -1 once closed */
    struct event *rev, *wev, *rtimer, *wtimer;
    struct event *kick;  /* made on first use: resumes parsing after a later response */
    conn *prev, *next;   /* srv->conns (open) or srv->zombies (closed, request pending) */
    conn *wprev, *wnext; /* srv's wait list, when in_wait */
    int rstate;          /* enum rstate */
    int tkind;           /* enum tkind armed on rtimer */
    int busy;            /* depth of conn_process on the stack */
    int nreqs;           /* requests parsed on this connection */
    int minor;           /* HTTP minor version of the current request */
    bool tdirty;         /* state entered anew: rtimer must be re-armed */
    bool rev_on, wev_on, wtimer_on, in_wait;
    bool closed;          /* socket closed */
    bool eof;             /* client closed its side */
    bool keep_alive;      /* current request allows keep-alive */
    bool is_head;         /* current request is HEAD: responses carry no body */
    bool linger;          /* close with a lingering close */
    bool chunked;         /* current body is chunked */
    bool expect_continue; /* current request asked for 100 Continue */
    bool kicked;          /* kick is active: ib holds bytes to parse in a fresh callback */
    uint32_t progress;    /* body bytes since the connection last moved to the back */
    bool paused;          /* step_head stopped for backed-up output, with bytes left in ib */
    /* Input: unprocessed bytes are ib[ib_start..ib_end). */
    char *ib;
    size_t ib_cap, ib_start, ib_end;
    size_t lingered;
    hk_http_scan scan;
    /* The current request: its strings point into head, body and hdrs. */
    hk_buf head, body;
    hk_http_header *hdrs;
    int hdrcap;
    uint64_t body_left;
    hk_http_chunked ch;
    hk_http_req req;
    /* Output: bytes ob[ob_off..ob.len) wait to be written, with the bodies written in place
     * (borrowed or owned) refs[ref0..nrefs) spliced in at their offsets; ref_off bytes of
     * refs[ref0] are written, ref_left bytes of those bodies are not. */
    hk_buf ob;
    size_t ob_off;
    oref *refs;
    int ref0, nrefs, refcap;
    size_t ref_off, ref_left;
};

struct hk_http_server {
    struct event_base *base;
    hk_http_limits lim;
    hk_http_handler handler;
    void *arg;
    struct evconnlistener **ls;
    int nls;
    int port;
    struct event *accept_retry;
    conn *conns, *zombies;
    conn *whead, *wtail;
    int nconns, pending;
    bool draining;
    size_t ib_max;
    const struct timeval *tv[T_NKINDS]; /* NULL: timeout disabled */
    struct timeval tvbuf[T_NKINDS];
    hk_buf err;
    time_t date_sec;
    char date[64];
};

static void conn_close(conn *c);
static void conn_process(conn *c);
static void conn_settle(conn *c);
static void kick(conn *c);

/* ---- small helpers ----------------------------------------------------------------------- */

void hk_http_limits_default(hk_http_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    lim->max_body_bytes = 1024 * 1024;
    lim->max_header_bytes = 16 * 1024;
    lim->max_headers = 100;
    lim->header_timeout_ms = 10000;
    lim->body_timeout_ms = 30000;
    lim->idle_timeout_ms = 60000;
    lim->write_timeout_ms = 30000;
    lim->max_connections = 16384;
    lim->error_body = NULL;
}

const char *hk_http_header_get(const hk_http_req *req, const char *lname)
{
    for (int i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[i].name, lname) == 0) return req->headers[i].value;
    return NULL;
}

const char *hk_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Entity";
    case 425:
        return "Too Early";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* The Date header value for the loop's cached time, formatted once a second. */
static const char *http_date(hk_http_server *srv)
{
    struct timeval tv;
    if (event_base_gettimeofday_cached(srv->base, &tv) != 0) gettimeofday(&tv, NULL);
    if (tv.tv_sec != srv->date_sec) {
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        time_t t = tv.tv_sec;
        gmtime_r(&t, &tm);
        snprintf(srv->date, sizeof srv->date, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        srv->date_sec = tv.tv_sec;
    }
    return srv->date;
}

/* Minimal JSON string body: the built-in error_body. code and message are the server's own
 * static strings, escaped anyway. */
static void put_json_str(hk_buf *b, const char *s)
{
    hk_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            hk_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            hk_buf_printf(b, "\\u%04x", ch);
        else
            hk_buf_putc(b, (char)ch);
    }
    hk_buf_putc(b, '"');
}

static void builtin_error_body(hk_buf *out, int status, const char *code, const char *message)
{
    hk_buf_puts(out, "{\"code\":");
    put_json_str(out, code);
    hk_buf_puts(out, ",\"message\":");
    put_json_str(out, message);
    hk_buf_putc(out, '}');
}

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define PUTS(w, lit) put((w), (lit), sizeof(lit) - 1)

static char *put_u64(char *w, uint64_t v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i) *w++ = tmp[--i];
    return w;
}

static void addr_str(const struct sockaddr *sa, char *out, size_t n)
{
    hk_strlcpy(out, "unknown", n);
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)n);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)n);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)n);
    }
}

/* ---- lists ------------------------------------------------------------------------------- */

static void list_push(conn **head, conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

static void list_unlink(conn **head, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void wait_unlink(conn *c)
{
    if (!c->in_wait) return;
    hk_http_server *srv = c->srv;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        srv->whead = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        srv->wtail = c->wprev;
    c->wprev = c->wnext = NULL;
    c->in_wait = false;
}

static void wait_push(conn *c, bool front)
{
    hk_http_server *srv = c->srv;
    wait_unlink(c);
    if (front) {
        c->wprev = NULL;
        c->wnext = srv->whead;
        if (srv->whead)
            srv->whead->wprev = c;
        else
            srv->wtail = c;
        srv->whead = c;
    } else {
        c->wnext = NULL;
        c->wprev = srv->wtail;
        if (srv->wtail)
            srv->wtail->wnext = c;
        else
            srv->whead = c;
        srv->wtail = c;
    }
    c->in_wait = true;
}

/* ---- state ------------------------------------------------------------------------------- */

/* The one place that changes a connection's read state: keeps the wait list and marks the
 * state's timer for re-arming. IDLE -> HEAD keeps the wait-list position (the wait goes on);
 * BODY goes to the back (the head was progress), and again after every PROGRESS_BYTES of
 * body (body_progress). */
static void set_state(conn *c, int st)
{
    c->rstate = st;
    c->tdirty = true;
    switch (st) {
    case R_IDLE:
    case R_HEAD:
        if (!c->in_wait) wait_push(c, false);
        break;
    case R_BODY:
        c->progress = 0;
        wait_push(c, false);
        break;
    case R_LINGER:
        wait_push(c, true);
        break;
    default:
        wait_unlink(c);
        break;
    }
}

/* Bytes queued and not yet written, borrowed bodies included. */
static size_t ob_pending(const conn *c)
{
    return c->ob.len - c->ob_off + c->ref_left;
}

/* Rewinds ob (and the borrowed bodies) when everything in it was written. */
static void ob_rewind(conn *c)
{
    if (c->ob_off == c->ob.len && c->ref0 == c->nrefs) {
        c->ob.len = c->ob_off = 0;
        c->ref0 = c->nrefs = 0;
        c->ref_off = c->ref_left = 0;
    }
}

/* A request with the application (on_head or the handler): the connection object must live
 * until it answers. */
static bool with_app(const conn *c)
{
    return c->rstate == R_HANDLER || c->rstate == R_GATE;
}

/* Queues a response in ob: status line, Content-Type, Content-Length, Date, extra headers,
 * Connection, blank line, body (not for HEAD, 1xx, 204, 304). A borrowed or owned body
 * (mode) is not copied: it is queued as a reference, written from where it lies; an owned
 * body is the connection's from here on (freed at once if it is not sent). */
static void append_response(conn *c, int status, const char *ctype, const char *extra,
                            const void *body, size_t len, bool close, int mode)
{
    bool borrowed = mode != B_COPY;
    hk_http_server *srv = c->srv;
    hk_buf *o = &c->ob;
    ob_rewind(c);
    if (status < 100 || status > 999) status = 500;
    bool bodiless = status < 200 || status == 204 || status == 304;
    bool send_body = !bodiless && !c->is_head && len > 0;
    const char *reason = hk_http_reason(status), *date = http_date(srv);
    size_t rl = strlen(reason), dl = strlen(date), ctl = ctype ? strlen(ctype) : 0;
    size_t el = extra ? strlen(extra) : 0;
    size_t need = 160 + rl + dl + ctl + el + (send_body && !borrowed ? len : 0);
    if (hk_buf_reserve(o, need)) abort(); /* unlimited buffer: cannot fail */
    char *w = o->data + o->len;
    w = PUTS(w, "HTTP/1.1 ");
    w = put_u64(w, (uint64_t)status);
    *w++ = ' ';
    w = put(w, reason, rl);
    w = PUTS(w, "\r\n");
    if (ctype) {
        w = PUTS(w, "Content-Type: ");
        w = put(w, ctype, ctl);
        w = PUTS(w, "\r\n");
    }
    if (!bodiless) {
        w = PUTS(w, "Content-Length: ");
        w = put_u64(w, len);
        w = PUTS(w, "\r\n");
    }
    w = PUTS(w, "Date: ");
    w = put(w, date, dl);
    w = PUTS(w, "\r\n");
    if (el) w = put(w, extra, el);
    if (close)
        w = PUTS(w, "Connection: close\r\n");
    else if (c->minor == 0)
        w = PUTS(w, "Connection: keep-alive\r\n");
    w = PUTS(w, "\r\n");
    if (send_body && !borrowed) w = put(w, body, len);
    o->len = (size_t)(w - o->data);
    if (send_body && borrowed) {
        if (c->nrefs == c->refcap) {
            c->refcap = c->refcap ? c->refcap * 2 : 4;
            c->refs = hk_realloc(c->refs, (size_t)c->refcap * sizeof *c->refs);
        }
        c->refs[c->nrefs++] = (oref){o->len, body, len, mode == B_OWNED};
        c->ref_left += len;
    } else if (mode == B_OWNED) {
        free((void *)body);
    }
}

/* Answers with an error the server makes itself (JSON body, Connection: close) and moves to
 * CLOSING: nothing more is read from this connection. */
static void send_error(conn *c, int status, const char *code, const char *message)
{
    hk_http_server *srv = c->srv;
    hk_buf *e = &srv->err;
    hk_buf_reset(e);
    if (srv->lim.error_body)
        srv->lim.error_body(e, status, code, message);
    else
        builtin_error_body(e, status, code, message);
    append_response(c, status, "application/json", NULL, hk_buf_cstr(e), e->len, true, B_COPY);
    c->linger = true;
    set_state(c, R_CLOSING);
}

/* ---- output ------------------------------------------------------------------------------ */

/* Writes what the socket takes of ob. When it would block, polls for writing and arms the
 * write timeout (from the moment output first waits); when ob is empty, stops both. Returns 0,
 * or -1 when a write error closed the connection (c may then be freed). */
static int conn_flush(conn *c)
{
    hk_http_server *srv = c->srv;
    while (ob_pending(c) > 0) {
        /* ob's bytes and the borrowed bodies between them, in order */
        struct iovec iov[OB_IOV];
        int niov = 0;
        size_t pos = c->ob_off;
        for (int i = c->ref0; niov < OB_IOV - 1; i++) {
            size_t end = i < c->nrefs ? c->refs[i].at : c->ob.len;
            if (end > pos) iov[niov++] = (struct iovec){c->ob.data + pos, end - pos};
            if (i >= c->nrefs) break;
            size_t off = i == c->ref0 ? c->ref_off : 0;
            iov[niov++] = (struct iovec){(void *)(c->refs[i].p + off), c->refs[i].len - off};
            pos = end;
        }
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)niov;
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n > 0) {
            size_t left = (size_t)n;
            while (left) {
                size_t end = c->ref0 < c->nrefs ? c->refs[c->ref0].at : c->ob.len;
                size_t k = HK_MIN(left, end - c->ob_off);
                c->ob_off += k;
                left -= k;
                if (!left) break;
                oref *r = &c->refs[c->ref0];
                size_t m = HK_MIN(left, r->len - c->ref_off);
                c->ref_off += m;
                c->ref_left -= m;
                left -= m;
                if (c->ref_off == r->len) {
                    if (r->owned) free((void *)r->p);
                    c->ref0++;
                    c->ref_off = 0;
                }
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->wev_on) {
                event_add(c->wev, NULL);
                c->wev_on = true;
            }
            if (!c->wtimer_on && srv->tv[T_WRITE]) {
                event_add(c->wtimer, srv->tv[T_WRITE]);
                c->wtimer_on = true;
            }
            return 0;
        }
        conn_close(c);
        return -1;
    }
    ob_rewind(c);
    if (c->ob.cap > BUF_KEEP) hk_buf_free(&c->ob);
    if (c->wev_on) {
        event_del(c->wev);
        c->wev_on = false;
    }
    if (c->wtimer_on) {
        event_del(c->wtimer);
        c->wtimer_on = false;
    }
    return 0;
}

/* ---- input ------------------------------------------------------------------------------- */

/* Free room at the end of ib, after compacting or growing it (up to srv->ib_max) when less
 * than IB_MIN_ROOM is left. 0 when ib is full of unprocessed bytes. */
static size_t ib_room(conn *c)
{
    hk_http_server *srv = c->srv;
    if (!c->ib) {
        c->ib = hk_malloc(IB_INIT);
        c->ib_cap = IB_INIT;
    }
    if (c->ib_start == c->ib_end) c->ib_start = c->ib_end = 0;
    if (c->ib_cap - c->ib_end < IB_MIN_ROOM && c->ib_start > 0) {
        memmove(c->ib, c->ib + c->ib_start, c->ib_end - c->ib_start);
        c->ib_end -= c->ib_start;
        c->ib_start = 0;
    }
    if (c->ib_cap - c->ib_end < IB_MIN_ROOM && c->ib_cap < srv->ib_max) {
        size_t cap = HK_MIN(c->ib_cap * 2, srv->ib_max);
        c->ib = hk_realloc(c->ib, cap);
        c->ib_cap = cap;
    }
    return c->ib_cap - c->ib_end;
}

/* Hands the complete request to the handler. */
static void dispatch(conn *c)
{
    hk_http_server *srv = c->srv;
    c->req.body = c->body.len ? hk_buf_cstr(&c->body) : "";
    c->req.body_len = c->body.len;
    set_state(c, R_HANDLER);
    srv->pending++;
    srv->handler(&c->req, srv->arg);
}

/* n more body bytes: after PROGRESS_BYTES of them the connection moves to the back of the
 * eviction order. A body that trickles (a byte now and then) keeps its place near the front:
 * a minimum rate relative to the other connections, not a fixed one. */
static void body_progress(conn *c, size_t n)
{
    if (n >= PROGRESS_BYTES - c->progress) {
        c->progress = 0;
        wait_push(c, false);
    } else {
        c->progress += (uint32_t)n;
    }
}

/* Starts reading the body of the current request (BODY), with a 100 Continue first when the
 * client asked for one and has not started sending the body anyway. */
static void begin_body(conn *c)
{
    set_state(c, R_BODY);
    if (c->expect_continue && c->ib_start == c->ib_end) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ob_rewind(c);
        hk_buf_append(&c->ob, cont, sizeof cont - 1);
    }
}

/* IDLE/HEAD: looks for a complete head in ib and parses it. Returns true when the state moved
 * on (body, handler) and the loop should go on. */
static bool step_head(conn *c)
{
    hk_http_server *srv = c->srv;
    size_t avail = c->ib_end - c->ib_start;
    if (avail == 0) return false;
    /* A client that pipelines without reading its responses is not parsed further. */
    if (ob_pending(c) > OB_HIGH && (conn_flush(c) || ob_pending(c) > OB_HIGH)) {
        c->paused = true;
        return false;
    }
    c->paused = false;
    const char *p = c->ib + c->ib_start;
    if (c->rstate == R_IDLE) {
        /* Empty lines between requests (RFC 9112 §2.2) do not start a request. */
        while (avail && (p[0] == '\n' || (avail >= 2 && p[0] == '\r' && p[1] == '\n'))) {
            size_t k = p[0] == '\n' ? 1 : 2;
            p += k;
            avail -= k;
            c->ib_start += k;
        }
        if (avail == 0 || (avail == 1 && p[0] == '\r')) return false;
        set_state(c, R_HEAD);
        hk_http_scan_init(&c->scan);
        c->req.start_us = hk_mono_us();
        c->is_head = false;
        c->minor = 1;
    }
    size_t lim = srv->lim.max_header_bytes;
    size_t n = hk_http_head_end(p, HK_MIN(avail, lim), &c->scan);
    if (n == 0) {
        if (avail >= lim) {
            if (c->scan.lines == 0)
                send_error(c, 414, "uri_too_long", "the request line is too long");
            else
                send_error(c, 431, "header_too_large", "the request headers are too large");
        }
        return false;
    }

    hk_buf_reset(&c->head);
    if (hk_buf_append(&c->head, p, n)) abort(); /* n <= max_header_bytes == head.max */
    c->ib_start += n;
    int cap = HK_MIN(c->scan.lines, srv->lim.max_headers);
    if (cap > c->hdrcap) {
        c->hdrs = hk_realloc(c->hdrs, (size_t)cap * sizeof *c->hdrs);
        c->hdrcap = cap;
    }
    hk_http_head h;
    if (hk_http_parse_head(c->head.data, n, c->hdrs, cap, &h)) {
        send_error(c, h.status, h.code, h.message);
        return false;
    }
    hk_http_req *r = &c->req;
    r->method = h.method;
    r->method_str = h.method_str;
    r->path = h.path;
    r->query = h.query;
    r->headers = c->hdrs;
    r->nheaders = h.nheaders;
    r->body = "";
    r->body_len = 0;
    r->udata = NULL;
    c->minor = h.minor;
    c->keep_alive = h.keep_alive;
    c->is_head = h.method == HK_HTTP_HEAD;
    c->chunked = h.chunked;
    c->expect_continue = h.expect_continue;
    c->nreqs++;
    hk_buf_reset(&c->body);
    if (h.chunked) {
        hk_http_chunked_init(&c->ch, srv->lim.max_body_bytes, srv->lim.max_header_bytes);
    } else {
        c->body_left = h.has_length ? h.content_length : 0;
        if (c->body_left > srv->lim.max_body_bytes) {
            send_error(c, 413, "payload_too_large", "the request body is over the size limit");
            return false;
        }
        if (c->body_left == 0) {
            dispatch(c);
            return true;
        }
    }
    if (srv->lim.on_head) { /* the application decides whether the body is worth reading */
        set_state(c, R_GATE);
        srv->pending++;
        srv->lim.on_head(&c->req, srv->arg);
        return true;
    }
    begin_body(c);
    return true;
}

/* BODY: moves body bytes from ib into the body buffer (decoding chunks); dispatches when the
 * body is complete. */
static bool step_body(conn *c)
{
    size_t avail = c->ib_end - c->ib_start;
    const char *p = c->ib + c->ib_start;
    if (!c->chunked) {
        size_t n = (uint64_t)avail < c->body_left ? avail : (size_t)c->body_left;
        if (n && hk_buf_append(&c->body, p, n)) abort(); /* body_left <= max_body_bytes */
        body_progress(c, n);
        c->ib_start += n;
        c->body_left -= n;
        if (c->body_left) return false;
        dispatch(c);
        return true;
    }
    body_progress(c, avail);
    while (avail > 0) {
        size_t used, dn;
        const char *d;
        int rc = hk_http_chunked_step(&c->ch, p, avail, &used, &d, &dn);
        if (dn && hk_buf_append(&c->body, d, dn)) rc = HK_ETOOBIG;
        p += used;
        avail -= used;
        c->ib_start += used;
        if (rc == 1) {
            dispatch(c);
            return true;
        }
        if (rc == HK_ETOOBIG) {
            send_error(c, 413, "payload_too_large", "the request body is over the size limit");
            return false;
        }
        if (rc < 0) {
            send_error(c, 400, "bad_request", "malformed chunked body");
            return false;
        }
    }
    return false;
}

/* Parses and dispatches whatever complete requests ib holds, one at a time, then settles the
 * connection (flush, close, timers, polling). c may be freed when this returns. */
static void conn_process(conn *c)
{
    c->busy++;
    bool more = true;
    while (more && !c->closed) {
        switch (c->rstate) {
        case R_IDLE:
        case R_HEAD:
            more = step_head(c);
            break;
        case R_BODY:
            more = step_body(c);
            break;
        default:
            more = false;
            break;
        }
    }
    c->busy--;
    if (c->busy == 0) conn_settle(c);
}

/* The connection after a change: writes pending output, closes (or starts lingering) when
 * done, re-arms the read-state timer and polls for reading when there is room. c may be freed
 * when this returns. */
static void conn_settle(conn *c)
{
    if (c->closed) {
        if (!with_app(c)) {
            hk_buf_free(&c->head);
            hk_buf_free(&c->body);
            free(c->hdrs);
            free(c);
        }
        return;
    }
    hk_http_server *srv = c->srv;
    if (conn_flush(c)) return;
    /* Output backed up: the next pipelined request waits (step_head), and so does reading. */
    bool backed_up = ob_pending(c) > OB_HIGH && (c->rstate == R_IDLE || c->rstate == R_HEAD);
    if (c->paused && !backed_up && !c->kicked) {
        /* drained since step_head stopped: what waits in ib may need no further event */
        c->paused = false;
        if (c->ib_end > c->ib_start) kick(c);
    }
    if (c->eof && !backed_up && !c->kicked &&
        (c->rstate == R_IDLE || c->rstate == R_HEAD || c->rstate == R_BODY)) {
        /* Half-closed and every complete request taken: what is left can never complete. */
        c->linger = false;
        set_state(c, R_CLOSING);
    }
    if (c->rstate == R_CLOSING && ob_pending(c) == 0) {
        if (!c->linger || c->eof) {
            conn_close(c);
            return;
        }
        shutdown(c->fd, SHUT_WR);
        c->ib_start = c->ib_end = 0;
        set_state(c, R_LINGER);
    }

    int kind = T_NONE;
    switch (c->rstate) {
    case R_IDLE:
        kind = c->nreqs ? T_IDLE : T_HEADER;
        break;
    case R_HEAD:
        kind = T_HEADER;
        break;
    case R_BODY:
        kind = T_BODY;
        break;
    case R_LINGER:
        kind = T_LINGER;
        break;
    default:
        break;
    }
    if (kind != c->tkind || c->tdirty) {
        const struct timeval *tv = kind == T_NONE ? NULL : srv->tv[kind];
        if (tv)
            event_add(c->rtimer, tv);
        else if (c->tkind != T_NONE)
            event_del(c->rtimer);
        c->tkind = tv ? kind : T_NONE;
        c->tdirty = false;
    }

    bool want =
        c->rstate == R_LINGER || (c->rstate != R_CLOSING && c->rstate != R_GATE && !c->eof &&
                                  !backed_up && c->ib_end - c->ib_start < srv->ib_max);
    if (want != c->rev_on) {
        if (want)
            event_add(c->rev, NULL);
        else
            event_del(c->rev);
        c->rev_on = want;
    }
}

/* Closes the socket and frees what only an open connection needs. The object itself is freed
 * now, or by conn_settle when on the stack, or by hk_http_respond when a request is with the
 * handler (zombie). */
static void conn_close(conn *c)
{
    if (c->closed) return;
    hk_http_server *srv = c->srv;
    c->closed = true;
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->rtimer);
    event_free(c->wtimer);
    if (c->kick) event_free(c->kick);
    c->rev = c->wev = c->rtimer = c->wtimer = c->kick = NULL;
    evutil_closesocket(c->fd);
    c->fd = -1;
    free(c->ib);
    c->ib = NULL;
    c->ib_start = c->ib_end = c->ib_cap = 0;
    hk_buf_free(&c->ob);
    c->ob_off = 0;
    for (int i = c->ref0; i < c->nrefs; i++)
        if (c->refs[i].owned) free((void *)c->refs[i].p);
    free(c->refs);
    c->refs = NULL;
    c->ref0 = c->nrefs = c->refcap = 0;
    c->ref_off = c->ref_left = 0;
    wait_unlink(c);
    list_unlink(&srv->conns, c);
    srv->nconns--;
    if (with_app(c)) {
        list_push(&srv->zombies, c);
        return;
    }
    if (c->busy == 0) conn_settle(c); /* frees it */
}

/* ---- events ------------------------------------------------------------------------------ */

/* LINGER: drops what the client still sends; closes on its EOF, an error, or LINGER_BYTES. */
static void linger_read(conn *c)
{
    char tmp[4096];
    int i;
    for (i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered > LINGER_BYTES) break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        break;
    }
    if (i == 16) return; /* still sending: more on the next readable event */
    conn_close(c);
}

/* The client closed its side (or all of it: recv cannot tell). Reading stops; complete
 * requests already read are still answered (a request with the application too), then the
 * connection closes once its output is written; an incomplete one is dropped (conn_settle). */
static void on_eof(conn *c)
{
    c->eof = true;
    conn_process(c);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    c->kicked = false;
    conn_process(c);
}

/* Parses what ib holds in a fresh callback (never from inside hk_http_respond/proceed, so the
 * application is not re-entered). */
static void kick(conn *c)
{
    if (!c->kick) c->kick = event_new(c->srv->base, -1, 0, on_kick, c);
    if (!c->kick) abort(); /* only fails on OOM */
    c->kicked = true;
    event_active(c->kick, EV_TIMEOUT, 0);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    if (c->rstate == R_LINGER) {
        linger_read(c);
        return;
    }
    size_t room = ib_room(c);
    if (room > 0) {
        ssize_t n = recv(fd, c->ib + c->ib_end, room, 0);
        if (n > 0) {
            c->ib_end += (size_t)n;
        } else if (n == 0) {
            on_eof(c);
            return;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_close(c);
            return;
        }
    }
    conn_process(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    conn_process(arg);
}

static void on_rtimer(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    c->tkind = T_NONE;
    switch (c->rstate) {
    case R_HEAD:
        send_error(c, 408, "request_timeout", "the request headers were not received in time");
        conn_settle(c);
        break;
    case R_BODY:
        send_error(c, 408, "request_timeout", "the request body was not received in time");
        conn_settle(c);
        break;
    case R_IDLE:
        if (ob_pending(c) > 0) { /* idle before its last response is even written: finish it */
            set_state(c, R_CLOSING);
            conn_settle(c);
            break;
        }
        conn_close(c);
        break;
    default:
        conn_close(c);
        break;
    }
}

static void on_wtimer(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    c->wtimer_on = false;
    conn_close(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    hk_http_server *srv = arg;
    if (srv->draining) {
        evutil_closesocket(fd);
        return;
    }
    if (srv->lim.max_connections > 0 && srv->nconns >= srv->lim.max_connections) {
        if (!srv->whead) { /* every connection is with the application */
            evutil_closesocket(fd);
            return;
        }
        conn_close(srv->whead);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    hk_sock_bound_unsent(fd); /* the rest waits in the connection's output (bounded: O) */

    conn *c = hk_calloc(1, sizeof *c);
    c->srv = srv;
    c->fd = fd;
    c->minor = 1;
    hk_buf_init(&c->head, srv->lim.max_header_bytes);
    hk_buf_init(&c->body, srv->lim.max_body_bytes);
    hk_buf_init(&c->ob, HK_BUF_UNLIMITED);
    addr_str(sa, c->req.remote_addr, sizeof c->req.remote_addr);
    c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->rtimer = evtimer_new(srv->base, on_rtimer, c);
    c->wtimer = evtimer_new(srv->base, on_wtimer, c);
    if (!c->rev || !c->wev || !c->rtimer || !c->wtimer) abort(); /* only fails on OOM */
    list_push(&srv->conns, c);
    srv->nconns++;
    set_state(c, R_IDLE);
    conn_settle(c);
}

static void listeners_enable(hk_http_server *srv, bool on)
{
    for (int i = 0; i < srv->nls; i++) {
        if (on)
            evconnlistener_enable(srv->ls[i]);
        else
            evconnlistener_disable(srv->ls[i]);
    }
}

/* accept() failed: out of descriptors or memory leaves the connection in the backlog and the
 * listener readable, so pause accepting for a moment instead of spinning. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    hk_http_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        listeners_enable(srv, false);
        struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
        evtimer_add(srv->accept_retry, &tv);
    }
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    hk_http_server *srv = arg;
    if (!srv->draining) listeners_enable(srv, true);
}

/* ---- public API -------------------------------------------------------------------------- */

static const struct timeval *timeout_tv(hk_http_server *srv, int kind, int ms)
{
    if (ms <= 0) return NULL;
    struct timeval *tv = &srv->tvbuf[kind];
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
    const struct timeval *common = event_base_init_common_timeout(srv->base, tv);
    return common ? common : tv;
}

hk_http_server *hk_http_server_new(struct event_base *base, const hk_http_limits *lim,
                                   hk_http_handler handler, void *arg)
{
    hk_http_server *srv = hk_calloc(1, sizeof *srv);
    srv->base = base;
    srv->lim = *lim;
    if (srv->lim.max_header_bytes < 64) srv->lim.max_header_bytes = 64;
    if (srv->lim.max_headers < 0) srv->lim.max_headers = 0;
    srv->handler = handler;
    srv->arg = arg;
    srv->ib_max = HK_MAX((size_t)16384, srv->lim.max_header_bytes + 4096);
    srv->tv[T_HEADER] = timeout_tv(srv, T_HEADER, srv->lim.header_timeout_ms);
    srv->tv[T_BODY] = timeout_tv(srv, T_BODY, srv->lim.body_timeout_ms);
    srv->tv[T_IDLE] = timeout_tv(srv, T_IDLE, srv->lim.idle_timeout_ms);
    srv->tv[T_WRITE] = timeout_tv(srv, T_WRITE, srv->lim.write_timeout_ms);
    int lms =
        srv->lim.write_timeout_ms > 0 ? HK_MIN(srv->lim.write_timeout_ms, LINGER_MS) : LINGER_MS;
    srv->tv[T_LINGER] = timeout_tv(srv, T_LINGER, lms);
    srv->accept_retry = evtimer_new(base, on_accept_retry, srv);
    if (!srv->accept_retry) abort();
    hk_buf_init(&srv->err, ERR_BODY_MAX);
    srv->date_sec = -1;
    return srv;
}

int hk_http_server_listen(hk_http_server *srv, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host && *host ? host : NULL, ps, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", host ? host : "", gai_strerror(gai));
        return HK_EIO;
    }
    struct evconnlistener *l = NULL;
    int e = 0;
    for (struct addrinfo *ai = res; ai && !l; ai = ai->ai_next) {
        l = evconnlistener_new_bind(srv->base, on_accept, srv,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                        LEV_OPT_CLOSE_ON_EXEC,
                                    1024, ai->ai_addr, (int)ai->ai_addrlen);
        if (!l) e = errno;
    }
    freeaddrinfo(res);
    if (!l) {
        snprintf(err, errlen, "%s", strerror(e ? e : EINVAL));
        return HK_EIO;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    if (srv->draining) evconnlistener_disable(l);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    srv->ls = hk_realloc(srv->ls, (size_t)(srv->nls + 1) * sizeof *srv->ls);
    srv->ls[srv->nls++] = l;
    return 0;
}

int hk_http_server_port(const hk_http_server *srv)
{
    return srv->port;
}

void hk_http_server_drain(hk_http_server *srv)
{
    if (srv->draining) return;
    srv->draining = true;
    listeners_enable(srv, false);
    event_del(srv->accept_retry);
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->rstate != R_IDLE || c->busy) continue;
        if (ob_pending(c) == 0 && c->ib_end == c->ib_start) {
            conn_close(c);
        } else {
            c->linger = c->ib_end > c->ib_start;
            set_state(c, R_CLOSING);
            conn_settle(c);
        }
    }
}

int hk_http_server_pending(const hk_http_server *srv)
{
    return srv->pending;
}

int hk_http_server_connections(const hk_http_server *srv)
{
    return srv->nconns;
}

void hk_http_server_free(hk_http_server *srv)
{
    if (!srv) return;
    for (int i = 0; i < srv->nls; i++) evconnlistener_free(srv->ls[i]);
    free(srv->ls);
    event_free(srv->accept_retry);
    while (srv->conns) conn_close(srv->conns);
    conn *next;
    for (conn *z = srv->zombies; z; z = next) {
        next = z->next;
        z->srv = NULL;
        z->prev = z->next = NULL;
    }
    hk_buf_free(&srv->err);
    free(srv);
}

/* The application is done with req, which was a zombie (its client gone): frees it. Returns
 * 1 if it was one. */
static int zombie_done(conn *c)
{
    hk_http_server *srv = c->srv;
    if (srv) srv->pending--;
    if (!c->closed) return 0;
    if (srv) list_unlink(&srv->zombies, c);
    c->rstate = R_CLOSING;
    if (c->busy == 0) conn_settle(c); /* frees it */
    return 1;
}

static void respond(hk_http_req *req, int status, const char *ctype, const char *extra_headers,
                    const void *body, size_t len, int mode)
{
    conn *c = HK_CONTAINER_OF(req, conn, req);
    assert(with_app(c));
    bool gate = c->rstate == R_GATE;
    if (zombie_done(c)) { /* the client is gone, the response is dropped */
        if (mode == B_OWNED) free((void *)body);
        return;
    }
    hk_http_server *srv = c->srv;
    /* Answered from on_head: the body was never read, so the connection cannot go on. */
    bool ka = c->keep_alive && !srv->draining && !gate;
    append_response(c, status, ctype, extra_headers, body, len, !ka, mode);
    if (c->body.cap > BUF_KEEP) hk_buf_free(&c->body);
    if (ka) {
        set_state(c, R_IDLE);
    } else {
        /* unread requests or an unread body: do not reset on close */
        c->linger = gate || c->ib_end > c->ib_start;
        set_state(c, R_CLOSING);
    }
    if (c->busy) return; /* inside the handler: conn_process goes on */
    /* A later answer: write it now; parse a pipelined request in a fresh callback. */
    if (ka && c->ib_end > c->ib_start) kick(c);
    conn_settle(c);
}

void hk_http_respond(hk_http_req *req, int status, const char *ctype, const char *extra_headers,
                     const void *body, size_t len)
{
    respond(req, status, ctype, extra_headers, body, len, B_COPY);
}

void hk_http_respond_static(hk_http_req *req, int status, const char *ctype,
                            const char *extra_headers, const void *body, size_t len)
{
    respond(req, status, ctype, extra_headers, body, len, B_BORROWED);
}

void hk_http_respond_take(hk_http_req *req, int status, const char *ctype,
                          const char *extra_headers, void *body, size_t len)
{
    respond(req, status, ctype, extra_headers, body, len, B_OWNED);
}

void hk_http_proceed(hk_http_req *req)
{
    conn *c = HK_CONTAINER_OF(req, conn, req);
    assert(c->rstate == R_GATE);
    if (zombie_done(c)) return;
    begin_body(c);
    if (c->busy) return; /* inside on_head: conn_process goes on with the body */
    if (c->ib_end > c->ib_start) kick(c);
    conn_settle(c);
}

int hk_http_req_gone(const hk_http_req *req)
{
    const conn *c = HK_CONTAINER_OF(req, const conn, req);
    return c->closed ? 1 : 0;
}
