"""The asyncio transport when httpx is installed (``pip install tokenwell[httpx]``).

:class:`HttpxAsyncTransport` keeps one ``httpx.AsyncClient`` per event loop
(a client belongs to the loop it first ran on) for the life of the account,
instead of building one per token request: building a client builds its TLS
context, which cost more than the request itself on loopback. The account
closes it in ``close()`` / ``aclose()``. :func:`httpx_async_transport` is the
one-shot form (a client per call) for callers passing ``transport=``.

Both: the request's method (``GET`` without a body for issuer discovery), no
redirects, ``request.timeout`` on the whole exchange, a bounded
body, the CA bundle of :func:`~tokenwell._transport.ca_bundle`; httpx's own
proxy settings apply to https (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``),
and plain http never uses a proxy (``trust_env`` is off for it).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import urllib.parse
import weakref
from typing import TYPE_CHECKING, Any, Optional, Set, Tuple

from ._transport import TransportFailure, TransportRequest, TransportResponse, tls_context_for

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = ["HttpxAsyncTransport", "httpx_async_transport"]

# httpx builds a TLS context for every client, even one that only speaks plain
# http, unless it is given one: this one is never used for a handshake.
_PLAIN_HTTP_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _client_settings(request: TransportRequest) -> Tuple[ssl.SSLContext, bool]:
    https = urllib.parse.urlsplit(request.url).scheme.lower() == "https"
    return (tls_context_for(request) if https else _PLAIN_HTTP_CONTEXT), https


def _new_client(verify: ssl.SSLContext, https: bool) -> "httpx.AsyncClient":
    import httpx

    # No keep-alive: token requests are minutes apart (single flight makes a
    # stampede one request), so a kept connection would only outlive its loop
    # when asyncio.run() returns. What is reused is the client itself.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(follow_redirects=False, verify=verify, trust_env=https, limits=limits)


async def _exchange(client: "httpx.AsyncClient", request: TransportRequest) -> TransportResponse:
    limit = request.max_response_bytes + 1

    async def exchange() -> TransportResponse:
        # A GET (issuer discovery) is sent without a body.
        content = None if request.method in ("GET", "HEAD") else request.body
        async with client.stream(
            request.method, request.url, headers=request.headers, content=content, timeout=request.timeout
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


async def httpx_async_transport(request: TransportRequest) -> TransportResponse:
    """One token request on a client of its own (closed before returning)."""
    verify, https = _client_settings(request)
    async with _new_client(verify, https) as client:
        return await _exchange(client, request)


class HttpxAsyncTransport:
    """An async transport that reuses one ``httpx.AsyncClient`` per event loop.

    A client is rebuilt when the TLS context changes (a rewritten CA bundle);
    clients of loops that have closed are dropped. ``close()`` closes every
    client it can reach (awaiting nothing); ``aclose()`` also awaits the
    current loop's. A closed transport refuses further requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Tuple[ssl.SSLContext, bool, httpx.AsyncClient]]" = (
            weakref.WeakKeyDictionary()
        )
        # Closes in progress (tasks, or futures on another thread's loop), kept alive until done.
        self._closing: Set[Any] = set()
        self._closed = False

    async def __call__(self, request: TransportRequest) -> TransportResponse:
        return await _exchange(self._client_for(request), request)

    def _client_for(self, request: TransportRequest) -> "httpx.AsyncClient":
        loop = asyncio.get_running_loop()
        verify, https = _client_settings(request)
        with self._lock:
            if self._closed:
                raise TransportFailure("other", "the transport was closed")
            for other in [other for other in self._clients if other.is_closed()]:
                del self._clients[other]  # its connections went with the loop
            current = self._clients.get(loop)
            if current is not None and current[0] is verify and current[1] == https:
                return current[2]
            client = _new_client(verify, https)
            self._clients[loop] = (verify, https, client)
        if current is not None:
            self._close_on(loop, current[2])
        return client

    def _close_on(self, loop: asyncio.AbstractEventLoop, client: "httpx.AsyncClient") -> None:
        """Closes ``client`` on its loop without waiting, if that loop still runs."""
        if loop.is_closed():
            return
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        closing: Any
        if running is loop:
            closing = loop.create_task(client.aclose())
        elif loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
        else:
            return  # a stopped loop: nothing can run the close; the client goes with it
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _take_all(self) -> "list[Tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]]":
        with self._lock:
            self._closed = True
            taken = [(loop, entry[2]) for loop, entry in self._clients.items()]
            self._clients.clear()
        return taken

    def close(self) -> None:
        """Closes every client whose loop still runs (in the background)."""
        for loop, client in self._take_all():
            self._close_on(loop, client)

    async def aclose(self) -> None:
        """Closes every client, awaiting the current loop's."""
        current = asyncio.get_running_loop()
        for loop, client in self._take_all():
            if loop is current:
                await client.aclose()
            else:
                self._close_on(loop, client)
