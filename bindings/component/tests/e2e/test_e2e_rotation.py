"""End-to-end: secret rotation in Ory Hydra, in the Kubernetes order, while a
worker calls ``get-token`` all the time: the mounted secret file gets
``[new, old]``, the operator changes the client's secret with
``hydra update client --file``, then the file drops the old secret. Zero
failed calls.

The provider component has no filesystem: its host watches the mounted file
and hands a changed list to ``replace-secrets`` (``SecretFileHost`` below, one
read per call here). The worker and the host share one thread, since a
provider instance runs one call at a time; the ``hydra`` CLI runs as a child
process meanwhile, so the calls never stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, List, Optional

from conftest import NOTES
from e2e_host import (
    SERVERS,
    SKIP_WITHOUT_SERVERS,
    Provider,
    TokenFailure,
    hydra_admin_url,
    hydra_bin,
    hydra_cli,
    poll_until,
)
from wasm_host import config

pytestmark = SKIP_WITHOUT_SERVERS


def read_secrets(path: Path) -> List[str]:
    """The secrets of a mounted secret file: one per line, current first (the
    line break is the only separator: spaces belong to the secret)."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def mount(path: Path, *secrets: str) -> None:
    """Replaces the file atomically, as the kubelet swaps a secret mount."""
    staged = path.with_name(f".{path.name}.new")
    staged.write_text("".join(f"{s}\n" for s in secrets), encoding="utf-8")
    os.replace(staged, path)


class SecretFileHost:
    """What a component host does for a provider whose secret is a mounted
    file: re-read it, and call ``replace-secrets`` when it changed."""

    def __init__(self, provider: Provider, path: Path) -> None:
        self.provider = provider
        self.path = path
        self.current = read_secrets(path)
        self.replaced = 0

    def check(self) -> None:
        secrets = read_secrets(self.path)
        if secrets != self.current:
            self.provider.replace_secrets(secrets)
            self.current = secrets
            self.replaced += 1


def test_secret_rotation_in_hydra_has_zero_failed_calls(tmp_path: Path) -> None:
    admin = hydra_admin_url()
    old, new = f"old:+% {os.getpid()}", f"new&= é{os.getpid()}"
    client_doc = tmp_path / "client.json"

    def write_client(secret: str) -> None:
        client_doc.write_text(
            json.dumps(
                {
                    "client_name": "Rotating Worker (component)",
                    "client_secret": secret,
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "scope": "billing:read",
                    "client_credentials_grant_access_token_lifespan": "4s",
                }
            ),
            encoding="utf-8",
        )

    write_client(old)
    created = json.loads(
        hydra_cli("create", "client", "--endpoint", admin, "--format", "json", "--file", str(client_doc))
    )
    client_id = created["client_id"]
    secret_file = tmp_path / "client-secret"
    mount(secret_file, old)

    provider = Provider(
        config(
            token_url=SERVERS["hydra"]["token_url"],
            client_id=client_id,
            client_secrets=read_secrets(secret_file),
            scopes=["billing:read"],
        )
    )
    host = SecretFileHost(provider, secret_file)
    first = provider.get_token()
    lifetime = first["expires_at"] - first["received_at"]
    assert lifetime <= 4_000, f"the rotating client's tokens live {lifetime} ms"

    failures: List[str] = []
    calls = [0]

    def work() -> None:
        """One turn of the worker: the host's file check, then a call."""
        host.check()
        try:
            provider.get_token()
        except TokenFailure as failure:
            failures.append(str(failure))
        calls[0] += 1
        time.sleep(0.005)  # the pace of a busy worker, not synchronization

    def work_until(what: str, condition: Callable[[], bool]) -> None:
        poll_until(what, condition, 30, work)

    def acquired_since(mark: int) -> int:
        """Tokens from fetches started at or after event ``mark`` (a fetch in
        flight before a step may still finish with the old state)."""
        started = {e["fetch_id"] for e in provider.of_type("refresh_started", mark)}
        return sum(e["fetch_id"] in started for e in provider.of_type("token_acquired", mark))

    def replaced_since(mark: int) -> Optional[int]:
        return next((i for i, e in enumerate(provider.events) if i >= mark and e["type"] == "secrets_replaced"), None)

    def fallbacks_since(mark: int) -> List[str]:
        return [f"{e['from_index']}->{e['to_index']}" for e in provider.of_type("secret_fallback", mark)]

    # 1. The mounted file gets [new, old]; the next refresh tries the new
    #    secret first, Hydra refuses it, and the old one works.
    mark = len(provider.events)
    mount(secret_file, new, old)
    work_until("the [new, old] secret file to be read", lambda: replaced_since(mark) is not None)
    replaced = replaced_since(mark)
    assert replaced is not None and provider.events[replaced]["count"] == 2
    work_until("a token with [new, old]", lambda: acquired_since(replaced) >= 1)
    assert fallbacks_since(replaced) == ["0->1"], "Hydra refused the new secret, the old one was used"

    # 2. The operator rotates the secret in Hydra; the worker keeps calling
    #    while the CLI runs.
    rotated = len(provider.events)
    write_client(new)
    update = subprocess.Popen(
        [hydra_bin(), "update", "client", client_id, "--endpoint", admin, "--format", "json",
         "--file", str(client_doc)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        work_until("hydra update client", lambda: update.poll() is not None)
    finally:
        if update.poll() is None:
            update.kill()
        out, err = update.communicate(timeout=30)
    assert update.returncode == 0, f"hydra update client failed: {err[-2000:]}"
    assert json.loads(out)["client_id"] == client_id
    mark = len(provider.events)
    work_until("two tokens after the rotation", lambda: acquired_since(mark) >= 2)
    assert fallbacks_since(rotated) == ["1->0"], "the remembered old secret was refused, the new one was used (once)"

    # 3. The file drops the old secret.
    dropped = len(provider.events)
    mount(secret_file, new)
    work_until("the [new] secret file to be read", lambda: replaced_since(dropped) is not None)
    replaced = replaced_since(dropped)
    assert replaced is not None and provider.events[replaced]["count"] == 1
    work_until("two tokens with only the new secret", lambda: acquired_since(replaced) >= 2)
    assert all(e["secret_index"] == 0 for e in provider.of_type("token_acquired", replaced))
    assert fallbacks_since(replaced) == []

    assert not failures, f"{len(failures)} of {calls[0]} calls failed: {failures[:3]}"
    assert calls[0] > 100, f"the worker made only {calls[0]} calls"
    assert host.replaced == 2
    fallbacks = len(provider.of_type("secret_fallback"))
    assert fallbacks >= 2, f"{fallbacks} secret fallback(s): expected new->old before and old->new after the rotation"
    texts = [json.dumps(e, ensure_ascii=False) for e in provider.events]
    assert not any(old in text or new in text for text in texts), "a secret is in an event"
    tokens = len(provider.of_type("token_acquired"))
    NOTES.append(
        f"rotation, hydra: {calls[0]} calls, 0 failures, {tokens} tokens of {lifetime} ms, {fallbacks} secret fallbacks"
    )
