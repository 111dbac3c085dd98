/*
 * common.h: what every hookd file includes. The error-code table (negative HK_E* ints, with
 * names and messages), allocation that aborts on out-of-memory (every buffer fed from the
 * network has its own cap, so running out of memory is a bug or a dying machine, not input),
 * and a few small macros.
 *
 * Convention: functions return int, 0 (HK_OK) on success and a negative HK_E* code on failure.
 * A human-readable message travels through a caller's `char *err, size_t errlen` only where a
 * person reads it (configuration, API errors).
 */
#ifndef HK_COMMON_H
#define HK_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_OK 0

/* X-macro table: name, value, message. Keep values stable: they appear in logs. */
#define HK_ERRORS(X)                                                                               \
    X(HK_ENOMEM, -1, "out of memory")                                                              \
    X(HK_EINVAL, -2, "invalid argument")                                                           \
    X(HK_ENOTFOUND, -3, "not found")                                                               \
    X(HK_ECONFLICT, -4, "conflict")                                                                \
    X(HK_ETOOBIG, -5, "too large")                                                                 \
    X(HK_EUNAVAIL, -6, "dependency unavailable")                                                   \
    X(HK_EIO, -7, "input/output error")                                                            \
    X(HK_EPARSE, -8, "parse error")                                                                \
    X(HK_EAGAIN, -9, "try again")                                                                  \
    X(HK_EEXIST, -10, "already exists")                                                            \
    X(HK_ELIMIT, -11, "limit reached")                                                             \
    X(HK_ESHUTDOWN, -12, "shutting down")                                                          \
    X(HK_EDENIED, -13, "denied")                                                                   \
    X(HK_ETIMEOUT, -14, "timed out")                                                               \
    X(HK_EINTERNAL, -15, "internal error")

enum hk_err {
#define HK_ERR_ENUM(name, val, msg) name = (val),
    HK_ERRORS(HK_ERR_ENUM)
#undef HK_ERR_ENUM
};

/* Name ("HK_ENOTFOUND") and message ("not found") of an error code; "HK_OK"/"ok" for 0 and
 * "HK_E?"/"unknown error" for a value not in the table. Never NULL. */
const char *hk_errname(int rc);
const char *hk_strerror(int rc);

#define HK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HK_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define HK_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define HK_UNUSED(x)    ((void)(x))
#define HK_LIKELY(x)    __builtin_expect(!!(x), 1)
#define HK_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define HK_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* container_of: the struct that holds `ptr` as its member `member`. */
#define HK_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Allocation that never returns NULL: on failure it prints a line and aborts. */
void *hk_malloc(size_t n);
void *hk_calloc(size_t count, size_t size);
void *hk_realloc(void *p, size_t n);
char *hk_strdup(const char *s);            /* NULL in, NULL out */
char *hk_strndup(const char *s, size_t n); /* copies at most n bytes, always NUL-terminated */

/* Banned: sprintf, strcpy, strcat, strtok, atoi, gets. Use snprintf, hk_strlcpy, hk_buf. */
size_t hk_strlcpy(char *dst, const char *src, size_t size);

/* Strict integer parse of the whole string s (optional leading '-', decimal digits, no
 * spaces); HK_EINVAL if s is empty, has other characters or the value is outside [min,max]. */
int hk_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Bounds what the kernel holds unsent in TCP socket fd's send queue to HK_SOCK_UNSENT_MAX
 * (TCP_NOTSENT_LOWAT: a write is taken only while less than that is unsent). Every TCP socket
 * hookd writes to gets it, accepted (http/server.c) or opened (delivery/httpc.c): without it a
 * peer that never reads makes the kernel hold up to tcp_wmem's maximum (4 MiB) per socket, and
 * 1,000 such peers took the host's TCP memory past its pressure mark, which stalls every
 * connection on the host. What is not yet taken stays in the writer's own buffer. Best effort:
 * a failure leaves the socket as it was. */
#define HK_SOCK_UNSENT_MAX (128 * 1024)
void hk_sock_bound_unsent(int fd);

#endif
