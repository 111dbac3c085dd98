#!/usr/bin/python3
"""tests/soak/soak.py: does hookd run on a fixed disk? (issue 16, part 5)

Runs hookd (a fresh store per phase) with a steady stream of events at a fixed rate against a
fast receiver (bench/receiver), one phase per retention setting (by default `off` and the
profile's retention). The phases run side by side (--mode paired, the default): one hookd,
store, receiver and stream each, at the same time, so whatever else the machine does (other
processes, the disk) hits both alike and the p99 comparison measures pruning, not the
neighbours; --mode sequential runs them one after the other. Every --sample-s seconds it samples:

  store   SQLite: the size of hookd.db + hookd.db-wal on disk; PostgreSQL: hookd_store_bytes
          (/metrics: hookd's tables with indexes and TOAST; asked of PostgreSQL directly, with
          the same query, when hookd does not report it)
  rss     hookd's VmRSS (/proc/PID/status)
  p99     the ingest latency p99 of the requests of that interval (from the time each was due
          to be sent, so a stalled hookd shows even when it delays the senders)
  rows    hookd_store_rows{table="delivery"} when hookd reports it, and deliveries received

It prints the curve of each phase as a table (stderr) and the whole result as one JSON line
(stdout), and exits 0 only when it passes:

  flat    in every phase with retention on, after the warm-up (--warmup-s, default three times
          the retention: the store is full and pruning has run several rounds), the store size
          and the RSS stay flat: the growth over the rest of the phase (least-squares slope x
          duration, so one sample's noise does not decide) is at most --flat-pct (10 %) of their
          mean, or --flat-store-mb / --flat-rss-mb (2 MiB / 8 MiB) when that is larger (a
          store of a few MB moves by a WAL checkpoint). The `off` phase is checked the same way
          and reported, not judged: it must GROW (that is what retention fixes, and it shows
          the check can fail).
  p99     the ingest p99 (all requests after the warm-up) of each retention phase is within
          --p99-pct (20 %) of the `off` phase's, plus --p99-slack-ms (1 ms: on a small shared
          machine two identical runs differ by about that).

Profiles (options given explicitly win):
  short   CI: retention 20s, 2 minutes, 100 events/s per phase, samples every 3 s
  long    retention 60s, 30 minutes, 200 events/s per phase, samples every 10 s
(twice as long with --mode sequential)

  tests/soak/soak.py [--profile short|long] [--store sqlite|pg] [--retention 60s]
                     [--phases off,60s] [--minutes N] [--rate R] [--sample-s S] [--warmup-s S]
                     [--pad 250] [--mode paired|sequential] [--build-dir build]
                     [--hookd-env NAME=VALUE ...]

Retention is HOOKD_RETENTION (and HOOKD_PRUNE_* given with --hookd-env); a hookd that does not
know the option ignores it, and its retention phase grows like `off` (the run fails). Needs
build/hookd and build/bench/receiver; PostgreSQL runs a private server (tests/lib/servers.py).
Docs: docs/OPERATIONS.md, "Soak test".
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
_spec = importlib.util.spec_from_file_location("hookd_bench", os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # bench/run.py: Hookd, Receiver, start_server, request

PROFILES = {
    "short": dict(retention="20s", minutes=2.0, rate=100.0, sample_s=3.0),
    "long": dict(retention="60s", minutes=30.0, rate=200.0, sample_s=10.0),
}
MIB = 1 << 20
# hookd_store_bytes's query (src/store/pg.c), for a hookd that does not report it
PG_BYTES = ("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN "
            "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
            "n.nspname = current_schema()")


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def seconds_of(text):
    """Seconds of a retention setting: 0 for off/0, else a whole number with s/m/h/d."""
    if text in ("off", "0"):
        return 0
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not m:
        raise SystemExit(f"soak: retention {text!r}: want off or a number with ms/s/m/h/d")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def growth(points):
    """Least-squares slope of (t, v) points times their time span: how much v grew over it."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    slope = sum((t - mt) * (v - mv) for t, v in points) / den
    return slope * (points[-1][0] - points[0][0])


def flatness(points, pct, floor):
    """{"growth", "limit", "mean", "ok"} of a series after the warm-up (see the file comment)."""
    g = growth(points)
    if g is None:
        return {"ok": False, "error": "fewer than 3 samples after the warm-up"}
    mean = sum(v for _, v in points) / len(points)
    limit = max(pct / 100 * mean, floor)
    return {"growth": round(g), "limit": round(limit), "mean": round(mean), "ok": g <= limit}


class Stream:
    """Sends one event every 1/rate s to hookd from `conns` keep-alive connections; records
    (due, latency ms, status) of each. Latency counts from the time the event was due, so a
    request that waited for a free connection counts its wait (no coordinated omission)."""

    def __init__(self, port, key, rate, pad, conns=8):
        self.port, self.key, self.rate, self.pad = port, key, rate, pad
        self.lock = threading.Lock()
        self.done = []  # (due monotonic s, latency ms, status)
        self.seq = 0
        self.stop_flag = threading.Event()
        self.t0 = None
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(conns)]

    def start(self):
        self.t0 = time.monotonic() + 0.1
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)

    def _next_due(self):
        with self.lock:
            i = self.seq
            self.seq += 1
        return i, self.t0 + i / self.rate

    def _run(self):
        c = None
        while not self.stop_flag.is_set():
            i, due = self._next_due()
            wait = due - time.monotonic()
            if wait > 0 and self.stop_flag.wait(wait):
                break
            body = json.dumps({"type": "soak.event",
                               "data": {"seq": i, "pad": "x" * self.pad}}).encode()
            status = 0
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                c.request("POST", "/api/webhook/v1/events", body=body,
                          headers={"Content-Type": "application/json", "x-api-key": self.key})
                r = c.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                if c:
                    c.close()
                c = None
            lat = (time.monotonic() - due) * 1000
            with self.lock:
                self.done.append((due, lat, status))
        if c:
            c.close()

    def since(self, k):
        """The records after the first k, and the new count."""
        with self.lock:
            return self.done[k:], len(self.done)


def metric(port, name, labels=""):
    """A value from hookd's /metrics, or None."""
    try:
        status, body = bench.request(port, "GET", "/metrics", timeout=10)
    except OSError:
        return None
    if status != 200:
        return None
    text = body.decode() if isinstance(body, bytes) else str(body)
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def sqlite_bytes(db):
    total = 0
    for p in (db, db + "-wal"):
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return total


class Phase:
    """One phase: a receiver, a fresh hookd (and store) with HOOKD_RETENTION=retention and its
    webhook, and the stream. start() may raise bench.BenchError (hookd refused to start);
    sample() takes one sample; finish() stops everything and returns the phase's result."""

    def __init__(self, args, retention, work, pg_url):
        self.args, self.retention, self.pg_url = args, retention, pg_url
        self.env = {"HOOKD_RETENTION": retention, "HOOKD_LOG_LEVEL": "warn"}
        if pg_url:
            self.env["PG_URL"] = pg_url
        for kv in args.hookd_env:
            k, _, v = kv.partition("=")
            self.env[k] = v
        self.work = work
        self.rcv = self.node = self.stream = None
        self.samples, self.errors, self.lat_after_warmup = [], [], []
        self.k = 0
        self.dead = False

    def start(self):
        os.makedirs(self.work, exist_ok=True)
        self.rcv = bench.Receiver(self.args.receiver_bin, self.work)
        self.node = bench.Hookd(self.args.hookd_bin, os.path.join(self.work, "node"), self.env)
        self.node.wait_healthy()
        self.node.api("POST", "/v1", {"name": "soak", "url": self.rcv.url("/hook"),
                                      "events": ["soak.*"], "rateLimitEnabled": False})
        self.stream = Stream(self.node.port, bench.KEY, self.args.rate, self.args.pad)
        self.stream.start()

    def sample(self, t):
        if self.dead:
            return
        node, args = self.node, self.args
        if not node.alive():
            self.errors.append(f"hookd exited with {node.proc.returncode}: {node.log_tail(800)}")
            self.dead = True
            return
        recs, self.k = self.stream.since(self.k)
        lats = [lat for _, lat, st in recs if st == 202]
        bad = len([1 for _, _, st in recs if st != 202])
        if t >= args.warmup_s:
            self.lat_after_warmup += lats
        store = (sqlite_bytes(node.env["HOOKD_DB"]) if not self.pg_url
                 else metric(node.port, "hookd_store_bytes"))
        if store is None:  # a hookd without the metric: the same figure, asked directly
            store = int(bench.servers.pg_query(self.pg_url, PG_BYTES)[0][0])
        try:
            delivered = bench.request(self.rcv.port, "GET", "/count")[1].get("distinct")
        except (OSError, AttributeError):
            delivered = None
        s = {"t": round(t, 1), "store_bytes": int(store), "rss_bytes": rss_bytes(node.pid),
             "ingested": len(lats), "errors": bad,
             "p99_ms": round(percentile(lats, 99), 2) if lats else None,
             "rows_delivery": metric(node.port, "hookd_store_rows", '{table="delivery"}'),
             "delivered": delivered}
        self.samples.append(s)
        log(f"[{self.retention}] t={s['t']:7.1f}s store={s['store_bytes'] / MIB:8.2f} MiB "
            f"rss={s['rss_bytes'] / MIB:7.2f} MiB ingested={s['ingested']:5d} "
            f"p99={s['p99_ms']} ms rows={s['rows_delivery']} delivered={delivered}")
        if bad:
            self.errors.append(f"t={s['t']}: {bad} ingests not answered 202")

    def finish(self):
        if self.stream:
            self.stream.stop()
        code = self.node.stop() if self.node else None
        if self.rcv:
            self.rcv.stop()
        if code not in (0, None):
            self.errors.append(f"hookd exited with {code} at the end of the phase")
        args = self.args
        after = [s for s in self.samples if s["t"] >= args.warmup_s]
        lat = self.lat_after_warmup
        return {"retention": self.retention, "samples": self.samples, "errors": self.errors,
                "p99_ms": round(percentile(lat, 99), 2) if lat else None,
                "requests_after_warmup": len(lat),
                "flat_store": flatness([(s["t"], s["store_bytes"]) for s in after], args.flat_pct,
                                       args.flat_store_mb * MIB),
                "flat_rss": flatness([(s["t"], s["rss_bytes"]) for s in after], args.flat_pct,
                                     args.flat_rss_mb * MIB)}


def drive(phases, args):
    """Starts the phases (together), samples them every args.sample_s for args.minutes, and
    returns their results. A phase that cannot start is reported with its error."""
    live = []
    results = {}
    for ph in phases:
        try:
            ph.start()
            live.append(ph)
        except bench.BenchError as e:  # say hookd refused the setting at start-up
            log(f"phase HOOKD_RETENTION={ph.retention} could not run: {e}")
            ph.errors.append(str(e)[:2000])
            results[id(ph)] = ph.finish()
    try:
        t_start = time.monotonic()
        end = t_start + args.minutes * 60
        next_t = t_start + args.sample_s
        while live and time.monotonic() < end:
            time.sleep(max(0.0, next_t - time.monotonic()))
            next_t += args.sample_s
            for ph in live:
                ph.sample(time.monotonic() - t_start)
    finally:
        for ph in live:
            results[id(ph)] = ph.finish()
    return [results[id(ph)] for ph in phases]


def table(res):
    lines = [f"phase HOOKD_RETENTION={res['retention']}",
             f"{'t_s':>7} {'store_MiB':>10} {'rss_MiB':>8} {'ingested':>8} {'p99_ms':>7} "
             f"{'rows':>8} {'delivered':>9}"]
    for s in res["samples"]:
        lines.append(f"{s['t']:7.1f} {s['store_bytes'] / MIB:10.2f} {s['rss_bytes'] / MIB:8.2f} "
                     f"{s['ingested']:8d} {s['p99_ms'] if s['p99_ms'] is not None else '-':>7} "
                     f"{int(s['rows_delivery']) if s['rows_delivery'] is not None else '-':>8} "
                     f"{s['delivered'] if s['delivered'] is not None else '-':>9}")
    for k in ("flat_store", "flat_rss"):
        f = res[k]
        lines.append(f"{k}: " + (f"growth {f['growth'] / MIB:.2f} MiB, limit {f['limit'] / MIB:.2f}"
                                 f" MiB -> {'flat' if f['ok'] else 'GROWS'}" if "growth" in f
                                 else f.get("error", "?")))
    lines.append(f"ingest p99 after warm-up: {res['p99_ms']} ms "
                 f"({res['requests_after_warmup']} requests)")
    return "\n".join(lines)


def verdict(results, args):
    """(ok, errors) over every phase (see the file comment)."""
    errors = []
    off = next((r for r in results if seconds_of(r["retention"]) == 0), None)
    for r in results:
        errors += [f"[{r['retention']}] {e}" for e in r["errors"]]
        if seconds_of(r["retention"]) == 0:
            continue
        for k in ("flat_store", "flat_rss"):
            if not r[k].get("ok"):
                errors.append(f"[{r['retention']}] {k}: not flat after the warm-up ({r[k]})")
        if off and off["p99_ms"] is not None and r["p99_ms"] is not None:
            limit = off["p99_ms"] * (1 + args.p99_pct / 100) + args.p99_slack_ms
            r["p99_limit_ms"] = round(limit, 2)
            if r["p99_ms"] > limit:
                errors.append(f"[{r['retention']}] ingest p99 {r['p99_ms']} ms > {limit:.2f} ms "
                              f"(off: {off['p99_ms']} ms + {args.p99_pct}% + "
                              f"{args.p99_slack_ms} ms)")
    if not any(seconds_of(r["retention"]) for r in results):
        errors.append("no phase with retention on: nothing to judge (the off phase is reported "
                      "only)")
    return not errors, errors


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="short")
    ap.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--retention", help="the retention of the judged phase (profile's)")
    ap.add_argument("--phases", help="comma-separated HOOKD_RETENTION values (off,RETENTION)")
    ap.add_argument("--minutes", type=float, help="per phase")
    ap.add_argument("--rate", type=float, help="events per second")
    ap.add_argument("--sample-s", type=float)
    ap.add_argument("--warmup-s", type=float, help="default: 3 x retention (at least 30 s)")
    ap.add_argument("--pad", type=int, default=250, help="bytes of padding per event (~330 B body)")
    ap.add_argument("--flat-pct", type=float, default=10.0)
    ap.add_argument("--flat-store-mb", type=float, default=2.0)
    ap.add_argument("--flat-rss-mb", type=float, default=8.0)
    ap.add_argument("--p99-pct", type=float, default=20.0)
    ap.add_argument("--p99-slack-ms", type=float, default=1.0)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--hookd-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--mode", choices=("paired", "sequential"), default="paired",
                    help="phases side by side (default: they share the machine's noise) or "
                         "one after the other")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    prof = PROFILES[args.profile]
    for k, v in prof.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    phases = (args.phases or f"off,{args.retention}").split(",")
    ret_s = max([seconds_of(p) for p in phases] + [0])
    if args.warmup_s is None:
        args.warmup_s = max(30.0, 3 * ret_s)
    build = os.path.abspath(args.build_dir)
    args.hookd_bin = os.path.join(build, "hookd")
    args.receiver_bin = os.path.join(build, "bench", "receiver")
    for b in (args.hookd_bin, args.receiver_bin):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"soak: {b} is missing: build {build} first")
    if args.warmup_s >= args.minutes * 60 - 3 * args.sample_s:
        raise SystemExit("soak: the warm-up leaves fewer than 3 samples: more --minutes")

    work = tempfile.mkdtemp(prefix="hookd-soak-")
    results, pg = [], None
    try:
        if args.store == "pg":
            pg = bench.servers.PgServer()
            pg.start()
        mk = lambda i, p: Phase(args, p, os.path.join(work, f"phase{i}"),  # noqa: E731
                                pg.new_database("soak") if pg else None)
        if args.mode == "paired":
            log(f"{len(phases)} phases side by side ({', '.join(phases)}): {args.rate:g} "
                f"events/s each for {args.minutes:g} min on {args.store}, warm-up "
                f"{args.warmup_s:g} s")
            results = drive([mk(i, p) for i, p in enumerate(phases)], args)
        else:
            for i, p in enumerate(phases):
                log(f"phase {i + 1}/{len(phases)}: HOOKD_RETENTION={p}, {args.rate:g} events/s "
                    f"for {args.minutes:g} min on {args.store}, warm-up {args.warmup_s:g} s")
                results += drive([mk(i, p)], args)
        for r in results:
            print(table(r), file=sys.stderr, flush=True)
    finally:
        if pg:
            pg.cleanup()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    ok, errors = verdict(results, args)
    off = next((r for r in results if seconds_of(r["retention"]) == 0), None)
    for r in results:
        if r is off and off["flat_store"].get("ok"):
            log("note: the off phase did not grow: the run was too short to tell flat from growing")
    out = {"soak": args.profile, "store": args.store, "mode": args.mode, "rate": args.rate,
           "minutes": args.minutes, "sample_s": args.sample_s, "warmup_s": args.warmup_s,
           "pad": args.pad, "hookd_env": args.hookd_env, "phases": results, "ok": ok,
           "errors": errors}
    print(json.dumps(out, separators=(",", ":")), flush=True)
    log("PASS" if ok else "FAIL: " + "; ".join(errors))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
