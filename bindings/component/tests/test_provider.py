"""The ``provider`` component fetching tokens through wasi:http from a scripted
token server on 127.0.0.1, with wasmtime's wasi:http implementation: the
request on the wire, the cache, failures classified, and configuration from
``wasi:cli/environment``."""

from __future__ import annotations

import base64
import time
from typing import Dict, Iterator
from urllib.parse import parse_qs

import pytest

from token_server import Reply, TokenServer, closed_port, token_reply
from wasm_host import ProviderInstance, canonical_config_error, canonical_error, canonical_token, config, is_err

SECRET = "s3cr3t:+% &"  # every character RFC 6749 section 2.3.1 encoding is about


@pytest.fixture
def server() -> Iterator[TokenServer]:
    with TokenServer() as running:
        yield running


def env_for(server: TokenServer, **extra: str) -> Dict[str, str]:
    return {"TOKEN_URL": server.token_url, "CLIENT_ID": "billing-worker", "CLIENT_SECRET": SECRET, **extra}


def token_of(provider: ProviderInstance) -> Dict[str, object]:
    failed, value = provider.get_token()
    assert not failed, canonical_error(value)
    return canonical_token(value)


def error_of(provider: ProviderInstance) -> Dict[str, object]:
    failed, value = provider.get_token()
    assert failed, f"expected an error, got a token expiring at {value and getattr(value, 'expires-at')}"
    error = canonical_error(value)
    assert SECRET not in repr(error)
    return error


def configured(server: TokenServer, **options: object) -> ProviderInstance:
    """A provider configured through ``configure`` for ``server``, with ``options``."""
    provider = ProviderInstance()
    failed, value = is_err(
        provider.call("configure", config(token_url=server.token_url, client_id="c", client_secrets=["s"], **options))
    )
    assert not failed, canonical_config_error(value)
    return provider


def test_fetches_a_token_through_wasi_http_and_caches_it(server: TokenServer) -> None:
    server.script(token_reply("at-1", 3600, scope="billing:read"))
    provider = ProviderInstance(env_for(server, SCOPE="billing:read", AUDIENCE="https://billing.example"))
    before = int(time.time() * 1000)
    token = token_of(provider)
    assert token["access_token"] == "at-1"
    assert token["token_type"] == "Bearer"
    assert token["scope"] == ["billing:read"]
    assert token["lifetime_source"] == "expires_in"
    assert before <= token["received_at"] <= int(time.time() * 1000)
    assert token["expires_at"] == token["received_at"] + 3_600_000

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/oauth2/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["accept"] == "application/json"
    # RFC 6749 section 2.3.1: id and secret form-urlencoded before base64.
    expected = base64.b64encode(b"billing-worker:s3cr3t%3A%2B%25+%26").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert parse_qs(request.body) == {
        "grant_type": ["client_credentials"],
        "scope": ["billing:read"],
        "audience": ["https://billing.example"],
    }
    assert int(request.headers["content-length"]) == len(request.body)

    # A cache hit: no second request.
    assert token_of(provider)["access_token"] == "at-1"
    assert len(server.requests) == 1

    events = provider.drain_events()
    assert [e["type"] for e in events] == ["refresh_started", "token_acquired"]
    assert all(e["actor_type"] == "client" and e["actor_id"] == "billing-worker" for e in events)
    assert provider.drain_events() == []


def test_invalid_client_is_a_credentials_error_held_without_retrying(server: TokenServer) -> None:
    server.script(Reply(401, {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}))
    provider = ProviderInstance(env_for(server))
    error = error_of(provider)
    assert error["kind"] == "invalid_client"
    assert error["fault"] == "credentials"
    assert error["retryable"] is False
    assert error["status"] == 401
    assert error["oauth_error"] == "invalid_client"
    assert error["retry_at"] is not None
    # Held: the next call fails fast with the same error, without a request.
    again = error_of(provider)
    assert again["kind"] == "invalid_client" and again["retry_at"] == error["retry_at"]
    assert len(server.requests) == 1


def test_a_503_is_a_retryable_server_error_honouring_retry_after(server: TokenServer) -> None:
    server.script(Reply(503, "<html>upstream unavailable</html>", [("Retry-After", "120")]))
    provider = ProviderInstance(env_for(server))
    before = int(time.time() * 1000)
    error = error_of(provider)
    assert error["kind"] == "server_error"
    assert error["fault"] == "authorization_server"
    assert error["retryable"] is True
    assert error["status"] == 503
    assert error["retry_at"] >= before + 120_000
    # Fail fast until retry-at: no second request hits the failing endpoint.
    assert error_of(provider)["kind"] == "server_error"
    assert len(server.requests) == 1


def test_secret_fallback_tries_the_previous_secret_at_once(server: TokenServer) -> None:
    server.script(Reply(401, {"error": "invalid_client"}), token_reply("at-old-secret"))
    provider = ProviderInstance(env_for(server, CLIENT_SECRET="new-secret,old-secret"))
    assert token_of(provider)["access_token"] == "at-old-secret"
    first, second = (r.headers["authorization"] for r in server.requests)
    assert base64.b64decode(first.split()[1]) == b"billing-worker:new-secret"
    assert base64.b64decode(second.split()[1]) == b"billing-worker:old-secret"
    assert "secret_fallback" in [e["type"] for e in provider.drain_events()]


def test_connection_refused_is_a_transport_error() -> None:
    port = closed_port()
    provider = ProviderInstance({"TOKEN_URL": f"http://127.0.0.1:{port}/oauth2/token", "CLIENT_ID": "c", "CLIENT_SECRET": "s"})
    error = error_of(provider)
    assert error["kind"] == "transport"
    assert error["fault"] == "transport"
    assert error["retryable"] is True
    assert error["status"] is None


def test_a_body_that_never_ends_times_out(server: TokenServer) -> None:
    server.script(Reply(200, '{"access_token":"at-1"', stall_body=True))
    provider = configured(server, request_timeout_ms=300)
    started = time.monotonic()
    error = error_of(provider)
    assert error["kind"] == "timeout"
    assert error["fault"] == "transport"
    assert 0.25 < time.monotonic() - started < 5


SLOW_BODY = '{"access_token":"slow","token_type":"Bearer","expires_in":3600}'
SLOW_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    "stage, split",
    [
        ("status line", 0),
        ("headers", len("HTTP/1.1 200 OK\r\n")),
        ("body", len(SLOW_HEAD) + len(f"Content-Length: {len(SLOW_BODY)}\r\nConnection: close\r\n\r\n")),
    ],
)
def test_a_server_sending_a_byte_at_a_time_is_cut_off_at_the_timeout(
    server: TokenServer, stage: str, split: int
) -> None:
    """A scripted slow server: whatever the stage, the whole exchange ends within
    the request timeout (+ 1 s), as a timeout."""
    server.script(Reply(200, SLOW_BODY, dribble_from=split, dribble_interval=0.5))
    provider = configured(server, request_timeout_ms=2000)
    started = time.monotonic()
    error = error_of(provider)
    elapsed = time.monotonic() - started
    assert error["kind"] == "timeout", (stage, error)
    assert elapsed < 3.0, f"{stage}: took {elapsed:.1f} s with a 2 s timeout"
    assert len(server.requests) == 1


def test_html_instead_of_json_is_a_malformed_response(server: TokenServer) -> None:
    server.script(Reply(200, "<html>login</html>", [("Content-Type", "text/html")]))
    error = error_of(ProviderInstance(env_for(server)))
    assert error["kind"] == "malformed_response"
    assert error["retryable"] is True


def test_typed_configuration_with_client_secret_post(server: TokenServer) -> None:
    server.script(token_reply("at-post"))
    provider = ProviderInstance()
    failed, _ = is_err(
        provider.call(
            "configure",
            config(
                token_url=server.token_url,
                client_id="billing-worker",
                client_secrets=[SECRET],
                auth_method="client-secret-post",
                scopes=["a", "b"],
                extra_params=[("resource", "https://api.example")],
            ),
        )
    )
    assert not failed
    assert token_of(provider)["access_token"] == "at-post"
    [request] = server.requests
    assert "authorization" not in request.headers
    assert parse_qs(request.body) == {
        "grant_type": ["client_credentials"],
        "scope": ["a b"],
        "resource": ["https://api.example"],
        "client_id": ["billing-worker"],
        "client_secret": [SECRET],
    }


def test_configuration_errors_name_the_field_and_never_echo_a_secret() -> None:
    provider = ProviderInstance()
    failed, error = is_err(provider.call("configure", config(token_url="ftp://x/t", client_id="c", client_secrets=[SECRET])))
    assert failed and canonical_config_error(error)["field"] == "token_url"

    provider = ProviderInstance({"TOKEN_URL": "https://a.example/t", "CLIENT_SECRET": SECRET})
    error = error_of(provider)
    assert error["kind"] == "config" and "CLIENT_ID" in error["description"]
    failed, config_error = is_err(provider.call("configure-from-environment", "BILLING_"))
    assert failed and canonical_config_error(config_error)["field"] == "BILLING_CLIENT_ID"

    provider = ProviderInstance({"TOKEN_URL": "https://a.example/t", "CLIENT_ID": "c", "CLIENT_SECRET_FILE": "/run/s"})
    error = error_of(provider)
    assert error["kind"] == "config" and "CLIENT_SECRET_FILE" in error["description"]


def test_prefixed_environment_and_hydra_url(server: TokenServer) -> None:
    server.script(token_reply("at-prefixed"))
    provider = ProviderInstance({"BILLING_HYDRA_URL": server.base_url + "/", "BILLING_CLIENT_ID": "c", "BILLING_CLIENT_SECRET": "s"})
    failed, _ = is_err(provider.call("configure-from-environment", "BILLING_"))
    assert not failed
    assert token_of(provider)["access_token"] == "at-prefixed"
    assert server.requests[0].path == "/oauth2/token"


def test_refresh_ahead_is_sent_in_the_background(server: TokenServer) -> None:
    # A 2-second token: margin 1 s (half the lifetime), refresh from about 0.75 s.
    server.script(token_reply("at-1", 2), token_reply("at-2", 3600))
    provider = ProviderInstance(env_for(server))
    first = token_of(provider)
    assert first["access_token"] == "at-1"

    # Past the refresh-ahead point the valid token is served at once, and the
    # refresh goes out without the caller waiting for it.
    time.sleep(max(0.0, first["refresh_at"] / 1000 - time.time()) + 0.02)
    assert token_of(provider)["access_token"] == "at-1"

    # Past the usable limit the provider collects the refresh it sent.
    time.sleep(max(0.0, first["usable_until"] / 1000 - time.time()) + 0.02)
    assert token_of(provider)["access_token"] == "at-2"
    assert len(server.requests) == 2
    reasons = [e.get("reason") for e in provider.drain_events() if e["type"] == "refresh_started"]
    assert reasons == ["initial", "ahead"]


def test_invalidate_refetches(server: TokenServer) -> None:
    server.script(token_reply("at-1"), token_reply("at-2"))
    provider = ProviderInstance(env_for(server))
    assert token_of(provider)["access_token"] == "at-1"
    assert provider.call("invalidate", "at-1") == "invalidated"
    assert provider.call("invalidate", "at-1") == "not-current"
    assert token_of(provider)["access_token"] == "at-2"


def test_replace_secrets_lifts_an_invalid_client_hold(server: TokenServer) -> None:
    server.script(Reply(401, {"error": "invalid_client"}), token_reply("at-rotated"))
    provider = ProviderInstance(env_for(server))
    assert error_of(provider)["kind"] == "invalid_client"
    failed, changed = is_err(provider.call("replace-secrets", ["rotated"]))
    assert not failed and changed is True
    assert token_of(provider)["access_token"] == "at-rotated"


def test_a_background_refresh_collected_after_its_timeout_counts_as_timed_out(server: TokenServer) -> None:
    # When a late-collected response arrived is unknown; reported as fresh it
    # could overstate the token's life. Past the request timeout it is a timeout.
    server.script(token_reply("at-1", 2), token_reply("at-2", 3600))
    provider = ProviderInstance()
    failed, _ = is_err(
        provider.call(
            "configure",
            config(token_url=server.token_url, client_id="c", client_secrets=["s"], request_timeout_ms=100),
        )
    )
    assert not failed
    first = token_of(provider)
    time.sleep(max(0.0, first["refresh_at"] / 1000 - time.time()) + 0.02)
    assert token_of(provider)["access_token"] == "at-1"  # refresh sent in the background
    time.sleep(0.15)  # past the 100 ms request timeout, before the token's usable limit
    assert token_of(provider)["access_token"] == "at-1"
    failures = [e for e in provider.drain_events() if e["type"] == "refresh_failed"]
    assert [f["error"]["kind"] for f in failures] == ["timeout"]


def test_issuer_url_discovers_the_token_endpoint_with_a_get_without_a_body(server: TokenServer) -> None:
    document = {
        "issuer": server.base_url,
        "token_endpoint": server.token_url,
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
    }
    server.script(Reply(200, document), token_reply("at-1"))
    provider = ProviderInstance({"ISSUER_URL": server.base_url, "CLIENT_ID": "billing-worker", "CLIENT_SECRET": SECRET})
    assert token_of(provider)["access_token"] == "at-1"
    metadata, token_request = server.requests
    assert (metadata.method, metadata.path, metadata.body) == ("GET", "/.well-known/oauth-authorization-server", "")
    # No body and no framing for it: neither Content-Length nor Transfer-Encoding.
    assert "transfer-encoding" not in metadata.headers and "content-length" not in metadata.headers
    assert metadata.headers["accept"] == "application/json"
    assert (token_request.method, token_request.path) == ("POST", "/oauth2/token")
    assert parse_qs(token_request.body)["client_secret"] == [SECRET]  # the method the server supports
    kinds = [e["type"] for e in provider.drain_events()]
    assert kinds[:2] == ["discovery_started", "discovery_completed"] and "token_acquired" in kinds


def test_an_issuer_mismatch_is_a_configuration_error(server: TokenServer) -> None:
    server.script(Reply(200, {"issuer": "https://other.example", "token_endpoint": server.token_url}))
    provider = ProviderInstance({"ISSUER_URL": server.base_url, "CLIENT_ID": "c", "CLIENT_SECRET": SECRET})
    error = error_of(provider)
    assert (error["kind"], error["fault"], error["retryable"]) == ("issuer_mismatch", "configuration", False)
    assert len(server.requests) == 1


def test_private_key_jwt_signs_a_fresh_assertion_per_request(server: TokenServer) -> None:
    from test_engine import EC_JWK, assertion_claims

    server.script(token_reply("at-1"), token_reply("at-2"))
    provider = ProviderInstance()
    failed, value = is_err(
        provider.call(
            "configure", config(token_url=server.token_url, client_id="billing-worker", private_keys=[EC_JWK])
        )
    )
    assert not failed, canonical_config_error(value)
    assert token_of(provider)["access_token"] == "at-1"
    assert provider.call("invalidate", "at-1") == "invalidated"
    assert token_of(provider)["access_token"] == "at-2"
    first, second = (assertion_claims(request.body) for request in server.requests)
    assert first["iss"] == first["sub"] == "billing-worker" and first["aud"] == server.token_url
    assert first["jti"] != second["jti"]
    assert all("authorization" not in request.headers for request in server.requests)


def test_replace_keys_from_file_switches_the_signing_key(server: TokenServer) -> None:
    import json

    from test_engine import EC_JWK

    server.script(token_reply("at-1"), token_reply("at-2"))
    provider = ProviderInstance()
    failed, value = is_err(
        provider.call("configure", config(token_url=server.token_url, client_id="c", private_keys=[EC_JWK]))
    )
    assert not failed, canonical_config_error(value)
    assert token_of(provider)["access_token"] == "at-1"
    rotated = json.dumps({"keys": [dict(json.loads(EC_JWK), kid="new"), json.loads(EC_JWK)]})
    assert provider.call("replace-keys-from-file", rotated, "KEY_FILE") is True
    assert token_of(provider)["access_token"] == "at-1"  # the cached token stays
    assert provider.call("invalidate", "at-1") == "invalidated"
    assert token_of(provider)["access_token"] == "at-2"
    kids = []
    for request in server.requests:
        header = parse_qs(request.body)["client_assertion"][0].split(".")[0]
        kids.append(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])
    assert kids == ["test-only-p256", "new"]
    assert "keys_replaced" in [e["type"] for e in provider.drain_events()]
