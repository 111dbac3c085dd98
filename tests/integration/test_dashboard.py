"""The dashboard (issue 18, SPEC §7 "Dashboard", docs/DASHBOARD.md), against the real binary.

(a) What hookd serves at /api/webhook/ui/: the allow-list of files only (no path traversal in
    any spelling), the right content types, an ETag that a revalidation answers with 304, a
    strict Content-Security-Policy on every file, frame-ancestors from HOOKD_PORTAL_ORIGINS
    ('none' when unset), a bad origin refused at start, HOOKD_UI_DIR, and GET /v1/whoami.
(b) The whole dashboard in headless Chromium (tests/browser/dashboard.mjs, playwright-core
    driving Debian's /usr/bin/chromium) against this hookd and a real receiver: sign in, create
    an endpoint, send an event and see its request; failed attempts with the receiver's body,
    retry after it recovers; XSS payloads shown as text; a read-only and an expired portal
    session; the organization switcher of an admin key; axe-core on every main page. Each step
    leaves a screenshot in the test's output directory (HOOKD_DASHBOARD_SHOTS to keep them
    elsewhere, e.g. docs/dashboard/).
"""
import json
import os
import shutil
import subprocess

import pytest
import requests

from conftest import ROOT, SLOW, run_hookd

UI = "/api/webhook/ui"
FILES = {
    "/": "text/html",
    "/index.html": "text/html",
    "/app.js": "text/javascript",
    "/api.js": "text/javascript",
    "/views.js": "text/javascript",
    "/charts.js": "text/javascript",
    "/style.css": "text/css",
    "/vendor/preact.mjs": "text/javascript",
    "/vendor/htm.mjs": "text/javascript",
    "/vendor/uplot.js": "text/javascript",
    "/vendor/uplot.css": "text/css",
}


def csp(r):
    return {d.split()[0]: d.split()[1:] for d in
            (x.strip() for x in r.headers["content-security-policy"].split(";")) if d}


def test_files_types_cache_and_csp(hookd):
    h = hookd()
    for path, ctype in FILES.items():
        r = requests.get(h.base + UI + path, timeout=10 * SLOW)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith(ctype), (path, r.headers["content-type"])
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-cache"
        etag = r.headers["etag"]
        p = csp(r)
        assert p["script-src"] == ["'self'"] and p["style-src"] == ["'self'"], p
        assert p["connect-src"] == ["'self'"] and p["default-src"] == ["'none'"], p
        assert p["frame-ancestors"] == ["'none'"], p
        # a revalidation of an unchanged file: 304, no body
        r2 = requests.get(h.base + UI + path, headers={"If-None-Match": etag}, timeout=10 * SLOW)
        assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    page = requests.get(h.base + UI + "/", timeout=10).text
    assert "<script>" not in page and "style=" not in page  # nothing inline: the CSP allows none
    # the libraries are the npm packages' files, byte for byte
    nm = os.path.join(ROOT, "node_modules")
    assert requests.get(h.base + UI + "/vendor/preact.mjs").content == \
        open(os.path.join(nm, "preact", "dist", "preact.mjs"), "rb").read()


TRAVERSALS = [
    "/package.json", "/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e%2fCMakeLists.txt",
    "/..%2f..%2fCMakeLists.txt", "/vendor/..%2f..%2fpackage.json", "/vendor/../../../CMakeLists.txt",
    "/vendor/preact", "/vendor/%2e%2e%2f%2e%2e%2fpreact%2fpackage.json", "/app.js%00.css",
    "/.%2fapp.js", "//etc/passwd", "/dashboard/index.html", "/APP.JS", "/vendor/uPlot.min.css",
    "/vendor/dist/preact.mjs", "/node_modules/preact/package.json",
]


def raw_get(h, path):
    """GET of the path as written (requests would resolve the dots itself)."""
    req = requests.Request("GET", h.base + UI + path).prepare()
    req.url = h.base + UI + path
    return requests.Session().send(req, timeout=10 * SLOW)


def test_nothing_outside_the_allow_list(hookd):
    h = hookd()
    for path in TRAVERSALS:
        r = raw_get(h, path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json"), path
        for secret in ("root:", "cmake_minimum_required", '"dependencies"', "<!doctype", "import"):
            assert secret not in r.text, (path, r.text[:200])


def test_portal_origins_become_frame_ancestors(hookd):
    h = hookd(HOOKD_PORTAL_ORIGINS="https://app.example.com, https://*.example.org 'self'")
    r = requests.get(h.base + UI + "/", timeout=10 * SLOW)
    assert csp(r)["frame-ancestors"] == ["https://app.example.com", "https://*.example.org", "'self'"]
    assert csp(requests.get(h.base + UI + "/app.js"))["frame-ancestors"][0] == "https://app.example.com"


@pytest.mark.parametrize("bad", ["https://a.example.com/path", "javascript:alert(1)",
                                 "https://a.example.com; script-src *", "*", "'unsafe-inline'",
                                 "ftp://example.com", "https://a\r\nX-Evil: 1"])
def test_a_bad_portal_origin_stops_hookd(tmp_path, bad):
    p = run_hookd(["version"], env={"HOOKD_PORTAL_ORIGINS": bad}, cwd=str(tmp_path))
    assert p.returncode == 2 and "HOOKD_PORTAL_ORIGINS" in p.stderr, (bad, p.returncode, p.stderr)


def test_ui_dir_override_and_missing_files(hookd, tmp_path):
    d = tmp_path / "ui"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>custom</title>")
    # files beside the dashboard's that are not on its allow-list are never served
    (d / "secret.txt").write_text("do not serve")
    (d / "extra.js").write_text("do not serve")
    (d / "vendor").mkdir()
    (d / "vendor" / "other.mjs").write_text("do not serve")
    (tmp_path / "outside.css").write_text("do not serve")
    h = hookd(HOOKD_UI_DIR=str(d))
    r = requests.get(h.base + UI + "/", timeout=10 * SLOW)
    assert r.status_code == 200 and "custom" in r.text
    for path in ("/secret.txt", "/extra.js", "/vendor/other.mjs", "/..", "/vendor/..",
                 "/%2e%2e%2foutside.css", "/..%2foutside.css"):
        r = raw_get(h, path)
        assert r.status_code == 404 and "do not serve" not in r.text, (path, r.status_code)
    r = requests.get(h.base + UI + "/app.js", timeout=10 * SLOW)  # not in that directory
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert "HOOKD_UI_DIR" in r.json()["fix"]


def test_whoami(hookd):
    h = hookd()
    r = h.api("GET", "/api/webhook/v1/whoami")
    assert r.status_code == 200 and r.json() == {"organizationId": h.org, "kind": "key",
                                                 "scope": "full", "webhookIds": None}
    wh = h.create_webhook("http://127.0.0.1:9/x")
    s = h.api("POST", "/api/webhook/v1/portal-sessions", {"scope": "read", "webhookIds": [wh["id"]]})
    assert s.status_code == 201, s.text
    assert s.json()["url"].endswith(UI + "/#token=" + s.json()["token"])
    r = h.api("GET", "/api/webhook/v1/whoami", key=s.json()["token"])
    assert r.status_code == 200 and r.json() == {"organizationId": h.org, "kind": "session",
                                                 "scope": "read", "webhookIds": [wh["id"]]}
    adm = h.cli("apikey", "create", "--admin").stdout.strip()
    r = h.api("GET", "/api/webhook/v1/whoami", key=adm, headers={"X-Organization-Id": h.org})
    assert r.status_code == 200 and r.json()["kind"] == "admin" and r.json()["organizationId"] == h.org
    assert h.api("GET", "/api/webhook/v1/whoami", key="nope").status_code == 401


# ---- (b) the dashboard in Chromium ----------------------------------------------------------------

FLAKY_BODY = '<img src=x onerror="window.__xss=3"> down'


def test_dashboard_in_chromium(hookd, receiver, tmp_path):
    """tests/browser/dashboard.mjs drives every page (see its header); this starts what it
    needs and checks from outside what the browser did."""
    node = shutil.which("node")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert node and os.path.exists(chromium), "scripts/setup.sh installs node and chromium"
    assert os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")), \
        "scripts/setup.sh installs the npm dev dependencies (playwright-core, axe-core)"
    h = hookd(HOOKD_RETRY_SCHEDULE="300ms")
    adm = h.cli("apikey", "create", "--admin").stdout.strip()
    other = "org_other"
    r = h.api("POST", "/api/webhook/v1/organizations", {"id": other, "name": "Other org"}, key=adm)
    assert r.status_code == 201, r.text
    r = h.api("POST", "/api/webhook/v1", {"name": "Other org endpoint", "url": receiver.url("/other"),
                                          "events": ["x.*"]},
              key=adm, headers={"X-Organization-Id": other})
    assert r.status_code == 201, r.text
    # the flaky receiver fails both attempts of the first delivery, then recovers
    receiver.plan("/flaky", [{"status": 500, "body": FLAKY_BODY}] * 2)
    out = os.environ.get("HOOKD_DASHBOARD_SHOTS") or str(tmp_path / "dashboard")
    env = dict(os.environ, HOOKD_URL=h.base, HOOKD_KEY=h.key, HOOKD_ADMIN_KEY=adm,
               RECEIVER_OK=receiver.url("/ok"), RECEIVER_FLAKY=receiver.url("/flaky"),
               OTHER_ORG=other, OUT_DIR=out, CHROMIUM=chromium, HOOKD_TEST_SLOWDOWN=str(SLOW))
    p = subprocess.run([node, os.path.join(ROOT, "tests", "browser", "dashboard.mjs")], env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=300 * SLOW)
    print(p.stdout[-6000:], p.stderr[-6000:])
    assert p.returncode == 0, f"the browser test failed (screenshots in {out}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    res = json.load(open(os.path.join(out, "results.json")))
    assert len(res["steps"]) == 21 and not res["dialogs"], res
    assert res["weight"]["bytes"] <= 300 * 1024, res["weight"]
    # what the browser did happened: the receiver got the test event, the XSS event, and the
    # flaky endpoint two failures then the retry
    bodies = [json.loads(x.body) for x in receiver.received("/ok")]
    assert any(b["type"] == "order.test" for b in bodies), bodies
    assert any(b["data"].get("note") == '<img src=x onerror="window.__xss=2">' for b in bodies)
    # the flaky endpoint: two failures, the retry, then the recover of the failed delivery
    flaky = receiver.received("/flaky")
    assert [x.status for x in flaky] == [500, 500, 200, 200], [x.status for x in flaky]
    assert len({x.headers["webhook-id"] for x in flaky}) == 1  # replays of one event
    assert sum(1 for b in bodies if b["type"] == "order.bulk") == 25
    assert receiver.count("/other") == 0
    h.check_sanitizers()
