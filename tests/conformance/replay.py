"""What every Python runner of the conformance scenarios shares: where the
scenario files are, the README's subset matcher, and the per-step check
(``expect`` and ``forbid_substrings``). Used by the Python binding's and the
WebAssembly component's runners, which differ only in how they call the engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

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
