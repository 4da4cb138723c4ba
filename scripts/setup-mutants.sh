#!/usr/bin/env bash
# Makes sure mutation testing can run: cargo-mutants, installed from the crate
# registry into the repository's own ignored .cache/ so nothing global changes.
# Idempotent, and quick when the pinned version is already there. Prints the
# path of the binary last.
#
# The version is pinned: the mutants it generates (and so the list of
# equivalent ones in .cargo/equivalent-mutants.md) change between versions.
# It is built without optimizations (--debug): that takes half the time, and
# cargo-mutants spends its run waiting for cargo, not computing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

version="27.1.0"
# Per-user tool cache (TOKENWELL_TOOLS), reused by every clone on the machine.
root="${TOKENWELL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenwell-tools}/cargo-mutants"
bin="$root/bin/cargo-mutants"
if ! "$bin" mutants --version 2>/dev/null | grep -qx "cargo-mutants $version"; then
  echo "setup-mutants: installing cargo-mutants $version into $root" >&2
  # A build directory of its own, so the workspace's target/ is not touched;
  # --locked uses cargo-mutants' own tested lock file.
  CARGO_TARGET_DIR="$root/build" cargo install cargo-mutants --version "$version" --locked --debug --force \
    --root "$root" --quiet
  rm -rf "$root/build"
fi
echo "$bin"
