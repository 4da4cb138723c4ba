"""The provider component against the real authorization servers described by
``$TOKENWELL_SERVERS`` (tests/integration/servers/with-servers.sh): the
servers, the clients, and a provider instance configured for one of them.

Every provider here is a fresh instance of ``dist/tokenwell-provider.wasm``
in wasmtime (wasmtime-py, with its ``wasi:http``): the component does its own
HTTP to the server. The host only calls ``configure``, ``get-token``,
``replace-secrets`` and ``drain-events``.

Without ``TOKENWELL_SERVERS`` the suite is skipped, unless
``TOKENWELL_REQUIRE_SERVERS=1``: then importing this module fails the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from wasm_host import REPO, ProviderInstance, canonical_config_error, canonical_error, canonical_token, config, is_err

SERVERS_FILE = os.environ.get("TOKENWELL_SERVERS")
if not SERVERS_FILE and os.environ.get("TOKENWELL_REQUIRE_SERVERS") == "1":
    pytest.fail(
        "TOKENWELL_SERVERS is not set but TOKENWELL_REQUIRE_SERVERS=1: run through tests/integration/run.sh "
        "component, or make -C bindings/component integration",
        pytrace=False,
    )
SKIP_WITHOUT_SERVERS = pytest.mark.skipif(
    not SERVERS_FILE, reason="TOKENWELL_SERVERS unset (run under tests/integration/run.sh component)"
)
SERVERS: Dict[str, Any] = json.loads(Path(SERVERS_FILE).read_text(encoding="utf-8")) if SERVERS_FILE else {}
SERVER_NAMES = ["hydra", "oidc_provider"]
SOAK_SECONDS = int(os.environ.get("TOKENWELL_E2E_SOAK_SECONDS", "30"))
NOT_ALLOWED_AUDIENCE = "https://not-allowed.tokenwell.test"
EXAMPLES = REPO / "examples"


class TokenFailure(Exception):
    """``get-token`` returned a ``token-error`` (as canonical JSON in ``error``)."""

    def __init__(self, error: Dict[str, Any]) -> None:
        super().__init__(f"{error['kind']}: {error['message']}")
        self.error = error


class Provider:
    """One provider component instance, configured for one client. Events are
    drained into ``events`` (canonical JSON) after every call."""

    def __init__(self, cfg: Any) -> None:
        self.instance = ProviderInstance()
        failed, value = is_err(self.instance.call("configure", cfg))
        assert not failed, f"configure refused: {canonical_config_error(value)}"
        self.events: List[Dict[str, Any]] = []

    def drain(self) -> None:
        self.events.extend(self.instance.drain_events())

    def get_token(self) -> Dict[str, Any]:
        """The token (canonical JSON), or raises ``TokenFailure``."""
        failed, value = self.instance.get_token()
        self.drain()
        if failed:
            raise TokenFailure(canonical_error(value))
        return canonical_token(value)

    def replace_secrets(self, secrets: Sequence[str]) -> bool:
        failed, value = is_err(self.instance.call("replace-secrets", list(secrets)))
        self.drain()
        assert not failed, f"replace-secrets refused: {canonical_config_error(value)}"
        return bool(value)

    def of_type(self, kind: str, since: int = 0) -> List[Dict[str, Any]]:
        return [e for e in self.events[since:] if e["type"] == kind]

    def types(self) -> List[str]:
        return [e["type"] for e in self.events]


def provider_for(
    server: str,
    role: Optional[str] = None,
    *,
    client: Optional[Dict[str, Any]] = None,
    scopes: Optional[Sequence[str]] = None,
    audiences: Optional[Sequence[str]] = None,
    secrets: Optional[Sequence[str]] = None,
    **options: Any,
) -> Provider:
    """A provider for a client of ``server`` (by role, or an entry such as a bulk
    client), asking for ``scopes`` and ``audiences`` (the client's own by
    default). The audience goes out as ``audience`` (Hydra), or as RFC 8707
    ``resource`` through the configuration's ``extra-params`` (oidc-provider)."""
    s = SERVERS[server]
    c = client if client is not None else s["clients"][role]
    scopes = c["scopes"] if scopes is None else scopes
    audiences = c["audience"] if audiences is None else audiences
    if audiences:
        if s["audience_parameter"] == "audience":
            options["audiences"] = list(audiences)
        else:
            options["extra_params"] = [(s["audience_parameter"], a) for a in audiences]
    return Provider(
        config(
            token_url=s["token_url"],
            client_id=c["client_id"],
            client_secrets=list(secrets) if secrets is not None else [c["client_secret"]],
            auth_method=c["auth_method"].replace("_", "-"),
            scopes=list(scopes),
            **options,
        )
    )


def hydra_bin() -> str:
    return os.environ.get("HYDRA_BIN") or SERVERS["hydra"]["bin"]


def hydra_admin_url() -> str:
    return os.environ.get("HYDRA_ADMIN_URL") or SERVERS["hydra"]["admin_url"]


def hydra_cli(*args: str) -> str:
    """Runs the real hydra CLI; its stdout, or a failure with its stderr (never its arguments)."""
    done = subprocess.run([hydra_bin(), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"hydra {args[0]} {args[1]} failed: {done.stderr[-2000:]}"
    return done.stdout


def poll_until(what: str, condition: Callable[[], bool], timeout: float, step: Callable[[], None]) -> None:
    """Runs ``step`` until ``condition()`` holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        step()


def fetch_spans(events: List[Dict[str, Any]]) -> List[Tuple[int, List[Optional[int]]]]:
    """``(fetch_id, [started_at, ended_at or None])`` for every token request."""
    spans: Dict[int, List[Optional[int]]] = {}
    for e in events:
        if e["type"] == "refresh_started":
            spans[e["fetch_id"]] = [e["at"], None]
        elif e["type"] in ("token_acquired", "refresh_failed", "fetch_abandoned") and e["fetch_id"] in spans:
            spans[e["fetch_id"]][1] = e["at"]
    return sorted(spans.items())


def open_fetches(events: List[Dict[str, Any]]) -> int:
    return sum(end is None for _, (_, end) in fetch_spans(events))
