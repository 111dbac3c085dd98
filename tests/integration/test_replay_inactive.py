"""Replays (SPEC §3) answer 409 for a webhook in each status that is not active: paused,
disabled, and failed (set by HOOKD_DISABLE_AFTER); both the manual retry and recover, and
nothing is created or sent. Set active again, both work."""
import time

import pytest


@pytest.mark.parametrize("how", ["paused", "disabled", "failed"])
def test_retry_and_recover_are_409_unless_active(hookd, receiver, how):
    h = hookd(HOOKD_DISABLE_AFTER=1)
    receiver.plan("/r", [{"status": 500}])
    wh = h.create_webhook(receiver.url("/r"), maxRetries=0)
    h.ingest()
    failed = h.wait_delivery(wh["id"], "failed")[0]
    if how == "failed":
        assert h.webhook(wh["id"])["status"] == "failed"  # one final failure, HOOKD_DISABLE_AFTER=1
    else:
        assert h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"status": how}).status_code == 200
    r = h.api("POST", f"/api/webhook/deliveries/{failed['id']}/retry")
    assert r.status_code == 409 and r.json()["code"] == "conflict" and how in r.json()["message"], r.text
    r = h.api("POST", f"/api/webhook/v1/deliveries/{failed['id']}/retry")
    assert r.status_code == 409, r.text
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/recover", {"since": failed["createdAt"]})
    assert r.status_code == 409 and how in r.json()["message"], r.text
    time.sleep(0.3)
    assert len(h.deliveries(wh["id"])) == 1 and receiver.count("/r") == 1
    assert h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"status": "active"}).status_code == 200
    assert h.api("POST", f"/api/webhook/deliveries/{failed['id']}/retry").status_code == 202
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/recover", {"since": failed["createdAt"]})
    assert r.status_code == 202 and r.json() == {"count": 1}, r.text
    h.wait_delivery(wh["id"], "success", n=2)
    assert receiver.count("/r") == 3
