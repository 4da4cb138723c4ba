"""The ``engine`` component's typed surface beyond the conformance scenarios:
the ``config`` record, the resource's observability calls, and what the
component build changes (host names must be ASCII: see README.md)."""

from __future__ import annotations

import json

import pytest

from wasm_host import ConfigRefused, EngineInstance, canonical_error, canonical_poll, config, is_err

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
