"""Request and response bodies of the platform routes (:mod:`.routes_platform`): the
organisation tree, refunds and corrections, temporary raises."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field

from ..domain.validation import MAX_TENANT_LEN
from .schemas import Labels, Money, QueueId, TenantId, Text, _In

__all__ = [
    "AdjustmentIn",
    "AdjustmentOut",
    "ParentIn",
    "RaiseIn",
    "RaiseOut",
    "RefundIn",
    "TreeNodeOut",
    "TreeOut",
]


class TreeNodeOut(BaseModel):
    node: str
    parent: str


class TreeOut(BaseModel):
    """The organisation tree: each node that has a parent (roots are not listed)."""

    nodes: list[TreeNodeOut]


class ParentIn(_In):
    parent: Annotated[Text, Field(max_length=MAX_TENANT_LEN, description='The new parent; "" makes the node a root.')]


class RefundIn(_In):
    reason: Annotated[Text, Field(min_length=1, max_length=500)]


class AdjustmentIn(_In):
    """A correction: a credit (negative amount) or a debit (positive)."""

    tenant_id: TenantId
    amount: Money
    reason: Annotated[Text, Field(min_length=1, max_length=500)]
    queue_name: QueueId = ""
    at: AwareDatetime | None = Field(None, description="The instant it counts at (default: now).")
    labels: Labels = Field(default_factory=dict)


class AdjustmentOut(BaseModel):
    id: str
    kind: str
    tenant_id: str
    queue_name: str
    job_id: str
    occurred_at: datetime
    day: date
    amount: Money
    reason: str
    actor: str
    at: datetime
    budget_ids: list[str]


class RaiseIn(_In):
    amount: Money
    expires_at: AwareDatetime
    approver: Annotated[Text, Field(min_length=1, max_length=500)]
    reason: Annotated[Text, Field(min_length=1, max_length=500)]
    starts_at: AwareDatetime | None = None


class RaiseOut(BaseModel):
    id: str
    budget_id: str
    amount: Money
    starts_at: datetime
    expires_at: datetime
    approver: str
    reason: str
    created_at: datetime
    created_by: str
