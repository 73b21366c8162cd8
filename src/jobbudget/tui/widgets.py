"""Rich pieces the tabs share: money, status badges, utilization bars and the daily
spending chart.  Pure functions of their inputs (the snapshot tests depend on it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from rich.text import Text

from ..domain.budget import Budget
from ..domain.forecasting import Forecast
from ..render.common import money_in as money

__all__ = [
    "STATUS_STYLES",
    "badge",
    "bar",
    "daily_chart",
    "money",
    "period_text",
    "queue_text",
    "weekday_pattern",
]

#: Status -> style; a distinct colour for every rung of the ladder.
STATUS_STYLES = {
    "OK": "bold black on green",
    "Warning": "bold black on yellow",
    "Throttle": "bold black on dark_orange",
    "Block": "bold white on red",
    "Inactive": "dim",
    "Idle": "dim",
}
BAR_STYLES = {"OK": "green", "Warning": "yellow", "Throttle": "dark_orange", "Block": "red"}
#: Status -> rank, most severe first, for sorting.
SEVERITY = {"Block": 0, "Throttle": 1, "Warning": 2, "OK": 3, "Idle": 4, "Inactive": 5}
_EIGHTHS = " ▁▂▃▄▅▆▇█"
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def badge(status: str) -> Text:
    return Text(f" {status} ", style=STATUS_STYLES.get(status, "bold"))


def bar(ratio: Decimal, status: str, width: int = 10) -> Text:
    """``███████░░░░░  58.3%``: full at 100 %, the figure shows overruns."""
    filled = max(0, min(width, int(ratio * width)))
    text = Text("█" * filled, style=BAR_STYLES.get(status, "grey50"))
    text.append("░" * (width - filled), style="grey35")
    text.append(f" {ratio * 100:6.1f}%")
    return text


def queue_text(budget: Budget) -> str:
    return budget.queue_name or "(all queues)"


def period_text(budget: Budget, start: date | None, end: date | None) -> str:
    """``Mar 2013`` for a calendar month, else the type and the dates in force."""
    if start is None or end is None:
        return budget.period.type
    if budget.period.type == "monthly":
        return f"{start:%b %Y}"
    if start.year == end.year:
        return f"{budget.period.type} {start:%b %d}–{end:%b %d}"
    return f"{budget.period.type} {start}–{end}"


def _cell(value: Decimal, low: Decimal, step: Decimal) -> str:
    """The block character for a bar of ``value`` in the row spanning ``low..low+step``."""
    if value <= low:
        return " "
    if value >= low + step:
        return "█"
    return _EIGHTHS[max(1, int((value - low) / step * 8))]


def daily_chart(
    daily: Sequence[tuple[date, Decimal]],
    *,
    pace: Decimal | None,
    forecast: Forecast | None,
    height: int = 8,
    currency: str = "USD",
    width: int = 80,
) -> Text:
    """Vertical bars of daily spend (oldest left), the days still to come in the
    period as shaded bars of the forecast, the daily pace as a dashed line, and the
    forecast band (80 %) of the rest of the period as ``┆`` above each projected day."""
    projected: list[tuple[date, Decimal, Decimal]] = []
    if forecast is not None:
        rest = forecast.predicted_spend - forecast.current_spend
        scale_hi = (forecast.upper_80 - forecast.current_spend) / rest if rest > 0 else Decimal(1)
        last_day = daily[-1][0] if daily else None
        for day, value in forecast.daily_projection:
            if last_day is None or day > last_day:
                projected.append((day, value, value * scale_hi))
        projected = projected[:14]
    # the scale fits the spend, the projection and the pace; a wide band is clipped at the top
    values = [v for _, v in daily] + [mid for _, mid, _ in projected]
    label_width = len(money(max([*values, pace or Decimal(0), Decimal("0.01")])))
    col = 2 if 2 * (len(daily) + len(projected)) + label_width + 4 <= width else 1
    top = max([*values, pace or Decimal(0), Decimal("0.01")])
    step = top / height
    out = Text()
    for row in range(height, 0, -1):
        low = step * (row - 1)
        label = money(top) if row == height else (money(Decimal(0)) if row == 1 else "")
        out.append(f"{label:>{label_width}} │", style="grey50")
        pace_here = pace is not None and low <= pace < low + step
        for _, value in daily:
            cell = _cell(value, low, step)
            if cell == " " and pace_here:
                out.append("╌" * col, style="magenta")
            else:
                out.append(cell * col, style="cyan")
        for _, mid, hi in projected:
            cell = _cell(mid, low, step)
            if cell != " ":
                out.append(("▒" if cell == "█" else cell) * col, style="blue")
            elif hi > low:
                out.append("┆".ljust(col), style="blue")
            elif pace_here:
                out.append("╌" * col, style="magenta")
            else:
                out.append(" " * col)
        out.append("\n")
    span = col * (len(daily) + len(projected))
    out.append(" " * label_width + " └" + "─" * span + "\n", style="grey50")
    if daily:
        first, last = daily[0][0], daily[-1][0]
        left, right = f"{first:%b %d}", f"{last:%b %d}"
        gap = max(1, col * len(daily) - len(left) - len(right))
        axis = left + " " * gap + right
        out.append(" " * (label_width + 2) + axis[: max(span, len(axis))] + "\n", style="grey50")
    out.append(" " * (label_width + 2))
    out.append("█ daily spend", style="cyan")
    if pace is not None:
        out.append(f"  ╌ pace {money(pace)}/day", style="magenta")
    if projected:
        out.append("  ▒┆ forecast, 80% band", style="blue")
    out.append(f"  ({currency})", style="grey50")
    return out


def weekday_pattern(factors: Sequence[float]) -> Text:
    """The learned day-of-week factors (mean 1) as small bars: ``Mon ▆ 1.12``."""
    out = Text()
    if len(factors) != 7:
        return Text("not enough history for a weekly pattern", style="grey50")
    peak = max(max(factors), 1e-9)
    for name, factor in zip(_WEEKDAYS, factors, strict=True):
        level = _EIGHTHS[max(1, min(8, round(factor / peak * 8)))]
        out.append(f"{name} ")
        out.append(level, style="cyan")
        out.append(f" {factor:4.2f}  ")
    return out
