"""``GET /v1/ws``: live budget status over a WebSocket.

1. Connect with the API key in the ``Authorization: Bearer`` header or a ``token``
   query parameter (browsers cannot set headers); a bad key closes with 4401.  Prefer
   the header: uvicorn's access log writes the request line, query string included,
   so a ``token`` parameter ends up in the server's log.
2. Send ``{"subscribe": {"budgets": ["<id>", ...]}}`` or
   ``{"subscribe": {"tenant": "<tenant>"}}`` (every active budget of the tenant).
   Budgets the key may not read are reported as ``{"type": "error", "code":
   "BUDGET_NOT_FOUND", ...}`` exactly like an unknown id, so nothing leaks.
3. The server answers ``{"type": "subscribed", "budgets": [...]}`` and then pushes
   ``{"type": "status", "budget_id", "tenant_id", "queue_name", "current_spend",
   "budget_amount", "utilization", "action", "period_start", "period_end",
   "forecast_spend"}`` whenever a budget's spend or action changes — at most once a
   second per budget — and ``{"type": "heartbeat", "at": ...}`` every 15 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from ..domain.apikeys import ApiKey, can
from ..domain.codec import to_jsonable
from ..domain.errors import JobBudgetError, NotFoundError
from ..service import BudgetService

__all__ = ["router"]

router = APIRouter()
POLL_SECONDS = 0.25
MIN_PUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
FORECAST_SECONDS = 30.0
MAX_BUDGETS = 1000


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
    if not isinstance(budgets, list) or not all(isinstance(b, str) and len(b) <= 64 for b in budgets):
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


@router.websocket("/v1/ws")
async def live(ws: WebSocket) -> None:
    service: BudgetService = ws.app.state.service
    try:
        key = await run_in_threadpool(service.authenticate, _token(ws))
    except JobBudgetError:
        await ws.close(code=4401)
        return
    await ws.accept()
    try:
        request = json.loads(await asyncio.wait_for(ws.receive_text(), timeout=60))
    except (TimeoutError, ValueError, WebSocketDisconnect):
        await ws.close(code=4400)
        return
    ids, errors = await run_in_threadpool(_resolve, service, key, request)
    for error in errors:
        await ws.send_json(error)
    await ws.send_json({"type": "subscribed", "budgets": ids})
    last: dict[str, tuple[Any, ...]] = {}
    pushed: dict[str, float] = {}
    forecasts: dict[str, tuple[float, Any]] = {}
    beat = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            for budget_id in ids:
                if now - pushed.get(budget_id, 0.0) < MIN_PUSH_SECONDS:
                    continue
                try:
                    status = await run_in_threadpool(_status, service, budget_id, forecasts)
                except JobBudgetError:
                    continue
                fingerprint = (status["current_spend"], status["action"], status["period_start"])
                if last.get(budget_id) != fingerprint:
                    last[budget_id], pushed[budget_id] = fingerprint, now
                    await ws.send_json(to_jsonable(status))
            if now - beat >= HEARTBEAT_SECONDS:
                beat = now
                await ws.send_json({"type": "heartbeat", "at": service.now().isoformat()})
            await asyncio.sleep(POLL_SECONDS)
    except (WebSocketDisconnect, RuntimeError):
        return
