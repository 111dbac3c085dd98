"""Secret rotation, sign-test-event, manual retry and recover (SPEC §3), against the real binary."""
import json
import time

from conftest import expect_reloop, expect_standard, wait_until


def sigs_of(header, prefix):
    return [p for p in header.replace(",", " ").split() if p.startswith(prefix)] if header else []


def test_rotate_secret_signs_with_both_during_grace(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), signatureSchemes=["standard", "reloop"])
    old = wh["secret"]
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {"graceSeconds": 3600})
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert r.json()["previousSecretExpiresAt"]
    # the rotation is visible at once to the dispatcher: the next delivery carries both
    h.ingest(data={"k": 1})
    got = receiver.wait(1)[0]
    ts = got.headers["webhook-timestamp"]
    mid = got.headers["webhook-id"]
    std = got.headers["webhook-signature"].split(" ")
    assert std == [expect_standard(new, mid, ts, got.body), expect_standard(old, mid, ts, got.body)]
    rl = got.headers["reloop-signature"].split(",")
    assert rl == [f"t={ts}", "v1=" + expect_reloop(new, ts, got.body), "v1=" + expect_reloop(old, ts, got.body)]
    # GET masks the new secret and never shows the old one
    g = h.webhook(wh["id"])
    assert g["secret"].endswith(new[-4:]) and new not in json.dumps(g) and old not in json.dumps(g)


def test_rotate_without_grace_drops_the_old_secret(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url())
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {"graceSeconds": 0, "secret": "whsec_" + "A" * 40})
    assert r.status_code == 200, r.text
    assert r.json()["secret"] == "whsec_" + "A" * 40
    h.ingest()
    got = receiver.wait(1)[0]
    sig = got.headers["webhook-signature"]
    assert " " not in sig
    assert sig == expect_standard("whsec_" + "A" * 40, got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)


def test_rotate_validation_and_scoping(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url())
    for body in ({"graceSeconds": -1}, {"graceSeconds": 10**9}, {"graceSeconds": "x"}, {"secret": "short"}):
        r = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", body)
        assert r.status_code == 422, (body, r.text)
    r = h.api("POST", "/api/webhook/v1/wh_doesnotexist00000000000000/rotate-secret", {})
    assert r.status_code == 404
    other = h.cli("apikey", "create", "--org", "org_other").stdout.strip().splitlines()[0]
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {}, key=other)
    assert r.status_code == 404, r.text


def test_sign_test_event_is_exactly_what_a_delivery_sends(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), customHeaders={"X-Tenant": "acme"},
                          filteringOptions={"excludeFields": ["secretField"]},
                          signatureSchemes=["standard", "reloop", "sha256"])
    r = h.api("POST", "/api/webhook/v1/sign-test-event",
              {"webhookId": wh["id"], "event": "order.created", "payload": {"a": 1, "secretField": "x"}})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["url"] == receiver.url()
    raw = t["rawBody"].encode()
    body = json.loads(raw)
    assert body["type"] == "order.created" and body["data"] == {"a": 1} and body == t["body"]
    hd = {k.lower(): v for k, v in t["headers"].items()}
    assert hd["content-type"] == "application/json" and hd["x-tenant"] == "acme"
    assert hd["webhook-signature"] == expect_standard(wh["secret"], body["id"], hd["webhook-timestamp"], raw)
    assert hd["reloop-signature"] == f"t={hd['reloop-timestamp']},v1=" + expect_reloop(wh["secret"], hd["reloop-timestamp"], raw)
    # nothing stored, nothing sent
    time.sleep(0.3)
    assert receiver.count() == 0
    assert h.api("GET", "/api/webhook/v1/events").json()["total"] == 0


def test_sign_test_event_validation(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url())
    cases = [({"event": "a"}, 422), ({"webhookId": wh["id"]}, 422),
             ({"webhookId": wh["id"], "event": "bad type"}, 422),
             ({"webhookId": wh["id"], "event": "a", "payload": [1]}, 422),
             ({"webhookId": "wh_unknown000000000000000000", "event": "a"}, 404)]
    for body, status in cases:
        r = h.api("POST", "/api/webhook/v1/sign-test-event", body)
        assert r.status_code == status, (body, r.text)


def test_manual_retry_creates_a_replay_of_the_same_event(hookd, receiver):
    h = hookd()
    receiver.plan("/r", [{"status": 500}])
    wh = h.create_webhook(receiver.url("/r"), maxRetries=0)
    ev = h.ingest(data={"v": 7})
    failed = h.wait_delivery(wh["id"], "failed")[0]
    for prefix in ("/api/webhook/deliveries", "/api/webhook/v1/deliveries"):
        r = h.api("POST", f"{prefix}/{failed['id']}/retry")
        assert r.status_code == 202, r.text
        assert r.json()["success"] is True and r.json()["newDeliveryId"].startswith("whde_")
    got = receiver.wait(3, "/r")
    assert {g.json["id"] for g in got} == {ev["id"]}            # same event id every time
    assert len({g.headers["x-delivery-id"] for g in got}) == 3   # distinct deliveries
    ok = h.wait_delivery(wh["id"], "success", n=2)
    assert {d["replayOfDeliveryId"] for d in ok} == {failed["id"]}


def test_retry_refused_when_webhook_not_active_and_scoped(hookd, receiver):
    h = hookd()
    receiver.plan("/r", [{"status": 500}])
    wh = h.create_webhook(receiver.url("/r"), maxRetries=0)
    h.ingest()
    failed = h.wait_delivery(wh["id"], "failed")[0]
    r = h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"status": "paused"})
    assert r.status_code == 200
    r = h.api("POST", f"/api/webhook/deliveries/{failed['id']}/retry")
    assert r.status_code == 409, r.text
    assert "paused" in r.json()["message"]
    assert h.api("POST", "/api/webhook/deliveries/whde_unknown0000000000000000/retry").status_code == 404
    assert h.api("POST", "/api/webhook/deliveries/nonsense/retry").status_code == 404
    other = h.cli("apikey", "create", "--org", "org_other").stdout.strip().splitlines()[0]
    h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"status": "active"})
    assert h.api("POST", f"/api/webhook/deliveries/{failed['id']}/retry", key=other).status_code == 404
    time.sleep(0.3)
    assert receiver.count("/r") == 1


def test_recover_replays_failed_deliveries_in_range(hookd, receiver):
    h = hookd()
    receiver.plan("/r", [{"status": 500}] * 3)
    wh = h.create_webhook(receiver.url("/r"), maxRetries=0)
    for i in range(3):
        h.ingest(data={"i": i})
    failed = h.wait_delivery(wh["id"], "failed", n=3)
    created = sorted(d["createdAt"] for d in failed)
    # a range that excludes everything
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/recover", {"since": "2001-01-01T00:00:00Z", "until": "2001-01-02T00:00:00Z"})
    assert r.status_code == 202 and r.json() == {"count": 0}, r.text
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/recover", {"since": created[0]})
    assert r.status_code == 202 and r.json() == {"count": 3}, r.text
    h.wait_delivery(wh["id"], "success", n=3)
    assert sorted(g.json["data"]["i"] for g in receiver.received("/r")) == [0, 0, 1, 1, 2, 2]


def test_recover_validation(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url())
    for body in ({}, {"since": "yesterday"}, {"since": 5},
                 {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}):
        r = h.api("POST", f"/api/webhook/v1/{wh['id']}/recover", body)
        assert r.status_code == 422, (body, r.text)
    r = h.api("POST", "/api/webhook/v1/wh_unknown000000000000000000/recover", {"since": "2026-01-01T00:00:00Z"})
    assert r.status_code == 404
    h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"status": "disabled"})
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/recover", {"since": "2026-01-01T00:00:00Z"})
    assert r.status_code == 409
