"""Shared test helpers: a virtual clock, an in-process transport, and loopback
HTTP servers (``http.server`` on 127.0.0.1, shut down when the test ends).

``TokenServer`` is a small OAuth token endpoint that counts requests and can
be scripted; ``ScriptedFaultServer`` (test_transport.py) produces faults no
real server does on demand. Nothing here sleeps to synchronize: tests wait on
events with a timeout, or drive time with ``FakeClock``.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

from tokenwell import TransportRequest, TransportResponse

START = 1_700_000_000.0  # seconds; the conformance scenarios' epoch
WAIT = 30.0  # the longest any test waits on an event before failing


class FakeClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def token_body(token: str, expires_in: Any = 3600, **extra: Any) -> bytes:
    doc: Dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    doc.update(extra)
    return json.dumps(doc).encode()


def basic_credentials(headers: Sequence[Tuple[str, str]]) -> Tuple[str, str]:
    """(client_id, secret) from a ``client_secret_basic`` header (RFC 6749 §2.3.1 decoding)."""
    value = next(v for n, v in headers if n.lower() == "authorization")
    raw = base64.b64decode(value.split(" ", 1)[1]).decode()
    client_id, _, secret = raw.partition(":")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


class CountingTransport:
    """An injected sync transport: answers token requests in-process and counts them.

    ``answer(n, request)`` returns a TransportResponse (or raises); by default it
    issues ``at-1``, ``at-2``, ... living ``lifetime`` seconds. ``gate``, when set,
    holds every request until it is opened (to make callers pile up)."""

    def __init__(self, lifetime: Any = 3600, answer: Optional[Callable[[int, TransportRequest], Any]] = None) -> None:
        self.lifetime = lifetime
        self.answer = answer
        self.requests: List[TransportRequest] = []
        self.lock = threading.Lock()
        self.gate: Optional[threading.Event] = None
        self.entered = threading.Event()

    @property
    def count(self) -> int:
        return len(self.requests)

    def __call__(self, request: TransportRequest) -> Any:
        with self.lock:
            self.requests.append(request)
            n = len(self.requests)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "gate never opened"
        if self.answer is not None:
            return self.answer(n, request)
        return TransportResponse(200, [("Content-Type", "application/json")], token_body(f"at-{n}", self.lifetime))


class TokenServer:
    """A loopback token endpoint on 127.0.0.1 that counts requests.

    ``script(n, headers, body)`` may return ``(status, headers, body)``; by default
    it issues ``at-1``, ``at-2``, ... living ``lifetime`` seconds. With
    ``accept_secrets`` set it answers ``invalid_client`` to any other secret."""

    def __init__(
        self,
        lifetime: Any = 3600,
        script: Optional[Callable[[int, List[Tuple[str, str]], bytes], Tuple[int, List[Tuple[str, str]], bytes]]] = None,
        accept_secrets: Optional[Sequence[str]] = None,
    ) -> None:
        self.lifetime = lifetime
        self.script = script
        self.accept_secrets = accept_secrets
        self.requests: List[Tuple[List[Tuple[str, str]], bytes]] = []
        self.lock = threading.Lock()
        self.gate: Optional[threading.Event] = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = list(self.headers.items())
                status, out_headers, out_body = server.answer(headers, body)
                self.send_response(status)
                for name, value in out_headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(out_body)))
                self.end_headers()
                self.wfile.write(out_body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="token-server", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth2/token"

    @property
    def count(self) -> int:
        return len(self.requests)

    def answer(self, headers: List[Tuple[str, str]], body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        with self.lock:
            self.requests.append((headers, body))
            n = len(self.requests)
        if self.gate is not None:
            self.gate.wait(WAIT)
        if self.script is not None:
            return self.script(n, headers, body)
        if self.accept_secrets is not None:
            _, secret = basic_credentials(headers)
            if secret not in self.accept_secrets:
                error = json.dumps({"error": "invalid_client", "error_description": "client authentication failed"})
                return 401, [("Content-Type", "application/json")], error.encode()
        return 200, [("Content-Type", "application/json")], token_body(f"at-{n}", self.lifetime)

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def token_server() -> Iterator[Callable[..., TokenServer]]:
    servers: List[TokenServer] = []

    def start(**kwargs: Any) -> TokenServer:
        server = TokenServer(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class EventLog:
    """Collects ``on_event`` events; ``wait_for`` blocks until one of a type arrives."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, event: Dict[str, Any]) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def types(self) -> List[str]:
        with self.cond:
            return [e["type"] for e in self.events]

    def count(self, kind: str) -> int:
        return self.types().count(kind)

    def wait_for(self, kind: str, count: int = 1, timeout: float = WAIT) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(e["type"] == kind for e in self.events) >= count, timeout)
        assert ok, f"no {kind!r} event (count {count}) within {timeout}s; saw {self.types()}"


@pytest.fixture
def events() -> EventLog:
    return EventLog()
