#!/usr/bin/env bash
# Sets everything up and runs the main job: builds `rzts`, compiles the sample Japanese
# policies (examples/policies.toml) into their lock, shows the compiled rules with their
# Japanese back-translation, and decides every sample request in examples/requests/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 2; }
cargo build --release --locked --bin rzts
bin="${CARGO_TARGET_DIR:-target}/release/rzts"

"$bin" compile examples/policies.toml
"$bin" check examples/policies.toml
"$bin" show examples/policies.toml
for req in examples/requests/*.json; do
  app=$(basename "$req" .json); app=${app%%-*}
  echo "== rzts decide --app $app --request $req"
  "$bin" decide examples/policies.toml --app "$app" --request "$req"
done
