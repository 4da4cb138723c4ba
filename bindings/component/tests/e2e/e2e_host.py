"""The provider component against the real authorization servers described by
``$TOKENWELL_SERVERS`` (tests/integration/servers/with-servers.sh): the
servers, the clients, and a provider instance configured for one of them.

Every provider here is a fresh instance of ``dist/tokenwell-provider.wasm``
in wasmtime (wasmtime-py, with its ``wasi:http``): the component does its own
HTTP to the server. The host only calls ``configure``, ``get-token``,
``replace-secrets`` and ``drain-events``.

Without ``TOKENWELL_SERVERS`` the suite is skipped, unless
``TOKENWELL_REQUIRE_SERVERS=1``: then importing this module fails the run.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Sequence

from wasm_host import REPO, ProviderInstance, canonical_config_error, canonical_error, canonical_token, config, is_err

# The servers, the hydra CLI and the event checks are shared with the Python
# package's suite: tests/integration/e2e_support.py.
sys.path.insert(0, str(REPO / "tests" / "integration"))
import e2e_support  # noqa: E402
from e2e_support import *  # noqa: E402,F401,F403  (re-exported to the test modules)
from e2e_support import SERVERS, audience_options, require_servers  # noqa: E402

require_servers("tests/integration/run.sh component, or make -C bindings/component integration")
EXAMPLES = REPO / "examples"

__all__ = [*e2e_support.__all__, "EXAMPLES", "Provider", "TokenFailure", "provider_for"]


class TokenFailure(Exception):
    """``get-token`` returned a ``token-error`` (as canonical JSON in ``error``)."""

    def __init__(self, error: Dict[str, Any]) -> None:
        super().__init__(f"{error['kind']}: {error['message']}")
        self.error = error


class Provider:
    """One provider component instance, configured for one client. Events are
    drained into ``events`` (canonical JSON) after every call."""

    def __init__(self, cfg: Any) -> None:
        self.instance = ProviderInstance()
        failed, value = is_err(self.instance.call("configure", cfg))
        assert not failed, f"configure refused: {canonical_config_error(value)}"
        self.events: List[Dict[str, Any]] = []

    def drain(self) -> None:
        self.events.extend(self.instance.drain_events())

    def get_token(self) -> Dict[str, Any]:
        """The token (canonical JSON), or raises ``TokenFailure``."""
        failed, value = self.instance.get_token()
        self.drain()
        if failed:
            raise TokenFailure(canonical_error(value))
        return canonical_token(value)

    def replace_secrets(self, secrets: Sequence[str]) -> bool:
        failed, value = is_err(self.instance.call("replace-secrets", list(secrets)))
        self.drain()
        assert not failed, f"replace-secrets refused: {canonical_config_error(value)}"
        return bool(value)

    def of_type(self, kind: str, since: int = 0) -> List[Dict[str, Any]]:
        return [e for e in self.events[since:] if e["type"] == kind]

    def types(self) -> List[str]:
        return [e["type"] for e in self.events]


def provider_for(
    server: str,
    role: Optional[str] = None,
    *,
    client: Optional[Dict[str, Any]] = None,
    scopes: Optional[Sequence[str]] = None,
    audiences: Optional[Sequence[str]] = None,
    secrets: Optional[Sequence[str]] = None,
    **options: Any,
) -> Provider:
    """A provider for a client of ``server`` (by role, or an entry such as a bulk
    client), asking for ``scopes`` and ``audiences`` (the client's own by
    default). The audience goes out as ``audience`` (Hydra), or as RFC 8707
    ``resource`` through the configuration's ``extra-params`` (oidc-provider)."""
    s = SERVERS[server]
    c = client if client is not None else s["clients"][role]
    scopes = c["scopes"] if scopes is None else scopes
    audiences = c["audience"] if audiences is None else audiences
    for key, value in audience_options(server, audiences).items():
        options["audiences" if key == "audience" else key] = value
    return Provider(
        config(
            token_url=s["token_url"],
            client_id=c["client_id"],
            client_secrets=list(secrets) if secrets is not None else [c["client_secret"]],
            auth_method=c["auth_method"].replace("_", "-"),
            scopes=list(scopes),
            **options,
        )
    )
