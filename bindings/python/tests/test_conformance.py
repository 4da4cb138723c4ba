"""Replays every shared conformance scenario (tests/conformance/scenarios/*.json,
format in tests/conformance/README.md) through the binding's ``TokenCache``,
converting its Python objects to the canonical outputs and matching them as
subsets, exactly like the Rust runner."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tokenwell import InvalidConfigError, SnapshotError, TokenCache, TokenError

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "conformance"))
from replay import SCENARIOS, check_step, scenario_paths, subset  # noqa: E402

PATHS = scenario_paths()


def canonical_token(token: Any) -> Dict[str, Any]:
    return {
        "access_token": token.access_token,
        "token_type": token.token_type,
        "scope": list(token.scope),
        "received_at": token.received_at,
        "expires_at": token.expires_at,
        "usable_until": token.usable_until,
        "refresh_at": token.refresh_at,
        "lifetime_source": token.lifetime_source,
    }


def canonical_request(request: Any) -> Dict[str, Any]:
    return {
        "fetch_id": request.fetch_id,
        "method": request.method,
        "url": request.url,
        "headers": [[name, value] for name, value in request.headers],
        "body": request.body.decode("utf-8"),
        "timeout_ms": request.timeout_ms,
    }


def canonical_error(error: TokenError) -> Dict[str, Any]:
    assert isinstance(error, TokenError), repr(error)
    return {
        "kind": error.kind,
        "fault": error.fault,
        "retryable": error.retryable,
        "retry_at": error.retry_at_ms,
        "status": error.status,
        "oauth_error": error.oauth_error,
        "description": error.description,
    }


def canonical_poll(poll: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"result": poll.result}
    if poll.token is not None:
        out["token"] = canonical_token(poll.token)
    if poll.request is not None:
        out["request"] = canonical_request(poll.request)
    if poll.fetch_id is not None:
        out["fetch_id"] = poll.fetch_id
    if poll.error is not None:
        out["error"] = canonical_error(poll.error)
    return out


def run_step(cache: TokenCache, step: Dict[str, Any]) -> Dict[str, Any]:
    at = step.get("at", 0)
    do = step["do"]
    if do == "poll":
        return canonical_poll(cache.poll(at))
    if do == "respond":
        body = base64.b64decode(step["body_base64"]) if "body_base64" in step else step.get("body", "").encode()
        headers = [(name, value) for name, value in step.get("headers", [])]
        try:
            token = cache.handle_response(step["fetch_id"], step["status"], headers, body, at)
        except TokenError as error:
            return {"result": "error", "error": canonical_error(error)}
        return {"result": "token", "token": canonical_token(token)}
    if do == "transport_error":
        error = cache.handle_transport_error(step["fetch_id"], step["kind"], step.get("message", ""), at)
        return {"result": "error", "error": canonical_error(error)}
    if do == "invalidate":
        return {"result": cache.invalidate(step["token"], at)}
    if do == "replace_secrets":
        try:
            changed = cache.replace_secrets(step["secrets"], at)
        except InvalidConfigError as error:
            return {"result": "error", "error": {"field": error.field, "problem": error.problem}}
        return {"result": "replaced", "changed": changed}
    if do == "next_wakeup":
        return {"at": cache.next_wakeup()}
    if do == "export_snapshot":
        text = cache.export_snapshot(at)
        return {"result": "none"} if text is None else {"result": "snapshot", "snapshot": json.loads(text)}
    if do == "import_snapshot":
        text = step["snapshot_text"] if "snapshot_text" in step else json.dumps(step["snapshot"])
        try:
            cache.import_snapshot(text, at)
        except SnapshotError as error:
            return {"result": "error", "reason": error.reason}
        return {"result": "imported"}
    if do == "events":
        return {"events": list(cache.drain_events())}
    raise AssertionError(f"unknown step kind {do!r}")


def test_scenarios_exist() -> None:
    assert SCENARIOS.is_dir(), f"{SCENARIOS} is missing"
    assert PATHS, f"no scenarios in {SCENARIOS}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_scenario(path: Path) -> None:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    if "expect_config_error" in scenario:
        with pytest.raises(InvalidConfigError) as refused:
            TokenCache(scenario["config"], scenario.get("entropy", 0))
        subset(scenario["expect_config_error"], {"field": refused.value.field, "problem": refused.value.problem})
        return
    cache = TokenCache(scenario["config"], scenario.get("entropy", 0))
    steps: List[Dict[str, Any]] = scenario["steps"]
    for i, step in enumerate(steps):
        actual = run_step(cache, step)
        check_step(step, actual, f"step {i} ({step['do']})")
