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
    ignored = events_of(log, "ignored")
    assert [e["detail"] for e in ignored] == ["corrupt"]
    assert json.loads(path.read_text())["access_token"] == "at-1"  # replaced by a good snapshot

    log2 = EventLog()
    other = account(transport, clock, path, client_id="another-client", on_event=log2)
    assert other.get_token() == "at-2"
    assert [e["detail"] for e in events_of(log2, "ignored")] == ["fingerprint_mismatch"]

    log3 = EventLog()
    path.chmod(0o666)  # writable by anyone: a token planted there must not be sent
    third = account(transport, clock, path, client_id="another-client", on_event=log3)
    assert third.get_token() == "at-3"
    assert [e["detail"] for e in events_of(log3, "ignored")] == ["insecure_permissions: 0o666"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_expired_snapshot_is_refetched(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    transport = CountingTransport(lifetime=120)
    account(transport, clock, path).get_token()
    clock.advance(200)
    log = EventLog()
    assert account(transport, clock, path, on_event=log).get_token() == "at-2"
    assert [e["detail"] for e in events_of(log, "ignored")] == ["expired"]


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


# ---- hostile cache directories: nothing followed, nothing raised, nothing hangs ----------
#
# Each case is a file another user could plant in a shared cache directory, or a
# path that cannot be used at all. The account says so in an event and carries
# on without that file: get_token() still returns a token, raises nothing but
# TokenError, and never blocks. (The tests run as root, so a foreign owner is
# made with chown.)

NOBODY = 65534


def events_of(log: EventLog, problem: str) -> List[Dict[str, Any]]:
    """The engine's ``cache_file_problem`` events of one ``problem``."""
    with log.cond:
        return [e for e in log.events if e["type"] == "cache_file_problem" and e["problem"] == problem]


def ask_within(account: ServiceAccount, seconds: float, release: Callable[[], None] = lambda: None) -> str:
    """get_token() on a thread: the token, or a failure if it blocks past ``seconds``
    (then ``release`` unblocks the thread so the test run can go on)."""
    import threading

    outcome: List[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(_call(account.get_token)), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        release()
        thread.join(5)
        pytest.fail(f"get_token() blocked for more than {seconds} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return str(result)


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BaseException as error:  # handed to the test thread
        return error


def test_a_foreign_cache_file_is_ignored_and_a_foreign_lock_file_is_not_used(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    transport = CountingTransport()
    assert account(transport, clock, path).get_token() == "at-1"  # a good snapshot and lock file, ours
    os.chown(path, NOBODY, NOBODY)
    os.chown(str(path) + ".lock", NOBODY, NOBODY)
    log = EventLog()
    assert account(transport, clock, path, on_event=log).get_token() == "at-2"  # the foreign snapshot is not used
    assert [e["detail"] for e in events_of(log, "ignored")] == ["foreign_owner"]
    assert [e["detail"] for e in events_of(log, "lock_failed")] == ["foreign_owner"]
    assert events_of(log, "lock_failed")[0]["path"] == str(path) + ".lock"
    assert os.stat(str(path) + ".lock").st_uid == NOBODY  # left alone


def test_planted_symlinks_are_not_followed(tmp_path: Path, clock: FakeClock) -> None:
    elsewhere = tmp_path / "system-dir"
    elsewhere.mkdir()
    cache_dir = tmp_path / "shared"
    cache_dir.mkdir()
    path = cache_dir / "token.json"
    os.symlink(elsewhere / "planted-by-cache", path)
    os.symlink(elsewhere / "planted-by-lock", str(path) + ".lock")
    log = EventLog()
    transport = CountingTransport()
    assert ask_within(account(transport, clock, path, on_event=log), 10) == "at-1"
    assert list(elsewhere.iterdir()) == []  # nothing created where the links point
    assert [e["detail"] for e in events_of(log, "ignored")] == ["symlink"]
    assert [e["detail"] for e in events_of(log, "lock_failed")] == ["symlink"]  # once, though locked twice
    # The snapshot replaced the cache link (a rename never follows it); the lock link stays.
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.path.islink(str(path) + ".lock")


def test_a_symlinked_lock_under_asyncio_is_reported_once(tmp_path: Path, clock: FakeClock) -> None:
    import asyncio

    path = tmp_path / "token.json"
    target = tmp_path / "planted"
    os.symlink(target, str(path) + ".lock")
    log = EventLog()
    a = account(CountingTransport(), clock, path, on_event=log)
    assert asyncio.run(a.get_token_async()) == "at-1"
    assert not target.exists()
    assert [e["detail"] for e in events_of(log, "lock_failed")] == ["symlink"]


def test_a_fifo_at_the_cache_path_cannot_block(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    os.mkfifo(path, 0o600)

    def release() -> None:  # a reader blocked in open() is let through by a writer
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    log = EventLog()
    assert ask_within(account(CountingTransport(), clock, path, on_event=log), 5, release) == "at-1"
    assert [e["detail"] for e in events_of(log, "ignored")] == ["not_regular_file"]


def test_a_fifo_at_the_lock_path_cannot_block(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    os.mkfifo(str(path) + ".lock", 0o600)
    log = EventLog()
    assert ask_within(account(CountingTransport(), clock, path, on_event=log), 5) == "at-1"
    assert [e["detail"] for e in events_of(log, "lock_failed")] == ["not_regular_file"]
    assert json.loads(path.read_text())["access_token"] == "at-1"  # the cache file itself still works


def test_a_cache_path_under_a_regular_file_is_reported_not_raised(tmp_path: Path, clock: FakeClock) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    path = blocker / "token.json"
    log = EventLog()
    transport = CountingTransport()
    a = account(transport, clock, path, on_event=log)
    assert a.get_token() == "at-1"
    assert [e["problem"] for e in log.events if e["type"] == "cache_file_problem"] == ["lock_failed", "write_failed"]
    assert events_of(log, "lock_failed")[0]["detail"].startswith("unusable")
    assert a.invalidate("at-1") == "invalidated"
    assert a.get_token() == "at-2"


def test_a_directory_at_the_cache_path_is_reported_not_raised(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    path.mkdir()
    log = EventLog()
    assert account(CountingTransport(), clock, path, on_event=log).get_token() == "at-1"
    assert [e["detail"] for e in events_of(log, "ignored")] == ["not_regular_file"]
    assert [e["detail"] for e in events_of(log, "write_failed")] == ["EISDIR"]


def test_an_unwritable_cache_directory_is_reported_not_raised(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root may write anywhere, so the refusal a non-root user meets in a
    # directory it cannot write (EACCES creating the lock and the snapshot) is
    # injected at the two calls that create files.
    import errno as errno_module
    import tempfile

    import tokenwell._cache_file as cache_file_module

    real_open = os.open

    def refuse_creating(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(errno_module.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    def refuse_mkstemp(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno_module.EACCES, "Permission denied")

    monkeypatch.setattr(cache_file_module.os, "open", refuse_creating)
    monkeypatch.setattr(tempfile, "mkstemp", refuse_mkstemp)
    log = EventLog()
    assert account(CountingTransport(), clock, tmp_path / "token.json", on_event=log).get_token() == "at-1"
    assert [e["detail"] for e in events_of(log, "lock_failed")] == ["unusable: EACCES"]
    assert [e["detail"] for e in events_of(log, "write_failed")] == ["EACCES"]


def test_a_cache_file_readable_by_others_is_tightened_and_still_used(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    transport = CountingTransport()
    account(transport, clock, path).get_token()
    path.chmod(0o644)
    os.chmod(str(path) + ".lock", 0o644)
    log = EventLog()
    assert account(transport, clock, path, on_event=log).get_token() == "at-1"  # no new request
    assert transport.count == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(path) + ".lock").st_mode) == 0o600
    assert [e["detail"] for e in events_of(log, "permissions_tightened")] == ["0o644"]


def test_a_hard_linked_cache_file_is_neither_used_nor_chmodded(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "token.json"
    transport = CountingTransport()
    account(transport, clock, path).get_token()
    other = tmp_path / "someone-elses-file"
    os.link(path, other)  # as if a system file had been linked in under the cache's name
    other.chmod(0o644)
    log = EventLog()
    assert account(transport, clock, path, on_event=log).get_token() == "at-2"
    assert [e["detail"] for e in events_of(log, "ignored")] == ["hard_linked"]
    assert stat.S_IMODE(other.stat().st_mode) == 0o644
