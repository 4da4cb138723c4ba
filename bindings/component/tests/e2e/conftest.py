"""pytest set-up for the end-to-end suite (tests/e2e/): the component test host
(``tests/wasm_host.py``) on ``sys.path``, and a closing summary of what the
cases measured (calls, tokens, timings), printed after the results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOTES: List[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if NOTES:
        terminalreporter.write_sep("-", "component end-to-end: measurements")
        for line in NOTES:
            terminalreporter.write_line(line)
