/*
 * capture.h: what hookd keeps of an endpoint's answer, as a small struct API with no network
 * in it. libcurl's header and body callbacks (httpc.c) feed it the bytes as they arrive; the
 * fuzz target (fuzz/fuzz_response.c) feeds it the same way from a file. Everything in it comes
 * from the receiver and is hostile: bytes of any value, lines of any length, any number.
 *
 * Caps (each a hard limit on memory, whatever the receiver sends):
 *   - header lines of the final response: HK_CAPTURE_HEADER_BYTES raw bytes and
 *     HK_CAPTURE_HEADER_LINES lines; a line past either cap is dropped whole;
 *   - the body: its first body_max bytes; once more arrives, it is dropped and the body is
 *     marked truncated.
 *
 * What comes out is text every store can hold and every JSON writer can render: valid UTF-8
 * with no NUL byte (hk_capture_text). Other control bytes are kept; the JSON writer escapes
 * them (\u0001...). The stored text is then the same on SQLite and PostgreSQL.
 */
#ifndef HK_CAPTURE_H
#define HK_CAPTURE_H

#include <stddef.h>

#include "core/buf.h"

#define HK_CAPTURE_HEADER_BYTES (16 * 1024)
#define HK_CAPTURE_HEADER_LINES 100
/* Appended to a body that was longer than the cap (docs/API.md). */
#define HK_CAPTURE_TRUNCATED_MARK "\n[truncated by hookd]"

typedef struct hk_capture {
    hk_buf hdrs;        /* raw header lines of the latest response, status line first */
    hk_buf body;        /* raw body bytes, at most body_max */
    int nlines;         /* header lines kept after the status line */
    int body_truncated; /* body bytes past body_max arrived and were dropped */
} hk_capture;

/* An empty capture keeping at most body_max body bytes. Allocates nothing. */
void hk_capture_init(hk_capture *cp, size_t body_max);
/* Frees the memory; the capture may be reused after hk_capture_init. */
void hk_capture_free(hk_capture *cp);

/* One header line as curl hands it over: the status line, "Name: value\r\n", or the blank line
 * ending the headers (ignored). A status line ("HTTP/...") starts a new response: what a 1xx
 * interim answer sent before is forgotten. Lines past the caps are dropped. */
void hk_capture_header(hk_capture *cp, const char *line, size_t n);

/* A chunk of the body. Returns n if all of it was kept; less (possibly 0) once the cap is
 * reached, with body_truncated set: the caller stops reading then. */
size_t hk_capture_body(hk_capture *cp, const char *p, size_t n);

/* Appends the headers (status line excluded) as a JSON object to out: names lowercased,
 * values without surrounding blanks, names and values as hk_capture_text; a name that came
 * several times (in any case) appears once, its values joined with ", " in arrival order.
 * Lines without a colon, with an empty name or starting with a blank are skipped. If ra is
 * not NULL it is reset and receives the first Retry-After value (raw bytes, trimmed).
 * Returns 0, or HK_ETOOBIG if out's cap is too small (at most 6 bytes per raw header byte
 * plus 8 per line are needed). */
int hk_capture_headers_json(const hk_capture *cp, hk_buf *out, hk_buf *ra);

/* Appends the body as text to out (hk_capture_text), followed by HK_CAPTURE_TRUNCATED_MARK if
 * it was truncated. Returns 0 or HK_ETOOBIG (at most 3 bytes per raw byte plus the mark). */
int hk_capture_body_text(const hk_capture *cp, hk_buf *out);

/* Appends s[0..n) to out as valid UTF-8 without NUL: well-formed UTF-8 as is; each NUL byte and
 * each maximal ill-formed subpart as U+FFFD. Returns 0 or HK_ETOOBIG (out unchanged). */
int hk_capture_text(hk_buf *out, const char *s, size_t n);

#endif
