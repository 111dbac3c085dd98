"""NATS ingest (SPEC §5, §6) against a real nats-server (Debian's, with -js) on loopback.

Each test starts its own nats-server on a free port with its own JetStream store directory
(fixture `nats`), and publishes with tests/tools/nats_pub (cnats; built next to hookd). What is
checked: every KumoMTA record type and the other mappers, end to end, to a receiving webhook;
bad messages counted, logged and acked; a JetStream backlog published while hookd is stopped
(HOOKD_TEST_NATS_BACKLOG messages, default 10000) all become events; kill -9 between commit
and ack gives duplicates that idempotency absorbs, not losses; two nodes share the queue group
without duplicates; a NATS restart mid-run loses nothing and health reports it meanwhile.
"""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import HOOKD_BIN, SLOW, free_port, run_hookd, wait_until

NATS_SERVER = shutil.which("nats-server")
pytestmark = pytest.mark.skipif(not NATS_SERVER, reason="nats-server is not installed")

BACKLOG = int(os.environ.get("HOOKD_TEST_NATS_BACKLOG", "10000"))
EV = "/api/webhook/v1/events"


def nats_pub_bin():
    if os.environ.get("HOOKD_NATS_PUB"):
        return os.environ["HOOKD_NATS_PUB"]
    build = os.environ.get("HOOKD_BUILD_DIR") or os.path.dirname(os.path.abspath(HOOKD_BIN))
    return os.path.join(build, "nats_pub")


# ---- nats-server -------------------------------------------------------------------------------

class NatsServer:
    """A nats-server -js on 127.0.0.1:port, store in its own directory; restartable."""

    def __init__(self, workdir, port=None):
        self.port = port or free_port()
        self.store = os.path.join(workdir, f"js-{self.port}")
        self.log_path = os.path.join(workdir, f"nats-{self.port}.log")
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.store],
            stdout=self.logf, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"nats-server exited: {open(self.log_path).read()[-2000:]}")
            with open(self.log_path, errors="replace") as f:
                f.seek(offset)
                return "Server is ready" in f.read()
        wait_until(ready, 10, 0.02, "nats-server to start")
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stops the server (SIGKILL: a crash); start() brings it back with the same store."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        if self.proc:
            self.logf.close()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    # the publisher tool
    def tool(self, *args, stdin=None, timeout=120):
        p = subprocess.run([nats_pub_bin(), "-s", self.url, *args], input=stdin,
                           capture_output=True, text=True, timeout=timeout * SLOW)
        assert p.returncode == 0, f"nats_pub {args}: {p.stderr}"
        return p.stdout

    def publish(self, messages, js=False, id_prefix=None):
        """messages: [(subject, body)], body a dict/list (JSON-encoded) or a str (sent as is)."""
        lines = []
        for subject, body in messages:
            if not isinstance(body, str):
                body = json.dumps(body, separators=(",", ":"))
            assert "\n" not in body
            lines.append(f"{subject} {body}\n")
        args = ["pub"] + (["--js"] if js else []) + (["--id-prefix", id_prefix] if id_prefix else [])
        out = self.tool(*args, stdin="".join(lines))
        assert json.loads(out)["published"] == len(messages)

    def stream_add(self, name, *subjects):
        self.tool("stream-add", name, *subjects)

    def consumer_add(self, stream, durable, ack_wait_ms):
        self.tool("consumer-add", stream, durable, str(ack_wait_ms))

    def consumer_info(self, stream, durable):
        return json.loads(self.tool("consumer-info", stream, durable))


@pytest.fixture
def nats(tmp_path):
    servers = []

    def make(port=None, start=True):
        s = NatsServer(str(tmp_path), port)
        servers.append(s)
        return s.start() if start else s
    yield make
    for s in servers:
        s.stop()


# ---- helpers ------------------------------------------------------------------------------------

def total(h, type_=None):
    q = f"?limit=1&type={type_}" if type_ else "?limit=1"
    r = h.api("GET", EV + q)
    assert r.status_code == 200, r.text
    return r.json()["total"]


def all_events(h, type_=None):
    out, cur = [], ""
    while True:
        q = "?limit=100" + (f"&type={type_}" if type_ else "") + cur
        r = h.api("GET", EV + q).json()
        out += r["events"]
        if not r["next"]:
            return out
        cur = "&cursor=" + r["next"]


def metric(h, name, label=None):
    want = name + (f"{{{label}}}" if label else "")
    for line in h.api("GET", "/metrics", key=None).text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def health(h):
    try:
        r = requests.get(h.base + "/api/webhook/health", timeout=2)
        return r.status_code, r.json()["checks"]["nats"]
    except requests.RequestException:
        return None, None


def wait_total(h, n, timeout=30.0, type_=None):
    return wait_until(lambda: total(h, type_) >= n and total(h, type_), timeout, 0.1,
                      f"{n} events")


def kumo_record(rtype, org="org_test", rid="1d98076abbbc11ed940250ebf67f93bd", response=None,
                headers=None, **extra):
    """A KumoMTA log record as kumod writes it (docs.kumomta.com/reference/log_record)."""
    rec = {
        "type": rtype,
        "id": rid,
        "sender": "noreply@send.example.com",
        "recipient": "user@gmail.com",
        "queue": "campaign:tenant@gmail.com",
        "site": "source2->(alt1|alt2|alt3|alt4)?.gmail-smtp-in.l.google.com",
        "size": 1047,
        "response": response or {"code": 250, "enhanced_code": {"class": 2, "subject": 0,
                                                                "detail": 0},
                                 "content": "OK ids=8a5475ccbbc611eda12250ebf67f93bd",
                                 "command": ".\r\n"},
        "peer_address": {"name": "gmail-smtp-in.l.google.com.", "addr": "142.251.2.27"},
        "timestamp": 1678069691,
        "created": 1678069690,
        "num_attempts": 0,
        "bounce_classification": "Uncategorized",
        "egress_pool": "pool0",
        "egress_source": "source2",
        "feedback_report": None,
        "meta": {},
        "headers": headers if headers is not None else {"Subject": "Your order",
                                                         "X-Org-ID": org},
        "delivery_protocol": "ESMTP",
        "reception_protocol": "ESMTP",
        "nodeid": "557f3ad4-2c8c-11ee-976e-782b46d2cb5e",
    }
    rec.update(extra)
    return rec


BOUNCE = {"code": 550, "enhanced_code": {"class": 5, "subject": 1, "detail": 1},
          "content": "5.1.1 The email account that you tried to reach does not exist.",
          "command": "RCPT TO:<user@gmail.com>"}
DEFER = {"code": 421, "enhanced_code": {"class": 4, "subject": 7, "detail": 0},
         "content": "4.7.0 Try again later, closing connection.", "command": "EHLO"}
EXPIRED = {"code": 551, "enhanced_code": None,
           "content": "Next delivery time would be at 2026-11-23 exceeds the expiry time",
           "command": None}


# ---- mappers, end to end ------------------------------------------------------------------------

def test_kumomta_records_become_events_and_deliveries(hookd, receiver, nats):
    ns = nats()
    h = hookd(NATS_URL=ns.url, HOOKD_LOG_LEVEL="debug")  # debug: nats.ignored
    wh = h.create_webhook(receiver.url("/mail"), events=["email.*"])
    recs = [
        ("kumomta.event", kumo_record("Delivery", rid="m1",
                                      headers={"Subject": "Hello", "X-Org-ID": "org_test",
                                               "X-Email-Log-ID": "log-1"})),
        ("kumomta.event.bounce", kumo_record("Bounce", rid="m2", response=BOUNCE)),
        ("kumomta.event", kumo_record("AdminBounce", rid="m3", response={
            "code": 551, "content": "Administratively bounced", "command": None})),
        ("kumomta.event", kumo_record("OOB", rid="m4", response=BOUNCE)),
        ("kumomta.event", kumo_record("TransientFailure", rid="m5", response=DEFER)),
        ("kumomta.event", kumo_record("Feedback", rid="m6", response={"code": 200,
                                                                      "content": "abuse"},
                                      feedback_report={"feedback_type": "abuse"})),
        ("kumomta.event", kumo_record("Expiration", rid="m7", response=EXPIRED,
                                      headers={"x-org-id": "org_test"})),
        ("kumomta.event", kumo_record("Reception", rid="m8")),
    ]
    ns.publish(recs)
    wait_total(h, 7)
    evs = {e["data"]["email_id"]: e for e in all_events(h)}
    assert set(evs) == {"log-1", "m2", "m3", "m4", "m5", "m6", "m7"}  # Reception: no event
    d = evs["log-1"]
    assert d["type"] == "email.delivered" and d["source"] == "kumomta"
    assert d["data"] == {"email_id": "log-1", "from": "noreply@send.example.com",
                         "to": ["user@gmail.com"], "subject": "Hello", "status": "delivered"}
    assert d["idempotencyKey"] == "org_test:email.delivered:log-1:Delivery:m1"
    assert d["organizationId"] == "org_test"
    b = evs["m2"]
    assert b["type"] == "email.bounced"
    assert b["data"] == {"email_id": "m2", "from": "noreply@send.example.com",
                         "to": ["user@gmail.com"], "subject": "Your order", "status": "bounced",
                         "error": {"code": 550, "message": BOUNCE["content"]}}
    assert b["idempotencyKey"] == "org_test:email.bounced:m2:Bounce:m2"
    assert evs["m3"]["type"] == "email.bounced"
    assert evs["m3"]["data"]["error"] == {"code": 551, "message": "Administratively bounced"}
    assert evs["m4"]["type"] == "email.bounced"
    assert evs["m4"]["idempotencyKey"] == "org_test:email.bounced:m4:OOB:m4"
    t = evs["m5"]
    assert t["type"] == "email.delivery_delayed"
    assert t["data"]["status"] == "delivery_delayed"
    assert t["data"]["error"] == {"code": 421, "message": DEFER["content"]}
    assert evs["m6"]["type"] == "email.complained"
    assert evs["m6"]["data"]["status"] == "complained"
    x = evs["m7"]
    assert x["type"] == "email.failed" and x["data"]["status"] == "failed"
    assert x["data"]["subject"] is None  # no Subject header logged
    assert x["data"]["error"] == {"code": 551, "message": EXPIRED["content"]}
    # every one went out to the webhook with its data
    got = receiver.wait(7, "/mail")
    assert sorted(r.json["type"] for r in got) == sorted(e["type"] for e in evs.values())
    assert all(r.json["id"] in {e["id"] for e in evs.values()} for r in got)
    assert metric(h, "hookd_events_ingested_total", 'source="kumomta"') == 7
    # the Reception record is valid and makes no event: ignored (logged at debug), not dropped
    # (the HookdNatsDropping alert reads this counter)
    wait_until(lambda: [e for e in h.log_events() if e.get("event") == "nats.ignored"], 10, 0.05,
               "the Reception record ignored")
    assert metric(h, "hookd_nats_dropped_total") == 0
    # the same record again is a duplicate: no new event, no new delivery
    ns.publish([recs[1]])
    wait_until(lambda: metric(h, "hookd_events_duplicate_total") == 1, 10, 0.05, "a duplicate")
    assert total(h) == 7
    time.sleep(0.3)
    assert receiver.count("/mail") == 7
    assert len(h.deliveries(wh["id"])) == 7


def test_webhook_triggered_and_generic_subjects(hookd, receiver, nats):
    ns = nats()
    h = hookd(NATS_URL=ns.url)
    h.create_webhook(receiver.url("/all"), events=["*"])
    ns.publish([
        ("webhook.triggered", '{"event":"order.paid","payload":{"order":7, "total":12.50},'
                              '"organizationId":"org_test"}'),
        ("tracking.open", {"organizationId": "org_test", "email_id": "e1", "ua": "Mozilla"}),
        ("tracking.click", {"type": "link.clicked", "data": {"url": "https://x.example"},
                            "organizationId": "org_test", "idempotencyKey": "click-1",
                            "userId": "u1"}),
    ])
    wait_total(h, 3)
    evs = {e["type"]: e for e in all_events(h)}
    assert evs["order.paid"]["data"] == {"order": 7, "total": 12.50}
    assert evs["order.paid"]["source"] == "nats"
    assert evs["tracking.open"]["data"] == {"email_id": "e1", "ua": "Mozilla"}
    assert evs["link.clicked"]["data"] == {"url": "https://x.example"}
    assert evs["link.clicked"]["idempotencyKey"] == "click-1"
    assert evs["link.clicked"]["userId"] == "u1"
    bodies = {r.json["type"]: r.body for r in receiver.wait(3, "/all")}
    assert b'"data":{"order":7,"total":12.50}' in bodies["order.paid"]  # byte for byte
    assert metric(h, "hookd_events_ingested_total", 'source="nats"') == 3
    # organizations are kept apart: another organization's event is not seen by this key
    ns.publish([("tracking.open", {"organizationId": "org_other", "n": 1})])
    wait_until(lambda: metric(h, "hookd_events_ingested_total", 'source="nats"') == 4, 10, 0.05,
               "the other organization's event")
    assert total(h) == 3


def test_bad_messages_are_counted_logged_and_acked(hookd, nats):
    ns = nats()
    h = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="BAD")
    ns.publish([
        ("tracking.open", "{not json"),
        ("tracking.open", {"data": {"no": "organization"}}),
        ("kumomta.event", kumo_record("Teleported")),
        ("kumomta.event", kumo_record("Delivery", headers={"Subject": "no org"})),
        ("webhook.triggered", {"event": "x", "payload": [], "organizationId": "org_test"}),
        ("tracking.open", {"organizationId": "org_test", "ok": True}),
    ], js=True)
    wait_total(h, 1)
    wait_until(lambda: metric(h, "hookd_nats_dropped_total") == 5, 10, 0.05, "5 drops")
    logs = [e for e in h.log_events() if e.get("event") == "nats.dropped"]
    whys = " | ".join(e["why"] for e in logs)
    assert "bad JSON" in whys and "no organization" in whys
    assert "unknown KumoMTA record type" in whys and "payload" in whys
    # acked: nothing pending, nothing redelivered, even after the ack wait would have passed
    info = wait_until(lambda: (lambda i: i if i["num_ack_pending"] == 0 and i["num_pending"] == 0
                               else None)(ns.consumer_info("BAD", "hookd")), 10, 0.1, "acks")
    assert info["num_redelivered"] == 0
    assert info["delivered"] == 6
    assert h.api("GET", "/api/webhook/health", key=None).status_code == 200


# ---- JetStream: at least once -------------------------------------------------------------------

def test_jetstream_backlog_published_while_stopped_all_become_events(hookd, nats):
    ns = nats()
    h = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="EVENTS")  # creates the stream and consumer
    h.stop()
    n = BACKLOG
    ns.publish([("tracking.open", {"organizationId": "org_test", "n": i}) for i in range(n)],
               js=True)
    h.start()
    # stop it gracefully mid-way: what it held is stored and acked, or handed back
    wait_until(lambda: total(h) >= n // 4, 60, 0.05, "a quarter of the backlog")
    assert h.stop() == 0
    mid = ns.consumer_info("EVENTS", "hookd")
    assert mid["num_ack_pending"] == 0, mid
    h.start()
    wait_until(lambda: total(h) == n, 120, 0.2, f"{n} events")
    info = wait_until(lambda: (lambda i: i if i["num_pending"] == 0 and i["num_ack_pending"] == 0
                               else None)(ns.consumer_info("EVENTS", "hookd")), 10, 0.1,
                      "the consumer to be drained")
    assert info["ack_floor"] == n
    # one event per message, whatever the backlog (a lost message and a doubled one would
    # still make the total right)
    evs = all_events(h)
    assert len(evs) == n
    assert len({e["idempotencyKey"] for e in evs}) == n
    assert sorted(e["data"]["n"] for e in evs) == list(range(n))
    time.sleep(0.5)
    assert total(h) == n


def test_kill9_between_commit_and_ack_gives_duplicates_not_losses(hookd, nats):
    ns = nats()
    ns.stream_add("CRASH", "tracking.*")
    # hookd binds to a consumer made by the operator; a short ack wait makes redelivery quick
    ns.consumer_add("CRASH", "crashy", 2000)
    n = 3000
    ns.publish([("tracking.open", {"organizationId": "org_test", "n": i}) for i in range(n)],
               js=True)
    h = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="CRASH", HOOKD_NATS_DURABLE="crashy",
              HOOKD_NATS_SUBJECTS="tracking.*")
    wait_until(lambda: total(h) >= 200, 60, 0.01, "some events")
    h.kill9()
    h.start()
    wait_until(lambda: total(h) >= n, 120, 0.2, f"{n} events")
    # redeliveries are absorbed as duplicates: never a second event
    time.sleep(3)  # past the ack wait: every redelivery has come back
    assert total(h) == n
    ns_info = ns.consumer_info("CRASH", "crashy")
    assert ns_info["num_pending"] == 0 and ns_info["num_ack_pending"] == 0, ns_info
    ns_vals = sorted(e["data"]["n"] for e in all_events(h))
    assert ns_vals == list(range(n))


def test_a_redelivered_message_is_a_duplicate_not_a_second_event(hookd, nats):
    """Every message delivered again (here: all of them, to a second durable on the same stream)
    finds its event by the key nats:<stream>:<created>:<sequence>, as a redelivery after a crash
    between commit and ack would."""
    ns = nats()
    h = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="AGAIN")
    n = 500
    ns.publish([("tracking.open", {"organizationId": "org_test", "n": i}) for i in range(n)],
               js=True)
    wait_until(lambda: total(h) >= n, 60, 0.1, f"{n} events")
    h.restart(HOOKD_NATS_DURABLE="again")
    wait_until(lambda: metric(h, "hookd_events_duplicate_total") >= n, 60, 0.1,
               f"{n} duplicates")
    assert total(h) == n
    assert metric(h, "hookd_events_ingested_total", 'source="nats"') == 0
    keys = {e["idempotencyKey"] for e in all_events(h)}
    assert len(keys) == n and all(k.startswith("nats:AGAIN:") for k in keys)


def test_nats_restart_mid_run_loses_nothing_and_health_says_so(hookd, nats):
    ns = nats()
    ns.stream_add("RST", "tracking.*", "webhook.triggered")
    ns.consumer_add("RST", "hookd", 3000)
    h = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="RST", HOOKD_NATS_SUBJECTS="tracking.*")
    n = 3000
    msgs = [("tracking.open", {"organizationId": "org_test", "n": i}) for i in range(n)]
    errors = []

    def publisher():
        try:  # JetStream publishes retried until the stream has them (the server restarts)
            for k in range(0, n, 500):
                ns.publish(msgs[k:k + 500], js=True, id_prefix=f"rst-{k}-")
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
    t = threading.Thread(target=publisher)
    t.start()
    wait_until(lambda: total(h) >= 500, 60, 0.02, "500 events before the restart")
    ns.stop(signal.SIGKILL)
    wait_until(lambda: health(h) == (503, "down"), 10, 0.05, "health to report nats down")
    r = h.api("GET", "/api/webhook/health", key=None)
    assert r.status_code == 503 and r.json()["checks"]["nats"] == "down"
    assert r.json()["checks"]["store"] == "ok"
    time.sleep(0.5)
    ns.start()
    wait_until(lambda: health(h) == (200, "ok"), 20, 0.05, "health to report nats ok again")
    t.join(180 * SLOW)
    assert not errors, errors
    wait_until(lambda: total(h) >= n, 120, 0.2, f"{n} events")
    info = wait_until(lambda: (lambda i: i if i["num_pending"] == 0 and i["num_ack_pending"] == 0
                               else None)(ns.consumer_info("RST", "hookd")), 30, 0.2,
                      "every message acked")
    assert info["ack_floor"] >= n
    assert total(h) == n
    assert sorted(e["data"]["n"] for e in all_events(h)) == list(range(n))


# ---- core NATS ----------------------------------------------------------------------------------

def test_two_nodes_split_the_queue_group_without_duplicates(hookd, nats):
    ns = nats()
    a = hookd(NATS_URL=ns.url)
    b = hookd(NATS_URL=ns.url)
    n = 2000
    ns.publish([("tracking.open", {"organizationId": "org_test", "n": i}) for i in range(n)])
    wait_until(lambda: total(a) + total(b) >= n, 60, 0.1, f"{n} events on the two nodes")
    time.sleep(0.5)
    ta, tb = total(a), total(b)
    assert ta + tb == n
    assert ta > 0 and tb > 0, (ta, tb)  # the group shares the work
    va = {e["data"]["n"] for e in all_events(a)}
    vb = {e["data"]["n"] for e in all_events(b)}
    assert not va & vb  # each message handled once
    assert va | vb == set(range(n))


def test_two_nodes_share_one_durable_without_duplicates(hookd, nats):
    ns = nats()
    ns.stream_add("SHARED", "tracking.*")
    a = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="SHARED")
    b = hookd(NATS_URL=ns.url, HOOKD_NATS_STREAM="SHARED")
    n = 2000
    ns.publish([("tracking.open", {"organizationId": "org_test", "n": i}) for i in range(n)],
               js=True)
    wait_until(lambda: total(a) + total(b) >= n, 60, 0.1, f"{n} events on the two nodes")
    time.sleep(0.5)
    va = {e["data"]["n"] for e in all_events(a)}
    vb = {e["data"]["n"] for e in all_events(b)}
    assert len(va) + len(vb) == n and not va & vb
    assert va | vb == set(range(n))


def test_core_subscriptions_come_back_after_a_nats_restart(hookd, nats):
    ns = nats()
    h = hookd(NATS_URL=ns.url)
    ns.publish([("tracking.open", {"organizationId": "org_test", "n": 0})])
    wait_total(h, 1)
    ns.restart()
    # hookd notices the disconnect first (a slow hookd may notice it after the server is back)
    wait_until(lambda: any(e.get("event") == "nats.down" for e in h.log_events()), 20, 0.05,
               "hookd to log nats.down")
    wait_until(lambda: health(h) == (200, "ok"), 20, 0.05, "reconnection")

    def delivered():  # the subscription is back once a new message arrives
        ns.publish([("tracking.open", {"organizationId": "org_test", "n": 1})])
        time.sleep(0.2)
        return total(h) >= 2
    wait_until(delivered, 20, 0.1, "an event after the restart")


def test_starts_while_nats_is_down_and_connects_when_it_comes(hookd, nats):
    ns = nats(start=False)
    h = hookd(start=False, NATS_URL=ns.url)
    h.start(wait=False)
    wait_until(lambda: health(h) == (503, "down"), 20, 0.05, "health 503 with nats down")
    ns.start()
    wait_until(lambda: health(h) == (200, "ok"), 20, 0.05, "health ok once NATS is up")
    ns.publish([("webhook.triggered", {"event": "late.bird", "payload": {},
                                       "organizationId": "org_test"})])
    wait_total(h, 1)


def test_bad_nats_settings_stop_startup(hookd, nats):
    ns = nats()
    h = hookd(start=False, NATS_URL=ns.url, HOOKD_NATS_SUBJECTS="a..b")
    p = run_hookd(["serve"], env=h.env, cwd=h.workdir, timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr)  # refused when the subscription is made
    assert "HOOKD_NATS_SUBJECTS" in p.stderr and "a..b" in p.stderr
