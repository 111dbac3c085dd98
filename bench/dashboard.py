#!/usr/bin/python3
"""bench/dashboard.py: the dashboard's page weight and first meaningful render with 100,000
deliveries stored (issue 18; docs/DASHBOARD.md "Weight and speed").

Starts hookd (SQLite in a temp dir; HOOKD_BIN or build/hookd) and a receiver (a threaded Python
HTTP server on loopback: 200, or 500 for one webhook in ten so that the charts and lists show
failures too), creates --webhooks webhooks and ingests events in batches until --deliveries
deliveries are stored: the webhooks beyond the first --active are paused, so their deliveries
stay pending (the backlog the endpoints page counts, capped at 10,000), the active ones are
delivered before measuring. Then tests/browser/measure.mjs opens each page in headless Chromium
(a cold cache, then a reload) and this prints its JSON: per page the median render time, first
contentful paint and bytes transferred.

  bench/dashboard.py [--deliveries 100000] [--webhooks 20] [--active 2] [--runs 5]
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deliveries", type=int, default=100000)
    ap.add_argument("--webhooks", type=int, default=20)
    ap.add_argument("--active", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(1))  # stop hookd too (finally below)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *x):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            bad = self.path.endswith("/1")
            body = b'{"error":"down"}' if bad else b"ok"
            self.send_response(500 if bad else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    recv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    recv.daemon_threads = True
    threading.Thread(target=recv.serve_forever, daemon=True).start()
    rport = recv.server_address[1]

    tmp = tempfile.mkdtemp(prefix="hookd-dash-")
    port = free_port()
    key = "bench_" + secrets.token_hex(12)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOOKD_DB": os.path.join(tmp, "h.db"),
           "PORT": str(port), "HOOKD_HOST": "127.0.0.1", "HOOKD_BOOTSTRAP_KEY": key,
           "HOOKD_BOOTSTRAP_ORG": "org_bench", "HOOKD_ALLOW_NETWORKS": "127.0.0.0/8",
           "HOOKD_RETRY_SCHEDULE": "1s", "HOOKD_LOG_LEVEL": "warn"}
    binary = os.environ.get("HOOKD_BIN") or os.path.join(ROOT, "build", "hookd")
    log = open(os.path.join(tmp, "hookd.log"), "wb")
    proc = subprocess.Popen([binary, "serve"], env=env, cwd=tmp, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def call(method, path, body=None):
        req = urllib.request.Request(base + "/api/webhook" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"x-api-key": key, "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/api/webhook/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        hooks = []
        for i in range(a.webhooks):
            hooks.append(call("POST", "/v1", {
                "name": f"endpoint {i}", "url": f"http://127.0.0.1:{rport}/hook/{i}",
                "events": ["bench.*"], "rateLimitEnabled": False, "maxRetries": 1,
                "status": "active" if i < a.active else "paused"})["id"])
        events = -(-a.deliveries // a.webhooks)
        t0 = time.time()
        for n in range(0, events, 1000):
            batch = [{"type": f"bench.e{j % 5}", "data": {"n": j, "note": "x" * 64}}
                     for j in range(n, min(events, n + 1000))]
            call("POST", "/v1/events/batch", {"events": batch})
        ingest_s = time.time() - t0
        print(f"ingested {events * a.webhooks} deliveries in {ingest_s:.1f} s", file=sys.stderr)
        # the active webhooks' deliveries end (success, or failed after its retry)
        deadline = time.time() + 600
        while time.time() < deadline:
            rows = call("GET", "/v1/stats?limit=500")["data"]
            # (the failing one parks its backlog when hookd marks it failed)
            if all(r["backlog"] == 0 or r["status"] == "failed"
                   for r in rows if r["webhookId"] in hooks[:a.active]):
                break
            time.sleep(1)
        d = call("GET", f"/v1/deliveries?webhookId={hooks[1]}&status=failed&limit=1")["deliveries"]
        delivery = d[0]["id"] if d else call("GET", "/v1/deliveries?limit=1")["deliveries"][0]["id"]
        print("measuring", file=sys.stderr)
        m = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "measure.mjs")],
                           env=dict(os.environ, HOOKD_URL=base, HOOKD_KEY=key, RUNS=str(a.runs),
                                    DELIVERY_ID=delivery, WEBHOOK_ID=hooks[1]),
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
        if m.returncode != 0:
            raise SystemExit("measure.mjs failed:\n" + m.stdout + m.stderr)
        res = json.loads(m.stdout)
        res.update({"deliveriesStored": events * a.webhooks, "webhooks": a.webhooks,
                    "ingestSeconds": round(ingest_s, 1), "nproc": os.cpu_count()})
        print(json.dumps(res, indent=1))
    finally:
        proc.terminate()
        proc.wait(30)
        recv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
