#!/bin/sh
# Runs examples/postgres_read_write against the test servers through a .env file, the
# way an application deployed with one would. Needs CAFDB_TEST_PG_URL and
# CAFDB_TEST_PG_READ_URL (scripts/test.sh sets both).
set -eu
if [ -z "${CAFDB_TEST_PG_URL:-}" ] || [ -z "${CAFDB_TEST_PG_READ_URL:-}" ]; then
  echo "CAFDB_TEST_PG_URL / CAFDB_TEST_PG_READ_URL are not set: run scripts/test.sh" >&2
  exit 1
fi
env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
printf 'CAFDB_URL=%s\nCAFDB_READ_URL=%s\n' "$CAFDB_TEST_PG_URL" "$CAFDB_TEST_PG_READ_URL" >"$env_file"
# The real environment would win over the file: make sure it holds neither variable.
env -u CAFDB_URL -u CAFDB_READ_URL "$1" "$env_file" >output.txt
cat output.txt
# The primary took the write, the standby the read.
grep -q "inserted row .*answered by the primary" output.txt
grep -q "read 'hello from cafdb', answered by the standby" output.txt
grep -q "read_only_violation" output.txt
