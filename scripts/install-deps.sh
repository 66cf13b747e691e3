#!/usr/bin/env bash
# Installs the Debian packages cafdb needs to build and test. Idempotent: does
# nothing when everything is present. Needs root (or sudo) only when installing.
set -euo pipefail

packages=(
  cmake make g++ ccache pkg-config
  libcaf-dev            # CAF 0.17.6: the actor runtime
  libsqlite3-dev        # SQLite engine
  libpq-dev             # PostgreSQL engine (libpq)
  nlohmann-json3-dev    # JSON conversion of values, results, status, config
  libspdlog-dev         # logging
  catch2                # tests (Catch2 v2)
  libcli11-dev          # command lines of bench/ programs
  postgresql            # throwaway test servers (scripts/pg-cluster.sh)
  clang-14 libclang-rt-14-dev  # libFuzzer for the configuration fuzz targets (scripts/fuzz.sh)
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
