"""What an operator's screen shows: every budget with its status, the top cost drivers,
and one budget's recent trend.  Pure builders over already-read numbers (no I/O, no
clock); :mod:`jobbudget.analytics.views` reads the numbers, the TUI and the HTTP API
show the result."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, localcontext

from .budget import Budget
from .cost import CostBreakdown
from .forecasting import Forecast
from .money import ZERO, round_money
from .records import DailyCost, average
from .report_extras import ResourceLine
from .reporting import component_shares as reporting_component_shares
from .reporting import share

__all__ = [
    "BudgetTrends",
    "BudgetView",
    "COMPONENTS",
    "ComponentShare",
    "Dashboard",
    "QueueShare",
    "DriverView",
    "STATUS_LABELS",
    "build_drivers",
    "build_trends",
    "component_shares",
    "status_of",
]

#: The badge of each enforcement state, in escalating order.
STATUS_LABELS = {"allow": "OK", "warn": "Warning", "throttle": "Throttle", "block": "Block"}
#: Cost components in the order they are shown, with their labels.
COMPONENTS = (
    ("cpu_cost", "CPU"),
    ("memory_cost", "Memory"),
    ("payload_cost", "Payload"),
    ("redis_cost", "Redis"),
    ("network_cost", "Network"),
    ("base_cost", "Base"),
    ("resource_cost", "Resources"),
)
_LABELS = dict(COMPONENTS)
_SUM = Context(prec=200)  # sums of nano-dollar amounts stay exact


@dataclass(frozen=True, slots=True)
class BudgetView:
    """One budget as it stands now.  ``status`` is OK, Warning, Throttle or Block, or
    Inactive (deactivated) and Idle (no period in force now)."""

    budget: Budget
    spend: Decimal
    utilization: Decimal
    status: str
    period_start: date | None
    period_end: date | None
    message: str = ""
    #: the amount in force now (with carry-over and raises); None: ``budget.amount``
    amount: Decimal | None = None

    @property
    def amount_in_force(self) -> Decimal:
        return self.budget.amount if self.amount is None else self.amount


@dataclass(frozen=True, slots=True)
class DriverView:
    """A tenant's queue ranked by what it cost in the window."""

    tenant_id: str
    queue_name: str
    total_cost: Decimal
    job_count: int
    avg_cost: Decimal
    percentage: Decimal


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything the overview shows, read in one go (``since``..``until`` is the
    window of the drivers: the current UTC month so far)."""

    generated_at: datetime
    budgets: tuple[BudgetView, ...]
    drivers: tuple[DriverView, ...]
    since: date
    until: date
    total_spend: Decimal
    total_jobs: int
    active_alerts: int


@dataclass(frozen=True, slots=True)
class ComponentShare:
    name: str
    cost: Decimal
    percentage: Decimal


@dataclass(frozen=True, slots=True)
class QueueShare:
    """One queue's spend over a budget's trend window (``tenant/queue`` for a team's
    or organisation's budget, whose queues belong to several tenants)."""

    name: str
    cost: Decimal
    jobs: int
    percentage: Decimal


@dataclass(frozen=True, slots=True)
class BudgetTrends:
    """One budget's last ``len(daily)`` UTC days of spend (zero-filled, oldest first),
    the daily pace that would exactly spend the amount over the current period, the
    forecast of the period (None when there is not enough to forecast), and the cost
    by component over the same days."""

    budget: Budget
    daily: tuple[tuple[date, Decimal], ...]
    daily_pace: Decimal | None
    forecast: Forecast | None
    components: tuple[ComponentShare, ...]
    total: Decimal
    jobs: int
    #: cost by named resource (GPU type...) over the same days, most expensive first
    resources: tuple[ResourceLine, ...] = ()
    #: cost by queue over the same days, most expensive first (ties by name)
    queues: tuple[QueueShare, ...] = ()


def status_of(*, action_type: str, active: bool, in_force: bool) -> str:
    if not active:
        return "Inactive"
    if not in_force:
        return "Idle"
    return STATUS_LABELS.get(action_type, action_type)


def build_drivers(rows: Iterable[DailyCost], *, top: int) -> tuple[tuple[DriverView, ...], Decimal, int]:
    """The ``top`` (tenant, queue) pairs by cost, largest first (ties by name), with
    the grand total and job count of all rows."""
    totals: dict[tuple[str, str], tuple[Decimal, int]] = {}
    grand, jobs = ZERO, 0
    with localcontext(_SUM):
        for row in rows:
            key = (row.tenant_id, row.queue_name)
            cost, count = totals.get(key, (ZERO, 0))
            totals[key] = (cost + row.total_cost, count + row.total_jobs)
            grand += row.total_cost
            jobs += row.total_jobs
        ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))[: max(top, 0)]
        drivers = tuple(
            DriverView(
                tenant_id=tenant,
                queue_name=queue,
                total_cost=cost,
                job_count=count,
                avg_cost=average(cost, count),
                percentage=share(cost, grand),
            )
            for (tenant, queue), (cost, count) in ranked
        )
    return drivers, grand, jobs


def component_shares(breakdown: CostBreakdown) -> tuple[ComponentShare, ...]:
    """The report's component shares, with the labels the screens show."""
    return tuple(
        ComponentShare(name=_LABELS[name], cost=cost, percentage=pct)
        for name, cost, pct in reporting_component_shares(breakdown)
    )


def build_trends(
    *,
    budget: Budget,
    rows: Sequence[DailyCost],
    start: date,
    end: date,
    period: tuple[date, date] | None,
    forecast: Forecast | None,
) -> BudgetTrends:
    """Zero-fill ``rows`` (already limited to the budget's scope) over ``start..end``."""
    per_day: dict[date, Decimal] = {}
    per_queue: dict[str, tuple[Decimal, int]] = {}
    breakdown = CostBreakdown()
    jobs = 0
    with localcontext(_SUM):
        for row in rows:
            per_day[row.date] = per_day.get(row.date, ZERO) + row.total_cost
            breakdown = breakdown + row.breakdown
            jobs += row.total_jobs
            name = row.queue_name if row.tenant_id == budget.tenant_id else f"{row.tenant_id}/{row.queue_name}"
            cost, count = per_queue.get(name, (ZERO, 0))
            per_queue[name] = (cost + row.total_cost, count + row.total_jobs)
        days = (end - start).days + 1
        daily = tuple(
            (start + timedelta(days=i), per_day.get(start + timedelta(days=i), ZERO)) for i in range(max(days, 0))
        )
        pace = None
        if period is not None:
            length = (period[1] - period[0]).days + 1
            pace = round_money(budget.amount / length)
        total = sum((value for _, value in daily), ZERO)
        queues = tuple(
            QueueShare(name=name, cost=cost, jobs=count, percentage=share(cost, total))
            for name, (cost, count) in sorted(per_queue.items(), key=lambda item: (-item[1][0], item[0]))
        )
    return BudgetTrends(
        budget=budget,
        daily=daily,
        daily_pace=pace,
        forecast=forecast,
        components=component_shares(breakdown),
        total=total,
        jobs=jobs,
        queues=queues,
    )
