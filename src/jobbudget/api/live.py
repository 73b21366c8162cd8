"""``GET /v1/ws``: live budget status over a WebSocket.  :data:`PROTOCOL` describes
the protocol (``docs/api.md`` prints it)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from ..domain.apikeys import ApiKey, can
from ..domain.codec import to_jsonable
from ..domain.errors import JobBudgetError, NotFoundError
from ..service import BudgetService

__all__ = ["PROTOCOL", "router"]

router = APIRouter()
POLL_SECONDS = 0.25
MIN_PUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
FORECAST_SECONDS = 30.0
MAX_BUDGETS = 1000
MAX_ID_CHARS = 64
SUBSCRIBE_SECONDS = 60.0
#: Close codes: a missing, unknown or revoked key; no valid subscribe message in time.
UNAUTHENTICATED, BAD_SUBSCRIPTION = 4401, 4400

PROTOCOL = f"""\
## Live budget status (WebSocket)

`GET /v1/ws` upgrades to a WebSocket that pushes the status of budgets as their spend
changes (it is not in the OpenAPI schema). Every message is one JSON object (a text
frame) with a `type`.

1. **Connect** to `ws://HOST:PORT/v1/ws` (`wss://` behind a TLS proxy) with the API key
   in the `Authorization: Bearer KEY` header, or as a `token` query parameter where the
   client cannot set headers (browsers). Prefer the header: uvicorn's access log writes
   the request line, query string included. A missing, unknown or revoked key is
   accepted and then closed at once with code **{UNAUTHENTICATED}**.
2. **Subscribe** within {SUBSCRIBE_SECONDS:.0f} s with one message, either
   `{{"subscribe": {{"budgets": ["BUDGET_ID", ...]}}}}` or
   `{{"subscribe": {{"tenant": "TENANT"}}}}` (the tenant's active budgets at that moment; both
   keys may be given). Anything that is not a JSON text message, or silence, closes
   the socket with code **{BAD_SUBSCRIPTION}**. A budget the key may not read is reported
   exactly like an unknown one, so nothing leaks:
   `{{"type": "error", "code": "BUDGET_NOT_FOUND", "message": "..."}}` (and
   `TENANT_NOT_FOUND` for another tenant, `VALIDATION_FAILED` for a malformed message
   or ids that are not strings of at most {MAX_ID_CHARS} characters). At most {MAX_BUDGETS} budgets
   are watched. Messages sent after the subscription are ignored.
3. The server answers `{{"type": "subscribed", "budgets": ["BUDGET_ID", ...]}}` (the
   budgets it watches), then sends each budget's current status at once and again
   whenever its spend, action or period changes (checked every {POLL_SECONDS} s; at most
   once a second per budget after the first):

   ```json
   {{"type": "status", "budget_id": "...", "tenant_id": "acme", "queue_name": "ml",
    "current_spend": "95.000000000", "budget_amount": "100", "utilization": "0.950000",
    "action": "throttle", "period_start": "2026-11-01", "period_end": "2026-11-30",
    "forecast_spend": "131.500000000"}}
   ```

   Money and utilization are exact decimal strings; `forecast_spend` (the period-end
   forecast, refreshed at most every {FORECAST_SECONDS:.0f} s) is `null` when there is none.
   `{{"type": "heartbeat", "at": "2026-11-15T12:00:00+00:00"}}` follows every
   {HEARTBEAT_SECONDS:.0f} s.
4. When the server shuts down it closes every socket with code **1012** (service
   restart): reconnect and subscribe again.

With several worker processes (`--workers`), a socket sees the jobs every worker
stores: each worker's copy of spend counts other processes' committed jobs (see
[scaling.md](scaling.md)), and the socket's poll picks them up within about a second.

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
"""


def _token(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return ws.query_params.get("token")


def _readable(service: BudgetService, key: ApiKey, budget_id: str) -> bool:
    try:
        budget = service.get_budget(budget_id)
    except (NotFoundError, JobBudgetError):
        return False
    return can(key, action="read", tenant_id=budget.tenant_id)


def _resolve(service: BudgetService, key: ApiKey, request: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The budget ids a subscribe message names that ``key`` may read, and errors."""
    wanted = request.get("subscribe") if isinstance(request, dict) else None
    if not isinstance(wanted, dict):
        return [], [{"type": "error", "code": "VALIDATION_FAILED", "message": 'send {"subscribe": {...}}'}]
    ids: list[str] = []
    errors: list[dict[str, Any]] = []
    tenant = wanted.get("tenant")
    if isinstance(tenant, str):
        if can(key, action="read", tenant_id=tenant):
            ids.extend(str(b.id) for b in service.list_budgets(tenant))
        else:
            errors.append({"type": "error", "code": "TENANT_NOT_FOUND", "message": "unknown tenant"})
    budgets = wanted.get("budgets", [])
    if not isinstance(budgets, list) or not all(isinstance(b, str) and len(b) <= MAX_ID_CHARS for b in budgets):
        errors.append({"type": "error", "code": "VALIDATION_FAILED", "field": "budgets", "message": "ids"})
        budgets = []
    for budget_id in budgets:
        if _readable(service, key, budget_id):
            ids.append(budget_id)
        else:
            errors.append({"type": "error", "code": "BUDGET_NOT_FOUND", "message": f"budget not found: {budget_id!r}"})
    return list(dict.fromkeys(ids))[:MAX_BUDGETS], errors


def _status(service: BudgetService, budget_id: str, forecasts: dict[str, tuple[float, Any]]) -> dict[str, Any]:
    status = service.get_budget_status(budget_id)
    budget = status.budget
    cached = forecasts.get(budget_id)
    if cached is None or time.monotonic() - cached[0] > FORECAST_SECONDS:
        try:
            predicted: Any = service.get_forecast(budget.tenant_id, budget.queue_name).predicted_spend
        except JobBudgetError:
            predicted = None
        forecasts[budget_id] = cached = (time.monotonic(), predicted)
    return {
        "type": "status",
        "budget_id": budget_id,
        "tenant_id": budget.tenant_id,
        "queue_name": budget.queue_name,
        "current_spend": status.current_spend,
        "budget_amount": budget.amount,
        "utilization": status.utilization,
        "action": status.action.type,
        "period_start": status.period_start,
        "period_end": status.period_end,
        "forecast_spend": cached[1],
    }


async def _until_disconnect(ws: WebSocket) -> None:
    """Read (and ignore) whatever the client sends after subscribing, until it goes
    away or the server shuts down (uvicorn then hands every open socket a disconnect)."""
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the socket is gone all the same


async def _push(ws: WebSocket, service: BudgetService, ids: list[str], gone: asyncio.Task[None]) -> None:
    """Push each budget's status when it changes, and heartbeats, until ``gone`` ends.
    The first status of each budget is a snapshot and does not count toward its
    once-a-second limit, so a change right after subscribing is pushed at once."""
    last: dict[str, tuple[Any, ...]] = {}
    pushed: dict[str, float] = {}
    forecasts: dict[str, tuple[float, Any]] = {}
    beat = time.monotonic()
    while not gone.done():
        now = time.monotonic()
        for budget_id in ids:
            if now - pushed.get(budget_id, -math.inf) < MIN_PUSH_SECONDS:
                continue
            try:
                status = await run_in_threadpool(_status, service, budget_id, forecasts)
            except JobBudgetError:
                continue
            fingerprint = (status["current_spend"], status["action"], status["period_start"])
            if last.get(budget_id) != fingerprint:
                if budget_id in last:
                    pushed[budget_id] = now
                last[budget_id] = fingerprint
                await ws.send_json(to_jsonable(status))
        if now - beat >= HEARTBEAT_SECONDS:
            beat = now
            await ws.send_json({"type": "heartbeat", "at": service.now().isoformat()})
        await asyncio.wait({gone}, timeout=POLL_SECONDS)


async def _subscription(ws: WebSocket) -> Any:
    """The client's first message as JSON; None when it went away."""
    message = await asyncio.wait_for(ws.receive(), timeout=SUBSCRIBE_SECONDS)
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if not isinstance(text, str):
        raise ValueError("not a text message")
    return json.loads(text)


@router.websocket("/v1/ws")
async def live(ws: WebSocket) -> None:
    service: BudgetService = ws.app.state.service
    try:
        key = await run_in_threadpool(service.authenticate, _token(ws))
    except JobBudgetError:
        key = None
    await ws.accept()  # then close with a code: a refused handshake shows browsers no reason
    if key is None:
        await ws.close(code=UNAUTHENTICATED)
        return
    try:
        request = await _subscription(ws)
    except (TimeoutError, ValueError):
        await ws.close(code=BAD_SUBSCRIPTION)
        return
    if request is None:
        return
    ids, errors = await run_in_threadpool(_resolve, service, key, request)
    gone = asyncio.create_task(_until_disconnect(ws))
    try:
        for error in errors:
            await ws.send_json(error)
        await ws.send_json({"type": "subscribed", "budgets": ids})
        await _push(ws, service, ids, gone)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client left while we were sending
    finally:
        gone.cancel()
