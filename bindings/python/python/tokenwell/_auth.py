"""Auth adapters for ``requests`` and ``httpx``: add ``Authorization: Bearer``,
and on a 401 tell the engine (``invalidate``) and retry once with the new token.

Whether a new token is fetched after a 401 is the engine's decision (it
rate-limits invalidations so a misconfigured API cannot cause a refresh loop);
the adapters retry only when the token actually changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncGenerator, Generator, Optional

if TYPE_CHECKING:  # pragma: no cover
    from ._account import ServiceAccount

__all__ = ["RequestsAuth", "httpx_auth"]

try:
    from requests.auth import AuthBase as _RequestsAuthBase
except ImportError:  # requests is optional
    _RequestsAuthBase = object  # type: ignore[assignment,misc]


class RequestsAuth(_RequestsAuthBase):
    """``requests`` auth: ``requests.get(url, auth=account.requests_auth())``."""

    def __init__(self, account: "ServiceAccount") -> None:
        if _RequestsAuthBase is object:
            raise ImportError("requests_auth() needs the requests package: pip install requests")
        self._account = account

    def __call__(self, request: Any) -> Any:
        token = self._account.get_token()
        request.headers["Authorization"] = f"Bearer {token}"
        body = request.body
        position: Optional[int] = None
        if body is not None and not isinstance(body, (bytes, str)) and hasattr(body, "tell"):
            try:
                position = body.tell()
            except OSError:
                position = None

        def retry_on_401(response: Any, **kwargs: Any) -> Any:
            return self._retry(response, token, position, **kwargs)

        request.register_hook("response", retry_on_401)
        return request

    def _retry(self, response: Any, token: str, position: Optional[int], **kwargs: Any) -> Any:
        if response.status_code != 401 or getattr(response.request, "_tokenwell_retried", False):
            return response
        self._account.invalidate(token)
        fresh = self._account.get_token()
        if fresh == token:
            return response  # the engine kept the token (rate limited): nothing new to try
        body = response.request.body
        if body is not None and not isinstance(body, (bytes, str)):
            if position is None:
                return response  # a streamed body cannot be sent twice
            body.seek(position)
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


_HTTPX_AUTH_CLASS: Any = None


def httpx_auth(account: "ServiceAccount") -> Any:
    """``httpx`` auth for both ``httpx.Client`` and ``httpx.AsyncClient``."""
    global _HTTPX_AUTH_CLASS
    if _HTTPX_AUTH_CLASS is None:
        try:
            import httpx
        except ImportError:
            raise ImportError("httpx_auth() needs httpx: pip install 'tokenwell[httpx]'") from None

        class HttpxAuth(httpx.Auth):
            """Bearer token from a ``ServiceAccount``; one retry on 401."""

            requires_request_body = True

            def __init__(self, account: "ServiceAccount") -> None:
                self._account = account

            def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
                token = self._account.get_token()
                request.headers["Authorization"] = f"Bearer {token}"
                response = yield request
                if response.status_code == 401:
                    self._account.invalidate(token)
                    fresh = self._account.get_token()
                    if fresh != token:
                        request.headers["Authorization"] = f"Bearer {fresh}"
                        yield request

            async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
                token = await self._account.get_token_async()
                request.headers["Authorization"] = f"Bearer {token}"
                response = yield request
                if response.status_code == 401:
                    self._account.invalidate(token)
                    fresh = await self._account.get_token_async()
                    if fresh != token:
                        request.headers["Authorization"] = f"Bearer {fresh}"
                        yield request

            def __repr__(self) -> str:
                return f"HttpxAuth({self._account!r})"

        _HTTPX_AUTH_CLASS = HttpxAuth
    return _HTTPX_AUTH_CLASS(account)
