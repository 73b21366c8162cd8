"""Routes for platform operators: the organisation tree, refunds and corrections,
temporary raises.  Changing any of them takes an admin key; reading the tree and the
adjustments follows the usual rules (a tenant or team key sees its own subtree)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from ..domain.adjustments import Adjustment, BudgetRaise
from ..domain.errors import NotFoundError, ValidationError
from .deps import ExactJSONRoute, KeyDep, ServiceDep, actor_of, require_admin, require_read, tenant_scope
from .responses import WITH_BODY, WRITE, errors
from .schemas import ID_PATTERN, TEXT_PATTERN
from .schemas_platform import (
    AdjustmentIn,
    AdjustmentOut,
    ParentIn,
    RaiseIn,
    RaiseOut,
    RefundIn,
    TreeNodeOut,
    TreeOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=ExactJSONRoute)
_MAX_DAYS = 400


def adjustment_out(a: Adjustment, shown: Callable[[str], bool] = lambda budget_id: True) -> AdjustmentOut:
    return AdjustmentOut(
        id=a.id, kind=a.kind, tenant_id=a.tenant_id, queue_name=a.queue_name, job_id=a.job_id,
        occurred_at=a.occurred_at, day=a.day, amount=a.amount, reason=a.reason, actor=a.actor, at=a.at,
        budget_ids=sorted(b for b in {k.budget_id for k in a.keys} if shown(b)),
    )  # fmt: skip


def raise_out(r: BudgetRaise) -> RaiseOut:
    return RaiseOut(
        id=r.id, budget_id=r.budget_id, amount=r.amount, starts_at=r.starts_at, expires_at=r.expires_at,
        approver=r.approver, reason=r.reason, created_at=r.created_at, created_by=r.created_by,
    )  # fmt: skip


@router.get("/tree", tags=["organisation"], summary="The organisation tree", responses=errors(422))
def get_tree(service: ServiceDep, key: KeyDep) -> TreeOut:
    """Each node with its parent.  A tenant or team key sees the nodes of its own
    subtree (and not who is above it)."""
    tree = service.tenant_tree()
    visible = None if key.tenant_id is None else {key.tenant_id, *key.below}
    return TreeOut(
        nodes=[
            TreeNodeOut(node=n, parent=p)
            for n, p in sorted(tree.parents.items())
            if visible is None or (n in visible and p in visible)
        ]
    )


@router.put("/tree/{node}", tags=["organisation"], summary="Place a node in the tree", responses=WRITE)
def put_tree_node(
    service: ServiceDep, key: KeyDep, node: Annotated[str, Path(pattern=ID_PATTERN)], body: ParentIn
) -> TreeOut:
    """Put ``node`` (a tenant or team) under ``parent`` (``""``: a root).  Budgets on a
    node cover every tenant below it; the budgets of the old and new ancestors are
    recounted.  A cycle or more than 8 levels is refused (422)."""
    require_admin(service, key)
    service.set_parent(node, body.parent, actor=actor_of(key))
    return get_tree(service, key)


@router.post(
    "/jobs/{tenant_id}/{job_id}/refund",
    tags=["corrections"],
    summary="Refund a job",
    responses=errors(*WITH_BODY, 403, 404, 409, 422),
)
def refund_job(
    service: ServiceDep,
    key: KeyDep,
    tenant_id: Annotated[str, Path(pattern=ID_PATTERN)],
    job_id: Annotated[str, Path(max_length=200)],
    body: RefundIn,
) -> AdjustmentOut:
    """Credit a stored job's whole cost back to the budgets it counted toward (once;
    409 when it was refunded before), audited."""
    require_admin(service, key)
    done = service.refund_job(tenant_id, job_id, reason=body.reason, actor=actor_of(key))
    if done is None:
        from ..domain.errors import ConflictError

        raise ConflictError(f"job {tenant_id}/{job_id} was refunded before")
    return adjustment_out(done)


@router.post("/adjustments", tags=["corrections"], summary="Credit or debit spend", responses=WRITE)
def post_adjustment(service: ServiceDep, key: KeyDep, body: AdjustmentIn) -> AdjustmentOut:
    """A correction counted at ``at`` (default now) toward the budgets covering the
    tenant and queue then; reports show corrections apart from jobs."""
    require_admin(service, key)
    done = service.adjust_spend(
        body.tenant_id, body.amount, reason=body.reason, actor=actor_of(key), queue_name=body.queue_name,
        at=body.at, labels=body.labels,
    )  # fmt: skip
    return adjustment_out(done)


@router.get("/adjustments", tags=["corrections"], summary="Refunds and corrections", responses=errors(422))
def list_adjustments(
    service: ServiceDep,
    key: KeyDep,
    start: date | None = None,
    end: date | None = None,
    tenant: Annotated[str | None, Query(pattern=TEXT_PATTERN, max_length=200)] = None,
) -> list[AdjustmentOut]:
    """The adjustments counted on the UTC days ``start..end`` (default: the last 30
    days to today; at most 400 days) of a node's subtree; a tenant or team key sees
    its own subtree only."""
    end = end or service.now().date()
    start = start or end - timedelta(days=30)
    if end < start or end - start > timedelta(days=_MAX_DAYS):
        raise ValidationError("end", end.isoformat(), f"must be on or after start and at most {_MAX_DAYS} days later")
    scope = tenant_scope(key, tenant)
    if tenant is not None and scope != tenant:
        raise NotFoundError("tenant", tenant)
    found = service.list_adjustments(scope, start=start, end=end)
    if key.tenant_id is None:
        return [adjustment_out(a) for a in found]
    visible = {key.tenant_id, *key.below}
    nodes: dict[str, bool] = {}  # the budgets of nodes above the key's are not shown

    def shown(budget_id: str) -> bool:
        if budget_id not in nodes:
            try:
                nodes[budget_id] = service.get_budget(budget_id).tenant_id in visible
            except NotFoundError:
                nodes[budget_id] = False
        return nodes[budget_id]

    return [adjustment_out(a, shown) for a in found]


@router.post(
    "/budgets/{budget_id}/raises",
    tags=["budgets"],
    summary="Raise a budget for a while",
    responses=errors(*WITH_BODY, 403, 404, 409, 422),
)
def post_raise(
    service: ServiceDep, key: KeyDep, budget_id: Annotated[str, Path(pattern=ID_PATTERN)], body: RaiseIn
) -> RaiseOut:
    """Add ``amount`` to the budget until ``expires_at`` (approved by ``approver``,
    audited); it ends by itself."""
    require_admin(service, key)
    done = service.raise_budget(
        budget_id, body.amount, expires_at=body.expires_at, approver=body.approver, reason=body.reason,
        actor=actor_of(key), starts_at=body.starts_at,
    )  # fmt: skip
    return raise_out(done)


@router.get("/budgets/{budget_id}/raises", tags=["budgets"], summary="A budget's raises", responses=errors(404, 422))
def list_raises(
    service: ServiceDep, key: KeyDep, budget_id: Annotated[str, Path(pattern=ID_PATTERN)]
) -> list[RaiseOut]:
    budget = service.get_budget(budget_id)
    require_read(key, budget.tenant_id, kind="budget", ident=budget_id)
    return [raise_out(r) for r in service.list_raises(budget_id)]
