#!/usr/bin/env bash
# Installs what is missing, builds cafdb, starts a throwaway PostgreSQL primary and
# standby on 127.0.0.1 (always stopped on exit), and runs every test: the normal
# build; an application's ways of using cafdb (scripts/consumer-check.sh: install,
# find_package, pkg-config, add_subdirectory, cpack DEB); then the whole suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer with the scheduler forced to 16
# workers (CAFDB_TEST_WORKERS), so that a 2-core machine proves the suite holds where
# CAF starts many more threads than here (the examples and benchmarks run in the
# normal build only: building them again cost CI minutes and found nothing new). When
# scripts/tsan.sh has built its ThreadSanitizer CAF into its cache, the suite runs a
# third time under ThreadSanitizer.
#
#   scripts/test.sh            everything
#   CAFDB_SKIP_SANITIZERS=1    only the normal build (quick local runs)
#   CAFDB_SKIP_FUZZ=1          no fuzzing of the configuration loaders
#   CAFDB_FUZZ_SECONDS=N       seconds per fuzz target (default 10)
#   CAFDB_SKIP_TSAN=1          no ThreadSanitizer run even when its CAF is cached
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="$(nproc)"
"$root/scripts/install-deps.sh"

# shellcheck source=scripts/pg-cluster.sh
source "$root/scripts/pg-cluster.sh"
trap pg_cluster_stop EXIT
# A signal ends the script through exit, so the EXIT trap stops the servers then too.
trap 'exit 130' INT
trap 'exit 143' TERM
pg_cluster_start

# Seconds since the suites started: where CI's time goes.
elapsed() { echo $(($(date +%s) - start)); }

run_suite() {
  local name="$1"
  shift
  local build="$root/build-$name"
  echo "== $name: configure and build (at $(elapsed) s)"
  cmake -S "$root" -B "$build" "$@" >/dev/null
  cmake --build "$build" -j"$jobs"
  echo "== $name: test (at $(elapsed) s)"
  (cd "$build" && ctest --output-on-failure -j"$jobs" --timeout 180)
}

# ccache serves a clone at any path (paths relative to the clone, the working directory
# left out of the hash) and the precompiled header (ccache needs these sloppinesses to
# cache a compile that uses one; without them it cached none of cafdb's own files).
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
# Line tables only (-g1): sanitizer reports and crashes still name file and line, and
# the builds take a quarter less time than with full debug information.
export CAFDB_TEST_DEBUG_FLAGS="-g1"

start=$(date +%s)
run_suite release -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 $CAFDB_TEST_DEBUG_FLAGS -DNDEBUG"
echo "== consumers (at $(elapsed) s): install, find_package, pkg-config, add_subdirectory, cpack DEB"
"$root/scripts/consumer-check.sh" "$root/build-release"
if [ -z "${CAFDB_SKIP_SANITIZERS:-}" ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    CAFDB_TEST_WORKERS=16 run_suite asan -DCMAKE_BUILD_TYPE=Debug -DCAFDB_SANITIZERS=address \
    -DCMAKE_CXX_FLAGS_DEBUG="$CAFDB_TEST_DEBUG_FLAGS" \
    -DCAFDB_BUILD_BENCH=OFF -DCAFDB_BUILD_EXAMPLES=OFF
fi
tsan_cache="${CAFDB_TSAN_CACHE:-$HOME/.cache/cafdb/caf-0.17.6-tsan-r2}"
if [ -z "${CAFDB_SKIP_TSAN:-}" ] && [ -f "$tsan_cache/include/caf/all.hpp" ]; then
  echo "== tsan (at $(elapsed) s)"
  "$root/scripts/tsan.sh"
else
  echo "== tsan: skipped (run scripts/tsan.sh once to build its CAF)"
fi
if [ -z "${CAFDB_SKIP_FUZZ:-}" ]; then
  "$root/scripts/fuzz.sh" "$root/build-fuzz" "${CAFDB_FUZZ_SECONDS:-10}"
fi
echo "== all tests passed in $(( $(date +%s) - start )) s"
