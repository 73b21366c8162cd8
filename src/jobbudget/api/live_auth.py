"""Who a ``/v1/ws`` socket is: the API key from the ``Authorization: Bearer`` header
or the ``token`` query parameter, or else from the client's first message,
``{"auth": "KEY"}`` within :data:`AUTH_SECONDS` (browsers cannot set headers on a
WebSocket, and a key in a URL ends up in proxies' logs).

A socket waiting for its first message counts toward the hub's bound on sockets
without a key (:data:`jobbudget.api.live_hub.MAX_ANONYMOUS_SOCKETS` per process) until
its key is checked.  Every refusal closes the (accepted) socket with a code and a
reason that never contains the key."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from ..domain.apikeys import ApiKey
from ..domain.errors import AuthenticationError, JobBudgetError
from ..service import BudgetService
from .live_hub import LiveHub
from .live_messages import Close, ProtocolError, close_reason, parse_auth

__all__ = ["AUTH_SECONDS", "authenticate", "authenticate_by_message", "close", "foreign_origin", "refuse"]

#: How long a socket without a key in its request may take to send ``{"auth": "KEY"}``
#: (a browser sends it as soon as the socket opens).
AUTH_SECONDS = 5.0
_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # the client left, or the socket is closed


async def close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(*_GONE):
        await ws.close(code=code, reason=close_reason(reason))


async def refuse(ws: WebSocket, error: ProtocolError) -> None:
    """A message the protocol does not allow: an error message, then close 4400 with
    the same reason."""
    with contextlib.suppress(*_GONE):
        await ws.send_json(error.message())
    await close(ws, Close.BAD_MESSAGE, error.reason)


async def authenticate(ws: WebSocket, service: BudgetService, token: str) -> tuple[ApiKey, str] | None:
    """The key ``token`` is (and ``token``), or None once the socket is closed with why."""
    try:
        key: ApiKey = await run_in_threadpool(service.authenticate, token)
    except AuthenticationError:
        await close(ws, Close.UNAUTHENTICATED, "missing, unknown or revoked API key")
        return None
    except JobBudgetError:
        await close(ws, Close.TRY_AGAIN_LATER, "the API key cannot be checked now; try again later")
        return None
    return key, token


async def authenticate_by_message(ws: WebSocket, service: BudgetService, hub: LiveHub) -> tuple[ApiKey, str] | None:
    """The key of the client's first message and its text, or None once the socket
    is closed with why (or the client went away)."""
    client = ws.client.host if ws.client is not None else ""
    if not hub.wait_for_key(client):
        await close(ws, Close.TRY_AGAIN_LATER, "too many sockets waiting to authenticate; try later")
        return None
    try:
        token = await _first_message(ws)
        return None if token is None else await authenticate(ws, service, token)
    finally:
        hub.key_checked(client)


def foreign_origin(ws: WebSocket) -> str | None:
    """The ``Origin`` of a browser page of another site (None: no Origin, as from a
    program, or this server's own, as from the dashboard).  Such a page could open
    sockets from its visitors' browsers to hold the server's waiting places."""
    origin = ws.headers.get("origin")
    if origin is None:
        return None
    netloc = urlsplit(origin).netloc.lower()
    # behind a proxy the page's host may arrive as X-Forwarded-Host (a browser cannot
    # set headers on a WebSocket, so a page cannot forge either)
    hosts = {ws.headers.get("host", "").lower(), ws.headers.get("x-forwarded-host", "").split(",")[0].strip().lower()}
    return None if netloc and netloc in hosts else origin


async def _first_message(ws: WebSocket) -> str | None:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout=AUTH_SECONDS)
    except TimeoutError:
        await close(ws, Close.UNAUTHENTICATED, f"no authentication within {AUTH_SECONDS:g} s")
        return None
    except _GONE:
        return None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        return parse_auth(message)
    except ProtocolError as exc:
        await refuse(ws, exc)
        return None
