#!/usr/bin/env bash
# Installs the wasm-bindgen CLI at exactly the version of the `wasm-bindgen`
# crate in Cargo.lock (the CLI refuses a module built by another version) into
# ${TOKENWELL_CACHE:-.cache}/wasm-bindgen-<version>/, and prints the binary's
# path. Idempotent: a version check (~5 ms) when it is already there.
#
# `cargo install --locked` first, for the CLI's own lock file. If the registry
# lacks a version that lock file names, the install is retried resolving the
# newest compatible versions (the CLI itself stays at the exact version).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
version=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' "$repo/Cargo.lock")
[[ -n $version ]] || { echo "setup-wasm-bindgen: no wasm-bindgen crate in Cargo.lock" >&2; exit 1; }
# Per-user tool cache (TOKENWELL_TOOLS), reused by every clone on the machine.
root=${TOKENWELL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenwell-tools}/wasm-bindgen-$version
bin=$root/bin/wasm-bindgen
if [[ $("$bin" --version 2>/dev/null) != "wasm-bindgen $version" ]]; then
  echo "setup-wasm-bindgen: installing wasm-bindgen-cli $version into $root (once; a few minutes)" >&2
  mkdir -p "$root"
  exec 9>"$root.lock"
  flock 9
  if [[ $("$bin" --version 2>/dev/null) != "wasm-bindgen $version" ]]; then
    if ! cargo install -q --locked --root "$root" wasm-bindgen-cli --version "$version" >&2; then
      echo "setup-wasm-bindgen: the locked install failed (above); resolving the CLI's dependencies afresh" >&2
      cargo install -q --root "$root" wasm-bindgen-cli --version "$version" >&2
    fi
  fi
fi
echo "$bin"
