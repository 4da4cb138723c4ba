"""``client_secret_file``: the file is re-read when it changes, so a rotated
(Kubernetes-mounted) secret is picked up without a restart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from tokenwell import InvalidClientError, ServiceAccount

from conftest import EventLog, FakeClock, TokenServer


def write(path: Path, text: str) -> None:
    """Replace the file the way Kubernetes does: a new file swapped in."""
    temporary = path.with_suffix(".new")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_rotated_secret_lifts_the_hold_without_a_restart(
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
    with pytest.raises(InvalidClientError):  # held: the engine sends nothing more
        account.get_token()
    assert server.count == 1

    write(secret_file, "rotated-secret\n")
    assert account.get_token() == "at-2"
    assert server.count == 2
    replaced = [e for e in log.events if e["type"] == "secrets_replaced"]
    assert replaced and replaced[0]["hold_lifted"] is True


def test_unreadable_or_empty_rotation_keeps_the_old_secrets(
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
    errors = [e for e in log.events if e["type"] == "secret_file_error"]
    assert errors and errors[0]["field"] == "client_secret_file"
    assert "good" not in repr(log.events)


def test_file_is_only_read_when_a_fetch_is_needed(
    tmp_path: Path, token_server: Callable[..., TokenServer], clock: FakeClock
) -> None:
    server = token_server(accept_secrets=["one", "two"])
    secret_file = tmp_path / "client-secret"
    write(secret_file, "one")
    account = ServiceAccount(token_url=server.url, client_id="c", client_secret_file=secret_file, clock=clock)
    assert account.get_token() == "at-1"
    write(secret_file, "two")
    assert account.get_token() == "at-1"  # the token is still valid: nothing to re-read yet
    clock.advance(3600)
    assert account.get_token() == "at-2"
    from conftest import basic_credentials

    assert basic_credentials(server.requests[-1][0])[1] == "two"
