"""Budgets: ``/v1/budgets`` (list, create), ``/v1/budgets/{id}`` (read, change,
deactivate), ``/v1/budgets/{id}/status``, ``/v1/budgets/{id}/trends`` and a test
message through one of a budget's channels.  Secrets are redacted in every answer.

The test message is rate limited per API key and per budget
(``channel_test_rate_limit_per_minute``), and a key other than an admin key is told only
that delivery failed: the reason names hosts, ports and what the receiver answered,
which would make the server a port scanner of its own network.  It goes to the log."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status

from ..domain.apikeys import ApiKey
from ..domain.budget import Budget
from ..domain.codec import budget_from_mapping, to_jsonable
from ..domain.dashboard import BudgetTrends
from ..domain.errors import NotFoundError, ValidationError
from ..notify.base import DeliveryError
from ..service import BudgetService
from .deps import (
    ExactJSONRoute,
    KeyDep,
    ServiceDep,
    actor_of,
    owner_of,
    require_budget_write,
    require_owner,
    require_read,
    tenant_scope,
)
from .ratelimit import WindowLimiter
from .responses import LOOKUP, WITH_BODY, WRITE, errors
from .routes_jobs import action_out
from .schemas import ID_PATTERN, TEXT_PATTERN, BudgetIn, BudgetOut, BudgetPatch, StatusOut

__all__ = ["HIDDEN_TEST_ERROR", "budget_out", "router"]

log = logging.getLogger("jobbudget.api")
#: What a key other than an admin key is told when a test message fails.
HIDDEN_TEST_ERROR = "the test message could not be delivered (the reason is in the server log)"

router = APIRouter(prefix="/v1/budgets", route_class=ExactJSONRoute, tags=["budgets"])
BudgetId = Annotated[str, Path(pattern=ID_PATTERN)]


def budget_out(budget: Budget) -> BudgetOut:
    """A budget with every secret redacted."""
    return BudgetOut.model_validate(to_jsonable(budget.redacted()))


def _readable(service: BudgetService, key: ApiKey, budget_id: str) -> Budget:
    budget = service.get_budget(budget_id)
    require_read(key, budget.tenant_id, kind="budget", ident=budget_id)
    return budget


@router.get("", summary="List budgets", responses=errors(422))
def list_budgets(
    service: ServiceDep,
    key: KeyDep,
    tenant: Annotated[str | None, Query(pattern=TEXT_PATTERN, max_length=200)] = None,
    include_inactive: bool = False,
) -> list[BudgetOut]:
    scope = tenant_scope(key, tenant)
    if tenant is not None and scope != tenant:
        return []
    return [budget_out(b) for b in service.list_budgets(scope, include_inactive=include_inactive)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a budget", responses=WRITE)
def create_budget(service: ServiceDep, key: KeyDep, body: BudgetIn) -> BudgetOut:
    require_budget_write(service, key, body.tenant_id)
    budget = replace(budget_from_mapping(body.model_dump(mode="python")), owner=owner_of(key, body.tenant_id))
    return budget_out(service.create_budget(budget, actor=actor_of(key)))


@router.get("/{budget_id}", summary="Read a budget", responses=LOOKUP)
def get_budget(service: ServiceDep, key: KeyDep, budget_id: BudgetId) -> BudgetOut:
    return budget_out(_readable(service, key, budget_id))


@router.patch("/{budget_id}", summary="Change a budget", responses=errors(*WITH_BODY, 403, 404, 409, 422))
def patch_budget(service: ServiceDep, key: KeyDep, budget_id: BudgetId, body: BudgetPatch) -> BudgetOut:
    old = _readable(service, key, budget_id)
    require_budget_write(service, key, old.tenant_id)
    require_owner(key, old)
    for name in sorted(body.model_fields_set):
        if getattr(body, name) is None:
            raise ValidationError(name, None, "must not be null; leave it out to keep the stored value")
    data: dict[str, Any] = to_jsonable(old)
    data.update(body.model_dump(mode="python", exclude_unset=True))
    changed = budget_from_mapping({k: v for k, v in data.items() if v is not None})
    return budget_out(service.update_budget(changed, actor=actor_of(key)))


@router.delete("/{budget_id}", summary="Deactivate a budget", responses=errors(403, 404, 422))
def delete_budget(service: ServiceDep, key: KeyDep, budget_id: BudgetId) -> BudgetOut:
    old = _readable(service, key, budget_id)
    require_budget_write(service, key, old.tenant_id)
    require_owner(key, old)
    return budget_out(service.deactivate_budget(budget_id, actor=actor_of(key)))


@router.get("/{budget_id}/status", summary="Spend, utilization and action now", responses=LOOKUP)
def budget_status(service: ServiceDep, key: KeyDep, budget_id: BudgetId) -> StatusOut:
    _readable(service, key, budget_id)
    try:
        s = service.get_budget_status(budget_id)
    except NotFoundError:
        raise
    return StatusOut(
        budget=budget_out(s.budget),
        current_spend=s.current_spend,
        utilization=s.utilization,
        action=action_out(s.action),
        period_start=s.period_start,
        period_end=s.period_end,
        amount_in_force=s.amount,
        carried=s.carried,
        raised=s.raised,
    )


@router.get("/{budget_id}/trends", summary="Daily spend, pace, forecast and cost by component", responses=LOOKUP)
def budget_trends(
    service: ServiceDep, key: KeyDep, budget_id: BudgetId, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> dict[str, Any]:
    _readable(service, key, budget_id)
    trends: BudgetTrends = service.budget_trends(budget_id, days=days)
    result: dict[str, Any] = to_jsonable(trends)
    return result


@router.post(
    "/{budget_id}/channels/{index}/test",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Send a test message through one of the budget's notification channels",
    responses=errors(403, 404, 422, 429, 502),
)
def test_channel(
    request: Request, service: ServiceDep, key: KeyDep, budget_id: BudgetId, index: Annotated[int, Path(ge=0, le=99)]
) -> None:
    """A clearly labelled test message, with the stored secrets, through channel `index`
    (0-based).  At most `channel_test_rate_limit_per_minute` (5) a minute per API key and
    per budget, then 429 with `Retry-After`.  A target the server's outbound policy
    refuses (loopback, private, link-local, ... addresses) is 422 naming
    `notifications[i].target` when it is a literal address, 502 when a host name
    resolves to one (`TARGET_NOT_ALLOWED`).  When delivery fails, an admin key is told
    why; other keys get `DELIVERY_FAILED` and only that it failed (the reason is in the
    server log), so the answers cannot tell a closed port from an HTTP 404."""
    budget = _readable(service, key, budget_id)
    require_budget_write(service, key, budget.tenant_id)
    limiter: WindowLimiter = request.app.state.channel_tests
    limiter.take({"API key": key.id, "budget": budget_id})
    try:
        service.send_budget_test_notification(budget_id, index)
    except DeliveryError as exc:
        if key.role == "admin":
            raise
        log.warning("test message through channel %d of budget %s failed: %s", index, budget_id, exc.message)
        raise DeliveryError(HIDDEN_TEST_ERROR, retryable=exc.retryable) from None
