"""The idle timer: the account polls the engine at its ``next_wakeup()`` while
no caller is active (refresh ahead, retries, outage grace), from a daemon
thread that never keeps the process alive, on the caller's loop for asyncio;
``close()`` / ``aclose()`` stop it.

The ``loopback`` tests use real time (short tokens on a 127.0.0.1 token
endpoint) and wait on events; the others replace the timer's scheduler with
``ManualTimer`` and drive a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any, Callable, List, Tuple

import pytest

import tokenwell._httpx_transport as httpx_transport_module
import tokenwell._timer as timer_module
from tokenwell import ClosedError, ServiceAccount, TransientError

from conftest import WAIT, CountingTransport, EventLog, FakeClock, TokenServer, token_body

# Short tokens: 6 s, so the margin is 3 s (half the life), refresh-ahead at
# 2.25 s (75 % of the usable 3 s, no jitter), outage grace until 0.5 s before expiry.
LIFETIME = 6
ENGINE = {"refresh_ahead_jitter": 0, "backoff_jitter": False, "outage_grace_safety_ms": 500}


def outage(n: int, headers: Any, body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
    return 503, [("Content-Type", "text/plain")], b"down for maintenance"


def user_agents(server: TokenServer) -> List[str]:
    return [dict((k.lower(), v) for k, v in headers).get("user-agent", "") for headers, _ in server.requests]


def test_loopback_refresh_ahead_with_no_caller_then_outage_grace_sync(token_server: Callable[..., TokenServer]) -> None:
    server = token_server(lifetime=LIFETIME)
    log = EventLog()
    with ServiceAccount(token_url=server.url, client_id="c", client_secret="s", engine_options=ENGINE,
                        on_event=log) as account:
        assert account.get_token() == "at-1"
        # Nobody asks again: the timer refreshes ahead.
        log.wait_for("token_acquired", 2)
        started = [e["reason"] for e in log.events if e["type"] == "refresh_started"]
        assert started == ["initial", "ahead"]
        # The token endpoint goes down. The timer's refresh fails, its retries
        # fail, and at the margin the engine serves the token under outage grace.
        server.script = outage
        log.wait_for("refresh_failed", 1)
        assert account.get_token() == "at-2"
        log.wait_for("outage_grace_served", 1)
        assert account.get_token() == "at-2"  # inside the margin, during the outage: no failure
    assert server.count >= 3
    assert all("urllib" in agent for agent in user_agents(server))


def test_loopback_refresh_ahead_with_no_caller_then_outage_grace_asyncio(
    token_server: Callable[..., TokenServer]
) -> None:
    pytest.importorskip("httpx")
    server = token_server(lifetime=LIFETIME)
    log = EventLog()

    async def wait_for(kind: str, count: int = 1) -> None:
        # The loop must keep running (the timer's refresh is a task on it).
        await asyncio.get_running_loop().run_in_executor(None, log.wait_for, kind, count)

    async def main() -> None:
        async with ServiceAccount(token_url=server.url, client_id="c", client_secret="s", engine_options=ENGINE,
                                  on_event=log) as account:
            assert await account.get_token_async() == "at-1"
            await wait_for("token_acquired", 2)
            server.script = outage
            await wait_for("refresh_failed")
            assert await account.get_token_async() == "at-2"
            await wait_for("outage_grace_served")
            assert await account.get_token_async() == "at-2"

    asyncio.run(main())
    # Every refresh went through the loop's transport (httpx), not a thread's.
    assert all("httpx" in agent for agent in user_agents(server)), user_agents(server)


@pytest.mark.parametrize("way", ["sync", "asyncio"])
def test_the_idle_timer_never_keeps_the_process_alive(way: str) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from tokenwell import ServiceAccount, TransportResponse
        body = b'{"access_token": "at", "token_type": "Bearer", "expires_in": 3600}'
        account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret="s",
                                 transport=lambda request: TransportResponse(200, [], body))
        if sys.argv[1] == "sync":
            print(account.get_token())
        else:
            print(asyncio.run(account.get_token_async()))
        assert account._timer_at is not None  # armed, for refresh-ahead in ~45 minutes
        """
    )
    done = subprocess.run([sys.executable, "-c", script, way], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "at"


# ---- with the scheduler replaced -------------------------------------------------------


class ManualTimer:
    """Stands in for the idle timer's scheduler: records what is scheduled; ``fire`` wakes it."""

    def __init__(self) -> None:
        self.scheduled: List[Tuple[Any, float, int]] = []
        self.next_ticket = 1000

    def schedule(self, target: Any, delay: float) -> int:
        self.next_ticket += 1
        self.scheduled.append((target, delay, self.next_ticket))
        return self.next_ticket

    def fire(self) -> int:
        """Wakes everything scheduled so far; how many there were."""
        due, self.scheduled = self.scheduled, []
        for target, _, ticket in due:
            target._on_idle_timer(ticket)
        return len(due)


@pytest.fixture
def manual_timer(monkeypatch: pytest.MonkeyPatch) -> ManualTimer:
    timer = ManualTimer()
    monkeypatch.setattr(timer_module, "schedule", timer.schedule)
    return timer


def account(transport: Any, clock: FakeClock, **kwargs: Any) -> ServiceAccount:
    kwargs.setdefault("engine_options", {"refresh_ahead_jitter": 0, "backoff_jitter": False})
    return ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret="idle-test-secret",
                          transport=transport, clock=clock, **kwargs)


def test_the_wakeup_is_the_engines_next_wakeup(manual_timer: ManualTimer, clock: FakeClock) -> None:
    transport = CountingTransport(lifetime=3600)
    log = EventLog()
    a = account(transport, clock, on_event=log)
    assert a.get_token() == "at-1"
    _, delay, _ = manual_timer.scheduled[-1]  # (the one before was the fetch's deadline)
    assert delay == pytest.approx((a.engine.next_wakeup() or 0) / 1000 - clock.now)
    assert delay == pytest.approx(0.75 * (3600 - 30))  # refresh-ahead of the usable life
    clock.advance(delay)
    manual_timer.fire()
    log.wait_for("token_acquired", 2)  # a background refresh, with no caller
    assert transport.count == 2 and a.get_token() == "at-2"
    assert [e["reason"] for e in log.events if e["type"] == "refresh_started"] == ["initial", "ahead"]


def test_a_cancelled_wakeup_does_nothing(manual_timer: ManualTimer, clock: FakeClock) -> None:
    transport = CountingTransport()
    a = account(transport, clock)
    a.get_token()
    a.invalidate("at-1")  # no token, no deadline: nothing to wake for until a caller asks
    clock.advance(3600)
    assert manual_timer.fire() == 2  # the fetch's deadline and the refresh-ahead, both cancelled
    assert transport.count == 1 and manual_timer.scheduled == []
    assert a.get_token() == "at-2"


def test_refresh_when_idle_false_schedules_nothing(manual_timer: ManualTimer, clock: FakeClock) -> None:
    a = account(CountingTransport(), clock, refresh_when_idle=False)
    a.get_token()
    assert manual_timer.scheduled == []


def test_close_stops_the_timer_and_the_account(manual_timer: ManualTimer, clock: FakeClock) -> None:
    transport = CountingTransport()
    a = account(transport, clock)
    a.get_token()
    assert manual_timer.scheduled
    a.close()
    a.close()  # idempotent
    assert a.closed
    clock.advance(3000)
    manual_timer.fire()  # the wakeup armed before close() does nothing
    assert transport.count == 1 and manual_timer.scheduled == []
    with pytest.raises(ClosedError) as raised:
        a.get_token()
    assert (raised.value.kind, raised.value.fault, raised.value.retryable) == ("closed", "host", False)
    with pytest.raises(ClosedError):
        asyncio.run(a.get_token_async())
    with pytest.raises(ClosedError):
        a.token()


def test_a_retry_is_driven_while_idle(manual_timer: ManualTimer, clock: FakeClock) -> None:
    healthy = [True]

    def answer(n: int, request: Any) -> Any:
        if healthy[0]:
            return (200, [], token_body(f"at-{n}", 3600))
        raise ConnectionRefusedError(111, "Connection refused")

    transport = CountingTransport(answer=answer)
    log = EventLog()
    a = account(transport, clock, on_event=log)
    a.get_token()
    healthy[0] = False
    clock.advance(manual_timer.scheduled[-1][1])
    manual_timer.fire()
    log.wait_for("refresh_failed", 1)
    failed = [e for e in log.events if e["type"] == "refresh_failed"][0]
    assert "127.0.0.1:9" in failed["error"]["description"]  # the endpoint, for a person reading the log
    # The retry's time is armed; at it the timer tries again, still with no caller.
    healthy[0] = True
    clock.advance(manual_timer.scheduled[-1][1])
    manual_timer.fire()
    log.wait_for("token_acquired", 2)
    assert a.get_token() == "at-3"


def test_a_refused_connection_names_the_host_and_port(clock: FakeClock) -> None:
    def refuse(n: int, request: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    a = account(CountingTransport(answer=refuse), clock, refresh_when_idle=False)
    with pytest.raises(TransientError) as raised:
        a.get_token()
    assert "127.0.0.1:9" in str(raised.value) and "Connection refused" in str(raised.value)


def test_an_asyncio_account_whose_loop_is_gone_wakes_on_a_thread(manual_timer: ManualTimer, clock: FakeClock) -> None:
    async def transport(request: Any) -> Any:
        transport.count += 1  # type: ignore[attr-defined]
        return (200, [], token_body(f"at-{transport.count}", 3600))  # type: ignore[attr-defined]

    transport.count = 0  # type: ignore[attr-defined]
    log = EventLog()
    a = account(transport, clock, on_event=log)
    assert asyncio.run(a.get_token_async()) == "at-1"  # that loop is closed now
    clock.advance(manual_timer.scheduled[-1][1])
    manual_timer.fire()  # no loop to wake on: a thread runs the async transport itself
    log.wait_for("token_acquired", 2)
    assert a.get_token() == "at-2"


# ---- the asyncio transport's client -------------------------------------------------------


def test_one_httpx_client_per_loop_closed_by_aclose(
    token_server: Callable[..., TokenServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("httpx")
    server = token_server(lifetime=3600)
    clients: List[Any] = []
    real_new_client = httpx_transport_module._new_client

    def counting_new_client(*args: Any) -> Any:
        clients.append(real_new_client(*args))
        return clients[-1]

    monkeypatch.setattr(httpx_transport_module, "_new_client", counting_new_client)
    a = ServiceAccount(token_url=server.url, client_id="c", client_secret="s", refresh_when_idle=False,
                       engine_options={"invalidate_min_interval_ms": 0})

    async def two_fetches() -> List[str]:
        first = await a.get_token_async()
        a.invalidate(first)
        return [first, await a.get_token_async()]

    assert asyncio.run(two_fetches()) == ["at-1", "at-2"]
    assert len(clients) == 1  # one client served both requests
    # A later asyncio.run is another loop: the first loop's client went with it.
    a.invalidate("at-2")

    async def again_then_close() -> str:
        token = await a.get_token_async()
        await a.aclose()
        return token

    assert asyncio.run(again_then_close()) == "at-3"
    assert len(clients) == 2 and clients[1].is_closed
    with pytest.raises(ClosedError):
        asyncio.run(a.get_token_async())
