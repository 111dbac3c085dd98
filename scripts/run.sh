#!/usr/bin/env bash
# Builds hookd (release) and runs it on the embedded default: SQLite in ./hookd.db, port 8013.
# Arguments are passed to hookd (e.g. scripts/run.sh --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target hookd >/dev/null
exec ./build/hookd "$@"
