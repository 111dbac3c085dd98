"""
test_package.py: the Debian package end to end, on this machine (issue 20). Builds it
(scripts/package.sh, or takes HOOKD_DEB), installs it with dpkg -i (twice: install, then the
upgrade path of the maintainer scripts), checks what it put where (binary, Swagger UI files,
hookd system user, /var/lib/hookd hookd:hookd 0750, /etc/hookd/hookd.env root:hookd 0640 as a
conffile, the unit passing `systemd-analyze verify`), then runs the unit's ExecStart as systemd
would: as its User and Group (setpriv), in its WorkingDirectory, with a clean environment made of its
EnvironmentFile (plus PORT, HOOKD_HOST, HOOKD_ALLOW_NETWORKS=127.0.0.0/8, a bootstrap key, and
a NOTIFY_SOCKET this test listens on, as for Type=notify). An event goes through to a receiver
on loopback; READY=1 and STOPPING=1 must arrive; SIGTERM ends it with exit 0; `hookd backup`
works as the hookd user. Then dpkg -r and dpkg -P: the store in /var/lib/hookd must stay, the
configuration must go on purge. systemd is not PID 1 in CI's container, so the unit itself is
not started (systemd-analyze verify still checks it).

It changes the system: it needs root, and purges any installed hookd package (with
HOOKD_PURGE_DATA=1, so /var/lib/hookd goes too) before and after. scripts/test.sh runs it only
as root. Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/package
"""
import http.server
import json
import os
import pwd
import grp
import secrets
import signal
import socket
import sqlite3
import stat
import subprocess
import tempfile
import threading
import time

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = "/lib/systemd/system/hookd.service"
ENV_FILE = "/etc/hookd/hookd.env"
STATE = "/var/lib/hookd"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: installs a package")


def sh(*args, check=True, env=None):
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, f"{args}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def installed():
    p = sh("dpkg-query", "-W", "-f=${Status}", "hookd", check=False)
    return p.returncode == 0 and "installed" in p.stdout


def purge_all():
    """Leaves no hookd package, configuration or state behind (a previous run's included)."""
    env = dict(os.environ, HOOKD_PURGE_DATA="1")
    sh("dpkg", "-P", "hookd", check=False, env=env)
    sh("rm", "-rf", STATE, "/etc/hookd")


def parse_unit(path):
    """The [Service] keys of a unit file (last one wins, as for these single-valued keys)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def parse_env_file(path):
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (no quotes used in ours)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook endpoint on loopback that answers 200 and keeps every body it is sent."""

    def __init__(self):
        self.bodies = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                outer.bodies.append(self.rfile.read(n))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def wait_until(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def deb():
    path = os.environ.get("HOOKD_DEB")
    if not path:
        p = sh(os.path.join(ROOT, "scripts", "package.sh"))
        path = p.stdout.strip().splitlines()[-1]
    assert path.endswith(".deb") and os.path.isfile(path), path
    purge_all()
    yield path
    purge_all()


def test_package_install_run_remove(deb):
    # --- install, then again (the upgrade path: postinst configure <old-version>)
    sh("dpkg", "-i", deb)
    sh("dpkg", "-i", deb)
    assert installed()

    # --- what it installed
    user = pwd.getpwnam("hookd")
    assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin"), user
    assert grp.getgrgid(user.pw_gid).gr_name == "hookd"
    st = os.stat(STATE)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, user.pw_gid, 0o750)
    st = os.stat(ENV_FILE)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, user.pw_gid, 0o640)
    assert ENV_FILE in sh("dpkg-query", "-W", "-f=${Conffiles}", "hookd").stdout
    assert os.access("/usr/bin/hookd", os.X_OK)
    assert os.path.isfile("/usr/share/hookd/swagger-ui-dist/swagger-ui-bundle.js")
    assert os.path.isfile("/usr/share/hookd/dashboard/vendor/preact.mjs")
    # the monitoring files, as shipped: the rules pass promtool, the dashboard is JSON
    contrib = "/usr/share/hookd/contrib"
    for f in ("prometheus/hookd-rules.yml", "prometheus/hookd-rules.test.yml",
              "grafana/hookd-dashboard.json"):
        with open(os.path.join(contrib, f), "rb") as got, open(os.path.join(ROOT, "contrib", f), "rb") as want:
            assert got.read() == want.read(), f
    sh("promtool", "check", "rules", f"{contrib}/prometheus/hookd-rules.yml")
    with open(f"{contrib}/grafana/hookd-dashboard.json") as f:
        assert json.load(f)["panels"]
    sh("systemd-analyze", "verify", UNIT)

    unit = parse_unit(UNIT)
    assert unit["Type"] == "notify" and unit["User"] == "hookd"
    for k in ("NoNewPrivileges", "PrivateTmp"):
        assert unit[k] == "yes", k
    assert unit["ProtectSystem"] == "strict" and unit["ReadWritePaths"] == STATE
    assert "AF_INET" in unit["RestrictAddressFamilies"]
    assert unit["EnvironmentFile"] == ENV_FILE
    conf = parse_env_file(ENV_FILE)
    shutdown_ms = int(conf.get("HOOKD_SHUTDOWN_TIMEOUT_MS", "10000"))
    assert int(unit["TimeoutStopSec"].rstrip("s")) * 1000 > shutdown_ms + 5000

    # --- run ExecStart as the unit would
    receiver = Receiver()
    port = free_port()
    key = "pkgtest_" + secrets.token_hex(12)
    env = dict(conf)
    env.update(PORT=str(port), HOOKD_HOST="127.0.0.1", HOOKD_ALLOW_NETWORKS="127.0.0.0/8",
               HOOKD_BOOTSTRAP_KEY=key, HOOKD_LOG_FORMAT="json")
    tmp = tempfile.mkdtemp(prefix="hookd-notify-")
    os.chmod(tmp, 0o755)
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    os.chmod(notify_path, 0o666)
    notify.settimeout(15)
    env["NOTIFY_SOCKET"] = notify_path
    # setpriv execs (runuser would fork a PAM session and stand between the signal and hookd)
    argv = ["setpriv", f"--reuid={unit['User']}", f"--regid={unit['Group']}", "--init-groups",
            "--", "env", "-i"]
    argv += [f"{k}={v}" for k, v in env.items()] + unit["ExecStart"].split()
    log = open(os.path.join(tmp, "hookd.log"), "w+")
    proc = subprocess.Popen(argv, cwd=unit["WorkingDirectory"], stdout=log, stderr=log)
    try:
        msg = notify.recv(4096).decode()
        assert msg == "READY=1", msg
        base = f"http://127.0.0.1:{port}"
        h = {"x-api-key": key, "content-type": "application/json"}
        assert requests.get(base + "/api/webhook/health", timeout=5).status_code == 200
        # Swagger UI from /usr/share/hookd (no node_modules near /usr/bin or the working dir)
        r = requests.get(base + "/api/webhook/openapi/swagger-ui-bundle.js", timeout=5)
        assert r.status_code == 200 and len(r.content) > 100000, r.status_code
        # the dashboard and its npm libraries from /usr/share/hookd/dashboard (issue 18)
        for f in ("/", "/app.js", "/vendor/preact.mjs", "/vendor/uplot.js"):
            r = requests.get(base + "/api/webhook/ui" + f, timeout=5)
            assert r.status_code == 200 and len(r.content) > 500, (f, r.status_code)

        r = requests.post(base + "/api/webhook/v1", headers=h, timeout=5, data=json.dumps(
            {"name": "pkg", "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
             "events": ["*"], "rateLimitEnabled": False}))
        assert r.status_code == 201, r.text
        r = requests.post(base + "/api/webhook/v1/events", headers=h, timeout=5,
                          data=json.dumps({"type": "pkg.test", "data": {"n": 42}}))
        assert r.status_code == 202, r.text
        wait_until(lambda: receiver.bodies, 15, "the delivery")
        assert json.loads(receiver.bodies[0])["data"]["n"] == 42

        # backup as the service user, while it serves (docs/INSTALL.md)
        p = sh("runuser", "-u", "hookd", "--", "env", "-i",
               *[f"{k}={v}" for k, v in conf.items()], "/usr/bin/hookd", "backup",
               f"{STATE}/backup.db")
        assert "backed up" in p.stdout

        proc.send_signal(signal.SIGTERM)
        msg = notify.recv(4096).decode()
        assert msg == "STOPPING=1", msg
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        receiver.shutdown()
        log.seek(0)
        print(log.read()[-3000:])
    db = conf["HOOKD_DB"]
    assert os.path.dirname(db) == STATE and os.path.isfile(db)
    assert pwd.getpwuid(os.stat(db).st_uid).pw_name == "hookd"

    def events_in(path):
        c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return c.execute("SELECT count(*) FROM webhook_event").fetchone()[0]
        finally:
            c.close()

    assert events_in(db) == 1 and events_in(f"{STATE}/backup.db") == 1

    # --- remove: binary and unit gone, configuration and data stay
    sh("dpkg", "-r", "hookd")
    assert not os.path.exists("/usr/bin/hookd") and not os.path.exists(UNIT)
    assert os.path.isfile(ENV_FILE)
    assert events_in(db) == 1
    # --- purge: configuration gone, data stays (HOOKD_PURGE_DATA not set)
    env = {k: v for k, v in os.environ.items() if k != "HOOKD_PURGE_DATA"}
    p = sh("dpkg", "-P", "hookd", env=env)
    assert "kept" in p.stdout + p.stderr
    assert not os.path.exists("/etc/hookd")
    assert events_in(db) == 1 and not installed()
