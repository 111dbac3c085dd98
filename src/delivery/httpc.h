/*
 * httpc.h: the outbound HTTP client, libcurl's multi-socket API driven by the libevent loop.
 * One POST at a time per call; connections are kept alive and reused per host by the multi
 * handle; redirects are never followed; the whole exchange has one deadline
 * (HOOKD_HTTP_TIMEOUT_MS); the response body is kept up to HOOKD_RESPONSE_BODY_MAX bytes and the
 * transfer is ended once that much has arrived (the status is what counts); response headers
 * are kept up to 16 KiB and 100 lines (capture.h: the response is captured by a pure struct
 * API and reported as text that is valid whatever the receiver sent). The connect-time guard
 * (ssrf.h) checks every address before a socket connects.
 */
#ifndef HK_HTTPC_H
#define HK_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct event_base;

typedef struct hk_httpc hk_httpc;
typedef struct hk_httpc_xfer hk_httpc_xfer;

typedef struct hk_httpc_resp {
    int status;  /* HTTP status, 0 if no response arrived */
    int refused; /* policy said no, nothing was sent (final, not retried): the
                    SSRF guard refused every address of the host, or the url is
                    http under HOOKD_HTTPS_ONLY */
    int timed_out;
    const char *error; /* human-readable failure when status is 0, else NULL */
    const char *body;  /* the body kept (capped) as text: valid UTF-8, no NUL inside,
                          HK_CAPTURE_TRUNCATED_MARK at the end if cut; NUL-terminated */
    size_t body_len;
    const char *headers_json; /* response headers as a compact JSON object, or NULL */
    const char *retry_after;  /* the first Retry-After header's value, or NULL */
    int64_t duration_ms;
} hk_httpc_resp;

/* Called once per transfer with its outcome; resp and its strings are valid only during the
 * call. */
typedef void (*hk_httpc_cb)(void *arg, const hk_httpc_resp *resp);

/* A client on base configured from cfg (timeouts, TLS, CA file, allowed networks). Returns
 * NULL with err on failure. */
hk_httpc *hk_httpc_new(struct event_base *base, const hk_config *cfg, char *err, size_t errlen);

/* Starts POSTing body (not copied: it must stay valid until the callback) to url with the
 * header lines in headers ("Name: value" separated by '\n'; copied), with a total deadline of
 * timeout_ms (<= 0: HOOKD_HTTP_TIMEOUT_MS). cb runs once, later, never from inside this call.
 * Returns the transfer (for hk_httpc_cancel) or NULL if curl refused to start it (cb then
 * never runs). */
hk_httpc_xfer *hk_httpc_post(hk_httpc *c, const char *url, const char *body, size_t len,
                             const char *headers, int timeout_ms, hk_httpc_cb cb, void *arg);

/* Aborts a transfer; its callback will not run. */
void hk_httpc_cancel(hk_httpc *c, hk_httpc_xfer *x);

/* Transfers started and not yet called back. */
int hk_httpc_inflight(const hk_httpc *c);

/* Cancels everything (no callbacks) and frees the client. */
void hk_httpc_free(hk_httpc *c);

#endif
