#!/usr/bin/env bash
# Smoke check of the loopback servers, with curl, openssl and the hydra CLI only.
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
# Client assertions (RFC 7523, signed here with openssl: RS256, ES256,
# HS256): Hydra's private_key_jwt clients get tokens, a replayed assertion
# (same jti) is refused, a wrong key is refused, and the rotating client's
# key set is changed through the admin API (new key added, old removed, then
# restored). Keycloak (unless "keycloak" is null): the secret client, the
# signed-JWT client (RS256 and ES256, aud = token endpoint and = issuer), the
# client_secret_jwt client, a replay, the short-TTL client, and a key rotation
# on the signed-JWT client (its "jwks.string" replaced through the admin REST
# API, then restored). The replay
# answers are printed as "note" lines.
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
j() { jq -r "$@" "$S"; } # [JQ-FLAGS] FILTER
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


# --------------------------------------------------------------------------
# Client assertions with openssl only.
# --------------------------------------------------------------------------
ASSERTION_TYPE=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# assertion KEY ALG KID ISS AUD [JTI]: a signed client assertion. KEY is a
# PEM private key path (RS256, ES256) or the secret (HS256). iss = sub = ISS.
assertion() {
  local key=$1 alg=$2 kid=$3 iss=$4 aud=$5 jti=${6:-} now input sig r s
  now=$(date +%s)
  [[ -n $jti ]] || jti=$(openssl rand -hex 16)
  input="$(printf '%s' "$(jq -cn --arg alg "$alg" --arg kid "$kid" \
    '{alg: $alg, typ: "JWT"} + (if $kid == "" then {} else {kid: $kid} end)')" | b64url).$(printf '%s' "$(jq -cn \
    --arg iss "$iss" --arg aud "$aud" --arg jti "$jti" --argjson now "$now" \
    '{iss: $iss, sub: $iss, aud: $aud, iat: $now, exp: ($now + 60), jti: $jti}')" | b64url)"
  case $alg in
    RS256) sig=$(printf '%s' "$input" | openssl dgst -sha256 -sign "$key" -binary | b64url) ;;
    HS256) sig=$(printf '%s' "$input" | openssl dgst -sha256 -mac HMAC -macopt "key:$key" -binary | b64url) ;;
    ES256) # DER ECDSA-Sig-Value -> the 64-byte r || s that JWS wants
      read -r r s < <(printf '%s' "$input" | openssl dgst -sha256 -sign "$key" -binary |
        openssl asn1parse -inform DER | awk -F: '/INTEGER/ { printf "%s ", $NF } END { print "" }')
      fix() { local h=$1; while ((${#h} > 64)); do h=${h#??}; done; while ((${#h} < 64)); do h=0$h; done; echo "$h"; }
      sig=$(printf '%s%s' "$(fix "$r")" "$(fix "$s")" | xxd -r -p | b64url) ;;
    *) echo "assertion: unsupported alg $alg" >&2; return 1 ;;
  esac
  printf '%s.%s' "$input" "$sig"
}
# token_assert URL CLIENT_ID ASSERTION [FORM...]: prints "BODY\nSTATUS".
token_assert() {
  local url=$1 id=$2 a=$3
  shift 3
  curl -sS --max-time 10 -o - -w '\n%{http_code}' -d grant_type=client_credentials \
    --data-urlencode "client_id=$id" -d "client_assertion_type=$ASSERTION_TYPE" \
    --data-urlencode "client_assertion=$a" "$@" "$url"
}
with_status() { jq -c --arg s "$STATUS" '. + {http_status: $s}' <<<"$BODY" 2>/dev/null || echo "$STATUS $BODY"; }
note() { printf 'note %s\n' "$*"; }

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

# --------------------------------------------------------------------------
# Hydra: private_key_jwt
# --------------------------------------------------------------------------
echo "# hydra private_key_jwt"
h_token=$(j .hydra.token_url)
h_aud=$(j .hydra.assertion_audience)
hk() { j ".hydra.jwt_clients.$1.keys[0].$2"; } # ROLE FIELD
hid() { j ".hydra.jwt_clients.$1.client_id"; }
AUDIENCE_H=$(j '.hydra.jwt_clients.rs256.audience[0]')
for role in rs256 es256; do
  a=$(assertion "$(hk $role private_key_file)" "$(hk $role alg)" "$(hk $role kid)" "$(hid $role)" "$h_aud")
  split "$(token_assert "$h_token" "$(hid $role)" "$a" -d "scope=billing:read" --data-urlencode "audience=$AUDIENCE_H")"
  check "hydra private_key_jwt $role: 200 with a bearer token" \
    "$STATUS == 200 and (.access_token | length > 0) and .scope == \"billing:read\"" "$(with_status)"
done
# Replay: the ES256 assertion above, sent again.
split "$(token_assert "$h_token" "$(hid es256)" "$a")"
check "hydra private_key_jwt replayed assertion (same jti): refused with 4xx" "$STATUS >= 400 and $STATUS < 500 and (.error | length > 0)" "$(with_status)"
note "hydra replay -> $(with_status)"
# aud = the issuer instead of the token endpoint: record what Hydra says.
a=$(assertion "$(hk rs256 private_key_file)" RS256 "$(hk rs256 kid)" "$(hid rs256)" "$(j .hydra.issuer)")
split "$(token_assert "$h_token" "$(hid rs256)" "$a")"
note "hydra aud=issuer (not the token endpoint) -> $(with_status)"
# Wrong key: the RS256 client's id, signed with the ES256 client's key.
a=$(assertion "$(hk es256 private_key_file)" ES256 "$(hk es256 kid)" "$(hid rs256)" "$h_aud")
split "$(token_assert "$h_token" "$(hid rs256)" "$a")"
check "hydra private_key_jwt with a key the client does not have: 401 invalid_client" \
  "$STATUS == 401 and .error == \"invalid_client\"" "$(with_status)"
note "hydra wrong key -> $(with_status)"

# Rotation on the rotating client, through the admin API (JSON Patch).
rot=$(hid rotating)
old_pem=$(hk rotating private_key_file) old_kid=$(hk rotating kid)
new_pem=$(j .hydra.jwt_clients.rotating.next_key.private_key_file) new_kid=$(j .hydra.jwt_clients.rotating.next_key.kid)
old_jwk=$(j -c '.hydra.jwt_clients.rotating.keys[0].public_jwk') new_jwk=$(j -c '.hydra.jwt_clients.rotating.next_key.public_jwk')
set_jwks() { # JWKS-JSON
  curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
    --data-binary "[{\"op\":\"replace\",\"path\":\"/jwks\",\"value\":$1}]" "$(j .hydra.admin_url)/admin/clients/$rot"
}
rot_call() { # PEM KID: a token request of the rotating client; sets STATUS, BODY
  split "$(token_assert "$h_token" "$rot" "$(assertion "$1" ES256 "$2" "$rot" "$h_aud")")"
}
rot_call "$new_pem" "$new_kid"
check "hydra rotating: the new key is refused before it is added" "$STATUS >= 400 and $STATUS < 500" "$(with_status)"
note "hydra key not in the client's key set (same alg) -> $(with_status)"
check "hydra rotating: PATCH /admin/clients/{id} adds the new key" '. == 200' "$(set_jwks "{\"keys\":[$new_jwk,$old_jwk]}")"
rot_call "$new_pem" "$new_kid"
check "hydra rotating: new key accepted at once" "$STATUS == 200" "$(with_status)"
rot_call "$old_pem" "$old_kid"
check "hydra rotating: old key still accepted" "$STATUS == 200" "$(with_status)"
check "hydra rotating: PATCH removes the old key" '. == 200' "$(set_jwks "{\"keys\":[$new_jwk]}")"
rot_call "$old_pem" "$old_kid"
check "hydra rotating: old key refused at once" "$STATUS >= 400 and $STATUS < 500" "$(with_status)"
rot_call "$new_pem" "$new_kid"
check "hydra rotating: new key accepted" "$STATUS == 200" "$(with_status)"
check "hydra rotating: key set restored (old key only)" '. == 200' "$(set_jwks "{\"keys\":[$old_jwk]}")"

# --------------------------------------------------------------------------
# Keycloak
# --------------------------------------------------------------------------
if [[ $(j '.keycloak') == null ]]; then
  echo "# keycloak: skipped (TOKENWELL_KEYCLOAK=0)"
else
  echo "# keycloak"
  k_token=$(j .keycloak.token_url)
  k_iss=$(j .keycloak.issuer)
  kaud=$(j .keycloak.default_audience)
  kc() { j ".keycloak.clients.$1.$2"; }
  split "$(token_basic "$k_token" "$(kc basic client_id)" "$(kc basic client_secret)" -d "scope=billing:read billing:write")"
  check "keycloak secret client (basic): 200 with a bearer token" \
    "$STATUS == 200 and (.access_token | length > 0) and (.token_type | ascii_downcase) == \"bearer\" and .expires_in > 0" "$(with_status)"
  check "keycloak secret client: both scopes granted" '(.scope | split(" ")) as $s | ($s | index("billing:read")) != null and ($s | index("billing:write")) != null' "$BODY"
  payload=$(jwt_payload "$(jq -r '.access_token // ""' <<<"$BODY")" 2>/dev/null || echo '{}')
  check "keycloak access token: JWT with iss, azp == client_id and the billing audience" \
    "(.iss == \"$k_iss\") and (.azp == \"$(kc basic client_id)\") and ((.aud | if type == \"array\" then . else [.] end) | index(\"$kaud\") != null)" "$payload"
  split "$(token_post "$k_token" "$(kc basic client_id)" "$(kc basic client_secret)")"
  check "keycloak secret client (post): 200" "$STATUS == 200 and (.access_token | length > 0)" "$(with_status)"
  split "$(token_basic "$k_token" "$(kc basic client_id)" "wrong-$(kc basic client_secret)")"
  # Keycloak says unauthorized_client here (Hydra and oidc-provider: invalid_client).
  check "keycloak wrong secret: 401 unauthorized_client" "$STATUS == 401 and .error == \"unauthorized_client\"" "$(with_status)"
  note "keycloak wrong secret -> $(with_status)"
  ttl=$(kc short_ttl access_token_ttl_seconds)
  split "$(token_basic "$k_token" "$(kc short_ttl client_id)" "$(kc short_ttl client_secret)")"
  check "keycloak short_ttl: expires_in <= $ttl" "$STATUS == 200 and .expires_in > 0 and .expires_in <= $ttl" "$(with_status)"

  kj() { j ".keycloak.jwt_clients.private_key_jwt.$1"; }
  kid_=$(kj client_id)
  for i in 0 1; do
    for aud_ in "$k_token" "$k_iss"; do
      alg=$(kj "keys[$i].alg")
      a=$(assertion "$(kj "keys[$i].private_key_file")" "$alg" "$(kj "keys[$i].kid")" "$kid_" "$aud_")
      split "$(token_assert "$k_token" "$kid_" "$a" -d "scope=billing:read")"
      what="token endpoint"
      [[ $aud_ == "$k_iss" ]] && what=issuer
      check "keycloak signed JWT $alg, aud = $what: 200" \
        "$STATUS == 200 and (.access_token | length > 0) and .scope == \"billing:read\"" "$(with_status)"
    done
  done
  split "$(token_assert "$k_token" "$kid_" "$a")"
  check "keycloak signed JWT replayed (same jti): refused with 4xx" "$STATUS >= 400 and $STATUS < 500 and (.error | length > 0)" "$(with_status)"
  note "keycloak replay -> $(with_status)"
  a=$(assertion "$(j .hydra.jwt_clients.rotating.next_key.private_key_file)" ES256 "$(j .hydra.jwt_clients.rotating.next_key.kid)" "$kid_" "$k_token")
  split "$(token_assert "$k_token" "$kid_" "$a")"
  check "keycloak signed JWT with an unknown key: 4xx" "$STATUS >= 400 and $STATUS < 500" "$(with_status)"
  note "keycloak unknown key -> $(with_status)"

  # Rotation on keycloak-jwt: replace the client's "jwks.string" attribute
  # (admin REST API; kcadm.sh update does the same, one JVM per call).
  kc_admin_token=$(curl -sS --max-time 10 -d grant_type=password -d client_id=admin-cli \
    --data-urlencode "username=$(j .keycloak.admin.username)" --data-urlencode "password=$(j .keycloak.admin.password)" \
    "$(j .keycloak.base_url)/realms/master/protocol/openid-connect/token" | jq -r .access_token)
  kc_clients=$(j .keycloak.base_url)/admin/realms/$(j .keycloak.realm)/clients
  kc_rep=$(curl -sS --max-time 10 -H "Authorization: Bearer $kc_admin_token" "$kc_clients?clientId=$kid_" | jq -c '.[0]')
  kc_set_keys() { # JWKS-JSON -> HTTP status of the update
    jq -c --arg jwks "$1" '.attributes["jwks.string"] = $jwks' <<<"$kc_rep" |
      curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $kc_admin_token" \
        -H 'Content-Type: application/json' --data-binary @- "$kc_clients/$(jq -r .id <<<"$kc_rep")"
  }
  kc_call() { # PEM ALG KID: sets STATUS, BODY
    split "$(token_assert "$k_token" "$kid_" "$(assertion "$1" "$2" "$3" "$kid_" "$k_token")")"
  }
  rsa_jwk=$(j -c '.keycloak.jwt_clients.private_key_jwt.keys[0].public_jwk')
  ec_jwk=$(j -c '.keycloak.jwt_clients.private_key_jwt.keys[1].public_jwk')
  check "keycloak rotating: PUT adds a new key" '. == 204' "$(kc_set_keys "{\"keys\":[$new_jwk,$rsa_jwk,$ec_jwk]}")"
  kc_call "$new_pem" ES256 "$new_kid"
  check "keycloak rotating: new key accepted at once" "$STATUS == 200" "$(with_status)"
  kc_call "$(kj 'keys[0].private_key_file')" RS256 "$(kj 'keys[0].kid')"
  check "keycloak rotating: old key still accepted" "$STATUS == 200" "$(with_status)"
  check "keycloak rotating: PUT removes the old keys" '. == 204' "$(kc_set_keys "{\"keys\":[$new_jwk]}")"
  kc_call "$(kj 'keys[0].private_key_file')" RS256 "$(kj 'keys[0].kid')"
  check "keycloak rotating: old key refused at once" "$STATUS >= 400 and $STATUS < 500" "$(with_status)"
  note "keycloak removed key -> $(with_status)"
  kc_call "$new_pem" ES256 "$new_kid"
  check "keycloak rotating: new key accepted" "$STATUS == 200" "$(with_status)"
  check "keycloak rotating: key set restored" '. == 204' "$(kc_set_keys "{\"keys\":[$rsa_jwk,$ec_jwk]}")"
  kc_call "$(kj 'keys[1].private_key_file')" ES256 "$(kj 'keys[1].kid')"
  check "keycloak rotating: restored key accepted" "$STATUS == 200" "$(with_status)"

  sj() { j ".keycloak.jwt_clients.client_secret_jwt.$1"; }
  a=$(assertion "$(sj client_secret)" HS256 "" "$(sj client_id)" "$k_token")
  split "$(token_assert "$k_token" "$(sj client_id)" "$a")"
  check "keycloak client_secret_jwt HS256: 200" "$STATUS == 200 and (.access_token | length > 0)" "$(with_status)"
  split "$(token_assert "$k_token" "$(sj client_id)" "$a")"
  note "keycloak client_secret_jwt replay -> $(with_status)"
fi

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
