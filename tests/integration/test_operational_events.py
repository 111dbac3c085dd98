"""Operational events (issue 19 item 1, docs/API.md "Operational events"): hookd's own
hookd.webhook.disabled / hookd.webhook.failed / hookd.delivery.exhausted /
hookd.webhook.recovered events, each fired once per occurrence with its data, delivered (signed)
to the webhooks subscribed to `hookd.*` and never to the webhook they name, not to a plain `*`
subscription; no loop when the operational endpoint itself fails or is the one disabled; the
`hookd.` prefix refused on ingest. Runs on both stores (HOOKD_TEST_STORE=pg)."""
import collections
import os
import shutil
import time

import pytest

import conftest
from conftest import SLOW, expect_standard, wait_until
from servers import previous_hookd

WH = "/api/webhook/v1"
OPS = "/ops"


def ops_webhook(h, receiver, **fields):
    fields.setdefault("maxRetries", 0)
    return h.create_webhook(receiver.url(OPS), events=["hookd.*"], name="ops", **fields)


def ops_bodies(receiver, path=OPS):
    return [r.json for r in receiver.received(path)]


def events_of(h, type_):
    r = h.api("GET", f"{WH}/events?type={type_}&limit=100")
    assert r.status_code == 200, r.text
    return r.json()["events"]


def failed_total(h, wid):
    r = h.api("GET", f"{WH}/{wid}/deliveries?status=failed&limit=1")
    assert r.status_code == 200, r.text
    return r.json()["total"]


def settle(pred_count, what, quiet=1.0):
    """Waits until pred_count() stops changing for `quiet` seconds (x SLOW); returns it."""
    last, since = pred_count(), time.monotonic()
    deadline = time.monotonic() + 20 * SLOW
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = pred_count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet * SLOW:
            return now
    raise AssertionError(f"{what} kept changing")


def test_410_disables_once_and_the_operational_webhook_hears_it(hookd, receiver):
    h = hookd()
    ops = ops_webhook(h, receiver)
    star = h.create_webhook(receiver.url("/star"), events=["*"], name="everything")
    gone = h.create_webhook(receiver.url("/gone"), events=["order.*", "hookd.*"], name="shop",
                            maxRetries=5)
    receiver.plan("/gone", [{"status": 410, "body": "bye"}])
    ev = h.ingest("order.paid", {"n": 1})
    got = receiver.wait(2, OPS)
    assert settle(lambda: receiver.count(OPS), "operational deliveries") == 2
    bodies = {b["type"]: b for b in ops_bodies(receiver)}
    assert set(bodies) == {"hookd.delivery.exhausted", "hookd.webhook.disabled"}
    d = h.deliveries(gone["id"])[0]
    dis = bodies["hookd.webhook.disabled"]["data"]
    assert dis == {"webhook": {"id": gone["id"], "url": receiver.url("/gone"), "name": "shop",
                               "status": "disabled"},
                   "delivery": {"id": d["id"], "eventId": ev["id"], "eventType": "order.paid",
                                "attempts": 1},
                   "reason": "gone", "lastResponseStatus": 410, "lastError": "HTTP 410"}
    exh = bodies["hookd.delivery.exhausted"]["data"]
    assert exh["delivery"] == dis["delivery"] and exh["webhook"]["id"] == gone["id"]
    assert exh["lastResponseStatus"] == 410 and "reason" not in exh
    # an ordinary, signed delivery of a stored event
    sig = got[0]
    assert sig.headers["webhook-signature"] == expect_standard(
        ops["secret"], sig.headers["webhook-id"], sig.headers["webhook-timestamp"], sig.body)
    stored = events_of(h, "hookd.webhook.disabled")
    assert len(stored) == 1 and stored[0]["source"] == "hookd"
    # the disabled webhook heard nothing about itself; a plain `*` subscription heard nothing
    assert receiver.count("/gone") == 1
    assert [r.json["type"] for r in receiver.received("/star")] == ["order.paid"]
    assert h.webhook(star["id"])["status"] == "active"


def test_exhausted_each_time_then_failed_after_disable_after(hookd, receiver):
    h = hookd(HOOKD_DISABLE_AFTER=2)
    ops_webhook(h, receiver)
    bad = h.create_webhook(receiver.url("/bad"), events=["job.*"], name="bad", maxRetries=1)
    receiver.plan("/bad", [{"status": 500}] * 4)
    e1 = h.ingest("job.done", {"i": 1})
    h.wait_delivery(bad["id"], "failed")
    e2 = h.ingest("job.done", {"i": 2})
    wait_until(lambda: h.webhook(bad["id"])["status"] == "failed", 10 * SLOW, what="failed")
    assert settle(lambda: receiver.count(OPS), "operational deliveries") == 3
    bodies = ops_bodies(receiver)
    types = sorted(b["type"] for b in bodies)
    assert types == ["hookd.delivery.exhausted", "hookd.delivery.exhausted",
                     "hookd.webhook.failed"]
    exhausted = [b["data"] for b in bodies if b["type"] == "hookd.delivery.exhausted"]
    assert sorted(x["delivery"]["eventId"] for x in exhausted) == sorted([e1["id"], e2["id"]])
    for x in exhausted:
        assert x["delivery"]["attempts"] == 2 and x["delivery"]["eventType"] == "job.done"
        assert x["lastResponseStatus"] == 500 and x["lastError"] == "HTTP 500"
    failed = next(b["data"] for b in bodies if b["type"] == "hookd.webhook.failed")
    assert failed["webhook"] == {"id": bad["id"], "url": receiver.url("/bad"), "name": "bad",
                                 "status": "failed"}
    assert failed["consecutiveFailures"] == 2 and failed["delivery"]["eventId"] == e2["id"]
    assert failed["lastResponseStatus"] == 500 and failed["lastError"] == "HTTP 500"
    # once per occurrence, in the store as well
    assert len(events_of(h, "hookd.webhook.failed")) == 1
    assert len(events_of(h, "hookd.delivery.exhausted")) == 2


def test_manual_disable_is_announced_but_not_to_the_disabled_webhook(hookd, receiver):
    h = hookd()
    ops_webhook(h, receiver)
    other = h.create_webhook(receiver.url("/other"), events=["hookd.webhook.*"], name="other")
    r = h.api("PATCH", f"{WH}/{other['id']}", {"status": "disabled"})
    assert r.status_code == 200, r.text
    got = receiver.wait(1, OPS)
    assert got[0].json["type"] == "hookd.webhook.disabled"
    assert got[0].json["data"] == {
        "webhook": {"id": other["id"], "url": receiver.url("/other"), "name": "other",
                    "status": "disabled"},
        "delivery": None, "reason": "manual", "lastResponseStatus": None, "lastError": None}
    # a second PATCH to disabled changes nothing and announces nothing
    assert h.api("PATCH", f"{WH}/{other['id']}", {"status": "disabled"}).status_code == 200
    assert settle(lambda: receiver.count(OPS), "operational deliveries") == 1
    assert receiver.count("/other") == 0


def test_recovered_after_re_enable(hookd, receiver):
    h = hookd(HOOKD_DISABLE_AFTER=1)
    ops_webhook(h, receiver)
    flaky = h.create_webhook(receiver.url("/flaky"), events=["job.*"], name="flaky",
                             maxRetries=0)
    receiver.plan("/flaky", [{"status": 503}])
    h.ingest("job.done", {"i": 1})
    wait_until(lambda: h.webhook(flaky["id"])["status"] == "failed", 10 * SLOW, what="failed")
    h.ingest("job.done", {"i": 2})  # kept while failed
    assert h.api("PATCH", f"{WH}/{flaky['id']}", {"status": "active"}).status_code == 200
    got = receiver.wait(2, "/flaky")
    ok = h.wait_delivery(flaky["id"], "success")[0]
    wait_until(lambda: len(events_of(h, "hookd.webhook.recovered")) == 1, 10 * SLOW,
               what="recovered")
    h.ingest("job.done", {"i": 3})  # a second success: no second recovery
    receiver.wait(3, "/flaky")
    settle(lambda: receiver.count(OPS), "operational deliveries")
    rec = [b["data"] for b in ops_bodies(receiver) if b["type"] == "hookd.webhook.recovered"]
    assert len(rec) == 1, ops_bodies(receiver)
    assert rec[0]["webhook"]["id"] == flaky["id"] and rec[0]["webhook"]["status"] == "active"
    assert rec[0]["delivery"]["id"] == ok["id"] and rec[0]["delivery"]["eventType"] == "job.done"
    assert rec[0]["lastResponseStatus"] == 200 and rec[0]["lastError"] is None
    assert got[1].json["data"] == {"i": 2}
    assert len(events_of(h, "hookd.webhook.recovered")) == 1


def test_no_loop_when_the_operational_endpoint_fails(hookd, receiver):
    """The operational endpoint answers 500 to everything: its deliveries are exhausted (no
    event about that), it becomes `failed` itself (announced to nobody: it is the only
    subscriber, and never hears about itself), and the traffic stops."""
    h = hookd(HOOKD_DISABLE_AFTER=2)
    ops = ops_webhook(h, receiver)
    receiver.plan(OPS, [{"status": 500}] * 50)
    shop = h.create_webhook(receiver.url("/shop"), events=["order.*"], name="shop", maxRetries=0)
    receiver.plan("/shop", [{"status": 500}] * 50)
    h.ingest("order.paid", {"i": 1})
    receiver.wait(1, OPS)
    h.ingest("order.paid", {"i": 2})
    wait_until(lambda: h.webhook(ops["id"])["status"] == "failed", 10 * SLOW, what="ops failed")
    settle(lambda: receiver.count(OPS) + receiver.count("/shop"), "traffic")
    exhausted = events_of(h, "hookd.delivery.exhausted")
    # only the shop's two deliveries: the failed operational deliveries emitted nothing
    assert sorted(e["data"]["webhook"]["id"] for e in exhausted) == [shop["id"], shop["id"]]
    failed = events_of(h, "hookd.webhook.failed")
    assert sorted(e["data"]["webhook"]["id"] for e in failed) == sorted([shop["id"], ops["id"]])
    for e in failed:  # the one about ops went to nobody (ops never hears about itself)
        one = h.api("GET", f"{WH}/events/{e['id']}").json()
        want = [] if e["data"]["webhook"]["id"] == ops["id"] else [ops["id"]]
        assert [d["webhookId"] for d in one["deliveries"]] == want
    # ops failed at its 2nd failure; the two events of the shop's 2nd failure were due at once,
    # so the second may have been in flight already, or parked
    assert receiver.count(OPS) in (2, 3)
    assert receiver.count("/shop") == 2


def test_no_loop_when_the_operational_endpoint_is_the_one_disabled(hookd, receiver):
    h = hookd()
    ops = ops_webhook(h, receiver, maxRetries=3)
    receiver.plan(OPS, [{"status": 410}])
    ops2 = h.create_webhook(receiver.url("/ops2"), events=["hookd.webhook.disabled"],
                            name="ops2")
    shop = h.create_webhook(receiver.url("/shop"), events=["order.*"], name="shop")
    h.api("PATCH", f"{WH}/{shop['id']}", {"status": "disabled"})
    wait_until(lambda: h.webhook(ops["id"])["status"] == "disabled", 10 * SLOW, what="ops gone")
    settle(lambda: receiver.count(OPS) + receiver.count("/ops2"), "traffic")
    assert receiver.count(OPS) == 1
    about = sorted(r.json["data"]["webhook"]["id"] for r in receiver.received("/ops2"))
    assert about == sorted([shop["id"], ops["id"]])
    # the exhaustion of the operational delivery (410) emitted nothing
    assert events_of(h, "hookd.delivery.exhausted") == []


def test_ingest_refuses_the_reserved_prefix(hookd, receiver):
    h = hookd()
    wid = h.create_webhook(receiver.url(), events=["hookd.*"])["id"]
    r = h.api("POST", f"{WH}/events", {"type": "hookd.webhook.disabled", "data": {}})
    assert r.status_code == 422, r.text
    assert "type" in r.json()["message"] and "hookd." in r.json()["message"]
    r = h.api("POST", f"{WH}/events/batch", {"events": [
        {"type": "ok.one", "data": {}}, {"type": "hookd.delivery.exhausted", "data": {}}]})
    assert r.status_code == 422, r.text
    assert "events[1].type" in r.json()["message"]
    r = h.api("POST", f"{WH}/trigger", {"event": "hookd.x", "payload": {}})
    assert r.status_code == 422, r.text
    assert "event" in r.json()["message"] and "hookd." in r.json()["message"]
    # signing a test event of a reserved type stores nothing: allowed, to test a receiver
    r = h.api("POST", f"{WH}/sign-test-event", {"webhookId": wid, "event": "hookd.webhook.failed",
                                                "payload": {"webhook": {"id": wid}}})
    assert r.status_code == 200, r.text
    # a look-alike outside the namespace is an ordinary type
    assert h.ingest("hookdx.webhook.disabled")["deliveries"] == 0
    time.sleep(0.5)
    assert receiver.count() == 0
    assert events_of(h, "hookd.webhook.disabled") == []


def test_migration_on_a_populated_database_of_the_previous_version(hookd, receiver, monkeypatch):
    """A webhook that the previous hookd (no `recovering` column) set `failed`, with a delivery
    kept: after the upgrade it is re-enabled, delivers, and is announced recovered once."""
    h = hookd(start=False, HOOKD_DISABLE_AFTER=1)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h.start()
    wh = h.create_webhook(receiver.url("/old"), events=["job.*"], name="old", maxRetries=0)
    receiver.plan("/old", [{"status": 500}])
    h.ingest("job.done", {"i": 1})
    wait_until(lambda: h.webhook(wh["id"])["status"] == "failed", 10 * SLOW, what="failed")
    h.ingest("job.done", {"i": 2})  # kept while failed
    before = h.deliveries(wh["id"])
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    assert h.deliveries(wh["id"]) == before
    assert h.webhook(wh["id"])["status"] == "failed"
    ops_webhook(h, receiver)
    assert h.api("PATCH", f"{WH}/{wh['id']}", {"status": "active"}).status_code == 200
    got = receiver.wait(1, OPS)
    assert got[0].json["type"] == "hookd.webhook.recovered"
    assert got[0].json["data"]["webhook"]["id"] == wh["id"]
    assert receiver.received("/old")[-1].json["data"] == {"i": 2}
    assert settle(lambda: receiver.count(OPS), "operational deliveries") == 1


def test_nats_ingest_drops_the_reserved_prefix(hookd, receiver, tmp_path):
    if not shutil.which("nats-server"):
        pytest.skip("nats-server is not installed")
    from test_nats import NatsServer, metric
    ns = NatsServer(str(tmp_path)).start()
    try:
        h = hookd(NATS_URL=ns.url, HOOKD_NATS_SUBJECTS="tracking.*,webhook.triggered,hookd.*")
        h.create_webhook(receiver.url(), events=["hookd.*", "*"])
        ns.publish([
            ("webhook.triggered", {"event": "hookd.webhook.failed", "payload": {},
                                   "organizationId": "org_test"}),
            ("tracking.open", {"type": "hookd.delivery.exhausted", "data": {},
                               "organizationId": "org_test"}),
            ("hookd.webhook", {"organizationId": "org_test", "n": 1}),  # type = subject
            ("tracking.open", {"organizationId": "org_test", "ok": True}),
        ])
        wait_until(lambda: metric(h, "hookd_nats_dropped_total") == 3, 10 * SLOW, 0.05,
                   "3 drops")
        got = receiver.wait(1)
        whys = " | ".join(e["why"] for e in h.log_events() if e.get("event") == "nats.dropped")
        assert whys.count('"hookd." is reserved') == 3, whys
        assert "event:" in whys and "type:" in whys and "subject" in whys, whys
        time.sleep(0.3)
        assert [r.json["type"] for r in receiver.received()] == ["tracking.open"] == \
            [r.json["type"] for r in got]
    finally:
        ns.stop()


def test_two_nodes_emit_each_occurrence_once(hookd, receiver):
    """Two PostgreSQL nodes deliver the same webhooks' deliveries: every final failure gives
    one hookd.delivery.exhausted, and a webhook answering 410 to attempts in flight on both
    nodes at once is disabled, and announced, once."""
    if os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg":
        pytest.skip("several nodes share a PostgreSQL store (HOOKD_TEST_STORE=pg)")
    env = {"HOOKD_QUEUE_WINDOW": "100", "HOOKD_LEASE_MS": "8000",
           "HOOKD_HTTP_TIMEOUT_MS": "2000", "HOOKD_DISABLE_AFTER": "0"}
    a = hookd(HOOKD_USER_AGENT="node-a", **env)
    b = hookd(start=False, HOOKD_USER_AGENT="node-b", **env)
    b.env["PG_URL"] = a.env["PG_URL"]
    b.start()
    ops_webhook(a, receiver, maxRetries=3)
    bad = a.create_webhook(receiver.url("/bad"), events=["job.*"], name="bad", maxRetries=0)
    gone = a.create_webhook(receiver.url("/gone"), events=["job.*"], name="gone", maxRetries=0)
    receiver.plan("/bad", [{"status": 500, "delay": 0.02}] * 400)
    receiver.plan("/gone", [{"status": 410, "delay": 0.2}] * 400)
    n = 300
    r = a.api("POST", f"{WH}/events/batch",
              {"events": [{"type": "job.done", "data": {"i": i}} for i in range(n)]})
    assert r.status_code == 202, r.text
    wait_until(lambda: failed_total(a, bad["id"]) == n, 60 * SLOW, 0.2, "all failed")
    wait_until(lambda: a.webhook(gone["id"])["status"] == "disabled", 20 * SLOW, what="gone")
    agents = {rec.headers["user-agent"] for rec in receiver.received("/bad")}
    assert {"node-a", "node-b"} <= {x.split("/")[0] for x in agents}, agents
    gone_agents = {rec.headers["user-agent"] for rec in receiver.received("/gone")}
    assert receiver.count("/gone") > 1  # several attempts in flight: the race under test

    def ops_count():
        return receiver.count(OPS)
    settle(ops_count, "operational deliveries", quiet=2.0)
    per_event = collections.Counter(r.json["id"] for r in receiver.received(OPS))
    assert all(c == 1 for c in per_event.values())
    bodies = ops_bodies(receiver)
    about_bad = [x["data"]["delivery"]["id"] for x in bodies
                 if x["type"] == "hookd.delivery.exhausted"
                 and x["data"]["webhook"]["id"] == bad["id"]]
    assert len(about_bad) == n and len(set(about_bad)) == n
    disabled = [x for x in bodies if x["type"] == "hookd.webhook.disabled"]
    assert len(disabled) == 1 and disabled[0]["data"]["webhook"]["id"] == gone["id"], gone_agents
    # every 410 answered is a final failure stored once, and announced once
    about_gone = [x for x in bodies if x["type"] == "hookd.delivery.exhausted"
                  and x["data"]["webhook"]["id"] == gone["id"]]
    assert len(about_gone) == failed_total(a, gone["id"]) >= 1


def test_kill9_mid_run_loses_no_event_and_stores_none_twice(hookd, receiver):
    """hookd is killed while final failures are being written: after the restart every
    delivery that ended failed has exactly one hookd.delivery.exhausted, and there are no
    others."""
    h = hookd(HOOKD_DISABLE_AFTER=0)
    ops_webhook(h, receiver)
    bad = h.create_webhook(receiver.url("/bad"), events=["job.*"], name="bad", maxRetries=0)
    n = 400
    receiver.plan("/bad", [{"status": 500, "delay": 0.01}] * (2 * n))
    r = h.api("POST", f"{WH}/events/batch",
              {"events": [{"type": "job.done", "data": {"i": i}} for i in range(n)]})
    assert r.status_code == 202, r.text
    wait_until(lambda: failed_total(h, bad["id"]) >= n // 4, 30 * SLOW, 0.02, "some failed")
    h.kill9()
    h.start()
    wait_until(lambda: failed_total(h, bad["id"]) == n, 60 * SLOW, 0.1, "all failed")

    def exhausted():
        out, page = [], 1
        while True:
            r = h.api("GET", f"{WH}/events?type=hookd.delivery.exhausted&limit=100&page={page}")
            got = r.json()
            out += got["events"]
            if len(out) >= got["total"] or not got["events"]:
                return out
            page += 1
    evs = exhausted()
    ids = [e["data"]["delivery"]["id"] for e in evs]
    assert len(ids) == n and len(set(ids)) == n
    failed_ids = set()
    for page in range(1, n // 100 + 1):
        r = h.api("GET", f"{WH}/{bad['id']}/deliveries?status=failed&limit=100&page={page}")
        failed_ids |= {d["id"] for d in r.json()["deliveries"]}
    assert failed_ids == set(ids)
