"""End-to-end, issue 12: the components against the real Ory Hydra and Keycloak
of ``$TOKENWELL_SERVERS``, configured by issuer only (the token endpoint and
the auth method are discovered), as bindings/python/tests/test_integration_signed.py
does for the Python host:

* a token with a client secret, from the issuer alone;
* ``private_key_jwt`` with Hydra's RS256 and ES256 clients and with each of
  the keys (RSA, EC) of Keycloak's signed-JWT client, and Keycloak's
  ``client_secret_jwt`` (HS256) client;
* a key rotation under load with no failed call, on Hydra's ``rotating``
  client and on Keycloak's ``private_key_jwt`` client;
* a replayed client assertion, refused by each server as a typed error.

Two components, two ways of seeing the wire:

* The **provider** (``dist/tokenwell-provider.wasm``) does its own HTTP
  through wasmtime's ``wasi:http``; the test host cannot see those requests,
  only the provider's events (``discovery_completed`` names the discovered
  endpoint and auth method; ``refresh_started`` / ``token_acquired`` say which
  configured key signed, by index). Private keys reach it as text through
  ``configure`` and ``replace-keys-from-file``: it has no filesystem.
* The **engine** (``dist/tokenwell-engine.wasm``) is driven here by a small
  host on ``urllib`` (``EngineHost``), which sees every request it sends:
  the assertion's header (``kid``, ``alg``) and claims are read from there,
  and a request can be sent twice (the replay).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from conftest import NOTES
from e2e_host import SERVERS, SKIP_WITHOUT_SERVERS, Provider, TokenFailure, poll_until
from e2e_support import KeycloakClientKeys, hydra_set_jwks
from wasm_host import EngineInstance, canonical_config_error, canonical_error, canonical_poll, config, is_err

pytestmark = SKIP_WITHOUT_SERVERS

DISCOVERING = ["hydra", "keycloak"]
# The provider's tokens are clamped to this lifetime in the rotation tests, so
# that the worker's calls keep refreshing ahead (every ~3 s) while the keys
# change, on top of the fresh tokens the test forces.
ROTATION_TOKEN_MS = 4_000


def now_ms() -> int:
    return int(time.time() * 1000)


def server_or_skip(name: str) -> Dict[str, Any]:
    server = SERVERS.get(name)
    if not server:
        pytest.skip(f"no {name} in servers.json")
    return server  # type: ignore[no-any-return]


def audiences_for(name: str, audiences: Sequence[str]) -> List[str]:
    """Hydra takes ``audience`` parameters; Keycloak none (a mapper on each client sets ``aud``)."""
    return list(audiences) if SERVERS[name].get("audience_parameter") == "audience" else []


def pem_of(key: Dict[str, Any]) -> str:
    """A key entry's private key, as the host reads it from its file for the component."""
    return Path(key["private_key_file"]).read_text(encoding="utf-8")


def jwt_part(jwt: str, index: int) -> Dict[str, Any]:
    part = jwt.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def no_key_shown(texts: Sequence[str], pems: Sequence[str]) -> None:
    """No text holds a line of a private key's PEM body (reports indexes only)."""
    lines = [line for pem in pems for line in pem.splitlines() if line and not line.startswith("-----")]
    shown = [i for i, text in enumerate(texts) if any(line in text for line in lines)]
    assert not shown, f"a private key is shown in texts {shown}"


# ---- the provider ------------------------------------------------------------------


def provider_by_issuer(name: str, client: Dict[str, Any], **options: Any) -> Provider:
    """A provider for ``client`` of server ``name``, given the issuer only."""
    options.setdefault("scopes", list(client["scopes"]))
    options.setdefault("audiences", audiences_for(name, client["audience"]))
    return Provider(config(issuer=SERVERS[name]["issuer"], client_id=client["client_id"], **options))


def replace_keys(provider: Provider, text: str) -> bool:
    failed, value = is_err(provider.instance.call("replace-keys-from-file", text, "CLIENT_PRIVATE_KEY_FILE"))
    provider.drain()
    assert not failed, f"replace-keys-from-file refused: {canonical_config_error(value)}"
    return bool(value)


def invalidate(provider: Provider, access_token: str) -> str:
    outcome = provider.instance.call("invalidate", access_token)
    provider.drain()
    return str(outcome)


def check_discovered(provider: Provider, name: str, auth_method: str) -> None:
    """One metadata document accepted, naming the server's token endpoint and
    the auth method the client uses. (Events before the first token may hold a
    ``refresh_failed`` for a well-known URL that answered 404: tolerated.)"""
    completed = provider.of_type("discovery_completed")
    assert len(completed) == 1, provider.types()
    assert completed[0]["token_endpoint"] == SERVERS[name]["token_url"], completed
    assert completed[0]["auth_method"] == auth_method, completed
    started = [e["url"] for e in provider.of_type("discovery_started")]
    base = SERVERS[name]["base_url" if name == "keycloak" else "public_url"]
    assert started and all(url.startswith(base) for url in started), started


# ---- the engine, driven by a host that sees the wire --------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER.add_handler(_NoRedirect())


def send(request: Dict[str, Any]) -> Tuple[int, List[Tuple[str, str]], bytes]:
    """Sends the engine's request exactly as given; the response, whatever its status."""
    data = request["body"].encode() if request["method"] != "GET" else None
    http = urllib.request.Request(request["url"], data=data, method=request["method"], headers=dict(request["headers"]))
    try:
        with _OPENER.open(http, timeout=request["timeout_ms"] / 1000) as response:
            return response.status, list(response.headers.items()), response.read()
    except urllib.error.HTTPError as answered:
        return answered.code, list(answered.headers.items()), answered.read()


class EngineHost:
    """The engine component driven over ``urllib``, keeping every request sent."""

    def __init__(self, **options: Any) -> None:
        self.cache = EngineInstance().create(config(**options), int.from_bytes(os.urandom(8), "big"))
        self.sent: List[Dict[str, Any]] = []

    def poll(self) -> Dict[str, Any]:
        self.cache.add_entropy(os.urandom(32))
        return canonical_poll(self.cache.poll(now_ms()))

    def report(self, request: Dict[str, Any], response: Tuple[int, List[Tuple[str, str]], bytes]) -> Tuple[bool, Any]:
        status, headers, body = response
        return is_err(self.cache.handle_response(request["fetch_id"], status, headers, body, now_ms()))

    def next_token_request(self) -> Dict[str, Any]:
        """Sends the metadata requests (issuer discovery) until the engine asks
        for a token ``POST``, and returns that request, unsent."""
        for _ in range(4):
            poll = self.poll()
            assert poll["result"] == "send", poll
            request = poll["request"]
            if request["method"] == "POST":
                return request
            assert request["method"] == "GET" and request["body"] == "", request
            self.sent.append(request)
            response = send(request)
            failed, value = self.report(request, response)
            assert failed, "a metadata request gave a token"
            # An accepted document comes back as `discovery-complete`; a 404 at
            # the first well-known URL is reported like a failure (the next
            # poll asks for the second URL).
            if response[0] == 200:
                assert canonical_error(value)["kind"] == "discovery_complete", canonical_error(value)
        raise AssertionError("no token request after issuer discovery")

    def token(self) -> Dict[str, Any]:
        request = self.next_token_request()
        self.sent.append(request)
        failed, value = self.report(request, send(request))
        assert not failed, canonical_error(value)
        poll = self.poll()
        assert poll["result"] == "ready", poll
        return poll["token"]  # type: ignore[no-any-return]

    def assertions(self) -> List[str]:
        out = []
        for request in self.sent:
            form = urllib.parse.parse_qs(request["body"])
            out += form.get("client_assertion", [])
        return out


def check_assertion(assertion: str, client_id: str, token_url: str, alg: str, kid: Optional[str]) -> None:
    header, claims = jwt_part(assertion, 0), jwt_part(assertion, 1)
    assert header["alg"] == alg, header
    if kid is not None:
        assert header["kid"] == kid, header
    assert claims["iss"] == claims["sub"] == client_id, claims
    assert claims["aud"] == token_url, claims
    assert claims["jti"] and claims["exp"] > time.time(), claims


# ---- 1. a client secret, by issuer only ---------------------------------------------


@pytest.mark.parametrize("name", DISCOVERING)
def test_by_issuer_only_with_a_client_secret(name: str) -> None:
    server_or_skip(name)
    client = SERVERS[name]["clients"]["basic"]
    provider = provider_by_issuer(name, client, client_secrets=[client["client_secret"]])
    token = provider.get_token()
    assert token["access_token"] and token["token_type"] == "Bearer"
    assert set(client["scopes"]) <= set(token["scope"]), token["scope"]
    # The secret alone: the method is the first of the server's that a secret can do.
    check_discovered(provider, name, "client_secret_basic")
    (acquired,) = provider.of_type("token_acquired")
    (started,) = provider.of_type("refresh_started")
    assert started["reason"] == "initial" and acquired["fetch_id"] == started["fetch_id"]
    # Cached: no second discovery and no second token request.
    seen = len(provider.events)
    assert provider.get_token()["access_token"] == token["access_token"]
    assert not [e for e in provider.events[seen:] if e["type"] in ("discovery_started", "refresh_started")]


# ---- 2. signed client assertions ----------------------------------------------------


def signed_token(name: str, client: Dict[str, Any], discovered_method: str, **options: Any) -> Tuple[Provider, str]:
    """A token through the provider (its own HTTP) and one through the engine
    (the request seen): the provider, and the client assertion the engine sent."""
    provider = provider_by_issuer(name, client, **options)
    token = provider.get_token()
    assert token["access_token"], token
    check_discovered(provider, name, discovered_method)
    assert [e["secret_index"] for e in provider.of_type("token_acquired")] == [0]

    engine = EngineHost(issuer=SERVERS[name]["issuer"], client_id=client["client_id"],
                        scopes=options.get("scopes", list(client["scopes"])),
                        audiences=options.get("audiences", audiences_for(name, client["audience"])),
                        **{k: v for k, v in options.items() if k not in ("scopes", "audiences")})
    assert engine.token()["access_token"]
    (assertion,) = engine.assertions()
    return provider, assertion


@pytest.mark.parametrize("role", ["rs256", "es256"])
def test_hydra_private_key_jwt_by_issuer(role: str) -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"][role]
    key = client["keys"][0]
    provider, assertion = signed_token("hydra", client, "private_key_jwt", private_keys=[pem_of(key)])
    check_assertion(assertion, client["client_id"], hydra["token_url"], client["signing_alg"], key["kid"])
    no_key_shown([json.dumps(e) for e in provider.events], [pem_of(key)])


@pytest.mark.parametrize("kty", ["RSA", "EC"])
def test_keycloak_private_key_jwt_with_each_key_by_issuer(kty: str) -> None:
    keycloak = server_or_skip("keycloak")
    client = keycloak["jwt_clients"]["private_key_jwt"]
    (key,) = [k for k in client["keys"] if k["kty"] == kty]
    provider, assertion = signed_token("keycloak", client, "private_key_jwt", private_keys=[pem_of(key)])
    check_assertion(assertion, client["client_id"], keycloak["token_url"], key["alg"], key["kid"])
    no_key_shown([json.dumps(e) for e in provider.events], [pem_of(key)])


def test_keycloak_client_secret_jwt_by_issuer() -> None:
    keycloak = server_or_skip("keycloak")
    client = keycloak["jwt_clients"]["client_secret_jwt"]
    provider, assertion = signed_token("keycloak", client, "client_secret_jwt",
                                       client_secrets=[client["client_secret"]], auth_method="client-secret-jwt")
    (alg,) = client["signing_algs"]
    check_assertion(assertion, client["client_id"], keycloak["token_url"], alg, None)
    assert client["client_secret"] not in json.dumps(provider.events)


# ---- 3. key rotation under load ------------------------------------------------------


class RotationWorker:
    """A worker calling ``get-token`` all the time on one provider, and its
    host, which hands the provider new keys and forces fresh tokens between
    calls. A provider instance runs one call at a time, so worker and host
    share this thread; the server's admin API is called from another thread
    meanwhile (``while_working``), so the calls never stop."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.failures: List[str] = []
        self.calls = 0
        self.token: Optional[Dict[str, Any]] = None

    def work(self) -> None:
        try:
            self.token = self.provider.get_token()
        except TokenFailure as failure:
            self.failures.append(str(failure))
        self.calls += 1
        time.sleep(0.005)  # the pace of a busy worker, not synchronization

    def while_working(self, what: str, action: Callable[[], None]) -> None:
        """Runs ``action`` (an admin call) in another thread, working until it ends."""
        errors: List[BaseException] = []

        def run() -> None:
            try:
                action()
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        poll_until(what, lambda: not thread.is_alive(), 60, self.work)
        thread.join()
        if errors:
            raise errors[0]

    def acquired_since(self, mark: int) -> List[Dict[str, Any]]:
        """Tokens from fetches started at or after event ``mark`` (a fetch in
        flight before a step may still end with the keys of before)."""
        started = {e["fetch_id"] for e in self.provider.of_type("refresh_started", mark)}
        return [e for e in self.provider.of_type("token_acquired", mark) if e["fetch_id"] in started]

    def fresh_tokens(self, count: int) -> List[Dict[str, Any]]:
        """Forces ``count`` tokens signed after this point: the API "answered
        401" for the current token, so the next call fetches a new one."""
        mark = len(self.provider.events)

        def force() -> None:
            if self.token is not None:
                invalidate(self.provider, self.token["access_token"])
            self.work()

        poll_until(f"{count} fresh token(s)", lambda: len(self.acquired_since(mark)) >= count, 30, force)
        return self.acquired_since(mark)

    def refreshed_ahead(self) -> Dict[str, Any]:
        """Works until a refresh ahead of expiry started after this point has
        given a token (no caller waits for it): the token-acquired event."""
        mark = len(self.provider.events)

        def ahead() -> List[Dict[str, Any]]:
            started = {e["fetch_id"] for e in self.provider.of_type("refresh_started", mark) if e["reason"] == "ahead"}
            return [e for e in self.provider.of_type("token_acquired", mark) if e["fetch_id"] in started]

        poll_until("a refresh ahead", lambda: bool(ahead()), 30, self.work)
        return ahead()[0]


def rotate(name: str, client: Dict[str, Any], old: Dict[str, Any], new: Dict[str, Any],
           set_server_keys: Callable[[List[Dict[str, Any]]], None]) -> None:
    """The rotation, in the order that never breaks a call: the server learns
    the new key; the host hands the provider ``[new, old]`` (the new key signs
    from then on); the server drops the old key; the host hands the provider
    ``[new]``. Each server change is made while the worker calls; after each
    step the host forces fresh tokens, and the worker keeps calling until a
    refresh ahead of expiry (short tokens) was signed with the keys of that
    step too. A token from a fetch signed with key ``i`` of the provider's
    list is reported with ``secret_index`` ``i``: 0 throughout."""
    pem = {old["kid"]: pem_of(old), new["kid"]: pem_of(new)}
    provider = provider_by_issuer(name, client, private_keys=[pem[old["kid"]]], invalidate_min_interval_ms=0,
                                  default_lifetime_ms=ROTATION_TOKEN_MS, max_lifetime_ms=ROTATION_TOKEN_MS)
    worker = RotationWorker(provider)
    worker.work()
    assert not worker.failures, worker.failures
    check_discovered(provider, name, "private_key_jwt")
    mark = len(provider.events)  # (discovery may log a refresh_failed for a 404 before the first token)
    began = time.monotonic()

    def tokens_of_this_step() -> List[int]:
        """Forced fresh tokens, then one refreshed ahead: the key index of each."""
        return [e["secret_index"] for e in [*worker.fresh_tokens(2), worker.refreshed_ahead()]]

    def replace_with(*kids: str) -> None:
        step = len(provider.events)
        assert replace_keys(provider, "".join(pem[kid] for kid in kids)) is True
        (replaced,) = provider.of_type("keys_replaced", step)
        assert replaced["count"] == len(kids), replaced

    # 1. The server learns the new key; the provider's [old] still signs.
    both = [new["public_jwk"], old["public_jwk"]]
    worker.while_working("the server to hold [new, old]", lambda: set_server_keys(both))
    assert tokens_of_this_step() == [0, 0, 0]
    # 2. The host hands [new, old] to the provider: the new key signs at once.
    replace_with(new["kid"], old["kid"])
    assert tokens_of_this_step() == [0, 0, 0]
    # 3. The server drops the old key: from here only the new key can get a token.
    worker.while_working("the server to hold [new]", lambda: set_server_keys([new["public_jwk"]]))
    assert tokens_of_this_step() == [0, 0, 0]
    # 4. The host drops the old key too.
    replace_with(new["kid"])
    assert tokens_of_this_step() == [0, 0, 0]
    took = time.monotonic() - began

    events = provider.events[mark:]
    assert worker.failures == [], f"{len(worker.failures)} of {worker.calls} calls failed: {worker.failures[:3]}"
    unexpected = [e["type"] for e in events if e["type"] in ("refresh_failed", "secret_fallback", "backoff_scheduled")]
    assert not unexpected, f"{name}: {unexpected}"
    assert all(e["secret_index"] == 0 for e in events if e["type"] in ("refresh_started", "token_acquired"))
    assert worker.calls > 100, f"the worker made only {worker.calls} calls"
    no_key_shown([json.dumps(e) for e in provider.events], list(pem.values()))

    # The server really holds [new] only: the old key alone is refused (so
    # the tokens of steps 3 and 4 were signed with the new key's kid).
    with pytest.raises(TokenFailure) as refused:
        provider_by_issuer(name, client, private_keys=[pem[old["kid"]]]).get_token()
    assert refused.value.error["status"] == 400 and refused.value.error["retryable"] is False, refused.value.error

    reasons = [e["reason"] for e in events if e["type"] == "refresh_started"]
    tokens = sum(e["type"] == "token_acquired" for e in events)
    NOTES.append(
        f"key rotation, {name}: {worker.calls} get-token calls in {took:.1f} s, {len(worker.failures)} failed; "
        f"{tokens} tokens ({reasons.count('ahead')} refreshed ahead, {reasons.count('invalidated')} forced), "
        f"{ROTATION_TOKEN_MS} ms tokens"
    )


def test_hydra_key_rotation_under_load_with_no_failed_call() -> None:
    """On Hydra, a token acquired while the client's key set is ``[new]``
    was signed with the new key's ``kid`` (Hydra refuses any other kid, 400
    ``invalid_request``): the final tokens prove the final assertions' kid."""
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["rotating"]
    old, new = client["keys"][0], client["next_key"]
    try:
        rotate("hydra", client, old, new, lambda keys: hydra_set_jwks(client["client_id"], keys))
    finally:
        hydra_set_jwks(client["client_id"], [old["public_jwk"]])  # as with-servers.sh made it


def test_keycloak_key_rotation_under_load_with_no_failed_call() -> None:
    """On Keycloak's signed-JWT client, from its RSA key (old) to its EC key
    (new). Keycloak refuses a kid it does not hold at once (400
    ``invalid_client``, "Unable to load public key"): the final tokens prove
    the final assertions' kid. Keys set through the client's ``jwks.string``."""
    keycloak = server_or_skip("keycloak")
    client = keycloak["jwt_clients"]["private_key_jwt"]
    (old,) = [k for k in client["keys"] if k["kty"] == "RSA"]
    (new,) = [k for k in client["keys"] if k["kty"] == "EC"]
    keys = KeycloakClientKeys(client["client_id"])
    original = keys.get()
    try:
        keys.set([old["public_jwk"]])
        rotate("keycloak", client, old, new, keys.set)
    finally:
        # As with-servers.sh made it: [rsa, ec].
        if original is not None:
            keys.put(original)
        else:
            keys.set([old["public_jwk"], new["public_jwk"]])


# ---- 4. a replayed assertion ---------------------------------------------------------


def replay(name: str, client: Dict[str, Any], **options: Any) -> Tuple[EngineHost, Dict[str, Any]]:
    """Discovers, then sends the engine's token request twice: the first
    answer is a token (someone sent the assertion first); the second is
    reported to the engine. The typed error it gives."""
    engine = EngineHost(issuer=SERVERS[name]["issuer"], client_id=client["client_id"],
                        scopes=list(client["scopes"]), audiences=audiences_for(name, client["audience"]), **options)
    request = engine.next_token_request()
    stolen = send(request)
    assert stolen[0] == 200, f"{name}: the first use of the assertion got {stolen[0]}"
    failed, value = engine.report(request, send(request))
    assert failed, f"{name}: a replayed assertion got a token"
    return engine, canonical_error(value)


def check_held(engine: EngineHost, kind: str) -> None:
    """Not retried: the next poll fails fast with the same error, nothing sent."""
    poll = engine.poll()
    assert poll["result"] == "fail" and poll["error"]["kind"] == kind, poll
    assert engine.cache.state() == "held"


def test_hydra_refuses_a_replayed_assertion_as_a_typed_error() -> None:
    hydra = server_or_skip("hydra")
    client = hydra["jwt_clients"]["es256"]
    engine, error = replay("hydra", client, private_keys=[pem_of(client["keys"][0])])
    assert error["status"] == 400 and error["oauth_error"] == "jti_known", error
    # An error code RFC 6749 does not list: refused, the client's configuration to look at.
    assert (error["kind"], error["fault"], error["retryable"]) == ("rejected", "configuration", False), error
    check_held(engine, "rejected")


@pytest.mark.parametrize("role", ["private_key_jwt", "client_secret_jwt"])
def test_keycloak_refuses_a_replayed_assertion_as_a_typed_error(role: str) -> None:
    keycloak = server_or_skip("keycloak")
    client = keycloak["jwt_clients"][role]
    if role == "private_key_jwt":
        options: Dict[str, Any] = {"private_keys": [pem_of(client["keys"][0])]}
    else:
        options = {"client_secrets": [client["client_secret"]], "auth_method": "client-secret-jwt"}
    engine, error = replay("keycloak", client, **options)
    assert error["status"] == 400 and error["oauth_error"] == "invalid_client", error
    assert "Token reuse detected" in (error["description"] or ""), error
    assert (error["kind"], error["fault"], error["retryable"]) == ("invalid_client", "credentials", False), error
    check_held(engine, "invalid_client")
