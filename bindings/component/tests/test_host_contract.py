"""Replays the host-contract scenarios (tests/conformance/host/*.json, format
at the end of tests/conformance/README.md) through the components, so that the
component cannot drift from the other hosts (core/tests/host_contract.rs,
bindings/python/tests/test_host_contract.py, Node's runner):

- ``env``: the scenario's variables are the provider's WASI environment, and
  ``configure-from-environment(prefix)`` is called. An error is compared
  exactly (field and problem). A configuration is observed where the provider
  shows it, on the wire: a second instance gets the same environment with each
  URL's origin (``https://auth.example``) replaced by a loopback server of its
  own, answering discovery with metadata and every token request with
  ``invalid_client``, so that the provider tries each secret once. The token
  URL, client id, auth method, scopes and audiences are read from the token
  requests (the URL mapped back to the scenario's origin), the secret count is
  the number of different secrets tried, and ``token_url`` is ``""`` with the
  issuer read from the metadata request when the first request is discovery.
  The provider reads no file, so ``secret_file`` and ``ca_file`` are ``None``.
- ``unauthorized``: each outcome is produced by the provider's ``invalidate``
  (a loopback server handing out ``at-1``, ``at-2``...), and the engine
  component's ``retry-request`` (core's ``InvalidateOutcome::retry_request``,
  the one 401 rule) decides the retry; a retry must get a token other than the
  refused one, and no retry is made when the token would be the same.

Skipped, each with its reason (``why_not_replayed``), and only these:

- ``env`` with explicit options (``explicit``, ``explicit_secret_file``,
  ``explicit_ca_file``): ``configure-from-environment`` takes only a prefix.
- ``env`` whose merge reads a secret or key file: the provider has no
  filesystem access. Instead, ``test_file_scenarios_are_refused_naming_the_variable``
  checks that the provider refuses them, naming the variable.
- ``env`` with ``TOKENWELL_CA_FILE``: TLS trust is the ``wasi:http`` host's,
  not the component's, and nothing reports a CA file.
- ``secret_file``: neither world exposes core's ``replace_secrets_from_file``
  (the engine's ``replace-secrets`` takes parsed secrets, and parsing them in
  this runner would be a second copy of the rule), and the provider reads no file.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

from token_server import Recorded, Reply, TokenServer, token_reply
from wasm_host import REPO, EngineInstance, ProviderInstance, canonical_config_error, canonical_error, is_err, snake

sys.path.insert(0, str(REPO / "tests" / "conformance"))
from replay import HOST_SCENARIOS, check_host_case, host_scenario_paths  # noqa: E402

ALL = host_scenario_paths()
ENV = host_scenario_paths("env")
SECRET_FILE = host_scenario_paths("secret_file")
UNAUTHORIZED = host_scenario_paths("unauthorized")

EXPLICIT = "configure-from-environment(prefix) takes no explicit options"
FILES = "the merge reads a secret or key file, and the provider has no filesystem access"
CA_FILE = "TOKENWELL_CA_FILE: TLS trust is the wasi:http host's, and nothing reports a CA file"
NO_FILE_ENTRY = (
    "no world exposes core's replace_secrets_from_file (the engine's replace-secrets takes parsed "
    "secrets), and the provider reads no file"
)
# The variables whose value is a URL: each origin gets a loopback server of its own.
URL_VARIABLES = ("TOKEN_URL", "HYDRA_URL", "ISSUER_URL")
WELL_KNOWN = "/.well-known/oauth-authorization-server"
METADATA_PATHS = (WELL_KNOWN, "/.well-known/openid-configuration")
# The one expected value no request shows: the issuer when it is not discovered.
UNOBSERVABLE_WITHOUT_DISCOVERY = {"issuer"}


def load(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def why_not_replayed(case: Dict[str, Any]) -> Optional[str]:
    """The reason this component cannot express ``case``, or ``None``."""
    if case["kind"] == "secret_file":
        return NO_FILE_ENTRY
    if case["kind"] != "env":
        return None
    if case["explicit"] or case["explicit_secret_file"] or case["explicit_ca_file"]:
        return EXPLICIT
    if case.get("secret_file_contents") is not None or case.get("key_file_contents") is not None:
        return FILES
    if "TOKENWELL_CA_FILE" in case["env"]:
        return CA_FILE
    return None


def replayed(paths: List[Path]) -> List[Path]:
    return [p for p in paths if why_not_replayed(load(p)) is None]


def test_every_kind_is_replayed_or_skipped_for_a_stated_reason() -> None:
    assert HOST_SCENARIOS.is_dir()
    assert len(ALL) >= 32, f"only {len(ALL)} host-contract scenarios"
    assert len(ENV) + len(SECRET_FILE) + len(UNAUTHORIZED) == len(ALL), "a scenario kind is not known here"
    skipped: Dict[str, List[str]] = {}
    for path in ALL:
        reason = why_not_replayed(load(path))
        if reason is not None:
            skipped.setdefault(reason, []).append(path.stem)
    # Every unauthorized scenario, and every env scenario without one of the
    # features above, is replayed; the skips are these reasons and no other.
    assert set(skipped) <= {EXPLICIT, FILES, CA_FILE, NO_FILE_ENTRY}, skipped
    assert sorted(skipped.get(NO_FILE_ENTRY, [])) == sorted(p.stem for p in SECRET_FILE)
    assert len(replayed(ENV)) >= 15 and replayed(UNAUTHORIZED) == UNAUTHORIZED
    print(f"\nhost contract: {len(replayed(ALL))} replayed, {len(ALL) - len(replayed(ALL))} skipped:")
    for reason, names in skipped.items():
        print(f"  {len(names)} ({reason}): {', '.join(names)}")


# ---- env -----------------------------------------------------------------------------


def configure_from_environment(env: Dict[str, str], prefix: str) -> Tuple[ProviderInstance, Optional[Dict[str, str]]]:
    """A provider with ``env`` as its WASI environment, configured from it:
    ``(provider, None)`` or ``(provider, {"field", "problem"})``."""
    provider = ProviderInstance(env)
    failed, value = is_err(provider.call("configure-from-environment", prefix))
    return provider, (canonical_config_error(value) if failed else None)


class Endpoint(TokenServer):
    """A loopback stand-in for one origin: metadata for a discovery ``GET``,
    ``invalid_client`` for every token request, so that every secret is tried.
    Requests go to one log shared by every endpoint, in arrival order."""

    def __init__(self, origin: str, log: List[Tuple[str, Recorded]], lock: threading.Lock) -> None:
        super().__init__()
        self.origin, self.log, self.log_lock = origin, log, lock
        self.issuer = ""

    def _record(self, request: Recorded) -> Reply:
        with self.log_lock:
            self.log.append((self.origin, request))
        if request.method == "GET":
            return Reply(200, {"issuer": self.issuer, "token_endpoint": self.token_url})
        return Reply(401, {"error": "invalid_client"})


def read_token_request(request: Recorded) -> Dict[str, Any]:
    """What one token request shows of the configuration, and the secret it used."""
    form = parse_qs(request.body, keep_blank_values=True)
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Basic "):
        client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        client_id, secret, method = unquote_plus(client_id), unquote_plus(secret), "client_secret_basic"
    else:
        client_id, secret, method = form["client_id"][0], form["client_secret"][0], "client_secret_post"
    scope = form.get("scope", [""])[0]
    return {
        "client_id": client_id,
        "auth_method": method,
        "scopes": scope.split(" ") if scope else [],
        "audiences": form.get("audience", []),
        "secret": secret,
    }


def observed_configuration(case: Dict[str, Any]) -> Tuple[Dict[str, Any], bool]:
    """The configuration the provider shows on the wire for ``case``'s
    environment (module docs), and whether the first request was discovery."""
    prefix = case["prefix"]
    env = dict(case["env"])
    log: List[Tuple[str, Recorded]] = []
    lock = threading.Lock()
    with ExitStack() as stack:
        endpoints: Dict[str, Endpoint] = {}
        for name in (prefix + v for v in URL_VARIABLES):
            value = env.get(name, "").strip()
            if not value:
                continue
            parts = urlsplit(value)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in endpoints:
                endpoints[origin] = stack.enter_context(Endpoint(origin, log, lock))
            env[name] = endpoints[origin].base_url + value[len(origin):]
            if name == prefix + "ISSUER_URL":
                endpoints[origin].issuer = env[name]
        provider, error = configure_from_environment(env, prefix)
        assert error is None, f"with loopback URLs the configuration is refused: {error}"
        failed, value = provider.get_token()
        assert failed, "every token request is refused: no token expected"
        assert canonical_error(value)["kind"] == "invalid_client", canonical_error(value)
        events = provider.drain_events()
    assert log, "the provider sent no request"

    def scenario_url(origin: str, request: Recorded) -> str:
        return origin + request.path

    actual: Dict[str, Any] = {"secret_file": None, "ca_file": None}  # the provider reads no file
    first_origin, first = log[0]
    discovered = first.method == "GET"
    if discovered:
        path = first.path
        assert path.startswith(METADATA_PATHS), path
        actual["token_url"] = ""  # as every host shows it before discovery
        actual["issuer"] = first_origin + (path[len(WELL_KNOWN):] if path.startswith(WELL_KNOWN) else "")
    posts = [(origin, r) for origin, r in log if r.method == "POST"]
    assert posts, "no token request was sent"
    seen = [read_token_request(r) for _, r in posts]
    secrets = [s.pop("secret") for s in seen]
    assert all(s == seen[0] for s in seen), f"the secrets' requests differ: {seen}"
    assert len(set(secrets)) == len(secrets), "a secret was tried twice"
    if not discovered:
        actual["token_url"] = scenario_url(*posts[0])
    actual.update(seen[0], secret_count=len(secrets))
    assert all(e["actor_id"] == actual["client_id"] for e in events)
    return actual, discovered


@pytest.mark.parametrize("path", ENV, ids=[p.stem for p in ENV])
def test_env_scenario(path: Path) -> None:
    case = load(path)
    reason = why_not_replayed(case)
    if reason is not None:
        pytest.skip(reason)
    _, error = configure_from_environment(case["env"], case["prefix"])
    if error is not None:
        check_host_case(case, {"error": error}, path.name)
        return
    assert "expect" in case, f"{path.name}: configured, but the scenario expects {case.get('expect_error')}"
    actual, discovered = observed_configuration(case)
    if not discovered:  # the issuer is only on the wire when it is discovered
        case = dict(case, expect={k: v for k, v in case["expect"].items() if k not in UNOBSERVABLE_WITHOUT_DISCOVERY})
    check_host_case(case, {"config": actual}, path.name)


FILE_VARIABLES = ("CLIENT_SECRET_FILE", "CLIENT_PRIVATE_KEY_FILE")


@pytest.mark.parametrize("path", [p for p in ENV if why_not_replayed(load(p)) == FILES],
                         ids=[p.stem for p in ENV if why_not_replayed(load(p)) == FILES])
def test_file_scenarios_are_refused_naming_the_variable(path: Path) -> None:
    """What the provider does instead of reading a file: it refuses the
    configuration, naming the variable, and shows no secret."""
    case = load(path)
    _, error = configure_from_environment(case["env"], case["prefix"])
    assert error is not None, f"{path.name}: a file variable was accepted by a provider that cannot read it"
    assert error["field"] in {case["prefix"] + v for v in FILE_VARIABLES}, error
    assert error["problem"].startswith("is not supported by the provider component, which has no filesystem access")
    assert case["env"][error["field"]] not in json.dumps(error)


# ---- the 401 rule --------------------------------------------------------------------


def outcome_through_the_provider(outcome: str) -> Tuple[str, str, str]:
    """``(outcome, refused token, the token got next)``: a 401 for a token,
    arranged so that the provider's ``invalidate`` answers ``outcome``."""
    with TokenServer() as server:
        server.script(*(token_reply(f"at-{i}", 3600) for i in range(1, 5)))
        env = {"TOKEN_URL": server.token_url, "CLIENT_ID": "c", "CLIENT_SECRET": "s3cr3t"}
        provider, error = configure_from_environment(env, "")
        assert error is None, error

        def token() -> str:
            failed, value = provider.get_token()
            assert not failed, canonical_error(value)
            return str(getattr(value, "access-token"))

        first = token()
        if outcome == "invalidated":
            refused = first
        else:  # a first 401 drops at-1; then a late 401 for at-1, or a second 401 at once
            assert provider.call("invalidate", first) == "invalidated"
            second = token()
            refused = first if outcome == "not_current" else second
        got = snake(provider.call("invalidate", refused))
        return got, refused, token()


@pytest.fixture(scope="module")
def engine() -> EngineInstance:
    return EngineInstance()


@pytest.mark.parametrize("path", UNAUTHORIZED, ids=[p.stem for p in UNAUTHORIZED])
def test_unauthorized_scenario(path: Path, engine: EngineInstance) -> None:
    case = load(path)
    outcome, refused, next_token = outcome_through_the_provider(case["invalidate_outcome"])
    assert outcome == case["invalidate_outcome"]
    retry = engine.call("retry-request", outcome.replace("_", "-"))
    check_host_case(case, {"retry": retry}, path.name)
    # The rule's reason: a retry gets another token; without one, the same would be sent again.
    assert (next_token != refused) is retry, (refused, next_token, retry)


@pytest.mark.parametrize("path", SECRET_FILE, ids=[p.stem for p in SECRET_FILE])
def test_secret_file_scenario(path: Path) -> None:
    assert why_not_replayed(load(path)) == NO_FILE_ENTRY
    pytest.skip(NO_FILE_ENTRY)
