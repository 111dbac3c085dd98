"""Redis as the delivery schedule and the shared rate limiter (REDIS_URL), against a real
redis-server on loopback (tests/lib/servers.py: RedisServer, no persistence, so a restart comes
back empty). The store stays the truth: whatever Redis loses (FLUSHALL, a restart, a missing
entry), the sweeper puts back from the store's due index, and nothing is delivered only because
Redis said so.

Most tests use a small window (HOOKD_QUEUE_WINDOW=100) and a slow receiver, so most deliveries
are NOT leased at ingest but wait in Redis's schedule: that is the path under test.
"""
import os
import signal
import time

import pytest

from conftest import SLOW, Receiver, free_port, run_hookd, wait_until
from servers import RedisServer

WINDOW = "100"


@pytest.fixture
def own_redis():
    """A redis-server of this test only (the fault tests stop, kill and flush it)."""
    rs = RedisServer()
    rs.start()
    yield rs
    rs.cleanup()


def redis_env(rs, **extra):
    env = {"REDIS_URL": rs.url(), "HOOKD_REDIS_PREFIX": rs.new_prefix(),
           "HOOKD_QUEUE_WINDOW": WINDOW, "HOOKD_ENDPOINT_CONCURRENCY": "4"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ingest_batch(h, n, type_="load.event", start=0):
    """Ingests n events in batches of up to 500; returns their event ids."""
    ids = []
    i = start
    while i < start + n:
        k = min(500, start + n - i)
        r = h.api("POST", "/api/webhook/v1/events/batch",
                  {"events": [{"type": type_, "data": {"i": j}} for j in range(i, i + k)]})
        assert r.status_code == 202, r.text
        ids += [x["id"] for x in r.json()["results"]]
        i += k
    return ids


def delivered_ids(rec, path=None):
    return {r.headers["x-delivery-id"] for r in rec.received(path) if r.status == 200}


def event_ids(rec, path=None):
    return {r.json["id"] for r in rec.received(path) if r.status == 200}


def health(h):
    try:
        r = h.api("GET", "/api/webhook/health", key=None, timeout=5)
        return r.status_code, r.json()
    except Exception as e:  # noqa: BLE001 - a health probe that fails is an answer too
        return None, str(e)


def log_events(h, name):
    return [e for e in h.log_events() if e.get("event") == name]


def test_schedule_lives_in_redis(hookd, receiver, own_redis):
    """Deliveries that were not leased at ingest go through Redis's sorted set, are claimed
    from it, and the schedule is empty again when everything is delivered."""
    env = redis_env(own_redis)
    prefix = env["HOOKD_REDIS_PREFIX"]
    h = hookd(**env)
    listening = log_events(h, "hookd.listening")
    assert listening and listening[0]["queue"] == "redis"
    receiver.default = {"status": 200, "body": "ok", "delay": 0.01}
    h.create_webhook(receiver.url())
    evs = ingest_batch(h, 600)
    wait_until(lambda: len(event_ids(receiver)) == 600, 60, 0.1, "600 events delivered")
    assert event_ids(receiver) == set(evs)
    # the overflow was scheduled in Redis (ingest could lease at most the window)
    claimed = sum(e["count"] for e in log_events(h, "dispatch.claimed"))
    assert claimed >= 600 - int(WINDOW) - 50, claimed
    wait_until(lambda: own_redis.command("ZCARD", prefix + "due") == 0, 10, 0.1, "due emptied")
    assert own_redis.command("ZCARD", prefix + "claims") == 0
    assert own_redis.command("EXISTS", prefix + "swept") == 1
    code, body = health(h)
    assert code == 200 and body["checks"]["queue"] == "ok", body


def test_flushall_during_run_loses_nothing(hookd, receiver, own_redis):
    env = redis_env(own_redis)
    h = hookd(**env)
    receiver.default = {"status": 200, "body": "ok", "delay": 0.02}
    h.create_webhook(receiver.url())
    evs = ingest_batch(h, 800)
    receiver.wait(150, timeout=30)
    assert own_redis.command("ZCARD", env["HOOKD_REDIS_PREFIX"] + "due") > 0  # still scheduled
    own_redis.flushall()
    wait_until(lambda: len(event_ids(receiver)) == 800, 60, 0.1, "all 800 events delivered")
    assert event_ids(receiver) == set(evs)
    # the claim that found the marker gone swept at once, not at the next interval (30 s)
    assert any(e["level"] == "warn" for e in log_events(h, "queue.redis_empty"))
    assert any(e.get("added", 0) > 0 for e in log_events(h, "queue.swept"))


def test_sweeper_repairs_entries_missing_from_redis(hookd, receiver, own_redis):
    """The dual-write gap: rows committed to the store but absent from Redis (a crash between
    the commit and the ZADD looks exactly like this) are found by the periodic sweep."""
    env = redis_env(own_redis, HOOKD_SWEEP_INTERVAL_MS=1000)
    prefix = env["HOOKD_REDIS_PREFIX"]
    h = hookd(**env)
    receiver.default = {"status": 200, "body": "ok", "delay": 0.02}
    h.create_webhook(receiver.url())
    evs = ingest_batch(h, 500)
    receiver.wait(50, timeout=30)
    missing = own_redis.command("ZCARD", prefix + "due")
    assert missing > 100
    own_redis.command("DEL", prefix + "due")  # the marker stays: only the sweeper can tell
    t0 = time.monotonic()
    wait_until(lambda: len(event_ids(receiver)) == 500, 60, 0.1, "all 500 events delivered")
    assert event_ids(receiver) == set(evs)
    repaired = [e for e in log_events(h, "queue.swept") if e["why"] == "interval" and e["added"]]
    assert repaired, "no interval sweep added anything"
    assert sum(e["added"] for e in repaired) >= missing - 50
    assert time.monotonic() - t0 < 40 * SLOW


def test_a_backlog_made_active_is_swept_into_redis_whole(hookd, receiver, own_redis):
    """Making a webhook active gives its whole parked backlog one due time; the sweep that puts
    it into Redis pages by (due time, id), so pages of tied rows must neither skip nor repeat
    any. Only that sweep runs (the interval is far off): a row it missed would never go out."""
    env = redis_env(own_redis, HOOKD_SWEEP_INTERVAL_MS=600000)
    h = hookd(**env)
    wh = h.create_webhook(receiver.url("/p"), status="paused")
    n = 2600  # three pages of 1,000
    ingest_batch(h, n)
    assert receiver.received("/p") == []
    r = h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"status": "active"})
    assert r.status_code == 200, r.text
    receiver.wait(n, "/p", timeout=60)
    time.sleep(0.5)
    got = [r.headers["x-delivery-id"] for r in receiver.received("/p") if r.status == 200]
    assert len(got) == n and len(set(got)) == n
    swept = [e for e in log_events(h, "queue.swept") if e["added"]]
    assert sum(e["added"] for e in swept) >= n and max(e["pages"] for e in swept) >= 3, swept


def test_redis_restarted_during_run_loses_nothing(hookd, receiver, own_redis):
    env = redis_env(own_redis)
    h = hookd(**env)
    receiver.default = {"status": 200, "body": "ok", "delay": 0.02}
    h.create_webhook(receiver.url())
    evs = ingest_batch(h, 800)
    receiver.wait(150, timeout=30)
    own_redis.kill()  # SIGKILL, no persistence: it comes back empty
    wait_until(lambda: health(h)[0] == 503, 10, 0.1, "health 503")
    time.sleep(1)
    own_redis.start()
    wait_until(lambda: health(h)[0] == 200, 15, 0.1, "health 200 again")
    wait_until(lambda: len(event_ids(receiver)) == 800, 60, 0.1, "all 800 events delivered")
    assert event_ids(receiver) == set(evs)
    assert log_events(h, "redis.down") and len(log_events(h, "redis.up")) >= 2
    # the reconnect found the schedule gone and said so as a loss (warn), not as a first start
    assert any(e["level"] == "warn" for e in log_events(h, "queue.redis_empty")), \
        log_events(h, "queue.redis_empty")


def test_redis_down_health_then_resume(hookd, receiver, own_redis):
    """Redis down: health 503 naming the queue; ingest still stores (202); webhooks without a
    rate limit keep being delivered from the store; rate-limited ones are held, not burst, and
    go out when Redis is back."""
    env = redis_env(own_redis)
    h = hookd(**env)
    free = h.create_webhook(receiver.url("/free"), events=["free.*"])
    h.create_webhook(receiver.url("/limited"), events=["lim.*"], rateLimitEnabled=True,
                     maxRequestsPerMinute=600)
    own_redis.stop()
    def down():
        code, body = health(h)
        return code == 503 and body["checks"]["queue"] == "down" and body["checks"]["store"] == "ok"
    wait_until(down, 10, 0.1, "health 503 with queue down")
    free_evs = ingest_batch(h, 300, "free.x")      # more than the window: store claims
    lim_evs = ingest_batch(h, 20, "lim.x")
    wait_until(lambda: len(event_ids(receiver, "/free")) == 300, 60, 0.1,
               "the unlimited webhook delivered while Redis is down")
    wait_until(lambda: log_events(h, "ratelimit.held"), 20, 0.1, "the limited webhook held")
    time.sleep(1.5)
    assert receiver.count("/limited") == 0, "a rate-limited delivery went out without Redis"
    own_redis.start()
    wait_until(lambda: health(h)[0] == 200, 15, 0.1, "health 200 again")
    wait_until(lambda: len(event_ids(receiver, "/limited")) == 20, 30, 0.1,
               "the held deliveries went out")
    assert event_ids(receiver, "/free") == set(free_evs)
    assert event_ids(receiver, "/limited") == set(lim_evs)
    ds = h.deliveries(free["id"], status="success")
    assert len(ds) == 100  # one page: all successes


@pytest.mark.parametrize("fault", ["restart", "flushall"])
def test_rate_limit_survives_redis_losing_its_data(hookd, receiver, own_redis, fault):
    """The last minute's starts are in Redis; if Redis comes back empty, each node writes its
    own again before granting more, so the webhook does not get a second window's worth."""
    h = hookd(**redis_env(own_redis))
    h.create_webhook(receiver.url(), rateLimitEnabled=True, maxRequestsPerMinute=10)
    for i in range(10):  # the whole window, and nothing waiting: the node has no wait to recall
        h.ingest(data={"i": i})
    receiver.wait(10, timeout=20)
    if fault == "restart":
        own_redis.kill()
        wait_until(lambda: health(h)[0] == 503, 10, 0.1, "health 503")
        own_redis.start()
    else:
        own_redis.flushall()
    wait_until(lambda: health(h)[0] == 200, 15, 0.1, "health 200")
    wait_until(lambda: log_events(h, "ratelimit.reseed"), 10, 0.1, "the re-seed")
    for i in range(10, 25):
        h.ingest(data={"i": i})
    time.sleep(6)  # past the hold: the window (61 s from the first starts) is still full
    assert receiver.count() == 10, f"{receiver.count()} attempts started: the limit is 10/min"


def test_redis_that_hangs_is_down(hookd, receiver, own_redis):
    """A Redis that stops answering (SIGSTOP) is treated as down after the reply timeout, and
    the connection comes back by itself when it answers again."""
    h = hookd(**redis_env(own_redis))
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: health(h)[0] == 503, 15, 0.2, "health 503 while Redis hangs")
        h.create_webhook(receiver.url())
        h.ingest()
        receiver.wait(1, timeout=10)  # not rate limited: delivered from the store meanwhile
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    wait_until(lambda: health(h)[0] == 200, 15, 0.2, "health 200 again")


def test_starts_without_redis_and_connects_later(hookd, receiver):
    """Redis unreachable at start-up: hookd starts anyway (health 503, queue down), stores and
    delivers, and connects by itself once a Redis listens on that address."""
    rs = RedisServer()  # not started yet: its port refuses connections
    try:
        h = hookd(start=False, **redis_env(rs))
        h.start(wait=False)
        def degraded():
            if h.proc.poll() is not None:
                pytest.fail(f"hookd exited with {h.proc.returncode}:\n{h.logs()[-3000:]}")
            code, body = health(h)
            return code == 503 and body["checks"]["queue"] == "down"
        wait_until(degraded, 20, 0.1, "hookd up with queue down")
        h.create_webhook(receiver.url())
        evs = ingest_batch(h, 150)
        wait_until(lambda: len(event_ids(receiver)) == 150, 30, 0.1, "delivered without Redis")
        rs.start()
        wait_until(lambda: health(h)[0] == 200, 15, 0.1, "health 200 once Redis listens")
        evs += ingest_batch(h, 150, start=150)
        wait_until(lambda: len(event_ids(receiver)) == 300, 30, 0.1, "delivered with Redis")
        assert event_ids(receiver) == set(evs)
    finally:
        rs.cleanup()


def test_kill9_with_redis_loses_nothing(hookd, receiver, own_redis):
    """hookd killed with deliveries committed, some in Redis, some leased in memory: after the
    restart every one is delivered (the store hands the leases back, the sweep schedules them)."""
    env = redis_env(own_redis)
    h = hookd(**env)
    receiver.default = {"status": 200, "body": "ok", "delay": 0.02}
    h.create_webhook(receiver.url())
    evs = ingest_batch(h, 600)
    receiver.wait(100, timeout=30)
    h.kill9()
    h.start()
    wait_until(lambda: len(event_ids(receiver)) == 600, 60, 0.1, "all 600 events delivered")
    assert event_ids(receiver) == set(evs)


def test_bad_redis_url_stops_startup(tmp_path):
    env = {"HOOKD_DB": str(tmp_path / "x.db"), "PORT": str(free_port()),
           "HOOKD_BOOTSTRAP_KEY": "k_" + "a" * 20, "REDIS_URL": "http://nope"}
    p = run_hookd(["serve"], env=env, cwd=str(tmp_path), timeout=30)
    # 2: a bad option, like every other (docs/CONFIG.md): its syntax is checked with the options,
    # before the store is opened (no file, no key created)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "REDIS_URL (--redis-url): it must start with redis://" in p.stderr, p.stderr
    assert not (tmp_path / "x.db").exists()




@pytest.mark.timeout(240)
def test_two_nodes_share_one_rate_limit(request, hookd, tmp_path, own_redis):
    """Two nodes on one PostgreSQL store and one Redis, one webhook limited to 30 per minute,
    deliveries ingested on both nodes: together they start at most 30 attempts in any
    60-second window (receiver clock), then the limit lets the rest through."""
    pg = request.getfixturevalue("pg_server")
    pg_url = pg.new_database()
    # the PostgreSQL store is built in: a migrate that fails is a failure, never a skip
    p = run_hookd(["migrate"], env={"PG_URL": pg_url}, cwd=str(tmp_path))
    assert p.returncode == 0, f"hookd migrate on PostgreSQL failed: {p.stderr}"
    rec = Receiver()
    try:
        prefix = own_redis.new_prefix()
        common = {"PG_URL": pg_url, "REDIS_URL": own_redis.url(), "HOOKD_REDIS_PREFIX": prefix}
        a = hookd(HOOKD_NODE_ID="node-a", **common)
        b = hookd(HOOKD_NODE_ID="node-b", **common)  # its own key, same organization
        wh = a.create_webhook(rec.url(), rateLimitEnabled=True, maxRequestsPerMinute=30)
        t0 = time.time()
        for i in range(24):
            a.ingest(data={"i": i, "node": "a"})
            b.ingest(data={"i": i, "node": "b"})
        # the first window: exactly 30 start, the other 18 wait
        wait_until(lambda: rec.count() >= 30, 20, 0.1, "the first 30 attempts")
        time.sleep(max(0.0, t0 + 55 - time.time()))
        assert rec.count() == 30, f"{rec.count()} attempts started within 55 s; limit 30/min"
        # after the window slides, the rest go out, paced
        wait_until(lambda: rec.count() >= 34, 45, 0.2, "attempts after the window")
        times = sorted(r.at for r in rec.received())
        for i, t in enumerate(times):
            inside = sum(1 for u in times[i:] if u < t + 60.0)
            assert inside <= 30, f"{inside} attempts started in the 60 s from {t - t0:.1f}s"
        # both nodes did attempt: the limit was shared, not one node doing all the work
        per_node = [len(log_events(n, "delivery.success")) for n in (a, b)]
        assert all(k > 0 for k in per_node), per_node
        assert wh["id"]
    finally:
        rec.close()
