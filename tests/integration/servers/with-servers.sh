#!/usr/bin/env bash
# with-servers.sh CMD [ARGS...]
#
# Starts real authorization servers on 127.0.0.1, describes them in a JSON
# file, runs CMD with TOKENWELL_SERVERS=/path/to/servers.json in its
# environment, stops every server it started, and exits with CMD's status.
#
#   * Ory Hydra v2.3.0 (built from source by build-hydra.sh, cached), run as
#     `hydra serve all --dev` with DSN=memory (in-memory SQLite), public and
#     admin ports on 127.0.0.1. Its clients are created with the real `hydra`
#     CLI, as an operator would.
#   * oidc-provider (Node, ./oidc-provider/server.mjs), on a free 127.0.0.1
#     port chosen by the kernel.
#   * Keycloak 26 (the keycloak-quarkus-dist from Maven Central, fetched and
#     unpacked by fetch-keycloak.sh, cached), `kc.sh start-dev` with Java 21+
#     (find-java.sh), started first and in the background (it is the slowest),
#     waited for last; realm `tokenwell` and its clients created with its admin
#     CLI (kcadm.sh). TOKENWELL_KEYCLOAK=0 skips it.
#   * Per-run signing keys (openssl: RSA 2048, EC P-256) for the
#     private_key_jwt clients of Hydra and Keycloak.
#
# See tests/integration/README.md for the servers.json schema.
#
# Environment knobs (all optional):
#   TOKENWELL_HYDRA_TTL_SECONDS   Hydra's global access token TTL (3600)
#   TOKENWELL_SHORT_TTL_SECONDS   TTL of the `short_ttl` clients on both
#                                 servers (5)
#   TOKENWELL_OIDC_TTL_SECONDS    oidc-provider's access token TTL (300)
#   TOKENWELL_READY_TIMEOUT       seconds to wait for each server (60)
#   TOKENWELL_BULK_CLIENTS        "bulk" clients with random secrets per
#                                 server (200; the end-to-end suites need 200)
#   TOKENWELL_SERVER_LOGS         a directory: copy the servers' logs there
#                                 on exit (they are deleted otherwise)
#   TOKENWELL_CACHE               cache dir for the Hydra binary and the
#                                 Keycloak distribution (.cache)
#   TOKENWELL_KEYCLOAK            1 (default): start Keycloak; 0: skip it
#                                 ("keycloak": null in servers.json)
#   TOKENWELL_KEYCLOAK_READY_TIMEOUT  seconds to wait for Keycloak once its
#                                 distribution is cached (300)
#   TOKENWELL_KEYCLOAK_FETCH_TIMEOUT  seconds for a first fetch + first
#                                 start of the distribution (900)
#   TOKENWELL_KEYCLOAK_TTL_SECONDS    the tokenwell realm's access token TTL (300)
#
#   * A second Hydra whose public interface serves TLS with a certificate for
#     127.0.0.1 from a test CA made at start (openssl), for the TLS tests.
#
# Exported to CMD: TOKENWELL_SERVERS, HYDRA_BIN, HYDRA_ADMIN_URL,
# HYDRA_PUBLIC_URL, HYDRA_TOKEN_URL, HYDRA_TLS_TOKEN_URL,
# TOKENWELL_TEST_CA_FILE, OIDC_PROVIDER_ISSUER, OIDC_PROVIDER_TOKEN_URL,
# and with Keycloak: KEYCLOAK_ISSUER, KEYCLOAK_TOKEN_URL.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${TOKENWELL_READY_TIMEOUT:-60}
HYDRA_TTL=${TOKENWELL_HYDRA_TTL_SECONDS:-3600}
SHORT_TTL=${TOKENWELL_SHORT_TTL_SECONDS:-5}
OIDC_TTL=${TOKENWELL_OIDC_TTL_SECONDS:-300}
BULK=${TOKENWELL_BULK_CLIENTS:-200}
KEYCLOAK=${TOKENWELL_KEYCLOAK:-1}
KC_READY_TIMEOUT=${TOKENWELL_KEYCLOAK_READY_TIMEOUT:-300}
KC_FETCH_TIMEOUT=${TOKENWELL_KEYCLOAK_FETCH_TIMEOUT:-900}
KC_TTL=${TOKENWELL_KEYCLOAK_TTL_SECONDS:-300}
AUDIENCE=https://billing.tokenwell.test
SCOPES="billing:read billing:write"
HOST=127.0.0.1

log() { printf 'with-servers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for n in READY_TIMEOUT HYDRA_TTL SHORT_TTL OIDC_TTL KC_READY_TIMEOUT KC_FETCH_TIMEOUT KC_TTL; do
  [[ ${!n} =~ ^[0-9]+$ && ${!n} -gt 0 ]] || { log "ERROR: $n must be a positive integer (got '${!n}')"; exit 2; }
done
[[ $KEYCLOAK == 0 || $KEYCLOAK == 1 ]] || { log "ERROR: TOKENWELL_KEYCLOAK must be 0 or 1 (got '$KEYCLOAK')"; exit 2; }
[[ $BULK =~ ^[0-9]+$ && $BULK -le 10000 ]] || { log "ERROR: TOKENWELL_BULK_CLIENTS must be 0-10000 (got '$BULK')"; exit 2; }
for tool in curl jq node npm flock timeout openssl; do
  command -v "$tool" >/dev/null || { log "ERROR: '$tool' is required"; exit 2; }
done

# --------------------------------------------------------------------------
# Process bookkeeping and cleanup
# --------------------------------------------------------------------------
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tokenwell-servers.XXXXXX")
SERVER_PIDS=()
WATCHDOG_PID=
CMD_PID=
CMD_RAN=0

print_logs() {
  local lines=$1 f
  for f in "$RUN_DIR"/*.log; do
    [[ -f $f ]] || continue
    printf '\n===== %s (last %s lines) =====\n' "$(basename "$f")" "$lines" >&2
    # Hydra logs one line per database migration at start: skip those.
    grep -v -e 'Migration has not yet been applied' -e 'applied successfully' "$f" |
      tail -n "$lines" >&2
  done
  printf '===== end of server logs =====\n' >&2
}

# Stop PIDs: TERM, then wait (bounded), then KILL.
stop_pids() {
  local pid i alive
  (($# == 0)) && return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do # up to 10 s
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 10s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

# shellcheck disable=SC2317 # reached through the traps below
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n $CMD_PID ]] && kill -0 "$CMD_PID" 2>/dev/null; then
    stop_pids "$CMD_PID"
  fi
  # Startup failed (not interrupted): show what the servers said.
  if ((rc != 0 && !CMD_RAN && rc != 130 && rc != 143)); then
    print_logs 200
  fi
  if [[ -n $WATCHDOG_PID ]]; then
    kill -KILL "$WATCHDOG_PID" 2>/dev/null
    wait "$WATCHDOG_PID" 2>/dev/null
  fi
  stop_pids "${SERVER_PIDS[@]}"
  if [[ -n ${TOKENWELL_SERVER_LOGS:-} ]]; then
    mkdir -p "$TOKENWELL_SERVER_LOGS" && cp "$RUN_DIR"/*.log "$TOKENWELL_SERVER_LOGS"/ 2>/dev/null &&
      log "server logs copied to $TOKENWELL_SERVER_LOGS"
  fi
  rm -rf "$RUN_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# If this script is SIGKILLed, nothing above runs: a watchdog (its own
# process) then stops the servers and removes the temp dir.
start_watchdog() {
  local parent=$$
  (
    trap '' INT
    trap 'exit 0' TERM
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    if [[ -f $RUN_DIR/pids ]]; then
      # shellcheck disable=SC2046
      kill -TERM $(cat "$RUN_DIR/pids") 2>/dev/null
    fi
    rm -rf "$RUN_DIR"
  ) </dev/null >/dev/null 2>&1 &
  WATCHDOG_PID=$!
}

register_pid() {
  SERVER_PIDS+=("$1")
  echo "$1" >>"$RUN_DIR/pids"
}

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

# Print N distinct free TCP ports on 127.0.0.1 (held open together, then
# released: a tiny race remains, handled by retrying Hydra's start).
pick_ports() {
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]);
    const servers = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => {
        servers.push(s);
        if (servers.length === n) {
          console.log(servers.map((x) => x.address().port).join(" "));
          servers.forEach((x) => x.close());
        }
      });
    }' "$1"
}

# True if PID holds a listening TCP socket on 127.0.0.1:PORT (so a readiness
# probe is answered by our process, not by someone else's on the same port).
owns_listen_port() {
  local pid=$1 port=$2 hex inode
  hex=$(printf '%04X' "$port")
  # /proc/net/tcp*: field 2 is local "ADDR:PORT" in hex, 4 the state
  # (0A = LISTEN), 10 the socket inode; /proc/PID/fd/N -> "socket:[INODE]".
  while read -r inode; do
    [[ -n $(find "/proc/$pid/fd" -lname "socket:\[$inode\]" -print -quit 2>/dev/null) ]] && return 0
  done < <(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  return 1
}

# wait_ready NAME PID PORTS URL... : poll until PID listens on all PORTS
# (space-separated) and every URL answers 2xx; fail if PID dies or the
# deadline passes.
wait_ready() {
  local name=$1 pid=$2 ports=$3 url port ok deadline=$((SECONDS + READY_TIMEOUT))
  shift 3
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) exited during startup"; return 1; }
    ok=1
    for port in $ports; do owns_listen_port "$pid" "$port" || { ok=0; break; }; done
    if ((ok)); then
      for url in "$@"; do
        curl -fsS -o /dev/null --max-time 2 ${TEST_CA_FILE:+--cacert "$TEST_CA_FILE"} "$url" 2>/dev/null ||
          { ok=0; break; }
      done
    fi
    ((ok)) && return 0
    sleep 0.1
  done
  log "$name not ready after ${READY_TIMEOUT}s"
  return 1
}

start_watchdog

rand_alnum() { head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c "$1"; }

# --------------------------------------------------------------------------
# Keycloak: launched first and in the background (a JVM that needs 30 s to
# minutes on a busy 2-core machine), waited for after everything else.
# The launcher subshell fetches the distribution (fetch-keycloak.sh: a stamp
# check when cached), copies the cached initial database (schema + master
# realm and an admin user, made once by fetch-keycloak.sh: that takes 2/3 of
# a start) into the run dir, then execs kc.sh (KC_PID), a shell that runs
# java as its child and forwards TERM to it. Keycloak bootstraps an admin from
# KC_BOOTSTRAP_ADMIN_* on a new install only, so the cached database has one
# (made that way by fetch-keycloak.sh) and each run gives it a new random
# password (admin REST API) before using kcadm.sh.
# --------------------------------------------------------------------------
KC_DIR=$RUN_DIR/keycloak
KC_LOG=$RUN_DIR/keycloak.log
KC_REALM=tokenwell
# Build options (must equal fetch-keycloak.sh's KC_BUILD_OPTS: else kc.sh
# re-augments the shared distribution at every start).
KC_START_OPTS=(--db=dev-file --health-enabled=true)
if ((KEYCLOAK)); then
  mkdir -p "$KC_DIR"
  read -r KC_PORT KC_MGMT_PORT < <(pick_ports 2)
  [[ -n $KC_PORT && -n $KC_MGMT_PORT ]] || die "could not pick free ports for Keycloak"
  KC_BASE=http://$HOST:$KC_PORT
  KC_ADMIN_PASSWORD=$(rand_alnum 32)
  KC_T0=$SECONDS
  log "starting Keycloak (http $KC_BASE, management $HOST:$KC_MGMT_PORT) in the background"
  (
    trap 'kill -TERM $child 2>/dev/null; exit 143' TERM
    "$HERE/fetch-keycloak.sh" >"$KC_DIR/home" &
    child=$!
    wait "$child" || exit 97
    KC_HOME=$(tail -n 1 "$KC_DIR/home")
    JAVA_HOME=$("$HERE/find-java.sh" 21) || exit 98
    mkdir -p "$KC_DIR/data/h2"
    cp "$KC_HOME/tokenwell-initial-db/data/h2/keycloakdb.mv.db" "$KC_DIR/data/h2/" || exit 99
    echo "$KC_HOME" >"$KC_DIR/launched"
    export JAVA_HOME
    # Per-run H2 file and transaction log under the run dir (the shared
    # distribution is read only); C1 only: much faster JVM start, ample speed.
    export JAVA_OPTS_APPEND="-XX:TieredStopAtLevel=1 -Dkc.db-url-path=$KC_DIR -Dquarkus.transaction-manager.object-store.directory=$KC_DIR/transaction-logs"
    # At nice 10 while it starts, so that it does not slow down the other
    # servers' starts (it is waited for last anyway); back to 0 once ready.
    # Only as root: others may not lower a niceness again.
    nice=()
    ((EUID == 0)) && nice=(nice -n 10)
    exec "${nice[@]}" "$KC_HOME/bin/kc.sh" start-dev "${KC_START_OPTS[@]}" \
      --http-host=$HOST --http-port="$KC_PORT" \
      --http-management-host=$HOST --http-management-port="$KC_MGMT_PORT" \
      --hostname="$KC_BASE"
  ) </dev/null >"$KC_LOG" 2>&1 &
  KC_PID=$!
  register_pid "$KC_PID"
fi

# --------------------------------------------------------------------------
# Per-run signing keys for the private_key_jwt clients: PKCS#8 PEM (openssl
# genpkey) and the private JWK beside it (jwk-of.mjs; kid = RFC 7638
# thumbprint). rsa: RS256; ec: ES256; rotate-old / rotate-new: ES256, for
# Hydra's rotating client (only rotate-old is registered at start).
# --------------------------------------------------------------------------
KEYS_DIR=$RUN_DIR/keys
mkdir -p "$KEYS_DIR"
chmod 700 "$KEYS_DIR"
make_key() { # NAME ALG  -> $KEYS_DIR/NAME.pem, NAME.jwk.json, NAME.json (public facts)
  local name=$1 alg=$2
  if [[ $alg == RS* ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS_DIR/$name.pem" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS_DIR/$name.pem" 2>/dev/null
  fi || die "openssl genpkey ($name) failed"
  node "$HERE/jwk-of.mjs" "$KEYS_DIR/$name.pem" "$alg" "$KEYS_DIR/$name.jwk.json" |
    jq --arg pem "$KEYS_DIR/$name.pem" --arg jwk "$KEYS_DIR/$name.jwk.json" \
      '{kid, alg, kty, private_key_file: $pem, private_jwk_file: $jwk, public_jwk}' >"$KEYS_DIR/$name.json" ||
    die "jwk-of.mjs ($name) failed"
}
make_key rsa RS256
make_key ec ES256
make_key rotate-old ES256
make_key rotate-new ES256
key() { cat "$KEYS_DIR/$1.json"; }
pubjwk() { jq -c .public_jwk "$KEYS_DIR/$1.json"; }

# --------------------------------------------------------------------------
# oidc-provider: started first (it needs no Hydra), waited for after Hydra
# --------------------------------------------------------------------------
OIDC_DIR=$HERE/oidc-provider
ensure_node_modules() {
  local want have lockdir
  want=$(sha256sum "$OIDC_DIR/package-lock.json" | cut -d' ' -f1)
  have=$(cat "$OIDC_DIR/node_modules/.tokenwell-lock-sha256" 2>/dev/null || true)
  [[ $want == "$have" ]] && return 0
  lockdir=${TOKENWELL_CACHE:-$HERE/../../../.cache}
  mkdir -p "$lockdir"
  (
    flock 8
    have=$(cat "$OIDC_DIR/node_modules/.tokenwell-lock-sha256" 2>/dev/null || true)
    [[ $want == "$have" ]] && exit 0
    log "npm ci in $OIDC_DIR"
    cd "$OIDC_DIR"
    timeout 300 npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$want" >node_modules/.tokenwell-lock-sha256
  ) 8>"$lockdir/oidc-provider-npm.lock"
}
ensure_node_modules || die "npm ci for oidc-provider failed"

OIDC_T0=$SECONDS
OIDC_READY=$RUN_DIR/oidc-provider.json
OIDC_LOG=$RUN_DIR/oidc-provider.log
OIDC_PORT=0 \
  OIDC_READY_FILE="$OIDC_READY" \
  OIDC_ACCESS_TOKEN_TTL="$OIDC_TTL" \
  OIDC_SHORT_TTL="$SHORT_TTL" \
  OIDC_AUDIENCE="$AUDIENCE" \
  OIDC_PARENT_PID=$$ \
  OIDC_BULK_CLIENTS="$BULK" \
  node "$OIDC_DIR/server.mjs" </dev/null >"$OIDC_LOG" 2>&1 &
OIDC_PID=$!
register_pid "$OIDC_PID"

# --------------------------------------------------------------------------
# Hydra
# --------------------------------------------------------------------------
HYDRA_BIN=$("$HERE/build-hydra.sh" | tail -n 1) || die "building Hydra failed"
[[ -x $HYDRA_BIN ]] || die "build-hydra.sh printed no binary path"
HYDRA_VERSION=$("$HYDRA_BIN" version 2>/dev/null | awk '/^Version:/ { print $2 }')

# start_hydra LOG SCHEME [NAME=VALUE...]: starts `hydra serve all --dev` with
# the given extra environment, its public interface on SCHEME (http or https);
# sets STARTED_PID, STARTED_PUBLIC_PORT and STARTED_ADMIN_PORT.
start_hydra() {
  local log=$1 scheme=$2 attempt pid pub adm from
  shift 2
  : >>"$log"
  for attempt in 1 2 3; do
    from=$(($(wc -l <"$log") + 1))
    read -r pub adm < <(pick_ports 2)
    [[ -n $pub && -n $adm ]] || die "could not pick free ports"
    log "starting Hydra $HYDRA_VERSION (public $scheme://$HOST:$pub, admin $HOST:$adm, attempt $attempt)"
    echo "--- attempt $attempt: public $pub admin $adm" >>"$log"
    env \
      DSN=memory \
      SERVE_PUBLIC_HOST=$HOST SERVE_PUBLIC_PORT="$pub" \
      SERVE_ADMIN_HOST=$HOST SERVE_ADMIN_PORT="$adm" \
      URLS_SELF_ISSUER="$scheme://$HOST:$pub" \
      URLS_SELF_PUBLIC="$scheme://$HOST:$pub" \
      URLS_SELF_ADMIN="http://$HOST:$adm" \
      SECRETS_SYSTEM="$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)" \
      TTL_ACCESS_TOKEN="${HYDRA_TTL}s" \
      STRATEGIES_ACCESS_TOKEN=opaque \
      LOG_LEVEL=info \
      "$@" \
      "$HYDRA_BIN" serve all --dev --sqa-opt-out </dev/null >>"$log" 2>&1 &
    pid=$!
    register_pid "$pid"
    if wait_ready hydra "$pid" "$pub $adm" \
      "http://$HOST:$adm/health/ready" "$scheme://$HOST:$pub/health/ready"; then
      STARTED_PID=$pid STARTED_PUBLIC_PORT=$pub STARTED_ADMIN_PORT=$adm
      return 0
    fi
    stop_pids "$pid"
    # Retry only a lost race for a port (another process took it between
    # pick_ports and Hydra's bind); anything else is a real failure.
    tail -n "+$from" "$log" | grep -q 'address already in use' || return 1
    ((attempt < 3)) && log "port clash, retrying with other ports"
  done
  return 1
}
HYDRA_LOG=$RUN_DIR/hydra.log
t0=$SECONDS
start_hydra "$HYDRA_LOG" http || die "Hydra did not start"
HYDRA_PID=$STARTED_PID HYDRA_PUBLIC_PORT=$STARTED_PUBLIC_PORT HYDRA_ADMIN_PORT=$STARTED_ADMIN_PORT
HYDRA_PUBLIC_URL=http://$HOST:$HYDRA_PUBLIC_PORT
HYDRA_ADMIN_URL=http://$HOST:$HYDRA_ADMIN_PORT
HYDRA_TOKEN_URL=$HYDRA_PUBLIC_URL/oauth2/token
log "Hydra ready in $((SECONDS - t0))s: public $HYDRA_PUBLIC_URL admin $HYDRA_ADMIN_URL"

# The bulk clients (random printable ASCII + Unicode secrets), through the
# admin REST API, 8 at a time, while the CLI creates the others below. Their
# entries (with the secrets) go to a file in RUN_DIR only, never to a log.
HYDRA_BULK_JSON=$RUN_DIR/hydra-bulk-clients.json
BULK_T0=$SECONDS
node "$HERE/hydra-bulk-clients.mjs" "$HYDRA_ADMIN_URL" "$BULK" "$HYDRA_TTL" "$HYDRA_BULK_JSON" \
  </dev/null >"$RUN_DIR/hydra-bulk.log" 2>&1 &
HYDRA_BULK_PID=$!
register_pid "$HYDRA_BULK_PID" # stopped with the servers if startup fails first

# Clients, created with the hydra CLI. Each writes the CLI's JSON output to
# $RUN_DIR/hydra-client-ROLE.json.
hydra_create() {
  local role=$1
  shift
  timeout 30 "$HYDRA_BIN" create client --endpoint "$HYDRA_ADMIN_URL" --format json "$@" \
    >"$RUN_DIR/hydra-client-$role.json" 2>>"$RUN_DIR/hydra-cli.log" ||
    die "hydra create client ($role) failed"
  log "hydra client '$role': $(jq -r .client_id "$RUN_DIR/hydra-client-$role.json")"
}

# A secret an operator chose, with characters that must be form-urlencoded
# inside HTTP Basic (RFC 6749 2.3.1): ':' '%' '+' '&' ' ' '=' and non-ASCII.
SPECIAL_SECRET="tw:50%41 +&=é-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 8)"

hydra_create basic --name "Billing Worker" --grant-type client_credentials \
  --token-endpoint-auth-method client_secret_basic --scope "$SCOPES" --audience "$AUDIENCE"
hydra_create post --name "Billing Worker (post)" --grant-type client_credentials \
  --token-endpoint-auth-method client_secret_post --scope "$SCOPES" --audience "$AUDIENCE"
hydra_create jwt --name "Billing Worker (JWT)" --grant-type client_credentials \
  --token-endpoint-auth-method client_secret_basic --scope "$SCOPES" --audience "$AUDIENCE" \
  --access-token-strategy jwt
hydra_create special_secret --name "Billing Worker (chosen secret)" --grant-type client_credentials \
  --token-endpoint-auth-method client_secret_basic --scope "$SCOPES" --audience "$AUDIENCE" \
  --secret "$SPECIAL_SECRET"
# The CLI has no flag for per-client token lifespans; `--file` takes a whole
# client document, which may carry them.
jq -n --arg scope "$SCOPES" --arg aud "$AUDIENCE" --arg ttl "${SHORT_TTL}s" '{
  client_name: "Billing Worker (short TTL)",
  grant_types: ["client_credentials"],
  token_endpoint_auth_method: "client_secret_basic",
  scope: $scope,
  audience: [$aud],
  client_credentials_grant_access_token_lifespan: $ttl
}' >"$RUN_DIR/hydra-short-ttl-client.json"
hydra_create short_ttl --file "$RUN_DIR/hydra-short-ttl-client.json"

# private_key_jwt clients (RFC 7523): the CLI has --jwks-uri but no flag for
# an inline key set nor for token_endpoint_auth_signing_alg, so `--file`.
# Hydra enforces one signing alg per client (default RS256).
hydra_pkjwt_file() { # NAME ALG JWKS-JSON
  jq -n --arg name "$1" --arg alg "$2" --argjson jwks "$3" --arg scope "$SCOPES" --arg aud "$AUDIENCE" '{
    client_name: $name,
    grant_types: ["client_credentials"],
    token_endpoint_auth_method: "private_key_jwt",
    token_endpoint_auth_signing_alg: $alg,
    jwks: $jwks,
    scope: $scope,
    audience: [$aud]
  }'
}
hydra_pkjwt_file "Billing Worker (private_key_jwt RS256)" RS256 "{\"keys\":[$(pubjwk rsa)]}" >"$RUN_DIR/hydra-pkjwt-rs256.json"
hydra_create pkjwt_rs256 --file "$RUN_DIR/hydra-pkjwt-rs256.json"
hydra_pkjwt_file "Billing Worker (private_key_jwt ES256)" ES256 "{\"keys\":[$(pubjwk ec)]}" >"$RUN_DIR/hydra-pkjwt-es256.json"
hydra_create pkjwt_es256 --file "$RUN_DIR/hydra-pkjwt-es256.json"
# The rotating client starts with rotate-old only; a rotation test changes
# its key set with the admin API (JSON Patch, takes effect at once):
#   PATCH {admin_url}/admin/clients/{id}
#   [{"op":"replace","path":"/jwks","value":{"keys":[NEW, OLD]}}]
hydra_pkjwt_file "Billing Worker (private_key_jwt, rotating)" ES256 "{\"keys\":[$(pubjwk rotate-old)]}" >"$RUN_DIR/hydra-pkjwt-rotating.json"
hydra_create pkjwt_rotating --file "$RUN_DIR/hydra-pkjwt-rotating.json"

wait "$HYDRA_BULK_PID" || die "creating Hydra's bulk clients failed: $(tail -n 3 "$RUN_DIR/hydra-bulk.log")"
[[ $(jq length "$HYDRA_BULK_JSON") == "$BULK" ]] || die "Hydra's bulk client list is incomplete"
log "hydra: $BULK bulk clients (random ASCII + Unicode secrets) created in $((SECONDS - BULK_T0))s"

# Hydra generates its JWT access-token signing key lazily, on the first JWT
# token (RSA-4096: seconds on a busy machine). Issue one now, with the CLI,
# so tests neither pay that nor find an empty JWKS. With curl and one long
# timeout: the hydra CLI gives up on a slow first answer and retries with
# client_secret_post, which this client may not use (a 401 under load). The
# credentials go to curl on stdin (-K -), not on its command line.
jq -r '"user = \"" + .client_id + ":" + .client_secret + "\""' "$RUN_DIR/hydra-client-jwt.json" |
  curl -fsS --max-time 120 -K - -o /dev/null \
    --data-urlencode grant_type=client_credentials --data-urlencode "audience=$AUDIENCE" \
    "$HYDRA_TOKEN_URL" 2>>"$RUN_DIR/hydra-cli.log" ||
  die "warming up Hydra's JWT signing key failed (see hydra-cli.log)"

# --------------------------------------------------------------------------
# Hydra over TLS: a second instance whose public interface serves a
# certificate for 127.0.0.1 signed by a test CA made here and now. No host
# trusts that CA unless told to (TOKENWELL_CA_FILE), which is what the TLS
# tests check both ways.
# --------------------------------------------------------------------------
TLS_DIR=$RUN_DIR/tls
mkdir -p "$TLS_DIR"
(
  cd "$TLS_DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=tokenwell test CA $$" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout ca.key -out ca.pem
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout server.key -out server.csr
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem
  rm -f ca.key server.csr
) >"$RUN_DIR/test-ca.log" 2>&1 || die "making the test CA failed: $(tail -n 3 "$RUN_DIR/test-ca.log")"
TEST_CA_FILE=$TLS_DIR/ca.pem
HYDRA_TLS_LOG=$RUN_DIR/hydra-tls.log
t0=$SECONDS
start_hydra "$HYDRA_TLS_LOG" https \
  SERVE_PUBLIC_TLS_ENABLED=true \
  SERVE_PUBLIC_TLS_CERT_PATH="$TLS_DIR/server.pem" \
  SERVE_PUBLIC_TLS_KEY_PATH="$TLS_DIR/server.key" || die "Hydra (TLS) did not start"
HYDRA_TLS_PID=$STARTED_PID
HYDRA_TLS_PUBLIC_URL=https://$HOST:$STARTED_PUBLIC_PORT
HYDRA_TLS_ADMIN_URL=http://$HOST:$STARTED_ADMIN_PORT
log "Hydra (TLS) ready in $((SECONDS - t0))s: public $HYDRA_TLS_PUBLIC_URL admin $HYDRA_TLS_ADMIN_URL"
timeout 30 "$HYDRA_BIN" create client --endpoint "$HYDRA_TLS_ADMIN_URL" --format json \
  --name "Billing Worker (TLS)" --grant-type client_credentials \
  --token-endpoint-auth-method client_secret_basic --scope "$SCOPES" --audience "$AUDIENCE" \
  >"$RUN_DIR/hydra-client-tls-basic.json" 2>>"$RUN_DIR/hydra-cli.log" || die "hydra create client (tls) failed"

# Wait for oidc-provider (started above).
deadline=$((SECONDS + READY_TIMEOUT))
until [[ -s $OIDC_READY ]]; do
  kill -0 "$OIDC_PID" 2>/dev/null || die "oidc-provider exited during startup"
  ((SECONDS < deadline)) || die "oidc-provider wrote no ready file within ${READY_TIMEOUT}s"
  sleep 0.1
done
OIDC_ISSUER=$(jq -r .issuer "$OIDC_READY")
OIDC_PORT=${OIDC_ISSUER##*:}
wait_ready oidc-provider "$OIDC_PID" "$OIDC_PORT" "$OIDC_ISSUER/.well-known/openid-configuration" ||
  die "oidc-provider did not become ready"
log "oidc-provider ready in $((SECONDS - OIDC_T0))s: $OIDC_ISSUER"

# --------------------------------------------------------------------------
# Keycloak: wait for it (launched at the top), then create realm `tokenwell`
# with one admin CLI call: `kcadm.sh create realms -f realm.json` (one JVM
# start, ~3-10 s; each kcadm call is a JVM). The realm document carries the
# client scopes and the service-account clients, with secrets and public keys
# made for this run; Keycloak creates each client's service-account user.
# --------------------------------------------------------------------------
KC_JSON=null
if ((KEYCLOAK)); then
  # A first fetch (download, unpack, first start) has its own, longer budget.
  t_wait0=$SECONDS
  deadline=$((SECONDS + KC_FETCH_TIMEOUT))
  until [[ -s $KC_DIR/launched ]]; do
    kill -0 "$KC_PID" 2>/dev/null || die "Keycloak's launcher exited (fetch-keycloak.sh or find-java.sh failed; see keycloak.log)"
    ((SECONDS < deadline)) || die "fetching Keycloak took over ${KC_FETCH_TIMEOUT}s"
    sleep 0.2
  done
  KC_HOME=$(cat "$KC_DIR/launched")
  KC_VERSION=$(cat "$KC_HOME/version.txt" 2>/dev/null | awk '{ print $NF }')
  # kc.sh (a shell, KC_PID) runs java as its child and forwards TERM to it:
  # the JVM is the process that must own the ports.
  deadline=$((SECONDS + KC_READY_TIMEOUT))
  until KC_JAVA_PID=$(pgrep -P "$KC_PID" -x java); do
    kill -0 "$KC_PID" 2>/dev/null || die "Keycloak exited during startup"
    ((SECONDS < deadline)) || die "Keycloak's JVM did not start within ${KC_READY_TIMEOUT}s"
    sleep 0.1
  done
  READY_TIMEOUT=$((deadline - SECONDS)) wait_ready keycloak "$KC_JAVA_PID" "$KC_PORT $KC_MGMT_PORT" \
    "http://$HOST:$KC_MGMT_PORT/health/ready" "$KC_BASE/realms/master/.well-known/openid-configuration" ||
    die "Keycloak did not become ready"
  log "Keycloak $KC_VERSION ready $((SECONDS - KC_T0))s after launch ($((SECONDS - t_wait0))s waited for it): $KC_BASE"

  # Full speed from now on (niceness is per thread: every JVM thread).
  for t in /proc/"$KC_PID"/task/* /proc/"$KC_JAVA_PID"/task/*; do
    renice -n 0 -p "${t##*/}" >/dev/null 2>&1 || true
  done

  # This run's admin password (replacing the cached database's).
  KC_ADMIN_USER=$(jq -r .username "$KC_HOME/tokenwell-initial-db/admin.json")
  # The form goes through stdin: no password on any command line.
  kc_admin_token=$(jq -rj '"grant_type=password&client_id=admin-cli&username=\(.username | @uri)&password=\(.password | @uri)"' \
    "$KC_HOME/tokenwell-initial-db/admin.json" |
    curl -fsS --max-time 20 --data-binary @- "$KC_BASE/realms/master/protocol/openid-connect/token" |
    jq -r .access_token) ||
    die "Keycloak: admin login with the cached password failed"
  kc_admin_id=$(curl -fsS --max-time 20 -H "Authorization: Bearer $kc_admin_token" \
    "$KC_BASE/admin/realms/master/users?exact=true&username=$KC_ADMIN_USER" | jq -r '.[0].id') ||
    die "Keycloak: admin user lookup failed"
  jq -n --arg p "$KC_ADMIN_PASSWORD" '{type: "password", value: $p, temporary: false}' |
    curl -fsS --max-time 20 -X PUT -H "Authorization: Bearer $kc_admin_token" -H 'Content-Type: application/json' \
      --data-binary @- "$KC_BASE/admin/realms/master/users/$kc_admin_id/reset-password" ||
    die "Keycloak: setting this run's admin password failed"
  unset kc_admin_token

  KC_SECRET=$(rand_alnum 32)
  KC_SHORT_SECRET=$(rand_alnum 32)
  KC_SECRET_JWT_SECRET=$(rand_alnum 48) # HS256 wants >= 256 bits
  jq -n --arg aud "$AUDIENCE" --argjson ttl "$KC_TTL" --argjson short "$SHORT_TTL" \
    --arg secret "$KC_SECRET" --arg short_secret "$KC_SHORT_SECRET" --arg sjwt_secret "$KC_SECRET_JWT_SECRET" \
    --argjson jwks "{\"keys\":[$(pubjwk rsa),$(pubjwk ec)]}" '
    def scope($n): {name: $n, protocol: "openid-connect",
      attributes: {"include.in.token.scope": "true", "display.on.consent.screen": "false"}};
    def client($id; $name; $authn; $extra): {
      clientId: $id, name: $name, enabled: true, protocol: "openid-connect",
      publicClient: false, bearerOnly: false, serviceAccountsEnabled: true,
      standardFlowEnabled: false, implicitFlowEnabled: false, directAccessGrantsEnabled: false,
      clientAuthenticatorType: $authn,
      defaultClientScopes: ["basic"],
      optionalClientScopes: ["billing:read", "billing:write"],
      protocolMappers: [{name: "billing audience", protocol: "openid-connect",
        protocolMapper: "oidc-audience-mapper",
        config: {"included.custom.audience": $aud, "access.token.claim": "true",
                 "id.token.claim": "false", "introspection.token.claim": "true"}}]
    } * $extra;
    {
      realm: "tokenwell", enabled: true, accessTokenLifespan: $ttl,
      clientScopes: [scope("billing:read"), scope("billing:write")],
      clients: [
        client("keycloak-secret"; "Billing Worker"; "client-secret"; {secret: $secret}),
        client("keycloak-short"; "Billing Worker (short TTL)"; "client-secret";
          {secret: $short_secret, attributes: {"access.token.lifespan": ($short | tostring)}}),
        client("keycloak-jwt"; "Billing Worker (signed JWT)"; "client-jwt";
          {attributes: {"use.jwks.url": "false", "use.jwks.string": "true", "jwks.string": ($jwks | tojson)}}),
        client("keycloak-secret-jwt"; "Billing Worker (client_secret_jwt)"; "client-secret-jwt";
          {secret: $sjwt_secret, attributes: {"token.endpoint.auth.signing.alg": "HS256"}})
      ]
    }' >"$KC_DIR/realm.json"
  chmod 600 "$KC_DIR/realm.json"
  t0=$SECONDS
  JAVA_HOME=$("$HERE/find-java.sh" 21) KC_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" \
    KC_CLI_PASSWORD=$KC_ADMIN_PASSWORD timeout 120 "$KC_HOME/bin/kcadm.sh" create realms -f "$KC_DIR/realm.json" \
    --no-config --server "$KC_BASE" --realm master --user "$KC_ADMIN_USER" \
    </dev/null >>"$RUN_DIR/keycloak-cli.log" 2>&1 ||
    die "kcadm.sh create realms failed: $(tail -n 5 "$RUN_DIR/keycloak-cli.log")"
  log "keycloak: realm $KC_REALM and its clients created with kcadm.sh in $((SECONDS - t0))s"
  KC_ISSUER=$KC_BASE/realms/$KC_REALM
  curl -fsS --max-time 10 "$KC_ISSUER/.well-known/openid-configuration" >"$KC_DIR/discovery.json" ||
    die "Keycloak serves no discovery document for realm $KC_REALM"
  [[ $(jq -r .issuer "$KC_DIR/discovery.json") == "$KC_ISSUER" ]] ||
    die "Keycloak's issuer is $(jq -r .issuer "$KC_DIR/discovery.json"), expected $KC_ISSUER"
  KC_JSON=$(jq -n \
    --arg version "$KC_VERSION" --arg home "$KC_HOME" --argjson pid "$KC_JAVA_PID" --arg log "$KC_LOG" \
    --arg base "$KC_BASE" --arg mgmt "http://$HOST:$KC_MGMT_PORT" --arg realm "$KC_REALM" \
    --arg admin_user "$KC_ADMIN_USER" --arg admin_password "$KC_ADMIN_PASSWORD" \
    --arg aud "$AUDIENCE" --arg scopes "$SCOPES" --argjson ttl "$KC_TTL" --argjson short "$SHORT_TTL" \
    --arg secret "$KC_SECRET" --arg short_secret "$KC_SHORT_SECRET" --arg sjwt_secret "$KC_SECRET_JWT_SECRET" \
    --argjson rsa "$(key rsa)" --argjson ec "$(key ec)" \
    --slurpfile disc "$KC_DIR/discovery.json" '
    def entry($id; $secret; $method; $ttl): {client_id: $id, client_secret: $secret, auth_method: $method,
      scopes: ($scopes | split(" ")), audience: [$aud], access_token_format: "jwt", access_token_ttl_seconds: $ttl};
    {
      version: $version, home: $home, pid: $pid, log: $log,
      base_url: $base, management_url: $mgmt, realm: $realm,
      admin: {realm: "master", username: $admin_user, password: $admin_password,
              kcadm: ($home + "/bin/kcadm.sh")},
      issuer: $disc[0].issuer,
      token_url: $disc[0].token_endpoint,
      introspection_url: $disc[0].introspection_endpoint,
      revocation_url: $disc[0].revocation_endpoint,
      jwks_url: $disc[0].jwks_uri,
      discovery_url: ($disc[0].issuer + "/.well-known/openid-configuration"),
      token_endpoint_auth_methods_supported: $disc[0].token_endpoint_auth_methods_supported,
      access_token_ttl_seconds: $ttl,
      audience_parameter: null,
      default_audience: $aud,
      assertion_audiences: [$disc[0].issuer, $disc[0].token_endpoint],
      clients: {
        basic: entry("keycloak-secret"; $secret; "client_secret_basic"; $ttl),
        short_ttl: entry("keycloak-short"; $short_secret; "client_secret_basic"; $short)
      },
      jwt_clients: {
        private_key_jwt: (entry("keycloak-jwt"; null; "private_key_jwt"; $ttl) | del(.client_secret)
          + {signing_algs: ["RS256", "ES256"], keys: [$rsa, $ec]}),
        client_secret_jwt: (entry("keycloak-secret-jwt"; $sjwt_secret; "client_secret_jwt"; $ttl)
          + {signing_algs: ["HS256"]})
      }
    }')
fi

# --------------------------------------------------------------------------
# servers.json
# --------------------------------------------------------------------------
SERVERS_JSON=$RUN_DIR/servers.json
hydra_client_json() { # ROLE FORMAT TTL_SECONDS
  jq --arg fmt "$2" --argjson ttl "$3" '{
    client_id, client_secret, name: .client_name,
    auth_method: .token_endpoint_auth_method,
    scopes: (.scope | split(" ")),
    audience,
    access_token_format: $fmt,
    access_token_ttl_seconds: $ttl
  }' "$RUN_DIR/hydra-client-$1.json"
}
hydra_pkjwt_json() { # ROLE KEY... : a private_key_jwt client entry
  local role=$1 k keys="[]"
  shift
  for k in "$@"; do keys=$(jq -c --argjson k "$(key "$k")" '. + [$k]' <<<"$keys"); done
  jq --argjson ttl "$HYDRA_TTL" --argjson keys "$keys" '{
    client_id, name: .client_name,
    auth_method: .token_endpoint_auth_method,
    signing_alg: .token_endpoint_auth_signing_alg,
    scopes: (.scope | split(" ")),
    audience,
    access_token_format: "opaque",
    access_token_ttl_seconds: $ttl,
    keys: $keys
  }' "$RUN_DIR/hydra-client-$role.json"
}
HYDRA_JWT_CLIENTS=$(jq -n \
  --argjson rs256 "$(hydra_pkjwt_json pkjwt_rs256 rsa)" \
  --argjson es256 "$(hydra_pkjwt_json pkjwt_es256 ec)" \
  --argjson rotating "$(hydra_pkjwt_json pkjwt_rotating rotate-old)" \
  --argjson next "$(key rotate-new)" \
  '{rs256: $rs256, es256: $es256, rotating: ($rotating + {next_key: $next})}')
jq -n \
  --arg run_dir "$RUN_DIR" \
  --arg hydra_version "$HYDRA_VERSION" \
  --arg hydra_bin "$HYDRA_BIN" \
  --argjson hydra_pid "$HYDRA_PID" \
  --arg hydra_log "$HYDRA_LOG" \
  --arg pub "$HYDRA_PUBLIC_URL" \
  --arg adm "$HYDRA_ADMIN_URL" \
  --arg aud "$AUDIENCE" \
  --argjson hydra_ttl "$HYDRA_TTL" \
  --argjson basic "$(hydra_client_json basic opaque "$HYDRA_TTL")" \
  --argjson post "$(hydra_client_json post opaque "$HYDRA_TTL")" \
  --argjson jwt "$(hydra_client_json jwt jwt "$HYDRA_TTL")" \
  --argjson special "$(hydra_client_json special_secret opaque "$HYDRA_TTL")" \
  --argjson short "$(hydra_client_json short_ttl opaque "$SHORT_TTL")" \
  --slurpfile hydra_bulk "$HYDRA_BULK_JSON" \
  --arg tls_pub "$HYDRA_TLS_PUBLIC_URL" \
  --arg tls_adm "$HYDRA_TLS_ADMIN_URL" \
  --argjson tls_pid "$HYDRA_TLS_PID" \
  --arg tls_log "$HYDRA_TLS_LOG" \
  --arg ca_file "$TEST_CA_FILE" \
  --argjson tls_basic "$(hydra_client_json tls-basic opaque "$HYDRA_TTL")" \
  --arg oidc_log "$OIDC_LOG" \
  --slurpfile oidc "$OIDC_READY" \
  --argjson hydra_jwt_clients "$HYDRA_JWT_CLIENTS" \
  --argjson keycloak "$KC_JSON" \
  '{
    schema_version: 1,
    run_dir: $run_dir,
    hydra: {
      version: $hydra_version,
      bin: $hydra_bin,
      pid: $hydra_pid,
      log: $hydra_log,
      issuer: $pub,
      public_url: $pub,
      admin_url: $adm,
      token_url: ($pub + "/oauth2/token"),
      introspection_url: ($adm + "/admin/oauth2/introspect"),
      revocation_url: ($pub + "/oauth2/revoke"),
      jwks_url: ($pub + "/.well-known/jwks.json"),
      discovery_url: ($pub + "/.well-known/openid-configuration"),
      access_token_ttl_seconds: $hydra_ttl,
      audience_parameter: "audience",
      default_audience: null,
      clients: {basic: $basic, post: $post, jwt: $jwt, special_secret: $special, short_ttl: $short},
      bulk_clients: $hydra_bulk[0],
      assertion_audience: ($pub + "/oauth2/token"),
      jwt_clients: $hydra_jwt_clients
    },
    hydra_tls: {
      version: $hydra_version,
      pid: $tls_pid,
      log: $tls_log,
      issuer: $tls_pub,
      public_url: $tls_pub,
      admin_url: $tls_adm,
      token_url: ($tls_pub + "/oauth2/token"),
      ca_file: $ca_file,
      clients: {basic: $tls_basic}
    },
    oidc_provider: ($oidc[0] + {log: $oidc_log}),
    keycloak: $keycloak
  }' >"$SERVERS_JSON.tmp"
mv "$SERVERS_JSON.tmp" "$SERVERS_JSON"

export TOKENWELL_SERVERS=$SERVERS_JSON
export HYDRA_BIN HYDRA_ADMIN_URL HYDRA_PUBLIC_URL HYDRA_TOKEN_URL
export HYDRA_TLS_TOKEN_URL=$HYDRA_TLS_PUBLIC_URL/oauth2/token TOKENWELL_TEST_CA_FILE=$TEST_CA_FILE
export OIDC_PROVIDER_ISSUER=$OIDC_ISSUER
export OIDC_PROVIDER_TOKEN_URL
OIDC_PROVIDER_TOKEN_URL=$(jq -r .token_url "$OIDC_READY")
if ((KEYCLOAK)); then
  export KEYCLOAK_ISSUER=$KC_ISSUER KEYCLOAK_TOKEN_URL
  KEYCLOAK_TOKEN_URL=$(jq -r .token_url <<<"$KC_JSON")
fi

# --------------------------------------------------------------------------
# Run CMD
# --------------------------------------------------------------------------
log "servers ready; TOKENWELL_SERVERS=$SERVERS_JSON; running: $*"
# In the background (with our stdin) so that a TERM sent to this script is
# handled at once (bash defers traps while a foreground child runs).
CMD_RAN=1
"$@" <&0 &
CMD_PID=$!
echo "$CMD_PID" >>"$RUN_DIR/pids" # the watchdog stops CMD too
rc=0
wait "$CMD_PID" || rc=$?
CMD_PID=
if ((rc != 0)); then
  log "command exited with status $rc; tails of the server logs follow"
  print_logs 40
fi
exit "$rc"
