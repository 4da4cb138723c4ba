"""Shared test helpers: a virtual clock, an in-process transport, and loopback
HTTP servers (``http.server`` on 127.0.0.1, shut down when the test ends).

``TokenServer`` is a small OAuth token endpoint that counts requests and can
be scripted, over http or (``tls=``) https; ``ApiServer`` (fixture ``api``)
accepts only the bearer tokens it is told; ``ScriptedFaultServer``
(test_transport.py) produces faults no real server does on demand.
``test_ca`` makes a throwaway CA and a certificate for 127.0.0.1 with the
``openssl`` CLI; ``connect_proxy`` runs the integration suite's loopback
CONNECT proxy (tests/integration/servers/connect-proxy.py) with its request
log. Nothing here sleeps to synchronize: tests wait on events with a timeout,
or drive time with ``FakeClock`` (the proxy's ready file is polled).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

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
    ``accept_secrets`` set it answers ``invalid_client`` to any other secret.
    With ``tls`` (a server-side ``SSLContext``) it serves https; a client that
    refuses the certificate is counted in ``handshake_failures`` (and sets
    ``handshake_failed``). A ``GET`` (issuer discovery) is answered with
    ``metadata`` (a dict, set once the port is known: ``origin``) at the paths
    in ``metadata_paths``, 404 elsewhere; each is logged in ``gets`` as
    ``(path, headers, body)``."""

    def __init__(
        self,
        lifetime: Any = 3600,
        script: Optional[Callable[[int, List[Tuple[str, str]], bytes], Tuple[int, List[Tuple[str, str]], bytes]]] = None,
        accept_secrets: Optional[Sequence[str]] = None,
        tls: Optional[ssl.SSLContext] = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.lifetime = lifetime
        self.script = script
        self.accept_secrets = accept_secrets
        self.requests: List[Tuple[List[Tuple[str, str]], bytes]] = []
        self.gets: List[Tuple[str, List[Tuple[str, str]], bytes]] = []
        self.metadata: Optional[Dict[str, Any]] = None
        self.metadata_paths: Tuple[str, ...] = ("/.well-known/openid-configuration",)
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

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with server.lock:
                    server.gets.append((self.path, list(self.headers.items()), body))
                if server.metadata is not None and self.path in server.metadata_paths:
                    status, out_body = 200, json.dumps(server.metadata).encode()
                else:
                    status, out_body = 404, b'{"error":"not_found"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out_body)))
                self.end_headers()
                self.wfile.write(out_body)

        self.tls = tls
        self.handshake_failures = 0
        self.handshake_failed = threading.Event()

        class Server(ThreadingHTTPServer):
            def finish_request(self, request: Any, client_address: Any) -> None:
                if tls is None:
                    return super().finish_request(request, client_address)
                # The handshake runs on the connection's own thread, not in accept().
                try:
                    request.settimeout(WAIT)
                    secured = tls.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    server.handshake_failures += 1
                    server.handshake_failed.set()
                    return
                try:
                    super().finish_request(secured, client_address)
                finally:
                    secured.close()

        self.httpd = Server((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="token-server", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host, port = self.httpd.server_address[:2]
        return f"{scheme}://{host}:{port}/oauth2/token"

    @property
    def origin(self) -> str:
        """``scheme://host:port``: the issuer of its metadata document."""
        return self.url[: -len("/oauth2/token")]

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

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


# ---- an API that wants bearer tokens ---------------------------------------------

class ApiServer:
    """A loopback API (127.0.0.1) that accepts only the bearer tokens in ``valid``."""

    def __init__(self, valid: Set[str]) -> None:
        self.valid = valid
        self.seen: List[Tuple[str, str, bytes]] = []  # (path, authorization, body)
        # Called with the bearer token before each answer (to act as another caller would).
        self.before_answer: Optional[Callable[[str], None]] = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                auth = self.headers.get("Authorization", "")
                server.seen.append((self.path, auth, body))
                if server.before_answer is not None:
                    server.before_answer(auth[7:])
                ok = auth.startswith("Bearer ") and auth[7:] in server.valid
                payload = b"ok" if ok else b'{"error":"invalid_token"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = answer
            do_POST = answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/invoices"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def api() -> Iterator[Callable[[Set[str]], ApiServer]]:
    servers: List[ApiServer] = []

    def start(valid: Set[str]) -> ApiServer:
        servers.append(ApiServer(valid))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# ---- TLS: a throwaway CA, and a certificate for 127.0.0.1 ------------------------------


class TestCA:
    """A CA (``ca_file``, PEM) and a server certificate it signed for 127.0.0.1
    and localhost (``cert_file``, ``key_file``)."""

    __test__ = False  # not a test class

    def __init__(self, directory: Path) -> None:
        self.ca_file = str(directory / "ca.pem")
        self.cert_file = str(directory / "server.pem")
        self.key_file = str(directory / "server.key")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_test_ca(directory: Path, name: str = "tokenwell test CA") -> TestCA:
    """Makes a CA and a 127.0.0.1 certificate with the ``openssl`` CLI (EC keys,
    valid for two days, the extensions Python's strict verification wants)."""
    ca = TestCA(directory)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"openssl {args[0]} failed: {done.stderr}"

    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return ca


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make a test CA")
    return make_test_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture
def no_ambient_tls_or_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clears the variables that change which CA is trusted or which proxy is
    used, so a test sees only what it sets."""
    for name in ("TOKENWELL_CA_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# ---- the loopback CONNECT proxy ------------------------------------------------------

CONNECT_PROXY = Path(__file__).resolve().parents[3] / "tests" / "integration" / "servers" / "connect-proxy.py"


class ConnectProxy:
    """tests/integration/servers/connect-proxy.py, running: ``url``, and ``log()``
    (one dict per request it received: ``method``, ``target``, ``allowed``)."""

    def __init__(self, directory: Path) -> None:
        ready = directory / "proxy-ready.json"
        self.log_path = directory / "proxy-log.jsonl"
        self.process = subprocess.Popen(
            [sys.executable, str(CONNECT_PROXY), "--ready-file", str(ready), "--log", str(self.log_path),
             "--parent-pid", str(os.getpid()), "--max-seconds", "300"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + WAIT
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"connect-proxy.py did not start: {self.process.stderr.read() if self.process.stderr else ''}")
            time.sleep(0.02)  # polling the ready file the proxy writes
        self.url: str = json.loads(ready.read_text())["url"]

    def log(self) -> List[Dict[str, Any]]:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def connect_proxy(tmp_path: Path) -> Iterator[ConnectProxy]:
    if not CONNECT_PROXY.exists():
        pytest.skip(f"{CONNECT_PROXY} is missing")
    proxy = ConnectProxy(tmp_path)
    yield proxy
    proxy.close()
