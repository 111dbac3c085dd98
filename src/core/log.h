/*
 * log.h: structured logs, one line per notable event, to stderr. Each line has a time, a
 * level, an event name ("delivery.retry") and typed fields; HOOKD_LOG_FORMAT picks the text
 * form
 *     2026-11-22T10:00:00.123Z INFO delivery.retry delivery_id=whde_x attempt=2 msg="timed out"
 * or one JSON object per line
 *     {"ts":"2026-11-22T10:00:00.123Z","level":"info","event":"delivery.retry",
 *      "delivery_id":"whde_x","attempt":2,"msg":"timed out"}
 * Lines are written with one write(2) each, so threads never interleave within a line.
 * Never pass a secret or an API key to a log call.
 *
 *     HK_LOG(HK_LOG_INFO, "delivery.retry", HK_LS("delivery_id", id), HK_LI("attempt", n));
 */
#ifndef HK_LOG_H
#define HK_LOG_H

#include <stdint.h>

enum hk_log_level { HK_LOG_DEBUG = 0, HK_LOG_INFO, HK_LOG_WARN, HK_LOG_ERROR, HK_LOG_OFF };
enum hk_log_ftype { HK_LF_END = 0, HK_LF_STR, HK_LF_INT, HK_LF_DBL };

typedef struct hk_log_field {
    const char *key;
    int type;      /* enum hk_log_ftype */
    const char *s; /* HK_LF_STR (NULL prints null / nothing) */
    int64_t i;     /* HK_LF_INT */
    double d;      /* HK_LF_DBL */
} hk_log_field;

#define HK_LS(k, v) ((hk_log_field){(k), HK_LF_STR, (v), 0, 0})
#define HK_LI(k, v) ((hk_log_field){(k), HK_LF_INT, NULL, (int64_t)(v), 0})
#define HK_LD(k, v) ((hk_log_field){(k), HK_LF_DBL, NULL, 0, (double)(v)})

extern int hk_log_min_level;

#define HK_LOG(level, event, ...)                                                                  \
    do {                                                                                           \
        if ((level) >= hk_log_min_level)                                                           \
            hk_log_emit((level), (event), (const hk_log_field[]){__VA_ARGS__, {0}});               \
    } while (0)

/* Sets format ("text"/"json") and minimum level ("debug"/"info"/"warn"/"error"). HK_EINVAL if
 * either name is unknown (nothing changed). Defaults before any call: text, info. */
int hk_log_setup(const char *format, const char *level);
/* Writes one line; fields end with a {0} entry. Safe from any thread. */
void hk_log_emit(int level, const char *event, const hk_log_field *fields);
/* Redirects output to fd (default 2). For tests. */
void hk_log_set_fd(int fd);

#endif
