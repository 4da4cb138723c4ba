#!/usr/bin/env bash
# Makes sure fuzzing can run: a nightly toolchain (libFuzzer's sanitizer
# instrumentation needs it) and cargo-fuzz, installed into the repository's own
# ignored .cache/ so nothing global changes. Idempotent, and quick when both are
# already there. Prints the path of the cargo-fuzz binary's directory last.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
command -v rustup >/dev/null || { echo "rustup not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "setup-fuzz: installing the nightly toolchain (minimal profile)" >&2
  rustup toolchain install nightly --profile minimal
fi

# Built tools live in a per-user cache (TOKENWELL_TOOLS), like cargo's own
# registry cache: every clone on the machine, CI's included, reuses them.
root="${TOKENWELL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenwell-tools}/cargo-fuzz"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
  echo "setup-fuzz: installing cargo-fuzz into $root" >&2
  # cargo-fuzz itself builds on stable; --locked uses its own tested lock file.
  cargo install cargo-fuzz --locked --root "$root" --quiet
fi
"$root/bin/cargo-fuzz" --version >/dev/null
