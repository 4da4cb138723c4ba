"""``python -m tokenwell.bench``: the cost of a cache hit next to a bare Python
floor, and the stampede request counts, from one run.

- cache hit: ``account.get_token()`` with a valid token (stays in Python);
- floor: a plain function returning a cached string after a ``time()`` compare,
  the least any cached lookup can cost;
- the ratio of the two (target <= 1.5);
- what one native ``poll`` costs, for comparison (a hit never pays it);
- token requests made by 200 threads and by 1000 asyncio tasks asking at
  once, cold and at the refresh-ahead point, against a loopback token endpoint
  (``http.server`` on 127.0.0.1, stopped at the end).

``--strict`` exits non-zero if the ratio misses its target; any stampede count
other than 1 always does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import threading
import timeit
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import time
from typing import Any, Callable, Dict, List

from . import ENGINE_VERSION, ServiceAccount, TokenCache, TransportResponse

THREADS = 200
TASKS = 1000
TARGET = 1.5


class _LoopbackTokenServer:
    """A token endpoint on 127.0.0.1 that counts requests; ``gate`` holds answers."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server.lock:
                    server.count += 1
                    n = server.count
                server.gate.wait(30)
                body = json.dumps({"access_token": f"at-{n}", "token_type": "Bearer", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth2/token"

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time() + self.offset


def _best_ns(stmt: str, env: Dict[str, Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat)) / number * 1e9


def measure_hit(number: int, repeat: int) -> Dict[str, float]:
    body = json.dumps({"access_token": "at-bench", "token_type": "Bearer", "expires_in": 86400}).encode()
    account = ServiceAccount(
        token_url="http://127.0.0.1:9/oauth2/token", client_id="bench", client_secret="bench-secret",
        transport=lambda request: TransportResponse(200, [], body),
    )
    token = account.get_token()
    deadline = time() + 3600

    def floor() -> str:
        if time() < deadline:
            return token
        raise AssertionError("unreachable")

    cache = TokenCache({"token_url": "https://a.example/t", "client_id": "bench", "client_secret": "bench-secret"})
    request = cache.poll(int(time() * 1000)).request
    assert request is not None
    cache.handle_response(request.fetch_id, 200, [], body, int(time() * 1000))
    env = {"account": account, "floor": floor, "cache": cache, "time": time}
    hits: List[float] = []
    floors: List[float] = []
    for _ in range(repeat):  # interleaved, so drift on a busy machine hits both alike
        hits.append(_best_ns("account.get_token()", env, number, 1))
        floors.append(_best_ns("floor()", env, number, 1))
    native = _best_ns("cache.poll(int(time() * 1000))", env, max(number // 10, 1000), repeat)
    hit, base = min(hits), min(floors)
    return {"hit_ns": hit, "floor_ns": base, "ratio": hit / base, "native_poll_ns": native}


def _threads(n: int, call: Callable[[], str], arrived: Callable[[], None]) -> List[str]:
    barrier = threading.Barrier(n)

    def one(_: int) -> str:
        barrier.wait(30)
        arrived()
        return call()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def _open_when(count: int, server: _LoopbackTokenServer) -> Callable[[], None]:
    seen = [0]
    lock = threading.Lock()

    def arrived() -> None:
        with lock:
            seen[0] += 1
            if seen[0] == count:
                server.gate.set()

    return arrived


def _wait_refreshed(acquired: threading.Event) -> None:
    if not acquired.wait(30):
        raise RuntimeError("the background refresh did not finish")


def stampede_threads() -> Dict[str, int]:
    out: Dict[str, int] = {}
    server = _LoopbackTokenServer()
    try:
        clock = _Clock()
        acquired = threading.Event()
        account = ServiceAccount(
            token_url=server.url, client_id="bench", client_secret="bench-secret", clock=clock,
            on_event=lambda e: acquired.set() if e["type"] == "token_acquired" else None,
        )
        server.gate.clear()
        tokens = _threads(THREADS, account.get_token, _open_when(THREADS, server))
        assert len(set(tokens)) == 1
        out["cold"] = server.count
        acquired.clear()
        clock.offset = 3600 * 0.85  # past the refresh-ahead point, inside the token's life
        before = server.count
        server.gate.clear()
        tokens = _threads(THREADS, account.get_token, lambda: None)
        server.gate.set()
        _wait_refreshed(acquired)
        out["refresh_point"] = server.count - before
    finally:
        server.close()
    return out


def stampede_tasks() -> Dict[str, int]:
    out: Dict[str, int] = {}
    server = _LoopbackTokenServer()
    try:
        clock = _Clock()

        async def main() -> None:
            acquired = asyncio.Event()
            account = ServiceAccount(
                token_url=server.url, client_id="bench", client_secret="bench-secret", clock=clock,
                on_event=lambda e: acquired.set() if e["type"] == "token_acquired" else None,
            )
            started = [0]

            async def one() -> str:
                started[0] += 1
                if started[0] == TASKS:
                    server.gate.set()
                return await account.get_token_async()

            server.gate.clear()
            tokens = await asyncio.gather(*(one() for _ in range(TASKS)))
            assert len(set(tokens)) == 1
            out["cold"] = server.count
            acquired.clear()
            clock.offset = 3600 * 0.85
            before = server.count
            started[0] = -TASKS  # the gate stays open this time
            await asyncio.gather(*(one() for _ in range(TASKS)))
            await asyncio.wait_for(acquired.wait(), 30)
            out["refresh_point"] = server.count - before

        asyncio.run(main())
    finally:
        server.close()
    return out


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenwell.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=1_000_000, help="calls per timing (default 1000000)")
    parser.add_argument("--repeat", type=int, default=7, help="timings, best kept (default 7)")
    parser.add_argument("--strict", action="store_true", help=f"fail if the ratio is above {TARGET}")
    args = parser.parse_args(argv)

    print(f"tokenwell {ENGINE_VERSION} bench: Python {platform.python_version()} on {platform.machine()}")
    hit = measure_hit(args.number, args.repeat)
    print(f"cache hit  account.get_token()          {hit['hit_ns']:8.1f} ns/call")
    print(f"floor      cached str after time() check {hit['floor_ns']:8.1f} ns/call")
    verdict = "ok" if hit["ratio"] <= TARGET else "above target"
    print(f"ratio      hit / floor                   {hit['ratio']:8.2f}   (target <= {TARGET}: {verdict})")
    print(f"native     TokenCache.poll() (not on the hit path) {hit['native_poll_ns']:8.1f} ns/call")
    threads = stampede_threads()
    tasks = stampede_tasks()
    rows = [
        (f"{THREADS} threads, cold", threads["cold"]),
        (f"{THREADS} threads, at the refresh point", threads["refresh_point"]),
        (f"{TASKS} asyncio tasks, cold", tasks["cold"]),
        (f"{TASKS} asyncio tasks, at the refresh point", tasks["refresh_point"]),
    ]
    for label, count in rows:
        print(f"stampede   {label:<40} {count} token request{'s' if count != 1 else ''}")
    failed = any(count != 1 for _, count in rows) or (args.strict and hit["ratio"] > TARGET)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
