#!/usr/bin/env bash
# Proves that an application can adopt cafdb: installs a built tree into a fresh prefix
# and builds tests/consumer against it through find_package and through pkg-config,
# builds it again with cafdb as a subdirectory, and packs libcafdb-dev with cpack,
# unpacks the .deb into a clean directory and builds the consumer against that. Each
# consumer runs a session on SQLite.
#
#   scripts/consumer-check.sh <cafdb build directory>
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)"
work="$(mktemp -d /tmp/cafdb-consumer.XXXXXX)"
trap 'rm -rf "$work"' EXIT
jobs="$(nproc)"

run_consumer() { # name, cmake arguments...
  local name="$1"
  shift
  echo "-- consumer through $name"
  cmake -S "$root/tests/consumer" -B "$work/$name" -DCMAKE_BUILD_TYPE=Release "$@" >"$work/$name.log" ||
    { cat "$work/$name.log"; exit 1; }
  cmake --build "$work/$name" -j"$jobs" >>"$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
  # The unused variable must have warned, and not failed the build.
  grep -q "unused_on_purpose" "$work/$name.log" ||
    { echo "consumer through $name: the application's own warning did not show"; exit 1; }
  "$work/$name/consumer" "sqlite:///$work/$name.db"
}

cmake --install "$build" --prefix "$work/prefix" >/dev/null
# Nothing from the private core (src/) or the actors is installed. Outputs are read
# whole, never piped into `grep -q`: with pipefail, the writer's SIGPIPE when grep stops
# early fails the pipeline (exit 141) whether or not it matched.
headers="$(find "$work/prefix" -path '*/include/*' -name '*.hpp')"
if grep -v '/include/cafdb/' <<<"$headers" | grep . >/dev/null; then
  echo "headers installed outside include/cafdb/"; exit 1
fi
for private in pool_model.hpp driver.hpp engine.hpp session/transitions.hpp; do
  if [ -n "$(find "$work/prefix" -path "*$private")" ]; then
    echo "a private header is installed: $private"; exit 1
  fi
done
run_consumer package -DCAFDB_CONSUMER=package -DCMAKE_PREFIX_PATH="$work/prefix"
PKG_CONFIG_PATH="$(dirname "$(find "$work/prefix" -name cafdb.pc)")" \
  run_consumer pkgconfig -DCAFDB_CONSUMER=pkgconfig

(cd "$build" && cpack -G DEB -B "$work/deb" >/dev/null)
deb="$(find "$work/deb" -maxdepth 1 -name 'libcafdb-dev_*.deb')"
info="$(dpkg-deb --info "$deb")"
grep -q "Package: libcafdb-dev" <<<"$info" || { echo "the .deb is not libcafdb-dev"; exit 1; }
dpkg-deb -x "$deb" "$work/debroot"
run_consumer deb -DCAFDB_CONSUMER=package -DCMAKE_PREFIX_PATH="$work/debroot/usr"

# add_subdirectory builds cafdb inside the application's build, without optimisation
# to keep this check short (ccache serves repeated runs).
run_consumer subdirectory -DCAFDB_CONSUMER=subdirectory -DCAFDB_SOURCE_DIR="$root" \
  -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
echo "-- consumers: all built and ran"
