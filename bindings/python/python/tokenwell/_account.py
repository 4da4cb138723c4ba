"""``ServiceAccount``: construction (arguments, or ``from_env``), the public
API, and the synchronous path (threads; background refreshes on daemon
threads). The engine-driving core is ``_host.EngineHost``; the asyncio half is
``_async.AsyncHost``; the configuration is ``_config``.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import os
import random
import threading
import time
import urllib.parse
import weakref
from typing import Any, Awaitable, Callable, List, Mapping, Optional, Sequence, Tuple, Union, cast

from . import _config, _native
from ._async import AsyncHost, AsyncTransport, Transport
from ._cache_file import HELD
from ._host import READY, SEND, WAIT, Event, as_outcome
from ._httpx_transport import HttpxAsyncTransport
from ._token import AccessToken
from ._transport import TransportRequest, classify_failure, have_httpx
from ._urllib import urllib_transport

__all__ = ["ServiceAccount"]

log = logging.getLogger("tokenwell")

StrOrList = Union[str, Sequence[str]]
PathLike = Union[str, "os.PathLike[str]"]

# Background refreshes still running at interpreter exit are given until their
# own timeout to finish, so a cron that refreshed ahead leaves the new token on disk.
_BACKGROUND: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()


def _join_background_refreshes() -> None:
    for thread in list(_BACKGROUND):
        limit = getattr(thread, "tokenwell_deadline", 0.0) - time.monotonic()
        if limit > 0:
            thread.join(limit)


atexit.register(_join_background_refreshes)

# What only the host uses (the rest configures the client: _config.CONFIG_ARGUMENTS).
_HOST_ARGUMENTS = ("transport", "cache_path", "on_event", "clock", "entropy", "refresh_when_idle")


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


class ServiceAccount(AsyncHost):
    """A self-refreshing OAuth 2.0 Client Credentials token for one client.

    Thread-safe and asyncio-safe: however many threads and tasks ask at once,
    at most one token request is in flight. While no caller is active, a daemon
    timer polls the engine at its ``next_wakeup()``, so the token is refreshed
    ahead all the same. See the package README for every argument; durations
    are in seconds. ``close()`` (or ``aclose()``) stops the timer and the
    transport; the account then raises ``ClosedError``.
    """

    def __init__(
        self,
        *,
        client_id: str,
        token_url: Optional[str] = None,
        issuer: Optional[str] = None,
        client_secret: Optional[StrOrList] = None,
        private_key: Optional[StrOrList] = None,
        private_key_file: Optional[PathLike] = None,
        assertion_signing_alg: Optional[str] = None,
        assertion_audience: Optional[str] = None,
        auth_method: Optional[str] = None,
        scope: Optional[StrOrList] = None,
        audience: Optional[StrOrList] = None,
        refresh_margin: Optional[float] = None,
        timeout: Optional[float] = None,
        transport: Optional[Callable[..., Any]] = None,
        cache_path: Optional[PathLike] = None,
        client_secret_file: Optional[PathLike] = None,
        on_event: Optional[Callable[[Event], Any]] = None,
        extra_params: Optional[Union[Mapping[str, Union[str, Sequence[str]]], Sequence[Tuple[str, str]]]] = None,
        max_response_bytes: Optional[int] = None,
        allow_insecure_http: Optional[bool] = None,
        ca_file: Optional[PathLike] = None,
        engine_options: Optional[Mapping[str, Any]] = None,
        clock: Optional[Callable[[], float]] = None,
        entropy: Optional[int] = None,
        refresh_when_idle: bool = True,
    ) -> None:
        arguments = dict(locals())
        del arguments["self"]
        host = {name: arguments.pop(name) for name in _HOST_ARGUMENTS}
        clock_fn = clock or time.time
        settings = _config.from_arguments(arguments, int(clock_fn() * 1000))
        self._start(settings, host)

    @classmethod
    def from_env(
        cls, prefix: str = "", *, environ: Optional[Mapping[str, str]] = None, **options: Any
    ) -> "ServiceAccount":
        """Reads ``{prefix}CLIENT_ID``, ``CLIENT_SECRET`` or ``CLIENT_SECRET_FILE``,
        ``CLIENT_PRIVATE_KEY_FILE``, ``TOKEN_URL`` (or ``HYDRA_URL``), ``ISSUER_URL``
        (discovery), ``SCOPE``, ``AUDIENCE``, ``AUTH_METHOD``, and the unprefixed ``TOKENWELL_CA_FILE`` and
        ``TOKENWELL_ALLOW_INSECURE_HTTP`` from ``environ`` (default ``os.environ``),
        through the engine's host contract. ``options`` are the constructor's
        keyword arguments: each one given wins over the environment, field by
        field. Every missing variable is named at once; errors name the variable
        (``SCOPE[1]``), or the argument for one given here."""
        unknown = sorted(set(options) - set(_config.CONFIG_ARGUMENTS) - set(_HOST_ARGUMENTS))
        if unknown:
            raise TypeError(f"from_env() got an unexpected keyword argument {unknown[0]!r}")
        host = {name: options.pop(name, None) for name in _HOST_ARGUMENTS}
        host["refresh_when_idle"] = host["refresh_when_idle"] is not False
        clock_fn = host["clock"] or time.time
        environment = os.environ if environ is None else environ
        settings = _config.from_env(prefix, environment, options, int(clock_fn() * 1000))
        url = settings.config.token_url or settings.config.issuer or ""
        if settings.insecure_http_from_env and urllib.parse.urlsplit(url).scheme == "http":
            log.warning(
                "tokenwell: %s allows the plain-http token URL %s: the client secret crosses the network unencrypted",
                _native.ALLOW_INSECURE_HTTP_VAR,
                url,
            )
        account = cls.__new__(cls)
        account._start(settings, host)
        return account

    def _start(self, settings: "_config.Settings", host: Mapping[str, Any]) -> None:
        transport = host["transport"]
        self._owns_transport = transport is None  # only what it made is closed by close()
        if transport is None:
            self._transport: Optional[Transport] = urllib_transport
            self._async_transport: Optional[AsyncTransport] = HttpxAsyncTransport() if have_httpx() else None
        elif _is_async_callable(transport):
            self._transport, self._async_transport = None, transport
        elif callable(transport):
            self._transport, self._async_transport = transport, None
        else:
            raise _native.config_error("transport", "must be a callable")
        entropy = host["entropy"]
        cache_path = host["cache_path"]
        super().__init__(
            settings,
            cache_path=os.fspath(cache_path) if cache_path is not None else None,
            on_event=host["on_event"],
            clock=host["clock"] or time.time,
            entropy=random.SystemRandom().getrandbits(64) if entropy is None else entropy,
            refresh_when_idle=bool(host["refresh_when_idle"]),
        )
        self._init_async()

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

    # ---- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Stops the idle timer and closes the transport; the account then
        raises ``ClosedError``. A refresh in flight is let finish. Idempotent."""
        self._mark_closed()
        closer = getattr(self._async_transport, "close", None) if self._owns_transport else None
        if closer is not None:
            closer()

    def __enter__(self) -> "ServiceAccount":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "ServiceAccount":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ---- introspection ----------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The client id."""
        return self._cache.client_id

    @property
    def token_url(self) -> str:
        """The token endpoint: ``token_url``, or the one discovered from
        ``issuer`` (``""`` until the metadata document was read)."""
        return self._cache.token_endpoint or self._cache.token_url

    @property
    def issuer(self) -> Optional[str]:
        """The issuer (``issuer`` or ``ISSUER_URL``), if one was given."""
        return self._cache.issuer

    @property
    def auth_method(self) -> str:
        """The auth method token requests use (with discovery, the one chosen
        with the metadata document once read)."""
        return self._cache.auth_method

    @property
    def cache_path(self) -> Optional[str]:
        """The on-disk cache file, if any."""
        return self._cache_file.path if self._cache_file else None

    @property
    def client_secret_file(self) -> Optional[str]:
        """The secret file the secrets come from, if any."""
        return self._secret_file.path if self._secret_file else None

    @property
    def private_key_file(self) -> Optional[str]:
        """The key file the private keys come from (``private_key_file`` or
        ``CLIENT_PRIVATE_KEY_FILE``), if any."""
        return self._key_file.path if self._key_file else None

    @property
    def ca_file(self) -> Optional[str]:
        """The CA file given (``ca_file`` or ``TOKENWELL_CA_FILE`` for ``from_env``), if any."""
        return self._ca_file

    @property
    def state(self) -> str:
        """The engine's state: ``idle``, ``fetching``, ``backing_off`` or ``held``."""
        return self._cache.state

    @property
    def closed(self) -> bool:
        """Whether ``close()`` or ``aclose()`` was called."""
        return self._closed

    @property
    def engine(self) -> "_native.TokenCache":
        """The engine itself (sans-IO), for inspection."""
        return self._cache

    def __repr__(self) -> str:
        return (
            f"ServiceAccount(client_id={self.client_id!r}, token_url={self.token_url!r}, "
            + (f"issuer={self.issuer!r}, " if self.issuer is not None else "")
            + f"cache_path={self.cache_path!r}, state={self.state!r})"
        )

    # ---- the slow path: threads -------------------------------------------------

    def _acquire(self) -> AccessToken:
        try:
            while True:
                held = self._cache_file is not None and self._cache_file.lock(self._timeout_s + 2.0) == HELD
                try:
                    action, value = self._step(None)
                    if action == SEND:
                        with self._sending(value, "interrupted") as outcome:
                            outcome.append(self._send(value))
                        continue
                finally:
                    self._unlock_cache_file(held)
                if action == READY:
                    return cast(AccessToken, value)
                if action == WAIT:
                    generation, timeout = value
                    with self._cond:
                        if self._generation == generation:
                            self._cond.wait(timeout)
                    continue
                raise value
        finally:
            self._dispatch_events()

    def _send(self, request: "_native.TokenRequest") -> Tuple[Any, ...]:
        outgoing = self._transport_request(request)
        try:
            if self._transport is not None:
                answer = self._transport(outgoing)
            else:
                answer = _run_coroutine(self._async_transport, outgoing)  # type: ignore[arg-type]
        except Exception as error:  # every failure becomes the engine's transport error
            return ("error",) + classify_failure(error, outgoing.url)
        return as_outcome(answer)

    def _start_background(self, request: "_native.TokenRequest", loop: Optional[asyncio.AbstractEventLoop]) -> None:
        """Sends a refresh without making anyone wait: a task on ``loop``, else a daemon thread."""
        if loop is not None:
            self._start_background_task(request, loop)
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

