"""The on-disk token cache (``cache_path``): file safety, refused files, and
the cron case across real processes against a loopback token endpoint."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from tokenwell import ServiceAccount

from conftest import START, CountingTransport, EventLog, FakeClock, TokenServer

CRON = Path(__file__).resolve().parents[3] / "examples" / "python-cron" / "cron.py"
SECRET = "cron-s3cr3t:+%&"


def account(transport: Any, clock: FakeClock, path: Path, **kwargs: Any) -> ServiceAccount:
    kwargs.setdefault("client_id", "billing-cron")
    return ServiceAccount(token_url="http://127.0.0.1:9/oauth2/token", client_secret=SECRET, transport=transport,
                          clock=clock, cache_path=path, **kwargs)


def test_snapshot_is_written_0600_atomically_without_the_secret(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "deep" / "token.json"
    transport = CountingTransport()
    a = account(transport, clock, path)
    assert a.get_token() == "at-1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert SECRET not in text and "cron-s3cr3t" not in text
    doc = json.loads(text)
    assert doc["access_token"] == "at-1" and doc["fingerprint"] == a.engine.fingerprint
    assert sorted(p.name for p in path.parent.iterdir()) == ["token.json", "token.json.lock"]  # no temp files left

    # A second account (another process, another run) reuses it: no request.
    b = account(transport, clock, path)
    assert b.get_token() == "at-1" and transport.count == 1


def test_corrupt_foreign_and_insecure_files_are_ignored_with_an_event(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    path.write_text("{not json")
    path.chmod(0o600)
    log = EventLog()
    transport = CountingTransport()
    a = account(transport, clock, path, on_event=log)
    assert a.get_token() == "at-1"
    ignored = [e for e in log.events if e["type"] == "cache_ignored"]
    assert [e["reason"] for e in ignored] == ["corrupt"]
    assert json.loads(path.read_text())["access_token"] == "at-1"  # replaced by a good snapshot

    log2 = EventLog()
    other = account(transport, clock, path, client_id="another-client", on_event=log2)
    assert other.get_token() == "at-2"
    assert [e["reason"] for e in log2.events if e["type"] == "cache_ignored"] == ["fingerprint_mismatch"]

    log3 = EventLog()
    path.chmod(0o666)  # writable by anyone: a token planted there must not be sent
    third = account(transport, clock, path, client_id="another-client", on_event=log3)
    assert third.get_token() == "at-3"
    assert [e["reason"] for e in log3.events if e["type"] == "cache_ignored"] == ["insecure_permissions"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_expired_snapshot_is_refetched(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    transport = CountingTransport(lifetime=120)
    account(transport, clock, path).get_token()
    clock.advance(200)
    log = EventLog()
    assert account(transport, clock, path, on_event=log).get_token() == "at-2"
    assert [e.get("reason") for e in log.events if e["type"] == "cache_ignored"] == ["expired"]


def test_invalidated_token_is_not_loaded_again(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    transport = CountingTransport()
    a = account(transport, clock, path)
    token = a.get_token()
    assert a.invalidate(token) == "invalidated"
    assert not path.exists()
    assert account(transport, clock, path).get_token() == "at-2"


def cron_env(server: TokenServer, cache: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("CLIENT_ID", "CLIENT_SECRET", "TOKEN_URL"))}
    env.update(
        CLIENT_ID="billing-cron",
        CLIENT_SECRET=SECRET,
        TOKEN_URL=server.url,
        SCOPE="billing:read billing:write",
        AUDIENCE="https://billing.example",
        TOKEN_CACHE_PATH=str(cache),
    )
    return env


def run_cron(env: Dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, str(CRON)], env=env, capture_output=True, text=True, timeout=60)


def test_15_cron_runs_within_one_token_life_make_one_request(
    tmp_path: Path, token_server: Callable[..., TokenServer]
) -> None:
    server = token_server(lifetime=3600)
    env = cron_env(server, tmp_path / "cache" / "cron.json")
    outputs: List[str] = []
    for _ in range(15):
        done = run_cron(env)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert server.count == 1
    assert outputs[0].startswith("token: fetched a new token")
    assert all(out.startswith("token: reused the cached token") for out in outputs[1:])
    for out in outputs:
        assert SECRET not in out and "at-1" not in out


def test_crons_starting_together_make_one_request(tmp_path: Path, token_server: Callable[..., TokenServer]) -> None:
    server = token_server(lifetime=3600)
    env = cron_env(server, tmp_path / "cron.json")
    processes = [
        subprocess.Popen([sys.executable, str(CRON)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    results = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, results
    assert server.count == 1
    fetched = [out for out, _ in results if out.startswith("token: fetched")]
    assert len(fetched) == 1


def test_cron_fails_closed(tmp_path: Path, token_server: Callable[..., TokenServer]) -> None:
    server = token_server(accept_secrets=["the-right-one"])
    env = cron_env(server, tmp_path / "cron.json")
    done = run_cron(env)
    assert done.returncode == 1
    assert "no token (invalid_client)" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert not (tmp_path / "cron.json").exists()

    env.pop("CLIENT_ID")
    done = run_cron(env)
    assert done.returncode == 78 and "CLIENT_ID" in done.stderr

    env["CLIENT_ID"] = "billing-cron"
    env["TOKEN_URL"] = "http://127.0.0.1:1/oauth2/token"  # nothing listens there
    done = run_cron(env)
    assert done.returncode == 75 and "no token (transport)" in done.stderr


def test_stampede_with_a_cache_file_makes_one_request(tmp_path: Path, clock: FakeClock) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    transport = CountingTransport()
    transport.gate = threading.Event()
    a = account(transport, clock, tmp_path / "token.json")
    with ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(a.get_token) for _ in range(50)]
        assert transport.entered.wait(30)
        transport.gate.set()
        assert {f.result(30) for f in futures} == {"at-1"}
    assert transport.count == 1


def test_asyncio_stampede_with_a_cache_file_makes_one_request(tmp_path: Path, clock: FakeClock) -> None:
    import asyncio

    requests: List[Any] = []

    async def transport(request: Any) -> Any:
        requests.append(request)
        await asyncio.sleep(0)
        from tokenwell import TransportResponse

        from conftest import token_body

        return TransportResponse(200, [], token_body(f"at-{len(requests)}"))

    path = tmp_path / "token.json"

    async def main() -> List[str]:
        a = account(transport, clock, path)
        return await asyncio.gather(*(a.get_token_async() for _ in range(1000)))

    assert set(asyncio.run(main())) == {"at-1"}
    assert len(requests) == 1
    # A second process's worth of tasks finds the file and sends nothing.
    assert set(asyncio.run(main())) == {"at-1"}
    assert len(requests) == 1
