"""End-to-end over TLS: Ory Hydra serving a certificate from a test CA (the
``hydra_tls`` server of with-servers.sh), reached through the components.

* The **engine** component decides and a host does the HTTP: here a small
  host on Python's ``ssl``, which trusts the CA named by ``TOKENWELL_CA_FILE``
  exactly as the other hosts do. With the CA: a token from Hydra. Without it:
  the host reports the refused certificate as transport kind ``tls`` and the
  engine answers with the ``tls-certificate`` configuration fault, held.
* The **provider** component does its own HTTP through ``wasi:http``, so the
  runtime's trust store decides. wasmtime's ``wasi:http`` trusts the Mozilla
  roots only and has no setting for another CA, so against the test CA the
  provider must end in the same ``tls-certificate`` fault (not a retried
  blip); trusting a private CA there is the runtime's configuration.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

import pytest

from e2e_host import SERVERS, SKIP_WITHOUT_SERVERS, TokenFailure, provider_for
from wasm_host import EngineInstance, canonical_error, canonical_poll, is_err

pytestmark = SKIP_WITHOUT_SERVERS


def now_ms() -> int:
    return int(time.time() * 1000)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def engine_token(config: Dict[str, Any], ca_file: Optional[str]) -> Dict[str, Any]:
    """Drives the engine component with a TLS host until it serves a token or
    fails; returns the canonical poll result it ends with."""
    cache = EngineInstance().from_json(json.dumps(config), 7)
    context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context), _NoRedirect()
    )
    for _ in range(5):
        poll = canonical_poll(cache.poll(now_ms()))
        if poll["result"] in ("ready", "fail"):
            return poll
        assert poll["result"] == "send", poll
        request = poll["request"]
        http = urllib.request.Request(
            request["url"], data=request["body"].encode(), method="POST", headers=dict(request["headers"])
        )
        try:
            with opener.open(http, timeout=request["timeout_ms"] / 1000) as response:
                status, headers, body = response.status, list(response.headers.items()), response.read()
        except urllib.error.HTTPError as answered:
            status, headers, body = answered.code, list(answered.headers.items()), answered.read()
        except urllib.error.URLError as failed:
            kind = "tls" if isinstance(failed.reason, ssl.SSLCertVerificationError) else "connect"
            error = cache.handle_transport_error(request["fetch_id"], kind, str(failed.reason), now_ms())
            assert canonical_error(error)["kind"] in ("tls_certificate", "transport")
            continue
        failed, value = is_err(cache.handle_response(request["fetch_id"], status, headers, body, now_ms()))
        assert not failed, canonical_error(value)
    raise AssertionError("the engine neither served a token nor failed")


def tls_config() -> Dict[str, Any]:
    tls = SERVERS["hydra_tls"]
    client = tls["clients"]["basic"]
    return {
        "token_url": tls["token_url"],
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "scope": client["scopes"],
        "audience": client["audience"],
    }


def test_engine_component_over_tls_trusts_the_ca_file_and_refuses_without_it() -> None:
    ca_file = SERVERS["hydra_tls"]["ca_file"]
    config = tls_config()
    assert config["token_url"].startswith("https://127.0.0.1:")

    trusted = engine_token(config, os.environ.get("TOKENWELL_CA_FILE") or ca_file)
    assert trusted["result"] == "ready", trusted
    assert trusted["token"]["access_token"].startswith("ory_at_")

    refused = engine_token(config, None)
    assert refused["result"] == "fail", refused
    error = refused["error"]
    assert (error["kind"], error["fault"], error["retryable"]) == ("tls_certificate", "configuration", False)
    assert "TOKENWELL_CA_FILE" in error["description"]
    assert config["client_secret"] not in json.dumps(refused)


def test_provider_component_reports_an_untrusted_certificate_as_a_configuration_fault() -> None:
    provider = provider_for("hydra_tls", "basic", audiences=[])
    with pytest.raises(TokenFailure) as failure:
        provider.get_token()
    error = failure.value.error
    assert (error["kind"], error["fault"], error["retryable"]) == ("tls_certificate", "configuration", False)
    # Held: the next call fails fast without another attempt.
    with pytest.raises(TokenFailure):
        provider.get_token()
    assert len(provider.of_type("refresh_started")) == 1
    assert SERVERS["hydra_tls"]["clients"]["basic"]["client_secret"] not in json.dumps(provider.events)
