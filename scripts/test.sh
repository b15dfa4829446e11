#!/usr/bin/env bash
# Runs every test: formatting and lints, the unit/integration/property/snapshot tests of
# the workspace, the doc examples, the shared golden translation cases through the real
# `rzts test` command, and a compile + check of the sample policies.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared
[ -d "$shared/golden" ] || { echo "../shared (spec and golden cases) must sit beside the clone"; exit 2; }

# Real peers the tests talk to. A throwaway PostgreSQL cluster: the storage suite runs
# against SQLite and PostgreSQL alike. An SMTP server (aiosmtpd) captures alert mail;
# curl and PySocks are real SOCKS5 clients for the gateway tests; a country database
# (MMDB, from the npm registry) backs source.country lookups.
if ! command -v curl >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq curl
fi
python3 -m pip install --quiet --disable-pip-version-check aiosmtpd PySocks
bash scripts/fetch_geoip.sh "$HOME/.cache/rzts/geoip" >/dev/null
bash scripts/postgres.sh start >/dev/null
RZTS_TEST_PG_URL=$(bash scripts/postgres.sh url)
export RZTS_TEST_PG_URL
trap 'bash scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast --lib --bins --tests
fi
cargo test --locked --doc
# Every public item is documented and every doc link resolves.
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet

cargo build --locked --bin rzts
bin="${CARGO_TARGET_DIR:-target}/debug/rzts"
work=$(mktemp -d)
trap 'rm -rf "$work"; bash scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
cp examples/policies.toml "$work/"
"$bin" compile "$work/policies.toml" >/dev/null
"$bin" check "$work/policies.toml"
echo "== golden translation cases (rzts test)"
"$bin" test "$shared/golden/translations.toml"
