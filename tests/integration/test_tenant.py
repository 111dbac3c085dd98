"""Bounded tenants and data at rest (issue 14, parts 4 and 6): webhook and delivery caps,
database files mode 0600, no ingest loop through hookd's own routes, matchConditions on the
key occurrence a receiver reads, and the masked secret's length. Real hookd, real receivers,
SQLite or (HOOKD_TEST_STORE=pg) PostgreSQL."""
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import HOOKD_BIN, SLOW

WH = "/api/webhook/v1"


def test_webhook_cap_per_org_422_and_room_after_delete(hookd, receiver):
    h = hookd(HOOKD_MAX_WEBHOOKS_PER_ORG=3)
    ids = [h.create_webhook(receiver.url(), name=f"w{i}")["id"] for i in range(3)]
    r = h.api("POST", WH, {"name": "one too many", "url": receiver.url(), "events": ["*"]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "limit_exceeded"
    assert "HOOKD_MAX_WEBHOOKS_PER_ORG" in body["message"] and "3" in body["message"]
    assert h.api("GET", WH + "?limit=100").json()["total"] == 3
    # a deleted webhook no longer counts
    assert h.api("DELETE", f"{WH}/{ids[0]}").status_code == 200
    h.create_webhook(receiver.url(), name="room again")
    r = h.api("POST", WH, {"name": "again too many", "url": receiver.url(), "events": ["*"]})
    assert r.status_code == 422, r.text
    # another organization has its own allowance
    key2 = h.cli("apikey", "create", "--org", "org_other").stdout.strip().split()[-1]
    r = h.api("POST", WH, {"name": "other org", "url": receiver.url(), "events": ["*"]}, key=key2)
    assert r.status_code == 201, r.text


def test_deliveries_per_event_cap_refuses_the_event_429(hookd, receiver):
    h = hookd(HOOKD_MAX_DELIVERIES_PER_EVENT=2)
    a = h.create_webhook(receiver.url("/a"), events=["order.*"])["id"]
    h.create_webhook(receiver.url("/b"), events=["order.*"])
    h.create_webhook(receiver.url("/c"), events=["order.paid"])
    r = h.api("POST", WH + "/events", {"type": "order.paid", "data": {"n": 1}})
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "limit_exceeded"
    assert "HOOKD_MAX_DELIVERIES_PER_EVENT" in r.json()["message"]
    # nothing was stored: no event, no delivery
    assert h.api("GET", WH + "/events").json()["total"] == 0
    assert h.deliveries(a) == []
    # an event within the cap goes through
    assert h.ingest("order.shipped")["deliveries"] == 2
    receiver.wait(2)
    # the batch is refused whole if one of its events is over the cap
    r = h.api("POST", WH + "/events/batch",
              {"events": [{"type": "order.shipped", "data": {}}, {"type": "order.paid", "data": {}}]})
    assert r.status_code == 429, r.text
    assert "event 1 " in r.json()["message"]
    assert h.api("GET", WH + "/events").json()["total"] == 1


def test_deliveries_per_batch_cap_429(hookd, receiver):
    h = hookd(HOOKD_MAX_DELIVERIES_PER_BATCH=5)
    for i in range(2):
        h.create_webhook(receiver.url(f"/{i}"), events=["t"])
    evs = [{"type": "t", "data": {"i": i}} for i in range(3)]  # 6 deliveries
    r = h.api("POST", WH + "/events/batch", {"events": evs})
    assert r.status_code == 429, r.text
    assert "HOOKD_MAX_DELIVERIES_PER_BATCH" in r.json()["message"]
    assert h.api("GET", WH + "/events").json()["total"] == 0
    r = h.api("POST", WH + "/events/batch", {"events": evs[:2]})  # 4 deliveries
    assert r.status_code == 202, r.text
    receiver.wait(4)


def _modes(paths):
    return {os.path.basename(p): stat.S_IMODE(os.stat(p).st_mode) for p in paths if os.path.exists(p)}


@pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "sqlite",
                    reason="SQLite files")
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_database_files_mode_0600(hookd, receiver, umask):
    h = hookd(start=False)
    old = os.umask(umask)
    try:
        h.start()
    finally:
        os.umask(old)
    wid = h.create_webhook(receiver.url())["id"]
    h.ingest()
    h.wait_delivery(wid, "success")
    db = h.env["HOOKD_DB"]
    files = [db, db + "-wal", db + "-shm", db + ".lock"]
    modes = _modes(files)
    assert set(modes) == {os.path.basename(f) for f in files}, modes
    assert all(m == 0o600 for m in modes.values()), {k: oct(v) for k, v in modes.items()}
    # the CLI creating a database (migrate) does the same
    other = os.path.join(h.workdir, "cli.db")
    old = os.umask(umask)
    try:
        p = subprocess.run([HOOKD_BIN, "migrate"], env={**h.env, "HOOKD_DB": other},
                           capture_output=True, text=True, timeout=60 * SLOW)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o600


def test_no_ingest_loop_through_own_route(hookd):
    """A webhook aimed at hookd's own ingest route, with hookd's API key in its custom headers:
    each delivery would be a new event delivered again. hookd refuses to ingest its own
    deliveries, so the chain stops at the first one."""
    h = hookd(HOOKD_ALLOW_NETWORKS="127.0.0.0/8", HOOKD_RETRY_SCHEDULE="100ms")
    own = f"http://127.0.0.1:{h.port}{WH}/events"
    wid = h.create_webhook(own, events=["loop.*"], customHeaders={"x-api-key": h.key},
                           maxRetries=1)["id"]
    first = h.ingest("loop.start", {"n": 1})
    d = h.wait_delivery(wid, "failed", timeout=20)[0]
    d = h.delivery(d["id"])
    assert d["responseStatus"] == 422, d
    assert "delivery_loop" in (d["responseBody"] or ""), d
    time.sleep(1.0 * SLOW)
    events = h.api("GET", WH + "/events?limit=100").json()
    # (besides hookd's own operational event: the delivery's exhaustion)
    mine = [e for e in events["events"] if not e["type"].startswith("hookd.")]
    assert len(mine) == 1 and mine[0]["id"] == first["id"], events
    assert len(h.deliveries(wid)) == 1
    # an ordinary client is not affected; a non-hookd X-Delivery-Id neither
    r = h.api("POST", WH + "/events", {"type": "other", "data": {}},
              headers={"X-Delivery-Id": "abc"})
    assert r.status_code == 202, r.text
    for path in ("/events", "/trigger"):
        body = {"type": "x", "data": {}} if path == "/events" else {"event": "x", "payload": {}}
        r = h.api("POST", WH + path, body, headers={"X-Delivery-Id": "whde_" + "a" * 24})
        assert r.status_code == 422 and r.json()["code"] == "delivery_loop", r.text
    r = h.api("POST", WH + "/events/batch", {"events": [{"type": "x", "data": {}}]},
              headers={"X-Delivery-Id": "whde_" + "b" * 24})
    assert r.status_code == 422, r.text


def test_match_conditions_read_the_last_duplicate_key(hookd, receiver):
    """{"plan":"pro","plan":"free"}: a receiver (JSON.parse, Python, Go) reads "free"; a
    condition plan == "pro" must not let it through, and plan == "free" must."""
    h = hookd()
    pro = h.create_webhook(receiver.url("/pro"), filteringOptions={"matchConditions": {"plan": "pro"}})["id"]
    free = h.create_webhook(receiver.url("/free"), filteringOptions={"matchConditions": {"plan": "free"}})["id"]
    raw = b'{"type":"acct.changed","data":{"plan":"pro","plan":"free","n":1}}'
    r = h.api("POST", WH + "/events", raw=raw, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    assert r.json()["deliveries"] == 1
    got = receiver.wait(1, "/free")[0]
    assert json.loads(got.body)["data"]["plan"] == "free"
    time.sleep(0.5 * SLOW)
    assert receiver.count("/pro") == 0
    assert h.deliveries(pro) == [] and len(h.deliveries(free)) == 1


@pytest.mark.parametrize("secret,tail", [
    ("abcdefgh", "gh"),                 # 8 characters: 2 shown, a quarter
    ("abcdefghijklm", "klm"),           # 13: 3
    ("0123456789abcdefXYZW", "XYZW"),   # 20: at most 4
    ("whsec_abcdefgh", "gh"),           # the prefix is not secret: a quarter of 8
    ("whsec_abc", ""),                  # 3 secret characters: none shown
])
def test_masked_secret_shows_at_most_a_quarter(hookd, receiver, secret, tail):
    h = hookd()
    wid = h.create_webhook(receiver.url(), secret=secret)["id"]
    shown = h.webhook(wid)["secret"]
    assert shown == "whsec_\u2026" + tail, shown
    listed = h.api("GET", WH).json()["webhooks"][0]["secret"]
    assert listed == shown
