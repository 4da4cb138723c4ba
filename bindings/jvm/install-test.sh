#!/usr/bin/env bash
# The jar, installed into the local Maven repository by `make test`, used by an
# empty Maven project with no Rust toolchain on PATH: it must get a token.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${MAVEN_REPO:-$here/../../.cache/m2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/install-test/." "$work/"
path=$(tr ':' '\n' <<<"$PATH" | grep -v -e cargo -e rustup | paste -sd: -)
if PATH=$path command -v cargo >/dev/null 2>&1; then echo "cargo is still on PATH" >&2; exit 1; fi
cd "$work"
PATH=$path mvn -B -q -ntp -Dmaven.repo.local="$repo" -Dstyle.color=never compile exec:java
