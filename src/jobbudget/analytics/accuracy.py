"""Forecast accuracy as it really happened: every budget period's forecast made at
its midpoint (from the data before the midpoint only) is kept, and once the period
has closed the real spend is stored beside it.  The metrics export reads these
snapshots (``error``, ``within_80``) to publish forecast accuracy.

The service runs :func:`record_forecast_snapshots` in the background every
``flush_interval``; it is idempotent, and a service that was down at the midpoint
still records the same mid-period forecast later (it uses only the stored daily
spend before the midpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from ..domain.forecasting import forecast_spend
from ..domain.money import ZERO
from ..domain.periods import window_at
from ..domain.records import ForecastSnapshot, SpendKey
from .forecasts import HISTORY_DAYS, daily_totals
from .readmodel import ReadModel

__all__ = ["SnapshotRun", "record_forecast_snapshots"]


@dataclass(frozen=True, slots=True)
class SnapshotRun:
    created: int
    closed: int


def record_forecast_snapshots(source: ReadModel) -> SnapshotRun:
    """Record the mid-period forecast of every active budget past its midpoint, and
    close the snapshots of periods that have ended with their real spend."""
    store = source.store
    now = source.now()
    created = 0
    for budget in source.list_budgets():
        window = window_at(budget.period, now)
        if window is None or budget.id is None:
            continue
        today = now.astimezone(budget.period.tz).date()
        midpoint = window.start_date + timedelta(days=((window.end_date - window.start_date).days + 1) // 2)
        if today < midpoint:
            continue
        latest = store.list_forecast_snapshots(budget_id=budget.id, limit=1)
        if latest and latest[0].period_start == window.start_date:
            continue  # this period's snapshot exists
        totals = daily_totals(
            source,
            tenant_id=budget.tenant_id,
            queue_name=budget.queue_name,
            start=midpoint - timedelta(days=HISTORY_DAYS),
            end=midpoint - timedelta(days=1),
        )
        spent = sum((v for d, v in totals.items() if d >= window.start_date), ZERO)
        forecast = forecast_spend(
            history=sorted(totals.items()),
            period_start=window.start_date,
            period_end=window.end_date,
            as_of=midpoint,
            budget_amount=budget.amount,
            current_spend=spent,
        )
        created += store.save_forecast_snapshot(
            ForecastSnapshot(
                budget_id=budget.id,
                period_start=window.start_date,
                period_end=window.end_date,
                as_of=midpoint,
                predicted_spend=forecast.predicted_spend,
                lower_80=forecast.lower_80,
                upper_80=forecast.upper_80,
                lower_95=forecast.lower_95,
                upper_95=forecast.upper_95,
                method=forecast.method[:100],
                created_at=now,
            )
        )
    closed = 0
    for snapshot in store.list_forecast_snapshots(closed=False):
        budget = store.get_budget(snapshot.budget_id)
        if now.astimezone(budget.period.tz).date() <= snapshot.period_end:
            continue
        key = SpendKey(snapshot.budget_id, snapshot.period_start)
        actual: Decimal = store.load_spend([key]).get(key, ZERO)
        store.close_forecast_snapshot(
            budget_id=snapshot.budget_id, period_start=snapshot.period_start, actual_spend=actual, closed_at=now
        )
        closed += 1
    return SnapshotRun(created=created, closed=closed)
