"""``EngineHost``: what the sync and the asyncio paths share in driving the engine.

The engine (``_native.TokenCache``) decides everything: when to fetch, whether
to retry, which secret to use, what an error means, every event. A host owns
the clock, the transport, threads and tasks, the secret and key files, the
entropy for signed client assertions, and the on-disk cache. This class holds the host's state and the steps taken under its lock:
ask the engine what to do (``_step``), report what a fetch got (``_finish``),
deliver events, and arm the idle timer at the engine's ``next_wakeup()``.

Hot path: the current token and a deadline are kept in two attributes; while
the clock is before that deadline ``get_token`` returns the token without
calling native code. The deadline is the engine's ``next_wakeup()`` (nothing
changes before it unless the host calls ``invalidate``, ``replace_secrets``
or ``import_snapshot``, and each of those resets it), capped at the secret
(or key) file's next check when there is one.

Signed client assertions (``private_key_jwt``, ``client_secret_jwt``): the
engine draws the ``jti`` from a pool only the host feeds. Before every poll
that may send (every ``_step``: the hot path never sends), the host mixes in
``os.urandom(32)``, so two processes forked from one parent (a cron's
workers) never sign the same ``jti``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import _native, _timer
from ._cache_file import CacheFile
from ._config import Settings
from ._errors import SnapshotError, TokenError
from ._secret_file import CHECK_INTERVAL_S
from ._token import AccessToken
from ._transport import TransportRequest, ca_bundle, normalize_response

__all__ = ["EngineHost", "Event", "READY", "SEND", "WAIT", "FAIL", "as_outcome", "wake_loop_waiters"]

log = logging.getLogger("tokenwell")

Event = Dict[str, Any]
READY, SEND, WAIT, FAIL = "ready", "send", "wait", "fail"


class EngineHost:
    """The engine, its lock, the published token, events and files."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache_path: Optional[str],
        on_event: Optional[Callable[[Event], Any]],
        clock: Callable[[], float],
        entropy: int,
        refresh_when_idle: bool,
    ) -> None:
        self._clock = clock
        self._on_event = on_event
        self._cache = _native.TokenCache(settings.config, entropy)
        self._secret_file = settings.secret_file
        self._key_file = settings.key_file
        self._ca_file = settings.ca_file
        self._timeout_s = self._cache.request_timeout_ms / 1000.0
        self._max_response_bytes = self._cache.max_response_bytes
        # Events for the caller, dispatched in order outside the lock.
        self._outbox: "collections.deque[Event]" = collections.deque()
        # Cache file problems come from any thread, some while self._cond is
        # held: queued without a lock, then reported to the engine (which makes
        # the cache_file_problem event) by the next _collect_locked.
        self._file_problems: "collections.deque[Tuple[str, str, str]]" = collections.deque()
        self._cache_file = CacheFile(cache_path, self._host_event) if cache_path is not None else None

        # The hot path reads these two without a lock. Writers store the token
        # first and the deadline last, so a reader that sees a future deadline
        # sees a token that was valid when it was stored.
        self._token: Optional[str] = None
        self._token_obj: Optional[AccessToken] = None
        self._published: Tuple[str, int] = ("", 0)
        self._deadline = 0.0

        self._cond = threading.Condition(threading.Lock())
        self._generation = 0  # bumped whenever a fetch ends; sync waiters watch it
        self._loop_waiters: Dict[asyncio.AbstractEventLoop, "asyncio.Future[None]"] = {}
        self._closed = False
        self._refresh_when_idle = refresh_when_idle
        self._timer_ticket = 0
        self._timer_at: Optional[int] = None
        # The loop of the last asyncio caller: idle wakeups refresh there, on its transport.
        self._home_loop: Optional["weakref.ref[asyncio.AbstractEventLoop]"] = None

    # ---- one decision, under the lock ---------------------------------------------

    def _start_background(self, request: "_native.TokenRequest", loop: Optional[asyncio.AbstractEventLoop]) -> None:
        raise NotImplementedError  # ServiceAccount: a thread, or a task on ``loop``

    def _step(self, loop: Optional[asyncio.AbstractEventLoop]) -> Tuple[str, Any]:
        """Asks the engine what to do now and does the non-blocking part of it."""
        with self._cond:
            if self._closed:
                return FAIL, _native.closed_error()
            now = self._now_ms()
            if self._secret_file is not None:
                self._secret_file.check(self._cache, now)
            if self._key_file is not None:
                self._key_file.check(self._cache, now)
            self._import_cache_file_locked()
            if self._signs_assertions():
                # Fresh OS randomness before a poll that may send (core's EntropyPool rule).
                self._cache.add_entropy(os.urandom(32))
            poll = self._cache.poll(now)
            try:
                result = poll.result
                if result == "ready":
                    assert poll.token is not None
                    return READY, self._publish_locked(poll.token)
                if result == "ready_and_send":
                    assert poll.token is not None and poll.request is not None
                    token = self._publish_locked(poll.token)
                    self._start_background(poll.request, loop)
                    return READY, token
                if result == "send":
                    return SEND, poll.request
                if result == "wait":
                    wake = self._cache.next_wakeup()
                    timeout = min(max((wake - now) / 1000.0, 0.001), 60.0) if wake is not None else 1.0
                    if loop is None:
                        return WAIT, (self._generation, timeout)
                    future = self._loop_waiters.get(loop)
                    if future is None or future.done():
                        future = self._loop_waiters[loop] = loop.create_future()
                    return WAIT, (future, timeout)
                self._deadline = 0.0
                return FAIL, poll.error
            finally:
                self._collect_locked()
                self._arm_locked()

    def _signs_assertions(self) -> bool:
        """Whether a token request may carry a client assertion (with discovery,
        the method is known once the document was read; a metadata request signs nothing)."""
        return self._cache.key_count > 0 or self._cache.auth_method in ("private_key_jwt", "client_secret_jwt")

    def _deadline_locked(self) -> float:
        """Until when the hot path may serve the published token without asking."""
        if self._closed:
            return 0.0
        wake = self._cache.next_wakeup()
        deadline = wake / 1000.0 if wake is not None else 0.0
        if self._secret_file is not None or self._key_file is not None:
            deadline = min(deadline, self._clock() + CHECK_INTERVAL_S)
        return deadline

    def _publish_locked(self, token: "_native.Token") -> AccessToken:
        key = (token.access_token, token.expires_at)
        current = self._token_obj
        if current is None or key != self._published:
            current = AccessToken._from_native(token)
            self._published = key
            self._token_obj = current
            self._token = current.access_token
        self._deadline = self._deadline_locked()
        return current

    @contextlib.contextmanager
    def _sending(self, request: "_native.TokenRequest", cut_short: str) -> Iterator[List[Tuple[Any, ...]]]:
        """Around one send, sync or async: the outcome the body appends is
        reported to the engine and persisted; a send cut short (an exception,
        a cancelled task) is reported as a transport failure ``cut_short``."""
        outcome: List[Tuple[Any, ...]] = []
        try:
            yield outcome
        except BaseException:
            self._finish(request, ("error", "other", cut_short))
            raise
        self._save(self._finish(request, outcome[0]))

    def _unlock_cache_file(self, held: bool) -> None:
        if held:
            self._cache_file.unlock()  # type: ignore[union-attr]

    def _finish(self, request: "_native.TokenRequest", outcome: Tuple[Any, ...]) -> Optional[str]:
        """Reports a fetch's outcome to the engine and wakes every waiter.
        Returns the snapshot to persist, if a token was acquired and a cache file is set."""
        snapshot = None
        waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]]
        with self._cond:
            now = self._now_ms()
            refused_client = False
            if outcome[0] == "response":
                _, status, headers, body = outcome
                try:
                    token = self._cache.handle_response(request.fetch_id, status, headers, body, now)
                except TokenError as error:
                    token, refused_client = None, error.kind == "invalid_client"
                except (TypeError, ValueError) as bad:  # the transport returned something unusable
                    self._cache.handle_transport_error(request.fetch_id, "other", f"unusable response: {bad}", now)
                    token = None
                if token is not None:
                    self._publish_locked(token)
                    if self._cache_file is not None:
                        snapshot = self._cache.export_snapshot(now)
            else:
                _, kind, message = outcome
                self._cache.handle_transport_error(request.fetch_id, kind, message, now)
            if refused_client:
                # The secret or key may have been rotated under us: look at the files now.
                for watched in (self._secret_file, self._key_file):
                    if watched is not None:
                        watched.check(self._cache, now, forced=True)
            # The engine's deadline may have moved earlier (a retry time): never serve past it.
            self._deadline = min(self._deadline, self._deadline_locked())
            self._collect_locked()
            self._arm_locked()
            self._generation += 1
            self._cond.notify_all()
            waiters = list(self._loop_waiters.items())
            self._loop_waiters.clear()
        wake_loop_waiters(waiters)
        return snapshot

    def _transport_request(self, request: "_native.TokenRequest") -> TransportRequest:
        return TransportRequest(
            request.fetch_id,
            request.method,
            request.url,
            request.headers,
            request.body,
            request.timeout_ms / 1000.0,
            self._max_response_bytes,
            ca_bundle(self._ca_file),
        )

    # ---- the idle timer -------------------------------------------------------------

    def _arm_locked(self) -> None:
        """Schedules a wakeup at the engine's next deadline, if it moved."""
        if not self._refresh_when_idle or self._closed:
            return
        wake = self._cache.next_wakeup()
        if wake == self._timer_at:
            return
        if wake is None:  # nothing to wake for (e.g. the token was invalidated): cancel
            self._timer_ticket, self._timer_at = 0, None
            return
        self._timer_at = wake
        self._timer_ticket = _timer.schedule(self, wake / 1000.0 - self._clock())

    def _on_idle_timer(self, ticket: int) -> None:
        """The engine's deadline passed (on the timer's thread): poll as a caller would."""
        with self._cond:
            if ticket != self._timer_ticket or self._closed:
                return
            self._timer_ticket, self._timer_at = 0, None
        loop = self._home_loop() if self._home_loop is not None else None
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(self._wake, loop)
                return
            except RuntimeError:  # closed meanwhile: wake on this thread instead
                pass
        self._wake(None)

    def _wake(self, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        try:
            action, value = self._step(loop)
            if action == SEND:  # no usable token: the engine wants one anyway
                self._start_background(value, loop)
        finally:
            self._dispatch_events()

    def _mark_closed(self) -> None:
        """No more tokens: the hot path misses, waiters wake to ``ClosedError``,
        the armed wakeup is cancelled."""
        with self._cond:
            self._closed = True
            self._deadline = 0.0
            self._timer_ticket, self._timer_at = 0, None
            self._generation += 1
            self._cond.notify_all()
            waiters = list(self._loop_waiters.items())
            self._loop_waiters.clear()
        wake_loop_waiters(waiters)

    # ---- commands shared by both paths ----------------------------------------------

    def invalidate(self, token: "str | AccessToken") -> str:
        """An API answered 401 for ``token``: drop it if it is still the current one
        (rate-limited by the engine). Returns ``"invalidated"``, ``"not_current"``
        or ``"rate_limited"``; whether to retry the request is the engine's 401
        rule, ``tokenwell.retry_request(outcome)``."""
        value = token.access_token if isinstance(token, AccessToken) else token
        with self._cond:
            outcome = self._cache.invalidate(value, self._now_ms())
            if outcome == "invalidated":
                self._deadline = 0.0
            self._collect_locked()
            self._arm_locked()
        if outcome == "invalidated" and self._cache_file is not None:
            # The engine dropped the token: so does the disk, or the next run would load it again.
            self._cache_file.remove_if_unchanged()
        self._dispatch_events()
        return outcome

    def replace_secrets(self, secrets: "str | List[str]") -> bool:
        """Replaces the client secrets (current first) without a restart."""
        with self._cond:
            try:
                changed = self._cache.replace_secrets(secrets, self._now_ms())
            finally:
                self._collect_locked()
            self._deadline = 0.0
            self._arm_locked()
        self._dispatch_events()
        return changed

    # ---- files ----------------------------------------------------------------------

    def _import_cache_file_locked(self) -> None:
        if self._cache_file is None:
            return
        text = self._cache_file.read_if_changed()  # problems are reported as events
        if text is None:
            return
        try:
            self._cache.import_snapshot(text, self._now_ms())
        except SnapshotError as refused:
            self._host_event("ignored", path=self._cache_file.path, reason=refused.reason)

    def _save(self, snapshot: Optional[str]) -> None:
        if snapshot is not None and self._cache_file is not None:
            self._cache_file.write(snapshot)  # a failure is a cache_file_problem event (write_failed)

    # ---- events ---------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _collect_locked(self) -> None:
        while self._file_problems:
            path, problem, detail = self._file_problems.popleft()
            self._cache.report_cache_file_problem(path, problem, detail, self._now_ms())
        events = self._cache.drain_events()
        if events:
            self._outbox.extend(events)

    def _host_event(self, problem: str, **fields: Any) -> None:
        """A problem with the cache file (the engine's name: ``ignored``,
        ``write_failed``, ...) with its path and non-secret fields (from any
        thread, with or without ``self._cond``): the engine words it as a
        ``cache_file_problem`` event (``problem``, ``path``, ``detail``: the
        reason, error name or mode, joined by ``: ``)."""
        path = str(fields.pop("path"))
        detail = ": ".join(str(fields[k]) for k in ("reason", "error", "mode") if fields.get(k) is not None)
        self._file_problems.append((path, problem, detail))

    def _dispatch_events(self) -> None:
        if self._file_problems:
            with self._cond:
                self._collect_locked()
        events: List[Event] = []
        while True:
            try:
                events.append(self._outbox.popleft())
            except IndexError:
                break
        for event in events:
            if self._on_event is None:
                _log_event(event)
                continue
            try:
                self._on_event(event)
            except Exception:  # a failing handler must not break token acquisition
                log.exception("tokenwell: on_event handler raised")


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def wake_loop_waiters(waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]]) -> None:
    for loop, future in waiters:
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # that loop is closed: nobody is waiting on it
            pass


def as_outcome(answer: Any) -> Tuple[Any, ...]:
    """What a transport returned, as ``_finish`` takes it."""
    normalized = normalize_response(answer)
    if normalized is None:
        return ("error", "other", f"the transport returned {type(answer).__name__}, not a response")
    return ("response",) + normalized


_WARN = {
    "refresh_failed",
    "secret_file_rejected",
    "outage_grace_served",
    "fetch_abandoned",
    "cache_file_problem",
    "discovery_kept_cached",
}


def _log_event(event: Event) -> None:
    kind = event.get("type", "")
    if kind == "cache_file_problem" and event.get("problem") == "ignored" and event.get("detail") == "expired":
        level = logging.DEBUG
    else:
        level = logging.WARNING if kind in _WARN else logging.DEBUG
    if log.isEnabledFor(level):
        log.log(level, "tokenwell %s %s", kind, {k: v for k, v in event.items() if k != "type"})

