"""A client generated from hookd's OpenAPI document runs README's quick start (issue 19, item 5).

openapi-typescript (npm, pinned in package.json) generates TypeScript types from GET
/api/webhook/openapi/json of a real hookd; tsc (strict) type-checks tests/integration/
client_quickstart.mts, which uses openapi-fetch typed by them, and compiles it; Node runs it
against that hookd and a real receiver: create a webhook, ingest an event, see its delivery
succeed, list and search deliveries, one refused create. Then every answer the client got is
checked against the document's schema for its operation and status (python3-jsonschema), and
the receiver must have got the event.
"""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, SLOW
from test_openapi import DOC, resolve, validate

NODE_MODULES = os.path.join(ROOT, "node_modules")
SCRIPT = os.path.join(ROOT, "tests", "integration", "client_quickstart.mts")


def npm_bin(name):
    exe = os.path.join(NODE_MODULES, ".bin", name)
    if not os.path.isfile(exe):
        pytest.fail(f"{name} is not installed: run scripts/setup.sh (npm ci from package-lock.json)")
    return exe


def run(cmd, cwd, env=None, timeout=120):
    """Runs a Node tool in cwd (also its HOME: nothing is written outside); fails on an exit
    other than 0."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout * SLOW,
                       env=dict(os.environ, NO_COLOR="1", HOME=cwd, REDOCLY_TELEMETRY="off",
                                REDOCLY_SUPPRESS_UPDATE_NOTICE="true", **(env or {})))
    assert p.returncode == 0, f"{' '.join(cmd)} exited with {p.returncode}:\n" \
                              f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture
def client_dir(shared_hookd, tmp_path):
    """A directory with the generated types (from the served document), the quick start and a
    tsconfig, compiled: tsc fails on anything the types do not allow."""
    if not shutil.which("node"):
        pytest.fail("node is not installed (scripts/setup.sh installs it)")
    d = tmp_path / "client"
    d.mkdir()
    os.symlink(NODE_MODULES, d / "node_modules")  # openapi-fetch, for tsc and for node
    run([npm_bin("openapi-typescript"), shared_hookd.base + DOC, "--output",
         str(d / "hookd-api.d.ts")], cwd=str(d))
    shutil.copy(SCRIPT, d / "client_quickstart.mts")
    (d / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "strict": True, "noUncheckedIndexedAccess": True, "exactOptionalPropertyTypes": True,
        "target": "es2022", "module": "es2022", "moduleResolution": "bundler",
        "lib": ["es2022", "dom"], "types": [], "skipLibCheck": False, "noEmitOnError": True,
        "outDir": "out"}, "files": ["client_quickstart.mts", "hookd-api.d.ts"]}))
    run([npm_bin("tsc"), "-p", "tsconfig.json"], cwd=str(d))
    assert (d / "out" / "client_quickstart.mjs").is_file()
    return d


def test_generated_client_runs_the_quick_start(shared_hookd, shared_receiver, client_dir):
    h = shared_hookd
    url = shared_receiver.url("/openapi-client-quickstart")
    p = run(["node", str(client_dir / "out" / "client_quickstart.mjs")], cwd=str(client_dir),
            env={"HOOKD_BASE": h.base, "HOOKD_KEY": h.key, "RECEIVER_URL": url,
                 "TIMEOUT_MS": str(int(15000 * SLOW))})
    out = json.loads(p.stdout.strip().splitlines()[-1])

    # what the receiver got is the event the client ingested
    got = shared_receiver.wait(1, path="/openapi-client-quickstart")[0]
    body = got.json
    assert body["id"] == out["eventId"] and body["type"] == "order.paid"
    assert body["data"] == {"order": 42}
    assert got.headers["x-delivery-id"] == out["deliveryId"]

    # every answer the generated client got is what the document says for that status
    doc = h.api("GET", DOC, key=False).json()
    calls = out["calls"]
    seen = {(c["method"], c["path"]) for c in calls}
    assert {("post", "/api/webhook/v1"), ("post", "/api/webhook/v1/events"),
            ("get", "/api/webhook/v1/{id}/deliveries"), ("get", "/api/webhook/v1/deliveries"),
            ("get", "/api/webhook/v1/deliveries/{id}")} <= seen, seen
    for c in calls:
        what = f"{c['method'].upper()} {c['path']} -> {c['status']}"
        op = doc["paths"][c["path"]][c["method"]]
        assert str(c["status"]) in op["responses"], f"{what}: status not documented"
        resp = resolve(doc, op["responses"][str(c["status"])])
        validate(doc, c["body"], resp["content"]["application/json"]["schema"], what)
    assert any(c["status"] == 422 for c in calls), "the refused create was not made"
