#!/usr/bin/python3
"""bench/redis_sweep.py: what the Redis sweeper costs (docs/REDIS.md, issue 5).

Builds a backlog of N pending deliveries (default 100,000) that stay due in the store: one
webhook limited to 1 attempt per minute, HOOKD_QUEUE_WINDOW=100, so the node holds 100 jobs in
memory and the rest wait, due, in the store's due index and in Redis's schedule. Then it lets
the periodic sweeper run (HOOKD_SWEEP_INTERVAL_MS, default 5000 here) and reports, per sweep:
the rows read, the store pages, the wall time (from hookd's `queue.swept` log line), hookd's
CPU (utime+stime of the process over several sweeps, minus the same process's idle CPU over an
equal time without sweeps) and Redis's CPU (used_cpu_user+sys of redis-server). Two cases:
every row already in Redis (the steady state), and every row missing (DEL of the schedule: the
state after a FLUSHALL or a restart without persistence).

  bench/redis_sweep.py [--rows 100000] [--build-dir build] [--interval-ms 5000] [--sweeps 6]
Prints one JSON line. Uses tests/lib/servers.py (RedisServer) and the integration suite's
Receiver and Hookd helpers.
"""
import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def redis_cpu_s(rs):
    info = rs.command("INFO", "cpu")
    vals = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(vals["used_cpu_user"]) + float(vals["used_cpu_sys"])


def sweeps(h, since):
    return [e for e in h.log_events() if e.get("event") == "queue.swept" and e["ts"] > since
            and e.get("why") == "interval"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--interval-ms", type=int, default=5000)
    ap.add_argument("--sweeps", type=int, default=6)
    a = ap.parse_args()
    os.environ["HOOKD_BIN"] = os.path.join(os.path.abspath(a.build_dir), "hookd")
    import conftest
    from servers import RedisServer

    rs = RedisServer().start()
    rec = conftest.Receiver()
    work = tempfile.mkdtemp(prefix="hookd-sweep-")
    prefix = "sweep:"
    h = conftest.Hookd(work, env={
        "REDIS_URL": rs.url(), "HOOKD_REDIS_PREFIX": prefix, "HOOKD_QUEUE_WINDOW": "100",
        "HOOKD_SWEEP_INTERVAL_MS": str(a.interval_ms), "HOOKD_LOG_LEVEL": "debug",
        "HOOKD_SQLITE_SYNC": "normal"})
    out = {"rows": a.rows, "interval_ms": a.interval_ms}
    try:
        h.start()
        h.create_webhook(rec.url(), rateLimitEnabled=True, maxRequestsPerMinute=1)
        t0 = time.time()
        for i in range(0, a.rows, 1000):
            n = min(1000, a.rows - i)
            r = h.api("POST", "/api/webhook/v1/events/batch",
                      {"events": [{"type": "sweep.x", "data": {"i": j}} for j in range(i, i + n)]},
                      timeout=120)
            assert r.status_code == 202, r.text
        out["ingest_s"] = round(time.time() - t0, 1)
        # wait until Redis holds the backlog (ingest adds what it did not lease)
        conftest.wait_until(lambda: rs.command("ZCARD", prefix + "due") >= a.rows - 200, 120,
                            0.5, "the backlog in Redis")
        time.sleep(2)

        def measure(label, prepare=None):
            # idle: no sweep for one interval (the lock is taken by "someone else")
            rs.command("SET", prefix + "sweep", "bench", "PX", str(a.interval_ms * 2))
            time.sleep(a.interval_ms / 1000 * 0.2)
            c0, t_0 = proc_cpu_s(h.proc.pid), time.monotonic()
            time.sleep(a.interval_ms / 1000)
            idle_per_s = (proc_cpu_s(h.proc.pid) - c0) / (time.monotonic() - t_0)
            rs.command("DEL", prefix + "sweep")
            since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
            c0, r0, t_0 = proc_cpu_s(h.proc.pid), redis_cpu_s(rs), time.monotonic()
            got = []
            for _ in range(a.sweeps):
                if prepare:
                    prepare()
                k = len(got) + 1
                conftest.wait_until(lambda: len(sweeps(h, since)) >= k, a.interval_ms / 1000 * 4,
                                    0.05, "a sweep")
                got = sweeps(h, since)
            dt = time.monotonic() - t_0
            cpu = proc_cpu_s(h.proc.pid) - c0 - idle_per_s * dt
            rcpu = redis_cpu_s(rs) - r0
            n = len(got)
            out[label] = {
                "sweeps": n,
                "rows_per_sweep": round(sum(e["rows"] for e in got) / n),
                "added_per_sweep": round(sum(e["added"] for e in got) / n),
                "pages_per_sweep": round(sum(e["pages"] for e in got) / n),
                "wall_ms_per_sweep": round(sum(e["ms"] for e in got) / n),
                "hookd_cpu_ms_per_sweep": round(cpu * 1000 / n, 1),
                "redis_cpu_ms_per_sweep": round(rcpu * 1000 / n, 1),
                "hookd_idle_cpu_ms_per_s": round(idle_per_s * 1000, 2),
            }

        measure("present")
        measure("missing", prepare=lambda: rs.command("DEL", prefix + "due"))
        out["ok"] = True
    finally:
        h.stop()
        rec.close()
        rs.cleanup()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
