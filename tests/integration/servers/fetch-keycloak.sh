#!/usr/bin/env bash
# Fetch the Keycloak distribution (org.keycloak:keycloak-quarkus-dist, a
# tar.gz on Maven Central) and unpack it at
# ${TOKENWELL_CACHE:-<per-user tool cache>}/keycloak-$VERSION: like the tools
# built from crates.io, in ${TOKENWELL_TOOLS:-~/.cache/tokenwell-tools}, so
# that every clone on the machine (CI's included) reuses one download and the
# database made by its first start (about 2 minutes).
#
# Prints the Keycloak home directory on stdout (last line); everything else
# goes to stderr. A second run with the same recipe only checks the stamp file
# and returns at once. Safe to run concurrently (flock on the cache dir).
#
# How it is fetched, first that works:
#   1. curl of the artifact's Maven Central URL (MAVEN_CENTRAL_URL overrides
#      the base, e.g. for a mirror);
#   2. `mvn dependency:copy -Dartifact=org.keycloak:keycloak-quarkus-dist:$VERSION:tar.gz`
#      (Maven's own settings, so a mirror in ~/.m2/settings.xml is honoured).
# Either way the archive's SHA-1 must equal the one pinned below (the value
# Maven Central publishes beside it), or nothing is unpacked.
#
# with-servers.sh runs `kc.sh start-dev` against the unpacked tree. Dev mode
# re-augments the Quarkus build (lib/quarkus/) when the build options differ
# from the stored ones (`kc.sh build` refuses the dev profile), so the first
# start is done here, once, under the lock, with the options the harness
# uses: parallel harnesses then never rewrite the shared tree. That start also
# leaves tokenwell-initial-db/ (see below). Runs keep their database and
# transaction log in their own run dir; the tree is only read.
set -euo pipefail

KC_VERSION=26.7.3
KC_SHA1=4ff244668809213a1c91ad2505390287203029d0
# Build options the harness starts Keycloak with; must match with-servers.sh.
KC_BUILD_OPTS=(--db=dev-file --health-enabled=true)
# Bump RECIPE when anything above changes, so the cached tree is redone.
RECIPE=1
STAMP_TEXT="keycloak-quarkus-dist ${KC_VERSION} sha1=${KC_SHA1} build=${KC_BUILD_OPTS[*]} recipe=${RECIPE}"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${TOKENWELL_CACHE:-${TOKENWELL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenwell-tools}}
KC_HOME=$CACHE/keycloak-$KC_VERSION
STAMP=$KC_HOME/.tokenwell-stamp
ARTIFACT_PATH=org/keycloak/keycloak-quarkus-dist/$KC_VERSION/keycloak-quarkus-dist-$KC_VERSION.tar.gz
CENTRAL=${MAVEN_CENTRAL_URL:-https://repo.maven.apache.org/maven2}

log() { printf 'fetch-keycloak: %s\n' "$*" >&2; }

up_to_date() {
  [[ -x $KC_HOME/bin/kc.sh && -f $STAMP ]] && [[ "$(cat "$STAMP")" == "$STAMP_TEXT" ]]
}

# Fast path: no lock, no network.
if up_to_date; then
  log "cached: $KC_HOME"
  echo "$KC_HOME"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/keycloak-fetch.lock"
log "taking the lock $CACHE/keycloak-fetch.lock"
flock 9
if up_to_date; then
  log "cached (fetched by a concurrent run): $KC_HOME"
  echo "$KC_HOME"
  exit 0
fi

JAVA_HOME=$("$HERE/find-java.sh" 21) || exit 1
export JAVA_HOME
# Leftovers of a run that was killed half way (we hold the lock: none is live).
rm -rf "$CACHE"/keycloak-unpack.* "$CACHE"/keycloak-quarkus-dist-*.tar.gz.part 2>/dev/null || true
# A TERM (the harness stopping) must still run the EXIT trap that stops the
# first start's JVM, which bash skips on an untrapped signal.
trap 'exit 143' TERM INT

start=$(date +%s)
ARCHIVE=$CACHE/keycloak-quarkus-dist-$KC_VERSION.tar.gz
sha1_ok() { [[ -f $ARCHIVE ]] && [[ "$(sha1sum "$ARCHIVE" | cut -d' ' -f1)" == "$KC_SHA1" ]]; }

if sha1_ok; then
  log "archive already downloaded: $ARCHIVE"
else
  rm -f "$ARCHIVE" "$ARCHIVE.part"
  log "downloading $CENTRAL/$ARTIFACT_PATH"
  if curl -fsSL --retry 3 --connect-timeout 20 --max-time 900 -o "$ARCHIVE.part" "$CENTRAL/$ARTIFACT_PATH" &&
    mv -f "$ARCHIVE.part" "$ARCHIVE" && sha1_ok; then
    :
  else
    rm -f "$ARCHIVE" "$ARCHIVE.part"
    command -v mvn >/dev/null || { log "curl failed and mvn is not installed"; exit 1; }
    log "curl failed; trying mvn dependency:copy"
    JAVA_HOME=$JAVA_HOME timeout 900 mvn -q -B dependency:copy \
      -Dartifact="org.keycloak:keycloak-quarkus-dist:$KC_VERSION:tar.gz" \
      -DoutputDirectory="$CACHE" -Dmdep.overWriteReleases=true >&2 ||
      { log "mvn dependency:copy failed"; exit 1; }
  fi
  sha1_ok || { log "SHA-1 of $ARCHIVE is not $KC_SHA1: refusing to unpack"; rm -f "$ARCHIVE"; exit 1; }
  log "downloaded in $(($(date +%s) - start))s"
fi

t=$(date +%s)
WORK=$CACHE/keycloak-unpack.$$
rm -rf "$WORK" "$KC_HOME"
mkdir -p "$WORK"
tar -xzf "$ARCHIVE" -C "$WORK"
[[ -x $WORK/keycloak-$KC_VERSION/bin/kc.sh ]] || { log "the archive has no keycloak-$KC_VERSION/bin/kc.sh"; exit 1; }
mv "$WORK/keycloak-$KC_VERSION" "$KC_HOME"
rmdir "$WORK"
log "unpacked in $(($(date +%s) - t))s"

# One start, once: it runs the Quarkus build (augmentation, ~1 min) for the
# options the harness uses, and leaves an initial H2 database (schema and
# master realm, no user: Liquibase plus the master realm take most of a cold
# start) that each harness run copies into its own run dir.
# Keycloak makes the KC_BOOTSTRAP_ADMIN_* user only on a new install (an empty
# database), so that user is made here, with a random password kept beside
# the database (admin.json, mode 0600); each run logs in with it once and sets
# a new random password of its own (with-servers.sh).
t=$(date +%s)
INIT=$KC_HOME/tokenwell-initial-db.tmp
rm -rf "$INIT" "$KC_HOME/tokenwell-initial-db"
mkdir -p "$INIT"
read -r port mport < <(node -e '
  const net = require("node:net"); const s = [];
  for (let i = 0; i < 2; i++) { const x = net.createServer(); x.listen(0, "127.0.0.1", () => {
    s.push(x); if (s.length === 2) { console.log(s.map((y) => y.address().port).join(" ")); s.forEach((y) => y.close()); } }); }')
log "first start (kc.sh start-dev ${KC_BUILD_OPTS[*]}) on 127.0.0.1:$port to build and make the initial database"
admin_user=tokenwell-admin
admin_password=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 32)
(umask 077 && jq -n --arg u "$admin_user" --arg p "$admin_password" '{username: $u, password: $p}' >"$INIT/admin.json")
KC_BOOTSTRAP_ADMIN_USERNAME=$admin_user KC_BOOTSTRAP_ADMIN_PASSWORD=$admin_password \
JAVA_OPTS_APPEND="-XX:TieredStopAtLevel=1 -Dkc.db-url-path=$INIT -Dquarkus.transaction-manager.object-store.directory=$INIT/transaction-logs" \
  "$KC_HOME/bin/kc.sh" start-dev "${KC_BUILD_OPTS[@]}" --http-host=127.0.0.1 --http-port="$port" \
  --http-management-host=127.0.0.1 --http-management-port="$mport" \
  </dev/null >"$CACHE/keycloak-first-start.log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop EXIT
deadline=$(($(date +%s) + 900))
until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$mport/health/ready" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null || (($(date +%s) > deadline)); then
    tail -n 30 "$CACHE/keycloak-first-start.log" >&2
    log "Keycloak's first start failed"
    exit 1
  fi
  sleep 0.5
done
stop
trap - EXIT
[[ -s $INIT/data/h2/keycloakdb.mv.db ]] || { log "no database at $INIT/data/h2/keycloakdb.mv.db"; exit 1; }
rm -rf "$INIT/transaction-logs"
mv "$INIT" "$KC_HOME/tokenwell-initial-db"
log "first start done in $(($(date +%s) - t))s"

rm -f "$ARCHIVE"
printf '%s\n' "$STAMP_TEXT" >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"
log "ready in $(($(date +%s) - start))s: $KC_HOME"
echo "$KC_HOME"
