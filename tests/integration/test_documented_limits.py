"""Documented behaviour that no other test exercised end to end (docs/API.md, SPEC §3-§4): the
ingest rate limit (429), the custom-header limits and refused names, a PATCH of `secret`,
Retry-After on a 503, `nextRetryAt` null while a delivery is parked, and the docs page's
Content-Security-Policy. Each test drives the real binary and looks at what a client or a
receiver actually gets."""
import time
from datetime import datetime

from conftest import SLOW, expect_standard, wait_until

WH = "/api/webhook/v1"


def ts(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ---- ingest rate limit ---------------------------------------------------------------------------

def test_ingest_over_the_rate_limit_is_429_json_per_organization(hookd):
    """HOOKD_INGEST_RATE_LIMIT events per second per organization: a full second's worth is
    accepted at once, the next event is 429 rate_limited (JSON, nothing stored), another
    organization is not affected, and a second later the first is accepted again."""
    h = hookd(HOOKD_INGEST_RATE_LIMIT="5")
    other = h.cli("apikey", "create", "--org", "org_other").stdout.strip().splitlines()[0]
    r = h.api("POST", f"{WH}/events/batch", {"events": [{"type": "a", "data": {}}] * 5})
    assert r.status_code == 202, r.text
    r = h.api("POST", f"{WH}/events", {"type": "a", "data": {"over": True}})
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == "rate_limited" and r.json()["message"]
    r = h.api("POST", f"{WH}/events/batch", {"events": [{"type": "a", "data": {}}] * 2})
    assert r.status_code == 429, r.text
    # nothing of the refused requests was stored
    assert h.api("GET", f"{WH}/events?limit=100").json()["total"] == 5
    # the limit is per organization
    assert h.api("POST", f"{WH}/events", {"type": "b", "data": {}}, key=other).status_code == 202
    # the bucket refills at the limit: within about a second one event goes through again
    time.sleep(1.0)
    wait_until(lambda: h.api("POST", f"{WH}/events", {"type": "a", "data": {}}).status_code == 202,
               2, 0.2, "an event accepted after the bucket refilled")
    metrics = h.api("GET", "/metrics", key=None).text
    assert any(l.startswith("hookd_ingest_rejected") and not l.endswith(" 0")
               for l in metrics.splitlines()), "the refusals are counted"


# ---- custom headers ------------------------------------------------------------------------------

REFUSED_NAMES = ["content-type", "Content-Length", "HOST", "user-agent", "x-delivery-id",
                 "webhook-id", "webhook-timestamp", "Webhook-Signature", "reloop-id",
                 "reloop-timestamp", "reloop-signature", "x-webhook-signature", "connection",
                 "transfer-encoding", "expect", "te", "upgrade", "keep-alive", "trailer",
                 "proxy-authorization", "Proxy-Connection"]


def test_custom_header_limits_and_refused_names(hookd, receiver):
    """At most 50 headers, values of at most 4096 bytes; the names hookd sets itself are refused
    in any case, on create and on PATCH; what is accepted reaches the receiver verbatim."""
    h = hookd()
    base = {"name": "h", "url": receiver.url("/ch"), "events": ["*"], "rateLimitEnabled": False}
    fifty = {f"X-H{i:02d}": f"v{i}" for i in range(50)}
    fifty["X-H00"] = "a" * 4096
    r = h.api("POST", WH, {**base, "customHeaders": fifty})
    assert r.status_code == 201, r.text
    wh = r.json()
    for bad in ({**fifty, "X-H50": "one too many"}, {"X-Big": "a" * 4097}):
        r = h.api("POST", WH, {**base, "customHeaders": bad})
        assert r.status_code == 422 and "customHeaders" in r.json()["message"], r.text
        r = h.api("PATCH", f"{WH}/{wh['id']}", {"customHeaders": bad})
        assert r.status_code == 422 and "customHeaders" in r.json()["message"], r.text
    for name in REFUSED_NAMES:
        r = h.api("POST", WH, {**base, "customHeaders": {name: "x"}})
        assert r.status_code == 422, (name, r.text)
        assert "customHeaders" in r.json()["message"], (name, r.text)
        r = h.api("PATCH", f"{WH}/{wh['id']}", {"customHeaders": {"X-Ok": "1", name: "x"}})
        assert r.status_code == 422, (name, r.text)
    # names that merely start like a refused one are fine
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"customHeaders": {**fifty, "X-H49": "last"}})
    assert r.status_code == 200, r.text
    assert len(h.api("GET", WH).json()["webhooks"]) == 1  # no refused create stored anything
    h.ingest()
    got = receiver.wait(1, "/ch")[0]
    assert got.headers["x-h00"] == "a" * 4096 and got.headers["x-h49"] == "last"
    assert all(got.headers[f"x-h{i:02d}"] == f"v{i}" for i in range(1, 49))
    assert got.headers["content-type"] == "application/json"


# ---- PATCH secret --------------------------------------------------------------------------------

def test_patch_secret_replaces_it_without_a_grace_period(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url("/ps"))
    new = "whsec_" + "Q" * 40
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"secret": new})
    assert r.status_code == 200, r.text
    body = r.json()
    assert new not in r.text and body["secret"] == "whsec_\u2026" + new[-4:]
    assert body.get("previousSecretExpiresAt") is None
    h.ingest()
    got = receiver.wait(1, "/ps")[0]
    # one signature, by the new secret: the old one is gone at once
    assert got.headers["webhook-signature"] == expect_standard(
        new, got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"secret": "short"})
    assert r.status_code == 422 and "secret" in r.json()["message"], r.text


# ---- Retry-After on 503 --------------------------------------------------------------------------

def test_retry_after_on_503_lengthens_the_wait(hookd, receiver):
    """The schedule says 300 ms; a 503 with Retry-After: 2 makes the next attempt wait 2 s."""
    h = hookd()
    wh = h.create_webhook(receiver.url("/ra503"))
    receiver.plan("/ra503", [{"status": 503, "headers": {"Retry-After": "2"}}, {"status": 200}])
    h.ingest()
    first = receiver.wait(1, "/ra503")[0]
    d = h.wait_delivery(wh["id"], "retrying")[0]
    assert 1.9 <= ts(d["nextRetryAt"]) - ts(d["lastAttemptAt"]) <= 2.0 + 0.2 * SLOW, d
    second = receiver.wait(2, "/ra503", timeout=10)[1]
    gap = second.at - first.at
    assert 1.9 <= gap <= 2.0 + 1.5 * SLOW, gap
    h.wait_delivery(wh["id"], "success")


# ---- parked deliveries ---------------------------------------------------------------------------

def test_next_retry_at_is_null_while_parked(hookd, receiver):
    """A delivery of a paused webhook is parked: pending with no due time, never attempted. A
    retry waiting in the store (due beyond the 60 s a node keeps in memory) loses its due time
    when its webhook is paused, and is due at once (and delivered) when it is active again."""
    h = hookd(HOOKD_RETRY_SCHEDULE="90s")
    paused = h.create_webhook(receiver.url("/parked"), status="paused", events=["p.*"])
    h.ingest(type_="p.one")
    d = h.wait_delivery(paused["id"], "pending")[0]
    assert d["nextRetryAt"] is None, d
    time.sleep(0.5 * SLOW)  # a few polls: still parked, never attempted
    d = h.delivery(d["id"])
    assert d["status"] == "pending" and d["nextRetryAt"] is None and d["attemptNumber"] == 0, d
    assert receiver.count("/parked") == 0

    live = h.create_webhook(receiver.url("/live"), events=["l.*"])
    receiver.plan("/live", [{"status": 500}])
    h.ingest(type_="l.one")
    r = h.wait_delivery(live["id"], "retrying")[0]
    assert r["nextRetryAt"] is not None and ts(r["nextRetryAt"]) - ts(r["lastAttemptAt"]) >= 89, r
    assert h.api("PATCH", f"{WH}/{live['id']}", {"status": "paused"}).status_code == 200
    r = h.delivery(r["id"])
    assert r["status"] == "retrying" and r["nextRetryAt"] is None, r
    for wh in (paused, live):
        assert h.api("PATCH", f"{WH}/{wh['id']}", {"status": "active"}).status_code == 200
    h.wait_delivery(paused["id"], "success")
    h.wait_delivery(live["id"], "success")
    assert receiver.count("/live") == 2


def test_a_retry_held_in_memory_is_parked_at_its_due_time_not_attempted(hookd, receiver):
    """A retry due within 60 s stays with its node; its webhook paused meanwhile, it is not
    attempted when due but parked (nextRetryAt null), and goes out once the webhook is active."""
    h = hookd(HOOKD_RETRY_SCHEDULE="2s")
    wh = h.create_webhook(receiver.url("/mem"))
    receiver.plan("/mem", [{"status": 500}])
    h.ingest()
    d = h.wait_delivery(wh["id"], "retrying")[0]
    assert h.api("PATCH", f"{WH}/{wh['id']}", {"status": "paused"}).status_code == 200
    d = wait_until(lambda: (lambda x: x if x["nextRetryAt"] is None else None)(h.delivery(d["id"])),
                   2 + 2.0, 0.1, "the held retry parked at its due time")
    assert d["status"] == "retrying" and d["attemptNumber"] == 1, d
    time.sleep(0.5 * SLOW)
    assert receiver.count("/mem") == 1
    assert h.api("PATCH", f"{WH}/{wh['id']}", {"status": "active"}).status_code == 200
    h.wait_delivery(wh["id"], "success")
    assert receiver.count("/mem") == 2


# ---- the docs page -------------------------------------------------------------------------------

def test_docs_page_content_security_policy(shared_hookd):
    """The page sends a Content-Security-Policy that allows only this origin (docs/API.md)."""
    r = shared_hookd.api("GET", "/api/webhook/openapi", key=False)
    assert r.status_code == 200
    csp = r.headers.get("content-security-policy")
    assert csp, "no Content-Security-Policy on the docs page"
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"], csp
    assert directives["frame-ancestors"] == ["'none'"], csp
    for name, sources in directives.items():
        for s in sources:
            assert s in ("'self'", "'none'", "'unsafe-inline'", "data:"), (name, s, csp)
