"""Against the real authorization servers on loopback: Ory Hydra and
oidc-provider, started by tests/integration/servers/with-servers.sh (skipped
when ``TOKENWELL_SERVERS`` is unset; run with ``make integration``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tokenwell import InvalidClientError, InvalidTargetError, ServiceAccount

from conftest import EventLog, FakeClock

SERVERS_FILE = os.environ.get("TOKENWELL_SERVERS")
pytestmark = pytest.mark.skipif(not SERVERS_FILE, reason="TOKENWELL_SERVERS unset (run under with-servers.sh)")
SERVERS: Dict[str, Any] = json.loads(Path(SERVERS_FILE).read_text()) if SERVERS_FILE else {}
CRON = Path(__file__).resolve().parents[3] / "examples" / "python-cron" / "cron.py"
ROLES = ["basic", "post", "jwt", "special_secret", "short_ttl"]


def account_for(server: str, role: str, **kwargs: Any) -> ServiceAccount:
    s = SERVERS[server]
    c = s["clients"][role]
    if s["audience_parameter"] == "audience":
        kwargs.setdefault("audience", c["audience"])
    else:
        kwargs.setdefault("extra_params", {s["audience_parameter"]: c["audience"][0]})
    kwargs.setdefault("client_secret", c["client_secret"])
    return ServiceAccount(token_url=s["token_url"], client_id=c["client_id"], auth_method=c["auth_method"],
                          scope=c["scopes"], **kwargs)


def hydra_introspect(token: str) -> Dict[str, Any]:
    data = urllib.parse.urlencode({"token": token}).encode()
    with urllib.request.urlopen(SERVERS["hydra"]["introspection_url"], data=data, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("role", ROLES)
def test_hydra_real_server_issues_tokens_for_every_client_role(role: str) -> None:
    account = account_for("hydra", role)
    token = account.token()
    client = SERVERS["hydra"]["clients"][role]
    details = hydra_introspect(token.access_token)
    assert details["active"] is True and details["client_id"] == client["client_id"]
    assert sorted(details["scope"].split()) == sorted(client["scopes"])
    assert details["aud"] == client["audience"]
    assert set(token.scope) == set(client["scopes"])
    assert account.get_token() == token.access_token


@pytest.mark.parametrize("role", ROLES)
def test_oidc_provider_real_server_issues_tokens_for_every_client_role(role: str) -> None:
    token = account_for("oidc_provider", role).token()
    assert token.access_token and token.token_type == "Bearer"


def test_hydra_real_server_refresh_ahead_on_a_5_second_token() -> None:
    """The short_ttl client's tokens live 5 s: the margin shrinks to half the
    lifetime. The clock is moved past the refresh point (no waiting)."""
    clock = FakeClock(__import__("time").time())
    log = EventLog()
    account = account_for("hydra", "short_ttl", clock=clock, on_event=log)
    first = account.token()
    assert (first.expires_at - first.received_at).total_seconds() <= 5
    engine_token = account.engine.current_token()
    assert engine_token is not None and engine_token.refresh_at < engine_token.usable_until
    clock.now = engine_token.refresh_at / 1000.0 + 0.001  # past the refresh point, before the margin
    assert account.get_token() == first.access_token
    log.wait_for("token_acquired", 2)
    assert account.get_token() != first.access_token


def test_hydra_real_server_errors_are_classified() -> None:
    with pytest.raises(InvalidClientError):
        account_for("hydra", "basic", client_secret="wrong-secret").get_token()
    with pytest.raises(InvalidTargetError) as raised:  # an audience the client may not request
        account_for("hydra", "basic", audience=["https://not-allowed.example"]).get_token()
    assert raised.value.oauth_error == "invalid_request" and raised.value.status == 400
    with pytest.raises(InvalidTargetError):
        account_for("oidc_provider", "basic", extra_params={"resource": "https://unknown.example"}).get_token()


def test_hydra_real_server_cron_runs_twice_and_reuses_the_token(tmp_path: Path) -> None:
    hydra = SERVERS["hydra"]
    client = hydra["clients"]["basic"]
    env = dict(os.environ, CLIENT_ID=client["client_id"], CLIENT_SECRET=client["client_secret"],
               TOKEN_URL=hydra["token_url"], SCOPE=" ".join(client["scopes"]), AUDIENCE=" ".join(client["audience"]),
               TOKEN_CACHE_PATH=str(tmp_path / "cron.json"))
    outputs: List[str] = []
    for _ in range(3):
        done = subprocess.run([sys.executable, str(CRON)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0].startswith("token: fetched a new token")
    assert all(out.startswith("token: reused the cached token") for out in outputs[1:])
    snapshot = json.loads((tmp_path / "cron.json").read_text())
    assert hydra_introspect(snapshot["access_token"])["active"] is True
