"""Issue 12 through the Python host, against loopback servers (conftest.py):
issuer discovery (a GET without a body, then the token request), signed
client assertions (``private_key_jwt``) that the test server decodes and
checks, host entropy (a fork never repeats a ``jti``), a key file swapped
under a running account, and a private key that never shows anywhere.

Signatures are checked two ways: with ``cryptography`` when the venv happens
to have it, and always against ``tests/conformance/jose.py``, an independent
pure-Python RS256 / ES256 (RFC 6979, deterministic), which re-signs the same
input and must produce the same bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import tokenwell
from tokenwell import (
    ConfigurationError,
    InvalidConfigError,
    IssuerMismatchError,
    ServiceAccount,
    TokenCache,
    TransportResponse,
)

from conftest import START, CountingTransport, EventLog, FakeClock, TokenServer, basic_credentials, token_body

CONFORMANCE = Path(__file__).resolve().parents[3] / "tests" / "conformance"
sys.path.insert(0, str(CONFORMANCE))
import jose  # noqa: E402

KEYS = CONFORMANCE / "keys"
P256_JWK = (KEYS / "test-only-p256.jwk.json").read_text()
P256_PEM = (KEYS / "test-only-p256.pkcs8.pem").read_text()
RSA_JWK = (KEYS / "test-only-rsa-2048.jwk.json").read_text()
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT = "billing-worker"


def private_parts() -> List[str]:
    """Strings that would reveal a private key if they showed anywhere."""
    parts = []
    for text in (P256_JWK, RSA_JWK):
        key = json.loads(text)
        parts += [key[name] for name in ("d", "p", "q", "dp", "dq", "qi") if name in key]
    parts += [line for line in P256_PEM.splitlines() if line and not line.startswith("-----")]
    return parts


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Assertion:
    """A client assertion as the server receives it."""

    def __init__(self, jwt: str) -> None:
        self.jwt = jwt
        head, claims, signature = jwt.split(".")
        self.signing_input = f"{head}.{claims}".encode()
        self.header: Dict[str, Any] = json.loads(unb64(head))
        self.claims: Dict[str, Any] = json.loads(unb64(claims))
        self.signature = unb64(signature)


class SigningServer:
    """A token server's script that takes only signed assertions: it decodes
    each one and keeps it (``assertions``), and answers a token."""

    def __init__(self) -> None:
        self.assertions: List[Assertion] = []
        self.forms: List[Dict[str, List[str]]] = []
        self.headers: List[List[Tuple[str, str]]] = []

    def __call__(self, n: int, headers: List[Tuple[str, str]], body: bytes) -> Tuple[int, List[Tuple[str, str]], bytes]:
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        self.forms.append(form)
        self.headers.append(headers)
        if form.get("client_assertion_type") != [ASSERTION_TYPE] or len(form.get("client_assertion", [])) != 1:
            error = json.dumps({"error": "invalid_client", "error_description": "no client assertion"}).encode()
            return 401, [("Content-Type", "application/json")], error
        self.assertions.append(Assertion(form["client_assertion"][0]))
        return 200, [("Content-Type", "application/json")], token_body(f"at-{n}")


def verify(assertion: Assertion, jwk_text: str) -> None:
    """The signature is the key's over the assertion's signing input."""
    key = json.loads(jwk_text)
    alg = assertion.header["alg"]
    assert alg == key["alg"]
    # Deterministic algorithms: an independent implementation signs the same bytes.
    expected = jose.es256(key, assertion.signing_input) if alg == "ES256" else jose.rs256(key, assertion.signing_input)
    assert assertion.signature == expected, f"{alg} signature differs from jose.py's"
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    except ImportError:
        return  # not installed in this venv: jose.py's check above stands
    if alg == "ES256":
        public = ec.EllipticCurvePublicNumbers(jose.as_int(key["x"]), jose.as_int(key["y"]), ec.SECP256R1()).public_key()
        r, s = int.from_bytes(assertion.signature[:32], "big"), int.from_bytes(assertion.signature[32:], "big")
        public.verify(encode_dss_signature(r, s), assertion.signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        public_rsa = rsa.RSAPublicNumbers(jose.as_int(key["e"]), jose.as_int(key["n"])).public_key()
        public_rsa.verify(assertion.signature, assertion.signing_input, padding.PKCS1v15(), hashes.SHA256())


def check_claims(assertion: Assertion, aud: str, now_s: int) -> None:
    claims = assertion.claims
    assert claims["iss"] == claims["sub"] == CLIENT
    assert claims["aud"] == aud
    assert claims["iat"] == now_s and claims["exp"] - claims["iat"] == 60
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert assertion.header["typ"] == "JWT"


def discovering_server(token_server: Any, methods: Optional[List[str]] = None, **kwargs: Any) -> TokenServer:
    server: TokenServer = token_server(**kwargs)
    server.metadata = {"issuer": server.origin, "token_endpoint": server.url}
    if methods is not None:
        server.metadata["token_endpoint_auth_methods_supported"] = methods
    return server


# ---- issuer discovery ------------------------------------------------------------------


def check_discovery_gets(server: TokenServer) -> None:
    """RFC 8414's URL first (404 here), then OpenID Connect's; both GETs without a body."""
    assert [path for path, _, _ in server.gets] == [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ]
    for _, headers, body in server.gets:
        names = {name.lower(): value for name, value in headers}
        assert body == b""
        assert "content-type" not in names and names.get("content-length", "0") == "0", names
        assert names.get("accept") == "application/json"


def test_discovery_then_token_on_the_default_transport(token_server: Any, events: EventLog) -> None:
    server = discovering_server(token_server, ["client_secret_post", "client_secret_basic"])
    with ServiceAccount(issuer=server.origin, client_id=CLIENT, client_secret="s3cr3t", on_event=events,
                        refresh_when_idle=False) as account:
        assert (account.token_url, account.issuer) == ("", server.origin)
        assert "issuer=" in repr(account)
        assert account.get_token() == "at-1"
        check_discovery_gets(server)
        assert server.count == 1 and basic_credentials(server.requests[0][0]) == (CLIENT, "s3cr3t")
        assert account.token_url == server.url and account.auth_method == "client_secret_basic"
        completed = [e for e in events.events if e["type"] == "discovery_completed"]
        assert [e["token_endpoint"] for e in completed] == [server.url]
        assert events.count("discovery_started") == 2
        assert account.get_token() == "at-1" and len(server.gets) == 2  # the document is cached


def test_discovery_then_token_on_the_async_transport(token_server: Any) -> None:
    pytest.importorskip("httpx")
    server = discovering_server(token_server)

    async def main() -> str:
        async with ServiceAccount(issuer=server.origin, client_id=CLIENT, client_secret="s3cr3t",
                                  refresh_when_idle=False) as account:
            return await account.get_token_async()

    assert asyncio.run(main()) == "at-1"
    check_discovery_gets(server)
    assert server.count == 1


def test_an_issuer_mismatch_is_a_configuration_error(token_server: Any) -> None:
    server = discovering_server(token_server)
    assert server.metadata is not None
    server.metadata["issuer"] = server.origin + "/elsewhere"
    with ServiceAccount(issuer=server.origin, client_id=CLIENT, client_secret="s", refresh_when_idle=False) as account:
        with pytest.raises(IssuerMismatchError) as raised:
            account.get_token()
    assert isinstance(raised.value, ConfigurationError) and raised.value.retryable is False
    assert server.count == 0  # no token request went to a document's endpoint that is not trusted


# ---- signed client assertions ------------------------------------------------------------


def test_a_signed_assertion_the_server_decodes_and_checks(token_server: Any, clock: FakeClock) -> None:
    script = SigningServer()
    server = token_server(script=script)
    with ServiceAccount(token_url=server.url, client_id=CLIENT, private_key=P256_JWK, scope="billing:read",
                        clock=clock, refresh_when_idle=False) as account:
        assert account.auth_method == "private_key_jwt"
        assert account.get_token() == "at-1"
        clock.advance(4000)  # the token expired: a second request, a second assertion
        assert account.get_token() == "at-2"
    first, second = script.assertions
    for assertion, now in ((first, int(START)), (second, int(START) + 4000)):
        assert assertion.header["alg"] == "ES256" and assertion.header["kid"] == "test-only-p256"
        check_claims(assertion, server.url, now)
        verify(assertion, P256_JWK)
    assert first.claims["jti"] != second.claims["jti"]
    for form, headers in zip(script.forms, script.headers):
        assert form["grant_type"] == ["client_credentials"] and form["scope"] == ["billing:read"]
        assert "client_secret" not in form
        assert not any(name.lower() == "authorization" for name, _ in headers)


def test_discovered_private_key_jwt_with_a_pem_key_and_the_issuer_as_audience(
    token_server: Any, clock: FakeClock
) -> None:
    script = SigningServer()
    server = discovering_server(token_server, ["client_secret_basic", "private_key_jwt"], script=script)
    with ServiceAccount(issuer=server.origin, client_id=CLIENT, private_key=[P256_PEM], assertion_audience="issuer",
                        assertion_signing_alg="ES256", clock=clock, refresh_when_idle=False) as account:
        assert account.get_token() == "at-1"
        assert account.auth_method == "private_key_jwt"
    (assertion,) = script.assertions
    check_claims(assertion, server.origin, int(START))
    # A PEM key has no kid of its own: the RFC 7638 thumbprint of its public key.
    assert assertion.header["kid"] == jose.public_thumbprint(json.loads(P256_JWK))
    verify(assertion, P256_JWK)


def test_forked_processes_never_sign_the_same_jti(clock: FakeClock) -> None:
    """Two accounts with one seed and one clock are what a fork makes: only the
    host's ``os.urandom`` before each send tells their assertions apart."""
    jtis = []
    for _ in range(2):
        transport = CountingTransport()
        with ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, private_key=P256_JWK, entropy=7,
                            transport=transport, clock=clock, refresh_when_idle=False) as account:
            account.get_token()
        form = urllib.parse.parse_qs(transport.requests[0].body.decode())
        jtis.append(Assertion(form["client_assertion"][0]).claims["jti"])
    assert jtis[0] != jtis[1]
    # The engine alone is deterministic: the same seed, no host entropy, the same jti.
    same = []
    for _ in range(2):
        cache = TokenCache({"token_url": "https://a.example/t", "client_id": CLIENT, "private_key": P256_JWK}, 7)
        request = cache.poll(1_700_000_000_000).request
        assert request is not None
        same.append(Assertion(urllib.parse.parse_qs(request.body.decode())["client_assertion"][0]).claims["jti"])
    assert same[0] == same[1]


# ---- the key file ------------------------------------------------------------------------


def replace_file(path: Path, text: str) -> None:
    staged = path.with_name(path.name + ".new")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def test_a_swapped_key_file_is_picked_up(token_server: Any, clock: FakeClock, tmp_path: Path) -> None:
    script = SigningServer()
    server = discovering_server(token_server, ["private_key_jwt"], script=script)
    key_file = tmp_path / "client-key"
    replace_file(key_file, P256_JWK)
    events = EventLog()
    environ = {"BILLING_CLIENT_ID": CLIENT, "BILLING_ISSUER_URL": server.origin,
               "BILLING_CLIENT_PRIVATE_KEY_FILE": str(key_file)}
    with ServiceAccount.from_env("BILLING_", environ=environ, clock=clock, on_event=events,
                                 refresh_when_idle=False) as account:
        assert account.private_key_file == str(key_file) and account.engine.key_count == 1
        assert account.get_token() == "at-1"
        # A rotation: [new, old] swapped in (a rename, as Kubernetes does).
        replace_file(key_file, json.dumps({"keys": [json.loads(RSA_JWK), json.loads(P256_JWK)]}))
        clock.advance(1)  # the watch's next check
        assert account.get_token() == "at-1"
        replaced = [e for e in events.events if e["type"] == "keys_replaced"]
        assert [e["count"] for e in replaced] == [2] and account.engine.key_count == 2
        clock.advance(4000)
        assert account.get_token() == "at-2"
        # A file that holds no key: the keys in use stay, one event names the variable.
        replace_file(key_file, "hunter2")
        clock.advance(1)
        assert account.get_token() == "at-2"
        rejected = [e for e in events.events if e["type"] == "secret_file_rejected"]
        assert [e["source"] for e in rejected] == ["BILLING_CLIENT_PRIVATE_KEY_FILE"]
        assert account.engine.key_count == 2
        assert "hunter2" not in json.dumps(events.events)
    old, new = script.assertions
    assert (old.header["kid"], new.header["kid"]) == ("test-only-p256", "test-only-rsa-2048")
    assert new.header["alg"] == "RS256"
    check_claims(new, server.url, int(START) + 4001)
    verify(old, P256_JWK)
    verify(new, RSA_JWK)


def test_private_key_file_argument_and_its_errors(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(P256_PEM, encoding="utf-8")
    transport = CountingTransport()
    with ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, private_key_file=key_file,
                        transport=transport, refresh_when_idle=False) as account:
        assert account.private_key_file == str(key_file) and account.get_token() == "at-1"
    assert "client_assertion=" in transport.requests[0].body.decode()
    bad = tmp_path / "bad"
    bad.write_text("hunter2", encoding="utf-8")
    with pytest.raises(InvalidConfigError) as raised:
        ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, private_key_file=bad)
    assert raised.value.field == "private_key_file" and "hunter2" not in str(raised.value)
    with pytest.raises(InvalidConfigError) as raised:
        ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, private_key_file=tmp_path / "missing")
    assert raised.value.field == "private_key_file" and "cannot read the key file" in str(raised.value)
    with pytest.raises(InvalidConfigError) as raised:
        ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, private_key=P256_PEM,
                       private_key_file=key_file)
    assert raised.value.field == "private_key"
    # from_env: the argument wins over CLIENT_PRIVATE_KEY_FILE, which is then not read.
    environ = {"CLIENT_ID": CLIENT, "TOKEN_URL": "http://127.0.0.1:9/t",
               "CLIENT_PRIVATE_KEY_FILE": str(tmp_path / "missing")}
    with ServiceAccount.from_env(environ=environ, private_key_file=key_file, transport=CountingTransport(),
                                 refresh_when_idle=False) as account:
        assert account.private_key_file == str(key_file) and account.engine.key_count == 1


# ---- never shown -------------------------------------------------------------------------


def test_the_private_key_never_shows(tmp_path: Path, clock: FakeClock) -> None:
    events = EventLog()
    transport = CountingTransport(answer=lambda n, r: TransportResponse(200, [], token_body(f"at-{n}")))
    account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, private_key=[P256_PEM, RSA_JWK],
                             transport=transport, clock=clock, on_event=events, refresh_when_idle=False)
    account.get_token()
    sent = transport.requests[0]
    jwt = urllib.parse.parse_qs(sent.body.decode())["client_assertion"][0]
    config = tokenwell.Config({"token_url": "https://a.example/t", "client_id": CLIENT, "private_key": P256_PEM})
    cache = TokenCache(config)
    poll = cache.poll(1_700_000_000_000)
    texts = [repr(account), str(account), repr(account.engine), repr(config), repr(cache), repr(sent), repr(poll),
             repr(poll.request), json.dumps(events.events)]
    # Refusals: a broken key, a key the algorithm does not fit, a key file with no key.
    broken = P256_PEM.replace("MIGHAgEAMBMG", "MIGHAgEAMBMX")
    for options in ({"private_key": broken}, {"private_key": P256_PEM, "assertion_signing_alg": "RS256"}):
        with pytest.raises(InvalidConfigError) as raised:
            ServiceAccount(token_url="http://127.0.0.1:9/t", client_id=CLIENT, **options)
        texts += [str(raised.value), repr(raised.value), str(raised.value.problem)]
    key_file = tmp_path / "key"
    key_file.write_text(P256_PEM[: len(P256_PEM) // 2], encoding="utf-8")
    with pytest.raises(InvalidConfigError) as raised:
        ServiceAccount.from_env(environ={"CLIENT_ID": CLIENT, "TOKEN_URL": "http://127.0.0.1:9/t",
                                         "CLIENT_PRIVATE_KEY_FILE": str(key_file)})
    assert raised.value.field == "CLIENT_PRIVATE_KEY_FILE"
    texts += [str(raised.value), repr(raised.value)]
    for text in texts:
        for part in private_parts():
            assert part not in text, text
        assert jwt not in text and jwt.split(".")[2] not in text, text  # the assertion is a credential too
    assert "[redacted]" in repr(poll.request)
    account.close()
