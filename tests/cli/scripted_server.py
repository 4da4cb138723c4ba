"""Loopback HTTP servers for the CLI tests, each named by what it does.

- :class:`ScriptedTokenServer`: a token endpoint on 127.0.0.1 that answers
  every request the same scripted way (a token, ``invalid_client``, 404, 503,
  an HTML page) and counts the requests it got.
- :class:`RecordingProxy`: a reverse proxy on 127.0.0.1 in front of a real
  token endpoint (Hydra) that forwards each request and counts them, so a
  test can say how many token requests the server saw.

Both are context managers: they listen on a kernel-chosen port and stop on exit.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Tuple

__all__ = ["ScriptedTokenServer", "RecordingProxy", "jwt_for"]


def jwt_for(claims: Dict[str, Any]) -> str:
    """An unsigned-looking JWT (the CLI only reads its claims)."""
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _Base:
    def __init__(self) -> None:
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner._lock:
                    owner.requests.append(("POST", self.path, dict(self.headers.items())))
                status, headers, payload = owner.answer("POST", self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def answer(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        raise NotImplementedError

    def __enter__(self) -> "_Base":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class ScriptedTokenServer(_Base):
    """Answers every token request as ``mode`` says:

    ``token`` (an opaque token, ``expires_in`` 3600), ``jwt`` (a JWT access
    token with ``aud``), ``invalid_client`` (401), ``not_found`` (404, no
    OAuth error), ``unavailable`` (503), ``garbage`` (200 with an HTML page).
    Each token is ``tw-cli-test-<n>`` (n counts requests), scope as asked."""

    def __init__(self, mode: str = "token", expires_in: int = 3600) -> None:
        super().__init__()
        self.mode = mode
        self.expires_in = expires_in

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/token"

    def answer(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        json_type = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if self.mode == "invalid_client":
            error = {"error": "invalid_client", "error_description": "Client authentication failed."}
            return 401, json_type, json.dumps(error).encode()
        if self.mode == "not_found":
            return 404, [("Content-Type", "text/plain")], b"404 page not found"
        if self.mode == "unavailable":
            return 503, [("Content-Type", "text/plain")], b"upstream unavailable"
        if self.mode == "garbage":
            return 200, [("Content-Type", "text/html")], b"<html><body>Please log in</body></html>"
        form = dict(urllib.parse.parse_qsl(body.decode()))
        scope = form.get("scope", "")
        if self.mode == "jwt":
            token = jwt_for({"iss": self.base_url, "sub": "cli-test", "aud": ["https://api.example"], "scope": scope, "exp": 4102444800})
        else:
            token = f"tw-cli-test-{self.count}"
        answer = {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in, "scope": scope}
        return 200, json_type, json.dumps(answer).encode()


class RecordingProxy(_Base):
    """Forwards every request to ``target`` (a base URL on loopback) and counts them."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")

    def answer(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        request = urllib.request.Request(self.target + path, data=body if method == "POST" else None, headers=keep, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
                status, got, payload = response.status, list(response.headers.items()), response.read()
        except urllib.error.HTTPError as answer:
            status, got, payload = answer.code, list(answer.headers.items()), answer.read()
        passed = [(k, v) for k, v in got if k.lower() in ("content-type", "cache-control", "www-authenticate", "retry-after")]
        return status, passed, payload
