"""Replays every shared conformance scenario (tests/conformance/scenarios/*.json,
format in tests/conformance/README.md) through the ``engine`` component: each
step calls the ``token-cache`` resource across the component boundary, the WIT
result is converted to the canonical output, and it is matched as a subset,
exactly like the Rust runner (core/tests/conformance.rs)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from wasm_host import (
    REPO,
    CacheHandle,
    ConfigRefused,
    EngineInstance,
    canonical_config_error,
    canonical_error,
    canonical_poll,
    canonical_token,
    is_err,
    iter_events,
    snake,
)

sys.path.insert(0, str(REPO / "tests" / "conformance"))
from replay import SCENARIOS, check_step, scenario_paths, subset  # noqa: E402

PATHS = scenario_paths()


def run_step(cache: CacheHandle, step: Dict[str, Any]) -> Dict[str, Any]:
    at = step.get("at", 0)
    do = step["do"]
    if do == "poll":
        return canonical_poll(cache.poll(at))
    if do == "respond":
        body = base64.b64decode(step["body_base64"]) if "body_base64" in step else step.get("body", "").encode()
        headers = [(name, value) for name, value in step.get("headers", [])]
        failed, value = is_err(cache.handle_response(step["fetch_id"], step["status"], headers, body, at))
        if failed:
            return {"result": "error", "error": canonical_error(value)}
        return {"result": "token", "token": canonical_token(value)}
    if do == "transport_error":
        error = cache.handle_transport_error(step["fetch_id"], step["kind"], step.get("message", ""), at)
        return {"result": "error", "error": canonical_error(error)}
    if do == "invalidate":
        return {"result": snake(cache.invalidate(step["token"], at))}
    if do == "replace_secrets":
        failed, value = is_err(cache.replace_secrets(step["secrets"], at))
        if failed:
            return {"result": "error", "error": canonical_config_error(value)}
        return {"result": "replaced", "changed": value}
    if do == "next_wakeup":
        return {"at": cache.next_wakeup()}
    if do == "export_snapshot":
        text = cache.export_snapshot(at)
        return {"result": "none"} if text is None else {"result": "snapshot", "snapshot": json.loads(text)}
    if do == "import_snapshot":
        text = step["snapshot_text"] if "snapshot_text" in step else json.dumps(step["snapshot"])
        refused = cache.import_snapshot(text, at)
        if refused is None:
            return {"result": "imported"}
        return {"result": "error", "reason": snake(refused.tag)}
    if do == "events":
        return {"events": list(iter_events(cache))}
    raise AssertionError(f"unknown step kind {do!r}")


@pytest.fixture(scope="module")
def engine() -> EngineInstance:
    """One component instance for all scenarios: each scenario makes its own cache resource."""
    return EngineInstance()


def test_scenarios_exist() -> None:
    assert PATHS, f"no scenarios in {SCENARIOS}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_scenario(engine: EngineInstance, path: Path) -> None:
    scenario = json.loads(path.read_text())
    config_json = json.dumps(scenario["config"])
    if "expect_config_error" in scenario:
        with pytest.raises(ConfigRefused) as refused:
            engine.from_json(config_json, scenario.get("entropy", 0))
        subset(scenario["expect_config_error"], refused.value.error, "config_error")
        return
    cache = engine.from_json(config_json, scenario.get("entropy", 0))
    steps: List[Dict[str, Any]] = scenario["steps"]
    try:
        for i, step in enumerate(steps):
            actual = run_step(cache, step)
            check_step(step, actual, f"{path.name} step {i} ({step['do']})")
    finally:
        cache.drop()
