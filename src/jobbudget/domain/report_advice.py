"""The recommendations of a budget report: each rule names the numbers behind it, and
says nothing when the data does not support it.

In order of urgency:

1. **Overrun** — the forecast runs out of the tenant-wide budget on a date within its
   period (``as_of`` + ``days_until_overrun``), or it is already spent: the date, the
   forecast and its 80 % range, and the biggest cost driver.
2. **Growth** — the queue whose spend grew most in dollars, last 7 complete days
   against the 7 before, by at least :data:`GROWTH_MIN` and by at least
   :data:`MATERIAL` of the tenant's spend of the last 7 days.
3. **Under-used budget** — forecast utilization under :data:`UNDERUSED`: suggests
   the forecast's upper 80 % bound rounded up (see :func:`round_up_nicely`) when
   that is below the forecast budget's amount.
4. **Dominant component** — a component over :data:`DOMINANT` of the cost of a queue
   that makes at least :data:`MATERIAL_QUEUE` of the total (at most three queues).
5. **Cost per job outliers** — a day on which a queue's jobs cost on average at
   least :data:`OUTLIER_RATIO` times what they cost on its other days of the period
   (at least :data:`OUTLIER_MIN_JOBS` jobs that day, three days with jobs, and at
   least :data:`MATERIAL` of the total spend in excess; at most three).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

from .cost import COMPONENTS, CostBreakdown
from .money import ZERO
from .records import DailyCost

if TYPE_CHECKING:
    from .reporting import ForecastLike

__all__ = ["QueueTotals", "recommendations", "round_up_nicely"]

GROWTH_MIN = Decimal("0.25")
UNDERUSED = Decimal("0.5")
DOMINANT = Decimal("0.6")
MATERIAL = Decimal("0.01")
CENT = Decimal("0.01")
MAX_GROWTH_SHOWN = Decimal(100)  # above 10,000 % a growth is shown as "from almost nothing"
MATERIAL_QUEUE = Decimal("0.1")
OUTLIER_RATIO = Decimal(2)
OUTLIER_MIN_JOBS = 10
MAX_PER_RULE = 3
WEEK = 7

COMPONENT_LABELS = {
    "cpu_cost": "CPU",
    "memory_cost": "memory",
    "payload_cost": "payload",
    "redis_cost": "Redis",
    "network_cost": "network",
    "base_cost": "the per-job base cost",
    "resource_cost": "named resources (GPUs, licences...)",
}
_ADVICE = {
    "cpu_cost": "profile the heaviest job types, or move them to cheaper compute",
    "memory_cost": "right-size memory requests (jobs pay for the memory they hold for their whole run)",
    "payload_cost": "shrink job payloads (pass references to stored data instead of the data)",
    "redis_cost": "batch or pipeline Redis operations",
    "network_cost": "cut data transfer (compress, cache, or keep data next to the workers)",
    "base_cost": "it runs many tiny jobs; batch them into fewer, larger ones",
    "resource_cost": "check GPU and licence use per job type (idle GPUs are billed while held)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTotals:
    """A queue's jobs, spend and components over the report period."""

    jobs: int
    cost: Decimal
    breakdown: CostBreakdown


def usd(value: Decimal, places: int = 2) -> str:
    """``$1,234.56`` (display only)."""
    return f"${value:,.{places}f}"


def pct(ratio: Decimal, places: int = 0) -> str:
    """A fraction as ``78 %``."""
    return f"{ratio * 100:.{places}f} %"


def round_up_nicely(value: Decimal) -> Decimal:
    """Round up to two significant figures, whole dollars at least: 3,712.34 → 3,800,
    123.4 → 130, 8.7 → 9."""
    if value <= 0:
        return ZERO
    step = Decimal(1).scaleb(max(0, value.adjusted() - 1))
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(Decimal(1))


def recommendations(
    *,
    rows: Sequence[DailyCost],
    in_period: Sequence[DailyCost],
    queues: Mapping[str, QueueTotals],
    total_spend: Decimal,
    last_day: date,
    today: date,
    forecast: ForecastLike | None,
) -> tuple[str, ...]:
    """Every rule that fires, most urgent first (``queues`` most expensive first)."""
    out: list[str] = []
    if forecast is not None:
        out.extend(_overrun(forecast, queues, total_spend))
    complete = last_day if last_day < today else today - timedelta(days=1)
    out.extend(_growth(rows, complete))
    if forecast is not None:
        out.extend(_underused(forecast))
    out.extend(_dominant(queues, total_spend))
    out.extend(_outliers(in_period, queues, total_spend))
    return tuple(out)


def _overrun(forecast: ForecastLike, queues: Mapping[str, QueueTotals], total: Decimal) -> list[str]:
    days = forecast.days_until_overrun
    if days is None or days < 0:
        return []
    on = forecast.as_of + timedelta(days=days)
    if on > forecast.period_end:
        return []
    spent, amount = forecast.current_spend, forecast.budget_amount
    if days == 0 and spent > amount:
        text = f"The tenant-wide budget of {usd(amount)} is already spent ({usd(spent)} by {forecast.as_of})"
    else:
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        text = f"At the current pace the tenant-wide budget of {usd(amount)} runs out on {on} ({when})"
    text += (
        f", before its period ends on {forecast.period_end}: forecast spend {usd(forecast.predicted_spend)} "
        f"({pct(forecast.budget_utilization)} of the budget; 80 % range "
        f"{usd(forecast.lower_80)} to {usd(forecast.upper_80)})."
    )
    if queues and total > 0:
        name, q = next(iter(queues.items()))
        text += f" Raise the budget or cut spend on {name}, the biggest driver ({usd(q.cost)}, {pct(q.cost / total)})."
    return [text]


def _growth(rows: Sequence[DailyCost], end: date) -> list[str]:
    recent_from, prior_from = end - timedelta(days=WEEK - 1), end - timedelta(days=2 * WEEK - 1)
    recent: dict[str, Decimal] = {}
    prior: dict[str, Decimal] = {}
    for r in rows:
        if recent_from <= r.date <= end:
            recent[r.queue_name] = recent.get(r.queue_name, ZERO) + r.total_cost
        elif prior_from <= r.date < recent_from:
            prior[r.queue_name] = prior.get(r.queue_name, ZERO) + r.total_cost
    week_total = sum(recent.values(), ZERO)
    best: tuple[Decimal, str] | None = None
    for name, now in recent.items():
        before = prior.get(name, ZERO)
        grew = now - before
        material = before > 0 and grew >= before * GROWTH_MIN and grew >= week_total * MATERIAL
        if material and (best is None or (grew, name) > best):
            best = (grew, name)
    if best is None:
        return []
    grew, name = best
    before = prior[name]
    if before < CENT or grew > before * MAX_GROWTH_SHOWN:  # a percentage of almost nothing says nothing
        return [
            f"Spend on {name} rose from almost nothing to {usd(before + grew)} in the 7 days to {end} "
            f"(the 7 days before: {usd(before, 4)}); check that the new load is expected."
        ]
    return [
        f"Spend on {name} grew {pct(grew / before, 1)} week over week: {usd(before + grew)} in the 7 days to {end} "
        f"against {usd(before)} in the 7 days before (+{usd(grew)}); check that the extra load is expected."
    ]


def _underused(forecast: ForecastLike) -> list[str]:
    if forecast.days_until_overrun is not None or forecast.budget_utilization >= UNDERUSED:
        return []
    amount = forecast.budget_amount
    suggested = round_up_nicely(forecast.upper_80)
    if not 0 < suggested < amount:
        return []
    return [
        f"The tenant-wide budget of {usd(amount)} is forecast to be only {pct(forecast.budget_utilization)} used "
        f"({usd(forecast.predicted_spend)} by {forecast.period_end}): consider lowering it to {usd(suggested)}, "
        f"the forecast's 80 % upper bound ({usd(forecast.upper_80)}) rounded up."
    ]


def _dominant(queues: Mapping[str, QueueTotals], total: Decimal) -> list[str]:
    out: list[str] = []
    for name, q in queues.items():
        if len(out) == MAX_PER_RULE or total <= 0 or q.cost < total * MATERIAL_QUEUE:
            break
        for component in COMPONENTS:
            cost: Decimal = getattr(q.breakdown, component)
            if q.cost > 0 and cost > q.cost * DOMINANT:
                label = COMPONENT_LABELS[component]
                out.append(
                    f"{label[0].upper()}{label[1:]} is {pct(cost / q.cost)} of {name}'s cost "
                    f"({usd(cost)} of {usd(q.cost)}): {_ADVICE[component]}."
                )
                break
    return out


def _outliers(in_period: Sequence[DailyCost], queues: Mapping[str, QueueTotals], total: Decimal) -> list[str]:
    days: dict[str, list[DailyCost]] = {}
    for r in in_period:
        if r.total_jobs:
            days.setdefault(r.queue_name, []).append(r)
    found: list[tuple[Decimal, str]] = []
    for name, rows in days.items():
        if len(rows) < 3:
            continue
        q = queues[name]
        best: tuple[Decimal, str] | None = None
        for r in rows:
            other_jobs, other_cost = q.jobs - r.total_jobs, q.cost - r.total_cost
            if r.total_jobs < OUTLIER_MIN_JOBS or other_jobs <= 0 or other_cost <= 0:
                continue
            usual = other_cost / other_jobs
            this = r.total_cost / r.total_jobs
            excess = r.total_cost - usual * r.total_jobs
            if this >= usual * OUTLIER_RATIO and excess >= total * MATERIAL and (best is None or excess > best[0]):
                best = (
                    excess,
                    f"On {r.date}, jobs on {name} cost {usd(this, 4)} each on average ({r.total_jobs:,} jobs, "
                    f"{usd(r.total_cost)}), {this / usual:.1f}× the {usd(usual, 4)} of its other days: about "
                    f"{usd(excess)} more than usual; check what ran that day.",
                )
        if best is not None:
            found.append(best)
    found.sort(key=lambda f: f[0], reverse=True)
    return [text for _, text in found[:MAX_PER_RULE]]
