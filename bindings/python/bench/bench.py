"""``make bench`` (``python bench/bench.py``): the cost of a cache hit next to a
bare Python floor, the stampede request counts, and the cold first token sync
against asyncio, from one run. Not part of the installed package.

- cache hit: ``account.get_token()`` with a valid token (stays in Python);
- floor: a plain function returning a cached string after a ``time()`` compare,
  the least any cached lookup can cost;
- the ratio of the two (target <= 1.5);
- what one native ``poll`` costs, for comparison (a hit never pays it);
- token requests made by 200 threads and by 1000 asyncio tasks asking at
  once, cold and at the refresh-ahead point, against a loopback token endpoint
  (``loopback.py``: ``http.server`` on 127.0.0.1, stopped at the end);
- the cold first token of a new account, ``get_token()`` against
  ``await get_token_async()``, on that endpoint (the first of the process,
  which pays the imports, and the median of the next ones).

``--strict`` exits non-zero if the ratio misses its target; any stampede count
other than 1 always does. The numbers are also written as JSON to
``$TOKENWELL_BENCH_RESULTS/python.json`` (default ``bench-results/`` at the
repo root), which ``make bench-charts`` draws.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import threading
import statistics
import subprocess
import timeit
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import time
from typing import Any, Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import LoopbackTokenServer  # noqa: E402

from tokenwell import ENGINE_VERSION, ServiceAccount, TokenCache, TransportResponse  # noqa: E402

THREADS = 200
TASKS = 1000
TARGET = 1.5


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time() + self.offset


def _best_ns(stmt: str, env: Dict[str, Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat)) / number * 1e9


def measure_hit(number: int, repeat: int) -> Dict[str, float]:
    body = json.dumps({"access_token": "at-bench", "token_type": "Bearer", "expires_in": 86400}).encode()
    account = ServiceAccount(
        token_url="http://127.0.0.1:9/oauth2/token", client_id="bench", client_secret="bench-secret",
        transport=lambda request: TransportResponse(200, [], body),
    )
    token = account.get_token()
    deadline = time() + 3600

    def floor() -> str:
        if time() < deadline:
            return token
        raise AssertionError("unreachable")

    cache = TokenCache({"token_url": "https://a.example/t", "client_id": "bench", "client_secret": "bench-secret"})
    request = cache.poll(int(time() * 1000)).request
    assert request is not None
    cache.handle_response(request.fetch_id, 200, [], body, int(time() * 1000))
    env = {"account": account, "floor": floor, "cache": cache, "time": time}
    hits: List[float] = []
    floors: List[float] = []
    for _ in range(repeat):  # interleaved, so drift on a busy machine hits both alike
        hits.append(_best_ns("account.get_token()", env, number, 1))
        floors.append(_best_ns("floor()", env, number, 1))
    native = _best_ns("cache.poll(int(time() * 1000))", env, max(number // 10, 1000), repeat)
    hit, base = min(hits), min(floors)
    return {"hit_ns": hit, "floor_ns": base, "ratio": hit / base, "native_poll_ns": native}


def _threads(n: int, call: Callable[[], str], arrived: Callable[[], None]) -> List[str]:
    barrier = threading.Barrier(n)

    def one(_: int) -> str:
        barrier.wait(30)
        arrived()
        return call()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def _open_when(count: int, server: LoopbackTokenServer) -> Callable[[], None]:
    seen = [0]
    lock = threading.Lock()

    def arrived() -> None:
        with lock:
            seen[0] += 1
            if seen[0] == count:
                server.gate.set()

    return arrived


def _wait_refreshed(acquired: threading.Event) -> None:
    if not acquired.wait(30):
        raise RuntimeError("the background refresh did not finish")


def stampede_threads() -> Dict[str, int]:
    out: Dict[str, int] = {}
    server = LoopbackTokenServer()
    try:
        clock = _Clock()
        acquired = threading.Event()
        account = ServiceAccount(
            token_url=server.url, client_id="bench", client_secret="bench-secret", clock=clock,
            on_event=lambda e: acquired.set() if e["type"] == "token_acquired" else None,
        )
        server.gate.clear()
        tokens = _threads(THREADS, account.get_token, _open_when(THREADS, server))
        assert len(set(tokens)) == 1
        out["cold"] = server.count
        acquired.clear()
        clock.offset = 3600 * 0.85  # past the refresh-ahead point, inside the token's life
        before = server.count
        server.gate.clear()
        tokens = _threads(THREADS, account.get_token, lambda: None)
        server.gate.set()
        _wait_refreshed(acquired)
        out["refresh_point"] = server.count - before
    finally:
        server.close()
    return out


def stampede_tasks() -> Dict[str, int]:
    out: Dict[str, int] = {}
    server = LoopbackTokenServer()
    try:
        clock = _Clock()

        async def main() -> None:
            acquired = asyncio.Event()
            account = ServiceAccount(
                token_url=server.url, client_id="bench", client_secret="bench-secret", clock=clock,
                on_event=lambda e: acquired.set() if e["type"] == "token_acquired" else None,
            )
            started = [0]

            async def one() -> str:
                started[0] += 1
                if started[0] == TASKS:
                    server.gate.set()
                return await account.get_token_async()

            server.gate.clear()
            tokens = await asyncio.gather(*(one() for _ in range(TASKS)))
            assert len(set(tokens)) == 1
            out["cold"] = server.count
            acquired.clear()
            clock.offset = 3600 * 0.85
            before = server.count
            started[0] = -TASKS  # the gate stays open this time
            await asyncio.gather(*(one() for _ in range(TASKS)))
            await asyncio.wait_for(acquired.wait(), 30)
            out["refresh_point"] = server.count - before

        asyncio.run(main())
    finally:
        server.close()
    return out


def cold_tokens(mode: str, accounts: int) -> List[float]:
    """Seconds to the first token of ``accounts`` new accounts, one after the
    other, in this process (``mode``: ``sync`` or ``async``)."""
    from time import perf_counter

    server = LoopbackTokenServer()
    times: List[float] = []
    try:
        if mode == "sync":
            for _ in range(accounts):
                with ServiceAccount(token_url=server.url, client_id="bench", client_secret="bench-secret") as account:
                    started = perf_counter()
                    account.get_token()
                    times.append(perf_counter() - started)
        else:

            async def run() -> None:
                for _ in range(accounts):
                    async with ServiceAccount(
                        token_url=server.url, client_id="bench", client_secret="bench-secret"
                    ) as account:
                        started = perf_counter()
                        await account.get_token_async()
                        times.append(perf_counter() - started)

            asyncio.run(run())
    finally:
        server.close()
    return times


def cold_first_token(rounds: int, accounts: int) -> Dict[str, Dict[str, float]]:
    """``cold_tokens`` in fresh processes, sync and async taking turns: the
    median over rounds of the process's first token and of the later ones (ms)."""
    seen: Dict[str, Dict[str, List[float]]] = {m: {"first": [], "later": []} for m in ("sync", "async")}
    for _ in range(rounds):
        for mode in ("sync", "async"):
            done = subprocess.run(
                [sys.executable, __file__, "--cold-run", mode, str(accounts)],
                capture_output=True, text=True, check=True, timeout=300,
            )
            times = json.loads(done.stdout)
            seen[mode]["first"].append(times[0] * 1e3)
            seen[mode]["later"].append(statistics.median(times[1:]) * 1e3)
    return {mode: {k: statistics.median(v) for k, v in parts.items()} for mode, parts in seen.items()}


def _write_results(hit: Dict[str, float], threads: Dict[str, int], tasks: Dict[str, int], cold: Any) -> None:
    default = Path(__file__).resolve().parents[3] / "bench-results"
    out = Path(os.environ.get("TOKENWELL_BENCH_RESULTS") or default)
    out.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "")
    results = {
        "host": "python",
        "versions": {"tokenwell": ENGINE_VERSION, "runtime": f"Python {platform.python_version()}"},
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "os": sys.platform, "arch": platform.machine()},
        "cache_hit": [{"label": "get_token()", "hit_ns": hit["hit_ns"], "floor_ns": hit["floor_ns"],
                       "floor_label": "cached str after time() check", "poll_ns": hit["native_poll_ns"]}],
        "stampede": [
            {"label": f"{THREADS} threads, cold", "callers": THREADS, "requests": threads["cold"]},
            {"label": f"{THREADS} threads, at the refresh point", "callers": THREADS, "requests": threads["refresh_point"]},
            {"label": f"{TASKS} asyncio tasks, cold", "callers": TASKS, "requests": tasks["cold"]},
            {"label": f"{TASKS} asyncio tasks, at the refresh point", "callers": TASKS, "requests": tasks["refresh_point"]},
        ],
        "cold_token_ms": cold,
    }
    (out / "python.json").write_text(json.dumps(results, indent=2) + "\n")


def _cpuinfo() -> List[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=1_000_000, help="calls per timing (default 1000000)")
    parser.add_argument("--repeat", type=int, default=7, help="timings, best kept (default 7)")
    parser.add_argument("--strict", action="store_true", help=f"fail if the ratio is above {TARGET}")
    parser.add_argument("--cold-rounds", type=int, default=5, help="fresh processes per mode for the cold token (5)")
    parser.add_argument("--cold-run", nargs=2, metavar=("MODE", "ACCOUNTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_run:
        print(json.dumps(cold_tokens(args.cold_run[0], int(args.cold_run[1]))))
        return 0

    print(f"tokenwell {ENGINE_VERSION} bench: Python {platform.python_version()} on {platform.machine()}")
    hit = measure_hit(args.number, args.repeat)
    print(f"cache hit  account.get_token()          {hit['hit_ns']:8.1f} ns/call")
    print(f"floor      cached str after time() check {hit['floor_ns']:8.1f} ns/call")
    verdict = "ok" if hit["ratio"] <= TARGET else "above target"
    print(f"ratio      hit / floor                   {hit['ratio']:8.2f}   (target <= {TARGET}: {verdict})")
    print(f"native     TokenCache.poll() (not on the hit path) {hit['native_poll_ns']:8.1f} ns/call")
    threads = stampede_threads()
    tasks = stampede_tasks()
    rows = [
        (f"{THREADS} threads, cold", threads["cold"]),
        (f"{THREADS} threads, at the refresh point", threads["refresh_point"]),
        (f"{TASKS} asyncio tasks, cold", tasks["cold"]),
        (f"{TASKS} asyncio tasks, at the refresh point", tasks["refresh_point"]),
    ]
    for label, count in rows:
        print(f"stampede   {label:<40} {count} token request{'s' if count != 1 else ''}")
    cold = cold_first_token(args.cold_rounds, 20)
    for mode in ("sync", "async"):
        label = "get_token()" if mode == "sync" else "await get_token_async()"
        print(
            f"cold token {label:<24} first of the process {cold[mode]['first']:6.1f} ms, "
            f"a new account after that {cold[mode]['later']:5.1f} ms (medians of {args.cold_rounds} processes)"
        )
    _write_results(hit, threads, tasks, cold)
    failed = any(count != 1 for _, count in rows) or (args.strict and hit["ratio"] > TARGET)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
