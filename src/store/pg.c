/*
 * pg.c: the PostgreSQL store backend (PG_URL), for one or many hookd nodes on one database.
 * One libpq connection per store thread (store.c: one writer, HOOKD_PG_POOL - 1 readers);
 * statements are prepared once per connection, on first use, and every value travels as text.
 *
 * Round trips, not rows, are what a network database costs, so writes are batched:
 *  - ingest: the rows of every event and delivery of a group (all the requests store.c commits
 *    together) are collected as array literals and written by ONE statement at pre-commit
 *    (unnest arrays feeding two INSERTs in one CTE). An event whose idempotency key another node
 *    committed meanwhile is skipped by ON CONFLICT DO NOTHING, and its deliveries with it; the
 *    item then answers as the duplicate it is.
 *  - results: a batch of attempt results is one statement (attempt rows inserted, delivery rows
 *    updated only for the attempts inserted: a repeated one is a no-op, and the statement
 *    returns the inserted ids for hk_result.stored); webhook counters and last_triggered_at of
 *    a whole group are one more, at pre-commit, after locking those webhook rows in id order.
 *    Every transaction locks webhook rows once and in the same order, so two nodes' groups
 *    cannot deadlock on them.
 *  - release, claim, park: one statement each for any number of deliveries.
 * Savepoints are lazy: store.c asks for one around every request, but only requests that write
 * at once (API writes) pay for SAVEPOINT; batched rows of a failed request are simply dropped
 * from the group's arrays.
 *
 * Several nodes: a claim takes due rows with FOR NO KEY UPDATE SKIP LOCKED, so nodes never wait
 * for each other's claims and never take the same row. Leases are per node, as on SQLite: a
 * delivery row names its owner (lease_owner), the owner's heartbeat row (hk_node.alive_until)
 * keeps every lease of that node alive, and when a node's row expires the first other node
 * whose heartbeat notices hands its deliveries back (again SKIP LOCKED, so two nodes doing it
 * at once never wait on each other). Idle nodes find new work by polling the due index
 * (HOOKD_POLL_INTERVAL_MS; an empty claim is one index probe), see docs/POSTGRES.md.
 *
 * Faults: a broken connection or a server going away maps to HK_EUNAVAIL; store.c then fails
 * the group (nothing of it is stored), answers 503 meanwhile and reconnects. libpq's TCP
 * keepalives and tcp_user_timeout bound how long a statement can hang on a dead network.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/map.h"
#include "core/time.h"
#include "store/sig_scheme.h"
#include "store/backend.h"
#include "store/opevents.h"
#include "store/rollup.h"
#include "store/rows.h"
#include "store/pg_schema.h"

static const hk_store_ops pg_ops; /* below: the operational events call back through it */

#define MIGRATE_LOCK_KEY 0x686f6f6b64LL /* "hookd": the session advisory lock of migrations */
#define MIGRATE_TRIES    8 /* a migration chosen as a deadlock's victim is run again (pg_migrate) */
#define FLUSH_BYTES      (8u << 20) /* ingest rows buffered before an early flush */

/* ---- statements ---------------------------------------------------------------------------- */

#define WH_COLS                                                                                    \
    "w.id, w.name, w.url, w.secret, w.previous_secret, hk_ms(w.previous_secret_expires_at), "      \
    "w.organization_id, w.user_id, w.status, w.custom_headers, w.rate_limit_enabled, "             \
    "w.max_requests_per_minute, w.max_retries, w.filtering_options, w.signature_schemes, "         \
    "hk_ms(w.last_triggered_at), w.success_count, w.failure_count, w.consecutive_failures, "       \
    "hk_ms(w.deleted_at), hk_ms(w.created_at), hk_ms(w.updated_at), "                              \
    "(SELECT string_agg(s.event_id, ' ' ORDER BY s.seq) FROM webhook_event_subscription s "        \
    "WHERE s.webhook_id = w.id AND s.is_enabled), w.retry_schedule, w.timeout_ms, "                \
    "w.signing_key, w.previous_signing_key, hk_ms(w.previous_signing_key_expires_at), "            \
    "COALESCE((SELECT o.disabled FROM organization o WHERE o.id = w.organization_id), false), "    \
    "w.ordering"

#define DL_COLS                                                                                    \
    "d.id, d.webhook_id, d.webhook_event_id, d.replay_of_delivery_id, d.event_type, "              \
    "COALESCE(d.event_data, e.payload), hk_ms(e.created_at), d.status, d.request_url, "            \
    "d.request_headers, d.response_status, d.response_body, d.response_headers, "                  \
    "d.attempt_number, d.max_attempts, hk_ms(d.next_retry_at), hk_ms(d.last_attempt_at), "         \
    "d.error_message, hk_ms(d.completed_at), d.duration_ms, hk_ms(d.created_at), "                 \
    "(SELECT h.headers FROM webhook_headers h WHERE h.ref = d.request_headers_ref)"

#define DL_FROM " FROM webhook_delivery d JOIN webhook_event e ON e.id = d.webhook_event_id"

#define EV_COLS                                                                                    \
    "id, event, payload, source, idempotency_key, organization_id, user_id, hk_ms(created_at)"

/* The keyset position of a list page (backend.h): the stored created_at of the row named by
 * $5, exactly as stored (timestamptz keeps microseconds, and a row that hookd did not write,
 * say one imported, may have them: the cursor's milliseconds would put such a row on both
 * sides of its own position), or the cursor's $4 when that row is gone (pruned meanwhile) or
 * for a first page. One primary-key probe (in the list's own scope: a cursor naming another
 * organization's row is just its $4), an InitPlan the range scan starts from. */
#define KEYSET_AT(table, scope)                                                                    \
    "(COALESCE((SELECT k.created_at FROM " table " k WHERE k.id = $5 AND k." scope " = $1), "      \
    "hk_ts($4)), $5)"
#define KEYSET_WH KEYSET_AT("webhook", "organization_id")
#define KEYSET_EV KEYSET_AT("webhook_event", "organization_id")
#define KEYSET_DL KEYSET_AT("webhook_delivery", "webhook_id")

#define OPEN_STATUS "status IN ('pending', 'retrying')"

/* FIFO ordering (docs/API.md "Ordering"): a delivery `d` (a table name or alias) is claimable
 * only if its webhook is not "fifo" or no open delivery of that webhook was created before it
 * (created_at, id). Only the head of a FIFO webhook's line is ever leased; another node's claim
 * skips the head while it is locked (SKIP LOCKED) and finds every later row behind it, so two
 * nodes never hold two of its deliveries. The probe is a range of the index
 * webhook_delivery_list_status (webhook_id, status, created_at, id). */
#define FIFO_HEAD(d)                                                                               \
    " AND NOT EXISTS (SELECT 1 FROM webhook fw WHERE fw.id = " d ".webhook_id AND fw.ordering = "  \
    "'fifo' AND EXISTS (SELECT 1 FROM webhook_delivery fo WHERE fo.webhook_id = " d                \
    ".webhook_id AND fo.status IN ('pending', 'retrying') AND (fo.created_at, fo.id) < (" d        \
    ".created_at, " d ".id)))"

/* OPEN_STATUS for statements that pick rows by id: written so that it does not imply the
 * partial due index's predicate, which leaves the planner only the primary key. Otherwise,
 * with statistics taken while a backlog was parked (next_retry_at NULL, so the due index
 * looks nearly empty), it scans the whole due index filtering on the ids: a claim of 1,000
 * ids out of a 1,000,000-row backlog took seconds. */
#define OPEN_STATUS_BY_ID "status::text IN ('pending', 'retrying')"

/* a key, with its organization's disabled flag ('' = an admin key: no organization) */
#define KEY_COLS                                                                                   \
    "id, organization_id, name, key_prefix, hk_ms(created_at), hk_ms(revoked_at), "                \
    "hk_ms(last_used_at), scope, COALESCE((SELECT o.disabled FROM organization o WHERE o.id = "    \
    "api_key.organization_id), false)"

#define ORG_COLS "id, name, metadata, disabled, hk_ms(created_at), hk_ms(updated_at)"

enum {
    Q_PING,
    Q_KEY_INSERT,
    Q_KEY_BY_HASH,
    Q_KEY_LIST,
    Q_KEY_REVOKE,
    Q_KEY_COUNT,
    Q_ORG_INSERT,
    Q_ORG_ENSURE,
    Q_ORG_GET,
    Q_ORG_COUNT,
    Q_ORG_LIST,
    Q_ORG_UPDATE,
    Q_ORG_PARK,
    Q_ORG_UNPARK,
    Q_SESSION_INSERT,
    Q_SESSION_BY_HASH,
    Q_SESSION_REVOKE,
    Q_DL_SEARCH,
    Q_WH_INSERT,
    Q_WH_GET,
    Q_WH_BY_IDS,
    Q_WH_COUNT,
    Q_WH_LIST,
    Q_WH_LIST_F,
    Q_WH_NUM,
    Q_WH_NUM_F,
    Q_WH_UPDATE,
    Q_WH_EXISTS,
    Q_WH_DELETE,
    Q_WH_ORG,
    Q_ORG_VERSION,
    Q_WH_LOCK,
    Q_WH_GROUP_UPDATE,
    Q_WH_SET_STATUS,
    Q_WH_ROTATE,
    Q_SUB_INSERT,
    Q_SUB_DELETE,
    Q_EV_BY_IDEM,
    Q_EV_LIST,
    Q_EV_LIST_F,
    Q_EV_NUM,
    Q_EV_NUM_F,
    Q_EV_GET,
    Q_EV_DELIVERIES,
    Q_INGEST_FLUSH,
    Q_DL_FAIL_WEBHOOK,
    Q_DL_PARK_WEBHOOK,
    Q_DL_UNPARK_WEBHOOK,
    Q_DL_LIST,
    Q_DL_LIST_F,
    Q_DL_NUM,
    Q_DL_NUM_F,
    Q_DL_GET,
    Q_ATT_LIST,
    Q_CLAIM,
    Q_DL_PARK_IDS,
    Q_RESULTS,
    Q_DL_RELEASE,
    Q_NODE_UPSERT,
    Q_NODE_RECLAIM,
    Q_NODE_DELETE_DEAD,
    Q_DL_REPLAY,
    Q_DL_FAILED_RANGE,
    Q_DL_WEBHOOK_OF,
    Q_CLAIM_IDS,
    Q_CLAIM_LATER,
    Q_DUE_SCAN,
    Q_DL_RESCHEDULE,
    Q_FIFO_HEADS,
    Q_WH_ORG_LOCK,
    Q_HDR_INSERT,
    Q_STATS_ROWS,
    Q_STATS_BYTES,

    Q_PR_LOCK,
    Q_PR_DL,
    Q_PR_EV_DEL,
    Q_PR_EV_SCAN,
    Q_PR_OLDEST,
    Q_PR_COUNT_DL,
    Q_PR_COUNT_ATT,
    Q_PR_COUNT_EV,
    Q_PR_POS_GET,
    Q_PR_POS_SET,
    Q_DL_BRIEF,
    Q_WH_RECOVERED,
    Q_ST_UPSERT,
    Q_ST_READ,
    Q_ST_BACKLOG,
    Q_ST_ORG,
    Q_PR_ST_DEL,
    Q_ST_READ_C,
    Q_PR_STC_DEL,
    Q_MAX
};

#define FINISHED_STATUS "status IN ('success', 'failed')" /* webhook_delivery_finished's */
/* the prune lock: 448546171760 = 0x686f6f6b70, "hookp" */

/* the live rows of table t and of its partitions, from the cumulative statistics */
#define PG_LIVE(t)                                                                                 \
    "(SELECT COALESCE(sum(n_live_tup), 0)::bigint FROM pg_stat_user_tables WHERE relid = '" t      \
    "'::regclass OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = '" t              \
    "'::regclass))"

static const char *const sql[Q_MAX] = {
    /* statistics (rollup.h): one statement, one round trip, for the minute rows ($1-$8) and the
     * hour and day rows ($9-$17, migration 14); counts and histograms add up. Every node locks
     * rows in one order: the minute rows first (the main INSERT reads the count of `mins`, an
     * InitPlan evaluated before its first row, so the CTE has run to its end), then the coarse
     * rows, each sorted by key */
    [Q_ST_UPSERT] = "WITH mins AS (INSERT INTO webhook_stats AS t (webhook_id, minute, delivered, "
                    "failed, given_up, last_at, att_hist, e2e_hist) SELECT w, m, d, f, g, l, "
                    "a::bigint[], e::bigint[] FROM unnest($1::text[], $2::bigint[], $3::bigint[], "
                    "$4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[]) AS u(w, m, "
                    "d, f, g, l, a, e) ORDER BY w, m ON CONFLICT (webhook_id, minute) DO UPDATE "
                    "SET delivered = t.delivered + excluded.delivered, failed = t.failed + "
                    "excluded.failed, given_up = t.given_up + excluded.given_up, last_at = "
                    "greatest(t.last_at, excluded.last_at), att_hist = hk_hist_add(t.att_hist, "
                    "excluded.att_hist), e2e_hist = hk_hist_add(t.e2e_hist, excluded.e2e_hist) "
                    "RETURNING 1) INSERT INTO webhook_stats_coarse AS t (webhook_id, grain, start, "
                    "delivered, failed, given_up, last_at, att_hist, e2e_hist) SELECT w, r, m, d, "
                    "f, g, l, a::bigint[], e::bigint[] FROM unnest($9::text[], $10::bigint[], "
                    "$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], "
                    "$16::text[], $17::bigint[]) AS u(w, m, d, f, g, l, a, e, r) WHERE (SELECT "
                    "count(*) FROM mins) >= 0 ORDER BY w, r, m ON CONFLICT (webhook_id, grain, "
                    "start) DO UPDATE SET delivered = t.delivered + excluded.delivered, failed = "
                    "t.failed + excluded.failed, given_up = t.given_up + excluded.given_up, "
                    "last_at = greatest(t.last_at, excluded.last_at), att_hist = "
                    "hk_hist_add(t.att_hist, excluded.att_hist), e2e_hist = "
                    "hk_hist_add(t.e2e_hist, excluded.e2e_hist)",
    [Q_ST_READ] = "SELECT minute, delivered, failed, given_up, last_at, att_hist, e2e_hist FROM "
                  "webhook_stats WHERE webhook_id = $1 AND minute >= $2 AND minute < $3",
    [Q_ST_READ_C] = "SELECT start, delivered, failed, given_up, last_at, att_hist, e2e_hist FROM "
                    "webhook_stats_coarse WHERE webhook_id = $1 AND grain = $4 AND start >= $2 AND "
                    "start < $3",
    [Q_ST_BACKLOG] = "SELECT count(*) FROM (SELECT 1 FROM webhook_delivery WHERE webhook_id = $1 "
                     "AND " OPEN_STATUS " LIMIT $2) x",
    /* the last 24 h: the minute rows from $2 to the next whole hour $5, the hour rows after */
    [Q_ST_ORG] = "SELECT w.id, w.name, w.url, w.status::text, s.d, s.f, s.g, (SELECT last_at FROM "
                 "webhook_stats l WHERE l.webhook_id = w.id ORDER BY minute DESC LIMIT 1) FROM "
                 "webhook w LEFT JOIN LATERAL (SELECT sum(d) AS d, sum(f) AS f, sum(g) AS g FROM "
                 "(SELECT delivered AS d, failed AS f, given_up AS g FROM webhook_stats x WHERE "
                 "x.webhook_id = w.id AND x.minute >= $2 AND x.minute < $5 UNION ALL SELECT "
                 "delivered, failed, given_up FROM webhook_stats_coarse y WHERE y.webhook_id = "
                 "w.id AND y.grain = 3600000 AND y.start >= $5) z) s ON true WHERE "
                 "w.organization_id = $1 AND w.deleted_at IS NULL AND w.id "
                 "COLLATE \"C\" > $3 ORDER BY w.id COLLATE \"C\" LIMIT $4",
    [Q_PR_ST_DEL] = "DELETE FROM webhook_stats WHERE (webhook_id, minute) IN (SELECT webhook_id, "
                    "minute FROM webhook_stats WHERE minute < $1 LIMIT $2)",
    /* hour and day rows whose whole span is older than the cut $1 */
    [Q_PR_STC_DEL] = "DELETE FROM webhook_stats_coarse WHERE (webhook_id, grain, start) IN (SELECT "
                     "webhook_id, grain, start FROM webhook_stats_coarse WHERE start < $1::bigint "
                     "- 3600000 AND start + grain < $1 LIMIT $2)",
    /* retention (pg_prune). One node at a time, until the transaction ends. */
    [Q_PR_LOCK] = "SELECT pg_try_advisory_xact_lock(448546171760)",
    /* up to $2 deliveries finished before $1 (and not before $3: none is left there), oldest
     * first by webhook_delivery_finished, with their attempts; returns the counts and the
     * events they belonged to */
    [Q_PR_DL] = "WITH d AS (SELECT id FROM webhook_delivery WHERE " FINISHED_STATUS
                " AND completed_at < hk_ts($1) AND completed_at >= hk_ts($3) ORDER BY "
                "completed_at LIMIT $2), a AS (DELETE FROM webhook_delivery_attempt t USING d "
                "WHERE t.webhook_delivery_id = d.id RETURNING 1), x AS (DELETE FROM "
                "webhook_delivery t USING d WHERE t.id = d.id RETURNING t.webhook_event_id) "
                "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM x), (SELECT "
                "array_agg(DISTINCT webhook_event_id) FROM x)",
    [Q_PR_EV_DEL] = "DELETE FROM webhook_event e WHERE e.id = ANY($1::text[]) AND NOT EXISTS "
                    "(SELECT 1 FROM webhook_delivery d WHERE d.webhook_event_id = e.id)",
    /* up to $4 events created before $3 after the position ($1, $2); those with no delivery
     * go; returns the rows scanned, deleted, and the new position */
    [Q_PR_EV_SCAN] = "WITH s AS (SELECT id, created_at FROM webhook_event WHERE (created_at, id) "
                     "> (hk_ts($1), $2::text) AND created_at < hk_ts($3) ORDER BY created_at, id "
                     "LIMIT $4), x AS (DELETE FROM webhook_event e USING s WHERE e.id = s.id AND "
                     "NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.webhook_event_id = "
                     "e.id) RETURNING 1), l AS (SELECT id, created_at FROM s ORDER BY created_at "
                     "DESC, id DESC LIMIT 1) SELECT (SELECT count(*) FROM s), (SELECT count(*) "
                     "FROM x), (SELECT hk_ms(created_at) FROM l), (SELECT id FROM l)",
    [Q_PR_POS_GET] = "SELECT at, id FROM hk_prune_position WHERE name = 'events'",
    [Q_PR_POS_SET] = "INSERT INTO hk_prune_position (name, at, id) VALUES ('events', $1, $2) ON "
                     "CONFLICT (name) DO UPDATE SET at = excluded.at, id = excluded.id",
    [Q_PR_OLDEST] = "SELECT hk_ms(completed_at) FROM webhook_delivery WHERE " FINISHED_STATUS
                    " AND completed_at >= hk_ts($1) ORDER BY completed_at LIMIT 1",
    [Q_PR_COUNT_DL] = "SELECT count(*) FROM webhook_delivery WHERE " FINISHED_STATUS
                      " AND completed_at < hk_ts($1)",
    [Q_PR_COUNT_ATT] = "SELECT count(*) FROM webhook_delivery_attempt a JOIN webhook_delivery d "
                       "ON d.id = a.webhook_delivery_id WHERE d." FINISHED_STATUS
                       " AND d.completed_at < hk_ts($1)",
    [Q_PR_COUNT_EV] =
        "SELECT count(*) FROM webhook_event e WHERE NOT EXISTS (SELECT 1 FROM "
        "webhook_delivery d WHERE d.webhook_event_id = e.id AND NOT (d." FINISHED_STATUS
        " AND d.completed_at < hk_ts($1))) AND (e.created_at < hk_ts($2) OR EXISTS "
        "(SELECT 1 FROM webhook_delivery d WHERE d.webhook_event_id = e.id))",
    /* serializes webhook creates of one organization across nodes until the transaction ends,
     * so that counting them against HOOKD_MAX_WEBHOOKS_PER_ORG is race-free */
    /* webhook versions' static request headers, each stored once (see hk_result) */
    [Q_HDR_INSERT] = "INSERT INTO webhook_headers (ref, headers, created_at) SELECT ref, h, "
                     "hk_ts($3) FROM unnest($1::text[], $2::text[]) AS x(ref, h) ORDER BY ref "
                     "ON CONFLICT (ref) DO NOTHING",
    [Q_WH_ORG_LOCK] = "SELECT pg_advisory_xact_lock(hashtextextended('hookd.webhook.org:' || "
                      "$1, 0))",
    [Q_PING] = "SELECT 1",
    /* hookd_store_rows, in HK_TBL_* order: the statistics' live rows of each table and of its
     * partitions (an estimate, flushed by the backends about once a second) */
    [Q_STATS_ROWS] = "SELECT " PG_LIVE("webhook_event") ", " PG_LIVE(
        "webhook_delivery") ", " PG_LIVE("webhook_delivery_attempt") ", " PG_LIVE("webhook"),
    /* hookd_store_bytes: every table of hookd's schema with its indexes and TOAST */
    [Q_STATS_BYTES] = "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM "
                      "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
                      "c.relkind = 'r' AND n.nspname = current_schema()",
    [Q_KEY_INSERT] = "INSERT INTO api_key (id, organization_id, name, key_hash, key_prefix, "
                     "created_at, scope) VALUES ($1, $2, $3, $4, $5, hk_ts($6), $7)",
    [Q_KEY_BY_HASH] = "SELECT " KEY_COLS " FROM api_key WHERE key_hash = $1",
    [Q_KEY_LIST] = "SELECT " KEY_COLS " FROM api_key WHERE $1::text IS NULL OR organization_id "
                   "= $1::text ORDER BY created_at, id",
    [Q_KEY_REVOKE] = "UPDATE api_key SET revoked_at = hk_ts($2) WHERE id = $1 AND revoked_at IS "
                     "NULL AND ($3::text IS NULL OR organization_id = $3::text)",
    [Q_ORG_INSERT] = "INSERT INTO organization (id, name, metadata, disabled, created_at, "
                     "updated_at) VALUES ($1, $2, $3, $4::boolean, hk_ts($5), hk_ts($5))",
    [Q_ORG_ENSURE] = "INSERT INTO organization (id, name, created_at, updated_at) VALUES ($1, "
                     "$1, hk_ts($2), hk_ts($2)) ON CONFLICT (id) DO NOTHING",
    [Q_ORG_GET] = "SELECT " ORG_COLS " FROM organization WHERE id = $1",
    [Q_ORG_COUNT] = "SELECT count(*) FROM (SELECT 1 FROM organization ORDER BY created_at DESC, "
                    "id DESC LIMIT $1) s",
    [Q_ORG_LIST] = "SELECT " ORG_COLS " FROM organization WHERE (created_at, id) < (hk_ts($3), "
                   "$4::text) ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    [Q_ORG_UPDATE] = "UPDATE organization SET name = $2, metadata = $3, disabled = $4::boolean, "
                     "updated_at = hk_ts($5) WHERE id = $1",
    [Q_ORG_PARK] = "UPDATE webhook_delivery SET next_retry_at = NULL WHERE webhook_id IN "
                   "(SELECT id FROM webhook WHERE organization_id = $1) AND " OPEN_STATUS
                   " AND lease_owner IS NULL",
    [Q_SESSION_INSERT] = "INSERT INTO portal_session (id, organization_id, token_hash, scope, "
                         "created_at, expires_at, webhook_ids) VALUES ($1, $2, $3, $4, hk_ts($5), "
                         "hk_ts($6), $7)",
    [Q_SESSION_BY_HASH] = "SELECT id, organization_id, scope, hk_ms(revoked_at), "
                          "hk_ms(expires_at), COALESCE((SELECT o.disabled FROM organization o "
                          "WHERE o.id = portal_session.organization_id), false), webhook_ids "
                          "FROM portal_session WHERE token_hash = $1",
    [Q_DL_SEARCH] = "SELECT " DL_COLS DL_FROM " WHERE d.webhook_id IN (SELECT id FROM webhook "
                    "WHERE organization_id = $1) AND ($2::webhook_delivery_status IS NULL OR "
                    "d.status = $2::webhook_delivery_status) AND ($3::text IS NULL OR "
                    "d.event_type = $3::text) AND ($4::text IS NULL OR d.webhook_id = $4::text) "
                    "AND ($5::text IS NULL OR d.webhook_event_id = $5::text) AND ($6::text IS "
                    "NULL OR d.id = $6::text) AND ($7::text IS NULL OR (e.idempotency_key = "
                    "$7::text AND e.organization_id = $1)) AND ($8::bigint IS NULL OR "
                    "d.created_at >= hk_ts($8::bigint)) AND ($9::bigint IS NULL OR d.created_at "
                    "< hk_ts($9::bigint)) AND ($10::bigint IS NULL OR d.created_at < "
                    "hk_ts($10::bigint) OR (d.created_at = hk_ts($10::bigint) AND d.id < "
                    "$11::text)) ORDER BY d.created_at DESC, d.id DESC LIMIT $12",
    [Q_SESSION_REVOKE] = "UPDATE portal_session SET revoked_at = hk_ts($2) WHERE id = $1 AND "
                         "organization_id = $3 AND revoked_at IS NULL",
    [Q_ORG_UNPARK] = "UPDATE webhook_delivery SET next_retry_at = hk_ts($2) WHERE webhook_id IN "
                     "(SELECT id FROM webhook WHERE organization_id = $1 AND status = 'active' "
                     "AND deleted_at IS NULL) AND " OPEN_STATUS " AND next_retry_at IS NULL",
    [Q_KEY_COUNT] = "SELECT count(*) FROM api_key",
    [Q_WH_INSERT] = "INSERT INTO webhook (id, name, url, secret, organization_id, user_id, "
                    "status, custom_headers, rate_limit_enabled, max_requests_per_minute, "
                    "max_retries, filtering_options, signature_schemes, created_at, updated_at, "
                    "retry_schedule, timeout_ms, signing_key, ordering) VALUES ($1, $2, $3, $4, "
                    "$5, $6, $7::webhook_status, $8::json, $9::boolean, $10, $11, $12::json, "
                    "$13, hk_ts($14), hk_ts($14), $15, $16, $17, $18)",
    [Q_WH_GET] = "SELECT " WH_COLS " FROM webhook w WHERE w.id = $1 AND w.organization_id = $2 "
                 "AND w.deleted_at IS NULL",
    [Q_WH_BY_IDS] = "SELECT " WH_COLS " FROM webhook w WHERE w.id = ANY($1::text[])",
    [Q_WH_COUNT] = "SELECT count(*) FROM webhook WHERE organization_id = $1 AND deleted_at IS "
                   "NULL AND ($2::webhook_status IS NULL OR status = $2::webhook_status)",
    /* The lists (backend.h): $1 scope, $2 limit (count: the bound), $3 offset, $4 $5 the
     * keyset position, $6 (count: $3) the filter of the _F statements. A filter is its own
     * statement, not "$6 IS NULL OR", so that each is planned on its index (migration 9). */
    [Q_WH_LIST] = "SELECT " WH_COLS " FROM webhook w WHERE w.organization_id = $1 AND "
                  "w.deleted_at IS NULL AND (w.created_at, w.id) < " KEYSET_WH
                  " ORDER BY w.created_at DESC, w.id DESC LIMIT $2 OFFSET $3",
    [Q_WH_LIST_F] = "SELECT " WH_COLS " FROM webhook w WHERE w.organization_id = $1 AND "
                    "w.deleted_at IS NULL AND w.status = $6::webhook_status AND "
                    "(w.created_at, w.id) < " KEYSET_WH
                    " ORDER BY w.created_at DESC, w.id DESC LIMIT $2 OFFSET $3",
    [Q_WH_NUM] = "SELECT count(*) FROM (SELECT 1 FROM webhook WHERE organization_id = $1 AND "
                 "deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $2) n",
    [Q_WH_NUM_F] = "SELECT count(*) FROM (SELECT 1 FROM webhook WHERE organization_id = $1 AND "
                   "deleted_at IS NULL AND status = $3::webhook_status ORDER BY created_at DESC, "
                   "id DESC LIMIT $2) n",
    [Q_WH_UPDATE] = "UPDATE webhook SET name = $2, url = $3, secret = $4, status = "
                    "$5::webhook_status, custom_headers = $6::json, rate_limit_enabled = "
                    "$7::boolean, max_requests_per_minute = $8, max_retries = $9, "
                    "filtering_options = $10::json, signature_schemes = $11, user_id = $12, "
                    "consecutive_failures = $13, updated_at = hk_ts($14), retry_schedule = $15, "
                    "timeout_ms = $16, signing_key = $17, previous_signing_key = $18, "
                    "previous_signing_key_expires_at = hk_ts($19::bigint), recovering = "
                    "(recovering OR $20::boolean), ordering = $21 WHERE id = $1",
    [Q_WH_EXISTS] = "SELECT 1 FROM webhook WHERE id = $1 AND organization_id = $2 AND "
                    "deleted_at IS NULL",
    [Q_WH_DELETE] = "UPDATE webhook SET deleted_at = hk_ts($3), updated_at = hk_ts($3) WHERE "
                    "id = $1 AND organization_id = $2 AND deleted_at IS NULL",
    [Q_WH_ORG] = "SELECT " WH_COLS " FROM webhook w WHERE w.organization_id = $1 AND "
                 "w.deleted_at IS NULL AND w.status <> 'disabled'",
    [Q_ORG_VERSION] = "SELECT version FROM webhook_org_versions WHERE org_id = $1",
    [Q_WH_LOCK] = "SELECT id FROM webhook WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY "
                  "UPDATE",
    [Q_WH_GROUP_UPDATE] =
        "UPDATE webhook w SET last_triggered_at = COALESCE(hk_ts(h.triggered), "
        "w.last_triggered_at), success_count = w.success_count + h.ok, failure_count = "
        "w.failure_count + h.fail, consecutive_failures = CASE WHEN h.had_success THEN h.streak "
        "ELSE w.consecutive_failures + h.streak END FROM unnest($1::text[], $2::bigint[], "
        "$3::bigint[], $4::bigint[], $5::boolean[], $6::bigint[], $7::boolean[]) AS h(id, "
        "triggered, ok, fail, had_success, streak, health) WHERE w.id = h.id RETURNING w.id, "
        "h.health, w.consecutive_failures, w.status, w.deleted_at IS NOT NULL, w.recovering",
    [Q_WH_RECOVERED] = "UPDATE webhook SET recovering = false WHERE id = $1",
    [Q_WH_SET_STATUS] = "UPDATE webhook SET status = $2::webhook_status, updated_at = hk_ts($3) "
                        "WHERE id = $1",
    [Q_WH_ROTATE] = "UPDATE webhook SET previous_secret = CASE WHEN $2::bigint IS NULL THEN NULL "
                    "ELSE secret END, previous_secret_expires_at = hk_ts($2::bigint) WHERE id = "
                    "$1",
    [Q_SUB_INSERT] = "INSERT INTO webhook_event_subscription (id, webhook_id, event_id, "
                     "is_enabled, created_at) VALUES ($1, $2, $3, true, hk_ts($4)) ON CONFLICT "
                     "(webhook_id, event_id) DO NOTHING",
    [Q_SUB_DELETE] = "DELETE FROM webhook_event_subscription WHERE webhook_id = $1",
    [Q_EV_BY_IDEM] = "SELECT e.idempotency_key, e.id, e.event, (SELECT count(*) FROM "
                     "webhook_delivery d WHERE d.webhook_event_id = e.id AND "
                     "d.replay_of_delivery_id IS NULL) FROM webhook_event e WHERE "
                     "e.organization_id = $1 AND e.idempotency_key = ANY($2::text[])",
    [Q_EV_LIST] =
        "SELECT " EV_COLS " FROM webhook_event WHERE organization_id = $1 AND "
        "(created_at, id) < " KEYSET_EV " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    [Q_EV_LIST_F] = "SELECT " EV_COLS " FROM webhook_event WHERE organization_id = $1 AND "
                    "event = $6 AND (created_at, id) < " KEYSET_EV
                    " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    [Q_EV_NUM] = "SELECT count(*) FROM (SELECT 1 FROM webhook_event WHERE organization_id = $1 "
                 "ORDER BY created_at DESC, id DESC LIMIT $2) n",
    [Q_EV_NUM_F] = "SELECT count(*) FROM (SELECT 1 FROM webhook_event WHERE organization_id = "
                   "$1 AND event = $3 ORDER BY created_at DESC, id DESC LIMIT $2) n",
    [Q_EV_GET] = "SELECT " EV_COLS " FROM webhook_event WHERE id = $1 AND organization_id = $2",
    [Q_EV_DELIVERIES] = "SELECT id, webhook_id, status FROM webhook_delivery WHERE "
                        "webhook_event_id = $1 ORDER BY created_at, id",
    [Q_INGEST_FLUSH] =
        "WITH ev AS (INSERT INTO webhook_event (id, event, payload, source, idempotency_key, "
        "organization_id, user_id, created_at) SELECT t.id, t.event, t.payload::json, t.source, "
        "t.idem, t.org, t.uid, hk_ts(t.created) FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[]) AS t(id, event, payload, "
        "source, idem, org, uid, created) ON CONFLICT DO NOTHING RETURNING id), "
        "dl AS (INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, "
        "event_data, status, request_url, attempt_number, max_attempts, next_retry_at, "
        "created_at, lease_owner) SELECT t.id, t.wid, t.eid, t.etype, t.edata::json, 'pending', "
        "t.url, 0, t.maxa, hk_ts(t.due), hk_ts(t.created), t.lease FROM unnest($9::text[], "
        "$10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int[], "
        "$16::bigint[], $17::bigint[], $18::text[]) AS t(id, wid, eid, etype, edata, url, maxa, "
        "due, created, lease) WHERE t.eid IN (SELECT id FROM ev)) SELECT id FROM ev",
    [Q_DL_FAIL_WEBHOOK] = "UPDATE webhook_delivery SET status = 'failed', error_message = "
                          "'webhook deleted', completed_at = hk_ts($2), next_retry_at = NULL, "
                          "lease_owner = NULL WHERE webhook_id = $1 AND " OPEN_STATUS,
    [Q_DL_PARK_WEBHOOK] = "UPDATE webhook_delivery SET next_retry_at = NULL WHERE webhook_id = "
                          "$1 AND " OPEN_STATUS " AND lease_owner IS NULL",
    [Q_DL_UNPARK_WEBHOOK] = "UPDATE webhook_delivery SET next_retry_at = hk_ts($2) WHERE "
                            "webhook_id = $1 AND " OPEN_STATUS " AND next_retry_at IS NULL",
    [Q_DL_LIST] = "SELECT " DL_COLS DL_FROM " WHERE d.webhook_id = $1 AND "
                  "(d.created_at, d.id) < " KEYSET_DL
                  " ORDER BY d.created_at DESC, d.id DESC LIMIT $2 OFFSET $3",
    [Q_DL_LIST_F] = "SELECT " DL_COLS DL_FROM " WHERE d.webhook_id = $1 AND d.status = "
                    "$6::webhook_delivery_status AND (d.created_at, d.id) < " KEYSET_DL
                    " ORDER BY d.created_at DESC, d.id DESC LIMIT $2 OFFSET $3",
    [Q_DL_NUM] = "SELECT count(*) FROM (SELECT 1 FROM webhook_delivery WHERE webhook_id = $1 "
                 "ORDER BY created_at DESC, id DESC LIMIT $2) n",
    [Q_DL_NUM_F] =
        "SELECT count(*) FROM (SELECT 1 FROM webhook_delivery WHERE webhook_id = $1 "
        "AND status = $3::webhook_delivery_status ORDER BY created_at DESC, id DESC LIMIT $2) n",
    [Q_DL_GET] = "SELECT " DL_COLS DL_FROM " JOIN webhook w ON w.id = d.webhook_id WHERE "
                 "d.id = $1 AND w.organization_id = $2",
    [Q_ATT_LIST] = "SELECT webhook_delivery_id, id, attempt_number, status, response_status, "
                   "response_body, response_headers, duration_ms, error_message, "
                   "hk_ms(created_at) FROM webhook_delivery_attempt WHERE webhook_delivery_id "
                   "= ANY($1::text[]) ORDER BY webhook_delivery_id, attempt_number, created_at",
    [Q_CLAIM] =
        "WITH c AS (SELECT id FROM webhook_delivery WHERE " OPEN_STATUS
        " AND lease_owner IS NULL AND next_retry_at IS NOT NULL AND next_retry_at <= "
        "hk_ts($1)" FIFO_HEAD(
            "webhook_delivery") " ORDER BY next_retry_at LIMIT $2 FOR "
                                "NO KEY UPDATE SKIP LOCKED) "
                                "UPDATE webhook_delivery d SET lease_owner = $3 FROM c, "
                                "webhook_event e WHERE "
                                "d.id = c.id AND e.id = d.webhook_event_id RETURNING d.id, "
                                "d.webhook_id, "
                                "d.webhook_event_id, d.status, d.attempt_number, d.max_attempts, "
                                "hk_ms(d.next_retry_at), hk_ms(d.created_at), d.event_data, "
                                "e.event, e.payload, "
                                "hk_ms(e.created_at)",
    [Q_DL_PARK_IDS] = "UPDATE webhook_delivery SET lease_owner = NULL, next_retry_at = NULL "
                      "WHERE id = ANY($1::text[])",
    /* A batch may hold two results of one delivery (a retry kept in memory ended again while
     * the previous batch was being written): an UPDATE ... FROM that joins a row twice applies
     * one of the two at random, so the row update takes each delivery's highest attempt only
     * (an earlier one applied last left a succeeded delivery `retrying` and leased forever). */
    [Q_RESULTS] =
        "WITH r AS (SELECT DISTINCT ON (did, num) * FROM unnest($1::text[], $2::text[], "
        "$3::int[], $4::text[], $5::boolean[], $6::int[], $7::text[], $8::text[], $9::text[], "
        "$10::text[], $11::text[], $12::int[], $13::bigint[], $14::bigint[], $15::bigint[], "
        "$16::boolean[], $17::text[]) WITH ORDINALITY AS r(did, aid, num, status, ok, rstatus, "
        "rbody, rheaders, qheaders, url, err, dur, started, next, completed, keep, qref, ord) "
        "ORDER BY did, num, ord), "
        "a AS (INSERT INTO webhook_delivery_attempt (id, webhook_delivery_id, attempt_number, "
        "status, response_status, response_body, response_headers, duration_ms, error_message, "
        "created_at) SELECT aid, did, num, CASE WHEN ok THEN 'success' ELSE 'failed' "
        "END::webhook_delivery_status, rstatus, rbody, rheaders::json, dur, err, hk_ts(started) "
        "FROM r WHERE EXISTS (SELECT 1 FROM webhook_delivery x WHERE x.id = r.did) AND NOT "
        "EXISTS (SELECT 1 FROM webhook_delivery_attempt y WHERE y.webhook_delivery_id = r.did "
        "AND y.attempt_number = r.num) ON CONFLICT (id) DO NOTHING RETURNING id), "
        "u AS (UPDATE webhook_delivery d SET status = r.status::webhook_delivery_status, "
        "attempt_number = r.num, response_status = r.rstatus, response_body = r.rbody, "
        "response_headers = r.rheaders::json, request_headers = r.qheaders::json, request_url = "
        "COALESCE(r.url, d.request_url), error_message = r.err, duration_ms = r.dur, "
        "last_attempt_at = hk_ts(r.started), next_retry_at = hk_ts(r.next), completed_at = "
        "hk_ts(r.completed), lease_owner = CASE WHEN r.keep THEN d.lease_owner ELSE NULL END, "
        "request_headers_ref = r.qref FROM (SELECT DISTINCT ON (r.did) r.* FROM r JOIN a ON a.id "
        "= r.aid ORDER BY r.did, r.num DESC) r WHERE d.id = r.did AND d." OPEN_STATUS
        ") SELECT id FROM a",
    [Q_DL_RELEASE] = "UPDATE webhook_delivery d SET lease_owner = NULL, next_retry_at = "
                     "hk_ts(r.due) FROM unnest($1::text[], $2::bigint[]) AS r(id, due) WHERE "
                     "d.id = r.id AND d.lease_owner = $3",
    [Q_NODE_UPSERT] = "INSERT INTO hk_node (id, alive_until, started_at) VALUES ($1, hk_ts($2), "
                      "hk_ts($3)) ON CONFLICT (id) DO UPDATE SET alive_until = "
                      "excluded.alive_until",
    [Q_NODE_RECLAIM] = "UPDATE webhook_delivery SET lease_owner = NULL WHERE id IN (SELECT d.id "
                       "FROM hk_node n JOIN webhook_delivery d ON d.lease_owner = n.id WHERE "
                       "n.alive_until < hk_ts($1) AND n.id <> $2 FOR NO KEY UPDATE OF d SKIP "
                       "LOCKED)",
    [Q_NODE_DELETE_DEAD] = "DELETE FROM hk_node WHERE id IN (SELECT n.id FROM hk_node n WHERE "
                           "n.alive_until < hk_ts($1) AND n.id <> $2 AND NOT EXISTS (SELECT 1 "
                           "FROM webhook_delivery d WHERE d.lease_owner = n.id) FOR UPDATE SKIP "
                           "LOCKED)",
    [Q_DL_REPLAY] = "INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, "
                    "event_data, status, request_url, attempt_number, max_attempts, "
                    "next_retry_at, created_at, replay_of_delivery_id) SELECT $1, d.webhook_id, "
                    "d.webhook_event_id, d.event_type, d.event_data, 'pending', $3, 0, $4, "
                    "hk_ts($5), hk_ts($5), d.id FROM webhook_delivery d WHERE d.id = $2 FOR KEY "
                    "SHARE",
    [Q_DL_FAILED_RANGE] = "SELECT id FROM webhook_delivery WHERE webhook_id = $1 AND status = "
                          "'failed' AND created_at >= hk_ts($2) AND ($3::bigint IS NULL OR "
                          "created_at < hk_ts($3::bigint)) ORDER BY created_at, id",
    [Q_DL_WEBHOOK_OF] = "SELECT d.webhook_id FROM webhook_delivery d JOIN webhook w ON w.id = "
                        "d.webhook_id WHERE d.id = $1 AND w.organization_id = $2",
    [Q_CLAIM_IDS] =
        "WITH c AS (SELECT id FROM webhook_delivery WHERE id = ANY($1::text[]) "
        "AND " OPEN_STATUS_BY_ID " AND lease_owner IS NULL AND next_retry_at IS NOT NULL AND "
        "next_retry_at <= hk_ts($2)" FIFO_HEAD(
            "webhook_delivery") " FOR NO KEY UPDATE SKIP "
                                "LOCKED) UPDATE webhook_delivery d SET lease_owner = $3 FROM c, "
                                "webhook_event e "
                                "WHERE d.id = c.id AND e.id = d.webhook_event_id RETURNING d.id, "
                                "d.webhook_id, d.webhook_event_id, d.status, d.attempt_number, "
                                "d.max_attempts, hk_ms(d.next_retry_at), hk_ms(d.created_at), "
                                "d.event_data, "
                                "e.event, e.payload, hk_ms(e.created_at)",
    [Q_CLAIM_LATER] = "SELECT id, hk_ms(next_retry_at) FROM webhook_delivery WHERE id = "
                      "ANY($1::text[]) AND " OPEN_STATUS_BY_ID " AND lease_owner IS NULL AND "
                      "next_retry_at > hk_ts($2)",
    /* keyset paging on the due index (next_retry_at, id): the row comparison is its range
     * start. The first page passes a time before every row rather than "$1 IS NULL OR",
     * with which the generic plan scanned the index from its start on every page. */
    [Q_DUE_SCAN] = "SELECT id, hk_ms(next_retry_at) FROM webhook_delivery WHERE " OPEN_STATUS
                   " AND lease_owner IS NULL AND next_retry_at IS NOT NULL AND (next_retry_at, "
                   "id) > (hk_ts($1::bigint), $2::text) AND next_retry_at <= hk_ts($3)" FIFO_HEAD(
                       "webhook_delivery") " ORDER BY next_retry_at, id LIMIT $4",
    /* operational events: what an event about a delivery names of it */
    [Q_DL_BRIEF] = "SELECT webhook_event_id, event_type FROM webhook_delivery WHERE id = $1",
    /* the heads of FIFO webhooks (docs/API.md "Ordering"): per webhook of $1 that is "fifo",
     * its oldest open delivery, whether it is leased, its due time. One ordered range of the
     * index webhook_delivery_list_status per open status, the older of the two. */
    [Q_FIFO_HEADS] = "SELECT h.id, h.lease_owner IS NULL, hk_ms(h.next_retry_at) FROM "
                     "unnest($1::text[]) AS w(id) JOIN webhook fw ON fw.id = w.id AND "
                     "fw.ordering = 'fifo' CROSS JOIN LATERAL (SELECT * FROM ((SELECT id, "
                     "created_at, lease_owner, next_retry_at FROM webhook_delivery WHERE "
                     "webhook_id = w.id AND status = 'pending' ORDER BY created_at, id LIMIT 1) "
                     "UNION ALL (SELECT id, created_at, lease_owner, next_retry_at FROM "
                     "webhook_delivery WHERE webhook_id = w.id AND status = 'retrying' ORDER BY "
                     "created_at, id LIMIT 1)) u ORDER BY created_at, id LIMIT 1) h",
    [Q_DL_RESCHEDULE] = "UPDATE webhook_delivery d SET next_retry_at = hk_ts(r.due) FROM "
                        "unnest($1::text[], $2::bigint[]) AS r(id, due) WHERE d.id = r.id AND "
                        "d.lease_owner = $3 AND d.next_retry_at < hk_ts(r.due) AND d." OPEN_STATUS,
};

/* ---- per-group state: batched ingest rows and results ---------------------------------------- */

enum { /* the columns of Q_INGEST_FLUSH, each an array literal */
       EC_ID,
       EC_TYPE,
       EC_PAYLOAD,
       EC_SOURCE,
       EC_IDEM,
       EC_ORG,
       EC_USER,
       EC_CREATED,
       DC_ID,
       DC_WID,
       DC_EID,
       DC_TYPE,
       DC_DATA,
       DC_URL,
       DC_MAXA,
       DC_DUE,
       DC_CREATED,
       DC_LEASE,
       NCOLS
};

typedef struct pend_ev { /* an event buffered for the next flush */
    hk_req *req;
    hk_ingest_item *it;
    char *idem_key; /* "<org>\x1f<key>" (the in-group idempotency map's key), or NULL */
} pend_ev;

typedef struct pend_dup { /* an item that repeats the key of a buffered event of this group */
    hk_ingest_item *it;
    int first; /* index in evs */
} pend_dup;

typedef struct group_mark { /* where a request's own buffered rows begin */
    size_t collen[NCOLS];
    int nrows_ev, nrows_dl, nevs, ndups, nresults;
} group_mark;

typedef struct pgc {
    hk_conn base; /* first: the group state rows.c and store.c keep (rows.h) */
    PGconn *pg;
    int role;
    const hk_config *cfg;
    unsigned char prepared[Q_MAX];
    int sp_made; /* a SAVEPOINT exists for the current request */

    hk_buf col[NCOLS]; /* ingest rows not yet flushed */
    int nrows_ev, nrows_dl;
    pend_ev *evs;              /* every new event of the group (flushed or not) */
    int nevs, evcap, nflushed; /* evs[0..nflushed) are written */
    hk_map idem;               /* "<org>\x1f<key>" -> evs index + 1 */
    pend_dup *dups;
    int ndups, dupcap;
    hk_req **results; /* results requests of the group (health at pre-commit) */
    int nresults, rescap;
    group_mark mark;
    char lasterr[256]; /* message of the last HK_EINVAL from the database */
    char taken[256];   /* lasterr as pg_take_error handed it out */
} pgc;

/* ---- errors, parameters, results ------------------------------------------------------------ */

/* Maps a failed result (or a broken connection, res NULL) to hookd's codes: a unique or foreign
 * key violation is a conflict; everything else (connection lost, server shutting down,
 * deadlock, a statement the server refused) makes the request unavailable, logged. */
static int map_err(pgc *c, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0)) return HK_ECONFLICT;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg);
    char line[512];
    hk_strlcpy(line, msg && msg[0] ? msg : "connection lost", sizeof line);
    line[strcspn(line, "\r\n")] = '\0';
    if (state && strncmp(state, "22", 2) == 0) {
        /* a data exception: a value the database refuses (say JSON that a json column
         * does not accept) is bad input, not an outage */
        hk_strlcpy(c->lasterr, "the database refused a value: ", sizeof c->lasterr);
        size_t used = strlen(c->lasterr);
        hk_strlcpy(c->lasterr + used, line, sizeof c->lasterr - used);
        return HK_EINVAL;
    }
    HK_LOG(PQstatus(c->pg) == CONNECTION_OK ? HK_LOG_ERROR : HK_LOG_WARN, "store.pg_error",
           HK_LS("op", what), HK_LS("sqlstate", state ? state : ""), HK_LS("msg", line));
    return HK_EUNAVAIL;
}

#define PMAX 32 /* more than any statement binds (webhook update: 21) */

typedef struct pp { /* the parameters of one statement, as text (NULL = SQL NULL) */
    int n;
    const char *v[PMAX];
    char num[PMAX][24];
} pp;

/* A statement that binds more than PMAX parameters is a bug of this file: stop at once rather
 * than write past the arrays (UBSan found the webhook update at 21 when PMAX was 20). */
static void p_room(const pp *p)
{
    if (p->n >= PMAX) {
        fprintf(stderr, "hookd: pg.c binds more than %d parameters (raise PMAX)\n", PMAX);
        abort();
    }
}

static void p_text(pp *p, const char *s)
{
    p_room(p);
    p->v[p->n++] = s;
}

static void p_i64(pp *p, int64_t x)
{
    p_room(p);
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)x);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

static void p_time(pp *p, int64_t ms) /* 0 = NULL */
{
    if (ms > 0)
        p_i64(p, ms);
    else
        p_text(p, NULL);
}

/* Runs statement id with p's parameters (prepared on first use on this connection). Returns
 * HK_OK with *out the result (the caller PQclears it; out may be NULL), or an error code. */
/* run() with the result in binary (binary = 1: each value as PostgreSQL's send function writes
 * it; g_bin_i64 and g_bin_hist read them) or in text (0). */
static int run_as(pgc *c, int id, const pp *p, PGresult **out, int binary)
{
    if (out) *out = NULL;
    char name[16];
    snprintf(name, sizeof name, "q%d", id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->pg, name, sql[id], 0, NULL);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        int rc = ok ? HK_OK : map_err(c, r, "prepare");
        PQclear(r);
        if (rc) return rc;
        c->prepared[id] = 1;
    }
    PGresult *r =
        PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, binary ? 1 : 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char what[32];
        snprintf(what, sizeof what, "statement %d", id);
        int rc = map_err(c, r, what);
        PQclear(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return HK_OK;
}

static int run(pgc *c, int id, const pp *p, PGresult **out)
{
    return run_as(c, id, p, out, 0);
}

/* Runs a statement and returns the number of rows it changed (or an error code). */
static int64_t run_count(pgc *c, int id, const pp *p)
{
    PGresult *r;
    int rc = run(c, id, p, &r);
    if (rc) return rc;
    int64_t n = 0;
    const char *t = PQcmdTuples(r);
    if (t && t[0]) n = strtoll(t, NULL, 10);
    PQclear(r);
    return n;
}

/* A simple command outside prepared statements (BEGIN, SAVEPOINT, ...). */
static int simple(pgc *c, const char *cmd)
{
    PGresult *r = PQexec(c->pg, cmd);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    int rc = ok ? HK_OK : map_err(c, r, cmd);
    PQclear(r);
    return rc;
}

static char *g_text(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return NULL;
    return hk_strndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static int64_t g_i64(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A big-endian unsigned integer of n bytes at s (binary results). */
static uint64_t be_uint(const char *s, int n)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | u[i];
    return v;
}

/* A bigint column of a binary result (0 if NULL). */
static int64_t g_bin_i64(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
    return (int64_t)be_uint(PQgetvalue(r, row, col), 8);
}

/* Adds a bigint[] column of a binary result (array_send: ndim, has-null flag, element type,
 * then per dimension its size and lower bound, then per element its length and 8 bytes) to
 * histogram h. Returns 0, or -1 if it is not a one-dimensional bigint array of at most
 * HK_SH_BUCKETS elements. A read by minute adds 2,880 of them: binary spares PostgreSQL
 * printing 138,240 integers and hookd parsing them. */
static int g_bin_hist(PGresult *r, int row, int col, int64_t *h)
{
    if (PQgetisnull(r, row, col)) return 0;
    const char *s = PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (len < 12) return -1;
    uint64_t ndim = be_uint(s, 4);
    if (ndim == 0) return 0; /* '{}' */
    if (ndim != 1 || len < 20) return -1;
    uint64_t n = be_uint(s + 12, 4);
    if (n > HK_SH_BUCKETS) return -1;
    int off = 20;
    for (uint64_t i = 0; i < n; i++) {
        if (off + 4 > len) return -1;
        uint64_t el = be_uint(s + off, 4);
        off += 4;
        if (el == 0xffffffffu) continue; /* NULL: adds nothing */
        if (el != 8 || off + 8 > len) return -1;
        h[i] += (int64_t)be_uint(s + off, 8);
        off += 8;
    }
    return 0;
}

static int g_bool(PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static void g_id(PGresult *r, int row, int col, char out[HK_ID_MAX])
{
    hk_strlcpy(out, PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col), HK_ID_MAX);
}

/* ---- array literals ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

static void arr_sep(hk_buf *b)
{
    if (b->len == 0)
        hk_buf_putc(b, '{');
    else
        hk_buf_putc(b, ',');
}

/* Appends one text element (NULL: SQL NULL). With clean, bytes that are not valid UTF-8 become
 * U+FFFD, so a text an endpoint sent can never make a batch unwritable. */
static void arr_textn(hk_buf *b, const char *s, size_t n, int clean)
{
    arr_sep(b);
    if (!s) {
        hk_buf_puts(b, "NULL");
        return;
    }
    hk_buf_reserve(b, n + 2);
    hk_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] == '"' || p[i] == '\\') {
            hk_buf_putc(b, '\\');
            hk_buf_putc(b, (char)p[i++]);
            continue;
        }
        if (p[i] < 0x80) {
            if (p[i]) hk_buf_putc(b, (char)p[i]);
            i++;
            continue;
        }
        size_t l = clean ? utf8_len(p + i, n - i) : 1;
        if (l == 0) {
            hk_buf_puts(b, "\xEF\xBF\xBD");
            i++;
        } else {
            hk_buf_append(b, p + i, l);
            i += l;
        }
    }
    hk_buf_putc(b, '"');
}

static void arr_text(hk_buf *b, const char *s)
{
    arr_textn(b, s, s ? strlen(s) : 0, 0);
}

static void arr_i64(hk_buf *b, int64_t v)
{
    arr_sep(b);
    hk_buf_printf(b, "%lld", (long long)v);
}

static void arr_time(hk_buf *b, int64_t ms)
{
    if (ms > 0) {
        arr_i64(b, ms);
    } else {
        arr_sep(b);
        hk_buf_puts(b, "NULL");
    }
}

static void arr_bool(hk_buf *b, int v)
{
    arr_sep(b);
    hk_buf_putc(b, v ? 't' : 'f');
}

/* The finished literal of b ("{}" when empty). */
static const char *arr_done(hk_buf *b)
{
    if (b->len == 0) hk_buf_putc(b, '{');
    hk_buf_putc(b, '}');
    return hk_buf_cstr(b);
}

/* ---- statistics (rollup.h) ----------------------------------------------------------------- */

/* Appends rows[0..n)'s columns to the array literals b[0..9) (b[8]: the grain). */
static void rollup_arrays(hk_buf *b, const hk_rollup_row *rows, int n)
{
    char h[HK_SH_TEXT_MAX];
    for (int i = 0; i < n; i++) {
        const hk_rollup_row *r = &rows[i];
        arr_text(&b[0], r->webhook_id);
        arr_i64(&b[1], r->start);
        arr_i64(&b[2], r->delivered);
        arr_i64(&b[3], r->failed);
        arr_i64(&b[4], r->given_up);
        arr_i64(&b[5], r->last_at);
        hk_sh_format(r->att, h);
        arr_text(&b[6], h);
        hk_sh_format(r->e2e, h);
        arr_text(&b[7], h);
        arr_i64(&b[8], r->grain);
    }
}

/* hk_rollup_collect_all's rows (the minute rows first, then the hour and day rows) in one
 * statement. */
static int pg_rollup_upsert(void *conn, const hk_rollup_row *rows, int n)
{
    int nm = 0;
    while (nm < n && rows[nm].grain == HK_ROLLUP_MINUTE) nm++;
    hk_buf b[18];
    for (int k = 0; k < 18; k++) hk_buf_init(&b[k], HK_BUF_UNLIMITED);
    rollup_arrays(b, rows, nm);
    rollup_arrays(b + 9, rows + nm, n - nm);
    pp p = {0};
    for (int k = 0; k < 18; k++)
        if (k != 8) p_text(&p, arr_done(&b[k])); /* the minute rows' grain is implied */
    int rc = run(conn, Q_ST_UPSERT, &p, NULL);
    for (int k = 0; k < 18; k++) hk_buf_free(&b[k]);
    return rc;
}

static int pg_rollup_read(void *conn, const char *wid, int64_t grain, int64_t from, int64_t to,
                          hk_rollup_row **rows, int *n)
{
    pgc *c = conn;
    int minute = grain == HK_ROLLUP_MINUTE;
    pp p = {0};
    p_text(&p, wid);
    p_i64(&p, from);
    p_i64(&p, to);
    if (!minute) p_i64(&p, grain);
    PGresult *r;
    *rows = NULL;
    *n = 0;
    int rc = run_as(c, minute ? Q_ST_READ : Q_ST_READ_C, &p, &r, 1);
    if (rc) return rc;
    int nt = PQntuples(r);
    if (nt) *rows = hk_calloc((size_t)nt, sizeof **rows);
    for (int i = 0; !rc && i < nt; i++) {
        hk_rollup_row *x = &(*rows)[i];
        hk_strlcpy(x->webhook_id, wid, HK_ID_MAX);
        x->start = g_bin_i64(r, i, 0);
        x->grain = grain;
        x->delivered = g_bin_i64(r, i, 1);
        x->failed = g_bin_i64(r, i, 2);
        x->given_up = g_bin_i64(r, i, 3);
        x->last_at = g_bin_i64(r, i, 4);
        if (g_bin_hist(r, i, 5, x->att) || g_bin_hist(r, i, 6, x->e2e)) {
            HK_LOG(HK_LOG_ERROR, "store.stats_unreadable", HK_LS("webhook_id", wid));
            rc = HK_EUNAVAIL;
        }
    }
    *n = nt;
    PQclear(r);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

static int pg_backlog(void *conn, const char *wid, int64_t cap, int64_t *n)
{
    pp p = {0};
    p_text(&p, wid);
    p_i64(&p, cap + 1);
    PGresult *r;
    int rc = run(conn, Q_ST_BACKLOG, &p, &r);
    if (rc) return rc;
    *n = g_i64(r, 0, 0);
    PQclear(r);
    return HK_OK;
}

static int pg_org_stats(void *conn, hk_req *req)
{
    pp p = {0};
    p_text(&p, req->org_id);
    p_i64(&p, req->u.ostats.since);
    p_text(&p, req->u.ostats.after ? req->u.ostats.after : "");
    p_i64(&p, req->u.ostats.limit + 1);
    p_i64(&p, (req->u.ostats.since + HK_ROLLUP_HOUR - 1) / HK_ROLLUP_HOUR * HK_ROLLUP_HOUR);
    PGresult *r;
    int rc = run(conn, Q_ST_ORG, &p, &r);
    if (rc) return rc;
    int nt = PQntuples(r);
    req->u.ostats.items = hk_calloc((size_t)(nt ? nt : 1), sizeof(hk_org_stat));
    for (int i = 0; i < nt; i++) {
        hk_org_stat *x = &req->u.ostats.items[i];
        g_id(r, i, 0, x->id);
        x->name = g_text(r, i, 1);
        x->url = g_text(r, i, 2);
        x->status = g_text(r, i, 3);
        x->delivered = g_i64(r, i, 4);
        x->failed = g_i64(r, i, 5);
        x->given_up = g_i64(r, i, 6);
        x->last_at = g_i64(r, i, 7);
    }
    req->u.ostats.n = nt;
    PQclear(r);
    return HK_OK;
}

/* ---- webhooks ------------------------------------------------------------------------------ */

/* Builds a webhook from a row of WH_COLS, subscriptions included. */
static hk_webhook *row_webhook(PGresult *r, int i)
{
    hk_webhook *w = hk_calloc(1, sizeof *w);
    g_id(r, i, 0, w->id);
    w->name = g_text(r, i, 1);
    w->url = g_text(r, i, 2);
    w->secret = g_text(r, i, 3);
    w->prev_secret = g_text(r, i, 4);
    w->prev_secret_expires_at = g_i64(r, i, 5);
    w->org_id = g_text(r, i, 6);
    w->user_id = g_text(r, i, 7);
    w->status = hk_wh_status_parse(PQgetvalue(r, i, 8));
    if (w->status < 0) w->status = HK_WH_ACTIVE;
    w->custom_headers = g_text(r, i, 9);
    w->rate_limit_enabled = g_bool(r, i, 10);
    w->max_per_minute = (int)g_i64(r, i, 11);
    w->max_retries = (int)g_i64(r, i, 12);
    w->filtering_options = g_text(r, i, 13);
    w->schemes = hk_schemes_parse(PQgetvalue(r, i, 14));
    w->last_triggered_at = g_i64(r, i, 15);
    w->success_count = g_i64(r, i, 16);
    w->failure_count = g_i64(r, i, 17);
    w->consecutive_failures = g_i64(r, i, 18);
    w->deleted_at = g_i64(r, i, 19);
    w->created_at = g_i64(r, i, 20);
    w->updated_at = g_i64(r, i, 21);
    w->retry_schedule = g_text(r, i, 23);
    w->timeout_ms = (int)g_i64(r, i, 24);
    w->signing_key = g_text(r, i, 25);
    w->prev_signing_key = g_text(r, i, 26);
    w->prev_signing_key_expires_at = g_i64(r, i, 27);
    w->org_disabled = g_bool(r, i, 28);
    w->fifo = !PQgetisnull(r, i, 29) && strcmp(PQgetvalue(r, i, 29), "fifo") == 0;
    /* subscriptions: event patterns never hold a space (validated), so ' ' separates them */
    const char *s = PQgetisnull(r, i, 22) ? "" : PQgetvalue(r, i, 22);
    int cap = 0;
    while (*s) {
        const char *e = strchr(s, ' ');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (w->nevents == cap) {
            cap = cap ? cap * 2 : 4;
            w->events = hk_realloc(w->events, sizeof(char *) * (size_t)cap);
        }
        w->events[w->nevents++] = hk_strndup(s, n);
        s = e ? e + 1 : s + n;
    }
    return w;
}

/* Runs a webhook query; each row is appended to *items (allocated). Returns HK_OK or an error. */
static int fetch_webhooks(pgc *c, int id, const pp *p, hk_webhook ***items, int *n)
{
    PGresult *r;
    int rc = run(c, id, p, &r);
    if (rc) return rc;
    int rows = PQntuples(r);
    if (rows) *items = hk_realloc(*items, sizeof(hk_webhook *) * (size_t)(*n + rows));
    for (int i = 0; i < rows; i++) (*items)[(*n)++] = row_webhook(r, i);
    PQclear(r);
    return HK_OK;
}

/* One webhook by a query expected to return at most one row; *out NULL if none. */
static int fetch_webhook(pgc *c, int id, const pp *p, hk_webhook **out)
{
    hk_webhook **items = NULL;
    int n = 0;
    *out = NULL;
    int rc = fetch_webhooks(c, id, p, &items, &n);
    if (!rc && n) *out = items[0];
    for (int i = 1; i < n; i++) hk_webhook_free(items[i]);
    free(items);
    return rc;
}

static int webhook_by_id(pgc *c, const char *id, hk_webhook **out)
{
    hk_buf a;
    hk_buf_init(&a, HK_BUF_UNLIMITED);
    arr_text(&a, id);
    pp p = {0};
    p_text(&p, arr_done(&a));
    int rc = fetch_webhook(c, Q_WH_BY_IDS, &p, out);
    hk_buf_free(&a);
    return rc;
}

static int pg_webhook_get(void *conn, const char *id, const char *org, hk_webhook **out)
{
    pgc *c = conn;
    if (!org) return webhook_by_id(c, id, out);
    pp p = {0};
    p_text(&p, id);
    p_text(&p, org);
    return fetch_webhook(c, Q_WH_GET, &p, out);
}

/* Creates the request's savepoint if it has none yet: called (be->write_now) before a request
 * writes at once rather than into the group's batch, so that its failure can be undone alone. */
static int need_savepoint(void *conn)
{
    pgc *c = conn;
    if (c->sp_made || c->role != HK_CONN_WRITER) return HK_OK;
    int rc = simple(c, "SAVEPOINT req");
    if (!rc) c->sp_made = 1;
    return rc;
}

static int pg_subs_insert(void *conn, const char *wid, const char *const *events, int n,
                          int64_t now)
{
    pgc *c = conn;
    for (int i = 0; i < n; i++) {
        char id[HK_ID_MAX];
        hk_id_new("whsub", id);
        pp p = {0};
        p_text(&p, id);
        p_text(&p, wid);
        p_text(&p, events[i]);
        p_i64(&p, now);
        int rc = run(c, Q_SUB_INSERT, &p, NULL);
        if (rc) return rc;
    }
    return HK_OK;
}

static int pg_subs_delete(void *conn, const char *wid)
{
    pp d = {0};
    p_text(&d, wid);
    return run(conn, Q_SUB_DELETE, &d, NULL);
}

static int pg_webhook_park(void *conn, const char *wid)
{
    pp p = {0};
    p_text(&p, wid);
    return run(conn, Q_DL_PARK_WEBHOOK, &p, NULL);
}

static int pg_webhook_unpark(void *conn, const char *wid, int64_t now, int *count)
{
    pp u = {0};
    p_text(&u, wid);
    p_i64(&u, now);
    int64_t n = run_count(conn, Q_DL_UNPARK_WEBHOOK, &u);
    if (n < 0) return (int)n;
    if (count) *count = (int)n;
    return HK_OK;
}

static int pg_webhook_exists(void *conn, const char *id, const char *org, int *found)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, org);
    PGresult *r;
    int rc = run(conn, Q_WH_EXISTS, &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    PQclear(r);
    return HK_OK;
}

/* Serializes webhook creates of org across nodes (an advisory lock until the transaction
 * ends), then counts (webhook_org index): count-then-insert is race-free. */
static int pg_webhook_count_org(void *conn, const char *org, int64_t *n)
{
    pgc *c = conn;
    pp q = {0};
    p_text(&q, org);
    int rc = run(c, Q_WH_ORG_LOCK, &q, NULL);
    if (rc) return rc;
    p_text(&q, NULL);
    PGresult *r;
    if ((rc = run(c, Q_WH_COUNT, &q, &r))) return rc;
    *n = g_i64(r, 0, 0);
    PQclear(r);
    return HK_OK;
}

static int pg_webhook_insert(void *conn, hk_req *req, const char *id, const hk_wh_row *w)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, w->name);
    p_text(&p, w->url);
    p_text(&p, w->secret);
    p_text(&p, req->org_id);
    p_text(&p, w->user_id);
    p_text(&p, hk_wh_status_name(w->status));
    p_text(&p, w->custom_headers);
    p_i64(&p, w->rate_limit_enabled);
    p_i64(&p, w->max_per_minute);
    p_i64(&p, w->max_retries);
    p_text(&p, w->filtering_options);
    p_text(&p, w->schemes);
    p_i64(&p, req->now);
    p_text(&p, w->retry_schedule);
    p_time(&p, w->timeout_ms);
    p_text(&p, w->signing_key);
    p_text(&p, w->fifo ? "fifo" : "parallel");
    return run(conn, Q_WH_INSERT, &p, NULL);
}

static int pg_webhook_rotate(void *conn, const char *id, int64_t expires)
{
    pp r = {0};
    p_text(&r, id);
    p_time(&r, expires);
    return run(conn, Q_WH_ROTATE, &r, NULL);
}

static int pg_webhook_update(void *conn, const char *id, const hk_wh_row *w)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, w->name);
    p_text(&p, w->url);
    p_text(&p, w->secret);
    p_text(&p, hk_wh_status_name(w->status));
    p_text(&p, w->custom_headers);
    p_i64(&p, w->rate_limit_enabled);
    p_i64(&p, w->max_per_minute);
    p_i64(&p, w->max_retries);
    p_text(&p, w->filtering_options);
    p_text(&p, w->schemes);
    p_text(&p, w->user_id);
    p_i64(&p, w->consecutive_failures);
    p_i64(&p, w->updated_at);
    p_text(&p, w->retry_schedule);
    p_time(&p, w->timeout_ms);
    p_text(&p, w->signing_key);
    p_text(&p, w->prev_signing_key);
    p_time(&p, w->prev_signing_key_expires_at);
    p_text(&p, w->recovering ? "true" : "false");
    p_text(&p, w->fifo ? "fifo" : "parallel");
    return run(conn, Q_WH_UPDATE, &p, NULL);
}

/* A list's bounded count (backend.h): *total = min(rows, HK_LIST_COUNT_CAP), *capped = 1 if
 * there are more. filter NULL: the unfiltered statement `id`, else `id + 1`'s (the _F one). */
static int list_count(pgc *c, int id, const char *scope, const char *filter, int64_t *total,
                      int *capped)
{
    pp p = {0};
    p_text(&p, scope);
    p_i64(&p, HK_LIST_COUNT_CAP + 1);
    if (filter) p_text(&p, filter);
    PGresult *r;
    int rc = run(c, filter ? id + 1 : id, &p, &r);
    if (rc) return rc;
    int64_t n = g_i64(r, 0, 0);
    PQclear(r);
    *capped = n > HK_LIST_COUNT_CAP;
    *total = *capped ? HK_LIST_COUNT_CAP : n;
    return HK_OK;
}

/* The parameters of a list's page statement (backend.h); the statement is `id` unfiltered,
 * `id + 1` with a filter (returned). */
static int list_params(pp *p, int id, const char *scope, const char *filter, int page, int limit,
                       const hk_cursor *after)
{
    p_text(p, scope);
    p_i64(p, (int64_t)limit + 1);
    p_i64(p, (int64_t)(page - 1) * limit);
    p_i64(p, after->id[0] ? after->at : HK_CURSOR_TOP);
    p_text(p, after->id);
    if (filter) p_text(p, filter);
    return filter ? id + 1 : id;
}

static int pg_webhook_list(void *conn, hk_req *req)
{
    pgc *c = conn;
    const char *status =
        req->u.wh_list.status >= 0 ? hk_wh_status_name(req->u.wh_list.status) : NULL;
    int rc =
        list_count(c, Q_WH_NUM, req->org_id, status, &req->u.wh_list.total, &req->u.wh_list.capped);
    if (rc) return rc;
    pp p = {0};
    int id = list_params(&p, Q_WH_LIST, req->org_id, status, req->u.wh_list.page,
                         req->u.wh_list.limit, &req->u.wh_list.after);
    return fetch_webhooks(c, id, &p, &req->u.wh_list.items, &req->u.wh_list.n);
}

static int pg_webhook_delete(void *conn, hk_req *req)
{
    pgc *c = conn;
    int found = 0;
    int rc = pg_webhook_exists(c, req->u.wh_delete.id, req->org_id, &found);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    pp p = {0};
    p_text(&p, req->u.wh_delete.id);
    p_text(&p, req->org_id);
    /* The deliveries first, the webhook row last: this transaction then never holds the
     * webhook row while waiting for delivery rows another node's results batch holds. */
    pp f = {0};
    p_text(&f, req->u.wh_delete.id);
    p_i64(&f, req->now);
    int64_t n = run_count(c, Q_DL_FAIL_WEBHOOK, &f);
    if (n < 0) return (int)n;
    req->u.wh_delete.failed = n;
    p_i64(&p, req->now);
    n = run_count(c, Q_WH_DELETE, &p);
    if (n < 0) return (int)n;
    return n ? HK_OK : HK_ENOTFOUND;
}

static int pg_webhook_load(void *conn, hk_req *req)
{
    hk_buf a;
    hk_buf_init(&a, HK_BUF_UNLIMITED);
    for (int i = 0; i < req->u.wh_load.nids; i++) arr_text(&a, req->u.wh_load.ids[i]);
    pp p = {0};
    p_text(&p, arr_done(&a));
    int rc = fetch_webhooks(conn, Q_WH_BY_IDS, &p, &req->u.wh_load.items, &req->u.wh_load.n);
    hk_buf_free(&a);
    return rc;
}

static int pg_org_webhooks(void *conn, const char *org, hk_fanout_org *o)
{
    hk_webhook **items = NULL;
    int n = 0;
    pp p = {0};
    p_text(&p, org);
    int rc = fetch_webhooks(conn, Q_WH_ORG, &p, &items, &n);
    return hk_fanout_take(o, items, n, rc);
}

static int pg_org_version(void *conn, const char *org, int64_t *version)
{
    pp p = {0};
    p_text(&p, org);
    PGresult *r = NULL;
    int rc = run(conn, Q_ORG_VERSION, &p, &r);
    *version = !rc && PQntuples(r) > 0 ? g_i64(r, 0, 0) : 0;
    PQclear(r);
    return rc;
}

/* ---- API keys ------------------------------------------------------------------------------ */

static void row_key(PGresult *r, int i, hk_apikey *k)
{
    g_id(r, i, 0, k->id);
    k->org_id = g_text(r, i, 1);
    k->name = g_text(r, i, 2);
    k->prefix = g_text(r, i, 3);
    k->created_at = g_i64(r, i, 4);
    k->revoked_at = g_i64(r, i, 5);
    k->last_used_at = g_i64(r, i, 6);
    k->scope = hk_scope_parse(PQgetvalue(r, i, 7)) == HK_SCOPE_READ ? HK_SCOPE_READ : HK_SCOPE_FULL;
    k->org_disabled = g_bool(r, i, 8);
}

static int pg_key_by_hash(void *conn, const char *hash, hk_apikey *k, int *found)
{
    pp p = {0};
    p_text(&p, hash);
    PGresult *r;
    int rc = run(conn, Q_KEY_BY_HASH, &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    if (*found) row_key(r, 0, k);
    PQclear(r);
    return HK_OK;
}

static int pg_key_insert(void *conn, hk_req *req, const char *id)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, req->org_id);
    p_text(&p, req->u.key_create.name);
    p_text(&p, req->u.key_create.key_hash);
    p_text(&p, req->u.key_create.prefix);
    p_i64(&p, req->now);
    p_text(&p, hk_scope_name(req->u.key_create.scope));
    return run(conn, Q_KEY_INSERT, &p, NULL);
}

static int pg_key_list(void *conn, hk_req *req)
{
    PGresult *r;
    pp p = {0};
    p_text(&p, req->u.key_list.org);
    int rc = run(conn, Q_KEY_LIST, &p, &r);
    if (rc) return rc;
    int n = PQntuples(r);
    req->u.key_list.items = hk_calloc((size_t)(n ? n : 1), sizeof(hk_apikey));
    for (int i = 0; i < n; i++) row_key(r, i, &req->u.key_list.items[i]);
    req->u.key_list.n = n;
    PQclear(r);
    return HK_OK;
}

static int pg_key_revoke(void *conn, hk_req *req, int64_t *changed)
{
    pp p = {0};
    p_text(&p, req->u.key_revoke.id);
    p_i64(&p, req->now);
    p_text(&p, req->u.key_revoke.org);
    int64_t n = run_count(conn, Q_KEY_REVOKE, &p);
    if (n < 0) return (int)n;
    *changed = n;
    return HK_OK;
}

static int pg_key_count(void *conn, hk_req *req)
{
    PGresult *r;
    int rc = run(conn, Q_KEY_COUNT, NULL, &r);
    if (rc) return rc;
    req->u.key_count.count = g_i64(r, 0, 0);
    PQclear(r);
    return HK_OK;
}

/* ---- organizations ------------------------------------------------------------------------- */

static void row_org(PGresult *r, int i, hk_org *o)
{
    hk_strlcpy(o->id, PQgetisnull(r, i, 0) ? "" : PQgetvalue(r, i, 0), sizeof o->id);
    o->name = g_text(r, i, 1);
    o->metadata = g_text(r, i, 2);
    o->disabled = g_bool(r, i, 3);
    o->created_at = g_i64(r, i, 4);
    o->updated_at = g_i64(r, i, 5);
}

static int pg_org_insert(void *conn, hk_req *req, const char *id)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, (req->u.org.has & HK_OF_NAME) ? req->u.org.name : id);
    p_text(&p, (req->u.org.has & HK_OF_METADATA) ? req->u.org.metadata : "{}");
    p_text(&p, (req->u.org.has & HK_OF_DISABLED) && req->u.org.disabled ? "true" : "false");
    p_i64(&p, req->now);
    return run(conn, Q_ORG_INSERT, &p, NULL);
}

static int pg_org_ensure(void *conn, const char *id, int64_t now)
{
    pp p = {0};
    p_text(&p, id);
    p_i64(&p, now);
    return run(conn, Q_ORG_ENSURE, &p, NULL);
}

static int pg_org_get(void *conn, const char *id, hk_org *out, int *found)
{
    pp p = {0};
    p_text(&p, id);
    PGresult *r;
    int rc = run(conn, Q_ORG_GET, &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    if (*found) row_org(r, 0, out);
    PQclear(r);
    return HK_OK;
}

static int pg_org_list(void *conn, hk_req *req)
{
    PGresult *r;
    pp cp = {0};
    p_i64(&cp, HK_LIST_COUNT_CAP + 1);
    int rc = run(conn, Q_ORG_COUNT, &cp, &r);
    if (rc) return rc;
    int64_t total = g_i64(r, 0, 0);
    req->u.org_list.capped = total > HK_LIST_COUNT_CAP;
    req->u.org_list.total = HK_MIN(total, HK_LIST_COUNT_CAP);
    PQclear(r);
    const hk_cursor *after = &req->u.org_list.after;
    pp p = {0};
    p_i64(&p, (int64_t)req->u.org_list.limit + 1);
    p_i64(&p, (int64_t)(req->u.org_list.page - 1) * req->u.org_list.limit);
    p_i64(&p, after->id[0] ? after->at : HK_CURSOR_TOP);
    p_text(&p, after->id);
    if ((rc = run(conn, Q_ORG_LIST, &p, &r))) return rc;
    int n = PQntuples(r);
    if (n > req->u.org_list.limit) { /* the one beyond: a page follows */
        req->u.org_list.more = 1;
        n = req->u.org_list.limit;
    }
    req->u.org_list.items = hk_calloc((size_t)(n ? n : 1), sizeof(hk_org));
    for (int i = 0; i < n; i++) row_org(r, i, &req->u.org_list.items[i]);
    req->u.org_list.n = n;
    PQclear(r);
    return HK_OK;
}

static int pg_org_update(void *conn, const hk_org *o, int64_t now)
{
    pp p = {0};
    p_text(&p, o->id);
    p_text(&p, o->name);
    p_text(&p, o->metadata);
    p_text(&p, o->disabled ? "true" : "false");
    p_i64(&p, now);
    return run(conn, Q_ORG_UPDATE, &p, NULL);
}

static int pg_org_park(void *conn, const char *org)
{
    pp p = {0};
    p_text(&p, org);
    return run(conn, Q_ORG_PARK, &p, NULL);
}

static int pg_org_unpark(void *conn, const char *org, int64_t now, int *count)
{
    pp p = {0};
    p_text(&p, org);
    p_i64(&p, now);
    int64_t n = run_count(conn, Q_ORG_UNPARK, &p);
    if (n < 0) return (int)n;
    if (count) *count = (int)n;
    return HK_OK;
}

/* ---- portal sessions ----------------------------------------------------------------------- */

static int pg_session_insert(void *conn, hk_req *req, const char *id, const char *webhook_ids)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, req->org_id);
    p_text(&p, req->u.session.token_hash);
    p_text(&p, hk_scope_name(req->u.session.scope));
    p_i64(&p, req->now);
    p_i64(&p, req->u.session.expires_at);
    p_text(&p, webhook_ids);
    return run(conn, Q_SESSION_INSERT, &p, NULL);
}

static int pg_session_by_hash(void *conn, const char *hash, hk_apikey *k, int64_t *expires,
                              char **webhook_ids, int *found)
{
    pp p = {0};
    p_text(&p, hash);
    PGresult *r;
    int rc = run(conn, Q_SESSION_BY_HASH, &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    if (*found) {
        g_id(r, 0, 0, k->id);
        k->org_id = g_text(r, 0, 1);
        k->scope =
            hk_scope_parse(PQgetvalue(r, 0, 2)) == HK_SCOPE_READ ? HK_SCOPE_READ : HK_SCOPE_FULL;
        k->revoked_at = g_i64(r, 0, 3);
        *expires = g_i64(r, 0, 4);
        k->org_disabled = g_bool(r, 0, 5);
        *webhook_ids = g_text(r, 0, 6);
    }
    PQclear(r);
    return HK_OK;
}

static int pg_session_revoke(void *conn, hk_req *req, int64_t *changed)
{
    pp p = {0};
    p_text(&p, req->u.session.id);
    p_i64(&p, req->now);
    p_text(&p, req->org_id);
    int64_t n = run_count(conn, Q_SESSION_REVOKE, &p);
    if (n < 0) return (int)n;
    *changed = n;
    return HK_OK;
}

/* ---- ingest -------------------------------------------------------------------------------- */

static char *idem_map_key(const char *org, const char *key)
{
    size_t a = strlen(org), b = strlen(key);
    char *k = hk_malloc(a + b + 2);
    memcpy(k, org, a);
    k[a] = '\x1f';
    memcpy(k + a + 1, key, b + 1);
    return k;
}

static void remember_dup(pgc *c, hk_ingest_item *it, int first)
{
    if (c->ndups == c->dupcap) {
        c->dupcap = c->dupcap ? c->dupcap * 2 : 16;
        c->dups = hk_realloc(c->dups, sizeof(pend_dup) * (size_t)c->dupcap);
    }
    c->dups[c->ndups].it = it;
    c->dups[c->ndups].first = first;
    c->ndups++;
}

/* Makes `it` answer as a duplicate of `first` (same event id, type and delivery count). */
/* The hk_ingest_sink of one new event: rows go to the group's arrays (flushed at pre-commit);
 * the event takes idem_key (its in-group idempotency map key) when it is buffered. */
typedef struct pg_sink {
    pgc *c;
    char *idem_key;
} pg_sink;

static int sink_event(void *ctx, hk_req *req, hk_ingest_item *it)
{
    pg_sink *k = ctx;
    pgc *c = k->c;
    arr_text(&c->col[EC_ID], it->id);
    arr_text(&c->col[EC_TYPE], it->type);
    arr_textn(&c->col[EC_PAYLOAD], it->data, it->data_len, 0);
    arr_text(&c->col[EC_SOURCE], it->source ? it->source : "api");
    arr_text(&c->col[EC_IDEM], it->idem_key);
    arr_text(&c->col[EC_ORG], req->org_id);
    arr_text(&c->col[EC_USER], it->user_id);
    arr_i64(&c->col[EC_CREATED], req->now);
    c->nrows_ev++;
    if (c->nevs == c->evcap) {
        c->evcap = c->evcap ? c->evcap * 2 : 64;
        c->evs = hk_realloc(c->evs, sizeof(pend_ev) * (size_t)c->evcap);
    }
    c->evs[c->nevs].req = req;
    c->evs[c->nevs].it = it;
    c->evs[c->nevs].idem_key = k->idem_key;
    if (k->idem_key) hk_map_put(&c->idem, k->idem_key, (void *)(intptr_t)(c->nevs + 1));
    k->idem_key = NULL;
    c->nevs++;
    return HK_OK;
}

static int sink_delivery(void *ctx, hk_req *req, hk_ingest_item *it, const hk_new_delivery *d)
{
    pgc *c = ((pg_sink *)ctx)->c;
    arr_text(&c->col[DC_ID], d->id);
    arr_text(&c->col[DC_WID], d->wh->id);
    arr_text(&c->col[DC_EID], it->id);
    arr_text(&c->col[DC_TYPE], it->type);
    arr_textn(&c->col[DC_DATA], d->data, d->data_len, 0);
    arr_text(&c->col[DC_URL], d->wh->url);
    arr_i64(&c->col[DC_MAXA], d->wh->max_retries + 1);
    arr_time(&c->col[DC_DUE], d->due);
    arr_i64(&c->col[DC_CREATED], req->now);
    arr_text(&c->col[DC_LEASE], d->lease);
    c->nrows_dl++;
    return HK_OK;
}

/* opev_insert (backend.h): an operational event and its deliveries go to the group's arrays,
 * like an ingest's (flushed at pre-commit, or dropped with a request that is undone); they have
 * no idempotency key, so the flush cannot skip them. */
static int pg_opev_insert(void *conn, const char *org, const hk_ingest_item *it,
                          const hk_new_delivery *ds, int nd, int64_t now)
{
    pgc *c = conn;
    arr_text(&c->col[EC_ID], it->id);
    arr_text(&c->col[EC_TYPE], it->type);
    arr_textn(&c->col[EC_PAYLOAD], it->data, it->data_len, 0);
    arr_text(&c->col[EC_SOURCE], it->source);
    arr_text(&c->col[EC_IDEM], NULL);
    arr_text(&c->col[EC_ORG], org);
    arr_text(&c->col[EC_USER], NULL);
    arr_i64(&c->col[EC_CREATED], now);
    c->nrows_ev++;
    for (int i = 0; i < nd; i++) {
        const hk_new_delivery *d = &ds[i];
        arr_text(&c->col[DC_ID], d->id);
        arr_text(&c->col[DC_WID], d->wh->id);
        arr_text(&c->col[DC_EID], it->id);
        arr_text(&c->col[DC_TYPE], it->type);
        arr_textn(&c->col[DC_DATA], d->data, d->data_len, 0);
        arr_text(&c->col[DC_URL], d->wh->url);
        arr_i64(&c->col[DC_MAXA], d->wh->max_retries + 1);
        arr_time(&c->col[DC_DUE], d->due);
        arr_i64(&c->col[DC_CREATED], now);
        arr_text(&c->col[DC_LEASE], NULL);
        c->nrows_dl++;
    }
    return HK_OK;
}

/* delivery_brief (backend.h). */
static int pg_delivery_brief(void *conn, const char *id, char eid[HK_ID_MAX], char *type,
                             size_t typelen, int *found)
{
    pp p = {0};
    p_text(&p, id);
    PGresult *r;
    int rc = run(conn, Q_DL_BRIEF, &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) == 1;
    if (*found) {
        g_id(r, 0, 0, eid);
        hk_strlcpy(type, PQgetvalue(r, 0, 1), typelen);
    }
    PQclear(r);
    return HK_OK;
}

/* Buffers one new event of req and its deliveries (rows.c decides; idem_key is taken). */
static int ingest_new(pgc *c, hk_req *req, int idx, hk_fanout_org *o, int *budget, char *idem_key)
{
    pg_sink k = {c, idem_key};
    hk_ingest_sink sink = {sink_event, sink_delivery, &k};
    int rc = hk_ingest_event(&c->base, req, idx, o, budget, &sink);
    free(k.idem_key); /* not buffered: the event was refused */
    return rc;
}

static void drop_jobs_of(hk_req *req, const char *event_id)
{
    int kept = 0;
    for (int i = 0; i < req->u.ingest.njobs; i++) {
        hk_job *j = req->u.ingest.jobs[i];
        if (strcmp(j->event_id, event_id) == 0)
            hk_job_free(j);
        else
            req->u.ingest.jobs[kept++] = j;
    }
    req->u.ingest.njobs = kept;
}

/* Writes every buffered event and delivery in one statement. An event skipped by ON CONFLICT
 * lost an idempotency race against another node's commit: it becomes a duplicate of that
 * node's event, and its deliveries (not inserted either) leave the request's jobs. */
static int flush_ingest(pgc *c)
{
    if (!c->nrows_ev) return HK_OK;
    pp p = {0};
    for (int i = 0; i < NCOLS; i++) p_text(&p, arr_done(&c->col[i]));
    PGresult *r;
    int rc = run(c, Q_INGEST_FLUSH, &p, &r);
    for (int i = 0; i < NCOLS; i++) hk_buf_reset(&c->col[i]);
    int expected = c->nrows_ev;
    c->nrows_ev = c->nrows_dl = 0;
    if (rc) return rc;
    int inserted = PQntuples(r);
    if (inserted < expected) {
        hk_map got;
        hk_map_init(&got);
        for (int i = 0; i < inserted; i++) hk_map_put(&got, PQgetvalue(r, i, 0), r);
        for (int k = c->nflushed; !rc && k < c->nevs; k++) {
            hk_ingest_item *it = c->evs[k].it;
            hk_req *req = c->evs[k].req;
            if (hk_map_get(&got, it->id) || !it->idem_key) continue;
            hk_buf a;
            hk_buf_init(&a, HK_BUF_UNLIMITED);
            arr_text(&a, it->idem_key);
            pp q = {0};
            p_text(&q, req->org_id);
            p_text(&q, arr_done(&a));
            PGresult *d;
            rc = run(c, Q_EV_BY_IDEM, &q, &d);
            hk_buf_free(&a);
            if (rc) break;
            if (PQntuples(d) == 1) {
                char old[HK_ID_MAX];
                hk_strlcpy(old, it->id, sizeof old);
                drop_jobs_of(req, old);
                g_id(d, 0, 1, it->id);
                free(it->dup_type);
                it->dup_type = g_text(d, 0, 2);
                it->ndeliveries = (int)g_i64(d, 0, 3);
                it->duplicate = 1;
                HK_LOG(HK_LOG_INFO, "store.idempotency_race", HK_LS("event_id", it->id));
            }
            PQclear(d);
        }
        hk_map_free(&got);
        for (int k = 0; k < c->ndups; k++)
            hk_ingest_copy_dup(c->dups[k].it, c->evs[c->dups[k].first].it);
    }
    PQclear(r);
    c->nflushed = c->nevs;
    return rc;
}

static int pg_ingest(void *conn, hk_req *req)
{
    pgc *c = conn;
    /* rows of earlier requests may be written now; this request's rows stay in the batch
     * until pre-commit, so that its failure can still drop them */
    size_t buffered = 0;
    for (int i = 0; i < NCOLS; i++) buffered += c->col[i].len;
    int rc = buffered > FLUSH_BYTES ? flush_ingest(c) : HK_OK;
    if (rc) return rc;
    c->mark.nrows_ev = c->nrows_ev;
    c->mark.nrows_dl = c->nrows_dl;
    c->mark.nevs = c->nevs;
    c->mark.ndups = c->ndups;
    for (int i = 0; i < NCOLS; i++) c->mark.collen[i] = c->col[i].len;

    hk_fanout_org *o = NULL;
    rc = hk_org_candidates(&c->base, c, &pg_ops, req->org_id, &o);
    if (rc) return rc;

    /* keys not seen in this group are looked up in one query */
    hk_buf keys;
    hk_buf_init(&keys, HK_BUF_UNLIMITED);
    int nkeys = 0;
    for (int i = 0; i < req->u.ingest.n; i++) {
        const char *k = req->u.ingest.items[i].idem_key;
        if (!k) continue;
        char *mk = idem_map_key(req->org_id, k);
        if (!hk_map_get(&c->idem, mk)) {
            arr_text(&keys, k);
            nkeys++;
        }
        free(mk);
    }
    PGresult *found = NULL;
    if (nkeys) {
        pp p = {0};
        p_text(&p, req->org_id);
        p_text(&p, arr_done(&keys));
        rc = run(c, Q_EV_BY_IDEM, &p, &found);
    }
    hk_buf_free(&keys);
    if (rc) return rc;

    int budget = req->u.ingest.lease_budget;
    for (int i = 0; i < req->u.ingest.n && !rc; i++) {
        hk_ingest_item *it = &req->u.ingest.items[i];
        char *mk = it->idem_key ? idem_map_key(req->org_id, it->idem_key) : NULL;
        if (mk) {
            intptr_t first = (intptr_t)hk_map_get(&c->idem, mk);
            if (first) { /* a key repeated within this group */
                hk_ingest_copy_dup(it, c->evs[first - 1].it);
                remember_dup(c, it, (int)first - 1);
                free(mk);
                continue;
            }
            int hit = -1;
            for (int r = 0; found && r < PQntuples(found); r++)
                if (strcmp(PQgetvalue(found, r, 0), it->idem_key) == 0) hit = r;
            if (hit >= 0) { /* stored before this group */
                g_id(found, hit, 1, it->id);
                it->dup_type = g_text(found, hit, 2);
                it->duplicate = 1;
                it->ndeliveries = (int)g_i64(found, hit, 3);
                free(mk);
                continue;
            }
        }
        rc = ingest_new(c, req, i, o, &budget, mk);
    }
    PQclear(found);
    return rc;
}

/* ---- events and deliveries ----------------------------------------------------------------- */

static void row_event(PGresult *r, int i, hk_event *e)
{
    g_id(r, i, 0, e->id);
    e->type = g_text(r, i, 1);
    e->payload = g_text(r, i, 2);
    e->source = g_text(r, i, 3);
    e->idempotency_key = g_text(r, i, 4);
    e->org_id = g_text(r, i, 5);
    e->user_id = g_text(r, i, 6);
    e->created_at = g_i64(r, i, 7);
}

static int pg_event_list(void *conn, hk_req *req)
{
    pgc *c = conn;
    int rc = list_count(c, Q_EV_NUM, req->org_id, req->u.ev_list.type, &req->u.ev_list.total,
                        &req->u.ev_list.capped);
    if (rc) return rc;
    pp p = {0};
    int id = list_params(&p, Q_EV_LIST, req->org_id, req->u.ev_list.type, req->u.ev_list.page,
                         req->u.ev_list.limit, &req->u.ev_list.after);
    PGresult *r;
    rc = run(c, id, &p, &r);
    if (rc) return rc;
    int n = PQntuples(r);
    req->u.ev_list.items = hk_calloc((size_t)(n ? n : 1), sizeof(hk_event));
    for (int i = 0; i < n; i++) row_event(r, i, &req->u.ev_list.items[i]);
    req->u.ev_list.n = n;
    PQclear(r);
    return HK_OK;
}

static int pg_event_get(void *conn, hk_req *req)
{
    pgc *c = conn;
    pp p = {0};
    p_text(&p, req->u.ev_get.id);
    p_text(&p, req->org_id);
    PGresult *r;
    int rc = run(c, Q_EV_GET, &p, &r);
    if (rc) return rc;
    int found = PQntuples(r) > 0;
    if (found) row_event(r, 0, &req->u.ev_get.out);
    PQclear(r);
    if (!found) return HK_ENOTFOUND;
    pp d = {0};
    p_text(&d, req->u.ev_get.id);
    rc = run(c, Q_EV_DELIVERIES, &d, &r);
    if (rc) return rc;
    hk_event *e = &req->u.ev_get.out;
    int n = PQntuples(r);
    e->deliveries = n ? hk_calloc((size_t)n, sizeof(hk_event_delivery)) : NULL;
    for (int i = 0; i < n; i++) {
        hk_event_delivery *ed = &e->deliveries[i];
        g_id(r, i, 0, ed->id);
        g_id(r, i, 1, ed->webhook_id);
        ed->status = hk_dl_status_parse(PQgetvalue(r, i, 2));
    }
    e->ndeliveries = n;
    PQclear(r);
    return HK_OK;
}

static void row_delivery(PGresult *r, int i, hk_delivery *d)
{
    g_id(r, i, 0, d->id);
    g_id(r, i, 1, d->webhook_id);
    g_id(r, i, 2, d->event_id);
    g_id(r, i, 3, d->replay_of);
    d->event_type = g_text(r, i, 4);
    d->event_data = g_text(r, i, 5);
    d->event_created_at = g_i64(r, i, 6);
    d->status = hk_dl_status_parse(PQgetvalue(r, i, 7));
    d->request_url = g_text(r, i, 8);
    d->request_headers = g_text(r, i, 9);
    d->response_status = (int)g_i64(r, i, 10);
    d->response_body = g_text(r, i, 11);
    d->response_headers = g_text(r, i, 12);
    d->attempt_number = (int)g_i64(r, i, 13);
    d->max_attempts = (int)g_i64(r, i, 14);
    d->next_retry_at = g_i64(r, i, 15);
    d->last_attempt_at = g_i64(r, i, 16);
    d->error_message = g_text(r, i, 17);
    d->completed_at = g_i64(r, i, 18);
    d->duration_ms = (int)g_i64(r, i, 19);
    d->created_at = g_i64(r, i, 20);
    d->request_headers_static = g_text(r, i, 21);
}

/* Loads the attempts of n deliveries in one query. */
static int load_attempts(pgc *c, hk_delivery *ds, int n)
{
    if (!n) return HK_OK;
    hk_buf a;
    hk_buf_init(&a, HK_BUF_UNLIMITED);
    for (int i = 0; i < n; i++) arr_text(&a, ds[i].id);
    pp p = {0};
    p_text(&p, arr_done(&a));
    PGresult *r;
    int rc = run(c, Q_ATT_LIST, &p, &r);
    hk_buf_free(&a);
    if (rc) return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        hk_delivery *d = NULL;
        const char *did = PQgetvalue(r, i, 0);
        for (int k = 0; k < n && !d; k++)
            if (strcmp(ds[k].id, did) == 0) d = &ds[k];
        if (!d) continue;
        d->attempts = hk_realloc(d->attempts, sizeof(hk_attempt) * (size_t)(d->nattempts + 1));
        hk_attempt *t = &d->attempts[d->nattempts++];
        memset(t, 0, sizeof *t);
        g_id(r, i, 1, t->id);
        t->attempt_number = (int)g_i64(r, i, 2);
        t->status = hk_dl_status_parse(PQgetvalue(r, i, 3));
        t->response_status = (int)g_i64(r, i, 4);
        t->response_body = g_text(r, i, 5);
        t->response_headers = g_text(r, i, 6);
        t->duration_ms = (int)g_i64(r, i, 7);
        t->error_message = g_text(r, i, 8);
        t->created_at = g_i64(r, i, 9);
    }
    PQclear(r);
    return HK_OK;
}

static int pg_delivery_list(void *conn, hk_req *req)
{
    pgc *c = conn;
    const char *status =
        req->u.dl_list.status >= 0 ? hk_dl_status_name(req->u.dl_list.status) : NULL;
    int rc = list_count(c, Q_DL_NUM, req->u.dl_list.webhook_id, status, &req->u.dl_list.total,
                        &req->u.dl_list.capped);
    if (rc) return rc;
    pp p = {0};
    int id = list_params(&p, Q_DL_LIST, req->u.dl_list.webhook_id, status, req->u.dl_list.page,
                         req->u.dl_list.limit, &req->u.dl_list.after);
    PGresult *r;
    rc = run(c, id, &p, &r);
    if (rc) return rc;
    int n = PQntuples(r);
    req->u.dl_list.items = hk_calloc((size_t)(n ? n : 1), sizeof(hk_delivery));
    for (int i = 0; i < n; i++) row_delivery(r, i, &req->u.dl_list.items[i]);
    req->u.dl_list.n = n;
    PQclear(r);
    return load_attempts(c, req->u.dl_list.items, n);
}

static int pg_delivery_search(void *conn, hk_req *req)
{
    pgc *c = conn;
    PGresult *r;
    pp p = {0};
    p_text(&p, req->org_id);
    p_text(&p, req->u.dl_search.status >= 0 ? hk_dl_status_name(req->u.dl_search.status) : NULL);
    p_text(&p, req->u.dl_search.event_type);
    p_text(&p, req->u.dl_search.webhook_id);
    p_text(&p, req->u.dl_search.event_id);
    p_text(&p, req->u.dl_search.delivery_id);
    p_text(&p, req->u.dl_search.idem_key);
    p_time(&p, req->u.dl_search.since);
    p_time(&p, req->u.dl_search.until);
    p_time(&p, req->u.dl_search.before_at);
    p_text(&p, req->u.dl_search.before_id ? req->u.dl_search.before_id : "");
    p_i64(&p, req->u.dl_search.limit + 1);
    int rc = run(c, Q_DL_SEARCH, &p, &r);
    if (rc) return rc;
    int n = PQntuples(r);
    req->u.dl_search.items = hk_calloc((size_t)(n ? n : 1), sizeof(hk_delivery));
    for (int i = 0; i < n; i++) row_delivery(r, i, &req->u.dl_search.items[i]);
    req->u.dl_search.n = n;
    PQclear(r);
    return load_attempts(c, req->u.dl_search.items, n);
}

static int pg_delivery_get(void *conn, hk_req *req)
{
    pgc *c = conn;
    pp p = {0};
    p_text(&p, req->u.dl_get.id);
    p_text(&p, req->org_id);
    PGresult *r;
    int rc = run(c, Q_DL_GET, &p, &r);
    if (rc) return rc;
    int found = PQntuples(r) > 0;
    if (found) row_delivery(r, 0, &req->u.dl_get.out);
    PQclear(r);
    if (!found) return HK_ENOTFOUND;
    return load_attempts(c, &req->u.dl_get.out, 1);
}

/* ---- scheduling ---------------------------------------------------------------------------- */

/* Turns the rows of a leasing statement (Q_CLAIM, Q_CLAIM_IDS: the rows are leased to node_id
 * already) into jobs of req (rows.c), then parks the rows whose webhook is not active (counted
 * in `parked`) and returns the webhooks of the others. With order (CLAIM_IDS) the jobs follow
 * the order of the request's ids. */
static int claim_rows(pgc *c, hk_req *req, PGresult *r, int order)
{
    int n = PQntuples(r), rc = HK_OK;
    hk_bodies bodies;
    hk_bodies_init(&bodies);
    hk_map whs, pos;
    hk_map_init(&whs);
    hk_map_init(&pos);
    hk_buf wids;
    hk_buf_init(&wids, HK_BUF_UNLIMITED);
    for (int i = 0; i < n; i++) {
        hk_job_row row;
        row.id = PQgetvalue(r, i, 0);
        row.webhook_id = PQgetvalue(r, i, 1);
        row.event_id = PQgetvalue(r, i, 2);
        row.status = PQgetvalue(r, i, 3);
        row.attempt_number = (int)g_i64(r, i, 4);
        row.max_attempts = (int)g_i64(r, i, 5);
        row.due = g_i64(r, i, 6);
        row.created = g_i64(r, i, 7);
        row.data = PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8);
        row.data_len = (size_t)PQgetlength(r, i, 8);
        row.type = PQgetvalue(r, i, 9);
        row.payload = PQgetvalue(r, i, 10);
        row.payload_len = (size_t)PQgetlength(r, i, 10);
        row.ev_created = g_i64(r, i, 11);
        hk_job *j = hk_job_from_row(&row, &bodies);
        if (!hk_map_get(&whs, j->webhook_id)) {
            hk_map_put(&whs, j->webhook_id, j);
            arr_text(&wids, j->webhook_id);
        }
        hk_out_job(&req->u.claim.jobs, &req->u.claim.njobs, j);
    }
    hk_bodies_free(&bodies);
    hk_map_free(&whs);
    if (order && req->u.claim.njobs > 1) {
        /* RETURNING has no order: put the jobs back in the order of the ids asked for */
        for (int i = 0; i < req->u.claim.nids; i++)
            if (!hk_map_get(&pos, req->u.claim.ids[i]))
                hk_map_put(&pos, req->u.claim.ids[i], (void *)(intptr_t)(i + 1));
        hk_job **sorted = hk_calloc((size_t)req->u.claim.nids, sizeof(hk_job *));
        for (int i = 0; i < req->u.claim.njobs; i++) {
            intptr_t k = (intptr_t)hk_map_get(&pos, req->u.claim.jobs[i]->id);
            sorted[k - 1] = req->u.claim.jobs[i];
        }
        int m = 0;
        for (int i = 0; i < req->u.claim.nids; i++)
            if (sorted[i]) req->u.claim.jobs[m++] = sorted[i];
        free(sorted);
    }
    hk_map_free(&pos);

    /* the webhooks, in one query; deliveries of webhooks that are not active are parked */
    hk_webhook **ws = NULL;
    int nws = 0;
    if (n) {
        pp q = {0};
        p_text(&q, arr_done(&wids));
        rc = fetch_webhooks(c, Q_WH_BY_IDS, &q, &ws, &nws);
    }
    hk_buf_free(&wids);
    hk_map byid; /* webhook id -> webhook of ws */
    hk_map_init(&byid);
    for (int i = 0; i < nws; i++)
        if (!hk_map_get(&byid, ws[i]->id)) hk_map_put(&byid, ws[i]->id, ws[i]);
    hk_buf park;
    hk_buf_init(&park, HK_BUF_UNLIMITED);
    int kept = 0, npark = 0;
    for (int i = 0; !rc && i < req->u.claim.njobs; i++) {
        hk_job *j = req->u.claim.jobs[i];
        hk_webhook *wh = hk_map_get(&byid, j->webhook_id);
        if (!hk_claim_keeps(wh)) {
            arr_text(&park, j->id);
            npark++;
            hk_job_free(j);
            continue;
        }
        req->u.claim.jobs[kept++] = j;
        hk_out_webhook(&req->u.claim.webhooks, &req->u.claim.nwebhooks, &req->u.claim.webhooks_seen,
                       wh);
    }
    if (!rc) req->u.claim.njobs = kept;
    if (!rc && npark) {
        pp q = {0};
        p_text(&q, arr_done(&park));
        rc = run(c, Q_DL_PARK_IDS, &q, NULL);
    }
    req->u.claim.parked += npark;
    hk_buf_free(&park);
    hk_map_free(&byid);
    for (int i = 0; i < nws; i++) hk_webhook_free(ws[i]);
    free(ws);
    return rc;
}

static int pg_claim(void *conn, hk_req *req)
{
    pgc *c = conn;
    pp p = {0};
    p_i64(&p, req->now + req->u.claim.horizon);
    p_i64(&p, req->u.claim.limit);
    p_text(&p, req->node_id);
    PGresult *r;
    req->u.claim.parked = 0;
    int rc = run(c, Q_CLAIM, &p, &r);
    if (rc) return rc;
    rc = claim_rows(c, req, r, 0);
    PQclear(r);
    return rc;
}

/* CLAIM_IDS (store.h): the rows decide; one statement leases every id that is claimable. */
static int pg_claim_ids(void *conn, hk_req *req)
{
    pgc *c = conn;
    req->u.claim.parked = 0;
    if (!req->u.claim.nids) return HK_OK;
    hk_buf ids;
    hk_buf_init(&ids, HK_BUF_UNLIMITED);
    for (int i = 0; i < req->u.claim.nids; i++) arr_text(&ids, req->u.claim.ids[i]);
    pp p = {0};
    p_text(&p, arr_done(&ids));
    p_i64(&p, req->now + req->u.claim.horizon);
    p_text(&p, req->node_id);
    PGresult *r;
    int rc = run(c, Q_CLAIM_IDS, &p, &r);
    if (!rc) {
        rc = claim_rows(c, req, r, 1);
        PQclear(r);
    }
    if (!rc) {
        p.n = 2; /* ids, until */
        rc = run(c, Q_CLAIM_LATER, &p, &r);
    }
    if (!rc) {
        int n = PQntuples(r);
        req->u.claim.later = n ? hk_calloc((size_t)n, sizeof(hk_release)) : NULL;
        for (int i = 0; i < n; i++) {
            g_id(r, i, 0, req->u.claim.later[i].id);
            req->u.claim.later[i].next_retry_at = g_i64(r, i, 1);
        }
        req->u.claim.nlater = n;
        PQclear(r);
    }
    hk_buf_free(&ids);
    return rc;
}

/* The first page's cursor time: 0001-01-01, before any next_retry_at hookd writes. */
#define DUE_SCAN_FIRST "-62135596800000"

/* DUE_SCAN (store.h). The cursor is "<next_retry_at ms>:<id>" of the last row returned. */
static int pg_due_scan(void *conn, hk_req *req)
{
    pgc *c = conn;
    const char *cur = req->u.due_scan.cursor;
    const char *colon = strchr(cur, ':');
    char due[32] = "";
    pp p = {0};
    if (cur[0]) {
        int64_t v;
        size_t la = colon ? (size_t)(colon - cur) : 0;
        if (!colon || la >= sizeof due) goto bad;
        memcpy(due, cur, la);
        due[la] = '\0';
        if (hk_parse_int64(due, INT64_MIN, INT64_MAX, &v)) goto bad;
        p_text(&p, due);
        p_text(&p, colon + 1);
    } else {
        p_text(&p, DUE_SCAN_FIRST); /* before every row: the first page */
        p_text(&p, "");
    }
    int limit = req->u.due_scan.limit > 0 ? req->u.due_scan.limit : 1000;
    p_i64(&p, req->u.due_scan.until);
    p_i64(&p, limit);
    PGresult *r;
    int rc = run(c, Q_DUE_SCAN, &p, &r);
    if (rc) return rc;
    int n = PQntuples(r);
    req->u.due_scan.items = hk_malloc(sizeof(hk_release) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        g_id(r, i, 0, req->u.due_scan.items[i].id);
        req->u.due_scan.items[i].next_retry_at = g_i64(r, i, 1);
    }
    req->u.due_scan.n = n;
    req->u.due_scan.more = n == limit;
    if (n)
        snprintf(req->u.due_scan.cursor, sizeof req->u.due_scan.cursor, "%lld:%s",
                 (long long)req->u.due_scan.items[n - 1].next_retry_at,
                 req->u.due_scan.items[n - 1].id);
    PQclear(r);
    return HK_OK;
bad:
    snprintf(req->err, sizeof req->err, "bad due-scan cursor");
    return HK_EINVAL;
}

/* RESULTS' heads (store.h): for the webhooks of the final results marked fifo, in one
 * statement, each one's head if claimable. */
static int fifo_heads(pgc *c, hk_req *req)
{
    const char **wids;
    int n = hk_results_fifo_webhooks(req, &wids);
    hk_buf ids;
    hk_buf_init(&ids, HK_BUF_UNLIMITED);
    for (int i = 0; i < n; i++) arr_text(&ids, wids[i]);
    free(wids);
    int rc = HK_OK;
    if (n) {
        pp p = {0};
        p_text(&p, arr_done(&ids));
        PGresult *r = NULL;
        rc = run(c, Q_FIFO_HEADS, &p, &r);
        for (int i = 0; !rc && i < PQntuples(r); i++) {
            if (!g_bool(r, i, 1) || PQgetisnull(r, i, 2)) continue; /* leased, or parked */
            char id[HK_ID_MAX];
            g_id(r, i, 0, id);
            hk_out_release(&req->u.results.heads, &req->u.results.nheads, id, g_i64(r, i, 2));
        }
        PQclear(r);
    }
    hk_buf_free(&ids);
    return rc;
}

static int pg_results(void *conn, hk_req *req)
{
    pgc *c = conn;
    int n = req->u.results.n;
    if (!n) return HK_OK;
    enum {
        R_DID,
        R_AID,
        R_NUM,
        R_STATUS,
        R_OK,
        R_RSTATUS,
        R_RBODY,
        R_RHEADERS,
        R_QHEADERS,
        R_URL,
        R_ERR,
        R_DUR,
        R_STARTED,
        R_NEXT,
        R_COMPLETED,
        R_KEEP,
        R_QREF,
        R_N
    };
    hk_buf b[R_N];
    for (int k = 0; k < R_N; k++) hk_buf_init(&b[k], HK_BUF_UNLIMITED);
    for (int i = 0; i < n; i++) {
        const hk_result *x = &req->u.results.items[i];
        arr_text(&b[R_DID], x->delivery_id);
        arr_text(&b[R_AID], x->attempt_id);
        arr_i64(&b[R_NUM], x->attempt_number);
        arr_text(&b[R_STATUS], hk_dl_status_name(x->status));
        arr_bool(&b[R_OK], x->attempt_ok);
        if (x->response_status)
            arr_i64(&b[R_RSTATUS], x->response_status);
        else
            arr_time(&b[R_RSTATUS], 0);
        arr_textn(&b[R_RBODY], x->response_body, x->response_body ? strlen(x->response_body) : 0,
                  1);
        arr_textn(&b[R_RHEADERS], x->response_headers,
                  x->response_headers ? strlen(x->response_headers) : 0, 1);
        arr_text(&b[R_QHEADERS], x->request_headers);
        arr_text(&b[R_URL], x->request_url);
        arr_textn(&b[R_ERR], x->error_message, x->error_message ? strlen(x->error_message) : 0, 1);
        arr_i64(&b[R_DUR], x->duration_ms);
        arr_time(&b[R_STARTED], x->started_at);
        arr_time(&b[R_NEXT], x->status == HK_DL_RETRYING ? x->next_retry_at : 0);
        arr_time(&b[R_COMPLETED], x->final ? x->finished_at : 0);
        arr_bool(&b[R_KEEP], x->keep_lease);
        arr_text(&b[R_QREF], x->headers_static ? x->headers_ref : NULL);
    }
    /* the static headers first, each distinct version once (store.c picked them) */
    int rc = HK_OK;
    hk_buf hr, hh;
    hk_buf_init(&hr, HK_BUF_UNLIMITED);
    hk_buf_init(&hh, HK_BUF_UNLIMITED);
    int nh = 0;
    for (int i = 0; i < n; i++) {
        const hk_result *x = &req->u.results.items[i];
        if (!x->headers_static_db) continue;
        arr_text(&hr, x->headers_ref);
        arr_textn(&hh, x->headers_static_db, strlen(x->headers_static_db), 0);
        nh++;
    }
    if (nh) {
        pp q = {0};
        p_text(&q, arr_done(&hr));
        p_text(&q, arr_done(&hh));
        p_i64(&q, req->now);
        rc = run(c, Q_HDR_INSERT, &q, NULL);
    }
    hk_buf_free(&hr);
    hk_buf_free(&hh);
    pp p = {0};
    for (int k = 0; k < R_N; k++) p_text(&p, arr_done(&b[k]));
    PGresult *r = NULL;
    if (!rc) rc = run(c, Q_RESULTS, &p, &r);
    for (int k = 0; k < R_N; k++) hk_buf_free(&b[k]);
    if (rc) return rc;
    /* the attempts inserted: the others repeat a stored one, or an earlier item of the batch
     * (same delivery and attempt number: DISTINCT ON keeps the first), and are no-ops */
    hk_map ins;
    hk_map_init(&ins);
    for (int i = 0; i < PQntuples(r); i++) hk_map_put(&ins, PQgetvalue(r, i, 0), (void *)1);
    for (int i = 0; i < n; i++) { /* the first item of an id, as the statement kept it */
        hk_result *x = &req->u.results.items[i];
        x->stored = hk_map_del(&ins, x->attempt_id) != NULL;
    }
    hk_map_free(&ins);
    PQclear(r);
    /* the next heads of FIFO lines (before this request joins the group: a failure here rolls
     * it back whole); a webhook set disabled at pre-commit parks its head after this: a claim
     * of it then parks it again, harmless */
    rc = fifo_heads(c, req);
    if (rc) return rc;
    /* webhook counters: for the whole group at pre-commit (webhook rows locked in order) */
    if (c->nresults == c->rescap) {
        c->rescap = c->rescap ? c->rescap * 2 : 8;
        c->results = hk_realloc(c->results, sizeof(hk_req *) * (size_t)c->rescap);
    }
    c->results[c->nresults++] = req;
    return HK_OK;
}

/* RELEASE (leases dropped) or RESCHEDULE (later due times, leases kept): one statement. */
static int release_items(pgc *c, hk_req *req, int stmt)
{
    if (!req->u.release.n) return HK_OK;
    hk_buf ids, due;
    hk_buf_init(&ids, HK_BUF_UNLIMITED);
    hk_buf_init(&due, HK_BUF_UNLIMITED);
    for (int i = 0; i < req->u.release.n; i++) {
        arr_text(&ids, req->u.release.items[i].id);
        arr_time(&due, req->u.release.items[i].next_retry_at);
    }
    pp p = {0};
    p_text(&p, arr_done(&ids));
    p_text(&p, arr_done(&due));
    p_text(&p, req->node_id);
    int rc = run(c, stmt, &p, NULL);
    hk_buf_free(&ids);
    hk_buf_free(&due);
    return rc;
}

static int pg_dl_release(void *conn, hk_req *req)
{
    return release_items(conn, req, Q_DL_RELEASE);
}

static int pg_dl_reschedule(void *conn, hk_req *req)
{
    return release_items(conn, req, Q_DL_RESCHEDULE);
}

static int pg_heartbeat(void *conn, hk_req *req)
{
    pgc *c = conn;
    pp u = {0};
    p_text(&u, req->node_id);
    p_i64(&u, req->u.heartbeat.alive_until);
    p_i64(&u, req->now);
    int rc = run(c, Q_NODE_UPSERT, &u, NULL);
    if (rc) return rc;
    pp d = {0};
    p_i64(&d, req->now);
    p_text(&d, req->node_id);
    int64_t n = run_count(c, Q_NODE_RECLAIM, &d);
    if (n < 0) return (int)n;
    req->u.heartbeat.reclaimed = n;
    n = run_count(c, Q_NODE_DELETE_DEAD, &d);
    return n < 0 ? (int)n : HK_OK;
}

/* ---- replays ------------------------------------------------------------------------------ */

static int pg_delivery_webhook(void *conn, const char *id, const char *org, char wid[HK_ID_MAX],
                               int *found)
{
    pp q = {0};
    p_text(&q, id);
    p_text(&q, org);
    PGresult *r;
    int rc = run(conn, Q_DL_WEBHOOK_OF, &q, &r);
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    if (*found) g_id(r, 0, 0, wid);
    PQclear(r);
    return HK_OK;
}

static int pg_failed_range(void *conn, const char *wid, int64_t since, int64_t until,
                           char (**ids)[HK_ID_MAX], int *n)
{
    pp q = {0};
    p_text(&q, wid);
    p_i64(&q, since);
    p_time(&q, until);
    PGresult *r;
    int rc = run(conn, Q_DL_FAILED_RANGE, &q, &r);
    if (rc) return rc;
    int rows = PQntuples(r);
    *ids = rows ? hk_malloc((size_t)rows * HK_ID_MAX) : NULL;
    for (int i = 0; i < rows; i++) g_id(r, i, 0, (*ids)[i]);
    *n = rows;
    PQclear(r);
    return HK_OK;
}

static int pg_replay_insert(void *conn, const char *id, const char *orig, const hk_webhook *w,
                            int64_t now)
{
    pp p = {0};
    p_text(&p, id);
    p_text(&p, orig);
    p_text(&p, w->url);
    p_i64(&p, w->max_retries + 1);
    p_i64(&p, now);
    /* the original is read FOR KEY SHARE: a prune step deleting it (another node) waits for
     * this transaction and then keeps the event, which has a delivery again; if the prune
     * came first, the original is gone and nothing is inserted */
    int64_t n = run_count(conn, Q_DL_REPLAY, &p);
    if (n < 0) return (int)n;
    return n == 0 ? HK_ENOTFOUND : HK_OK;
}

/* ---- retention ------------------------------------------------------------------------------ */

/* The dry run of u.prune: counts, deletes nothing. */
static int prune_count(pgc *c, hk_req *req)
{
    static const int ids[3] = {Q_PR_COUNT_DL, Q_PR_COUNT_ATT, Q_PR_COUNT_EV};
    int64_t *outs[3] = {&req->u.prune.deliveries, &req->u.prune.attempts, &req->u.prune.events};
    for (int i = 0; i < 3; i++) {
        pp p = {0};
        p_i64(&p, req->u.prune.dl_cut);
        if (ids[i] == Q_PR_COUNT_EV) p_i64(&p, req->u.prune.ev_cut);
        PGresult *r;
        int rc = run(c, ids[i], &p, &r);
        if (rc) return rc;
        *outs[i] = g_i64(r, 0, 0);
        PQclear(r);
    }
    return HK_OK;
}

static int pg_prune(void *conn, hk_req *req)
{
    pgc *c = conn;
    if (req->u.prune.dry_run) return prune_count(c, req);
    PGresult *r;
    int rc = run(c, Q_PR_LOCK, NULL, &r);
    if (rc) return rc;
    int got = g_bool(r, 0, 0);
    PQclear(r);
    if (!got) {
        req->u.prune.skipped = 1;
        return HK_OK;
    }
    int limit = req->u.prune.limit;
    if (req->u.prune.dl_cut > 0) {
        pp p = {0};
        p_i64(&p, req->u.prune.dl_cut);
        p_i64(&p, limit);
        p_i64(&p, req->u.prune.dl_floor);
        if ((rc = run(c, Q_PR_DL, &p, &r))) return rc;
        req->u.prune.attempts += g_i64(r, 0, 0);
        int64_t n = g_i64(r, 0, 1);
        req->u.prune.deliveries += n;
        if (n == limit) req->u.prune.more = 1;
        char *evs = g_text(r, 0, 2);
        PQclear(r);
        if (evs) {
            pp e = {0};
            p_text(&e, evs);
            int64_t k = run_count(c, Q_PR_EV_DEL, &e);
            free(evs);
            if (k < 0) return (int)k;
            req->u.prune.events += k;
        }
    }
    if (req->u.prune.dl_cut > 0) { /* the statistics' rows of the same age */
        pp p = {0};
        p_i64(&p, req->u.prune.dl_cut - 60000); /* the whole minute older than the cut */
        p_i64(&p, limit);
        int64_t k = run_count(c, Q_PR_ST_DEL, &p);
        if (k < 0) return (int)k;
        if (k == limit) req->u.prune.more = 1;
        pp q = {0}; /* the hour and day rows wholly older than the cut */
        p_i64(&q, req->u.prune.dl_cut);
        p_i64(&q, limit);
        k = run_count(c, Q_PR_STC_DEL, &q);
        if (k < 0) return (int)k;
        if (k == limit) req->u.prune.more = 1;
    }
    if (req->u.prune.ev_cut > 0) {
        if ((rc = run(c, Q_PR_POS_GET, NULL, &r))) return rc;
        if (PQntuples(r)) {
            req->u.prune.ev_pos_at = g_i64(r, 0, 0);
            g_id(r, 0, 1, req->u.prune.ev_pos_id);
        }
        PQclear(r);
        pp p = {0};
        p_i64(&p, req->u.prune.ev_pos_at);
        p_text(&p, req->u.prune.ev_pos_id);
        p_i64(&p, req->u.prune.ev_cut);
        p_i64(&p, limit);
        if ((rc = run(c, Q_PR_EV_SCAN, &p, &r))) return rc;
        int64_t scanned = g_i64(r, 0, 0);
        req->u.prune.events += g_i64(r, 0, 1);
        if (scanned > 0) {
            req->u.prune.ev_pos_at = g_i64(r, 0, 2);
            g_id(r, 0, 3, req->u.prune.ev_pos_id);
        }
        if (scanned == limit) req->u.prune.more = 1;
        PQclear(r);
        if (scanned > 0) {
            pp w = {0};
            p_i64(&w, req->u.prune.ev_pos_at);
            p_text(&w, req->u.prune.ev_pos_id);
            if ((rc = run(c, Q_PR_POS_SET, &w, NULL))) return rc;
        }
    }
    pp o = {0};
    p_i64(&o, req->u.prune.dl_floor);
    if ((rc = run(c, Q_PR_OLDEST, &o, &r))) return rc;
    req->u.prune.oldest = PQntuples(r) ? g_i64(r, 0, 0) : 0;
    PQclear(r);
    return HK_OK;
}

/* ---- the group's deferred webhook writes ----------------------------------------------------- */

typedef struct wh_acc { /* what a group does to one webhook row */
    char id[HK_ID_MAX];
    int triggered; /* got a delivery: last_triggered_at */
    int health;    /* had final results */
    hk_health h;
    hk_req *owner;              /* the last results request with a final result for it */
    const hk_result *last_fail; /* its last final failure stored (operational events) */
    const hk_result *last_ok;   /* its last success stored (hookd.webhook.recovered) */
} wh_acc;

static int cmp_acc(const void *a, const void *b)
{
    return strcmp(((const wh_acc *)a)->id, ((const wh_acc *)b)->id);
}

static wh_acc *acc_get(wh_acc **accs, int *n, int *cap, hk_map *idx, const char *wid)
{
    intptr_t k = (intptr_t)hk_map_get(idx, wid);
    if (k) return &(*accs)[k - 1];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *accs = hk_realloc(*accs, sizeof(wh_acc) * (size_t)*cap);
        /* the map's keys point into the array: rebuild it after a move */
        hk_map_free(idx);
        hk_map_init(idx);
        for (int i = 0; i < *n; i++) hk_map_put(idx, (*accs)[i].id, (void *)(intptr_t)(i + 1));
    }
    wh_acc *a = &(*accs)[(*n)++];
    memset(a, 0, sizeof *a);
    hk_strlcpy(a->id, wid, sizeof a->id);
    hk_map_put(idx, a->id, (void *)(intptr_t)*n);
    return a;
}

/* Records a status change in the results request that caused it, sets it, and parks the
 * webhook's deliveries waiting in the store. */
static int set_webhook_status(pgc *c, hk_req *req, const char *wid, int status)
{
    pp p = {0};
    p_text(&p, wid);
    p_text(&p, hk_wh_status_name(status));
    p_i64(&p, hk_now_ms());
    int rc = run(c, Q_WH_SET_STATUS, &p, NULL);
    if (!rc) rc = pg_webhook_park(c, wid);
    if (!rc && req) hk_out_change(req, wid, status);
    return rc;
}

/* last_triggered_at of every webhook that got a delivery and the counters of every webhook with
 * final results, in one statement after locking the rows in id order; then the operational
 * events (opevents.h) of the final failures and status changes, buffered for the second flush
 * of pre-commit. */
static int webhook_group_update(pgc *c)
{
    wh_acc *accs = NULL;
    int n = 0, cap = 0, rc = HK_OK;
    hk_map idx;
    hk_map_init(&idx);
    for (int i = 0; i < c->base.ntouched; i++)
        acc_get(&accs, &n, &cap, &idx, c->base.touched[i])->triggered = 1;
    int disable_after = 0;
    for (int q = 0; q < c->nresults; q++) {
        hk_req *req = c->results[q];
        disable_after = req->u.results.disable_after;
        for (int i = 0; i < req->u.results.n; i++) {
            const hk_result *x = &req->u.results.items[i];
            if (!x->final || !x->stored) continue; /* hk_health_add would count nothing */
            wh_acc *h = acc_get(&accs, &n, &cap, &idx, x->webhook_id);
            h->health = 1;
            h->owner = req;
            hk_health_add(&h->h, x);
            if (!x->attempt_ok) h->last_fail = x;
            if (x->attempt_ok) h->last_ok = x;
        }
    }
    hk_map_free(&idx);
    if (!n) return HK_OK;
    qsort(accs, (size_t)n, sizeof *accs, cmp_acc);
    enum { A_ID, A_TRIG, A_OK, A_FAIL, A_HAD, A_STREAK, A_HEALTH, A_N };
    hk_buf b[A_N];
    for (int k = 0; k < A_N; k++) hk_buf_init(&b[k], HK_BUF_UNLIMITED);
    int64_t now = hk_now_ms();
    for (int i = 0; i < n; i++) {
        arr_text(&b[A_ID], accs[i].id);
        arr_time(&b[A_TRIG], accs[i].triggered ? now : 0);
        arr_i64(&b[A_OK], accs[i].h.ok);
        arr_i64(&b[A_FAIL], accs[i].h.fail);
        arr_bool(&b[A_HAD], accs[i].h.had_success);
        arr_i64(&b[A_STREAK], accs[i].h.streak);
        arr_bool(&b[A_HEALTH], accs[i].health);
    }
    const char *ids = arr_done(&b[A_ID]);
    pp l = {0};
    p_text(&l, ids);
    rc = run(c, Q_WH_LOCK, &l, NULL);
    PGresult *r = NULL;
    if (!rc) {
        pp p = {0};
        p_text(&p, ids);
        for (int k = 1; k < A_N; k++) p_text(&p, arr_done(&b[k]));
        rc = run(c, Q_WH_GROUP_UPDATE, &p, &r);
    }
    for (int k = 0; k < A_N; k++) hk_buf_free(&b[k]);
    /* operational events (opevents.h): each final failure stored by the group's results */
    for (int q = 0; !rc && q < c->nresults; q++) {
        hk_req *req = c->results[q];
        for (int i = 0; !rc && i < req->u.results.n; i++) {
            const hk_result *x = &req->u.results.items[i];
            if (!x->final || !x->stored || x->attempt_ok) continue;
            hk_opev ev = {.kind = HK_OPEV_EXHAUSTED, .webhook_id = x->webhook_id, .res = x};
            rc = hk_opev_emit(&c->base, c, &pg_ops, now, &ev, &req->u.results.emitted);
        }
    }
    int changed = 0;
    for (int i = 0; !rc && r && i < PQntuples(r); i++) {
        if (!g_bool(r, i, 1) || g_bool(r, i, 4)) continue; /* no final results, or deleted */
        char wid[HK_ID_MAX];
        g_id(r, i, 0, wid);
        wh_acc key, *h;
        memset(&key, 0, sizeof key);
        hk_strlcpy(key.id, wid, sizeof key.id);
        h = bsearch(&key, accs, (size_t)n, sizeof *accs, cmp_acc);
        if (!h) continue;
        int64_t cf = g_i64(r, i, 2);
        int status = hk_wh_status_parse(PQgetvalue(r, i, 3));
        if (g_bool(r, i, 5) && h->last_ok && h->owner) { /* delivered again after re-enable */
            pp rp = {0};
            p_text(&rp, wid);
            rc = run(c, Q_WH_RECOVERED, &rp, NULL);
            hk_opev ev = {.kind = HK_OPEV_RECOVERED, .webhook_id = wid, .res = h->last_ok};
            if (!rc)
                rc = hk_opev_emit(&c->base, c, &pg_ops, now, &ev, &h->owner->u.results.emitted);
            if (rc) break;
        }
        int to = hk_health_decide(&h->h, status, cf, 0, disable_after);
        if (to >= 0) {
            rc = set_webhook_status(c, h->owner, wid, to);
            changed = 1;
        }
        if (to >= 0 && !rc && h->owner) {
            hk_opev ev = {.kind = to == HK_WH_DISABLED ? HK_OPEV_DISABLED : HK_OPEV_FAILED,
                          .webhook_id = wid,
                          .reason = to == HK_WH_DISABLED ? "gone" : NULL,
                          .res = h->last_fail,
                          .consecutive_failures = cf};
            hk_conn_orgs_reset(&c->base); /* the candidates must see the new status */
            rc = hk_opev_emit(&c->base, c, &pg_ops, now, &ev, &h->owner->u.results.emitted);
        }
    }
    PQclear(r);
    free(accs);
    if (changed) hk_conn_orgs_reset(&c->base);
    return rc;
}

/* ---- backend entry points ------------------------------------------------------------------ */

static void group_reset(pgc *c)
{
    hk_conn_group_reset(&c->base);
    c->lasterr[0] = '\0';
    for (int i = 0; i < NCOLS; i++) hk_buf_reset(&c->col[i]);
    c->nrows_ev = c->nrows_dl = 0;
    for (int i = 0; i < c->nevs; i++) free(c->evs[i].idem_key);
    c->nevs = c->nflushed = 0;
    hk_map_free(&c->idem);
    hk_map_init(&c->idem);
    c->ndups = 0;
    c->nresults = 0;
    c->sp_made = 0;
}

static const char *pg_take_error(void *conn)
{
    pgc *c = conn;
    if (!c->lasterr[0]) return NULL;
    hk_strlcpy(c->taken, c->lasterr, sizeof c->taken);
    c->lasterr[0] = '\0';
    return c->taken;
}

static int pg_ping_req(void *conn, hk_req *req)
{
    HK_UNUSED(req);
    return run(conn, Q_PING, NULL, NULL);
}

/* u.stats: the relations' size on disk and, with want_rows, the live-row estimates. */
static int pg_store_stats(void *conn, hk_req *req)
{
    PGresult *r;
    int rc = run(conn, Q_STATS_BYTES, NULL, &r);
    if (rc) return rc;
    req->u.stats.bytes = g_i64(r, 0, 0);
    PQclear(r);
    if (!req->u.stats.want_rows) return HK_OK;
    rc = run(conn, Q_STATS_ROWS, NULL, &r);
    if (rc) return rc;
    for (int i = 0; i < HK_TBL_MAX && i < PQnfields(r); i++) req->u.stats.rows[i] = g_i64(r, 0, i);
    PQclear(r);
    return HK_OK;
}

static int pg_begin(void *conn)
{
    pgc *c = conn;
    group_reset(c);
    return simple(c, c->role == HK_CONN_READER ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                               : "BEGIN");
}

static int pg_commit(void *conn)
{
    pgc *c = conn;
    PGresult *r = PQexec(c->pg, "COMMIT");
    int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? HK_OK : map_err(c, r, "commit");
    /* a COMMIT of a transaction that failed is answered ROLLBACK, without an error */
    if (!rc && strcmp(PQcmdStatus(r), "COMMIT") != 0) rc = HK_EUNAVAIL;
    PQclear(r);
    group_reset(c);
    if (rc) hk_conn_orgs_reset(&c->base); /* the fan-out cache outlives a committed group only */
    return rc;
}

static int pg_rollback(void *conn)
{
    pgc *c = conn;
    group_reset(c);
    hk_conn_orgs_reset(&c->base);
    if (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) == PQTRANS_IDLE)
        return HK_OK;
    return simple(c, "ROLLBACK");
}

static int pg_savepoint(void *conn)
{
    pgc *c = conn;
    c->sp_made = 0;
    c->mark.nrows_ev = c->nrows_ev;
    c->mark.nrows_dl = c->nrows_dl;
    c->mark.nevs = c->nevs;
    c->mark.ndups = c->ndups;
    c->mark.nresults = c->nresults;
    hk_conn_mark(&c->base);
    for (int i = 0; i < NCOLS; i++) c->mark.collen[i] = c->col[i].len;
    return HK_OK;
}

static int pg_release(void *conn)
{
    pgc *c = conn;
    if (!c->sp_made) return HK_OK;
    c->sp_made = 0;
    return simple(c, "RELEASE SAVEPOINT req");
}

static int pg_rollback_to(void *conn)
{
    pgc *c = conn;
    /* the request's batched rows leave the group's arrays */
    for (int i = 0; i < NCOLS; i++) c->col[i].len = c->mark.collen[i];
    c->nrows_ev = c->mark.nrows_ev;
    c->nrows_dl = c->mark.nrows_dl;
    for (int i = c->mark.nevs; i < c->nevs; i++) {
        if (c->evs[i].idem_key) hk_map_del(&c->idem, c->evs[i].idem_key);
        free(c->evs[i].idem_key);
    }
    if (c->nevs > c->mark.nevs) c->nevs = c->mark.nevs;
    if (c->nflushed > c->nevs) c->nflushed = c->nevs;
    c->ndups = c->mark.ndups;
    c->nresults = c->mark.nresults;
    /* its touched webhooks go, and the fan-out cache if the request changed webhooks */
    hk_conn_undo(&c->base);
    if (c->sp_made) return simple(c, "ROLLBACK TO SAVEPOINT req");
    /* nothing was written at once: fine, unless a statement failed (the transaction is then
     * aborted and only the whole group can be undone) */
    return PQtransactionStatus(c->pg) == PQTRANS_INTRANS ? HK_OK : HK_EUNAVAIL;
}

/* The statistics' rollups of the group's results requests (rollup.h): one statement upserting
 * one row per webhook and minute, then the hour and day rows, after webhook_group_update locked
 * the webhook rows (every node takes the webhook rows, then the minute rows, then the coarse
 * rows, each in key order: no deadlock between two nodes' groups). */
static int group_rollups(pgc *c)
{
    int total = 0;
    for (int q = 0; q < c->nresults; q++) total += c->results[q]->u.results.n;
    if (!total) return HK_OK;
    hk_result *all = hk_malloc(sizeof *all * (size_t)total);
    int k = 0;
    for (int q = 0; q < c->nresults; q++) {
        memcpy(all + k, c->results[q]->u.results.items,
               sizeof *all * (size_t)c->results[q]->u.results.n);
        k += c->results[q]->u.results.n;
    }
    hk_rollup_row *rows;
    int nr = hk_rollup_collect_all(all, total, &rows);
    int rc = nr ? pg_rollup_upsert(c, rows, nr) : HK_OK;
    free(rows);
    free(all);
    return rc;
}

static int pg_pre_commit(void *conn)
{
    pgc *c = conn;
    int rc = flush_ingest(c);
    if (!rc) rc = webhook_group_update(c);
    if (!rc) rc = group_rollups(c);
    if (!rc) rc = flush_ingest(c); /* the operational events it wrote */
    c->base.ntouched = 0;
    c->nresults = 0;
    return rc;
}

static int pg_ping(void *conn)
{
    pgc *c = conn;
    if (PQstatus(c->pg) != CONNECTION_OK) return HK_EUNAVAIL;
    PGresult *r = PQexec(c->pg, "SELECT 1");
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok ? HK_OK : HK_EUNAVAIL;
}

static void pg_close(void *conn)
{
    pgc *c = conn;
    if (!c) return;
    group_reset(c);
    for (int i = 0; i < NCOLS; i++) hk_buf_free(&c->col[i]);
    hk_map_free(&c->idem);
    free(c->evs);
    free(c->dups);
    free(c->results);
    hk_conn_free(&c->base);
    PQfinish(c->pg);
    free(c);
}

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* "relation already exists, skipping" and the like */
}

static int pg_open(void **conn, const hk_config *cfg, int role, char *err, size_t errlen)
{
    /* defaults first: the URL's own parameters (expanded from dbname) override them */
    const char *keys[] = {"connect_timeout",  "keepalives",
                          "keepalives_idle",  "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout",
                          "application_name", "client_encoding",
                          "dbname",           NULL};
    const char *vals[] = {"5", "1", "10", "3", "3", "20000", "hookd", "UTF8", cfg->pg_url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        char msg[400];
        hk_strlcpy(msg, pg ? PQerrorMessage(pg) : "out of memory", sizeof msg);
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        snprintf(err, errlen, "cannot connect to PostgreSQL (PG_URL): %s", msg);
        PQfinish(pg);
        return HK_EUNAVAIL;
    }
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    if (PQserverVersion(pg) < 120000) {
        snprintf(err, errlen, "PostgreSQL %d is too old: hookd needs 12 or newer",
                 PQserverVersion(pg) / 10000);
        PQfinish(pg);
        return HK_EINVAL;
    }
    pgc *c = hk_calloc(1, sizeof *c);
    c->pg = pg;
    c->role = role;
    c->cfg = cfg;
    for (int i = 0; i < NCOLS; i++) hk_buf_init(&c->col[i], HK_BUF_UNLIMITED);
    hk_map_init(&c->idem);
    /* a reader never waits forever on a slow list; timestamps render as UTC everywhere. No
     * parallel workers for a reader: its statements read a page (at most a thousand rows
     * in), and the generic plan of a prepared list statement would start two workers for an
     * offset page (measured: 55 ms instead of 1.6 ms, bench scenario k's deepest page) */
    const char *setup = role == HK_CONN_READER
                            ? "SET statement_timeout = 30000; SET TIME ZONE 'UTC'; "
                              "SET max_parallel_workers_per_gather = 0"
                            : "SET TIME ZONE 'UTC'";
    PGresult *r = PQexec(pg, setup);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        snprintf(err, errlen, "PostgreSQL session setup failed: %s", PQerrorMessage(pg));
        pg_close(c);
        return HK_EUNAVAIL;
    }
    *conn = c;
    return HK_OK;
}

/* Runs text (one or more statements) outside prepared statements; message into err. */
static int exec_state(pgc *c, const char *text, char state[6], char *err, size_t errlen);

static int exec_text(pgc *c, const char *text, char *err, size_t errlen)
{
    char state[6];
    return exec_state(c, text, state, err, errlen);
}

/* Runs text like exec_text, and puts the SQLSTATE of a failure into state (6 bytes; "" when
 * none was given): pg_migrate tells a deadlock's victim from a real error by it. */
static int exec_state(pgc *c, const char *text, char state[6], char *err, size_t errlen)
{
    PGresult *r = PQexec(c->pg, text);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = HK_OK;
    state[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        static const char prefix[] = "PostgreSQL: ";
        char msg[400];
        const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (code) hk_strlcpy(state, code, 6);
        memcpy(msg, prefix, sizeof prefix);
        hk_strlcpy(msg + sizeof prefix - 1, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg),
                   sizeof msg - (sizeof prefix - 1));
        msg[strcspn(msg, "\r\n")] = '\0';
        hk_strlcpy(err, msg, errlen); /* cut to the caller's buffer (not a snprintf: -O3 warns) */
        rc = PQstatus(c->pg) == CONNECTION_OK ? HK_EINVAL : HK_EUNAVAIL;
    }
    PQclear(r);
    return rc;
}

/* Whether a statement that failed with SQLSTATE state may succeed if its transaction is run
 * again: a deadlock's victim (40P01), a serialization failure (40001), a lock not available
 * (55P03). */
static int pg_transient_state(const char *state)
{
    return strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "55P03") == 0;
}

/* The oldest schema version whose hookd can serve a database migrated to version v: the last
 * contract migration at or before v (pg_schema.h). */
static int64_t compatible_from(int64_t v)
{
    int64_t from = 1;
    for (size_t i = 0; i < HK_ARRAY_LEN(hk_pg_contract_migrations); i++)
        if (hk_pg_contract_migrations[i] <= v) from = HK_MAX(from, hk_pg_contract_migrations[i]);
    return from;
}

/* Applies the missing migrations, each in its own transaction, under a session advisory lock:
 * nodes starting at once apply each one exactly once. Each version's row records the oldest
 * schema version that can still serve it (compatible_from), so that a node of the previous
 * release serves a database that a newer node expanded (a rolling upgrade), and refuses one
 * that a contract migration changed under it. */
static int pg_migrate(void *conn, char *err, size_t errlen)
{
    pgc *c = conn;
    char lock[96], unlock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)", (long long)MIGRATE_LOCK_KEY);
    snprintf(unlock, sizeof unlock, "SELECT pg_advisory_unlock(%lld)", (long long)MIGRATE_LOCK_KEY);
    int rc = exec_text(c, lock, err, errlen);
    if (rc) return rc;
    rc = exec_text(c,
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                   "applied_at timestamptz NOT NULL DEFAULT now())",
                   err, errlen);
    /* rows written before this column existed read as their own version (contract steps) */
    if (!rc)
        rc = exec_text(c,
                       "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS compatible_from "
                       "integer",
                       err, errlen);
    int64_t have = 0, have_from = 0;
    if (!rc) {
        PGresult *r = PQexec(c->pg, "SELECT version, COALESCE(compatible_from, version) FROM "
                                    "schema_migrations ORDER BY version DESC LIMIT 1");
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
            if (PQntuples(r) == 1) have = g_i64(r, 0, 0), have_from = g_i64(r, 0, 1);
        } else {
            rc = exec_text(c, "SELECT 1 FROM schema_migrations", err, errlen);
        }
        PQclear(r);
    }
    int64_t known = (int64_t)HK_ARRAY_LEN(hk_pg_migrations);
    if (!rc && have > known && have_from > known) {
        snprintf(err, errlen,
                 "the database schema is version %lld, newer than this hookd knows (%lld), and "
                 "needs a hookd that knows version %lld or later: upgrade hookd",
                 (long long)have, (long long)known, (long long)have_from);
        rc = HK_EINVAL;
    } else if (!rc && have > known) {
        HK_LOG(HK_LOG_WARN, "store.schema_newer", HK_LS("backend", "postgres"),
               HK_LI("version", have), HK_LI("known", known),
               HK_LS("msg", "a newer hookd expanded the schema; serving it (rolling upgrade): "
                            "upgrade this node too"));
    }
    for (int64_t v = have + 1; !rc && v <= known; v++) {
        char stamp[160];
        snprintf(stamp, sizeof stamp,
                 "INSERT INTO schema_migrations (version, compatible_from) VALUES (%lld, %lld)",
                 (long long)v, (long long)compatible_from(v));
        /* a migration that locks tables while nodes of the previous release write to them (a
         * rolling upgrade) can be chosen as a deadlock's victim: it is rolled back whole and
         * tried again, a few times, after a short pause */
        for (int attempt = 1;; attempt++) {
            char state[6] = "";
            if ((rc = exec_text(c, "BEGIN", err, errlen))) break;
            if (!(rc = exec_state(c, hk_pg_migrations[v - 1], state, err, errlen)) &&
                !(rc = exec_state(c, stamp, state, err, errlen)) &&
                !(rc = exec_state(c, "COMMIT", state, err, errlen)))
                break;
            char ignore[64];
            exec_text(c, "ROLLBACK", ignore, sizeof ignore);
            if (attempt >= MIGRATE_TRIES || !pg_transient_state(state)) break;
            HK_LOG(HK_LOG_WARN, "store.migration_retry", HK_LS("backend", "postgres"),
                   HK_LI("version", v), HK_LI("attempt", attempt), HK_LS("error", err));
            char pause[64], ignore2[64];
            snprintf(pause, sizeof pause, "SELECT pg_sleep(%.1f)", 0.1 * attempt);
            exec_text(c, pause, ignore2, sizeof ignore2);
        }
        if (rc) break;
        HK_LOG(HK_LOG_INFO, "store.migrated", HK_LS("backend", "postgres"), HK_LI("version", v));
    }
    char ignore[64];
    exec_text(c, unlock, ignore, sizeof ignore);
    return rc;
}

/* Registers this node: its heartbeat row, alive for one lease. Leases that still name this node
 * id are from an earlier run of it (HOOKD_NODE_ID set) and go back; so do leases of nodes that
 * have no heartbeat row at all. */
/* With WEBHOOK_ENCRYPTION_KEY: encrypts the custom header values written before the key was
 * set, so that none stays in plaintext. Each row is updated only if it still holds what was read
 * (another node starting, or an API write, may have changed it meanwhile). */
static int seal_plain_headers(pgc *c, char *err, size_t errlen)
{
    if (!c->cfg->has_enc_key) return HK_OK;
    PGresult *r = PQexec(c->pg, "SELECT id, custom_headers::text FROM webhook WHERE "
                                "custom_headers IS NOT NULL");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading custom headers: %s",
                 r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
        err[strcspn(err, "\r\n")] = '\0';
        PQclear(r);
        return HK_EUNAVAIL;
    }
    int rc = HK_OK, n = 0;
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        hk_buf_reset(&b);
        if (hk_headers_seal_plain(c->cfg, PQgetvalue(r, i, 1), &b) != 1) continue;
        const char *v[3] = {PQgetvalue(r, i, 0), hk_buf_cstr(&b), PQgetvalue(r, i, 1)};
        PGresult *u = PQexecParams(c->pg,
                                   "UPDATE webhook SET custom_headers = $2::json WHERE id = $1 "
                                   "AND custom_headers::text = $3",
                                   3, NULL, v, NULL, NULL, 0);
        if (!u || PQresultStatus(u) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "encrypting custom headers: %s",
                     u ? PQresultErrorMessage(u) : PQerrorMessage(c->pg));
            err[strcspn(err, "\r\n")] = '\0';
            rc = HK_EUNAVAIL;
        }
        PQclear(u);
        n++;
    }
    hk_buf_free(&b);
    PQclear(r);
    if (!rc && n)
        HK_LOG(HK_LOG_INFO, "store.headers_encrypted", HK_LI("webhooks", n),
               HK_LS("msg", "custom header values written before WEBHOOK_ENCRYPTION_KEY was set "
                            "are now encrypted"));
    return rc;
}

static int pg_startup(void *conn, const char *node_id, char *err, size_t errlen)
{
    pgc *c = conn;
    int64_t now = hk_now_ms();
    const char *v[3];
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)(now + c->cfg->lease_ms));
    snprintf(b, sizeof b, "%lld", (long long)now);
    v[0] = node_id;
    v[1] = a;
    v[2] = b;
    static const char *const steps[] = {
        "UPDATE webhook_delivery SET lease_owner = NULL WHERE lease_owner = $1",
        ("INSERT INTO hk_node (id, alive_until, started_at) VALUES ($1, hk_ts($2), hk_ts($3)) "
         "ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until, started_at = "
         "excluded.started_at"),
        ("UPDATE webhook_delivery d SET lease_owner = NULL WHERE d.lease_owner IS NOT NULL AND "
         "NOT EXISTS (SELECT 1 FROM hk_node n WHERE n.id = d.lease_owner)"),
    };
    static const int nparams[] = {1, 3, 0};
    for (size_t i = 0; i < HK_ARRAY_LEN(steps); i++) {
        PGresult *r = PQexecParams(c->pg, steps[i], nparams[i], NULL, v, NULL, NULL, 0);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            char msg[400];
            hk_strlcpy(msg, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), sizeof msg);
            msg[strcspn(msg, "\r\n")] = '\0';
            snprintf(err, errlen, "PostgreSQL node registration failed: %s", msg);
        }
        PQclear(r);
        if (!ok) return HK_EUNAVAIL;
    }
    return seal_plain_headers(c, err, errlen);
}

static const hk_store_ops pg_ops = {
    .ping = pg_ping_req,
    .store_stats = pg_store_stats,
    .key_by_hash = pg_key_by_hash,
    .key_insert = pg_key_insert,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .key_count = pg_key_count,
    .webhook_get = pg_webhook_get,
    .webhook_exists = pg_webhook_exists,
    .webhook_count_org = pg_webhook_count_org,
    .webhook_insert = pg_webhook_insert,
    .webhook_rotate = pg_webhook_rotate,
    .webhook_update = pg_webhook_update,
    .subs_delete = pg_subs_delete,
    .subs_insert = pg_subs_insert,
    .org_insert = pg_org_insert,
    .org_ensure = pg_org_ensure,
    .org_get = pg_org_get,
    .org_list = pg_org_list,
    .org_update = pg_org_update,
    .org_park = pg_org_park,
    .org_unpark = pg_org_unpark,
    .session_insert = pg_session_insert,
    .session_by_hash = pg_session_by_hash,
    .session_revoke = pg_session_revoke,
    .delivery_search = pg_delivery_search,
    .webhook_park = pg_webhook_park,
    .webhook_unpark = pg_webhook_unpark,
    .webhook_list = pg_webhook_list,
    .webhook_delete = pg_webhook_delete,
    .webhook_load = pg_webhook_load,
    .org_webhooks = pg_org_webhooks,
    .org_version = pg_org_version,
    .ingest = pg_ingest,
    .event_list = pg_event_list,
    .event_get = pg_event_get,
    .delivery_list = pg_delivery_list,
    .delivery_get = pg_delivery_get,
    .claim = pg_claim,
    .claim_ids = pg_claim_ids,
    .due_scan = pg_due_scan,
    .results = pg_results,
    .rollup_upsert = NULL, /* group_rollups at pre-commit */
    .rollup_read = pg_rollup_read,
    .backlog = pg_backlog,
    .org_stats = pg_org_stats,
    .release = pg_dl_release,
    .reschedule = pg_dl_reschedule,
    .heartbeat = pg_heartbeat,
    .delivery_webhook = pg_delivery_webhook,
    .failed_range = pg_failed_range,
    .replay_insert = pg_replay_insert,
    .prune = pg_prune,
    .delivery_brief = pg_delivery_brief,
    .opev_insert = pg_opev_insert,
};

const hk_store_backend hk_pg_backend = {
    .name = "postgres",
    .open = pg_open,
    .migrate = pg_migrate,
    .startup = pg_startup,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .pre_commit = pg_pre_commit,
    .write_now = need_savepoint,
    .take_error = pg_take_error,
    .ops = &pg_ops,
    .ping = pg_ping,
    .close = pg_close,
};
