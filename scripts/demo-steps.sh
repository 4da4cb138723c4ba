#!/usr/bin/env bash
# The demo itself, run by scripts/demo.sh inside with-servers.sh (which exports
# HYDRA_BIN, HYDRA_ADMIN_URL, HYDRA_TOKEN_URL and stops the servers afterwards).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
work=$(mktemp -d)
api_pid=
cleanup() {
  if [[ -n $api_pid ]]; then
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say "Hydra is up. An operator registers the billing worker as an OAuth 2.0 client:"
audience=https://billing.tokenwell.test
echo "\$ hydra create client --name \"Billing Worker\" --grant-type client_credentials \\"
echo "    --token-endpoint-auth-method client_secret_basic --scope \"billing:read billing:write\" \\"
echo "    --audience $audience --format json"
"$HYDRA_BIN" create client --endpoint "$HYDRA_ADMIN_URL" --name "Billing Worker" \
  --grant-type client_credentials --token-endpoint-auth-method client_secret_basic \
  --scope "billing:read billing:write" --audience "$audience" --format json >"$work/client.json"
CLIENT_ID=$(jq -r .client_id "$work/client.json")
CLIENT_SECRET=$(jq -r .client_secret "$work/client.json")
echo "client_id: $CLIENT_ID  (the secret is kept out of this output)"

python3 examples/demo-api/api.py --introspect "$HYDRA_ADMIN_URL/admin/oauth2/introspect" \
  --port-file "$work/api.port" 2>"$work/api.log" &
api_pid=$!
for _ in $(seq 100); do [[ -s $work/api.port ]] && break; kill -0 "$api_pid" || exit 1; sleep 0.05; done
API_URL="http://127.0.0.1:$(cat "$work/api.port")/invoices"
echo "A billing API that only accepts tokens Hydra says are active listens at $API_URL"

export CLIENT_ID CLIENT_SECRET API_URL TOKEN_URL=$HYDRA_TOKEN_URL SCOPE="billing:read billing:write" AUDIENCE=$audience

say "1. The TypeScript billing worker (npm package tokenwell): ServiceAccount.fromEnv(), account.fetch()"
make --no-print-directory -s -C examples/node-worker build >/dev/null
WORKER_ITERATIONS=3 node examples/node-worker/dist/worker.js

say "2. The Python cron job (pip package tokenwell), run twice: the second run reuses the cached token"
export TOKEN_CACHE_PATH=$work/cron-token.json
echo "-- first run"
bindings/python/.venv/bin/python examples/python-cron/cron.py
echo "-- second run, a minute later in real life"
bindings/python/.venv/bin/python examples/python-cron/cron.py

say "3. A WebAssembly component that calls the API, composed with tokenwell's provider component"
make --no-print-directory -s -C examples/wasi-compose run

say "4. A Rust service with the blocking driver: eight threads, one token request"
cargo run -q -p tokenwell-example-rust-service

say "5. The same billing worker with a signed key instead of a secret (private_key_jwt), configured by issuer only"
echo "An ES256 key pair, made here; Hydra gets only its public JWK (kid = RFC 7638 thumbprint):"
echo "\$ openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out billing-key.pem"
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/billing-key.pem" 2>/dev/null)
node tests/integration/servers/jwk-of.mjs "$work/billing-key.pem" ES256 "$work/billing-key.jwk.json" >"$work/billing-key.json"
jq -n --arg scope "billing:read billing:write" --arg aud "$audience" --argjson jwk "$(jq -c .public_jwk "$work/billing-key.json")" '{
  client_name: "Billing Worker (signed key)", grant_types: ["client_credentials"],
  token_endpoint_auth_method: "private_key_jwt", token_endpoint_auth_signing_alg: "ES256",
  jwks: {keys: [$jwk]}, scope: $scope, audience: [$aud]}' >"$work/signed-client.json"
echo "\$ hydra create client --file signed-client.json   (token_endpoint_auth_method private_key_jwt, jwks: the public key)"
"$HYDRA_BIN" create client --endpoint "$HYDRA_ADMIN_URL" --file "$work/signed-client.json" --format json >"$work/signed.json"
echo "client_id: $(jq -r .client_id "$work/signed.json")  kid: $(jq -r .kid "$work/billing-key.json")"
echo "The worker gets ISSUER_URL=$HYDRA_PUBLIC_URL and CLIENT_PRIVATE_KEY_FILE, no secret and no token URL:"
(
  unset CLIENT_SECRET TOKEN_URL
  CLIENT_ID=$(jq -r .client_id "$work/signed.json") ISSUER_URL=$HYDRA_PUBLIC_URL \
    CLIENT_PRIVATE_KEY_FILE=$work/billing-key.pem WORKER_ITERATIONS=2 WORKER_INTERVAL_MS=500 \
    node examples/node-worker/dist/worker.js
)

say "Done. Every token came from the same engine; stopping Hydra and the other servers."
