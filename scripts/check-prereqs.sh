#!/usr/bin/env bash
# Checks, before anything is built, that this machine has what `make demo` needs,
# and names everything missing in one message (with Debian/Ubuntu package names).
# Quick: version probes only.
set -uo pipefail
missing=()
need() { # need COMMAND WHAT
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
version_at_least() { # version_at_least HAVE WANT (dotted)
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

need cargo "Rust 1.88+ with rustup (https://rustup.rs): cargo, rustc, rustup"
need rustup "rustup (https://rustup.rs): the wasm32 targets are added with it"
if command -v rustc >/dev/null 2>&1; then
  have=$(rustc --version | awk '{print $2}')
  version_at_least "$have" 1.88.0 || missing+=("Rust 1.88 or newer (rustc $have found): rustup update stable")
fi
need cc "a C compiler and linker for Rust (gcc: apt-get install gcc)"
if command -v go >/dev/null 2>&1; then
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  version_at_least "${have:-0}" 1.22 || missing+=("Go 1.22 or newer (go ${have:-?} found): Hydra v2.3.0 needs it")
else
  missing+=("Go 1.22+ (builds Ory Hydra from source: apt-get install golang, or https://go.dev/dl)")
fi
if command -v node >/dev/null 2>&1; then
  have=$(node -p 'process.versions.node')
  version_at_least "$have" 20.18.1 || missing+=("Node.js 20.18.1 or newer (node $have found)")
else
  missing+=("Node.js 20.18.1 or newer, with npm")
fi
need npm "npm (comes with Node.js)"
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || missing+=("Python 3.9 or newer (python3 is $(python3 -V 2>&1))")
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("Python's venv module with pip (apt-get install python3-venv)")
else
  missing+=("Python 3.9 or newer with venv (apt-get install python3 python3-venv)")
fi
need jq "jq (apt-get install jq)"
need curl "curl (apt-get install curl)"
need flock "flock (apt-get install util-linux)"
need timeout "timeout (apt-get install coreutils)"
need openssl "openssl (apt-get install openssl): the demo and the test servers make signing keys with it"

if ((${#missing[@]})); then
  {
    echo "make ${1:-demo}: this machine lacks what it needs:"
    printf '  - %s\n' "${missing[@]}"
    echo "Install them, then run it again (nothing was built)."
  } >&2
  exit 1
fi
