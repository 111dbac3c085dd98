"""Retention (SPEC §7, docs/OPERATIONS.md "Retention and pruning"): finished events, deliveries
and attempts older than HOOKD_RETENTION go, and the metrics and the log say so; open deliveries
of any age and their events stay; events that matched nothing go after
HOOKD_RETENTION_UNMATCHED; a paused webhook's month-old held deliveries still go out when it is
resumed; an idempotency key lives as long as its event; `hookd prune [--dry-run]`; the SQLite
file stops growing (auto_vacuum=INCREMENTAL) and a previous version's file is converted. Both
stores (HOOKD_TEST_STORE=pg): rows are aged by editing timestamps while hookd is stopped."""
import sqlite3
import time

import pytest
import requests

import conftest
from conftest import SLOW, run_hookd, wait_until
from servers import previous_hookd
from test_observability import parse_metrics

EV = "/api/webhook/v1/events"
DAY_MS = 86400000

# retention in seconds, rounds every 200 ms
FAST = {"HOOKD_PRUNE_INTERVAL_MS": "200"}


def is_pg(h):
    return bool(h.env.get("PG_URL"))


def query(h, sql):
    """Rows of sql on hookd's database (SQLite file or PostgreSQL), values as strings."""
    if is_pg(h):
        from servers import pg_query
        return [tuple(r) for r in pg_query(h.env["PG_URL"], sql)]
    con = sqlite3.connect(h.env["HOOKD_DB"], timeout=30)
    try:
        rows = con.execute(sql).fetchall()
        con.commit()
        return [tuple(None if v is None else str(v) for v in r) for r in rows]
    finally:
        con.close()


def count(h, table, where="1=1"):
    return int(query(h, f"SELECT count(*) FROM {table} WHERE {where}")[0][0])


def age_all(h, days):
    """Moves every stored time of events, deliveries and attempts `days` into the past (hookd
    must be stopped)."""
    cols = {"webhook_event": ["created_at"],
            "webhook_delivery": ["created_at", "completed_at", "last_attempt_at"],
            "webhook_delivery_attempt": ["created_at"]}
    for table, cs in cols.items():
        if is_pg(h):
            sets = ", ".join(f"{c} = {c} - interval '{days} days'" for c in cs)
        else:
            sets = ", ".join(f"{c} = {c} - {days * DAY_MS}" for c in cs)
        query(h, f"UPDATE {table} SET {sets}")


def metrics(h):
    return parse_metrics(requests.get(h.base + "/metrics", timeout=10).text)[0]


def pruned_metric(h, table):
    return metrics(h)[("hookd_pruned_total", (("table", table),))]


def pruned_logs(h):
    return [e for e in h.log_events() if e.get("event") == "store.pruned"]


def event_status(h, eid):
    return h.api("GET", f"{EV}/{eid}").status_code


def test_finished_rows_older_than_retention_go_and_metrics_and_log_say_so(hookd, receiver):
    h = hookd(HOOKD_RETENTION="3s", HOOKD_RETENTION_UNMATCHED="off", **FAST)
    ok = h.create_webhook(receiver.url("/ok"), events=["t.ok"])["id"]
    bad = h.create_webhook(receiver.url("/bad"), events=["t.bad"], maxRetries=1)["id"]
    receiver.plan("/bad", [{"status": 500}] * 10)
    evs = [h.ingest("t.ok", {"i": i})["id"] for i in range(4)]
    evs.append(h.ingest("t.bad", {"i": 9})["id"])
    h.wait_delivery(ok, "success", n=4)
    h.wait_delivery(bad, "failed", n=1, timeout=15 * SLOW)
    # and the failure's hookd.delivery.exhausted (docs/API.md "Operational events"): no webhook
    # subscribes to it, an unmatched event, which goes after HOOKD_RETENTION too
    assert count(h, "webhook_event") == 6
    assert count(h, "webhook_delivery") == 5
    assert count(h, "webhook_delivery_attempt") == 6  # 4 successes, 2 tries of the failure
    # gone after the retention (3 s after each finished) and a round
    wait_until(lambda: count(h, "webhook_delivery") == 0, 15 * SLOW, 0.2, "deliveries pruned")
    wait_until(lambda: count(h, "webhook_event") == 0, 5 * SLOW, 0.2, "events pruned")
    assert count(h, "webhook_delivery_attempt") == 0
    for eid in evs:
        assert event_status(h, eid) == 404
    assert h.deliveries(ok) == [] and h.deliveries(bad) == []
    # the metric counts what went, per table
    wait_until(lambda: pruned_metric(h, "attempt") == 6, 5 * SLOW, 0.1, "metric")
    assert pruned_metric(h, "event") == 6
    assert pruned_metric(h, "delivery") == 5
    m = metrics(h)
    assert m[("hookd_retention_lag_seconds", ())] == 0
    # one log line per round that pruned something, with its counts
    logs = pruned_logs(h)
    assert logs, "no store.pruned log line"
    assert sum(e["events"] for e in logs) == 6  # with the hookd.delivery.exhausted
    assert sum(e["deliveries"] for e in logs) == 5
    assert sum(e["attempts"] for e in logs) == 6


def test_open_deliveries_of_any_age_and_their_events_stay(hookd, receiver):
    h = hookd(HOOKD_RETENTION="2s", HOOKD_RETENTION_UNMATCHED="2s",
              HOOKD_RETRY_SCHEDULE="1h", **FAST)
    ok = h.create_webhook(receiver.url("/ok"), events=["t.mixed"])["id"]
    held = h.create_webhook(receiver.url("/held"), events=["t.mixed", "t.held"],
                            status="paused")["id"]
    retry = h.create_webhook(receiver.url("/retry"), events=["t.retry"])["id"]
    receiver.plan("/retry", [{"status": 503}] * 5)
    mixed = h.ingest("t.mixed", {"a": 1})["id"]  # one delivery finishes, one is held
    only_held = h.ingest("t.held", {"a": 2})["id"]
    retrying = h.ingest("t.retry", {"a": 3})["id"]
    h.wait_delivery(ok, "success")
    h.wait_delivery(retry, "retrying")
    # the finished delivery goes: pruning runs
    wait_until(lambda: h.deliveries(ok) == [], 15 * SLOW, 0.2, "finished delivery pruned")
    # and then a month passes (hookd stopped): the open ones are still kept
    h.stop()
    age_all(h, 40)
    h.start()
    time.sleep(3 * SLOW)  # several rounds past both retentions
    assert [d["status"] for d in h.deliveries(held)] == ["pending", "pending"]
    assert [d["status"] for d in h.deliveries(retry)] == ["retrying"]
    for eid in (mixed, only_held, retrying):
        assert event_status(h, eid) == 200, eid
    assert count(h, "webhook_delivery_attempt",
                 "webhook_delivery_id IN (SELECT id FROM webhook_delivery WHERE status = "
                 "'retrying')") == 1


def test_unmatched_events_go_after_retention_unmatched(hookd, receiver):
    h = hookd(HOOKD_RETENTION="1h", HOOKD_RETENTION_UNMATCHED="2s", **FAST)
    wid = h.create_webhook(receiver.url(), events=["t.matched"])["id"]
    unmatched = [h.ingest("t.nobody", {"i": i})["id"] for i in range(3)]
    matched = h.ingest("t.matched", {"i": 1})["id"]
    h.wait_delivery(wid, "success")
    assert all(event_status(h, e) == 200 for e in unmatched)
    wait_until(lambda: all(event_status(h, e) == 404 for e in unmatched), 15 * SLOW, 0.2,
               "unmatched events pruned")
    # a matched event, finished, is kept for HOOKD_RETENTION (1 h)
    assert event_status(h, matched) == 200
    assert len(h.deliveries(wid)) == 1
    wait_until(lambda: pruned_metric(h, "event") == 3, 5 * SLOW, 0.1, "metric")
    assert pruned_metric(h, "delivery") == 0


def test_paused_webhooks_month_old_held_deliveries_go_out_when_resumed(hookd, receiver):
    h = hookd(HOOKD_RETENTION="30d", **FAST)
    held = h.create_webhook(receiver.url("/held"), events=["t.a"], status="paused")["id"]
    done = h.create_webhook(receiver.url("/done"), events=["t.b"])["id"]
    held_events = [h.ingest("t.a", {"i": i})["id"] for i in range(3)]
    finished_event = h.ingest("t.b", {"i": 0})["id"]
    h.wait_delivery(done, "success")
    h.stop()
    age_all(h, 31)
    h.start()
    # pruning ran on the aged rows: the finished month-old delivery and its event went
    wait_until(lambda: event_status(h, finished_event) == 404, 15 * SLOW, 0.2, "finished pruned")
    assert h.deliveries(done) == []
    assert len(h.deliveries(held)) == 3
    r = h.api("PATCH", f"/api/webhook/v1/{held}", {"status": "active"})
    assert r.status_code == 200, r.text
    got = receiver.wait(3, "/held", timeout=15 * SLOW)
    assert sorted(g.json["id"] for g in got) == sorted(held_events)
    h.wait_delivery(held, "success", n=3)


def test_idempotency_key_lives_as_long_as_its_event(hookd, receiver):
    h = hookd(HOOKD_RETENTION="3s", **FAST)
    wid = h.create_webhook(receiver.url())["id"]
    first = h.ingest("t.k", {"i": 1}, idempotencyKey="order-42")
    assert first["duplicate"] is False
    again = h.ingest("t.k", {"i": 1}, idempotencyKey="order-42", expect=200)
    assert again["duplicate"] is True and again["id"] == first["id"]
    h.wait_delivery(wid, "success")
    assert receiver.count() == 1
    wait_until(lambda: event_status(h, first["id"]) == 404, 15 * SLOW, 0.2, "event pruned")
    # the key went with its event: the same key now makes a new event (and a new delivery)
    later = h.ingest("t.k", {"i": 1}, idempotencyKey="order-42")
    assert later["duplicate"] is False and later["id"] != first["id"]
    receiver.wait(2)


def _prune_fixture(h, receiver):
    """Stores: 2 successes, 1 final failure (2 attempts), 1 unmatched event, 1 held delivery."""
    ok = h.create_webhook(receiver.url("/ok"), events=["t.ok"])["id"]
    bad = h.create_webhook(receiver.url("/bad"), events=["t.bad"], maxRetries=1)["id"]
    h.create_webhook(receiver.url("/held"), events=["t.held"], status="paused")["id"]
    receiver.plan("/bad", [{"status": 500}] * 4)
    h.ingest("t.ok", {"i": 1})
    h.ingest("t.ok", {"i": 2})
    h.ingest("t.bad", {"i": 3})
    h.ingest("t.nobody", {"i": 4})
    kept = h.ingest("t.held", {"i": 5})["id"]
    h.wait_delivery(ok, "success", n=2)
    h.wait_delivery(bad, "failed", timeout=15 * SLOW)
    return kept


def snapshot(h):
    return tuple(count(h, t) for t in ("webhook_event", "webhook_delivery",
                                       "webhook_delivery_attempt"))


def test_prune_cli_dry_run_counts_and_prune_deletes(hookd, receiver):
    # the server keeps everything; the CLI is given a retention of 1 s
    h = hookd(HOOKD_RETENTION="off", HOOKD_RETENTION_UNMATCHED="off")
    kept = _prune_fixture(h, receiver)
    time.sleep(1.5)
    cli_env = {"HOOKD_RETENTION": "1s", "HOOKD_RETENTION_UNMATCHED": "1s"}
    before = snapshot(h)
    assert before == (6, 4, 4)  # with the failure's hookd.delivery.exhausted (unmatched)
    p = h.cli("prune", "--dry-run", env=cli_env)
    assert "would prune: events 5, deliveries 3, attempts 4" in p.stdout, p.stdout
    assert snapshot(h) == before  # nothing changed
    # with hookd running
    p = h.cli("prune", env=cli_env)
    assert "pruned: events 5, deliveries 3, attempts 4" in p.stdout, p.stdout
    assert snapshot(h) == (1, 1, 0)
    assert event_status(h, kept) == 200
    # and with hookd stopped: nothing left to do, the held delivery stays
    h.stop()
    p = h.cli("prune", env=cli_env)
    assert "pruned: events 0, deliveries 0, attempts 0" in p.stdout, p.stdout
    p = h.cli("prune", "--dry-run", env=cli_env)
    assert "would prune: events 0, deliveries 0, attempts 0" in p.stdout, p.stdout
    assert snapshot(h) == (1, 1, 0)
    p = h.cli("prune", "--bogus", env=cli_env, check=False)
    assert p.returncode == 2 and "--bogus" in p.stderr


@pytest.mark.parametrize("value", ["5", "-1d", "abc", "1.5d", "10ms", "36501d", "d", ""])
def test_bad_retention_values_stop_start_up(tmp_path, value):
    for name in ("HOOKD_RETENTION", "HOOKD_RETENTION_UNMATCHED"):
        p = run_hookd(["migrate"], env={name: value, "HOOKD_DB": str(tmp_path / "x.db")})
        assert p.returncode == 2, (name, value, p.stdout, p.stderr)
        assert name in p.stderr and "whole number and a unit" in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["30d", "12h", "90m", "60s", "0", "off", "OFF"])
def test_good_retention_values_are_accepted(tmp_path, value):
    # as flags (an option hookd does not know is refused as a flag, not as a variable)
    p = run_hookd(["--retention", value, "--retention-unmatched", value, "migrate"],
                  env={"HOOKD_DB": str(tmp_path / "x.db")})
    assert p.returncode == 0, p.stderr


def sqlite_pages(h):
    con = sqlite3.connect(h.env["HOOKD_DB"], timeout=30)
    try:
        return {k: con.execute(f"PRAGMA {k}").fetchone()[0]
                for k in ("page_count", "freelist_count", "auto_vacuum", "page_size")}
    finally:
        con.close()


def test_sqlite_file_stops_growing_under_a_steady_stream(hookd, receiver):
    h = hookd(HOOKD_RETENTION="2s", HOOKD_RETENTION_UNMATCHED="2s", **FAST)
    if is_pg(h):
        pytest.skip("SQLite file size (PostgreSQL: autovacuum reuses the space)")
    h.create_webhook(receiver.url(), events=["t.big"])
    blob = "x" * 32000
    pages = []
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 12:
        h.ingest("t.big", {"blob": blob, "n": n})
        h.ingest("t.nobody", {"blob": blob, "n": n})
        n += 1
        if n % 20 == 0:
            pages.append((time.monotonic() - t0, sqlite_pages(h)["page_count"]))
        time.sleep(0.01)
    stored = n * 2 * 32000  # what was ingested, in bytes
    info = sqlite_pages(h)
    assert info["auto_vacuum"] == 2  # INCREMENTAL
    size = info["page_count"] * info["page_size"]
    # without pruning the file holds everything ingested; with it, a few seconds' worth
    assert size < stored * 0.6, (size, stored, pages)
    late = [p for t, p in pages if t > 6]
    early = [p for t, p in pages if 4 < t <= 6]
    assert late and early and max(late) <= max(early) * 1.5 + 1024, pages
    # once the stream stops and everything is pruned, free pages beyond the reserve (1024
    # pages) are returned to the file system
    wait_until(lambda: count(h, "webhook_event") == 0, 15 * SLOW, 0.2, "all pruned")
    wait_until(lambda: sqlite_pages(h)["freelist_count"] <= 1024 + 64, 10 * SLOW, 0.2,
               "free pages returned")


def test_previous_version_database_migrates_and_is_pruned(hookd, receiver, monkeypatch):
    """A store written by the previous hookd opens with this one: the retention indexes are
    built, a SQLite file in auto_vacuum NONE is converted to INCREMENTAL (one VACUUM), the
    old rows read as before, and pruning works on them."""
    h = hookd(start=False, HOOKD_RETENTION="30d", **FAST)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h.start()
    done = h.create_webhook(receiver.url("/done"), events=["t.done"])["id"]
    held = h.create_webhook(receiver.url("/held"), events=["t.held"], status="paused")["id"]
    for i in range(20):
        h.ingest("t.done", {"i": i, "pad": "p" * 2000})
    held_ev = h.ingest("t.held", {"i": 99})["id"]
    h.wait_delivery(done, "success", n=20)
    before = {d["id"]: h.delivery(d["id"]) for d in h.deliveries(done)}
    h.stop()
    if not is_pg(h):
        assert sqlite_pages(h)["auto_vacuum"] == 0  # NONE: made before this version
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    assert {i: h.delivery(i) for i in before} == before
    if is_pg(h):
        idx = query(h, "SELECT indexname FROM pg_indexes WHERE indexname IN "
                       "('webhook_delivery_finished', 'webhook_event_created') ORDER BY 1")
    else:
        assert sqlite_pages(h)["auto_vacuum"] == 2
        assert any(e.get("event") == "store.sqlite_vacuumed" for e in h.log_events())
        idx = query(h, "SELECT name FROM sqlite_master WHERE name IN "
                       "('webhook_delivery_finished', 'webhook_event_created') ORDER BY 1")
    assert [r[0] for r in idx] == ["webhook_delivery_finished", "webhook_event_created"]
    # a month later, the old finished rows go; the held one stays and still goes out
    h.stop()
    age_all(h, 31)
    h.start()
    wait_until(lambda: count(h, "webhook_delivery", "status = 'success'") == 0, 15 * SLOW, 0.2,
               "old rows pruned")
    assert count(h, "webhook_event") == 1 and event_status(h, held_ev) == 200
    r = h.api("PATCH", f"/api/webhook/v1/{held}", {"status": "active"})
    assert r.status_code == 200, r.text
    h.wait_delivery(held, "success")
    # a second start does not vacuum again
    if not is_pg(h):
        h.restart()
        assert len([e for e in h.log_events() if e.get("event") == "store.sqlite_vacuumed"]) == 1
