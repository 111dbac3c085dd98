/*
 * redis_url.c: the REDIS_URL parser (see redis_url.h): redis://[[user]:password@]host[:port][/db]
 * with %-encoded credentials and [IPv6] hosts, or unix:///path[?db=N]. Error messages never
 * repeat the password.
 */
#include "core/redis_url.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) %-decoded into out (size cap). HK_EINVAL on a bad escape or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return HK_EINVAL;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return HK_EINVAL;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) return HK_EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return HK_OK;
}

static int parse_db(const char *s, int *db)
{
    int64_t v;
    if (hk_parse_int64(s, 0, 100000, &v)) return HK_EINVAL;
    *db = (int)v;
    return HK_OK;
}

int hk_redis_url_parse(const char *url, hk_redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || !url[0]) {
        snprintf(err, errlen, "it is empty");
        return HK_EINVAL;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen,
                 "TLS (rediss://) is not supported; use redis:// on a "
                 "trusted network or a local TLS tunnel");
        return HK_EINVAL;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7, *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || p[0] != '/' || n >= sizeof out->path) {
            snprintf(err, errlen,
                     "unix:// needs an absolute socket path "
                     "(unix:///run/redis.sock)");
            return HK_EINVAL;
        }
        memcpy(out->path, p, n);
        out->path[n] = '\0';
        if (q) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db)) {
                snprintf(err, errlen, "the only query allowed is ?db=<0..100000>");
                return HK_EINVAL;
            }
        }
        return HK_OK;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen,
                 "it must start with redis:// or unix:// "
                 "(redis://[:password@]host[:port][/db])");
        return HK_EINVAL;
    }
    const char *p = url + 8;
    const char *slash = strchr(p, '/');
    const char *auth_end = NULL;
    for (const char *a = p; *a && (!slash || a < slash); a++)
        if (*a == '@') auth_end = a; /* the last '@' before the path */
    if (auth_end) {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        const char *ue = colon ? colon : auth_end;
        if (pct_decode(p, (size_t)(ue - p), out->user, sizeof out->user) ||
            (colon &&
             pct_decode(colon + 1, (size_t)(auth_end - colon - 1), out->pass, sizeof out->pass))) {
            snprintf(err, errlen,
                     "the user or password is too long or badly "
                     "%%-encoded");
            return HK_EINVAL;
        }
        p = auth_end + 1;
    }
    const char *host_end = slash ? slash : p + strlen(p);
    const char *port_at = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(host_end - p));
        if (!rb || rb == p + 1) {
            snprintf(err, errlen, "unterminated [IPv6] host");
            return HK_EINVAL;
        }
        if ((size_t)(rb - p - 1) >= sizeof out->host) goto bad_host;
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        out->host[rb - p - 1] = '\0';
        if (rb + 1 < host_end) {
            if (rb[1] != ':') goto bad_host;
            port_at = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(host_end - p));
        const char *he = colon ? colon : host_end;
        if (he == p || (size_t)(he - p) >= sizeof out->host) goto bad_host;
        memcpy(out->host, p, (size_t)(he - p));
        out->host[he - p] = '\0';
        if (colon) port_at = colon + 1;
    }
    for (const char *h = out->host; *h; h++)
        if (*h == '@' || *h == '/' || *h == '?' || *h == '#' || *h == ' ' || *h == '[' ||
            *h == ']' || (!strchr(out->host, ':') && *h == ':'))
            goto bad_host;
    if (port_at) {
        char ps[8];
        size_t n = (size_t)(host_end - port_at);
        int64_t v;
        if (n == 0 || n >= sizeof ps) goto bad_port;
        memcpy(ps, port_at, n);
        ps[n] = '\0';
        if (hk_parse_int64(ps, 1, 65535, &v)) goto bad_port;
        out->port = (int)v;
    }
    if (slash && slash[1]) {
        if (parse_db(slash + 1, &out->db)) {
            snprintf(err, errlen,
                     "the path must be a database number "
                     "(redis://host:6379/0)");
            return HK_EINVAL;
        }
    }
    return HK_OK;
bad_host:
    snprintf(err, errlen, "missing or malformed host (redis://host[:port][/db])");
    return HK_EINVAL;
bad_port:
    snprintf(err, errlen, "the port must be a number in 1..65535");
    return HK_EINVAL;
}
