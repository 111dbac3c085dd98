#!/usr/bin/env bash
# Runs every test: unit + integration on a release build, then unit + integration again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh                 everything
#   scripts/test.sh --quick         release build only (no sanitizer pass)
#   HOOKD_PYTEST_ARGS="-k ingest"   extra pytest arguments
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
pytest_args=(-q -p no:cacheprovider -n "${HOOKD_TEST_WORKERS:-$jobs}" --timeout=300 ${HOOKD_PYTEST_ARGS:-})

run_suite() { # build-dir cmake-args...
    local dir=$1; shift
    echo "== build $dir"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    echo "== unit tests ($dir)"
    (cd "$dir" && ctest -L unit --output-on-failure -j"$jobs")
    echo "== fuzz corpus replay ($dir)"
    (cd "$dir" && ctest -L fuzz --output-on-failure -j"$jobs")
    echo "== integration tests ($dir)"
    HOOKD_BIN="$PWD/$dir/hookd" /usr/bin/python3 -m pytest "${pytest_args[@]}" tests/integration
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== chaos suite, short profile (build)"
if ! HOOKD_BIN="$PWD/build/hookd" /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
        --timeout=900 tests/chaos > build/chaos.log 2>&1; then
    cat build/chaos.log; echo "chaos suite failed"; exit 1
fi
grep -E '^chaos |passed' build/chaos.log
if [ "${1:-}" != "--quick" ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    HOOKD_TEST_SLOWDOWN=3 run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DHOOKD_SANITIZE=ON
fi
echo "== all tests passed"
