"""The API's own documentation (SPEC §3), against the real binary.

(a) GET /api/webhook/openapi/json is valid JSON, OpenAPI 3.1, structurally sound (every $ref
    resolves, every operation has responses with descriptions and content schemas, path
    parameters are declared) and documents every route of SPEC §3.
(b) Every documented operation is called with valid and invalid requests; each answer's status
    must be one the document lists for that operation, with a documented content type, and a
    JSON body must validate against the documented schema (python3-jsonschema, required: the
    suite fails without it). A documented operation the server has no route for fails.
(c) The docs page is HTML that loads Swagger UI, whose files hookd serves from disk (and only
    those), and still links the JSON document when the files are missing.
(d) Headless Chromium renders the page (a screenshot is kept) and the rendered DOM lists the
    routes.
"""
import json
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT, SLOW

try:
    import jsonschema
except ImportError:  # python3-jsonschema (scripts/setup.sh installs it)
    jsonschema = None

DOC = "/api/webhook/openapi/json"
PAGE = "/api/webhook/openapi"
UI_DIST = os.path.join(ROOT, "node_modules", "swagger-ui-dist")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Every route of SPEC §3 (the SPEC itself is read too, when it is beside the repository).
SPEC_ROUTES = [
    ("get", "/api/webhook/health"),
    ("get", "/api/webhook/openapi"),
    ("get", "/api/webhook/openapi/json"),
    ("get", "/metrics"),
    ("post", "/api/webhook/v1"),
    ("get", "/api/webhook/v1"),
    ("get", "/api/webhook/v1/{id}"),
    ("patch", "/api/webhook/v1/{id}"),
    ("delete", "/api/webhook/v1/{id}"),
    ("post", "/api/webhook/v1/{id}/rotate-secret"),
    ("post", "/api/webhook/v1/events"),
    ("post", "/api/webhook/v1/events/batch"),
    ("post", "/api/webhook/v1/trigger"),
    ("get", "/api/webhook/v1/events"),
    ("get", "/api/webhook/v1/events/{id}"),
    ("post", "/api/webhook/v1/sign-test-event"),
    ("get", "/api/webhook/v1/{id}/deliveries"),
    ("get", "/api/webhook/v1/deliveries/{id}"),
    ("post", "/api/webhook/deliveries/{id}/retry"),
    ("post", "/api/webhook/v1/deliveries/{id}/retry"),
    ("post", "/api/webhook/v1/{id}/recover"),
]


def spec_path():
    for p in (os.environ.get("HOOKD_SPEC"), os.path.join(ROOT, "..", "shared", "SPEC.md"),
              os.path.join(ROOT, "shared", "SPEC.md")):
        if p and os.path.isfile(p):
            return p
    return None


def routes_in_spec(text):
    """(method, path) of every route named in the table of SPEC §3."""
    sec = text.split("## 3.", 1)[1].split("\n## ", 1)[0]
    out = set()
    for line in sec.splitlines():
        if not line.startswith("| `"):
            continue
        for m, p in re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/[^`\s]*)`", line):
            out.add((m.lower(), p))
            if "also under `/v1`" in line:
                out.add((m.lower(), p.replace("/api/webhook/", "/api/webhook/v1/", 1)))
    return out


def norm(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method, path, op


def resolve(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def validate(doc, instance, schema, what):
    if jsonschema is None:
        pytest.fail("python3-jsonschema is not installed (scripts/setup.sh installs it): the "
                    "answers cannot be checked against the document")
    resolver = jsonschema.RefResolver.from_schema(doc)
    errors = sorted(jsonschema.Draft202012Validator(schema, resolver=resolver).iter_errors(instance),
                    key=lambda e: list(e.absolute_path))
    assert not errors, f"{what}: body does not match the documented schema: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:5])


@pytest.fixture(scope="module")
def doc(shared_hookd):
    r = shared_hookd.api("GET", DOC, key=False)
    assert r.status_code == 200, r.text
    return r.json()


# ---- (a) the document ---------------------------------------------------------------------------

def test_document_is_json_and_openapi_3_1(shared_hookd):
    r = shared_hookd.api("GET", DOC, key=False)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == "application/json"
    assert "cache-control" in r.headers
    dups = []

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dups.extend(sorted({k for k in keys if keys.count(k) > 1}))
        return dict(pairs)
    # the exact bytes, not requests' lenient decoding; a key given twice in one object is an
    # error for YAML-minded tools (Swagger UI: "duplicated mapping key"), so none
    d = json.loads(r.text, object_pairs_hook=no_duplicates)
    assert not dups, f"keys given twice in one object: {dups}"
    assert re.fullmatch(r"3\.1\.\d+", d["openapi"])
    assert d["info"]["title"] and d["info"]["version"]
    assert d["paths"] and d["components"]["schemas"]


def test_every_spec_route_is_documented(doc):
    documented = {(m, norm(p)) for m, p, _ in operations(doc)}
    wanted = set(SPEC_ROUTES)
    sp = spec_path()
    if sp:
        from_spec = routes_in_spec(open(sp, encoding="utf-8").read())
        assert len(from_spec) >= len(SPEC_ROUTES) - 1, from_spec  # the parse found the table
        wanted |= from_spec
    missing = sorted((m.upper(), p) for m, p in wanted if (m, norm(p)) not in documented)
    assert not missing, f"routes of SPEC §3 missing from the document: {missing}"


def test_document_structure(doc):
    # every $ref resolves
    def walk(node, where):
        if isinstance(node, dict):
            if "$ref" in node:
                try:
                    resolve(doc, node)
                except (KeyError, AssertionError):
                    pytest.fail(f"unresolvable $ref {node['$ref']} at {where}")
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    walk(doc, "#")

    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for method, path, op in operations(doc):
        what = f"{method.upper()} {path}"
        assert op.get("summary"), what
        assert op.get("responses"), what
        for status, resp in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", status), (what, status)
            resp = resolve(doc, resp)
            assert resp.get("description"), (what, status)
            for media, m in resp.get("content", {}).items():
                assert "schema" in m, (what, status, media)
        assert any(s.startswith("2") for s in op["responses"]), f"{what}: no success response"
        params = [resolve(doc, p) for p in op.get("parameters", [])]
        for name in re.findall(r"\{([^}]+)\}", path):
            assert any(p["in"] == "path" and p["name"] == name and p.get("required") for p in params), \
                f"{what}: path parameter {name} is not declared"
        for p in params:
            assert p["in"] in ("path", "query", "header", "cookie") and "schema" in p, (what, p)
        if "requestBody" in op:
            rb = resolve(doc, op["requestBody"])
            assert "application/json" in rb["content"], what
            assert "schema" in rb["content"]["application/json"], what
        # routes that need a key document 401; the open ones say so
        sec = op.get("security", doc.get("security"))
        if sec and {} not in sec:
            assert "401" in op["responses"], f"{what}: needs a key but documents no 401"

    schemes = doc["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "x-api-key"}.items() <= \
        next(s for s in schemes.values() if s["type"] == "apiKey").items()
    assert any(s["type"] == "http" and s["scheme"].lower() == "bearer" for s in schemes.values())
    assert doc["security"], "routes need a key unless they say otherwise"

    schemas = doc["components"]["schemas"]
    for name in ("Webhook", "Event", "Delivery", "Attempt", "Error"):
        assert name in schemas, name
    assert set(schemas["Error"]["required"]) == {"code", "message", "why", "fix"}
    for list_name in ("WebhookList", "EventList", "DeliveryList"):
        assert list_name in schemas


def test_schemas_are_valid_json_schema(doc):
    if jsonschema is None:
        pytest.fail("python3-jsonschema is not installed (scripts/setup.sh installs it)")
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_new_routes_are_described(doc):
    """The routes added with rotation and replay say what they take and answer."""
    paths = doc["paths"]
    rot = paths["/api/webhook/v1/{id}/rotate-secret"]["post"]
    body = resolve(doc, rot["requestBody"]["content"]["application/json"]["schema"])
    assert body["properties"]["graceSeconds"]["type"] == "integer"
    wh = resolve(doc, rot["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"secret", "previousSecretExpiresAt"} <= set(wh["properties"])
    sign = resolve(doc, paths["/api/webhook/v1/sign-test-event"]["post"]["responses"]["200"]
                   ["content"]["application/json"]["schema"])
    assert set(sign["required"]) == {"url", "headers", "body", "rawBody"}
    for p in ("/api/webhook/deliveries/{id}/retry", "/api/webhook/v1/deliveries/{id}/retry"):
        op = paths[p]["post"]
        assert {"202", "404", "409"} <= set(op["responses"]), p
        res = resolve(doc, op["responses"]["202"]["content"]["application/json"]["schema"])
        assert {"success", "newDeliveryId"} <= set(res["required"])
    rec = paths["/api/webhook/v1/{id}/recover"]["post"]
    req = resolve(doc, rec["requestBody"]["content"]["application/json"]["schema"])
    assert req["required"] == ["since"] and "until" in req["properties"]
    res = resolve(doc, rec["responses"]["202"]["content"]["application/json"]["schema"])
    assert res["required"] == ["count"]


def redocly_bin():
    exe = os.path.join(ROOT, "node_modules", ".bin", "redocly")
    if not os.path.isfile(exe):
        pytest.fail("@redocly/cli is not installed: run scripts/setup.sh (npm ci from "
                    "package-lock.json)")
    return exe


def test_redocly_recommended_lint(shared_hookd, tmp_path):
    """Redocly's recommended ruleset (with redocly.yaml: the rules off say why) finds no error
    and no warning in the document hookd serves."""
    r = shared_hookd.api("GET", DOC, key=False)
    assert r.status_code == 200
    path = tmp_path / "openapi.json"
    path.write_bytes(r.content)
    env = dict(os.environ, HOME=str(tmp_path), REDOCLY_TELEMETRY="off",
               REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_COLOR="1")
    p = subprocess.run([redocly_bin(), "lint", str(path), "--config",
                        os.path.join(ROOT, "redocly.yaml"), "--format=json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120 * SLOW)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        pytest.fail(f"redocly lint exited with {p.returncode} and no JSON report:\n"
                    f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    problems = [f"{pr['severity']} {pr['ruleId']}: {pr['message']} at "
                f"{[loc.get('pointer') for loc in pr.get('location', [])]}"
                for pr in out["problems"]]
    assert out["totals"]["errors"] == 0 and out["totals"]["warnings"] == 0 and not problems, \
        "redocly lint (recommended, redocly.yaml):\n" + "\n".join(problems)
    assert p.returncode == 0, p.stderr[-2000:]


def test_free_form_objects_say_so(doc):
    """An object schema with no properties says additionalProperties: generators read a bare
    {"type": "object"} as an object with no fields (openapi-typescript: Record<string, never>),
    and a generated client then cannot send an event's data or read a delivery's headers."""
    bare = []

    def walk(node, where):
        if isinstance(node, dict):
            t = node.get("type")
            if "object" in (t if isinstance(t, list) else [t]) and not any(
                    k in node for k in ("properties", "additionalProperties", "patternProperties",
                                        "allOf", "anyOf", "oneOf", "$ref")):
                bare.append(where)
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    walk(doc, "#")
    assert not bare, f"object schemas that say neither properties nor additionalProperties: {bare}"


def path_params(doc, path):
    """{name: [schema, ...]} of the path parameters of every operation of path."""
    out = {}
    for method, op in doc["paths"][path].items():
        if method not in METHODS:
            continue
        for prm in op.get("parameters", []):
            prm = resolve(doc, prm)
            if prm["in"] == "path":
                out.setdefault(prm["name"], []).append(resolve(doc, prm["schema"]))
    return out


def test_paths_resolve_unambiguously(doc):
    """No request path matches two documented paths. Redocly's no-ambiguous-paths (off in
    redocly.yaml) compares templates without the parameters' schemas and so reports
    /v1/{id}/rotate-secret beside /v1/events/{id}; this check knows them: two paths of as many
    segments differ when, at some segment, both are literal and differ, or one is literal and
    the other's parameter schema refuses it (a webhook id never reads "events")."""
    if jsonschema is None:
        pytest.fail("python3-jsonschema is not installed (scripts/setup.sh installs it)")
    resolver = jsonschema.RefResolver.from_schema(doc)

    def refuses(schemas, literal):
        return all(not jsonschema.Draft202012Validator(s, resolver=resolver).is_valid(literal)
                   for s in schemas)

    paths = list(doc["paths"])
    params = {p: path_params(doc, p) for p in paths}
    ambiguous = []
    for i, a in enumerate(paths):
        for b in paths[i + 1:]:
            sa, sb = a.split("/"), b.split("/")
            if len(sa) != len(sb):
                continue
            distinct = False
            for x, y, px, py in ((x, y, params[a], params[b]) for x, y in zip(sa, sb)):
                vx, vy = re.fullmatch(r"\{(.+)\}", x), re.fullmatch(r"\{(.+)\}", y)
                if not vx and not vy:
                    distinct = x != y
                elif vx and not vy:
                    distinct = refuses(px[vx.group(1)], y)
                elif vy and not vx:
                    distinct = refuses(py[vy.group(1)], x)
                if distinct:
                    break
            if not distinct:
                ambiguous.append((a, b))
    assert not ambiguous, f"one request path matches both of: {ambiguous}"
    # the literal siblings of /v1/{id} are what the webhook id's pattern keeps apart
    wid = path_params(doc, "/api/webhook/v1/{id}")["id"]
    for literal in ("events", "deliveries", "organizations", "api-keys", "portal-sessions",
                    "stats", "trigger", "sign-test-event"):
        assert refuses(wid, literal), literal


# ---- (b) the document against the server --------------------------------------------------------

UNKNOWN = {"wh": "wh_" + "0" * 24, "whev": "whev_" + "0" * 24, "whde": "whde_" + "0" * 24}


@pytest.fixture(scope="module")
def world(shared_hookd, shared_receiver):
    """An active webhook A with a delivered event, and a paused webhook B with a delivery."""
    h = shared_hookd
    a = h.create_webhook(shared_receiver.url("/oa-a"), events=["oa.*"])
    b = h.create_webhook(shared_receiver.url("/oa-b"), events=["oab.*"])
    ev_b = h.ingest("oab.one", {"n": 1})
    dl_b = h.wait_delivery(b["id"], "success")[0]
    r = h.api("PATCH", f"/api/webhook/v1/{b['id']}", {"status": "paused"})
    assert r.status_code == 200, r.text
    ev_a = h.ingest("oa.one", {"n": 2})
    dl_a = h.wait_delivery(a["id"], "success")[0]
    return {"wh_a": a["id"], "wh_b": b["id"], "ev_a": ev_a["id"], "ev_b": ev_b["id"],
            "dl_a": dl_a["id"], "dl_b": dl_b["id"]}


def req(expect, method, url, body=None, raw=None, key=True, headers=None, label=None):
    """One request of a case: expect is 'ok' (must be 2xx) or 'err' (must be 4xx)."""
    return {"expect": expect, "method": method, "url": url, "body": body, "raw": raw,
            "key": key, "headers": headers, "label": label or expect}


JSON = {"content-type": "application/json"}
BAD_JSON = dict(raw='{"name": ', headers=JSON, label="malformed JSON")
NOT_JSON = dict(raw='{"a": 1}', headers={"content-type": "text/plain"}, label="not JSON")

CASES = {}
# the HTTP layer refuses headers over 16 KiB with 431 on every route (the open ones document it)
BIG_HEADERS = dict(headers={"X-Padding": "a" * 17000}, label="headers over 16 KiB")


def case(method, path):
    def reg(fn):
        CASES[(method, path)] = fn
        return fn
    return reg


@case("get", "/api/webhook/health")
def c_health(h, w):
    return [req("ok", "GET", "/api/webhook/health", key=False),
            req("err", "GET", "/api/webhook/health", key=False, **BIG_HEADERS)]


@case("get", "/api/webhook/health/live")
def c_health_live(h, w):
    return [req("ok", "GET", "/api/webhook/health/live", key=False),
            req("err", "GET", "/api/webhook/health/live", key=False, **BIG_HEADERS)]


@case("get", "/api/webhook/health/ready")
def c_health_ready(h, w):
    return [req("ok", "GET", "/api/webhook/health/ready", key=False),
            req("err", "GET", "/api/webhook/health/ready", key=False, **BIG_HEADERS)]


@case("get", "/metrics")
def c_metrics(h, w):
    return [req("ok", "GET", "/metrics", key=False)]


@case("get", "/api/webhook/openapi")
def c_page(h, w):
    return [req("ok", "GET", PAGE, key=False),
            req("err", "GET", PAGE, key=False, **BIG_HEADERS)]


@case("get", "/api/webhook/openapi/json")
def c_doc(h, w):
    return [req("ok", "GET", DOC, key=False),
            req("err", "GET", DOC, key=False, **BIG_HEADERS)]


@case("get", "/api/webhook/openapi/{file}")
def c_asset(h, w):
    return [req("ok", "GET", PAGE + "/swagger-ui.css", key=False),
            req("ok", "GET", PAGE + "/swagger-ui-bundle.js", key=False),
            req("ok", "GET", PAGE + "/favicon-32x32.png", key=False),
            req("err", "GET", PAGE + "/index.html", key=False, label="not on the allow-list"),
            req("err", "GET", PAGE + "/package.json", key=False, label="not on the allow-list"),
            req("err", "GET", PAGE + "/%2e%2e%2fpackage.json", key=False, label="traversal")]


@case("get", "/api/webhook/ui")
def c_dashboard(h, w):
    return [req("ok", "GET", "/api/webhook/ui", key=False),
            req("ok", "GET", "/api/webhook/ui/", key=False, label="with the slash")]


@case("get", "/api/webhook/ui/{file}")
def c_dashboard_file(h, w):
    return [req("ok", "GET", "/api/webhook/ui/app.js", key=False),
            req("ok", "GET", "/api/webhook/ui/style.css", key=False),
            req("err", "GET", "/api/webhook/ui/package.json", key=False, label="not on the allow-list"),
            req("err", "GET", "/api/webhook/ui/%2e%2e%2fCMakeLists.txt", key=False, label="traversal")]


@case("get", "/api/webhook/ui/vendor/{file}")
def c_dashboard_vendor(h, w):
    return [req("ok", "GET", "/api/webhook/ui/vendor/preact.mjs", key=False),
            req("ok", "GET", "/api/webhook/ui/vendor/uplot.css", key=False),
            req("err", "GET", "/api/webhook/ui/vendor/package.json", key=False, label="not on the allow-list")]


@case("get", "/api/webhook/v1/whoami")
def c_whoami(h, w):
    return [req("ok", "GET", "/api/webhook/v1/whoami"),
            req("err", "GET", "/api/webhook/v1/whoami", key=False, label="no key"),
            req("err", "GET", "/api/webhook/v1/whoami", key=admin_key(h), label="admin without org")]


@case("post", "/api/webhook/v1")
def c_create(h, w):
    url = "http://127.0.0.1:9/oa-created"
    return [req("ok", "POST", "/api/webhook/v1", {"name": "oa", "url": url, "events": ["oa.none"]}),
            req("ok", "POST", "/api/webhook/v1", {"description": "oa", "url": url, "events": ["x.*"],
                                                  "signatureSchemes": ["sha256"]}, label="description"),
            req("err", "POST", "/api/webhook/v1", **BAD_JSON),
            req("err", "POST", "/api/webhook/v1", **NOT_JSON),
            req("err", "POST", "/api/webhook/v1", {"name": "oa", "url": url}, label="no events"),
            req("err", "POST", "/api/webhook/v1", {"name": "oa", "url": "ftp://x", "events": ["a"]},
                label="bad url")]


@case("get", "/api/webhook/v1")
def c_list(h, w):
    return [req("ok", "GET", "/api/webhook/v1?page=1&limit=5"),
            req("ok", "GET", "/api/webhook/v1?status=paused", label="status filter"),
            req("err", "GET", "/api/webhook/v1?limit=0", label="limit 0"),
            req("err", "GET", "/api/webhook/v1?status=gone", label="bad status")]


@case("get", "/api/webhook/v1/{id}")
def c_get(h, w):
    return [req("ok", "GET", f"/api/webhook/v1/{w['wh_a']}"),
            req("err", "GET", f"/api/webhook/v1/{UNKNOWN['wh']}", label="unknown id"),
            req("err", "GET", "/api/webhook/v1/not-an-id", label="malformed id")]


@case("patch", "/api/webhook/v1/{id}")
def c_patch(h, w):
    u = f"/api/webhook/v1/{w['wh_a']}"
    return [req("ok", "PATCH", u, {"name": "oa renamed"}),
            req("err", "PATCH", f"/api/webhook/v1/{UNKNOWN['wh']}", {"name": "x"}, label="unknown id"),
            req("err", "PATCH", u, **BAD_JSON),
            req("err", "PATCH", u, {}, label="nothing to change"),
            req("err", "PATCH", u, {"status": "failed"}, label="bad status")]


@case("delete", "/api/webhook/v1/{id}")
def c_delete(h, w):
    gone = h.create_webhook("http://127.0.0.1:9/oa-gone", events=["oa.gone"])
    return [req("ok", "DELETE", f"/api/webhook/v1/{gone['id']}"),
            req("err", "DELETE", f"/api/webhook/v1/{gone['id']}", label="already deleted"),
            req("err", "DELETE", f"/api/webhook/v1/{UNKNOWN['wh']}", label="unknown id")]


@case("post", "/api/webhook/v1/{id}/rotate-secret")
def c_rotate(h, w):
    u = f"/api/webhook/v1/{w['wh_a']}/rotate-secret"
    return [req("ok", "POST", u, {"graceSeconds": 60}),
            req("ok", "POST", u, label="empty body"),
            req("err", "POST", f"/api/webhook/v1/{UNKNOWN['wh']}/rotate-secret", {}, label="unknown id"),
            req("err", "POST", u, **BAD_JSON),
            req("err", "POST", u, {"graceSeconds": -1}, label="negative grace")]


@case("post", "/api/webhook/v1/{id}/rotate-signing-key")
def c_rotate_key(h, w):
    u = f"/api/webhook/v1/{w['wh_a']}/rotate-signing-key"
    return [req("ok", "POST", u, {"graceSeconds": 60}),
            req("ok", "POST", u, label="empty body"),
            req("err", "POST", f"/api/webhook/v1/{UNKNOWN['wh']}/rotate-signing-key", {}, label="unknown id"),
            req("err", "POST", u, **BAD_JSON),
            req("err", "POST", u, {"graceSeconds": -1}, label="negative grace")]


@case("post", "/api/webhook/v1/sign-test-event")
def c_sign(h, w):
    u = "/api/webhook/v1/sign-test-event"
    return [req("ok", "POST", u, {"webhookId": w["wh_a"], "event": "oa.test", "payload": {"x": 1}}),
            req("err", "POST", u, {"webhookId": UNKNOWN["wh"], "event": "oa.test"}, label="unknown webhook"),
            req("err", "POST", u, {"webhookId": w["wh_a"]}, label="no event"),
            req("err", "POST", u, **BAD_JSON),
            req("err", "POST", u, **NOT_JSON)]


@case("post", "/api/webhook/v1/events")
def c_ingest(h, w):
    u = "/api/webhook/v1/events"
    return [req("ok", "POST", u, {"type": "oa.ingest", "data": {"n": 1}, "idempotencyKey": "oa-k1"}),
            req("ok", "POST", u, {"type": "oa.ingest", "data": {"n": 1}, "idempotencyKey": "oa-k1"},
                label="duplicate"),
            req("ok", "POST", u, {"type": "oa.ingest", "data": {}}, headers={"Idempotency-Key": "oa-k2"},
                label="header key"),
            req("err", "POST", u, {"type": "oa.ingest"}, label="no data"),
            req("err", "POST", u, {"type": "bad type!", "data": {}}, label="bad type"),
            req("err", "POST", u, **BAD_JSON),
            req("err", "POST", u, **NOT_JSON)]


@case("post", "/api/webhook/v1/events/batch")
def c_batch(h, w):
    u = "/api/webhook/v1/events/batch"
    return [req("ok", "POST", u, {"events": [{"type": "oa.b1", "data": {}}, {"type": "oa.b2", "data": {}}]}),
            req("err", "POST", u, {"events": []}, label="empty"),
            req("err", "POST", u, {"events": [{"type": "oa.b1"}]}, label="no data"),
            req("err", "POST", u, **BAD_JSON)]


@case("post", "/api/webhook/v1/trigger")
def c_trigger(h, w):
    u = "/api/webhook/v1/trigger"
    return [req("ok", "POST", u, {"event": "oa.trigger", "payload": {"a": 1}}),
            req("err", "POST", u, {"event": "oa.trigger"}, label="no payload"),
            req("err", "POST", u, **BAD_JSON)]


@case("get", "/api/webhook/v1/events")
def c_events(h, w):
    return [req("ok", "GET", "/api/webhook/v1/events?type=oa.one&page=1&limit=100"),
            req("err", "GET", "/api/webhook/v1/events?type=bad%20type", label="bad type"),
            req("err", "GET", "/api/webhook/v1/events?limit=101", label="limit 101")]


@case("get", "/api/webhook/v1/events/{id}")
def c_event(h, w):
    return [req("ok", "GET", f"/api/webhook/v1/events/{w['ev_a']}"),
            req("err", "GET", f"/api/webhook/v1/events/{UNKNOWN['whev']}", label="unknown id")]


@case("get", "/api/webhook/v1/{id}/deliveries")
def c_deliveries(h, w):
    return [req("ok", "GET", f"/api/webhook/v1/{w['wh_a']}/deliveries?status=success"),
            req("err", "GET", f"/api/webhook/v1/{UNKNOWN['wh']}/deliveries", label="unknown webhook"),
            req("err", "GET", f"/api/webhook/v1/{w['wh_a']}/deliveries?status=nope", label="bad status")]


@case("get", "/api/webhook/v1/deliveries/{id}")
def c_delivery(h, w):
    return [req("ok", "GET", f"/api/webhook/v1/deliveries/{w['dl_a']}"),
            req("err", "GET", f"/api/webhook/v1/deliveries/{UNKNOWN['whde']}", label="unknown id")]


def retry_case(prefix):
    def run(h, w):
        return [req("ok", "POST", f"{prefix}/deliveries/{w['dl_a']}/retry"),
                req("err", "POST", f"{prefix}/deliveries/{UNKNOWN['whde']}/retry", label="unknown id"),
                req("err", "POST", f"{prefix}/deliveries/{w['dl_b']}/retry", label="webhook paused")]
    return run


case("post", "/api/webhook/deliveries/{id}/retry")(retry_case("/api/webhook"))
case("post", "/api/webhook/v1/deliveries/{id}/retry")(retry_case("/api/webhook/v1"))


@case("post", "/api/webhook/v1/{id}/recover")
def c_recover(h, w):
    u = f"/api/webhook/v1/{w['wh_a']}/recover"
    return [req("ok", "POST", u, {"since": "2020-01-01T00:00:00Z"}),
            req("ok", "POST", u, {"since": "2020-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
                label="with until"),
            req("err", "POST", f"/api/webhook/v1/{UNKNOWN['wh']}/recover", {"since": "2020-01-01T00:00:00Z"},
                label="unknown webhook"),
            req("err", "POST", f"/api/webhook/v1/{w['wh_b']}/recover", {"since": "2020-01-01T00:00:00Z"},
                label="webhook paused"),
            req("err", "POST", u, {}, label="no since"),
            req("err", "POST", u, {"since": "yesterday"}, label="bad since"),
            req("err", "POST", u, **BAD_JSON)]


# ---- tenancy (SPEC §7): admin routes need an admin key, /v1/api-keys a full one -------------------

def admin_key(h):
    """An admin key of the shared hookd (made once, by the CLI)."""
    if not getattr(h, "oa_admin_key", None):
        h.oa_admin_key = h.cli("apikey", "create", "--admin").stdout.strip()
    return h.oa_admin_key


def oa_org(h):
    """An organization made by the admin key (once), with a key to revoke each time."""
    adm = admin_key(h)
    if not getattr(h, "oa_org", None):
        r = h.api("POST", "/api/webhook/v1/organizations", {"id": "oa_org", "name": "OA"}, key=adm)
        assert r.status_code == 201, r.text
        h.oa_org = "oa_org"
    return h.oa_org


def fresh_key(h, org=None):
    """The id of a new key of org (an admin makes it), or of the shared hookd's organization."""
    r = h.api("POST", f"/api/webhook/v1/organizations/{org or h.org}/api-keys", {"name": "oa"},
              key=admin_key(h))
    assert r.status_code == 201, r.text
    return r.json()["id"]


ORGS = "/api/webhook/v1/organizations"


@case("post", "/api/webhook/v1/organizations")
def c_org_create(h, w):
    adm = admin_key(h)
    return [req("ok", "POST", ORGS, {"name": "OA new", "metadata": {"plan": "pro"}}, key=adm),
            req("ok", "POST", ORGS, None, key=adm, label="empty body"),
            req("err", "POST", ORGS, {"id": "bad id!"}, key=adm, label="bad id"),
            req("err", "POST", ORGS, {"metadata": [1]}, key=adm, label="metadata not an object"),
            req("err", "POST", ORGS, {"id": oa_org(h)}, key=adm, label="id taken"),
            req("err", "POST", ORGS, {"name": "x"}, label="organization key"),
            req("err", "POST", ORGS, key=adm, **BAD_JSON)]


@case("get", "/api/webhook/v1/organizations")
def c_org_list(h, w):
    adm = admin_key(h)
    oa_org(h)
    return [req("ok", "GET", ORGS + "?page=1&limit=5", key=adm),
            req("err", "GET", ORGS + "?limit=0", key=adm, label="limit 0"),
            req("err", "GET", ORGS, label="organization key")]


@case("get", "/api/webhook/v1/organizations/{id}")
def c_org_get(h, w):
    adm = admin_key(h)
    return [req("ok", "GET", f"{ORGS}/{oa_org(h)}", key=adm),
            req("err", "GET", f"{ORGS}/no_such_org", key=adm, label="unknown id"),
            req("err", "GET", f"{ORGS}/{oa_org(h)}", label="organization key")]


@case("patch", "/api/webhook/v1/organizations/{id}")
def c_org_patch(h, w):
    adm = admin_key(h)
    u = f"{ORGS}/{oa_org(h)}"
    return [req("ok", "PATCH", u, {"name": "OA renamed", "disabled": False}, key=adm),
            req("err", "PATCH", f"{ORGS}/no_such_org", {"name": "x"}, key=adm, label="unknown id"),
            req("err", "PATCH", u, {"disabled": "yes"}, key=adm, label="bad disabled"),
            req("err", "PATCH", u, {"name": ""}, key=adm, label="empty name"),
            req("err", "PATCH", u, {"name": "x"}, label="organization key"),
            req("err", "PATCH", u, key=adm, **BAD_JSON)]


@case("get", "/api/webhook/v1/organizations/{id}/api-keys")
def c_org_keys(h, w):
    adm = admin_key(h)
    return [req("ok", "GET", f"{ORGS}/{oa_org(h)}/api-keys", key=adm),
            req("err", "GET", f"{ORGS}/no_such_org/api-keys", key=adm, label="unknown org"),
            req("err", "GET", f"{ORGS}/{oa_org(h)}/api-keys", label="organization key")]


@case("post", "/api/webhook/v1/organizations/{id}/api-keys")
def c_org_key_create(h, w):
    adm = admin_key(h)
    u = f"{ORGS}/{oa_org(h)}/api-keys"
    return [req("ok", "POST", u, {"name": "ro", "scope": "read"}, key=adm),
            req("ok", "POST", u, None, key=adm, label="empty body"),
            req("err", "POST", u, {"scope": "admin"}, key=adm, label="bad scope"),
            req("err", "POST", f"{ORGS}/no_such_org/api-keys", {}, key=adm, label="unknown org"),
            req("err", "POST", u, {}, label="organization key"),
            req("err", "POST", u, key=adm, **BAD_JSON)]


@case("delete", "/api/webhook/v1/organizations/{id}/api-keys/{keyId}")
def c_org_key_revoke(h, w):
    adm = admin_key(h)
    org = oa_org(h)
    kid = fresh_key(h, org)
    return [req("ok", "DELETE", f"{ORGS}/{org}/api-keys/{kid}", key=adm),
            req("err", "DELETE", f"{ORGS}/{org}/api-keys/{kid}", key=adm, label="revoked already"),
            req("err", "DELETE", f"{ORGS}/{org}/api-keys/{fresh_key(h)}", key=adm,
                label="another organization's key"),
            req("err", "DELETE", f"{ORGS}/{org}/api-keys/{fresh_key(h, org)}", label="organization key")]


@case("get", "/api/webhook/v1/api-keys")
def c_keys(h, w):
    adm = admin_key(h)
    return [req("ok", "GET", "/api/webhook/v1/api-keys"),
            req("ok", "GET", "/api/webhook/v1/api-keys", key=adm, headers={"X-Organization-Id": h.org},
                label="admin acting on the organization"),
            req("err", "GET", "/api/webhook/v1/api-keys", key=adm, label="admin without X-Organization-Id")]


@case("post", "/api/webhook/v1/api-keys")
def c_key_create(h, w):
    return [req("ok", "POST", "/api/webhook/v1/api-keys", {"name": "mine", "scope": "read"}),
            req("err", "POST", "/api/webhook/v1/api-keys", {"scope": "write"}, label="bad scope"),
            req("err", "POST", "/api/webhook/v1/api-keys", **BAD_JSON)]


@case("delete", "/api/webhook/v1/api-keys/{id}")
def c_key_revoke(h, w):
    return [req("ok", "DELETE", f"/api/webhook/v1/api-keys/{fresh_key(h)}"),
            req("err", "DELETE", f"/api/webhook/v1/api-keys/{fresh_key(h, oa_org(h))}",
                label="another organization's key")]


@case("get", "/api/webhook/v1/deliveries")
def c_search(h, w):
    u = "/api/webhook/v1/deliveries"
    first = h.api("GET", u + "?limit=1").json()
    return [req("ok", "GET", f"{u}?limit=5&status=success&webhookId={w['wh_a']}"),
            req("ok", "GET", f"{u}?limit=1&cursor={first['next']}", label="next page"),
            req("ok", "GET", f"{u}?eventId={w['ev_a']}&since=2020-01-01T00:00:00Z", label="lookup"),
            req("err", "GET", f"{u}?limit=101", label="limit 101"),
            req("err", "GET", f"{u}?cursor=nope", label="bad cursor"),
            req("err", "GET", f"{u}?deliveryId=x", label="bad id")]


@case("get", "/api/webhook/v1/stats")
def c_org_stats(h, w):
    u = "/api/webhook/v1/stats"
    return [req("ok", "GET", u), req("ok", "GET", f"{u}?limit=1", label="a page of one"),
            req("err", "GET", f"{u}?limit=0", label="limit 0"),
            req("err", "GET", f"{u}?cursor=nope", label="bad cursor")]


@case("get", "/api/webhook/v1/{id}/stats")
def c_webhook_stats(h, w):
    u = f"/api/webhook/v1/{w['wh_a']}/stats"
    return [req("ok", "GET", u), req("ok", "GET", f"{u}?interval=minute", label="by minute"),
            req("ok", "GET", f"{u}?from=2020-01-01T00:00:00Z&to=2020-01-03T00:00:00Z&interval=day",
                label="a range"),
            req("err", "GET", f"{u}?interval=week", label="bad interval"),
            req("err", "GET", f"{u}?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z&interval=minute",
                label="too many buckets"),
            req("err", "GET", "/api/webhook/v1/wh_000000000000000000000000/stats", label="unknown")]


@case("post", "/api/webhook/v1/portal-sessions")
def c_session_create(h, w):
    u = "/api/webhook/v1/portal-sessions"
    adm = admin_key(h)
    return [req("ok", "POST", u, {"scope": "read", "ttlSeconds": 600}),
            req("ok", "POST", u, {"organizationId": oa_org(h)}, key=adm, label="admin"),
            req("err", "POST", u, {}, key=adm, label="admin without organizationId"),
            req("err", "POST", u, {"organizationId": "no_such_org"}, key=adm, label="unknown org"),
            req("err", "POST", u, {"ttlSeconds": 0}, label="bad ttl"),
            req("err", "POST", u, {"organizationId": oa_org(h)}, label="another organization"),
            req("err", "POST", u, **BAD_JSON)]


@case("delete", "/api/webhook/v1/portal-sessions/{id}")
def c_session_revoke(h, w):
    r = h.api("POST", "/api/webhook/v1/portal-sessions", {})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    return [req("ok", "DELETE", f"/api/webhook/v1/portal-sessions/{sid}"),
            req("err", "DELETE", f"/api/webhook/v1/portal-sessions/{sid}", label="revoked already")]


def test_every_documented_operation_has_a_case(doc):
    documented = {(m, p) for m, p, _ in operations(doc)}
    assert documented == set(CASES), (
        f"documented but not exercised: {sorted(documented - set(CASES))}; "
        f"exercised but not documented: {sorted(set(CASES) - documented)}")


def route_missing(r):
    """The server has no such route (yet): 404 'no such route', or 405 for another method."""
    if r.status_code not in (404, 405):
        return False
    try:
        body = r.json()
    except ValueError:
        return False
    return body.get("message") == "no such route" or body.get("code") == "method_not_allowed"


def check_answer(doc, method, path, rq, r):
    what = f"{method.upper()} {path} [{rq['label']}] -> {r.status_code}"
    op = doc["paths"][path][method]
    status = str(r.status_code)
    assert status in op["responses"], \
        f"{what}: status not documented (documented: {sorted(op['responses'])}): {r.text[:300]}"
    if rq["expect"] == "ok":
        assert 200 <= r.status_code < 300, f"{what}: a valid request failed: {r.text[:300]}"
    else:
        assert 400 <= r.status_code < 500, f"{what}: an invalid request was not refused: {r.text[:300]}"
    resp = resolve(doc, op["responses"][status])
    content = resp.get("content")
    if not content:
        return
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    assert ctype in content, f"{what}: content type {ctype!r} not documented ({sorted(content)})"
    if ctype == "application/json":
        validate(doc, r.json(), content[ctype]["schema"], what)


@pytest.mark.parametrize("method,path", sorted(CASES), ids=[f"{m.upper()} {p}" for m, p in sorted(CASES)])
def test_operation_answers_as_documented(doc, world, shared_hookd, method, path):
    h = shared_hookd
    if path not in doc["paths"] or method not in doc["paths"][path]:
        pytest.fail(f"{method.upper()} {path} has a case but is not documented")
    op = doc["paths"][path][method]
    reqs = CASES[(method, path)](h, world)
    sec = op.get("security", doc.get("security"))
    if sec and {} not in sec:
        # every route that needs a key refuses a missing or unknown one, whatever the request
        first = next(r for r in reqs if r["expect"] == "ok")
        reqs += [dict(first, expect="err", key=False, label="no API key"),
                 dict(first, expect="err", key="wrong_key_0123456789abc", label="unknown API key")]
    for i, rq in enumerate(reqs):
        r = h.api(rq["method"], rq["url"], body=rq["body"], raw=rq["raw"], key=rq["key"],
                  headers=rq["headers"])
        if i == 0 and route_missing(r):
            pytest.fail(f"{method.upper()} {path} is documented but the server has no such "
                        f"route ({r.status_code} {r.text[:120]})")
        check_answer(doc, method, path, rq, r)


def schema_props(doc, name):
    s = doc["components"]["schemas"][name]
    return set(s["properties"]), set(s["required"])


def test_other_methods_are_405_with_the_documented_allow(doc, shared_hookd):
    """Every documented path, asked with a method it does not document, answers 405
    method_not_allowed whose Allow lists exactly the documented methods, each once. A literal
    path (/v1/events, /v1/whoami, /v1/events/batch) is never taken for the id of /v1/{id} or
    /v1/events/{id}: DELETE /v1/events once answered 404 "webhook not found"."""
    wrong = []
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}
        url = re.sub(r"\{[^}]*\}", "id_" + "0" * 24, path)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in documented:
                continue
            r = shared_hookd.api(method, url, {} if method in ("POST", "PUT", "PATCH") else None)
            allow = [m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()]
            if r.status_code != 405 or sorted(allow) != sorted(documented):
                wrong.append(f"{method} {url} -> {r.status_code} Allow: {allow} "
                             f"(documented: {sorted(documented)}) {r.text[:120]}")
            elif r.json()["code"] != "method_not_allowed":
                wrong.append(f"{method} {url}: code {r.json()['code']}")
    assert not wrong, "\n".join(wrong)


def test_documented_fields_are_the_fields_hookd_sends(doc, world, shared_hookd):
    """No field missing from the document, none documented that hookd never sends."""
    h = shared_hookd
    wh = h.webhook(world["wh_a"])
    props, required = schema_props(doc, "Webhook")
    assert required <= set(wh) <= props, (set(wh) ^ props)
    assert "previousSecretExpiresAt" in props - required  # only during a grace period
    d = h.delivery(world["dl_a"])
    props, required = schema_props(doc, "Delivery")
    assert required <= set(d) <= props, (set(d) ^ props)
    assert d["attempts"], "the delivered delivery has an attempt"
    props, required = schema_props(doc, "Attempt")
    for a in d["attempts"]:
        assert required <= set(a) <= props, (set(a) ^ props)
    ev = h.api("GET", f"/api/webhook/v1/events/{world['ev_a']}").json()
    props, required = schema_props(doc, "Event")
    assert required <= set(ev) <= props, (set(ev) ^ props)


# ---- (c) the page and Swagger UI's files ---------------------------------------------------------

def asset_urls(html):
    return sorted({u for u in re.findall(r'(?:src|href)="(/api/webhook/openapi/[^"]+)"', html)
                   if not u.endswith("/json")})


CTYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


def test_page_loads_swagger_ui_from_hookd(shared_hookd):
    h = shared_hookd
    r = h.api("GET", PAGE, key=False)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "cache-control" in r.headers
    html = r.text
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert 'href="/api/webhook/openapi/json"' in html
    assert "/api/webhook/openapi/swagger-ui-bundle.js" in html
    assert "/api/webhook/openapi/swagger-ui.css" in html
    urls = asset_urls(html)
    assert len(urls) >= 2, urls
    for u in urls:
        a = h.api("GET", u, key=False)
        assert a.status_code == 200, (u, a.text[:200])
        ext = os.path.splitext(u)[1]
        assert a.headers["content-type"].split(";")[0] == CTYPES[ext], u
        assert "max-age" in a.headers.get("cache-control", ""), u
        assert a.headers.get("x-content-type-options") == "nosniff"
        on_disk = os.path.join(UI_DIST, os.path.basename(u))
        if os.path.isfile(on_disk):
            with open(on_disk, "rb") as f:
                assert a.content == f.read(), f"{u} differs from {on_disk}"
    # HEAD answers the same headers without the body
    hd = h.api("HEAD", PAGE + "/swagger-ui.css", key=False)
    assert hd.status_code == 200 and hd.content == b""


def raw_get(h, path):
    with socket.create_connection(("127.0.0.1", h.port), timeout=10 * SLOW) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_only_the_allow_listed_files_are_served(shared_hookd):
    h = shared_hookd
    for path in ("/api/webhook/openapi/../../../../etc/passwd",
                 "/api/webhook/openapi/..%2f..%2f..%2fetc%2fpasswd",
                 "/api/webhook/openapi/%2e%2e%2fpackage.json",
                 "/api/webhook/openapi/package.json",
                 "/api/webhook/openapi/index.html",
                 "/api/webhook/openapi/swagger-ui.js",
                 "/api/webhook/openapi/swagger-ui-bundle.js.map",
                 "/api/webhook/openapi/swagger-ui.css/x",
                 "/api/webhook/openapi/.",
                 "/api/webhook/openapi/" + "a" * 300):
        status, body = raw_get(h, path)
        assert status in (400, 404), (path, status)
        assert b"root:" not in body and b'"name"' not in body, path
        assert body.lstrip().startswith(b"{"), (path, body[:100])  # JSON error, never a file


def test_page_without_swagger_ui_files_still_links_the_document(hookd, tmp_path):
    empty = tmp_path / "no-ui"
    empty.mkdir()
    h = hookd(HOOKD_SWAGGER_UI_DIR=str(empty))
    r = h.api("GET", PAGE, key=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'href="/api/webhook/openapi/json"' in r.text
    assert "swagger-ui-bundle.js\"" not in r.text  # no script that cannot load
    assert "/api/webhook/v1/{id}/rotate-secret" in r.text  # the routes, as plain HTML
    a = h.api("GET", PAGE + "/swagger-ui-bundle.js", key=False)
    assert a.status_code == 404 and a.json()["code"] == "not_found"
    assert "HOOKD_SWAGGER_UI_DIR" in a.json()["fix"]
    assert h.api("GET", DOC, key=False).json()["openapi"].startswith("3.1")


def test_swagger_ui_dir_option_is_honoured(hookd, tmp_path):
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "swagger-ui-bundle.js").write_text("/* a stand-in bundle */\n")
    (ui / "swagger-ui.css").write_text("body { color: black }\n")
    h = hookd(HOOKD_SWAGGER_UI_DIR=str(ui))
    assert "swagger-ui-bundle.js" in h.api("GET", PAGE, key=False).text
    a = h.api("GET", PAGE + "/swagger-ui-bundle.js", key=False)
    assert a.status_code == 200 and a.text == "/* a stand-in bundle */\n"
    assert h.api("GET", PAGE + "/swagger-ui.css", key=False).text == "body { color: black }\n"
    assert h.api("GET", PAGE + "/favicon-32x32.png", key=False).status_code == 404  # not there


# ---- (d) the page in a browser ---------------------------------------------------------------------

def chromium_bin():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def run_chromium(tmp_path, *args):
    exe = chromium_bin()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium'}",
           "--window-size=1280,2000", "--virtual-time-budget=5000", *args]
    env = dict(os.environ, HOME=str(tmp_path))
    return subprocess.run(cmd, capture_output=True, timeout=180 * SLOW, env=env)


def test_page_renders_in_headless_chromium(doc, shared_hookd, tmp_path):
    if not chromium_bin():
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup.sh does)")
    url = shared_hookd.base + PAGE
    shot = tmp_path / "openapi.png"
    p = run_chromium(tmp_path, f"--screenshot={shot}", url)
    assert shot.is_file(), p.stderr.decode(errors="replace")[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20000, len(png)
    keep = os.environ.get("HOOKD_SCREENSHOT_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, "openapi.png"))
    print(f"screenshot: {shot}")

    p = run_chromium(tmp_path, "--dump-dom", url)
    dom = p.stdout.decode(errors="replace")
    assert dom, p.stderr.decode(errors="replace")[-2000:]
    # what Swagger UI drew, not the <noscript> fallback
    drawn = re.sub(r"<noscript>.*?</noscript>", "", dom, flags=re.S)
    assert "opblock" in drawn, "Swagger UI did not render the operations"
    assert "/api/webhook/v1/events" in drawn
    assert "rotate-secret" in drawn
    shown = set(re.findall(r'data-path="([^"]+)"', drawn))
    missing = sorted(p for _, p, _ in operations(doc) if p not in shown)
    assert not missing, f"paths not rendered: {missing}"
