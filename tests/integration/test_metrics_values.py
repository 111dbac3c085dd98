"""/metrics values, not only their shape (SPEC §3): an attempt lands in the latency bucket of
its duration, end-to-end latency runs from creation to the successful attempt (retries
included), and the queue-depth and in-flight gauges say what is waiting and what is out."""
import time

import pytest
import requests

from conftest import UNDER_VALGRIND, VALGRIND, wait_until
from test_observability import parse_metrics


def metrics(h):
    return parse_metrics(requests.get(h.base + "/metrics", timeout=10).text)[0]


def bucket(m, hist, le):
    return m[(hist + "_bucket", (("le", le),))]


@pytest.mark.skipif(VALGRIND, reason=UNDER_VALGRIND)
def test_latency_histograms_put_each_observation_in_its_bucket(hookd, receiver):
    h = hookd()
    receiver.plan("/slow", [{"delay": 0.6}])
    receiver.plan("/retry", [{"status": 500}])
    for path in ("/slow", "/retry", "/fast"):
        h.create_webhook(receiver.url(path))
    h.ingest()
    receiver.wait(4, timeout=10)
    wait_until(lambda: metrics(h)[("hookd_delivery_latency_ms_count", ())] == 3, 10, 0.05, "3 successes")
    m = metrics(h)
    att = "hookd_attempt_duration_ms"
    assert m[(att + "_count", ())] == 4
    assert bucket(m, att, "500") == 3 and bucket(m, att, "1000") == 4, m  # the 0.6 s one
    assert m[(att + "_sum", ())] >= 600
    e2e = "hookd_delivery_latency_ms"
    # the fast one within 250 ms; the retried one waited its 300 ms retry delay; the slow one 0.6 s
    assert bucket(m, e2e, "250") == 1 and bucket(m, e2e, "500") == 2, m
    assert bucket(m, e2e, "1000") == 3 and bucket(m, e2e, "+Inf") == 3
    assert m[(e2e + "_sum", ())] >= 900


def test_queue_depth_and_inflight_gauges(hookd, receiver):
    h = hookd(HOOKD_ENDPOINT_CONCURRENCY=2, HOOKD_HTTP_TIMEOUT_MS=20000)
    receiver.default = {"hang": True}
    h.create_webhook(receiver.url("/h"))
    for i in range(5):
        h.ingest(data={"i": i})
    receiver.wait(2, timeout=10)
    time.sleep(0.5)
    m = metrics(h)
    assert m[("hookd_inflight", ())] == 2 and m[("hookd_queue_depth", ())] == 3, m
    receiver.close()  # the hanging attempts fail; nothing is left in flight
    wait_until(lambda: metrics(h)[("hookd_inflight", ())] == 0, 10, 0.05, "nothing in flight")
