"""Liveness and readiness (docs/OPERATIONS.md, "Probes"): GET /api/webhook/health/live answers
200 {"status":"ok"} whenever the process answers, whatever its dependencies say;
GET /api/webhook/health/ready has the checks and body of /api/webhook/health (200, or 503
naming the failing check) and is also 503 while hookd drains after SIGTERM, while the listener
stays open. /api/webhook/health itself is unchanged. Neither needs an API key.

The store outage needs PostgreSQL (HOOKD_TEST_STORE=pg, the harness's private server stopped and
started again); the Redis and NATS outages use a redis-server and a nats-server of the test's
own (NatsServer of test_nats.py); the drain runs on either store.
"""
import os
import shutil
import signal
import time

import pytest
import requests

from conftest import SLOW, wait_until
from servers import RedisServer

LIVE = "/api/webhook/health/live"
READY = "/api/webhook/health/ready"
HEALTH = "/api/webhook/health"


def probe(h, path, timeout=3.0):
    """(status, body) of an unauthenticated GET, or (None, error text) without an answer."""
    try:
        r = requests.get(h.base + path, timeout=timeout * SLOW)
        return r.status_code, r.json()
    except (requests.RequestException, ValueError) as e:
        return None, str(e)


def test_live_and_ready_answer_without_a_key(hookd):
    h = hookd()
    assert probe(h, LIVE) == (200, {"status": "ok"})
    code, body = probe(h, READY)
    assert code == 200, body
    assert body["status"] == "ok"
    assert body["checks"] == {"store": "ok", "queue": "ok", "nats": "disabled"}
    code, health = probe(h, HEALTH)
    assert code == 200 and set(health) == set(body), (health, body)  # the same document
    # a wrong key is not looked at
    r = requests.get(h.base + READY, headers={"Authorization": "Bearer nope_nope_nope_nope"},
                     timeout=5 * SLOW)
    assert r.status_code == 200, r.text
    # GET only
    assert requests.post(h.base + LIVE, timeout=5 * SLOW).status_code == 405


@pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg",
                    reason="stopping the store needs PostgreSQL (HOOKD_TEST_STORE=pg)")
def test_store_down_live_200_ready_and_health_503(hookd, pg_server):
    h = hookd()
    pg_server.stop()
    try:
        def ready_503():
            code, body = probe(h, READY, timeout=5)
            return body if code == 503 else None
        body = wait_until(ready_503, 15, 0.2, "ready 503 with PostgreSQL stopped")
        assert body["checks"]["store"] == "down" and body["status"] == "degraded", body
        code, health = probe(h, HEALTH, timeout=5)
        assert code == 503 and health["checks"]["store"] == "down", health
        for _ in range(3):
            assert probe(h, LIVE) == (200, {"status": "ok"})
    finally:
        pg_server.start()
    wait_until(lambda: probe(h, READY, timeout=5)[0] == 200, 30, 0.2, "ready 200 again")
    assert probe(h, LIVE) == (200, {"status": "ok"})


def test_redis_down_ready_503_naming_the_queue(hookd):
    rs = RedisServer()
    rs.start()
    try:
        h = hookd(REDIS_URL=rs.url(), HOOKD_REDIS_PREFIX=rs.new_prefix())
        assert probe(h, READY)[0] == 200
        rs.stop()
        def ready_503():
            code, body = probe(h, READY, timeout=5)
            return body if code == 503 else None
        body = wait_until(ready_503, 15, 0.1, "ready 503 with Redis stopped")
        assert body["checks"]["queue"] == "down" and body["checks"]["store"] == "ok", body
        code, health = probe(h, HEALTH, timeout=5)
        assert code == 503 and health["checks"]["queue"] == "down", health
        assert probe(h, LIVE) == (200, {"status": "ok"})
        rs.start()
        wait_until(lambda: probe(h, READY, timeout=5)[0] == 200, 15, 0.1, "ready 200 again")
    finally:
        rs.cleanup()


def test_ready_503_while_draining_live_200_until_exit(hookd, receiver):
    """SIGTERM while an attempt is in flight on a slow receiver: from then until the attempt is
    done, ready answers 503 (status draining) on new connections, live 200, and ingest 503; the
    attempt's result is written and hookd exits 0."""
    delay = 3.0 * SLOW
    h = hookd(HOOKD_SHUTDOWN_TIMEOUT_MS=int(20000 * SLOW))
    wh = h.create_webhook(receiver.url("/slow"))
    receiver.plan("/slow", [{"delay": delay}])
    h.ingest(data={"n": "in flight"})
    receiver.wait(1, "/slow")
    t0 = time.monotonic()
    h.proc.send_signal(signal.SIGTERM)

    def ready_503():
        code, body = probe(h, READY)
        return body if code == 503 else None
    body = wait_until(ready_503, delay / SLOW, 0.05, "ready 503 after SIGTERM")
    assert body["status"] == "draining", body
    assert body["checks"] == {"store": "ok", "queue": "ok", "nats": "disabled"}, body
    r = requests.post(h.base + "/api/webhook/v1/events", json={"type": "t", "data": {}},
                      headers={"Authorization": f"Bearer {h.key}"}, timeout=5 * SLOW)
    assert r.status_code == 503, r.text
    # live answers 200 on every probe that gets an answer, until the process is gone; while the
    # attempt is in flight (well before its end) every probe is answered
    lives, readies = [], []
    while h.proc.poll() is None and time.monotonic() - t0 < delay + 30 * SLOW:
        lives.append((time.monotonic() - t0, probe(h, LIVE, timeout=1)))
        readies.append(probe(h, READY, timeout=1))
        time.sleep(0.05)
    h.proc.wait(30 * SLOW)
    answered = [x for _, x in lives if x[0] is not None]
    assert all(x == (200, {"status": "ok"}) for x in answered), lives
    early = [x for t, x in lives if t < delay * 0.6]
    assert early and all(x[0] == 200 for x in early), lives
    assert all(c in (None, 503) for c, _ in readies), readies  # never ready again
    assert h.stop() == 0
    # the attempt in flight finished and was recorded
    h.start()
    d = h.wait_delivery(wh["id"], "success", timeout=10)[0]
    assert d["attemptNumber"] == 1
    assert receiver.count("/slow") == 1


@pytest.mark.skipif(not shutil.which("nats-server"), reason="nats-server is not installed")
def test_nats_down_ready_503_naming_nats(hookd, tmp_path):
    from test_nats import NatsServer  # the same restartable nats-server as test_nats.py
    ns = NatsServer(str(tmp_path)).start()
    try:
        h = hookd(NATS_URL=ns.url)
        code, body = probe(h, READY)
        assert code == 200 and body["checks"]["nats"] == "ok", body
        ns.stop(signal.SIGKILL)
        def ready_503():
            code, body = probe(h, READY, timeout=5)
            return body if code == 503 else None
        body = wait_until(ready_503, 20, 0.05, "ready 503 with NATS stopped")
        assert body["checks"]["nats"] == "down" and body["checks"]["store"] == "ok", body
        assert probe(h, LIVE) == (200, {"status": "ok"})
        ns.start()
        wait_until(lambda: probe(h, READY, timeout=5)[0] == 200, 20, 0.05, "ready 200 again")
    finally:
        ns.stop()
