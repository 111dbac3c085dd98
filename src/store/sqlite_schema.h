/*
 * sqlite_schema.h: the SQLite schema as numbered migrations (SPEC §2 names). Append new
 * migrations at the end; never edit one that has shipped. Times are INTEGER ms since epoch.
 *
 * Scheduling columns (not in the seed's schema): lease_owner names the node whose memory holds
 * the delivery; next_retry_at is the due time, NULL when the delivery is parked because its
 * webhook is not active. The partial index webhook_delivery_due holds exactly the deliveries
 * that any node may claim, so a claim never scans leased, parked or finished rows.
 *
 * Stored once, rendered on read: webhook_delivery.event_data is NULL when the data sent equals
 * the event's payload (no excludeFields), and request_body is rendered from the event when the
 * API shows a delivery, so a fan-out to ten webhooks stores the payload once. In the same way
 * request_headers holds only the headers of the delivery's last attempt (X-Delivery-Id,
 * signatures); the headers every attempt of a webhook version sends (Content-Type, User-Agent,
 * custom headers: up to 50 x 4 KB) are stored once in webhook_headers, under a reference
 * (an HMAC of their JSON) that the delivery keeps in request_headers_ref. Rows written before
 * migration 2 have the whole set in request_headers and no reference.
 */
#ifndef HK_SQLITE_SCHEMA_H
#define HK_SQLITE_SCHEMA_H

static const char *const hk_sqlite_migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE api_key ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL,"
    "  name TEXT,"
    "  key_hash TEXT NOT NULL UNIQUE,"
    "  key_prefix TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  last_used_at INTEGER);"
    "CREATE TABLE webhook ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  url TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  previous_secret TEXT,"
    "  previous_secret_expires_at INTEGER,"
    "  organization_id TEXT NOT NULL,"
    "  user_id TEXT,"
    "  status TEXT NOT NULL DEFAULT 'active'"
    "    CHECK (status IN ('active','paused','disabled','failed')),"
    "  custom_headers TEXT,"
    "  rate_limit_enabled INTEGER NOT NULL DEFAULT 1,"
    "  max_requests_per_minute INTEGER NOT NULL DEFAULT 60,"
    "  max_retries INTEGER NOT NULL DEFAULT 6,"
    "  filtering_options TEXT,"
    "  signature_schemes TEXT NOT NULL DEFAULT 'standard,reloop',"
    "  last_triggered_at INTEGER,"
    "  success_count INTEGER NOT NULL DEFAULT 0,"
    "  failure_count INTEGER NOT NULL DEFAULT 0,"
    "  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    "  deleted_at INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX webhook_org ON webhook (organization_id, created_at) WHERE deleted_at IS NULL;"
    "CREATE TABLE webhook_event_subscription ("
    "  id TEXT PRIMARY KEY,"
    "  webhook_id TEXT NOT NULL REFERENCES webhook (id),"
    "  event_id TEXT NOT NULL,"
    "  is_enabled INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (webhook_id, event_id));"
    "CREATE TABLE webhook_event ("
    "  id TEXT PRIMARY KEY,"
    "  event TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  source TEXT NOT NULL DEFAULT 'api',"
    "  idempotency_key TEXT,"
    "  organization_id TEXT NOT NULL,"
    "  user_id TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX webhook_event_idem ON webhook_event (organization_id, idempotency_key)"
    "  WHERE idempotency_key IS NOT NULL;"
    "CREATE INDEX webhook_event_org ON webhook_event (organization_id, created_at);"
    "CREATE TABLE webhook_delivery ("
    "  id TEXT PRIMARY KEY,"
    "  webhook_id TEXT NOT NULL REFERENCES webhook (id),"
    "  webhook_event_id TEXT NOT NULL REFERENCES webhook_event (id),"
    "  replay_of_delivery_id TEXT,"
    "  event_type TEXT NOT NULL,"
    "  event_data TEXT,"
    "  status TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (status IN ('pending','success','failed','retrying')),"
    "  request_url TEXT NOT NULL,"
    "  request_headers TEXT,"
    "  request_body TEXT,"
    "  response_status INTEGER,"
    "  response_body TEXT,"
    "  response_headers TEXT,"
    "  attempt_number INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL,"
    "  next_retry_at INTEGER,"
    "  last_attempt_at INTEGER,"
    "  error_message TEXT,"
    "  completed_at INTEGER,"
    "  duration_ms INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  lease_owner TEXT);"
    "CREATE INDEX webhook_delivery_due ON webhook_delivery (next_retry_at)"
    "  WHERE status IN ('pending','retrying') AND lease_owner IS NULL"
    "  AND next_retry_at IS NOT NULL;"
    "CREATE INDEX webhook_delivery_lease ON webhook_delivery (lease_owner)"
    "  WHERE lease_owner IS NOT NULL;"
    "CREATE INDEX webhook_delivery_webhook ON webhook_delivery (webhook_id, created_at);"
    "CREATE INDEX webhook_delivery_event ON webhook_delivery (webhook_event_id);"
    "CREATE TABLE webhook_delivery_attempt ("
    "  id TEXT PRIMARY KEY,"
    "  webhook_delivery_id TEXT NOT NULL REFERENCES webhook_delivery (id),"
    "  attempt_number INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  response_status INTEGER,"
    "  response_body TEXT,"
    "  response_headers TEXT,"
    "  duration_ms INTEGER,"
    "  error_message TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX webhook_delivery_attempt_delivery"
    "  ON webhook_delivery_attempt (webhook_delivery_id, attempt_number);"
    "CREATE TABLE hk_node ("
    "  id TEXT PRIMARY KEY,"
    "  alive_until INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL);",

    /* 2: request headers by reference (see above): a delivery no longer carries a copy of its
     * webhook's custom headers. Adding a NULL column rewrites nothing. */
    "CREATE TABLE webhook_headers ("
    "  ref TEXT PRIMARY KEY,"
    "  headers TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "ALTER TABLE webhook_delivery ADD COLUMN request_headers_ref TEXT;",

    /* 3: per-webhook delivery policy (docs/API.md "Delivery policy"): the webhook's own retry
     * schedule ("1s,5s,30s", as HOOKD_RETRY_SCHEDULE) and attempt deadline in ms; NULL = the
     * global option. Adding NULL columns rewrites nothing. */
    "ALTER TABLE webhook ADD COLUMN retry_schedule TEXT;"
    "ALTER TABLE webhook ADD COLUMN timeout_ms INTEGER;",

    /* 4: Ed25519 signatures (scheme "ed25519", Standard Webhooks v1a): the private key
     * ("whsk_" + base64, encrypted like the secret with WEBHOOK_ENCRYPTION_KEY) and, during a
     * key rotation's grace period, the previous one and when it stops signing. NULL: none. */
    "ALTER TABLE webhook ADD COLUMN signing_key TEXT;"
    "ALTER TABLE webhook ADD COLUMN previous_signing_key TEXT;"
    "ALTER TABLE webhook ADD COLUMN previous_signing_key_expires_at INTEGER;",

    /* 5: tenancy (SPEC §7): organizations as rows, backfilled from the organizations that keys
     * and webhooks name (made implicitly until now), and a scope per key. An admin key has
     * organization_id '' (no organization: the id charset has no empty id). */
    "CREATE TABLE organization ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  metadata TEXT NOT NULL DEFAULT '{}',"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX organization_created ON organization (created_at, id);"
    "INSERT OR IGNORE INTO organization (id, name, created_at, updated_at)"
    "  SELECT organization_id, organization_id, MIN(created_at), MIN(created_at) FROM"
    "  (SELECT organization_id, created_at FROM api_key UNION ALL"
    "   SELECT organization_id, created_at FROM webhook)"
    "  WHERE organization_id <> '' GROUP BY organization_id;"
    "ALTER TABLE api_key ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'"
    "  CHECK (scope IN ('full','read'));"
    "CREATE INDEX api_key_org ON api_key (organization_id, created_at);"
    /* portal sessions: short-lived bearer tokens of one organization, stored hashed */
    "CREATE TABLE portal_session ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full','read')),"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  webhook_ids TEXT);"
    "CREATE INDEX portal_session_org ON portal_session (organization_id, created_at);",

    /* 6: retention (store/prune.h). webhook_delivery_finished holds only finished deliveries,
     * by completion time, so a prune step reads the oldest ones first and never walks open
     * work; webhook_event_created orders events for the scan of those that matched nothing.
     * Building them reads each table once (seconds per million rows, at start). */
    "CREATE INDEX IF NOT EXISTS webhook_delivery_finished ON webhook_delivery (completed_at)"
    "  WHERE status IN ('success','failed');"
    "CREATE INDEX IF NOT EXISTS webhook_event_created ON webhook_event (created_at, id);"
    /* where the scan for events with no delivery stopped (created_at, id), so that a restart
     * does not walk every kept event again */
    "CREATE TABLE IF NOT EXISTS hk_prune_position ("
    "  name TEXT PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  id TEXT NOT NULL);",

    /* 7: the lists' indexes. Lists are newest first by (created_at, id) and page by keyset
     * (store.h, lists); each list and each of its filters gets an index that ends in
     * (created_at, id), so that a page is a range scan without a sort and a bounded count an
     * index-only scan. They supersede the (scope, created_at) indexes of migration 1, which
     * ordered ties by rowid (a sort for ORDER BY ..., id). Built in the migration's
     * transaction (seconds per million rows). */
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

    /* 8: operational events (src/store/opevents.h): 1 while a webhook set active again after
     * `failed` has not delivered since (its first success emits hookd.webhook.recovered and
     * clears it). A defaulted column: the previous release keeps running beside it. */
    "ALTER TABLE webhook ADD COLUMN recovering INTEGER NOT NULL DEFAULT 0;",

    /* 9: statistics (src/store/rollup.h, docs/API.md "Statistics"): one row per webhook and minute
     * (wall ms), added to by every results batch; the histograms are array literals of counts
     * ("{n0,n1,...}"). A new table: the previous release keeps running beside it. */
    "CREATE TABLE webhook_stats ("
    "  webhook_id TEXT NOT NULL,"
    "  minute INTEGER NOT NULL,"
    "  delivered INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  given_up INTEGER NOT NULL DEFAULT 0,"
    "  last_at INTEGER NOT NULL,"
    "  att_hist TEXT NOT NULL,"
    "  e2e_hist TEXT NOT NULL,"
    "  PRIMARY KEY (webhook_id, minute));"
    "CREATE INDEX webhook_stats_minute ON webhook_stats (minute);",

    /* 10: FIFO ordering (docs/API.md "Ordering"): 'fifo' makes a claim take only the webhook's
     * oldest open delivery (sqlite.c, FIFO_HEAD). A defaulted column: existing webhooks stay
     * 'parallel', and the previous release keeps running beside it (it ignores the column). */
    "ALTER TABLE webhook ADD COLUMN ordering TEXT NOT NULL DEFAULT 'parallel'"
    "  CHECK (ordering IN ('parallel','fifo'));",

    /* 11: coarser statistics (src/store/rollup.h): one row per webhook, grain (3600000: an hour,
     * 86400000: a UTC day) and start, added to by the same results batches in the same
     * transaction as the minute rows, so that a read by hour or day adds up one row a bucket.
     * Backfilled from the minute rows kept (hk_hist_sum adds histograms; the day rows from the
     * hour rows). A new table: the previous release keeps running beside it. */
    "CREATE TABLE webhook_stats_coarse ("
    "  webhook_id TEXT NOT NULL,"
    "  grain INTEGER NOT NULL,"
    "  start INTEGER NOT NULL,"
    "  delivered INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  given_up INTEGER NOT NULL DEFAULT 0,"
    "  last_at INTEGER NOT NULL,"
    "  att_hist TEXT NOT NULL,"
    "  e2e_hist TEXT NOT NULL,"
    "  PRIMARY KEY (webhook_id, grain, start));"
    "CREATE INDEX webhook_stats_coarse_start ON webhook_stats_coarse (start);"
    "INSERT INTO webhook_stats_coarse (webhook_id, grain, start, delivered, failed, given_up,"
    "  last_at, att_hist, e2e_hist)"
    "  SELECT webhook_id, 3600000, minute - minute % 3600000, sum(delivered), sum(failed),"
    "  sum(given_up), max(last_at), hk_hist_sum(att_hist), hk_hist_sum(e2e_hist)"
    "  FROM webhook_stats GROUP BY webhook_id, minute - minute % 3600000;"
    "INSERT INTO webhook_stats_coarse (webhook_id, grain, start, delivered, failed, given_up,"
    "  last_at, att_hist, e2e_hist)"
    "  SELECT webhook_id, 86400000, start - start % 86400000, sum(delivered), sum(failed),"
    "  sum(given_up), max(last_at), hk_hist_sum(att_hist), hk_hist_sum(e2e_hist)"
    "  FROM webhook_stats_coarse WHERE grain = 3600000"
    "  GROUP BY webhook_id, start - start % 86400000;",

    /* 12: the fan-out cache's change signal (src/store/rows.h, hk_org_candidates): one row per
     * organization whose version grows with every change to what fan-out reads of its webhooks,
     * kept by triggers, so that no writer (a node of another release, a hand-made change) can
     * miss it: a webhook inserted or deleted, updated in any column but its counters
     * (last_triggered_at, success_count, failure_count, consecutive_failures, recovering: a
     * results batch writes those and must not invalidate the cache), a subscription inserted,
     * deleted or updated, an organization disabled or enabled. No row: version 0 (the first
     * change makes it 1). A new table and triggers: nothing is rewritten. */
    "CREATE TABLE webhook_org_versions ("
    "  org_id TEXT PRIMARY KEY,"
    "  version INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TRIGGER webhook_org_version_insert AFTER INSERT ON webhook BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions VALUES (NEW.organization_id, 0);"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id = NEW.organization_id;"
    "  END;"
    "CREATE TRIGGER webhook_org_version_delete AFTER DELETE ON webhook BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions VALUES (OLD.organization_id, 0);"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id = OLD.organization_id;"
    "  END;"
    "CREATE TRIGGER webhook_org_version_update AFTER UPDATE OF "
    "id, name, url, secret, previous_secret, previous_secret_expires_at, "
    "organization_id, user_id, status, custom_headers, rate_limit_enabled, "
    "max_requests_per_minute, max_retries, filtering_options, signature_schemes, "
    "deleted_at, created_at, updated_at, retry_schedule, timeout_ms, signing_key, "
    "previous_signing_key, previous_signing_key_expires_at, ordering"
    "  ON webhook WHEN "
    "OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name OR OLD.url IS NOT NEW.url OR "
    "OLD.secret IS NOT NEW.secret OR OLD.previous_secret IS NOT NEW.previous_secret OR "
    "OLD.previous_secret_expires_at IS NOT NEW.previous_secret_expires_at OR "
    "OLD.organization_id IS NOT NEW.organization_id OR OLD.user_id IS NOT NEW.user_id OR "
    "OLD.status IS NOT NEW.status OR OLD.custom_headers IS NOT NEW.custom_headers OR "
    "OLD.rate_limit_enabled IS NOT NEW.rate_limit_enabled OR "
    "OLD.max_requests_per_minute IS NOT NEW.max_requests_per_minute OR "
    "OLD.max_retries IS NOT NEW.max_retries OR "
    "OLD.filtering_options IS NOT NEW.filtering_options OR "
    "OLD.signature_schemes IS NOT NEW.signature_schemes OR "
    "OLD.deleted_at IS NOT NEW.deleted_at OR OLD.created_at IS NOT NEW.created_at OR "
    "OLD.updated_at IS NOT NEW.updated_at OR "
    "OLD.retry_schedule IS NOT NEW.retry_schedule OR "
    "OLD.timeout_ms IS NOT NEW.timeout_ms OR OLD.signing_key IS NOT NEW.signing_key OR "
    "OLD.previous_signing_key IS NOT NEW.previous_signing_key OR "
    "OLD.previous_signing_key_expires_at IS NOT NEW.previous_signing_key_expires_at OR "
    "OLD.ordering IS NOT NEW.ordering"
    "  BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions VALUES (OLD.organization_id, 0);"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id = OLD.organization_id;"
    "  INSERT OR IGNORE INTO webhook_org_versions VALUES (NEW.organization_id, 0);"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id = NEW.organization_id;"
    "  END;"
    "CREATE TRIGGER webhook_org_version_sub_insert AFTER INSERT ON webhook_event_subscription"
    "  BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions SELECT organization_id, 0 FROM webhook"
    "  WHERE id = NEW.webhook_id;"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id ="
    "  (SELECT organization_id FROM webhook WHERE id = NEW.webhook_id);"
    "  END;"
    "CREATE TRIGGER webhook_org_version_sub_delete AFTER DELETE ON webhook_event_subscription"
    "  BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions SELECT organization_id, 0 FROM webhook"
    "  WHERE id = OLD.webhook_id;"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id ="
    "  (SELECT organization_id FROM webhook WHERE id = OLD.webhook_id);"
    "  END;"
    "CREATE TRIGGER webhook_org_version_sub_update AFTER UPDATE OF webhook_id, event_id,"
    "  is_enabled ON webhook_event_subscription BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions SELECT organization_id, 0 FROM webhook"
    "  WHERE id = OLD.webhook_id;"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id ="
    "  (SELECT organization_id FROM webhook WHERE id = OLD.webhook_id);"
    "  INSERT OR IGNORE INTO webhook_org_versions SELECT organization_id, 0 FROM webhook"
    "  WHERE id = NEW.webhook_id;"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id ="
    "  (SELECT organization_id FROM webhook WHERE id = NEW.webhook_id);"
    "  END;"
    "CREATE TRIGGER webhook_org_version_org AFTER UPDATE OF disabled ON organization"
    "  WHEN OLD.disabled IS NOT NEW.disabled BEGIN"
    "  INSERT OR IGNORE INTO webhook_org_versions VALUES (NEW.id, 0);"
    "  UPDATE webhook_org_versions SET version = version + 1 WHERE org_id = NEW.id;"
    "  END;",
};

#endif
