/*
 * common.c: the error table's names and messages, aborting allocation, the small string
 * helpers every file needs, and the send-queue bound of every TCP socket (see common.h).
 */
#include "core/common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *hk_errname(int rc)
{
    switch (rc) {
    case HK_OK:
        return "HK_OK";
#define HK_ERR_NAME(name, val, msg)                                                                \
    case name:                                                                                     \
        return #name;
        HK_ERRORS(HK_ERR_NAME)
#undef HK_ERR_NAME
    }
    return "HK_E?";
}

const char *hk_strerror(int rc)
{
    switch (rc) {
    case HK_OK:
        return "ok";
#define HK_ERR_MSG(name, val, msg)                                                                 \
    case name:                                                                                     \
        return msg;
        HK_ERRORS(HK_ERR_MSG)
#undef HK_ERR_MSG
    }
    return "unknown error";
}

static void oom(size_t n)
{
    fprintf(stderr, "hookd: out of memory allocating %zu bytes\n", n);
    abort();
}

void *hk_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *hk_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *hk_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *hk_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = hk_malloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

char *hk_strndup(const char *s, size_t n)
{
    if (!s) return NULL;
    size_t len = strnlen(s, n);
    char *d = hk_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

size_t hk_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

int hk_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s) return HK_EINVAL;
    const char *p = s;
    if (*p == '-') p++;
    if (!*p) return HK_EINVAL;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return HK_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end) return HK_EINVAL;
    if (v < min || v > max) return HK_EINVAL;
    *out = (int64_t)v;
    return HK_OK;
}

void hk_sock_bound_unsent(int fd)
{
    int lowat = HK_SOCK_UNSENT_MAX;
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
}
