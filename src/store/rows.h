/*
 * rows.h: the store's rules, written once for every backend. A backend (sqlite.c, pg.c) reads
 * and writes rows; what those rows mean is decided here: which column values a webhook create or
 * patch writes (defaults, the merge, the consecutiveFailures reset), whether a new delivery is
 * leased to this node or queued, how a delivery row becomes a job (its envelope rendered once
 * per event and shared), when a webhook's results disable it (410, HOOKD_DISABLE_AFTER), the
 * growable output arrays of a request, and the state a connection keeps (the fan-out cache
 * of organizations' candidate webhooks, kept across transactions and checked against a
 * version per organization; the webhooks that got a delivery in the group).
 *
 * Nothing here runs SQL, allocates per row beyond the job a row becomes, or takes a lock: every
 * function runs on the store thread that owns the connection.
 */
#ifndef HK_STORE_ROWS_H
#define HK_STORE_ROWS_H

#include "core/map.h"
#include "store/backend.h"

/* ---- output arrays ------------------------------------------------------------------------ */

/* Appends j to a request's jobs (the array grows geometrically; ownership of j moves to it). */
void hk_out_job(hk_job ***arr, int *n, hk_job *j);
/* Appends a copy of wh to a request's webhooks unless one with its id is there already; seen
 * holds the ids appended (keys inside the copies), so a request with thousands of webhooks
 * does not compare each new one with all the others. */
void hk_out_webhook(hk_webhook ***arr, int *n, hk_map *seen, const hk_webhook *wh);
/* Appends (id, due) to a request's release list (ingest's `queued`, claim's `later`). */
void hk_out_release(hk_release **arr, int *n, const char *id, int64_t due);
/* The webhooks whose line may have a new head after a results request (store.h, results'
 * heads): those of its final results marked fifo, each once, in the order of the results.
 * Returns their number; *ids (allocated, free it; NULL when none) points into the results. */
int hk_results_fifo_webhooks(const hk_req *req, const char ***ids);
/* Records in a results request that its batch moved webhook wid to status (the dispatcher logs
 * it once the batch has committed). */
void hk_out_change(hk_req *req, const char *wid, int status);

/* ---- per-connection group state ----------------------------------------------------------- */

/* The fan-out cache and the group state of one connection. Every backend connection struct
 * starts with an hk_conn, so store.c and rows.c reach it.
 *
 * The fan-out cache: the candidate webhooks of recently seen organizations (hk_fanout_org, each
 * with its pattern index), kept ACROSS transactions. Each organization's set is labelled with
 * the version of its webhook_org_versions row read just before the set was loaded; database
 * triggers bump that version on every change to what fan-out reads (a webhook inserted,
 * deleted or updated in any column but its counters, a subscription inserted, deleted or
 * updated, the organization's `disabled`), whichever process or release writes it. The first
 * use of an organization in a transaction reads its version (one indexed lookup) and reloads
 * the set only if the version moved. A set is freed only when no pointer into it can be held:
 * at a reload (never twice in one transaction: the second use reuses what the first checked),
 * at an eviction (never of a set used in the current transaction), at a reset and at close.
 * Bounded: at most HK_ORGCACHE_MAX_ORGS organizations and HK_ORGCACHE_MAX_WEBHOOKS webhooks
 * (the least recently used go first; a single larger organization is still kept while used). */
#define HK_ORGCACHE_MAX_ORGS     4096
#define HK_ORGCACHE_MAX_WEBHOOKS 50000

typedef struct hk_conn {
    hk_map orgs;       /* organization id -> hk_fanout_org * (the cache) */
    int norgs;         /* entries in orgs */
    int64_t nwebhooks; /* webhooks held by them */
    uint64_t gen;      /* grows at every group boundary and undo: marks what a group did */
    uint64_t tick;     /* LRU clock */
    uint64_t resets;   /* hk_conn_orgs_reset calls, to tell whether an undone request reset */
    uint64_t mark_resets;
    uint64_t reloads; /* sets loaded (tests and benchmarks read it through the log) */
    char (*touched)[HK_ID_MAX];
    int ntouched, touched_cap;
    int touched_mark; /* ntouched when the current request began */
} hk_conn;

/* Drops the whole fan-out cache: this connection changed webhooks (its own uncommitted change
 * may not show in the version yet: PostgreSQL bumps it at commit), or the cache may hold rows of
 * a transaction that did not commit. No pointer into the cache may be held across it. */
void hk_conn_orgs_reset(hk_conn *b);
/* A group began or committed: a new generation (per-group marks: touched webhooks, checked
 * versions) and an empty touched list. The cache is kept. */
void hk_conn_group_reset(hk_conn *b);
/* The group was rolled back (or its commit failed): as hk_conn_group_reset, and the cache is
 * dropped (it may hold sets loaded after writes that are now undone). */
void hk_conn_group_rollback(hk_conn *b);
/* A request begins (savepoint): remembers where its touched webhooks start. */
void hk_conn_mark(hk_conn *b);
/* The current request was undone: forgets its touched webhooks; drops the cache if the request
 * reset it (it changed webhooks, so what was loaded after may show the undone change). */
void hk_conn_undo(hk_conn *b);
/* Frees what b holds (the connection closes). */
void hk_conn_free(hk_conn *b);
/* Sorts the touched ids and removes repeats, so that the pre-commit write visits each webhook
 * once, in id order. Returns their number. */
int hk_conn_touched_unique(hk_conn *b);

/* The candidate webhooks of org (not deleted, not disabled, subscriptions included) in *out,
 * from the cache when org's version has not moved since they were loaded, else loaded through
 * the backend's org_webhooks (after reading the version, in the same transaction, so the set
 * is at least as new as its label). *out stays valid until the transaction ends or the cache
 * is reset; it is read-only. On error nothing is cached for org. */
int hk_org_candidates(hk_conn *b, void *conn, const hk_store_ops *o, const char *org,
                      hk_fanout_org **out);

/* ---- webhooks: the columns a create or a patch writes ------------------------------------- */

typedef struct hk_wh_row {
    const char *name, *url, *secret, *user_id, *custom_headers, *filtering_options;
    int status;
    int rate_limit_enabled, max_per_minute, max_retries;
    char schemes[64]; /* as stored: "standard,reloop" */
    int64_t consecutive_failures;
    int64_t updated_at;
    const char *retry_schedule;                 /* NULL = the global one */
    int timeout_ms;                             /* 0 = the global one */
    const char *signing_key, *prev_signing_key; /* Ed25519, as stored (encrypted with a key) */
    int64_t prev_signing_key_expires_at;
    int fifo;       /* ordering: 1 = "fifo" */
    int recovering; /* 1: a patch sets a `failed` webhook active (opevents.h: the flag is set
                       until its next success); 0: the stored flag stays */
} hk_wh_row;

/* The row of a new webhook: the given fields, defaults for the others (active, rate limit on at
 * 60/min, 6 retries, default signature schemes). Strings point into f. */
void hk_wh_row_create(const hk_webhook_fields *f, hk_wh_row *out);
/* The row of w after the patch f: the given fields replace w's; setting the status to active
 * resets consecutiveFailures (and, from `failed`, sets recovering); updated_at strictly grows.
 * Strings point into f or w. */
void hk_wh_row_patch(const hk_webhook *w, const hk_webhook_fields *f, int64_t now, hk_wh_row *out);

/* HK_ELIMIT with req->err set if an organization holding n webhooks may not create another
 * (u.wh_create.max_per_org), else 0. */
int hk_wh_limit_check(hk_req *req, int64_t n);

/* ---- ingest ------------------------------------------------------------------------------- */

/* One delivery a new event creates, as the backend writes it. */
typedef struct hk_new_delivery {
    char id[HK_ID_MAX];
    const hk_webhook *wh;
    const char *data; /* the delivery's own data (excludeFields), or NULL: the event's */
    size_t data_len;
    int64_t due;       /* now if the webhook is active, else 0 (parked) */
    const char *lease; /* req->node_id if leased to this node, else NULL */
} hk_new_delivery;

/* What a backend does for a new event: write the event row (it->id is set), then one row per
 * delivery. Rows may be written at once or buffered for the group (PostgreSQL). */
typedef struct hk_ingest_sink {
    int (*event)(void *ctx, hk_req *req, hk_ingest_item *it);
    int (*delivery)(void *ctx, hk_req *req, hk_ingest_item *it, const hk_new_delivery *d);
    void *ctx;
} hk_ingest_sink;

/* Stores item idx of an ingest request as a new event of organization o: chooses its targets
 * (fan-out; HK_EINVAL if data is not an object), checks the caps (HK_ELIMIT), then for each
 * target decides lease-or-queue (leased to node_id while *budget lasts if the webhook is
 * active; an active one not leased goes to `queued`; a non-active one is parked), writes it
 * through sink, counts it, marks its webhook touched in b, and makes the job of a leased one
 * (the envelope rendered once for all targets that get the event's own data). */
int hk_ingest_event(hk_conn *b, hk_req *req, int idx, hk_fanout_org *o, int *budget,
                    const hk_ingest_sink *sink);

/* Makes `it` answer as a duplicate of `first` (same event id, type and delivery count). */
void hk_ingest_copy_dup(hk_ingest_item *it, const hk_ingest_item *first);

/* ---- jobs from delivery rows -------------------------------------------------------------- */

/* The columns of a claimed delivery row, as the backend read them (pointers into its row). */
typedef struct hk_job_row {
    const char *id, *webhook_id, *event_id, *status;
    int attempt_number, max_attempts;
    int64_t due, created;
    const char *data; /* the delivery's own data, or NULL: the event's payload */
    size_t data_len;
    const char *type; /* the event's type, payload and creation time */
    const char *payload;
    size_t payload_len;
    int64_t ev_created;
} hk_job_row;

/* The envelopes rendered within one request, one per event, shared by its jobs. */
typedef struct hk_bodies {
    hk_map map; /* event id -> index + 1 in e */
    struct hk_body {
        char id[HK_ID_MAX];
        hk_blob *body;
    } * e;
    int n, cap;
} hk_bodies;

void hk_bodies_init(hk_bodies *b);
void hk_bodies_free(hk_bodies *b); /* drops the cache's references; jobs keep theirs */

/* A job (owned by the caller) for row r; its body is the row's own rendering when the delivery
 * has its own data, else the event's envelope, rendered once per event in bodies. */
hk_job *hk_job_from_row(const hk_job_row *r, hk_bodies *bodies);

/* 1 if a claimed delivery of webhook wh (NULL: gone) may be handed to the dispatcher; 0 if it
 * is to be parked instead (the webhook is not active, or deleted, or its organization disabled). */
int hk_claim_keeps(const hk_webhook *wh);

/* ---- results: a webhook's health ---------------------------------------------------------- */

/* What one results batch (or group) did to one webhook's counters. */
typedef struct hk_health {
    int64_t ok, fail, streak; /* streak: final failures since the last success in the batch */
    int had_success, gone;
} hk_health;

/* Counts result r in h if it is final and its attempt row was inserted by this request
 * (r->stored, set by the backend): the counters follow the attempts actually stored, so a
 * repeated result (same attempt id, or same delivery and attempt number: a batch submitted
 * again after a failure or a lost COMMIT answer) counts nothing. Returns 1 if r counted. */
int hk_health_add(hk_health *h, const hk_result *r);
/* The status the webhook moves to once its counters were updated (status and consecutive
 * failures cf as stored after the update): HK_WH_DISABLED after a 410, HK_WH_FAILED when an
 * active webhook reached disable_after consecutive final failures (HOOKD_DISABLE_AFTER, 0 =
 * never), else -1 (no change; always for a deleted webhook or an unknown status). */
int hk_health_decide(const hk_health *h, int status, int64_t cf, int deleted, int disable_after);

#endif
