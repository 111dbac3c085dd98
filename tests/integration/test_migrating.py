"""docs/MIGRATING.md kept honest: the receiver code it gives to the seed's (Reloop) receivers,
in Python and in Node, is taken from the page itself and run against real hookd deliveries
(also during a secret rotation); hookd sends none of the seed's `X-Reloop-*` headers (the page
says no scheme does); the seed's `.env` starts hookd; the health body has the documented
shape; the tutorial's `sha256` receivers verify the exact body."""
import hashlib
import hmac
import json
import os
import re
import subprocess

from conftest import ROOT

DOC = os.path.join(ROOT, "docs", "MIGRATING.md")


def doc_block(lang):
    """The first ```lang code block of docs/MIGRATING.md."""
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"```" + lang + r"\n(.*?)```", text, re.S)
    assert m, f"no {lang} block in docs/MIGRATING.md"
    return m.group(1)


def doc_verify_reloop():
    ns = {}
    exec(compile(doc_block("python"), DOC, "exec"), ns)  # noqa: S102 (the page's own example)
    return ns["verify_reloop"]


NODE_WRAP = """
const crypto = require('crypto');
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const { headers, body, secret } = JSON.parse(input);
  const req = { headers };
  const rawBody = Buffer.from(body, 'utf8');
%s
  process.stdout.write(ok ? 'ok' : 'bad');
});
"""


def node_verify(headers, body, secret):
    p = subprocess.run(["node", "-e", NODE_WRAP % doc_block("js")],
                       input=json.dumps({"headers": headers, "body": body.decode(), "secret": secret}),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout == "ok"


def test_doc_reloop_receiver_code_verifies_hookd(hookd, receiver):
    verify = doc_verify_reloop()
    h = hookd()
    wh = h.create_webhook(receiver.url(), events=["order.paid"], signatureSchemes=["reloop"])
    h.ingest("order.paid", {"big": 12345678901234567890, "x": 1.0})
    got = receiver.wait(1)[0]
    hd, body, secret = got.headers, got.body, wh["secret"]
    # the page: no scheme sends the seed's header names
    assert "x-reloop-signature" not in hd and "x-reloop-timestamp" not in hd
    # the page: same key and signed string as the seed, but the value is t=T,v1=<hex>
    seed_hex = hmac.new(secret.encode(), hd["reloop-timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert hd["reloop-signature"] != seed_hex
    assert hd["reloop-signature"] == f"t={hd['reloop-timestamp']},v1={seed_hex}"
    assert verify(hd, body, secret)
    assert not verify(hd, body + b" ", secret)
    assert not verify(hd, body, secret + "x")
    assert node_verify(hd, body, secret)
    assert not node_verify(hd, body.replace(b"order", b"Order"), secret)

    # during a rotation both secrets verify with the same code
    r = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {"graceSeconds": 3600})
    assert r.status_code == 200, r.text
    new_secret = r.json()["secret"]
    h.ingest("order.paid", {"n": 2})
    got = receiver.wait(2)[1]
    assert got.headers["reloop-signature"].count(",v1=") == 2
    for s in (new_secret, secret):
        assert verify(got.headers, got.body, s)
        assert node_verify(got.headers, got.body, s)


def test_tutorial_sha256_receiver_verifies_the_raw_body(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), events=["*"], signatureSchemes=["sha256"])
    h.ingest("order.paid", {"amount": 1.0})
    got = receiver.wait(1)[0]
    mac = hmac.new(wh["secret"].encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-webhook-signature"] == "sha256=" + mac
    assert json.loads(got.body)["data"] == {"amount": 1.0}
    assert b'"data":{"amount":1.0}' in got.body  # JSON.stringify would give 1: verify raw bytes
    assert "webhook-signature" not in got.headers and "reloop-signature" not in got.headers


def test_seed_env_file_starts_hookd_and_health_has_documented_shape(hookd):
    h = hookd(start=False)
    with open(os.path.join(h.workdir, ".env"), "w") as f:
        f.write('BASE_URL="https://local.reloop.sh"\nNODE_ENV=development\n'
                "NODE_TLS_REJECT_UNAUTHORIZED=0\nOTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1\n")
    h.start()
    r = h.api("GET", "/api/webhook/health", key=False)
    assert r.status_code == 200
    j = r.json()
    assert set(j) == {"status", "checks", "backend", "version", "uptimeSeconds"}
    assert j["status"] == "ok" and j["checks"]["nats"] == "disabled"
    assert set(j["checks"]) == {"store", "queue", "nats"}
    assert j["backend"] in ("sqlite", "postgres")
    assert any(e.get("event") == "hookd.tls_insecure" for e in h.log_events())
