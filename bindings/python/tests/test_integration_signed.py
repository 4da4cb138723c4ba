"""End-to-end, issue 12: the Python host against the real servers of
``$TOKENWELL_SERVERS`` (tests/integration/servers/with-servers.sh), configured
by issuer only: a token with a client secret, tokens with ``private_key_jwt``
(Hydra's RS256 and ES256 clients, Keycloak's signed-JWT client when Keycloak
runs), ``from_env`` with ``ISSUER_URL`` and ``CLIENT_PRIVATE_KEY_FILE``, a
key rotation on Hydra's rotating client with no failed call, and a replayed
assertion refused by Hydra as a typed error. Marked ``e2e``; skipped without
servers, like tests/test_integration_servers.py.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tokenwell import ServiceAccount, TokenCache, TokenError, TransportRequest, urllib_transport

from conftest import EventLog

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from e2e_support import SERVERS, SKIP_WITHOUT_SERVERS, audience_options, require_servers  # noqa: E402

require_servers("tests/integration/run.sh or `make integration`")
pytestmark = [pytest.mark.e2e, SKIP_WITHOUT_SERVERS]

DISCOVERING = ["hydra", "keycloak"]


def server_or_skip(name: str) -> Dict[str, Any]:
    server = SERVERS.get(name)
    if not server:
        pytest.skip(f"no {name} in servers.json")
    return server  # type: ignore[no-any-return]


def audience_for(name: str, audiences: List[str]) -> Dict[str, Any]:
    # Keycloak takes no audience parameter (a mapper on each client sets it).
    return audience_options(name, audiences) if SERVERS[name].get("audience_parameter") else {}


def header_of(jwt: str) -> Dict[str, Any]:
    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))  # type: ignore[no-any-return]


class RecordingTransport:
    """The default transport, keeping every client assertion it sent."""

    def __init__(self) -> None:
        self.assertions: List[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: TransportRequest) -> Any:
        form = urllib.parse.parse_qs(request.body.decode())
        if "client_assertion" in form:
            with self.lock:
                self.assertions.append(form["client_assertion"][0])
        return urllib_transport(request)


@pytest.mark.parametrize("name", DISCOVERING)
def test_by_issuer_only_with_a_client_secret(name: str) -> None:
    server = server_or_skip(name)
    client = server["clients"]["basic"]
    log = EventLog()
    with ServiceAccount(issuer=server["issuer"], client_id=client["client_id"], client_secret=client["client_secret"],
                        scope=client["scopes"], on_event=log, refresh_when_idle=False,
                        **audience_for(name, client["audience"])) as account:
        token = account.token()
        assert token.access_token and set(client["scopes"]) <= set(token.scope)
        assert account.token_url == server["token_url"]
        assert log.count("discovery_completed") == 1
        assert log.count("refresh_failed") == 0, log.types()  # an absent RFC 8414 document is no warning


@pytest.mark.parametrize("role", ["rs256", "es256"])
def test_hydra_private_key_jwt_by_issuer(role: str) -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"][role]
    transport = RecordingTransport()
    with ServiceAccount(issuer=hydra["issuer"], client_id=client["client_id"],
                        private_key_file=client["keys"][0]["private_key_file"], scope=client["scopes"],
                        transport=transport, refresh_when_idle=False,
                        **audience_for("hydra", client["audience"])) as account:
        token = account.token()
        assert token.access_token and account.auth_method == "private_key_jwt"
    (assertion,) = transport.assertions
    assert header_of(assertion)["kid"] == client["keys"][0]["kid"]
    assert header_of(assertion)["alg"] == client["signing_alg"]


def test_hydra_private_key_jwt_from_env() -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["es256"]
    environ = {"BILLING_CLIENT_ID": client["client_id"], "BILLING_ISSUER_URL": hydra["issuer"],
               "BILLING_CLIENT_PRIVATE_KEY_FILE": client["keys"][0]["private_key_file"],
               "BILLING_SCOPE": " ".join(client["scopes"])}
    with ServiceAccount.from_env("BILLING_", environ=environ, refresh_when_idle=False) as account:
        assert account.get_token()
        assert account.auth_method == "private_key_jwt" and account.token_url == hydra["token_url"]


def test_keycloak_signed_jwt_clients_by_issuer() -> None:
    keycloak = server_or_skip("keycloak")
    clients = keycloak["jwt_clients"]
    pk = clients["private_key_jwt"]
    for key in pk["keys"]:
        with ServiceAccount(issuer=keycloak["issuer"], client_id=pk["client_id"],
                            private_key_file=key["private_key_file"], refresh_when_idle=False) as account:
            assert account.get_token() and account.auth_method == "private_key_jwt"
    hs = clients["client_secret_jwt"]
    with ServiceAccount(issuer=keycloak["issuer"], client_id=hs["client_id"], client_secret=hs["client_secret"],
                        auth_method="client_secret_jwt", refresh_when_idle=False) as account:
        assert account.get_token() and account.auth_method == "client_secret_jwt"


def hydra_set_jwks(client_id: str, keys: List[Dict[str, Any]]) -> None:
    patch = json.dumps([{"op": "replace", "path": "/jwks", "value": {"keys": keys}}]).encode()
    request = urllib.request.Request(f"{SERVERS['hydra']['admin_url']}/admin/clients/{client_id}", data=patch,
                                     method="PATCH", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_hydra_key_rotation_through_the_key_file_with_no_failed_call(tmp_path: Path) -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["rotating"]
    old, new = client["keys"][0], client["next_key"]
    pem = {key["kid"]: Path(key["private_key_file"]).read_text(encoding="utf-8") for key in (old, new)}
    key_file = tmp_path / "client-key.pem"
    key_file.write_text(pem[old["kid"]], encoding="utf-8")
    log = EventLog()
    transport = RecordingTransport()
    failures: List[str] = []
    stop = threading.Event()
    account = ServiceAccount(issuer=hydra["issuer"], client_id=client["client_id"], private_key_file=key_file,
                             scope=client["scopes"], transport=transport, on_event=log,
                             engine_options={"invalidate_min_interval_ms": 0}, refresh_when_idle=False)

    def load() -> None:
        while not stop.is_set():
            try:
                account.get_token()
            except TokenError as error:  # any failed call fails the test
                failures.append(repr(error))

    def fresh_token() -> None:
        account.invalidate(account.get_token())
        account.get_token()

    def swap(text: str) -> None:
        staged = key_file.with_name("staged")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, key_file)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    try:
        account.get_token()
        for worker in workers:
            worker.start()
        hydra_set_jwks(client["client_id"], [new["public_jwk"], old["public_jwk"]])  # the server learns the new key
        swap(pem[new["kid"]] + pem[old["kid"]])  # [new, old]
        with log.cond:
            assert log.cond.wait_for(lambda: any(e["type"] == "keys_replaced" for e in log.events), 30)
        fresh_token()
        hydra_set_jwks(client["client_id"], [new["public_jwk"]])  # the old key is removed
        fresh_token()
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
        account.close()
        hydra_set_jwks(client["client_id"], [old["public_jwk"]])  # as with-servers.sh made it
    assert failures == []
    assert log.count("refresh_failed") == 0, log.types()
    kids = [header_of(a)["kid"] for a in transport.assertions]
    assert kids[0] == old["kid"] and kids[-2:] == [new["kid"], new["kid"]], kids


def test_hydra_refuses_a_replayed_assertion_as_a_typed_error() -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["es256"]
    options = {"token_url": hydra["token_url"], "client_id": client["client_id"],
               "private_key": Path(client["keys"][0]["private_key_file"]).read_text(encoding="utf-8"),
               "scope": client["scopes"]}
    cache = TokenCache(options, int.from_bytes(os.urandom(8), "big"))
    cache.add_entropy(os.urandom(32))
    poll = cache.poll(int(time.time() * 1000))
    request = poll.request
    assert request is not None and request.method == "POST"
    outgoing = TransportRequest(request.fetch_id, request.method, request.url, request.headers, request.body,
                                request.timeout_ms / 1000, 65_536)
    stolen = urllib_transport(outgoing)  # someone sent the assertion first
    assert stolen.status == 200
    replayed = urllib_transport(outgoing)
    error: Optional[TokenError] = None
    try:
        cache.handle_response(request.fetch_id, replayed.status, replayed.headers, replayed.body,
                              int(time.time() * 1000))
    except TokenError as refused:
        error = refused
    assert error is not None and 400 <= (error.status or 0) < 500, repr(error)
    assert error.retryable is False and error.fault in ("credentials", "configuration"), repr(error)
