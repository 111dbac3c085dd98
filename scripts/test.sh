#!/usr/bin/env bash
# Runs every test: the static checks (scripts/lint.sh: banned functions, clang-format;
# scripts/check_layers.sh: every include in src/ points down the layer order), unit +
# integration on a release build, then unit + integration again under AddressSanitizer +
# UndefinedBehaviorSanitizer. A ctest label that finds no test fails the run. Before the builds,
# promtool checks and unit-tests the Prometheus rules in contrib/prometheus.
#   scripts/test.sh                 everything
#   scripts/test.sh --quick         release build only (no sanitizer pass)
#   scripts/test.sh --valgrind      only the integration suite with every hookd under valgrind
#                                   (memcheck, leaks), on SQLite and PostgreSQL (~10 min)
#   HOOKD_PYTEST_ARGS="-k ingest"   extra pytest arguments
#   HOOKD_BUILD_DIR / HOOKD_ASAN_BUILD_DIR   build directories (default build, build-asan)
# The integration suite runs on the SQLite store and again on PostgreSQL (HOOKD_TEST_STORE=pg:
# a private PostgreSQL 15 per pytest worker, started by tests/lib/servers.py on loopback, as
# the postgres user when run as root), on both builds. HOOKD_ASAN_PG_TESTS="test_a.py ..."
# narrows the sanitizer build's PostgreSQL pass to those files. With Redis (HOOKD_TEST_REDIS=1)
# the release build runs it again on SQLite + Redis and on PostgreSQL + Redis.
# As root, the Debian package test (tests/package/test_package.py) runs after the Redis pass.
# The store conformance suite (tests/unit/test_store_conformance.c, ctest label `store`) runs
# every store request kind on SQLite and on a private PostgreSQL, on both builds. After the
# Redis pass, the soak test's short profile (tests/soak/soak.py) runs on both stores in the
# background of the package, bench and chaos steps.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
# The integration tests mostly wait (on retries, timeouts, servers): three workers per core keep
# the machine busy (measured: the SQLite pass takes 98 s with 6 workers on 2 cores, 232 s with 2).
pytest_args=(-q -p no:cacheprovider -n "${HOOKD_TEST_WORKERS:-$((jobs * 3))}" --timeout=300 ${HOOKD_PYTEST_ARGS:-})

run_suite() { # build-dir cmake-args...
    local dir=$1; shift
    echo "== build $dir"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    echo "== unit tests ($dir)"
    (cd "$dir" && ctest -L unit --no-tests=error --output-on-failure -j"$jobs")
    echo "== store conformance on SQLite and PostgreSQL ($dir)"
    (cd "$dir" && ctest -L store --no-tests=error --output-on-failure)
    echo "== fuzz corpus replay ($dir)"
    (cd "$dir" && ctest -L fuzz --no-tests=error --output-on-failure -j"$jobs")
    echo "== integration tests ($dir)"
    HOOKD_BIN="$PWD/$dir/hookd" /usr/bin/python3 -m pytest "${pytest_args[@]}" tests/integration
}

bdir=${HOOKD_BUILD_DIR:-build}
adir=${HOOKD_ASAN_BUILD_DIR:-build-asan}
asan_pg_tests=${HOOKD_ASAN_PG_TESTS:-}

if [ "${1:-}" = "--valgrind" ]; then
    # Each hookd the tests start runs under memcheck and writes its report to its own file;
    # a definite or indirect leak counts as an error. A report that is not empty fails the run
    # (hookds killed with -9 by the tests write an empty one: nothing to report).
    echo "== build $bdir"
    cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$bdir" -j"$jobs" >/dev/null
    vlogs=$(mktemp -d /tmp/hookd-valgrind.XXXXXX)
    export HOOKD_TEST_SLOWDOWN=10
    pytest_args=(-q -p no:cacheprovider -n "${HOOKD_TEST_WORKERS:-$((jobs * 2))}" --timeout=1500
                 ${HOOKD_PYTEST_ARGS:-})
    export HOOKD_TEST_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=$vlogs/%p.log"
    for store in sqlite pg; do
        echo "== integration tests under valgrind: $store ($bdir, reports in $vlogs)"
        HOOKD_TEST_STORE=$store HOOKD_BIN="$PWD/$bdir/hookd" /usr/bin/python3 -m pytest \
            "${pytest_args[@]}" tests/integration
    done
    reports=$(find "$vlogs" -name '*.log' -size +0)
    if [ -n "$reports" ]; then
        cat $reports; echo "valgrind reported errors or leaks"; exit 1
    fi
    echo "== valgrind: $(find "$vlogs" -name '*.log' | wc -l) hookd processes, no error, no leak"
    exit 0
fi

echo "== layers"
scripts/check_layers.sh
echo "== lint"
scripts/lint.sh
# The shipped alerting rules: promtool (Debian's prometheus package, from scripts/setup.sh) parses
# them and runs their unit tests (input series; each alert fires, and stays quiet, when it should).
echo "== monitoring rules (promtool, contrib/prometheus)"
if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool is missing: scripts/setup.sh installs it (Debian package prometheus)"; exit 1
fi
promtool check rules contrib/prometheus/hookd-rules.yml
(cd contrib/prometheus && promtool test rules hookd-rules.test.yml)
run_suite "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== integration tests on PostgreSQL ($bdir)"
HOOKD_TEST_STORE=pg HOOKD_BIN="$PWD/$bdir/hookd" /usr/bin/python3 -m pytest "${pytest_args[@]}" \
    tests/integration
# every hookd the suite starts gets REDIS_URL (a redis-server per worker, a key prefix per
# store); test_redis.py starts its own Redis servers and ran above already
for store in sqlite pg; do
    echo "== integration tests with Redis: $store + REDIS_URL ($bdir)"
    HOOKD_TEST_STORE=$store HOOKD_TEST_REDIS=1 HOOKD_BIN="$PWD/$bdir/hookd" /usr/bin/python3 -m pytest \
        "${pytest_args[@]}" --ignore=tests/integration/test_redis.py tests/integration
done
# Retention keeps the disk and the memory flat (issue 16): tests/soak/soak.py runs a steady
# stream with and without pruning, side by side; the store and RSS must stop growing once
# retention is reached, and the ingest p99 stay within 20% (docs/OPERATIONS.md "Soak test").
# PostgreSQL reuses freed space only after autovacuum (once a minute), so its files move in
# steps of 1-2 MiB even once level: a longer run and warm-up, and 4 MiB of growth allowed after
# it (the `off` phase grows about 24 MiB in the same window, so the check still fails without
# retention). Both stores run
# at once, in the background of the next steps (they mostly wait: 100 events/s each); their
# verdicts are collected after the chaos suite.
echo "== soak, short profile: SQLite and PostgreSQL, in the background ($bdir)"
soak_opts=("--store sqlite" "--store pg --minutes 5 --warmup-s 180 --flat-store-mb 4")
soak_pid=()
for i in 0 1; do
    # shellcheck disable=SC2086 # the options are words
    /usr/bin/python3 tests/soak/soak.py --profile short ${soak_opts[$i]} --build-dir "$bdir" \
        > "$bdir/soak-$i.log" 2>&1 &
    soak_pid+=($!)
done
# The Debian package end to end (tests/package: build, dpkg -i, run the unit's ExecStart as the
# unit would, an event delivered, dpkg -r/-P keep the data). It installs and purges a package:
# only as root (CI is).
if [ "$(id -u)" -eq 0 ]; then
    echo "== Debian package: build, install, run, remove (tests/package)"
    /usr/bin/python3 -m pytest -q -p no:cacheprovider --timeout=300 tests/package
else
    echo "== Debian package test SKIPPED: it installs a package and needs root (CI runs it)"
fi
# bench/run.py builds Release (-O3) by default, where GCC warns about more than at -O2 (a
# format-truncation warning once passed CI and broke that build): hookd is compiled so too, with
# the same -Werror, in the directory bench/run.py uses.
echo "== Release build of hookd (bench/run.py's default build: build-bench)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$jobs" --target hookd >/dev/null
echo "== bench smoke profile ($bdir)"
(cd "$bdir" && ctest -L bench --no-tests=error --output-on-failure)
echo "== chaos suite, short profile ($bdir)"
if ! HOOKD_BIN="$PWD/$bdir/hookd" /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
        --timeout=900 tests/chaos > "$bdir/chaos.log" 2>&1; then
    cat "$bdir/chaos.log"; echo "chaos suite failed"; exit 1
fi
grep -E '^chaos |passed' "$bdir/chaos.log"
# the soak test (started after the Redis pass, beside the package, bench and chaos steps)
for i in 0 1; do
    if ! wait "${soak_pid[$i]}"; then
        cat "$bdir/soak-$i.log"; echo "soak failed (${soak_opts[$i]})"; exit 1
    fi
    echo "== soak, short profile (${soak_opts[$i]}):"
    grep -E '^(flat_|ingest p99|soak:)' "$bdir/soak-$i.log"
done
if [ "${1:-}" != "--quick" ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    HOOKD_TEST_SLOWDOWN=3 run_suite "$adir" -DCMAKE_BUILD_TYPE=Debug -DHOOKD_SANITIZE=ON
    echo "== integration tests on PostgreSQL ($adir) ${asan_pg_tests:-(all)}"
    pg_targets=(tests/integration)
    if [ -n "$asan_pg_tests" ]; then
        pg_targets=()
        for t in $asan_pg_tests; do pg_targets+=("tests/integration/$t"); done
    fi
    HOOKD_TEST_SLOWDOWN=3 HOOKD_TEST_STORE=pg HOOKD_BIN="$PWD/$adir/hookd" /usr/bin/python3 -m pytest \
        "${pytest_args[@]}" "${pg_targets[@]}"
fi
echo "== all tests passed"
