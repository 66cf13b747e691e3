#!/usr/bin/env bash
# Builds the configuration fuzz targets (tests/fuzz/*_fuzz.cpp) with clang's libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs each for a fixed time.
# Exits non-zero if any target finds a crash, a leak, undefined behaviour or a broken
# property (see tests/fuzz/fuzz_support.hpp); its input is saved as
# BUILD_DIR/artifacts/<target>-crash-* (replay: BUILD_DIR/<target> that-file).
#
#   scripts/fuzz.sh [BUILD_DIR] [SECONDS]    defaults: build-fuzz, 30 seconds per target
#
# The targets are built straight from the CAF-free sources they need (config, schema,
# SQL text helpers), without CMake or the CAF libraries. Needs clang and its runtime
# (Debian: clang-14 libclang-rt-14-dev). Inputs found interesting are kept in
# BUILD_DIR/corpus/<target>; the committed seeds in tests/fuzz/corpus/<target> are
# only read.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(mkdir -p "${1:-$root/build-fuzz}" && cd "${1:-$root/build-fuzz}" && pwd)"
seconds="${2:-30}"
targets=(config_url config_json config_env config_dotenv config_schema)

cxx="${CXX_FUZZ:-}"
if [ -z "$cxx" ]; then
  for candidate in clang++ clang++-14; do
    if command -v "$candidate" >/dev/null; then
      cxx="$candidate"
      break
    fi
  done
fi
if [ -z "$cxx" ]; then
  echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

read -r -a libpq_cflags <<< "$(pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)"
read -r -a libpq_libs <<< "$(pkg-config --libs libpq 2>/dev/null || echo -lpq)"
# shellcheck disable=SC2054 # the commas are part of the flags
sanitizers=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
flags=(-std=c++17 -g -O1 "${sanitizers[@]}" -Wall -Wextra -Wpedantic
       -I"$root/include" -I"$root/src" -I"$root" "${libpq_cflags[@]}")

mkdir -p "$build/obj" "$build/artifacts"
echo "== fuzz: build into $build ($cxx)"
# config.cpp is what is fuzzed: instrumented for coverage, and warnings are errors as in
# the CMake build. The sources it calls into are only sanitized.
"$cxx" "${flags[@]}" -Werror -fsanitize=fuzzer-no-link -c "$root/src/config.cpp" \
  -o "$build/obj/config.o"
for src in schema sql_text; do
  "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$root/src/$src.cpp" -o "$build/obj/$src.o"
done
for target in "${targets[@]}"; do
  "$cxx" "${flags[@]}" -Werror -fsanitize=fuzzer "$root/tests/fuzz/${target}_fuzz.cpp" \
    "$build/obj/config.o" "$build/obj/schema.o" "$build/obj/sql_text.o" "${libpq_libs[@]}" \
    -o "$build/$target"
done

failed=()
for target in "${targets[@]}"; do
  echo "== fuzz: $target for ${seconds}s"
  mkdir -p "$build/corpus/$target"
  seeds=()
  if [ -d "$root/tests/fuzz/corpus/$target" ]; then
    seeds=("$root/tests/fuzz/corpus/$target")
  fi
  # One process and one job: a run takes the time given, on one core.
  if ! ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    "$build/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$root/tests/fuzz/config.dict" \
    -artifact_prefix="$build/artifacts/$target-" "$build/corpus/$target" "${seeds[@]}" \
    > "$build/$target.log" 2>&1; then
    failed+=("$target")
    tail -n 40 "$build/$target.log" >&2
  fi
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+.*DONE)" \
    "$build/$target.log" || true
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "== fuzz: FAILED: ${failed[*]} (logs: $build/<target>.log, inputs: $build/artifacts)" >&2
  exit 1
fi
echo "== fuzz: every target ran ${seconds}s without a finding"
