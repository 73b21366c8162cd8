"""Dashboard use cases (called by :meth:`BudgetService.dashboard` and
:meth:`BudgetService.budget_trends`): read the numbers, let the domain build the view."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ..domain.dashboard import BudgetTrends, BudgetView, Dashboard, build_drivers, build_trends, status_of
from ..domain.errors import NotFoundError, ValidationError
from ..domain.forecasting import Forecast
from ..domain.report_extras import resource_lines
from ..domain.validation import MAX_TENANT_LEN, check_identifier
from .readmodel import ReadModel, subtree_days

__all__ = ["MAX_TREND_DAYS", "budget_trends", "dashboard"]

MAX_TREND_DAYS = 366
MAX_DRIVERS = 100


def dashboard(source: ReadModel, *, tenant_id: str | None, top: int) -> Dashboard:
    """Every budget (all tenants when ``tenant_id`` is None, inactive ones included)
    with its status now, and the top drivers of the current UTC month."""
    if tenant_id is not None:
        check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_DRIVERS:
        raise ValidationError("top", top, f"must be a whole number from 0 to {MAX_DRIVERS}")
    now = source.now()
    views = []
    for budget in source.list_budgets(tenant_id, include_inactive=True):
        assert budget.id is not None
        status = source.get_budget_status(budget.id)
        views.append(
            BudgetView(
                budget=status.budget.redacted(),
                spend=status.current_spend,
                utilization=status.utilization,
                status=status_of(
                    action_type=status.action.type, active=budget.active, in_force=status.period_start is not None
                ),
                period_start=status.period_start,
                period_end=status.period_end,
                message=status.action.message,
                amount=status.amount,
            )
        )
    today = now.date()
    since = today.replace(day=1)
    rows = source.get_daily_costs(tenant_id, start=since, end=today, exact_stats=False)
    drivers, total, jobs = build_drivers(rows, top=top)
    active = source.list_alerts(tenant_id, active_only=True, limit=5000)
    return Dashboard(
        generated_at=now,
        budgets=tuple(views),
        drivers=drivers,
        since=since,
        until=today,
        total_spend=total,
        total_jobs=jobs,
        active_alerts=len(active),
    )


def budget_trends(source: ReadModel, *, budget_id: str, days: int) -> BudgetTrends:
    """The last ``days`` UTC days (today included) of the budget's scope."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TREND_DAYS:
        raise ValidationError("days", days, f"must be a whole number from 1 to {MAX_TREND_DAYS}")
    status = source.get_budget_status(budget_id)
    budget = status.budget
    end = source.now().date()
    start = end - timedelta(days=days - 1)
    members = source.tenant_tree().subtree(budget.tenant_id)
    queue = budget.queue_name or None
    rows = subtree_days(source, members, node=budget.tenant_id, start=start, end=end, queue_name=queue)
    resources = source.store.resource_totals(tenant_ids=members, start=start, end=end, queue_name=queue)
    forecast: Forecast | None = None
    if budget.active and status.period_start is not None and len(members) == 1:
        try:
            forecast = source.get_forecast(budget.tenant_id, budget.queue_name)
        except NotFoundError:
            forecast = None
    period = (status.period_start, status.period_end) if status.period_start and status.period_end else None
    trends = build_trends(budget=budget.redacted(), rows=rows, start=start, end=end, period=period, forecast=forecast)
    return replace(trends, resources=resource_lines(resources, trends.total))
