"""Draws the benchmark numbers as SVG charts, with nothing but the standard library.

    python3 scripts/charts/charts.py [--results bench-results] [--out docs/charts] [--note TEXT]

Reads what ``make bench`` wrote into the results folder (``core.json``,
``node.json``, ``python.json``, ``component.json``: one per host, each with
its versions and machine; ``timeline.json``: one engine run recorded by
``cargo run -p tokenwell --example timeline``) and writes:

- ``cache-hit.svg``: each host's cache-hit cost next to its floor, the least a
  cached lookup costs in that language, measured in the same run;
- ``stampede.svg``: concurrent callers against the token requests they caused;
- ``timeline.svg``: the recorded run on a time axis (token lifetimes,
  refresh-ahead points, an outage, backoff retries, every caller's outcome),
  with a zoom on the outage.

A host whose file is missing is left out (and the chart says which ones it
shows); a missing ``timeline.json`` skips that chart. ``--note`` adds a line to
the captions of the measured charts (say, that the machine was busy).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

HOSTS = ("core", "node", "python", "component")
HOST_NAMES = {"core": "Rust core", "node": "Node", "python": "Python", "component": "Component (wasmtime-py)"}

FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
INK = "#1a202c"
MUTED = "#4a5568"
GRID = "#e2e8f0"
FLOOR_COLOUR = "#a0aec0"
HIT_COLOUR = "#2b6cb0"
CALLERS_COLOUR = "#bee3f8"
REQUESTS_COLOUR = "#c05621"

Results = Dict[str, Dict[str, Any]]


class Svg:
    """A minimal SVG document: elements appended as text, every value escaped."""

    def __init__(self, width: float, height: float, title: str) -> None:
        self.width = width
        self.height = height
        self.parts: List[str] = []
        self.title = title

    def element(self, tag: str, content: Optional[str] = None, tooltip: Optional[str] = None, **attrs: Any) -> None:
        text = " ".join(f"{key.rstrip('_').replace('_', '-')}={quoteattr(_fmt(value))}" for key, value in attrs.items())
        inner = (f"<title>{escape(tooltip)}</title>" if tooltip else "") + (escape(content) if content else "")
        self.parts.append(f"<{tag} {text}>{inner}</{tag}>" if inner else f"<{tag} {text}/>")

    def text(self, x: float, y: float, content: str, size: float = 12, **attrs: Any) -> None:
        attrs.setdefault("fill", INK)
        self.element("text", content, x=x, y=y, font_size=size, **attrs)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tooltip: Optional[str] = None, **attrs: Any) -> None:
        self.element("rect", tooltip=tooltip, x=x, y=y, width=max(w, 0), height=max(h, 0), fill=fill, **attrs)

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1, **attrs: Any) -> None:
        self.element("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, stroke_width=width, **attrs)

    def raw(self, markup: str) -> None:
        self.parts.append(markup)

    def render(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(self.width)}" height="{_fmt(self.height)}" '
            f'viewBox="0 0 {_fmt(self.width)} {_fmt(self.height)}" font-family={quoteattr(FONT)} role="img">'
        )
        background = f'<rect x="0" y="0" width="{_fmt(self.width)}" height="{_fmt(self.height)}" fill="#ffffff"/>'
        return "\n".join([head, f"<title>{escape(self.title)}</title>", background, *self.parts, "</svg>"]) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def text_width(text: str, size: float) -> float:
    """A rough width for layout (no font metrics without a renderer)."""
    return len(text) * size * 0.56


def wrap(text: str, width: float, size: float) -> List[str]:
    lines: List[str] = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def format_ns(ns: float) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 10_000:
        return f"{ns / 1e3:.1f} µs"
    if ns >= 1_000:
        return f"{ns / 1e3:.2f} µs"
    if ns >= 100:
        return f"{ns:.0f} ns"
    return f"{ns:.1f} ns"


def format_decade(exp: int) -> str:
    """A log axis tick: 10 ns, 100 ns, 1 µs, ..."""
    units = (("s", 9), ("ms", 6), ("µs", 3), ("ns", 0))
    unit, power = next(u for u in units if exp >= u[1] or u[1] == 0)
    return f"{10.0 ** (exp - power):g} {unit}"


def load_results(folder: Path) -> Results:
    results: Results = {}
    for host in (*HOSTS, "timeline"):
        path = folder / f"{host}.json"
        if path.exists():
            results[host] = json.loads(path.read_text())
    return results


def caption(results: Results, hosts: Iterable[str], note: str) -> str:
    """Versions and machine of the hosts drawn, and the note."""
    hosts = [h for h in hosts if h in results]
    machine = next((results[h].get("machine") for h in hosts if results[h].get("machine")), {}) or {}
    tokenwell = sorted({results[h].get("versions", {}).get("tokenwell", "?") for h in hosts})
    runtimes = dict.fromkeys(results[h].get("versions", {}).get("runtime", "") for h in hosts)
    parts = [f"tokenwell {', '.join(tokenwell)}", *[r for r in runtimes if r]]
    where = ", ".join(
        str(p)
        for p in (
            machine.get("cpu") or "unknown CPU",
            f"{machine['cores']} cores" if machine.get("cores") else None,
            f"{machine.get('os', '?')}/{machine.get('arch', '?')}",
        )
        if p
    )
    line = f"Measured on {where}; " + "; ".join(parts) + "."
    return f"{line} {note}".strip()


def _footer(svg: Svg, y: float, lines: Sequence[str], size: float = 11) -> None:
    for i, line in enumerate(lines):
        svg.text(16, y + i * (size + 4), line, size=size, fill=MUTED)


def _log_ticks(lo: float, hi: float) -> Tuple[int, int]:
    return math.floor(math.log10(lo)), math.ceil(math.log10(hi))


def cache_hit_chart(results: Results, note: str = "") -> str:
    """Grouped bars on a log axis: floor and cache hit per host, the ratio above each group."""
    groups = [
        (host, row) for host in HOSTS for row in results.get(host, {}).get("cache_hit", [])
    ]
    if not groups:
        raise ValueError("no cache_hit rows in any host's results")
    group_w, bar_w, left, top = 170, 44, 84, 96
    plot_h = 300
    width = max(left + group_w * len(groups) + 30, 760)
    values = [v for _, row in groups for v in (row["hit_ns"], row["floor_ns"])]
    lo_exp, hi_exp = _log_ticks(min(values), max(values))
    if hi_exp == lo_exp:
        hi_exp += 1
    floors = [f"{HOST_NAMES[h]}: {row['floor_label']}" for h, row in groups if row.get("floor_label")]
    floor_lines = wrap("Floors: " + "; ".join(dict.fromkeys(floors)) + ".", width - 32, 11)
    cap_lines = wrap(caption(results, [h for h, _ in groups], note), width - 32, 11)
    height = top + plot_h + 64 + 15 * (len(floor_lines) + len(cap_lines)) + 16
    svg = Svg(width, height, "tokenwell: cache-hit cost against its floor, per host")
    svg.text(16, 28, "What a cache hit costs, next to the floor of each language", size=18, font_weight="bold")
    svg.text(16, 48, "ns per call, log scale; the label above each pair is hit / floor (1.00× = as cheap as the floor)", size=12, fill=MUTED)
    # Legend.
    svg.rect(16, 62, 14, 14, FLOOR_COLOUR)
    svg.text(36, 74, "floor (the least a cached lookup costs there, same run)", size=12)
    svg.rect(380, 62, 14, 14, HIT_COLOUR)
    svg.text(400, 74, "tokenwell cache hit", size=12)

    def y_of(ns: float) -> float:
        frac = (math.log10(ns) - lo_exp) / (hi_exp - lo_exp)
        return top + plot_h - frac * plot_h

    for exp in range(lo_exp, hi_exp + 1):
        y = y_of(10.0**exp)
        svg.line(left, y, width - 20, y, GRID)
        svg.text(left - 8, y + 4, format_decade(exp), size=11, fill=MUTED, text_anchor="end")
    svg.element(
        "text", "ns per call (log scale)", x=18, y=top + plot_h / 2, font_size=12, fill=MUTED,
        text_anchor="middle", transform=f"rotate(-90 18 {top + plot_h / 2})",
    )
    svg.line(left, top + plot_h, width - 20, top + plot_h, MUTED)
    for i, (host, row) in enumerate(groups):
        x = left + i * group_w + (group_w - 2 * bar_w - 8) / 2
        for j, (key, colour, name) in enumerate((("floor_ns", FLOOR_COLOUR, "floor"), ("hit_ns", HIT_COLOUR, "cache hit"))):
            value = row[key]
            bx = x + j * (bar_w + 8)
            y = y_of(value)
            tip = f"{HOST_NAMES[host]} {row['label']}: {name} {format_ns(value)}"
            svg.rect(bx, y, bar_w, top + plot_h - y, colour, tooltip=tip)
            svg.text(bx + bar_w / 2, y - 4, format_ns(value), size=10, text_anchor="middle", fill=MUTED)
        ratio = row["hit_ns"] / row["floor_ns"]
        top_y = y_of(max(row["hit_ns"], row["floor_ns"]))
        svg.text(x + bar_w + 4, top_y - 18, f"{ratio:.2f}×", size=13, font_weight="bold", text_anchor="middle")
        cx = left + i * group_w + group_w / 2
        svg.text(cx, top + plot_h + 18, HOST_NAMES[host], size=12, font_weight="bold", text_anchor="middle")
        svg.text(cx, top + plot_h + 34, row["label"], size=11, text_anchor="middle", fill=MUTED)
    _footer(svg, top + plot_h + 62, floor_lines + cap_lines)
    return svg.render()


def stampede_chart(results: Results, note: str = "") -> str:
    """Per host and scenario: concurrent callers against the token requests the server saw."""
    rows = [(host, row) for host in HOSTS for row in results.get(host, {}).get("stampede", [])]
    if not rows:
        raise ValueError("no stampede rows in any host's results")
    width, label_w, top, row_h = 860, 330, 96, 46
    plot_w = width - label_w - 150
    most = max(max(r["callers"], r["requests"]) for _, r in rows)
    hosts = list(dict.fromkeys(h for h, _ in rows))
    cap_lines = wrap(caption(results, hosts, note), width - 32, 11)
    height = top + row_h * len(rows) + 50 + 15 * len(cap_lines) + 12
    svg = Svg(width, height, "tokenwell: token requests caused by concurrent callers")
    svg.text(16, 28, "Concurrent callers against token requests (single flight)", size=18, font_weight="bold")
    svg.text(16, 48, "many callers ask for a token at once, against a loopback token server that counts requests",
             size=12, fill=MUTED)
    svg.rect(16, 62, 14, 14, CALLERS_COLOUR, stroke="#63b3ed")
    svg.text(36, 74, "concurrent callers", size=12)
    svg.rect(190, 62, 14, 14, REQUESTS_COLOUR)
    svg.text(210, 74, "token requests the server saw", size=12)

    def x_of(n: float) -> float:
        return label_w + plot_w * n / most

    step = _nice_step(most, 5)
    tick = 0.0
    while tick <= most + 1e-9:
        x = x_of(tick)
        svg.line(x, top - 6, x, top + row_h * len(rows), GRID)
        svg.text(x, top + row_h * len(rows) + 16, f"{tick:g}", size=11, fill=MUTED, text_anchor="middle")
        tick += step
    svg.text(label_w + plot_w / 2, top + row_h * len(rows) + 34, "count (callers, requests)", size=12,
             fill=MUTED, text_anchor="middle")
    for i, (host, row) in enumerate(rows):
        y = top + i * row_h
        svg.text(label_w - 10, y + 17, f"{HOST_NAMES[host]}: {row['label']}", size=12, text_anchor="end")
        svg.rect(label_w, y + 4, x_of(row["callers"]) - label_w, 16, CALLERS_COLOUR,
                 tooltip=f"{HOST_NAMES[host]} {row['label']}: {row['callers']} callers", stroke="#63b3ed")
        # At least 2 px, so that one request is visible beside a thousand callers.
        svg.rect(label_w, y + 22, max(x_of(row["requests"]) - label_w, 2), 14, REQUESTS_COLOUR,
                 tooltip=f"{HOST_NAMES[host]} {row['label']}: {row['requests']} token requests")
        requests = row["requests"]
        verdict = f"{row['callers']} → {requests} request{'s' if requests != 1 else ''}"
        svg.text(x_of(row["callers"]) + 8, y + 24, verdict, size=12, font_weight="bold",
                 fill=INK if requests == 1 else REQUESTS_COLOUR)
    _footer(svg, top + row_h * len(rows) + 56, cap_lines)
    return svg.render()


def _nice_step(span: float, ticks: int) -> float:
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


# ---- the timeline -----------------------------------------------------------

OUTCOMES = (
    ("cached", "served from the cache", "#3182ce"),
    ("grace", "served in outage grace", "#805ad5"),
    ("waited", "waited for a token request", "#d69e2e"),
    ("failed", "failed", "#e53e3e"),
)
EVENT_ROWS = ("refresh_started", "token_acquired", "refresh_failed", "backoff_scheduled", "outage_grace_served")
EVENT_COLOURS = {
    "refresh_started": "#3182ce",
    "token_acquired": "#38a169",
    "refresh_failed": "#e53e3e",
    "backoff_scheduled": "#dd6b20",
    "outage_grace_served": "#805ad5",
}
TOKEN_LIFE = "#90cdf4"
TOKEN_MARGIN = "#e9d8fd"
OUTAGE_BAND = "#fed7d7"
ROW_H = 20


class Panel:
    """One time axis: the rows of the timeline between t0 and t1 (ms)."""

    def __init__(self, svg: Svg, x0: float, x1: float, y: float, t0: float, t1: float) -> None:
        self.svg, self.x0, self.x1, self.y, self.t0, self.t1 = svg, x0, x1, y, t0, t1

    def x(self, t: float) -> float:
        t = min(max(t, self.t0), self.t1)
        return self.x0 + (self.x1 - self.x0) * (t - self.t0) / (self.t1 - self.t0)

    def inside(self, t: float) -> bool:
        return self.t0 <= t <= self.t1


def _marker(svg: Svg, kind: str, x: float, y: float, colour: str, tooltip: str) -> None:
    if kind == "triangle":
        svg.element("path", tooltip=tooltip, d=f"M{x:.1f},{y - 5:.1f} L{x + 5:.1f},{y + 4:.1f} L{x - 5:.1f},{y + 4:.1f} Z",
                    fill=colour)
    elif kind == "cross":
        svg.element("path", tooltip=tooltip, d=f"M{x - 4:.1f},{y - 4:.1f} L{x + 4:.1f},{y + 4:.1f} "
                    f"M{x + 4:.1f},{y - 4:.1f} L{x - 4:.1f},{y + 4:.1f}", stroke=colour, stroke_width=2, fill="none")
    elif kind == "diamond":
        svg.element("path", tooltip=tooltip, d=f"M{x:.1f},{y - 6:.1f} L{x + 6:.1f},{y:.1f} L{x:.1f},{y + 6:.1f} "
                    f"L{x - 6:.1f},{y:.1f} Z", fill=colour)
    else:
        svg.element("circle", tooltip=tooltip, cx=x, cy=y, r=4, fill=colour)


def _draw_panel(panel: Panel, run: Dict[str, Any], heading: str, row_names: List[str]) -> float:
    """Draws every row of the run on `panel`; returns the y below it."""
    svg = panel.svg
    rows = {name: panel.y + 24 + i * ROW_H for i, name in enumerate(row_names)}
    shown = {"tokens (odd)": "token lifetimes", "tokens (even)": "(the next one)"}
    bottom = panel.y + 24 + len(row_names) * ROW_H
    svg.text(panel.x0, panel.y + 10, heading, size=13, font_weight="bold")
    outage = run["scenario"]["outage_ms"]
    if outage[1] > panel.t0 and outage[0] < panel.t1:
        ox0, ox1 = panel.x(outage[0]), panel.x(outage[1])
        svg.rect(ox0, panel.y + 16, ox1 - ox0, bottom - panel.y - 16, OUTAGE_BAND,
                 tooltip=f"outage: the token server answers 503 from {outage[0] / 1000:g} s to {outage[1] / 1000:g} s")
        svg.text((ox0 + ox1) / 2, panel.y + 10, "outage (503s)", size=11, fill="#c53030", text_anchor="middle")
    for name, y in rows.items():
        svg.line(panel.x0, y + ROW_H / 2, panel.x1, y + ROW_H / 2, GRID)
        svg.text(panel.x0 - 8, y + ROW_H / 2 + 4, shown.get(name, name), size=11, fill=MUTED, text_anchor="end")
    # Token lifetimes, on two alternating rows so that overlapping tokens both show.
    for i, token in enumerate(run["tokens"]):
        if token["received_at"] > panel.t1 or token["expires_at"] < panel.t0:
            continue
        y = rows["tokens (odd)" if i % 2 == 0 else "tokens (even)"] + 4
        a, b, c = panel.x(token["received_at"]), panel.x(token["usable_until"]), panel.x(token["expires_at"])
        svg.rect(a, y, b - a, ROW_H - 8, TOKEN_LIFE, tooltip=f"token {i + 1}: usable "
                 f"{token['received_at'] / 1000:.1f}–{token['usable_until'] / 1000:.1f} s")
        svg.rect(b, y, c - b, ROW_H - 8, TOKEN_MARGIN, tooltip=f"token {i + 1}: refresh margin, expires "
                 f"{token['expires_at'] / 1000:.1f} s")
        if b - a > 40:
            svg.text(a + 4, y + ROW_H - 11, f"token {i + 1}", size=10)
        if panel.inside(token["refresh_at"]):
            rx = panel.x(token["refresh_at"])
            svg.line(rx, y - 3, rx, y + ROW_H - 5, INK, 2)
            svg.element("path", tooltip=f"token {i + 1}: refresh-ahead point "
                        f"{token['refresh_at'] / 1000:.1f} s", d=f"M{rx - 4:.1f},{y - 5:.1f} L{rx + 4:.1f},{y - 5:.1f} "
                        f"L{rx:.1f},{y + 1:.1f} Z", fill=INK)
    # What the token server answered.
    for request in run["requests"]:
        if not panel.inside(request["sent_at"]):
            continue
        ok = request["status"] == 200
        _marker(svg, "circle" if ok else "cross", panel.x(request["sent_at"]), rows["token server"] + ROW_H / 2,
                "#38a169" if ok else "#e53e3e", f"request sent {request['sent_at'] / 1000:.2f} s: {request['status']}")
    # Engine events, one row per kind.
    for event in run["events"]:
        kind = event["type"]
        if kind not in rows:
            continue
        y = rows[kind] + ROW_H / 2
        colour = EVENT_COLOURS[kind]
        at = event["at"]
        if kind == "backoff_scheduled":
            end = event["retry_at"]
            if end < panel.t0 or at > panel.t1:
                continue
            svg.element("line", tooltip=f"backoff: attempt {event.get('attempt')} retries at {end / 1000:.2f} s",
                        x1=panel.x(at), y1=y, x2=panel.x(end), y2=y, stroke=colour, stroke_width=2)
            if panel.inside(end):
                _marker(svg, "triangle", panel.x(end), y, colour, f"retry at {end / 1000:.2f} s")
            continue
        if kind == "outage_grace_served":
            until = event["until"]
            svg.element("line", tooltip=f"outage grace: the cached token is served until {until / 1000:.2f} s",
                        x1=panel.x(at), y1=y, x2=panel.x(until), y2=y, stroke=colour, stroke_width=4,
                        stroke_dasharray="6 3")
        if not panel.inside(at):
            continue
        shape = {"refresh_started": "triangle", "refresh_failed": "cross", "outage_grace_served": "diamond"}.get(kind,
                                                                                                              "circle")
        detail = f" ({event['reason']})" if "reason" in event else ""
        _marker(svg, shape, panel.x(at), y, colour, f"{kind}{detail} at {at / 1000:.2f} s")
    # Callers.
    colours = {name: colour for name, _, colour in OUTCOMES}
    labels = {name: label for name, label, _ in OUTCOMES}
    for caller in run["callers"]:
        if not panel.inside(caller["at"]):
            continue
        outcome = caller["outcome"]
        svg.element("circle", tooltip=f"caller at {caller['at'] / 1000:.1f} s: {labels.get(outcome, outcome)}",
                    cx=panel.x(caller["at"]), cy=rows["callers"] + ROW_H / 2, r=3.2,
                    fill=colours.get(outcome, INK))
    # The time axis.
    svg.line(panel.x0, bottom, panel.x1, bottom, MUTED)
    step = _nice_step((panel.t1 - panel.t0) / 1000, 12)
    tick = math.ceil(panel.t0 / 1000 / step) * step
    while tick * 1000 <= panel.t1 + 1e-6:
        x = panel.x(tick * 1000)
        svg.line(x, bottom, x, bottom + 4, MUTED)
        svg.text(x, bottom + 16, f"{tick:g}", size=10, fill=MUTED, text_anchor="middle")
        tick += step
    svg.text((panel.x0 + panel.x1) / 2, bottom + 32, "time since start (s, virtual clock)", size=11, fill=MUTED,
             text_anchor="middle")
    return bottom + 40


def timeline_chart(run: Dict[str, Any]) -> str:
    """The recorded run: the whole of it, then a zoom on the outage."""
    scenario = run["scenario"]
    for key in ("tokens", "requests", "events", "callers"):
        if key not in run:
            raise ValueError(f"timeline.json has no {key!r}")
    width, left, right = 1000, 150, 980
    row_names = ["token server", "tokens (odd)", "tokens (even)", *EVENT_ROWS, "callers"]
    panel_h = 24 + len(row_names) * ROW_H + 40
    failed = sum(1 for c in run["callers"] if c["outcome"] == "failed")
    served = len(run["callers"]) - failed
    grace = sum(1 for c in run["callers"] if c["outcome"] == "grace")
    notes = wrap(
        f"Recorded by `cargo run -p tokenwell --example timeline` (tokenwell {run.get('versions', {}).get('tokenwell', '?')}): "
        f"the engine on a virtual clock, deterministic (seed {scenario['seed']}), the same on every machine. "
        f"A scripted token server grants {scenario['lifetime_s']} s tokens in {scenario['latency_ms']} ms and answers 503 "
        f"from {scenario['outage_ms'][0] / 1000:g} s to {scenario['outage_ms'][1] / 1000:g} s; a caller asks every "
        f"{scenario['caller_every_ms'] / 1000:g} s; refresh margin {scenario['refresh_margin_ms'] / 1000:g} s, backoff "
        f"{scenario['backoff_initial_ms'] / 1000:g}–{scenario['backoff_max_ms'] / 1000:g} s with full jitter, outage "
        f"grace ends {scenario['outage_grace_safety_ms'] / 1000:g} s before expiry. Open the SVG on its own and hover a mark for its exact time.",
        width - 32, 11,
    )
    height = 70 + 2 * panel_h + 10 + 16 + 2 * 18 + 16 + 15 * len(notes)
    svg = Svg(width, height, "tokenwell: one recorded run with an outage")
    verdict = f"all {served} callers served" if failed == 0 else f"{failed} of {len(run['callers'])} callers failed"
    svg.text(16, 28, f"One recorded run: refresh ahead, an outage, backoff retries; {verdict}", size=18,
             font_weight="bold")
    svg.text(16, 48, f"{len(run['tokens'])} tokens, {len(run['requests'])} token requests "
             f"({sum(1 for r in run['requests'] if r['status'] != 200)} answered 503), "
             f"{grace} callers served in outage grace", size=12, fill=MUTED)
    end = scenario["run_ms"]
    y = _draw_panel(Panel(svg, left, right, 70, 0, end), run, "The whole run", row_names)
    failures = [e["at"] for e in run["events"] if e["type"] in ("refresh_failed", "outage_grace_served")]
    outage = scenario["outage_ms"]
    z0 = max(min([outage[0], *failures]) - 3000, 0)
    recovered = [t["received_at"] for t in run["tokens"] if t["received_at"] >= (max(failures) if failures else outage[1])]
    z1 = min((min(recovered) if recovered else outage[1]) + 4000, end)
    y = _draw_panel(Panel(svg, left, right, y + 10, z0, z1), run,
                    f"Zoom on the outage: {z0 / 1000:.1f} s to {z1 / 1000:.1f} s", row_names)
    # Legend, wrapped to the width.
    x, y = 16.0, y + 16
    legend: List[Tuple[str, str, str]] = [
        ("rect", TOKEN_LIFE, "token usable"), ("rect", TOKEN_MARGIN, "refresh margin"),
        ("path", INK, "refresh-ahead point"), ("circle", "#38a169", "answered 200"),
        ("cross", "#e53e3e", "answered 503"),
        *(("circle", colour, label) for _, label, colour in OUTCOMES),
    ]
    for shape, colour, label in legend:
        if shape == "rect":
            svg.rect(x, y - 9, 14, 10, colour)
        elif shape == "path":
            svg.element("path", d=f"M{x + 3:.1f},{y - 9:.1f} L{x + 11:.1f},{y - 9:.1f} L{x + 7:.1f},{y - 3:.1f} Z",
                        fill=colour)
        else:
            _marker(svg, shape, x + 7, y - 4, colour, label)
        svg.text(x + 18, y, label, size=11)
        x += 26 + text_width(label, 11)
        if x > width - 160:
            x, y = 16.0, y + 18
    _footer(svg, y + 24, notes)
    return svg.render()


def main(argv: Optional[Sequence[str]] = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=repo / "bench-results", help="the JSON files (bench-results/)")
    parser.add_argument("--out", type=Path, default=repo / "docs" / "charts", help="where the SVGs go (docs/charts/)")
    parser.add_argument("--note", default="", help="a sentence added to the measured charts' captions")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    measured = [h for h in HOSTS if h in results]
    if not measured:
        print(f"charts: no bench results in {args.results} (run make bench)", file=sys.stderr)
        return 1
    dated = max(datetime.datetime.fromtimestamp((args.results / f"{h}.json").stat().st_mtime, datetime.timezone.utc)
                for h in measured)
    note = f"Run of {dated:%Y-%m-%d}. {args.note}".strip()
    args.out.mkdir(parents=True, exist_ok=True)
    charts = {"cache-hit.svg": cache_hit_chart(results, note), "stampede.svg": stampede_chart(results, note)}
    if "timeline" in results:
        charts["timeline.svg"] = timeline_chart(results["timeline"])
    for name, svg in charts.items():
        (args.out / name).write_text(svg)
        print(f"charts: wrote {args.out / name}")
    missing = [h for h in HOSTS if h not in results]
    if missing:
        print(f"charts: no results for {', '.join(missing)}: left out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
