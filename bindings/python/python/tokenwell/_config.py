"""Configuration: the caller's arguments, and the environment for ``from_env``,
made into the engine's validated ``Config`` through the engine's host contract.

``from_env`` makes exactly the calls every host makes (tests/conformance/host/):
``read_env(prefix, environ)``; ``merge_env(explicit, reading)`` (explicit
options win, field by field); read the secret file and the key file the merge
names; ``into_config(secret_contents, key_contents)`` (every missing variable
named at once; errors
renamed to the variable, keeping indexes: ``SCOPE[1]``). The constructor gives
the engine its arguments alone. Nothing here words a configuration error the
engine knows about: this module only converts Python's spelling (seconds,
``timeout``, a mapping of ``extra_params``) to the engine's, and back in
error fields. A ``private_key_file`` argument is read here and given to the
engine as the explicit ``private_key`` (the engine's explicit options have no
key file), after the engine's ``parse_key_file`` checked it under its name.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, Mapping, NamedTuple, Optional

from . import _native
from ._secret_file import SecretFile
from ._transport import tls_context

__all__ = ["Settings", "from_arguments", "from_env", "CONFIG_ARGUMENTS"]

# Python's arguments in seconds, and the engine options they fill (in ms).
SECONDS = {"refresh_margin": "refresh_margin_ms", "timeout": "request_timeout_ms"}
# Engine field names in errors → the caller's argument names.
FIELD_NAMES = {engine: python for python, engine in SECONDS.items()}
# Arguments passed to the engine as they are.
AS_IS = (
    "token_url",
    "issuer",
    "client_id",
    "client_secret",
    "auth_method",
    "scope",
    "audience",
    "max_response_bytes",
    "allow_insecure_http",
    "private_key",
    "assertion_signing_alg",
    "assertion_audience",
)
# Every argument that configures the client (the others configure the host).
CONFIG_ARGUMENTS = AS_IS + tuple(SECONDS) + (
    "extra_params",
    "engine_options",
    "client_secret_file",
    "private_key_file",
    "ca_file",
)


class Settings(NamedTuple):
    """A validated configuration and the files that go with it."""

    config: "_native.Config"
    secret_file: Optional[SecretFile]
    key_file: Optional[SecretFile]
    ca_file: Optional[str]
    # The environment allowed a plain-http token URL (TOKENWELL_ALLOW_INSECURE_HTTP).
    insecure_http_from_env: bool


def _milliseconds(value: Any) -> Any:
    """Seconds as the engine's ms; anything else as it is, for the engine to refuse."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return int(round(value * 1000))
    return value


def _path(value: Any, field: str) -> str:
    try:
        path = os.fspath(value)
    except TypeError:
        raise _native.config_error(field, "must be a path (str or os.PathLike)") from None
    if not isinstance(path, str):  # bytes paths: the engine and the events speak str
        raise _native.config_error(field, "must be a path (str or os.PathLike)")
    return path


def engine_options(arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """The caller's arguments that are not ``None``, in the engine's spelling."""
    options: Dict[str, Any] = {}
    extra = arguments.get("engine_options")
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise _native.config_error("engine_options", "must be a mapping of engine option names to values")
        options.update(extra)
    for name in AS_IS:
        if arguments.get(name) is not None:
            options[name] = arguments[name]
    for name, engine_name in SECONDS.items():
        if arguments.get(name) is not None:
            options[engine_name] = _milliseconds(arguments[name])
    params = arguments.get("extra_params")
    if params is not None:
        # Pairs or a mapping (name -> value, or name -> list of values): the engine reads both.
        options["extra_params"] = dict(params) if isinstance(params, Mapping) else params
    if arguments.get("client_secret") is not None and arguments.get("client_secret_file") is not None:
        # merge_env would let the file win silently; two secrets is a mistake to name.
        raise _native.config_error("client_secret", "set only one of client_secret and client_secret_file")
    if arguments.get("private_key") is not None and arguments.get("private_key_file") is not None:
        raise _native.config_error("private_key", "set only one of private_key and private_key_file")
    return options


def explicit_key_file(arguments: Mapping[str, Any], options: Dict[str, Any], now_ms: int) -> Optional[SecretFile]:
    """The ``private_key_file`` argument, read and checked now (errors name the
    argument, never quote the file); its contents become ``options["private_key"]``."""
    if arguments.get("private_key_file") is None:
        return None
    source = "private_key_file"
    key_file = SecretFile(_path(arguments["private_key_file"], source), source, "key")
    contents = key_file.read_at_start(now_ms)
    alg = options.get("assertion_signing_alg")
    _native.parse_key_file(contents, source, alg if isinstance(alg, str) else None)
    options["private_key"] = contents
    return key_file


def checked_ca_file(path: str, field: str) -> str:
    """The CA file as an absolute path, refused now rather than at the first request."""
    if not path:
        raise _native.config_error(field, "must be the path of a PEM file of CA certificates")
    absolute = os.path.abspath(path)
    try:
        tls_context(absolute)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise _native.config_error(
            field, f"the CA file {absolute} cannot be loaded as PEM CA certificates ({type(error).__name__})"
        ) from None
    return absolute


def from_arguments(arguments: Mapping[str, Any], now_ms: int) -> Settings:
    """The constructor's configuration: its arguments alone."""
    options = engine_options(arguments)
    key_file = explicit_key_file(arguments, options, now_ms)
    secret_file = None
    if arguments.get("client_secret_file") is not None:
        source = "client_secret_file"
        secret_file = SecretFile(_path(arguments["client_secret_file"], source), source)
        options["client_secret"] = _native.parse_secret_file(secret_file.read_at_start(now_ms), source)
    config = _native.Config(options, FIELD_NAMES)
    ca_file = arguments.get("ca_file")
    checked = checked_ca_file(_path(ca_file, "ca_file"), "ca_file") if ca_file is not None else None
    return Settings(config, secret_file, key_file, checked, False)


def from_env(prefix: str, environ: Mapping[str, str], arguments: Mapping[str, Any], now_ms: int) -> Settings:
    """``from_env``'s configuration: ``arguments`` win over ``environ``, field by field."""
    options = engine_options(arguments)
    explicit_keys = explicit_key_file(arguments, options, now_ms)
    reading = _native.read_env(prefix, environ)
    explicit_file = arguments.get("client_secret_file")
    explicit_ca = arguments.get("ca_file")
    merged = _native.merge_env(
        options,
        reading,
        secret_file=_path(explicit_file, "client_secret_file") if explicit_file is not None else None,
        ca_file=_path(explicit_ca, "ca_file") if explicit_ca is not None else None,
        field_names=FIELD_NAMES,
    )
    merged.check_required()  # every missing variable, before any file is read
    secret_file, contents = None, None
    if merged.secret_file is not None:
        secret_file = SecretFile(merged.secret_file, merged.secret_file_source or "client_secret_file")
        contents = secret_file.read_at_start(now_ms)
    key_file, key_contents = explicit_keys, None
    if merged.key_file is not None:
        key_file = SecretFile(merged.key_file, merged.key_file_source or "private_key_file", "key")
        key_contents = key_file.read_at_start(now_ms)
    config = merged.into_config(contents, key_contents)
    sources = dict(merged.sources)
    ca_file = merged.ca_file
    checked = checked_ca_file(ca_file, sources.get("ca_file", "ca_file")) if ca_file is not None else None
    return Settings(config, secret_file, key_file, checked, "allow_insecure_http" in sources)
