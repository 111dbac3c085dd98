#!/usr/bin/python3
"""bench/backup_latency.py: what `hookd backup` costs the server it copies (issue 16, part 4).

Starts hookd on a fresh SQLite store, fills it with BATCHES x 250 events of ~3 KB (160 batches:
~166 MB, no webhook), then ingests single events in a loop from one client while, after 2 s,
`hookd backup` copies the store. Prints the backup's own line, and ingest latency (p50, p99,
max) in the 2 s before the backup and during it.

  bench/backup_latency.py [--build-dir build] [--batches 160] [--port 18931]
"""
import argparse
import json
import os
import subprocess
import tempfile
import threading
import time

import requests


def stats(xs):
    xs = sorted(x * 1000 for x in xs)
    if not xs:
        return "n=0"
    return (f"n={len(xs)} p50={xs[len(xs) // 2]:.1f}ms p99={xs[int(len(xs) * .99)]:.1f}ms "
            f"max={xs[-1]:.1f}ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--batches", type=int, default=160)
    ap.add_argument("--port", type=int, default=18931)
    a = ap.parse_args()
    binary = os.path.abspath(os.path.join(a.build_dir, "hookd"))
    d = tempfile.mkdtemp()
    key = "k_" + "a" * 30
    env = {"PATH": "/usr/bin:/bin", "HOOKD_DB": d + "/h.db", "PORT": str(a.port),
           "HOOKD_HOST": "127.0.0.1", "HOOKD_BOOTSTRAP_KEY": key, "HOOKD_BOOTSTRAP_ORG": "o",
           "HOOKD_LOG_LEVEL": "warn"}
    p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{a.port}/api/webhook"
    hdr = {"x-api-key": key, "content-type": "application/json"}
    s = requests.Session()
    try:
        for _ in range(200):
            try:
                if s.get(base + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        for b in range(a.batches):
            evs = [{"type": "t", "data": {"pad": "z" * 3000, "i": i}} for i in range(250)]
            r = s.post(base + "/v1/events/batch", headers=hdr, data=json.dumps({"events": evs}))
            assert r.status_code == 202, r.text
        lat, stop = [], threading.Event()

        def ingest():
            s2 = requests.Session()
            while not stop.is_set():
                t = time.monotonic()
                s2.post(base + "/v1/events", headers=hdr, data='{"type":"x","data":{}}')
                lat.append((t, time.monotonic() - t))

        th = threading.Thread(target=ingest)
        th.start()
        time.sleep(2)
        t0 = time.monotonic()
        out = subprocess.run([binary, "backup", d + "/copy.db"], env=env, capture_output=True,
                             text=True)
        t1 = time.monotonic()
        time.sleep(0.5)
        stop.set()
        th.join()
        print((out.stdout + out.stderr).strip())
        print("ingest before:", stats([x for t, x in lat if t0 - 2 <= t < t0]))
        print("ingest during:", stats([x for t, x in lat if t0 <= t < t1]))
    finally:
        p.terminate()
        p.wait()
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
