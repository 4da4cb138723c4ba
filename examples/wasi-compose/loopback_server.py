"""A token endpoint and an API on 127.0.0.1, so the composition example runs
with nothing else installed. It stands in for Ory Hydra and a real API:

- ``POST /oauth2/token``: client credentials with HTTP Basic (the id and
  secret form-urlencoded first, RFC 6749 section 2.3.1); grants a random
  token for 300 s, or answers 401 ``invalid_client``.
- ``GET /api/hello``: 200 with a greeting for a bearer token it issued, 401
  otherwise.

Use it as a context manager; it stops, and its thread ends, on exit.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Tuple
from urllib.parse import parse_qs, unquote_plus

CLIENT_ID = "compose-example"
CLIENT_SECRET = "example secret: +%&"  # characters that break naive Basic auth


class LoopbackServer:
    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        issued: Dict[str, Dict[str, Any]] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if self.path != "/oauth2/token":
                    return self.reply(404, {"error": "not_found"})
                basic = self.headers.get("Authorization", "")
                try:
                    raw_id, raw_secret = base64.b64decode(basic.split(" ", 1)[1]).decode().split(":", 1)
                    credentials: Tuple[str, str] = (unquote_plus(raw_id), unquote_plus(raw_secret))
                except (IndexError, ValueError):
                    credentials = ("", "")
                if form.get("grant_type") != ["client_credentials"] or credentials != (client_id, client_secret):
                    return self.reply(401, {"error": "invalid_client", "error_description": "unknown client"})
                token = "demo_at_" + secrets.token_urlsafe(24)
                scope = form.get("scope", [""])[0]
                with lock:
                    issued[token] = {"client_id": client_id, "scope": scope.split()}
                self.reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 300, "scope": scope})

            def do_GET(self) -> None:  # noqa: N802
                auth = self.headers.get("Authorization", "")
                with lock:
                    grant = issued.get(auth[len("Bearer ") :]) if auth.startswith("Bearer ") else None
                if self.path != "/api/hello":
                    return self.reply(404, {"error": "not_found"})
                if grant is None:
                    return self.reply(401, {"error": "invalid_token"})
                self.reply(200, {"hello": grant["client_id"], "scope": grant["scope"]})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-server", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def environment(self) -> Dict[str, str]:
        """The variables the composed component reads, pointing here."""
        return {
            "TOKEN_URL": f"{self.base_url}/oauth2/token",
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "SCOPE": "hello:read",
            "API_URL": f"{self.base_url}/api/hello",
        }

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
