#!/usr/bin/env bash
# Installs what hookd needs on Debian 12, only what is missing (safe to run again):
#   scripts/setup.sh            build + test dependencies and the npm packages
#   scripts/setup.sh --runtime  only what building and running hookd needs
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential cmake pkg-config libevent-dev libcurl4-openssl-dev libssl-dev
            libsqlite3-dev libpq-dev libhiredis-dev libnats-dev)
test_pkgs=(libcmocka-dev clang-format python3-pytest python3-pytest-xdist python3-pytest-timeout
           python3-requests python3-cryptography postgresql-15 redis-server nats-server wrk clang
           libclang-rt-14-dev valgrind python3-jsonschema chromium
           dpkg-dev fakeroot systemd adduser   # these four: the Debian package test
           prometheus python3-yaml   # promtool and YAML for contrib/ (tests/integration/test_monitoring.py)
           iproute2)                 # ss: hookd's kernel send queues (tests/integration/test_attacks_http.py)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--runtime" ] || want+=("${test_pkgs[@]}")
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, at the versions of package-lock.json: swagger-ui-dist, preact, htm and uplot
# (served by hookd: the docs page and the dashboard) and, for tests, playwright-core and
# axe-core (the dashboard in Chromium: tests/browser), standardwebhooks, @redocly/cli (lints the
# OpenAPI document), openapi-typescript, openapi-fetch and typescript (a client generated from it: tests/integration/test_openapi*.py); axios, bull,
# express and pg: the benchmark's reference stack (bench/reference/).
npm_missing=0
for p in swagger-ui-dist preact htm uplot; do # served by hookd (docs page, dashboard)
    [ -d "node_modules/$p" ] || npm_missing=1
done
if [ "${1:-}" != "--runtime" ]; then
    for p in standardwebhooks @redocly/cli openapi-typescript openapi-fetch typescript \
             axios bull express pg playwright-core axe-core; do
        [ -d "node_modules/$p" ] || npm_missing=1
    done
fi
if [ "$npm_missing" = 1 ]; then
    echo "setup: installing npm packages"
    if [ "${1:-}" = "--runtime" ]; then
        npm ci --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null
    else
        npm ci --no-audit --no-fund --ignore-scripts >/dev/null
    fi
fi
