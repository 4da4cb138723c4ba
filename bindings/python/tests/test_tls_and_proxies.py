"""https token endpoints with a private CA, and proxies.

A loopback https token server (``TokenServer(tls=...)``) presents a
certificate from a throwaway CA (``test_ca``, made with the openssl CLI):

- trusted through ``ca_file``, ``TOKENWELL_CA_FILE`` (``from_env``, and the
  environment), ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE``, in that order;
- without it, a ``TlsCertificateError``: a configuration fault, held, not
  retried, whose message says how to trust the CA.

The integration suite's CONNECT proxy (tests/integration/servers/connect-proxy.py)
logs every request it gets: an https token request honours ``HTTPS_PROXY``
(one CONNECT, TLS verified end to end through the tunnel) and ``NO_PROXY``;
a plain-http token request, which carries the client's credentials in clear,
never reaches a proxy, whatever ``http_proxy`` / ``ALL_PROXY`` say.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest

import tokenwell
from tokenwell import ServiceAccount

from conftest import WAIT, ConnectProxy, TestCA, TokenServer, make_test_ca

pytestmark = pytest.mark.usefixtures("no_ambient_tls_or_proxy")

SECRET = "tls-test-secret"
# The default transports: get_token() (urllib), get_token_async() without httpx
# (urllib on a worker thread), and with httpx.
WAYS = ["sync-urllib", "async-urllib", "async-httpx"]


@pytest.fixture
def https_server(test_ca: TestCA) -> Iterator[TokenServer]:
    server = TokenServer(tls=test_ca.server_context())
    yield server
    server.close()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> TestCA:
    """A second CA that did not sign the server's certificate."""
    return make_test_ca(tmp_path_factory.mktemp("other-ca"), "another test CA")


def make_account(url: str, way: str, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> ServiceAccount:
    if way == "async-httpx":
        pytest.importorskip("httpx")
    if way == "async-urllib":
        monkeypatch.setattr("tokenwell._account.have_httpx", lambda: False)
    kwargs.setdefault("timeout", 10.0)
    return ServiceAccount(token_url=url, client_id="tls-client", client_secret=SECRET, **kwargs)


def ask(account: ServiceAccount, way: str) -> str:
    if way == "sync-urllib":
        return account.get_token()
    return asyncio.run(account.get_token_async())


# ---- a private CA ----------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_https_with_ca_file_gets_a_token(
    https_server: TokenServer, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    account = make_account(https_server.url, way, monkeypatch, ca_file=test_ca.ca_file)
    assert ask(account, way) == "at-1"
    assert https_server.count == 1


@pytest.mark.parametrize("way", WAYS)
def test_https_without_the_ca_is_a_held_configuration_error_naming_ca_file(
    https_server: TokenServer, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    account = make_account(https_server.url, way, monkeypatch)
    with pytest.raises(tokenwell.TlsCertificateError) as raised:
        ask(account, way)
    error = raised.value
    assert isinstance(error, tokenwell.ConfigurationError)
    assert (error.kind, error.fault, error.retryable) == ("tls_certificate", "configuration", False)
    assert "ca_file" in str(error) and "TOKENWELL_CA_FILE" in str(error), str(error)
    assert "certificate" in str(error).lower()
    assert https_server.handshake_failed.wait(WAIT)  # the server saw the client refuse its certificate
    assert https_server.count == 0
    # Held, not retried: the next caller fails at once, without a connection.
    with pytest.raises(tokenwell.TlsCertificateError):
        ask(account, way)
    assert https_server.handshake_failures == 1
    assert account.state == "held"


def test_a_certificate_for_another_name_is_a_tls_certificate_error(
    test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The certificate names 127.0.0.1 and localhost; this server is at 127.0.0.2.
    try:
        server = TokenServer(tls=test_ca.server_context(), host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    try:
        with pytest.raises(tokenwell.TlsCertificateError) as raised:
            make_account(server.url, "sync-urllib", monkeypatch, ca_file=test_ca.ca_file).get_token()
        assert "127.0.0.2" in str(raised.value) or "mismatch" in str(raised.value).lower(), str(raised.value)
    finally:
        server.close()


def test_where_the_ca_comes_from_and_which_wins(
    https_server: TokenServer, test_ca: TestCA, other_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = https_server.url

    def token(**kwargs: Any) -> str:
        return ServiceAccount(token_url=url, client_id="c", client_secret=SECRET, **kwargs).get_token()

    def refused(**kwargs: Any) -> None:
        with pytest.raises(tokenwell.TlsCertificateError):
            token(**kwargs)

    # SSL_CERT_FILE (read by OpenSSL for the system store) alone.
    monkeypatch.setenv("SSL_CERT_FILE", test_ca.ca_file)
    assert token()
    # REQUESTS_CA_BUNDLE wins over SSL_CERT_FILE.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca.ca_file)
    refused()
    monkeypatch.setenv("SSL_CERT_FILE", other_ca.ca_file)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", test_ca.ca_file)
    assert token()
    # TOKENWELL_CA_FILE wins over REQUESTS_CA_BUNDLE.
    monkeypatch.setenv("TOKENWELL_CA_FILE", other_ca.ca_file)
    refused()
    monkeypatch.setenv("TOKENWELL_CA_FILE", test_ca.ca_file)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca.ca_file)
    assert token()
    # ca_file wins over all of them, and trusts nothing else (not the system store).
    monkeypatch.setenv("TOKENWELL_CA_FILE", other_ca.ca_file)
    assert token(ca_file=test_ca.ca_file)
    refused(ca_file=other_ca.ca_file)


def test_from_env_reads_tokenwell_ca_file_and_an_override_wins(
    https_server: TokenServer, test_ca: TestCA, other_ca: TestCA
) -> None:
    environ: Dict[str, str] = {"CLIENT_ID": "c", "CLIENT_SECRET": SECRET, "TOKEN_URL": https_server.url,
                               "TOKENWELL_CA_FILE": test_ca.ca_file}
    assert ServiceAccount.from_env(environ=environ).get_token()
    with pytest.raises(tokenwell.TlsCertificateError):
        ServiceAccount.from_env(environ=environ, ca_file=other_ca.ca_file).get_token()
    without = {k: v for k, v in environ.items() if k != "TOKENWELL_CA_FILE"}
    with pytest.raises(tokenwell.TlsCertificateError):
        ServiceAccount.from_env(environ=without).get_token()


def test_a_ca_file_that_cannot_be_loaded_is_refused_at_construction(tmp_path: Path) -> None:
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("this is not a certificate\n")
    common: Dict[str, Any] = {"token_url": "https://127.0.0.1:1/t", "client_id": "c", "client_secret": SECRET}
    for bad in (str(tmp_path / "missing.pem"), str(not_pem), ""):
        with pytest.raises(tokenwell.InvalidConfigError) as raised:
            ServiceAccount(ca_file=bad, **common)
        assert raised.value.field == "ca_file"
    environ = {"CLIENT_ID": "c", "CLIENT_SECRET": SECRET, "TOKEN_URL": "https://127.0.0.1:1/t",
               "TOKENWELL_CA_FILE": str(tmp_path / "missing.pem")}
    with pytest.raises(tokenwell.InvalidConfigError) as raised:
        ServiceAccount.from_env(environ=environ)
    assert raised.value.field == "TOKENWELL_CA_FILE"


def test_an_unloadable_bundle_from_the_environment_is_a_tls_certificate_error(
    https_server: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(tokenwell.TlsCertificateError) as raised:
        ServiceAccount(token_url=https_server.url, client_id="c", client_secret=SECRET).get_token()
    assert "missing.pem" in str(raised.value)


def test_the_transport_request_carries_the_ca_bundle(test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def transport(request: tokenwell.TransportRequest) -> Any:
        seen.append(request.ca_file)
        return tokenwell.TransportResponse(200, [], b'{"access_token": "t", "token_type": "Bearer"}')

    ServiceAccount(token_url="https://a.example/t", client_id="c", client_secret=SECRET, transport=transport,
                   ca_file=test_ca.ca_file).get_token()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/some-bundle.pem")
    ServiceAccount(token_url="https://a.example/t", client_id="c", client_secret=SECRET,
                   transport=transport).get_token()
    assert seen == [os.path.abspath(test_ca.ca_file), "/etc/ssl/some-bundle.pem"]


# ---- proxies ---------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_https_goes_through_https_proxy_with_tls_verified_end_to_end(
    https_server: TokenServer, test_ca: TestCA, connect_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch,
    way: str,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    account = make_account(https_server.url, way, monkeypatch, ca_file=test_ca.ca_file)
    assert ask(account, way) == "at-1"
    assert connect_proxy.log() == [{"method": "CONNECT", "target": f"127.0.0.1:{https_server.port}", "allowed": True}]
    assert https_server.count == 1


@pytest.mark.parametrize("way", WAYS)
def test_through_the_proxy_the_certificate_is_still_checked(
    https_server: TokenServer, connect_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    monkeypatch.setenv("https_proxy", connect_proxy.url)
    with pytest.raises(tokenwell.TlsCertificateError):
        ask(make_account(https_server.url, way, monkeypatch), way)
    assert [entry["method"] for entry in connect_proxy.log()] == ["CONNECT"]
    assert https_server.count == 0


def test_no_proxy_is_honoured_for_https(
    https_server: TokenServer, test_ca: TestCA, connect_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    account = make_account(https_server.url, "sync-urllib", monkeypatch, ca_file=test_ca.ca_file)
    assert account.get_token() == "at-1"
    assert connect_proxy.log() == []


@pytest.mark.parametrize("way", WAYS)
def test_plain_http_never_goes_through_a_proxy(
    token_server: Callable[..., TokenServer], connect_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch,
    way: str,
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, connect_proxy.url)
    server = token_server()
    account = make_account(server.url, way, monkeypatch)
    assert ask(account, way) == "at-1"
    assert connect_proxy.log() == []  # the credentials never reached the proxy
    assert server.count == 1


ASK_IN_A_FRESH_PROCESS = """
import asyncio, sys
import tokenwell, tokenwell._account
url, way = sys.argv[1], sys.argv[2]
if way == "async-urllib":
    tokenwell._account.have_httpx = lambda: False
account = tokenwell.ServiceAccount(token_url=url, client_id="c", client_secret="proxy-test-secret", timeout=10)
print(account.get_token() if way == "sync-urllib" else asyncio.run(account.get_token_async()))
"""


@pytest.mark.parametrize("way", WAYS)
def test_plain_http_never_goes_through_a_proxy_set_before_start(
    token_server: Callable[..., TokenServer], connect_proxy: ConnectProxy, way: str
) -> None:
    # As a service meets it: the proxy variables are there when the process starts.
    if way == "async-httpx":
        pytest.importorskip("httpx")
    server = token_server()
    env = dict(os.environ)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
        env[name] = connect_proxy.url
    done = subprocess.run([sys.executable, "-c", ASK_IN_A_FRESH_PROCESS, server.url, way], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "at-1"
    assert connect_proxy.log() == []
    assert server.count == 1
