"""``RequestsAuth`` and ``HttpxAuth`` (sync and async): the bearer header, and
the engine's one 401 rule (``retry_request``): after a 401 for token T,
``invalidate(T)`` and retry once after ``invalidated`` or ``not_current``,
never after ``rate_limited``, never twice. Against loopback token and API
servers (127.0.0.1)."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

import tokenwell
from tokenwell import RequestsAuth, ServiceAccount, TokenSource, retry_request

from conftest import WAIT, TokenServer

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")


WAYS = ["requests", "httpx-sync", "httpx-async"]
HttpxAuth = tokenwell.HttpxAuth


def send(way: str, source: TokenSource, url: str) -> int:
    """POSTs ``payload`` to ``url`` with ``source``'s adapter; the final status."""
    if way == "requests":
        return int(requests.post(url, data=b"payload", auth=RequestsAuth(source), timeout=WAIT).status_code)
    if way == "httpx-sync":
        with httpx.Client(auth=HttpxAuth(source), timeout=WAIT) as client:
            return int(client.post(url, content=b"payload").status_code)

    async def main() -> int:
        async with httpx.AsyncClient(auth=HttpxAuth(source), timeout=WAIT) as client:
            return int((await client.post(url, content=b"payload")).status_code)

    return asyncio.run(main())


def make_account(server: TokenServer) -> ServiceAccount:
    return ServiceAccount(token_url=server.url, client_id="c", client_secret="s")


def test_the_rule_is_the_engines() -> None:
    assert [retry_request(o) for o in ("invalidated", "not_current", "rate_limited")] == [True, True, False]
    with pytest.raises(ValueError):
        retry_request("maybe")


@pytest.mark.parametrize("way", WAYS)
def test_invalidated_retries_once_with_the_new_token(way: str, token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})  # at-1 was revoked by the API
    account = make_account(tokens)
    assert send(way, account, service.url) == 200
    assert [(auth, body) for _, auth, body in service.seen] == [("Bearer at-1", b"payload"), ("Bearer at-2", b"payload")]
    assert send(way, account, service.url) == 200
    assert tokens.count == 2


@pytest.mark.parametrize("way", WAYS)
def test_invalidated_retries_even_when_the_server_issues_the_same_token(
    way: str, token_server: Any, api: Any
) -> None:
    """The rule is the engine's outcome, not a comparison of token strings: an
    authorization server may hand out the same token again (the old Python
    rule did not retry then; Node did)."""
    from conftest import token_body

    tokens = token_server(script=lambda n, headers, body: (200, [("Content-Type", "application/json")],
                                                           token_body("at-same")))
    service = api({"at-same"})
    refused_once: List[str] = []

    def refuse_first(token: str) -> None:
        if not refused_once:
            refused_once.append(token)
            service.valid.discard(token)
        else:
            service.valid.add(token)

    service.before_answer = refuse_first
    account = make_account(tokens)
    assert send(way, account, service.url) == 200
    assert [auth for _, auth, _ in service.seen] == ["Bearer at-same", "Bearer at-same"]
    assert tokens.count == 2


@pytest.mark.parametrize("way", WAYS)
def test_not_current_retries_once_with_the_token_another_caller_got(way: str, token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})
    account = make_account(tokens)
    outcomes: List[str] = []

    def another_caller_got_there_first(token: str) -> None:
        if token == "at-1" and not outcomes:
            outcomes.append(account.invalidate("at-1"))
            account.get_token()

    service.before_answer = another_caller_got_there_first
    assert send(way, account, service.url) == 200
    assert outcomes == ["invalidated"]  # so the adapter's own invalidate was not_current
    assert [auth for _, auth, _ in service.seen] == ["Bearer at-1", "Bearer at-2"]
    assert tokens.count == 2


@pytest.mark.parametrize("way", WAYS)
def test_rate_limited_is_not_retried_and_a_retry_never_twice(way: str, token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api(set())  # the API refuses every token
    account = make_account(tokens)
    assert send(way, account, service.url) == 401  # invalidated: retried once, refused again, not retried
    assert [auth for _, auth, _ in service.seen] == ["Bearer at-1", "Bearer at-2"]
    assert send(way, account, service.url) == 401  # rate_limited: the same token would go again
    assert [auth for _, auth, _ in service.seen] == ["Bearer at-1", "Bearer at-2", "Bearer at-2"]
    assert tokens.count == 2


class ScriptedSource:
    """A token source that is not a ServiceAccount: the adapters need only the protocol."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.handed_out = 0
        self.invalidated: List[str] = []

    def get_token(self) -> str:
        self.handed_out += 1
        return f"token-{self.handed_out}"

    async def get_token_async(self) -> str:
        return self.get_token()

    def invalidate(self, token: str) -> str:
        self.invalidated.append(token)
        return self.outcome


@pytest.mark.parametrize("way", WAYS)
def test_any_token_source_will_do(way: str, api: Any) -> None:
    source = ScriptedSource("not_current")
    assert isinstance(source, TokenSource)
    service = api({"token-2"})
    assert send(way, source, service.url) == 200
    assert source.invalidated == ["token-1"]


def test_requests_session_keeps_the_retry_in_the_history(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})
    account = make_account(tokens)
    with requests.Session() as session:
        response = session.post(service.url, data=b"payload", auth=RequestsAuth(account), timeout=WAIT)
    assert response.status_code == 200
    assert len(response.history) == 1 and response.history[0].status_code == 401


def test_httpx_async_many_tasks_share_one_retry(token_server: Any, api: Any) -> None:
    tokens, service = token_server(), api({"at-2"})
    account = make_account(tokens)

    async def main() -> List[int]:
        async with httpx.AsyncClient(auth=HttpxAuth(account)) as client:
            first = await client.post(service.url, content=b"payload")
            rest = await asyncio.gather(*(client.get(service.url) for _ in range(20)))
        return [first.status_code] + [r.status_code for r in rest]

    assert asyncio.run(main()) == [200] * 21
    assert tokens.count == 2


def test_httpx_auth_without_httpx_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "httpx", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "tokenwell._httpx_auth", raising=False)
    names: dict = {}
    exec("from tokenwell import *", names)  # every name in __all__ still imports
    with pytest.raises(ImportError, match="tokenwell\\[httpx\\]"):
        names["HttpxAuth"](ScriptedSource("invalidated"))
