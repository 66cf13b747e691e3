#!/usr/bin/env bash
# Runs the whole suite under ThreadSanitizer.
#
# Debian's CAF is not built with -fsanitize=thread, so TSan cannot see its
# synchronisation and reports noise in every actor. This script builds CAF
# 0.17.6 from Debian's own source package (its upstream .orig.tar.gz) once, with
# -fsanitize=thread, into a cache directory, builds cafdb against that CAF and
# runs every test. Reports are errors; the only suppressions are in
# scripts/tsan.supp, each named and explained.
#
#   scripts/tsan.sh                  build CAF once if needed, then build and test
#   scripts/tsan.sh --caf-only       only build the cached CAF
#   CAFDB_TSAN_CACHE=DIR             where the sanitized CAF lives
#                                    (default ~/.cache/cafdb/caf-0.17.6-tsan-r2;
#                                    r2: its shared_spinlock yields, see build_caf)
#
# Uses the PostgreSQL servers named by CAFDB_TEST_PG_URL when set (scripts/test.sh
# sets them); otherwise starts its own throwaway pair and always stops it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="$(nproc)"
cache="${CAFDB_TSAN_CACHE:-$HOME/.cache/cafdb/caf-0.17.6-tsan-r2}"
caf_version=0.17.6

build_caf() {
  local work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: the directory is this call's own
  trap "rm -rf '$work'" RETURN
  local tarball="actor-framework_${caf_version}.orig.tar.gz"
  echo "== tsan: fetching CAF $caf_version source from Debian"
  local sources=/etc/apt/sources.list.d/cafdb-src.sources
  if [ ! -f "$sources" ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    # The same archive as the binary packages, for source packages.
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
      'Suites: bookworm' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | $sudo tee "$sources" >/dev/null
    $sudo apt-get update -qq -o Dir::Etc::sourcelist="$sources" -o Dir::Etc::sourceparts=-
  fi
  # Only the upstream tarball is needed; a missing Debian patch tarball is not an error.
  (cd "$work" && apt-get source --download-only actor-framework >/dev/null 2>&1 || true)
  if [ ! -f "$work/$tarball" ]; then
    echo "tsan: could not download $tarball (is deb.debian.org reachable?)" >&2
    return 1
  fi
  tar -xzf "$work/$tarball" -C "$work"
  # CAF 0.17's shared spinlock spins without yielding (upstream left the yield commented
  # out). It guards the logger's per-thread actor ids, taken on every scoped_actor's
  # construction and destruction even with logging off. Under ThreadSanitizer every spin
  # takes the sanitizer's own lock on that atomic, and 50 threads spinning on 2 cores
  # starved the thread holding it for minutes (stack dumps of the 50-client
  # server-restart test). The sanitized build yields while it waits; it changes no
  # ordering, only who gets the core.
  local spinlock="$work/actor-framework-$caf_version/libcaf_core/src/detail/shared_spinlock.cpp"
  sed -i 's|^\( *\)// std::this_thread::yield();|\1std::this_thread::yield();|' "$spinlock"
  if ! grep -q '^ *std::this_thread::yield();' "$spinlock"; then
    echo "tsan: could not make CAF's shared_spinlock yield ($spinlock changed?)" >&2
    return 1
  fi
  echo "== tsan: building CAF $caf_version with -fsanitize=thread into $cache (once)"
  # `-include limits`: CAF 0.17.6 predates g++ 12, whose headers no longer bring in
  # <limits> by the way (Debian's own build patches the same).
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S "$work/actor-framework-$caf_version" -B "$work/build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$cache.partial" \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -include limits" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    -DCAF_NO_EXAMPLES=yes -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_OPENSSL=yes \
    -DCAF_NO_OPENCL=yes -DCAF_NO_PYTHON=yes -DCAF_NO_TOOLS=yes -DCAF_NO_SUMMARY=yes \
    -DCAF_NO_COMPILER_CHECK=yes -DCAF_LOG_LEVEL=QUIET "${launcher[@]}" >/dev/null
  cmake --build "$work/build" -j"$jobs"
  rm -rf "$cache.partial"
  cmake --install "$work/build" >/dev/null
  # The test DSL is header-only; CAF installs it only with its unit tests.
  cp -r "$work/actor-framework-$caf_version/libcaf_test/caf/test" "$cache.partial/include/caf/"
  rm -rf "$cache"
  mv "$cache.partial" "$cache"
}

if [ ! -f "$cache/include/caf/all.hpp" ]; then
  mkdir -p "$(dirname "$cache")"
  build_caf
fi
if [ "${1:-}" = "--caf-only" ]; then
  exit 0
fi

if [ -z "${CAFDB_TEST_PG_URL:-}" ]; then
  # shellcheck source=scripts/pg-cluster.sh
  source "$root/scripts/pg-cluster.sh"
  trap pg_cluster_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  pg_cluster_start
fi

build="$root/build-tsan"
echo "== tsan: configure and build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAFDB_SANITIZERS=thread \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 ${CAFDB_TEST_DEBUG_FLAGS:--g} -DNDEBUG" \
  -DCMAKE_PREFIX_PATH="$cache" -DCAFDB_BUILD_BENCH=OFF -DCAFDB_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j"$jobs"
echo "== tsan: test"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/scripts/tsan.supp"
export LD_LIBRARY_PATH="$cache/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
(cd "$build" && ctest --output-on-failure -j"$jobs" --timeout 600 -E '^bench_smoke')
