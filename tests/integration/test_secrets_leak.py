"""Secrets never leak (SPEC §2, §3, §6), over a full run of every route.

One hookd with WEBHOOK_ENCRYPTION_KEY and debug logs goes through everything a user does:
webhooks with generated, given and non-whsec secrets, rotation with a grace period, patches
(good and refused), ingest (single, batch, trigger, duplicate), retries, a final failure, manual
replay, recover, sign-test-event, every list and get, errors, metrics, health, the OpenAPI
document, delete. Then every log line and every response except the create and rotate answers
(which hand the secret out once) is searched for each secret, its key bytes in base64 and hex,
and the stored ciphertext; the endpoint itself must only ever see signatures. Start-up with an
invalid key is refused without echoing it.
"""
import base64
import json
import secrets

from conftest import wait_until

KEY_HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"


def forms(secret):
    """The secret and the encodings of its key bytes that a careless log line could carry."""
    out = {secret}
    if secret.startswith("whsec_"):
        b64 = secret[len("whsec_"):]
        out.add(b64)
        try:
            raw = base64.b64decode(b64, validate=True)
            out |= {raw.hex(), raw.hex().upper(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
        except ValueError:
            pass
    return out


def test_full_run_leaks_no_secret_in_logs_responses_or_requests(hookd, receiver):
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX, HOOKD_LOG_LEVEL="debug", HOOKD_LOG_FORMAT="json")
    known = []      # every secret hookd handed out or was given
    answers = []    # (request, status, body + headers) of every other response

    def call(method, path, body=None, expect=None, hands_out=False, key=True, headers=None):
        r = h.api(method, path, body, key=key, headers=headers)
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text)
        if hands_out:
            known.append(r.json()["secret"])
        else:
            answers.append((f"{method} {path}", r.status_code, r.text + json.dumps(dict(r.headers))))
        return r

    given = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    plain = "plain-" + secrets.token_hex(16)  # not whsec_: used as raw key bytes
    known += [given, plain]
    receiver.plan("/c", [{"status": 500}])
    receiver.plan("/d", [{"status": 500}] * 3)
    a = call("POST", "/api/webhook/v1", {"name": "a", "url": receiver.url("/a"), "events": ["*"],
             "rateLimitEnabled": False, "signatureSchemes": ["standard", "reloop", "sha256"]},
             201, hands_out=True).json()
    b = call("POST", "/api/webhook/v1", {"name": "b", "url": receiver.url("/b"), "events": ["*"],
             "rateLimitEnabled": False, "secret": given}, 201, hands_out=True).json()
    c = call("POST", "/api/webhook/v1", {"name": "c", "url": receiver.url("/c"), "events": ["*"],
             "rateLimitEnabled": False, "secret": plain, "signatureSchemes": ["sha256", "reloop"]},
             201, hands_out=True).json()
    d = call("POST", "/api/webhook/v1", {"name": "d", "url": receiver.url("/d"), "events": ["*"],
             "rateLimitEnabled": False, "maxRetries": 0}, 201, hands_out=True).json()
    # refused requests that carry a secret: the error must not echo it
    bad_create = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    known.append(bad_create)
    call("POST", "/api/webhook/v1", {"name": "x", "url": "ftp://nope/", "events": ["*"],
                                    "secret": bad_create}, 422)
    too_long = "whsec_" + secrets.token_hex(300)
    known.append(too_long)
    call("PATCH", f"/api/webhook/v1/{b['id']}", {"secret": too_long}, 422)
    call("PATCH", f"/api/webhook/v1/{b['id']}", {"secret": given + "\n"}, 422)
    # rotation: the old secret keeps signing beside the new one, and is never shown
    call("POST", f"/api/webhook/v1/{a['id']}/rotate-secret", {"graceSeconds": 3600}, 200, hands_out=True)
    rotated = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    known.append(rotated)
    call("POST", f"/api/webhook/v1/{b['id']}/rotate-secret", {"graceSeconds": 0, "secret": rotated},
         200, hands_out=True)
    patched = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    known.append(patched)
    call("PATCH", f"/api/webhook/v1/{d['id']}", {"secret": patched, "name": "d2"}, 200)

    # traffic: single, batch, trigger, a duplicate; a retry (c) and a final failure (d)
    ev = call("POST", "/api/webhook/v1/events", {"type": "order.created", "data": {"n": 1},
                                                 "idempotencyKey": "k-1"}, 202).json()
    call("POST", "/api/webhook/v1/events", {"type": "order.created", "data": {"n": 1}},
         200, headers={"Idempotency-Key": "k-1"})
    call("POST", "/api/webhook/v1/events/batch", {"events": [{"type": "order.paid", "data": {"n": 2}},
                                                             {"type": "order.sent", "data": {"n": 3}}]}, 202)
    call("POST", "/api/webhook/v1/trigger", {"event": "manual.poke", "payload": {"n": 4}}, 202)
    for wh in (a, b, c):
        wait_until(lambda wh=wh: len([x for x in h.deliveries(wh["id"]) if x["status"] == "success"]) == 4,
                   15, 0.05, f"{wh['name']}'s deliveries")
    failed = h.wait_delivery(d["id"], "failed", n=3)
    # replays: one manual retry, one recover
    call("POST", f"/api/webhook/deliveries/{failed[0]['id']}/retry", None, 202)
    call("POST", f"/api/webhook/v1/{d['id']}/recover", {"since": "2000-01-01T00:00:00Z"}, 202)
    wait_until(lambda: len([x for x in h.deliveries(d["id"]) if x["status"] == "success"]) >= 4,
               15, 0.05, "the replays")

    # every read
    call("GET", "/api/webhook/v1?limit=100", None, 200)
    for wh in (a, b, c, d):
        call("GET", f"/api/webhook/v1/{wh['id']}", None, 200)
        dl = call("GET", f"/api/webhook/v1/{wh['id']}/deliveries?limit=100", None, 200).json()
        for x in dl["deliveries"]:
            call("GET", f"/api/webhook/v1/deliveries/{x['id']}", None, 200)
    call("GET", "/api/webhook/v1/events?limit=100", None, 200)
    call("GET", f"/api/webhook/v1/events/{ev['id']}", None, 200)
    for wh in (a, b, c):
        call("POST", "/api/webhook/v1/sign-test-event", {"webhookId": wh["id"], "event": "t.x",
                                                         "payload": {"p": 1}}, 200)
    call("GET", "/metrics", None, 200, key=None)
    call("GET", "/api/webhook/health", None, 200, key=None)
    call("GET", "/api/webhook/openapi/json", None, 200, key=None)
    call("GET", "/api/webhook/v1/wh_unknown00000000000000000000", None, 404)
    call("GET", "/api/webhook/v1", None, 401, key="wrong-key-0123456789")
    call("DELETE", f"/api/webhook/v1/{c['id']}", None, 200)
    call("GET", f"/api/webhook/v1/{c['id']}", None, 404)
    h.stop()

    assert len(set(known)) == 9
    logs = h.logs()
    lines = [l for l in logs.splitlines() if l.strip()]
    assert all(l.startswith("{") and json.loads(l) for l in lines)  # every line structured
    sent = "".join(json.dumps(r.headers) + r.body.decode(errors="replace") for r in receiver.received())
    for s in known:
        for f in forms(s):
            for what, status, text in answers:
                assert f not in text, (what, status, f)
            assert f not in logs, f
            assert f not in sent, f  # an endpoint only ever sees signatures
    for what, status, text in answers:
        assert '"enc:' not in text, what  # nor the stored ciphertext
    assert '"enc:' not in logs
    assert len(answers) > 40


def test_start_up_refuses_an_invalid_key_without_echoing_it(hookd):
    h = hookd(start=False)
    for bad in ("ab" * 31 + "a", "zz" * 32, "ab" * 33, "not-a-key"):
        p = h.cli("serve", env={"WEBHOOK_ENCRYPTION_KEY": bad}, check=False)
        assert p.returncode == 2, (bad, p.returncode, p.stderr)  # 2: bad configuration
        assert "WEBHOOK_ENCRYPTION_KEY" in p.stderr and bad not in p.stderr + p.stdout, p.stderr
