#!/usr/bin/env bash
# A throwaway PostgreSQL primary and streaming standby on 127.0.0.1, for tests.
#
#   source scripts/pg-cluster.sh
#   pg_cluster_start      # exports CAFDB_TEST_PG_URL and CAFDB_TEST_PG_READ_URL
#   pg_cluster_start --no-standby   # the primary only
#   pg_cluster_start --no-standby --durable   # with fsync on (bench/run.sh: benchmarks
#                                             # run at the server's default durability)
#   ...
#   pg_cluster_stop       # always: stops both servers and removes their files
#
# Runs the servers as the `postgres` user when started as root (PostgreSQL refuses
# to run as root), in a temporary directory, on free ports.

pg_cluster_dir=""

_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

_pg_free_port() {
  local port
  for port in $(seq "$1" $(( $1 + 200 ))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

pg_cluster_stop() {
  [ -n "$pg_cluster_dir" ] || return 0
  local bin
  bin="$(_pg_bin)"
  for node in standby primary; do
    if [ -f "$pg_cluster_dir/$node/postmaster.pid" ]; then
      _pg_as_owner "$bin/pg_ctl" -D "$pg_cluster_dir/$node" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$pg_cluster_dir"
  pg_cluster_dir=""
}

pg_cluster_start() {
  local bin password primary_port standby_port standby=1 fsync=off arg
  for arg in "$@"; do
    case "$arg" in
    --no-standby) standby=0 ;;
    --durable) fsync=on ;;
    *)
      echo "pg-cluster: unknown option $arg" >&2
      return 1
      ;;
    esac
  done
  bin="$(_pg_bin)"
  if [ -z "$bin" ]; then
    echo "pg-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    return 1
  fi
  pg_cluster_dir="$(mktemp -d /tmp/cafdb-pg.XXXXXX)"
  chmod 755 "$pg_cluster_dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pg_cluster_dir"
  password="cafdb-test-$RANDOM$RANDOM"
  # Below the kernel's ephemeral range (32768-60999 by default): a port there may be the
  # local end of some client connection, which a connect probe cannot see but bind fails on.
  primary_port="$(_pg_free_port 25432)"
  standby_port="$(_pg_free_port $(( primary_port + 1 )))"
  echo "$password" > "$pg_cluster_dir/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pg_cluster_dir/pwfile"

  _pg_as_owner "$bin/initdb" -D "$pg_cluster_dir/primary" -U postgres -E UTF8 \
    --pwfile="$pg_cluster_dir/pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    >"$pg_cluster_dir/initdb.log" 2>&1 || { cat "$pg_cluster_dir/initdb.log" >&2; return 1; }
  cat >> "$pg_cluster_dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$pg_cluster_dir'
fsync = $fsync
max_connections = 200
wal_level = replica
max_wal_senders = 5
CONF
  _pg_as_owner "$bin/pg_ctl" -D "$pg_cluster_dir/primary" -l "$pg_cluster_dir/primary.log" \
    -w start >/dev/null || { cat "$pg_cluster_dir/primary.log" >&2; return 1; }
  export CAFDB_TEST_PG_URL="postgresql://postgres:$password@127.0.0.1:$primary_port/postgres"
  export CAFDB_TEST_PG_BIN="$bin"
  export CAFDB_TEST_PG_DIR="$pg_cluster_dir"
  if [ "$standby" -eq 0 ]; then
    echo "pg-cluster: primary on 127.0.0.1:$primary_port (no standby)"
    return 0
  fi

  _pg_as_owner env PGPASSWORD="$password" "$bin/pg_basebackup" -h 127.0.0.1 \
    -p "$primary_port" -U postgres -D "$pg_cluster_dir/standby" -R -X stream \
    >"$pg_cluster_dir/basebackup.log" 2>&1 || { cat "$pg_cluster_dir/basebackup.log" >&2; return 1; }
  echo "port = $standby_port" >> "$pg_cluster_dir/standby/postgresql.auto.conf"
  _pg_as_owner "$bin/pg_ctl" -D "$pg_cluster_dir/standby" -l "$pg_cluster_dir/standby.log" \
    -w start >/dev/null || { cat "$pg_cluster_dir/standby.log" >&2; return 1; }

  export CAFDB_TEST_PG_READ_URL="postgresql://postgres:$password@127.0.0.1:$standby_port/postgres"
  echo "pg-cluster: primary on 127.0.0.1:$primary_port, standby on 127.0.0.1:$standby_port"
}
