"""tokenwell.otel: OpenTelemetry metrics and spans from the engine's events,
read back through the SDK's InMemoryMetricReader and InMemorySpanExporter
after a scripted timeline on a virtual clock against the loopback token
server: acquire, refresh ahead, an outage (503) with the cached token still
served, recovery. And the package without opentelemetry: ``import tokenwell``
never imports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tokenwell import ServiceAccount
from tokenwell.otel import INSTRUMENTS, SPAN_NAME, Telemetry

from conftest import EventLog, FakeClock, TokenServer, token_body

SECRET = "otel-s3cret+&%: é"
CLIENT_ID = "billing-worker"
LIFETIME_S = 300


def token_no(n: int) -> str:
    """Long and recognisable, so a leak anywhere is found."""
    return f"eyJ-otel-access-token-number-{n}"


class Sdk:
    """A meter provider and a tracer provider whose output the test reads."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def metrics(self) -> Dict[str, Metric]:
        data = self.reader.get_metrics_data()
        out: Dict[str, Metric] = {}
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    out[metric.name] = metric
        return out

    def spans(self) -> List[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def shutdown(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    s = Sdk()
    yield s
    s.shutdown()


def points(metrics: Dict[str, Metric], name: str) -> List[Any]:
    metric = metrics.get(name)
    return [] if metric is None else list(metric.data.data_points)


def point(metrics: Dict[str, Metric], name: str, **attrs: Any) -> Any:
    """The one data point of ``name`` whose attributes include ``attrs`` (dots spelled ``__``)."""
    wanted = {k.replace("__", "."): v for k, v in attrs.items()}
    found = [p for p in points(metrics, name) if all(p.attributes.get(k) == v for k, v in wanted.items())]
    assert len(found) == 1, f"one point of {name} with {wanted}: {[dict(p.attributes) for p in points(metrics, name)]}"
    return found[0]


def every_attribute_value(metrics: Dict[str, Metric], spans: List[ReadableSpan]) -> List[str]:
    values: List[str] = []
    for metric in metrics.values():
        for p in metric.data.data_points:
            values += [str(x) for kv in (p.attributes or {}).items() for x in kv]
    for span in spans:
        values += [span.name, span.status.description or ""]
        values += [str(x) for kv in (span.attributes or {}).items() for x in kv]
        for e in span.events:
            values += [e.name] + [str(x) for kv in (e.attributes or {}).items() for x in kv]
    return values


def test_a_scripted_timeline_acquire_ahead_outage_recovery(
    token_server: Any, clock: FakeClock, events: EventLog, sdk: Sdk
) -> None:
    def script(n: int, headers: List[Tuple[str, str]], body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        if n == 2:
            clock.advance(0.25)  # the refresh ahead takes 250 ms of virtual time
        if n in (3, 4):  # the body quotes the secret, as a misbehaving proxy might
            return 503, [("Content-Type", "text/plain")], f"down; you sent {SECRET}".encode()
        return 200, [("Content-Type", "application/json")], token_body(token_no(n), LIFETIME_S)

    server: TokenServer = token_server(script=script)
    telemetry = Telemetry(
        sdk.meter_provider, sdk.tracer_provider, clock=clock, auth_method="client_secret_basic", on_event=events
    )
    account = ServiceAccount(
        token_url=server.url,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        clock=clock,
        on_event=telemetry,
        refresh_when_idle=False,
    )

    def outcome(fetch_id: int) -> Dict[str, Any]:
        for kind in ("token_acquired", "refresh_failed"):
            for e in events.events:
                if e["type"] == kind and e.get("fetch_id") == fetch_id:
                    return e
        raise AssertionError(f"no outcome for fetch {fetch_id}: {events.types()}")

    try:
        t0 = int(clock() * 1000)
        assert account.get_token() == token_no(1)
        first = outcome(1)
        assert first["at"] == t0
        metrics = sdk.metrics()
        assert point(metrics, INSTRUMENTS["remaining_lifetime"]).value == LIFETIME_S
        clock.advance(60)
        metrics = sdk.metrics()
        assert point(metrics, INSTRUMENTS["remaining_lifetime"]).value == LIFETIME_S - 60, "the gauge reads the clock"

        # Refresh ahead: the old token is served; the new one arrives 250 ms (virtual) later.
        clock.now = first["refresh_at"] / 1000
        assert account.get_token() == token_no(1), "served the valid token meanwhile"
        events.wait_for("token_acquired", 2)
        second = outcome(2)
        assert second["at"] == first["refresh_at"] + 250
        assert account.get_token() == token_no(2)

        # The outage: the refresh ahead of token 2 fails (503); the token is served all the same.
        clock.now = second["refresh_at"] / 1000
        assert account.get_token() == token_no(2)
        events.wait_for("backoff_scheduled", 1)
        assert outcome(3)["error"]["kind"] == "server_error"
        backoff = [e for e in events.events if e["type"] == "backoff_scheduled"][0]
        clock.now = backoff["retry_at"] / 1000
        assert account.get_token() == token_no(2), "still served during the outage"
        events.wait_for("backoff_scheduled", 2)
        assert outcome(4)["type"] == "refresh_failed"

        # Inside the margin: outage grace, then the next request gets token 5.
        clock.now = (second["expires_at"] - 20_000) / 1000
        assert account.get_token() == token_no(2), "outage grace: served inside the margin"
        events.wait_for("token_acquired", 3)
        assert "outage_grace_served" in events.types(), "the engine announced outage grace"
        recovered = outcome(5)
        assert account.get_token() == token_no(5)
        assert server.count == 5

        reasons = [e["reason"] for e in events.events if e["type"] == "refresh_started"]
        assert reasons == ["initial", "ahead", "ahead", "ahead", "expired"], "the engine's reasons"

        # ---- what the SDK received ----
        metrics = sdk.metrics()
        base = {"tokenwell.client_id": CLIENT_ID, "tokenwell.auth_method": "client_secret_basic"}
        requests = INSTRUMENTS["requests"]
        assert metrics[requests].unit == "{request}"

        def count(reason: str, outcome_: str) -> int:
            found = [
                p
                for p in points(metrics, requests)
                if p.attributes.get("tokenwell.refresh.reason") == reason
                and p.attributes.get("tokenwell.outcome") == outcome_
                and all(p.attributes.get(k) == v for k, v in base.items())
            ]
            assert len(found) == 1, (reason, outcome_)
            return int(found[0].value)

        assert count("initial", "success") == 1
        assert count("ahead", "success") == 1
        assert count("ahead", "failure") == 2
        assert count("expired", "success") == 1
        assert len(points(metrics, requests)) == 4, "no other series"
        failure = point(metrics, requests, tokenwell__outcome="failure")
        assert failure.attributes["error.type"] == "server_error"
        assert failure.attributes["http.response.status_code"] == 503
        for p in points(metrics, requests):
            if p.attributes["tokenwell.outcome"] == "success":
                assert "error.type" not in p.attributes and "http.response.status_code" not in p.attributes

        duration = INSTRUMENTS["duration"]
        assert metrics[duration].unit == "s"
        ahead = point(metrics, duration, tokenwell__refresh__reason="ahead", tokenwell__outcome="success")
        assert ahead.count == 1 and ahead.sum == pytest.approx(0.25)
        failed = point(metrics, duration, tokenwell__refresh__reason="ahead", tokenwell__outcome="failure")
        assert failed.count == 2 and failed.sum == 0
        assert sum(p.count for p in points(metrics, duration)) == 5, "one duration per request"

        lead = point(metrics, INSTRUMENTS["lead_time"], **{k.replace(".", "__"): v for k, v in base.items()})
        assert metrics[INSTRUMENTS["lead_time"]].unit == "s"
        assert lead.count == 1
        assert lead.sum == pytest.approx((first["expires_at"] - second["at"]) / 1000)
        assert 0 < lead.sum < LIFETIME_S

        assert point(metrics, INSTRUMENTS["outage_grace"], error__type="server_error").value == 1
        gauge = point(metrics, INSTRUMENTS["remaining_lifetime"], tokenwell__client_id=CLIENT_ID)
        assert gauge.value == pytest.approx(recovered["expires_at"] / 1000 - clock()), "the gauge follows the new token"
        for absent in ("secret_fallbacks", "cache_file_problems", "discovery_requests"):
            assert points(metrics, INSTRUMENTS[absent]) == [], f"{absent}: nothing happened"

        spans = sdk.spans()
        assert len(spans) == 5 and all(s.name == SPAN_NAME for s in spans)
        by_fetch = {s.attributes["tokenwell.fetch_id"]: s for s in spans if s.attributes}
        for fetch_id in (1, 2, 5):
            span = by_fetch[fetch_id]
            assert span.status.status_code == StatusCode.UNSET, f"fetch {fetch_id} succeeded"
            assert span.attributes is not None and span.attributes["tokenwell.token.lifetime"] == LIFETIME_S
        for fetch_id in (3, 4):
            span = by_fetch[fetch_id]
            assert span.status.status_code == StatusCode.ERROR, f"fetch {fetch_id} failed"
            assert span.status.description == "server_error"
            assert span.attributes is not None
            assert span.attributes["error.type"] == "server_error"
            assert span.attributes["http.response.status_code"] == 503
            assert span.attributes["tokenwell.error.retryable"] is True
        ahead_span = by_fetch[2]
        assert ahead_span.start_time == first["refresh_at"] * 1_000_000
        assert ahead_span.end_time == (first["refresh_at"] + 250) * 1_000_000, "span times are the events' times"

        # No secret and no token in any attribute of any point or span.
        values = every_attribute_value(metrics, spans)
        assert len(values) > 50 and CLIENT_ID in values, "the scan sees the attribute values"
        forbidden = [SECRET, json.dumps(SECRET)[1:-1]] + [token_no(n) for n in (1, 2, 5)]
        for value in values:
            for bad in forbidden:
                assert bad not in value, f"an attribute holds a secret or token: {value}"
    finally:
        telemetry.close()
        account.close()


def test_counters_from_their_events(clock: FakeClock, sdk: Sdk) -> None:
    telemetry = Telemetry(sdk.meter_provider, sdk.tracer_provider, clock=clock)
    at = int(clock() * 1000)
    script: List[Dict[str, Any]] = [
        {"type": "refresh_started", "fetch_id": 1, "reason": "initial", "secret_index": 0},
        {
            "type": "refresh_failed",
            "fetch_id": 1,
            "error": {"kind": "invalid_client", "status": 401, "oauth_error": "invalid_client", "fault": "credentials", "retryable": False},
        },
        {"type": "secret_fallback", "fetch_id": 1, "from_index": 0, "to_index": 1},
        {"type": "secret_file_rejected", "source": "CLIENT_SECRET_FILE", "problem": "no secret in /run/secrets/x"},
        {"type": "secrets_replaced", "count": 2, "hold_lifted": False},
        {"type": "keys_replaced", "count": 1, "hold_lifted": False},
        {"type": "cache_file_problem", "path": "/tmp/c.json", "problem": "ignored", "detail": "symlink"},
        {"type": "cache_file_problem", "path": "/tmp/c.json", "problem": "lock_timeout", "detail": ""},
        {"type": "snapshot_imported", "expires_at": at + 90_000},
        {"type": "token_invalidated", "expires_at": at + 90_000},
        {"type": "invalidate_rate_limited", "until": at + 5000},
        {"type": "discovery_started", "fetch_id": 2, "url": "https://auth.example/.well-known/openid-configuration", "cause": "initial"},
        {"type": "refresh_failed", "fetch_id": 2, "error": {"kind": "discovery_failed", "status": 500}},
        {"type": "discovery_started", "fetch_id": 3, "url": "https://auth.example/.well-known/openid-configuration", "cause": "initial"},
        {"type": "discovery_completed", "fetch_id": 3, "token_endpoint": "https://auth.example/token", "auth_method": "private_key_jwt"},
        {"type": "refresh_started", "fetch_id": 4, "reason": "initial", "secret_index": 0},
        {"type": "fetch_abandoned", "fetch_id": 4},
    ]
    for event in script:
        telemetry({"at": at, "actor_type": "client", "actor_id": CLIENT_ID, **event})
    m = sdk.metrics()
    assert point(m, INSTRUMENTS["secret_fallbacks"], tokenwell__secret__from_index=0, tokenwell__secret__to_index=1).value == 1
    assert point(m, INSTRUMENTS["credential_file_rejected"], tokenwell__credential_file__source="CLIENT_SECRET_FILE").value == 1
    assert point(m, INSTRUMENTS["credentials_replaced"], tokenwell__credential__type="client_secret").value == 1
    assert point(m, INSTRUMENTS["credentials_replaced"], tokenwell__credential__type="private_key").value == 1
    problems = INSTRUMENTS["cache_file_problems"]
    assert point(m, problems, tokenwell__cache_file__problem="ignored", tokenwell__cache_file__detail="symlink").value == 1
    lock_timeout = point(m, problems, tokenwell__cache_file__problem="lock_timeout")
    assert lock_timeout.value == 1 and "tokenwell.cache_file.detail" not in lock_timeout.attributes
    assert point(m, INSTRUMENTS["invalidations"], tokenwell__invalidation__result="invalidated").value == 1
    assert point(m, INSTRUMENTS["invalidations"], tokenwell__invalidation__result="rate_limited").value == 1
    assert points(m, INSTRUMENTS["remaining_lifetime"]) == [], "no gauge after invalidation"
    assert point(m, INSTRUMENTS["discovery_requests"], tokenwell__discovery__cause="initial").value == 2
    assert point(m, INSTRUMENTS["discovery_failures"], error__type="discovery_failed").value == 1
    refused = point(m, INSTRUMENTS["requests"], error__type="invalid_client")
    assert refused.value == 1, "the discovery failure is not a token request"
    assert refused.attributes["http.response.status_code"] == 401
    abandoned = point(m, INSTRUMENTS["requests"], error__type="fetch_abandoned")
    assert abandoned.attributes["tokenwell.auth_method"] == "private_key_jwt", "the method discovery chose"
    spans = sdk.spans()
    summary = [
        (s.attributes["tokenwell.fetch_id"], s.status.status_code, s.attributes["error.type"]) for s in spans if s.attributes
    ]
    assert summary == [(1, StatusCode.ERROR, "invalid_client"), (4, StatusCode.ERROR, "fetch_abandoned")]
    assert spans[0].attributes is not None
    assert spans[0].attributes["tokenwell.oauth.error"] == "invalid_client"
    assert spans[0].attributes["tokenwell.error.fault"] == "credentials"
    telemetry.close()


def test_on_event_chains_and_close_stops_the_gauge_and_ends_open_spans(clock: FakeClock, sdk: Sdk) -> None:
    seen: List[str] = []
    telemetry = Telemetry(
        sdk.meter_provider,
        sdk.tracer_provider,
        clock=clock,
        attributes={"service.component": "billing"},
        on_event=lambda e: seen.append(e["type"]),
    )
    actor: Dict[str, Any] = {"at": int(clock() * 1000), "actor_type": "client", "actor_id": CLIENT_ID}
    telemetry({**actor, "type": "snapshot_imported", "expires_at": actor["at"] + 10_000})
    telemetry({**actor, "type": "refresh_started", "fetch_id": 1, "reason": "initial", "secret_index": 0})
    telemetry({**actor, "type": "clock_went_backwards", "by_ms": 5})
    assert seen == ["snapshot_imported", "refresh_started", "clock_went_backwards"]
    gauge = point(sdk.metrics(), INSTRUMENTS["remaining_lifetime"])
    assert gauge.value == 10 and gauge.attributes["service.component"] == "billing"
    assert sdk.spans() == []
    clock.advance(2)
    telemetry.close()
    spans = sdk.spans()
    assert len(spans) == 1, "the open span is ended at close"
    assert spans[0].end_time is not None and spans[0].start_time is not None
    assert spans[0].end_time - spans[0].start_time == 2_000_000_000
    assert points(sdk.metrics(), INSTRUMENTS["remaining_lifetime"]) == [], "no observation after close"
    telemetry({**actor, "type": "token_invalidated", "expires_at": 0})
    assert len(seen) == 4, "events still pass through after close"


def test_two_accounts_on_one_meter_provider_each_report_their_gauge(clock: FakeClock, sdk: Sdk) -> None:
    telemetries = [Telemetry(sdk.meter_provider, sdk.tracer_provider, clock=clock) for _ in range(2)]
    at = int(clock() * 1000)
    for n, telemetry in enumerate(telemetries):
        telemetry({"at": at, "actor_type": "client", "actor_id": f"client-{n}", "type": "snapshot_imported", "expires_at": at + (n + 1) * 1000})
    values = {p.attributes["tokenwell.client_id"]: p.value for p in points(sdk.metrics(), INSTRUMENTS["remaining_lifetime"])}
    assert values == {"client-0": 1, "client-1": 2}
    for telemetry in telemetries:
        telemetry.close()


def run_python(code: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_import_tokenwell_does_not_import_opentelemetry() -> None:
    result = run_python(
        """
        import sys, tokenwell
        from tokenwell import ServiceAccount, RequestsAuth
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry") or m == "tokenwell.otel")
        assert not loaded, loaded
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_without_opentelemetry_installed_tokenwell_works_and_tokenwell_otel_says_what_to_install() -> None:
    result = run_python(
        """
        import importlib.abc, json, sys

        class NoOpenTelemetry(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoOpenTelemetry())
        from tokenwell import ServiceAccount, TransportResponse

        def transport(request):
            body = json.dumps({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300}).encode()
            return TransportResponse(200, [("Content-Type", "application/json")], body)

        account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret="s",
                                 transport=transport, refresh_when_idle=False)
        assert account.get_token() == "at-1"
        try:
            import tokenwell.otel
        except ImportError as error:
            print(error)
        else:
            raise SystemExit("tokenwell.otel imported without opentelemetry")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'tokenwell[otel]'" in result.stdout


def test_the_example_script_prints_spans_and_metrics_without_the_secret(token_server: Any) -> None:
    server: TokenServer = token_server(script=lambda n, h, b: (200, [("Content-Type", "application/json")], token_body(token_no(n), LIFETIME_S)))
    script = Path(__file__).resolve().parents[3] / "examples" / "otel" / "telemetry.py"
    env = {**os.environ, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": SECRET, "TOKEN_URL": server.url}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert server.count == 1, "three get_token calls, one token request"
    assert f'"name": "{SPAN_NAME}"' in result.stdout
    for name in ("requests", "duration", "remaining_lifetime"):
        assert f'"name": "{INSTRUMENTS[name]}"' in result.stdout
    assert SECRET not in result.stdout and token_no(1) not in result.stdout
