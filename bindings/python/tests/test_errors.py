"""Every engine error kind maps to its own ``TokenError`` subclass, grouped by fault."""

from __future__ import annotations

import pickle
from datetime import timezone

import pytest

import tokenwell
from tokenwell import (
    ConfigurationError,
    InvalidClientError,
    InvalidConfigError,
    MalformedResponseError,
    HostError,
    TokenError,
    TransientError,
    error_class,
)
from tokenwell import _errors, _native

FAULT_GROUPS = {
    "configuration": ConfigurationError,
    "credentials": InvalidClientError,
    "authorization_server": TransientError,
    "transport": TransientError,
    "malformed_response": MalformedResponseError,
    "host": HostError,
}

KINDS = _native.error_kinds()


def test_the_table_covers_exactly_the_engine_kinds() -> None:
    assert len(KINDS) >= 18
    assert set(_errors._KIND_CLASSES) == {kind for kind, _, _ in KINDS}


def test_a_wrong_url_and_an_untrusted_certificate_are_configuration_faults() -> None:
    assert error_class("endpoint_not_found") is tokenwell.EndpointNotFoundError
    assert error_class("tls_certificate") is tokenwell.TlsCertificateError
    for kind in ("endpoint_not_found", "tls_certificate"):
        error = _native.make_token_error(kind, "what happened")
        assert isinstance(error, ConfigurationError)
        assert (error.fault, error.retryable) == ("configuration", False)


@pytest.mark.parametrize("kind, fault, retryable", KINDS, ids=[k for k, _, _ in KINDS])
def test_every_kind_has_its_own_class_in_its_fault_group(kind: str, fault: str, retryable: bool) -> None:
    cls = error_class(kind)
    assert cls is not TokenError, f"{kind} falls back to the base class"
    assert issubclass(cls, FAULT_GROUPS[fault]), f"{kind} ({fault}) maps to {cls.__name__}"
    assert cls.kind == kind
    assert getattr(tokenwell, cls.__name__) is cls  # exported
    # The engine's own error of this kind arrives as that class with every field.
    error = _native.make_token_error(kind, "what happened", 503)
    assert type(error) is cls
    assert (error.kind, error.fault, error.retryable, error.status) == (kind, fault, retryable, 503)
    assert error.description == "what happened"
    assert kind in str(error)
    # Retryable kinds are the transient ones and malformed responses.
    assert retryable == issubclass(cls, (TransientError, MalformedResponseError))


def test_classes_are_distinct() -> None:
    classes = [error_class(kind) for kind, _, _ in KINDS]
    assert len(set(classes)) == len(classes)


def test_invalid_config_error_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError) as raised:
        tokenwell.TokenCache({"client_id": "c"})
    error = raised.value
    assert isinstance(error, InvalidConfigError) and isinstance(error, ConfigurationError)
    assert error.field == "token_url" and error.kind == "config"
    assert str(error) == "invalid configuration: token_url: is required"


def test_retry_at_is_an_aware_datetime_and_errors_pickle() -> None:
    cache = tokenwell.TokenCache({"token_url": "https://a.example/t", "client_id": "c", "client_secret": "secret-x",
                                  "backoff_jitter": False})
    poll = cache.poll(1_700_000_000_000)
    error = cache.handle_transport_error(poll.request.fetch_id, "timeout", "read timed out", 1_700_000_000_100)
    assert isinstance(error, tokenwell.RequestTimeoutError)
    assert error.retry_at_ms == 1_700_000_001_100
    assert error.retry_at is not None and error.retry_at.tzinfo is timezone.utc
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and again.retry_at_ms == error.retry_at_ms and str(again) == str(error)
    failed = cache.poll(1_700_000_000_200)
    assert failed.result == "fail" and isinstance(failed.error, tokenwell.RequestTimeoutError)
    refused = pickle.loads(pickle.dumps(_native.config_error("scope[0]", "is empty")))
    assert refused.field == "scope[0]"


def test_snapshot_error_reasons() -> None:
    cache = tokenwell.TokenCache({"token_url": "https://a.example/t", "client_id": "c", "client_secret": "x"})
    for text, reason in [("nope", "corrupt"), ('{"version": 9}', "unsupported_version")]:
        with pytest.raises(tokenwell.SnapshotError) as raised:
            cache.import_snapshot(text, 1_700_000_000_000)
        assert raised.value.reason == reason


def test_native_arguments_are_checked() -> None:
    cache = tokenwell.TokenCache({"token_url": "https://a.example/t", "client_id": "c", "client_secret": "x"})
    with pytest.raises(TypeError, match="now_ms"):
        cache.poll("soon")
    with pytest.raises(ValueError, match="now_ms"):
        cache.poll(-5)
    with pytest.raises(ValueError, match="kind"):
        cache.handle_transport_error(1, "meltdown", "", 0)
    with pytest.raises(ValueError, match="status"):
        cache.handle_response(1, 70000, [], b"", 0)
    with pytest.raises(TypeError, match="headers"):
        cache.handle_response(1, 200, [("a",)], b"", 0)
    with pytest.raises(TypeError, match="body"):
        cache.handle_response(1, 200, [], 12, 0)
    with pytest.raises(TypeError, match="config"):
        tokenwell.TokenCache(["not", "a", "dict"])
    with pytest.raises(InvalidConfigError) as raised:
        tokenwell.TokenCache({"token_url": "https://a.example/t", "client_id": "c", "client_secret": object()})
    assert raised.value.field == "client_secret"
