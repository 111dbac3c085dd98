#!/usr/bin/python3
"""bench/run.py: hookd's benchmark, one subcommand per scenario of issue 7, one JSON line each.

Every run first measures the machine's ceiling: wrk POSTs to the same receiver the same request
that hookd will send (headers and body of the same size, taken from sign-test-event), with
hookd started but idle. Then the scenario runs against a fresh hookd (temp dir, fresh store),
and the line reports hookd's deliveries/s as a ratio of that ceiling.

  a  2,000 events x 10 webhooks            b  20,000 events x 1 webhook
     (both ingested in batches of 100 on 16 connections as fast as hookd takes them, while
     hookd delivers: --batch 0 --conns N sends one event per request instead)
  c  1,000 events/s for 30 s, one event per request, 1 webhook: end-to-end latency
  d  ingest only, POST /v1/events/batch (100 events a request, 8 connections), no webhook:
     events/s stored
  e  a backlog of 1,000,000 pending deliveries (ingested while the webhook is paused and the
     receiver is down), then the receiver comes up and the webhook is set active: drain rate
  f  the receiver answers 500 for 60 s, then 200: time to drain once it is back
  k  lists at scale: a store filled directly with SQL (hookd stopped) with 10,000,000 finished
     deliveries of one webhook (an event and an attempt each; 5% failed, 1% of the events of a
     rare type), then hookd serves it: latency p50/p99/max of the first page and of later
     pages (cursors at random depths, and a walk following `next`) of the deliveries and the
     events lists, with and without their filters (--requests per kind, --limit rows a page);
     not part of `all`
  g  slow endpoints (issue 21): 1,000 webhooks on their own loopback addresses answering after
     200 ms (1% after 2 s, 0.2% never: timeoutMs 3 s), HOOKD_MAX_INFLIGHT=10000: steady
     deliveries/s against min(in-flight limit / mean latency, scenario b of the same run); then
     RSS per attempt in flight with 10,000 hanging attempts held
  h  HTTPS (issue 21): keep-alive deliveries/s against wrk over TLS to the same receiver (a CA
     made with openssl, HOOKD_CA_FILE); a closing endpoint with session resumption against
     HOOKD_TLS_SESSION_CACHE=0
  i  10 matching webhooks among 9,990 that do not match (exact and wildcard patterns) against
     the same 10 alone: ingest events/s, deliveries/s, RSS per webhook (issue 21)
  j  the same deliveries to 10,000 endpoints on distinct loopback addresses against 10:
     deliveries/s and connections opened per delivery (issue 21); HOOKD_MAX_IDLE_CONNECTIONS
     set to the endpoints (--hookd-env overrides it)
  smoke   tiny a, b, d, g, h, i, j: checks the counts (the ctest test bench.smoke), no timing
  machine the machine's figures (CPUs, model, RAM, kernel, fdatasync latency) as one line
  table   reads result lines on stdin, prints them as the Markdown table of BENCHMARKS.md
  all     every scenario on every store/queue/node combination (or those chosen by options)

  bench/run.py b [--scale 0.1] [--store sqlite|pg] [--nodes 1|2] [--redis] [--build-dir DIR]
                 [--hookd-env NAME=VALUE ...] [--perf perf.data] [--keep]
                 [--system hookd|reference]

--system reference runs the scenario on the reference stack instead of hookd: the seed
tutorial's design (bench/reference/: Express + Bull + Redis + PostgreSQL, worker concurrency 50,
keep-alive), always on a private PostgreSQL and Redis; `table` then adds hookd's figures as
multiples of the reference's (docs/BENCHMARKS.md, "The reference stack").

Figures: deliveries (distinct X-Delivery-Id answered 200, counted by bench/receiver), duplicates,
deliveries_per_s (deliveries / first event sent -> last delivery arrived; e: from activation;
f: from the end of the outage), ingest_events_per_s (bench/loadgen), end-to-end latency (event
due to be sent -> delivery arrived) p50/p99/max ms, peak RSS (VmHWM), CPU seconds of hookd
(utime+stime over the measured phase) per 1,000 deliveries (per 1,000 events in d). A line
with "ok": false lists what failed in "errors"; the exit code is then 1.
Docs: docs/BENCHMARKS.md.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import servers  # noqa: E402  (tests/lib: PgServer, RedisServer, free_port)
from servers import free_port  # noqa: E402
KEY = "bench_" + "k" * 26
ORG = "org_bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Scenario defaults (counts are multiplied by --scale).
SCENARIOS = {
    "a": dict(events=2000, webhooks=10, batch=100, conns=16),
    "b": dict(events=20000, webhooks=1, batch=100, conns=16),
    "c": dict(rate=1000, seconds=30, webhooks=1, conns=32),
    "d": dict(events=200000, webhooks=0, batch=100, conns=8),
    "e": dict(events=1000000, webhooks=1, batch=500, conns=2),
    "f": dict(events=20000, webhooks=1, batch=100, conns=2, down_s=60,
              retry="1s,5s,10s", jitter=0.2),
    "k": dict(events=10000000, webhooks=1),
}
SMOKE = {
    "a": dict(events=60, webhooks=10, conns=4),
    "b": dict(events=300, webhooks=1, batch=20, conns=2),
    "d": dict(events=2000, webhooks=0, batch=100, conns=2),
}
# the order `all` runs them in; d does not touch the queue, so it runs without Redis only
ORDER = ["a", "b", "c", "d", "e", "f"]
COMBOS = [("sqlite", 1, False), ("sqlite", 1, True), ("pg", 1, False), ("pg", 1, True),
          ("pg", 2, False), ("pg", 2, True)]
PAD = 200  # bytes of padding in each event's data: a delivery body of ~330 bytes


class BenchError(Exception):
    """A run cannot go on (a tool missing, a backend not ready, a process that died)."""


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def now_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def machine_cpu():
    """(busy, total) jiffies of all CPUs from /proc/stat; busy leaves out idle, iowait and
    nice (niced background work yields to the bench, so it does not make the machine busy)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - v[1] - v[3] - v[4], total


def tree_cpu_s(root):
    """utime + stime seconds of process root and its live children (a PostgreSQL postmaster
    and its backends)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(d) == root or int(rest[1]) == root:
            total += (int(rest[11]) + int(rest[12])) / CLK_TCK
    return total


def proc_cpu_s(pid):
    """utime + stime seconds of process pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rpartition(")")[2].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def machine_info():
    """The machine a result line was measured on, as a dict."""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    # fdatasync of one 4 KiB page in the temp dir, where the stores live
    fd, path = tempfile.mkstemp(prefix="hookd-bench-fsync-")
    lat = []
    try:
        for i in range(200):
            os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return {"nproc": os.cpu_count(), "cpu_model": model, "ram_gb": round(mem_kb / 2**20, 1),
            "kernel": os.uname().release, "fdatasync_4k_p50_ms": round(lat[100], 3),
            "fdatasync_4k_p99_ms": round(lat[198], 3),
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(
                "\n")[0].strip()}


def request(port, method, path, body=None, headers=None, timeout=60):
    """One HTTP request to 127.0.0.1:port; returns (status, parsed JSON or raw bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = dict(headers or {})
        if data is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, raw


# ---- processes -----------------------------------------------------------------------------

class Receiver:
    """bench/receiver on 127.0.0.1 (port 0 = any free one)."""

    def __init__(self, binary, workdir, port=0):
        self.log_path = os.path.join(workdir, f"receiver-{time.monotonic_ns()}.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "--port", str(port)], stdout=subprocess.PIPE,
                                     stderr=self.logf)
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"receiver did not start: {open(self.log_path).read()}")
        self.port = json.loads(line)["port"]

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        status, body = request(self.port, "GET", path)
        if status != 200:
            raise BenchError(f"receiver {path}: {status}")
        return body

    def count(self):
        return self.get("/count")

    def stats(self):
        return self.get("/stats")

    def reset(self):
        self.get("/reset")

    def fail_for(self, ms, status=500):
        return self.get(f"/fail?ms={int(ms)}&status={status}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.logf.close()


class Hookd:
    """One hookd process with its own port and work dir; store settings come in env."""

    def __init__(self, binary, workdir, env):
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            "HOOKD_DB": os.path.join(workdir, "hookd.db"),
            "PORT": str(self.port),
            "HOOKD_HOST": "127.0.0.1",
            "HOOKD_BOOTSTRAP_KEY": KEY,
            "HOOKD_BOOTSTRAP_ORG": ORG,
            "HOOKD_ALLOW_NETWORKS": "127.0.0.0/8",
            "HOOKD_LOG_LEVEL": "warn",
            # the load generator opens at most a few dozen connections; the default 16,384
            # would leave a 20,000-descriptor limit too few for the idle connections hookd
            # keeps to endpoints (it lowers HOOKD_MAX_IDLE_CONNECTIONS to fit: docs/CONFIG.md)
            "HOOKD_MAX_CONNECTIONS": "1024",
        }
        self.env.update(env)
        self.log_path = os.path.join(workdir, "hookd.log")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "serve"], env=self.env, cwd=workdir,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_healthy(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"hookd exited with {self.proc.returncode} at start-up: "
                                 f"{self.log_tail().strip()}")
            try:
                status, body = request(self.port, "GET", "/api/webhook/health", timeout=2)
                if status == 200:
                    return body
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"hookd not healthy after {timeout}s: {self.log_tail()}")

    def api(self, method, path, body=None, ok=(200, 201, 202)):
        status, resp = request(self.port, method, "/api/webhook" + path, body,
                               {"x-api-key": KEY})
        if status not in ok:
            raise BenchError(f"{method} {path}: {status} {resp!r}"[:500])
        return resp

    def alive(self):
        return self.proc.poll() is None

    def cpu_s(self):
        """utime + stime of the process so far, in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK

    def thread_cpu_s(self):
        """{tid: utime + stime seconds} of every thread (the event loop's tid is the pid)."""
        out = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                    rest = f.read().rpartition(")")[2].split()
                out[int(tid)] = (int(rest[11]) + int(rest[12])) / CLK_TCK
            except OSError:
                pass
        return out

    def rss_hwm_mb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        """SIGTERM (SIGKILL after 60 s); returns the exit code. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode


class Reference:
    """The reference stack (bench/reference/: the seed tutorial's Node + Express + Bull + Redis +
    PostgreSQL design, tuned fairly) as a system under test: server.js (the API) and worker.js
    (the Bull worker, concurrency 50, keep-alive), two node processes on pg_url and redis_url.
    It has Hookd's interface (port, pid, env, api, wait_healthy, alive, cpu_s, thread_cpu_s,
    rss_hwm_mb, stop, log_tail), so a scenario measures either the same way; CPU and peak RSS
    add up both processes (Redis and PostgreSQL are reported apart, as for hookd)."""

    DELIVERIES = "deliveries"  # its deliveries table (store_success)
    DIR = os.path.join(ROOT, "bench", "reference")

    def __init__(self, workdir, pg_url, redis_url, env=None):
        os.makedirs(workdir, exist_ok=True)
        node = shutil.which("node") or "/usr/bin/node"
        if not os.path.isdir(os.path.join(ROOT, "node_modules", "bull")):
            raise BenchError("the reference stack's npm packages are missing: npm ci at the "
                             "repository root (scripts/setup.sh does it)")
        self.workdir = workdir
        self.port = free_port()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir,
                    "PORT": str(self.port), "PG_URL": pg_url, "REDIS_URL": redis_url,
                    "REF_API_KEY": KEY, "NODE_ENV": "production"}
        self.env.update(env or {})
        self.log_path = os.path.join(workdir, "reference.log")
        self.logf = open(self.log_path, "ab")
        self.procs = []

        def spawn(script, extra):
            e = dict(self.env)
            e.update(extra)
            self.procs.append(subprocess.Popen([node, os.path.join(self.DIR, script)], env=e,
                                               cwd=workdir, stdout=self.logf,
                                               stderr=subprocess.STDOUT))
        spawn("server.js", {"REF_PG_POOL": self.env.get("REF_SERVER_PG_POOL", "20")})
        self.proc, self.pid = self.procs[0], self.procs[0].pid
        try:
            self.wait_healthy()  # the server creates the schema before it listens
            spawn("worker.js", {"REF_PG_POOL": self.env.get("REF_WORKER_PG_POOL", "50")})
        except BaseException:
            self.stop()
            raise

    def pids(self):
        return [p.pid for p in self.procs]

    log_tail = Hookd.log_tail
    api = Hookd.api

    def wait_healthy(self, timeout=60):
        """Waits for the server's health answer; a node process that exits fails it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"the reference stack exited at start-up: {self.log_tail()}")
            try:
                if request(self.port, "GET", "/api/webhook/health", timeout=2)[0] == 200:
                    return {"backend": "reference"}
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"the reference stack is not healthy after {timeout}s: "
                         f"{self.log_tail()}")

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def _stat(self, path):
        with open(path) as f:
            rest = f.read().rpartition(")")[2].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK

    def cpu_s(self):
        """utime + stime of both node processes so far, in seconds."""
        return sum(self._stat(f"/proc/{pid}/stat") for pid in self.pids())

    def thread_cpu_s(self):
        """{tid: CPU seconds} of every thread of both processes (tids of the pid: their loops)."""
        out = {}
        for pid in self.pids():
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    out[int(tid)] = self._stat(f"/proc/{pid}/task/{tid}/stat")
                except OSError:
                    pass
        return out

    def rss_hwm_mb(self):
        """The sum of both processes' peak RSS (VmHWM), MB."""
        total = 0
        for pid in self.pids():
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        return total / 1024

    def stop(self):
        """SIGTERM to the worker then the server (SIGKILL after 30 s); returns the first
        non-zero exit code, else 0. Safe to call twice."""
        rc = 0
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            rc = rc or p.returncode
        if not self.logf.closed:
            self.logf.close()
        return rc


# ---- backends ------------------------------------------------------------------------------

def start_server(kind):
    """Starts a PgServer (a private cluster; a fresh database for this run) or a RedisServer from
    tests/lib/servers.py; returns (server, url). Errors become a BenchError naming the part."""
    try:
        srv = getattr(servers, kind)()
        srv.start()
        url = srv.new_database("bench") if kind == "PgServer" else srv.url()
    except Exception as e:
        raise BenchError(f"cannot start {kind} from tests/lib/servers.py: {e!r}")
    return srv, url


def stop_server(srv):
    """Stops a server of start_server and removes its files."""
    srv.cleanup()


def redis_clients(srv):
    """Number of clients connected to the RedisServer srv, not counting this question."""
    m = re.search(r"connected_clients:(\d+)", srv.command("INFO", "clients"))
    return int(m.group(1)) - 1 if m else 0


def store_count(node, query):
    """The one integer a SELECT gives, read from node's store (SQLite file or PG_URL)."""
    if node.env.get("PG_URL"):
        return int(servers.pg_query(node.env["PG_URL"], query)[0][0])
    db = sqlite3.connect(f"file:{node.env['HOOKD_DB']}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute(query).fetchone()[0])
    finally:
        db.close()


# ---- the parts of a run ---------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build_dir)
        self.hookd_bin = os.path.join(self.build, "hookd")
        self.receiver_bin = os.path.join(self.build, "bench", "receiver")
        self.loadgen_bin = os.path.join(self.build, "bench", "loadgen")
        for b in (self.hookd_bin, self.receiver_bin, self.loadgen_bin):
            if not os.access(b, os.X_OK):
                raise BenchError(f"{b} is missing: build {self.build} first")
        if not shutil.which("wrk"):
            raise BenchError("wrk is not installed (apt-get install wrk)")
        self.build_type = ""
        try:
            with open(os.path.join(self.build, "CMakeCache.txt")) as f:
                m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
                self.build_type = m.group(1) if m else ""
        except OSError:
            pass
        try:
            rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True).stdout.strip()
            self.commit = rev + ("+dirty" if dirty else "")
        except OSError:
            self.commit = ""

    # -- hookd nodes and backends
    def start_nodes(self, work, store, nodes, redis, env):
        """Starts the backends and `nodes` hookd processes; returns (nodes, servers)."""
        servers = []
        base = {}
        if store == "pg":
            srv, url = start_server("PgServer")
            servers.append(srv)
            base["PG_URL"] = url
        elif nodes > 1:
            raise BenchError("the SQLite store is single-node (one process holds the db): "
                             "--nodes 2 needs --store pg")
        redis_srv = None
        if redis:
            redis_srv, url = start_server("RedisServer")
            servers.append(redis_srv)
            base["REDIS_URL"] = url
        base.update(env)
        procs = []
        try:
            for i in range(nodes):
                e = dict(base)
                e["HOOKD_NODE_ID"] = f"bench{i}"
                procs.append(Hookd(self.hookd_bin, os.path.join(work, f"node{i}"), e))
                health = procs[-1].wait_healthy()
                if store == "pg" and health.get("backend") != "postgres":
                    raise BenchError(f"hookd runs on {health.get('backend')!r}, not PostgreSQL")
            if redis_srv and redis_clients(redis_srv) < 1:
                raise BenchError("hookd started with REDIS_URL but never connected to Redis: "
                                 "this build has no Redis queue backend yet")
        except BaseException:
            for p in procs:
                p.stop()
            for s in servers:
                stop_server(s)
            raise
        return procs, servers

    def start_system(self, work, store, nodes, redis, env):
        """Starts the system under test of --system with its backends; returns (procs,
        servers): procs have Hookd's interface (port, pid, api, cpu_s, rss_hwm_mb, stop...).
        hookd: start_nodes. reference: a PostgreSQL and a Redis (the stack needs both, whatever
        store and redis say; run() records them as pg + redis) and one Reference (its
        server.js and worker.js); env holds REF_* settings (--hookd-env), others are ignored."""
        if getattr(self.args, "system", "hookd") != "reference":
            return self.start_nodes(work, store, nodes, redis, env)
        srvs = []
        try:
            pg, pg_url = start_server("PgServer")
            srvs.append(pg)
            rs, redis_url = start_server("RedisServer")
            srvs.append(rs)
            ref = Reference(os.path.join(work, "reference"), pg_url, redis_url,
                            {k: v for k, v in env.items() if k.startswith("REF_")})
        except BaseException:
            for s in srvs:
                stop_server(s)
            raise
        return [ref], srvs

    def create_webhooks(self, node, receiver, n, status="active", max_retries=None):
        """n webhooks on /hook/<i> of the receiver, subscribed to bench.*; returns their ids."""
        ids = []
        for i in range(n):
            body = {"name": f"bench {i}", "url": receiver.url(f"/hook/{i}"),
                    "events": ["bench.*"], "rateLimitEnabled": False, "status": status}
            if max_retries is not None:
                body["maxRetries"] = max_retries
            ids.append(node.api("POST", "/v1", body)["id"])
        return ids

    def ceiling(self, node, receiver, wh_id, work, seconds):
        """wrk against the receiver with the request a delivery sends; returns requests/s."""
        if wh_id is None:  # scenario d has no webhook: make one just to learn the request
            wh_id = node.api("POST", "/v1", {"name": "ceiling", "url": receiver.url("/hook/c"),
                                             "events": ["ceiling.only"], "status": "paused",
                                             "rateLimitEnabled": False})["id"]
        data = {"t_us": now_us(), "seq": 0, "pad": "x" * PAD}
        sample = node.api("POST", "/v1/sign-test-event",
                          {"webhookId": wh_id, "event": "bench.event", "payload": data})
        lua = ["wrk.method = \"POST\"", f"wrk.body = [==[{sample['rawBody']}]==]"]
        for k, v in sample["headers"].items():
            lua.append(f"wrk.headers[ [==[{k}]==] ] = [==[{v}]==]")
        script = os.path.join(work, "ceiling.lua")
        with open(script, "w") as f:
            f.write("\n".join(lua) + "\n")
        cmd = ["wrk", f"-t{self.args.ceiling_threads}", f"-c{self.args.ceiling_conns}",
               f"-d{seconds}s", "-s", script, receiver.url("/hook/ceiling")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not m:
            raise BenchError(f"wrk gave no figure: {out}")
        if re.search(r"Non-2xx", out):
            raise BenchError(f"wrk got errors from the receiver: {out}")
        receiver.reset()
        return float(m.group(1)), len(sample["rawBody"])

    def loadgen(self, nodes, events, conns, batch=None, rate=None):
        """Starts bench/loadgen against the nodes (connections spread over them)."""
        cmd = [self.loadgen_bin, "--key", KEY, "--events", str(events), "--conns", str(conns),
               "--type", "bench.event", "--pad", str(PAD)]
        for n in nodes:
            cmd += ["--target", f"127.0.0.1:{n.port}"]
        if batch:
            cmd += ["--batch", str(batch)]
        if rate:
            cmd += ["--rate", str(rate)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    def loadgen_result(self, proc, timeout=3600):
        """Waits for loadgen; returns its JSON line as a dict."""
        out, _ = proc.communicate(timeout=timeout)
        try:
            res = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchError(f"loadgen printed no result: {out!r}")
        if "error" in res:
            raise BenchError(f"loadgen: {res['error']}")
        return res

    def wait_deliveries(self, receiver, expected, nodes, stall_s):
        """Polls the receiver until `expected` distinct deliveries arrived, or none arrived for
        stall_s seconds (or a node died). Returns the last /count."""
        last_n, last_change = -1, time.monotonic()
        interval = 0.02
        while True:
            c = receiver.count()
            if c["distinct"] >= expected:
                return c
            if c["distinct"] != last_n:
                last_n, last_change = c["distinct"], time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                return c
            for n in nodes:
                if not n.alive():
                    raise BenchError(f"hookd died during the run: {n.log_tail()}")
            time.sleep(interval)
            interval = min(interval * 1.5, 0.5)

    def store_success(self, node, wh_ids, expected, timeout=30):
        """Sum over the webhooks of the deliveries hookd's store says succeeded, polled until it
        reaches expected (results are written in batches, just after the send) or timeout. Read
        from the store with SQL: the API's `total` stops at 10,000 (docs/API.md, paging)."""
        deadline = time.monotonic() + timeout
        ids = ", ".join(f"'{w}'" for w in wh_ids)
        while True:
            table = getattr(node, "DELIVERIES", "webhook_delivery")
            total = store_count(node, f"SELECT count(*) FROM {table} WHERE status = "
                                f"'success' AND webhook_id IN ({ids})")
            if total >= expected or time.monotonic() > deadline:
                return total
            time.sleep(0.2)

    # -- one scenario
    def config(self, name, smoke):
        """The scenario's parameters after --scale and the override options."""
        args = self.args
        cfg = dict((SMOKE if smoke else SCENARIOS)[name])
        if "events" in cfg:
            cfg["events"] = max(1, int(cfg["events"] * (1.0 if smoke else args.scale)))
        if name == "c":
            cfg["seconds"] = args.seconds or cfg["seconds"]
            cfg["events"] = int(cfg["rate"] * cfg["seconds"])
        if args.conns:
            cfg["conns"] = args.conns
        if args.batch is not None:
            cfg["batch"] = args.batch or None
        if name == "f" and args.down_s is not None:
            cfg["down_s"] = args.down_s
        cfg["env"] = {}
        if name == "f":
            cfg["env"]["HOOKD_RETRY_SCHEDULE"] = cfg["retry"]
            cfg["env"]["HOOKD_RETRY_JITTER"] = str(cfg["jitter"])
        for kv in args.hookd_env or []:
            k, _, v = kv.partition("=")
            cfg["env"][k] = v
        return cfg

    def run(self, name, store, nodes, redis, smoke=False):
        """Runs one scenario from scratch (temp dir, receiver, backends, hookd nodes, ceiling,
        load, wait, checks) and returns its result line as a dict. Raises BenchError when it
        cannot run at all; a run that went wrong returns ok=False with its errors."""
        if name == "k":
            return self.run_k(store)
        if name in XSCEN:
            return XBench.run_x(self, name, smoke)
        cfg = self.config(name, smoke)
        system = getattr(self.args, "system", "hookd")
        if system == "reference":  # Node + Bull on PostgreSQL and Redis, one stack
            store, redis, nodes = "pg", True, 1
        res = {"scenario": name, "system": system, "store": store, "redis": redis,
               "nodes": nodes}
        work = tempfile.mkdtemp(prefix=f"hookd-bench-{name}-", dir=self.args.workdir)
        run = {"receiver": None, "procs": [], "servers": [], "perf": None}
        try:
            run["receiver"] = Receiver(self.receiver_bin, work)
            run["procs"], run["servers"] = self.start_system(work, store, nodes, redis,
                                                             cfg["env"])
            self.measure(name, cfg, run, work, smoke, res)
            return res
        finally:
            self.stop_perf(run)
            for p in run["procs"]:
                p.stop()
            if run["receiver"]:
                run["receiver"].stop()
            for s in run["servers"]:
                stop_server(s)
            if self.args.keep:
                log(f"kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)

    # -- scenario k: lists at scale
    def run_k(self, store):
        """Scenario k (module doc): fill, serve, measure. Returns the result line."""
        args, cfg = self.args, self.config("k", False)
        n, lim, reqs = cfg["events"], args.limit, args.requests
        res = {"scenario": "k", "store": store, "redis": False, "nodes": 1, "rows": n,
               "limit": lim, "requests": reqs}
        work = tempfile.mkdtemp(prefix="hookd-bench-k-", dir=args.workdir)
        procs, srvs = [], []
        errors = []
        try:
            procs, srvs = self.start_nodes(work, store, 1, False, cfg["env"])
            node = procs[0]
            wh = node.api("POST", "/v1", {"name": "bench k", "url": "http://127.0.0.1:9/hook",
                                          "events": ["bench.*"], "maxRetries": 0,
                                          "rateLimitEnabled": False})["id"]
            env = node.env
            if node.stop() != 0:
                raise BenchError(f"hookd exited badly before the fill: {node.log_tail()}")
            t0 = int(time.time() * 1000) - 86400000 - n // 2
            t = time.monotonic()
            fill_k(env, wh, n, t0)
            fill_k_stats(env, wh, int(time.time() * 1000))
            res["fill_s"] = round(time.monotonic() - t, 1)
            log(f"k: filled {n} deliveries in {res['fill_s']} s")
            node = Hookd(self.hookd_bin, os.path.join(work, "node0"), dict(
                (k, v) for k, v in env.items() if k in ("PG_URL", "HOOKD_NODE_ID")
                or k in cfg["env"]))
            procs = [node]
            node.wait_healthy(timeout=600)
            res["store_mb"] = round(store_bytes(node) / 2**20, 1)
            res["pages"] = measure_k(node, wh, n, t0, lim, reqs, errors)
            res["worst_p99_ms"] = max(v["p99_ms"] for k, v in res["pages"].items()
                                      if k != "dl_offset_deepest" and "stats" not in k)
            res["stats_worst_p99_ms"] = max(v["p99_ms"] for k, v in res["pages"].items()
                                            if "stats" in k)
            res["peak_rss_mb"] = round(node.rss_hwm_mb(), 1)
            rc = node.stop()
            if rc != 0:
                errors.append(f"hookd exited {rc} on SIGTERM: {node.log_tail()}")
        finally:
            for p in procs:
                p.stop()
            for srv in srvs:
                stop_server(srv)
            if args.keep:
                log(f"kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        res["ok"] = not errors
        if errors:
            res["errors"] = errors[:10]
        res["build"] = self.build_type
        res["commit"] = self.commit
        if args.label:
            res["label"] = args.label
        return res

    def stop_perf(self, run):
        """Ends a perf record started by measure() (it writes its file on SIGINT)."""
        if run["perf"]:
            run["perf"].send_signal(signal.SIGINT)
            run["perf"].wait(60)
            run["perf"] = None

    def measure(self, name, cfg, run, work, smoke, res):
        """The measured part of run(): fills res."""
        procs, node = run["procs"], run["procs"][0]
        wh = self.create_webhooks(node, run["receiver"], cfg["webhooks"],
                                  status="paused" if name == "e" else "active",
                                  max_retries=50 if name == "f" else None)
        ceiling, body_bytes = self.ceiling(node, run["receiver"], wh[0] if wh else None, work,
                                           1 if smoke else self.args.ceiling_seconds)
        res.update({"events": cfg["events"], "webhooks": cfg["webhooks"],
                    "body_bytes": body_bytes})
        expected = cfg["events"] * cfg["webhooks"]
        if self.args.perf:
            # dwarf call graphs: the Release build has no frame pointers
            run["perf"] = subprocess.Popen(
                ["perf", "record", "-F", "999", "--call-graph", "dwarf,16384", "-o",
                 self.args.perf, "-p", ",".join(str(p.pid) for p in procs)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        cpu0 = sum(p.cpu_s() for p in procs)
        srv_pids = [s.proc.pid for s in run["servers"]]
        srv_cpu0 = [tree_cpu_s(pid) for pid in srv_pids]
        tcpu0 = node.thread_cpu_s()
        mach0 = machine_cpu()
        t_start = now_us()
        measured_from = None
        if name == "e":  # the endpoint is down while the backlog builds
            rport = run["receiver"].port
            run["receiver"].stop()
            run["receiver"] = None
        if name == "f":
            run["receiver"].fail_for(cfg["down_s"] * 1000)

        ing = self.loadgen_result(self.loadgen(procs, cfg["events"], cfg["conns"],
                                               batch=cfg.get("batch"), rate=cfg.get("rate")))
        res["ingest_events_per_s"] = round(ing["events_per_s"], 1)
        res["ingest_s"] = round(ing["seconds"], 3)
        # each ingest request's answer time (a batch of `batch` events, or one event)
        res["ingest_req_p50_ms"] = round(ing["req_p50_us"] / 1000, 3)
        res["ingest_req_p99_ms"] = round(ing["req_p99_us"] / 1000, 3)
        errors = []
        if ing["ok_events"] != cfg["events"]:
            errors.append(f"ingest: {ing['ok_events']} of {cfg['events']} events accepted "
                          f"(statuses {ing['statuses']}, io errors {ing['io_errors']})")
        if name == "c":
            # how late the generator itself sent (the machine was busy), and how many events
            # found every connection waiting for hookd's answer
            res["loadgen_late_p99_ms"] = round(ing["late_p99_us"] / 1000, 3)
            res["loadgen_late_max_ms"] = round(ing["late_max_us"] / 1000, 3)
            res["loadgen_conn_waits"] = ing["conn_waits"]
        if name == "e":
            res["peak_rss_ingest_mb"] = round(max(p.rss_hwm_mb() for p in procs), 1)
            run["receiver"] = Receiver(self.receiver_bin, work, port=rport)
            measured_from = now_us()
            for w in wh:
                node.api("PATCH", f"/v1/{w}", {"status": "active"})
        receiver = run["receiver"]
        if name == "f":
            measured_from = receiver.count()["fail_until_us"]
        expected_ok = ing["ok_events"] * cfg["webhooks"]
        stall = 30 + (cfg.get("down_s", 0) + 15 if name == "f" else 0)
        if expected:
            self.wait_deliveries(receiver, expected_ok, procs, stall)
        t_end = now_us()
        cpu = sum(p.cpu_s() for p in procs) - cpu0
        srv_cpu = [tree_cpu_s(pid) - c0 for pid, c0 in zip(srv_pids, srv_cpu0)]
        tcpu1 = node.thread_cpu_s()
        mach1 = machine_cpu()
        self.stop_perf(run)

        # the figures
        st = receiver.stats()
        delivered = st["distinct"]
        res.update({"deliveries": delivered, "expected_deliveries": expected,
                    "duplicates": st["duplicates"]})
        if name == "f":
            res["failed_attempts"] = st["failed"]
        if expected:
            t0 = measured_from or ing["first_send_us"]
            span = (st["last_us"] - t0) / 1e6 if st["last_us"] else 0
            res["seconds"] = round(span, 3)
            res["deliveries_per_s"] = round(delivered / span, 1) if span > 0 else 0
            if name in ("e", "f"):
                res["drain_s"] = round(span, 3)
            if name == "f":  # retries that failed just before the end come due this late
                last = float(re.findall(r"[\d.]+", cfg["retry"].split(",")[-1])[0])
                res["retry_window_s"] = round(last * (1 + cfg["jitter"]), 3)
            for k, v in (("p50_ms", "lat_p50_us"), ("p99_ms", "lat_p99_us"),
                         ("max_ms", "lat_max_us")):
                res[k] = round(st[v] / 1000, 3)
        else:
            res["seconds"] = round(ing["seconds"], 3)
            res["deliveries_per_s"] = 0
            res["p50_ms"] = res["p99_ms"] = res["max_ms"] = None
        res["peak_rss_mb"] = round(max(p.rss_hwm_mb() for p in procs), 1)
        res["cpu_s"] = round(cpu, 2)
        # PostgreSQL (postmaster + backends) and Redis over the phase: not in cpu_s
        for srv, c in zip(run["servers"], srv_cpu):
            res["pg_cpu_s" if type(srv).__name__ == "PgServer" else "redis_cpu_s"] = round(c, 2)
        # node 0's threads over the phase: the event loop first, then the store threads
        loop = node.pid
        others = sorted((tcpu1[t] - tcpu0.get(t, 0) for t in tcpu1 if t != loop), reverse=True)
        res["cpu_threads_s"] = ([round(tcpu1.get(loop, 0) - tcpu0.get(loop, 0), 2)] +
                                [round(x, 2) for x in others if x >= 0.01])
        # how busy the machine was (every process but niced ones): 100 = saturated
        busy, total = mach1[0] - mach0[0], mach1[1] - mach0[1]
        res["machine_busy_pct"] = round(100 * busy / total, 1) if total else None
        per = delivered if expected else ing["ok_events"]
        res["cpu_s_per_1k"] = round(cpu * 1000 / per, 3) if per else None
        res["cpu_s_per_1k_of"] = "deliveries" if expected else "events"
        res["ceiling_rps"] = round(ceiling, 1)
        # f's rate is paced by the retries coming due, not by hookd: no ratio
        res["ratio"] = (round(res["deliveries_per_s"] / ceiling, 3)
                        if expected and name != "f" else None)

        # the checks: every delivery arrived at least once, and the counts add up
        if expected and delivered < expected_ok:
            errors.append(f"incomplete: {delivered} of {expected_ok} deliveries arrived "
                          f"(nothing new for {stall}s)")
        if st["ok"] != st["distinct"] + st["duplicates"] + st["no_id"]:
            errors.append(f"receiver counts do not add up: {st}")
        if st["no_id"] or st["bad"] or st["no_t_us"]:
            errors.append(f"receiver got requests without id/t_us or malformed: {st}")
        if name != "f" and st["failed"]:
            errors.append(f"receiver answered {st['failed']} requests with failures")
        if expected:
            res["store_success"] = self.store_success(node, wh, delivered)
            if res["store_success"] != delivered:
                errors.append(f"hookd's store says {res['store_success']} deliveries "
                              f"succeeded, the receiver counted {delivered} distinct")
        else:
            res["store_events"] = store_count(node, "SELECT count(*) FROM webhook_event")
            if res["store_events"] != ing["ok_events"]:
                errors.append(f"hookd's store holds {res['store_events']} events, "
                              f"{ing['ok_events']} were accepted")
        for p in procs:
            rc = p.stop()
            if rc != 0:
                errors.append(f"hookd exited {rc} on SIGTERM: {p.log_tail()}")
        res["ok"] = not errors
        if errors:
            res["errors"] = errors
        res["build"] = self.build_type
        res["commit"] = self.commit
        if self.args.hookd_env:
            res["hookd_env"] = self.args.hookd_env
        if self.args.label:
            res["label"] = self.args.label
        res["wall_s"] = round((t_end - t_start) / 1e6, 1)


# ---- scenario k: the fill and the measure -------------------------------------------------

K_CHUNK = 500000  # rows a fill transaction
K_PAD = "x" * 200  # padding in each event's data, as in the other scenarios


def k_key(t0, i):
    """(created_at, id body) of row i of the fill: two rows a millisecond (ties, broken by id),
    ids in hookd's form (prefix_ + 24 [a-z0-9], sorting by creation)."""
    at = t0 + i // 2
    return at, "%013d%011d" % (at, i)


def k_cursor(at, ident):
    """A list cursor as hookd makes them (src/api/api.c): base64url of "<ms>.<id>" and the
    first 4 bytes of its SHA-256."""
    raw = f"{at}.{ident}".encode()
    return base64.urlsafe_b64encode(raw + hashlib.sha256(raw).digest()[:4]).decode().rstrip("=")


def fill_k(env, wh, n, t0):
    """Writes n events, each with one finished delivery to webhook wh and its attempt, the rows
    as hookd writes them (deliveries: 5% failed with a 500, the rest succeeded; events: 1% of
    type bench.rare), straight into the store of a stopped hookd."""
    rare = "CASE WHEN i % 100 = 0 THEN 'bench.rare' ELSE 'bench.event' END"
    failed = "i % 20 = 7"
    if env.get("PG_URL"):
        k = "lpad((t0 + i / 2)::text, 13, '0') || lpad(i::text, 11, '0')"
        at = "hk_ts(t0 + i / 2)"
        done = "hk_ts(t0 + i / 2 + 5)"
        for a in range(0, n, K_CHUNK):
            b = min(n, a + K_CHUNK)
            src = f"FROM (SELECT i, {t0}::bigint AS t0 FROM generate_series({a}, {b - 1}) i) s"
            servers.pg_query(env["PG_URL"], f"""BEGIN;
INSERT INTO webhook_event (id, event, payload, source, organization_id, created_at)
SELECT 'whev_' || {k}, {rare}, ('{{"seq":' || i || ',"pad":"{K_PAD}"}}')::json, 'api', '{ORG}',
 {at} {src};
INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id, event_type, status, request_url,
 request_headers, response_status, response_body, response_headers, attempt_number,
 max_attempts, last_attempt_at, error_message, completed_at, duration_ms, created_at)
SELECT 'whde_' || {k}, '{wh}', 'whev_' || {k}, {rare},
 (CASE WHEN {failed} THEN 'failed' ELSE 'success' END)::webhook_delivery_status,
 'http://127.0.0.1:9/hook', ('{{"webhook-id":"whde_' || {k} || '"}}')::json,
 CASE WHEN {failed} THEN 500 ELSE 200 END, 'ok', '{{"content-type":"text/plain"}}'::json, 1, 1,
 {done}, CASE WHEN {failed} THEN 'HTTP 500' END, {done}, 5, {at} {src};
INSERT INTO webhook_delivery_attempt (id, webhook_delivery_id, attempt_number, status,
 response_status, response_body, response_headers, duration_ms, error_message, created_at)
SELECT 'whda_' || {k}, 'whde_' || {k}, 1,
 (CASE WHEN {failed} THEN 'failed' ELSE 'success' END)::webhook_delivery_status,
 CASE WHEN {failed} THEN 500 ELSE 200 END, 'ok', '{{"content-type":"text/plain"}}'::json, 5,
 CASE WHEN {failed} THEN 'HTTP 500' END, {done} {src};
COMMIT;""")
            log(f"k: {b} rows")
        # what autovacuum does on its own after a bulk load: statistics and the visibility map
        # (index-only scans for the bounded counts)
        servers.pg_query(env["PG_URL"], "VACUUM (ANALYZE)")
        return
    k = "printf('%013d%011d', t0 + i / 2, i)"
    db = sqlite3.connect(env["HOOKD_DB"], isolation_level=None, timeout=60)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1000000")
        for a in range(0, n, K_CHUNK):
            b = min(n, a + K_CHUNK)
            src = (f"FROM (WITH RECURSIVE r(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM r "
                   f"WHERE i + 1 < {b}) SELECT i, {t0} AS t0 FROM r)")
            db.execute("BEGIN")
            db.execute(f"""INSERT INTO webhook_event (id, event, payload, source,
 organization_id, created_at) SELECT 'whev_' || {k}, {rare},
 '{{"seq":' || i || ',"pad":"{K_PAD}"}}', 'api', '{ORG}', t0 + i / 2 {src}""")
            db.execute(f"""INSERT INTO webhook_delivery (id, webhook_id, webhook_event_id,
 event_type, status, request_url, request_headers, response_status, response_body,
 response_headers, attempt_number, max_attempts, last_attempt_at, error_message, completed_at,
 duration_ms, created_at) SELECT 'whde_' || {k}, '{wh}', 'whev_' || {k}, {rare},
 CASE WHEN {failed} THEN 'failed' ELSE 'success' END, 'http://127.0.0.1:9/hook',
 '{{"webhook-id":"whde_' || {k} || '"}}', CASE WHEN {failed} THEN 500 ELSE 200 END, 'ok',
 '{{"content-type":"text/plain"}}', 1, 1, t0 + i / 2 + 5,
 CASE WHEN {failed} THEN 'HTTP 500' END, t0 + i / 2 + 5, 5, t0 + i / 2 {src}""")
            db.execute(f"""INSERT INTO webhook_delivery_attempt (id, webhook_delivery_id,
 attempt_number, status, response_status, response_body, response_headers, duration_ms,
 error_message, created_at) SELECT 'whda_' || {k}, 'whde_' || {k}, 1,
 CASE WHEN {failed} THEN 'failed' ELSE 'success' END, CASE WHEN {failed} THEN 500 ELSE 200 END,
 'ok', '{{"content-type":"text/plain"}}', 5, CASE WHEN {failed} THEN 'HTTP 500' END,
 t0 + i / 2 + 5 {src}""")
            db.execute("COMMIT")
            log(f"k: {b} rows")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


K_STATS_DAYS = 30  # minute rollups of the bench webhook, ending now (the retention's default)


def k_coarse_sql(wh, grain, cast):
    """The hour or day rows (webhook_stats_coarse, grain in ms) that the results batches write
    beside the minute rows of fill_k_stats: their sums, the histograms (7 in buckets 9-11 a
    minute) added up."""
    h = "('{0,0,0,0,0,0,0,0,0,' || (7 * count(*)) || ',' || (7 * count(*)) || ',' || " \
        "(7 * count(*)) || '}')" + cast
    return f"""INSERT INTO webhook_stats_coarse (webhook_id, grain, start, delivered, failed,
 given_up, last_at, att_hist, e2e_hist) SELECT webhook_id, {grain}, minute - minute % {grain},
 sum(delivered), sum(failed), sum(given_up), max(last_at), {h}, {h} FROM webhook_stats
 WHERE webhook_id = '{wh}' GROUP BY webhook_id, minute - minute % {grain}"""


def fill_k_stats(env, wh, now_ms):
    """Writes K_STATS_DAYS days of minute rollup rows (webhook_stats, as the results batches
    write them: counts and two 48-bucket histograms) for webhook wh, ending at now_ms, and the
    hour and day rows of the same attempts (webhook_stats_coarse), so that the statistics
    routes read a month of history beside the 10 million deliveries."""
    m0 = now_ms // 60000 * 60000 - K_STATS_DAYS * 86400000
    n = K_STATS_DAYS * 1440
    hist = "{" + ",".join(str(7 if b in (9, 10, 11) else 0) for b in range(48)) + "}"
    cols = ("webhook_id, minute, delivered, failed, given_up, last_at, att_hist, e2e_hist")
    if env.get("PG_URL"):
        servers.pg_query(env["PG_URL"], f"""INSERT INTO webhook_stats ({cols})
SELECT '{wh}', {m0} + i * 60000, 100 + i % 7, i % 3, CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END,
 {m0} + i * 60000 + 59000, '{hist}'::bigint[], '{hist}'::bigint[]
FROM generate_series(0::bigint, {n - 1}) i; {k_coarse_sql(wh, 3600000, "::bigint[]")};
{k_coarse_sql(wh, 86400000, "::bigint[]")}; ANALYZE webhook_stats; ANALYZE webhook_stats_coarse""")
        return
    db = sqlite3.connect(env["HOOKD_DB"], isolation_level=None, timeout=60)
    try:
        db.execute(f"""INSERT INTO webhook_stats ({cols}) WITH RECURSIVE r(i) AS (SELECT 0 UNION
 ALL SELECT i + 1 FROM r WHERE i + 1 < {n}) SELECT '{wh}', {m0} + i * 60000, 100 + i % 7, i % 3,
 CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END, {m0} + i * 60000 + 59000, '{hist}', '{hist}' FROM r""")
        for grain in (3600000, 86400000):
            db.execute(k_coarse_sql(wh, grain, ""))
    finally:
        db.close()


def store_bytes(node):
    """Size of node's store: the SQLite file, or the PostgreSQL database."""
    if node.env.get("PG_URL"):
        return store_count(node, "SELECT pg_database_size(current_database())")
    return os.path.getsize(node.env["HOOKD_DB"])


def measure_k(node, wh, n, t0, lim, reqs, errors):
    """The page latencies of scenario k: {kind: {p50_ms, p99_ms, max_ms}}. Kinds: *_first the
    first page, *_later a page after a cursor at a random depth, dl_walk pages following
    `next` from the first; dl_failed_* with status=failed, ev_rare_* with type=bench.rare;
    dl_offset_deepest the deepest page offset paging allows (page * limit = 1,000); stats_* the
    webhook's statistics (a month of minute, hour and day rollups stored) over the last 24 h by
    hour (the default), by minute (1,440 buckets) and over 7 days by hour, and org_stats the
    organization's summary (issue 17: p99 <= 20 ms with 10 million deliveries stored)."""
    rnd = random.Random(7)
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    hdr = {"x-api-key": KEY}
    dl, ev = f"/api/webhook/v1/{wh}/deliveries?limit={lim}", f"/api/webhook/v1/events?limit={lim}"

    def get(path):
        t = time.perf_counter()
        conn.request("GET", path, headers=hdr)
        r = conn.getresponse()
        raw = r.read()
        ms = (time.perf_counter() - t) * 1000
        if r.status != 200:
            errors.append(f"GET {path}: {r.status} {raw[:200]!r}")
            return ms, {}
        return ms, json.loads(raw)

    def cur(prefix, cond=lambda i: True):
        while True:
            i = rnd.randrange(0, n)
            if cond(i):
                at, body = k_key(t0, i)
                return "&cursor=" + k_cursor(at, f"{prefix}_{body}")

    plans = {
        "dl_first": lambda: dl,
        "dl_later": lambda: dl + cur("whde"),
        "dl_failed_first": lambda: dl + "&status=failed",
        "dl_failed_later": lambda: dl + "&status=failed" + cur("whde"),
        "ev_first": lambda: ev,
        "ev_later": lambda: ev + cur("whev"),
        "ev_rare_first": lambda: ev + "&type=bench.rare",
        "ev_rare_later": lambda: ev + "&type=bench.rare" + cur("whev"),
        "wh_first": lambda: f"/api/webhook/v1?limit={lim}",
        "dl_offset_deepest": lambda: dl + f"&page={1000 // lim}",
        "stats_day": lambda: f"/api/webhook/v1/{wh}/stats",
        "stats_day_minutes": lambda: f"/api/webhook/v1/{wh}/stats?interval=minute",
        "stats_week": lambda: f"/api/webhook/v1/{wh}/stats?interval=hour&from=" + time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * 86400)),
        "org_stats": lambda: "/api/webhook/v1/stats",
    }
    out = {}
    for kind, mk in plans.items():
        get(mk())  # one not counted: statements prepared, pages warm
        times = []
        for _ in range(reqs):
            ms, body = get(mk())
            times.append(ms)
            rows = body.get("deliveries", body.get("events", body.get("webhooks")))
            if kind.endswith("_first") and not kind.startswith("wh") and len(rows or []) != lim:
                errors.append(f"{kind}: {len(rows or [])} rows, not {lim}")
        out[kind] = pct(times)
    # the walk: every row once, newest first
    times, last, seen, path = [], None, 0, dl
    for _ in range(reqs):
        ms, body = get(path)
        times.append(ms)
        for d in body.get("deliveries", []):
            key = (d["createdAt"], d["id"])
            if last is not None and not key < last:
                errors.append(f"dl_walk: {key} does not sort after {last}")
            last, seen = key, seen + 1
        if not body.get("next"):
            break
        path = dl + "&cursor=" + body["next"]
    if seen != min(n, reqs * lim):
        errors.append(f"dl_walk: {seen} rows in {len(times)} pages")
    out["dl_walk"] = pct(times)
    conn.close()
    return out


def pct(times):
    t = sorted(times)
    return {"p50_ms": round(t[len(t) // 2], 2), "p99_ms": round(t[min(len(t) - 1,
            int(len(t) * 0.99))], 2), "max_ms": round(t[-1], 2)}




# ---- scenarios g, h, i, j: internet conditions (issue 21) -----------------------------------

# Defaults (counts multiplied by --scale) and the smoke profile's tiny forms.
XSCEN = {
    # 1,000 webhooks: 0.2% hang (timeoutMs hang_ms, no retry), 1% answer after slow2_ms, the rest
    # after slow_ms; every event fans out to all of them
    "g": dict(events=60, webhooks=1000, slow_ms=200, slow2_ms=2000, hang_ms=3000,
              inflight=10000, batch=10, conns=2),
    # TLS: keep-alive events, then events to a closing endpoint with and without resumption
    "h": dict(events=20000, close_events=3000, batch=100, conns=16),
    # 10 matching webhooks, alone and among `others` non-matching ones (exact and wildcard)
    "i": dict(events=5000, webhooks=10, others=9990, batch=100, conns=16),
    # the same number of deliveries to 10 endpoints and to `endpoints` loopback addresses
    "j": dict(deliveries=100000, few=10, endpoints=10000, batch=100, conns=8),
}
XSMOKE = {
    "g": dict(events=2, webhooks=40, slow_ms=50, slow2_ms=300, hang_ms=500, inflight=200,
              batch=2, conns=1),
    "h": dict(events=60, close_events=20, batch=20, conns=2),
    "i": dict(events=40, webhooks=10, others=190, batch=20, conns=2),
    "j": dict(deliveries=400, few=10, endpoints=200, batch=20, conns=2),
}


class XReceiver(Receiver):
    """bench/receiver with extra options (TLS, --any-loopback); its control requests go over
    TLS too when it is an https receiver."""

    def __init__(self, binary, workdir, extra=(), tls=False):
        self.tls = tls
        self.log_path = os.path.join(workdir, f"receiver-{time.monotonic_ns()}.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "--port", "0", *extra], stdout=subprocess.PIPE,
                                     stderr=self.logf)
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"receiver did not start: {open(self.log_path).read()}")
        self.port = json.loads(line)["port"]

    def url(self, path, host="127.0.0.1"):
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def get(self, path):
        if not self.tls:
            return super().get(path)
        import ssl
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60,
                                        context=ssl._create_unverified_context())
        try:
            c.request("GET", path)
            r = c.getresponse()
            raw = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise BenchError(f"receiver {path}: {r.status}")
        return json.loads(raw)


def make_tls(work):
    """A CA and a server certificate for 127.0.0.1 signed by it (RSA 2048, the common kind),
    made with the openssl CLI in work; returns (ca.pem, server.pem, server.key)."""
    def ossl(*a):
        p = subprocess.run(["openssl", *a], cwd=work, capture_output=True, text=True)
        if p.returncode:
            raise BenchError(f"openssl {' '.join(a)}: {p.stderr}")
    with open(os.path.join(work, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=hookd bench CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=127.0.0.1")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "san.ext")
    return tuple(os.path.join(work, f) for f in ("ca.pem", "srv.pem", "srv.key"))


def rss_mb(pid):
    """VmRSS of pid now, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def create_many(node, bodies, threads=8):
    """POSTs every webhook body to node from `threads` keep-alive connections at once; returns
    the ids in the order of bodies."""
    import concurrent.futures
    ids = [None] * len(bodies)

    def work(part):
        c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        try:
            for i in range(part, len(bodies), threads):
                c.request("POST", "/api/webhook/v1", body=json.dumps(bodies[i]),
                          headers={"x-api-key": KEY, "Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                if r.status != 201:
                    raise BenchError(f"webhook create: {r.status} {raw[:300]!r}")
                ids[i] = json.loads(raw)["id"]
        finally:
            c.close()

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        for f in [ex.submit(work, t) for t in range(threads)]:
            f.result()
    return ids


def steady_rate(samples, lo=0.1, hi=0.9):
    """Deliveries/s between the moments lo and hi of the total had arrived, from (t_us, count)
    samples (linear between samples): the rate without the start and the tail."""
    if not samples or samples[-1][1] <= 0:
        return 0.0
    total = samples[-1][1]

    def when(x):
        for (t0, n0), (t1, n1) in zip(samples, samples[1:]):
            if n1 >= x:
                return t0 + (t1 - t0) * ((x - n0) / (n1 - n0)) if n1 > n0 else t1
        return samples[-1][0]
    a, b = when(lo * total), when(hi * total)
    return round((hi - lo) * total / ((b - a) / 1e6), 1) if b > a else 0.0


class XBench(Bench):
    """Scenarios g, h, i, j (module doc): each runs its hookd phases and bounds in one run."""

    def xconfig(self, name, smoke):
        cfg = dict((XSMOKE if smoke else XSCEN)[name])
        if not smoke:
            for k in ("events", "close_events", "deliveries"):
                if k in cfg:
                    cfg[k] = max(1, int(cfg[k] * self.args.scale))
        if self.args.conns:
            cfg["conns"] = self.args.conns
        if self.args.batch:
            cfg["batch"] = self.args.batch
        cfg["env"] = {}
        for kv in self.args.hookd_env or []:
            k, _, v = kv.partition("=")
            cfg["env"][k] = v
        return cfg

    def xnode(self, work, tag, env):
        """A fresh hookd (SQLite, its own dir under work) with env; returns it, healthy."""
        node = Hookd(self.hookd_bin, os.path.join(work, tag), env)
        try:
            node.wait_healthy()
        except BaseException:
            node.stop()
            raise
        return node

    def xload(self, node, receiver, events, cfg, expected, ev_type="bench.event", stall=30):
        """Sends `events` events of ev_type (loadgen, cfg's batch and conns) and polls the
        receiver until `expected` distinct deliveries arrived (or none for stall s). Returns
        the phase's figures: ingest events/s, deliveries, deliveries/s over the whole phase
        (first event sent -> last delivery) and steady (10% -> 90% of them arrived), hookd's
        CPU s per 1,000 deliveries."""
        receiver.reset()
        cpu0, loop0, rcpu0 = node.cpu_s(), node.thread_cpu_s().get(node.pid, 0), proc_cpu_s(receiver.proc.pid)
        cmd = [self.loadgen_bin, "--key", KEY, "--events", str(events), "--conns",
               str(cfg["conns"]), "--type", ev_type, "--pad", str(PAD), "--target",
               f"127.0.0.1:{node.port}"]
        if cfg.get("batch") and cfg["batch"] > 1:
            cmd += ["--batch", str(min(cfg["batch"], events))]
        perf = None
        if self.args.perf:  # flat profile of hookd over the phase (one file a phase: FILE.N)
            self.perf_n = getattr(self, "perf_n", 0) + 1
            perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-o",
                                     f"{self.args.perf}.{self.perf_n}", "-p", str(node.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        samples, last_n, last_change = [], -1, time.monotonic()
        while True:
            c = receiver.count()
            samples.append((c["now_us"], c["distinct"]))
            if c["distinct"] >= expected:
                break
            if c["distinct"] != last_n:
                last_n, last_change = c["distinct"], time.monotonic()
            elif time.monotonic() - last_change > stall:
                break
            if not node.alive():
                raise BenchError(f"hookd died during the run: {node.log_tail()}")
            time.sleep(0.1)
        ing = self.loadgen_result(lg)
        cpu = node.cpu_s() - cpu0
        loop_cpu = node.thread_cpu_s().get(node.pid, 0) - loop0
        rcpu = proc_cpu_s(receiver.proc.pid) - rcpu0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        st = receiver.stats()
        n = st["distinct"]
        span = (st["last_us"] - ing["first_send_us"]) / 1e6 if st["last_us"] else 0
        out = {"events": events, "ingest_events_per_s": round(ing["events_per_s"], 1),
               "ok_events": ing["ok_events"], "deliveries": n, "expected": expected,
               "duplicates": st["duplicates"], "seconds": round(span, 3),
               "deliveries_per_s": round(n / span, 1) if span > 0 else 0,
               "steady_per_s": steady_rate(samples), "cpu_s_per_1k":
               round(cpu * 1000 / n, 3) if n else None,
               "loop_cpu_s_per_1k": round(loop_cpu * 1000 / n, 3) if n else None,
               "receiver_cpu_s_per_1k": round(rcpu * 1000 / n, 3) if n else None, "stats": st}
        return out

    def xcheck(self, phase, what, errors):
        """The counts of one phase: every event accepted, every delivery arrived."""
        if phase["ok_events"] != phase["events"]:
            errors.append(f"{what}: {phase['ok_events']} of {phase['events']} events accepted")
        if phase["deliveries"] < phase["expected"]:
            errors.append(f"{what}: {phase['deliveries']} of {phase['expected']} deliveries")
        st = phase["stats"]
        if st["bad"] or st["no_id"] or st["no_t_us"]:
            errors.append(f"{what}: malformed requests at the receiver: {st}")

    def xstop(self, node, errors):
        rc = node.stop()
        if rc != 0:
            errors.append(f"hookd exited {rc} on SIGTERM: {node.log_tail()}")

    def run_x(self, name, smoke=False):
        """Runs scenario g, h, i or j from scratch; returns its result line."""
        cfg = self.xconfig(name, smoke)
        res = {"scenario": name, "store": "sqlite", "redis": False, "nodes": 1}
        work = tempfile.mkdtemp(prefix=f"hookd-bench-{name}-", dir=self.args.workdir)
        run = {"receiver": None, "nodes": []}
        errors = []
        t0 = time.monotonic()
        try:
            getattr(self, f"x_{name}")(cfg, work, run, smoke, res, errors)
        except BenchError as e:
            errors.append(str(e))
        finally:
            for n in run["nodes"]:
                n.stop()
            if run["receiver"]:
                run["receiver"].stop()
            for s in run.get("servers", []):
                stop_server(s)
            if self.args.keep:
                log(f"kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        res["ok"] = not errors
        if errors:
            res["errors"] = errors[:10]
        res.update({"build": self.build_type, "commit": self.commit,
                    "wall_s": round(time.monotonic() - t0, 1)})
        if self.args.hookd_env:
            res["hookd_env"] = self.args.hookd_env
        if self.args.label:
            res["label"] = self.args.label
        return res

    # -- g: slow endpoints
    def x_g(self, cfg, work, run, smoke, res, errors):
        """1,000 webhooks (slow, slower, hanging) against the in-flight bound and hookd's own
        fast-receiver rate (scenario b, run first on its own hookd)."""
        log("g: scenario b first (hookd's fast-receiver rate)")
        b = self.run("b", "sqlite", 1, False, smoke=smoke)
        if not b.get("ok"):
            errors.append(f"g: its scenario b failed: {b.get('errors')}")
        fast = b.get("deliveries_per_s") or 0
        n = cfg["webhooks"]
        n_hang = max(1, round(n * 0.002))
        n_slow2 = max(1, round(n * 0.01))
        env = {"HOOKD_MAX_INFLIGHT": str(cfg["inflight"]), "HOOKD_ORG_MAX_INFLIGHT": "0",
               "HOOKD_DISABLE_AFTER": "0", "HOOKD_MAX_DELIVERIES_PER_BATCH": "0",
               "HOOKD_MAX_WEBHOOKS_PER_ORG": "0", "HOOKD_MAX_DELIVERIES_PER_EVENT": "0"}
        env.update(cfg["env"])
        # every webhook its own receiver address, as 1,000 endpoints would be
        rec = run["receiver"] = XReceiver(self.receiver_bin, work, ["--any-loopback", "1"])
        if getattr(self.args, "system", "hookd") == "reference":
            procs, srvs = self.start_system(work, "pg", 1, True, env)
            run.setdefault("servers", []).extend(srvs)
            node = procs[0]
            res.update(system="reference", store="pg", redis=True)
        else:
            node = self.xnode(work, "g", env)
        run["nodes"].append(node)
        bodies = []
        for i in range(n):
            host = f"127.2.{i // 250}.{i % 250 + 1}"
            body = {"name": f"g {i}", "events": ["bench.*"], "rateLimitEnabled": False}
            if i < n_hang:
                body.update(url=rec.url(f"/hook/{i}/hang", host), timeoutMs=cfg["hang_ms"],
                            maxRetries=0)
            elif i < n_hang + n_slow2:
                body["url"] = rec.url(f"/hook/{i}/slow/{cfg['slow2_ms']}", host)
            else:
                body["url"] = rec.url(f"/hook/{i}/slow/{cfg['slow_ms']}", host)
            bodies.append(body)
        create_many(node, bodies)
        pids = node.pids() if hasattr(node, "pids") else [node.pid]
        rss0 = sum(rss_mb(p) for p in pids)
        ev = cfg["events"]
        ph = self.xload(node, rec, ev, cfg, ev * (n - n_hang), stall=30)
        self.xcheck(ph, "g", errors)
        # the hanging attempts time out hang_ms after they were sent, 16 at a time per webhook
        # (HOOKD_ENDPOINT_CONCURRENCY)
        deadline = time.monotonic() + -(-ev // 16) * cfg["hang_ms"] / 1000 + 10
        want = ev * n_hang
        table = getattr(node, "DELIVERIES", "webhook_delivery")
        while store_count(node, f"SELECT count(*) FROM {table} WHERE status = "
                          "'failed'") < want and time.monotonic() < deadline:
            time.sleep(0.2)
        timed_out = store_count(node, f"SELECT count(*) FROM {table} WHERE status = "
                                "'failed'")
        if timed_out != want:
            errors.append(f"g: {timed_out} deliveries to hanging endpoints failed, not {want}")
        hwm = node.rss_hwm_mb()
        st = ph["stats"]
        mean_s = ((n - n_hang - n_slow2) * cfg["slow_ms"] + n_slow2 * cfg["slow2_ms"] +
                  n_hang * cfg["hang_ms"]) / n / 1000
        limit = cfg["inflight"]
        if res.get("system") == "reference":  # its worker's concurrency is the in-flight limit
            limit = int(cfg["env"].get("REF_CONCURRENCY", 50))
            res["inflight_limit"] = limit
        conc = limit / mean_s
        bound = min(conc, fast) if fast else conc
        rate = ph["steady_per_s"]
        res.update({"events": ev, "webhooks": n, "hanging": n_hang, "slow2": n_slow2,
                    "deliveries": ph["deliveries"], "expected_deliveries": ph["expected"],
                    "duplicates": ph["duplicates"], "deliveries_per_s": rate,
                    "deliveries_per_s_whole": ph["deliveries_per_s"],
                    "ingest_events_per_s": ph["ingest_events_per_s"],
                    "mean_latency_ms": round(mean_s * 1000, 1),
                    "concurrency_bound_per_s": round(conc, 1), "fast_rate_per_s": fast,
                    "ceiling_rps": round(bound, 1), "bound_of": "min(inflight/latency, b)",
                    "ratio": round(rate / bound, 3) if bound else None,
                    "ratio_concurrency": round(rate / conc, 3),
                    "ratio_fast": round(rate / fast, 3) if fast else None,
                    "timed_out": timed_out, "inflight_max": st["held_max"],
                    "conns_per_delivery": round(st["conns_used"] / ph["deliveries"], 4)
                    if ph["deliveries"] else None,
                    "rss_before_mb": round(rss0, 1), "peak_rss_mb": round(hwm, 1),
                    "rss_per_inflight_kb_run": round((hwm - rss0) * 1024 / st["held_max"], 1)
                    if st["held_max"] else None, "cpu_s_per_1k": ph["cpu_s_per_1k"],
                    "b": {k: b.get(k) for k in ("deliveries_per_s", "ceiling_rps", "ratio",
                                                 "cpu_s_per_1k", "ok")}})
        self.xstop(node, errors)
        if res.get("system") != "reference":  # the hold phase measures hookd's memory only
            self.x_g_hold(cfg, work, run, env, res, errors)

    def x_g_hold(self, cfg, work, run, env, res, errors):
        """RSS per attempt in flight, at the in-flight limit: a fresh hookd, `webhooks` hanging
        endpoints (each its own address) and enough events for inflight attempts; once the
        receiver holds them all, (RSS - RSS before the events) / attempts held."""
        rec, n = run["receiver"], cfg["webhooks"]
        # hanging attempts hold the shutdown up to its timeout: 1 s is plenty to measure
        node = self.xnode(work, "g-hold", dict(env, HOOKD_SHUTDOWN_TIMEOUT_MS="1000"))
        run["nodes"].append(node)
        create_many(node, [{"name": f"hold {i}", "events": ["bench.*"], "rateLimitEnabled":
                            False, "maxRetries": 0, "url": rec.url(
                                f"/hook/{i}/hang", f"127.3.{i // 250}.{i % 250 + 1}")}
                           for i in range(n)])
        node.api("POST", "/v1/events", {"type": "other.warm", "data": {}})
        time.sleep(0.5)
        rec.reset()
        rss0 = rss_mb(node.pid)
        ev = max(1, cfg["inflight"] // n)
        want = min(cfg["inflight"], ev * n, n * 16)  # 16: HOOKD_ENDPOINT_CONCURRENCY
        for _ in range(ev):
            node.api("POST", "/v1/events", {"type": "bench.hold", "data": {"pad": "x" * PAD}})
        deadline, held = time.monotonic() + 60, 0
        while time.monotonic() < deadline:
            held = rec.count()["held_now"]
            if held >= want:
                break
            time.sleep(0.2)
        time.sleep(1)
        held = rec.count()["held_now"]
        rss1 = rss_mb(node.pid)
        if held < want:
            errors.append(f"g hold: {held} attempts held, not {want}")
        res.update({"hold_attempts": held, "hold_rss_before_mb": round(rss0, 1),
                    "hold_rss_mb": round(rss1, 1),
                    "rss_per_inflight_kb": round((rss1 - rss0) * 1024 / held, 1) if held else None})
        self.xstop(node, errors)

    # -- h: HTTPS endpoints
    def x_h(self, cfg, work, run, smoke, res, errors):
        """Keep-alive over TLS against wrk over TLS; a closing endpoint with TLS session
        resumption (hookd's default) and without (HOOKD_TLS_SESSION_CACHE=0)."""
        ca, cert, key = make_tls(work)
        rec = run["receiver"] = XReceiver(self.receiver_bin, work,
                                          ["--tls-cert", cert, "--tls-key", key], tls=True)
        env = dict(cfg["env"], HOOKD_CA_FILE=ca)
        node = self.xnode(work, "h-resume", env)
        run["nodes"].append(node)
        ka = node.api("POST", "/v1", {"name": "h keep-alive", "url": rec.url("/hook/ka"),
                                      "events": ["bench.ka"], "rateLimitEnabled": False})["id"]
        ceiling, body_bytes = self.ceiling(node, rec, ka, work,
                                           1 if smoke else self.args.ceiling_seconds)
        ev = cfg["events"]
        p_ka = self.xload(node, rec, ev, cfg, ev, ev_type="bench.ka")
        self.xcheck(p_ka, "h keep-alive", errors)
        ka_conns = p_ka["stats"]["conns_used"]
        peak = node.rss_hwm_mb()
        self.xstop(node, errors)
        # the closing endpoint, each on a fresh hookd (no connection left from before)
        cev = cfg["close_events"]
        closing = {}
        for tag, extra in (("resume", {}), ("full", {"HOOKD_TLS_SESSION_CACHE": "0"})):
            node = self.xnode(work, f"h-close-{tag}", dict(env, **extra))
            run["nodes"].append(node)
            node.api("POST", "/v1", {"name": "h close", "url": rec.url("/hook/c/close"),
                                     "events": ["bench.close"], "rateLimitEnabled": False})
            closing[tag] = self.xload(node, rec, cev, cfg, cev, ev_type="bench.close")
            self.xcheck(closing[tag], f"h close, {tag}", errors)
            peak = max(peak, node.rss_hwm_mb())
            self.xstop(node, errors)
        p_res, p_full = closing["resume"], closing["full"]
        sr, sf = p_res["stats"], p_full["stats"]
        if not sr["tls_resumed"]:
            errors.append(f"h: no handshake of {sr['tls_full']} resumed a session")
        if sf["tls_resumed"]:
            errors.append(f"h: HOOKD_TLS_SESSION_CACHE=0 and yet {sf['tls_resumed']} resumed")
        rate = p_ka["steady_per_s"]
        res.update({"events": ev, "close_events": cev, "body_bytes": body_bytes,
                    "deliveries": p_ka["deliveries"] + p_res["deliveries"] +
                    p_full["deliveries"], "expected_deliveries": ev + 2 * cev,
                    "duplicates": p_ka["duplicates"] + p_res["duplicates"] +
                    p_full["duplicates"], "deliveries_per_s": rate,
                    "ingest_events_per_s": p_ka["ingest_events_per_s"],
                    "ceiling_rps": round(ceiling, 1), "bound_of": "wrk over TLS",
                    "ratio": round(rate / ceiling, 3) if ceiling else None,
                    "keepalive_conns": ka_conns, "cpu_s_per_1k": p_ka["cpu_s_per_1k"],
                    "close_resumed_per_s": p_res["steady_per_s"],
                    "close_full_per_s": p_full["steady_per_s"],
                    "resume_ratio": round(p_res["steady_per_s"] / p_full["steady_per_s"], 3)
                    if p_full["steady_per_s"] else None,
                    "close_conns_used": [sr["conns_used"], sf["conns_used"]],
                    "close_resumed_handshakes": [sr["tls_full"], sr["tls_resumed"]],
                    "close_full_handshakes": [sf["tls_full"], sf["tls_resumed"]],
                    "close_resumed_cpu_s_per_1k": p_res["cpu_s_per_1k"],
                    "close_full_cpu_s_per_1k": p_full["cpu_s_per_1k"],
                    "close_loop_cpu_s_per_1k": [p_res["loop_cpu_s_per_1k"],
                                                p_full["loop_cpu_s_per_1k"]],
                    "close_receiver_cpu_s_per_1k": [p_res["receiver_cpu_s_per_1k"],
                                                    p_full["receiver_cpu_s_per_1k"]],
                    # what was negotiated (resumed phase, full phase): TLS 1.3 and X25519
                    # handshakes, key shares offered per ClientHello, ClientHellos per handshake
                    "close_tls13": [sr.get("tls13"), sf.get("tls13")],
                    "close_x25519": [sr.get("tls_x25519"), sf.get("tls_x25519")],
                    "close_key_shares_per_hello": [
                        round(x["tls_key_shares"] / x["tls_hellos"], 2)
                        if x.get("tls_hellos") else None for x in (sr, sf)],
                    "close_hellos_per_handshake": [
                        round(x["tls_hellos"] / (x["tls_full"] + x["tls_resumed"]), 3)
                        if x.get("tls_hellos") else None for x in (sr, sf)],
                    "peak_rss_mb": round(peak, 1)})

    # -- i: many webhooks in one organization
    def x_i(self, cfg, work, run, smoke, res, errors):
        """The same load with 10 matching webhooks alone, then among `others` that do not
        match (exact and wildcard patterns); RSS per webhook."""
        rec = run["receiver"] = XReceiver(self.receiver_bin, work)
        env = dict(cfg["env"], HOOKD_MAX_WEBHOOKS_PER_ORG="0")
        m = cfg["webhooks"]
        match = [{"name": f"i match {i}", "url": rec.url(f"/hook/m{i}"), "rateLimitEnabled":
                  False, "events": ["bench.event" if i % 2 else "bench.*"]} for i in range(m)]
        pats = [lambda i: f"bench.other{i}", lambda i: f"other{i}.*",
                lambda i: f"bench.*.x{i}", lambda i: f"bench{i}.event"]
        others = [{"name": f"i other {i}", "url": rec.url(f"/hook/o{i}"), "rateLimitEnabled":
                   False, "events": [pats[i % 4](i)]} for i in range(cfg["others"])]
        ev = cfg["events"]
        phases = {}
        for tag, extra in (("few", []), ("many", others)):
            node = self.xnode(work, f"i-{tag}", env)
            run["nodes"].append(node)
            create_many(node, match)
            node.api("POST", "/v1/events", {"type": "bench.warm", "data": {}})
            time.sleep(0.5)
            rss0 = rss_mb(node.pid)
            t = time.monotonic()
            if extra:
                create_many(node, extra)
                res["create_per_s"] = round(len(extra) / (time.monotonic() - t), 1)
                node.api("POST", "/v1/events", {"type": "bench.warm", "data": {}})
                time.sleep(0.5)
                res["rss_per_webhook_kb"] = round((rss_mb(node.pid) - rss0) * 1024 /
                                                  len(extra), 2)
            ph = phases[tag] = self.xload(node, rec, ev, cfg, ev * m)
            self.xcheck(ph, f"i {tag}", errors)
            ph["peak_rss_mb"] = round(node.rss_hwm_mb(), 1)
            self.xstop(node, errors)
        few, many = phases["few"], phases["many"]
        rate, bound = many["steady_per_s"], few["steady_per_s"]
        res.update({"events": ev, "webhooks": m + cfg["others"], "matching": m,
                    "deliveries": few["deliveries"] + many["deliveries"],
                    "expected_deliveries": 2 * ev * m,
                    "duplicates": few["duplicates"] + many["duplicates"],
                    "deliveries_per_s": rate, "ceiling_rps": bound,
                    "bound_of": f"the same with {m} webhooks",
                    "ratio": round(rate / bound, 3) if bound else None,
                    "ingest_events_per_s": many["ingest_events_per_s"],
                    "ingest_few_events_per_s": few["ingest_events_per_s"],
                    "ingest_ratio": round(many["ingest_events_per_s"] /
                                          few["ingest_events_per_s"], 3)
                    if few["ingest_events_per_s"] else None,
                    "cpu_s_per_1k": many["cpu_s_per_1k"],
                    "cpu_s_per_1k_few": few["cpu_s_per_1k"],
                    "peak_rss_mb": many["peak_rss_mb"], "peak_rss_few_mb": few["peak_rss_mb"]})

    # -- j: many endpoints
    def x_j(self, cfg, work, run, smoke, res, errors):
        """The same number of deliveries fanned out to `few` then to `endpoints` webhooks, each
        on its own loopback address (127.1.x.y); connections the receiver accepted per
        delivery."""
        rec = run["receiver"] = XReceiver(self.receiver_bin, work, ["--any-loopback", "1"])
        # idle connections sized for the endpoints, as g sizes HOOKD_MAX_INFLIGHT: a node that
        # delivers round-robin to 10,000 endpoints reuses a connection per endpoint only if it
        # may keep 10,000 (the default, 2,048, opens one per delivery here: --hookd-env
        # HOOKD_MAX_IDLE_CONNECTIONS=2048 measures that)
        env = dict({"HOOKD_MAX_IDLE_CONNECTIONS": str(cfg["endpoints"])}, **cfg["env"],
                   HOOKD_MAX_WEBHOOKS_PER_ORG="0", HOOKD_MAX_DELIVERIES_PER_EVENT="0",
                   HOOKD_MAX_DELIVERIES_PER_BATCH="0")
        total = cfg["deliveries"]
        phases = {}
        for tag, n in (("few", cfg["few"]), ("many", cfg["endpoints"])):
            node = self.xnode(work, f"j-{tag}", env)
            run["nodes"].append(node)
            create_many(node, [{"name": f"j {i}", "events": ["bench.event"],
                                "rateLimitEnabled": False,
                                "url": rec.url(f"/hook/{i}", f"127.1.{i // 250}.{i % 250 + 1}")}
                               for i in range(n)])
            ev = max(1, total // n)
            c = dict(cfg, batch=max(1, min(cfg["batch"], 20000 // n)))
            ph = phases[tag] = self.xload(node, rec, ev, c, ev * n)
            self.xcheck(ph, f"j {tag}", errors)
            st = ph["stats"]
            ph["conns_per_delivery"] = round(st["conns_used"] / st["distinct"], 4) \
                if st["distinct"] else None
            if st["rejected"]:
                errors.append(f"j: the receiver closed {st['rejected']} non-loopback conns")
            ph["peak_rss_mb"] = round(node.rss_hwm_mb(), 1)
            self.xstop(node, errors)
        few, many = phases["few"], phases["many"]
        rate, bound = many["steady_per_s"], few["steady_per_s"]
        res.update({"endpoints": cfg["endpoints"], "few": cfg["few"],
                    "deliveries": few["deliveries"] + many["deliveries"],
                    "expected_deliveries": few["expected"] + many["expected"],
                    "duplicates": few["duplicates"] + many["duplicates"],
                    "deliveries_per_s": rate, "ceiling_rps": bound,
                    "bound_of": f"the same to {cfg['few']} endpoints",
                    "ratio": round(rate / bound, 3) if bound else None,
                    "ingest_events_per_s": many["ingest_events_per_s"],
                    "conns_per_delivery": many["conns_per_delivery"],
                    "conns_per_delivery_few": few["conns_per_delivery"],
                    "cpu_s_per_1k": many["cpu_s_per_1k"], "cpu_s_per_1k_few": few["cpu_s_per_1k"],
                    "peak_rss_mb": many["peak_rss_mb"],
                    "max_idle_connections": int(env["HOOKD_MAX_IDLE_CONNECTIONS"])})


def xsmoke_check(res):
    """The smoke checks of g, h, i, j: the counts (every delivery arrived), the figures there;
    no timing."""
    errs = list(res.get("errors", []))
    if res.get("deliveries") is None or res.get("deliveries") < res.get("expected_deliveries",
                                                                        1 << 62):
        errs.append(f"deliveries {res.get('deliveries')} < {res.get('expected_deliveries')}")
    for k in ("deliveries_per_s", "ceiling_rps", "ratio", "peak_rss_mb"):
        if not isinstance(res.get(k), (int, float)):
            errs.append(f"{k} missing or not a number: {res.get(k)!r}")
    return errs

SMOKE_KEYS = {"scenario": str, "store": str, "redis": bool, "nodes": int, "deliveries": int,
              "deliveries_per_s": (int, float), "ingest_events_per_s": (int, float),
              "peak_rss_mb": (int, float), "ceiling_rps": (int, float), "ok": bool}


def smoke_check(res):
    """The smoke profile's checks on one result line (no timing): every key there with its
    type, every delivery arrived at least once, the counts add up. Returns error strings."""
    errs = list(res.get("errors", []))
    for k, t in SMOKE_KEYS.items():
        if not isinstance(res.get(k), t):
            errs.append(f"{k} missing or not {t}: {res.get(k)!r}")
    for k in ("p50_ms", "p99_ms", "max_ms", "ratio", "cpu_s_per_1k"):
        if k not in res:
            errs.append(f"{k} missing")
    if res.get("deliveries") != res.get("expected_deliveries"):
        errs.append(f"deliveries {res.get('deliveries')} != expected "
                    f"{res.get('expected_deliveries')}")
    if res.get("expected_deliveries") and res.get("store_success") != res.get("deliveries"):
        errs.append("store success count differs from the receiver's count")
    if res.get("ceiling_rps", 0) <= 0:
        errs.append("no ceiling measured")
    return errs


TABLE = [("scenario", "scenario"), ("system", "system"), ("store", "store"), ("redis", "redis"),
         ("nodes", "nodes"),
         ("deliveries", "deliveries"), ("deliveries/s", "deliveries_per_s"),
         ("ceiling req/s", "ceiling_rps"), ("ratio", "ratio"),
         ("ingest events/s", "ingest_events_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
         ("max ms", "max_ms"), ("drain s", "drain_s"), ("peak RSS MB", "peak_rss_mb"),
         ("CPU s / 1k", "cpu_s_per_1k"), ("ok", "ok")]


def table(lines):
    """Result lines (JSON) as a Markdown table; CPU s / 1k is per 1,000 events in d."""
    out = ["| " + " | ".join(h for h, _ in TABLE) + " |",
           "|" + "---|" * len(TABLE)]
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "scenario" not in r:
            continue
        r.setdefault("system", "hookd")  # lines from before --system
        cells = []
        for _, k in TABLE:
            v = r.get(k)
            if v is None or v == "":
                cells.append("–")
            elif isinstance(v, bool):
                cells.append(("yes" if v else "no") if k == "redis" else ("ok" if v else "FAIL"))
            elif isinstance(v, float):
                cells.append(f"{v:,.3f}" if k == "ratio" else
                             f"{v:,.1f}" if v >= 10 or k.endswith("_mb") else f"{v:,.3g}")
            elif isinstance(v, int):
                cells.append(f"{v:,}")
            else:
                cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def compare(lines):
    """hookd's result lines against the reference stack's (--system reference) of the same
    scenario, as a Markdown table: for each hookd line, its deliveries/s as a multiple of the
    reference's (the median of its lines, when there are several), and the reference's CPU per
    1,000 deliveries as a multiple of hookd's, counting only the system's own processes and
    then with PostgreSQL's and Redis's. Empty when no line is the reference's."""
    rows = [json.loads(x) for x in lines if x.strip().startswith("{")]
    rows = [r for r in rows if r.get("scenario") and r.get("ok") and r.get("deliveries")]
    refs = {}
    for r in rows:
        if r.get("system") == "reference":
            refs.setdefault(r["scenario"], []).append(r)
    if not refs:
        return ""

    def cpu_all(r):  # CPU seconds per 1,000 deliveries, the backends included (None: unknown)
        if r.get("cpu_s") is None:
            return None
        return (r["cpu_s"] + r.get("pg_cpu_s", 0) + r.get("redis_cpu_s", 0)) * 1000 / \
            r["deliveries"]

    def med(v):
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else None

    def pair(h, ref, fmt):  # "h / ref" and the multiple ref / h, or dashes
        if h is None or ref is None or not h:
            return "– | –"
        return f"{h:{fmt}} / {ref:{fmt}} | {ref / h:.1f}"

    out = ["| scenario | hookd on | hookd deliveries/s | reference deliveries/s | hookd × |"
           " CPU s / 1k hookd / reference | × | with PG + Redis: hookd / reference | × |"
           " peak RSS MB hookd / reference |", "|" + "---|" * 10]
    for r in rows:
        if r.get("system", "hookd") != "hookd" or r["scenario"] not in refs:
            continue
        rs = refs[r["scenario"]]
        dps = med([x["deliveries_per_s"] for x in rs])
        c1 = med([x.get("cpu_s_per_1k") for x in rs])
        on = r["store"] + (" + redis" if r.get("redis") else "") + \
            (f", {r['nodes']} nodes" if r.get("nodes", 1) > 1 else "")
        out.append(f"| {r['scenario']} | {on} | {r['deliveries_per_s']:,.0f} | {dps:,.0f} | "
                   f"{r['deliveries_per_s'] / dps:.1f} | "
                   f"{pair(r.get('cpu_s_per_1k'), c1, '.3f')} | "
                   f"{pair(cpu_all(r), med([cpu_all(x) for x in rs]), '.3f')} | "
                   f"{r['peak_rss_mb']:.1f} / {med([x['peak_rss_mb'] for x in rs]):.1f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("scenario", choices=ORDER + ["k", *XSCEN, "smoke", "all", "machine", "table"])
    ap.add_argument("--store", choices=["sqlite", "pg"],
                    help="sqlite (default) or pg: a private PostgreSQL (tests/lib/servers.py)")
    ap.add_argument("--nodes", type=int, choices=[1, 2],
                    help="hookd processes sharing the store (2 needs --store pg)")
    ap.add_argument("--redis", action="store_true", default=None,
                    help="REDIS_URL: the schedule in Redis (all: only with Redis)")
    ap.add_argument("--no-redis", dest="redis", action="store_false",
                    help="all: only without Redis")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the event counts (e.g. 0.02 for a quick e)")
    ap.add_argument("--seconds", type=int, help="c: length of the fixed-rate run (30)")
    ap.add_argument("--down-s", type=int, help="f: seconds the receiver answers 500 (60)")
    ap.add_argument("--conns", type=int, help="loadgen connections (scenario's default)")
    ap.add_argument("--batch", type=int, help="events per ingest request through "
                    "/v1/events/batch (0 = one event per POST /v1/events)")
    ap.add_argument("--build-dir", help="where hookd and bench/ are built (default "
                    "build-bench, configured Release and built if needed)")
    ap.add_argument("--workdir", default=None, help="parent of the temp dirs (default $TMPDIR)")
    ap.add_argument("--ceiling-seconds", type=int, default=3, help="length of the wrk run (3)")
    ap.add_argument("--ceiling-conns", type=int, default=64, help="wrk connections (64)")
    ap.add_argument("--ceiling-threads", type=int, default=1, help="wrk threads (1)")
    ap.add_argument("--hookd-env", action="append", metavar="NAME=VALUE",
                    help="extra hookd setting (repeatable), recorded in the line")
    ap.add_argument("--system", choices=["hookd", "reference"], default="hookd",
                    help="the system under test: hookd, or the seed tutorial's Node + Bull + "
                    "Redis + PostgreSQL stack of bench/reference/ (scenario b; REF_* settings "
                    "through --hookd-env)")
    ap.add_argument("--label", help="free text recorded in each line (e.g. what was changed)")
    ap.add_argument("--perf", metavar="FILE",
                    help="perf record hookd's measured phase (dwarf call graphs) into FILE")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    ap.add_argument("--requests", type=int, default=300,
                    help="k: requests per kind of page (300)")
    ap.add_argument("--limit", type=int, default=100, help="k: rows a page (100)")
    args = ap.parse_args()

    if args.scenario == "machine":
        print(json.dumps(machine_info()))
        return 0
    if args.scenario == "table":
        lines = sys.stdin.readlines()
        print(table(lines))
        cmp = compare(lines)
        if cmp:  # hookd against the reference stack (--system reference lines)
            print("\n" + cmp)
        return 0
    if not args.build_dir:
        args.build_dir = os.path.join(ROOT, "build-bench")
        if not os.path.exists(os.path.join(args.build_dir, "CMakeCache.txt")):
            subprocess.run(["cmake", "-S", ROOT, "-B", args.build_dir,
                            "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", args.build_dir, "-j", str(os.cpu_count() or 2),
                        "--target", "hookd", "receiver", "loadgen"], check=True,
                       stdout=subprocess.DEVNULL)

    try:
        bench = XBench(args)
    except BenchError as e:
        print(json.dumps({"scenario": args.scenario, "ok": False, "errors": [str(e)]}))
        return 1

    if args.scenario == "smoke":
        plan = [(s, "sqlite", 1, False, True) for s in [*SMOKE, *XSMOKE]]
    elif args.scenario == "all":
        plan = []
        for store, nodes, redis in COMBOS:
            if args.store and store != args.store:
                continue
            if args.nodes and nodes != args.nodes:
                continue
            if args.redis is not None and redis != args.redis:
                continue
            plan += [(s, store, nodes, redis, False) for s in ORDER if not (s == "d" and redis)]
    else:
        plan = [(args.scenario, args.store or "sqlite", args.nodes or 1, bool(args.redis),
                 False)]

    failed = 0
    for name, store, nodes, redis, smoke in plan:
        try:
            res = bench.run(name, store, nodes, redis, smoke=smoke)
        except BenchError as e:
            res = {"scenario": name, "store": store, "redis": redis, "nodes": nodes,
                   "ok": False, "errors": [str(e)]}
        if smoke and res.get("ok"):
            errs = (xsmoke_check if name in XSMOKE else smoke_check)(res)
            if errs:
                res["ok"] = False
                res["errors"] = errs
        print(json.dumps(res), flush=True)
        failed += not res.get("ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
