/*
 * sqlite.c: the embedded store backend (the default). One SQLite file in WAL mode; the writer
 * connection runs every write request of a group in one transaction (see store.c), readers
 * read concurrently. Statements are prepared once per connection and reused.
 *
 * Single node: a SQLite store belongs to one hookd process at a time (an flock on
 * "<db>.lock" taken at serve start-up makes a second one fail with a clear message), so at
 * start-up every lease left by a previous run is handed back and its deliveries become
 * claimable at their due time at once.
 *
 * Durability: HOOKD_SQLITE_SYNC=full (default) fsyncs the WAL at every commit, so an
 * acknowledged event survives power loss as well as kill -9; `normal` survives kill -9 only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/time.h"
#include "store/sig_scheme.h"
#include "store/backend.h"
#include "store/opevents.h"
#include "store/rollup.h"
#include "store/rows.h"
#include "store/sqlite_schema.h"

static const hk_store_ops sq_ops; /* below: the operational events call back through it */

/* ---- statements ---------------------------------------------------------------------------- */

#define WH_COLS                                                                                    \
    "id, name, url, secret, previous_secret, previous_secret_expires_at, organization_id, "        \
    "user_id, status, custom_headers, rate_limit_enabled, max_requests_per_minute, "               \
    "max_retries, filtering_options, signature_schemes, last_triggered_at, success_count, "        \
    "failure_count, consecutive_failures, deleted_at, created_at, updated_at, retry_schedule, "    \
    "timeout_ms, signing_key, previous_signing_key, previous_signing_key_expires_at, "             \
    "COALESCE((SELECT o.disabled FROM organization o WHERE o.id = webhook.organization_id), 0), "  \
    "ordering"

#define DL_COLS                                                                                    \
    "d.id, d.webhook_id, d.webhook_event_id, d.replay_of_delivery_id, d.event_type, "              \
    "COALESCE(d.event_data, e.payload), e.created_at, d.status, d.request_url, "                   \
    "d.request_headers, d.response_status, d.response_body, d.response_headers, "                  \
    "d.attempt_number, d.max_attempts, d.next_retry_at, d.last_attempt_at, d.error_message, "      \
    "d.completed_at, d.duration_ms, d.created_at, "                                                \
    "(SELECT h.headers FROM webhook_headers h WHERE h.ref = d.request_headers_ref)"

#define DL_FROM " FROM webhook_delivery d JOIN webhook_event e ON e.id = d.webhook_event_id"

#define KEYSET_TAIL "ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"

#define EV_COLS "id, event, payload, source, idempotency_key, organization_id, user_id, created_at"

#define OPEN_STATUS "status IN ('pending','retrying')"

/* FIFO ordering (docs/API.md "Ordering"): a delivery `d` (a table name or alias) is claimable
 * only if its webhook is not "fifo" or no open delivery of that webhook was created before it
 * (created_at, id): only the head of a FIFO webhook's line is ever leased, so one attempt at a
 * time, in creation order, a retrying head holding the rest. The probe is a range of the index
 * webhook_delivery_list_status (webhook_id, status, created_at, id). */
#define FIFO_HEAD(d)                                                                               \
    " AND NOT EXISTS (SELECT 1 FROM webhook fw WHERE fw.id = " d ".webhook_id AND fw.ordering = "  \
    "'fifo' AND EXISTS (SELECT 1 FROM webhook_delivery fo WHERE fo.webhook_id = " d                \
    ".webhook_id AND fo.status IN ('pending','retrying') AND (fo.created_at, fo.id) < (" d         \
    ".created_at, " d ".id)))"
/* as in the partial index webhook_delivery_finished (the text must match for SQLite to use it) */
#define FINISHED_STATUS "status IN ('success','failed')"

/* a key, with its organization's disabled flag ('' = an admin key: no organization) */
#define KEY_COLS                                                                                   \
    "id, organization_id, name, key_prefix, created_at, revoked_at, last_used_at, scope, "         \
    "COALESCE((SELECT o.disabled FROM organization o WHERE o.id = api_key.organization_id), 0)"

#define ORG_COLS "id, name, metadata, disabled, created_at, updated_at"

enum {
    S_BEGIN_W,
    S_BEGIN_R,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_PING,
    S_KEY_INSERT,
    S_KEY_BY_HASH,
    S_KEY_LIST,
    S_KEY_REVOKE,
    S_KEY_COUNT,
    S_ORG_INSERT,
    S_ORG_ENSURE,
    S_ORG_GET,
    S_ORG_COUNT,
    S_ORG_LIST,
    S_ORG_UPDATE,
    S_ORG_PARK,
    S_ORG_UNPARK,
    S_SESSION_INSERT,
    S_SESSION_BY_HASH,
    S_SESSION_REVOKE,
    S_DL_SEARCH,
    S_WH_INSERT,
    S_WH_GET,
    S_WH_BY_ID,
    S_WH_EXISTS,
    S_WH_COUNT,
    S_WH_LIST,
    S_WH_LIST_F,
    S_WH_NUM,
    S_WH_NUM_F,
    S_WH_UPDATE,
    S_WH_DELETE,
    S_WH_ORG,
    S_ORG_VERSION,
    S_WH_TRIGGERED,
    S_WH_HEALTH,
    S_WH_SET_STATUS,
    S_SUB_INSERT,
    S_SUB_DELETE,
    S_SUB_LIST,
    S_EV_INSERT,
    S_EV_BY_IDEM,
    S_EV_LIST,
    S_EV_LIST_F,
    S_EV_NUM,
    S_EV_NUM_F,
    S_EV_GET,
    S_EV_DELIVERIES,
    S_DL_INSERT,
    S_DL_COUNT_EVENT,
    S_DL_FAIL_WEBHOOK,
    S_DL_PARK_WEBHOOK,
    S_DL_UNPARK_WEBHOOK,
    S_DL_LIST,
    S_DL_LIST_F,
    S_DL_NUM,
    S_DL_NUM_F,
    S_DL_GET,
    S_ATT_LIST,
    S_CLAIM,
    S_DL_LEASE,
    S_DL_PARK,
    S_ATT_NEW,
    S_ATT_INSERT,
    S_DL_RESULT,
    S_DL_RELEASE,
    S_DL_RESCHEDULE,
    S_NODE_UPSERT,
    S_NODE_RECLAIM,
    S_NODE_DELETE_DEAD,
    S_WH_ROTATE,
    S_DL_REPLAY,
    S_DL_FAILED_RANGE,
    S_DL_WEBHOOK_OF,
    S_CLAIM_ONE,
    S_DUE_SCAN,
    S_HDR_INSERT,
    S_STATS_ROWS,
    S_STATS_BYTES,
    S_PR_DL_PICK,
    S_PR_ATT_DEL,
    S_PR_DL_DEL,
    S_PR_EV_DEL,
    S_PR_EV_SCAN,
    S_PR_OLDEST,
    S_PR_COUNT_DL,
    S_PR_COUNT_ATT,
    S_PR_COUNT_EV,
    S_PR_POS_GET,
    S_PR_POS_SET,
    S_DL_BRIEF,
    S_WH_RECOVERED,
    S_ST_UPSERT,
    S_ST_READ,
    S_ST_BACKLOG,
    S_ST_ORG,
    S_PR_ST_DEL,
    S_ST_UPSERT_C,
    S_ST_READ_C,
    S_PR_STC_DEL,
    S_FIFO_HEAD,
    S_MAX
};

static const char *const sql[S_MAX] = {
    /* statistics (rollup.h): hk_hist_add adds two histogram literals element-wise */
    [S_ST_UPSERT] = "INSERT INTO webhook_stats (webhook_id, minute, delivered, failed, given_up, "
                    "last_at, att_hist, e2e_hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                    "ON CONFLICT (webhook_id, minute) DO UPDATE SET delivered = delivered + "
                    "excluded.delivered, failed = failed + excluded.failed, given_up = given_up "
                    "+ excluded.given_up, last_at = max(last_at, excluded.last_at), att_hist = "
                    "hk_hist_add(att_hist, excluded.att_hist), e2e_hist = hk_hist_add(e2e_hist, "
                    "excluded.e2e_hist)",
    [S_ST_READ] = "SELECT minute, delivered, failed, given_up, last_at, att_hist, e2e_hist FROM "
                  "webhook_stats WHERE webhook_id = ?1 AND minute >= ?2 AND minute < ?3",
    /* the hour and day rows (migration 11), written beside the minute rows */
    [S_ST_UPSERT_C] = "INSERT INTO webhook_stats_coarse (webhook_id, grain, start, delivered, "
                      "failed, given_up, last_at, att_hist, e2e_hist) VALUES (?1, ?9, ?2, ?3, ?4, "
                      "?5, ?6, ?7, ?8) ON CONFLICT (webhook_id, grain, start) DO UPDATE SET "
                      "delivered = delivered + excluded.delivered, failed = failed + "
                      "excluded.failed, given_up = given_up + excluded.given_up, last_at = "
                      "max(last_at, excluded.last_at), att_hist = hk_hist_add(att_hist, "
                      "excluded.att_hist), e2e_hist = hk_hist_add(e2e_hist, excluded.e2e_hist)",
    [S_ST_READ_C] = "SELECT start, delivered, failed, given_up, last_at, att_hist, e2e_hist FROM "
                    "webhook_stats_coarse WHERE webhook_id = ?1 AND grain = ?4 AND start >= ?2 "
                    "AND start < ?3",
    [S_ST_BACKLOG] = "SELECT COUNT(*) FROM (SELECT 1 FROM webhook_delivery WHERE webhook_id = ?1 "
                     "AND " OPEN_STATUS " LIMIT ?2)",
    /* the last 24 h: the minute rows from ?2 to the next whole hour ?5, the hour rows after */
    [S_ST_ORG] = "SELECT w.id, w.name, w.url, w.status, (SELECT coalesce(sum(d), 0) || ' ' || "
                 "coalesce(sum(f), 0) || ' ' || coalesce(sum(g), 0) FROM (SELECT delivered AS d, "
                 "failed AS f, given_up AS g FROM webhook_stats s WHERE s.webhook_id = w.id AND "
                 "s.minute >= ?2 AND s.minute < ?5 UNION ALL SELECT delivered, failed, given_up "
                 "FROM webhook_stats_coarse c WHERE c.webhook_id = w.id AND c.grain = 3600000 "
                 "AND c.start >= ?5)), (SELECT last_at "
                 "FROM webhook_stats s WHERE s.webhook_id = w.id ORDER BY minute DESC LIMIT 1) "
                 "FROM webhook w WHERE w.organization_id = ?1 AND w.deleted_at IS NULL AND w.id "
                 "> ?3 ORDER BY w.id LIMIT ?4",
    [S_PR_ST_DEL] = "DELETE FROM webhook_stats WHERE rowid IN (SELECT rowid FROM webhook_stats "
                    "WHERE minute < ?1 LIMIT ?2)",
    /* hour and day rows whose whole span is older than the cut ?1 */
    [S_PR_STC_DEL] = "DELETE FROM webhook_stats_coarse WHERE rowid IN (SELECT rowid FROM "
                     "webhook_stats_coarse WHERE start < ?1 - 3600000 AND start + grain < ?1 "
                     "LIMIT ?2)",
    [S_BEGIN_W] = "BEGIN IMMEDIATE",
    [S_BEGIN_R] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT req",
    [S_RELEASE] = "RELEASE req",
    [S_ROLLBACK_TO] = "ROLLBACK TO req",
    [S_PING] = "SELECT 1",
    [S_KEY_INSERT] = "INSERT INTO api_key (id, organization_id, name, key_hash, key_prefix, "
                     "created_at, scope) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_KEY_BY_HASH] = "SELECT " KEY_COLS " FROM api_key WHERE key_hash = ?1",
    [S_KEY_LIST] = "SELECT " KEY_COLS " FROM api_key WHERE ?1 IS NULL OR organization_id = ?1 "
                   "ORDER BY created_at, id",
    [S_KEY_REVOKE] = "UPDATE api_key SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL "
                     "AND (?3 IS NULL OR organization_id = ?3)",
    [S_ORG_INSERT] = "INSERT INTO organization (id, name, metadata, disabled, created_at, "
                     "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    [S_ORG_ENSURE] = "INSERT OR IGNORE INTO organization (id, name, created_at, updated_at) "
                     "VALUES (?1, ?1, ?2, ?2)",
    [S_ORG_GET] = "SELECT " ORG_COLS " FROM organization WHERE id = ?1",
    [S_ORG_COUNT] = "SELECT count(*) FROM (SELECT 1 FROM organization ORDER BY created_at DESC, "
                    "id DESC LIMIT ?1)",
    [S_ORG_LIST] = "SELECT " ORG_COLS " FROM organization WHERE (created_at, id) < (?3, ?4) "
                   "ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2",
    [S_ORG_UPDATE] = "UPDATE organization SET name = ?2, metadata = ?3, disabled = ?4, "
                     "updated_at = ?5 WHERE id = ?1",
    [S_ORG_PARK] = "UPDATE webhook_delivery SET next_retry_at = NULL WHERE webhook_id IN "
                   "(SELECT id FROM webhook WHERE organization_id = ?1) AND " OPEN_STATUS
                   " AND lease_owner IS NULL",
    [S_SESSION_INSERT] = "INSERT INTO portal_session (id, organization_id, token_hash, scope, "
                         "created_at, expires_at, webhook_ids) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                         "?7)",
    [S_SESSION_BY_HASH] = "SELECT id, organization_id, scope, revoked_at, expires_at, "
                          "COALESCE((SELECT o.disabled FROM organization o WHERE o.id = "
                          "portal_session.organization_id), 0), webhook_ids FROM portal_session "
                          "WHERE token_hash = ?1",
    [S_DL_SEARCH] = "SELECT " DL_COLS DL_FROM " WHERE d.webhook_id IN (SELECT id FROM webhook "
                    "WHERE organization_id = ?1) AND (?2 IS NULL OR d.status = ?2) AND (?3 IS "
                    "NULL OR d.event_type = ?3) AND (?4 IS NULL OR d.webhook_id = ?4) AND (?5 IS "
                    "NULL OR d.webhook_event_id = ?5) AND (?6 IS NULL OR d.id = ?6) AND (?7 IS "
                    "NULL OR (e.idempotency_key = ?7 AND e.organization_id = ?1)) AND (?8 IS NULL "
                    "OR d.created_at >= ?8) AND (?9 IS NULL OR d.created_at < ?9) AND (?10 IS "
                    "NULL OR d.created_at < ?10 OR (d.created_at = ?10 AND d.id < ?11)) ORDER BY "
                    "d.created_at DESC, d.id DESC LIMIT ?12",
    [S_SESSION_REVOKE] = "UPDATE portal_session SET revoked_at = ?2 WHERE id = ?1 AND "
                         "organization_id = ?3 AND revoked_at IS NULL",
    [S_ORG_UNPARK] = "UPDATE webhook_delivery SET next_retry_at = ?2 WHERE webhook_id IN "
                     "(SELECT id FROM webhook WHERE organization_id = ?1 AND status = 'active' "
                     "AND deleted_at IS NULL) AND " OPEN_STATUS " AND next_retry_at IS NULL",
    [S_KEY_COUNT] = "SELECT COUNT(*) FROM api_key",
    [S_WH_INSERT] =
        "INSERT INTO webhook (id, name, url, secret, organization_id, user_id, "
        "status, custom_headers, rate_limit_enabled, max_requests_per_minute, "
        "max_retries, filtering_options, signature_schemes, created_at, updated_at, "
        "retry_schedule, timeout_ms, signing_key, ordering) VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?16, ?17, ?18)",
    [S_WH_GET] = "SELECT " WH_COLS " FROM webhook WHERE id = ?1 AND organization_id = ?2 "
                 "AND deleted_at IS NULL",
    [S_WH_BY_ID] = "SELECT " WH_COLS " FROM webhook WHERE id = ?1",
    [S_WH_EXISTS] = "SELECT 1 FROM webhook WHERE id = ?1 AND organization_id = ?2 AND "
                    "deleted_at IS NULL",
    [S_WH_COUNT] = "SELECT COUNT(*) FROM webhook WHERE organization_id = ?1 AND deleted_at IS "
                   "NULL AND (?2 IS NULL OR status = ?2)",
    /* The lists (backend.h): ?1 scope, ?2 filter (the _F statements), ?3 limit (count: the
     * bound), ?4 offset, ?5 ?6 the keyset position. A filter is its own statement, not
     * "?2 IS NULL OR", so that each one is planned on its index (migration 7). */
    [S_WH_LIST] = "SELECT " WH_COLS " FROM webhook WHERE organization_id = ?1 AND deleted_at "
                  "IS NULL AND (created_at, id) < (?5, ?6) " KEYSET_TAIL,
    [S_WH_LIST_F] = "SELECT " WH_COLS " FROM webhook WHERE organization_id = ?1 AND deleted_at "
                    "IS NULL AND status = ?2 AND (created_at, id) < (?5, ?6) " KEYSET_TAIL,
    [S_WH_NUM] = "SELECT count(*) FROM (SELECT 1 FROM webhook WHERE organization_id = ?1 AND "
                 "deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?3)",
    [S_WH_NUM_F] = "SELECT count(*) FROM (SELECT 1 FROM webhook WHERE organization_id = ?1 AND "
                   "deleted_at IS NULL AND status = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3)",
    [S_WH_UPDATE] =
        "UPDATE webhook SET name = ?2, url = ?3, secret = ?4, status = ?5, "
        "custom_headers = ?6, rate_limit_enabled = ?7, max_requests_per_minute = ?8, "
        "max_retries = ?9, filtering_options = ?10, signature_schemes = ?11, "
        "user_id = ?12, consecutive_failures = ?13, updated_at = ?14, retry_schedule = ?15, "
        "timeout_ms = ?16, signing_key = ?17, previous_signing_key = ?18, "
        "previous_signing_key_expires_at = ?19, recovering = (recovering OR ?20), "
        "ordering = ?21 WHERE id = ?1",
    [S_WH_DELETE] = "UPDATE webhook SET deleted_at = ?3, updated_at = ?3 WHERE id = ?1 AND "
                    "organization_id = ?2 AND deleted_at IS NULL",
    [S_WH_ORG] = "SELECT " WH_COLS " FROM webhook WHERE organization_id = ?1 AND deleted_at "
                 "IS NULL AND status != 'disabled'",
    [S_ORG_VERSION] = "SELECT version FROM webhook_org_versions WHERE org_id = ?1",
    [S_WH_TRIGGERED] = "UPDATE webhook SET last_triggered_at = ?2 WHERE id = ?1",
    [S_WH_HEALTH] = "UPDATE webhook SET success_count = success_count + ?2, failure_count = "
                    "failure_count + ?3, consecutive_failures = CASE WHEN ?4 THEN ?5 ELSE "
                    "consecutive_failures + ?5 END WHERE id = ?1 "
                    "RETURNING consecutive_failures, status, deleted_at, recovering",
    [S_WH_RECOVERED] = "UPDATE webhook SET recovering = 0 WHERE id = ?1",
    [S_WH_SET_STATUS] = "UPDATE webhook SET status = ?2, updated_at = ?3 WHERE id = ?1",
    [S_SUB_INSERT] = "INSERT OR IGNORE INTO webhook_event_subscription (id, webhook_id, "
                     "event_id, is_enabled, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
    [S_SUB_DELETE] = "DELETE FROM webhook_event_subscription WHERE webhook_id = ?1",
    [S_SUB_LIST] = "SELECT event_id FROM webhook_event_subscription WHERE webhook_id = ?1 AND "
                   "is_enabled = 1 ORDER BY rowid",
    [S_EV_INSERT] = "INSERT INTO webhook_event (id, event, payload, source, idempotency_key, "
                    "organization_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                    "?8)",
    [S_EV_BY_IDEM] = "SELECT id, event FROM webhook_event WHERE organization_id = ?1 AND "
                     "idempotency_key = ?2",
    [S_EV_LIST] = "SELECT " EV_COLS " FROM webhook_event WHERE organization_id = ?1 AND "
                  "(created_at, id) < (?5, ?6) " KEYSET_TAIL,
    [S_EV_LIST_F] = "SELECT " EV_COLS " FROM webhook_event WHERE organization_id = ?1 AND "
                    "event = ?2 AND (created_at, id) < (?5, ?6) " KEYSET_TAIL,
    [S_EV_NUM] = "SELECT count(*) FROM (SELECT 1 FROM webhook_event WHERE organization_id = ?1 "
                 " ORDER BY created_at DESC, id DESC LIMIT ?3)",
    [S_EV_NUM_F] = "SELECT count(*) FROM (SELECT 1 FROM webhook_event WHERE organization_id = "
                   "?1 AND event = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3)",
    [S_EV_GET] = "SELECT " EV_COLS " FROM webhook_event WHERE id = ?1 AND organization_id = ?2",
    [S_EV_DELIVERIES] = "SELECT id, webhook_id, status FROM webhook_delivery WHERE "
                        "webhook_event_id = ?1 ORDER BY created_at, id",
    [S_DL_INSERT] = "INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, "
                    "event_data, status, request_url, attempt_number, max_attempts, "
                    "next_retry_at, created_at, lease_owner) VALUES (?1, ?2, ?3, ?4, ?5, "
                    "'pending', ?6, 0, ?7, ?8, ?9, ?10)",
    [S_DL_COUNT_EVENT] = "SELECT COUNT(*) FROM webhook_delivery WHERE webhook_event_id = ?1 "
                         "AND replay_of_delivery_id IS NULL",
    [S_DL_FAIL_WEBHOOK] = "UPDATE webhook_delivery SET status = 'failed', error_message = "
                          "'webhook deleted', completed_at = ?2, next_retry_at = NULL, "
                          "lease_owner = NULL WHERE webhook_id = ?1 AND " OPEN_STATUS,
    [S_DL_PARK_WEBHOOK] = "UPDATE webhook_delivery SET next_retry_at = NULL WHERE webhook_id = "
                          "?1 AND " OPEN_STATUS " AND lease_owner IS NULL",
    [S_DL_UNPARK_WEBHOOK] = "UPDATE webhook_delivery SET next_retry_at = ?2 WHERE webhook_id = "
                            "?1 AND " OPEN_STATUS " AND next_retry_at IS NULL",
    [S_DL_LIST] = "SELECT " DL_COLS DL_FROM " WHERE d.webhook_id = ?1 AND (d.created_at, d.id) "
                  "< (?5, ?6) ORDER BY d.created_at DESC, d.id DESC LIMIT ?3 OFFSET ?4",
    [S_DL_LIST_F] = "SELECT " DL_COLS DL_FROM " WHERE d.webhook_id = ?1 AND d.status = ?2 AND "
                    "(d.created_at, d.id) < (?5, ?6) ORDER BY d.created_at DESC, d.id DESC "
                    "LIMIT ?3 OFFSET ?4",
    [S_DL_NUM] = "SELECT count(*) FROM (SELECT 1 FROM webhook_delivery WHERE webhook_id = ?1 "
                 " ORDER BY created_at DESC, id DESC LIMIT ?3)",
    [S_DL_NUM_F] = "SELECT count(*) FROM (SELECT 1 FROM webhook_delivery WHERE webhook_id = ?1 "
                   "AND status = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3)",
    [S_DL_GET] = "SELECT " DL_COLS DL_FROM " JOIN webhook w ON w.id = d.webhook_id WHERE "
                 "d.id = ?1 AND w.organization_id = ?2",
    [S_ATT_LIST] = "SELECT id, attempt_number, status, response_status, response_body, "
                   "response_headers, duration_ms, error_message, created_at FROM "
                   "webhook_delivery_attempt WHERE webhook_delivery_id = ?1 ORDER BY "
                   "attempt_number, created_at",
    [S_CLAIM] = "SELECT d.id, d.webhook_id, d.webhook_event_id, d.status, d.attempt_number, "
                "d.max_attempts, d.next_retry_at, d.created_at, d.event_data, e.event, "
                "e.payload, e.created_at" DL_FROM " WHERE d." OPEN_STATUS
                " AND d.lease_owner IS NULL AND d.next_retry_at IS NOT NULL AND "
                "d.next_retry_at <= ?1" FIFO_HEAD("d") " ORDER BY d.next_retry_at LIMIT ?2",
    [S_DL_LEASE] = "UPDATE webhook_delivery SET lease_owner = ?2 WHERE id = ?1",
    [S_DL_PARK] = "UPDATE webhook_delivery SET next_retry_at = NULL WHERE id = ?1",
    /* 1 unless the result is repeated (its attempt id, or its delivery and attempt number,
     * stored already) or its delivery does not exist: then nothing is inserted. A SELECT of its
     * own, then a plain INSERT: an INSERT ... SELECT that reads the table it writes makes SQLite
     * build a temporary table for every row (about 1 us a result) */
    [S_ATT_NEW] = "SELECT EXISTS (SELECT 1 FROM webhook_delivery WHERE id = ?2) AND NOT EXISTS "
                  "(SELECT 1 FROM webhook_delivery_attempt WHERE id = ?1) AND NOT EXISTS (SELECT "
                  "1 FROM webhook_delivery_attempt WHERE webhook_delivery_id = ?2 AND "
                  "attempt_number = ?3)",
    [S_ATT_INSERT] = "INSERT INTO webhook_delivery_attempt (id, webhook_delivery_id, "
                     "attempt_number, status, response_status, response_body, response_headers, "
                     "duration_ms, error_message, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                     "?8, ?9, ?10)",
    [S_DL_RESULT] = "UPDATE webhook_delivery SET status = ?2, attempt_number = ?3, "
                    "response_status = ?4, response_body = ?5, response_headers = ?6, "
                    "request_headers = ?7, request_url = ?8, error_message = ?9, duration_ms = "
                    "?10, last_attempt_at = ?11, next_retry_at = ?12, completed_at = ?13, "
                    "lease_owner = CASE WHEN ?14 THEN lease_owner ELSE NULL END, "
                    "request_headers_ref = ?15 WHERE id = ?1 AND " OPEN_STATUS,
    /* a webhook version's static request headers, stored once (see hk_result) */
    [S_HDR_INSERT] = "INSERT OR IGNORE INTO webhook_headers (ref, headers, created_at) VALUES "
                     "(?1, ?2, ?3)",
    [S_DL_RESCHEDULE] = "UPDATE webhook_delivery SET next_retry_at = ?2 WHERE id = ?1 AND "
                        "lease_owner = ?3 AND next_retry_at < ?2 AND " OPEN_STATUS,
    [S_DL_RELEASE] = "UPDATE webhook_delivery SET lease_owner = NULL, next_retry_at = ?2 WHERE "
                     "id = ?1 AND lease_owner = ?3",
    [S_NODE_UPSERT] = "INSERT INTO hk_node (id, alive_until, started_at) VALUES (?1, ?2, ?3) "
                      "ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
    [S_NODE_RECLAIM] = "UPDATE webhook_delivery SET lease_owner = NULL WHERE lease_owner IN "
                       "(SELECT id FROM hk_node WHERE alive_until < ?1)",
    [S_NODE_DELETE_DEAD] = "DELETE FROM hk_node WHERE alive_until < ?1",
    [S_WH_ROTATE] = "UPDATE webhook SET previous_secret = CASE WHEN ?2 IS NULL THEN NULL ELSE "
                    "secret END, previous_secret_expires_at = ?2 WHERE id = ?1",
    [S_DL_REPLAY] = "INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, "
                    "event_data, status, request_url, attempt_number, max_attempts, "
                    "next_retry_at, created_at, replay_of_delivery_id) SELECT ?1, d.webhook_id, "
                    "d.webhook_event_id, d.event_type, d.event_data, 'pending', ?3, 0, ?4, ?5, "
                    "?5, d.id FROM webhook_delivery d WHERE d.id = ?2",
    [S_DL_FAILED_RANGE] = "SELECT id FROM webhook_delivery WHERE webhook_id = ?1 AND status = "
                          "'failed' AND created_at >= ?2 AND (?3 IS NULL OR created_at < ?3) "
                          "ORDER BY created_at, id",
    [S_DL_WEBHOOK_OF] = "SELECT d.webhook_id FROM webhook_delivery d JOIN webhook w ON w.id = "
                        "d.webhook_id WHERE d.id = ?1 AND w.organization_id = ?2",
    /* the columns of S_CLAIM, for one row that is claimable (the due time is checked by the
     * caller) */
    [S_CLAIM_ONE] = "SELECT d.id, d.webhook_id, d.webhook_event_id, d.status, d.attempt_number, "
                    "d.max_attempts, d.next_retry_at, d.created_at, d.event_data, e.event, "
                    "e.payload, e.created_at" DL_FROM " WHERE d.id = ?1 AND d." OPEN_STATUS
                    " AND d.lease_owner IS NULL AND d.next_retry_at IS NOT NULL" FIFO_HEAD("d"),
    /* operational events: what an event about a delivery names of it */
    [S_DL_BRIEF] = "SELECT webhook_event_id, event_type FROM webhook_delivery WHERE id = ?1",
    /* a FIFO webhook's head (docs/API.md "Ordering"): its oldest open delivery, whether it is
     * leased, its due time; nothing if the webhook is not "fifo". One ordered range of the
     * index webhook_delivery_list_status per open status, the older of the two. */
    [S_FIFO_HEAD] = "SELECT id, lease_owner IS NULL, next_retry_at FROM (SELECT * FROM (SELECT "
                    "id, created_at, lease_owner, next_retry_at FROM webhook_delivery WHERE "
                    "webhook_id = ?1 AND status = 'pending' ORDER BY created_at, id LIMIT 1) "
                    "UNION ALL SELECT * FROM (SELECT id, created_at, lease_owner, next_retry_at "
                    "FROM webhook_delivery WHERE webhook_id = ?1 AND status = 'retrying' ORDER "
                    "BY created_at, id LIMIT 1)) WHERE EXISTS (SELECT 1 FROM webhook WHERE id = "
                    "?1 AND ordering = 'fifo') ORDER BY created_at, id LIMIT 1",
    /* a page of the due index in (next_retry_at, rowid) order: the index's own order */
    [S_DUE_SCAN] = "SELECT rowid, id, next_retry_at FROM webhook_delivery WHERE " OPEN_STATUS
                   " AND lease_owner IS NULL AND next_retry_at IS NOT NULL AND "
                   "(next_retry_at, rowid) > (?1, ?2) AND next_retry_at <= ?3" FIFO_HEAD(
                       "webhook_delivery") " ORDER BY next_retry_at, rowid LIMIT ?4",
    /* hookd_store_rows, in HK_TBL_* order (each count reads the table's smallest index) */
    [S_STATS_ROWS] = "SELECT (SELECT count(*) FROM webhook_event), (SELECT count(*) FROM "
                     "webhook_delivery), (SELECT count(*) FROM webhook_delivery_attempt), "
                     "(SELECT count(*) FROM webhook)",
    [S_STATS_BYTES] = "SELECT p.page_count * s.page_size FROM pragma_page_count() p, "
                      "pragma_page_size() s",
    /* retention (sq_prune): finished deliveries by the partial index webhook_delivery_finished
     * (completed_at), oldest first; ?3 is a floor below which none is left */
    [S_PR_DL_PICK] = "SELECT id, webhook_event_id FROM webhook_delivery WHERE " FINISHED_STATUS
                     " AND completed_at < ?1 AND completed_at >= ?3 ORDER BY completed_at "
                     "LIMIT ?2",
    [S_PR_ATT_DEL] = "DELETE FROM webhook_delivery_attempt WHERE webhook_delivery_id = ?1",
    [S_PR_DL_DEL] = "DELETE FROM webhook_delivery WHERE id = ?1",
    [S_PR_EV_DEL] = "DELETE FROM webhook_event WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM "
                    "webhook_delivery WHERE webhook_event_id = ?1)",
    [S_PR_EV_SCAN] = "SELECT id, created_at FROM webhook_event WHERE (created_at, id) > (?1, ?2) "
                     "AND created_at < ?3 ORDER BY created_at, id LIMIT ?4",
    [S_PR_OLDEST] = "SELECT completed_at FROM webhook_delivery WHERE " FINISHED_STATUS
                    " AND completed_at >= ?1 ORDER BY completed_at LIMIT 1",
    [S_PR_COUNT_DL] =
        "SELECT COUNT(*) FROM webhook_delivery WHERE " FINISHED_STATUS " AND completed_at < ?1",
    [S_PR_COUNT_ATT] =
        "SELECT COUNT(*) FROM webhook_delivery_attempt a JOIN webhook_delivery d "
        "ON d.id = a.webhook_delivery_id WHERE d." FINISHED_STATUS " AND d.completed_at < ?1",
    /* events with no delivery left once those finished before ?1 are gone, and either created
     * before ?2 or with a delivery that goes */
    [S_PR_COUNT_EV] =
        "SELECT COUNT(*) FROM webhook_event e WHERE NOT EXISTS (SELECT 1 FROM "
        "webhook_delivery d WHERE d.webhook_event_id = e.id AND NOT (d." FINISHED_STATUS
        " AND d.completed_at < ?1)) AND (e.created_at < ?2 OR EXISTS (SELECT 1 "
        "FROM webhook_delivery d WHERE d.webhook_event_id = e.id))",
    [S_PR_POS_GET] = "SELECT at, id FROM hk_prune_position WHERE name = 'events'",
    [S_PR_POS_SET] = "INSERT INTO hk_prune_position (name, at, id) VALUES ('events', ?1, ?2) "
                     "ON CONFLICT (name) DO UPDATE SET at = excluded.at, id = excluded.id",
};

typedef struct sq {
    hk_conn base; /* first: the group state rows.c and store.c keep (rows.h) */
    sqlite3 *db;
    int role;
    sqlite3_stmt *st[S_MAX];
    const hk_config *cfg;
} sq;

/* Maps a SQLite result code to hookd's: a store that cannot write or read is unavailable
 * (the API answers 503), a constraint is a conflict, anything else an internal error. */
static int map_rc(sq *c, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return HK_OK;
    case SQLITE_CONSTRAINT:
        return HK_ECONFLICT;
    default:
        break;
    }
    HK_LOG(HK_LOG_ERROR, "store.sqlite_error", HK_LS("op", what),
           HK_LS("msg", sqlite3_errmsg(c->db)), HK_LI("code", rc));
    return HK_EUNAVAIL;
}

/* The prepared statement id, reset and with its bindings cleared; NULL if it cannot be
 * prepared (logged). */
static sqlite3_stmt *ps(sq *c, int id)
{
    sqlite3_stmt *s = c->st[id];
    if (!s) {
        int rc =
            sqlite3_prepare_v3(c->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (rc != SQLITE_OK) {
            HK_LOG(HK_LOG_ERROR, "store.sqlite_prepare", HK_LS("msg", sqlite3_errmsg(c->db)),
                   HK_LS("sql", sql[id]));
            return NULL;
        }
        s = c->st[id];
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

static void b_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static void b_textn(sqlite3_stmt *s, int i, const char *v, size_t n)
{
    if (v)
        sqlite3_bind_text64(s, i, v, n, SQLITE_STATIC, SQLITE_UTF8);
    else
        sqlite3_bind_null(s, i);
}

static void b_i64(sqlite3_stmt *s, int i, int64_t v)
{
    sqlite3_bind_int64(s, i, v);
}

static void b_time(sqlite3_stmt *s, int i, int64_t ms)
{
    if (ms > 0)
        sqlite3_bind_int64(s, i, ms);
    else
        sqlite3_bind_null(s, i);
}

static char *c_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? hk_strndup((const char *)t, (size_t)sqlite3_column_bytes(s, i)) : NULL;
}

static void c_id(sqlite3_stmt *s, int i, char out[HK_ID_MAX])
{
    const unsigned char *t = sqlite3_column_text(s, i);
    hk_strlcpy(out, t ? (const char *)t : "", HK_ID_MAX);
}

static int64_t c_i64(sqlite3_stmt *s, int i)
{
    return sqlite3_column_int64(s, i);
}

/* Runs a statement that returns no rows. */
static int run(sq *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    int r = map_rc(c, rc, what);
    sqlite3_reset(s);
    return r;
}

#define PS(var, id)                                                                                \
    sqlite3_stmt *var = ps(c, id);                                                                 \
    if (!var) return HK_EUNAVAIL

/* ---- webhooks ------------------------------------------------------------------------------ */

static int load_subs(sq *c, hk_webhook *w)
{
    PS(s, S_SUB_LIST);
    b_text(s, 1, w->id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (w->nevents == cap) {
            cap = cap ? cap * 2 : 4;
            w->events = hk_realloc(w->events, sizeof(char *) * (size_t)cap);
        }
        w->events[w->nevents++] = c_text(s, 0);
    }
    int r = map_rc(c, rc, "subscriptions");
    sqlite3_reset(s);
    return r;
}

/* Builds a webhook from a row of WH_COLS (subscriptions not loaded). */
static hk_webhook *row_webhook(sqlite3_stmt *s)
{
    hk_webhook *w = hk_calloc(1, sizeof *w);
    c_id(s, 0, w->id);
    w->name = c_text(s, 1);
    w->url = c_text(s, 2);
    w->secret = c_text(s, 3);
    w->prev_secret = c_text(s, 4);
    w->prev_secret_expires_at = c_i64(s, 5);
    w->org_id = c_text(s, 6);
    w->user_id = c_text(s, 7);
    const char *st = (const char *)sqlite3_column_text(s, 8);
    w->status = hk_wh_status_parse(st);
    if (w->status < 0) w->status = HK_WH_ACTIVE;
    w->custom_headers = c_text(s, 9);
    w->rate_limit_enabled = (int)c_i64(s, 10);
    w->max_per_minute = (int)c_i64(s, 11);
    w->max_retries = (int)c_i64(s, 12);
    w->filtering_options = c_text(s, 13);
    w->schemes = hk_schemes_parse((const char *)sqlite3_column_text(s, 14));
    w->last_triggered_at = c_i64(s, 15);
    w->success_count = c_i64(s, 16);
    w->failure_count = c_i64(s, 17);
    w->consecutive_failures = c_i64(s, 18);
    w->deleted_at = c_i64(s, 19);
    w->created_at = c_i64(s, 20);
    w->updated_at = c_i64(s, 21);
    w->retry_schedule = c_text(s, 22);
    w->timeout_ms = (int)c_i64(s, 23);
    w->signing_key = c_text(s, 24);
    w->prev_signing_key = c_text(s, 25);
    w->prev_signing_key_expires_at = c_i64(s, 26);
    w->org_disabled = (int)c_i64(s, 27);
    const char *ord = (const char *)sqlite3_column_text(s, 28);
    w->fifo = ord && strcmp(ord, "fifo") == 0;
    return w;
}

/* Runs a prepared webhook query expected to return at most one row; *out is NULL if none. */
static int fetch_webhook(sq *c, sqlite3_stmt *s, hk_webhook **out)
{
    *out = NULL;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *out = row_webhook(s);
    int r = map_rc(c, rc, "webhook");
    sqlite3_reset(s);
    if (r == HK_OK && *out) r = load_subs(c, *out);
    if (r) {
        hk_webhook_free(*out);
        *out = NULL;
    }
    return r;
}

static int sq_webhook_get(void *conn, const char *id, const char *org, hk_webhook **out)
{
    sq *c = conn;
    PS(s, org ? S_WH_GET : S_WH_BY_ID);
    b_text(s, 1, id);
    if (org) b_text(s, 2, org);
    return fetch_webhook(c, s, out);
}

static int sq_subs_insert(void *conn, const char *wid, const char *const *events, int n,
                          int64_t now)
{
    sq *c = conn;
    for (int i = 0; i < n; i++) {
        PS(s, S_SUB_INSERT);
        char id[HK_ID_MAX];
        hk_id_new("whsub", id);
        b_text(s, 1, id);
        b_text(s, 2, wid);
        b_text(s, 3, events[i]);
        b_i64(s, 4, now);
        int rc = run(c, s, "subscription insert");
        if (rc) return rc;
    }
    return HK_OK;
}

static int sq_subs_delete(void *conn, const char *wid)
{
    sq *c = conn;
    PS(d, S_SUB_DELETE);
    b_text(d, 1, wid);
    return run(c, d, "subscription delete");
}

static int sq_webhook_park(void *conn, const char *wid)
{
    sq *c = conn;
    PS(s, S_DL_PARK_WEBHOOK);
    b_text(s, 1, wid);
    return run(c, s, "park");
}

static int sq_webhook_unpark(void *conn, const char *wid, int64_t now, int *count)
{
    sq *c = conn;
    PS(s, S_DL_UNPARK_WEBHOOK);
    b_text(s, 1, wid);
    b_i64(s, 2, now);
    int rc = run(c, s, "unpark");
    if (count) *count = sqlite3_changes(c->db);
    return rc;
}

/* The single writer makes count-then-insert race-free; the partial index webhook_org
 * (organization_id, ...) WHERE deleted_at IS NULL counts. */
static int sq_webhook_exists(void *conn, const char *id, const char *org, int *found)
{
    sq *c = conn;
    PS(s, S_WH_EXISTS);
    b_text(s, 1, id);
    b_text(s, 2, org);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    rc = map_rc(c, rc, "webhook exists");
    sqlite3_reset(s);
    return rc;
}

static int sq_webhook_count_org(void *conn, const char *org, int64_t *n)
{
    sq *c = conn;
    PS(cnt, S_WH_COUNT);
    b_text(cnt, 1, org);
    b_text(cnt, 2, NULL);
    int rc = sqlite3_step(cnt);
    *n = rc == SQLITE_ROW ? c_i64(cnt, 0) : 0;
    rc = map_rc(c, rc, "webhook count");
    sqlite3_reset(cnt);
    return rc;
}

static int sq_webhook_insert(void *conn, hk_req *req, const char *id, const hk_wh_row *w)
{
    sq *c = conn;
    PS(s, S_WH_INSERT);
    b_text(s, 1, id);
    b_text(s, 2, w->name);
    b_text(s, 3, w->url);
    b_text(s, 4, w->secret);
    b_text(s, 5, req->org_id);
    b_text(s, 6, w->user_id);
    b_text(s, 7, hk_wh_status_name(w->status));
    b_text(s, 8, w->custom_headers);
    b_i64(s, 9, w->rate_limit_enabled);
    b_i64(s, 10, w->max_per_minute);
    b_i64(s, 11, w->max_retries);
    b_text(s, 12, w->filtering_options);
    b_text(s, 13, w->schemes);
    b_i64(s, 14, req->now);
    b_text(s, 15, w->retry_schedule);
    b_time(s, 16, w->timeout_ms);
    b_text(s, 17, w->signing_key);
    b_text(s, 18, w->fifo ? "fifo" : "parallel");
    return run(c, s, "webhook insert");
}

static int sq_webhook_rotate(void *conn, const char *id, int64_t expires)
{
    sq *c = conn;
    PS(r, S_WH_ROTATE);
    b_text(r, 1, id);
    b_time(r, 2, expires);
    return run(c, r, "webhook rotate");
}

static int sq_webhook_update(void *conn, const char *id, const hk_wh_row *w)
{
    sq *c = conn;
    PS(s, S_WH_UPDATE);
    b_text(s, 1, id);
    b_text(s, 2, w->name);
    b_text(s, 3, w->url);
    b_text(s, 4, w->secret);
    b_text(s, 5, hk_wh_status_name(w->status));
    b_text(s, 6, w->custom_headers);
    b_i64(s, 7, w->rate_limit_enabled);
    b_i64(s, 8, w->max_per_minute);
    b_i64(s, 9, w->max_retries);
    b_text(s, 10, w->filtering_options);
    b_text(s, 11, w->schemes);
    b_text(s, 12, w->user_id);
    b_i64(s, 13, w->consecutive_failures);
    b_i64(s, 14, w->updated_at);
    b_text(s, 15, w->retry_schedule);
    b_time(s, 16, w->timeout_ms);
    b_text(s, 17, w->signing_key);
    b_text(s, 18, w->prev_signing_key);
    b_time(s, 19, w->prev_signing_key_expires_at);
    b_i64(s, 20, w->recovering != 0);
    b_text(s, 21, w->fifo ? "fifo" : "parallel");
    return run(c, s, "webhook update");
}

/* A list's bounded count (backend.h): *total = min(rows, HK_LIST_COUNT_CAP), *capped = 1 if
 * there are more. filter NULL: the unfiltered statement `id`, else `id + 1`'s (the _F one). */
static int list_count(sq *c, int id, const char *scope, const char *filter, int64_t *total,
                      int *capped)
{
    PS(s, filter ? id + 1 : id);
    b_text(s, 1, scope);
    if (filter) b_text(s, 2, filter);
    b_i64(s, 3, HK_LIST_COUNT_CAP + 1);
    int rc = sqlite3_step(s);
    int64_t n = rc == SQLITE_ROW ? c_i64(s, 0) : 0;
    rc = map_rc(c, rc, "list count");
    sqlite3_reset(s);
    *capped = n > HK_LIST_COUNT_CAP;
    *total = *capped ? HK_LIST_COUNT_CAP : n;
    return rc;
}

/* The page statement of a list (backend.h), bound: `id` unfiltered, `id + 1` with filter. */
static sqlite3_stmt *list_page(sq *c, int id, const char *scope, const char *filter, int page,
                               int limit, const hk_cursor *after)
{
    sqlite3_stmt *s = ps(c, filter ? id + 1 : id);
    if (!s) return NULL;
    b_text(s, 1, scope);
    if (filter) b_text(s, 2, filter);
    b_i64(s, 3, (int64_t)limit + 1);
    b_i64(s, 4, (int64_t)(page - 1) * limit);
    b_i64(s, 5, after->id[0] ? after->at : HK_CURSOR_TOP);
    b_text(s, 6, after->id);
    return s;
}

static int sq_webhook_list(void *conn, hk_req *req)
{
    sq *c = conn;
    const char *status =
        req->u.wh_list.status >= 0 ? hk_wh_status_name(req->u.wh_list.status) : NULL;
    int rc =
        list_count(c, S_WH_NUM, req->org_id, status, &req->u.wh_list.total, &req->u.wh_list.capped);
    if (rc) return rc;
    sqlite3_stmt *s = list_page(c, S_WH_LIST, req->org_id, status, req->u.wh_list.page,
                                req->u.wh_list.limit, &req->u.wh_list.after);
    if (!s) return HK_EUNAVAIL;
    int cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (req->u.wh_list.n == cap) {
            cap = cap ? cap * 2 : 16;
            req->u.wh_list.items =
                hk_realloc(req->u.wh_list.items, sizeof(hk_webhook *) * (size_t)cap);
        }
        req->u.wh_list.items[req->u.wh_list.n++] = row_webhook(s);
    }
    rc = map_rc(c, rc, "webhook list");
    sqlite3_reset(s);
    for (int i = 0; !rc && i < req->u.wh_list.n; i++) rc = load_subs(c, req->u.wh_list.items[i]);
    return rc;
}

static int sq_webhook_delete(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_WH_DELETE);
    b_text(s, 1, req->u.wh_delete.id);
    b_text(s, 2, req->org_id);
    b_i64(s, 3, req->now);
    int rc = run(c, s, "webhook delete");
    if (rc) return rc;
    if (sqlite3_changes(c->db) == 0) return HK_ENOTFOUND;
    PS(f, S_DL_FAIL_WEBHOOK);
    b_text(f, 1, req->u.wh_delete.id);
    b_i64(f, 2, req->now);
    rc = run(c, f, "fail deliveries");
    req->u.wh_delete.failed = sqlite3_changes(c->db);
    return rc;
}

static int sq_webhook_load(void *conn, hk_req *req)
{
    req->u.wh_load.items =
        hk_calloc((size_t)(req->u.wh_load.nids ? req->u.wh_load.nids : 1), sizeof(hk_webhook *));
    for (int i = 0; i < req->u.wh_load.nids; i++) {
        hk_webhook *w = NULL;
        int rc = sq_webhook_get(conn, req->u.wh_load.ids[i], NULL, &w);
        if (rc) return rc;
        if (w) req->u.wh_load.items[req->u.wh_load.n++] = w;
    }
    return HK_OK;
}

static int sq_org_webhooks(void *conn, const char *org, hk_fanout_org *o)
{
    sq *c = conn;
    PS(s, S_WH_ORG);
    b_text(s, 1, org);
    int rc, n = 0, cap = 0;
    hk_webhook **whs = NULL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            whs = hk_realloc(whs, sizeof *whs * (size_t)cap);
        }
        whs[n++] = row_webhook(s);
    }
    int r = map_rc(c, rc, "org webhooks");
    sqlite3_reset(s);
    /* subscriptions before hk_fanout_add: a candidate is read-only once added */
    for (int i = 0; !r && i < n; i++) r = load_subs(c, whs[i]);
    return hk_fanout_take(o, whs, n, r);
}

static int sq_org_version(void *conn, const char *org, int64_t *version)
{
    sq *c = conn;
    PS(s, S_ORG_VERSION);
    b_text(s, 1, org);
    int rc = sqlite3_step(s);
    *version = rc == SQLITE_ROW ? c_i64(s, 0) : 0;
    int r = map_rc(c, rc, "org version");
    sqlite3_reset(s);
    return r;
}

/* ---- API keys ------------------------------------------------------------------------------ */

static void row_key(sqlite3_stmt *s, hk_apikey *k)
{
    c_id(s, 0, k->id);
    k->org_id = c_text(s, 1);
    k->name = c_text(s, 2);
    k->prefix = c_text(s, 3);
    k->created_at = c_i64(s, 4);
    k->revoked_at = c_i64(s, 5);
    k->last_used_at = c_i64(s, 6);
    k->scope = hk_scope_parse((const char *)sqlite3_column_text(s, 7)) == HK_SCOPE_READ
                   ? HK_SCOPE_READ
                   : HK_SCOPE_FULL;
    k->org_disabled = (int)c_i64(s, 8);
}

static int sq_key_by_hash(void *conn, const char *hash, hk_apikey *k, int *found)
{
    sq *c = conn;
    PS(s, S_KEY_BY_HASH);
    b_text(s, 1, hash);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) row_key(s, k);
    int r = map_rc(c, rc, "key lookup");
    sqlite3_reset(s);
    return r;
}

static int sq_key_insert(void *conn, hk_req *req, const char *id)
{
    sq *c = conn;
    PS(s, S_KEY_INSERT);
    b_text(s, 1, id);
    b_text(s, 2, req->org_id);
    b_text(s, 3, req->u.key_create.name);
    b_text(s, 4, req->u.key_create.key_hash);
    b_text(s, 5, req->u.key_create.prefix);
    b_i64(s, 6, req->now);
    b_text(s, 7, hk_scope_name(req->u.key_create.scope));
    return run(c, s, "key insert");
}

static int sq_key_list(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_KEY_LIST);
    b_text(s, 1, req->u.key_list.org);
    int rc, cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (req->u.key_list.n == cap) {
            cap = cap ? cap * 2 : 16;
            req->u.key_list.items =
                hk_realloc(req->u.key_list.items, sizeof(hk_apikey) * (size_t)cap);
        }
        hk_apikey *k = &req->u.key_list.items[req->u.key_list.n++];
        memset(k, 0, sizeof *k);
        row_key(s, k);
    }
    int r = map_rc(c, rc, "key list");
    sqlite3_reset(s);
    return r;
}

static int sq_key_revoke(void *conn, hk_req *req, int64_t *changed)
{
    sq *c = conn;
    PS(s, S_KEY_REVOKE);
    b_text(s, 1, req->u.key_revoke.id);
    b_i64(s, 2, req->now);
    b_text(s, 3, req->u.key_revoke.org);
    int rc = run(c, s, "key revoke");
    *changed = sqlite3_changes(c->db);
    return rc;
}

static int sq_key_count(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_KEY_COUNT);
    int rc = sqlite3_step(s);
    req->u.key_count.count = rc == SQLITE_ROW ? c_i64(s, 0) : 0;
    int r = map_rc(c, rc, "key count");
    sqlite3_reset(s);
    return r;
}

/* ---- organizations ------------------------------------------------------------------------- */

static void row_org(sqlite3_stmt *s, hk_org *o)
{
    const unsigned char *id = sqlite3_column_text(s, 0);
    hk_strlcpy(o->id, id ? (const char *)id : "", sizeof o->id);
    o->name = c_text(s, 1);
    o->metadata = c_text(s, 2);
    o->disabled = c_i64(s, 3) != 0;
    o->created_at = c_i64(s, 4);
    o->updated_at = c_i64(s, 5);
}

static int sq_org_insert(void *conn, hk_req *req, const char *id)
{
    sq *c = conn;
    PS(s, S_ORG_INSERT);
    b_text(s, 1, id);
    b_text(s, 2, (req->u.org.has & HK_OF_NAME) ? req->u.org.name : id);
    b_text(s, 3, (req->u.org.has & HK_OF_METADATA) ? req->u.org.metadata : "{}");
    b_i64(s, 4, (req->u.org.has & HK_OF_DISABLED) && req->u.org.disabled);
    b_i64(s, 5, req->now);
    return run(c, s, "organization insert");
}

static int sq_org_ensure(void *conn, const char *id, int64_t now)
{
    sq *c = conn;
    PS(s, S_ORG_ENSURE);
    b_text(s, 1, id);
    b_i64(s, 2, now);
    return run(c, s, "organization ensure");
}

static int sq_org_get(void *conn, const char *id, hk_org *out, int *found)
{
    sq *c = conn;
    PS(s, S_ORG_GET);
    b_text(s, 1, id);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) row_org(s, out);
    int r = map_rc(c, rc, "organization");
    sqlite3_reset(s);
    return r;
}

static int sq_org_list(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(cnt, S_ORG_COUNT);
    b_i64(cnt, 1, HK_LIST_COUNT_CAP + 1);
    int rc = sqlite3_step(cnt);
    int64_t total = rc == SQLITE_ROW ? c_i64(cnt, 0) : 0;
    req->u.org_list.capped = total > HK_LIST_COUNT_CAP;
    req->u.org_list.total = HK_MIN(total, HK_LIST_COUNT_CAP);
    rc = map_rc(c, rc, "organization count");
    sqlite3_reset(cnt);
    if (rc) return rc;
    PS(s, S_ORG_LIST);
    const hk_cursor *after = &req->u.org_list.after;
    b_i64(s, 1, (int64_t)req->u.org_list.limit + 1);
    b_i64(s, 2, (int64_t)(req->u.org_list.page - 1) * req->u.org_list.limit);
    b_i64(s, 3, after->id[0] ? after->at : HK_CURSOR_TOP);
    b_text(s, 4, after->id);
    int cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (req->u.org_list.n == req->u.org_list.limit) { /* the one beyond: a page follows */
            req->u.org_list.more = 1;
            break;
        }
        if (req->u.org_list.n == cap) {
            cap = cap ? cap * 2 : 16;
            req->u.org_list.items = hk_realloc(req->u.org_list.items, sizeof(hk_org) * (size_t)cap);
        }
        hk_org *o = &req->u.org_list.items[req->u.org_list.n++];
        memset(o, 0, sizeof *o);
        row_org(s, o);
    }
    rc = map_rc(c, rc, "organization list");
    sqlite3_reset(s);
    return rc;
}

static int sq_org_update(void *conn, const hk_org *o, int64_t now)
{
    sq *c = conn;
    PS(s, S_ORG_UPDATE);
    b_text(s, 1, o->id);
    b_text(s, 2, o->name);
    b_text(s, 3, o->metadata);
    b_i64(s, 4, o->disabled);
    b_i64(s, 5, now);
    return run(c, s, "organization update");
}

static int sq_org_park(void *conn, const char *org)
{
    sq *c = conn;
    PS(s, S_ORG_PARK);
    b_text(s, 1, org);
    return run(c, s, "organization park");
}

static int sq_org_unpark(void *conn, const char *org, int64_t now, int *count)
{
    sq *c = conn;
    PS(s, S_ORG_UNPARK);
    b_text(s, 1, org);
    b_i64(s, 2, now);
    int rc = run(c, s, "organization unpark");
    if (count) *count = sqlite3_changes(c->db);
    return rc;
}

/* ---- portal sessions ----------------------------------------------------------------------- */

static int sq_session_insert(void *conn, hk_req *req, const char *id, const char *webhook_ids)
{
    sq *c = conn;
    PS(s, S_SESSION_INSERT);
    b_text(s, 1, id);
    b_text(s, 2, req->org_id);
    b_text(s, 3, req->u.session.token_hash);
    b_text(s, 4, hk_scope_name(req->u.session.scope));
    b_i64(s, 5, req->now);
    b_i64(s, 6, req->u.session.expires_at);
    b_text(s, 7, webhook_ids);
    return run(c, s, "session insert");
}

static int sq_session_by_hash(void *conn, const char *hash, hk_apikey *k, int64_t *expires,
                              char **webhook_ids, int *found)
{
    sq *c = conn;
    PS(s, S_SESSION_BY_HASH);
    b_text(s, 1, hash);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) {
        c_id(s, 0, k->id);
        k->org_id = c_text(s, 1);
        k->scope = hk_scope_parse((const char *)sqlite3_column_text(s, 2)) == HK_SCOPE_READ
                       ? HK_SCOPE_READ
                       : HK_SCOPE_FULL;
        k->revoked_at = c_i64(s, 3);
        *expires = c_i64(s, 4);
        k->org_disabled = (int)c_i64(s, 5);
        *webhook_ids = c_text(s, 6);
    }
    int r = map_rc(c, rc, "session lookup");
    sqlite3_reset(s);
    return r;
}

static int sq_session_revoke(void *conn, hk_req *req, int64_t *changed)
{
    sq *c = conn;
    PS(s, S_SESSION_REVOKE);
    b_text(s, 1, req->u.session.id);
    b_i64(s, 2, req->now);
    b_text(s, 3, req->org_id);
    int rc = run(c, s, "session revoke");
    *changed = sqlite3_changes(c->db);
    return rc;
}

/* ---- ingest -------------------------------------------------------------------------------- */

/* hk_ingest_sink: the event row, at once. */
static int sink_event(void *ctx, hk_req *req, hk_ingest_item *it)
{
    sq *c = ctx;
    PS(s, S_EV_INSERT);
    b_text(s, 1, it->id);
    b_text(s, 2, it->type);
    b_textn(s, 3, it->data, it->data_len);
    b_text(s, 4, it->source ? it->source : "api");
    b_text(s, 5, it->idem_key);
    b_text(s, 6, req->org_id);
    b_text(s, 7, it->user_id);
    b_i64(s, 8, req->now);
    return run(c, s, "event insert");
}

/* hk_ingest_sink: one delivery row, at once. */
static int sink_delivery(void *ctx, hk_req *req, hk_ingest_item *it, const hk_new_delivery *d)
{
    sq *c = ctx;
    PS(s, S_DL_INSERT);
    b_text(s, 1, d->id);
    b_text(s, 2, d->wh->id);
    b_text(s, 3, it->id);
    b_text(s, 4, it->type);
    b_textn(s, 5, d->data, d->data_len);
    b_text(s, 6, d->wh->url);
    b_i64(s, 7, d->wh->max_retries + 1);
    b_time(s, 8, d->due);
    b_i64(s, 9, req->now);
    b_text(s, 10, d->lease);
    return run(c, s, "delivery insert");
}

/* opev_insert (backend.h): an operational event and its deliveries, at once. */
static int sq_opev_insert(void *conn, const char *org, const hk_ingest_item *it,
                          const hk_new_delivery *ds, int nd, int64_t now)
{
    sq *c = conn;
    int rc;
    {
        PS(s, S_EV_INSERT);
        b_text(s, 1, it->id);
        b_text(s, 2, it->type);
        b_textn(s, 3, it->data, it->data_len);
        b_text(s, 4, it->source);
        b_text(s, 5, NULL);
        b_text(s, 6, org);
        b_text(s, 7, NULL);
        b_i64(s, 8, now);
        if ((rc = run(c, s, "operational event insert"))) return rc;
    }
    for (int i = 0; i < nd; i++) {
        const hk_new_delivery *d = &ds[i];
        PS(s, S_DL_INSERT);
        b_text(s, 1, d->id);
        b_text(s, 2, d->wh->id);
        b_text(s, 3, it->id);
        b_text(s, 4, it->type);
        b_textn(s, 5, d->data, d->data_len);
        b_text(s, 6, d->wh->url);
        b_i64(s, 7, d->wh->max_retries + 1);
        b_time(s, 8, d->due);
        b_i64(s, 9, now);
        b_text(s, 10, NULL);
        if ((rc = run(c, s, "operational delivery insert"))) return rc;
    }
    return HK_OK;
}

/* delivery_brief (backend.h). */
static int sq_delivery_brief(void *conn, const char *id, char eid[HK_ID_MAX], char *type,
                             size_t typelen, int *found)
{
    sq *c = conn;
    PS(s, S_DL_BRIEF);
    b_text(s, 1, id);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) {
        c_id(s, 0, eid);
        const unsigned char *t = sqlite3_column_text(s, 1);
        hk_strlcpy(type, t ? (const char *)t : "", typelen);
    }
    int r = map_rc(c, rc, "delivery brief");
    sqlite3_reset(s);
    return r;
}

/* Item idx: a duplicate of a stored event (idempotency key), or a new event (rows.c). */
static int ingest_one(sq *c, hk_req *req, int idx, hk_fanout_org *o, int *budget)
{
    hk_ingest_item *it = &req->u.ingest.items[idx];
    if (it->idem_key) {
        PS(s, S_EV_BY_IDEM);
        b_text(s, 1, req->org_id);
        b_text(s, 2, it->idem_key);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            c_id(s, 0, it->id);
            it->dup_type = c_text(s, 1);
            it->duplicate = 1;
        }
        int r = map_rc(c, rc, "idempotency lookup");
        sqlite3_reset(s);
        if (r) return r;
        if (it->duplicate) {
            PS(n, S_DL_COUNT_EVENT);
            b_text(n, 1, it->id);
            rc = sqlite3_step(n);
            it->ndeliveries = rc == SQLITE_ROW ? (int)c_i64(n, 0) : 0;
            r = map_rc(c, rc, "delivery count");
            sqlite3_reset(n);
            return r;
        }
    }
    hk_ingest_sink sink = {sink_event, sink_delivery, c};
    return hk_ingest_event(&c->base, req, idx, o, budget, &sink);
}

static int sq_ingest(void *conn, hk_req *req)
{
    sq *c = conn;
    hk_fanout_org *o = NULL;
    int rc = hk_org_candidates(&c->base, c, &sq_ops, req->org_id, &o);
    if (rc) return rc;
    int budget = req->u.ingest.lease_budget;
    for (int i = 0; i < req->u.ingest.n && !rc; i++) {
        hk_ingest_item *it = &req->u.ingest.items[i];
        /* A key repeated inside one request: the later item is a duplicate of the earlier. */
        int dup_of = -1;
        for (int k = 0; it->idem_key && k < i; k++)
            if (req->u.ingest.items[k].idem_key &&
                strcmp(req->u.ingest.items[k].idem_key, it->idem_key) == 0) {
                dup_of = k;
                break;
            }
        if (dup_of >= 0) {
            hk_ingest_copy_dup(it, &req->u.ingest.items[dup_of]);
            continue;
        }
        rc = ingest_one(c, req, i, o, &budget);
    }
    return rc;
}

/* ---- events and deliveries ----------------------------------------------------------------- */

static void row_event(sqlite3_stmt *s, hk_event *e)
{
    c_id(s, 0, e->id);
    e->type = c_text(s, 1);
    e->payload = c_text(s, 2);
    e->source = c_text(s, 3);
    e->idempotency_key = c_text(s, 4);
    e->org_id = c_text(s, 5);
    e->user_id = c_text(s, 6);
    e->created_at = c_i64(s, 7);
}

static int sq_event_list(void *conn, hk_req *req)
{
    sq *c = conn;
    int rc = list_count(c, S_EV_NUM, req->org_id, req->u.ev_list.type, &req->u.ev_list.total,
                        &req->u.ev_list.capped);
    if (rc) return rc;
    sqlite3_stmt *s = list_page(c, S_EV_LIST, req->org_id, req->u.ev_list.type, req->u.ev_list.page,
                                req->u.ev_list.limit, &req->u.ev_list.after);
    if (!s) return HK_EUNAVAIL;
    int cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (req->u.ev_list.n == cap) {
            cap = cap ? cap * 2 : 16;
            req->u.ev_list.items = hk_realloc(req->u.ev_list.items, sizeof(hk_event) * (size_t)cap);
        }
        hk_event *e = &req->u.ev_list.items[req->u.ev_list.n++];
        memset(e, 0, sizeof *e);
        row_event(s, e);
    }
    rc = map_rc(c, rc, "event list");
    sqlite3_reset(s);
    return rc;
}

static int sq_event_get(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_EV_GET);
    b_text(s, 1, req->u.ev_get.id);
    b_text(s, 2, req->org_id);
    int rc = sqlite3_step(s);
    int found = rc == SQLITE_ROW;
    if (found) row_event(s, &req->u.ev_get.out);
    rc = map_rc(c, rc, "event get");
    sqlite3_reset(s);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    PS(d, S_EV_DELIVERIES);
    b_text(d, 1, req->u.ev_get.id);
    hk_event *e = &req->u.ev_get.out;
    int cap = 0;
    while ((rc = sqlite3_step(d)) == SQLITE_ROW) {
        if (e->ndeliveries == cap) {
            cap = cap ? cap * 2 : 8;
            e->deliveries = hk_realloc(e->deliveries, sizeof(hk_event_delivery) * (size_t)cap);
        }
        hk_event_delivery *ed = &e->deliveries[e->ndeliveries++];
        c_id(d, 0, ed->id);
        c_id(d, 1, ed->webhook_id);
        ed->status = hk_dl_status_parse((const char *)sqlite3_column_text(d, 2));
    }
    rc = map_rc(c, rc, "event deliveries");
    sqlite3_reset(d);
    return rc;
}

static void row_delivery(sqlite3_stmt *s, hk_delivery *d)
{
    c_id(s, 0, d->id);
    c_id(s, 1, d->webhook_id);
    c_id(s, 2, d->event_id);
    c_id(s, 3, d->replay_of);
    d->event_type = c_text(s, 4);
    d->event_data = c_text(s, 5);
    d->event_created_at = c_i64(s, 6);
    d->status = hk_dl_status_parse((const char *)sqlite3_column_text(s, 7));
    d->request_url = c_text(s, 8);
    d->request_headers = c_text(s, 9);
    d->response_status = (int)c_i64(s, 10);
    d->response_body = c_text(s, 11);
    d->response_headers = c_text(s, 12);
    d->attempt_number = (int)c_i64(s, 13);
    d->max_attempts = (int)c_i64(s, 14);
    d->next_retry_at = c_i64(s, 15);
    d->last_attempt_at = c_i64(s, 16);
    d->error_message = c_text(s, 17);
    d->completed_at = c_i64(s, 18);
    d->duration_ms = (int)c_i64(s, 19);
    d->created_at = c_i64(s, 20);
    d->request_headers_static = c_text(s, 21);
}

static int load_attempts(sq *c, hk_delivery *d)
{
    PS(s, S_ATT_LIST);
    b_text(s, 1, d->id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (d->nattempts == cap) {
            cap = cap ? cap * 2 : 4;
            d->attempts = hk_realloc(d->attempts, sizeof(hk_attempt) * (size_t)cap);
        }
        hk_attempt *a = &d->attempts[d->nattempts++];
        memset(a, 0, sizeof *a);
        c_id(s, 0, a->id);
        a->attempt_number = (int)c_i64(s, 1);
        a->status = hk_dl_status_parse((const char *)sqlite3_column_text(s, 2));
        a->response_status = (int)c_i64(s, 3);
        a->response_body = c_text(s, 4);
        a->response_headers = c_text(s, 5);
        a->duration_ms = (int)c_i64(s, 6);
        a->error_message = c_text(s, 7);
        a->created_at = c_i64(s, 8);
    }
    int r = map_rc(c, rc, "attempts");
    sqlite3_reset(s);
    return r;
}

static int sq_delivery_list(void *conn, hk_req *req)
{
    sq *c = conn;
    const char *status =
        req->u.dl_list.status >= 0 ? hk_dl_status_name(req->u.dl_list.status) : NULL;
    int rc = list_count(c, S_DL_NUM, req->u.dl_list.webhook_id, status, &req->u.dl_list.total,
                        &req->u.dl_list.capped);
    if (rc) return rc;
    sqlite3_stmt *s = list_page(c, S_DL_LIST, req->u.dl_list.webhook_id, status,
                                req->u.dl_list.page, req->u.dl_list.limit, &req->u.dl_list.after);
    if (!s) return HK_EUNAVAIL;
    int cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (req->u.dl_list.n == cap) {
            cap = cap ? cap * 2 : 16;
            req->u.dl_list.items =
                hk_realloc(req->u.dl_list.items, sizeof(hk_delivery) * (size_t)cap);
        }
        hk_delivery *d = &req->u.dl_list.items[req->u.dl_list.n++];
        memset(d, 0, sizeof *d);
        row_delivery(s, d);
    }
    rc = map_rc(c, rc, "delivery list");
    sqlite3_reset(s);
    for (int i = 0; !rc && i < req->u.dl_list.n; i++)
        rc = load_attempts(c, &req->u.dl_list.items[i]);
    return rc;
}

static void b_opt_i64(sqlite3_stmt *s, int i, int64_t v) /* 0 = NULL */
{
    if (v)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static int sq_delivery_search(void *conn, hk_req *req)
{
    sq *c = conn;
    int rc;
    PS(s, S_DL_SEARCH);
    b_text(s, 1, req->org_id);
    b_text(s, 2, req->u.dl_search.status >= 0 ? hk_dl_status_name(req->u.dl_search.status) : NULL);
    b_text(s, 3, req->u.dl_search.event_type);
    b_text(s, 4, req->u.dl_search.webhook_id);
    b_text(s, 5, req->u.dl_search.event_id);
    b_text(s, 6, req->u.dl_search.delivery_id);
    b_text(s, 7, req->u.dl_search.idem_key);
    b_opt_i64(s, 8, req->u.dl_search.since);
    b_opt_i64(s, 9, req->u.dl_search.until);
    b_opt_i64(s, 10, req->u.dl_search.before_at);
    b_text(s, 11, req->u.dl_search.before_id ? req->u.dl_search.before_id : "");
    b_i64(s, 12, req->u.dl_search.limit + 1);
    int cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (req->u.dl_search.n == cap) {
            cap = cap ? cap * 2 : 16;
            req->u.dl_search.items =
                hk_realloc(req->u.dl_search.items, sizeof(hk_delivery) * (size_t)cap);
        }
        hk_delivery *d = &req->u.dl_search.items[req->u.dl_search.n++];
        memset(d, 0, sizeof *d);
        row_delivery(s, d);
    }
    rc = map_rc(c, rc, "delivery search");
    sqlite3_reset(s);
    for (int i = 0; !rc && i < req->u.dl_search.n; i++)
        rc = load_attempts(c, &req->u.dl_search.items[i]);
    return rc;
}

static int sq_delivery_get(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_DL_GET);
    b_text(s, 1, req->u.dl_get.id);
    b_text(s, 2, req->org_id);
    int rc = sqlite3_step(s);
    int found = rc == SQLITE_ROW;
    if (found) row_delivery(s, &req->u.dl_get.out);
    rc = map_rc(c, rc, "delivery get");
    sqlite3_reset(s);
    if (rc) return rc;
    if (!found) return HK_ENOTFOUND;
    return load_attempts(c, &req->u.dl_get.out);
}

/* ---- scheduling ---------------------------------------------------------------------------- */

typedef struct claim_acc { /* what a claim collects before it leases */
    hk_bodies bodies;      /* each event's envelope, shared by its jobs */
    hk_webhook **whs;      /* every webhook seen, active or not (placeholders first) */
    int nwhs;
    hk_map idx; /* webhook id -> its index in whs + 1 (keys inside whs[i]) */
} claim_acc;

/* The webhook of a's jobs with this id, or NULL. */
static hk_webhook *claim_webhook(claim_acc *a, const char *id)
{
    intptr_t k = (intptr_t)hk_map_get(&a->idx, id);
    return k ? a->whs[k - 1] : NULL;
}

/* Turns the current row of an S_CLAIM / S_CLAIM_ONE statement into a job of req (rows.c) and
 * notes its webhook. */
static void claim_take_row(hk_req *req, sqlite3_stmt *s, claim_acc *a)
{
    hk_job_row r;
    r.id = (const char *)sqlite3_column_text(s, 0);
    r.webhook_id = (const char *)sqlite3_column_text(s, 1);
    r.event_id = (const char *)sqlite3_column_text(s, 2);
    r.status = (const char *)sqlite3_column_text(s, 3);
    r.attempt_number = (int)c_i64(s, 4);
    r.max_attempts = (int)c_i64(s, 5);
    r.due = c_i64(s, 6);
    r.created = c_i64(s, 7);
    r.data = NULL;
    r.data_len = 0;
    if (sqlite3_column_type(s, 8) != SQLITE_NULL) {
        r.data = (const char *)sqlite3_column_text(s, 8);
        r.data_len = (size_t)sqlite3_column_bytes(s, 8);
    }
    r.type = (const char *)sqlite3_column_text(s, 9);
    r.payload = (const char *)sqlite3_column_text(s, 10);
    r.payload_len = (size_t)sqlite3_column_bytes(s, 10);
    r.ev_created = c_i64(s, 11);
    hk_job *j = hk_job_from_row(&r, &a->bodies);
    if (!claim_webhook(a, j->webhook_id)) {
        /* Loaded after the scan: the statement is still stepping. Use a placeholder. */
        a->whs = hk_realloc(a->whs, sizeof(hk_webhook *) * (size_t)(a->nwhs + 1));
        hk_webhook *wh = a->whs[a->nwhs++] = hk_calloc(1, sizeof(hk_webhook));
        hk_strlcpy(wh->id, j->webhook_id, sizeof wh->id);
        wh->status = -1; /* unknown yet */
        hk_map_put(&a->idx, wh->id, (void *)(intptr_t)a->nwhs);
    }
    hk_out_job(&req->u.claim.jobs, &req->u.claim.njobs, j);
}

/* The second half of a claim: loads the webhooks of the jobs collected, leases the jobs of
 * active webhooks to node_id and parks the others (counted in `parked`). rc is the result so
 * far (nothing is leased if it is not 0). Frees a's contents; returns the result. */
static int claim_finish(sq *c, hk_req *req, claim_acc *a, int rc)
{
    char(*park)[HK_ID_MAX] = NULL;
    int npark = 0;
    hk_bodies_free(&a->bodies);
    for (int i = 0; !rc && i < a->nwhs; i++) {
        hk_webhook *w = NULL;
        rc = sq_webhook_get(c, a->whs[i]->id, NULL, &w);
        if (!rc && w) {
            hk_map_del(&a->idx, a->whs[i]->id);
            hk_webhook_free(a->whs[i]);
            a->whs[i] = w;
            hk_map_put(&a->idx, w->id, (void *)(intptr_t)(i + 1));
        }
    }
    int kept = 0;
    for (int i = 0; i < req->u.claim.njobs; i++) {
        hk_job *j = req->u.claim.jobs[i];
        req->u.claim.jobs[i] = NULL;
        if (rc) { /* failed already: the request's outputs are dropped */
            hk_job_free(j);
            continue;
        }
        hk_webhook *wh = claim_webhook(a, j->webhook_id);
        if (!hk_claim_keeps(wh)) {
            park = hk_realloc(park, sizeof *park * (size_t)(npark + 1));
            hk_strlcpy(park[npark++], j->id, HK_ID_MAX);
            hk_job_free(j);
            continue;
        }
        sqlite3_stmt *l = ps(c, S_DL_LEASE);
        rc = l ? HK_OK : HK_EUNAVAIL;
        if (l) {
            b_text(l, 1, j->id);
            b_text(l, 2, req->node_id);
            rc = run(c, l, "lease");
        }
        if (rc) {
            hk_job_free(j);
            continue;
        }
        req->u.claim.jobs[kept++] = j;
        hk_out_webhook(&req->u.claim.webhooks, &req->u.claim.nwebhooks, &req->u.claim.webhooks_seen,
                       wh);
    }
    req->u.claim.njobs = kept;
    for (int i = 0; !rc && i < npark; i++) {
        sqlite3_stmt *p = ps(c, S_DL_PARK);
        if (!p) {
            rc = HK_EUNAVAIL;
            break;
        }
        b_text(p, 1, park[i]);
        rc = run(c, p, "park one");
    }
    req->u.claim.parked += npark;
    free(park);
    hk_map_free(&a->idx);
    for (int i = 0; i < a->nwhs; i++) hk_webhook_free(a->whs[i]);
    free(a->whs);
    memset(a, 0, sizeof *a);
    return rc;
}

static int sq_claim(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_CLAIM);
    b_i64(s, 1, req->now + req->u.claim.horizon);
    b_i64(s, 2, req->u.claim.limit);
    claim_acc a;
    memset(&a, 0, sizeof a);
    hk_bodies_init(&a.bodies);
    req->u.claim.parked = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) claim_take_row(req, s, &a);
    rc = map_rc(c, rc, "claim scan");
    sqlite3_reset(s);
    return claim_finish(c, req, &a, rc);
}

/* CLAIM_IDS (store.h): each id is confirmed against its row before it is leased. */
static int sq_claim_ids(void *conn, hk_req *req)
{
    sq *c = conn;
    int64_t until = req->now + req->u.claim.horizon;
    claim_acc a;
    memset(&a, 0, sizeof a);
    hk_bodies_init(&a.bodies);
    req->u.claim.parked = 0;
    int rc = HK_OK;
    for (int i = 0; !rc && i < req->u.claim.nids; i++) {
        sqlite3_stmt *s = ps(c, S_CLAIM_ONE);
        if (!s) {
            rc = HK_EUNAVAIL;
            break;
        }
        b_text(s, 1, req->u.claim.ids[i]);
        int st = sqlite3_step(s);
        if (st == SQLITE_ROW) {
            int64_t due = c_i64(s, 6);
            if (due <= until) {
                claim_take_row(req, s, &a);
            } else {
                char id[HK_ID_MAX];
                c_id(s, 0, id);
                hk_out_release(&req->u.claim.later, &req->u.claim.nlater, id, due);
            }
        } /* no row: unknown, finished, parked or leased; the row says no */
        rc = map_rc(c, st, "claim row");
        sqlite3_reset(s);
    }
    return claim_finish(c, req, &a, rc);
}

/* DUE_SCAN (store.h). The cursor is "<next_retry_at>:<rowid>" of the last row returned. */
static int sq_due_scan(void *conn, hk_req *req)
{
    sq *c = conn;
    int64_t after_due = INT64_MIN, after_row = 0;
    const char *cur = req->u.due_scan.cursor;
    const char *colon = strchr(cur, ':');
    if (cur[0] && colon) {
        char a[32], b[32];
        size_t la = (size_t)(colon - cur);
        if (la >= sizeof a || strlen(colon + 1) >= sizeof b) return HK_EINVAL;
        memcpy(a, cur, la);
        a[la] = '\0';
        hk_strlcpy(b, colon + 1, sizeof b);
        if (hk_parse_int64(a, INT64_MIN, INT64_MAX, &after_due) ||
            hk_parse_int64(b, INT64_MIN, INT64_MAX, &after_row)) {
            snprintf(req->err, sizeof req->err, "bad due-scan cursor");
            return HK_EINVAL;
        }
    }
    int limit = req->u.due_scan.limit > 0 ? req->u.due_scan.limit : 1000;
    PS(s, S_DUE_SCAN);
    b_i64(s, 1, after_due);
    b_i64(s, 2, after_row);
    b_i64(s, 3, req->u.due_scan.until);
    b_i64(s, 4, limit);
    req->u.due_scan.items = hk_malloc(sizeof(hk_release) * (size_t)limit);
    req->u.due_scan.n = 0;
    int rc;
    int64_t last_due = after_due, last_row = after_row;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        hk_release *it = &req->u.due_scan.items[req->u.due_scan.n++];
        last_row = c_i64(s, 0);
        c_id(s, 1, it->id);
        it->next_retry_at = last_due = c_i64(s, 2);
    }
    rc = map_rc(c, rc, "due scan");
    sqlite3_reset(s);
    req->u.due_scan.more = req->u.due_scan.n == limit;
    snprintf(req->u.due_scan.cursor, sizeof req->u.due_scan.cursor, "%lld:%lld",
             (long long)last_due, (long long)last_row);
    return rc;
}

typedef struct health_acc {
    const char *wid;
    hk_health h;
    const hk_result *last_fail; /* its last final failure stored, for the operational events */
    const hk_result *last_ok;   /* its last success stored (hookd.webhook.recovered) */
} health_acc;

/* Sets webhook wid's status, parks its waiting deliveries and records the change in req. */
static int set_webhook_status(sq *c, hk_req *req, const char *wid, int status)
{
    PS(s, S_WH_SET_STATUS);
    b_text(s, 1, wid);
    b_text(s, 2, hk_wh_status_name(status));
    b_i64(s, 3, req->now);
    int rc = run(c, s, "webhook status");
    if (!rc) rc = sq_webhook_park(c, wid);
    if (!rc) hk_out_change(req, wid, status);
    return rc;
}

/* RESULTS' heads (store.h): for each webhook of a final result marked fifo, once, its head if
 * claimable. */
static int fifo_heads(sq *c, hk_req *req)
{
    const char **wids;
    int n = hk_results_fifo_webhooks(req, &wids), rc = HK_OK;
    for (int i = 0; !rc && i < n; i++) {
        sqlite3_stmt *s = ps(c, S_FIFO_HEAD);
        if (!s) {
            rc = HK_EUNAVAIL;
            break;
        }
        b_text(s, 1, wids[i]);
        int st = sqlite3_step(s);
        if (st == SQLITE_ROW && c_i64(s, 1) && sqlite3_column_type(s, 2) != SQLITE_NULL) {
            char id[HK_ID_MAX];
            c_id(s, 0, id);
            hk_out_release(&req->u.results.heads, &req->u.results.nheads, id, c_i64(s, 2));
        }
        if (st == SQLITE_ROW) st = sqlite3_step(s);
        rc = map_rc(c, st, "fifo head");
        sqlite3_reset(s);
    }
    free(wids);
    return rc;
}

/* RESULTS: per result an attempt row and, if it was inserted (not a repeat), the delivery row
 * (and the static headers once), then per webhook with final results stored its counters, and
 * the status rows.c decides; the operational events of the final failures and status changes
 * (opevents.h) in the same transaction. */
static int sq_results(void *conn, hk_req *req)
{
    sq *c = conn;
    int rc = HK_OK, nacc = 0;
    health_acc *acc = hk_calloc((size_t)(req->u.results.n ? req->u.results.n : 1), sizeof *acc);
    hk_map accs; /* webhook id -> its entry of acc[0..nacc) */
    hk_map_init(&accs);
    for (int i = 0; !rc && i < req->u.results.n; i++) {
        hk_result *r = &req->u.results.items[i];
        if (r->headers_static_db) {
            PS(hs, S_HDR_INSERT);
            b_text(hs, 1, r->headers_ref);
            b_text(hs, 2, r->headers_static_db);
            b_i64(hs, 3, req->now);
            rc = run(c, hs, "headers insert");
            if (rc) break;
        }
        {
            PS(q, S_ATT_NEW);
            b_text(q, 1, r->attempt_id);
            b_text(q, 2, r->delivery_id);
            b_i64(q, 3, r->attempt_number);
            int st = sqlite3_step(q);
            r->stored = st == SQLITE_ROW && sqlite3_column_int(q, 0) != 0;
            if (st == SQLITE_ROW) st = sqlite3_step(q);
            rc = map_rc(c, st, "attempt check");
            sqlite3_reset(q);
            if (rc) break;
            if (!r->stored) continue; /* repeated (or no such delivery): a no-op */
        }
        {
            PS(a, S_ATT_INSERT);
            b_text(a, 1, r->attempt_id);
            b_text(a, 2, r->delivery_id);
            b_i64(a, 3, r->attempt_number);
            b_text(a, 4, r->attempt_ok ? "success" : "failed");
            if (r->response_status)
                b_i64(a, 5, r->response_status);
            else
                sqlite3_bind_null(a, 5);
            b_text(a, 6, r->response_body);
            b_text(a, 7, r->response_headers);
            b_i64(a, 8, r->duration_ms);
            b_text(a, 9, r->error_message);
            b_i64(a, 10, r->started_at);
            rc = run(c, a, "attempt insert");
            if (rc) break;
        }
        {
            PS(u, S_DL_RESULT);
            b_text(u, 1, r->delivery_id);
            b_text(u, 2, hk_dl_status_name(r->status));
            b_i64(u, 3, r->attempt_number);
            if (r->response_status)
                b_i64(u, 4, r->response_status);
            else
                sqlite3_bind_null(u, 4);
            b_text(u, 5, r->response_body);
            b_text(u, 6, r->response_headers);
            b_text(u, 7, r->request_headers);
            b_text(u, 8, r->request_url);
            b_text(u, 9, r->error_message);
            b_i64(u, 10, r->duration_ms);
            b_time(u, 11, r->started_at);
            b_time(u, 12, r->status == HK_DL_RETRYING ? r->next_retry_at : 0);
            b_time(u, 13, r->final ? r->finished_at : 0);
            b_i64(u, 14, r->keep_lease);
            b_text(u, 15, r->headers_static ? r->headers_ref : NULL);
            rc = run(c, u, "delivery result");
            if (rc) break;
        }
        health_acc *h = hk_map_get(&accs, r->webhook_id);
        if (!h) {
            h = &acc[nacc];
            h->wid = r->webhook_id;
        }
        if (hk_health_add(&h->h, r) && h == &acc[nacc]) hk_map_put(&accs, acc[nacc++].wid, h);
        if (r->final && r->stored && !r->attempt_ok) h->last_fail = r;
        if (r->final && r->stored && r->attempt_ok) h->last_ok = r;
    }
    /* operational events (opevents.h): each final failure stored by this request */
    for (int i = 0; !rc && i < req->u.results.n; i++) {
        const hk_result *r = &req->u.results.items[i];
        if (!r->final || !r->stored || r->attempt_ok) continue;
        hk_opev ev = {.kind = HK_OPEV_EXHAUSTED, .webhook_id = r->webhook_id, .res = r};
        rc = hk_opev_emit(&c->base, c, &sq_ops, req->now, &ev, &req->u.results.emitted);
    }
    for (int k = 0; !rc && k < nacc; k++) {
        health_acc *h = &acc[k];
        PS(s, S_WH_HEALTH);
        b_text(s, 1, h->wid);
        b_i64(s, 2, h->h.ok);
        b_i64(s, 3, h->h.fail);
        b_i64(s, 4, h->h.had_success);
        b_i64(s, 5, h->h.streak);
        int st = sqlite3_step(s);
        int64_t cf = 0, deleted = 0, recovering = 0;
        int status = -1;
        if (st == SQLITE_ROW) {
            cf = c_i64(s, 0);
            status = hk_wh_status_parse((const char *)sqlite3_column_text(s, 1));
            deleted = c_i64(s, 2);
            recovering = c_i64(s, 3);
            st = sqlite3_step(s);
        }
        rc = map_rc(c, st, "webhook health");
        sqlite3_reset(s);
        if (rc) continue;
        if (recovering && h->last_ok && !deleted) { /* delivered again after re-enable */
            PS(rs, S_WH_RECOVERED);
            b_text(rs, 1, h->wid);
            rc = run(c, rs, "webhook recovered");
            hk_opev ev = {.kind = HK_OPEV_RECOVERED, .webhook_id = h->wid, .res = h->last_ok};
            if (!rc)
                rc = hk_opev_emit(&c->base, c, &sq_ops, req->now, &ev, &req->u.results.emitted);
            if (rc) continue;
        }
        int to = hk_health_decide(&h->h, status, cf, deleted != 0, req->u.results.disable_after);
        if (to >= 0) rc = set_webhook_status(c, req, h->wid, to);
        if (to >= 0 && !rc) {
            hk_opev ev = {.kind = to == HK_WH_DISABLED ? HK_OPEV_DISABLED : HK_OPEV_FAILED,
                          .webhook_id = h->wid,
                          .reason = to == HK_WH_DISABLED ? "gone" : NULL,
                          .res = h->last_fail,
                          .consecutive_failures = cf};
            hk_conn_orgs_reset(&c->base); /* the candidates must see the new status */
            rc = hk_opev_emit(&c->base, c, &sq_ops, req->now, &ev, &req->u.results.emitted);
        }
    }
    hk_map_free(&accs);
    free(acc);
    if (!rc) rc = fifo_heads(c, req); /* after the status changes: a parked head is none */
    return rc;
}

/* ---- statistics (rollup.h) ----------------------------------------------------------------- */

static int64_t sq_scalar(sq *c, sqlite3_stmt *s, const char *what);

/* SQL function hk_hist_add(a, b): the histogram literals a and b added element-wise. */
static void fn_hist_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    int64_t h[HK_SH_BUCKETS] = {0};
    for (int i = 0; i < argc; i++) {
        if (hk_sh_parse_add(h, (const char *)sqlite3_value_text(argv[i]))) {
            sqlite3_result_error(ctx, "hk_hist_add: not a histogram", -1);
            return;
        }
    }
    char out[HK_SH_TEXT_MAX];
    hk_sh_format(h, out);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* SQL aggregate hk_hist_sum(h): the histogram literals of a group added element-wise ("{}" for
 * none); migration 11 backfills the hour and day rows with it. */
static void fn_hist_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int64_t *h = sqlite3_aggregate_context(ctx, (int)(sizeof(int64_t) * HK_SH_BUCKETS));
    if (!h) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (hk_sh_parse_add(h, (const char *)sqlite3_value_text(argv[0])))
        sqlite3_result_error(ctx, "hk_hist_sum: not a histogram", -1);
}

static void fn_hist_sum_final(sqlite3_context *ctx)
{
    int64_t zero[HK_SH_BUCKETS] = {0};
    int64_t *h = sqlite3_aggregate_context(ctx, 0);
    char out[HK_SH_TEXT_MAX];
    hk_sh_format(h ? h : zero, out);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* Minute rows to webhook_stats, hour and day rows to webhook_stats_coarse, one upsert each. */
static int sq_rollup_upsert(void *conn, const hk_rollup_row *rows, int n)
{
    sq *c = conn;
    int rc = HK_OK;
    char att[HK_SH_TEXT_MAX], e2e[HK_SH_TEXT_MAX];
    for (int i = 0; !rc && i < n; i++) {
        const hk_rollup_row *r = &rows[i];
        int minute = r->grain == HK_ROLLUP_MINUTE;
        PS(s, minute ? S_ST_UPSERT : S_ST_UPSERT_C);
        hk_sh_format(r->att, att);
        hk_sh_format(r->e2e, e2e);
        b_text(s, 1, r->webhook_id);
        b_i64(s, 2, r->start);
        if (!minute) b_i64(s, 9, r->grain);
        b_i64(s, 3, r->delivered);
        b_i64(s, 4, r->failed);
        b_i64(s, 5, r->given_up);
        b_i64(s, 6, r->last_at);
        b_text(s, 7, att);
        b_text(s, 8, e2e);
        rc = run(c, s, "stats upsert");
    }
    return rc;
}

static int sq_rollup_read(void *conn, const char *wid, int64_t grain, int64_t from, int64_t to,
                          hk_rollup_row **rows, int *n)
{
    sq *c = conn;
    int minute = grain == HK_ROLLUP_MINUTE;
    PS(s, minute ? S_ST_READ : S_ST_READ_C);
    b_text(s, 1, wid);
    b_i64(s, 2, from);
    b_i64(s, 3, to);
    if (!minute) b_i64(s, 4, grain);
    int step, cap = 0;
    *rows = NULL;
    *n = 0;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *rows = hk_realloc(*rows, (size_t)cap * sizeof **rows);
        }
        hk_rollup_row *r = &(*rows)[(*n)++];
        memset(r, 0, sizeof *r);
        hk_strlcpy(r->webhook_id, wid, HK_ID_MAX);
        r->start = c_i64(s, 0);
        r->grain = grain;
        r->delivered = c_i64(s, 1);
        r->failed = c_i64(s, 2);
        r->given_up = c_i64(s, 3);
        r->last_at = c_i64(s, 4);
        hk_sh_parse_add(r->att, (const char *)sqlite3_column_text(s, 5));
        hk_sh_parse_add(r->e2e, (const char *)sqlite3_column_text(s, 6));
    }
    int rc = map_rc(c, step, "stats read");
    sqlite3_reset(s);
    return rc;
}

static int sq_backlog(void *conn, const char *wid, int64_t cap, int64_t *n)
{
    sq *c = conn;
    PS(s, S_ST_BACKLOG);
    b_text(s, 1, wid);
    b_i64(s, 2, cap + 1);
    int64_t v = sq_scalar(c, s, "backlog");
    if (v < 0) return HK_EUNAVAIL;
    *n = v;
    return HK_OK;
}

static int sq_org_stats(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(s, S_ST_ORG);
    b_text(s, 1, req->org_id);
    b_i64(s, 2, req->u.ostats.since);
    b_text(s, 3, req->u.ostats.after ? req->u.ostats.after : "");
    b_i64(s, 4, req->u.ostats.limit + 1);
    b_i64(s, 5, (req->u.ostats.since + HK_ROLLUP_HOUR - 1) / HK_ROLLUP_HOUR * HK_ROLLUP_HOUR);
    int step;
    req->u.ostats.items = hk_calloc((size_t)req->u.ostats.limit + 1, sizeof(hk_org_stat));
    req->u.ostats.n = 0;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && req->u.ostats.n <= req->u.ostats.limit) {
        hk_org_stat *x = &req->u.ostats.items[req->u.ostats.n++];
        c_id(s, 0, x->id);
        x->name = c_text(s, 1);
        x->url = c_text(s, 2);
        x->status = c_text(s, 3);
        const char *sums = (const char *)sqlite3_column_text(s, 4);
        long long a = 0, b = 0, d = 0;
        if (sums && sscanf(sums, "%lld %lld %lld", &a, &b, &d) != 3) a = b = d = 0;
        x->delivered = a;
        x->failed = b;
        x->given_up = d;
        x->last_at = c_i64(s, 5);
    }
    int rc = map_rc(c, step == SQLITE_ROW ? SQLITE_DONE : step, "org stats");
    sqlite3_reset(s);
    return rc;
}

/* RELEASE (leases dropped) or RESCHEDULE (later due times, leases kept): stmt once per item,
 * all in the caller's transaction. */
static int release_items(sq *c, hk_req *req, int stmt, const char *what)
{
    for (int i = 0; i < req->u.release.n; i++) {
        PS(s, stmt);
        b_text(s, 1, req->u.release.items[i].id);
        b_time(s, 2, req->u.release.items[i].next_retry_at);
        b_text(s, 3, req->node_id);
        int rc = run(c, s, what);
        if (rc) return rc;
    }
    return HK_OK;
}

static int sq_dl_release(void *conn, hk_req *req)
{
    return release_items(conn, req, S_DL_RELEASE, "release");
}

static int sq_dl_reschedule(void *conn, hk_req *req)
{
    return release_items(conn, req, S_DL_RESCHEDULE, "reschedule");
}

static int sq_heartbeat(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(u, S_NODE_UPSERT);
    b_text(u, 1, req->node_id);
    b_i64(u, 2, req->u.heartbeat.alive_until);
    b_i64(u, 3, req->now);
    int rc = run(c, u, "node upsert");
    if (rc) return rc;
    PS(r, S_NODE_RECLAIM);
    b_i64(r, 1, req->now);
    rc = run(c, r, "reclaim");
    if (rc) return rc;
    req->u.heartbeat.reclaimed = sqlite3_changes(c->db);
    PS(d, S_NODE_DELETE_DEAD);
    b_i64(d, 1, req->now);
    return run(c, d, "node cleanup");
}

/* ---- replays ------------------------------------------------------------------------------ */

static int sq_delivery_webhook(void *conn, const char *id, const char *org, char wid[HK_ID_MAX],
                               int *found)
{
    sq *c = conn;
    PS(q, S_DL_WEBHOOK_OF);
    b_text(q, 1, id);
    b_text(q, 2, org);
    int rc = sqlite3_step(q);
    *found = rc == SQLITE_ROW;
    if (*found) c_id(q, 0, wid);
    rc = map_rc(c, rc, "delivery lookup");
    sqlite3_reset(q);
    return rc;
}

static int sq_failed_range(void *conn, const char *wid, int64_t since, int64_t until,
                           char (**ids)[HK_ID_MAX], int *n)
{
    sq *c = conn;
    PS(q, S_DL_FAILED_RANGE);
    b_text(q, 1, wid);
    b_i64(q, 2, since);
    b_time(q, 3, until);
    int rc, cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *ids = hk_realloc(*ids, (size_t)cap * HK_ID_MAX);
        }
        c_id(q, 0, (*ids)[(*n)++]);
    }
    rc = map_rc(c, rc, "recover select");
    sqlite3_reset(q);
    return rc;
}

static int sq_replay_insert(void *conn, const char *id, const char *orig, const hk_webhook *w,
                            int64_t now)
{
    sq *c = conn;
    PS(s, S_DL_REPLAY);
    b_text(s, 1, id);
    b_text(s, 2, orig);
    b_text(s, 3, w->url);
    b_i64(s, 4, w->max_retries + 1);
    b_i64(s, 5, now);
    int rc = run(c, s, "replay insert");
    if (!rc && sqlite3_changes(c->db) == 0) rc = HK_ENOTFOUND; /* pruned meanwhile */
    return rc;
}

/* ---- retention ------------------------------------------------------------------------------ */

static int exec_sql(sqlite3 *db, const char *text, char *err, size_t errlen);

#define VACUUM_RESERVE_PAGES 1024 /* free pages kept for reuse rather than returned (4 MiB) */

/* One integer from a statement (a count or a pragma); -1 on error (logged). */
static int64_t sq_scalar(sq *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : rc == SQLITE_DONE ? 0 : -1;
    if (v < 0) map_rc(c, rc, what);
    sqlite3_reset(s);
    return v;
}

static int64_t pragma_int(sq *c, const char *text)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, text, -1, &s, NULL) != SQLITE_OK) return -1;
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

/* The dry run of u.prune: counts, deletes nothing. */
static int prune_count(sq *c, hk_req *req)
{
    static const int ids[3] = {S_PR_COUNT_DL, S_PR_COUNT_ATT, S_PR_COUNT_EV};
    int64_t *outs[3] = {&req->u.prune.deliveries, &req->u.prune.attempts, &req->u.prune.events};
    for (int i = 0; i < 3; i++) {
        PS(s, ids[i]);
        b_i64(s, 1, req->u.prune.dl_cut);
        if (ids[i] == S_PR_COUNT_EV) b_i64(s, 2, req->u.prune.ev_cut);
        int64_t n = sq_scalar(c, s, "prune count");
        if (n < 0) return HK_EUNAVAIL;
        *outs[i] = n;
    }
    return HK_OK;
}

/* Deletes event id if it has no delivery left; adds 1 to *n if it did. */
static int prune_event(sq *c, const char *id, int64_t *n)
{
    PS(s, S_PR_EV_DEL);
    b_text(s, 1, id);
    int rc = run(c, s, "prune event");
    if (!rc) *n += sqlite3_changes(c->db);
    return rc;
}

/* Returns free pages beyond the reserve to the file system, at most max per step (auto_vacuum
 * INCREMENTAL; a no-op on a file still in auto_vacuum NONE). A failure is logged, not returned:
 * the step's deletes stand and the pages stay free for reuse. */
static int prune_vacuum(sq *c, hk_req *req)
{
    int max = req->u.prune.vacuum_pages;
    if (max <= 0) return HK_OK;
    int64_t free_pages = pragma_int(c, "PRAGMA freelist_count");
    if (free_pages <= VACUUM_RESERVE_PAGES) return HK_OK;
    int64_t n = HK_MIN(free_pages - VACUUM_RESERVE_PAGES, (int64_t)max);
    char text[64], err[256];
    snprintf(text, sizeof text, "PRAGMA incremental_vacuum(%lld)", (long long)n);
    if (exec_sql(c->db, text, err, sizeof err)) {
        /* not worth failing the group over: the pages stay free for reuse */
        HK_LOG(HK_LOG_WARN, "store.sqlite_error", HK_LS("op", "incremental vacuum"),
               HK_LS("msg", err));
        return HK_OK;
    }
    int64_t after = pragma_int(c, "PRAGMA freelist_count");
    if (after >= 0 && after < free_pages) req->u.prune.vacuumed = free_pages - after;
    return HK_OK;
}

static int sq_prune(void *conn, hk_req *req)
{
    sq *c = conn;
    if (req->u.prune.dry_run) return prune_count(c, req);
    int limit = req->u.prune.limit, rc = HK_OK, n = 0, cap = 0;
    char(*dl)[2][HK_ID_MAX] = NULL;
    if (req->u.prune.dl_cut > 0) {
        PS(q, S_PR_DL_PICK);
        b_i64(q, 1, req->u.prune.dl_cut);
        b_i64(q, 2, limit);
        b_i64(q, 3, req->u.prune.dl_floor);
        int step;
        while ((step = sqlite3_step(q)) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                dl = hk_realloc(dl, (size_t)cap * sizeof dl[0]);
            }
            c_id(q, 0, dl[n][0]);
            c_id(q, 1, dl[n][1]);
            n++;
        }
        rc = map_rc(c, step, "prune select");
        sqlite3_reset(q);
        if (n == limit) req->u.prune.more = 1;
    }
    if (!rc && req->u.prune.dl_cut > 0) { /* the statistics' rows of the same age */
        PS(st, S_PR_ST_DEL);
        b_i64(st, 1, req->u.prune.dl_cut - 60000); /* the whole minute older than the cut */
        b_i64(st, 2, limit);
        rc = run(c, st, "prune stats");
        if (!rc && sqlite3_changes(c->db) == limit) req->u.prune.more = 1;
    }
    if (!rc && req->u.prune.dl_cut > 0) { /* the hour and day rows wholly older than the cut */
        PS(st, S_PR_STC_DEL);
        b_i64(st, 1, req->u.prune.dl_cut);
        b_i64(st, 2, limit);
        rc = run(c, st, "prune coarse stats");
        if (!rc && sqlite3_changes(c->db) == limit) req->u.prune.more = 1;
    }
    for (int i = 0; !rc && i < n; i++) {
        sqlite3_stmt *a = ps(c, S_PR_ATT_DEL), *d = ps(c, S_PR_DL_DEL);
        if (!a || !d) {
            rc = HK_EUNAVAIL;
            break;
        }
        b_text(a, 1, dl[i][0]);
        if (!(rc = run(c, a, "prune attempts"))) req->u.prune.attempts += sqlite3_changes(c->db);
        b_text(d, 1, dl[i][0]);
        if (!rc && !(rc = run(c, d, "prune delivery")))
            req->u.prune.deliveries += sqlite3_changes(c->db);
    }
    /* their events, each once: the ones with no delivery left */
    for (int i = 0; !rc && i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(dl[j][1], dl[i][1]) == 0;
        if (!seen) rc = prune_event(c, dl[i][1], &req->u.prune.events);
    }
    free(dl);
    /* events that never had a delivery (unmatched), in creation order from the last position */
    if (!rc && req->u.prune.ev_cut > 0) {
        PS(g, S_PR_POS_GET);
        int step = sqlite3_step(g);
        if (step == SQLITE_ROW) {
            req->u.prune.ev_pos_at = c_i64(g, 0);
            c_id(g, 1, req->u.prune.ev_pos_id);
        }
        rc = map_rc(c, step, "prune position");
        sqlite3_reset(g);
    }
    if (!rc && req->u.prune.ev_cut > 0) {
        PS(q, S_PR_EV_SCAN);
        b_i64(q, 1, req->u.prune.ev_pos_at);
        b_text(q, 2, req->u.prune.ev_pos_id);
        b_i64(q, 3, req->u.prune.ev_cut);
        b_i64(q, 4, limit);
        char(*ev)[HK_ID_MAX] = hk_malloc((size_t)limit * HK_ID_MAX);
        int m = 0, step;
        int64_t at = 0;
        while ((step = sqlite3_step(q)) == SQLITE_ROW && m < limit) {
            c_id(q, 0, ev[m++]);
            at = c_i64(q, 1);
        }
        rc = map_rc(c, step, "prune scan");
        sqlite3_reset(q);
        for (int i = 0; !rc && i < m; i++) rc = prune_event(c, ev[i], &req->u.prune.events);
        if (!rc && m > 0) {
            req->u.prune.ev_pos_at = at;
            hk_strlcpy(req->u.prune.ev_pos_id, ev[m - 1], HK_ID_MAX);
            sqlite3_stmt *w = ps(c, S_PR_POS_SET);
            if (!w) {
                rc = HK_EUNAVAIL;
            } else {
                b_i64(w, 1, at);
                b_text(w, 2, req->u.prune.ev_pos_id);
                rc = run(c, w, "prune position");
            }
        }
        if (m == limit) req->u.prune.more = 1;
        free(ev);
    }
    if (!rc) {
        PS(o, S_PR_OLDEST);
        b_i64(o, 1, req->u.prune.dl_floor);
        int64_t v = sq_scalar(c, o, "prune oldest");
        if (v < 0) rc = HK_EUNAVAIL;
        req->u.prune.oldest = v > 0 ? v : 0;
    }
    if (!rc) rc = prune_vacuum(c, req);
    return rc;
}

/* ---- store size (hookd_store_rows, hookd_store_bytes) -------------------------------------- */

/* u.stats: the database's pages (freelist included: what the file holds) plus the -wal file
 * beside it (its size on disk: it only shrinks when a checkpoint truncates it), and with
 * want_rows the exact count of each table. */
static int sq_store_stats(void *conn, hk_req *req)
{
    sq *c = conn;
    PS(b, S_STATS_BYTES);
    int rc = sqlite3_step(b);
    req->u.stats.bytes = rc == SQLITE_ROW ? c_i64(b, 0) : 0;
    int r = map_rc(c, rc, "store bytes");
    sqlite3_reset(b);
    if (r) return r;
    const char *path = sqlite3_db_filename(c->db, "main");
    if (path && path[0]) {
        char wal[4200];
        struct stat st;
        snprintf(wal, sizeof wal, "%s-wal", path);
        if (stat(wal, &st) == 0) req->u.stats.bytes += (int64_t)st.st_size;
    }
    if (!req->u.stats.want_rows) return HK_OK;
    PS(s, S_STATS_ROWS);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        for (int i = 0; i < HK_TBL_MAX; i++) req->u.stats.rows[i] = c_i64(s, i);
    r = map_rc(c, rc, "store rows");
    sqlite3_reset(s);
    return r;
}

/* ---- backend entry points ------------------------------------------------------------------ */

static int sq_ping_req(void *conn, hk_req *req)
{
    sq *c = conn;
    HK_UNUSED(req);
    PS(s, S_PING);
    return run(c, s, "ping");
}

static int simple(sq *c, int id, const char *what)
{
    sqlite3_stmt *s = ps(c, id);
    if (!s) return HK_EUNAVAIL;
    return run(c, s, what);
}

static int sq_begin(void *conn)
{
    sq *c = conn;
    hk_conn_group_reset(&c->base);
    return simple(c, c->role == HK_CONN_READER ? S_BEGIN_R : S_BEGIN_W, "begin");
}

static int sq_commit(void *conn)
{
    sq *c = conn;
    int rc = simple(c, S_COMMIT, "commit");
    /* the fan-out cache outlives a committed group only */
    if (rc)
        hk_conn_group_rollback(&c->base);
    else
        hk_conn_group_reset(&c->base);
    return rc;
}

static int sq_rollback(void *conn)
{
    sq *c = conn;
    hk_conn_group_rollback(&c->base);
    if (sqlite3_get_autocommit(c->db)) return HK_OK;
    return simple(c, S_ROLLBACK, "rollback");
}

static int sq_savepoint(void *conn)
{
    sq *c = conn;
    hk_conn_mark(&c->base);
    return simple(c, S_SAVEPOINT, "savepoint");
}

static int sq_release(void *conn)
{
    return simple(conn, S_RELEASE, "release");
}

static int sq_rollback_to(void *conn)
{
    sq *c = conn;
    /* the fan-out cache goes if the undone request changed webhooks (rows.h) */
    hk_conn_undo(&c->base);
    return simple(c, S_ROLLBACK_TO, "rollback to");
}

/* Deferred group-wide write: last_triggered_at of every webhook that got a delivery. */
static int sq_pre_commit(void *conn)
{
    sq *c = conn;
    int n = hk_conn_touched_unique(&c->base);
    int64_t now = hk_now_ms();
    for (int i = 0; i < n; i++) {
        PS(s, S_WH_TRIGGERED);
        b_text(s, 1, c->base.touched[i]);
        b_i64(s, 2, now);
        int rc = run(c, s, "last triggered");
        if (rc) return rc;
    }
    c->base.ntouched = 0;
    return HK_OK;
}

static int sq_ping(void *conn)
{
    sq *c = conn;
    return simple(c, S_PING, "ping");
}

static void sq_close(void *conn)
{
    sq *c = conn;
    if (!c) return;
    hk_conn_free(&c->base);
    for (int i = 0; i < S_MAX; i++)
        if (c->st[i]) sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

static int exec_sql(sqlite3 *db, const char *text, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return HK_EUNAVAIL;
    }
    return HK_OK;
}

/* Creates the database file mode 0600 (whatever the umask) before SQLite opens it, so that no
 * other user can read the store (secrets, custom headers, payloads). SQLite gives the WAL and
 * -shm files it creates the database file's mode, and the .lock file is created 0600 too. An
 * existing file keeps its mode, with a warning (once) if other users may read it. */
static void create_private(const hk_config *cfg, int role)
{
    const char *path = cfg->db_path;
    if (!path || !*path || path[0] == ':' || strncmp(path, "file:", 5) == 0) return;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) { /* the umask can only narrow 0600 */
        close(fd);
        return;
    }
    struct stat st;
    if (role == HK_CONN_ADMIN && errno == EEXIST && stat(path, &st) == 0 && (st.st_mode & 077))
        HK_LOG(HK_LOG_WARN, "store.sqlite_mode",
               HK_LS("msg", "the database file may be read by other users: chmod 600 it (and "
                            "its -wal and -shm files)"),
               HK_LS("path", path));
}

/* SQLite's process-wide settings, made once before its first connection (if SQLite is already
 * initialized the call is refused and changes nothing): no memory statistics (hookd reads
 * none), so that each of SQLite's allocations does not take a global mutex (about 5% of the
 * writer thread's time). SQLITE_CONFIG_STMTJRNL_SPILL is left at SQLite's 64 KiB on purpose:
 * with 256 KiB or more, SQLite 3.40 answers SQLITE_FULL ("database or disk is full") when a
 * savepoint's journal outgrows it and spills to its temporary file. */
static pthread_once_t sq_global_once = PTHREAD_ONCE_INIT;
static void sq_global_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(void **conn, const hk_config *cfg, int role, char *err, size_t errlen)
{
    pthread_once(&sq_global_once, sq_global_init);
    sq *c = hk_calloc(1, sizeof *c);
    c->role = role;
    c->cfg = cfg;
    create_private(cfg, role);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(cfg->db_path, &c->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open SQLite database %s: %s", cfg->db_path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return HK_EUNAVAIL;
    }
    sqlite3_busy_timeout(c->db, 10000);
    sqlite3_create_function(c->db, "hk_hist_add", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            fn_hist_add, NULL, NULL);
    sqlite3_create_function(c->db, "hk_hist_sum", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL,
                            fn_hist_sum_step, fn_hist_sum_final);
    char pragmas[512];
    snprintf(pragmas, sizeof pragmas,
             /* auto_vacuum first: on a new file it only takes effect before the first table
              * (and journal_mode=WAL already writes the header); on an existing file in mode
              * NONE it is pending until the VACUUM of sq_migrate */
             "%sPRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
             "PRAGMA temp_store=%s; PRAGMA cache_size=%d; %s",
             role == HK_CONN_READER ? "" : "PRAGMA auto_vacuum=INCREMENTAL; ",
             strcmp(cfg->sqlite_sync, "normal") == 0 ? "NORMAL" : "FULL",
             /* the writer's statement journals (each request runs in a savepoint) must be able
              * to spill to a temp file: in memory, unparking a million deliveries kept a copy of
              * every page it changed (+180 MB) until the savepoint was released */
             role == HK_CONN_WRITER ? "DEFAULT" : "MEMORY",
             /* page caches: 8 MB for the writer (16 MB filled up in bench a and b, the rows having
              * grown since wave 1, and took peak RSS past 50 MB; 8 MB writes as fast: a, b and
              * a 300,000-row e drain measured equal), 4 MB per reader */
             role == HK_CONN_WRITER ? -8192 : -4096,
             /* the writer keeps evaluating the schema's CHECK (status IN (...)) constraints,
              * though SQLite builds a temporary table for a list of more than two values on
              * every row written (about 1 us a delivery): they are the store's last guard
              * against a status no release knows (docs/BENCHMARKS.md, CPU per delivery) */
             role == HK_CONN_READER ? "PRAGMA query_only=1;" : "");
    int rc = exec_sql(c->db, pragmas, err, errlen);
    if (rc) {
        sq_close(c);
        return rc;
    }
    *conn = c;
    return HK_OK;
}

/* A file made before auto_vacuum=INCREMENTAL (mode NONE) is converted once: VACUUM rewrites
 * it whole (the pending mode set by sq_open then takes effect). It needs free disk space for a
 * second copy in the WAL, and holds the database for its duration (about 10 s per GB measured,
 * docs/OPERATIONS.md); with too little free space, or when it fails (another process holds the
 * database), it is skipped with a warning and tried again at the next start: freed pages are then
 * only reused, never returned. */
static void to_incremental_vacuum(sq *c)
{
    if (pragma_int(c, "PRAGMA auto_vacuum") != 0) return;
    int64_t pages = pragma_int(c, "PRAGMA page_count"), psize = pragma_int(c, "PRAGMA page_size");
    int64_t bytes = pages * psize;
    struct statvfs vfs;
    const char *path = c->cfg->db_path;
    char dir[4096];
    hk_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        hk_strlcpy(dir, ".", sizeof dir);
    if (statvfs(dir, &vfs) == 0 &&
        (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize < 2 * bytes + (64 << 20)) {
        HK_LOG(HK_LOG_WARN, "store.sqlite_vacuum_skipped",
               HK_LS("msg", "the database is in auto_vacuum NONE and converting it needs free "
                            "disk space for a second copy: freed pages are reused but never "
                            "returned until a start with enough space converts it"),
               HK_LI("bytes", bytes));
        return;
    }
    int64_t t0 = hk_mono_ms();
    char why[256];
    if (exec_sql(c->db, "VACUUM", why, sizeof why)) {
        /* say another process holds the database (a CLI command while hookd serves): the
         * store works as it is, and the next start tries again */
        HK_LOG(HK_LOG_WARN, "store.sqlite_vacuum_skipped",
               HK_LS("msg", "converting to auto_vacuum=INCREMENTAL failed; the next start tries "
                            "again"),
               HK_LS("error", why));
        return;
    }
    HK_LOG(HK_LOG_INFO, "store.sqlite_vacuumed",
           HK_LS("msg", "converted to auto_vacuum=INCREMENTAL (once)"), HK_LI("bytes", bytes),
           HK_LI("ms", hk_mono_ms() - t0),
           HK_LI("auto_vacuum", pragma_int(c, "PRAGMA auto_vacuum")));
}

static int sq_migrate(void *conn, char *err, size_t errlen)
{
    sq *c = conn;
    int rc = exec_sql(c->db,
                      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                      "KEY, applied_at INTEGER NOT NULL)",
                      err, errlen);
    if (rc) return rc;
    int64_t have = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &s,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
        return HK_EUNAVAIL;
    }
    if (sqlite3_step(s) == SQLITE_ROW) have = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    int64_t known = (int64_t)HK_ARRAY_LEN(hk_sqlite_migrations);
    if (have > known) {
        snprintf(err, errlen,
                 "the database schema is version %lld, newer than this hookd knows (%lld): "
                 "upgrade hookd",
                 (long long)have, (long long)known);
        return HK_EINVAL;
    }
    for (int64_t v = have + 1; v <= known; v++) {
        char stamp[160];
        snprintf(stamp, sizeof stamp,
                 "INSERT INTO schema_migrations (version, applied_at) VALUES (%lld, %lld)",
                 (long long)v, (long long)hk_now_ms());
        if ((rc = exec_sql(c->db, "BEGIN IMMEDIATE", err, errlen))) return rc;
        if ((rc = exec_sql(c->db, hk_sqlite_migrations[v - 1], err, errlen)) ||
            (rc = exec_sql(c->db, stamp, err, errlen)) ||
            (rc = exec_sql(c->db, "COMMIT", err, errlen))) {
            char ignore[64];
            exec_sql(c->db, "ROLLBACK", ignore, sizeof ignore);
            return rc;
        }
        HK_LOG(HK_LOG_INFO, "store.migrated", HK_LS("backend", "sqlite"), HK_LI("version", v));
    }
    to_incremental_vacuum(c);
    return HK_OK;
}

static int lock_fd = -1;

/* With WEBHOOK_ENCRYPTION_KEY: encrypts the custom header values written before the key was
 * set (one transaction), so that none stays in plaintext. */
static int seal_plain_headers(sq *c, char *err, size_t errlen)
{
    if (!c->cfg->has_enc_key) return HK_OK;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = exec_sql(c->db, "BEGIN IMMEDIATE", err, errlen), n = 0;
    if (rc) return rc;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT id, custom_headers FROM webhook WHERE custom_headers "
                           "IS NOT NULL",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "UPDATE webhook SET custom_headers = ?2 WHERE id = ?1", -1, &upd,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
        rc = HK_EUNAVAIL;
    }
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        hk_buf_reset(&b);
        if (hk_headers_seal_plain(c->cfg, (const char *)sqlite3_column_text(sel, 1), &b) != 1)
            continue;
        sqlite3_reset(upd);
        sqlite3_bind_text(upd, 1, (const char *)sqlite3_column_text(sel, 0), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(upd, 2, hk_buf_cstr(&b), (int)b.len, SQLITE_STATIC);
        if (sqlite3_step(upd) != SQLITE_DONE) {
            snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
            rc = HK_EUNAVAIL;
        }
        n++;
    }
    if (!rc && step != SQLITE_DONE) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
        rc = HK_EUNAVAIL;
    }
    hk_buf_free(&b);
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    char ignore[64];
    if (!rc) rc = exec_sql(c->db, "COMMIT", err, errlen);
    if (rc) exec_sql(c->db, "ROLLBACK", ignore, sizeof ignore);
    if (!rc && n)
        HK_LOG(HK_LOG_INFO, "store.headers_encrypted", HK_LI("webhooks", n),
               HK_LS("msg", "custom header values written before WEBHOOK_ENCRYPTION_KEY was set "
                            "are now encrypted"));
    return rc;
}

static int sq_startup(void *conn, const char *node_id, char *err, size_t errlen)
{
    sq *c = conn;
    char path[4096];
    snprintf(path, sizeof path, "%s.lock", c->cfg->db_path);
    if (lock_fd < 0) {
        lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return HK_EIO;
        }
        if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errlen,
                     "another hookd is serving %s (the SQLite store is single-node; use "
                     "PG_URL to run several nodes)",
                     c->cfg->db_path);
            close(lock_fd);
            lock_fd = -1;
            return HK_EEXIST;
        }
    }
    /* Single node: every lease is from a previous run of this process. */
    int rc = exec_sql(c->db,
                      "UPDATE webhook_delivery SET lease_owner = NULL WHERE lease_owner IS NOT "
                      "NULL; DELETE FROM hk_node;",
                      err, errlen);
    HK_UNUSED(node_id);
    if (!rc) rc = seal_plain_headers(c, err, errlen);
    return rc;
}

static const hk_store_ops sq_ops = {
    .ping = sq_ping_req,
    .store_stats = sq_store_stats,
    .key_by_hash = sq_key_by_hash,
    .key_insert = sq_key_insert,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .key_count = sq_key_count,
    .webhook_get = sq_webhook_get,
    .webhook_exists = sq_webhook_exists,
    .webhook_count_org = sq_webhook_count_org,
    .webhook_insert = sq_webhook_insert,
    .webhook_rotate = sq_webhook_rotate,
    .webhook_update = sq_webhook_update,
    .subs_delete = sq_subs_delete,
    .subs_insert = sq_subs_insert,
    .org_insert = sq_org_insert,
    .org_ensure = sq_org_ensure,
    .org_get = sq_org_get,
    .org_list = sq_org_list,
    .org_update = sq_org_update,
    .org_park = sq_org_park,
    .org_unpark = sq_org_unpark,
    .session_insert = sq_session_insert,
    .session_by_hash = sq_session_by_hash,
    .session_revoke = sq_session_revoke,
    .delivery_search = sq_delivery_search,
    .webhook_park = sq_webhook_park,
    .webhook_unpark = sq_webhook_unpark,
    .webhook_list = sq_webhook_list,
    .webhook_delete = sq_webhook_delete,
    .webhook_load = sq_webhook_load,
    .org_webhooks = sq_org_webhooks,
    .org_version = sq_org_version,
    .ingest = sq_ingest,
    .event_list = sq_event_list,
    .event_get = sq_event_get,
    .delivery_list = sq_delivery_list,
    .delivery_get = sq_delivery_get,
    .claim = sq_claim,
    .claim_ids = sq_claim_ids,
    .due_scan = sq_due_scan,
    .results = sq_results,
    .rollup_upsert = sq_rollup_upsert,
    .rollup_read = sq_rollup_read,
    .backlog = sq_backlog,
    .org_stats = sq_org_stats,
    .release = sq_dl_release,
    .reschedule = sq_dl_reschedule,
    .heartbeat = sq_heartbeat,
    .delivery_webhook = sq_delivery_webhook,
    .failed_range = sq_failed_range,
    .replay_insert = sq_replay_insert,
    .prune = sq_prune,
    .delivery_brief = sq_delivery_brief,
    .opev_insert = sq_opev_insert,
};

const hk_store_backend hk_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .migrate = sq_migrate,
    .startup = sq_startup,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .pre_commit = sq_pre_commit,
    .ops = &sq_ops,
    .ping = sq_ping,
    .close = sq_close,
};
