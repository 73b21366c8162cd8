"""Records that cross the storage boundary: stored jobs, daily aggregates, audit
entries and cost-model versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .alerts import AlertEvent
from .cost import CostBreakdown, CostModel, JobCost, JobMetrics
from .money import ZERO, round_money

__all__ = [
    "AuditEntry",
    "Reservation",
    "CostModelVersion",
    "DailyCost",
    "ForecastSnapshot",
    "JobRecord",
    "PruneResult",
    "RecordResult",
    "SpendKey",
    "nearest_rank_p95",
]


@dataclass(frozen=True, slots=True)
class SpendKey:
    """One period of one budget: where a job's cost is added up."""

    budget_id: str
    period_start: date


@dataclass(frozen=True, slots=True)
class Reservation:
    """``amount`` held against every budget period of ``keys`` until ``expires_at``."""

    id: str
    tenant_id: str
    keys: tuple[SpendKey, ...]
    amount: Decimal
    expires_at: datetime
    #: the node (tenant, team, organisation) of each key's budget, where the shared
    #: state keeps that budget's counters; empty: ``tenant_id`` for every key
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A priced job ready to store, with the budget periods it counts toward."""

    metrics: JobMetrics
    cost: JobCost
    timestamp: datetime
    day: date  # UTC date of ``timestamp``
    spend_keys: tuple[SpendKey, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordResult:
    """``inserted[i]`` tells whether record *i* was new; ``existing`` holds the stored
    cost of each duplicate, keyed by (tenant_id, job_id)."""

    inserted: list[bool]
    existing: dict[tuple[str, str], JobCost] = field(default_factory=dict)
    #: alert events this batch fired (new ones only) and every (budget, type, period)
    #: it found fired, new or not
    alerts: tuple[AlertEvent, ...] = ()
    fired: frozenset[tuple[str, str, date]] = frozenset()


@dataclass(frozen=True, slots=True)
class DailyCost:
    """Spend of one tenant's queue on one UTC day.  Components add up to ``total_cost``;
    ``p95_job_cost`` is the exact nearest-rank 95th percentile of that day's jobs."""

    tenant_id: str
    queue_name: str
    date: date
    total_jobs: int
    total_cost: Decimal
    breakdown: CostBreakdown
    avg_job_cost: Decimal
    max_job_cost: Decimal
    min_job_cost: Decimal
    p95_job_cost: Decimal


@dataclass(frozen=True, slots=True)
class CostModelVersion:
    version: int
    model: CostModel
    created_at: datetime
    created_by: str = "system"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Something worth a permanent trace: a bypass, a budget change, a new cost model."""

    at: datetime
    kind: str
    tenant_id: str = ""
    queue_name: str = ""
    budget_id: str = ""
    actor: str = "system"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ForecastSnapshot:
    """A budget period's forecast made at its midpoint (from data before ``as_of``
    only) and, once the period has closed, what was really spent."""

    budget_id: str
    period_start: date
    period_end: date
    as_of: date
    predicted_spend: Decimal
    lower_80: Decimal
    upper_80: Decimal
    lower_95: Decimal
    upper_95: Decimal
    method: str
    created_at: datetime
    actual_spend: Decimal | None = None
    closed_at: datetime | None = None

    @property
    def error(self) -> Decimal | None:
        """(predicted − actual) / actual once closed (0 when both are 0; None when the
        period is open or nothing was spent but something was forecast)."""
        if self.actual_spend is None:
            return None
        if self.actual_spend == 0:
            return ZERO if self.predicted_spend == 0 else None
        return (self.predicted_spend - self.actual_spend) / self.actual_spend

    @property
    def within_80(self) -> bool | None:
        if self.actual_spend is None:
            return None
        return self.lower_80 <= self.actual_spend <= self.upper_80


@dataclass(frozen=True, slots=True)
class PruneResult:
    jobs_deleted: int
    daily_rows_deleted: int


def nearest_rank_p95(costs: Sequence[Decimal]) -> Decimal:
    """The nearest-rank 95th percentile: the smallest cost that at least 95 % of the
    costs are less than or equal to (an observed value, never interpolated)."""
    if not costs:
        return ZERO
    ordered = sorted(costs)
    return ordered[p95_rank(len(ordered)) - 1]


def p95_rank(count: int) -> int:
    """1-based nearest rank of the 95th percentile among ``count`` values."""
    return (95 * count + 99) // 100


def average(total: Decimal, count: int) -> Decimal:
    return round_money(total / count) if count else ZERO
