"""A component host for the tests, on the ``wasmtime`` package from PyPI.

It loads the components built by ``make component`` (``dist/``, or
``TOKENWELL_COMPONENT_DIST``), calls their exports, and converts WIT values to
the conformance format's canonical JSON (``snake_case`` keys and enum values;
see tests/conformance/README.md). The conversion is driven by the WIT types,
so a string that merely looks like an enum value (an access token ``at-1``)
is never rewritten.

wasmtime-py hands WIT values over as: records -> ``Record`` objects whose
attributes are the kebab-case field names; enums -> ``str``; variants whose
cases cannot be told apart by Python type -> ``Variant(tag, payload)``;
``option`` -> the value or ``None``; ``result`` -> ``Variant('ok'|'err', ...)``
when both sides share a Python type, else the bare value.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import wasmtime
from wasmtime import component as cm

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parent
REPO = PACKAGE_DIR.parents[1]
DIST = Path(os.environ.get("TOKENWELL_COMPONENT_DIST", PACKAGE_DIR / "dist"))
WIT = REPO / "wit"
TOOL = Path(
    os.environ.get(
        "TOKENWELL_COMPONENT_TOOL",
        Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "tool" / "tokenwell-component-tool",
    )
)

ENGINE_INTERFACE = "tokenwell:client/engine@0.1.0"
PROVIDER_INTERFACE = "tokenwell:client/provider@0.1.0"

WASM_ENGINE = wasmtime.Engine()


@functools.lru_cache(maxsize=None)
def load(name: str) -> cm.Component:
    """A component from ``dist/`` (compiled once per test session)."""
    return cm.Component.from_file(WASM_ENGINE, str(DIST / name))


def component_imports(name: str) -> List[str]:
    """The import names of a component, as wasmtime sees them."""
    return sorted(load(name).type.imports(WASM_ENGINE).keys())


def tool(*args: str) -> List[str]:
    """Runs ``tokenwell-component-tool`` and returns its output lines."""
    out = subprocess.run([str(TOOL), *args], check=True, capture_output=True, text=True, timeout=60)
    return [line for line in out.stdout.splitlines() if line]


# ---- WIT values -> canonical JSON ------------------------------------------------


def snake(enum_value: str) -> str:
    """A WIT enum or case name (``invalid-client``) as in JSON (``invalid_client``)."""
    return enum_value.replace("-", "_")


def field(record: Any, name: str) -> Any:
    return getattr(record, name)


def record(cls_fields: Dict[str, Any]) -> cm.Record:
    """A WIT record from ``{"kebab-name": value}``."""
    out = cm.Record()
    for name, value in cls_fields.items():
        setattr(out, name, value)
    return out


def canonical_token(token: Any) -> Dict[str, Any]:
    return {
        "access_token": field(token, "access-token"),
        "token_type": field(token, "token-type"),
        "scope": list(field(token, "scope")),
        "received_at": field(token, "received-at"),
        "expires_at": field(token, "expires-at"),
        "usable_until": field(token, "usable-until"),
        "refresh_at": field(token, "refresh-at"),
        "lifetime_source": snake(field(token, "lifetime-source")),
    }


def canonical_request(request: Any) -> Dict[str, Any]:
    return {
        "fetch_id": field(request, "fetch-id"),
        "method": field(request, "method"),
        "url": field(request, "url"),
        "headers": [[name, value] for name, value in field(request, "headers")],
        "body": field(request, "body"),
        "timeout_ms": field(request, "timeout-ms"),
    }


def canonical_error(error: Any) -> Dict[str, Any]:
    return {
        "kind": snake(field(error, "kind")),
        "fault": snake(field(error, "fault")),
        "retryable": field(error, "retryable"),
        "retry_at": field(error, "retry-at"),
        "status": field(error, "status"),
        "oauth_error": field(error, "oauth-error"),
        "description": field(error, "description"),
        "message": field(error, "message"),
    }


def canonical_config_error(error: Any) -> Dict[str, Any]:
    return {"field": field(error, "field"), "problem": field(error, "problem")}


def canonical_poll(result: cm.Variant) -> Dict[str, Any]:
    tag, payload = result.tag, result.payload
    out: Dict[str, Any] = {"result": snake(tag)}
    if tag == "ready":
        out["token"] = canonical_token(payload)
    elif tag == "ready-and-send":
        out["token"] = canonical_token(field(payload, "token"))
        out["request"] = canonical_request(field(payload, "request"))
    elif tag == "send":
        out["request"] = canonical_request(payload)
    elif tag == "wait":
        out["fetch_id"] = payload
    elif tag == "fail":
        out["error"] = canonical_error(payload)
    else:
        raise AssertionError(f"unknown poll result {tag!r}")
    return out


# Event payloads that are a single value, and the JSON field that holds it.
_SCALAR_EVENTS = {
    "fetch-abandoned": "fetch_id",
    "token-invalidated": "expires_at",
    "invalidate-rate-limited": "until",
    "snapshot-imported": "expires_at",
    "clock-went-backwards": "by_ms",
}
# Record fields of event payloads that are WIT enums or records.
_EVENT_FIELD_CONVERSIONS: Dict[str, Callable[[Any], Any]] = {
    "reason": snake,
    "lifetime-source": snake,
    "error-kind": snake,
    "error": canonical_error,
    "scope": list,
    "cause": snake,
    "auth-method": snake,
}
# Fields whose name alone does not say they are enums (`problem` is free text in
# `secret-file-rejected`, an enum in `cache-file-problem`).
_EVENT_CASE_FIELD_CONVERSIONS: Dict[Tuple[str, str], Callable[[Any], Any]] = {
    ("cache-file-problem", "problem"): snake,
}


def canonical_event(event: Any) -> Dict[str, Any]:
    kind = field(event, "kind")
    out: Dict[str, Any] = {
        "at": field(event, "at"),
        "actor_type": field(event, "actor-type"),
        "actor_id": field(event, "actor-id"),
    }
    # `other` carries an event kind newer than the WIT: the WIT must name it.
    assert kind.tag != "other", f"the WIT has no case for this event: {kind.payload}"
    out["type"] = snake(kind.tag)
    if kind.tag in _SCALAR_EVENTS:
        out[_SCALAR_EVENTS[kind.tag]] = kind.payload
    else:
        for name, value in vars(kind.payload).items():
            convert = _EVENT_CASE_FIELD_CONVERSIONS.get((kind.tag, name)) or _EVENT_FIELD_CONVERSIONS.get(name)
            out[snake(name)] = convert(value) if convert else value
    return out


def is_err(result: Any) -> Tuple[bool, Any]:
    """Splits a ``result`` as wasmtime-py returns it (tagged or not)."""
    if isinstance(result, cm.Variant) and result.tag in ("ok", "err"):
        return result.tag == "err", result.payload
    if isinstance(result, cm.Record) and hasattr(result, "field") and hasattr(result, "problem"):
        return True, result
    return False, result


# ---- typed configuration -------------------------------------------------------

CONFIG_FIELDS = (
    "token-url", "issuer", "client-id", "client-secrets", "private-keys", "auth-method", "assertion-signing-alg",
    "assertion-audience", "assertion-lifetime-ms", "discovery-refresh-ms", "scopes", "audiences", "extra-params",
    "allow-insecure-http", "refresh-margin-ms", "refresh-ahead", "refresh-ahead-jitter", "default-lifetime-ms",
    "min-lifetime-ms", "max-lifetime-ms", "max-response-bytes", "request-timeout-ms", "backoff-initial-ms",
    "backoff-max-ms", "backoff-min-ms", "backoff-jitter", "max-retry-after-ms", "config-error-hold-ms",
    "invalidate-min-interval-ms", "outage-grace", "outage-grace-safety-ms",
)
LIST_FIELDS = {"private-keys", "scopes", "audiences", "extra-params"}


def config(**options: Any) -> cm.Record:
    """A WIT ``config`` record from keyword arguments in ``snake_case``; the
    rest are empty lists or ``none``."""
    values: Dict[str, Any] = {}
    for name in CONFIG_FIELDS:
        key = name.replace("-", "_")
        values[name] = options.pop(key, [] if name in LIST_FIELDS else None)
    if options:
        raise TypeError(f"unknown config fields {sorted(options)}")
    return record(values)


# ---- the engine component -----------------------------------------------------


class ExportedFunctions:
    """The functions of one exported interface of one instance."""

    def __init__(self, store: wasmtime.Store, instance: cm.Instance, interface: str) -> None:
        self.store = store
        self.instance = instance
        index = instance.get_export_index(store, interface)
        assert index is not None, f"the component does not export {interface}"
        self.interface = index
        self.funcs: Dict[str, cm.Func] = {}

    def __call__(self, name: str, *args: Any) -> Any:
        func = self.funcs.get(name)
        if func is None:
            index = self.instance.get_export_index(self.store, name, self.interface)
            assert index is not None, f"no export {name}"
            func = self.instance.get_func(self.store, index)
            assert func is not None, name
            self.funcs[name] = func
        return func(self.store, *args)


class EngineInstance:
    """One instance of ``tokenwell-engine.wasm``, instantiated with no imports at all."""

    def __init__(self) -> None:
        self.store = wasmtime.Store(WASM_ENGINE)
        linker = cm.Linker(WASM_ENGINE)  # nothing defined: the component must need nothing
        instance = linker.instantiate(self.store, load("tokenwell-engine.wasm"))
        self.call = ExportedFunctions(self.store, instance, ENGINE_INTERFACE)

    def from_json(self, config_json: str, entropy: int) -> "CacheHandle":
        failed, value = is_err(self.call("[static]token-cache.from-json", config_json, entropy))
        if failed:
            raise ConfigRefused(canonical_config_error(value))
        return CacheHandle(self, value)

    def create(self, config_record: cm.Record, entropy: int) -> "CacheHandle":
        failed, value = is_err(self.call("[static]token-cache.create", config_record, entropy))
        if failed:
            raise ConfigRefused(canonical_config_error(value))
        return CacheHandle(self, value)


class ConfigRefused(Exception):
    """A ``config-error``, as ``{"field": ..., "problem": ...}``."""

    def __init__(self, error: Dict[str, str]) -> None:
        super().__init__(error)
        self.error = error


class CacheHandle:
    """A ``token-cache`` resource; each method returns the raw WIT value."""

    def __init__(self, engine: EngineInstance, resource: cm.ResourceAny) -> None:
        self.engine = engine
        self.resource = resource

    def __getattr__(self, method: str) -> Callable[..., Any]:
        wit_name = method.replace("_", "-")

        def call(*args: Any) -> Any:
            return self.engine.call(f"[method]token-cache.{wit_name}", self.resource, *args)

        return call

    def drop(self) -> None:
        self.resource.drop(self.engine.store)


# ---- the provider component ---------------------------------------------------


class ProviderInstance:
    """One instance of ``tokenwell-provider.wasm`` (or a composition holding
    it), with WASI 0.2 and wasi:http from wasmtime and the given environment."""

    def __init__(self, env: Optional[Dict[str, str]] = None, component: str = "tokenwell-provider.wasm") -> None:
        self.store = wasmtime.Store(WASM_ENGINE)
        wasi = wasmtime.WasiConfig()
        wasi.env = list((env or {}).items())
        wasi.inherit_stdout()
        wasi.inherit_stderr()
        self.store.set_wasi(wasi)
        self.store.set_wasi_http()
        linker = cm.Linker(WASM_ENGINE)
        linker.add_wasip2()
        linker.add_wasi_http()
        self.instance = linker.instantiate(self.store, load(component))
        self._provider: Optional[ExportedFunctions] = None

    @property
    def call(self) -> ExportedFunctions:
        if self._provider is None:
            self._provider = ExportedFunctions(self.store, self.instance, PROVIDER_INTERFACE)
        return self._provider

    def get_token(self) -> Tuple[bool, Any]:
        """``(False, token)`` or ``(True, token-error)``."""
        return is_err(self.call("get-token"))

    def drain_events(self) -> List[Dict[str, Any]]:
        return [canonical_event(e) for e in self.call("drain-events")]


def iter_events(cache: CacheHandle) -> Iterable[Dict[str, Any]]:
    while True:
        event = cache.poll_event()
        if event is None:
            return
        yield canonical_event(event)
