"""Every ```python snippet of bindings/python/README.md runs, in order, in one
namespace, against a loopback token endpoint and a loopback API (127.0.0.1):
the README's URLs and paths are replaced by the servers' and a temporary
directory's (the issuer by the token server's origin, which serves its
metadata document; the key file by the published P-256 test key), and an ``async def`` a snippet defines without parameters is run
with ``asyncio.run``. A snippet that stops matching the API fails here."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from tokenwell import ServiceAccount

from conftest import TokenServer

README = Path(__file__).resolve().parents[1] / "README.md"
TEST_KEYS = Path(__file__).resolve().parents[3] / "tests" / "conformance" / "keys"


def snippets() -> List[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


class IssuedTokens:
    """The API accepts any token the loopback endpoint issued."""

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and token.startswith("at-")


def test_the_readme_has_snippets() -> None:
    assert len(snippets()) >= 3


def test_every_readme_snippet_runs(
    token_server: Callable[..., TokenServer], api: Callable[[Any], Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, no_ambient_tls_or_proxy: None,
) -> None:
    pytest.importorskip("requests")
    pytest.importorskip("httpx")
    server = token_server()
    server.metadata = {"issuer": server.origin, "token_endpoint": server.url,
                       "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"]}
    service = api(IssuedTokens())
    key_file = tmp_path / "billing-worker.pem"
    key_file.write_text((TEST_KEYS / "test-only-p256.pkcs8.pem").read_text(encoding="utf-8"), encoding="utf-8")
    replacements = {
        "http://127.0.0.1:4444/oauth2/token": server.url,
        "https://auth.example/realms/ops": server.origin,
        "/run/secrets/billing-worker.pem": str(key_file),
        "https://billing.example/invoices": service.url,
        "/var/cache/billing/token.json": str(tmp_path / "token.json"),
    }
    for name, value in {"CLIENT_ID": "billing-worker", "CLIENT_SECRET": "readme-secret", "TOKEN_URL": server.url}.items():
        monkeypatch.setenv(name, value)
    namespace: Dict[str, Any] = {"__name__": "readme"}
    for number, code in enumerate(snippets(), 1):
        for old, new in replacements.items():
            code = code.replace(old, new)
        assert "billing.example/" not in code, f"snippet {number} would reach the network"
        before = set(namespace)
        exec(compile(code, f"README.md, python snippet {number}", "exec"), namespace)
        for name in sorted(set(namespace) - before):
            value = namespace[name]
            if inspect.iscoroutinefunction(value) and not inspect.signature(value).parameters:
                asyncio.run(value())
    assert service.seen, "no snippet called the API"
    assert all(auth.startswith("Bearer at-") for _, auth, _ in service.seen)
    assert (tmp_path / "token.json").exists()  # the cron cache snippet wrote its file
    assert [path for path, _, _ in server.gets][-1] == "/.well-known/openid-configuration"  # discovery ran
    assert any("client_assertion=" in body.decode() for _, body in server.requests)  # and signed
    for value in namespace.values():
        if isinstance(value, ServiceAccount):
            value.close()
