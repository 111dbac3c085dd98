"""List paging (docs/API.md, paging): keyset cursors (`cursor` in, `next` out) on every list
route, the bounded `total` (`totalCapped`), the bound on offset pages, and refusals of cursors
that are not one of the list's own `next` values. Runs on SQLite and on PostgreSQL
(HOOKD_TEST_STORE=pg)."""
import base64
import hashlib
import random

from conftest import wait_until
from test_api_webhooks import err

V1 = "/api/webhook/v1"
EV = V1 + "/events"


def batch(h, types, data=None):
    """Ingests one batch, one event per entry of types; returns the events' ids."""
    r = h.api("POST", EV + "/batch",
              {"events": [{"type": t, "data": data or {"i": i}} for i, t in enumerate(types)]})
    assert r.status_code == 202, r.text
    return [x["id"] for x in r.json()["results"]]


def walk(h, path, key, limit, between=None):
    """Follows `next` from the first page of path; returns (rows, pages). between(n) runs after
    each page (n: pages so far)."""
    rows, pages, cur = [], 0, ""
    sep = "&" if "?" in path else "?"
    while True:
        r = h.api("GET", f"{path}{sep}limit={limit}{cur}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["limit"] == limit and len(body[key]) <= limit
        rows += body[key]
        pages += 1
        if between:
            between(pages)
        if body["next"] is None:
            return rows, pages
        assert len(body[key]) == limit, "a page before the last is full"
        cur = "&cursor=" + body["next"]
        assert pages < 10000


def assert_newest_first_once(rows):
    keys = [(x["createdAt"], x["id"]) for x in rows]
    assert len(set(k[1] for k in keys)) == len(keys), "a row came twice"
    assert keys == sorted(keys, reverse=True), "not newest first (ties by id)"


def test_events_walk_returns_every_row_once_while_rows_are_inserted(hookd):
    h = hookd()
    before = []
    for _ in range(3):  # a batch shares its millisecond: ties that only the id breaks
        before += batch(h, ["walk.a"] * 100)
    added = []
    rows, pages = walk(h, EV, "events", 7,
                       between=lambda n: added.extend(batch(h, ["walk.b"] * 3)))
    assert_newest_first_once(rows)
    got = [e["id"] for e in rows]
    assert set(before) <= set(got), "rows that existed when the walk began were skipped"
    assert not set(added) & set(got), "rows inserted during the walk sort before its start"
    assert len(got) == 300 and pages == 43


def test_deliveries_walk_returns_every_row_once_while_rows_are_inserted(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), events=["d.*"], status="paused")["id"]
    before = batch(h, ["d.x"] * 60)
    path = f"{V1}/{wh}/deliveries"
    r = h.api("GET", f"{path}?limit=100").json()
    assert r["total"] == 60 and r["totalCapped"] is False and r["next"] is None
    first = [d["id"] for d in r["deliveries"]]
    rows, _ = walk(h, path, "deliveries", 9, between=lambda n: batch(h, ["d.x"] * 2))
    assert_newest_first_once(rows)
    assert [d["id"] for d in rows] == first, "the walk is the list as it was when it began"
    assert {d["webhookEventId"] for d in rows} == set(before)


def test_webhooks_walk_and_status_filter(hookd, receiver):
    h = hookd()
    ids = {"active": [], "paused": []}
    for i in range(23):
        st = "paused" if i % 3 == 0 else "active"
        ids[st].append(h.create_webhook(receiver.url(f"/{i}"), events=["w.x"], status=st)["id"])
    made = []
    rows, _ = walk(h, V1, "webhooks", 4, between=lambda n: made.append(
        h.create_webhook(receiver.url("/late"), events=["w.x"])["id"]))
    assert_newest_first_once(rows)
    assert {w["id"] for w in rows} == set(ids["active"] + ids["paused"])
    rows, _ = walk(h, V1 + "?status=paused", "webhooks", 2)
    assert_newest_first_once(rows)
    assert [w["id"] for w in rows] == ids["paused"][::-1]


def test_filters_combine_with_the_cursor(hookd, receiver):
    h = hookd()
    types = [("f.a" if i % 3 else "f.b") for i in range(90)]
    ids = batch(h, types)
    for t in ("f.a", "f.b"):
        rows, _ = walk(h, f"{EV}?type={t}", "events", 4)
        assert_newest_first_once(rows)
        assert all(e["type"] == t for e in rows)
        assert {e["id"] for e in rows} == {i for i, x in zip(ids, types) if x == t}
    # deliveries: some succeed, some fail for good (no retries)
    wh = h.create_webhook(receiver.url("/mix"), events=["m.*"], maxRetries=0)["id"]
    receiver.plan("/mix", [{"status": 200 if i % 4 else 500} for i in range(40)])
    batch(h, ["m.x"] * 40)
    path = f"{V1}/{wh}/deliveries"
    wait_until(lambda: all(d["status"] in ("success", "failed")
                           for d in walk(h, path, "deliveries", 100)[0]),
               timeout=30, what="every delivery finished")
    every, _ = walk(h, path, "deliveries", 100)
    for st, n in (("failed", 10), ("success", 30)):
        rows, pages = walk(h, f"{path}?status={st}", "deliveries", 3)
        assert_newest_first_once(rows)
        assert len(rows) == n and all(d["status"] == st for d in rows)
        assert [d["id"] for d in rows] == [d["id"] for d in every if d["status"] == st]
        body = h.api("GET", f"{path}?status={st}&limit=3").json()
        assert body["total"] == n and body["totalCapped"] is False


def test_next_is_null_on_the_last_page(hookd):
    h = hookd()
    batch(h, ["n.x"] * 6)
    p1 = h.api("GET", EV + "?limit=3").json()
    assert len(p1["events"]) == 3 and isinstance(p1["next"], str)
    p2 = h.api("GET", EV + "?limit=3&cursor=" + p1["next"]).json()
    assert len(p2["events"]) == 3 and p2["next"] is None  # exactly full, and the last
    assert h.api("GET", EV + "?limit=6").json()["next"] is None
    assert h.api("GET", EV + "?type=none.such").json() == {
        "events": [], "total": 0, "totalCapped": False, "page": 1, "limit": 10, "next": None}
    # page and cursor: page 1 may go along (clients that always send it); the offset
    # answer carries next too, so an offset reader can switch to the cursor
    assert h.api("GET", EV + "?limit=3&page=1&cursor=" + p1["next"]).json()["events"] == \
        p2["events"]
    assert h.api("GET", EV + "?limit=2&page=2").json()["next"] is not None


def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def checked(raw):
    """raw as hookd's cursors carry it: with the first 4 bytes of its SHA-256 (src/api/api.c)."""
    return b64(raw + hashlib.sha256(raw).digest()[:4])


def test_a_malformed_or_forged_cursor_is_a_422_naming_cursor(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), events=["c.*"], status="paused")["id"]
    batch(h, ["c.x"] * 5)
    good_ev = h.api("GET", EV + "?limit=2").json()["next"]
    good_dl = h.api("GET", f"{V1}/{wh}/deliveries?limit=2").json()["next"]
    h.create_webhook(receiver.url(), events=["c.*"])
    good_wh = h.api("GET", V1 + "?limit=1").json()["next"]
    body = "a" * 24
    bad = ["", "x", "====", "!!!!", "a b", "%00", "%ff%fe", "\u00e9", "A" * 5000,
           good_ev + "=", good_ev[:-3], good_ev + "AAAA", "+" + good_ev,
           b64(b"abc"), b64(b"123"), b64(b"123."), b64(b".whev_" + body.encode()),
           b64(b"-1.whev_" + body.encode()), b64(b"1e3.whev_" + body.encode()),
           b64(b"99999999999999999999.whev_" + body.encode()),
           b64(b"17.whev_" + b"A" * 24), b64(b"17.whev_short"), b64(b"17.whev_" + b"a" * 60),
           b64(b"17\x00.whev_" + body.encode()), b64(b"17.whev_" + body.encode() + b"\x00"),
           b64(bytes(range(256))), b64(b"17.whev_" + body.encode())]
    # with a right check, but not a position
    bad += [checked(x) for x in (b"", b"abc", b"123", b"123.", b".whev_" + body.encode(),
                                 b"-1.whev_" + body.encode(), b"1e3.whev_" + body.encode(),
                                 b"99999999999999999999.whev_" + body.encode(),
                                 b"17.whev_" + b"A" * 24, b"17.whev_short",
                                 b"17.whev_" + b"a" * 60, b"17\x00.whev_" + body.encode(),
                                 b"17.whev_" + body.encode() + b"\x00", b"17 .whev_" + body.encode())]
    routes = {EV: "whev", f"{V1}/{wh}/deliveries": "whde", V1: "wh"}
    for path, prefix in routes.items():
        for c in bad:
            err(h.api("GET", f"{path}?cursor={c}"), 422, "cursor")
        # a cursor of another list
        for other in (good_ev, good_dl, good_wh):
            if not b64_prefix(other) == prefix:
                err(h.api("GET", f"{path}?cursor={other}"), 422, "cursor")
        # a cursor with a page past the first
        own = {"whev": good_ev, "whde": good_dl, "wh": good_wh}[prefix]
        err(h.api("GET", f"{path}?cursor={own}&page=2"), 422, "cursor")
        # a well-formed position of the caller's own list is just a position
        forged = checked(f"17.{prefix}_{body}".encode())
        r = h.api("GET", f"{path}?cursor={forged}")
        assert r.status_code == 200 and r.json()["next"] is None, r.text
    # fuzz: random bytes, random base64url text; never anything but 200 or 422
    rnd = random.Random(16)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(300):
        if i % 2:
            c = b64(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 90))))
        else:
            c = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 130)))
        r = h.api("GET", f"{EV}?cursor={c}")
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:
            err(r, 422, "cursor")
    assert h.api("GET", EV + "?limit=100").json()["total"] == 5  # still serving


def b64_prefix(cursor):
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))[:-4].decode()
    return raw.split(".", 1)[1].split("_", 1)[0]


def test_total_counts_to_10000_then_says_capped(hookd):
    h = hookd()
    for i in range(11):
        batch(h, ["cap.many"] * 1000, data={"i": 0})
    batch(h, ["cap.few"] * 7)
    r = h.api("GET", EV + "?limit=1").json()
    assert r["total"] == 10000 and r["totalCapped"] is True and r["next"]
    r = h.api("GET", EV + "?limit=1&type=cap.many").json()
    assert r["total"] == 10000 and r["totalCapped"] is True
    r = h.api("GET", EV + "?limit=5&type=cap.few").json()
    assert r["total"] == 7 and r["totalCapped"] is False and len(r["events"]) == 5
    # the cursor reaches every row all the same
    rows, pages = walk(h, EV, "events", 100)
    assert len(rows) == 11007 and len({e["id"] for e in rows}) == 11007 and pages == 111


def test_offset_pages_stop_at_1000_rows_deep(hookd):
    h = hookd()
    batch(h, ["deep.x"] * 25)
    assert h.api("GET", EV + "?limit=10&page=3").json()["events"][-1]["type"] == "deep.x"
    assert h.api("GET", EV + "?limit=10&page=100").json()["events"] == []  # offset 990
    assert h.api("GET", EV + "?limit=100&page=10").status_code == 200  # offset 900
    for q in ("limit=10&page=101", "limit=100&page=11", "page=101", "limit=1&page=1001",
              "page=1000000000"):
        body = err(h.api("GET", f"{EV}?{q}"), 422, "page")
        assert "cursor" in body["fix"]
    err(h.api("GET", f"{V1}?page=101"), 422, "page")


BASE = "293bb4e2831983c5be54f81da7c530ee0a398e98"  # main before the list indexes


def test_list_indexes_migrate_a_populated_database_of_the_previous_version(
        hookd, receiver, monkeypatch):
    """A store written by the hookd before the list indexes (their migration) opens with this
    one: the indexes are built, the ones they supersede dropped, and the lists read the same
    rows, now with cursors."""
    import conftest
    from servers import pg_query, previous_hookd
    h = hookd(start=False)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd(BASE))
    h.start()
    wh = h.create_webhook(receiver.url(), events=["mig.*"], status="paused")["id"]
    batch(h, ["mig.a", "mig.b"] * 30)
    path = f"{V1}/{wh}/deliveries?limit=100"
    before = {p: h.api("GET", p).json() for p in (path, EV + "?limit=100", V1)}
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    def known(new, old):
        """new restricted to the fields old had (later releases add fields, e.g. to webhooks)."""
        if isinstance(old, dict) and isinstance(new, dict):
            return {k: known(new.get(k), v) for k, v in old.items()}
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            return [known(n, o) for n, o in zip(new, old)]
        return new
    for p, old in before.items():
        new = h.api("GET", p).json()
        assert new.pop("next") is None and new.pop("totalCapped") is False
        assert known(new, old) == old
    rows, _ = walk(h, f"{V1}/{wh}/deliveries?status=pending", "deliveries", 7)
    assert [d["id"] for d in rows] == [d["id"] for d in before[path]["deliveries"]]
    rows, _ = walk(h, EV + "?type=mig.b", "events", 4)
    assert len(rows) == 30 and all(e["type"] == "mig.b" for e in rows)
    if h.env.get("PG_URL"):
        names = {r[0] for r in pg_query(h.env["PG_URL"], "SELECT indexname FROM pg_indexes")}
    else:
        import sqlite3
        con = sqlite3.connect(h.env["HOOKD_DB"])
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        con.close()
    assert {"webhook_list", "webhook_list_status", "webhook_event_list",
            "webhook_event_list_type", "webhook_delivery_list",
            "webhook_delivery_list_status"} <= names
    assert not {"webhook_org", "webhook_event_org", "webhook_delivery_webhook"} & names


def test_a_walk_is_exact_over_rows_with_microsecond_times(hookd):
    """PostgreSQL keeps microseconds: rows that hookd did not write (imported, say) may have
    them. A page after a cursor starts at its row's stored time, not at the cursor's
    milliseconds, so such rows come exactly once (with the milliseconds alone, a row whose
    time rounds up to the next millisecond sorted before its own cursor: the walk repeated it
    forever)."""
    h = hookd()
    if not h.env.get("PG_URL"):
        import pytest
        pytest.skip("SQLite stores created_at as integer milliseconds")
    from servers import pg_query
    ids = batch(h, ["us.x"] * 8)
    pg_query(h.env["PG_URL"], "UPDATE webhook_event e SET created_at = "
             "date_trunc('second', now()) + (s.n * 300) * interval '1 microsecond' FROM "
             "(SELECT id, row_number() OVER (ORDER BY id) AS n FROM webhook_event) s "
             "WHERE e.id = s.id")
    rows, pages = walk(h, EV, "events", 1)
    assert sorted(e["id"] for e in rows) == sorted(ids) and pages == 8
    assert [e["id"] for e in rows] == sorted(ids, reverse=True)
