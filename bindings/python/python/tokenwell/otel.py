"""OpenTelemetry metrics and spans for a ``ServiceAccount``, from its engine events.

    from tokenwell import ServiceAccount
    from tokenwell.otel import Telemetry

    telemetry = Telemetry()  # the global meter and tracer providers
    account = ServiceAccount(..., on_event=telemetry)

Nothing here decides anything: every number comes from an engine event
(``refresh_started``, ``token_acquired``, ...) and its ``at`` time, so the
metrics and spans say exactly what the engine did, with the same instrument
and attribute names as Node's ``tokenwell/otel``. Events never hold a
secret, a token or an assertion, and only the fields named below become
attributes.

Needs ``opentelemetry-api`` (``pip install 'tokenwell[otel]'``); ``import
tokenwell`` never imports this module.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("tokenwell.otel needs opentelemetry-api: pip install 'tokenwell[otel]'") from missing

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from ._native import ENGINE_VERSION

__all__ = ["Telemetry", "INSTRUMENTS", "ATTRIBUTES", "SPAN_NAME"]

AttributeValue = Union[str, bool, int, float]
Attributes = Dict[str, AttributeValue]

INSTRUMENTATION_SCOPE = "tokenwell"

#: The span of one token request.
SPAN_NAME = "tokenwell token request"

#: Attribute names: OpenTelemetry's semantic conventions where one exists, else ``tokenwell.``.
ATTRIBUTES: Mapping[str, str] = {
    "client_id": "tokenwell.client_id",
    "auth_method": "tokenwell.auth_method",
    "reason": "tokenwell.refresh.reason",
    "outcome": "tokenwell.outcome",
    "error_type": "error.type",
    "http_status": "http.response.status_code",
    "oauth_error": "tokenwell.oauth.error",
    "fault": "tokenwell.error.fault",
    "retryable": "tokenwell.error.retryable",
    "fetch_id": "tokenwell.fetch_id",
    "secret_index": "tokenwell.secret.index",
    "lifetime": "tokenwell.token.lifetime",
    "lifetime_source": "tokenwell.token.lifetime_source",
    "from_index": "tokenwell.secret.from_index",
    "to_index": "tokenwell.secret.to_index",
    "file_source": "tokenwell.credential_file.source",
    "credential_type": "tokenwell.credential.type",
    "cache_file_problem": "tokenwell.cache_file.problem",
    "cache_file_detail": "tokenwell.cache_file.detail",
    "discovery_cause": "tokenwell.discovery.cause",
    "invalidation": "tokenwell.invalidation.result",
}
_A = ATTRIBUTES

#: Instrument names (the same in Node's ``tokenwell/otel``).
INSTRUMENTS: Mapping[str, str] = {
    "requests": "tokenwell.token.requests",
    "duration": "tokenwell.token.request.duration",
    "remaining_lifetime": "tokenwell.token.remaining_lifetime",
    "lead_time": "tokenwell.token.refresh_ahead.lead_time",
    "secret_fallbacks": "tokenwell.secret.fallbacks",
    "outage_grace": "tokenwell.outage_grace.served",
    "credential_file_rejected": "tokenwell.credential_file.rejected",
    "credentials_replaced": "tokenwell.credentials.replaced",
    "cache_file_problems": "tokenwell.cache_file.problems",
    "discovery_requests": "tokenwell.discovery.requests",
    "discovery_failures": "tokenwell.discovery.failures",
    "invalidations": "tokenwell.token.invalidations",
}

# OpenTelemetry's HTTP client duration buckets (seconds): token requests are HTTP requests.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Lead times (seconds): tokens live from minutes to hours, refreshed at about 3/4 of their life.
_LEAD_TIME_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)

#: The ``error.type`` of a fetch the engine abandoned at its deadline (the host never reported on it).
ABANDONED = "fetch_abandoned"


class _Instruments:
    """The instruments of one meter provider, shared by every ``Telemetry`` on
    it (an SDK refuses a second instrument of the same name, and its gauge
    callback would be lost): the gauge observes each live ``Telemetry``."""

    def __init__(self, meter_provider: MeterProvider) -> None:
        meter = meter_provider.get_meter(INSTRUMENTATION_SCOPE, ENGINE_VERSION)

        def counter(key: str, description: str, unit: str = "{event}") -> Any:
            return meter.create_counter(INSTRUMENTS[key], unit=unit, description=description)

        self.requests = counter("requests", "Token requests, by outcome and error type", "{request}")
        self.duration = meter.create_histogram(
            INSTRUMENTS["duration"],
            unit="s",
            description="Duration of token requests, from refresh_started to their outcome",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.lead_time = meter.create_histogram(
            INSTRUMENTS["lead_time"],
            unit="s",
            description="For refresh-ahead: how long the replaced token still had to live when its successor arrived",
            explicit_bucket_boundaries_advisory=_LEAD_TIME_BUCKETS,
        )
        self.secret_fallbacks = counter("secret_fallbacks", "invalid_client on one secret: the next one tried")
        self.outage_grace = counter("outage_grace", "Outages in which the cached token was served inside its margin")
        self.credential_file_rejected = counter("credential_file_rejected", "Secret or key files that could not be used")
        self.credentials_replaced = counter("credentials_replaced", "Secrets or keys replaced at run time")
        self.cache_file_problems = counter("cache_file_problems", "Problems with the token cache file")
        self.discovery_requests = counter("discovery_requests", "Metadata (discovery) requests sent", "{request}")
        self.discovery_failures = counter("discovery_failures", "Metadata (discovery) requests failed", "{request}")
        self.invalidations = counter("invalidations", "Tokens reported rejected by an API (invalidate)")
        self.observed: "weakref.WeakSet[Telemetry]" = weakref.WeakSet()
        meter.create_observable_gauge(
            INSTRUMENTS["remaining_lifetime"],
            callbacks=[self._observe],
            unit="s",
            description="Time until the cached token expires (0 once expired; absent when there is none)",
        )

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        out: List[Observation] = []
        for telemetry in list(self.observed):
            observation = telemetry._remaining_lifetime()
            if observation is not None:
                out.append(observation)
        return out


_SHARED: "weakref.WeakKeyDictionary[Any, _Instruments]" = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _instruments_for(meter_provider: MeterProvider) -> _Instruments:
    with _SHARED_LOCK:
        found = _SHARED.get(meter_provider)
        if found is None:
            found = _SHARED[meter_provider] = _Instruments(meter_provider)
        return found


class _Fetch:
    __slots__ = ("start", "reason", "span", "expires_before")

    def __init__(self, start: int, reason: str, span: Span, expires_before: Optional[int]) -> None:
        self.start = start
        self.reason = reason
        self.span = span
        self.expires_before = expires_before


def _ns(ms: int) -> int:
    return int(ms) * 1_000_000


class Telemetry:
    """OpenTelemetry metrics and spans for one account, fed from its events:
    pass the instance as the account's ``on_event`` (it is callable). Use one
    per account (fetch ids are per account); the instruments are shared
    through the meter provider.

    ``meter_provider`` / ``tracer_provider``: default the global ones.
    ``clock``: seconds since the epoch, for the remaining-lifetime gauge (the
    account's ``clock`` when one is injected; default ``time.time``).
    ``auth_method``: the ``tokenwell.auth_method`` attribute until discovery
    names one. ``attributes``: added to every metric point and span.
    ``on_event``: called with every event after it is recorded (an account
    given an ``on_event`` no longer logs its events: chain your handler here).
    """

    def __init__(
        self,
        meter_provider: Optional[MeterProvider] = None,
        tracer_provider: Optional[TracerProvider] = None,
        *,
        clock: Optional[Callable[[], float]] = None,
        auth_method: Optional[str] = None,
        attributes: Optional[Mapping[str, AttributeValue]] = None,
        on_event: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> None:
        provider = meter_provider if meter_provider is not None else _metrics.get_meter_provider()
        tracers = tracer_provider if tracer_provider is not None else _trace.get_tracer_provider()
        self._instruments = _instruments_for(provider)
        self._tracer = tracers.get_tracer(INSTRUMENTATION_SCOPE, ENGINE_VERSION)
        self._clock = clock if clock is not None else time.time
        self._auth_method = auth_method
        self._base: Attributes = dict(attributes or {})
        self._next = on_event
        self._client_id: Optional[str] = None
        # Events come from whichever thread drove the engine: one at a time here.
        self._lock = threading.Lock()
        self._fetches: Dict[int, _Fetch] = {}
        self._discoveries: set[int] = set()
        self._expires_at: Optional[int] = None
        self._closed = False
        self._instruments.observed.add(self)

    # ---- the handler ------------------------------------------------------------

    def __call__(self, event: Dict[str, Any]) -> None:
        """Records one engine event, then hands it to ``on_event``."""
        self.on_event(event)

    def on_event(self, event: Dict[str, Any]) -> None:
        """Records one engine event, then hands it to ``on_event``."""
        with self._lock:
            if not self._closed:
                self._record(event)
        if self._next is not None:
            self._next(event)

    def close(self) -> None:
        """Stops observing the gauge and ends the spans of requests still in flight (no status)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._instruments.observed.discard(self)
            now = _ns(int(self._clock() * 1000))
            for fetch in self._fetches.values():
                fetch.span.end(end_time=now)
            self._fetches.clear()

    # ---- translation ---------------------------------------------------------------

    def _remaining_lifetime(self) -> Optional[Observation]:
        with self._lock:
            if self._expires_at is None or self._closed:
                return None
            remaining = max(0.0, self._expires_at / 1000 - self._clock())
            return Observation(remaining, self._common())

    def _common(self, extra: Optional[Mapping[str, AttributeValue]] = None) -> Attributes:
        out = dict(self._base)
        if self._client_id is not None:
            out[_A["client_id"]] = self._client_id
        if self._auth_method is not None:
            out[_A["auth_method"]] = self._auth_method
        if extra:
            out.update(extra)
        return out

    def _record(self, event: Dict[str, Any]) -> None:
        actor = event.get("actor_id")
        if isinstance(actor, str):
            self._client_id = actor
        kind = event.get("type")
        i = self._instruments
        if kind == "refresh_started":
            self._started(event)
        elif kind == "token_acquired":
            self._acquired(event)
        elif kind == "refresh_failed":
            error = event.get("error") or {}
            if event.get("fetch_id") in self._discoveries:
                self._discoveries.discard(event["fetch_id"])
                i.discovery_failures.add(1, self._common({_A["error_type"]: str(error.get("kind") or "unknown")}))
            else:
                self._finished(event, error)
        elif kind == "fetch_abandoned":
            if event.get("fetch_id") in self._discoveries:
                self._discoveries.discard(event["fetch_id"])
            else:
                self._finished(event, {"kind": ABANDONED})
        elif kind == "snapshot_imported":
            self._expires_at = int(event["expires_at"])
        elif kind == "token_invalidated":
            self._expires_at = None
            i.invalidations.add(1, self._common({_A["invalidation"]: "invalidated"}))
        elif kind == "invalidate_rate_limited":
            i.invalidations.add(1, self._common({_A["invalidation"]: "rate_limited"}))
        elif kind == "secret_fallback":
            indices = {_A["from_index"]: int(event["from_index"]), _A["to_index"]: int(event["to_index"])}
            i.secret_fallbacks.add(1, self._common(indices))
        elif kind == "outage_grace_served":
            i.outage_grace.add(1, self._common({_A["error_type"]: str(event["error_kind"])}))
        elif kind == "secret_file_rejected":
            i.credential_file_rejected.add(1, self._common({_A["file_source"]: str(event["source"])}))
        elif kind == "secrets_replaced":
            i.credentials_replaced.add(1, self._common({_A["credential_type"]: "client_secret"}))
        elif kind == "keys_replaced":
            i.credentials_replaced.add(1, self._common({_A["credential_type"]: "private_key"}))
        elif kind == "cache_file_problem":
            extra: Attributes = {_A["cache_file_problem"]: str(event["problem"])}
            if event.get("detail"):
                extra[_A["cache_file_detail"]] = str(event["detail"])
            i.cache_file_problems.add(1, self._common(extra))
        elif kind == "discovery_started":
            self._discoveries.add(int(event["fetch_id"]))
            i.discovery_requests.add(1, self._common({_A["discovery_cause"]: str(event["cause"])}))
        elif kind == "discovery_completed":
            self._discoveries.discard(event.get("fetch_id", -1))
            if event.get("auth_method"):
                self._auth_method = str(event["auth_method"])
        # backoff_scheduled, discovery_kept_cached, clock_went_backwards, ...: not metrics (yet).

    def _started(self, event: Dict[str, Any]) -> None:
        fetch_id = int(event["fetch_id"])
        stale = self._fetches.get(fetch_id)
        if stale is not None:  # replaced without an outcome (the engine never does this today)
            stale.span.end(end_time=_ns(event["at"]))
        reason = str(event["reason"])
        attributes = self._common(
            {_A["reason"]: reason, _A["fetch_id"]: fetch_id, _A["secret_index"]: int(event["secret_index"])}
        )
        span = self._tracer.start_span(SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attributes, start_time=_ns(event["at"]))
        self._fetches[fetch_id] = _Fetch(int(event["at"]), reason, span, self._expires_at)

    def _acquired(self, event: Dict[str, Any]) -> None:
        fetch = self._fetches.pop(int(event["fetch_id"]), None)
        previous = fetch.expires_before if fetch is not None else self._expires_at
        at, expires_at = int(event["at"]), int(event["expires_at"])
        self._expires_at = expires_at
        if fetch is None:
            return
        attributes = self._common({_A["reason"]: fetch.reason, _A["outcome"]: "success"})
        self._instruments.requests.add(1, attributes)
        self._instruments.duration.record((at - fetch.start) / 1000, attributes)
        if fetch.reason == "ahead" and previous is not None:
            self._instruments.lead_time.record((previous - at) / 1000, self._common())
        fetch.span.set_attributes(
            {_A["lifetime"]: (expires_at - at) / 1000, _A["lifetime_source"]: str(event.get("lifetime_source"))}
        )
        if self._auth_method is not None:
            fetch.span.set_attribute(_A["auth_method"], self._auth_method)
        fetch.span.end(end_time=_ns(at))

    def _finished(self, event: Dict[str, Any], error: Mapping[str, Any]) -> None:
        """A token request that ended without a token: ``error`` is the engine's error data."""
        fetch = self._fetches.pop(int(event["fetch_id"]), None)
        if fetch is None:
            return
        kind = str(error.get("kind") or "unknown")
        status = error.get("status")
        attributes = self._common({_A["reason"]: fetch.reason, _A["outcome"]: "failure", _A["error_type"]: kind})
        if isinstance(status, int):
            attributes[_A["http_status"]] = status
        self._instruments.requests.add(1, attributes)
        self._instruments.duration.record((int(event["at"]) - fetch.start) / 1000, attributes)
        span_attributes: Attributes = {_A["error_type"]: kind}
        if isinstance(status, int):
            span_attributes[_A["http_status"]] = status
        if isinstance(error.get("oauth_error"), str):
            span_attributes[_A["oauth_error"]] = error["oauth_error"]
        if isinstance(error.get("fault"), str):
            span_attributes[_A["fault"]] = error["fault"]
        if isinstance(error.get("retryable"), bool):
            span_attributes[_A["retryable"]] = error["retryable"]
        fetch.span.set_attributes(span_attributes)
        # The status description is the error kind only: the error's description is server text.
        fetch.span.set_status(Status(StatusCode.ERROR, kind))
        fetch.span.end(end_time=_ns(int(event["at"])))
