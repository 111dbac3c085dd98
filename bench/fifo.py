#!/usr/bin/python3
"""bench/fifo.py: a FIFO webhook's throughput against a parallel one, in the same run.

Starts hookd (SQLite in a temp dir, or --store pg: a private PostgreSQL; the local queue, or
--redis: a private Redis as REDIS_URL; both from tests/lib/servers.py; HOOKD_BIN or
build/hookd) and a receiver
(a threaded Python HTTP server on loopback answering 200 after --latency-ms), creates two
webhooks on it, one `ordering: "parallel"` and one `"fifo"`, ingests --events events for each
(batches of 100, the two types interleaved), and reports one JSON line: for each webhook the
deliveries/s from the first ingest to its last delivery, and for the FIFO one whether its
arrivals were in ingest order with never two attempts at once.

  bench/fifo.py [--events 2000] [--latency-ms 0] [--store sqlite|pg] [--redis]
                [--hookd-env NAME=VALUE ...]
"""
import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import servers  # noqa: E402  (tests/lib: PgServer, RedisServer)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--redis", action="store_true", help="with REDIS_URL (a private Redis)")
    ap.add_argument("--hookd-env", action="append", default=[], metavar="NAME=VALUE")
    a = ap.parse_args()
    backends, extra = [], {}
    try:
        if a.store == "pg":
            backends.append(servers.PgServer())
            backends[-1].start()
            extra["PG_URL"] = backends[-1].new_database("bench")
        if a.redis:
            backends.append(servers.RedisServer())
            backends[-1].start()
            extra["REDIS_URL"] = backends[-1].url()
        return run(a, extra)
    finally:
        for b in backends:
            b.cleanup()


def run(a, extra):

    lock = threading.Lock()
    seen = {"/par": [], "/fifo": []}
    last = {"/par": 0.0, "/fifo": 0.0}
    state = {"inflight": 0, "overlaps": 0}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *x):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            fifo = self.path == "/fifo"
            with lock:
                if fifo:
                    state["inflight"] += 1
                    state["overlaps"] += state["inflight"] > 1
            if a.latency_ms:
                time.sleep(a.latency_ms / 1000)
            with lock:
                if fifo:
                    state["inflight"] -= 1
                seen[self.path].append(json.loads(body)["data"]["seq"])
                last[self.path] = time.monotonic()
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    rport = srv.server_address[1]

    work = tempfile.mkdtemp(prefix="hookd-fifo-bench-")
    port, key = free_port(), "bench_" + secrets.token_hex(12)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work,
           "HOOKD_DB": os.path.join(work, "hookd.db"), "PORT": str(port),
           "HOOKD_HOST": "127.0.0.1", "HOOKD_BOOTSTRAP_KEY": key, "HOOKD_BOOTSTRAP_ORG": "org_b",
           "HOOKD_ALLOW_NETWORKS": "127.0.0.0/8", "HOOKD_LOG_LEVEL": "warn"}
    env.update(extra)
    env.update(kv.split("=", 1) for kv in a.hookd_env)
    binary = os.environ.get("HOOKD_BIN") or os.path.join(ROOT, "build", "hookd")
    log = open(os.path.join(work, "hookd.log"), "ab")
    proc = subprocess.Popen([binary, "serve"], env=env, cwd=work, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}/api/webhook"

    def call(method, path, body):
        req = urllib.request.Request(base + path, json.dumps(body).encode(), method=method,
                                     headers={"Authorization": "Bearer " + key,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        for path, ordering in (("/par", "parallel"), ("/fifo", "fifo")):
            call("POST", "/v1", {"name": ordering, "url": f"http://127.0.0.1:{rport}{path}",
                                 "events": [ordering + ".*"], "ordering": ordering,
                                 "rateLimitEnabled": False})
        t0 = time.monotonic()
        for off in range(0, a.events, 50):
            n = min(50, a.events - off)
            evs = []
            for k in range(n):
                evs.append({"type": "parallel.ev", "data": {"seq": off + k}})
                evs.append({"type": "fifo.ev", "data": {"seq": off + k}})
            call("POST", "/v1/events/batch", {"events": evs})
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with lock:
                if len(set(seen["/par"])) >= a.events and len(set(seen["/fifo"])) >= a.events:
                    break
            time.sleep(0.02)
        with lock:
            out = {"scenario": "fifo", "events": a.events, "latency_ms": a.latency_ms,
                   "store": a.store, "redis": a.redis,
                   "parallel_per_s": round(a.events / (last["/par"] - t0), 1),
                   "fifo_per_s": round(a.events / (last["/fifo"] - t0), 1),
                   "fifo_in_order": seen["/fifo"] == list(range(a.events)),
                   "fifo_overlaps": state["overlaps"],
                   "ok": len(set(seen["/fifo"])) >= a.events and len(set(seen["/par"])) >= a.events}
        print(json.dumps(out))
        return 0 if out["ok"] and out["fifo_in_order"] and not out["fifo_overlaps"] else 1
    finally:
        proc.terminate()
        proc.wait(30)
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
