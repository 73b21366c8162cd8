"""Display helpers shared by the report renderers: labels, rounded figures, and the
chart series (daily spend, budget pace, cumulative spend and the forecast band)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from ..domain.money import display_money
from ..domain.reporting import BudgetReport, ForecastLike, share

__all__ = [
    "COMPONENT_NAMES",
    "ChartSeries",
    "budget_label",
    "chart_series",
    "money",
    "money_in",
    "overrun_label",
    "percent",
    "period_label",
    "ratio_percent",
]

COMPONENT_NAMES = {
    "cpu_cost": "CPU",
    "memory_cost": "Memory",
    "payload_cost": "Payload",
    "redis_cost": "Redis",
    "network_cost": "Network",
    "base_cost": "Base (per job)",
    "resource_cost": "Named resources",
}


def money(value: Decimal, places: int = 2) -> str:
    """Rounded with thousands separators, for people (JSON and CSV keep exact values)."""
    return display_money(value, places=places)


def money_in(value: Decimal, currency: str = "") -> str:
    """Rounded to cents with thousands separators and the currency code if given, for
    tables and the terminal UI (the exact value stays in the data)."""
    return display_money(value, currency)


def percent(value: Decimal) -> str:
    """A percentage (already × 100) as ``12.3%``."""
    return f"{value:.1f}%"


def ratio_percent(ratio: Decimal | None) -> str:
    """A fraction as ``12.3%``; ``-`` when unknown."""
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def period_label(report: BudgetReport) -> str:
    p = report.period
    zone = "" if p.timezone == "UTC" else f" ({p.timezone} period, UTC days)"
    return f"{p.type} {p.start_date} to {p.end_date}{zone}"


def overrun_label(forecast: ForecastLike) -> str:
    """``2026-11-24 (in 9 days)``, ``already over``, or ``none projected``."""
    days = forecast.days_until_overrun
    if days is None:
        return "none projected"
    if days == 0:
        return "already over" if forecast.current_spend > forecast.budget_amount else f"{forecast.as_of} (today)"
    return f"{forecast.as_of + timedelta(days=days)} (in {days} day{'' if days == 1 else 's'})"


def budget_label(report: BudgetReport) -> str:
    """The budget the spend is compared with, and where its amount comes from."""
    if report.budget_amount is None:
        return "no budget for this period"
    basis = "tenant-wide budget" if report.budget_basis == "tenant" else "sum of the queue budgets"
    return f"{money(report.budget_amount)} {report.currency} ({basis})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartSeries:
    """Float series for drawing, over every day of the period.  ``actual`` and
    ``cumulative`` cover the reported days (the last one may be partial: today).
    With a forecast of this period, ``projected`` holds the predicted spend of each
    day from index ``projected_start`` (the forecast's ``as_of``) to the end, and
    ``band`` the cumulative spend at the end of each of those days (low 80 %,
    predicted, high 80 %), starting from the reported spend before ``as_of``.
    ``pace`` is the budget per day and ``budget`` the amount."""

    days: tuple[date, ...]
    actual: tuple[float, ...]
    cumulative: tuple[float, ...]
    projected_start: int
    projected: tuple[float, ...]
    band: tuple[tuple[float, float, float], ...]
    pace: float | None
    budget: float | None

    def band_origin(self) -> float:
        """Cumulative spend where the band starts (before day ``projected_start``)."""
        return self.cumulative[self.projected_start - 1] if 0 < self.projected_start <= len(self.cumulative) else 0.0


def chart_series(report: BudgetReport) -> ChartSeries:
    start, end = report.period.start_date, report.period.end_date
    assert start is not None and end is not None
    days = tuple(start + timedelta(days=i) for i in range((end - start).days + 1))
    actual = tuple(float(d.total) for d in report.daily)
    running, cumulative = 0.0, []
    for value in actual:
        running += value
        cumulative.append(running)
    first = len(days)
    projected: list[float] = []
    band: list[tuple[float, float, float]] = []
    f = report.forecast
    if f is not None and f.period_end == end and start <= f.as_of <= end and (f.as_of - start).days <= len(actual):
        first = (f.as_of - start).days
        by_day = {d: float(v) for d, v in f.daily_projection}
        projected = [max(0.0, by_day.get(d, 0.0)) for d in days[first:]]
        origin = cumulative[first - 1] if first else 0.0
        spent = float(f.current_spend)
        rests = [max(0.0, float(v) - spent) for v in (f.lower_80, f.predicted_spend, f.upper_80)]
        total, so_far = sum(projected), 0.0
        for i, value in enumerate(projected):
            so_far += value
            share = so_far / total if total > 0 else (i + 1) / len(projected)
            low, mid, high = (origin + share * rest for rest in rests)
            band.append((low, mid, high))
    budget = float(report.budget_amount) if report.budget_amount is not None else None
    return ChartSeries(
        days=days,
        actual=actual,
        cumulative=tuple(cumulative),
        projected_start=first,
        projected=tuple(projected),
        band=tuple(band),
        pace=budget / len(days) if budget is not None else None,
        budget=budget,
    )


@dataclass(frozen=True, slots=True)
class Section:
    """A table of a report beyond jobs by queue: plain text cells (renderers escape
    them), which columns are numeric, and a closing line."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int]
    note: str = ""


def extra_sections(report: BudgetReport) -> list[Section]:
    """Members (a team's or organisation's report), named resources, and adjustments
    with the net spend, each only when there is something to show."""
    cur = report.currency
    out = []
    if report.members:
        out.append(
            Section(
                "Tenants",
                ("Tenant", f"Cost ({cur})", "Share", "Jobs"),
                tuple(
                    (m.tenant_id, money(m.total_cost), percent(share(m.total_cost, report.total_spend)), f"{m.jobs:,}")
                    for m in report.members
                ),
                frozenset({1, 2, 3}),
            )
        )
    if report.resources:
        out.append(
            Section(
                "Named resources",
                ("Resource", "Quantity", f"Cost ({cur})", "Share"),
                tuple((r.name, f"{r.quantity:,f}", money(r.cost), percent(r.percentage)) for r in report.resources),
                frozenset({1, 2, 3}),
                "Quantities in the unit each is priced in (GPU-seconds for gpu, gpu:TYPE).",
            )
        )
    if report.adjustments:
        out.append(
            Section(
                "Adjustments (refunds and corrections)",
                ("Day", "Kind", "Tenant", "Queue", "Job", f"Amount ({cur})", "Reason"),
                tuple(
                    (str(a.day), a.kind, a.tenant_id, a.queue_name or "-", a.job_id or "-", money(a.amount), a.reason)
                    for a in report.adjustments
                ),
                frozenset({5}),
                f"Jobs {money(report.total_spend)} + adjustments {money(report.adjustments_total)} = "
                f"net spend {money(report.net_spend)} {cur}.",
            )
        )
    return out
