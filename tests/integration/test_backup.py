"""`hookd backup PATH` (issue 16, data lifecycle, part 4): an online copy of the SQLite store
taken while `hookd serve` runs under load, restored into a new hookd with every acknowledged
event; the copy is private (0600), an existing file is never overwritten without --force, and
on PostgreSQL the command refuses with a pointer to pg_dump / pg_basebackup."""
import os
import sqlite3
import secrets
import stat
import subprocess
import threading
import time

import pytest

from conftest import SLOW, expect_standard, wait_until

KEY_HEX = "0f" * 32


def _sqlite_only(h):
    if h.env.get("PG_URL"):
        pytest.skip("the SQLite backup; PostgreSQL is refused (test_backup_refused_on_postgres)")


def _ro(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


class Ingester(threading.Thread):
    """Ingests steadily until stopped; acked holds (event id, monotonic time of its 202)."""

    def __init__(self, h):
        super().__init__(daemon=True)
        self.h, self.acked, self.errors = h, [], []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            r = self.h.api("POST", "/api/webhook/v1/events",
                           {"type": "bk.event", "data": {"n": n, "pad": "x" * 512}})
            if r.status_code != 202:
                self.errors.append((r.status_code, r.text))
                continue
            with self.lock:
                self.acked.append((r.json()["id"], time.monotonic()))

    def acked_before(self, t):
        with self.lock:
            return [i for i, at in self.acked if at < t]


def test_backup_under_load_restores_every_acknowledged_event(hookd, receiver, tmp_path):
    h = hookd(WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    _sqlite_only(h)
    wh = h.create_webhook(receiver.url(), events=("bk.event", "bk.bulk", "bk.after"),
                          secret="whsec_" + "c" * 40)
    held_wid, held = hold_events(h, receiver)
    # a long reader (a report, say) holds its snapshot: checkpoints cannot move what is
    # committed after it into the database file, so the events below live only in the -wal
    # file (a copy of the database file alone would miss them)
    reader = sqlite3.connect(f"file:{h.env['HOOKD_DB']}?mode=ro", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM webhook_event").fetchone()
    # a database of some megabytes, so that the copy takes several steps while events arrive
    batch = []
    for b in range(12):
        r = h.api("POST", "/api/webhook/v1/events/batch",
                  {"events": [{"type": "bk.bulk", "data": {"b": b, "i": i, "pad": "z" * 2048}}
                              for i in range(250)]})
        assert r.status_code == 202, r.text
        batch += [e["id"] for e in r.json()["results"]]
    ing = Ingester(h)
    ing.start()
    wait_until(lambda: len(ing.acked) >= 150 and receiver.count() >= 50, 30, 0.05,
               "ingestion and delivery under way")
    dest = str(tmp_path / "copy.db")
    began = time.monotonic()
    p = h.cli("backup", dest)  # hookd serves (and holds <db>.lock) all along
    ended = time.monotonic()
    print(p.stdout.strip(), f"; {len(ing.acked_before(ended)) - len(ing.acked_before(began))} "
          "events acknowledged during it")
    wait_until(lambda: len(ing.acked_before(1e18)) >= len(ing.acked_before(ended)) + 20, 30, 0.05,
               "ingestion after the backup")
    ing.stop_flag.set()
    ing.join(30 * SLOW)
    reader.close()
    assert not ing.errors, ing.errors[:3]
    assert dest in p.stdout, p.stdout
    before = ing.acked_before(began)
    after = ing.acked_before(1e18)[len(ing.acked_before(ended)):]
    assert len(before) >= 150

    # the copy: private, intact, one consistent snapshot
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert not any(n.startswith("copy.db.tmp") for n in os.listdir(tmp_path))
    con = _ro(dest)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        events = {r[0] for r in con.execute("SELECT id FROM webhook_event")}
        # every event has its delivery (one webhook matches all): no torn transaction
        orphans = con.execute("SELECT count(*) FROM webhook_event e WHERE NOT EXISTS (SELECT 1 "
                              "FROM webhook_delivery d WHERE d.webhook_event_id = e.id)").fetchone()
        secret = con.execute("SELECT secret FROM webhook WHERE id = ?",
                             (wh["id"],)).fetchone()[0]
        open_events = {r[0] for r in con.execute(
            "SELECT webhook_event_id FROM webhook_delivery WHERE status IN ('pending','retrying')")}
    finally:
        con.close()
    assert orphans == (0,)
    assert set(before) <= events and set(batch) <= events and set(held) <= events
    assert set(held) <= open_events
    assert not set(after) & events, "events acknowledged after the backup ended are in it"
    # ciphertext stays ciphertext: the copy needs the key
    assert secret.startswith("enc:") and wh["secret"] not in secret

    # restore: a new hookd on the copy (new port, same key) has every acknowledged event
    h.stop()
    restored_at = time.time()
    h2 = hookd(HOOKD_DB=dest, WEBHOOK_ENCRYPTION_KEY=KEY_HEX)
    assert h2.port != h.port
    for eid in before:
        r = h2.api("GET", f"/api/webhook/v1/events/{eid}")
        assert r.status_code == 200, (eid, r.status_code, r.text)
        assert len(r.json()["deliveries"]) == 1
    # the copy signs with the same (decrypted) secret
    eid = h2.ingest("bk.after")["id"]
    got = wait_until(lambda: [g for g in receiver.received() if g.headers["webhook-id"] == eid],
                     30, 0.05, "a delivery from the restored hookd")[0]
    assert got.headers["webhook-signature"] == expect_standard(
        wh["secret"], eid, got.headers["webhook-timestamp"], got.body)
    # at-least-once across a restore: everything acknowledged before the backup reaches the
    # receiver (again, for what was delivered after the copy was taken)
    want = set(before)
    wait_until(lambda: want <= {g.headers["webhook-id"] for g in receiver.received()}, 60, 0.1,
               "every event of the backup delivered")
    # and the restored hookd itself sends every delivery the copy holds open (the held ones
    # once their webhook is resumed)
    delivered_by_copy(receiver, open_events - set(held), restored_at)
    resume_and_check_held(h2, receiver, held_wid, held, restored_at)


def hold_events(h, receiver, n=20):
    """A paused webhook on receiver's /held, subscribed to bk.held only, and n such events: their
    deliveries stay open (parked) in the store, whatever the timing, until the webhook is
    resumed. Returns (webhook id, event ids)."""
    wh = h.create_webhook(receiver.url("/held"), events=("bk.held",), status="paused")
    return wh["id"], [h.ingest("bk.held", data={"i": i})["id"] for i in range(n)]


def resume_and_check_held(h2, receiver, wid, held, restored_at):
    """Resumes the held webhook on the restored hookd; every held event reaches /held."""
    r = h2.api("PATCH", f"/api/webhook/v1/{wid}", {"status": "active"})
    assert r.status_code == 200, r.text
    wait_until(lambda: set(held) <= {g.headers["webhook-id"] for g in receiver.received("/held")
                                     if g.at >= restored_at}, 30, 0.1,
               "the held deliveries sent by the restored hookd once resumed")


def delivered_by_copy(receiver, open_events, restored_at):
    """Waits until every event of open_events reached the receiver after restored_at (from the
    restored hookd, not the original one)."""
    wait_until(lambda: open_events <= {g.headers["webhook-id"] for g in receiver.received()
                                       if g.at >= restored_at}, 60, 0.1,
               f"the {len(open_events)} deliveries open in the copy sent by the restored hookd")


def test_backup_is_private_and_never_overwrites(hookd, tmp_path):
    h = hookd()
    _sqlite_only(h)
    h.ingest()
    dest = str(tmp_path / "b.db")
    old_umask = os.umask(0)  # hookd inherits it: the copy must be 0600 anyway
    try:
        h.cli("backup", dest)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    first = open(dest, "rb").read()

    # an existing file: refused, untouched, nothing left behind
    h.ingest(data={"pad": "y" * 20000})
    p = h.cli("backup", dest, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert dest in p.stderr and "--force" in p.stderr, p.stderr
    assert open(dest, "rb").read() == first
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]

    # --force replaces it with a new copy (the second event is in it)
    h.cli("backup", "--force", dest)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    con = _ro(dest)
    try:
        assert con.execute("SELECT count(*) FROM webhook_event").fetchone() == (2,)
    finally:
        con.close()

    # never the database itself, even with --force
    p = h.cli("backup", "--force", h.env["HOOKD_DB"], check=False)
    assert p.returncode == 1 and h.env["HOOKD_DB"] in p.stderr, p.stderr
    assert h.api("GET", "/api/webhook/v1/events").status_code == 200

    # usage mistakes: exit 2
    for args in (["backup"], ["backup", "--frobnicate", dest + "2"], ["backup", "a", "b"]):
        p = h.cli(*args, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
    assert not os.path.exists(dest + "2")


def test_backup_of_a_missing_database_fails_without_creating_it(hookd, tmp_path):
    h = hookd(start=False)
    _sqlite_only(h)
    missing = str(tmp_path / "none.db")
    p = h.cli("backup", str(tmp_path / "x.db"), env={"HOOKD_DB": missing}, check=False)
    assert p.returncode == 1 and missing in p.stderr, p.stderr
    assert not os.path.exists(missing) and not os.path.exists(tmp_path / "x.db")


def test_backup_refused_on_postgres(hookd, tmp_path):
    """PG_URL set: exit 2, a message pointing at PostgreSQL's own tools, no file written. Runs
    on the real PostgreSQL with HOOKD_TEST_STORE=pg; otherwise on a URL nothing listens on (the
    refusal comes before any connection)."""
    h = hookd(start=False)
    env = {} if h.env.get("PG_URL") else {"PG_URL": "postgresql://127.0.0.1:1/none"}
    dest = str(tmp_path / "pg.db")
    p = h.cli("backup", dest, env=env, check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "PG_URL" in p.stderr and "pg_dump" in p.stderr and "pg_basebackup" in p.stderr
    assert not os.path.exists(dest)


def test_pg_dump_under_load_restores_every_acknowledged_event(hookd, receiver, tmp_path):
    """docs/OPERATIONS.md's PostgreSQL backup, exactly: `pg_dump --format=custom` taken while
    hookd ingests and delivers, `pg_restore` into a new empty database, a hookd on it (same
    HOOKD_NODE_ID: it takes its leases back at once) has every event acknowledged before the dump
    began and sends the deliveries the dump holds open."""
    h = hookd()
    if not h.env.get("PG_URL"):
        pytest.skip("PostgreSQL's own tools (HOOKD_TEST_STORE=pg)")
    from servers import PG_BIN, pg_query
    pg = os.path.join(PG_BIN, "pg_dump"), os.path.join(PG_BIN, "pg_restore")
    h.create_webhook(receiver.url(), events=("bk.event", "bk.bulk", "bk.after"),
                     secret="whsec_" + "d" * 40)
    held_wid, held = hold_events(h, receiver)
    for b in range(8):  # some megabytes, a backlog of open deliveries
        r = h.api("POST", "/api/webhook/v1/events/batch",
                  {"events": [{"type": "bk.bulk", "data": {"b": b, "i": i, "pad": "z" * 2048}}
                              for i in range(250)]})
        assert r.status_code == 202, r.text
    ing = Ingester(h)
    ing.start()
    wait_until(lambda: len(ing.acked) >= 150 and receiver.count() >= 50, 30, 0.05,
               "ingestion and delivery under way")
    dump = str(tmp_path / "hookd.dump")
    began = time.monotonic()
    p = subprocess.run([pg[0], "--format=custom", "-f", dump, h.env["PG_URL"]],
                       capture_output=True, text=True, timeout=120 * SLOW)
    ended = time.monotonic()
    assert p.returncode == 0, p.stderr
    wait_until(lambda: len(ing.acked_before(1e18)) >= len(ing.acked_before(ended)) + 20, 30, 0.05,
               "ingestion after the dump")
    ing.stop_flag.set()
    ing.join(30 * SLOW)
    assert not ing.errors, ing.errors[:3]
    before = ing.acked_before(began)
    assert len(before) >= 150
    print(f"pg_dump: {os.path.getsize(dump)} bytes in {ended - began:.2f} s; "
          f"{len(ing.acked_before(ended)) - len(before)} events acknowledged during it")

    # restore into a fresh database of the same server
    url = h.env["PG_URL"].rsplit("/", 1)[0] + "/restored_" + secrets.token_hex(4)
    admin = h.env["PG_URL"].rsplit("/", 1)[0] + "/postgres"
    pg_query(admin, f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
    p = subprocess.run([pg[1], "--exit-on-error", "--no-owner", "-d", url, dump],
                       capture_output=True, text=True, timeout=120 * SLOW)
    assert p.returncode == 0, p.stderr
    events = {r[0] for r in pg_query(url, "SELECT id FROM webhook_event")}
    assert set(before) <= events
    open_events = {r[0] for r in pg_query(url, "SELECT webhook_event_id FROM webhook_delivery "
                                                "WHERE status IN ('pending', 'retrying')")}
    assert set(held) <= open_events

    h.stop()
    restored_at = time.time()
    h2 = hookd(PG_URL=url, HOOKD_NODE_ID=h.env["HOOKD_NODE_ID"])
    for eid in before:
        r = h2.api("GET", f"/api/webhook/v1/events/{eid}")
        assert r.status_code == 200, (eid, r.status_code, r.text)
        assert len(r.json()["deliveries"]) == 1
    eid = h2.ingest("bk.after")["id"]
    wait_until(lambda: any(g.headers["webhook-id"] == eid for g in receiver.received()), 30, 0.05,
               "a delivery from the restored hookd")
    delivered_by_copy(receiver, open_events - set(held), restored_at)
    resume_and_check_held(h2, receiver, held_wid, held, restored_at)
