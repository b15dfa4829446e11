#!/usr/bin/env bash
# Sets everything up and runs the main job: the all-in-one RZTS decision server with its
# embedded defaults and the sample Japanese policies (examples/policies.toml).
#
# It builds `rzts`, fetches the country database (optional: without npm the server runs
# with source.country left to the enforcement points), and starts `rzts serve`, which
# prints where everything listens. Extra arguments go to `rzts serve`
# (e.g. --config examples/server.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 2; }
if ! pkg-config --exists sqlite3 2>/dev/null && [ ! -e /usr/include/sqlite3.h ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libsqlite3-dev; fi
fi
cargo build --release --locked --bin rzts
bin="${CARGO_TARGET_DIR:-target}/release/rzts"

mkdir -p rzts-data
if command -v npm >/dev/null && [ ! -e rzts-data/geo-whois-asn-country.mmdb ]; then
  db=$(bash scripts/fetch_geoip.sh "$HOME/.cache/rzts/geoip" 2>/dev/null | tail -n 1) || db=""
  [ -n "$db" ] && [ -e "$db" ] && cp "$db" rzts-data/geo-whois-asn-country.mmdb
fi

"$bin" compile examples/policies.toml >/dev/null
exec "$bin" serve "$@"
