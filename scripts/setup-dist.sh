#!/usr/bin/env bash
# The release tools, installed from the package registries only, quick when
# already there (a stamp per version list):
#   - Rust targets for the cross builds (rustup target add);
#   - a virtual environment ${TOKENWELL_CACHE:-.cache}/dist-venv with zig (PyPI `ziglang`,
#     the C toolchain for cross-linking and for linking against glibc 2.17),
#     cargo-zigbuild, maturin and twine, at fixed versions.
# Prints the venv's bin directory.
#
#   scripts/setup-dist.sh              what this machine's own artifacts need
#   scripts/setup-dist.sh --all        also the targets of every other platform
#   scripts/setup-dist.sh --emulators  also Debian's qemu-user, the arm64 glibc sysroot and
#                                      musl-gcc, with which scripts/verify-dist.py loads the
#                                      aarch64 and musl binaries (as root, with apt-get)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
TOOLS=("ziglang==0.17.0" "cargo-zigbuild==0.24.0" "maturin==1.16.0" "twine==7.0.0")
venv=${TOKENWELL_CACHE:-$repo/.cache}/dist-venv
stamp=$venv/.tokenwell-tools
if [[ ! -f $stamp || $(cat "$stamp") != "${TOOLS[*]}" ]]; then
  echo "setup-dist: installing ${TOOLS[*]} into $venv" >&2
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${TOOLS[@]}" >&2
  echo "${TOOLS[*]}" >"$stamp"
fi
targets=(x86_64-unknown-linux-gnu)
[[ ${1:-} == --all ]] && targets+=(x86_64-unknown-linux-musl aarch64-unknown-linux-gnu aarch64-unknown-linux-musl)
if [[ ${1:-} == --emulators ]]; then
  debs=(qemu-user libc6-arm64-cross libgcc-s1-arm64-cross musl-tools)
  if ! dpkg -s "${debs[@]}" >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "setup-dist: installing ${debs[*]} from Debian" >&2
      apt-get install -y -q "${debs[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${debs[@]}" >&2; } ||
        echo "setup-dist: could not install ${debs[*]}: the aarch64 and musl binaries will be checked by readelf only" >&2
    else
      echo "setup-dist: ${debs[*]} missing (not root): the aarch64 and musl binaries will be checked by readelf only" >&2
    fi
  fi
fi
installed=$(rustup target list --installed 2>/dev/null || true)
for target in "${targets[@]}"; do
  grep -qx "$target" <<<"$installed" || rustup target add "$target" >&2
done
echo "$venv/bin"
