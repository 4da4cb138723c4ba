#!/usr/bin/env bash
# make demo: one command on a fresh machine. Builds what it needs, starts a real
# Ory Hydra on 127.0.0.1, creates the "Billing Worker" client with the hydra CLI,
# and runs the examples of every runtime against it, then stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/check-prereqs.sh demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
# Runs a build step quietly; on failure shows what it printed.
quietly() {
  if ! "$@" >"$build_log" 2>&1; then
    tail -n 60 "$build_log" >&2
    echo "demo: build step failed: $*" >&2
    exit 1
  fi
}

say "Building what the demo needs (first run: several minutes; later runs: seconds)"
start=$SECONDS
quietly bash tests/integration/servers/build-hydra.sh
hydra_bin=$(tail -n 1 "$build_log")
echo "Ory Hydra v2.3.0 (built from source with Go): $hydra_bin  [$((SECONDS - start)) s]"
step=$SECONDS
quietly make --no-print-directory -s -C bindings/node build
echo "Node package (napi-rs): built  [$((SECONDS - step)) s]"
step=$SECONDS
quietly make --no-print-directory -s -C bindings/python build
echo "Python package (pyo3): built  [$((SECONDS - step)) s]"
step=$SECONDS
quietly make --no-print-directory -s -C bindings/component component compose
echo "WebAssembly components: built and composed  [$((SECONDS - step)) s]"
step=$SECONDS
quietly cargo build -q -p tokenwell-example-rust-service
echo "Rust service example: built  [$((SECONDS - step)) s]"

say "Starting Ory Hydra (in-memory database) and a second server, oidc-provider, on 127.0.0.1"
rm -f "$build_log"
trap - EXIT
TOKENWELL_BULK_CLIENTS=0 TOKENWELL_KEYCLOAK=0 exec tests/integration/servers/with-servers.sh bash scripts/demo-steps.sh
