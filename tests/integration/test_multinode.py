"""Several hookd nodes on one PostgreSQL database (SPEC §1, §6), and PostgreSQL faults.

Each node names itself in the User-Agent it sends (HOOKD_USER_AGENT), so the counting receiver
knows which node delivered what. Ingest goes through node A only and both nodes hold a small
window (HOOKD_QUEUE_WINDOW=100): most deliveries wait in the store, and both nodes claim them
from it (FOR NO KEY UPDATE SKIP LOCKED), which is the path under test.

PostgreSQL only (HOOKD_TEST_STORE=pg): the SQLite store is single-node by design.
"""
import collections
import json
import os
import threading
import time

import pytest
import requests

from conftest import SLOW, wait_until

pytestmark = pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg",
                                reason="several nodes share a PostgreSQL store (HOOKD_TEST_STORE=pg)")

NODE_ENV = {
    "HOOKD_QUEUE_WINDOW": "100",
    "HOOKD_HTTP_TIMEOUT_MS": "2000",
    "HOOKD_LEASE_MS": "8000",
    "HOOKD_LOG_LEVEL": "info",
}


def two_nodes(hookd, env_a=None, env_b=None):
    a = hookd(HOOKD_USER_AGENT="node-a", **{**NODE_ENV, **(env_a or {})})
    b = hookd(start=False, HOOKD_USER_AGENT="node-b", **{**NODE_ENV, **(env_b or {})})
    b.env["PG_URL"] = a.env["PG_URL"]  # the same database; b keeps its own node id
    b.start()
    assert a.env["HOOKD_NODE_ID"] != b.env["HOOKD_NODE_ID"]
    return a, b


def ingest_batch(h, n, start=0, tag="m"):
    """Ingests n events through h in batches of 1000; returns their ids."""
    ids = []
    for off in range(0, n, 1000):
        events = [{"type": "multi.node", "data": {"tag": tag, "i": start + off + k}}
                  for k in range(min(1000, n - off))]
        r = h.api("POST", "/api/webhook/v1/events/batch", {"events": events}, timeout=60)
        assert r.status_code == 202, r.text
        ids += [x["id"] for x in r.json()["results"]]
    return ids


def tally(receiver):
    """(path, event id) -> [user agents of the requests that carried it, in arrival order]."""
    seen = collections.defaultdict(list)
    for rec in receiver.received():
        seen[(rec.path, json.loads(rec.body)["id"])].append(rec.headers.get("user-agent"))
    return seen


def unrecorded(h, receiver, seen):
    """The deliveries that arrived more often than hookd recorded attempts for them: true
    duplicates (a receiver that was too slow gets a retry, which is a recorded attempt)."""
    did = {}
    for rec in receiver.received():
        did[(rec.path, json.loads(rec.body)["id"])] = rec.headers["x-delivery-id"]
    out = {}
    for k, agents in seen.items():
        if len(agents) > 1 and h.delivery(did[k])["attemptNumber"] < len(agents):
            out[k] = agents
    return out


def test_two_nodes_deliver_each_exactly_once_and_share_the_work(hookd, receiver):
    slow_ok = {"HOOKD_HTTP_TIMEOUT_MS": "10000", "HOOKD_LEASE_MS": "20000"}
    a, b = two_nodes(hookd, slow_ok, slow_ok)
    a.create_webhook(receiver.url("/one"))
    a.create_webhook(receiver.url("/two"))
    ids = ingest_batch(a, 5000)
    want = {(p, i) for p in ("/one", "/two") for i in ids}
    wait_until(lambda: len(tally(receiver)) >= len(want), 120, 0.5, "10,000 deliveries")
    time.sleep(1.0 * SLOW)  # a duplicate would come now, if any
    seen = tally(receiver)
    assert set(seen) == want
    dups = unrecorded(a, receiver, seen)
    assert not dups, f"{len(dups)} deliveries arrived more than once, e.g. {list(dups.items())[:3]}"
    by_node = collections.Counter(v[0] for v in seen.values())
    assert by_node["node-a"] + by_node["node-b"] == 10000, by_node
    assert by_node["node-a"] >= 1000 and by_node["node-b"] >= 1000, by_node
    # the store agrees: every delivery succeeded with one attempt
    for h in (a, b):
        assert "dispatch.results_retry" not in h.logs()


def test_kill9_of_one_node_loses_nothing(hookd, receiver):
    """Node B dies with attempts in flight: A takes its deliveries over when B's heartbeat row
    expires; the only duplicates are attempts B had started and not recorded."""
    conc = 4
    # B logs at debug: its dispatch.results_written lines give the duplicate bound below
    a, b = two_nodes(hookd, env_b={"HOOKD_ENDPOINT_CONCURRENCY": str(conc),
                                   "HOOKD_LOG_LEVEL": "debug"})
    receiver.default = {"status": 200, "body": "ok", "delay": 0.02}
    a.create_webhook(receiver.url("/k1"))
    a.create_webhook(receiver.url("/k2"))
    ids = ingest_batch(a, 2000, tag="k9")
    wait_until(lambda: sum(1 for r in receiver.received() if r.headers.get("user-agent") == "node-b") > 300,
               60, 0.05, "node B to deliver a share")
    b.kill9()
    killed_at = time.time()
    want = {(p, i) for p in ("/k1", "/k2") for i in ids}
    wait_until(lambda: len(tally(receiver)) >= len(want), 90, 0.5, "every delivery after the kill")
    time.sleep(1.0 * SLOW)
    seen = tally(receiver)
    assert set(seen) == want
    dups = unrecorded(a, receiver, seen)
    # the bound (docs/RELIABILITY.md): attempts B had started and whose outcome it had not
    # recorded: at most `conc` in flight per webhook, plus those finished since its last results
    # write committed (the batch being written and the one accumulating, each about the size
    # of the largest batch B wrote: on a loaded machine a write that takes longer than the ones
    # before it lets more finish meanwhile, so the batches only estimate it; what bounds it for
    # sure is what B held: HOOKD_QUEUE_WINDOW jobs (waiting or in flight) and the outcomes it
    # had not written, which the same window limited when they were claimed)
    batches = [e["count"] for e in b.log_events() if e.get("event") == "dispatch.results_written"]
    assert batches, "node B logged no results batch"
    window = int(NODE_ENV["HOOKD_QUEUE_WINDOW"])
    bound = max(2 * conc + 2 * max(batches), window)
    assert len(dups) <= bound, f"{len(dups)} duplicates, bound {bound} (batches {batches[-20:]})"
    for agents in dups.values():
        assert "node-b" in agents, agents
    # and A did take work over after the kill
    late_a = [r for r in receiver.received() if r.at > killed_at and r.headers.get("user-agent") == "node-a"]
    assert late_a
    assert any(e.get("event") == "dispatch.reclaimed" for e in a.log_events())


class Producer:
    """Ingests single events through h from a thread, remembering every acknowledged id and
    every status answered."""

    def __init__(self, h, tag):
        self.h, self.tag = h, tag
        self.acked, self.codes = [], collections.Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        s = requests.Session()
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                r = s.post(self.h.base + "/api/webhook/v1/events", timeout=10,
                           headers={"x-api-key": self.h.key, "content-type": "application/json"},
                           data=json.dumps({"type": "pg.restart", "data": {"tag": self.tag, "i": i}}))
            except requests.RequestException:
                self.codes["error"] += 1
                time.sleep(0.01)
                continue
            self.codes[r.status_code] += 1
            if r.status_code == 202:
                self.acked.append(r.json()["id"])
            elif r.status_code != 503:
                raise AssertionError(f"ingest answered {r.status_code}: {r.text}")
            else:
                time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def test_postgres_restart_under_two_nodes_loses_nothing(hookd, receiver, pg_server):
    a, b = two_nodes(hookd)
    a.create_webhook(receiver.url("/r"))
    ids = ingest_batch(a, 1000, tag="before")
    with Producer(a, "during") as pa, Producer(b, "during-b") as pb:
        wait_until(lambda: receiver.count("/r") > 300, 30, 0.05, "deliveries under way")
        pg_server.stop()
        time.sleep(2.0)
        assert pa.codes[503] + pb.codes[503] > 0, "ingest must answer 503 while PostgreSQL is down"
        pg_server.start()
        wait_until(lambda: len(pa.acked) > 50 and len(pb.acked) > 50, 30, 0.1,
                   "ingest to work again on both nodes")
    everything = set(ids) | set(pa.acked) | set(pb.acked)
    got = lambda: {json.loads(r.body)["id"] for r in receiver.received("/r")}
    wait_until(lambda: everything <= got(), 60, 0.5, "every acknowledged event delivered")
    for h in (a, b):
        h.wait_healthy()
        assert any(e.get("event") == "store.reconnected" for e in h.log_events()), h.logs()[-2000:]


def test_postgres_outage_503_then_recovery(hookd, receiver, pg_server):
    """While PostgreSQL is down: ingest 503 (nothing acknowledged that is not stored), health
    503 naming the store; the attempt in flight finishes and its result is written once the
    database is back; hookd reconnects by itself."""
    h = hookd()
    wh = h.create_webhook(receiver.url("/slow"))
    receiver.plan("/slow", [{"delay": 2.0}])
    h.ingest(data={"n": "in flight"})
    receiver.wait(1, "/slow")
    pg_server.stop()
    try:
        r = h.api("POST", "/api/webhook/v1/events", {"type": "t", "data": {"n": 2}})
        assert r.status_code == 503, r.text
        assert r.json()["code"] and r.json()["message"]
        def health_503():
            x = requests.get(h.base + "/api/webhook/health", timeout=5)
            return [x] if x.status_code == 503 else None  # a 503 Response is falsy itself
        health = wait_until(health_503, 10, 0.2, "health 503")[0]
        assert health.json()["checks"]["store"] == "down", health.text
        time.sleep(2.5)  # the attempt in flight finishes meanwhile; its result cannot be written
    finally:
        pg_server.start()
    h.wait_healthy(30)
    d = h.wait_delivery(wh["id"], "success", timeout=30)[0]
    assert d["attemptNumber"] == 1
    assert receiver.count("/slow") == 1  # written once it was back: not attempted again
    h.ingest(data={"n": 3})
    receiver.wait(2, "/slow")
    assert any(e.get("event") == "store.reconnected" for e in h.log_events())


def test_postgres_down_longer_than_the_lease_sends_nothing_twice(hookd, receiver, pg_server):
    """Both nodes lose their heartbeats for longer than HOOKD_LEASE_MS: each stops starting
    attempts before its leases could lapse, and once the database is back hands its waiting
    deliveries back rather than sending what another node may have taken over. Only attempts
    whose outcome was not recorded when the database went away (in flight, or finished while
    the last results write was under way: docs/RELIABILITY.md) may arrive twice, so every
    duplicate was first sent before the database came back."""
    conc = 4
    env = {"HOOKD_ENDPOINT_CONCURRENCY": str(conc), "HOOKD_LOG_LEVEL": "debug"}
    a, b = two_nodes(hookd, env, env)
    receiver.default = {"status": 200, "body": "ok", "delay": 0.02}
    a.create_webhook(receiver.url("/lapse"))
    ids = ingest_batch(a, 2000, tag="lapse")
    wait_until(lambda: receiver.count("/lapse") > 300, 60, 0.05, "deliveries under way")
    pg_server.stop()
    time.sleep(11.0)  # > HOOKD_LEASE_MS (8 s) + a heartbeat period
    back_at = time.time()
    pg_server.start()
    want = {("/lapse", i) for i in ids}
    wait_until(lambda: len(tally(receiver)) >= len(want), 90, 0.5, "every delivery after the outage")
    time.sleep(1.0 * SLOW)
    seen = tally(receiver)
    assert set(seen) == want
    dups = unrecorded(a, receiver, seen)
    # a node whose leases lapsed sends nothing that another node may have taken over once the
    # database is back: the first copy of every duplicate arrived before it came back (an
    # attempt started then, whose outcome could not be recorded)
    first = {}
    for rec in receiver.received():
        k = (rec.path, json.loads(rec.body)["id"])
        first[k] = min(first.get(k, rec.at), rec.at)
    late = {k: v for k, v in dups.items() if first[k] >= back_at}
    assert not late, f"{len(late)} of {len(dups)} duplicates were first sent after the outage: {list(late.items())[:5]}"
    # and how many (the bound of docs/RELIABILITY.md): per node, its attempts in flight when the
    # database went away plus those that finished during its last results write: the batch
    # being written and the one accumulating, each about the size of the batches it wrote just
    # before (a few with a fast store, more on a loaded machine)
    bound = 0
    for h in (a, b):
        events = h.log_events()
        stop = next((i for i, e in enumerate(events) if e.get("event") == "dispatch.results_retry"),
                    len(events))
        batches = [e["count"] for e in events[:stop] if e.get("event") == "dispatch.results_written"]
        bound += max(conc + 2 * max(batches, default=0), int(NODE_ENV["HOOKD_QUEUE_WINDOW"]))
    assert len(dups) <= bound, f"{len(dups)} sent twice, bound {bound}"
    for h in (a, b):
        events = {e.get("event") for e in h.log_events()}
        assert "dispatch.paused" in events and "dispatch.leases_lapsed" in events, sorted(events)


def test_nodes_migrating_a_fresh_database_at_once(pg_server, tmp_path):
    """`hookd migrate` (and every `serve`) applies the schema under an advisory lock: four at
    once on an empty database all succeed, and each migration is applied once."""
    import subprocess
    from conftest import HOOKD_BIN, SANITIZER_VARS, check_no_sanitizer_report
    url = pg_server.new_database("mig")
    env = {"PATH": os.environ["PATH"], "PG_URL": url,
           **{k: os.environ[k] for k in SANITIZER_VARS if k in os.environ}}
    procs = [subprocess.Popen([HOOKD_BIN, "migrate"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60 * SLOW) for p in procs]
    for o, e in outs:
        check_no_sanitizer_report(o + e, "hookd migrate")
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert all("migrated (postgres)" in o for o, _ in outs), outs
    rows = pg_server.sql("SELECT version, count(*) FROM schema_migrations GROUP BY version", url)
    assert rows and all(n == "1" for _, n in rows), rows
    types = pg_server.sql("SELECT typname FROM pg_type WHERE typname LIKE 'webhook%status' ORDER BY 1", url)
    assert [t for t, in types] == ["webhook_delivery_status", "webhook_status"]


def test_migration_2_rebuilds_the_due_index_of_a_populated_database(pg_server, tmp_path):
    """A database at schema version 1 holding open deliveries migrates to version 2: the due
    index becomes (next_retry_at, id), keeps its partial predicate, and no row is touched."""
    from conftest import run_hookd
    url = pg_server.new_database("mig2")
    env = {"PATH": os.environ["PATH"], "PG_URL": url}

    def migrate():
        p = run_hookd(["migrate"], env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
    migrate()
    # back to version 1: its due index, without the version-2 stamp
    pg_server.sql("DROP TRIGGER hk_org_version_webhook_update ON webhook; "  # the fan-out
                  "DROP TRIGGER hk_org_version_webhook ON webhook; "  # cache's version
                  "DROP TRIGGER hk_org_version_sub ON webhook_event_subscription; "
                  "DROP TABLE webhook_org_versions; "
                  "DROP INDEX webhook_delivery_due; CREATE INDEX webhook_delivery_due ON "
                  "webhook_delivery (next_retry_at) WHERE status IN ('pending', 'retrying') AND "
                  "lease_owner IS NULL AND next_retry_at IS NOT NULL; "
                  "DROP TABLE IF EXISTS webhook_headers; ALTER TABLE webhook_delivery DROP "
                  "COLUMN IF EXISTS request_headers_ref; "  # migration 3
                  "ALTER TABLE webhook DROP COLUMN IF EXISTS retry_schedule, DROP COLUMN IF "
                  "EXISTS timeout_ms, DROP COLUMN IF EXISTS signing_key, DROP COLUMN IF EXISTS "
                  "previous_signing_key, DROP COLUMN IF EXISTS "
                  "previous_signing_key_expires_at; "  # the per-webhook policy and Ed25519 ones
                  "DROP TABLE IF EXISTS organization, portal_session; DROP INDEX IF EXISTS "
                  "api_key_org; ALTER TABLE api_key DROP COLUMN IF EXISTS scope; "  # tenancy
                  "DROP INDEX webhook_list, webhook_list_status, webhook_event_list, "
                  "webhook_event_list_type, webhook_delivery_list, webhook_delivery_list_status; "
                  "CREATE INDEX webhook_org ON webhook (organization_id, created_at) WHERE "
                  "deleted_at IS NULL; CREATE INDEX webhook_event_org ON webhook_event "
                  "(organization_id, created_at); CREATE INDEX webhook_delivery_webhook ON "
                  "webhook_delivery (webhook_id, created_at); "  # the list indexes' migration
                  "DELETE FROM schema_migrations WHERE version >= 2", url)
    pg_server.sql("INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, "
                  "request_url, status, attempt_number, max_attempts, next_retry_at, created_at, "
                  "event_data) SELECT 'whde_' || g, 'wh_1', 'ev_' || g, 't', 'http://x/', "
                  "'pending', 0, 5, now(), now(), '{}' FROM generate_series(1, 5000) g", url)
    migrate()
    (idx,), = pg_server.sql("SELECT indexdef FROM pg_indexes WHERE indexname = "
                            "'webhook_delivery_due'", url)
    assert "(next_retry_at, id)" in idx and "lease_owner IS NULL" in idx, idx
    assert int(pg_server.sql("SELECT max(version) FROM schema_migrations", url)[0][0]) >= 2
    assert pg_server.sql("SELECT count(*) FROM webhook_delivery WHERE status = 'pending'",
                         url) == [["5000"]]
