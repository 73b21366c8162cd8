"""Forecast use cases: the current period of a budget, and the forecast's accuracy on
a tenant's own history (called by :meth:`BudgetService.get_forecast` and
:meth:`BudgetService.forecast_accuracy`).

Days are UTC days (the daily aggregates are kept per UTC day) while a budget's
period and "today" are local dates in its timezone.  For a non-UTC budget the
history is therefore shifted by the zone's offset, and today's partial spend is
the spend of the UTC day carrying today's local date: an approximation of at most
a few hours of spend at each end, which moves the forecast far less than its
interval.  The period's spend itself (``get_budget_status``) is exact.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from ..domain.budget import Budget
from ..domain.budget_status import BudgetStatus
from ..domain.errors import NotFoundError
from ..domain.forecast_backtest import BacktestResult, backtest
from ..domain.forecasting import Forecast, forecast_spend
from ..domain.money import ZERO
from ..domain.validation import MAX_QUEUE_LEN, MAX_TENANT_LEN, check_identifier
from .readmodel import ReadModel

__all__ = ["ACCURACY_DAYS", "HISTORY_DAYS", "forecast_accuracy", "get_forecast"]

#: Days of daily history the forecast reads (the model uses at most 182).
HISTORY_DAYS = 120
#: Days of history the accuracy backtest replays.
ACCURACY_DAYS = 365


def daily_totals(source: ReadModel, *, tenant_id: str, queue_name: str, start: date, end: date) -> dict[date, Decimal]:
    """Spend per UTC day of the scope (summed over queues when ``queue_name`` is "")."""
    rows = source.get_daily_costs(tenant_id, queue_name=queue_name or None, start=start, end=end, exact_stats=False)
    totals: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        totals[row.date] += row.total_cost
    return dict(totals)


def _budget_in_force(source: ReadModel, tenant_id: str, queue_name: str) -> tuple[Budget, BudgetStatus]:
    """The active budget of exactly this scope that has a period now."""
    for budget in source.list_budgets(tenant_id):
        if budget.queue_name == queue_name and budget.active and budget.id is not None:
            status = source.get_budget_status(budget.id)
            if status.period_start is not None:
                return budget, status
    others = sorted(f"{b.tenant_id}/{b.queue_name}" if b.queue_name else f"{b.tenant_id} (all queues)"
                    for b in source.list_budgets(tenant_id) if b.active)  # fmt: skip
    scope = f"{tenant_id}/{queue_name}" if queue_name else tenant_id
    hint = "" if queue_name else "no budget covers all its queues; "
    hint += f"budgets of {tenant_id}: {', '.join(others)}" if others else f"{tenant_id} has no active budget"
    raise NotFoundError("budget", scope, hint)


def get_forecast(source: ReadModel, *, tenant_id: str, queue_name: str = "") -> Forecast:
    """Forecast the current period of the active budget of ``tenant_id`` / ``queue_name``
    (tenant-wide: ``""``); :class:`NotFoundError` (``BUDGET_NOT_FOUND``) without one."""
    check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
    check_identifier("queue_name", queue_name, max_len=MAX_QUEUE_LEN, allow_empty=True)
    budget, status = _budget_in_force(source, tenant_id, queue_name)
    start, end = status.period_start, status.period_end
    assert start is not None and end is not None  # a budget in force has a window
    local = source.now().astimezone(budget.period.tz)
    today = local.date()  # within start..end: the window holds now
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    totals = daily_totals(
        source, tenant_id=tenant_id, queue_name=queue_name, start=today - timedelta(days=HISTORY_DAYS), end=today
    )
    observed_today = totals.pop(today, ZERO)
    # Spend of the period before today; today's partial spend goes to the model
    # separately (its projection of today is never below it).
    return forecast_spend(
        history=sorted(totals.items()),
        period_start=start,
        period_end=end,
        as_of=today,
        budget_amount=budget.amount,
        current_spend=max(status.current_spend - observed_today, ZERO),
        observed_today=observed_today,
        day_elapsed=min((local - midnight).total_seconds() / 86400, 1.0),
    )


def forecast_accuracy(source: ReadModel, *, tenant_id: str, queue_name: str = "") -> BacktestResult:
    """Backtest the forecast on the scope's own daily spend of the last year: each
    fully covered calendar month, forecast on the 5th, 10th, 15th, 20th and 25th."""
    check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
    check_identifier("queue_name", queue_name, max_len=MAX_QUEUE_LEN, allow_empty=True)
    today = source.now().date()
    totals = daily_totals(
        source,
        tenant_id=tenant_id,
        queue_name=queue_name,
        start=today - timedelta(days=ACCURACY_DAYS),
        end=today - timedelta(days=1),
    )
    totals.setdefault(today - timedelta(days=1), ZERO)  # the history runs up to yesterday
    return backtest(sorted(totals.items()))
