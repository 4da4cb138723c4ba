"""The composition example end to end: the consumer component, plugged with
the provider into one component (examples/wasi-compose, built by
``make compose``), run by its one documented command against loopback
servers. The composed component must import no tokenwell interface: the
provider fills them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

from token_server import Reply, TokenServer
from wasm_host import REPO, tool

EXAMPLE = REPO / "examples" / "wasi-compose"
COMPOSED = EXAMPLE / "dist" / "tokenwell-compose-example.wasm"


def run_example(env: Dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TOKEN_URL", "HYDRA_URL", "ISSUER_URL", "API_URL")}
    return subprocess.run(
        [sys.executable, "run.py", str(COMPOSED)],
        cwd=EXAMPLE,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_composition_imports_no_tokenwell_interface() -> None:
    imports = tool("imports", str(COMPOSED))
    assert imports, "a composed command imports WASI"
    assert not [name for name in imports if name.startswith("tokenwell:")]
    assert [name for name in tool("exports", str(COMPOSED)) if name.startswith("wasi:cli/run@")]


def test_the_example_calls_the_api_with_a_provider_token() -> None:
    result = run_example({})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-> 200" in result.stdout
    assert '"hello": "compose-example"' in result.stdout
    assert "demo_at_" not in result.stdout  # the token itself is never printed


def test_the_example_reports_a_refused_client() -> None:
    with TokenServer() as server:
        server.script(Reply(401, {"error": "invalid_client"}))
        result = run_example(
            {"TOKEN_URL": server.token_url, "CLIENT_ID": "c", "CLIENT_SECRET": "wrong", "API_URL": "http://127.0.0.1:9/api"}
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "invalid_client" in result.stderr
    assert "wrong" not in result.stdout + result.stderr
