#!/usr/bin/env bash
# Installs tokenwell the way users do, on a machine without Rust, and gets a
# token from the real Ory Hydra described by $TOKENWELL_SERVERS (run it as
# `tests/integration/run.sh install`, which starts the servers).
#
# Builds this machine's artifacts first (scripts/dist.sh host: the main npm
# package with its wasm engine, @tokenwell/linux-x64-gnu, the manylinux2014
# x86_64 wheel, the sdist), then, each in an empty folder with a PATH and HOME
# that hold no cargo, rustc or rustup:
#   1. npm install tokenwell-<v>.tgz tokenwell-linux-x64-gnu-<v>.tgz -> native engine, a token
#   2. npm install tokenwell-<v>.tgz alone -> the install succeeds, the wasm engine serves a token;
#      the same folder under Deno (deno condition, no --allow-read) and Bun
#   3. pip install the wheel into a fresh venv -> a token
#   4. pip install the sdist -> fails fast, saying what to install, without
#      fetching a toolchain
#   5. the Cloudflare Worker example in workerd against Hydra
# Then scripts/verify-dist.py checks every artifact dist/ holds (cross builds
# from an earlier `make dist` included: architecture, libc, wheel tags), and
# loads each native binary with its own C library: natively, with Debian's
# musl, or under Debian's qemu-aarch64 (installed by setup-dist.sh --emulators).
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
[[ -n ${TOKENWELL_SERVERS:-} ]] || { echo "test-install: TOKENWELL_SERVERS is not set (use tests/integration/run.sh install)" >&2; exit 2; }

passed=0 failed=0
check() { # check NAME COMMAND...: runs COMMAND, counts and reports it
  local name=$1 start=$SECONDS
  shift
  if "$@" >"$work/log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    echo "FAIL $name ($((SECONDS - start)) s)"
    sed 's/^/     | /' "$work/log" | tail -40
  fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building this machine's artifacts (scripts/dist.sh host)"
bash scripts/dist.sh host >"$work/dist.log" 2>&1 || { tail -60 "$work/dist.log"; echo "test-install: the build failed"; exit 1; }
version=$(node -p 'require("./bindings/node/package.json").version')
main_tgz=$repo/dist/npm/tokenwell-$version.tgz
gnu_tgz=$repo/dist/npm/tokenwell-linux-x64-gnu-$version.tgz
wheel=$(ls "$repo"/dist/python/tokenwell-"$version"-cp39-abi3-manylinux*x86_64*.whl)
sdist=$repo/dist/python/tokenwell-$version.tar.gz
deno=$repo/bindings/node/test-tools/node_modules/.bin/deno
bun=$repo/bindings/node/test-tools/node_modules/.bin/bun
make -s -C bindings/node runtimes >/dev/null

# A PATH with node, npm, python and the system's tools, and no Rust; an empty HOME.
python_bin=$(dirname "$(python3 -c 'import sys; print(sys.executable)')")
norust_path="$python_bin:/usr/local/bin:/usr/bin:/bin"
norust() {
  env -i PATH="$norust_path" HOME="$work/home" LANG=C.UTF-8 TMPDIR="$work" \
    ${PIP_CERT:+PIP_CERT=$PIP_CERT} ${SSL_CERT_FILE:+SSL_CERT_FILE=$SSL_CERT_FILE} \
    ${https_proxy:+https_proxy=$https_proxy} ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} \
    ${no_proxy:+no_proxy=$no_proxy} ${NO_PROXY:+NO_PROXY=$NO_PROXY} \
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 "$@"
}
mkdir -p "$work/home"

no_rust_here() {
  for tool in cargo rustc rustup; do
    if norust bash -c "command -v $tool" >/dev/null; then echo "$tool is on the no-Rust PATH"; return 1; fi
  done
  [[ ! -e $work/home/.cargo && ! -e $work/home/.rustup ]]
}

# The token check, in JS: the client `basic` of servers.json, a token, Hydra's
# introspection says it is active for that client. $1: the engine it must use.
cat >"$work/get-token.mjs" <<'JS'
import fs from 'node:fs';
import { ServiceAccount, engineBackend } from 'tokenwell';
const servers = JSON.parse(fs.readFileSync(process.env.TOKENWELL_SERVERS, 'utf8'));
const { client_id, client_secret } = servers.hydra.clients.basic;
const account = new ServiceAccount({ tokenUrl: servers.hydra.token_url, clientId: client_id, clientSecret: client_secret, scope: 'billing:read' });
const token = await account.getToken();
const introspection = await fetch(servers.hydra.introspection_url, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token }),
}).then((r) => r.json());
account.close();
if (!introspection.active || introspection.client_id !== client_id) throw new Error(`Hydra says ${JSON.stringify(introspection)}`);
if (engineBackend() !== process.env.EXPECT_ENGINE) throw new Error(`engine ${engineBackend()}, expected ${process.env.EXPECT_ENGINE}`);
console.log(`token from Hydra, active, engine ${engineBackend()}`);
JS

npm_native() {
  local dir=$work/npm-native
  mkdir -p "$dir" && cd "$dir" && cp "$work/get-token.mjs" . || return 1
  local start=$SECONDS
  norust npm install --no-audit --no-fund --loglevel=error "$main_tgz" "$gnu_tgz" || return 1
  echo "npm install: $((SECONDS - start)) s"
  [[ -f node_modules/@tokenwell/linux-x64-gnu/tokenwell.linux-x64-gnu.node ]] || { echo "the platform package is not installed"; return 1; }
  [[ ! -e node_modules/tokenwell/rust && ! -e node_modules/tokenwell/src ]] || { echo "Rust sources shipped"; return 1; }
  norust env TOKENWELL_SERVERS="$TOKENWELL_SERVERS" EXPECT_ENGINE=native node get-token.mjs
}

npm_wasm() {
  local dir=$work/npm-wasm
  mkdir -p "$dir" && cd "$dir" && cp "$work/get-token.mjs" . || return 1
  local start=$SECONDS
  norust npm install --no-audit --no-fund "$main_tgz" || return 1
  echo "npm install: $((SECONDS - start)) s"
  [[ ! -e node_modules/@tokenwell ]] || { echo "a platform package was installed: $(ls node_modules/@tokenwell)"; return 1; }
  norust env TOKENWELL_SERVERS="$TOKENWELL_SERVERS" EXPECT_ENGINE=wasm node get-token.mjs
}

deno_installed() {
  cd "$work/npm-wasm" || return 1
  # Only what the script itself needs: network to Hydra, read of servers.json, its variable.
  norust env TOKENWELL_SERVERS="$TOKENWELL_SERVERS" EXPECT_ENGINE=wasm DENO_DIR="$work/deno" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 \
    "$deno" run --allow-net=127.0.0.1 --allow-env=TOKENWELL_SERVERS,EXPECT_ENGINE --allow-read="$TOKENWELL_SERVERS" \
    --no-prompt get-token.mjs
}

bun_installed() {
  cd "$work/npm-native" || return 1
  norust env TOKENWELL_SERVERS="$TOKENWELL_SERVERS" EXPECT_ENGINE=native BUN_INSTALL_CACHE_DIR="$work/bun" DO_NOT_TRACK=1 \
    "$bun" get-token.mjs
}

pip_wheel() {
  local venv=$work/venv
  norust python3 -m venv "$venv" || return 1
  local start=$SECONDS
  norust "$venv/bin/pip" install --quiet "$wheel" || return 1
  echo "pip install: $((SECONDS - start)) s"
  norust env TOKENWELL_SERVERS="$TOKENWELL_SERVERS" "$venv/bin/python" - <<'PY'
import json, os, urllib.parse, urllib.request
import tokenwell
servers = json.load(open(os.environ["TOKENWELL_SERVERS"]))
client = servers["hydra"]["clients"]["basic"]
account = tokenwell.ServiceAccount(token_url=servers["hydra"]["token_url"], client_id=client["client_id"],
                                   client_secret=client["client_secret"], scope=["billing:read"])
token = account.get_token()
body = urllib.parse.urlencode({"token": token}).encode()
introspection = json.load(urllib.request.urlopen(servers["hydra"]["introspection_url"], data=body))
assert introspection["active"] and introspection["client_id"] == client["client_id"], introspection
assert "site-packages" in tokenwell.__file__, tokenwell.__file__
print("token from Hydra, active, from", os.path.basename(os.path.dirname(tokenwell.__file__)))
PY
}

pip_sdist_without_rust() {
  local venv=$work/venv-sdist
  norust python3 -m venv "$venv" || return 1
  local start=$SECONDS
  if norust "$venv/bin/pip" install "$sdist" >"$work/sdist.log" 2>&1; then
    echo "the sdist installed without Rust?"; return 1
  fi
  local took=$((SECONDS - start))
  cat "$work/sdist.log" | tail -20
  grep -q "building from source needs a Rust toolchain" "$work/sdist.log" || { echo "no message saying what to install"; return 1; }
  grep -q "TOKENWELL_INSTALL_RUST=1" "$work/sdist.log" || { echo "the opt-in is not named"; return 1; }
  if grep -qi "puccinialin\|Rust not found, installing" "$work/sdist.log"; then echo "a toolchain download started"; return 1; fi
  [[ ! -e $work/home/.cargo && ! -e $work/home/.rustup ]] || { echo "a toolchain was installed"; return 1; }
  (( took < 120 )) || { echo "took $took s: not failing fast"; return 1; }
  echo "failed fast in $took s, saying what to install"
}

echo "== installs without Rust (PATH=$norust_path, HOME=$work/home)"
check "no cargo, rustc or rustup on PATH or in HOME" no_rust_here
check "npm install tokenwell + @tokenwell/linux-x64-gnu: native engine, a token from Hydra" npm_native
check "npm install tokenwell alone: install succeeds, wasm engine, a token from Hydra" npm_wasm
check "Deno runs the installed package (deno condition, wasm, no read permission): a token from Hydra" deno_installed
check "Bun runs the installed package (platform package, native): a token from Hydra" bun_installed
check "pip install the manylinux2014 wheel: a token from Hydra" pip_wheel
check "pip install the sdist without Rust: fails fast, says what to install, downloads no toolchain" pip_sdist_without_rust
cd "$repo"
check "the Cloudflare Worker in workerd against Hydra" make -s -C examples/cloudflare-worker test
bash scripts/setup-dist.sh --emulators >/dev/null
check "every artifact in dist/: architecture, libc, GLIBC <= 2.17, wheel tags; loaded by its libc (qemu for arm64)" \
  python3 scripts/verify-dist.py
cat "$work/log" | sed 's/^/     /'

echo "install: $passed passed, $failed failed"
((failed == 0))
