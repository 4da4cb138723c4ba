#!/usr/bin/env bash
# Runs each host's end-to-end suite against the servers described by
# $TOKENWELL_SERVERS (run it through tests/integration/run.sh). Each host
# suite runs even if an earlier one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[[ -n ${TOKENWELL_SERVERS:-} ]] || { echo "TOKENWELL_SERVERS is not set: use tests/integration/run.sh" >&2; exit 2; }

hosts=("$@")
((${#hosts[@]})) || hosts=(servers rust node python component jvm cli install)

run_host() {
  case $1 in
    servers) bash tests/integration/servers/smoke.sh ;;
    rust) cargo test -q -p tokenwell-integration -- --test-threads=4 --nocapture ;;
    node | python | component | jvm) make --no-print-directory -C "bindings/$1" e2e ;;
    cli) cargo build -q -p tokenwell-cli && make --no-print-directory -C bindings/python build &&
      bindings/python/.venv/bin/python -m pytest -q -s -m e2e tests/cli/test_cli.py ;;
    install) bash scripts/test-install.sh ;;
    *) echo "unknown host $1" >&2; return 2 ;;
  esac
}

passed=0 failed=0 failed_hosts=()
for host in "${hosts[@]}"; do
  echo "=== end-to-end: $host against Hydra, oidc-provider and Keycloak ==="
  start=$SECONDS
  if run_host "$host"; then
    passed=$((passed + 1))
    echo "=== $host: passed in $((SECONDS - start)) s ==="
  else
    failed=$((failed + 1)) failed_hosts+=("$host")
    echo "=== $host: FAILED after $((SECONDS - start)) s ==="
  fi
done
[[ $failed -eq 0 ]] || echo "failed hosts: ${failed_hosts[*]}"
echo "end-to-end: $passed passed, $failed failed"
((failed == 0))
