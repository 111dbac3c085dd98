/*
 * redis_url.h: REDIS_URL's syntax, parsed without connecting. The option table (core/config.c)
 * checks it at start-up, so that a malformed URL stops hookd with exit code 2 and the option
 * named, like every other bad value; the connection (queue/redis_conn.c) parses it again to
 * connect. A pure function: no I/O, no allocation.
 */
#ifndef HK_REDIS_URL_H
#define HK_REDIS_URL_H

#include <stddef.h>

/* REDIS_URL, parsed: redis://[[user]:password@]host[:port][/db] (user and password may be
 * %-encoded; IPv6 hosts in brackets) or unix:///path/to/redis.sock[?db=N]. */
typedef struct hk_redis_url {
    char host[256]; /* empty for a unix socket */
    int port;       /* default 6379 */
    char path[256]; /* unix socket path, or empty */
    char user[128];
    char pass[256];
    int db; /* SELECTed after connecting when not 0 */
} hk_redis_url;

/* Parses url into out. HK_EINVAL with err when it is not a URL of the forms above: what is
 * wrong, without the option's name (the caller says which option) and never the password. */
int hk_redis_url_parse(const char *url, hk_redis_url *out, char *err, size_t errlen);

#endif
