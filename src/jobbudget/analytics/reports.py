"""The report use case: read the daily aggregates, the budgets and the forecast, then
let :func:`jobbudget.domain.reporting.build_report` add them up.

Cheap by design: one read of the daily aggregates (``exact_stats=False``: one row per
queue and UTC day, never the jobs), the tenant's budgets from the in-memory state,
and the forecast only when the report is about the current period.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from ..domain.budget_status import BudgetStatus
from ..domain.enforcement import utilization
from ..domain.errors import NotFoundError, ValidationError
from ..domain.money import ZERO
from ..domain.periods import BudgetPeriod, first_window, resolve_period
from ..domain.records import DailyCost
from ..domain.report_extras import MemberLine, adjustment_lines, resource_lines
from ..domain.report_integrity import IntegritySignals, cost_per_cpu_hour
from ..domain.reporting import BudgetLine, BudgetReport, ForecastLike, build_report, lookback_start
from ..domain.validation import MAX_TENANT_LEN, check_identifier
from .calibration import latest_calibration
from .readmodel import ReadModel, subtree_days

__all__ = ["budget_line", "generate_report"]


def budget_line(status: BudgetStatus) -> BudgetLine:
    """A budget status as a report row."""
    b = status.budget
    return BudgetLine(
        budget_id=str(b.id),
        queue_name=b.queue_name,
        scope=b.queue_scope,
        labelled=bool(b.labels),
        period_type=b.period.type,
        period_start=status.period_start,
        period_end=status.period_end,
        amount=status.amount,
        currency=b.currency,
        spend=status.current_spend,
        utilization=status.utilization,
        action=status.action.type if status.period_start is not None else "not in force",
    )


def generate_report(source: ReadModel, *, tenant_id: str, period: BudgetPeriod) -> BudgetReport:
    """The tenant's report over ``period`` (missing dates: the calendar period of its
    type containing now).  Raises :class:`NotFoundError` for a tenant that has never
    had a job or a budget."""
    check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
    if not isinstance(period, BudgetPeriod):
        raise ValidationError("period", period, "must be a BudgetPeriod")
    now = source.now()
    resolved = resolve_period(period, now)
    assert resolved.start_date is not None and resolved.end_date is not None
    today = now.date()  # UTC, like the daily aggregates
    members = source.tenant_tree().subtree(tenant_id)
    first = lookback_start(resolved, today)
    days = subtree_days(source, members, node=tenant_id, start=first, end=resolved.end_date)
    rows = days
    if len(members) > 1:  # a team or an organisation: its tenants' queues as tenant/queue
        rows = [replace(r, tenant_id=tenant_id, queue_name=f"{r.tenant_id}/{r.queue_name}") for r in days]
    budgets = source.list_budgets(tenant_id)
    if not rows and not budgets and len(members) == 1 and not _ever_seen(source, tenant_id):
        raise NotFoundError("tenant", tenant_id)
    lines = [budget_line(source.get_budget_status(str(b.id))) for b in budgets]
    forecast: ForecastLike | None = None
    if any(not b.queue_name for b in budgets) and first_window(resolved).contains(now):
        try:
            forecast = source.get_forecast(tenant_id)
        except NotFoundError:
            forecast = None
    report = build_report(
        tenant_id=tenant_id,
        period=resolved,
        daily_costs=rows,
        budgets=lines,
        forecast=forecast,
        today=today,
        generated_at=now,
        signals=integrity_signals(source, tenant_id=tenant_id, start=resolved.start_date, end=resolved.end_date),
    )
    start, end = resolved.start_date, resolved.end_date
    resources = source.store.resource_totals(tenant_ids=members, start=start, end=end)
    report = replace(
        report,
        resources=resource_lines(resources, report.total_spend),
        adjustments=adjustment_lines(source.list_adjustments(tenant_id, start=start, end=end)),
        members=_members(days, tenant_id, members, start, end) if len(members) > 1 else (),
    )
    if report.adjustments and report.budget_amount:  # measured as the budgets measure: net of corrections
        report = replace(report, utilization=utilization(report.net_spend, report.budget_amount))
    return report


def _members(
    rows: list[DailyCost], node: str, members: frozenset[str], start: date, end: date
) -> tuple[MemberLine, ...]:
    """Each tenant's spend in the period."""
    totals: dict[str, tuple[Decimal, int]] = {m: (ZERO, 0) for m in members if m != node}
    for r in rows:
        if start <= r.date <= end:
            cost, jobs = totals.get(r.tenant_id, (ZERO, 0))
            totals[r.tenant_id] = (cost + r.total_cost, jobs + r.total_jobs)
    lines = [MemberLine(tenant_id=t, total_cost=c, jobs=j) for t, (c, j) in totals.items()]
    return tuple(sorted(lines, key=lambda m: (-m.total_cost, m.tenant_id)))


def integrity_signals(source: ReadModel, *, tenant_id: str, start: date, end: date) -> IntegritySignals:
    """What the tenant's usage is compared with: the other tenants' spend per
    CPU-hour over the same days (one read of the daily aggregates, no names kept),
    and the drift of the latest calibration if it was not applied."""
    model = source.get_cost_model()
    price = model.cpu_time_weight * model.environment_multiplier
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for r in source.get_daily_costs(None, start=start, end=end, exact_stats=False):
        if r.tenant_id != tenant_id:
            total, cpu = totals.get(r.tenant_id, (ZERO, ZERO))
            totals[r.tenant_id] = (total + r.total_cost, cpu + r.breakdown.cpu_cost)
    peers = tuple(p for total, cpu in totals.values() if (p := cost_per_cpu_hour(total, cpu, price)) is not None)
    record = latest_calibration(source.store)
    stale = record is not None and not record.applied and record.cost_model_version == source.get_cost_model_version()
    return IntegritySignals(
        peer_cost_per_cpu_hour=peers,
        cpu_second_price=price,
        calibration_drift=record.drift if stale and record is not None else None,
        calibration_date=record.at.date() if stale and record is not None else None,
    )


def _ever_seen(source: ReadModel, tenant_id: str) -> bool:
    """Whether the tenant has any budget (even inactive) or any daily row: only asked
    when the report's own reads found nothing."""
    if source.list_budgets(tenant_id, include_inactive=True):
        return True
    return bool(source.get_daily_costs(tenant_id, start=date(1, 1, 1), end=date(9999, 12, 31), exact_stats=False))
