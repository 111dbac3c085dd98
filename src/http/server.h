/*
 * server.h: hookd's HTTP/1.1 server on libevent.
 *
 * Why not evhttp: evhttp answers its own errors (413, 400, timeouts) with HTML pages and offers
 * no hook to change that, and it gives no control over slow or idle connections beyond one
 * timeout. The API promises JSON errors for everything and must survive slowloris and 10,000
 * idle connections, so hookd parses HTTP itself; the parser is small and fuzzed.
 *
 * What it does:
 *  - HTTP/1.0 and 1.1, keep-alive, pipelined requests answered in order (one at a time per
 *    connection: the next request is parsed only after the previous response was queued, and
 *    only while less than 16 KiB of output waits for a client that does not read; reading
 *    from it stops too). A client that half-closes (shutdown SHUT_WR) after its requests gets
 *    every complete one answered, then the connection closes.
 *  - A request with a body is shown to limits.on_head first (the API checks the key there,
 *    asynchronously if need be): nothing of the body is read or buffered, and no 100 Continue
 *    sent, before it says hk_http_proceed; refused, the request is answered and the connection
 *    closed with its body unread.
 *  - Request bodies by Content-Length or chunked transfer coding (CRLF framing only);
 *    `Expect: 100-continue` answered with 100 (or with 413 when the declared length is over
 *    the cap).
 *  - Hard caps: request line + headers (max_header_bytes), header count (max_headers), body
 *    (max_body_bytes; 413 as soon as it is known to be over). Bad syntax, CR/LF/NUL where they
 *    may not be, duplicate or conflicting Content-Length, Transfer-Encoding other than chunked:
 *    400 (or 501 for an unknown coding) and the connection is closed.
 *  - Timeouts: headers must be complete within header_timeout_ms of the request's first byte
 *    (slowloris), the body within body_timeout_ms, an idle keep-alive connection is closed
 *    after idle_timeout_ms, a response must drain within write_timeout_ms.
 *  - At most max_connections open; when full, the connection that has gone longest without
 *    progress (idle, still sending headers, or a body that stalled or trickles: each KiB of
 *    body counts as progress, header bytes do not) is closed to make room, so connections
 *    stopped or trickling mid-body cannot lock new clients out. Only connections whose
 *    request is with the application are never closed for room.
 *  - Output is one flat buffer per connection plus bodies written in place: borrowed
 *    (hk_http_respond_static: cached files written from their one copy) or handed over
 *    (hk_http_respond_take). Memory per connection: the formula in docs/RELIABILITY.md.
 *  - Every error it produces itself is JSON, made by the limits' `error_body` callback.
 *
 * Requests are handed to one handler callback with the whole body in memory (after on_head,
 * for those with a body). The handler (or anything later on the loop thread) must call one of
 * the hk_http_respond functions exactly once per request, even if the client has gone away in
 * the meantime (the response is then dropped and the request freed). All functions here run
 * on the loop thread only.
 */
#ifndef HK_HTTP_SERVER_H
#define HK_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/common.h"

struct event_base;

enum hk_http_method {
    HK_HTTP_OTHER = 0,
    HK_HTTP_GET,
    HK_HTTP_HEAD,
    HK_HTTP_POST,
    HK_HTTP_PUT,
    HK_HTTP_PATCH,
    HK_HTTP_DELETE,
    HK_HTTP_OPTIONS,
};

typedef struct hk_http_header {
    const char *name;  /* lowercased, NUL-terminated */
    const char *value; /* leading/trailing whitespace trimmed, NUL-terminated */
} hk_http_header;

typedef struct hk_http_req {
    int method;             /* enum hk_http_method */
    const char *method_str; /* as sent, e.g. "POST" */
    const char *path;       /* raw path without the query, e.g. "/api/webhook/v1/wh_x" */
    const char *query;      /* raw query without '?', or NULL */
    const hk_http_header *headers;
    int nheaders;
    const char *body; /* NUL-terminated copy of the body (decoded if chunked); "" if none */
    size_t body_len;
    char remote_addr[64]; /* "127.0.0.1" / "::1" */
    int64_t start_us;     /* monotonic µs when the request's first byte arrived */
    void *udata;          /* free for the handler */
} hk_http_req;

/* Value of the first header named lname (lowercase), or NULL. */
const char *hk_http_header_get(const hk_http_req *req, const char *lname);

/* Writes the percent-decoded value of query parameter `key` into out (NUL-terminated).
 * Returns 0 if found, HK_ENOTFOUND if absent, HK_ETOOBIG if it does not fit in outlen,
 * HK_EINVAL if the value decodes to bytes with a NUL or bad %-escape. '+' decodes to space. */
int hk_http_query_get(const char *query, const char *key, char *out, size_t outlen);

typedef void (*hk_http_handler)(hk_http_req *req, void *arg);

typedef struct hk_http_limits {
    size_t max_body_bytes;   /* default 1 MiB */
    size_t max_header_bytes; /* request line + headers, default 16 KiB */
    int max_headers;         /* default 100 */
    int header_timeout_ms;   /* default 10000 */
    int body_timeout_ms;     /* default 30000 */
    int idle_timeout_ms;     /* default 60000 */
    int write_timeout_ms;    /* default 30000 */
    int max_connections;     /* default 16384 */
    /* Fills out with the JSON body of an error the server produces itself (status, a short
     * code like "payload_too_large", a message). NULL: a minimal built-in JSON body. */
    void (*error_body)(hk_buf *out, int status, const char *code, const char *message);
    /* Called (with the handler's arg) for a request that has a body, as soon as its head is
     * parsed: before any byte of the body is read or buffered and before 100 Continue. The
     * request has its head (body ""). The connection is paused (nothing read, no timeout)
     * until the callback, now or later on the loop, calls exactly one of hk_http_proceed
     * (read the body, then the handler gets the whole request) or hk_http_respond (answer
     * now: the body is never read, and the connection closes after the answer). NULL: every
     * body is read. Requests without a body go straight to the handler. */
    hk_http_handler on_head;
} hk_http_limits;

/* Sets every field to its default. */
void hk_http_limits_default(hk_http_limits *lim);

typedef struct hk_http_server hk_http_server;

/* Creates a server on base; lim is copied. Nothing listens until hk_http_server_listen. */
hk_http_server *hk_http_server_new(struct event_base *base, const hk_http_limits *lim,
                                   hk_http_handler handler, void *arg);

/* Binds and listens on host:port (host "0.0.0.0", "::", "127.0.0.1"...; port 0 picks a free
 * one). May be called more than once for several addresses. Returns 0 or HK_EIO with err. */
int hk_http_server_listen(hk_http_server *srv, const char *host, int port, char *err,
                          size_t errlen);

/* The port actually bound by the last successful listen (useful with port 0). */
int hk_http_server_port(const hk_http_server *srv);

/* Stops accepting new connections; existing ones finish their current request and close
 * (keep-alive is turned off). Used for graceful shutdown. */
void hk_http_server_drain(hk_http_server *srv);

/* Number of requests handed to the handler and not yet answered. */
int hk_http_server_pending(const hk_http_server *srv);

/* Number of open connections. */
int hk_http_server_connections(const hk_http_server *srv);

/* Closes everything immediately and frees the server. Requests still waiting for their
 * response stay valid until answered with hk_http_respond (which then only frees them). */
void hk_http_server_free(hk_http_server *srv);

/* Answers req: status line, Content-Type (if ctype), Content-Length, Date, the caller's
 * extra_headers (NULL or "Name: value\r\n..." lines, already validated), Connection as
 * negotiated, then body. Copies what it needs: the caller keeps ownership of its arguments.
 * After this call req is invalid. Must be called exactly once per request. */
void hk_http_respond(hk_http_req *req, int status, const char *ctype, const char *extra_headers,
                     const void *body, size_t len);

/* hk_http_respond, but body is not copied: it is written from where it lies, so it must stay
 * valid and unchanged as long as the server may write it. For memory that lives as long as
 * the process (cached static files): 1,000 clients fetching a 1.7 MB file cost one copy. */
void hk_http_respond_static(hk_http_req *req, int status, const char *ctype,
                            const char *extra_headers, const void *body, size_t len);

/* hk_http_respond, but the server takes body (allocated with malloc) instead of copying it,
 * and frees it once written (or dropped). For large responses built for one request. */
void hk_http_respond_take(hk_http_req *req, int status, const char *ctype,
                          const char *extra_headers, void *body, size_t len);

/* For a request given to limits.on_head: read its body, then hand it to the handler. After
 * this call the request belongs to the server until the handler gets it (which may never
 * happen: a body over the cap, malformed or too slow is answered by the server itself). */
void hk_http_proceed(hk_http_req *req);

/* 1 if the client of req has disconnected (a response would be dropped), else 0. */
int hk_http_req_gone(const hk_http_req *req);

/* Reason phrase of a status code ("Not Found"); "Unknown" for unlisted codes. */
const char *hk_http_reason(int status);

#endif
