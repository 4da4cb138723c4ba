"""A scripted token endpoint on 127.0.0.1, for faults no real authorization
server produces on demand (a 503, an HTML page, a stalled response).

    with TokenServer() as server:
        server.script(Reply(200, {"access_token": "at-1", "expires_in": 3600}))
        ... server.token_url ... server.requests ...

Each request takes the next scripted reply (the last one repeats). Every
request is recorded (method, path, headers, body). The server runs in a
thread and is shut down, and its thread joined, on exit; a stalled reply is
released on exit too, so every thread ends.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple, Union


@dataclass
class Reply:
    """One scripted response. ``body`` may be a dict (sent as JSON) or text."""

    status: int = 200
    body: Union[Dict[str, Any], str] = ""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    #: Send the status line and headers, then hold the body until the server stops.
    stall_body: bool = False
    #: A slow server: send the raw response up to this byte offset at once, then
    #: the rest one byte per ``dribble_interval`` seconds (until the client gives up).
    dribble_from: Optional[int] = None
    dribble_interval: float = 0.5


@dataclass
class Recorded:
    method: str
    path: str
    headers: Dict[str, str]
    body: str


class TokenServer:
    def __init__(self) -> None:
        self._replies: List[Reply] = [Reply(500, "no reply scripted")]
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.requests: List[Recorded] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self._handle()

            def do_GET(self) -> None:  # noqa: N802
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                reply = server._record(
                    Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                payload = (json.dumps(reply.body) if isinstance(reply.body, dict) else reply.body).encode()
                if reply.dribble_from is not None:
                    self._dribble(reply, payload)
                    return
                self.send_response(reply.status)
                content_type = "application/json" if isinstance(reply.body, dict) else "text/plain"
                names = {name.lower() for name, _ in reply.headers}
                if "content-type" not in names:
                    self.send_header("Content-Type", content_type)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload) + (1 if reply.stall_body else 0)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                if reply.stall_body:
                    server._released.wait(timeout=30)
                    self.close_connection = True

            def _dribble(self, reply: Reply, payload: bytes) -> None:
                head = f"HTTP/1.1 {reply.status} OK\r\nContent-Type: application/json\r\n"
                head += f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                raw = head.encode() + payload
                split = reply.dribble_from or 0
                self.close_connection = True
                try:
                    self.wfile.write(raw[:split])
                    self.wfile.flush()
                    for i in range(split, len(raw)):
                        if server._released.wait(timeout=reply.dribble_interval):
                            return
                        self.wfile.write(raw[i : i + 1])
                        self.wfile.flush()
                except OSError:
                    return  # the client gave up, as it should

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="token-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies = list(replies)

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    def __enter__(self) -> "TokenServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token_reply(access_token: str, expires_in: Optional[int] = 3600, **extra: Any) -> Reply:
    body: Dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", **extra}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return Reply(200, body)
