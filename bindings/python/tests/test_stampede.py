"""Single flight: 200 threads or 1000 asyncio tasks asking at once make one
token request, both cold and at the refresh-ahead point; over loopback HTTP
(urllib and httpx) and with an injected transport."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List

import pytest

from tokenwell import HttpxAsyncTransport, ServiceAccount, TransportRequest, TransportResponse

from conftest import WAIT, CountingTransport, EventLog, FakeClock, TokenServer, token_body

THREADS = 200
TASKS = 1000


def run_threads(n: int, call: Callable[[], str], before_call: Callable[[int], None]) -> List[str]:
    barrier = threading.Barrier(n)

    def one(i: int) -> str:
        barrier.wait(WAIT)
        before_call(i)
        return call()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_200_threads_cold_over_loopback_http_make_one_request(token_server: Callable[..., TokenServer]) -> None:
    server = token_server()
    server.gate = threading.Event()
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret="s")
    arrived = [0]
    lock = threading.Lock()

    def before(i: int) -> None:
        with lock:
            arrived[0] += 1
            if arrived[0] == THREADS:
                server.gate.set()  # the one request is answered once every thread is asking

    tokens = run_threads(THREADS, account.get_token, before)
    assert set(tokens) == {"at-1"}
    assert server.count == 1


def test_200_threads_at_the_refresh_point_make_one_request(clock: FakeClock) -> None:
    transport = CountingTransport(lifetime=3600)
    log = EventLog()
    account = ServiceAccount(
        token_url="http://127.0.0.1:9/t", client_id="c", client_secret="s",
        transport=transport, clock=clock, on_event=log,
    )
    assert account.get_token() == "at-1"
    clock.advance(3600 * 0.85)  # past refresh-ahead, before the margin
    transport.gate = threading.Event()
    tokens = run_threads(THREADS, account.get_token, lambda i: None)
    assert set(tokens) == {"at-1"}  # nobody waited for the refresh
    transport.gate.set()
    log.wait_for("token_acquired", 2)
    assert transport.count == 2  # the initial fetch and exactly one refresh
    assert account.get_token() == "at-2"


def test_200_threads_cold_with_injected_transport(clock: FakeClock) -> None:
    transport = CountingTransport()
    transport.gate = threading.Event()
    account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret="s",
                             transport=transport, clock=clock)
    arrived = [0]
    lock = threading.Lock()

    def before(i: int) -> None:
        with lock:
            arrived[0] += 1
            if arrived[0] == THREADS:
                transport.gate.set()

    tokens = run_threads(THREADS, account.get_token, before)
    assert set(tokens) == {"at-1"} and transport.count == 1


async def gather_tasks(n: int, call: Callable[[], Any], release: Callable[[], None]) -> List[str]:
    started = [0]

    async def one() -> str:
        started[0] += 1
        if started[0] == n:
            release()  # every task has started before the one request is answered
        return await call()

    return await asyncio.gather(*(one() for _ in range(n)))


def test_1000_tasks_cold_over_loopback_httpx_make_one_request(token_server: Callable[..., TokenServer]) -> None:
    pytest.importorskip("httpx")
    server = token_server()
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret="s")
    assert isinstance(account._async_transport, HttpxAsyncTransport)  # one client for the account

    async def main() -> List[str]:
        release = asyncio.Event()
        original = account._async_transport

        async def held(request: TransportRequest) -> Any:
            await release.wait()
            return await original(request)

        account._async_transport = held
        return await gather_tasks(TASKS, account.get_token_async, release.set)

    tokens = asyncio.run(main())
    assert set(tokens) == {"at-1"}
    assert server.count == 1


def test_1000_tasks_at_the_refresh_point_make_one_request(clock: FakeClock) -> None:
    requests: List[TransportRequest] = []

    async def main() -> List[str]:
        release = asyncio.Event()
        release.set()

        async def transport(request: TransportRequest) -> TransportResponse:
            requests.append(request)
            await release.wait()
            return TransportResponse(200, [], token_body(f"at-{len(requests)}", 3600))

        log = EventLog()
        account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret="s",
                                 transport=transport, clock=clock, on_event=log)
        assert await account.get_token_async() == "at-1"
        clock.advance(3600 * 0.85)
        release.clear()
        tokens = await gather_tasks(TASKS, account.get_token_async, lambda: None)
        assert set(tokens) == {"at-1"}
        release.set()
        while log.count("token_acquired") < 2:  # the background refresh task runs on this loop
            await asyncio.wait(list(account._tasks), timeout=WAIT)
        assert await account.get_token_async() == "at-2"
        return tokens

    asyncio.run(main())
    assert len(requests) == 2


def test_threads_and_tasks_together_share_one_fetch(clock: FakeClock) -> None:
    transport = CountingTransport()
    transport.gate = threading.Event()
    account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret="s",
                             transport=transport, clock=clock)
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(account.get_token) for _ in range(20)]
        assert transport.entered.wait(WAIT)  # a thread's fetch is in flight

        async def main() -> List[str]:
            tasks = [asyncio.ensure_future(account.get_token_async()) for _ in range(100)]
            await asyncio.sleep(0)  # let every task reach the engine's "wait"
            transport.gate.set()
            return await asyncio.gather(*tasks)

        tokens = asyncio.run(main())
        tokens += [f.result(WAIT) for f in futures]
    assert set(tokens) == {"at-1"} and transport.count == 1
