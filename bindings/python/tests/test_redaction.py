"""No secret or access token in any repr, str, traceback or event."""

from __future__ import annotations

import json
import traceback
from typing import Any, List

import pytest

import tokenwell
from tokenwell import InvalidClientError, InvalidConfigError, ServiceAccount, TransportResponse

from conftest import CountingTransport, EventLog, FakeClock, token_body

SECRET = "Sup3r:S3cret+%&/value"
ACCESS = "ory_at_very-private-access-token"


def leaks(text: str) -> List[str]:
    import base64
    import urllib.parse

    forms = {SECRET, urllib.parse.quote_plus(SECRET), ACCESS}
    forms.add(base64.b64encode(f"c:{urllib.parse.quote_plus(SECRET)}".encode()).decode())
    return [form for form in forms if form in text]


def test_reprs_never_show_secrets_or_tokens(clock: FakeClock) -> None:
    transport = CountingTransport(answer=lambda n, r: TransportResponse(200, [], token_body(ACCESS)))
    account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret=[SECRET, SECRET + "2"],
                             transport=transport, clock=clock)
    token = account.token()
    assert token.access_token == ACCESS
    cache = tokenwell.TokenCache({"token_url": "https://a.example/t", "client_id": "c", "client_secret": SECRET})
    poll = cache.poll(1_700_000_000_000)
    post = tokenwell.TokenCache({"token_url": "https://a.example/t", "client_id": "c", "client_secret": SECRET,
                                 "auth_method": "client_secret_post"}).poll(1_700_000_000_000)
    native_token = cache.handle_response(poll.request.fetch_id, 200, [], token_body(ACCESS), 1_700_000_000_001)
    texts = [
        repr(account), str(account), repr(token), str(token), f"{token}", repr(transport.requests[0]),
        repr(poll), repr(poll.request), repr(post), repr(post.request), repr(cache), repr(native_token),
        repr(cache.poll(1_700_000_000_002)), repr(TransportResponse(200, [], token_body(ACCESS))),
        repr(account.engine),
    ]
    for text in texts:
        assert not leaks(text), text
    assert "[redacted]" in repr(token) and "[redacted]" in repr(poll.request)


def test_errors_and_tracebacks_are_scrubbed(clock: FakeClock) -> None:
    # A server that echoes the secret (and its form encoding) back in its error.
    import urllib.parse

    description = f"client {SECRET} / {urllib.parse.quote_plus(SECRET)} is not allowed"
    body = json.dumps({"error": "invalid_client", "error_description": description}).encode()
    log = EventLog()
    account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret=SECRET,
                             transport=CountingTransport(answer=lambda n, r: TransportResponse(401, [], body)),
                             clock=clock, on_event=log)
    with pytest.raises(InvalidClientError) as raised:
        account.get_token()
    error = raised.value
    rendered = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for text in (str(error), repr(error), rendered, str(error.description), json.dumps(log.events)):
        assert not leaks(text), text
    # Server text that held a credential is withheld whole, not cut around it.
    assert error.description == "[withheld: contained a credential]"


def test_transport_exception_text_is_scrubbed(clock: FakeClock) -> None:
    def boom(n: int, request: Any) -> Any:
        raise ConnectionError(f"proxy said: bad credentials {SECRET}")

    log = EventLog()
    account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret=SECRET,
                             transport=CountingTransport(answer=boom), clock=clock, on_event=log)
    with pytest.raises(tokenwell.TransportError) as raised:
        account.get_token()
    assert not leaks(str(raised.value)) and not leaks(json.dumps(log.events))


def test_config_errors_never_echo_values() -> None:
    cases = [
        dict(client_secret=SECRET + "\n"),
        dict(client_secret=[SECRET, ""]),
        dict(token_url=f"https://c:{SECRET}@auth.example/t"),
        dict(engine_options={"backoff_max_ms": SECRET}),
        dict(scope=[SECRET + " \u00e9"]),
        dict(extra_params={"client_secret": SECRET}),
    ]
    for overrides in cases:
        kwargs: Any = dict(token_url="https://auth.example/t", client_id="c", client_secret=SECRET)
        kwargs.update(overrides)
        with pytest.raises(InvalidConfigError) as raised:
            ServiceAccount(**kwargs)
        error = raised.value
        rendered = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        assert not leaks(str(error) + repr(error) + rendered), (overrides, str(error))
