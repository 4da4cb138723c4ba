"""Sending token requests: the default stdlib ``urllib`` transport, the
``httpx`` async transport, and the contract any ``transport=`` callable follows.

A transport receives a :class:`TransportRequest` and returns a
:class:`TransportResponse` (or a ``(status, headers, body)`` tuple, or any
object with ``status``/``status_code``, ``headers`` and ``body``/``content``)
for **every** HTTP answer, whatever its status: the engine classifies it.
It raises when no answer arrived; :func:`classify_failure` maps the exception
to the engine's transport error kinds (raise :class:`TransportFailure` to pick
one yourself). A transport must apply ``request.timeout`` and should stop
reading after ``request.max_response_bytes + 1`` bytes.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from ._native import REDACTED

__all__ = [
    "TransportRequest",
    "TransportResponse",
    "TransportFailure",
    "urllib_transport",
    "httpx_async_transport",
    "classify_failure",
]

Headers = List[Tuple[str, str]]


class TransportRequest:
    """One token request to send, exactly as the engine built it.

    ``headers`` and ``body`` carry the client's credentials; ``repr`` redacts them.
    """

    __slots__ = ("fetch_id", "method", "url", "headers", "body", "timeout", "max_response_bytes")

    def __init__(
        self,
        fetch_id: int,
        method: str,
        url: str,
        headers: Headers,
        body: bytes,
        timeout: float,
        max_response_bytes: int,
    ) -> None:
        self.fetch_id = fetch_id
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        shown = [(n, f"{v.split(' ', 1)[0]} {REDACTED}" if n.lower() == "authorization" else v) for n, v in self.headers]
        return (
            f"TransportRequest(fetch_id={self.fetch_id}, method={self.method!r}, url={self.url!r}, "
            f"headers={shown!r}, body=<{len(self.body)} bytes>, timeout={self.timeout})"
        )


class TransportResponse(NamedTuple):
    """An HTTP answer from the token endpoint. ``repr`` does not show the body
    (it holds the access token)."""

    status: int
    headers: Sequence[Tuple[str, str]]
    body: bytes

    def __repr__(self) -> str:
        return f"TransportResponse(status={self.status}, headers={list(self.headers)!r}, body=<{len(self.body)} bytes>)"


class TransportFailure(Exception):
    """Raised by a transport when no HTTP answer arrived. ``kind`` is one of
    ``"timeout"``, ``"connect"``, ``"io"``, ``"other"``."""

    KINDS = ("timeout", "connect", "io", "other")

    def __init__(self, kind: str, message: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}")
        super().__init__(message)
        self.kind = kind


def classify_failure(error: BaseException) -> Tuple[str, str]:
    """``(kind, message)`` for an exception raised by a transport."""
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, TransportFailure):
        return error.kind, str(error)
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        return classify_failure(error.reason)[0], message
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, (socket.timeout, TimeoutError, asyncio.TimeoutError)) or "TimeoutException" in names:
        return "timeout", message
    if isinstance(error, (ConnectionRefusedError, socket.gaierror, ssl.SSLError)) or "ConnectError" in names:
        return "connect", message
    if isinstance(error, urllib.error.URLError):
        return "connect", message
    if isinstance(error, (OSError, http.client.HTTPException)) or "TransportError" in names:
        return "io", message
    return "other", message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: the engine reports a 3xx as a configuration problem."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _read_limited(response: Any, limit: int, deadline: float) -> bytes:
    read = getattr(response, "read1", None) or response.read
    chunks: List[bytes] = []
    total = 0
    while total < limit:
        if time.monotonic() > deadline:
            raise TransportFailure("timeout", "the response body did not arrive within the timeout")
        chunk = read(min(65536, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    missing = getattr(response, "length", None)
    if total < limit and missing:  # the connection closed before Content-Length bytes arrived
        raise http.client.IncompleteRead(b"".join(chunks), missing)
    return b"".join(chunks)


def urllib_transport(request: TransportRequest) -> TransportResponse:
    """The default transport: ``urllib.request`` (honours proxy environment
    variables), no redirects, ``request.timeout`` on connect and on every read
    and on the whole body, at most ``max_response_bytes + 1`` bytes read."""
    deadline = time.monotonic() + request.timeout
    outgoing = urllib.request.Request(request.url, data=request.body, method=request.method)
    for name, value in request.headers:
        outgoing.add_header(name, value)
    try:
        response: Any = _OPENER.open(outgoing, timeout=request.timeout)
    except urllib.error.HTTPError as answer:  # any non-2xx status is still an answer
        response = answer
    try:
        status = int(getattr(response, "status", None) or response.getcode())
        headers = list(response.headers.items()) if response.headers is not None else []
        body = b"" if getattr(response, "fp", True) is None else _read_limited(
            response, request.max_response_bytes + 1, deadline
        )
    finally:
        response.close()
    return TransportResponse(status, headers, body)


async def httpx_async_transport(request: TransportRequest) -> TransportResponse:
    """The async transport when ``httpx`` is installed (``pip install tokenwell[httpx]``):
    no redirects, ``request.timeout`` on the whole exchange, bounded body."""
    import httpx

    limit = request.max_response_bytes + 1

    async def exchange() -> TransportResponse:
        async with httpx.AsyncClient(follow_redirects=False, timeout=request.timeout) as client:
            async with client.stream(
                request.method, request.url, headers=request.headers, content=request.body
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= limit:
                        break
                return TransportResponse(response.status_code, list(response.headers.multi_items()), bytes(body[:limit]))

    try:
        return await asyncio.wait_for(exchange(), timeout=request.timeout)
    except asyncio.TimeoutError:
        raise TransportFailure("timeout", "the token request did not complete within the timeout") from None


def have_httpx() -> bool:
    """Whether ``httpx`` can be imported."""
    try:
        import httpx  # noqa: F401
    except ImportError:
        return False
    return True


def normalize_response(value: Any) -> Optional[Tuple[int, Any, Any]]:
    """``(status, headers, body)`` from whatever a transport returned, or ``None``."""
    if isinstance(value, tuple) and len(value) == 3:
        return value[0], value[1], value[2]
    status = getattr(value, "status", None)
    if status is None:
        status = getattr(value, "status_code", None)
    if status is None:
        return None
    body = getattr(value, "body", None)
    if body is None:
        body = getattr(value, "content", b"")
    return status, getattr(value, "headers", ()), body
