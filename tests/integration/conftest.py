"""Integration harness: the real hookd binary against real receivers (and, with
HOOKD_TEST_STORE=pg, a real PostgreSQL started in a temp dir).

Fixtures:
  receiver  -- an HTTP/1.1 server on 127.0.0.1 that records every request and answers by plan
  hookd     -- a factory: hookd(**env) starts a hookd on a free port with a fresh store and a
               bootstrap key, waits for /health, and is stopped (and checked for sanitizer
               reports) at teardown
The binary is $HOOKD_BIN (default: build/hookd). Tests never use a mock of hookd's parts.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

ROOT = os.environ.get("HOOKD_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOKD_BIN = os.environ.get("HOOKD_BIN") or os.path.join(ROOT, "build", "hookd")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
SLOW = float(os.environ.get("HOOKD_TEST_SLOWDOWN", "1"))  # >1 under sanitizers/valgrind
# every hookd runs under valgrind (scripts/test.sh --valgrind): tests whose assertions are
# timings (a latency bucket, a rate ratio) skip, since a 10-50x slower hookd changes the timing
# they measure, not only how long to wait for it
VALGRIND = "valgrind" in os.environ.get("HOOKD_TEST_WRAPPER", "")
UNDER_VALGRIND = "asserts timings, which valgrind's slowdown changes"

from servers import free_port, read_log  # noqa: E402  (tests/lib, on the path just above)


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value; returns it, or fails the test."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout * SLOW:.1f}s waiting for {what} (last: {last!r})")


# ---- receiver ---------------------------------------------------------------------------------

class Received:
    def __init__(self, path, headers, body, conn_id):
        self.path = path
        self.headers = headers  # lowercased names
        self.body = body        # bytes
        self.conn_id = conn_id
        self.status = None
        self.at = time.time()

    @property
    def json(self):
        return json.loads(self.body)


def send_queues(port, side="sport"):
    """The kernel send queues (bytes written and not acknowledged, the skmem w field of
    `ss -tm`) of the established TCP connections whose local (side="sport") or remote
    ("dport") port is port, as a list."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", side, "=", f":{port}"],
                         capture_output=True, text=True, check=True).stdout
    return [int(w) for w in re.findall(r"skmem:\(\S*?,w(\d+),", out)]


class Receiver:
    """Records requests; answers from a per-path plan of responses, then the default.

    A response is a dict: status (default 200), headers (dict), body (str/bytes),
    delay (seconds before answering), hang (never answer; the connection stays open),
    trickle (seconds between the bytes of the response: a slow endpoint).
    port: listen on this port (to bring a stopped receiver back on the same URL).
    tls: an ssl.SSLContext (server side): the receiver is an https endpoint.
    """

    def __init__(self, port=0, tls=None):
        self.requests = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.plans = {}
        self.default = {"status": 200, "body": "ok"}
        self._conn_seq = 0
        self._socks = []  # accepted connections, cut by close() as a dead endpoint would
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body are two writes: without this, Nagle holds the body back
                # until the client's delayed ACK (~40 ms per request on keep-alive)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with receiver.lock:
                    receiver._conn_seq += 1
                    self.conn_id = receiver._conn_seq
                    receiver._socks.append(self.connection)

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.conn_id)
                with receiver.cond:
                    receiver.requests.append(rec)
                    plan = receiver.plans.get(self.path)
                    resp = plan.pop(0) if plan else receiver.default
                    # the status answered (None: never answered), so tests can tell
                    # deliveries from failed attempts
                    rec.status = None if resp.get("hang") else resp.get("status", 200)
                    receiver.cond.notify_all()
                if resp.get("hang"):
                    receiver._stop.wait(resp.get("hang") if resp.get("hang") is not True else 3600)
                    self.close_connection = True
                    return
                if resp.get("delay"):
                    time.sleep(resp["delay"])
                payload = resp.get("body", "")
                if isinstance(payload, str):
                    payload = payload.encode()
                if resp.get("trickle"):
                    head = (f"HTTP/1.1 {resp.get('status', 200)} OK\r\nContent-Length: "
                            f"{len(payload)}\r\n\r\n").encode() + payload
                    try:
                        for i in range(len(head)):
                            self.wfile.write(head[i:i + 1])
                            self.wfile.flush()
                            if receiver._stop.wait(resp["trickle"]):
                                break
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                self.send_response(resp.get("status", 200))
                for k, v in (resp.get("headers") or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            # a listen backlog for the connections a test's hookds open at once: with the
            # default of 5 the kernel drops connections it completed, and an attempt waits,
            # connected and unread, until its timeout (a two-node test saw one 20 s timeout)
            request_queue_size = 256

        self.server = Server(("127.0.0.1", port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def plan(self, path, responses):
        """Answers the next requests to path with these responses, in order."""
        with self.lock:
            self.plans.setdefault(path, []).extend(responses)

    def count(self, path=None):
        with self.lock:
            return len([r for r in self.requests if path is None or r.path == path])

    def received(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait(self, n, path=None, timeout=10.0):
        """Waits until at least n requests (to path) arrived; returns them."""
        deadline = time.monotonic() + timeout * SLOW
        with self.cond:
            while True:
                got = [r for r in self.requests if path is None or r.path == path]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"receiver got {len(got)} requests to {path or 'any path'}, wanted {n}")
                self.cond.wait(left)

    def close(self):
        """Stops listening and cuts every open connection: the endpoint is gone."""
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for c in self._socks:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ---- hookd --------------------------------------------------------------------------------------

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "LeakSanitizer",
                   "runtime error:", "==ERROR", "Invalid read", "Invalid write", "definitely lost")
SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def check_no_sanitizer_report(text, what="hookd"):
    """Fails the test if text (a hookd's output) holds a sanitizer or valgrind report."""
    for mark in SANITIZER_MARKS:
        if mark in text:
            i = text.index(mark)
            pytest.fail(f"sanitizer report in {what}'s output:\n{text[max(0, i - 200):i + 4000]}")


def run_hookd(args, env=None, cwd=None, timeout=60.0, **kw):
    """Runs the hookd binary once to completion (a CLI command, or a start-up that must stop by
    itself) with env (nothing else of the caller's environment but PATH and the sanitizer
    options), and returns the CompletedProcess (text output). A sanitizer report in its stdout
    or stderr fails the test: an ASan abort also exits 1, so the exit code alone cannot tell a
    refusal from a crash."""
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    e.update({k: os.environ[k] for k in SANITIZER_VARS if k in os.environ})
    e.update(env or {})
    p = subprocess.run([HOOKD_BIN, *args], env=e, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout * SLOW, **kw)
    check_no_sanitizer_report(p.stdout + p.stderr, "hookd " + " ".join(args))
    return p


class Hookd:
    def __init__(self, workdir, env=None, store_env=None, args=None):
        self.workdir = workdir
        self.port = free_port()
        self.key = "test_" + secrets.token_hex(12)
        self.org = "org_test"
        self.args = args or []
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            "HOOKD_DB": os.path.join(workdir, "hookd.db"),
            "PORT": str(self.port),
            "HOOKD_HOST": "127.0.0.1",
            "HOOKD_BOOTSTRAP_KEY": self.key,
            "HOOKD_BOOTSTRAP_ORG": self.org,
            "HOOKD_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            "HOOKD_RETRY_SCHEDULE": "300ms,600ms,1s",
            "HOOKD_RETRY_JITTER": "0",
            "HOOKD_POLL_INTERVAL_MS": "100",
            "HOOKD_LOG_FORMAT": "json",
            "HOOKD_LOG_LEVEL": "debug",
            "HOOKD_SHUTDOWN_TIMEOUT_MS": "5000",
        }
        for k in SANITIZER_VARS:
            if k in os.environ:
                self.env[k] = os.environ[k]
        self.env.update(store_env or {})
        self.env.update({k: str(v) for k, v in (env or {}).items()})
        self.proc = None
        # exits the test did not ask for ("exited with 1 before it was stopped"); teardown
        # fails on any: a hookd that crashed mid-test must not pass
        self.bad_exits = []
        self.log_path = os.path.join(workdir, f"hookd-{self.port}.log")
        self.logs_seen = ""
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()

    # lifecycle
    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        cmd = os.environ.get("HOOKD_TEST_WRAPPER", "").split() + [HOOKD_BIN] + self.args + ["serve"]
        env = dict(self.env)
        if env.get("HOOKD_REDIS_PREFIX") == REDIS_PREFIX_PER_STORE:
            # one Redis schedule per store, as in production: nodes sharing a database share it
            store = env.get("PG_URL") or env["HOOKD_DB"]
            env["HOOKD_REDIS_PREFIX"] = "t" + hashlib.sha1(store.encode()).hexdigest()[:16] + ":"
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.workdir, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=20.0):
        def ok():
            if self.proc.poll() is not None:
                pytest.fail(f"hookd exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                return requests.get(self.base + "/api/webhook/health", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ok, timeout, 0.05, "hookd to become healthy")

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Stops hookd with sig; returns its exit code (-9 for SIGKILL). Every exit is checked
        at teardown: one before this call (a crash) must have been 0, one after SIGKILL is the
        test's own doing, and any other signal must make hookd exit 0."""
        if not self.proc:
            return None
        if self.proc.poll() is not None:
            self._note_exit(None)
            return self.proc.returncode
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("hookd did not stop in time")
        self._note_exit(sig)
        self.logf.close()
        self.session.close()
        self.session = requests.Session()
        return self.proc.returncode

    def _note_exit(self, sig):
        """Records the exit of self.proc once, as bad unless it was 0 or the SIGKILL sent."""
        if getattr(self.proc, "hk_noted", False):
            return
        self.proc.hk_noted = True
        code = self.proc.returncode
        if code == 0 or (sig == signal.SIGKILL and code == -signal.SIGKILL):
            return
        how = "by itself (a crash?)" if sig is None else f"after signal {sig}"
        self.bad_exits.append(f"hookd (pid {self.proc.pid}) exited with {code} {how}")

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, **env):
        self.stop()
        self.env.update({k: str(v) for k, v in env.items()})
        return self.start()

    def logs(self):
        return read_log(self.log_path)

    def log_events(self):
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def check_sanitizers(self):
        check_no_sanitizer_report(self.logs())

    # API
    def api(self, method, path, body=None, key=True, headers=None, raw=None, timeout=30):
        h = {}
        if key is True:
            h["x-api-key"] = self.key
        elif key:
            h["x-api-key"] = key
        h.update(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body)
            h.setdefault("content-type", "application/json")
        url = path if path.startswith("http") else self.base + path
        return self.session.request(method, url, data=data, headers=h, timeout=timeout * SLOW)

    def create_webhook(self, url, events=("*",), **fields):
        body = {"name": fields.pop("name", "test hook"), "url": url, "events": list(events)}
        body.setdefault("rateLimitEnabled", False)
        body.update(fields)
        r = self.api("POST", "/api/webhook/v1", body)
        assert r.status_code == 201, r.text
        return r.json()

    def ingest(self, type_="test.event", data=None, expect=202, **extra):
        body = {"type": type_, "data": data if data is not None else {"n": 1}}
        body.update(extra)
        r = self.api("POST", "/api/webhook/v1/events", body)
        assert r.status_code == expect, r.text
        return r.json()

    def deliveries(self, webhook_id, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        r = self.api("GET", f"/api/webhook/v1/{webhook_id}/deliveries?limit=100&{qs}")
        assert r.status_code == 200, r.text
        return r.json()["deliveries"]

    def delivery(self, delivery_id):
        r = self.api("GET", f"/api/webhook/v1/deliveries/{delivery_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def webhook(self, webhook_id):
        r = self.api("GET", f"/api/webhook/v1/{webhook_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_delivery(self, webhook_id, status, n=1, timeout=15.0):
        """Waits until n deliveries of the webhook have this status; returns them."""
        def check():
            ds = [d for d in self.deliveries(webhook_id) if d["status"] == status]
            return ds if len(ds) >= n else None
        return wait_until(check, timeout, 0.05, f"{n} deliveries {status}")

    def cli(self, *args, env=None, check=True):
        """Runs `hookd args` with this hookd's environment (see run_hookd); check: exit 0."""
        e = dict(self.env)
        e.update(env or {})
        p = run_hookd(args, env=e, cwd=self.workdir)
        if check:
            assert p.returncode == 0, p.stderr
        return p


def store_env_for(request, tmp_path=None):
    """The store the suite runs against: HOOKD_TEST_STORE=sqlite (default) or pg; with
    HOOKD_TEST_REDIS=1 also Redis (REDIS_URL, a fresh key prefix for each hookd)."""
    kind = os.environ.get("HOOKD_TEST_STORE", "sqlite")
    redis = redis_env_for(request)
    if kind == "sqlite":
        return redis
    if kind == "pg":
        pg = request.getfixturevalue("pg_server")
        # a stable node id, as an operator sets one per node: a restarted hookd takes its own
        # leases back at once instead of waiting for them to expire (docs/POSTGRES.md)
        return {"PG_URL": pg.new_database(), "HOOKD_NODE_ID": "test-" + secrets.token_hex(6),
                **redis}
    raise RuntimeError(f"unknown HOOKD_TEST_STORE {kind}")


def redis_on():
    return os.environ.get("HOOKD_TEST_REDIS", "") not in ("", "0")


REDIS_PREFIX_PER_STORE = "@store"  # Hookd.start derives the prefix from PG_URL / HOOKD_DB


def redis_env_for(request):
    """REDIS_URL when the suite runs with HOOKD_TEST_REDIS=1, with a key prefix per store (so
    nodes started on one database share one schedule, and nothing else does)."""
    if not redis_on():
        return {}
    rs = request.getfixturevalue("redis_server")
    return {"REDIS_URL": rs.url(), "HOOKD_REDIS_PREFIX": REDIS_PREFIX_PER_STORE}


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server per pytest worker (no persistence); each hookd gets its own prefix."""
    from servers import RedisServer
    rs = RedisServer()
    rs.start()
    yield rs
    rs.cleanup()


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL per pytest worker (session scope under xdist), a database per test."""
    from servers import PgServer
    pg = PgServer()
    pg.start()
    yield pg
    pg.cleanup()


@pytest.fixture
def hookd(request, tmp_path):
    """Factory: hookd(**env) -> a started Hookd (pass start=False to only prepare it)."""
    made = []
    request.node.hookds = made  # for pytest_runtest_makereport: their logs on a failure

    def make(start=True, args=None, **env):
        workdir = tmp_path / f"hookd{len(made)}"
        workdir.mkdir()
        h = Hookd(str(workdir), env=env, store_env=store_env_for(request, tmp_path), args=args)
        made.append(h)
        if start:
            h.start()
        return h

    yield make
    _teardown(made)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the last lines of every hookd log it made (the hookd fixture), so
    that a failure seen once in a loaded CI run can be read afterwards."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for h in getattr(item, "hookds", []):
            rep.sections.append((f"hookd log {os.path.basename(h.log_path)} (last 6000 chars)",
                                 h.logs()[-6000:]))


def _teardown(made):
    """Stops every hookd still running; fails if any exit (now or during the test) was not 0
    or a SIGKILL the test sent, or if a sanitizer reported anything in any hookd's output."""
    for h in made:  # all of them first: a failure below must not leave one running
        if h.proc:
            h.stop()
    for h in made:
        h.check_sanitizers()  # first: an ASan abort is also an exit with 1
        if h.bad_exits:
            pytest.fail("; ".join(h.bad_exits) + f":\n{h.logs()[-4000:]}")


@pytest.fixture(scope="module")
def shared_receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def shared_hookd(request, tmp_path_factory):
    """One hookd for a whole module, for tests that only read or validate."""
    workdir = tmp_path_factory.mktemp("shared")
    h = Hookd(str(workdir), store_env=store_env_for(request))
    h.start()
    yield h
    _teardown([h])


# ---- signatures (computed independently of hookd, from the SPEC) -------------------------------

def standard_key(secret):
    s = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(s, validate=True)
    except Exception:
        return secret.encode()


def expect_standard(secret, msg_id, ts, body):
    mac = hmac.new(standard_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def expect_reloop(secret, ts, body):
    return hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def expect_sha256(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
