"""End-to-end: 5-second tokens (the ``short_ttl`` clients) under continuous
``get-token`` calls for ``TOKENWELL_E2E_SOAK_SECONDS`` (default 30), on both
servers at once.

A provider instance runs one call at a time, so each server gets one caller
(its own instance, in its own thread). Every call must succeed, and every
refresh after the first must be ``ahead``: ``get-token`` returned the valid
token and left the refresh with ``wasi:http``, so no call waited on the
network after the first token.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import List

from conftest import NOTES
from e2e_host import (
    SERVER_NAMES,
    SKIP_WITHOUT_SERVERS,
    SOAK_SECONDS,
    TokenFailure,
    check_soak,
    open_fetches,
    poll_until,
    provider_for,
)

pytestmark = SKIP_WITHOUT_SERVERS


def soak(server: str, seconds: int) -> str:
    provider = provider_for(server, "short_ttl")
    first = provider.get_token()
    lifetime = first["expires_at"] - first["received_at"]
    assert lifetime <= 5_000, f"{server}: short_ttl token lives {lifetime} ms"
    failures: List[str] = []
    latencies: List[float] = []

    def call() -> None:
        began = time.perf_counter()
        try:
            provider.get_token()
        except TokenFailure as failure:
            failures.append(str(failure))
        latencies.append(time.perf_counter() - began)
        time.sleep(0.001)  # the pace of a busy worker, not synchronization

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        call()
    calls = len(latencies)
    # A refresh sent just before the deadline is collected by a later call:
    # keep calling until it has been reported.
    poll_until("the last refresh to be collected", lambda: open_fetches(provider.events) == 0, 15, call)
    assert not failures, f"{server}: {len(failures)} of {len(latencies)} calls failed: {failures[:3]}"

    acquired = check_soak(server, provider.events, seconds, lifetime)
    slowest = sorted(latencies)
    return (
        f"soak, {server}: {calls} calls in {seconds} s, {acquired} tokens of {lifetime} ms, 0 failures, "
        f"every refresh ahead; get-token median {slowest[len(slowest) // 2] * 1e3:.2f} ms, "
        f"p99 {slowest[int(len(slowest) * 0.99)] * 1e3:.2f} ms, max {slowest[-1] * 1e3:.1f} ms"
    )


def test_five_second_tokens_are_refreshed_ahead_on_both_servers_at_once() -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SERVER_NAMES)) as pool:
        outcomes = [pool.submit(soak, server, SOAK_SECONDS) for server in SERVER_NAMES]
        NOTES.extend(outcome.result() for outcome in outcomes)
