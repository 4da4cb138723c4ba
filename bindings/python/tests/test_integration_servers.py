"""End-to-end: the Python host against real authorization servers on loopback,
Ory Hydra v2.3.0 and oidc-provider, described by ``$TOKENWELL_SERVERS``
(written by tests/integration/servers/with-servers.sh).

The same cases as the Rust suite (tests/integration/rust/tests/e2e_real_servers.rs),
against both servers wherever the server supports the case. Marked ``e2e``.
The ``hydra_tls`` entry (a second Hydra serving https with a certificate from
a test CA) is reached with ``TOKENWELL_CA_FILE``, without it, and through the
loopback CONNECT proxy; those tests skip while servers.json has no such entry.

    make e2e            servers already running (tests/integration/run.sh python)
    make integration    starts the servers itself

Without ``TOKENWELL_SERVERS`` these tests are skipped (plain ``make test``),
unless ``TOKENWELL_REQUIRE_SERVERS=1``: then the module fails to load.
``TOKENWELL_E2E_SOAK_SECONDS`` (default 30) sets the length of the 5-second
token soak.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

from tokenwell import (
    ConfigurationError,
    InvalidClientError,
    InvalidScopeError,
    InvalidTargetError,
    ServiceAccount,
    TlsCertificateError,
    TokenError,
)

from conftest import ConnectProxy, EventLog, FakeClock

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from e2e_support import (  # noqa: E402
    NOT_ALLOWED_AUDIENCE,
    SERVER_NAMES,
    SERVERS,
    SKIP_WITHOUT_SERVERS,
    SOAK_SECONDS,
    audience_options,
    bulk_clients,
    check_all_accepted,
    check_no_secret_shown,
    check_soak,
    hydra_admin_url,
    hydra_cli,
    jwt_claims,
    open_fetches,
    require_servers,
    special_secret,
)

require_servers("tests/integration/run.sh or `make integration`")
pytestmark = [pytest.mark.e2e, SKIP_WITHOUT_SERVERS]
ROLES = ["basic", "post", "jwt", "special_secret", "short_ttl"]
CRON = Path(__file__).resolve().parents[3] / "examples" / "python-cron" / "cron.py"


# ---- helpers ------------------------------------------------------------------------


def account_for(
    server: str,
    role: Optional[str] = None,
    *,
    client: Optional[Dict[str, Any]] = None,
    scope: Optional[Sequence[str]] = None,
    audience: Optional[Sequence[str]] = None,
    **kwargs: Any,
) -> ServiceAccount:
    """A ServiceAccount for a client of ``server`` (by role, or an entry such as a
    bulk client), asking for ``scope`` and ``audience`` (the client's own by
    default). The audience goes out as ``audience``, or as ``resource``
    (RFC 8707) in ``extra_params`` where the server uses that."""
    s = SERVERS[server]
    c = client if client is not None else s["clients"][role]
    scope = c["scopes"] if scope is None else scope
    audience = c["audience"] if audience is None else audience
    kwargs.update(audience_options(server, audience))
    kwargs.setdefault("client_secret", c["client_secret"])
    return ServiceAccount(
        token_url=s["token_url"],
        client_id=c["client_id"],
        auth_method=c["auth_method"],
        scope=list(scope) or None,
        **kwargs,
    )


def refreshes(log: EventLog) -> List[Dict[str, Any]]:
    with log.cond:
        return [e for e in log.events if e["type"] == "refresh_started"]


def count_since(log: EventLog, mark: int, kind: str) -> int:
    with log.cond:
        return sum(e["type"] == kind for e in log.events[mark:])


def wait_until(log: EventLog, what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    with log.cond:
        ok = log.cond.wait_for(condition, timeout)
    assert ok, f"timed out waiting for {what}; events: {log.types()[-20:]}"


def hydra_introspect_http(token: str) -> Dict[str, Any]:
    data = urllib.parse.urlencode({"token": token}).encode()
    with urllib.request.urlopen(SERVERS["hydra"]["introspection_url"], data=data, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def ms(moment: Any) -> int:
    return int(round(moment.timestamp() * 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- every client role issues tokens ------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_hydra_issues_tokens_for_every_client_role(role: str) -> None:
    account = account_for("hydra", role)
    token = account.token()
    client = SERVERS["hydra"]["clients"][role]
    details = hydra_introspect_http(token.access_token)
    assert details["active"] is True and details["client_id"] == client["client_id"]
    assert sorted(details["scope"].split()) == sorted(client["scopes"])
    assert details["aud"] == client["audience"]
    assert set(token.scope) == set(client["scopes"])
    assert account.get_token() == token.access_token


@pytest.mark.parametrize("role", ROLES)
def test_oidc_provider_issues_tokens_for_every_client_role(role: str) -> None:
    token = account_for("oidc_provider", role).token()
    assert token.access_token and token.token_type == "Bearer"


# ---- the end-to-end cases (the Rust suite's) ------------------------------------------


@pytest.mark.parametrize("role", ["basic", "post"])
@pytest.mark.parametrize("server", SERVER_NAMES)
def test_basic_and_post_auth_get_the_requested_scopes(server: str, role: str) -> None:
    client = SERVERS[server]["clients"][role]
    token = account_for(server, role).token()
    assert token.access_token
    for scope in client["scopes"]:
        assert scope in token.scope, f"{server}/{role}: {scope} not granted: {token.scope}"
    # Asking for less gets exactly that.
    narrow = account_for(server, role, scope=["billing:read"]).token()
    assert narrow.scope == ("billing:read",), f"{server}/{role}"


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_a_scope_the_client_may_not_have_is_a_held_configuration_error(server: str) -> None:
    log = EventLog()
    account = account_for(server, "basic", scope=["billing:read", "billing:admin"], on_event=log)
    started = now_ms()
    with pytest.raises(InvalidScopeError) as raised:
        account.get_token()
    error = raised.value
    assert isinstance(error, ConfigurationError)
    assert error.kind == "invalid_scope" and error.oauth_error == "invalid_scope", repr(error)
    assert error.fault == "configuration"
    assert error.retryable is False
    assert error.status == 400
    assert error.retry_at_ms is not None and error.retry_at_ms >= started + 60_000
    # No retry storm: further calls fail fast from the hold, without a request.
    for _ in range(20):
        with pytest.raises(InvalidScopeError):
            account.get_token()
    assert len(refreshes(log)) == 1, f"{server}: {log.types()}"
    assert account.state == "held"


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_an_audience_the_client_may_not_have_is_a_configuration_error(server: str) -> None:
    # Hydra: `audience=` (answers invalid_request, classified invalid_target);
    # oidc-provider: `resource=` through extra_params (answers invalid_target).
    log = EventLog()
    account = account_for(server, "basic", scope=["billing:read"], audience=[NOT_ALLOWED_AUDIENCE], on_event=log)
    with pytest.raises(InvalidTargetError) as raised:
        account.get_token()
    error = raised.value
    assert error.kind == "invalid_target", repr(error)
    assert error.fault == "configuration" and isinstance(error, ConfigurationError)
    assert error.retryable is False
    assert error.status == 400
    expected_code = "invalid_request" if SERVERS[server]["audience_parameter"] == "audience" else "invalid_target"
    assert error.oauth_error == expected_code
    with pytest.raises(InvalidTargetError):
        account.get_token()
    assert len(refreshes(log)) == 1, f"{server}: {log.types()}"


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_a_wrong_secret_is_invalid_client_and_never_shown(server: str) -> None:
    real = SERVERS[server]["clients"]["basic"]["client_secret"]
    wrong = f"wrong-{real}"
    log = EventLog()
    account = account_for(server, "basic", client_secret=wrong, on_event=log)
    try:
        account.get_token()
    except TokenError as error:
        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        caught = error
    else:
        pytest.fail("a wrong secret got a token")
    assert isinstance(caught, InvalidClientError), repr(caught)
    assert caught.kind == "invalid_client" and caught.fault == "credentials"
    assert caught.status == 401 and caught.oauth_error == "invalid_client"
    texts = [str(caught), repr(caught), shown, str(caught.description), repr(account), str(account)]
    texts += [json.dumps(e, default=str, ensure_ascii=False) for e in log.events] + [repr(e) for e in log.events]
    check_no_secret_shown(server, texts, [wrong, real])


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_secrets_with_reserved_characters_work(server: str) -> None:
    special_secret(server)
    assert account_for(server, "special_secret").get_token()


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_two_hundred_random_secrets_are_each_accepted(server: str) -> None:
    bulk = bulk_clients(server)

    def attempt(client: Dict[str, Any]) -> Optional[str]:
        try:
            account_for(server, client=client, scope=[], audience=[]).get_token()
            return None
        except TokenError as error:  # never shows the secret
            return f"{client['client_id']}: {error.kind}: {error}"

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        check_all_accepted(server, list(pool.map(attempt, bulk)), len(bulk))


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_jwt_access_token_exp_matches_the_engine_expiry(server: str) -> None:
    account = account_for(server, "jwt")
    token = account.token()
    engine_token = account.engine.current_token()
    assert engine_token is not None
    assert ms(token.expires_at) == engine_token.expires_at
    exp_ms = int(jwt_claims(token.access_token)["exp"]) * 1000
    diff = abs(exp_ms - engine_token.expires_at)
    assert diff <= 2_000, f"{server}: exp {exp_ms} vs engine expires_at {engine_token.expires_at} ({diff} ms apart)"


@pytest.mark.parametrize("role", ["basic", "jwt"])
def test_hydra_introspection_says_the_token_is_active_for_the_client(role: str) -> None:
    client = SERVERS["hydra"]["clients"][role]
    token = account_for("hydra", role).get_token()
    info = json.loads(hydra_cli("introspect", "token", "--endpoint", hydra_admin_url(), "--format", "json", token))
    assert info["active"] is True, f"{role}: {info}"
    assert info["sub"] == client["client_id"], f"{role}: {info}"
    assert info["client_id"] == client["client_id"]


def _soak(server: str, seconds: int) -> str:
    """Four threads call get_token() on a 5-second token for ``seconds``."""
    log = EventLog()
    account = account_for(server, "short_ttl", on_event=log)
    first = account.token()
    lifetime = ms(first.expires_at) - ms(first.received_at)
    assert lifetime <= 5_000, f"{server}: short_ttl token lives {lifetime} ms"
    deadline = time.monotonic() + seconds
    calls = [0] * 4
    failures: List[str] = []

    def worker(i: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            try:
                account.get_token()
            except TokenError as error:
                failures.append(f"{error.kind}: {error}")
            n += 1
            time.sleep(0)  # let the others (and the background refresh) have the GIL
        calls[i] = n

    threads = [threading.Thread(target=worker, args=(i,), name=f"soak-{server}-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A background refresh started just before the deadline: let it land.
    wait_until(log, "the last refresh to end", lambda: open_fetches(log.events) == 0, timeout=15)
    assert not failures, f"{server}: {len(failures)} failed calls: {failures[:3]}"

    with log.cond:
        events = list(log.events)
    # Single flight is judged by the engine's timestamps: handlers may be
    # called from several threads.
    acquired = check_soak(server, events, seconds, lifetime)
    return f"{server}: {sum(calls)} calls in {seconds} s, {acquired} tokens of {lifetime} ms, 0 failures, every refresh ahead"


def test_five_second_tokens_are_refreshed_ahead_on_both_servers_at_once() -> None:
    """Callers hammer a 5-second token for TOKENWELL_E2E_SOAK_SECONDS (30) on both
    servers in parallel: every call succeeds and no caller waits on the network
    after the first token (every later refresh has reason ``ahead``)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SERVER_NAMES)) as pool:
        outcomes = [pool.submit(_soak, server, SOAK_SECONDS) for server in SERVER_NAMES]
        for outcome in outcomes:
            print(outcome.result())


def test_secret_rotation_in_hydra_has_zero_failed_calls(tmp_path: Path) -> None:
    """The Kubernetes order of a rotation: the mounted secret file gets
    ``[new, old]``, then the operator changes the client's secret in Hydra
    (``hydra update client --file``), then the file drops the old one. A worker
    calling all the time sees no failed call."""
    admin = hydra_admin_url()
    old, new = f"old:+% {os.getpid()}", f"new&= é{os.getpid()}"
    client_doc = tmp_path / "client.json"

    def write_client(secret: str) -> None:
        client_doc.write_text(json.dumps({
            "client_name": "Rotating Worker (Python)",
            "client_secret": secret,
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "billing:read",
            "client_credentials_grant_access_token_lifespan": "4s",
        }), encoding="utf-8")

    secret_file = tmp_path / "client-secret"

    def mount(*secrets: str) -> None:  # an atomic swap, as the kubelet does
        staged = tmp_path / ".client-secret.new"
        staged.write_text("".join(f"{s}\n" for s in secrets), encoding="utf-8")
        os.replace(staged, secret_file)

    write_client(old)
    created = json.loads(hydra_cli("create", "client", "--endpoint", admin, "--format", "json", "--file", str(client_doc)))
    client_id = created["client_id"]
    mount(old)
    log = EventLog()
    account = ServiceAccount(token_url=SERVERS["hydra"]["token_url"], client_id=client_id,
                             client_secret_file=secret_file, scope="billing:read", on_event=log)
    account.get_token()

    stop = threading.Event()
    failures: List[str] = []
    calls = [0]

    def worker() -> None:
        while not stop.is_set():
            try:
                account.get_token()
            except TokenError as error:
                failures.append(f"{error.kind}: {error}")
            calls[0] += 1
            time.sleep(0.005)  # the pacing of a busy worker, not synchronization

    thread = threading.Thread(target=worker, name="rotation-worker")
    thread.start()
    try:
        # 1. The mounted file gets [new, old].
        mark = len(log.events)
        mount(new, old)
        wait_until(log, "the new secret file to be read", lambda: count_since(log, mark, "secrets_replaced") >= 1)
        # The next refresh tries the new secret first; Hydra refuses it; the old one works.
        mark = len(log.events)
        wait_until(log, "a refresh with [new, old]", lambda: count_since(log, mark, "token_acquired") >= 1)
        # 2. The operator rotates the secret in Hydra.
        write_client(new)
        hydra_cli("update", "client", client_id, "--endpoint", admin, "--format", "json", "--file", str(client_doc))
        mark = len(log.events)
        wait_until(log, "two refreshes after the rotation", lambda: count_since(log, mark, "token_acquired") >= 2)
        # 3. The file drops the old secret.
        mark = len(log.events)
        mount(new)
        wait_until(log, "two refreshes with only the new secret", lambda: count_since(log, mark, "token_acquired") >= 2)
    finally:
        stop.set()
        thread.join()
    assert not failures, f"{len(failures)} of {calls[0]} calls failed: {failures[:3]}"
    assert calls[0] > 100, f"the worker made only {calls[0]} calls"
    fallbacks = log.count("secret_fallback")
    assert fallbacks >= 2, f"expected a fallback to the old secret, then to the new one; saw {fallbacks}: {log.types()}"
    leaked = any(old in json.dumps(e, default=str, ensure_ascii=False) or new in json.dumps(e, default=str, ensure_ascii=False) for e in log.events)
    assert not leaked, "a secret is in an event"
    print(f"rotation: {calls[0]} calls, 0 failures, {fallbacks} secret fallbacks")


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_the_cron_example_run_twice_reuses_the_cached_token(server: str, tmp_path: Path) -> None:
    s = SERVERS[server]
    client = s["clients"]["basic"]
    env = dict(os.environ, CLIENT_ID=client["client_id"], CLIENT_SECRET=client["client_secret"],
               TOKEN_URL=s["token_url"], SCOPE=" ".join(client["scopes"]), TOKEN_CACHE_PATH=str(tmp_path / "cron.json"))
    if s["audience_parameter"] == "audience":  # oidc-provider: its default resource (cron.py sends no `resource`)
        env["AUDIENCE"] = " ".join(client["audience"])
    env.pop("CLIENT_SECRET_FILE", None)
    outputs: List[str] = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(CRON)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0].startswith("token: fetched a new token"), outputs
    assert outputs[1].startswith("token: reused the cached token"), outputs
    snapshot = json.loads((tmp_path / "cron.json").read_text())
    leaked = client["client_secret"] in (tmp_path / "cron.json").read_text()
    assert not leaked, "the secret is in the cache file"
    if server == "hydra":
        assert hydra_introspect_http(snapshot["access_token"])["active"] is True


@pytest.mark.parametrize("server", SERVER_NAMES)
def test_refresh_ahead_on_a_5_second_token_with_a_moved_clock(server: str) -> None:
    """The short_ttl client's tokens live 5 s: the margin shrinks to half the
    lifetime. The clock is moved past the refresh point (no waiting)."""
    clock = FakeClock(time.time())
    log = EventLog()
    account = account_for(server, "short_ttl", clock=clock, on_event=log)
    first = account.token()
    assert (first.expires_at - first.received_at).total_seconds() <= 5
    engine_token = account.engine.current_token()
    assert engine_token is not None and engine_token.refresh_at < engine_token.usable_until
    clock.now = engine_token.refresh_at / 1000.0 + 0.001  # past the refresh point, before the margin
    assert account.get_token() == first.access_token
    log.wait_for("token_acquired", 2)
    assert account.get_token() != first.access_token



# ---- Hydra over TLS, with a CA of its own --------------------------------------------

HYDRA_TLS: Dict[str, Any] = SERVERS.get("hydra_tls") or {}
# with-servers.sh always starts the TLS Hydra: with servers, its absence is a failure.
needs_hydra_tls = pytest.mark.skipif(not SERVERS, reason="no servers.json")
TLS_WAYS = ["sync", "async"]


def hydra_tls_env(with_ca: bool) -> Dict[str, str]:
    """The variables a service on Hydra-over-TLS is given (``from_env``)."""
    client = HYDRA_TLS["clients"]["basic"]
    env = {
        "CLIENT_ID": client["client_id"],
        "CLIENT_SECRET": client["client_secret"],
        "TOKEN_URL": HYDRA_TLS["token_url"],
        "SCOPE": " ".join(client["scopes"]),
        "AUTH_METHOD": client.get("auth_method", "client_secret_basic"),
    }
    if client.get("audience"):
        env["AUDIENCE"] = " ".join(client["audience"])
    if with_ca:
        env["TOKENWELL_CA_FILE"] = HYDRA_TLS["ca_file"]
    return env


def fetch(account: ServiceAccount, way: str) -> str:
    return account.get_token() if way == "sync" else asyncio.run(account.get_token_async())


@pytest.fixture
def no_ambient_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets decides which CA is trusted and which proxy is used."""
    for name in ("TOKENWELL_CA_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def hydra_tls_introspect(token: str) -> Dict[str, Any]:
    """Hydra's admin introspection, directly (never through a proxy a test set)."""
    context = ssl.create_default_context(cafile=HYDRA_TLS["ca_file"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    url = HYDRA_TLS["admin_url"].rstrip("/") + "/admin/oauth2/introspect"
    data = urllib.parse.urlencode({"token": token}).encode()
    with opener.open(url, data=data, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@needs_hydra_tls
@pytest.mark.parametrize("way", TLS_WAYS)
def test_hydra_over_tls_with_tokenwell_ca_file(way: str, no_ambient_ca: None) -> None:
    assert HYDRA_TLS["token_url"].startswith("https://")
    token = fetch(ServiceAccount.from_env(environ=hydra_tls_env(with_ca=True)), way)
    client = HYDRA_TLS["clients"]["basic"]
    details = hydra_tls_introspect(token)
    assert details["active"] is True and details["client_id"] == client["client_id"]


@needs_hydra_tls
@pytest.mark.parametrize("way", TLS_WAYS)
def test_hydra_over_tls_without_the_ca_is_a_held_tls_certificate_error(way: str, no_ambient_ca: None) -> None:
    log = EventLog()
    account = ServiceAccount.from_env(environ=hydra_tls_env(with_ca=False), on_event=log)
    with pytest.raises(TlsCertificateError) as raised:
        fetch(account, way)
    error = raised.value
    assert isinstance(error, ConfigurationError)
    assert (error.kind, error.fault, error.retryable) == ("tls_certificate", "configuration", False)
    assert "ca_file" in str(error) and "TOKENWELL_CA_FILE" in str(error), str(error)
    with pytest.raises(TlsCertificateError):
        fetch(account, way)
    assert len(refreshes(log)) == 1, log.types()  # held: no second attempt
    assert account.state == "held"


@needs_hydra_tls
@pytest.mark.parametrize("way", TLS_WAYS)
def test_hydra_over_tls_through_the_connect_proxy(
    way: str, no_ambient_ca: None, connect_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    token = fetch(ServiceAccount.from_env(environ=hydra_tls_env(with_ca=True)), way)
    assert hydra_tls_introspect(token)["active"] is True
    target = urllib.parse.urlsplit(HYDRA_TLS["token_url"])
    assert connect_proxy.log() == [{"method": "CONNECT", "target": f"{target.hostname}:{target.port}", "allowed": True}]
