"""What callers hold: an :class:`AccessToken`, and the :class:`TokenSource`
protocol the request adapters (``RequestsAuth``, ``HttpxAuth``) depend on.

A ``ServiceAccount`` is a token source; so is anything else with these three
methods, which keeps the adapters free of the account (as google-auth's
transport adapters depend on credentials, never the reverse).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol, Tuple, runtime_checkable

from . import _native

__all__ = ["AccessToken", "TokenSource"]


@runtime_checkable
class TokenSource(Protocol):
    """Hands out bearer tokens and hears about refused ones.

    ``invalidate(token)`` returns the engine's outcome, ``"invalidated"``,
    ``"not_current"`` or ``"rate_limited"``; the adapters retry a 401 once when
    the engine's 401 rule (``retry_request``) says so."""

    def get_token(self) -> str:
        """A valid access token."""
        ...

    async def get_token_async(self) -> str:
        """A valid access token, for asyncio."""
        ...

    def invalidate(self, token: str) -> str:
        """An API answered 401 for ``token``."""
        ...


class AccessToken:
    """A token as handed to callers: ``access_token``, ``token_type``,
    ``expires_at`` (aware UTC ``datetime``), ``scope`` (tuple), ``received_at``.
    ``repr`` and ``str`` never show the token itself."""

    __slots__ = ("access_token", "token_type", "expires_at", "scope", "received_at")

    access_token: str
    token_type: str
    expires_at: datetime
    scope: Tuple[str, ...]
    received_at: datetime

    def __init__(
        self,
        access_token: str,
        token_type: str,
        expires_at: datetime,
        scope: Tuple[str, ...],
        received_at: datetime,
    ) -> None:
        object.__setattr__(self, "access_token", access_token)
        object.__setattr__(self, "token_type", token_type)
        object.__setattr__(self, "expires_at", expires_at)
        object.__setattr__(self, "scope", tuple(scope))
        object.__setattr__(self, "received_at", received_at)

    @classmethod
    def _from_native(cls, token: "_native.Token") -> "AccessToken":
        return cls(
            token.access_token,
            token.token_type,
            datetime.fromtimestamp(token.expires_at / 1000.0, tz=timezone.utc),
            token.scope,
            datetime.fromtimestamp(token.received_at / 1000.0, tz=timezone.utc),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("AccessToken is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccessToken):
            return NotImplemented
        return (self.access_token, self.expires_at, self.scope) == (other.access_token, other.expires_at, other.scope)

    def __hash__(self) -> int:
        return hash((self.access_token, self.expires_at))

    def __repr__(self) -> str:
        return (
            f"AccessToken(access_token='{_native.REDACTED}', token_type={self.token_type!r}, "
            f"expires_at={self.expires_at.isoformat()!r}, scope={self.scope!r})"
        )

    __str__ = __repr__
