"""tokenwell: a correct, fast, self-healing OAuth 2.0 Client Credentials token
for Python services and crons, driven by the tokenwell Rust engine.

    from tokenwell import RequestsAuth, ServiceAccount

    account = ServiceAccount(
        token_url="https://hydra.example/oauth2/token",
        client_id="billing-worker",
        client_secret=os.environ["CLIENT_SECRET"],
        scope=["billing:read"],
    )
    requests.get(url, auth=RequestsAuth(account))

The engine (``TokenCache``, sans-IO) decides when to fetch, retry and which
secret to use, the environment's meaning (``from_env``), secret-file
rotation and the 401 rule; ``ServiceAccount`` is the host that sends
requests, keeps time and an idle timer, and persists the token for crons
(``cache_path``).
"""

from typing import TYPE_CHECKING, Any

from ._errors import (
    ClosedError,
    HostError,
    ConfigurationError,
    DiscoveryCompleteError,
    DiscoveryFailedError,
    EndpointNotFoundError,
    InvalidClientError,
    InvalidConfigError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    IssuerMismatchError,
    MalformedResponseError,
    RateLimitedError,
    RequestRejectedError,
    RequestTimeoutError,
    ServerError,
    SnapshotError,
    StaleFetchError,
    TemporarilyUnavailableError,
    TlsCertificateError,
    TokenError,
    TransientError,
    TransportError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    error_class,
)
from ._native import ENGINE_VERSION, Config, PollResult, Token, TokenCache, TokenRequest, retry_request
from ._token import AccessToken, TokenSource
from ._account import ServiceAccount
from ._requests_auth import RequestsAuth
from ._transport import TransportFailure, TransportRequest, TransportResponse
from ._urllib import urllib_transport
from ._httpx_transport import HttpxAsyncTransport, httpx_async_transport

if TYPE_CHECKING:  # pragma: no cover
    from ._httpx_auth import HttpxAuth

__version__ = ENGINE_VERSION


def __getattr__(name: str) -> Any:
    # HttpxAuth subclasses httpx.Auth: httpx is imported only when it is asked for.
    if name == "HttpxAuth":
        try:
            from ._httpx_auth import HttpxAuth
        except ImportError as missing:
            if missing.name != "httpx":
                raise
            return _HttpxAuthNeedsHttpx
        return HttpxAuth
    raise AttributeError(f"module 'tokenwell' has no attribute {name!r}")


class _HttpxAuthNeedsHttpx:
    """``HttpxAuth`` where httpx is not installed: says so when used (so that
    ``from tokenwell import *`` still works without httpx)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError("HttpxAuth needs httpx: pip install 'tokenwell[httpx]'")

# The poll outcome's former name (one name in every language now: PollResult).
Poll = PollResult

__all__ = [
    "ServiceAccount",
    "AccessToken",
    "TokenSource",
    "RequestsAuth",
    "HttpxAuth",
    "retry_request",
    "TokenCache",
    "Config",
    "PollResult",
    "Token",
    "TokenRequest",
    "TransportRequest",
    "TransportResponse",
    "TransportFailure",
    "urllib_transport",
    "httpx_async_transport",
    "HttpxAsyncTransport",
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
    "ENGINE_VERSION",
    "__version__",
]
