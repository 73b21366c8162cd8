"""Authenticate before reading the body: a request to ``/v1`` without a valid key is
answered 401 from its headers alone, so an anonymous client's body is never read,
decoded or held (a 16 MiB body costs the server nothing but the headers).

The key found is left in ``scope["state"]["api_key"]`` for :func:`.deps.current_key`.
:func:`key_of` finds it, for both: a key this process has seen recently (or refused
recently) is answered from memory on the event loop; any other is looked up in a
worker thread, never on the loop."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ..domain.apikeys import ApiKey
from ..domain.errors import AuthenticationError, StorageError
from ..service import BudgetService
from .errors import jobbudget_error_response

__all__ = ["STATE_KEY", "AuthFirstMiddleware", "bearer_token", "key_of"]

STATE_KEY = "api_key"


def bearer_token(scope: Scope) -> str | None:
    """The key of ``Authorization: Bearer <key>`` (None without one)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


async def key_of(service: BudgetService, token: str | None) -> ApiKey:
    """The key ``token`` is (AuthenticationError: none, malformed, unknown or revoked).

    On the event loop only :meth:`~jobbudget.service.BudgetService.remembered_key`:
    a regular expression, a SHA-256 and lock-free dictionary reads (no I/O, no lock).
    A key it does not know is looked up by ``authenticate`` in a worker thread: that
    may query the database, and wait for another thread's lookup of the same key."""
    if not token:
        raise AuthenticationError("an API key is required: Authorization: Bearer <key>")
    key = service.remembered_key(token)
    return key if key is not None else await run_in_threadpool(service.authenticate, token)


class AuthFirstMiddleware:
    """401 for ``/v1`` requests without a valid key, before the body is read."""

    def __init__(self, app: ASGIApp, service: BudgetService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        try:
            key = await key_of(self.service, bearer_token(scope))
        except (AuthenticationError, StorageError) as exc:
            await jobbudget_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = key
        await self.app(scope, receive, send)
