"""End-to-end: the composition example (examples/wasi-compose: a consumer
component plugged with the provider into one component) run once by its
documented command, ``make -C examples/wasi-compose run``, against the real
Hydra. The API it calls is examples/demo-api/api.py on 127.0.0.1, which
accepts a bearer token only if Hydra's admin introspection says it is active.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import NOTES
from e2e_host import EXAMPLES, SERVERS, SKIP_WITHOUT_SERVERS, hydra_admin_url, poll_until

pytestmark = SKIP_WITHOUT_SERVERS

API = EXAMPLES / "demo-api" / "api.py"
COMPOSE = EXAMPLES / "wasi-compose"
# Variables the example reads; none may leak in from the caller's environment.
EXAMPLE_VARIABLES = ("TOKEN_URL", "HYDRA_URL", "ISSUER_URL", "CLIENT_ID", "CLIENT_SECRET", "CLIENT_SECRET_FILE",
                     "SCOPE", "AUDIENCE", "AUTH_METHOD", "API_URL")


def test_the_composed_example_calls_an_api_with_a_hydra_token(tmp_path: Path) -> None:
    client = SERVERS["hydra"]["clients"]["basic"]
    port_file = tmp_path / "api.port"
    with open(tmp_path / "api.log", "wb") as api_log:
        api = subprocess.Popen(
            [sys.executable, str(API), "--introspect", f"{hydra_admin_url()}/admin/oauth2/introspect",
             "--port-file", str(port_file)],
            stdin=subprocess.DEVNULL,
            stdout=api_log,
            stderr=subprocess.STDOUT,
        )
    try:
        def api_started() -> bool:
            assert api.poll() is None, f"the demo API exited: {(tmp_path / 'api.log').read_text()[-2000:]}"
            return port_file.exists()

        poll_until("the demo API's port file", api_started, 30, lambda: time.sleep(0.05))
        api_url = f"http://127.0.0.1:{port_file.read_text().strip()}/api/invoices"
        env = {k: v for k, v in os.environ.items() if k not in EXAMPLE_VARIABLES and not k.startswith("MAKE")}
        env.update(
            TOKEN_URL=SERVERS["hydra"]["token_url"],
            CLIENT_ID=client["client_id"],
            CLIENT_SECRET=client["client_secret"],
            SCOPE=" ".join(client["scopes"]),
            AUDIENCE=" ".join(client["audience"]),
            API_URL=api_url,
        )
        began = time.monotonic()
        run = subprocess.run(
            ["make", "--no-print-directory", "-C", str(COMPOSE), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        took = time.monotonic() - began
    finally:
        api.terminate()
        try:
            api.wait(timeout=10)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait(timeout=10)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert f"GET {api_url} -> 200" in run.stdout, output[-4000:]
    # The API's answer: Hydra says the token is active, for this client and these scopes.
    answer = json.loads(run.stdout[run.stdout.index("-> 200") :].splitlines()[1])
    assert answer["caller"] == client["client_id"], answer
    assert sorted(answer["scope"].split()) == sorted(client["scopes"]), answer
    assert "ory_at_" not in output, "the access token was printed"
    assert client["client_secret"] not in output, "the client secret was printed"
    NOTES.append(f"composed example against hydra: API answered 200 for {client['client_id']} ({took:.1f} s with make)")
