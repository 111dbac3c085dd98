"""Secrets at rest and in the open (SPEC §2, §3): WEBHOOK_ENCRYPTION_KEY encrypts every stored
secret in the `enc:<iv>:<tag>:<ct>` format; no plaintext secret ever appears in a log line or in
a response other than the create/rotate answers that hand it out."""
import os
import sqlite3

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import expect_standard

KEY_HEX = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"


def decrypt(enc):
    tag, iv, tag_hex, ct = enc.split(":")
    assert tag == "enc"
    return AESGCM(bytes.fromhex(KEY_HEX)).decrypt(bytes.fromhex(iv), bytes.fromhex(ct) + bytes.fromhex(tag_hex), None).decode()


def db_rows(h):
    if h.env.get("PG_URL"):
        from servers import pg_query
        return [tuple(r) for r in pg_query(h.env["PG_URL"], "SELECT id, secret, previous_secret FROM webhook")]
    con = sqlite3.connect(h.env["HOOKD_DB"])
    try:
        return con.execute("SELECT id, secret, previous_secret FROM webhook").fetchall()
    finally:
        con.close()


def test_secrets_are_encrypted_at_rest(hookd, receiver):
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    wh = h.create_webhook(receiver.url(), secret="whsec_" + "b" * 40)
    rot = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {"graceSeconds": 600}).json()
    h.ingest()
    got = receiver.wait(1)[0]
    # still signs with the plaintext secrets
    assert got.headers["webhook-signature"].split(" ") == [
        expect_standard(s, got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)
        for s in (rot["secret"], wh["secret"])]
    h.stop()
    (wid, secret, prev), = db_rows(h)
    assert secret.startswith("enc:") and prev.startswith("enc:")
    assert decrypt(secret) == rot["secret"] and decrypt(prev) == wh["secret"]
    for name in os.listdir(h.workdir):
        if name.startswith("hookd.db"):
            blob = open(os.path.join(h.workdir, name), "rb").read()
            assert wh["secret"].encode() not in blob and rot["secret"].encode() not in blob, name
    # a restart with the same key keeps delivering, signed with the same secrets
    h.start()
    h.ingest()
    got = receiver.wait(2)[1]
    assert got.headers["webhook-signature"].split(" ")[0] == expect_standard(
        rot["secret"], got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)


def test_plaintext_rows_are_read_and_new_ones_encrypted(hookd, receiver):
    """Turning encryption on later: old plaintext rows keep working, new writes are encrypted."""
    h = hookd()
    wh = h.create_webhook(receiver.url())
    h.stop()
    assert db_rows(h)[0][1] == wh["secret"]
    h.env["WEBHOOK_ENCRYPTION_KEY"] = KEY_HEX
    h.start()
    h.ingest()
    got = receiver.wait(1)[0]
    assert got.headers["webhook-signature"] == expect_standard(
        wh["secret"], got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)
    rot = h.api("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {"graceSeconds": 0}).json()
    h.stop()
    assert decrypt(db_rows(h)[0][1]) == rot["secret"]


def test_wrong_key_never_sends_unsigned(hookd, receiver):
    """A secret that cannot be decrypted: the API keeps working, ingests are acknowledged, and
    deliveries fail without reaching the endpoint (never sent unsigned); with the right key
    back, a replay goes out signed."""
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    wh = h.create_webhook(receiver.url(), maxRetries=0)
    h.stop()
    h.env["WEBHOOK_ENCRYPTION_KEY"] = "ff" * 32
    h.start()
    r = h.api("GET", f"/api/webhook/v1/{wh['id']}")
    assert r.status_code == 200 and wh["secret"] not in r.text
    h.ingest()
    d = h.wait_delivery(wh["id"], "failed")[0]
    assert "WEBHOOK_ENCRYPTION_KEY" in d["errorMessage"]
    assert receiver.count() == 0
    assert "store.secret_unreadable" in h.logs()
    h.stop()
    h.env["WEBHOOK_ENCRYPTION_KEY"] = KEY_HEX
    h.start()
    r = h.api("POST", f"/api/webhook/deliveries/{d['id']}/retry")
    assert r.status_code == 202, r.text
    got = receiver.wait(1)[0]
    assert got.headers["webhook-signature"] == expect_standard(
        wh["secret"], got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)


def test_no_plaintext_secret_in_logs_or_responses(hookd, receiver):
    h = hookd(HOOKD_LOG_LEVEL="debug")
    secrets_seen = []
    bodies = []

    def call(method, path, body=None, hands_out_secret=False):
        r = h.api(method, path, body)
        if hands_out_secret:
            secrets_seen.append(r.json()["secret"])
        else:
            bodies.append(r.text)
        return r

    wh = call("POST", "/api/webhook/v1", {"name": "n", "url": receiver.url(), "events": ["*"],
                                          "rateLimitEnabled": False}, True).json()
    call("POST", "/api/webhook/v1", {"name": "n", "url": receiver.url(), "events": ["*"],
                                     "secret": "whsec_" + "c" * 40}, True)
    call("POST", f"/api/webhook/v1/{wh['id']}/rotate-secret", {}, True)
    call("GET", "/api/webhook/v1")
    call("GET", f"/api/webhook/v1/{wh['id']}")
    call("PATCH", f"/api/webhook/v1/{wh['id']}", {"name": "renamed"})
    ev = call("POST", "/api/webhook/v1/events", {"type": "a.b", "data": {"x": 1}}).json()
    receiver.wait(2)
    h.wait_delivery(wh["id"], "success")
    call("GET", f"/api/webhook/v1/{wh['id']}/deliveries")
    call("GET", f"/api/webhook/v1/events/{ev['id']}")
    call("GET", "/api/webhook/v1/events")
    call("POST", "/api/webhook/v1/sign-test-event", {"webhookId": wh["id"], "event": "a.b"})
    call("GET", "/metrics")
    call("GET", "/api/webhook/health")
    call("PATCH", f"/api/webhook/v1/{wh['id']}", {"secret": "whsec_" + "d" * 40})
    secrets_seen.append("whsec_" + "d" * 40)
    h.stop()
    logs = h.logs()
    assert len(secrets_seen) == 4
    for s in secrets_seen:
        for text in bodies:
            assert s not in text, text
        assert s not in logs
        # nor its base64-decoded key bytes' obvious forms
        assert s[len("whsec_"):] not in logs
