"""What the Python-driven end-to-end suites share: the real servers described by
``$TOKENWELL_SERVERS`` (tests/integration/servers/with-servers.sh), the real
``hydra`` CLI, and the checks every host's suite makes of the engine's events.

Used by the Python package's suite (bindings/python/tests/test_integration_servers.py)
and the component's (bindings/component/tests/e2e/), so that a check is written
once and the two hosts are held to the same bar, as tests/conformance/replay.py
does for the scenarios. Import it after putting this folder on ``sys.path``.

Without ``TOKENWELL_SERVERS`` the suites are skipped, unless
``TOKENWELL_REQUIRE_SERVERS=1``: then :func:`require_servers` fails the run.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import pytest

__all__ = [
    "KeycloakClientKeys",
    "NOT_ALLOWED_AUDIENCE",
    "SERVER_NAMES",
    "SERVERS",
    "SKIP_WITHOUT_SERVERS",
    "SOAK_SECONDS",
    "admin_request",
    "audience_options",
    "bulk_clients",
    "check_all_accepted",
    "check_no_secret_shown",
    "check_soak",
    "fetch_spans",
    "hydra_admin_url",
    "hydra_bin",
    "hydra_cli",
    "hydra_set_jwks",
    "jwt_claims",
    "open_fetches",
    "poll_until",
    "require_servers",
    "special_secret",
]

SERVERS_FILE = os.environ.get("TOKENWELL_SERVERS")
SERVERS: Dict[str, Any] = json.loads(Path(SERVERS_FILE).read_text(encoding="utf-8")) if SERVERS_FILE else {}
SERVER_NAMES = ["hydra", "oidc_provider"]
SOAK_SECONDS = int(os.environ.get("TOKENWELL_E2E_SOAK_SECONDS", "30"))
NOT_ALLOWED_AUDIENCE = "https://not-allowed.tokenwell.test"
SKIP_WITHOUT_SERVERS = pytest.mark.skipif(not SERVERS_FILE, reason="TOKENWELL_SERVERS unset (run under with-servers.sh)")


def require_servers(how_to_run: str) -> None:
    """Fails the run at import time when servers are required but not described."""
    if not SERVERS_FILE and os.environ.get("TOKENWELL_REQUIRE_SERVERS") == "1":
        pytest.fail(f"TOKENWELL_SERVERS is not set but TOKENWELL_REQUIRE_SERVERS=1: run through {how_to_run}", pytrace=False)


def audience_options(server: str, audiences: Sequence[str]) -> Dict[str, Any]:
    """How ``server`` takes audiences: ``{"audience": [...]}`` (Hydra) or RFC 8707
    ``resource`` parameters (oidc-provider) as ``{"extra_params": [...]}``."""
    if not audiences:
        return {}
    parameter = SERVERS[server]["audience_parameter"]
    if parameter == "audience":
        return {"audience": list(audiences)}
    return {"extra_params": [(parameter, a) for a in audiences]}


# ---- the real hydra CLI -------------------------------------------------------------


def hydra_bin() -> str:
    return os.environ.get("HYDRA_BIN") or SERVERS["hydra"]["bin"]


def hydra_admin_url() -> str:
    return os.environ.get("HYDRA_ADMIN_URL") or SERVERS["hydra"]["admin_url"]


def hydra_cli(*args: str) -> str:
    """Runs the real hydra CLI; its stdout, or a failure with its stderr (never its arguments)."""
    done = subprocess.run([hydra_bin(), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"hydra {args[0]} {args[1]} failed: {done.stderr[-2000:]}"
    return done.stdout


def jwt_claims(token: str) -> Dict[str, Any]:
    """The claims of a JWT access token (not verified: only read)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


# ---- waiting without sleeping ---------------------------------------------------------


def poll_until(what: str, condition: Callable[[], bool], timeout: float, step: Callable[[], None]) -> None:
    """Runs ``step`` until ``condition()`` holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        step()


# ---- checks of the engine's events ----------------------------------------------------


def fetch_spans(events: Iterable[Dict[str, Any]]) -> List[Tuple[int, List[Optional[int]]]]:
    """``(fetch_id, [started_at, ended_at or None])`` for every token request."""
    spans: Dict[int, List[Optional[int]]] = {}
    for e in events:
        if e["type"] == "refresh_started":
            spans[e["fetch_id"]] = [e["at"], None]
        elif e["type"] in ("token_acquired", "refresh_failed", "fetch_abandoned") and e["fetch_id"] in spans:
            spans[e["fetch_id"]][1] = e["at"]
    return sorted(spans.items())


def open_fetches(events: Iterable[Dict[str, Any]]) -> int:
    """How many token requests have started and not ended."""
    return sum(end is None for _, (_, end) in fetch_spans(events))


def check_soak(server: str, events: Sequence[Dict[str, Any]], seconds: int, lifetime_ms: int) -> int:
    """The bar for callers hammering a short-lived token: the first fetch is the
    initial one and every later one a refresh ahead (no caller waited on the
    network), enough tokens for the time, one fetch at a time (single flight,
    by the engine's own timestamps), and nothing failed. Returns the number of
    tokens acquired."""
    reasons = [e["reason"] for e in events if e["type"] == "refresh_started"]
    assert reasons and reasons[0] == "initial", f"{server}: {reasons}"
    assert all(r == "ahead" for r in reasons[1:]), f"{server}: a caller waited on the network: {reasons}"
    acquired = sum(e["type"] == "token_acquired" for e in events)
    assert acquired > seconds * 1000 // lifetime_ms, f"{server}: {acquired} tokens in {seconds} s of {lifetime_ms} ms tokens"
    spans = fetch_spans(events)
    for (prev_id, prev), (next_id, nxt) in zip(spans, spans[1:]):
        assert prev[1] is not None and nxt[0] >= prev[1], f"{server}: fetches {prev_id} and {next_id} overlap"
    unexpected = [e["type"] for e in events if e["type"] in ("refresh_failed", "backoff_scheduled", "fetch_abandoned")]
    assert not unexpected, f"{server}: {unexpected}"
    return acquired


def check_no_secret_shown(server: str, texts: Sequence[str], secrets: Sequence[str]) -> None:
    """No text a person or a log could see holds any of ``secrets``. Reports the
    indexes only, so that a failure does not print the secret itself."""
    shown_at = [i for i, text in enumerate(texts) if any(secret in text for secret in secrets)]
    assert not shown_at, f"{server}: a secret is shown in texts {shown_at}"


def special_secret(server: str) -> str:
    """The secret made of reserved characters, checked to still hold them."""
    secret: str = SERVERS[server]["clients"]["special_secret"]["client_secret"]
    assert all(c in secret for c in "%+ :&="), f"{server}: the special secret lost its characters"
    return secret


def bulk_clients(server: str) -> List[Dict[str, Any]]:
    """The 200+ clients with random secrets (half of Hydra's with non-ASCII ones)."""
    bulk = SERVERS[server].get("bulk_clients")
    assert bulk is not None, f"{server}: no bulk_clients in servers.json"
    assert len(bulk) >= 200, f"{server}: {len(bulk)} bulk clients"
    if server == "hydra":  # Unicode is covered against Hydra (oidc-provider allows VSCHAR only)
        assert sum(any(ord(ch) > 0x7E for ch in c["client_secret"]) for c in bulk) >= len(bulk) // 2
    return list(bulk)


def check_all_accepted(server: str, failures: Sequence[Optional[str]], total: int) -> None:
    """Every bulk client got a token (``failures`` holds one line per refusal, or None)."""
    refused = [f for f in failures if f is not None]
    assert not refused, f"{server}: {len(refused)} of {total} refused:\n" + "\n".join(refused)


# The servers' admin APIs (issue 12's key rotations): Hydra's client JWKS and
# Keycloak's `jwks.string`. No proxy, whatever the environment says.
_ADMIN_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def admin_request(method: str, url: str, body: Any = None, token: Optional[str] = None,
                  content_type: str = "application/json") -> Any:
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with _ADMIN_OPENER.open(request, timeout=30) as response:
        assert 200 <= response.status < 300, f"{method} {url}: {response.status}"
        raw = response.read()
    return json.loads(raw) if raw else None


def hydra_set_jwks(client_id: str, keys: List[Dict[str, Any]]) -> None:
    patch = [{"op": "replace", "path": "/jwks", "value": {"keys": keys}}]
    admin_request("PATCH", f"{SERVERS['hydra']['admin_url']}/admin/clients/{client_id}", patch)


class KeycloakClientKeys:
    """The public keys Keycloak holds for a client (attribute ``jwks.string``),
    changed through the admin REST API."""

    def __init__(self, client_id: str) -> None:
        self.keycloak = SERVERS["keycloak"]
        realm = self.keycloak["realm"]
        self.clients_url = f"{self.keycloak['base_url']}/admin/realms/{realm}/clients"
        (found,) = admin_request("GET", f"{self.clients_url}?clientId={urllib.parse.quote(client_id)}",
                                 token=self.admin_token())
        self.url = f"{self.clients_url}/{found['id']}"

    def admin_token(self) -> str:
        admin = self.keycloak["admin"]
        form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                                       "username": admin["username"], "password": admin["password"]}).encode()
        url = f"{self.keycloak['base_url']}/realms/{admin['realm']}/protocol/openid-connect/token"
        return str(admin_request("POST", url, form, content_type="application/x-www-form-urlencoded")["access_token"])

    def get(self) -> Optional[str]:
        representation = admin_request("GET", self.url, token=self.admin_token())
        return representation.get("attributes", {}).get("jwks.string")  # type: ignore[no-any-return]

    def put(self, jwks_string: str) -> None:
        token = self.admin_token()
        representation = admin_request("GET", self.url, token=token)
        representation.setdefault("attributes", {})["jwks.string"] = jwks_string
        admin_request("PUT", self.url, representation, token=token)

    def set(self, keys: List[Dict[str, Any]]) -> None:
        self.put(json.dumps({"keys": keys}))
