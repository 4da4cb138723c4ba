"""The exception hierarchy: every engine error kind has its own class, grouped
by who is at fault, so callers can catch what they can act on.

    TokenError
    ├── ConfigurationError          fix the configuration (not retried until it changes)
    │   ├── InvalidConfigError      refused at construction; names the field (also a ValueError)
    │   ├── InvalidScopeError, InvalidTargetError, UnauthorizedClientError,
    │   │   UnsupportedGrantTypeError, InvalidRequestError, InvalidGrantError,
    │   │   RequestRejectedError
    │   ├── EndpointNotFoundError   404/405 from token_url: the URL is wrong
    │   ├── TlsCertificateError     the server's certificate is not trusted: set ca_file
    │   ├── DiscoveryFailedError    the issuer's metadata gave no usable token endpoint / method
    │   └── IssuerMismatchError     the metadata document names another issuer
    ├── InvalidClientError          the credentials were refused: rotate the secret, alert
    ├── TransientError              the engine retries with backoff
    │   ├── RateLimitedError, ServerError, TemporarilyUnavailableError,
    │   │   TransportError, RequestTimeoutError
    ├── MalformedResponseError      not a token response (HTML from a proxy, bad JSON, ...)
    └── HostError                   the engine was driven wrongly (fault ``host``)
        ├── StaleFetchError         the host reported a fetch the engine is not waiting for
        ├── ClosedError             the account was closed (``close()`` / ``aclose()``)
        └── DiscoveryCompleteError  not a failure: a metadata request succeeded (poll again)

The engine builds these through ``_from_engine`` (one table, ``_KIND_CLASSES``);
a test checks that table against every kind the engine defines. No message,
``repr`` or attribute ever holds a secret or an access token: the engine scrubs
server-provided text of the configured secrets before it gets here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Optional, Type

__all__ = [
    "TokenError",
    "ConfigurationError",
    "InvalidConfigError",
    "InvalidScopeError",
    "InvalidTargetError",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "InvalidRequestError",
    "InvalidGrantError",
    "RequestRejectedError",
    "EndpointNotFoundError",
    "TlsCertificateError",
    "DiscoveryFailedError",
    "IssuerMismatchError",
    "InvalidClientError",
    "TransientError",
    "RateLimitedError",
    "ServerError",
    "TemporarilyUnavailableError",
    "TransportError",
    "RequestTimeoutError",
    "MalformedResponseError",
    "StaleFetchError",
    "ClosedError",
    "DiscoveryCompleteError",
    "HostError",
    "SnapshotError",
    "error_class",
]


class TokenError(Exception):
    """A token could not be obtained.

    Attributes: ``kind`` (the engine's stable name, e.g. ``"invalid_client"``),
    ``fault`` (who has to act), ``retryable`` (the engine retries on its own),
    ``retry_at`` (aware ``datetime`` of the next allowed attempt, or ``None``;
    ``retry_at_ms`` in ms since the epoch), ``status`` (HTTP status), ``oauth_error``
    (the RFC 6749 ``error`` code), ``description`` (server text, scrubbed of secrets).
    """

    kind: str = "unknown"
    fault: str = "unknown"

    def __init__(
        self,
        message: str,
        *,
        kind: Optional[str] = None,
        fault: Optional[str] = None,
        retryable: bool = False,
        retry_at_ms: Optional[int] = None,
        status: Optional[int] = None,
        oauth_error: Optional[str] = None,
        description: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if fault is not None:
            self.fault = fault
        self.retryable = retryable
        self.retry_at_ms = retry_at_ms
        self.status = status
        self.oauth_error = oauth_error
        self.description = description

    @property
    def message(self) -> str:
        """The one-line message (the same as ``str(error)``)."""
        return str(self.args[0]) if self.args else ""

    @property
    def retry_at(self) -> Optional[datetime]:
        """When the engine next allows a token request (aware UTC), if known."""
        if self.retry_at_ms is None:
            return None
        return datetime.fromtimestamp(self.retry_at_ms / 1000.0, tz=timezone.utc)

    def _fields(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "fault": self.fault,
            "retryable": self.retryable,
            "retry_at_ms": self.retry_at_ms,
            "status": self.status,
            "oauth_error": self.oauth_error,
            "description": self.description,
        }

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}" for k, v in self._fields().items() if k != "description" and v is not None
        )
        return f"{type(self).__name__}({self.message!r}, {shown})"

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: Type[TokenError], message: str, state: Dict[str, Any]) -> TokenError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(TokenError):
    """The configuration is at fault (scope, audience, grant, endpoint): fix it.
    The engine does not retry until the configuration or the secrets change
    (or a long hold passes)."""

    fault = "configuration"


class InvalidConfigError(ConfigurationError, ValueError):
    """A configuration (constructor argument, option, environment variable or
    secret file) was refused. ``field`` names it; ``problem`` says what is wrong.
    The value itself is never echoed."""

    kind = "config"

    def __init__(self, message: str, *, field: Optional[str] = None, problem: Optional[str] = None, **kw: Any) -> None:
        kw.setdefault("kind", "config")
        kw.setdefault("fault", "configuration")
        super().__init__(message, **kw)
        self.field = field
        self.problem = problem

    def __repr__(self) -> str:
        return f"InvalidConfigError(field={self.field!r}, problem={self.problem!r})"


class InvalidScopeError(ConfigurationError):
    """A requested scope is unknown or not allowed for this client (``invalid_scope``)."""

    kind = "invalid_scope"


class InvalidTargetError(ConfigurationError):
    """A requested audience is not allowed for this client (``invalid_target``)."""

    kind = "invalid_target"


class UnauthorizedClientError(ConfigurationError):
    """The client may not use the client credentials grant (``unauthorized_client``)."""

    kind = "unauthorized_client"


class UnsupportedGrantTypeError(ConfigurationError):
    """The server does not support the client credentials grant."""

    kind = "unsupported_grant_type"


class InvalidRequestError(ConfigurationError):
    """The server found the request malformed (``invalid_request``), e.g. an audience
    the client may not request on Ory Hydra."""

    kind = "invalid_request"


class InvalidGrantError(ConfigurationError):
    """The server answered ``invalid_grant``."""

    kind = "invalid_grant"


class RequestRejectedError(ConfigurationError):
    """The server answered another RFC 6749 error code (e.g. ``access_denied``)."""

    kind = "rejected"


class EndpointNotFoundError(ConfigurationError):
    """The token URL answered 404 or 405 without an OAuth error: nothing takes
    token requests there. Check ``token_url`` (or ``TOKEN_URL`` / ``HYDRA_URL``)."""

    kind = "endpoint_not_found"


class TlsCertificateError(ConfigurationError):
    """The token endpoint's TLS certificate was not trusted (unknown CA, wrong
    host name, expired). If the server uses a private CA, trust it with
    ``ca_file`` or ``TOKENWELL_CA_FILE``; else check the host in ``token_url``."""

    kind = "tls_certificate"


class DiscoveryFailedError(ConfigurationError):
    """Issuer discovery found no usable metadata document: none at either
    well-known URL, no ``token_endpoint`` (or one refused like a bad
    ``token_url``), or no auth method both sides support. Check ``issuer``
    (``ISSUER_URL``). Held like other configuration errors."""

    kind = "discovery_failed"


class IssuerMismatchError(ConfigurationError):
    """The metadata document's ``issuer`` is not exactly the configured issuer
    (RFC 8414 §3.3), so its endpoints are not trusted. Configure the issuer
    exactly as the server spells it (a trailing ``/`` counts)."""

    kind = "issuer_mismatch"


class InvalidClientError(TokenError):
    """The server refused the client credentials (``invalid_client`` or a bare 401),
    with every configured secret tried: rotate or fix the secret, then alert."""

    kind = "invalid_client"
    fault = "credentials"


class TransientError(TokenError):
    """The authorization server or the network failed; the engine retries with backoff."""


class RateLimitedError(TransientError):
    """HTTP 429 or ``slow_down``."""

    kind = "rate_limited"
    fault = "authorization_server"


class ServerError(TransientError):
    """HTTP 5xx (or 408), or ``server_error``."""

    kind = "server_error"
    fault = "authorization_server"


class TemporarilyUnavailableError(TransientError):
    """``temporarily_unavailable``."""

    kind = "temporarily_unavailable"
    fault = "authorization_server"


class TransportError(TransientError):
    """The request could not be sent or the response not read."""

    kind = "transport"
    fault = "transport"


class RequestTimeoutError(TransientError):
    """The token request timed out."""

    kind = "timeout"
    fault = "transport"


class MalformedResponseError(TokenError):
    """The token endpoint (or a proxy in front of it) sent something that is not a
    token response. Retried, but it needs a look."""

    kind = "malformed_response"
    fault = "malformed_response"


class HostError(TokenError):
    """The engine was driven wrongly (fault ``host``): a bug in the host or in
    how the caller uses the account, not a problem with the server."""

    fault = "host"


class StaleFetchError(HostError):
    """The host reported an outcome for a fetch the engine is not waiting for."""

    kind = "stale_fetch"
    fault = "host"


class ClosedError(HostError):
    """The account was closed (``close()`` / ``aclose()``): it hands out no
    more tokens. The engine's kind ``closed``, worded by the engine."""

    kind = "closed"
    fault = "host"


class DiscoveryCompleteError(HostError):
    """Not a failure: the engine's answer to a metadata (discovery) request it
    accepted, raised by ``TokenCache.handle_response`` since there is no token
    yet. A host polls again, which sends the token request; ``ServiceAccount``
    never lets it reach a caller."""

    kind = "discovery_complete"
    fault = "host"


class SnapshotError(ValueError):
    """A persisted token snapshot was refused. ``reason`` is ``"corrupt"``,
    ``"unsupported_version"``, ``"fingerprint_mismatch"`` or ``"expired"``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> Any:
        return (SnapshotError, (self.reason, str(self)))


# The one table from engine kind to class. Checked against every kind the engine
# defines by tests/test_errors.py; a kind missing here would surface as the base
# TokenError, which that test forbids.
_KIND_CLASSES: Dict[str, Type[TokenError]] = {
    "config": InvalidConfigError,
    "invalid_client": InvalidClientError,
    "invalid_scope": InvalidScopeError,
    "invalid_target": InvalidTargetError,
    "unauthorized_client": UnauthorizedClientError,
    "unsupported_grant_type": UnsupportedGrantTypeError,
    "invalid_request": InvalidRequestError,
    "invalid_grant": InvalidGrantError,
    "rejected": RequestRejectedError,
    "endpoint_not_found": EndpointNotFoundError,
    "tls_certificate": TlsCertificateError,
    "discovery_failed": DiscoveryFailedError,
    "issuer_mismatch": IssuerMismatchError,
    "rate_limited": RateLimitedError,
    "server_error": ServerError,
    "temporarily_unavailable": TemporarilyUnavailableError,
    "transport": TransportError,
    "timeout": RequestTimeoutError,
    "malformed_response": MalformedResponseError,
    "stale_fetch": StaleFetchError,
    "closed": ClosedError,
    "discovery_complete": DiscoveryCompleteError,
}


def error_class(kind: str) -> Type[TokenError]:
    """The exception class for an engine error kind."""
    return _KIND_CLASSES.get(kind, TokenError)


def _from_engine(
    kind: str,
    fault: str,
    retryable: bool,
    retry_at_ms: Optional[int],
    status: Optional[int],
    oauth_error: Optional[str],
    description: Optional[str],
    message: str,
) -> TokenError:
    """Called by the native module for every engine ``TokenError``."""
    return error_class(kind)(
        message,
        kind=kind,
        fault=fault,
        retryable=retryable,
        retry_at_ms=retry_at_ms,
        status=status,
        oauth_error=oauth_error,
        description=description,
    )


def _config_error(field: str, problem: str, message: str) -> InvalidConfigError:
    """Called by the native module for every engine ``ConfigError`` (the engine
    words ``message``; refusals found in Python go through
    ``_native.config_error`` too)."""
    return InvalidConfigError(message, field=field, problem=problem, description=problem)
