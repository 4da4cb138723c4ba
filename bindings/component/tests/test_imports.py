"""The import audit: the ``engine`` component imports nothing at all, and the
``provider`` component imports only what its WIT world declares (read from
``wit/`` by ``tokenwell-component-tool world-imports``). Both are checked as
wasmtime sees the component and as the component's binary lists them."""

from __future__ import annotations

from typing import Iterable, List

import pytest

from wasm_host import DIST, WIT, component_imports, tool


def undeclared(imports: Iterable[str], declared: Iterable[str]) -> List[str]:
    """The imports a world does not declare."""
    allowed = set(declared)
    return sorted(name for name in imports if name not in allowed)


def test_the_engine_component_imports_nothing() -> None:
    assert component_imports("tokenwell-engine.wasm") == []
    assert tool("imports", str(DIST / "tokenwell-engine.wasm")) == []
    assert tool("world-imports", str(WIT), "tokenwell:client/engine-component") == []


def test_the_engine_component_exports_its_interfaces() -> None:
    assert sorted(tool("exports", str(DIST / "tokenwell-engine.wasm"))) == [
        "tokenwell:client/engine@0.1.0",
        "tokenwell:client/types@0.1.0",
    ]


def test_the_provider_component_imports_only_its_world() -> None:
    declared = tool("world-imports", str(WIT), "tokenwell:client/provider-component")
    imports = component_imports("tokenwell-provider.wasm")
    assert undeclared(imports, declared) == []
    assert sorted(tool("imports", str(DIST / "tokenwell-provider.wasm"))) == imports
    # What it needs, and so what a host must grant: HTTP out, clocks, entropy, environment.
    assert imports == [
        "wasi:cli/environment@0.2.4",
        "wasi:clocks/monotonic-clock@0.2.4",
        "wasi:clocks/wall-clock@0.2.4",
        "wasi:http/outgoing-handler@0.2.4",
        "wasi:http/types@0.2.4",
        "wasi:io/error@0.2.4",
        "wasi:io/poll@0.2.4",
        "wasi:io/streams@0.2.4",
        "wasi:random/random@0.2.4",
    ]
    assert sorted(tool("exports", str(DIST / "tokenwell-provider.wasm"))) == [
        "tokenwell:client/provider@0.1.0",
        "tokenwell:client/types@0.1.0",
    ]


def test_the_audit_flags_an_undeclared_import() -> None:
    declared = tool("world-imports", str(WIT), "tokenwell:client/provider-component")
    assert undeclared(declared + ["wasi:filesystem/types@0.2.4"], declared) == ["wasi:filesystem/types@0.2.4"]


@pytest.mark.parametrize("name", ["tokenwell-engine.wasm", "tokenwell-provider.wasm"])
def test_components_are_size_tuned(name: str) -> None:
    size = (DIST / name).stat().st_size
    # Release profile `component`: opt-level "z", LTO, stripped, panic=abort.
    assert size < 1_000_000, f"{name} is {size} bytes"
