"""Ed25519 signatures (issue 19 item 3, Standard Webhooks `v1a`, docs/API.md "Ed25519"): a
webhook whose signatureSchemes include "ed25519" has a key pair; its deliveries carry
`v1a,<base64 Ed25519("<id>.<timestamp>.<body>")>` in webhook-signature, verified here by Node's
crypto.verify (verify_ed25519.mjs), never by hookd's code; the public key is readable as
`publicKey` (`whpk_` + base64); a rotation sends both signatures during its grace period; the
key pair survives a restart and the private key is encrypted at rest with
WEBHOOK_ENCRYPTION_KEY; schemes combine."""
import base64
import json
import os
import sqlite3
import subprocess
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import conftest
from conftest import ROOT, expect_reloop, expect_standard
from servers import previous_hookd

WH = "/api/webhook/v1"
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def node_verify(items):
    """[(publicKey, data bytes, sig base64)] -> [bool], by Node's crypto.verify."""
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "integration", "verify_ed25519.mjs")],
                       input=json.dumps([{"publicKey": pk, "data": base64.b64encode(d).decode(),
                                          "sig": s} for pk, d, s in items]),
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def signed(rec):
    """The bytes a Standard Webhooks signature covers, for a received request."""
    return f"{rec.headers['webhook-id']}.{rec.headers['webhook-timestamp']}.".encode() + rec.body


def sigs(rec, version):
    """The signatures of one version ("v1", "v1a") in webhook-signature, in order."""
    out = []
    for part in rec.headers["webhook-signature"].split(" "):
        v, s = part.split(",", 1)
        if v == version:
            out.append(s)
    return out


def public_of(priv_text):
    """whpk_ text of a whsk_ private key text, by the cryptography package (not hookd)."""
    assert priv_text.startswith("whsk_")
    k = Ed25519PrivateKey.from_private_bytes(base64.b64decode(priv_text[5:]))
    raw = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whpk_" + base64.b64encode(raw).decode()


def decrypt(enc):
    tag, iv, tag_hex, ct = enc.split(":")
    assert tag == "enc"
    return AESGCM(bytes.fromhex(KEY_HEX)).decrypt(
        bytes.fromhex(iv), bytes.fromhex(ct) + bytes.fromhex(tag_hex), None).decode()


def key_columns(h):
    sql = ("SELECT COALESCE(signing_key, '-'), COALESCE(previous_signing_key, '-') FROM webhook "
           "ORDER BY created_at")
    if h.env.get("PG_URL"):
        from servers import pg_query
        return [tuple(r) for r in pg_query(h.env["PG_URL"], sql)]
    con = sqlite3.connect(h.env["HOOKD_DB"])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_ed25519_signature_verifies_with_node_and_fails_on_a_changed_byte(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), signatureSchemes=["ed25519"])
    pk = wh["publicKey"]
    assert wh["signatureSchemes"] == ["ed25519"]
    assert pk.startswith("whpk_") and len(base64.b64decode(pk[5:])) == 32
    assert h.webhook(wh["id"])["publicKey"] == pk
    assert "whsk_" not in json.dumps(h.api("GET", f"{WH}?limit=100").json())
    ev = h.ingest("order.paid", {"amount": 42})
    got = receiver.wait(1)[0]
    assert got.headers["webhook-id"] == ev["id"]
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30
    assert "reloop-signature" not in got.headers and "x-webhook-signature" not in got.headers
    assert sigs(got, "v1") == [] and len(sigs(got, "v1a")) == 1
    sig = sigs(got, "v1a")[0]
    assert len(base64.b64decode(sig)) == 64
    data = signed(got)
    bad = bytearray(data)
    bad[-2] ^= 1  # a byte of the body
    other = h.create_webhook(receiver.url("/other"), signatureSchemes=["ed25519"])["publicKey"]
    assert node_verify([(pk, data, sig), (pk, bytes(bad), sig), (other, data, sig)]) == \
        [True, False, False]
    # what the API records is what was sent
    d = h.wait_delivery(wh["id"], "success")[0]
    assert h.delivery(d["id"])["requestHeaders"]["webhook-signature"] == \
        got.headers["webhook-signature"]


def test_schemes_combine_standard_reloop_and_ed25519(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), signatureSchemes=["standard", "reloop", "ed25519"],
                          secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert wh["signatureSchemes"] == ["standard", "reloop", "ed25519"]
    h.ingest("order.paid", {"n": 1})
    got = receiver.wait(1)[0]
    # "v1,<hmac> v1a,<ed25519>": one header, space separated, as Standard Webhooks writes several
    parts = got.headers["webhook-signature"].split(" ")
    assert [p.split(",")[0] for p in parts] == ["v1", "v1a"], parts
    ts = got.headers["webhook-timestamp"]
    assert parts[0] == expect_standard(wh["secret"], got.headers["webhook-id"], ts, got.body)
    assert got.headers["reloop-signature"] == f"t={ts},v1=" + expect_reloop(wh["secret"], ts,
                                                                             got.body)
    assert node_verify([(wh["publicKey"], signed(got), sigs(got, "v1a")[0])]) == [True]
    # the reference standardwebhooks library still verifies the v1 beside a v1a
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "integration", "verify_standard.mjs")],
                       input=json.dumps({"secret": wh["secret"], "body": got.body.decode(),
                                         "headers": {k: got.headers[k] for k in (
                                             "webhook-id", "webhook-timestamp",
                                             "webhook-signature")}}),
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # sign-test-event signs the same way (nothing sent)
    r = h.api("POST", f"{WH}/sign-test-event", {"webhookId": wh["id"], "event": "order.paid"})
    assert r.status_code == 200, r.text
    t = r.json()
    hd = {k.lower(): v for k, v in t["headers"].items()}
    data = f"{hd['webhook-id']}.{hd['webhook-timestamp']}.".encode() + t["rawBody"].encode()
    v1a = [x[4:] for x in hd["webhook-signature"].split(" ") if x.startswith("v1a,")]
    assert len(v1a) == 1 and node_verify([(wh["publicKey"], data, v1a[0])]) == [True]
    # adding ed25519 later by PATCH makes a key pair; patching again keeps it; a webhook
    # without the scheme has none
    plain = h.create_webhook(receiver.url("/plain"))
    assert plain["publicKey"] is None
    r = h.api("PATCH", f"{WH}/{plain['id']}", {"signatureSchemes": ["standard", "ed25519"]})
    assert r.status_code == 200, r.text
    pk = r.json()["publicKey"]
    assert pk.startswith("whpk_") and pk != wh["publicKey"]
    r = h.api("PATCH", f"{WH}/{plain['id']}", {"signatureSchemes": ["ed25519"]})
    assert r.json()["publicKey"] == pk
    h.ingest("order.paid", {"n": 2})
    got = receiver.wait(1, path="/plain")[-1]
    assert node_verify([(pk, signed(got), sigs(got, "v1a")[0])]) == [True]


def test_rotation_sends_both_signatures_then_the_old_one_stops(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), signatureSchemes=["ed25519"])
    old = wh["publicKey"]
    grace = 3
    r = h.api("POST", f"{WH}/{wh['id']}/rotate-signing-key", {"graceSeconds": grace})
    assert r.status_code == 200, r.text
    rot = r.json()
    new = rot["publicKey"]
    assert new != old and rot["previousPublicKey"] == old and "previousPublicKeyExpiresAt" in rot
    assert rot["secret"].startswith("whsec_\u2026")  # the secret is untouched and masked
    h.ingest("order.paid", {"n": 1})
    got = receiver.wait(1)[0]
    both = sigs(got, "v1a")
    assert len(both) == 2, got.headers["webhook-signature"]
    data = signed(got)
    # newest first: the new key's signature, then the old one's
    assert node_verify([(new, data, both[0]), (old, data, both[1]), (old, data, both[0])]) == \
        [True, True, False]
    # after the grace period only the new key signs
    time.sleep(grace + 0.5)
    assert "previousPublicKey" not in h.webhook(wh["id"])
    h.ingest("order.paid", {"n": 2})
    got = receiver.wait(2)[1]
    one = sigs(got, "v1a")
    assert len(one) == 1, got.headers["webhook-signature"]
    assert node_verify([(new, signed(got), one[0]), (old, signed(got), one[0])]) == [True, False]
    # graceSeconds 0: the old key stops at once
    r = h.api("POST", f"{WH}/{wh['id']}/rotate-signing-key", {"graceSeconds": 0})
    assert r.status_code == 200 and "previousPublicKey" not in r.json(), r.text
    newest = r.json()["publicKey"]
    h.ingest("order.paid", {"n": 3})
    got = receiver.wait(3)[2]
    assert node_verify([(newest, signed(got), s) for s in sigs(got, "v1a")]) == [True]
    # bad requests
    assert h.api("POST", f"{WH}/{wh['id']}/rotate-signing-key",
                 {"graceSeconds": -1}).status_code == 422
    assert h.api("POST", f"{WH}/wh_doesnotexist0000000000/rotate-signing-key",
                 {}).status_code == 404
    r = h.api("POST", WH, {"name": "x", "url": receiver.url(), "events": ["*"],
                           "signatureSchemes": ["ed448"]})
    assert r.status_code == 422 and "signatureSchemes" in r.json()["message"], r.text


def test_key_pair_survives_restart_and_private_key_is_encrypted_at_rest(hookd, receiver):
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    wh = h.create_webhook(receiver.url(), signatureSchemes=["ed25519"])
    pk = wh["publicKey"]
    rot = h.api("POST", f"{WH}/{wh['id']}/rotate-signing-key", {"graceSeconds": 600}).json()
    h.stop()
    (cur, prev), = key_columns(h)
    assert cur.startswith("enc:") and prev.startswith("enc:"), (cur, prev)
    # the ciphertext holds the private keys of exactly the public keys the API showed
    assert public_of(decrypt(cur)) == rot["publicKey"] and public_of(decrypt(prev)) == pk
    for name in os.listdir(h.workdir):
        if name.startswith("hookd.db"):
            blob = open(os.path.join(h.workdir, name), "rb").read()
            for k in (decrypt(cur), decrypt(prev)):
                assert k.encode() not in blob and k[5:].encode() not in blob, name
    h.start()
    after = h.webhook(wh["id"])
    assert after["publicKey"] == rot["publicKey"] and after["previousPublicKey"] == pk
    h.ingest("order.paid", {"n": 1})
    got = receiver.wait(1)[0]
    s = sigs(got, "v1a")
    assert node_verify([(rot["publicKey"], signed(got), s[0]), (pk, signed(got), s[1])]) == \
        [True, True]


def test_a_key_that_cannot_be_decrypted_never_sends_unsigned(hookd, receiver):
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    wid = h.create_webhook(receiver.url(), signatureSchemes=["standard", "ed25519"],
                           maxRetries=0)["id"]
    h.stop()
    # the secret stays readable; the private key's ciphertext is damaged
    (cur, _), = key_columns(h)
    bad = cur[:-2] + ("00" if not cur.endswith("00") else "11")
    sql = f"UPDATE webhook SET signing_key = '{bad}'"
    if h.env.get("PG_URL"):
        from servers import pg_query
        pg_query(h.env["PG_URL"], sql)
    else:
        con = sqlite3.connect(h.env["HOOKD_DB"])
        con.execute(sql)
        con.commit()
        con.close()
    h.start()
    assert h.webhook(wid)["publicKey"] is None
    h.ingest("order.paid", {"n": 1})
    d = h.wait_delivery(wid, "failed", timeout=15)[0]
    assert "Ed25519 key cannot be read" in h.delivery(d["id"])["errorMessage"]
    assert receiver.count() == 0


def test_migration_on_a_populated_database_of_the_previous_version(hookd, receiver, monkeypatch):
    """A webhook written by the previous hookd (no key columns) takes ed25519 by PATCH."""
    h = hookd(start=False)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h.start()
    wh = h.create_webhook(receiver.url())
    for i in range(3):
        h.ingest("t", {"i": i})
    h.wait_delivery(wh["id"], "success", n=3, timeout=30)
    before = h.deliveries(wh["id"])
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    assert h.webhook(wh["id"])["publicKey"] is None
    assert h.deliveries(wh["id"]) == before
    assert key_columns(h) == [("-", "-")]
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"signatureSchemes": ["standard", "ed25519"]})
    assert r.status_code == 200, r.text
    pk = r.json()["publicKey"]
    h.ingest("t", {"i": 9})
    got = receiver.wait(4)[3]
    assert got.headers["webhook-signature"].split(" ")[0] == expect_standard(
        wh["secret"], got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)
    assert node_verify([(pk, signed(got), sigs(got, "v1a")[0])]) == [True]
    (cur, prev), = key_columns(h)
    assert public_of(cur) == pk and prev == "-"
