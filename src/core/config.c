/*
 * config.c: hookd's options, all in one table (`opts` below): the environment name, the flag,
 * the type, the default, the allowed range or values, the help text and where the value lives
 * in hk_config. hk_config_load collects one raw string per option from the sources in priority
 * order (default < .env < environment < --flags; the last one wins), then parses and checks
 * each effective value once, so an error always names the option, says what is allowed and
 * where the bad value came from. Values of secret options (keys, URLs that may hold passwords)
 * are never repeated in messages. hk_config_print_help prints the same table for --help.
 */
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/redis_url.h"
#include "core/time.h"

#ifndef HK_VERSION
#define HK_VERSION "0.0.0"
#endif

#define DOTENV_MAX_BYTES (1024 * 1024) /* a bigger .env is refused */

/* ---- the table ------------------------------------------------------------------------------ */

enum opt_type {
    T_INT,      /* int, min..max */
    T_BOOL,     /* int 0/1 */
    T_STR,      /* char *, no control characters, plus the option's own check */
    T_ENUM,     /* char *, one of `allowed` (case-insensitive, stored as listed) */
    T_FLOAT,    /* double, dmin..dmax */
    T_DURLIST,  /* retry_schedule_str -> retry_schedule[] */
    T_CIDRLIST, /* allow_networks_str -> allow_networks[] */
    T_ENCKEY,   /* encryption_key -> enc_key, has_enc_key */
};

enum section { SEC_SERVER, SEC_STORE, SEC_CLUSTER, SEC_DELIVERY, SEC_NATS, SEC_LOGS };

static const char *const section_names[] = {
    "Server", "Store and API keys", "Queue and cluster", "Delivery", "NATS ingest", "Logs",
};

/* An extra check of a string option: 0 if v is fine, else -1 with why set (why never repeats
 * the value: the caller adds it unless the option is secret). */
typedef int (*str_check)(const char *v, char *why, size_t whylen);

typedef struct opt {
    const char *env;            /* PORT, HOOKD_HTTP_TIMEOUT_MS */
    const char *flag;           /* without the leading "--" */
    int type;                   /* enum opt_type */
    int section;                /* enum section */
    const char *def;            /* default, in the same text form a user would give */
    int64_t min, max;           /* T_INT */
    double dmin, dmax;          /* T_FLOAT */
    const char *const *allowed; /* T_ENUM, NULL-terminated */
    str_check check;            /* T_STR, may be NULL */
    int secret;                 /* never echo the value */
    size_t off;                 /* offsetof(hk_config, field) */
    const char *help;
} opt;

static int check_host(const char *v, char *why, size_t n);
static int check_nonempty(const char *v, char *why, size_t n);
static int check_dir(const char *v, char *why, size_t n);
static int check_bootstrap_key(const char *v, char *why, size_t n);
static int check_org(const char *v, char *why, size_t n);
static int check_node_id(const char *v, char *why, size_t n);
static int check_redis_prefix(const char *v, char *why, size_t n);
static int check_redis_url(const char *v, char *why, size_t n);
static int check_ca_file(const char *v, char *why, size_t n);
static int check_user_agent(const char *v, char *why, size_t n);
static int check_subjects(const char *v, char *why, size_t n);
static int check_nats_name(const char *v, char *why, size_t n);
static int check_nats_name_opt(const char *v, char *why, size_t n);
static int check_org_max_inflight(const char *v, char *why, size_t n);
static int check_retention(const char *v, char *why, size_t n);
static int check_origins(const char *v, char *why, size_t n);

static const char *const enum_sync[] = {"full", "normal", NULL};
static const char *const enum_tls_reject[] = {"", "0", "1", NULL};
static const char *const enum_log_format[] = {"text", "json", NULL};
static const char *const enum_log_level[] = {"debug", "info", "warn", "error", NULL};

/* clang-format off */
#define F(field) offsetof(hk_config, field)
#define INT(env, flag, sec, def, lo, hi, field, help)                                            \
    {env, flag, T_INT, sec, def, lo, hi, 0, 0, NULL, NULL, 0, F(field), help}
#define BOOL(env, flag, sec, def, field, help)                                                   \
    {env, flag, T_BOOL, sec, def, 0, 1, 0, 0, NULL, NULL, 0, F(field), help}
#define STR(env, flag, sec, def, check, secret, field, help)                                     \
    {env, flag, T_STR, sec, def, 0, 0, 0, 0, NULL, check, secret, F(field), help}
#define ENUM(env, flag, sec, def, allowed, field, help)                                          \
    {env, flag, T_ENUM, sec, def, 0, 0, 0, 0, allowed, NULL, 0, F(field), help}
#define SPECIAL(type, env, flag, sec, def, secret, field, help)                                  \
    {env, flag, type, sec, def, 0, 0, 0, 0, NULL, NULL, secret, F(field), help}
/* clang-format on */

static const opt opts[] = {
    /* server */
    INT("PORT", "port", SEC_SERVER, "8013", 1, 65535, port, "TCP port of the HTTP API."),
    STR("HOOKD_HOST", "host", SEC_SERVER, "0.0.0.0", check_host, 0, host,
        "Address the HTTP API listens on (0.0.0.0 = every IPv4 address, :: = every address)."),
    STR("BASE_URL", "base-url", SEC_SERVER, "", NULL, 0, base_url,
        "The address browsers reach hookd by (https://hooks.example.com): the `url` of a "
        "portal session (POST /api/webhook/v1/portal-sessions) starts with it; empty = a "
        "relative url. A trailing slash is ignored."),
    STR("NODE_ENV", "node-env", SEC_SERVER, "production", NULL, 0, node_env,
        "Accepted for compatibility with the seed's .env; any text. Only logged (node_env "
        "in the start-up line hookd.listening): it changes no behaviour."),
    INT("HOOKD_MAX_BODY_BYTES", "max-body-bytes", SEC_SERVER, "1048576", 1024, 67108864,
        max_body_bytes, "Largest request body accepted; a bigger one gets 413."),
    INT("HOOKD_MAX_CONNECTIONS", "max-connections", SEC_SERVER, "16384", 16, 1000000,
        max_connections, "Most client connections open at once."),
    INT("HOOKD_SHUTDOWN_TIMEOUT_MS", "shutdown-timeout-ms", SEC_SERVER, "10000", 0, 600000,
        shutdown_timeout_ms,
        "On SIGTERM/SIGINT, how long attempts in flight may finish before the rest are handed "
        "back."),
    STR("HOOKD_METRICS_KEY", "metrics-key", SEC_SERVER, "", NULL, 1, metrics_key,
        "If set, GET /metrics requires this key; empty = /metrics is open."),
    STR("HOOKD_SWAGGER_UI_DIR", "swagger-ui-dir", SEC_SERVER, "", check_dir, 0, swagger_ui_dir,
        "Directory holding the Swagger UI files of the API docs page; empty = search the usual "
        "places. If set, it must be an existing directory."),
    STR("HOOKD_UI_DIR", "ui-dir", SEC_SERVER, "", check_dir, 0, ui_dir,
        "Directory holding the dashboard's files (index.html; served at /api/webhook/ui/); "
        "empty = search the usual places. If set, it must be an existing directory."),
    STR("HOOKD_PORTAL_ORIGINS", "portal-origins", SEC_SERVER, "", check_origins, 0, portal_origins,
        "Origins allowed to embed the dashboard in a frame (its CSP frame-ancestors), separated "
        "by spaces or commas, e.g. \"https://app.example.com\"; 'self' allows hookd's own "
        "origin. Empty = no site may frame it."),
    INT("HOOKD_INGEST_RATE_LIMIT", "ingest-rate-limit", SEC_SERVER, "0", 0, 10000000,
        ingest_rate_limit,
        "Events per second accepted per organization (429 above); 0 = unlimited."),
    INT("HOOKD_MAX_WEBHOOKS_PER_ORG", "max-webhooks-per-org", SEC_SERVER, "1000", 0, 10000000,
        max_webhooks_per_org,
        "Most webhooks (not deleted) an organization may have; a create beyond gets 422. 0 = "
        "unlimited."),
    INT("HOOKD_MAX_DELIVERIES_PER_EVENT", "max-deliveries-per-event", SEC_SERVER, "1000", 0,
        10000000, max_deliveries_per_event,
        "Most deliveries one event ingested over HTTP may create; an event matching more "
        "webhooks is refused whole with 429 (nothing stored). 0 = unlimited."),
    INT("HOOKD_MAX_DELIVERIES_PER_BATCH", "max-deliveries-per-batch", SEC_SERVER, "20000", 0,
        100000000, max_deliveries_per_batch,
        "Most deliveries one HTTP ingest request (a batch) may create; above, the request is "
        "refused whole with 429 (nothing stored). 0 = unlimited."),
    /* store */
    STR("HOOKD_DB", "db", SEC_STORE, "./hookd.db", check_nonempty, 0, db_path,
        "SQLite database file, used when PG_URL is empty."),
    ENUM("HOOKD_SQLITE_SYNC", "sqlite-sync", SEC_STORE, "full", enum_sync, sqlite_sync,
         "SQLite synchronous mode: full survives power loss, normal survives a crash of hookd."),
    STR("PG_URL", "pg-url", SEC_STORE, "", NULL, 1, pg_url,
        "PostgreSQL connection URL; empty = the embedded SQLite store (HOOKD_DB)."),
    INT("HOOKD_PG_POOL", "pg-pool", SEC_STORE, "4", 1, 64, pg_pool,
        "PostgreSQL connections per process."),
    SPECIAL(T_ENCKEY, "WEBHOOK_ENCRYPTION_KEY", "webhook-encryption-key", SEC_STORE, "", 1,
            encryption_key,
            "64 hex characters (32 bytes): webhook secrets are stored AES-256-GCM encrypted with "
            "it. Empty = stored as given. A set but invalid key stops start-up."),
    STR("HOOKD_BOOTSTRAP_KEY", "bootstrap-key", SEC_STORE, "", check_bootstrap_key, 1,
        bootstrap_key,
        "API key ([A-Za-z0-9_-]{16,128}) made sure to exist at start, for HOOKD_BOOTSTRAP_ORG."),
    STR("HOOKD_BOOTSTRAP_ORG", "bootstrap-org", SEC_STORE, "org_default", check_org, 0,
        bootstrap_org,
        "Organization ([A-Za-z0-9_.:-]{1,128}) of the bootstrap key, and of the key created on "
        "a first start without one."),
    STR("HOOKD_BOOTSTRAP_ADMIN_KEY", "bootstrap-admin-key", SEC_STORE, "", check_bootstrap_key, 1,
        bootstrap_admin_key,
        "Admin key ([A-Za-z0-9_-]{16,128}) made sure to exist at start: it belongs to no "
        "organization, manages organizations and their keys, and acts on one organization "
        "with the header X-Organization-Id."),
    STR("HOOKD_RETENTION", "retention", SEC_STORE, "30d", check_retention, 0, retention_str,
        "How long finished data is kept: events, deliveries that ended success or failed, and "
        "their attempts go once older than this (a whole number and a unit s, m, h or d, e.g. "
        "30d, 12h, 90m, 60s); 0 or off = keep everything. Open deliveries (pending, retrying, "
        "held while their webhook is paused or failed) and their events are never pruned. An "
        "idempotency key lives as long as its event."),
    STR("HOOKD_RETENTION_UNMATCHED", "retention-unmatched", SEC_STORE, "24h", check_retention, 0,
        retention_unmatched_str,
        "How long an event that matched no webhook (no delivery) is kept, same units; 0 or off "
        "= as long as HOOKD_RETENTION. Never longer than HOOKD_RETENTION when that is set."),
    INT("HOOKD_PRUNE_BATCH", "prune-batch", SEC_STORE, "250", 10, 100000, prune_batch,
        "Most deliveries (with their attempts) and most events one prune step deletes; each "
        "step is one short write in the store's group commit."),
    INT("HOOKD_PRUNE_INTERVAL_MS", "prune-interval-ms", SEC_STORE, "10000", 100, 3600000,
        prune_interval_ms,
        "How often a prune round starts; a round runs steps (50 ms apart) until nothing older "
        "than the retention is left (one log line store.pruned per round, at least one a "
        "minute)."),
    /* queue / cluster */
    STR("REDIS_URL", "redis-url", SEC_CLUSTER, "", check_redis_url, 1, redis_url,
        "Redis URL (redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]): the "
        "delivery schedule and rate limits shared by every node; empty = in-process."),
    STR("HOOKD_REDIS_PREFIX", "redis-prefix", SEC_CLUSTER, "hookd:", check_redis_prefix, 0,
        redis_prefix, "Prefix of every Redis key hookd uses (at most 128 bytes, no spaces)."),
    INT("HOOKD_SWEEP_INTERVAL_MS", "sweep-interval-ms", SEC_CLUSTER, "30000", 100, 3600000,
        sweep_interval_ms,
        "With REDIS_URL: how often the store's due deliveries are swept back into Redis's "
        "schedule (one node per interval), repairing anything Redis lost."),
    STR("HOOKD_NODE_ID", "node-id", SEC_CLUSTER, "", check_node_id, 0, node_id,
        "This process's name in leases ([A-Za-z0-9_.:-]{0,64}); empty = host-pid-random, "
        "unique per start."),
    INT("HOOKD_LEASE_MS", "lease-ms", SEC_CLUSTER, "30000", 1000, 3600000, lease_ms,
        "How long a node's claim on deliveries lasts without a heartbeat before another node "
        "takes them over; must be greater than HOOKD_HTTP_TIMEOUT_MS + 5000."),
    INT("HOOKD_POLL_INTERVAL_MS", "poll-interval-ms", SEC_CLUSTER, "1000", 10, 60000,
        poll_interval_ms, "How often the queue is polled for due deliveries."),
    INT("HOOKD_QUEUE_WINDOW", "queue-window", SEC_CLUSTER, "50000", 100, 10000000, queue_window,
        "Most due deliveries a node holds in memory; the rest wait in the store."),
    /* delivery */
    INT("HOOKD_HTTP_TIMEOUT_MS", "http-timeout-ms", SEC_DELIVERY, "10000", 100, 600000,
        http_timeout_ms,
        "Total deadline of one delivery attempt (connect, send, response); a "
        "webhook's timeoutMs may shorten it."),
    INT("HOOKD_RESPONSE_BODY_MAX", "response-body-max", SEC_DELIVERY, "8192", 0, 1048576,
        response_body_max, "Bytes of an endpoint's response body kept with the attempt."),
    SPECIAL(T_DURLIST, "HOOKD_RETRY_SCHEDULE", "retry-schedule", SEC_DELIVERY,
            "5s,5m,30m,2h,5h,10h", 0, retry_schedule_str,
            "Delay before retry 1, 2, ... (units ms, s, m, h, d; a bare number is ms); the last "
            "one repeats. 1..64 items, each at most 7d. A webhook's retrySchedule replaces it."),
    {"HOOKD_RETRY_JITTER", "retry-jitter", T_FLOAT, SEC_DELIVERY, "0.2", 0, 0, 0.0, 1.0, NULL, NULL,
     0, F(retry_jitter), "Random spread of each retry delay: 0.2 = +/-20%."},
    INT("HOOKD_DISABLE_AFTER", "disable-after", SEC_DELIVERY, "10", 0, 1000000, disable_after,
        "Final failures in a row that set a webhook's status to failed; 0 = never."),
    INT("HOOKD_ENDPOINT_CONCURRENCY", "endpoint-concurrency", SEC_DELIVERY, "16", 1, 10000,
        endpoint_concurrency, "Most attempts in flight per webhook."),
    INT("HOOKD_MAX_INFLIGHT", "max-inflight", SEC_DELIVERY, "1024", 1, 100000, max_inflight,
        "Most attempts in flight in all."),
    INT("HOOKD_MAX_IDLE_CONNECTIONS", "max-idle-connections", SEC_DELIVERY, "2048", 0, 1000000,
        max_idle_connections,
        "Most idle keep-alive connections to endpoints kept for later deliveries, in all (each "
        "holds a file descriptor; one unused for 118 s is closed); 0 = close each after use."),
    STR("HOOKD_ORG_MAX_INFLIGHT", "org-max-inflight", SEC_DELIVERY, "auto", check_org_max_inflight,
        0, org_max_inflight_str,
        "Most attempts in flight per organization: auto (three quarters of HOOKD_MAX_INFLIGHT, "
        "at least 1), 0 (no cap) or an integer 1..100000. Slots are shared round-robin by "
        "organization, then by webhook; the cap keeps room for other organizations when every "
        "endpoint of one organization hangs."),
    SPECIAL(T_CIDRLIST, "HOOKD_ALLOW_NETWORKS", "allow-networks", SEC_DELIVERY, "", 0,
            allow_networks_str,
            "Comma-separated CIDR blocks that deliveries may reach although they are private, "
            "loopback, etc. (e.g. 10.0.0.0/8,::1/128). A bare address is one host (/32, /128). "
            "Host bits must be zero: 10.1.2.3/8 is refused, not masked. At most 64 blocks."),
    BOOL("HOOKD_HTTPS_ONLY", "https-only", SEC_DELIVERY, "0", https_only,
         "Refuse http:// webhook URLs (422 at create and patch); a delivery to one stored "
         "before fails at once, unsent."),
    BOOL("HOOKD_TLS_INSECURE", "tls-insecure", SEC_DELIVERY, "0", tls_insecure,
         "Do not verify endpoints' TLS certificates (a warning is logged at start)."),
    ENUM("NODE_TLS_REJECT_UNAUTHORIZED", "node-tls-reject-unauthorized", SEC_DELIVERY, "",
         enum_tls_reject, node_tls_reject, "Node.js compatible: 0 = same as HOOKD_TLS_INSECURE=1."),
    STR("HOOKD_CA_FILE", "ca-file", SEC_DELIVERY, "", check_ca_file, 0, ca_file,
        "PEM file of the CA certificates to trust instead of the system's (libcurl's default "
        "CA bundle, read once; its CA directory is not used, so a system certificate must be "
        "in the bundle, as update-ca-certificates puts it); must be readable."),
    BOOL("HOOKD_TLS_SESSION_CACHE", "tls-session-cache", SEC_DELIVERY, "1", tls_session_cache,
         "Resume TLS sessions: a new connection to an endpoint reuses the session of an earlier "
         "one (an abbreviated handshake); 0 = a full handshake every time."),
    STR("HOOKD_USER_AGENT", "user-agent", SEC_DELIVERY, "hookd/" HK_VERSION, check_user_agent, 0,
        user_agent, "User-Agent header of deliveries (at most 256 bytes)."),
    /* NATS */
    STR("NATS_URL", "nats-url", SEC_NATS, "", NULL, 1, nats_url,
        "NATS server URL for bus ingest; empty = no bus ingest."),
    STR("HOOKD_NATS_SUBJECTS", "nats-subjects", SEC_NATS,
        "kumomta.event,kumomta.event.*,tracking.*,webhook.triggered", check_subjects, 0,
        nats_subjects,
        "Comma-separated subjects subscribed to, in queue group webhook-dispatcher."),
    STR("HOOKD_NATS_STREAM", "nats-stream", SEC_NATS, "", check_nats_name_opt, 0, nats_stream,
        "JetStream stream: if set, a durable consumer acks a message only once its event is "
        "stored."),
    STR("HOOKD_NATS_DURABLE", "nats-durable", SEC_NATS, "hookd", check_nats_name, 0, nats_durable,
        "Durable consumer name used with HOOKD_NATS_STREAM."),
    /* logs */
    ENUM("HOOKD_LOG_FORMAT", "log-format", SEC_LOGS, "text", enum_log_format, log_format,
         "Log lines as text (key=value) or one JSON object per line."),
    ENUM("HOOKD_LOG_LEVEL", "log-level", SEC_LOGS, "info", enum_log_level, log_level,
         "Least important level logged."),
};

#define NOPTS ((int)HK_ARRAY_LEN(opts))

/* ---- small helpers -------------------------------------------------------------------------- */

static void *field(hk_config *cfg, const opt *o)
{
    return (char *)cfg + o->off;
}

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int has_ctl(const char *v)
{
    for (; *v; v++)
        if (is_ctl((unsigned char)*v)) return 1;
    return 0;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* 1 if v is minlen..maxlen characters, each alphanumeric or in `extra`. */
static int charset_ok(const char *v, const char *extra, size_t minlen, size_t maxlen)
{
    size_t n = 0;
    for (; v[n]; n++)
        if (!is_alnum((unsigned char)v[n]) && !strchr(extra, v[n])) return 0;
    return n >= minlen && n <= maxlen;
}

/* Writes v as a quoted, escaped, length-capped string into out (for messages). */
static void quote_value(const char *v, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, shown = 0;
    if (outlen < 8) {
        if (outlen) out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (shown >= 80 || o + 8 >= outlen) {
            out[o++] = '.', out[o++] = '.', out[o++] = '.';
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\', out[o++] = (char)c;
        } else if (is_ctl(c)) {
            out[o++] = '\\', out[o++] = 'x', out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
        shown++;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* ---- string checks -------------------------------------------------------------------------- */

static int check_host(const char *v, char *why, size_t n)
{
    if (!*v || strlen(v) > 253 || strpbrk(v, " \t")) {
        snprintf(why, n, "must be a host name or an IP address");
        return -1;
    }
    return 0;
}

/* REDIS_URL's syntax (core/redis_url.c), so that a malformed URL is a bad option (exit 2)
 * rather than a failure to connect. Empty = no Redis. */
static int check_redis_url(const char *v, char *why, size_t n)
{
    hk_redis_url u;
    if (!*v) return 0;
    return hk_redis_url_parse(v, &u, why, n) ? -1 : 0;
}

static int check_nonempty(const char *v, char *why, size_t n)
{
    if (!*v) {
        snprintf(why, n, "must not be empty");
        return -1;
    }
    return 0;
}

static int check_dir(const char *v, char *why, size_t n)
{
    struct stat st;
    if (!*v) return 0;
    if (stat(v, &st) != 0) {
        snprintf(why, n, "cannot use the directory: %s", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, n, "is not a directory");
        return -1;
    }
    return 0;
}

/* HOOKD_PORTAL_ORIGINS: words separated by spaces or commas, each 'self' or an origin
 * http(s)://host[:port] (a leading "*." in the host allowed, as CSP does) with no path: what
 * goes into the dashboard's frame-ancestors as written, so nothing else may reach the header. */
static int check_origins(const char *v, char *why, size_t n)
{
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *w = p;
        while (*p && *p != ' ' && *p != ',') p++;
        size_t len = (size_t)(p - w);
        if (len == 6 && strncmp(w, "'self'", 6) == 0) continue;
        size_t skip = strncmp(w, "https://", 8) == 0 ? 8 : strncmp(w, "http://", 7) == 0 ? 7 : 0;
        int ok = skip && len > skip && len <= 255;
        for (size_t i = skip; ok && i < len; i++) {
            char ch = w[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == ':' || (ch == '*' && i == skip);
        }
        if (!ok) {
            snprintf(why, n,
                     "'%.*s' is not an origin: write 'self' or scheme://host[:port] "
                     "(http or https, no path)",
                     (int)(len > 80 ? 80 : len), w);
            return -1;
        }
    }
    return 0;
}

static int check_bootstrap_key(const char *v, char *why, size_t n)
{
    if (*v && !hk_apikey_valid(v)) {
        snprintf(why, n, "must be empty or 16 to 128 characters of [A-Za-z0-9_-]");
        return -1;
    }
    return 0;
}

static int check_org(const char *v, char *why, size_t n)
{
    if (!charset_ok(v, "_.:-", 1, 128)) {
        snprintf(why, n, "must be 1 to 128 characters of [A-Za-z0-9_.:-]");
        return -1;
    }
    return 0;
}

static int check_node_id(const char *v, char *why, size_t n)
{
    if (!charset_ok(v, "_.:-", 0, 64)) {
        snprintf(why, n, "must be at most 64 characters of [A-Za-z0-9_.:-]");
        return -1;
    }
    return 0;
}

static int check_redis_prefix(const char *v, char *why, size_t n)
{
    if (strlen(v) > 128 || strpbrk(v, " ")) {
        snprintf(why, n, "must be at most 128 bytes without spaces");
        return -1;
    }
    return 0;
}

static int check_ca_file(const char *v, char *why, size_t n)
{
    struct stat st;
    if (!*v) return 0;
    int fd = open(v, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, n, "cannot read the file: %s", strerror(errno));
        return -1;
    }
    int rc = fstat(fd, &st);
    close(fd);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, n, "is not a regular file");
        return -1;
    }
    return 0;
}

static int check_user_agent(const char *v, char *why, size_t n)
{
    if (strlen(v) > 256) {
        snprintf(why, n, "must be at most 256 bytes");
        return -1;
    }
    return 0;
}

static int check_org_max_inflight(const char *v, char *why, size_t n)
{
    int64_t x;
    if (strcasecmp(v, "auto") == 0 || hk_parse_int64(v, 0, 100000, &x) == 0) return 0;
    snprintf(why, n, "must be auto, 0 (no cap) or an integer between 1 and 100000");
    return -1;
}

/* HOOKD_RETENTION, HOOKD_RETENTION_UNMATCHED: 0/off, or a whole number with a unit (a bare
 * number would be milliseconds, a likely mistake here); at most 100 years. */
static int check_retention(const char *v, char *why, size_t n)
{
    int64_t ms;
    if (hk_retention_parse(v, &ms) == 0) return 0;
    snprintf(why, n,
             "must be 0 or off (keep everything), or a whole number and a unit s, m, h or d "
             "(e.g. 30d, 12h, 90m, 60s), at most 36500d");
    return -1;
}

int hk_retention_parse(const char *v, int64_t *out_ms)
{
    if (strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0) {
        *out_ms = 0;
        return HK_OK;
    }
    size_t len = strlen(v);
    int64_t ms;
    if (len < 2 || !strchr("smhd", v[len - 1]) || (len > 2 && strcmp(v + len - 2, "ms") == 0) ||
        hk_duration_parse(v, &ms) || ms <= 0 || ms > 36500LL * 86400000LL)
        return HK_EINVAL;
    *out_ms = ms;
    return HK_OK;
}

static int check_subjects(const char *v, char *why, size_t n)
{
    /* items are separated by commas, may have spaces around them, and are never empty */
    const char *p = v;
    for (;;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, ", ");
        const char *q = p + len;
        while (*q == ' ') q++;
        if (len == 0 || (*q && *q != ',')) {
            snprintf(why, n, "must be a comma-separated list of NATS subjects, none empty");
            return -1;
        }
        if (!*q) return 0;
        p = q + 1;
    }
}

static int check_nats_name(const char *v, char *why, size_t n)
{
    if (!charset_ok(v, "_-", 1, 256)) {
        snprintf(why, n, "must be 1 to 256 characters of [A-Za-z0-9_-]");
        return -1;
    }
    return 0;
}

static int check_nats_name_opt(const char *v, char *why, size_t n)
{
    if (*v && !charset_ok(v, "_-", 1, 256)) {
        snprintf(why, n, "must be empty or 1 to 256 characters of [A-Za-z0-9_-]");
        return -1;
    }
    return 0;
}

/* ---- parsing one value ---------------------------------------------------------------------- */

enum source { SRC_DEFAULT, SRC_DOTENV, SRC_ENV, SRC_FLAG };

typedef struct raw_value {
    const char *v; /* effective text: the default, a .env copy, getenv() or argv */
    int src;       /* enum source */
} raw_value;

/* Writes "ENV (--flag): <message> (from <source>)" into err. */
static void HK_PRINTF(5, 6)
    opt_error(char *err, size_t errlen, const opt *o, const raw_value *rv, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *from = "";
    switch (rv->src) {
    case SRC_DOTENV:
        from = " (from the .env file)";
        break;
    case SRC_ENV:
        from = " (from the environment)";
        break;
    case SRC_FLAG:
        from = " (from the command line)";
        break;
    default:
        from = " (the built-in default)";
        break;
    }
    snprintf(err, errlen, "%s (--%s): %s%s", o->env, o->flag, msg, from);
}

/* The "got ..." part of a message: the value quoted, or only its length for a secret. */
static void got(const opt *o, const char *v, char *out, size_t outlen)
{
    if (o->secret) {
        snprintf(out, outlen, "got a value of %zu characters (not shown: secret)", strlen(v));
    } else {
        char q[128];
        quote_value(v, q, sizeof q);
        snprintf(out, outlen, "got %s", q);
    }
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < HK_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

/* A plain decimal: digits with an optional fraction ("0.25", ".5", "1."), no sign or exponent. */
static int parse_decimal(const char *v, double *out)
{
    size_t digits = 0, i = 0;
    for (; v[i] >= '0' && v[i] <= '9'; i++) digits++;
    if (v[i] == '.')
        for (i++; v[i] >= '0' && v[i] <= '9'; i++) digits++;
    if (v[i] || !digits || i > 64) return -1;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || !end || *end) return -1;
    *out = d;
    return 0;
}

static void list_allowed(const char *const *allowed, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; allowed[i] && o < outlen; i++) {
        int w = snprintf(out + o, outlen - o, "%s%s", i ? ", " : "",
                         allowed[i][0] ? allowed[i] : "\"\" (empty)");
        if (w < 0) break;
        o += (size_t)w;
    }
}

/* Parses rv->v for option o into cfg. 0, or HK_EINVAL with err set. */
static int apply(hk_config *cfg, const opt *o, const raw_value *rv, char *err, size_t errlen)
{
    const char *v = rv->v;
    char g[200], why[256];
    got(o, v, g, sizeof g);
    switch (o->type) {
    case T_INT: {
        int64_t x;
        if (hk_parse_int64(v, o->min, o->max, &x)) {
            opt_error(err, errlen, o, rv, "must be an integer between %lld and %lld, %s",
                      (long long)o->min, (long long)o->max, g);
            return HK_EINVAL;
        }
        *(int *)field(cfg, o) = (int)x;
        return HK_OK;
    }
    case T_BOOL: {
        int b;
        if (parse_bool(v, &b)) {
            opt_error(err, errlen, o, rv, "must be one of 1/0/true/false/yes/no/on/off, %s", g);
            return HK_EINVAL;
        }
        *(int *)field(cfg, o) = b;
        return HK_OK;
    }
    case T_FLOAT: {
        double d;
        if (parse_decimal(v, &d) || d < o->dmin || d > o->dmax) {
            opt_error(err, errlen, o, rv, "must be a number between %g and %g, %s", o->dmin,
                      o->dmax, g);
            return HK_EINVAL;
        }
        *(double *)field(cfg, o) = d;
        return HK_OK;
    }
    case T_ENUM: {
        for (int i = 0; o->allowed[i]; i++) {
            if (strcasecmp(v, o->allowed[i]) == 0) {
                char **slot = field(cfg, o);
                free(*slot);
                *slot = hk_strdup(o->allowed[i]);
                return HK_OK;
            }
        }
        list_allowed(o->allowed, why, sizeof why);
        opt_error(err, errlen, o, rv, "must be one of %s, %s", why, g);
        return HK_EINVAL;
    }
    default:
        break;
    }

    /* the string-valued kinds */
    if (has_ctl(v)) {
        opt_error(err, errlen, o, rv, "must not contain control characters, %s", g);
        return HK_EINVAL;
    }
    if (o->type == T_STR && o->check && o->check(v, why, sizeof why)) {
        opt_error(err, errlen, o, rv, "%s, %s", why, g);
        return HK_EINVAL;
    }
    if (o->type == T_DURLIST) {
        int n =
            hk_duration_list_parse(v, cfg->retry_schedule, HK_RETRY_SCHEDULE_MAX, why, sizeof why);
        if (n <= 0) {
            if (n == 0) snprintf(why, sizeof why, "needs at least one delay");
            opt_error(err, errlen, o, rv, "%s, %s", why, g);
            return HK_EINVAL;
        }
        cfg->retry_schedule_len = n;
    } else if (o->type == T_CIDRLIST) {
        int n = hk_cidr_list_parse(v, cfg->allow_networks, HK_CONFIG_MAX_NETWORKS, why, sizeof why);
        if (n < 0) {
            opt_error(err, errlen, o, rv, "%s", why);
            return HK_EINVAL;
        }
        cfg->allow_networks_len = n;
    } else if (o->type == T_ENCKEY) {
        cfg->has_enc_key = 0;
        if (*v) {
            if (hk_enc_key_parse(v, cfg->enc_key) != HK_OK) {
                explicit_bzero(cfg->enc_key, sizeof cfg->enc_key);
                opt_error(err, errlen, o, rv,
                          "must be empty or exactly 64 hex characters (32 bytes), %s", g);
                return HK_EINVAL;
            }
            cfg->has_enc_key = 1;
        }
    }
    char **slot = field(cfg, o);
    if (*slot) {
        explicit_bzero(*slot, strlen(*slot));
        free(*slot);
    }
    *slot = hk_strdup(v);
    return HK_OK;
}

/* ---- sources -------------------------------------------------------------------------------- */

static int find_env(const char *name)
{
    for (int i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].env, name) == 0) return i;
    return -1;
}

static int find_flag(const char *name, size_t len)
{
    for (int i = 0; i < NOPTS; i++)
        if (strlen(opts[i].flag) == len && memcmp(opts[i].flag, name, len) == 0) return i;
    return -1;
}

typedef struct dotenv_ctx {
    raw_value *raw;
    char **copies; /* per option: the .env value we own */
} dotenv_ctx;

static void on_dotenv(const char *name, const char *value, void *arg)
{
    dotenv_ctx *c = arg;
    int i = find_env(name);
    if (i < 0) return; /* other programs' variables may share the file */
    if (c->copies[i]) {
        explicit_bzero(c->copies[i], strlen(c->copies[i]));
        free(c->copies[i]);
    }
    c->copies[i] = hk_strdup(value);
    c->raw[i].v = c->copies[i];
    c->raw[i].src = SRC_DOTENV;
}

/* Reads and applies the .env file at path; a missing file is no error. */
static int read_dotenv(const char *path, dotenv_ctx *c, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return HK_OK;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return HK_EINVAL;
    }
    int rc = HK_EINVAL;
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read %s: not a regular file", path);
        goto out;
    }
    if (st.st_size > DOTENV_MAX_BYTES) {
        snprintf(err, errlen, "%s is larger than %d bytes", path, DOTENV_MAX_BYTES);
        goto out;
    }
    text = hk_malloc((size_t)st.st_size + 1);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, text + len, (size_t)st.st_size + 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len > (size_t)st.st_size) {
            snprintf(err, errlen, "cannot read %s: it changed while being read", path);
            goto out;
        }
    }
    char why[256];
    if (hk_dotenv_parse(text, len, on_dotenv, c, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto out;
    }
    rc = HK_OK;
out:
    if (text) {
        explicit_bzero(text, (size_t)st.st_size + 1);
        free(text);
    }
    close(fd);
    return rc;
}

/* Goes through argv: config flags set raw[], --help sets *want_help, everything else goes to
 * rest[]. 0, or HK_EINVAL (a config flag without its value). */
static int scan_flags(int argc, char **argv, raw_value *raw, int *rest, int *nrest, int *want_help,
                      char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) rest[(*nrest)++] = i;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *want_help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            rest[(*nrest)++] = i;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        int k = find_flag(name, eq ? (size_t)(eq - name) : strlen(name));
        if (k < 0) {
            rest[(*nrest)++] = i; /* a subcommand's flag, or unknown: the caller decides */
            continue;
        }
        const opt *o = &opts[k];
        if (eq) {
            raw[k].v = eq + 1;
        } else if (o->type == T_BOOL) {
            raw[k].v = "1";
        } else if (i + 1 < argc) {
            raw[k].v = argv[++i];
        } else {
            snprintf(err, errlen, "%s (--%s): the flag needs a value (--%s=VALUE)", o->env, o->flag,
                     o->flag);
            return HK_EINVAL;
        }
        raw[k].src = SRC_FLAG;
    }
    return HK_OK;
}

/* Checks that need several options; runs after every value is parsed. */
static int cross_checks(hk_config *cfg, char *err, size_t errlen)
{
    if ((int64_t)cfg->lease_ms <= (int64_t)cfg->http_timeout_ms + 5000) {
        snprintf(err, errlen,
                 "HOOKD_LEASE_MS (--lease-ms) must be greater than HOOKD_HTTP_TIMEOUT_MS "
                 "(--http-timeout-ms) + 5000, so that an attempt never outlives its lease: got "
                 "%d and %d",
                 cfg->lease_ms, cfg->http_timeout_ms);
        return HK_EINVAL;
    }
    if (cfg->node_tls_reject && strcmp(cfg->node_tls_reject, "0") == 0) cfg->tls_insecure = 1;
    /* checked by check_org_max_inflight: auto or 0..100000; 0 and auto resolve here */
    int64_t cap;
    if (strcasecmp(cfg->org_max_inflight_str, "auto") == 0)
        cap = cfg->max_inflight * 3 / 4;
    else if (hk_parse_int64(cfg->org_max_inflight_str, 0, 100000, &cap) || cap == 0)
        cap = cfg->max_inflight;
    cfg->org_max_inflight = (int)HK_MAX(1, HK_MIN(cap, cfg->max_inflight));
    /* checked by check_retention */
    hk_retention_parse(cfg->retention_str, &cfg->retention_ms);
    hk_retention_parse(cfg->retention_unmatched_str, &cfg->retention_unmatched_ms);
    return HK_OK;
}

int hk_config_load(hk_config *cfg, int argc, char **argv, const char *dotenv_path, int *rest,
                   int *nrest, int *want_help, char *err, size_t errlen)
{
    raw_value raw[NOPTS];
    char *copies[NOPTS];
    int rc = HK_OK;
    memset(cfg, 0, sizeof *cfg);
    memset(copies, 0, sizeof copies);
    *nrest = 0;
    *want_help = 0;
    if (errlen) err[0] = '\0';
    for (int i = 0; i < NOPTS; i++) raw[i] = (raw_value){opts[i].def, SRC_DEFAULT};

    /* flags first, only to learn about --help (which then ignores every other source) */
    rc = scan_flags(argc, argv, raw, rest, nrest, want_help, err, errlen);
    if (*want_help) {
        *nrest = 0;
        for (int i = 0; i < NOPTS; i++) raw[i] = (raw_value){opts[i].def, SRC_DEFAULT};
        rc = HK_OK;
    } else if (rc == HK_OK) {
        for (int i = 0; i < NOPTS; i++) raw[i] = (raw_value){opts[i].def, SRC_DEFAULT};
        dotenv_ctx dc = {raw, copies};
        rc = read_dotenv(dotenv_path ? dotenv_path : ".env", &dc, err, errlen);
        for (int i = 0; rc == HK_OK && i < NOPTS; i++) {
            const char *e = getenv(opts[i].env);
            if (e) raw[i] = (raw_value){e, SRC_ENV};
        }
        /* flags again, so that they win over .env and the environment */
        *nrest = 0;
        if (rc == HK_OK) rc = scan_flags(argc, argv, raw, rest, nrest, want_help, err, errlen);
    }
    for (int i = 0; rc == HK_OK && i < NOPTS; i++) rc = apply(cfg, &opts[i], &raw[i], err, errlen);
    if (rc == HK_OK) rc = cross_checks(cfg, err, errlen);

    for (int i = 0; i < NOPTS; i++) {
        if (copies[i]) {
            explicit_bzero(copies[i], strlen(copies[i]));
            free(copies[i]);
        }
    }
    if (rc != HK_OK) {
        hk_config_free(cfg);
        *nrest = 0;
    }
    return rc;
}

void hk_config_free(hk_config *cfg)
{
    if (!cfg) return;
    for (int i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (o->type == T_INT || o->type == T_BOOL || o->type == T_FLOAT) continue;
        char **slot = field(cfg, o);
        if (*slot) {
            explicit_bzero(*slot, strlen(*slot));
            free(*slot);
        }
    }
    explicit_bzero(cfg, sizeof *cfg);
}

/* ---- help ----------------------------------------------------------------------------------- */

/* Prints text word-wrapped at width columns, each line indented by indent spaces. */
static void print_wrapped(FILE *out, int indent, int width, const char *text)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t room = (size_t)(width - indent), n = strlen(p);
        if (n > room) {
            size_t cut = room;
            while (cut > 0 && p[cut] != ' ') cut--;
            n = cut ? cut : strcspn(p, " ");
        }
        fprintf(out, "%*s%.*s\n", indent, "", (int)n, p);
        p += n;
    }
}

void hk_config_print_help(FILE *out)
{
    fprintf(out,
            "Options (each is an environment variable and a --flag):\n"
            "  Sources: defaults < .env < environment < --flags\n"
            "  (the .env file in the working directory is read if present; the environment wins\n"
            "  over it, flags win over both). Flags are --name=VALUE or --name VALUE; a boolean\n"
            "  flag alone means 1 and takes another value only as --name=VALUE. Booleans: 1/0,\n"
            "  true/false, yes/no, on/off. An empty value is the empty string for text options\n"
            "  and an error for numbers. A bad value stops start-up with a message naming it.\n");
    for (int sec = SEC_SERVER; sec <= SEC_LOGS; sec++) {
        fprintf(out, "\n%s:\n  %-30s %-32s %s\n", section_names[sec], "ENVIRONMENT", "FLAG",
                "DEFAULT");
        for (int i = 0; i < NOPTS; i++) {
            const opt *o = &opts[i];
            if (o->section != sec) continue;
            char flag[64], range[300];
            snprintf(flag, sizeof flag, "--%s", o->flag);
            fprintf(out, "  %-30s %-32s %s\n", o->env, flag, o->def[0] ? o->def : "\"\"");
            range[0] = '\0';
            if (o->type == T_INT)
                snprintf(range, sizeof range, " Integer, %lld..%lld.", (long long)o->min,
                         (long long)o->max);
            else if (o->type == T_FLOAT)
                snprintf(range, sizeof range, " Number, %g..%g.", o->dmin, o->dmax);
            else if (o->type == T_BOOL)
                snprintf(range, sizeof range, " Boolean.");
            else if (o->type == T_ENUM) {
                char list[256];
                list_allowed(o->allowed, list, sizeof list);
                snprintf(range, sizeof range, " One of: %s.", list);
            }
            char text[1024];
            snprintf(text, sizeof text, "%s%s", o->help, range);
            print_wrapped(out, 6, 100, text);
        }
    }
}

/* ---- .env ----------------------------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one line (no '\n', trailing '\r' removed) into work (which has room for n + 2 bytes)
 * and calls fn. 0 or -1 with why set. */
static int dotenv_line(const char *p, size_t n, char *work,
                       void (*fn)(const char *, const char *, void *), void *arg, const char **why)
{
    size_t i = 0;
    while (i < n && is_blank(p[i])) i++;
    if (i == n || p[i] == '#') return 0;
    if (memchr(p, '\0', n)) return *why = "contains a NUL byte", -1;
    if (n - i > 7 && memcmp(p + i, "export", 6) == 0 && is_blank(p[i + 6])) {
        i += 6;
        while (i < n && is_blank(p[i])) i++;
    }
    size_t name_start = i;
    if (i == n || !(is_alnum((unsigned char)p[i]) || p[i] == '_') || (p[i] >= '0' && p[i] <= '9'))
        return *why = "expected NAME=value (NAME: letters, digits, '_')", -1;
    while (i < n && (is_alnum((unsigned char)p[i]) || p[i] == '_')) i++;
    size_t name_len = i - name_start;
    while (i < n && is_blank(p[i])) i++;
    if (i == n || p[i] != '=') return *why = "expected NAME=value (NAME: letters, digits, '_')", -1;
    i++;
    while (i < n && is_blank(p[i])) i++;

    memcpy(work, p + name_start, name_len);
    work[name_len] = '\0';
    char *val = work + name_len + 1;
    size_t vlen = 0;
    if (i < n && p[i] == '\'') {
        const char *close = memchr(p + i + 1, '\'', n - i - 1);
        if (!close) return *why = "unterminated single quote", -1;
        vlen = (size_t)(close - (p + i + 1));
        memcpy(val, p + i + 1, vlen);
        i = (size_t)(close - p) + 1;
    } else if (i < n && p[i] == '"') {
        int closed = 0;
        for (i++; i < n; i++) {
            char c = p[i];
            if (c == '"') {
                closed = 1;
                i++;
                break;
            }
            if (c == '\\' && i + 1 < n) {
                char e = p[++i];
                switch (e) {
                case 'n':
                    val[vlen++] = '\n';
                    break;
                case 'r':
                    val[vlen++] = '\r';
                    break;
                case 't':
                    val[vlen++] = '\t';
                    break;
                case '"':
                    val[vlen++] = '"';
                    break;
                case '\\':
                    val[vlen++] = '\\';
                    break;
                default:
                    val[vlen++] = '\\', val[vlen++] = e;
                    break; /* kept as written */
                }
                continue;
            }
            val[vlen++] = c;
        }
        if (!closed) return *why = "unterminated double quote", -1;
    } else {
        /* unquoted: up to the end, or a '#' after a blank (a comment); trailing blanks go */
        size_t start = i;
        while (i < n && !(p[i] == '#' && i > start && is_blank(p[i - 1]))) i++;
        size_t end = i;
        while (end > start && is_blank(p[end - 1])) end--;
        vlen = end - start;
        memcpy(val, p + start, vlen);
        i = n;
    }
    while (i < n && is_blank(p[i])) i++;
    if (i < n && p[i] != '#') return *why = "unexpected text after the closing quote", -1;
    val[vlen] = '\0';
    fn(work, val, arg);
    return 0;
}

int hk_dotenv_parse(const char *text, size_t len,
                    void (*fn)(const char *name, const char *value, void *arg), void *arg,
                    char *err, size_t errlen)
{
    if (!text && len) return HK_EINVAL;
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 byte order mark */
    int line = 0, rc = HK_OK;
    char *work = NULL;
    size_t workcap = 0;
    while (pos < len) {
        line++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - pos;
        if (n && text[pos + n - 1] == '\r') n--;
        if (n + 2 > workcap) {
            workcap = n + 2;
            free(work);
            work = hk_malloc(workcap);
        }
        const char *why = NULL;
        if (dotenv_line(text + pos, n, work, fn, arg, &why)) {
            if (errlen) snprintf(err, errlen, "line %d: %s", line, why);
            rc = HK_EINVAL;
            break;
        }
        pos = nl ? end + 1 : len;
    }
    if (work) {
        explicit_bzero(work, workcap);
        free(work);
    }
    return rc;
}

/* ---- CIDR ----------------------------------------------------------------------------------- */

/* Parses one "addr[/prefix]" item (no surrounding spaces) into out. */
static int cidr_parse_one(const char *item, hk_cidr *out, const char **why)
{
    char addr[64];
    const char *slash = strchr(item, '/');
    size_t alen = slash ? (size_t)(slash - item) : strlen(item);
    if (alen == 0 || alen >= sizeof addr) return *why = "not an IPv4 or IPv6 address", -1;
    memcpy(addr, item, alen);
    addr[alen] = '\0';
    int v4 = 0, max;
    memset(out, 0, sizeof *out);
    uint8_t a4[4];
    if (inet_pton(AF_INET, addr, a4) == 1) {
        v4 = 1;
        max = 32;
        out->addr[10] = 0xff, out->addr[11] = 0xff;
        memcpy(out->addr + 12, a4, 4);
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        max = 128;
    } else {
        return *why = "not an IPv4 or IPv6 address", -1;
    }
    int prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 3 || p[digits] || (digits > 1 && p[0] == '0'))
            return *why = v4 ? "prefix must be 0..32" : "prefix must be 0..128", -1;
        prefix = (int)strtol(p, NULL, 10);
        if (prefix > max) return *why = v4 ? "prefix must be 0..32" : "prefix must be 0..128", -1;
    }
    out->prefix = v4 ? prefix + 96 : prefix;
    /* host bits must be zero: refuse rather than silently widen or narrow what is allowed */
    for (int bit = out->prefix; bit < 128; bit++) {
        if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
            return *why = "host bits are set (the address must be the network's first one)", -1;
    }
    return 0;
}

int hk_cidr_list_parse(const char *s, hk_cidr *out, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = s ? s : "";
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) return 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strcspn(p, ",");
        size_t tl = len;
        while (tl > 0 && (p[tl - 1] == ' ' || p[tl - 1] == '\t')) tl--;
        char item[80];
        const char *why = NULL;
        hk_cidr c;
        if (tl == 0) {
            why = "empty item";
        } else if (tl >= sizeof item) {
            why = "not an IPv4 or IPv6 address";
        } else {
            memcpy(item, p, tl);
            item[tl] = '\0';
            if (cidr_parse_one(item, &c, &why) == 0 && n >= max) why = "too many networks";
        }
        if (why) {
            char q[128];
            char tmp[80];
            size_t show = tl < sizeof tmp ? tl : sizeof tmp - 1;
            memcpy(tmp, p, show);
            tmp[show] = '\0';
            quote_value(tmp, q, sizeof q);
            if (strcmp(why, "too many networks") == 0)
                snprintf(err, errlen, "at most %d networks may be listed", max);
            else
                snprintf(err, errlen, "bad network %s: %s", q, why);
            return HK_EINVAL;
        }
        out[n++] = c;
        p += len;
        if (!*p) break;
        p++; /* the comma */
    }
    return n;
}
