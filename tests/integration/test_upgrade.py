"""Upgrades on PostgreSQL (issue 20, part 3): a rolling upgrade, node A on the previous release
and node B on this one over the same database, keeps delivering with nothing lost; a node serves
a schema that a newer release only expanded and refuses, with a clear message, one that a
newer release contracted (schema_migrations.compatible_from; see pg_schema.h and
docs/OPERATIONS.md "Upgrades").

The previous release is built from git (tests/lib/servers.py previous_hookd) at ROLLING_FROM, the
first commit whose nodes read compatible_from: releases before it refuse any newer schema, so
they are upgraded by stopping every node first. PostgreSQL only: the SQLite store is one node.
"""
import json
import os
import threading

import pytest

import conftest
from conftest import SLOW, wait_until
from servers import pg_query, previous_hookd

pytestmark = pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg",
                                reason="a rolling upgrade needs several nodes on PostgreSQL")

ROLLING_FROM = "d8ebe8d"  # pg: rolling upgrades: schema_migrations.compatible_from
NODE_ENV = {"HOOKD_QUEUE_WINDOW": "100", "HOOKD_HTTP_TIMEOUT_MS": "2000", "HOOKD_LEASE_MS": "8000",
            "HOOKD_LOG_LEVEL": "info"}


def newest(url):
    (v, f), = pg_query(url, "SELECT version, COALESCE(compatible_from, version) FROM "
                            "schema_migrations ORDER BY version DESC LIMIT 1")
    return int(v), int(f)


def test_a_node_serves_an_expanded_schema_and_refuses_a_contracted_one(hookd, receiver):
    h = hookd(**NODE_ENV)
    url = h.env["PG_URL"]
    known, _ = newest(url)
    wid = h.create_webhook(receiver.url())["id"]
    h.stop()
    # a newer release applied an expand migration (a new nullable column, compatible_from stays)
    pg_query(url, "ALTER TABLE webhook ADD COLUMN hk_future_note text; "
                  f"INSERT INTO schema_migrations (version, compatible_from) "
                  f"VALUES ({known + 1}, {newest(url)[1]})")
    h.start()
    warn = [e for e in h.log_events() if e.get("event") == "store.schema_newer"]
    assert warn and warn[0]["version"] == known + 1 and warn[0]["known"] == known, warn
    h.ingest("up.expanded", {"n": 1})
    h.wait_delivery(wid, "success", n=1, timeout=20)
    assert newest(url)[0] == known + 1  # nothing was re-applied or rolled back
    h.stop()
    # then a contract migration: this node must refuse, saying which version it needs
    pg_query(url, f"INSERT INTO schema_migrations (version, compatible_from) "
                  f"VALUES ({known + 2}, {known + 2})")
    p = h.cli("migrate", check=False)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert f"version {known + 2}" in out and f"knows ({known})" in out, out
    assert f"knows version {known + 2} or later" in out, out


def test_rolling_upgrade_from_the_previous_release_loses_nothing(hookd, receiver, monkeypatch):
    """A (previous release) serves alone; B (this release) joins the same database and applies
    its migrations while both ingest and deliver; A is then replaced by this release. Every
    acknowledged event reaches the receiver, none more often than attempts recorded."""
    own = conftest.HOOKD_BIN
    old = previous_hookd(ROLLING_FROM)
    monkeypatch.setattr(conftest, "HOOKD_BIN", old)
    a = hookd(HOOKD_USER_AGENT="node-a", **NODE_ENV)
    url = a.env["PG_URL"]
    before, _ = newest(url)
    wid = a.create_webhook(receiver.url())["id"]

    acked, stop, errors = [], threading.Event(), []

    def feed(node, tag):
        i = 0
        while not stop.is_set():
            events = [{"type": "up.roll", "data": {"tag": tag, "i": i + k}} for k in range(20)]
            i += 20
            try:
                r = node.api("POST", "/api/webhook/v1/events/batch", {"events": events}, timeout=30)
            except Exception as e:  # noqa: BLE001 - a node being replaced refuses connections
                errors.append(repr(e))
                continue
            if r.status_code == 202:
                acked.extend(x["id"] for x in r.json()["results"])
            stop.wait(0.05)

    fa = threading.Thread(target=feed, args=(a, "a"), daemon=True)
    fa.start()
    wait_until(lambda: len(acked) >= 200, 20, 0.1, "node A (previous release) to take events")

    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    b = hookd(start=False, HOOKD_USER_AGENT="node-b", **NODE_ENV)
    b.env["PG_URL"] = url
    b.start()
    fb = threading.Thread(target=feed, args=(b, "b"), daemon=True)
    fb.start()
    after, _ = newest(url)
    # A, on the previous release, keeps serving the schema B migrated: it still ingests
    n = len(acked)
    wait_until(lambda: len(acked) >= n + 400, 30, 0.1, "both nodes to keep taking events")
    assert a.proc.poll() is None, a.logs()[-3000:]
    r = a.api("GET", f"/api/webhook/v1/{wid}")
    assert r.status_code == 200, r.text

    # replace A by this release (the second half of the rolling upgrade)
    stop.set()
    fa.join(30)
    fb.join(30)
    a.stop()
    a.start()
    want = set(acked)
    assert len(want) == len(acked)

    def arrived():
        got = {json.loads(x.body)["id"] for x in receiver.received()}
        return got >= want
    wait_until(arrived, 90, 0.2, f"all {len(want)} acknowledged events to arrive")
    by_id = {}
    for x in receiver.received():
        by_id.setdefault(json.loads(x.body)["id"], []).append(x.headers["x-delivery-id"])
    dup = {e: d for e, d in by_id.items() if len(d) > 1}
    for e, ds in dup.items():  # a repeat must be a recorded attempt (a lease that lapsed)
        assert b.delivery(ds[0])["attemptNumber"] >= len(ds), (e, ds)
    agents = {x.headers.get("user-agent") for x in receiver.received()}
    assert {"node-a", "node-b"} <= agents, agents  # both releases delivered
    assert after >= before
    print(f"rolling upgrade: schema {before} -> {after}, {len(want)} events, "
          f"{len(dup)} repeated (recorded attempts), {len(errors)} refused connections")
