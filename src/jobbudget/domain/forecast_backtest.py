"""How good would the forecast have been on this history?  (pure)

:func:`backtest` replays the forecast on a daily series: for every calendar month
the history fully covers, it cuts the month on the 5th, 10th, 15th, 20th and 25th,
forecasts the month's total from the days before the cut only, and compares with
what really happened — next to the naive run rate (spend so far + mean of the last
7 days × days left) as a baseline.  The service runs it on a tenant's own history;
``benchmarks/backtest_forecast.py`` runs it on public series.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from .errors import ValidationError
from .forecast_model import WINDOW_DAYS
from .forecasting import forecast_spend
from .money import ZERO

__all__ = ["CUT_DAYS", "BacktestPoint", "BacktestResult", "backtest"]

CUT_DAYS = (5, 10, 15, 20, 25)


@dataclass(frozen=True, slots=True)
class BacktestPoint:
    """One forecast made on ``as_of`` for the month ending ``period_end``."""

    as_of: date
    period_end: date
    actual: Decimal
    predicted: Decimal
    run_rate: Decimal
    lower_80: Decimal
    upper_80: Decimal
    lower_95: Decimal
    upper_95: Decimal
    method: str

    @property
    def error(self) -> float:
        """|predicted − actual| / actual (the actual is never 0 here)."""
        return float(abs(self.predicted - self.actual) / self.actual)

    @property
    def run_rate_error(self) -> float:
        return float(abs(self.run_rate - self.actual) / self.actual)


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Accuracy over ``forecasts`` forecasts (months with no spend are left out: a
    percentage error of nothing is undefined).  Shares and MAPEs are fractions
    (0.12 = 12 %); all are 0 when there was nothing to forecast."""

    forecasts: int
    months: int
    mape: float
    run_rate_mape: float
    within_10: float
    run_rate_within_10: float
    coverage_80: float
    coverage_95: float
    points: tuple[BacktestPoint, ...]


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def backtest(
    history: Sequence[tuple[date, Decimal]],
    *,
    cut_days: Sequence[int] = CUT_DAYS,
    require_every_day: bool = False,
) -> BacktestResult:
    """Backtest :func:`forecast_spend` on ``history`` (daily ``(date, amount)``;
    absent days are 0 and repeated dates are added up).

    A month counts when it lies between the first and last date of the history; with
    ``require_every_day`` also only when every one of its days is present (for series
    where an absent day means missing data rather than no spend).
    """
    for cut in cut_days:
        if not 2 <= cut <= 28:
            raise ValidationError("cut_days", cut, "must be days of the month from 2 to 28")
    totals: dict[date, Decimal] = {}
    for day, amount in history:
        totals[day] = totals.get(day, ZERO) + amount
    if not totals:
        return BacktestResult(0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ())
    ordered = sorted(totals.items())
    first, last = ordered[0][0], ordered[-1][0]
    points: list[BacktestPoint] = []
    months = 0
    month = first.replace(day=1)
    while month <= last:
        end = _month_end(month)
        if month >= first and end <= last:
            days = [month + timedelta(days=i) for i in range(end.day)]
            if not require_every_day or all(d in totals for d in days):
                actual = sum((totals.get(d, ZERO) for d in days), ZERO)
                if actual > 0:
                    months += 1
                    points.extend(_forecasts(ordered, totals, month, end, actual, cut_days))
        month = end + timedelta(days=1)
    return _summarise(points, months)


def _forecasts(
    ordered: list[tuple[date, Decimal]],
    totals: dict[date, Decimal],
    month: date,
    end: date,
    actual: Decimal,
    cut_days: Sequence[int],
) -> list[BacktestPoint]:
    out: list[BacktestPoint] = []
    dates = [d for d, _ in ordered]
    first = dates[0]
    for cut in cut_days:
        as_of = month.replace(day=cut)
        # The model reads the last WINDOW_DAYS days only: pass just those (a zero on
        # the window's first day keeps the history's length the same).
        window = as_of - timedelta(days=WINDOW_DAYS)
        before = ordered[bisect.bisect_left(dates, window) : bisect.bisect_left(dates, as_of)]
        if first < window and (not before or before[0][0] != window):
            before.insert(0, (window, ZERO))
        spent = sum((totals.get(month + timedelta(days=i), ZERO) for i in range(cut - 1)), ZERO)
        seen = min(7, (as_of - first).days)
        last7 = sum((totals.get(as_of - timedelta(days=i), ZERO) for i in range(1, seen + 1)), ZERO)
        left = (end - as_of).days + 1
        forecast = forecast_spend(
            history=before,
            period_start=month,
            period_end=end,
            as_of=as_of,
            budget_amount=Decimal(1),  # does not affect the numbers compared
            current_spend=spent,
        )
        out.append(
            BacktestPoint(
                as_of=as_of,
                period_end=end,
                actual=actual,
                predicted=forecast.predicted_spend,
                run_rate=spent + (last7 / seen * left if seen else ZERO),
                lower_80=forecast.lower_80,
                upper_80=forecast.upper_80,
                lower_95=forecast.lower_95,
                upper_95=forecast.upper_95,
                method=forecast.method,
            )
        )
    return out


def _summarise(points: list[BacktestPoint], months: int) -> BacktestResult:
    if not points:
        return BacktestResult(0, months, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ())
    n = len(points)
    return BacktestResult(
        forecasts=n,
        months=months,
        mape=sum(p.error for p in points) / n,
        run_rate_mape=sum(p.run_rate_error for p in points) / n,
        within_10=sum(p.error <= 0.1 for p in points) / n,
        run_rate_within_10=sum(p.run_rate_error <= 0.1 for p in points) / n,
        coverage_80=sum(p.lower_80 <= p.actual <= p.upper_80 for p in points) / n,
        coverage_95=sum(p.lower_95 <= p.actual <= p.upper_95 for p in points) / n,
        points=tuple(points),
    )
