"""tokenwell: a correct, fast, self-healing OAuth 2.0 Client Credentials token
for Python services and crons, driven by the tokenwell Rust engine.

    from tokenwell import ServiceAccount

    account = ServiceAccount(
        token_url="https://hydra.example/oauth2/token",
        client_id="billing-worker",
        client_secret=os.environ["CLIENT_SECRET"],
        scope=["billing:read"],
    )
    requests.get(url, auth=account.requests_auth())

The engine (``TokenCache``, sans-IO) decides when to fetch, retry and which
secret to use; ``ServiceAccount`` is the host that sends requests, keeps time,
and persists the token for crons (``cache_path``).
"""

from ._errors import (
    ConfigurationError,
    EndpointNotFoundError,
    InvalidClientError,
    InvalidConfigError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
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
from ._native import ENGINE_VERSION, Poll, Token, TokenCache, TokenRequest
from ._account import AccessToken, ServiceAccount
from ._transport import (
    TransportFailure,
    TransportRequest,
    TransportResponse,
    httpx_async_transport,
    urllib_transport,
)

__version__ = ENGINE_VERSION

__all__ = [
    "ServiceAccount",
    "AccessToken",
    "TokenCache",
    "Poll",
    "Token",
    "TokenRequest",
    "TransportRequest",
    "TransportResponse",
    "TransportFailure",
    "urllib_transport",
    "httpx_async_transport",
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
    "InvalidClientError",
    "TransientError",
    "RateLimitedError",
    "ServerError",
    "TemporarilyUnavailableError",
    "TransportError",
    "RequestTimeoutError",
    "MalformedResponseError",
    "StaleFetchError",
    "SnapshotError",
    "error_class",
    "ENGINE_VERSION",
    "__version__",
]
