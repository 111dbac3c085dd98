/*
 * store.h: the store interface, the only door to hookd's durable truth (SPEC §2). Two
 * backends implement it: SQLite (sqlite.c, the embedded default) and PostgreSQL (pg.c).
 *
 * Every operation is a request (hk_req): the caller fills the inputs of one `kind`, submits it
 * with hk_store_submit, and gets `done` called on the loop thread exactly once, never from
 * inside the submit call. Backends run requests on their own threads: write requests that
 * wait together are committed together (group commit: one transaction and one fsync for many
 * requests, each inside its own savepoint so one failure does not undo the others), reads run on
 * separate connections. A request's `rc` is 0, or HK_ENOTFOUND (unknown id, or another
 * organization's), HK_ECONFLICT, HK_EINVAL (with `err`), or HK_EUNAVAIL when the store cannot
 * be reached or cannot commit (the API answers 503 and nothing was stored).
 *
 * Ownership: inputs belong to the caller and must stay valid until `done`; outputs are
 * allocated by the store and released with hk_req_clear (which leaves the inputs alone). A
 * caller that takes an output (say the jobs) sets the pointer to NULL first.
 *
 * Secrets: callers always see plaintext. With WEBHOOK_ENCRYPTION_KEY the store encrypts
 * secrets, Ed25519 private keys and custom header values (and the recorded static request
 * headers, hk_result) before they reach a backend and decrypts them after, in store.c, so
 * backends only ever hold ciphertext.
 *
 * Times are int64 ms since the epoch; 0 means "none" (NULL in SQL).
 */
#ifndef HK_STORE_H
#define HK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/map.h"
#include "core/metrics.h"
#include "store/job.h"

struct event_base;

/* ---- records ------------------------------------------------------------------------------ */

enum hk_wh_status { HK_WH_ACTIVE = 0, HK_WH_PAUSED, HK_WH_DISABLED, HK_WH_FAILED };
const char *hk_wh_status_name(int status);
int hk_wh_status_parse(const char *s); /* -1 if unknown */

typedef struct hk_webhook {
    char id[HK_ID_MAX];
    char *name;
    char *url;
    char *secret;      /* plaintext */
    char *prev_secret; /* plaintext of the secret being rotated out, or NULL */
    int64_t prev_secret_expires_at;
    char *org_id;
    char *user_id;        /* or NULL */
    int status;           /* enum hk_wh_status */
    char *custom_headers; /* compact JSON object, or NULL */
    int rate_limit_enabled;
    int max_per_minute;
    int max_retries;
    char *filtering_options; /* canonical compact JSON (hk_filter_canonical), or NULL */
    unsigned schemes;        /* HK_SIG_* bits */
    char **events;           /* subscribed types/patterns, in creation order */
    int nevents;
    int64_t last_triggered_at;
    int64_t success_count;
    int64_t failure_count;
    int64_t consecutive_failures;
    int64_t deleted_at;
    int64_t created_at;
    int64_t updated_at;
    /* delivery policy (docs/API.md "Delivery policy"): NULL / 0 = the global one */
    char *retry_schedule; /* the webhook's retrySchedule as stored: "1s,5s,30s" */
    int timeout_ms;       /* its timeoutMs */
    /* Ed25519 (scheme "ed25519"): plaintext private key texts ("whsk_...", crypto.h), or NULL */
    char *signing_key;
    char *prev_signing_key; /* the key being rotated out, signing until the time below */
    int64_t prev_signing_key_expires_at;
    int org_disabled; /* its organization is disabled: deliveries are held (parked) */
    int fifo;         /* ordering "fifo": one delivery at a time, in creation order (claims) */
} hk_webhook;

void hk_webhook_free(hk_webhook *w); /* frees the members and w; NULL ok */
hk_webhook *hk_webhook_dup(const hk_webhook *w);

typedef struct hk_attempt {
    char id[HK_ID_MAX];
    int attempt_number;
    int status;          /* HK_DL_SUCCESS or HK_DL_FAILED */
    int response_status; /* 0 if none */
    char *response_body;
    char *response_headers; /* JSON object or NULL */
    int duration_ms;
    char *error_message;
    int64_t created_at;
} hk_attempt;

typedef struct hk_delivery {
    char id[HK_ID_MAX];
    char webhook_id[HK_ID_MAX];
    char event_id[HK_ID_MAX];
    char replay_of[HK_ID_MAX]; /* "" if not a replay */
    char *event_type;
    char *event_data; /* the data as delivered (after excludeFields), compact JSON */
    int64_t event_created_at;
    int status; /* enum hk_dl_status */
    char *request_url;
    char *request_headers; /* JSON object of the last attempt's headers, or NULL */
    /* store-private, NULL for callers: the stored static part of request_headers (see
     * hk_result) as the backend read it; store.c decrypts it and joins it in front of
     * request_headers before the caller sees the delivery */
    char *request_headers_static;
    int response_status;
    char *response_body;
    char *response_headers;
    int attempt_number;
    int max_attempts;
    int64_t next_retry_at;
    int64_t last_attempt_at;
    char *error_message;
    int64_t completed_at;
    int duration_ms;
    int64_t created_at;
    hk_attempt *attempts;
    int nattempts;
} hk_delivery;

void hk_delivery_clear(hk_delivery *d);

typedef struct hk_event_delivery { /* a delivery as listed under its event */
    char id[HK_ID_MAX];
    char webhook_id[HK_ID_MAX];
    int status;
} hk_event_delivery;

typedef struct hk_event {
    char id[HK_ID_MAX];
    char *type;
    char *payload; /* compact JSON object */
    char *source;  /* api | manual | nats | kumomta */
    char *idempotency_key;
    char *org_id;
    char *user_id;
    int64_t created_at;
    hk_event_delivery *deliveries; /* only for HK_REQ_EVENT_GET */
    int ndeliveries;
} hk_event;

void hk_event_clear(hk_event *e);

typedef struct hk_apikey {
    char id[HK_ID_MAX];
    char *org_id;
    char *name;
    char *prefix; /* first characters of the key, for display */
    int64_t created_at;
    int64_t revoked_at;
    int64_t last_used_at;
    int scope;        /* enum hk_scope */
    int org_disabled; /* its organization is disabled (the key answers 401) */
} hk_apikey;

/* A key's (or session's) scope: read may only use GET routes. */
enum hk_scope { HK_SCOPE_FULL = 0, HK_SCOPE_READ = 1 };
const char *hk_scope_name(int scope);
int hk_scope_parse(const char *s); /* -1 if unknown */

#define HK_ORG_ID_MAX 129 /* [A-Za-z0-9_.:-]{1,128} + NUL */

/* An organization (tenancy, SPEC §7). Admin keys (org_id "") belong to none. Rows are made by
 * the API (ORG_CREATE) or implicitly when a key is made for an organization (CLI, bootstrap). */
typedef struct hk_org {
    char id[HK_ORG_ID_MAX];
    char *name;
    char *metadata; /* compact JSON object */
    int disabled;   /* keys answer 401, deliveries are held (parked) */
    int64_t created_at;
    int64_t updated_at;
} hk_org;

/* 1 if s is a valid organization id: [A-Za-z0-9_.:-]{1,128}. */
int hk_org_id_valid(const char *s);
/* ---- lists ------------------------------------------------------------------------------- */

/* Lists (webhooks, events, a webhook's deliveries) are newest first: created_at descending,
 * ties by id descending. A page starts either at an offset (page, limit) or after a keyset
 * position (`after`, the sort key of the last row of the previous page; the API's `cursor`):
 * the backends answer both with an index range scan and no sort. A keyset walk returns every
 * row that exists when it starts exactly once, whatever is inserted meanwhile (new rows sort
 * before the first page). `total` counts at most HK_LIST_COUNT_CAP rows (a bounded index scan,
 * never a COUNT(*) of a whole table): `capped` says there are more. An offset page costs a
 * walk over every row before it (PostgreSQL computes each skipped row: about 10 us a row), so
 * the API allows offsets only below HK_LIST_OFFSET_MAX rows; cursors have no bound. */
#define HK_LIST_COUNT_CAP  10000
#define HK_LIST_OFFSET_MAX 1000
/* Above every row: what an empty `after` means (year 10000 in ms; a valid timestamptz). */
#define HK_CURSOR_TOP 253402300800000LL

typedef struct hk_cursor {
    int64_t at;             /* created_at of the last row seen */
    char id[HK_ORG_ID_MAX]; /* its id (any list's, organizations' the longest); "" = from the
                               top of the list (at is not read) */
} hk_cursor;

/* ---- requests ----------------------------------------------------------------------------- */

enum hk_req_kind {
    HK_REQ_PING = 1,
    HK_REQ_APIKEY_CREATE, /* write */
    HK_REQ_APIKEY_ENSURE, /* write: create if the hash is unknown (bootstrap key) */
    HK_REQ_APIKEY_LIST,
    HK_REQ_APIKEY_REVOKE, /* write */
    HK_REQ_APIKEY_LOOKUP,
    HK_REQ_APIKEY_COUNT,
    HK_REQ_WEBHOOK_CREATE, /* write */
    HK_REQ_WEBHOOK_GET,
    HK_REQ_WEBHOOK_LIST,
    HK_REQ_WEBHOOK_PATCH,  /* write */
    HK_REQ_WEBHOOK_DELETE, /* write */
    HK_REQ_WEBHOOK_LOAD,   /* by ids, any organization: the dispatcher's cache */
    HK_REQ_INGEST,         /* write */
    HK_REQ_EVENT_LIST,
    HK_REQ_EVENT_GET,
    HK_REQ_DELIVERY_LIST,
    HK_REQ_DELIVERY_GET,
    HK_REQ_CLAIM,      /* write */
    HK_REQ_RESULTS,    /* write */
    HK_REQ_RELEASE,    /* write */
    HK_REQ_HEARTBEAT,  /* write */
    HK_REQ_REPLAY,     /* write: manual retry of one delivery, or recover of a range */
    HK_REQ_CLAIM_IDS,  /* write: lease the given deliveries if their rows agree (Redis claims) */
    HK_REQ_DUE_SCAN,   /* read: one page of the due index (the Redis sweeper) */
    HK_REQ_RESCHEDULE, /* write: later due times of deliveries node_id holds (u.release) */
    /* read: the store's size, for /metrics (store_stats.c) */
    HK_REQ_STORE_STATS,
    HK_REQ_ORG_CREATE,      /* write: u.org (HK_ECONFLICT if the id exists) */
    HK_REQ_ORG_GET,         /* u.org.id */
    HK_REQ_ORG_LIST,        /* u.org_list, newest first */
    HK_REQ_ORG_PATCH,       /* write: u.org; disabling parks the organization's deliveries,
                               enabling unparks those of its active webhooks (u.org.unparked) */
    HK_REQ_SESSION_CREATE,  /* write: u.session, a portal session of req->org_id (which must
                               exist: HK_ENOTFOUND; and be enabled: HK_ECONFLICT) */
    HK_REQ_SESSION_REVOKE,  /* write: u.session.id of req->org_id (HK_ENOTFOUND if none active) */
    HK_REQ_DELIVERY_SEARCH, /* u.dl_search: the organization's deliveries, newest first */
    HK_REQ_PRUNE,           /* write: one small step of retention (u.prune), or its dry-run count */
    HK_REQ_WEBHOOK_STATS,   /* u.wstats: a webhook's statistics from the rollups (rollup.h) */
    HK_REQ_ORG_STATS,       /* u.ostats: the organization's webhooks with their last 24 h */
    HK_REQ_KIND_MAX
};

/* 1 if requests of this kind change the store (they go to the group-commit writer). */
int hk_req_kind_writes(int kind);
const char *hk_req_kind_name(int kind);

/* Webhook fields given by a create or patch; `has` bits say which are present. */
enum {
    HK_WF_NAME = 1 << 0,
    HK_WF_URL = 1 << 1,
    HK_WF_SECRET = 1 << 2,
    HK_WF_STATUS = 1 << 3,
    HK_WF_HEADERS = 1 << 4,
    HK_WF_RATE_ENABLED = 1 << 5,
    HK_WF_RATE_MAX = 1 << 6,
    HK_WF_MAX_RETRIES = 1 << 7,
    HK_WF_FILTER = 1 << 8,
    HK_WF_SCHEMES = 1 << 9,
    HK_WF_EVENTS = 1 << 10,
    HK_WF_USER = 1 << 11,
    /* With HK_WF_SECRET: a rotation. The old secret becomes the previous one, still signing
     * until prev_expires_at (0: it stops at once). */
    HK_WF_ROTATE = 1 << 12,
    HK_WF_RETRY_SCHEDULE = 1 << 13,
    HK_WF_TIMEOUT = 1 << 14,
    /* signing_key: the Ed25519 key of a webhook that has none yet (one it has is kept) */
    HK_WF_SIGNING_KEY = 1 << 15,
    /* With HK_WF_SIGNING_KEY: a rotation. signing_key replaces the current key, which becomes
     * the previous one, still signing until prev_expires_at (0: it stops at once). */
    HK_WF_ROTATE_KEY = 1 << 16,
    HK_WF_ORDERING = 1 << 17, /* ordering: fifo (1) or parallel (0) */
};

typedef struct hk_webhook_fields {
    unsigned has;
    const char *name, *url, *secret, *user_id;
    int status;
    const char *custom_headers; /* compact JSON object or NULL to clear */
    int rate_limit_enabled, max_per_minute, max_retries;
    const char *filtering_options; /* canonical JSON or NULL to clear */
    unsigned schemes;
    const char *const *events;
    int nevents;
    int64_t prev_expires_at;    /* HK_WF_ROTATE */
    const char *retry_schedule; /* "1s,5s" (validated) or NULL to clear */
    int timeout_ms;             /* or 0 to clear */
    const char *signing_key;    /* HK_WF_SIGNING_KEY: a private key text (crypto.h) */
    int fifo;                   /* HK_WF_ORDERING: 1 = "fifo", 0 = "parallel" */
} hk_webhook_fields;

/* Organization fields given by a create or patch (u.org.has). */
enum { HK_OF_NAME = 1 << 0, HK_OF_METADATA = 1 << 1, HK_OF_DISABLED = 1 << 2 };

typedef struct hk_ingest_item {
    /* in */
    const char *type;
    const char *data; /* compact JSON object */
    size_t data_len;
    const char *idem_key; /* or NULL */
    const char *source;   /* "api", "manual", "nats", "kumomta" */
    const char *user_id;  /* or NULL */
    /* out */
    char id[HK_ID_MAX]; /* the event's id (the first event's id for a duplicate) */
    char *dup_type;     /* for a duplicate: the first event's type (owned) */
    int duplicate;
    int ndeliveries;
} hk_ingest_item;

typedef struct hk_result { /* one finished attempt, for HK_REQ_RESULTS */
    char delivery_id[HK_ID_MAX];
    char webhook_id[HK_ID_MAX];
    char attempt_id[HK_ID_MAX];
    int attempt_number; /* this attempt's number, 1-based */
    int status;         /* new delivery status */
    int attempt_ok;     /* the attempt succeeded (2xx) */
    int final;          /* success or final failure: counts for the webhook's health */
    int gone;           /* 410: the webhook becomes disabled */
    int response_status;
    char *response_body; /* owned by the dispatcher's batch */
    char *response_headers;
    /* The headers sent, in two parts so that a delivery row does not carry a copy of its
     * webhook's custom headers: request_headers is a JSON object of the headers of this attempt
     * (X-Delivery-Id, signatures), headers_static a JSON object of the headers every attempt of
     * this webhook version sends (Content-Type, User-Agent, custom headers), stored once per
     * distinct content under headers_ref (hk_headers_ref); the API shows static + attempt
     * headers in the order sent. headers_static NULL: request_headers is the whole set. */
    char *request_headers;
    hk_blob *headers_static; /* a reference owned by the batch, or NULL */
    char headers_ref[65];
    const char *headers_static_db; /* store-private: what the backend stores under headers_ref
                                      (encrypted with a key), NULL = no write needed */
    char *request_url;
    char *error_message;
    int duration_ms;
    int64_t started_at;
    int64_t finished_at;
    int64_t created_at;    /* the delivery's creation (end-to-end latency; 0: unknown) */
    int64_t next_retry_at; /* for HK_DL_RETRYING */
    int keep_lease;        /* the job stays in this node's memory (retry soon) */
    int fifo;              /* the webhook is "fifo" as the dispatcher knows it, and the queue
                              wants heads: a final result asks for the line's next head
                              (results.heads) */
    int stored;            /* store-private: this request stored the attempt row (0: a
                              repeated result, a no-op; store.c resets it per run) */
} hk_result;

typedef struct hk_stats_bucket { /* one bucket of a webhook's statistics (rollup.h) */
    int64_t start;               /* wall ms */
    int64_t delivered, failed, given_up;
    int64_t att_p[3], e2e_p[3]; /* p50, p95, p99 in ms; -1: no sample */
} hk_stats_bucket;

typedef struct hk_org_stat { /* one webhook of an organization's summary */
    char id[HK_ID_MAX];
    char *name, *url, *status; /* owned */
    int64_t delivered, failed, given_up;
    int64_t last_at; /* 0: no attempt kept */
    int64_t backlog;
    int capped;
} hk_org_stat;

typedef struct hk_wh_change { /* a webhook whose status a results batch changed */
    char id[HK_ID_MAX];
    int status;
} hk_wh_change;

typedef struct hk_release { /* a leased delivery handed back; also any (id, due time) */
    char id[HK_ID_MAX];
    int64_t next_retry_at; /* new due time; 0 = park (held until its webhook is active) */
} hk_release;

typedef struct hk_req hk_req;
typedef void (*hk_req_done)(hk_req *req);

struct hk_req {
    int kind;      /* enum hk_req_kind */
    int rc;        /* result: 0 or HK_E* */
    char err[256]; /* message for HK_EINVAL / HK_ECONFLICT, person-readable */
    hk_req_done done;
    void *udata;
    hk_req *next;         /* store-private queue link */
    int64_t submitted_us; /* store-private */

    const char *org_id;  /* organization scope of API requests */
    const char *node_id; /* this node, for lease requests */
    int64_t now;         /* wall clock of the request, ms */

    union {
        /* APIKEY_CREATE / APIKEY_ENSURE: a key of req->org_id ("" = an admin key, of no
         * organization). The organization's row is made if missing, unless org_must_exist
         * (the API): then HK_ENOTFOUND. */
        struct {
            const char *name;
            const char *key_hash; /* sha256 hex of the key */
            const char *prefix;
            int scope; /* enum hk_scope */
            int org_must_exist;
            hk_apikey out;
            int created; /* ENSURE: 1 if it was new */
        } key_create;
        /* APIKEY_LIST: every key (org NULL), or one organization's (HK_ENOTFOUND if it does
         * not exist) */
        struct {
            const char *org;
            hk_apikey *items;
            int n;
        } key_list;
        struct {
            const char *id;
            const char *org; /* NULL: any organization (CLI); else only a key of org */
        } key_revoke;
        struct {
            const char *key_hash;
            char org[160];
            char key_id[HK_ID_MAX];
            int found;
            int scope;        /* enum hk_scope */
            int org_disabled; /* found, but its organization is disabled */
            /* no key has the hash, but a portal session does (not revoked, not expired at
             * req->now): found = 1, session = 1, its expiry */
            int session;
            int64_t expires_at;
            char *webhook_ids; /* a session limited to these webhooks: their ids, each followed
                                  by a space (owned); NULL = every webhook */
        } key_lookup;
        struct {
            int64_t count;
        } key_count;

        /* WEBHOOK_CREATE: with max_per_org > 0, HK_ELIMIT (err set) if the organization
         * already has that many webhooks not deleted (HOOKD_MAX_WEBHOOKS_PER_ORG). */
        struct {
            const hk_webhook_fields *f;
            hk_webhook *out;
            int max_per_org;
        } wh_create;
        struct {
            const char *id;
            hk_webhook *out;
        } wh_get;
        struct {
            int status;      /* -1 = any */
            int page, limit; /* page: 1 with `after` (store.h, lists) */
            hk_cursor after;
            hk_webhook **items;
            int n;
            int64_t total;
            int capped; /* total stopped at HK_LIST_COUNT_CAP */
            int more;   /* rows follow the last item */
        } wh_list;
        struct {
            const char *id;
            const hk_webhook_fields *f;
            hk_webhook *out;
            int unparked;
            int emitted; /* out: operational-event deliveries created due now (a manual
                            disable: hookd.webhook.disabled) */
        } wh_patch;
        struct {
            const char *id;
            int64_t failed;
        } wh_delete;
        struct {
            const char *const *ids;
            int nids;
            hk_webhook **items;
            int n;
        } wh_load;

        struct {
            hk_ingest_item *items;
            int n;
            int lease_budget; /* how many new deliveries may be leased to node_id */
            /* caps (0 = none): HK_ELIMIT (err set, nothing stored) if one event of the request
             * would create more than max_per_event deliveries, or all of them together more
             * than max_total (HOOKD_MAX_DELIVERIES_PER_EVENT / _PER_BATCH) */
            int max_per_event, max_total;
            hk_job **jobs;
            int njobs; /* leased deliveries, for the dispatcher */
            hk_webhook **webhooks;
            int nwebhooks;        /* the webhooks of those jobs */
            hk_map webhooks_seen; /* their ids (rows.c's hk_out_webhook; freed with them) */
            /* out: the deliveries created due (webhook active) but NOT leased because the
             * lease budget ran out, with their due time, so that a queue keeping its own
             * schedule (Redis) can add them. Every backend fills it. */
            hk_release *queued;
            int nqueued;
        } ingest;

        struct {
            const char *type; /* filter or NULL */
            int page, limit;
            hk_cursor after;
            hk_event *items;
            int n;
            int64_t total;
            int capped, more; /* as in wh_list */
        } ev_list;
        struct {
            const char *id;
            hk_event out;
        } ev_get;
        struct {
            const char *webhook_id;
            int status; /* -1 = any */
            int page, limit;
            hk_cursor after;
            hk_delivery *items;
            int n;
            int64_t total;
            int capped, more; /* as in wh_list */
        } dl_list;
        struct {
            const char *id;
            hk_delivery out;
        } dl_get;

        /* CLAIM: leases to node_id up to `limit` claimable rows (open, not leased, not parked)
         * due at or before now + horizon, soonest first; rows of a webhook that is not active
         * are parked (next_retry_at NULL) instead and counted in `parked`.
         * CLAIM_IDS (same fields): a queue with its own schedule (Redis) claimed these ids;
         * the rows decide. Each id whose row is open, not leased (by any node, this one
         * included), not parked and due at or before now + horizon is leased to node_id and
         * returned as a job (if its webhook is not active the row is parked instead, as
         * CLAIM does); a row that passes all but is due later goes to `later` with the
         * row's due time (for the queue to reschedule); every other id (unknown, finished,
         * parked, leased) is dropped. `limit` is not read; `parked` counts every id not
         * returned as a job (parked, later or dropped). Order of jobs: as in ids. */
        struct {
            int64_t horizon; /* claim deliveries due at or before now + horizon */
            int limit;
            const char *const *ids;
            int nids; /* CLAIM_IDS input */
            hk_job **jobs;
            int njobs;
            hk_webhook **webhooks;
            int nwebhooks;
            hk_map webhooks_seen; /* their ids (rows.c's hk_out_webhook; freed with them) */
            int parked;           /* rows found for non-active webhooks and parked */
            hk_release *later;
            int nlater; /* CLAIM_IDS output */
        } claim;
        /* DUE_SCAN (read): the claimable rows (open, not leased, not parked) due at or before
         * `until`, in due order, at most `limit`, starting after `cursor` ("" = from the
         * first). The cursor is the backend's (opaque to callers, NUL-terminated); on return
         * it names the position after the last row returned, and `more` is 1 when the page
         * was full (a next page may exist). */
        struct {
            int64_t until;
            int limit;
            char cursor[64];
            hk_release *items;
            int n;
            int more;
        } due_scan;
        struct {
            hk_result *items;
            int n;
            int disable_after; /* HOOKD_DISABLE_AFTER */
            hk_wh_change *changes;
            int nchanges;
            int emitted; /* out: deliveries of operational events (opevents.h) this batch
                            created due now, for the queue to learn of (hk_queue_kick) */
            /* out: for each webhook with a final result marked fifo whose row says "fifo"
             * (once per webhook), the new head of its line if it is claimable (open, not
             * leased, not parked), with its due time: it became claimable only now that the
             * head before it ended, so a queue keeping its own schedule (Redis) adds it (a
             * hint: the claim still decides). Read after the result's rows were written. */
            hk_release *heads;
            int nheads;
        } results;
        /* RELEASE: leased deliveries handed back (lease dropped, next due time set).
         * RESCHEDULE (same fields): each item whose row is open, leased to node_id and due
         * before the item's time gets that due time; the lease stays. For deliveries a node
         * keeps in memory but will start later (the rate limit): the row then says when, for
         * the API (nextRetryAt) and for whoever takes the delivery over after a crash. */
        struct {
            hk_release *items;
            int n;
        } release;
        struct {
            int64_t alive_until;
            int64_t reclaimed; /* deliveries taken back from dead nodes */
        } heartbeat;
        /* REPLAY: with delivery_id, a new delivery of that one (HK_ENOTFOUND if unknown in the
         * organization); otherwise every `failed` delivery of webhook_id created in
         * [since, until) (until 0 = no end). HK_ECONFLICT (err set) if the webhook is not
         * active. New deliveries are pending, due now, with replay_of set. */
        struct {
            const char *delivery_id;
            const char *webhook_id;
            int64_t since, until;
            char new_id[HK_ID_MAX]; /* the (first) new delivery */
            int64_t count;
            hk_webhook *webhook; /* out: the webhook, for the dispatcher */
        } replay;
        /* STORE_STATS (read): bytes, what the store occupies (SQLite: page_count x page_size
         * of the database plus the size of its -wal file; PostgreSQL: pg_total_relation_size
         * summed over the tables of hookd's schema, indexes and TOAST included). With
         * want_rows, also rows[HK_TBL_*]: SQLite counts them (count(*), linear in the table:
         * store_stats.c spaces these out), PostgreSQL reads the statistics' live-row estimate
         * (pg_stat_user_tables.n_live_tup, partitions included), which lags commits by up
         * to a few seconds. Without want_rows, rows are left as they were. */
        struct {
            int want_rows;
            int64_t rows[HK_TBL_MAX];
            int64_t bytes;
        } stats;

        /* ORG_CREATE (id NULL: generated), ORG_GET (id), ORG_PATCH (id; `has` says which of
         * name, metadata, disabled are given) */
        struct {
            const char *id;
            unsigned has; /* HK_OF_* */
            const char *name;
            const char *metadata; /* compact JSON object */
            int disabled;
            hk_org out;
            int unparked; /* PATCH: deliveries made due again by enabling */
        } org;
        /* ORG_LIST: a page of organizations, newest first, at an offset or after a keyset
         * position (as the lists above); total is bounded (capped), more = 1 if a page
         * follows (items holds at most limit) */
        struct {
            int page, limit;
            hk_cursor after;
            hk_org *items;
            int n, more, capped;
            int64_t total;
        } org_list;
        /* DELIVERY_SEARCH: the deliveries of req->org_id's webhooks (deleted ones included)
         * matching every filter given (NULL / -1 / 0: none), newest first (created_at, id),
         * after the cursor (before_at, before_id: the last row of the previous page; 0/NULL
         * = from the newest), at most `limit`, each with its attempts; `more` is 1 when
         * another page follows. */
        struct {
            int status; /* enum hk_dl_status, -1 any */
            const char *event_type, *webhook_id, *event_id, *delivery_id, *idem_key;
            int64_t since, until; /* created_at in [since, until) */
            int64_t before_at;
            const char *before_id;
            int limit;
            hk_delivery *items;
            int n;
            int more;
        } dl_search;
        /* SESSION_CREATE (token_hash, scope, expires_at, webhook_ids -> id; HK_EINVAL naming
         * the first of webhook_ids that is not a webhook of the organization) /
         * SESSION_REVOKE (id) */
        struct {
            const char *token_hash; /* sha256 hex of the token */
            int scope;              /* enum hk_scope */
            int64_t expires_at;
            const char *const *webhook_ids; /* NULL: every webhook */
            int nwebhook_ids;
            char id[HK_ID_MAX]; /* CREATE: out; REVOKE: in (copied by the caller) */
        } session;
        /* PRUNE: one step of retention (store/prune.h computes the cut-offs). Deletes up to
         * `limit` deliveries finished (success, failed) before dl_cut (0: none), oldest first,
         * with their attempts, and then each of their events that has no delivery left; then
         * scans up to `limit` events created before ev_cut (0: none) after the position kept
         * in the database (table hk_prune_position), in (created_at, id) order, deleting
         * those with no delivery at all, and moves the position to the last one scanned
         * (out: ev_pos_at, ev_pos_id). Open deliveries are never
         * touched, so neither are their events. dl_floor: no finished delivery is older than
         * this (the last step's `oldest`; 0 = unknown), which lets an index scan skip what
         * earlier steps deleted. With dry_run, deletes nothing: counts everything that
         * complete pruning at these cut-offs would delete (whatever limit says).
         * Out: the rows deleted (or counted) per table; more = 1 if a part ran out of limit
         * (a next step has work); oldest = completed_at of the oldest finished delivery left
         * (0: none); skipped = 1 if another node holds the prune lock (PostgreSQL: nothing
         * was done). SQLite also returns up to vacuum_pages freed pages to the file system
         * (incremental vacuum) beyond a reserve kept for reuse; vacuumed says how many. */
        struct {
            int64_t dl_cut, ev_cut, dl_floor;
            int limit;
            int dry_run;
            int vacuum_pages;
            int64_t ev_pos_at;
            char ev_pos_id[HK_ID_MAX];
            int64_t events, deliveries, attempts, vacuumed;
            int64_t oldest;
            int more, skipped;
        } prune;
        /* WEBHOOK_STATS: webhook_id of the request's organization (HK_ENOTFOUND if none) in
         * buckets of `interval` ms from `from` (a multiple of interval) to `to` (exclusive):
         * n = ceil((to - from) / interval) buckets, every one (empty ones too); backlog: its
         * open deliveries, counted up to HK_LIST_COUNT_CAP (capped = 1 past it). */
        struct {
            const char *webhook_id;
            int64_t from, to, interval;
            hk_stats_bucket *items;
            int n;
            int64_t backlog;
            int capped;
        } wstats;
        /* ORG_STATS: the organization's webhooks (not deleted) with id > after, by id, at most
         * limit (more = 1 if others follow), with their rollups since `since` added up, the
         * time of their last attempt and their backlog (as in wstats). */
        struct {
            int64_t since;
            int limit;
            const char *after;
            hk_org_stat *items;
            int n;
            int more;
        } ostats;
    } u;
};

/* The reference under which a static header set (headers_static of hk_result) is stored:
 * lowercase hex of HMAC-SHA256 of the JSON, keyed with WEBHOOK_ENCRYPTION_KEY when there is
 * one (so the reference says nothing about encrypted header values), else of SHA-256. */
void hk_headers_ref(const hk_config *cfg, const char *json, size_t len, char out[65]);

/* Frees the outputs of req (per its kind) and zeroes them; inputs are untouched. */
void hk_req_clear(hk_req *req);

/* ---- the store ---------------------------------------------------------------------------- */

typedef struct hk_store hk_store;

/* Opens the backend chosen by cfg (PG_URL set: PostgreSQL, else SQLite at HOOKD_DB), applies
 * migrations, and, with base != NULL, starts the store threads that answer through base.
 * With base == NULL the store is synchronous: use hk_store_exec (CLI commands). Returns 0 or
 * HK_E* with err. */
int hk_store_open(hk_store **out, struct event_base *base, const hk_config *cfg, char *err,
                  size_t errlen);

/* Queues req; req->done runs later on the loop thread. After hk_store_close has begun, req
 * completes with HK_ESHUTDOWN. */
void hk_store_submit(hk_store *st, hk_req *req);

/* Runs req on the calling thread (synchronous stores only). Returns req->rc. */
int hk_store_exec(hk_store *st, hk_req *req);

/* "sqlite" or "postgres". */
const char *hk_store_backend_name(const hk_store *st);

/* 1 while the backend answers (last request or ping succeeded), else 0. */
int hk_store_healthy(const hk_store *st);

/* Requests queued and not yet completed. */
int hk_store_queued(const hk_store *st);
/* Write transactions (group commits) committed since open. Thread-safe. */
int64_t hk_store_commits(const hk_store *st);

/* Stops the threads after every queued request has completed (their callbacks run from
 * inside this call, on the caller's thread, which must be the loop thread), closes the
 * backend and frees st. */
void hk_store_close(hk_store *st);

#endif
