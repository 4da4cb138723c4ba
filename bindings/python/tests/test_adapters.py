"""The ``requests`` and ``httpx`` adapters: bearer header, and one retry with a
new token when the API answers 401; against loopback token and API servers."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, List, Set, Tuple

import pytest

from tokenwell import ServiceAccount

from conftest import WAIT, TokenServer

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")


class ApiServer:
    """A loopback API (127.0.0.1) that accepts only the bearer tokens in ``valid``."""

    def __init__(self, valid: Set[str]) -> None:
        self.valid = valid
        self.seen: List[Tuple[str, str, bytes]] = []  # (path, authorization, body)
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


def make_account(server: TokenServer) -> ServiceAccount:
    return ServiceAccount(token_url=server.url, client_id="c", client_secret="s")


def test_requests_adds_the_token_and_retries_once_on_401(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})  # at-1 was revoked by the API
    account = make_account(tokens)
    response = requests.post(service.url, data=b"payload", auth=account.requests_auth(), timeout=WAIT)
    assert response.status_code == 200
    assert [(auth, body) for _, auth, body in service.seen] == [("Bearer at-1", b"payload"), ("Bearer at-2", b"payload")]
    assert tokens.count == 2
    assert len(response.history) == 1 and response.history[0].status_code == 401
    assert requests.get(service.url, auth=account.requests_auth(), timeout=WAIT).status_code == 200
    assert tokens.count == 2


def test_requests_does_not_loop_on_a_persistent_401(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api(set())
    account = make_account(tokens)
    with requests.Session() as session:
        first = session.get(service.url, auth=account.requests_auth(), timeout=WAIT)
        second = session.get(service.url, auth=account.requests_auth(), timeout=WAIT)
    assert first.status_code == 401 and second.status_code == 401
    # First call: one retry with a new token. Second: the engine rate-limits the
    # invalidation, the token does not change, so no retry.
    assert len(service.seen) == 3 and tokens.count == 2


def test_httpx_sync_retries_once_on_401(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})
    account = make_account(tokens)
    with httpx.Client(auth=account.httpx_auth()) as client:
        response = client.post(service.url, content=b"payload")
        assert response.status_code == 200
        assert client.get(service.url).status_code == 200
    assert [auth for _, auth, _ in service.seen] == ["Bearer at-1", "Bearer at-2", "Bearer at-2"]
    assert [body for _, _, body in service.seen][:2] == [b"payload", b"payload"]
    assert tokens.count == 2


def test_httpx_async_retries_once_on_401(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})
    account = make_account(tokens)

    async def main() -> List[int]:
        async with httpx.AsyncClient(auth=account.httpx_auth()) as client:
            first = await client.post(service.url, content=b"payload")
            rest = await asyncio.gather(*(client.get(service.url) for _ in range(20)))
        return [first.status_code] + [r.status_code for r in rest]

    assert asyncio.run(main()) == [200] * 21
    assert [auth for _, auth, _ in service.seen][:2] == ["Bearer at-1", "Bearer at-2"]
    assert tokens.count == 2


def test_httpx_async_does_not_loop_on_a_persistent_401(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api(set())
    account = make_account(tokens)

    async def main() -> Tuple[int, int]:
        async with httpx.AsyncClient(auth=account.httpx_auth()) as client:
            return (await client.get(service.url)).status_code, (await client.get(service.url)).status_code

    assert asyncio.run(main()) == (401, 401)
    assert len(service.seen) == 3 and tokens.count == 2
