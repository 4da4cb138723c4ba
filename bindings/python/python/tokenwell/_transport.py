"""Sending token requests: the default stdlib ``urllib`` transport, the
``httpx`` async transport, and the contract any ``transport=`` callable follows.

A transport receives a :class:`TransportRequest` and returns a
:class:`TransportResponse` (or a ``(status, headers, body)`` tuple, or any
object with ``status``/``status_code``, ``headers`` and ``body``/``content``)
for **every** HTTP answer, whatever its status: the engine classifies it.
It raises when no answer arrived; :func:`classify_failure` maps the exception
to the engine's transport error kinds (raise :class:`TransportFailure` to pick
one yourself). A transport must apply ``request.timeout`` to the whole
exchange, should stop reading after ``request.max_response_bytes + 1`` bytes,
must not follow redirects, and must not send a plain-http request through a
proxy (it carries the client's credentials).
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import io
import ipaddress
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, cast

from ._native import REDACTED

__all__ = [
    "TransportRequest",
    "TransportResponse",
    "TransportFailure",
    "urllib_transport",
    "httpx_async_transport",
    "classify_failure",
    "ca_bundle",
    "tls_context",
]

Headers = List[Tuple[str, str]]


class TransportRequest:
    """One token request to send, exactly as the engine built it.

    ``headers`` and ``body`` carry the client's credentials; ``repr`` redacts them.
    ``ca_file`` is the CA bundle (PEM) to verify https against, or ``None`` for
    the system store: the account's ``ca_file``, else ``TOKENWELL_CA_FILE``, else
    ``REQUESTS_CA_BUNDLE`` (see :func:`ca_bundle`).
    """

    __slots__ = ("fetch_id", "method", "url", "headers", "body", "timeout", "max_response_bytes", "ca_file")

    def __init__(
        self,
        fetch_id: int,
        method: str,
        url: str,
        headers: Headers,
        body: bytes,
        timeout: float,
        max_response_bytes: int,
        ca_file: Optional[str] = None,
    ) -> None:
        self.fetch_id = fetch_id
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.ca_file = ca_file

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
    ``"timeout"``, ``"connect"``, ``"io"``, ``"tls"`` (the server's certificate
    was not trusted: a configuration fault), ``"other"``."""

    KINDS = ("timeout", "connect", "io", "tls", "other")

    def __init__(self, kind: str, message: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}")
        super().__init__(message)
        self.kind = kind


def _certificate_refusal(error: BaseException) -> Optional[ssl.SSLCertVerificationError]:
    """The certificate verification failure behind ``error``, if any: urllib wraps
    it in ``URLError``, httpx chains it as the cause of its ``ConnectError``."""
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        if isinstance(current, urllib.error.URLError) and isinstance(current.reason, BaseException):
            current = current.reason
        else:
            current = current.__cause__ or current.__context__
    return None


def classify_failure(error: BaseException) -> Tuple[str, str]:
    """``(kind, message)`` for an exception raised by a transport."""
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, TransportFailure):
        return error.kind, str(error)
    refusal = _certificate_refusal(error)
    if refusal is not None:
        return "tls", f"{type(refusal).__name__}: {refusal}"
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


# ---- TLS: which CA bundle, and the SSL context for it ------------------------------


def ca_bundle(ca_file: Optional[str] = None) -> Optional[str]:
    """The CA bundle the default transports trust: ``ca_file`` if given, else
    ``$TOKENWELL_CA_FILE``, else ``$REQUESTS_CA_BUNDLE``; ``None`` means the
    system store (where OpenSSL itself honours ``$SSL_CERT_FILE``)."""
    if ca_file:
        return ca_file
    for variable in ("TOKENWELL_CA_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(variable, "").strip()
        if value:
            return value
    return None


_CONTEXTS: Dict[Tuple[Any, ...], ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(ca_file: Optional[str]) -> ssl.SSLContext:
    """A verifying client context trusting exactly ``ca_file`` (a PEM bundle), or
    the system store when ``None``. Cached while the file is unchanged, so a
    rotated bundle is picked up and an unchanged one is not parsed per request.
    Raises ``OSError`` or ``ssl.SSLError`` when the bundle cannot be loaded."""
    if ca_file:
        st = os.stat(ca_file)
        key: Tuple[Any, ...] = ("file", os.path.abspath(ca_file), st.st_ino, st.st_mtime_ns, st.st_size)
    else:
        key = ("system", os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(key)
    if context is None:
        context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        with _CONTEXTS_LOCK:
            if len(_CONTEXTS) >= 16:
                _CONTEXTS.clear()
            _CONTEXTS[key] = context
    return context


def _tls_context_for(request: "TransportRequest") -> ssl.SSLContext:
    """The request's context; a bundle that cannot be loaded is a ``tls`` failure
    (a configuration fault), naming where the bundle came from."""
    bundle = ca_bundle(request.ca_file)
    try:
        return tls_context(bundle)
    except (OSError, ssl.SSLError, ValueError) as error:
        source = "ca_file" if request.ca_file else "TOKENWELL_CA_FILE or REQUESTS_CA_BUNDLE"
        raise TransportFailure(
            "tls", f"the CA bundle {bundle!r} (from {source}) cannot be loaded: {type(error).__name__}: {error}"
        ) from None


# ---- the default transport: urllib, with one deadline for the whole exchange --------
#
# urllib applies its ``timeout`` to each socket operation, so a server sending a
# byte a second could hold a request for ever. Here every blocking step (name
# lookup, TCP connect, the proxy's CONNECT answer, the TLS handshake, each send,
# each read of the status line, headers and body) is given only the time left
# until one deadline, and a step started past it fails at once with a timeout.


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("the token request did not complete within the timeout")
    return left


def _resolve(host: str, port: int, deadline: float) -> List[Any]:
    """``getaddrinfo`` within the deadline. Name lookup cannot be interrupted, so
    a lookup that outlives the deadline is left to finish on its own thread."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    outcome: List[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except BaseException as error:  # handed to the caller below
            outcome.append(error)
        finally:
            done.set()

    threading.Thread(target=lookup, name="tokenwell-resolve", daemon=True).start()
    if not done.wait(_time_left(deadline)):
        raise socket.timeout("resolving the token endpoint's host did not complete within the timeout")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return cast(List[Any], outcome[0])


def _connect(address: Tuple[str, int], deadline: float, source_address: Optional[Tuple[str, int]]) -> socket.socket:
    """``socket.create_connection``, but every address shares the one deadline."""
    host, port = address
    last: Optional[OSError] = None
    for family, kind, proto, _, target in _resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_time_left(deadline))
            if source_address:
                sock.bind(source_address)
            sock.connect(target)
            return sock
        except OSError as error:
            sock.close()
            if isinstance(error, socket.timeout):
                raise
            last = error
    raise last if last is not None else OSError(f"no address found for {host}")


class _DeadlineReader(io.RawIOBase):
    """The response's byte source: each read waits only for the time left."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        self._sock.settimeout(_time_left(self._deadline))
        return cast(Optional[int], self._raw.readinto(buffer))

    def close(self) -> None:
        if not self.closed:
            self._raw.close()  # gives the socket back (http.client counts the readers)
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        raw = self.fp.detach()  # the socket's reader, nothing buffered yet
        self.fp = io.BufferedReader(_DeadlineReader(raw, sock, deadline))


class _DeadlineHTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose connect, sends and reads share one deadline."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        self._create_connection = self._open_socket
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)  # type: ignore[assignment]

    def _open_socket(self, address: Tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        return _connect(address, self._deadline, source_address)

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.settimeout(_time_left(self._deadline))
        super().send(data)


class _DeadlineHTTPSConnection(_DeadlineHTTPConnection, http.client.HTTPSConnection):
    def connect(self) -> None:
        # HTTPSConnection.connect, with the handshake given only the time left.
        # Through a proxy, the name checked is the token endpoint's (the tunnel's).
        http.client.HTTPConnection.connect(self)
        assert self.sock is not None
        self.sock.settimeout(_time_left(self._deadline))
        server_hostname = self._tunnel_host or self.host  # type: ignore[attr-defined]
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)  # type: ignore[attr-defined]


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_DeadlineHTTPConnection, deadline=self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._deadline = deadline
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_DeadlineHTTPSConnection, deadline=self._deadline)
        return self.do_open(connection, req, context=self._tls)


def _proxies_for(url: str) -> Dict[str, str]:
    """The proxy for a token request. Plain http never goes through one: the
    request carries the client's credentials, and a proxy would see them in
    clear. https honours ``HTTPS_PROXY`` / ``https_proxy`` (urllib checks
    ``NO_PROXY`` for the host); the TLS session runs end to end through a
    CONNECT tunnel and is verified against the token endpoint's name."""
    if urllib.parse.urlsplit(url).scheme.lower() != "https":
        return {}
    proxy = urllib.request.getproxies().get("https")
    return {"https": proxy} if proxy else {}


def _opener(request: "TransportRequest", deadline: float) -> urllib.request.OpenerDirector:
    https = urllib.parse.urlsplit(request.url).scheme.lower() == "https"
    opener = urllib.request.OpenerDirector()
    handlers: List[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(_proxies_for(request.url)),
        urllib.request.UnknownHandler(),
        _HTTPHandler(deadline),
        urllib.request.HTTPDefaultErrorHandler(),
        _NoRedirect(),
        urllib.request.HTTPErrorProcessor(),
    ]
    if https:
        handlers.append(_HTTPSHandler(deadline, _tls_context_for(request)))
    for handler in handlers:
        opener.add_handler(handler)
    return opener


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
    """The default transport: ``urllib.request``, no redirects, at most
    ``max_response_bytes + 1`` bytes read, and ``request.timeout`` bounding the
    whole exchange (name lookup, connect, proxy tunnel, TLS handshake, status
    line, headers, body), however slowly the server sends.

    https is verified against :func:`ca_bundle` (``request.ca_file``, then
    ``TOKENWELL_CA_FILE``, ``REQUESTS_CA_BUNDLE``, the system store) and honours
    ``HTTPS_PROXY`` / ``NO_PROXY``; plain http never uses a proxy."""
    deadline = time.monotonic() + request.timeout
    outgoing = urllib.request.Request(request.url, data=request.body, method=request.method)
    for name, value in request.headers:
        outgoing.add_header(name, value)
    try:
        response: Any = _opener(request, deadline).open(outgoing, timeout=request.timeout)
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
    no redirects, ``request.timeout`` on the whole exchange, bounded body, the
    same CA bundle as :func:`urllib_transport`. httpx's own proxy settings apply
    to https (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``); plain http never uses
    a proxy (``trust_env`` is off for it)."""
    import httpx

    limit = request.max_response_bytes + 1
    https = urllib.parse.urlsplit(request.url).scheme.lower() == "https"
    verify: Any = _tls_context_for(request) if https else True

    async def exchange() -> TransportResponse:
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=request.timeout, verify=verify, trust_env=https
        ) as client:
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
