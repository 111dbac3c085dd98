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
  smoke   tiny a, b and d: checks the counts (the ctest test bench.smoke), asserts no timing
  machine the machine's figures (CPUs, model, RAM, kernel, fdatasync latency) as one line
  table   reads result lines on stdin, prints them as the Markdown table of BENCHMARKS.md
  all     every scenario on every store/queue/node combination (or those chosen by options)

  bench/run.py b [--scale 0.1] [--store sqlite|pg] [--nodes 1|2] [--redis] [--build-dir DIR]
                 [--hookd-env NAME=VALUE ...] [--perf perf.data] [--keep]

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
            total = store_count(node, "SELECT count(*) FROM webhook_delivery WHERE status = "
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
        cfg = self.config(name, smoke)
        res = {"scenario": name, "store": store, "redis": redis, "nodes": nodes}
        work = tempfile.mkdtemp(prefix=f"hookd-bench-{name}-", dir=self.args.workdir)
        run = {"receiver": None, "procs": [], "servers": [], "perf": None}
        try:
            run["receiver"] = Receiver(self.receiver_bin, work)
            run["procs"], run["servers"] = self.start_nodes(work, store, nodes, redis,
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


TABLE = [("scenario", "scenario"), ("store", "store"), ("redis", "redis"), ("nodes", "nodes"),
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("scenario", choices=ORDER + ["k", "smoke", "all", "machine", "table"])
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
        print(table(sys.stdin))
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
        bench = Bench(args)
    except BenchError as e:
        print(json.dumps({"scenario": args.scenario, "ok": False, "errors": [str(e)]}))
        return 1

    if args.scenario == "smoke":
        plan = [(s, "sqlite", 1, False, True) for s in SMOKE]
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
            errs = smoke_check(res)
            if errs:
                res["ok"] = False
                res["errors"] = errs
        print(json.dumps(res), flush=True)
        failed += not res.get("ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
