"""The contract any ``transport=`` callable follows, and what the default
transports share: which CA bundle to trust, and how a failure is classified.
The transports themselves: ``_urllib.py`` (the default) and
``_httpx_transport.py`` (asyncio, when httpx is installed).

A transport receives a :class:`TransportRequest` (``POST`` a token request,
or ``GET`` a metadata document without a body: honour ``request.method``)
and returns a
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
import http.client
import os
import socket
import ssl
import threading
import urllib.error
import urllib.parse
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ._native import CA_FILE_VAR, REDACTED

__all__ = [
    "TransportRequest",
    "TransportResponse",
    "TransportFailure",
    "classify_failure",
    "ca_bundle",
    "tls_context",
    "tls_context_for",
    "endpoint",
]

Headers = List[Tuple[str, str]]


class TransportRequest:
    """One request to send, exactly as the engine built it: ``method`` is
    ``POST`` for a token request, or ``GET`` for the issuer's metadata document
    (issuer discovery; ``body`` is then empty and must not be sent).

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


def endpoint(url: str) -> str:
    """``host:port`` of a URL: the context a failure message needs, never a
    path or query (which could hold anything)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return "the token endpoint"
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def classify_failure(error: BaseException, url: Optional[str] = None) -> Tuple[str, str]:
    """``(kind, message)`` for an exception raised by a transport; with ``url``
    a failure to reach the endpoint names its host and port
    (``127.0.0.1:4444: ConnectionRefusedError: ...``)."""
    kind, message = _classify(error)
    if url is not None and kind in ("connect", "timeout", "io", "tls"):
        message = f"{endpoint(url)}: {message}"
    return kind, message


def _classify(error: BaseException) -> Tuple[str, str]:
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, TransportFailure):
        return error.kind, str(error)
    refusal = _certificate_refusal(error)
    if refusal is not None:
        return "tls", f"{type(refusal).__name__}: {refusal}"
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        return _classify(error.reason)[0], message
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


# ---- TLS: which CA bundle, and the SSL context for it ------------------------------


def ca_bundle(ca_file: Optional[str] = None) -> Optional[str]:
    """The CA bundle the default transports trust: ``ca_file`` if given, else
    ``$TOKENWELL_CA_FILE``, else ``$REQUESTS_CA_BUNDLE``; ``None`` means the
    system store (where OpenSSL itself honours ``$SSL_CERT_FILE``)."""
    if ca_file:
        return ca_file
    for variable in (CA_FILE_VAR, "REQUESTS_CA_BUNDLE"):
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


def tls_context_for(request: "TransportRequest") -> ssl.SSLContext:
    """The request's context; a bundle that cannot be loaded is a ``tls`` failure
    (a configuration fault), naming where the bundle came from."""
    bundle = ca_bundle(request.ca_file)
    try:
        return tls_context(bundle)
    except (OSError, ssl.SSLError, ValueError) as error:
        source = "ca_file" if request.ca_file else f"{CA_FILE_VAR} or REQUESTS_CA_BUNDLE"
        raise TransportFailure(
            "tls", f"the CA bundle {bundle!r} (from {source}) cannot be loaded: {type(error).__name__}: {error}"
        ) from None


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
