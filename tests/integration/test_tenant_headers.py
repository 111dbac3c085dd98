"""Request headers by reference and custom headers at rest (issue 14, parts 4 and 6): a delivery
row does not carry a copy of its webhook's custom headers (they are stored once per webhook
version), the API still shows exactly the headers sent, custom header values are encrypted with
WEBHOOK_ENCRYPTION_KEY, and a database of the previous schema migrates with its deliveries shown
as before. Real hookd, real receivers, SQLite or (HOOKD_TEST_STORE=pg) PostgreSQL."""
import json
import os
import re
import secrets
import sqlite3

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import conftest
from conftest import SLOW
from servers import previous_hookd

WH = "/api/webhook/v1"
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def decrypt(enc):
    tag, iv, tag_hex, ct = enc.split(":")
    assert tag == "enc"
    return AESGCM(bytes.fromhex(KEY_HEX)).decrypt(
        bytes.fromhex(iv), bytes.fromhex(ct) + bytes.fromhex(tag_hex), None).decode()


def query(h, sql):
    """Rows of sql on hookd's database (SQLite file or PostgreSQL)."""
    if h.env.get("PG_URL"):
        from servers import pg_query
        return [tuple(r) for r in pg_query(h.env["PG_URL"], sql)]
    con = sqlite3.connect(h.env["HOOKD_DB"])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def newest_migration(h):
    """The number of the store's newest migration, from its schema header's numbered comments
    (never hard-coded: other changes append migrations)."""
    name = "pg_schema.h" if h.env.get("PG_URL") else "sqlite_schema.h"
    text = open(os.path.join(conftest.ROOT, "src", "store", name), encoding="utf-8").read()
    return max(int(n) for n in re.findall(r"/\* (\d+): ", text))


def sent_headers(rec):
    """The headers a receiver got, minus those the HTTP client adds on its own."""
    return {k: v for k, v in rec.headers.items() if k not in ("host", "content-length", "accept")}


def test_api_shows_exactly_the_headers_sent(hookd, receiver):
    h = hookd()
    custom = {"Authorization": "Bearer " + secrets.token_hex(16), "X-Tenant": "acme",
              "X-Empty": ""}  # curl drops a blank header unless told otherwise
    wid = h.create_webhook(receiver.url(), customHeaders=custom, maxRetries=2)["id"]
    receiver.plan("/hook", [{"status": 500}])
    h.ingest("order.paid", {"n": 1})
    d = h.wait_delivery(wid, "success", timeout=20)[0]
    got = receiver.wait(2)
    last = sent_headers(got[-1])
    shown = h.delivery(d["id"])["requestHeaders"]
    assert {k.lower(): v for k, v in shown.items()} == last, (shown, last)
    assert [k.lower() for k in shown][:2] == ["content-type", "user-agent"]
    for k, v in custom.items():
        assert shown[k] == v
    # the signatures of the last attempt, not of the first
    assert shown["webhook-signature"] == got[-1].headers["webhook-signature"]
    assert shown["X-Delivery-Id"] == d["id"]
    listed = [x for x in h.deliveries(wid) if x["id"] == d["id"]][0]
    assert listed["requestHeaders"] == shown
    # a new webhook version: new deliveries show the new headers, old ones keep theirs
    r = h.api("PATCH", f"{WH}/{wid}", {"customHeaders": {"X-Tenant": "other"}})
    assert r.status_code == 200, r.text
    h.ingest("order.paid", {"n": 2})
    h.wait_delivery(wid, "success", n=2, timeout=20)
    newest = h.deliveries(wid)[0]
    assert newest["id"] != d["id"]
    assert newest["requestHeaders"]["X-Tenant"] == "other"
    assert "Authorization" not in newest["requestHeaders"]
    assert {k.lower(): v for k, v in newest["requestHeaders"].items()} == sent_headers(receiver.received()[-1])
    assert h.delivery(d["id"])["requestHeaders"] == shown


# Custom headers in an order PostgreSQL's jsonb would change (it sorts keys shorter first).
ORDERED = {"X-Zeta-Long-Name": "1", "X-A": "2", "Authorization": "Bearer t", "X-Mid": "3"}


def _assert_order_kept(h, wid, receiver, custom, n):
    """The n-th delivery of wid went out with custom in the order configured, the API shows
    its requestHeaders in the order sent, and the stored JSON is compact (as written)."""
    h.ingest("order.paid", {"n": n})
    h.wait_delivery(wid, "success", n=n, timeout=20)
    d = h.deliveries(wid)[0]
    got = receiver.received()[-1]
    sent = list(sent_headers(got))
    assert [k for k in sent if k in {c.lower() for c in custom}] == [c.lower() for c in custom]
    shown = h.delivery(d["id"])["requestHeaders"]
    assert [k.lower() for k in shown] == sent, (list(shown), sent)
    assert [k for k in h.webhook(wid)["customHeaders"]] == list(custom)
    cast = "::text" if h.env.get("PG_URL") else ""
    (stored,), = query(h, f"SELECT custom_headers{cast} FROM webhook WHERE id = '{wid}'")
    assert stored == json.dumps(custom, separators=(",", ":")), stored  # no key: as given
    (req,), = query(h, f"SELECT request_headers{cast} FROM webhook_delivery WHERE id = '{d['id']}'")
    assert ": " not in req and ", " not in req, req  # compact, as hookd wrote it


def test_custom_headers_keep_their_order(hookd, receiver):
    """Custom headers reach the receiver in the order configured and the API's requestHeaders
    are in the order sent, also on PostgreSQL (whose jsonb columns re-ordered them)."""
    h = hookd()
    wid = h.create_webhook(receiver.url(), customHeaders=ORDERED)["id"]
    _assert_order_kept(h, wid, receiver, ORDERED, 1)
    # a patch in another order: the new order
    again = dict(reversed(list(ORDERED.items())))
    r = h.api("PATCH", f"{WH}/{wid}", {"customHeaders": again})
    assert r.status_code == 200, r.text
    assert list(r.json()["customHeaders"]) == list(again)
    _assert_order_kept(h, wid, receiver, again, 2)


def _stored_bytes_per_delivery(h, n):
    """Bytes the store holds per delivery, headers included wherever they are kept."""
    if h.env.get("PG_URL"):
        (total,), = query(h, "SELECT pg_total_relation_size('webhook_delivery') + "
                             "COALESCE(pg_total_relation_size(to_regclass('webhook_headers')), 0)")
        return int(total) / n
    h.stop()  # checkpoint the WAL into the file
    size = os.path.getsize(h.env["HOOKD_DB"])
    h.start()
    return size / n


def test_bytes_per_delivery_do_not_grow_with_custom_headers(hookd, receiver):
    """50 KB of custom headers, 1,000 deliveries: stored once, not 1,000 times."""
    n = 1000
    custom = {f"X-H{i:02d}": secrets.token_urlsafe(750)[:1000] for i in range(50)}
    assert sum(len(k) + len(v) for k, v in custom.items()) >= 50_000
    h = hookd()
    wid = h.create_webhook(receiver.url(), customHeaders=custom)["id"]
    r = h.api("POST", WH + "/events/batch",
              {"events": [{"type": "t", "data": {"i": i}} for i in range(n)]}, timeout=120)
    assert r.status_code == 202, r.text
    def all_done():
        (done,), = query(h, "SELECT count(*) FROM webhook_delivery WHERE status = 'success'")
        return int(done) == n
    conftest.wait_until(all_done, 120 * SLOW, 0.2, "every delivery to succeed")
    per_delivery = _stored_bytes_per_delivery(h, n)
    (hdr_bytes,), = query(h, "SELECT sum(length(request_headers" +
                          ("::text" if h.env.get("PG_URL") else "") + ")) FROM webhook_delivery")
    print(f"\nstore bytes per delivery with 50 KB of custom headers: {per_delivery:.0f}; "
          f"request_headers bytes per delivery row: {int(hdr_bytes) / n:.0f}")
    assert int(hdr_bytes) / n < 1500, hdr_bytes
    assert per_delivery < 5000, per_delivery
    # and what each receiver got is still what the API shows
    d = h.deliveries(wid)[0]
    assert d["requestHeaders"]["X-H07"] == custom["X-H07"]
    assert len(d["requestHeaders"]) >= 50 + 4


def _files_blob(h):
    out = b""
    for name in os.listdir(h.workdir):
        if name.startswith("hookd.db"):
            with open(os.path.join(h.workdir, name), "rb") as f:
                out += f.read()
    return out


def test_custom_header_values_encrypted_at_rest(hookd, receiver):
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    token = "tok_" + secrets.token_hex(20)
    wid = h.create_webhook(receiver.url(), customHeaders={"Authorization": "Bearer " + token,
                                                          "X-Plain-Name": "v1"})["id"]
    assert h.webhook(wid)["customHeaders"] == {"Authorization": "Bearer " + token,
                                               "X-Plain-Name": "v1"}
    h.ingest()
    got = receiver.wait(1)[0]
    assert got.headers["authorization"] == "Bearer " + token
    d = h.wait_delivery(wid, "success")[0]
    assert h.delivery(d["id"])["requestHeaders"]["Authorization"] == "Bearer " + token
    # a patch of another field keeps them (and readable)
    assert h.api("PATCH", f"{WH}/{wid}", {"name": "renamed"}).status_code == 200
    assert h.webhook(wid)["customHeaders"]["Authorization"] == "Bearer " + token
    if h.env.get("PG_URL"):
        rows = query(h, "SELECT custom_headers::text FROM webhook")
        rows += query(h, "SELECT headers FROM webhook_headers")
        rows += query(h, "SELECT request_headers::text FROM webhook_delivery")
        assert rows and all(token not in (r[0] or "") for r in rows), rows
    else:
        h.stop()
        blob = _files_blob(h)
        assert blob and token.encode() not in blob
        h.start()
    (stored,), = query(h, "SELECT custom_headers" + ("::text" if h.env.get("PG_URL") else "")
                       + " FROM webhook")
    stored = json.loads(stored)
    assert decrypt(stored["Authorization"]) == "Bearer " + token
    assert decrypt(stored["X-Plain-Name"]) == "v1"
    (hdrs,), = query(h, "SELECT headers FROM webhook_headers")
    assert hdrs.startswith("enc:") and ("Bearer " + token) in decrypt(hdrs)
    # after a restart with the key, deliveries carry the plaintext again
    h.restart()
    h.ingest()
    assert receiver.wait(2)[1].headers["authorization"] == "Bearer " + token


def test_plaintext_custom_headers_stay_readable_after_key_is_set(hookd, receiver):
    h = hookd()
    token = "tok_" + secrets.token_hex(20)
    wid = h.create_webhook(receiver.url(), customHeaders={"X-Token": token})["id"]
    (stored,), = query(h, "SELECT custom_headers" + ("::text" if h.env.get("PG_URL") else "")
                       + " FROM webhook")
    assert token in stored  # no key: stored as given
    h.restart(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    # start-up with the key encrypted what was written without it
    (stored,), = query(h, "SELECT custom_headers" + ("::text" if h.env.get("PG_URL") else "")
                       + " FROM webhook")
    assert token not in stored and decrypt(json.loads(stored)["X-Token"]) == token
    assert any(e.get("msg", "").startswith("custom header values written before")
               for e in h.log_events()), "no store.headers_encrypted line"
    h.ingest()
    assert receiver.wait(1)[0].headers["x-token"] == token
    assert h.webhook(wid)["customHeaders"] == {"X-Token": token}
    # a restart finds nothing more to do, and writes stay encrypted
    assert h.api("PATCH", f"{WH}/{wid}", {"customHeaders": {"X-Token": token}}).status_code == 200
    h.restart()
    (stored2,), = query(h, "SELECT custom_headers" + ("::text" if h.env.get("PG_URL") else "")
                        + " FROM webhook")
    assert token not in stored2 and decrypt(json.loads(stored2)["X-Token"]) == token
    h.ingest()
    assert receiver.wait(2)[1].headers["x-token"] == token
    # a plaintext value that merely looks like ciphertext stays as given
    wid2 = h.create_webhook(receiver.url("/2"), customHeaders={"X-Odd": "enc:not:really"})["id"]
    assert h.webhook(wid2)["customHeaders"] == {"X-Odd": "enc:not:really"}


def test_migration_on_a_populated_database_of_the_previous_version(hookd, receiver, monkeypatch):
    """A store written by the previous hookd (schema without webhook_headers) opens with this
    one: the old deliveries read exactly as before, new ones are stored by reference."""
    h = hookd(start=False)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h.start()
    custom = {"Authorization": "Bearer old-" + secrets.token_hex(8), "X-Big": "x" * 3000}
    wid = h.create_webhook(receiver.url(), customHeaders=custom)["id"]
    receiver.plan("/hook", [{"status": 503}])
    for i in range(5):
        h.ingest("t", {"i": i})
    h.wait_delivery(wid, "success", n=5, timeout=30)
    before = {d["id"]: h.delivery(d["id"]) for d in h.deliveries(wid)}
    listed_before = h.deliveries(wid)
    webhook_before = h.webhook(wid)
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    after = {i: h.delivery(i) for i in before}
    assert after == before
    assert h.deliveries(wid) == listed_before
    # read the same, key order included (PostgreSQL: rows written while the columns were jsonb
    # keep jsonb's order; migration 4 keeps their text)
    assert [list(after[i]["requestHeaders"]) for i in before] == \
        [list(before[i]["requestHeaders"]) for i in before]
    webhook_after = h.webhook(wid)
    for k in ("customHeaders", "filteringOptions"):
        assert webhook_after.get(k) == webhook_before.get(k), k
    assert list(webhook_after["customHeaders"]) == list(webhook_before["customHeaders"])
    h.ingest("t", {"i": 99})
    h.wait_delivery(wid, "success", n=6, timeout=30)
    newest = h.deliveries(wid)[0]
    assert newest["id"] not in before
    assert newest["requestHeaders"]["Authorization"] == custom["Authorization"]
    assert {k.lower(): v for k, v in newest["requestHeaders"].items()} == sent_headers(receiver.received()[-1])
    (refs,), = query(h, "SELECT count(*) FROM webhook_delivery WHERE request_headers_ref IS NOT NULL")
    assert int(refs) == 1
    (ver,), = query(h, "SELECT max(version) FROM schema_migrations")
    # the binary's own schema version: the last migration it logged applying
    assert int(ver) == max(e["version"] for e in h.log_events()
                           if e.get("event") == "store.migrated")
    # new writes keep their order (PostgreSQL: json since migration 4)
    r = h.api("PATCH", f"{WH}/{wid}", {"customHeaders": ORDERED})
    assert r.status_code == 200, r.text
    _assert_order_kept(h, wid, receiver, ORDERED, 7)
