#!/usr/bin/env bash
# Seeds the fuzz corpora (core/fuzz/corpus/, git-ignored) before a run: the
# committed text seeds under seeds/<target>/, and for parse_response a few
# well-formed responses written here, since that target's input starts with
# binary status bytes. Existing corpus files are kept. engine_timeline needs
# no seeds: its input is decoded with `arbitrary`, and libFuzzer finds the
# token-holding paths from an empty corpus within seconds.
set -euo pipefail
cd "$(dirname "$0")"
for dir in seeds/*/; do
  target=$(basename "$dir")
  mkdir -p "corpus/$target"
  cp -n "$dir"* "corpus/$target/" 2>/dev/null || true
done

# parse_response: status (u16 little-endian), Retry-After length (1 byte), Retry-After, body.
out=corpus/parse_response
mkdir -p "$out"
seed() { # name status-low status-high retry-after body
  [ -e "$out/seed-$1" ] || printf "\\x$(printf %02x "$2")\\x$(printf %02x "$3")\\x$(printf %02x "${#4}")%s%s" "$4" "$5" >"$out/seed-$1"
}
seed token 200 0 "" '{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"scope":"a b"}'
seed token-string-expiry 201 0 "" '{"access_token":"at-2","token_type":"bearer","expires_in":"60"}'
seed jwt 200 0 "" '{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDA2MDB9.sig"}'
seed rate-limited 173 1 "7" '{"error":"slow_down"}'
seed retry-date 247 1 "Tue, 14 Nov 2023 22:13:50 GMT" ''
seed oauth-error 144 1 "" '{"error":"invalid_client","error_description":"bad client"}'
seed html 246 1 "" '<!DOCTYPE html><html>Bad Gateway</html>'

