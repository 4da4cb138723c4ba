"""What every Python runner of the conformance scenarios shares: where the
scenario files are, the README's subset matcher, and the per-step check
(``expect`` and ``forbid_substrings``). Used by the Python binding's and the
WebAssembly component's runners, which differ only in how they call the engine.
The host-contract scenarios (``host/``) have their own paths, expectation
shape and check (``host_scenario_paths``, ``check_host_case``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def scenario_paths() -> List[Path]:
    """Every scenario file, in a stable order."""
    return sorted(SCENARIOS.glob("*.json"))


def subset(expected: Any, actual: Any, path: str = "") -> None:
    """The README's matcher: every expected key present and matching; arrays equal in length."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key}: missing in actual"
            subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} elements, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            subset(e, a, f"{path}[{i}]")
    elif isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        assert expected is actual or expected == actual and type(expected) is type(actual), (
            f"{path}: expected {expected!r}, got {actual!r}"
        )
    elif isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        assert float(expected) == float(actual), f"{path}: expected {expected!r}, got {actual!r}"
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def check_step(step: Dict[str, Any], actual: Any, where: str) -> None:
    """Matches one step's output against its ``expect`` and ``forbid_substrings``."""
    if "expect" in step:
        try:
            subset(step["expect"], actual)
        except AssertionError as mismatch:
            raise AssertionError(f"{where}: {mismatch}\n  actual: {json.dumps(actual)}") from None
    # Not ASCII-escaped, so a forbidden secret with non-ASCII characters is found.
    text = json.dumps(actual, ensure_ascii=False)
    for needle in step.get("forbid_substrings", []):
        assert needle not in text, f"{where}: output contains forbidden {needle!r}"


# ---- host-contract scenarios (host/*.json) -----------------------------------------

HOST_SCENARIOS = Path(__file__).resolve().parent / "host"

# Secret values the host-contract scenarios use: no error may show one.
HOST_SECRETS = ("s3cr3t", "new-secret", "old-secret")


def host_scenario_paths(kind: Optional[str] = None) -> List[Path]:
    """Every host-contract scenario file (only those of ``kind``: ``"env"``,
    ``"secret_file"``, ``"unauthorized"``), in a stable order."""
    paths = sorted(HOST_SCENARIOS.glob("*.json"))
    if kind is None:
        return paths
    return [p for p in paths if json.loads(p.read_text(encoding="utf-8")).get("kind") == kind]


def host_expectation(case: Dict[str, Any]) -> Dict[str, Any]:
    """What a host-contract case expects, in the Rust runner's shape:
    ``{"config": ...}`` or ``{"error": ...}`` for ``env``; ``expect`` as it is
    for ``secret_file`` and ``unauthorized``."""
    if case["kind"] != "env":
        return dict(case["expect"])
    if "expect" in case:
        return {"config": case["expect"]}
    return {"error": case["expect_error"]}


def check_host_case(case: Dict[str, Any], actual: Any, where: str) -> None:
    """Matches ``actual`` against the case's expectation (the subset matcher),
    and checks that no error shows one of ``HOST_SECRETS``."""
    check_step({"expect": host_expectation(case)}, actual, where)
    if isinstance(actual, dict) and "error" in actual:
        text = json.dumps(actual, ensure_ascii=False)
        for secret in HOST_SECRETS:
            assert secret not in text, f"{where}: an error shows a secret: {text}"
