"""The default transports (urllib, and httpx for asyncio) against a scripted
fault server on loopback: faults no real authorization server produces on
demand (a 503, a reset connection, an HTML error page, a body that never ends,
a body too large, a redirect, a status line, headers or body sent a byte at a
time)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import socketserver
import threading
import time
from typing import Any, Callable, Iterator, List, Type

import pytest

import tokenwell
from tokenwell import (
    EndpointNotFoundError,
    MalformedResponseError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceAccount,
    TokenError,
    TransportError,
    TransportFailure,
)
from tokenwell._transport import classify_failure

from conftest import WAIT, token_body

TOKEN = token_body("at-fault-server")


def http(status: str, headers: List[str], body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"] + headers
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# A slow server sends each byte of a stage this often: faster than any one read
# times out, so only a deadline for the whole exchange can end the request.
DRIP_SECONDS = 0.5
SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"


class ScriptedFaultServer:
    """A loopback (127.0.0.1) TCP server that reads one HTTP request and then
    does what ``fault`` says. Every connection ends when the test ends.
    ``connections`` counts the connections accepted."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.stop = threading.Event()
        self.connections = 0
        self.connected = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                server.connections += 1
                server.connected.set()
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                server.act(sock)

        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.thread = threading.Thread(target=self.tcp.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.tcp.server_address[1]}/oauth2/token"

    def act(self, sock: socket.socket) -> None:
        fault = self.fault
        if fault == "ok":
            sock.sendall(http("200 OK", ["Content-Type: application/json"], TOKEN))
        elif fault == "503":
            sock.sendall(http("503 Service Unavailable", ["Retry-After: 120"], b"busy"))
        elif fault == "429":
            sock.sendall(http("429 Too Many Requests", ["Retry-After: 30"], b""))
        elif fault == "html-502":
            sock.sendall(http("502 Bad Gateway", ["Content-Type: text/html"], b"<html><h1>502 Bad Gateway</h1></html>"))
        elif fault == "html-200":
            sock.sendall(http("200 OK", ["Content-Type: text/html"], b"<html>login page</html>"))
        elif fault == "404":  # a wrong token URL
            sock.sendall(http("404 Not Found", ["Content-Type: text/html"], b"<html><h1>Not Found</h1></html>"))
        elif fault == "405":
            sock.sendall(http("405 Method Not Allowed", ["Allow: GET"], b""))
        elif fault == "redirect":
            sock.sendall(http("302 Found", ["Location: http://127.0.0.1:1/elsewhere"], b""))
        elif fault == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        elif fault == "close-early":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"access")
        elif fault == "too-large":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            sock.sendall(head)
            chunk = b"x" * 16384
            try:
                for _ in range(64):  # 1 MiB, far beyond the limit; the client stops reading first
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass
        elif fault == "never-ends":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            while not self.stop.wait(0.05):  # drips a byte every 50 ms until the test ends
                try:
                    sock.sendall(b" ")
                except OSError:
                    return
        elif fault == "silent":
            self.stop.wait(WAIT)
        elif fault == "slow-status":  # the status line, a byte at a time
            self.drip(sock, b"HTTP/1.1 200 " + b"O" * 200 + b"K\r\n")
        elif fault == "slow-headers":  # the status line at once, then a header a byte at a time
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            self.drip(sock, b"X-Slow: " + b"a" * 200 + b"\r\n")
        elif fault == "slow-body":  # status and headers at once, then the body a byte at a time
            sock.sendall(SLOW_HEAD + b"\r\n")
            self.drip(sock, b"{" + b" " * 200)

    def drip(self, sock: socket.socket, data: bytes) -> None:
        """Sends ``data`` one byte every DRIP_SECONDS until it is sent or the test ends."""
        for i in range(len(data)):
            if self.stop.wait(DRIP_SECONDS):
                return
            try:
                sock.sendall(data[i : i + 1])
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.tcp.shutdown()
        self.tcp.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def fault_server() -> Iterator[Callable[[str], ScriptedFaultServer]]:
    servers: List[ScriptedFaultServer] = []

    def start(fault: str) -> ScriptedFaultServer:
        servers.append(ScriptedFaultServer(fault))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


CASES = [
    ("503", ServerError, 503),
    ("429", RateLimitedError, 429),
    ("html-502", ServerError, 502),
    ("html-200", MalformedResponseError, 200),
    ("redirect", MalformedResponseError, 302),
    ("404", EndpointNotFoundError, 404),
    ("405", EndpointNotFoundError, 405),
    ("reset", TransportError, None),
    ("close-early", TransportError, None),
    ("too-large", MalformedResponseError, 200),
    ("never-ends", RequestTimeoutError, None),
    ("silent", RequestTimeoutError, None),
]


def account(url: str, **kwargs: Any) -> ServiceAccount:
    return ServiceAccount(token_url=url, client_id="c", client_secret="transport-test-secret", timeout=1.0, max_response_bytes=4096,
                          **kwargs)


def test_ok(fault_server: Any) -> None:
    assert account(fault_server("ok").url).get_token() == "at-fault-server"


@pytest.mark.parametrize("fault, error_class, status", CASES, ids=[c[0] for c in CASES])
def test_urllib_transport_faults(fault_server: Any, fault: str, error_class: Type[TokenError], status: Any) -> None:
    server = fault_server(fault)
    started = time.monotonic()
    with pytest.raises(error_class) as raised:
        account(server.url).get_token()
    assert time.monotonic() - started < 5.0  # the timeout bounds the whole exchange
    assert raised.value.status == status
    if fault == "503":
        assert raised.value.retry_at_ms is not None  # Retry-After honoured by the engine


@pytest.mark.parametrize("fault, error_class, status", CASES, ids=[c[0] for c in CASES])
def test_httpx_async_transport_faults(fault_server: Any, fault: str, error_class: Type[TokenError], status: Any) -> None:
    pytest.importorskip("httpx")
    server = fault_server(fault)

    async def main() -> None:
        with pytest.raises(error_class) as raised:
            await account(server.url).get_token_async()
        assert raised.value.status == status

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5.0


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(TransportError) as raised:
            account(f"http://127.0.0.1:{port}/oauth2/token").get_token()
    assert "refused" in str(raised.value).lower()


def test_classify_failure() -> None:
    import urllib.error

    assert classify_failure(TransportFailure("connect", "x")) == ("connect", "x")
    assert classify_failure(socket.timeout("t"))[0] == "timeout"
    assert classify_failure(ConnectionRefusedError())[0] == "connect"
    assert classify_failure(urllib.error.URLError(ConnectionRefusedError()))[0] == "connect"
    assert classify_failure(urllib.error.URLError(socket.timeout()))[0] == "timeout"
    assert classify_failure(ConnectionResetError())[0] == "io"
    assert classify_failure(ValueError("?"))[0] == "other"
    # A certificate that is not trusted is "tls" (a configuration fault), however wrapped.
    refusal = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    assert classify_failure(refusal)[0] == "tls"
    assert classify_failure(urllib.error.URLError(refusal))[0] == "tls"

    class ConnectError(Exception):  # as httpx raises it: `raise ConnectError(...) from exc`
        pass

    try:
        try:
            raise refusal
        except ssl.SSLError as cause:
            raise ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]") from cause
    except ConnectError as wrapped:
        assert classify_failure(wrapped)[0] == "tls"
    # Other TLS failures (no shared protocol, a reset handshake) stay "connect".
    assert classify_failure(ssl.SSLError(1, "wrong version number"))[0] == "connect"
    assert classify_failure(TransportFailure("tls", "x")) == ("tls", "x")
    with pytest.raises(ValueError):
        TransportFailure("bogus", "x")


# ---- a slow server: the whole exchange ends within the timeout ---------------------

SLOW_TIMEOUT = 2.0
SLACK = 1.0
SLOW_STAGES = ["slow-status", "slow-headers", "slow-body"]
# The default transports for each way of asking: get_token() (urllib),
# get_token_async() without httpx (urllib on a worker thread), and with httpx.
WAYS = ["sync-urllib", "async-urllib", "async-httpx"]


def slow_account(url: str, way: str, monkeypatch: pytest.MonkeyPatch) -> ServiceAccount:
    if way == "async-httpx":
        pytest.importorskip("httpx")
    if way == "async-urllib":
        monkeypatch.setattr("tokenwell._account.have_httpx", lambda: False)
    return ServiceAccount(token_url=url, client_id="c", client_secret="slow-test-secret", timeout=SLOW_TIMEOUT)


def ask(account: ServiceAccount, way: str) -> str:
    if way == "sync-urllib":
        return account.get_token()
    return asyncio.run(account.get_token_async())


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("stage", SLOW_STAGES)
def test_a_server_sending_a_byte_at_a_time_is_cut_off_at_the_timeout(
    fault_server: Any, monkeypatch: pytest.MonkeyPatch, stage: str, way: str
) -> None:
    server = fault_server(stage)
    account = slow_account(server.url, way, monkeypatch)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as raised:
        ask(account, way)
    elapsed = time.monotonic() - started
    assert elapsed < SLOW_TIMEOUT + SLACK, f"{stage}/{way}: took {elapsed:.1f} s with a {SLOW_TIMEOUT} s timeout"
    error = raised.value
    assert (error.kind, error.fault, error.retryable) == ("timeout", "transport", True)
    assert server.connections == 1


@pytest.mark.parametrize("way", WAYS)
def test_a_second_caller_waits_for_the_slow_request_instead_of_starting_another(
    fault_server: Any, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    server = fault_server("slow-headers")
    account = slow_account(server.url, way, monkeypatch)
    outcomes: List[Any] = [None, None]

    def caller(i: int) -> None:
        started = time.monotonic()
        try:
            ask(account, way)
        except TokenError as error:
            outcomes[i] = (error, time.monotonic() - started)

    first = threading.Thread(target=caller, args=(0,))
    first.start()
    assert server.connected.wait(WAIT)
    second = threading.Thread(target=caller, args=(1,))
    second.start()
    for thread in (first, second):
        thread.join(WAIT)
        assert not thread.is_alive()
    for error, elapsed in outcomes:
        assert isinstance(error, RequestTimeoutError), repr(error)
        assert elapsed < SLOW_TIMEOUT + SLACK, f"{way}: a caller took {elapsed:.1f} s"
    # The second caller got the first request's outcome; it did not send its own.
    assert server.connections == 1
