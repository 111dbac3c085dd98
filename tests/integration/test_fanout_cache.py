"""The fan-out cache (src/store/rows.h, issue 21 scenario i): the store's writer keeps each
organization's candidate webhooks across transactions and reloads them only when the
organization's version (webhook_org_versions, kept by triggers on the webhook, subscription and
organization tables) moved. The risk of a cache is a stale answer: these tests change webhooks
through another writer than the one that ingests, and check that the very next event follows
the change, on a database migrated from the previous release (both stores), through a second
PostgreSQL node, and through a node of the previous release (which knows nothing of the
cache: the triggers bump the version for it).
"""
import json
import os
import sqlite3

import pytest

import conftest
from conftest import SLOW
from servers import pg_query, previous_hookd

PG = os.environ.get("HOOKD_TEST_STORE", "sqlite") == "pg"
ENV = {"HOOKD_HTTP_TIMEOUT_MS": "2000", "HOOKD_LEASE_MS": "8000", "HOOKD_LOG_LEVEL": "info"}
ROLLING_FROM = "d8ebe8d"  # test_upgrade.py: the first release that serves a newer schema


def raw_sql(h, sql):
    """Runs sql on h's database on a connection of its own (another writer)."""
    if "PG_URL" in h.env and h.env["PG_URL"]:
        pg_query(h.env["PG_URL"], sql)
        return
    db = sqlite3.connect(h.env["HOOKD_DB"], timeout=10 * SLOW)
    db.execute(sql)
    db.commit()
    db.close()


def org_version(h):
    sql = "SELECT COALESCE(max(version), 0) FROM webhook_org_versions"
    if "PG_URL" in h.env and h.env["PG_URL"]:
        return int(pg_query(h.env["PG_URL"], sql)[0][0])
    db = sqlite3.connect(h.env["HOOKD_DB"], timeout=10 * SLOW)
    v = db.execute(sql).fetchone()[0]
    db.close()
    return int(v)


def test_cache_on_a_database_of_the_previous_release(hookd, receiver, monkeypatch):
    """The migration adds the version table and its triggers to a populated database of the
    previous release; then a change written by another process (raw SQL, as a hand edit or an
    older node would) reaches the next event although the organization's set is cached, and a
    delivery's results do not move the version."""
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h = hookd(**ENV)
    w1 = h.create_webhook(receiver.url("/one"), events=["cache.*"])
    for i in range(5):
        h.ingest("cache.old", {"i": i})
    receiver.wait(5, path="/one")
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    h.ingest("cache.new", {"i": 5})  # loads and caches the organization's set
    receiver.wait(6, path="/one")
    h.wait_delivery(w1["id"], "success", n=6)
    v = org_version(h)
    for i in range(5):  # deliveries and their results: counters only
        h.ingest("cache.new", {"i": 6 + i})
    receiver.wait(11, path="/one")
    h.wait_delivery(w1["id"], "success", n=11)
    assert org_version(h) == v, "a delivery's results moved the version (cache reloaded)"
    # another writer re-points the webhook (and moves updated_at, as every writer does: the
    # dispatcher keeps its own copy of a webhook until a newer one comes): the next event goes
    # to the new URL
    later = "updated_at + interval '1 second'" if PG else "updated_at + 1000"
    raw_sql(h, f"UPDATE webhook SET url = '{receiver.url('/moved')}', updated_at = {later} "
               f"WHERE id = '{w1['id']}'")
    assert org_version(h) > v
    assert h.ingest("cache.new", {"i": 99})["deliveries"] == 1
    got = receiver.wait(1, path="/moved")
    assert json.loads(got[0].body)["data"] == {"i": 99}
    # and unsubscribes it: the next event has no delivery
    raw_sql(h, f"DELETE FROM webhook_event_subscription WHERE webhook_id = '{w1['id']}'")
    assert h.ingest("cache.new", {"i": 100})["deliveries"] == 0
    assert len(h.deliveries(w1["id"])) == 12


def two_nodes(hookd, env_a=None):
    a = hookd(HOOKD_USER_AGENT="node-a", **{**ENV, **(env_a or {})})
    b = hookd(start=False, HOOKD_USER_AGENT="node-b", **ENV)
    b.env["PG_URL"] = a.env["PG_URL"]  # the same database; b keeps its own node id
    b.key = a.key
    b.start()
    return a, b


@pytest.mark.skipif(not PG, reason="two nodes share a PostgreSQL store (HOOKD_TEST_STORE=pg)")
def test_a_change_through_one_node_is_seen_by_the_next_event_through_the_other(hookd, receiver):
    """Node B ingests (its set of the organization is cached); each change made through node A
    (create, pause, re-point, delete) shows in B's very next event."""
    a, b = two_nodes(hookd)
    w1 = a.create_webhook(receiver.url("/one"), events=["cache.*"])
    assert b.ingest("cache.x", {"n": 1})["deliveries"] == 1
    receiver.wait(1, path="/one")
    w2 = a.create_webhook(receiver.url("/two"), events=["cache.x"])
    # right after: B must not use its cached set
    assert b.ingest("cache.x", {"n": 2})["deliveries"] == 2
    receiver.wait(1, path="/two")
    receiver.wait(2, path="/one")
    # the receiver answers before node B commits the result: wait for the record, or the
    # delivery of n=2 still shows pending below (CI's ASan + PostgreSQL pass saw it)
    a.wait_delivery(w1["id"], "success", 2)
    r = a.api("PATCH", f"/api/webhook/v1/{w1['id']}", {"status": "paused"})
    assert r.status_code == 200, r.text
    assert b.ingest("cache.x", {"n": 3})["deliveries"] == 2
    receiver.wait(2, path="/two")
    pending = [d for d in a.deliveries(w1["id"]) if d["status"] == "pending"]
    assert len(pending) == 1, a.deliveries(w1["id"])  # parked, not sent
    r = a.api("PATCH", f"/api/webhook/v1/{w2['id']}", {"url": receiver.url("/moved")})
    assert r.status_code == 200, r.text
    assert b.ingest("cache.x", {"n": 4})["deliveries"] == 2
    receiver.wait(1, path="/moved")
    r = a.api("DELETE", f"/api/webhook/v1/{w2['id']}")
    assert r.status_code in (200, 204), r.text
    assert b.ingest("cache.x", {"n": 5})["deliveries"] == 1  # w1's, parked
    assert len(b.deliveries(w1["id"])) == 5


@pytest.mark.skipif(not PG, reason="two nodes share a PostgreSQL store (HOOKD_TEST_STORE=pg)")
def test_a_node_of_the_previous_release_invalidates_the_cache(hookd, receiver, monkeypatch):
    """During a rolling upgrade the previous release writes webhooks too: node A (previous
    release) creates a webhook after node B (this release, which migrated the database) cached
    the organization; B's next event reaches it."""
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd(ROLLING_FROM))
    a = hookd(HOOKD_USER_AGENT="node-a", **ENV)
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    b = hookd(start=False, HOOKD_USER_AGENT="node-b", **ENV)
    b.env["PG_URL"] = a.env["PG_URL"]
    b.key = a.key
    b.start()  # migrates: the version table and its triggers
    w1 = a.create_webhook(receiver.url("/one"), events=["roll.*"])
    assert b.ingest("roll.x", {"n": 1})["deliveries"] == 1
    receiver.wait(1, path="/one")
    a.create_webhook(receiver.url("/two"), events=["roll.x"])  # the previous release writes
    assert b.ingest("roll.x", {"n": 2})["deliveries"] == 2
    receiver.wait(1, path="/two")
    r = a.api("PATCH", f"/api/webhook/v1/{w1['id']}", {"events": ["other.*"]})
    assert r.status_code == 200, r.text
    assert b.ingest("roll.x", {"n": 3})["deliveries"] == 1
    receiver.wait(2, path="/two")
    assert len(b.deliveries(w1["id"])) == 2
