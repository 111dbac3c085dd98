"""Tenancy (issue 17 items 1, 2, 3 and 5; SPEC §7): admin keys, organizations, API keys by API,
scopes, portal sessions (with webhookIds), the organization-wide delivery search. Real hookd,
real receivers, SQLite or (HOOKD_TEST_STORE=pg) PostgreSQL.

The authorization matrix takes the routes from src/api/api.c's route table itself: a route
added there without an entry in ROUTES below fails test_matrix_covers_every_route, and every
route is called with each credential of CREDS: an admin key without and with
X-Organization-Id, the organization's full key, its read key, another organization's key, a
revoked key, a disabled organization's key, and portal sessions of the organization (full,
read, expired, and one limited to one webhook with webhookIds). Each answer must have the expected status, and
no answer to another organization's key may hold anything of the first organization."""
import json
import os
import re
import sqlite3
import time

import pytest

import conftest
from conftest import ROOT, SLOW, wait_until
from servers import previous_hookd

V1 = "/api/webhook/v1"
ORGS = V1 + "/organizations"


# ---- the route table of src/api/api.c --------------------------------------------------------------

def router_routes():
    """(METHOD, path pattern) of every entry of the route table in src/api/api.c."""
    text = open(os.path.join(ROOT, "src", "api", "api.c"), encoding="utf-8").read()
    table = text.split("static const hk_route routes[] = {", 1)[1].split("\n};", 1)[0]
    out = []
    for m, prefix, path in re.findall(r'\{HK_HTTP_(\w+),\s*(API_PREFIX\s*)?"([^"]*)"', table):
        out.append((m, ("/api/webhook" if prefix else "") + path))
    assert len(out) >= 20, out
    return out


# ---- the world: organizations A (with everything), B (another), C (disabled) ------------------------

class World:
    def __init__(self, h, receiver):
        self.h = h
        self.receiver = receiver
        self.admin = h.cli("apikey", "create", "--admin").stdout.strip()
        self.responses = []  # (label, text) of every answer, to look for keys in
        self.keys = {}       # plaintext -> index of the answer that showed it (-1: the CLI)
        self.keys[self.admin] = -1
        self.keys[h.key] = -1
        for org in ("org_a", "org_b", "org_c"):
            self.call("POST", ORGS, {"id": org, "name": "Name of " + org}, key=self.admin, want=201)
        self.full = self.new_key("org_a")
        self.read = self.new_key("org_a", scope="read")
        self.other = self.new_key("org_b")
        self.revoked_id, self.revoked = self.new_key("org_a", with_id=True)
        self.disabled = self.new_key("org_c")
        self.session_full = self.new_session(self.full, {})
        self.session_read = self.new_session(self.admin, {"organizationId": "org_a",
                                                          "scope": "read"})
        self.expired_session = self.new_session(self.full, {"ttlSeconds": 1})
        self.session_limited = None  # made once A's webhook exists
        expires = time.monotonic() + 1.05
        # A's data, and the strings no other organization may ever see
        self.marker = "marker-of-org-a-7f3k"
        wh = self.call("POST", V1, {"name": self.marker, "url": receiver.url("/a"), "events": ["*"],
                                    "rateLimitEnabled": False}, key=self.full, want=201).json()
        self.wh = wh["id"]
        ev = self.call("POST", V1 + "/events", {"type": "a.created", "data": {"m": self.marker}},
                       key=self.full, want=202).json()
        self.ev = ev["id"]
        self.dl = wait_until(lambda: self.call("GET", f"{V1}/{self.wh}/deliveries",
                                               key=self.full).json()["deliveries"], 15, 0.05,
                             "a delivery of A")[0]["id"]
        self.secrets_of_a = {self.wh, self.ev, self.dl, self.marker}
        self.session_limited = self.new_session(self.full, {"webhookIds": [self.wh]})
        # C: a webhook, then disabled
        self.call("POST", V1, {"name": "c", "url": receiver.url("/c"), "events": ["*"]},
                  key=self.disabled, want=201)
        self.call("PATCH", ORGS + "/org_c", {"disabled": True}, key=self.admin, want=200)
        # the revoked key worked, then is revoked through the API
        self.call("GET", V1, key=self.revoked, want=200)
        self.call("DELETE", f"{ORGS}/org_a/api-keys/{self.revoked_id}", key=self.admin, want=200)
        time.sleep(max(0.0, expires - time.monotonic()))

    def call(self, method, path, body=None, key=None, headers=None, want=None):
        r = self.h.api(method, path, body, key=key, headers=headers)
        self.responses.append((f"{method} {path}", r.text))
        if want is not None:
            assert r.status_code == want, f"{method} {path}: {r.status_code} {r.text}"
        return r

    def new_key(self, org, scope="full", with_id=False):
        r = self.call("POST", f"{ORGS}/{org}/api-keys", {"name": f"{org} {scope}", "scope": scope},
                      key=self.admin, want=201)
        body = r.json()
        assert body["scope"] == scope and body["organizationId"] == org
        self.keys[body["key"]] = len(self.responses) - 1
        return (body["id"], body["key"]) if with_id else body["key"]

    def new_session(self, key, body):
        r = self.call("POST", V1 + "/portal-sessions", body, key=key, want=201)
        s = r.json()
        assert s["organizationId"] == "org_a"
        url = s["url"]
        assert url.endswith("/api/webhook/ui/#token=" + s["token"]) and "?" not in url
        self.keys[s["token"]] = len(self.responses) - 1
        return s["token"]

    def fresh_session_id(self):
        return self.call("POST", V1 + "/portal-sessions", {}, key=self.full, want=201).json()["id"]

    def fresh_webhook(self):
        return self.call("POST", V1, {"name": "fresh", "url": self.receiver.url("/fresh"),
                                      "events": ["fresh.none"]}, key=self.full, want=201).json()["id"]

    def fresh_key_id(self, org="org_a"):
        r = self.call("POST", f"{ORGS}/{org}/api-keys", {}, key=self.admin, want=201)
        self.keys[r.json()["key"]] = len(self.responses) - 1
        return r.json()["id"]


# Credentials: name -> (key attribute of World, extra headers)
CREDS = ["admin", "admin_as_a", "full", "read", "other", "revoked", "disabled", "session_full",
         "session_read", "expired_session", "session_limited"]


def cred(w, name):
    if name == "admin":
        return w.admin, None
    if name == "admin_as_a":
        return w.admin, {"X-Organization-Id": "org_a"}
    return getattr(w, name), None


# Expected statuses per kind of route. "own": another organization's key acts on its own
# organization (a create, an ingest, a list); "id": the route names one of A's resources.
OPEN = {c: 200 for c in CREDS}  # no key needed: every credential is simply ignored


def org_route(ok, read, other, session=None):
    """session: what a full portal session gets (default: as the full key)."""
    return {"admin": 422, "admin_as_a": ok, "full": ok, "read": read, "other": other,
            "revoked": 401, "disabled": 401, "session_full": session or ok,
            "session_read": 403 if session else read, "expired_session": 401}


def admin_route(ok):
    return {"admin": ok, "admin_as_a": ok, "full": 403, "read": 403, "other": 403,
            "revoked": 401, "disabled": 401, "session_full": 403, "session_read": 403,
            "expired_session": 401}


GET_OWN = org_route(200, 200, 200)
GET_ID = org_route(200, 200, 404)

# (METHOD, pattern) -> (expected statuses, request maker(world) -> (path, body))
ROUTES = {
    ("GET", "/api/webhook/health"): (OPEN, lambda w: ("/api/webhook/health", None)),
    ("GET", "/api/webhook/health/live"): (OPEN, lambda w: ("/api/webhook/health/live", None)),
    ("GET", "/api/webhook/health/ready"): (OPEN, lambda w: ("/api/webhook/health/ready", None)),
    ("GET", "/api/webhook/openapi"): (OPEN, lambda w: ("/api/webhook/openapi", None)),
    ("GET", "/api/webhook/openapi/json"): (OPEN, lambda w: ("/api/webhook/openapi/json", None)),
    ("GET", "/api/webhook/openapi/:id"): (
        {c: (200, 404) for c in CREDS}, lambda w: ("/api/webhook/openapi/swagger-ui.css", None)),
    ("GET", "/metrics"): (OPEN, lambda w: ("/metrics", None)),
    ("POST", V1): (org_route(201, 403, 201), lambda w: (
        V1, {"name": "m", "url": w.receiver.url("/m"), "events": ["m.none"]})),
    ("GET", V1): (GET_OWN, lambda w: (V1 + "?limit=100", None)),
    ("POST", V1 + "/events"): (org_route(202, 403, 202), lambda w: (
        V1 + "/events", {"type": "m.none", "data": {}})),
    ("GET", V1 + "/events"): (GET_OWN, lambda w: (V1 + "/events?limit=100", None)),
    ("POST", V1 + "/events/batch"): (org_route(202, 403, 202), lambda w: (
        V1 + "/events/batch", {"events": [{"type": "m.none", "data": {}}]})),
    ("GET", V1 + "/events/:id"): (GET_ID, lambda w: (f"{V1}/events/{w.ev}", None)),
    ("POST", V1 + "/trigger"): (org_route(202, 403, 202), lambda w: (
        V1 + "/trigger", {"event": "m.none", "payload": {}})),
    ("POST", V1 + "/sign-test-event"): (org_route(200, 403, 404), lambda w: (
        V1 + "/sign-test-event", {"webhookId": w.wh, "event": "a.x", "payload": {}})),
    ("POST", V1 + "/deliveries/:id/retry"): (org_route(202, 403, 404), lambda w: (
        f"{V1}/deliveries/{w.dl}/retry", None)),
    ("POST", "/api/webhook/deliveries/:id/retry"): (org_route(202, 403, 404), lambda w: (
        f"/api/webhook/deliveries/{w.dl}/retry", None)),
    ("GET", V1 + "/deliveries/:id"): (GET_ID, lambda w: (f"{V1}/deliveries/{w.dl}", None)),
    ("GET", V1 + "/deliveries"): (GET_OWN, lambda w: (f"{V1}/deliveries?limit=100", None)),
    ("POST", ORGS): (admin_route(201), lambda w: (ORGS, {"name": "made in the matrix"})),
    ("GET", ORGS): (admin_route(200), lambda w: (ORGS + "?limit=100", None)),
    ("GET", ORGS + "/:id"): (admin_route(200), lambda w: (ORGS + "/org_a", None)),
    ("PATCH", ORGS + "/:id"): (admin_route(200), lambda w: (
        ORGS + "/org_a", {"metadata": {"touched": True}})),
    ("GET", ORGS + "/:id/api-keys"): (admin_route(200), lambda w: (ORGS + "/org_a/api-keys", None)),
    ("POST", ORGS + "/:id/api-keys"): (admin_route(201), lambda w: (
        ORGS + "/org_a/api-keys", {"scope": "read"})),
    ("DELETE", ORGS + "/:id/api-keys/:id"): (admin_route(200), lambda w: (
        f"{ORGS}/org_a/api-keys/{w.fresh_key_id()}", None)),
    # the key routes need a full key, GET included, and no portal session
    ("GET", V1 + "/api-keys"): (org_route(200, 403, 200, session=403), lambda w: (
        V1 + "/api-keys", None)),
    ("POST", V1 + "/api-keys"): (org_route(201, 403, 201, session=403), lambda w: (
        V1 + "/api-keys", {})),
    ("DELETE", V1 + "/api-keys/:id"): (org_route(200, 403, 404, session=403), lambda w: (
        f"{V1}/api-keys/{w.fresh_key_id()}", None)),
    # portal sessions: minted by an admin key (naming the organization) or a full key
    ("POST", V1 + "/portal-sessions"): (
        {"admin": 201, "admin_as_a": 201, "full": 201, "read": 403, "other": 403, "revoked": 401,
         "disabled": 401, "session_full": 403, "session_read": 403, "expired_session": 401},
        lambda w: (V1 + "/portal-sessions", {"organizationId": "org_a", "ttlSeconds": 60})),
    ("DELETE", V1 + "/portal-sessions/:id"): (org_route(200, 403, 404, session=403), lambda w: (
        f"{V1}/portal-sessions/{w.fresh_session_id()}", None)),
    ("GET", V1 + "/:id"): (GET_ID, lambda w: (f"{V1}/{w.wh}", None)),
    ("PATCH", V1 + "/:id"): (org_route(200, 403, 404), lambda w: (f"{V1}/{w.wh}", {"name": w.marker})),
    ("DELETE", V1 + "/:id"): (org_route(200, 403, 404), lambda w: (f"{V1}/{w.fresh_webhook()}", None)),
    ("GET", V1 + "/:id/deliveries"): (GET_ID, lambda w: (f"{V1}/{w.wh}/deliveries", None)),
    # statistics (test_stats.py): the organization's summary, one webhook's buckets
    ("GET", V1 + "/stats"): (GET_OWN, lambda w: (V1 + "/stats", None)),
    ("GET", V1 + "/:id/stats"): (GET_ID, lambda w: (f"{V1}/{w.wh}/stats", None)),
    # the dashboard's files are open; whoami answers any credential of the organization
    ("GET", "/api/webhook/ui"): (OPEN, lambda w: ("/api/webhook/ui/", None)),
    ("GET", "/api/webhook/ui/:id"): (OPEN, lambda w: ("/api/webhook/ui/app.js", None)),
    ("GET", "/api/webhook/ui/vendor/:id"): (OPEN, lambda w: ("/api/webhook/ui/vendor/htm.mjs", None)),
    ("GET", V1 + "/whoami"): (GET_OWN, lambda w: (V1 + "/whoami", None)),
    ("POST", V1 + "/:id/rotate-secret"): (org_route(200, 403, 404), lambda w: (
        f"{V1}/{w.wh}/rotate-secret", {"graceSeconds": 60})),
    ("POST", V1 + "/:id/rotate-signing-key"): (org_route(200, 403, 404), lambda w: (
        f"{V1}/{w.wh}/rotate-signing-key", {"graceSeconds": 60})),
    ("POST", V1 + "/:id/recover"): (org_route(202, 403, 404), lambda w: (
        f"{V1}/{w.wh}/recover", {"since": "2020-01-01T00:00:00Z"})),
}


# A session limited to A's webhook (webhookIds): that webhook's routes (DELETE takes a fresh
# webhook: 404), the list and a delivery of it; every other route of the organization is 403.
LIMITED = {("GET", V1): 200, ("GET", V1 + "/deliveries/:id"): 200, ("GET", V1 + "/:id"): 200,
           ("PATCH", V1 + "/:id"): 200, ("DELETE", V1 + "/:id"): 404,
           ("GET", V1 + "/:id/deliveries"): 200, ("POST", V1 + "/:id/rotate-secret"): 200,
           ("GET", V1 + "/stats"): 200, ("GET", V1 + "/:id/stats"): 200, ("GET", V1 + "/whoami"): 200,
           ("POST", V1 + "/:id/rotate-signing-key"): 200, ("POST", V1 + "/:id/recover"): 202}
for _route, (_expect, _make) in list(ROUTES.items()):
    _api = _route[1].startswith(("/api/webhook/v1", "/api/webhook/deliveries"))
    # open routes need no key: 200; the organization's and the admin's: as LIMITED says, or 403
    ROUTES[_route] = ({**_expect, "session_limited": LIMITED.get(_route, 403) if _api else 200},
                      _make)


def test_matrix_covers_every_route():
    """Every route of the router has an entry (a new route without one fails here), and no
    entry names a route the router does not have."""
    routes = set(router_routes())
    missing = sorted(routes - set(ROUTES))
    extra = sorted(set(ROUTES) - routes)
    assert not missing, f"routes without an authorization-matrix entry: {missing}"
    assert not extra, f"matrix entries for routes the router does not have: {extra}"


@pytest.fixture
def world(hookd, receiver):
    h = hookd()
    return World(h, receiver)


def test_authorization_matrix(world):
    w = world
    failures = []
    calls = 0
    for (method, pattern), (expect, make) in sorted(ROUTES.items()):
        for c in CREDS:
            path, body = make(w)
            key, headers = cred(w, c)
            r = w.call(method, path, body, key=key, headers=headers)
            calls += 1
            want = expect[c]
            ok = r.status_code in want if isinstance(want, tuple) else r.status_code == want
            if not ok:
                failures.append(f"{method} {pattern} as {c}: {r.status_code}, want {want}: "
                                f"{r.text[:200]}")
                continue
            if r.status_code >= 400 and pattern.startswith("/api/webhook/v1"):
                e = r.json()
                assert set(e) >= {"code", "message", "why", "fix"}, r.text
                if r.status_code == 403:
                    assert e["code"] == "forbidden", r.text
                if r.status_code == 422 and c == "admin":
                    assert "X-Organization-Id" in e["message"], r.text
            if r.status_code == 201 and pattern.endswith("/portal-sessions"):
                w.keys[r.json()["token"]] = len(w.responses) - 1
            if c in ("other", "revoked", "disabled", "expired_session") or (
                    c == "session_limited" and r.status_code >= 400):
                leaked = [s for s in w.secrets_of_a if s in r.text]
                if leaked:
                    failures.append(f"{method} {pattern} as {c} shows A's data {leaked}")
    assert calls == len(ROUTES) * len(CREDS)
    assert not failures, "\n".join(failures)
    # the read key changed nothing: A's webhook still has the name the full key gave it
    assert w.call("GET", f"{V1}/{w.wh}", key=w.read, want=200).json()["name"] == w.marker


def test_keys_never_in_logs_nor_in_later_answers(world):
    w = world
    # list every key everywhere it could show
    w.call("GET", f"{ORGS}/org_a/api-keys", key=w.admin, want=200)
    w.call("GET", V1 + "/api-keys", key=w.full, want=200)
    w.call("GET", ORGS + "?limit=100", key=w.admin, want=200)
    listed = w.call("GET", f"{ORGS}/org_a/api-keys", key=w.admin, want=200).json()["apiKeys"]
    assert {k["scope"] for k in listed} == {"full", "read"}
    assert all("key" not in k for k in listed)
    logs = w.h.logs()
    for key, shown_at in w.keys.items():
        assert key not in logs, "a key is in hookd's log"
        for i, (label, text) in enumerate(w.responses):
            if i != shown_at:
                assert key not in text, f"a key shown again in the answer to {label}"
    # the CLI lists keys without the keys, with their scope
    out = w.h.cli("apikey", "list").stdout
    assert "(admin)" in out and " read " in out
    for key in w.keys:
        assert key not in out


def test_revoke_through_the_api_stops_the_key_at_once(hookd):
    h = hookd()
    r = h.api("POST", V1 + "/api-keys", {"name": "short-lived"})
    assert r.status_code == 201, r.text
    k = r.json()
    for _ in range(3):  # used, so it is in this node's cache
        assert h.api("GET", V1, key=k["key"]).status_code == 200
    r = h.api("DELETE", f"{V1}/api-keys/{k['id']}")
    assert r.status_code == 200, r.text
    r = h.api("GET", V1, key=k["key"])
    assert r.status_code == 401, r.text
    # revoked twice: not found; and the revoking key still works
    assert h.api("DELETE", f"{V1}/api-keys/{k['id']}").status_code == 404
    assert h.api("GET", V1).status_code == 200


def test_read_scope_from_the_cli(hookd):
    h = hookd()
    ro = h.cli("apikey", "create", "--org", h.org, "--scope", "read").stdout.strip()
    assert h.api("GET", V1, key=ro).status_code == 200
    r = h.api("POST", V1 + "/events", {"type": "t", "data": {}}, key=ro)
    assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
    assert h.cli("apikey", "create", "--org", h.org, "--scope", "admin", check=False).returncode == 2


def test_implicit_organizations_are_listed_and_bootstrap_admin_key(hookd):
    admin = "admin_" + "k" * 20
    h = hookd(HOOKD_BOOTSTRAP_ADMIN_KEY=admin)
    h.cli("apikey", "create", "--org", "made_by_cli")
    r = h.api("GET", ORGS + "?limit=100", key=admin)
    assert r.status_code == 200, r.text
    ids = {o["id"] for o in r.json()["organizations"]}
    assert {h.org, "made_by_cli"} <= ids
    assert r.json()["total"] == len(ids)
    # an id is validated; a duplicate conflicts; metadata must be an object
    assert h.api("POST", ORGS, {"id": "a" * 129}, key=admin).status_code == 422
    assert h.api("POST", ORGS, {"id": "bad/id"}, key=admin).status_code == 422
    assert h.api("POST", ORGS, {"id": h.org}, key=admin).status_code == 409
    assert h.api("POST", ORGS, {"metadata": "x"}, key=admin).status_code == 422
    r = h.api("POST", ORGS, {"name": "generated"}, key=admin)
    assert r.status_code == 201 and re.fullmatch(r"org_[a-z0-9]{20,}", r.json()["id"]), r.text
    # an unknown X-Organization-Id: 404 naming the header
    r = h.api("GET", V1, key=admin, headers={"X-Organization-Id": "nobody_here"})
    assert r.status_code == 404 and "X-Organization-Id" in r.json()["message"], r.text


def _query(h, sql):
    if h.env.get("PG_URL"):
        from servers import pg_query
        return [tuple(r) for r in pg_query(h.env["PG_URL"], sql)]
    con = sqlite3.connect(h.env["HOOKD_DB"])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_disabled_organization_holds_deliveries_across_a_restart(hookd, receiver):
    """A disabled organization's deliveries wait (a retry due while it is disabled is not
    attempted, also after a restart) and go out when it is enabled again."""
    retry_ms = int(2500 * SLOW)
    admin = "admin_" + "d" * 20
    h = hookd(HOOKD_BOOTSTRAP_ADMIN_KEY=admin, HOOKD_RETRY_SCHEDULE=f"{retry_ms}ms")
    wid = h.create_webhook(receiver.url("/held"))["id"]
    receiver.plan("/held", [{"status": 500}])
    h.ingest("held.one", {"n": 1})
    receiver.wait(1, "/held")
    r = h.api("PATCH", f"{ORGS}/{h.org}", {"disabled": True}, key=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    assert h.api("GET", V1).status_code == 401  # its key, at once
    r = h.api("GET", V1, key=admin, headers={"X-Organization-Id": h.org})
    assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
    time.sleep(2 * retry_ms / 1000)
    assert receiver.count("/held") == 1, "a disabled organization's retry was sent"
    h.restart()
    time.sleep(2 * retry_ms / 1000)
    assert receiver.count("/held") == 1, "sent after a restart while disabled"
    rows = _query(h, "SELECT status, CASE WHEN next_retry_at IS NULL THEN 'parked' ELSE 'due' "
                     f"END FROM webhook_delivery WHERE webhook_id = '{wid}'")
    assert [tuple(map(str, r)) for r in rows] == [("retrying", "parked")]  # held, not dropped
    r = h.api("PATCH", f"{ORGS}/{h.org}", {"disabled": False}, key=admin)
    assert r.status_code == 200, r.text
    receiver.wait(2, "/held", timeout=10)
    h.wait_delivery(wid, "success", timeout=10)
    assert h.api("GET", V1).status_code == 200


def _schema_version():
    """The newest migration of the store in use, from the schema header's numbered comments."""
    name = "pg_schema.h" if os.environ.get("HOOKD_TEST_STORE") == "pg" else "sqlite_schema.h"
    text = open(os.path.join(ROOT, "src", "store", name), encoding="utf-8").read()
    return max(int(n) for n in re.findall(r"/\* (\d+): ", text))


def test_migration_backfills_organizations_on_a_populated_previous_database(hookd, receiver,
                                                                            monkeypatch):
    h = hookd(start=False)
    own = conftest.HOOKD_BIN
    monkeypatch.setattr(conftest, "HOOKD_BIN", previous_hookd())
    h.start()
    old_key = h.cli("apikey", "create", "--org", "org_old").stdout.strip()
    wid = h.create_webhook(receiver.url("/old"))["id"]
    h.api("POST", V1, {"name": "o", "url": receiver.url("/o"), "events": ["*"]}, key=old_key)
    h.ingest("t", {"i": 1})
    h.wait_delivery(wid, "success")
    h.stop()
    monkeypatch.setattr(conftest, "HOOKD_BIN", own)
    admin = "admin_" + "m" * 20
    h.restart(HOOKD_BOOTSTRAP_ADMIN_KEY=admin)
    (ver,), = _query(h, "SELECT max(version) FROM schema_migrations")
    assert int(ver) == _schema_version()
    r = h.api("GET", ORGS + "?limit=100", key=admin)
    assert r.status_code == 200, r.text
    assert {o["id"] for o in r.json()["organizations"]} == {h.org, "org_old"}
    # the old keys keep working, as full keys
    assert h.api("GET", V1, key=old_key).status_code == 200
    assert h.api("POST", V1 + "/events", {"type": "t", "data": {}}, key=old_key).status_code == 202
    keys = h.api("GET", f"{ORGS}/org_old/api-keys", key=admin).json()["apiKeys"]
    assert [k["scope"] for k in keys] == ["full"]
    h.ingest("t", {"i": 2})
    h.wait_delivery(wid, "success", n=2)
    # and one more start applies nothing again
    h.restart()
    assert h.api("GET", V1).status_code == 200


@pytest.mark.skipif(os.environ.get("HOOKD_TEST_STORE", "sqlite") != "pg",
                    reason="two nodes share one store on PostgreSQL only")
def test_revoke_and_disable_reach_another_node_within_the_cache_time(hookd, receiver):
    """Node A revokes a key and disables an organization: A refuses them at once, node B within
    the documented 10 s (its key cache); enabling it through B reaches A the same way."""
    admin = "admin_" + "n" * 20
    a = hookd(HOOKD_BOOTSTRAP_ADMIN_KEY=admin)
    b = hookd(start=False, HOOKD_BOOTSTRAP_ADMIN_KEY=admin)
    b.env["PG_URL"] = a.env["PG_URL"]
    b.start()
    k = a.api("POST", V1 + "/api-keys", {"name": "two nodes"}).json()
    for node in (a, b):  # cached on both
        assert node.api("GET", V1, key=k["key"]).status_code == 200
    assert a.api("DELETE", f"{V1}/api-keys/{k['id']}").status_code == 200
    t0 = time.monotonic()
    assert a.api("GET", V1, key=k["key"]).status_code == 401
    wait_until(lambda: b.api("GET", V1, key=k["key"]).status_code == 401, 12, 0.2,
               "node B to refuse the revoked key")
    assert time.monotonic() - t0 <= 10.0 * SLOW + 1.5

    r = a.api("PATCH", f"{ORGS}/{a.org}", {"disabled": True}, key=admin)
    assert r.status_code == 200, r.text
    assert a.api("GET", V1).status_code == 401
    wait_until(lambda: b.api("GET", V1).status_code == 401, 12, 0.2, "node B to refuse")
    # enabled through B: B at once, A within its cache time
    r = b.api("PATCH", f"{ORGS}/{a.org}", {"disabled": False}, key=admin)
    assert r.status_code == 200, r.text
    wait_until(lambda: a.api("GET", V1).status_code == 200, 12, 0.2, "node A to accept again")


def test_portal_session_rules_and_revoke_at_once(hookd):
    admin = "admin_" + "s" * 20
    h = hookd(HOOKD_BOOTSTRAP_ADMIN_KEY=admin, BASE_URL="https://hooks.example.com/")
    PS = V1 + "/portal-sessions"
    # an admin key names the organization (body or header); bad values are 422
    r = h.api("POST", PS, {}, key=admin)
    assert r.status_code == 422 and "organizationId" in r.json()["message"], r.text
    assert h.api("POST", PS, {"organizationId": "nobody"}, key=admin).status_code == 404
    for ttl in (0, 86401, "60", 1.5):
        r = h.api("POST", PS, {"ttlSeconds": ttl})
        assert r.status_code == 422 and "ttlSeconds" in r.json()["message"], (ttl, r.text)
    assert h.api("POST", PS, {"scope": "admin"}).status_code == 422
    r = h.api("POST", PS, {}, key=admin, headers={"X-Organization-Id": h.org})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["scope"] == "full" and s["organizationId"] == h.org
    assert s["url"] == "https://hooks.example.com/api/webhook/ui/#token=" + s["token"]
    # the default lifetime is an hour
    from datetime import datetime, timezone
    left = datetime.fromisoformat(s["expiresAt"].replace("Z", "+00:00")) - datetime.now(timezone.utc)
    assert 3500 < left.total_seconds() <= 3600
    # a session works as a bearer token on its organization's routes, then is revoked at once
    bearer = {"Authorization": "Bearer " + s["token"]}
    for _ in range(2):
        assert h.api("GET", V1, key=False, headers=bearer).status_code == 200
    r = h.api("DELETE", f"{PS}/{s['id']}")
    assert r.status_code == 200, r.text
    r = h.api("GET", V1, key=False, headers=bearer)
    assert r.status_code == 401, r.text
    assert h.api("DELETE", f"{PS}/{s['id']}").status_code == 404
    # a disabled organization: no new sessions
    assert h.api("PATCH", f"{ORGS}/{h.org}", {"disabled": True}, key=admin).status_code == 200
    r = h.api("POST", PS, {"organizationId": h.org}, key=admin)
    assert r.status_code == 409, r.text
    assert s["token"] not in h.logs()


def test_portal_session_limited_to_some_webhooks(hookd, receiver):
    admin = "admin_" + "w" * 20
    h = hookd(HOOKD_BOOTSTRAP_ADMIN_KEY=admin)
    PS = V1 + "/portal-sessions"
    mine = h.create_webhook(receiver.url("/mine"), name="mine")["id"]
    theirs = h.create_webhook(receiver.url("/theirs"), name="not-for-this-customer")["id"]
    h.ingest("x.y", {"n": 1})
    dl_mine = h.wait_delivery(mine, "success")[0]["id"]
    dl_theirs = h.wait_delivery(theirs, "success")[0]["id"]
    other_org_key = h.cli("apikey", "create", "--org", "org_other").stdout.strip()
    foreign = h.api("POST", V1, {"name": "f", "url": receiver.url("/f"), "events": ["z"]},
                    key=other_org_key).json()["id"]
    for bad in ([], "wh_x", ["nope"], [foreign], ["wh_" + "0" * 24], [mine] * 101):
        r = h.api("POST", PS, {"webhookIds": bad})
        assert r.status_code == 422 and "webhookIds" in r.json()["message"], (bad, r.text)
    r = h.api("POST", PS, {"webhookIds": [mine], "scope": "read"})
    assert r.status_code == 201, r.text
    assert r.json()["webhookIds"] == [mine]
    s = {"Authorization": "Bearer " + r.json()["token"]}
    listed = h.api("GET", V1 + "?limit=100", key=False, headers=s).json()
    assert [w["id"] for w in listed["webhooks"]] == [mine] and listed["total"] == 1
    assert h.api("GET", f"{V1}/{mine}", key=False, headers=s).status_code == 200
    assert h.api("GET", f"{V1}/{mine}/deliveries", key=False, headers=s).status_code == 200
    assert h.api("GET", f"{V1}/deliveries/{dl_mine}", key=False, headers=s).status_code == 200
    for path in (f"{V1}/{theirs}", f"{V1}/{theirs}/deliveries", f"{V1}/deliveries/{dl_theirs}"):
        r = h.api("GET", path, key=False, headers=s)
        assert r.status_code == 404 and "not-for-this-customer" not in r.text, (path, r.text)
    for path in (V1 + "/events", f"{V1}/events/{h.api('GET', V1 + '/events').json()['events'][0]['id']}"):
        r = h.api("GET", path, key=False, headers=s)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, r.text)
    # read scope on top: no changes even to its own webhook
    assert h.api("PATCH", f"{V1}/{mine}", {"name": "x"}, key=False, headers=s).status_code == 403


def test_organization_wide_delivery_search(hookd, receiver):
    """GET /v1/deliveries: the organization's deliveries across its webhooks, filtered, looked
    up by event, delivery or idempotency key, paged by a keyset cursor that neither repeats
    nor skips a row while new deliveries arrive; nothing of another organization."""
    h = hookd()
    S = V1 + "/deliveries"
    a = h.create_webhook(receiver.url("/sa"), events=["order.*"])["id"]
    b = h.create_webhook(receiver.url("/sb"), events=["order.paid"])["id"]
    receiver.plan("/sb", [{"status": 500}] * 50)  # b's deliveries retry
    evs = [h.ingest("order.paid" if i % 2 else "order.made", {"i": i},
                    idempotencyKey=f"k-{i}")["id"] for i in range(7)]
    h.wait_delivery(a, "success", n=7)
    other_key = h.cli("apikey", "create", "--org", "org_other").stdout.strip()
    wo = h.api("POST", V1, {"name": "o", "url": receiver.url("/so"), "events": ["*"]},
               key=other_key).json()["id"]
    h.api("POST", V1 + "/events", {"type": "order.paid", "data": {}, "idempotencyKey": "k-1"},
          key=other_key)
    everything = h.api("GET", S + "?limit=100").json()
    ids = [d["id"] for d in everything["deliveries"]]
    assert len(ids) == 7 + 3 and everything["next"] is None  # a: 7, b: the 3 order.paid
    assert all(d["webhookId"] in (a, b) for d in everything["deliveries"])
    assert [d["createdAt"] for d in everything["deliveries"]] == \
        sorted((d["createdAt"] for d in everything["deliveries"]), reverse=True)
    # filters
    def got(q):
        r = h.api("GET", S + "?limit=100&" + q)
        assert r.status_code == 200, (q, r.text)
        return r.json()["deliveries"]
    assert {d["webhookId"] for d in got(f"webhookId={b}")} == {b}
    assert len(got(f"webhookId={b}")) == 3
    assert {d["eventType"] for d in got("eventType=order.made")} == {"order.made"}
    assert len(got("eventType=order.made")) == 4
    assert {d["status"] for d in got("status=success")} == {"success"}
    assert [d["webhookEventId"] for d in got(f"eventId={evs[3]}")] == [evs[3], evs[3]]
    assert [d["id"] for d in got(f"deliveryId={ids[0]}")] == [ids[0]]
    assert {d["webhookEventId"] for d in got("idempotencyKey=k-1")} == {evs[1]}  # not org_other's
    assert got(f"webhookId={wo}") == []
    first = everything["deliveries"][-1]["createdAt"]
    assert len(got("since=" + first)) == 10 and got("until=" + first) == []
    # keyset paging: pages of 3, with new deliveries arriving between pages
    seen, cursor = [], None
    for page in range(10):
        r = h.api("GET", S + "?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [d["id"] for d in body["deliveries"]]
        if page == 0:
            h.ingest("order.made", {"late": True})  # newer than every page: never shown
        cursor = body["next"]
        if not cursor:
            break
    assert seen == ids, "a page repeated or skipped a delivery"
    # bad input: 422 naming the parameter
    for q, name in (("limit=0", "limit"), ("status=done", "status"), ("webhookId=x", "webhookId"),
                    ("eventType=a%20b", "eventType"), ("since=yesterday", "since"),
                    ("cursor=abc", "cursor"), (f"since={first}&until={first}", "until")):
        r = h.api("GET", S + "?" + q)
        assert r.status_code == 422 and name in r.json()["message"], (q, r.text)
    # another organization sees only its own
    theirs = h.api("GET", S + "?limit=100", key=other_key).json()["deliveries"]
    assert theirs and {d["webhookId"] for d in theirs} == {wo}


def _walk(h, path, key=True, headers=None, field="organizations"):
    """Every item of a list, following `next` (limit 7); the pages' item lists."""
    pages, url = [], path + ("&" if "?" in path else "?") + "limit=7"
    for _ in range(100):
        r = h.api("GET", url, key=key, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body[field])
        if not body["next"]:
            return pages
        assert len(body[field]) == 7, body
        url = path + ("&" if "?" in path else "?") + "limit=7&cursor=" + body["next"]
    pytest.fail("the walk did not end")


def test_organization_list_and_a_limited_sessions_list_page_with_cursors(hookd, receiver):
    """The organization list pages with `next` like every list (ids up to 128 characters),
    and a session limited to some webhooks pages over those only."""
    admin = "admin_" + "p" * 20
    h = hookd(HOOKD_BOOTSTRAP_ADMIN_KEY=admin)
    made = []
    for i in range(23):
        oid = f"org_{i:02d}_" + ("x" * 110 if i % 5 == 0 else "")  # some of the longest ids
        r = h.api("POST", ORGS, {"id": oid, "name": f"n{i}"}, key=admin)
        assert r.status_code == 201, r.text
        made.append(oid)
    pages = _walk(h, ORGS, key=admin)
    seen = [o["id"] for p in pages for o in p]
    assert len(seen) == len(set(seen)) and set(made) <= set(seen), seen
    assert seen.index(made[-1]) < seen.index(made[0])  # newest first
    first = h.api("GET", ORGS + "?limit=7", key=admin).json()
    assert first["total"] == len(seen) and first["totalCapped"] is False and first["next"]
    for bad in ("x", first["next"][:-2], first["next"] + "AA"):
        r = h.api("GET", ORGS + "?cursor=" + bad, key=admin)
        assert r.status_code == 422 and "cursor" in r.json()["message"], (bad, r.text)
    # a session limited to 9 of 12 webhooks: its list pages over those 9
    whs = [h.create_webhook(receiver.url(f"/{i}"), name=f"w{i}")["id"] for i in range(12)]
    r = h.api("POST", V1 + "/portal-sessions", {"webhookIds": whs[:9]})
    assert r.status_code == 201, r.text
    s = {"Authorization": "Bearer " + r.json()["token"]}
    pages = _walk(h, V1, key=False, headers=s, field="webhooks")
    got = [w["id"] for p in pages for w in p]
    assert got == list(reversed(whs[:9])), got  # newest first, each once, only those
    assert [len(p) for p in pages] == [7, 2]
