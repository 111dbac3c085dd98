"""SSRF guard (SPEC §3 validation, §4), against the real binary started WITHOUT the harness's
HOOKD_ALLOW_NETWORKS (it is set empty here unless a test allows something on purpose).

- A literal private/loopback address, in any spelling, is refused at create and at patch (422,
  the message names the url, the range and the way to allow it).
- A name is accepted at create (its addresses are unknown then) and every address hookd is
  about to connect to is checked after DNS: a name resolving to loopback fails the delivery at
  once, with the reason in errorMessage, no retry, and nothing reaches the endpoint that is
  listening there.
- HOOKD_ALLOW_NETWORKS lets the listed blocks through, in every spelling of their addresses.

Names are given addresses without touching the machine: hookd runs in a private mount
namespace (unshare) whose /etc/hosts is the test's own file. Nothing here ever connects
outside 127.0.0.0/8 and ::1: the cloud-metadata address is only sent to create and patch,
on webhooks no event matches.
"""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import SLOW, free_port, wait_until

FIX = "hookd refuses it (allow with HOOKD_ALLOW_NETWORKS)"
NO_EVENT = ["never.matches"]  # webhooks that must never be delivered to

HOSTS = """127.0.0.1 localhost
127.0.0.1 rebind.test
::1 ip6-localhost ip6-loopback v6only.test
127.0.0.1 both.test
::1 both.test
0.0.0.0 zero.test
"""


@pytest.fixture
def private_hosts(tmp_path, monkeypatch):
    """Runs the hookd processes of the test with HOSTS as their /etc/hosts (a private mount
    namespace per process: the machine's file is never changed)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is needed to give hookd its own /etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    script = tmp_path / "with-hosts.sh"
    script.write_text(f'#!/bin/sh\nmount --bind "{hosts}" /etc/hosts || exit 97\nexec "$@"\n')
    script.chmod(0o755)
    cmd = ["unshare", "--mount", "--propagation", "private", str(script)]
    probe = subprocess.run(cmd + ["getent", "hosts", "rebind.test"], capture_output=True, text=True)
    if probe.returncode != 0 or "127.0.0.1" not in probe.stdout:
        pytest.skip(f"cannot run hookd in its own mount namespace: {probe.stderr.strip()}")
    monkeypatch.setenv("HOOKD_TEST_WRAPPER", " ".join(cmd + [os.environ.get("HOOKD_TEST_WRAPPER", "")]).strip())
    return hosts


class V6Listener:
    """Accepts TCP connections on [::1] and counts them (proof that nothing connected)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.bind(("::1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


def create(h, url, **fields):
    body = {"name": "n", "url": url, "events": fields.pop("events", ["ssrf.*"]), "rateLimitEnabled": False}
    body.update(fields)
    return h.api("POST", "/api/webhook/v1", body)


def refused_at_once(h, wh_id, msg):
    """The webhook's one delivery failed at its first attempt with msg, and stays so."""
    d = h.wait_delivery(wh_id, "failed", timeout=10)[0]
    time.sleep(1.0 * SLOW)  # three retry delays of the harness's schedule
    d = h.delivery(d["id"])
    assert d["status"] == "failed" and d["attemptNumber"] == 1, d
    assert d["errorMessage"] == msg, d["errorMessage"]
    assert [a["errorMessage"] for a in d["attempts"]] == [msg]
    assert d["responseStatus"] is None
    return d


# Literal hosts in a refused range, in the spellings curl and the resolver accept, and what the
# 422 message must say (curl's URL parser writes numeric IPv4 forms as dotted quads).
LITERALS = [
    ("http://localhost:{p}/", "url host localhost is a loopback name; " + FIX),
    ("http://127.0.0.1:{p}/", "url host 127.0.0.1 is a loopback address; " + FIX),
    ("http://[::ffff:127.0.0.1]:{p}/", "url host ::ffff:127.0.0.1 is a loopback address; " + FIX),
    ("http://0.0.0.0:{p}/", "url host 0.0.0.0 is an unspecified address; " + FIX),
    ("http://2130706433/", "url host 127.0.0.1 is a loopback address; " + FIX),
    ("http://0x7f.1:{p}/", "url host 127.0.0.1 is a loopback address; " + FIX),
    ("http://127.1/", "url host 127.0.0.1 is a loopback address; " + FIX),
    ("http://[::1]:{p}/", "url host ::1 is a loopback address; " + FIX),
    ("http://169.254.169.254/latest/meta-data/", "url host 169.254.169.254 is a link-local address; " + FIX),
    ("http://10.1.2.3/", "url host 10.1.2.3 is a private address; " + FIX),
    ("http://172.16.0.1/", "url host 172.16.0.1 is a private address; " + FIX),
    ("http://192.168.0.1/", "url host 192.168.0.1 is a private address; " + FIX),
    ("http://100.64.0.1/", "url host 100.64.0.1 is a cgnat address; " + FIX),
    ("http://224.0.0.251/", "url host 224.0.0.251 is a multicast address; " + FIX),
    ("http://240.0.0.1/", "url host 240.0.0.1 is a reserved address; " + FIX),
    ("http://198.51.100.7/", "url host 198.51.100.7 is a documentation address; " + FIX),
    ("http://[fd00::1]/", "url host fd00::1 is a ula address; " + FIX),
    ("http://[fe80::1]/", "url host fe80::1 is a link-local address; " + FIX),
    ("http://[ff02::1]/", "url host ff02::1 is a multicast address; " + FIX),
    ("http://[64:ff9b::a9fe:a9fe]/",
     "url host 64:ff9b::a9fe:a9fe (NAT64 of 169.254.169.254) is a link-local address; " + FIX),
    ("http://[2002:7f00:1::]/", "url host 2002:7f00:1:: (6to4 of 127.0.0.1) is a loopback address; " + FIX),
]


def test_literal_private_addresses_are_refused_at_create_and_patch(hookd):
    h = hookd(HOOKD_ALLOW_NETWORKS="")
    port = free_port()
    # a webhook to patch: a name (accepted), paused, and matched by no event
    r = create(h, "https://hooks.invalid/x", events=NO_EVENT, status="paused")
    assert r.status_code == 201, r.text
    target = r.json()["id"]
    for url, msg in LITERALS:
        url = url.format(p=port)
        r = create(h, url, events=NO_EVENT, status="paused")
        assert r.status_code == 422, (url, r.text)
        e = r.json()
        assert e["code"] == "validation_failed", e
        assert e["message"] == msg, (url, e)
        r = h.api("PATCH", f"/api/webhook/v1/{target}", {"url": url})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["message"] == msg, (url, r.text)
    listed = h.api("GET", "/api/webhook/v1?limit=100").json()
    assert listed["total"] == 1 and listed["webhooks"][0]["url"] == "https://hooks.invalid/x"


def test_names_resolving_to_loopback_are_refused_at_connect_time(hookd, receiver, private_hosts):
    v6 = V6Listener()
    try:
        h = hookd(HOOKD_ALLOW_NETWORKS="")
        r4 = create(h, f"http://rebind.test:{receiver.port}/hook", maxRetries=3)
        r6 = create(h, f"http://ip6-localhost:{v6.port}/hook", maxRetries=3)
        r0 = create(h, f"http://zero.test:{receiver.port}/hook", maxRetries=3)  # 0.0.0.0 is this host
        for r in (r4, r6, r0):
            assert r.status_code == 201, r.text  # names pass create
        wh4, wh6, wh0 = r4.json(), r6.json(), r0.json()
        h.ingest("ssrf.probe")
        refused_at_once(h, wh4["id"], "address 127.0.0.1 is loopback; " + FIX)
        refused_at_once(h, wh6["id"], "address ::1 is loopback; " + FIX)
        refused_at_once(h, wh0["id"], "address 0.0.0.0 is unspecified; " + FIX)
        # the endpoints are there and listening: the guard is what kept the requests away
        assert receiver.count() == 0 and v6.accepted == 0
        for wid in (wh4["id"], wh6["id"]):
            w = h.webhook(wid)
            assert w["failureCount"] == 1 and w["consecutiveFailures"] == 1 and w["status"] == "active"
        # a manual replay is checked the same way
        d = h.deliveries(wh4["id"])[0]
        r = h.api("POST", f"/api/webhook/deliveries/{d['id']}/retry")
        assert r.status_code == 202, r.text
        wait_until(lambda: len([x for x in h.deliveries(wh4["id"]) if x["status"] == "failed"]) == 2,
                   10, 0.05, "the replay to be refused")
        assert receiver.count() == 0
        m = h.api("GET", "/metrics", key=None).text
        assert 'hookd_attempts_total{outcome="refused"} 4' in m
        events = h.log_events()
        failed = [e for e in events if e.get("event") == "delivery.failed" and e.get("webhook_id") == wh4["id"]]
        assert failed and failed[0]["msg"] == "address 127.0.0.1 is loopback; " + FIX
        assert not [e for e in events if e.get("event") == "delivery.retry"]
    finally:
        v6.close()


def test_allow_list_lets_the_listed_block_through_in_every_spelling(hookd, receiver, private_hosts):
    h = hookd(HOOKD_ALLOW_NETWORKS="127.0.0.0/8")
    p = receiver.port
    allowed = {"/a": f"http://127.0.0.1:{p}/a", "/b": f"http://localhost:{p}/b",
               "/c": f"http://[::ffff:127.0.0.1]:{p}/c", "/d": f"http://2130706433:{p}/d",
               "/e": f"http://0x7f.1:{p}/e", "/f": f"http://rebind.test:{p}/f",
               "/g": f"http://both.test:{p}/g"}  # ::1 (refused) and 127.0.0.1 (allowed)
    ids = {}
    for path, url in allowed.items():
        r = create(h, url)
        assert r.status_code == 201, (url, r.text)
        ids[path] = r.json()["id"]
    # outside the allowed block: still refused at create
    for url, msg in [(f"http://[::1]:{p}/", "url host ::1 is a loopback address; " + FIX),
                     ("http://0.0.0.0/", "url host 0.0.0.0 is an unspecified address; " + FIX),
                     ("http://10.0.0.1/", "url host 10.0.0.1 is a private address; " + FIX),
                     ("http://169.254.169.254/", "url host 169.254.169.254 is a link-local address; " + FIX)]:
        r = create(h, url, events=NO_EVENT, status="paused")
        assert r.status_code == 422 and r.json()["message"] == msg, (url, r.text)
    # ... and at connect time: ip6-localhost is ::1
    v6 = create(h, f"http://ip6-localhost:{p}/v6", maxRetries=3).json()
    # a name with a refused address and an allowed one whose endpoint is down: the allowed one
    # was tried, so this is an ordinary connection failure, retried, not a refusal
    dead = create(h, f"http://both.test:{free_port()}/dead", maxRetries=1).json()
    h.ingest("ssrf.ok")
    got = receiver.wait(len(allowed), timeout=10)
    assert sorted(g.path for g in got) == sorted(allowed)
    for wid in ids.values():
        h.wait_delivery(wid, "success")
    refused_at_once(h, v6["id"], "address ::1 is loopback; " + FIX)
    d = h.wait_delivery(dead["id"], "failed", timeout=10)[0]
    assert d["attemptNumber"] == 2 and "refuses" not in d["errorMessage"], d
    assert "onnect" in d["errorMessage"], d["errorMessage"]


def test_an_address_allowed_at_create_is_checked_again_at_connect(hookd, receiver):
    """The check that counts is the one at connect time: narrowing HOOKD_ALLOW_NETWORKS refuses
    deliveries to a webhook created while it was wider."""
    h = hookd(HOOKD_ALLOW_NETWORKS="127.0.0.0/8")
    wh = create(h, receiver.url("/x"), maxRetries=3).json()
    h.ingest("ssrf.one")
    receiver.wait(1)
    h.restart(HOOKD_ALLOW_NETWORKS="127.0.0.2/32")
    h.ingest("ssrf.two")
    refused_at_once(h, wh["id"], "address 127.0.0.1 is loopback; " + FIX)
    assert receiver.count() == 1
    # the API still refuses the literal at patch, and accepts the allowed one
    r = h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"url": receiver.url("/y")})
    assert r.status_code == 422 and "127.0.0.1 is a loopback address" in r.json()["message"]
    r = h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"url": f"http://127.0.0.2:{receiver.port}/z"})
    assert r.status_code == 200, r.text


def test_proxy_variables_of_the_environment_are_not_used(hookd, receiver):
    """A proxy from http_proxy/HTTPS_PROXY would make the guard check the proxy's address
    instead of the endpoint's: hookd never uses one. Here the "proxy" is a second receiver that
    would record the request if curl went through it."""
    from conftest import Receiver
    proxy = Receiver()
    try:
        purl = f"http://127.0.0.1:{proxy.port}"
        h = hookd(http_proxy=purl, HTTP_PROXY=purl, https_proxy=purl, ALL_PROXY=purl,
                  HOOKD_ALLOW_NETWORKS="127.0.0.0/8")
        wh = create(h, f"http://127.0.0.1:{receiver.port}/direct").json()
        h.ingest("ssrf.proxy")
        receiver.wait(1, "/direct")
        h.wait_delivery(wh["id"], "success")
        assert proxy.count() == 0
    finally:
        proxy.close()
