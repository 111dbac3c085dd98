/*
 * backend.h: what a store backend implements (sqlite.c, pg.c), and the helpers they share.
 * Callers never see this: they use store.h. store.c owns the threads, the group commit and the
 * request table (each kind's policy); rows.c (rows.h) owns the rules the backends' loops share.
 * A backend holds only SQL and row I/O: connection and transaction control (hk_store_backend)
 * and one op per request kind or step (hk_store_ops), run on one connection inside a
 * transaction. A new request kind needs a policy function in store.c and one op per backend.
 *
 * One connection is opened per store thread, with a role: the writer (group commit; all write
 * requests, in submission order) or a reader (read requests, any order). A backend that
 * cannot serve reads concurrently may open readers as ordinary connections.
 */
#ifndef HK_STORE_BACKEND_H
#define HK_STORE_BACKEND_H

#include "core/config.h"
#include "store/match.h"
#include "store/store.h"

enum hk_conn_role { HK_CONN_WRITER = 0, HK_CONN_READER, HK_CONN_ADMIN };

struct hk_fanout_org;
struct hk_wh_row;
struct hk_new_delivery;
struct hk_rollup_row;

/* What a backend runs for each request kind: SQL and row I/O only. The rules around them (what
 * a patch writes, when a key counts as found, which webhook a replay needs) are store.c's policy
 * functions and rows.c's. Unless said otherwise an op returns 0 or an HK_E* code (HK_EUNAVAIL:
 * the connection is broken), fills the outputs of req that its kind names in store.h, and runs
 * inside the transaction store.c opened. `conn` is the backend's connection, whose struct starts
 * with an hk_conn (rows.h). */
typedef struct hk_store_ops {
    int (*ping)(void *conn, hk_req *req);

    /* the key of hash into *k (owned strings), *found 0 if none (revoked ones included) */
    int (*key_by_hash)(void *conn, const char *hash, hk_apikey *k, int *found);
    /* a key row with id, of req->org_id and u.key_create's name, hash, prefix */
    int (*key_insert)(void *conn, hk_req *req, const char *id);
    int (*key_list)(void *conn, hk_req *req);
    /* sets revoked_at of u.key_revoke.id if not revoked yet; *changed: rows changed */
    int (*key_revoke)(void *conn, hk_req *req, int64_t *changed);
    int (*key_count)(void *conn, hk_req *req);

    /* organizations (tenancy): a row from u.org (id given, name/metadata/disabled as given,
     * else the id, "{}", 0) */
    int (*org_insert)(void *conn, hk_req *req, const char *id);
    /* a row for id (name = id) unless one exists */
    int (*org_ensure)(void *conn, const char *id, int64_t now);
    /* org id into *out (owned strings); *found 0 if none */
    int (*org_get)(void *conn, const char *id, hk_org *out, int *found);
    int (*org_list)(void *conn, hk_req *req);
    /* sets name, metadata, disabled and updated_at of org o->id from o */
    int (*org_update)(void *conn, const hk_org *o, int64_t now);
    /* open deliveries of org's webhooks not leased lose their due time (parked) */
    int (*org_park)(void *conn, const char *org);
    /* parked open deliveries of org's active webhooks (not deleted) become due at now */
    int (*org_unpark)(void *conn, const char *org, int64_t now, int *count);
    int (*session_insert)(void *conn, hk_req *req, const char *id, const char *webhook_ids);
    /* the session of hash into k (id, org_id, scope, revoked_at, org_disabled), *expires and
     * *webhook_ids (owned, "id id ... " or NULL); *found 0 if none */
    int (*session_by_hash)(void *conn, const char *hash, hk_apikey *k, int64_t *expires,
                           char **webhook_ids, int *found);
    /* a row from u.session for req->org_id with id; webhook_ids: "id id ... " or NULL */
    /* sets revoked_at of session u.session.id of req->org_id if not revoked yet */
    int (*session_revoke)(void *conn, hk_req *req, int64_t *changed);
    /* DELIVERY_SEARCH: up to limit + 1 rows (the caller trims and sets `more`) */
    int (*delivery_search)(void *conn, hk_req *req);

    /* webhook id of org (not deleted) into *out, or NULL; org NULL: by id alone, deleted too */
    int (*webhook_get)(void *conn, const char *id, const char *org, hk_webhook **out);
    /* *found 1 if webhook id of org exists and is not deleted */
    int (*webhook_exists)(void *conn, const char *id, const char *org, int *found);
    /* the webhooks of org not deleted, for HOOKD_MAX_WEBHOOKS_PER_ORG; a multi-node backend
     * serializes creates of one organization until the transaction ends */
    int (*webhook_count_org)(void *conn, const char *org, int64_t *n);
    int (*webhook_insert)(void *conn, hk_req *req, const char *id, const struct hk_wh_row *row);
    /* the old secret becomes the previous one, valid until expires (0: NULL, none) */
    int (*webhook_rotate)(void *conn, const char *id, int64_t expires);
    int (*webhook_update)(void *conn, const char *id, const struct hk_wh_row *row);
    /* subscriptions: delete all of webhook id, or add events (duplicates ignored) */
    int (*subs_delete)(void *conn, const char *id);
    int (*subs_insert)(void *conn, const char *id, const char *const *events, int n, int64_t now);
    /* open deliveries of webhook id not leased lose their due time (parked) */
    int (*webhook_park)(void *conn, const char *id);
    /* parked open deliveries of webhook id become due at now; *count of them */
    int (*webhook_unpark)(void *conn, const char *id, int64_t now, int *count);
    /* The lists (webhook_list, event_list, delivery_list; store.h, lists): up to limit + 1
     * rows (the extra one tells store.c that more follow) after the keyset position `after`
     * and (page - 1) * limit rows in, newest first; `total` and `capped` by a count of at most
     * HK_LIST_COUNT_CAP + 1 rows. Each is an index range scan without a sort (with and without
     * its filter). */
    int (*webhook_list)(void *conn, hk_req *req);
    int (*webhook_delete)(void *conn, hk_req *req);
    int (*webhook_load)(void *conn, hk_req *req);
    /* fan-out candidates: org's webhooks not deleted nor disabled, each hk_fanout_add-ed to o */
    int (*org_webhooks)(void *conn, const char *org, struct hk_fanout_org *o);
    /* the change counter of org's candidates (webhook_org_versions, kept by triggers on the
     * webhook, subscription and organization tables) into *version; 0 if org has no row */
    int (*org_version)(void *conn, const char *org, int64_t *version);

    int (*ingest)(void *conn, hk_req *req);
    int (*event_list)(void *conn, hk_req *req);
    int (*event_get)(void *conn, hk_req *req);
    int (*delivery_list)(void *conn, hk_req *req); /* the webhook's existence is checked */
    int (*delivery_get)(void *conn, hk_req *req);

    int (*claim)(void *conn, hk_req *req);
    int (*claim_ids)(void *conn, hk_req *req);
    int (*due_scan)(void *conn, hk_req *req);
    /* per result: the attempt row unless one with its id, or its delivery and attempt number,
     * exists, or its delivery does not (then .stored = 1), and the delivery row only then */
    int (*results)(void *conn, hk_req *req);
    int (*release)(void *conn, hk_req *req);
    int (*reschedule)(void *conn, hk_req *req);
    int (*heartbeat)(void *conn, hk_req *req);

    /* the webhook of delivery id in org into wid; *found 0 if none */
    int (*delivery_webhook)(void *conn, const char *id, const char *org, char wid[HK_ID_MAX],
                            int *found);
    /* the ids of webhook wid's failed deliveries created in [since, until) (until 0: no end),
     * oldest first, into *ids (allocated) */
    int (*failed_range)(void *conn, const char *wid, int64_t since, int64_t until,
                        char (**ids)[HK_ID_MAX], int *n);
    /* a pending delivery id, due now, replaying delivery orig for webhook w; HK_ENOTFOUND if
     * orig is gone (pruned by retention meanwhile) */
    int (*replay_insert)(void *conn, const char *id, const char *orig, const hk_webhook *w,
                         int64_t now);
    /* u.stats: the store's size (and rows with want_rows), as store.h says */
    int (*store_stats)(void *conn, hk_req *req);

    /* one retention step, or its dry-run count (u.prune in store.h) */
    int (*prune)(void *conn, hk_req *req);
    /* operational events (opevents.h): the event id and type of delivery id into eid and type
     * (typelen bytes), *found 0 if none */
    int (*delivery_brief)(void *conn, const char *id, char eid[HK_ID_MAX], char *type,
                          size_t typelen, int *found);
    /* the event row it (id, type, data, source) of organization org created at now, and one
     * delivery row per ds[i] (not leased); written at once or buffered for the group */
    int (*opev_insert)(void *conn, const char *org, const hk_ingest_item *it,
                       const struct hk_new_delivery *ds, int nd, int64_t now);
    /* statistics (rollup.h): adds rows (hk_rollup_collect_all's: minute rows to webhook_stats,
     * then hour and day rows to webhook_stats_coarse, each sorted by webhook and start), counts
     * and histograms summed with what is stored, last_at the larger; called by the results
     * policy per request. NULL: the backend adds the group's rows itself at pre_commit
     * (PostgreSQL: one statement per group, after the webhook rows are locked) */
    int (*rollup_upsert)(void *conn, const struct hk_rollup_row *rows, int n);
    /* the rows of grain (HK_ROLLUP_*) of webhook wid with start in [from, to), into *rows
     * (allocated) and *n */
    int (*rollup_read)(void *conn, const char *wid, int64_t grain, int64_t from, int64_t to,
                       struct hk_rollup_row **rows, int *n);
    /* open deliveries of webhook wid, counted up to cap + 1 */
    int (*backlog)(void *conn, const char *wid, int64_t cap, int64_t *n);
    /* ORG_STATS's rows without the backlog: up to limit + 1 (store.c trims) */
    int (*org_stats)(void *conn, hk_req *req);
} hk_store_ops;

typedef struct hk_store_backend {
    const char *name;
    /* Opens one connection. HK_EUNAVAIL (with err) if the database cannot be reached. */
    int (*open)(void **conn, const hk_config *cfg, int role, char *err, size_t errlen);
    /* Applies pending migrations (ADMIN connection, before any other). */
    int (*migrate)(void *conn, char *err, size_t errlen);
    /* Called once at start on the ADMIN connection after migrate, with this node's id: SQLite
     * hands back every lease (it is single-node), PostgreSQL registers the node. */
    int (*startup)(void *conn, const char *node_id, char *err, size_t errlen);
    /* Transactions: begin/commit/rollback, and a savepoint around each request. */
    int (*begin)(void *conn);
    int (*commit)(void *conn);
    int (*rollback)(void *conn);
    int (*savepoint)(void *conn);
    int (*release)(void *conn);
    int (*rollback_to)(void *conn);
    /* Called after the last request of a group, before commit (deferred group-wide writes). */
    int (*pre_commit)(void *conn);
    /* Optional: called before the first statement of a request that writes at once (API
     * writes, flag WRITES_NOW in store.c's request table), so that a backend with lazy
     * savepoints (PostgreSQL) makes the request's savepoint then. */
    int (*write_now)(void *conn);
    /* Optional: returns and forgets the database's own message for the HK_EINVAL of the request
     * just run (a value it refused), or NULL. store.c puts it in req->err if that is empty. */
    const char *(*take_error)(void *conn);
    /* The SQL and row I/O of every request kind (store.c's request table calls them). */
    const struct hk_store_ops *ops;
    /* Cheap liveness check: 0 if the database answers. */
    int (*ping)(void *conn);
    void (*close)(void *conn);
} hk_store_backend;

extern const hk_store_backend hk_sqlite_backend;
extern const hk_store_backend hk_pg_backend;

/* ---- shared by backends: signature schemes as stored ("standard,reloop") ------------------ */

/* Writes the names of the HK_SIG_* bits, comma-separated, into out (truncated to n). */
void hk_schemes_str(unsigned bits, char *out, size_t n);
/* The HK_SIG_* bits of a stored list; HK_SIG_DEFAULT if it names none. */
unsigned hk_schemes_parse(const char *s);

/* ---- shared by backends: fan-out of an event to an organization's webhooks ---------------- */

/* One candidate webhook of an organization with its filter prepared. A candidate set is kept
 * across transactions (rows.h, hk_org_candidates): its hk_webhook is read-only once loaded
 * (callers copy what they keep: hk_webhook_dup, ids), and its counters (success_count,
 * failure_count, consecutive_failures, last_triggered_at) are as of the load, not current. */
typedef struct hk_fanout_wh {
    const hk_webhook *wh; /* owned */
    hk_filter filter;
    int filter_ok;        /* 0: the stored filter is unreadable; the webhook gets everything */
    uint64_t touched_gen; /* hk_conn.gen when a delivery was last created for it: touched in
                             this group (last_triggered_at) when equal */
} hk_fanout_wh;

struct hk_patidx; /* fanout.c: the subscriptions indexed by pattern */

typedef struct hk_fanout_org {
    char *org_id;
    hk_fanout_wh *whs;
    int n, cap;
    struct hk_patidx *idx; /* built on the first match after a load (fanout.c) */
    /* the connection's cache (rows.c) */
    int64_t version;  /* webhook_org_versions.version read before the load */
    uint64_t checked; /* hk_conn.gen of the transaction that last checked the version */
    uint64_t used;    /* hk_conn.tick of the last use (LRU) */
} hk_fanout_org;

/* Takes ownership of wh and adds it to org's candidates. */
void hk_fanout_add(hk_fanout_org *o, hk_webhook *wh);
/* An org_webhooks op's last step: if rc is HK_OK, hk_fanout_add-s whs[0..n) to o in order,
 * else frees them (o keeps nothing of a failed load); frees the array either way. Returns rc. */
int hk_fanout_take(hk_fanout_org *o, hk_webhook **whs, int n, int rc);
void hk_fanout_org_free(hk_fanout_org *o);

/* A target chosen for one event: the webhook, and its body's data when it differs from the
 * event's (excludeFields), else NULL. */
typedef struct hk_fanout_target {
    hk_fanout_wh *fw;
    char *data; /* owned, or NULL: the event's own data */
    size_t data_len;
} hk_fanout_target;

/* Chooses the targets of an event among o's candidates: webhooks not disabled and not deleted
 * with an enabled subscription matching type whose matchConditions hold, in o's order. data is
 * the event's compact JSON object. The subscriptions are looked up through o's pattern index
 * (built on first use), so the cost grows with the webhooks whose patterns could match, not
 * with o->n. Returns the number of targets written to *out (allocated; free each data and the
 * array), or HK_EINVAL if data is not a JSON object. */
int hk_fanout_targets(hk_fanout_org *o, const char *type, const char *data, size_t data_len,
                      hk_fanout_target **out);

/* ---- shared by backends: custom headers at rest ------------------------------------------- */

/* With WEBHOOK_ENCRYPTION_KEY: writes to out the custom headers object json with every value
 * that is still plaintext encrypted (store.c's format) and returns 1; returns 0 (out untouched)
 * when there is no key or nothing to encrypt, HK_EINVAL if json is not an object of strings.
 * Backends call it at start-up (serve) for the rows written before the key was set. */
int hk_headers_seal_plain(const hk_config *cfg, const char *json, hk_buf *out);

/* Checks an ingest request's delivery caps (u.ingest.max_per_event, max_total; 0 = none)
 * before item idx creates nt deliveries, counting those of the items before it. Returns 0, or
 * HK_ELIMIT with req->err set (the caller stores nothing of the request). */
int hk_fanout_check_caps(hk_req *req, int idx, int nt);

#endif
