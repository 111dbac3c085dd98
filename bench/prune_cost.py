#!/usr/bin/python3
"""bench/prune_cost.py: what one retention step costs at a small and at a large table (issue 16).

For each ROWS given: a fresh store (SQLite file in a temp dir, or a database on a private
PostgreSQL started with tests/lib/servers.py) is filled by bulk SQL with ROWS finished
deliveries, each with its event and one attempt, completed evenly over the last 60 days (so
half are older than HOOKD_RETENTION=30d); then `hookd serve` runs for --seconds with
HOOKD_LOG_LEVEL=debug and the `store.prune_step` lines give the time of each step (submission
to answer, HOOKD_PRUNE_BATCH deliveries). Prints one JSON line per size: fill time, size,
deliveries deleted, and step times (first 100 steps, last 100, all: mean, p50, p99, max in ms).

  bench/prune_cost.py --store sqlite 20000 1000000
  bench/prune_cost.py --store pg 20000 5000000 [--seconds 60] [--build-dir build]
"""
import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import shutil
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from servers import PG_BIN, PgServer, free_port  # noqa: E402

DAYS = 60

PG_FILL = """
INSERT INTO webhook_event (id, event, payload, source, organization_id, created_at)
 SELECT 'whev_' || lpad(g::text, 24, '0'), 'order.created',
        ('{{"order":12345,"pad":"' || repeat('x', 200) || '"}}')::json, 'api', 'org_bench',
        now() - interval '{d} days' + (g::float8 / {n}) * interval '{d} days'
 FROM generate_series(1, {n}) g;
INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, status, request_url,
  request_headers, response_status, response_body, response_headers, attempt_number, max_attempts,
  last_attempt_at, completed_at, duration_ms, created_at)
 SELECT 'whde_' || lpad(g::text, 24, '0'), 'wh_bench', 'whev_' || lpad(g::text, 24, '0'),
        'order.created', 'success', 'http://127.0.0.1/x', '{{"X-Delivery-Id":"x"}}'::json, 200,
        'ok', '{{"content-type":"text/plain"}}'::json, 1, 7, t, t, 5, t
 FROM (SELECT g, now() - interval '{d} days' + (g::float8 / {n}) * interval '{d} days'
                 + interval '1 second' AS t FROM generate_series(1, {n}) g) s;
INSERT INTO webhook_delivery_attempt (id, webhook_delivery_id, attempt_number, status,
  response_status, response_body, response_headers, duration_ms, created_at)
 SELECT 'whda_' || lpad(g::text, 24, '0'), 'whde_' || lpad(g::text, 24, '0'), 1, 'success', 200,
        'ok', '{{"content-type":"text/plain"}}'::json, 5,
        now() - interval '{d} days' + (g::float8 / {n}) * interval '{d} days'
 FROM generate_series(1, {n}) g;
"""

SQ_FILL = [
    """WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n})
 INSERT INTO webhook_event (id, event, payload, source, organization_id, created_at)
 SELECT printf('whev_%024d', i), 'order.created',
        '{{"order":12345,"pad":"' || hex(randomblob(100)) || '"}}', 'api', 'org_bench', {ts} FROM g""",
    """WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n})
 INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, status, request_url,
  request_headers, response_status, response_body, attempt_number, max_attempts, last_attempt_at,
  completed_at, duration_ms, created_at)
 SELECT printf('whde_%024d', i), 'wh_bench', printf('whev_%024d', i), 'order.created', 'success',
        'http://127.0.0.1/x', '{{"X-Delivery-Id":"x"}}', 200, 'ok', 1, 7, {ts} + 1000,
        {ts} + 1000, 5, {ts} FROM g""",
    """WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n})
 INSERT INTO webhook_delivery_attempt (id, webhook_delivery_id, attempt_number, status,
  response_status, response_body, duration_ms, created_at)
 SELECT printf('whda_%024d', i), printf('whde_%024d', i), 1, 'success', 200, 'ok', 5,
        {ts} + 1000 FROM g""",
]


def psql(url, query):
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                        "-d", url, "-c", query], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(p.stderr)
    return p.stdout.strip()


def stat(xs):
    if not xs:
        return {}
    s = sorted(xs)
    return dict(steps=len(xs), mean=round(statistics.mean(xs), 1), p50=statistics.median(xs),
                p99=s[max(0, int(len(s) * 0.99) - 1)], max=s[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=int, nargs="+")
    ap.add_argument("--store", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    hookd = os.path.join(args.build_dir, "hookd")
    work = tempfile.mkdtemp(prefix="hookd-prune-cost-")
    pg = None
    if args.store == "pg":
        pg = PgServer()
        pg.start()
    try:
        for n in args.rows:
            env = dict(PATH=os.environ["PATH"], HOOKD_LOG_FORMAT="json", HOOKD_LOG_LEVEL="debug")
            if pg:
                env["PG_URL"] = url = pg.new_database()
            else:
                env["HOOKD_DB"] = db = os.path.join(work, f"hookd-{n}.db")
            subprocess.run([hookd, "migrate"], env=env, check=True, capture_output=True)
            t = time.time()
            if pg:
                psql(url, PG_FILL.format(n=n, d=DAYS))
                for tb in ("webhook_event", "webhook_delivery", "webhook_delivery_attempt"):
                    psql(url, f"VACUUM ANALYZE {tb}")
                size = psql(url, "SELECT pg_total_relation_size('webhook_delivery') + "
                                 "pg_total_relation_size('webhook_event') + "
                                 "pg_total_relation_size('webhook_delivery_attempt')")
            else:
                c = sqlite3.connect(db)
                now, span = int(time.time() * 1000), DAYS * 86400000
                for q in SQ_FILL:
                    c.execute(q.format(n=n, ts=f"({now} - {span} + i * ({span} / {n}))"))
                c.commit()
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                c.close()
                size = os.path.getsize(db)
            fill = time.time() - t
            env.update(PORT=str(free_port()), HOOKD_HOST="127.0.0.1",
                       HOOKD_BOOTSTRAP_KEY="k" * 20, HOOKD_RETENTION="30d",
                       HOOKD_PRUNE_INTERVAL_MS="1000")
            log = os.path.join(work, f"hookd-{n}.log")
            with open(log, "w") as lf:
                p = subprocess.Popen([hookd, "serve"], env=env, stdout=lf, stderr=subprocess.STDOUT)
                time.sleep(args.seconds)
                p.terminate()
                p.wait()
            steps = [json.loads(line) for line in open(log) if '"store.prune_step"' in line]
            ms = [s["ms"] for s in steps if s["deliveries"] > 0]
            print(json.dumps(dict(store=args.store, rows=n, fill_s=round(fill, 1),
                                  mb=round(int(size) / 1e6),
                                  deleted=sum(s["deliveries"] for s in steps),
                                  first100=stat(ms[:100]), last100=stat(ms[-100:]), all=stat(ms))),
                  flush=True)
    finally:
        if pg:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
