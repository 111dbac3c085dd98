"""The monitoring hookd ships (contrib/, docs/OPERATIONS.md "Monitoring"), against a real hookd:

- hookd_webhooks_disabled_total{reason} counts each webhook its results take out of service
  (410 Gone: reason gone; HOOKD_DISABLE_AFTER: reason failures), the metric the
  HookdWebhookAutoDisabled alert needs;
- every metric the alerting rules (contrib/prometheus/hookd-rules.yml) and the Grafana dashboard
  (contrib/grafana/hookd-dashboard.json) query is exported by the hookd under test, with the
  label values they select and the type their functions need (rate/increase on counters, deriv
  on gauges): a renamed metric breaks this test, not a dashboard in production;
- the dashboard is importable as is: a datasource variable, job and instance variables that
  every query filters on, and PromQL that promtool parses.

promtool check rules / test rules on the rules themselves runs in scripts/test.sh.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import requests
import yaml

from conftest import ROOT, SLOW, wait_until
from test_observability import parse_metrics

RULES = os.path.join(ROOT, "contrib", "prometheus", "hookd-rules.yml")
DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "hookd-dashboard.json")
# series Prometheus makes itself, not hookd
SYNTHETIC = {"up"}
# labels the scrape adds (target labels) or that PromQL makes (le is hookd's own)
TARGET_LABELS = {"job", "instance"}


def scrape(h):
    r = requests.get(h.base + "/metrics", timeout=10)
    assert r.status_code == 200
    return parse_metrics(r.text)


def disabled(h):
    m, _ = scrape(h)
    return {reason: m[("hookd_webhooks_disabled_total", (("reason", reason),))]
            for reason in ("gone", "failures")}


def test_webhooks_disabled_total_counts_each_auto_disable_by_reason(hookd, receiver):
    h = hookd(HOOKD_DISABLE_AFTER=2)
    assert disabled(h) == {"gone": 0, "failures": 0}  # exported from the start, for increase()
    gone = h.create_webhook(receiver.url("/gone"), maxRetries=3)
    bad = h.create_webhook(receiver.url("/bad"), maxRetries=0)
    receiver.plan("/gone", [{"status": 410}])
    receiver.plan("/bad", [{"status": 500}] * 4)
    h.ingest(data={"i": 1})  # /gone: 410, disabled at once; /bad: 1 final failure
    wait_until(lambda: h.webhook(gone["id"])["status"] == "disabled", 10, what="webhook disabled")
    h.wait_delivery(bad["id"], "failed")
    assert disabled(h) == {"gone": 1, "failures": 0}
    h.ingest(data={"i": 2})  # /bad: a 2nd final failure in a row: failed
    wait_until(lambda: h.webhook(bad["id"])["status"] == "failed", 10, what="webhook failed")
    wait_until(lambda: disabled(h) == {"gone": 1, "failures": 1}, 5, what="counted once")
    # held deliveries of a failed webhook are not attempted, so nothing more is counted
    h.ingest(data={"i": 3})
    time.sleep(0.5)
    assert receiver.count("/bad") == 2 and disabled(h) == {"gone": 1, "failures": 1}
    # set active again, it fails twice more (the held one and a new one): counted again
    h.api("PATCH", f"/api/webhook/v1/{bad['id']}", {"status": "active"})
    h.ingest(data={"i": 4})
    wait_until(lambda: h.webhook(bad["id"])["status"] == "failed", 10, what="webhook failed again")
    wait_until(lambda: disabled(h) == {"gone": 1, "failures": 2}, 5, what="counted twice")
    assert disabled(h) == {"gone": 1, "failures": 2}


# ---- the queries of the rules and of the dashboard -------------------------------------------

SELECTOR = re.compile(r'(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?')
MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
GROUPING = re.compile(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)')
RANGE_FN = re.compile(r'\b(rate|increase|irate|deriv|delta|predict_linear)\s*\(\s*([a-zA-Z_:][\w:]*)')


def rule_exprs():
    """[(where, expr)] of every alerting rule."""
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return [(f"rule {r['alert']}", r["expr"]) for g in doc["groups"] for r in g["rules"]]


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])  # collapsed rows hold their panels


def dashboard_exprs(dash):
    """[(where, expr)] of every panel query, and of the variables' label_values() selectors."""
    out = [(f"panel {p['title']!r} {t['refId']}", t["expr"])
           for p in panels(dash) for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r'label_values\((.*),\s*(\w+)\)', v["definition"])
            assert m, f"variable {v['name']}: not label_values(selector, label): {v['definition']}"
            out.append((f"variable {v['name']}", m.group(1)))
    return out


def selectors(expr):
    """The metric selectors in a PromQL expression: [(name, [(label, op, value)])]. Names are
    told from functions, keywords and grouping labels by what follows or precedes them."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', expr)
    e = GROUPING.sub(lambda m: " " * len(m.group(0)), e)  # grouping labels are no metrics
    out = []
    for m in SELECTOR.finditer(e):
        name = m.group(1)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or name in ("by", "without", "on", "ignoring", "and", "or",
                                            "unless", "bool", "offset", "group_left", "group_right"):
            continue  # a function or a keyword
        if re.fullmatch(r"[0-9.]+|Inf|NaN", name):
            continue
        body = expr[m.start(3):m.end(3)] if m.group(3) is not None else ""
        matchers, pos = [], 0
        while pos < len(body):
            mm = MATCHER.match(body, pos)
            assert mm, f"cannot parse the matchers of {name} in {expr!r}"
            matchers.append((mm.group(1), mm.group(2), mm.group(3)))
            pos = mm.end()
        out.append((name, matchers))
    return out


def exported(h):
    """{sample name: [label dicts]}, {family name: type}, from the running hookd."""
    m, types = scrape(h)
    series = {}
    for (name, labels) in m:
        series.setdefault(name, []).append(dict(labels))
    return series, types


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count", ""):
        base = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
        if base in types and (suffix == "" or types[base] == "histogram"):
            return base, types[base], suffix
    return None, None, None


def check_expr(where, expr, series, types):
    """Problems with the metric names, label values and functions of one query."""
    problems = []
    names = set()
    for name, matchers in selectors(expr):
        if name in SYNTHETIC:
            continue
        names.add(name)
        if name not in series:
            problems.append(f"{where}: {name} is not exported by hookd")
            continue
        for label, op, value in matchers:
            if label in TARGET_LABELS or op in ("!=", "!~"):
                continue
            values = value.split("|") if op == "=~" else [value]
            for v in values:
                if not re.fullmatch(r"[\w+.-]*", v):
                    problems.append(f"{where}: {name}{{{label}{op}\"{value}\"}}: not a literal "
                                    "or an alternation of literals; this test cannot check it")
                elif not any(s.get(label) == v for s in series[name]):
                    problems.append(f"{where}: {name} has no series with {label}=\"{v}\"")
    for grouping in GROUPING.findall(expr):
        for label in (l.strip() for l in grouping.split(",")):
            if not label or label in TARGET_LABELS or label == "le":
                continue
            known = [n for n in names if n in series]
            if known and not any(label in s for n in known for s in series[n]):
                problems.append(f"{where}: grouping label {label} is on none of {sorted(known)}")
    for fn, name in RANGE_FN.findall(expr):
        if name in SYNTHETIC or name not in series:
            continue
        _, kind, suffix = family_of(name, types)
        counter = kind == "counter" or (kind == "histogram" and suffix in ("_bucket", "_sum", "_count"))
        if fn in ("rate", "increase", "irate") and not counter:
            problems.append(f"{where}: {fn}() of {name}, a {kind}: only counters")
        if fn in ("deriv", "delta", "predict_linear") and kind != "gauge":
            problems.append(f"{where}: {fn}() of {name}, a {kind}: only gauges")
    return problems


def test_rules_and_dashboard_query_only_what_hookd_exports(shared_hookd):
    exprs = rule_exprs() + dashboard_exprs(dashboard())
    assert len(exprs) > 20
    used = {n for _, e in exprs for n, _ in selectors(e)}
    # the parser finds the names: the ones the alerts are built on at least
    assert {"hookd_queue_depth", "hookd_deliveries_total", "hookd_webhooks_disabled_total",
            "hookd_attempt_duration_ms_bucket", "up"} <= used, used

    def problems_now():
        series, types = exported(shared_hookd)
        return [p for w, e in exprs for p in check_expr(w, e, series, types)]

    # a family may appear once its first value is known (hookd_store_rows after the first
    # store check, at start): a few more scrapes before failing
    problems, deadline = problems_now(), time.monotonic() + 10 * SLOW
    while problems and time.monotonic() < deadline:
        time.sleep(0.5)
        problems = problems_now()
    missing = sorted({p.split(": ")[1].split(" ")[0] for p in problems if "is not exported" in p})
    assert not problems, f"{len(problems)} problems (not exported: {missing}):\n" + "\n".join(problems)


def test_the_checker_catches_a_wrong_name_label_or_function(shared_hookd):
    """The test above can fail: each kind of mistake it looks for is reported."""
    series, types = exported(shared_hookd)
    bad = {
        'rate(hookd_deliveries_totl[5m])': "not exported",
        'rate(hookd_deliveries_total{status="succeeded"}[5m])': 'status="succeeded"',
        'rate(hookd_attempts_total{outcome=~"2xx|6xx"}[5m])': 'outcome="6xx"',
        'sum by (reason) (rate(hookd_attempts_total[5m]))': "grouping label reason",
        'rate(hookd_inflight[5m])': "only counters",
        'deriv(hookd_attempts_total[5m])': "only gauges",
    }
    for expr, want in bad.items():
        got = check_expr("x", expr, series, types)
        assert any(want in p for p in got), (expr, got)
    good = 'histogram_quantile(0.99, sum by (job, le) (rate(hookd_attempt_duration_ms_bucket{job=~"$job"}[5m])))'
    assert check_expr("x", good, series, types) == []


def test_dashboard_variables_datasource_and_promql():
    dash = dashboard()
    var = {v["name"]: v for v in dash["templating"]["list"]}
    assert var["datasource"]["type"] == "datasource" and var["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert var[name]["type"] == "query" and var[name]["datasource"]["uid"] == "${datasource}"
        # "All" must mean the values found (hookd's jobs), not a catch-all regex such as .+
        # that would count every target of every job in up{job=~"$job"}
        assert var[name]["includeAll"] and not var[name].get("allValue"), var[name]
    assert "$job" in var["instance"]["definition"]  # instances of the chosen jobs
    exprs = []
    for p in panels(dash):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("targets"), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            for name, matchers in selectors(t["expr"]):
                # every series is narrowed to the chosen jobs and instances
                assert ("job", "=~", "$job") in matchers and ("instance", "=~", "$instance") in matchers, \
                    (p["title"], name, t["expr"])
            exprs.append((p["title"], t["refId"], t["expr"]))
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells = {}  # no two panels on one cell of the 24-column grid (Grafana would move one)
    for p in panels(dash):
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for cell in ((x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])):
            assert cell not in cells, (p["title"], cells[cell])
            cells[cell] = p["title"]
    # promtool parses every query (Grafana's variables replaced as Grafana would)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup.sh installs Debian's prometheus package"
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": e.replace("$__rate_interval", "5m")
         .replace("$job", ".+").replace("$instance", ".+")}
        for i, (_, _, e) in enumerate(exprs)]}]}
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hookd-dashboard-rules-{os.getpid()}.yml")
    with open(path, "w") as f:
        yaml.safe_dump(rules, f)
    try:
        p = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in p.stdout, p.stdout


def test_operations_doc_lists_every_alert_with_its_severity():
    with open(os.path.join(ROOT, "docs", "OPERATIONS.md")) as f:
        rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(Hookd\w+)` \| (\w+) \|", f.read(), re.M)}
    with open(RULES) as f:
        rules = {r["alert"]: r["labels"]["severity"]
                 for g in yaml.safe_load(f)["groups"] for r in g["rules"]}
    assert rows == rules
