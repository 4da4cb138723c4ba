"""``client_secret_file`` follows the engine's rule (``SecretFileWatch``): a
``stat`` at most once a second on the token path (cached token or not) and at
once after ``invalid_client``; a read whenever device, inode, size, mtime or
ctime changed, which catches a Kubernetes ``..data`` symlink swap. Contents go
through ``replace_secrets_from_file``; a bad or unreadable file keeps the
secrets, with the engine's ``secret_file_rejected`` event."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, List

import pytest

import tokenwell._secret_file as secret_file_module
from tokenwell import InvalidClientError, ServiceAccount

from conftest import EventLog, FakeClock, TokenServer, basic_credentials


def write(path: Path, text: str) -> None:
    """Replace the file by a rename, as most secret managers do."""
    temporary = path.with_suffix(".new")
    temporary.write_text(text)
    os.replace(temporary, path)


def secrets_sent(server: TokenServer) -> List[str]:
    return [basic_credentials(headers)[1] for headers, _ in server.requests]


def test_rotated_secret_lifts_the_hold_at_the_next_check(
    tmp_path: Path, token_server: Callable[..., TokenServer], clock: FakeClock
) -> None:
    server = token_server(accept_secrets=["rotated-secret"])
    secret_file = tmp_path / "client-secret"
    write(secret_file, "revoked-secret\n")
    log = EventLog()
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret_file=secret_file, clock=clock,
                             on_event=log)
    with pytest.raises(InvalidClientError):
        account.get_token()
    write(secret_file, "rotated-secret\n")
    with pytest.raises(InvalidClientError):  # held, and checked less than a second ago
        account.get_token()
    assert server.count == 1

    clock.advance(1)
    assert account.get_token() == "at-2"
    assert secrets_sent(server) == ["revoked-secret", "rotated-secret"]
    replaced = [e for e in log.events if e["type"] == "secrets_replaced"]
    assert replaced and replaced[0]["hold_lifted"] is True


def test_invalid_client_checks_the_file_at_once(
    tmp_path: Path, token_server: Callable[..., TokenServer], clock: FakeClock
) -> None:
    """The API refuses the token, the refresh is refused (the secret was
    rotated under us), and the file is looked at then, not a second later."""
    accepted = ["old"]
    server = token_server(accept_secrets=accepted)
    secret_file = tmp_path / "client-secret"
    write(secret_file, "old\n")
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret_file=secret_file, clock=clock)
    assert account.get_token() == "at-1"
    write(secret_file, "new\n")
    accepted[:] = ["new"]
    assert account.invalidate("at-1") == "invalidated"
    assert account.get_token() == "at-3"  # the same instant: at-2 was refused, the file re-read, at-3 issued
    assert secrets_sent(server) == ["old", "old", "new"]


def test_a_cached_token_does_not_delay_the_check(
    tmp_path: Path, token_server: Callable[..., TokenServer], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = token_server(accept_secrets=["one", "two"])
    secret_file = tmp_path / "client-secret"
    write(secret_file, "one")
    log = EventLog()
    stats: List[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(secret_file_module.os, "stat", counting_stat)
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret_file=secret_file, clock=clock,
                             on_event=log)
    assert account.get_token() == "at-1"
    before = len(stats)
    write(secret_file, "two")
    for _ in range(1000):
        assert account.get_token() == "at-1"
    assert len(stats) == before  # within the second: not even a stat
    clock.advance(1)
    assert account.get_token() == "at-1"  # the token stays; the secrets change
    assert len(stats) == before + 1
    assert log.count("secrets_replaced") == 1
    clock.advance(3600)
    assert account.get_token() == "at-2"
    assert secrets_sent(server) == ["one", "two"]


def test_a_kubernetes_symlink_swap_is_picked_up(
    tmp_path: Path, token_server: Callable[..., TokenServer], clock: FakeClock
) -> None:
    """The kubelet's layout: ``client-secret -> ..data/client-secret``,
    ``..data -> ..<timestamp>``; an update writes a new timestamped directory
    and renames a new ``..data`` symlink over the old one."""
    server = token_server(accept_secrets=["first", "second"])
    mount = tmp_path / "secret-volume"
    mount.mkdir()

    def publish(version: str, secret: str) -> None:
        directory = mount / f"..{version}"
        directory.mkdir()
        (directory / "client-secret").write_text(secret + "\n")
        staged = mount / "..data_tmp"
        staged.symlink_to(directory.name)
        os.replace(staged, mount / "..data")

    publish("2026_11_28_12_00_00.1", "first")
    (mount / "client-secret").symlink_to("..data/client-secret")
    log = EventLog()
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret_file=mount / "client-secret",
                             clock=clock, on_event=log)
    assert account.get_token() == "at-1"
    publish("2026_11_28_12_05_00.2", "second")
    clock.advance(1)
    account.get_token()
    assert log.count("secrets_replaced") == 1
    clock.advance(3600)
    assert account.get_token() == "at-2"
    assert secrets_sent(server) == ["first", "second"]


def test_a_bad_or_missing_file_keeps_the_secrets_with_the_engines_event(
    tmp_path: Path, token_server: Callable[..., TokenServer], clock: FakeClock
) -> None:
    server = token_server(accept_secrets=["good"], lifetime=120)
    secret_file = tmp_path / "client-secret"
    write(secret_file, "good")
    log = EventLog()
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret_file=secret_file, clock=clock,
                             on_event=log)
    assert account.get_token() == "at-1"
    write(secret_file, "\n")  # a half-written rotation
    clock.advance(200)
    assert account.get_token() == "at-2"  # still authenticates with the secret it had
    secret_file.unlink()
    clock.advance(200)
    assert account.get_token() == "at-3"
    rejected = [e for e in log.events if e["type"] == "secret_file_rejected"]
    assert [(e["source"], e["problem"]) for e in rejected] == [
        ("client_secret_file", "the secret file holds no secret"),
        ("client_secret_file", f"cannot read the secret file {secret_file} (ENOENT)"),
    ]
    assert "secret_file_error" not in log.types()  # every event comes from the engine
    assert "good" not in json.dumps(log.events)


def test_the_variable_names_the_file_in_events(tmp_path: Path, clock: FakeClock) -> None:
    secret_file = tmp_path / "client-secret"
    write(secret_file, "one\n")
    log = EventLog()
    account = ServiceAccount.from_env(
        environ={"CLIENT_ID": "c", "TOKEN_URL": "http://127.0.0.1:9/t",
                 "CLIENT_SECRET_FILE": str(secret_file)},
        transport=lambda request: (200, [], b'{"access_token":"at","token_type":"Bearer","expires_in":3600}'),
        clock=clock, on_event=log,
    )
    assert account.client_secret_file == str(secret_file)
    account.get_token()
    write(secret_file, " \n")
    clock.advance(1)
    account.get_token()
    rejected = [e for e in log.events if e["type"] == "secret_file_rejected"]
    assert [e["source"] for e in rejected] == ["CLIENT_SECRET_FILE"]
