"""Forecast a budget period's spend from daily history (pure: no clock, no I/O).

:func:`forecast_spend` projects every remaining day of the period with learned
day-of-week factors and a robust level of recent days (the model and the evidence
for it: :mod:`jobbudget.domain.forecast_model`), adds the projection to what was
already spent, and says what to do about it.  Money goes in and out as ``Decimal``
(nano-dollars); the statistics run on floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from .enforcement import utilization as budget_utilization
from .errors import ValidationError
from .forecast_model import Array, Projection, project
from .money import ZERO, round_money

__all__ = ["TREND_T", "Forecast", "daily_array", "forecast_spend"]

#: |t| of the day-to-day slope (last 4 weeks, autocorrelation-corrected) above which
#: the trend is called increasing or decreasing: about 95 % two-sided.
TREND_T = 2.0


@dataclass(frozen=True, slots=True)
class Forecast:
    """Where the period's spend is heading.

    ``predicted_spend`` = ``current_spend`` + the projection of days ``as_of`` ..
    ``period_end``; the ``lower_*``/``upper_*`` bounds are prediction intervals of
    that total (never below ``current_spend``).  ``days_until_overrun`` counts days
    from ``as_of`` (0: ``as_of`` itself, or already over) to the first projected day
    on which spend exceeds ``budget_amount``; None when no overrun is projected in
    the period.  ``day_of_week_factors`` are Monday..Sunday, mean 1.
    """

    period_end: date
    predicted_spend: Decimal
    budget_utilization: Decimal
    trend_direction: str
    days_until_overrun: int | None
    recommendation: str
    lower_80: Decimal
    upper_80: Decimal
    lower_95: Decimal
    upper_95: Decimal
    method: str
    day_of_week_factors: tuple[float, ...]
    daily_projection: tuple[tuple[date, Decimal], ...]
    as_of: date
    budget_amount: Decimal
    current_spend: Decimal


def daily_array(history: Iterable[tuple[date, Decimal]], *, before: date) -> tuple[Array, date | None]:
    """Dense daily floats from the earliest date in ``history`` to ``before`` (exclusive);
    absent days are 0 and repeated dates are added up.  Also returns the first date."""
    totals: dict[date, Decimal] = {}
    for day, amount in history:
        if not isinstance(day, date):
            raise ValidationError("history", day, "dates must be datetime.date")
        if day >= before:
            raise ValidationError("history", day.isoformat(), f"must hold days before as_of {before}")
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
            raise ValidationError("history", str(amount), "daily spend must be a non-negative Decimal")
        totals[day] = totals.get(day, ZERO) + amount
    if not totals:
        return np.zeros(0), None
    first = min(totals)
    values = np.zeros((before - first).days)
    for day, amount in totals.items():
        values[(day - first).days] = float(amount)
    return values, first


def _money(value: float) -> Decimal:
    return round_money(Decimal(repr(value))) if math.isfinite(value) and value > 0 else ZERO


def forecast_spend(
    *,
    history: Sequence[tuple[date, Decimal]],
    period_start: date,
    period_end: date,
    as_of: date,
    budget_amount: Decimal,
    current_spend: Decimal,
    observed_today: Decimal = ZERO,
    day_elapsed: float = 0.0,
) -> Forecast:
    """Forecast the total spend of the period ``period_start`` .. ``period_end``
    (inclusive) seen on ``as_of``, the first day not yet fully observed.

    ``history``: daily spend ``(date, amount)`` before ``as_of`` (absent days are 0;
    its earliest date is where the history starts — fewer than 14 days of it gives a
    run-rate forecast with a wider interval).  ``current_spend``: the period's spend
    before ``as_of``.  ``observed_today``: spend already seen on ``as_of`` (a partial
    day); the projection of that day is never below it.  ``day_elapsed``: how much of
    ``as_of`` has passed (0 to 1): only the rest of the day is still to be spent, so
    at the last second of a period the forecast is what was spent.
    """
    if not 0.0 <= day_elapsed <= 1.0:
        raise ValidationError("day_elapsed", day_elapsed, "must be between 0 and 1")
    if period_end < period_start:
        raise ValidationError("period_end", period_end.isoformat(), f"must not be before {period_start}")
    if not period_start <= as_of <= period_end + timedelta(days=1):
        raise ValidationError(
            "as_of", as_of.isoformat(), f"must be within {period_start}..{period_end} (or the day after)"
        )
    for name, value in (
        ("budget_amount", budget_amount),
        ("current_spend", current_spend),
        ("observed_today", observed_today),
    ):
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValidationError(name, value, "must be a non-negative Decimal")
    values, first = daily_array(history, before=as_of)
    horizon = (period_end - as_of).days + 1
    proj = project(values, first_weekday=first.weekday() if first else 0, horizon=horizon)
    daily = [_money(v) for v in proj.daily]
    if daily and day_elapsed > 0:  # today: what was seen, and the projection of what is left
        daily[0] = round_money(daily[0] * Decimal(repr(1.0 - day_elapsed))) + observed_today
    bump = max(observed_today - daily[0], ZERO) if daily else ZERO
    if daily:
        daily[0] += bump
    rest = sum(daily, ZERO)
    predicted = round_money(current_spend + rest)
    bounds = [
        round_money(current_spend + _money(b) + bump)
        for b in (proj.lower_80, proj.upper_80, proj.lower_95, proj.upper_95)
    ]
    seen = current_spend + observed_today  # spent already: no interval goes below it
    lower_80, upper_80, lower_95, upper_95 = (
        max(min(b, predicted), seen) if i % 2 == 0 else max(b, predicted) for i, b in enumerate(bounds)
    )
    overrun = _days_until_overrun(current_spend, daily, budget_amount)
    utilization = budget_utilization(predicted, budget_amount) if budget_amount > 0 else ZERO
    return Forecast(
        period_end=period_end,
        predicted_spend=predicted,
        budget_utilization=utilization,
        trend_direction=_direction(proj),
        days_until_overrun=overrun,
        recommendation=_recommend(
            predicted=predicted,
            upper_80=upper_80,
            amount=budget_amount,
            spent=current_spend,
            rest=rest,
            days=horizon,
            overrun=None if overrun is None else as_of + timedelta(days=overrun),
        ),
        lower_80=lower_80,
        upper_80=upper_80,
        lower_95=lower_95,
        upper_95=upper_95,
        method=proj.method,
        day_of_week_factors=proj.factors,
        daily_projection=tuple((as_of + timedelta(days=i), v) for i, v in enumerate(daily)),
        as_of=as_of,
        budget_amount=budget_amount,
        current_spend=current_spend,
    )


def _direction(proj: Projection) -> str:
    if proj.trend_t > TREND_T:
        return "increasing"
    if proj.trend_t < -TREND_T:
        return "decreasing"
    return "stable"


def _days_until_overrun(spent: Decimal, daily: Sequence[Decimal], amount: Decimal) -> int | None:
    if spent > amount:
        return 0
    total = spent
    for i, value in enumerate(daily):
        total += value
        if total > amount:
            return i
    return None


def _fmt(value: Decimal) -> str:
    return f"{value:,.2f}"


def _pct(ratio: Decimal) -> str:
    return f"{ratio * 100:.0f} %"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _recommend(
    *,
    predicted: Decimal,
    upper_80: Decimal,
    amount: Decimal,
    spent: Decimal,
    rest: Decimal,
    days: int,
    overrun: date | None,
) -> str:
    """One actionable sentence or two naming the numbers."""
    if amount <= 0:
        return f"Projected {_fmt(predicted)}; set a budget amount above it (e.g. {_fmt(upper_80)}) to track it."
    share = _pct(predicted / amount)
    if spent > amount:
        return (
            f"Already over budget: {_fmt(spent)} spent of {_fmt(amount)}; at the current pace the period ends at "
            f"{_fmt(predicted)} ({share}). Pause non-essential jobs, or set the amount to {_fmt(upper_80)} "
            "(80 % upper bound) if this spend is intended."
        )
    if days <= 0:
        verdict = "within" if predicted <= amount else "over"
        return f"The period is over: {_fmt(predicted)} spent of {_fmt(amount)} ({share}), {verdict} budget."
    pace = rest / days
    if predicted > amount:
        target = (amount - spent) / days
        when = f" around {overrun.isoformat()}" if overrun else ""
        return (
            f"Projected {_fmt(predicted)} against a budget of {_fmt(amount)} ({share}), over by "
            f"{_fmt(predicted - amount)}{when}. Cut spend by {_fmt(pace - target)}/day (from {_fmt(pace)} to "
            f"{_fmt(target)}/day) for the remaining {_days(days)} to land on budget, or set the amount to "
            f"{_fmt(predicted)} ({_fmt(upper_80)}, the top of the 80 % interval, for headroom)."
        )
    allowance = (amount - spent) / days
    if upper_80 > amount:
        return (
            f"On track but at risk: projected {_fmt(predicted)} of {_fmt(amount)} ({share}); the 80 % upper bound "
            f"{_fmt(upper_80)} exceeds the budget. Keep spend under {_fmt(allowance)}/day (now {_fmt(pace)}/day) "
            f"for the remaining {_days(days)}."
        )
    return (
        f"On track: projected {_fmt(predicted)} of {_fmt(amount)} ({share}) by the end of the period; "
        f"up to {_fmt(allowance)}/day (now {_fmt(pace)}/day) keeps it within budget."
    )
