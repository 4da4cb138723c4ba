#!/usr/bin/env bash
# The end-to-end suite: starts Ory Hydra, oidc-provider and Keycloak on 127.0.0.1 once
# (tests/integration/servers/with-servers.sh) and runs the same cases from every
# host against them ("servers" first: a smoke check of every server and client
# with curl and openssl). A server that cannot be built or started is a failure.
#
#   tests/integration/run.sh              every host
#   tests/integration/run.sh rust python  some hosts
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export TOKENWELL_REQUIRE_SERVERS=1
exec tests/integration/servers/with-servers.sh bash tests/integration/suites.sh "$@"
