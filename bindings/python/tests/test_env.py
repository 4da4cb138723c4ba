"""``ServiceAccount.from_env``: the engine's variables, errors naming the
variable, overrides, and never an echoed secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from tokenwell import InvalidConfigError, ServiceAccount

from conftest import CountingTransport

SECRET = "hunter2-env-secret"


def env(**values: str) -> Dict[str, str]:
    base = {"CLIENT_ID": "billing", "CLIENT_SECRET": SECRET, "TOKEN_URL": "http://127.0.0.1:4444/oauth2/token"}
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


def from_env(environ: Dict[str, Any], prefix: str = "", **overrides: Any) -> ServiceAccount:
    return ServiceAccount.from_env(prefix, environ=environ, transport=CountingTransport(), **overrides)


def refused(environ: Dict[str, Any], prefix: str = "", **overrides: Any) -> InvalidConfigError:
    with pytest.raises(InvalidConfigError) as raised:
        from_env(environ, prefix, **overrides)
    error = raised.value
    for text in (str(error), repr(error), str(error.problem)):
        assert SECRET not in text
    return error


def test_reads_the_variables() -> None:
    a = from_env(env(SCOPE="billing:read billing:write", AUDIENCE="https://api.one https://api.two",
                     AUTH_METHOD="client_secret_post"))
    assert a.client_id == "billing" and a.token_url == "http://127.0.0.1:4444/oauth2/token"
    assert a.engine.scopes == ("billing:read", "billing:write")
    assert a.engine.audiences == ("https://api.one", "https://api.two")
    assert a.get_token() == "at-1"


def test_prefix_hydra_url_and_several_secrets() -> None:
    a = from_env({"B_CLIENT_ID": "b", "B_CLIENT_SECRET": "new, old", "B_HYDRA_URL": "http://127.0.0.1:4444/"}, "B_")
    assert a.token_url == "http://127.0.0.1:4444/oauth2/token"
    assert a.engine.secret_count == 2


@pytest.mark.parametrize(
    "environ, field",
    [
        (env(CLIENT_ID=None), "CLIENT_ID"),
        (env(CLIENT_SECRET=None), "CLIENT_SECRET"),
        (env(CLIENT_SECRET=" , "), "CLIENT_SECRET"),
        (env(TOKEN_URL=None), "TOKEN_URL"),
        (env(TOKEN_URL="not a url"), "TOKEN_URL"),
        (env(TOKEN_URL="http://auth.example/t"), "TOKEN_URL"),
        (env(TOKEN_URL=None, HYDRA_URL="ftp://hydra"), "HYDRA_URL"),
        (env(AUTH_METHOD="magic"), "AUTH_METHOD"),
        (env(SCOPE="ok bad\u00e9"), "SCOPE[1]"),
        (env(CLIENT_SECRET_FILE="/run/secret"), "CLIENT_SECRET"),
        (env(CLIENT_SECRET=None, CLIENT_SECRET_FILE="/nonexistent/secret"), "CLIENT_SECRET_FILE"),
        (env(CLIENT_SECRET="ok\x00" + SECRET), "CLIENT_SECRET"),
    ],
)
def test_errors_name_the_variable(environ: Dict[str, str], field: str) -> None:
    assert refused(environ).field == field


def test_errors_name_the_prefixed_variable() -> None:
    assert refused({"APP_CLIENT_SECRET": SECRET, "APP_TOKEN_URL": "https://a.example/t"}, "APP_").field == "APP_CLIENT_ID"
    error = refused({"APP_CLIENT_ID": "c", "APP_CLIENT_SECRET": SECRET, "APP_TOKEN_URL": "https://user:pw@a.example/t"},
                    "APP_")
    assert error.field == "APP_TOKEN_URL"


def test_overrides_win_and_fill_in_missing_variables(tmp_path: Path) -> None:
    a = from_env(env(CLIENT_ID=None, SCOPE="from:env"), client_id="override", scope=["from:code"],
                 cache_path=tmp_path / "t.json")
    assert a.client_id == "override" and a.engine.scopes == ("from:code",)
    assert a.cache_path == str(tmp_path / "t.json")
    b = from_env(env(CLIENT_SECRET=None), client_secret="code-secret")
    assert b.engine.secret_count == 1
    # An override's own mistakes name the argument, not a variable.
    assert refused(env(), timeout="soon").field == "timeout"
    assert refused(env(), scope=[3]).field == "scope"


def test_secret_file_from_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("current-one\nprevious-one\n")
    a = from_env(env(CLIENT_SECRET=None, CLIENT_SECRET_FILE=str(secret_file)))
    assert a.engine.secret_count == 2
    secret_file.write_text("\n  \n")
    assert refused(env(CLIENT_SECRET=None, CLIENT_SECRET_FILE=str(secret_file))).field == "CLIENT_SECRET_FILE"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TEST_CLIENT_ID", "from-os")
    monkeypatch.setenv("TW_TEST_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("TW_TEST_TOKEN_URL", "http://127.0.0.1:4444/oauth2/token")
    assert ServiceAccount.from_env("TW_TEST_").client_id == "from-os"
