"""Calls per second through the engine component (wasmtime-py host), each
against a baseline measured in the same run: ``next-wakeup``, the cheapest
call across the component boundary. ``poll`` on a cache hit converts a whole
token record back to the host.

    make bench

The numbers are also written as JSON to ``$TOKENWELL_BENCH_RESULTS/component.json``
(default ``bench-results/`` at the repo root), which ``make bench-charts`` draws.
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

from wasm_host import EngineInstance, is_err

N = 20_000


def rate(call, n: int = N) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - start)


def main() -> None:
    engine = EngineInstance()
    cache = engine.from_json('{"token_url":"https://a.example/t","client_id":"c","client_secret":"s"}', 7)
    now = 1_700_000_000_000
    request = cache.poll(now).payload
    failed, _ = is_err(
        cache.handle_response(getattr(request, "fetch-id"), 200, [],
                              b'{"access_token":"at","token_type":"Bearer","expires_in":3600}', now)
    )
    assert not failed
    baseline = rate(cache.next_wakeup)
    hit = rate(lambda: cache.poll(now + 1000))
    print(f"engine component, wasmtime-py host, {N} calls each")
    print(f"  baseline next-wakeup : {baseline:10.0f} calls/s")
    print(f"  poll (cache hit)     : {hit:10.0f} calls/s  ({baseline / hit:.1f}x the baseline's cost)")
    write_results(hit_ns=1e9 / hit, floor_ns=1e9 / baseline)


def write_results(hit_ns: float, floor_ns: float) -> None:
    repo = Path(__file__).resolve().parents[3]
    out = Path(os.environ.get("TOKENWELL_BENCH_RESULTS") or repo / "bench-results")
    out.mkdir(parents=True, exist_ok=True)
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    except OSError:
        cpu = ""
    tokenwell = next((l.split('"')[1] for l in open(repo / "Cargo.toml") if l.startswith("version =")), "")
    results = {
        "host": "component",
        "versions": {"tokenwell": tokenwell,
                     "runtime": f"wasmtime-py {version('wasmtime')}, Python {platform.python_version()}"},
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "os": platform.system().lower(), "arch": platform.machine()},
        "cache_hit": [{"label": "poll() through the component", "hit_ns": hit_ns, "floor_ns": floor_ns,
                       "floor_label": "next-wakeup, the cheapest call across the boundary"}],
    }
    (out / "component.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
