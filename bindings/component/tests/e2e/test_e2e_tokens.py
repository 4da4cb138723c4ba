"""End-to-end: the provider component (``dist/tokenwell-provider.wasm``) doing
its own HTTP through ``wasi:http`` against Ory Hydra v2.3.0 and oidc-provider
on 127.0.0.1. The cases of the Rust suite
(tests/integration/rust/tests/e2e_real_servers.rs), against both servers
wherever the server supports the case.

    make -C bindings/component e2e           servers already running (tests/integration/run.sh component)
    make -C bindings/component integration   starts the servers itself
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

import pytest

from conftest import NOTES
from e2e_host import (
    NOT_ALLOWED_AUDIENCE,
    SERVER_NAMES,
    SERVERS,
    SKIP_WITHOUT_SERVERS,
    TokenFailure,
    bulk_clients,
    check_all_accepted,
    check_no_secret_shown,
    hydra_admin_url,
    hydra_cli,
    jwt_claims,
    provider_for,
    special_secret,
)

pytestmark = SKIP_WITHOUT_SERVERS


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize("role", ["basic", "post"])
@pytest.mark.parametrize("server", SERVER_NAMES)
def test_basic_and_post_auth_get_the_requested_scopes(server: str, role: str) -> None:
    client = SERVERS[server]["clients"][role]
    provider = provider_for(server, role)
    token = provider.get_token()
    assert token["access_token"] and token["token_type"] == "Bearer"
    assert set(token["scope"]) == set(client["scopes"]), f"{server}/{role}: {token['scope']}"
    # Cached: a second call makes no request.
    assert provider.get_token()["access_token"] == token["access_token"]
    assert len(provider.of_type("refresh_started")) == 1, provider.types()
    # Asking for less gets exactly that.
    narrow = provider_for(server, role, scopes=["billing:read"]).get_token()
    assert narrow["scope"] == ["billing:read"], f"{server}/{role}: {narrow['scope']}"


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_a_scope_the_client_may_not_have_is_a_held_configuration_error(server: str) -> None:
    provider = provider_for(server, "basic", scopes=["billing:read", "billing:admin"])
    started = now_ms()
    with pytest.raises(TokenFailure) as raised:
        provider.get_token()
    error = raised.value.error
    assert error["kind"] == "invalid_scope" and error["oauth_error"] == "invalid_scope", error
    assert error["fault"] == "configuration"
    assert error["retryable"] is False
    assert error["status"] == 400
    assert error["retry_at"] is not None and error["retry_at"] >= started + 60_000, error
    # No retry storm: further calls fail fast from the hold, without a request.
    for _ in range(20):
        began = time.monotonic()
        with pytest.raises(TokenFailure) as again:
            provider.get_token()
        assert again.value.error["kind"] == "invalid_scope"
        assert time.monotonic() - began < 1.0, "a held error waited on something"
    assert len(provider.of_type("refresh_started")) == 1, f"{server}: {provider.types()}"


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_an_audience_the_client_may_not_have_is_a_configuration_error(server: str) -> None:
    # Hydra: `audience=` (answers invalid_request, classified invalid_target);
    # oidc-provider: `resource=` (RFC 8707) through the config's extra-params (answers invalid_target).
    provider = provider_for(server, "basic", scopes=["billing:read"], audiences=[NOT_ALLOWED_AUDIENCE])
    with pytest.raises(TokenFailure) as raised:
        provider.get_token()
    error = raised.value.error
    assert error["kind"] == "invalid_target", error
    assert error["fault"] == "configuration"
    assert error["retryable"] is False
    assert error["status"] == 400
    expected_code = "invalid_request" if SERVERS[server]["audience_parameter"] == "audience" else "invalid_target"
    assert error["oauth_error"] == expected_code
    with pytest.raises(TokenFailure) as again:
        provider.get_token()
    assert again.value.error["kind"] == "invalid_target"
    assert len(provider.of_type("refresh_started")) == 1, f"{server}: {provider.types()}"


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_a_wrong_secret_is_invalid_client_and_never_shown(server: str) -> None:
    real = SERVERS[server]["clients"]["basic"]["client_secret"]
    wrong = f"wrong-{real}"
    provider = provider_for(server, "basic", secrets=[wrong])
    texts: List[str] = []
    for _ in range(3):
        with pytest.raises(TokenFailure) as raised:
            provider.get_token()
        error = raised.value.error
        assert error["kind"] == "invalid_client" and error["fault"] == "credentials", error
        assert error["status"] == 401 and error["oauth_error"] == "invalid_client"
        texts += [json.dumps(error, ensure_ascii=False), str(raised.value), repr(raised.value)]
    assert any(e["type"] == "refresh_failed" for e in provider.events), provider.types()
    texts += [json.dumps(e, ensure_ascii=False) for e in provider.events]
    check_no_secret_shown(server, texts, [wrong, real])


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_secrets_with_reserved_characters_work(server: str) -> None:
    special_secret(server)
    assert provider_for(server, "special_secret").get_token()["access_token"]


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_two_hundred_random_secrets_are_each_accepted(server: str) -> None:
    """One fresh provider instance per client (instantiating the compiled
    component costs well under a millisecond), one after the other."""
    bulk = bulk_clients(server)
    began = time.monotonic()
    failures: List[Optional[str]] = []
    for client in bulk:
        try:
            provider_for(server, client=client, scopes=[], audiences=[]).get_token()
            failures.append(None)
        except TokenFailure as failure:  # never shows the secret
            failures.append(f"{client['client_id']}: {failure}")
    took = time.monotonic() - began
    check_all_accepted(server, failures, len(bulk))
    NOTES.append(f"bulk secrets, {server}: {len(bulk)} clients accepted in {took:.1f} s (one instance each)")


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_jwt_access_token_exp_matches_the_engine_expiry(server: str) -> None:
    token = provider_for(server, "jwt").get_token()
    assert token["lifetime_source"] == "expires_in"
    exp_ms = int(jwt_claims(token["access_token"])["exp"]) * 1000
    diff = abs(exp_ms - token["expires_at"])
    assert diff <= 2_000, f"{server}: exp {exp_ms} vs engine expires_at {token['expires_at']} ({diff} ms apart)"


@pytest.mark.parametrize("role", ["basic", "jwt"])
def test_hydra_introspection_says_the_token_is_active_for_the_client(role: str) -> None:
    client = SERVERS["hydra"]["clients"][role]
    token = provider_for("hydra", role).get_token()["access_token"]
    info: Optional[Dict[str, Any]] = json.loads(
        hydra_cli("introspect", "token", "--endpoint", hydra_admin_url(), "--format", "json", token)
    )
    assert info is not None and info["active"] is True, f"{role}: {info}"
    assert info["sub"] == client["client_id"], f"{role}: {info}"
    assert info["client_id"] == client["client_id"]
    assert sorted(info["scope"].split()) == sorted(client["scopes"])
