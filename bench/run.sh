#!/usr/bin/env bash
# Runs cafdb beside pgbench and raw driver loops on one throwaway PostgreSQL and one
# SQLite file, each case BENCH_RUNS times (interleaved), and prints one table of
# medians with cafdb's ratio to each peer (docs/benchmarks.md).
#
#   bench/run.sh                       # defaults below
#   BENCH_DURATION=5 BENCH_RUNS=1 bench/run.sh
#
# Settings (environment): BENCH_DURATION (s, 10), BENCH_WARMUP (s, 2), BENCH_RUNS (3),
# BENCH_SCALE (pgbench scale, 10), BENCH_INSERT_ROWS (rows per insert transaction,
# 10000), BENCH_MANY_CLIENTS (10000), BENCH_MANY_DURATION (s, 30), BENCH_JSON (a file
# to write every run's JSON lines to).
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-10}"
warmup="${BENCH_WARMUP:-2}"
runs="${BENCH_RUNS:-3}"
scale="${BENCH_SCALE:-10}"
insert_rows="${BENCH_INSERT_ROWS:-10000}"
many_clients="${BENCH_MANY_CLIENTS:-10000}"
many_duration="${BENCH_MANY_DURATION:-30}"

scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCAFDB_BUILD_TESTS=OFF \
  -DCAFDB_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target cafdb_bench raw_libpq raw_sqlite caf_floor >/dev/null
bin="$PWD/build-bench/bench"

# shellcheck source=../scripts/pg-cluster.sh
source scripts/pg-cluster.sh
work="$(mktemp -d /tmp/cafdb-bench.XXXXXX)"
cleanup() {
  pg_cluster_stop
  rm -rf "$work"
}
trap cleanup EXIT
pg_cluster_start --no-standby --durable
pg="$CAFDB_TEST_PG_URL"
sqlite="sqlite:///$work/bench.db" # four slashes: an absolute path
pgbench="$CAFDB_TEST_PG_BIN/pgbench"
json_log="${BENCH_JSON:-$work/runs.jsonl}"
: > "$json_log"

echo "== data: pgbench -i -s $scale on PostgreSQL, the same tables in $work/bench.db"
"$pgbench" -i -q -s "$scale" "$pg" >/dev/null 2>&1
"$bin/cafdb_bench" --url "$sqlite" --init --init-only --scale "$scale"

# One figure per run: pgbench's tps, or a field of a bench program's JSON line.
pgbench_tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
json_field() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
declare -A figures
record() { figures[$1]="${figures[$1]:-} $2"; }
run_json() { # name field command...
  local name="$1" field="$2" line
  shift 2
  line="$("$@" --json --quiet --duration "$duration" --warmup "$warmup")"
  echo "$line" >> "$json_log"
  record "$name" "$(echo "$line" | json_field "$field")"
  record "$name.cpu" "$(echo "$line" | json_field cpu_us_per_op)"
}
run_pgbench() { # name pgbench-args...
  local name="$1" tps
  shift
  tps="$("$pgbench" "$@" -M prepared -c 8 -j 2 -T "$duration" "$pg" 2>/dev/null | pgbench_tps)"
  echo "{\"program\":\"pgbench\",\"case\":\"$name\",\"ops_per_s\":$tps}" >> "$json_log"
  record "$name" "$tps"
}

for run in $(seq "$runs"); do
  echo "== run $run of $runs"
  run_pgbench pg_select_pgbench -S
  run_json pg_select_raw ops_per_s "$bin/raw_libpq" --url "$pg" --threads 8 --scale "$scale"
  # cafdb multiplexes its client sessions' reads onto fewer connections (batched in one
  # pipeline); pool 8 is shown too, for a connection per client as pgbench has.
  run_json pg_select_cafdb ops_per_s "$bin/cafdb_bench" --url "$pg" --workload select \
    --clients 8 --pool-size 1 --scale "$scale"
  run_json pg_select_cafdb_pool8 ops_per_s "$bin/cafdb_bench" --url "$pg" --workload select \
    --clients 8 --pool-size 8 --scale "$scale"
  # The other ways an application calls cafdb, with the pool a user would choose.
  for path in actor-oneshot client-session client-exec; do
    run_json "pg_select_$path" ops_per_s "$bin/cafdb_bench" --url "$pg" --workload select \
      --clients 8 --pool-size 8 --scale "$scale" --path "$path"
  done
  run_json pg_select_raw_1 ops_per_s "$bin/raw_libpq" --url "$pg" --threads 1 --scale "$scale"
  run_json pg_select_client_exec_1 ops_per_s "$bin/cafdb_bench" --url "$pg" --workload select \
    --clients 1 --pool-size 1 --scale "$scale" --path client-exec
  run_pgbench pg_tpcb_pgbench
  run_json pg_tpcb_cafdb ops_per_s "$bin/cafdb_bench" --url "$pg" --workload tpcb \
    --clients 8 --pool-size 8 --scale "$scale"
  for path in actor-oneshot client-exec; do
    run_json "pg_tpcb_$path" ops_per_s "$bin/cafdb_bench" --url "$pg" --workload tpcb \
      --clients 8 --pool-size 8 --scale "$scale" --path "$path"
  done
  run_json sqlite_select_raw ops_per_s "$bin/raw_sqlite" --path "$work/bench.db" \
    --workload select --threads 4 --scale "$scale"
  run_json sqlite_select_cafdb ops_per_s "$bin/cafdb_bench" --url "$sqlite" --workload select \
    --clients 4 --pool-size 1 --scale "$scale"
  run_json sqlite_select_cafdb_pool4 ops_per_s "$bin/cafdb_bench" --url "$sqlite" \
    --workload select --clients 4 --pool-size 4 --scale "$scale"
  for path in actor-oneshot client-session client-exec; do
    run_json "sqlite_select_$path" ops_per_s "$bin/cafdb_bench" --url "$sqlite" \
      --workload select --clients 4 --pool-size 4 --scale "$scale" --path "$path"
  done
  run_json sqlite_select_raw_1 ops_per_s "$bin/raw_sqlite" --path "$work/bench.db" \
    --workload select --threads 1 --scale "$scale"
  run_json sqlite_select_client_session_1 ops_per_s "$bin/cafdb_bench" --url "$sqlite" \
    --workload select --clients 1 --pool-size 1 --scale "$scale" --path client-session
  run_json sqlite_insert_raw rows_per_s "$bin/raw_sqlite" --path "$work/bench.db" \
    --workload insert --rows "$insert_rows" --scale "$scale"
  run_json sqlite_insert_cafdb rows_per_s "$bin/cafdb_bench" --url "$sqlite" --workload insert \
    --clients 1 --rows "$insert_rows" --scale "$scale"
  run_json sqlite_insert_cafdb_transact rows_per_s "$bin/cafdb_bench" --url "$sqlite" \
    --workload insert --clients 1 --rows "$insert_rows" --scale "$scale" --per-statement
  # No database: what CAF's messages alone cost on the read path's shape.
  run_json caf_floor_read_path ops_per_s "$bin/caf_floor" --clients 4 --depth 3
  run_json caf_floor_shared ops_per_s "$bin/caf_floor" --clients 4 --depth 3 --shared
done

echo "== scale: $many_clients client sessions on a pool of 16, ${many_duration} s (once)"
duration="$many_duration"
run_json pg_select_16 ops_per_s "$bin/cafdb_bench" --url "$pg" --workload select \
  --clients 16 --pool-size 16 --scale "$scale"
run_json pg_select_many ops_per_s "$bin/cafdb_bench" --url "$pg" --workload select \
  --clients "$many_clients" --pool-size 16 --scale "$scale" --pool-timeout 30000
many_line="$(tail -1 "$json_log")"

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
med() { echo "${figures[$1]:-}" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
cpu() { # name: the median CPU µs per request, one decimal, or – when not measured
  local v
  v="$(med "$1.cpu")"
  if [ -n "$v" ]; then printf "%.1f" "$v"; else printf "–"; fi
}
row() { # what peer peer-name cafdb target
  local target="–"
  [ "$5" != "-" ] && target="≥ $5×"
  printf "| %-38s | %-28s | %12.0f | %12.0f | %5s× | %6s | %6s | %6s |\n" "$1" "$3" "$(med "$2")" \
    "$(med "$4")" "$(ratio "$(med "$4")" "$(med "$2")")" "$target" "$(cpu "$2")" "$(cpu "$4")"
}

echo
echo "Medians of $runs runs of ${BENCH_DURATION:-10} s; scale $scale; $(nproc) cores. cafdb pools: 1 connection for"
echo "the PostgreSQL point selects (reads of all clients batched), 8 for TPC-B, 1 writer for SQLite"
echo "inserts; SQLite point selects run in place in the sessions (read_in_place), the pool takes the rest."
echo "Paths: actor-session (an actor with its own session), actor-oneshot (an actor sending exec_atom"
echo "to the database), client-session (a thread with a blocking session), client-exec (a thread"
echo "calling client::exec). CPU: the program's own CPU time per request, µs (pgbench: not measured)."
echo "| comparison                             | peer                         |  peer ops/s  | cafdb ops/s  | ratio | target | peer CPU | cafdb CPU |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
row "PostgreSQL point select, 8 clients" pg_select_pgbench "pgbench -S -M prepared -c 8" pg_select_cafdb "-"
row "  actor-session, pool 8" pg_select_pgbench "pgbench -S -M prepared -c 8" pg_select_cafdb_pool8 1.0
row "  actor-oneshot, pool 8" pg_select_pgbench "pgbench -S -M prepared -c 8" pg_select_actor-oneshot 1.0
row "  client-session, pool 8" pg_select_pgbench "pgbench -S -M prepared -c 8" pg_select_client-session 1.0
row "  client-exec, pool 8" pg_select_pgbench "pgbench -S -M prepared -c 8" pg_select_client-exec 1.0
row "PostgreSQL point select, 8 clients" pg_select_raw "raw libpq, 8 threads" pg_select_cafdb_pool8 "-"
row "PostgreSQL point select, 1 client-exec" pg_select_raw_1 "raw libpq, 1 thread" pg_select_client_exec_1 0.9
row "PostgreSQL TPC-B-like, 8 clients" pg_tpcb_pgbench "pgbench -M prepared -c 8" pg_tpcb_cafdb 1.1
row "  actor-oneshot" pg_tpcb_pgbench "pgbench -M prepared -c 8" pg_tpcb_actor-oneshot 1.1
row "  client-exec" pg_tpcb_pgbench "pgbench -M prepared -c 8" pg_tpcb_client-exec 1.1
row "SQLite point select, 4 clients, pool 1" sqlite_select_raw "raw sqlite3, 4 threads" sqlite_select_cafdb "-"
row "  actor-session, pool 4" sqlite_select_raw "raw sqlite3, 4 threads" sqlite_select_cafdb_pool4 0.7
row "  actor-oneshot, pool 4" sqlite_select_raw "raw sqlite3, 4 threads" sqlite_select_actor-oneshot 0.5
row "  client-session, pool 4" sqlite_select_raw "raw sqlite3, 4 threads" sqlite_select_client-session 0.7
row "  client-exec, pool 4" sqlite_select_raw "raw sqlite3, 4 threads" sqlite_select_client-exec 0.5
row "SQLite point select, 1 client-session" sqlite_select_raw_1 "raw sqlite3, 1 thread" sqlite_select_client_session_1 0.5
row "SQLite bulk insert (rows/s)" sqlite_insert_raw "raw prepared insert" sqlite_insert_cafdb 0.8
row "  the same, one transact of INSERTs" sqlite_insert_raw "raw prepared insert" sqlite_insert_cafdb_transact "-"
row "PostgreSQL select, $many_clients clients, pool 16" pg_select_16 "cafdb, 16 clients" pg_select_many 0.9
echo
echo "$many_clients clients: peak RSS $(echo "$many_line" | json_field peak_rss_mib) MiB (target ≤ 200), errors $(echo "$many_line" | grep -o '"errors":{[^}]*}' | cut -d: -f2-)"
printf "CAF alone, no database, 4 clients, 6 messages a request: %.0f requests/s; through one shared actor: %.0f/s\n" \
  "$(med caf_floor_read_path)" "$(med caf_floor_shared)"
[ -n "${BENCH_JSON:-}" ] && echo "Every run's JSON: $json_log"
exit 0
