#!/usr/bin/env bash
# Builds the release artifacts into dist/ (git-ignored). Nothing is published.
#
#   scripts/dist.sh         every artifact (make dist):
#     dist/npm/tokenwell-<v>.tgz                      the main package: JS layer, types, wasm engine,
#                                                     optionalDependencies on the platform packages
#     dist/npm/tokenwell-<platform>-<v>.tgz           @tokenwell/<platform>: one native module each,
#                                                     linux-x64-gnu, linux-x64-musl, linux-arm64-gnu,
#                                                     linux-arm64-musl (zig links the gnu ones
#                                                     against glibc 2.17)
#     dist/python/tokenwell-<v>-cp39-abi3-*.whl       manylinux2014 x86_64/aarch64, musllinux_1_2
#                                                     x86_64/aarch64 (maturin --zig)
#     dist/python/tokenwell-<v>.tar.gz                the sdist
#   scripts/dist.sh host    only what this machine's install tests need (make test):
#                           the main package, linux-x64-gnu, the manylinux2014 x86_64 wheel,
#                           the sdist
#
# Then: npm publish --dry-run and twine check on what was built, and
# scripts/verify-dist.py (architecture, libc, newest GLIBC symbol, wheel tags).
# One version source: the workspace version in Cargo.toml; package.json must agree.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
mode=${1:-all}
[[ $mode == all || $mode == host ]] || { echo "usage: scripts/dist.sh [all|host]" >&2; exit 2; }
bin=$(bash scripts/setup-dist.sh $([[ $mode == all ]] && echo --all))
export PATH="$bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
dist=$repo/dist
node_pkg=$repo/bindings/node

version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')
pkg_version=$(node -p 'require("./bindings/node/package.json").version')
if [[ $pkg_version != "$version" ]]; then
  echo "dist: bindings/node/package.json says $pkg_version, Cargo.toml's workspace version is $version: make them agree" >&2
  exit 1
fi

# npm platform name -> Rust target (cargo-zigbuild's glibc suffix for the gnu ones) and package fields.
declare -A RUST_TARGET=(
  [linux-x64-gnu]=x86_64-unknown-linux-gnu.2.17 [linux-x64-musl]=x86_64-unknown-linux-musl
  [linux-arm64-gnu]=aarch64-unknown-linux-gnu.2.17 [linux-arm64-musl]=aarch64-unknown-linux-musl
)
declare -A NPM_CPU=([linux-x64-gnu]=x64 [linux-x64-musl]=x64 [linux-arm64-gnu]=arm64 [linux-arm64-musl]=arm64)
declare -A NPM_LIBC=([linux-x64-gnu]=glibc [linux-x64-musl]=musl [linux-arm64-gnu]=glibc [linux-arm64-musl]=musl)
ALL_PLATFORMS=(linux-x64-gnu linux-x64-musl linux-arm64-gnu linux-arm64-musl)
if [[ $mode == all ]]; then platforms=("${ALL_PLATFORMS[@]}"); else platforms=(linux-x64-gnu); fi

# A musl cdylib must link the C library dynamically (Node and Python load it into their process).
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"

mkdir -p "$dist/npm" "$dist/python"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
step() { printf '\n== dist: %s\n' "$*" >&2; }

# ---- npm: platform packages ------------------------------------------------
for platform in "${platforms[@]}"; do
  target=${RUST_TARGET[$platform]}
  triple=${target%.2.17}
  step "@tokenwell/$platform ($target)"
  cargo zigbuild -q --release -p tokenwell-node --target "$target"
  dir=$stage/npm-$platform
  mkdir -p "$dir"
  cp "$CARGO_TARGET_DIR/$triple/release/libtokenwell_node.so" "$dir/tokenwell.$platform.node"
  PLATFORM=$platform CPU=${NPM_CPU[$platform]} LIBC=${NPM_LIBC[$platform]} VERSION=$version node -e '
    const { PLATFORM, CPU, LIBC, VERSION } = process.env;
    const main = require("./bindings/node/package.json");
    const pkg = {
      name: `@tokenwell/${PLATFORM}`,
      version: VERSION,
      description: `The ${PLATFORM} native module of tokenwell (napi-rs). Installed by npm as an optional dependency of tokenwell on this platform only.`,
      license: main.license,
      os: ["linux"], cpu: [CPU], libc: [LIBC],
      main: `tokenwell.${PLATFORM}.node`,
      files: [`tokenwell.${PLATFORM}.node`],
      engines: main.engines,
    };
    require("fs").writeFileSync(process.argv[1] + "/package.json", JSON.stringify(pkg, null, 2) + "\n");
    require("fs").writeFileSync(process.argv[1] + "/README.md",
      `# @tokenwell/${PLATFORM}\n\nThe native module of [tokenwell](https://www.npmjs.com/package/tokenwell) for ${PLATFORM}` +
      (LIBC === "glibc" ? " (glibc 2.17 or newer)" : "") + ". Install `tokenwell`, not this package: npm picks it.\n");
  ' "$dir"
  (cd "$dir" && npm pack --silent --pack-destination "$dist/npm" >/dev/null)
done

# ---- npm: the main package -------------------------------------------------
step "tokenwell (JS layer + wasm engine)"
make -s -C bindings/node build-wasm
dir=$stage/npm-main
mkdir -p "$dir"
files=$(node -p 'require("./bindings/node/package.json").files.join("\n")')
while IFS= read -r entry; do
  mkdir -p "$dir/$(dirname "$entry")"
  cp -R "$node_pkg/${entry%/}" "$dir/$(dirname "$entry")/"
done <<<"$files"
for license in LICENSE LICENSE-MIT LICENSE-APACHE; do cp "$repo/$license" "$dir/"; done
PLATFORMS="${ALL_PLATFORMS[*]}" VERSION=$version node -e '
  const pkg = require("./bindings/node/package.json");
  pkg.version = process.env.VERSION;
  // Every platform package, whichever were built in this run: npm installs the one
  // matching os/cpu/libc and skips the rest; with none, the wasm engine serves.
  pkg.optionalDependencies = Object.fromEntries(
    process.env.PLATFORMS.split(" ").map((p) => [`@tokenwell/${p}`, process.env.VERSION]));
  delete pkg.devDependencies;
  for (const script of Object.keys(pkg.scripts)) if (script !== "test") delete pkg.scripts[script];
  delete pkg.scripts;
  require("fs").writeFileSync(process.argv[1] + "/package.json", JSON.stringify(pkg, null, 2) + "\n");
' "$dir"
(cd "$dir" && npm pack --silent --pack-destination "$dist/npm" >/dev/null)

# ---- Python: abi3 wheels and the sdist ------------------------------------
declare -A WHEEL=(
  [x86_64-unknown-linux-gnu]=manylinux2014 [aarch64-unknown-linux-gnu]=manylinux2014
  [x86_64-unknown-linux-musl]=musllinux_1_2 [aarch64-unknown-linux-musl]=musllinux_1_2
)
if [[ $mode == all ]]; then
  wheel_targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
else
  wheel_targets=(x86_64-unknown-linux-gnu)
fi
for target in "${wheel_targets[@]}"; do
  step "wheel $target (${WHEEL[$target]})"
  maturin build --quiet --release --zig --target "$target" --compatibility "${WHEEL[$target]}" \
    -m bindings/python/Cargo.toml --out "$dist/python" 2>&1 | grep -v '^📦\|^🔗\|^🐍\|^🖨\|^🍹\|^📡\|^🛠\|build-backend. in pyproject.toml' >&2 || true
done
step "sdist"
maturin sdist -m bindings/python/Cargo.toml --out "$dist/python" >&2

# ---- checks ----------------------------------------------------------------
step "twine check"
twine check --strict "$dist"/python/tokenwell-"$version"[-.]*
step "npm publish --dry-run"
for tgz in "$dist"/npm/tokenwell-*"$version".tgz; do
  npm publish "$tgz" --dry-run --access public --loglevel=error >/dev/null 2>"$stage/publish.log" \
    || { cat "$stage/publish.log" >&2; echo "dist: npm publish --dry-run failed for $tgz" >&2; exit 1; }
  echo "npm publish --dry-run: $(basename "$tgz") ok" >&2
done
python3 scripts/verify-dist.py
