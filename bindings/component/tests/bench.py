"""Calls per second through the engine component (wasmtime-py host), each
against a baseline measured in the same run: ``next-wakeup``, the cheapest
call across the component boundary. ``poll`` on a cache hit converts a whole
token record back to the host.

    make bench
"""

from __future__ import annotations

import time

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


if __name__ == "__main__":
    main()
