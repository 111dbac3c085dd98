#!/usr/bin/python3
"""nats_bench.py: NATS ingest throughput of hookd, core and JetStream, in one run.

Starts a nats-server -js on a free loopback port, then for each mode a fresh hookd (SQLite in a
temp dir, no webhooks, so what is measured is bus message -> stored event):
  core       publishes COUNT messages on tracking.bench as fast as one cnats connection can, and
             times from the first publish until hookd_events_ingested_total{source="nats"}
             reaches COUNT (messages lost to slow-consumer drops would show in the drops).
  jetstream  loads COUNT messages into stream BENCH while hookd is stopped, starts hookd with
             HOOKD_NATS_STREAM=BENCH, and times from the process start (start-up included)
             until all are stored and acked (the consumer's ack floor reaches COUNT).
Prints one JSON line per mode: {"mode","events","seconds","events_per_s","dropped",...}.

    /usr/bin/python3 tests/tools/nats_bench.py --hookd build/hookd [--count 50000]
        [--orgs 1] [--sync normal|full]
The publisher is nats_pub from the same build directory as hookd.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import requests


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(pred, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    sys.exit(f"nats_bench: timed out waiting for {what}")


def metric(base, name):
    try:
        text = requests.get(base + "/metrics", timeout=5).text
    except requests.RequestException:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


class Hookd:
    def __init__(self, binary, workdir, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        os.makedirs(workdir, exist_ok=True)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir,
                    "HOOKD_DB": os.path.join(workdir, "hookd.db"), "PORT": str(self.port),
                    "HOOKD_HOST": "127.0.0.1", "HOOKD_BOOTSTRAP_KEY": "bench_" + "k" * 20,
                    "HOOKD_BOOTSTRAP_ORG": "org_bench", "HOOKD_LOG_LEVEL": "warn"}
        self.env.update(env)
        self.log = open(os.path.join(workdir, "hookd.log"), "ab")
        self.proc = subprocess.Popen([binary, "serve"], env=self.env, cwd=workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def healthy(self):
        try:
            return requests.get(self.base + "/api/webhook/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def messages(count, orgs, tag):
    out = []
    for i in range(count):
        org = f"org_bench{i % orgs}" if orgs > 1 else "org_bench"
        out.append(f'tracking.bench {{"organizationId":"{org}","type":"bench.{tag}",'
                   f'"data":{{"n":{i},"email":"user{i}@example.com","campaign":"c-42"}}}}\n')
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hookd", default="build/hookd")
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--orgs", type=int, default=1, help="organizations the messages spread over")
    ap.add_argument("--sync", default="full", help="HOOKD_SQLITE_SYNC (hookd's default: full)")
    args = ap.parse_args()
    binary = os.path.abspath(args.hookd)
    pub = os.path.join(os.path.dirname(binary), "nats_pub")
    server = shutil.which("nats-server")
    if not server or not os.path.exists(pub):
        sys.exit("nats_bench: needs nats-server and nats_pub next to hookd")
    tmp = tempfile.mkdtemp(prefix="nats_bench_")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    nlog = open(os.path.join(tmp, "nats.log"), "ab")
    nats = subprocess.Popen([server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                             os.path.join(tmp, "js")], stdout=nlog, stderr=subprocess.STDOUT)
    results = []
    try:
        wait(lambda: "Server is ready" in open(os.path.join(tmp, "nats.log")).read(), 10,
             "nats-server")
        base_env = {"NATS_URL": url, "HOOKD_NATS_SUBJECTS": "tracking.*",
                    "HOOKD_SQLITE_SYNC": args.sync}
        n = args.count

        # core: publish as fast as possible, time until everything is stored
        h = Hookd(binary, os.path.join(tmp, "core"), base_env)
        wait(h.healthy, 20, "hookd (core)")
        data = messages(n, args.orgs, "core")
        t0 = time.monotonic()
        p = subprocess.run([pub, "-s", url, "pub"], input=data, capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stderr)
        t_pub = time.monotonic() - t0
        name = 'hookd_events_ingested_total{source="nats"}'
        wait(lambda: metric(h.base, name) + metric(h.base, "hookd_nats_dropped_total") >= n,
             600, "core ingest")
        secs = time.monotonic() - t0
        results.append({"mode": "core", "events": int(metric(h.base, name)), "seconds":
                        round(secs, 3), "events_per_s": round(metric(h.base, name) / secs),
                        "publish_seconds": round(t_pub, 3),
                        "dropped": int(metric(h.base, "hookd_nats_dropped_total"))})
        h.stop()

        # JetStream: a backlog loaded while hookd is stopped, drained after start
        p = subprocess.run([pub, "-s", url, "stream-add", "BENCH", "tracking.*"],
                           capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stderr)
        p = subprocess.run([pub, "-s", url, "pub", "--js-async"],
                           input=messages(n, args.orgs, "js"), capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stderr)
        t0 = time.monotonic()  # from the process start: start-up time counts against it
        h = Hookd(binary, os.path.join(tmp, "js"), dict(base_env, HOOKD_NATS_STREAM="BENCH"))

        def acked():
            out = subprocess.run([pub, "-s", url, "consumer-info", "BENCH", "hookd"],
                                 capture_output=True, text=True).stdout
            return out and json.loads(out)["ack_floor"] >= n
        wait(lambda: metric(h.base, name) + metric(h.base, "hookd_nats_dropped_total") >= n,
             600, "jetstream ingest")
        t_stored = time.monotonic() - t0
        wait(acked, 60, "acks")
        secs = time.monotonic() - t0
        results.append({"mode": "jetstream", "events": int(metric(h.base, name)), "seconds":
                        round(secs, 3), "events_per_s": round(metric(h.base, name) / secs),
                        "stored_seconds": round(t_stored, 3),
                        "dropped": int(metric(h.base, "hookd_nats_dropped_total"))})
        h.stop()
    finally:
        nats.terminate()
        nats.wait(20)
    for r in results:
        r.update({"orgs": args.orgs, "sqlite_sync": args.sync, "cpus": os.cpu_count()})
        print(json.dumps(r))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
