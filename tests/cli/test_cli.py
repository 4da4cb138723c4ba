"""The tokenwell CLI, one spec (tests/cli/SPEC.md) tested against every entry
point: the Rust binary (bindings/cli), ``python -m tokenwell`` and the npm
package's bin (``node bindings/node/bin/tokenwell.js``; ``npx tokenwell`` itself
in the 20-invocation tests), when node is on PATH.

Tests without a server, or against a scripted token server on 127.0.0.1
(scripted_server.py), run in ``make test-cli``. Tests marked ``e2e`` run
against the real Hydra of ``$TOKENWELL_SERVERS`` (tests/integration/run.sh cli)
and are skipped without it (failed with TOKENWELL_REQUIRE_SERVERS=1).

Run with the Python package's venv: bindings/python/.venv/bin/python -m pytest tests/cli
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from scripted_server import RecordingProxy, ScriptedTokenServer  # noqa: E402

SECRET = "cli-s3cr3t:+% &="
EXIT = {"ok": 0, "usage": 64, "transient": 75, "malformed": 76, "credentials": 77, "configuration": 78}


def _rust_binary() -> Path:
    explicit = os.environ.get("TOKENWELL_CLI_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "debug" / "tokenwell"


def _entry_points() -> Dict[str, List[str]]:
    points = {"rust": [str(_rust_binary())], "python": [sys.executable, "-m", "tokenwell"]}
    node_bin = ROOT / "bindings" / "node" / "bin" / "tokenwell.js"
    if node_bin.exists() and shutil.which("node"):
        points["node"] = ["node", str(node_bin)]
    return points


ENTRY_POINTS = _entry_points()
NAMES = sorted(ENTRY_POINTS)
# `npx tokenwell` itself (the package's bin, resolved by npm; ~1 s more per call than
# `node bin/tokenwell.js`, which the other tests use): run by the 20-invocation tests.
if "node" in ENTRY_POINTS and shutil.which("npx"):
    ENTRY_POINTS["npx"] = ["npx", "--prefix", str(ROOT / "bindings" / "node"), "--no-install", "tokenwell"]
LOOP_NAMES = sorted(ENTRY_POINTS)


@pytest.fixture(scope="session", autouse=True)
def _binary_is_built() -> None:
    binary = _rust_binary()
    assert binary.exists(), f"{binary} is missing: build it with `cargo build -p tokenwell-cli` (make test-cli does)"


class Run:
    """One invocation's outcome."""

    def __init__(self, done: subprocess.CompletedProcess) -> None:
        self.code: int = done.returncode
        self.out: str = done.stdout
        self.err: str = done.stderr

    def __repr__(self) -> str:  # what a failing assertion shows: never the secret (not in any output)
        return f"Run(code={self.code}, out={self.out[:400]!r}, err={self.err[-800:]!r})"


class Env:
    """A clean environment for the CLI: no variable from the test's own
    environment but PATH, a private HOME and cache directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.vars: Dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / "cache"),
            "LANG": "C.UTF-8",
            "PYTHONNOUSERSITE": "1",
        }

    def configure(self, token_url: str, client_id: str = "cli-test", secret: str = SECRET, **more: str) -> "Env":
        self.vars.update({"TOKEN_URL": token_url, "CLIENT_ID": client_id, "CLIENT_SECRET": secret})
        self.vars.update(more)
        return self

    def run(self, entry: str, *args: str, timeout: float = 60) -> Run:
        done = subprocess.run(
            [*ENTRY_POINTS[entry], *args], env=self.vars, capture_output=True, text=True, timeout=timeout, cwd=self.home
        )
        run = Run(done)
        assert SECRET not in run.err and SECRET not in run.out, "a secret was printed"
        return run

    def cache_files(self) -> List[Path]:
        return sorted((self.home / "cache" / "tokenwell").glob("*.json"))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return Env(home)


def shape(text: str) -> str:
    """Output with tokens and instants abstracted, for comparing entry points."""
    text = re.sub(r"tw-cli-test-\d+", "<token>", text)
    text = re.sub(r"ory_at_[A-Za-z0-9_.\-]+", "<token>", text)
    text = re.sub(r'"expires_at":\d+', '"expires_at":<t>', text)
    text = re.sub(r"EXPIRES_AT=\d+", "EXPIRES_AT=<t>", text)
    return text


def stderr_lines(run: Run) -> List[str]:
    return [line for line in run.err.splitlines() if line.startswith("tokenwell: ")]


# ---- no server ------------------------------------------------------------------------------


def test_help_is_one_text_with_the_exit_codes(env: Env) -> None:
    runs = {entry: env.run(entry, "--help") for entry in NAMES}
    for entry, run in runs.items():
        assert run.code == 0, (entry, run)
        for code_line in ("64  usage", "75  transient", "76  malformed", "77  credentials", "78  configuration"):
            assert code_line in run.out, (entry, code_line)
    assert len({run.out for run in runs.values()}) == 1, "the entry points' --help texts differ"


@pytest.mark.parametrize("entry", NAMES)
@pytest.mark.parametrize(
    "argv",
    [[], ["tokens"], ["token", "--format", "xml"], ["exec"], ["token", "--client-secret", "x"], ["token", "--var", "1X"],
     ["check", "--format", "json"], ["token", "--scope"]],
    ids=["none", "unknown", "format", "exec-bare", "secret-flag", "var", "format-check", "dangling"],
)
def test_usage_errors_exit_64(env: Env, entry: str, argv: List[str]) -> None:
    run = env.run(entry, *argv)
    assert (run.code, run.out) == (EXIT["usage"], ""), run
    assert run.err.startswith("tokenwell: usage: "), run


def test_usage_messages_match(env: Env) -> None:
    for argv in (["tokens"], ["token", "--format", "xml"], ["exec"]):
        errs = {entry: env.run(entry, *argv).err for entry in NAMES}
        assert len(set(errs.values())) == 1, errs


@pytest.mark.parametrize("entry", NAMES)
def test_missing_configuration_names_every_variable(env: Env, entry: str) -> None:
    run = env.run(entry, "token")
    assert (run.code, run.out) == (EXIT["configuration"], ""), run
    lines = stderr_lines(run)
    assert lines[0].startswith("tokenwell: error: invalid configuration: CLIENT_ID: is not set"), run
    assert "TOKEN_URL" in lines[0] and "CLIENT_SECRET" in lines[0], run
    assert lines[1] == "tokenwell: fault: configuration (config); exit 78", run
    assert lines[2].startswith("tokenwell: what to do: "), run


@pytest.mark.parametrize("entry", NAMES)
def test_prefix_and_flag_errors_are_named(env: Env, entry: str) -> None:
    env.vars.update({"BILLING_CLIENT_ID": "x", "BILLING_CLIENT_SECRET": "y"})
    run = env.run(entry, "--prefix", "BILLING_", "token", "--token-url", "not a url")
    assert run.code == EXIT["configuration"], run
    assert stderr_lines(run)[0].startswith("tokenwell: error: invalid configuration: --token-url: "), run


# ---- against a scripted token server ----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ScriptedTokenServer]:
    with ScriptedTokenServer("token") as running:
        yield running


@pytest.mark.parametrize("entry", NAMES)
def test_formats(env: Env, server: ScriptedTokenServer, entry: str) -> None:
    env.configure(server.token_url, SCOPE="billing:read billing:write")
    token = env.run(entry, "token", "--no-cache")
    assert token.code == 0 and token.err == "", token
    assert re.fullmatch(r"tw-cli-test-\d+\n", token.out), token
    header = env.run(entry, "token", "--no-cache", "--format", "header")
    assert re.fullmatch(r"Authorization: Bearer tw-cli-test-\d+\n", header.out), header
    as_json = env.run(entry, "token", "--no-cache", "--format=json")
    wire = json.loads(as_json.out)
    assert list(wire) == ["access_token", "token_type", "expires_at", "scope"], wire
    assert wire["token_type"] == "Bearer" and wire["scope"] == "billing:read billing:write", wire
    assert isinstance(wire["expires_at"], int) and wire["expires_at"] > 1_700_000_000, wire
    as_env = env.run(entry, "token", "--no-cache", "--format", "env", "--var", "API_TOKEN")
    assert re.fullmatch(
        r"export API_TOKEN='tw-cli-test-\d+'\nexport API_TOKEN_EXPIRES_AT=\d+\nexport API_TOKEN_SCOPE='billing:read billing:write'\n",
        as_env.out,
    ), as_env
    evaluated = subprocess.run(["sh", "-c", as_env.out + 'printf %s "$API_TOKEN"'], capture_output=True, text=True)
    assert evaluated.stdout == as_env.out.split("'")[1]
    assert server.count == 4


def test_formats_are_identical_across_entry_points(env: Env, server: ScriptedTokenServer) -> None:
    env.configure(server.token_url, SCOPE="a b")
    for fmt in ("token", "header", "json", "env"):
        outs = {entry: shape(env.run(entry, "token", "--no-cache", "--format", fmt).out) for entry in NAMES}
        assert len(set(outs.values())) == 1, (fmt, outs)


FAULTS = [
    ("invalid_client", "credentials", "fault: credentials (invalid_client); exit 77"),
    ("not_found", "configuration", "fault: configuration (endpoint_not_found); exit 78"),
    ("unavailable", "transient", "fault: authorization_server (server_error); exit 75"),
    ("garbage", "malformed", "fault: malformed_response (malformed_response); exit 76"),
]


@pytest.mark.parametrize("mode,fault,fault_line", FAULTS, ids=[f[0] for f in FAULTS])
def test_faults_exit_by_who_must_act_alike_everywhere(env: Env, mode: str, fault: str, fault_line: str) -> None:
    with ScriptedTokenServer(mode) as failing:
        env.configure(failing.token_url)
        runs = {entry: env.run(entry, "token") for entry in NAMES}
    for entry, run in runs.items():
        assert (run.code, run.out) == (EXIT[fault], ""), (entry, run)
        lines = stderr_lines(run)
        assert lines[0].startswith("tokenwell: error: "), (entry, run)
        assert lines[1] == f"tokenwell: {fault_line}", (entry, run)
        assert lines[2].startswith("tokenwell: what to do: "), (entry, run)
    assert len({tuple(stderr_lines(r)[1:]) for r in runs.values()}) == 1, runs
    # A failure leaves nothing in the cache.
    assert env.cache_files() == []


@pytest.mark.parametrize("entry", NAMES)
def test_connection_refused_is_transient(env: Env, entry: str) -> None:
    with ScriptedTokenServer("token") as gone:
        url = gone.token_url
    env.configure(url)
    run = env.run(entry, "token")
    assert (run.code, run.out) == (EXIT["transient"], ""), run
    assert stderr_lines(run)[1] == "tokenwell: fault: transport (transport); exit 75", run


@pytest.mark.parametrize("entry", LOOP_NAMES)
def test_twenty_invocations_make_one_request(env: Env, server: ScriptedTokenServer, entry: str) -> None:
    env.configure(server.token_url, SCOPE="billing:read")
    command = " ".join(map(shell_word, ENTRY_POINTS[entry]))
    script = f'set -e\nfor i in $(seq 20); do {command} token >> "$HOME/tokens"; done\n'
    done = subprocess.run(["sh", "-c", script], env=env.vars, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    tokens = (env.home / "tokens").read_text().splitlines()
    assert len(tokens) == 20 and len(set(tokens)) == 1, tokens[:3]
    assert server.count == 1, f"{entry}: {server.count} token requests for 20 invocations"
    files = env.cache_files()
    assert len(files) == 1, files
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert Path(str(files[0]) + ".lock").exists()
    assert json.loads(files[0].read_text())["access_token"] == tokens[0]


def shell_word(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


@pytest.mark.parametrize("entry", NAMES)
def test_no_cache_asks_every_time(env: Env, server: ScriptedTokenServer, entry: str) -> None:
    env.configure(server.token_url)
    for _ in range(3):
        assert env.run(entry, "token", "--no-cache").code == 0
    assert server.count == 3 and env.cache_files() == []


def test_entry_points_share_one_cache_file(env: Env, server: ScriptedTokenServer) -> None:
    env.configure(server.token_url, SCOPE="billing:read")
    first = env.run(NAMES[0], "token")
    others = [env.run(entry, "token") for entry in NAMES[1:]]
    assert server.count == 1, server.count
    assert all(run.out == first.out for run in others), [first, *others]


@pytest.mark.parametrize("entry", NAMES)
def test_explicit_cache_path_and_a_planted_symlink(env: Env, server: ScriptedTokenServer, entry: str, tmp_path: Path) -> None:
    env.configure(server.token_url)
    path = tmp_path / "shared" / "token.json"
    assert env.run(entry, "token", "--cache-path", str(path)).code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert env.run(entry, "token", "--cache-path", str(path)).code == 0
    assert server.count == 1
    planted = tmp_path / "planted.json"
    planted.write_text(path.read_text())
    link = tmp_path / "shared" / "link.json"
    link.symlink_to(planted)
    run = env.run(entry, "token", "--cache-path", str(link))
    assert run.code == 0, run
    assert f"tokenwell: warning: cache file {link}: ignored: symlink" in run.err, run
    assert server.count == 2


@pytest.mark.parametrize("entry", NAMES)
def test_exec_puts_the_token_in_the_environment(env: Env, server: ScriptedTokenServer, entry: str) -> None:
    env.configure(server.token_url)
    token = env.run(entry, "token").out.strip()
    shown = env.run(entry, "exec", "--", "sh", "-c", 'printf %s "$ACCESS_TOKEN"')
    assert (shown.code, shown.out) == (0, token), shown
    named = env.run(entry, "exec", "--var", "BEARER", "--", "sh", "-c", 'printf %s "$BEARER"')
    assert named.out == token, named
    assert env.run(entry, "exec", "--", "sh", "-c", "exit 3").code == 3
    missing = env.run(entry, "exec", "--", "no-such-command-tokenwell")
    assert missing.code == 127, missing
    assert server.count == 1


@pytest.mark.parametrize("entry", NAMES)
def test_exec_runs_nothing_without_a_token(env: Env, entry: str, tmp_path: Path) -> None:
    with ScriptedTokenServer("invalid_client") as refusing:
        env.configure(refusing.token_url)
        marker = tmp_path / "ran"
        run = env.run(entry, "exec", "--", "touch", str(marker))
    assert run.code == EXIT["credentials"] and not marker.exists(), run


def check_lines(run: Run) -> Dict[str, str]:
    """``label: value`` of the check report's indented lines."""
    found: Dict[str, str] = {}
    for line in run.out.splitlines():
        if line.startswith("  ") and ":" in line:
            label, _, value = line.strip().partition(":")
            found.setdefault(label, value.strip())
    return found


@pytest.mark.parametrize("entry", NAMES)
def test_check_explains_a_token(env: Env, entry: str) -> None:
    with ScriptedTokenServer("jwt") as jwt_server:
        env.configure(jwt_server.token_url, SCOPE="billing:read", AUDIENCE="https://api.example")
        run = env.run(entry, "check")
    assert run.code == 0, run
    lines = check_lines(run)
    assert lines["client id"] == "cli-test (from CLIENT_ID)"
    assert lines["token endpoint"] == f"{jwt_server.token_url} (from TOKEN_URL)"
    assert lines["auth method"] == "client_secret_basic"
    assert lines["credentials"] == "1 secret(s), not shown (from CLIENT_SECRET)"
    assert lines["granted scopes"] == "billing:read"
    assert lines["granted audience"] == "https://api.example (the JWT's aud claim)"
    assert lines["access token"].startswith("JWT")
    assert lines["lifetime"].startswith("3600 s (from expires_in), expires at ")
    assert lines["refresh"].startswith("ahead at ")
    assert re.match(r"this machine is \d+\.\d s (ahead of|behind) the server \(Date: ", lines["clock skew"]), lines
    assert run.out.rstrip().endswith("result: ok")
    assert "tw-cli-test" not in run.out


def test_check_reports_are_alike(env: Env) -> None:
    with ScriptedTokenServer("token") as server:
        env.configure(server.token_url, SCOPE="billing:read")
        reports = {entry: set(check_lines(env.run(entry, "check"))) for entry in NAMES}
    assert len({frozenset(labels) for labels in reports.values()}) == 1, reports


@pytest.mark.parametrize("entry", NAMES)
def test_check_names_the_fault(env: Env, entry: str) -> None:
    with ScriptedTokenServer("invalid_client") as refusing:
        env.configure(refusing.token_url)
        run = env.run(entry, "check")
    assert run.code == EXIT["credentials"], run
    lines = check_lines(run)
    assert "result: FAILED" in run.out
    assert lines["fault"] == "credentials (invalid_client); exit 77"
    assert lines["what to do"].startswith("check CLIENT_ID and the secret")
    assert re.search(rf"^  request: +POST {re.escape(refusing.token_url)}: HTTP 401 in \d+ ms$", run.out, re.M), run


# ---- against real Hydra (tests/integration/run.sh cli) --------------------------------------------------

from e2e_support import SERVERS, SKIP_WITHOUT_SERVERS, hydra_admin_url, require_servers  # noqa: E402

require_servers("tests/integration/run.sh cli")


def hydra_client(role: str = "basic") -> Dict[str, str]:
    return SERVERS["hydra"]["clients"][role]  # type: ignore[no-any-return]


@pytest.fixture
def hydra_proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy(SERVERS["hydra"]["public_url"]) as proxy:
        yield proxy


def introspect(token: str) -> Dict[str, object]:
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({"token": token}).encode()
    url = SERVERS["hydra"]["introspection_url"]
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())  # type: ignore[no-any-return]


@pytest.mark.e2e
@SKIP_WITHOUT_SERVERS
@pytest.mark.parametrize("entry", LOOP_NAMES)
def test_hydra_twenty_invocations_one_token_request(env: Env, hydra_proxy: RecordingProxy, entry: str) -> None:
    client = hydra_client()
    env.vars.update({"CLIENT_ID": client["client_id"], "CLIENT_SECRET": client["client_secret"],
                     "TOKEN_URL": hydra_proxy.base_url + "/oauth2/token", "SCOPE": "billing:read"})
    command = " ".join(map(shell_word, ENTRY_POINTS[entry]))
    script = f'set -e\nfor i in $(seq 20); do curl_header=$({command} token --format header); echo "$curl_header" >> "$HOME/h"; done\n'
    done = subprocess.run(["sh", "-c", script], env=env.vars, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:].replace(client["client_secret"], "<secret>")
    headers = (env.home / "h").read_text().splitlines()
    assert len(headers) == 20 and len(set(headers)) == 1
    posts = [r for r in hydra_proxy.requests if r[0] == "POST"]
    print(f"\n{entry}: 20 invocations of `tokenwell token` -> {len(posts)} token request(s) to Hydra")
    assert len(posts) == 1, f"{entry}: {len(posts)} token requests to Hydra for 20 invocations"
    claims = introspect(headers[0].removeprefix("Authorization: Bearer "))
    assert claims["active"] is True and claims["client_id"] == client["client_id"], claims


@pytest.mark.e2e
@SKIP_WITHOUT_SERVERS
def test_hydra_faults_alike_across_entry_points(env: Env, hydra_proxy: RecordingProxy) -> None:
    client = hydra_client()
    token_url = SERVERS["hydra"]["token_url"]
    cases = {
        "wrong secret": ({"TOKEN_URL": token_url, "CLIENT_SECRET": "not-the-secret"}, "credentials", "invalid_client"),
        "wrong token URL": ({"TOKEN_URL": SERVERS["hydra"]["public_url"] + "/oauth2/nope"}, "configuration", "endpoint_not_found"),
    }
    for name, (overrides, fault, kind) in cases.items():
        env.vars.update({"CLIENT_ID": client["client_id"], "CLIENT_SECRET": client["client_secret"]})
        env.vars.update(overrides)
        runs = {entry: env.run(entry, "token") for entry in NAMES}
        for entry, run in runs.items():
            assert run.code == EXIT[fault] and run.out == "", (name, entry, run)
            assert f"({kind}); exit {EXIT[fault]}" in stderr_lines(run)[1], (name, entry, run)
            assert client["client_secret"] not in run.err
    for mode, fault in (("unavailable", "transient"), ("garbage", "malformed")):
        with ScriptedTokenServer(mode) as fake:
            env.vars.update({"TOKEN_URL": fake.token_url, "CLIENT_SECRET": client["client_secret"]})
            runs = {entry: env.run(entry, "token") for entry in NAMES}
        assert {entry: (r.code, r.out) for entry, r in runs.items()} == {entry: (EXIT[fault], "") for entry in NAMES}, runs


@pytest.mark.e2e
@SKIP_WITHOUT_SERVERS
@pytest.mark.parametrize("entry", NAMES)
def test_hydra_check_diagnoses(env: Env, entry: str) -> None:
    client = hydra_client("jwt")
    env.vars.update({"CLIENT_ID": client["client_id"], "CLIENT_SECRET": client["client_secret"],
                     "HYDRA_URL": SERVERS["hydra"]["public_url"], "SCOPE": "billing:read",
                     "AUDIENCE": "https://billing.tokenwell.test"})
    ok = env.run(entry, "check")
    assert ok.code == 0, ok
    lines = check_lines(ok)
    assert lines["token endpoint"] == SERVERS["hydra"]["token_url"] + " (from HYDRA_URL)", lines
    assert lines["auth method"] == "client_secret_basic"
    assert lines["granted scopes"] == "billing:read"
    assert lines["granted audience"] == "https://billing.tokenwell.test (the JWT's aud claim)", lines
    assert lines["access token"].startswith("JWT"), lines
    assert re.match(r"\d+ s \(from expires_in\), expires at ", lines["lifetime"]), lines
    assert lines["clock skew"].startswith("this machine is "), lines
    assert "result: ok" in ok.out

    env.vars["CLIENT_SECRET"] = "not-the-secret"
    wrong_secret = env.run(entry, "check")
    assert wrong_secret.code == EXIT["credentials"], wrong_secret
    assert check_lines(wrong_secret)["fault"] == "credentials (invalid_client); exit 77"

    env.vars["CLIENT_SECRET"] = client["client_secret"]
    del env.vars["HYDRA_URL"]
    env.vars["TOKEN_URL"] = SERVERS["hydra"]["public_url"] + "/oauth2/nope"
    wrong_url = env.run(entry, "check")
    assert wrong_url.code == EXIT["configuration"], wrong_url
    lines = check_lines(wrong_url)
    assert lines["fault"] == "configuration (endpoint_not_found); exit 78", lines
    assert lines["what to do"].startswith("nothing takes token requests at this URL: check TOKEN_URL"), lines


@pytest.mark.e2e
@SKIP_WITHOUT_SERVERS
@pytest.mark.parametrize("entry", NAMES)
def test_hydra_python_cron_and_cli_share_one_file(env: Env, hydra_proxy: RecordingProxy, entry: str, tmp_path: Path) -> None:
    from tokenwell import ServiceAccount

    client = hydra_client()
    token_url = hydra_proxy.base_url + "/oauth2/token"
    path = tmp_path / "cron" / "token.json"
    env.vars.update({"CLIENT_ID": client["client_id"], "CLIENT_SECRET": client["client_secret"], "TOKEN_URL": token_url,
                     "SCOPE": "billing:read"})
    cron = ServiceAccount(token_url=token_url, client_id=client["client_id"], client_secret=client["client_secret"],
                          scope=["billing:read"], cache_path=path, refresh_when_idle=False)
    try:
        from_cron = cron.get_token()
    finally:
        cron.close()
    from_cli = env.run(entry, "token", "--cache-path", str(path))
    assert (from_cli.code, from_cli.out) == (0, from_cron + "\n"), from_cli
    assert len(hydra_proxy.requests) == 1

    # And the other way round: the CLI writes the default path, a new cron reads it.
    first = env.run(entry, "token")
    (default,) = env.cache_files()
    cron = ServiceAccount(token_url=token_url, client_id=client["client_id"], client_secret=client["client_secret"],
                          scope=["billing:read"], cache_path=default, refresh_when_idle=False)
    try:
        assert cron.get_token() + "\n" == first.out
    finally:
        cron.close()
    assert len(hydra_proxy.requests) == 2, "the cron made a request although the CLI had cached a token"


# ---- across processes and over a token's life (scripted server) ---------------------------------------------


def test_concurrent_invocations_make_one_request(env: Env, server: ScriptedTokenServer) -> None:
    """Processes started together, of every entry point: the lock on
    <path>.lock makes one of them fetch; the others wait and read the file."""
    env.configure(server.token_url, SCOPE="billing:read")
    commands = [[*ENTRY_POINTS[entry], "token"] for entry in NAMES for _ in range(4)]
    procs = [subprocess.Popen(c, env=env.vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-500:] for _, err in outs]
    assert len({out for out, _ in outs}) == 1, outs
    assert server.count == 1, f"{server.count} token requests for {len(procs)} concurrent invocations"


@pytest.mark.parametrize("entry", NAMES)
def test_refresh_ahead_serves_the_cached_token_then_refreshes_the_file(env: Env, server: ScriptedTokenServer, entry: str) -> None:
    """A cached token past its refresh-ahead point (the snapshot rewritten as
    issued 3000 s ago, expiring in 600 s): printed at once, and the refresh is
    sent before the process exits, so the file holds the new token."""
    import time

    env.configure(server.token_url)
    first = env.run(entry, "token").out.strip()
    (path,) = env.cache_files()
    snapshot = json.loads(path.read_text())
    now_ms = int(time.time() * 1000)
    snapshot.update(received_at=now_ms - 3_000_000, expires_at=now_ms + 600_000)
    path.write_text(json.dumps(snapshot))
    path.chmod(0o600)
    run = env.run(entry, "token")
    assert (run.code, run.out.strip(), run.err) == (0, first, ""), run
    assert server.count == 2, "the refresh ahead was not sent"
    refreshed = json.loads(path.read_text())
    assert refreshed["access_token"] not in (first, "") and refreshed["received_at"] >= now_ms, refreshed
    assert env.run(entry, "token").out.strip() == refreshed["access_token"]
    assert server.count == 2


@pytest.mark.e2e
@SKIP_WITHOUT_SERVERS
@pytest.mark.parametrize("entry", NAMES)
def test_hydra_check_with_discovery(env: Env, entry: str) -> None:
    client = hydra_client()
    env.vars.update({"CLIENT_ID": client["client_id"], "CLIENT_SECRET": client["client_secret"],
                     "ISSUER_URL": SERVERS["hydra"]["issuer"], "SCOPE": "billing:read"})
    run = env.run(entry, "check")
    assert run.code == 0, run
    lines = check_lines(run)
    assert lines["issuer"] == SERVERS["hydra"]["issuer"] + " (from ISSUER_URL)", lines
    assert lines["token endpoint"] == SERVERS["hydra"]["token_url"] + " (discovered from the issuer's metadata)", lines
    assert re.search(r"^  request: +GET \S+/\.well-known/\S+: HTTP 200 in \d+ ms$", run.out, re.M), run
    assert re.search(rf"^  request: +POST {re.escape(SERVERS['hydra']['token_url'])}: HTTP 200 in \d+ ms$", run.out, re.M), run
    assert lines["granted scopes"] == "billing:read"
    token = env.run(entry, "token")
    assert token.code == 0 and introspect(token.out.strip())["active"] is True, token


@pytest.mark.parametrize("entry", NAMES)
def test_secret_file_flag(env: Env, server: ScriptedTokenServer, entry: str, tmp_path: Path) -> None:
    import base64
    import urllib.parse

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    env.vars.update({"TOKEN_URL": server.token_url, "CLIENT_ID": "cli-test"})
    run = env.run(entry, "token", "--no-cache", "--client-secret-file", str(secret_file))
    assert run.code == 0, run
    authorization = next(v for k, v in server.requests[-1][2].items() if k.lower() == "authorization")
    sent = base64.b64decode(authorization.removeprefix("Basic ")).decode()
    assert sent == "cli-test:" + urllib.parse.quote_plus(SECRET), "the secret file's secret was not sent, form-encoded"
    missing = env.run(entry, "token", "--client-secret-file", str(tmp_path / "absent"))
    assert missing.code == EXIT["configuration"], missing
    assert stderr_lines(missing)[0].startswith("tokenwell: error: invalid configuration: --client-secret-file: "), missing
