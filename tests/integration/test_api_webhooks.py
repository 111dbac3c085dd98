"""The webhook resource (SPEC §3): create/list/get/patch/delete, every validation rule,
secret masking, authentication and organization scoping, the error format."""
import json

import pytest

WH = "/api/webhook/v1"


def err(r, status, field=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"code", "message", "why", "fix"}, body
    if field:
        assert field in body["message"], body["message"]
    return body


def test_create_returns_plaintext_secret_once_then_masked(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), events=["email.delivered", "email.*"], name="n")
    assert wh["id"].startswith("wh_") and len(wh["id"]) >= 23
    assert wh["secret"].startswith("whsec_") and len(wh["secret"]) == 50
    assert wh["status"] == "active" and wh["events"] == ["email.delivered", "email.*"]
    assert wh["maxRetries"] == 6 and wh["maxRequestsPerMinute"] == 60
    assert wh["signatureSchemes"] == ["standard", "reloop"]
    assert wh["organizationId"] == h.org
    got = h.webhook(wh["id"])
    assert got["secret"] == "whsec_\u2026" + wh["secret"][-4:]
    lst = h.api("GET", WH).json()
    assert lst["total"] == 1 and lst["webhooks"][0]["secret"] == got["secret"]
    assert wh["secret"] not in h.api("GET", WH).text


def test_create_defaults_and_all_fields(hookd, receiver):
    h = hookd()
    body = {"description": "desc as name", "url": receiver.url(), "events": ["a.b"],
            "secret": "my-own-secret-123", "status": "paused",
            "customHeaders": {"X-Tenant": "t1", "Authorization": "Bearer abc"},
            "rateLimitEnabled": True, "maxRequestsPerMinute": 120, "maxRetries": 2,
            "filteringOptions": {"matchConditions": {"k": "v"}, "excludeFields": ["secretField"]},
            "signatureSchemes": ["sha256"], "userId": "user_1"}
    r = h.api("POST", WH, body)
    assert r.status_code == 201, r.text
    wh = r.json()
    assert wh["name"] == "desc as name" and wh["secret"] == "my-own-secret-123"
    assert wh["status"] == "paused" and wh["customHeaders"] == body["customHeaders"]
    assert wh["maxRequestsPerMinute"] == 120 and wh["maxRetries"] == 2
    assert wh["filteringOptions"] == body["filteringOptions"]
    assert wh["signatureSchemes"] == ["sha256"] and wh["userId"] == "user_1"


@pytest.mark.parametrize("patch,field", [
    ({"url": None}, "url"),
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "/relative"}, "url"),
    ({"url": "http://user:pw@example.com/"}, "url"),
    ({"url": "http://example.com/" + "a" * 2100}, "url"),
    ({"url": "http://exa mple.com/"}, "url"),
    ({"url": "http://example.com/\r\nX: y"}, "url"),
    ({"events": []}, "events"),
    ({"events": "a.b"}, "events"),
    ({"events": ["bad type!"]}, "events"),
    ({"events": ["a.*b"]}, "events"),
    ({"events": ["a" * 256]}, "events"),
    ({"name": ""}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": "a\r\nb"}, "name"),
    ({"name": "a\u0000b"}, "name"),
    ({"name": 5}, "name"),
    ({"secret": "short"}, "secret"),
    ({"secret": "has space inside"}, "secret"),
    ({"status": "failed"}, "status"),
    ({"status": "bogus"}, "status"),
    ({"maxRetries": -1}, "maxRetries"),
    ({"maxRetries": 1.5}, "maxRetries"),
    ({"maxRequestsPerMinute": 0}, "maxRequestsPerMinute"),
    ({"rateLimitEnabled": "yes"}, "rateLimitEnabled"),
    ({"customHeaders": {"Content-Type": "text/plain"}}, "customHeaders"),
    ({"customHeaders": {"host": "evil"}}, "customHeaders"),
    ({"customHeaders": {"webhook-signature": "x"}}, "customHeaders"),
    ({"customHeaders": {"X-A": "a\r\nInjected: 1"}}, "customHeaders"),
    ({"customHeaders": {"X-A": "a\u0000"}}, "customHeaders"),
    ({"customHeaders": {"Bad Name": "v"}}, "customHeaders"),
    ({"customHeaders": {"X-A": 1}}, "customHeaders"),
    ({"customHeaders": ["X-A"]}, "customHeaders"),
    ({"filteringOptions": {"other": 1}}, "filteringOptions"),
    ({"filteringOptions": {"excludeFields": "a"}}, "filteringOptions"),
    ({"filteringOptions": {"matchConditions": []}}, "filteringOptions"),
    ({"signatureSchemes": []}, "signatureSchemes"),
    ({"signatureSchemes": ["hmac"]}, "signatureSchemes"),
])
def test_create_validation(shared_hookd, shared_receiver, patch, field):
    h = shared_hookd
    body = {"name": "n", "url": shared_receiver.url(), "events": ["a"]}
    for k, v in patch.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    err(h.api("POST", WH, body), 422, field)
    assert h.api("GET", WH).json()["total"] == 0


NO_HOST_URLS = ["http:///x", "https:///", "http://:80/x", "http://?x", "http://#f", "http:/x",
                "HTTP:///x", "https:/127.0.0.1/x", "http://:/"]


def test_url_without_a_host_refused_at_create_and_patch(hookd, receiver):
    """A URL that does not name its host right after scheme:// is refused with 422 naming url,
    at create and at patch; libcurl would read "http:///x" and "http:/x" as host x."""
    h = hookd()
    for url in NO_HOST_URLS:
        body = err(h.api("POST", WH, {"name": "n", "url": url, "events": ["a"]}), 422, "url")
        assert body["message"].startswith("url"), (url, body)
    assert h.api("GET", WH).json()["total"] == 0
    wh = h.create_webhook(receiver.url())
    for url in NO_HOST_URLS:
        body = err(h.api("PATCH", f"{WH}/{wh['id']}", {"url": url}), 422, "url")
        assert body["message"].startswith("url"), (url, body)
    assert h.webhook(wh["id"])["url"] == receiver.url()
    # a URL with a host still passes either way
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"url": receiver.url("/other")})
    assert r.status_code == 200 and r.json()["url"] == receiver.url("/other"), r.text


def test_bad_bodies(hookd, receiver):
    h = hookd()
    err(h.api("POST", WH, raw='{"name": "n", ', headers={"content-type": "application/json"}), 400)
    err(h.api("POST", WH, raw='{"name":"a","name":"b"}', headers={"content-type": "application/json"}), 400)
    err(h.api("POST", WH, raw=b"\xff\xfe{}", headers={"content-type": "application/json"}), 400)
    err(h.api("POST", WH, raw="name=x", headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    err(h.api("POST", WH, raw="[1,2]", headers={"content-type": "application/json"}), 422)
    err(h.api("POST", WH, raw="", headers={"content-type": "application/json"}), 400)
    big = json.dumps({"name": "x" * (1024 * 1024 + 10)})
    err(h.api("POST", WH, raw=big, headers={"content-type": "application/json"}), 413)
    # hookd still serves after all of that
    assert h.api("GET", WH).status_code == 200


def test_auth_required_everywhere(hookd):
    h = hookd()
    for method, path in [("GET", WH), ("POST", WH), ("GET", WH + "/wh_aaaaaaaaaaaaaaaaaaaaaaaa"),
                         ("POST", WH + "/events"), ("GET", WH + "/events"),
                         ("POST", WH + "/events/batch"), ("POST", WH + "/trigger"),
                         ("GET", WH + "/deliveries/whde_aaaaaaaaaaaaaaaaaaaaaaaa")]:
        err(h.api(method, path, key=None), 401)
        err(h.api(method, path, key="wrong_key_but_well_formed_123"), 401)
        err(h.api(method, path, key="bad key!"), 401)
    assert h.api("GET", "/api/webhook/health", key=None).status_code == 200


def test_org_isolation(hookd, receiver):
    h = hookd()
    other = h.cli("apikey", "create", "--org", "org_other").stdout.strip()
    mine = h.create_webhook(receiver.url(), name="mine")
    theirs = h.api("POST", WH, {"name": "t", "url": receiver.url(), "events": ["*"],
                                "rateLimitEnabled": False, "organizationId": h.org}, key=other).json()
    assert theirs["organizationId"] == "org_other"
    assert h.api("GET", WH).json()["total"] == 1
    for method, path, body in [("GET", f"{WH}/{theirs['id']}", None),
                               ("PATCH", f"{WH}/{theirs['id']}", {"name": "hijack"}),
                               ("DELETE", f"{WH}/{theirs['id']}", None),
                               ("GET", f"{WH}/{theirs['id']}/deliveries", None)]:
        err(h.api(method, path, body), 404)
    assert h.api("GET", f"{WH}/{theirs['id']}", key=other).json()["name"] == "t"
    assert h.api("GET", f"{WH}/{mine['id']}", key=other).status_code == 404


def test_list_paging_and_status_filter(hookd, receiver):
    h = hookd()
    ids = [h.create_webhook(receiver.url(), name=f"w{i}")["id"] for i in range(5)]
    h.api("PATCH", f"{WH}/{ids[0]}", {"status": "paused"})
    r = h.api("GET", WH + "?page=1&limit=2").json()
    assert r["total"] == 5 and r["page"] == 1 and r["limit"] == 2
    assert [w["id"] for w in r["webhooks"]] == [ids[4], ids[3]]  # newest first
    r = h.api("GET", WH + "?page=3&limit=2").json()
    assert [w["id"] for w in r["webhooks"]] == [ids[0]]
    r = h.api("GET", WH + "?status=paused").json()
    assert r["total"] == 1 and r["webhooks"][0]["id"] == ids[0]
    for q in ["page=0", "limit=0", "limit=101", "page=x", "status=weird", "limit=1e3"]:
        err(h.api("GET", WH + "?" + q), 422)


def test_patch_fields_events_and_status(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), events=["a", "b"])
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"events": ["c.*"], "name": "renamed",
                                             "customHeaders": {"X-Y": "z"}, "maxRetries": 1})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["events"] == ["c.*"] and p["name"] == "renamed" and p["maxRetries"] == 1
    assert p["customHeaders"] == {"X-Y": "z"} and p["updatedAt"] >= wh["updatedAt"]
    assert p["secret"].startswith("whsec_\u2026")
    r = h.api("PATCH", f"{WH}/{wh['id']}", {"customHeaders": None, "filteringOptions": None})
    assert r.json()["customHeaders"] is None
    err(h.api("PATCH", f"{WH}/{wh['id']}", {}), 422)
    err(h.api("PATCH", f"{WH}/{wh['id']}", {"status": "failed"}), 422, "status")
    err(h.api("PATCH", f"{WH}/wh_doesnotexist0000000000000", {"name": "x"}), 404)
    err(h.api("PATCH", f"{WH}/not-an-id", {"name": "x"}), 404)


def test_delete_is_soft_and_hides_the_webhook(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url())
    r = h.api("DELETE", f"{WH}/{wh['id']}")
    assert r.status_code == 200 and r.json()["id"] == wh["id"] and "message" in r.json()
    err(h.api("GET", f"{WH}/{wh['id']}"), 404)
    err(h.api("DELETE", f"{WH}/{wh['id']}"), 404)
    assert h.api("GET", WH).json()["total"] == 0


def test_unknown_route_and_method(hookd):
    h = hookd()
    err(h.api("GET", "/api/webhook/nope"), 404)
    r = h.api("PUT", WH, {"a": 1})
    err(r, 405)
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]
    r = h.api("GET", "/api/webhook/v1/", key=True)
    assert r.status_code == 200  # a trailing slash is tolerated
