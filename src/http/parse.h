/*
 * parse.h: the HTTP/1.1 request-head parser and the chunked-body decoder of hookd's server.
 * Pure functions: no allocation, no I/O, no global state, so each one can be unit-tested and
 * fuzzed on its own. The server (server.c) copies the bytes of a head into its own buffer,
 * finds its end with hk_http_head_end, parses it in place with hk_http_parse_head, and feeds a
 * chunked body through hk_http_chunked_step.
 *
 * Strictness (RFC 9112, minus what a webhook API never needs):
 *  - request line: `token SP request-target SP HTTP/1.x` and a line end; the target is
 *    origin-form (starts with '/', visible ASCII but '#') or "*" for OPTIONS; the absolute and
 *    authority forms are refused (400). HTTP/1.0 and 1.1 only: any other well-formed HTTP/d.d
 *    is 505.
 *  - head line ends are CRLF or a bare LF (chunked framing: CRLF only); a CR not followed by
 *    LF, or a NUL, anywhere is a 400.
 *    Empty lines before the request line are skipped (RFC 9112 §2.2).
 *  - header names are tokens directly followed by ':' (no whitespace before the colon); a line
 *    starting with SP/HTAB (obs-fold) is a 400; values may hold HTAB, SP, visible ASCII and
 *    bytes >= 0x80, nothing else (no CTL, no DEL).
 *  - Content-Length: digits only, every copy equal; Transfer-Encoding: exactly one field whose
 *    value is "chunked" (any case), anything else 501; both together 400; Transfer-Encoding
 *    in an HTTP/1.0 request 400. Host: exactly one for HTTP/1.1, at most one for 1.0, with
 *    authority characters only. Expect: "100-continue" or 417.
 */
#ifndef HK_HTTP_PARSE_H
#define HK_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

/* ---- end of head ------------------------------------------------------------------------- */

/* Resumable search for the blank line that ends a head. Zero it (or hk_http_scan_init) before
 * the first call of each request. */
typedef struct hk_http_scan {
    size_t pos;        /* bytes already looked at */
    size_t line_start; /* offset of the current (unfinished) line */
    int lines;         /* non-blank lines completed so far (request line + header lines) */
} hk_http_scan;

static inline void hk_http_scan_init(hk_http_scan *s)
{
    s->pos = 0;
    s->line_start = 0;
    s->lines = 0;
}

/* Looks for the end of a request head in buf[0..len). Returns the length of the head, through
 * the LF of the blank line that ends it, or 0 if buf does not hold a complete head yet.
 * Resumes where the previous call stopped (bytes before s->pos are not read again), so every
 * call for one request must see the same bytes at the same offsets, with more appended; this
 * makes a head that trickles in byte by byte cost O(n) in total. Blank lines before the first
 * non-blank line are part of the head (hk_http_parse_head skips them). Only LF is searched
 * for: the bytes are validated by hk_http_parse_head. After a complete head, s->lines is an
 * upper bound of the number of header fields + 1, for sizing the array given to the parser. */
size_t hk_http_head_end(const char *buf, size_t len, hk_http_scan *s);

/* ---- request head ------------------------------------------------------------------------ */

typedef struct hk_http_head {
    /* Request line. The strings point into the parsed buffer. */
    int method;             /* enum hk_http_method */
    const char *method_str; /* "POST" */
    const char *path;       /* "/a/b" or "*" */
    const char *query;      /* after '?', without it; NULL if no '?' */
    int minor;              /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    /* Header fields, in the caller's array. */
    int nheaders;
    /* Framing and connection semantics. */
    bool has_length;         /* a Content-Length was sent */
    uint64_t content_length; /* its value; UINT64_MAX if it does not fit (always over a cap) */
    bool chunked;            /* Transfer-Encoding: chunked */
    bool keep_alive; /* 1.1 unless "Connection: close"; 1.0 only with "Connection: keep-alive" */
    bool expect_continue; /* HTTP/1.1 and "Expect: 100-continue" */
    const char *host;     /* Host value or NULL */
    /* On failure: the status to answer (400, 417, 431, 501, 505), a short machine code and a
     * human message (static strings). */
    int status;
    const char *code;
    const char *message;
} hk_http_head;

/* Parses the complete request head buf[0..len) (as delimited by hk_http_head_end: it must end
 * with the LF of a blank line) in place: the SP after the method and target, the '?', the
 * colon of each header and the end of each trimmed value are overwritten with NUL, and header
 * names are lowercased, so that every string in out and hdrs points into buf and is
 * NUL-terminated. At most hdrcap headers are stored in hdrs; one more is a 431.
 * Returns 0, or HK_EPARSE with out->status/code/message set (the buffer is then garbage). */
int hk_http_parse_head(char *buf, size_t len, hk_http_header *hdrs, int hdrcap, hk_http_head *out);

/* ---- chunked body ------------------------------------------------------------------------ */

/* Streaming decoder of the chunked transfer coding (RFC 9112 §7.1): hex chunk sizes (leading
 * zeros allowed, at most 16 significant digits), chunk extensions after ';' (checked for
 * forbidden bytes, otherwise ignored, each size line at most HK_HTTP_CHUNK_LINE_MAX bytes),
 * CRLF line ends only (a bare LF anywhere in the framing is malformed: a proxy in front that
 * read it differently would split the body elsewhere), and a trailer section (header lines, checked
 * and ignored, at most max_trailer bytes). */
typedef struct hk_http_chunked {
    int state;
    uint64_t size;      /* current chunk: size being parsed, then bytes of data left */
    int digits;         /* significant hex digits of the size so far */
    size_t line;        /* bytes of the current size or trailer line */
    size_t total;       /* decoded bytes so far */
    size_t max_total;   /* cap on total */
    size_t trailer;     /* bytes of trailer section so far */
    size_t max_trailer; /* cap on trailer */
} hk_http_chunked;

#define HK_HTTP_CHUNK_LINE_MAX 4096

/* Starts decoding a body of at most max_total decoded bytes and max_trailer trailer bytes. */
void hk_http_chunked_init(hk_http_chunked *c, size_t max_total, size_t max_trailer);

/* Consumes bytes from in[0..len). Sets *used to the number of bytes consumed and, when some
 * chunk data was reached, *data and *datalen to a span of decoded bytes inside in (else *datalen
 * is 0). It stops after one data span, so callers loop until all input is used or the body is
 * complete:
 *   1: the body is complete (last chunk and trailers read); bytes after *used are the next
 *      request's.
 *   0: more input is needed (or call again with the rest of in).
 *   HK_EPARSE: malformed, including a size of more than 16 significant hex digits and a size
 *      line longer than HK_HTTP_CHUNK_LINE_MAX (400);
 *   HK_ETOOBIG: a chunk size that would take the body over max_total (known before its data
 *      is read), or trailers over max_trailer (413).
 * After an error or completion, further calls return the same result and consume nothing. */
int hk_http_chunked_step(hk_http_chunked *c, const char *in, size_t len, size_t *used,
                         const char **data, size_t *datalen);

#endif
