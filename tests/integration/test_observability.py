"""/metrics (Prometheus text, SPEC §3) and structured logs (HOOKD_LOG_FORMAT/LEVEL)."""
import json
import re

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.e+]+|\+Inf|NaN)$')


def parse_metrics(text):
    """Parses Prometheus text format strictly; returns {(name, labels): value}."""
    out, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = LINE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        labels = tuple(sorted(re.findall(r'([a-zA-Z_]+)="([^"]*)"', m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(5))
    return out, types


def test_metrics_count_what_happened(hookd, receiver):
    h = hookd()
    receiver.plan("/r", [{"status": 500}])
    wh = h.create_webhook(receiver.url("/r"), maxRetries=1)
    for i in range(3):
        h.ingest(data={"i": i})
    h.wait_delivery(wh["id"], "success", n=3)
    r = h.api("GET", "/metrics", key=None)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m, types = parse_metrics(r.text)
    assert m[("hookd_events_ingested_total", (("source", "api"),))] == 3
    assert m[("hookd_attempts_total", (("outcome", "2xx"),))] == 3
    assert m[("hookd_attempts_total", (("outcome", "5xx"),))] == 1
    assert m[("hookd_deliveries_total", (("status", "success"),))] == 3
    assert m[("hookd_deliveries_total", (("status", "retrying"),))] == 1
    for hist in ("hookd_attempt_duration_ms", "hookd_delivery_latency_ms"):
        assert types[hist] == "histogram"
        buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                         for k, v in m.items() if k[0] == hist + "_bucket")
        assert buckets[-1][0] == float("inf")
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "buckets must be cumulative"
        assert counts[-1] == m[(hist + "_count", ())]
    assert m[("hookd_attempt_duration_ms_count", ())] == 4
    assert m[("hookd_delivery_latency_ms_count", ())] == 3
    for g in ("hookd_queue_depth", "hookd_inflight"):
        assert types[g] == "gauge" and (g, ()) in m


def test_metrics_key_protects_the_endpoint(hookd):
    h = hookd(HOOKD_METRICS_KEY="metrics-secret-123456")
    assert h.api("GET", "/metrics", key=None).status_code == 401
    assert h.api("GET", "/metrics", key=None, headers={"authorization": "Bearer wrong"}).status_code == 401
    r = h.api("GET", "/metrics", key=None, headers={"authorization": "Bearer metrics-secret-123456"})
    assert r.status_code == 200 and "hookd_inflight" in r.text


def test_json_logs_one_line_per_event_with_ids(hookd, receiver):
    h = hookd(HOOKD_LOG_FORMAT="json", HOOKD_LOG_LEVEL="debug")
    receiver.plan("/r", [{"status": 500}, {"status": 410}])
    wh = h.create_webhook(receiver.url("/r"), maxRetries=3)
    h.ingest()
    h.wait_delivery(wh["id"], "failed")
    h.stop()
    lines = [l for l in h.logs().splitlines() if l.startswith("{")]
    events = [json.loads(l) for l in lines]  # every JSON line parses
    by = {}
    for e in events:
        assert {"ts", "level", "event"} <= set(e)
        by.setdefault(e["event"], []).append(e)
    assert by["webhook.created"][0]["webhook_id"] == wh["id"]
    retry = by["delivery.retry"][0]
    assert retry["webhook_id"] == wh["id"] and retry["delivery_id"].startswith("whde_") and "HTTP 500" in retry["msg"]
    failed = by["delivery.failed"][0]
    assert failed["delivery_id"] == retry["delivery_id"] and failed["level"] == "warn"
    assert len(by["webhook.status_changed"]) == 1  # logged once per change (not by the store too)
    changed = by["webhook.status_changed"][0]
    assert changed["webhook_id"] == wh["id"] and changed["status"] == "disabled"
    assert "hookd.listening" in by and "hookd.stopped" in by


def test_text_logs_and_level_filter(hookd):
    h = hookd(HOOKD_LOG_FORMAT="text", HOOKD_LOG_LEVEL="warn")
    h.api("POST", "/api/webhook/v1", {"name": "x", "url": "http://127.0.0.1:9/", "events": ["*"]})
    h.stop()
    logs = h.logs()
    assert "webhook.created" not in logs and "hookd.listening" not in logs  # info is below warn
    assert not any(l.startswith("{") for l in logs.splitlines())
