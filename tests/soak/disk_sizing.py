#!/usr/bin/python3
"""tests/soak/disk_sizing.py: bytes of store per delivery, measured (docs/OPERATIONS.md, "Disk
sizing").

For each number of attempts asked (--attempts 1,3): a fresh hookd and store with one webhook,
the size of the empty store, then --events events (a delivery body of ~330 bytes: --pad 200,
as bench/run.py) ingested in batches of 100 and delivered, every delivery succeeding at its
last attempt (the receiver answers 500 to the attempts before it), then the size again:
(after - before) / events is the store's cost of one event with its delivery and attempts.

  SQLite      the size of hookd.db after hookd stopped (its -wal file checkpointed into it)
  PostgreSQL  pg_total_relation_size of hookd's tables (with indexes and TOAST: what
              hookd_store_bytes reports), as written: updated rows' old versions (dead tuples)
              are counted until VACUUM lets new rows reuse their space

  tests/soak/disk_sizing.py [--store sqlite|pg] [--events 10000] [--attempts 1,3] [--pad 200]
                            [--build-dir build]
Prints one JSON line per measurement on stdout.
"""
import argparse
import importlib.util
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
_spec = importlib.util.spec_from_file_location("hookd_bench", os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # bench/run.py: Hookd, request
from servers import PgServer, pg_query  # noqa: E402

PG_BYTES = ("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN "
            "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
            "n.nspname = current_schema()")


def log(msg):
    print(f"sizing: {msg}", file=sys.stderr, flush=True)


class FailFirst:
    """A receiver answering 500 to the first `fail` attempts of each delivery (told apart by
    webhook-id: one delivery per event here), then 200."""

    def __init__(self, fail):
        self.fail, self.seen, self.ok = fail, {}, 0
        self.lock = threading.Lock()
        rcv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                wid = self.headers.get("webhook-id", "")
                with rcv.lock:
                    n = rcv.seen.get(wid, 0) + 1
                    rcv.seen[wid] = n
                    ok = n > rcv.fail
                    rcv.ok += ok
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def store_bytes(node, pg_url):
    if pg_url:
        return int(pg_query(pg_url, PG_BYTES)[0][0])
    db = node.env["HOOKD_DB"]
    con = sqlite3.connect(db)  # hookd has stopped: fold a -wal file left behind into the db
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


def measure(args, attempts, work, pg_url):
    env = {"HOOKD_RETRY_SCHEDULE": ",".join(["100ms"] * max(1, attempts - 1)),
           "HOOKD_RETRY_JITTER": "0", "HOOKD_LOG_LEVEL": "warn", "HOOKD_NODE_ID": "sizing"}
    if pg_url:
        env["PG_URL"] = pg_url
    rcv = FailFirst(attempts - 1)
    node = bench.Hookd(args.hookd_bin, os.path.join(work, "a"), env)
    try:
        node.wait_healthy()
        node.api("POST", "/v1", {"name": "sizing", "url": f"http://127.0.0.1:{rcv.port}/hook",
                                 "events": ["*"], "rateLimitEnabled": False,
                                 "maxRetries": attempts})
        node.stop()  # SQLite: checkpointed, the -wal file gone
        before = store_bytes(node, pg_url)
        node = bench.Hookd(args.hookd_bin, os.path.join(work, "a"), env)
        node.wait_healthy()
        t0 = time.monotonic()
        for b in range(0, args.events, 100):
            n = min(100, args.events - b)
            node.api("POST", "/v1/events/batch",
                     {"events": [{"type": "sizing.event", "data": {"seq": b + i, "pad": "x" * args.pad}}
                                 for i in range(n)]})
        while rcv.ok < args.events:
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"sizing: only {rcv.ok} of {args.events} delivered in 600 s")
            time.sleep(0.2)
        time.sleep(1.5)  # the last results batch is written
        attempts_seen = sum(rcv.seen.values())
        node.stop()
        after = store_bytes(node, pg_url)
    finally:
        node.stop()
        rcv.close()
    return {"store": "pg" if pg_url else "sqlite", "events": args.events,
            "attempts_per_delivery": attempts, "attempts_received": attempts_seen,
            "pad": args.pad, "bytes_before": before, "bytes_after": after,
            "bytes_per_delivery": round((after - before) / args.events)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--attempts", default="1,3")
    ap.add_argument("--pad", type=int, default=200)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args(argv)
    args.hookd_bin = os.path.join(os.path.abspath(args.build_dir), "hookd")
    work = tempfile.mkdtemp(prefix="hookd-sizing-")
    pg = None
    try:
        if args.store == "pg":
            pg = PgServer()
            pg.start()
        for i, a in enumerate(int(x) for x in args.attempts.split(",")):
            url = pg.new_database("sizing") if pg else None
            res = measure(args, a, os.path.join(work, f"m{i}"), url)
            print(json.dumps(res), flush=True)
            log(f"{res['store']}: {res['bytes_per_delivery']} bytes per delivery with {a} "
                f"attempt(s) ({res['events']} events, {res['bytes_before']} -> "
                f"{res['bytes_after']} bytes)")
    finally:
        if pg:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
