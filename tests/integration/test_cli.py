"""The binary (SPEC §1): options from defaults, .env, environment and flags; --help; bad values;
subcommands; the bootstrap key; graceful SIGTERM."""
import json
import os
import signal
import subprocess

import pytest
import requests

from conftest import (HOOKD_BIN, SANITIZER_VARS, check_no_sanitizer_report, free_port, run_hookd,
                      wait_until)


def run(args, env=None, cwd=None):
    return run_hookd(args, env=env, cwd=cwd)


def test_help_lists_every_option_with_defaults(tmp_path):
    p = run(["--help"], cwd=tmp_path)
    assert p.returncode == 0
    out = p.stdout
    for name in ["PORT", "PG_URL", "REDIS_URL", "NATS_URL", "BASE_URL", "NODE_ENV",
                 "WEBHOOK_ENCRYPTION_KEY", "NODE_TLS_REJECT_UNAUTHORIZED", "HOOKD_DB",
                 "HOOKD_BOOTSTRAP_KEY", "HOOKD_BOOTSTRAP_ORG", "HOOKD_SHUTDOWN_TIMEOUT_MS",
                 "HOOKD_MAX_BODY_BYTES", "HOOKD_HTTP_TIMEOUT_MS", "HOOKD_RESPONSE_BODY_MAX",
                 "HOOKD_RETRY_SCHEDULE", "HOOKD_RETRY_JITTER", "HOOKD_DISABLE_AFTER",
                 "HOOKD_ENDPOINT_CONCURRENCY", "HOOKD_MAX_INFLIGHT", "HOOKD_ALLOW_NETWORKS",
                 "HOOKD_HTTPS_ONLY", "HOOKD_TLS_INSECURE", "HOOKD_USER_AGENT", "HOOKD_LOG_FORMAT",
                 "HOOKD_LOG_LEVEL", "--http-timeout-ms", "--port", "--pg-url"]:
        assert name in out, name
    assert "8013" in out and "5s,5m,30m,2h,5h,10h" in out and "./hookd.db" in out


def test_version():
    p = run(["version"])
    assert p.returncode == 0 and p.stdout.startswith("hookd ")


def test_bad_value_stops_with_the_option_named(tmp_path):
    for env, flag, needle in [
        ({"HOOKD_HTTP_TIMEOUT_MS": "abc"}, [], "HOOKD_HTTP_TIMEOUT_MS"),
        ({"PORT": "70000"}, [], "PORT"),
        ({}, ["--retry-jitter=2"], "HOOKD_RETRY_JITTER"),
        ({"HOOKD_RETRY_SCHEDULE": "5s,soon"}, [], "HOOKD_RETRY_SCHEDULE"),
        ({"WEBHOOK_ENCRYPTION_KEY": "nothex"}, [], "WEBHOOK_ENCRYPTION_KEY"),
        ({"HOOKD_LOG_FORMAT": "xml"}, [], "HOOKD_LOG_FORMAT"),
        ({"HOOKD_ALLOW_NETWORKS": "10.0.0.0/99"}, [], "HOOKD_ALLOW_NETWORKS"),
    ]:
        p = run(flag + ["version"], env=env, cwd=tmp_path)
        assert p.returncode == 2, (env, flag, p.returncode, p.stderr)  # 2: bad configuration
        assert needle in p.stderr, p.stderr


def test_unknown_flag_and_command(tmp_path):
    p = run(["--no-such-option", "serve"], cwd=tmp_path)
    assert p.returncode == 2 and "no-such-option" in p.stderr
    p = run(["frobnicate"], cwd=tmp_path)
    assert p.returncode == 2 and "frobnicate" in p.stderr


def test_migrate_and_apikey_lifecycle(tmp_path):
    env = {"HOOKD_DB": str(tmp_path / "k.db")}
    assert run(["migrate"], env=env).returncode == 0
    p = run(["apikey", "create", "--org", "org_a", "--name", "ci"], env=env)
    assert p.returncode == 0, p.stderr
    key = p.stdout.strip()
    assert key.startswith("hk_") and len(key) == 35
    p = run(["apikey", "list"], env=env)
    assert p.returncode == 0 and "org_a" in p.stdout and key not in p.stdout
    key_id = [line.split()[0] for line in p.stdout.splitlines() if "org_a" in line][0]
    assert run(["apikey", "create"], env=env).returncode == 2  # --org is required
    assert run(["apikey", "revoke", key_id], env=env).returncode == 0
    assert "revoked" not in run(["apikey", "revoke", key_id], env=env).stdout  # already revoked
    p = run(["apikey", "list"], env=env)
    assert any(key_id in line and line.count("T") >= 2 for line in p.stdout.splitlines())


def test_key_works_then_revoked_key_is_refused(hookd):
    h = hookd()
    p = h.cli("apikey", "create", "--org", "org_x")
    key = p.stdout.strip()
    assert h.api("GET", "/api/webhook/v1", key=key).status_code == 200
    assert h.api("GET", "/api/webhook/v1", headers={"authorization": f"Bearer {key}"}, key=None).status_code == 200
    key_id = [l.split()[0] for l in h.cli("apikey", "list").stdout.splitlines() if "org_x" in l][0]
    h.cli("apikey", "revoke", key_id)
    # the auth cache holds a key for at most 10 s
    wait_until(lambda: h.api("GET", "/api/webhook/v1", key=key).status_code == 401, 15, 0.5,
               "revoked key to be refused")


def test_env_file_then_environment_then_flags(tmp_path):
    port_file, port_env, port_flag = free_port(), free_port(), free_port()
    (tmp_path / ".env").write_text(
        f"# comment\nexport PORT={port_file}\nHOOKD_BOOTSTRAP_KEY='file_key_0123456789'\n"
        f'HOOKD_HOST="127.0.0.1"\nHOOKD_DB={tmp_path}/e.db\n')

    def serve(env, args):
        e = {"PATH": os.environ["PATH"], **{k: os.environ[k] for k in SANITIZER_VARS if k in os.environ}}
        e.update(env)
        return subprocess.Popen([HOOKD_BIN, *args, "serve"], env=e, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    for env, args, port in [({}, [], port_file), ({"PORT": str(port_env)}, [], port_env),
                            ({"PORT": str(port_env)}, [f"--port={port_flag}"], port_flag)]:
        p = serve(env, args)
        try:
            wait_until(lambda: _healthy(port), 15, 0.05, f"hookd on {port}")
            r = requests.get(f"http://127.0.0.1:{port}/api/webhook/v1",
                             headers={"x-api-key": "file_key_0123456789"}, timeout=5)
            assert r.status_code == 200
        finally:
            p.send_signal(signal.SIGTERM)
            out = p.communicate(timeout=30)[0].decode(errors="replace")
            check_no_sanitizer_report(out)
            assert p.returncode == 0, out


def _healthy(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/api/webhook/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_first_start_prints_a_default_key_once(tmp_path):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PORT": str(port), "HOOKD_HOST": "127.0.0.1",
           "HOOKD_DB": str(tmp_path / "d.db"),
           **{k: os.environ[k] for k in SANITIZER_VARS if k in os.environ}}
    p = subprocess.Popen([HOOKD_BIN], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    wait_until(lambda: _healthy(port), 15, 0.05, "hookd")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    check_no_sanitizer_report(out + err)
    assert p.returncode == 0
    key = out.strip().splitlines()[0]
    assert key.startswith("hk_")
    assert "org_default" in err
    r = run_hookd(["apikey", "list"], env=env, cwd=tmp_path)
    assert "org_default" in r.stdout
    # second start: a key exists, nothing is printed
    p = subprocess.Popen([HOOKD_BIN], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    wait_until(lambda: _healthy(port), 15, 0.05, "hookd")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    check_no_sanitizer_report(out + err)
    assert p.returncode == 0 and "hk_" not in out


def test_second_hookd_on_the_same_sqlite_file_is_refused(hookd):
    if os.environ.get("HOOKD_TEST_STORE", "sqlite") != "sqlite":
        pytest.skip("the file lock is the SQLite store's; PostgreSQL takes several nodes")
    h = hookd()
    p = run_hookd(["serve"], env={**h.env, "PORT": str(free_port())}, cwd=h.workdir, timeout=30)
    assert p.returncode == 1 and "another hookd" in p.stderr, (p.returncode, p.stderr)


def test_sigterm_exits_zero_and_logs(hookd):
    h = hookd()
    assert h.stop(signal.SIGTERM) == 0
    assert any(e.get("event") == "hookd.stopped" for e in h.log_events())


def test_config_doc_matches_help():
    """docs/CONFIG.md embeds `hookd --help` verbatim; regenerate it when an option changes."""
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "CONFIG.md")).read()
    block = doc.split("```text\n", 1)[1].rsplit("```", 1)[0]
    p = run(["--help"])
    assert p.returncode == 0
    assert block == p.stdout, "docs/CONFIG.md is stale: replace its ```text block with `hookd --help`"


def test_base_url_and_node_env_do_what_help_says(hookd):
    """BASE_URL and NODE_ENV are taken from the seed's .env: --help says BASE_URL starts a
    portal session's url (it does) and NODE_ENV is only logged (at start, hookd.listening)."""
    out = run(["--help"]).stdout
    lines = out.splitlines()
    def text_of(name):
        i = next(i for i, l in enumerate(lines) if l.split() and l.split()[0] == name)
        return " ".join(l.strip() for l in lines[i + 1:i + 3])
    assert "portal session" in text_of("BASE_URL"), text_of("BASE_URL")
    assert "changes no behaviour" in text_of("NODE_ENV"), text_of("NODE_ENV")
    h = hookd(NODE_ENV="staging-7", BASE_URL="https://hooks.example.com/")
    ev = [e for e in h.log_events() if e.get("event") == "hookd.listening"]
    assert ev and ev[0].get("node_env") == "staging-7", ev
    r = h.api("POST", "/api/webhook/v1/portal-sessions", {})
    assert r.status_code == 201, r.text
    assert r.json()["url"].startswith("https://hooks.example.com/api/webhook/ui/#token="), r.text


def test_a_short_descriptor_limit_lowers_the_idle_connections_kept(tmp_path):
    """With `ulimit -n` 2,000, HOOKD_MAX_CONNECTIONS=1000 and HOOKD_MAX_INFLIGHT=100, the
    descriptors left for idle keep-alive connections are 2,000 - 1,000 - 100 - 256 = 644: hookd
    keeps that many instead of HOOKD_MAX_IDLE_CONNECTIONS (2,048) and says so at start (it
    stops here because its port is taken, after the check)."""
    import resource
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    env = {"PORT": str(busy.getsockname()[1]), "HOOKD_DB": str(tmp_path / "h.db"),
           "HOOKD_MAX_CONNECTIONS": "1000", "HOOKD_MAX_INFLIGHT": "100", "HOOKD_LOG_FORMAT": "json"}

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (2000, 2000))

    try:
        p = run_hookd(["serve"], env=env, cwd=tmp_path, preexec_fn=limit)
        # the same limit with room for the default: no warning
        q = run_hookd(["serve"], env={**env, "HOOKD_MAX_IDLE_CONNECTIONS": "600"}, cwd=tmp_path,
                preexec_fn=limit)
    finally:
        busy.close()
    assert p.returncode != 0 and q.returncode != 0
    lines = [l for l in (p.stdout + p.stderr).splitlines() if "hookd.nofile_low" in l]
    assert len(lines) == 1, p.stdout + p.stderr
    e = json.loads(lines[0])
    assert e["level"] == "warn" and e["kept"] == 644 and e["limit"] == 2000, e
    assert "hookd.nofile_low" not in q.stdout + q.stderr
