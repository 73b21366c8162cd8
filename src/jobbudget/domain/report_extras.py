"""What a report shows beyond jobs by queue: cost by named resource (GPUs...),
adjustments (refunds, credits, debits) apart from the jobs, and, for a team or an
organisation, each member's spend.  Jobs and adjustments each add up; together
they are the net spend the budgets count."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .adjustments import Adjustment
from .money import ZERO

__all__ = ["AdjustmentLine", "MemberLine", "ResourceLine", "adjustment_lines", "resource_lines"]

_PERCENT = Decimal("0.01")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceLine:
    """A named resource over the period: the quantity used (its unit: GPU-seconds,
    kWh...), its cost and its share of the jobs' total (percent, display only)."""

    name: str
    quantity: Decimal
    cost: Decimal
    percentage: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustmentLine:
    day: date
    kind: str
    tenant_id: str
    queue_name: str
    job_id: str
    amount: Decimal
    reason: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLine:
    """A tenant below a team's or organisation's node, and its jobs' spend."""

    tenant_id: str
    total_cost: Decimal
    jobs: int


def resource_lines(totals: Iterable[tuple[str, Decimal, Decimal]], total: Decimal) -> tuple[ResourceLine, ...]:
    """(name, quantity, cost) totals as lines, most expensive first."""
    lines = [
        ResourceLine(
            name=name,
            quantity=quantity,
            cost=cost,
            percentage=(cost * 100 / total).quantize(_PERCENT) if total else ZERO,
        )
        for name, quantity, cost in totals
    ]
    return tuple(sorted(lines, key=lambda r: (-r.cost, r.name)))


def adjustment_lines(items: Iterable[Adjustment]) -> tuple[AdjustmentLine, ...]:
    return tuple(
        AdjustmentLine(
            day=a.day,
            kind=a.kind,
            tenant_id=a.tenant_id,
            queue_name=a.queue_name,
            job_id=a.job_id,
            amount=a.amount,
            reason=a.reason,
            actor=a.actor,
        )
        for a in sorted(items, key=lambda a: (a.day, a.at, a.id))
    )
