"""Event ingest (SPEC §3): single, batch, trigger, idempotency, validation, limits, reads.
A 202 means stored: every acknowledged event can be read back at once."""
import json

import pytest

from test_api_webhooks import err

EV = "/api/webhook/v1/events"


def test_single_ingest_creates_deliveries_and_is_readable_at_once(hookd, receiver):
    h = hookd()
    a = h.create_webhook(receiver.url("/a"), events=["email.*"])
    b = h.create_webhook(receiver.url("/b"), events=["email.delivered"])
    h.create_webhook(receiver.url("/c"), events=["sms.*"])
    r = h.ingest("email.delivered", {"to": "x@y.z", "n": 12345678901234567890123})
    assert r["id"].startswith("whev_") and r["type"] == "email.delivered"
    assert r["deliveries"] == 2 and r["duplicate"] is False
    ev = h.api("GET", f"{EV}/{r['id']}").json()
    assert ev["type"] == "email.delivered" and ev["source"] == "api"
    assert ev["data"] == {"to": "x@y.z", "n": 12345678901234567890123}
    assert sorted(d["webhookId"] for d in ev["deliveries"]) == sorted([a["id"], b["id"]])
    # the number arrives digit for digit
    got = receiver.wait(1, "/a")[0]
    assert b'"n":12345678901234567890123' in got.body


def test_data_is_kept_byte_for_byte_except_whitespace(hookd, receiver):
    h = hookd()
    h.create_webhook(receiver.url())
    raw = '{"type":"t","data":{ "f" : 0.10, "e": 1E400, "s": "caf\\u00e9 \\ud83d\\ude00", "neg": -0.0 }}'
    r = h.api("POST", EV, raw=raw, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    body = receiver.wait(1)[0].body
    assert b'"data":{"f":0.10,"e":1E400,"s":"caf\\u00e9 \\ud83d\\ude00","neg":-0.0}' in body


def test_no_matching_webhook_still_stores_the_event(hookd):
    h = hookd()
    r = h.ingest("nobody.listens")
    assert r["deliveries"] == 0
    assert h.api("GET", f"{EV}/{r['id']}").status_code == 200


def test_idempotency_key_in_body_and_header(hookd, receiver):
    h = hookd()
    h.create_webhook(receiver.url())
    first = h.ingest("t.x", {"a": 1}, idempotencyKey="k-1")
    r = h.api("POST", EV, {"type": "t.other", "data": {"a": 2}, "idempotencyKey": "k-1"})
    assert r.status_code == 200, r.text
    dup = r.json()
    assert dup == {"id": first["id"], "type": "t.x", "deliveries": 1, "duplicate": True}
    r = h.api("POST", EV, {"type": "t.x", "data": {}}, headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 202
    r2 = h.api("POST", EV, {"type": "t.x", "data": {}}, headers={"Idempotency-Key": "k-2"})
    assert r2.status_code == 200 and r2.json()["id"] == r.json()["id"]
    err(h.api("POST", EV, {"type": "t", "data": {}, "idempotencyKey": "a"},
              headers={"Idempotency-Key": "b"}), 422, "Idempotency-Key")
    assert h.api("GET", EV).json()["total"] == 2
    receiver.wait(2)
    import time
    time.sleep(0.3)
    assert receiver.count() == 2  # duplicates created nothing


def test_idempotency_is_per_organization(hookd, receiver):
    h = hookd()
    other = h.cli("apikey", "create", "--org", "org_2").stdout.strip()
    a = h.ingest("t", {}, idempotencyKey="same")
    r = h.api("POST", EV, {"type": "t", "data": {}, "idempotencyKey": "same"}, key=other)
    assert r.status_code == 202 and r.json()["id"] != a["id"]


def test_batch(hookd, receiver):
    h = hookd()
    h.create_webhook(receiver.url())
    events = [{"type": "b.t", "data": {"i": i}} for i in range(50)]
    events.append({"type": "b.t", "data": {"i": 0}, "idempotencyKey": "bk"})
    events.append({"type": "b.t", "data": {"i": 1}, "idempotencyKey": "bk"})
    r = h.api("POST", EV + "/batch", {"events": events})
    assert r.status_code == 202, r.text
    res = r.json()["results"]
    assert len(res) == 52
    assert all(x["deliveries"] == 1 for x in res)
    assert res[50]["duplicate"] is False and res[51]["duplicate"] is True
    assert res[51]["id"] == res[50]["id"]
    receiver.wait(51)
    assert sorted(x.json["data"]["i"] for x in receiver.received())[:3] == [0, 0, 1]


@pytest.mark.parametrize("body,field", [
    ({"events": []}, "events"),
    ({"events": "x"}, "events"),
    ({"events": [{"type": "ok", "data": {}}] * 1001}, "events"),
    ({"events": [{"type": "ok", "data": {}}, {"type": "bad type", "data": {}}]}, "events[1].type"),
    ({"events": [{"type": "ok", "data": []}]}, "events[0].data"),
    ({"events": [1]}, "events[0]"),
])
def test_batch_validation_rejects_all(shared_hookd, body, field):
    h = shared_hookd
    before = h.api("GET", EV).json()["total"]
    err(h.api("POST", EV + "/batch", body), 422, field)
    assert h.api("GET", EV).json()["total"] == before


@pytest.mark.parametrize("body,field", [
    ({"data": {}}, "type"),
    ({"type": "", "data": {}}, "type"),
    ({"type": "a b", "data": {}}, "type"),
    ({"type": "x" * 256, "data": {}}, "type"),
    ({"type": "a\r\nb", "data": {}}, "type"),
    ({"type": "a*", "data": {}}, "type"),
    ({"type": "t"}, "data"),
    ({"type": "t", "data": [1]}, "data"),
    ({"type": "t", "data": "s"}, "data"),
    ({"type": "t", "data": None}, "data"),
    ({"type": "t", "data": {}, "idempotencyKey": ""}, "idempotencyKey"),
    ({"type": "t", "data": {}, "idempotencyKey": "x" * 256}, "idempotencyKey"),
    ({"type": "t", "data": {}, "idempotencyKey": "a\nb"}, "idempotencyKey"),
    ({"type": "t", "data": {}, "idempotencyKey": 5}, "idempotencyKey"),
])
def test_ingest_validation(shared_hookd, body, field):
    err(shared_hookd.api("POST", EV, body), 422, field)


def test_ingest_limits_and_malformed(shared_hookd):
    h = shared_hookd
    ct = {"content-type": "application/json"}
    err(h.api("POST", EV, raw='{"type":"t","data":{', headers=ct), 400)
    err(h.api("POST", EV, raw='{"type":"t","data":{}}', headers={"content-type": "text/plain"}), 415)
    err(h.api("POST", EV, raw='{"type":"t","data":{"a":1}} trailing', headers=ct), 400)
    deep = '{"type":"t","data":' + '{"a":' * 200 + '1' + '}' * 200 + '}'
    err(h.api("POST", EV, raw=deep, headers=ct), 400)
    big = json.dumps({"type": "t", "data": {"x": "y" * (1024 * 1024)}})
    err(h.api("POST", EV, raw=big, headers=ct), 413)
    just_under = json.dumps({"type": "t", "data": {"x": "y" * (1024 * 1024 - 100)}})
    assert len(just_under) <= 1024 * 1024
    assert h.api("POST", EV, raw=just_under, headers=ct).status_code == 202


def test_trigger_is_a_manual_ingest(hookd, receiver):
    h = hookd()
    h.create_webhook(receiver.url(), events=["domain.verified"])
    r = h.api("POST", "/api/webhook/v1/trigger", {"event": "domain.verified", "payload": {"d": "x.com"}})
    assert r.status_code == 202, r.text
    ev = h.api("GET", f"{EV}/{r.json()['id']}").json()
    assert ev["source"] == "manual" and ev["data"] == {"d": "x.com"}
    assert receiver.wait(1)[0].json["data"] == {"d": "x.com"}
    err(h.api("POST", "/api/webhook/v1/trigger", {"payload": {}}), 422, "event")


def test_event_list_filters_and_pages(hookd):
    h = hookd()
    ids = [h.ingest("a.one" if i % 2 else "a.two", {"i": i})["id"] for i in range(6)]
    r = h.api("GET", EV + "?limit=2").json()
    assert r["total"] == 6 and [e["id"] for e in r["events"]] == [ids[5], ids[4]]
    r = h.api("GET", EV + "?type=a.one&limit=100").json()
    assert r["total"] == 3 and all(e["type"] == "a.one" for e in r["events"])
    err(h.api("GET", EV + "?type=bad%20type"), 422)
    err(h.api("GET", EV + "/whev_nonexistent00000000000000"), 404)
    err(h.api("GET", EV + "/nope"), 404)
    other = h.cli("apikey", "create", "--org", "o2").stdout.strip()
    err(h.api("GET", f"{EV}/{ids[0]}", key=other), 404)
    assert h.api("GET", EV, key=other).json()["total"] == 0
