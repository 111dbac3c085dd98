/*
 * pg_schema.h: the PostgreSQL schema as numbered migrations (SPEC §2 names, the seed's types).
 * Append new migrations at the end; never edit one that has shipped. pg.c applies them under a
 * session advisory lock, each in its own transaction, so nodes starting at once apply each
 * migration exactly once and the others wait, then find nothing to do.
 *
 * Types: the seed's enums (webhook_status, webhook_delivery_status), timestamptz for times
 * (hookd passes int64 ms; hk_ts() and hk_ms() convert, and are inlined by the planner). The
 * JSON hookd itself writes (custom_headers, filtering_options, request_headers) was jsonb as in
 * the seed until migration 4 made it `json`: it must read back as written (see there).
 *
 * Exact text where it must be exact: webhook_event.payload and webhook_delivery.event_data are
 * `json`, not `jsonb`. A webhook service must deliver `data` byte for byte as it was ingested,
 * and jsonb rewrites its input (key order, whitespace, duplicate keys, number spelling such as
 * 1.0e2 or big integers); `json` is validated on the way in and hands back the input text
 * unchanged. response_headers is `json` too: it is written from an endpoint's answer, and jsonb
 * would refuse a \u0000 escape there, which would make a results batch unwritable.
 *
 * Scheduling columns (as in the SQLite schema): lease_owner names the node whose memory holds
 * the delivery (its heartbeat row in hk_node keeps the lease alive), next_retry_at is the due
 * time, NULL while parked. webhook_delivery_due is partial: it holds exactly the claimable
 * rows, so a claim (FOR NO KEY UPDATE SKIP LOCKED) never walks leased, parked or finished ones.
 * Subscriptions keep their creation order in `seq`.
 *
 * No foreign keys, as on SQLite (which runs with foreign_keys=OFF): hookd deletes rows only by
 * retention (store/prune.h: attempts with their delivery, an event once no delivery is left;
 * webhooks are soft-deleted), the ingest statement
 * inserts deliveries only for events inserted by that same statement, and attempts only for
 * deliveries that exist. Measured with bench/run.py b, the checks cost PostgreSQL about 20%
 * of its CPU per delivery (an index probe and a KEY SHARE lock of the parent row for each
 * insert, every one of them on the same hot webhook row when several nodes deliver to it).
 */
#ifndef HK_PG_SCHEMA_H
#define HK_PG_SCHEMA_H

/* Migration 14's backfill: the rows of grain g (ms, text) from the rows of table t (time column
 * col, filter w, " AND ..."): counts summed, histograms summed element by element over the
 * primary-key range of each new row. */
#define HK_PG_HIST_SUM(h, g, col, t, w)                                                            \
    "(SELECT coalesce(array_agg(v ORDER BY i), '{}') FROM (SELECT i, sum(x)::bigint AS v FROM " t  \
    " m, unnest(m." h ") WITH ORDINALITY u(x, i) WHERE m.webhook_id = c.webhook_id AND m." col     \
    " >= c.k AND m." col " < c.k + " g w " GROUP BY i) q)"
#define HK_PG_BACKFILL(g, col, t, w)                                                               \
    "INSERT INTO webhook_stats_coarse (webhook_id, grain, start, delivered, failed, given_up,"     \
    " last_at, att_hist, e2e_hist) SELECT webhook_id, " g                                          \
    ", k, d, f, n, l, " HK_PG_HIST_SUM("att_hist", g, col, t, w) ", " HK_PG_HIST_SUM(              \
        "e2e_hist", g, col, t, w) " FROM (SELECT webhook_id, " col " - " col " % " g               \
                                  " AS k, sum(delivered) AS d, sum(failed)"                        \
                                  " AS f, sum(given_up) AS n, max(last_at) AS l FROM " t           \
                                  " WHERE true" w " GROUP BY 1, 2) c"                              \
                                  " ON CONFLICT (webhook_id, grain, start) DO NOTHING"

static const char *const hk_pg_migrations[] = {
    /* 1: the initial schema */
    "CREATE TYPE webhook_status AS ENUM ('active', 'paused', 'disabled', 'failed');"
    "CREATE TYPE webhook_delivery_status AS ENUM ('pending', 'success', 'failed', 'retrying');"
    "CREATE FUNCTION hk_ts(bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE"
    "  AS $$ SELECT to_timestamp($1 / 1000.0) $$;"
    "CREATE FUNCTION hk_ms(timestamptz) RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE"
    "  AS $$ SELECT (extract(epoch FROM $1) * 1000)::bigint $$;"
    "CREATE TABLE api_key ("
    "  id text PRIMARY KEY,"
    "  organization_id text NOT NULL,"
    "  name text,"
    "  key_hash text NOT NULL UNIQUE,"
    "  key_prefix text NOT NULL,"
    "  created_at timestamptz NOT NULL,"
    "  revoked_at timestamptz,"
    "  last_used_at timestamptz);"
    "CREATE TABLE webhook ("
    "  id text PRIMARY KEY,"
    "  name varchar(255) NOT NULL,"
    "  url text NOT NULL,"
    "  secret text NOT NULL,"
    "  previous_secret text,"
    "  previous_secret_expires_at timestamptz,"
    "  organization_id text NOT NULL,"
    "  user_id text,"
    "  status webhook_status NOT NULL DEFAULT 'active',"
    "  custom_headers jsonb,"
    "  rate_limit_enabled boolean NOT NULL DEFAULT true,"
    "  max_requests_per_minute integer NOT NULL DEFAULT 60,"
    "  max_retries integer NOT NULL DEFAULT 6,"
    "  filtering_options jsonb,"
    "  signature_schemes text NOT NULL DEFAULT 'standard,reloop',"
    "  last_triggered_at timestamptz,"
    "  success_count bigint NOT NULL DEFAULT 0,"
    "  failure_count bigint NOT NULL DEFAULT 0,"
    "  consecutive_failures bigint NOT NULL DEFAULT 0,"
    "  deleted_at timestamptz,"
    "  created_at timestamptz NOT NULL,"
    "  updated_at timestamptz NOT NULL);"
    "CREATE INDEX webhook_org ON webhook (organization_id, created_at) WHERE deleted_at IS NULL;"
    "CREATE TABLE webhook_event_subscription ("
    "  id text PRIMARY KEY,"
    "  webhook_id text NOT NULL,"
    "  event_id text NOT NULL,"
    "  is_enabled boolean NOT NULL DEFAULT true,"
    "  created_at timestamptz NOT NULL,"
    "  seq bigint GENERATED ALWAYS AS IDENTITY,"
    "  UNIQUE (webhook_id, event_id));"
    "CREATE TABLE webhook_event ("
    "  id text PRIMARY KEY,"
    "  event text NOT NULL,"
    "  payload json NOT NULL,"
    "  source text NOT NULL DEFAULT 'api',"
    "  idempotency_key text,"
    "  organization_id text NOT NULL,"
    "  user_id text,"
    "  created_at timestamptz NOT NULL);"
    "CREATE UNIQUE INDEX webhook_event_idem ON webhook_event (organization_id, idempotency_key)"
    "  WHERE idempotency_key IS NOT NULL;"
    "CREATE INDEX webhook_event_org ON webhook_event (organization_id, created_at);"
    "CREATE TABLE webhook_delivery ("
    "  id text PRIMARY KEY,"
    "  webhook_id text NOT NULL,"
    "  webhook_event_id text NOT NULL,"
    "  replay_of_delivery_id text,"
    "  event_type text NOT NULL,"
    "  event_data json,"
    "  status webhook_delivery_status NOT NULL DEFAULT 'pending',"
    "  request_url text NOT NULL,"
    "  request_headers jsonb,"
    "  request_body jsonb,"
    "  response_status integer,"
    "  response_body text,"
    "  response_headers json,"
    "  attempt_number integer NOT NULL DEFAULT 0,"
    "  max_attempts integer NOT NULL,"
    "  next_retry_at timestamptz,"
    "  last_attempt_at timestamptz,"
    "  error_message text,"
    "  completed_at timestamptz,"
    "  duration_ms integer,"
    "  created_at timestamptz NOT NULL,"
    "  lease_owner text);"
    "CREATE INDEX webhook_delivery_due ON webhook_delivery (next_retry_at)"
    "  WHERE status IN ('pending', 'retrying') AND lease_owner IS NULL"
    "  AND next_retry_at IS NOT NULL;"
    "CREATE INDEX webhook_delivery_lease ON webhook_delivery (lease_owner)"
    "  WHERE lease_owner IS NOT NULL;"
    "CREATE INDEX webhook_delivery_webhook ON webhook_delivery (webhook_id, created_at);"
    "CREATE INDEX webhook_delivery_event ON webhook_delivery (webhook_event_id);"
    "CREATE TABLE webhook_delivery_attempt ("
    "  id text PRIMARY KEY,"
    "  webhook_delivery_id text NOT NULL,"
    "  attempt_number integer NOT NULL,"
    "  status webhook_delivery_status NOT NULL,"
    "  response_status integer,"
    "  response_body text,"
    "  response_headers json,"
    "  duration_ms integer,"
    "  error_message text,"
    "  created_at timestamptz NOT NULL);"
    "CREATE INDEX webhook_delivery_attempt_delivery"
    "  ON webhook_delivery_attempt (webhook_delivery_id, attempt_number);"
    "CREATE TABLE hk_node ("
    "  id text PRIMARY KEY,"
    "  alive_until timestamptz NOT NULL,"
    "  started_at timestamptz NOT NULL);",

    /* 2: the due index also ordered by id. The Redis sweeper pages through due rows by
     * (next_retry_at, id), and making a webhook active gives its whole parked backlog one
     * next_retry_at: on (next_retry_at) alone each page sorted every tied row (a 1,000,000-row
     * backlog drained at 2,000 deliveries/s). Built in the migration's transaction: writes to
     * webhook_delivery wait while it builds (seconds per million open rows). */
    "CREATE INDEX webhook_delivery_due_id ON webhook_delivery (next_retry_at, id)"
    "  WHERE status IN ('pending', 'retrying') AND lease_owner IS NULL"
    "  AND next_retry_at IS NOT NULL;"
    "DROP INDEX webhook_delivery_due;"
    "ALTER INDEX webhook_delivery_due_id RENAME TO webhook_delivery_due;",

    /* 3: request headers by reference. request_headers keeps only the headers of a delivery's
     * last attempt (X-Delivery-Id, signatures); the headers every attempt of a webhook version
     * sends (Content-Type, User-Agent, custom headers: up to 50 x 4 KB) are stored once in
     * webhook_headers under a reference (an HMAC of their JSON, text: encrypted with
     * WEBHOOK_ENCRYPTION_KEY) that the delivery keeps in request_headers_ref. Rows written
     * before have the whole set in request_headers and no reference. Adding a NULL column
     * rewrites nothing. */
    "CREATE TABLE webhook_headers ("
    "  ref text PRIMARY KEY,"
    "  headers text NOT NULL,"
    "  created_at timestamptz NOT NULL);"
    "ALTER TABLE webhook_delivery ADD COLUMN request_headers_ref text;",

    /* 4: the JSON hookd writes is `json`, not `jsonb`: custom_headers, filtering_options,
     * request_headers (and request_body, never written). jsonb re-spaced and re-ordered keys, so
     * custom headers went out in another order than configured, and a delivery's
     * requestHeaders were not in the order sent nor compact (SQLite keeps TEXT as written).
     * hookd never queries inside these columns. Rows written before keep what jsonb made of
     * them (its order, ", " and ": "); rows written after keep the bytes hookd wrote. Rewrites
     * both tables under an exclusive lock (webhook_delivery: seconds per million rows). */
    "ALTER TABLE webhook ALTER COLUMN custom_headers TYPE json USING custom_headers::json,"
    "  ALTER COLUMN filtering_options TYPE json USING filtering_options::json;"
    "ALTER TABLE webhook_delivery ALTER COLUMN request_headers TYPE json"
    "  USING request_headers::json,"
    "  ALTER COLUMN request_body TYPE json USING request_body::json;",

    /* 5: per-webhook delivery policy (docs/API.md "Delivery policy"): the webhook's own retry
     * schedule ("1s,5s,30s", as HOOKD_RETRY_SCHEDULE) and attempt deadline in ms; NULL = the
     * global option. Adding NULL columns rewrites nothing. */
    "ALTER TABLE webhook ADD COLUMN retry_schedule text,"
    "  ADD COLUMN timeout_ms integer;",

    /* 6: Ed25519 signatures (scheme "ed25519", Standard Webhooks v1a): the private key
     * ("whsk_" + base64, encrypted like the secret with WEBHOOK_ENCRYPTION_KEY) and, during a
     * key rotation's grace period, the previous one and when it stops signing. NULL: none. */
    "ALTER TABLE webhook ADD COLUMN signing_key text,"
    "  ADD COLUMN previous_signing_key text,"
    "  ADD COLUMN previous_signing_key_expires_at timestamptz;",

    /* 7: tenancy (SPEC §7): organizations as rows, backfilled from the organizations that keys
     * and webhooks name (made implicitly until now), and a scope per key. An admin key has
     * organization_id '' (no organization: the id charset has no empty id). metadata is text
     * holding a JSON object hookd validated: it is only ever read back whole. */
    "CREATE TABLE organization ("
    "  id text PRIMARY KEY,"
    "  name text NOT NULL,"
    "  metadata text NOT NULL DEFAULT '{}',"
    "  disabled boolean NOT NULL DEFAULT false,"
    "  created_at timestamptz NOT NULL,"
    "  updated_at timestamptz NOT NULL);"
    "CREATE INDEX organization_created ON organization (created_at, id);"
    "INSERT INTO organization (id, name, created_at, updated_at)"
    "  SELECT organization_id, organization_id, min(created_at), min(created_at) FROM"
    "  (SELECT organization_id, created_at FROM api_key UNION ALL"
    "   SELECT organization_id, created_at FROM webhook) s"
    "  WHERE organization_id <> '' GROUP BY organization_id ON CONFLICT (id) DO NOTHING;"
    "ALTER TABLE api_key ADD COLUMN scope text NOT NULL DEFAULT 'full'"
    "  CHECK (scope IN ('full', 'read'));"
    "CREATE INDEX api_key_org ON api_key (organization_id, created_at);"
    /* portal sessions: short-lived bearer tokens of one organization, stored hashed */
    "CREATE TABLE portal_session ("
    "  id text PRIMARY KEY,"
    "  organization_id text NOT NULL,"
    "  token_hash text NOT NULL UNIQUE,"
    "  scope text NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'read')),"
    "  created_at timestamptz NOT NULL,"
    "  expires_at timestamptz NOT NULL,"
    "  revoked_at timestamptz,"
    "  webhook_ids text);"
    "CREATE INDEX portal_session_org ON portal_session (organization_id, created_at);",

    /* 8: retention (store/prune.h). webhook_delivery_finished holds only finished deliveries,
     * by completion time, so a prune step reads the oldest ones first and never walks open
     * work; webhook_event_created orders events for the scan of those that matched nothing.
     * Built in the migration's transaction: writes to both tables wait while they build
     * (seconds per million rows). */
    "CREATE INDEX IF NOT EXISTS webhook_delivery_finished ON webhook_delivery (completed_at)"
    "  WHERE status IN ('success', 'failed');"
    "CREATE INDEX IF NOT EXISTS webhook_event_created ON webhook_event (created_at, id);"
    /* where the scan for events with no delivery stopped (created_at in ms, id), shared by the
     * nodes, so that a restart or another node does not walk every kept event again */
    "CREATE TABLE IF NOT EXISTS hk_prune_position ("
    "  name text PRIMARY KEY,"
    "  at bigint NOT NULL,"
    "  id text NOT NULL);",

    /* 9: the lists' indexes (as SQLite's migration 7). Lists are newest first by (created_at,
     * id) and page by keyset (store.h, lists); each list and each of its filters gets an index
     * that ends in (created_at, id), read backwards, so that a page is a range scan without a
     * sort and a bounded count an index-only scan. They supersede the (scope, created_at)
     * indexes of migration 1. Built in the migration's transaction: writes to the tables wait
     * while they build (seconds per million rows). */
    "CREATE INDEX webhook_list ON webhook (organization_id, created_at, id)"
    "  WHERE deleted_at IS NULL;"
    "CREATE INDEX webhook_list_status ON webhook (organization_id, status, created_at, id)"
    "  WHERE deleted_at IS NULL;"
    "DROP INDEX webhook_org;"
    "CREATE INDEX webhook_event_list ON webhook_event (organization_id, created_at, id);"
    "CREATE INDEX webhook_event_list_type ON webhook_event (organization_id, event, created_at,"
    "  id);"
    "DROP INDEX webhook_event_org;"
    "CREATE INDEX webhook_delivery_list ON webhook_delivery (webhook_id, created_at, id);"
    "CREATE INDEX webhook_delivery_list_status ON webhook_delivery (webhook_id, status,"
    "  created_at, id);"
    "DROP INDEX webhook_delivery_webhook;",

    /* 10: operational events (src/store/opevents.h): true while a webhook set active again
     * after `failed` has not delivered since (its first success emits hookd.webhook.recovered
     * and clears it). An expand step (a defaulted column, no rewrite since PostgreSQL 11). */
    "ALTER TABLE webhook ADD COLUMN IF NOT EXISTS recovering boolean NOT NULL DEFAULT false;",

    /* 11: autovacuum keeps up with retention. Pruning deletes a steady stream of rows from the
     * three big tables; PostgreSQL reuses their space only once vacuum has passed, and by
     * default vacuums a table when a fifth of it is dead: a table of 50 million rows would
     * carry 10 million dead ones, the file growing meanwhile. A vacuum after 1,000 + 1% dead
     * rows keeps the files at the size of what retention keeps (docs/OPERATIONS.md). Storage
     * parameters only: no rewrite, no lock beyond a moment's. */
    "ALTER TABLE webhook_delivery SET (autovacuum_vacuum_scale_factor = 0.01,"
    "  autovacuum_vacuum_threshold = 1000);"
    "ALTER TABLE webhook_delivery_attempt SET (autovacuum_vacuum_scale_factor = 0.01,"
    "  autovacuum_vacuum_threshold = 1000);"
    "ALTER TABLE webhook_event SET (autovacuum_vacuum_scale_factor = 0.01,"
    "  autovacuum_vacuum_threshold = 1000);",

    /* 12: statistics (src/store/rollup.h, docs/API.md "Statistics"): one row per webhook and
     * minute (wall ms), added to by every results batch of every node (the upsert adds counts,
     * and histograms element-wise with hk_hist_add). An expand step: a new table and function (IF
     * NOT EXISTS: test_multinode re-runs it). */
    "CREATE TABLE IF NOT EXISTS webhook_stats ("
    "  webhook_id text NOT NULL,"
    "  minute bigint NOT NULL,"
    "  delivered bigint NOT NULL DEFAULT 0,"
    "  failed bigint NOT NULL DEFAULT 0,"
    "  given_up bigint NOT NULL DEFAULT 0,"
    "  last_at bigint NOT NULL,"
    "  att_hist bigint[] NOT NULL,"
    "  e2e_hist bigint[] NOT NULL,"
    "  PRIMARY KEY (webhook_id, minute));"
    "CREATE INDEX IF NOT EXISTS webhook_stats_minute ON webhook_stats (minute);"
    "CREATE OR REPLACE FUNCTION hk_hist_add(a bigint[], b bigint[]) RETURNS bigint[]"
    "  LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(array_agg(coalesce(x, 0) + coalesce(y, 0)"
    "  ORDER BY i), '{}') FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i) $$;",

    /* 13: FIFO ordering (docs/API.md "Ordering"): 'fifo' makes a claim take only the webhook's
     * oldest open delivery (pg.c, FIFO_HEAD). An expand step: a defaulted column (no rewrite),
     * existing webhooks stay 'parallel', the previous release ignores it. */
    "ALTER TABLE webhook ADD COLUMN IF NOT EXISTS ordering text NOT NULL DEFAULT 'parallel'"
    "  CHECK (ordering IN ('parallel', 'fifo'));",

    /* 14: coarser statistics (src/store/rollup.h): one row per webhook, grain (3600000: an hour,
     * 86400000: a UTC day) and start, added to by the same results batches in the same
     * transaction as the minute rows (after them), so that a read by hour or day adds up one
     * row a bucket. Backfilled from the minute rows kept (HK_PG_BACKFILL: the histograms added
     * element by element with unnest, over each hour's primary-key range; 2.5x faster than
     * folding them with hk_hist_add) and the day rows from the hour rows. An expand step,
     * re-runnable: IF NOT EXISTS, and the backfill adds only the rows that are missing (ON
     * CONFLICT DO NOTHING). */
    "CREATE TABLE IF NOT EXISTS webhook_stats_coarse ("
    "  webhook_id text NOT NULL,"
    "  grain bigint NOT NULL,"
    "  start bigint NOT NULL,"
    "  delivered bigint NOT NULL DEFAULT 0,"
    "  failed bigint NOT NULL DEFAULT 0,"
    "  given_up bigint NOT NULL DEFAULT 0,"
    "  last_at bigint NOT NULL,"
    "  att_hist bigint[] NOT NULL,"
    "  e2e_hist bigint[] NOT NULL,"
    "  PRIMARY KEY (webhook_id, grain, start));"
    "CREATE INDEX IF NOT EXISTS webhook_stats_coarse_start ON webhook_stats_coarse "
    "(start);" HK_PG_BACKFILL("3600000", "minute", "webhook_stats", "") ";" HK_PG_BACKFILL(
        "86400000", "start", "webhook_stats_coarse", " AND grain = 3600000") ";",

    /* 15: the fan-out cache's change signal (src/store/rows.h, hk_org_candidates): one row per
     * organization whose version grows with every change to what fan-out reads of its webhooks,
     * kept by triggers, so that every writer bumps it, nodes of the previous release included: a
     * webhook inserted or deleted, updated in any column but its counters (last_triggered_at,
     * success_count, failure_count, consecutive_failures, recovering: a results batch writes
     * those and must not invalidate the cache), a subscription inserted, deleted or updated, an
     * organization disabled or enabled. No row: version 0 (the first change makes it 1).
     * The triggers are deferred constraint triggers: the version row is locked and bumped at
     * COMMIT, after every other statement of the group, so a transaction never waits for a
     * webhook row while holding a version row (no new deadlock between nodes' groups; the
     * change and its bump still commit together). An expand step, re-runnable: a new table,
     * functions and triggers (dropped first if there). */
    "CREATE TABLE IF NOT EXISTS webhook_org_versions ("
    "  org_id text PRIMARY KEY,"
    "  version bigint NOT NULL);"
    "CREATE OR REPLACE FUNCTION hk_org_version_bump(o text) RETURNS void LANGUAGE sql AS $$"
    "  INSERT INTO webhook_org_versions (org_id, version) SELECT o, 1 WHERE o IS NOT NULL"
    "  ON CONFLICT (org_id) DO UPDATE SET version = webhook_org_versions.version + 1 $$;"
    "CREATE OR REPLACE FUNCTION hk_org_version_webhook() RETURNS trigger LANGUAGE plpgsql AS $$"
    "  BEGIN"
    "  IF TG_OP = 'INSERT' THEN PERFORM hk_org_version_bump(NEW.organization_id);"
    "  ELSIF TG_OP = 'DELETE' THEN PERFORM hk_org_version_bump(OLD.organization_id);"
    "  ELSE PERFORM hk_org_version_bump(OLD.organization_id);"
    "  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN"
    "  PERFORM hk_org_version_bump(NEW.organization_id); END IF;"
    "  END IF; RETURN NULL; END $$;"
    "CREATE OR REPLACE FUNCTION hk_org_version_sub() RETURNS trigger LANGUAGE plpgsql AS $$"
    "  BEGIN"
    "  IF TG_OP <> 'INSERT' THEN PERFORM hk_org_version_bump((SELECT organization_id FROM"
    "  webhook WHERE id = OLD.webhook_id)); END IF;"
    "  IF TG_OP <> 'DELETE' THEN PERFORM hk_org_version_bump((SELECT organization_id FROM"
    "  webhook WHERE id = NEW.webhook_id)); END IF;"
    "  RETURN NULL; END $$;"
    "CREATE OR REPLACE FUNCTION hk_org_version_org() RETURNS trigger LANGUAGE plpgsql AS $$"
    "  BEGIN PERFORM hk_org_version_bump(NEW.id); RETURN NULL; END $$;"
    "DROP TRIGGER IF EXISTS hk_org_version_webhook ON webhook;"
    "CREATE CONSTRAINT TRIGGER hk_org_version_webhook AFTER INSERT OR DELETE ON webhook"
    "  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hk_org_version_webhook();"
    "DROP TRIGGER IF EXISTS hk_org_version_webhook_update ON webhook;"
    "CREATE CONSTRAINT TRIGGER hk_org_version_webhook_update AFTER UPDATE OF "
    "id, name, url, secret, previous_secret, previous_secret_expires_at, "
    "organization_id, user_id, status, custom_headers, rate_limit_enabled, "
    "max_requests_per_minute, max_retries, filtering_options, signature_schemes, "
    "deleted_at, created_at, updated_at, retry_schedule, timeout_ms, signing_key, "
    "previous_signing_key, previous_signing_key_expires_at, ordering"
    "  ON webhook DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (("
    "OLD.id, OLD.name, OLD.url, OLD.secret, OLD.previous_secret, "
    "OLD.previous_secret_expires_at, OLD.organization_id, OLD.user_id, OLD.status, "
    "OLD.custom_headers::text, OLD.rate_limit_enabled, OLD.max_requests_per_minute, "
    "OLD.max_retries, OLD.filtering_options::text, OLD.signature_schemes, "
    "OLD.deleted_at, OLD.created_at, OLD.updated_at, OLD.retry_schedule, OLD.timeout_ms, "
    "OLD.signing_key, OLD.previous_signing_key, OLD.previous_signing_key_expires_at, "
    "OLD.ordering"
    ") IS DISTINCT FROM ("
    "NEW.id, NEW.name, NEW.url, NEW.secret, NEW.previous_secret, "
    "NEW.previous_secret_expires_at, NEW.organization_id, NEW.user_id, NEW.status, "
    "NEW.custom_headers::text, NEW.rate_limit_enabled, NEW.max_requests_per_minute, "
    "NEW.max_retries, NEW.filtering_options::text, NEW.signature_schemes, "
    "NEW.deleted_at, NEW.created_at, NEW.updated_at, NEW.retry_schedule, NEW.timeout_ms, "
    "NEW.signing_key, NEW.previous_signing_key, NEW.previous_signing_key_expires_at, "
    "NEW.ordering"
    ")) EXECUTE FUNCTION hk_org_version_webhook();"
    "DROP TRIGGER IF EXISTS hk_org_version_sub ON webhook_event_subscription;"
    "CREATE CONSTRAINT TRIGGER hk_org_version_sub AFTER INSERT OR DELETE OR UPDATE OF"
    "  webhook_id, event_id, is_enabled ON webhook_event_subscription"
    "  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hk_org_version_sub();"
    "DROP TRIGGER IF EXISTS hk_org_version_org ON organization;"
    "CREATE CONSTRAINT TRIGGER hk_org_version_org AFTER UPDATE OF disabled ON organization"
    "  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.disabled IS DISTINCT FROM"
    "  NEW.disabled) EXECUTE FUNCTION hk_org_version_org();",
};

/* Rolling upgrades (docs/INSTALL.md "Upgrade"): the migrations after which a hookd that
 * knows fewer migrations can no longer serve the database, "contract" steps (a column dropped,
 * renamed or retyped, a meaning changed). Every other migration only expands the schema (new
 * tables, nullable or defaulted columns, indexes) so that the previous release keeps running on
 * it beside the new one: a node that finds the schema newer than it knows serves it when every
 * migration past its own is an expand step (schema_migrations.compatible_from, written by the
 * node that applied them). Migrations 1-4 predate the rule and count as contract steps. A new
 * migration that breaks older readers must be listed here; prefer expand now, contract in a
 * later release once no node runs the old code. */
static const int hk_pg_contract_migrations[] = {1, 2, 3, 4};

#endif
