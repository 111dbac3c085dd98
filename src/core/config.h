/*
 * config.h: every option hookd has, in one table (config.c), read from (lowest to highest
 * priority) built-in defaults, a `.env` file in the working directory, the environment, and
 * `--flag` arguments. The seed system's variable names are honoured as they are (PORT, PG_URL,
 * REDIS_URL, NATS_URL, BASE_URL, NODE_ENV, WEBHOOK_ENCRYPTION_KEY,
 * NODE_TLS_REJECT_UNAUTHORIZED); every other option is HOOKD_<NAME>, and each option is also
 * the flag --<name> (lowercase, '_' -> '-', the HOOKD_ prefix dropped: HOOKD_HTTP_TIMEOUT_MS is
 * --http-timeout-ms, PG_URL is --pg-url).
 *
 * A bad value stops start-up with a message that names the option and says what is allowed.
 * `hookd --help` prints the table: every option, its flag, default and meaning.
 */
#ifndef HK_CONFIG_H
#define HK_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/common.h"

#define HK_CONFIG_MAX_NETWORKS 64

/* One CIDR block of HOOKD_ALLOW_NETWORKS, IPv4 held as IPv4-mapped IPv6. */
typedef struct hk_cidr {
    uint8_t addr[16];
    int prefix; /* 0..128 (IPv4 blocks: 96 + their prefix) */
} hk_cidr;

typedef struct hk_config {
    /* server */
    int port;                     /* PORT */
    char *host;                   /* HOOKD_HOST */
    char *base_url;               /* BASE_URL */
    char *node_env;               /* NODE_ENV */
    int max_body_bytes;           /* HOOKD_MAX_BODY_BYTES */
    int max_connections;          /* HOOKD_MAX_CONNECTIONS */
    int shutdown_timeout_ms;      /* HOOKD_SHUTDOWN_TIMEOUT_MS */
    char *metrics_key;            /* HOOKD_METRICS_KEY */
    char *swagger_ui_dir;         /* HOOKD_SWAGGER_UI_DIR */
    char *ui_dir;                 /* HOOKD_UI_DIR */
    char *portal_origins;         /* HOOKD_PORTAL_ORIGINS */
    int ingest_rate_limit;        /* HOOKD_INGEST_RATE_LIMIT: events/s per organization, 0 = off */
    int max_webhooks_per_org;     /* HOOKD_MAX_WEBHOOKS_PER_ORG, 0 = unlimited */
    int max_deliveries_per_event; /* HOOKD_MAX_DELIVERIES_PER_EVENT, 0 = unlimited */
    int max_deliveries_per_batch; /* HOOKD_MAX_DELIVERIES_PER_BATCH, 0 = unlimited */
    /* store */
    char *db_path;        /* HOOKD_DB */
    char *sqlite_sync;    /* HOOKD_SQLITE_SYNC: "full" | "normal" */
    char *pg_url;         /* PG_URL */
    int pg_pool;          /* HOOKD_PG_POOL */
    char *encryption_key; /* WEBHOOK_ENCRYPTION_KEY (64 hex or empty) */
    uint8_t enc_key[32];  /* decoded encryption_key */
    int has_enc_key;
    /* keys */
    char *bootstrap_key; /* HOOKD_BOOTSTRAP_KEY */
    char *bootstrap_org; /* HOOKD_BOOTSTRAP_ORG */
    /* tenancy: an admin key (of no organization) made sure to exist */
    char *bootstrap_admin_key; /* HOOKD_BOOTSTRAP_ADMIN_KEY */
    /* retention (0 = off: kept) */
    char *retention_str;            /* HOOKD_RETENTION as given */
    int64_t retention_ms;           /* parsed */
    char *retention_unmatched_str;  /* HOOKD_RETENTION_UNMATCHED as given */
    int64_t retention_unmatched_ms; /* parsed */
    int prune_batch;                /* HOOKD_PRUNE_BATCH */
    int prune_interval_ms;          /* HOOKD_PRUNE_INTERVAL_MS */
    /* queue / cluster */
    char *redis_url;       /* REDIS_URL */
    char *redis_prefix;    /* HOOKD_REDIS_PREFIX */
    int sweep_interval_ms; /* HOOKD_SWEEP_INTERVAL_MS */
    char *node_id;         /* HOOKD_NODE_ID ("" = generated at start) */
    int lease_ms;          /* HOOKD_LEASE_MS */
    int poll_interval_ms;  /* HOOKD_POLL_INTERVAL_MS */
    int queue_window;      /* HOOKD_QUEUE_WINDOW */
    /* delivery */
    int http_timeout_ms;        /* HOOKD_HTTP_TIMEOUT_MS */
    int response_body_max;      /* HOOKD_RESPONSE_BODY_MAX */
    char *retry_schedule_str;   /* HOOKD_RETRY_SCHEDULE */
    int64_t retry_schedule[64]; /* parsed */
    int retry_schedule_len;
    double retry_jitter;        /* HOOKD_RETRY_JITTER */
    int disable_after;          /* HOOKD_DISABLE_AFTER */
    int endpoint_concurrency;   /* HOOKD_ENDPOINT_CONCURRENCY */
    int max_inflight;           /* HOOKD_MAX_INFLIGHT */
    int max_idle_connections;   /* HOOKD_MAX_IDLE_CONNECTIONS */
    char *org_max_inflight_str; /* HOOKD_ORG_MAX_INFLIGHT as given: auto, 0 or 1..100000 */
    int org_max_inflight;       /* resolved: 1..max_inflight (max_inflight = no cap) */
    char *allow_networks_str;   /* HOOKD_ALLOW_NETWORKS */
    hk_cidr allow_networks[HK_CONFIG_MAX_NETWORKS];
    int allow_networks_len;
    int https_only;        /* HOOKD_HTTPS_ONLY */
    int tls_insecure;      /* HOOKD_TLS_INSECURE, or NODE_TLS_REJECT_UNAUTHORIZED=0 */
    char *node_tls_reject; /* NODE_TLS_REJECT_UNAUTHORIZED as given */
    char *ca_file;         /* HOOKD_CA_FILE */
    int tls_session_cache; /* HOOKD_TLS_SESSION_CACHE: resume TLS sessions across connections */
    char *user_agent;      /* HOOKD_USER_AGENT */
    /* NATS */
    char *nats_url;      /* NATS_URL */
    char *nats_subjects; /* HOOKD_NATS_SUBJECTS */
    char *nats_stream;   /* HOOKD_NATS_STREAM */
    char *nats_durable;  /* HOOKD_NATS_DURABLE */
    /* logs */
    char *log_format; /* HOOKD_LOG_FORMAT: "text" | "json" */
    char *log_level;  /* HOOKD_LOG_LEVEL: "debug" | "info" | "warn" | "error" */
} hk_config;

/* Fills cfg from defaults, ./.env (if present; `dotenv_path` overrides the path, NULL = ".env"),
 * the environment, then the flags in argv. Flags are "--name=value" or "--name value" (a bool
 * flag alone means 1). Arguments that are not config flags are left for the caller: their
 * indices are written to rest[] (in order; rest must hold argc entries) and *nrest. On a bad
 * value returns HK_EINVAL with err naming the option and the problem; on "--help" returns
 * HK_OK with *want_help = 1. The caller owns cfg and releases it with hk_config_free. */
int hk_config_load(hk_config *cfg, int argc, char **argv, const char *dotenv_path, int *rest,
                   int *nrest, int *want_help, char *err, size_t errlen);

void hk_config_free(hk_config *cfg);

/* Prints the option table (name, flag, default, description) for --help. */
void hk_config_print_help(FILE *out);

/* Parses a .env file's text: lines "NAME=value", "export NAME=value", '#' comments, blank
 * lines, values optionally in single quotes (literal) or double quotes (\n \" \\ escapes);
 * calls fn(name, value, arg) for each assignment in order. Returns 0, or HK_EINVAL with err
 * giving the line number of a malformed line. Exposed for tests and fuzzing. */
int hk_dotenv_parse(const char *text, size_t len,
                    void (*fn)(const char *name, const char *value, void *arg), void *arg,
                    char *err, size_t errlen);

/* Parses a comma-separated CIDR list ("10.0.0.0/8, ::1/128, 192.168.1.5") into out. Returns
 * the count or HK_EINVAL with err naming the bad item. */
int hk_cidr_list_parse(const char *s, hk_cidr *out, int max, char *err, size_t errlen);

/* Parses a retention ("0" or "off" = 0, or a whole number with a unit s, m, h or d, at most
 * 36500d) into *out_ms. Returns 0 or HK_EINVAL. */
int hk_retention_parse(const char *v, int64_t *out_ms);

#endif
