"""``GET /v1/ws``: live budget status over a WebSocket.  :data:`PROTOCOL` describes
the protocol (``docs/api.md`` prints it); the messages are in
:mod:`jobbudget.api.live_messages`, the authentication in
:mod:`jobbudget.api.live_auth`, the watch shared by every socket in
:mod:`jobbudget.api.live_hub`."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from ..domain.apikeys import ApiKey, can
from ..domain.errors import JobBudgetError
from ..service import BudgetService
from .live_auth import AUTH_SECONDS, authenticate, authenticate_by_message, close, foreign_origin, refuse
from .live_hub import (
    FORECAST_SECONDS,
    MAX_ANONYMOUS_PER_CLIENT,
    MAX_ANONYMOUS_SOCKETS,
    POLL_SECONDS,
    REAUTH_SECONDS,
    REFRESH_SECONDS,
    LiveHub,
    Subscriber,
)
from .live_messages import (
    MAX_AUTH_BYTES,
    MAX_BUDGETS,
    MAX_ID_CHARS,
    MAX_KEY_CHARS,
    MAX_MESSAGE_BYTES,
    Close,
    ProtocolError,
    StatusMessage,
    Subscription,
    error_message,
    parse_subscription,
)

__all__ = ["PROTOCOL", "router"]

router = APIRouter()
MIN_PUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
SUBSCRIBE_SECONDS = 60.0
#: Close codes (kept under their former names).
UNAUTHENTICATED, BAD_SUBSCRIPTION, TOO_MANY_SOCKETS = Close.UNAUTHENTICATED, Close.BAD_MESSAGE, Close.TOO_MANY_SOCKETS

PROTOCOL = f"""\
## Live budget status (WebSocket)

`GET /v1/ws` upgrades to a WebSocket that pushes the status of budgets as their spend
changes (it is not in the OpenAPI schema). Every message is one JSON object (a text
frame) with a `type`. Every close frame the server sends carries a code and a reason
in words.

1. **Connect** to `ws://HOST:PORT/v1/ws` (`wss://` behind a TLS proxy) and give the API
   key in the `Authorization: Bearer KEY` header or, where the client cannot set headers
   (browsers), as the first message, within {AUTH_SECONDS:g} s of connecting: `{{"auth": "KEY"}}`.
   The server answers `{{"type": "authenticated"}}`; the subscription (step 2) may follow
   the key at once, without waiting for that answer. A first message that is binary,
   over {MAX_AUTH_BYTES} bytes, not JSON or of another shape, or whose `auth` is not a string of 1
   to {MAX_KEY_CHARS} characters, gets an error message (with `"field": "auth"` for the key) and
   the socket is closed with code **{int(Close.BAD_MESSAGE)}** and the same reason, as in step 2; no
   message within {AUTH_SECONDS:g} s closes it with code **{int(Close.UNAUTHENTICATED)}** and the reason
   `no authentication within {AUTH_SECONDS:g} s`. At most {MAX_ANONYMOUS_SOCKETS} sockets per server process,
   and {MAX_ANONYMOUS_PER_CLIENT} from one client address, may wait for their key at once: one more is
   closed at once with code **{int(Close.TRY_AGAIN_LATER)}** (try again later). A socket opened by a page
   of another site (an `Origin` header that is not this server's own host) is closed at
   once with code **{int(Close.FOREIGN_ORIGIN)}**: the dashboard at `/` is served by the same server,
   and programs send no `Origin`. A `token` query parameter (`/v1/ws?token=KEY`) is still accepted but
   discouraged: URLs end up in the logs of proxies and browsers (`jobbudget serve` masks
   it in its own log), so a browser should send the key as the first message (see the
   example at the end). An unknown or revoked key, however given, is closed with code
   **{int(Close.UNAUTHENTICATED)}** and the reason `missing, unknown or revoked API key` (with **{int(Close.TRY_AGAIN_LATER)}** while
   the database cannot check it). A key may have at most `ws_max_sockets_per_key`
   sockets open (32 by default, per server process); one more is closed with code
   **{int(Close.TOO_MANY_SOCKETS)}**.
2. **Subscribe** within {SUBSCRIBE_SECONDS:.0f} s with one message, either
   `{{"subscribe": {{"budgets": ["BUDGET_ID", ...]}}}}` or
   `{{"subscribe": {{"tenant": "TENANT"}}}}` (the tenant's active budgets at that moment; both
   keys may be given). The message is checked whole before anything is looked up:
   a binary message, one over {MAX_MESSAGE_BYTES // 1024} KiB, text that is not JSON (or nested too
   deeply), another shape, more than {MAX_BUDGETS} ids or an id that is not 1 to {MAX_ID_CHARS} letters,
   digits or `._:-` gets an error message
   (`{{"type": "error", "code": "VALIDATION_FAILED", "field": "subscribe.budgets", "message": "..."}}`;
   `INVALID_JSON`, `PAYLOAD_TOO_LARGE`) and the socket is closed with code
   **{int(Close.BAD_MESSAGE)}** and the same reason; so is silence. (A frame over the server's
   WebSocket size limit is closed by the server's WebSocket layer with 1009.) A budget
   the key may not read is reported exactly like an unknown one, so nothing leaks:
   `{{"type": "error", "code": "BUDGET_NOT_FOUND", "message": "..."}}` (and
   `TENANT_NOT_FOUND` for another tenant); the socket stays open. At most {MAX_BUDGETS}
   budgets are watched (a tenant's first {MAX_BUDGETS}). Messages sent after the
   subscription are ignored.
3. The server answers `{{"type": "subscribed", "budgets": ["BUDGET_ID", ...]}}` (the
   budgets it watches), then sends each budget's current status at once and again
   whenever its spend, action or period changes (pushed within about {POLL_SECONDS * 2:g} s of
   the change; at most once a second per budget after the first):

   ```json
   {{"type": "status", "budget_id": "...", "tenant_id": "acme", "queue_name": "ml",
    "current_spend": "95.000000000", "budget_amount": "100", "utilization": "0.950000",
    "action": "throttle", "period_start": "2026-11-01", "period_end": "2026-11-30",
    "forecast_spend": "131.500000000"}}
   ```

   Money and utilization are exact decimal strings (`budget_amount` is the amount in
   force this period: the budget's own plus any carry-over and temporary raise); `forecast_spend` (the period-end
   forecast, refreshed at most every {FORECAST_SECONDS:.0f} s) is `null` when there is none.
   Statuses are recomputed only when a budget's spend, period or definition changed,
   when a period or grace period ends, and every {REFRESH_SECONDS:.0f} s (the only moment an
   inactive budget's status is read again).
   `{{"type": "heartbeat", "at": "2026-11-15T12:00:00+00:00"}}` follows every
   {HEARTBEAT_SECONDS:.0f} s.
4. The key is checked again every {REAUTH_SECONDS:g} s: once it is revoked (`jobbudget apikey
   revoke`, from any process) the socket is closed with code **{int(Close.UNAUTHENTICATED)}** and the
   reason `API key revoked`, within {REAUTH_SECONDS * 2 + POLL_SECONDS:g} s.
5. When the server shuts down it closes every socket with code **1012** (service
   restart), and when the database cannot answer with **{int(Close.TRY_AGAIN_LATER)}** (try again
   later): reconnect and subscribe again.

With several worker processes (`--workers`), a socket sees the jobs every worker
stores: each worker's copy of spend counts other processes' committed jobs (see
[scaling.md](scaling.md)), and the socket's watch picks them up within about a second.

With the [`websockets`](https://websockets.readthedocs.io/) library:

```python
import asyncio
import json

import websockets


async def watch(url: str, key: str, tenant: str) -> None:
    headers = {{"Authorization": f"Bearer {{key}}"}}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({{"subscribe": {{"tenant": tenant}}}}))
        async for text in ws:
            message = json.loads(text)
            if message["type"] == "status":
                print(message["budget_id"], message["current_spend"], message["action"])


asyncio.run(watch("ws://127.0.0.1:8080/v1/ws", "KEY", "acme"))
```

In a browser, with the key as the first message (never in the page's URL):

```js
const key = "KEY"; // from your application's sign-in
const ws = new WebSocket("ws://127.0.0.1:8080/v1/ws");
ws.onopen = () => {{
  ws.send(JSON.stringify({{auth: key}}));
  ws.send(JSON.stringify({{subscribe: {{tenant: "acme"}}}}));
}};
ws.onmessage = (event) => {{
  const message = JSON.parse(event.data);
  if (message.type === "status") {{
    console.log(message.budget_id, message.current_spend, message.action);
  }}
}};
ws.onclose = (event) => console.log("closed", event.code, event.reason);
```
"""


def _token(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return ws.query_params.get("token")


#: Past this many ids, one read of every budget costs less than a read per id.
ONE_READ = 20


def _tenants(service: BudgetService, key: ApiKey, budget_ids: tuple[str, ...]) -> dict[str, str]:
    """The tenant of each of ``budget_ids`` that exists and ``key`` may read (the others
    are left out: to the client they are unknown alike).  Many ids are found in one
    read of the budgets the key may see, never more."""
    if len(budget_ids) <= ONE_READ:
        found: dict[str, str] = {}
        for budget_id in budget_ids:
            try:
                found[budget_id] = service.get_budget(budget_id).tenant_id
            except JobBudgetError:
                continue
        return found
    wanted = set(budget_ids)
    scopes: list[str | None] = [None] if key.tenant_id is None else [key.tenant_id, *sorted(key.below)]
    return {
        str(b.id): b.tenant_id
        for scope in scopes
        for b in service.list_budgets(scope, include_inactive=True)
        if b.id in wanted
    }


def _resolve(service: BudgetService, key: ApiKey, wanted: Subscription) -> tuple[list[str], list[dict[str, Any]]]:
    """The budget ids a (checked) subscription names that ``key`` may read, and errors."""
    ids: list[str] = []
    errors: list[dict[str, Any]] = []
    if wanted.tenant is not None:
        if can(key, action="read", tenant_id=wanted.tenant):
            ids.extend(str(b.id) for b in service.list_budgets(wanted.tenant))
        else:
            errors.append(error_message("TENANT_NOT_FOUND", "unknown tenant"))
    tenants = _tenants(service, key, wanted.budgets)
    for budget_id in wanted.budgets:
        tenant = tenants.get(budget_id)
        if tenant is not None and can(key, action="read", tenant_id=tenant):
            ids.append(budget_id)
        else:  # another tenant's budget is reported exactly like an unknown one
            errors.append(error_message("BUDGET_NOT_FOUND", f"budget not found: {budget_id!r}"))
    return list(dict.fromkeys(ids))[:MAX_BUDGETS], errors


async def _until_disconnect(ws: WebSocket, subscriber: Subscriber) -> None:
    """Read (and ignore) whatever the client sends after subscribing, until it goes
    away or the server shuts down (uvicorn then hands every open socket a disconnect)."""
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the socket is gone all the same
    finally:
        subscriber.wake.set()


async def _push(
    ws: WebSocket, service: BudgetService, subscriber: Subscriber, gone: asyncio.Task[None], sent: dict[str, Any]
) -> None:
    """Send what the hub offers (a status whose spend, action or period differs from
    the last one sent; at most once a second per budget) and heartbeats, until the
    client goes away or its key is revoked.  ``sent``: what the snapshot sent."""
    pushed: dict[str, float] = {}
    beat = time.monotonic() + HEARTBEAT_SECONDS
    while not gone.done():
        subscriber.wake.clear()
        if subscriber.revoked:
            await close(ws, Close.UNAUTHENTICATED, "API key revoked")
            return
        now = time.monotonic()
        later = math.inf
        for budget_id, status in list(subscriber.pending.items()):
            if sent.get(budget_id) == status.change:
                del subscriber.pending[budget_id]
                continue
            due = pushed.get(budget_id, -math.inf) + MIN_PUSH_SECONDS
            if now < due:
                later = min(later, due)
                continue
            del subscriber.pending[budget_id]
            await ws.send_json(status.to_json())
            sent[budget_id], pushed[budget_id] = status.change, now
        if now >= beat:
            beat = now + HEARTBEAT_SECONDS
            await ws.send_json({"type": "heartbeat", "at": service.now().isoformat()})
        wait = min(beat, later) - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscriber.wake.wait(), timeout=max(wait, 0.0))


async def _subscription(ws: WebSocket) -> Subscription | None:
    """The client's first message, checked; None when it went away."""
    try:
        message = await asyncio.wait_for(ws.receive(), timeout=SUBSCRIBE_SECONDS)
    except TimeoutError:
        raise ProtocolError("VALIDATION_FAILED", f"no subscription within {SUBSCRIBE_SECONDS:.0f} s") from None
    if message["type"] == "websocket.disconnect":
        return None
    return parse_subscription(message)


@router.websocket("/v1/ws")
async def live(ws: WebSocket) -> None:
    service: BudgetService = ws.app.state.service
    hub = LiveHub.of(ws.app.state, service)
    token = _token(ws)
    await ws.accept()  # then close with a code: a refused handshake shows browsers no reason
    if foreign_origin(ws) is not None:
        await close(ws, Close.FOREIGN_ORIGIN, "a page of another site may not open this stream")
        return
    by_message = token is None
    if token is None:
        signed = await authenticate_by_message(ws, service, hub)
    else:
        signed = await authenticate(ws, service, token)
    if signed is None:
        return
    key, token = signed
    subscriber = Subscriber(key.id, token)
    if not hub.join(subscriber):
        limit = hub.max_sockets_per_key
        await close(ws, Close.TOO_MANY_SOCKETS, f"too many open sockets for this API key (at most {limit})")
        return
    try:
        if by_message:
            await ws.send_json({"type": "authenticated"})
        await _serve(ws, service, hub, key, subscriber)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client left before it was told
    finally:
        hub.leave(subscriber)


async def _serve(ws: WebSocket, service: BudgetService, hub: LiveHub, key: ApiKey, subscriber: Subscriber) -> None:
    try:
        wanted = await _subscription(ws)
    except ProtocolError as exc:
        await refuse(ws, exc)
        return
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    if wanted is None:
        return
    gone = asyncio.create_task(_until_disconnect(ws, subscriber))
    try:
        ids, errors = await run_in_threadpool(_resolve, service, key, wanted)
        for error in errors:
            await ws.send_json(error)
        await ws.send_json({"type": "subscribed", "budgets": ids})
        snapshot: list[StatusMessage] = await hub.follow(subscriber, ids)
        sent: dict[str, Any] = {}
        for status in snapshot:
            await ws.send_json(status.to_json())
            sent[status.budget_id] = status.change
        await _push(ws, service, subscriber, gone, sent)
    except JobBudgetError:  # the database cannot answer now
        await close(ws, Close.TRY_AGAIN_LATER, "budgets cannot be read now; try again later")
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client left while we were sending
    finally:
        gone.cancel()
