"""Real servers for tests and benches, started on loopback in temp dirs (no mocks).

PgServer -- a private PostgreSQL cluster: initdb in a temp dir, the server on a free loopback
            port with fsync on, a fresh database per test (new_database() returns its PG_URL),
            and the faults tests need: stop(), restart(), kill() (SIGKILL to the whole server).

Run as root (CI), PostgreSQL refuses to start; the server then runs as the `postgres` user
that Debian's postgresql package creates (HOOKD_PG_USER overrides it), with its temp dir
chowned to that user. Binaries come from /usr/lib/postgresql/15/bin (HOOKD_PG_BIN overrides).
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("HOOKD_PG_BIN", "/usr/lib/postgresql/15/bin")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_log(path):
    """The text of the log file at path ("" before it exists), undecodable bytes replaced."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


class _Server:
    """What the servers below share: start(), stop() and log_path are theirs."""

    def restart(self):
        self.stop()
        return self.start()

    def logs(self):
        return read_log(self.log_path)


class PgServer(_Server):
    """One PostgreSQL cluster. Superuser `hookd`, trust authentication on loopback only."""

    def __init__(self, port=None, settings=None):
        self.dir = tempfile.mkdtemp(prefix="hookd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.port = port or free_port()
        self.user = "hookd"
        self.proc = None
        self._seq = 0
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": self.dir,
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
        }
        self.settings.update(settings or {})
        self._pw = None
        if os.geteuid() == 0:
            self._pw = pwd.getpwnam(os.environ.get("HOOKD_PG_USER", "postgres"))
            os.chown(self.dir, self._pw.pw_uid, self._pw.pw_gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", self.user,
                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])

    # processes run as the server's user when we are root
    def _as_user(self):
        if not self._pw:
            return {}
        return {"user": self._pw.pw_uid, "group": self._pw.pw_gid, "extra_groups": []}

    def _run(self, cmd):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
                           **self._as_user())
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stdout}{p.stderr}")
        return p

    # lifecycle
    def start(self, timeout=30):
        """Starts the server (after stop() or kill() too: same port, same data)."""
        args = [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port)]
        for k, v in self.settings.items():
            args += ["-c", f"{k}={v}"]
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={"LC_ALL": "C"},
                                     **self._as_user())
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            if self._ready():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not start in {timeout}s:\n{self.logs()[-3000:]}")

    def _ready(self):
        p = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", self.user, "-d", "postgres"],
                           capture_output=True, timeout=10)
        return p.returncode == 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """Fast shutdown (SIGINT): clients are disconnected, everything committed is kept."""
        if not self.running():
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """SIGKILL to the server and every backend at once; the next start() runs crash
        recovery, like after a power cut of the database host (with fsync on, nothing that was
        committed is lost)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        # backends that were not in the group die as soon as they notice the postmaster gone
        pidfile = os.path.join(self.data, "postmaster.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # databases
    def url(self, db="postgres"):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def new_database(self, prefix="t"):
        """Creates an empty database and returns its PG_URL."""
        self._seq += 1
        name = f"{prefix}_{os.getpid()}_{self._seq}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, query, url=None):
        """Runs query on url (default: the postgres database); see pg_query."""
        return pg_query(url or self.url(), query)


def pg_query(url, query):
    """Runs query with psql on the database at url; returns the rows as lists of strings (NULL
    as None). For single-line values: tests read ids, counts and secrets with it."""
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-F", "\x1f",
                        "-P", "null=\x1e", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", query],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"psql failed: {p.stderr.strip()}")
    return [[None if v == "\x1e" else v for v in line.split("\x1f")]
            for line in p.stdout.splitlines()]


class RedisServer(_Server):
    """One redis-server on a free loopback port, no persistence (--save "" --appendonly no): a
    restart comes back EMPTY, like a Redis without persistence after a crash, which is what the
    fault tests want. Each test takes a fresh key prefix (new_prefix()), so one server serves a
    whole pytest worker. Faults: stop() (SIGTERM), kill() (SIGKILL), start() again on the same
    port, flushall()."""

    def __init__(self, port=None, binary=None):
        self.dir = tempfile.mkdtemp(prefix="hookd-redis-")
        self.port = port or free_port()
        self.binary = binary or os.environ.get("HOOKD_REDIS_SERVER", "redis-server")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None
        self._seq = 0

    def start(self, timeout=20):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--protected-mode", "yes",
             "--databases", "16", "--loglevel", "warning"],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start in {timeout}s:\n{self.logs()[-3000:]}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20):
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill()
        self.proc.wait()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def new_prefix(self, base="t"):
        """A key prefix no other test uses: hookd's HOOKD_REDIS_PREFIX for one test."""
        self._seq += 1
        return f"{base}{os.getpid()}_{self._seq}:"

    # a minimal RESP client (no dependency beyond the standard library)
    def command(self, *args, timeout=10):
        """Sends one command and returns its reply: str for simple strings and bulk strings
        (None for nil), int, list, or raises RuntimeError for an error reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = [f"*{len(args)}\r\n".encode()]
            for a in args:
                b = a if isinstance(a, bytes) else str(a).encode()
                out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
            s.sendall(b"".join(out))
            f = s.makefile("rb")
            return self._read(f)

    def _read(self, f):
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read(f) for _ in range(n)]
        raise RuntimeError(f"bad RESP line {line!r}")

    def flushall(self):
        return self.command("FLUSHALL")


__all__ = ["PgServer", "RedisServer", "free_port"]


# The last release whose schema a store on disk may have been written by: the end of wave 1
# (issues 2-8). Migration tests open a store populated by that hookd with the one under test.
PREVIOUS_RELEASE = "d7d3c7475a5af4cdc20a262f487835232e894006"


def previous_hookd(commit=PREVIOUS_RELEASE):
    """Path of a hookd binary built from `commit` of this repository (git archive + cmake,
    release build of the hookd target only), built once per machine and cached in
    $TMPDIR/hookd-prev-<commit>/ (a lock file serialises concurrent builders, e.g. pytest-xdist
    workers). HOOKD_PREV_BIN overrides it. Raises RuntimeError when the commit is not in the
    repository (a shallow clone) or does not build."""
    if os.environ.get("HOOKD_PREV_BIN"):
        return os.environ["HOOKD_PREV_BIN"]
    import fcntl
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    base = os.path.join(tempfile.gettempdir(), "hookd-prev-" + commit)
    binary = os.path.join(base, "build", "hookd")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(binary, os.X_OK):
            return binary
        src = os.path.join(base, "src")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        try:
            archive = subprocess.run(["git", "-C", root, "archive", "--format=tar", commit],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", src], input=archive, check=True,
                           capture_output=True)
            bdir = os.path.join(base, "build")
            subprocess.run(["cmake", "-S", src, "-B", bdir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                           check=True, capture_output=True)
            subprocess.run(["cmake", "--build", bdir, "-j2", "--target", "hookd"], check=True,
                           capture_output=True)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"building hookd {commit} failed: {e.stderr[-2000:]!r}") from e
        return binary
