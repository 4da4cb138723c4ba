"""Tests of charts.py (``make test-charts``, part of ``make test``): the charts
rendered from the fixed results in fixtures/ are well-formed SVG and show the
series, labels and ratios of those numbers; and the engine's recorded run
(``cargo run -p tokenwell --example timeline``) still has the shape the
timeline chart reads.

    python3 scripts/charts/test_charts.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import charts  # noqa: E402

FIXTURES = HERE / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on malformed XML
    assert root.tag == f"{SVG}svg", root.tag
    return root


def texts(root: ET.Element) -> List[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text")]


def tooltips(root: ET.Element) -> List[str]:
    return [el.text or "" for el in root.iter(f"{SVG}title")]


class Charts(unittest.TestCase):
    def setUp(self) -> None:
        self.results = charts.load_results(FIXTURES)

    def test_cache_hit_shows_every_host_with_its_ratio(self) -> None:
        root = parse(charts.cache_hit_chart(self.results, "A busy machine."))
        shown = texts(root)
        for name in ("Rust core", "Node", "Python", "Component (wasmtime-py)"):
            self.assertIn(name, shown)
        for label in ("poll()", "getToken(), native backend", "getToken(), wasm backend", "get_token()"):
            self.assertIn(label, shown)
        # hit / floor from the fixture: 20/10, 150/100, 120/100, 130/100, 40000/4000.
        for ratio in ("2.00×", "1.50×", "1.20×", "1.30×", "10.00×"):
            self.assertIn(ratio, shown)
        self.assertIn("floor (the least a cached lookup costs there, same run)", shown)
        self.assertIn("tokenwell cache hit", shown)
        bars = [t for t in tooltips(root) if ": cache hit " in t]
        self.assertEqual(len(bars), 5)
        self.assertIn("Node getToken(), native backend: cache hit 150 ns", bars)
        self.assertIn("Component (wasmtime-py) poll() through the component: floor 4.00 µs", tooltips(root))
        caption = " ".join(shown)
        for part in ("Fixture CPU 3000", "2 cores", "tokenwell 9.9.9", "rustc 1.0.0-fixture", "A busy machine."):
            self.assertIn(part, caption)
        # The log axis spans the values: 10 ns up to 100 µs.
        self.assertIn("10 ns", shown)
        self.assertIn("100 µs", shown)

    def test_bars_grow_with_the_value(self) -> None:
        root = parse(charts.cache_hit_chart(self.results))
        heights: Dict[str, float] = {}
        for rect in root.iter(f"{SVG}rect"):
            title = rect.find(f"{SVG}title")
            if title is not None and title.text:
                heights[title.text] = float(rect.get("height", "0"))
        core_hit = heights["Rust core poll(): cache hit 20.0 ns"]
        core_floor = heights["Rust core poll(): floor 10.0 ns"]
        component_hit = heights["Component (wasmtime-py) poll() through the component: cache hit 40.0 µs"]
        self.assertGreater(core_hit, core_floor)
        self.assertGreater(component_hit, core_hit)

    def test_stampede_shows_callers_against_requests(self) -> None:
        root = parse(charts.stampede_chart(self.results))
        shown = texts(root)
        for label in ("Node: cold", "Node: at expiry", "Python: 200 threads, cold"):
            self.assertIn(label, shown)
        self.assertEqual(shown.count("1000 → 1 request"), 2)
        self.assertIn("200 → 3 requests", shown)
        self.assertIn("concurrent callers", shown)
        self.assertIn("token requests the server saw", shown)
        self.assertIn("Python 200 threads, cold: 3 token requests", tooltips(root))
        # Hosts without stampede numbers are not named in it.
        self.assertFalse(any("Component" in t for t in shown))

    def test_timeline_draws_every_kind_of_mark(self) -> None:
        run = self.results["timeline"]
        root = parse(charts.timeline_chart(run))
        shown = texts(root)
        for row in (*charts.EVENT_ROWS, "token server", "token lifetimes", "callers"):
            self.assertIn(row, shown)
        for _, label, _ in charts.OUTCOMES:
            self.assertIn(label, shown)
        self.assertIn("outage (503s)", shown)
        self.assertTrue(any("1 of 10 callers failed" in t for t in shown), shown[:3])
        tips = tooltips(root)
        # Every caller once in the whole run; the zoom repeats some.
        whole = [t for t in tips if t.startswith("caller at ")]
        self.assertGreaterEqual(len(whole), len(run["callers"]))
        self.assertIn("caller at 10.0 s: served in outage grace", tips)
        self.assertIn("caller at 12.0 s: failed", tips)
        self.assertIn("token 2: refresh-ahead point 19.6 s", tips)
        self.assertIn("backoff: attempt 2 retries at 13.50 s", tips)
        self.assertIn("request sent 9.10 s: 503", tips)

    def test_timeline_title_says_when_every_caller_was_served(self) -> None:
        run = json.loads(json.dumps(self.results["timeline"]))
        for caller in run["callers"]:
            caller["outcome"] = "cached"
        shown = texts(parse(charts.timeline_chart(run)))
        self.assertTrue(any("all 10 callers served" in t for t in shown))

    def test_missing_numbers_are_an_error_not_an_empty_chart(self) -> None:
        with self.assertRaises(ValueError):
            charts.cache_hit_chart({})
        with self.assertRaises(ValueError):
            charts.stampede_chart({"component": self.results["component"]})
        with self.assertRaises(ValueError):
            charts.timeline_chart({"scenario": self.results["timeline"]["scenario"]})

    def test_main_writes_the_three_charts(self) -> None:
        with tempfile.TemporaryDirectory() as out:
            self.assertEqual(charts.main(["--results", str(FIXTURES), "--out", out, "--note", "Noted."]), 0)
            self.assertEqual(sorted(os.listdir(out)), ["cache-hit.svg", "stampede.svg", "timeline.svg"])
            for name in os.listdir(out):
                parse((Path(out) / name).read_text())
            self.assertIn("Noted.", (Path(out) / "stampede.svg").read_text())
            with tempfile.TemporaryDirectory() as empty:
                self.assertEqual(charts.main(["--results", empty, "--out", out]), 1)


@unittest.skipUnless(shutil.which("cargo"), "cargo is not installed")
class RecordedRun(unittest.TestCase):
    def test_the_engine_run_draws(self) -> None:
        done = subprocess.run(
            ["cargo", "run", "-q", "-p", "tokenwell", "--example", "timeline"],
            cwd=HERE.parents[1], capture_output=True, text=True, timeout=600,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        run: Dict[str, Any] = json.loads(done.stdout)
        outcomes = {c["outcome"] for c in run["callers"]}
        self.assertLessEqual(outcomes, {name for name, _, _ in charts.OUTCOMES})
        self.assertIn("grace", outcomes)
        self.assertNotIn("failed", outcomes)
        kinds = {e["type"] for e in run["events"]}
        self.assertLessEqual(set(charts.EVENT_ROWS), kinds)
        shown = texts(parse(charts.timeline_chart(run)))
        self.assertTrue(any(f"all {len(run['callers'])} callers served" in t for t in shown))


if __name__ == "__main__":
    unittest.main(verbosity=2)
