/*
 * buf.h: a growable byte buffer with a hard cap. Every buffer that the network or a tenant
 * can fill is an hk_buf with a `max`: growing past it fails with HK_ETOOBIG and leaves the
 * buffer as it was, so a hostile peer costs at most `max` bytes, never an OOM.
 *
 * `data` always has room for a terminating NUL after `len` bytes (hk_buf_cstr writes it), so
 * the contents can be used as a C string when they hold text.
 */
#ifndef HK_BUF_H
#define HK_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/common.h"

typedef struct hk_buf {
    char *data; /* NULL until the first append */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated (one more than the usable room, for the NUL) */
    size_t max; /* hard cap on len */
} hk_buf;

#define HK_BUF_UNLIMITED ((size_t)-1 / 2)

/* Starts an empty buffer that may hold at most `max` bytes. Allocates nothing. */
void hk_buf_init(hk_buf *b, size_t max);
/* Frees the memory; the buffer is then empty and may be reused (same max). */
void hk_buf_free(hk_buf *b);
/* Empties the buffer, keeping its memory. */
static inline void hk_buf_reset(hk_buf *b)
{
    b->len = 0;
}

/* Makes room for `n` more bytes. HK_ETOOBIG if len + n would pass max. */
int hk_buf_reserve(hk_buf *b, size_t n);
/* Appends n bytes / a C string / one byte / printf output. HK_ETOOBIG past max (buffer
 * unchanged). */
int hk_buf_append(hk_buf *b, const void *p, size_t n);
int hk_buf_puts(hk_buf *b, const char *s);
int hk_buf_putc(hk_buf *b, char c);
int hk_buf_printf(hk_buf *b, const char *fmt, ...) HK_PRINTF(2, 3);
int hk_buf_vprintf(hk_buf *b, const char *fmt, va_list ap) HK_PRINTF(2, 0);

/* NUL-terminates and returns data ("" for an empty buffer; never NULL). */
const char *hk_buf_cstr(hk_buf *b);
/* Hands the memory to the caller (NUL-terminated, free with free()); the buffer is emptied.
 * Returns an allocated "" for an empty buffer. */
char *hk_buf_steal(hk_buf *b);

#endif
