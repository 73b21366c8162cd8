"""Budget reports: what a tenant spent over a period, on which queues and resources,
day by day, against which budgets, and what to do about it.

Pure: the caller reads the daily aggregates, budget statuses and forecast and passes
``today``; :func:`build_report` only adds up.  Money stays exact ``Decimal`` and every
aggregate is the sum of its parts: the queue breakdown, the drivers, the daily series
and the component breakdown each add up to ``total_spend`` exactly.  Percentages and
utilizations are rounded, for display only.

Days are the UTC days of the daily aggregates; a period in another timezone is
reported over the UTC days that bear its dates.

``budget_amount`` is what the report compares spend with.  Budgets count when their
period has the report's type or their current window is exactly the report's dates:

* the tenant-wide budget's amount (the smallest, if several: the binding one);
* else the sum of the queue budgets' amounts (the smallest per queue), which covers
  only the budgeted queues while ``total_spend`` covers them all (``budget_basis``
  says ``"queues"``);
* else None, and ``utilization`` is None too (``budget_basis`` is ``"none"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from .cost import COMPONENTS, CostBreakdown
from .enforcement import utilization
from .errors import ValidationError
from .money import ZERO
from .periods import BudgetPeriod
from .records import DailyCost, average
from .report_advice import QueueTotals, recommendations
from .report_extras import AdjustmentLine, MemberLine, ResourceLine
from .report_integrity import IntegritySignals, integrity_advice

__all__ = [
    "BudgetLine",
    "BudgetReport",
    "CostDriver",
    "DailySpend",
    "ForecastLike",
    "QueueDay",
    "build_report",
    "component_shares",
    "lookback_start",
    "share",
]

_PERCENT = Decimal("0.01")
#: Days of history the week-over-week comparison needs before the last complete day.
TREND_DAYS = 14


class ForecastLike(Protocol):
    """What a report uses of :class:`jobbudget.domain.forecasting.Forecast` (the
    forecast of the tenant-wide budget's current period).  ``budget_utilization`` is
    a fraction (0.5 is half the budget); ``daily_projection`` the predicted spend of
    each day from ``as_of`` (the first day not fully observed) to ``period_end``;
    ``days_until_overrun`` counts from ``as_of``; ``current_spend`` is the spend
    before ``as_of`` and ``budget_amount`` the forecast budget's amount."""

    @property
    def period_end(self) -> date: ...
    @property
    def predicted_spend(self) -> Decimal: ...
    @property
    def budget_utilization(self) -> Decimal: ...
    @property
    def trend_direction(self) -> str: ...
    @property
    def days_until_overrun(self) -> int | None: ...
    @property
    def recommendation(self) -> str: ...
    @property
    def lower_80(self) -> Decimal: ...
    @property
    def upper_80(self) -> Decimal: ...
    @property
    def lower_95(self) -> Decimal: ...
    @property
    def upper_95(self) -> Decimal: ...
    @property
    def method(self) -> str: ...
    @property
    def daily_projection(self) -> Sequence[tuple[date, Decimal]]: ...
    @property
    def as_of(self) -> date: ...
    @property
    def budget_amount(self) -> Decimal: ...
    @property
    def current_spend(self) -> Decimal: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CostDriver:
    """One queue's spend over the report period.  ``percentage`` is its share of the
    total spend in percent, rounded to 0.01 (display only)."""

    queue_name: str
    total_cost: Decimal
    percentage: Decimal
    job_count: int
    avg_cost_per_job: Decimal
    breakdown: CostBreakdown


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueDay:
    """One queue on one day (only queues that ran jobs that day appear)."""

    queue_name: str
    jobs: int
    total_cost: Decimal
    breakdown: CostBreakdown


@dataclass(frozen=True, slots=True, kw_only=True)
class DailySpend:
    """One day of the report: ``total`` is the sum of ``queues`` (by queue name)."""

    date: date
    total: Decimal
    jobs: int
    queues: tuple[QueueDay, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetLine:
    """One active budget of the tenant as it stands now (its current window):
    ``action`` is allow, warn, throttle or block, or ``not in force``."""

    budget_id: str
    queue_name: str  # "" for tenant-wide
    scope: str
    period_type: str
    period_start: date | None
    period_end: date | None
    amount: Decimal
    currency: str
    spend: Decimal
    utilization: Decimal
    action: str
    #: the budget selects job labels (it counts part of the tenant's spend)
    labelled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetReport:
    """A tenant's spend over ``period`` (resolved).  ``daily`` holds every day from
    the period's start to the report day (today, or the period's end if it is over),
    zero-filled; ``queue_breakdown`` is (queue, spend) pairs, most expensive first;
    ``top_drivers`` covers every queue in the same order (renderers show the first
    five).  See the module documentation for ``budget_amount``."""

    tenant_id: str
    period: BudgetPeriod
    generated_at: datetime
    total_spend: Decimal
    total_jobs: int
    budget_amount: Decimal | None
    budget_basis: str  # "tenant", "queues" or "none"
    utilization: Decimal | None
    top_drivers: tuple[CostDriver, ...]
    queue_breakdown: tuple[tuple[str, Decimal], ...]
    component_breakdown: CostBreakdown
    daily: tuple[DailySpend, ...]
    forecast: ForecastLike | None
    recommendations: tuple[str, ...]
    budgets: tuple[BudgetLine, ...]
    #: cost by named resource (GPUs, licences...), most expensive first
    resources: tuple[ResourceLine, ...] = ()
    #: refunds, credits and debits counted in the period, apart from the jobs
    adjustments: tuple[AdjustmentLine, ...] = ()
    #: a team's or organisation's report: each tenant below it
    members: tuple[MemberLine, ...] = ()

    @property
    def adjustments_total(self) -> Decimal:
        return sum((a.amount for a in self.adjustments), ZERO)

    @property
    def net_spend(self) -> Decimal:
        """The jobs' spend plus the adjustments: what the budgets count."""
        return self.total_spend + self.adjustments_total

    @property
    def currency(self) -> str:
        """The currency of the compared budgets (costs are priced in it too)."""
        return self.budgets[0].currency if self.budgets else "USD"

    @property
    def period_days(self) -> int:
        assert self.period.start_date is not None and self.period.end_date is not None
        return (self.period.end_date - self.period.start_date).days + 1


def share(part: Decimal, whole: Decimal) -> Decimal:
    """``part`` as a percentage of ``whole``, rounded to 0.01 (0 when ``whole`` is 0)."""
    return (part * 100 / whole).quantize(_PERCENT) if whole else ZERO


def component_shares(breakdown: CostBreakdown) -> tuple[tuple[str, Decimal, Decimal], ...]:
    """(component, cost, percentage of the total) for each cost component (named
    resources only when some were used)."""
    total = breakdown.total
    return tuple(
        (name, getattr(breakdown, name), share(getattr(breakdown, name), total))
        for name in COMPONENTS
        if name != "resource_cost" or breakdown.resource_cost
    )


def lookback_start(period: BudgetPeriod, today: date) -> date:
    """The first day to read so that the week-over-week comparison has its 14 days
    even early in a period (the report's totals start at the period's start)."""
    assert period.start_date is not None and period.end_date is not None
    last = min(period.end_date, today)
    return min(period.start_date, last - timedelta(days=TREND_DAYS))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _budget_amount(period: BudgetPeriod, lines: Sequence[BudgetLine]) -> tuple[Decimal | None, str]:
    dates = (period.start_date, period.end_date)
    relevant = [
        b for b in lines if (b.period_type == period.type or (b.period_start, b.period_end) == dates) and not b.labelled
    ]  # a budget that selects labels counts part of the spend: not what the report compares
    tenant_wide = [b.amount for b in relevant if not b.queue_name]
    if tenant_wide:
        return min(tenant_wide), "tenant"
    per_queue: dict[str, Decimal] = {}
    for b in relevant:
        per_queue[b.queue_name] = min(per_queue.get(b.queue_name, b.amount), b.amount)
    if per_queue:
        return sum(per_queue.values(), ZERO), "queues"
    return None, "none"


def build_report(
    *,
    tenant_id: str,
    period: BudgetPeriod,
    daily_costs: Iterable[DailyCost],
    budgets: Iterable[BudgetLine],
    forecast: ForecastLike | None,
    today: date,
    generated_at: datetime | None = None,
    signals: IntegritySignals | None = None,
) -> BudgetReport:
    """Add up ``daily_costs`` (the tenant's daily aggregates; rows of other tenants
    are ignored, rows before the period feed only the week-over-week comparison)
    into a report.  ``period`` must be resolved (both dates set); ``generated_at``
    defaults to the start of ``today`` (UTC).  ``signals``: platform figures that
    make under-reported usage visible (see :mod:`.report_integrity`)."""
    start, end = period.start_date, period.end_date
    if start is None or end is None:
        raise ValidationError("period", period, "must have start_date and end_date (resolve_period first)")
    rows = [r for r in daily_costs if r.tenant_id == tenant_id and r.date <= end]
    in_period = [r for r in rows if r.date >= start]
    last_data = max((r.date for r in in_period), default=today)
    last_day = min(end, max(today, last_data))

    by_day: dict[date, list[QueueDay]] = {}
    queues: dict[str, QueueTotals] = {}
    for r in in_period:
        by_day.setdefault(r.date, []).append(
            QueueDay(queue_name=r.queue_name, jobs=r.total_jobs, total_cost=r.total_cost, breakdown=r.breakdown)
        )
        q = queues.get(r.queue_name)
        queues[r.queue_name] = QueueTotals(
            jobs=r.total_jobs + (q.jobs if q else 0),
            cost=r.total_cost + (q.cost if q else ZERO),
            breakdown=r.breakdown + q.breakdown if q else r.breakdown,
        )
    daily = []
    for day in _days(start, last_day) if last_day >= start else []:
        cells = tuple(sorted(by_day.get(day, ()), key=lambda c: c.queue_name))
        total = sum((c.total_cost for c in cells), ZERO)
        daily.append(DailySpend(date=day, total=total, jobs=sum(c.jobs for c in cells), queues=cells))

    total_spend = sum((q.cost for q in queues.values()), ZERO)
    ordered = sorted(queues.items(), key=lambda kv: (-kv[1].cost, kv[0]))
    drivers = tuple(
        CostDriver(
            queue_name=name,
            total_cost=q.cost,
            percentage=share(q.cost, total_spend),
            job_count=q.jobs,
            avg_cost_per_job=average(q.cost, q.jobs),
            breakdown=q.breakdown,
        )
        for name, q in ordered
    )
    components = CostBreakdown()
    for _, q in ordered:
        components = components + q.breakdown
    lines = tuple(budgets)
    amount, basis = _budget_amount(period, lines)
    advice = recommendations(
        rows=rows,
        in_period=in_period,
        queues=dict(ordered),
        total_spend=total_spend,
        last_day=last_day,
        today=today,
        forecast=forecast,
    )
    if signals is not None:
        jobs = sum(q.jobs for q in queues.values())
        advice += tuple(integrity_advice(signals=signals, total=total_spend, jobs=jobs, components=components))
    return BudgetReport(
        tenant_id=tenant_id,
        period=period,
        generated_at=generated_at or datetime.combine(today, time(0), tzinfo=UTC),
        total_spend=total_spend,
        total_jobs=sum(q.jobs for q in queues.values()),
        budget_amount=amount,
        budget_basis=basis,
        utilization=utilization(total_spend, amount) if amount else None,
        top_drivers=drivers,
        queue_breakdown=tuple((name, q.cost) for name, q in ordered),
        component_breakdown=components,
        daily=tuple(daily),
        forecast=forecast,
        recommendations=advice,
        budgets=lines,
    )
