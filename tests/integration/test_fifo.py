"""Per-endpoint FIFO ordering (docs/API.md "Ordering", SPEC §7 `ordering`).

A webhook with `ordering: "fifo"` has at most one attempt in flight, and delivery n+1 is not
attempted before delivery n ended (success or given up); a retrying head holds the rest. The
receiver here fails 20% of attempts at random and records every attempt's start and end: the
first successful arrival of each event must be in ingest order and no two attempts may overlap,
on one node, across kill -9 and a restart, and (PostgreSQL) with two nodes claiming from one
database. Runs on SQLite and PostgreSQL (HOOKD_TEST_STORE=pg), with Redis (HOOKD_TEST_REDIS=1).
"""
import hashlib
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SLOW, wait_until

N = int(os.environ.get("HOOKD_FIFO_EVENTS", 1000 if SLOW <= 1 else 300))
ENV = {"HOOKD_POLL_INTERVAL_MS": "50", "HOOKD_LOG_LEVEL": "info"}


class FlakyReceiver:
    """Answers 500 to a random fail_rate of attempts (seeded), 200 otherwise; records each
    attempt (start, end, seq, ok) and whether two ever overlapped."""

    def __init__(self, fail_rate=0.2, seed=19):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.fail_rate = fail_rate
        self.attempts = []
        self.inflight = 0
        self.overlaps = 0
        self.first_ok = []  # seqs in the order of their first success
        self.ok_seen = set()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                t0 = time.monotonic()
                with outer.lock:
                    outer.inflight += 1
                    if outer.inflight > 1:
                        outer.overlaps += 1
                    fail = outer.rng.random() < outer.fail_rate
                time.sleep(0.002)  # an attempt lasts long enough for an overlap to show
                seq = json.loads(body)["data"]["seq"]
                with outer.lock:
                    outer.inflight -= 1
                    outer.attempts.append((t0, time.monotonic(), seq, not fail))
                    if not fail and seq not in outer.ok_seen:
                        outer.ok_seen.add(seq)
                        outer.first_ok.append(seq)
                code = 500 if fail else 200
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.srv.server_address[1]}/fifo"

    def wait_all(self, n, timeout, what):
        """Waits until n distinct events arrived with success, or fails saying how many did."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.ok_seen) >= n:
                    return
            time.sleep(0.05)
        pytest.fail(f"{what}: {len(self.ok_seen)} of {n} after {timeout * SLOW:.0f}s")

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def flaky():
    r = FlakyReceiver()
    yield r
    r.close()


def fifo_webhook(h, url, events=("fifo.*",)):
    return h.create_webhook(url, events=events, ordering="fifo", retrySchedule=["20ms"],
                            maxRetries=50)


def ingest_in_order(h, n, batch=100):
    """Ingests events seq 0..n-1 in that order (sequential batches)."""
    for off in range(0, n, batch):
        evs = [{"type": "fifo.ev", "data": {"seq": off + k}} for k in range(min(batch, n - off))]
        r = h.api("POST", "/api/webhook/v1/events/batch", {"events": evs}, timeout=60)
        assert r.status_code == 202, r.text


def check_fifo(rcv, n):
    assert rcv.first_ok == list(range(n)), "first successful arrivals out of ingest order"
    assert rcv.overlaps == 0, f"{rcv.overlaps} attempts overlapped another"
    att = sorted(rcv.attempts)
    for a, b in zip(att, att[1:]):
        assert b[0] >= a[1] - 0.0005, f"attempt {b} started before {a} ended"
    assert any(not a[3] for a in rcv.attempts), "the receiver never failed"


def test_fifo_delivers_in_ingest_order_one_at_a_time(hookd, flaky):
    h = hookd(**ENV)
    wh = fifo_webhook(h, flaky.url())
    assert wh["ordering"] == "fifo"
    ingest_in_order(h, N)
    flaky.wait_all(N, 240, "every event delivered once")
    check_fifo(flaky, N)
    h.check_sanitizers()


def test_fifo_holds_across_kill9_and_restart(hookd, flaky):
    h = hookd(**ENV)
    fifo_webhook(h, flaky.url())
    ingest_in_order(h, N)
    wait_until(lambda: len(flaky.ok_seen) >= N // 3, timeout=120, what="a third delivered")
    h.kill9()
    time.sleep(0.2)
    h.restart()
    flaky.wait_all(N, 240, "every event delivered after restart")
    check_fifo(flaky, N)


def test_fifo_with_redis_next_head_goes_at_once_not_at_the_next_poll(request, hookd, flaky):
    """With REDIS_URL (always here, whatever HOOKD_TEST_REDIS says), the next head of a FIFO
    line is scheduled when the head's result is committed: 20 events go out in order within a
    time that one delivery per poll (5 s) could never reach; before, each waited for a sweep
    and the poll after it. Retries (20% of attempts fail) keep their place."""
    from conftest import REDIS_PREFIX_PER_STORE
    rs = request.getfixturevalue("redis_server")
    h = hookd(REDIS_URL=rs.url(), HOOKD_REDIS_PREFIX=REDIS_PREFIX_PER_STORE,
              HOOKD_POLL_INTERVAL_MS="5000", HOOKD_LOG_LEVEL="info")
    fifo_webhook(h, flaky.url())
    n = 20
    t0 = time.monotonic()
    ingest_in_order(h, n)
    flaky.wait_all(n, 5, "20 FIFO events with Redis (one per 5 s poll would take 100 s)")
    took = time.monotonic() - t0
    check_fifo(flaky, n)
    assert took < 5 * SLOW, f"took {took:.1f}s"
    # the schedule was Redis's: this hookd wrote its marker under its prefix (conftest's)
    store = h.env.get("PG_URL") or h.env["HOOKD_DB"]
    prefix = "t" + hashlib.sha1(store.encode()).hexdigest()[:16] + ":"
    assert rs.command("GET", prefix + "swept"), "hookd never used Redis"


@pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg",
                    reason="two nodes share a PostgreSQL store (HOOKD_TEST_STORE=pg)")
def test_fifo_holds_with_two_postgres_nodes(hookd, flaky):
    a = hookd(HOOKD_USER_AGENT="node-a", HOOKD_QUEUE_WINDOW="100", **ENV)
    b = hookd(start=False, HOOKD_USER_AGENT="node-b", HOOKD_QUEUE_WINDOW="100", **ENV)
    b.env["PG_URL"] = a.env["PG_URL"]
    b.start()
    assert a.env["HOOKD_NODE_ID"] != b.env["HOOKD_NODE_ID"]
    fifo_webhook(a, flaky.url())
    ingest_in_order(a, N)
    flaky.wait_all(N, 240, "every event delivered by two nodes")
    check_fifo(flaky, N)


def test_parallel_webhook_beside_a_failing_fifo_one_is_not_slowed(hookd, flaky, receiver):
    h = hookd(**ENV)
    flaky.fail_rate = 1.0  # the FIFO endpoint fails every attempt
    wh = h.create_webhook(flaky.url(), events=["fifo.*"], ordering="fifo",
                          retrySchedule=["200ms"], maxRetries=50)
    par = h.create_webhook(receiver.url("/par"), events=["par.*"])
    assert par["ordering"] == "parallel"
    ingest_in_order(h, 50)
    evs = [{"type": "par.ev", "data": {"seq": k}} for k in range(300)]
    t0 = time.monotonic()
    r = h.api("POST", "/api/webhook/v1/events/batch", {"events": evs}, timeout=60)
    assert r.status_code == 202, r.text
    receiver.wait(300, path="/par", timeout=10)
    took = time.monotonic() - t0
    assert took < 5 * SLOW, f"the parallel webhook took {took:.1f}s"
    time.sleep(0.5 * SLOW)
    with flaky.lock:
        seqs = {a[2] for a in flaky.attempts}
    assert seqs == {0}, f"a failing FIFO head let others through: {sorted(seqs)[:10]}"
    assert flaky.overlaps == 0
    # the head gives up (maxRetries) -> the next one goes: set a short schedule and let it end
    r = h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"ordering": "bogus"})
    assert r.status_code == 422 and "ordering" in r.text, r.text


def test_ordering_on_a_database_of_the_previous_release(hookd, receiver, flaky, monkeypatch):
    """The migration adds `ordering` to a populated database of the previous release: its
    webhooks read `parallel`, and one switched to fifo by PATCH follows it from the next claim
    (its backlog included)."""
    import conftest
    from servers import previous_hookd
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h = hookd(**ENV)
    old = h.create_webhook(receiver.url("/old"), events=["old.*"])
    paused = h.create_webhook(flaky.url(), events=["fifo.*"], status="paused",
                              retrySchedule=["20ms"], maxRetries=50)
    h.ingest("old.ev")
    receiver.wait(1, path="/old")
    ingest_in_order(h, 100)  # held: the webhook is paused
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    h.start()
    assert h.webhook(old["id"])["ordering"] == "parallel"
    r = h.api("PATCH", f"/api/webhook/v1/{paused['id']}", {"ordering": 7})
    assert r.status_code == 422 and "ordering must be" in r.text, r.text
    r = h.api("PATCH", f"/api/webhook/v1/{paused['id']}", {"ordering": "fifo", "status": "active"})
    assert r.status_code == 200 and r.json()["ordering"] == "fifo", r.text
    assert h.webhook(paused["id"])["ordering"] == "fifo"
    flaky.wait_all(100, 120, "the backlog of the previous release delivered")
    check_fifo(flaky, 100)
