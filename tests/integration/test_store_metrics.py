"""Store size and health on /metrics (issue 16, part 4): hookd_store_rows{table} and
hookd_store_bytes follow the rows written (SQLite: exact counts; PostgreSQL: the statistics'
estimate), refreshed every few seconds by a reader, never on the ingest path; hookd_store_up
says whether the last store check succeeded (the "store down" alert reads it), set by the
periodic refresh itself, without anyone calling /health."""
import os
import secrets

import pytest
import requests

from conftest import SLOW, wait_until
from test_observability import parse_metrics

TABLES = ("event", "delivery", "attempt", "webhook")


def store_metrics(h):
    """(rows by table, bytes, up) from /metrics; a value not rendered yet is None (each family
    appears once its first refresh has answered, which a loaded machine can delay past the first
    scrape), and a family that is rendered must be a gauge."""
    m, types = parse_metrics(requests.get(h.base + "/metrics", timeout=10 * SLOW).text)
    rows = {t: m.get(("hookd_store_rows", (("table", t),))) for t in TABLES}
    for name in ("hookd_store_rows", "hookd_store_bytes", "hookd_store_up"):
        assert types.get(name) in ("gauge", None), (name, types.get(name))
    return rows, m.get(("hookd_store_bytes", ())), m.get(("hookd_store_up", ()))


def test_store_rows_and_bytes_follow_what_is_written(hookd, receiver):
    h = hookd()
    h.create_webhook(receiver.url())
    rows0, bytes0, up = wait_until(
        lambda: (lambda s: s if s[0]["webhook"] == 1 and s[2] == 1 else None)(store_metrics(h)),
        30, 0.2, "the first refresh (the webhook counted, the store up)")
    assert rows0 == {"event": 0, "delivery": 0, "attempt": 0, "webhook": 1}, rows0
    types = parse_metrics(requests.get(h.base + "/metrics", timeout=10 * SLOW).text)[1]
    for name in ("hookd_store_rows", "hookd_store_bytes", "hookd_store_up"):
        assert types.get(name) == "gauge", (name, types.get(name))
    assert bytes0 > 0

    # 3 x 100 events with 2,000 bytes of incompressible data each, all delivered at once:
    # 300 events, 300 deliveries, 300 attempts, at least 600 kB more on disk
    ids = []
    for b in range(3):
        r = h.api("POST", "/api/webhook/v1/events/batch",
                  {"events": [{"type": "sz.event", "data": {"pad": secrets.token_hex(1000)}}
                              for _ in range(100)]})
        assert r.status_code == 202, r.text
        ids += [e["id"] for e in r.json()["results"]]
    receiver.wait(300, timeout=30)
    want = {"event": 300, "delivery": 300, "attempt": 300, "webhook": 1}
    # PostgreSQL's estimate trails the commits by the statistics flush (about a second, up to
    # ~10 s for a connection that went idle) plus one refresh period (5 s)
    rows, nbytes, up = wait_until(
        lambda: (lambda s: s if s[0] == want else None)(store_metrics(h)), 40, 0.25,
        f"hookd_store_rows == {want}")
    assert up == 1
    assert nbytes - bytes0 >= 600_000, (bytes0, nbytes)


@pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg",
                    reason="stopping the store needs PostgreSQL (HOOKD_TEST_STORE=pg)")
def test_store_up_follows_the_database_without_health_requests(hookd, pg_server):
    h = hookd()
    # nothing below calls /health: only the periodic store check moves the gauge
    wait_until(lambda: store_metrics(h)[2] == 1, 15, 0.2, "hookd_store_up 1")
    pg_server.stop()
    try:
        wait_until(lambda: store_metrics(h)[2] == 0, 20, 0.2, "hookd_store_up 0, PostgreSQL down")
    finally:
        pg_server.start()
    wait_until(lambda: store_metrics(h)[2] == 1, 30, 0.2, "hookd_store_up 1 again")
