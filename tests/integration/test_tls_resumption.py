"""TLS session resumption across connections (issue 21, HOOKD_TLS_SESSION_CACHE), against the
real binary and a local https receiver that closes every connection after its answer.

Every delivery then opens a new connection and does a TLS handshake. With the session cache on
(the default) a delivery's handshake resumes the session of the one before; with
HOOKD_TLS_SESSION_CACHE=0 every handshake is full (the baseline of bench/run.py h).
The receiver tells them apart with the server side's own view (SSLSocket.session_reused).
"""
import datetime
import ipaddress
import os
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SLOW, wait_until


def make_cert(dirpath):
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files; returns the paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = dirpath / "receiver.pem", dirpath / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class ClosingTLSReceiver:
    """An https endpoint that answers each request 200 with Connection: close and records, per
    connection, whether its handshake resumed a session. delay_s: seconds before answering
    (so that deliveries overlap)."""

    def __init__(self, cert, key, delay_s=0.0):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.delay_s = delay_s
        self.handshakes = []  # session_reused of each connection that carried a request
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"https://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(10)
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as s:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        n = int(value)
                while len(body) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    body += chunk
                if self.delay_s:
                    self.stop.wait(self.delay_s)
                with self.lock:
                    self.handshakes.append(s.session_reused)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                try:
                    s.unwrap()
                except (OSError, ssl.SSLError):
                    pass
        except (OSError, ssl.SSLError):
            pass

    def counts(self):
        """(requests answered, of which on a resumed session)."""
        with self.lock:
            return len(self.handshakes), sum(self.handshakes)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def closing_tls(tmp_path):
    cert, key = make_cert(tmp_path)
    r = ClosingTLSReceiver(cert, key)
    r.cert = cert
    yield r
    r.close()


def deliver_one_by_one(h, r, n):
    """n deliveries, each sent once the one before has succeeded (so each opens a new connection
    after the last one closed). Returns the receiver's counts."""
    wh = h.create_webhook(r.url())
    for i in range(n):
        h.ingest(data={"i": i})
        wait_until(lambda: r.counts()[0] >= i + 1, 15, what=f"delivery {i + 1}")
        h.wait_delivery(wh["id"], "success", n=i + 1)
    return r.counts()


def test_new_connections_resume_the_tls_session(hookd, closing_tls):
    h = hookd(HOOKD_CA_FILE=closing_tls.cert)
    total, resumed = deliver_one_by_one(h, closing_tls, 5)
    assert total == 5
    # the first handshake is full; every later one resumes the session of the one before
    assert closing_tls.handshakes == [False, True, True, True, True]


def test_session_cache_off_does_a_full_handshake_every_time(hookd, closing_tls):
    h = hookd(HOOKD_CA_FILE=closing_tls.cert, HOOKD_TLS_SESSION_CACHE="0")
    total, resumed = deliver_one_by_one(h, closing_tls, 5)
    assert total == 5
    assert resumed == 0, closing_tls.handshakes


def test_ca_file_is_parsed_once_not_at_every_connection(hookd, closing_tls, tmp_path):
    """HOOKD_CA_FILE is trusted instead of the system's CAs, without the system's CA directory:
    libcurl then keeps the parsed file for later connections instead of reading and parsing it
    again for each new one (a fifth of hookd's CPU per new TLS connection in bench/run.py h).
    Shown by emptying the file after the first delivery: a new connection still verifies."""
    ca = tmp_path / "ca-copy.pem"
    ca.write_bytes(open(closing_tls.cert, "rb").read())
    h = hookd(HOOKD_CA_FILE=str(ca))
    wh = h.create_webhook(closing_tls.url(), maxRetries=0)
    h.ingest(data={"i": 0})
    h.wait_delivery(wh["id"], "success", n=1)
    ca.write_bytes(b"")  # read again, this would trust nothing
    h.ingest(data={"i": 1})
    h.wait_delivery(wh["id"], "success", n=2)
    assert closing_tls.counts()[0] == 2  # two connections (the receiver closes each)


def cpu_s(pid):
    """utime + stime of process pid so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rpartition(")")[2].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def test_system_trust_is_parsed_once_not_at_every_connection(hookd, closing_tls):
    """Without HOOKD_CA_FILE hookd trusts the system's CA bundle. libcurl 7.88 read and parsed
    it again for every new connection (~15 ms of CPU each for the 144 certificates here)
    because its default CA directory turns its CA cache off; hookd now gives the bundle
    without the directory, and the parsed bundle is kept. The receiver's certificate is in no
    system store, so every attempt fails its handshake on a new connection: hookd's CPU per
    attempt shows whether the bundle is parsed each time."""
    h = hookd(HOOKD_DISABLE_AFTER="0")
    wh = h.create_webhook(closing_tls.url(), maxRetries=0)
    h.ingest(data={"i": -1})
    h.wait_delivery(wh["id"], "failed", n=1)  # the first connection parses it in any case
    cpu0, n = cpu_s(h.proc.pid), 40
    for i in range(n):
        h.ingest(data={"i": i})
    failed = h.wait_delivery(wh["id"], "failed", n=n + 1, timeout=60 * SLOW)
    assert closing_tls.counts()[0] == 0  # untrusted: no request was sent
    per_attempt_ms = (cpu_s(h.proc.pid) - cpu0) * 1000 / n
    assert len(failed) == n + 1
    assert per_attempt_ms < 5 * SLOW, f"{per_attempt_ms:.1f} ms of CPU per attempt"
