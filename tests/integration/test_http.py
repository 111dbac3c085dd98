"""The HTTP server as an attacker sees it: raw sockets against the real binary. Every error is
JSON, the connection survives or closes as it should, and nothing bad is stored."""
import json
import socket
import time

import pytest

from conftest import SLOW


def raw(h, data, read_until_close=True, timeout=5.0):
    """Sends data on a new connection; returns what came back until hookd closed it (or, with
    read_until_close=False, until one whole response arrived). A timeout fails the test: a
    connection hookd should have closed but kept open must not pass as a complete answer."""
    s = socket.create_connection(("127.0.0.1", h.port), timeout=timeout * SLOW)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if n and len(rest) >= n[0]:
                    break
    except socket.timeout:
        pytest.fail(f"no {'close' if read_until_close else 'complete answer'} within "
                    f"{timeout * SLOW:.0f}s; got {out[:300]!r}")
    finally:
        s.close()
    return out


def responses(data):
    """Splits a byte stream into (status, headers, body) triples (Content-Length framing)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hd = {l.split(b":", 1)[0].strip().lower().decode(): l.split(b":", 1)[1].strip().decode() for l in lines[1:]}
        n = int(hd.get("content-length", "0"))
        out.append((status, hd, rest[:n]))
        data = rest[n:]
    return out


def ingest_req(h, body, extra=b""):
    return (b"POST /api/webhook/v1/events HTTP/1.1\r\nHost: x\r\nx-api-key: " + h.key.encode() +
            b"\r\nContent-Type: application/json\r\n" + extra + b"Content-Length: " +
            str(len(body)).encode() + b"\r\n\r\n" + body)


def test_pipelined_requests_answered_in_order(shared_hookd):
    h = shared_hookd
    reqs = b"".join(ingest_req(h, json.dumps({"type": f"p.{i}", "data": {}}).encode()) for i in range(5))
    reqs += b"GET /api/webhook/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    rs = responses(raw(h, reqs))
    assert [r[0] for r in rs] == [202] * 5 + [200]
    assert [json.loads(r[2])["type"] for r in rs[:5]] == [f"p.{i}" for i in range(5)]


def test_body_over_the_cap_is_413_json_and_nothing_stored(hookd):
    h = hookd(HOOKD_MAX_BODY_BYTES="2048")
    big = json.dumps({"type": "big", "data": {"x": "a" * 4096}}).encode()
    rs = responses(raw(h, ingest_req(h, big)))
    assert rs[0][0] == 413 and rs[0][1]["content-type"].startswith("application/json")
    assert json.loads(rs[0][2])["code"]
    # declared too big with Expect: 100-continue: refused before the body is sent
    head = (b"POST /api/webhook/v1/events HTTP/1.1\r\nHost: x\r\nx-api-key: " + h.key.encode() +
            b"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n")
    rs = responses(raw(h, head))
    assert rs[0][0] == 413
    assert h.api("GET", "/api/webhook/v1/events").json()["total"] == 0


def test_chunked_ingest_works(shared_hookd):
    h = shared_hookd
    body = json.dumps({"type": "chunked.ok", "data": {"a": 1}}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    req = (b"POST /api/webhook/v1/events HTTP/1.1\r\nHost: x\r\nx-api-key: " + h.key.encode() +
           b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
           chunks + b"0\r\n\r\n")
    rs = responses(raw(h, req))
    assert rs[0][0] == 202 and json.loads(rs[0][2])["type"] == "chunked.ok"


def test_smuggling_and_injection_are_400_json_and_close(shared_hookd):
    h = shared_hookd
    bad = [
        b"POST /api/webhook/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
        b"POST /api/webhook/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /api/webhook/health HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n",
        b"GET /api/webhook/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
        b"GET http://169.254.169.254/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
    ]
    for req in bad:
        out = raw(h, req + b"GET /api/webhook/health HTTP/1.1\r\nHost: x\r\n\r\n")
        rs = responses(out)
        assert len(rs) == 1, (req, out)  # the connection closed after the error
        assert rs[0][0] == 400, (req, out)
        assert rs[0][1]["content-type"].startswith("application/json")
        assert b"<html" not in out.lower()
        err = json.loads(rs[0][2])
        assert err["code"] == "bad_request" and "JSON" not in err["why"], (req, err)
        assert "HTTP" in err["why"], err


def test_broken_json_and_unknown_routes_never_html(shared_hookd):
    h = shared_hookd
    for req in (ingest_req(h, b'{"type": "a", "data": {'), ingest_req(h, b"\xff\xfe"),
                b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"BREW /api/webhook/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        out = raw(h, req, read_until_close=False)
        rs = responses(out)
        assert rs[0][0] in (400, 404, 405), out
        assert rs[0][1]["content-type"].startswith("application/json") and json.loads(rs[0][2])["code"]


def test_many_idle_connections_do_not_block_requests(shared_hookd):
    h = shared_hookd
    idle = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(300)]
    half = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(50)]
    for s in half:
        s.sendall(b"POST /api/webhook/v1/events HTTP/1.1\r\nHost: x\r\n")  # never finished
    t0 = time.monotonic()
    assert h.api("GET", "/api/webhook/health").status_code == 200
    assert time.monotonic() - t0 < 2 * SLOW
    for s in idle + half:
        s.close()
