"""The asyncio path: ``get_token_async`` / ``token_async``, background refreshes
as tasks on the caller's loop, and ``aclose``.

Single flight holds across tasks and threads: every path asks the engine
under one lock, and a task that must wait awaits a future the fetch's
``_finish`` resolves on its loop. The loop of the last asyncio caller becomes
the account's home loop: idle wakeups refresh there, on the async transport
(one ``httpx.AsyncClient`` per loop, closed by ``aclose()``).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Awaitable, Callable, Optional, Set, Tuple, cast

from . import _native
from ._cache_file import BUSY, HELD
from ._host import READY, SEND, WAIT, EngineHost, as_outcome
from ._token import AccessToken
from ._transport import TransportRequest, classify_failure

__all__ = ["AsyncHost", "AsyncTransport", "Transport"]

Transport = Callable[[TransportRequest], Any]
AsyncTransport = Callable[[TransportRequest], Awaitable[Any]]


class AsyncHost(EngineHost):
    """The asyncio half of ``ServiceAccount``."""

    _transport: Optional[Transport]
    _async_transport: Optional[AsyncTransport]
    _owns_transport: bool

    def _init_async(self) -> None:
        self._gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: Set["asyncio.Task[None]"] = set()

    async def get_token_async(self) -> str:
        """``get_token`` for asyncio: one request at most across tasks (and threads)."""
        if self._clock() < self._deadline:
            return self._token  # type: ignore[return-value]
        return (await self._acquire_async()).access_token

    async def token_async(self) -> AccessToken:
        """``token`` for asyncio."""
        if self._clock() < self._deadline:
            return self._token_obj  # type: ignore[return-value]
        return await self._acquire_async()

    async def aclose(self) -> None:
        """``close()``, awaiting the async transport's close on this loop."""
        self._mark_closed()
        closer = getattr(self._async_transport, "aclose", None) if self._owns_transport else None
        if closer is not None:
            await closer()

    # ---- the slow path --------------------------------------------------------------

    async def _acquire_async(self) -> AccessToken:
        loop = asyncio.get_running_loop()
        if self._home_loop is None or self._home_loop() is not loop:
            self._home_loop = weakref.ref(loop)
        try:
            while True:
                gate = None
                held = False
                if self._cache_file is not None:
                    gate = self._gates.get(loop)
                    if gate is None:
                        gate = self._gates[loop] = asyncio.Lock()
                    await gate.acquire()
                    try:
                        locked = self._cache_file.lock(0.0)
                        if locked == BUSY:
                            locked = await self._lock_file_in_thread(loop)
                        held = locked == HELD
                    except BaseException:
                        gate.release()
                        raise
                try:
                    if self._clock() < self._deadline and self._token_obj is not None:
                        return self._token_obj
                    action, value = self._step(loop)
                    if action == SEND:
                        with self._sending(value, "cancelled") as outcome:
                            outcome.append(await self._send_async(value))
                        continue
                finally:
                    self._unlock_cache_file(held)
                    if gate is not None:
                        gate.release()
                if action == READY:
                    return cast(AccessToken, value)
                if action == WAIT:
                    future, timeout = value
                    await asyncio.wait([future], timeout=timeout)
                    continue
                raise value
        finally:
            self._dispatch_events()

    async def _lock_file_in_thread(self, loop: asyncio.AbstractEventLoop) -> str:
        """Waits for the cache file's lock on a worker thread, so the loop keeps running."""
        cache_file = self._cache_file
        assert cache_file is not None
        attempt = loop.run_in_executor(None, cache_file.lock, self._timeout_s + 2.0)
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # The worker may still get the lock after this task is gone: give it back then.
            def release(done: "asyncio.Future[str]") -> None:
                if not done.cancelled() and done.exception() is None and done.result() == HELD:
                    cache_file.unlock()

            attempt.add_done_callback(release)
            raise

    async def _send_async(self, request: "_native.TokenRequest") -> Tuple[Any, ...]:
        outgoing = self._transport_request(request)
        try:
            if self._async_transport is not None:
                answer = await self._async_transport(outgoing)
            else:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(None, self._transport, outgoing)  # type: ignore[arg-type]
        except Exception as error:  # every failure becomes the engine's transport error
            return ("error",) + classify_failure(error, outgoing.url)
        return as_outcome(answer)

    def _start_background_task(self, request: "_native.TokenRequest", loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._background_async(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _background_async(self, request: "_native.TokenRequest") -> None:
        try:
            outcome = await self._send_async(request)
        except BaseException:
            self._finish(request, ("error", "other", "cancelled"))
            self._dispatch_events()
            raise
        self._save(self._finish(request, outcome))
        self._dispatch_events()
