"""The ``engine`` component's typed surface beyond the conformance scenarios:
the ``config`` record, the resource's observability calls, and what the
component build changes (host names must be ASCII: see README.md)."""

from __future__ import annotations

import json

import pytest

from wasm_host import ConfigRefused, EngineInstance, canonical_error, canonical_poll, config, is_err, iter_events

NOW = 1_700_000_000_000
SECRET = "very-secret:+%"
TOKEN_BODY = b'{"access_token":"at-1","token_type":"Bearer","expires_in":3600}'


@pytest.fixture(scope="module")
def engine() -> EngineInstance:
    return EngineInstance()


def test_typed_config_builds_the_exact_request(engine: EngineInstance) -> None:
    cache = engine.create(
        config(
            token_url="https://hydra.example/oauth2/token",
            client_id="billing-worker",
            client_secrets=[SECRET],
            auth_method="client-secret-basic",
            scopes=["billing:read", "billing:write"],
            audiences=["https://a.example", "https://b.example"],
            request_timeout_ms=2500,
        ),
        1,
    )
    poll = canonical_poll(cache.poll(NOW))
    assert poll["result"] == "send"
    request = poll["request"]
    assert request["timeout_ms"] == 2500
    assert request["body"] == (
        "grant_type=client_credentials&scope=billing%3Aread+billing%3Awrite"
        "&audience=https%3A%2F%2Fa.example&audience=https%3A%2F%2Fb.example"
    )
    assert cache.state() == "fetching"
    assert cache.in_flight() == request["fetch_id"]
    assert cache.next_wakeup() == NOW + 2500 + 1000


def test_typed_config_errors_name_the_field(engine: EngineInstance) -> None:
    with pytest.raises(ConfigRefused) as refused:
        engine.create(config(token_url="https://a.example/t", client_id="c", client_secrets=[]), 1)
    assert refused.value.error["field"] == "client_secret"
    with pytest.raises(ConfigRefused) as refused:
        engine.create(config(token_url="https://a.example/t", client_id="c", client_secrets=["s"], refresh_ahead=1.5), 1)
    assert refused.value.error["field"] == "refresh_ahead"
    with pytest.raises(ConfigRefused) as refused:
        engine.create(
            config(token_url="https://a.example/t", client_id="c", client_secrets=["s"], max_response_bytes=2**40), 1
        )
    assert refused.value.error["field"] == "max_response_bytes"


def test_errors_and_events_never_hold_the_secret(engine: EngineInstance) -> None:
    cache = engine.create(config(token_url="https://a.example/t", client_id="c", client_secrets=[SECRET]), 1)
    fetch_id = cache.poll(NOW).payload.__dict__["fetch-id"]
    body = json.dumps({"error": "invalid_client", "error_description": f"secret {SECRET} refused"}).encode()
    failed, error = is_err(cache.handle_response(fetch_id, 401, [], body, NOW))
    assert failed
    text = json.dumps(canonical_error(error))
    assert SECRET not in text and "[withheld: contained a credential]" in text
    assert cache.state() == "held"


def test_snapshot_round_trip_between_two_caches(engine: EngineInstance) -> None:
    options = '{"token_url":"https://a.example/t","client_id":"c","client_secret":"s"}'
    first = engine.from_json(options, 1)
    fetch_id = first.poll(NOW).payload.__dict__["fetch-id"]
    failed, _ = is_err(first.handle_response(fetch_id, 200, [], TOKEN_BODY, NOW))
    assert not failed
    snapshot = first.export_snapshot(NOW + 1)
    assert snapshot is not None and "client_secret" not in json.loads(snapshot)
    second = engine.from_json(options, 2)
    assert second.import_snapshot(snapshot, NOW + 2) is None
    assert canonical_poll(second.poll(NOW + 3))["token"]["access_token"] == "at-1"
    refused = second.import_snapshot("{}", NOW)
    assert refused.tag == "corrupt"
    first.drop()
    second.drop()


def test_non_ascii_host_names_must_be_given_in_punycode(engine: EngineInstance) -> None:
    # The component is built without Unicode IDNA tables (idna_adapter 1.0, see README.md).
    with pytest.raises(ConfigRefused) as refused:
        engine.from_json('{"token_url":"https://bücher.example/t","client_id":"c","client_secret":"s"}', 1)
    assert refused.value.error["field"] == "token_url"
    cache = engine.from_json('{"token_url":"https://xn--bcher-kva.example/t","client_id":"c","client_secret":"s"}', 1)
    assert canonical_poll(cache.poll(NOW))["request"]["url"] == "https://xn--bcher-kva.example/t"


# A test-only P-256 key (the conformance scenarios' `test-only-p256`).
EC_JWK = json.dumps(
    {
        "kty": "EC",
        "kid": "test-only-p256",
        "alg": "ES256",
        "crv": "P-256",
        "x": "JBl3f8zV42oxeItWdNhm2w8w77DzobV_YB4ojuLq19s",
        "y": "XeY68whjWFK_Y67vG3lenM-zoOiF2ycx4OEWRM2txKM",
        "d": "hPRrz9rOMs19ufKslLQbpPn5xo6PUtRzkL0HCub8yO8",
    }
)


def assertion_claims(body: str) -> dict:
    """The claims of the `client_assertion` in a form body."""
    import base64
    from urllib.parse import parse_qs

    assertion = parse_qs(body)["client_assertion"][0]
    payload = assertion.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_typed_config_with_private_keys_signs_an_assertion_and_add_entropy_freshens_it(
    engine: EngineInstance,
) -> None:
    def key_config(**extra: object) -> object:
        return config(token_url="https://a.example/t", client_id="billing-worker", private_keys=[EC_JWK], **extra)

    first, same, fresh = (engine.create(key_config(), 7) for _ in range(3))
    fresh.add_entropy(b"host randomness!")
    bodies = [canonical_poll(cache.poll(NOW))["request"]["body"] for cache in (first, same, fresh)]
    assert "client_secret" not in bodies[0] and "client_assertion_type=" in bodies[0]
    claims = assertion_claims(bodies[0])
    assert claims["iss"] == claims["sub"] == "billing-worker"
    assert claims["aud"] == "https://a.example/t"
    assert claims["exp"] - claims["iat"] == 60
    # The same entropy gives the same assertion (ES256 nonces are RFC 6979);
    # the host's fresh bytes give another jti.
    assert bodies[0] == bodies[1]
    assert assertion_claims(bodies[2])["jti"] != claims["jti"]
    assert "hPRrz9rOMs19ufKslLQbpPn5xo6PUtRzkL0HCub8yO8" not in "".join(bodies)
    for cache in (first, same, fresh):
        cache.drop()

    # The typed enums reach the engine's checks.
    with pytest.raises(ConfigRefused) as refused:
        engine.create(key_config(assertion_audience="issuer"), 1)
    assert refused.value.error["field"] == "assertion_audience"
    with pytest.raises(ConfigRefused) as refused:
        engine.create(key_config(auth_method="private-key-jwt", assertion_signing_alg="hs256"), 1)
    assert refused.value.error["field"] == "assertion_signing_alg"
    cache = engine.create(
        config(
            issuer="https://a.example",
            token_url="https://a.example/t",
            client_id="billing-worker",
            client_secrets=["s"],
            auth_method="client-secret-jwt",
            assertion_signing_alg="hs384",
            assertion_audience="issuer",
            assertion_lifetime_ms=30_000,
        ),
        1,
    )
    body = canonical_poll(cache.poll(NOW))["request"]["body"]
    claims = assertion_claims(body)
    assert claims["aud"] == "https://a.example" and claims["exp"] - claims["iat"] == 30
    cache.drop()


def test_typed_config_with_an_issuer_discovers_the_token_endpoint(engine: EngineInstance) -> None:
    cache = engine.create(
        config(issuer="https://id.example", client_id="c", client_secrets=["s"], discovery_refresh_ms=3_600_000), 1
    )
    assert cache.state() == "idle"
    request = canonical_poll(cache.poll(NOW))["request"]
    assert (request["method"], request["url"], request["body"]) == (
        "GET",
        "https://id.example/.well-known/oauth-authorization-server",
        "",
    )
    document = {
        "issuer": "https://id.example",
        "token_endpoint": "https://id.example/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    }
    failed, error = is_err(cache.handle_response(request["fetch_id"], 200, [], json.dumps(document).encode(), NOW))
    assert failed and canonical_error(error)["kind"] == "discovery_complete"
    request = canonical_poll(cache.poll(NOW + 1))["request"]
    assert (request["method"], request["url"]) == ("POST", "https://id.example/token")
    assert "client_secret=s" in request["body"]
    events = [event for event in iter_events(cache) if event["type"].startswith("discovery")]
    assert [(e["type"], e.get("cause"), e.get("auth_method")) for e in events] == [
        ("discovery_started", "initial", None),
        ("discovery_completed", None, "client_secret_post"),
    ]
    cache.drop()

    cache = engine.create(config(issuer="https://id.example", client_id="c", client_secrets=["s"]), 1)
    request = canonical_poll(cache.poll(NOW))["request"]
    document["issuer"] = "https://evil.example"
    failed, error = is_err(cache.handle_response(request["fetch_id"], 200, [], json.dumps(document).encode(), NOW))
    assert failed
    error = canonical_error(error)
    assert (error["kind"], error["fault"], error["retryable"]) == ("issuer_mismatch", "configuration", False)
    cache.drop()


def test_replace_keys_from_file_rotates_keys_and_never_quotes_the_text(engine: EngineInstance) -> None:
    cache = engine.create(config(token_url="https://a.example/t", client_id="c", private_keys=[EC_JWK]), 1)
    assert cache.replace_keys_from_file(EC_JWK, "KEYS", NOW) is False
    bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    failed, error = is_err(cache.replace_keys_from_file(bad, "KEYS", NOW))
    assert failed and "bm90IGEga2V5" not in repr(vars(error))
    jwks = json.dumps({"keys": [dict(json.loads(EC_JWK), kid="new"), json.loads(EC_JWK)]})
    assert cache.replace_keys_from_file(jwks, "KEYS", NOW + 1) is True
    events = [event for event in iter_events(cache) if event["type"] in ("keys_replaced", "secret_file_rejected")]
    assert [e["type"] for e in events] == ["secret_file_rejected", "keys_replaced"]
    assert events[0]["source"] == "KEYS" and events[1]["count"] == 2
    request = canonical_poll(cache.poll(NOW + 2))["request"]
    header = request["body"].split("client_assertion=")[1].split(".")[0]
    import base64

    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"] == "new"
    cache.drop()
