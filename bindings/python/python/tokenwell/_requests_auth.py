"""``RequestsAuth``: a ``requests`` auth for any :class:`~tokenwell.TokenSource`
(a ``ServiceAccount``, usually): ``requests.get(url, auth=RequestsAuth(account))``.

It adds ``Authorization: Bearer``, and on a 401 follows the engine's one 401
rule (``retry_request``, the same in every host): tell the source
(``invalidate(token)``) and retry the request once with the next token after
``invalidated`` or ``not_current``; never after ``rate_limited`` (the same
token would be sent again, and a misconfigured API must not cause a refresh
loop); and never retry the retry. It needs nothing from ``requests`` until a
retry (``requests`` only calls it), so importing it costs nothing.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from ._native import retry_request
from ._token import TokenSource

__all__ = ["RequestsAuth"]


class RequestsAuth:
    """``requests`` auth: a bearer token from ``source``; one retry on 401 when
    the engine's 401 rule says so."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def __call__(self, request: Any) -> Any:
        token = self._source.get_token()
        request.headers["Authorization"] = f"Bearer {token}"
        body = request.body
        position: Optional[int] = None
        if body is not None and not isinstance(body, (bytes, str)) and hasattr(body, "tell"):
            try:
                position = body.tell()
            except OSError:
                position = None
        request.register_hook("response", functools.partial(self._after_response, token=token, position=position))
        return request

    def _after_response(self, response: Any, *, token: str, position: Optional[int], **kwargs: Any) -> Any:
        if response.status_code != 401 or getattr(response.request, "_tokenwell_retried", False):
            return response
        if not retry_request(self._source.invalidate(token)):
            return response
        body = response.request.body
        if body is not None and not isinstance(body, (bytes, str)):
            if position is None:
                return response  # a streamed body cannot be sent twice
            body.seek(position)
        fresh = self._source.get_token()
        from requests.cookies import extract_cookies_to_jar

        response.content  # noqa: B018 - drain the 401 so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry._tokenwell_retried = True
        extract_cookies_to_jar(retry._cookies, response.request, response.raw)
        retry.prepare_cookies(retry._cookies)
        retry.headers["Authorization"] = f"Bearer {fresh}"
        answer = response.connection.send(retry, **kwargs)
        answer.history.append(response)
        answer.request = retry
        return answer

    def __repr__(self) -> str:
        return f"RequestsAuth({self._source!r})"
