"""ServiceAccount on a virtual clock with an injected transport."""

from __future__ import annotations

import asyncio
import json
from datetime import timezone
from typing import Any

import pytest

import tokenwell
from tokenwell import (
    AccessToken,
    InvalidClientError,
    InvalidConfigError,
    InvalidScopeError,
    ServerError,
    ServiceAccount,
    TransientError,
    TransportError,
    TransportResponse,
)

from conftest import START, CountingTransport, EventLog, FakeClock, token_body

URL = "http://127.0.0.1:9/oauth2/token"  # never contacted: the transport is injected


def account(transport: Any, clock: FakeClock, **kwargs: Any) -> ServiceAccount:
    kwargs.setdefault("client_secret", "s3cr3t")
    kwargs.setdefault("engine_options", {"refresh_ahead_jitter": 0, "backoff_jitter": False})
    return ServiceAccount(token_url=URL, client_id="billing-worker", transport=transport, clock=clock, **kwargs)


def test_get_token_and_token_details(clock: FakeClock) -> None:
    transport = CountingTransport(lifetime=3600)
    a = account(transport, clock, scope=["billing:read", "billing:write"])
    assert a.get_token() == "at-1"
    t = a.token()
    assert isinstance(t, AccessToken)
    assert t.access_token == "at-1" and t.token_type == "Bearer"
    assert t.scope == ("billing:read", "billing:write")
    assert t.expires_at.tzinfo is timezone.utc
    assert t.expires_at.timestamp() == pytest.approx(START + 3600)
    assert transport.count == 1
    sent = transport.requests[0]
    assert sent.method == "POST" and sent.url == URL
    assert sent.body == b"grant_type=client_credentials&scope=billing%3Aread+billing%3Awrite"
    assert dict(sent.headers)["Authorization"].startswith("Basic ")
    assert sent.timeout == 10.0


def test_cache_hit_never_calls_native_code(clock: FakeClock) -> None:
    a = account(CountingTransport(), clock)
    token = a.get_token()

    class Tripwire:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"native code called on a cache hit: {name}")

    engine, a._cache = a._cache, Tripwire()
    for _ in range(100):
        assert a.get_token() == token
        assert a.token().access_token == token
    a._cache = engine


def test_refresh_ahead_serves_the_token_and_refreshes_in_the_background(clock: FakeClock) -> None:
    transport = CountingTransport(lifetime=3600)
    log = EventLog()
    a = account(transport, clock, on_event=log)
    assert a.get_token() == "at-1"
    clock.advance(3600 * 0.8)  # past refresh-ahead (75 % of the usable life), before the margin
    transport.gate = __import__("threading").Event()
    assert a.get_token() == "at-1"  # served at once while the refresh waits at the gate
    assert transport.entered.wait(10)
    transport.gate.set()
    log.wait_for("token_acquired", 2)
    assert a.get_token() == "at-2"
    assert transport.count == 2
    started = [e for e in log.events if e["type"] == "refresh_started"]
    assert [e["reason"] for e in started] == ["initial", "ahead"]


def test_outage_inside_the_margin_serves_the_token_with_zero_failures(clock: FakeClock) -> None:
    """The token endpoint answers 503 from the refresh point on: every call until
    the margin still gets the valid token, and retries follow the engine's backoff."""
    healthy = [True]

    def answer(n: int, request: Any) -> TransportResponse:
        if healthy[0]:
            return TransportResponse(200, [], token_body(f"at-{n}", 3600))
        return TransportResponse(503, [("Content-Type", "text/html")], b"<html>down</html>")

    transport = CountingTransport(answer=answer)
    log = EventLog()
    a = account(transport, clock, on_event=log)
    assert a.get_token() == "at-1"
    healthy[0] = False
    usable_until = START + 3600 - 30
    clock.advance(3600 * 0.76)
    failures = 0
    served = 0
    while clock.now < usable_until - 1:
        try:
            assert a.get_token() == "at-1"
            served += 1
        except tokenwell.TokenError:
            failures += 1
        log.wait_for("refresh_failed", transport.count - 1)  # each background attempt has ended
        clock.advance(5)
    assert failures == 0
    assert served > 100
    # Backoff (1 s doubling to 60 s) bounds the retries over ~14 minutes of outage.
    assert 3 <= transport.count - 1 <= 30
    # Inside the margin, outage grace keeps serving the token (once announced),
    # until 5 s before it expires; from then on the engine fails fast.
    clock.now = usable_until + 1
    assert a.get_token() == "at-1"
    log.wait_for("outage_grace_served", 1)
    clock.now = START + 3600 - 5
    with pytest.raises(TransientError) as raised:
        a.get_token()
    assert isinstance(raised.value, ServerError) and raised.value.status == 503
    assert raised.value.retry_at is not None


def test_invalid_client_and_secret_fallback(clock: FakeClock) -> None:
    def answer(n: int, request: Any) -> TransportResponse:
        from conftest import basic_credentials

        _, secret = basic_credentials(request.headers)
        if secret == "old":
            return TransportResponse(200, [], token_body("at-old"))
        return TransportResponse(401, [], json.dumps({"error": "invalid_client"}).encode())

    log = EventLog()
    a = account(CountingTransport(answer=answer), clock, client_secret=["new", "old"], on_event=log)
    assert a.get_token() == "at-old"
    assert "secret_fallback" in log.types()

    b = account(CountingTransport(answer=answer), clock, client_secret="wrong")
    with pytest.raises(InvalidClientError) as raised:
        b.get_token()
    assert raised.value.kind == "invalid_client" and raised.value.fault == "credentials"
    assert raised.value.retryable is False
    with pytest.raises(InvalidClientError):  # held: no new request
        b.get_token()


def test_configuration_errors_are_held(clock: FakeClock) -> None:
    body = json.dumps({"error": "invalid_scope", "error_description": "scope not allowed"}).encode()
    transport = CountingTransport(answer=lambda n, r: TransportResponse(400, [], body))
    a = account(transport, clock, scope="nope")
    for _ in range(5):
        with pytest.raises(InvalidScopeError) as raised:
            a.get_token()
    assert raised.value.oauth_error == "invalid_scope"
    assert raised.value.description == "scope not allowed"
    assert transport.count == 1


def test_transport_exceptions_become_transport_errors(clock: FakeClock) -> None:
    def refuse(n: int, request: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    a = account(CountingTransport(answer=refuse), clock)
    with pytest.raises(TransportError) as raised:
        a.get_token()
    assert raised.value.kind == "transport" and raised.value.retryable
    assert "Connection refused" in str(raised.value)

    junk = account(CountingTransport(answer=lambda n, r: object()), clock)
    with pytest.raises(TransportError):
        junk.get_token()
    bad_headers = account(CountingTransport(answer=lambda n, r: (200, 5, b"{}")), clock)
    with pytest.raises(TransportError):
        bad_headers.get_token()


def test_invalidate_refetches_once(clock: FakeClock) -> None:
    transport = CountingTransport()
    a = account(transport, clock)
    first = a.get_token()
    assert a.invalidate(first) == "invalidated"
    second = a.get_token()
    assert second != first and transport.count == 2
    assert a.invalidate(first) == "not_current"
    assert a.invalidate(a.token()) == "rate_limited"  # within invalidate_min_interval
    assert a.get_token() == second


def test_tuple_and_object_responses_and_async_transport(clock: FakeClock) -> None:
    a = account(lambda r: (200, {"Content-Type": "application/json"}, token_body("at-tuple")), clock)
    assert a.get_token() == "at-tuple"

    class Answer:
        status_code = 200
        headers = {"Content-Type": "application/json"}
        content = token_body("at-object")

    b = account(lambda r: Answer(), clock)
    assert b.get_token() == "at-object"

    async def async_transport(request: Any) -> TransportResponse:
        await asyncio.sleep(0)
        return TransportResponse(200, [], token_body("at-async"))

    c = account(async_transport, clock)
    assert asyncio.run(c.get_token_async()) == "at-async"
    d = account(async_transport, clock)
    assert d.get_token() == "at-async"  # an async transport also serves sync callers


def test_get_token_async_with_sync_transport(clock: FakeClock) -> None:
    transport = CountingTransport()
    a = account(transport, clock)

    async def main() -> Any:
        return await a.get_token_async(), await a.token_async()

    token, details = asyncio.run(main())
    assert token == "at-1" and details.access_token == "at-1" and transport.count == 1


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"timeout": "ten"}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"refresh_margin": float("nan")}, "refresh_margin"),
        ({"refresh_margin": 10**9}, "refresh_margin"),
        ({"client_secret": 5}, "client_secret"),
        ({"client_secret": ["a", 5]}, "client_secret"),
        ({"client_secret": ""}, "client_secret"),
        ({"client_secret": None}, "client_secret"),
        ({"scope": [1]}, "scope"),
        ({"scope": "a b\u00e9"}, "scope[1]"),
        ({"audience": 7}, "audience"),
        ({"auth_method": "tls_client_auth"}, "auth_method"),
        ({"engine_options": {"colour": "red"}}, "colour"),
        ({"engine_options": {"backoff_jitter": "yes"}}, "backoff_jitter"),
        ({"max_response_bytes": 1}, "max_response_bytes"),
        ({"extra_params": 5}, "extra_params"),
        ({"extra_params": [("resource", 5)]}, "extra_params"),
        ({"extra_params": {"scope": "x"}}, "extra_params"),
        ({"client_secret": None, "client_secret_file": "/nonexistent/secret"}, "client_secret_file"),
        ({"client_secret_file": "/nonexistent/secret"}, "client_secret"),
    ],
)
def test_bad_arguments_name_the_field(clock: FakeClock, kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidConfigError) as raised:
        account(CountingTransport(), clock, **kwargs)
    assert raised.value.field == field, raised.value
    assert isinstance(raised.value, ValueError)


def test_token_url_and_client_id_are_checked(clock: FakeClock) -> None:
    with pytest.raises(InvalidConfigError) as raised:
        account(42, clock)
    assert raised.value.field == "transport"
    with pytest.raises(InvalidConfigError) as raised:
        ServiceAccount(token_url="http://auth.example/t", client_id="c", client_secret="s")
    assert raised.value.field == "token_url"
    with pytest.raises(InvalidConfigError) as raised:
        ServiceAccount(token_url=URL, client_id="", client_secret="s")
    assert raised.value.field == "client_id"
    with pytest.raises(TypeError):
        ServiceAccount(URL, "c", "s")  # type: ignore[misc]  # keyword-only


def test_failing_event_handler_does_not_break_tokens(clock: FakeClock) -> None:
    def explode(event: Any) -> None:
        raise RuntimeError("handler bug")

    a = account(CountingTransport(), clock, on_event=explode)
    assert a.get_token() == "at-1"


def test_events_carry_the_actor(clock: FakeClock) -> None:
    log = EventLog()
    a = account(CountingTransport(), clock, on_event=log)
    a.get_token()
    assert log.types() == ["refresh_started", "token_acquired"]
    for event in log.events:
        assert event["actor_type"] == "client" and event["actor_id"] == "billing-worker"


def test_repr_and_introspection(clock: FakeClock) -> None:
    a = account(CountingTransport(), clock)
    assert a.client_id == "billing-worker" and a.token_url == URL and a.state == "idle"
    assert "billing-worker" in repr(a)
    assert a.engine.fingerprint and len(a.engine.fingerprint) == 64
