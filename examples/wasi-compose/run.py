"""Runs the composed component (consumer + tokenwell provider) once.

    python run.py [dist/tokenwell-compose-example.wasm]

With ``TOKEN_URL`` (or ``HYDRA_URL``) set, the component runs against that
authorization server with ``CLIENT_ID``, ``CLIENT_SECRET``, ``SCOPE``,
``AUDIENCE``, ``AUTH_METHOD`` and calls ``API_URL``. Without it, a token
endpoint and an API are started on 127.0.0.1 for the run and stopped after.

Only those variables are passed to the component (through
``wasi:cli/environment``); its HTTP goes through ``wasi:http`` from wasmtime.
The exit status is the component's: 0 when the API answered 2xx.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Dict

import wasmtime
from wasmtime import component as cm

from loopback_server import LoopbackServer

HERE = Path(__file__).resolve().parent
PASSED_VARIABLES = ("TOKEN_URL", "HYDRA_URL", "ISSUER_URL", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "AUDIENCE",
                    "AUTH_METHOD", "API_URL")


def run_component(path: Path, env: Dict[str, str]) -> int:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.env = sorted(env.items())
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store.set_wasi(wasi)
    store.set_wasi_http()
    linker = cm.Linker(engine)
    linker.add_wasip2()
    linker.add_wasi_http()
    component = cm.Component.from_file(engine, str(path))
    run_interface = next(name for name in component.type.exports(engine) if name.startswith("wasi:cli/run@"))
    instance = linker.instantiate(store, component)
    index = instance.get_export_index(store, run_interface)
    run = instance.get_func(store, instance.get_export_index(store, "run", index))
    try:
        result = run(store)
    except wasmtime.WasmtimeError as exit_or_trap:
        # `main` returning a failure exits through wasi:cli/exit.
        print(f"component exited: {str(exit_or_trap).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0 if getattr(result, "tag", "ok") == "ok" else 1


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "dist" / "tokenwell-compose-example.wasm"
    env = {name: os.environ[name] for name in PASSED_VARIABLES if os.environ.get(name)}
    with contextlib.ExitStack() as stack:
        if "TOKEN_URL" not in env and "HYDRA_URL" not in env and "ISSUER_URL" not in env:
            server = stack.enter_context(LoopbackServer())
            env = server.environment()
            print(f"no TOKEN_URL set: using the loopback token endpoint and API at {server.base_url}")
        elif "API_URL" not in env:
            print("API_URL is not set", file=sys.stderr)
            return 2
        return run_component(path, env)


if __name__ == "__main__":
    sys.exit(main())
