#!/usr/bin/env python3
"""A cron job with a service-account token that survives between runs.

Every run reads its client from the environment (``CLIENT_ID``, ``CLIENT_SECRET``
or ``CLIENT_SECRET_FILE``, ``TOKEN_URL`` or ``HYDRA_URL``, ``SCOPE``,
``AUDIENCE``), gets a token through the on-disk cache (``TOKEN_CACHE_PATH``,
default ``$XDG_CACHE_HOME/tokenwell/python-cron.json``), and, if ``API_URL`` is
set, calls that API with it. A run within the token's life reuses the cached
token: one token request serves many runs, and two runs starting together make
one request between them.

It fails closed: without a valid token it does not call the API and exits
non-zero with the reason (75 when the engine will retry, so the next run may
succeed; 1 when the configuration or the credentials must be fixed; 78 for a
bad environment).

    CLIENT_ID=billing-cron CLIENT_SECRET=... TOKEN_URL=http://127.0.0.1:4444/oauth2/token \\
        python examples/python-cron/cron.py
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, List

from tokenwell import InvalidConfigError, ServiceAccount, TokenError

EX_TEMPFAIL = 75
EX_CONFIG = 78


def default_cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tokenwell", "python-cron.json")


def main() -> int:
    seen: List[Dict[str, Any]] = []

    def on_event(event: Dict[str, Any]) -> None:
        seen.append(event)
        if event["type"] in ("cache_ignored", "cache_write_failed", "refresh_failed", "secret_file_rejected",
                             "outage_grace_served"):
            details = {k: v for k, v in event.items() if k not in ("type", "actor_type", "actor_id", "at")}
            print(f"cron: {event['type']}: {details}", file=sys.stderr)

    try:
        account = ServiceAccount.from_env(
            cache_path=os.environ.get("TOKEN_CACHE_PATH") or default_cache_path(),
            on_event=on_event,
        )
    except InvalidConfigError as error:
        print(f"cron: bad configuration, not running: {error}", file=sys.stderr)
        return EX_CONFIG

    try:
        token = account.token()
    except TokenError as error:
        print(f"cron: no token ({error.kind}), not calling the API: {error}", file=sys.stderr)
        return EX_TEMPFAIL if error.retryable else 1

    fetched = any(e["type"] == "token_acquired" for e in seen)
    ahead = any(e["type"] == "refresh_started" and e.get("reason") == "ahead" for e in seen)
    how = "fetched a new token" if fetched else "reused the cached token"
    note = ", refreshing ahead in the background" if ahead else ""
    scope = " ".join(token.scope) or "-"
    print(f"token: {how} (expires {token.expires_at.isoformat(timespec='seconds')}, scope {scope}{note})")

    api_url = os.environ.get("API_URL")
    if not api_url:
        return 0
    request = urllib.request.Request(api_url, headers={"Authorization": f"Bearer {token.access_token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(f"api: HTTP {response.status}")
            return 0
    except urllib.error.HTTPError as answer:
        if answer.code == 401:
            account.invalidate(token)  # the next run (or a retry) gets a new token
        print(f"api: HTTP {answer.code}", file=sys.stderr)
        return 1
    except OSError as failure:
        print(f"api: {failure}", file=sys.stderr)
        return EX_TEMPFAIL


if __name__ == "__main__":
    sys.exit(main())
