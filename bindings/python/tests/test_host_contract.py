"""Replays every host-contract scenario (tests/conformance/host/*.json, format
at the end of tests/conformance/README.md) through the Python API, so Python
cannot drift from the other hosts:

- ``env``: ``ServiceAccount.from_env(prefix=, environ=, **explicit)`` with the
  explicit options in Python's spelling; the account's configuration (or the
  ``InvalidConfigError``) is compared. The scenario's file paths are replaced
  by real files in a temporary directory (the secret file holding
  ``secret_file_contents``, the key file holding ``key_file_contents``, a CA
  file holding a PEM bundle), in the expectation too.
- ``secret_file``: through an account watching a real file (rewritten with
  ``contents``, found at the next once-a-second check), and through the
  public engine, ``TokenCache.replace_secrets_from_file``, like the Rust runner.
- ``unauthorized``: through ``RequestsAuth`` and ``HttpxAuth`` (sync and
  async) with a token source whose ``invalidate`` answers the scenario's
  outcome, against a loopback API that refuses every token: the adapter
  retries once exactly when ``expect.retry`` holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

import tokenwell
from tokenwell import InvalidConfigError, RequestsAuth, ServiceAccount, TokenCache

from conftest import WAIT, FakeClock, TestCA, token_body

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "conformance"))
from replay import HOST_SCENARIOS, check_host_case, host_scenario_paths  # noqa: E402

ENV = host_scenario_paths("env")
SECRET_FILE = host_scenario_paths("secret_file")
UNAUTHORIZED = host_scenario_paths("unauthorized")

# The constructor's arguments that carry an engine option under its own name.
PYTHON_ARGUMENTS = {
    "token_url", "client_id", "client_secret", "auth_method", "scope", "audience",
    "extra_params", "max_response_bytes", "allow_insecure_http",
}
# Engine options Python takes in seconds, under another name.
SECONDS = {"refresh_margin_ms": "refresh_margin", "request_timeout_ms": "timeout"}
NEVER_CALLED = "the scenario must not send a token request"


def load(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_every_kind_is_replayed() -> None:
    assert HOST_SCENARIOS.is_dir()
    every = host_scenario_paths()
    assert len(every) >= 32, f"only {len(every)} host-contract scenarios"
    assert len(ENV) + len(SECRET_FILE) + len(UNAUTHORIZED) == len(every), "a scenario kind is not replayed here"


def python_spelling(explicit: Dict[str, Any]) -> Dict[str, Any]:
    """``explicit`` (the engine's ``snake_case``, ms) as ``from_env`` keyword arguments."""
    arguments: Dict[str, Any] = {}
    engine_options: Dict[str, Any] = {}
    for name, value in explicit.items():
        if name in PYTHON_ARGUMENTS:
            arguments[name] = value
        elif name in SECONDS:
            arguments[SECONDS[name]] = value / 1000
        else:
            engine_options[name] = value
    if engine_options:
        arguments["engine_options"] = engine_options
    return arguments


@pytest.fixture(scope="session")
def pem_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PEM file of CA certificates: the system's, else a test CA made with openssl."""
    system = ssl.get_default_verify_paths().cafile
    if system and os.path.isfile(system):
        return system
    if shutil.which("openssl") is None:
        pytest.skip("no CA bundle on this machine and no openssl to make one")
    from conftest import make_test_ca

    ca: TestCA = make_test_ca(tmp_path_factory.mktemp("host-contract-ca"))
    return ca.ca_file


def real_files(case: Dict[str, Any], directory: Path, pem: str) -> Dict[str, str]:
    """A real file for every path the scenario names: ``{scenario path: real path}``."""
    prefix = case.get("prefix", "")
    secret_paths = [case["env"].get(f"{prefix}CLIENT_SECRET_FILE"), case.get("explicit_secret_file")]
    ca_paths = [case["env"].get("TOKENWELL_CA_FILE"), case.get("explicit_ca_file")]
    key_path = case["env"].get(f"{prefix}CLIENT_PRIVATE_KEY_FILE")
    paths: Dict[str, str] = {}
    if key_path:
        real = directory / "private-key"
        if case.get("key_file_contents") is not None:
            real.write_text(case["key_file_contents"], encoding="utf-8")
        paths[key_path] = str(real)
    for i, path in enumerate(p for p in secret_paths if p):
        real = directory / f"secret-{i}"
        if case.get("secret_file_contents") is not None:
            real.write_text(case["secret_file_contents"], encoding="utf-8")
        paths[path] = str(real)
    for i, path in enumerate(p for p in ca_paths if p):
        real = directory / f"ca-{i}.pem"
        shutil.copyfile(pem, real)
        paths[path] = str(real)
    return paths


def replaced(value: Any, paths: Dict[str, str]) -> Any:
    return paths.get(value, value) if isinstance(value, str) else value


def run_env_case(case: Dict[str, Any], directory: Path, pem: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(actual, case with the real paths)``."""
    paths = real_files(case, directory, pem)
    case = dict(case)
    case["env"] = {name: replaced(value, paths) for name, value in case["env"].items()}
    for key in ("expect",):
        if key in case:
            case[key] = {name: replaced(value, paths) for name, value in case[key].items()}
    arguments = python_spelling(case["explicit"])
    if case.get("explicit_secret_file"):
        arguments["client_secret_file"] = paths[case["explicit_secret_file"]]
    if case.get("explicit_ca_file"):
        arguments["ca_file"] = paths[case["explicit_ca_file"]]

    def refuse(request: Any) -> Any:
        raise AssertionError(NEVER_CALLED)

    try:
        account = ServiceAccount.from_env(
            prefix=case.get("prefix", ""), environ=case["env"], transport=refuse, **arguments
        )
    except InvalidConfigError as error:
        field = error.field or ""
        for engine_name, python_name in SECONDS.items():  # the argument's name, as the engine's
            if field.split("[")[0] == python_name:
                field = engine_name + field[len(python_name):]
        return {"error": {"field": field, "problem": error.problem}}, case
    with account:
        engine = account.engine
        return {"config": {
            "token_url": engine.token_url,
            "issuer": engine.issuer,
            "client_id": engine.client_id,
            "auth_method": engine.auth_method,
            "scopes": list(engine.scopes),
            "audiences": list(engine.audiences),
            "secret_count": engine.secret_count,
            "key_count": engine.key_count,
            "key_file": account.private_key_file,
            "secret_file": account.client_secret_file,
            "ca_file": account.ca_file,
        }}, case


@pytest.mark.parametrize("path", ENV, ids=[p.stem for p in ENV])
def test_env_scenario(path: Path, tmp_path: Path, pem_bundle: str) -> None:
    actual, case = run_env_case(load(path), tmp_path, pem_bundle)
    check_host_case(case, actual, path.name)


# ---- secret files ------------------------------------------------------------------


def replace_file(path: Path, text: str) -> None:
    """A new file renamed over the old one (a new inode: always a change)."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


@pytest.mark.parametrize("path", SECRET_FILE, ids=[p.stem for p in SECRET_FILE])
def test_secret_file_scenario_through_an_account(path: Path, tmp_path: Path, clock: FakeClock) -> None:
    case = load(path)
    source = case["source"]
    secret_file = tmp_path / "client-secret"
    replace_file(secret_file, "".join(f"{s}\n" for s in case["current"]))
    events: List[Dict[str, Any]] = []
    transport = lambda request: (200, [], token_body("at-1"))  # noqa: E731
    common: Dict[str, Any] = dict(transport=transport, clock=clock, on_event=events.append, refresh_when_idle=False)
    if source == "client_secret_file":
        account = ServiceAccount(token_url="http://127.0.0.1:9/t", client_id="c", client_secret_file=secret_file,
                                 **common)
    else:  # a variable: from_env, with the prefix the variable implies
        prefix = source[: -len("CLIENT_SECRET_FILE")]
        environ = {f"{prefix}CLIENT_ID": "c", f"{prefix}TOKEN_URL": "http://127.0.0.1:9/t", source: str(secret_file)}
        account = ServiceAccount.from_env(prefix, environ=environ, **common)
    with account:
        assert account.get_token() == "at-1"
        mark = len(events)
        replace_file(secret_file, case["contents"])
        clock.advance(1)  # the next check of the watch
        assert account.get_token() == "at-1"
        seen = events[mark:]
        rejected = [e for e in seen if e["type"] == "secret_file_rejected"]
        actual: Dict[str, Any] = {"secret_count": account.engine.secret_count, "events": seen}
        if rejected:
            actual.update(result="rejected", error={"field": rejected[0]["source"], "problem": rejected[0]["problem"]})
        else:
            actual.update(result="replaced", changed=any(e["type"] == "secrets_replaced" for e in seen))
    check_host_case(case, actual, path.name)


@pytest.mark.parametrize("path", SECRET_FILE, ids=[p.stem for p in SECRET_FILE])
def test_secret_file_scenario_through_the_engine(path: Path) -> None:
    case = load(path)
    cache = TokenCache({"token_url": "https://auth.example/oauth2/token", "client_id": "c",
                        "client_secret": case["current"]})
    actual: Dict[str, Any]
    try:
        changed = cache.replace_secrets_from_file(case["contents"], case["source"], 1_700_000_000_000)
    except InvalidConfigError as error:
        actual = {"result": "rejected", "error": {"field": error.field, "problem": error.problem}}
    else:
        actual = {"result": "replaced", "changed": changed}
    actual.update(secret_count=cache.secret_count, events=cache.drain_events())
    check_host_case(case, actual, path.name)


# ---- the 401 rule --------------------------------------------------------------------


class OutcomeSource:
    """A token source whose ``invalidate`` answers the scenario's outcome."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.handed_out = 0

    def get_token(self) -> str:
        self.handed_out += 1
        return f"token-{self.handed_out}"

    async def get_token_async(self) -> str:
        return self.get_token()

    def invalidate(self, token: str) -> str:
        return self.outcome


def send_with(way: str, source: OutcomeSource, url: str) -> int:
    if way == "requests":
        requests = pytest.importorskip("requests")
        return int(requests.get(url, auth=RequestsAuth(source), timeout=WAIT).status_code)
    httpx = pytest.importorskip("httpx")
    if way == "httpx-sync":
        with httpx.Client(auth=tokenwell.HttpxAuth(source), timeout=WAIT) as client:
            return int(client.get(url).status_code)

    async def main() -> int:
        async with httpx.AsyncClient(auth=tokenwell.HttpxAuth(source), timeout=WAIT) as client:
            return int((await client.get(url)).status_code)

    return asyncio.run(main())


@pytest.fixture
def refusing_api(api: Callable[[Any], Any]) -> Iterator[Any]:
    yield api(set())


@pytest.mark.parametrize("way", ["requests", "httpx-sync", "httpx-async"])
@pytest.mark.parametrize("path", UNAUTHORIZED, ids=[p.stem for p in UNAUTHORIZED])
def test_unauthorized_scenario(path: Path, way: str, refusing_api: Any) -> None:
    case = load(path)
    source = OutcomeSource(case["invalidate_outcome"])
    assert send_with(way, source, refusing_api.url) == 401  # a retry, if any, is refused too: never twice
    sent = [auth for _, auth, _ in refusing_api.seen]
    actual = {"retry": len(sent) == 2}
    assert sent[1:] in ([], ["Bearer token-2"]), sent
    check_host_case(case, actual, f"{path.name} ({way})")
    assert tokenwell.retry_request(case["invalidate_outcome"]) is case["expect"]["retry"]
