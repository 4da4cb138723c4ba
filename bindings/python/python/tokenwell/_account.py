"""``ServiceAccount``: the Python host around the engine.

The engine (``_native.TokenCache``) decides everything: when to fetch, whether
to retry, which secret to use, what an error means. This module owns what a
host owns: the clock, the HTTP transport, threads and asyncio tasks, the
secret file and the on-disk cache.

Hot path: the current token and the engine's deadline (``next_wakeup()``) are
kept in two attributes; while the clock is before that deadline ``get_token``
returns the token without calling native code. The engine documents that
nothing changes before then unless the host calls ``invalidate``,
``replace_secrets`` or ``import_snapshot``, and each of those resets the deadline.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import inspect
import logging
import math
import os
import random
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
)

from . import _native
from ._cache_file import BUSY, HELD, CacheFile
from ._errors import InvalidConfigError, SnapshotError, TokenError, _config_error
from ._transport import (
    TransportRequest,
    ca_bundle,
    classify_failure,
    have_httpx,
    httpx_async_transport,
    normalize_response,
    tls_context,
    urllib_transport,
)

__all__ = ["ServiceAccount", "AccessToken"]

log = logging.getLogger("tokenwell")

Event = Dict[str, Any]
Transport = Callable[[TransportRequest], Any]
StrOrList = Union[str, Sequence[str]]

_READY, _SEND, _WAIT, _FAIL = "ready", "send", "wait", "fail"

# Background refreshes still running at interpreter exit are given until their
# own timeout to finish, so a cron that refreshed ahead leaves the new token on disk.
_BACKGROUND: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()


def _join_background_refreshes() -> None:
    for thread in list(_BACKGROUND):
        limit = getattr(thread, "tokenwell_deadline", 0.0) - time.monotonic()
        if limit > 0:
            thread.join(limit)


atexit.register(_join_background_refreshes)


class AccessToken:
    """A token as handed to callers: ``access_token``, ``token_type``,
    ``expires_at`` (aware UTC ``datetime``), ``scope`` (tuple), ``received_at``.
    ``repr`` and ``str`` never show the token itself."""

    __slots__ = ("access_token", "token_type", "expires_at", "scope", "received_at")

    access_token: str
    token_type: str
    expires_at: datetime
    scope: Tuple[str, ...]
    received_at: datetime

    def __init__(
        self,
        access_token: str,
        token_type: str,
        expires_at: datetime,
        scope: Tuple[str, ...],
        received_at: datetime,
    ) -> None:
        object.__setattr__(self, "access_token", access_token)
        object.__setattr__(self, "token_type", token_type)
        object.__setattr__(self, "expires_at", expires_at)
        object.__setattr__(self, "scope", tuple(scope))
        object.__setattr__(self, "received_at", received_at)

    @classmethod
    def _from_native(cls, token: "_native.Token") -> "AccessToken":
        return cls(
            token.access_token,
            token.token_type,
            datetime.fromtimestamp(token.expires_at / 1000.0, tz=timezone.utc),
            token.scope,
            datetime.fromtimestamp(token.received_at / 1000.0, tz=timezone.utc),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("AccessToken is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccessToken):
            return NotImplemented
        return (self.access_token, self.expires_at, self.scope) == (other.access_token, other.expires_at, other.scope)

    def __hash__(self) -> int:
        return hash((self.access_token, self.expires_at))

    def __repr__(self) -> str:
        return (
            f"AccessToken(access_token='{_native.REDACTED}', token_type={self.token_type!r}, "
            f"expires_at={self.expires_at.isoformat()!r}, scope={self.scope!r})"
        )

    __str__ = __repr__


def _seconds_to_ms(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _config_error(field, f"must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise _config_error(field, "must be a finite, non-negative number of seconds")
    return int(round(value * 1000))


def _str_or_list(value: Any, field: str) -> Union[str, List[str]]:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _config_error(f"{field}[{i}]", f"must be a str, not {type(item).__name__}")
        return list(value)
    raise _config_error(field, f"must be a str or a list of str, not {type(value).__name__}")


def _pairs(value: Any, field: str) -> List[List[str]]:
    items = value.items() if isinstance(value, Mapping) else value
    if isinstance(items, (str, bytes)):
        raise _config_error(field, "must be a mapping or (name, value) pairs of str")
    try:
        pairs = [list(pair) for pair in items]
    except TypeError:
        raise _config_error(field, "must be a mapping or (name, value) pairs of str") from None
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise _config_error(f"{field}[{i}]", "must be a (name, value) pair of str")
    return pairs


def _renamed(error: InvalidConfigError, names: Mapping[str, str]) -> InvalidConfigError:
    """The same refusal, naming the caller's argument (or variable) instead of the engine field."""
    field = error.field or ""
    base, bracket, rest = field.partition("[")
    if base not in names:
        return error
    new_field = names[base] + (bracket + rest if bracket and not names[base].isupper() else "")
    return _config_error(new_field, error.problem or "is invalid")


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _default_entropy() -> int:
    return random.SystemRandom().getrandbits(64)


class ServiceAccount:
    """A self-refreshing OAuth 2.0 Client Credentials token for one client.

    Thread-safe and asyncio-safe: however many threads and tasks ask at once,
    at most one token request is in flight. See the package README for every
    argument; durations are in seconds.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: Optional[StrOrList] = None,
        auth_method: str = "client_secret_basic",
        scope: Optional[StrOrList] = None,
        audience: Optional[StrOrList] = None,
        refresh_margin: float = 30.0,
        timeout: float = 10.0,
        transport: Optional[Callable[..., Any]] = None,
        cache_path: "Optional[os.PathLike[str] | str]" = None,
        client_secret_file: "Optional[os.PathLike[str] | str]" = None,
        on_event: Optional[Callable[[Event], Any]] = None,
        extra_params: Optional[Union[Mapping[str, str], Sequence[Tuple[str, str]]]] = None,
        max_response_bytes: Optional[int] = None,
        allow_insecure_http: bool = False,
        ca_file: "Optional[os.PathLike[str] | str]" = None,
        engine_options: Optional[Mapping[str, Any]] = None,
        clock: Optional[Callable[[], float]] = None,
        entropy: Optional[int] = None,
        _field_names: Optional[Mapping[str, str]] = None,
    ) -> None:
        names: Dict[str, str] = {"refresh_margin_ms": "refresh_margin", "request_timeout_ms": "timeout"}
        names.update(_field_names or {})
        self._clock: Callable[[], float] = clock or time.time
        self._on_event = on_event

        options: Dict[str, Any] = dict(engine_options or {})
        options["token_url"] = token_url
        options["client_id"] = client_id
        options["auth_method"] = auth_method
        if scope is not None:
            options["scope"] = _str_or_list(scope, names.get("scope", "scope"))
        if audience is not None:
            options["audience"] = _str_or_list(audience, names.get("audience", "audience"))
        if extra_params is not None:
            options["extra_params"] = _pairs(extra_params, "extra_params")
        if max_response_bytes is not None:
            options["max_response_bytes"] = max_response_bytes
        if allow_insecure_http:
            options["allow_insecure_http"] = True
        options["refresh_margin_ms"] = _seconds_to_ms(refresh_margin, "refresh_margin")
        options["request_timeout_ms"] = _seconds_to_ms(timeout, "timeout")

        self._secret_file: Optional[str] = None
        self._secret_file_var = names.get("client_secret_file", "client_secret_file")
        self._secret_file_seen: Optional[Tuple[int, int, int, int]] = None
        if client_secret is not None and client_secret_file is not None:
            raise _config_error("client_secret", "set only one of client_secret and client_secret_file")
        if client_secret_file is not None:
            self._secret_file = os.fspath(client_secret_file)
            options["client_secret"], self._secret_file_seen = self._read_secret_file()
            names["client_secret"] = self._secret_file_var
        elif client_secret is not None:
            options["client_secret"] = _str_or_list(client_secret, "client_secret")

        try:
            self._cache = _native.TokenCache(options, _default_entropy() if entropy is None else entropy)
        except InvalidConfigError as error:
            raise _renamed(error, names) from None

        if transport is None:
            self._transport: Optional[Transport] = urllib_transport
            self._async_transport: Optional[Callable[[TransportRequest], Awaitable[Any]]] = (
                httpx_async_transport if have_httpx() else None
            )
        elif _is_async_callable(transport):
            self._transport, self._async_transport = None, transport
        elif callable(transport):
            self._transport, self._async_transport = transport, None
        else:
            raise _config_error("transport", "must be a callable")

        self._ca_file: Optional[str] = None
        if ca_file is not None:
            ca_field = names.get("ca_file", "ca_file")
            if not isinstance(ca_file, (str, os.PathLike)) or not os.fspath(ca_file):
                raise _config_error(ca_field, "must be the path of a PEM file of CA certificates")
            self._ca_file = os.path.abspath(os.fspath(ca_file))
            try:
                tls_context(self._ca_file)  # refused now rather than at the first request
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                raise _config_error(
                    ca_field, f"cannot be loaded as a PEM file of CA certificates ({type(error).__name__})"
                ) from None

        # Host events (cache file problems come from any thread, some while
        # self._cond is held): appended without a lock, dispatched in order.
        self._outbox: "collections.deque[Event]" = collections.deque()
        self._cache_file = CacheFile(cache_path, self._host_event) if cache_path is not None else None
        self._timeout_s = self._cache.request_timeout_ms / 1000.0
        self._max_response_bytes = self._cache.max_response_bytes

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
        self._gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()
        self._tasks: "set[asyncio.Task[None]]" = set()

    # ---- construction from the environment ------------------------------------

    @classmethod
    def from_env(cls, prefix: str = "", **overrides: Any) -> "ServiceAccount":
        """Reads ``{prefix}CLIENT_ID``, ``CLIENT_SECRET`` or ``CLIENT_SECRET_FILE``,
        ``TOKEN_URL`` (or ``HYDRA_URL`` / ``ISSUER_URL``), ``SCOPE``, ``AUDIENCE``,
        ``AUTH_METHOD``, and ``TOKENWELL_CA_FILE`` (no prefix: the CA bundle for
        https). Keyword ``overrides`` win over the environment (pass ``environ=``
        to read another mapping). Errors name the variable."""
        environ: Mapping[str, str] = overrides.pop("environ") if "environ" in overrides else os.environ
        env = dict(environ)
        var = {name: prefix + name for name in (
            "CLIENT_ID", "CLIENT_SECRET", "CLIENT_SECRET_FILE", "TOKEN_URL", "HYDRA_URL", "ISSUER_URL",
            "SCOPE", "AUDIENCE", "AUTH_METHOD",
        )}
        # What the caller passes needs no variable: stand in for it so the engine's
        # reader does not report it missing, then let the override win.
        if "client_id" in overrides:
            env[var["CLIENT_ID"]] = "overridden"
        if "token_url" in overrides:
            env[var["TOKEN_URL"]] = "https://overridden.invalid/"
        if "client_secret" in overrides or "client_secret_file" in overrides:
            env.pop(var["CLIENT_SECRET_FILE"], None)
            env[var["CLIENT_SECRET"]] = "overridden"
        for name in ("SCOPE", "AUDIENCE", "AUTH_METHOD"):
            if name.lower() in overrides:
                env.pop(var[name], None)

        options, secret_file, secret_file_var = _native.options_from_env(prefix, env)
        url_var = var["TOKEN_URL"]
        if not env.get(url_var, "").strip():
            url_var = var["HYDRA_URL"] if env.get(var["HYDRA_URL"], "").strip() else var["ISSUER_URL"]
        field_names = {
            "token_url": url_var,
            "client_id": var["CLIENT_ID"],
            "client_secret": secret_file_var or var["CLIENT_SECRET"],
            "client_secret_file": secret_file_var or var["CLIENT_SECRET_FILE"],
            "scope": var["SCOPE"],
            "audience": var["AUDIENCE"],
            "auth_method": var["AUTH_METHOD"],
        }
        kwargs: Dict[str, Any] = {
            "token_url": options["token_url"],
            "client_id": options["client_id"],
        }
        if "client_secret" in options:
            kwargs["client_secret"] = options["client_secret"]
        if secret_file is not None:
            kwargs["client_secret_file"] = secret_file
        for key in ("auth_method", "scope", "audience"):
            if key in options:
                kwargs[key] = options[key]
        ca_file = env.get("TOKENWELL_CA_FILE", "").strip()
        if ca_file:
            kwargs["ca_file"] = ca_file
            field_names["ca_file"] = "TOKENWELL_CA_FILE"
        for key in overrides:
            field_names.pop(key, None)
        if "client_secret" in overrides or "client_secret_file" in overrides:
            kwargs.pop("client_secret", None)
            kwargs.pop("client_secret_file", None)
            field_names.pop("client_secret", None)
            field_names.pop("client_secret_file", None)
        kwargs.update(overrides)
        return cls(_field_names=field_names, **kwargs)

    # ---- the hot path -------------------------------------------------------------

    def get_token(self) -> str:
        """A valid access token, fetching one if needed. Thread-safe; one request
        at most is in flight however many threads ask. Raises ``TokenError``."""
        if self._clock() < self._deadline:
            return self._token  # type: ignore[return-value]
        return self._acquire().access_token

    def token(self) -> AccessToken:
        """Like ``get_token`` but returns the :class:`AccessToken` with its expiry and scope."""
        if self._clock() < self._deadline:
            return self._token_obj  # type: ignore[return-value]
        return self._acquire()

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

    # ---- commands -----------------------------------------------------------------

    def invalidate(self, token: Union[str, AccessToken]) -> str:
        """An API answered 401 for ``token``: drop it if it is still the current one
        (rate-limited by the engine). Returns ``"invalidated"``, ``"not_current"``
        or ``"rate_limited"``."""
        value = token.access_token if isinstance(token, AccessToken) else token
        with self._cond:
            outcome = self._cache.invalidate(value, self._now_ms())
            if outcome == "invalidated":
                self._deadline = 0.0
            self._collect_locked()
        if outcome == "invalidated" and self._cache_file is not None:
            # The engine dropped the token: so does the disk, or the next run would load it again.
            self._cache_file.remove_if_unchanged()
        self._dispatch_events()
        return outcome

    def replace_secrets(self, secrets: StrOrList) -> bool:
        """Replaces the client secrets (current first) without a restart."""
        with self._cond:
            try:
                changed = self._cache.replace_secrets(secrets, self._now_ms())
            finally:
                self._collect_locked()
            self._deadline = 0.0
        self._dispatch_events()
        return changed

    def requests_auth(self) -> Any:
        """An ``auth=`` for ``requests``: adds the bearer token, retries once on 401."""
        from ._auth import RequestsAuth

        return RequestsAuth(self)

    def httpx_auth(self) -> Any:
        """An ``auth=`` for ``httpx.Client`` and ``httpx.AsyncClient``: adds the
        bearer token, retries once on 401."""
        from ._auth import httpx_auth

        return httpx_auth(self)

    # ---- introspection ----------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The client id."""
        return self._cache.client_id

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self._cache.token_url

    @property
    def cache_path(self) -> Optional[str]:
        """The on-disk cache file, if any."""
        return self._cache_file.path if self._cache_file else None

    @property
    def state(self) -> str:
        """The engine's state: ``idle``, ``fetching``, ``backing_off`` or ``held``."""
        return self._cache.state

    @property
    def engine(self) -> "_native.TokenCache":
        """The engine itself (sans-IO), for inspection."""
        return self._cache

    def __repr__(self) -> str:
        return (
            f"ServiceAccount(client_id={self.client_id!r}, token_url={self.token_url!r}, "
            f"cache_path={self.cache_path!r}, state={self.state!r})"
        )

    # ---- the slow path: threads -------------------------------------------------

    def _acquire(self) -> AccessToken:
        try:
            while True:
                held = self._cache_file is not None and self._cache_file.lock(self._timeout_s + 2.0) == HELD
                try:
                    action, value = self._step(None)
                    if action == _SEND:
                        try:
                            outcome = self._send(value)
                        except BaseException:
                            self._finish(value, ("error", "other", "interrupted"))
                            raise
                        self._save(self._finish(value, outcome))
                        continue
                finally:
                    if held:
                        self._cache_file.unlock()  # type: ignore[union-attr]
                if action == _READY:
                    return cast(AccessToken, value)
                if action == _WAIT:
                    generation, timeout = value
                    with self._cond:
                        if self._generation == generation:
                            self._cond.wait(timeout)
                    continue
                raise value
        finally:
            self._dispatch_events()

    # ---- the slow path: asyncio -------------------------------------------------

    async def _acquire_async(self) -> AccessToken:
        loop = asyncio.get_running_loop()
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
                    if action == _SEND:
                        try:
                            outcome = await self._send_async(value)
                        except BaseException:
                            self._finish(value, ("error", "other", "cancelled"))
                            raise
                        self._save(self._finish(value, outcome))
                        continue
                finally:
                    if held:
                        self._cache_file.unlock()  # type: ignore[union-attr]
                    if gate is not None:
                        gate.release()
                if action == _READY:
                    return cast(AccessToken, value)
                if action == _WAIT:
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

    # ---- one decision, under the lock ---------------------------------------------

    def _step(self, loop: Optional[asyncio.AbstractEventLoop]) -> Tuple[str, Any]:
        """Asks the engine what to do now and does the non-blocking part of it."""
        with self._cond:
            self._reload_secret_file_locked()
            self._import_cache_file_locked()
            now = self._now_ms()
            poll = self._cache.poll(now)
            self._collect_locked()
            result = poll.result
            if result == "ready":
                assert poll.token is not None
                return _READY, self._publish_locked(poll.token)
            if result == "ready_and_send":
                assert poll.token is not None and poll.request is not None
                token = self._publish_locked(poll.token)
                self._start_background(poll.request, loop)
                return _READY, token
            if result == "send":
                return _SEND, poll.request
            if result == "wait":
                wake = self._cache.next_wakeup()
                timeout = min(max((wake - now) / 1000.0, 0.001), 60.0) if wake is not None else 1.0
                if loop is None:
                    return _WAIT, (self._generation, timeout)
                future = self._loop_waiters.get(loop)
                if future is None or future.done():
                    future = self._loop_waiters[loop] = loop.create_future()
                return _WAIT, (future, timeout)
            self._deadline = 0.0
            return _FAIL, poll.error

    def _publish_locked(self, token: "_native.Token") -> AccessToken:
        key = (token.access_token, token.expires_at)
        current = self._token_obj
        if current is None or key != self._published:
            current = AccessToken._from_native(token)
            self._published = key
            self._token_obj = current
            self._token = current.access_token
        wake = self._cache.next_wakeup()
        self._deadline = wake / 1000.0 if wake is not None else 0.0
        return current

    def _finish(self, request: "_native.TokenRequest", outcome: Tuple[Any, ...]) -> Optional[str]:
        """Reports a fetch's outcome to the engine and wakes every waiter.
        Returns the snapshot to persist, if a token was acquired and a cache file is set."""
        snapshot = None
        waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]]
        with self._cond:
            now = self._now_ms()
            if outcome[0] == "response":
                _, status, headers, body = outcome
                try:
                    token = self._cache.handle_response(request.fetch_id, status, headers, body, now)
                except TokenError:
                    token = None
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
            # The engine's deadline may have moved earlier (a retry time): never serve past it.
            wake = self._cache.next_wakeup()
            self._deadline = min(self._deadline, wake / 1000.0) if wake is not None else 0.0
            self._collect_locked()
            self._generation += 1
            self._cond.notify_all()
            waiters = list(self._loop_waiters.items())
            self._loop_waiters.clear()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: nobody is waiting on it
                pass
        return snapshot

    # ---- sending ----------------------------------------------------------------------

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

    def _send(self, request: "_native.TokenRequest") -> Tuple[Any, ...]:
        outgoing = self._transport_request(request)
        try:
            if self._transport is not None:
                answer = self._transport(outgoing)
            else:
                answer = _run_coroutine(self._async_transport, outgoing)  # type: ignore[arg-type]
        except Exception as error:  # every failure becomes the engine's transport error
            return ("error",) + classify_failure(error)
        return _as_outcome(answer)

    async def _send_async(self, request: "_native.TokenRequest") -> Tuple[Any, ...]:
        outgoing = self._transport_request(request)
        try:
            if self._async_transport is not None:
                answer = await self._async_transport(outgoing)
            else:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(None, self._transport, outgoing)  # type: ignore[arg-type]
        except Exception as error:
            return ("error",) + classify_failure(error)
        return _as_outcome(answer)

    def _start_background(self, request: "_native.TokenRequest", loop: Optional[asyncio.AbstractEventLoop]) -> None:
        """Sends a refresh-ahead without making the caller wait."""
        if loop is not None:
            task = loop.create_task(self._background_async(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        thread = threading.Thread(target=self._background, args=(request,), name="tokenwell-refresh", daemon=True)
        thread.tokenwell_deadline = time.monotonic() + self._timeout_s + 1.0  # type: ignore[attr-defined]
        _BACKGROUND.add(thread)
        thread.start()

    def _background(self, request: "_native.TokenRequest") -> None:
        try:
            outcome = self._send(request)
        except BaseException:
            outcome = ("error", "other", "interrupted")
        self._save(self._finish(request, outcome))
        self._dispatch_events()

    async def _background_async(self, request: "_native.TokenRequest") -> None:
        try:
            outcome = await self._send_async(request)
        except BaseException:
            self._finish(request, ("error", "other", "cancelled"))
            self._dispatch_events()
            raise
        self._save(self._finish(request, outcome))
        self._dispatch_events()

    # ---- files --------------------------------------------------------------------

    def _read_secret_file(self) -> Tuple[List[str], Tuple[int, int, int, int]]:
        path = self._secret_file or ""
        try:
            st = os.stat(path)
            with open(path, "r", encoding="utf-8") as handle:
                contents = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise _config_error(self._secret_file_var, f"the secret file cannot be read ({type(error).__name__})") from None
        secrets = _native.parse_secret_file(contents, self._secret_file_var)
        return secrets, (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)

    def _reload_secret_file_locked(self) -> None:
        if self._secret_file is None:
            return
        try:
            st = os.stat(self._secret_file)
            signature = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
        except OSError:
            return  # mid-rotation (Kubernetes swaps a symlink): keep the secrets we have
        if signature == self._secret_file_seen:
            return
        try:
            secrets, signature = self._read_secret_file()
            self._cache.replace_secrets(secrets, self._now_ms())
        except InvalidConfigError as error:
            self._host_event("secret_file_error", field=error.field, problem=error.problem)
        self._secret_file_seen = signature

    def _import_cache_file_locked(self) -> None:
        if self._cache_file is None:
            return
        text = self._cache_file.read_if_changed()  # problems are reported as events
        if text is None:
            return
        try:
            self._cache.import_snapshot(text, self._now_ms())
        except SnapshotError as refused:
            self._host_event("cache_ignored", path=self._cache_file.path, reason=refused.reason)

    def _save(self, snapshot: Optional[str]) -> None:
        if snapshot is not None and self._cache_file is not None:
            self._cache_file.write(snapshot)  # a failure is a cache_write_failed event

    # ---- events -------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _collect_locked(self) -> None:
        events = self._cache.drain_events()
        if events:
            self._outbox.extend(events)

    def _host_event(self, kind: str, **fields: Any) -> None:
        """Queues an event of this host's own (from any thread, with or without
        ``self._cond``); it is delivered by the next ``_dispatch_events``."""
        event: Event = {"at": self._now_ms(), "actor_type": "client", "actor_id": self._cache.client_id, "type": kind}
        event.update(fields)
        self._outbox.append(event)

    def _dispatch_events(self) -> None:
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


def _as_outcome(answer: Any) -> Tuple[Any, ...]:
    normalized = normalize_response(answer)
    if normalized is None:
        return ("error", "other", f"the transport returned {type(answer).__name__}, not a response")
    return ("response",) + normalized


def _run_coroutine(fn: Callable[[TransportRequest], Awaitable[Any]], request: TransportRequest) -> Any:
    """Runs an async transport from synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_call(fn, request))
    # Called from inside a running loop: run on a helper thread with its own loop.
    result: List[Any] = []
    error: List[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(_call(fn, request)))
        except BaseException as e:
            error.append(e)

    helper = threading.Thread(target=run, name="tokenwell-transport", daemon=True)
    helper.start()
    helper.join()
    if error:
        raise error[0]
    return result[0]


async def _call(fn: Callable[[TransportRequest], Awaitable[Any]], request: TransportRequest) -> Any:
    return await fn(request)


_WARN = {
    "refresh_failed",
    "cache_ignored",
    "cache_write_failed",
    "cache_lock_timeout",
    "cache_lock_failed",
    "cache_permissions_tightened",
    "secret_file_error",
    "fetch_abandoned",
}


def _log_event(event: Event) -> None:
    kind = event.get("type", "")
    if kind == "cache_ignored" and event.get("reason") == "expired":
        level = logging.DEBUG
    else:
        level = logging.WARNING if kind in _WARN else logging.DEBUG
    if log.isEnabledFor(level):
        log.log(level, "tokenwell %s %s", kind, {k: v for k, v in event.items() if k != "type"})
