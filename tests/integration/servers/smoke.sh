#!/usr/bin/env bash
# Smoke check of the loopback servers, with curl and the hydra CLI only.
# Run under the harness:
#
#   tests/integration/servers/with-servers.sh tests/integration/servers/smoke.sh
#
# For Hydra and oidc-provider alike: a token with client_secret_basic and
# with client_secret_post, a JWT access token, the chosen-secret client
# (properly form-urlencoded in HTTP Basic), the short-TTL client, and a wrong
# secret answered 401 invalid_client. For Hydra, `hydra introspect token`
# must say active with sub == client_id.
#
# Ends with the line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

: "${TOKENWELL_SERVERS:?run me under with-servers.sh}"
S=$TOKENWELL_SERVERS
PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); printf 'ok   %s\n' "$1"; }
bad() { FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$1"; [[ -n ${2:-} ]] && printf '     %s\n' "$2"; }
check() { # NAME JQ-EXPR JSON : pass if the expression is true on the JSON
  if jq -e "$2" >/dev/null 2>&1 <<<"$3"; then ok "$1"; else bad "$1" "$3"; fi
}
j() { jq -r "$1" "$S"; }
urlenc() { jq -rn --arg v "$1" '$v | @uri'; }

# token_basic URL ID SECRET [FORM...]: HTTP Basic with id and secret
# form-urlencoded first (RFC 6749 2.3.1). Prints "STATUS BODY".
token_basic() {
  local url=$1 id=$2 secret=$3 cred
  shift 3
  cred=$(printf '%s:%s' "$(urlenc "$id")" "$(urlenc "$secret")" | base64 -w0)
  curl -sS --max-time 10 -o - -w '\n%{http_code}' -H "Authorization: Basic $cred" \
    -d grant_type=client_credentials "$@" "$url"
}
# token_post URL ID SECRET [FORM...]: client_secret_post.
token_post() {
  local url=$1 id=$2 secret=$3
  shift 3
  curl -sS --max-time 10 -o - -w '\n%{http_code}' \
    -d grant_type=client_credentials --data-urlencode "client_id=$id" \
    --data-urlencode "client_secret=$secret" "$@" "$url"
}
# Split "BODY\nSTATUS" into globals BODY and STATUS.
split() { STATUS=${1##*$'\n'}; BODY=${1%$'\n'*}; }

jwt_payload() { # prints the JSON payload of a JWT
  local p=${1#*.}
  p=${p%%.*}
  p=$(tr '_-' '/+' <<<"$p")
  while ((${#p} % 4)); do p+='='; done
  base64 -d <<<"$p"
}

for srv in hydra oidc_provider; do
  echo "# $srv"
  token_url=$(j ".$srv.token_url")
  aud_param=$(j ".$srv.audience_parameter")
  aud=$(j ".$srv.clients.basic.audience[0]")
  cid() { j ".$srv.clients.$1.client_id"; }
  csec() { j ".$srv.clients.$1.client_secret"; }

  # client_secret_basic
  split "$(token_basic "$token_url" "$(cid basic)" "$(csec basic)" \
    -d "scope=billing:read billing:write" --data-urlencode "$aud_param=$aud")"
  check "$srv basic: 200 with a bearer token" \
    "$STATUS == 200 and (.access_token | length > 0) and (.token_type | ascii_downcase) == \"bearer\" and .expires_in > 0" \
    "$(jq -c --arg s "$STATUS" '. + {http_status: $s}' <<<"$BODY" 2>/dev/null || echo "$STATUS $BODY")"
  check "$srv basic: both scopes granted" '(.scope | split(" ") | sort) == ["billing:read", "billing:write"]' "$BODY"
  basic_token=$(jq -r .access_token <<<"$BODY")

  # client_secret_post
  split "$(token_post "$token_url" "$(cid post)" "$(csec post)" \
    -d "scope=billing:read" --data-urlencode "$aud_param=$aud")"
  check "$srv post: 200 with a bearer token, scope billing:read" \
    "$STATUS == 200 and (.access_token | length > 0) and .scope == \"billing:read\"" "$BODY"
  post_token=$(jq -r .access_token <<<"$BODY")

  # JWT access token
  split "$(token_basic "$token_url" "$(cid jwt)" "$(csec jwt)" \
    -d "scope=billing:read" --data-urlencode "$aud_param=$aud")"
  jwt=$(jq -r '.access_token // ""' <<<"$BODY")
  payload=$(jwt_payload "$jwt" 2>/dev/null || echo '{}')
  check "$srv jwt: access token is a JWT with sub == client_id and the audience" \
    "(.sub == \"$(cid jwt)\") and ((.aud | if type == \"array\" then . else [.] end) | index(\"$aud\") != null)" \
    "$payload"

  # Chosen secret with : % + & space = é, correctly encoded.
  split "$(token_basic "$token_url" "$(cid special_secret)" "$(csec special_secret)" -d "scope=billing:read")"
  check "$srv special secret (form-urlencoded in Basic): 200" "$STATUS == 200 and (.access_token | length > 0)" "$BODY"
  # The same secret NOT form-urlencoded must fail: the server decodes it.
  raw=$(printf '%s:%s' "$(cid special_secret)" "$(csec special_secret)" | base64 -w0)
  split "$(curl -sS --max-time 10 -o - -w '\n%{http_code}' -H "Authorization: Basic $raw" \
    -d grant_type=client_credentials "$token_url")"
  check "$srv special secret (raw in Basic): rejected" "$STATUS != 200" "$BODY"

  # Short TTL
  ttl=$(j ".$srv.clients.short_ttl.access_token_ttl_seconds")
  split "$(token_basic "$token_url" "$(cid short_ttl)" "$(csec short_ttl)" -d "scope=billing:read")"
  check "$srv short_ttl: expires_in <= $ttl" "$STATUS == 200 and .expires_in > 0 and .expires_in <= $ttl" "$BODY"
  if [[ $srv == hydra ]]; then hydra_short=$(jq -r .access_token <<<"$BODY"); else oidc_short=$(jq -r .access_token <<<"$BODY"); fi

  # Wrong secret: 401 invalid_client, with basic and with post.
  split "$(token_basic "$token_url" "$(cid basic)" "wrong-$(csec basic)")"
  check "$srv wrong secret (basic): 401 invalid_client" "$STATUS == 401 and .error == \"invalid_client\"" \
    "$(jq -c --arg s "$STATUS" '. + {http_status: $s}' <<<"$BODY" 2>/dev/null || echo "$STATUS $BODY")"
  split "$(token_post "$token_url" "$(cid post)" "wrong-$(csec post)")"
  check "$srv wrong secret (post): 401 invalid_client" "$STATUS == 401 and .error == \"invalid_client\"" \
    "$(jq -c --arg s "$STATUS" '. + {http_status: $s}' <<<"$BODY" 2>/dev/null || echo "$STATUS $BODY")"

  # Introspection
  if [[ $srv == hydra ]]; then
    for role in basic post; do
      tok=$basic_token
      [[ $role == post ]] && tok=$post_token
      out=$(timeout 30 "$(j .hydra.bin)" introspect token --endpoint "$(j .hydra.admin_url)" \
        --format json "$tok" 2>&1)
      check "hydra introspect token ($role): active, sub == client_id, audience" \
        ".active == true and .sub == \"$(cid "$role")\" and .client_id == \"$(cid "$role")\" and (.aud | index(\"$aud\") != null)" \
        "$out"
    done
  else
    for role in basic post; do
      tok=$basic_token
      [[ $role == post ]] && tok=$post_token
      split "$(curl -sS --max-time 10 -o - -w '\n%{http_code}' \
        --data-urlencode "client_id=$(cid post)" --data-urlencode "client_secret=$(csec post)" \
        --data-urlencode "token=$tok" "$(j .oidc_provider.introspection_url)")"
      check "oidc_provider introspection ($role): active, client_id, aud" \
        ".active == true and .client_id == \"$(cid "$role")\" and .aud == \"$aud\"" "$BODY"
    done
  fi
done

# The short-TTL tokens really expire on the servers: poll introspection
# (bounded) until both say inactive.
echo "# short TTL expiry"
short_ttl=$(j '[.hydra.clients.short_ttl.access_token_ttl_seconds, .oidc_provider.clients.short_ttl.access_token_ttl_seconds] | max')
hydra_active() {
  timeout 30 "$(j .hydra.bin)" introspect token --endpoint "$(j .hydra.admin_url)" --format json "$1" |
    jq -r .active
}
oidc_active() {
  curl -sS --max-time 10 --data-urlencode "client_id=$(j .oidc_provider.clients.basic.client_id)" \
    --data-urlencode "client_secret=$(j .oidc_provider.clients.basic.client_secret)" \
    --data-urlencode "token=$1" "$(j .oidc_provider.introspection_url)" | jq -r .active
}
h=$(hydra_active "$hydra_short") o=$(oidc_active "$oidc_short")
deadline=$((SECONDS + short_ttl + 10))
while [[ $h == true || $o == true ]] && ((SECONDS < deadline)); do
  sleep 0.5
  [[ $h == true ]] && h=$(hydra_active "$hydra_short")
  [[ $o == true ]] && o=$(oidc_active "$oidc_short")
done
check "hydra short_ttl token inactive after its TTL" '. == false' "$h"
check "oidc_provider short_ttl token inactive after its TTL" '. == false' "$o"

echo "$PASS passed, $FAIL failed"
((FAIL == 0))
