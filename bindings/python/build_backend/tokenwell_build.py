"""tokenwell's PEP 517 build backend: maturin's, minus the unasked toolchain download.

Installing from the sdist (or the source tree) compiles the Rust extension, so
it needs a Rust toolchain. When `cargo` is missing, maturin's backend would
download one into a temporary directory (several hundred MB) without asking.
This backend fails fast instead, saying what to install; a prebuilt wheel
(`pip install tokenwell` on a platform that has one) needs no Rust at all.

To let maturin fetch a toolchain anyway: TOKENWELL_INSTALL_RUST=1.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Mapping

if os.environ.get("TOKENWELL_INSTALL_RUST") != "1":
    # Read by maturin's own hooks below: never call puccinialin's setup_rust.
    os.environ["MATURIN_NO_INSTALL_RUST"] = "1"

import maturin
from maturin import *  # noqa: F401,F403  (every PEP 517 hook maturin defines)

MESSAGE = """
tokenwell: building from source needs a Rust toolchain, and `cargo` was not found on PATH.

No prebuilt wheel matched this platform or Python, so pip is building tokenwell from source.
Either:
  - install Rust 1.85 or newer (https://rustup.rs, or your system's rust/cargo packages),
    then run the same pip command again; or
  - set TOKENWELL_INSTALL_RUST=1 to let maturin download a temporary toolchain (~700 MB); or
  - use a platform with a prebuilt wheel: Linux x86_64/aarch64, glibc 2.17+ or musl 1.2+,
    CPython 3.9+.
"""


def _require_cargo() -> None:
    if os.environ.get("TOKENWELL_INSTALL_RUST") == "1" or shutil.which("cargo"):
        return
    sys.stderr.write(MESSAGE)
    raise SystemExit(1)


def get_requires_for_build_wheel(config_settings: Mapping[str, Any] | None = None) -> list[str]:
    _require_cargo()
    return maturin.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(config_settings: Mapping[str, Any] | None = None) -> list[str]:
    _require_cargo()
    return maturin.get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Mapping[str, Any] | None = None) -> str:
    _require_cargo()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _require_cargo()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)
