#!/usr/bin/env bash
# Makes sure the Rust toolchain pieces the build needs are present. Idempotent and
# quick when everything is already installed.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
installed=$(rustup component list --installed 2>/dev/null || true)
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed" || rustup component add "$component"
done
targets=$(rustup target list --installed 2>/dev/null || true)
for target in wasm32-unknown-unknown wasm32-wasip2; do
  grep -qx "$target" <<<"$targets" || rustup target add "$target"
done
