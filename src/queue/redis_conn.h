/*
 * redis_conn.h: hookd's connection to Redis (REDIS_URL), shared by the Redis queue
 * (queue/redis.c) and the Redis rate limiter (queue/limiter_redis.c). Async hiredis on the
 * libevent loop, so nothing here blocks the loop except the DNS lookup of a host name at
 * (re)connect time (hiredis 0.14 resolves synchronously; use an IP address or a local name).
 *
 * The connection looks after itself: it reconnects with backoff (100 ms doubling to 2 s) after
 * a refused or lost connection, a failed AUTH/SELECT, or a Redis that stops answering (every
 * command, and a PING sent each second, must be answered within HK_REDIS_REPLY_TIMEOUT_MS).
 * Listeners hear every change between up and down. While it is down, commands are refused at
 * once (HK_EUNAVAIL) instead of being queued: callers decide what waiting means.
 *
 * Scripts: hk_redis_eval sends EVALSHA and, when Redis answers NOSCRIPT (first use, a restart,
 * SCRIPT FLUSH), sends the same call once as EVAL, which also caches the script again.
 *
 * Callbacks follow the usual rule: if a call fails, its callback never runs; if it succeeds,
 * the callback runs exactly once, on the loop, never from inside the call. reply is NULL when
 * no answer came (connection lost, timed out, or the connection is being freed); a reply of
 * type REDIS_REPLY_ERROR is passed as it is. The reply belongs to hiredis and is valid only
 * during the callback.
 *
 * Limits: hiredis 0.14 has no cap on the size of one reply; hookd's scripts bound every reply
 * they ask for (at most one claim batch of ids), and Redis is an operator-run dependency, not
 * network input. TLS (rediss://) and Redis Cluster are not supported.
 */
#ifndef HK_REDIS_CONN_H
#define HK_REDIS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/redis_url.h"

struct event_base;
struct redisReply;

#define HK_REDIS_REPLY_TIMEOUT_MS 5000

typedef struct hk_redis hk_redis;

/* A Lua script run with hk_redis_eval. Define it static with name and body; the SHA-1 is
 * computed on first use. */
typedef struct hk_redis_script {
    const char *name; /* for logs */
    const char *body;
    char sha[41];
} hk_redis_script;

typedef void (*hk_redis_cb)(struct redisReply *reply, void *arg);
/* up: 1 when the connection (with AUTH and SELECT) became usable, 0 when it was lost. */
typedef void (*hk_redis_state_fn)(void *arg, int up);

/* Parses url and starts connecting (returns at once; the first connect may still fail and is
 * retried). NULL with err when url is invalid. */
hk_redis *hk_redis_new(struct event_base *base, const char *url, char *err, size_t errlen);

/* Adds a listener of up/down changes (at most 4). fn is called on the loop. */
void hk_redis_listen(hk_redis *r, hk_redis_state_fn fn, void *arg);

/* 1 while connected and answering. */
int hk_redis_up(const hk_redis *r);

/* Counts the times Redis may have lost its data: every (re)connection, and every
 * hk_redis_data_lost. Starts at 0; 1 after the first connection. */
uint64_t hk_redis_epoch(const hk_redis *r);

/* A user found evidence that Redis lost its data while connected (FLUSHALL): bumps the epoch
 * and calls every listener with up = 1, as after a reconnection. */
void hk_redis_data_lost(hk_redis *r);

/* Sends one command (argv[0] is the command name; lens may be NULL for NUL-terminated args).
 * Returns 0 (cb runs later, exactly once; cb may be NULL) or HK_EUNAVAIL when Redis is down
 * (cb never runs). */
int hk_redis_cmd(hk_redis *r, hk_redis_cb cb, void *arg, int argc, const char **argv,
                 const size_t *lens);

/* Runs script with nkeys keys followed by the other arguments: argv holds keys then args
 * (argc of them in all; lens may be NULL). Same contract as hk_redis_cmd. */
int hk_redis_eval(hk_redis *r, hk_redis_script *script, int nkeys, int argc, const char **argv,
                  const size_t *lens, hk_redis_cb cb, void *arg);

/* Closes the connection: every pending callback runs with reply NULL, from inside this call;
 * then r is freed. Listeners are not called. NULL ok. */
void hk_redis_free(hk_redis *r);

#endif
