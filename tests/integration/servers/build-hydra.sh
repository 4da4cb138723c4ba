#!/usr/bin/env bash
# Build Ory Hydra from source with this machine's Go and the Go module proxy,
# and cache the binary at ${TOKENWELL_CACHE:-$REPO/.cache}/bin/hydra.
#
# Prints the binary's path on stdout (last line); everything else goes to
# stderr. A second run with the same recipe only checks the stamp file and
# returns at once. Safe to run concurrently (flock on the cache dir).
#
# ---------------------------------------------------------------------------
# The recipe (why it looks like this)
# ---------------------------------------------------------------------------
# Hydra v2.3.0's go.mod has two `replace` directives, which are ignored when
# Hydra is built as a dependency of another module (go install pkg@version
# refuses such modules outright):
#
#   replace github.com/ory/hydra-client-go/v2 => ./internal/httpclient
#   replace github.com/gobuffalo/pop/v6 => github.com/ory/pop/v6 v6.2.1-0.20241121111754-e5dfc0f3344b
#
# * internal/httpclient is a nested module, so it is NOT in the v2.3.0 module
#   zip. The proxy serves github.com/ory/hydra-client-go/v2 only up to v2.2.1
#   (v2.3.0 is refused), and v2.2.1 is exactly what hydra's go.mod requires,
#   so nothing has to be done for it: the CLI code in cmd/ compiles against
#   v2.2.1 (checked: the build below passes).
# * The pop fork IS needed (hydra uses API that only ory's fork has), so the
#   scratch module repeats that replace before resolving anything.
# * DSN=memory means an in-memory SQLite database in Hydra v2
#   (driver/config/provider.go turns it into a sqlite:// DSN), and SQLite is
#   only compiled in with `-tags sqlite` (driver/registry_sqlite.go), which
#   needs cgo (mattn/go-sqlite3) and so gcc. We use the same tags as Hydra's
#   own Makefile: sqlite,sqlite_omit_load_extension.
#
# Exact steps (in an empty scratch dir under the cache dir):
#   go mod init tokenwell.invalid/hydra-build
#   go mod edit -replace github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b
#   go get -tool github.com/ory/hydra/v2@v2.3.0
#   CGO_ENABLED=1 go build -p 2 -tags sqlite,sqlite_omit_load_extension \
#     -ldflags "-X github.com/ory/hydra/v2/driver/config.Version=v2.3.0 ..." \
#     -o hydra github.com/ory/hydra/v2
#
# GOMODCACHE and GOCACHE are left at their defaults (under $HOME), so a
# rebuild on the same machine (e.g. after `rm -rf .cache`) reuses both.
# -p 2: the machine has 2 cores and Rust is often compiling next to us.
# ---------------------------------------------------------------------------
set -euo pipefail

HYDRA_VERSION=v2.3.0
HYDRA_MODULE=github.com/ory/hydra/v2
POP_REPLACE='github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b'
BUILD_TAGS=sqlite,sqlite_omit_load_extension
# Bump RECIPE when anything above changes, so cached binaries are rebuilt.
RECIPE=1
STAMP_TEXT="hydra ${HYDRA_VERSION} module=${HYDRA_MODULE} tags=${BUILD_TAGS} recipe=${RECIPE}"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${TOKENWELL_CACHE:-$REPO/.cache}
BIN_DIR=$CACHE/bin
BIN=$BIN_DIR/hydra
STAMP=$BIN_DIR/hydra.stamp

log() { printf 'build-hydra: %s\n' "$*" >&2; }

up_to_date() {
  [[ -x $BIN && -f $STAMP ]] && [[ "$(cat "$STAMP")" == "$STAMP_TEXT" ]]
}

# Fast path: no lock, no go command.
if up_to_date; then
  log "cached: $BIN ($STAMP_TEXT)"
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN_DIR"
exec 9>"$CACHE/hydra-build.lock"
log "taking the build lock $CACHE/hydra-build.lock"
flock 9
# Someone else may have built it while we waited.
if up_to_date; then
  log "cached (built by a concurrent run): $BIN"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
command -v gcc >/dev/null || command -v cc >/dev/null || {
  log "a C compiler is needed (cgo, for SQLite)"; exit 1; }

start=$(date +%s)
WORK=$CACHE/hydra-build
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

log "building Ory Hydra $HYDRA_VERSION with $(go env GOVERSION) in $WORK"
log "GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

# Our own flags win over the caller's -mod=...; no go.work above us may
# pull this scratch module into a workspace; the machine's Go, no download.
GOFLAGS="$(sed -E 's/(^| )-mod=[a-z]+//g' <<<"${GOFLAGS:-}") -mod=mod"
export GOFLAGS
export GOWORK=off
export GOTOOLCHAIN=local
export CGO_ENABLED=1

go mod init tokenwell.invalid/hydra-build 2>&1 | sed "s/^/  /" >&2
go mod edit -replace "$POP_REPLACE"
log "resolving modules (go get -tool ${HYDRA_MODULE}@${HYDRA_VERSION})"
go get -tool "${HYDRA_MODULE}@${HYDRA_VERSION}" >&2

LDFLAGS="-X github.com/ory/hydra/v2/driver/config.Version=${HYDRA_VERSION}"
LDFLAGS+=" -X github.com/ory/hydra/v2/driver/config.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
LDFLAGS+=" -X github.com/ory/hydra/v2/driver/config.Commit=module-proxy"

log "compiling (go build -p 2 -tags $BUILD_TAGS)"
go build -p 2 -tags "$BUILD_TAGS" -ldflags "$LDFLAGS" -o "$BIN.tmp.$$" "$HYDRA_MODULE" >&2

# Sanity check before publishing.
"$BIN.tmp.$$" version >&2
mv -f "$BIN.tmp.$$" "$BIN"
printf '%s\n' "$STAMP_TEXT" >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"

end=$(date +%s)
log "built $BIN in $((end - start))s"
echo "$BIN"
