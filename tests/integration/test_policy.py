"""Per-webhook delivery policy (issue 19 item 4, docs/API.md "Delivery policy"): a webhook's
`retrySchedule` and `timeoutMs` override HOOKD_RETRY_SCHEDULE and HOOKD_HTTP_TIMEOUT_MS for its
deliveries, checked at real receivers (attempt times, how long an attempt was waited for);
their validation; a change while a delivery is retrying; the migration of a populated database
of the previous version."""
import sqlite3

import pytest

import conftest
from conftest import SLOW
from servers import previous_hookd

WH = "/api/webhook/v1"


def err422(r, field):
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_failed", body
    assert field in body["message"], body["message"]
    return body


def gaps(recs):
    return [b.at - a.at for a, b in zip(recs, recs[1:])]


def test_timeout_ms_gives_up_on_a_slow_receiver_while_the_default_waits(hookd, receiver):
    h = hookd()  # HOOKD_HTTP_TIMEOUT_MS: the default 10000
    short = h.create_webhook(receiver.url("/short"), timeoutMs=300, maxRetries=0)["id"]
    default = h.create_webhook(receiver.url("/default"), maxRetries=0)["id"]
    assert h.webhook(short)["timeoutMs"] == 300
    assert h.webhook(default)["timeoutMs"] is None
    receiver.plan("/short", [{"delay": 2}])
    receiver.plan("/default", [{"delay": 2}])
    h.ingest("order.paid", {"n": 1})
    d = h.wait_delivery(short, "failed", timeout=15)[0]
    d = h.delivery(d["id"])
    assert "timed out after 300 ms" in d["errorMessage"], d["errorMessage"]
    assert d["responseStatus"] is None
    assert 250 <= d["attempts"][0]["durationMs"] < 300 + 700 * SLOW, d["attempts"]
    ok = h.delivery(h.wait_delivery(default, "success", timeout=15)[0]["id"])
    assert ok["responseStatus"] == 200 and ok["attempts"][0]["durationMs"] >= 1900, ok
    assert receiver.count("/short") == 1 and receiver.count("/default") == 1


def test_retry_schedule_paces_the_retries_and_sets_the_attempt_count(hookd, receiver):
    h = hookd()  # the global schedule: 300ms,600ms,1s (conftest), jitter 0
    own = h.create_webhook(receiver.url("/own"), retrySchedule=["1s", " 2s "])
    assert own["retrySchedule"] == ["1s", "2s"] and own["maxRetries"] == 2, own
    glob = h.create_webhook(receiver.url("/global"), maxRetries=2)
    assert glob["retrySchedule"] is None
    receiver.plan("/own", [{"status": 500}] * 10)
    receiver.plan("/global", [{"status": 500}] * 10)
    h.ingest("order.paid", {"n": 1})
    d = h.wait_delivery(own["id"], "failed", timeout=20)[0]
    assert d["attemptNumber"] == 3 and d["maxAttempts"] == 3, d
    h.wait_delivery(glob["id"], "failed", timeout=20)
    got = receiver.received("/own")
    assert len(got) == 3
    g = gaps(got)
    assert 0.95 <= g[0] < 1.0 + 0.8 * SLOW and 1.95 <= g[1] < 2.0 + 0.8 * SLOW, g
    g = gaps(receiver.received("/global"))
    assert len(g) == 2 and 0.25 <= g[0] < 0.3 + 0.5 * SLOW and 0.55 <= g[1] < 0.6 + 0.5 * SLOW, g
    # an explicit maxRetries wins over the schedule's length; the last delay repeats
    four = h.create_webhook(receiver.url("/four"), retrySchedule=["400ms"], maxRetries=3)
    assert four["maxRetries"] == 3
    receiver.plan("/four", [{"status": 503}] * 10)
    h.ingest("order.paid", {"n": 2})
    d = h.wait_delivery(four["id"], "failed", timeout=20)[0]
    assert d["attemptNumber"] == 4
    g = gaps(receiver.received("/four"))
    assert len(g) == 3 and all(0.35 <= x < 0.4 + 0.5 * SLOW for x in g), g
    # null: back to the global schedule
    r = h.api("PATCH", f"{WH}/{own['id']}", {"retrySchedule": None, "timeoutMs": None})
    assert r.status_code == 200, r.text
    assert r.json()["retrySchedule"] is None and r.json()["timeoutMs"] is None
    assert r.json()["maxRetries"] == 2


def test_a_policy_change_applies_to_the_next_retry_of_a_retrying_delivery(hookd, receiver):
    """Documented: the retry already scheduled keeps its time, the delay after the next failed
    attempt follows the new schedule, and the delivery keeps the maxAttempts it was created
    with."""
    h = hookd()
    wid = h.create_webhook(receiver.url(), retrySchedule=["1500ms", "5s", "5s"])["id"]
    receiver.plan("/hook", [{"status": 500}] * 3)
    h.ingest("order.paid", {"n": 1})
    receiver.wait(1, timeout=10)
    r = h.api("PATCH", f"{WH}/{wid}", {"retrySchedule": ["200ms"]})
    assert r.status_code == 200, r.text
    assert r.json()["maxRetries"] == 1  # new deliveries: 2 attempts
    got = receiver.wait(4, timeout=15)
    g = gaps(got)
    assert 1.45 <= g[0] < 1.5 + 0.8 * SLOW, g  # scheduled before the change
    assert 0.15 <= g[1] < 0.2 + 0.8 * SLOW and 0.15 <= g[2] < 0.2 + 0.8 * SLOW, g
    d = h.wait_delivery(wid, "success", timeout=10)[0]
    assert d["attemptNumber"] == 4 and d["maxAttempts"] == 4, d


@pytest.mark.parametrize("body,field", [
    ({"retrySchedule": "5s"}, "retrySchedule"),
    ({"retrySchedule": []}, "retrySchedule"),
    ({"retrySchedule": ["5x"]}, "retrySchedule"),
    ({"retrySchedule": ["0s"]}, "retrySchedule"),
    ({"retrySchedule": ["8d"]}, "retrySchedule"),
    ({"retrySchedule": [5000]}, "retrySchedule[0]"),
    ({"retrySchedule": ["1s", "1s,2s"]}, "retrySchedule[1]"),
    ({"retrySchedule": ["1s", ""]}, "retrySchedule"),
    ({"retrySchedule": ["1s"] * 51}, "retrySchedule"),
    ({"retrySchedule": {"a": "1s"}}, "retrySchedule"),
    ({"timeoutMs": 99}, "timeoutMs"),
    ({"timeoutMs": 10001}, "timeoutMs"),  # above HOOKD_HTTP_TIMEOUT_MS
    ({"timeoutMs": "300"}, "timeoutMs"),
    ({"timeoutMs": 300.5}, "timeoutMs"),
    ({"timeoutMs": True}, "timeoutMs"),
])
def test_bad_policy_values_are_refused_naming_the_field(shared_hookd, receiver, body, field):
    h = shared_hookd
    r = h.api("POST", WH, dict({"name": "p", "url": receiver.url(), "events": ["*"]}, **body))
    err422(r, field)
    wid = h.create_webhook(receiver.url())["id"]
    err422(h.api("PATCH", f"{WH}/{wid}", body), field)
    w = h.webhook(wid)
    assert w["retrySchedule"] is None and w["timeoutMs"] is None and w["maxRetries"] == 6


def test_policy_limits_and_listing(shared_hookd, receiver):
    h = shared_hookd
    w = h.create_webhook(receiver.url(), retrySchedule=["1500ms"] + ["7d"] * 49,
                         timeoutMs=10000)
    assert len(w["retrySchedule"]) == 50 and w["maxRetries"] == 50 and w["timeoutMs"] == 10000
    w2 = h.create_webhook(receiver.url(), timeoutMs=100)
    listed = {x["id"]: x for x in h.api("GET", f"{WH}?limit=100").json()["webhooks"]}
    assert listed[w["id"]]["retrySchedule"] == w["retrySchedule"]
    assert listed[w2["id"]]["timeoutMs"] == 100 and listed[w2["id"]]["retrySchedule"] is None
    r = h.api("PATCH", f"{WH}/{w2['id']}", {"timeoutMs": 2500})
    assert r.status_code == 200 and r.json()["timeoutMs"] == 2500, r.text
    assert h.webhook(w2["id"])["timeoutMs"] == 2500


def query(h, sql):
    if h.env.get("PG_URL"):
        from servers import pg_query
        return [tuple(r) for r in pg_query(h.env["PG_URL"], sql)]
    con = sqlite3.connect(h.env["HOOKD_DB"])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def policy_columns(h):
    """The stored policy columns, NULL as "-" (pg_query cannot tell NULL from a line end)."""
    rows = query(h, "SELECT COALESCE(retry_schedule, '-'), COALESCE(CAST(timeout_ms AS TEXT), "
                    "'-') FROM webhook")
    return [tuple(str(v) for v in r) for r in rows]


def test_migration_on_a_populated_database_of_the_previous_version(hookd, receiver, monkeypatch):
    """A store written by the previous hookd (no policy columns) opens with this one: its
    webhooks read with the global policy (null), keep delivering, and take a policy."""
    h = hookd(start=False)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h.start()
    wid = h.create_webhook(receiver.url(), maxRetries=3)["id"]
    receiver.plan("/hook", [{"status": 500}])
    for i in range(3):
        h.ingest("t", {"i": i})
    h.wait_delivery(wid, "success", n=3, timeout=30)
    before = h.webhook(wid)
    deliveries_before = h.deliveries(wid)
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    after = h.webhook(wid)
    assert after["retrySchedule"] is None and after["timeoutMs"] is None
    assert {k: after.get(k) for k in before} == before
    assert h.deliveries(wid) == deliveries_before
    assert policy_columns(h) == [("-", "-")]
    r = h.api("PATCH", f"{WH}/{wid}", {"retrySchedule": ["700ms"], "timeoutMs": 1000})
    assert r.status_code == 200, r.text
    assert r.json()["retrySchedule"] == ["700ms"] and r.json()["maxRetries"] == 1
    receiver.plan("/hook", [{"status": 500}, {"status": 500}])
    n0 = receiver.count("/hook")
    h.ingest("t", {"i": 9})
    d = h.wait_delivery(wid, "failed", timeout=20)[0]
    assert d["attemptNumber"] == 2 and d["maxAttempts"] == 2
    g = gaps(receiver.received("/hook")[n0:])
    assert len(g) == 1 and 0.65 <= g[0] < 0.7 + 0.8 * SLOW, g
    assert policy_columns(h) == [("700ms", "1000")]
