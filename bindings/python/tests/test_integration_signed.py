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
from typing import Any, Callable, Dict, List

import pytest

from tokenwell import ServiceAccount, TokenCache, TokenError, TransportRequest, urllib_transport

from conftest import EventLog

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from e2e_support import (  # noqa: E402
    SERVERS,
    SKIP_WITHOUT_SERVERS,
    KeycloakClientKeys,
    audience_options,
    hydra_set_jwks,
    require_servers,
)

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


def rotate_under_load(name: str, client: Dict[str, Any], old: Dict[str, Any], new: Dict[str, Any],
                      set_server_keys: Callable[[List[Dict[str, Any]]], None], tmp_path: Path) -> None:
    """A key rotation while 4 threads call get_token all the time: the server
    learns the new key, the key file becomes [new, old], fresh tokens are
    signed with the new key, the server drops the old key, another fresh
    token. Zero failed calls and no refresh_failed event."""
    server = SERVERS[name]
    pem = {key["kid"]: Path(key["private_key_file"]).read_text(encoding="utf-8") for key in (old, new)}
    key_file = tmp_path / "client-key.pem"
    key_file.write_text(pem[old["kid"]], encoding="utf-8")
    log = EventLog()
    transport = RecordingTransport()
    failures: List[str] = []
    calls = [0]
    stop = threading.Event()
    account = ServiceAccount(issuer=server["issuer"], client_id=client["client_id"], private_key_file=key_file,
                             scope=client["scopes"], transport=transport, on_event=log,
                             engine_options={"invalidate_min_interval_ms": 0}, refresh_when_idle=False,
                             **audience_for(name, client["audience"]))

    def load() -> None:
        while not stop.is_set():
            try:
                account.get_token()
            except TokenError as error:  # any failed call fails the test
                failures.append(repr(error))
            calls[0] += 1

    def fresh_token() -> None:
        account.invalidate(account.get_token())
        account.get_token()

    def swap(text: str) -> None:
        staged = key_file.with_name("staged")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, key_file)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    started = time.monotonic()
    try:
        set_server_keys([old["public_jwk"]])
        account.get_token()
        for worker in workers:
            worker.start()
        set_server_keys([new["public_jwk"], old["public_jwk"]])  # the server learns the new key
        swap(pem[new["kid"]] + pem[old["kid"]])  # [new, old]
        with log.cond:
            assert log.cond.wait_for(lambda: any(e["type"] == "keys_replaced" for e in log.events), 30)
        fresh_token()
        set_server_keys([new["public_jwk"]])  # the old key is removed
        fresh_token()
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
        account.close()
    print(f"{name} key rotation: {calls[0]} calls in {time.monotonic() - started:.1f} s, {len(failures)} failed")
    assert failures == []
    assert log.count("refresh_failed") == 0, log.types()
    kids = [header_of(a)["kid"] for a in transport.assertions]
    assert kids[0] == old["kid"] and kids[-2:] == [new["kid"], new["kid"]], kids


def test_hydra_key_rotation_through_the_key_file_with_no_failed_call(tmp_path: Path) -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["rotating"]
    old, new = client["keys"][0], client["next_key"]

    def set_keys(keys: List[Dict[str, Any]]) -> None:
        hydra_set_jwks(client["client_id"], keys)

    try:
        rotate_under_load("hydra", client, old, new, set_keys, tmp_path)
    finally:
        hydra_set_jwks(client["client_id"], [old["public_jwk"]])  # as with-servers.sh made it


def test_keycloak_key_rotation_through_the_key_file_with_no_failed_call(tmp_path: Path) -> None:
    """Keycloak keeps a client's keys in its `jwks.string` attribute, changed
    through the admin REST API; from the RSA key (old) to the EC key (new)."""
    keycloak = server_or_skip("keycloak")
    client = keycloak["jwt_clients"]["private_key_jwt"]
    old, new = (next(k for k in client["keys"] if k["kty"] == kty) for kty in ("RSA", "EC"))
    keys = KeycloakClientKeys(client["client_id"])
    original = keys.get()
    assert original is not None
    try:
        rotate_under_load("keycloak", {**client, "scopes": [], "audience": []}, old, new, keys.set, tmp_path)
    finally:
        keys.put(original)  # as with-servers.sh made it


def replayed(name: str, options: Dict[str, Any]) -> TokenError:
    """Sends one token request twice (as an attacker who saw it would) and
    returns the typed error the engine makes of the second answer."""
    cache = TokenCache(options, int.from_bytes(os.urandom(8), "big"))
    cache.add_entropy(os.urandom(32))
    poll = cache.poll(int(time.time() * 1000))
    while poll.request is not None and poll.request.method == "GET":  # issuer discovery first
        request = poll.request
        outgoing = TransportRequest(request.fetch_id, request.method, request.url, request.headers, request.body,
                                    request.timeout_ms / 1000, 1 << 20)
        answer = urllib_transport(outgoing)
        with pytest.raises(TokenError):  # discovery_complete, or the next well-known URL: poll again
            cache.handle_response(request.fetch_id, answer.status, answer.headers, answer.body,
                                  int(time.time() * 1000))
        poll = cache.poll(int(time.time() * 1000))
    token_request = poll.request
    assert token_request is not None and token_request.method == "POST"
    outgoing = TransportRequest(token_request.fetch_id, token_request.method, token_request.url,
                                token_request.headers, token_request.body, token_request.timeout_ms / 1000, 65_536)
    stolen = urllib_transport(outgoing)  # someone sent the assertion first
    assert stolen.status == 200, f"{name}: {stolen.status}"
    again = urllib_transport(outgoing)
    with pytest.raises(TokenError) as refused:
        cache.handle_response(token_request.fetch_id, again.status, again.headers, again.body,
                              int(time.time() * 1000))
    error = refused.value
    assert 400 <= (error.status or 0) < 500, repr(error)
    assert error.retryable is False and error.fault in ("credentials", "configuration"), repr(error)
    return error


def test_hydra_refuses_a_replayed_assertion_as_a_typed_error() -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["es256"]
    error = replayed("hydra", {"token_url": hydra["token_url"], "client_id": client["client_id"],
                               "private_key": Path(client["keys"][0]["private_key_file"]).read_text(encoding="utf-8"),
                               "scope": client["scopes"]})
    assert error.oauth_error == "jti_known", repr(error)


@pytest.mark.parametrize("role", ["private_key_jwt", "client_secret_jwt"])
def test_keycloak_refuses_a_replayed_assertion_as_a_typed_error(role: str) -> None:
    keycloak = server_or_skip("keycloak")
    client = keycloak["jwt_clients"][role]
    options: Dict[str, Any] = {"issuer": keycloak["issuer"], "client_id": client["client_id"]}
    if role == "private_key_jwt":
        options["private_key"] = Path(client["keys"][0]["private_key_file"]).read_text(encoding="utf-8")
    else:
        options.update(client_secret=client["client_secret"], auth_method="client_secret_jwt")
    error = replayed("keycloak", options)
    assert error.kind == "invalid_client" and "reuse" in (error.description or "").lower(), repr(error)
