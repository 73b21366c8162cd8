"""Reading: ``/v1/reports`` (JSON, CSV or HTML), ``/v1/dashboard`` (every visible
budget's status and the top cost drivers) and ``/v1/alerts`` (list, acknowledge)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..domain.codec import to_jsonable
from ..domain.errors import NotFoundError, ValidationError
from ..domain.periods import BudgetPeriod, parse_period
from ..render import render_csv, render_html, report_to_json
from .deps import ExactJSONRoute, KeyDep, ServiceDep, actor_of, require_read, require_write, tenant_scope
from .responses import LOOKUP, WITH_BODY, errors
from .schemas import ID_PATTERN, TEXT_PATTERN, AckIn

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=ExactJSONRoute)
#: Reports and budget periods stay well inside the calendar (no overflow at year 9999).
EARLIEST = date(1970, 1, 1)
LATEST = date(9000, 12, 31)
MAX_REPORT_DAYS = 3700
_MEDIA = {"json": "application/json", "csv": "text/csv", "html": "text/html"}


def _period(period: str | None, start: date | None, end: date | None) -> BudgetPeriod:
    if period is not None:
        if start is not None or end is not None:
            raise ValidationError("period", period, "cannot be combined with from/to")
        try:
            parsed = parse_period(period)
        except ValidationError as exc:
            raise ValidationError("period", exc.value, exc.reason) from None
        if parsed.start_date is None or not EARLIEST <= parsed.start_date <= LATEST:
            raise ValidationError("period", period, f"must lie between {EARLIEST} and {LATEST}")
        return parsed
    for name, day in (("from", start), ("to", end)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ValidationError(name, day.isoformat(), f"must lie between {EARLIEST} and {LATEST}")
    if start is None and end is None:
        return BudgetPeriod("monthly")
    if start is None or end is None:
        raise ValidationError("to" if end is None else "from", None, "from and to go together")
    if end < start:
        raise ValidationError("to", end.isoformat(), f"must not be before from {start}")
    if (end - start).days >= MAX_REPORT_DAYS:
        raise ValidationError("to", end.isoformat(), f"a report covers at most {MAX_REPORT_DAYS} days")
    return BudgetPeriod("custom", start_date=start, end_date=end)


def _format(fmt: str | None, accept: str | None) -> str:
    if fmt is not None:
        if fmt not in _MEDIA:
            raise ValidationError("format", fmt, "must be json, csv or html")
        return fmt
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        for name, known in _MEDIA.items():
            if media == known:
                return name
    return "json"


@router.get(
    "/reports",
    tags=["analytics"],
    summary="A tenant's spend over a period",
    responses={200: {"content": {"text/csv": {}, "text/html": {}}}, **LOOKUP},
)
def get_report(
    service: ServiceDep,
    key: KeyDep,
    tenant: Annotated[str, Query(pattern=TEXT_PATTERN, max_length=200)],
    period: Annotated[
        str | None, Query(pattern=TEXT_PATTERN, max_length=40, description="2026-11, 2026-Q4, 2026-W45, 2026 or a day")
    ] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    fmt: Annotated[str | None, Query(alias="format", max_length=10)] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    require_read(key, tenant, kind="report", ident=tenant)
    chosen = _format(fmt, accept)
    report = service.generate_report(tenant, _period(period, start, end))
    if chosen == "csv":
        return Response(render_csv(report), media_type="text/csv; charset=utf-8")
    if chosen == "html":
        return HTMLResponse(render_html(report))
    return JSONResponse(to_jsonable(report_to_json(report)))


@router.get(
    "/dashboard", tags=["analytics"], summary="Every visible budget's status and the top cost drivers", responses=LOOKUP
)
def get_dashboard(
    service: ServiceDep,
    key: KeyDep,
    tenant: Annotated[str | None, Query(pattern=TEXT_PATTERN, max_length=200)] = None,
    top: Annotated[int, Query(ge=0, le=100)] = 10,
) -> dict[str, Any]:
    scope = tenant_scope(key, tenant)
    if tenant is not None and scope != tenant:
        raise NotFoundError("tenant", tenant)
    result: dict[str, Any] = to_jsonable(service.dashboard(scope, top=top))
    return result


@router.get("/alerts", tags=["alerts"], summary="Alerts, newest first", responses=errors(422))
def list_alerts(
    service: ServiceDep,
    key: KeyDep,
    tenant: Annotated[str | None, Query(pattern=TEXT_PATTERN, max_length=200)] = None,
    active_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """Each alert with its deliveries.  With an admin key: every delivery and why it
    failed.  With other keys: only the deliveries to the budgets' own channels (not to
    the server's `notification_channels`), and a failure without its reason."""
    scope = tenant_scope(key, tenant)
    if tenant is not None and scope != tenant:
        return []
    found = service.list_alerts(scope, active_only=active_only, limit=limit, details=key.role == "admin")
    result: list[dict[str, Any]] = to_jsonable(found)
    return result


@router.post(
    "/alerts/{alert_id}/ack",
    tags=["alerts"],
    summary="Acknowledge an alert",
    responses=errors(*WITH_BODY, 403, 404, 422),
)
def ack_alert(
    service: ServiceDep, key: KeyDep, alert_id: Annotated[str, Path(pattern=ID_PATTERN)], body: AckIn | None = None
) -> dict[str, Any]:
    if key.role != "admin":
        scope = tenant_scope(key, None)
        mine = [a for a in service.list_alerts(scope, limit=100_000) if a.event.id == alert_id]
        if not mine:
            raise NotFoundError("alert", alert_id)
        require_write(service, key, mine[0].event.tenant_id)
    by = body.by if body is not None and body.by else actor_of(key)
    service.acknowledge_alert(alert_id, by)
    return {"id": alert_id, "acknowledged": True, "by": by}
