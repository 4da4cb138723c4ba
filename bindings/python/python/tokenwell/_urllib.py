"""The default transport: stdlib ``urllib``, with one deadline bounding the
whole exchange, no redirects, a bounded body, and no proxy for plain http."""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple, cast

from ._transport import TransportFailure, TransportRequest, TransportResponse, tls_context_for

__all__ = ["urllib_transport"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: the engine reports a 3xx as a configuration problem."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None



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
        handlers.append(_HTTPSHandler(deadline, tls_context_for(request)))
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
    """The default transport: ``urllib.request``, the request's method (``POST``
    for a token, ``GET`` without a body for issuer discovery), no redirects, at most
    ``max_response_bytes + 1`` bytes read, and ``request.timeout`` bounding the
    whole exchange (name lookup, connect, proxy tunnel, TLS handshake, status
    line, headers, body), however slowly the server sends.

    https is verified against :func:`ca_bundle` (``request.ca_file``, then
    ``TOKENWELL_CA_FILE``, ``REQUESTS_CA_BUNDLE``, the system store) and honours
    ``HTTPS_PROXY`` / ``NO_PROXY``; plain http never uses a proxy."""
    deadline = time.monotonic() + request.timeout
    # A GET (issuer discovery) is sent without a body, so without Content-Length / Content-Type.
    body = None if request.method in ("GET", "HEAD") else request.body
    outgoing = urllib.request.Request(request.url, data=body, method=request.method)
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
