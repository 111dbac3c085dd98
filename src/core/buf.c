/*
 * buf.c: the capped growable buffer (see buf.h).
 */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hk_buf_init(hk_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void hk_buf_free(hk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int hk_buf_reserve(hk_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n) return HK_ETOOBIG;
    size_t need = b->len + n + 1; /* + NUL */
    if (need <= b->cap) return HK_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap < ((size_t)1 << 30) ? cap * 2 : cap + ((size_t)1 << 30);
    b->data = hk_realloc(b->data, cap);
    b->cap = cap;
    return HK_OK;
}

int hk_buf_append(hk_buf *b, const void *p, size_t n)
{
    if (n == 0) return HK_OK;
    int rc = hk_buf_reserve(b, n);
    if (rc) return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return HK_OK;
}

int hk_buf_puts(hk_buf *b, const char *s)
{
    return hk_buf_append(b, s, strlen(s));
}

int hk_buf_putc(hk_buf *b, char c)
{
    int rc = hk_buf_reserve(b, 1);
    if (rc) return rc;
    b->data[b->len++] = c;
    return HK_OK;
}

int hk_buf_vprintf(hk_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0) return HK_EINVAL;
    if ((size_t)n < sizeof small) return hk_buf_append(b, small, (size_t)n);
    int rc = hk_buf_reserve(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return HK_OK;
}

int hk_buf_printf(hk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = hk_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *hk_buf_cstr(hk_buf *b)
{
    if (!b->data) return "";
    b->data[b->len] = '\0';
    return b->data;
}

char *hk_buf_steal(hk_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = hk_malloc(1);
        p[0] = '\0';
    } else {
        p[b->len] = '\0';
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
