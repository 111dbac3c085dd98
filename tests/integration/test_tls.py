"""TLS to endpoints (SPEC §4), against the real binary and a local https receiver.

The receiver's certificate is made here, self-signed (SAN IP:127.0.0.1 and DNS:localhost), so
nothing on the machine trusts it: hookd must refuse it by default (a failed attempt with a TLS
errorMessage, nothing received), deliver with HOOKD_CA_FILE naming it, deliver without it when
verification is off (HOOKD_TLS_INSECURE=1 or NODE_TLS_REJECT_UNAUTHORIZED=0, with a warning
logged at start), and still check the host name against the certificate. HOOKD_HTTPS_ONLY=1
refuses http URLs at create and patch (422) and never sends to one made before it was set.
"""
import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Receiver, expect_standard


def make_cert(dirpath, name, sans):
    """A self-signed certificate (it is its own CA) and its key, as PEM files; returns paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = dirpath / f"{name}.pem", dirpath / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def certs(tmp_path):
    good = make_cert(tmp_path, "receiver", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                            x509.DNSName("localhost")])
    other = make_cert(tmp_path, "other", [x509.DNSName("other.example")])
    return {"good": good, "other": other}


def tls_receiver(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return Receiver(tls=ctx)


@pytest.fixture
def https(certs):
    r = tls_receiver(certs["good"])
    yield r
    r.close()


def test_unknown_certificate_is_refused_by_default(hookd, https):
    h = hookd()
    wh = h.create_webhook(https.url(), maxRetries=1)
    h.ingest()
    d = h.wait_delivery(wh["id"], "failed", timeout=15)[0]
    assert d["attemptNumber"] == 2 and d["responseStatus"] is None
    for a in d["attempts"]:
        msg = a["errorMessage"]
        assert "SSL" in msg and "certificate" in msg and "self-signed" in msg, msg
    assert https.count() == 0
    assert "hookd.tls_insecure" not in h.logs()


def test_ca_file_makes_the_certificate_trusted(hookd, https, certs):
    h = hookd(HOOKD_CA_FILE=certs["good"][0])
    ip = h.create_webhook(https.url("/ip"))
    name = h.create_webhook(f"https://localhost:{https.port}/name")
    h.ingest(data={"x": 1})
    got = https.wait(2)
    assert sorted(g.path for g in got) == ["/ip", "/name"]
    for wh in (ip, name):
        h.wait_delivery(wh["id"], "success")
    g = https.received("/ip")[0]
    assert g.headers["webhook-signature"] == expect_standard(
        ip["secret"], g.headers["webhook-id"], g.headers["webhook-timestamp"], g.body)
    assert "hookd.tls_insecure" not in h.logs()


def test_host_name_is_still_checked_with_a_trusted_ca(hookd, certs):
    r = tls_receiver(certs["other"])  # trusted, but issued to other.example, not 127.0.0.1
    try:
        h = hookd(HOOKD_CA_FILE=certs["other"][0])
        wh = h.create_webhook(r.url(), maxRetries=0)
        h.ingest()
        d = h.wait_delivery(wh["id"], "failed", timeout=15)[0]
        assert "SSL" in d["errorMessage"] and "127.0.0.1" in d["errorMessage"], d["errorMessage"]
        assert r.count() == 0
    finally:
        r.close()


@pytest.mark.parametrize("env", [{"HOOKD_TLS_INSECURE": "1"}, {"NODE_TLS_REJECT_UNAUTHORIZED": "0"}],
                         ids=["HOOKD_TLS_INSECURE", "NODE_TLS_REJECT_UNAUTHORIZED"])
def test_verification_off_delivers_and_warns_at_start(hookd, https, env):
    h = hookd(**env)
    wh = h.create_webhook(https.url())
    h.ingest()
    https.wait(1)
    h.wait_delivery(wh["id"], "success")
    warn = [e for e in h.log_events() if e.get("event") == "hookd.tls_insecure"]
    assert len(warn) == 1 and warn[0]["level"] == "warn", warn
    assert "verification is OFF" in warn[0]["msg"]
    # it is said at start, before hookd listens
    events = [e.get("event") for e in h.log_events()]
    assert events.index("hookd.tls_insecure") < events.index("hookd.listening")


def test_node_tls_reject_unauthorized_1_keeps_verification_on(hookd, https):
    h = hookd(NODE_TLS_REJECT_UNAUTHORIZED="1")
    wh = h.create_webhook(https.url(), maxRetries=0)
    h.ingest()
    d = h.wait_delivery(wh["id"], "failed", timeout=15)[0]
    assert "certificate" in d["errorMessage"]
    assert https.count() == 0 and "hookd.tls_insecure" not in h.logs()


def test_https_only_refuses_http_urls(hookd, receiver, https, certs):
    h = hookd(HOOKD_HTTPS_ONLY="1", HOOKD_CA_FILE=certs["good"][0])
    r = h.api("POST", "/api/webhook/v1", {"name": "n", "url": receiver.url(), "events": ["*"]})
    assert r.status_code == 422, r.text
    assert r.json()["message"] == "url must use https (HOOKD_HTTPS_ONLY=1)"
    wh = h.create_webhook(https.url())
    r = h.api("PATCH", f"/api/webhook/v1/{wh['id']}", {"url": receiver.url()})
    assert r.status_code == 422 and "HOOKD_HTTPS_ONLY" in r.json()["message"], r.text
    assert h.webhook(wh["id"])["url"] == https.url()
    h.ingest()
    https.wait(1)
    h.wait_delivery(wh["id"], "success")


def test_http_webhook_made_before_https_only_is_never_sent_to(hookd, receiver):
    h = hookd()
    wh = h.create_webhook(receiver.url(), maxRetries=3)
    h.restart(HOOKD_HTTPS_ONLY="1")
    h.ingest()
    d = h.wait_delivery(wh["id"], "failed", timeout=10)[0]
    assert d["attemptNumber"] == 1, d  # a policy refusal: final at once, like the SSRF guard
    assert "HOOKD_HTTPS_ONLY" in d["errorMessage"], d["errorMessage"]
    assert receiver.count() == 0


def test_unreadable_ca_file_stops_start_up(hookd, tmp_path):
    h = hookd(start=False)
    for path, why in [(tmp_path / "missing.pem", "cannot read the file"), (tmp_path, "is not a regular file")]:
        p = h.cli("serve", env={"HOOKD_CA_FILE": str(path)}, check=False)
        assert p.returncode == 2 and "HOOKD_CA_FILE" in p.stderr and why in p.stderr, p.stderr
