"""``HttpxAuth``: an ``httpx`` auth (``httpx.Client`` and ``httpx.AsyncClient``)
for any :class:`~tokenwell.TokenSource`: ``httpx.Client(auth=HttpxAuth(account))``.

A bearer token, and the engine's one 401 rule (``retry_request``): after a
401 for token T, ``invalidate(T)``, and retry once with the next token after
``invalidated`` or ``not_current``; never after ``rate_limited``; never retry
the retry. This module imports httpx, so ``tokenwell`` loads it only when
``HttpxAuth`` is first used.
"""

from __future__ import annotations

from typing import AsyncGenerator, Generator

import httpx

from ._native import retry_request
from ._token import TokenSource

__all__ = ["HttpxAuth"]


class HttpxAuth(httpx.Auth):
    """Bearer token from ``source``; one retry on 401 when the engine's 401 rule says so."""

    requires_request_body = True  # the retry sends the body again

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._source.get_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and retry_request(self._source.invalidate(token)):
            request.headers["Authorization"] = f"Bearer {self._source.get_token()}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._source.get_token_async()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and retry_request(self._source.invalidate(token)):
            request.headers["Authorization"] = f"Bearer {await self._source.get_token_async()}"
            yield request

    def __repr__(self) -> str:
        return f"HttpxAuth({self._source!r})"
