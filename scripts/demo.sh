#!/usr/bin/env bash
# Installs what is missing, builds cafdb, and runs the quickstart on SQLite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="$root/build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAFDB_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target quickstart
cd "$build/examples"
exec ./quickstart "$@"
